//! Image files: which names are images, reading them within memory limits, alpha on white, grayscale and
//! resizing, and the shift used for augmentation.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use super::*;

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
}
