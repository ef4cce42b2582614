//! tch (the trainer's float model) vs core-infer f32 vs tract-onnx on the exported ONNX, on the shipped
//! model: class scores within 1e-4 and identical decoded strings.

use equivalence_tests::{real_images, shipped_model, synthetic_images, tract_runner};
use host_trainer::data::{Codec, Dataset};
use host_trainer::export::Weights;
use host_trainer::model::{best_paths, Trained};

const TOLERANCE: f32 = 1e-4;

/// tch logits of `data` as `[image][step][class]`.
fn tch_logits(model: &Trained, data: &Dataset) -> Vec<Vec<Vec<f32>>> {
    Vec::<Vec<Vec<f32>>>::try_from(model.logits(&data.pixels, data.len())).expect("logits to Vec")
}

#[test]
fn core_infer_f32_matches_tch_on_synthetic_and_real_images() {
    let model = shipped_model();
    let bytes = Weights::from_tch(&model).unwrap().to_crnn_f32().unwrap();
    let runtime = core_infer::Model::parse(&bytes).unwrap();
    let mut scratch = vec![0u8; runtime.scratch_bytes()];
    eprintln!("f32 model file: {} bytes, scratch {} bytes", bytes.len(), runtime.scratch_bytes());
    let codec = Codec::new(&model.spec.alphabet);
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let max_len = usize::from(model.spec.max_label_len);

    let mut sets = vec![("synthetic", synthetic_images(100))];
    sets.extend(real_images(h, w).map(|d| ("real", d)));
    for (name, data) in sets {
        let logits = tch_logits(&model, &data);
        let paths = best_paths(&model.logits(&data.pixels, data.len()));
        let mut max_diff = 0f32;
        let mut same_text = 0;
        for i in 0..data.len() {
            let scores = runtime.run(data.image(i), &mut scratch).unwrap();
            assert_eq!((scores.steps(), scores.classes()), (logits[i].len(), logits[i][0].len()));
            for (t, row) in logits[i].iter().enumerate() {
                for (k, &v) in row.iter().enumerate() {
                    max_diff = max_diff.max((scores.get(t, k) - v).abs());
                }
            }
            let text = runtime.decode(&scores);
            assert_eq!(
                text.as_str(),
                codec.decode_path(&paths[i], max_len),
                "{}: decoded text differs",
                data.sources[i]
            );
            same_text += usize::from(text.as_str() == data.labels[i]);
        }
        eprintln!("{name}: {} images, max |tch - core-infer| = {max_diff:.2e}, {same_text} read right", data.len());
        assert!(max_diff <= TOLERANCE, "{name}: max difference {max_diff} above {TOLERANCE}");
    }
}

#[test]
fn tract_onnx_matches_tch() {
    let model = shipped_model();
    let onnx = Weights::from_tch(&model).unwrap().to_onnx().unwrap();
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let tract = tract_runner(&onnx, h, w, model.spec.input());
    let data = synthetic_images(20);
    let logits = tch_logits(&model, &data);
    let mut max_diff = 0f32;
    for (i, image_logits) in logits.iter().enumerate() {
        let out = tract(data.image(i));
        let tch: Vec<f32> = image_logits.iter().flatten().copied().collect();
        assert_eq!(out.len(), tch.len(), "steps × classes");
        for (a, b) in out.iter().zip(&tch) {
            max_diff = max_diff.max((a - b).abs());
        }
    }
    eprintln!("max |tch - tract| = {max_diff:.2e} over {} images", data.len());
    assert!(max_diff <= TOLERANCE, "max difference {max_diff} above {TOLERANCE}");
}
