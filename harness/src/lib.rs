//! Conformance and accuracy test harness for 1D CNN model converters.
//!
//! The pipeline, one module per stage: [`gen`] makes random models described by [`model`],
//! [`onnx`] writes them as ONNX, [`oracle`] computes golden outputs in f64 with error bounds,
//! [`convert`] applies the converter under test, [`runtime`] runs the result, [`compare`] turns
//! outputs into a verdict and [`report`] writes what happened. [`conformance`] drives it all.

pub mod compare;
pub mod conformance;
pub mod convert;
pub mod corpus;
pub mod fault;
pub mod flops;
pub mod fsutil;
pub mod fuzzing;
pub mod gen;
pub mod isolate;
pub mod ledger;
pub mod limits;
pub mod model;
pub mod onnx;
pub mod oracle;
pub mod report;
pub mod results;
pub mod runtime;
pub mod seed;
pub mod tensor;
pub mod worker;
