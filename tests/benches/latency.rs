//! Single-image latency of the shipped model, one thread: core-infer f32 and int8 (with every kernel the CPU
//! has, then capped at 256-bit registers, at AVX2 and at SSE2: `core_infer::kernels::limit`), tract-onnx on
//! the exported ONNX, and tch; and throughput on two threads, 64 images at a time (core-infer int8, one
//! `Model` shared).
//! It also writes the exported ONNX and the same images, converted as the model file says, to
//! `target/peers/` for ONNX Runtime (`tools/ort_bench.py`). `cargo bench -p equivalence-tests` (tools/bench.sh
//! runs both and tabulates the results).
//!
//! After criterion (on a plain `cargo bench`, no filter), a round-robin pass (`round_robin`) times the
//! same single-image runs taking turns, many rounds, and writes each one's fastest and median round to
//! `target/peers/latency.json`: on a shared machine criterion's means of two identical runs measured in
//! turn differed by 25% (2026-12-03), while runs that take turns see the same interference, so their
//! ratios hold (`tools/report.py bench` uses these figures where present).

use criterion::{criterion_group, Criterion};
use equivalence_tests::{shipped_model, synthetic_images, tract_plan, workspace};
use host_trainer::export::Weights;
use tract_onnx::prelude::*;

/// What both passes time: the shipped model (tch), its f32 and int8 model files, its size and the image.
struct Setup {
    model: host_trainer::model::Trained,
    weights: Weights,
    f32_bytes: Vec<u8>,
    int8_bytes: Vec<u8>,
    h: usize,
    w: usize,
    image: Vec<u8>,
}

fn setup() -> Setup {
    tch::set_num_threads(1);
    let model = shipped_model();
    let weights = Weights::from_tch(&model).expect("weights");
    let f32_bytes = weights.to_crnn_f32().expect("f32 model");
    let int8_bytes = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).expect("int8 model");
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let image = synthetic_images(1).image(0).to_vec();
    Setup { model, weights, f32_bytes, int8_bytes, h, w, image }
}

fn latency(c: &mut Criterion) {
    let Setup { model, weights, f32_bytes, int8_bytes, h, w, image } = setup();

    let mut group = c.benchmark_group("single image");
    group.sample_size(20);
    // Each precision with every kernel the CPU has, then capped at 256-bit registers, at AVX2 without VNNI,
    // and at SSE2.
    use core_infer::kernels::{limit, Level};
    for (level, suffix) in [
        (Level::Best, ""),
        (Level::Ymm, ", 256-bit only"),
        (Level::Avx2, ", AVX2 only"),
        (Level::Sse2, ", SSE2 only"),
    ] {
        limit(level);
        for (name, bytes) in [("core-infer f32", &f32_bytes), ("core-infer int8", &int8_bytes)] {
            let m = core_infer::Model::parse(bytes).expect("parse");
            let mut scratch = vec![0u8; m.scratch_bytes()];
            group.bench_function(format!("{name}{suffix}"), |b| {
                b.iter(|| m.recognize(std::hint::black_box(&image), &mut scratch).expect("run"))
            });
        }
    }
    limit(Level::Best);

    let onnx = weights.to_onnx().expect("onnx");
    write_peer_inputs(&model, &onnx);
    let plan = tract_plan(&onnx, h, w);
    let input: Tensor =
        tract_ndarray::Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| f32::from(image[y * w + x]) / 255.0).into();
    group.bench_function("tract-onnx f32", |b| b.iter(|| plan.run(tvec!(input.clone().into())).expect("run")));

    group.bench_function("tch f32", |b| b.iter(|| model.logits(std::hint::black_box(&image), 1)));
    group.finish();

    // 64 images on two threads, each with its own scratch, sharing one parsed model.
    let batch = synthetic_images(BATCH);
    let m = core_infer::Model::parse(&int8_bytes).expect("parse");
    let mut group = c.benchmark_group("throughput");
    group.sample_size(10);
    group.bench_function("core-infer int8, 64 images, 2 threads", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for half in [0..BATCH / 2, BATCH / 2..BATCH] {
                    let (m, batch) = (&m, &batch);
                    s.spawn(move || {
                        let mut scratch = vec![0u8; m.scratch_bytes()];
                        for i in half {
                            m.recognize(batch.image(i), &mut scratch).expect("run");
                        }
                    });
                }
            })
        })
    });
    group.finish();
}

