//! The `harness` command line. `cargo xtask conformance` builds and calls it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use harness::compare::Tolerance;
use harness::conformance::journal::{self, Journal};
use harness::conformance::{Options, Runner, SetupError, Shard};
use harness::gen::GenConfig;
use harness::onnx::proto;

mod corpus_cmd;
mod perf;
mod progress;

/// Where things are when the command line does not say: the repository's own layout, relative
/// to the directory the command runs in (`cargo xtask` runs it at the repository's root).
mod defaults {
    use std::path::PathBuf;

    /// Reports of the last run.
    pub const REPORT_DIR: &str = "reports/latest";
    /// The committed corpus of test-case directories.
    pub const CORPUS: &str = "corpus";
    /// Reviewed golden outputs of the corpus, beside it.
    pub const GOLDEN: &str = "golden";
    /// Where fuzzing saves new failure signatures as corpus cases.
    pub const REGRESSIONS: &str = "corpus/regressions";
    /// The expected-failure ledger.
    pub const LEDGER: &str = "corpus/known-failures.toml";
    /// Named latency baselines.
    pub const BASELINES: &str = "reports/baselines";

    /// The ledger, when the repository has one here.
    pub fn ledger() -> Option<PathBuf> {
        Some(PathBuf::from(LEDGER)).filter(|p| p.is_file())
    }
}
use corpus_cmd::{bless, corpus_build, corpus_table};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Conformance and accuracy harness for 1D CNN model converters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate random 1D CNNs, convert them, run them, compare with the f64 oracle.
    Conformance(ConformanceArgs),
    /// Fuzz: generate and check cases until --budget or Ctrl-C; reduce each new failure
    /// signature into a bundle and save it as a regression corpus case.
    Fuzz(FuzzArgs),
    /// Merge the report.json of several runs (shards) into one report, judged by the ledger;
    /// or rebuild a run's reports from its results log (--resume).
    Report {
        /// Report directories (or report.json files) to merge.
        #[arg(long = "merge", value_name = "DIR", num_args = 1.., required_unless_present = "resume")]
        merge: Vec<PathBuf>,
        /// Rebuild the reports from DIR/results.jsonl (the results a run logged as it went,
        /// also when it was killed) into --report (default: DIR itself).
        #[arg(long, value_name = "DIR", conflicts_with = "merge")]
        resume: Option<PathBuf>,
        /// Where to write the merged reports.
        #[arg(long = "report", value_name = "DIR", default_value = defaults::REPORT_DIR)]
        report_dir: PathBuf,
        /// Expected-failure ledger (default: corpus/known-failures.toml when present).
        #[arg(long, value_name = "FILE")]
        known_failures: Option<PathBuf>,
    },
    /// Rewrite a model the way a buggy converter would (to check the harness catches it).
    InjectFault {
        /// One of: reverse-conv-kernels, swap-pads, drop-conv-bias, perturb-weights.
        kind: String,
        /// Input ONNX model.
        input: PathBuf,
        /// Output ONNX model.
        output: PathBuf,
    },
    /// Rewrite a 1D ONNX model in 2D form ([N,C,L] to [N,C,L,1], or [N,C,1,L] with --nc1l).
    Lower1d {
        /// Put the unit axis before the length: [N,C,1,L].
        #[arg(long)]
        nc1l: bool,
        /// Input ONNX model.
        input: PathBuf,
        /// Output ONNX model.
        output: PathBuf,
    },
    /// Latency of the corpus models per converter and runtime: perf.md/perf.html reports,
    /// baselines (--save NAME, --baseline NAME), the self-test (--self-test).
    Perf(perf::PerfArgs),
    /// Rewrite the corpus's built-in cases (architectures and edge cases) from the code that
    /// makes them.
    CorpusBuild {
        /// Corpus directory.
        #[arg(long, default_value = defaults::CORPUS)]
        corpus: PathBuf,
    },
    /// Recompute the golden outputs of every corpus case with the f64 oracle and rewrite the
    /// ones that changed (golden/NAME/output_J.pb and the golden/NAME.snap snapshot), showing
    /// each change for review.
    Bless {
        /// Corpus directory.
        #[arg(long, default_value = defaults::CORPUS)]
        corpus: PathBuf,
        /// Golden directory.
        #[arg(long, default_value = defaults::GOLDEN)]
        golden: PathBuf,
        /// Only show what would change; exit 1 when anything would.
        #[arg(long)]
        check: bool,
    },
    /// Print the corpus as a Markdown table: inputs, parameters, FLOPs, and the verdict per
    /// converter from the given conformance reports.
    CorpusTable {
        /// Corpus directory.
        #[arg(long, default_value = defaults::CORPUS)]
        corpus: PathBuf,
        /// Report directories (or report.json files) whose corpus results fill the verdicts.
        #[arg(long = "report", value_name = "DIR")]
        reports: Vec<PathBuf>,
    },
    /// Write generated case INDEX of seed SEED as an ONNX test-case directory with golden outputs.
    Emit {
        /// Base seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Case index.
        #[arg(long, default_value_t = 0)]
        index: u64,
        /// Opset of the model (default: the one the generator draws for the case).
        #[arg(long)]
        opset: Option<i64>,
        /// Opsets the case's opset was drawn from, as FIRST-LAST (as `conformance --opsets`).
        #[arg(long, value_name = "FIRST-LAST")]
        opsets: Option<String>,
        /// Element type of the model (as `conformance --dtype`).
        #[arg(long, value_enum, default_value_t = ModelType::Float32)]
        dtype: ModelType,
        /// The case's quantized form (as `conformance --quantized`).
        #[arg(long)]
        quantized: bool,
        /// Directory to write.
        dir: PathBuf,
    },
}

