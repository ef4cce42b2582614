//! Quantization-aware fine-tuning: when post-training quantization reads more than [`TRIGGER`] fewer
//! validation captchas than the float model, `train` fine-tunes the (batch-norm-folded) float model for a
//! few epochs with the int8 rounding simulated in the forward pass, and keeps the epoch whose int8 model
//! file, run through core-infer, reads the validation split best.
//!
//! Simulated ("fake quantization": rounded in the forward pass, the gradient passed straight through as
//! if nothing were rounded): every weight matrix rounded as [`crate::quantize`] rounds it (symmetric
//! int8, one scale per output channel, per gate for the LSTMs), and every activation core-infer stores
//! as int8 rounded to its calibrated grid: conv1, conv2 and dense1 after ReLU, each LSTM's output
//! sequence (1/127 steps) and the logits. The ranges are recalibrated at the start of every epoch, as
//! the final quantization will calibrate them. As in training, a moving average of the weights is what
//! is judged and kept. Not simulated: the state inside an LSTM layer (its
//! hidden state between steps, the Q3.12 gates, the sigmoid and tanh tables), which stays float; the
//! selection by core-infer's own int8 reading makes up for what the simulation leaves out.

use std::collections::HashMap;
use std::time::Instant;

use tch::Tensor;

use super::optim::{copy_all, Adam, Ema};
use super::stopping::reads_better;
use super::{batch_tensors, epoch_seed, named_params, Options};
use crate::data::{Accuracy, Codec, Dataset};
use crate::export::Weights;
use crate::infer::{self, Runner};
use crate::model::{sequence_dropout, Crnn, Trained, DENSE_DROPOUT, LSTM_DROPOUT};
use crate::quantize::{self, Act, Calibration, HIDDEN};

/// Fine-tune when int8 reads more than this fraction of the validation images fewer than f32.
pub const TRIGGER: f64 = 0.005;
/// Most fine-tuning epochs.
pub const EPOCHS: usize = 8;
/// Fine-tuning ends after this many epochs without a better int8 model.
const PATIENCE: usize = 3;
/// The fine-tuning's learning rate as a fraction of training's: small steps near the trained weights.
const LR_FRACTION: f64 = 0.03;
/// The weights judged and kept are a moving average with this decay per batch, as training's are
/// (see `Ema`), started at the trained weights; without it, the last batch's noise costs more than the
/// simulation buys.
const EMA_DECAY: f64 = 0.99;

/// One fine-tuning epoch: its training loss (with rounding simulated) and what its int8 file reads.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QatEpoch {
    pub epoch: usize,
    pub loss: f64,
    /// Validation through core-infer's int8.
    pub int8: Accuracy,
    pub seconds: f64,
}

/// What fine-tuning did (`metrics.json`'s `quantization_aware`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Validation through core-infer's int8 before fine-tuning: post-training quantization's figure.
    pub post_training: Accuracy,
    /// The epoch whose int8 model was kept; 0: none read better than post-training quantization's, which
    /// is kept.
    pub best_epoch: usize,
    pub history: Vec<QatEpoch>,
    pub seconds: f64,
}

/// What [`fine_tune`] returns: its report, and the fine-tuned float model with its int8 file if one read
/// better than post-training quantization's.
pub struct Outcome {
    pub report: Report,
    pub tuned: Option<(Trained, Vec<u8>)>,
}

/// The int8 file of `model` (calibrated on `train`, as `train` quantizes) and its reading of `val`
/// through core-infer.
pub fn int8_accuracy(model: &Trained, train: &Dataset, val: &Dataset) -> anyhow::Result<(Vec<u8>, Accuracy)> {
    let weights = Weights::from_tch(model)?;
    let (bytes, _) = quantize::int8_model(model, &weights, train)?;
    let accuracy = infer::evaluate(&Runner::new(&bytes)?, val)?.0.accuracy;
    Ok((bytes, accuracy))
}

