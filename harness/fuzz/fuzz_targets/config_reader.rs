//! The case.toml, known-failures.toml and report.json readers on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::fuzzing::read_config(data));
