//! The sub-commands, as library functions (so tests can call them): train, eval, predict, generate, export.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};

use crate::data::{self, Dataset, LabelRules, OnBad};
use crate::infer::{self, Decoder, Runner};
use crate::model::{Crnn, Trained};
use crate::{export, io, quantize, report, train};

/// Where training images come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A folder of `LABEL.png` files.
    Folder(PathBuf),
    /// `count` captchas from the embedded generator (default look: the real set's).
    Synthetic { count: usize },
}

impl Source {
    /// Loads or draws the images.
    pub fn load(&self, seed: u64, on_bad: OnBad) -> anyhow::Result<Dataset> {
        match self {
            Source::Folder(dir) => Ok(data::load_dir(dir, None, &LabelRules::default(), on_bad)?.0),
            Source::Synthetic { count } => {
                let bar =
                    indicatif::ProgressBar::new_spinner().with_message(format!("drawing {count} synthetic captchas"));
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                let d = data::synthetic(captcha_synth::Config::default(), seed, 0, *count);
                bar.finish_and_clear();
                d
            }
        }
    }
    /// A short name for the default output folder.
    pub fn name(&self) -> String {
        match self {
            Source::Folder(dir) => dir.file_name().map_or("data".into(), |n| n.to_string_lossy().into_owned()),
            Source::Synthetic { .. } => "synthetic".into(),
        }
    }
}

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
    pub parameters: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// The first epoch whose model read something (validation CER below `train::PLATEAU_CER`); `None`
    /// if it never left CTC's blank plateau.
    pub first_reading: Option<usize>,
    /// What the run's summary told the user to try next.
    pub advice: Vec<String>,
    pub seconds_total: f64,
    pub seconds_per_epoch: f64,
    /// Validation figures of the best epoch, from tch.
    pub best: train::Epoch,
    /// The f32 model file run through core-infer on the validation split.
    pub core_infer_f32: data::Accuracy,
    /// The int8 model file through core-infer on the validation split.
    pub core_infer_int8: data::Accuracy,
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
) -> anyhow::Result<Metrics> {
    let started = Instant::now();
    let data = source.load(opts.seed, on_bad)?;
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
    let runner8 = Runner::new(&bytes8)?;
    let (eval8, preds8) = infer::evaluate(&runner8, &outcome.val)?;
    let agreement = preds.iter().zip(&preds8).filter(|(a, b)| a == b).count() as f64 / preds.len().max(1) as f64;
    report::curves_png(&outcome.history, outcome.best_epoch, &out.join("curves.png"))?;
    report::predictions_png(&outcome.val, &preds, 24, &out.join("predictions.png"))?;

    let best = outcome.history.iter().find(|e| e.epoch == outcome.best_epoch).cloned().context("no best epoch")?;
    let epochs_run = outcome.history.len();
    let file_names =
        ["model.ot", "model.json", "model.crnn", "model-int8.crnn", "model.onnx", "curves.png", "predictions.png"];
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
        parameters: Crnn::parameter_count(&model.vs),
        epochs_run,
        best_epoch: outcome.best_epoch,
        stopped_early: outcome.stopped_early,
        first_reading: outcome.first_reading,
        advice: Vec::new(),
        seconds_total: started.elapsed().as_secs_f64(),
        seconds_per_epoch: outcome.history.iter().map(|e| e.seconds).sum::<f64>() / epochs_run.max(1) as f64,
        best,
        core_infer_f32: eval.accuracy,
        core_infer_int8: eval8.accuracy,
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
    if f32_acc - int8_acc > 0.005 + 1e-9 {
        out.push(format!(
            "int8 reads {:.1} points less than f32 ({:.2}% vs {:.2}%): calibrate on more images of the style \
             (`quantize --data`).",
            100.0 * (f32_acc - int8_acc),
            100.0 * int8_acc,
            100.0 * f32_acc
        ));
    }
    out
}

/// `eval`: accuracy, CER and the wrong readings of each model file on a folder, and how often each
/// model reads the same text as the first (for example f32 vs int8).
pub fn eval(
    models: &[PathBuf],
    dir: &Path,
    on_bad: OnBad,
    decoder: Decoder,
) -> anyhow::Result<Vec<(infer::Evaluation, f64)>> {
    let mut first: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for model in models {
        let bytes = io::read_model(model)?;
        let runner = Runner::new(&bytes)?.with_decoder(decoder)?;
        let data = infer::load_for(&runner, dir, on_bad)?;
        let (eval, preds) = infer::evaluate(&runner, &data)?;
        let reference = first.get_or_insert_with(|| preds.clone());
        let agree = reference.iter().zip(&preds).filter(|(a, b)| a == b).count() as f64 / preds.len().max(1) as f64;
        out.push((eval, agree));
    }
    Ok(out)
}

