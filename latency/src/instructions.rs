//! Instruction counts as a second signal, for machines where wall time is too noisy:
//! `perf stat -e instructions` is not supported on this project's VM, so each tract config
//! runs under valgrind's callgrind (`harness perf --run-loop N`, twice, with different N).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use super::baseline::Comparison;
use super::measure::{ModelRun, Timeable};
use super::{PerfOptions, PerfReport};

/// `--run-loop N`: the first config on the first case, N runs, for callgrind.
pub fn run_loop(options: &PerfOptions, n: usize) -> Result<()> {
    let (_, dir) = super::select_cases(options)?.remove(0);
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(&dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let mut sink = Vec::with_capacity(n);
    run.batch(n, 1, &mut sink)?;
    Ok(())
}

/// valgrind's version, or an error saying that `--instructions` needs it.
pub fn valgrind_version() -> Result<String> {
    let out = Command::new("valgrind").arg("--version").output().map_err(|e| {
        anyhow::anyhow!("--instructions needs valgrind (callgrind), which could not be run: {e}; install it (apt-get install valgrind) or drop --instructions")
    })?;
    anyhow::ensure!(
        out.status.success(),
        "--instructions: `valgrind --version` failed"
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Instructions of `n` runs plus loading, under callgrind.
fn callgrind_total(
    corpus: &Path,
    case: &str,
    converter: &str,
    runtime: &str,
    n: usize,
) -> Result<u64> {
    let tmp = tempfile::tempdir()?;
    let out_file = tmp.path().join("callgrind.out");
    let exe = std::env::current_exe()?;
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["perf", "--corpus"])
        .arg(corpus)
        .args([
            "--case",
            case,
            "--converter",
            converter,
            "--runtime",
            runtime,
        ])
        .args(["--run-loop", &n.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("cannot run valgrind")?;
    anyhow::ensure!(
        status.success(),
        "callgrind run of {case} / {converter} failed ({status})"
    );
    let text = std::fs::read_to_string(&out_file).context("callgrind wrote no output file")?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no instruction total in callgrind's output")
}

/// Instructions per run of each tract config: the difference of two callgrind runs with
/// different run counts, so loading and start-up cancel out.
///
/// `progress` is told which config is being counted.
pub fn count_instructions(
    corpus: &Path,
    report: &mut PerfReport,
    progress: &dyn Fn(&str),
) -> Result<()> {
    const FEW: usize = 3;
    const MANY: usize = 23;
    for c in &mut report.cases {
        for r in c
            .results
            .iter_mut()
            .filter(|r| !r.timed_in_worker && r.error.is_none())
        {
            progress(&format!(
                "counting instructions of {} / {} (callgrind)",
                c.case, r.converter
            ));
            let few = callgrind_total(corpus, &c.case, &r.converter, &r.runtime, FEW)?;
            let many = callgrind_total(corpus, &c.case, &r.converter, &r.runtime, MANY)?;
            r.instructions = Some(many.saturating_sub(few) / (MANY - FEW) as u64);
        }
    }
    Ok(())
}

/// Fills the instruction ratio of each compared entry where both runs counted instructions.
pub fn add_instruction_ratios(cmp: &mut Comparison, now: &PerfReport, base: &PerfReport) {
    let find = |r: &PerfReport, case: &str, conv: &str, rt: &str| {
        r.cases
            .iter()
            .find(|c| c.case == case)
            .and_then(|c| {
                c.results
                    .iter()
                    .find(|x| x.converter == conv && x.runtime == rt)
            })
            .and_then(|x| x.instructions)
    };
    for e in &mut cmp.entries {
        if let (Some(n), Some(b)) = (
            find(now, &e.case, &e.converter, &e.runtime),
            find(base, &e.case, &e.converter, &e.runtime),
        ) {
            e.instructions_ratio = Some(n as f64 / b.max(1) as f64);
        }
    }
}