#[derive(Args)]
struct FuzzArgs {
    #[command(flatten)]
    run: ConformanceArgs,
    /// Where new failure signatures are saved as corpus cases (default: corpus/regressions
    /// when corpus/ exists); each is also listed in the ledger as a failure to triage.
    #[arg(long, value_name = "DIR")]
    save_regressions: Option<PathBuf>,
    /// Do not save regression cases.
    #[arg(long, conflicts_with = "save_regressions")]
    no_save: bool,
}

#[derive(Args)]
struct ConformanceArgs {
    /// Random cases to generate.
    /// (default 200; for fuzz, no limit)
    #[arg(long)]
    cases: Option<u64>,
    /// Base seed; case i uses a seed derived from (S, i).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Converter under test (repeatable): identity, lower1d, lower1d:nc1l, nnef, openvino,
    /// openvino:f32, or exec:'COMMAND {input} {output}'. Default: identity, lower1d, nnef.
    #[arg(long = "converter", value_name = "SPEC")]
    converters: Vec<String>,
    /// Runtime that runs ONNX artifacts.
    #[arg(long, default_value = "tract")]
    runtime: String,
    /// Committed corpus of test-case directories to run as well.
    #[arg(long, value_name = "DIR")]
    corpus: Option<PathBuf>,
    /// Skip the corpus.
    #[arg(long, conflicts_with = "corpus")]
    no_corpus: bool,
    /// Golden outputs of the corpus (default: `golden` next to the corpus directory).
    #[arg(long, value_name = "DIR")]
    golden: Option<PathBuf>,
    /// Run every ONNX test-case directory under DIR against its stored outputs.
    #[arg(long, value_name = "DIR")]
    onnx_tests: Option<PathBuf>,
    /// Stop starting new cases after SECS.
    #[arg(long, value_name = "SECS")]
    budget: Option<f64>,
    /// Run only cases with index ≡ I mod N (I counts from 1).
    #[arg(long, value_name = "I/N", default_value = "1/1")]
    shard: Shard,
    /// Where to write the reports, and the results log (results.jsonl) as results come.
    #[arg(long = "report", value_name = "DIR", default_value = defaults::REPORT_DIR)]
    report_dir: PathBuf,
    /// Continue the run whose results log is in the --report directory (same options): cases
    /// it finished are taken from the log, the others run. Without a log, a new run starts.
    #[arg(long)]
    resume: bool,
    /// Per conversion or run, past which the verdict is `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    timeout: f64,
    /// Fixed absolute tolerance instead of the error bound (with --rtol).
    #[arg(long)]
    atol: Option<f64>,
    /// Fixed relative tolerance instead of the error bound (with --atol).
    #[arg(long)]
    rtol: Option<f64>,
    /// Safety factor applied to the error bound.
    #[arg(long, default_value_t = 1.0)]
    bound_factor: f64,
    /// A passing result of a converter that changed the model is `drift` when its worst error
    /// (as a fraction of the tolerance) is more than F times the run's runtime's on the
    /// unconverted model; 0 turns the check off.
    #[arg(long, value_name = "F", default_value_t = harness::compare::DriftRule::default().factor)]
    drift_factor: f64,
    /// Worst errors below this fraction of the tolerance are never `drift`.
    #[arg(long, value_name = "RATIO", default_value_t = harness::compare::DriftRule::default().floor)]
    drift_floor: f64,
    /// Timed runs per result after the checked one.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Opset of generated models (default: drawn per model from --opsets).
    #[arg(long)]
    opset: Option<i64>,
    /// Opsets to draw generated models from, as FIRST-LAST [default: 11-21; 7-28 are supported]
    #[arg(long, value_name = "FIRST-LAST")]
    opsets: Option<String>,
    /// Element type of generated models: their input, weights and every float tensor (`mixed`: a
    /// quarter of them float16)
    #[arg(long, value_enum, default_value_t = ModelType::Float32)]
    dtype: ModelType,
    /// Quantize every generated float32 model as a static quantization tool does: QDQ pairs on
    /// the input and after each layer (scales calibrated on the case's input), int8 or uint8
    /// weights, int32 biases
    #[arg(long)]
    quantized: bool,
    /// Most layers per generated model.
    #[arg(long, default_value_t = 8)]
    max_layers: usize,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    jobs: Option<usize>,
    /// Most failures to reduce into repro bundles under REPORT/failures, per converter (0: none).
    #[arg(long, default_value_t = 10)]
    max_bundles: usize,
    /// Seconds allowed to reduce one failure.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    reduce_budget: f64,
    /// Generated cases merged into one model per conversion (default: each converter's own,
    /// 16 for OpenVINO, 1 for the others); 1 runs every case alone.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pack: Option<u64>,
    /// Expected-failure ledger (default: corpus/known-failures.toml when present).
    #[arg(long, value_name = "FILE")]
    known_failures: Option<PathBuf>,
    /// Fail (exit 1) when a catalogue coverage class got fewer than N generated cases.
    #[arg(long, value_name = "N")]
    min_coverage: Option<usize>,
    /// Largest tensor a case may hold, in elements (files and oracle values); a case over it
    /// gets the verdict `too-large` and is not run.
    #[arg(long, value_name = "N", default_value_t = harness::limits::DEFAULT_MAX_ELEMENTS)]
    max_elements: usize,
    /// Largest oracle working set of one case, in bytes (16 per element: value and bound);
    /// a case over it gets the verdict `too-large` and is not run.
    #[arg(long, value_name = "BYTES", default_value_t = harness::limits::DEFAULT_MAX_CASE_BYTES)]
    max_case_bytes: usize,
    /// Address space of every process a converter or runtime starts (`exec:` commands, `ovc`,
    /// Python workers), in bytes or with a unit (512MiB, 6GiB); `none` for no limit. A process
    /// that reaches it gets the verdict `resource-limit` and is replaced.
    #[arg(long, value_name = "BYTES", default_value = "6GiB", value_parser = memory_limit)]
    max_converter_memory: MemoryLimit,
    /// CPU time of each conversion or worker request, in seconds (default: none; --timeout
    /// bounds the wall time). A process that reaches it gets the verdict `resource-limit`.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    max_converter_cpu: Option<u64>,
    /// When stderr is not a terminal (CI logs), a progress line at most every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    progress_every: f64,
}

