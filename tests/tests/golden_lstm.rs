//! A golden test with small hand-made weights: pins the LSTM gate order (i, f, g, o), bias folding
//! (`b_ih + b_hh`), the bidirectional output order (forward half first) and the CTC blank (class 0).
//!
//! The network is the CRNN at its smallest: a 4×8 image, one channel everywhere, hidden size 1, classes
//! {blank, 'a'}. The convolutions only pass their biases on, so dense1 feeds the LSTMs 0.75 at both time
//! steps; from there a scalar reference written out below computes the expected logits. Its values were
//! cross-checked with an independent Python transcription (`tests/golden_lstm.py`).

use core_infer::format::ModelWriter;
use core_infer::{Arch, Precision};
use host_trainer::data::Codec;
use host_trainer::export::Weights;
use host_trainer::model::{best_paths, Spec, Trained};

/// One direction's parameters, gates named.
struct Dir {
    w_ih: [[f32; 2]; 4], // [gate][input]; LSTM1 uses input 0 only
    w_hh: [f32; 4],
    b_ih: [f32; 4],
    b_hh: [f32; 4],
}
const I: usize = 0;
const F: usize = 1;
const G: usize = 2;
const O: usize = 3;

fn lstm1() -> [Dir; 2] {
    [
        Dir {
            w_ih: [[0.1, 0.0], [0.2, 0.0], [0.3, 0.0], [0.4, 0.0]],
            w_hh: [0.5, -0.6, 0.7, -0.8],
            b_ih: [0.01, 0.02, 0.03, 0.04],
            b_hh: [0.1, 0.2, -0.3, 0.4],
        },
        Dir {
            w_ih: [[-0.4, 0.0], [0.3, 0.0], [-0.2, 0.0], [0.1, 0.0]],
            w_hh: [-0.5, 0.6, -0.7, 0.8],
            b_ih: [0.05, -0.06, 0.07, -0.08],
            b_hh: [-0.2, 0.1, 0.3, 0.2],
        },
    ]
}
fn lstm2() -> [Dir; 2] {
    [
        Dir {
            w_ih: [[0.9, -0.8], [0.7, 0.6], [-1.5, 1.4], [0.3, -0.2]],
            w_hh: [1.1, -1.2, 1.3, -1.4],
            b_ih: [0.1, 0.0, 0.2, 0.0],
            b_hh: [0.0, 0.3, 0.0, -0.1],
        },
        Dir {
            w_ih: [[-0.6, 0.5], [0.4, -0.3], [1.2, -1.1], [0.2, 0.1]],
            w_hh: [0.9, -0.8, -1.7, 0.6],
            b_ih: [0.0, 0.1, -0.1, 0.2],
            b_hh: [0.3, 0.0, 0.0, 0.0],
        },
    ]
}
const DENSE2_W: [[f32; 2]; 2] = [[0.0, 0.0], [40.0, 0.0]];
const DENSE2_B: [f32; 2] = [0.0, -4.0];
const X: f32 = 0.75; // dense1: relu(0.5 · 1 + 0.25)

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The textbook LSTM, one direction over `xs`, in f64.
fn reference_direction(d: &Dir, xs: &[[f64; 2]], reverse: bool) -> Vec<f64> {
    let (mut h, mut c) = (0.0, 0.0);
    let mut out = vec![0.0; xs.len()];
    let order: Vec<usize> = if reverse { (0..xs.len()).rev().collect() } else { (0..xs.len()).collect() };
    for t in order {
        let z = |g: usize| {
            f64::from(d.w_ih[g][0]) * xs[t][0]
                + f64::from(d.w_ih[g][1]) * xs[t][1]
                + f64::from(d.w_hh[g]) * h
                + f64::from(d.b_ih[g])
                + f64::from(d.b_hh[g])
        };
        c = sigmoid(z(F)) * c + sigmoid(z(I)) * z(G).tanh();
        h = sigmoid(z(O)) * c.tanh();
        out[t] = h;
    }
    out
}

fn reference_logits() -> Vec<[f64; 2]> {
    let x = [[f64::from(X), 0.0]; 2];
    let bi = |dirs: &[Dir; 2], xs: &[[f64; 2]]| -> Vec<[f64; 2]> {
        let (f, b) = (reference_direction(&dirs[0], xs, false), reference_direction(&dirs[1], xs, true));
        f.into_iter().zip(b).map(|(f, b)| [f, b]).collect()
    };
    let y2 = bi(&lstm2(), &bi(&lstm1(), &x));
    y2.iter()
        .map(|y| {
            let k =
                |k: usize| f64::from(DENSE2_W[k][0]) * y[0] + f64::from(DENSE2_W[k][1]) * y[1] + f64::from(DENSE2_B[k]);
            [k(0), k(1)]
        })
        .collect()
}

fn arch() -> Arch {
    Arch { height: 4, width: 8, conv1: 1, conv2: 1, dense1: 1, lstm1: 1, lstm2: 1, classes: 2, max_label_len: 1 }
}

