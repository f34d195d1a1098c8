//! libFuzzer bytes -> a random stream keyed by them -> the generator's model description -> the
//! checks of a conformance run (identity converter, tract, f64 oracle, error bound). A result
//! that is neither a pass nor an expected failure of corpus/known-failures.toml is a crash.
#![no_main]

use std::sync::OnceLock;

use harness::fuzzing::GeneratedCheck;

fn check() -> &'static GeneratedCheck {
    static CHECK: OnceLock<GeneratedCheck> = OnceLock::new();
    CHECK.get_or_init(|| {
        // Beside the executable where a fuzzing service runs it without the source tree
        // (.clusterfuzzlite/build.sh puts it there); else the repository's.
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("known-failures.toml")))
            .filter(|p| p.is_file());
        let ledger = beside.unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/known-failures.toml")
        });
        GeneratedCheck::new(Some(&ledger)).expect("identity on tract builds")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = check().check(data) {
        panic!("{e}");
    }
});
