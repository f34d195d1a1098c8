//! A/B in one run: two builds of the harness measured side by side, in the same interleaved
//! rounds, on the same machine, so no number crosses machines or minutes.
//!
//! Each build runs as its own `harness perf --serve` process per (case, converter, runtime)
//! and load ([`serve`]): it converts and loads the model once, then answers `batch K R` with
//! the samples of K timed runs ([`super::measure::Timeable`], timed inside that process).
//! This process (the coordinator) starts the processes of both builds ([`Server`]) and runs
//! the protocol over them and the calibration workload, exactly as a single-build run does
//! over its loads ([`super::measure`]). Both sides are separate processes, so neither has the
//! advantage of the coordinator's warm caches or the disadvantage of its allocations.
//!
//! The result is two perf reports measured in the same rounds (reference and candidate) and
//! their comparison ([`super::baseline::compare`], every view of the same machine; see
//! docs/PERFORMANCE.md).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use super::baseline::{self, Comparison};
use super::calibrate::{Calibration, Slowdown};
use super::measure::{ModelRun, Series, Timeable};
use super::stats::Summary;
use super::{CasePerf, ConfigPerf, PerfOptions, PerfReport};
use harness::isolate::{ChildLimits, Group};

/// One build of the A/B run.
#[derive(Debug, Clone)]
pub struct Side {
    /// Its `harness` binary.
    pub exe: PathBuf,
    /// How the reports name it (a revision).
    pub name: String,
    /// Self-test only: busy work added to every run of this side (fraction).
    pub slowdown: Option<f64>,
}

/// `harness perf --serve`: loads the first config on the first selected case once (with the
/// self-test's slowdown when asked), says `ready {"precision", "times_itself"}` (or `error
/// "…"`) on stdout, then answers each `batch K R` line of stdin with `samples [...]` (K
/// samples, microseconds, each the mean of R runs) or `error "…"`, until stdin closes.
pub fn serve(options: &PerfOptions) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let loaded = (|| {
        let (_, dir) = super::select_cases(options)?.remove(0);
        let configs = super::configs(options)?;
        let config = configs.first().context("no configuration")?;
        let (model, inputs) = super::read_case(&dir)?;
        let (loaded, work) = super::load(config, &model, &inputs, options.timeout)?;
        Ok::<_, anyhow::Error>((loaded, inputs, work))
    })();
    let (loaded, inputs, _work) = match loaded {
        Ok(l) => l,
        Err(e) => {
            writeln!(out, "error {}", json!(format!("{e:#}")))?;
            return Ok(());
        }
    };
    let ready = json!({
        "precision": loaded.precision().name(),
        "times_itself": loaded.times_itself(),
    });
    let loaded: Box<dyn harness::runtime::Loaded> = match options.slowdown {
        Some(fraction) => Box::new(Slowdown {
            inner: loaded,
            fraction,
        }),
        None => loaded,
    };
    let mut run = ModelRun { loaded, inputs };
    writeln!(out, "ready {ready}")?;
    out.flush()?;
    let mut samples = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let (Some("batch"), Some(k), Some(r)) = (words.next(), words.next(), words.next()) else {
            writeln!(out, "error {}", json!(format!("not a request: {line}")))?;
            out.flush()?;
            continue;
        };
        let (k, r): (usize, usize) = (k.parse()?, r.parse()?);
        samples.clear();
        match run.batch(k, r, &mut samples) {
            Ok(()) => writeln!(out, "samples {}", json!(samples))?,
            Err(e) => writeln!(out, "error {}", json!(format!("{e:#}")))?,
        }
        out.flush()?;
    }
    Ok(())
}

/// A build whose harness cannot serve A/B runs: the run cannot be made at all.
#[derive(Debug, thiserror::Error)]
#[error("this build has no `perf --serve`: it predates A/B runs; compare against a later revision")]
pub struct NoServer;

/// A `harness perf --serve` process of one side, measured by the coordinator's protocol.
pub struct Server {
    group: Group,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    timeout: Duration,
    /// Precision the model computes in.
    pub precision: String,
    /// Whether its runtime times runs in a worker (round modes are recorded then).
    pub times_itself: bool,
}

