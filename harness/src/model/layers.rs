//! The layers a [`super::ModelDesc`] is made of, with their attributes.

use serde::{Deserialize, Serialize};

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

/// A ConvTranspose layer (`[N, Cin, L]` to `[N, out_channels, L']`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvTranspose {
    /// Output channels (a multiple of `group`).
    pub out_channels: usize,
    /// Kernel length.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding (explicit pads are cropped from the full output).
    pub padding: Padding,
    /// `output_padding`: extra length at the end, below the stride or the dilation.
    pub output_padding: usize,
    /// `output_shape`: the wanted output length (pads are then derived from it).
    pub output_shape: Option<usize>,
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
    /// MaxPool also returns its `Indices` output (a graph output of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub indices: bool,
    /// Emitted as PyTorch exports a 1D pool: Unsqueeze, a 2D pool on `[N, C, 1, L]`, Squeeze.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsqueeze_2d: bool,
}

/// An LpPool layer (no ceil_mode or dilation, which appear only in opset 18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LpPool {
    /// Window length.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding.
    pub padding: Padding,
    /// The norm's exponent.
    pub p: u8,
}

/// Mode of a Pad layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PadMode {
    /// A constant value.
    Constant,
    /// Mirror without repeating the edge element.
    Reflect,
    /// Repeat the edge element.
    Edge,
}

impl PadMode {
    /// The `mode` attribute value.
    pub fn name(&self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
        }
    }
}

/// How the branches of a [`Layer::Parallel`] block are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Merge {
    /// Element-wise sum (same shapes).
    Add,
    /// Element-wise product (same shapes).
    Mul,
    /// Concatenation along channels (same lengths).
    Concat,
}

/// Parameters of a QuantizeLinear → DequantizeLinear pair on an activation (per tensor), as a
/// static quantization tool writes it after calibrating the activation's range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    /// The scale (a float32 scalar).
    pub scale: f32,
    /// The zero point, in the range of the integer type.
    pub zero_point: i32,
    /// int8 rather than uint8.
    pub signed: bool,
}

impl Quant {
    /// Scale and zero point for values in `min..=max`, as static quantization tools choose them:
    /// 0 is always in the range and maps exactly onto the zero point; int8 symmetric around 0
    /// (`max |x| / 127`, zero point 0), or uint8 / int8 over the range (`(max - min) / 255`). A
    /// range too narrow for a float32 scale (a constant zero, say) gets a unit scale and zero
    /// point 0. The scale may still be subnormal or infinite: whether that is usable is the
    /// caller's decision.
    pub fn for_range(min: f64, max: f64, signed: bool, symmetric: bool) -> Quant {
        let (min, max) = (min.min(0.0), max.max(0.0));
        let scale = if symmetric {
            (max.abs().max(min.abs()) / 127.0) as f32
        } else {
            ((max - min) / 255.0) as f32
        };
        if scale.is_nan() || scale <= 0.0 {
            return Quant {
                scale: 1.0,
                zero_point: 0,
                signed,
            };
        }
        let zero_point = if symmetric {
            0
        } else {
            let low = if signed { -128.0 } else { 0.0 };
            (low - min / f64::from(scale))
                .round_ties_even()
                .clamp(low, low + 255.0) as i32
        };
        Quant {
            scale,
            zero_point,
            signed,
        }
    }

    /// The integer type's range.
    pub fn range(&self) -> (i32, i32) {
        if self.signed {
            (-128, 127)
        } else {
            (0, 255)
        }
    }
}

