//! Carving typed buffers out of the caller's byte scratch, safely (bytemuck checks alignment and size).

use crate::Error;
use bytemuck::Pod;

/// Bytes needed for `n` values of `T`, plus slack for aligning the region.
pub(crate) const fn bytes_for<T>(n: usize) -> usize {
    n * core::mem::size_of::<T>() + core::mem::align_of::<T>() - 1
}

/// Takes `n` values of `T` from the front of `buf`, skipping bytes until `T` is aligned.
pub(crate) fn take<'s, T: Pod>(buf: &mut &'s mut [u8], n: usize) -> Result<&'s mut [T], Error> {
    let whole = core::mem::take(buf);
    let skip = whole.as_ptr().align_offset(core::mem::align_of::<T>());
    let need = n.checked_mul(core::mem::size_of::<T>()).ok_or(Error::ScratchTooSmall)?;
    let (_, rest) = whole.split_at_mut_checked(skip).ok_or(Error::ScratchTooSmall)?;
    let (head, tail) = rest.split_at_mut_checked(need).ok_or(Error::ScratchTooSmall)?;
    *buf = tail;
    bytemuck::try_cast_slice_mut(head).map_err(|_| Error::ScratchTooSmall)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_aligns_and_counts() {
        let mut backing = [0u8; 64];
        let mut buf: &mut [u8] = &mut backing[1..];
        let a: &mut [f32] = take(&mut buf, 3).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.as_ptr() as usize % 4, 0);
        let b: &mut [i8] = take(&mut buf, 5).unwrap();
        assert_eq!(b.len(), 5);
        assert!(take::<i32>(&mut buf, 100).is_err());
    }

    #[test]
    fn bytes_for_covers_worst_alignment() {
        for offset in 0..4 {
            let mut backing = [0u32; 8];
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut backing);
            let mut buf = &mut bytes[offset..offset + bytes_for::<f32>(5)];
            assert!(take::<f32>(&mut buf, 5).is_ok());
        }
    }
}
