//! A `no_std`, heap-free runtime for the captcha CRNN: conv → pool → conv → pool → dense → BiLSTM → BiLSTM →
//! dense → CTC decode, in f32 or integer-only int8.
//!
//! ```no_run
//! # fn demo(model_bytes: &[u8], pixels: &[u8]) -> Result<(), core_infer::Error> {
//! let model = core_infer::Model::parse(model_bytes)?;
//! let mut scratch = vec![0u8; model.scratch_bytes()]; // on a device: a static buffer
//! let text = model.recognize(pixels, &mut scratch)?;   // pixels: u8, height × width (× 3 for colour), row-major
//! // With a confidence: greedy (the least sure character's probability) or beam search (the text's).
//! let reading = model.read(pixels, &mut scratch)?;
//! let beam = model.read_beam::<8>(pixels, &mut scratch)?;
//! if reading.confidence < 0.9 || beam.text != reading.text { /* ask again */ }
//! # Ok(()) }
//! ```
//!
//! Conventions, fixed here and in the file format ([`format`]):
//! - Input: u8 grayscale at the model's height × width, row-major (a colour model, [`Input::Ink`]: RGB, 3
//!   bytes per pixel; [`Model::image_bytes`]); the network sees `pixel / 255`, after the conversion the file
//!   asks for ([`Input`]: a contrast stretch, or a colour image's ink, applied inside [`Model::run`]). Width
//!   is the time axis.
//! - Class 0 is the CTC blank; class `k ≥ 1` is the alphabet's character `k - 1`.
//! - LSTM gates are in PyTorch order i, f, g, o, with `b_ih + b_hh` folded into one bias.
//!
//! Capacities: labels of at most [`MAX_LABEL_LEN`] characters, at most [`MAX_CLASSES`] classes; sizes
//! beyond them are refused at parse time with [`Error::Capacity`]. All working memory is one caller-owned
//! scratch buffer of [`Model::scratch_bytes`] bytes.
//!
//! Where things are: [`format`] reads and writes the file (its tensors in [`format::names`]); [`net`] is the
//! one forward pass, generic over the precision; [`int8`] and `f32` are the precisions' layers;
//! [`kernels`] holds every inner loop by instruction set (`reference.rs`, the portable reference;
//! `x86_64/`; `arm/`) and picks them. `unsafe` is denied but in `kernels/x86_64` and `kernels/arm`, each
//! kernel there checked against the reference.
#![no_std]
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod beam;
pub mod block;
pub mod ctc;
#[cfg(feature = "f32")]
mod f32;
pub mod format;
pub mod input;
pub mod int8;
pub mod kernels;
mod model;
pub mod net;
pub mod probe;
mod scratch;

/// The README's Rust example, compiled (its other code blocks are shell).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use beam::Reading;
pub use ctc::Text;
pub use format::{Arch, Precision};
pub use input::Input;
pub use model::{Model, Scores};
pub use probe::{Probe, Stage};

/// Longest text a model may read (characters).
pub const MAX_LABEL_LEN: usize = 48;
/// Most output classes (alphabet + blank).
pub const MAX_CLASSES: usize = 256;

/// Everything that can go wrong. Small and `Copy`, so it costs nothing on a microcontroller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The bytes end before a field or tensor they announce.
    Truncated,
    /// The file does not start with `CRNN`.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u16),
    /// A header field holds a value outside its range.
    BadHeader,
    /// The length in the header is not the length of the bytes.
    LengthMismatch,
    /// The CRC-32 does not match: the file is corrupted.
    ChecksumMismatch,
    /// The alphabet is not UTF-8, or its length does not fit the class count.
    BadAlphabet,
    /// A tensor table entry is malformed or points outside the file.
    BadTensor,
    /// A tensor the network needs is not in the file.
    MissingTensor,
    /// A tensor's dtype or shape does not fit the architecture.
    ShapeMismatch,
    /// The architecture's sizes are inconsistent (e.g. an image smaller than 4×4).
    BadArch,
    /// The model exceeds a documented capacity of this crate.
    Capacity,
    /// The scratch buffer is smaller than [`Model::scratch_bytes`].
    ScratchTooSmall,
    /// The image is not [`Model::image_bytes`] long (height × width, × 3 for a colour model).
    ImageSize,
    /// The file's precision was left out of this build (the `f32` feature, for f32 models).
    PrecisionNotBuilt,
    /// The file's input conversion was left out of this build (the `colour` feature, for colour models).
    InputNotBuilt,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let msg = match self {
            Error::Truncated => "model file is truncated",
            Error::BadMagic => "not a model file (bad magic)",
            Error::UnsupportedVersion(v) => return write!(f, "unsupported model format version {v}"),
            Error::BadHeader => "malformed model header",
            Error::LengthMismatch => "model length does not match its header",
            Error::ChecksumMismatch => "model checksum mismatch (corrupted file)",
            Error::BadAlphabet => "alphabet is not UTF-8 or does not match the class count",
            Error::BadTensor => "malformed tensor table entry",
            Error::MissingTensor => "a tensor the network needs is missing",
            Error::ShapeMismatch => "a tensor's dtype or shape does not fit the architecture",
            Error::BadArch => "inconsistent architecture sizes",
            Error::Capacity => "model exceeds this runtime's capacities",
            Error::ScratchTooSmall => "scratch buffer too small",
            Error::ImageSize => "image size does not match the model",
            Error::PrecisionNotBuilt => "this build leaves out the model's precision (f32 needs the `f32` feature)",
            Error::InputNotBuilt => "this build leaves out colour models (they need the `colour` feature)",
        };
        f.write_str(msg)
    }
}

impl core::error::Error for Error {}
