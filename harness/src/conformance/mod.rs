//! The conformance run: cases in, one result per (case, converter, runtime) out.
//!
//! Each case becomes a [`Subject`]: ONNX bytes, inputs and expected outputs. Every converter
//! turns the model into an artifact, the runtime runs it, and [`crate::compare`] decides.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;

use crate::compare::{compare, DriftRule, Expected, Tolerance};
use crate::convert::{self, Artifact, ConvertError, Converter, WeightPrecision};
use crate::gen::GenConfig;
use crate::isolate::{self, Bounded, ChildLimits};
use crate::ledger::Ledger;
use crate::model::Negative;
use crate::onnx::testcase;
use crate::report::{Report, WorkerTime};
use crate::results::{CaseResult, Environment, Latency, Origin, Policy, Tool, Verdict};
use crate::runtime::{self, Precision, Runtime};
use crate::tensor::Named;
use crate::worker::WorkerError;

mod alone;
mod campaign;
mod directories;
mod drift;
pub mod journal;
mod negative;
mod packing;
mod progress;
pub mod quantize;
pub mod reduce;
mod subject;
pub mod upstream;
mod weights;

use self::journal::{Journal, Logged};
use self::weights::weight_bounds;
pub use self::weights::F16_WEIGHTS_MARGIN;

use self::negative::refused_negative;

pub use self::campaign::{Bundled, FuzzProgress, Signatures, Signed};
pub use self::progress::Progress;
use self::subject::stored_subject;
pub use self::subject::{
    case_subject, generated_subject, generated_subjects, oracle_expected, write_generated_case,
};

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
    /// Where repro bundles go (`DIR/failures/`); none are written without it.
    pub report_dir: Option<PathBuf>,
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
    /// Generated cases merged into one model per conversion (`--pack`); `None`: each
    /// converter's own choice (docs/RELIABILITY.md).
    pub pack: Option<usize>,
    /// Limits of every process a converter or runtime starts (`--max-converter-memory`,
    /// `--max-converter-cpu`).
    pub limits: ChildLimits,
    /// When a passing result is `drift` (`--drift-factor`, `--drift-floor`).
    pub drift: DriftRule,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: 200,
            seed: 0,
            converters: convert::DEFAULTS.iter().map(|c| c.to_string()).collect(),
            runtime: runtime::TRACT.into(),
            corpus: None,
            golden: None,
            onnx_tests: None,
            budget: None,
            shard: Shard { index: 1, count: 1 },
            report_dir: None,
            timeout: Duration::from_secs(60),
            tolerance: Tolerance::default(),
            repeats: 3,
            gen: GenConfig::default(),
            known_failures: None,
            max_bundles: 10,
            reduce_budget: Duration::from_secs(10),
            pack: None,
            limits: ChildLimits::converters_default(),
            drift: DriftRule::default(),
        }
    }
}

/// What one case puts to the converters: a model, its inputs and what should come out, with
/// the facts that decide how it is judged.
pub struct Subject {
    /// Stable id.
    pub id: String,
    /// Where the case comes from.
    pub origin: Origin,
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
    /// Why the model is invalid by the spec, for a negative case: a refusal is then its
    /// expected outcome.
    pub negative: Option<Negative>,
    /// The case's own tolerance policy (a corpus case's case.toml), combined with the run's.
    pub tolerance: Option<Tolerance>,
}

/// A prepared run: converters and runtime built, ready for subjects.
pub struct Runner {
    options: Options,
    converters: Vec<Box<dyn Converter>>,
    runtime: Arc<dyn Runtime>,
    ledger: Ledger,
    /// Where each result goes as soon as it is known, if the caller asked for a log.
    journal: Option<Journal>,
    /// What an earlier run of the same options logged: its done units are not run again.
    resumed: Logged,
    /// Results so far, for progress reports.
    tally: progress::Tally,
}

