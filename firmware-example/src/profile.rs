//! The per-stage profile (the `profile` feature): a [`Probe`] that reads the timer where each stage of
//! the network ends and adds the instructions since the previous stage to that stage's count.

use core_infer::{Arch, Probe, Stage};

use crate::timing::Timer;

/// Instructions per stage, summed over the inferences profiled, and the CTC decode's.
#[derive(Default)]
pub struct Profile {
    spent: [u64; Stage::ALL.len()],
    decode: u64,
    /// Greedy decoding with a confidence, and beam search of width 8 (`core_infer::beam`).
    greedy: u64,
    beam8: u64,
    runs: u64,
}

/// The probe of one inference: borrows the timer and the profile it adds to.
pub struct Clock<'p> {
    profile: &'p mut Profile,
    timer: &'p mut Timer,
    last: u64,
}

impl Profile {
    /// A probe for one more inference, starting now.
    pub fn clock<'p>(&'p mut self, timer: &'p mut Timer) -> Clock<'p> {
        self.runs += 1;
        let last = timer.now();
        Clock { profile: self, timer, last }
    }

    pub fn add_decode(&mut self, instructions: u64) {
        self.decode += instructions;
    }

    /// Adds the instructions of the readers with a confidence: greedy, and beam search of width 8.
    pub fn add_readers(&mut self, greedy: u64, beam8: u64) {
        self.greedy += greedy;
        self.beam8 += beam8;
    }

    /// One `time:` line per stage (mean over the inferences), with its multiply-adds.
    pub fn log(&self, arch: &Arch) {
        let runs = self.runs.max(1);
        for (stage, spent) in Stage::ALL.iter().zip(self.spent) {
            defmt::info!(
                "time: {=str} {=u64} instructions for {=u64} multiply-adds",
                stage.name(),
                spent / runs,
                stage.macs(arch)
            );
        }
        defmt::info!("time: ctc-decode {=u64} instructions for 0 multiply-adds", self.decode / runs);
        defmt::info!(
            "decode: greedy with confidence {=u64} instructions, beam search width 8 {=u64} instructions",
            self.greedy / runs,
            self.beam8 / runs
        );
    }
}

impl Probe for Clock<'_> {
    fn done(&mut self, stage: Stage) {
        let now = self.timer.now();
        if let Some(s) = self.profile.spent.get_mut(stage.index()) {
            *s += now - self.last;
        }
        self.last = now;
    }
}
