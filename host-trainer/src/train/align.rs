//! The alignment warm-up: a way off CTC's blank plateau for alphabets and layouts where CTC alone finds none.
//!
//! On the plateau every frame outputs blank, and CTC's gradient asks each frame for the label's characters
//! spread over a wide, image-independent window, a weak signal that weakens as the alphabet grows: the
//! project's own captchas with 36 characters instead of 19 (2,000 images, 4-5 characters) were still on the
//! plateau after 8 epochs, while with 19 they left it at epoch 3. Captchas write their characters left to
//! right at roughly even spacing, so a rough frame-by-frame target costs nothing to guess: the label's
//! characters laid out evenly over the columns that hold the image's ink, blank outside them. While the
//! model still reads nothing (and for at most `Options::align_epochs` epochs), training adds a
//! cross-entropy toward that guess to the CTC loss; the same 36-character captchas then leave the plateau
//! at epoch 4. Once the model reads, CTC alone trains on (the guess is wrong wherever spacing is uneven).

use tch::{Kind, Tensor};

/// The cross-entropy's weight beside the CTC loss.
pub const ALIGN_WEIGHT: f64 = 1.0;

/// Share of an image's ink left out on each side when finding its text's columns (stray dots and lines).
const INK_MARGIN: f32 = 0.02;

/// Frame targets `[n, steps]` (class indices, 0 = blank) for a batch of network inputs `x` `[n, 1, H, W]`
/// (values in [0, 1], ink dark) and their labels (class indices).
pub fn frame_targets<'a>(x: &Tensor, labels: impl Iterator<Item = &'a [i64]>, steps: usize) -> Tensor {
    let width = x.size()[3] as usize;
    // Ink per column: how far below white its pixels are, summed.
    let ink = (x * -1.0 + 1.0).sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float);
    let ink = Vec::<f32>::try_from(ink.reshape([-1])).unwrap_or_default();
    let mut out = Vec::with_capacity(ink.len() / width.max(1) * steps);
    for (columns, label) in ink.chunks(width.max(1)).zip(labels) {
        out.extend(layout(columns, label, steps));
    }
    Tensor::from_slice(&out).view([-1, steps as i64])
}

/// One image's frame targets: `label` spread evenly over the frames covering [`text_columns`], blank
/// elsewhere.
fn layout(ink: &[f32], label: &[i64], steps: usize) -> Vec<i64> {
    let (first, end) = text_columns(ink);
    let scale = steps as f32 / ink.len().max(1) as f32;
    let (a, b) = (first as f32 * scale, end as f32 * scale);
    (0..steps)
        .map(|t| {
            let u = (t as f32 + 0.5 - a) / (b - a);
            if label.is_empty() || !(0.0..1.0).contains(&u) {
                0
            } else {
                label[((u * label.len() as f32) as usize).min(label.len() - 1)]
            }
        })
        .collect()
}

/// The columns `first..end` holding the middle of an image's ink (all but [`INK_MARGIN`] of it on each
/// side), measured above the faintest column (the background's level); all columns if there is no ink.
fn text_columns(ink: &[f32]) -> (usize, usize) {
    let floor = ink.iter().copied().fold(f32::INFINITY, f32::min);
    let above: Vec<f32> = ink.iter().map(|v| v - floor).collect();
    let total: f32 = above.iter().sum();
    if ink.is_empty() || !total.is_finite() || total <= 0.0 {
        return (0, ink.len());
    }
    let mut cum = 0.0;
    let (mut first, mut end) = (0, ink.len());
    let mut found_first = false;
    for (c, v) in above.iter().enumerate() {
        cum += v;
        if !found_first && cum > INK_MARGIN * total {
            first = c;
            found_first = true;
        }
        if cum >= (1.0 - INK_MARGIN) * total {
            end = c + 1;
            break;
        }
    }
    (first, end.max(first + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lays_the_label_evenly_over_the_inked_columns() {
        // 80 columns, ink (black) in columns 20..60 of a grey (0.8) background; 20 frames of 4 columns.
        let (h, w) = (6usize, 80usize);
        let pixels: Vec<f32> =
            (0..h * w).map(|i| if (20..60).contains(&(i % w)) && i / w > 1 { 0.0 } else { 0.8 }).collect();
        let x = Tensor::from_slice(&pixels).view([1, 1, h as i64, w as i64]);
        let label = [3i64, 5];
        let got = Vec::<i64>::try_from(frame_targets(&x, [label.as_slice()].into_iter(), 20).reshape([-1])).unwrap();
        // Definition: frames 5..15 cover columns 20..60; the first half reads 3, the second 5.
        let want: Vec<i64> = (0..20)
            .map(|t| {
                if (5..10).contains(&t) {
                    3
                } else if (10..15).contains(&t) {
                    5
                } else {
                    0
                }
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn without_ink_the_label_spans_the_whole_image() {
        let x = Tensor::ones([2, 1, 4, 40], (Kind::Float, tch::Device::Cpu));
        let labels = [[7i64].as_slice(), [1i64, 2, 3, 4].as_slice()];
        let got = Vec::<i64>::try_from(frame_targets(&x, labels.into_iter(), 8).reshape([-1])).unwrap();
        assert_eq!(got, [7, 7, 7, 7, 7, 7, 7, 7, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn stray_ink_at_the_edges_is_left_out() {
        // Text in columns 10..30 of 40, one faint dot in column 0 (1% of the ink).
        let mut ink = vec![0.0f32; 40];
        for v in &mut ink[10..30] {
            *v = 5.0;
        }
        ink[0] = 1.0;
        assert_eq!(text_columns(&ink), (10, 30));
        assert_eq!(layout(&ink, &[9], 4), [0, 9, 9, 0]);
    }
}
