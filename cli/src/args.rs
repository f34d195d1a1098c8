//! The command line's arguments: the commands, their options and the checks of their values.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use harness::conformance::Shard;

use crate::{defaults, perf};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Conformance and accuracy harness for 1D CNN model converters"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The quantized form in this operator form (as `conformance --quantized-operators`).
        #[arg(long, value_enum)]
        quantized_operators: Option<QuantizedOperators>,
        /// Directory to write.
        dir: PathBuf,
    },
}

#[derive(Args)]
pub struct FuzzArgs {
    #[command(flatten)]
    pub run: ConformanceArgs,
    /// Where new failure signatures are saved as corpus cases (default: corpus/regressions
    /// when corpus/ exists); each is also listed in the ledger as a failure to triage.
    #[arg(long, value_name = "DIR")]
    pub save_regressions: Option<PathBuf>,
    /// Do not save regression cases.
    #[arg(long, conflicts_with = "save_regressions")]
    pub no_save: bool,
}

#[derive(Args)]
pub struct ConformanceArgs {
    /// Random cases to generate.
    /// (default 200; for fuzz, no limit)
    #[arg(long)]
    pub cases: Option<u64>,
    /// Base seed; case i uses a seed derived from (S, i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Converter under test (repeatable): identity, lower1d, lower1d:nc1l, nnef, openvino,
    /// openvino:f32, or exec:'COMMAND {input} {output}'. Default: identity, lower1d, nnef.
    #[arg(long = "converter", value_name = "SPEC")]
    pub converters: Vec<String>,
    /// Runtime that runs ONNX artifacts.
    #[arg(long, default_value = "tract")]
    pub runtime: String,
    /// Committed corpus of test-case directories to run as well.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Skip the corpus.
    #[arg(long, conflicts_with = "corpus")]
    pub no_corpus: bool,
    /// Golden outputs of the corpus (default: `golden` next to the corpus directory).
    #[arg(long, value_name = "DIR")]
    pub golden: Option<PathBuf>,
    /// Run every ONNX test-case directory under DIR against its stored outputs.
    #[arg(long, value_name = "DIR")]
    pub onnx_tests: Option<PathBuf>,
    /// Stop starting new cases after SECS.
    #[arg(long, value_name = "SECS")]
    pub budget: Option<f64>,
    /// Run only cases with index ≡ I mod N (I counts from 1).
    #[arg(long, value_name = "I/N", default_value = "1/1")]
    pub shard: Shard,
    /// Where to write the reports, and the results log (results.jsonl) as results come.
    #[arg(long = "report", value_name = "DIR", default_value = defaults::REPORT_DIR)]
    pub report_dir: PathBuf,
    /// Continue the run whose results log is in the --report directory (same options): cases
    /// it finished are taken from the log, the others run. Without a log, a new run starts.
    #[arg(long)]
    pub resume: bool,
    /// Per conversion or run, past which the verdict is `timeout`.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Fixed absolute tolerance instead of the error bound (with --rtol).
    #[arg(long)]
    pub atol: Option<f64>,
    /// Fixed relative tolerance instead of the error bound (with --atol).
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Safety factor applied to the error bound.
    #[arg(long, default_value_t = 1.0)]
    pub bound_factor: f64,
    /// A passing result of a converter that changed the model is `drift` when its worst error
    /// (as a fraction of the tolerance) is more than F times the run's runtime's on the
    /// unconverted model; 0 turns the check off.
    #[arg(long, value_name = "F", default_value_t = harness::compare::DriftRule::default().factor)]
    pub drift_factor: f64,
    /// Worst errors below this fraction of the tolerance are never `drift`.
    #[arg(long, value_name = "RATIO", default_value_t = harness::compare::DriftRule::default().floor)]
    pub drift_floor: f64,
    /// Timed runs per result after the checked one.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Opset of generated models (default: drawn per model from --opsets).
    #[arg(long)]
    pub opset: Option<i64>,
    /// Opsets to draw generated models from, as FIRST-LAST [default: 11-21; 7-28 are supported]
    #[arg(long, value_name = "FIRST-LAST")]
    pub opsets: Option<String>,
    /// Element type of generated models: their input, weights and every float tensor (`mixed`: a
    /// quarter of them float16)
    #[arg(long, value_enum, default_value_t = ModelType::Float32)]
    pub dtype: ModelType,
    /// Make every generated case quantized, as a static quantization tool quantizes a float32
    /// model: QDQ pairs on the input and after each layer (scales calibrated on the case's
    /// input), int8 or uint8 weights, int32 biases. Without it an eighth of the float cases,
    /// drawn per case, get their quantized form beside them
    #[arg(long, conflicts_with = "no_quantized")]
    pub quantized: bool,
    /// Make float cases alone, no quantized form beside any of them
    #[arg(long)]
    pub no_quantized: bool,
    /// Write every quantized model in one operator form instead of drawing it per case (half
    /// QDQ, a quarter each of the others): qdq (QuantizeLinear/DequantizeLinear pairs), qlinear
    /// (QLinearConv, QLinearMatMul), integer (ConvInteger, MatMulInteger). Implies --quantized
    #[arg(long, value_enum)]
    pub quantized_operators: Option<QuantizedOperators>,
    /// Most layers per generated model.
    #[arg(long, default_value_t = 8)]
    pub max_layers: usize,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Most failures to reduce into repro bundles under REPORT/failures, per converter (0: none).
    #[arg(long, default_value_t = 10)]
    pub max_bundles: usize,
    /// Seconds allowed to reduce one failure.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub reduce_budget: f64,
    /// Generated cases merged into one model per conversion (default: each converter's own,
    /// 16 for OpenVINO, 1 for the others); 1 runs every case alone.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub pack: Option<u64>,
    /// Expected-failure ledger (default: corpus/known-failures.toml when present).
    #[arg(long, value_name = "FILE")]
    pub known_failures: Option<PathBuf>,
    /// Fail (exit 1) when a catalogue coverage class got fewer than N generated cases.
    #[arg(long, value_name = "N")]
    pub min_coverage: Option<usize>,
    /// Largest tensor a case may hold, in elements (files and oracle values); a case over it
    /// gets the verdict `too-large` and is not run.
    #[arg(long, value_name = "N", default_value_t = harness::limits::DEFAULT_MAX_ELEMENTS)]
    pub max_elements: usize,
    /// Largest oracle working set of one case, in bytes (16 per element: value and bound);
    /// a case over it gets the verdict `too-large` and is not run.
    #[arg(long, value_name = "BYTES", default_value_t = harness::limits::DEFAULT_MAX_CASE_BYTES)]
    pub max_case_bytes: usize,
    /// Address space of every process a converter or runtime starts (`exec:` commands, `ovc`,
    /// Python workers), in bytes or with a unit (512MiB, 6GiB); `none` for no limit. A process
    /// that reaches it gets the verdict `resource-limit` and is replaced.
    #[arg(long, value_name = "BYTES", default_value = "6GiB", value_parser = memory_limit)]
    pub max_converter_memory: MemoryLimit,
    /// CPU time of each conversion or worker request, in seconds (default: none; --timeout
    /// bounds the wall time). A process that reaches it gets the verdict `resource-limit`.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_converter_cpu: Option<u64>,
    /// When stderr is not a terminal (CI logs), a progress line at most every SECS seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub progress_every: f64,
}

