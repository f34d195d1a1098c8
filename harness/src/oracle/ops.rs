//! The operator table: which kernel runs each op type, since which opset, with how many
//! inputs and outputs and which attributes, per opset (attributes that became inputs, outputs
//! that appeared). Checks that follow from the table run here, before the kernel.

use tract_onnx::pb;

use super::node::{Node, Result};
use super::value::Value;
use super::{
    arith, cast, conv, elementwise as ew, indexing, layout, linalg, norm, pool, qlinear, quant,
    reduce,
};

/// A kernel: computes the node's outputs in order (optional outputs not requested may be
/// left out at the end).
pub(crate) type Kernel = fn(&Node) -> Result<Vec<Value>>;

/// How an op type is evaluated and what a node of it may look like in one opset.
pub(crate) struct OpDef {
    /// The kernel.
    pub run: Kernel,
    /// First default-domain opset defining the op.
    pub since: i64,
    /// Required inputs and most inputs.
    pub inputs: (usize, usize),
    /// Required outputs and most outputs.
    pub outputs: (usize, usize),
    /// Attributes the op accepts in some opset.
    pub attrs: &'static [Attr],
}

/// An attribute name and the opsets `since..until` that define it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr {
    name: &'static str,
    since: i64,
    until: i64,
}

/// An attribute defined in every opset.
const fn a(name: &'static str) -> Attr {
    Attr {
        name,
        since: 1,
        until: i64::MAX,
    }
}

/// An attribute introduced in opset `since`.
const fn since(name: &'static str, since: i64) -> Attr {
    Attr {
        name,
        since,
        until: i64::MAX,
    }
}

/// An attribute defined in opsets `since..until`.
const fn between(name: &'static str, since: i64, until: i64) -> Attr {
    Attr { name, since, until }
}

/// An attribute removed in opset `until` (usually turned into an input).
const fn until(name: &'static str, until: i64) -> Attr {
    Attr {
        name,
        since: 1,
        until,
    }
}

impl OpDef {
    /// Checks opset, arity and attributes; the message says what is wrong.
    pub fn check(&self, node: &pb::NodeProto, opset: i64) -> std::result::Result<(), String> {
        if opset < self.since {
            return Err(format!(
                "{} is not defined before opset {} (the model imports {opset})",
                node.op_type, self.since
            ));
        }
        let (min_in, max_in) = self.inputs;
        if node.input.len() > max_in {
            return Err(format!(
                "{} inputs given, at most {max_in} allowed in opset {opset}",
                node.input.len()
            ));
        }
        if let Some(i) = (0..min_in).find(|&i| node.input.get(i).is_none_or(|n| n.is_empty())) {
            return Err(format!("required input {i} is missing ({min_in} required)"));
        }
        let (min_out, max_out) = self.outputs;
        if node.output.len() > max_out || node.output.len() < min_out {
            return Err(format!(
                "{} outputs, expected {min_out}..={max_out} in opset {opset}",
                node.output.len()
            ));
        }
        for given in &node.attribute {
            let Some(attr) = self.attrs.iter().find(|a| a.name == given.name) else {
                return Err(format!("unknown attribute '{}'", given.name));
            };
            if opset < attr.since {
                return Err(format!(
                    "attribute '{}' is not defined before opset {}",
                    attr.name, attr.since
                ));
            }
            if opset >= attr.until {
                return Err(format!(
                    "attribute '{}' was removed in opset {} (it became an input)",
                    attr.name, attr.until
                ));
            }
        }
        Ok(())
    }
}

/// A `'static` attribute list built with the const constructors above.
macro_rules! attrs {
    ($($attr:expr),* $(,)?) => {
        const { &[$($attr),*] as &[Attr] }
    };
}

