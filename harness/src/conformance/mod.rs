//! The conformance run: cases in, one result per (case, converter, runtime) out.
//!
//! Each case becomes a [`Subject`]: ONNX bytes, inputs and expected outputs. Every converter
//! turns the model into an artifact, the runtime runs it, and [`crate::compare`] decides.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rayon::prelude::*;
use serde::Serialize;

use crate::compare::{compare, Expected, Tolerance, Verdict};
use crate::convert::{self, Artifact, ConvertError, Converter};
use crate::gen::GenConfig;
use crate::isolate::{self, Bounded};
use crate::ledger::Ledger;
use crate::onnx::testcase;

use crate::report::{CaseResult, Environment, Latency, Report, Tool};
use crate::runtime::{self, Precision, Runtime};
use crate::tensor::Named;
use crate::worker::WorkerError;

mod campaign;
mod negative;
mod subject;

use self::negative::{is_negative, refused_negative};

pub use self::campaign::{Bundled, FuzzProgress, Signatures};
pub use self::subject::{case_subject, generated_subject, oracle_expected, parse_generated_id};
use self::subject::{error_result, stored_subject};

/// Which part of the cases a run takes: index ≡ `index` (mod `count`), counting from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Shard {
    /// This shard, 1..=count.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard '{s}' is not I/N"))?;
        let index: u64 = i
            .parse()
            .map_err(|_| format!("shard '{s}': I is not a number"))?;
        let count: u64 = n
            .parse()
            .map_err(|_| format!("shard '{s}': N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard '{s}': need 1 <= I <= N"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether case `i` belongs to this shard.
    pub fn contains(&self, i: u64) -> bool {
        i % self.count == self.index - 1
    }
}

/// Options of a conformance run (the CLI's flags).
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Random cases to generate.
    pub cases: u64,
    /// Base seed.
    pub seed: u64,
    /// Converter specs.
    pub converters: Vec<String>,
    /// Runtime name.
    pub runtime: String,
    /// Corpus directory of test cases, if any.
    pub corpus: Option<PathBuf>,
    /// Golden outputs of the corpus cases (`golden/`); corpus cases are judged against them.
    pub golden: Option<PathBuf>,
    /// Extra ONNX test-case directories, if any.
    pub onnx_tests: Option<PathBuf>,
    /// Stop starting cases after this long.
    pub budget: Option<Duration>,
    /// Shard of the generated cases.
    pub shard: Shard,
    /// Where reports go.
    pub report_dir: PathBuf,
    /// Per conversion and per run.
    pub timeout: Duration,
    /// Tolerance policy.
    pub tolerance: Tolerance,
    /// Timed runs per result, after the checked one.
    pub repeats: usize,
    /// Generator knobs.
    pub gen: GenConfig,
    /// Expected-failure ledger, if any.
    pub known_failures: Option<PathBuf>,
    /// Most failures to reduce and bundle (0: none).
    pub max_bundles: usize,
    /// Time allowed to reduce one failure.
    pub reduce_budget: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: 200,
            seed: 0,
            converters: vec!["identity".into()],
            runtime: "tract".into(),
            corpus: None,
            golden: None,
            onnx_tests: None,
            budget: None,
            shard: Shard { index: 1, count: 1 },
            report_dir: PathBuf::from("reports/latest"),
            timeout: Duration::from_secs(60),
            tolerance: Tolerance::default(),
            repeats: 3,
            gen: GenConfig::default(),
            known_failures: None,
            max_bundles: 10,
            reduce_budget: Duration::from_secs(10),
        }
    }
}

/// What one case puts to the converters: a model, its inputs and what should come out.
pub struct Subject {
    /// Stable id.
    pub id: String,
    /// Seed, for generated cases.
    pub seed: Option<u64>,
    /// The model.
    pub model: Vec<u8>,
    /// Its inputs.
    pub inputs: Vec<Named>,
    /// Expected outputs, or why there are none.
    pub expected: std::result::Result<Vec<Expected>, (Verdict, String)>,
    /// Operators used.
    pub ops: Vec<String>,
    /// Coverage classes.
    pub classes: Vec<String>,
}

/// A prepared run: converters and runtime built, ready for subjects.
pub struct Runner {
    options: Options,
    converters: Vec<Box<dyn Converter>>,
    runtime: Arc<dyn Runtime>,
    ledger: Ledger,
    /// Test-case directory and data set of each `--onnx-tests`/corpus case id.
    sources: std::sync::Mutex<std::collections::HashMap<String, (PathBuf, usize)>>,
    /// Tolerance policies that corpus cases set in their case.toml, by case id.
    case_tolerance: std::sync::Mutex<std::collections::HashMap<String, Tolerance>>,
}

