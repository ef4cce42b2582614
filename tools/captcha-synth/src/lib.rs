//! Deterministic synthetic captchas, drawn without a heap so the trainer, the tests and the firmware
//! all draw the very same image for the same `(seed, index)`.
//!
//! ```
//! use captcha_synth::{Config, Synth};
//! let synth = Synth::new(Config::default(), 42).unwrap();
//! let mut pixels = [0u8; 200 * 50];
//! let label = synth.draw(7, &mut pixels).unwrap();
//! assert_eq!(label.len(), 5);
//! assert_eq!(label, synth.draw(7, &mut [0u8; 200 * 50]).unwrap());
//! ```
//!
//! How a captcha is drawn (all randomness from one [`oorandom::Rand32`] seeded by `(seed, index)`):
//! 1. a light background with a left-to-right gradient;
//! 2. each character is rendered with one of several embedded-graphics mono fonts (one per captcha)
//!    into a small bitmap, then pasted through an affine map (scale, shear, rotation) with bilinear coverage, so the glyphs
//!    are larger, slanted and anti-aliased; position and spacing jitter per character;
//! 3. strike lines (wavy polylines of random thickness) cross the text;
//! 4. per-pixel noise, then an optional 3x3 box blur.
//!
//! The arithmetic is `f32` through `libm`, which is bit-identical on every target, so the host and a
//! Cortex-M draw identical pixels.
#![no_std]
#![deny(unsafe_code)]

/// The test fixtures the host and every firmware share, defined once: which captchas are embedded, which
/// are drawn on the device, and how a run's raw scores are pinned in one number. `expected.txt` is
/// computed from these on the host (`tests/tests/firmware_expected.rs`) and printed by the firmware.
pub mod fixtures {
    /// Embedded test images: captchas `0..TEST_IMAGES` of generator seed `TEST_SEED`, the default look
    /// (the host's golden test set starts with them).
    pub const TEST_SEED: u64 = 9001;
    pub const TEST_IMAGES: u64 = 4;
    /// Captchas the firmware draws itself: `0..DRAW_COUNT` of seed `DRAW_SEED`.
    pub const DRAW_SEED: u64 = 7;
    pub const DRAW_COUNT: u64 = 8;
    /// Bytes of one grey captcha of the default look (`Config::default()`: 200 × 50), for buffers sized at
    /// compile time.
    pub const IMAGE_BYTES: usize = 200 * 50;

    /// FNV-1a (32-bit) of raw int8 scores: one number that pins every score bit for bit.
    pub fn fingerprint(scores: &[i8]) -> u32 {
        scores.iter().fold(0x811c_9dc5u32, |h, &b| (h ^ u32::from(b as u8)).wrapping_mul(0x0100_0193))
    }
}

use embedded_graphics::{
    mono_font::{ascii, MonoFont, MonoTextStyle},
    pixelcolor::{BinaryColor, Gray8, GrayColor},
    prelude::*,
    primitives::{Polyline, PrimitiveStyle},
    text::{Baseline, Text},
};

/// The real dataset's alphabet (`captcha_images_v2`).
pub const DEFAULT_ALPHABET: &str = "2345678bcdefgmnpwxy";
/// Longest label the generator draws.
pub const MAX_LEN: usize = 32;
/// Widest image the generator draws (the blur keeps two rows of this size on the stack).
pub const MAX_WIDTH: u16 = 512;

/// A label: at most [`MAX_LEN`] ASCII characters.
pub type Label = heapless::String<MAX_LEN>;

/// What went wrong; the generator never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The pixel buffer is not `width * height` bytes.
    BufferSize { expected: usize, got: usize },
    /// Zero or too large a size, a label length range that is empty or above [`MAX_LEN`].
    BadSize,
    /// The alphabet is empty or holds a character the fonts cannot draw (printable ASCII only).
    BadAlphabet,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BufferSize { expected, got } => {
                write!(f, "pixel buffer holds {got} bytes, the image needs {expected}")
            }
            Error::BadSize => {
                write!(f, "image size must be 16x16..{MAX_WIDTH}x256 and label lengths 1..={MAX_LEN}, min <= max")
            }
            Error::BadAlphabet => write!(f, "alphabet must be non-empty printable ASCII without spaces"),
        }
    }
}

impl core::error::Error for Error {}

