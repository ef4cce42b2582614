//! The contrast stretch a model file may ask for (`core_infer::Input::Stretch`), and a colour model's ink
//! (`core_infer::Input::Ink`), are applied the same way by
//! tch (training), core-infer f32 and int8 (inside `Model::run`) and tract-onnx (fed converted images): on
//! faint captchas (ink and background squeezed into 90..170), where stretching changes what the network sees.

use core_infer::{format, Input, Model};
use equivalence_tests::{shipped_model, synthetic_images, tract_runner, workspace};
use host_trainer::data::Dataset;
use host_trainer::export::Weights;
use host_trainer::model::{best_paths, Trained};

/// Synthetic captchas with their grey levels squeezed into 90..=170 (faint ink on a grey background).
fn faint_images(count: usize) -> Dataset {
    let mut data = synthetic_images(count);
    for p in &mut data.pixels {
        *p = 90 + (u16::from(*p) * 80 / 255) as u8;
    }
    data
}

/// `bytes` with the header's input field set to `input` and the checksum redone.
fn with_input(bytes: &[u8], input: Input) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[34..36].copy_from_slice(&(input as u16).to_le_bytes());
    let n = b.len() - 4;
    let crc = format::checksum(&b[..n]);
    b[n..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The shipped model as a contrast-stretching one (same weights).
fn stretching_model() -> Trained {
    let mut model = shipped_model();
    model.spec.stretch_contrast = true;
    model
}

fn raw_scores(model: &Model, pixels: &[u8]) -> Vec<f32> {
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let scores = model.run(pixels, &mut scratch).unwrap();
    (0..scores.steps())
        .flat_map(|t| (0..scores.classes()).map(move |k| (t, k)))
        .map(|(t, k)| scores.get(t, k))
        .collect()
}

#[test]
fn core_infer_stretches_inside_run_in_both_precisions() {
    let f32_file = Weights::from_tch(&shipped_model()).unwrap().to_crnn_f32().unwrap();
    let int8_file = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).unwrap();
    let data = faint_images(12);
    for (name, file) in [("f32", f32_file), ("int8", int8_file)] {
        // the same weights, once reading pixels as they are and once stretching them
        let (plain, stretching) = (with_input(&file, Input::Plain), with_input(&file, Input::Stretch));
        let (plain, stretching) = (Model::parse(&plain).unwrap(), Model::parse(&stretching).unwrap());
        assert_eq!((plain.input(), stretching.input()), (Input::Plain, Input::Stretch));
        let mut changed = 0;
        for i in 0..data.len() {
            let mut converted = data.image(i).to_vec();
            Input::Stretch.apply(&mut converted);
            let inside = raw_scores(&stretching, data.image(i));
            // bit for bit what a plain model computes on the converted image
            assert_eq!(inside, raw_scores(&plain, &converted), "{name}: {}", data.sources[i]);
            changed += usize::from(inside != raw_scores(&plain, data.image(i)));
        }
        assert_eq!(changed, data.len(), "{name}: the stretch changed nothing on faint images");
    }
}

#[test]
fn tch_core_infer_and_tract_agree_on_a_stretching_model() {
    let model = stretching_model();
    let weights = Weights::from_tch(&model).unwrap();
    let runtime_bytes = weights.to_crnn_f32().unwrap();
    let runtime = Model::parse(&runtime_bytes).unwrap();
    assert_eq!(runtime.input(), Input::Stretch, "the exported file records the stretch");
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let tract = tract_runner(&weights.to_onnx().unwrap(), h, w, Input::Stretch);
    let data = faint_images(10);
    // tch gets the images as they are and converts them itself, as in training
    let logits = Vec::<Vec<Vec<f32>>>::try_from(model.logits(&data.pixels, data.len())).unwrap();
    let paths = best_paths(&model.logits(&data.pixels, data.len()));
    let codec = host_trainer::data::Codec::new(&model.spec.alphabet);
    let (mut vs_core, mut vs_tract) = (0f32, 0f32);
    for i in 0..data.len() {
        let core = raw_scores(&runtime, data.image(i));
        let onnx = tract(data.image(i));
        let tch: Vec<f32> = logits[i].iter().flatten().copied().collect();
        assert_eq!((core.len(), onnx.len()), (tch.len(), tch.len()));
        for ((a, b), c) in tch.iter().zip(&core).zip(&onnx) {
            vs_core = vs_core.max((a - b).abs());
            vs_tract = vs_tract.max((a - c).abs());
        }
        let mut scratch = vec![0u8; runtime.scratch_bytes()];
        let text = runtime.recognize(data.image(i), &mut scratch).unwrap();
        assert_eq!(text.as_str(), codec.decode_path(&paths[i], usize::from(model.spec.max_label_len)));
    }
    eprintln!("faint images: max |tch - core-infer| = {vs_core:.2e}, max |tch - tract| = {vs_tract:.2e}");
    assert!(vs_core <= 1e-4 && vs_tract <= 1e-4, "tch vs core-infer {vs_core}, vs tract {vs_tract}");
}

