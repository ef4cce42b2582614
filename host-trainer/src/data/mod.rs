//! Datasets: a folder of `LABEL.png` captchas, or synthetic ones, as u8 grayscale (or RGB) at one size.
//!
//! Conversion follows the seed: grayscale, resized to the model's height × width (bilinear), and the network
//! sees `pixel / 255`. Width is the time axis. Images stay u8 here, as a caller passes them to core-infer's
//! `Model::run`; the model's input conversion (`core_infer::Input`) happens later, the same way in training
//! and on the device. Captchas whose colours grayscale would lose ([`grey_loss`]) are kept in RGB.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod images;
mod labels;
mod split;

pub use images::*;
pub use labels::*;
pub use split::*;

/// Why a dataset could not be loaded. Every variant names the file or folder at fault.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{0}: no such folder")]
    NotAFolder(PathBuf),
    #[error("{0}: no images in this folder (expected files named LABEL.png, e.g. 2b827.png; .jpg, .bmp, .gif, .webp and .tif too)")]
    Empty(PathBuf),
    #[error("{path}: cannot read the image: {reason}")]
    Image { path: PathBuf, reason: String },
    #[error("{path}: bad label {label:?}: {reason}")]
    Label { path: PathBuf, label: String, reason: String },
    #[error("{0}: cannot list the folder: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{what}: all {skipped} images were skipped as unreadable or badly labelled; none left to use")]
    AllSkipped { what: PathBuf, skipped: usize },
}

/// Images of one size with their labels.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub height: usize,
    pub width: usize,
    /// RGB images (3 bytes per pixel) rather than grey: for a colour model (`core_infer::Input::Ink`).
    pub colour: bool,
    /// `len × height × width × channels` bytes, row-major per image.
    pub pixels: Vec<u8>,
    pub labels: Vec<String>,
    /// Where each image came from (file path, or `synthetic #index`), for messages and reports.
    pub sources: Vec<String>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Bytes per pixel: 3 for colour, 1 for grey.
    pub fn channels(&self) -> usize {
        if self.colour {
            3
        } else {
            1
        }
    }
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width * self.channels();
        &self.pixels[i * n..(i + 1) * n]
    }
    /// The sorted set of characters in the labels.
    pub fn alphabet(&self) -> String {
        let set: BTreeSet<char> = self.labels.iter().flat_map(|l| l.chars()).collect();
        set.into_iter().collect()
    }
    pub fn max_label_len(&self) -> usize {
        self.labels.iter().map(|l| l.chars().count()).max().unwrap_or(0)
    }
    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let mut out = Dataset { height: self.height, width: self.width, colour: self.colour, ..Default::default() };
        for &i in indices {
            out.pixels.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i].clone());
            out.sources.push(self.sources[i].clone());
        }
        out
    }
}

/// What to do with a bad file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnBad {
    /// Stop with an error naming the file.
    #[default]
    Fail,
    /// Warn, count it and go on.
    Skip,
}

/// Grey or colour images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Colour {
    /// Grayscale (luma): what a grey model reads.
    #[default]
    Grey,
    /// RGB: what a colour model (`core_infer::Input::Ink`) reads.
    Rgb,
    /// RGB if the images' colours would be lost in grey ([`grey_loss`]), else grey: for training.
    Auto,
}

impl Colour {
    /// What a model reads: RGB for a colour model, else grey.
    pub fn of_model(colour: bool) -> Self {
        if colour {
            Colour::Rgb
        } else {
            Colour::Grey
        }
    }
}

/// The size images are resized to when loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// The most common image size in the folder.
    OfData,
    /// At most this many rows: if the most common size is taller, it is shrunk (aspect ratio kept) to this
    /// many rows, or to as many as leave [`COLUMNS_PER_CHARACTER`] columns for each character of the longest
    /// label, whichever is more; never enlarged.
    Height(usize),
    /// `(height, width)`: a model's.
    Exact(usize, usize),
}

/// Columns a shrunk image keeps per character of its longest label ([`Size::Height`]): 6 of the network's
/// time steps (one per 4 columns after the two pools). Measured (README, training): the Python `captcha`
/// style's 160×60 images with up to 6 characters, shrunk to 85×32 (3.5 steps per character), read 89.33%
/// where at their own size (6.7 steps) they read 97.00%; the real captchas at 128×32 (6.4) and a
/// 4-character style at 128×32 (8) read as well as or better than at their own size.
pub const COLUMNS_PER_CHARACTER: usize = 24;