/// `--max-converter-memory`: bytes, or none.
#[derive(Clone, Copy, Debug)]
struct MemoryLimit(Option<u64>);

fn memory_limit(text: &str) -> Result<MemoryLimit, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(MemoryLimit(None));
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "K" => 10,
        "MiB" | "M" => 20,
        "GiB" | "G" => 30,
        other => return Err(format!("unknown unit '{other}': use B, KiB, MiB or GiB")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as 6GiB, 512MiB or none"))?;
    match n.checked_mul(1 << shift) {
        Some(0) => Err("the memory limit must be above zero (or none)".into()),
        Some(bytes) => Ok(MemoryLimit(Some(bytes))),
        None => Err(format!("'{text}' is too large")),
    }
}

fn main() -> ExitCode {
    // tract reports failed inference attempts as errors and tries again, thousands per model;
    // with RUST_BACKTRACE=1 (common in CI) every one captured a backtrace: 8% of a tract run's
    // time, measured with perf. Error backtraces are never shown (messages are); panics keep
    // theirs (RUST_BACKTRACE still governs them).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    harness::isolate::install_quiet_panic_hook();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Conformance(args) => conformance(args),
        Command::Fuzz(args) => fuzz(args),
        Command::Report {
            merge,
            resume: Some(dir),
            report_dir,
            known_failures,
        } => {
            let out = if merge.is_empty() && report_dir == Path::new(defaults::REPORT_DIR) {
                dir.clone()
            } else {
                report_dir
            };
            rebuild_reports(&dir, &out, known_failures)
        }
        Command::Report {
            merge,
            resume: None,
            report_dir,
            known_failures,
        } => merge_reports(&merge, &report_dir, known_failures),
        Command::InjectFault {
            kind,
            input,
            output,
        } => inject_fault(&kind, &input, &output),
        Command::Lower1d {
            nc1l,
            input,
            output,
        } => lower1d(nc1l, &input, &output),
        Command::Perf(args) => perf::main(args),
        Command::Emit {
            seed,
            index,
            opset,
            opsets,
            dtype,
            quantized,
            dir,
        } => emit(
            seed,
            index,
            (opset, opsets.as_deref()),
            (dtype, quantized),
            &dir,
        ),
        Command::CorpusBuild { corpus } => corpus_build(&corpus),
        Command::CorpusTable { corpus, reports } => corpus_table(&corpus, &reports),
        Command::Bless {
            corpus,
            golden,
            check,
        } => bless(&corpus, &golden, check),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s >= 0.0,
        "--{what} must be a non-negative number of seconds"
    );
    Ok(Duration::from_secs_f64(s))
}

