//! The training loop: the seed's recipe (Adam, batch 16, 90/10 split, early stopping on validation loss
//! restoring the best weights), with a checkpoint after every epoch so an interrupted run resumes exactly.
//!
//! Reproducibility: the split, each epoch's batch order and each epoch's dropout masks derive from the seed
//! and the epoch number alone, and the checkpoint holds the weights, Adam's moments and the best weights so
//! far. A resumed run therefore continues as if it had never stopped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tch::Tensor;

use crate::data::{accuracy, folds, split, Accuracy, Codec, Dataset};
use crate::model::{best_paths, images_tensor, Crnn, Spec, Trained};

mod align;
mod checkpoint;
pub mod init;
mod optim;
pub mod qat;
mod stopping;

pub use checkpoint::checkpoint_paths;
use checkpoint::{fingerprint, save_checkpoint, State};
pub use init::Init;
use optim::{copy_all, Adam, Ema};
use stopping::lower_lr;
pub use stopping::{early_stop, first_reading, time_limit_reached, PLATEAU_CER, PLATEAU_PATIENCE};

/// Set by the Ctrl-C handler; the loop stops at the next batch and keeps the last finished epoch.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How to train. `Default` is the seed's recipe plus training-time batch norm, the contrast stretch, the
/// weights' moving average and the shortcut head, with batches of 8 (the seed: 16) at a learning rate of
/// 3e-3 (the seed: 1e-3), starting from the pretrained weights where they fit ([`init`]): see the
/// README's "The model" for what each buys.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Options {
    pub epochs: usize,
    pub batch_size: usize,
    /// Epochs without a better validation epoch ([`stopping::better`]) before stopping.
    pub patience: usize,
    pub seed: u64,
    pub learning_rate: f64,
    /// Stop after the epoch that crosses this many minutes.
    pub max_minutes: Option<f64>,
    /// Fraction of the data held out for validation.
    pub val_fraction: f64,
    /// Which block of `val_fraction` of the shuffled data validates (see [`crate::data::split`]); 0 is
    /// the seed's split. Absent from checkpoints written before the option existed, which used fold 0.
    #[serde(default)]
    pub fold: usize,
    /// Train with batch norm after conv1, conv2 and dense1, folded away when training ends (see
    /// [`crate::model`]). Off is the seed's recipe to the letter.
    pub batch_norm: bool,
    /// Warp each training image by a random affine map each epoch (see [`augment`]), from the epoch after
    /// the model first reads something.
    pub augment: bool,
    /// Halve the learning rate after this many epochs without a better validation loss (Keras's
    /// ReduceLROnPlateau); 0 keeps it constant, as the seed does.
    pub lr_patience: usize,
    /// Stretch each image's contrast before the network (see [`core_infer::Input`]); off is the seed's
    /// conversion. Absent from checkpoints written before the option existed, which trained without it.
    #[serde(default)]
    pub stretch_contrast: bool,
    /// Validate, keep and save an exponential moving average of the weights (this decay per batch) rather
    /// than the weights themselves; 0 keeps the weights (the seed's recipe). See [`Ema`]. Absent from
    /// checkpoints written before the option existed, which trained without it.
    #[serde(default)]
    pub ema: f64,
    /// Weight of the shortcut head's CTC loss (dense1 straight to class scores, see
    /// [`crate::model::Crnn::forward_train`]) added to the network's; 0: no head. The head only trains: the
    /// saved model is the seed's network. Absent from checkpoints written before the option existed.
    #[serde(default)]
    pub aux_ctc: f64,
    /// The alignment warm-up ([`align`]): while the model reads nothing, for at most this many epochs, a
    /// cross-entropy toward the label laid out evenly over the image's ink joins the CTC loss; 0: never.
    /// Absent from checkpoints written before the option existed, which trained without it.
    #[serde(default)]
    pub align_epochs: usize,
    /// A folder's images taller than this are shrunk to this many rows when loaded (their aspect ratio
    /// kept); `None`: their own size. Read by [`crate::commands::train`]'s loading, not by the training
    /// loop. Absent from older checkpoints (which trained at the images' own size).
    #[serde(default)]
    pub height: Option<usize>,
    /// Judge epochs (the one kept, what early stopping waits for) by the validation loss alone, the seed's
    /// rule, instead of by what they read ([`stopping::better`]). Absent from older checkpoints (which
    /// judged by the loss: resumed, they judge by accuracy unless this is set).
    #[serde(default)]
    pub select_by_loss: bool,
    /// When to fine-tune with quantization in the loop ([`qat`]) after training. Read by
    /// [`crate::commands::train`] after the training loop. Absent from older checkpoints: [`Qat::Auto`].
    #[serde(default)]
    pub qat: Qat,
    /// The weights training starts from ([`init`]). Absent from older checkpoints, which started fresh
    /// (a resumed run takes the checkpoint's weights anyway).
    #[serde(default)]
    pub init: Init,
}

