//! The f64 reference interpreter ("oracle") over ONNX graphs.
//!
//! It computes golden outputs of a model for given inputs, and for each float output a
//! per-element error-bound coefficient from which the comparison derives its tolerance (rules
//! in [`bound`]). Kernels are naive loops written for clarity, following the ONNX operator
//! spec; the oracle shares no code with any runtime under test.
//!
//! Layout: `graph` walks the graph; `ops` is the operator table (opsets, arity, attributes)
//! mapping op types to kernels in `conv`, `pool`, `elementwise`, `arith`, `linalg`, `norm`,
//! `reduce`, `layout`, `indexing`, `cast` and `quant`; `geometry` holds the sliding-window
//! arithmetic shared by Conv and the pools; `node` reads attributes and inputs with the spec's
//! checks.

mod arith;
pub mod bound;
mod cast;
mod conv;
mod elementwise;
mod geometry;
mod graph;
mod indexing;
mod layout;
mod linalg;
mod node;
mod norm;
mod ops;
mod pool;
mod qlinear;
mod quant;
mod reduce;
mod value;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use ndarray::ArrayD;
use tract_onnx::pb;

use crate::tensor::{DType, Named};

pub use value::Value;

/// Golden outputs of one model run.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// One per graph output, in graph-output order.
    pub outputs: Vec<GoldenOutput>,
}

/// One golden output.
#[derive(Debug, Clone, PartialEq)]
pub struct GoldenOutput {
    /// Graph output name.
    pub name: String,
    /// Exact value (integers widened to f64).
    pub value: ArrayD<f64>,
    /// Per-element error-bound coefficient `b`: an f-precision implementation (unit roundoff u:
    /// 2^-24 for f32, 2^-11 for f16, 2^-8 for bf16) is expected to be within `b * u` of `value`.
    /// Zero for integer outputs, except QuantizeLinear's, which allow a quantum (`b * u` = 1 at
    /// f32) where a rounding decision is ambiguous (see the `quant` module).
    pub bound: ArrayD<f64>,
    /// Element type the graph declares for this output (Float if unknown).
    pub dtype: DType,
}

/// Why the oracle could not evaluate a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OracleError {
    /// The model is invalid by the ONNX spec (wrong weight shape, group not dividing channels,
    /// output length < 1, missing input, cycle, bad attribute...).
    #[error("invalid model: {0}")]
    Invalid(String),
    /// A valid construct the oracle does not implement (op, attribute value, domain, opset).
    #[error("unsupported by the oracle: {0}")]
    Unsupported(String),
    /// The inputs given do not match the graph inputs (count, name, type, shape).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A valid model whose result the spec leaves undefined for these inputs (e.g. a max-pool
    /// window covering only padding).
    #[error("result undefined by the spec: {0}")]
    Undefined(String),
    /// A tensor or a kernel's work exceeds the oracle's limits.
    #[error("too large: {0}")]
    TooLarge(String),
}

/// Computes the golden outputs of `model` on `inputs` (matched to graph inputs by name).
pub fn evaluate(model: &pb::ModelProto, inputs: &[Named]) -> Result<Evaluation, OracleError> {
    graph::run(model, inputs).map(|(evaluation, _)| evaluation)
}

/// Same as [`evaluate`], but also returns every tensor computed, by name: graph inputs,
/// initializers used and each node output (float tensors with their bounds, integer tensors
/// as [`Value::Int`], except QuantizeLinear's, which are floats with a bound), for
/// first-diverging-layer analysis.
pub fn evaluate_all(
    model: &pb::ModelProto,
    inputs: &[Named],
) -> Result<(Evaluation, HashMap<String, Value>), OracleError> {
    graph::run(model, inputs)
}

impl OracleError {
    /// Prefixes the message with where the error happened.
    fn context(self, place: &str) -> OracleError {
        match self {
            OracleError::Invalid(m) => OracleError::Invalid(format!("{place}: {m}")),
            OracleError::Unsupported(m) => OracleError::Unsupported(format!("{place}: {m}")),
            OracleError::BadInput(m) => OracleError::BadInput(format!("{place}: {m}")),
            OracleError::Undefined(m) => OracleError::Undefined(format!("{place}: {m}")),
            OracleError::TooLarge(m) => OracleError::TooLarge(format!("{place}: {m}")),
        }
    }
}