/// A usage or set-up problem (exit status 2), as opposed to a failing case.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(pub String);

impl Runner {
    /// Builds converters and runtime; unknown names are a [`SetupError`].
    pub fn new(options: Options) -> std::result::Result<Runner, SetupError> {
        let converters = options
            .converters
            .iter()
            .map(|s| convert::from_spec(s).map_err(|e| SetupError(format!("{e:#}"))))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let runtime: Arc<dyn Runtime> = runtime::by_name(&options.runtime, options.timeout)
            .map(Arc::from)
            .map_err(SetupError)?;
        for dir in [&options.corpus, &options.onnx_tests].into_iter().flatten() {
            if !dir.is_dir() {
                return Err(SetupError(format!("{}: no such directory", dir.display())));
            }
        }
        let ledger = match &options.known_failures {
            Some(path) => Ledger::load(path).map_err(|e| SetupError(format!("{e:#}")))?,
            None => Ledger::default(),
        };
        Ok(Runner {
            options,
            converters,
            runtime,
            ledger,
            sources: Default::default(),
            case_tolerance: Default::default(),
        })
    }

    /// Versions of converters and runtime, for the report.
    pub fn environment(&self) -> Environment {
        let mut env = Environment::detect();
        for c in &self.converters {
            let version = c.version().unwrap_or_else(|| "unknown".into());
            if let Some(native) = c.native_runtime() {
                env.runtimes.insert(native.into(), version.clone());
            }
            env.converters.insert(c.name(), version);
        }
        env.runtimes
            .insert(self.runtime.name().into(), self.runtime.version());
        env.runtimes
            .insert("oracle".into(), env!("CARGO_PKG_VERSION").into());
        env
    }

    /// Runs everything the options ask for and builds the report.
    pub fn run(&self, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Report> {
        let start = Instant::now();
        let stop = AtomicBool::new(false);
        let mut results = Vec::new();
        for dir in [&self.options.corpus, &self.options.onnx_tests]
            .into_iter()
            .flatten()
        {
            // Shards split test-case directories by position, like generated cases.
            for (position, case_dir) in testcase::find(dir)?.into_iter().enumerate() {
                if self.options.shard.contains(position as u64) && !isolate::interrupted() {
                    results.extend(self.run_test_dir(dir, &case_dir));
                }
            }
        }
        let indices: Vec<u64> = (0..self.options.cases)
            .filter(|&i| self.options.shard.contains(i))
            .collect();
        let done = AtomicUsize::new(0);
        let generated: Vec<Vec<CaseResult>> = indices
            .par_iter()
            .map(|&i| {
                if self.options.budget.is_some_and(|b| start.elapsed() >= b)
                    || isolate::interrupted()
                {
                    stop.store(true, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) {
                    return Vec::new();
                }
                let out =
                    self.run_subject(&generated_subject(self.options.seed, i, &self.options.gen));
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, indices.len());
                out
            })
            .collect();
        results.extend(generated.into_iter().flatten());
        let tool = Tool {
            name: "conv1d-harness".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        };
        let options = serde_json::to_value(&self.options)?;
        let worker_calls = crate::worker::call_totals();
        let results_s: f64 = results.iter().map(|r| r.wall_ms * 1e-3).sum();
        let mut report = Report::new(
            tool,
            self.environment(),
            options,
            results,
            start.elapsed().as_secs_f64(),
        );
        if worker_calls.calls > 0 {
            report.workers = Some(crate::report::WorkerTime {
                calls: worker_calls.calls,
                engine_s: worker_calls.engine_s,
                results_s,
                outside_share: if results_s > 0.0 {
                    (1.0 - worker_calls.engine_s / results_s).max(0.0)
                } else {
                    0.0
                },
            });
        }
        report.apply_ledger(&self.ledger);
        if self.options.max_bundles > 0 && !isolate::interrupted() {
            self.bundle_failures(&mut report);
        }
        report.stopped_early = if isolate::interrupted() {
            Some("interrupted by a signal".into())
        } else if stop.load(Ordering::Relaxed) {
            Some("--budget reached".into())
        } else {
            None
        };
        Ok(report)
    }

    /// Results of one ONNX test-case directory: the oracle's own check against the stored
    /// outputs, then each converter. A directory that cannot be read gets `error` results.
    pub fn run_test_dir(&self, root: &Path, dir: &Path) -> Vec<CaseResult> {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let label = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = if rel.as_os_str().is_empty() {
            label
        } else {
            format!("{label}/{}", rel.display())
        };
        let case = match testcase::read(dir) {
            Ok(c) if c.data_sets.is_empty() => Err(anyhow::anyhow!(
                "{}: no test_data_set_K directory",
                dir.display()
            )),
            Ok(c) => Ok(c),
            Err(e) => Err(e),
        };
        let case = case.and_then(|c| self.with_golden(root, dir, c, &id));
        let case = match case {
            Ok(c) => c,
            Err(e) => {
                return self
                    .converters
                    .iter()
                    .map(|c| {
                        let msg = format!("{e:#}");
                        let mut r = error_result(&id, &c.name(), self.runtime.name(), msg.clone());
                        // A tensor file over --max-elements is refused before it is allocated.
                        if msg.contains("(--max-elements)") {
                            r.verdict = Verdict::TooLarge;
                        }
                        r
                    })
                    .collect();
            }
        };
        let mut out = Vec::new();
        let many = case.data_sets.len() > 1;
        for (k, set) in case.data_sets.iter().enumerate() {
            let id = if many {
                format!("{id}#{k}")
            } else {
                id.clone()
            };
            self.sources
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id.clone(), (dir.to_path_buf(), k));
            let (subject, oracle_result) = stored_subject(&id, &case.model, set);
            out.push(oracle_result);
            out.extend(self.run_subject(&subject));
        }
        out
    }

