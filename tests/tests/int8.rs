//! The shipped int8 models against their float originals (the synthetic model on synthetic captchas, the
//! real-data model on the shared real captchas), and golden int8 outputs.
//!
//! Golden data: `tests/golden/int8.txt` holds, for the first 8 synthetic test captchas (generator seed 9001),
//! the text, the best class per step and the raw int8 scores that core-infer computes with
//! `models/synthetic/model-int8.crnn`. The firmware must print the same. Regenerate it (after changing the
//! model or the int8 kernels, on purpose) with:
//!
//! ```sh
//! RECORD_GOLDEN=1 cargo test --release -p equivalence-tests --test int8 golden
//! ```

use equivalence_tests::{real_data_model, real_images, shipped_model, synthetic_images, workspace};
use host_trainer::data::Dataset;
use host_trainer::export::Weights;
use host_trainer::model::Trained;

/// Largest difference allowed between dequantized int8 scores and f32 logits, in logit units, over every
/// step and class of every image. The shipped model's logits span -11.5..18.4, so one int8 step of the
/// output is 0.117; the worst case measured (the test prints it) is 2.28 on 500 synthetic captchas, where
/// errors of the LSTMs' 8-bit hidden states add up over 50 steps. 3.0 is that with a margin: far below the
/// gaps that decide the decoded text (which must agree anyway, see the assertion above it).
const SCORE_TOLERANCE: f32 = 3.0;

fn shipped_int8() -> Vec<u8> {
    std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).expect("models/synthetic/model-int8.crnn")
}

#[test]
fn shipped_int8_model_is_what_the_quantizer_makes() {
    let model = shipped_model();
    let weights = Weights::from_tch(&model).unwrap();
    let calibration = host_trainer::data::synthetic(captcha_synth::Config::default(), 42, 0, 256).unwrap();
    let cal = host_trainer::quantize::calibrate(&model, &calibration.pixels, calibration.len()).unwrap();
    let fresh = host_trainer::quantize::quantize(&weights, &cal).unwrap();
    let shipped = shipped_int8();
    assert!(shipped.len() <= 445_000, "int8 model is {} bytes", shipped.len());
    same_quantization(&fresh, &shipped);
    let parsed = core_infer::Model::parse(&fresh).unwrap();
    assert_eq!(parsed.precision(), core_infer::Precision::Int8);
    eprintln!(
        "int8 model: {} bytes (shipped {}), scratch {} bytes",
        fresh.len(),
        shipped.len(),
        parsed.scratch_bytes()
    );
}