/// Fine-tunes a copy of `model` (without batch norms, as [`Trained::fold_batch_norm`] gives it) with
/// quantization in the loop, on `train` (augmented as training was), judging each epoch by its int8 file
/// on `val`. Given `until` (the float model's reading of `val`), stops once int8 reads as well.
pub fn fine_tune(
    model: &Trained,
    train: &Dataset,
    val: &Dataset,
    opts: &Options,
    until: Option<Accuracy>,
    post_training: Accuracy,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let spec = model.spec.clone();
    let tuned = Trained::new(spec.clone());
    tuned.copy_weights_from(model);
    let params = named_params(&tuned);
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let vars: HashMap<String, Tensor> = params.into_iter().collect();
    let mut adam = Adam::new(&tensors, opts.learning_rate * LR_FRACTION);
    let mut ema = Ema::new(EMA_DECAY, &tensors);
    let codec = Codec::new(&spec.alphabet);
    let targets: Vec<Vec<i64>> = train.labels.iter().map(|l| codec.encode(l).unwrap_or_default()).collect();
    let (calibration_pixels, calibration_images) = quantize::calibration_images(train);

    let (mut best, mut best_epoch) = (post_training, 0);
    let mut kept: Option<(Vec<Tensor>, Vec<u8>)> = None;
    let mut history = Vec::new();
    for epoch in 1..=EPOCHS {
        if epoch - best_epoch > PATIENCE || until.is_some_and(|float| !reads_better(&float, &best)) {
            break;
        }
        let t0 = Instant::now();
        let ranges = quantize::calibrate(&tuned, calibration_pixels, calibration_images)?;
        // A seed of its own, so the fine-tuning's batches are not training's first epochs again.
        let seed = epoch_seed(opts.seed ^ 0x5141_5400, epoch);
        let mut order: Vec<usize> = (0..train.len()).collect();
        crate::data::shuffle(&mut order, seed);
        tch::manual_seed(seed as i64);
        let mut rng = oorandom::Rand64::new(u128::from(seed));
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for batch in order.chunks(opts.batch_size) {
            if super::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
                anyhow::bail!(
                    "interrupted during quantization-aware fine-tuning: the trained model and post-training \
                     quantization's int8 file are written, metrics.json is not (the same `train` with --resume \
                     finishes from the checkpoint, with --qat never without the fine-tuning)"
                );
            }
            let rng = opts.augment.then_some(&mut rng);
            let (x, y, lens) = batch_tensors(&spec, train, &targets, batch, rng, tuned.vs.device());
            let loss = Crnn::ctc_loss(&forward(&vars, &ranges, &x, true), &y, &lens);
            loss.backward();
            adam.step(&tensors);
            // No warm-up (an average that starts from random weights needs it; this one starts trained).
            ema.update(&tensors, i64::MAX / 2);
            loss_sum += loss.double_value(&[]) * batch.len() as f64;
            seen += batch.len();
        }
        let (bytes, int8) = ema.with_average(&tensors, || int8_accuracy(&tuned, train, val))?;
        let stats = QatEpoch { epoch, loss: loss_sum / seen.max(1) as f64, int8, seconds: t0.elapsed().as_secs_f64() };
        let improved = reads_better(&int8, &best);
        eprintln!(
            "quantization-aware epoch {epoch}: loss {:.4}  int8 val_acc {:>6.2}%  val_cer {:.4}  {:.1}s{}",
            stats.loss,
            100.0 * int8.sequence,
            int8.cer,
            stats.seconds,
            if improved { "  *best" } else { "" }
        );
        if improved {
            (best, best_epoch) = (int8, epoch);
            match &mut kept {
                Some((weights, file)) => {
                    copy_all(weights, &ema.avg);
                    *file = bytes;
                }
                None => kept = Some((ema.avg.iter().map(|t| t.detach().copy()).collect(), bytes)),
            }
        }
        history.push(stats);
    }
    let tuned = kept.map(|(weights, bytes)| {
        copy_all(&tensors, &weights);
        (tuned, bytes)
    });
    let report = Report { post_training, best_epoch, history, seconds: started.elapsed().as_secs_f64() };
    Ok(Outcome { report, tuned })
}

/// Logits `[N, T, classes]` of images `[N, 1, H, W]` with int8 rounding simulated (see the module docs);
/// `vars` are the seed network's parameters under tch's names.
pub fn forward(vars: &HashMap<String, Tensor>, ranges: &Calibration, images: &Tensor, train: bool) -> Tensor {
    let v = |name: &str| &vars[name];
    let weight = |layer: &str| {
        let w = v(&format!("{layer}.weight"));
        fake_weight(w, w.size()[0])
    };
    let conv = |x: &Tensor, layer: &str| {
        x.conv2d(&weight(layer), Some(v(&format!("{layer}.bias"))), [1, 1], [1, 1], [1, 1], 1)
    };
    let c1 = fake_act(&conv(images, "conv1").relu(), Act::from_range(ranges.conv1)).max_pool2d_default(2);
    let c2 = fake_act(&conv(&c1, "conv2").relu(), Act::from_range(ranges.conv2)).max_pool2d_default(2);
    let (n, t) = (c2.size()[0], c2.size()[3]);
    let x = c2.permute([0, 3, 2, 1]).reshape([n, t, -1]).linear(&weight("dense1"), Some(v("dense1.bias")));
    let x = fake_act(&x.relu(), Act::from_range(ranges.dense1)).dropout(DENSE_DROPOUT, train);
    let x = fake_act(&lstm(vars, "lstm1", &sequence_dropout(&x, LSTM_DROPOUT, train), train), HIDDEN);
    let x = fake_act(&lstm(vars, "lstm2", &sequence_dropout(&x, LSTM_DROPOUT, train), train), HIDDEN);
    fake_act(&x.linear(&weight("dense2"), Some(v("dense2.bias"))), Act::from_range(ranges.dense2))
}

