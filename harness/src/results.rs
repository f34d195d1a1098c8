//! One result of a run and the facts it carries: the case's origin, the verdict, the errors,
//! the environment it ran in. The leaf that the ledger, the report, conformance and latency all
//! share, so none of them has to import another to talk about a result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compare::Tolerance;
pub use crate::compare::Verdict;
use crate::runtime::Precision;

/// Where a case comes from: enough to build its subject again (to bundle or reduce a failure)
/// without looking anything up by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    /// Generated case `index` of base seed `base` (id `s{base}-i{index}`), or its quantized
    /// form (`-q`, `-qo` or `-qi` after the id).
    Generated {
        /// Base seed of the run.
        base: u64,
        /// Index of the case in the run.
        index: u64,
        /// The quantized form of the case rather than the float one.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        quantized: bool,
    },
    /// Data set `data_set` of a corpus case directory (judged against its golden outputs).
    Corpus {
        /// The case directory.
        dir: PathBuf,
        /// Index of the `test_data_set_K` directory.
        data_set: usize,
    },
    /// Data set `data_set` of an ONNX test-case directory given with `--onnx-tests`.
    TestDir {
        /// The case directory.
        dir: PathBuf,
        /// Index of the `test_data_set_K` directory.
        data_set: usize,
    },
    /// A model made from another one while reducing a failure, or a report read from disk
    /// that does not say.
    #[default]
    Derived,
}

impl Origin {
    /// The origin of a generated case id `s{base}-i{index}` (`-q`, `-qo` or `-qi` after it for
    /// the case's quantized form), if it is one.
    pub fn of_generated_id(id: &str) -> Option<Origin> {
        let float = ["-q", "-qo", "-qi"].iter().find_map(|s| id.strip_suffix(s));
        let (base, index) = float.unwrap_or(id).strip_prefix('s')?.split_once("-i")?;
        Some(Origin::Generated {
            base: base.parse().ok()?,
            index: index.parse().ok()?,
            quantized: float.is_some(),
        })
    }

    /// The order of results in a report: test-case directories first (by id), then generated
    /// cases by index, a float case before its quantized form.
    pub fn sort_key(&self, case: &str) -> (u8, u64, String) {
        let generated = |base: u64, index: u64, quantized: bool| {
            (
                1,
                index,
                format!("{base}{}", if quantized { "q" } else { "" }),
            )
        };
        match self {
            &Origin::Generated {
                base,
                index,
                quantized,
            } => generated(base, index, quantized),
            _ => match Origin::of_generated_id(case) {
                Some(Origin::Generated {
                    base,
                    index,
                    quantized,
                }) => generated(base, index, quantized),
                _ => (0, 0, case.to_string()),
            },
        }
    }
}

/// The tolerance policy a result was judged with, as report.json names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The oracle's per-element error bound.
    Bound,
    /// Fixed `atol + rtol·|golden|`.
    Fixed,
    /// Not judged (the result failed before there were outputs to compare).
    None,
}

impl From<Tolerance> for Policy {
    fn from(t: Tolerance) -> Policy {
        match t {
            Tolerance::Bound { .. } => Policy::Bound,
            Tolerance::Fixed { .. } => Policy::Fixed,
        }
    }
}

/// Latency of the runs of one result, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Fastest.
    pub min: f64,
    /// Timed runs.
    pub samples: usize,
}

impl Latency {
    /// Summarizes samples (microseconds); `None` when there are none or one is not finite.
    pub fn from_samples(us: Vec<f64>) -> Option<Latency> {
        Summary::of(&us).map(|s| Latency {
            p50: s.p50,
            p90: s.p90,
            min: s.min,
            samples: s.n,
        })
    }
}

/// Quantile `p` (0..=1) of sorted data, interpolating linearly between order statistics
/// (Hyndman and Fan type 7, as numpy and R default to). `NaN` for no data.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Median of unsorted data (`NaN` for none).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Summary of a set of samples (microseconds, or calibrated units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Fastest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Median absolute deviation from the median (unscaled).
    pub mad: f64,
    /// Mean.
    pub mean: f64,
    /// Slowest.
    pub max: f64,
}