fn fuzz(f: FuzzArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !f.run.resume,
        "--resume is for conformance runs; a fuzz campaign starts from its seed and --cases"
    );
    let budget = f.run.budget.map(|b| seconds("budget", b)).transpose()?;
    let cases = f.run.cases.unwrap_or(0);
    let report_dir = f.run.report_dir.clone();
    let mut options = options(f.run)?;
    options.cases = cases;
    // The campaign reduces every new signature itself.
    options.max_bundles = usize::MAX;
    options.budget = None;
    let regressions = match (f.no_save, f.save_regressions) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => Some(PathBuf::from(defaults::REGRESSIONS))
            .filter(|_| std::path::Path::new(defaults::CORPUS).is_dir()),
    };
    let ledger_file = options
        .known_failures
        .clone()
        .or_else(|| Some(PathBuf::from(defaults::LEDGER)));
    let runner = Runner::new(options).map_err(|SetupError(m)| anyhow::anyhow!(m))?;
    harness::isolate::stop_on_signals();
    let tty = std::io::stderr().is_terminal();
    let last_thousand = std::sync::atomic::AtomicU64::new(0);
    let reported_unsaved = std::sync::atomic::AtomicUsize::new(0);
    let progress = |p: &harness::conformance::FuzzProgress| {
        let already =
            reported_unsaved.swap(p.not_saved.len(), std::sync::atomic::Ordering::Relaxed);
        for problem in p.not_saved.iter().skip(already) {
            eprintln!("{problem}");
        }
        let rate = p.cases as f64 / p.elapsed_s.max(1e-9);
        let line = format!(
            "{:>6.0} s  {} cases  {rate:.0} cases/s  {} failing  {} signatures  {} classes hit",
            p.elapsed_s, p.cases, p.failures, p.signatures, p.classes
        );
        if tty {
            eprint!("\r{line}   ");
        } else if p.cases / 1000 > last_thousand.load(std::sync::atomic::Ordering::Relaxed) {
            last_thousand.store(p.cases / 1000, std::sync::atomic::Ordering::Relaxed);
            eprintln!("{line}");
        }
    };
    let report = runner.fuzz(
        budget,
        regressions.as_deref(),
        ledger_file.as_deref(),
        &progress,
    )?;
    if tty {
        eprintln!();
    }
    report
        .write(&report_dir)
        .with_context(|| format!("{}: cannot write the reports", report_dir.display()))?;
    print!("{}", report.terminal());
    let bundles: std::collections::BTreeSet<&str> = report
        .results
        .iter()
        .filter_map(|r| r.repro.as_deref())
        .collect();
    for b in &bundles {
        println!("repro bundle: {b}");
    }
    println!("reports written to {}", report_dir.display());
    Ok(exit_code(&report))
}

