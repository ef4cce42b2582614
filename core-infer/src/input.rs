//! What happens to an image before the network sees `pixel / 255`, as the model file records it.
//!
//! A model trained on contrast-stretched images ([`Input::Stretch`]) gets its input stretched the same way
//! here, inside [`crate::Model::run`], so a caller always passes the image as it is. The stretch is a
//! 256-entry table built from the image's darkest and lightest pixel, in integers, identical on every
//! target; the host trainer uses this very function for its training images.
//!
//! A colour model ([`Input::Ink`]) takes RGB images and first makes one grey channel of them: how far each
//! pixel's colour is from the background's ([`ink`]), so that a character whose colour differs from the
//! background in hue but hardly in brightness (red on green, blue on grey) is as visible as black on white.
//! Grayscale (luma) keeps only brightness; on captchas with a colour per character it loses whole
//! characters.

use crate::Error;

/// The conversion a model was trained with (the header's input field, see [`crate::format`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Input {
    /// The pixels as they are: the seed's conversion.
    #[default]
    Plain = 0,
    /// Each image's contrast stretched first: its darkest pixel becomes 0 and its lightest 255, linearly
    /// ([`stretch_table`]). Faint captchas (light ink, dark or coloured backgrounds) then look like clear ones.
    Stretch = 1,
    /// Colour images (RGB, 3 bytes per pixel): each pixel becomes `255 − d`, `d` its colour's largest
    /// channel difference from the background colour (the per-channel median of the border pixels, see
    /// [`ink`]), and that grey image is contrast stretched ([`stretch_table`]). Ink of any colour then reads
    /// dark on white.
    Ink = 2,
}

impl Input {
    pub(crate) fn from_u16(v: u16) -> Result<Self, Error> {
        match v {
            0 => Ok(Input::Plain),
            1 => Ok(Input::Stretch),
            2 => Ok(Input::Ink),
            _ => Err(Error::BadHeader),
        }
    }

    /// Bytes per pixel of the images the model takes: 3 (RGB) for [`Input::Ink`], else 1 (grey).
    pub const fn channels(self) -> usize {
        match self {
            Input::Ink => 3,
            Input::Plain | Input::Stretch => 1,
        }
    }

    /// The table taking each grey value of `pixels` (for [`Input::Ink`]: of its [`ink`] image) to the value
    /// the network sees.
    pub fn table(self, pixels: &[u8]) -> [u8; 256] {
        match self {
            Input::Plain => IDENTITY,
            Input::Stretch | Input::Ink => stretch_table(pixels),
        }
    }

    /// Applies the table step in place to a grey image: the whole conversion of [`Input::Plain`] and
    /// [`Input::Stretch`]; for [`Input::Ink`], the stretch that follows [`ink`] (see [`Input::convert`]).
    pub fn apply(self, pixels: &mut [u8]) {
        let table = self.table(pixels);
        for p in pixels {
            *p = lookup(&table, *p);
        }
    }

    /// Converts an image (`height × width × channels()` bytes, as a caller passes it to
    /// [`crate::Model::run`]) into the `height × width` grey image the network sees: what a tool feeding
    /// another runtime (tch, ONNX) does first.
    pub fn convert(self, image: &[u8], height: usize, width: usize, out: &mut [u8]) -> Result<(), Error> {
        let n = height.checked_mul(width).ok_or(Error::ImageSize)?;
        if out.len() != n || Some(image.len()) != n.checked_mul(self.channels()) {
            return Err(Error::ImageSize);
        }
        match self {
            Input::Ink => ink(image, height, width, out)?,
            Input::Plain | Input::Stretch => out.copy_from_slice(image),
        }
        self.apply(out);
        Ok(())
    }
}

/// The background colour of an RGB image (`height × width × 3` bytes): per channel, the median (the lower
/// one for an even count) of the pixels on the image's border. Captchas draw their text inside; lines and
/// dots that reach the border are a minority of it.
pub fn background(rgb: &[u8], height: usize, width: usize) -> [u8; 3] {
    let mut bg = [0u8; 3];
    let bytes = height.checked_mul(width).and_then(|n| n.checked_mul(3));
    if height == 0 || width == 0 || bytes.is_none_or(|n| rgb.len() < n) {
        return bg;
    }
    // The border, each pixel once: the first and last rows, then the first and last columns between them.
    let border = (0..width).map(|x| (0, x)).chain((0..width).filter(|_| height > 1).map(|x| (height - 1, x))).chain(
        (1..height.saturating_sub(1))
            .flat_map(|y| core::iter::once((y, 0)).chain(core::iter::once((y, width - 1)).filter(|_| width > 1))),
    );
    for (c, out) in bg.iter_mut().enumerate() {
        let mut counts = [0u32; 256];
        let mut n = 0u32;
        for (y, x) in border.clone() {
            if let Some(&v) = rgb.get((y * width + x) * 3 + c) {
                if let Some(k) = counts.get_mut(usize::from(v)) {
                    *k += 1;
                    n += 1;
                }
            }
        }
        // The value where the running count first passes the lower middle, (n - 1) / 2.
        let mut seen = 0u32;
        for (v, &k) in (0u8..=255).zip(counts.iter()) {
            seen += k;
            if seen > n.saturating_sub(1) / 2 {
                *out = v;
                break;
            }
        }
    }
    bg
}

