//! The model file format, version 1: parsed once, bounds-checked, then used zero-copy.
//!
//! Every multi-byte value is little-endian. The file is
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"CRNN"` |
//! | 4 | 2 | format version, `1` |
//! | 6 | 2 | precision: `0` f32, `1` int8 ([`Precision`]) |
//! | 8 | 4 | total file length in bytes, checksum included |
//! | 12 | 2×9 | architecture: image height, image width, conv1 channels, conv2 channels, dense1 units, LSTM1 hidden, LSTM2 hidden, classes (blank included), maximum label length ([`Arch`]) |
//! | 30 | 2 | alphabet length in bytes (UTF-8) |
//! | 32 | 2 | tensor count |
//! | 34 | 2 | input conversion: `0` pixels as they are, `1` contrast stretched, `2` colour ink ([`crate::Input`]) |
//! | 36 | n | alphabet, UTF-8; class `k ≥ 1` is the alphabet's character `k - 1`, class 0 is the CTC blank |
//! | … | … | tensor table, one entry per tensor (below) |
//! | … | … | payload: the tensors' data, each starting 4-byte aligned relative to the file start |
//! | len-4 | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! A tensor table entry is
//!
//! | size | field |
//! |---|---|
//! | 1 | name length `n` (1..=32) |
//! | n | name, ASCII (the names, dtypes and shapes a model holds: [`names`]) |
//! | 1 | dtype ([`DType`]) |
//! | 1 | rank `r` (1..=4) |
//! | 4×r | dimensions, outermost first |
//! | 4 | data offset from the file start |
//! | 4 | data length in bytes (must equal the product of the dimensions × the dtype's size) |
//!
//! Quantization parameters are tensors of their own (for example `conv1.mult`, an `i32` per output
//! channel); [`names`] lists them all.

use crate::{Error, Input};

pub mod le;
pub mod names;

/// The four bytes every model file starts with.
pub const MAGIC: [u8; 4] = *b"CRNN";
/// The format version this crate reads and writes.
pub const VERSION: u16 = 1;
/// Bytes before the alphabet.
pub const FIXED_HEADER_LEN: usize = 36;
/// Longest tensor name.
pub const MAX_NAME_LEN: usize = 32;
/// Most tensors one file may hold.
pub const MAX_TENSORS: usize = 64;

/// How the network computes: the precision tag in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Precision {
    /// f32 weights and activations.
    F32 = 0,
    /// int8 weights and activations, int32 accumulators, integer-only arithmetic.
    Int8 = 1,
}

/// The element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DType {
    F32 = 0,
    I8 = 1,
    I16 = 2,
    I32 = 3,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
    fn from_u8(v: u8) -> Result<Self, Error> {
        Ok(match v {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            _ => return Err(Error::BadTensor),
        })
    }
}

/// The network's sizes, read from the header. The seed's model is
/// `Arch { height: 50, width: 200, conv1: 32, conv2: 64, dense1: 64, lstm1: 128, lstm2: 64, classes: 20, max_label_len: 5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Arch {
    /// Input image height in pixels.
    pub height: u16,
    /// Input image width in pixels; the time axis.
    pub width: u16,
    pub conv1: u16,
    pub conv2: u16,
    pub dense1: u16,
    /// Hidden units per direction of the first BiLSTM.
    pub lstm1: u16,
    /// Hidden units per direction of the second BiLSTM.
    pub lstm2: u16,
    /// Output classes: alphabet length + 1 (the CTC blank, class 0).
    pub classes: u16,
    /// Longest text the model reads; decoding stops there.
    pub max_label_len: u16,
}

impl Arch {
    /// Time steps of the sequence part: the width after two 2×2 poolings.
    pub const fn steps(&self) -> usize {
        self.width as usize / 4
    }
    /// Rows left after two 2×2 poolings.
    pub const fn pooled_height(&self) -> usize {
        self.height as usize / 4
    }
    /// Features per time step fed to dense1: pooled rows × conv2 channels, row-major (`h * conv2 + c`).
    pub const fn features(&self) -> usize {
        self.pooled_height() * self.conv2 as usize
    }
}

/// The file's checksum: CRC-32 (ISO-HDLC, as zlib and PNG), with a 256-entry table (1 KB of flash;
/// the 16-entry-per-byte tables of faster implementations cost 16 KB on a microcontroller).
pub fn checksum(bytes: &[u8]) -> u32 {
    const CRC32: crc::Crc<u32, crc::Table<1>> = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISO_HDLC);
    CRC32.checksum(bytes)
}

