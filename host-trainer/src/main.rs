//! Command line: parses arguments and calls [`host_trainer::commands`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use host_trainer::commands::{self, Source};
use host_trainer::data::{self, OnBad};
use host_trainer::infer::Decoder;
use host_trainer::train;

/// Train a captcha OCR model (the seed's CRNN with CTC) on a PC and export it for a microcontroller.
///
/// With no arguments: trains on synthetic captchas drawn by the embedded generator (no files needed, about
/// ten minutes on two cores) and writes everything to runs/synthetic/.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Train on a folder of LABEL.png images or on synthetic captchas; writes model.ot (tch weights),
    /// model.crnn (core-infer f32), model.onnx, curves.png, predictions.png and metrics.json to --out.
    Train(TrainArgs),
    /// Sequence accuracy, character error rate and the wrong readings of a model file on a folder.
    Eval {
        /// A .crnn model file (f32 or int8); repeat to compare models side by side (e.g. f32 and int8).
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        /// A folder of LABEL.png images.
        #[arg(long)]
        data: PathBuf,
        /// Warn about and skip unreadable images and bad labels instead of stopping.
        #[arg(long)]
        skip_bad: bool,
        /// Also write the full report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Decode with CTC prefix beam search of this width (1, 2, 4, 8, 16, 32 or 64) instead of greedily.
        #[arg(long, value_parser = beam_width)]
        beam: Option<usize>,
    },
    /// Print the text a model file reads in each image, with its confidence, reading on every core.
    ///
    /// One line per image: `PATH<TAB>TEXT<TAB>CONFIDENCE`, or with --json one JSON object per line
    /// (`path`, `text`, `confidence`, `chars`: each character's probability; `error` instead for an image
    /// that cannot be read). Unreadable images are reported and the rest still read; the exit code is 1
    /// if any failed.
    Predict {
        /// A .crnn model file.
        #[arg(long)]
        model: PathBuf,
        /// Image files (PNG, JPEG, BMP, GIF, WebP, TIFF; any size and colour, converted as in training),
        /// folders of them, or quoted glob patterns such as 'captchas/*.png'.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// One JSON object per line and image.
        #[arg(long)]
        json: bool,
        /// Decode with CTC prefix beam search of this width (1, 2, 4, 8, 16, 32 or 64): the confidence is
        /// then the text's probability over all alignments (greedy: the best path's probability).
        #[arg(long, value_parser = beam_width)]
        beam: Option<usize>,
    },
    /// Describe a .crnn model file: format, precision, architecture, alphabet, input conversion, size,
    /// checksum, scratch bytes and multiply-adds per layer.
    Inspect {
        /// A .crnn model file.
        model: PathBuf,
        /// Print it as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Write synthetic captchas as LABEL.png files (the look training on --synthetic uses).
    Generate {
        /// How many captchas to write.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Folder to write them into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Seeds the labels and the drawing: the same seed draws the same captchas.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Also draw a contact sheet of the first 24 captchas to this PNG (keep it outside --out).
        #[arg(long)]
        sheet: Option<PathBuf>,
        /// Characters to draw labels from (printable ASCII; `_`, `.`, `/` and `\\` cannot go in file names).
        #[arg(long, default_value = captcha_synth::DEFAULT_ALPHABET)]
        alphabet: String,
        /// Shortest label.
        #[arg(long, default_value_t = 5)]
        min_len: u8,
        /// Longest label (each captcha's length is drawn uniformly from min..=max).
        #[arg(long, default_value_t = 5)]
        max_len: u8,
        #[arg(long, default_value_t = 200)]
        width: u16,
        #[arg(long, default_value_t = 50)]
        height: u16,
        /// Colour captchas: a light background and dark ink of random colours per captcha (training reads
        /// them in grayscale, where some keep little contrast). The contact sheet shows them in grayscale.
        #[arg(long)]
        colour: bool,
    },
    /// Write the int8 model file (post-training quantization, calibrated on training-like images).
    Quantize {
        /// model.ot written by train (with its model.json beside it).
        #[arg(long)]
        weights: PathBuf,
        /// Calibration images: a folder of LABEL.png like the training data (default: the folder the model
        /// was trained on, as model.json records it; for a model of the synthetic captchas' size and
        /// alphabet, 256 synthetic captchas; otherwise --data is needed).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Output folder (default: the weights' folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rewrite model.crnn and model.onnx from a tch weights file (with its model.json beside it).
    Export {
        /// model.ot written by train.
        #[arg(long)]
        weights: PathBuf,
        /// Output folder (default: the weights' folder).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Folder of LABEL.png images (any size and colour; the label is the file name). Alphabet, maximum
    /// label length and image size come from the data (the size shrunk as --height says).
    #[arg(long, conflicts_with = "synthetic")]
    data: Option<PathBuf>,
    /// Train on this many synthetic captchas instead (the default when --data is not given).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    synthetic: Option<u32>,
    /// Most epochs to train (early stopping and --max-minutes may end the run sooner).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    epochs: u32,
    /// Images per optimizer step (the seed: 16; with 8, twice the steps per epoch, runs leave CTC's blank
    /// plateau in fewer epochs at about the same time per epoch).
    #[arg(long, default_value_t = train::Options::default().batch_size as u32, value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Stop after this many epochs without a better validation epoch (the best weights are kept): more
    /// captchas read, or as many with a lower character error rate or loss (see --select-by-loss).
    #[arg(long, default_value_t = 10)]
    patience: usize,
    /// Judge epochs (the one kept, what --patience waits for) by the validation loss alone, the seed's
    /// rule, instead of by the captchas they read.
    #[arg(long)]
    select_by_loss: bool,
    /// Quantization-aware fine-tuning. auto: when post-training quantization's int8 model reads more than
    /// half a point fewer validation captchas than the float model, fine-tune a copy for up to 8 epochs with
    /// the int8 rounding simulated and keep the int8 file that reads the validation split best through
    /// core-infer (its float weights saved as model-qat.ot, post-training quantization's file as
    /// model-int8-post-training.crnn). always: fine-tune whatever the gap. never: keep post-training
    /// quantization's file.
    #[arg(long, value_enum, default_value_t = train::Qat::Auto)]
    qat: train::Qat,
    /// Where training starts. auto: the project's pretrained weights (models/pretrained/init.ot, trained by
    /// tools/pretrain.sh on synthetic captchas in 100+ fonts, 62 characters) when the model has their shape
    /// (the default widths and --height), else fresh weights; the log says which. Each class of the
    /// alphabet takes the pretrained row of its character (new characters start fresh). none: fresh
    /// weights (the seed's way). PATH: the init.ot an earlier run wrote (its best weights as they
    /// trained; model.json beside it), which must have this model's shape.
    #[arg(long, default_value = "auto", value_parser = init_arg)]
    init: train::Init,
    /// Seeds the split, the batch order, dropout, initial weights and synthetic captchas.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Validate on another tenth of the shuffled data: fold 0 is the seed's 90/10 split, and folds 0 to 9
    /// together validate every image once (10-fold cross-validation: `tools/splits.sh --folds`).
    #[arg(long, default_value_t = 0, value_parser = fold)]
    fold: usize,
    /// Adam's learning rate (the seed: 1e-3).
    #[arg(long, default_value_t = train::Options::default().learning_rate, value_parser = positive)]
    lr: f64,
    /// Halve the learning rate after this many epochs without a better validation loss (0: never, the
    /// seed's recipe). Set it below --patience, e.g. 4, so the rate drops before the run stops.
    #[arg(long, default_value_t = 0)]
    lr_patience: usize,
    /// Stop after the epoch that crosses this many minutes of training (with --resume, the minutes
    /// trained before the interruption count: the run ends where an uninterrupted one would).
    #[arg(long, value_parser = positive)]
    max_minutes: Option<f64>,
    /// Output folder (default: runs/<data folder name> or runs/synthetic).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Train without the batch norms that shorten the CTC blank plateau (the seed's recipe to the letter;
    /// either way the saved model is the seed's network, the batch norms being folded into it).
    #[arg(long)]
    no_batch_norm: bool,
    /// Feed the network each image's pixels as they are (the seed's conversion) instead of stretching its
    /// contrast first (darkest pixel to black, lightest to white; the model file records the choice and
    /// core-infer applies it on the device too). The stretch is what lets faint and colour captchas train.
    #[arg(long)]
    no_stretch: bool,
    /// Grey or colour input. auto: colour when grayscale would nearly erase the drawn pixels (at least 5% of
    /// them within 24 luma levels of the background while their colour is clearly off it, over the first
    /// 200 images; e.g. a red character on a green background); the log says which and why. With colour
    /// the model reads RGB images and sees each pixel's distance from the background colour as ink (the
    /// model file records it; core-infer converts on the device too, in integers). Synthetic captchas are
    /// grey.
    #[arg(long, value_enum, default_value_t = ColourArg::Auto)]
    colour: ColourArg,
    /// Shrink images taller than this many rows to it (as many columns as keep their aspect ratio) before
    /// the network sees them, but keep at least 24 columns per character of the longest label (6 of the
    /// network's time steps; so 160x60 images with 6-character labels become 144x54); 0: train at the
    /// images' own size. The model file records the size, and
    /// `predict`, `eval` and the device resize to it. Fewer pixels: faster epochs, and glyphs that fill
    /// more of the convolutions' view (a 256x64 many-font style only left CTC's blank plateau at 32 rows),
    /// and at 32 rows the pretrained start of --init auto. Synthetic captchas are drawn at their own size
    /// (200x50).
    #[arg(long, default_value_t = train::DEFAULT_HEIGHT as u16, value_parser = height)]
    height: u16,
    /// Train on the images as they are. By default, from the epoch after the model first reads something,
    /// each training image is warped afresh every epoch (scaled 90-110%, rotated up to 4°, slanted, moved
    /// up to 4% of the width and 8% of the height), so that ~2,000 images of a many-font style are not
    /// memorized.
    #[arg(long)]
    no_augment: bool,
    /// Validate and keep an exponential moving average of the weights, with this decay per batch (0.99:
    /// roughly the last 100 batches), instead of the last batch's weights; 0: keep the weights (the seed).
    #[arg(long, default_value_t = 0.99, value_parser = decay)]
    ema: f64,
    /// Also train a shortcut head, dense1 straight to the classes, with its own CTC loss at this weight
    /// (0: none). It gives the convolutions a direct gradient while the LSTMs still output blanks (the CTC
    /// plateau); the head is dropped when training ends, so the saved model is the seed's network.
    #[arg(long, default_value_t = train::Options::default().aux_ctc, value_parser = non_negative)]
    aux_ctc: f64,
    /// While the model still reads nothing (CTC's blank plateau), for at most this many epochs, also train
    /// each frame toward a guessed alignment: the label's characters laid out evenly over the columns
    /// holding the image's ink. It gets larger alphabets off the plateau (36 characters instead of 19:
    /// epoch 4 instead of not within 8). 0: never.
    #[arg(long, default_value_t = train::Options::default().align_epochs)]
    align_epochs: usize,
    /// Continue an interrupted run from the checkpoint in --out (same data, seed and batch size).
    #[arg(long)]
    resume: bool,
    /// Warn about and skip unreadable images and bad labels instead of stopping.
    #[arg(long)]
    skip_bad: bool,
}

/// `train --colour`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum ColourArg {
    /// Colour if grayscale would lose the images' ink, else grey.
    Auto,
    /// Always colour (RGB images, ink input).
    Always,
    /// Always grayscale (the seed's conversion).
    Never,
}

/// A moving average's decay: from 0 (off) up to, not including, 1.
fn decay(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if (0.0..1.0).contains(&d) => Ok(d),
        _ => Err(format!("{s:?} is not a decay: give a number from 0 (off) up to, not including, 1")),
    }
}

