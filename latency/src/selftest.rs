//! The self-test of `harness perf`: this machine's false-alarm rate and power, and the
//! timing overhead of the protocol against a bare loop.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

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
pub fn self_test(options: &PerfOptions, threshold_pct: f64, rounds: usize) -> Result<ExitCode> {
    let mut options = options.clone();
    options.converters = vec![IDENTITY.into()];
    options.runtimes = vec![TRACT.into()];
    let budget_s = options.protocol.budget.as_secs_f64();
    let loads = options.protocol.loads;
    let cases = super::select_cases(&options)?;
    // The smallest model is where the timing overhead weighs most; the false-alarm and power
    // rounds run on the reference CNN1D (`cnn1d`) when the corpus has it (the slowdown wrapper's own clock
    // reads would add more than 5% to a run of a microsecond), else on the smallest model.
    let (small, small_dir) = smallest(&super::named_cases(&options)?)?;
    let (case, _) = if options.cases.is_empty() {
        cases
            .iter()
            .find(|(n, _)| n == "cnn1d")
            .cloned()
            .unwrap_or((small.clone(), small_dir.clone()))
    } else {
        cases[0].clone()
    };
    let tmp = tempfile::tempdir()?;
    let base = tmp.path().join("base.json");
    let exe = std::env::current_exe()?;
    let run = |extra: &[String]| -> Result<(i32, serde_json::Value)> {
        let report = tmp.path().join("r");
        let out = Command::new(&exe)
            .args([
                "perf",
                "--converter",
                IDENTITY,
                "--runtime",
                TRACT,
                "--case",
                &case,
            ])
            .arg("--corpus")
            .arg(&options.corpus)
            .args([
                "--budget",
                &budget_s.to_string(),
                "--threshold",
                &threshold_pct.to_string(),
                "--loads",
                &loads.to_string(),
            ])
            .arg("--report")
            .arg(&report)
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
            serde_json::from_slice(&std::fs::read(report.join("perf.json"))?)?;
        Ok((code, json))
    };
    eprintln!(
        "self-test on {case} (identity on tract), budget {} s per run, {} rounds",
        budget_s, rounds
    );
    run(&["--save".into(), base.display().to_string()])?;
    let levels = [0.0, 5.0, 10.0, 20.0];
    let mut flagged = [0usize; 4];
    let mut strict = [0usize; 4];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let threshold = threshold_pct / 100.0;
    for round in 0..rounds {
        for (i, level) in levels.iter().enumerate() {
            let mut extra = vec!["--baseline".into(), base.display().to_string()];
            if *level > 0.0 {
                extra.extend(["--slowdown".into(), level.to_string()]);
            }
            let (code, json) = run(&extra)?;
            let entry = &json["comparison"]["entries"][0];
            let low = entry["ratio"]["low"].as_f64().unwrap_or(f64::NAN);
            let est = entry["ratio"]["estimate"].as_f64().unwrap_or(f64::NAN);
            flagged[i] += usize::from(code == 1);
            strict[i] += usize::from(low > 1.0 + threshold);
            ratios[i].push(est);
            eprintln!(
                "round {:>2}  +{level:>2}%  ratio {est:.3} (CI low {low:.3})  {}",
                round + 1,
                if code == 1 {
                    "REGRESSION"
                } else {
                    "no regression"
                }
            );
        }
    }
    let overhead = timing_overhead(&small_dir, &options)?;
    println!(
        "\nself-test on {case}: {} rounds, budget {} s per run, threshold {}%",
        rounds, budget_s, threshold_pct
    );
    println!("| build | flagged (CI above 1 + threshold/2, used) | flagged (CI above 1 + threshold) | median ratio |");
    println!("|---|---|---|---|");
    for (i, level) in levels.iter().enumerate() {
        println!(
            "| {} | {}/{} | {}/{} | {:.3} |",
            if *level == 0.0 {
                "same build (false alarms)".to_string()
            } else {
                format!("+{level}% busy work (power)")
            },
            flagged[i],
            rounds,
            strict[i],
            rounds,
            median(&ratios[i])
        );
    }
    println!(
        "timing overhead on {small} (smallest corpus model): harness loop {:+.2}% wall time per run vs a bare loop; samples' mean {:+.2}% vs the bare loop's mean ({} rounds)",
        overhead.0 * 100.0,
        overhead.1 * 100.0,
        OVERHEAD_ROUNDS
    );
    Ok(ExitCode::SUCCESS)
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
pub fn timing_overhead(dir: &Path, options: &PerfOptions) -> Result<(f64, f64)> {
    let configs = super::configs(options)?;
    let config = configs.first().context("no configuration")?;
    let (model, inputs) = super::read_case(dir)?;
    let (loaded, _work) = super::load(config, &model, &inputs, options.timeout)?;
    let mut run = ModelRun { loaded, inputs };
    let per_run = run.bare_loop(200)?;
    // The protocol's own choice of runs per sample for this model.
    let r = measure::runs_per_sample(measure::clock_cost_us(), per_run);
    let k = ((5_000.0 / (per_run.max(0.01) * r as f64)) as usize).clamp(10, 200_000);
    eprintln!("overhead: {per_run:.3} µs per run, {r} run(s) per sample, {k} samples per loop");
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
