//! Packing: several models merged into one graph, so that a converter with a large fixed cost
//! per model (OpenVINO's convert and compile) pays it once for all of them.
//!
//! Each member keeps its own inputs, outputs, initializers and nodes under a prefix of its own
//! (`p3_` for the fourth), its symbolic dimensions too (so that `N` of one member and `N` of
//! another are not forced equal); the merged graph is the members side by side, with no edge
//! between them. Only models of one opset (and one set of imported domains) merge, and only
//! flat graphs: a node with a subgraph attribute, a sparse initializer or a model-local
//! function is not packed.

use std::ops::Range;

use tract_onnx::pb;

/// A merged model and where each member's outputs are in it.
#[derive(Debug, Clone)]
pub struct Pack {
    /// The merged model.
    pub model: pb::ModelProto,
    /// Per member, the range of the merged graph's outputs that are its outputs, in order.
    pub outputs: Vec<Range<usize>>,
}

/// Why models cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot pack: {0}")]
pub struct NotPackable(pub String);

/// The prefix of member `k`'s names.
pub fn prefix(k: usize) -> String {
    format!("p{k}_")
}

/// Merges `models` into one graph, member `k`'s names prefixed by [`prefix`]`(k)`.
pub fn merge(models: &[pb::ModelProto]) -> Result<Pack, NotPackable> {
    let first = models
        .first()
        .ok_or_else(|| NotPackable("no model".into()))?;
    let opsets = opset_key(first);
    let mut graph = pb::GraphProto {
        name: "pack".into(),
        ..Default::default()
    };
    let mut outputs = Vec::with_capacity(models.len());
    for (k, model) in models.iter().enumerate() {
        if opset_key(model) != opsets {
            return Err(NotPackable(format!(
                "member {k} imports opsets {:?}, member 0 {opsets:?}",
                opset_key(model)
            )));
        }
        let member = model
            .graph
            .as_ref()
            .ok_or_else(|| NotPackable(format!("member {k} has no graph")))?;
        flat(member).map_err(|m| NotPackable(format!("member {k}: {m}")))?;
        let renamed = renamed(member, &prefix(k));
        let start = graph.output.len();
        graph.node.extend(renamed.node);
        graph.initializer.extend(renamed.initializer);
        graph.input.extend(renamed.input);
        graph.output.extend(renamed.output);
        graph.value_info.extend(renamed.value_info);
        outputs.push(start..graph.output.len());
    }
    Ok(Pack {
        model: pb::ModelProto {
            ir_version: models.iter().map(|m| m.ir_version).max().unwrap_or(8),
            opset_import: first.opset_import.clone(),
            producer_name: "conv1d-harness pack".into(),
            graph: Some(graph),
            ..Default::default()
        },
        outputs,
    })
}

/// The imported opsets, in a canonical order (the empty domain is `ai.onnx`): models merge
/// only when theirs are equal.
pub fn opset_key(model: &pb::ModelProto) -> Vec<(String, i64)> {
    let mut key: Vec<(String, i64)> = model
        .opset_import
        .iter()
        .map(|o| {
            let domain = if o.domain == "ai.onnx" { "" } else { &o.domain };
            (domain.to_string(), o.version)
        })
        .collect();
    key.sort();
    key
}

