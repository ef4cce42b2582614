//! Pictures and numbers at the end of a run: loss/accuracy curves, a grid of validation images with their
//! true and predicted text (as the seed's figures), and `metrics.json`.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::data::Dataset;
use crate::train::Epoch;

fn fonts() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // An embedded font: no system fontconfig needed.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// Two panels: training and validation loss; validation sequence accuracy and CER, per epoch.
pub fn curves_png(history: &[Epoch], best_epoch: usize, path: &Path) -> anyhow::Result<()> {
    fonts();
    crate::io::write_atomic_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let (left, right) = root.split_horizontally(500);
        let last = history.last().map_or(1, |e| e.epoch).max(2);
        let max_loss = history.iter().flat_map(|e| [e.loss, e.val_loss]).filter(|v| v.is_finite()).fold(1e-3, f64::max);
        let mut chart = ChartBuilder::on(&left)
            .caption("CTC loss", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1..last, 0.0..max_loss * 1.05)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("epoch").draw().map_err(plot_err)?;
        let series = [(BLUE, "train", 0), (RED, "validation", 1)];
        for (color, name, which) in series {
            let pts = history.iter().map(|e| (e.epoch, if which == 0 { e.loss } else { e.val_loss }));
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(plot_err)?;

        let mut chart = ChartBuilder::on(&right)
            .caption(format!("validation (best epoch {best_epoch})"), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1..last, 0.0..100.0)
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("epoch").y_desc("%").draw().map_err(plot_err)?;
        let acc = history.iter().map(|e| (e.epoch, 100.0 * e.val.sequence));
        chart
            .draw_series(LineSeries::new(acc, GREEN.stroke_width(2)))
            .map_err(plot_err)?
            .label("sequence accuracy")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN.stroke_width(2)));
        let cer = history.iter().map(|e| (e.epoch, (100.0 * e.val.cer).min(100.0)));
        chart
            .draw_series(LineSeries::new(cer, MAGENTA.stroke_width(2)))
            .map_err(plot_err)?
            .label("character error rate")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], MAGENTA.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
        Ok(())
    })
}

/// A grid of up to `max` images, each captioned "true → predicted" in green when right, red when wrong.
/// Wrong predictions come first, so they are the ones a reader sees.
pub fn predictions_png(data: &Dataset, predictions: &[String], max: usize, path: &Path) -> anyhow::Result<()> {
    fonts();
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| data.labels[i] == predictions[i]);
    order.truncate(max);
    let cols = 4usize;
    let rows = order.len().div_ceil(cols).max(1);
    let (w, h) = (data.width as u32, data.height as u32);
    let (cell_w, cell_h) = (w + 20, h + 34);
    crate::io::write_atomic_with(path, |tmp| {
        let root = BitMapBackend::new(tmp, (cols as u32 * cell_w, rows as u32 * cell_h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        for (slot, &i) in order.iter().enumerate() {
            let (x0, y0) = ((slot % cols) as i32 * cell_w as i32 + 10, (slot / cols) as i32 * cell_h as i32 + 26);
            for (k, p) in data.image(i).chunks_exact(data.channels()).enumerate() {
                let (x, y) = ((k % data.width) as i32, (k / data.width) as i32);
                let colour = match *p {
                    [r, g, b] => RGBColor(r, g, b),
                    _ => RGBColor(p[0], p[0], p[0]),
                };
                root.draw_pixel((x0 + x, y0 + y), &colour).map_err(plot_err)?;
            }
            let right = data.labels[i] == predictions[i];
            let color = if right { RGBColor(0, 130, 0) } else { RGBColor(200, 0, 0) };
            let text = format!("{} → {}", data.labels[i], predictions[i]);
            root.draw_text(&text, &("sans-serif", 16).into_font().color(&color), (x0, y0 - 21)).map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
        Ok(())
    })
}

/// Writes a contact sheet of `data` (no predictions): how generated or loaded images look.
pub fn samples_png(data: &Dataset, max: usize, path: &Path) -> anyhow::Result<()> {
    predictions_png(data, &data.labels, max, path)
}