/// `--max-converter-memory`: bytes, or none.
#[derive(Clone, Copy, Debug)]
pub struct MemoryLimit(pub Option<u64>);

pub fn memory_limit(text: &str) -> Result<MemoryLimit, String> {
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

pub fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    anyhow::ensure!(
        s.is_finite() && s >= 0.0,
        "--{what} must be a non-negative number of seconds"
    );
    Ok(Duration::from_secs_f64(s))
}

/// A finite number not below zero, or a usage error naming the option.
pub fn non_negative(option: &str, value: f64) -> anyhow::Result<f64> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        anyhow::bail!("--{option} must be a number not below 0, got {value}")
    }
}

/// The operator forms of quantized models (`harness::model::QuantOperators`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantizedOperators {
    /// Float operators between QuantizeLinear and DequantizeLinear pairs.
    Qdq,
    /// QLinearConv and QLinearMatMul.
    Qlinear,
    /// ConvInteger and MatMulInteger.
    Integer,
}

impl From<QuantizedOperators> for harness::model::QuantOperators {
    fn from(q: QuantizedOperators) -> Self {
        match q {
            QuantizedOperators::Qdq => harness::model::QuantOperators::Qdq,
            QuantizedOperators::Qlinear => harness::model::QuantOperators::Qlinear,
            QuantizedOperators::Integer => harness::model::QuantOperators::Integer,
        }
    }
}

/// Element types the generator writes models in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelType {
    Float32,
    Float16,
    Mixed,
}

impl ModelType {
    pub fn dtype(self) -> harness::tensor::DType {
        match self {
            ModelType::Float32 | ModelType::Mixed => harness::tensor::DType::Float,
            ModelType::Float16 => harness::tensor::DType::Float16,
        }
    }
}

/// Checks `--opset` and parses `--opsets FIRST-LAST`; both must lie in the opsets the emitter
/// supports.
pub fn opset_choice(
    opset: Option<i64>,
    opsets: Option<&str>,
) -> anyhow::Result<Option<(i64, i64)>> {
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
