//! The seed's CRNN in tch: conv 32 → pool → conv 64 → pool → dense 64 → BiLSTM 128 → BiLSTM 64 → dense.
//!
//! Shapes for the seed's 200×50 images: input `[N, 1, 50, 200]` (u8 / 255), conv/pool to `[N, 64, 12, 50]`,
//! then width becomes time: `[N, 50, 12·64]` with feature index `h · 64 + c` (the seed reshapes the same
//! way), dense to `[N, 50, 64]`, two BiLSTMs, and a dense layer to `[N, 50, classes]` logits.
//!
//! Training may add batch normalization after conv1, conv2 and dense1 (before their ReLU). It is the
//! one change to the seed's recipe that matters for time to accuracy: on the shared real captchas the
//! seed's recipe sits on the CTC blank plateau for 20-40 epochs, with batch norm for 5-8. Batch norm
//! in inference mode is an affine map per channel, so [`Trained::fold_batch_norm`] folds it into the
//! preceding layer's weights and bias: the saved and exported model is exactly the seed's network.

use core_infer::Arch;
use tch::nn::{self, Module, RNN};
use tch::{Kind, Tensor};

/// The sizes of the seed's model for a given image size and alphabet.
pub fn seed_arch(height: usize, width: usize, classes: usize, max_label_len: usize) -> Arch {
    Arch {
        height: height as u16,
        width: width as u16,
        conv1: 32,
        conv2: 64,
        dense1: 64,
        lstm1: 128,
        lstm2: 64,
        classes: classes as u16,
        max_label_len: max_label_len as u16,
    }
}

/// The network, its parameters living in a [`nn::VarStore`] under the names `conv1`, `conv2`, `dense1`,
/// `lstm1`, `lstm2`, `dense2` (tch's LSTM names its tensors `weight_ih_l0`, `..._reverse` and so on).
#[derive(Debug)]
pub struct Crnn {
    pub arch: Arch,
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    dense1: nn::Linear,
    /// Training-time batch norms after conv1, conv2 and dense1 (`bn1`, `bn2`, `bn3`), if any.
    norms: Option<[nn::BatchNorm; 3]>,
    /// A training-time shortcut head (`aux`): dense1's output straight to class scores by one dense layer,
    /// trained with its own CTC loss ([`Crnn::forward_train`]) and left out of the saved model.
    aux: Option<nn::Linear>,
    lstm1: nn::LSTM,
    lstm2: nn::LSTM,
    dense2: nn::Linear,
}

/// Dropout after dense1 and on the LSTM inputs, as in the seed.
pub(crate) const DENSE_DROPOUT: f64 = 0.2;
pub(crate) const LSTM_DROPOUT: f64 = 0.25;

/// The batch norms' names, each with the layer it follows and folds into.
const NORMS: [(&str, &str); 3] = [("bn1", "conv1"), ("bn2", "conv2"), ("bn3", "dense1")];

impl Crnn {
    /// The seed's network; with `batch_norm` and `aux`, the training variants described in the module docs.
    pub fn new(root: &nn::Path, arch: Arch, batch_norm: bool, aux: bool) -> Self {
        let a = arch;
        let conv = nn::ConvConfig { padding: 1, ..Default::default() };
        let bilstm = nn::RNNConfig { bidirectional: true, batch_first: true, ..Default::default() };
        let features = a.features() as i64;
        let [c1, c2, d1, l1, l2, k] = [a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes].map(i64::from);
        let model = Crnn {
            arch,
            conv1: nn::conv2d(root / "conv1", 1, c1, 3, conv),
            conv2: nn::conv2d(root / "conv2", c1, c2, 3, conv),
            dense1: nn::linear(root / "dense1", features, d1, Default::default()),
            norms: batch_norm.then(|| {
                // γ = 1 as in PyTorch and Keras (tch's default draws it from U(0, 1), which trains slower).
                let bn = nn::BatchNormConfig { ws_init: nn::Init::Const(1.0), ..Default::default() };
                [
                    nn::batch_norm2d(root / NORMS[0].0, c1, bn),
                    nn::batch_norm2d(root / NORMS[1].0, c2, bn),
                    nn::batch_norm1d(root / NORMS[2].0, d1, bn),
                ]
            }),
            aux: aux.then(|| nn::linear(root / "aux", d1, k, Default::default())),
            lstm1: nn::lstm(root / "lstm1", d1, l1, bilstm),
            lstm2: nn::lstm(root / "lstm2", 2 * l1, l2, bilstm),
            dense2: nn::linear(root / "dense2", 2 * l2, k, Default::default()),
        };
        keras_init(root, &[("lstm1", l1), ("lstm2", l2)]);
        model
    }

