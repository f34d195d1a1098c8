//! The self-test of `harness perf`: this machine's false-alarm rate and power, and the
//! timing overhead of the protocol against a bare loop.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};

use harness::convert::IDENTITY;
use harness::runtime::TRACT;

use super::measure::{self, ModelRun, Timeable};
use super::stats::median;
use super::PerfOptions;

/// The self-test: one baseline, then `rounds` comparisons of the same build (false alarms)
/// and of the slowdown wrapper at 5, 10 and 20% (power), each a separate `harness perf`
/// process like a user's, interleaved so drift hits all alike; then the timing overhead.
///
/// `threshold_pct` is the slowdown that must be caught (percent), as for `harness perf`.
/// `progress` receives a line as each step ends.
pub fn self_test(
    options: &PerfOptions,
    threshold_pct: f64,
    rounds: usize,
    progress: &dyn Fn(&str),
) -> Result<SelfTest> {
    let mut options = options.clone();
    options.converters = vec![IDENTITY.into()];
    options.runtimes = vec![TRACT.into()];
    let budget_s = options.protocol.budget.as_secs_f64();
    let cases = super::select_cases(&options)?;
    // The smallest model is where the timing overhead weighs most.
    let (small, small_dir) = smallest(&super::named_cases(&options)?)?;
    let case = rounds_case(&options, &cases, &small);
    let tmp = tempfile::tempdir()?;
    let base = tmp.path().join("base.json");
    let perf = PerfProcess {
        exe: std::env::current_exe()?,
        case: &case,
        corpus: &options.corpus,
        budget_s,
        threshold_pct,
        loads: options.protocol.loads,
        report: tmp.path().join("r"),
    };
    progress(&format!(
        "self-test on {case} (identity on tract), budget {budget_s} s per run, {rounds} rounds"
    ));
    perf.run(&["--save".into(), base.display().to_string()])?;
    let tally = run_rounds(&perf, &base, rounds, progress)?;
    let overhead = timing_overhead(&small_dir, &options, progress)?;
    Ok(SelfTest {
        case,
        smallest: small,
        rounds,
        budget_s,
        threshold_pct,
        tally,
        overhead,
    })
}

/// What the self-test found.
pub struct SelfTest {
    /// The case of the false-alarm and power rounds.
    pub case: String,
    /// The smallest corpus model, where the timing overhead was measured.
    pub smallest: String,
    /// Rounds run.
    pub rounds: usize,
    /// Measuring time per run, seconds.
    pub budget_s: f64,
    /// The slowdown that must be caught, percent.
    pub threshold_pct: f64,
    tally: Tally,
    /// The timing overhead: the protocol loop's wall time per run and its samples' mean,
    /// each relative to a bare loop.
    pub overhead: (f64, f64),
}

impl SelfTest {
    /// The outcome as Markdown: a table with one row per slowdown level, then the overhead.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\nself-test on {}: {} rounds, budget {} s per run, threshold {}%\n",
            self.case, self.rounds, self.budget_s, self.threshold_pct
        );
        s += &tally_table(&self.tally, self.rounds);
        s += &format!(
            "timing overhead on {} (smallest corpus model): harness loop {:+.2}% wall time per run vs a bare loop; samples' mean {:+.2}% vs the bare loop's mean ({} rounds)\n",
            self.smallest,
            self.overhead.0 * 100.0,
            self.overhead.1 * 100.0,
            OVERHEAD_ROUNDS
        );
        s
    }
}

/// Busy work of the self-test's builds, percent: 0 is the same build (its flags are false
/// alarms), the others are slowdowns to catch (its flags are the power).
const LEVELS: [f64; 4] = [0.0, 5.0, 10.0, 20.0];

/// The case of the false-alarm and power rounds: the first `--case` when cases are named,
/// else the reference CNN1D (`cnn1d`) when the corpus has it, else the smallest model
/// (`small`). Not the smallest first: on a run of a microsecond the slowdown wrapper's own
/// clock reads would add more than 5%.
fn rounds_case(options: &PerfOptions, cases: &[(String, PathBuf)], small: &str) -> String {
    if !options.cases.is_empty() {
        return cases[0].0.clone();
    }
    cases
        .iter()
        .find(|(n, _)| n == "cnn1d")
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| small.to_string())
}

