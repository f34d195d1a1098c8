//! Containment and durability, end to end: converters past their memory or CPU-time limit
//! become verdicts, and a run killed with SIGKILL keeps what it finished and resumes to the
//! report an uninterrupted run gives.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::*;

/// A converter that writes 3 GiB (64 MiB at a time, every byte touched) before copying its
/// input: with no limit it passes, having taken 3 GiB of the machine per process.
const HOG: &str = "import shutil, sys\n\
chunks = [b'\\1' * (64 << 20) for _ in range(48)]\n\
shutil.copyfile(sys.argv[1], sys.argv[2])\n";

/// The machine's available memory, in bytes (`MemAvailable`).
fn available() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

/// Runs `f` while sampling the machine's available memory every 10 ms: its result and the
/// largest drop below what was available at the start.
fn with_lowest_memory<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let start = available();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut lowest = start;
            while !done.load(Ordering::Relaxed) {
                lowest = lowest.min(available());
                std::thread::sleep(Duration::from_millis(10));
            }
            lowest
        })
    };
    let out = f();
    done.store(true, Ordering::Relaxed);
    let lowest = watcher.join().unwrap();
    (out, start.saturating_sub(lowest))
}

fn results_of<'a>(r: &'a Value, converter: &str) -> Vec<&'a Value> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["converter"] == converter)
        .collect()
}