/// Exit status (docs/verdicts.md): 0 when all passed (or failed as the ledger expects), 1 otherwise, 130 when
/// a signal stopped the run.
fn exit_code(report: &harness::report::Report) -> ExitCode {
    if harness::isolate::interrupted() {
        ExitCode::from(130)
    } else if report.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A finite number not below zero, or a usage error naming the option.
fn non_negative(option: &str, value: f64) -> anyhow::Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        anyhow::bail!("--{option} must be a number not below 0, got {value}")
    }
}

/// Element types the generator writes models in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ModelType {
    Float32,
    Float16,
    Mixed,
}

impl ModelType {
    fn dtype(self) -> harness::tensor::DType {
        match self {
            ModelType::Float32 | ModelType::Mixed => harness::tensor::DType::Float,
            ModelType::Float16 => harness::tensor::DType::Float16,
        }
    }
}

/// Checks `--opset` and parses `--opsets FIRST-LAST`; both must lie in the opsets the emitter
/// supports.
fn opset_choice(opset: Option<i64>, opsets: Option<&str>) -> anyhow::Result<Option<(i64, i64)>> {
    let (lo, hi) = harness::onnx::emit::SUPPORTED_OPSETS;
    if let Some(o) = opset {
        anyhow::ensure!(
            (lo..=hi).contains(&o),
            "--opset {o}: the generator writes opsets {lo} to {hi}"
        );
    }
    let Some(text) = opsets else {
        return Ok(None);
    };
    anyhow::ensure!(opset.is_none(), "--opset and --opsets exclude each other");
    let range = text
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?)));
    match range {
        Some((first, last)) if lo <= first && first <= last && last <= hi => {
            Ok(Some((first, last)))
        }
        _ => {
            anyhow::bail!("--opsets {text}: expected FIRST-LAST with {lo} <= FIRST <= LAST <= {hi}")
        }
    }
}

