//! The measurement protocol.
//!
//! 1. **Warm-up until stable**: each subject runs batches until two consecutive batch medians
//!    agree within 5% (or the warm-up allowance is spent); the last median sizes its batches.
//! 2. **Interleaved rounds**: every round runs one batch of each subject (models and the
//!    calibration workload), in an order that rotates from round to round, until the time
//!    budget is spent (and at least [`Protocol::min_rounds`] rounds ran). A drift of the
//!    machine's speed hits all subjects alike, so their ratios hold.
//! 3. **Independent loads**: each config is loaded [`Protocol::loads`] times (for runtimes in
//!    a worker, each load in its own worker process); the loads are separate subjects of the
//!    same rounds and share the config's budget.
//! 4. **Every sample is kept**, one per run, with the minimum of each batch (the "round
//!    floor"). Interference on a shared machine (another process on the core, a cache flush)
//!    only ever adds time, so the fastest of a batch worth ~10 ms of runs is the cost of the
//!    run without it: on this project's machine it varies by ±0.5% between processes where the
//!    median varies by ±4%. Comparisons resample loads and, within each, round floors, which
//!    unlike single runs are close to independent; a slowdown of the code itself moves every
//!    run, the fastest too.
//! 5. **Round modes** too: the half-sample mode of each batch, the densest point of its runs.
//!    Engines timed in a worker can have a fast mode that only a few runs reach, in a share
//!    that changes from minute to minute (OpenVINO's bf16 M5 here: ≈ 58 µs in up to 14% of
//!    the runs, ≈ 105 µs in the others); the floor follows that share, the mode does not. See
//!    [`super::baseline`] for how the two are used.
//!
//! Samples are microseconds. In-process runtimes are timed with one tick read between
//! consecutive calls (so a batch's samples add up to its wall time); runtimes in a
//! worker time each run inside the worker ([`Loaded::timed_runs`]), so the protocol's messages
//! are not part of any sample.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::calibrate::Calibration;
use super::stats::{half_sample_mode, median};
use harness::runtime::Loaded;
use harness::tensor::Named;

/// Something the protocol can time in batches.
pub trait Timeable {
    /// Appends `k` samples (microseconds per run) to `out`, each the mean of `r` consecutive
    /// runs.
    fn batch(&mut self, k: usize, r: usize, out: &mut Vec<f64>) -> Result<()>;
}

/// Runs `f` `k * r` times and appends `k` samples, each the mean of `r` consecutive runs,
/// with one clock read between consecutive samples: samples add up to the batch's wall time
/// and the clock costs one read per sample (`r` > 1 only for runs so short that one read
/// would weigh more than 0.2%, see [`Warmup::runs_per_sample`]).
fn timed_loop(
    k: usize,
    r: usize,
    out: &mut Vec<f64>,
    mut f: impl FnMut() -> Result<()>,
) -> Result<()> {
    out.reserve(k);
    let r = r.max(1);
    let mut last = Instant::now();
    for _ in 0..k {
        for _ in 0..r {
            f()?;
        }
        let now = Instant::now();
        out.push((now - last).as_secs_f64() * 1e6 / r as f64);
        last = now;
    }
    Ok(())
}

/// Cost of one read of the clock, in microseconds (median of a few blocks of reads).
pub fn clock_cost_us() -> f64 {
    let blocks: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..2_000 {
                std::hint::black_box(Instant::now());
            }
            t.elapsed().as_secs_f64() * 1e6 / 2_000.0
        })
        .collect();
    median(&blocks)
}

impl Timeable for Calibration {
    fn batch(&mut self, k: usize, r: usize, out: &mut Vec<f64>) -> Result<()> {
        timed_loop(k, r, out, || {
            std::hint::black_box(self.run());
            Ok(())
        })
    }
}

/// A loaded model with the inputs it runs on.
pub struct ModelRun {
    /// The model.
    pub loaded: Box<dyn Loaded>,
    /// Its inputs.
    pub inputs: Vec<Named>,
}

impl Timeable for ModelRun {
    fn batch(&mut self, k: usize, r: usize, out: &mut Vec<f64>) -> Result<()> {
        let r = r.max(1);
        if let Some(samples) = self.loaded.timed_runs(&self.inputs, k * r) {
            let samples = samples?;
            anyhow::ensure!(
                samples.len() == k * r,
                "asked for {} timed runs, got {}",
                k * r,
                samples.len()
            );
            out.extend(samples.chunks(r).map(|c| c.iter().sum::<f64>() / r as f64));
            return Ok(());
        }
        timed_loop(k, r, out, || self.loaded.run(&self.inputs).map(drop))
    }
}