    /// Applies batch norm `i` (if training with them) to `x`, whose channels are on axis 1.
    fn norm(&self, i: usize, x: Tensor, train: bool) -> Tensor {
        match &self.norms {
            Some(norms) => x.apply_t(&norms[i], train),
            None => x,
        }
    }

    /// conv1 → ReLU, conv2 → ReLU (before their max-pools) and dense1 → ReLU `[N, T, dense1]`.
    fn front(&self, images: &Tensor, train: bool) -> [Tensor; 3] {
        let c1 = self.norm(0, images.apply(&self.conv1), train).relu();
        let c2 = self.norm(1, c1.max_pool2d_default(2).apply(&self.conv2), train).relu();
        let x = c2.max_pool2d_default(2);
        let (n, t) = (x.size()[0], x.size()[3]);
        let x = self.dense1.forward(&x.permute([0, 3, 2, 1]).reshape([n, t, -1]));
        let d1 = self.norm(2, x.transpose(1, 2), train).transpose(1, 2).relu();
        [c1, c2, d1]
    }

    /// Logits `[N, T, classes]` of images `[N, 1, H, W]` holding values in [0, 1].
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        self.forward_train(images, train).0
    }

    /// [`Crnn::forward_t`], and the shortcut head's logits `[N, T, classes]` (dense1 → `aux`) if the
    /// network has one.
    pub fn forward_train(&self, images: &Tensor, train: bool) -> (Tensor, Option<Tensor>) {
        let [_, _, d1] = self.front(images, train);
        let x = d1.dropout(DENSE_DROPOUT, train);
        let aux = self.aux.as_ref().map(|head| x.apply(head));
        let (x, _) = self.lstm1.seq(&sequence_dropout(&x, LSTM_DROPOUT, train));
        let (x, _) = self.lstm2.seq(&sequence_dropout(&x, LSTM_DROPOUT, train));
        (self.dense2.forward(&x), aux)
    }

    /// The activations quantization calibrates, in inference mode: conv1 and conv2 after ReLU, dense1
    /// after ReLU, and the logits.
    pub fn taps(&self, images: &Tensor) -> [Tensor; 4] {
        let [c1, c2, d1] = self.front(images, false);
        let logits = self.forward_t(images, false);
        [c1, c2, d1, logits]
    }

    /// CTC loss (mean over the batch of per-sample loss, as Keras's `ctc_batch_cost`) of logits
    /// `[N, T, K]` against concatenated `targets` with their `target_lengths`.
    pub fn ctc_loss(logits: &Tensor, targets: &Tensor, target_lengths: &[i64]) -> Tensor {
        let (n, t) = (logits.size()[0], logits.size()[1]);
        let log_probs = logits.log_softmax(2, Kind::Float).transpose(0, 1);
        let input_lengths = vec![t; n as usize];
        let per_sample = Tensor::ctc_loss(
            &log_probs,
            targets,
            input_lengths.as_slice(),
            target_lengths,
            0,
            tch::Reduction::None,
            true,
        );
        per_sample.mean(Kind::Float)
    }

    /// Trainable parameters.
    pub fn parameter_count(vs: &nn::VarStore) -> usize {
        vs.trainable_variables().iter().map(|t| t.numel()).sum()
    }
}

