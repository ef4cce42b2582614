//! The C API of core-infer: a `no_std`, heap-free static library (`libcore_infer_capi.a`) and its header,
//! `include/core_infer.h`, generated from this file by cbindgen (`build.rs`; the build fails when the
//! checked-in header is not what this file says).
//!
//! Everything the library touches is the caller's: the model bytes (which must stay where they are while
//! the model is used: it is read in place, not copied), a `CrnnModel` to parse them into, the scratch
//! buffer (`crnn_scratch_bytes`), the image and the reading. Every function checks its pointers and
//! sizes and returns a `CrnnStatus`; none allocates, blocks or panics.
//!
//! ```c
//! static CrnnModel model;                          /* parsed once; a static starts zeroed */
//! static uint8_t scratch[35 * 1024];
//! CrnnStatus s = crnn_parse(&model, model_bytes, model_len);
//! CrnnReading r;
//! if (s == CRNN_STATUS_OK) s = crnn_read(&model, pixels, 200 * 50, scratch, sizeof scratch, &r);
//! if (s == CRNN_STATUS_OK) printf("%s (%.2f)\n", r.text, r.confidence);
//! else printf("%s\n", crnn_status_message(s));
//! ```
#![no_std]

use core::ffi::c_char;
use core::mem::{align_of, size_of};

use core_infer::{Error, Model, Precision, Reading, Scores, MAX_LABEL_LEN};

/// Bytes of a `CrnnModel`: room for core-infer's parsed `Model` (1,168 bytes on x86-64, less on 32-bit
/// targets; the build checks that it fits).
pub const CRNN_MODEL_BYTES: usize = 2048;
/// Longest text a model reads, in characters.
pub const CRNN_MAX_LABEL_LEN: usize = 48;
/// Bytes of `CrnnReading::text`: the longest text in UTF-8 (4 bytes a character) and its NUL.
pub const CRNN_TEXT_BYTES: usize = 4 * CRNN_MAX_LABEL_LEN + 1;
/// The beam width of `crnn_read_beam`.
pub const CRNN_BEAM_WIDTH: usize = 8;

const _: () = assert!(CRNN_MAX_LABEL_LEN == MAX_LABEL_LEN);
const _: () = assert!(size_of::<Model<'static>>() <= CRNN_MODEL_BYTES);
const _: () = assert!(align_of::<Model<'static>>() <= align_of::<CrnnModel>());

/// Storage for a parsed model; its contents are private. Zero it (a C static is) or fill it with
/// `crnn_parse` before any other call; it holds no resource, so there is nothing to free.
#[repr(C, align(8))]
pub struct CrnnModel {
    opaque: [u8; CRNN_MODEL_BYTES],
    /// 1 once `crnn_parse` succeeded (the other functions refuse a model that was never parsed).
    parsed: u32,
}

/// What a call did: `CRNN_STATUS_OK`, or why it refused. `crnn_status_message` says it in words.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrnnStatus {
    Ok = 0,
    /// A pointer argument was NULL, or the model was never parsed.
    NullArgument = 1,
    /// The bytes end before a field or tensor they announce.
    Truncated = 2,
    /// The bytes do not start with `CRNN`.
    BadMagic = 3,
    /// A format version this library does not read.
    UnsupportedVersion = 4,
    /// A header field is out of range, or the length in the header is not the length given.
    BadHeader = 5,
    /// The CRC-32 does not match: the file is corrupted.
    ChecksumMismatch = 6,
    /// The tensors, alphabet or sizes do not fit the architecture.
    BadModel = 7,
    /// The model exceeds the library's capacities (e.g. labels longer than `CRNN_MAX_LABEL_LEN`).
    Capacity = 8,
    /// The scratch buffer is smaller than `crnn_scratch_bytes`.
    ScratchTooSmall = 9,
    /// The image is not `crnn_image_bytes` long.
    ImageSize = 10,
    /// The model's precision or input conversion was left out of this build (the `f32`, `colour` features).
    NotBuilt = 11,
}

/// The sizes of a parsed model.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CrnnInfo {
    /// Image height and width in pixels.
    pub height: u32,
    pub width: u32,
    /// Bytes per pixel: 1 (grayscale) or 3 (RGB, a colour model).
    pub channels: u32,
    /// Output classes: the alphabet's characters and the CTC blank (class 0).
    pub classes: u32,
    /// Longest text the model reads.
    pub max_label_len: u32,
    /// 0: f32 weights; 1: int8, integer-only.
    pub int8: u32,
    /// Bytes of scratch a reading needs (`crnn_scratch_bytes`) and of an image (`crnn_image_bytes`).
    pub scratch_bytes: usize,
    pub image_bytes: usize,
}