impl Size {
    fn of<'a>(self, imgs: impl Iterator<Item = &'a image::DynamicImage>, max_label_len: usize) -> (usize, usize) {
        match self {
            Size::Exact(h, w) => (h, w),
            Size::OfData => most_common_size(imgs),
            Size::Height(rows) => match most_common_size(imgs) {
                (h, w) if h > rows => {
                    let keep = (h * COLUMNS_PER_CHARACTER * max_label_len).div_ceil(w.max(1));
                    let rows = rows.max(keep);
                    if rows >= h {
                        (h, w)
                    } else {
                        (rows, ((w * rows + h / 2) / h).max(4))
                    }
                }
                own => own,
            },
        }
    }
}

/// Loads every `LABEL.png` of `dir`, resized as `size` says, grey or RGB as `colour` says. Returns the
/// dataset and the number of skipped files (always 0 with [`OnBad::Fail`]).
pub fn load_dir(
    dir: &Path,
    size: Size,
    rules: &LabelRules,
    on_bad: OnBad,
    colour: Colour,
) -> Result<(Dataset, usize), DataError> {
    let files = list_images(dir)?;
    let mut good = Vec::new();
    let mut skipped = 0;
    for path in files {
        let label = label_of(&path);
        let result = rules
            .check(&label)
            .map_err(|reason| DataError::Label { path: path.clone(), label: label.clone(), reason })
            .and_then(|()| read_image(&path));
        match (result, on_bad) {
            (Ok(img), _) => good.push((path, label, img)),
            (Err(e), OnBad::Skip) => {
                eprintln!("warning: skipping {e}");
                skipped += 1;
            }
            (Err(e), OnBad::Fail) => return Err(e),
        }
    }
    if good.is_empty() {
        return Err(DataError::AllSkipped { what: dir.to_path_buf(), skipped });
    }
    let longest = good.iter().map(|(_, label, _)| label.chars().count()).max().unwrap_or(1);
    let (height, width) = size.of(good.iter().map(|(_, _, img)| img), longest);
    let colour = match colour {
        Colour::Grey => false,
        Colour::Rgb => true,
        Colour::Auto => {
            let lost = grey_loss(good.iter().map(|(_, _, img)| img).take(COLOUR_SAMPLE));
            let colour = lost >= COLOUR_LOSS;
            eprintln!(
                "{:.1}% of the drawn pixels of the first {} images nearly vanish in grayscale: {}",
                100.0 * lost,
                good.len().min(COLOUR_SAMPLE),
                if colour { "training on colour (ink input)" } else { "training on grayscale" }
            );
            colour
        }
    };
    let mut data = Dataset { height, width, colour, ..Default::default() };
    for (path, label, img) in good {
        data.pixels.extend(to_pixels(&img, height, width, colour));
        data.labels.push(label);
        data.sources.push(path.display().to_string());
    }
    if skipped > 0 {
        eprintln!("warning: skipped {skipped} bad file(s) in {}", dir.display());
    }
    Ok((data, skipped))
}

fn most_common_size<'a>(imgs: impl Iterator<Item = &'a image::DynamicImage>) -> (usize, usize) {
    let mut counts = std::collections::BTreeMap::<(usize, usize), usize>::new();
    for img in imgs {
        *counts.entry((img.height() as usize, img.width() as usize)).or_default() += 1;
    }
    counts.into_iter().max_by_key(|&(size, n)| (n, size)).map(|(s, _)| s).unwrap_or((50, 200))
}