/// A fresh scratch directory for a converter that writes one, removed when dropped.
fn scratch_dir(
    converter: &dyn Converter,
) -> std::result::Result<Option<tempfile::TempDir>, String> {
    if !converter.needs_work_dir() {
        return Ok(None);
    }
    tempfile::Builder::new()
        .prefix("conv1d-")
        .tempdir()
        .map(Some)
        .map_err(|e| format!("cannot create a work directory: {e}"))
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
        let runtime: Arc<dyn Runtime> =
            runtime::by_name(&options.runtime, options.timeout, options.limits)
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
            journal: None,
            resumed: Logged::default(),
            tally: progress::Tally::default(),
        })
    }

    /// Logs every result to `journal` as soon as it is known; units `resumed` holds as done
    /// are taken from it instead of run again (docs/RELIABILITY.md).
    pub fn with_results_log(mut self, journal: Journal, resumed: Option<Logged>) -> Runner {
        self.journal = Some(journal);
        self.resumed = resumed.unwrap_or_default();
        self
    }

    /// Why the results log is incomplete, if writing it failed.
    pub fn results_log_error(&self) -> Option<String> {
        self.journal.as_ref().and_then(Journal::error)
    }

    /// The results of `unit` when a resumed log holds it as done; otherwise `run`'s, logged.
    fn unit(&self, unit: &str, run: impl FnOnce() -> Vec<CaseResult>) -> Vec<CaseResult> {
        if let Some(done) = self.resumed.units.get(unit) {
            self.tally.count(done, &self.ledger);
            return done.clone();
        }
        let out = run();
        self.log_unit(unit, &out);
        self.tally.count(&out, &self.ledger);
        out
    }

    /// Logs the results of a unit that ran whole.
    fn log_unit(&self, unit: &str, results: &[CaseResult]) {
        if let Some(j) = &self.journal {
            j.unit(unit, results);
        }
    }

    /// Versions of converters and runtime, for the report.
    pub fn environment(&self) -> Environment {
        let mut env = Environment::detect();
        for c in &self.converters {
            let version = c.version().unwrap_or_else(|| "unknown".into());
            if let Some(native) = c.native_runtime() {
                let runtime_version = c.native_version().unwrap_or_else(|| version.clone());
                env.runtimes.insert(native, runtime_version);
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
    pub fn run(&self, progress: &(dyn Fn(&Progress) + Sync)) -> Result<Report> {
        let start = Instant::now();
        let total = self.generated_cases().len();
        let dirs_done = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let mut results = Vec::new();
        // Shards split test-case directories by position, like generated cases. They are
        // found first, so progress counts them in its total from the start.
        let mut suites = Vec::new();
        for dir in [&self.options.corpus, &self.options.onnx_tests]
            .into_iter()
            .flatten()
        {
            let case_dirs: Vec<PathBuf> = testcase::find(dir)?
                .into_iter()
                .enumerate()
                .filter(|(position, _)| self.options.shard.contains(*position as u64))
                .map(|(_, case_dir)| case_dir)
                .collect();
            suites.push((dir, case_dirs));
        }
        let total = total + suites.iter().map(|(_, c)| c.len()).sum::<usize>();
        for (dir, case_dirs) in &suites {
            // They run on every thread; the results come back in directory order.
            let ran: Vec<Vec<CaseResult>> = case_dirs
                .par_iter()
                .map(|case_dir| {
                    if isolate::interrupted() {
                        return Vec::new();
                    }
                    let unit = journal::directory_unit(case_dir);
                    let out = self.unit(&unit, || self.run_test_dir(dir, case_dir));
                    let done = dirs_done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress(&self.tally.at(done, total));
                    out
                })
                .collect();
            results.extend(ran.into_iter().flatten());
        }
        let indices = self.generated_cases();
        let dirs_done = dirs_done.into_inner();
        // Threads report as they finish; the last report repeats the furthest point reached
        // with every result counted, so a display ends on the run's own totals.
        let furthest = AtomicUsize::new(0);
        let report = |done: usize| {
            furthest.fetch_max(done, Ordering::Relaxed);
            progress(&self.tally.at(dirs_done + done, total))
        };
        let stopped =
            || self.options.budget.is_some_and(|b| start.elapsed() >= b) || isolate::interrupted();
        if self.packs() {
            // Cases a resumed log holds are not packed again; all come back in case order.
            let pending: Vec<u64> = indices
                .iter()
                .copied()
                .filter(|&i| !self.resumed.units.contains_key(&journal::generated_unit(i)))
                .collect();
            let mut by_case: std::collections::BTreeMap<u64, Vec<CaseResult>> = indices
                .iter()
                .filter_map(|&i| Some((i, self.resumed.units.get(&journal::generated_unit(i))?)))
                .map(|(i, done)| (i, done.clone()))
                .collect();
            let done = by_case.len();
            // The progress line counts what the log holds as done, as the unpacked run does.
            for logged in by_case.values() {
                self.tally.count(logged, &self.ledger);
            }
            let ran =
                self.run_generated_packed(&pending, &stopped, &stop, &|n, _| report(done + n));
            for r in ran {
                let index = match r.origin {
                    Origin::Generated { index, .. } => index,
                    _ => u64::MAX,
                };
                by_case.entry(index).or_default().push(r);
            }
            results.extend(by_case.into_values().flatten());
        } else {
            let done = AtomicUsize::new(0);
            let generated: Vec<Vec<CaseResult>> = indices
                .par_iter()
                .map(|&i| {
                    if stopped() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Vec::new();
                    }
                    let out = self.unit(&journal::generated_unit(i), || {
                        generated_subjects(self.options.seed, i, &self.options.gen)
                            .iter()
                            .flat_map(|subject| self.run_subject(subject))
                            .collect()
                    });
                    report(done.fetch_add(1, Ordering::Relaxed) + 1);
                    out
                })
                .collect();
            results.extend(generated.into_iter().flatten());
        }
        if !indices.is_empty() {
            report(furthest.load(Ordering::Relaxed));
        }
        journal::replace_with_newer(&mut results, &self.resumed.alone);
        self.retry_alone(&mut results);
        if let (Some(j), false) = (
            &self.journal,
            isolate::interrupted() || stop.load(Ordering::Relaxed),
        ) {
            j.end();
        }
        let tool = Tool::harness();
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
            report.workers = Some(WorkerTime {
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
            // The failures left now carry what their reduction found, which can show a known
            // bug in a form no class entry names (docs/ledger.md).
            report.apply_ledger(&self.ledger);
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

    /// The indices of the generated cases this run (or shard) takes.
    fn generated_cases(&self) -> Vec<u64> {
        (0..self.options.cases)
            .filter(|&i| self.options.shard.contains(i))
            .collect()
    }

    /// The tolerance a subject is judged with: the run's, refined by the case's own.
    fn tolerance_of(&self, s: &Subject) -> Tolerance {
        self.options.tolerance.refined_by(s.tolerance)
    }

    /// The ONNX a converter makes of `model`, when it makes ONNX.
    fn converted_onnx(&self, model: &[u8], converter: &str) -> Option<Vec<u8>> {
        let c = self.converters.iter().find(|c| c.name() == converter)?;
        let work = tempfile::tempdir().ok()?;
        let cx = convert::Context {
            work_dir: work.path(),
            timeout: self.options.timeout,
            limits: self.options.limits,
        };
        isolate::catch(|| c.converted_onnx(model, &cx))
            .ok()
            .flatten()
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

    /// A result of `converter` on `s` with the subject's facts and no verdict yet.
    fn unjudged(&self, s: &Subject, converter: &dyn Converter) -> CaseResult {
        let mut r = CaseResult::unjudged(
            &s.id,
            s.origin.clone(),
            &converter.name(),
            &converter
                .native_runtime()
                .unwrap_or_else(|| self.runtime.name().into()),
        );
        r.seed = s.seed;
        r.ops = s.ops.clone();
        r.classes = s.classes.clone();
        r.tolerance = Policy::from(self.tolerance_of(s));
        if converter.weights() == WeightPrecision::F16 {
            r.weights = Some(Precision::F16);
        }
        r
    }

    fn run_one(&self, s: &Subject, converter: &dyn Converter) -> CaseResult {
        let mut r = self.unjudged(s, converter);
        let expected = match &s.expected {
            Ok(e) => e,
            Err((v, m)) => {
                r.verdict = *v;
                r.message = Some(m.clone());
                return r;
            }
        };
        // The artifact may live in the work directory (an OpenVINO IR): it stays until the
        // result is judged.
        let work = match scratch_dir(converter) {
            Ok(w) => w,
            Err(message) => {
                r.message = Some(message);
                return r;
            }
        };
        let work_dir = work.as_ref().map(|w| w.path()).unwrap_or(Path::new("."));
        let artifact = match self.convert(&s.model, converter, work_dir) {
            Ok(a) => a,
            Err((verdict, message)) => {
                r.verdict = verdict;
                r.message = Some(message);
                refused_negative(&mut r, s.negative);
                return r;
            }
        };
        if let Artifact::Native(native) = &artifact {
            r.runtime = native.runtime();
        }
        match self.execute(artifact, s.inputs.clone(), self.options.repeats) {
            Err((verdict, message)) => {
                r.verdict = verdict;
                r.message = Some(message);
                refused_negative(&mut r, s.negative);
            }
            Ok((precision, outputs, samples)) => {
                self.conclude(&mut r, s, expected, converter, precision, &outputs);
                self.check_drift(&mut r, s, expected, converter);
                r.latency_us = Latency::from_samples(samples);
            }
        }
        r
    }

    /// The verdict of a subject's outputs: `invalid-accepted` for a negative case (invalid by
    /// the spec, so producing output at all is the failure), else the comparison with what
    /// it expects, with the bounds the converter's weight precision needs.
    fn conclude(
        &self,
        r: &mut CaseResult,
        s: &Subject,
        expected: &[Expected],
        converter: &dyn Converter,
        precision: Precision,
        outputs: &[crate::tensor::Tensor],
    ) {
        if let Some(negative) = s.negative {
            r.verdict = Verdict::InvalidAccepted;
            r.precision = Some(precision);
            r.message = Some(format!(
                "converted and ran a model that is invalid by the ONNX spec (negative={})",
                negative.name()
            ));
            return;
        }
        match weight_bounds(
            &s.model,
            &s.inputs,
            expected,
            converter.weights(),
            precision,
        ) {
            Ok(Some(rounded)) => self.judge(r, s, &rounded, precision, outputs),
            Ok(None) => self.judge(r, s, expected, precision, outputs),
            Err(message) => {
                r.verdict = Verdict::Error;
                r.message = Some(message);
            }
        }
    }

    /// Converts a model; a refusal, crash or timeout is the result's verdict.
    fn convert(
        &self,
        model: &[u8],
        converter: &dyn Converter,
        work_dir: &Path,
    ) -> std::result::Result<Artifact, (Verdict, String)> {
        let cx = convert::Context {
            work_dir,
            timeout: self.options.timeout,
            limits: self.options.limits,
        };
        match isolate::catch(|| converter.convert(model, &cx)) {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(ConvertError::Rejected(m))) => Err((Verdict::ConvertRejected, m)),
            Ok(Err(ConvertError::Crashed(m))) => Err((Verdict::ConvertCrash, m)),
            Ok(Err(ConvertError::Timeout(m))) => Err((Verdict::Timeout, m)),
            Ok(Err(ConvertError::OverLimit(m))) => Err((Verdict::ResourceLimit, m)),
            Err(panic) => Err((Verdict::ConvertCrash, panic)),
        }
    }

    /// Compares a run's outputs with what the subject expects and records the verdict and
    /// the error statistics.
    fn judge(
        &self,
        r: &mut CaseResult,
        s: &Subject,
        expected: &[Expected],
        precision: Precision,
        outputs: &[crate::tensor::Tensor],
    ) {
        let c = compare(expected, outputs, precision, self.tolerance_of(s));
        r.verdict = c.verdict;
        r.message = c.message;
        r.precision = Some(crate::compare::judged_precision(
            expected, outputs, precision,
        ));
        if c.stats.count > 0 {
            r.max_abs_err = Some(c.stats.max_abs_err);
            r.max_rel_err = Some(c.stats.max_rel_err);
            r.max_ulp = Some(c.stats.max_ulp);
            r.count_over = Some(c.stats.count_over);
            r.worst_ratio = Some(c.stats.worst_ratio);
        }
    }

    /// Loads and runs an artifact on its runtime within the timeout; outputs of the
    /// first run, then the latency samples of `repeats` timed runs.
    #[allow(clippy::type_complexity)]
    fn execute(
        &self,
        artifact: Artifact,
        inputs: Vec<Named>,
        repeats: usize,
    ) -> std::result::Result<(Precision, Vec<crate::tensor::Tensor>, Vec<f64>), (Verdict, String)>
    {
        let runtime = Arc::clone(&self.runtime);
        let job = move || -> anyhow::Result<_> {
            let e = match artifact {
                Artifact::Onnx(model) => runtime.evaluate(&model, &inputs, repeats),
                Artifact::Native(native) => native.evaluate(&inputs, repeats),
            }?;
            Ok((e.precision, e.outputs, e.samples))
        };
        // The worker's own timeout fires first for external runtimes; this one bounds tract.
        match isolate::with_timeout(self.options.timeout + Duration::from_secs(5), job) {
            Bounded::Done(Ok(v)) => Ok(v),
            Bounded::Done(Err(e)) => match e.downcast_ref::<WorkerError>() {
                Some(WorkerError::Timeout(t)) => Err((
                    Verdict::Timeout,
                    format!("runtime still running after {t:?}; killed"),
                )),
                Some(WorkerError::OverLimit(m)) => Err((Verdict::ResourceLimit, m.clone())),
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