/// `quantize`: the int8 model file from tch weights, calibrated on images like its training data: the
/// folder `calibration`, else the folder the model was trained on (its `model.json` records it), else,
/// for a model of the synthetic captchas' size and alphabet, 256 synthetic captchas. Any other model
/// needs a folder: calibrating it on synthetic captchas of another size would fail, and of another
/// alphabet or style would quietly choose the wrong ranges.
pub fn quantize(weights: &Path, calibration: Option<&Path>, out: &Path) -> anyhow::Result<()> {
    let model = Trained::load(weights)?;
    let spec = &model.spec;
    let size = (usize::from(spec.height), usize::from(spec.width));
    let folder = match (calibration, &spec.data) {
        (Some(dir), _) => Some(dir.to_path_buf()),
        (None, Some(dir)) if dir.is_dir() => {
            eprintln!("calibrating on {}, the folder the model was trained on", dir.display());
            Some(dir.clone())
        }
        (None, Some(dir)) => bail!(
            "{}: the model was trained on {}, which is gone; give calibration images of its style with --data",
            weights.display(),
            dir.display()
        ),
        (None, None) => None,
    };
    let data = match folder {
        Some(dir) => {
            let rules = LabelRules::default();
            data::load_dir(&dir, Some(size), &rules, OnBad::Skip)?.0
        }
        None => {
            let synth = captcha_synth::Config::default();
            let like = (usize::from(synth.height), usize::from(synth.width)) == size
                && spec.alphabet == synth.alphabet
                && usize::from(spec.max_label_len) == usize::from(synth.max_len);
            if !like {
                bail!(
                    "{}: the model reads {}x{} images of {:?}, unlike the synthetic captchas ({}x{}, {:?}) that \
                     calibrate by default; give calibration images of its style with --data",
                    weights.display(),
                    spec.width,
                    spec.height,
                    spec.alphabet,
                    synth.width,
                    synth.height,
                    synth.alphabet
                );
            }
            data::synthetic(synth, 42, 0, 256)?
        }
    };
    let w = export::Weights::from_tch(&model)?;
    let cal = quantize::write(&model, &w, &data, out)?;
    io::write_json(&out.join("calibration.json"), &cal)?;
    eprintln!("wrote {}/model-int8.crnn (calibrated on {} images: {cal:?})", out.display(), data.len().min(256));
    Ok(())
}

/// The image files `inputs` name: files as they are, folders' images (sorted), and glob patterns
/// (`'captchas/*.png'`, quoted so that the shell leaves them) expanded. A name that matches nothing is
/// kept, so that reading it reports the problem.
pub fn image_paths(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if input.is_dir() {
            match data::list_images(input) {
                Ok(files) => out.extend(files),
                Err(_) => out.push(input.clone()),
            }
        } else if !input.exists() && text.contains(['*', '?', '[']) {
            let found: Vec<PathBuf> =
                glob::glob(&text).map(|paths| paths.filter_map(Result::ok).filter(|p| p.is_file()).collect()).unwrap_or_default();
            if found.is_empty() {
                out.push(input.clone());
            }
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    out
}

/// `predict`: the reading of each image of `inputs` (files, folders, globs: [`image_paths`]), on every
/// core, in order; an image that cannot be read gets its error, and the others are still read.
pub fn predict(
    model: &Path,
    inputs: &[PathBuf],
    decoder: Decoder,
) -> anyhow::Result<Vec<(PathBuf, anyhow::Result<infer::Reading>)>> {
    let bytes = io::read_model(model)?;
    let runner = Runner::new(&bytes)?.with_decoder(decoder)?;
    let (h, w) = runner.size();
    let paths = image_paths(inputs);
    let readings = runner.read_many(paths.len(), |r, i, scratch| {
        let pixels = data::load_image(&paths[i], h, w)?;
        r.read_with(&pixels, scratch)
    });
    Ok(paths.into_iter().zip(readings).collect())
}

/// What `inspect` tells about a model file.
#[derive(Debug, serde::Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub format_version: u16,
    pub precision: String,
    pub arch: ArchInfo,
    pub alphabet: String,
    pub input: String,
    pub file_bytes: usize,
    /// The CRC-32 stored at the end of the file (checked on parsing).
    pub checksum: String,
    pub tensors: usize,
    pub parameters: usize,
    pub scratch_bytes: usize,
    /// Multiply-adds per stage of one inference (`core_infer::Stage::macs`).
    pub macs: Vec<(String, u64)>,
    pub total_macs: u64,
}