/// The look of the captchas. [`Config::default`] matches the real set: 200x50, five characters of
/// [`DEFAULT_ALPHABET`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config<'a> {
    pub width: u16,
    pub height: u16,
    pub alphabet: &'a str,
    pub min_len: u8,
    pub max_len: u8,
    /// Amplitude of per-pixel noise, in grey levels.
    pub noise: u8,
    /// Up to this many strike lines per image.
    pub strike_lines: u8,
    /// 3x3 box blur at the end.
    pub blur: bool,
}

impl Default for Config<'_> {
    fn default() -> Self {
        Config {
            width: 200,
            height: 50,
            alphabet: DEFAULT_ALPHABET,
            min_len: 5,
            max_len: 5,
            noise: 24,
            strike_lines: 2,
            blur: true,
        }
    }
}

/// Fonts the characters are drawn with (one picked per captcha). Bold fonts are left
/// out: scaled up and blurred, their `m` and `w` fill into blobs.
const FONTS: [&MonoFont<'static>; 6] = [
    &ascii::FONT_10X20,
    &ascii::FONT_9X18,
    &ascii::FONT_9X15,
    &ascii::FONT_8X13,
    &ascii::FONT_8X13_ITALIC,
    &ascii::FONT_7X14,
];

/// A seeded captcha source: `draw(index)` is a pure function of `(config, seed, index)`.
#[derive(Debug, Clone, Copy)]
pub struct Synth<'a> {
    config: Config<'a>,
    seed: u64,
}

impl<'a> Synth<'a> {
    /// Checks the configuration once.
    pub fn new(config: Config<'a>, seed: u64) -> Result<Self, Error> {
        let sizes_ok = (16..=MAX_WIDTH).contains(&config.width)
            && (16..=256).contains(&config.height)
            && config.min_len >= 1
            && config.min_len <= config.max_len
            && usize::from(config.max_len) <= MAX_LEN;
        if !sizes_ok {
            return Err(Error::BadSize);
        }
        let alphabet_ok = !config.alphabet.is_empty() && config.alphabet.chars().all(|c| c.is_ascii_graphic());
        if !alphabet_ok {
            return Err(Error::BadAlphabet);
        }
        Ok(Synth { config, seed })
    }

