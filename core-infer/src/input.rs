//! What happens to a grayscale image before the network sees `pixel / 255`, as the model file records it.
//!
//! A model trained on contrast-stretched images ([`Input::Stretch`]) gets its input stretched the same way
//! here, inside [`crate::Model::run`], so a caller always passes the image as it is. The stretch is a
//! 256-entry table built from the image's darkest and lightest pixel, in integers, identical on every
//! target; the host trainer uses this very function for its training images.

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
}

impl Input {
    pub(crate) fn from_u16(v: u16) -> Result<Self, Error> {
        match v {
            0 => Ok(Input::Plain),
            1 => Ok(Input::Stretch),
            _ => Err(Error::BadHeader),
        }
    }

    /// The table taking each pixel value of `pixels` to the value the network sees.
    pub fn table(self, pixels: &[u8]) -> [u8; 256] {
        match self {
            Input::Plain => IDENTITY,
            Input::Stretch => stretch_table(pixels),
        }
    }

    /// Converts `pixels` in place: what a tool feeding another runtime (tch, ONNX) does first.
    pub fn apply(self, pixels: &mut [u8]) {
        let table = self.table(pixels);
        for p in pixels {
            *p = lookup(&table, *p);
        }
    }
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
    fn header_values_other_than_0_and_1_are_refused() {
        assert_eq!(Input::from_u16(0), Ok(Input::Plain));
        assert_eq!(Input::from_u16(1), Ok(Input::Stretch));
        assert_eq!(Input::from_u16(2), Err(Error::BadHeader));
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
