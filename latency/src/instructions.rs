//! Instruction counts as a second signal, for machines where wall time is too noisy:
//! `perf stat -e instructions` is not supported on this project's VM, so each tract config
//! runs under valgrind's callgrind (`harness perf --run-loop N`, twice, with different N).

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result};

use super::measure::{ModelRun, Timeable};
use super::{PerfOptions, PerfReport};

/// `--run-loop N`: the first config on the first case, N runs, for callgrind; prints the SIMD
/// extensions the process sees (under callgrind: those it emulates), which choose the kernels.
///
/// With the self-test's slowdown of a fraction `f`, `round(N·f)` more runs are made: work that
/// the counts see exactly (`f` = 0.1 over the 20 runs that separate the two counts is 2 runs,
/// +10%), where the busy wait of timed runs follows the clock, which callgrind slows.
pub fn run_loop(options: &PerfOptions, n: usize) -> Result<()> {
    let (_, dir) = super::select_cases(options)?.remove(0);
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(&dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let extra = options
        .slowdown
        .map_or(0, |f| (n as f64 * f).round() as usize);
    let mut sink = Vec::with_capacity(n + extra);
    run.batch(n + extra, 1, &mut sink)?;
    println!("simd: {}", harness::results::simd_features().join(" "));
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

/// A count under callgrind: instructions, and the SIMD extensions the counted process saw.
struct Counted {
    instructions: u64,
    simd: Vec<String>,
}

/// Instructions of `n` runs plus loading, under callgrind (with `slowdown`, the self-test's
/// extra runs, see [`run_loop`]).
fn callgrind_total(config: &Counting, n: usize) -> Result<Counted> {
    let tmp = tempfile::tempdir()?;
    let out_file = tmp.path().join("callgrind.out");
    let exe = std::env::current_exe()?;
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["perf", "--corpus"])
        .arg(config.corpus)
        .args([
            "--case",
            config.case,
            "--converter",
            config.converter,
            "--runtime",
            config.runtime,
        ])
        .args(["--run-loop", &n.to_string()]);
    if let Some(f) = config.slowdown {
        command.args(["--slowdown".to_string(), (f * 100.0).to_string()]);
    }
    let out = command
        .stderr(std::process::Stdio::null())
        .output()
        .context("cannot run valgrind")?;
    anyhow::ensure!(
        out.status.success(),
        "callgrind run of {} / {} failed ({})",
        config.case,
        config.converter,
        out.status
    );
    let simd = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("simd:"))
        .map(|l| l.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let text = std::fs::read_to_string(&out_file).context("callgrind wrote no output file")?;
    let instructions = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no instruction total in callgrind's output")?;
    Ok(Counted { instructions, simd })
}

/// What one count measures: a (case, converter, runtime) of a corpus, with the self-test's
/// extra work if any.
pub struct Counting<'a> {
    /// Corpus directory.
    pub corpus: &'a Path,
    /// Case name.
    pub case: &'a str,
    /// Converter spec.
    pub converter: &'a str,
    /// Runtime (in-process: tract).
    pub runtime: &'a str,
    /// The self-test's extra work, as a fraction of the runs.
    pub slowdown: Option<f64>,
}

/// Instructions per run, and the SIMD extensions the counted process saw: the difference of
/// two callgrind runs with different run counts, so loading and start-up cancel out.
pub fn instructions_per_run(config: &Counting) -> Result<(u64, Vec<String>)> {
    const FEW: usize = 3;
    const MANY: usize = 23;
    let few = callgrind_total(config, FEW)?;
    let many = callgrind_total(config, MANY)?;
    Ok((
        many.instructions.saturating_sub(few.instructions) / (MANY - FEW) as u64,
        many.simd,
    ))
}

/// Instructions per run of each tract config ([`instructions_per_run`]), and the SIMD
/// extensions they were counted under.
///
/// `progress` is told which config is being counted.
pub fn count_instructions(
    corpus: &Path,
    report: &mut PerfReport,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let slowdown = report.slowdown;
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
            let (per_run, simd) = instructions_per_run(&Counting {
                corpus,
                case: &c.case,
                converter: &r.converter,
                runtime: &r.runtime,
                slowdown,
            })?;
            r.instructions = Some(per_run);
            report.counted_simd = simd;
        }
    }
    Ok(())
}