/// [`core_infer::Arch`] as `inspect --json` prints it.
#[derive(Debug, serde::Serialize)]
pub struct ArchInfo {
    pub height: u16,
    pub width: u16,
    pub conv1: u16,
    pub conv2: u16,
    pub dense1: u16,
    pub lstm1: u16,
    pub lstm2: u16,
    /// Alphabet + 1: class 0 is the CTC blank.
    pub classes: u16,
    pub max_label_len: u16,
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.arch;
        writeln!(f, "{}", self.path)?;
        writeln!(f, "  format          version {}, {}, {} bytes, CRC-32 {}", self.format_version, self.precision, self.file_bytes, self.checksum)?;
        writeln!(f, "  input           {}x{} grayscale, {}", a.width, a.height, self.input)?;
        writeln!(
            f,
            "  architecture    conv {} + pool, conv {} + pool, dense {}, BiLSTM {}, BiLSTM {}, dense {} (classes, blank included)",
            a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes
        )?;
        writeln!(f, "  alphabet        {:?} ({} characters), texts up to {}", self.alphabet, self.alphabet.chars().count(), a.max_label_len)?;
        writeln!(f, "  tensors         {} ({} parameters)", self.tensors, self.parameters)?;
        writeln!(f, "  scratch         {} bytes", self.scratch_bytes)?;
        writeln!(f, "  multiply-adds   {} per inference", self.total_macs)?;
        for (stage, macs) in self.macs.iter().filter(|(_, m)| *m > 0) {
            writeln!(f, "    {stage:<14} {macs:>12}")?;
        }
        Ok(())
    }
}

