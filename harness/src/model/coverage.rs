//! Coverage classes: which corners of the catalogue a model exercises
//! (`Conv.auto_pad=SAME_LOWER`, `AveragePool.ceil_mode=1`, `shape.L=1`, patterns of layers),
//! and [`CATALOGUE`], the classes every run is expected to reach (docs/edge-cases.md).

use std::collections::BTreeSet;

use super::shape::Rules;
use super::{output_length, Act, Conv, ConvTranspose, Layer, Layout, LpPool, Merge, ModelDesc};
use super::{Negative, PadMode, Padding, Pool, QuantOperators, WeightDist};

/// The classes a run drawing its opsets from `first..=last` must reach: [`CATALOGUE`],
/// `opset=N` for each of those opsets, when it draws float16 models `dtype=float16`, and when
/// it draws quantized models [`QUANT_CATALOGUE`].
pub fn required_classes((first, last): (i64, i64), float16: bool, quantized: bool) -> Vec<String> {
    CATALOGUE
        .iter()
        .map(|c| c.to_string())
        .chain((first..=last).map(|o| format!("opset={o}")))
        .chain(float16.then(|| "dtype=float16".to_string()))
        .chain(
            QUANT_CATALOGUE
                .iter()
                .filter(|_| quantized)
                .map(|c| c.to_string()),
        )
        .collect()
}

/// The classes of quantized models every run that draws them must reach: both integer types of
/// activations and weights, zero and non-zero activation zero points, per-tensor and
/// per-channel weight scales, windows padded over a non-zero zero point, and each form of the
/// quantized operators.
pub const QUANT_CATALOGUE: &[&str] = &[
    "QuantizeLinear.type=int8",
    "QuantizeLinear.type=uint8",
    "QuantizeLinear.zero_point=0",
    "QuantizeLinear.zero_point=nonzero",
    "quant.weights=int8",
    "quant.weights=uint8",
    "quant.weights.scale=per-channel",
    "quant.weights.scale=per-tensor",
    "quant.zero-point-padding.Conv",
    "quant.zero-point-padding.AveragePool",
    "quant.zero-point-padding.MaxPool",
    "quant.operators=qdq",
    "quant.operators=qlinear",
    "quant.operators=integer",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
];

/// The operators of the quantized form `operators` that `layers` get, `read_dequantized` when
/// the first of them reads a DequantizeLinear output. Every top-level layer does (a QDQ pair is
/// before it) and feeds a QuantizeLinear, so a top-level Conv or MatMul takes either form; the
/// first layer of a residual body or of a parallel branch reads what its block reads and feeds
/// the next layer, so it takes only the integer form.
fn operator_forms(
    layers: &[Layer],
    operators: QuantOperators,
    top_level: bool,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let reads_dequantized = top_level || i == 0;
        if !reads_dequantized {
            continue;
        }
        let form = match (layer, operators) {
            (Layer::Conv(_), QuantOperators::Qlinear) if top_level => Some("QLinearConv"),
            (Layer::MatMul { .. }, QuantOperators::Qlinear) if top_level => Some("QLinearMatMul"),
            (Layer::Conv(_), QuantOperators::Integer) => Some("ConvInteger"),
            (Layer::MatMul { .. }, QuantOperators::Integer) => Some("MatMulInteger"),
            _ => None,
        };
        out.extend(form);
        for body in layer.children() {
            out.extend(operator_forms(body, operators, false));
        }
    }
    out
}

/// Whether `class` can be reached by quantized models all written in `form`: the classes of the
/// other operator forms cannot.
pub fn reachable_in_form(class: &str, form: QuantOperators) -> bool {
    let of_form = |f: QuantOperators| match f {
        QuantOperators::Qdq => &["quant.operators=qdq"][..],
        QuantOperators::Qlinear => &["quant.operators=qlinear", "QLinearConv", "QLinearMatMul"][..],
        QuantOperators::Integer => &["quant.operators=integer", "ConvInteger", "MatMulInteger"][..],
    };
    [
        QuantOperators::Qdq,
        QuantOperators::Qlinear,
        QuantOperators::Integer,
    ]
    .into_iter()
    .filter(|&f| f != form)
    .all(|f| !of_form(f).contains(&class))
}

