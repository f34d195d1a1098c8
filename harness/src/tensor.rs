//! Plain tensors exchanged between pipeline stages.
//!
//! Every stage (generator, ONNX files, oracle, runtimes, compare) speaks this one type, so no
//! stage depends on another's internals. Data is row-major; shapes are concrete.

use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

/// Element type of a [`Tensor`], named as in ONNX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float (`tensor(float)`).
    Float,
    /// 64-bit IEEE float (`tensor(double)`).
    Double,
    /// 64-bit signed integer (`tensor(int64)`).
    Int64,
    /// 32-bit signed integer (`tensor(int32)`).
    Int32,
    /// Boolean (`tensor(bool)`).
    Bool,
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            DType::Float => "float32",
            DType::Double => "float64",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Bool => "bool",
        };
        f.write_str(s)
    }
}

/// A dense tensor with a concrete shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// `float32` elements.
    F32(ArrayD<f32>),
    /// `float64` elements.
    F64(ArrayD<f64>),
    /// `int64` elements.
    I64(ArrayD<i64>),
    /// `int32` elements.
    I32(ArrayD<i32>),
    /// `bool` elements.
    Bool(ArrayD<bool>),
}

impl Tensor {
    /// Builds a float32 tensor; fails when `data` does not fill `shape`.
    pub fn f32(shape: &[usize], data: Vec<f32>) -> anyhow::Result<Tensor> {
        Ok(Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), data)?))
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::Float,
            Tensor::F64(_) => DType::Double,
            Tensor::I64(_) => DType::Int64,
            Tensor::I32(_) => DType::Int32,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::Bool(a) => a.shape(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// True when the tensor has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All elements widened to f64, in row-major order (booleans as 0/1).
    pub fn to_f64(&self) -> ArrayD<f64> {
        match self {
            Tensor::F32(a) => a.mapv(f64::from),
            Tensor::F64(a) => a.clone(),
            Tensor::I64(a) => a.mapv(|v| v as f64),
            Tensor::I32(a) => a.mapv(f64::from),
            Tensor::Bool(a) => a.mapv(|v| if v { 1.0 } else { 0.0 }),
        }
    }

    /// Elements as i64 (floats truncated); for shape-like inputs.
    pub fn to_i64(&self) -> ArrayD<i64> {
        match self {
            Tensor::F32(a) => a.mapv(|v| v as i64),
            Tensor::F64(a) => a.mapv(|v| v as i64),
            Tensor::I64(a) => a.clone(),
            Tensor::I32(a) => a.mapv(i64::from),
            Tensor::Bool(a) => a.mapv(i64::from),
        }
    }

    /// Bytes needed to hold the elements.
    pub fn byte_len(&self) -> usize {
        let width = match self.dtype() {
            DType::Float | DType::Int32 => 4,
            DType::Double | DType::Int64 => 8,
            DType::Bool => 1,
        };
        self.len() * width
    }
}

/// A named tensor: a model input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The graph input or output name.
    pub name: String,
    /// Its value.
    pub tensor: Tensor,
}