/// One image's reading.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CrnnReading {
    /// The text, UTF-8, NUL-terminated.
    pub text: [c_char; CRNN_TEXT_BYTES],
    /// Its length in bytes (without the NUL) and in characters.
    pub text_bytes: u32,
    pub chars: u32,
    /// A probability in [0, 1]: of the least sure character (greedy) or of the whole text, all its CTC
    /// alignments summed (beam search).
    pub confidence: f32,
    /// Greedy only: each character's probability on the best path (`chars` of them); 0 otherwise.
    pub char_probability: [f32; CRNN_MAX_LABEL_LEN],
}

/// The per-step class scores of one image, `steps × classes` row-major, living in the scratch buffer
/// (valid until the scratch is used again).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CrnnScores {
    pub steps: u32,
    pub classes: u32,
    /// An int8 model's raw scores (`real = scale · (q − zero_point)`); NULL for an f32 model.
    pub int8: *const i8,
    pub scale: f32,
    pub zero_point: i32,
    /// An f32 model's logits; NULL for an int8 model.
    pub f32: *const f32,
}

fn status(e: Error) -> CrnnStatus {
    match e {
        Error::Truncated => CrnnStatus::Truncated,
        Error::BadMagic => CrnnStatus::BadMagic,
        Error::UnsupportedVersion(_) => CrnnStatus::UnsupportedVersion,
        Error::BadHeader | Error::LengthMismatch => CrnnStatus::BadHeader,
        Error::ChecksumMismatch => CrnnStatus::ChecksumMismatch,
        Error::Capacity => CrnnStatus::Capacity,
        Error::ScratchTooSmall => CrnnStatus::ScratchTooSmall,
        Error::ImageSize => CrnnStatus::ImageSize,
        Error::PrecisionNotBuilt | Error::InputNotBuilt => CrnnStatus::NotBuilt,
        // BadAlphabet, BadTensor, MissingTensor, ShapeMismatch, BadArch, and any later kind of bad file.
        _ => CrnnStatus::BadModel,
    }
}

/// The parsed model in `model`, or `None` if it is NULL or was never parsed.
///
/// # Safety
/// `model` is NULL or points to a `CrnnModel` that was zeroed or filled by `crnn_parse`.
unsafe fn parsed<'m>(model: *const CrnnModel) -> Option<&'m Model<'static>> {
    let model = model.as_ref()?;
    (model.parsed == 1).then(|| &*model.opaque.as_ptr().cast::<Model<'static>>())
}

/// `len` bytes at `ptr` (NULL allowed only for 0 bytes).
unsafe fn bytes<'b>(ptr: *const u8, len: usize) -> Option<&'b [u8]> {
    match (ptr.is_null(), len) {
        (true, 0) => Some(&[]),
        (true, _) => None,
        (false, _) => Some(core::slice::from_raw_parts(ptr, len)),
    }
}

unsafe fn bytes_mut<'b>(ptr: *mut u8, len: usize) -> Option<&'b mut [u8]> {
    match (ptr.is_null(), len) {
        (true, 0) => Some(&mut []),
        (true, _) => None,
        (false, _) => Some(core::slice::from_raw_parts_mut(ptr, len)),
    }
}