/// The ink image of an RGB image (`height × width × 3` bytes) into `out` (`height × width`): each pixel
/// `255 − max(|r − r₀|, |g − g₀|, |b − b₀|)` for the [`background`] colour `(r₀, g₀, b₀)`. The background
/// is white, and anything drawn on it is darker the more its colour differs, whatever its brightness.
pub fn ink(rgb: &[u8], height: usize, width: usize, out: &mut [u8]) -> Result<(), Error> {
    let n = height.checked_mul(width).ok_or(Error::ImageSize)?;
    if out.len() != n || Some(rgb.len()) != n.checked_mul(3) {
        return Err(Error::ImageSize);
    }
    let [r0, g0, b0] = background(rgb, height, width);
    for (o, p) in out.iter_mut().zip(rgb.chunks_exact(3)) {
        if let [r, g, b] = *p {
            *o = 255 - r.abs_diff(r0).max(g.abs_diff(g0)).max(b.abs_diff(b0));
        }
    }
    Ok(())
}

/// `table[p]`, without a bounds check to fail: a u8 always indexes 256 entries.
#[inline(always)]
pub(crate) fn lookup(table: &[u8; 256], p: u8) -> u8 {
    table.get(usize::from(p)).copied().unwrap_or(p)
}

// Evaluated at compile time, where an index out of bounds would be a build error, not a panic.
#[allow(clippy::indexing_slicing)]
const IDENTITY: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i as u8;
        i += 1;
    }
    t
};

