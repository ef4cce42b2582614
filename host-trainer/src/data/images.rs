//! Image files: which names are images, reading them within memory limits, alpha on white, grayscale and
//! resizing, and the shift used for augmentation.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::*;

/// Reads one image file as u8 grayscale (or with `colour`, RGB) at `height × width` (any input size,
/// colour or bit depth).
pub fn load_image(path: &Path, height: usize, width: usize, colour: bool) -> Result<Vec<u8>, DataError> {
    let img = read_image(path)?;
    Ok(to_pixels(&img, height, width, colour))
}

/// [`to_rgb`] or [`to_gray`].
pub fn to_pixels(img: &image::DynamicImage, height: usize, width: usize, colour: bool) -> Vec<u8> {
    if colour {
        to_rgb(img, height, width)
    } else {
        to_gray(img, height, width)
    }
}

/// Images whose drawn pixels lose this fraction or more of their contrast in grayscale train on colour
/// ([`grey_loss`]). Measured on 200 images each (2026-12-02): 0% on the shared real captchas, 0.5% on the
/// Python `captcha` style, 24.5% on `tools/stylecaptcha.sh`'s per-character colours.
pub const COLOUR_LOSS: f64 = 0.05;

/// How many images [`grey_loss`] looks at when training chooses grey or colour.
pub const COLOUR_SAMPLE: usize = 200;

