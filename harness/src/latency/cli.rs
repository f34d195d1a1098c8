//! `harness perf`: measure the corpus, write perf reports, save or compare baselines; its
//! self-test; instruction counts under callgrind.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::baseline::{self, Comparison};
use super::measure::{self, ModelRun, Protocol, Timeable};
use super::stats::median;
use super::{page, PerfOptions, PerfReport};
use crate::fsutil::write_atomically;

/// Options of `harness perf`.
#[derive(clap::Args, Debug, Clone)]
pub struct PerfArgs {
    /// Corpus directory: every directory under it holding a model.onnx is a case.
    #[arg(long, value_name = "DIR", default_value = "corpus")]
    pub corpus: PathBuf,
    /// Only this case (repeatable): its directory name under the corpus.
    #[arg(long = "case", value_name = "NAME")]
    pub cases: Vec<String>,
    /// Converter (repeatable). Default: identity, lower1d, plus openvino and openvino:f32
    /// when the Python environment is available.
    #[arg(long = "converter", value_name = "SPEC")]
    pub converters: Vec<String>,
    /// Runtime for ONNX artifacts (repeatable). Default: tract, plus onnxruntime when the
    /// Python environment is available.
    #[arg(long = "runtime", value_name = "NAME")]
    pub runtimes: Vec<String>,
    /// Measuring time per (case, converter, runtime), after warm-up.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub budget: f64,
    /// Save this run as baseline NAME (reports/baselines/NAME.json, or a path).
    #[arg(long, value_name = "NAME")]
    pub save: Option<String>,
    /// Compare with baseline NAME; exit 1 on a regression.
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Slowdown that must be caught, in percent; flagged when the 95% interval of the
    /// calibrated ratio lies entirely above 1 + threshold/2.
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub threshold: f64,
    /// Where perf.md, perf.html, perf.json and perf-samples.json go.
    #[arg(long = "report", value_name = "DIR", default_value = "reports/latest")]
    pub report_dir: PathBuf,
    /// Where named baselines live.
    #[arg(long, value_name = "DIR", default_value = "reports/baselines")]
    pub baselines: PathBuf,
    /// Measure this machine's false-alarm rate and the power to detect 5/10/20% slowdowns.
    #[arg(long)]
    pub self_test: bool,
    /// Only measure the timing overhead (protocol loop against a bare loop) on the smallest
    /// selected case with tract, print it and exit.
    #[arg(long)]
    pub overhead: bool,
    /// Rounds of the self-test.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub rounds: usize,
    /// Also count instructions per run of the tract configs under valgrind's callgrind.
    #[arg(long)]
    pub instructions: bool,
    /// Per conversion and per worker call.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Self-test only: add PCT percent of busy work to every run.
    #[arg(long, value_name = "PCT", hide = true)]
    pub slowdown: Option<f64>,
    /// Internal (callgrind): load the first selected config and run it N times.
    #[arg(long, value_name = "N", hide = true)]
    pub run_loop: Option<usize>,
}

fn python_available() -> bool {
    crate::worker::find_python().is_some_and(|p| p.exists())
}

/// The measurement options the arguments ask for.
pub fn options(a: &PerfArgs) -> Result<PerfOptions> {
    anyhow::ensure!(
        a.budget.is_finite() && a.budget > 0.0,
        "--budget must be a positive number of seconds"
    );
    anyhow::ensure!(
        a.threshold.is_finite() && a.threshold > 0.0,
        "--threshold must be a positive percentage"
    );
    let python = python_available();
    let mut converters = a.converters.clone();
    if converters.is_empty() {
        converters = vec!["identity".into(), "lower1d".into()];
        if python {
            converters.extend(["openvino".into(), "openvino:f32".into()]);
        }
    }
    let mut runtimes = a.runtimes.clone();
    if runtimes.is_empty() {
        runtimes = vec!["tract".into()];
        if python {
            runtimes.push("onnxruntime".into());
        }
    }
    Ok(PerfOptions {
        corpus: a.corpus.clone(),
        cases: a.cases.clone(),
        converters,
        runtimes,
        protocol: Protocol::with_budget(Duration::from_secs_f64(a.budget)),
        slowdown: a.slowdown.map(|p| p / 100.0),
        timeout: Duration::from_secs_f64(a.timeout.max(1.0)),
    })
}

