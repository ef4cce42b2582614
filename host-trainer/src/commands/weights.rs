//! From tch weights to model files: `quantize` (int8, calibrated) and `export` (f32 and ONNX).

use std::path::Path;

use anyhow::bail;

use crate::data::{self, LabelRules, OnBad};
use crate::model::Trained;
use crate::{export, io, quantize};

/// `quantize`: the int8 model file from tch weights, calibrated on images like its training data: the
/// folder `calibration`, else the folder the model was trained on (its `model.json` records it), else,
/// for a model of the synthetic captchas' size and alphabet, 256 synthetic captchas. Any other model
/// needs a folder: calibrating it on synthetic captchas of another size would fail, and of another
/// alphabet or style would quietly choose the wrong ranges.
pub fn quantize(weights: &Path, calibration: Option<&Path>, out: &Path) -> anyhow::Result<()> {
    let model = Trained::load(weights)?;
    let spec = &model.spec;
    let size = (usize::from(spec.height), usize::from(spec.width));
    let folder = match (calibration, &spec.data) {
        (Some(dir), _) => Some(dir.to_path_buf()),
        (None, Some(dir)) if dir.is_dir() => {
            eprintln!("calibrating on {}, the folder the model was trained on", dir.display());
            Some(dir.clone())
        }
        (None, Some(dir)) => bail!(
            "{}: the model was trained on {}, which is gone; give calibration images of its style with --data",
            weights.display(),
            dir.display()
        ),
        (None, None) => None,
    };
    let data = match folder {
        Some(dir) => {
            let rules = LabelRules::default();
            data::load_dir(
                &dir,
                data::Size::Exact(size.0, size.1),
                &rules,
                OnBad::Skip,
                data::Colour::of_model(spec.colour),
            )?
            .0
        }
        None => {
            let synth = captcha_synth::Config::default();
            let like = (usize::from(synth.height), usize::from(synth.width)) == size
                && spec.alphabet == synth.alphabet
                && usize::from(spec.max_label_len) == usize::from(synth.max_len);
            if !like {
                bail!(
                    "{}: the model reads {}x{} images of {:?}, unlike the synthetic captchas ({}x{}, {:?}) that \
                     calibrate by default; give calibration images of its style with --data",
                    weights.display(),
                    spec.width,
                    spec.height,
                    spec.alphabet,
                    synth.width,
                    synth.height,
                    synth.alphabet
                );
            }
            data::synthetic(synth, 42, 0, 256)?
        }
    };
    let w = export::Weights::from_tch(&model)?;
    let cal = quantize::write(&model, &w, &data, out)?;
    io::write_json(&out.join("calibration.json"), &cal)?;
    eprintln!("wrote {}/model-int8.crnn (calibrated on {} images: {cal:?})", out.display(), data.len().min(256));
    Ok(())
}

/// `export`: from a VarStore file (with its `model.json`) to `model.crnn` and `model.onnx` in `out`.
pub fn export(weights: &Path, out: &Path) -> anyhow::Result<()> {
    let model = Trained::load(weights)?;
    export::write_all(&model, out)?;
    eprintln!("wrote {0}/model.crnn and {0}/model.onnx", out.display());
    Ok(())
}