/// `count` synthetic captchas drawn by [`captcha_synth`] with `config`, images `first..first+count` of `seed`.
pub fn synthetic(config: captcha_synth::Config<'_>, seed: u64, first: u64, count: usize) -> anyhow::Result<Dataset> {
    let synth = captcha_synth::Synth::new(config, seed).map_err(|e| anyhow::anyhow!("synthetic captchas: {e}"))?;
    let (height, width) = (usize::from(config.height), usize::from(config.width));
    let mut data = Dataset { height, width, colour: false, ..Default::default() };
    data.pixels.resize(count * height * width, 0);
    for (i, img) in data.pixels.chunks_exact_mut(height * width).enumerate() {
        let index = first + i as u64;
        let label = synth.draw(index, img).map_err(|e| anyhow::anyhow!("synthetic captcha #{index}: {e}"))?;
        data.labels.push(label.as_str().to_string());
        data.sources.push(format!("synthetic seed {seed} #{index}"));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img_of(width: u32, height: u32) -> image::DynamicImage {
        image::DynamicImage::ImageLuma8(image::GrayImage::new(width, height))
    }

    #[test]
    fn loads_colour_images_of_any_size_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        // a colour 16-bit 40x10 image: black left half, white right half
        let img = image::ImageBuffer::from_fn(40, 10, |x, _| {
            let v = if x < 20 { 0u16 } else { u16::MAX };
            image::Rgb([v, v, v])
        });
        image::DynamicImage::ImageRgb16(img).save(dir.path().join("ab.png")).unwrap();
        let (data, skipped) =
            load_dir(dir.path(), Size::Exact(5, 20), &LabelRules::default(), OnBad::Fail, Colour::Grey).unwrap();
        assert_eq!((data.len(), skipped, data.height, data.width), (1, 0, 5, 20));
        assert_eq!(data.image(0)[0], 0);
        assert_eq!(data.image(0)[19], 255);
        assert_eq!(data.labels, ["ab"]);
        // a height keeps the aspect ratio (400x10 at 5 rows: 200 columns) and 24 columns per character of the
        // longest label (200x10 with 5 characters: 120 columns, so 6 rows; 40x10 with 2: 48, its own size)
        assert_eq!(Size::Height(5).of(std::iter::once(&img_of(400, 10)), 1), (5, 200));
        assert_eq!(Size::Height(5).of(std::iter::once(&img_of(200, 10)), 5), (6, 120));
        assert_eq!(Size::Height(5).of(std::iter::once(&img_of(40, 10)), 2), (10, 40));
        // load_dir passes the longest label: "ab" keeps its 40x10
        let (kept, _) =
            load_dir(dir.path(), Size::Height(5), &LabelRules::default(), OnBad::Fail, Colour::Grey).unwrap();
        assert_eq!((kept.height, kept.width), (10, 40));
        // and never enlarges
        let (own, _) =
            load_dir(dir.path(), Size::Height(32), &LabelRules::default(), OnBad::Fail, Colour::Grey).unwrap();
        assert_eq!((own.height, own.width), (10, 40));

        std::fs::write(dir.path().join("cd.png"), b"not a png").unwrap();
        let err = load_dir(dir.path(), Size::OfData, &LabelRules::default(), OnBad::Fail, Colour::Grey).unwrap_err();
        assert!(err.to_string().contains("cd.png"), "{err}");
        let (data, skipped) =
            load_dir(dir.path(), Size::OfData, &LabelRules::default(), OnBad::Skip, Colour::Grey).unwrap();
        assert_eq!((data.len(), skipped, data.height, data.width), (1, 1, 10, 40));

        std::fs::write(dir.path().join("ef.png"), b"").unwrap();
        let rules = LabelRules { alphabet: Some("ab".into()), max_len: None };
        let err = load_dir(dir.path(), Size::OfData, &rules, OnBad::Fail, Colour::Grey).unwrap_err();
        assert!(err.to_string().contains("cd.png"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_dir(empty.path(), Size::OfData, &rules, OnBad::Fail, Colour::Grey),
            Err(DataError::Empty(_))
        ));
        let missing = empty.path().join("nope");
        assert!(load_dir(&missing, Size::OfData, &rules, OnBad::Fail, Colour::Grey)
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }

    #[test]
    fn synthetic_data_is_deterministic() {
        let cfg = captcha_synth::Config::default();
        let a = synthetic(cfg, 3, 10, 4).unwrap();
        let b = synthetic(cfg, 3, 10, 4).unwrap();
        assert_eq!((a.pixels == b.pixels, &a.labels), (true, &b.labels));
        let c = synthetic(cfg, 4, 10, 4).unwrap();
        assert_ne!(a.pixels, c.pixels);
    }
}
