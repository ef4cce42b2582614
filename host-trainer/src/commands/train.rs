//! `train`: the run, its files and the summary that tells the user what to do next.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use super::Source;
use crate::data::{self, OnBad};
use crate::infer::{self, Runner};
use crate::model::Crnn;
use crate::{export, io, quantize, report, train};

/// The final figures of a training run (`metrics.json`).
#[derive(Debug, serde::Serialize)]
pub struct Metrics {
    pub data: String,
    pub images: usize,
    pub train_images: usize,
    pub val_images: usize,
    pub alphabet: String,
    pub max_label_len: usize,
    pub image_size: [usize; 2],
    /// Whether the model reads colour (RGB through its ink, `core_infer::Input::Ink`) rather than grey.
    pub colour: bool,
    pub parameters: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// The first epoch whose model read something (validation CER below `train::PLATEAU_CER`); `None`
    /// if it never left CTC's blank plateau.
    pub first_reading: Option<usize>,
    /// Where the weights started: the pretrained file or fresh, and why ([`train::init`]). Absent from
    /// older runs' metrics.
    #[serde(default)]
    pub started: Option<train::init::Started>,
    /// What the run's summary told the user to try next.
    pub advice: Vec<String>,
    pub seconds_total: f64,
    pub seconds_per_epoch: f64,
    /// Validation figures of the best epoch, from tch.
    pub best: train::Epoch,
    /// The f32 model file run through core-infer on the validation split.
    pub core_infer_f32: data::Accuracy,
    /// The int8 model file through core-infer on the validation split (after quantization-aware
    /// fine-tuning, if it ran and read better).
    pub core_infer_int8: data::Accuracy,
    /// Quantization-aware fine-tuning ([`train::qat`]), if post-training quantization cost more than
    /// [`train::qat::TRIGGER`]: post-training quantization's figure, each epoch's and the one kept.
    pub quantization_aware: Option<train::qat::Report>,
    /// Fraction of validation images where f32 and int8 read the same text.
    pub f32_int8_agreement: f64,
    /// The int8 model's (the device's) wrong readings of validation images: `(file, truth, read)`.
    pub wrong: Vec<(String, String, String)>,
    pub files: Vec<(String, u64)>,
    /// Every epoch's figures, as plotted in curves.png.
    pub history: Vec<train::Epoch>,
}

