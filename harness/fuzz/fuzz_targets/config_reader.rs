//! The case.toml, known-failures.toml, report.json and perf baseline readers on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::fuzzing::read_config(data);
    latency::baseline::read_any(data);
});