/// A beam width core-infer is built for.
fn beam_width(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(w) if host_trainer::infer::BEAM_WIDTHS.contains(&w) => Ok(w),
        _ => Err(format!("{s:?} is not a beam width: give one of {:?}", host_trainer::infer::BEAM_WIDTHS)),
    }
}

fn decoder(beam: Option<usize>) -> Decoder {
    beam.map_or(Decoder::Greedy, Decoder::Beam)
}

/// A number above 0 (a learning rate, minutes).
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

/// A number from 0 up.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a number of 0 or more")),
    }
}

/// `train --init`: auto, none or a file.
fn init_arg(s: &str) -> Result<train::Init, String> {
    Ok(match s {
        "auto" => train::Init::Auto,
        "none" => train::Init::Fresh,
        "" => return Err("give auto, none or the path of an init.ot".into()),
        path => train::Init::File(PathBuf::from(path)),
    })
}

/// `train --height`: 0 (the images' own size) or 8 to 1024 rows.
fn height(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(h) if h == 0 || (8..=1024).contains(&h) => Ok(h),
        _ => Err(format!("{s:?} is not a height: give 8 to 1024 rows, or 0 for the images' own size")),
    }
}

/// A fold of the default split's cross-validation: 0 to 9.
fn fold(s: &str) -> Result<usize, String> {
    let folds = host_trainer::data::folds(train::Options::default().val_fraction);
    match s.parse::<usize>() {
        Ok(k) if k < folds => Ok(k),
        _ => Err(format!("{s:?} is not a fold: give 0 to {}", folds - 1)),
    }
}

