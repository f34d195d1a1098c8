//! Typed description of a 1D CNN: layers, their attributes, and shape inference.
//!
//! A [`ModelDesc`] is what the generator produces and what reduction shrinks. It is plain data
//! (serde), independent of ONNX: [`crate::onnx::emit`] turns it into a graph. [`ModelDesc::shapes`]
//! computes every activation shape and refuses configurations that are invalid by the ONNX
//! spec, with a reason. Layers are in [`layers`], the shape rules in `shape`, coverage classes
//! and the catalogue of classes in `coverage`.

use crate::tensor::DType;
use serde::{Deserialize, Serialize};

mod coverage;
mod layers;
mod shape;

pub use coverage::{drops_window, reachable_in_form, required_classes, CATALOGUE, QUANT_CATALOGUE};
pub use layers::{Conv, ConvTranspose, Layer, LpPool, Merge, PadMode, Padding, Pool, Quant};

/// A whole model: input geometry, the layer stack and how weights are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDesc {
    /// Batch size N of the input.
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
    /// Layout of the model's input and sequence outputs.
    #[serde(default, skip_serializing_if = "Layout::is_ncl")]
    pub layout: Layout,
    /// Which input dimensions the model declares symbolic (`dim_param`).
    #[serde(default, skip_serializing_if = "Symbolic::is_static")]
    pub symbolic: Symbolic,
    /// Set on negative cases: the model is invalid by the ONNX spec, in this way (its last
    /// layer is the offending one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<Negative>,
    /// Element type of the input, the weights and every float tensor of the model.
    #[serde(default = "float32", skip_serializing_if = "is_float32")]
    pub dtype: DType,
    /// Set on quantized models: the weights of Conv, ConvTranspose, Gemm and MatMul are stored
    /// as integers and dequantized (activations are quantized by
    /// [`Layer::QuantizeDequantize`] layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantized_weights: Option<WeightQuant>,
}

/// How a quantized model stores its weights, as static quantization tools do: Conv,
/// ConvTranspose, Gemm and MatMul weights as int8 (symmetric, zero point 0) or uint8 (with
/// the zero point of their range), dequantized by a DequantizeLinear; a bias as int32 at the
/// scale `input scale × weight scale` when the layer's input is a quantized activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightQuant {
    /// One scale per output channel (`axis` of DequantizeLinear, opset 13) rather than one.
    pub per_channel: bool,
    /// int8 symmetric rather than uint8 asymmetric.
    pub signed: bool,
    /// The operators the quantized layers are written with.
    #[serde(default, skip_serializing_if = "QuantOperators::is_qdq")]
    pub operators: QuantOperators,
}

/// How the quantized layers of a model are written: the forms quantization tools produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QuantOperators {
    /// Float operators between QuantizeLinear → DequantizeLinear pairs (onnxruntime's
    /// `QuantFormat.QDQ`, the form OpenVINO's and TensorRT's tools read).
    #[default]
    Qdq,
    /// QLinearConv and QLinearMatMul, integers in and out (onnxruntime's
    /// `QuantFormat.QOperator`).
    Qlinear,
    /// ConvInteger and MatMulInteger, the int32 accumulator scaled back to float (the form of
    /// onnxruntime's dynamic quantization, here with the activations' static parameters).
    Integer,
}

impl QuantOperators {
    /// The default form.
    pub fn is_qdq(&self) -> bool {
        *self == QuantOperators::Qdq
    }

    /// The suffix of a quantized case id in this form: `-q`, `-qo` (operators), `-qi`.
    pub fn id_suffix(self) -> &'static str {
        match self {
            QuantOperators::Qdq => "-q",
            QuantOperators::Qlinear => "-qo",
            QuantOperators::Integer => "-qi",
        }
    }

    /// The name in coverage classes.
    pub fn name(self) -> &'static str {
        match self {
            QuantOperators::Qdq => "qdq",
            QuantOperators::Qlinear => "qlinear",
            QuantOperators::Integer => "integer",
        }
    }
}

fn float32() -> DType {
    DType::Float
}

fn is_float32(d: &DType) -> bool {
    *d == DType::Float
}

/// Data layout of the model's input and of the sequences between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Layout {
    /// `[N, C, L]`, as ONNX convolutions expect.
    #[default]
    Ncl,
    /// `[N, L, C]`, as Keras/TensorFlow keep it: Transposes around every layer that needs NCL.
    Nlc,
}

impl Layout {
    fn is_ncl(&self) -> bool {
        *self == Layout::Ncl
    }

    /// `NCL` or `NLC`.
    pub fn name(&self) -> &'static str {
        match self {
            Layout::Ncl => "NCL",
            Layout::Nlc => "NLC",
        }
    }
}

