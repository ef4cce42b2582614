//! Where training starts: fresh weights, or those of an earlier training (`init.ot`, which every run
//! writes: its best weights as they trained, batch norms and shortcut head included).
//!
//! The project ships one such file, `models/pretrained/init.ot` (made by `tools/pretrain.sh` from
//! synthetic captchas in 100+ fonts, 62 characters), and `train` starts from it by default
//! ([`Init::Auto`]) when the new model has its shape: the same widths and input height. Every layer is
//! copied as it is except the two whose rows are classes (dense2 and the shortcut head): there each class
//! of the new alphabet takes the row of the same character, and the blank the blank's; a character the
//! pretrained model never saw keeps its fresh row.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tch::Tensor;

use crate::data::Codec;
use crate::model::{Spec, Trained};

/// Where [`crate::train::train`] starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// Fresh weights (tch's initialization, seeded by `--seed`).
    #[default]
    Fresh,
    /// The shipped pretrained weights ([`pretrained`]) where the model has their shape, else fresh.
    Auto,
    /// This `init.ot` (with its `model.json` beside it); an error if the shapes differ.
    File(PathBuf),
}

/// The shipped pretrained weights: `models/pretrained/init.ot` of this source tree.
pub fn pretrained() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).join("models/pretrained/init.ot")
}

/// The file a run writes for [`Init::File`]: the best epoch's weights as they trained.
pub const FILE: &str = "init.ot";

/// What [`apply`] did, for the log and `metrics.json`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Started {
    /// The file the weights came from; `None`: fresh weights.
    pub from: Option<PathBuf>,
    /// Why (for a fresh start under [`Init::Auto`]: why the pretrained file did not fit).
    pub why: String,
    /// Classes of the new alphabet that found their character's row (the blank included).
    pub classes_matched: usize,
}

/// Loads `init` into `model` (a freshly built training model for `codec`'s alphabet).
pub fn apply(init: &Init, model: &Trained, codec: &Codec) -> anyhow::Result<Started> {
    let (path, required) = match init {
        Init::Fresh => return Ok(fresh("fresh weights (--init none)")),
        Init::Auto => (pretrained(), false),
        Init::File(p) => (p.clone(), true),
    };
    if !required && !path.exists() {
        return Ok(fresh(&format!("fresh weights: no pretrained weights at {}", path.display())));
    }
    match load(&path, model, codec) {
        Ok(matched) => Ok(Started {
            why: format!("weights from {} ({matched} of {} classes' rows matched)", path.display(), codec.classes()),
            from: Some(path),
            classes_matched: matched,
        }),
        Err(e) if !required => Ok(fresh(&format!("fresh weights: the pretrained ones do not fit ({e:#})"))),
        Err(e) => Err(e.context(format!("--init {}", path.display()))),
    }
}

fn fresh(why: &str) -> Started {
    Started { from: None, why: why.to_string(), classes_matched: 0 }
}