/// `fresh` is `shipped` up to the float noise of calibration: libtorch's float kernels differ by CPU
/// (the shipped file was made on another machine), which moves the calibrated activation ranges in their
/// last bits. So: the same tensors (names, dtypes, shapes, order); the int8 weights and the i16 tables, which
/// depend on model.ot alone, byte for byte; everything derived from activation ranges (biases, zero points,
/// requantization multipliers, the output scale) within 0.1% (zero points within 1).
fn same_quantization(fresh: &[u8], shipped: &[u8]) {
    use core_infer::format::{le::Le, DType, ModelFile, TensorRef};
    let (a, b) = (ModelFile::parse(fresh).unwrap(), ModelFile::parse(shipped).unwrap());
    assert_eq!((a.precision, a.arch, a.alphabet), (b.precision, b.arch, b.alphabet));
    let names = |f: &ModelFile| f.tensors().map(|t| (t.name.to_vec(), t.dtype, t.shape().to_vec())).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "tensor tables differ");
    let i32s = |t: &TensorRef| Le::<i32>::new(t.data).from(0).collect::<Vec<_>>();
    // mult · 2^shift, the real multiplier a mult/shift pair stands for
    let multiplier = |f: &ModelFile, t: &TensorRef| -> Vec<f64> {
        let name = std::str::from_utf8(t.name).unwrap().replace("mult", "shift");
        let shift = f.tensors().find(|s| s.name == name.as_bytes()).unwrap();
        i32s(t).iter().zip(i32s(shift)).map(|(&m, s)| f64::from(m) * 2f64.powi(s - 31)).collect()
    };
    let close = |x: f64, y: f64, abs: f64| (x - y).abs() <= abs.max(1e-3 * x.abs().max(y.abs()));
    for (x, y) in a.tensors().zip(b.tensors()) {
        let name = std::str::from_utf8(x.name).unwrap();
        match x.dtype {
            DType::I8 | DType::I16 => assert!(x.data == y.data, "{name}: weights or tables differ"),
            DType::F32 => {
                let (p, q) = (Le::<f32>::new(x.data).get(0), Le::<f32>::new(y.data).get(0));
                assert!(close(f64::from(p), f64::from(q), 0.0), "{name}: {p} vs {q}");
            }
            DType::I32 if name.contains(".shift") => {} // compared with its multiplier
            DType::I32 if name.contains(".mult") => {
                for (p, q) in multiplier(&a, x).into_iter().zip(multiplier(&b, y)) {
                    assert!(close(p, q, 0.0), "{name}: multiplier {p} vs {q}");
                }
            }
            DType::I32 => {
                let tolerance = if name.ends_with(".zp") { 1.0 } else { 2.0 };
                for (p, q) in i32s(x).into_iter().zip(i32s(y)) {
                    assert!(close(f64::from(p), f64::from(q), tolerance), "{name}: {p} vs {q}");
                }
            }
        }
    }
}

#[test]
fn int8_reads_what_f32_reads_on_synthetic_captchas() {
    agreement("synthetic", &shipped_model(), &shipped_int8(), &synthetic_images(500));
}

/// The model trained on the shared real captchas, on all 936 of them (the synthetic model cannot read
/// real captchas, so agreement on them would say little).
#[test]
fn int8_reads_what_f32_reads_on_real_captchas() {
    let (model, int8) = real_data_model();
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    if let Some(data) = real_images(h, w) {
        agreement("real", &model, &int8, &data);
    }
}

/// Runs `data` through the f32 export of `model` and through `int8`: decoded texts agree on at least 99% of
/// the images, scores within [`SCORE_TOLERANCE`].
fn agreement(name: &str, model: &Trained, int8_bytes: &[u8], data: &Dataset) {
    let f32_bytes = Weights::from_tch(model).unwrap().to_crnn_f32().unwrap();
    let (m32, m8) = (core_infer::Model::parse(&f32_bytes).unwrap(), core_infer::Model::parse(int8_bytes).unwrap());
    let mut s32 = vec![0u8; m32.scratch_bytes()];
    let mut s8 = vec![0u8; m8.scratch_bytes()];
    let (mut agree, mut right32, mut right8, mut max_diff) = (0, 0, 0, 0f32);
    for i in 0..data.len() {
        let a = m32.run(data.image(i), &mut s32).unwrap();
        let b = m8.run(data.image(i), &mut s8).unwrap();
        for t in 0..a.steps() {
            for k in 0..a.classes() {
                max_diff = max_diff.max((a.get(t, k) - b.get(t, k)).abs());
            }
        }
        let (ta, tb) = (m32.decode(&a), m8.decode(&b));
        agree += usize::from(ta == tb);
        right32 += usize::from(ta.as_str() == data.labels[i]);
        right8 += usize::from(tb.as_str() == data.labels[i]);
    }
    let n = data.len() as f64;
    eprintln!(
        "{name}: {} images; f32 {:.2}%, int8 {:.2}%, agreement {:.2}%, max |score diff| {max_diff:.3}",
        data.len(),
        100.0 * right32 as f64 / n,
        100.0 * right8 as f64 / n,
        100.0 * agree as f64 / n
    );
    assert!(agree as f64 >= 0.99 * n, "{name}: f32 and int8 agree on only {agree} of {n}");
    assert!(max_diff <= SCORE_TOLERANCE, "{name}: score difference {max_diff} above {SCORE_TOLERANCE}");
}