/// One tensor of a parsed file: its dtype, shape and bytes (borrowed from the file).
#[derive(Clone, Copy, Debug)]
pub struct TensorRef<'a> {
    pub name: &'a [u8],
    pub dtype: DType,
    pub rank: usize,
    pub dims: [usize; 4],
    pub data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// The dimensions actually used (`rank` of them).
    pub fn shape(&self) -> &[usize] {
        self.dims.get(..self.rank).unwrap_or(&[])
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A bounds-checked view of a whole model file: header fields plus the tensor table.
#[derive(Clone, Copy, Debug)]
pub struct ModelFile<'a> {
    pub precision: Precision,
    pub arch: Arch,
    /// What is done to an image before the network (the header's input field).
    pub input: Input,
    pub alphabet: &'a str,
    tensors: [Option<TensorRef<'a>>; MAX_TENSORS],
}

/// A cursor over untrusted bytes: every read is checked and fails with [`Error::Truncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| Error::Truncated)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }
}

impl<'a> ModelFile<'a> {
    /// Checks magic, version, length and checksum, then every table entry; borrows the rest.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut r = Reader { bytes, pos: 0 };
        if r.array::<4>()? != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let precision = match r.u16()? {
            0 => Precision::F32,
            1 => Precision::Int8,
            _ => return Err(Error::BadHeader),
        };
        let total = r.u32()? as usize;
        if total != bytes.len() {
            return Err(Error::LengthMismatch);
        }
        let body_len = total.checked_sub(4).ok_or(Error::Truncated)?;
        let (body, crc) = bytes.split_at_checked(body_len).ok_or(Error::Truncated)?;
        let crc: [u8; 4] = crc.try_into().map_err(|_| Error::Truncated)?;
        if checksum(body) != u32::from_le_bytes(crc) {
            return Err(Error::ChecksumMismatch);
        }
        // From here on only the body is read, so the checksum can never be taken for a tensor.
        let mut r = Reader { bytes: body, pos: r.pos };
        let arch = Arch {
            height: r.u16()?,
            width: r.u16()?,
            conv1: r.u16()?,
            conv2: r.u16()?,
            dense1: r.u16()?,
            lstm1: r.u16()?,
            lstm2: r.u16()?,
            classes: r.u16()?,
            max_label_len: r.u16()?,
        };
        let alphabet_len = r.u16()? as usize;
        let count = r.u16()? as usize;
        let input = Input::from_u16(r.u16()?)?;
        let alphabet = core::str::from_utf8(r.take(alphabet_len)?).map_err(|_| Error::BadAlphabet)?;
        if count > MAX_TENSORS {
            return Err(Error::Capacity);
        }
        let mut tensors = [None; MAX_TENSORS];
        for slot in tensors.iter_mut().take(count) {
            let name_len = r.u8()? as usize;
            if name_len == 0 || name_len > MAX_NAME_LEN {
                return Err(Error::BadTensor);
            }
            let name = r.take(name_len)?;
            let dtype = DType::from_u8(r.u8()?)?;
            let rank = r.u8()? as usize;
            if rank == 0 || rank > 4 {
                return Err(Error::BadTensor);
            }
            let mut dims = [1usize; 4];
            let mut elems: usize = 1;
            for d in dims.iter_mut().take(rank) {
                *d = r.u32()? as usize;
                elems = elems.checked_mul(*d).ok_or(Error::BadTensor)?;
            }
            let offset = r.u32()? as usize;
            let len = r.u32()? as usize;
            if elems.checked_mul(dtype.size()) != Some(len) || !offset.is_multiple_of(4) {
                return Err(Error::BadTensor);
            }
            let end = offset.checked_add(len).ok_or(Error::BadTensor)?;
            let data = body.get(offset..end).ok_or(Error::BadTensor)?;
            *slot = Some(TensorRef { name, dtype, rank, dims, data });
        }
        Ok(ModelFile { precision, arch, input, alphabet, tensors })
    }

    /// The tensor called `name`, checked to have this dtype and shape.
    pub fn tensor(&self, name: &str, dtype: DType, shape: &[usize]) -> Result<TensorRef<'a>, Error> {
        let t = self.tensors.iter().flatten().find(|t| t.name == name.as_bytes()).ok_or(Error::MissingTensor)?;
        if t.dtype != dtype || t.shape() != shape {
            return Err(Error::ShapeMismatch);
        }
        Ok(*t)
    }

    /// The tensor `spec` names, checked to have its dtype and shape.
    pub fn get(&self, spec: &names::Spec) -> Result<TensorRef<'a>, Error> {
        let t = self.tensors.iter().flatten().find(|t| spec.is_named(t.name)).ok_or(Error::MissingTensor)?;
        if t.dtype != spec.dtype || t.shape() != spec.shape() {
            return Err(Error::ShapeMismatch);
        }
        Ok(*t)
    }

    /// Every tensor in table order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorRef<'a>> {
        self.tensors.iter().flatten()
    }
}