/// `inspect`: everything the model file says about itself, checked by core-infer's parser first.
pub fn inspect(model: &Path) -> anyhow::Result<ModelInfo> {
    let bytes = io::read_model(model)?;
    let m = core_infer::Model::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let file = core_infer::format::ModelFile::parse(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    let arch = *m.arch();
    let macs: Vec<(String, u64)> = core_infer::Stage::ALL.iter().map(|s| (s.name().to_string(), s.macs(&arch))).collect();
    let crc = bytes.len().checked_sub(4).and_then(|n| bytes.get(n..)).map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    let core_infer::Arch { height, width, conv1, conv2, dense1, lstm1, lstm2, classes, max_label_len } = arch;
    Ok(ModelInfo {
        path: model.display().to_string(),
        format_version: core_infer::format::VERSION,
        precision: format!("{:?}", m.precision()).to_lowercase(),
        arch: ArchInfo { height, width, conv1, conv2, dense1, lstm1, lstm2, classes, max_label_len },
        alphabet: m.alphabet().to_string(),
        input: match m.input() {
            core_infer::Input::Plain => "pixels as they are".into(),
            core_infer::Input::Stretch => "contrast stretched (darkest pixel to 0, lightest to 255)".into(),
        },
        file_bytes: bytes.len(),
        checksum: format!("{crc:08x}"),
        tensors: file.tensors().count(),
        parameters: file.tensors().filter(|t| t.name.ends_with(b"weight") || t.name.ends_with(b"w_ih") || t.name.ends_with(b"w_hh") || t.name.ends_with(b"bias")).map(|t| t.len()).sum(),
        scratch_bytes: m.scratch_bytes(),
        total_macs: macs.iter().map(|(_, n)| n).sum(),
        macs,
    })
}

/// `generate`: writes `count` synthetic captchas as `LABEL.png` into `out` (a repeated label gets `_N`),
/// and optionally a contact sheet of the first ones to `sheet` (outside `out`, which must hold only data).
pub fn generate(
    config: captcha_synth::Config<'_>,
    count: usize,
    seed: u64,
    out: &Path,
    sheet: Option<&Path>,
    colour: bool,
) -> anyhow::Result<()> {
    if let Some(c) = config.alphabet.chars().find(|c| matches!(c, '_' | '.' | '/' | '\\')) {
        bail!("alphabet: {c:?} cannot be part of a LABEL.png file name");
    }
    let mut data = data::synthetic(config, seed, 0, count)?;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let bar = indicatif::ProgressBar::new(count as u64);
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for i in 0..data.len() {
        let label = data.labels[i].as_str();
        let n = seen.entry(label).or_default();
        *n += 1;
        let name = if *n == 1 { format!("{label}.png") } else { format!("{label}_{n}.png") };
        let (w, h) = (data.width as u32, data.height as u32);
        let img: image::DynamicImage = if colour {
            let rgb = colourize(data.image(i), seed, i as u64);
            image::RgbImage::from_raw(w, h, rgb).context("image buffer size")?.into()
        } else {
            image::GrayImage::from_raw(w, h, data.image(i).to_vec()).context("image buffer size")?.into()
        };
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        io::write_atomic(&out.join(name), &png)?;
        if colour {
            // the contact sheet shows what training sees: the colour image in grayscale
            let gray = img.to_luma8();
            let at = i * data.width * data.height;
            data.pixels[at..at + gray.len()].copy_from_slice(&gray);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!("wrote {count} captchas to {}", out.display());
    if let Some(sheet) = sheet {
        report::samples_png(&data, 24, sheet)?;
        eprintln!("wrote a contact sheet to {}", sheet.display());
    }
    Ok(())
}

/// A colour version of a grayscale captcha (0 = ink, 255 = background): the background gets a light
/// colour and the ink a dark one, drawn per captcha from `(seed, index)`, with per-channel noise. The
/// trainer reads colour captchas in grayscale (luma), where ink and background keep only the difference of
/// their brightness: from clear to faint (at least 60 grey levels apart), which is what makes this style harder.
pub fn colourize(gray: &[u8], seed: u64, index: u64) -> Vec<u8> {
    let mut rng = oorandom::Rand32::new(seed.rotate_left(17) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut pick = |lo: u32, hi: u32| [0; 3].map(|_| rng.rand_range(lo..hi + 1) as f32);
    let luma = |c: [f32; 3]| 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    let background = pick(110, 255);
    let mut ink = pick(0, 170);
    for _ in 0..16 {
        if luma(background) - luma(ink) >= 60.0 {
            break;
        }
        ink = pick(0, 170);
    }
    if luma(background) - luma(ink) < 60.0 {
        ink = [0.0; 3];
    }
    let mut rgb = Vec::with_capacity(3 * gray.len());
    for &g in gray {
        let t = f32::from(g) / 255.0;
        for (&b, &k) in background.iter().zip(&ink) {
            let noise = rng.rand_range(0..25) as f32 - 12.0;
            rgb.push((k + (b - k) * t + noise).clamp(0.0, 255.0) as u8);
        }
    }
    rgb
}

/// `export`: from a VarStore file (with its `model.json`) to `model.crnn` and `model.onnx` in `out`.
pub fn export(weights: &Path, out: &Path) -> anyhow::Result<()> {
    let model = Trained::load(weights)?;
    export::write_all(&model, out)?;
    eprintln!("wrote {0}/model.crnn and {0}/model.onnx", out.display());
    Ok(())
}

/// Refuses an output folder that is a file.
pub fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("{}: exists and is not a folder", out.display());
    }
    Ok(())
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
            parameters: 1,
            epochs_run,
            best_epoch,
            stopped_early: epochs_run < 100,
            first_reading,
            advice: Vec::new(),
            seconds_total: 1.0,
            seconds_per_epoch: 1.0,
            best,
            core_infer_f32: acc(f32),
            core_infer_int8: acc(int8),
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
    }

    #[test]
    fn generate_writes_labels_of_the_requested_alphabet_and_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let config = captcha_synth::Config {
            alphabet: "abcdefghijklmnopqrstuvwxyz0123456789",
            min_len: 4,
            max_len: 6,
            width: 160,
            height: 40,
            ..captcha_synth::Config::default()
        };
        generate(config, 60, 3, dir.path(), None, false).unwrap();
        let rules = LabelRules::default();
        let (data, _) = data::load_dir(dir.path(), None, &rules, OnBad::Fail).unwrap();
        assert_eq!(data.len(), 60);
        assert_eq!((data.width, data.height), (160, 40));
        let lengths: std::collections::BTreeSet<usize> = data.labels.iter().map(|l| l.len()).collect();
        assert_eq!(lengths.into_iter().collect::<Vec<_>>(), [4, 5, 6]);
        assert!(data.labels.iter().flat_map(|l| l.chars()).all(|c| config.alphabet.contains(c)));
    }

    #[test]
    fn colour_captchas_are_colour_deterministic_and_readable_in_grayscale() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = captcha_synth::Config::default();
        generate(config, 20, 5, a.path(), None, true).unwrap();
        generate(config, 20, 5, b.path(), None, true).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(a.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names.len(), 20);
        for name in &names {
            let bytes = std::fs::read(a.path().join(name)).unwrap();
            assert_eq!(bytes, std::fs::read(b.path().join(name)).unwrap(), "{name:?}: not deterministic");
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!(img.color(), image::ColorType::Rgb8);
            // colour: some pixels have channels far apart
            let rgb = img.to_rgb8();
            assert!(rgb.pixels().any(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 40), "{name:?}");
        }
        // in grayscale (as training reads them) ink and background stay apart: dark ink pixels exist
        let rules = LabelRules::default();
        let (data, _) = data::load_dir(a.path(), None, &rules, OnBad::Fail).unwrap();
        for i in 0..data.len() {
            let (lo, hi) = data.image(i).iter().fold((255u8, 0u8), |(lo, hi), &p| (lo.min(p), hi.max(p)));
            assert!(hi - lo >= 50, "{}: grey levels {lo}..{hi}", data.sources[i]);
        }
    }
}