/// Every class the generator must reach (`--min-coverage` checks these, with the `opset=N`
/// classes of the opsets drawn: [`required_classes`]). Other classes (such as
/// `pattern=SAME-conv->subsampling-conv`, `weights=…`) are counted too but not required.
pub const CATALOGUE: &[&str] = &[
    // Conv
    "Conv.auto_pad=NOTSET",
    "Conv.auto_pad=VALID",
    "Conv.auto_pad=SAME_UPPER",
    "Conv.auto_pad=SAME_LOWER",
    "Conv.pads=symmetric",
    "Conv.pads=asymmetric",
    "Conv.strides>1",
    "Conv.dilations>1",
    "Conv.kernel=1",
    "Conv.kernel>L",
    "Conv.group=1",
    "Conv.group=depthwise",
    "Conv.group=between",
    "Conv.bias=0",
    "Conv.bias=1",
    // ConvTranspose
    "ConvTranspose.auto_pad=NOTSET",
    "ConvTranspose.auto_pad=VALID",
    "ConvTranspose.auto_pad=SAME_UPPER",
    "ConvTranspose.auto_pad=SAME_LOWER",
    "ConvTranspose.pads=symmetric",
    "ConvTranspose.pads=asymmetric",
    "ConvTranspose.strides>1",
    "ConvTranspose.dilations>1",
    "ConvTranspose.output_padding>0",
    "ConvTranspose.output_shape",
    "ConvTranspose.group>1",
    "ConvTranspose.bias=0",
    "ConvTranspose.bias=1",
    // Pools
    "MaxPool.auto_pad=NOTSET",
    "MaxPool.auto_pad=VALID",
    "MaxPool.auto_pad=SAME_UPPER",
    "MaxPool.auto_pad=SAME_LOWER",
    "MaxPool.pads=symmetric",
    "MaxPool.pads=asymmetric",
    "MaxPool.strides>1",
    "MaxPool.dilations>1",
    "MaxPool.kernel>L",
    "MaxPool.ceil_mode=0",
    "MaxPool.ceil_mode=1",
    "MaxPool.ceil_mode=window-in-right-pad",
    "MaxPool.indices=1",
    "AveragePool.auto_pad=NOTSET",
    "AveragePool.auto_pad=VALID",
    "AveragePool.auto_pad=SAME_UPPER",
    "AveragePool.auto_pad=SAME_LOWER",
    "AveragePool.pads=symmetric",
    "AveragePool.pads=asymmetric",
    "AveragePool.strides>1",
    "AveragePool.kernel>L",
    "AveragePool.ceil_mode=0",
    "AveragePool.ceil_mode=1",
    "AveragePool.ceil_mode=window-in-right-pad",
    "AveragePool.count_include_pad=0",
    "AveragePool.count_include_pad=1",
    "LpPool.p=1",
    "LpPool.p=2",
    "LpPool.strides>1",
    "LpPool.pads>0",
    "pattern=unsqueeze-pool2d-squeeze",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean.keepdims=0",
    "ReduceMean.keepdims=1",
    "ReduceMax.keepdims=0",
    "ReduceMax.keepdims=1",
    // Normalization
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization.axis=-1",
    "LayerNormalization.axis=1",
    // Activations
    "Relu",
    "LeakyRelu",
    "PRelu.slope=scalar",
    "PRelu.slope=[C,1]",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "HardSigmoid",
    "HardSwish.form=op",
    "HardSwish.form=decomposed",
    "Gelu.form=op",
    "Gelu.form=decomposed",
    "Softplus",
    "Clip",
    "Mish.form=op",
    "Mish.form=decomposed",
    // Pad
    "Pad.mode=constant",
    "Pad.mode=reflect",
    "Pad.mode=edge",
    // Structure
    "Add.residual",
    "Add.branches",
    "Mul.branches",
    "Concat.channels",
    "pattern=squeeze-excite",
    // Heads
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
    "Softmax.axis=-1",
    "Softmax.axis=1",
    // Layout and dimensions
    "layout=NCL",
    "layout=NLC",
    "dims=static",
    "dims=symbolic-N",
    "dims=symbolic-L",
    // Shapes
    "shape.L=1",
    "shape.C=1",
    "shape.N>1",
    "shape.C=L",
    "shape.window-output-length=1",
    // Opsets
    // Negative cases
    "negative=kernel-too-long",
    "negative=group-not-dividing",
    "negative=pool-pads-not-below-kernel",
    "negative=wrong-weight-shape",
];