    pub fn config(&self) -> &Config<'a> {
        &self.config
    }

    /// Draws captcha number `index` into `pixels` (row-major grayscale, `width * height` bytes) and
    /// returns its label.
    pub fn draw(&self, index: u64, pixels: &mut [u8]) -> Result<Label, Error> {
        let (w, h) = (usize::from(self.config.width), usize::from(self.config.height));
        if pixels.len() != w * h {
            return Err(Error::BufferSize { expected: w * h, got: pixels.len() });
        }
        let mut rng = rng_for(self.seed, index);
        let label = self.pick_label(&mut rng);
        let mut canvas = Canvas { pixels, width: w, height: h };
        let cfg = &self.config;

        // 1. Background: light, with a horizontal gradient.
        let left = 200.0 + uniform(&mut rng, 0.0, 55.0);
        let right = 200.0 + uniform(&mut rng, 0.0, 55.0);
        for y in 0..h {
            for x in 0..w {
                let t = x as f32 / w as f32;
                canvas.set(x, y, (left + (right - left) * t) as u8);
            }
        }

        // 2. Characters, in one font per captcha. Font cells 55-80% of the image height (the ink of
        //    lower-case letters is about half a cell); the advance shrinks if the label would not fit.
        let ink = uniform(&mut rng, 0.0, 70.0);
        let font = FONTS[rng.rand_range(0..FONTS.len() as u32) as usize];
        let n = label.len() as f32;
        let mut glyph_h = h as f32 * uniform(&mut rng, 0.55, 0.8);
        let spacing = uniform(&mut rng, 0.55, 0.75);
        let max_advance = w as f32 * 0.85 / n;
        if glyph_h * spacing > max_advance {
            glyph_h = max_advance / spacing;
        }
        let advance = glyph_h * spacing;
        let slack = (w as f32 - advance * n).max(0.0);
        let mut x = uniform(&mut rng, 0.1, 0.6) * slack + advance * 0.5;
        for ch in label.chars() {
            let glyph = Glyph::render(font, ch);
            let scale = glyph_h / font.character_size.height as f32 * uniform(&mut rng, 0.95, 1.05);
            let cy = h as f32 * 0.5 + uniform(&mut rng, -0.08, 0.08) * h as f32;
            let cx = x + uniform(&mut rng, -0.05, 0.05) * advance;
            let placement = Placement {
                cx,
                cy,
                scale_x: scale * uniform(&mut rng, 0.9, 1.15),
                scale_y: scale,
                shear: uniform(&mut rng, -0.3, 0.3),
                angle: uniform(&mut rng, -0.15, 0.15),
            };
            glyph.paste(&mut canvas, &placement, ink);
            x += advance * uniform(&mut rng, 0.9, 1.1);
        }

        // 3. Strike lines: wavy polylines across the text.
        let lines = rng.rand_range(0..u32::from(cfg.strike_lines) + 1);
        // 6.28, not TAU: the drawn captchas (and the firmware's recorded outputs) depend on the exact value.
        #[allow(clippy::approx_constant)]
        let turn = 6.28;
        for _ in 0..lines {
            let mut points = [Point::zero(); 9];
            let y0 = uniform(&mut rng, 0.25, 0.75) * h as f32;
            let slope = uniform(&mut rng, -0.25, 0.25) * h as f32;
            let amplitude = uniform(&mut rng, 0.0, 0.15) * h as f32;
            let phase = uniform(&mut rng, 0.0, turn);
            let (x0, x1) = (uniform(&mut rng, 0.0, 0.3) * w as f32, uniform(&mut rng, 0.7, 1.0) * w as f32);
            for (i, p) in points.iter_mut().enumerate() {
                let t = i as f32 / 8.0;
                let y = y0 + slope * (t - 0.5) + amplitude * libm::sinf(phase + t * turn);
                *p = Point::new((x0 + (x1 - x0) * t) as i32, y as i32);
            }
            let shade = Gray8::new(ink as u8);
            let width = rng.rand_range(1..3);
            // Drawing into a Canvas cannot fail.
            let _ = Polyline::new(&points).into_styled(PrimitiveStyle::with_stroke(shade, width)).draw(&mut canvas);
        }

        // 4. Noise, then blur.
        if cfg.noise > 0 {
            let a = f32::from(cfg.noise);
            for p in canvas.pixels.iter_mut() {
                let v = f32::from(*p) + uniform(&mut rng, -a, a);
                *p = v.clamp(0.0, 255.0) as u8;
            }
        }
        if cfg.blur {
            canvas.box_blur();
        }
        Ok(label)
    }

    fn pick_label(&self, rng: &mut oorandom::Rand32) -> Label {
        let cfg = &self.config;
        let len = rng.rand_range(u32::from(cfg.min_len)..u32::from(cfg.max_len) + 1);
        let count = cfg.alphabet.chars().count() as u32;
        let mut label = Label::new();
        for _ in 0..len {
            let k = rng.rand_range(0..count) as usize;
            if let Some(c) = cfg.alphabet.chars().nth(k) {
                // Capacity was checked in `new` (len <= max_len <= MAX_LEN, ASCII = 1 byte).
                let _ = label.push(c);
            }
        }
        label
    }
}

/// Mixes seed and index (SplitMix64 finaliser) so neighbouring indices give unrelated streams.
fn rng_for(seed: u64, index: u64) -> oorandom::Rand32 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    oorandom::Rand32::new(z ^ (z >> 31))
}

fn uniform(rng: &mut oorandom::Rand32, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.rand_float()
}

/// The image being drawn; also an embedded-graphics target for the strike lines.
struct Canvas<'p> {
    pixels: &'p mut [u8],
    width: usize,
    height: usize,
}

impl Canvas<'_> {
    fn set(&mut self, x: usize, y: usize, v: u8) {
        if let Some(p) = self.pixels.get_mut(y * self.width + x) {
            *p = v;
        }
    }

    /// Blends `ink` over the pixel with `coverage` in 0..=1.
    fn blend(&mut self, x: usize, y: usize, ink: f32, coverage: f32) {
        if x < self.width {
            if let Some(p) = self.pixels.get_mut(y * self.width + x) {
                *p = (f32::from(*p) + (ink - f32::from(*p)) * coverage) as u8;
            }
        }
    }

    /// 3x3 box blur in place, keeping the previous source row and the current one.
    fn box_blur(&mut self) {
        let w = self.width;
        let mut prev = [0u8; MAX_WIDTH as usize];
        let mut cur = [0u8; MAX_WIDTH as usize];
        let (Some(prev), Some(cur)) = (prev.get_mut(..w), cur.get_mut(..w)) else {
            return;
        };
        if let Some(first) = self.pixels.get(..w) {
            prev.copy_from_slice(first);
        }
        for y in 0..self.height {
            if let Some(row) = self.pixels.get(y * w..(y + 1) * w) {
                cur.copy_from_slice(row);
            }
            for x in 0..w {
                let mut sum = 0u32;
                let mut count = 0u32;
                for dx in [x.wrapping_sub(1), x, x + 1] {
                    let above = prev.get(dx);
                    let here = cur.get(dx);
                    // (dx is usize::MAX left of the image: checked before it is used as an index)
                    let below = if y + 1 < self.height && dx < w { self.pixels.get((y + 1) * w + dx) } else { None };
                    for v in [above, here, below].into_iter().flatten() {
                        sum += u32::from(*v);
                        count += 1;
                    }
                }
                self.set(x, y, (sum / count.max(1)) as u8);
            }
            prev.copy_from_slice(cur);
        }
    }
}

