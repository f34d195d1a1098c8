//! Cutting ONNX graphs: the part that computes one tensor, or one node on its own.
//!
//! Used to find the first diverging node of a failing model: every prefix of the graph is a
//! model whose output is one intermediate tensor, and a single node fed with golden inputs shows
//! whether that node is wrong by itself or only together with its neighbours.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context as _, Result};
use tract_onnx::pb;

use super::proto::{value_info, Dim};
use crate::tensor::{DType, Named, Tensor};

/// The model whose single output is `tensor`, keeping only the nodes and initializers it needs.
pub fn prefix(model: &pb::ModelProto, tensor: &str) -> Result<pb::ModelProto> {
    let graph = model.graph.as_ref().context("the model has no graph")?;
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut needed_nodes = HashSet::new();
    let mut needed_tensors: HashSet<String> = HashSet::new();
    let mut stack = vec![tensor.to_string()];
    while let Some(t) = stack.pop() {
        if t.is_empty() || !needed_tensors.insert(t.clone()) {
            continue;
        }
        if let Some(&i) = producer.get(t.as_str()) {
            if needed_nodes.insert(i) {
                stack.extend(graph.node[i].input.iter().cloned());
            }
        }
    }
    if !producer.contains_key(tensor) && !graph.input.iter().any(|i| i.name == tensor) {
        bail!("no node produces '{tensor}'");
    }
    let mut g = graph.clone();
    g.node = graph
        .node
        .iter()
        .enumerate()
        .filter(|(i, _)| needed_nodes.contains(i))
        .map(|(_, n)| n.clone())
        .collect();
    g.initializer.retain(|t| needed_tensors.contains(&t.name));
    g.input.retain(|i| {
        needed_tensors.contains(&i.name) || g.initializer.iter().all(|t| t.name != i.name)
    });
    g.value_info.clear();
    let elem = graph
        .value_info
        .iter()
        .chain(&graph.output)
        .find(|v| v.name == tensor)
        .and_then(super::proto::declared_type)
        .map(|(e, _)| e)
        .or_else(|| integer_type(graph, tensor).map(super::proto::data_type_code));
    let mut out = value_info(tensor, DType::Float, &[]);
    if let Some(elem) = elem {
        if let Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(t)),
            ..
        }) = out.r#type.as_mut()
        {
            t.elem_type = elem;
        }
    }
    // No declared shape: the runtime infers it.
    if let Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(t)),
        ..
    }) = out.r#type.as_mut()
    {
        t.shape = None;
    }
    g.output = vec![out];
    Ok(pb::ModelProto {
        graph: Some(g),
        ..model.clone()
    })
}

/// Node `index` of `model` as a model of its own: inputs that are initializers stay
/// initializers, the others become graph inputs fed with `values` (by tensor name).
/// Returns the model and the inputs to feed it.
pub fn single_node(
    model: &pb::ModelProto,
    index: usize,
    values: &HashMap<String, Tensor>,
) -> Result<(pb::ModelProto, Vec<Named>)> {
    let graph = model.graph.as_ref().context("the model has no graph")?;
    let node = graph
        .node
        .get(index)
        .with_context(|| format!("no node {index}"))?
        .clone();
    let mut g = pb::GraphProto {
        name: format!("{}_alone", node.op_type),
        ..Default::default()
    };
    let mut feeds = Vec::new();
    for input in node.input.iter().filter(|i| !i.is_empty()) {
        if let Some(init) = graph.initializer.iter().find(|t| &t.name == input) {
            if !g.initializer.iter().any(|t| &t.name == input) {
                g.initializer.push(init.clone());
            }
            continue;
        }
        if feeds.iter().any(|f: &Named| &f.name == input) {
            continue;
        }
        let value = values
            .get(input)
            .with_context(|| format!("no value for '{input}'"))?;
        let dims: Vec<Dim> = value.shape().iter().map(|&d| Dim::Fixed(d)).collect();
        g.input.push(value_info(input, value.dtype(), &dims));
        feeds.push(Named {
            name: input.clone(),
            tensor: value.clone(),
        });
    }
    // Outputs have the element type of the float values fed (an f16 model's node computes in f16).
    let float = feeds
        .iter()
        .map(|f| f.tensor.dtype())
        .find(|d| d.is_float())
        .unwrap_or(DType::Float);
    for o in node.output.iter().filter(|o| !o.is_empty()) {
        let mut vi = value_info(o, integer_type(graph, o).unwrap_or(float), &[]);
        if let Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(t)),
            ..
        }) = vi.r#type.as_mut()
        {
            t.shape = None;
        }
        g.output.push(vi);
    }
    g.node = vec![node];
    Ok((
        pb::ModelProto {
            graph: Some(g),
            ..model.clone()
        },
        feeds,
    ))
}

/// The element type of `tensor` where it is an integer a quantized model computes: the output
/// of QuantizeLinear (its `output_dtype`, or its zero point's type, or uint8), of QLinearConv
/// and QLinearMatMul (the output zero point's type), of ConvInteger and MatMulInteger (int32),
/// moved by a layout op; `None` for a float (the model's float type) or a type not worked out.
/// A model cut at such a tensor declares that type, and its value is compared as one.
pub fn integer_type(graph: &pb::GraphProto, tensor: &str) -> Option<DType> {
    let init_type = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| super::proto::dtype_of_code(t.data_type))
    };
    let node = graph
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == tensor))?;
    let integer = |d: DType| (!d.is_float()).then_some(d);
    match node.op_type.as_str() {
        "QuantizeLinear" => {
            let declared = super::proto::attr(node, "output_dtype")
                .map(|a| a.i)
                .filter(|&c| c != 0)
                .and_then(|c| super::proto::dtype_of_code(c as i32));
            declared
                .or_else(|| node.input.get(2).and_then(|z| init_type(z)))
                .or(Some(DType::Uint8))
                .and_then(integer)
        }
        "QLinearConv" | "QLinearMatMul" => node.input.get(7).and_then(|z| init_type(z)),
        "ConvInteger" | "MatMulInteger" => Some(DType::Int32),
        "Transpose" | "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity" => {
            integer_type(graph, node.input.first()?)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};
    use crate::onnx::emit::emit;

    #[test]
    fn a_prefix_keeps_only_what_its_output_needs() {
        let case = generate(0, 3, &GenConfig::default());
        let m = emit(&case.model).unwrap();
        let g = m.graph.as_ref().unwrap();
        let first = &g.node[0];
        let p = prefix(&m, &first.output[0]).unwrap();
        let pg = p.graph.as_ref().unwrap();
        assert_eq!(pg.node.len(), 1);
        assert_eq!(pg.output[0].name, first.output[0]);
        assert!(pg.initializer.iter().all(|t| first.input.contains(&t.name)));
        let whole = prefix(&m, "output").unwrap();
        assert_eq!(whole.graph.unwrap().node.len(), g.node.len());
        assert!(prefix(&m, "nope").is_err());
    }

    #[test]
    fn a_single_node_model_feeds_non_initializer_inputs() {
        let case = generate(0, 3, &GenConfig::default());
        let m = emit(&case.model).unwrap();
        let first = m.graph.as_ref().unwrap().node[0].clone();
        let x = case.inputs().remove(0);
        let values = HashMap::from([(x.name.clone(), x.tensor.clone())]);
        let (single, feeds) = single_node(&m, 0, &values).unwrap();
        assert_eq!(feeds.len(), 1);
        assert_eq!(single.graph.as_ref().unwrap().node, vec![first]);
    }
}