/// Parses and validates a model file (magic, version, length, checksum, every tensor's shape) into
/// `model`. The bytes are read in place: they must stay unchanged while `model` is used.
///
/// # Safety
/// `model` points to writable `CrnnModel` storage; `bytes` to `len` readable bytes that outlive its use.
#[no_mangle]
pub unsafe extern "C" fn crnn_parse(model: *mut CrnnModel, bytes_ptr: *const u8, len: usize) -> CrnnStatus {
    let (Some(model), Some(file)) = (model.as_mut(), bytes(bytes_ptr, len)) else {
        return CrnnStatus::NullArgument;
    };
    model.parsed = 0;
    match Model::parse(file) {
        Ok(parsed) => {
            model.opaque.as_mut_ptr().cast::<Model<'static>>().write(parsed);
            model.parsed = 1;
            CrnnStatus::Ok
        }
        Err(e) => status(e),
    }
}

/// The model's sizes into `info`.
///
/// # Safety
/// `model` as for `crnn_parse`'s output; `info` writable.
#[no_mangle]
pub unsafe extern "C" fn crnn_info(model: *const CrnnModel, info: *mut CrnnInfo) -> CrnnStatus {
    let (Some(m), Some(info)) = (parsed(model), info.as_mut()) else { return CrnnStatus::NullArgument };
    let arch = m.arch();
    *info = CrnnInfo {
        height: arch.height.into(),
        width: arch.width.into(),
        channels: m.input().channels() as u32,
        classes: arch.classes.into(),
        max_label_len: arch.max_label_len.into(),
        int8: u32::from(m.precision() == Precision::Int8),
        scratch_bytes: m.scratch_bytes(),
        image_bytes: m.image_bytes(),
    };
    CrnnStatus::Ok
}

/// Bytes of scratch a reading needs; 0 for a NULL or unparsed model.
///
/// # Safety
/// `model` as for `crnn_info`.
#[no_mangle]
pub unsafe extern "C" fn crnn_scratch_bytes(model: *const CrnnModel) -> usize {
    parsed(model).map_or(0, Model::scratch_bytes)
}

/// Bytes of an image: height × width, × 3 for a colour model (RGB); 0 for a NULL or unparsed model.
///
/// # Safety
/// `model` as for `crnn_info`.
#[no_mangle]
pub unsafe extern "C" fn crnn_image_bytes(model: *const CrnnModel) -> usize {
    parsed(model).map_or(0, Model::image_bytes)
}

/// Runs the network on one image (u8, row-major, `crnn_image_bytes` long) and points `out` at its
/// scores in the scratch buffer.
///
/// # Safety
/// `model` as for `crnn_info`; `pixels` and `scratch` point to that many bytes; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn crnn_run(
    model: *const CrnnModel,
    pixels: *const u8,
    pixels_len: usize,
    scratch: *mut u8,
    scratch_len: usize,
    out: *mut CrnnScores,
) -> CrnnStatus {
    let (Some(m), Some(pixels), Some(scratch), Some(out)) =
        (parsed(model), bytes(pixels, pixels_len), bytes_mut(scratch, scratch_len), out.as_mut())
    else {
        return CrnnStatus::NullArgument;
    };
    let scores = match m.run(pixels, scratch) {
        Ok(s) => s,
        Err(e) => return status(e),
    };
    let (steps, classes) = (scores.steps() as u32, scores.classes() as u32);
    *out = match scores {
        Scores::I8 { data, scale, zp, .. } => {
            CrnnScores { steps, classes, int8: data.as_ptr(), scale, zero_point: zp, f32: core::ptr::null() }
        }
        Scores::F32 { data, .. } => {
            CrnnScores { steps, classes, int8: core::ptr::null(), scale: 1.0, zero_point: 0, f32: data.as_ptr() }
        }
    };
    CrnnStatus::Ok
}

