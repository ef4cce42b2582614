//! The contrast stretch a model file may ask for (`core_infer::Input::Stretch`) is applied the same way by
//! tch (training), core-infer f32 and int8 (inside `Model::run`) and tract-onnx (fed converted images): on
//! faint captchas (ink and background squeezed into 90..170), where stretching changes what the network sees.

use core_infer::{format, Input, Model};
use equivalence_tests::{shipped_model, synthetic_images, tract_runner, workspace};
use host_trainer::data::Dataset;
use host_trainer::export::Weights;
use host_trainer::model::{best_paths, Trained};

/// Synthetic captchas with their grey levels squeezed into 90..=170 (faint ink on a grey background).
fn faint_images(count: usize) -> Dataset {
    let mut data = synthetic_images(count);
    for p in &mut data.pixels {
        *p = 90 + (u16::from(*p) * 80 / 255) as u8;
    }
    data
}

/// `bytes` with the header's input field set to `input` and the checksum redone.
fn with_input(bytes: &[u8], input: Input) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[34..36].copy_from_slice(&(input as u16).to_le_bytes());
    let n = b.len() - 4;
    let crc = format::checksum(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The shipped model as a contrast-stretching one (same weights).
fn stretching_model() -> Trained {
    let mut model = shipped_model();
    model.spec.stretch_contrast = true;
    model
}

fn raw_scores(model: &Model, pixels: &[u8]) -> Vec<f32> {
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let scores = model.run(pixels, &mut scratch).unwrap();
    (0..scores.steps())
        .flat_map(|t| (0..scores.classes()).map(move |k| (t, k)))
        .map(|(t, k)| scores.get(t, k))
        .collect()
}

#[test]
fn core_infer_stretches_inside_run_in_both_precisions() {
    let f32_file = Weights::from_tch(&shipped_model()).unwrap().to_crnn_f32().unwrap();
    let int8_file = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).unwrap();
    let data = faint_images(12);
    for (name, file) in [("f32", f32_file), ("int8", int8_file)] {
        // the same weights, once reading pixels as they are and once stretching them
        let (plain, stretching) = (with_input(&file, Input::Plain), with_input(&file, Input::Stretch));
        let (plain, stretching) = (Model::parse(&plain).unwrap(), Model::parse(&stretching).unwrap());
        assert_eq!((plain.input(), stretching.input()), (Input::Plain, Input::Stretch));
        let mut changed = 0;
        for i in 0..data.len() {
            let mut converted = data.image(i).to_vec();
            Input::Stretch.apply(&mut converted);
            let inside = raw_scores(&stretching, data.image(i));
            // bit for bit what a plain model computes on the converted image
            assert_eq!(inside, raw_scores(&plain, &converted), "{name}: {}", data.sources[i]);
            changed += usize::from(inside != raw_scores(&plain, data.image(i)));
        }
        assert_eq!(changed, data.len(), "{name}: the stretch changed nothing on faint images");
    }
}

#[test]
fn tch_core_infer_and_tract_agree_on_a_stretching_model() {
    let model = stretching_model();
    let weights = Weights::from_tch(&model).unwrap();
    let runtime_bytes = weights.to_crnn_f32().unwrap();
    let runtime = Model::parse(&runtime_bytes).unwrap();
    assert_eq!(runtime.input(), Input::Stretch, "the exported file records the stretch");
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let tract = tract_runner(&weights.to_onnx().unwrap(), h, w, Input::Stretch);
    let data = faint_images(10);
    // tch gets the images as they are and converts them itself, as in training
    let logits = Vec::<Vec<Vec<f32>>>::try_from(model.logits(&data.pixels, data.len())).unwrap();
    let paths = best_paths(&model.logits(&data.pixels, data.len()));
    let codec = host_trainer::data::Codec::new(&model.spec.alphabet);
    let (mut vs_core, mut vs_tract) = (0f32, 0f32);
    for i in 0..data.len() {
        let core = raw_scores(&runtime, data.image(i));
        let onnx = tract(data.image(i));
        let tch: Vec<f32> = logits[i].iter().flatten().copied().collect();
        assert_eq!((core.len(), onnx.len()), (tch.len(), tch.len()));
        for ((a, b), c) in tch.iter().zip(&core).zip(&onnx) {
            vs_core = vs_core.max((a - b).abs());
            vs_tract = vs_tract.max((a - c).abs());
        }
        let mut scratch = vec![0u8; runtime.scratch_bytes()];
        let text = runtime.recognize(data.image(i), &mut scratch).unwrap();
        assert_eq!(text.as_str(), codec.decode_path(&paths[i], usize::from(model.spec.max_label_len)));
    }
    eprintln!("faint images: max |tch - core-infer| = {vs_core:.2e}, max |tch - tract| = {vs_tract:.2e}");
    assert!(vs_core <= 1e-4 && vs_tract <= 1e-4, "tch vs core-infer {vs_core}, vs tract {vs_tract}");
}
