//! Shared helpers of the equivalence tests: the shipped model, the test images and the shared real data.
//!
//! The real captchas live outside the project (`../shared/data/captcha_images_v2`, or `$CAPTCHA_DATA`);
//! tests that use them say loudly when they are absent and test the synthetic images alone.

use std::path::{Path, PathBuf};

use host_trainer::data::{self, Dataset, LabelRules, OnBad};
use host_trainer::model::Trained;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

/// The model the project ships (trained on synthetic captchas; see models/README.md).
pub fn shipped_model() -> Trained {
    let path = workspace().join("models/synthetic/model.ot");
    Trained::load(&path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The model trained on the shared real captchas (`models/captcha_images_v2`, see models/README.md): its
/// tch weights and the int8 file `train` wrote, calibrated on its training images.
pub fn real_data_model() -> (Trained, Vec<u8>) {
    let dir = workspace().join("models/captcha_images_v2");
    let model = Trained::load(&dir.join("model.ot")).unwrap_or_else(|e| panic!("{e:#}"));
    let int8 = std::fs::read(dir.join("model-int8.crnn")).expect("models/captcha_images_v2/model-int8.crnn");
    (model, int8)
}

/// Synthetic test captchas of the default look, from a seed training never used.
pub fn synthetic_images(count: usize) -> Dataset {
    data::synthetic(captcha_synth::Config::default(), captcha_synth::fixtures::TEST_SEED, 0, count)
        .expect("synthetic captchas")
}

/// The shared real captchas at `height × width`, or `None` (said on stderr) when they are not there.
pub fn real_images(height: usize, width: usize) -> Option<Dataset> {
    let dir = std::env::var_os("CAPTCHA_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data/captcha_images_v2"));
    if !dir.is_dir() {
        eprintln!("SKIPPED (real data): {} is absent; only synthetic images are tested", dir.display());
        return None;
    }
    let (data, _) =
        data::load_dir(&dir, data::Size::Exact(height, width), &LabelRules::default(), OnBad::Fail, data::Colour::Grey)
            .unwrap_or_else(|e| panic!("{e}"));
    Some(data)
}

/// tract-onnx's optimized plan of an exported ONNX model for one `[1, 1, h, w]` input.
pub fn tract_plan(bytes: &[u8], h: usize, w: usize) -> std::sync::Arc<tract_onnx::prelude::TypedRunnableModel> {
    use tract_onnx::prelude::*;
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .and_then(|m| m.with_input_fact(0, f32::fact([1, 1, h, w]).into()))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract plan")
}

/// tract-onnx running an exported ONNX model on one image (`h × w` u8 pixels as they are): the logits,
/// flattened `[step][class]`. The ONNX graph starts after the input conversion, so the image is converted
/// first as `input` says (what tch and core-infer do inside), then fed as `pixel / 255`.
pub fn tract_runner(bytes: &[u8], h: usize, w: usize, input: core_infer::Input) -> impl Fn(&[u8]) -> Vec<f32> {
    use tract_onnx::prelude::*;
    let plan = tract_plan(bytes, h, w);
    move |pixels| {
        let mut converted = vec![0; h * w];
        input.convert(pixels, h, w, &mut converted).expect("an image of the model's size");
        let image =
            tract_ndarray::Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| f32::from(converted[y * w + x]) / 255.0);
        let out = plan.run(tvec!(Tensor::from(image).into())).expect("tract run");
        out[0].to_plain_array_view::<f32>().expect("f32 logits").iter().copied().collect()
    }
}
