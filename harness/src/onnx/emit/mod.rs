//! Writes a [`ModelDesc`] as an ONNX graph, drawing weights from its seed.
//!
//! Each op is written in the form its opset requires (attributes that became inputs: Clip
//! min/max from 11, Pad pads from 11, Squeeze/Unsqueeze axes from 13, ReduceMean/ReduceMax axes
//! from 18); ops newer than the model's opset (HardSwish 14, Mish 18, Gelu 20) are written as
//! their decomposition. In the NLC layout (Keras/TensorFlow exports) the data stays `[N, L, C]`
//! and every layer that needs `[N, C, L]` is wrapped in Transposes. Negative cases are emitted
//! as described, invalid layer included. Per-layer emission is in `layers`.

use anyhow::{Context as _, Result};
use tract_onnx::pb;

use super::proto::{attr, tensor_to_proto, value_info, Dim};
use crate::model::{Act, Layout, ModelDesc, WeightDist};
use crate::seed::{self, Draw};
use crate::tensor::{DType, Tensor};

mod layers;
mod qoperator;
mod quant;

pub use quant::quantize_value;

/// Name of the single graph input.
pub const INPUT: &str = "input";
/// Name of the (first) graph output.
pub const OUTPUT: &str = "output";
/// Opset used when none is asked for.
pub const DEFAULT_OPSET: i64 = 17;
/// Opsets the generator draws from by default: 11 to the newest at which tract-onnx 0.23.9 has
/// version-specific parsing (GroupNormalization 21; Gelu appears in 20). tract reads any opset
/// but warns above 18. Changing this range changes every generated case.
pub const DEFAULT_OPSETS: (i64, i64) = (11, 21);
/// Opsets the emitter can write every layer in (older forms before 11: Pad's pads as an
/// attribute, no ceil_mode or pool dilations before 10, no Erf before 9, no MaxPool indices
/// before 8, opset 1-6 broadcasting and `is_test` before 7, Reshape's shape as an attribute
/// before 5, Pad's `paddings` and LpPool's float p in 1); `--opset` may ask for any of them.
pub const SUPPORTED_OPSETS: (i64, i64) = (1, 28);

/// Builds the ONNX model of a description. Fails when the description is invalid, unless it
/// is a negative case (then its last layer is the invalid one and is emitted as it is).
pub fn emit(desc: &ModelDesc) -> Result<pb::ModelProto> {
    emit_traced(desc).map(|(model, _)| model)
}

/// Same as [`emit`], and the name of the tensor each top-level layer outputs (in the model's
/// layout), in layer order: where a calibration reads an activation's range.
pub fn emit_traced(desc: &ModelDesc) -> Result<(pb::ModelProto, Vec<String>)> {
    let shapes = desc.prefix_shapes()?;
    if desc.negative.is_none() {
        desc.shapes()?;
    }
    let mut b = Builder::new(desc);
    let (cur, act) = b.layers(&shapes)?;
    // The graph output gets a fixed name through a final Identity, so every model has the same
    // interface whatever its last layer is.
    b.node("Identity", &[&cur.name], OUTPUT, vec![]);
    let dims = Interface::new(desc);
    let out_dims = dims.output(desc, act)?;
    let in_dims = dims.input(desc);
    let mut outputs = vec![value_info(OUTPUT, desc.dtype, &out_dims)];
    outputs.extend(b.indexed_outputs(&dims));
    let mut graph = pb::GraphProto {
        name: "conv1d".into(),
        node: b.nodes,
        initializer: b.inits,
        input: vec![value_info(INPUT, desc.dtype, &in_dims)],
        output: outputs,
        ..Default::default()
    };
    if let Some(w) = desc.quantized_weights {
        qoperator::rewrite(&mut graph, w.operators)?;
    }
    Ok((model_proto(desc.opset, graph), b.layer_outputs))
}

/// The model around `graph`, importing the default domain at `opset`.
fn model_proto(opset: i64, graph: pb::GraphProto) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: ir_version(opset),
        producer_name: "conv1d-harness".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// The dimensions of the graph's inputs and outputs: fixed, or symbolic as the description asks.
struct Interface {
    /// The batch dimension.
    batch: Dim,
    /// Lengths are symbols rather than numbers.
    symbolic_length: bool,
}