/// Symbolic input dimensions: the model declares `dim_param`s, the case feeds concrete sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Symbolic {
    /// The batch dimension is `N`.
    pub batch: bool,
    /// The length dimension is `L`.
    pub length: bool,
}

impl Symbolic {
    fn is_static(&self) -> bool {
        !self.batch && !self.length
    }
}

/// The ways a negative case is invalid by the ONNX spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Negative {
    /// A Conv whose kernel field is longer than its padded input.
    KernelTooLong,
    /// A Conv whose group does not divide its input channels.
    GroupNotDividing,
    /// A pool whose begin pad is at least its kernel, so its first window covers only padding.
    PoolPadsNotBelowKernel,
    /// A Conv whose weight has one input channel per group too many.
    WrongWeightShape,
}

impl Negative {
    /// Every kind, in a fixed order.
    pub const ALL: [Negative; 4] = [
        Negative::KernelTooLong,
        Negative::GroupNotDividing,
        Negative::PoolPadsNotBelowKernel,
        Negative::WrongWeightShape,
    ];

    /// Kebab-case name, as in coverage classes.
    pub fn name(&self) -> &'static str {
        match self {
            Negative::KernelTooLong => "kernel-too-long",
            Negative::GroupNotDividing => "group-not-dividing",
            Negative::PoolPadsNotBelowKernel => "pool-pads-not-below-kernel",
            Negative::WrongWeightShape => "wrong-weight-shape",
        }
    }
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
    /// A static NCL description with no negative mark.
    pub fn new(
        [batch, channels, length]: [usize; 3],
        layers: Vec<Layer>,
        opset: i64,
        weight_seed: u64,
        weights: WeightDist,
    ) -> ModelDesc {
        ModelDesc {
            batch,
            channels,
            length,
            layers,
            opset,
            weight_seed,
            weights,
            layout: Layout::Ncl,
            symbolic: Symbolic::default(),
            negative: None,
            dtype: DType::Float,
            quantized_weights: None,
        }
    }

    /// Input shape in the model's layout: `[N, C, L]` or `[N, L, C]`.
    pub fn input_shape(&self) -> [usize; 3] {
        match self.layout {
            Layout::Ncl => [self.batch, self.channels, self.length],
            Layout::Nlc => [self.batch, self.length, self.channels],
        }
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
        if let Some(w) = self.quantized_weights {
            if self.opset < 10 || (w.per_channel && self.opset < 13) {
                return Err(Invalid {
                    layer: 0,
                    reason: format!(
                        "{} weight quantization needs opset {}",
                        if w.per_channel {
                            "per-channel"
                        } else {
                            "per-tensor"
                        },
                        if w.per_channel { 13 } else { 10 }
                    ),
                });
            }
            if self.dtype != DType::Float {
                return Err(Invalid {
                    layer: 0,
                    reason: "quantized weights need a float32 model".into(),
                });
            }
        }
        let rules = shape::Rules { opset: self.opset };
        for (i, layer) in self.layers.iter().enumerate() {
            let me = index;
            act = rules.layer(layer, act, &mut index)?;
            if i + 1 == self.layers.len()
                && self.negative == Some(Negative::WrongWeightShape)
                && matches!(layer, Layer::Conv(_))
            {
                return Err(Invalid {
                    layer: me,
                    reason: "Conv weight has one input channel per group too many".into(),
                });
            }
            out.push(act);
        }
        Ok(out)
    }

    /// Shapes of the valid prefix: every layer but the last of a negative case.
    pub fn prefix_shapes(&self) -> Result<Vec<Act>, Invalid> {
        match self.negative {
            None => self.shapes(),
            Some(_) => {
                let mut prefix = self.clone();
                prefix.negative = None;
                prefix.layers.pop();
                prefix.shapes()
            }
        }
    }

    /// Output shape including the batch dimension, in the model's layout.
    pub fn output_shape(&self) -> Result<Vec<usize>, Invalid> {
        let last = self.shapes()?.last().copied();
        Ok(
            match last.unwrap_or(Act::Seq {
                channels: self.channels,
                length: self.length,
            }) {
                Act::Seq { channels, length } => match self.layout {
                    Layout::Ncl => vec![self.batch, channels, length],
                    Layout::Nlc => vec![self.batch, length, channels],
                },
                Act::Flat { features } => vec![self.batch, features],
            },
        )
    }

    /// Every ONNX operator used, in order of first use.
    pub fn ops(&self) -> Vec<&'static str> {
        let mut ops: Vec<&'static str> = Vec::new();
        if self.layout == Layout::Nlc {
            ops.push("Transpose");
        }
        for op in self.layers.iter().flat_map(Layer::ops) {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        ops
    }

    /// Number of layers, counting nested ones.
    pub fn depth(&self) -> usize {
        fn count(layers: &[Layer]) -> usize {
            layers
                .iter()
                .map(|l| 1 + l.children().into_iter().map(count).sum::<usize>())
                .sum()
        }
        count(&self.layers)
    }
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
        ModelDesc::new([1, 4, 10], layers, 17, 0, WeightDist::Scaled)
    }

    #[test]
    fn a_pool_whose_stride_exceeds_its_window_is_classed_so() {
        let pool = |kernel, stride, dilation| Pool {
            kernel,
            stride,
            dilation,
            padding: Padding::SameLower,
            ceil_mode: false,
            count_include_pad: false,
            indices: false,
            unsqueeze_2d: false,
        };
        let has =
            |layer: Layer, class: &str| desc(vec![layer]).classes().iter().any(|c| c == class);
        // Kernel 2 under stride 3 (finding 52's negative SAME pads) and kernel 1 under stride 2.
        assert!(has(
            Layer::AveragePool(pool(2, 3, 1)),
            "AveragePool.strides>kernel"
        ));
        assert!(has(Layer::MaxPool(pool(1, 2, 1)), "MaxPool.strides>kernel"));
        // A window as long as the stride skips nothing; a dilated one spans (k - 1) * d + 1.
        assert!(!has(
            Layer::MaxPool(pool(2, 2, 1)),
            "MaxPool.strides>kernel"
        ));
        assert!(!has(
            Layer::MaxPool(pool(2, 3, 2)),
            "MaxPool.strides>kernel"
        ));
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
            Layer::Dense {
                out_features: 3,
                reshape: false,
            },
        ]);
        assert_eq!(d.output_shape().unwrap(), vec![1, 3]);
        assert_eq!(d.ops(), vec!["GlobalAveragePool", "Flatten", "Gemm"]);
    }

    #[test]
    fn conv_after_flatten_is_refused() {
        let err = desc(vec![
            Layer::Dense {
                out_features: 3,
                reshape: false,
            },
            conv(4, 1),
        ])
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

    #[test]
    fn conv_transpose_lengths_follow_the_spec() {
        use super::shape::conv_transpose_length as len;
        // full = s (L - 1) + output_padding + (k - 1) d + 1 = 2*4 + 1 + 2 + 1 = 12.
        let pads = Padding::Explicit { begin: 1, end: 2 };
        assert_eq!(len(5, 3, 2, 1, pads, 1, None), Ok(9));
        assert_eq!(len(5, 3, 2, 1, Padding::SameLower, 0, None), Ok(10));
        assert_eq!(len(5, 3, 2, 1, Padding::Valid, 0, Some(7)), Ok(7));
        assert!(
            len(5, 3, 2, 1, Padding::Valid, 2, None).is_err(),
            "output_padding >= stride"
        );
        let big = Padding::Explicit { begin: 4, end: 4 };
        assert!(len(1, 2, 1, 1, big, 0, None).is_err(), "output length < 1");
    }

    #[test]
    fn pad_concat_and_layer_norm_rules() {
        let pad = |mode, begin| Layer::Pad {
            mode,
            begin,
            end: 0,
        };
        assert!(desc(vec![pad(PadMode::Reflect, 10)]).shapes().is_err());
        assert_eq!(
            desc(vec![pad(PadMode::Edge, 10)]).output_shape().unwrap(),
            vec![1, 4, 20]
        );
        let concat = Layer::Parallel {
            merge: Merge::Concat,
            branches: vec![vec![], vec![conv(6, 1)]],
        };
        // Branches of lengths 10 and 8 cannot be concatenated; same lengths add channels.
        assert!(desc(vec![concat]).shapes().is_err());
        let same = Layer::Parallel {
            merge: Merge::Concat,
            branches: vec![vec![], vec![Layer::Relu]],
        };
        assert_eq!(desc(vec![same]).output_shape().unwrap(), vec![1, 8, 10]);
        let ln = Layer::LayerNorm {
            axis: -1,
            epsilon: 1e-5,
        };
        let mut d = desc(vec![ln]);
        assert!(d.shapes().is_ok());
        d.opset = 16;
        assert!(d.shapes().unwrap_err().reason.contains("opset 17"));
    }

    #[test]
    fn negative_wrong_weight_shape_is_refused_by_the_rules() {
        let mut d = desc(vec![Layer::Relu, conv(4, 1)]);
        assert!(d.shapes().is_ok());
        d.negative = Some(Negative::WrongWeightShape);
        assert_eq!(d.shapes().unwrap_err().layer, 1);
        assert_eq!(d.prefix_shapes().unwrap().len(), 1);
    }

    #[test]
    fn nlc_layout_orders_input_and_output_length_before_channels() {
        let mut d = desc(vec![conv(6, 2)]);
        d.layout = Layout::Nlc;
        assert_eq!(d.input_shape(), [1, 10, 4]);
        assert_eq!(d.output_shape().unwrap(), vec![1, 8, 6]);
    }
}
