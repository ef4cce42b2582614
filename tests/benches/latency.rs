//! Single-image latency of the shipped model, one thread: core-infer f32 and int8, tract-onnx on the exported
//! ONNX, and tch. `cargo bench -p equivalence-tests` (tools/bench.sh runs it and tabulates the results).

use criterion::{criterion_group, criterion_main, Criterion};
use equivalence_tests::{shipped_model, synthetic_images, workspace};
use host_trainer::export::Weights;
use tract_onnx::prelude::*;

fn latency(c: &mut Criterion) {
    tch::set_num_threads(1);
    let model = shipped_model();
    let weights = Weights::from_tch(&model).expect("weights");
    let f32_bytes = weights.to_crnn_f32().expect("f32 model");
    let int8_bytes = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).expect("int8 model");
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let data = synthetic_images(1);
    let image = data.image(0).to_vec();

    let mut group = c.benchmark_group("single image");
    group.sample_size(20);
    for (name, bytes) in [("core-infer f32", &f32_bytes), ("core-infer int8", &int8_bytes)] {
        let m = core_infer::Model::parse(bytes).expect("parse");
        let mut scratch = vec![0u8; m.scratch_bytes()];
        group
            .bench_function(name, |b| b.iter(|| m.recognize(std::hint::black_box(&image), &mut scratch).expect("run")));
    }

    let onnx = weights.to_onnx().expect("onnx");
    let plan = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, h, w]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract plan");
    let input: Tensor =
        tract_ndarray::Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| f32::from(image[y * w + x]) / 255.0).into();
    group.bench_function("tract-onnx f32", |b| b.iter(|| plan.run(tvec!(input.clone().into())).expect("run")));

    group.bench_function("tch f32", |b| b.iter(|| model.logits(std::hint::black_box(&image), 1)));
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