#[test]
fn a_converter_past_its_memory_limit_is_a_verdict_and_the_machine_keeps_its_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let hog = tmp.path().join("hog.py");
    std::fs::write(&hog, HOG).unwrap();
    let converter = format!("exec:python3 {} {{input}} {{output}}", hog.display());
    let limited = tmp.path().join("limited");
    let (out, drop) = with_lowest_memory(|| {
        conformance(
            &limited,
            &[
                "--cases",
                "4",
                "--seed",
                "8",
                "--jobs",
                "2",
                "--max-bundles",
                "0",
                "--converter",
                "identity",
                "--converter",
                &converter,
                "--max-converter-memory",
                "256MiB",
            ],
        )
    });
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let limited = report(&limited);
    let hogs = results_of(&limited, &converter);
    assert_eq!(hogs.len(), 4);
    for r in hogs {
        assert_eq!(r["verdict"], "resource-limit", "{r}");
        let m = r["message"].as_str().unwrap();
        assert!(
            m.starts_with("memory limit of 256 MiB reached (--max-converter-memory)")
                && m.contains("MemoryError"),
            "{m}"
        );
    }
    // Two hogs at a time would take 6 GiB without the limit; with it, each stops at 256 MiB.
    assert!(
        drop < 1 << 30,
        "available memory fell by {} MiB during the run",
        drop >> 20
    );

    // The other converter's results are what they are without the hog beside it.
    let alone = tmp.path().join("alone");
    let out = conformance(
        &alone,
        &[
            "--cases",
            "4",
            "--seed",
            "8",
            "--max-bundles",
            "0",
            "--converter",
            "identity",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stable =
        |r: &Value| stable_results(&serde_json::json!({ "results": results_of(r, "identity") }));
    assert_eq!(stable(&limited), stable(&report(&alone)));
}

#[test]
fn a_converter_past_its_cpu_time_limit_is_a_verdict_not_a_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = conformance(
        tmp.path(),
        &[
            "--cases",
            "2",
            "--max-bundles",
            "0",
            "--timeout",
            "120",
            "--max-converter-cpu",
            "1",
            "--converter",
            "exec:python3 -c 'while True: pass' {input} {output}",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = report(tmp.path());
    assert_eq!(verdicts(&report), vec!["resource-limit"; 2]);
    for r in report["results"].as_array().unwrap() {
        let m = r["message"].as_str().unwrap();
        assert!(m.starts_with("CPU-time limit of 1 s reached"), "{m}");
    }
}

#[test]
fn bad_limits_are_usage_errors() {
    for bad in ["0", "12XB", "lots", "99999999999GiB"] {
        let tmp = tempfile::tempdir().unwrap();
        let out = conformance(tmp.path(), &["--cases", "1", "--max-converter-memory", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--max-converter-memory"),
            "{}",
            text(&out)
        );
    }
}

/// Options of the runs that are killed and resumed: two converters, both threads.
const RUN: [&str; 12] = [
    "--cases",
    "400",
    "--seed",
    "5",
    "--jobs",
    "2",
    "--repeats",
    "1",
    "--max-bundles",
    "0",
    "--converter",
    "identity",
];

fn run_args(report: &Path, resume: bool, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["conformance", "--no-corpus", "--report"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(report.display().to_string());
    args.extend(RUN.iter().map(|s| s.to_string()));
    args.extend(["--converter".into(), "lower1d".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    if resume {
        args.push("--resume".into());
    }
    args
}

/// Starts a run and kills it with SIGKILL after `after` (counted, with `once_logged`, from
/// when its log first holds a finished case); whether it was still running then.
fn killed_after(
    report: &Path,
    resume: bool,
    extra: &[&str],
    after: Duration,
    once_logged: bool,
) -> bool {
    let logged_before = if resume { logged_units(report) } else { 0 };
    let mut child = Command::new(BIN)
        .args(run_args(report, resume, extra))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while once_logged && logged_units(report) <= logged_before {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let start = Instant::now();
    while start.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// How many units the log holds as done (0 without a log).
fn logged_units(report: &Path) -> usize {
    std::fs::read_to_string(report.join("results.jsonl"))
        .map(|t| t.lines().filter(|l| l.starts_with("{\"done\"")).count())
        .unwrap_or(0)
}

/// The results of every case the log holds as done, by case and converter.
fn logged_done(report: &Path) -> Vec<(String, String, Value)> {
    let text = std::fs::read_to_string(report.join("results.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let done: std::collections::HashSet<&str> =
        lines.iter().filter_map(|l| l["done"].as_str()).collect();
    lines
        .iter()
        .filter(|l| l["unit"].as_str().is_some_and(|u| done.contains(u)))
        .map(|l| {
            let r = &l["result"];
            (
                r["case"].as_str().unwrap().to_string(),
                r["converter"].as_str().unwrap().to_string(),
                r.clone(),
            )
        })
        .collect()
}

#[test]
fn a_run_killed_at_random_points_loses_nothing_it_finished_and_resumes_to_the_same_report() {
    killed_and_resumed(&[]);
}

#[test]
fn a_packed_run_killed_at_random_points_resumes_to_the_same_report() {
    killed_and_resumed(&["--pack", "4"]);
}

/// Runs the cases once whole, then kills runs with `extra` options at random points, resuming
/// after each kill, and checks what the log keeps and the report the last resume gives.
fn killed_and_resumed(extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let start = Instant::now();
    let out = harness(
        &run_args(&whole, false, extra)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
    let whole_ms = start.elapsed().as_millis() as u64;
    let reference = report(&whole);
    let expected = stable_results(&reference);
    let by_key = |case: &str, converter: &str| -> Value {
        let r = reference["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["case"] == case && r["converter"] == converter)
            .unwrap_or_else(|| panic!("{case} {converter} not in the reference"))
            .clone();
        stable_results(&serde_json::json!({ "results": [r] })).remove(0)
    };

    // Kill points from a fixed seed, each between 5% and 30% of an uninterrupted run's time
    // (from start-up to amid the cases); each round kills the resumed run once more, so
    // resuming a resumed run is covered too. The last round's point is counted from when its
    // log first holds a finished case: a packed run logs a window of cases at a time, and on a
    // loaded machine the first window can outlast every earlier point.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let kill_points: Vec<Duration> = (0..4)
        .map(|_| Duration::from_millis(whole_ms / 20 + next() % (whole_ms / 4).max(1)))
        .collect();
    let report_dir = tmp.path().join("killed");
    let mut kills = 0;
    let mut done_before = 0;
    for (round, after) in kill_points.iter().enumerate() {
        let last = round + 1 == kill_points.len();
        let after = if last { *after / 3 } else { *after };
        if !killed_after(&report_dir, round > 0, extra, after, last) {
            break;
        }
        kills += 1;
        if !report_dir.join("results.jsonl").is_file() {
            continue;
        }
        let done = logged_done(&report_dir);
        // What a killed run logged as done is the uninterrupted run's result, and what an
        // earlier round finished is still there.
        for (case, converter, r) in &done {
            let got = stable_results(&serde_json::json!({ "results": [r] })).remove(0);
            assert_eq!(got, by_key(case, converter), "{case} {converter}");
        }
        assert!(
            done.len() >= done_before,
            "round {round}: results were lost"
        );
        done_before = done.len();

        // The reports rebuilt from the log hold exactly what it holds as done (and the cut-off
        // units' results, if any).
        let rebuilt = tmp.path().join(format!("rebuilt-{round}"));
        let out = harness(&[
            "report",
            "--resume",
            report_dir.to_str().unwrap(),
            "--report",
            rebuilt.to_str().unwrap(),
        ]);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        let rebuilt = report(&rebuilt);
        assert!(rebuilt["results"].as_array().unwrap().len() >= done.len());
        assert!(
            rebuilt["stopped_early"]
                .as_str()
                .is_some_and(|s| s.contains("did not finish")),
            "{}",
            rebuilt["stopped_early"]
        );
    }
    eprintln!("{kills} kills; {done_before} results logged as done before the last one");
    assert!(kills >= 3, "the runs ended before they could be killed");
    assert!(done_before > 0, "no round got far enough to log a case");

    let out = harness(
        &run_args(&report_dir, true, extra)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming: "),
        "{}",
        text(&out)
    );
    let resumed = report(&report_dir);
    assert_eq!(stable_results(&resumed), expected);
    assert_eq!(resumed["summary"], reference["summary"]);
    assert!(resumed.get("stopped_early").is_none());
}

#[test]
fn resuming_with_other_options_is_refused_and_a_missing_log_starts_a_new_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let first = conformance(dir, &["--cases", "3", "--seed", "1", "--max-bundles", "0"]);
    assert!(
        first.status.code().is_some_and(|c| c <= 1),
        "{}",
        text(&first)
    );
    let other = conformance(
        dir,
        &[
            "--cases",
            "3",
            "--seed",
            "2",
            "--max-bundles",
            "0",
            "--resume",
        ],
    );
    assert_eq!(other.status.code(), Some(2), "{}", text(&other));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("other options (seed)"), "{err}");

    let fresh = tmp.path().join("fresh");
    let out = conformance(&fresh, &["--cases", "3", "--max-bundles", "0", "--resume"]);
    assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("starting a new run"),
        "{}",
        text(&out)
    );
    assert_eq!(report(&fresh)["results"].as_array().unwrap().len(), 9);
}

#[test]
fn a_report_rebuilt_from_the_log_explains_what_the_run_explained_by_reduction() {
    let tmp = tempfile::tempdir().unwrap();
    // An entry that matches only a reduction: the swapped pads are wrong at their node alone.
    let ledger = tmp.path().join("ledger.toml");
    std::fs::write(
        &ledger,
        "[[failure]]\nconverter = \"exec:*swap-pads*\"\nverdict = \"mismatch\"\n\
         reason = \"the test's own fault: Conv pads swapped\"\n\
         [failure.reduced]\nalone = true\n",
    )
    .unwrap();
    let spec = format!("exec:{BIN} inject-fault swap-pads {{input}} {{output}}");
    let dir = tmp.path().join("run");
    let ledger_arg = ledger.to_str().unwrap();
    let run = conformance(
        &dir,
        &[
            "--cases",
            "40",
            "--seed",
            "1",
            "--no-quantized",
            "--converter",
            &spec,
            "--known-failures",
            ledger_arg,
            "--max-bundles",
            "2",
        ],
    );
    let original = report(&dir);
    let expected = original["summary"]["expected"].as_u64().unwrap();
    assert!(
        expected >= 1,
        "no failure explained by its reduction: {}",
        text(&run)
    );
    let rebuilt = tmp.path().join("rebuilt");
    let out = harness(&[
        "report",
        "--resume",
        dir.to_str().unwrap(),
        "--report",
        rebuilt.to_str().unwrap(),
        "--known-failures",
        ledger_arg,
    ]);
    assert_eq!(out.status.code(), run.status.code(), "{}", text(&out));
    let rebuilt = report(&rebuilt);
    assert_eq!(
        rebuilt["summary"]["expected"], original["summary"]["expected"],
        "{}",
        rebuilt["summary"]
    );
    assert_eq!(stable_results(&rebuilt), stable_results(&original));
}
