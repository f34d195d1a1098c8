//! Writes a [`ModelDesc`] as an ONNX graph, drawing weights from its seed.

use anyhow::Result;
use tract_onnx::pb;

use super::proto::{attr, tensor_to_proto, value_info, Dim};
use crate::model::{Act, Conv, Layer, ModelDesc, Padding, Pool, WeightDist};
use crate::seed::{self, Draw};
use crate::tensor::{DType, Tensor};

/// Name of the single graph input.
pub const INPUT: &str = "input";
/// Name of the single graph output.
pub const OUTPUT: &str = "output";
/// Opset used when none is asked for.
pub const DEFAULT_OPSET: i64 = 17;

/// Builds the ONNX model of a description. Fails when the description is invalid.
pub fn emit(desc: &ModelDesc) -> Result<pb::ModelProto> {
    let shapes = desc.shapes()?;
    let mut b = Builder {
        desc,
        rng: seed::rng(desc.weight_seed, "weights"),
        nodes: Vec::new(),
        inits: Vec::new(),
        counter: 0,
    };
    let mut cur = INPUT.to_string();
    let mut act = Act::Seq {
        channels: desc.channels,
        length: desc.length,
    };
    for (layer, &next) in desc.layers.iter().zip(&shapes) {
        cur = b.layer(layer, &cur, act)?;
        act = next;
    }
    // The graph output gets a fixed name through a final Identity, so every model has the same
    // interface whatever its last layer is.
    b.node("Identity", &[&cur], OUTPUT, vec![]);
    let out_dims: Vec<Dim> = desc.output_shape()?.into_iter().map(Dim::Fixed).collect();
    let in_dims: Vec<Dim> = desc.input_shape().into_iter().map(Dim::Fixed).collect();
    let graph = pb::GraphProto {
        name: "conv1d".into(),
        node: b.nodes,
        initializer: b.inits,
        input: vec![value_info(INPUT, DType::Float, &in_dims)],
        output: vec![value_info(OUTPUT, DType::Float, &out_dims)],
        ..Default::default()
    };
    Ok(pb::ModelProto {
        ir_version: ir_version(desc.opset),
        producer_name: "conv1d-harness".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: desc.opset,
        }],
        graph: Some(graph),
        ..Default::default()
    })
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

struct Builder<'a> {
    desc: &'a ModelDesc,
    rng: proptest::test_runner::TestRng,
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    counter: usize,
}

