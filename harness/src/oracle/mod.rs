//! The f64 reference interpreter ("oracle") over ONNX graphs.
