//! Arm kernels: the Armv7E-M DSP extension (Cortex-M4, M7, M33 with DSP), behind the `dsp` feature, and
//! the Armv8.1-M Helium (MVE) kernels (Cortex-M55), behind the `mve` feature.
pub mod dsp;
#[cfg(feature = "mve")]
pub mod mve;
