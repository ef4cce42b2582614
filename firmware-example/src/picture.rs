//! A picture of what the device saw: the captcha and the predicted text, drawn with embedded-graphics into
//! a small framebuffer and written to the host as `device-view.pgm` through semihosting.

use embedded_graphics::{
    mono_font::{ascii::FONT_6X10, MonoTextStyle},
    pixelcolor::{Gray8, GrayColor},
    prelude::*,
    text::Text,
};

const W: usize = 200;
const H: usize = 64;

/// The framebuffer, borrowed from memory the caller has free (the network's scratch, between inferences).
struct Frame<'b>(&'b mut [u8]);

impl OriginDimensions for Frame<'_> {
    fn size(&self) -> Size {
        Size::new(W as u32, H as u32)
    }
}

impl DrawTarget for Frame<'_> {
    type Color = Gray8;
    type Error = core::convert::Infallible;
    fn draw_iter<I: IntoIterator<Item = Pixel<Gray8>>>(&mut self, pixels: I) -> Result<(), Self::Error> {
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (usize::try_from(p.x), usize::try_from(p.y)) {
                if let Some(v) = self.0.get_mut(y * W + x).filter(|_| x < W) {
                    *v = c.luma();
                }
            }
        }
        Ok(())
    }
}

/// Draws `image` (`w × h`, at most 200 × 50) with `text` under it and writes `device-view.pgm`, using
/// `work` (at least 200 × 64 bytes) as the framebuffer; does nothing if it is smaller.
pub fn write(image: &[u8], w: usize, h: usize, text: &str, work: &mut [u8]) {
    let Some(buf) = work.get_mut(..W * H) else { return };
    buf.fill(255);
    let frame = &mut Frame(buf);
    for (frame_row, row) in frame.0.chunks_exact_mut(W).zip(image.chunks_exact(w).take(h.min(50))) {
        for (f, &v) in frame_row.iter_mut().zip(row) {
            *f = v;
        }
    }
    let style = MonoTextStyle::new(&FONT_6X10, Gray8::BLACK);
    let mut caption: heapless::String<64> = heapless::String::new();
    let _ = caption.push_str("read: ");
    let _ = caption.push_str(text);
    let _ = Text::new(&caption, Point::new(4, 60), style).draw(frame);

    let mut header: heapless::String<32> = heapless::String::new();
    let _ = core::fmt::write(&mut header, format_args!("P5\n{W} {H}\n255\n"));
    // Semihosting's SYS_OPEN / SYS_WRITE / SYS_CLOSE (the `semihosting` crate, on Arm and RISC-V alike).
    use semihosting::io::Write as _;
    let written = semihosting::fs::File::create(c"device-view.pgm")
        .and_then(|mut file| file.write_all(header.as_bytes()).and_then(|()| file.write_all(frame.0)));
    if written.is_ok() {
        defmt::info!("wrote device-view.pgm ({=usize}x{=usize}): the first test image and what was read", W, H);
    }
}
