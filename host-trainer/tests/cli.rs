//! The built `host-trainer` binary against hostile files and impossible options: every case must end
//! with its expected exit code (0 success, 1 an error, 2 a usage error from clap) and a message naming
//! the problem, never a panic (exit code 101, "panicked").

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the binary with `args`; returns its exit code and stderr.
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer")).args(args).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

/// A valid PNG whose header claims `w × h` pixels (a decompression bomb's header: 20000×20000 zeros
/// compress to about 400 KB; the header alone is enough to be refused).
fn huge_header_png(w: u32, h: u32) -> Vec<u8> {
    let mut bytes = png(image::DynamicImage::ImageLuma8(image::GrayImage::new(1, 1)));
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Dark "ink" on a transparent background: composited on white it reads like a normal captcha; with
/// alpha dropped it would be black on black.
fn transparent_png(w: u32, h: u32) -> Vec<u8> {
    png(image::DynamicImage::ImageRgba8(image::RgbaImage::from_fn(w, h, |x, y| {
        if (x / 7 + y / 5) % 3 == 0 {
            image::Rgba([20, 20, 20, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    })))
}

struct Fixtures {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixtures {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let write = |name: &str, bytes: &[u8]| {
            let path = root.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        let good = png(image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(200, 50, |x, y| {
            image::Luma([if (x / 9 + y / 6) % 4 == 0 { 40 } else { 230 }])
        })));
        write("img/empty.png", b"");
        write("img/text.png", b"this is not a picture\n");
        write("img/truncated.png", &good[..good.len() / 2]);
        let mut crc = good.clone();
        let at = crc.len() - 20; // inside the image data, before IEND
        crc[at] ^= 0xff;
        write("img/crc.png", &crc);
        write("img/one.png", &png(image::DynamicImage::ImageLuma8(image::GrayImage::new(1, 1))));
        write(
            "img/deep.png",
            &png(image::DynamicImage::ImageRgb16(image::ImageBuffer::from_pixel(
                200,
                50,
                image::Rgb([60000u16, 50000, 40000]),
            ))),
        );
        write("img/rgba.png", &transparent_png(200, 50));
        write("img/bomb.png", &huge_header_png(20_000, 20_000));
        write("img/good.png", &good);
        let model = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).unwrap();
        write("models/truncated.crnn", &model[..1000]);
        write(
            "models/random.crnn",
            &(0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>(),
        );
        write("models/picture.crnn", &good);
        std::fs::create_dir_all(root.join("empty-folder")).unwrap();
        write("bad-only/2b827.png", b"broken");
        write("bad-only/aaaaa.png", &good); // "a" is not in the model's alphabet
        write("one-image/2b827.png", &good);
        write("tiny/2b827.png", &png(image::DynamicImage::ImageLuma8(image::GrayImage::new(2, 2))));
        write("tiny/3c7de.png", &png(image::DynamicImage::ImageLuma8(image::GrayImage::new(2, 2))));
        // A model of another image size than the synthetic captchas (same weights: conv and LSTM do not
        // depend on the width), and calibration images of its size.
        let other = root.join("other-size");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::copy(workspace().join("models/synthetic/model.ot"), other.join("model.ot")).unwrap();
        let json = std::fs::read_to_string(workspace().join("models/synthetic/model.json")).unwrap();
        std::fs::write(other.join("model.json"), json.replace("\"width\": 200", "\"width\": 160")).unwrap();
        for label in ["2b827", "3c7de", "4d8ef", "5e2fg"] {
            write(
                &format!("cal-160/{label}.png"),
                &png(image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(160, 50, |x, _| {
                    image::Luma([(x * 3) as u8])
                }))),
            );
        }
        Fixtures { _dir: dir, root }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }
}

#[test]
fn no_case_panics_and_each_names_its_problem() {
    let f = Fixtures::new();
    let int8 = workspace().join("models/synthetic/model-int8.crnn").display().to_string();
    let weights = workspace().join("models/synthetic/model.ot").display().to_string();
    let p = |rel: &str| f.path(rel);
    let out = p("out");
    // (arguments, expected exit code, text the message must contain)
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/empty.png")], 1, "empty"),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/text.png")], 1, "text.png"),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/truncated.png")], 1, "truncated.png"),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/crc.png")], 1, "crc.png"),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/one.png")], 0, ""),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/deep.png")], 0, ""),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/rgba.png")], 0, ""),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/bomb.png")], 1, "8192"),
        (vec!["predict".into(), "--model".into(), int8.clone(), p("img/missing.png")], 1, "missing.png"),
        (vec!["predict".into(), "--model".into(), p("models/truncated.crnn"), p("img/good.png")], 1, "truncated.crnn"),
        (vec!["predict".into(), "--model".into(), p("models/random.crnn"), p("img/good.png")], 1, "random.crnn"),
        (vec!["predict".into(), "--model".into(), p("models/picture.crnn"), p("img/good.png")], 1, "picture.crnn"),
        (vec!["predict".into(), "--model".into(), weights.clone(), p("img/good.png")], 1, "model.ot"),
        (
            vec!["eval".into(), "--model".into(), int8.clone(), "--data".into(), p("no-such-folder")],
            1,
            "no such folder",
        ),
        (vec!["eval".into(), "--model".into(), int8.clone(), "--data".into(), p("empty-folder")], 1, "no images"),
        (vec!["eval".into(), "--model".into(), int8.clone(), "--data".into(), p("bad-only")], 1, "2b827.png"),
        (
            vec!["eval".into(), "--model".into(), int8.clone(), "--data".into(), p("bad-only"), "--skip-bad".into()],
            1,
            "skipped",
        ),
        (vec!["train".into(), "--batch-size".into(), "0".into(), "--out".into(), out.clone()], 2, "batch-size"),
        (vec!["train".into(), "--epochs".into(), "0".into(), "--out".into(), out.clone()], 2, "epochs"),
        (vec!["train".into(), "--lr=-1".into(), "--out".into(), out.clone()], 2, "positive"),
        (vec!["train".into(), "--lr".into(), "NaN".into(), "--out".into(), out.clone()], 2, "positive"),
        (vec!["train".into(), "--max-minutes".into(), "0".into(), "--out".into(), out.clone()], 2, "positive"),
        (vec!["train".into(), "--fold".into(), "10".into(), "--out".into(), out.clone()], 2, "fold"),
        (vec!["train".into(), "--height".into(), "5".into(), "--out".into(), out.clone()], 2, "height"),
        (vec!["train".into(), "--synthetic".into(), "1".into(), "--out".into(), out.clone()], 2, "synthetic"),
        (vec!["train".into(), "--data".into(), p("empty-folder"), "--out".into(), out.clone()], 1, "no images"),
        (vec!["train".into(), "--data".into(), p("one-image"), "--out".into(), out.clone()], 1, "at least 2 images"),
        (vec!["train".into(), "--data".into(), p("tiny"), "--out".into(), out.clone()], 1, "too small"),
        (
            vec!["train".into(), "--data".into(), p("empty-folder"), "--resume".into(), "--out".into(), out.clone()],
            1,
            "no images",
        ),
        (vec!["quantize".into(), "--weights".into(), p("no/model.ot")], 1, "model.json"),
        (
            vec!["quantize".into(), "--weights".into(), p("other-size/model.ot"), "--out".into(), out.clone()],
            1,
            "--data",
        ),
        (
            vec![
                "quantize".into(),
                "--weights".into(),
                p("other-size/model.ot"),
                "--data".into(),
                p("cal-160"),
                "--out".into(),
                out.clone(),
            ],
            0,
            "model-int8.crnn",
        ),
        (vec!["export".into(), "--weights".into(), p("no/model.ot")], 1, "model.json"),
        (vec!["generate".into(), "--count".into(), "0".into(), "--out".into(), out.clone()], 2, "count"),
        (
            vec![
                "generate".into(),
                "--min-len".into(),
                "6".into(),
                "--max-len".into(),
                "5".into(),
                "--out".into(),
                out.clone(),
            ],
            1,
            "len",
        ),
        (vec!["generate".into(), "--width".into(), "0".into(), "--out".into(), out.clone()], 1, "image size"),
        (vec!["generate".into(), "--alphabet".into(), "ab/".into(), "--out".into(), out.clone()], 1, "file name"),
        (vec!["no-such-command".into()], 2, "unrecognized"),
    ];
    let mut failures = Vec::new();
    println!("{:<4} {:<5} {:<5} case", "", "want", "got");
    for (args, want, needle) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stderr) = run(&argv);
        let shown = args.iter().map(|a| a.replace(&f.path(""), "")).collect::<Vec<_>>().join(" ");
        let ok = code == *want && stderr.contains(needle) && code != 101 && !stderr.contains("panicked");
        println!("{:<4} {want:<5} {code:<5} {shown}", if ok { "ok" } else { "FAIL" });
        if !ok {
            failures.push(format!("{shown}: exit {code} (want {want}, message with {needle:?}):\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn a_transparent_background_reads_as_white() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ab.png");
    std::fs::write(&path, transparent_png(40, 10)).unwrap();
    let gray = host_trainer::data::load_image(&path, 10, 40, false).unwrap();
    // The definition: transparent pixels are white paper, opaque ink keeps its luma.
    for (i, &v) in gray.iter().enumerate() {
        let (x, y) = (i % 40, i / 40);
        let want = if (x / 7 + y / 5) % 3 == 0 { 20 } else { 255 };
        assert_eq!(v, want, "pixel ({x}, {y})");
    }
}

/// The cumulative training seconds after each epoch of a run's `metrics.json`.
fn cumulative_seconds(metrics: &Path) -> Vec<f64> {
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(metrics).unwrap()).unwrap();
    let mut total = 0.0;
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            total += e["seconds"].as_f64().unwrap();
            total
        })
        .collect()
}

