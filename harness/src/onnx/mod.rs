//! ONNX files: protobuf helpers, model emission and the ONNX test-case directory.

pub mod emit;
pub mod pack;
pub mod perturb;
pub mod proto;
pub mod slice;
pub mod testcase;
