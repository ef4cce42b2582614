//! From tch parameters to the two interchange files: the core-infer model file (f32) and ONNX.
//!
//! [`Weights`] is the one place that knows how tch names and lays out the parameters; both writers (and
//! the quantizer) start from it, in core-infer's layout (see `core_infer::net`).

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use core_infer::format::ModelWriter;
use core_infer::{Arch, Precision};
use tract_onnx::pb;

use crate::model::Trained;

/// One tensor in core-infer's layout.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The parameters of a model under core-infer's tensor names and layouts.
#[derive(Clone, Debug)]
pub struct Weights {
    pub arch: Arch,
    /// The input conversion (see [`crate::model::Spec::input`]).
    pub input: core_infer::Input,
    pub alphabet: String,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    pub fn get(&self, name: &str) -> anyhow::Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| anyhow!("missing tensor {name}"))
    }

    /// Reads the parameters of a tch model: conv weights permuted from `[o, i, ky, kx]` to `[o, ky, kx, i]`,
    /// LSTM biases folded (`b_ih + b_hh`), `_reverse` tensors named `bwd`.
    pub fn from_tch(model: &Trained) -> anyhow::Result<Self> {
        let vars = model.vs.variables();
        let get = |name: &str| -> anyhow::Result<tch::Tensor> {
            let t = vars.get(name).ok_or_else(|| anyhow!("the tch model has no parameter {name}"))?;
            Ok(t.detach().to_device(tch::Device::Cpu).to_kind(tch::Kind::Float))
        };
        let tensor = |t: tch::Tensor| -> anyhow::Result<Tensor> {
            let shape = t.size().iter().map(|&d| d as usize).collect();
            Ok(Tensor { shape, data: Vec::<f32>::try_from(t.contiguous().view(-1))? })
        };
        let mut tensors = BTreeMap::new();
        for conv in ["conv1", "conv2"] {
            tensors.insert(format!("{conv}.weight"), tensor(get(&format!("{conv}.weight"))?.permute([0, 2, 3, 1]))?);
        }
        for name in ["conv1.bias", "conv2.bias", "dense1.weight", "dense1.bias", "dense2.weight", "dense2.bias"] {
            tensors.insert(name.to_string(), tensor(get(name)?)?);
        }
        for lstm in ["lstm1", "lstm2"] {
            for (dir, suffix) in [("fwd", ""), ("bwd", "_reverse")] {
                let p = |what: &str| get(&format!("{lstm}.{what}_l0{suffix}"));
                tensors.insert(format!("{lstm}.{dir}.w_ih"), tensor(p("weight_ih")?)?);
                tensors.insert(format!("{lstm}.{dir}.w_hh"), tensor(p("weight_hh")?)?);
                tensors.insert(format!("{lstm}.{dir}.bias"), tensor(p("bias_ih")? + p("bias_hh")?)?);
            }
        }
        Ok(Weights {
            arch: model.spec.arch(),
            input: model.spec.input(),
            alphabet: model.spec.alphabet.clone(),
            tensors,
        })
    }

    /// The f32 core-infer model file.
    pub fn to_crnn_f32(&self) -> anyhow::Result<Vec<u8>> {
        let mut w = ModelWriter::new(Precision::F32, self.arch, &self.alphabet);
        w.input(self.input);
        // In the order and with the shapes of the one schema; a tensor it does not name is an error.
        let specs: Vec<_> = core_infer::format::names::tensors(Precision::F32, &self.arch).collect();
        for spec in &specs {
            let t = self.get(&spec.name())?;
            if t.shape != spec.shape() {
                return Err(anyhow!("{}: shape {:?}, the model file wants {:?}", spec.name(), t.shape, spec.shape()));
            }
            w.add_f32(&spec.name(), &t.shape, &t.data);
        }
        if let Some(extra) = self.tensors.keys().find(|k| !specs.iter().any(|s| s.name() == **k)) {
            return Err(anyhow!("{extra}: not a tensor of the model file"));
        }
        let bytes = w.finish().map_err(|e| anyhow!("cannot write the model file: {e}"))?;
        core_infer::Model::parse(&bytes).map_err(|e| anyhow!("the written model does not parse: {e}"))?;
        Ok(bytes)
    }

    /// The same network as an ONNX graph (opset 13): input `image` `[N, 1, H, W]` in [0, 1], output `logits`
    /// `[N, T, classes]`. The graph starts after the input conversion: for a contrast-stretching model, feed it
    /// images converted with `core_infer::Input::convert`. LSTMs use ONNX's gate order i, o, f, c and direction `bidirectional`.
    pub fn to_onnx(&self) -> anyhow::Result<Vec<u8>> {
        let a = self.arch;
        let mut g = Graph::default();
        g.input("image", &[None, Some(1), Some(a.height.into()), Some(a.width.into())]);
        for (conv, input) in [("conv1", "image"), ("conv2", "pool1")] {
            // core-infer [o, ky, kx, i] back to ONNX's [o, i, ky, kx]
            let t = self.get(&format!("{conv}.weight"))?;
            let [o, ky, kx, i] = t.shape[..] else {
                return Err(anyhow!("{conv}.weight is not 4-D"));
            };
            let data = (0..o * i * ky * kx)
                .map(|n| {
                    let (oo, ii, yy, xx) = (n / (i * ky * kx), n / (ky * kx) % i, n / kx % ky, n % kx);
                    t.data[((oo * ky + yy) * kx + xx) * i + ii]
                })
                .collect();
            g.init_f32(&format!("{conv}.W"), &[o, i, ky, kx], data);
            g.init_f32(&format!("{conv}.B"), &[o], self.get(&format!("{conv}.bias"))?.data.clone());
            let out = if conv == "conv1" { "pool1" } else { "pool2" };
            g.node("Conv", &[input, &format!("{conv}.W"), &format!("{conv}.B")], &[conv])
                .ints("pads", &[1, 1, 1, 1])
                .ints("kernel_shape", &[3, 3]);
            g.node("Relu", &[conv], &[&format!("{conv}.relu")]);
            g.node("MaxPool", &[&format!("{conv}.relu")], &[out])
                .ints("kernel_shape", &[2, 2])
                .ints("strides", &[2, 2]);
        }
        // [N, C, H', T] → [T, N, H', C] → [T, N, H'·C]: feature index h·C + c, as the seed reshapes.
        g.node("Transpose", &["pool2"], &["seq"]).ints("perm", &[3, 0, 2, 1]);
        g.init_i64("keep2_flatten", &[3], vec![0, 0, -1]);
        g.node("Reshape", &["seq", "keep2_flatten"], &["features"]);
        self.dense(&mut g, "dense1", "features", "dense1.lin")?;
        g.node("Relu", &["dense1.lin"], &["dense1"]);
        self.bilstm(&mut g, "lstm1", "dense1", a.lstm1.into())?;
        self.bilstm(&mut g, "lstm2", "lstm1", a.lstm2.into())?;
        self.dense(&mut g, "dense2", "lstm2", "logits_tnk")?;
        g.node("Transpose", &["logits_tnk"], &["logits"]).ints("perm", &[1, 0, 2]);
        g.output("logits", &[None, Some(a.steps() as i64), Some(a.classes.into())]);
        Ok(prost::Message::encode_to_vec(&g.finish()))
    }

    /// `y = x · Wᵀ + b` on `[T, N, In]`.
    fn dense(&self, g: &mut Graph, name: &str, input: &str, output: &str) -> anyhow::Result<()> {
        let w = self.get(&format!("{name}.weight"))?;
        let [o, i] = w.shape[..] else {
            return Err(anyhow!("{name}.weight is not 2-D"));
        };
        let wt = (0..i * o).map(|n| w.data[(n % o) * i + n / o]).collect();
        g.init_f32(&format!("{name}.WT"), &[i, o], wt);
        g.init_f32(&format!("{name}.B"), &[o], self.get(&format!("{name}.bias"))?.data.clone());
        g.node("MatMul", &[input, &format!("{name}.WT")], &[&format!("{name}.mm")]);
        g.node("Add", &[&format!("{name}.mm"), &format!("{name}.B")], &[output]);
        Ok(())
    }

    /// A bidirectional ONNX LSTM on `[T, N, In]` giving `[T, N, 2·hidden]` (forward half first).
    fn bilstm(&self, g: &mut Graph, name: &str, input: &str, hidden: usize) -> anyhow::Result<()> {
        // PyTorch gate blocks i, f, g, o → ONNX i, o, f, c
        let reorder = |t: &Tensor| -> Vec<f32> {
            let block = t.data.len() / 4;
            [0, 3, 1, 2].iter().flat_map(|&b| t.data[b * block..(b + 1) * block].iter().copied()).collect()
        };
        let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
        for dir in ["fwd", "bwd"] {
            w.extend(reorder(self.get(&format!("{name}.{dir}.w_ih"))?));
            r.extend(reorder(self.get(&format!("{name}.{dir}.w_hh"))?));
            b.extend(reorder(self.get(&format!("{name}.{dir}.bias"))?));
            b.extend(std::iter::repeat_n(0.0, 4 * hidden)); // the recurrent bias is folded into the first
        }
        let n_in = w.len() / (2 * 4 * hidden);
        g.init_f32(&format!("{name}.W"), &[2, 4 * hidden, n_in], w);
        g.init_f32(&format!("{name}.R"), &[2, 4 * hidden, hidden], r);
        g.init_f32(&format!("{name}.Bias"), &[2, 8 * hidden], b);
        let y = format!("{name}.Y");
        g.node("LSTM", &[input, &format!("{name}.W"), &format!("{name}.R"), &format!("{name}.Bias")], &[&y])
            .int("hidden_size", hidden as i64)
            .string("direction", "bidirectional");
        // Y is [T, 2, N, hidden] → [T, N, 2, hidden] → [T, N, 2·hidden]
        g.node("Transpose", &[&y], &[&format!("{name}.YT")]).ints("perm", &[0, 2, 1, 3]);
        g.node("Reshape", &[&format!("{name}.YT"), "keep2_flatten"], &[name]);
        Ok(())
    }
}