fn fill(reading: &Reading, out: &mut CrnnReading) {
    let text = reading.text.as_bytes();
    let mut r = CrnnReading {
        text: [0; CRNN_TEXT_BYTES],
        text_bytes: text.len() as u32,
        chars: reading.text.chars().count() as u32,
        confidence: reading.confidence,
        char_probability: [0.0; CRNN_MAX_LABEL_LEN],
    };
    // The text is at most 4 · MAX_LABEL_LEN bytes (core-infer's `Text` capacity): the NUL always fits.
    for (d, &s) in r.text.iter_mut().zip(text) {
        *d = s as c_char;
    }
    for (d, &p) in r.char_probability.iter_mut().zip(&reading.chars) {
        *d = p;
    }
    *out = r;
}

/// Shared by the two readers: checks the arguments, reads, fills `out`.
unsafe fn read_with(
    model: *const CrnnModel,
    (pixels, pixels_len): (*const u8, usize),
    (scratch, scratch_len): (*mut u8, usize),
    out: *mut CrnnReading,
    read: impl FnOnce(&Model<'static>, &[u8], &mut [u8]) -> Result<Reading, Error>,
) -> CrnnStatus {
    let (Some(m), Some(pixels), Some(scratch), Some(out)) =
        (parsed(model), bytes(pixels, pixels_len), bytes_mut(scratch, scratch_len), out.as_mut())
    else {
        return CrnnStatus::NullArgument;
    };
    match read(m, pixels, scratch) {
        Ok(reading) => {
            fill(&reading, out);
            CrnnStatus::Ok
        }
        Err(e) => status(e),
    }
}

/// Reads one image by greedy CTC decoding: the text, each character's probability and the least of them
/// as the confidence.
///
/// # Safety
/// As for `crnn_run`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn crnn_read(
    model: *const CrnnModel,
    pixels: *const u8,
    pixels_len: usize,
    scratch: *mut u8,
    scratch_len: usize,
    out: *mut CrnnReading,
) -> CrnnStatus {
    read_with(model, (pixels, pixels_len), (scratch, scratch_len), out, |m, p, s| m.read(p, s))
}

/// Reads one image by CTC prefix beam search of width `CRNN_BEAM_WIDTH`: the most probable text found,
/// all its alignments summed, and that probability as the confidence.
///
/// # Safety
/// As for `crnn_run`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn crnn_read_beam(
    model: *const CrnnModel,
    pixels: *const u8,
    pixels_len: usize,
    scratch: *mut u8,
    scratch_len: usize,
    out: *mut CrnnReading,
) -> CrnnStatus {
    read_with(model, (pixels, pixels_len), (scratch, scratch_len), out, |m, p, s| m.read_beam::<CRNN_BEAM_WIDTH>(p, s))
}

/// What a status means, in English (a static NUL-terminated string; "unknown status" for a value that is
/// not a `crnn_status`).
#[no_mangle]
pub extern "C" fn crnn_status_message(status: i32) -> *const c_char {
    let msg: &'static [u8] = match status {
        0 => b"ok\0",
        1 => b"a pointer argument is NULL, or the model was not parsed\0",
        2 => b"model file is truncated\0",
        3 => b"not a model file (bad magic)\0",
        4 => b"unsupported model format version\0",
        5 => b"malformed model header, or its length is not the file's\0",
        6 => b"model checksum mismatch (corrupted file)\0",
        7 => b"the model's tensors, alphabet or sizes do not fit its architecture\0",
        8 => b"model exceeds this library's capacities\0",
        9 => b"scratch buffer too small (see crnn_scratch_bytes)\0",
        10 => b"image size does not match the model (see crnn_image_bytes)\0",
        11 => b"this build leaves out the model's precision or input conversion\0",
        _ => b"unknown status\0",
    };
    msg.as_ptr().cast()
}

/// Reaches here only through a bug: core-infer denies panics in its code (clippy), and this library
/// calls nothing else that panics. Stops instead of unwinding into C.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