impl ModelRun {
    /// The bare loop the protocol's timing is checked against: `k` runs timed as a whole
    /// (one clock read, one stored sample) by the protocol's own batch code, so the two differ
    /// only by the protocol's per-sample clock reads and stores. Mean microseconds per run.
    /// (A separately compiled loop differed from the protocol's by -0.2% to +6% on a 1.2 µs
    /// model from one process to the next, more than the clock reads being measured.)
    pub fn bare_loop(&mut self, k: usize) -> Result<f64> {
        let mut one = Vec::with_capacity(1);
        self.batch(1, k.max(1), &mut one)?;
        Ok(one[0])
    }
}

/// Knobs of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Measuring time per model subject (the calibration workload comes on top).
    pub budget: Duration,
    /// Rounds to run even when the budget is spent.
    pub min_rounds: usize,
    /// Most time one subject may spend warming up.
    pub max_warmup: Duration,
    /// Warm-up ends when two consecutive batch medians differ by less than this fraction.
    pub stable_within: f64,
    /// Independent loads of each (case, converter, runtime), measured side by side in the
    /// same rounds and sharing its budget. A model's speed varies from one load to the next
    /// (another worker process, another memory layout, another kernel plan) by more than it
    /// varies within one load; comparisons resample loads as well as rounds, so that
    /// variation widens the interval instead of raising an alarm.
    #[serde(default = "one")]
    pub loads: usize,
    /// Passes over all cases, one after the other, each with fresh loads. Some runtimes'
    /// speed drifts over minutes (OpenVINO in bf16 here: ±10% from one minute to the next,
    /// the same in all loads of a pass); a baseline saved over several passes holds that
    /// drift, and comparisons resample it with the loads.
    #[serde(default = "one")]
    pub sessions: usize,
}

impl Protocol {
    /// The protocol with `budget` per subject and the default knobs.
    pub fn with_budget(budget: Duration) -> Protocol {
        Protocol {
            budget,
            min_rounds: 20,
            max_warmup: Duration::from_secs_f64((budget.as_secs_f64() * 0.5).clamp(0.05, 2.0)),
            stable_within: 0.05,
            loads: 3,
            sessions: 1,
        }
    }

    /// Time one batch of a subject should take: about 40 rounds per budget, 1 to 25 ms.
    fn batch_target(&self) -> Duration {
        Duration::from_secs_f64((self.budget.as_secs_f64() / 40.0).clamp(1e-3, 25e-3))
    }
}

fn one() -> usize {
    1
}

/// How a subject's warm-up went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// Warm-up batches run.
    pub batches: usize,
    /// Runs in them.
    pub runs: usize,
    /// Whether two consecutive batch medians agreed before the allowance ran out.
    pub stable: bool,
    /// Samples per batch in the timed rounds.
    pub batch_size: usize,
    /// Runs per sample: 1, or for runs so short that a clock read would weigh more than 0.2%
    /// of a sample, enough consecutive runs per sample to bring it under.
    #[serde(default = "one")]
    pub runs_per_sample: usize,
}

/// Everything measured of one subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Every timed run, in order (microseconds).
    pub samples: Vec<f64>,
    /// Fastest run of each round's batch (the round floor), aligned across the subjects of
    /// one measurement.
    pub rounds: Vec<f64>,
    /// The warm-up.
    pub warmup: Warmup,
}

impl Series {
    /// Half-sample mode of each round's batch (the round mode), aligned like `rounds`: every
    /// round appends one batch of `warmup.batch_size` samples. Computed on demand, outside the
    /// measurement loop, for the subjects whose comparisons use it.
    pub fn round_modes(&self) -> Vec<f64> {
        let mut batch = Vec::with_capacity(self.warmup.batch_size);
        self.samples
            .chunks(self.warmup.batch_size.max(1))
            .take(self.rounds.len())
            .map(|c| {
                batch.clear();
                batch.extend_from_slice(c);
                batch.sort_unstable_by(f64::total_cmp);
                half_sample_mode(&batch)
            })
            .collect()
    }
}

/// Share of a sample the clock read may take, as measured alone by [`clock_cost_us`]. Between
/// runs a read costs more than alone: with 0.5% here, the protocol's loop ran 0.7..3.1% slower
/// than a bare loop on a 1.2 µs model.
const CLOCK_SHARE: f64 = 0.002;

/// Runs per sample for runs of `per_run_us`: 1, or enough consecutive runs that one clock
/// read weighs at most [`CLOCK_SHARE`] of the sample.
pub fn runs_per_sample(clock_us: f64, per_run_us: f64) -> usize {
    ((clock_us / (CLOCK_SHARE * per_run_us.max(0.01))).ceil() as usize).clamp(1, 1_000)
}

