//! Training end to end on a few hundred synthetic captchas: the loss falls, the saved model reloads to the
//! same outputs, and a run killed mid-epoch resumes to exactly the result of an uninterrupted run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use host_trainer::commands::{self, Source};
use host_trainer::data::{Colour, OnBad};
use host_trainer::model::Trained;
use host_trainer::train::Options;

const IMAGES: usize = 300;

/// libtorch's random generator is global to the process: tests that train take turns, so that each run
/// is the reproducible one its seed says.
static TRAINING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn options(epochs: usize) -> Options {
    Options { epochs, seed: 7, ..Default::default() }
}

/// The per-epoch losses recorded in a run's checkpoint.
fn losses(out: &Path) -> Vec<(f64, f64)> {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("checkpoint.json")).unwrap()).unwrap();
    json["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["loss"].as_f64().unwrap(), e["val_loss"].as_f64().unwrap()))
        .collect()
}

#[test]
fn trains_saves_reloads_and_resumes_after_a_kill() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let straight = tmp.path().join("straight");
    let source = Source::Synthetic { count: IMAGES };
    let metrics = commands::train(&source, &options(3), &straight, false, OnBad::Fail, Colour::Auto).unwrap();
    let history = losses(&straight);
    assert_eq!(history.len(), 3);
    assert!(history[2].0 < history[0].0, "training loss did not fall: {history:?}");
    for file in ["model.ot", "model.json", "model.crnn", "model.onnx", "curves.png", "predictions.png", "metrics.json"]
    {
        assert!(straight.join(file).is_file(), "{file} missing");
    }
    assert_eq!(metrics.parameters, 434_132, "the seed's architecture with 20 classes");
    // metrics.json lists exactly the device's (int8) wrong readings of the validation images.
    let right = metrics.core_infer_int8.sequence * metrics.val_images as f64;
    assert_eq!(metrics.wrong.len(), metrics.val_images - right.round() as usize);
    assert!(metrics.wrong.iter().all(|(_, truth, read)| truth != read), "{:?}", metrics.wrong);

    // The saved weights reload to the very same outputs.
    let data = Source::Synthetic { count: 8 }.load(99, OnBad::Fail, Colour::Auto, None).unwrap();
    let reloaded = Trained::load(&straight.join("model.ot")).unwrap();
    let again = Trained::load(&straight.join("model.ot")).unwrap();
    let a = reloaded.logits(&data.pixels, data.len());
    assert!(a.equal(&again.logits(&data.pixels, data.len())));
    // ...and the exported core-infer file reads what they read, also on faint copies (grey levels squeezed
    // into 90..170), which both stretch back: the default recipe stretches contrast, and both files say so.
    let codec = host_trainer::data::Codec::new(&reloaded.spec.alphabet);
    let bytes = std::fs::read(straight.join("model.crnn")).unwrap();
    let runner = host_trainer::infer::Runner::new(&bytes).unwrap();
    assert!(reloaded.spec.stretch_contrast);
    for file in ["model.crnn", "model-int8.crnn"] {
        let bytes = std::fs::read(straight.join(file)).unwrap();
        assert_eq!(core_infer::Model::parse(&bytes).unwrap().input(), core_infer::Input::Stretch, "{file}");
    }
    let mut faint = data.clone();
    faint.pixels.iter_mut().for_each(|p| *p = 90 + (u16::from(*p) * 80 / 255) as u8);
    for set in [&data, &faint] {
        let logits = reloaded.logits(&set.pixels, set.len());
        let read = runner.recognize_all(set).unwrap(); // one scratch per thread, not one per image
        for (i, path) in host_trainer::model::best_paths(&logits).iter().enumerate() {
            assert_eq!(read[i], codec.decode_path(path, usize::from(reloaded.spec.max_label_len)));
        }
    }

    // The same run as a process, killed with SIGKILL during its second epoch, then resumed.
    let killed = tmp.path().join("killed");
    let args = |resume: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_host-trainer"));
        c.args(["train", "--synthetic", &IMAGES.to_string(), "--epochs", "3", "--seed", "7", "--out"]).arg(&killed);
        if resume {
            c.arg("--resume");
        }
        c
    };
    let mut child = args(false).stderr(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while !killed.join("checkpoint.json").exists() {
        assert!(started.elapsed() < Duration::from_secs(300), "no checkpoint after 5 minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(700)); // into epoch 2
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before_kill = losses(&killed).len();
    assert!(done_before_kill < 3, "the run finished before it could be killed");
    let status = args(true).status().unwrap();
    assert!(status.success());
    assert_eq!(losses(&killed), history, "resumed run differs from the uninterrupted one");
}

#[test]
fn bad_folder_errors_name_the_file() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("abc.png"), b"\x89PNG broken").unwrap();
    let err = commands::train(
        &Source::Folder(tmp.path().into()),
        &options(1),
        &tmp.path().join("out"),
        false,
        OnBad::Fail,
        Colour::Auto,
    )
    .err()
    .unwrap();
    assert!(format!("{err:#}").contains("abc.png"), "{err:#}");

    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["eval", "--model"])
        .arg(tmp.path().join("missing.crnn"))
        .arg("--data")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.crnn") && !stderr.contains("panicked"), "{stderr}");

    // Folds 0-9 exist (10-fold cross-validation); asking for another is refused before any work.
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["train", "--synthetic", "10", "--fold", "10", "--out"])
        .arg(tmp.path().join("fold"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--fold"), "{stderr}");
    assert!(!tmp.path().join("fold").exists());
}

/// Synthetic captchas saved as red-on-green PNGs of equal luma (94): grayscale nearly erases them.
fn red_on_green(dir: &Path, count: usize) -> host_trainer::data::Dataset {
    let data = host_trainer::data::synthetic(captcha_synth::Config::default(), 5, 0, count).unwrap();
    let (h, w) = (data.height as u32, data.width as u32);
    for i in 0..data.len() {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            // paper (255) is green, ink (0) is red, mixed in between
            let v = u32::from(data.image(i)[(y * w + x) as usize]);
            let mix = |paper: u32, ink: u32| ((paper * v + ink * (255 - v) + 127) / 255) as u8;
            image::Rgb([mix(0, 255), mix(160, 30), mix(0, 0)])
        });
        img.save(dir.join(format!("{}_{i}.png", data.labels[i]))).unwrap();
    }
    data
}

