//! Progress on stderr: plain lines in a log, a bar on a terminal, with the counts the report
//! ends with.

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
    let ledger = dir.path().join("ledger.toml");
    std::fs::write(
        &ledger,
        "[[failure]]\nconverter = \"exec:*\"\nverdict = \"mismatch\"\n\
         classes = [\"Conv.pads=asymmetric\"]\nreason = \"swapped pads\"\n",
    )
    .unwrap();
    let fault = format!("exec:{BIN} inject-fault swap-pads {{input}} {{output}}");
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
    // Every case reported once it is done (interval 0), in order, out of 30.
    assert_eq!(lines.len(), 30, "{}", text(&o));
    assert!(lines
        .windows(2)
        .all(|w| w[0].0 < w[1].0 && w[0].2 <= w[1].2));
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
    assert!(seen.contains("20/20 cases · 20 results"), "{seen}");
    assert!(seen.contains("ETA") && seen.contains('█'), "{seen}");
    // The summary starts on a line of its own after the finished bar.
    assert!(seen.lines().any(|l| l.starts_with("verdict ")), "{seen}");
}
