//! Latency: trustworthy timing of (model, converter, runtime), baselines and regression
//! decisions (docs/PERFORMANCE.md).
//!
//! - [`measure`]: the protocol (warm-up until stable, interleaved rounds, every sample kept);
//! - [`calibrate`]: the calibration workload timed with the models (calibrated units), and the
//!   self-test's slowdown wrapper;
//! - [`stats`]: quantiles, MAD, bootstrap intervals, the regression decision;
//! - [`baseline`]: saved runs under `reports/baselines/` and the comparison with one;
//! - [`page`] and [`plot`]: `perf.md` and `perf.html` with SVG plots;
//! - [`selftest`]: the self-test and overhead check of `harness perf` (whose clap types live
//!   in cli/src/perf.rs);
//! - [`instructions`]: instruction counts under callgrind;
//! - [`cases`]: the cases a run measures and what each holds;
//! - [`ab`]: two builds measured side by side in the same rounds (`--against`).

pub mod ab;
pub mod baseline;
pub mod calibrate;
pub mod cases;

pub mod instructions;
pub mod measure;
pub mod page;
pub mod plot;
pub mod selftest;
pub mod stats;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use self::calibrate::{Calibration, Slowdown};
use self::cases::{case_flops, flops_of};
pub use self::cases::{named_cases, read_case, select_cases};
use self::measure::{ModelRun, Protocol, Series, Timeable, Warmup};
use self::stats::{Interval, Summary};
use harness::convert::{self, Artifact, Converter};
use harness::isolate::ChildLimits;
use harness::results::{Environment, Tool};
use harness::runtime::{self, Runtime};
use harness::tensor::Named;

/// Version of the perf report and baseline layout.
pub const SCHEMA: u32 = 2;

/// One perf run: what `perf.json` and a baseline file hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PerfReport {
    /// Layout version ([`SCHEMA`]).
    pub schema: u32,
    /// The tool.
    pub tool: Tool,
    /// Machine (CPU model, cores) and versions of converters and runtimes.
    pub environment: Environment,
    /// The protocol's knobs.
    pub protocol: Protocol,
    /// Operations of one run of the calibration workload.
    pub calibration_flops: u64,
    /// Busy work added by the self-test's slowdown wrapper (fraction), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown: Option<f64>,
    /// The SIMD extensions the instruction-counted runs saw (under callgrind, which shows a
    /// program fewer than the host has): the same list on both sides makes counts comparable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counted_simd: Vec<String>,
    /// One entry per corpus case.
    pub cases: Vec<CasePerf>,
}

/// The measurements of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CasePerf {
    /// Case name (its directory under the corpus).
    pub case: String,
    /// Operations of one inference ([`harness::flops`]); `None` when they could not be counted.
    pub flops: Option<u64>,
    /// Why the operations could not be counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops_error: Option<String>,
    /// The calibration workload's samples, microseconds (of the first pass when there are
    /// several, see [`Protocol::sessions`]).
    pub calibration: Option<Summary>,
    /// Its round floors (fastest run of each round), microseconds.
    pub calibration_rounds: Vec<f64>,
    /// One entry per (converter, runtime).
    pub results: Vec<ConfigPerf>,
}