/// One layer of the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Layer {
    /// Convolution.
    Conv(Conv),
    /// Transposed convolution.
    ConvTranspose(ConvTranspose),
    /// Max pooling.
    MaxPool(Pool),
    /// Average pooling.
    AveragePool(Pool),
    /// Lp pooling.
    LpPool(LpPool),
    /// BatchNormalization in inference mode.
    BatchNorm {
        /// Epsilon added to the variance.
        epsilon: f32,
    },
    /// InstanceNormalization (per channel over the length, with scale and bias).
    InstanceNorm {
        /// Epsilon added to the variance.
        epsilon: f32,
    },
    /// LayerNormalization (opset 17) from `axis` to the end: -1 (length) or 1 (channels and length).
    LayerNorm {
        /// First normalized axis.
        axis: i64,
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
    /// PRelu with a learned slope: one scalar or one per channel (shaped `[C, 1]`).
    PRelu {
        /// Slope shaped `[C, 1]` rather than `[1]`.
        per_channel: bool,
    },
    /// Sigmoid.
    Sigmoid,
    /// Tanh.
    Tanh,
    /// Elu.
    Elu {
        /// Scale of the negative part.
        alpha: f32,
    },
    /// Selu with the default constants.
    Selu,
    /// HardSigmoid `max(0, min(1, alpha x + beta))`.
    HardSigmoid {
        /// Slope.
        alpha: f32,
        /// Offset.
        beta: f32,
    },
    /// HardSwish (an op from opset 14, `x · HardSigmoid(1/6, 1/2)` before).
    HardSwish,
    /// Gelu, exact (an op from opset 20, `0.5 x (1 + erf(x / √2))` before).
    Gelu,
    /// Softplus.
    Softplus,
    /// Mish (an op from opset 18, `x · tanh(softplus(x))` before).
    Mish,
    /// Clip to `[min, max]`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// Pad on the length axis.
    Pad {
        /// Mode.
        mode: PadMode,
        /// Elements added before.
        begin: usize,
        /// Elements added after.
        end: usize,
    },
    /// Residual block: `x + body(x)`; the body must keep the shape.
    Residual {
        /// Layers of the residual branch.
        body: Vec<Layer>,
    },
    /// Series-parallel block: every branch gets the input, the results are merged; an empty
    /// branch is the identity.
    Parallel {
        /// How results are merged.
        merge: Merge,
        /// The branches.
        branches: Vec<Vec<Layer>>,
    },
    /// Squeeze-and-excitation: `x · Sigmoid(Conv1x1(Relu(Conv1x1(GlobalAveragePool(x)))))`.
    SqueezeExcite {
        /// Channels of the bottleneck.
        reduced: usize,
    },
    /// GlobalAveragePool: `[N, C, L]` to `[N, C, 1]`.
    GlobalAveragePool,
    /// GlobalMaxPool: `[N, C, L]` to `[N, C, 1]`.
    GlobalMaxPool,
    /// ReduceMean or ReduceMax over the length axis.
    ReduceLength {
        /// ReduceMax rather than ReduceMean.
        max: bool,
        /// Keep the reduced axis (`[N, C, 1]`) or drop it (`[N, C]`).
        keepdims: bool,
    },
    /// Flatten (or Reshape) to `[N, C*L]` if not flat yet, then Gemm with bias.
    Dense {
        /// Output features.
        out_features: usize,
        /// Flatten with Reshape `[0, -1]` instead of Flatten.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reshape: bool,
    },
    /// MatMul by a weight over the last axis: `[N, C, L] x [L, F]` or `[N, F'] x [F', F]`.
    MatMul {
        /// Output size of the last axis.
        out_features: usize,
    },
    /// Softmax over `axis` (-1: the last axis; 1: channels).
    Softmax {
        /// Axis.
        axis: i64,
    },
    /// QuantizeLinear then DequantizeLinear (opset 10): the activation rounded to the integer
    /// grid of `Quant` and back, the form quantization tools write (QDQ).
    QuantizeDequantize(Quant),
}