/// One `harness perf` run of the self-test, started as a separate process like a user's, so
/// that every run loads, warms up and measures afresh (identity on tract, one case).
struct PerfProcess<'a> {
    /// This program.
    exe: PathBuf,
    /// The case measured.
    case: &'a str,
    /// Its corpus.
    corpus: &'a Path,
    /// `--budget`, seconds.
    budget_s: f64,
    /// `--threshold`, percent.
    threshold_pct: f64,
    /// `--loads`.
    loads: usize,
    /// `--report`: every run writes its perf.json there, read back right after.
    report: PathBuf,
}

impl PerfProcess<'_> {
    /// Runs `harness perf` with `extra` arguments: its exit status (0, or 1 for a
    /// regression) and its perf.json. Any other status means the run itself failed, which
    /// would make the counts meaningless, so it is an error.
    fn run(&self, extra: &[String]) -> Result<(i32, serde_json::Value)> {
        let out = Command::new(&self.exe)
            .args([
                "perf",
                "--converter",
                IDENTITY,
                "--runtime",
                TRACT,
                "--case",
                self.case,
            ])
            .arg("--corpus")
            .arg(self.corpus)
            .args([
                "--budget",
                &self.budget_s.to_string(),
                "--threshold",
                &self.threshold_pct.to_string(),
                "--loads",
                &self.loads.to_string(),
            ])
            .arg("--report")
            .arg(&self.report)
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
            serde_json::from_slice(&std::fs::read(self.report.join("perf.json"))?)?;
        Ok((code, json))
    }
}

/// What the rounds found at each of [`LEVELS`], counted two ways so the table shows what
/// the margin buys: by the decision `harness perf` uses, and by the stricter one.
struct Tally {
    /// Runs flagged by `harness perf` (exit status 1: CI above 1 + threshold / 2).
    flagged: [usize; 4],
    /// Runs whose calibrated ratio's CI lies above 1 + threshold.
    strict: [usize; 4],
    /// Every run's calibrated ratio estimate.
    ratios: Vec<Vec<f64>>,
}

/// The false-alarm and power rounds: each round compares every level of [`LEVELS`] with
/// the baseline `base` once, so drift over the rounds hits all levels alike; each run is
/// reported on stderr as it ends.
fn run_rounds(
    perf: &PerfProcess,
    base: &Path,
    rounds: usize,
    progress: &dyn Fn(&str),
) -> Result<Tally> {
    let mut tally = Tally {
        flagged: [0; 4],
        strict: [0; 4],
        ratios: vec![Vec::new(); 4],
    };
    let threshold = perf.threshold_pct / 100.0;
    for round in 0..rounds {
        for (i, level) in LEVELS.iter().enumerate() {
            let mut extra = vec!["--baseline".into(), base.display().to_string()];
            if *level > 0.0 {
                extra.extend(["--slowdown".into(), level.to_string()]);
            }
            let (code, json) = perf.run(&extra)?;
            let entry = &json["comparison"]["entries"][0];
            let low = entry["ratio"]["low"].as_f64().unwrap_or(f64::NAN);
            let est = entry["ratio"]["estimate"].as_f64().unwrap_or(f64::NAN);
            tally.flagged[i] += usize::from(code == 1);
            tally.strict[i] += usize::from(low > 1.0 + threshold);
            tally.ratios[i].push(est);
            progress(&format!(
                "round {:>2}  +{level:>2}%  ratio {est:.3} (CI low {low:.3})  {}",
                round + 1,
                if code == 1 {
                    "REGRESSION"
                } else {
                    "no regression"
                }
            ));
        }
    }
    Ok(tally)
}