/// Whether the graph is one level deep, with dense initializers only.
fn flat(graph: &pb::GraphProto) -> Result<(), String> {
    if !graph.sparse_initializer.is_empty() {
        return Err("sparse initializers".into());
    }
    for node in &graph.node {
        if node
            .attribute
            .iter()
            .any(|a| a.g.is_some() || a.r#type == pb::attribute_proto::AttributeType::Graphs as i32)
        {
            return Err(format!(
                "node '{}' ({}) has a subgraph",
                node.name, node.op_type
            ));
        }
    }
    Ok(())
}

/// `graph` with every value, node and symbolic dimension name prefixed.
fn renamed(graph: &pb::GraphProto, prefix: &str) -> pb::GraphProto {
    let name = |n: &str| {
        if n.is_empty() {
            String::new()
        } else {
            format!("{prefix}{n}")
        }
    };
    let value_info = |v: &pb::ValueInfoProto| {
        let mut v = v.clone();
        v.name = name(&v.name);
        if let Some(pb::type_proto::Value::TensorType(t)) =
            v.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            for d in t.shape.iter_mut().flat_map(|s| s.dim.iter_mut()) {
                if let Some(pb::tensor_shape_proto::dimension::Value::DimParam(p)) = &mut d.value {
                    *p = name(p);
                }
            }
        }
        v
    };
    pb::GraphProto {
        node: graph
            .node
            .iter()
            .map(|n| pb::NodeProto {
                input: n.input.iter().map(|i| name(i)).collect(),
                output: n.output.iter().map(|o| name(o)).collect(),
                name: name(&n.name),
                ..n.clone()
            })
            .collect(),
        initializer: graph
            .initializer
            .iter()
            .map(|t| pb::TensorProto {
                name: name(&t.name),
                ..t.clone()
            })
            .collect(),
        input: graph.input.iter().map(value_info).collect(),
        output: graph.output.iter().map(value_info).collect(),
        value_info: graph.value_info.iter().map(value_info).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};
    use crate::onnx::emit::emit;
    use crate::oracle;
    use crate::tensor::Named;

    fn case(index: u64, opset: i64) -> (pb::ModelProto, Vec<Named>) {
        case_where(index, opset, |_| true)
    }

    fn case_where(
        index: u64,
        opset: i64,
        wanted: impl Fn(&crate::gen::Case) -> bool,
    ) -> (pb::ModelProto, Vec<Named>) {
        let cfg = GenConfig {
            opset: Some(opset),
            ..GenConfig::default()
        };
        let c = (index..index + 200)
            .map(|i| generate(7, i, &cfg))
            .find(|c| c.model.negative.is_none() && wanted(c))
            .unwrap();
        (emit(&c.model).unwrap(), c.inputs())
    }

    #[test]
    fn a_pack_computes_what_its_members_compute_apart() {
        let members: Vec<_> = (0..5).map(|i| case(i * 10, 13)).collect();
        let models: Vec<_> = members.iter().map(|(m, _)| m.clone()).collect();
        let pack = merge(&models).unwrap();
        let fed: Vec<Named> = members
            .iter()
            .enumerate()
            .flat_map(|(k, (_, inputs))| {
                inputs.iter().map(move |n| Named {
                    name: format!("{}{}", prefix(k), n.name),
                    tensor: n.tensor.clone(),
                })
            })
            .collect();
        let packed = oracle::evaluate(&pack.model, &fed).unwrap();
        for (k, (model, inputs)) in members.iter().enumerate() {
            let apart = oracle::evaluate(model, inputs).unwrap();
            let range = pack.outputs[k].clone();
            assert_eq!(range.len(), apart.outputs.len());
            for (a, p) in apart.outputs.iter().zip(&packed.outputs[range]) {
                assert_eq!(p.name, format!("{}{}", prefix(k), a.name));
                assert_eq!(a.value, p.value);
                assert_eq!(a.bound, p.bound);
            }
        }
    }

    #[test]
    fn symbolic_dimensions_stay_apart_and_other_opsets_do_not_merge() {
        let (a, _) = case_where(0, 13, |c| c.model.symbolic.length);
        let pack = merge(&[a.clone(), a.clone()]).unwrap();
        let params: Vec<String> = pack
            .model
            .graph
            .as_ref()
            .unwrap()
            .input
            .iter()
            .flat_map(|v| crate::onnx::proto::declared_type(v).unwrap().1)
            .filter_map(|d| match d {
                crate::onnx::proto::Dim::Symbol(s) => Some(s),
                crate::onnx::proto::Dim::Fixed(_) => None,
            })
            .collect();
        assert!(params.iter().any(|p| p.starts_with("p0_")), "{params:?}");
        assert!(params.iter().any(|p| p.starts_with("p1_")), "{params:?}");
        assert!(
            params
                .iter()
                .all(|p| p.starts_with("p0_") || p.starts_with("p1_")),
            "{params:?}"
        );
        let (b, _) = case(0, 17);
        let e = merge(&[a, b]).unwrap_err();
        assert!(e.0.contains("opsets"), "{e}");
    }
}
