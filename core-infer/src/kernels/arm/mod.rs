//! Arm kernels: the Armv7E-M DSP extension (Cortex-M4, M7, M33 with DSP), behind the `dsp` feature.
pub mod dsp;
