//! A small ONNX graph builder for the corpus architectures.
//!
//! Unlike [`crate::onnx::emit`], which writes the generator's layer stacks, this builds arbitrary
//! graphs node by node, the way an exporter would: skip connections, gates, concatenations,
//! transposes. Weights come from a seeded stream with He scaling, so activations keep a realistic
//! scale through deep stacks.

use anyhow::Result;
use tract_onnx::pb;

use crate::onnx::emit::ir_version;
use crate::onnx::proto::{attr, tensor_to_proto, value_info, Dim};
use crate::seed::{self, Draw};
use crate::tensor::{DType, Tensor};

/// Attributes of a 1D convolution.
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    /// Kernel length.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Explicit pads `[begin, end]`.
    pub pads: [usize; 2],
    /// Groups.
    pub group: usize,
    /// Whether the bias input is present.
    pub bias: bool,
    /// `auto_pad` other than NOTSET, which then replaces `pads`.
    pub auto_pad: Option<&'static str>,
}

impl ConvSpec {
    /// Kernel `k`, stride 1, no padding, one group, with bias.
    pub fn k(kernel: usize) -> ConvSpec {
        ConvSpec {
            kernel,
            stride: 1,
            dilation: 1,
            pads: [0, 0],
            group: 1,
            bias: true,
            auto_pad: None,
        }
    }
    /// Same-length padding for stride 1: `(field - 1) / 2` on each side (odd fields).
    pub fn same(mut self) -> ConvSpec {
        let field = self.dilation * (self.kernel - 1);
        self.pads = [field / 2, field - field / 2];
        self
    }
    /// Causal padding: the whole receptive field on the left.
    pub fn causal(mut self) -> ConvSpec {
        self.pads = [self.dilation * (self.kernel - 1), 0];
        self
    }
    /// With stride `s`.
    pub fn stride(mut self, s: usize) -> ConvSpec {
        self.stride = s;
        self
    }
    /// With dilation `d`.
    pub fn dilation(mut self, d: usize) -> ConvSpec {
        self.dilation = d;
        self
    }
    /// With explicit pads.
    pub fn pads(mut self, begin: usize, end: usize) -> ConvSpec {
        self.pads = [begin, end];
        self
    }
    /// With `g` groups.
    pub fn group(mut self, g: usize) -> ConvSpec {
        self.group = g;
        self
    }
    /// Without bias.
    pub fn no_bias(mut self) -> ConvSpec {
        self.bias = false;
        self
    }
    /// With an `auto_pad` mode.
    pub fn auto_pad(mut self, mode: &'static str) -> ConvSpec {
        self.auto_pad = Some(mode);
        self
    }

    fn attributes(&self) -> Vec<pb::AttributeProto> {
        let mut a = vec![
            attr::ints("kernel_shape", &[self.kernel as i64]),
            attr::ints("strides", &[self.stride as i64]),
            attr::ints("dilations", &[self.dilation as i64]),
            attr::int("group", self.group as i64),
        ];
        match self.auto_pad {
            Some(mode) => a.push(attr::string("auto_pad", mode)),
            None => a.push(attr::ints(
                "pads",
                &[self.pads[0] as i64, self.pads[1] as i64],
            )),
        }
        a
    }
}

/// A graph under construction.
pub struct Net {
    name: String,
    opset: i64,
    rng: proptest::test_runner::TestRng,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    inputs: Vec<pb::ValueInfoProto>,
    counter: usize,
}

impl Net {
    /// An empty graph named `name`; weights are drawn from `seed`.
    pub fn new(name: &str, seed: u64, opset: i64) -> Net {
        Net {
            name: name.into(),
            opset,
            rng: seed::rng(seed, "corpus-weights"),
            nodes: Vec::new(),
            inits: Vec::new(),
            inputs: Vec::new(),
            counter: 0,
        }
    }

