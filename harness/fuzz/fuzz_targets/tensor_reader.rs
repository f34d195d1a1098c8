//! The TensorProto reader (test-case `input_J.pb` / `output_J.pb`) on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fuzzing::read_tensor(data));
