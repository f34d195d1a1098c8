//! `harness perf`: measure the corpus, write perf reports, save or compare baselines; its
//! self-test; instruction counts under callgrind.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use harness::convert::IDENTITY;
use harness::fsutil::write_atomically;
use harness::runtime::TRACT;
use latency::baseline::{self, Comparison};
use latency::instructions::{count_instructions, run_loop, valgrind_version};
use latency::measure::Protocol;
use latency::selftest::{
    self_test, self_test_instructions, self_test_side_by_side, smallest, timing_overhead,
    OVERHEAD_ROUNDS,
};
use latency::{page, PerfOptions, PerfReport};

/// Options of `harness perf`.
#[derive(clap::Args, Debug, Clone)]
pub struct PerfArgs {
    /// Corpus directory: every directory under it holding a model.onnx is a case.
    #[arg(long, value_name = "DIR", default_value = crate::defaults::CORPUS)]
    pub corpus: PathBuf,
    /// Only this case (repeatable): its directory name under the corpus. Default: the cases
    /// whose case.toml says `perf = true` (every case when none does).
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
    /// Independent loads of each (case, converter, runtime), sharing its budget; a
    /// comparison resamples loads as well as rounds, so load-to-load variation (large for
    /// OpenVINO here) widens the interval instead of raising alarms. Default 3, and 8 for
    /// side-by-side runs (`--against-bin`, `--self-test --side-by-side`), where load-to-load
    /// variation is all that is left (docs/PERFORMANCE.md: with 3 or 5 a 10% slowdown was
    /// missed in 6 to 10% of the rounds).
    #[arg(long, value_name = "N")]
    pub loads: Option<usize>,
    /// Passes over all cases, one after another, each with fresh loads; a baseline saved
    /// over several (`--save main --sessions 3`) holds the drift of runtimes whose speed
    /// changes over minutes, and comparisons resample it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub sessions: usize,
    /// Save this run as baseline NAME (reports/baselines/NAME.json, or a path).
    #[arg(long, value_name = "NAME")]
    pub save: Option<String>,
    /// Compare with baseline NAME; exit 1 on a regression. Timings compare only on the CPU
    /// model that saved it (elsewhere: "not comparable here", or instruction counts).
    #[arg(long, value_name = "NAME")]
    pub baseline: Option<String>,
    /// Compare with another build measured side by side in this run, in the same rounds: the
    /// `harness` binary of that build (`cargo xtask perf --against REV` builds it and passes
    /// it here); exit 1 on a regression.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["baseline", "save", "instructions"])]
    pub against_bin: Option<PathBuf>,
    /// How the reports name the `--against-bin` build (its revision).
    #[arg(long, value_name = "REV", requires = "against_bin")]
    pub against_name: Option<String>,
    /// With --self-test: test the side-by-side comparison (`--against`): the same build
    /// against itself (false alarms) and against itself with 10% busy work (power).
    #[arg(long, requires = "self_test", conflicts_with = "instructions")]
    pub side_by_side: bool,
    /// Slowdown that must be caught, in percent; flagged when the 95% interval of the
    /// calibrated ratio lies entirely above 1 + threshold/2.
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub threshold: f64,
    /// Where perf.md, perf.html, perf.json and perf-samples.json go.
    #[arg(long = "report", value_name = "DIR", default_value = crate::defaults::REPORT_DIR)]
    pub report_dir: PathBuf,
    /// Where named baselines live.
    #[arg(long, value_name = "DIR", default_value = crate::defaults::BASELINES)]
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
    /// Also count instructions per run of the tract configs under valgrind's callgrind (they
    /// decide a comparison with a baseline from another CPU model when both sides counted
    /// under the same SIMD extensions). With --self-test: test that comparison instead.
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
    /// Internal (`--against`): load the first selected config and time batches on request
    /// (the protocol is in latency/src/ab.rs).
    #[arg(long, hide = true)]
    pub serve: bool,
}

