//! The `drift` verdict: a converter that swaps exact Gelu for its tanh approximation stays
//! inside the error bound, and is caught by comparing with the same runtime on the unconverted
//! model (docs/verdicts.md).

use serde_json::Value;

mod common;
use common::*;

/// The project's ledger, so that known failures of the runtimes stay expected.
fn ledger() -> String {
    format!(
        "{}/../corpus/known-failures.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `harness inject-fault gelu-tanh` as a converter.
fn gelu_tanh() -> String {
    format!("exec:{BIN} inject-fault gelu-tanh {{input}} {{output}}")
}

fn results(r: &Value) -> &Vec<Value> {
    r["results"].as_array().unwrap()
}

/// 200 cases of seed 1 hold three with an exact Gelu operator (opsets 20 and 21).
fn run_gelu_tanh(dir: &std::path::Path, runtime: &str, extra: &[&str]) -> (i32, Value) {
    let spec = gelu_tanh();
    let known = ledger();
    let mut args = vec![
        "--known-failures",
        &known,
        "--cases",
        "200",
        "--seed",
        "1",
        "--runtime",
        runtime,
        "--converter",
        &spec,
        "--reduce-budget",
        "5",
    ];
    args.extend_from_slice(extra);
    let out = conformance(dir, &args);
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 1, "{}", text(&out));
    (code, report(dir))
}

fn check_caught(runtime: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (code, r) = run_gelu_tanh(&tmp.path().join("on"), runtime, &[]);
    assert_eq!(code, 1);
    let drifted: Vec<&Value> = results(&r)
        .iter()
        .filter(|x| x["verdict"] == "drift")
        .collect();
    assert!(!drifted.is_empty(), "{}", r["summary"]);
    assert_eq!(r["summary"]["drift"], drifted.len());
    for x in &drifted {
        // Only models with the Gelu operator are changed by the fault.
        let classes: Vec<&str> = x["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(classes.contains(&"Gelu.form=op"), "{x}");
        // Inside the bound, and far further from the oracle than the reference.
        let worst = x["worst_ratio"].as_f64().unwrap();
        let reference = x["reference_ratio"].as_f64().unwrap();
        assert!((0.01..=1.0).contains(&worst), "{x}");
        assert!(worst > 16.0 * reference, "{x}");
        assert!(x["message"].as_str().unwrap().contains("drifted"), "{x}");
        // Reduced and bundled like any failure.
        assert!(x["repro"].is_string(), "{x}");
    }
    // The bundle's script replays it outside the harness: still drift against the same
    // runtime on the unconverted model.
    if let Some(python) = python() {
        let bundle = std::path::Path::new(drifted[0]["repro"].as_str().unwrap());
        let replay = std::process::Command::new(python)
            .arg(bundle.join("repro.py"))
            .output()
            .unwrap();
        assert_eq!(replay.status.code(), Some(1), "{}", text(&replay));
        assert!(
            String::from_utf8_lossy(&replay.stdout).contains("still failing (drift"),
            "{}",
            text(&replay)
        );
    }
    // The bound alone lets every one of them pass: that is what the check is for.
    let (code, off) = run_gelu_tanh(
        &tmp.path().join("off"),
        runtime,
        &["--drift-factor", "0", "--max-bundles", "0"],
    );
    for x in &drifted {
        let same = results(&off)
            .iter()
            .find(|y| y["case"] == x["case"])
            .unwrap();
        assert_eq!(same["verdict"], "pass", "{same}");
        assert!(same.get("reference_ratio").is_none(), "{same}");
    }
    assert_eq!(off["summary"]["drift"], 0);
    assert_eq!(code, 0, "{}", off["summary"]);
}

#[test]
fn exact_gelu_made_tanh_is_drift_on_tract() {
    check_caught("tract");
}

#[test]
fn exact_gelu_made_tanh_is_drift_on_onnxruntime() {
    if python().is_none() {
        return;
    }
    check_caught("onnxruntime");
}

#[test]
fn rewrites_that_keep_the_function_are_compared_and_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let known = ledger();
    let out = conformance(
        tmp.path(),
        &[
            "--known-failures",
            &known,
            "--cases",
            "150",
            "--seed",
            "21",
            "--max-bundles",
            "0",
        ],
    );
    let r = report(tmp.path());
    assert_eq!(r["summary"]["drift"], 0, "{}", text(&out));
    let compared = |converter: &str| {
        results(&r)
            .iter()
            .filter(|x| x["converter"] == converter && x["reference_ratio"].is_number())
            .count()
    };
    // lower1d and nnef change the model and run on tract: their passes carry the reference.
    assert!(compared("lower1d") >= 80, "{}", r["summary"]);
    assert!(compared("nnef") >= 60, "{}", r["summary"]);
    // identity's reference would be itself.
    assert_eq!(compared("identity"), 0);
}

#[test]
fn a_negative_drift_factor_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = conformance(tmp.path(), &["--cases", "1", "--drift-factor=-1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--drift-factor"),
        "{}",
        text(&out)
    );
}