impl ModelDesc {
    /// Coverage classes this model exercises, such as `Conv.auto_pad=SAME_LOWER` or
    /// `AveragePool.ceil_mode=1`; sorted, each once.
    pub fn classes(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        if self.batch > 1 {
            out.insert("shape.N>1".to_string());
        }
        if self.channels == 1 {
            out.insert("shape.C=1".to_string());
        }
        if self.length == 1 {
            out.insert("shape.L=1".to_string());
        }
        if self.channels == self.length {
            out.insert("shape.C=L".to_string());
        }
        out.insert(format!(
            "weights={}",
            match self.weights {
                WeightDist::Scaled => "scaled",
                WeightDist::SmallInt => "small-int",
            }
        ));
        out.insert(format!("opset={}", self.opset));
        // float32 models carry no class, so their class lists are those of earlier versions.
        if self.dtype != crate::tensor::DType::Float {
            out.insert(format!("dtype={}", self.dtype));
        }
        if let Some(w) = self.quantized_weights {
            out.insert(format!(
                "quant.weights={}",
                if w.signed { "int8" } else { "uint8" }
            ));
            out.insert(format!(
                "quant.weights.scale={}",
                if w.per_channel {
                    "per-channel"
                } else {
                    "per-tensor"
                }
            ));
            out.insert(format!("quant.operators={}", w.operators.name()));
            // The layers the rewrite (onnx::emit::qoperator) turns into their operator form.
            for op in operator_forms(&self.layers, w.operators, true) {
                out.insert(op.to_string());
            }
        }
        out.insert(format!("layout={}", self.layout.name()));
        if self.layout == Layout::Nlc {
            out.insert("Transpose".to_string());
        }
        match (self.symbolic.batch, self.symbolic.length) {
            (false, false) => {
                out.insert("dims=static".to_string());
            }
            (b, l) => {
                if b {
                    out.insert("dims=symbolic-N".to_string());
                }
                if l {
                    out.insert("dims=symbolic-L".to_string());
                }
            }
        }
        if let Some(n) = self.negative {
            out.insert(format!("negative={}", n.name()));
        }
        let rules = Rules { opset: self.opset };
        let act = Act::Seq {
            channels: self.channels,
            length: self.length,
        };
        let mut cx = Cx {
            rules: &rules,
            opset: self.opset,
            out: &mut out,
        };
        let n = self.layers.len();
        let valid_prefix = match self.negative {
            Some(_) => &self.layers[..n.saturating_sub(1)],
            None => &self.layers[..],
        };
        let after = cx.walk(valid_prefix, act);
        if let (Some(last), Some(act), Some(_)) = (self.layers.last(), after, self.negative) {
            // The offending layer's own attributes still count (it is what converters see).
            let mut index = 0;
            cx.layer_classes(last, act, &mut index);
        }
        if self.negative.is_none() {
            out.extend(pattern_classes(&self.layers));
        }
        if self.negative == Some(Negative::WrongWeightShape) {
            out.insert("Conv".to_string());
        }
        out.into_iter().collect()
    }
}

struct Cx<'a> {
    rules: &'a Rules,
    opset: i64,
    out: &'a mut BTreeSet<String>,
}