/// One line per image: `index text path raw-scores-hex`.
fn golden_lines() -> String {
    let bytes = shipped_int8();
    let model = core_infer::Model::parse(&bytes).unwrap();
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let data = synthetic_images(8);
    let mut out = String::from("# index label predicted best-path raw-int8-scores(hex, steps x classes)\n");
    for i in 0..data.len() {
        let scores = model.run(data.image(i), &mut scratch).unwrap();
        let path: Vec<String> = scores.best_path().map(|k| k.to_string()).collect();
        let raw: String = scores.raw_i8().unwrap().iter().map(|v| format!("{:02x}", *v as u8)).collect();
        let text = model.decode(&scores);
        out += &format!("{i} {} {} {} {raw}\n", data.labels[i], text.as_str(), path.join(","));
    }
    out
}

#[test]
fn golden_int8_outputs() {
    let path = workspace().join("tests/golden/int8.txt");
    let now = golden_lines();
    if std::env::var_os("RECORD_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &now).unwrap();
        eprintln!("recorded {}", path.display());
    }
    let golden = std::fs::read_to_string(&path).expect("tests/golden/int8.txt (see the module docs to record it)");
    assert_eq!(now, golden, "int8 outputs changed; if on purpose, re-record (module docs)");
}

/// The whole int8 kernel set (conv, pool, dense, LSTM, tables) against the f32 kernels on small networks
/// with random weights and random images. The error has an absolute floor: the LSTM output is quantized
/// in steps of 1/127 (≈ 0.008), so dequantized scores must stay within 0.02 of the f32 logits.
#[test]
fn int8_kernels_follow_f32_on_random_networks() {
    use core_infer::Arch;
    use host_trainer::model::{Spec, Trained};
    let arch =
        Arch { height: 16, width: 32, conv1: 4, conv2: 8, dense1: 8, lstm1: 8, lstm2: 6, classes: 5, max_label_len: 4 };
    for seed in 0..4 {
        tch::manual_seed(seed);
        let model = Trained::new(Spec::new(arch, "abcd"));
        let weights = Weights::from_tch(&model).unwrap();
        // random images: uniform noise, some smooth structure (a gradient) so activations vary
        let mut state = seed as u64 + 1;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        };
        let n = 64;
        let pixels: Vec<u8> = (0..n * 16 * 32).map(|i| rand() / 2 + ((i % 32) * 4) as u8).collect();
        let cal = host_trainer::quantize::calibrate(&model, &pixels, n).unwrap();
        let (b32, b8) = (weights.to_crnn_f32().unwrap(), host_trainer::quantize::quantize(&weights, &cal).unwrap());
        let (m32, m8) = (core_infer::Model::parse(&b32).unwrap(), core_infer::Model::parse(&b8).unwrap());
        let (mut s32, mut s8) = (vec![0u8; m32.scratch_bytes()], vec![0u8; m8.scratch_bytes()]);
        let range = f64::from(cal.dense2.max - cal.dense2.min) as f32;
        let mut max_diff = 0f32;
        for img in pixels.chunks_exact(16 * 32) {
            let (a, b) = (m32.run(img, &mut s32).unwrap(), m8.run(img, &mut s8).unwrap());
            for t in 0..a.steps() {
                for k in 0..a.classes() {
                    max_diff = max_diff.max((a.get(t, k) - b.get(t, k)).abs());
                }
            }
        }
        eprintln!(
            "seed {seed}: logit range {range:.3}, max |f32 - int8| {max_diff:.4} ({:.2}%)",
            100.0 * max_diff / range
        );
        assert!(max_diff <= 0.02, "seed {seed}: {max_diff} (logit range {range})");
    }
}
