//! Size and arithmetic cost of a model, for the corpus table.
//!
//! Operations are counted by [`crate::latency::flops`], the one counter of the project, so the
//! corpus table's MFLOPs and the perf report's GFLOP/s use the same convention.

use anyhow::Result;
use tract_onnx::pb;

use crate::tensor::Named;

/// Parameters and arithmetic of one model on one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelStats {
    /// Float weights stored in initializers.
    pub params: usize,
    /// Floating-point operations of one inference on the given input (see
    /// [`crate::latency::flops`] for the convention).
    pub flops: u64,
}

/// Counts parameters (float initializer elements) and the operations of one inference on
/// `inputs` (the oracle's evaluation gives every intermediate shape, symbolic ones included).
pub fn stats(model: &pb::ModelProto, inputs: &[Named]) -> Result<ModelStats> {
    let params = model
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .filter(|t| t.data_type == 1)
        .map(|t| t.dims.iter().map(|&d| d.max(0) as usize).product::<usize>())
        .sum();
    let flops = crate::flops::count(model, inputs)?;
    Ok(ModelStats { params, flops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::net::{ConvSpec, Net};
    use crate::onnx::proto::Dim;
    use crate::tensor::Tensor;

    #[test]
    fn counts_parameters_and_operations_by_hand() {
        // Conv 2 -> 3, k4 on L=10: 7 outputs * 3 channels * (2 * 4) = 168 MACs, 21 bias adds;
        // 24 + 3 params. Flatten: none. Gemm 21 -> 5: 105 MACs, 5 bias adds; 105 + 5 params.
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
        assert_eq!(s.params, 24 + 3 + 105 + 5);
        assert_eq!(s.flops, 2 * (168 + 105) + 21 + 5);
    }
}