impl Cx<'_> {
    /// Records the classes of `layers` on `act`; the shape after them, if they are valid.
    fn walk(&mut self, layers: &[Layer], mut act: Act) -> Option<Act> {
        let mut before: Option<&Layer> = None;
        for layer in layers {
            let mut index = 0;
            let next = self.rules.layer(layer, act, &mut index).ok()?;
            self.layer_classes(layer, act, &mut index);
            if let Some(Layer::QuantizeDequantize(q)) = before {
                self.after_quantized(layer, q);
            }
            before = Some(layer);
            act = next;
        }
        Some(act)
    }

    /// Classes of a window layer whose input is a quantized activation: padding that must be
    /// the zero point's value (0.0 after dequantization), not the integer 0.
    fn after_quantized(&mut self, layer: &Layer, q: &super::Quant) {
        let padding = match layer {
            Layer::Conv(c) => Some(c.padding),
            Layer::AveragePool(p) | Layer::MaxPool(p) => Some(p.padding),
            _ => None,
        };
        let padded = match padding {
            Some(Padding::Explicit { begin, end }) => begin + end > 0,
            Some(Padding::SameUpper | Padding::SameLower) => true,
            _ => false,
        };
        if padded && q.zero_point != 0 {
            self.insert(format!(
                "quant.zero-point-padding.{}",
                // The windowed op, not the Squeeze of a pool written as a 2D one.
                layer
                    .ops()
                    .into_iter()
                    .find(|op| ["Conv", "AveragePool", "MaxPool"].contains(op))
                    .unwrap_or("?")
            ));
        }
    }

    fn insert(&mut self, class: impl Into<String>) {
        self.out.insert(class.into());
    }

    fn window(&mut self, op: &str, kernel: usize, stride: usize, dilation: usize, pad: Padding) {
        self.insert(format!("{op}.auto_pad={}", pad.auto_pad()));
        if let Padding::Explicit { begin, end } = pad {
            self.insert(format!(
                "{op}.pads={}",
                if begin == end {
                    "symmetric"
                } else {
                    "asymmetric"
                }
            ));
        }
        if stride > 1 {
            self.insert(format!("{op}.strides>1"));
        }
        if dilation > 1 {
            self.insert(format!("{op}.dilations>1"));
        }
        if kernel == 1 {
            self.insert(format!("{op}.kernel=1"));
        }
    }

    /// `shape.window-output-length=1`: a window op that maps a longer input to one element.
    #[allow(clippy::too_many_arguments)]
    fn out_len(
        &mut self,
        length: usize,
        pad: Padding,
        kernel: usize,
        stride: usize,
        dilation: usize,
        ceil: bool,
    ) {
        if let Some((1, _, _)) = output_length(length, kernel, stride, dilation, pad, ceil) {
            if length > 1 {
                self.insert("shape.window-output-length=1");
            }
        }
    }

    fn layer_classes(&mut self, layer: &Layer, act: Act, _index: &mut usize) {
        let (channels, length) = match act {
            Act::Seq { channels, length } => (channels, length),
            Act::Flat { features } => (features, 0),
        };
        match layer {
            Layer::Conv(c) => self.conv_classes(c, channels, length),
            Layer::ConvTranspose(c) => self.conv_transpose_classes(c),
            Layer::MaxPool(p) => self.pool_classes("MaxPool", p, length),
            Layer::AveragePool(p) => self.pool_classes("AveragePool", p, length),
            Layer::LpPool(p) => self.lp_pool_classes(p),
            Layer::LayerNorm { axis, .. } => {
                self.insert(format!(
                    "LayerNormalization.axis={}",
                    if *axis == 1 { 1 } else { -1 }
                ));
            }
            Layer::PRelu { per_channel } => self.insert(if *per_channel {
                "PRelu.slope=[C,1]"
            } else {
                "PRelu.slope=scalar"
            }),
            Layer::HardSwish => self.op_form("HardSwish", 14),
            Layer::Gelu => self.op_form("Gelu", 20),
            Layer::Mish => self.op_form("Mish", 18),
            Layer::Pad { mode, .. } => self.insert(format!(
                "Pad.mode={}",
                match mode {
                    PadMode::Constant => "constant",
                    PadMode::Reflect => "reflect",
                    PadMode::Edge => "edge",
                }
            )),
            Layer::Residual { body } => {
                self.insert("Add.residual");
                self.walk(body, act);
            }
            Layer::Parallel { merge, branches } => {
                self.insert(match merge {
                    Merge::Add => "Add.branches",
                    Merge::Mul => "Mul.branches",
                    Merge::Concat => "Concat.channels",
                });
                for b in branches {
                    self.walk(b, act);
                }
            }
            Layer::SqueezeExcite { .. } => self.insert("pattern=squeeze-excite"),
            Layer::ReduceLength { max, keepdims } => self.insert(format!(
                "{}.keepdims={}",
                if *max { "ReduceMax" } else { "ReduceMean" },
                u8::from(*keepdims)
            )),
            Layer::Softmax { axis } => self.insert(format!("Softmax.axis={axis}")),
            Layer::QuantizeDequantize(q) => {
                self.insert(format!(
                    "QuantizeLinear.type={}",
                    if q.signed { "int8" } else { "uint8" }
                ));
                self.insert(format!(
                    "QuantizeLinear.zero_point={}",
                    if q.zero_point == 0 { "0" } else { "nonzero" }
                ));
            }
            other => {
                for op in other.ops() {
                    self.insert(op);
                }
            }
        }
    }

    /// `{op}.form=op` when the model's opset has `op` (from `since`), else `{op}.form=decomposed`.
    fn op_form(&mut self, op: &str, since: i64) {
        let form = if self.opset >= since {
            "op"
        } else {
            "decomposed"
        };
        self.insert(format!("{op}.form={form}"));
    }

    /// Classes of a Conv on `channels` of `length`.
    fn conv_classes(&mut self, c: &Conv, channels: usize, length: usize) {
        self.window("Conv", c.kernel, c.stride, c.dilation, c.padding);
        if c.dilation * (c.kernel - 1) + 1 > length {
            self.insert("Conv.kernel>L");
        }
        let group = if c.group == 1 {
            "1"
        } else if c.group == channels && channels > 1 {
            "depthwise"
        } else {
            "between"
        };
        self.insert(format!("Conv.group={group}"));
        self.insert(format!("Conv.bias={}", u8::from(c.bias)));
        self.out_len(length, c.padding, c.kernel, c.stride, c.dilation, false);
    }

    /// Classes of a ConvTranspose.
    fn conv_transpose_classes(&mut self, c: &ConvTranspose) {
        self.insert("ConvTranspose");
        self.window("ConvTranspose", c.kernel, c.stride, c.dilation, c.padding);
        if c.output_padding > 0 {
            self.insert("ConvTranspose.output_padding>0");
        }
        if c.output_shape.is_some() {
            self.insert("ConvTranspose.output_shape");
        }
        if c.group > 1 {
            self.insert("ConvTranspose.group>1");
        }
        if c.output_shape.is_none()
            && matches!(c.padding, Padding::SameUpper | Padding::SameLower)
            && (c.kernel - 1) * c.dilation < c.stride
        {
            // The kernel field does not exceed the stride (tract refuses it).
            self.insert("ConvTranspose.SAME.(k-1)*d<s");
        }
        self.insert(format!("ConvTranspose.bias={}", u8::from(c.bias)));
    }

    /// Classes of a MaxPool or AveragePool (`op`) on an input of `length`.
    fn pool_classes(&mut self, op: &str, p: &Pool, length: usize) {
        self.window(op, p.kernel, p.stride, p.dilation, p.padding);
        let span = p.dilation * (p.kernel - 1) + 1;
        // Windows that skip inputs: SAME pads computed from `(out - 1) * s + k - L` go negative
        // there unless clamped (a converter bug class; not in the catalogue).
        if p.stride > span {
            self.insert(format!("{op}.strides>kernel"));
        }
        if span > length {
            self.insert(format!("{op}.kernel>L"));
        }
        self.insert(format!("{op}.ceil_mode={}", u8::from(p.ceil_mode)));
        if p.ceil_mode && drops_window(length, p) {
            self.insert(format!("{op}.ceil_mode=window-in-right-pad"));
        }
        if op == "AveragePool" {
            self.insert(format!(
                "AveragePool.count_include_pad={}",
                u8::from(p.count_include_pad)
            ));
        }
        if p.indices {
            self.insert("MaxPool.indices=1");
        }
        if p.unsqueeze_2d {
            self.insert("pattern=unsqueeze-pool2d-squeeze");
        }
        self.out_len(
            length,
            p.padding,
            p.kernel,
            p.stride,
            p.dilation,
            p.ceil_mode,
        );
    }

    /// Classes of an LpPool.
    fn lp_pool_classes(&mut self, p: &LpPool) {
        self.insert("LpPool");
        self.insert(format!("LpPool.p={}", p.p));
        if p.stride > 1 {
            self.insert("LpPool.strides>1");
        }
        if matches!(p.padding, Padding::Explicit { begin, end } if begin + end > 0) {
            self.insert("LpPool.pads>0");
        }
    }
}