const ONE: (usize, usize) = (1, 1);
/// `consumed_inputs`, an in-place hint of opset 1 that opset 6 removed; it does not change
/// the result.
const CONSUMED: Attr = until("consumed_inputs", 6);
/// Opset 1–6 elementwise arithmetic: broadcasting only with `broadcast=1`, B aligned at `axis`.
const LEGACY_ARITH: &[Attr] = &[until("axis", 7), until("broadcast", 7), CONSUMED];
const CONV: &[Attr] = &[
    a("auto_pad"),
    a("dilations"),
    a("group"),
    a("kernel_shape"),
    a("pads"),
    a("strides"),
];
const CONV_TRANSPOSE: &[Attr] = &[
    a("auto_pad"),
    a("dilations"),
    a("group"),
    a("kernel_shape"),
    a("output_padding"),
    a("output_shape"),
    a("pads"),
    a("strides"),
];
const MAX_POOL: &[Attr] = &[
    a("auto_pad"),
    since("ceil_mode", 10),
    since("dilations", 10),
    a("kernel_shape"),
    a("pads"),
    since("storage_order", 8),
    a("strides"),
];
const AVERAGE_POOL: &[Attr] = &[
    a("auto_pad"),
    since("ceil_mode", 10),
    since("count_include_pad", 7),
    since("dilations", 19),
    a("kernel_shape"),
    a("pads"),
    a("strides"),
];
const LP_POOL: &[Attr] = &[
    a("auto_pad"),
    since("ceil_mode", 18),
    since("dilations", 18),
    a("kernel_shape"),
    a("p"),
    a("pads"),
    a("strides"),
];
const BATCH_NORM: &[Attr] = &[
    CONSUMED,
    a("epsilon"),
    until("is_test", 7),
    a("momentum"),
    until("spatial", 9),
    since("training_mode", 14),
];
const REDUCE_13: &[Attr] = &[
    until("axes", 13),
    a("keepdims"),
    since("noop_with_empty_axes", 13),
];
const REDUCE_18: &[Attr] = &[
    until("axes", 18),
    a("keepdims"),
    since("noop_with_empty_axes", 18),
];
const CONSTANT: &[Attr] = &[
    a("value"),
    since("sparse_value", 11),
    since("value_float", 12),
    since("value_floats", 12),
    since("value_int", 12),
    since("value_ints", 12),
    since("value_string", 12),
    since("value_strings", 12),
];
/// QuantizeLinear: per-axis from opset 13, `saturate` (float8) from 19, blocked quantization and
/// `output_dtype` from 21, the division's `precision` from 23.
const QUANTIZE: &[Attr] = &[
    since("axis", 13),
    since("block_size", 21),
    since("output_dtype", 21),
    since("precision", 23),
    since("saturate", 19),
];
/// DequantizeLinear: per-axis from opset 13, blocked from 21, `output_dtype` from 23.
const DEQUANTIZE: &[Attr] = &[
    since("axis", 13),
    since("block_size", 21),
    since("output_dtype", 23),
];

