//! Conversions between ONNX protobuf messages (tract-onnx's `pb` types) and [`Tensor`].

use anyhow::{ensure, Context, Result};
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use tract_onnx::pb::{self, tensor_proto::DataType};

use crate::tensor::{DType, Tensor};

/// Decodes a serialized `ModelProto`.
pub fn decode_model(bytes: &[u8]) -> Result<pb::ModelProto> {
    pb::ModelProto::decode(bytes).context("not a valid ONNX ModelProto (protobuf decode failed)")
}

/// Serializes a `ModelProto` as ONNX's own writers do (`onnx.helper`, the exporters): every
/// attribute with its value field present, also when the value is 0, 0.0 or "".
///
/// The `pb` types are proto3-style, so prost leaves a zero value out; ONNX's schema is proto2,
/// where a reader can ask whether a field is there. The IR spec makes the `type` field the
/// discriminator so that proto3 writers are fine, but readers that look for the value field
/// (TVM's ONNX importer does) refuse such an attribute, and no real model file has one.
pub fn encode_model(model: &pb::ModelProto) -> Vec<u8> {
    wire::with_explicit_attribute_values(&model.encode_to_vec())
}

/// The protobuf wire format, just enough to give attributes their zero values back.
mod wire {
    /// Field numbers of the ONNX schema on the way from a model to its attributes.
    const MODEL_GRAPH: u64 = 7;
    const MODEL_FUNCTIONS: u64 = 25;
    const FUNCTION_NODES: u64 = 7;
    const GRAPH_NODES: u64 = 1;
    const NODE_ATTRIBUTES: u64 = 5;
    const ATTRIBUTE_TYPE: u64 = 20;
    const ATTRIBUTE_GRAPH: u64 = 6;
    const ATTRIBUTE_GRAPHS: u64 = 11;

    /// One field: its number, wire type and encoded payload (a length-delimited one without
    /// its length).
    struct Field<'a> {
        number: u64,
        wire_type: u8,
        payload: &'a [u8],
    }

    fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn fields(bytes: &[u8]) -> Option<Vec<Field<'_>>> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let key = varint(bytes, &mut at)?;
            let (number, wire_type) = (key >> 3, (key & 7) as u8);
            let start = at;
            let end = match wire_type {
                0 => {
                    varint(bytes, &mut at)?;
                    at
                }
                1 => at + 8,
                2 => {
                    let len = varint(bytes, &mut at)? as usize;
                    let start = at;
                    at = start.checked_add(len)?;
                    out.push(Field {
                        number,
                        wire_type,
                        payload: bytes.get(start..at)?,
                    });
                    continue;
                }
                5 => at + 4,
                _ => return None,
            };
            at = end;
            out.push(Field {
                number,
                wire_type,
                payload: bytes.get(start..end)?,
            });
        }
        Some(out)
    }

    fn put(out: &mut Vec<u8>, number: u64, wire_type: u8, payload: &[u8]) {
        put_varint(out, (number << 3) | u64::from(wire_type));
        if wire_type == 2 {
            put_varint(out, payload.len() as u64);
        }
        out.extend_from_slice(payload);
    }

    /// How one embedded message is rewritten.
    type Rewrite = fn(&[u8]) -> Vec<u8>;

    /// `message` with the length-delimited fields `rewrite` names rewritten by it.
    fn rewritten(message: &[u8], rewrite: &dyn Fn(u64) -> Option<Rewrite>) -> Vec<u8> {
        let Some(fields) = fields(message) else {
            return message.to_vec();
        };
        let mut out = Vec::with_capacity(message.len() + 16);
        for f in fields {
            match rewrite(f.number).filter(|_| f.wire_type == 2) {
                Some(inner) => put(&mut out, f.number, 2, &inner(f.payload)),
                None => put(&mut out, f.number, f.wire_type, f.payload),
            }
        }
        out
    }

    pub fn with_explicit_attribute_values(model: &[u8]) -> Vec<u8> {
        rewritten(model, &|n| match n {
            MODEL_GRAPH => Some(graph),
            MODEL_FUNCTIONS => Some(function),
            _ => None,
        })
    }

    fn graph(bytes: &[u8]) -> Vec<u8> {
        rewritten(bytes, &|n| (n == GRAPH_NODES).then_some(node as Rewrite))
    }

    fn function(bytes: &[u8]) -> Vec<u8> {
        rewritten(bytes, &|n| (n == FUNCTION_NODES).then_some(node as Rewrite))
    }

    fn node(bytes: &[u8]) -> Vec<u8> {
        rewritten(bytes, &|n| {
            (n == NODE_ATTRIBUTES).then_some(attribute as Rewrite)
        })
    }

    /// The attribute with its value field written when its type says it has one and prost
    /// left it out (a zero value): f (2), i (3) or s (4).
    fn attribute(bytes: &[u8]) -> Vec<u8> {
        let mut out = rewritten(bytes, &|n| {
            (n == ATTRIBUTE_GRAPH || n == ATTRIBUTE_GRAPHS).then_some(graph as Rewrite)
        });
        let Some(fields) = fields(bytes) else {
            return out;
        };
        let ty = fields
            .iter()
            .find(|f| f.number == ATTRIBUTE_TYPE && f.wire_type == 0)
            .and_then(|f| varint(f.payload, &mut 0));
        let has = |number: u64| fields.iter().any(|f| f.number == number);
        match ty {
            // FLOAT: f, a 32-bit field.
            Some(1) if !has(2) => put(&mut out, 2, 5, &[0; 4]),
            // INT: i, a varint.
            Some(2) if !has(3) => put(&mut out, 3, 0, &[0]),
            // STRING: s, bytes.
            Some(3) if !has(4) => put(&mut out, 4, 2, &[]),
            _ => {}
        }
        out
    }
}

