//! Running model files through core-infer, as the device will: `eval` and `predict` use nothing else.

use std::path::Path;

use anyhow::anyhow;
use core_infer::Model;

use crate::data::{accuracy, Accuracy, Dataset, LabelRules};

/// A parsed model with its scratch buffer.
pub struct Runner<'a> {
    pub model: Model<'a>,
    scratch: Vec<u8>,
}

impl<'a> Runner<'a> {
    pub fn new(bytes: &'a [u8]) -> anyhow::Result<Self> {
        let model = Model::parse(bytes).map_err(|e| anyhow!("{e}"))?;
        let scratch = vec![0; model.scratch_bytes()];
        Ok(Runner { model, scratch })
    }
    /// (height, width) the model reads.
    pub fn size(&self) -> (usize, usize) {
        (usize::from(self.model.arch().height), usize::from(self.model.arch().width))
    }
    /// What the model reads from the label rules' point of view.
    pub fn rules(&self) -> LabelRules {
        LabelRules {
            alphabet: Some(self.model.alphabet().to_string()),
            max_len: Some(usize::from(self.model.arch().max_label_len)),
        }
    }
    pub fn recognize(&mut self, pixels: &[u8]) -> anyhow::Result<String> {
        Ok(self.model.recognize(pixels, &mut self.scratch).map_err(|e| anyhow!("{e}"))?.as_str().to_string())
    }
    /// Predictions for every image of `data`, with a progress bar when there are many.
    pub fn recognize_all(&mut self, data: &Dataset) -> anyhow::Result<Vec<String>> {
        let bar = indicatif::ProgressBar::new(data.len() as u64);
        if data.len() < 200 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let out = (0..data.len())
            .map(|i| {
                bar.inc(1);
                self.recognize(data.image(i)).map_err(|e| anyhow!("{}: {e}", data.sources[i]))
            })
            .collect();
        bar.finish_and_clear();
        out
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

pub fn evaluate(runner: &mut Runner<'_>, data: &Dataset) -> anyhow::Result<(Evaluation, Vec<String>)> {
    let preds = runner.recognize_all(data)?;
    let acc = accuracy(data.labels.iter().map(String::as_str).zip(preds.iter().map(String::as_str)));
    let wrong = (0..data.len())
        .filter(|&i| data.labels[i] != preds[i])
        .map(|i| (data.sources[i].clone(), data.labels[i].clone(), preds[i].clone()))
        .collect();
    Ok((Evaluation { images: data.len(), accuracy: acc, wrong }, preds))
}

/// Loads `dir` the way `runner`'s model reads it: resized to its size, labels checked against its alphabet.
pub fn load_for(runner: &Runner<'_>, dir: &Path, on_bad: crate::data::OnBad) -> anyhow::Result<Dataset> {
    Ok(crate::data::load_dir(dir, Some(runner.size()), &runner.rules(), on_bad)?.0)
}
