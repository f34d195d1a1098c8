//! Size and arithmetic cost of a model, for the corpus table and FLOP rates.
//!
//! Convention: one multiply-accumulate (MAC) counts as two FLOPs; only Conv, ConvTranspose,
//! Gemm and MatMul are counted (normalizations, activations and pools are memory-bound and
//! small next to them in these models).

use std::collections::HashMap;

use anyhow::Result;
use tract_onnx::pb;

use crate::oracle::{self, Value};
use crate::tensor::Named;

/// Parameters and arithmetic of one model on one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelStats {
    /// Float weights stored in initializers.
    pub params: usize,
    /// Multiply-accumulates of one inference on the given input.
    pub macs: u64,
}

impl ModelStats {
    /// FLOPs (two per MAC).
    pub fn flops(&self) -> u64 {
        2 * self.macs
    }
}

fn shape(
    values: &HashMap<String, Value>,
    inits: &HashMap<&str, Vec<usize>>,
    name: &str,
) -> Option<Vec<usize>> {
    if let Some(s) = inits.get(name) {
        return Some(s.clone());
    }
    match values.get(name)? {
        Value::Float { value, .. } => Some(value.shape().to_vec()),
        Value::Int(v) => Some(v.shape().to_vec()),
    }
}

/// Counts parameters and MACs by evaluating the model once with the oracle (which gives every
/// intermediate shape, symbolic dimensions included).
pub fn stats(model: &pb::ModelProto, inputs: &[Named]) -> Result<ModelStats> {
    let graph = model.graph.clone().unwrap_or_default();
    let inits: HashMap<&str, Vec<usize>> = graph
        .initializer
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.dims.iter().map(|&d| d.max(0) as usize).collect(),
            )
        })
        .collect();
    let params = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == 1)
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum();
    let (_, values) = oracle::evaluate_all(model, inputs).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sh = |n: &str| shape(&values, &inits, n);
    let prod = |s: &[usize]| s.iter().product::<usize>() as u64;
    let mut macs = 0u64;
    for node in &graph.node {
        let (input, output) = (node.input.as_slice(), node.output.as_slice());
        let get = |i: usize| input.get(i).and_then(|n| sh(n));
        let out = output.first().and_then(|n| sh(n));
        macs += match node.op_type.as_str() {
            // W is [Cout, Cin/group, k...]: each output element sums Cin/group * k products.
            "Conv" => match (out, get(1)) {
                (Some(o), Some(w)) if w.len() >= 2 => prod(&o) * prod(&w[1..]),
                _ => 0,
            },
            // W is [Cin, Cout/group, k...]: each input element feeds Cout/group * k products.
            "ConvTranspose" => match (get(0), get(1)) {
                (Some(x), Some(w)) if w.len() >= 2 => prod(&x) * prod(&w[1..]),
                _ => 0,
            },
            "Gemm" | "MatMul" => match (out, get(0)) {
                (Some(o), Some(a)) => prod(&o) * *a.last().unwrap_or(&1) as u64,
                _ => 0,
            },
            _ => 0,
        };
    }
    Ok(ModelStats { params, macs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::net::{ConvSpec, Net};
    use crate::onnx::proto::Dim;
    use crate::tensor::Tensor;

    #[test]
    fn counts_conv_and_gemm_macs_by_hand() {
        // Conv 2 -> 3, k4 on L=10: 7 outputs * 3 channels * (2 * 4) = 168 MACs; 24 + 3 params.
        // Gemm 21 -> 5: 105 MACs; 105 + 5 params.
        let mut n = Net::new("t", 0, 17);
        let x = n.input("x", &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(10)]);
        let c = n.conv(&x, 2, 3, ConvSpec::k(4)).unwrap();
        let f = n.flatten(&c);
        let y = n.dense(&f, 21, 5).unwrap();
        let m = n.finish(&[(&y, vec![Dim::Fixed(1), Dim::Fixed(5)])]);
        let input = Named {
            name: "x".into(),
            tensor: Tensor::f32(&[1, 2, 10], vec![0.5; 20]).unwrap(),
        };
        let s = stats(&m, &[input]).unwrap();
        assert_eq!(s.macs, 168 + 105);
        assert_eq!(s.params, 24 + 3 + 105 + 5);
        assert_eq!(s.flops(), 2 * (168 + 105));
    }
}