/// The measurements of one (case, converter, runtime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigPerf {
    /// Converter spec.
    pub converter: String,
    /// Runtime that ran the artifact.
    pub runtime: String,
    /// The converter hands the model on unchanged: this is the original model, which the
    /// other converters' latency is related to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub original: bool,
    /// The runtime times its runs in a worker process (its floors follow a fast mode, so the
    /// round modes are recorded; callgrind cannot see it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_in_worker: bool,
    /// Precision it computed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Every sample, microseconds.
    pub latency_us: Option<Summary>,
    /// Round floors (fastest run of each round's batch), microseconds, aligned with the
    /// case's calibration rounds.
    pub rounds_us: Vec<f64>,
    /// Round floors divided by the calibration's round floors (calibrated units).
    pub calibrated_rounds: Vec<f64>,
    /// Rounds of each independent load, in order: `calibrated_rounds` (and `rounds_us`) are
    /// the loads' round floors one after the other. Empty means one load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_rounds: Vec<usize>,
    /// Round modes (half-sample mode of each round's batch) divided by the calibration's
    /// round floors, split into loads like `calibrated_rounds`; recorded for runtimes that
    /// time their runs in a worker (see [`baseline`]), empty for the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibrated_modes: Vec<f64>,
    /// Median of `calibrated_rounds`.
    pub calibrated_p50: Option<f64>,
    /// Operations per second at the median latency, in GFLOP/s.
    pub gflops: Option<f64>,
    /// Fastest median latency of the case in this run divided by this one (1 = fastest).
    pub share_of_fastest: Option<f64>,
    /// Latency relative to the original model (identity) on the same runtime, from the
    /// per-round paired ratios, with a 95% interval.
    pub vs_original: Option<Interval>,
    /// The warm-up.
    pub warmup: Warmup,
    /// Instructions of one run under callgrind (`--instructions`), if counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<u64>,
    /// Why it could not be measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every sample (microseconds); in perf-samples.json, not in baselines.
    #[serde(skip)]
    pub samples: Vec<f64>,
}

impl ConfigPerf {
    /// Nothing measured yet.
    pub fn new(converter: String, runtime: String) -> ConfigPerf {
        ConfigPerf {
            converter,
            runtime,
            original: false,
            timed_in_worker: false,
            precision: None,
            latency_us: None,
            rounds_us: vec![],
            calibrated_rounds: vec![],
            load_rounds: vec![],
            calibrated_modes: vec![],
            calibrated_p50: None,
            gflops: None,
            share_of_fastest: None,
            vs_original: None,
            warmup: Warmup::default(),
            instructions: None,
            error: None,
            samples: vec![],
        }
    }

    /// Key in comparisons: `case / converter / runtime`.
    pub fn key(&self, case: &str) -> String {
        format!("{case} / {} / {}", self.converter, self.runtime)
    }

    /// The calibrated round floors of each load (one group when `load_rounds` does not
    /// split them consistently).
    pub fn calibrated_loads(&self) -> Vec<&[f64]> {
        self.split_loads(&self.calibrated_rounds)
    }

    /// The round floors in microseconds of each load, like [`ConfigPerf::calibrated_loads`].
    pub fn raw_loads(&self) -> Vec<&[f64]> {
        self.split_loads(&self.rounds_us)
    }

    /// The calibrated round modes of each load, like [`ConfigPerf::calibrated_loads`].
    pub fn calibrated_mode_loads(&self) -> Vec<&[f64]> {
        self.split_loads(&self.calibrated_modes)
    }

    fn split_loads<'a>(&self, values: &'a [f64]) -> Vec<&'a [f64]> {
        if self.load_rounds.iter().sum::<usize>() != values.len() {
            return vec![values];
        }
        let mut out = Vec::with_capacity(self.load_rounds.len());
        let mut rest = values;
        for &n in &self.load_rounds {
            let (head, tail) = rest.split_at(n);
            out.push(head);
            rest = tail;
        }
        out
    }
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct PerfOptions {
    /// Corpus directory: every subdirectory holding a model.onnx is a case.
    pub corpus: PathBuf,
    /// Only cases with these names (all when empty).
    pub cases: Vec<String>,
    /// Converter specs.
    pub converters: Vec<String>,
    /// Runtimes for the converters that make ONNX.
    pub runtimes: Vec<String>,
    /// The protocol.
    pub protocol: Protocol,
    /// Self-test only: busy work added to every run, as a fraction of its time.
    pub slowdown: Option<f64>,
    /// Per conversion and per worker call.
    pub timeout: Duration,
}

/// A (converter, runtime) pair to measure, built.
pub struct Config {
    converter: Box<dyn Converter>,
    runtime: Option<std::sync::Arc<dyn Runtime>>,
    runtime_name: String,
}

impl Config {
    /// `converter/runtime`, for labels.
    pub fn label(&self) -> String {
        format!("{}/{}", self.converter.name(), self.runtime_name)
    }
}