impl Interface {
    /// The interface `desc` asks for.
    fn new(desc: &ModelDesc) -> Interface {
        let batch = if desc.symbolic.batch {
            Dim::Symbol("N".into())
        } else {
            Dim::Fixed(desc.batch)
        };
        Interface {
            batch,
            symbolic_length: desc.symbolic.length,
        }
    }

    /// A length of `n`, or the symbol `what` when lengths are symbolic.
    fn length(&self, n: usize, what: &str) -> Dim {
        if self.symbolic_length {
            Dim::Symbol(what.into())
        } else {
            Dim::Fixed(n)
        }
    }

    /// Dimensions of the graph input, in the model's layout.
    fn input(&self, desc: &ModelDesc) -> Vec<Dim> {
        let [_, a, c] = desc.input_shape();
        match desc.layout {
            Layout::Ncl => vec![self.batch.clone(), Dim::Fixed(a), self.length(c, "L")],
            Layout::Nlc => vec![self.batch.clone(), self.length(a, "L"), Dim::Fixed(c)],
        }
    }

    /// Dimensions of the graph output, whose shape after the last layer is `act`. A negative
    /// case's output shape is unknown: three symbols.
    fn output(&self, desc: &ModelDesc, act: Act) -> Result<Vec<Dim>> {
        if desc.negative.is_some() {
            return Ok((0..3).map(|i| Dim::Symbol(format!("d{i}"))).collect());
        }
        let shape = desc.output_shape()?;
        let mut dims = vec![self.batch.clone()];
        match (act, desc.layout) {
            (Act::Flat { features }, _) => dims.push(Dim::Fixed(features)),
            (Act::Seq { channels, length }, Layout::Ncl) => {
                dims.push(Dim::Fixed(channels));
                dims.push(self.length(length, "L_out"));
            }
            (Act::Seq { channels, length }, Layout::Nlc) => {
                dims.push(self.length(length, "L_out"));
                dims.push(Dim::Fixed(channels));
            }
        }
        debug_assert_eq!(dims.len(), shape.len());
        Ok(dims)
    }
}

/// The IR version that goes with an opset (the ONNX versioning table).
pub fn ir_version(opset: i64) -> i64 {
    match opset {
        ..=8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        21..=22 => 10,
        _ => 11,
    }
}

/// A tensor being built and whether it is in `[N, L, C]` order.
#[derive(Debug, Clone)]
struct T {
    name: String,
    nlc: bool,
}

struct Builder<'a> {
    desc: &'a ModelDesc,
    rng: proptest::test_runner::TestRng,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    counter: usize,
    /// Values selected by MaxPool Indices, which become graph outputs: tensor, channels, length.
    extra_outputs: Vec<(String, usize, usize)>,
    /// The scale of each tensor that is a quantized activation (a DequantizeLinear output, or
    /// its transpose), for the biases of the layers that read it.
    activation_scales: std::collections::HashMap<String, f32>,
    /// The output of each top-level layer.
    layer_outputs: Vec<String>,
}

impl<'a> Builder<'a> {
    /// A builder with no nodes yet, drawing weights from the description's weight seed.
    fn new(desc: &'a ModelDesc) -> Builder<'a> {
        Builder {
            desc,
            rng: seed::rng(desc.weight_seed, "weights"),
            nodes: Vec::new(),
            inits: Vec::new(),
            counter: 0,
            extra_outputs: Vec::new(),
            activation_scales: Default::default(),
            layer_outputs: Vec::new(),
        }
    }

    /// Emits every layer on the graph input, `shapes` being the shape after each valid one;
    /// returns the last output and its shape.
    fn layers(&mut self, shapes: &[Act]) -> Result<(T, Act)> {
        let desc = self.desc;
        let mut cur = T {
            name: INPUT.to_string(),
            nlc: desc.layout == Layout::Nlc,
        };
        let mut act = Act::Seq {
            channels: desc.channels,
            length: desc.length,
        };
        for (i, layer) in desc.layers.iter().enumerate() {
            // The invalid last layer of a negative case: its output shape is unknown; `act`
            // stands in.
            let next = shapes.get(i).copied().unwrap_or(act);
            cur = self.layer(layer, cur, act, next)?;
            self.layer_outputs.push(cur.name.clone());
            act = next;
        }
        Ok((cur, act))
    }

    /// Graph outputs `indexed_K` for the values MaxPool Indices select, each through an
    /// Identity.
    fn indexed_outputs(&mut self, dims: &Interface) -> Vec<pb::ValueInfoProto> {
        let mut outputs = Vec::new();
        for (k, (name, channels, length)) in self.extra_outputs.clone().into_iter().enumerate() {
            let out = format!("indexed_{k}");
            self.node("Identity", &[&name], &out, vec![]);
            let dims = [
                dims.batch.clone(),
                Dim::Fixed(channels),
                dims.length(length, &format!("L_idx{k}")),
            ];
            outputs.push(value_info(&out, self.desc.dtype, &dims));
        }
        outputs
    }

    fn fresh(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("{what}_{}", self.counter)
    }

    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) {
        self.node_n(op, inputs, &[output], attribute)
    }