impl Summary {
    /// Summarizes samples; `None` when there are none or any is not finite.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let p50 = quantile(&s, 0.5);
        let mut dev: Vec<f64> = s.iter().map(|x| (x - p50).abs()).collect();
        dev.sort_by(f64::total_cmp);
        Some(Summary {
            n: s.len(),
            min: s[0],
            p50,
            p90: quantile(&s, 0.9),
            p99: quantile(&s, 0.99),
            mad: quantile(&dev, 0.5),
            mean: s.iter().sum::<f64>() / s.len() as f64,
            max: s[s.len() - 1],
        })
    }
}

/// One (case, converter, runtime) result: a row of report.json (docs/report-schema.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Stable case id.
    pub case: String,
    /// Seed of the case, for generated cases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Where the case comes from, so that a failure can be run again and reduced.
    #[serde(default)]
    pub origin: Origin,
    /// Converter spec.
    pub converter: String,
    /// Runtime name.
    pub runtime: String,
    /// The verdict.
    pub verdict: Verdict,
    /// ONNX operators of the model.
    pub ops: Vec<String>,
    /// Coverage classes of the model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Largest absolute error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_err: Option<f64>,
    /// Largest relative error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rel_err: Option<f64>,
    /// Largest error in f32 ULPs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ulp: Option<u64>,
    /// Elements out of tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count_over: Option<usize>,
    /// Largest error as a fraction of its tolerance (above 1 fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_ratio: Option<f64>,
    /// The same, for the same runtime on the unconverted model: the reference the `drift`
    /// check compares `worst_ratio` with (docs/verdicts.md). Absent where the check does not
    /// apply (the identity converter, a runtime of the converter's own, a failing result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_ratio: Option<f64>,
    /// Tolerance policy the result was judged with.
    pub tolerance: Policy,
    /// Precision the runtime computed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
    /// Precision the converted model stores its weights in, when the converter lowers it
    /// (`f16` for `ovc`'s compressed IR); absent when the weights are the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Precision>,
    /// Latency of the converted model on the runtime.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Latency>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the repro bundle is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repro: Option<String>,
    /// Wall time this result took, all stages, in milliseconds.
    #[serde(default)]
    pub wall_ms: f64,
    /// Set when the failure is listed in the expected-failure ledger: the ledger's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What reducing the failure found, once it is signed and reduced: the facts a ledger
    /// entry's `reduced` table matches (docs/ledger.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduction: Option<Reduction>,
    /// Set when this result timed out or lost its worker process in the parallel run and
    /// completed when run again alone, in a fresh worker: the parallel run's verdict and
    /// message. The result is the one run alone (docs/RELIABILITY.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_parallel: Option<String>,
    /// What the case gave packed with other cases into one model (verdict: message), when
    /// that differs from what it gives alone, which is the verdict reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_pack: Option<String>,
}

/// What the reduction of a failing result found. It travels with the result (report.json,
/// merged shards), so the ledger can recognize a known bug by its reduced form wherever the
/// result is judged again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reduction {
    /// The failure that was reduced: this result's own case, or the first failure of the run
    /// with the same signature (converter, verdict, first diverging op), whose reduction this
    /// result shares.
    pub case: String,
    /// Operator of the reduced model's first diverging node; absent when the verdict has no
    /// diverging node (only `mismatch` and `non-finite` are located) or none was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// That node's attributes as the model writes them (defaults left out are absent; tensor
    /// and graph attributes are not recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Attribute>,
    /// Whether that node fails when run alone on its golden inputs (`false`: only together
    /// with the nodes before it, as an optimizer rewrite does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alone: Option<bool>,
    /// Coverage classes of the reduced model description (generated cases; empty for other
    /// cases, which are cut from their ONNX graph and have no description).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// The value of a node attribute, as report.json and the ledger write it: a number, a string or
