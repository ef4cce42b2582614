//! Datasets: a folder of `LABEL.png` captchas, or synthetic ones, as u8 grayscale at one size.
//!
//! Conversion follows the seed: grayscale, resized to the model's height × width (bilinear), and the network
//! sees `pixel / 255`. Width is the time axis. Images stay u8 here; the tch model and core-infer both divide.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::imageops::FilterType;

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
    /// `len × height × width` bytes, row-major per image.
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
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.height * self.width;
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
        let mut out = Dataset { height: self.height, width: self.width, ..Default::default() };
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

/// Rules a label must follow; `None` means anything goes (training infers them from the data).
#[derive(Clone, Debug, Default)]
pub struct LabelRules {
    pub alphabet: Option<String>,
    pub max_len: Option<usize>,
}

impl LabelRules {
    fn check(&self, label: &str) -> Result<(), String> {
        if label.is_empty() {
            return Err("empty label (the file name before .png is the label)".into());
        }
        if let Some(c) = label.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("contains whitespace or a control character {c:?}"));
        }
        if let Some(alphabet) = &self.alphabet {
            if let Some(c) = label.chars().find(|c| !alphabet.contains(*c)) {
                return Err(format!("character {c:?} is not in the model's alphabet {alphabet:?}"));
            }
        }
        if let Some(max) = self.max_len {
            let n = label.chars().count();
            if n > max {
                return Err(format!("{n} characters, the model reads at most {max}"));
            }
        }
        Ok(())
    }
}

/// The label of `path`: its file name without `.png`. A suffix after `_` is allowed for duplicates
/// (`abc12_2.png` reads `abc12`).
pub fn label_of(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match stem.split_once('_') {
        Some((label, _)) => label.to_string(),
        None => stem,
    }
}

/// Reads one image file as u8 grayscale at `height × width` (any input size, colour or bit depth).
pub fn load_image(path: &Path, height: usize, width: usize) -> Result<Vec<u8>, DataError> {
    let img = read_image(path)?;
    Ok(to_gray(&img, height, width))
}

/// Longest side of an image this tool decodes, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Most memory one image may take while decoded: a small file that decompresses to more (a
/// "decompression bomb", e.g. a 20000×20000 PNG of zeros in 400 KB) is refused by name.
pub const MAX_DECODED_BYTES: u64 = 128 << 20;

fn read_image(path: &Path) -> Result<image::DynamicImage, DataError> {
    let err = |reason: String| DataError::Image { path: path.to_path_buf(), reason };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    if bytes.is_empty() {
        return Err(err("the file is empty".into()));
    }
    let mut reader =
        image::ImageReader::new(std::io::Cursor::new(&bytes)).with_guessed_format().map_err(|e| err(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => err(format!(
            "{e}: this tool decodes images of at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels and {} MiB",
            MAX_DECODED_BYTES >> 20
        )),
        e => err(e.to_string()),
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(err("the image has no pixels".into()));
    }
    Ok(img)
}

/// Grayscale (luma; an image with alpha is composited on white first, so a transparent background reads
/// as paper, not as black) and a bilinear resize to `height × width`.
pub fn to_gray(img: &image::DynamicImage, height: usize, width: usize) -> Vec<u8> {
    let gray = if img.color().has_alpha() {
        image::DynamicImage::ImageRgb8(on_white(&img.to_rgba8())).to_luma8()
    } else {
        img.to_luma8()
    };
    if gray.width() as usize == width && gray.height() as usize == height {
        return gray.into_raw();
    }
    image::imageops::resize(&gray, width as u32, height as u32, FilterType::Triangle).into_raw()
}

/// `rgba` composited on a white background: `c·a + 255·(1 − a)` per channel, rounded.
pub fn on_white(rgba: &image::RgbaImage) -> image::RgbImage {
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let image::Rgba([r, g, b, a]) = *rgba.get_pixel(x, y);
        let mix = |c: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

/// The file extensions read as images (any case): the image crate's PNG, JPEG, BMP, GIF, WebP and TIFF
/// decoders are built in.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"];

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn is_image_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Lists the image files of `dir` ([`IMAGE_EXTENSIONS`]), sorted by name, so runs are reproducible.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotAFolder(dir.to_path_buf()));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::Io(dir.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_image_name(p)).collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::Empty(dir.to_path_buf()));
    }
    Ok(files)
}