/// Copies the weights of `path` into `model`; returns the classes matched.
fn load(path: &Path, model: &Trained, codec: &Codec) -> anyhow::Result<usize> {
    let spec: Spec = crate::io::read_json(&path.with_file_name("model.json"))?;
    let (a, b) = (spec.arch(), model.spec.arch());
    let widths = |a: &core_infer::Arch| (a.height, a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2);
    if widths(&a) != widths(&b) {
        bail!("(rows, conv1, conv2, dense1, lstm1, lstm2) are {:?} there, {:?} here", widths(&a), widths(&b));
    }
    let saved: std::collections::HashMap<String, Tensor> = Tensor::load_multi(path)
        .with_context(|| format!("{}: cannot read the weights", path.display()))?
        .into_iter()
        .collect();
    // new class k ← old class rows[k]: the blank from the blank, a character from the same character
    let old: Vec<char> = spec.alphabet.chars().collect();
    let rows: Vec<Option<i64>> = std::iter::once(Some(0))
        .chain(codec.alphabet().chars().map(|c| old.iter().position(|&o| o == c).map(|i| i as i64 + 1)))
        .collect();
    let matched = rows.iter().flatten().count();
    tch::no_grad(|| -> anyhow::Result<()> {
        for (name, dst) in model.vs.variables() {
            let Some(src) = saved.get(&name) else {
                continue; // (a head or batch norm the earlier run did not train with)
            };
            if name.starts_with("dense2.") || name.starts_with("aux.") {
                for (k, row) in rows.iter().enumerate() {
                    if let Some(r) = *row {
                        dst.get(k as i64).copy_(&src.get(r));
                    }
                }
            } else if src.size() == dst.size() {
                dst.shallow_clone().copy_(src);
            } else {
                bail!("{name} is {:?} there, {:?} here", src.size(), dst.size());
            }
        }
        Ok(())
    })?;
    Ok(matched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::seed_arch;

    /// A training model (batch norms, shortcut head) for `alphabet` at `height` rows, seeded.
    fn model(alphabet: &str, height: usize, seed: i64) -> Trained {
        tch::manual_seed(seed);
        let spec = Spec::new(seed_arch(height, 48, alphabet.chars().count() + 1, 4), alphabet);
        Trained::for_training(spec, true, true)
    }

    /// `old` saved as an earlier run leaves it: init.ot and model.json in a folder.
    fn saved(old: &Trained) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        old.vs.save(dir.path().join(FILE)).unwrap();
        crate::io::write_json(&dir.path().join("model.json"), &old.spec).unwrap();
        dir
    }

    fn var(m: &Trained, name: &str) -> Tensor {
        m.vs.variables()[name].detach().copy()
    }

    #[test]
    fn every_layer_is_copied_and_each_class_takes_its_characters_row() {
        let old = model("abc", 16, 1);
        let dir = saved(&old);

        // 'c' and 'a' were there (classes 3 and 1), 'x' is new
        let new = model("cax", 16, 2);
        let fresh_x = var(&new, "dense2.weight").get(3);
        let started = apply(&Init::File(dir.path().join(FILE)), &new, &Codec::new("cax")).unwrap();
        assert_eq!(started.classes_matched, 3, "the blank, 'c' and 'a'");
        assert_eq!(started.from.as_deref(), Some(dir.path().join(FILE).as_path()));
        for name in ["conv1.weight", "bn1.weight", "bn2.running_var", "dense1.bias", "lstm1.weight_hh_l0_reverse"] {
            assert!(var(&new, name).equal(&var(&old, name)), "{name}");
        }
        for head in ["dense2", "aux"] {
            let (w_old, w_new) = (var(&old, &format!("{head}.weight")), var(&new, &format!("{head}.weight")));
            let (b_old, b_new) = (var(&old, &format!("{head}.bias")), var(&new, &format!("{head}.bias")));
            for (k, from) in [(0, 0), (1, 3), (2, 1)] {
                assert!(w_new.get(k).equal(&w_old.get(from)), "{head} row {k}");
                assert!(b_new.get(k).equal(&b_old.get(from)), "{head} bias {k}");
            }
        }
        assert!(var(&new, "dense2.weight").get(3).equal(&fresh_x), "a new character keeps its fresh row");
    }

    #[test]
    fn another_shape_is_an_error_for_a_file_and_fresh_weights_for_auto() {
        let old = model("abc", 16, 1);
        let dir = saved(&old);
        let taller = model("abc", 24, 2);
        let before = var(&taller, "conv1.weight");
        let err = apply(&Init::File(dir.path().join(FILE)), &taller, &Codec::new("abc")).unwrap_err();
        assert!(
            format!("{err:#}").contains("(16, 32, 64, 64, 128, 64) there, (24, 32, 64, 64, 128, 64) here"),
            "{err:#}"
        );
        assert!(var(&taller, "conv1.weight").equal(&before), "nothing copied");
        // a missing file: an error when asked for, fresh weights (said why) under auto
        assert!(apply(&Init::File(dir.path().join("none.ot")), &taller, &Codec::new("abc")).is_err());
        let started = apply(&Init::Fresh, &taller, &Codec::new("abc")).unwrap();
        assert!(started.from.is_none());
        // (the shipped file, if there, is for 32 rows)
        let started = apply(&Init::Auto, &taller, &Codec::new("abc")).unwrap();
        assert!(started.from.is_none() && started.why.starts_with("fresh weights"), "{}", started.why);
        assert!(var(&taller, "conv1.weight").equal(&before), "nothing copied");
    }
}