fn warm_up(subject: &mut dyn Timeable, protocol: &Protocol, clock_us: f64) -> Result<Warmup> {
    let start = Instant::now();
    let mut scratch = Vec::new();
    subject.batch(1, 1, &mut scratch)?; // the first run pays lazy initialisation
    let mut estimate = scratch[0].max(0.01);
    let mut w = Warmup {
        batches: 1,
        runs: 1,
        ..Warmup::default()
    };
    let mut previous: Option<f64> = None;
    while w.batches < 50 && start.elapsed() < protocol.max_warmup {
        let k = ((2_000.0 / estimate).ceil() as usize).clamp(1, 100_000);
        scratch.clear();
        subject.batch(k, 1, &mut scratch)?;
        w.batches += 1;
        w.runs += k;
        let m = median(&scratch);
        estimate = m.max(0.01);
        if previous.is_some_and(|p| (m / p - 1.0).abs() < protocol.stable_within) {
            w.stable = true;
            break;
        }
        previous = Some(m);
    }
    let target = protocol.batch_target().as_secs_f64() * 1e6;
    w.runs_per_sample = runs_per_sample(clock_us, estimate);
    w.batch_size =
        ((target / (estimate * w.runs_per_sample as f64)).round() as usize).clamp(1, 1_000_000);
    Ok(w)
}

/// Runs the protocol over `subjects` (the first is usually the calibration workload). A
/// subject that fails drops out with its error; the others go on.
pub fn measure(
    subjects: &mut [&mut dyn Timeable],
    protocol: &Protocol,
    models: usize,
    stop: &dyn Fn() -> bool,
) -> Vec<Result<Series>> {
    let clock_us = clock_cost_us();
    let mut out: Vec<Result<Series>> = subjects
        .iter_mut()
        .map(|s| {
            warm_up(&mut **s, protocol, clock_us).map(|warmup| Series {
                warmup,
                ..Series::default()
            })
        })
        .collect();
    let n = subjects.len();
    let total = protocol.budget.mul_f64(models.max(1) as f64);
    let start = Instant::now();
    let mut scratch = Vec::new();
    let mut round = 0usize;
    while (start.elapsed() < total || round < protocol.min_rounds) && round < 100_000 && !stop() {
        for j in 0..n {
            let i = (round + j) % n;
            let Ok(series) = &mut out[i] else { continue };
            scratch.clear();
            let w = series.warmup;
            match subjects[i].batch(w.batch_size, w.runs_per_sample, &mut scratch) {
                Ok(()) if scratch.is_empty() => {
                    out[i] = Err(anyhow::anyhow!("a batch returned no samples"))
                }
                Ok(()) => {
                    series
                        .rounds
                        .push(scratch.iter().copied().fold(f64::INFINITY, f64::min));
                    series.samples.extend_from_slice(&scratch);
                }
                Err(e) => out[i] = Err(e),
            }
        }
        round += 1;
        if out.iter().all(Result::is_err) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subject whose runs take a fixed time (a sleep-free spin), to check the protocol's
    /// bookkeeping, not timing.
    struct Spin(Duration, usize);

    impl Timeable for Spin {
        fn batch(&mut self, k: usize, _r: usize, out: &mut Vec<f64>) -> Result<()> {
            for _ in 0..k {
                let t = Instant::now();
                while t.elapsed() < self.0 {}
                self.1 += 1;
                out.push(t.elapsed().as_secs_f64() * 1e6);
            }
            Ok(())
        }
    }

    struct Broken;

    impl Timeable for Broken {
        fn batch(&mut self, _: usize, _: usize, _: &mut Vec<f64>) -> Result<()> {
            anyhow::bail!("refused")
        }
    }

    #[test]
    fn rounds_are_aligned_and_every_sample_is_kept() {
        let mut a = Spin(Duration::from_micros(20), 0);
        let mut b = Spin(Duration::from_micros(60), 0);
        let p = Protocol::with_budget(Duration::from_millis(30));
        let mut subjects: Vec<&mut dyn Timeable> = vec![&mut a, &mut b];
        let out = measure(&mut subjects, &p, 2, &|| false);
        let (sa, sb) = (out[0].as_ref().unwrap(), out[1].as_ref().unwrap());
        assert_eq!(sa.rounds.len(), sb.rounds.len());
        assert!(sa.rounds.len() >= p.min_rounds);
        assert_eq!(sa.samples.len(), sa.rounds.len() * sa.warmup.batch_size);
        assert_eq!(a.1, sa.warmup.runs + sa.samples.len());
        // each sample lasted at least the spin
        assert!(sb.samples.iter().all(|&us| us >= 60.0));
        // one mode per round, never below that round's floor
        let modes = sb.round_modes();
        assert_eq!(modes.len(), sb.rounds.len());
        assert!(modes.iter().zip(&sb.rounds).all(|(m, f)| m >= f));
    }

    #[test]
    fn a_failing_subject_drops_out_and_the_others_go_on() {
        let mut a = Spin(Duration::from_micros(10), 0);
        let mut b = Broken;
        let p = Protocol::with_budget(Duration::from_millis(5));
        let mut subjects: Vec<&mut dyn Timeable> = vec![&mut a, &mut b];
        let out = measure(&mut subjects, &p, 2, &|| false);
        assert!(out[0].is_ok());
        assert_eq!(out[1].as_ref().unwrap_err().to_string(), "refused");
    }
}