/// Serializes a `TensorProto`.
pub fn encode_tensor(tensor: &pb::TensorProto) -> Vec<u8> {
    tensor.encode_to_vec()
}

/// Decodes a serialized `TensorProto` (an `input_J.pb` / `output_J.pb` file).
pub fn decode_tensor(bytes: &[u8]) -> Result<pb::TensorProto> {
    pb::TensorProto::decode(bytes).context("not a valid ONNX TensorProto (protobuf decode failed)")
}

/// The [`DType`] of an ONNX element type code, when the harness has one.
pub fn dtype_of_code(code: i32) -> Option<DType> {
    Some(match DataType::try_from(code).ok()? {
        DataType::Float => DType::Float,
        DataType::Double => DType::Double,
        DataType::Float16 => DType::Float16,
        DataType::Bfloat16 => DType::Bfloat16,
        DataType::Int64 => DType::Int64,
        DataType::Int32 => DType::Int32,
        DataType::Int8 => DType::Int8,
        DataType::Uint8 => DType::Uint8,
        DataType::Bool => DType::Bool,
        _ => return None,
    })
}

/// The element type of the first float graph input of `model` (float32 when there is none):
/// the type the model computes in.
pub fn float_type(model: &pb::ModelProto) -> DType {
    model
        .graph
        .iter()
        .flat_map(|g| &g.input)
        .filter_map(|i| declared_type(i).and_then(|(code, _)| dtype_of_code(code)))
        .find(|d| d.is_float())
        .unwrap_or(DType::Float)
}

/// The ONNX data type code of a [`DType`].
pub fn data_type_code(dtype: DType) -> i32 {
    (match dtype {
        DType::Float => DataType::Float,
        DType::Double => DataType::Double,
        DType::Float16 => DataType::Float16,
        DType::Bfloat16 => DataType::Bfloat16,
        DType::Int64 => DataType::Int64,
        DType::Int32 => DataType::Int32,
        DType::Int8 => DataType::Int8,
        DType::Uint8 => DataType::Uint8,
        DType::Bool => DataType::Bool,
    }) as i32
}

/// A valid tensor this reader does not handle (external data, segments, a data type outside
/// float32, float64, float16, bfloat16, int64, int32, int8, uint8 and bool): the model is
/// outside what can be checked, not wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// Checked element count of a declared shape.
pub fn checked_len(dims: &[i64]) -> Result<usize> {
    let limit = crate::limits::max_elements();
    let mut n: usize = 1;
    for &d in dims {
        ensure!(d >= 0, "negative dimension {d} in shape {dims:?}");
        n = n
            .checked_mul(d as usize)
            .filter(|&n| n <= limit)
            .ok_or_else(|| {
                crate::limits::TooLarge(format!(
                    "shape {dims:?} exceeds the limit of {limit} elements (--max-elements)"
                ))
            })?;
    }
    Ok(n)
}