#[cfg(any(feature = "std", test))]
pub use writer::ModelWriter;

#[cfg(any(feature = "std", test))]
mod writer {
    use super::*;
    use std::borrow::ToOwned;
    use std::string::String;
    use std::vec::Vec;

    /// Builds a model file: add tensors, then [`ModelWriter::finish`] lays out the bytes.
    ///
    /// ```
    /// use core_infer::format::{Arch, DType, ModelFile, ModelWriter, Precision};
    /// let arch = Arch { height: 8, width: 8, conv1: 1, conv2: 1, dense1: 1, lstm1: 1, lstm2: 1, classes: 3, max_label_len: 2 };
    /// let mut w = ModelWriter::new(Precision::F32, arch, "ab");
    /// w.add_f32("dense2.bias", &[3], &[0.0, 1.0, 2.0]);
    /// let bytes = w.finish().unwrap();
    /// let file = ModelFile::parse(&bytes).unwrap();
    /// assert_eq!(file.alphabet, "ab");
    /// ```
    pub struct ModelWriter {
        precision: Precision,
        arch: Arch,
        input: Input,
        alphabet: String,
        tensors: Vec<(String, DType, Vec<usize>, Vec<u8>)>,
    }

    impl ModelWriter {
        pub fn new(precision: Precision, arch: Arch, alphabet: &str) -> Self {
            ModelWriter { precision, arch, input: Input::Plain, alphabet: alphabet.to_owned(), tensors: Vec::new() }
        }

        /// Records the input conversion the model was trained with ([`Input::Plain`] unless set).
        pub fn input(&mut self, input: Input) -> &mut Self {
            self.input = input;
            self
        }