/// Loads every `LABEL.png` of `dir`. The size is `size` if given (a model's), else the most common image
/// size in the folder. Returns the dataset and the number of skipped files (always 0 with [`OnBad::Fail`]).
pub fn load_dir(
    dir: &Path,
    size: Option<(usize, usize)>,
    rules: &LabelRules,
    on_bad: OnBad,
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
    let (height, width) = size.unwrap_or_else(|| most_common_size(good.iter().map(|(_, _, img)| img)));
    let mut data = Dataset { height, width, ..Default::default() };
    for (path, label, img) in good {
        data.pixels.extend(to_gray(&img, height, width));
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
    let mut data = Dataset { height, width, ..Default::default() };
    data.pixels.resize(count * height * width, 0);
    for (i, img) in data.pixels.chunks_exact_mut(height * width).enumerate() {
        let index = first + i as u64;
        let label = synth.draw(index, img).map_err(|e| anyhow::anyhow!("synthetic captcha #{index}: {e}"))?;
        data.labels.push(label.as_str().to_string());
        data.sources.push(format!("synthetic seed {seed} #{index}"));
    }
    Ok(data)
}

/// Maps text to class indices and back: class 0 is the CTC blank, class `k ≥ 1` is `alphabet[k - 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    chars: Vec<char>,
}

impl Codec {
    pub fn new(alphabet: &str) -> Self {
        Codec { chars: alphabet.chars().collect() }
    }
    pub fn alphabet(&self) -> String {
        self.chars.iter().collect()
    }
    /// Classes including the blank.
    pub fn classes(&self) -> usize {
        self.chars.len() + 1
    }
    /// Class indices of `text`, or the first character outside the alphabet.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, char> {
        text.chars().map(|c| self.chars.iter().position(|&a| a == c).map(|k| k as i64 + 1).ok_or(c)).collect()
    }
    /// Greedy CTC decoding of a best path with core-infer's collapse (repeats merged, blanks dropped), keeping
    /// the first `max_len` characters, as the seed's decoder and core-infer do.
    pub fn decode_path(&self, path: &[i64], max_len: usize) -> String {
        let mut classes = Vec::new();
        core_infer::ctc::collapse(path.iter().map(|&k| usize::try_from(k).unwrap_or(0)), |k| classes.push(k));
        classes.iter().take(max_len).filter_map(|&k| self.chars.get(k - 1)).collect()
    }
}

/// Levenshtein distance between two strings, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Sequence accuracy and character error rate of predictions against labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accuracy {
    /// Fraction of images read exactly right.
    pub sequence: f64,
    /// Edit distance over label characters.
    pub cer: f64,
}

pub fn accuracy<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Accuracy {
    let (mut n, mut right, mut edits, mut chars) = (0usize, 0usize, 0usize, 0usize);
    for (truth, pred) in pairs {
        n += 1;
        right += usize::from(truth == pred);
        edits += edit_distance(truth, pred);
        chars += truth.chars().count();
    }
    Accuracy { sequence: right as f64 / n.max(1) as f64, cer: edits as f64 / chars.max(1) as f64 }
}

/// How many disjoint validation folds a `val_fraction` makes: 10 for the seed's 90/10 split.
pub fn folds(val_fraction: f64) -> usize {
    (1.0 / val_fraction).ceil().max(1.0) as usize
}

/// A fixed-seed split: `(train, validation)` index lists. The images are shuffled with `seed` and fold `k`
/// validates on the `k`-th block of `val_fraction` of them counted from the end; fold 0 is the seed's 90/10
/// split, and folds `0..folds(val_fraction)` together validate on every image exactly once
/// (cross-validation). `None` when `fold` is out of range.
pub fn split(len: usize, val_fraction: f64, seed: u64, fold: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    if fold >= folds(val_fraction) {
        return None;
    }
    let mut idx: Vec<usize> = (0..len).collect();
    if len < 2 {
        return Some((idx, Vec::new()));
    }
    shuffle(&mut idx, seed);
    // The fold's block is [lo, hi) counted from the end: at least one image, and never all of them.
    let end = |k: usize| (len as f64 * val_fraction * k as f64).round() as usize;
    let lo = end(fold).min(len - 1);
    let hi = end(fold + 1).clamp(lo + 1, len);
    let hi = if lo == 0 { hi.min(len - 1) } else { hi };
    let val = idx.drain(len - hi..len - lo).collect();
    Some((idx, val))
}

/// `img` (`height × width`) moved `dx` columns right and `dy` rows down, the uncovered border filled
/// with the nearest edge pixel (so no artificial frame appears).
pub fn shift(img: &[u8], height: usize, width: usize, dx: isize, dy: isize) -> Vec<u8> {
    let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
    let mut out = Vec::with_capacity(height * width);
    for y in 0..height {
        let row = clamp(y as isize - dy, height) * width;
        out.extend((0..width).map(|x| img[row + clamp(x as isize - dx, width)]));
    }
    out
}

