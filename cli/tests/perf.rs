//! End-to-end tests of `harness perf`: real models, real tract (and the Python runtimes when
//! the environment is there), real processes. No timing target is asserted: on a shared
//! machine wall-clock numbers inform, they do not decide tests.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_harness");

fn harness(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("HARNESS_PERF_QUIET", "1")
        .output()
        .expect("harness runs")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A corpus of one small generated case.
fn corpus(dir: &Path) -> String {
    let case = dir.join("corpus/tiny");
    let o = harness(&[
        "emit",
        "--seed",
        "0",
        "--index",
        "3",
        case.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join("corpus").display().to_string()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn tract_args<'a>(corpus: &'a str, report: &'a str) -> Vec<&'a str> {
    vec![
        "perf",
        "--corpus",
        corpus,
        "--runtime",
        "tract",
        "--converter",
        "identity",
        "--converter",
        "lower1d",
        "--budget",
        "0.05",
        "--report",
        report,
    ]
}

#[test]
fn save_then_baseline_round_trips_and_writes_every_report() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    let base = tmp.path().join("baselines/b.json");
    let (r, b) = (report.to_str().unwrap(), base.to_str().unwrap());
    let mut args = tract_args(&corpus, r);
    args.extend(["--save", b, "--loads", "2", "--sessions", "2"]);
    let o = harness(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let saved = json(&base);
    assert_eq!(saved["schema"], 2);
    assert!(saved["environment"]["cpu"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    let results = saved["cases"][0]["results"].as_array().unwrap();
    let keys: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["converter"].as_str().unwrap().into(),
                r["runtime"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("identity".into(), "tract".into()),
            ("lower1d".into(), "tract".into())
        ]
    );
    for r in results {
        let rounds = r["calibrated_rounds"].as_array().unwrap();
        assert!(rounds.len() >= 20, "at least min_rounds rounds: {r}");
        let loads: Vec<u64> = r["load_rounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect();
        assert_eq!(loads.len(), 4, "2 loads in each of 2 sessions: {r}");
        assert_eq!(loads.iter().sum::<u64>() as usize, rounds.len());
        assert_eq!(r["rounds_us"].as_array().unwrap().len(), rounds.len());
        assert!(
            r["latency_us"]["p99"].as_f64().unwrap() >= r["latency_us"]["p50"].as_f64().unwrap()
        );
        assert!(r["gflops"].as_f64().unwrap() > 0.0);
        // samples are in perf-samples.json, not in the baseline
        assert!(r.get("samples").is_none());
        // tract is timed in this process: no round modes
        assert!(r.get("calibrated_modes").is_none(), "{r}");
    }
    // lower1d is related to identity on the same runtime
    assert!(results[1]["vs_original"]["estimate"].as_f64().unwrap() > 0.0);

    let mut args = tract_args(&corpus, r);
    args.extend(["--baseline", b]);
    let o = harness(&args);
    // 0 or 1 depending on the machine's noise; never a set-up error
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let now = json(&report.join("perf.json"));
    let entries = now["comparison"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        let ratio = &e["ratio"];
        assert!(ratio["low"].as_f64().unwrap() <= ratio["estimate"].as_f64().unwrap());
        assert!(ratio["estimate"].as_f64().unwrap() <= ratio["high"].as_f64().unwrap());
        assert!(e["command"].as_str().unwrap().contains("--baseline"));
        // same machine: the raw floors are a view too; tract has no mode view
        assert!(
            e["raw_floor_ratio"]["estimate"].as_f64().unwrap() > 0.0,
            "{e}"
        );
        assert!(e.get("mode_ratio").is_none(), "{e}");
    }
    let samples = json(&report.join("perf-samples.json"));
    assert!(samples["tiny / identity / tract"].as_array().unwrap().len() >= 20);
    let md = std::fs::read_to_string(report.join("perf.md")).unwrap();
    assert!(
        md.contains("## Regressions") && md.contains("Cost of each conversion"),
        "{md}"
    );
    let html = std::fs::read_to_string(report.join("perf.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 3,
        "distribution, baseline vs now, GFLOP/s"
    );
}

#[test]
fn a_large_slowdown_is_flagged_with_the_command_to_reproduce_it() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    let base = tmp.path().join("b.json");
    let (r, b) = (report.to_str().unwrap(), base.to_str().unwrap());
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "perf",
            "--corpus",
            &corpus,
            "--runtime",
            "tract",
            "--converter",
            "identity",
        ];
        a.extend(["--budget", "0.1", "--report", r]);
        a.extend(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let save: Vec<String> = args(&["--save"])
        .into_iter()
        .chain([b.to_string()])
        .collect();
    let o = harness(&save.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // four times slower: far beyond any noise of this machine
    let slow: Vec<String> = args(&["--slowdown", "300", "--baseline"])
        .into_iter()
        .chain([b.to_string()])
        .collect();
    let o = harness(&slow.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = std::fs::read_to_string(report.join("perf.md")).unwrap();
    let regressions = md.split("## Against the baseline").next().unwrap();
    assert!(
        regressions.contains(
            "cargo xtask perf --case tiny --converter identity --runtime tract --baseline"
        ),
        "{md}"
    );
}

#[test]
fn a_malformed_baseline_is_exit_2_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    for (name, content) in [
        ("garbage.json", "{not json"),
        ("other.json", "{\"schema\": 1, \"cases\": 3}"),
        ("noschema.json", "{\"cases\": []}"),
    ] {
        let path = tmp.path().join(name);
        std::fs::write(&path, content).unwrap();
        let mut args = tract_args(&corpus, report.to_str().unwrap());
        args.extend(["--baseline", path.to_str().unwrap()]);
        let o = harness(&args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(path.to_str().unwrap()), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        if name == "other.json" {
            assert!(err.contains("layout 1") && err.contains("--save"), "{err}");
        }
    }
    // a missing named baseline: the file it looked for is named
    let mut args = tract_args(&corpus, report.to_str().unwrap());
    let dir = tmp.path().join("baselines");
    args.extend(["--baselines", dir.to_str().unwrap(), "--baseline", "nope"]);
    let o = harness(&args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nope.json"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_selections_are_exit_2_with_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let o = harness(&[
        "perf",
        "--corpus",
        &corpus,
        "--case",
        "missing",
        "--runtime",
        "tract",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no case 'missing'"),
        "{}",
        text(&o)
    );
    let o = harness(&["perf", "--corpus", "/nonexistent", "--runtime", "tract"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = harness(&["perf", "--corpus", &corpus, "--runtime", "nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown runtime"),
        "{}",
        text(&o)
    );
    let o = harness(&[
        "perf",
        "--corpus",
        &corpus,
        "--runtime",
        "tract",
        "--budget",
        "-1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn python_runtimes_are_timed_inside_the_worker() {
    let python = harness::worker::find_python();
    if python.is_none() {
        assert!(
            std::env::var_os("HARNESS_REQUIRE_PYTHON").is_none(),
            "HARNESS_REQUIRE_PYTHON is set but no Python environment was found"
        );
        eprintln!("SKIPPED: no Python environment; Python runtime perf test not run");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    let o = harness(&[
        "perf",
        "--corpus",
        &corpus,
        "--runtime",
        "onnxruntime",
        "--converter",
        "identity",
        "--converter",
        "openvino:f32",
        "--budget",
        "0.05",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let now = json(&report.join("perf.json"));
    let results = now["cases"][0]["results"].as_array().unwrap();
    let runtimes: Vec<&str> = results
        .iter()
        .map(|r| r["runtime"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes, ["onnxruntime", "openvino-cpu"]);
    for r in results {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["precision"], "f32");
        assert!(r["latency_us"]["n"].as_u64().unwrap() >= 20, "{r}");
        // timed in the worker: round modes recorded, one per round
        let modes = r["calibrated_modes"].as_array().unwrap();
        assert_eq!(
            modes.len(),
            r["calibrated_rounds"].as_array().unwrap().len()
        );
        assert!(modes.iter().all(|m| m.as_f64().unwrap() > 0.0), "{r}");
    }
    assert!(now["environment"]["runtimes"]["onnxruntime"]
        .as_str()
        .unwrap()
        .starts_with("1."));
}

/// `perf` with `--slowdown PCT` and `extra` on the tiny corpus, identity on tract.
fn identity_on_tract(corpus: &str, report: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "perf",
        "--corpus",
        corpus,
        "--runtime",
        "tract",
        "--converter",
        "identity",
        "--budget",
        "0.2",
        "--report",
        report.to_str().unwrap(),
    ];
    a.extend(extra);
    harness(&a)
}

#[test]
fn side_by_side_measures_both_builds_in_the_same_rounds_and_flags_a_slow_candidate() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    // The candidate (this binary with 100% busy work) against the same binary without.
    let o = identity_on_tract(
        &corpus,
        &report,
        &[
            "--against-bin",
            BIN,
            "--against-name",
            "ref",
            "--slowdown",
            "100",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let perf = json(&report.join("perf.json"));
    let cmp = &perf["comparison"];
    assert_eq!(cmp["side_by_side"], true, "{cmp}");
    assert_eq!(cmp["same_machine"], true);
    let e = &cmp["entries"][0];
    assert_eq!(e["change"], "regression", "{e}");
    // both views, each about 2x: slower for sure, and not absurdly so (a loaded machine
    // stretches the busy work's share either way, so the range is wide)
    for view in ["ratio", "raw_floor_ratio"] {
        let est = e[view]["estimate"].as_f64().unwrap();
        assert!((1.4..4.0).contains(&est), "{view}: {e}");
    }
    assert_eq!(
        e["command"],
        "cargo xtask perf --case tiny --converter identity --runtime tract --against ref"
    );
    // eight loads by default side by side, each a process of its own, on both sides
    let now = &perf["cases"][0]["results"][0];
    assert_eq!(now["load_rounds"].as_array().unwrap().len(), 8, "{now}");
    let reference = &perf["reference"]["cases"][0]["results"][0];
    assert_eq!(reference["load_rounds"], now["load_rounds"], "{reference}");
    let md = std::fs::read_to_string(report.join("perf.md")).unwrap();
    assert!(
        md.contains("Reference build `ref`, measured side by side") && md.contains("REGRESSION"),
        "{md}"
    );
}

#[test]
fn a_reference_build_without_a_server_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    // What an older harness says to `perf --serve` (clap's error, status 2).
    let old = tmp.path().join("old-harness");
    std::fs::write(
        &old,
        "#!/bin/sh\necho \"error: unexpected argument '--serve' found\" >&2\nexit 2\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&old).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&old, perms).unwrap();
    let report = tmp.path().join("latest");
    let o = identity_on_tract(&corpus, &report, &["--against-bin", old.to_str().unwrap()]);
    // nothing can be paired: exit 2 with the reason, no panic, no report claiming "0
    // regressions"
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert!(out.contains("predates A/B runs"), "{out}");
    assert!(!report.join("perf.json").exists(), "{out}");
    // a missing binary is exit 2 before anything runs
    let o = identity_on_tract(&corpus, &report, &["--against-bin", "/nonexistent/harness"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no such file"), "{}", text(&o));
}

#[test]
fn a_baseline_from_another_cpu_model_gives_no_timing_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = corpus(tmp.path());
    let report = tmp.path().join("latest");
    let base = tmp.path().join("b.json");
    let o = identity_on_tract(&corpus, &report, &["--save", base.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut b = json(&base);
    b["environment"]["cpu"] = "Some Other CPU".into();
    std::fs::write(&base, serde_json::to_vec(&b).unwrap()).unwrap();
    // four times slower now, but on "another CPU": not comparable, not a regression
    let o = identity_on_tract(
        &corpus,
        &report,
        &["--slowdown", "300", "--baseline", base.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let e = &json(&report.join("perf.json"))["comparison"]["entries"][0];
    assert!(e["change"].is_null() && e["not_comparable"] == true, "{e}");
    assert!(
        e["note"]
            .as_str()
            .unwrap()
            .contains("cargo xtask perf --against REV"),
        "{e}"
    );
}
