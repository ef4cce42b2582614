//! The seed's CRNN in tch: conv 32 → pool → conv 64 → pool → dense 64 → BiLSTM 128 → BiLSTM 64 → dense.
//!
//! Shapes for the seed's 200×50 images: input `[N, 1, 50, 200]` (u8 / 255), conv/pool to `[N, 64, 12, 50]`,
//! then width becomes time: `[N, 50, 12·64]` with feature index `h · 64 + c` (the seed reshapes the same
//! way), dense to `[N, 50, 64]`, two BiLSTMs, and a dense layer to `[N, 50, classes]` logits.

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
    lstm1: nn::LSTM,
    lstm2: nn::LSTM,
    dense2: nn::Linear,
}

/// Dropout after dense1 and on the LSTM inputs, as in the seed.
const DENSE_DROPOUT: f64 = 0.2;
const LSTM_DROPOUT: f64 = 0.25;

impl Crnn {
    pub fn new(root: &nn::Path, arch: Arch) -> Self {
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
            lstm1: nn::lstm(root / "lstm1", d1, l1, bilstm),
            lstm2: nn::lstm(root / "lstm2", 2 * l1, l2, bilstm),
            dense2: nn::linear(root / "dense2", 2 * l2, k, Default::default()),
        };
        keras_init(root, &[("lstm1", l1), ("lstm2", l2)]);
        model
    }

    /// Logits `[N, T, classes]` of images `[N, 1, H, W]` holding values in [0, 1].
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let x = images.apply(&self.conv1).relu().max_pool2d_default(2);
        let x = x.apply(&self.conv2).relu().max_pool2d_default(2);
        let (n, t) = (x.size()[0], x.size()[3]);
        let x = x.permute([0, 3, 2, 1]).reshape([n, t, -1]);
        let x = self.dense1.forward(&x).relu().dropout(DENSE_DROPOUT, train);
        let (x, _) = self.lstm1.seq(&sequence_dropout(&x, LSTM_DROPOUT, train));
        let (x, _) = self.lstm2.seq(&sequence_dropout(&x, LSTM_DROPOUT, train));
        self.dense2.forward(&x)
    }

    /// The activations quantization calibrates, in inference mode: conv1 and conv2 after ReLU, dense1
    /// after ReLU, and the logits.
    pub fn taps(&self, images: &Tensor) -> [Tensor; 4] {
        let c1 = images.apply(&self.conv1).relu();
        let c2 = c1.max_pool2d_default(2).apply(&self.conv2).relu();
        let x = c2.max_pool2d_default(2);
        let (n, t) = (x.size()[0], x.size()[3]);
        let d1 = self.dense1.forward(&x.permute([0, 3, 2, 1]).reshape([n, t, -1])).relu();
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
fn sequence_dropout(x: &Tensor, p: f64, train: bool) -> Tensor {
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
        for layer in ["conv1", "conv2", "dense1", "dense2"] {
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

/// u8 images (`n × H × W` bytes) as a float tensor `[n, 1, H, W]` in [0, 1].
pub fn images_tensor(pixels: &[u8], n: usize, height: usize, width: usize) -> Tensor {
    Tensor::from_slice(pixels).view([n as i64, 1, height as i64, width as i64]).to_kind(Kind::Float) / 255.0
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
}

impl Spec {
    pub fn new(arch: Arch, alphabet: &str) -> Self {
        let Arch { height, width, conv1, conv2, dense1, lstm1, lstm2, max_label_len, .. } = arch;
        Spec { height, width, conv1, conv2, dense1, lstm1, lstm2, max_label_len, alphabet: alphabet.to_string() }
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
    /// A freshly initialized model (tch's global seed decides the initial weights).
    pub fn new(spec: Spec) -> Self {
        let vs = nn::VarStore::new(tch::Device::cuda_if_available());
        let net = Crnn::new(&vs.root(), spec.arch());
        Trained { spec, vs, net }
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

    /// Logits `[N, T, K]` for u8 images, in inference mode, in batches of 64.
    pub fn logits(&self, pixels: &[u8], n: usize) -> Tensor {
        let (h, w) = (usize::from(self.spec.height), usize::from(self.spec.width));
        let device = self.vs.device();
        tch::no_grad(|| {
            let chunks: Vec<Tensor> = pixels
                .chunks(64 * h * w)
                .map(|c| self.net.forward_t(&images_tensor(c, c.len() / (h * w), h, w).to_device(device), false))
                .collect();
            let all = Tensor::cat(&chunks, 0).to_device(tch::Device::Cpu);
            debug_assert_eq!(all.size()[0], n as i64);
            all
        })
    }
}
