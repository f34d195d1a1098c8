//! End-to-end tests of the `harness` command: real models, real tract, real processes.

use serde_json::Value;

mod common;
use common::*;

#[test]
fn identity_on_tract_passes_and_the_same_seed_gives_the_same_results() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let l = ledger();
    let out = conformance(
        &a,
        &[
            "--cases",
            "120",
            "--seed",
            "11",
            "--converter",
            "identity",
            "--known-failures",
            &l,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out_b = conformance(
        &b,
        &[
            "--cases",
            "120",
            "--seed",
            "11",
            "--converter",
            "identity",
            "--jobs",
            "1",
            "--known-failures",
            &l,
        ],
    );
    assert_eq!(out_b.status.code(), Some(0), "{}", text(&out_b));
    let (ra, rb) = (report(&a), report(&b));
    // The default run puts the quantized form of about an eighth of the cases beside them.
    let results = ra["summary"]["results"].as_u64().unwrap();
    let quantized = ra["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["case"].as_str().unwrap().contains("-q"))
        .count() as u64;
    assert!((5..=30).contains(&quantized), "{quantized} quantized cases");
    assert_eq!(results, 120 + quantized, "{}", ra["summary"]);
    let pass = ra["summary"]["pass"].as_u64().unwrap();
    let expected = ra["summary"]["expected"].as_u64().unwrap();
    assert_eq!(pass + expected, results, "{}", ra["summary"]);
    // tract's deviations in the ledger (LpPool, ConvTranspose output_shape, Softplus, ...) and
    // the negative cases it accepts are about 13% of the default distribution.
    assert!(pass >= 90, "{}", ra["summary"]);
    assert_eq!(stable_results(&ra), stable_results(&rb));
    assert!(ra["environment"]["runtimes"]["tract"].is_string());
    for file in ["report.md", "junit.xml"] {
        assert!(a.join(file).is_file(), "{file}");
    }
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{results} results")),
        "{}",
        text(&out)
    );
}

#[test]
fn a_converter_that_reverses_conv_kernels_is_caught_as_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!("exec:{BIN} inject-fault reverse-conv-kernels {{input}} {{output}}");
    let out = conformance(tmp.path(), &["--cases", "40", "--converter", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v = verdicts(&report(tmp.path()));
    assert!(v.iter().filter(|v| *v == "mismatch").count() >= 10, "{v:?}");
    // The injector converts every model; what tract itself refuses or accepts wrongly (LpPool,
    // negative cases) keeps its own verdict.
    assert!(
        v.iter()
            .all(|v| !v.starts_with("convert-") && v != "timeout" && v != "error"),
        "{v:?}"
    );
}

#[test]
fn a_converter_that_exits_non_zero_is_convert_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let out = conformance(
        tmp.path(),
        &[
            "--cases",
            "3",
            "--converter",
            "exec:'echo cannot convert >&2; false {input} {output}'",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = report(tmp.path());
    assert_eq!(verdicts(&r), vec!["convert-rejected"; 3]);
    assert!(r["results"][0]["message"]
        .as_str()
        .unwrap()
        .contains("cannot convert"));
}

#[test]
fn a_converter_that_sleeps_past_the_timeout_is_timeout_and_the_run_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = conformance(
        tmp.path(),
        &[
            "--cases",
            "3",
            "--timeout",
            "0.5",
            "--converter",
            "exec:'sleep 30; cp {input} {output}'",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = report(tmp.path());
    assert_eq!(verdicts(&report), vec!["timeout"; 3]);
    // Each was run again alone, and timed out again: a hang of its own.
    for r in report["results"].as_array().unwrap() {
        let m = r["message"].as_str().unwrap_or("");
        assert!(m.contains("also alone, in a fresh worker"), "{m}");
        assert!(r.get("in_parallel").is_none(), "{r}");
    }
    assert!(start.elapsed().as_secs() < 20);
}

#[test]
fn a_timeout_that_does_not_happen_alone_is_not_a_verdict() {
    // The converter hangs on its first call only, as a converter starved by its neighbours
    // would: the parallel run times out on one case, the run alone completes.
    let tmp = tempfile::tempdir().unwrap();
    let mark = tmp.path().join("first-call");
    let converter = format!(
        "exec:'if mkdir {} 2>/dev/null; then sleep 30; fi; cp {{input}} {{output}}'",
        mark.display()
    );
    let out = conformance(
        tmp.path(),
        &[
            "--cases",
            "3",
            "--timeout",
            "0.5",
            "--converter",
            &converter,
        ],
    );
    let report = report(tmp.path());
    assert_eq!(verdicts(&report), vec!["pass"; 3], "{}", text(&out));
    let flagged: Vec<&serde_json::Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("in_parallel").is_some())
        .collect();
    assert_eq!(flagged.len(), 1, "{report}");
    let parallel = flagged[0]["in_parallel"].as_str().unwrap();
    assert!(
        parallel.starts_with("timeout: ") && parallel.contains("still running after 500ms"),
        "{parallel}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("not reproduced alone: 1 result(s) timed out or lost their worker"),
        "{stdout}"
    );
}

#[test]
fn usage_and_setup_errors_exit_2_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().to_str().unwrap();
    for (args, needle) in [
        (
            vec!["conformance", "--report", r, "--converter", "bogus"],
            "unknown converter 'bogus'",
        ),
        (
            vec!["conformance", "--report", r, "--runtime", "bogus"],
            "unknown runtime 'bogus'",
        ),
        (
            vec!["conformance", "--report", r, "--onnx-tests", "/no/such/dir"],
            "/no/such/dir: no such directory",
        ),
        (
            vec!["conformance", "--report", r, "--shard", "3/2"],
            "1 <= I <= N",
        ),
        (
            vec!["conformance", "--report", r, "--cases", "many"],
            "invalid value",
        ),
    ] {
        let out = harness(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

fn ledger() -> String {
    format!(
        "{}/../corpus/known-failures.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn the_ledger_silences_a_known_failure_and_an_unexpected_pass_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    // The first 60 cases of seed 0 hit tract deviations listed in the ledger.
    let without = conformance(
        &tmp.path().join("a"),
        &["--cases", "60", "--converter", "identity"],
    );
    assert_eq!(without.status.code(), Some(1), "{}", text(&without));
    let with = conformance(
        &tmp.path().join("b"),
        &[
            "--cases",
            "60",
            "--converter",
            "identity",
            "--known-failures",
            &ledger(),
        ],
    );
    assert_eq!(with.status.code(), Some(0), "{}", text(&with));
    let r = report(&tmp.path().join("b"));
    assert!(
        r["summary"]["expected"].as_u64().unwrap() >= 1,
        "{}",
        r["summary"]
    );
    let expected: Vec<&Value> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["expected"].is_string())
        .collect();
    assert!(expected.iter().any(|x| x["verdict"] == "mismatch"));
    assert!(expected.iter().all(|x| x["verdict"] != "pass"));

    // An entry for something that passes is an unexpected pass and turns the run red.
    let stale = tmp.path().join("stale.toml");
    std::fs::write(
        &stale,
        "[[failure]]\nconverter = \"identity\"\nclasses = [\"Relu\"]\nwitness = \"s3-i0\"\nverdict = \"mismatch\"\nreason = \"fixed long ago\"\n",
    )
    .unwrap();
    let out = conformance(
        &tmp.path().join("c"),
        &[
            "--cases",
            "20",
            "--seed",
            "3",
            "--converter",
            "identity",
            "--known-failures",
            stale.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unexpected pass"),
        "{}",
        text(&out)
    );
    assert!(!report(&tmp.path().join("c"))["unexpected_passes"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn lower1d_command_rewrites_a_model_that_still_matches_its_golden_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("suite/case");
    let out = harness(&[
        "emit",
        "--seed",
        "5",
        "--index",
        "11",
        case.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let lowered = tmp.path().join("lowered.onnx");
    let out = harness(&[
        "lower1d",
        case.join("model.onnx").to_str().unwrap(),
        lowered.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let bytes = std::fs::read(&lowered).unwrap();
    let model = harness::onnx::proto::decode_model(&bytes).unwrap();
    let ops: Vec<String> = model
        .graph
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect();
    // Element-wise ops before the first conv stay 1D; the data enters 2D once and leaves once.
    assert_eq!(
        ops.iter().filter(|o| *o == "Unsqueeze").count(),
        1,
        "{ops:?}"
    );
    assert_eq!(ops.last().map(String::as_str), Some("Squeeze"), "{ops:?}");
    std::fs::write(case.join("model.onnx"), bytes).unwrap();
    let rdir = tmp.path().join("report");
    let out = conformance(
        &rdir,
        &[
            "--cases",
            "0",
            "--converter",
            "identity",
            "--onnx-tests",
            tmp.path().join("suite").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = report(&rdir);
    assert_eq!(verdicts(&r), vec!["pass", "pass"], "{}", r["results"]);
}

#[test]
fn two_shards_merged_give_the_results_of_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let common = [
        "--cases",
        "30",
        "--seed",
        "4",
        "--converter",
        "identity",
        "--max-bundles",
        "0",
    ];
    let whole = conformance(&p("whole"), &common);
    let mut s1 = common.to_vec();
    s1.extend(["--shard", "1/2"]);
    let mut s2 = common.to_vec();
    s2.extend(["--shard", "2/2"]);
    let a = conformance(&p("s1"), &s1);
    let b = conformance(&p("s2"), &s2);
    // A shard takes every case of its indices, the quantized ones beside them included.
    let results = |dir: &str| report(&p(dir))["summary"]["results"].as_u64().unwrap();
    assert!(results("s1") >= 15, "{}", text(&a));
    assert!(results("s2") >= 15, "{}", text(&b));
    assert_eq!(results("s1") + results("s2"), results("whole"));
    assert!(
        results("whole") > 30,
        "no quantized case beside the 30 float ones"
    );
    let merged = harness(&[
        "report",
        "--merge",
        p("s1").to_str().unwrap(),
        p("s2").to_str().unwrap(),
        "--report",
        p("merged").to_str().unwrap(),
        "--known-failures",
        "/dev/null",
    ]);
    assert_eq!(
        merged.status.code(),
        whole.status.code(),
        "{}",
        text(&merged)
    );
    assert_eq!(
        stable_results(&report(&p("merged"))),
        stable_results(&report(&p("whole")))
    );
}

#[test]
fn fuzz_catches_a_pad_swapping_converter_and_its_bundle_reproduces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = format!("exec:{BIN} inject-fault swap-pads {{input}} {{output}}");
    let rdir = tmp.path().join("report");
    let out = harness(&[
        "fuzz",
        "--budget",
        "15",
        "--no-save",
        "--converter",
        &spec,
        "--report",
        rdir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut best: Option<(usize, std::path::PathBuf)> = None;
    for entry in std::fs::read_dir(rdir.join("failures")).unwrap() {
        let dir = entry.unwrap().path();
        let meta: Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        if meta["verdict"] != "mismatch" {
            continue;
        }
        assert!(meta["first_diverging_node"]["op"].is_string(), "{meta}");
        let nodes = meta["reduction"]["nodes"].as_u64().unwrap() as usize;
        if best.as_ref().is_none_or(|(n, _)| nodes < *n) {
            best = Some((nodes, dir));
        }
    }
    let (nodes, bundle) = best.expect("a mismatch bundle");
    let ops: Vec<String> =
        harness::onnx::proto::decode_model(&std::fs::read(bundle.join("model.onnx")).unwrap())
            .unwrap()
            .graph
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.clone())
            .collect();
    // The op whose pads were swapped, at most one more node, and the output Identity.
    assert!(nodes <= 3, "smallest bundle has {nodes} nodes: {ops:?}");
    let again = conformance(
        &tmp.path().join("again"),
        &[
            "--cases",
            "0",
            "--converter",
            &spec,
            "--onnx-tests",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(verdicts(&report(&tmp.path().join("again"))).contains(&"mismatch".to_string()));
}

/// Writes a test-case directory with a hand-made model and one data set.
#[test]
fn min_coverage_fails_the_run_and_names_the_classes_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let few = conformance(
        dir.path(),
        &[
            "--cases",
            "8",
            "--converter",
            "identity",
            "--min-coverage",
            "5",
        ],
    );
    assert_eq!(few.status.code(), Some(1), "{}", text(&few));
    let out = text(&few);
    assert!(
        out.contains("catalogue classes have fewer than 5 cases") && out.contains("opset="),
        "{out}"
    );
    let ok = conformance(
        dir.path(),
        &[
            "--cases",
            "8",
            "--converter",
            "identity",
            "--min-coverage",
            "0",
        ],
    );
    assert!(
        text(&ok).contains("every catalogue class has at least 0 cases"),
        "{}",
        text(&ok)
    );
}

#[test]
fn float16_models_and_a_wider_opset_range_run_with_verdicts_and_bad_ranges_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let l = ledger();
    let dir = tmp.path().join("f16");
    let out = conformance(
        &dir,
        &[
            "--cases",
            "60",
            "--seed",
            "2",
            "--dtype",
            "float16",
            "--opsets",
            "7-28",
            "--converter",
            "identity",
            "--max-bundles",
            "0",
            "--known-failures",
            &l,
        ],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let r = report(&dir);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 60);
    let has = |x: &Value, class: &str| x["classes"].as_array().unwrap().iter().any(|c| c == class);
    assert!(results.iter().all(|x| has(x, "dtype=float16")));
    assert!(
        results.iter().all(|x| x["verdict"] != "error"),
        "{}",
        r["summary"]
    );
    let passed: Vec<&Value> = results.iter().filter(|x| x["verdict"] == "pass").collect();
    assert!(passed.len() >= 20, "{}", r["summary"]);
    // Compared results (negative cases are refused, not compared) were judged at float16's
    // precision.
    let compared: Vec<&&Value> = passed
        .iter()
        .filter(|x| x["worst_ratio"].is_number())
        .collect();
    assert!(compared.len() >= 20);
    assert!(
        compared.iter().all(|x| x["precision"] == "f16"),
        "{:?}",
        passed[0]
    );
    // Opsets from both ends of the range were drawn.
    let opsets: std::collections::BTreeSet<i64> = results
        .iter()
        .flat_map(|x| x["classes"].as_array().unwrap())
        .filter_map(|c| c.as_str()?.strip_prefix("opset=")?.parse().ok())
        .collect();
    assert!(
        opsets.iter().any(|&o| o < 11) && opsets.iter().any(|&o| o > 21),
        "{opsets:?}"
    );
    for bad in [
        &["--opsets", "0-28"][..],
        &["--opsets", "12-9"],
        &["--opset", "29"],
        &["--opsets", "x"],
    ] {
        let o = conformance(&tmp.path().join("bad"), &[&["--cases", "1"], bad].concat());
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", text(&o));
        assert!(text(&o).contains("opset"), "{}", text(&o));
    }
}
