//! The sub-commands, as library functions (so tests can call them), one module each: [`train`](mod@train)
//! (training and its summary), [`read`] (eval, predict, inspect), [`weights`] (quantize, export),
//! [`generate`](mod@generate) (synthetic captchas). `main.rs` only parses arguments and prints.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::data::{self, Dataset, LabelRules, OnBad};

pub mod generate;
pub mod read;
pub mod train;
pub mod weights;

pub use generate::{colourize, generate};
pub use read::{eval, image_paths, inspect, predict, ModelInfo};
pub use train::{advice, device_line, train, Metrics};
pub use weights::{export, quantize};

/// Where training images come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A folder of `LABEL.png` files.
    Folder(PathBuf),
    /// `count` captchas from the embedded generator (default look: the real set's).
    Synthetic { count: usize },
}

impl Source {
    /// Loads or draws the images, grey or colour as `colour` says (synthetic captchas are grey). A folder's
    /// images taller than `height` rows (if given) are shrunk to it, keeping their aspect ratio; synthetic
    /// captchas are drawn at their own size.
    pub fn load(
        &self,
        seed: u64,
        on_bad: OnBad,
        colour: data::Colour,
        height: Option<usize>,
    ) -> anyhow::Result<Dataset> {
        match self {
            Source::Folder(dir) => {
                let size = height.map_or(data::Size::OfData, data::Size::Height);
                Ok(data::load_dir(dir, size, &LabelRules::default(), on_bad, colour)?.0)
            }
            Source::Synthetic { .. } if colour == data::Colour::Rgb => {
                bail!("synthetic captchas are grey: --colour always needs --data")
            }
            Source::Synthetic { count } => {
                let bar =
                    indicatif::ProgressBar::new_spinner().with_message(format!("drawing {count} synthetic captchas"));
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                let d = data::synthetic(captcha_synth::Config::default(), seed, 0, *count);
                bar.finish_and_clear();
                d
            }
        }
    }
    /// A short name for the default output folder.
    pub fn name(&self) -> String {
        match self {
            Source::Folder(dir) => dir.file_name().map_or("data".into(), |n| n.to_string_lossy().into_owned()),
            Source::Synthetic { .. } => "synthetic".into(),
        }
    }
}

/// Refuses an output folder that is a file.
pub fn check_out_dir(out: &Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        bail!("{}: exists and is not a folder", out.display());
    }
    Ok(())
}