impl Builder<'_> {
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
        let name = format!("{}_{}", op.to_lowercase(), self.nodes.len());
        self.nodes.push(pb::NodeProto {
            name,
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        });
    }

    fn init(&mut self, what: &str, shape: &[usize], data: Vec<f32>) -> Result<String> {
        let name = self.fresh(what);
        self.inits
            .push(tensor_to_proto(&name, &Tensor::f32(shape, data)?));
        Ok(name)
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

    fn layer(&mut self, layer: &Layer, x: &str, act: Act) -> Result<String> {
        let y = self.fresh("t");
        match layer {
            Layer::Conv(c) => self.conv(c, x, &y, act)?,
            Layer::MaxPool(p) => self.pool("MaxPool", p, x, &y),
            Layer::AveragePool(p) => self.pool("AveragePool", p, x, &y),
            Layer::BatchNorm { epsilon } => {
                let Act::Seq { channels, .. } = act else {
                    unreachable!("checked by shapes()")
                };
                let int = self.desc.weights == WeightDist::SmallInt;
                let mut draw = |lo: f64, hi: f64| -> Vec<f32> {
                    (0..channels)
                        .map(|_| {
                            if int {
                                self.rng.int(lo as i64, hi as i64) as f32
                            } else {
                                self.rng.uniform(lo, hi) as f32
                            }
                        })
                        .collect()
                };
                let gamma = draw(0.5, 1.5);
                let beta = draw(-0.5, 0.5);
                let mean = draw(-0.5, 0.5);
                let var = draw(0.5, 2.0);
                let names = [
                    self.init("bn_scale", &[channels], gamma)?,
                    self.init("bn_bias", &[channels], beta)?,
                    self.init("bn_mean", &[channels], mean)?,
                    self.init("bn_var", &[channels], var)?,
                ];
                let inputs: Vec<&str> = std::iter::once(x)
                    .chain(names.iter().map(String::as_str))
                    .collect();
                self.node(
                    "BatchNormalization",
                    &inputs,
                    &y,
                    vec![attr::float("epsilon", *epsilon)],
                );
            }
            Layer::Relu => self.node("Relu", &[x], &y, vec![]),
            Layer::LeakyRelu { alpha } => {
                self.node("LeakyRelu", &[x], &y, vec![attr::float("alpha", *alpha)])
            }
            Layer::Sigmoid => self.node("Sigmoid", &[x], &y, vec![]),
            Layer::Tanh => self.node("Tanh", &[x], &y, vec![]),
            Layer::Clip { min, max } => {
                if self.desc.opset >= 11 {
                    let lo = self.init("clip_min", &[], vec![*min])?;
                    let hi = self.init("clip_max", &[], vec![*max])?;
                    self.node("Clip", &[x, &lo, &hi], &y, vec![]);
                } else {
                    self.node(
                        "Clip",
                        &[x],
                        &y,
                        vec![attr::float("min", *min), attr::float("max", *max)],
                    );
                }
            }
            Layer::Residual { body } => {
                let mut cur = x.to_string();
                for l in body {
                    // A valid residual body keeps the shape, so `act` holds throughout.
                    cur = self.layer(l, &cur, act)?;
                }
                self.node("Add", &[x, &cur], &y, vec![]);
            }
            Layer::GlobalAveragePool => self.node("GlobalAveragePool", &[x], &y, vec![]),
            Layer::Dense { out_features } => {
                let mut input = x.to_string();
                if let Act::Seq { .. } = act {
                    input = self.fresh("flat");
                    self.node("Flatten", &[x], &input, vec![attr::int("axis", 1)]);
                }
                let fan_in = act.elements();
                let w = self.weights(out_features * fan_in, fan_in);
                let w = self.init("gemm_w", &[*out_features, fan_in], w)?;
                let b = self.weights(*out_features, fan_in);
                let b = self.init("gemm_b", &[*out_features], b)?;
                self.node("Gemm", &[&input, &w, &b], &y, vec![attr::int("transB", 1)]);
            }
        }
        Ok(y)
    }

    fn conv(&mut self, c: &Conv, x: &str, y: &str, act: Act) -> Result<()> {
        let Act::Seq { channels, .. } = act else {
            unreachable!("checked by shapes()")
        };
        let per_group = channels / c.group;
        let fan_in = per_group * c.kernel;
        let w = self.weights(c.out_channels * fan_in, fan_in);
        let w = self.init("conv_w", &[c.out_channels, per_group, c.kernel], w)?;
        let mut inputs = vec![x.to_string(), w];
        if c.bias {
            let b = self.weights(c.out_channels, fan_in);
            inputs.push(self.init("conv_b", &[c.out_channels], b)?);
        }
        let mut attrs = vec![
            attr::ints("kernel_shape", &[c.kernel as i64]),
            attr::ints("strides", &[c.stride as i64]),
            attr::ints("dilations", &[c.dilation as i64]),
            attr::int("group", c.group as i64),
        ];
        attrs.extend(padding_attrs(c.padding));
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.node("Conv", &inputs, y, attrs);
        Ok(())
    }

    fn pool(&mut self, op: &str, p: &Pool, x: &str, y: &str) {
        let mut attrs = vec![
            attr::ints("kernel_shape", &[p.kernel as i64]),
            attr::ints("strides", &[p.stride as i64]),
        ];
        if p.ceil_mode {
            attrs.push(attr::int("ceil_mode", 1));
        }
        if op == "MaxPool" && p.dilation != 1 {
            attrs.push(attr::ints("dilations", &[p.dilation as i64]));
        }
        if op == "AveragePool" {
            attrs.push(attr::int(
                "count_include_pad",
                i64::from(p.count_include_pad),
            ));
        }
        attrs.extend(padding_attrs(p.padding));
        self.node(op, &[x], y, attrs);
    }
}

fn padding_attrs(p: Padding) -> Vec<pb::AttributeProto> {
    match p {
        Padding::Explicit { begin, end } => vec![attr::ints("pads", &[begin as i64, end as i64])],
        other => vec![attr::string("auto_pad", other.auto_pad())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};
    use crate::onnx::proto::encode_model;

    #[test]
    fn emission_is_byte_for_byte_reproducible() {
        for i in 0..50 {
            let case = generate(9, i, &GenConfig::default());
            assert_eq!(
                encode_model(&emit(&case.model).unwrap()),
                encode_model(&emit(&case.model).unwrap())
            );
        }
    }

    #[test]
    fn clip_follows_the_opset_form() {
        let mut desc = generate(0, 0, &GenConfig::default()).model;
        desc.layers = vec![crate::model::Layer::Clip { min: 0.0, max: 6.0 }];
        for (opset, inputs, attrs) in [(17, 3, 0), (10, 1, 2)] {
            desc.opset = opset;
            let m = emit(&desc).unwrap();
            let clip = &m.graph.as_ref().unwrap().node[0];
            assert_eq!(
                (clip.input.len(), clip.attribute.len()),
                (inputs, attrs),
                "opset {opset}"
            );
        }
    }
}
