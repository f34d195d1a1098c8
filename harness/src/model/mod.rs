//! Typed description of a 1D CNN: layers, their attributes, and shape inference.
//!
//! A [`ModelDesc`] is what the generator produces and what reduction shrinks. It is plain data
//! (serde), independent of ONNX: [`crate::onnx::emit`] turns it into a graph. [`ModelDesc::shapes`]
//! computes every activation shape and refuses configurations that are invalid by the ONNX
//! spec, with a reason.

use serde::{Deserialize, Serialize};

mod coverage;

/// A whole model: input geometry, the layer stack and how weights are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDesc {
    /// Batch size N of the input `[N, C, L]`.
    pub batch: usize,
    /// Input channels C.
    pub channels: usize,
    /// Input length L.
    pub length: usize,
    /// Layers applied in order.
    pub layers: Vec<Layer>,
    /// ONNX opset version of the emitted model.
    pub opset: i64,
    /// Seed from which every weight is drawn.
    pub weight_seed: u64,
    /// Distribution of weights.
    pub weights: WeightDist,
}

/// How weights are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WeightDist {
    /// Normal, scaled by 1/sqrt(fan-in) so activations stay near unit scale.
    Scaled,
    /// Integers in -2..=2: every product and short sum is exact in f32.
    SmallInt,
}

/// Padding of a convolution or pooling layer along the length axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// `auto_pad=NOTSET` with explicit `pads=[begin, end]`.
    Explicit {
        /// Padding before the first element.
        begin: usize,
        /// Padding after the last element.
        end: usize,
    },
    /// `auto_pad=VALID`: no padding.
    Valid,
    /// `auto_pad=SAME_UPPER`: output length ceil(L / stride), extra pad at the end.
    SameUpper,
    /// `auto_pad=SAME_LOWER`: output length ceil(L / stride), extra pad at the beginning.
    SameLower,
}

impl Padding {
    /// The `auto_pad` attribute value.
    pub fn auto_pad(&self) -> &'static str {
        match self {
            Padding::Explicit { .. } => "NOTSET",
            Padding::Valid => "VALID",
            Padding::SameUpper => "SAME_UPPER",
            Padding::SameLower => "SAME_LOWER",
        }
    }
}

/// A Conv layer (`[N, Cin, L]` to `[N, out_channels, L']`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel length.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding.
    pub padding: Padding,
    /// Number of groups; divides input and output channels.
    pub group: usize,
    /// Whether the optional bias input is present.
    pub bias: bool,
}

/// A MaxPool or AveragePool layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Window length.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation (MaxPool only; 1 for AveragePool).
    pub dilation: usize,
    /// Padding.
    pub padding: Padding,
    /// Output length rounds up instead of down.
    pub ceil_mode: bool,
    /// AveragePool divides by the full window including padding (ignored by MaxPool).
    pub count_include_pad: bool,
}

/// One layer of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Layer {
    /// Convolution.
    Conv(Conv),
    /// Max pooling.
    MaxPool(Pool),
    /// Average pooling.
    AveragePool(Pool),
    /// BatchNormalization in inference mode.
    BatchNorm {
        /// Epsilon added to the variance.
        epsilon: f32,
    },
    /// Relu.
    Relu,
    /// LeakyRelu.
    LeakyRelu {
        /// Negative slope.
        alpha: f32,
    },
    /// Sigmoid.
    Sigmoid,
    /// Tanh.
    Tanh,
    /// Clip to `[min, max]`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// Residual block: `x + body(x)`; the body must keep the shape.
    Residual {
        /// Layers of the residual branch.
        body: Vec<Layer>,
    },
    /// GlobalAveragePool: `[N, C, L]` to `[N, C, 1]`.
    GlobalAveragePool,
    /// Flatten to `[N, C*L]` (if not flat yet) then Gemm with `out_features` outputs and bias.
    Dense {
        /// Output features.
        out_features: usize,
    },
}