/// core-infer's file written by hand, biases folded here.
fn hand_written_model() -> Vec<u8> {
    let mut w = ModelWriter::new(Precision::F32, arch(), "a");
    w.add_f32("conv1.weight", &[1, 3, 3, 1], &[0.0; 9]).add_f32("conv1.bias", &[1], &[1.0]);
    w.add_f32("conv2.weight", &[1, 3, 3, 1], &[0.0; 9]).add_f32("conv2.bias", &[1], &[1.0]);
    w.add_f32("dense1.weight", &[1, 1], &[0.5]).add_f32("dense1.bias", &[1], &[0.25]);
    for (layer, dirs, n_in) in [("lstm1", lstm1(), 1), ("lstm2", lstm2(), 2)] {
        for (name, d) in ["fwd", "bwd"].iter().zip(&dirs) {
            let w_ih: Vec<f32> = d.w_ih.iter().flat_map(|row| row[..n_in].to_vec()).collect();
            let bias: Vec<f32> = (0..4).map(|g| d.b_ih[g] + d.b_hh[g]).collect();
            w.add_f32(&format!("{layer}.{name}.w_ih"), &[4, n_in], &w_ih);
            w.add_f32(&format!("{layer}.{name}.w_hh"), &[4, 1], &d.w_hh);
            w.add_f32(&format!("{layer}.{name}.bias"), &[4], &bias);
        }
    }
    w.add_f32("dense2.weight", &[2, 2], DENSE2_W.as_flattened()).add_f32("dense2.bias", &[2], &DENSE2_B);
    w.finish().unwrap()
}

/// The same network in tch, with PyTorch's separate `b_ih` and `b_hh`.
fn tch_model() -> Trained {
    let model = Trained::new(Spec::new(arch(), "a"));
    let vars = model.vs.variables();
    let set = |name: &str, v: &[f32]| {
        let t = &vars[name];
        tch::no_grad(|| t.shallow_clone().copy_(&tch::Tensor::from_slice(v).view(t.size().as_slice())));
    };
    set("conv1.weight", &[0.0; 9]);
    set("conv1.bias", &[1.0]);
    set("conv2.weight", &[0.0; 9]);
    set("conv2.bias", &[1.0]);
    set("dense1.weight", &[0.5]);
    set("dense1.bias", &[0.25]);
    for (layer, dirs, n_in) in [("lstm1", lstm1(), 1), ("lstm2", lstm2(), 2)] {
        for (suffix, d) in ["", "_reverse"].iter().zip(&dirs) {
            let w_ih: Vec<f32> = d.w_ih.iter().flat_map(|row| row[..n_in].to_vec()).collect();
            set(&format!("{layer}.weight_ih_l0{suffix}"), &w_ih);
            set(&format!("{layer}.weight_hh_l0{suffix}"), &d.w_hh);
            set(&format!("{layer}.bias_ih_l0{suffix}"), &d.b_ih);
            set(&format!("{layer}.bias_hh_l0{suffix}"), &d.b_hh);
        }
    }
    set("dense2.weight", DENSE2_W.as_flattened());
    set("dense2.bias", &DENSE2_B);
    model
}

const IMAGE: [u8; 32] = [0; 32]; // the convolutions ignore the pixels

#[test]
fn reference_reads_blank_then_a() {
    // The weights were chosen so that the best path is [blank, 'a']: a wrong blank index reads "" or "aa".
    let r = reference_logits();
    assert!(r[0][0] > r[0][1] && r[1][1] > r[1][0], "{r:?}");
}

#[test]
fn core_infer_matches_the_reference() {
    let expected = reference_logits();
    for (how, bytes) in [
        ("hand-written", hand_written_model()),
        ("exported from tch", {
            let w = Weights::from_tch(&tch_model()).unwrap();
            w.to_crnn_f32().unwrap()
        }),
    ] {
        let model = core_infer::Model::parse(&bytes).unwrap();
        let mut scratch = vec![0u8; model.scratch_bytes()];
        let scores = model.run(&IMAGE, &mut scratch).unwrap();
        for (t, row) in expected.iter().enumerate() {
            for (k, &v) in row.iter().enumerate() {
                let got = f64::from(scores.get(t, k));
                assert!((got - v).abs() < 1e-5, "{how}: step {t} class {k}: {got} vs reference {v}");
            }
        }
        assert_eq!(model.decode(&scores).as_str(), "a", "{how}");
    }
}

#[test]
fn tch_matches_the_reference() {
    let model = tch_model();
    let logits = model.logits(&IMAGE, 1);
    let got = Vec::<Vec<Vec<f32>>>::try_from(&logits).unwrap();
    for (t, row) in reference_logits().iter().enumerate() {
        for (k, &v) in row.iter().enumerate() {
            assert!((f64::from(got[0][t][k]) - v).abs() < 1e-5, "step {t} class {k}: {} vs {v}", got[0][t][k]);
        }
    }
    assert_eq!(Codec::new("a").decode_path(&best_paths(&logits)[0], 1), "a");
}