/// When `train` fine-tunes with quantization in the loop ([`qat`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Qat {
    /// When post-training quantization reads more than [`qat::TRIGGER`] fewer validation captchas than f32;
    /// the fine-tuning then ends once int8 reads as well as f32.
    #[default]
    Auto,
    /// Always, for as long as it improves.
    Always,
    /// Never: post-training quantization's int8 model is kept.
    Never,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            epochs: 100,
            batch_size: 8,
            patience: 10,
            seed: 42,
            learning_rate: 3e-3,
            max_minutes: None,
            val_fraction: 0.1,
            fold: 0,
            batch_norm: true,
            augment: true,
            lr_patience: 0,
            stretch_contrast: true,
            ema: 0.99,
            aux_ctc: 0.5,
            align_epochs: 10,
            height: Some(DEFAULT_HEIGHT),
            select_by_loss: false,
            qat: Qat::Auto,
            init: Init::Auto,
        }
    }
}

/// Rows a folder's taller images are shrunk to by default. At 32 rows the two 3×3 convolutions and 2×2
/// pools see a quarter of a typical glyph's height at once instead of a sixth (at 64 rows), and an epoch
/// takes 2.4x fewer multiply-adds than at 50: measured (README, training), the 256×64 many-font style left
/// the CTC plateau at epoch 7 instead of never, and the real captchas reached their best in 11 s instead
/// of 56.
pub const DEFAULT_HEIGHT: usize = 32;

/// One epoch's figures.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub val_loss: f64,
    pub val: Accuracy,
    pub seconds: f64,
}

/// What [`train`] returns: the best model, the validation split and the history.
pub struct Outcome {
    pub model: Trained,
    pub train: Dataset,
    pub val: Dataset,
    pub history: Vec<Epoch>,
    pub best_epoch: usize,
    pub stopped_early: bool,
    /// The first epoch whose model read something ([`first_reading`]); `None`: it never left the plateau.
    pub first_reading: Option<usize>,
    /// Where the weights started ([`init`]).
    pub started: init::Started,
}

