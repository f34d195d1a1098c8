//! Floating-point operations of one inference, counted from the ONNX graph, so a latency
//! also reads as GFLOP/s.
//!
//! Shapes come from the oracle's evaluation of the model on its own inputs (every tensor of
//! the graph, by name), so the count is exact for the shapes the run uses.
//!
//! Convention (one multiply-add is two operations, as in most published GFLOP/s figures):
//!
//! | op | operations |
//! |---|---|
//! | Conv | 2 · N · C_out · ∏ out spatial · (C_in / group) · ∏ kernel, plus one per output with a bias |
//! | ConvTranspose | 2 · N · C_in · ∏ in spatial · (C_out / group) · ∏ kernel, plus one per output with a bias |
//! | Gemm | 2 · M · N · K, plus one per output with C |
//! | MatMul | 2 · ∏ batch · M · N · K |
//! | MaxPool, AveragePool, LpPool | one per window element per output (∏ kernel per output) |
//! | GlobalAveragePool, GlobalMaxPool, Reduce* | one per input element |
//! | BatchNormalization | two per element (inference: a scale and a shift) |
//! | InstanceNormalization, LayerNormalization | five per element (mean, variance, centre, scale, shift) |
//! | Softmax | three per element (exponential, sum, division) |
//! | other element-wise ops (Add, Relu, Sigmoid, Tanh, Clip, ...) | one per output element, transcendental or not |
//! | layout and indexing ops (Reshape, Flatten, Transpose, Pad, Slice, Concat, Cast, ...) | none |

use std::collections::HashMap;

use anyhow::{anyhow, Result};
use tract_onnx::pb;

use crate::oracle::{self, Value};
use crate::tensor::Named;

/// Operations of one inference of `model` on `inputs`.
pub fn count(model: &pb::ModelProto, inputs: &[Named]) -> Result<u64> {
    let (_, values) =
        oracle::evaluate_all(model, inputs).map_err(|e| anyhow!("cannot infer shapes: {e}"))?;
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("model without graph"))?;
    let mut total = 0u64;
    for node in &graph.node {
        total = total.saturating_add(node_flops(node, &values)?);
    }
    Ok(total)
}