/// The contrast stretch of one image: `lo ↦ 0`, `hi ↦ 255` for its darkest and lightest pixel, linearly in
/// between, rounded to nearest. An image of one grey level (or none) is left as it is. Stretching twice
/// changes nothing more (the second stretch sees 0 and 255 and is the identity), so host tools may stretch
/// images that core-infer stretches again.
pub fn stretch_table(pixels: &[u8]) -> [u8; 256] {
    let (lo, hi) = pixels.iter().fold((u8::MAX, u8::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    let range = u32::from(hi.saturating_sub(lo));
    if range == 0 {
        return IDENTITY;
    }
    let mut table = [0u8; 256];
    for (v, out) in (0u32..).zip(table.iter_mut()) {
        let d = v.saturating_sub(u32::from(lo)).min(range);
        *out = u8::try_from((d * 255 + range / 2) / range).unwrap_or(u8::MAX);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::{vec, vec::Vec};

    #[test]
    fn stretch_maps_the_extremes_to_black_and_white() {
        let image = [100u8, 120, 140, 160, 180, 200];
        let mut out = image;
        Input::Stretch.apply(&mut out);
        assert_eq!(out, [0, 51, 102, 153, 204, 255]);
        // a plain model sees the pixels unchanged
        let mut plain = image;
        Input::Plain.apply(&mut plain);
        assert_eq!(plain, image);
    }

    #[test]
    fn flat_and_empty_images_are_left_alone() {
        let mut flat = [77u8; 9];
        Input::Stretch.apply(&mut flat);
        assert_eq!(flat, [77; 9]);
        assert_eq!(stretch_table(&[]), IDENTITY);
    }

    #[test]
    fn header_values_other_than_0_1_and_2_are_refused() {
        assert_eq!(Input::from_u16(0), Ok(Input::Plain));
        assert_eq!(Input::from_u16(1), Ok(Input::Stretch));
        assert_eq!(Input::from_u16(2), Ok(Input::Ink));
        assert_eq!(Input::from_u16(3), Err(Error::BadHeader));
    }

    /// A `h × w` RGB image of colour `bg` with `ink` drawn at the pixels `at` says.
    fn painted(h: usize, w: usize, bg: [u8; 3], ink: [u8; 3], at: impl Fn(usize, usize) -> bool) -> Vec<u8> {
        (0..h * w).flat_map(|i| if at(i / w, i % w) { ink } else { bg }).collect()
    }

    #[test]
    fn ink_shows_a_colour_that_grey_loses() {
        // Red (76 in luma) on a grey of the same luma: luma sees nothing, ink sees a full-strength stroke.
        let (h, w) = (6, 8);
        let rgb = painted(h, w, [76, 76, 76], [255, 0, 0], |y, x| (2..4).contains(&y) && (2..6).contains(&x));
        assert_eq!(background(&rgb, h, w), [76, 76, 76]);
        let mut out = vec![0; h * w];
        ink(&rgb, h, w, &mut out).unwrap();
        for (i, &v) in out.iter().enumerate() {
            let (y, x) = (i / w, i % w);
            let expect = if (2..4).contains(&y) && (2..6).contains(&x) { 255 - 179 } else { 255 };
            assert_eq!(v, expect, "pixel ({y}, {x})");
        }
        // The model's conversion then stretches it: the stroke black, the background white.
        let mut seen = vec![0; h * w];
        Input::Ink.convert(&rgb, h, w, &mut seen).unwrap();
        assert!(seen.iter().all(|&v| v == 0 || v == 255) && seen.contains(&0));
        // Wrong sizes are refused, not read past.
        assert_eq!(Input::Ink.convert(&rgb[1..], h, w, &mut seen), Err(Error::ImageSize));
        assert_eq!(Input::Stretch.convert(&rgb, h, w, &mut seen), Err(Error::ImageSize));
        assert_eq!(ink(&rgb, h, w, &mut seen[1..]), Err(Error::ImageSize));
    }

    #[test]
    fn the_background_is_the_border_median_per_channel() {
        // A 4 x 5 border has 14 pixels; 6 of them drawn over keep the median at the background.
        let (h, w) = (4, 5);
        let rgb = painted(h, w, [10, 200, 30], [250, 0, 250], |y, x| (y == 0 && x < 4) || (x == 0 && y > 1));
        assert_eq!(background(&rgb, h, w), [10, 200, 30]);
        // Tiny and empty images have a border too (or none: black).
        assert_eq!(background(&[1, 2, 3], 1, 1), [1, 2, 3]);
        assert_eq!(background(&[], 0, 0), [0, 0, 0]);
    }

    proptest! {
        #[test]
        fn the_background_is_a_median_of_the_border(
            (h, w, rgb) in (1usize..7, 1usize..7).prop_flat_map(|(h, w)| (Just(h), Just(w), prop::collection::vec(any::<u8>(), h * w * 3)))
        ) {
            // Independent reference: collect the border by testing every pixel, sort, take the lower middle.
            let bg = background(&rgb, h, w);
            for c in 0..3 {
                let mut v: Vec<u8> = (0..h * w)
                    .filter(|i| i / w == 0 || i / w == h - 1 || i % w == 0 || i % w == w - 1)
                    .map(|i| rgb[i * 3 + c])
                    .collect();
                v.sort_unstable();
                prop_assert_eq!(bg[c], v[(v.len() - 1) / 2]);
            }
        }

        #[test]
        fn grey_rgb_images_ink_as_their_distance_from_the_background(
            (h, w, grey) in (1usize..7, 1usize..7).prop_flat_map(|(h, w)| (Just(h), Just(w), prop::collection::vec(any::<u8>(), h * w)))
        ) {
            let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
            let b = background(&rgb, h, w)[0];
            let mut out = vec![0; h * w];
            ink(&rgb, h, w, &mut out).unwrap();
            for (&g, &o) in grey.iter().zip(&out) {
                prop_assert_eq!(i32::from(o), 255 - (i32::from(g) - i32::from(b)).abs());
            }
        }
    }

    proptest! {
        #[test]
        fn stretch_is_monotonic_spans_the_range_and_is_idempotent(image in prop::collection::vec(any::<u8>(), 1..300)) {
            let mut once = image.clone();
            Input::Stretch.apply(&mut once);
            let (lo, hi) = (*image.iter().min().unwrap(), *image.iter().max().unwrap());
            if lo < hi {
                prop_assert_eq!(*once.iter().min().unwrap(), 0);
                prop_assert_eq!(*once.iter().max().unwrap(), 255);
            } else {
                prop_assert_eq!(&once, &image);
            }
            // order kept, and each value within rounding of the exact linear map
            for (&a, &sa) in image.iter().zip(&once) {
                for (&b, &sb) in image.iter().zip(&once) {
                    prop_assert!(a > b || sa <= sb);
                }
                if lo < hi {
                    let exact = f64::from(a - lo) * 255.0 / f64::from(hi - lo);
                    prop_assert!((f64::from(sa) - exact).abs() <= 0.5 + 1e-9, "{} -> {} (exact {})", a, sa, exact);
                }
            }
            let mut twice = once.clone();
            Input::Stretch.apply(&mut twice);
            prop_assert_eq!(twice, once);
        }
    }
}