fn python_available() -> bool {
    harness::worker::find_python().is_some_and(|p| p.exists())
}

/// The measurement options the arguments ask for.
pub fn options(a: &PerfArgs) -> Result<PerfOptions> {
    anyhow::ensure!(
        a.budget.is_finite() && a.budget > 0.0,
        "--budget must be a positive number of seconds"
    );
    let side_by_side = a.against_bin.is_some() || a.side_by_side;
    let loads = a.loads.unwrap_or(if side_by_side { 8 } else { 3 });
    anyhow::ensure!(
        (1..=16).contains(&loads),
        "--loads must be between 1 and 16"
    );
    anyhow::ensure!(
        (1..=16).contains(&a.sessions),
        "--sessions must be between 1 and 16"
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
        protocol: Protocol {
            loads,
            sessions: a.sessions,
            ..Protocol::with_budget(Duration::from_secs_f64(a.budget))
        },
        slowdown: a.slowdown.map(|p| p / 100.0),
        timeout: Duration::from_secs_f64(a.timeout.max(1.0)),
    })
}

/// Runs `harness perf`.
pub fn main(a: PerfArgs) -> Result<ExitCode> {
    let options = options(&a)?;
    if a.serve {
        latency::ab::serve(&options)?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.self_test {
        let say = |line: &str| eprintln!("{line}");
        let markdown = if a.side_by_side {
            self_test_side_by_side(&options, a.threshold, a.rounds, &say)?.markdown()
        } else if a.instructions {
            valgrind_version()?;
            self_test_instructions(&options, a.threshold, a.rounds, &say)?.markdown()
        } else {
            self_test(&options, a.threshold, a.rounds, &say)?.markdown()
        };
        print!("{markdown}");
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(bin) = &a.against_bin {
        return side_by_side(&a, &options, bin);
    }
    if a.overhead {
        return overhead(options);
    }
    if let Some(n) = a.run_loop {
        run_loop(&options, n)?;
        return Ok(ExitCode::SUCCESS);
    }
    let baseline = load_baseline(&a)?;
    if a.instructions {
        valgrind_version()?;
    }
    let quiet = std::env::var_os("HARNESS_PERF_QUIET").is_some();
    let mut report = latency::run(&options, &|case| {
        if !quiet {
            eprintln!("measuring {case}");
        }
    })?;
    if a.instructions {
        count_instructions(&a.corpus, &mut report, &|line| eprintln!("{line}"))?;
    }
    let comparison = baseline
        .as_ref()
        .map(|(b, path, name)| compare_with_baseline(&report, b, path, name, a.threshold));
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
    if harness::isolate::interrupted() {
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

/// `--against-bin`: this build and that one measured side by side, reports written, exit 1
/// on a regression.
fn side_by_side(a: &PerfArgs, options: &PerfOptions, bin: &Path) -> Result<ExitCode> {
    anyhow::ensure!(
        bin.is_file(),
        "--against-bin {}: no such file",
        bin.display()
    );
    let reference = latency::ab::Side {
        exe: bin.to_path_buf(),
        name: a
            .against_name
            .clone()
            .unwrap_or_else(|| bin.display().to_string()),
        slowdown: None,
    };
    let candidate = latency::ab::Side {
        exe: std::env::current_exe()?,
        name: "this build".into(),
        slowdown: options.slowdown,
    };
    let quiet = std::env::var_os("HARNESS_PERF_QUIET").is_some();
    let ab = latency::ab::run(
        options,
        &reference,
        &candidate,
        a.threshold / 100.0,
        &|case| {
            if !quiet {
                eprintln!(
                    "measuring {case} (this build and {} side by side)",
                    reference.name
                );
            }
        },
    )?;
    write_reports(
        &a.report_dir,
        &ab.candidate,
        Some(&ab.comparison),
        Some(&ab.reference),
    )?;
    if !quiet {
        print!("{}", terminal(&ab.candidate, Some(&ab.comparison)));
    }
    println!(
        "perf report written to {}",
        a.report_dir.join("perf.md").display()
    );
    if harness::isolate::interrupted() {
        return Ok(ExitCode::from(130));
    }
    Ok(if ab.comparison.regressions().next().is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The baseline `--baseline` names, with its path and that name, read before anything is
/// measured: a bad baseline is a set-up error, better said before minutes of measuring.
fn load_baseline(a: &PerfArgs) -> Result<Option<(PerfReport, PathBuf, String)>> {
    Ok(match &a.baseline {
        Some(name) => {
            let path = baseline::path_of(&a.baselines, name);
            Some((baseline::load(&path)?, path, name.clone()))
        }
        None => None,
    })
}

/// `--overhead`: only the timing overhead, on the smallest selected case with identity on
/// tract, where the protocol's own clock reads weigh most; printed, and nothing written.
fn overhead(mut options: PerfOptions) -> Result<ExitCode> {
    options.converters = vec![IDENTITY.into()];
    options.runtimes = vec![TRACT.into()];
    let (name, dir) = smallest(&latency::named_cases(&options)?)?;
    let (wall, bias) = timing_overhead(&dir, &options, &|line| eprintln!("{line}"))?;
    println!(
        "timing overhead on {name}: protocol loop {:+.2}% wall time per run vs a bare loop; samples' mean {:+.2}% vs the bare loop ({OVERHEAD_ROUNDS} rounds)",
        wall * 100.0,
        bias * 100.0
    );
    Ok(ExitCode::SUCCESS)
}

/// The comparison of `report` with the baseline `base` (read from `path`, named `name` by
/// the user) at `threshold_pct` percent, with the instruction-count ratios when both runs
/// counted instructions (compared across CPU models only when counted under the same SIMD
/// extensions).
fn compare_with_baseline(
    report: &PerfReport,
    base: &PerfReport,
    path: &Path,
    name: &str,
    threshold_pct: f64,
) -> Comparison {
    let threshold = threshold_pct / 100.0;
    baseline::compare(
        report,
        base,
        path,
        name,
        threshold,
        baseline::margin_for(threshold),
    )
}

fn write_reports(
    dir: &Path,
    report: &PerfReport,
    cmp: Option<&Comparison>,
    base: Option<&PerfReport>,
) -> Result<()> {
    let mut json = serde_json::to_value(report)?;
    json["comparison"] = serde_json::to_value(cmp)?;
    if let (Some(cmp), Some(base)) = (cmp, base) {
        // Side by side, the reference build was measured in this run: its data go with it.
        if cmp.side_by_side {
            json["reference"] = serde_json::to_value(base)?;
        }
    }
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
        let not_comparable = cmp.not_comparable().count();
        if not_comparable > 0 {
            s += &format!(
                "{not_comparable} not comparable here: the baseline was measured on {}, this machine has another CPU model; run `cargo xtask perf --against REV` (both builds side by side here), save a local baseline (`--save NAME`), or count instructions on both sides (`--instructions`)\n",
                cmp.baseline_cpu
            );
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use latency::stats::Change;

    #[test]
    fn a_regression_entry_counts_and_an_unchanged_one_does_not() {
        let e = |change| baseline::Entry {
            case: "c".into(),
            converter: "identity".into(),
            runtime: "tract".into(),
            change: Some(change),
            ratio: None,
            mode_ratio: None,
            raw_floor_ratio: None,
            raw_ratio: None,
            base_p50_us: Some(1.0),
            now_p50_us: Some(1.0),
            instructions_ratio: None,
            not_comparable: false,
            note: None,
            command: String::new(),
        };
        let cmp = Comparison {
            baseline: "b".into(),
            threshold: 0.1,
            margin: 0.05,
            baseline_cpu: String::new(),
            same_machine: true,
            counts_comparable: false,
            side_by_side: false,
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