/// Builds the (converter, runtime) pairs: a converter that makes its own format runs on its
/// own runtime; one that makes ONNX runs on each runtime. Unknown names are errors.
pub fn configs(options: &PerfOptions) -> Result<Vec<Config>> {
    let runtimes: Vec<std::sync::Arc<dyn Runtime>> = options
        .runtimes
        .iter()
        .map(|r| {
            runtime::by_name(r, options.timeout, ChildLimits::converters_default())
                .map(std::sync::Arc::from)
        })
        .collect::<std::result::Result<_, String>>()
        .map_err(anyhow::Error::msg)?;
    let mut out = Vec::new();
    for spec in &options.converters {
        if let Some(native) = convert::from_spec(spec)?.native_runtime() {
            out.push(Config {
                converter: convert::from_spec(spec)?,
                runtime: None,
                runtime_name: native,
            });
            continue;
        }
        for r in &runtimes {
            out.push(Config {
                converter: convert::from_spec(spec)?,
                runtime: Some(std::sync::Arc::clone(r)),
                runtime_name: r.name().into(),
            });
        }
    }
    Ok(out)
}

/// Converts and loads `model` for one config; the work directory lives as long as the model.
pub fn load(
    config: &Config,
    model: &[u8],
    inputs: &[Named],
    timeout: Duration,
) -> Result<(Box<dyn harness::runtime::Loaded>, tempfile::TempDir)> {
    let work = tempfile::Builder::new().prefix("conv1d-perf-").tempdir()?;
    let cx = convert::Context {
        work_dir: work.path(),
        timeout,
        limits: ChildLimits::converters_default(),
    };
    let artifact = config
        .converter
        .convert(model, &cx)
        .map_err(|e| anyhow::anyhow!("conversion failed: {e:?}"))?;
    let loaded = match (artifact, &config.runtime) {
        (Artifact::Onnx(bytes), Some(rt)) => rt.load(&bytes, inputs)?,
        (Artifact::Onnx(_), None) => anyhow::bail!("no runtime for ONNX artifacts"),
        (Artifact::Native(native), _) => native.load(inputs)?,
    };
    Ok((loaded, work))
}

/// Measures one case with every config, interleaved.
pub fn measure_case(
    name: &str,
    dir: &Path,
    configs: &[Config],
    options: &PerfOptions,
) -> Result<CasePerf> {
    let (model_bytes, inputs) = read_case(dir)?;
    let (flops, flops_error) = flops_of(&model_bytes, &inputs);
    let mut dirs = Vec::new();
    let mut loaded = load_configs(configs, &model_bytes, &inputs, options, &mut dirs);
    let cal = measure_loaded(&mut loaded, flops, options);
    drop(loaded.runs);
    drop(dirs);
    let mut results = loaded.results;
    relate(&mut results);
    Ok(CasePerf {
        case: name.into(),
        flops,
        flops_error,
        calibration: Summary::of(&cal.samples),
        calibration_rounds: cal.rounds,
        results,
    })
}

/// This machine, with the versions of the configs' converters and runtimes.
fn environment_of(configs: &[Config]) -> Environment {
    let mut environment = Environment::detect();
    for c in configs {
        let version = c.converter.version().unwrap_or_else(|| "unknown".into());
        environment
            .converters
            .insert(c.converter.name(), version.clone());
        let rt_version = match &c.runtime {
            Some(rt) => rt.version(),
            None => version,
        };
        environment
            .runtimes
            .insert(c.runtime_name.clone(), rt_version);
    }
    environment
}

