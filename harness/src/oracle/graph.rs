//! The graph walk: opset, inputs and initializers, topological order, node dispatch, outputs.

use std::collections::{BTreeSet, HashMap, HashSet};

use tract_onnx::pb::{self, tensor_proto::DataType};

use crate::onnx::proto::{declared_type, dtype_of_code, Dim};
use crate::tensor::{DType, Named, Tensor};

use super::node::{node_label, Node};
use super::value::{proto_value, Value};
use super::{ops, Evaluation, GoldenOutput, OracleError};

/// Default-domain opset assumed when the model imports none.
const DEFAULT_OPSET: i64 = 17;
/// Opsets the oracle implements.
const OPSETS: std::ops::RangeInclusive<i64> = 1..=28;

/// Evaluates the model; returns the outputs and every value computed.
pub(super) fn run(
    model: &pb::ModelProto,
    inputs: &[Named],
) -> Result<(Evaluation, HashMap<String, Value>), OracleError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OracleError::Invalid("the model has no graph".into()))?;
    let opset = default_opset(model)?;
    let order = topological_order(graph)?;
    crate::limits::begin_case();

    let mut values = bind_inputs(graph, inputs)?;
    bind_initializers(graph, &mut values)?;
    // Element types known before any node runs: integer values keep only their numbers.
    let mut types: HashMap<&str, DType> = inputs
        .iter()
        .map(|n| (n.name.as_str(), n.tensor.dtype()))
        .collect();
    for init in &graph.initializer {
        if let Some(d) = dtype_of_code(init.data_type) {
            types.entry(init.name.as_str()).or_insert(d);
        }
    }

    for index in order {
        let proto = &graph.node[index];
        let outputs = run_node(proto, index, opset, &values, &types)?;
        for (name, value) in outputs {
            values.insert(name, value);
        }
    }

    let mut outputs = Vec::with_capacity(graph.output.len());
    for out in &graph.output {
        let value = values.get(&out.name).ok_or_else(|| {
            OracleError::Invalid(format!(
                "graph output '{}' is not produced by any node, input or initializer",
                out.name
            ))
        })?;
        let dtype = declared_type(out)
            .and_then(|(code, _)| dtype_of_code(code))
            .unwrap_or(DType::Float);
        let (value, bound) = match value {
            Value::Float { value, bound } => (value.clone(), bound.clone()),
            Value::Int(a) => (a.mapv(|v| v as f64), a.mapv(|_| 0.0)),
        };
        outputs.push(GoldenOutput {
            name: out.name.clone(),
            value,
            bound,
            dtype,
        });
    }
    Ok((Evaluation { outputs }, values))
}

