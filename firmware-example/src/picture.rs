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
    if let Ok(file) = open(b"device-view.pgm\0") {
        let ok = write_all(file, header.as_bytes()) && write_all(file, frame.0);
        close(file);
        if ok {
            defmt::info!("wrote device-view.pgm ({=usize}x{=usize}): the first test image and what was read", W, H);
        }
    }
}

fn open(name: &[u8]) -> Result<usize, ()> {
    // SAFETY: SYS_OPEN reads a NUL-terminated name of the given length (without the NUL).
    let fd = unsafe {
        cortex_m_semihosting::syscall!(
            OPEN,
            name.as_ptr(),
            cortex_m_semihosting::nr::open::W_TRUNC_BINARY,
            name.len() - 1
        )
    };
    if fd as isize == -1 {
        Err(())
    } else {
        Ok(fd)
    }
}

fn write_all(fd: usize, bytes: &[u8]) -> bool {
    // SAFETY: SYS_WRITE reads `len` bytes from `ptr`; it returns the number NOT written.
    unsafe { cortex_m_semihosting::syscall!(WRITE, fd, bytes.as_ptr(), bytes.len()) == 0 }
}

fn close(fd: usize) {
    // SAFETY: closes a handle SYS_OPEN returned.
    unsafe {
        cortex_m_semihosting::syscall!(CLOSE, fd);
    }
}
