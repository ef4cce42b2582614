//! `generate`: synthetic captchas as labelled files, in grayscale or colour.

use std::path::Path;

use anyhow::{bail, Context};

use crate::data;
use crate::{io, report};

/// `generate`: writes `count` synthetic captchas as `LABEL.png` into `out` (a repeated label gets `_N`),
/// and optionally a contact sheet of the first ones to `sheet` (outside `out`, which must hold only data).
pub fn generate(
    config: captcha_synth::Config<'_>,
    count: usize,
    seed: u64,
    out: &Path,
    sheet: Option<&Path>,
    colour: bool,
) -> anyhow::Result<()> {
    if let Some(c) = config.alphabet.chars().find(|c| matches!(c, '_' | '.' | '/' | '\\')) {
        bail!("alphabet: {c:?} cannot be part of a LABEL.png file name");
    }
    let mut data = data::synthetic(config, seed, 0, count)?;
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let bar = indicatif::ProgressBar::new(count as u64);
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for i in 0..data.len() {
        let label = data.labels[i].as_str();
        let n = seen.entry(label).or_default();
        *n += 1;
        let name = if *n == 1 { format!("{label}.png") } else { format!("{label}_{n}.png") };
        let (w, h) = (data.width as u32, data.height as u32);
        let img: image::DynamicImage = if colour {
            let rgb = colourize(data.image(i), seed, i as u64);
            image::RgbImage::from_raw(w, h, rgb).context("image buffer size")?.into()
        } else {
            image::GrayImage::from_raw(w, h, data.image(i).to_vec()).context("image buffer size")?.into()
        };
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
        io::write_atomic(&out.join(name), &png)?;
        if colour {
            // the contact sheet shows what training sees: the colour image in grayscale
            let gray = img.to_luma8();
            let at = i * data.width * data.height;
            data.pixels[at..at + gray.len()].copy_from_slice(&gray);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!("wrote {count} captchas to {}", out.display());
    if let Some(sheet) = sheet {
        report::samples_png(&data, 24, sheet)?;
        eprintln!("wrote a contact sheet to {}", sheet.display());
    }
    Ok(())
}

/// A colour version of a grayscale captcha (0 = ink, 255 = background): the background gets a light
/// colour and the ink a dark one, drawn per captcha from `(seed, index)`, with per-channel noise. The
/// trainer reads colour captchas in grayscale (luma), where ink and background keep only the difference of
/// their brightness: from clear to faint (at least 60 grey levels apart), which is what makes this style harder.
pub fn colourize(gray: &[u8], seed: u64, index: u64) -> Vec<u8> {
    let mut rng = oorandom::Rand32::new(seed.rotate_left(17) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut pick = |lo: u32, hi: u32| [0; 3].map(|_| rng.rand_range(lo..hi + 1) as f32);
    let luma = |c: [f32; 3]| 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    let background = pick(110, 255);
    let mut ink = pick(0, 170);
    for _ in 0..16 {
        if luma(background) - luma(ink) >= 60.0 {
            break;
        }
        ink = pick(0, 170);
    }
    if luma(background) - luma(ink) < 60.0 {
        ink = [0.0; 3];
    }
    let mut rgb = Vec::with_capacity(3 * gray.len());
    for &g in gray {
        let t = f32::from(g) / 255.0;
        for (&b, &k) in background.iter().zip(&ink) {
            let noise = rng.rand_range(0..25) as f32 - 12.0;
            rgb.push((k + (b - k) * t + noise).clamp(0.0, 255.0) as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{LabelRules, OnBad};

    #[test]
    fn generate_writes_labels_of_the_requested_alphabet_and_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let config = captcha_synth::Config {
            alphabet: "abcdefghijklmnopqrstuvwxyz0123456789",
            min_len: 4,
            max_len: 6,
            width: 160,
            height: 40,
            ..captcha_synth::Config::default()
        };
        generate(config, 60, 3, dir.path(), None, false).unwrap();
        let rules = LabelRules::default();
        let (data, _) =
            data::load_dir(dir.path(), data::Size::OfData, &rules, OnBad::Fail, data::Colour::Grey).unwrap();
        assert_eq!(data.len(), 60);
        assert_eq!((data.width, data.height), (160, 40));
        let lengths: std::collections::BTreeSet<usize> = data.labels.iter().map(|l| l.len()).collect();
        assert_eq!(lengths.into_iter().collect::<Vec<_>>(), [4, 5, 6]);
        assert!(data.labels.iter().flat_map(|l| l.chars()).all(|c| config.alphabet.contains(c)));
    }

    #[test]
    fn colour_captchas_are_colour_deterministic_and_readable_in_grayscale() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let config = captcha_synth::Config::default();
        generate(config, 20, 5, a.path(), None, true).unwrap();
        generate(config, 20, 5, b.path(), None, true).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(a.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names.len(), 20);
        for name in &names {
            let bytes = std::fs::read(a.path().join(name)).unwrap();
            assert_eq!(bytes, std::fs::read(b.path().join(name)).unwrap(), "{name:?}: not deterministic");
            let img = image::load_from_memory(&bytes).unwrap();
            assert_eq!(img.color(), image::ColorType::Rgb8);
            // colour: some pixels have channels far apart
            let rgb = img.to_rgb8();
            assert!(rgb.pixels().any(|p| p.0.iter().max().unwrap() - p.0.iter().min().unwrap() > 40), "{name:?}");
        }
        // in grayscale (as training reads them) ink and background stay apart: dark ink pixels exist
        let rules = LabelRules::default();
        let (data, _) = data::load_dir(a.path(), data::Size::OfData, &rules, OnBad::Fail, data::Colour::Grey).unwrap();
        for i in 0..data.len() {
            let (lo, hi) = data.image(i).iter().fold((255u8, 0u8), |(lo, hi), &p| (lo.min(p), hi.max(p)));
            assert!(hi - lo >= 50, "{}: grey levels {lo}..{hi}", data.sources[i]);
        }
    }
}