impl OriginDimensions for Canvas<'_> {
    fn size(&self) -> Size {
        Size::new(self.width as u32, self.height as u32)
    }
}

impl DrawTarget for Canvas<'_> {
    type Color = Gray8;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<Gray8>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as usize) < self.width {
                self.set(p.x as usize, p.y as usize, c.luma());
            }
        }
        Ok(())
    }
}

/// Where and how a glyph lands: centre, scales, shear and rotation (radians).
struct Placement {
    cx: f32,
    cy: f32,
    scale_x: f32,
    scale_y: f32,
    shear: f32,
    angle: f32,
}

/// One character rendered by embedded-graphics into a small 1-bit bitmap.
struct Glyph {
    bits: [[bool; Glyph::MAX_W]; Glyph::MAX_H],
    w: usize,
    h: usize,
}

impl Glyph {
    const MAX_W: usize = 10;
    const MAX_H: usize = 20;

    fn render(font: &MonoFont<'_>, ch: char) -> Glyph {
        let mut glyph = Glyph {
            bits: [[false; Self::MAX_W]; Self::MAX_H],
            w: (font.character_size.width as usize).min(Self::MAX_W),
            h: (font.character_size.height as usize).min(Self::MAX_H),
        };
        let mut buf = [0u8; 4];
        let text = ch.encode_utf8(&mut buf);
        let style = MonoTextStyle::new(font, BinaryColor::On);
        let _ = Text::with_baseline(text, Point::zero(), style, Baseline::Top).draw(&mut glyph);
        glyph
    }

