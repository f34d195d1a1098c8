//! The operator table: which kernel runs each op type, since which opset, with how many
//! inputs and outputs and which attributes. Checks common to all ops live here; version-specific
//! rules (an attribute that became an input) live in the kernels.

use tract_onnx::pb;

use super::node::{Node, Result};
use super::value::Value;
use super::{conv, elementwise as ew, layout, linalg, norm, pool, reduce};

/// A kernel: computes the node's outputs in order (optional outputs not requested may be
/// left out at the end).
pub(crate) type Kernel = fn(&Node) -> Result<Vec<Value>>;

/// How an op type is evaluated and what a node of it may look like.
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
    pub attrs: &'static [&'static str],
}

impl OpDef {
    /// Checks opset, arity and attribute names; the message says what is wrong.
    pub fn check(&self, node: &pb::NodeProto, opset: i64) -> std::result::Result<(), String> {
        if opset < self.since {
            return Err(format!("{} is not defined before opset {} (the model imports {opset})", node.op_type, self.since));
        }
        let (min_in, max_in) = self.inputs;
        if node.input.len() > max_in {
            return Err(format!("{} inputs given, at most {max_in} allowed", node.input.len()));
        }
        if let Some(i) = (0..min_in).find(|&i| node.input.get(i).is_none_or(|n| n.is_empty())) {
            return Err(format!("required input {i} is missing ({min_in} required)"));
        }
        let (min_out, max_out) = self.outputs;
        if node.output.len() > max_out || node.output.len() < min_out {
            return Err(format!("{} outputs, expected {min_out}..={max_out}", node.output.len()));
        }
        if let Some(a) = node.attribute.iter().find(|a| !self.attrs.contains(&a.name.as_str())) {
            return Err(format!("unknown attribute '{}'", a.name));
        }
        Ok(())
    }
}

const fn def(run: Kernel, since: i64, inputs: (usize, usize), outputs: (usize, usize), attrs: &'static [&'static str]) -> OpDef {
    OpDef { run, since, inputs, outputs, attrs }
}

/// Unary op without attributes.
const fn unary(run: Kernel, since: i64) -> OpDef {
    def(run, since, (1, 1), (1, 1), &[])
}

const MAX_POOL_ATTRS: &[&str] =
    &["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"];
const AVERAGE_POOL_ATTRS: &[&str] =
    &["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"];
const LP_POOL_ATTRS: &[&str] = &["auto_pad", "ceil_mode", "dilations", "kernel_shape", "p", "pads", "strides"];
const REDUCE_ATTRS: &[&str] = &["axes", "keepdims", "noop_with_empty_axes"];