impl Layer {
    /// The ONNX operators this layer emits.
    pub fn ops(&self) -> Vec<&'static str> {
        match self {
            Layer::Conv(_) => vec!["Conv"],
            Layer::MaxPool(_) => vec!["MaxPool"],
            Layer::AveragePool(_) => vec!["AveragePool"],
            Layer::BatchNorm { .. } => vec!["BatchNormalization"],
            Layer::Relu => vec!["Relu"],
            Layer::LeakyRelu { .. } => vec!["LeakyRelu"],
            Layer::Sigmoid => vec!["Sigmoid"],
            Layer::Tanh => vec!["Tanh"],
            Layer::Clip { .. } => vec!["Clip"],
            Layer::Residual { body } => {
                let mut v: Vec<_> = body.iter().flat_map(Layer::ops).collect();
                v.push("Add");
                v
            }
            Layer::GlobalAveragePool => vec!["GlobalAveragePool"],
            Layer::Dense { .. } => vec!["Flatten", "Gemm"],
        }
    }
}

/// Shape of an activation, batch excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Act {
    /// A sequence `[N, channels, length]`.
    Seq {
        /// Channels.
        channels: usize,
        /// Length.
        length: usize,
    },
    /// Features `[N, features]` after a Dense head.
    Flat {
        /// Features.
        features: usize,
    },
}

impl Act {
    /// Elements per batch item.
    pub fn elements(&self) -> usize {
        match *self {
            Act::Seq { channels, length } => channels * length,
            Act::Flat { features } => features,
        }
    }
}

/// Why a description is not a valid model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer {layer}: {reason}")]
pub struct Invalid {
    /// Index of the offending layer (in pre-order over residual bodies).
    pub layer: usize,
    /// What is wrong.
    pub reason: String,
}

/// Largest activation (elements per batch item) a valid description may produce.
pub const MAX_ACTIVATION: usize = 1 << 22;

/// Output length and begin/end pads of a conv or pool along one axis, per the ONNX spec.
/// `ceil_mode` applies to pools only. Returns `None` when no output element exists.
pub fn output_length(
    length: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    ceil_mode: bool,
) -> Option<(usize, usize, usize)> {
    let field = dilation * (kernel - 1) + 1;
    let (begin, end) = match padding {
        Padding::Explicit { begin, end } => (begin, end),
        Padding::Valid => (0, 0),
        Padding::SameUpper | Padding::SameLower => {
            let out = length.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + field).saturating_sub(length);
            let small = total / 2;
            if padding == Padding::SameUpper {
                (small, total - small)
            } else {
                (total - small, small)
            }
        }
    };
    // The spec's auto_pad formulas do not depend on ceil_mode; it applies to explicit pads only.
    let ceil_mode = ceil_mode && matches!(padding, Padding::Explicit { .. });
    let padded = length + begin + end;
    if padded < field {
        return None;
    }
    let span = padded - field;
    let mut out = if ceil_mode {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    // Under ceil_mode the last window must start inside the input or its left padding.
    if ceil_mode && (out - 1) * stride >= length + begin {
        out -= 1;
    }
    (out >= 1).then_some((out, begin, end))
}

impl ModelDesc {
    /// Input shape `[N, C, L]`.
    pub fn input_shape(&self) -> [usize; 3] {
        [self.batch, self.channels, self.length]
    }

    /// Shape after each top-level layer (the last is the output), or why the model is invalid.
    pub fn shapes(&self) -> Result<Vec<Act>, Invalid> {
        let mut index = 0;
        if self.batch == 0 || self.channels == 0 || self.length == 0 {
            return Err(Invalid {
                layer: 0,
                reason: "input has a zero dimension".into(),
            });
        }
        let mut act = Act::Seq {
            channels: self.channels,
            length: self.length,
        };
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            act = layer_shape(layer, act, &mut index)?;
            out.push(act);
        }
        Ok(out)
    }

    /// Output shape including the batch dimension.
    pub fn output_shape(&self) -> Result<Vec<usize>, Invalid> {
        let last = self.shapes()?.last().copied();
        Ok(
            match last.unwrap_or(Act::Seq {
                channels: self.channels,
                length: self.length,
            }) {
                Act::Seq { channels, length } => vec![self.batch, channels, length],
                Act::Flat { features } => vec![self.batch, features],
            },
        )
    }

    /// Every ONNX operator used, in order of first use.
    pub fn ops(&self) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = Vec::new();
        for op in self.layers.iter().flat_map(Layer::ops) {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        ops
    }

    /// Number of layers, counting residual bodies.
    pub fn depth(&self) -> usize {
        fn count(layers: &[Layer]) -> usize {
            layers
                .iter()
                .map(|l| match l {
                    Layer::Residual { body } => 1 + count(body),
                    _ => 1,
                })
                .sum()
        }
        count(&self.layers)
    }
}

