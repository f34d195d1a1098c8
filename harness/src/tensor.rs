//! Plain tensors exchanged between pipeline stages.
//!
//! Every stage (generator, ONNX files, oracle, runtimes, compare) speaks this one type, so no
//! stage depends on another's internals. Data is row-major; shapes are concrete.

use half::{bf16, f16};
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
    /// 16-bit IEEE float (`tensor(float16)`).
    Float16,
    /// bfloat16: float32's exponent with 8 significant bits (`tensor(bfloat16)`).
    Bfloat16,
    /// 64-bit signed integer (`tensor(int64)`).
    Int64,
    /// 32-bit signed integer (`tensor(int32)`).
    Int32,
    /// 8-bit signed integer (`tensor(int8)`).
    Int8,
    /// 8-bit unsigned integer (`tensor(uint8)`).
    Uint8,
    /// Boolean (`tensor(bool)`).
    Bool,
}

impl DType {
    /// True for the floating-point types.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float | DType::Double | DType::Float16 | DType::Bfloat16
        )
    }

    /// Largest finite value of a float type (float32's for the non-float types).
    pub fn max_finite(self) -> f64 {
        match self {
            DType::Float16 => f64::from(f16::MAX),
            DType::Bfloat16 => f64::from(bf16::MAX),
            DType::Double => f64::MAX,
            _ => f64::from(f32::MAX),
        }
    }

    /// Smallest positive normal value of a float type (float32's for the non-float types).
    pub fn min_positive(self) -> f64 {
        match self {
            DType::Float16 => f64::from(f16::MIN_POSITIVE),
            DType::Bfloat16 => f64::from(bf16::MIN_POSITIVE),
            DType::Double => f64::MIN_POSITIVE,
            _ => f64::from(f32::MIN_POSITIVE),
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            DType::Float => "float32",
            DType::Double => "float64",
            DType::Float16 => "float16",
            DType::Bfloat16 => "bfloat16",
            DType::Int64 => "int64",
            DType::Int32 => "int32",
            DType::Int8 => "int8",
            DType::Uint8 => "uint8",
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
    /// `float16` elements.
    F16(ArrayD<f16>),
    /// `bfloat16` elements.
    Bf16(ArrayD<bf16>),
    /// `int64` elements.
    I64(ArrayD<i64>),
    /// `int32` elements.
    I32(ArrayD<i32>),
    /// `int8` elements.
    I8(ArrayD<i8>),
    /// `uint8` elements.
    U8(ArrayD<u8>),
    /// `bool` elements.
    Bool(ArrayD<bool>),
}

impl Tensor {
    /// Builds a float32 tensor; fails when `data` does not fill `shape`.
    pub fn f32(shape: &[usize], data: Vec<f32>) -> anyhow::Result<Tensor> {
        Ok(Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), data)?))
    }

    /// The elements of `values` rounded to the float type `dtype` (to nearest, ties to even),
    /// or `None` when `dtype` is not a float type.
    pub fn from_f64(dtype: DType, values: &ArrayD<f64>) -> Option<Tensor> {
        Some(match dtype {
            DType::Float => Tensor::F32(values.mapv(|v| v as f32)),
            DType::Double => Tensor::F64(values.clone()),
            DType::Float16 => Tensor::F16(values.mapv(f16::from_f64)),
            DType::Bfloat16 => Tensor::Bf16(values.mapv(bf16::from_f64)),
            _ => return None,
        })
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::Float,
            Tensor::F64(_) => DType::Double,
            Tensor::F16(_) => DType::Float16,
            Tensor::Bf16(_) => DType::Bfloat16,
            Tensor::I64(_) => DType::Int64,
            Tensor::I32(_) => DType::Int32,
            Tensor::I8(_) => DType::Int8,
            Tensor::U8(_) => DType::Uint8,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::F64(a) => a.shape(),
            Tensor::F16(a) => a.shape(),
            Tensor::Bf16(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
            Tensor::I32(a) => a.shape(),
            Tensor::I8(a) => a.shape(),
            Tensor::U8(a) => a.shape(),
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
            Tensor::F16(a) => a.mapv(f64::from),
            Tensor::Bf16(a) => a.mapv(f64::from),
            Tensor::I64(a) => a.mapv(|v| v as f64),
            Tensor::I32(a) => a.mapv(f64::from),
            Tensor::I8(a) => a.mapv(f64::from),
            Tensor::U8(a) => a.mapv(f64::from),
            Tensor::Bool(a) => a.mapv(|v| if v { 1.0 } else { 0.0 }),
        }
    }

    /// Elements as i64 (floats truncated); for shape-like inputs.
    pub fn to_i64(&self) -> ArrayD<i64> {
        match self {
            Tensor::F32(a) => a.mapv(|v| v as i64),
            Tensor::F64(a) => a.mapv(|v| v as i64),
            Tensor::F16(a) => a.mapv(|v| f64::from(v) as i64),
            Tensor::Bf16(a) => a.mapv(|v| f64::from(v) as i64),
            Tensor::I64(a) => a.clone(),
            Tensor::I32(a) => a.mapv(i64::from),
            Tensor::I8(a) => a.mapv(i64::from),
            Tensor::U8(a) => a.mapv(i64::from),
            Tensor::Bool(a) => a.mapv(i64::from),
        }
    }

    /// Bytes needed to hold the elements.
    pub fn byte_len(&self) -> usize {
        let width = match self.dtype() {
            DType::Float | DType::Int32 => 4,
            DType::Double | DType::Int64 => 8,
            DType::Float16 | DType::Bfloat16 => 2,
            DType::Bool | DType::Int8 | DType::Uint8 => 1,
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
