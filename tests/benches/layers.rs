//! Where the host's time goes: each stage of the network (conv1+pool, conv2+pool, dense1, the four LSTM
//! directions, dense2) timed by criterion, for both precisions, one thread, the shipped model on one test
//! image. `Model::run_probed` tells a probe where each stage ends; the probe reads the clock there and
//! keeps the time of the stage being measured (`iter_custom`: criterion gets that stage's time over its
//! iterations, not the whole inference's). A stage that ends many times per inference (the front end
//! streams along the width) pays a clock read (some 20 ns) each time. `tools/report.py layers` turns the
//! estimates into GMAC/s per stage with `Stage::macs` (written to `target/criterion/layers-macs.json`).
//! `cargo bench -p equivalence-tests --bench layers` (tools/bench.sh runs it); `LEVEL=ymm` (or `avx2`,
//! `sse2`) in the environment caps the x86-64 kernels as `kernels::limit` does, to compare one stage's
//! kernels (`LEVEL=ymm cargo bench ... --bench layers -- 'int8 conv2'`; criterion's `change` line then
//! compares with the previous run).

use std::time::{Duration, Instant};

use core_infer::{Probe, Stage};
use criterion::{criterion_group, criterion_main, Criterion};
use equivalence_tests::{shipped_model, synthetic_images, workspace};
use host_trainer::export::Weights;

/// The time of one stage, summed over runs.
struct StageClock {
    stage: Stage,
    last: Instant,
    spent: Duration,
}

impl Probe for StageClock {
    fn done(&mut self, stage: Stage) {
        let now = Instant::now();
        if stage == self.stage {
            self.spent += now - self.last;
        }
        self.last = now;
    }
}

fn layers(c: &mut Criterion) {
    let model = shipped_model();
    let f32_bytes = Weights::from_tch(&model).expect("weights").to_crnn_f32().expect("f32 model");
    let int8_bytes = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).expect("int8 model");
    let data = synthetic_images(1);
    let image = data.image(0).to_vec();

    use core_infer::kernels::{limit, Level};
    match std::env::var("LEVEL").as_deref() {
        Ok("ymm") => limit(Level::Ymm),
        Ok("avx2") => limit(Level::Avx2),
        Ok("sse2") => limit(Level::Sse2),
        Ok("best") | Err(_) => {}
        Ok(other) => panic!("LEVEL={other}: expected best, ymm, avx2 or sse2"),
    }

    let mut macs = Vec::new();
    let mut group = c.benchmark_group("layers");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for (precision, bytes) in [("f32", &f32_bytes), ("int8", &int8_bytes)] {
        let m = core_infer::Model::parse(bytes).expect("parse");
        let mut scratch = vec![0u8; m.scratch_bytes()];
        for stage in Stage::ALL.into_iter().filter(|&s| s != Stage::Input) {
            let name = format!("{precision} {}", stage.name());
            macs.push(format!(r#""{name}": {}"#, stage.macs(m.arch())));
            group.bench_function(&name, |b| {
                b.iter_custom(|iters| {
                    let mut clock = StageClock { stage, last: Instant::now(), spent: Duration::ZERO };
                    for _ in 0..iters {
                        clock.last = Instant::now();
                        m.run_probed(std::hint::black_box(&image), &mut scratch, &mut clock).expect("run");
                    }
                    clock.spent
                })
            });
        }
    }
    group.finish();
    let path = workspace().join("target/criterion/layers-macs.json");
    std::fs::write(&path, format!("{{{}}}\n", macs.join(", "))).expect("layers-macs.json");
}

criterion_group!(benches, layers);
criterion_main!(benches);