    fn coverage(&self, u: f32, v: f32) -> f32 {
        let bit = |x: i32, y: i32| -> f32 {
            if x < 0 || y < 0 {
                return 0.0;
            }
            let on = self.bits.get(y as usize).and_then(|r| r.get(x as usize)).copied().unwrap_or(false);
            if on && (x as usize) < self.w && (y as usize) < self.h {
                1.0
            } else {
                0.0
            }
        };
        // Bilinear between bitmap cell centres.
        let (u, v) = (u - 0.5, v - 0.5);
        let (x0, y0) = (libm::floorf(u), libm::floorf(v));
        let (fx, fy) = (u - x0, v - y0);
        let (x0, y0) = (x0 as i32, y0 as i32);
        let top = bit(x0, y0) * (1.0 - fx) + bit(x0 + 1, y0) * fx;
        let bottom = bit(x0, y0 + 1) * (1.0 - fx) + bit(x0 + 1, y0 + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }

    /// Pastes the glyph through the inverse of `p`'s affine map, blending `ink` by coverage.
    fn paste(&self, canvas: &mut Canvas<'_>, p: &Placement, ink: f32) {
        let (sin, cos) = (libm::sinf(p.angle), libm::cosf(p.angle));
        let half_w = self.w as f32 * 0.5;
        let half_h = self.h as f32 * 0.5;
        let reach = (half_w * p.scale_x + half_h * p.scale_y) * (1.0 + p.shear.abs());
        let x_lo = (p.cx - reach).max(0.0) as usize;
        let x_hi = ((p.cx + reach) as usize).min(canvas.width.saturating_sub(1));
        let y_lo = (p.cy - reach).max(0.0) as usize;
        let y_hi = ((p.cy + reach) as usize).min(canvas.height.saturating_sub(1));
        for y in y_lo..=y_hi {
            for x in x_lo..=x_hi {
                // Undo rotation, then shear, then scale.
                let (dx, dy) = (x as f32 + 0.5 - p.cx, y as f32 + 0.5 - p.cy);
                let (rx, ry) = (cos * dx + sin * dy, -sin * dx + cos * dy);
                let sx = rx - p.shear * ry;
                let u = sx / p.scale_x + half_w;
                let v = ry / p.scale_y + half_h;
                let c = self.coverage(u, v);
                if c > 0.0 {
                    canvas.blend(x, y, ink, c);
                }
            }
        }
    }
}

impl OriginDimensions for Glyph {
    fn size(&self) -> Size {
        Size::new(self.w as u32, self.h as u32)
    }
}

impl DrawTarget for Glyph {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I: IntoIterator<Item = Pixel<BinaryColor>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 {
                if let Some(b) = self.bits.get_mut(p.y as usize).and_then(|r| r.get_mut(p.x as usize)) {
                    *b = c.is_on();
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fixture_image_bytes_are_the_default_look() {
        let c = super::Config::default();
        assert_eq!(usize::from(c.width) * usize::from(c.height), super::fixtures::IMAGE_BYTES);
    }

    use super::*;

    fn draw(synth: &Synth<'_>, index: u64) -> ([u8; 200 * 50], Label) {
        let mut px = [0u8; 200 * 50];
        let label = synth.draw(index, &mut px).unwrap();
        (px, label)
    }

    #[test]
    fn same_seed_and_index_draw_the_same_image() {
        let a = Synth::new(Config::default(), 1).unwrap();
        let b = Synth::new(Config::default(), 1).unwrap();
        for i in 0..20 {
            assert_eq!(draw(&a, i), draw(&b, i));
        }
    }

    #[test]
    fn different_indices_and_seeds_differ() {
        let a = Synth::new(Config::default(), 1).unwrap();
        let b = Synth::new(Config::default(), 2).unwrap();
        assert_ne!(draw(&a, 0).0, draw(&a, 1).0);
        assert_ne!(draw(&a, 0).0, draw(&b, 0).0);
    }

    #[test]
    fn labels_follow_the_config() {
        let cfg = Config { alphabet: "ABC", min_len: 2, max_len: 6, ..Config::default() };
        let synth = Synth::new(cfg, 9).unwrap();
        let mut lengths = [0usize; 7];
        for i in 0..300 {
            let (_, label) = draw(&synth, i);
            assert!(label.chars().all(|c| "ABC".contains(c)), "{label}");
            lengths[label.len()] += 1;
        }
        assert_eq!(lengths[0] + lengths[1], 0);
        assert!(lengths[2..=6].iter().all(|&n| n > 20), "{lengths:?}");
    }

    #[test]
    fn text_is_dark_on_light() {
        // The text is thin and blurred, so look at the darkest 1% of each image against its median.
        let synth = Synth::new(Config::default(), 3).unwrap();
        for index in 0..20 {
            let (mut px, label) = draw(&synth, index);
            px.sort_unstable();
            let darkest = px[..px.len() / 100].iter().map(|&p| u32::from(p)).sum::<u32>() / (px.len() / 100) as u32;
            let median = u32::from(px[px.len() / 2]);
            assert!(median > 170 && darkest + 80 < median, "{label}: darkest 1% {darkest}, median {median}");
        }
    }

    #[test]
    fn bad_configs_and_buffers_are_errors() {
        let bad = |cfg| Synth::new(cfg, 0).unwrap_err();
        assert_eq!(bad(Config { alphabet: "", ..Config::default() }), Error::BadAlphabet);
        assert_eq!(bad(Config { alphabet: "a b", ..Config::default() }), Error::BadAlphabet);
        assert_eq!(bad(Config { alphabet: "é", ..Config::default() }), Error::BadAlphabet);
        assert_eq!(bad(Config { min_len: 6, max_len: 5, ..Config::default() }), Error::BadSize);
        assert_eq!(bad(Config { width: 4000, ..Config::default() }), Error::BadSize);
        let synth = Synth::new(Config::default(), 0).unwrap();
        assert_eq!(synth.draw(0, &mut [0u8; 10]), Err(Error::BufferSize { expected: 10_000, got: 10 }));
    }

    #[test]
    fn long_labels_on_small_images_still_draw() {
        let cfg = Config { width: 64, height: 16, min_len: 32, max_len: 32, ..Config::default() };
        let synth = Synth::new(cfg, 5).unwrap();
        let mut px = [0u8; 64 * 16];
        assert_eq!(synth.draw(0, &mut px).unwrap().len(), 32);
    }
}