impl Server {
    /// Starts `side`'s server for (`case`, `converter`, `runtime`) of `options`' corpus and
    /// waits until it has loaded the model.
    pub fn start(
        side: &Side,
        options: &PerfOptions,
        case: &str,
        converter: &str,
        runtime: &str,
    ) -> Result<Server> {
        let stderr = tempfile::NamedTempFile::new()?;
        let mut cmd = Command::new(&side.exe);
        cmd.args(["perf", "--serve", "--corpus"])
            .arg(&options.corpus)
            .args(["--case", case, "--converter", converter]);
        // A converter with a runtime of its own (OpenVINO's IR) takes no --runtime.
        if harness::runtime::NAMES.contains(&runtime) {
            cmd.args(["--runtime", runtime]);
        }
        cmd.args(["--timeout", &options.timeout.as_secs_f64().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen()?);
        if let Some(f) = side.slowdown {
            cmd.args(["--slowdown", &(f * 100.0).to_string()]);
        }
        let mut group = Group::spawn(cmd, ChildLimits::converters_default())
            .with_context(|| format!("cannot start {}", side.exe.display()))?;
        let stdin = group.child().stdin.take().context("no stdin")?;
        let stdout = group.child().stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            group,
            stdin,
            lines,
            stderr,
            timeout: options.timeout,
            precision: String::new(),
            times_itself: false,
        };
        let ready = server.reply("ready").with_context(|| {
            format!(
                "{} ({}) could not load {case} / {converter} / {runtime}",
                side.name,
                side.exe.display()
            )
        })?;
        server.precision = ready["precision"].as_str().unwrap_or_default().to_string();
        server.times_itself = ready["times_itself"].as_bool().unwrap_or(false);
        Ok(server)
    }

    /// The next protocol line: the value after `expected`, or the server's error.
    fn reply(&mut self, expected: &str) -> Result<serde_json::Value> {
        loop {
            let line = match self.lines.recv_timeout(self.timeout) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.group.end();
                    bail!("no answer within {:?}", self.timeout)
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.group.end().map(|s| s.to_string()).unwrap_or_default();
                    let log = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
                    if log.contains("--serve") && log.contains("unexpected argument") {
                        return Err(NoServer.into());
                    }
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    bail!("the server ended ({status}): {}", tail.join(" | "))
                }
            };
            let Some((word, rest)) = line.split_once(' ') else {
                continue;
            };
            if word == "error" {
                let message: String = serde_json::from_str(rest).unwrap_or_else(|_| rest.into());
                bail!("{message}");
            }
            if word == expected {
                return serde_json::from_str(rest).context("malformed answer");
            }
            // anything else on stdout is not the protocol's
        }
    }
}

impl Timeable for Server {
    fn batch(&mut self, k: usize, r: usize, out: &mut Vec<f64>) -> Result<()> {
        writeln!(self.stdin, "batch {k} {r}")?;
        self.stdin.flush()?;
        let samples: Vec<f64> = serde_json::from_value(self.reply("samples")?)?;
        anyhow::ensure!(
            samples.len() == k,
            "asked for {k} samples, got {}",
            samples.len()
        );
        out.extend(samples);
        Ok(())
    }
}

/// What an A/B run found: both builds' reports (measured in the same rounds) and the
/// candidate's comparison with the reference.
pub struct AbRun {
    /// The reference build's measurements.
    pub reference: PerfReport,
    /// The candidate build's measurements.
    pub candidate: PerfReport,
    /// Candidate against reference, every view of the same machine.
    pub comparison: Comparison,
}

/// Measures every selected (case, converter, runtime) with both builds side by side and
/// compares `candidate` with `reference` at `threshold` (a fraction). `progress` hears about
/// each case.
pub fn run(
    options: &PerfOptions,
    reference: &Side,
    candidate: &Side,
    threshold: f64,
    progress: &dyn Fn(&str),
) -> Result<AbRun> {
    let cases = super::select_cases(options)?;
    let configs = super::configs(options)?;
    let environment = super::environment_of(&configs);
    let mut ref_cases = Vec::new();
    let mut cand_cases = Vec::new();
    for (name, dir) in &cases {
        if harness::isolate::interrupted() {
            break;
        }
        progress(name);
        let (r, c) = measure_case(name, dir, &configs, options, [reference, candidate])?;
        ref_cases.push(r);
        cand_cases.push(c);
    }
    let report = |cases: Vec<CasePerf>, side: &Side| PerfReport {
        schema: super::SCHEMA,
        tool: super::tool(),
        environment: environment.clone(),
        protocol: options.protocol,
        calibration_flops: Calibration::flops(),
        slowdown: side.slowdown,
        counted_simd: Vec::new(),
        cases,
    };
    let reference_report = report(ref_cases, reference);
    let candidate_report = report(cand_cases, candidate);
    let mut comparison = baseline::compare(
        &candidate_report,
        &reference_report,
        Path::new(&reference.name),
        &reference.name,
        threshold,
        baseline::margin_for(threshold),
    );
    comparison.side_by_side = true;
    for e in &mut comparison.entries {
        e.command = format!(
            "cargo xtask perf --case {} --converter {}{} --against {}",
            e.case,
            e.converter,
            if harness::runtime::NAMES.contains(&e.runtime.as_str()) {
                format!(" --runtime {}", e.runtime)
            } else {
                String::new()
            },
            reference.name
        );
    }
    Ok(AbRun {
        reference: reference_report,
        candidate: candidate_report,
        comparison,
    })
}

