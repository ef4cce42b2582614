//! Where an inference spends its work: [`crate::Model::run_probed`] tells a [`Probe`] each time a stage
//! of the network ends, so that firmware can read its clock there and attribute the time since the
//! previous stage. [`crate::Model::run`] passes `()`, whose empty [`Probe::done`] compiles to nothing:
//! profiling costs nothing unless asked for.
//!
//! The front end streams along the width (each time step runs conv1 + pool on the columns it needs,
//! then conv2 + pool and dense1), so [`Stage::Conv1Pool`], [`Stage::Conv2Pool`] and [`Stage::Dense1`]
//! end many times per inference: a probe adds up each stage's parts.

use crate::Arch;

/// A stage of the forward pass, in the order they first run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stage {
    /// The input conversion's table (the contrast stretch: a pass over the image for its darkest and
    /// lightest pixel, then 256 entries). Reading each pixel through it is part of conv1.
    Input,
    /// conv1 + ReLU + 2×2 max-pool, with the pixels read through the input table.
    Conv1Pool,
    /// conv2 + ReLU + 2×2 max-pool.
    Conv2Pool,
    Dense1,
    Lstm1Forward,
    Lstm1Backward,
    Lstm2Forward,
    Lstm2Backward,
    Dense2,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 9] = [
        Stage::Input,
        Stage::Conv1Pool,
        Stage::Conv2Pool,
        Stage::Dense1,
        Stage::Lstm1Forward,
        Stage::Lstm1Backward,
        Stage::Lstm2Forward,
        Stage::Lstm2Backward,
        Stage::Dense2,
    ];

    /// Its position in [`Stage::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short name for logs and tables.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Conv1Pool => "conv1+pool",
            Stage::Conv2Pool => "conv2+pool",
            Stage::Dense1 => "dense1",
            Stage::Lstm1Forward => "lstm1.fwd",
            Stage::Lstm1Backward => "lstm1.bwd",
            Stage::Lstm2Forward => "lstm2.fwd",
            Stage::Lstm2Backward => "lstm2.bwd",
            Stage::Dense2 => "dense2",
        }
    }

    /// The multiply-adds this stage does for one image of architecture `a` (0 for the input conversion).
    pub fn macs(self, a: &Arch) -> u64 {
        let [h, w, c1, c2, d1, l1, l2, k] =
            [a.height, a.width, a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes].map(u64::from);
        let steps = a.steps() as u64;
        // One LSTM direction: 4 gates × hidden × (inputs + hidden) per step.
        let lstm = |n_in: u64, hidden: u64| steps * 4 * hidden * (n_in + hidden);
        match self {
            Stage::Input => 0,
            // The positions the pools read: an odd last row or column is never computed.
            Stage::Conv1Pool => (h / 2 * 2) * (w / 2 * 2) * c1 * 9,
            Stage::Conv2Pool => (h / 4 * 2) * (w / 4 * 2) * c2 * 9 * c1,
            Stage::Dense1 => steps * d1 * a.features() as u64,
            Stage::Lstm1Forward | Stage::Lstm1Backward => lstm(d1, l1),
            Stage::Lstm2Forward | Stage::Lstm2Backward => lstm(2 * l1, l2),
            Stage::Dense2 => steps * k * 2 * l2,
        }
    }
}

/// Told where each stage of an inference ends.
pub trait Probe {
    /// The work since the previous call (or since the run began) belonged to `stage`.
    fn done(&mut self, stage: Stage);
}

/// No probe: what [`crate::Model::run`] passes.
impl Probe for () {
    #[inline(always)]
    fn done(&mut self, _: Stage) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's architecture: the stages' multiply-adds, counted by hand from its layer sizes (200×50
    /// input, conv 32 and 64, dense 64, LSTM 128 and 64, 20 classes, 50 steps, 12 × 64 features; pool2
    /// reads 24 of conv2's 25 rows).
    #[test]
    fn seed_multiply_adds_by_hand() {
        let a = Arch {
            height: 50,
            width: 200,
            conv1: 32,
            conv2: 64,
            dense1: 64,
            lstm1: 128,
            lstm2: 64,
            classes: 20,
            max_label_len: 5,
        };
        let want: [u64; 9] = [
            0,
            200 * 50 * 32 * 9,
            100 * 24 * 64 * 9 * 32,
            50 * 64 * (12 * 64),
            50 * 4 * 128 * (64 + 128),
            50 * 4 * 128 * (64 + 128),
            50 * 4 * 64 * (256 + 64),
            50 * 4 * 64 * (256 + 64),
            50 * 20 * 128,
        ];
        for (s, w) in Stage::ALL.iter().zip(want) {
            assert_eq!(s.macs(&a), w, "{}", s.name());
        }
        assert_eq!(Stage::ALL.iter().map(|s| s.macs(&a)).sum::<u64>(), 67_724_800);
        assert!(Stage::ALL.iter().enumerate().all(|(i, s)| s.index() == i));
    }
}