/// `--max-minutes` counts the minutes trained before an interruption: a resumed run stops after the
/// first epoch whose cumulative training time (the checkpoint's history included) crosses the budget,
/// exactly as an uninterrupted run with epochs of those durations would. (A run that restarted the
/// clock would train a whole budget more.)
#[test]
fn a_resumed_time_limited_run_ends_where_an_uninterrupted_one_would() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("run"));
    let (data_s, out_s) = (data.display().to_string(), out.display().to_string());
    let (code, err) = run(&["generate", "--count", "24", "--width", "64", "--height", "16", "--out", &data_s]);
    assert_eq!(code, 0, "{err}");
    // "Interrupted" after two epochs: a finished run leaves the same checkpoint as a killed one.
    let (code, err) = run(&["train", "--data", &data_s, "--epochs", "2", "--batch-size", "8", "--out", &out_s]);
    assert_eq!(code, 0, "{err}");
    let before = cumulative_seconds(&out.join("metrics.json"));
    assert_eq!(before.len(), 2);
    let budget_s = 1.5 * before[1];
    let budget = format!("{}", budget_s / 60.0);
    let (code, err) = run(&[
        "train",
        "--data",
        &data_s,
        "--epochs",
        "200",
        "--batch-size",
        "8",
        "--max-minutes",
        &budget,
        "--resume",
        "--out",
        &out_s,
    ]);
    assert_eq!(code, 0, "{err}");
    let after = cumulative_seconds(&out.join("metrics.json"));
    let n = after.len();
    assert!(n > 2 && n < 200, "{n} epochs");
    assert!(after[n - 2] <= budget_s && after[n - 1] > budget_s, "budget {budget_s:.2} s, cumulative {after:?}");
    assert!(err.contains("time limit"), "{err}");
}

