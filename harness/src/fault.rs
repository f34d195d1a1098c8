//! Deliberate converter bugs, for checking that the harness catches them.
//!
//! `harness inject-fault KIND IN OUT` rewrites a model the way a buggy converter would; used as
//! `--converter "exec:harness inject-fault reverse-conv-kernels {input} {output}"`, it must turn
//! passing cases into failures. This is mutation testing of the harness itself.

use anyhow::{bail, Context, Result};
use tract_onnx::pb;

use crate::onnx::proto::{attr, tensor_from_proto, tensor_to_proto};
use crate::tensor::Tensor;

/// The faults that can be injected.
pub const KINDS: &[(&str, &str)] = &[
    (
        "reverse-conv-kernels",
        "reverse every Conv kernel along the length axis",
    ),
    (
        "swap-pads",
        "swap begin and end pads of every Conv and pool",
    ),
    ("drop-conv-bias", "remove the bias input of every Conv"),
    (
        "perturb-weights",
        "scale every float initializer by 1 + 1e-3",
    ),
    (
        "gelu-tanh",
        "compute every exact Gelu with its tanh approximation (approximate=\"tanh\")",
    ),
];

/// Applies fault `kind` to `model`. Returns how many places were changed.
pub fn inject(kind: &str, model: &mut pb::ModelProto) -> Result<usize> {
    let graph = model.graph.as_mut().context("model has no graph")?;
    let mut changed = 0;
    match kind {
        "reverse-conv-kernels" => {
            let weights: Vec<String> = graph
                .node
                .iter()
                .filter(|n| n.op_type == "Conv")
                .filter_map(|n| n.input.get(1).cloned())
                .collect();
            for init in graph
                .initializer
                .iter_mut()
                .filter(|t| weights.contains(&t.name))
            {
                let Tensor::F32(mut w) = tensor_from_proto(init)? else {
                    continue;
                };
                let last = w.ndim() - 1;
                w.invert_axis(ndarray::Axis(last));
                *init =
                    tensor_to_proto(&init.name, &Tensor::F32(w.as_standard_layout().to_owned()));
                changed += 1;
            }
        }
        "swap-pads" => {
            for node in graph
                .node
                .iter_mut()
                .filter(|n| matches!(n.op_type.as_str(), "Conv" | "MaxPool" | "AveragePool"))
            {
                for a in node.attribute.iter_mut().filter(|a| a.name == "pads") {
                    let half = a.ints.len() / 2;
                    let (begin, end) = a.ints.split_at_mut(half);
                    if begin != end {
                        begin.swap_with_slice(end);
                        changed += 1;
                    }
                }
                for a in node.attribute.iter_mut().filter(|a| a.name == "auto_pad") {
                    let swapped: &[u8] = match a.s.as_slice() {
                        b"SAME_UPPER" => b"SAME_LOWER",
                        b"SAME_LOWER" => b"SAME_UPPER",
                        _ => continue,
                    };
                    a.s = swapped.to_vec();
                    changed += 1;
                }
            }
        }
        "drop-conv-bias" => {
            for node in graph
                .node
                .iter_mut()
                .filter(|n| n.op_type == "Conv" && n.input.len() > 2)
            {
                node.input.truncate(2);
                changed += 1;
            }
        }
        "perturb-weights" => {
            for init in graph.initializer.iter_mut() {
                if let Tensor::F32(w) = tensor_from_proto(init)? {
                    *init = tensor_to_proto(&init.name, &Tensor::F32(w.mapv(|v| v * (1.0 + 1e-3))));
                    changed += 1;
                }
            }
        }
        // What some converters do silently: within the worst-case bound on most models, so
        // it is the `drift` check's to catch (docs/verdicts.md).
        "gelu-tanh" => {
            for node in graph.node.iter_mut().filter(|n| n.op_type == "Gelu") {
                node.attribute.retain(|a| a.name != "approximate");
                node.attribute.push(attr::string("approximate", "tanh"));
                changed += 1;
            }
        }
        other => {
            let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
            bail!("unknown fault '{other}': use one of {}", kinds.join(", "))
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv_model() -> pb::ModelProto {
        let w = Tensor::f32(&[1, 1, 3], vec![1.0, 2.0, 3.0]).unwrap();
        pb::ModelProto {
            graph: Some(pb::GraphProto {
                node: vec![pb::NodeProto {
                    op_type: "Conv".into(),
                    input: vec!["x".into(), "w".into(), "b".into()],
                    output: vec!["y".into()],
                    attribute: vec![attr::ints("pads", &[0, 2])],
                    ..Default::default()
                }],
                initializer: vec![tensor_to_proto("w", &w)],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reversing_kernels_reverses_the_length_axis() {
        let mut m = conv_model();
        assert_eq!(inject("reverse-conv-kernels", &mut m).unwrap(), 1);
        let w = tensor_from_proto(&m.graph.unwrap().initializer[0]).unwrap();
        assert_eq!(w, Tensor::f32(&[1, 1, 3], vec![3.0, 2.0, 1.0]).unwrap());
    }

    #[test]
    fn swapping_pads_and_dropping_bias() {
        let mut m = conv_model();
        assert_eq!(inject("swap-pads", &mut m).unwrap(), 1);
        assert_eq!(inject("drop-conv-bias", &mut m).unwrap(), 1);
        let node = &m.graph.unwrap().node[0];
        assert_eq!(node.attribute[0].ints, vec![2, 0]);
        assert_eq!(node.input.len(), 2);
    }

    #[test]
    fn gelu_becomes_its_tanh_approximation() {
        let mut m = conv_model();
        let graph = m.graph.as_mut().unwrap();
        graph.node.push(pb::NodeProto {
            op_type: "Gelu".into(),
            input: vec!["y".into()],
            output: vec!["z".into()],
            attribute: vec![attr::string("approximate", "none")],
            ..Default::default()
        });
        assert_eq!(inject("gelu-tanh", &mut m).unwrap(), 1);
        let node = &m.graph.unwrap().node[1];
        assert_eq!(node.attribute.len(), 1);
        assert_eq!(node.attribute[0].s, b"tanh");
    }

    #[test]
    fn unknown_fault_is_an_error() {
        assert!(inject("nope", &mut conv_model()).is_err());
    }
}