/// A bidirectional LSTM layer `[N, T, in]` → `[N, T, 2·hidden]` over fake-quantized weights (one scale per
/// gate, as the quantizer's).
fn lstm(vars: &HashMap<String, Tensor>, layer: &str, x: &Tensor, train: bool) -> Tensor {
    let mut params = Vec::with_capacity(8);
    for suffix in ["l0", "l0_reverse"] {
        let v = |what: &str| &vars[&format!("{layer}.{what}_{suffix}")];
        params.push(fake_weight(v("weight_ih"), 4));
        params.push(fake_weight(v("weight_hh"), 4));
        params.push(v("bias_ih").shallow_clone());
        params.push(v("bias_hh").shallow_clone());
    }
    let hidden = vars[&format!("{layer}.weight_hh_l0")].size()[1];
    let zeros = Tensor::zeros([2, x.size()[0], hidden], (tch::Kind::Float, x.device()));
    let (out, _, _) = x.lstm(&[zeros.shallow_clone(), zeros], &params, true, 1, 0.0, train, true, true);
    out
}

/// `w` rounded as the quantizer rounds it: symmetric int8 with one scale (its largest magnitude / 127) per
/// group of `groups` equal consecutive parts; the gradient passes straight through.
pub fn fake_weight(w: &Tensor, groups: i64) -> Tensor {
    let flat = w.reshape([groups, -1]);
    let scale = (flat.abs().amax([1], true) / 127.0).clamp_min(1e-12).detach();
    let rounded = (&flat / &scale).round().clamp(-127.0, 127.0) * &scale;
    (&flat + (rounded - &flat).detach()).reshape(w.size())
}

/// `x` on the int8 grid of `a` (`real = scale · (q − zp)`, q clamped to −128..=127); the gradient passes
/// straight through.
fn fake_act(x: &Tensor, a: Act) -> Tensor {
    let zp = f64::from(a.zp);
    let q = ((x / a.scale).round() + zp).clamp(-128.0, 127.0);
    x + ((q - zp) * a.scale - x).detach()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{seed_arch, Spec};
    use tch::Kind;

    #[test]
    fn weights_round_as_the_quantizer_rounds_them() {
        tch::manual_seed(5);
        let w = Tensor::randn([8, 3, 3, 5], (Kind::Float, tch::Device::Cpu));
        let data: Vec<f32> = Vec::try_from(w.reshape([-1])).unwrap();
        let (q, scales) = quantize::quantize_groups(&data, data.len() / 8);
        let expected: Vec<f32> =
            q.iter().enumerate().map(|(i, &q)| (f64::from(q) * scales[i / (data.len() / 8)]) as f32).collect();
        let got: Vec<f32> = Vec::try_from(fake_weight(&w, 8).reshape([-1])).unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-6 * e.abs().max(1.0), "{g} vs {e}");
        }
    }

    #[test]
    fn rounding_passes_the_gradient_straight_through() {
        let x = Tensor::from_slice(&[0.013f32, 0.5, -0.2]).set_requires_grad(true);
        let y = fake_act(&x, HIDDEN);
        let values: Vec<f32> = Vec::try_from(&y).unwrap();
        assert_eq!(values, [2.0 / 127.0, 64.0 / 127.0, -25.0 / 127.0]);
        y.sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(x.grad()).unwrap(), [1.0, 1.0, 1.0]);
    }

    /// The simulation is what it claims to be: its logits are nearer core-infer's int8 scores than the
    /// float network's are.
    #[test]
    fn the_simulated_logits_are_nearer_the_int8_scores_than_the_float_ones() {
        tch::manual_seed(11);
        let model = Trained::new(Spec { stretch_contrast: true, ..Spec::new(seed_arch(16, 48, 5, 4), "abcd") });
        let n = 6;
        let pixels: Vec<u8> = (0..n * 16 * 48).map(|i| ((i * 37 + i / 48 * 11) % 256) as u8).collect();
        let images = crate::model::images_tensor(&model.spec, &pixels, n);
        let ranges = quantize::calibrate(&model, &pixels, n).unwrap();
        let weights = Weights::from_tch(&model).unwrap();
        let int8 = quantize::quantize(&weights, &ranges).unwrap();
        let device = core_infer::Model::parse(&int8).unwrap();
        let mut scratch = vec![0u8; device.scratch_bytes()];
        let vars: HashMap<String, Tensor> = model.vs.variables().into_iter().collect();
        let (fake, float) =
            tch::no_grad(|| (forward(&vars, &ranges, &images, false), model.net.forward_t(&images, false)));
        let (mut fake_err, mut float_err) = (0f64, 0f64);
        for i in 0..n {
            let scores = device.run(&pixels[i * 16 * 48..(i + 1) * 16 * 48], &mut scratch).unwrap();
            for t in 0..scores.steps() {
                for k in 0..scores.classes() {
                    let d = f64::from(scores.get(t, k));
                    fake_err += (fake.double_value(&[i as i64, t as i64, k as i64]) - d).abs();
                    float_err += (float.double_value(&[i as i64, t as i64, k as i64]) - d).abs();
                }
            }
        }
        eprintln!("summed |logit − int8 score|: simulated {fake_err:.3}, float {float_err:.3}");
        assert!(fake_err < float_err, "simulated {fake_err} vs float {float_err}");
    }
}