/// The fraction of the images' drawn pixels that grayscale nearly loses: of the pixels whose colour is
/// clearly off the background's (`core_infer::input::ink` distance 48 or more), those whose luma is within
/// 24 of the background's luma. 0 for grey images (their distance is their luma difference).
pub fn grey_loss<'a>(images: impl Iterator<Item = &'a image::DynamicImage>) -> f64 {
    let (mut drawn, mut lost) = (0u64, 0u64);
    for img in images {
        let rgb = to_rgb(img, img.height() as usize, img.width() as usize);
        let bg = core_infer::input::background(&rgb, img.height() as usize, img.width() as usize);
        let luma = |p: &[u8]| (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000;
        let bg_luma = luma(&bg);
        for p in rgb.chunks_exact(3) {
            let d = p.iter().zip(bg).map(|(&c, b)| c.abs_diff(b)).max().unwrap_or(0);
            if d >= 48 {
                drawn += 1;
                lost += u64::from(luma(p).abs_diff(bg_luma) < 24);
            }
        }
    }
    if drawn == 0 {
        0.0
    } else {
        lost as f64 / drawn as f64
    }
}

/// Longest side of an image this tool decodes, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;

/// Most memory one image may take while decoded: a small file that decompresses to more (a
/// "decompression bomb", e.g. a 20000×20000 PNG of zeros in 400 KB) is refused by name.
pub const MAX_DECODED_BYTES: u64 = 128 << 20;

pub(super) fn read_image(path: &Path) -> Result<image::DynamicImage, DataError> {
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

/// RGB (alpha composited on white, as [`to_gray`]) and a bilinear resize to `height × width`.
pub fn to_rgb(img: &image::DynamicImage, height: usize, width: usize) -> Vec<u8> {
    let rgb = if img.color().has_alpha() { on_white(&img.to_rgba8()) } else { img.to_rgb8() };
    if rgb.width() as usize == width && rgb.height() as usize == height {
        return rgb.into_raw();
    }
    image::imageops::resize(&rgb, width as u32, height as u32, FilterType::Triangle).into_raw()
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

/// `img` (`height × width`, `channels` bytes per pixel) under an affine map: output pixel `(x, y)` takes
/// the bilinear blend of the source at `(m[0]·x + m[1]·y + m[2], m[3]·x + m[4]·y + m[5])` (pixel
/// centres at whole numbers), coordinates off the image clamped to its edge (so no artificial frame appears).
pub fn warp(img: &[u8], height: usize, width: usize, channels: usize, m: [f32; 6]) -> Vec<u8> {
    let mut out = Vec::with_capacity(height * width * channels);
    let (hmax, wmax) = ((height - 1) as f32, (width - 1) as f32);
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f32, y as f32);
            let sx = (m[0] * xf + m[1] * yf + m[2]).clamp(0.0, wmax);
            let sy = (m[3] * xf + m[4] * yf + m[5]).clamp(0.0, hmax);
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
            let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
            for c in 0..channels {
                let at = |yy: usize, xx: usize| f32::from(img[(yy * width + xx) * channels + c]);
                let top = at(y0, x0) + fx * (at(y0, x1) - at(y0, x0));
                let bottom = at(y1, x0) + fx * (at(y1, x1) - at(y1, x0));
                out.push((top + fy * (bottom - top)).round() as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// The reference for whole-pixel moves: `img` (`height × width`, `channels` bytes per pixel) moved `dx`
    /// columns right and `dy` rows down, the uncovered border filled with the nearest edge pixel.
    fn shift(img: &[u8], height: usize, width: usize, channels: usize, dx: isize, dy: isize) -> Vec<u8> {
        let clamp = |v: isize, n: usize| v.clamp(0, n as isize - 1) as usize;
        let mut out = Vec::with_capacity(height * width * channels);
        for y in 0..height {
            let row = clamp(y as isize - dy, height) * width;
            for x in 0..width {
                let at = (row + clamp(x as isize - dx, width)) * channels;
                out.extend_from_slice(&img[at..at + channels]);
            }
        }
        out
    }

    #[test]
    fn warp_is_shift_for_whole_moves_and_blends_between_pixels() {
        // the definition's reference: a whole-pixel translation is `shift`, with the same edge rule
        let img: Vec<u8> = (0..7 * 9 * 3).map(|v| (v * 37 % 251) as u8).collect();
        for (dx, dy) in [(0, 0), (2, -1), (-3, 4), (20, 0)] {
            let m = [1.0, 0.0, -dx as f32, 0.0, 1.0, -dy as f32];
            assert_eq!(super::warp(&img, 7, 9, 3, m), shift(&img, 7, 9, 3, dx, dy), "({dx}, {dy})");
        }
        // half a pixel right: the mean of each pair of neighbours (rounded), the last column its own
        let row = [0u8, 10, 30, 70];
        assert_eq!(super::warp(&row, 1, 4, 1, [1.0, 0.0, 0.5, 0.0, 1.0, 0.0]), [5, 20, 50, 70]);
        // twice as large about the origin: every source pixel appears twice
        assert_eq!(super::warp(&row, 1, 4, 1, [0.5, 0.0, 0.0, 0.0, 1.0, 0.0]), [0, 5, 10, 20]);
    }

    #[test]
    fn shift_moves_pixels_and_replicates_edges() {
        // 2 × 3 image: rows [1 2 3] and [4 5 6].
        let img = [1, 2, 3, 4, 5, 6];
        assert_eq!(shift(&img, 2, 3, 1, 0, 0), img);
        assert_eq!(shift(&img, 2, 3, 1, 1, 0), [1, 1, 2, 4, 4, 5]);
        assert_eq!(shift(&img, 2, 3, 1, -1, 1), [2, 3, 3, 2, 3, 3]);
        assert_eq!(shift(&img, 2, 3, 1, 5, -5), [4, 4, 4, 4, 4, 4]);
        // RGB pixels move whole: the same image with each value v as (v, 10v, 100v).
        let rgb: Vec<u8> = img.iter().flat_map(|&v| [v, 10 * v, 100 * v]).collect();
        let moved: Vec<u8> = [1, 1, 2, 4, 4, 5].iter().flat_map(|&v: &u8| [v, 10 * v, 100 * v]).collect();
        assert_eq!(shift(&rgb, 2, 3, 3, 1, 0), moved);
    }

    #[test]
    fn grey_loss_sees_colours_that_luma_flattens() {
        use image::{DynamicImage, Rgb, RgbImage};
        // Red ink (luma 76) on a grey background of luma 76: every drawn pixel lost; black ink: none.
        let draw = |ink: [u8; 3]| {
            DynamicImage::ImageRgb8(RgbImage::from_fn(20, 10, |x, y| {
                Rgb(if (3..7).contains(&y) && (5..15).contains(&x) { ink } else { [76, 76, 76] })
            }))
        };
        let (red, black) = (draw([255, 0, 0]), draw([0, 0, 0]));
        assert_eq!(super::grey_loss([&red].into_iter()), 1.0);
        assert_eq!(super::grey_loss([&black].into_iter()), 0.0);
        assert_eq!(super::grey_loss([&red, &black].into_iter()), 0.5);
        assert_eq!(super::grey_loss(std::iter::empty()), 0.0);
    }
}