/// Reads a `TensorProto` into a [`Tensor`]. Supports float32, float64, float16, bfloat16,
/// int64, int32, int8, uint8 and bool, stored in the typed fields or in `raw_data` (little
/// endian). External data is refused.
pub fn tensor_from_proto(t: &pb::TensorProto) -> Result<Tensor> {
    let what = if t.name.is_empty() {
        "tensor".to_string()
    } else {
        format!("tensor '{}'", t.name)
    };
    if !t.external_data.is_empty() {
        return Err(Unsupported(format!("{what}: external data is not supported")).into());
    }
    if t.segment.is_some() {
        return Err(Unsupported(format!("{what}: segmented tensors are not supported")).into());
    }
    let len = checked_len(&t.dims).with_context(|| what.clone())?;
    let shape: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let dt = DataType::try_from(t.data_type)
        .map_err(|_| anyhow::anyhow!("{what}: unknown data type code {}", t.data_type))?;
    let raw = &t.raw_data;
    let tensor = match dt {
        DataType::Float => {
            let v = stored(raw, &t.float_data, len, f32::from_le_bytes);
            Tensor::F32(shaped(&shape, v, &what)?)
        }
        DataType::Double => {
            let v = stored(raw, &t.double_data, len, f64::from_le_bytes);
            Tensor::F64(shaped(&shape, v, &what)?)
        }
        // 16-bit floats are raw bytes, or their bit patterns in `int32_data`.
        DataType::Float16 => {
            let v = bits16(raw, &t.int32_data, len, half::f16::from_bits);
            Tensor::F16(shaped(&shape, v, &what)?)
        }
        DataType::Bfloat16 => {
            let v = bits16(raw, &t.int32_data, len, half::bf16::from_bits);
            Tensor::Bf16(shaped(&shape, v, &what)?)
        }
        DataType::Int64 => {
            let v = stored(raw, &t.int64_data, len, i64::from_le_bytes);
            Tensor::I64(shaped(&shape, v, &what)?)
        }
        DataType::Int32 => {
            let v = stored(raw, &t.int32_data, len, i32::from_le_bytes);
            Tensor::I32(shaped(&shape, v, &what)?)
        }
        // Typed 8-bit integers are stored in `int32_data`.
        DataType::Int8 => {
            let v = small_ints(raw, &t.int32_data, len, i8::from_le_bytes);
            Tensor::I8(shaped(&shape, v, &what)?)
        }
        DataType::Uint8 => {
            let v = small_ints(raw, &t.int32_data, len, u8::from_le_bytes);
            Tensor::U8(shaped(&shape, v, &what)?)
        }
        DataType::Bool => {
            // Typed bools are stored in `int32_data`.
            let v = if !raw.is_empty() {
                from_raw(raw, len, |b: [u8; 1]| b[0] != 0)
            } else {
                typed(&t.int32_data, len).map(|v| v.into_iter().map(|x| x != 0).collect())
            };
            Tensor::Bool(shaped(&shape, v, &what)?)
        }
        other => {
            return Err(Unsupported(format!("{what}: data type {other:?} is not supported")).into())
        }
    };
    Ok(tensor)
}

/// The `len` elements of a tensor, from `raw` (little endian, `W` bytes each, decoded by `f`)
/// when it is not empty, else from the typed field `v`.
fn stored<T: Clone, const W: usize>(
    raw: &[u8],
    v: &[T],
    len: usize,
    f: fn([u8; W]) -> T,
) -> Result<Vec<T>> {
    if !raw.is_empty() {
        from_raw(raw, len, f)
    } else {
        typed(v, len)
    }
}

/// The `len` elements of a 16-bit float tensor, from `raw` or from the bit patterns in the
/// typed field `bits` (`int32_data`), decoded by `f`.
fn bits16<T>(raw: &[u8], bits: &[i32], len: usize, f: fn(u16) -> T) -> Result<Vec<T>> {
    if !raw.is_empty() {
        let bits = from_raw(raw, len, u16::from_le_bytes)?;
        return Ok(bits.into_iter().map(f).collect());
    }
    let bits = typed(bits, len)?;
    ensure!(
        bits.iter().all(|&b| u16::try_from(b).is_ok()),
        "int32_data holds a value that is not a 16-bit pattern"
    );
    Ok(bits.into_iter().map(|b| f(b as u16)).collect())
}

/// The `len` elements of an 8-bit integer tensor, from `raw` or from `int32_data`, where each
/// must fit the type.
fn small_ints<T: TryFrom<i32>>(
    raw: &[u8],
    wide: &[i32],
    len: usize,
    f: fn([u8; 1]) -> T,
) -> Result<Vec<T>> {
    if !raw.is_empty() {
        return from_raw(raw, len, f);
    }
    typed(wide, len)?
        .into_iter()
        .map(|v| {
            T::try_from(v).map_err(|_| anyhow::anyhow!("int32_data value {v} is out of range"))
        })
        .collect()
}

/// `len` elements decoded from `raw_data`, `W` bytes each.
fn from_raw<T, const W: usize>(raw: &[u8], len: usize, f: fn([u8; W]) -> T) -> Result<Vec<T>> {
    ensure!(
        raw.len() == len * W,
        "raw_data holds {} bytes, the shape needs {}",
        raw.len(),
        len * W
    );
    Ok(raw
        .chunks_exact(W)
        .map(|c| f(c.try_into().expect("chunk width")))
        .collect())
}