/// Synthetic captchas as red ink on a green background of the same luma (94): in grayscale nearly flat,
/// as some per-character colours of other generators are; RGB, 3 bytes per pixel.
fn red_on_green(count: usize) -> Dataset {
    let grey = synthetic_images(count);
    let mut data = Dataset { colour: true, pixels: Vec::new(), ..grey.clone() };
    for &v in &grey.pixels {
        let v = u32::from(v);
        let mix = |paper: u32, ink: u32| ((paper * v + ink * (255 - v) + 127) / 255) as u8;
        data.pixels.extend([mix(0, 255), mix(160, 30), mix(0, 0)]);
    }
    data
}

#[test]
fn core_infer_inks_colour_images_inside_run_in_both_precisions() {
    let f32_file = Weights::from_tch(&shipped_model()).unwrap().to_crnn_f32().unwrap();
    let int8_file = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).unwrap();
    let data = red_on_green(12);
    let (h, w) = (data.height, data.width);
    for (name, file) in [("f32", f32_file), ("int8", int8_file)] {
        let (plain, ink) = (with_input(&file, Input::Plain), with_input(&file, Input::Ink));
        let (plain, ink) = (Model::parse(&plain).unwrap(), Model::parse(&ink).unwrap());
        assert_eq!((ink.input(), ink.image_bytes(), plain.image_bytes()), (Input::Ink, 3 * h * w, h * w));
        // The ink model's scratch holds its grey image too; one byte less is refused, as is a grey image.
        assert_eq!(ink.scratch_bytes(), plain.scratch_bytes() + h * w, "{name}");
        let mut short = vec![0u8; ink.scratch_bytes() - 1];
        assert!(ink.run(data.image(0), &mut short).is_err() && ink.run(&data.image(0)[..h * w], &mut short).is_err());
        for i in 0..data.len() {
            // By hand, independently of core-infer's border walk: the background is each channel's lower
            // median over the pixels in the first or last row or column.
            let image = data.image(i);
            let bg: Vec<u8> = (0..3)
                .map(|c| {
                    let mut v: Vec<u8> = (0..h * w)
                        .filter(|k| k / w == 0 || k / w == h - 1 || k % w == 0 || k % w == w - 1)
                        .map(|k| image[3 * k + c])
                        .collect();
                    v.sort_unstable();
                    v[(v.len() - 1) / 2]
                })
                .collect();
            let by_hand: Vec<u8> = image
                .chunks_exact(3)
                .map(|p| 255 - p.iter().zip(&bg).map(|(a, b)| a.abs_diff(*b)).max().unwrap())
                .collect();
            let mut stretched = by_hand.clone();
            Input::Stretch.apply(&mut stretched);
            // bit for bit what a plain model computes on the ink image, stretched
            assert_eq!(raw_scores(&ink, data.image(i)), raw_scores(&plain, &stretched), "{name}: {}", data.sources[i]);
            let mut converted = vec![0; h * w];
            Input::Ink.convert(data.image(i), h, w, &mut converted).unwrap();
            assert_eq!(converted, stretched);
        }
    }
}

#[test]
fn tch_core_infer_and_tract_agree_on_a_colour_model() {
    let mut model = shipped_model();
    model.spec.colour = true;
    let weights = Weights::from_tch(&model).unwrap();
    let runtime_bytes = weights.to_crnn_f32().unwrap();
    let runtime = Model::parse(&runtime_bytes).unwrap();
    assert_eq!(runtime.input(), Input::Ink, "the exported file records the colour input");
    let (h, w) = (usize::from(model.spec.height), usize::from(model.spec.width));
    let tract = tract_runner(&weights.to_onnx().unwrap(), h, w, Input::Ink);
    let data = red_on_green(10);
    let logits = Vec::<Vec<Vec<f32>>>::try_from(model.logits(&data.pixels, data.len())).unwrap();
    let (mut vs_core, mut vs_tract, mut read) = (0f32, 0f32, 0);
    for (i, image_logits) in logits.iter().enumerate() {
        let (core, onnx) = (raw_scores(&runtime, data.image(i)), tract(data.image(i)));
        let tch: Vec<f32> = image_logits.iter().flatten().copied().collect();
        assert_eq!((core.len(), onnx.len()), (tch.len(), tch.len()));
        for ((a, b), c) in tch.iter().zip(&core).zip(&onnx) {
            vs_core = vs_core.max((a - b).abs());
            vs_tract = vs_tract.max((a - c).abs());
        }
        let mut scratch = vec![0u8; runtime.scratch_bytes()];
        read += usize::from(runtime.recognize(data.image(i), &mut scratch).unwrap().as_str() == data.labels[i]);
    }
    eprintln!(
        "red on green: max |tch - core-infer| = {vs_core:.2e}, max |tch - tract| = {vs_tract:.2e}; {read}/10 read"
    );
    assert!(vs_core <= 1e-4 && vs_tract <= 1e-4, "tch vs core-infer {vs_core}, vs tract {vs_tract}");
    // The grey model reads black on white; through ink it reads red on green as well.
    assert!(read >= 8, "the ink input read {read} of 10 red-on-green captchas");
}