/// A tiny builder over tract-onnx's protobuf types.
#[derive(Default)]
struct Graph {
    graph: pb::GraphProto,
}

struct NodeRef<'g>(&'g mut pb::NodeProto);

impl NodeRef<'_> {
    fn attr(self, a: pb::AttributeProto) -> Self {
        self.0.attribute.push(a);
        self
    }
    fn ints(self, name: &str, v: &[i64]) -> Self {
        let r#type = pb::attribute_proto::AttributeType::Ints as i32;
        self.attr(pb::AttributeProto { name: name.into(), r#type, ints: v.to_vec(), ..Default::default() })
    }
    fn int(self, name: &str, v: i64) -> Self {
        let r#type = pb::attribute_proto::AttributeType::Int as i32;
        self.attr(pb::AttributeProto { name: name.into(), r#type, i: v, ..Default::default() })
    }
    fn string(self, name: &str, v: &str) -> Self {
        let r#type = pb::attribute_proto::AttributeType::String as i32;
        self.attr(pb::AttributeProto { name: name.into(), r#type, s: v.as_bytes().to_vec(), ..Default::default() })
    }
}

impl Graph {
    fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeRef<'_> {
        let name = format!("{op}_{}", self.graph.node.len());
        self.graph.node.push(pb::NodeProto {
            name,
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        });
        NodeRef(self.graph.node.last_mut().expect("just pushed"))
    }
    fn init(&mut self, name: &str, dims: &[usize], data_type: pb::tensor_proto::DataType, raw: Vec<u8>) {
        self.graph.initializer.push(pb::TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: data_type as i32,
            raw_data: raw,
            ..Default::default()
        });
    }
    fn init_f32(&mut self, name: &str, dims: &[usize], data: Vec<f32>) {
        self.init(name, dims, pb::tensor_proto::DataType::Float, data.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    fn init_i64(&mut self, name: &str, dims: &[usize], data: Vec<i64>) {
        self.init(name, dims, pb::tensor_proto::DataType::Int64, data.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
    fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
        use pb::tensor_shape_proto::{dimension::Value, Dimension};
        let dim = dims
            .iter()
            .map(|d| Dimension {
                value: Some(d.map_or_else(|| Value::DimParam("N".into()), Value::DimValue)),
                ..Default::default()
            })
            .collect();
        let tensor = pb::type_proto::Tensor {
            elem_type: pb::tensor_proto::DataType::Float as i32,
            shape: Some(pb::TensorShapeProto { dim }),
        };
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(tensor)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
    fn input(&mut self, name: &str, dims: &[Option<i64>]) {
        self.graph.input.push(Self::value_info(name, dims));
    }
    fn output(&mut self, name: &str, dims: &[Option<i64>]) {
        self.graph.output.push(Self::value_info(name, dims));
    }
    fn finish(mut self) -> pb::ModelProto {
        self.graph.name = "captcha_crnn".into();
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: 13 }],
            producer_name: "host-trainer".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            graph: Some(self.graph),
            ..Default::default()
        }
    }
}

/// Writes `model.crnn` and `model.onnx` for `model` into `dir`, atomically.
pub fn write_all(model: &Trained, dir: &std::path::Path) -> anyhow::Result<Weights> {
    let weights = Weights::from_tch(model)?;
    crate::io::write_atomic(&dir.join("model.crnn"), &weights.to_crnn_f32()?).context("writing the f32 model file")?;
    crate::io::write_atomic(&dir.join("model.onnx"), &weights.to_onnx()?).context("writing the ONNX model")?;
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{seed_arch, Spec, Trained};

    /// The f32 file holds exactly the schema's tensors, in its order, as the int8 file does
    /// (`core-infer/tests/schema.rs` checks the shipped int8 files).
    #[test]
    fn the_f32_file_follows_the_one_schema() {
        let model = Trained::new(Spec::new(seed_arch(16, 24, 4, 3), "abc"));
        let weights = Weights::from_tch(&model).unwrap();
        let bytes = weights.to_crnn_f32().unwrap();
        let file = core_infer::format::ModelFile::parse(&bytes).unwrap();
        let got: Vec<_> =
            file.tensors().map(|t| (String::from_utf8_lossy(t.name).into_owned(), t.shape().to_vec())).collect();
        let want: Vec<_> = core_infer::format::names::tensors(Precision::F32, &file.arch)
            .map(|s| (s.name(), s.shape().to_vec()))
            .collect();
        assert_eq!(got, want);
    }
}