/// Runs the binary; returns its exit code, stdout and stderr.
fn run_out(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-trainer")).args(args).output().expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn predict_reads_folders_and_globs_in_json_and_reports_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    let (code, _, err) = run_out(&["generate", "--count", "5", "--seed", "3", "--out", &imgs.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let labels: Vec<String> = std::fs::read_dir(&imgs)
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    // The same images as JPEG (a format the folder reader takes too) under a glob.
    let jpgs = dir.path().join("jpgs");
    std::fs::create_dir_all(&jpgs).unwrap();
    for l in &labels {
        image::open(imgs.join(format!("{l}.png"))).unwrap().to_rgb8().save(jpgs.join(format!("{l}.jpg"))).unwrap();
    }
    let model = workspace().join("models/synthetic/model-int8.crnn").display().to_string();
    let glob = format!("{}/*.jpg", jpgs.display());
    let missing = dir.path().join("missing.png").display().to_string();
    for beam in [None, Some("8")] {
        let mut args = vec!["predict", "--model", &model, "--json"];
        let imgs_s = imgs.display().to_string();
        args.extend([imgs_s.as_str(), glob.as_str(), missing.as_str()]);
        if let Some(w) = beam {
            args.extend(["--beam", w]);
        }
        let (code, out, err) = run_out(&args);
        assert_eq!(code, 1, "one of the images is missing: {err}");
        assert!(err.contains("1 of 11 images could not be read"), "{err}");
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 11, "{out}");
        let read: Vec<&serde_json::Value> = lines.iter().filter(|v| v.get("text").is_some()).collect();
        assert_eq!(read.len(), 10);
        for v in &read {
            let c = v["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&c), "{v}");
            let chars = v["chars"].as_array().unwrap();
            if beam.is_none() {
                assert_eq!(chars.len(), v["text"].as_str().unwrap().chars().count(), "{v}");
                let least = chars.iter().map(|p| p.as_f64().unwrap()).fold(1.0, f64::min);
                assert!((least - c).abs() < 1e-6, "{v}");
            }
        }
        // The shipped model reads its own synthetic captchas, PNG or JPEG.
        let right = read
            .iter()
            .filter(|v| {
                let path = v["path"].as_str().unwrap();
                let stem = Path::new(path).file_stem().unwrap().to_string_lossy().into_owned();
                v["text"].as_str() == Some(stem.as_str())
            })
            .count();
        assert!(right >= 8, "{right} of 10 read right: {out}");
        assert!(lines.last().unwrap()["error"].as_str().unwrap().contains("missing.png"));
    }
}

