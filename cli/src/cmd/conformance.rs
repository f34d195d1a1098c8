//! `harness conformance`: the run's options from the command line, the run, its results log.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use harness::compare::Tolerance;
use harness::conformance::journal::{self, Journal};
use harness::conformance::{Options, Runner, SetupError};
use harness::gen::{GenConfig, QuantizedCases};

use super::exit_code;
use crate::args::{non_negative, opset_choice, seconds, ConformanceArgs, ModelType};
use crate::{defaults, progress};

pub fn options(a: ConformanceArgs) -> anyhow::Result<Options> {
    let opsets = opset_choice(a.opset, a.opsets.as_deref())?;
    let tolerance = match (a.atol, a.rtol) {
        (None, None) => Tolerance::Bound {
            factor: a.bound_factor,
        },
        (atol, rtol) => Tolerance::Fixed {
            atol: atol.unwrap_or(0.0),
            rtol: rtol.unwrap_or(0.0),
        },
    };
    let corpus = match (a.no_corpus, a.corpus) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        // The default corpus is used when present, so the command works from any directory.
        (false, None) => Some(PathBuf::from(defaults::CORPUS)).filter(|d| d.is_dir()),
    };
    // Corpus cases are judged against their reviewed golden outputs.
    let golden = corpus.as_ref().map(|c| {
        a.golden.clone().unwrap_or_else(|| {
            c.parent()
                .unwrap_or(std::path::Path::new("."))
                .join(defaults::GOLDEN)
        })
    });
    let options = Options {
        cases: a.cases.unwrap_or(200),
        seed: a.seed,
        converters: if a.converters.is_empty() {
            harness::convert::DEFAULTS
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            a.converters
        },
        runtime: a.runtime,
        corpus,
        golden,
        onnx_tests: a.onnx_tests,
        budget: a.budget.map(|b| seconds("budget", b)).transpose()?,
        shard: a.shard,
        report_dir: Some(a.report_dir.clone()),
        timeout: seconds("timeout", a.timeout)?,
        tolerance,
        repeats: a.repeats,
        gen: GenConfig {
            max_layers: a.max_layers.max(1),
            opset: a.opset,
            opsets,
            // float32 is the default, left out so that the options recorded stay those of earlier runs.
            dtype: (a.dtype == ModelType::Float16).then(|| a.dtype.dtype()),
            mixed_float16: a.dtype == ModelType::Mixed,
            quantized: if a.quantized || a.quantized_operators.is_some() {
                QuantizedCases::Only
            } else if a.no_quantized {
                QuantizedCases::None
            } else {
                QuantizedCases::Beside
            },
            quantized_operators: a.quantized_operators.map(Into::into),
        },
        max_bundles: a.max_bundles,
        reduce_budget: seconds("reduce-budget", a.reduce_budget)?,
        known_failures: a.known_failures.or_else(defaults::ledger),
        pack: a.pack.map(|k| k as usize),
        limits: harness::isolate::ChildLimits {
            memory: a.max_converter_memory.0,
            cpu_seconds: a.max_converter_cpu,
        },
        drift: harness::compare::DriftRule {
            factor: non_negative("drift-factor", a.drift_factor)?,
            floor: non_negative("drift-floor", a.drift_floor)?,
        },
    };
    harness::limits::set(a.max_elements, a.max_case_bytes);
    if let Some(jobs) = a.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global()
            .ok();
    }
    Ok(options)
}

pub fn conformance(a: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let report_dir = a.report_dir.clone();
    let min_coverage = a.min_coverage;
    let resume = a.resume;
    let progress_every = seconds("progress-every", a.progress_every)?;
    let options = options(a)?;
    let mut required = harness::model::required_classes(
        options.gen.opsets_drawn(),
        options.gen.draws_float16(),
        options.gen.draws_quantized(),
    );
    if let Some(form) = options.gen.quantized_operators {
        required.retain(|c| harness::model::reachable_in_form(c, form));
    }
    let runner = Runner::new(options).map_err(|SetupError(m)| anyhow::anyhow!(m))?;
    let runner = with_results_log(runner, &report_dir, resume)?;
    harness::isolate::stop_on_signals();
    let view = progress::View::new(std::io::stderr().is_terminal(), progress_every);
    let report = runner.run(&|p| view.show(p));
    view.finish();
    let report = report?;
    if let Some(e) = runner.results_log_error() {
        eprintln!("warning: the results log is incomplete ({e}); the reports below are whole");
    }
    report
        .write(&report_dir)
        .with_context(|| format!("{}: cannot write the reports", report_dir.display()))?;
    print!("{}", report.terminal());
    println!("reports written to {}", report_dir.display());
    if let Some(n) = min_coverage {
        let low = report.coverage_below(n, &required);
        if !low.is_empty() {
            let list: Vec<String> = low.iter().map(|(c, k)| format!("{c} ({k})")).collect();
            println!(
                "coverage: {} catalogue classes have fewer than {n} cases: {}",
                low.len(),
                list.join(", ")
            );
            return Ok(ExitCode::from(1));
        }
        println!("coverage: every catalogue class has at least {n} cases");
    }
    Ok(exit_code(&report))
}

/// Logs the run's results to `report_dir`'s results log, a new one or, with `resume`, the one
/// there (whose finished cases are not run again).
fn with_results_log(runner: Runner, report_dir: &Path, resume: bool) -> anyhow::Result<Runner> {
    let path = report_dir.join(journal::FILE);
    let options = serde_json::to_value(runner.options())?;
    if resume && path.is_file() {
        let (log, logged) = Journal::resume(&path, &options)?;
        eprintln!(
            "resuming: {} cases done in {}",
            logged.done(),
            path.display()
        );
        return Ok(runner.with_results_log(log, Some(logged)));
    }
    if resume {
        eprintln!(
            "no results log in {}: starting a new run",
            report_dir.display()
        );
    }
    let log = Journal::create(&path, &options, &runner.environment())?;
    Ok(runner.with_results_log(log, None))
}