/// One case, config by config: each config loaded `loads` times by each side (a server
/// process each, the two sides started alternately), the loads of both sides timed with the
/// calibration in the same rounds; returns the case as each side measured it.
///
/// Config by config, not all configs of the case in the same rounds as a single-build run
/// does: the pair is what is compared, and a side's eight loads of every default config at
/// once would be 96 processes per case, 64 of them Python workers. The ratio to the original
/// model on the same runtime (`vs_original`) needs configs timed in the same rounds, so it is
/// not given side by side.
fn measure_case(
    name: &str,
    dir: &Path,
    configs: &[super::Config],
    options: &PerfOptions,
    sides: [&Side; 2],
) -> Result<(CasePerf, CasePerf)> {
    let (flops, flops_error) = super::case_flops(dir);
    let mut out: [Vec<ConfigPerf>; 2] = [Vec::new(), Vec::new()];
    let mut calibration_samples = Vec::new();
    let mut calibration_rounds = Vec::new();
    for c in configs {
        if harness::isolate::interrupted() {
            break;
        }
        let [reference, candidate] = measure_config(name, c, flops, options, sides)?;
        if let Some(cal) = &reference.1 {
            calibration_samples.extend_from_slice(&cal.samples);
            calibration_rounds.extend_from_slice(&cal.rounds);
        }
        out[0].push(reference.0);
        out[1].push(candidate.0);
    }
    let calibration = Summary::of(&calibration_samples);
    let [reference, candidate] = out.map(|mut results| {
        super::share_of_fastest(&mut results);
        CasePerf {
            case: name.into(),
            flops,
            flops_error: flops_error.clone(),
            calibration,
            calibration_rounds: calibration_rounds.clone(),
            results,
        }
    });
    Ok((reference, candidate))
}

/// One config of a case on both sides ([`measure_case`]): each side's result, with the
/// calibration's series of its rounds (none when it was not measured).
fn measure_config(
    case: &str,
    c: &super::Config,
    flops: Option<u64>,
    options: &PerfOptions,
    sides: [&Side; 2],
) -> Result<[(ConfigPerf, Option<Series>); 2]> {
    let converter = c.converter.name();
    let mut loads: [Vec<Server>; 2] = [Vec::new(), Vec::new()];
    let mut error = None;
    'loads: for load in 0..options.protocol.loads.max(1) {
        for k in 0..2 {
            let side = (k + load) % 2;
            match Server::start(sides[side], options, case, &converter, &c.runtime_name) {
                Ok(s) => loads[side].push(s),
                // A build that cannot serve at all ends the run: nothing can be paired.
                Err(e) if e.root_cause().is::<NoServer>() => return Err(e),
                Err(e) => {
                    error = Some((side, format!("{e:#}")));
                    break 'loads;
                }
            }
        }
    }
    let mut results = [0, 1].map(|side| {
        let mut r = ConfigPerf {
            original: c.converter.keeps_model(),
            ..ConfigPerf::new(converter.clone(), c.runtime_name.clone())
        };
        if let Some(first) = loads[side].first() {
            r.precision = Some(first.precision.clone());
            r.timed_in_worker = first.times_itself;
        }
        r
    });
    // A config that fails on either side is measured on neither: there is no pair.
    if let Some((failed, e)) = error {
        for (side, r) in results.iter_mut().enumerate() {
            r.error = Some(if failed == side {
                e.clone()
            } else {
                format!("not measured: {} failed: {e}", sides[failed].name)
            });
        }
        return Ok(results.map(|r| (r, None)));
    }
    let (cal, series) = super::measure_calibrated(
        loads.iter_mut().flatten().map(|s| s as &mut dyn Timeable),
        2,
        options,
    );
    let mut series = series.into_iter();
    for (side, r) in results.iter_mut().enumerate() {
        let measured: Result<Vec<Series>> = loads[side]
            .iter()
            .map(|_| {
                series
                    .next()
                    .context("no series")?
                    .map_err(|e| anyhow::anyhow!("{e:#}"))
            })
            .collect();
        match measured {
            Ok(measured) => {
                let refs: Vec<&Series> = measured.iter().collect();
                super::fill(r, &refs, &cal, flops, r.timed_in_worker)
            }
            Err(e) => r.error = Some(format!("{e:#}")),
        }
    }
    Ok(results.map(|r| (r, Some(cal.clone()))))
}
