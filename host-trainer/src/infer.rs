//! Running model files through core-infer, as the device will: `eval` and `predict` use nothing else.
//! Many images are read on every core: one parsed [`Model`] shared by the threads, a scratch buffer each.

use std::path::Path;

use anyhow::anyhow;
use core_infer::Model;

use crate::data::{accuracy, Accuracy, Dataset, LabelRules};

/// How scores become text: greedy (the best path, as the seed decodes) or CTC prefix beam search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decoder {
    #[default]
    Greedy,
    /// Beam search of this width, one of [`BEAM_WIDTHS`].
    Beam(usize),
}

/// The beam widths `--beam` accepts (each is compiled in: core-infer's beam search keeps its beams on
/// the stack, sized at compile time).
pub const BEAM_WIDTHS: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// A reading of one image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Reading {
    pub text: String,
    /// Greedy: the least sure character's probability; beam: the text's probability, every alignment
    /// summed.
    pub confidence: f32,
    /// Each character's probability on the best path (greedy decoding only).
    pub chars: Vec<f32>,
}

/// A parsed model and how it decodes.
pub struct Runner<'a> {
    pub model: Model<'a>,
    pub decoder: Decoder,
}

impl<'a> Runner<'a> {
    pub fn new(bytes: &'a [u8]) -> anyhow::Result<Self> {
        let model = Model::parse(bytes).map_err(|e| anyhow!("{e}"))?;
        Ok(Runner { model, decoder: Decoder::Greedy })
    }
    pub fn with_decoder(mut self, decoder: Decoder) -> anyhow::Result<Self> {
        if let Decoder::Beam(w) = decoder {
            if !BEAM_WIDTHS.contains(&w) {
                anyhow::bail!("beam width {w}: give one of {BEAM_WIDTHS:?}");
            }
        }
        self.decoder = decoder;
        Ok(self)
    }
    /// (height, width) the model reads.
    pub fn size(&self) -> (usize, usize) {
        (usize::from(self.model.arch().height), usize::from(self.model.arch().width))
    }
    /// Whether the model reads RGB images (a colour model, `core_infer::Input::Ink`).
    pub fn colour(&self) -> bool {
        self.model.input().channels() == 3
    }
    /// What the model reads from the label rules' point of view.
    pub fn rules(&self) -> LabelRules {
        LabelRules {
            alphabet: Some(self.model.alphabet().to_string()),
            max_len: Some(usize::from(self.model.arch().max_label_len)),
        }
    }
    /// Reads one image (`pixels` at the model's size) with `scratch` of the model's scratch size.
    pub fn read_with(&self, pixels: &[u8], scratch: &mut [u8]) -> anyhow::Result<Reading> {
        let m = &self.model;
        let r = match self.decoder {
            Decoder::Greedy => m.read(pixels, scratch),
            Decoder::Beam(1) => m.read_beam::<1>(pixels, scratch),
            Decoder::Beam(2) => m.read_beam::<2>(pixels, scratch),
            Decoder::Beam(4) => m.read_beam::<4>(pixels, scratch),
            Decoder::Beam(8) => m.read_beam::<8>(pixels, scratch),
            Decoder::Beam(16) => m.read_beam::<16>(pixels, scratch),
            Decoder::Beam(32) => m.read_beam::<32>(pixels, scratch),
            Decoder::Beam(_) => m.read_beam::<64>(pixels, scratch),
        }
        .map_err(|e| anyhow!("{e}"))?;
        Ok(Reading { text: r.text.as_str().to_string(), confidence: r.confidence, chars: r.chars.to_vec() })
    }
    /// Reads one image.
    pub fn read(&self, pixels: &[u8]) -> anyhow::Result<Reading> {
        self.read_with(pixels, &mut vec![0; self.model.scratch_bytes()])
    }
    /// The text of one image.
    pub fn recognize(&self, pixels: &[u8]) -> anyhow::Result<String> {
        Ok(self.read(pixels)?.text)
    }
    /// `read(i)` for `i` in `0..n`, on every core, in order, with a progress bar when there are many.
    pub fn read_many<T: Send>(&self, n: usize, read: impl Fn(&Self, usize, &mut [u8]) -> T + Sync) -> Vec<T> {
        let bar = indicatif::ProgressBar::new(n as u64);
        if n < 200 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).min(n.max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        let mut scratch = vec![0; self.model.scratch_bytes()];
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                break done;
                            }
                            done.push((i, read(self, i, &mut scratch)));
                            bar.inc(1);
                        }
                    })
                })
                .collect();
            // A worker that panicked (a bug) passes its panic on rather than losing its images quietly.
            workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
        });
        bar.finish_and_clear();
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, t)| t).collect()
    }
    /// Readings of every image of `data`, on every core.
    pub fn read_all(&self, data: &Dataset) -> anyhow::Result<Vec<Reading>> {
        self.read_many(data.len(), |r, i, scratch| {
            r.read_with(data.image(i), scratch).map_err(|e| anyhow!("{}: {e}", data.sources[i]))
        })
        .into_iter()
        .collect()
    }
    /// The texts of every image of `data`, on every core.
    pub fn recognize_all(&self, data: &Dataset) -> anyhow::Result<Vec<String>> {
        Ok(self.read_all(data)?.into_iter().map(|r| r.text).collect())
    }
}

/// Accuracy, CER and the list of wrong readings of a model on a dataset.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    pub images: usize,
    pub accuracy: Accuracy,
    /// `(source, truth, predicted)` of every wrong reading.
    pub wrong: Vec<(String, String, String)>,
}

pub fn evaluate(runner: &Runner<'_>, data: &Dataset) -> anyhow::Result<(Evaluation, Vec<String>)> {
    let preds = runner.recognize_all(data)?;
    let acc = accuracy(data.labels.iter().map(String::as_str).zip(preds.iter().map(String::as_str)));
    let wrong = (0..data.len())
        .filter(|&i| data.labels[i] != preds[i])
        .map(|i| (data.sources[i].clone(), data.labels[i].clone(), preds[i].clone()))
        .collect();
    Ok((Evaluation { images: data.len(), accuracy: acc, wrong }, preds))
}

/// Loads `dir` the way `runner`'s model reads it: resized to its size, grey or RGB, labels checked against its
/// alphabet.
pub fn load_for(runner: &Runner<'_>, dir: &Path, on_bad: crate::data::OnBad) -> anyhow::Result<Dataset> {
    let colour = crate::data::Colour::of_model(runner.colour());
    Ok(crate::data::load_dir(
        dir,
        crate::data::Size::Exact(runner.size().0, runner.size().1),
        &runner.rules(),
        on_bad,
        colour,
    )?
    .0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_threads_read_what_one_reads_in_order() {
        let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/synthetic/model-int8.crnn")).unwrap();
        let runner = Runner::new(&bytes).unwrap();
        let data = crate::data::synthetic(captcha_synth::Config::default(), 7, 0, 12).unwrap();
        let alone: Vec<Reading> = (0..data.len()).map(|i| runner.read(data.image(i)).unwrap()).collect();
        assert_eq!(runner.read_all(&data).unwrap(), alone);
        for w in BEAM_WIDTHS {
            let beam = Runner::new(&bytes).unwrap().with_decoder(Decoder::Beam(w)).unwrap();
            let read = beam.read_all(&data).unwrap();
            assert!(read.iter().all(|r| (0.0..=1.0).contains(&r.confidence)));
        }
        assert!(Runner::new(&bytes).unwrap().with_decoder(Decoder::Beam(3)).is_err());
    }
}