/// The rounds' outcome as a Markdown table, one row per level of [`LEVELS`].
fn tally_table(tally: &Tally, rounds: usize) -> String {
    let mut s = String::from("| build | flagged (CI above 1 + threshold/2, used) | flagged (CI above 1 + threshold) | median ratio |\n|---|---|---|---|\n");
    for (i, level) in LEVELS.iter().enumerate() {
        s += &format!(
            "| {} | {}/{} | {}/{} | {:.3} |\n",
            if *level == 0.0 {
                "same build (false alarms)".to_string()
            } else {
                format!("+{level}% busy work (power)")
            },
            tally.flagged[i],
            rounds,
            tally.strict[i],
            rounds,
            median(&tally.ratios[i])
        );
    }
    s
}

/// Busy work of the side-by-side and instruction-count self-tests, percent: the same build
/// (false alarms) and one slowed by 10% (power).
const AB_LEVELS: [f64; 2] = [0.0, 10.0];

/// `options` narrowed to identity on tract, with the case of the self-test's rounds
/// ([`rounds_case`]).
fn on_rounds_case(options: &PerfOptions) -> Result<(PerfOptions, String)> {
    let mut options = options.clone();
    options.converters = vec![IDENTITY.into()];
    options.runtimes = vec![TRACT.into()];
    let cases = super::select_cases(&options)?;
    let (small, _) = smallest(&super::named_cases(&options)?)?;
    let case = rounds_case(&options, &cases, &small);
    Ok((options, case))
}

/// The self-test of the side-by-side comparison (`--against`): `rounds` rounds, each an A/B
/// run of this build against itself at every level of [`AB_LEVELS`] (the candidate side with
/// that much busy work), on the self-test's case with identity on tract, as a user's A/B
/// run would measure it.
pub fn self_test_side_by_side(
    options: &PerfOptions,
    threshold_pct: f64,
    rounds: usize,
    progress: &dyn Fn(&str),
) -> Result<LevelTest> {
    let (mut options, case) = on_rounds_case(options)?;
    options.cases = vec![case.clone()];
    let exe = std::env::current_exe()?;
    let side = |slowdown: Option<f64>| super::ab::Side {
        exe: exe.clone(),
        name: "this build".into(),
        slowdown,
    };
    progress(&format!(
        "side-by-side self-test on {case} (identity on tract), budget {} s, {rounds} rounds",
        options.protocol.budget.as_secs_f64()
    ));
    let mut test = LevelTest::new("side by side (`--against`)", &case, rounds, threshold_pct);
    for round in 0..rounds {
        for (i, level) in AB_LEVELS.iter().enumerate() {
            let slowdown = (*level > 0.0).then_some(level / 100.0);
            let ab = super::ab::run(
                &options,
                &side(None),
                &side(slowdown),
                threshold_pct / 100.0,
                &|_| {},
            )?;
            let entry = ab.comparison.entries.first().context("nothing compared")?;
            if entry.ratio.is_none() {
                bail!(
                    "round {}: not measured: {}",
                    round + 1,
                    entry.note.as_deref().unwrap_or("no interval")
                );
            }
            let flagged = ab.comparison.regressions().next().is_some();
            let estimate = entry
                .raw_floor_ratio
                .or(entry.ratio)
                .map_or(f64::NAN, |r| r.estimate);
            let detail = format!("raw floors {estimate:.3}");
            test.record(round, i, flagged, estimate, &detail, progress);
        }
    }
    Ok(test)
}

