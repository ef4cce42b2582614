//! Reading with model files through core-infer: `eval`, `predict` and `inspect`.

use std::path::{Path, PathBuf};

use crate::data::{self, OnBad};
use crate::infer::{self, Decoder, Runner};
use crate::io;

/// `eval`: accuracy, CER and the wrong readings of each model file on a folder, and how often each
/// model reads the same text as the first (for example f32 vs int8).
pub fn eval(
    models: &[PathBuf],
    dir: &Path,
    on_bad: OnBad,
    decoder: Decoder,
) -> anyhow::Result<Vec<(infer::Evaluation, f64)>> {
    let mut first: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for model in models {
        let bytes = io::read_model(model)?;
        let runner = Runner::new(&bytes)?.with_decoder(decoder)?;
        let data = infer::load_for(&runner, dir, on_bad)?;
        let (eval, preds) = infer::evaluate(&runner, &data)?;
        let reference = first.get_or_insert_with(|| preds.clone());
        let agree = reference.iter().zip(&preds).filter(|(a, b)| a == b).count() as f64 / preds.len().max(1) as f64;
        out.push((eval, agree));
    }
    Ok(out)
}

/// The image files `inputs` name: files as they are, folders' images (sorted), and glob patterns
/// (`'captchas/*.png'`, quoted so that the shell leaves them) expanded. A name that matches nothing is
/// kept, so that reading it reports the problem.
pub fn image_paths(inputs: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if input.is_dir() {
            match data::list_images(input) {
                Ok(files) => out.extend(files),
                Err(_) => out.push(input.clone()),
            }
        } else if !input.exists() && text.contains(['*', '?', '[']) {
            let found: Vec<PathBuf> = glob::glob(&text)
                .map(|paths| paths.filter_map(Result::ok).filter(|p| p.is_file()).collect())
                .unwrap_or_default();
            if found.is_empty() {
                out.push(input.clone());
            }
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    out
}

/// `predict`: the reading of each image of `inputs` (files, folders, globs: [`image_paths`]), on every
/// core, in order; an image that cannot be read gets its error, and the others are still read.
pub fn predict(
    model: &Path,
    inputs: &[PathBuf],
    decoder: Decoder,
) -> anyhow::Result<Vec<(PathBuf, anyhow::Result<infer::Reading>)>> {
    let bytes = io::read_model(model)?;
    let runner = Runner::new(&bytes)?.with_decoder(decoder)?;
    let (h, w) = runner.size();
    let paths = image_paths(inputs);
    let readings = runner.read_many(paths.len(), |r, i, scratch| {
        let pixels = data::load_image(&paths[i], h, w, r.colour())?;
        r.read_with(&pixels, scratch)
    });
    Ok(paths.into_iter().zip(readings).collect())
}

/// What `inspect` tells about a model file.
#[derive(Debug, serde::Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub format_version: u16,
    pub precision: String,
    pub arch: core_infer::Arch,
    pub alphabet: String,
    pub input: String,
    pub file_bytes: usize,
    /// The CRC-32 stored at the end of the file (checked on parsing).
    pub checksum: String,
    pub tensors: usize,
    pub parameters: usize,
    pub scratch_bytes: usize,
    /// Multiply-adds per stage of one inference (`core_infer::Stage::macs`).
    pub macs: Vec<(String, u64)>,
    pub total_macs: u64,
}

impl std::fmt::Display for ModelInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.arch;
        writeln!(f, "{}", self.path)?;
        writeln!(
            f,
            "  format          version {}, {}, {} bytes, CRC-32 {}",
            self.format_version, self.precision, self.file_bytes, self.checksum
        )?;
        writeln!(f, "  input           {}x{} grayscale, {}", a.width, a.height, self.input)?;
        writeln!(
            f,
            "  architecture    conv {} + pool, conv {} + pool, dense {}, BiLSTM {}, BiLSTM {}, dense {} (classes, blank included)",
            a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes
        )?;
        writeln!(
            f,
            "  alphabet        {:?} ({} characters), texts up to {}",
            self.alphabet,
            self.alphabet.chars().count(),
            a.max_label_len
        )?;
        writeln!(f, "  tensors         {} ({} parameters)", self.tensors, self.parameters)?;
        writeln!(f, "  scratch         {} bytes", self.scratch_bytes)?;
        writeln!(f, "  multiply-adds   {} per inference", self.total_macs)?;
        for (stage, macs) in self.macs.iter().filter(|(_, m)| *m > 0) {
            writeln!(f, "    {stage:<14} {macs:>12}")?;
        }
        Ok(())
    }
}

/// `inspect`: everything the model file says about itself, checked by core-infer's parser first.
pub fn inspect(model: &Path) -> anyhow::Result<ModelInfo> {
    let bytes = io::read_model(model)?; // parsed and checked there
    let named = |e: core_infer::Error| anyhow::anyhow!("{}: {e}", model.display());
    let m = core_infer::Model::parse(&bytes).map_err(named)?;
    let file = core_infer::format::ModelFile::parse(&bytes).map_err(named)?;
    let arch = *m.arch();
    let macs: Vec<(String, u64)> =
        core_infer::Stage::ALL.iter().map(|s| (s.name().to_string(), s.macs(&arch))).collect();
    // The parser checked the stored CRC against this one.
    let crc = core_infer::format::checksum(bytes.get(..bytes.len().saturating_sub(4)).unwrap_or(&[]));
    // Parameters: the layers' weights and biases, as the one schema names them.
    let parameters = core_infer::format::names::tensors(m.precision(), &arch)
        .filter(|s| matches!(s.part, "weight" | "bias" | "w_ih" | "w_hh"))
        .map(|s| s.len())
        .sum();
    Ok(ModelInfo {
        path: model.display().to_string(),
        format_version: core_infer::format::VERSION,
        precision: format!("{:?}", m.precision()).to_lowercase(),
        arch,
        alphabet: m.alphabet().to_string(),
        input: match m.input() {
            core_infer::Input::Plain => "pixels as they are".into(),
            core_infer::Input::Stretch => "contrast stretched (darkest pixel to 0, lightest to 255)".into(),
            core_infer::Input::Ink => {
                "colour: RGB, each pixel's distance from the background colour as ink, contrast stretched".into()
            }
        },
        file_bytes: bytes.len(),
        checksum: format!("{crc:08x}"),
        tensors: file.tensors().count(),
        parameters,
        scratch_bytes: m.scratch_bytes(),
        total_macs: macs.iter().map(|(_, n)| n).sum(),
        macs,
    })
}
