//! Tensors to and from the Python workers: as raw files or inline as base64, with numpy's
//! names for their types.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use crate::tensor::{DType, Named, Tensor};

/// Writes inputs as raw files in `dir` and describes them for a request.
pub fn write_inputs(dir: &Path, inputs: &[Named]) -> Result<Value> {
    let mut specs = Vec::new();
    for (j, input) in inputs.iter().enumerate() {
        let path = dir.join(format!("input_{j}.bin"));
        let proto = crate::onnx::proto::tensor_to_proto(&input.name, &input.tensor);
        std::fs::write(&path, &proto.raw_data)?;
        specs.push(json!({
            "name": input.name,
            "dtype": numpy_dtype(input.tensor.dtype())?,
            "shape": input.tensor.shape(),
            "path": path,
        }));
    }
    Ok(Value::Array(specs))
}

/// The numpy name of a type; numpy has no bfloat16, so the workers receive no such tensor.
fn numpy_dtype(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::Float => "float32",
        DType::Double => "float64",
        DType::Float16 => "float16",
        DType::Bfloat16 => {
            anyhow::bail!("the Python workers exchange numpy arrays, and numpy has no bfloat16")
        }
        DType::Int64 => "int64",
        DType::Int32 => "int32",
        DType::Int8 => "int8",
        DType::Uint8 => "uint8",
        DType::Bool => "bool",
    })
}

/// Reads the outputs a worker wrote to files.
pub fn read_outputs(reply: &Value) -> Result<Vec<Tensor>> {
    outputs_of(reply, |o| {
        let path = o["path"].as_str().context("output without path")?;
        std::fs::read(path).with_context(|| format!("{path}: cannot read worker output"))
    })
}

/// The outputs a worker sent inline (base64 of their raw bytes).
pub fn inline_outputs(reply: &Value) -> Result<Vec<Tensor>> {
    outputs_of(reply, |o| {
        unbase64(o["data"].as_str().context("output without data")?)
            .context("output data is not base64")
    })
}

/// Inputs to send inline: name, dtype, shape and base64 of the raw little-endian bytes.
pub fn inline_inputs(inputs: &[Named]) -> Result<Value> {
    Ok(Value::Array(
        inputs
            .iter()
            .map(|input| {
                let proto = crate::onnx::proto::tensor_to_proto(&input.name, &input.tensor);
                Ok(json!({
                    "name": input.name,
                    "dtype": numpy_dtype(input.tensor.dtype())?,
                    "shape": input.tensor.shape(),
                    "data": base64(&proto.raw_data),
                }))
            })
            .collect::<Result<_>>()?,
    ))
}

/// The tensors of a reply's `outputs`, their bytes got by `bytes`.
fn outputs_of(reply: &Value, bytes: impl Fn(&Value) -> Result<Vec<u8>>) -> Result<Vec<Tensor>> {
    let outputs = reply["outputs"]
        .as_array()
        .context("worker reply without outputs")?;
    outputs
        .iter()
        .map(|o| {
            let shape: Vec<usize> = o["shape"]
                .as_array()
                .context("output without shape")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).context("bad dimension"))
                .collect::<Result<_>>()?;
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let data_type = match o["dtype"].as_str() {
                Some("float32") => DType::Float,
                Some("float64") => DType::Double,
                Some("float16") => DType::Float16,
                Some("int64") => DType::Int64,
                Some("int32") => DType::Int32,
                Some("int8") => DType::Int8,
                Some("uint8") => DType::Uint8,
                Some("bool") => DType::Bool,
                other => anyhow::bail!("worker output of unknown dtype {other:?}"),
            };
            let proto = tract_onnx::pb::TensorProto {
                dims,
                data_type: crate::onnx::proto::data_type_code(data_type),
                raw_data: bytes(o)?,
                ..Default::default()
            };
            let name = o["name"].as_str().unwrap_or("output");
            crate::onnx::proto::tensor_from_proto(&proto).with_context(|| name.to_string())
        })
        .collect()
}

/// Standard base64 with padding, as Python's `base64.b64encode` writes it.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unbase64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text)
}