/// The no-argument run: synthetic captchas, sized to finish in about ten minutes on two cores.
const DEFAULT_SYNTHETIC: usize = 6000;
const DEFAULT_MINUTES: f64 = 9.0;

/// `println!` that returns the write's error instead of panicking (a closed pipe, as in `| head`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`predict ... | head`): nothing left to say to anyone.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Option<Command>) -> anyhow::Result<()> {
    let command = match command {
        Some(command) => command,
        None => {
            eprintln!(
                "no command given: training on {DEFAULT_SYNTHETIC} synthetic captchas for at most {DEFAULT_MINUTES} \
                 minutes (see --help)"
            );
            // The same defaults as `train --help` shows, by parsing the equivalent command line.
            let (count, minutes) = (DEFAULT_SYNTHETIC.to_string(), DEFAULT_MINUTES.to_string());
            let args = ["host-trainer", "train", "--synthetic", &count, "--max-minutes", &minutes];
            Cli::try_parse_from(args)?.command.context("no train command")?
        }
    };
    match command {
        Command::Train(a) => {
            let source = match a.data {
                Some(dir) => Source::Folder(dir),
                None => Source::Synthetic { count: a.synthetic.map_or(DEFAULT_SYNTHETIC, |n| n as usize) },
            };
            let out = a.out.unwrap_or_else(|| PathBuf::from("runs").join(source.name()));
            commands::check_out_dir(&out)?;
            ctrlc::set_handler(|| {
                eprintln!("\nCtrl-C: stopping after this batch (the last finished epoch is kept)");
                train::INTERRUPTED.store(true, std::sync::atomic::Ordering::Relaxed);
            })?;
            let opts = train::Options {
                epochs: a.epochs as usize,
                batch_size: a.batch_size as usize,
                patience: a.patience,
                seed: a.seed,
                fold: a.fold,
                learning_rate: a.lr,
                max_minutes: a.max_minutes,
                batch_norm: !a.no_batch_norm,
                augment: !a.no_augment,
                select_by_loss: a.select_by_loss,
                qat: a.qat,
                init: a.init,
                lr_patience: a.lr_patience,
                stretch_contrast: !a.no_stretch,
                ema: a.ema,
                aux_ctc: a.aux_ctc,
                align_epochs: a.align_epochs,
                height: (a.height > 0).then_some(usize::from(a.height)),
                ..Default::default()
            };
            let colour = match a.colour {
                ColourArg::Auto => data::Colour::Auto,
                ColourArg::Always => data::Colour::Rgb,
                ColourArg::Never => data::Colour::Grey,
            };
            commands::train(&source, &opts, &out, a.resume, on_bad(a.skip_bad), colour)?;
        }
        Command::Eval { model, data, skip_bad, json, beam } => {
            let evals = commands::eval(&model, &data, on_bad(skip_bad), decoder(beam))?;
            for (path, (eval, _)) in model.iter().zip(&evals) {
                for (src, truth, pred) in &eval.wrong {
                    out!("{}: wrong: {src}: {truth} read as {pred:?}", path.display());
                }
            }
            out!("{:<40} {:>7} {:>9} {:>7} {:>7} {:>10}", "model", "images", "accuracy", "CER", "wrong", "agreement");
            for (path, (eval, agree)) in model.iter().zip(&evals) {
                out!(
                    "{:<40} {:>7} {:>8.2}% {:>7.4} {:>7} {:>9.2}%",
                    path.display(),
                    eval.images,
                    100.0 * eval.accuracy.sequence,
                    eval.accuracy.cer,
                    eval.wrong.len(),
                    100.0 * agree
                );
            }
            if let Some(path) = json {
                let report: Vec<_> = evals.iter().map(|(e, _)| e).collect();
                host_trainer::io::write_json(&path, &report)?;
            }
        }
        Command::Predict { model, images, json, beam } => {
            let readings = commands::predict(&model, &images, decoder(beam))?;
            let failed = readings.iter().filter(|(_, r)| r.is_err()).count();
            for (path, reading) in &readings {
                let shown = path.display().to_string();
                match (reading, json) {
                    (Ok(r), false) => out!("{shown}\t{}\t{:.4}", r.text, r.confidence),
                    (Ok(r), true) => out!(
                        "{}",
                        serde_json::json!({"path": shown, "text": r.text, "confidence": r.confidence, "chars": r.chars})
                    ),
                    (Err(e), false) => eprintln!("error: {e:#}"),
                    (Err(e), true) => out!("{}", serde_json::json!({"path": shown, "error": format!("{e:#}")})),
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} images could not be read", readings.len());
            }
        }
        Command::Inspect { model, json } => {
            let info = commands::inspect(&model)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                out!("{}", info.to_string().trim_end());
            }
        }
        Command::Generate { count, out, seed, sheet, alphabet, min_len, max_len, width, height, colour } => {
            let config = captcha_synth::Config {
                alphabet: &alphabet,
                min_len,
                max_len,
                width,
                height,
                ..captcha_synth::Config::default()
            };
            commands::generate(config, count as usize, seed, &out, sheet.as_deref(), colour)?
        }
        Command::Quantize { weights, data, out } => {
            let out = out.unwrap_or_else(|| weights.parent().map(PathBuf::from).unwrap_or_default());
            commands::quantize(&weights, data.as_deref(), &out)?;
        }
        Command::Export { weights, out } => {
            let out = out.unwrap_or_else(|| weights.parent().map(PathBuf::from).unwrap_or_default());
            commands::export(&weights, &out)?;
        }
    }
    Ok(())
}

fn on_bad(skip: bool) -> OnBad {
    if skip {
        OnBad::Skip
    } else {
        OnBad::Fail
    }
}