/// The `len` elements of a typed field.
fn typed<T: Clone>(v: &[T], len: usize) -> Result<Vec<T>> {
    ensure!(
        v.len() == len,
        "holds {} elements, the shape needs {}",
        v.len(),
        len
    );
    Ok(v.to_vec())
}

/// The elements `v` read for the tensor `what`, as an array of `shape`.
fn shaped<T>(shape: &[usize], v: Result<Vec<T>>, what: &str) -> Result<ArrayD<T>> {
    Ok(ArrayD::from_shape_vec(
        IxDyn(shape),
        v.with_context(|| what.to_string())?,
    )?)
}

/// Writes a [`Tensor`] as a `TensorProto` with `raw_data`.
pub fn tensor_to_proto(name: &str, t: &Tensor) -> pb::TensorProto {
    let mut raw = Vec::with_capacity(t.byte_len());
    match t {
        Tensor::F32(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::F64(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::F16(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::Bf16(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::I64(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::I32(a) => a
            .iter()
            .for_each(|v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::Bool(a) => a.iter().for_each(|&v| raw.push(u8::from(v))),
        Tensor::I8(a) => a
            .iter()
            .for_each(|&v| raw.extend_from_slice(&v.to_le_bytes())),
        Tensor::U8(a) => a.iter().for_each(|&v| raw.push(v)),
    }
    pb::TensorProto {
        name: name.to_string(),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: data_type_code(t.dtype()),
        raw_data: raw,
        ..Default::default()
    }
}

/// Looks up an attribute of a node by name.
pub fn attr<'a>(node: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// Builders for `AttributeProto` values.
pub mod attr {
    use tract_onnx::pb::{self, attribute_proto::AttributeType};

    /// An integer attribute.
    pub fn int(name: &str, v: i64) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Int as i32,
            i: v,
            ..Default::default()
        }
    }
    /// A float attribute.
    pub fn float(name: &str, v: f32) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Float as i32,
            f: v,
            ..Default::default()
        }
    }
    /// A list-of-integers attribute.
    pub fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: v.to_vec(),
            ..Default::default()
        }
    }
    /// A string attribute.
    pub fn string(name: &str, v: &str) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: v.as_bytes().to_vec(),
            ..Default::default()
        }
    }
}

/// A `ValueInfoProto` for a float tensor; each dim is a size or a symbol.
pub fn value_info(name: &str, elem: DType, dims: &[Dim]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(n) => Value::DimValue(*n as i64),
                Dim::Symbol(s) => Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: data_type_code(elem),
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One dimension of a declared graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A known size.
    Fixed(usize),
    /// A symbolic size (`dim_param`).
    Symbol(String),
}

/// The element type and dims declared by a `ValueInfoProto`, when it declares a tensor.
pub fn declared_type(vi: &pb::ValueInfoProto) -> Option<(i32, Vec<Dim>)> {
    use pb::tensor_shape_proto::dimension::Value;
    // tract's protobuf types only know tensor types, so this pattern is irrefutable.
    let pb::type_proto::Value::TensorType(t) = vi.r#type.as_ref()?.value.as_ref()?;
    let dims = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(Value::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as usize),
                    Some(Value::DimParam(p)) => Dim::Symbol(p.clone()),
                    _ => Dim::Symbol(String::from("?")),
                })
                .collect()
        })
        .unwrap_or_default();
    Some((t.elem_type, dims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_tensor_round_trips_through_raw_data() {
        let t = Tensor::f32(&[2, 3], vec![1.0, -2.5, 3.0, 0.0, f32::MIN_POSITIVE, 7.0]).unwrap();
        let back =
            tensor_from_proto(&decode_tensor(&tensor_to_proto("x", &t).encode_to_vec()).unwrap())
                .unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn typed_float_data_is_read() {
        let p = pb::TensorProto {
            dims: vec![3],
            data_type: DataType::Float as i32,
            float_data: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&p).unwrap(),
            Tensor::f32(&[3], vec![1.0, 2.0, 3.0]).unwrap()
        );
    }

    #[test]
    fn size_mismatch_is_an_error_naming_the_tensor() {
        let p = pb::TensorProto {
            name: "w".into(),
            dims: vec![4],
            data_type: DataType::Float as i32,
            float_data: vec![1.0],
            ..Default::default()
        };
        let e = format!("{:#}", tensor_from_proto(&p).unwrap_err());
        assert!(e.contains("'w'") && e.contains("needs 4"), "{e}");
    }

    #[test]
    fn gigantic_declared_shape_is_refused_before_allocation() {
        let p = pb::TensorProto {
            dims: vec![1 << 20, 1 << 20, 1 << 20],
            data_type: DataType::Float as i32,
            ..Default::default()
        };
        let e = format!("{:#}", tensor_from_proto(&p).unwrap_err());
        assert!(e.contains("exceeds the limit"), "{e}");
    }
}