fn invalid(layer: usize, reason: impl Into<String>) -> Invalid {
    Invalid {
        layer,
        reason: reason.into(),
    }
}

fn layer_shape(layer: &Layer, act: Act, index: &mut usize) -> Result<Act, Invalid> {
    let me = *index;
    *index += 1;
    let seq = |what: &str| match act {
        Act::Seq { channels, length } => Ok((channels, length)),
        Act::Flat { .. } => Err(invalid(
            me,
            format!("{what} needs a [N, C, L] input, got a flat one"),
        )),
    };
    let next = match layer {
        Layer::Conv(c) => {
            let (channels, length) = seq("Conv")?;
            check_window(me, c.kernel, c.stride, c.dilation)?;
            if c.group == 0 || channels % c.group != 0 || c.out_channels % c.group != 0 {
                return Err(invalid(
                    me,
                    format!(
                        "group {} does not divide input channels {channels} and output channels {}",
                        c.group, c.out_channels
                    ),
                ));
            }
            let (out, _, _) =
                output_length(length, c.kernel, c.stride, c.dilation, c.padding, false)
                    .ok_or_else(|| {
                        invalid(
                            me,
                            format!(
                                "Conv kernel field longer than the padded input of length {length}"
                            ),
                        )
                    })?;
            Act::Seq {
                channels: c.out_channels,
                length: out,
            }
        }
        Layer::MaxPool(p) | Layer::AveragePool(p) => {
            let is_max = matches!(layer, Layer::MaxPool(_));
            let (channels, length) = seq("pooling")?;
            check_window(me, p.kernel, p.stride, p.dilation)?;
            if !is_max && p.dilation != 1 {
                return Err(invalid(me, "AveragePool has no dilation before opset 19"));
            }
            if let Padding::Explicit { begin, end } = p.padding {
                if begin >= p.kernel || end >= p.kernel {
                    return Err(invalid(
                        me,
                        format!(
                            "pool pads [{begin}, {end}] must be smaller than the kernel {}",
                            p.kernel
                        ),
                    ));
                }
            }
            let (out, begin, _) = output_length(
                length,
                p.kernel,
                p.stride,
                p.dilation,
                p.padding,
                p.ceil_mode,
            )
            .ok_or_else(|| {
                invalid(
                    me,
                    format!("pool window longer than the padded input of length {length}"),
                )
            })?;
            if is_max && p.dilation > 1 {
                // A dilated window that only touches padding has no defined maximum.
                for o in 0..out {
                    let start = (o * p.stride) as isize - begin as isize;
                    let touches = (0..p.kernel).any(|k| {
                        (0..length as isize).contains(&(start + (k * p.dilation) as isize))
                    });
                    if !touches {
                        return Err(invalid(
                            me,
                            format!("MaxPool window {o} covers only padding"),
                        ));
                    }
                }
            }
            Act::Seq {
                channels,
                length: out,
            }
        }
        Layer::BatchNorm { epsilon } => {
            seq("BatchNormalization")?;
            if epsilon.is_nan() || *epsilon <= 0.0 {
                return Err(invalid(me, "BatchNormalization epsilon must be positive"));
            }
            act
        }
        Layer::Clip { min, max } => {
            if min.is_nan() || max.is_nan() || min > max {
                return Err(invalid(me, format!("Clip min {min} above max {max}")));
            }
            act
        }
        Layer::Relu | Layer::LeakyRelu { .. } | Layer::Sigmoid | Layer::Tanh => act,
        Layer::Residual { body } => {
            seq("Residual")?;
            let mut inner = act;
            for l in body {
                inner = layer_shape(l, inner, index)?;
            }
            if inner != act {
                return Err(invalid(
                    me,
                    format!("residual body maps {act:?} to {inner:?}"),
                ));
            }
            act
        }
        Layer::GlobalAveragePool => {
            let (channels, _) = seq("GlobalAveragePool")?;
            Act::Seq {
                channels,
                length: 1,
            }
        }
        Layer::Dense { out_features } => {
            if *out_features == 0 {
                return Err(invalid(me, "Dense needs at least one output feature"));
            }
            Act::Flat {
                features: *out_features,
            }
        }
    };
    if next.elements() > MAX_ACTIVATION {
        return Err(invalid(
            me,
            format!(
                "activation of {} elements is over the limit",
                next.elements()
            ),
        ));
    }
    Ok(next)
}