#[test]
fn inspect_describes_the_model_file() {
    let model = workspace().join("models/synthetic/model-int8.crnn");
    let (code, out, err) = run_out(&["inspect", "--json", &model.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    assert_eq!(v["file_bytes"].as_u64(), Some(bytes.len() as u64));
    let crc = crc32fast::hash(&bytes[..bytes.len() - 4]);
    assert_eq!(v["checksum"].as_str(), Some(format!("{crc:08x}").as_str()));
    assert_eq!(v["precision"], "int8");
    assert_eq!(v["alphabet"], "2345678bcdefgmnpwxy");
    // The seed's network: 67.7 M multiply-adds, counted by hand from its layer sizes.
    let by_hand: u64 = 50 * 200 * 32 * 9 + 25 * 100 * 64 * 9 * 32 - 100 * 64 * 9 * 32 // conv1; conv2 (pool drops its 25th row)
        + 50 * 64 * 768 // dense1
        + 2 * 50 * 4 * 128 * (64 + 128) + 2 * 50 * 4 * 64 * (256 + 64) // BiLSTMs
        + 50 * 20 * 128; // dense2
    assert_eq!(v["total_macs"].as_u64(), Some(by_hand));
    let (code, text, _) = run_out(&["inspect", &model.display().to_string()]);
    assert_eq!(code, 0);
    assert!(text.contains("scratch") && text.contains("conv2+pool"), "{text}");
}

/// `predict ... | head -1`: the reader closes the pipe; the binary must end quietly, not panic.
#[test]
fn a_closed_output_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs").display().to_string();
    assert_eq!(run(&["generate", "--count", "40", "--out", &imgs]).0, 0);
    let model = workspace().join("models/synthetic/model-int8.crnn").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-trainer"))
        .args(["predict", "--model", &model, &imgs])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the first line is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && out.status.code() != Some(101), "{stderr}");
}
