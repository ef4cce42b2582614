//! x86-64 kernels: SSE2 (every x86-64 CPU), AVX2/FMA (with AVX-VNNI's i16 dot products where present),
//! and the unsigned-byte `vpdpbusd` kernels of AVX-VNNI and AVX512-VNNI. `avx2::available`,
//! `avx2::vnni` and `vnni::DotBytes::get` read CPUID once; the selection functions of [`super`] ask them.
pub mod avx2;
pub mod sse2;
pub mod vnni;