/// Runs `harness perf`.
pub fn main(a: PerfArgs) -> Result<ExitCode> {
    if a.self_test {
        return self_test(&a);
    }
    let options = options(&a)?;
    if a.overhead {
        let mut options = options;
        options.converters = vec!["identity".into()];
        options.runtimes = vec!["tract".into()];
        let (name, dir) = smallest(&super::select_cases(&options)?)?;
        let (wall, bias) = timing_overhead(&dir, &options)?;
        println!(
            "timing overhead on {name}: protocol loop {:+.2}% wall time per run vs a bare loop; samples' mean {:+.2}% vs the bare loop ({OVERHEAD_ROUNDS} rounds)",
            wall * 100.0,
            bias * 100.0
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = a.run_loop {
        return run_loop(&options, n);
    }
    // A bad baseline is a set-up error: say so before measuring anything.
    let baseline = match &a.baseline {
        Some(name) => {
            let path = baseline::path_of(&a.baselines, name);
            Some((baseline::load(&path)?, path, name.clone()))
        }
        None => None,
    };
    if a.instructions {
        valgrind_version()?;
    }
    let quiet = std::env::var_os("HARNESS_PERF_QUIET").is_some();
    let mut report = super::run(&options, &|case| {
        if !quiet {
            eprintln!("measuring {case}");
        }
    })?;
    if a.instructions {
        count_instructions(&a, &mut report)?;
    }
    let comparison = baseline.as_ref().map(|(b, path, name)| {
        let threshold = a.threshold / 100.0;
        let mut cmp = baseline::compare(
            &report,
            b,
            path,
            name,
            threshold,
            baseline::margin_for(threshold),
        );
        add_instruction_ratios(&mut cmp, &report, b);
        cmp
    });
    write_reports(
        &a.report_dir,
        &report,
        comparison.as_ref(),
        baseline.as_ref().map(|b| &b.0),
    )?;
    if let Some(name) = &a.save {
        let path = baseline::path_of(&a.baselines, name);
        baseline::save(&report, &path)?;
        println!("baseline saved to {}", path.display());
    }
    if !quiet {
        print!("{}", terminal(&report, comparison.as_ref()));
    }
    println!(
        "perf report written to {}",
        a.report_dir.join("perf.md").display()
    );
    if crate::isolate::interrupted() {
        return Ok(ExitCode::from(130));
    }
    let regressed = comparison
        .as_ref()
        .is_some_and(|c| c.regressions().next().is_some());
    Ok(if regressed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_reports(
    dir: &Path,
    report: &PerfReport,
    cmp: Option<&Comparison>,
    base: Option<&PerfReport>,
) -> Result<()> {
    let mut json = serde_json::to_value(report)?;
    json["comparison"] = serde_json::to_value(cmp)?;
    write_atomically(&dir.join("perf.json"), &serde_json::to_vec_pretty(&json)?)?;
    let mut samples = serde_json::Map::new();
    for c in &report.cases {
        for r in &c.results {
            samples.insert(r.key(&c.case), json!(r.samples));
        }
    }
    write_atomically(
        &dir.join("perf-samples.json"),
        &serde_json::to_vec(&samples)?,
    )?;
    write_atomically(&dir.join("perf.md"), page::markdown(report, cmp).as_bytes())?;
    write_atomically(
        &dir.join("perf.html"),
        page::html(report, cmp, base)?.as_bytes(),
    )?;
    Ok(())
}

fn terminal(report: &PerfReport, cmp: Option<&Comparison>) -> String {
    let mut s = String::new();
    if let Some(cmp) = cmp {
        for e in cmp.regressions() {
            s += &format!(
                "REGRESSION {} / {} / {}: {}\n  reproduce: {}\n",
                e.case,
                e.converter,
                e.runtime,
                e.ratio
                    .map(|r| format!(
                        "{:.3}x [{:.3}, {:.3}] calibrated",
                        r.estimate, r.low, r.high
                    ))
                    .unwrap_or_else(|| "fails now".into()),
                e.command
            );
        }
        s += &format!(
            "{} regression(s), {} improvement(s) against {}\n",
            cmp.regressions().count(),
            cmp.improvements().count(),
            cmp.baseline
        );
    }
    for c in &report.cases {
        for r in &c.results {
            match (&r.latency_us, &r.error) {
                (Some(l), _) => {
                    s += &format!(
                        "{:<14} {:<13} {:<13} p50 {:>10.2} µs  p90 {:>10.2}  MAD {:>8.2}  {:>7} GFLOP/s\n",
                        c.case,
                        r.converter,
                        r.runtime,
                        l.p50,
                        l.p90,
                        l.mad,
                        r.gflops.map(|g| format!("{g:.2}")).unwrap_or_else(|| "–".into())
                    )
                }
                (None, e) => {
                    s += &format!(
                        "{:<14} {:<13} {:<13} failed: {}\n",
                        c.case,
                        r.converter,
                        r.runtime,
                        e.as_deref().unwrap_or("no samples")
                    )
                }
            }
        }
    }
    s
}

/// `--run-loop N`: the first config on the first case, N runs, for callgrind.
fn run_loop(options: &PerfOptions, n: usize) -> Result<ExitCode> {
    let (_, dir) = super::select_cases(options)?.remove(0);
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(&dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let mut sink = Vec::with_capacity(n);
    run.batch(n, 1, &mut sink)?;
    Ok(ExitCode::SUCCESS)
}

fn valgrind_version() -> Result<String> {
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
fn callgrind_total(a: &PerfArgs, case: &str, converter: &str, n: usize) -> Result<u64> {
    let tmp = tempfile::tempdir()?;
    let out_file = tmp.path().join("callgrind.out");
    let exe = std::env::current_exe()?;
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["perf", "--corpus"])
        .arg(&a.corpus)
        .args([
            "--case",
            case,
            "--converter",
            converter,
            "--runtime",
            "tract",
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
fn count_instructions(a: &PerfArgs, report: &mut PerfReport) -> Result<()> {
    const FEW: usize = 3;
    const MANY: usize = 23;
    for c in &mut report.cases {
        for r in c
            .results
            .iter_mut()
            .filter(|r| r.runtime == "tract" && r.error.is_none())
        {
            eprintln!(
                "counting instructions of {} / {} (callgrind)",
                c.case, r.converter
            );
            let few = callgrind_total(a, &c.case, &r.converter, FEW)?;
            let many = callgrind_total(a, &c.case, &r.converter, MANY)?;
            r.instructions = Some(many.saturating_sub(few) / (MANY - FEW) as u64);
        }
    }
    Ok(())
}

fn add_instruction_ratios(cmp: &mut Comparison, now: &PerfReport, base: &PerfReport) {
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

/// The self-test: one baseline, then `rounds` comparisons of the same build (false alarms)
/// and of the slowdown wrapper at 5, 10 and 20% (power), each a separate `harness perf`
/// process like a user's, interleaved so drift hits all alike; then the timing overhead.
fn self_test(a: &PerfArgs) -> Result<ExitCode> {
    let mut options = options(a)?;
    options.converters = vec!["identity".into()];
    options.runtimes = vec!["tract".into()];
    let cases = super::select_cases(&options)?;
    // The smallest model is where the timing overhead weighs most; the false-alarm and power
    // rounds run on the seed's CNN1D when the corpus has it (the slowdown wrapper's own clock
    // reads would add more than 5% to a run of a microsecond), else on the smallest model.
    let (small, small_dir) = smallest(&cases)?;
    let (case, _) = if a.cases.is_empty() {
        cases
            .iter()
            .find(|(n, _)| n == "cnn1d")
            .cloned()
            .unwrap_or((small.clone(), small_dir.clone()))
    } else {
        cases[0].clone()
    };
    let tmp = tempfile::tempdir()?;
    let base = tmp.path().join("base.json");
    let exe = std::env::current_exe()?;
    let run = |extra: &[String]| -> Result<(i32, serde_json::Value)> {
        let report = tmp.path().join("r");
        let out = Command::new(&exe)
            .args([
                "perf",
                "--converter",
                "identity",
                "--runtime",
                "tract",
                "--case",
                &case,
            ])
            .arg("--corpus")
            .arg(&a.corpus)
            .args([
                "--budget",
                &a.budget.to_string(),
                "--threshold",
                &a.threshold.to_string(),
            ])
            .arg("--report")
            .arg(&report)
            .args(extra)
            .env("HARNESS_PERF_QUIET", "1")
            .output()?;
        let code = out.status.code().unwrap_or(-1);
        if code != 0 && code != 1 {
            bail!(
                "self-test run failed ({code}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report.join("perf.json"))?)?;
        Ok((code, json))
    };
    eprintln!(
        "self-test on {case} (identity on tract), budget {} s per run, {} rounds",
        a.budget, a.rounds
    );
    run(&["--save".into(), base.display().to_string()])?;
    let levels = [0.0, 5.0, 10.0, 20.0];
    let mut flagged = [0usize; 4];
    let mut strict = [0usize; 4];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let threshold = a.threshold / 100.0;
    for round in 0..a.rounds {
        for (i, level) in levels.iter().enumerate() {
            let mut extra = vec!["--baseline".into(), base.display().to_string()];
            if *level > 0.0 {
                extra.extend(["--slowdown".into(), level.to_string()]);
            }
            let (code, json) = run(&extra)?;
            let entry = &json["comparison"]["entries"][0];
            let low = entry["ratio"]["low"].as_f64().unwrap_or(f64::NAN);
            let est = entry["ratio"]["estimate"].as_f64().unwrap_or(f64::NAN);
            flagged[i] += usize::from(code == 1);
            strict[i] += usize::from(low > 1.0 + threshold);
            ratios[i].push(est);
            eprintln!(
                "round {:>2}  +{level:>2}%  ratio {est:.3} (CI low {low:.3})  {}",
                round + 1,
                if code == 1 {
                    "REGRESSION"
                } else {
                    "no regression"
                }
            );
        }
    }
    let overhead = timing_overhead(&small_dir, &options)?;
    println!(
        "\nself-test on {case}: {} rounds, budget {} s per run, threshold {}%",
        a.rounds, a.budget, a.threshold
    );
    println!("| build | flagged (CI above 1 + threshold/2, used) | flagged (CI above 1 + threshold) | median ratio |");
    println!("|---|---|---|---|");
    for (i, level) in levels.iter().enumerate() {
        println!(
            "| {} | {}/{} | {}/{} | {:.3} |",
            if *level == 0.0 {
                "same build (false alarms)".to_string()
            } else {
                format!("+{level}% busy work (power)")
            },
            flagged[i],
            a.rounds,
            strict[i],
            a.rounds,
            median(&ratios[i])
        );
    }
    println!(
        "timing overhead on {small} (smallest corpus model): harness loop {:+.2}% wall time per run vs a bare loop; samples' mean {:+.2}% vs the bare loop's mean ({} rounds)",
        overhead.0 * 100.0,
        overhead.1 * 100.0,
        OVERHEAD_ROUNDS
    );
    Ok(ExitCode::SUCCESS)
}

const OVERHEAD_ROUNDS: usize = 40;

/// The case with the smallest model.onnx.
fn smallest(cases: &[(String, PathBuf)]) -> Result<(String, PathBuf)> {
    cases
        .iter()
        .min_by_key(|(_, d)| {
            std::fs::metadata(d.join("model.onnx"))
                .map(|m| m.len())
                .unwrap_or(u64::MAX)
        })
        .cloned()
        .context("no case")
}

/// The protocol's per-run timing (clock reads, sample stores) against a bare loop on the
/// same loaded model, interleaved: median over rounds of (harness wall per run / bare per
/// run − 1), and of (mean sample / bare per run − 1).
pub fn timing_overhead(dir: &Path, options: &PerfOptions) -> Result<(f64, f64)> {
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let per_run = run.bare_loop(200)?;
    // The protocol's own choice of runs per sample for this model.
    let r =
        ((measure::clock_cost_us() / (0.005 * per_run.max(0.01))).ceil() as usize).clamp(1, 1_000);
    let k = ((5_000.0 / (per_run.max(0.01) * r as f64)) as usize).clamp(10, 200_000);
    eprintln!("overhead: {per_run:.3} µs per run, {r} run(s) per sample, {k} samples per loop");
    let (mut wall, mut bias) = (Vec::new(), Vec::new());
    let mut samples = Vec::with_capacity(k);
    for round in 0..OVERHEAD_ROUNDS {
        // Alternate the order so neither loop always runs on a warmer cache.
        let early = if round % 2 == 0 {
            Some(run.bare_loop(k * r)?)
        } else {
            None
        };
        samples.clear();
        let t = std::time::Instant::now();
        run.batch(k, r, &mut samples)?;
        let harness = t.elapsed().as_secs_f64() * 1e6 / (k * r) as f64;
        let bare = match early {
            Some(b) => b,
            None => run.bare_loop(k * r)?,
        };
        let mean = samples.iter().sum::<f64>() / k as f64;
        wall.push(harness / bare - 1.0);
        bias.push(mean / bare - 1.0);
    }
    Ok((median(&wall), median(&bias)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::stats::Change;

    #[test]
    fn a_regression_entry_counts_and_an_unchanged_one_does_not() {
        let e = |change| baseline::Entry {
            case: "c".into(),
            converter: "identity".into(),
            runtime: "tract".into(),
            change: Some(change),
            ratio: None,
            raw_ratio: None,
            base_p50_us: Some(1.0),
            now_p50_us: Some(1.0),
            instructions_ratio: None,
            note: None,
            command: String::new(),
        };
        let cmp = Comparison {
            baseline: "b".into(),
            threshold: 0.1,
            margin: 0.05,
            baseline_cpu: String::new(),
            same_machine: true,
            entries: vec![
                e(Change::Unchanged),
                e(Change::Regression),
                e(Change::Improvement),
            ],
        };
        assert_eq!(cmp.regressions().count(), 1);
        assert_eq!(cmp.improvements().count(), 1);
    }
}