    fn node_n(
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

    /// A new node with one fresh output; returns its name.
    fn op(&mut self, op: &str, inputs: &[&str], attribute: Vec<pb::AttributeProto>) -> String {
        let y = self.fresh("t");
        self.node(op, inputs, &y, attribute);
        y
    }

    /// A float initializer, in the model's element type.
    fn init(&mut self, what: &str, shape: &[usize], data: Vec<f32>) -> Result<String> {
        let name = self.fresh(what);
        let mut tensor = Tensor::f32(shape, data)?;
        if self.desc.dtype != DType::Float {
            tensor = Tensor::from_f64(self.desc.dtype, &tensor.to_f64())
                .context("the model's element type is not a float type")?;
        }
        self.inits.push(tensor_to_proto(&name, &tensor));
        Ok(name)
    }

    fn init_i64(&mut self, what: &str, data: &[i64]) -> String {
        let name = self.fresh(what);
        self.inits.push(tensor_to_proto(
            &name,
            &Tensor::I64(ndarray::Array1::from(data.to_vec()).into_dyn()),
        ));
        name
    }

    /// Weights of a layer with `fan_in` inputs per output.
    fn weights(&mut self, n: usize, fan_in: usize) -> Vec<f32> {
        let scale = 1.0 / (fan_in.max(1) as f64).sqrt();
        (0..n)
            .map(|_| match self.desc.weights {
                WeightDist::Scaled => (self.rng.normal() * scale) as f32,
                WeightDist::SmallInt => self.rng.int(-2, 2) as f32,
            })
            .collect()
    }

    /// Per-channel parameters in `lo..hi` (integers under small-int weights).
    fn params(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        let int = self.desc.weights == WeightDist::SmallInt;
        (0..n)
            .map(|_| {
                if int {
                    self.rng.int(lo.ceil() as i64, hi.floor() as i64) as f32
                } else {
                    self.rng.uniform(lo, hi) as f32
                }
            })
            .collect()
    }

    /// Squeeze or Unsqueeze in the form of the model's opset.
    fn axes_op(&mut self, op: &str, x: &str, axes: &[i64]) -> String {
        if self.desc.opset >= 13 {
            let a = self.init_i64("axes", axes);
            self.op(op, &[x, &a], vec![])
        } else {
            self.op(op, &[x], vec![attr::ints("axes", axes)])
        }
    }

    /// The tensor in `[N, C, L]` order.
    fn ncl(&mut self, t: &T) -> String {
        if t.nlc {
            let y = self.op(
                "Transpose",
                &[&t.name],
                vec![attr::ints("perm", &[0, 2, 1])],
            );
            if let Some(&s) = self.activation_scales.get(&t.name) {
                self.activation_scales.insert(y.clone(), s);
            }
            y
        } else {
            t.name.clone()
        }
    }

    /// A result in `[N, C, L]` order, turned back to the model's layout when it is a sequence.
    fn back(&mut self, name: String, act: Act) -> T {
        if self.desc.layout == Layout::Nlc && matches!(act, Act::Seq { .. }) {
            let y = self.op("Transpose", &[&name], vec![attr::ints("perm", &[0, 2, 1])]);
            T { name: y, nlc: true }
        } else {
            T { name, nlc: false }
        }
    }

    /// The tensor in the model's layout (sequences only).
    fn model_layout(&mut self, t: T, act: Act) -> T {
        let want = self.desc.layout == Layout::Nlc && matches!(act, Act::Seq { .. });
        if t.nlc == want {
            t
        } else {
            let y = self.op(
                "Transpose",
                &[&t.name],
                vec![attr::ints("perm", &[0, 2, 1])],
            );
            T { name: y, nlc: want }
        }
    }
}

#[cfg(test)]
mod tests;