/// Version of the default domain ("" or "ai.onnx").
fn default_opset(model: &pb::ModelProto) -> Result<i64, OracleError> {
    let version = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(DEFAULT_OPSET, |o| o.version);
    if !OPSETS.contains(&version) {
        return Err(OracleError::Unsupported(format!(
            "default-domain opset {version} (the oracle implements {}..={})",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    Ok(version)
}

/// Evaluates one node, returning its named outputs.
fn run_node(
    proto: &pb::NodeProto,
    index: usize,
    opset: i64,
    values: &HashMap<String, Value>,
    types: &HashMap<&str, DType>,
) -> Result<Vec<(String, Value)>, OracleError> {
    let label = node_label(proto, index);
    if !(proto.domain.is_empty() || proto.domain == "ai.onnx") {
        return Err(OracleError::Unsupported(format!(
            "{label}: domain '{}'",
            proto.domain
        )));
    }
    let def = ops::lookup(&proto.op_type, opset)
        .ok_or_else(|| OracleError::Unsupported(format!("{label}: operator {}", proto.op_type)))?;
    def.check(proto, opset)
        .map_err(|msg| OracleError::Invalid(format!("{label}: {msg}")))?;

    let inputs = proto
        .input
        .iter()
        .map(|name| {
            if name.is_empty() {
                return Ok(None);
            }
            // The topological order guarantees producers ran first; this guards the invariant.
            values.get(name).map(Some).ok_or_else(|| {
                OracleError::Invalid(format!("{label}: input '{name}' has no value"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let input_types = proto
        .input
        .iter()
        .map(|name| types.get(name.as_str()).copied())
        .collect();
    let node = Node {
        proto,
        index,
        opset,
        inputs,
        input_types,
    };
    let results = (def.run)(&node)?;

    let mut named = Vec::new();
    for (i, name) in proto.output.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let value = results.get(i).cloned().ok_or_else(|| {
            OracleError::Unsupported(format!("{label}: output {i} ('{name}') is not computed"))
        })?;
        named.push((name.clone(), value));
    }
    Ok(named)
}

/// Node indices in an order where every node runs after the producers of its inputs; nodes
/// that are ready together keep their order in the file.
fn topological_order(graph: &pb::GraphProto) -> Result<Vec<usize>, OracleError> {
    let mut available: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    available.extend(graph.initializer.iter().map(|t| t.name.as_str()));

    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (index, node) in graph.node.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            let clash = available.contains(out.as_str()) || producer.insert(out, index).is_some();
            if clash {
                return Err(OracleError::Invalid(format!(
                    "{}: output '{out}' is already defined (graphs are single-assignment)",
                    node_label(node, index)
                )));
            }
        }
    }

    // Kahn's algorithm over "node j consumes an output of node i" edges.
    let mut pending = vec![0usize; graph.node.len()];
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (index, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            match producer.get(input.as_str()) {
                Some(&p) => {
                    pending[index] += 1;
                    consumers[p].push(index);
                }
                None if available.contains(input.as_str()) => {}
                None => {
                    return Err(OracleError::Invalid(format!(
                    "{}: input '{input}' is not a graph input, an initializer or any node's output",
                    node_label(node, index)
                )))
                }
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..graph.node.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(index) = ready.pop_first() {
        order.push(index);
        for &c in &consumers[index] {
            pending[c] -= 1;
            if pending[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() < graph.node.len() {
        let stuck = (0..graph.node.len()).find(|&i| pending[i] > 0).unwrap_or(0);
        return Err(OracleError::Invalid(format!(
            "the graph has a cycle through {}",
            node_label(&graph.node[stuck], stuck)
        )));
    }
    Ok(order)
}

/// Matches the given inputs to the graph inputs by name and checks them against the declared
/// types and shapes. Graph inputs that are also initializers are optional.
fn bind_inputs(
    graph: &pb::GraphProto,
    inputs: &[Named],
) -> Result<HashMap<String, Value>, OracleError> {
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let declared: HashMap<&str, &pb::ValueInfoProto> =
        graph.input.iter().map(|i| (i.name.as_str(), i)).collect();
    let mut values = HashMap::new();
    for input in inputs {
        let info = declared.get(input.name.as_str()).ok_or_else(|| {
            OracleError::BadInput(format!(
                "'{}' is not a graph input (graph inputs: {:?})",
                input.name,
                graph.input.iter().map(|i| &i.name).collect::<Vec<_>>()
            ))
        })?;
        check_declared(info, &input.tensor)?;
        if values
            .insert(input.name.clone(), Value::from_tensor(&input.tensor))
            .is_some()
        {
            return Err(OracleError::BadInput(format!(
                "'{}' is given twice",
                input.name
            )));
        }
    }
    for info in &graph.input {
        if !values.contains_key(&info.name) && !initializers.contains(info.name.as_str()) {
            return Err(OracleError::BadInput(format!(
                "graph input '{}' is not given",
                info.name
            )));
        }
    }
    Ok(values)
}

/// Checks a given tensor against its `ValueInfoProto`.
fn check_declared(info: &pb::ValueInfoProto, tensor: &Tensor) -> Result<(), OracleError> {
    let Some((code, dims)) = declared_type(info) else {
        return Ok(());
    };
    let is_float = |d: DType| d.is_float();
    let declared_float = matches!(
        DataType::try_from(code),
        Ok(DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16)
    );
    if let Some(declared) = dtype_of_code(code) {
        if is_float(declared) != is_float(tensor.dtype())
            || (!declared_float && declared != tensor.dtype())
        {
            return Err(OracleError::BadInput(format!(
                "'{}' is declared {declared}, given {}",
                info.name,
                tensor.dtype()
            )));
        }
    } else if declared_float && !is_float(tensor.dtype()) {
        return Err(OracleError::BadInput(format!(
            "'{}' is declared float, given {}",
            info.name,
            tensor.dtype()
        )));
    }
    let has_shape = matches!(
        info.r#type.as_ref().and_then(|t| t.value.as_ref()),
        Some(pb::type_proto::Value::TensorType(t)) if t.shape.is_some()
    );
    if !has_shape {
        return Ok(());
    }
    let shape = tensor.shape();
    let matches = dims.len() == shape.len()
        && dims.iter().zip(shape).all(|(d, &s)| match d {
            Dim::Fixed(n) => *n == s,
            Dim::Symbol(_) => true,
        });
    if !matches {
        return Err(OracleError::BadInput(format!(
            "'{}' is declared with shape {:?}, given {shape:?}",
            info.name,
            dims.iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Symbol(s) => s.clone(),
                })
                .collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Reads the initializers that are not overridden by a given input.
fn bind_initializers(
    graph: &pb::GraphProto,
    values: &mut HashMap<String, Value>,
) -> Result<(), OracleError> {
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
        .map(String::as_str)
        .collect();
    for init in &graph.initializer {
        if values.contains_key(&init.name) || !used.contains(init.name.as_str()) {
            continue;
        }
        let value =
            proto_value(init).map_err(|e| e.context(&format!("initializer '{}'", init.name)))?;
        values.insert(init.name.clone(), value);
    }
    Ok(())
}