fn check_window(
    layer: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(), Invalid> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(invalid(
            layer,
            format!("kernel {kernel}, stride {stride}, dilation {dilation} must all be positive"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_lower_puts_the_odd_pad_first() {
        // L=7, k=4, s=2: out = 4, total pad = 3*2 + 4 - 7 = 3.
        assert_eq!(
            output_length(7, 4, 2, 1, Padding::SameLower, false),
            Some((4, 2, 1))
        );
        assert_eq!(
            output_length(7, 4, 2, 1, Padding::SameUpper, false),
            Some((4, 1, 2))
        );
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_the_right_padding() {
        // L=15, k=4, s=3, pads [1,2]: span 14, ceil(14/3)+1 = 6; window 5 starts at 14 < 16.
        assert_eq!(
            output_length(15, 4, 3, 1, Padding::Explicit { begin: 1, end: 2 }, true),
            Some((6, 1, 2))
        );
        // L=4, k=2, s=2, pads [0,1]: span 3 -> ceil 2 + 1 = 3, but window 2 starts at 4 = L.
        assert_eq!(
            output_length(4, 2, 2, 1, Padding::Explicit { begin: 0, end: 1 }, true),
            Some((2, 0, 1))
        );
    }

    #[test]
    fn ceil_mode_does_not_change_auto_pad_output_lengths() {
        // VALID: ceil((L - field + 1) / s) = ceil((13 - 5 + 1) / 3) = 3 whatever ceil_mode says.
        assert_eq!(
            output_length(13, 5, 3, 1, Padding::Valid, true),
            Some((3, 0, 0))
        );
    }

    #[test]
    fn kernel_longer_than_padded_input_has_no_output() {
        assert_eq!(output_length(3, 5, 1, 1, Padding::Valid, false), None);
        assert_eq!(
            output_length(3, 5, 1, 1, Padding::Explicit { begin: 1, end: 1 }, false),
            Some((1, 1, 1))
        );
    }

    fn conv(out_channels: usize, group: usize) -> Layer {
        Layer::Conv(Conv {
            out_channels,
            kernel: 3,
            stride: 1,
            dilation: 1,
            padding: Padding::Valid,
            group,
            bias: true,
        })
    }

    fn desc(layers: Vec<Layer>) -> ModelDesc {
        ModelDesc {
            batch: 1,
            channels: 4,
            length: 10,
            layers,
            opset: 17,
            weight_seed: 0,
            weights: WeightDist::Scaled,
        }
    }

    #[test]
    fn group_must_divide_channels() {
        let err = desc(vec![conv(6, 3)]).shapes().unwrap_err();
        assert!(err.reason.contains("group 3"), "{err}");
        assert_eq!(
            desc(vec![conv(6, 2)]).output_shape().unwrap(),
            vec![1, 6, 8]
        );
    }

    #[test]
    fn residual_body_must_keep_the_shape() {
        let err = desc(vec![Layer::Residual {
            body: vec![conv(4, 1)],
        }])
        .shapes()
        .unwrap_err();
        assert!(err.reason.contains("residual"), "{err}");
    }

    #[test]
    fn dense_head_flattens() {
        let d = desc(vec![
            Layer::GlobalAveragePool,
            Layer::Dense { out_features: 3 },
        ]);
        assert_eq!(d.output_shape().unwrap(), vec![1, 3]);
        assert_eq!(d.ops(), vec!["GlobalAveragePool", "Flatten", "Gemm"]);
    }

    #[test]
    fn conv_after_flatten_is_refused() {
        let err = desc(vec![Layer::Dense { out_features: 3 }, conv(4, 1)])
            .shapes()
            .unwrap_err();
        assert_eq!(err.layer, 1);
    }

    #[test]
    fn description_round_trips_through_json() {
        let d = desc(vec![conv(4, 4), Layer::LeakyRelu { alpha: 0.1 }]);
        let back: ModelDesc = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