fn options(a: ConformanceArgs) -> anyhow::Result<Options> {
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
            quantized: a.quantized,
            quantized_operators: None,
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

fn conformance(a: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let report_dir = a.report_dir.clone();
    let min_coverage = a.min_coverage;
    let resume = a.resume;
    let progress_every = seconds("progress-every", a.progress_every)?;
    let options = options(a)?;
    let required = harness::model::required_classes(
        options.gen.opsets_drawn(),
        options.gen.draws_float16(),
        options.gen.quantized,
    );
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

fn inject_fault(
    kind: &str,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let mut model = proto::decode_model(&bytes).with_context(|| input.display().to_string())?;
    harness::fault::inject(kind, &mut model)?;
    harness::fsutil::write_atomically(output, &proto::encode_model(&model))?;
    Ok(ExitCode::SUCCESS)
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

/// Rebuilds the reports of the run whose results log is in `dir`, judged by the ledger.
fn rebuild_reports(
    dir: &Path,
    out: &Path,
    known_failures: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let logged = journal::read(&dir.join(journal::FILE))?;
    let mut report = harness::report::Report::new(
        harness::results::Tool::harness(),
        logged
            .environment
            .clone()
            .unwrap_or_else(harness::results::Environment::detect),
        logged.options.clone(),
        logged.results(),
        0.0,
    );
    if !logged.ended {
        report.stopped_early = Some(format!(
            "rebuilt from the results log of a run that did not finish ({} cases done; \
             `conformance --resume` with the same options continues it)",
            logged.done()
        ));
    }
    if let Some(path) = known_failures.or_else(defaults::ledger) {
        report.apply_ledger(&harness::ledger::Ledger::load(&path)?);
    }
    report
        .write(out)
        .with_context(|| format!("{}: cannot write the reports", out.display()))?;
    print!("{}", report.terminal());
    println!("reports rebuilt in {}", out.display());
    Ok(exit_code(&report))
}

fn merge_reports(
    parts: &[PathBuf],
    out: &std::path::Path,
    known_failures: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let reports = parts
        .iter()
        .map(|p| {
            let file = if p.is_dir() {
                p.join("report.json")
            } else {
                p.clone()
            };
            harness::report::Report::load(&file)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut merged = harness::report::Report::merge(reports)?;
    let ledger_path = known_failures.or_else(defaults::ledger);
    if let Some(path) = ledger_path {
        merged.apply_ledger(&harness::ledger::Ledger::load(&path)?);
    }
    merged
        .write(out)
        .with_context(|| format!("{}: cannot write the reports", out.display()))?;
    print!("{}", merged.terminal());
    println!("merged report written to {}", out.display());
    Ok(if merged.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn lower1d(
    nc1l: bool,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use harness::convert::UnitAxis;
    let bytes =
        std::fs::read(input).with_context(|| format!("{}: cannot read", input.display()))?;
    let mut model = proto::decode_model(&bytes).with_context(|| input.display().to_string())?;
    let unit = if nc1l {
        UnitAxis::BeforeLength
    } else {
        UnitAxis::Last
    };
    harness::convert::lower(&mut model, unit)
        .with_context(|| format!("{}: cannot lower", input.display()))?;
    harness::fsutil::write_atomically(output, &proto::encode_model(&model))?;
    println!("wrote {}", output.display());
    Ok(ExitCode::SUCCESS)
}

fn emit(
    seed: u64,
    index: u64,
    (opset, opsets): (Option<i64>, Option<&str>),
    (dtype, quantized): (ModelType, bool),
    dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let range = opset_choice(opset, opsets)?;
    let cfg = GenConfig {
        opset,
        opsets: range,
        dtype: (dtype == ModelType::Float16).then(|| dtype.dtype()),
        mixed_float16: dtype == ModelType::Mixed,
        quantized,
        ..GenConfig::default()
    };
    let mut command = format!("harness emit --seed {seed} --index {index}");
    match (opset, range) {
        (Some(o), _) => command.push_str(&format!(" --opset {o}")),
        (None, Some((a, b))) => command.push_str(&format!(" --opsets {a}-{b}")),
        (None, None) => {}
    }
    match dtype {
        ModelType::Float32 => {}
        ModelType::Float16 => command.push_str(" --dtype float16"),
        ModelType::Mixed => command.push_str(" --dtype mixed"),
    }
    if quantized {
        command.push_str(" --quantized");
    }
    command.push_str(" DIR");
    let case = harness::conformance::write_generated_case(seed, index, &cfg, dir, &command)?;
    println!("wrote {} ({})", dir.display(), case.id);
    Ok(ExitCode::SUCCESS)
}
