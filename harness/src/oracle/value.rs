//! Values flowing along graph edges, and the index arithmetic the kernels share.

use std::borrow::Cow;

use ndarray::{ArrayD, IxDyn};
use tract_onnx::pb;

use crate::limits::TooLarge;
use crate::onnx::proto::{tensor_from_proto, Unsupported};
use crate::tensor::Tensor;

use super::{bound, OracleError};

/// A tensor computed by the oracle.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A floating-point tensor and its error-bound coefficients (same shape; see
    /// [`super::bound`]). QuantizeLinear's integer outputs are held this way too, exact
    /// integers with a bound that allows an ambiguous rounding (see `super::quant`).
    Float {
        /// The exact (f64) value.
        value: ArrayD<f64>,
        /// Per-element error-bound coefficient, in units of the runtime's unit roundoff.
        bound: ArrayD<f64>,
    },
    /// An integer tensor (int64, int32 and bool are all held as i64): shapes, axes, indices.
    /// Integer arithmetic is exact, so there is no bound.
    Int(ArrayD<i64>),
}

impl Value {
    /// A float value with its bound; both must have the same shape.
    pub fn float(value: ArrayD<f64>, bound: ArrayD<f64>) -> Value {
        debug_assert_eq!(value.shape(), bound.shape());
        Value::Float { value, bound }
    }

    /// A float value that a runtime reads from a file or a constant: exact up to one rounding
    /// to its precision.
    pub fn rounded(value: ArrayD<f64>) -> Value {
        let bound = value.mapv(bound::rounding);
        Value::Float { value, bound }
    }

    /// Converts a tensor given to the harness (graph input, initializer, constant).
    pub fn from_tensor(t: &Tensor) -> Value {
        match t {
            Tensor::F32(_) | Tensor::F64(_) | Tensor::F16(_) | Tensor::Bf16(_) => {
                Value::rounded(t.to_f64())
            }
            Tensor::I64(_) | Tensor::I32(_) | Tensor::I8(_) | Tensor::U8(_) | Tensor::Bool(_) => {
                Value::Int(t.to_i64())
            }
        }
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Float { value, .. } => value.shape(),
            Value::Int(a) => a.shape(),
        }
    }

    /// True for floating-point values.
    pub fn is_float(&self) -> bool {
        matches!(self, Value::Float { .. })
    }

    /// Element kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Float { .. } => "float",
            Value::Int(_) => "int64",
        }
    }
}

/// Reads a `TensorProto` (initializer or Constant attribute) as a value.
pub fn proto_value(t: &pb::TensorProto) -> Result<Value, OracleError> {
    let tensor = tensor_from_proto(t).map_err(|e| {
        let msg = format!("{e:#}");
        if e.chain().any(|c| c.is::<Unsupported>()) {
            OracleError::Unsupported(msg)
        } else if e.chain().any(|c| c.is::<TooLarge>()) {
            OracleError::TooLarge(msg)
        } else {
            OracleError::Invalid(msg)
        }
    })?;
    Ok(Value::from_tensor(&tensor))
}

/// Elements of an array in row-major order, borrowed when the layout allows it.
pub fn flat<T: Clone>(a: &ArrayD<T>) -> Cow<'_, [T]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().cloned().collect()),
    }
}

/// Builds an array from row-major data; the length is the caller's invariant.
pub fn from_flat<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).unwrap_or_else(|e| {
        // Every kernel pushes exactly one element per output index, so this is a bug, not an
        // input-dependent failure.
        panic!("oracle kernel produced the wrong element count for shape {shape:?}: {e}")
    })
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Element count of a shape, or `None` when it exceeds the element limit
/// ([`crate::limits::max_elements`]).
pub fn element_count(shape: &[usize]) -> Option<usize> {
    crate::limits::element_count(shape)
}

/// Calls `f` with every index of `shape`, in row-major order (an odometer).
pub fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx = vec![0usize; shape.len()];
    loop {
        f(&idx);
        // Advance the last axis, carrying into earlier ones.
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            idx[axis] += 1;
            if idx[axis] < shape[axis] {
                break;
            }
            idx[axis] = 0;
        }
    }
}

/// Like [`for_each_index`], stopping at the first error.
pub fn try_for_each_index<E>(
    shape: &[usize],
    mut f: impl FnMut(&[usize]) -> Result<(), E>,
) -> Result<(), E> {
    let mut result = Ok(());
    for_each_index(shape, |i| {
        if result.is_ok() {
            result = f(i);
        }
    });
    result
}

/// Every index of `shape`, in row-major order; for small shapes such as kernels.
pub fn all_indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for_each_index(shape, |i| out.push(i.to_vec()));
    out
}

/// The numpy (multidirectional) broadcast of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// `a` broadcast (numpy rules) to `shape`, as an owned array; `None` when impossible.
pub fn broadcast_to<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Option<ArrayD<T>> {
    Some(a.broadcast(IxDyn(shape))?.to_owned())
}

/// Resolves a possibly negative axis against `rank` (accepted range `[-rank, rank)`).
pub fn resolve_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}