    /// The opset the graph is written for.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    /// Declares a float graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> String {
        self.inputs.push(value_info(name, DType::Float, dims));
        name.into()
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    /// A float initializer with the given values.
    pub fn constant(&mut self, what: &str, shape: &[usize], data: Vec<f32>) -> Result<String> {
        let name = self.fresh(what);
        self.inits
            .push(tensor_to_proto(&name, &Tensor::f32(shape, data)?));
        Ok(name)
    }

    /// An int64 initializer (axes, shapes, pads).
    pub fn ints(&mut self, what: &str, data: &[i64]) -> Result<String> {
        let name = self.fresh(what);
        let t = Tensor::I64(ndarray::ArrayD::from_shape_vec(
            ndarray::IxDyn(&[data.len()]),
            data.to_vec(),
        )?);
        self.inits.push(tensor_to_proto(&name, &t));
        Ok(name)
    }

    /// Normal weights scaled by `gain / sqrt(fan_in)`.
    pub fn weight(
        &mut self,
        what: &str,
        shape: &[usize],
        fan_in: usize,
        gain: f64,
    ) -> Result<String> {
        let scale = gain / (fan_in.max(1) as f64).sqrt();
        let n = shape.iter().product();
        let data = (0..n).map(|_| (self.rng.normal() * scale) as f32).collect();
        self.constant(what, shape, data)
    }

    /// Values uniform in `[lo, hi)`.
    pub fn uniform(&mut self, what: &str, shape: &[usize], lo: f64, hi: f64) -> Result<String> {
        let n = shape.iter().product();
        let data = (0..n).map(|_| self.rng.uniform(lo, hi) as f32).collect();
        self.constant(what, shape, data)
    }