/// Whether a ceil_mode pool's last window starts in the right padding (and is dropped).
pub fn drops_window(length: usize, p: &super::Pool) -> bool {
    let Padding::Explicit { begin, end } = p.padding else {
        return false;
    };
    let field = p.dilation * (p.kernel - 1) + 1;
    let padded = length + begin + end;
    if padded < field {
        return false;
    }
    let out = (padded - field).div_ceil(p.stride) + 1;
    (out - 1) * p.stride >= length + begin
}

/// Classes for sequences of layers that optimizers rewrite together. A conv that only
/// subsamples (stride > 1 with kernel 1, or a dilation that is a multiple of the stride) after
/// a SAME-padded conv (element-wise layers and residual branches in between) invites pushing
/// the subsampling upstream, which must recompute the SAME pads.
fn pattern_classes(layers: &[Layer]) -> Vec<String> {
    let is_norm = |l: &Layer| matches!(l, Layer::InstanceNorm { .. } | Layer::LayerNorm { .. });
    let is_same = |c: &Conv| matches!(c.padding, Padding::SameUpper | Padding::SameLower);
    let mut out = Vec::new();
    let mut same_upstream = false;
    // A normalization over the length upstream: pushing a subsampling into it changes its
    // statistics.
    let mut norm_upstream = false;
    for layer in layers {
        match layer {
            Layer::Conv(c) => {
                let subsamples = c.stride > 1 && (c.kernel == 1 || c.dilation % c.stride == 0);
                if same_upstream && subsamples {
                    out.push("pattern=SAME-conv->subsampling-conv".to_string());
                }
                if norm_upstream && subsamples {
                    out.push("pattern=length-normalization->subsampling-conv".to_string());
                }
                same_upstream = is_same(c);
                norm_upstream = false;
            }
            Layer::InstanceNorm { .. } | Layer::LayerNorm { .. } => {
                norm_upstream = true;
                same_upstream = false;
            }
            Layer::Residual { body } => {
                same_upstream |= body
                    .iter()
                    .any(|l| matches!(l, Layer::Conv(c) if is_same(c)));
                norm_upstream |= body.iter().any(is_norm);
            }
            Layer::Parallel { branches, .. } => {
                same_upstream |= branches
                    .iter()
                    .flatten()
                    .any(|l| matches!(l, Layer::Conv(c) if is_same(c)));
                norm_upstream |= branches.iter().flatten().any(is_norm);
            }
            Layer::BatchNorm { .. } | Layer::PRelu { .. } => {}
            l if l.is_unary_elementwise() => {}
            _ => {
                same_upstream = false;
                norm_upstream = false;
            }
        }
    }
    out
}