impl Layer {
    /// The ONNX operators this layer emits (with the op forms of the newest opset).
    pub fn ops(&self) -> Vec<&'static str> {
        match self {
            Layer::Conv(_) => vec!["Conv"],
            Layer::ConvTranspose(_) => vec!["ConvTranspose"],
            Layer::MaxPool(p) | Layer::AveragePool(p) => {
                let op = if matches!(self, Layer::MaxPool(_)) {
                    "MaxPool"
                } else {
                    "AveragePool"
                };
                if p.unsqueeze_2d {
                    vec!["Unsqueeze", op, "Squeeze"]
                } else {
                    vec![op]
                }
            }
            Layer::LpPool(_) => vec!["LpPool"],
            Layer::BatchNorm { .. } => vec!["BatchNormalization"],
            Layer::InstanceNorm { .. } => vec!["InstanceNormalization"],
            Layer::LayerNorm { .. } => vec!["LayerNormalization"],
            Layer::Relu => vec!["Relu"],
            Layer::LeakyRelu { .. } => vec!["LeakyRelu"],
            Layer::PRelu { .. } => vec!["PRelu"],
            Layer::Sigmoid => vec!["Sigmoid"],
            Layer::Tanh => vec!["Tanh"],
            Layer::Elu { .. } => vec!["Elu"],
            Layer::Selu => vec!["Selu"],
            Layer::HardSigmoid { .. } => vec!["HardSigmoid"],
            Layer::HardSwish => vec!["HardSwish"],
            Layer::Gelu => vec!["Gelu"],
            Layer::Softplus => vec!["Softplus"],
            Layer::Mish => vec!["Mish"],
            Layer::Clip { .. } => vec!["Clip"],
            Layer::Pad { .. } => vec!["Pad"],
            Layer::Residual { body } => {
                let mut v: Vec<_> = body.iter().flat_map(Layer::ops).collect();
                v.push("Add");
                v
            }
            Layer::Parallel { merge, branches } => {
                let mut v: Vec<_> = branches.iter().flatten().flat_map(Layer::ops).collect();
                v.push(match merge {
                    Merge::Add => "Add",
                    Merge::Mul => "Mul",
                    Merge::Concat => "Concat",
                });
                v
            }
            Layer::SqueezeExcite { .. } => {
                vec![
                    "GlobalAveragePool",
                    "Conv",
                    "Relu",
                    "Conv",
                    "Sigmoid",
                    "Mul",
                ]
            }
            Layer::GlobalAveragePool => vec!["GlobalAveragePool"],
            Layer::GlobalMaxPool => vec!["GlobalMaxPool"],
            Layer::ReduceLength { max: true, .. } => vec!["ReduceMax"],
            Layer::ReduceLength { max: false, .. } => vec!["ReduceMean"],
            Layer::Dense { reshape: false, .. } => vec!["Flatten", "Gemm"],
            Layer::Dense { reshape: true, .. } => vec!["Reshape", "Gemm"],
            Layer::MatMul { .. } => vec!["MatMul"],
            Layer::Softmax { .. } => vec!["Softmax"],
            Layer::QuantizeDequantize(_) => vec!["QuantizeLinear", "DequantizeLinear"],
        }
    }

    /// Whether the layer is element-wise on one tensor (works on any layout).
    pub fn is_unary_elementwise(&self) -> bool {
        matches!(
            self,
            Layer::Relu
                | Layer::LeakyRelu { .. }
                | Layer::Sigmoid
                | Layer::Tanh
                | Layer::Elu { .. }
                | Layer::Selu
                | Layer::HardSigmoid { .. }
                | Layer::HardSwish
                | Layer::Gelu
                | Layer::Softplus
                | Layer::Mish
                | Layer::Clip { .. }
        )
    }

    /// Nested layer lists (residual bodies, parallel branches).
    pub fn children(&self) -> Vec<&[Layer]> {
        match self {
            Layer::Residual { body } => vec![body.as_slice()],
            Layer::Parallel { branches, .. } => branches.iter().map(Vec::as_slice).collect(),
            _ => vec![],
        }
    }
}