/// The tool that measured.
fn tool() -> Tool {
    Tool {
        name: "conv1d-harness".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// A case's configs, loaded and ready to be timed together.
struct LoadedCase {
    /// One per config, in order; a config that failed to load has its error here.
    results: Vec<ConfigPerf>,
    /// The loads of every config that loaded, one after another.
    runs: Vec<ModelRun>,
    /// For each result, the indices into `runs` of its loads (none when it failed).
    slots: Vec<Vec<usize>>,
}

/// Loads every config `options.protocol.loads` times before anything is timed, so that all
/// of them can be measured interleaved. The work directories go to `dirs`, which must
/// outlive the runs.
fn load_configs(
    configs: &[Config],
    model: &[u8],
    inputs: &[Named],
    options: &PerfOptions,
    dirs: &mut Vec<tempfile::TempDir>,
) -> LoadedCase {
    let mut case = LoadedCase {
        results: Vec::new(),
        runs: Vec::new(),
        slots: Vec::new(),
    };
    for c in configs {
        let (r, loaded_runs) = load_config(c, model, inputs, options, dirs);
        if r.error.is_some() {
            case.slots.push(Vec::new());
        } else {
            let first = case.runs.len();
            case.slots
                .push((first..first + loaded_runs.len()).collect());
            case.runs.extend(loaded_runs);
        }
        case.results.push(r);
    }
    case
}

/// Loads one config `options.protocol.loads` times (each load independent: its own
/// conversion and runtime session), wrapped in the self-test's slowdown when asked. A
/// failure or panic stops at that load and is recorded in the returned result, whose loads
/// are then not measured; loads are isolated so one config cannot end the whole run.
fn load_config(
    c: &Config,
    model: &[u8],
    inputs: &[Named],
    options: &PerfOptions,
    dirs: &mut Vec<tempfile::TempDir>,
) -> (ConfigPerf, Vec<ModelRun>) {
    let mut r = ConfigPerf {
        original: c.converter.keeps_model(),
        ..ConfigPerf::new(c.converter.name(), c.runtime_name.clone())
    };
    let mut loaded_runs = Vec::new();
    for _ in 0..options.protocol.loads.max(1) {
        match harness::isolate::catch(|| load(c, model, inputs, options.timeout)) {
            Ok(Ok((loaded, work))) => {
                r.precision = Some(loaded.precision().name().into());
                r.timed_in_worker = loaded.times_itself();
                let loaded: Box<dyn harness::runtime::Loaded> = match options.slowdown {
                    Some(fraction) => Box::new(Slowdown {
                        inner: loaded,
                        fraction,
                    }),
                    None => loaded,
                };
                loaded_runs.push(ModelRun {
                    loaded,
                    inputs: inputs.to_vec(),
                });
                dirs.push(work);
            }
            Ok(Err(e)) => r.error = Some(format!("{e:#}")),
            Err(panic) => r.error = Some(format!("panicked: {panic}")),
        }
        if r.error.is_some() {
            break;
        }
    }
    (r, loaded_runs)
}

/// Times the calibration workload and every load of `case` in the same interleaved rounds,
/// and fills each config's result from its loads (calibrated by those rounds); returns the
/// calibration's series. A config whose measurement failed gets the error instead.
fn measure_loaded(case: &mut LoadedCase, flops: Option<u64>, options: &PerfOptions) -> Series {
    // Each config's loads share its budget.
    let models = case.slots.iter().filter(|s| !s.is_empty()).count();
    let (cal, model_series) = measure_calibrated(
        case.runs.iter_mut().map(|r| r as &mut dyn Timeable),
        models,
        options,
    );
    for (r, slot) in case.results.iter_mut().zip(&case.slots) {
        let loads: Result<Vec<&Series>> = slot
            .iter()
            .map(|&i| {
                model_series[i]
                    .as_ref()
                    .map_err(|e| anyhow::anyhow!("{e:#}"))
            })
            .collect();
        match loads {
            Ok(loads) if !loads.is_empty() => {
                let modes = case.runs[slot[0]].loaded.times_itself();
                fill(r, &loads, &cal, flops, modes)
            }
            Ok(_) => {}
            Err(e) => r.error = Some(format!("{e:#}")),
        }
    }
    cal
}

/// Runs the protocol over the calibration workload and `subjects` in the same interleaved
/// rounds, `models` budgets long; returns the calibration's series (empty if it failed) and
/// the subjects' series in order.
fn measure_calibrated<'a>(
    subjects: impl Iterator<Item = &'a mut dyn Timeable>,
    models: usize,
    options: &PerfOptions,
) -> (Series, Vec<Result<Series>>) {
    let mut calibration = Calibration::new();
    let mut all: Vec<&mut dyn Timeable> = vec![&mut calibration];
    for s in subjects {
        all.push(s);
    }
    let series = measure::measure(
        &mut all,
        &options.protocol,
        models,
        &harness::isolate::interrupted,
    );
    drop(all);
    let mut series = series.into_iter();
    let cal = series.next().and_then(Result::ok).unwrap_or_default();
    (cal, series.collect())
}

/// Adds a later pass's measurements of a case to an earlier one's: every load becomes one
/// more load of the config; summaries are computed again over all of them.
fn merge_session(into: &mut CasePerf, later: CasePerf) {
    into.calibration_rounds.extend(&later.calibration_rounds);
    for (r, l) in into.results.iter_mut().zip(later.results) {
        if r.error.is_none() {
            r.error = l.error;
        }
        if r.error.is_some() {
            continue;
        }
        r.samples.extend(l.samples);
        r.rounds_us.extend(l.rounds_us);
        r.calibrated_rounds.extend(l.calibrated_rounds);
        r.calibrated_modes.extend(l.calibrated_modes);
        r.load_rounds.extend(l.load_rounds);
        r.latency_us = Summary::of(&r.samples);
        r.calibrated_p50 = Some(stats::median(&r.calibrated_rounds)).filter(|x| x.is_finite());
        r.gflops = gflops(into.flops, &r.latency_us);
        r.instructions = r.instructions.or(l.instructions);
    }
    into.calibration = into.calibration.or(later.calibration);
    relate(&mut into.results);
}

fn gflops(flops: Option<u64>, latency: &Option<Summary>) -> Option<f64> {
    match (flops, latency) {
        (Some(f), Some(l)) if l.p50 > 0.0 => Some(f as f64 / (l.p50 * 1e3)),
        _ => None,
    }
}

/// Fills a config's result from the series of its loads (measured in the same rounds as the
/// calibration `cal`), with the calibrated round modes when `modes`.
fn fill(r: &mut ConfigPerf, loads: &[&Series], cal: &Series, flops: Option<u64>, modes: bool) {
    r.samples = loads
        .iter()
        .flat_map(|s| s.samples.iter().copied())
        .collect();
    r.latency_us = Summary::of(&r.samples);
    r.rounds_us.clear();
    r.calibrated_rounds.clear();
    r.calibrated_modes.clear();
    r.load_rounds.clear();
    for s in loads {
        let n = s.rounds.len().min(cal.rounds.len());
        r.rounds_us.extend_from_slice(&s.rounds[..n]);
        r.calibrated_rounds
            .extend(s.rounds[..n].iter().zip(&cal.rounds).map(|(m, c)| m / c));
        if modes {
            r.calibrated_modes.extend(
                s.round_modes()[..n]
                    .iter()
                    .zip(&cal.rounds)
                    .map(|(m, c)| m / c),
            );
        }
        r.load_rounds.push(n);
    }
    r.calibrated_p50 = Some(stats::median(&r.calibrated_rounds)).filter(|x| x.is_finite());
    r.gflops = gflops(flops, &r.latency_us);
    r.warmup = loads[0].warmup;
}

/// Share of the fastest and the ratio to the original model on the same runtime.
fn relate(results: &mut [ConfigPerf]) {
    share_of_fastest(results);
    let originals: Vec<(String, Vec<f64>)> = results
        .iter()
        .filter(|r| r.original && r.latency_us.is_some())
        .map(|r| (r.runtime.clone(), r.rounds_us.clone()))
        .collect();
    for r in results.iter_mut() {
        if r.latency_us.is_none() {
            continue;
        }
        if let Some((_, orig)) = originals.iter().find(|(rt, _)| *rt == r.runtime) {
            let paired: Vec<f64> = r.rounds_us.iter().zip(orig).map(|(a, b)| a / b).collect();
            r.vs_original = stats::median_interval(&paired, 0.95, stats::RESAMPLES, 17);
        }
    }
}

/// The fastest median latency of the results divided by each one's.
fn share_of_fastest(results: &mut [ConfigPerf]) {
    let fastest = results
        .iter()
        .filter_map(|r| r.latency_us.map(|l| l.p50))
        .fold(f64::INFINITY, f64::min);
    for r in results.iter_mut() {
        if let Some(l) = r.latency_us {
            r.share_of_fastest = Some(fastest / l.p50);
        }
    }
}

/// Runs the whole measurement; `progress` hears about each case.
pub fn run(options: &PerfOptions, progress: &dyn Fn(&str)) -> Result<PerfReport> {
    let cases = select_cases(options)?;
    let configs = configs(options)?;
    let environment = environment_of(&configs);
    let mut out: Vec<CasePerf> = Vec::new();
    let sessions = options.protocol.sessions.max(1);
    for session in 0..sessions {
        for (i, (name, dir)) in cases.iter().enumerate() {
            if harness::isolate::interrupted() {
                break;
            }
            if sessions > 1 {
                progress(&format!("{name} (pass {} of {sessions})", session + 1));
            } else {
                progress(name);
            }
            let measured = measure_case(name, dir, &configs, options)?;
            match out.get_mut(i) {
                Some(earlier) => merge_session(earlier, measured),
                None => out.push(measured),
            }
        }
    }
    Ok(PerfReport {
        schema: SCHEMA,
        tool: tool(),
        environment,
        protocol: options.protocol,
        calibration_flops: Calibration::flops(),
        slowdown: options.slowdown,
        counted_simd: Vec::new(),
        cases: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(corpus: &Path, cases: &[&str]) -> PerfOptions {
        PerfOptions {
            corpus: corpus.to_path_buf(),
            cases: cases.iter().map(|c| c.to_string()).collect(),
            converters: vec!["identity".into()],
            runtimes: vec!["tract".into()],
            protocol: Protocol::with_budget(Duration::from_millis(10)),
            slowdown: None,
            timeout: Duration::from_secs(10),
        }
    }

    #[test]
    fn the_default_set_is_the_cases_marked_perf_and_a_named_case_is_taken_as_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let built = harness::corpus::builtin().unwrap();
        let fixed = built.iter().find(|b| b.name == "cnn1d").unwrap();
        let dynamic = built.iter().find(|b| b.name == "cnn1d_dyn").unwrap();
        assert!(fixed.perf && !dynamic.perf);
        harness::corpus::write_case(tmp.path(), fixed).unwrap();
        harness::corpus::write_case(tmp.path(), dynamic).unwrap();
        let names = |o: &PerfOptions| -> Vec<String> {
            select_cases(o)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(&options(tmp.path(), &[])), ["cnn1d"]);
        assert_eq!(names(&options(tmp.path(), &["cnn1d_dyn"])), ["cnn1d_dyn"]);
        // a corpus that marks nothing is measured whole
        std::fs::remove_dir_all(tmp.path().join("cnn1d")).unwrap();
        assert_eq!(names(&options(tmp.path(), &[])), ["cnn1d_dyn"]);
    }

    #[test]
    fn loads_split_the_calibrated_rounds_in_order() {
        let mut r = ConfigPerf {
            calibrated_rounds: vec![1.0, 2.0, 3.0, 4.0, 5.0],
            calibrated_modes: vec![1.5, 2.5, 3.5, 4.5, 5.5],
            load_rounds: vec![2, 3],
            ..ConfigPerf::new("identity".into(), "tract".into())
        };
        assert_eq!(
            r.calibrated_loads(),
            [&[1.0, 2.0][..], &[3.0, 4.0, 5.0][..]]
        );
        assert_eq!(
            r.calibrated_mode_loads(),
            [&[1.5, 2.5][..], &[3.5, 4.5, 5.5][..]]
        );
        // a baseline without load_rounds (or an inconsistent one) is one load
        r.load_rounds.clear();
        assert_eq!(r.calibrated_loads(), [&[1.0, 2.0, 3.0, 4.0, 5.0][..]]);
        r.load_rounds = vec![2, 2];
        assert_eq!(r.calibrated_loads().len(), 1);
    }
}
