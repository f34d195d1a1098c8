//! One node being evaluated: its attributes and inputs, read with the checks the ONNX spec
//! implies, and errors that name the node.

use std::fmt::Display;

use ndarray::ArrayD;
use tract_onnx::pb::{self, attribute_proto::AttributeType};

use super::value::{element_count, Value};
use super::OracleError;
use crate::tensor::DType;

/// A node with its resolved inputs (`None` for absent optional inputs).
pub(crate) struct Node<'a> {
    /// The protobuf node.
    pub proto: &'a pb::NodeProto,
    /// Position of the node in the graph's node list.
    pub index: usize,
    /// Version of the default ONNX domain the model imports.
    pub opset: i64,
    /// Input values by position.
    pub inputs: Vec<Option<&'a Value>>,
    /// Element types of the inputs that are graph inputs or initializers (`None` for the
    /// others): an integer value does not keep its type.
    pub input_types: Vec<Option<DType>>,
}

/// Shorthand for results of node evaluation.
pub(crate) type Result<T> = std::result::Result<T, OracleError>;

/// Float input: value and bound.
pub(crate) type FloatRef<'a> = (&'a ArrayD<f64>, &'a ArrayD<f64>);

impl<'a> Node<'a> {
    /// "node 3 'conv1' (Conv)", for messages.
    pub fn label(&self) -> String {
        node_label(self.proto, self.index)
    }

    /// An error for a model that the ONNX spec does not allow.
    pub fn invalid(&self, msg: impl Display) -> OracleError {
        OracleError::Invalid(format!("{}: {msg}", self.label()))
    }

    /// An error for something valid that the oracle does not implement.
    pub fn unsupported(&self, msg: impl Display) -> OracleError {
        OracleError::Unsupported(format!("{}: {msg}", self.label()))
    }

    /// An error for a valid model whose result the spec leaves undefined.
    pub fn undefined(&self, msg: impl Display) -> OracleError {
        OracleError::Undefined(format!("{}: {msg}", self.label()))
    }

    /// Checks that a result shape stays within the element limit before it is allocated.
    pub fn check_size(&self, shape: &[usize]) -> Result<usize> {
        let n = element_count(shape).ok_or_else(|| {
            OracleError::TooLarge(format!(
                "{}: output shape {shape:?} exceeds the limit of {} elements (--max-elements)",
                self.label(),
                crate::limits::max_elements()
            ))
        })?;
        crate::limits::reserve(n)
            .map_err(|m| OracleError::TooLarge(format!("{}: {m}", self.label())))?;
        Ok(n)
    }

    // ---- attributes -------------------------------------------------------------------------

