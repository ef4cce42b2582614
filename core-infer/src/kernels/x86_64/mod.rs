//! x86-64 kernels: SSE2 (every x86-64 CPU), AVX2/FMA (with AVX-VNNI's i16 dot products where present),
//! the unsigned-byte `vpdpbusd` kernels of AVX-VNNI and AVX512-VNNI, and the 512-bit kernels of AVX-512.
//! `avx2::available`, `avx2::vnni`, `vnni::DotBytes::get` and `avx512::available` read CPUID once; the
//! selection functions of [`super`] ask them, within the [`limit`] a caller may set (the benchmarks
//! measure each level on one CPU so).
pub mod avx2;
pub mod avx512;
pub mod sse2;
pub mod vnni;

use core::sync::atomic::{AtomicU8, Ordering};

/// The most the x86-64 kernel selection may use, whatever the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The x86-64 baseline kernels only.
    Sse2 = 0,
    /// AVX2 and FMA, without any VNNI (neither AVX-VNNI's i16 dot products nor the `vpdpbusd` kernels).
    Avx2 = 1,
    /// Everything the CPU has on registers of 256 bits or fewer (AVX-VNNI, AVX512-VNNI on YMM): no
    /// 512-bit kernels (`avx512.rs`).
    Ymm = 2,
    /// Everything the CPU has (the default).
    Best = 3,
}

static LIMIT: AtomicU8 = AtomicU8::new(Level::Best as u8);

/// Caps the kernels every later inference uses at `level` (where the CPU has more). Set it between
/// inferences, not during one: a pass prepares its inputs for the kernels it expects to run. Results are the
/// same at every level (every kernel is bit-exact with the reference); only the speed differs.
pub fn limit(level: Level) {
    LIMIT.store(level as u8, Ordering::Relaxed);
}

/// Whether [`limit`] allows `level`.
fn allowed(level: Level) -> bool {
    LIMIT.load(Ordering::Relaxed) >= level as u8
}