/// Fisher-Yates with SplitMix64: reproducible everywhere, no extra dependency.
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shift_moves_pixels_and_replicates_edges() {
        // 2 × 3 image: rows [1 2 3] and [4 5 6].
        let img = [1, 2, 3, 4, 5, 6];
        assert_eq!(super::shift(&img, 2, 3, 0, 0), img);
        assert_eq!(super::shift(&img, 2, 3, 1, 0), [1, 1, 2, 4, 4, 5]);
        assert_eq!(super::shift(&img, 2, 3, -1, 1), [2, 3, 3, 2, 3, 3]);
        assert_eq!(super::shift(&img, 2, 3, 5, -5), [4, 4, 4, 4, 4, 4]);
    }

    use super::*;

    #[test]
    fn codec_round_trip_and_ctc_collapse() {
        let codec = Codec::new("abc");
        assert_eq!(codec.classes(), 4);
        assert_eq!(codec.encode("cab"), Ok(vec![3, 1, 2]));
        assert_eq!(codec.encode("cAb"), Err('A'));
        // repeats collapse, a blank separates real doubles, blanks vanish
        assert_eq!(codec.decode_path(&[0, 1, 1, 0, 1, 2, 2, 0, 3, 0], 9), "aabc");
        assert_eq!(codec.decode_path(&[0, 1, 1, 0, 1, 2, 2, 0, 3, 0], 2), "aa");
        assert_eq!(codec.decode_path(&[0, 0, 0], 9), "");
    }

    #[test]
    fn edit_distance_and_accuracy() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        let acc = accuracy([("abcd", "abcd"), ("abcd", "abd")]);
        assert_eq!(acc.sequence, 0.5);
        assert_eq!(acc.cer, 1.0 / 8.0);
    }

    #[test]
    fn labels_from_file_names_and_rules() {
        assert_eq!(label_of(Path::new("x/2b827.png")), "2b827");
        assert_eq!(label_of(Path::new("x/2b827_3.png")), "2b827");
        let rules = LabelRules { alphabet: Some("abc".into()), max_len: Some(3) };
        assert!(rules.check("abc").is_ok());
        assert!(rules.check("abca").unwrap_err().contains("at most 3"));
        assert!(rules.check("abd").unwrap_err().contains("'d'"));
        assert!(rules.check("").is_err());
    }

    #[test]
    fn split_is_fixed_and_disjoint() {
        let (t, v) = split(100, 0.1, 7, 0).unwrap();
        assert_eq!((t.len(), v.len()), (90, 10));
        assert_eq!(split(100, 0.1, 7, 0), Some((t.clone(), v.clone())));
        let mut all: Vec<usize> = t.into_iter().chain(v).collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn folds_validate_every_image_once() {
        for (len, fraction) in [(936, 0.1), (100, 0.1), (7, 0.25), (2, 0.1)] {
            let n = folds(fraction);
            let mut seen = vec![0; len];
            for fold in 0..n {
                let (t, v) = split(len, fraction, 3, fold).unwrap();
                assert!(!t.is_empty() && !v.is_empty(), "{len} images, fold {fold}");
                let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
                all.sort();
                assert_eq!(all, (0..len).collect::<Vec<_>>());
                v.iter().for_each(|&i| seen[i] += 1);
            }
            // Every image validated once (tiny sets: the one image left for training repeats in a fold).
            if len >= n {
                assert_eq!(seen, vec![1; len], "{len} images in {n} folds");
            }
            assert_eq!(split(len, fraction, 3, n), None);
        }
        // Fold 0 is the 90/10 split: the last 94 of the shuffled 936, 93 or 94 in the others.
        let sizes: Vec<usize> = (0..10).map(|k| split(936, 0.1, 42, k).unwrap().1.len()).collect();
        assert_eq!(sizes, [94, 93, 94, 93, 94, 94, 93, 94, 93, 94]);
        let mut shuffled: Vec<usize> = (0..936).collect();
        shuffle(&mut shuffled, 42);
        assert_eq!(split(936, 0.1, 42, 0).unwrap().1, shuffled[842..]);
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
        let (data, skipped) = load_dir(dir.path(), Some((5, 20)), &LabelRules::default(), OnBad::Fail).unwrap();
        assert_eq!((data.len(), skipped, data.height, data.width), (1, 0, 5, 20));
        assert_eq!(data.image(0)[0], 0);
        assert_eq!(data.image(0)[19], 255);
        assert_eq!(data.labels, ["ab"]);

        std::fs::write(dir.path().join("cd.png"), b"not a png").unwrap();
        let err = load_dir(dir.path(), None, &LabelRules::default(), OnBad::Fail).unwrap_err();
        assert!(err.to_string().contains("cd.png"), "{err}");
        let (data, skipped) = load_dir(dir.path(), None, &LabelRules::default(), OnBad::Skip).unwrap();
        assert_eq!((data.len(), skipped, data.height, data.width), (1, 1, 10, 40));

        std::fs::write(dir.path().join("ef.png"), b"").unwrap();
        let rules = LabelRules { alphabet: Some("ab".into()), max_len: None };
        let err = load_dir(dir.path(), None, &rules, OnBad::Fail).unwrap_err();
        assert!(err.to_string().contains("cd.png"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(load_dir(empty.path(), None, &rules, OnBad::Fail), Err(DataError::Empty(_))));
        let missing = empty.path().join("nope");
        assert!(load_dir(&missing, None, &rules, OnBad::Fail).unwrap_err().to_string().contains("nope"));
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