/// The model's parameters in a fixed (name) order.
fn named_params(model: &Trained) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = model.vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A seed for epoch `epoch`'s shuffle and dropout, different for every epoch.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// Trains the seed's model on `data` (split 90/10 inside) and returns the best weights, batch norms
/// folded. With `resume`,
/// continues from the checkpoint in `out`.
pub fn train(data: &Dataset, opts: &Options, out: &Path, resume: bool) -> anyhow::Result<Outcome> {
    if data.len() < 2 {
        bail!("need at least 2 images to train, got {}", data.len());
    }
    let codec = Codec::new(&data.alphabet());
    let spec = Spec {
        stretch_contrast: opts.stretch_contrast,
        colour: data.colour,
        ..Spec::new(
            crate::model::seed_arch(data.height, data.width, codec.classes(), data.max_label_len()),
            &codec.alphabet(),
        )
    };
    let arch = spec.arch();
    if arch.pooled_height() == 0 || arch.steps() == 0 {
        bail!("images of {}x{} are too small: the model needs at least 4x4", data.width, data.height);
    }
    // CTC needs a step per character and one between repeated characters.
    if arch.steps() < 2 * data.max_label_len() {
        bail!(
            "labels of {} characters need at least {} time steps, but {}-pixel-wide images give {}",
            data.max_label_len(),
            2 * data.max_label_len(),
            data.width,
            arch.steps()
        );
    }
    let Some((train_idx, val_idx)) = split(data.len(), opts.val_fraction, opts.seed, opts.fold) else {
        bail!("fold {} does not exist: the folds are 0 to {}", opts.fold, folds(opts.val_fraction) - 1);
    };
    let (train_set, val_set) = (data.subset(&train_idx), data.subset(&val_idx));
    let targets: Vec<Vec<i64>> = train_set
        .labels
        .iter()
        .zip(&train_set.sources)
        .map(|(l, src)| codec.encode(l).map_err(|c| anyhow::anyhow!("{src}: character {c:?} not in the alphabet")))
        .collect::<anyhow::Result<_>>()?;
    let val_targets: Vec<Vec<i64>> = val_set.labels.iter().map(|l| codec.encode(l).unwrap_or_default()).collect();

    tch::manual_seed(opts.seed as i64);
    let model = Trained::for_training(spec.clone(), opts.batch_norm, opts.aux_ctc > 0.0);
    let started = init::apply(&opts.init, &model, &codec)?;
    if !resume {
        eprintln!("starting from {}", started.why);
    }
    let params = named_params(&model);
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut adam = Adam::new(&tensors, opts.learning_rate);
    let mut best: Vec<Tensor> = tensors.iter().map(|t| t.detach().copy()).collect();
    let mut ema = (opts.ema > 0.0).then(|| Ema::new(opts.ema, &tensors));
    let mut state = State {
        spec: spec.clone(),
        options: opts.clone(),
        data_fingerprint: fingerprint(data),
        epochs_done: 0,
        adam_steps: 0,
        history: Vec::new(),
        best_epoch: 0,
        best_val_loss: f64::INFINITY,
        lr: None,
    };
    let (ckpt_tensors, ckpt_json) = checkpoint_paths(out);
    if resume {
        let saved: State = crate::io::read_json(&ckpt_json).context("--resume: no usable checkpoint")?;
        let same = |o: &Options| {
            let floats = (o.ema.to_bits(), o.aux_ctc.to_bits());
            (o.seed, o.fold, o.batch_size, o.batch_norm, o.augment, o.stretch_contrast, floats)
        };
        if same(&saved.options) != same(opts) {
            bail!(
                "{}: resume with the same --seed, --fold, --batch-size, --no-batch-norm, --no-augment, --no-stretch, \
                 --ema and --aux-ctc as the interrupted run",
                ckpt_json.display()
            );
        }
        if saved.spec != spec || saved.data_fingerprint != state.data_fingerprint {
            bail!("{}: the checkpoint was made on other data or another model", ckpt_json.display());
        }
        let loaded = Tensor::load_multi(&ckpt_tensors).with_context(|| format!("{}", ckpt_tensors.display()))?;
        let find = |key: String| {
            loaded.iter().find(|(n, _)| *n == key).map(|(_, t)| t).with_context(|| format!("checkpoint lacks {key}"))
        };
        tch::no_grad(|| -> anyhow::Result<()> {
            for (i, (name, p)) in params.iter().enumerate() {
                p.shallow_clone().copy_(find(format!("w.{name}"))?);
                adam.m[i].copy_(find(format!("m.{name}"))?);
                adam.v[i].copy_(find(format!("v.{name}"))?);
                best[i].copy_(find(format!("best.{name}"))?);
                if let Some(ema) = &mut ema {
                    ema.avg[i].copy_(find(format!("ema.{name}"))?);
                }
            }
            Ok(())
        })?;
        adam.steps = saved.adam_steps;
        adam.lr = saved.lr.map_or(opts.learning_rate, |(lr, _)| lr);
        eprintln!("resuming after epoch {} of {}", saved.epochs_done, ckpt_json.display());
        state = State { options: opts.clone(), ..saved };
    }

    let n_batches = train_set.len().div_ceil(opts.batch_size);
    let mut stopped_early = false;
    for epoch in state.epochs_done + 1..=opts.epochs {
        let waiting_since = stopping::last_progress(&state.history, state.best_epoch, opts.select_by_loss);
        if early_stop(&state.history, waiting_since, opts.patience) {
            stopped_early = true;
            if first_reading(&state.history).is_none() {
                eprintln!(
                    "no better validation epoch for {} epochs and the model still reads nothing (CTC plateau)",
                    epoch - 1 - waiting_since
                );
            }
            break;
        }
        if time_limit_reached(&state.history, opts.max_minutes) {
            eprintln!("time limit of {} minutes reached", opts.max_minutes.unwrap_or_default());
            if first_reading(&state.history).is_none() {
                eprintln!("the model still reads nothing (CTC plateau): it needs more time (--max-minutes)");
            }
            break;
        }
        let t0 = Instant::now();
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        crate::data::shuffle(&mut order, epoch_seed(opts.seed, epoch));
        tch::manual_seed(epoch_seed(opts.seed, epoch) as i64);

        let bar = ProgressBar::new(n_batches as u64).with_style(
            ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos}/{len} batches, loss {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        let mut rng = oorandom::Rand64::new(u128::from(epoch_seed(opts.seed, epoch)));
        let aligning = epoch <= opts.align_epochs && first_reading(&state.history).is_none();
        if aligning && epoch == 1 {
            eprintln!("alignment warm-up: on until the model reads something (at most {} epochs)", opts.align_epochs);
        }
        // Augmenting before the model reads anything only delays its escape from the plateau.
        let read_at = first_reading(&state.history);
        let augmenting = opts.augment && read_at.is_some();
        if opts.augment && read_at == Some(epoch - 1) {
            eprintln!("augmentation: on from epoch {epoch}, the model having read something");
        }
        for batch in order.chunks(opts.batch_size) {
            if INTERRUPTED.load(Ordering::Relaxed) {
                bar.abandon();
                bail!(
                    "interrupted during epoch {epoch}; the checkpoint after epoch {} is in {} (continue with --resume)",
                    state.epochs_done,
                    out.display()
                );
            }
            let rng = augmenting.then_some(&mut rng);
            let (x, y, lens) = batch_tensors(&spec, &train_set, &targets, batch, rng, model.vs.device());
            let (logits, aux) = model.net.forward_train(&x, true);
            let loss = Crnn::ctc_loss(&logits, &y, &lens);
            // The epoch's loss is the network's own; the shortcut head's and the warm-up's only add to the
            // gradient.
            let mut total = match aux {
                Some(aux) => &loss + Crnn::ctc_loss(&aux, &y, &lens) * opts.aux_ctc,
                None => loss.shallow_clone(),
            };
            if aligning {
                let [_, steps, classes] = logits.size()[..] else { bail!("logits of shape {:?}", logits.size()) };
                let frames = align::frame_targets(&x, batch.iter().map(|&i| targets[i].as_slice()), steps as usize);
                let ce = logits.reshape([-1, classes]).cross_entropy_for_logits(&frames.reshape([-1]));
                total += ce * align::ALIGN_WEIGHT;
            }
            total.backward();
            adam.step(&tensors);
            if let Some(ema) = &mut ema {
                ema.update(&tensors, adam.steps);
            }
            let l = loss.double_value(&[]);
            loss_sum += l * batch.len() as f64;
            seen += batch.len();
            bar.set_message(format!("{:.4}", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();

        // With an average, validation judges (and `best` keeps) the averaged weights.
        let (val_loss, preds) = match &ema {
            Some(ema) => ema.with_average(&tensors, || evaluate(&model, &val_set, &val_targets, &codec)),
            None => evaluate(&model, &val_set, &val_targets, &codec),
        };
        let val = accuracy(val_set.labels.iter().map(String::as_str).zip(preds.iter().map(String::as_str)));
        let stats =
            Epoch { epoch, loss: loss_sum / seen.max(1) as f64, val_loss, val, seconds: t0.elapsed().as_secs_f64() };
        let best_so_far = state.history.iter().find(|e| e.epoch == state.best_epoch);
        let improved = stopping::better(&stats, best_so_far, opts.select_by_loss);
        eprintln!(
            "epoch {epoch:>3}: loss {:.4}  val_loss {:.4}  val_acc {:>6.2}%  val_cer {:.4}  {:.1}s{}",
            stats.loss,
            stats.val_loss,
            100.0 * val.sequence,
            val.cer,
            stats.seconds,
            if improved { "  *best" } else { "" }
        );
        if improved {
            state.best_val_loss = val_loss;
            state.best_epoch = epoch;
            let kept = ema.as_ref().map_or(&tensors, |e| &e.avg);
            copy_all(&best, kept);
        }
        let lowered = state.lr.map_or(0, |(_, e)| e);
        if let Some(lr) = lower_lr(opts, adam.lr, epoch, state.best_epoch, lowered) {
            adam.lr = lr;
            state.lr = Some((lr, epoch));
            eprintln!("  no better validation loss for {} epochs: learning rate now {lr:.2e}", opts.lr_patience);
        }
        state.history.push(stats);
        state.epochs_done = epoch;
        state.adam_steps = adam.steps;
        save_checkpoint(&params, &adam, &best, ema.as_ref(), &state, out)?;
    }
    if state.best_epoch == 0 {
        bail!("no epoch finished: nothing to keep");
    }
    copy_all(&tensors, &best);
    // the best weights as they trained (batch norms, shortcut head): what `--init` starts another run from
    crate::io::write_atomic_with(&out.join(init::FILE), |tmp| Ok(model.vs.save(tmp)?))?;
    Ok(Outcome {
        model: model.fold_batch_norm(),
        train: train_set,
        val: val_set,
        best_epoch: state.best_epoch,
        stopped_early,
        first_reading: first_reading(&state.history),
        history: state.history,
        started,
    })
}

/// Training-time augmentation: image `i` under a random affine map about its centre: scaled 90-110% in
/// each direction, rotated up to ±4°, sheared (slanted) up to ±0.15, moved up to 4% of the width and 8% of
/// the height (±8 and ±4 pixels at 200×50). Drawn afresh every epoch: the same captcha never looks the
/// same twice, which is what keeps ~2,000 images of a many-font style from being memorized.
fn augment(data: &Dataset, i: usize, rng: &mut oorandom::Rand64) -> Vec<u8> {
    let (h, w) = (data.height as f32, data.width as f32);
    let mut uniform = |lo: f32, hi: f32| lo + (hi - lo) * rng.rand_float() as f32;
    let (sx, sy) = (uniform(0.9, 1.1), uniform(0.9, 1.1));
    let angle = uniform(-4.0, 4.0).to_radians();
    let shear = uniform(-0.15, 0.15);
    let (dx, dy) = (uniform(-0.04, 0.04) * w, uniform(-0.08, 0.08) * h);
    // output → source: undo the move, then the rotation, shear and scale, about the centre
    let (cos, sin) = (angle.cos(), angle.sin());
    let (a, b, c, d) = (cos / sx, (sin + shear * cos) / sx, -sin / sy, cos / sy);
    let (cx, cy) = ((w - 1.0) / 2.0, (h - 1.0) / 2.0);
    let (ox, oy) = (cx + dx, cy + dy);
    let m = [a, b, cx - a * ox - b * oy, c, d, cy - c * ox - d * oy];
    crate::data::warp(data.image(i), data.height, data.width, data.channels(), m)
}

/// Images (augmented if given a random generator), concatenated targets and target lengths of one batch.
fn batch_tensors(
    spec: &Spec,
    data: &Dataset,
    targets: &[Vec<i64>],
    batch: &[usize],
    mut rng: Option<&mut oorandom::Rand64>,
    device: tch::Device,
) -> (Tensor, Tensor, Vec<i64>) {
    let mut pixels = Vec::with_capacity(batch.len() * data.height * data.width * data.channels());
    let mut flat = Vec::new();
    let mut lens = Vec::with_capacity(batch.len());
    for &i in batch {
        match rng.as_deref_mut() {
            Some(rng) => pixels.extend(augment(data, i, rng)),
            None => pixels.extend_from_slice(data.image(i)),
        }
        flat.extend_from_slice(&targets[i]);
        lens.push(targets[i].len() as i64);
    }
    let x = images_tensor(spec, &pixels, batch.len()).to_device(device);
    (x, Tensor::from_slice(&flat).to_device(device), lens)
}

/// Mean CTC loss and greedy predictions of `model` on `data`, in inference mode.
pub fn evaluate(model: &Trained, data: &Dataset, targets: &[Vec<i64>], codec: &Codec) -> (f64, Vec<String>) {
    let logits = model.logits(&data.pixels, data.len());
    let flat: Vec<i64> = targets.iter().flatten().copied().collect();
    let lens: Vec<i64> = targets.iter().map(|t| t.len() as i64).collect();
    let loss = tch::no_grad(|| Crnn::ctc_loss(&logits, &Tensor::from_slice(&flat), &lens).double_value(&[]));
    let preds =
        best_paths(&logits).iter().map(|p| codec.decode_path(p, usize::from(model.spec.max_label_len))).collect();
    (loss, preds)
}