/// `train`: trains, then writes the weights, the model files, the pictures and `metrics.json` into `out`.
pub fn train(
    source: &Source,
    opts: &train::Options,
    out: &Path,
    resume: bool,
    on_bad: OnBad,
    colour: data::Colour,
) -> anyhow::Result<Metrics> {
    let started = Instant::now();
    let data = source.load(opts.seed, on_bad, colour, opts.height)?;
    eprintln!(
        "{} images of {}x{} from {}; alphabet {:?}; labels up to {} characters; outputs in {}",
        data.len(),
        data.width,
        data.height,
        source.name(),
        data.alphabet(),
        data.max_label_len(),
        out.display()
    );
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create the output folder", out.display()))?;
    eprintln!("{}", device_line());
    let mut outcome = train::train(&data, opts, out, resume)?;
    if let Source::Folder(dir) = source {
        // Recorded in model.json, where `quantize` looks for calibration images by default.
        outcome.model.spec.data = Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone()));
    }
    let model = &outcome.model;
    eprintln!("best epoch {}: saving to {}", outcome.best_epoch, out.display());
    model.save(&out.join("model.ot"))?;
    let weights = export::write_all(model, out)?;
    let calibration = quantize::write(model, &weights, &outcome.train, out)?;
    io::write_json(&out.join("calibration.json"), &calibration)?;

    // The validation split through core-infer, f32 and int8: what the device will read.
    let bytes = io::read_model(&out.join("model.crnn"))?;
    let runner = Runner::new(&bytes)?;
    let (eval, preds) = infer::evaluate(&runner, &outcome.val)?;
    let bytes8 = io::read_model(&out.join("model-int8.crnn"))?;
    let (mut eval8, mut preds8) = infer::evaluate(&Runner::new(&bytes8)?, &outcome.val)?;
    let mut quantization_aware = None;
    for stale in ["model-qat.ot", "model-int8-post-training.crnn"] {
        let _ = std::fs::remove_file(out.join(stale)); // an earlier run's, in the same folder
    }
    let gap = eval.accuracy.sequence - eval8.accuracy.sequence;
    let fine_tune = match opts.qat {
        train::Qat::Auto => outcome.first_reading.is_some() && gap > train::qat::TRIGGER + 1e-9, // 1 in 200: not more
        train::Qat::Always => true,
        train::Qat::Never => false,
    };
    if fine_tune {
        eprintln!(
            "int8 reads {:.2}% against f32's {:.2}%: fine-tuning with quantization in the loop (--qat never: don't)",
            100.0 * eval8.accuracy.sequence,
            100.0 * eval.accuracy.sequence
        );
        let until = (opts.qat == train::Qat::Auto).then_some(eval.accuracy);
        let tuned = train::qat::fine_tune(model, &outcome.train, &outcome.val, opts, until, eval8.accuracy)?;
        if let Some((qat_model, bytes)) = &tuned.tuned {
            qat_model.save(&out.join("model-qat.ot"))?;
            // Post-training quantization's file stays beside it, for comparison (`eval --model`).
            io::write_atomic(&out.join("model-int8-post-training.crnn"), &bytes8).context("writing the int8 model")?;
            io::write_atomic(&out.join("model-int8.crnn"), bytes).context("writing the int8 model")?;
            (eval8, preds8) = infer::evaluate(&Runner::new(bytes)?, &outcome.val)?;
        }
        eprintln!(
            "{}",
            match tuned.report.best_epoch {
                0 => "quantization-aware fine-tuning read no better: post-training quantization's int8 model kept"
                    .to_string(),
                e => format!(
                    "kept the int8 model of quantization-aware epoch {e} (its float weights: model-qat.ot; \
                     post-training quantization's: model-int8-post-training.crnn)"
                ),
            }
        );
        quantization_aware = Some(tuned.report);
    }
    let agreement = preds.iter().zip(&preds8).filter(|(a, b)| a == b).count() as f64 / preds.len().max(1) as f64;
    report::curves_png(&outcome.history, outcome.best_epoch, &out.join("curves.png"))?;
    report::predictions_png(&outcome.val, &preds, 24, &out.join("predictions.png"))?;

    let best = outcome.history.iter().find(|e| e.epoch == outcome.best_epoch).cloned().context("no best epoch")?;
    let epochs_run = outcome.history.len();
    let file_names = [
        "model.ot",
        "model.json",
        "init.ot",
        "model.crnn",
        "model-int8.crnn",
        "model.onnx",
        "curves.png",
        "predictions.png",
    ];
    let files =
        file_names.iter().map(|f| (f.to_string(), std::fs::metadata(out.join(f)).map_or(0, |m| m.len()))).collect();
    let metrics = Metrics {
        data: source.name(),
        images: data.len(),
        train_images: outcome.train.len(),
        val_images: outcome.val.len(),
        alphabet: model.spec.alphabet.clone(),
        max_label_len: usize::from(model.spec.max_label_len),
        image_size: [data.height, data.width],
        colour: model.spec.colour,
        parameters: Crnn::parameter_count(&model.vs),
        epochs_run,
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        first_reading: outcome.first_reading,
        started: Some(outcome.started.clone()),
        advice: Vec::new(),
        seconds_total: started.elapsed().as_secs_f64(),
        seconds_per_epoch: outcome.history.iter().map(|e| e.seconds).sum::<f64>() / epochs_run.max(1) as f64,
        best,
        core_infer_f32: eval.accuracy,
        core_infer_int8: eval8.accuracy,
        quantization_aware,
        f32_int8_agreement: agreement,
        wrong: eval8.wrong.clone(),
        files,
        history: outcome.history.clone(),
    };
    let mut metrics = metrics;
    metrics.advice = advice(&metrics, opts);
    io::write_json(&out.join("metrics.json"), &metrics)?;
    eprintln!(
        "done in {:.0} s; validation ({} images) through core-infer: f32 {:.2}% (CER {:.4}), int8 {:.2}% (CER {:.4}), \
         agreement {:.2}%",
        metrics.seconds_total,
        eval.images,
        100.0 * eval.accuracy.sequence,
        eval.accuracy.cer,
        100.0 * eval8.accuracy.sequence,
        eval8.accuracy.cer,
        100.0 * agreement
    );
    eprintln!("wrote {}/{{{}, metrics.json}}", out.display(), file_names.join(", "));
    for line in &metrics.advice {
        eprintln!("{line}");
    }
    Ok(metrics)
}

/// Which device tch trains on, as `train` prints it first: a CUDA GPU when libtorch finds one (the
/// PyPI torch wheel set-up installs carries CUDA), else the CPU and its threads.
pub fn device_line() -> String {
    if tch::Cuda::is_available() {
        format!("training on CUDA GPU 0 of {} (tch::Device::cuda_if_available)", tch::Cuda::device_count())
    } else {
        format!("training on the CPU, {} threads (no CUDA GPU found by libtorch)", tch::get_num_threads())
    }
}

