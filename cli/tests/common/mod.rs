//! Helpers shared by the end-to-end tests of the `harness` command.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_harness");

pub fn harness(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("harness runs")
}

pub fn conformance(report: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "conformance",
        "--no-corpus",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    harness(&args)
}

pub fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).expect("report.json written"))
        .unwrap()
}

pub fn verdicts(r: &Value) -> Vec<String> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["verdict"].as_str().unwrap().to_string())
        .collect()
}

pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Results without timings, for determinism checks.
pub fn stable_results(r: &Value) -> Vec<Value> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let mut x = x.clone();
            x.as_object_mut().unwrap().remove("latency_us");
            x.as_object_mut().unwrap().remove("wall_ms");
            x
        })
        .collect()
}

/// The project's Python environment, or None (with a note) when it is missing and the run
/// does not require it (`cargo xtask test` sets HARNESS_REQUIRE_PYTHON=1).
pub fn python() -> Option<std::path::PathBuf> {
    let found = harness::worker::find_python();
    if found.is_none() {
        assert!(
            std::env::var_os("HARNESS_REQUIRE_PYTHON").is_none(),
            "HARNESS_REQUIRE_PYTHON is set but no Python environment was found"
        );
        eprintln!("SKIPPED: no .venv (run `cargo xtask setup`)");
    }
    found
}

/// A converter that swaps Conv pads (a fault to catch) and a ledger in `dir` that expects its
/// wrong values on models with asymmetric Conv pads: a run with both unexpected and expected
/// failures. Returns (converter spec, ledger path).
pub fn swapped_pads_half_known(dir: &Path, reason: &str) -> (String, std::path::PathBuf) {
    let ledger = dir.join("ledger.toml");
    std::fs::write(
        &ledger,
        format!(
            "[[failure]]\nconverter = \"exec:*\"\nverdict = \"mismatch\"\n\
             classes = [\"Conv.pads=asymmetric\"]\nreason = \"{reason}\"\n"
        ),
    )
    .unwrap();
    (
        format!("exec:{BIN} inject-fault swap-pads {{input}} {{output}}"),
        ledger,
    )
}