/// The round-robin pass: every single-image run (SSE2 apart: 30x slower, it has its own few rounds) runs
/// `PER_TURN` times in each of `ROUNDS` rounds, taking turns; per run, its fastest and median round.
fn round_robin() {
    const ROUNDS: usize = 25;
    const PER_TURN: usize = 10;
    let Setup { model, weights, f32_bytes, int8_bytes, h, w, image } = setup();
    let onnx = weights.to_onnx().expect("onnx");
    let plan = tract_plan(&onnx, h, w);
    let input: Tensor =
        tract_ndarray::Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| f32::from(image[y * w + x]) / 255.0).into();

    use core_infer::kernels::{limit, Level};
    type Run<'a> = (String, Level, Box<dyn FnMut() + 'a>);
    let mut runs: Vec<Run> = Vec::new();
    for (precision, bytes) in [("f32", &f32_bytes), ("int8", &int8_bytes)] {
        for (level, suffix) in
            [(Level::Best, ""), (Level::Ymm, ", 256-bit only"), (Level::Avx2, ", AVX2 only"), (Level::Sse2, ", SSE2 only")]
        {
            let m = core_infer::Model::parse(bytes).expect("parse");
            let mut scratch = vec![0u8; m.scratch_bytes()];
            let image = &image;
            let run = move || {
                m.recognize(std::hint::black_box(image), &mut scratch).expect("run");
            };
            runs.push((format!("core-infer {precision}{suffix}"), level, Box::new(run)));
        }
    }
    runs.push(("tract-onnx f32".into(), Level::Best, Box::new(|| drop(plan.run(tvec!(input.clone().into()))))));
    runs.push(("tch f32".into(), Level::Best, Box::new(|| drop(model.logits(&image, 1)))));

    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    for round in 0..ROUNDS {
        for ((_, level, run), seconds) in runs.iter_mut().zip(&mut seconds) {
            let turns = if *level == Level::Sse2 { usize::from(round < 3) } else { PER_TURN };
            if turns == 0 {
                continue;
            }
            limit(*level);
            run(); // (warm: the previous turn was another run's)
            let start = std::time::Instant::now();
            for _ in 0..turns {
                run();
            }
            seconds.push(start.elapsed().as_secs_f64() / turns as f64);
        }
    }
    limit(Level::Best);
    let entries: Vec<String> = runs
        .iter()
        .zip(&mut seconds)
        .map(|((name, ..), s)| {
            s.sort_by(f64::total_cmp);
            let (min, median) = (s[0] * 1e3, s[s.len() / 2] * 1e3);
            println!("round robin: {name}: fastest {min:.3} ms, median {median:.3} ms ({} rounds)", s.len());
            format!(r#""{name}": {{"min_ms": {min:.4}, "median_ms": {median:.4}}}"#)
        })
        .collect();
    let path = workspace().join("target/peers/latency.json");
    std::fs::write(&path, format!("{{{}}}\n", entries.join(", "))).expect("latency.json");
}

/// Images per throughput run (and per ONNX Runtime batch).
const BATCH: usize = 64;

/// `target/peers/`: `model.onnx` and `images.f32`, [`BATCH`] test images (the first is the latency image)
/// as the network sees them (the model's input conversion applied, then / 255; little-endian f32,
/// `[BATCH, 1, H, W]`), with `shape.json`.
fn write_peer_inputs(model: &host_trainer::model::Trained, onnx: &[u8]) {
    let dir = workspace().join("target/peers");
    std::fs::create_dir_all(&dir).expect("target/peers");
    let data = synthetic_images(BATCH);
    let x = host_trainer::model::images_tensor(&model.spec, &data.pixels, BATCH);
    let values = Vec::<f32>::try_from(x.reshape([-1])).expect("floats");
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join("model.onnx"), onnx).expect("model.onnx");
    std::fs::write(dir.join("images.f32"), bytes).expect("images.f32");
    let shape = format!(r#"{{"n": {BATCH}, "h": {}, "w": {}}}"#, model.spec.height, model.spec.width);
    std::fs::write(dir.join("shape.json"), shape).expect("shape.json");
}

criterion_group!(benches, latency);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // (only on a plain `cargo bench`: a filter or `--profile-time` asks for some runs alone)
    if std::env::args().skip(1).all(|a| a == "--bench") {
        round_robin();
    }
}
