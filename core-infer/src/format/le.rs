//! The one little-endian reader of tensor bytes: a borrowed byte slice read as `i16`, `i32` or `f32`
//! values, in place (the file is never copied or realigned), every read checked.

use core::marker::PhantomData;

/// A value stored little-endian in a tensor.
pub trait Value: Copy + Default + 'static {
    /// Bytes per value.
    const SIZE: usize;
    /// The value of `SIZE` little-endian bytes (`Default` if `bytes` is not that long).
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! value {
    ($($t:ty),+) => {$(
        impl Value for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            #[inline]
            fn from_le(bytes: &[u8]) -> Self {
                bytes.try_into().map_or(<$t>::default(), <$t>::from_le_bytes)
            }
        }
    )+};
}
value!(i16, i32, f32);

/// `T` values stored little-endian in borrowed bytes.
#[derive(Clone, Copy, Debug)]
pub struct Le<'a, T>(&'a [u8], PhantomData<T>);

impl<'a, T: Value> Le<'a, T> {
    pub const fn new(bytes: &'a [u8]) -> Self {
        Le(bytes, PhantomData)
    }
    /// The bytes (for kernels that load them themselves).
    pub const fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Value `i`, or `T::default()` past the end (tensor shapes are checked at load: never in a valid model).
    #[inline]
    pub fn get(&self, i: usize) -> T {
        self.0.get(T::SIZE * i..T::SIZE * (i + 1)).map_or(T::default(), T::from_le)
    }
    /// The values from index `i` on.
    pub fn from(self, i: usize) -> impl Iterator<Item = T> + 'a {
        self.0.get(T::SIZE * i..).unwrap_or(&[]).chunks_exact(T::SIZE).map(T::from_le)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_type_in_place_and_defaults_past_the_end() {
        let bytes = [0x01, 0x00, 0xff, 0xff, 0x00, 0x00, 0x80, 0x3f];
        assert_eq!(Le::<i16>::new(&bytes).get(1), -1);
        assert_eq!(Le::<i32>::new(&bytes).get(0), -65535);
        assert_eq!(Le::<f32>::new(&bytes).get(1), 1.0);
        assert_eq!(Le::<i32>::new(&bytes).get(2), 0);
        assert_eq!(Le::<i16>::new(&bytes).from(2).collect::<std::vec::Vec<_>>(), [0, 0x3f80]);
    }
}