#[test]
fn a_colour_folder_trains_a_colour_model_that_reads_rgb_on_every_path() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (images, out) = (tmp.path().join("images"), tmp.path().join("out"));
    std::fs::create_dir(&images).unwrap();
    red_on_green(&images, 48);
    // With the shortcut head: it trains, and is left out of what is saved.
    let opts = Options { aux_ctc: 0.5, ..options(1) };
    let metrics =
        commands::train(&Source::Folder(images.clone()), &opts, &out, false, OnBad::Fail, Colour::Auto).unwrap();
    // 200x50 images with 5-character labels shrink to the default 32 rows (128 columns: 25 per character)
    assert_eq!(metrics.image_size, [32, 128]);
    let model = Trained::load(&out.join("model.ot")).unwrap();
    assert!(model.spec.colour, "auto chose grey for captchas that grayscale erases");
    assert!(model.vs.variables().keys().all(|k| !k.starts_with("aux")), "the shortcut head was saved");
    assert_eq!(metrics.parameters, host_trainer::model::Crnn::parameter_count(&model.vs));
    for file in ["model.crnn", "model-int8.crnn"] {
        let bytes = std::fs::read(out.join(file)).unwrap();
        let m = core_infer::Model::parse(&bytes).unwrap();
        assert_eq!((m.input(), m.image_bytes()), (core_infer::Input::Ink, 3 * 32 * 128), "{file}");
    }
    // eval's loader gives RGB to a colour model, and core-infer (converting inside) reads what tch reads.
    let bytes = std::fs::read(out.join("model.crnn")).unwrap();
    let runner = host_trainer::infer::Runner::new(&bytes).unwrap();
    let data = host_trainer::infer::load_for(&runner, &images, OnBad::Fail).unwrap();
    assert!(data.colour && data.image(0).len() == 3 * 32 * 128);
    let codec = host_trainer::data::Codec::new(&model.spec.alphabet);
    let read = runner.recognize_all(&data).unwrap();
    for (i, path) in host_trainer::model::best_paths(&model.logits(&data.pixels, data.len())).iter().enumerate() {
        assert_eq!(read[i], codec.decode_path(path, usize::from(model.spec.max_label_len)), "{}", data.sources[i]);
    }
    // predict reads the files as RGB too, and --colour never trains the grey model instead.
    let file = std::path::PathBuf::from(&data.sources[0]);
    let predicted = commands::predict(&out.join("model-int8.crnn"), &[file], Default::default()).unwrap();
    assert!(predicted[0].1.is_ok(), "{:?}", predicted[0].1);
    let grey_out = tmp.path().join("grey");
    commands::train(&Source::Folder(images), &options(1), &grey_out, false, OnBad::Fail, Colour::Grey).unwrap();
    assert!(!Trained::load(&grey_out.join("model.ot")).unwrap().spec.colour);
}

#[test]
fn quantization_aware_fine_tuning_keeps_the_file_that_reads_what_it_reports() {
    let _turn = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path();
    let source = Source::Synthetic { count: IMAGES };
    let opts = Options { qat: host_trainer::train::Qat::Always, augment: false, ..options(3) };
    let metrics = commands::train(&source, &opts, out, false, OnBad::Fail, Colour::Auto).unwrap();
    let report = metrics.quantization_aware.as_ref().expect("--qat always fine-tunes");
    assert!(!report.history.is_empty() && report.history.len() <= host_trainer::train::qat::EPOCHS);

    // The validation split, rebuilt independently of the run (the same data, seed and split).
    let data = source.load(opts.seed, OnBad::Fail, Colour::Auto, opts.height).unwrap();
    let (_, val_idx) = host_trainer::data::split(data.len(), opts.val_fraction, opts.seed, 0).unwrap();
    let val = data.subset(&val_idx);
    let reads = |file: &str| {
        let bytes = std::fs::read(out.join(file)).unwrap();
        host_trainer::infer::evaluate(&host_trainer::infer::Runner::new(&bytes).unwrap(), &val).unwrap().0.accuracy
    };
    // The int8 file is the one the summary reports; the kept epoch is the best of those it reports.
    assert_eq!(reads("model-int8.crnn"), metrics.core_infer_int8);
    let best = report.history.iter().map(|e| e.int8.sequence).fold(report.post_training.sequence, f64::max);
    assert_eq!(metrics.core_infer_int8.sequence, best, "{report:?}");
    if report.best_epoch == 0 {
        assert_eq!(metrics.core_infer_int8, report.post_training);
        assert!(!out.join("model-qat.ot").exists() && !out.join("model-int8-post-training.crnn").exists());
    } else {
        // Post-training quantization's file is kept beside it and reads what the report says it read, and
        // the fine-tuned float weights reload.
        assert_eq!(reads("model-int8-post-training.crnn"), report.post_training);
        assert_eq!(metrics.core_infer_int8, report.history[report.best_epoch - 1].int8);
        Trained::load(&out.join("model-qat.ot")).unwrap();
    }
}
