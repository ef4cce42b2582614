//! The int8 kernels on the host, over conv2-sized rows (288 weights), 1 and 4 input columns:
//! - one row: the SIMD kernel this build uses (SSE2 on x86-64) against the portable reference;
//! - four rows: `dot_rows` (the AVX2 four-row kernel on CPUs that have it) against four portable calls;
//! - four rows of 1 and 2 columns prepared as unsigned bytes (`dot_prepared`: AVX-VNNI `vpdpbusd` on CPUs
//!   that have it, else the same i16 block as `dot_rows`), as the LSTMs use them on x86-64.
//!
//! `cargo bench -p equivalence-tests --bench kernels`.

use core_infer::block::{block_len, put, zero_tail};
use core_infer::kernels::{dot_block, dot_block_portable, dot_prepared, dot_rows, prepare, LANES};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn kernels(c: &mut Criterion) {
    const K: usize = 288;
    let w: Vec<u8> = (0..4 * K).map(|i| (i * 37 % 251) as u8).collect();
    let x: Vec<i8> = (0..K).map(|i| (i * 91 % 255) as i8).collect();
    let mut group = c.benchmark_group("int8 block kernel, 288 weights");
    for cols in [1, 4] {
        let mut block = vec![0i16; block_len(K, cols)];
        zero_tail(&mut block, cols, K, LANES);
        for col in 0..cols {
            put(&mut block, cols, col, 0, &x, LANES, |a| i16::from(a) + 128);
        }
        group.bench_function(format!("{cols} column(s), this build's kernel"), |b| {
            b.iter(|| {
                let mut acc = [0i32; 4];
                dot_block(black_box(&w), K, black_box(&block), &mut acc[..cols]);
                acc
            })
        });
        group.bench_function(format!("{cols} column(s), portable"), |b| {
            b.iter(|| {
                let mut acc = [0i32; 4];
                dot_block_portable(black_box(&w), K, black_box(&block), &mut acc[..cols]);
                acc
            })
        });
        group.bench_function(format!("4 rows x {cols} column(s), dot_rows"), |b| {
            b.iter(|| {
                let mut acc = [[0i32; 4]; 4];
                dot_rows(black_box(&w), K, black_box(&block), cols, &mut acc);
                acc
            })
        });
        group.bench_function(format!("4 rows x {cols} column(s), portable"), |b| {
            b.iter(|| {
                let mut acc = [[0i32; 4]; 4];
                for (r, acc) in acc.iter_mut().enumerate() {
                    dot_block_portable(black_box(&w[r * K..]), K, black_box(&block), &mut acc[..cols]);
                }
                acc
            })
        });
    }
    for cols in [1, 2] {
        let mut block = vec![0i16; block_len(K, cols)];
        let columns = vec![&x[..]; cols];
        let prepared = prepare(&mut block, K, &columns, -128).expect("block");
        group.bench_function(format!("4 rows x {cols} column(s), dot_prepared"), |b| {
            b.iter(|| {
                let mut acc = [[0i32; 4]; 4];
                dot_prepared(black_box(&w), K, black_box(&prepared), cols, &mut acc);
                acc
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