/// The definition of `op_type` in the default domain at `opset`, if the oracle implements it.
#[rustfmt::skip]
pub(crate) fn lookup(op_type: &str, opset: i64) -> Option<OpDef> {
    // Arity that changed at opset `at`.
    let from = |at: i64, before: (usize, usize), after: (usize, usize)| if opset < at { before } else { after };
    let def = |run: Kernel, since: i64, inputs, outputs, attrs| OpDef { run, since, inputs, outputs, attrs };
    let unary = |run: Kernel, since: i64| OpDef { run, since, inputs: ONE, outputs: ONE, attrs: &[] };
    // A unary op of opset 1, whose first version took `consumed_inputs`.
    let unary1 = |run: Kernel| OpDef { run, since: 1, inputs: ONE, outputs: ONE, attrs: attrs![CONSUMED] };
    Some(match op_type {
        // Convolutions and pooling.
        "Conv" => def(conv::conv, 1, (2, 3), ONE, CONV),
        "ConvTranspose" => def(conv::conv_transpose, 1, (2, 3), ONE, CONV_TRANSPOSE),
        "CausalConvWithState" => def(conv::causal_conv_with_state, 27, (2, 4), (2, 2), attrs![a("activation")]),
        "MaxPool" => def(pool::max_pool, 1, ONE, from(8, ONE, (1, 2)), MAX_POOL),
        "AveragePool" => def(pool::average_pool, 1, ONE, ONE, AVERAGE_POOL),
        "LpPool" => def(pool::lp_pool, 1, ONE, ONE, LP_POOL),
        "GlobalAveragePool" => unary(pool::global_average_pool, 1),
        "GlobalMaxPool" => unary(pool::global_max_pool, 1),
        // Normalization.
        "BatchNormalization" => def(norm::batch_norm, 1, (5, 5), from(14, (1, 5), (1, 3)), BATCH_NORM),
        "InstanceNormalization" => def(norm::instance_norm, 1, (3, 3), ONE, attrs![CONSUMED, a("epsilon")]),
        "LayerNormalization" => def(norm::layer_norm, 17, (2, 3), (1, 3), attrs![a("axis"), a("epsilon"), a("stash_type")]),
        // Activations and elementwise math.
        "Relu" => unary1(ew::relu),
        "LeakyRelu" => def(ew::leaky_relu, 1, ONE, ONE, attrs![a("alpha"), CONSUMED]),
        "PRelu" => def(ew::prelu, 1, (2, 2), ONE, attrs![CONSUMED]),
        "Clip" => def(ew::clip, 1, from(11, ONE, (1, 3)), ONE, attrs![CONSUMED, until("min", 11), until("max", 11)]),
        "Sigmoid" => unary1(ew::sigmoid),
        "Tanh" => unary1(ew::tanh),
        "Elu" => def(ew::elu, 1, ONE, ONE, attrs![a("alpha"), CONSUMED]),
        "Selu" => def(ew::selu, 1, ONE, ONE, attrs![a("alpha"), a("gamma"), CONSUMED]),
        "HardSigmoid" => def(ew::hard_sigmoid, 1, ONE, ONE, attrs![a("alpha"), a("beta"), CONSUMED]),
        "HardSwish" => unary(ew::hard_swish, 14),
        "Gelu" => def(ew::gelu, 20, ONE, ONE, attrs![a("approximate")]),
        "Softplus" => unary(ew::softplus, 1),
        "Softsign" => unary(ew::softsign, 1),
        "Mish" => unary(ew::mish, 18),
        "Exp" => unary1(ew::exp),
        "Log" => unary1(ew::log),
        "Sqrt" => unary1(ew::sqrt),
        "Erf" => unary(ew::erf, 9),
        "Abs" => unary1(arith::abs),
        "Neg" => unary1(arith::neg),
        "Reciprocal" => unary1(arith::reciprocal),
        "Add" => def(arith::add, 1, (2, 2), ONE, LEGACY_ARITH),
        "Sub" => def(arith::sub, 1, (2, 2), ONE, LEGACY_ARITH),
        "Mul" => def(arith::mul, 1, (2, 2), ONE, LEGACY_ARITH),
        "Div" => def(arith::div, 1, (2, 2), ONE, LEGACY_ARITH),
        // Linear algebra, reductions, softmax.
        "Gemm" => def(linalg::gemm, 1, from(11, (3, 3), (2, 3)), ONE, attrs![a("alpha"), a("beta"), until("broadcast", 7), a("transA"), a("transB")]),
        "MatMul" => def(linalg::matmul, 1, (2, 2), ONE, attrs![]),
        "ReduceMean" => def(reduce::reduce_mean, 1, from(18, ONE, (1, 2)), ONE, REDUCE_18),
        "ReduceMax" => def(reduce::reduce_max, 1, from(18, ONE, (1, 2)), ONE, REDUCE_18),
        "ReduceMin" => def(reduce::reduce_min, 1, from(18, ONE, (1, 2)), ONE, REDUCE_18),
        "ReduceSum" => def(reduce::reduce_sum, 1, from(13, ONE, (1, 2)), ONE, REDUCE_13),
        "Softmax" => def(reduce::softmax, 1, ONE, ONE, attrs![a("axis")]),
        // Layout, indexing and shape computations.
        "Identity" => unary(layout::identity, 1),
        "Dropout" => def(layout::dropout, 1, from(12, ONE, (1, 3)), (1, 2), attrs![CONSUMED, until("is_test", 7), until("ratio", 12), since("seed", 12)]),
        "Flatten" => def(layout::flatten, 1, ONE, ONE, attrs![a("axis")]),
        "Reshape" => def(layout::reshape, 1, from(5, ONE, (2, 2)), ONE, attrs![since("allowzero", 14), until("consumed_inputs", 5), until("shape", 5)]),
        "Squeeze" => def(layout::squeeze, 1, from(13, ONE, (1, 2)), ONE, attrs![until("axes", 13)]),
        "Unsqueeze" => def(layout::unsqueeze, 1, from(13, ONE, (2, 2)), ONE, attrs![until("axes", 13)]),
        "Transpose" => def(layout::transpose, 1, ONE, ONE, attrs![a("perm")]),
        "Concat" => def(layout::concat, 1, (1, usize::MAX), ONE, attrs![a("axis")]),
        "Shape" => def(layout::shape, 1, ONE, ONE, attrs![since("end", 15), since("start", 15)]),
        "Pad" => def(indexing::pad, 1, from(11, ONE, from(18, (2, 3), (2, 4))), ONE, attrs![a("mode"), until("paddings", 2), between("pads", 2, 11), until("value", 11)]),
        "Slice" => def(indexing::slice, 1, from(10, ONE, (3, 5)), ONE, attrs![until("axes", 10), until("ends", 10), until("starts", 10)]),
        "Gather" => def(indexing::gather, 1, (2, 2), ONE, attrs![a("axis")]),
        "Constant" => def(cast::constant, 1, (0, 0), ONE, CONSTANT),
        "Cast" => def(cast::cast, 1, ONE, ONE, attrs![since("round_mode", 24), a("to"), since("saturate", 19)]),
        // Linear quantization.
        "QuantizeLinear" => def(quant::quantize_linear, 10, (2, 3), ONE, QUANTIZE),
        "DequantizeLinear" => def(quant::dequantize_linear, 10, (2, 3), ONE, DEQUANTIZE),
        "QLinearConv" => def(qlinear::qlinear_conv, 10, (8, 9), ONE, CONV),
        "QLinearMatMul" => def(qlinear::qlinear_matmul, 10, (8, 8), ONE, attrs![]),
        "ConvInteger" => def(qlinear::conv_integer, 10, (2, 4), ONE, CONV),
        "MatMulInteger" => def(qlinear::matmul_integer, 10, (2, 4), ONE, attrs![]),
        _ => return None,
    })
}
