//! The ONNX reader and the oracle's graph loader on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fuzzing::read_model(data));