fn elements(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

fn ints(node: &pb::NodeProto, name: &str) -> Option<Vec<i64>> {
    crate::onnx::proto::attr(node, name).map(|a| a.ints.clone())
}

fn int(node: &pb::NodeProto, name: &str, default: i64) -> i64 {
    crate::onnx::proto::attr(node, name)
        .map(|a| a.i)
        .unwrap_or(default)
}

/// Operations of one node, from the shapes of its inputs and outputs.
fn node_flops(node: &pb::NodeProto, values: &HashMap<String, Value>) -> Result<u64> {
    let shape = |name: &str| -> Result<Vec<usize>> {
        values
            .get(name)
            .map(|v| v.shape().to_vec())
            .ok_or_else(|| anyhow!("{}: no shape for tensor '{name}'", node.op_type))
    };
    let input = |i: usize| -> Result<Vec<usize>> {
        let name = node
            .input
            .get(i)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| anyhow!("{}: missing input {i}", node.op_type))?;
        shape(name)
    };
    let has_input = |i: usize| node.input.get(i).is_some_and(|n| !n.is_empty());
    let output = || -> Result<Vec<usize>> {
        let name = node
            .output
            .first()
            .ok_or_else(|| anyhow!("{}: no output", node.op_type))?;
        shape(name)
    };
    let op = node.op_type.as_str();
    Ok(match op {
        "Conv" => {
            let w = input(1)?; // [C_out, C_in / group, k...]
            let y = output()?; // [N, C_out, out...]
            let macs = elements(&y) * elements(&w[1..]);
            2 * macs + if has_input(2) { elements(&y) } else { 0 }
        }
        "ConvTranspose" => {
            let x = input(0)?; // [N, C_in, in...]
            let w = input(1)?; // [C_in, C_out / group, k...]
            let macs = elements(&x) * elements(&w[1..]);
            2 * macs
                + if has_input(2) {
                    elements(&output()?)
                } else {
                    0
                }
        }
        "Gemm" => {
            let a = input(0)?;
            let y = output()?;
            let k = if int(node, "transA", 0) == 0 {
                a[1]
            } else {
                a[0]
            } as u64;
            2 * elements(&y) * k + if has_input(2) { elements(&y) } else { 0 }
        }
        "MatMul" => {
            let a = input(0)?;
            let k = *a.last().unwrap_or(&1) as u64;
            2 * elements(&output()?) * k
        }
        "MaxPool" | "AveragePool" | "LpPool" => {
            let kernel = ints(node, "kernel_shape").unwrap_or_default();
            elements(&output()?) * kernel.iter().map(|&k| k.max(1) as u64).product::<u64>()
        }
        "GlobalAveragePool" | "GlobalMaxPool" | "ReduceMean" | "ReduceMax" | "ReduceMin"
        | "ReduceSum" => elements(&input(0)?),
        "BatchNormalization" => 2 * elements(&input(0)?),
        "InstanceNormalization" | "LayerNormalization" | "GroupNormalization" => {
            5 * elements(&input(0)?)
        }
        "Softmax" | "LogSoftmax" => 3 * elements(&input(0)?),
        "Identity" | "Dropout" | "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" | "Transpose"
        | "Concat" | "Shape" | "Pad" | "Slice" | "Gather" | "Constant" | "Cast" | "Split"
        | "Expand" | "Tile" => 0,
        _ => elements(&output()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{attr as av, value_info, Dim};
    use crate::tensor::{DType, Tensor};

    fn init(name: &str, shape: &[usize]) -> pb::TensorProto {
        let n = shape.iter().product();
        crate::onnx::proto::tensor_to_proto(name, &Tensor::f32(shape, vec![0.5; n]).unwrap())
    }

    fn node(
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<pb::AttributeProto>,
    ) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        }
    }

    /// The reference CNN1D (corpus `cnn1d`): Conv1d(1→32, k3) + ReLU, MaxPool(2), Flatten, Gemm(32·48 → 10).
    fn cnn1d() -> pb::ModelProto {
        let graph = pb::GraphProto {
            node: vec![
                node(
                    "Conv",
                    &["x", "w", "b"],
                    "c",
                    vec![av::ints("kernel_shape", &[3])],
                ),
                node("Relu", &["c"], "r", vec![]),
                node(
                    "MaxPool",
                    &["r"],
                    "p",
                    vec![av::ints("kernel_shape", &[2]), av::ints("strides", &[2])],
                ),
                node("Flatten", &["p"], "f", vec![]),
                node("Gemm", &["f", "fw", "fb"], "y", vec![av::int("transB", 1)]),
            ],
            initializer: vec![
                init("w", &[32, 1, 3]),
                init("b", &[32]),
                init("fw", &[10, 32 * 49]),
                init("fb", &[10]),
            ],
            input: vec![value_info(
                "x",
                DType::Float,
                &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(100)],
            )],
            output: vec![value_info(
                "y",
                DType::Float,
                &[Dim::Fixed(1), Dim::Fixed(10)],
            )],
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(graph),
            ..Default::default()
        }
    }

    #[test]
    fn the_cnn1d_count_matches_a_hand_count() {
        let x = Named {
            name: "x".into(),
            tensor: Tensor::f32(&[1, 1, 100], vec![0.25; 100]).unwrap(),
        };
        let flops = count(&cnn1d(), &[x]).unwrap();
        // Conv: 32 channels x 98 outputs x 3 taps, 2 each, + 32x98 bias adds
        let conv = 2 * 32 * 98 * 3 + 32 * 98;
        // Relu: 32x98; MaxPool k2: 32x49 outputs x 2
        let relu = 32 * 98;
        let pool = 32 * 49 * 2;
        // Gemm: 10 outputs x 1568 inputs, 2 each, + 10 bias adds
        let gemm = 2 * 10 * 1568 + 10;
        assert_eq!(flops, (conv + relu + pool + gemm) as u64);
    }

    #[test]
    fn a_model_the_oracle_refuses_is_an_error_not_a_panic() {
        let mut m = cnn1d();
        m.graph.as_mut().unwrap().initializer[0] = init("w", &[32, 2, 3]);
        let x = Named {
            name: "x".into(),
            tensor: Tensor::f32(&[1, 1, 100], vec![0.25; 100]).unwrap(),
        };
        assert!(count(&m, &[x]).is_err());
    }
}