/// The definition of `op_type` in the default domain, if the oracle implements it.
pub(crate) fn lookup(op_type: &str) -> Option<OpDef> {
    Some(match op_type {
        // Convolutions and pooling.
        "Conv" => def(conv::conv, 1, (2, 3), (1, 1), &["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"]),
        "ConvTranspose" => def(
            conv::conv_transpose,
            1,
            (2, 3),
            (1, 1),
            &["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"],
        ),
        "MaxPool" => def(pool::max_pool, 1, (1, 1), (1, 2), MAX_POOL_ATTRS),
        "AveragePool" => def(pool::average_pool, 1, (1, 1), (1, 1), AVERAGE_POOL_ATTRS),
        "LpPool" => def(pool::lp_pool, 2, (1, 1), (1, 1), LP_POOL_ATTRS),
        "GlobalAveragePool" => unary(pool::global_average_pool, 1),
        "GlobalMaxPool" => unary(pool::global_max_pool, 1),
        // Normalization.
        "BatchNormalization" => def(norm::batch_norm, 1, (5, 5), (1, 5), &["epsilon", "momentum", "spatial", "training_mode"]),
        "InstanceNormalization" => def(norm::instance_norm, 1, (3, 3), (1, 1), &["epsilon"]),
        "LayerNormalization" => def(norm::layer_norm, 17, (2, 3), (1, 3), &["axis", "epsilon", "stash_type"]),
        // Activations and elementwise math.
        "Relu" => unary(ew::relu, 1),
        "LeakyRelu" => def(ew::leaky_relu, 1, (1, 1), (1, 1), &["alpha"]),
        "PRelu" => def(ew::prelu, 1, (2, 2), (1, 1), &[]),
        "Clip" => def(ew::clip, 1, (1, 3), (1, 1), &["min", "max"]),
        "Sigmoid" => unary(ew::sigmoid, 1),
        "Tanh" => unary(ew::tanh, 1),
        "Elu" => def(ew::elu, 1, (1, 1), (1, 1), &["alpha"]),
        "Selu" => def(ew::selu, 1, (1, 1), (1, 1), &["alpha", "gamma"]),
        "HardSigmoid" => def(ew::hard_sigmoid, 1, (1, 1), (1, 1), &["alpha", "beta"]),
        "HardSwish" => unary(ew::hard_swish, 14),
        "Gelu" => def(ew::gelu, 20, (1, 1), (1, 1), &["approximate"]),
        "Softplus" => unary(ew::softplus, 1),
        "Softsign" => unary(ew::softsign, 1),
        "Mish" => unary(ew::mish, 18),
        "Exp" => unary(ew::exp, 1),
        "Log" => unary(ew::log, 1),
        "Sqrt" => unary(ew::sqrt, 1),
        "Erf" => unary(ew::erf, 9),
        "Abs" => unary(ew::abs, 1),
        "Neg" => unary(ew::neg, 1),
        "Reciprocal" => unary(ew::reciprocal, 1),
        "Add" => def(ew::add, 1, (2, 2), (1, 1), &[]),
        "Sub" => def(ew::sub, 1, (2, 2), (1, 1), &[]),
        "Mul" => def(ew::mul, 1, (2, 2), (1, 1), &[]),
        "Div" => def(ew::div, 1, (2, 2), (1, 1), &[]),
        // Linear algebra, reductions, softmax.
        "Gemm" => def(linalg::gemm, 1, (2, 3), (1, 1), &["alpha", "beta", "transA", "transB"]),
        "MatMul" => def(linalg::matmul, 1, (2, 2), (1, 1), &[]),
        "ReduceMean" => def(reduce::reduce_mean, 1, (1, 2), (1, 1), REDUCE_ATTRS),
        "ReduceMax" => def(reduce::reduce_max, 1, (1, 2), (1, 1), REDUCE_ATTRS),
        "ReduceMin" => def(reduce::reduce_min, 1, (1, 2), (1, 1), REDUCE_ATTRS),
        "ReduceSum" => def(reduce::reduce_sum, 1, (1, 2), (1, 1), REDUCE_ATTRS),
        "Softmax" => def(reduce::softmax, 1, (1, 1), (1, 1), &["axis"]),
        // Layout and shape computations.
        "Identity" => unary(layout::identity, 1),
        "Dropout" => def(layout::dropout, 1, (1, 3), (1, 2), &["ratio", "seed"]),
        "Flatten" => def(layout::flatten, 1, (1, 1), (1, 1), &["axis"]),
        "Reshape" => def(layout::reshape, 5, (2, 2), (1, 1), &["allowzero"]),
        "Squeeze" => def(layout::squeeze, 1, (1, 2), (1, 1), &["axes"]),
        "Unsqueeze" => def(layout::unsqueeze, 1, (1, 2), (1, 1), &["axes"]),
        "Transpose" => def(layout::transpose, 1, (1, 1), (1, 1), &["perm"]),
        "Concat" => def(layout::concat, 1, (1, usize::MAX), (1, 1), &["axis"]),
        "Pad" => def(layout::pad, 1, (1, 4), (1, 1), &["mode", "pads", "value"]),
        "Slice" => def(layout::slice, 1, (1, 5), (1, 1), &["axes", "ends", "starts"]),
        "Gather" => def(layout::gather, 1, (2, 2), (1, 1), &["axis"]),
        "Shape" => def(layout::shape, 1, (1, 1), (1, 1), &["end", "start"]),
        "Constant" => def(
            layout::constant,
            1,
            (0, 0),
            (1, 1),
            &["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"],
        ),
        "Cast" => def(layout::cast, 1, (1, 1), (1, 1), &["to", "saturate", "round_mode"]),
        _ => return None,
    })
}
