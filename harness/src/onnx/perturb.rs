//! A model with every float it stores moved by a small relative amount: what a converter that
//! keeps weights at a lower precision may do to them, for measuring how much that can move the
//! outputs (docs/oracle.md, "Weights stored in f16").

use tract_onnx::pb;

use super::proto::{tensor_from_proto, tensor_to_proto};
use crate::tensor::Tensor;

/// Float attributes whose defaults a converter makes into constants of its own (OpenVINO's
/// Selu takes α and γ as constant inputs, which `ovc` compresses like any weight): the ONNX
/// spec's defaults, per operator of the default domain.
const FLOAT_DEFAULTS: &[(&str, &[(&str, f32)])] = &[
    ("Selu", &[("alpha", 1.673_263_2), ("gamma", 1.050_701)]),
    ("Elu", &[("alpha", 1.0)]),
    ("Celu", &[("alpha", 1.0)]),
    ("LeakyRelu", &[("alpha", 0.01)]),
    ("HardSigmoid", &[("alpha", 0.2), ("beta", 0.5)]),
    ("ThresholdedRelu", &[("alpha", 1.0)]),
    ("Gemm", &[("alpha", 1.0), ("beta", 1.0)]),
    ("BatchNormalization", &[("epsilon", 1e-5)]),
    ("InstanceNormalization", &[("epsilon", 1e-5)]),
    ("LayerNormalization", &[("epsilon", 1e-5)]),
];

/// `model` with every float it stores (float initializers, `Constant` values, float
/// attributes such as Selu's γ or BatchNormalization's ε, given or left at their defaults)
/// multiplied by `1 + δ`, each `δ` drawn uniformly from `[-relative, relative]` by a generator
/// seeded with `seed`. Tensors that do not decode are left as they are.
pub fn stored_floats(model: &pb::ModelProto, relative: f64, seed: u64) -> pb::ModelProto {
    let mut rng = SplitMix(seed);
    let mut factor = move || 1.0 + relative * (2.0 * rng.unit() - 1.0);
    let mut model = model.clone();
    if let Some(graph) = model.graph.as_mut() {
        for t in graph.initializer.iter_mut() {
            perturb_tensor(t, &mut factor);
        }
        for node in graph.node.iter_mut() {
            with_float_defaults(node);
            for a in node.attribute.iter_mut() {
                a.f = (f64::from(a.f) * factor()) as f32;
                for f in a.floats.iter_mut() {
                    *f = (f64::from(*f) * factor()) as f32;
                }
                if let Some(t) = a.t.as_mut() {
                    perturb_tensor(t, &mut factor);
                }
                for t in a.tensors.iter_mut() {
                    perturb_tensor(t, &mut factor);
                }
            }
        }
    }
    model
}

/// Sets the float attributes a node leaves at their defaults ([`FLOAT_DEFAULTS`]) to those
/// defaults, which changes nothing it computes.
fn with_float_defaults(node: &mut pb::NodeProto) {
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return;
    }
    let Some((_, defaults)) = FLOAT_DEFAULTS.iter().find(|(op, _)| *op == node.op_type) else {
        return;
    };
    for &(name, value) in defaults.iter() {
        if !node.attribute.iter().any(|a| a.name == name) {
            node.attribute.push(super::proto::attr::float(name, value));
        }
    }
}

/// Multiplies the elements of a float tensor by successive factors.
fn perturb_tensor(t: &mut pb::TensorProto, factor: &mut impl FnMut() -> f64) {
    let perturbed = match tensor_from_proto(t) {
        Ok(Tensor::F32(a)) => Tensor::F32(a.mapv(|v| (f64::from(v) * factor()) as f32)),
        Ok(Tensor::F64(a)) => Tensor::F64(a.mapv(|v| v * factor())),
        _ => return,
    };
    *t = tensor_to_proto(&t.name, &perturbed);
}

/// SplitMix64: a small, fixed generator, so that a perturbation is the same on every run.
struct SplitMix(u64);

impl SplitMix {
    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::attr;

    #[test]
    fn every_stored_float_moves_within_the_bound_and_nothing_else_does() {
        let w = tensor_to_proto(
            "w",
            &Tensor::F32(ndarray::arr1(&[1.0f32, -2.0, 4.0]).into_dyn()),
        );
        let k = tensor_to_proto("k", &Tensor::I64(ndarray::arr1(&[3i64]).into_dyn()));
        let node = pb::NodeProto {
            op_type: "Selu".into(),
            attribute: vec![attr::float("gamma", 1.0507), attr::ints("axes", &[1, 2])],
            ..Default::default()
        };
        let model = pb::ModelProto {
            graph: Some(pb::GraphProto {
                node: vec![node],
                initializer: vec![w, k.clone()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let relative = 2f64.powi(-11);
        let moved = stored_floats(&model, relative, 7);
        let g = moved.graph.as_ref().unwrap();
        let Ok(Tensor::F32(w)) = tensor_from_proto(&g.initializer[0]) else {
            panic!()
        };
        for (got, was) in w.iter().zip([1.0f32, -2.0, 4.0]) {
            let r = (f64::from(*got) / f64::from(was) - 1.0).abs();
            assert!(r > 0.0 && r <= relative * 1.01, "{got} from {was}");
        }
        assert_eq!(g.initializer[1], k);
        let gamma = g.node[0].attribute[0].f;
        assert!(gamma != 1.0507 && (f64::from(gamma) / 1.0507 - 1.0).abs() <= relative * 1.01);
        assert_eq!(g.node[0].attribute[1].ints, vec![1, 2]);
        assert_eq!(
            stored_floats(&model, relative, 7),
            moved,
            "same seed, same model"
        );
        assert_ne!(stored_floats(&model, relative, 8), moved);
    }
}
