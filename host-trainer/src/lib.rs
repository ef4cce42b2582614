//! host-trainer: trains the seed's captcha CRNN with CTC in tch (libtorch), then writes the model as a
//! tch VarStore, a core-infer model file and ONNX. `main.rs` parses arguments; [`commands`] does the work.
//!
//! Modules, in data-flow order: [`data`] (folders and synthetic captchas), [`model`] (the tch network),
//! [`train`] (the loop and checkpoints), [`export`] (core-infer file and ONNX), [`infer`] (running model
//! files through core-infer), [`report`] (pictures), [`io`] (atomic writes).

pub mod commands;
pub mod data;
pub mod export;
pub mod infer;
pub mod io;
pub mod model;
pub mod quantize;
pub mod report;
pub mod train;