    /// For a corpus case: its stored outputs replaced by the reviewed golden ones, and its
    /// case.toml tolerance policy recorded. Other test-case directories pass unchanged.
    fn with_golden(
        &self,
        root: &Path,
        dir: &Path,
        mut case: testcase::TestCase,
        id: &str,
    ) -> Result<testcase::TestCase> {
        if self.options.corpus.as_deref() != Some(root) {
            return Ok(case);
        }
        if dir.join("case.toml").is_file() {
            let toml = crate::corpus::CaseToml::read(dir)?;
            let tol = match (self.options.tolerance, toml.tolerance()?) {
                (Tolerance::Bound { factor: a }, Tolerance::Bound { factor: b }) => {
                    Tolerance::Bound { factor: a * b }
                }
                (Tolerance::Bound { .. }, fixed) => fixed,
                (user, _) => user,
            };
            let mut map = self
                .case_tolerance
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            map.insert(id.to_string(), tol);
            for k in 0..case.data_sets.len() {
                map.insert(format!("{id}#{k}"), tol);
            }
        }
        if let Some(golden) = &self.options.golden {
            let name = crate::corpus::case_name(root, dir);
            let outputs = crate::corpus::golden::read(golden, &name)?;
            let set = case
                .data_sets
                .first_mut()
                .with_context(|| format!("{}: no test_data_set_0", dir.display()))?;
            set.outputs = outputs;
        }
        Ok(case)
    }

    /// The tolerance of a subject: its case's own policy, else the run's.
    fn tolerance_of(&self, id: &str) -> Tolerance {
        self.case_tolerance
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .unwrap_or(self.options.tolerance)
    }

    /// The ONNX a converter makes of `model`, when it makes ONNX.
    fn converted_onnx(&self, model: &[u8], converter: &str) -> Option<Vec<u8>> {
        let c = self.converters.iter().find(|c| c.name() == converter)?;
        let work = tempfile::tempdir().ok()?;
        let cx = convert::Context {
            work_dir: work.path(),
            timeout: self.options.timeout,
        };
        match isolate::catch(|| c.convert(model, &cx)) {
            Ok(Ok(Artifact::Onnx(bytes))) => Some(bytes),
            _ => None,
        }
    }

    /// The result of one converter (by name) on a subject.
    pub fn run_with(&self, s: &Subject, converter: &str) -> Option<CaseResult> {
        let c = self.converters.iter().find(|c| c.name() == converter)?;
        Some(self.run_one(s, c.as_ref()))
    }

    /// The options of this run.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// One result per converter for a subject.
    pub fn run_subject(&self, s: &Subject) -> Vec<CaseResult> {
        self.converters
            .iter()
            .map(|c| {
                let start = Instant::now();
                let mut r = self.run_one(s, c.as_ref());
                r.wall_ms = start.elapsed().as_secs_f64() * 1e3;
                r
            })
            .collect()
    }