/// The self-test of instruction counts: `rounds` rounds, each counting this build's
/// instructions per run at every level of [`AB_LEVELS`] (the extra work of the slowed build
/// is extra runs, which counts see exactly, see [`super::instructions::run_loop`]), each
/// compared with a first count of the same build by the rule of comparisons across CPUs.
pub fn self_test_instructions(
    options: &PerfOptions,
    threshold_pct: f64,
    rounds: usize,
    progress: &dyn Fn(&str),
) -> Result<LevelTest> {
    let (options, case) = on_rounds_case(options)?;
    let count = |slowdown: Option<f64>| {
        super::instructions::instructions_per_run(&super::instructions::Counting {
            corpus: &options.corpus,
            case: &case,
            converter: IDENTITY,
            runtime: TRACT,
            slowdown,
        })
        .map(|(n, _)| n)
    };
    progress(&format!(
        "instruction-count self-test on {case} (identity on tract, callgrind), {rounds} rounds"
    ));
    let base = count(None)?;
    let margin = super::baseline::margin_for(threshold_pct / 100.0);
    let mut test = LevelTest::new("instruction counts", &case, rounds, threshold_pct);
    for round in 0..rounds {
        for (i, level) in AB_LEVELS.iter().enumerate() {
            let n = count((*level > 0.0).then_some(level / 100.0))?;
            let ratio = n as f64 / base.max(1) as f64;
            let flagged =
                super::baseline::decide_counts(ratio, margin) == super::stats::Change::Regression;
            let detail = format!("{n} instructions per run, ratio {ratio:.4}");
            test.record(round, i, flagged, ratio, &detail, progress);
        }
    }
    Ok(test)
}

/// The outcome of a self-test over [`AB_LEVELS`].
pub struct LevelTest {
    /// Which comparison was tested.
    pub mode: String,
    /// The case.
    pub case: String,
    /// Rounds run.
    pub rounds: usize,
    /// The slowdown that must be caught, percent.
    pub threshold_pct: f64,
    /// Flagged rounds per level.
    pub flagged: [usize; 2],
    /// Every round's ratio per level.
    pub ratios: [Vec<f64>; 2],
}

impl LevelTest {
    fn new(mode: &str, case: &str, rounds: usize, threshold_pct: f64) -> LevelTest {
        LevelTest {
            mode: mode.into(),
            case: case.into(),
            rounds,
            threshold_pct,
            flagged: [0; 2],
            ratios: [Vec::new(), Vec::new()],
        }
    }

    /// Counts one comparison of `round` at level index `level` and tells `progress` of it.
    fn record(
        &mut self,
        round: usize,
        level: usize,
        flagged: bool,
        ratio: f64,
        detail: &str,
        progress: &dyn Fn(&str),
    ) {
        self.flagged[level] += usize::from(flagged);
        self.ratios[level].push(ratio);
        progress(&format!(
            "round {:>3}  +{:>2}%  {detail}  {}",
            round + 1,
            AB_LEVELS[level],
            if flagged {
                "REGRESSION"
            } else {
                "no regression"
            }
        ));
    }

    /// The outcome as Markdown: one row per level.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\nself-test of {} on {}: {} rounds, threshold {}%\n| build | flagged | median ratio | min | max |\n|---|---|---|---|---|\n",
            self.mode, self.case, self.rounds, self.threshold_pct
        );
        for (i, level) in AB_LEVELS.iter().enumerate() {
            let r = &self.ratios[i];
            s += &format!(
                "| {} | {}/{} | {:.4} | {:.4} | {:.4} |\n",
                if *level == 0.0 {
                    "same build (false alarms)".to_string()
                } else {
                    format!("+{level}% (power)")
                },
                self.flagged[i],
                self.rounds,
                median(r),
                r.iter().copied().fold(f64::INFINITY, f64::min),
                r.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            );
        }
        s
    }
}

/// Rounds of the overhead measurement.
pub const OVERHEAD_ROUNDS: usize = 40;

/// The case with the smallest model.onnx.
pub fn smallest(cases: &[(String, PathBuf)]) -> Result<(String, PathBuf)> {
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
///
/// `progress` is told the loop sizes it chose.
pub fn timing_overhead(
    dir: &Path,
    options: &PerfOptions,
    progress: &dyn Fn(&str),
) -> Result<(f64, f64)> {
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let per_run = run.bare_loop(200)?;
    // The protocol's own choice of runs per sample for this model.
    let r = measure::runs_per_sample(measure::clock_cost_us(), per_run);
    let k = ((5_000.0 / (per_run.max(0.01) * r as f64)) as usize).clamp(10, 200_000);
    progress(&format!(
        "overhead: {per_run:.3} µs per run, {r} run(s) per sample, {k} samples per loop"
    ));
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