/// Dropout on `[N, T, F]` with one mask per sequence, shared by all time steps: what Keras's
/// `LSTM(dropout=...)` does to its inputs.
pub(crate) fn sequence_dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
    if !train || p == 0.0 {
        return x.shallow_clone();
    }
    let size = x.size();
    let mask = Tensor::empty([size[0], 1, size[2]], (Kind::Float, x.device())).bernoulli_float_(1.0 - p) / (1.0 - p);
    x * mask
}

/// Re-initializes the parameters as Keras does for the seed's layers: He-normal convolutions, Glorot-uniform
/// dense kernels, orthogonal
/// recurrent kernels, zero biases, and a forget-gate bias of 1 (`unit_forget_bias`). tch's defaults (Kaiming
/// uniform, also for the LSTMs) saturate the gates and make the CTC blank plateau several times longer.
fn keras_init(root: &nn::Path, lstms: &[(&str, i64)]) {
    let glorot = |t: &Tensor, fan_in: i64, fan_out: i64| {
        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
        let _ = t.shallow_clone().uniform_(-bound, bound);
    };
    tch::no_grad(|| {
        for layer in ["conv1", "conv2", "dense1", "dense2", "aux"] {
            let p = root.sub(layer);
            if let Some(w) = p.get("weight") {
                let size = w.size();
                let field: i64 = size[2..].iter().product();
                if layer.starts_with("conv") {
                    // the seed's convolutions ask for he_normal
                    let std = (2.0 / (size[1] * field) as f64).sqrt();
                    let _ = w.shallow_clone().normal_(0.0, std);
                } else {
                    glorot(&w, size[1] * field, size[0] * field);
                }
            }
            if let Some(b) = p.get("bias") {
                let _ = b.shallow_clone().zero_();
            }
        }
        for &(layer, hidden) in lstms {
            let p = root.sub(layer);
            for suffix in ["l0", "l0_reverse"] {
                if let Some(w) = p.get(&format!("weight_ih_{suffix}")) {
                    glorot(&w, w.size()[1], w.size()[0]);
                }
                if let Some(w) = p.get(&format!("weight_hh_{suffix}")) {
                    let (q, r) = Tensor::linalg_qr(&Tensor::randn(w.size(), (Kind::Float, w.device())), "reduced");
                    let q = q * r.diagonal(0, 0, 1).sign().unsqueeze(0);
                    w.shallow_clone().copy_(&q);
                }
                for bias in ["bias_ih", "bias_hh"] {
                    if let Some(b) = p.get(&format!("{bias}_{suffix}")) {
                        let _ = b.shallow_clone().zero_();
                        if bias == "bias_ih" {
                            let _ = b.narrow(0, hidden, hidden).fill_(1.0);
                        }
                    }
                }
            }
        }
    });
}

/// u8 images (`n × H × W × channels` bytes, as they are) as the network's input: each converted as `spec`
/// says (see [`Spec::input`]), then a float tensor `[n, 1, H, W]` in [0, 1]. core-infer does the same
/// inside `Model::run`, with the same function.
pub fn images_tensor(spec: &Spec, pixels: &[u8], n: usize) -> Tensor {
    let (h, w) = (usize::from(spec.height), usize::from(spec.width));
    let input = spec.input();
    let mut converted = vec![0u8; n * h * w];
    for (image, out) in pixels.chunks_exact(h * w * input.channels()).zip(converted.chunks_exact_mut(h * w)) {
        // The sizes match by construction (both chunked from `n` images of this spec).
        let _ = input.convert(image, h, w, out);
    }
    Tensor::from_slice(&converted).view([n as i64, 1, h as i64, w as i64]).to_kind(Kind::Float) / 255.0
}

/// Best class per step of logits `[N, T, K]`, as `N` rows of `T` indices.
pub fn best_paths(logits: &Tensor) -> Vec<Vec<i64>> {
    let n = logits.size()[0];
    let idx = logits.argmax(2, false);
    (0..n).map(|i| Vec::<i64>::try_from(idx.get(i)).unwrap_or_default()).collect()
}