    fn run_one(&self, s: &Subject, converter: &dyn Converter) -> CaseResult {
        let mut r = CaseResult {
            case: s.id.clone(),
            seed: s.seed,
            converter: converter.name(),
            runtime: converter
                .native_runtime()
                .unwrap_or(self.runtime.name())
                .into(),
            verdict: Verdict::Error,
            ops: s.ops.clone(),
            classes: s.classes.clone(),
            max_abs_err: None,
            max_rel_err: None,
            max_ulp: None,
            count_over: None,
            worst_ratio: None,
            tolerance: self.tolerance_of(&s.id).name().into(),
            precision: None,
            latency_us: None,
            message: None,
            repro: None,
            wall_ms: 0.0,
            expected: None,
        };
        let expected = match &s.expected {
            Ok(e) => e,
            Err((v, m)) => {
                r.verdict = *v;
                r.message = Some(m.clone());
                return r;
            }
        };
        let work = if converter.needs_work_dir() {
            match tempfile::Builder::new().prefix("conv1d-").tempdir() {
                Ok(w) => Some(w),
                Err(e) => {
                    r.message = Some(format!("cannot create a work directory: {e}"));
                    return r;
                }
            }
        } else {
            None
        };
        let work_dir = work.as_ref().map(|w| w.path()).unwrap_or(Path::new("."));
        let cx = convert::Context {
            work_dir,
            timeout: self.options.timeout,
        };
        // A negative case (invalid by the spec) passes when it is refused and fails with
        // `invalid-accepted` when it produces output.
        let negative = is_negative(s);
        let artifact = match isolate::catch(|| converter.convert(&s.model, &cx)) {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                (r.verdict, r.message) = match e {
                    ConvertError::Rejected(m) => (Verdict::ConvertRejected, Some(m)),
                    ConvertError::Crashed(m) => (Verdict::ConvertCrash, Some(m)),
                    ConvertError::Timeout(m) => (Verdict::Timeout, Some(m)),
                };
                refused_negative(&mut r, negative);
                return r;
            }
            Err(panic) => {
                r.verdict = Verdict::ConvertCrash;
                r.message = Some(panic);
                return r;
            }
        };
        if let Artifact::Native(native) = &artifact {
            r.runtime = native.runtime();
        }
        match self.execute(artifact, s.inputs.clone()) {
            Err((verdict, message)) => {
                r.verdict = verdict;
                r.message = Some(message);
                refused_negative(&mut r, negative);
            }
            Ok((precision, _, _)) if negative => {
                r.verdict = Verdict::InvalidAccepted;
                r.precision = Some(precision.name().into());
                r.message = Some(format!(
                    "converted and ran a model that is invalid by the ONNX spec ({})",
                    s.classes
                        .iter()
                        .find(|c| c.starts_with("negative="))
                        .map_or("", String::as_str)
                ));
            }
            Ok((precision, outputs, samples)) => {
                let c = compare(expected, &outputs, precision, self.tolerance_of(&s.id));
                r.verdict = c.verdict;
                r.message = c.message;
                r.precision = Some(precision.name().into());
                r.latency_us = Latency::from_samples(samples);
                if c.stats.count > 0 {
                    r.max_abs_err = Some(c.stats.max_abs_err);
                    r.max_rel_err = Some(c.stats.max_rel_err);
                    r.max_ulp = Some(c.stats.max_ulp);
                    r.count_over = Some(c.stats.count_over);
                    r.worst_ratio = Some(c.stats.worst_ratio);
                }
            }
        }
        r
    }

    /// Loads and runs an artifact on its runtime within the timeout; outputs of the
    /// first run, then the latency samples of the timed repeats.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        artifact: Artifact,
        inputs: Vec<Named>,
    ) -> std::result::Result<(Precision, Vec<crate::tensor::Tensor>, Vec<f64>), (Verdict, String)>
    {
        let runtime = Arc::clone(&self.runtime);
        let repeats = self.options.repeats;
        let job = move || -> anyhow::Result<_> {
            let mut loaded = match artifact {
                Artifact::Onnx(model) => runtime.load(&model, &inputs),
                Artifact::Native(native) => native.load(&inputs),
            }?;
            let outputs = loaded.run(&inputs)?;
            let samples = match loaded.timed_runs(&inputs, repeats) {
                Some(samples) => samples?,
                None => {
                    let mut samples = Vec::with_capacity(repeats);
                    for _ in 0..repeats {
                        let t = Instant::now();
                        loaded.run(&inputs)?;
                        samples.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    samples
                }
            };
            Ok((loaded.precision(), outputs, samples))
        };
        // The worker's own timeout fires first for external runtimes; this one bounds tract.
        match isolate::with_timeout(self.options.timeout + Duration::from_secs(5), job) {
            Bounded::Done(Ok(v)) => Ok(v),
            Bounded::Done(Err(e)) => match e.downcast_ref::<WorkerError>() {
                Some(WorkerError::Timeout(t)) => Err((
                    Verdict::Timeout,
                    format!("runtime still running after {t:?}; killed"),
                )),
                _ => Err((Verdict::RuntimeRejected, format!("{e:#}"))),
            },
            Bounded::Panicked(m) => Err((Verdict::RuntimeRejected, m)),
            Bounded::TimedOut => Err((
                Verdict::Timeout,
                format!("runtime still running after {:?}", self.options.timeout),
            )),
        }
    }
}