        /// Adds a tensor given as raw little-endian bytes.
        pub fn add_raw(&mut self, name: &str, dtype: DType, shape: &[usize], data: Vec<u8>) -> &mut Self {
            self.tensors.push((name.to_owned(), dtype, shape.to_vec(), data));
            self
        }
        pub fn add_f32(&mut self, name: &str, shape: &[usize], v: &[f32]) -> &mut Self {
            self.add_raw(name, DType::F32, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        pub fn add_i8(&mut self, name: &str, shape: &[usize], v: &[i8]) -> &mut Self {
            self.add_raw(name, DType::I8, shape, v.iter().map(|&x| x as u8).collect())
        }
        pub fn add_i16(&mut self, name: &str, shape: &[usize], v: &[i16]) -> &mut Self {
            self.add_raw(name, DType::I16, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        pub fn add_i32(&mut self, name: &str, shape: &[usize], v: &[i32]) -> &mut Self {
            self.add_raw(name, DType::I32, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }

        /// Lays out header, table and payload and appends the checksum.
        pub fn finish(&self) -> Result<Vec<u8>, Error> {
            let a = &self.arch;
            if self.tensors.len() > MAX_TENSORS || self.alphabet.len() > u16::MAX as usize {
                return Err(Error::Capacity);
            }
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&VERSION.to_le_bytes());
            out.extend_from_slice(&(self.precision as u16).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes()); // total length, patched below
            for v in [a.height, a.width, a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes, a.max_label_len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(self.alphabet.len() as u16).to_le_bytes());
            out.extend_from_slice(&(self.tensors.len() as u16).to_le_bytes());
            out.extend_from_slice(&(self.input as u16).to_le_bytes());
            out.extend_from_slice(self.alphabet.as_bytes());
            // The table's size is known before the offsets are, so lay the payload out after it.
            let table_len: usize = self.tensors.iter().map(|(n, _, s, _)| 1 + n.len() + 2 + 4 * s.len() + 8).sum();
            let mut offset = (out.len() + table_len).next_multiple_of(4);
            let mut offsets = Vec::new();
            for (name, dtype, shape, data) in &self.tensors {
                if name.is_empty() || name.len() > MAX_NAME_LEN || shape.is_empty() || shape.len() > 4 {
                    return Err(Error::BadTensor);
                }
                if shape.iter().product::<usize>() * dtype.size() != data.len() {
                    return Err(Error::ShapeMismatch);
                }
                out.push(name.len() as u8);
                out.extend_from_slice(name.as_bytes());
                out.push(*dtype as u8);
                out.push(shape.len() as u8);
                for &d in shape {
                    out.extend_from_slice(&u32::try_from(d).map_err(|_| Error::Capacity)?.to_le_bytes());
                }
                out.extend_from_slice(&(offset as u32).to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                offsets.push(offset);
                offset = (offset + data.len()).next_multiple_of(4);
            }
            for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
                out.resize(off, 0);
                out.extend_from_slice(data);
            }
            let total = out.len() + 4;
            out.get_mut(8..12)
                .ok_or(Error::Truncated)?
                .copy_from_slice(&u32::try_from(total).map_err(|_| Error::Capacity)?.to_le_bytes());
            let crc = checksum(&out);
            out.extend_from_slice(&crc.to_le_bytes());
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch() -> Arch {
        Arch { height: 8, width: 12, conv1: 2, conv2: 3, dense1: 4, lstm1: 5, lstm2: 6, classes: 4, max_label_len: 3 }
    }

    fn sample() -> std::vec::Vec<u8> {
        let mut w = ModelWriter::new(Precision::Int8, arch(), "aβc");
        w.add_f32("x", &[2, 3], &[1.0, -2.0, 3.5, 0.0, 1e-9, 7.0]);
        w.add_i8("y", &[3], &[-128, 0, 127]);
        w.add_i32("z", &[1], &[-5]);
        w.finish().unwrap()
    }

    #[test]
    fn checksum_is_the_standard_crc32() {
        assert_eq!(checksum(b"123456789"), 0xCBF4_3926); // the catalogue's check value
        let data: std::vec::Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        assert_eq!(checksum(&data), crc32fast::hash(&data));
    }

    #[test]
    fn round_trip_keeps_everything() {
        let bytes = sample();
        let f = ModelFile::parse(&bytes).unwrap();
        assert_eq!(f.precision, Precision::Int8);
        assert_eq!(f.arch, arch());
        assert_eq!(f.alphabet, "aβc");
        let x = f.tensor("x", DType::F32, &[2, 3]).unwrap();
        let vals: std::vec::Vec<f32> =
            x.data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(vals, [1.0, -2.0, 3.5, 0.0, 1e-9, 7.0]);
        assert_eq!(f.tensor("y", DType::I8, &[3]).unwrap().data, &[0x80, 0, 0x7f]);
        assert_eq!(f.tensor("z", DType::I32, &[1]).unwrap().data, &(-5i32).to_le_bytes());
        assert_eq!(f.tensors().count(), 3);
        for t in f.tensors() {
            assert_eq!((t.data.as_ptr() as usize - bytes.as_ptr() as usize) % 4, 0, "tensor data is 4-aligned");
        }
    }

    #[test]
    fn wrong_dtype_or_shape_or_name_is_refused() {
        let bytes = sample();
        let f = ModelFile::parse(&bytes).unwrap();
        assert_eq!(f.tensor("x", DType::I8, &[2, 3]).unwrap_err(), Error::ShapeMismatch);
        assert_eq!(f.tensor("x", DType::F32, &[3, 2]).unwrap_err(), Error::ShapeMismatch);
        assert_eq!(f.tensor("w", DType::F32, &[2, 3]).unwrap_err(), Error::MissingTensor);
    }

    /// Rewrites a header field and fixes the checksum, so only the field itself is wrong.
    fn patched(at: usize, with: &[u8]) -> std::vec::Vec<u8> {
        let mut b = sample();
        b[at..at + with.len()].copy_from_slice(with);
        let n = b.len() - 4;
        let crc = crc32fast::hash(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn the_input_conversion_round_trips_and_defaults_to_plain() {
        assert_eq!(ModelFile::parse(&sample()).unwrap().input, Input::Plain);
        let mut w = ModelWriter::new(Precision::F32, arch(), "ab");
        w.input(Input::Stretch).add_i8("y", &[1], &[3]);
        assert_eq!(ModelFile::parse(&w.finish().unwrap()).unwrap().input, Input::Stretch);
    }

    #[test]
    fn header_errors_are_specific() {
        assert_eq!(ModelFile::parse(&patched(0, b"CRNX")).unwrap_err(), Error::BadMagic);
        assert_eq!(ModelFile::parse(&patched(4, &2u16.to_le_bytes())).unwrap_err(), Error::UnsupportedVersion(2));
        assert_eq!(ModelFile::parse(&patched(6, &9u16.to_le_bytes())).unwrap_err(), Error::BadHeader);
        assert_eq!(ModelFile::parse(&patched(8, &7u32.to_le_bytes())).unwrap_err(), Error::LengthMismatch);
        assert_eq!(ModelFile::parse(&patched(34, &3u16.to_le_bytes())).unwrap_err(), Error::BadHeader);
        let mut b = sample();
        b.push(0);
        assert_eq!(ModelFile::parse(&b).unwrap_err(), Error::LengthMismatch);
        let mut b = sample();
        let mid = b.len() / 2;
        b[mid] ^= 0x10;
        assert_eq!(ModelFile::parse(&b).unwrap_err(), Error::ChecksumMismatch);
        assert_eq!(ModelFile::parse(&[]).unwrap_err(), Error::Truncated);
        assert_eq!(ModelFile::parse(b"CRNN").unwrap_err(), Error::Truncated);
    }

    #[test]
    fn a_table_entry_pointing_outside_the_body_is_refused() {
        let bytes = sample();
        // First entry starts after the fixed header and the alphabet: name len, "x", dtype, rank, 2 dims, offset.
        let entry = FIXED_HEADER_LEN + "aβc".len();
        let off_at = entry + 1 + 1 + 1 + 1 + 8;
        let bad = patched(off_at, &((bytes.len() as u32 - 8) & !3).to_le_bytes());
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), Error::BadTensor);
        let bad = patched(entry + 3, &[7]); // rank 7
        assert_eq!(ModelFile::parse(&bad).unwrap_err(), Error::BadTensor);
    }
}