/// a list of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Attribute {
    /// An integer (`group = 1`).
    Int(i64),
    /// A float (`alpha = 0.1`).
    Float(f64),
    /// A string (`auto_pad = "SAME_UPPER"`).
    Text(String),
    /// Integers (`strides = [2]`).
    Ints(Vec<i64>),
    /// Floats.
    Floats(Vec<f64>),
    /// Strings.
    Texts(Vec<String>),
}

impl CaseResult {
    /// A result that has not got anywhere yet: verdict `error`, nothing measured, not judged.
    pub fn unjudged(case: &str, origin: Origin, converter: &str, runtime: &str) -> CaseResult {
        CaseResult {
            case: case.into(),
            seed: None,
            origin,
            converter: converter.into(),
            runtime: runtime.into(),
            verdict: Verdict::Error,
            ops: vec![],
            classes: vec![],
            max_abs_err: None,
            max_rel_err: None,
            max_ulp: None,
            count_over: None,
            worst_ratio: None,
            reference_ratio: None,
            tolerance: Policy::None,
            precision: None,
            weights: None,
            latency_us: None,
            message: None,
            repro: None,
            wall_ms: 0.0,
            expected: None,
            reduction: None,
            in_parallel: None,
            in_pack: None,
        }
    }

    /// Passed, or failed as the ledger expects.
    pub fn ok(&self) -> bool {
        self.verdict == Verdict::Pass || self.expected.is_some()
    }

    /// The command that runs this failure again from its repro bundle, when it has one.
    pub fn repro_command(&self) -> Option<String> {
        self.repro
            .as_deref()
            .map(|bundle| repro_command(Path::new(bundle), &self.converter, &self.runtime))
    }
}

/// The command that runs a repro bundle's test case again on one converter and runtime.
pub fn repro_command(bundle: &Path, converter: &str, runtime: &str) -> String {
    format!(
        "cargo xtask conformance --cases 0 --no-corpus --onnx-tests {} --converter '{converter}' --runtime {runtime}",
        bundle.display()
    )
}

/// The tool that wrote the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

impl Tool {
    /// This harness.
    pub fn harness() -> Tool {
        Tool {
            name: "conv1d-harness".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Versions of everything involved and the machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Converter spec to version.
    pub converters: BTreeMap<String, String>,
    /// Runtime name to version.
    pub runtimes: BTreeMap<String, String>,
    /// CPU model.
    pub cpu: String,
    /// Logical CPUs.
    pub cpus: usize,
    /// Operating system.
    pub os: String,
    /// The SIMD extensions this process saw (x86: from SSE4.1 to AVX-512), which choose
    /// the kernels of runtimes that dispatch at run time (tract, onnxruntime, OpenVINO):
    /// instruction counts compare across machines only when these agree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub simd: Vec<String>,
}

impl Environment {
    /// Reads the CPU model and counts of this machine.
    pub fn detect() -> Environment {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Environment {
            cpu,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS.into(),
            simd: simd_features(),
            ..Default::default()
        }
    }
}

/// The SIMD extensions this process can use, by their `is_x86_feature_detected!` names (on
/// other architectures none are listed).
pub fn simd_features() -> Vec<String> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut out = Vec::new();
        macro_rules! probe {
            ($($f:tt),*) => {$(
                if std::is_x86_feature_detected!($f) {
                    out.push($f.to_string());
                }
            )*};
        }
        probe!(
            "sse4.1",
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vl",
            "avx512vnni",
            "avxvnni",
            "avx512bf16",
            "avx512fp16"
        );
        // AMX has no stable detection macro; Linux lists it in /proc/cpuinfo once the kernel
        // lets processes use it.
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags: Vec<&str> = flags
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        for (flag, name) in [("amx_int8", "amx-int8"), ("amx_bf16", "amx-bf16")] {
            if flags.contains(&flag) {
                out.push(name.to_string());
            }
        }
        out
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Vec::new()
    }
}