    fn attribute(
        &self,
        name: &str,
        expected: AttributeType,
    ) -> Result<Option<&'a pb::AttributeProto>> {
        let Some(a) = crate::onnx::proto::attr(self.proto, name) else {
            return Ok(None);
        };
        // UNDEFINED is tolerated: some writers leave the type unset and fill only the field.
        if a.r#type != expected as i32 && a.r#type != AttributeType::Undefined as i32 {
            return Err(self.invalid(format!(
                "attribute '{name}' has type {}, expected {expected:?}",
                AttributeType::try_from(a.r#type)
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|_| a.r#type.to_string())
            )));
        }
        Ok(Some(a))
    }

    /// An integer attribute, if present.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.attribute(name, AttributeType::Int)?.map(|a| a.i))
    }

    /// An integer attribute with its default.
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }

    /// A 0/1 flag attribute.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool> {
        match self.int(name, i64::from(default))? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.invalid(format!("attribute '{name}' must be 0 or 1, got {v}"))),
        }
    }

    /// A list-of-integers attribute, if present.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .attribute(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    /// A list-of-floats attribute, if present.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .attribute(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    /// A float attribute, widened exactly from its stored f32, if present.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>> {
        Ok(self
            .attribute(name, AttributeType::Float)?
            .map(|a| f64::from(a.f)))
    }

    /// A float attribute with its default (given as the f32 the spec names).
    pub fn float(&self, name: &str, default: f32) -> Result<f64> {
        Ok(self.opt_float(name)?.unwrap_or(f64::from(default)))
    }

    /// A string attribute with its default.
    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        match self.attribute(name, AttributeType::String)? {
            None => Ok(default.to_string()),
            Some(a) => String::from_utf8(a.s.clone())
                .map_err(|_| self.invalid(format!("attribute '{name}' is not valid UTF-8"))),
        }
    }

    /// A tensor attribute, if present.
    pub fn tensor_attr(&self, name: &str) -> Result<Option<&'a pb::TensorProto>> {
        Ok(self
            .attribute(name, AttributeType::Tensor)?
            .and_then(|a| a.t.as_ref()))
    }

    // ---- inputs -----------------------------------------------------------------------------

    /// Input `i`, or `None` when absent (not given or given as the empty name).
    pub fn input(&self, i: usize) -> Option<&'a Value> {
        self.inputs.get(i).copied().flatten()
    }

    /// A required input.
    pub fn required(&self, i: usize, what: &str) -> Result<&'a Value> {
        self.input(i)
            .ok_or_else(|| self.invalid(format!("required input {i} ({what}) is missing")))
    }

    /// A required float input. An integer tensor is reported as unsupported rather than
    /// invalid: several ops accept integers in recent opsets, and the kernels compute on floats.
    pub fn float_input(&self, i: usize, what: &str) -> Result<FloatRef<'a>> {
        match self.required(i, what)? {
            Value::Float { value, bound } => Ok((value, bound)),
            Value::Int(_) => Err(self.unsupported(format!(
                "input {i} ({what}) is an integer tensor; this kernel computes on floats"
            ))),
        }
    }

    /// An optional float input.
    pub fn opt_float_input(&self, i: usize, what: &str) -> Result<Option<FloatRef<'a>>> {
        match self.input(i) {
            None => Ok(None),
            Some(_) => self.float_input(i, what).map(Some),
        }
    }

    /// A required integer input (shapes, axes, pads, indices).
    pub fn int_input(&self, i: usize, what: &str) -> Result<&'a ArrayD<i64>> {
        match self.required(i, what)? {
            Value::Int(a) => Ok(a),
            v => Err(self.invalid(format!(
                "input {i} ({what}) must be an integer tensor, got {}",
                v.kind()
            ))),
        }
    }

    /// An optional integer input, as a list (1-D or scalar).
    pub fn opt_int_list(&self, i: usize, what: &str) -> Result<Option<Vec<i64>>> {
        match self.input(i) {
            None => Ok(None),
            Some(_) => {
                let a = self.int_input(i, what)?;
                if a.ndim() > 1 {
                    return Err(self.invalid(format!(
                        "input {i} ({what}) must be 1-D, has shape {:?}",
                        a.shape()
                    )));
                }
                Ok(Some(a.iter().copied().collect()))
            }
        }
    }

    /// An optional scalar float input (one element; Clip bounds, Pad's constant).
    pub fn opt_scalar(&self, i: usize, what: &str) -> Result<Option<(f64, f64)>> {
        let Some((v, e)) = self.opt_float_input(i, what)? else {
            return Ok(None);
        };
        if v.len() != 1 {
            return Err(self.invalid(format!(
                "input {i} ({what}) must hold one element, has shape {:?}",
                v.shape()
            )));
        }
        Ok(v.iter().next().copied().zip(e.iter().next().copied()))
    }

    /// Runs `kernel`, a kernel that only selects elements (a max or min), on integer data 0 as
    /// on floats, which hold integers exactly below 2^53, and gives its float outputs back as
    /// integers.
    pub fn selecting_on_integers(
        &self,
        kernel: fn(&Node) -> Result<Vec<Value>>,
    ) -> Result<Vec<Value>> {
        let Some(Value::Int(a)) = self.input(0) else {
            return kernel(self);
        };
        if a.iter().any(|v| v.unsigned_abs() >= 1 << 53) {
            return Err(self.unsupported("integers of 2^53 or more"));
        }
        let widened = Value::float(a.mapv(|v| v as f64), a.mapv(|_| 0.0));
        let mut inputs = self.inputs.clone();
        inputs[0] = Some(&widened);
        let node = Node {
            proto: self.proto,
            index: self.index,
            opset: self.opset,
            inputs,
            input_types: self.input_types.clone(),
        };
        // An extremum of no elements is infinite on floats; on integers it is the type's
        // smallest (a max) or largest (a min) value.
        let range = self
            .input_types
            .first()
            .copied()
            .flatten()
            .and_then(|d| match d {
                DType::Bool | DType::Uint8 => Some((0, if d == DType::Bool { 1 } else { 255 })),
                DType::Int8 => Some((-128, 127)),
                DType::Int32 => Some((i32::MIN.into(), i32::MAX.into())),
                DType::Int64 => Some((i64::MIN, i64::MAX)),
                _ => None,
            });
        let to_int = |x: f64| -> Option<i64> {
            match (x.is_finite(), range) {
                (true, _) => Some(x as i64),
                (false, Some((lo, hi))) => Some(if x < 0.0 { lo } else { hi }),
                (false, None) => None,
            }
        };
        kernel(&node)?
            .into_iter()
            .map(|v| match v {
                Value::Float { value, .. } => {
                    let ints: Option<Vec<i64>> = value.iter().map(|&x| to_int(x)).collect();
                    ints.map(|v| Value::Int(super::value::from_flat(value.shape(), v)))
                        .ok_or_else(|| {
                            self.unsupported(
                                "an extremum of no integers of an unknown type (the type's \
                                 smallest or largest value)",
                            )
                        })
                }
                int => Ok(int),
            })
            .collect()
    }

    /// True when output `i` is requested (present with a non-empty name).
    pub fn wants_output(&self, i: usize) -> bool {
        self.proto.output.get(i).is_some_and(|n| !n.is_empty())
    }
}

/// "node 3 'conv1' (Conv)": index, name when present, op type.
pub(crate) fn node_label(node: &pb::NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("node {index} ({})", node.op_type)
    } else {
        format!("node {index} '{}' ({})", node.name, node.op_type)
    }
}