/// What a run's figures tell the user to do next, one sentence each (empty when there is nothing to say).
pub fn advice(m: &Metrics, opts: &train::Options) -> Vec<String> {
    let mut out = Vec::new();
    let (f32_acc, int8_acc) = (m.core_infer_f32.sequence, m.core_infer_int8.sequence);
    let ran_out = m.epochs_run >= opts.epochs || (!m.stopped_early && opts.max_minutes.is_some());
    match m.first_reading {
        None => out.push(format!(
            "The model reads nothing: after {} epochs it is still on CTC's blank plateau (validation CER {:.2}). \
             Give it more time ({}), more images (a few thousand), or check that the labels match the images.",
            m.epochs_run,
            m.best.val.cer,
            if opts.max_minutes.is_some() { "--max-minutes" } else { "--epochs" }
        )),
        Some(first) if first > 1 => {
            out.push(format!("It left the blank plateau at epoch {first} and read best at epoch {}.", m.best_epoch))
        }
        Some(_) => {}
    }
    if m.first_reading.is_some() && m.colour && m.core_infer_f32.sequence < 0.5 {
        out.push(
            "It reads colour (grayscale would lose some ink): if the colours carry nothing, compare with --colour \
             never."
                .into(),
        );
    }
    if m.first_reading.is_none() && m.image_size[0] > train::DEFAULT_HEIGHT {
        out.push(format!(
            "It read {}-row images: glyphs that tall are harder to learn; try fewer rows (--height; the default, \
             {}, shrinks less where the labels need the columns).",
            m.image_size[0],
            train::DEFAULT_HEIGHT
        ));
    }
    if m.first_reading.is_none() && !m.colour {
        out.push(
            "If the captchas are coloured and some characters look faint in grayscale, try --colour always.".into(),
        );
    }
    if m.first_reading.is_some() && ran_out && m.best_epoch + 2 >= m.epochs_run {
        out.push(format!(
            "It was still improving when the {} ended it: more {} should read better.",
            if m.epochs_run >= opts.epochs { "epoch limit" } else { "time limit" },
            if m.epochs_run >= opts.epochs { "epochs (--epochs)" } else { "time (--max-minutes)" }
        ));
    }
    if m.first_reading.is_some() && f32_acc < 0.9 && m.train_images < 5_000 {
        out.push(format!(
            "{:.1}% of the validation images read right: more labelled images ({} trained here) usually help most.",
            100.0 * f32_acc,
            m.train_images
        ));
    }
    if let Some(q) = &m.quantization_aware {
        out.push(match q.best_epoch {
            0 => format!(
                "Quantization-aware fine-tuning ({} epochs) read no better than post-training quantization's int8 \
                 ({:.2}%), which is kept.",
                q.history.len(),
                100.0 * q.post_training.sequence
            ),
            e => format!(
                "Quantization-aware fine-tuning took int8 from {:.2}% (post-training quantization) to {:.2}% \
                 (epoch {e} of {}, {:.0} s); f32 reads {:.2}%.",
                100.0 * q.post_training.sequence,
                100.0 * int8_acc,
                q.history.len(),
                q.seconds,
                100.0 * f32_acc
            ),
        });
    }
    if f32_acc - int8_acc > 0.005 + 1e-9 {
        out.push(format!(
            "int8 reads {:.1} points less than f32 ({:.2}% vs {:.2}%): calibrate on more images of the style \
             (`quantize --data`){}.",
            100.0 * (f32_acc - int8_acc),
            100.0 * int8_acc,
            100.0 * f32_acc,
            match &m.quantization_aware {
                Some(_) => ", or train longer: quantization-aware fine-tuning did not close the gap",
                None if opts.qat == train::Qat::Never => ", or fine-tune with quantization in the loop (--qat auto)",
                None => "",
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(first_reading: Option<usize>, epochs_run: usize, best_epoch: usize, f32: f64, int8: f64) -> Metrics {
        let acc = |sequence: f64| data::Accuracy { sequence, cer: if first_reading.is_some() { 0.1 } else { 1.0 } };
        let best = train::Epoch { epoch: best_epoch, loss: 1.0, val_loss: 1.0, val: acc(f32), seconds: 1.0 };
        Metrics {
            data: "x".into(),
            images: 2000,
            train_images: 1800,
            val_images: 200,
            alphabet: "ab".into(),
            max_label_len: 5,
            image_size: [50, 200],
            colour: false,
            parameters: 1,
            epochs_run,
            best_epoch,
            stopped_early: epochs_run < 100,
            first_reading,
            started: None,
            advice: Vec::new(),
            seconds_total: 1.0,
            seconds_per_epoch: 1.0,
            best,
            core_infer_f32: acc(f32),
            core_infer_int8: acc(int8),
            quantization_aware: None,
            f32_int8_agreement: 1.0,
            wrong: Vec::new(),
            files: Vec::new(),
            history: Vec::new(),
        }
    }

    #[test]
    fn the_summary_says_when_a_model_reads_nothing_and_what_to_try() {
        let opts = train::Options::default();
        // never off the plateau: said plainly, with what to try
        let a = advice(&metrics(None, 57, 17, 0.0, 0.0), &opts);
        assert!(a[0].starts_with("The model reads nothing"), "{a:?}");
        assert!(a[0].contains("--epochs"), "{a:?}");
        let timed = train::Options { max_minutes: Some(8.0), ..opts.clone() };
        assert!(advice(&metrics(None, 20, 17, 0.0, 0.0), &timed)[0].contains("--max-minutes"));
        // a grey model that reads nothing is pointed at colour; a colour one, while it reads little, at grey
        assert!(a.iter().any(|l| l.contains("--colour always")), "{a:?}");
        let colour = Metrics { colour: true, ..metrics(Some(5), 30, 20, 0.3, 0.3) };
        assert!(advice(&colour, &opts).iter().any(|l| l.contains("--colour never")));
        assert!(!advice(&Metrics { colour: true, ..metrics(None, 30, 20, 0.0, 0.0) }, &opts)
            .iter()
            .any(|l| l.contains("--colour")));
        // tall images that read nothing: pointed at --height; at 32 rows, not
        assert!(a.iter().any(|l| l.contains("50-row images") && l.contains("--height")), "{a:?}");
        let short = Metrics { image_size: [32, 128], ..metrics(None, 57, 17, 0.0, 0.0) };
        assert!(!advice(&short, &opts).iter().any(|l| l.contains("--height")));
        // a good run that read from the start: nothing to say
        assert!(advice(&metrics(Some(1), 30, 20, 0.99, 0.99), &opts).is_empty());
        // left the plateau late, still improving at the epoch limit, few images, int8 behind
        let a = advice(&metrics(Some(35), 100, 99, 0.70, 0.65), &opts);
        assert!(a.iter().any(|l| l.contains("left the blank plateau at epoch 35")), "{a:?}");
        assert!(a.iter().any(|l| l.contains("still improving") && l.contains("--epochs")), "{a:?}");
        assert!(a.iter().any(|l| l.contains("more labelled images")), "{a:?}");
        assert!(a.iter().any(|l| l.starts_with("int8 reads 5.0 points less")), "{a:?}");
        // half a point or less between f32 and int8 is not worth a word
        assert!(!advice(&metrics(Some(1), 30, 20, 0.99, 0.985), &opts).iter().any(|l| l.contains("int8")));
        // quantization-aware fine-tuning: what it bought, or that it bought nothing; if int8 still lags,
        // that it did not close the gap; with --qat never, that it exists
        let tuned = |best_epoch, int8| {
            let acc = |sequence| data::Accuracy { sequence, cer: 0.01 };
            let history =
                (1..=3).map(|epoch| train::qat::QatEpoch { epoch, loss: 1.0, int8: acc(0.9), seconds: 9.0 }).collect();
            let report = train::qat::Report { post_training: acc(0.9), best_epoch, history, seconds: 27.0 };
            Metrics { quantization_aware: Some(report), ..metrics(Some(1), 30, 20, 0.97, int8) }
        };
        let a = advice(&tuned(2, 0.97), &opts);
        assert_eq!(
            a,
            ["Quantization-aware fine-tuning took int8 from 90.00% (post-training quantization) to 97.00% \
                        (epoch 2 of 3, 27 s); f32 reads 97.00%."]
        );
        let a = advice(&tuned(0, 0.9), &opts);
        assert!(a[0].contains("read no better") && a[0].contains("90.00%"), "{a:?}");
        assert!(a[1].contains("did not close the gap"), "{a:?}");
        let never = train::Options { qat: train::Qat::Never, ..opts.clone() };
        assert!(advice(&metrics(Some(1), 30, 20, 0.97, 0.9), &never)[0].contains("--qat auto"));
    }
}