/// What a saved model is besides its weights: the architecture and the alphabet, stored as `model.json`
/// beside the tch VarStore file so it can be rebuilt and reloaded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    pub height: u16,
    pub width: u16,
    pub conv1: u16,
    pub conv2: u16,
    pub dense1: u16,
    pub lstm1: u16,
    pub lstm2: u16,
    pub max_label_len: u16,
    /// Class `k ≥ 1` is the alphabet's character `k - 1`; class 0 is the CTC blank.
    pub alphabet: String,
    /// Each image's contrast is stretched before the network ([`core_infer::Input::Stretch`]); absent in
    /// the `model.json` of models trained before the option existed, which read pixels as they are.
    #[serde(default)]
    pub stretch_contrast: bool,
    /// The model reads RGB images through their ink ([`core_infer::Input::Ink`], stretched too): chosen in
    /// training when grayscale would lose the captchas' colours (`data::grey_loss`). Absent in the
    /// `model.json` of models trained before the option existed, which read grey.
    #[serde(default)]
    pub colour: bool,
    /// The folder of images it was trained on (none for synthetic captchas): where `quantize` finds
    /// calibration images like the training data by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<std::path::PathBuf>,
}

impl Spec {
    pub fn new(arch: Arch, alphabet: &str) -> Self {
        let Arch { height, width, conv1, conv2, dense1, lstm1, lstm2, max_label_len, .. } = arch;
        let alphabet = alphabet.to_string();
        Spec {
            height,
            width,
            conv1,
            conv2,
            dense1,
            lstm1,
            lstm2,
            max_label_len,
            alphabet,
            stretch_contrast: false,
            colour: false,
            data: None,
        }
    }
    /// The input conversion the model file records and core-infer applies.
    pub fn input(&self) -> core_infer::Input {
        if self.colour {
            core_infer::Input::Ink
        } else if self.stretch_contrast {
            core_infer::Input::Stretch
        } else {
            core_infer::Input::Plain
        }
    }
    pub fn arch(&self) -> Arch {
        let Spec { height, width, conv1, conv2, dense1, lstm1, lstm2, max_label_len, .. } = *self;
        let classes = self.alphabet.chars().count() as u16 + 1;
        Arch { height, width, conv1, conv2, dense1, lstm1, lstm2, classes, max_label_len }
    }
}

/// A model in memory: its spec, its parameters and the network over them.
pub struct Trained {
    pub spec: Spec,
    pub vs: nn::VarStore,
    pub net: Crnn,
}

impl Trained {
    /// A freshly initialized seed model (tch's global seed decides the initial weights).
    pub fn new(spec: Spec) -> Self {
        Self::for_training(spec, false, false)
    }

    /// A freshly initialized model, with the training-time batch norms if `batch_norm` and the shortcut
    /// head if `aux`.
    pub fn for_training(spec: Spec, batch_norm: bool, aux: bool) -> Self {
        let vs = nn::VarStore::new(tch::Device::cuda_if_available());
        let net = Crnn::new(&vs.root(), spec.arch(), batch_norm, aux);
        Trained { spec, vs, net }
    }

    /// The seed's network computing what this one computes in inference mode: each batch norm, an
    /// affine map `γ (x − μ) / √(σ² + ε) + β` per channel, folded into the weights and bias before it.
    /// A model without batch norms is copied as it is. The shortcut head, if any, is left out.
    pub fn fold_batch_norm(&self) -> Trained {
        let folded = Trained::new(self.spec.clone());
        folded.copy_weights_from(self);
        let src = self.vs.variables();
        let eps = nn::BatchNormConfig::default().eps;
        tch::no_grad(|| {
            let dst = folded.vs.variables();
            for (bn, layer) in NORMS {
                let get = |n: &str| src.get(&format!("{bn}.{n}"));
                let (Some(gamma), Some(beta), Some(mean), Some(var)) =
                    (get("weight"), get("bias"), get("running_mean"), get("running_var"))
                else {
                    continue;
                };
                let scale = gamma / (var + eps).sqrt();
                let (w, b) = (&dst[&format!("{layer}.weight")], &dst[&format!("{layer}.bias")]);
                let mut shape = vec![1i64; w.dim()];
                shape[0] = -1;
                let new_w = w * scale.reshape(shape.as_slice());
                let new_b = (b - mean) * &scale + beta;
                w.shallow_clone().copy_(&new_w);
                b.shallow_clone().copy_(&new_b);
            }
        });
        folded
    }

