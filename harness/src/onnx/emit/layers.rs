//! Emission of each layer kind.

use anyhow::Result;
use tract_onnx::pb;

use super::{Builder, T};
use crate::model::{Act, Conv, ConvTranspose, Layer, LpPool, Merge, Negative, PadMode};
use crate::model::{Padding, Pool};
use crate::onnx::proto::attr;

fn seq(act: Act) -> (usize, usize) {
    match act {
        Act::Seq { channels, length } => (channels, length),
        Act::Flat { features } => (features, 1),
    }
}

impl Builder<'_> {
    /// Emits `layer` on `x` (shape `act`, giving `next`); returns its output.
    pub(super) fn layer(&mut self, layer: &Layer, x: T, act: Act, next: Act) -> Result<T> {
        if layer.is_unary_elementwise() || matches!(layer, Layer::PRelu { per_channel: false }) {
            let y = self.unary(layer, &x.name)?;
            return Ok(T {
                name: y,
                nlc: x.nlc,
            });
        }
        match layer {
            Layer::QuantizeDequantize(q) => {
                let y = self.quantize_dequantize(q, &x.name)?;
                return Ok(T {
                    name: y,
                    nlc: x.nlc,
                });
            }
            Layer::Dense {
                out_features,
                reshape,
            } => return self.dense(*out_features, *reshape, &x, act),
            Layer::Residual { body } => return self.residual(body, x, act),
            Layer::Parallel { merge, branches } => return self.parallel(*merge, branches, x, act),
            _ => {}
        }
        // Everything else works on `[N, C, L]`.
        let xn = self.ncl(&x);
        let y = match layer {
            Layer::Conv(c) => self.conv(c, &xn, act)?,
            Layer::ConvTranspose(c) => self.conv_transpose(c, &xn, act)?,
            Layer::MaxPool(p) => self.pool("MaxPool", p, &xn, act, next),
            Layer::AveragePool(p) => self.pool("AveragePool", p, &xn, act, next),
            Layer::LpPool(p) => self.lp_pool(p, &xn),
            Layer::BatchNorm { .. } | Layer::InstanceNorm { .. } | Layer::LayerNorm { .. } => {
                self.normalization(layer, &xn, act)?
            }
            Layer::PRelu { .. } => {
                let (c, _) = seq(act);
                let slope = self.params(c, -0.5, 0.5);
                // Before opset 7 a slope of C elements is per channel; from 7 it broadcasts
                // by numpy rules, so it is [C, 1].
                let shape: &[usize] = if self.desc.opset < 7 { &[c] } else { &[c, 1] };
                let s = self.init("prelu_slope", shape, slope)?;
                self.op("PRelu", &[&xn, &s], vec![])
            }
            Layer::Pad { mode, begin, end } => self.pad(*mode, *begin, *end, &xn)?,
            Layer::SqueezeExcite { reduced } => self.squeeze_excite(*reduced, &xn, act)?,
            Layer::GlobalAveragePool => self.op("GlobalAveragePool", &[&xn], vec![]),
            Layer::GlobalMaxPool => self.op("GlobalMaxPool", &[&xn], vec![]),
            Layer::ReduceLength { max, keepdims } => self.reduce_length(*max, *keepdims, &xn),
            Layer::MatMul { out_features } => self.matmul(*out_features, &xn, act)?,
            Layer::Softmax { axis } => {
                // Negative axes exist from opset 11.
                let rank = if matches!(act, Act::Seq { .. }) { 3 } else { 2 };
                let axis = if *axis < 0 && self.desc.opset < 11 {
                    axis + rank
                } else {
                    *axis
                };
                self.op("Softmax", &[&xn], vec![attr::int("axis", axis)])
            }
            other => unreachable!("{other:?} is emitted above"),
        };
        Ok(self.back(y, next))
    }

    /// A Gemm head on `x` (shape `act`), flattening a sequence first.
    fn dense(&mut self, out_features: usize, reshape: bool, x: &T, act: Act) -> Result<T> {
        // Flattens whatever the layout is, as Keras does.
        let mut input = x.name.clone();
        if let Act::Seq { .. } = act {
            input = if reshape && self.desc.opset < 5 {
                self.op("Reshape", &[&x.name], vec![attr::ints("shape", &[0, -1])])
            } else if reshape {
                let shape = self.init_i64("shape", &[0, -1]);
                self.op("Reshape", &[&x.name, &shape], vec![])
            } else {
                self.op("Flatten", &[&x.name], vec![attr::int("axis", 1)])
            };
        }
        let fan_in = act.elements();
        let w = self.weights(out_features * fan_in, fan_in);
        let (w, scales) = self.weight("gemm_w", &[out_features, fan_in], w, 0)?;
        let b = self.weights(out_features, fan_in);
        // The flattened input is still the quantized activation (Flatten and Reshape keep it).
        if let Some(&s) = self.activation_scales.get(&x.name) {
            self.activation_scales.insert(input.clone(), s);
        }
        let b = self.bias("gemm_b", b, &input, scales.as_deref())?;
        let mut attrs = vec![attr::int("transB", 1)];
        if self.desc.opset < 7 {
            // C is [out_features], not the output's [N, out_features].
            attrs.push(attr::int("broadcast", 1));
        }
        let y = self.op("Gemm", &[&input, &w, &b], attrs);
        Ok(T {
            name: y,
            nlc: false,
        })
    }

    /// `x + body(x)`, added in the model's layout.
    fn residual(&mut self, body: &[Layer], x: T, act: Act) -> Result<T> {
        let mut cur = x.clone();
        for l in body {
            // A valid residual body keeps the shape, so `act` holds throughout.
            cur = self.layer(l, cur, act, act)?;
        }
        let cur = self.model_layout(cur, act);
        let x = self.model_layout(x, act);
        let y = self.op("Add", &[&x.name, &cur.name], vec![]);
        Ok(T {
            name: y,
            nlc: x.nlc,
        })
    }

    /// Each branch on `x`, the outputs merged in the model's layout.
    fn parallel(&mut self, merge: Merge, branches: &[Vec<Layer>], x: T, act: Act) -> Result<T> {
        let mut outs = Vec::new();
        for branch in branches {
            let (mut cur, mut a) = (x.clone(), act);
            let shapes = self.branch_shapes(branch, act)?;
            for (l, n) in branch.iter().zip(shapes) {
                cur = self.layer(l, cur, a, n)?;
                a = n;
            }
            outs.push(self.model_layout(cur, a).name);
        }
        let nlc = self.desc.layout == crate::model::Layout::Nlc;
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        let y = match merge {
            Merge::Add | Merge::Mul => {
                let op = if merge == Merge::Add { "Add" } else { "Mul" };
                let mut acc = refs[0].to_string();
                for r in &refs[1..] {
                    acc = self.op(op, &[&acc, r], vec![]);
                }
                acc
            }
            Merge::Concat => self.op(
                "Concat",
                &refs,
                vec![attr::int("axis", if nlc { 2 } else { 1 })],
            ),
        };
        Ok(T { name: y, nlc })
    }

    /// Shapes after each layer of a parallel branch.
    fn branch_shapes(&self, branch: &[Layer], act: Act) -> Result<Vec<Act>> {
        let mut probe = self.desc.clone();
        probe.layers = branch.to_vec();
        probe.negative = None;
        if let Act::Seq { channels, length } = act {
            probe.channels = channels;
            probe.length = length;
        }
        Ok(probe.shapes()?)
    }

    /// Element-wise layers, in the form of the model's opset.
    fn unary(&mut self, layer: &Layer, x: &str) -> Result<String> {
        let opset = self.desc.opset;
        Ok(match layer {
            Layer::Relu => self.op("Relu", &[x], vec![]),
            Layer::LeakyRelu { alpha } => {
                self.op("LeakyRelu", &[x], vec![attr::float("alpha", *alpha)])
            }
            Layer::PRelu { .. } => {
                let slope = self.params(1, -0.5, 0.5);
                let s = self.init("prelu_slope", &[1], slope)?;
                self.op("PRelu", &[x, &s], vec![])
            }
            Layer::Sigmoid => self.op("Sigmoid", &[x], vec![]),
            Layer::Tanh => self.op("Tanh", &[x], vec![]),
            Layer::Elu { alpha } => self.op("Elu", &[x], vec![attr::float("alpha", *alpha)]),
            Layer::Selu => self.op("Selu", &[x], vec![]),
            Layer::HardSigmoid { alpha, beta } => self.op(
                "HardSigmoid",
                &[x],
                vec![attr::float("alpha", *alpha), attr::float("beta", *beta)],
            ),
            Layer::HardSwish if opset >= 14 => self.op("HardSwish", &[x], vec![]),
            Layer::HardSwish => {
                let h = self.op(
                    "HardSigmoid",
                    &[x],
                    vec![attr::float("alpha", 1.0 / 6.0), attr::float("beta", 0.5)],
                );
                self.op("Mul", &[x, &h], vec![])
            }
            Layer::Gelu if opset >= 20 => self.op("Gelu", &[x], vec![]),
            Layer::Gelu => {
                // 0.5 x (1 + erf(x / sqrt 2)), as exporters write it before opset 20.
                let r = self.init("gelu_rsqrt2", &[], vec![std::f32::consts::FRAC_1_SQRT_2])?;
                let one = self.init("gelu_one", &[], vec![1.0])?;
                let half = self.init("gelu_half", &[], vec![0.5])?;
                let s = self.op("Mul", &[x, &r], vec![]);
                let e = self.op("Erf", &[&s], vec![]);
                let p = self.op("Add", &[&e, &one], vec![]);
                let m = self.op("Mul", &[x, &p], vec![]);
                self.op("Mul", &[&m, &half], vec![])
            }
            Layer::Softplus => self.op("Softplus", &[x], vec![]),
            Layer::Mish if opset >= 18 => self.op("Mish", &[x], vec![]),
            Layer::Mish => {
                let sp = self.op("Softplus", &[x], vec![]);
                let t = self.op("Tanh", &[&sp], vec![]);
                self.op("Mul", &[x, &t], vec![])
            }
            Layer::Clip { min, max } => {
                if opset >= 11 {
                    let lo = self.init("clip_min", &[], vec![*min])?;
                    let hi = self.init("clip_max", &[], vec![*max])?;
                    self.op("Clip", &[x, &lo, &hi], vec![])
                } else {
                    self.op(
                        "Clip",
                        &[x],
                        vec![attr::float("min", *min), attr::float("max", *max)],
                    )
                }
            }
            other => unreachable!("{other:?} is not element-wise"),
        })
    }

    fn conv(&mut self, c: &Conv, x: &str, act: Act) -> Result<String> {
        let (channels, _) = seq(act);
        let mut per_group = (channels / c.group).max(1);
        if self.desc.negative == Some(Negative::WrongWeightShape) {
            per_group += 1;
        }
        let fan_in = per_group * c.kernel;
        let w = self.weights(c.out_channels * fan_in, fan_in);
        let (w, scales) = self.weight("conv_w", &[c.out_channels, per_group, c.kernel], w, 0)?;
        let mut inputs = vec![x.to_string(), w];
        if c.bias {
            let b = self.weights(c.out_channels, fan_in);
            inputs.push(self.bias("conv_b", b, x, scales.as_deref())?);
        }
        let mut attrs = vec![
            attr::ints("kernel_shape", &[c.kernel as i64]),
            attr::ints("strides", &[c.stride as i64]),
            attr::ints("dilations", &[c.dilation as i64]),
            attr::int("group", c.group as i64),
        ];
        attrs.extend(padding_attrs(c.padding, 1));
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("Conv", &inputs, attrs))
    }

    fn conv_transpose(&mut self, c: &ConvTranspose, x: &str, act: Act) -> Result<String> {
        let (channels, _) = seq(act);
        let per_group = c.out_channels / c.group;
        let fan_in = (channels / c.group).max(1) * c.kernel;
        let w = self.weights(channels * per_group * c.kernel, fan_in);
        // The output channels are on axis 1 of a ConvTranspose weight `[Cin, Cout/group, K]`,
        // and output channel `o` uses index `o mod Cout/group` of it.
        let (w, scales) = self.weight("convt_w", &[channels, per_group, c.kernel], w, 1)?;
        let scales: Option<Vec<f32>> =
            scales.map(|s| (0..c.out_channels).map(|o| s[o % per_group]).collect());
        let mut inputs = vec![x.to_string(), w];
        if c.bias {
            let b = self.weights(c.out_channels, fan_in);
            inputs.push(self.bias("convt_b", b, x, scales.as_deref())?);
        }
        let mut attrs = vec![
            attr::ints("kernel_shape", &[c.kernel as i64]),
            attr::ints("strides", &[c.stride as i64]),
            attr::ints("dilations", &[c.dilation as i64]),
            attr::int("group", c.group as i64),
        ];
        if c.output_padding > 0 {
            attrs.push(attr::ints("output_padding", &[c.output_padding as i64]));
        }
        match c.output_shape {
            // The spec derives the pads from output_shape; none are written.
            Some(len) => attrs.push(attr::ints("output_shape", &[len as i64])),
            None => attrs.extend(padding_attrs(c.padding, 1)),
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("ConvTranspose", &inputs, attrs))
    }

    fn pool(&mut self, op: &str, p: &Pool, x: &str, act: Act, next: Act) -> String {
        // PyTorch's export of a 1D pool: Unsqueeze to [N, C, 1, L], a 2D pool, Squeeze.
        let two = |v: i64, unit: i64| {
            if p.unsqueeze_2d {
                vec![unit, v]
            } else {
                vec![v]
            }
        };
        let mut attrs = vec![
            attr::ints("kernel_shape", &two(p.kernel as i64, 1)),
            attr::ints("strides", &two(p.stride as i64, 1)),
        ];
        if p.ceil_mode {
            attrs.push(attr::int("ceil_mode", 1));
        }
        if op == "MaxPool" && p.dilation != 1 {
            attrs.push(attr::ints("dilations", &two(p.dilation as i64, 1)));
        }
        if op == "AveragePool" && self.desc.opset >= 7 {
            attrs.push(attr::int(
                "count_include_pad",
                i64::from(p.count_include_pad),
            ));
        }
        let rank = if p.unsqueeze_2d { 2 } else { 1 };
        attrs.extend(padding_attrs(p.padding, rank));
        let input = if p.unsqueeze_2d {
            self.axes_op("Unsqueeze", x, &[2])
        } else {
            x.to_string()
        };
        let y = self.fresh("t");
        let mut idx = None;
        if p.indices && op == "MaxPool" {
            let i = self.fresh("idx");
            self.node_n(op, &[&input], &[&y, &i], attrs);
            idx = Some(i);
        } else {
            self.node(op, &[&input], &y, attrs);
        }
        let squeeze = |b: &mut Self, t: String| {
            if p.unsqueeze_2d {
                b.axes_op("Squeeze", &t, &[2])
            } else {
                t
            }
        };
        if let Some(i) = idx {
            // The spec leaves ties between maxima open, so the indices are checked through the
            // values they select: Gather from the flattened input (indices count over N, C and
            // L), which must equal the pooled values whichever tied element was picked.
            let flat_shape = self.init_i64("shape", &[-1]);
            let flat = self.op("Reshape", &[x, &flat_shape], vec![]);
            let picked = self.op("Gather", &[&flat, &i], vec![attr::int("axis", 0)]);
            let picked = squeeze(self, picked);
            let ((c, _), (_, l)) = (seq(act), seq(next));
            self.extra_outputs.push((picked, c, l));
        }
        squeeze(self, y)
    }

    fn lp_pool(&mut self, p: &LpPool, x: &str) -> String {
        let mut attrs = vec![
            attr::ints("kernel_shape", &[p.kernel as i64]),
            attr::ints("strides", &[p.stride as i64]),
            // p is a float in opset 1.
            if self.desc.opset < 2 {
                attr::float("p", f32::from(p.p))
            } else {
                attr::int("p", i64::from(p.p))
            },
        ];
        attrs.extend(padding_attrs(p.padding, 1));
        self.op("LpPool", &[x], attrs)
    }

    /// BatchNormalization, InstanceNormalization or LayerNormalization on `x` (`[N, C, L]`).
    fn normalization(&mut self, layer: &Layer, x: &str, act: Act) -> Result<String> {
        let (c, l) = seq(act);
        Ok(match layer {
            Layer::BatchNorm { epsilon } => {
                let gamma = self.params(c, 0.5, 1.5);
                let beta = self.params(c, -0.5, 0.5);
                let mean = self.params(c, -0.5, 0.5);
                let var = self.params(c, 0.5, 2.0);
                let names = [
                    self.init("bn_scale", &[c], gamma)?,
                    self.init("bn_bias", &[c], beta)?,
                    self.init("bn_mean", &[c], mean)?,
                    self.init("bn_var", &[c], var)?,
                ];
                let inputs: Vec<&str> = std::iter::once(x)
                    .chain(names.iter().map(String::as_str))
                    .collect();
                let mut attrs = vec![attr::float("epsilon", *epsilon)];
                if self.desc.opset < 7 {
                    // Inference mode is asked for before opset 7; the default is training.
                    attrs.push(attr::int("is_test", 1));
                }
                self.op("BatchNormalization", &inputs, attrs)
            }
            Layer::InstanceNorm { epsilon } => {
                let scale = self.params(c, 0.5, 1.5);
                let bias = self.params(c, -0.5, 0.5);
                let s = self.init("in_scale", &[c], scale)?;
                let b = self.init("in_bias", &[c], bias)?;
                self.op(
                    "InstanceNormalization",
                    &[x, &s, &b],
                    vec![attr::float("epsilon", *epsilon)],
                )
            }
            Layer::LayerNorm { axis, epsilon } => {
                let shape: Vec<usize> = if *axis == 1 { vec![c, l] } else { vec![l] };
                let n = shape.iter().product();
                let scale = self.params(n, 0.5, 1.5);
                let bias = self.params(n, -0.5, 0.5);
                let s = self.init("ln_scale", &shape, scale)?;
                let b = self.init("ln_bias", &shape, bias)?;
                self.op(
                    "LayerNormalization",
                    &[x, &s, &b],
                    vec![attr::int("axis", *axis), attr::float("epsilon", *epsilon)],
                )
            }
            other => unreachable!("{other:?} is not a normalization"),
        })
    }

    /// Pad along the length of `x` (`[N, C, L]`): pads and value are attributes before opset
    /// 11, inputs from 11.
    fn pad(&mut self, mode: PadMode, begin: usize, end: usize, x: &str) -> Result<String> {
        let pads = [0, 0, begin as i64, 0, 0, end as i64];
        if self.desc.opset < 11 {
            let name = if self.desc.opset < 2 {
                "paddings"
            } else {
                "pads"
            };
            let mut attrs = vec![attr::string("mode", mode.name()), attr::ints(name, &pads)];
            if mode == PadMode::Constant {
                attrs.push(attr::float("value", 0.5));
            }
            return Ok(self.op("Pad", &[x], attrs));
        }
        let pads = self.init_i64("pads", &pads);
        let mut inputs = vec![x.to_string(), pads];
        if mode == PadMode::Constant {
            inputs.push(self.init("pad_value", &[], vec![0.5])?);
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self.op("Pad", &refs, vec![attr::string("mode", mode.name())]))
    }

    /// Squeeze-and-excitation on `x` (`[N, C, L]`): a global average, two 1x1 convs through a
    /// bottleneck of `reduced` channels, and a sigmoid gate multiplied back onto `x`.
    fn squeeze_excite(&mut self, reduced: usize, x: &str, act: Act) -> Result<String> {
        let (c, _) = seq(act);
        let g = self.op("GlobalAveragePool", &[x], vec![]);
        let squeeze = Conv {
            out_channels: reduced,
            kernel: 1,
            stride: 1,
            dilation: 1,
            padding: Padding::Valid,
            group: 1,
            bias: true,
        };
        let gs = Act::Seq {
            channels: c,
            length: 1,
        };
        let h = self.conv(&squeeze, &g, gs)?;
        let h = self.op("Relu", &[&h], vec![]);
        let excite = Conv {
            out_channels: c,
            ..squeeze
        };
        let e = self.conv(
            &excite,
            &h,
            Act::Seq {
                channels: reduced,
                length: 1,
            },
        )?;
        let s = self.op("Sigmoid", &[&e], vec![]);
        Ok(self.op("Mul", &[x, &s], vec![]))
    }

    /// ReduceMax or ReduceMean over the length, in the form of the model's opset.
    fn reduce_length(&mut self, max: bool, keepdims: bool, x: &str) -> String {
        let op = if max { "ReduceMax" } else { "ReduceMean" };
        let keep = attr::int("keepdims", i64::from(keepdims));
        if self.desc.opset >= 18 {
            let axes = self.init_i64("axes", &[2]);
            self.op(op, &[x, &axes], vec![keep])
        } else {
            self.op(op, &[x], vec![attr::ints("axes", &[2]), keep])
        }
    }

    /// MatMul by an `[K, out_features]` weight, K being the last axis of `x`.
    fn matmul(&mut self, out_features: usize, x: &str, act: Act) -> Result<String> {
        let (_, l) = seq(act);
        let k = match act {
            Act::Seq { .. } => l,
            Act::Flat { features } => features,
        };
        let w = self.weights(k * out_features, k);
        let (w, _) = self.weight("matmul_w", &[k, out_features], w, 1)?;
        Ok(self.op("MatMul", &[x, &w], vec![]))
    }
}

/// `pads` or `auto_pad`; with `rank` 2 the first (unit) axis gets no padding.
fn padding_attrs(p: Padding, rank: usize) -> Vec<pb::AttributeProto> {
    match p {
        Padding::Explicit { begin, end } if rank == 2 => {
            vec![attr::ints("pads", &[0, begin as i64, 0, end as i64])]
        }
        Padding::Explicit { begin, end } => vec![attr::ints("pads", &[begin as i64, end as i64])],
        other => vec![attr::string("auto_pad", other.auto_pad())],
    }
}
