//! The x86-64 kernel levels give the same scores: the shipped models run with every kernel the CPU has,
//! then capped at AVX2 (no VNNI) and at SSE2 (`core_infer::kernels::limit`, which the latency bench uses to
//! measure each level). int8 must be bit-identical at every level (the device's scores are the host's);
//! f32 may differ by rounding (FMA against separate multiply and add), within 1e-4. Its own test binary:
//! the limit is process-wide.
#![cfg(target_arch = "x86_64")]

use core_infer::kernels::{limit, Level};
use equivalence_tests::{shipped_model, synthetic_images, workspace};
use host_trainer::data::Dataset;
use host_trainer::export::Weights;

/// Every image's scores (`steps × classes`, as real numbers) and raw int8 scores, at `level`.
fn scores(bytes: &[u8], images: &Dataset, level: Level) -> Vec<(Vec<f32>, Vec<i8>)> {
    limit(level);
    let m = core_infer::Model::parse(bytes).expect("parse");
    let mut scratch = vec![0u8; m.scratch_bytes()];
    let out = (0..images.labels.len())
        .map(|i| {
            let s = m.run(images.image(i), &mut scratch).expect("run");
            let real = (0..s.steps()).flat_map(|t| (0..s.classes()).map(move |k| s.get(t, k))).collect();
            (real, s.raw_i8().unwrap_or(&[]).to_vec())
        })
        .collect();
    limit(Level::Best);
    out
}

#[test]
fn every_level_gives_the_same_scores() {
    let images = synthetic_images(4);
    let int8 = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).expect("int8 model");
    let f32 = Weights::from_tch(&shipped_model()).expect("weights").to_crnn_f32().expect("f32 model");
    let (best8, best32) = (scores(&int8, &images, Level::Best), scores(&f32, &images, Level::Best));
    assert!(best8.iter().all(|(_, raw)| !raw.is_empty()), "the int8 model gave no raw scores");
    for level in [Level::Ymm, Level::Avx2, Level::Sse2] {
        let got = scores(&int8, &images, level);
        assert!(got.iter().zip(&best8).all(|(a, b)| a.1 == b.1), "int8 scores at {level:?} differ from the best level's");
        let got = scores(&f32, &images, level);
        for (a, b) in got.iter().zip(&best32) {
            let worst = a.0.iter().zip(&b.0).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max);
            assert!(worst <= 1e-4, "f32 logits at {level:?} differ from the best level's by {worst}");
        }
        // Proof that the limit switched kernels: on a CPU with AVX2 and FMA, the SSE2 level's f32 logits
        // (separate multiply and add) are not all bit-identical with the FMA kernels'.
        if level == Level::Sse2 && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            assert!(got.iter().zip(&best32).any(|(a, b)| a.0 != b.0), "the SSE2 limit left the f32 logits unchanged");
        }
    }
}
