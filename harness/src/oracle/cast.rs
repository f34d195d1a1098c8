//! Constant and Cast: values from attributes, and conversions between element types.

use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb::tensor_proto::DataType;

use super::bound;
use super::node::{Node, Result};
use super::value::{from_flat, proto_value, Value};

/// Constant: exactly one of the value attributes.
pub(crate) fn constant(node: &Node) -> Result<Vec<Value>> {
    if node.proto.attribute.len() != 1 {
        return Err(node.invalid("Constant needs exactly one value attribute"));
    }
    let value = if let Some(t) = node.tensor_attr("value")? {
        proto_value(t).map_err(|e| e.context(&node.label()))?
    } else if let Some(v) = node.opt_float("value_float")? {
        Value::rounded(ArrayD::from_elem(IxDyn(&[]), v))
    } else if let Some(v) = node.floats("value_floats")? {
        Value::rounded(from_flat(
            &[v.len()],
            v.iter().map(|&f| f64::from(f)).collect(),
        ))
    } else if let Some(v) = node.opt_int("value_int")? {
        Value::Int(ArrayD::from_elem(IxDyn(&[]), v))
    } else if let Some(v) = node.ints("value_ints")? {
        Value::Int(from_flat(&[v.len()], v))
    } else {
        return Err(node.unsupported(format!(
            "Constant attribute '{}'",
            node.proto.attribute[0].name
        )));
    };
    Ok(vec![value])
}

/// Cast between float types (the value is rounded once more) and integer types (floats
/// truncate toward zero; bool is `x != 0`).
pub(crate) fn cast(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "input")?;
    let to = if node.opset < 6 {
        // Opset 1 names the type as a string ("FLOAT").
        let name = node.string("to", "")?;
        (0..64)
            .filter_map(|code| DataType::try_from(code).ok())
            .find(|t| t.as_str_name() == name)
            .ok_or_else(|| node.invalid(format!("unknown data type '{name}'")))?
    } else {
        let to = node
            .opt_int("to")?
            .ok_or_else(|| node.invalid("attribute to is required"))?;
        DataType::try_from(to as i32)
            .map_err(|_| node.invalid(format!("unknown data type {to}")))?
    };
    let value = match (to, x) {
        (
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16,
            Value::Float { value, bound },
        ) => Value::float(value.clone(), bound + &value.mapv(bound::rounding)),
        (
            DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16,
            Value::Int(a),
        ) => Value::rounded(a.mapv(|v| v as f64)),
        (DataType::Bool, Value::Float { value, .. }) => {
            Value::Int(value.mapv(|v| i64::from(v != 0.0)))
        }
        (DataType::Bool, Value::Int(a)) => Value::Int(a.mapv(|v| i64::from(v != 0))),
        (
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint8,
            Value::Float { value, .. },
        ) => {
            if value.iter().any(|v| !v.is_finite()) {
                return Err(node.undefined("casting NaN or infinity to an integer"));
            }
            Value::Int(value.mapv(|v| v.trunc() as i64))
        }
        (
            DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint8,
            Value::Int(a),
        ) => Value::Int(a.clone()),
        (other, _) => return Err(node.unsupported(format!("Cast to {other:?}"))),
    };
    Ok(vec![value])
}