    /// Appends a node with one output and returns that output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<pb::AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        self.op_into(op, inputs, &[&out], attribute);
        out
    }

    /// Appends a node with the given output names.
    pub fn op_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) {
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(pb::NodeProto {
            name,
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute,
            ..Default::default()
        });
    }

    /// Conv from `cin` to `cout` channels, He-initialised for a Relu that follows.
    pub fn conv(&mut self, x: &str, cin: usize, cout: usize, spec: ConvSpec) -> Result<String> {
        let fan_in = cin / spec.group * spec.kernel;
        let w = self.weight(
            "w",
            &[cout, cin / spec.group, spec.kernel],
            fan_in,
            2f64.sqrt(),
        )?;
        let mut inputs = vec![x.to_string(), w];
        if spec.bias {
            inputs.push(self.uniform("b", &[cout], -0.1, 0.1)?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("Conv", &refs, spec.attributes()))
    }

    /// ConvTranspose from `cin` to `cout` channels.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose(
        &mut self,
        x: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        pads: [usize; 2],
        output_padding: usize,
    ) -> Result<String> {
        let w = self.weight(
            "wt",
            &[cin, cout, kernel],
            cin * kernel / stride,
            2f64.sqrt(),
        )?;
        let b = self.uniform("bt", &[cout], -0.1, 0.1)?;
        let mut a = vec![
            attr::ints("kernel_shape", &[kernel as i64]),
            attr::ints("strides", &[stride as i64]),
            attr::ints("pads", &[pads[0] as i64, pads[1] as i64]),
        ];
        if output_padding > 0 {
            a.push(attr::ints("output_padding", &[output_padding as i64]));
        }
        Ok(self.op("ConvTranspose", &[x, &w, &b], a))
    }

    /// Inference-mode BatchNormalization over `c` channels with plausible running statistics.
    pub fn batch_norm(&mut self, x: &str, c: usize) -> Result<String> {
        let gamma = self.uniform("bn_scale", &[c], 0.8, 1.2)?;
        let beta = self.uniform("bn_bias", &[c], -0.1, 0.1)?;
        let mean = self.uniform("bn_mean", &[c], -0.1, 0.1)?;
        let var = self.uniform("bn_var", &[c], 0.8, 1.5)?;
        Ok(self.op(
            "BatchNormalization",
            &[x, &gamma, &beta, &mean, &var],
            vec![attr::float("epsilon", 1e-5)],
        ))
    }

    /// A one-input op without attributes (Relu, Sigmoid, Tanh, ...).
    pub fn unary(&mut self, op: &str, x: &str) -> String {
        self.op(op, &[x], vec![])
    }

    /// A two-input op without attributes (Add, Mul, ...).
    pub fn binary(&mut self, op: &str, a: &str, b: &str) -> String {
        self.op(op, &[a, b], vec![])
    }

    /// MaxPool or AveragePool with kernel, stride and pads.
    pub fn pool(
        &mut self,
        op: &str,
        x: &str,
        kernel: usize,
        stride: usize,
        pads: [usize; 2],
        ceil_mode: bool,
    ) -> String {
        let mut a = vec![
            attr::ints("kernel_shape", &[kernel as i64]),
            attr::ints("strides", &[stride as i64]),
            attr::ints("pads", &[pads[0] as i64, pads[1] as i64]),
        ];
        if ceil_mode {
            a.push(attr::int("ceil_mode", 1));
        }
        self.op(op, &[x], a)
    }

    /// Gemm `x · Wᵀ + b` from `fin` to `fout` features.
    pub fn dense(&mut self, x: &str, fin: usize, fout: usize) -> Result<String> {
        let w = self.weight("fc_w", &[fout, fin], fin, 1.0)?;
        let b = self.uniform("fc_b", &[fout], -0.1, 0.1)?;
        Ok(self.op("Gemm", &[x, &w, &b], vec![attr::int("transB", 1)]))
    }

    /// Flatten to `[N, rest]`.
    pub fn flatten(&mut self, x: &str) -> String {
        self.op("Flatten", &[x], vec![attr::int("axis", 1)])
    }

    /// Transpose with `perm`.
    pub fn transpose(&mut self, x: &str, perm: &[i64]) -> String {
        self.op("Transpose", &[x], vec![attr::ints("perm", perm)])
    }

    /// Concat along `axis`.
    pub fn concat(&mut self, xs: &[&str], axis: i64) -> String {
        self.op("Concat", xs, vec![attr::int("axis", axis)])
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: &str) -> String {
        self.op("Softmax", &[x], vec![attr::int("axis", -1)])
    }

    /// Unsqueeze at `axes`, in the form the opset asks for.
    pub fn unsqueeze(&mut self, x: &str, axes: &[i64]) -> Result<String> {
        if self.opset >= 13 {
            let a = self.ints("axes", axes)?;
            Ok(self.op("Unsqueeze", &[x, &a], vec![]))
        } else {
            Ok(self.op("Unsqueeze", &[x], vec![attr::ints("axes", axes)]))
        }
    }

    /// Squeeze at `axes`, in the form the opset asks for.
    pub fn squeeze(&mut self, x: &str, axes: &[i64]) -> Result<String> {
        if self.opset >= 13 {
            let a = self.ints("axes", axes)?;
            Ok(self.op("Squeeze", &[x, &a], vec![]))
        } else {
            Ok(self.op("Squeeze", &[x], vec![attr::ints("axes", axes)]))
        }
    }

    /// Finishes the graph: each `(tensor, dims)` becomes a graph output named `output` (or
    /// `output_K` when there are several) through an Identity.
    pub fn finish(mut self, outputs: &[(&str, Vec<Dim>)]) -> pb::ModelProto {
        let mut declared = Vec::new();
        for (k, (tensor, dims)) in outputs.iter().enumerate() {
            let name = if outputs.len() == 1 {
                "output".to_string()
            } else {
                format!("output_{k}")
            };
            self.op_into("Identity", &[tensor], &[&name], vec![]);
            declared.push(value_info(&name, DType::Float, dims));
        }
        pb::ModelProto {
            ir_version: ir_version(self.opset),
            producer_name: "conv1d-harness-corpus".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            graph: Some(pb::GraphProto {
                name: self.name,
                node: self.nodes,
                initializer: self.inits,
                input: self.inputs,
                output: declared,
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
