//! The checkpoint written after every epoch, from which `--resume` continues exactly.

use std::path::{Path, PathBuf};

use tch::Tensor;

use super::*;
use crate::data::Dataset;
use crate::model::Spec;

/// Everything a checkpoint holds besides tensors.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct State {
    pub(super) spec: Spec,
    pub(super) options: Options,
    /// Images and a checksum of their labels: a resume must see the same data.
    pub(super) data_fingerprint: (usize, u64),
    /// Epochs finished.
    pub(super) epochs_done: usize,
    pub(super) adam_steps: i64,
    pub(super) history: Vec<Epoch>,
    pub(super) best_epoch: usize,
    pub(super) best_val_loss: f64,
    /// The learning rate now and the epoch that last lowered it (see [`Options::lr_patience`]).
    #[serde(default)]
    pub(super) lr: Option<(f64, usize)>,
}

/// The checkpoint files in `out`.
pub fn checkpoint_paths(out: &Path) -> (PathBuf, PathBuf) {
    (out.join("checkpoint.ot"), out.join("checkpoint.json"))
}

/// Writes the weights, Adam's moments, the best weights, the average if any and the state, each file
/// atomically; the JSON last, so a checkpoint.json always describes a complete checkpoint.ot.
pub(super) fn save_checkpoint(
    params: &[(String, Tensor)],
    adam: &Adam,
    best: &[Tensor],
    ema: Option<&Ema>,
    state: &State,
    out: &Path,
) -> anyhow::Result<()> {
    let mut named: Vec<(String, &Tensor)> = Vec::new();
    for (i, (name, t)) in params.iter().enumerate() {
        named.push((format!("w.{name}"), t));
        named.push((format!("m.{name}"), &adam.m[i]));
        named.push((format!("v.{name}"), &adam.v[i]));
        named.push((format!("best.{name}"), &best[i]));
        if let Some(ema) = ema {
            named.push((format!("ema.{name}"), &ema.avg[i]));
        }
    }
    let (tensors, json) = checkpoint_paths(out);
    crate::io::write_atomic_with(&tensors, |tmp| Ok(Tensor::save_multi(&named, tmp)?))?;
    crate::io::write_json(&json, state)
}

pub(super) fn fingerprint(data: &Dataset) -> (usize, u64) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.labels.iter().flat_map(|l| l.bytes().chain([0])) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (data.len(), h)
}
