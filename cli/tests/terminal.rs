//! What a run shows on stderr: progress as plain lines in a log or a bar on a terminal, with
//! the counts the report ends with, and nothing the converters' libraries log.

mod common;

use std::process::Command;

use common::{conformance, report, text, BIN};

/// The (done, total, results, failing, expected) of a "progress: …" line.
fn parse(line: &str) -> (usize, usize, usize, usize, usize) {
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect();
    // done/total cases · results (rate/s) · failing · expected
    (nums[0], nums[1], nums[2], nums[4], nums[5])
}

#[test]
fn a_log_gets_progress_lines_that_end_with_the_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (fault, ledger) = common::swapped_pads_half_known(dir.path(), "swapped pads");
    let out = dir.path().join("r");
    let o = conformance(
        &out,
        &[
            "--cases",
            "30",
            "--seed",
            "3",
            "--converter",
            "identity",
            "--converter",
            &fault,
            "--max-bundles",
            "0",
            "--known-failures",
            ledger.to_str().unwrap(),
            "--progress-every",
            "0",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<(usize, usize, usize, usize, usize)> = stderr
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .map(parse)
        .collect();
    // Every case reported once it is done (interval 0), never going back, out of 30; threads
    // report concurrently, so one count may show twice as its results come in.
    let done: std::collections::BTreeSet<usize> = lines.iter().map(|l| l.0).collect();
    assert_eq!(done, (1..=30).collect(), "{}", text(&o));
    assert!(lines
        .windows(2)
        .all(|w| w[0].0 <= w[1].0 && w[0].2 <= w[1].2));
    assert!(lines.iter().all(|l| l.1 == 30));
    let json = report(&out);
    let results = json["results"].as_array().unwrap();
    let failing = results
        .iter()
        .filter(|r| r["verdict"] != "pass" && r.get("expected").is_none())
        .count();
    let expected = json["summary"]["expected"].as_u64().unwrap() as usize;
    assert!(failing > 0 && expected > 0, "the fixture needs both kinds");
    assert_eq!(
        *lines.last().unwrap(),
        (30, 30, results.len(), failing, expected)
    );
    assert!(!stderr.contains('\r'), "no terminal control in a log");
}

#[test]
fn a_terminal_gets_a_bar_instead_of_lines() {
    // util-linux's `script` gives the run a pseudo-terminal.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "stty cols 160; {BIN} conformance --no-corpus --cases 20 --seed 1 --converter identity \
         --report {}",
        dir.path().join("r").display()
    );
    let o = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    // 1 when a case fails: the run is judged without the project's ledger here.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(!seen.contains("progress: "), "{seen}");
    // 20 cases, and the quantized forms beside some of them: more results than cases.
    let results: usize = seen
        .split("20/20 cases · ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no finished bar: {seen}"));
    assert!((21..=30).contains(&results), "{results} results: {seen}");
    assert!(seen.contains("ETA") && seen.contains('█'), "{seen}");
    // The summary starts on a line of its own after the finished bar.
    assert!(seen.lines().any(|l| l.starts_with("verdict ")), "{seen}");
}

#[test]
fn onnxruntimes_own_log_stays_off_the_terminal_and_in_the_messages() {
    // Seed 5 draws models onnxruntime refuses (SAME padding with dilations, shape errors).
    let Some(python) = common::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = Command::new(BIN)
        .args(["conformance", "--no-corpus", "--cases", "40", "--seed", "5"])
        .args(["--runtime", "onnxruntime", "--converter", "identity"])
        .args(["--max-bundles", "0", "--known-failures", "/dev/null"])
        .arg("--report")
        .arg(&out)
        .env("HARNESS_PYTHON", &python)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stray: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("progress: ") && !l.trim().is_empty())
        .collect();
    assert!(stray.is_empty(), "{}", text(&o));
    let json = report(&out);
    let refused: Vec<&str> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "runtime-rejected")
        .filter_map(|r| r["message"].as_str())
        .collect();
    assert!(
        !refused.is_empty(),
        "the seed's refusals are gone: {}",
        text(&o)
    );
    assert!(
        refused.iter().all(|m| m.contains("[ONNXRuntimeError]")),
        "{refused:?}"
    );
    // One worker request per result (load, run and time together), plus the version query.
    let results = json["results"].as_array().unwrap().len() as u64;
    assert_eq!(json["workers"]["calls"].as_u64(), Some(results + 1));
}