    /// Copies into this model's parameters those of `other` with the same names (the others stay).
    pub fn copy_weights_from(&self, other: &Trained) {
        let src = other.vs.variables();
        tch::no_grad(|| {
            for (name, dst) in self.vs.variables() {
                if let Some(t) = src.get(&name) {
                    dst.shallow_clone().copy_(t);
                }
            }
        });
    }

    /// Loads `weights` (a VarStore file) and the `model.json` spec beside it.
    pub fn load(weights: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let spec: Spec = crate::io::read_json(&weights.with_file_name("model.json"))?;
        let mut model = Trained::new(spec);
        model.vs.load(weights).with_context(|| format!("{}: cannot load the weights", weights.display()))?;
        Ok(model)
    }

    /// Saves the weights to `weights` and the spec to `model.json` beside it, both atomically.
    pub fn save(&self, weights: &std::path::Path) -> anyhow::Result<()> {
        crate::io::write_atomic_with(weights, |tmp| Ok(self.vs.save(tmp)?))?;
        crate::io::write_json(&weights.with_file_name("model.json"), &self.spec)
    }

    /// Logits `[N, T, K]` for u8 images (as they are, see [`images_tensor`]), in inference mode, in batches
    /// of 64.
    pub fn logits(&self, pixels: &[u8], n: usize) -> Tensor {
        let image = usize::from(self.spec.height) * usize::from(self.spec.width) * self.spec.input().channels();
        let device = self.vs.device();
        tch::no_grad(|| {
            let chunks: Vec<Tensor> = pixels
                .chunks(64 * image)
                .map(|c| self.net.forward_t(&images_tensor(&self.spec, c, c.len() / image).to_device(device), false))
                .collect();
            let all = Tensor::cat(&chunks, 0).to_device(tch::Device::Cpu);
            debug_assert_eq!(all.size()[0], n as i64);
            all
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_batch_norm_keeps_the_outputs_and_gives_the_seed_network() {
        tch::manual_seed(3);
        let spec = Spec::new(seed_arch(20, 32, 5, 3), "abcd");
        let model = Trained::for_training(spec, true, false);
        let images = Tensor::rand([4, 1, 20, 32], (Kind::Float, tch::Device::Cpu));
        // Non-trivial statistics and affine parameters: a few training-mode passes move the running
        // mean and variance; γ and β are drawn at random.
        tch::no_grad(|| {
            for _ in 0..3 {
                let _ = model.net.forward_t(&(&images * 3.0), true);
            }
            for (name, t) in model.vs.variables() {
                if name.starts_with("bn") && (name.ends_with(".weight") || name.ends_with(".bias")) {
                    let _ = t.shallow_clone().uniform_(0.5, 1.5);
                }
            }
        });
        let folded = model.fold_batch_norm();
        assert_eq!(Crnn::parameter_count(&folded.vs), Crnn::parameter_count(&Trained::new(folded.spec.clone()).vs));
        assert!(folded.vs.variables().keys().all(|k| !k.starts_with("bn")));
        let (a, b) = tch::no_grad(|| (model.net.forward_t(&images, false), folded.net.forward_t(&images, false)));
        let diff = (&a - &b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]);
        assert!(diff < 1e-4 * scale.max(1.0), "folded model differs by {diff} (outputs up to {scale})");
    }
}
