//! Baselines: a perf run saved as `reports/baselines/NAME.json`, and the comparison of a new
//! run with one.
//!
//! For each (case, converter, runtime) the comparison bootstraps a 95% interval of the ratio
//! (now / baseline) of the medians of up to three views of the rounds (see
//! [`super::measure`]); a view shows a regression when its whole interval lies above
//! `1 + margin`, an improvement when it lies below the reciprocal. A change is reported only
//! when every view shows it; a code slowdown moves them all. Each view is there because the
//! others alone raised false alarms on this project's shared machine:
//!
//! - **Calibrated floors**: round floors divided by the calibration workload's round floors of
//!   the same rounds, which cancels the machine's speed (and makes runs on another CPU
//!   comparable: there it is the only view).
//! - **Raw floors** (microseconds), when the baseline was measured on this machine's CPU:
//!   they guard the calibration itself. In one process its floors ran 16% slower than in
//!   fourteen others (5.84 against 5.03..5.06 µs) while every model's floors were as usual,
//!   and every calibrated ratio of that run moved with it.
//! - **Round modes** (half-sample mode of each batch, calibrated), for runtimes that time their
//!   runs in a worker (onnxruntime, OpenVINO): floors alone follow the share of runs that
//!   reach an engine's fast mode. OpenVINO's bf16 M5 looked 15 to 34% slower than its
//!   baseline in 9 of 30 comparisons of an unchanged build here, and modes flagged none of
//!   them; modes alone follow interference that slows most runs (on a baseline saved under
//!   load they flagged OpenVINO's CNN1D), and floors flagged none of those. Runtimes timed in
//!   the harness's process (tract) have no mode view: their floors flagged nothing in the
//!   same comparisons, and their modes are unstable (tract's CNN1D runs in two modes).
//!
//! **Timings compare only on the CPU model that measured the baseline.** The calibration does
//! not carry across CPU models: against a baseline saved on an Intel Xeon, an AMD EPYC ran
//! the calibration workload about 3.7 times slower relative to the models, so every entry
//! came out as an "improvement" (calibrated 0.12..0.59) while raw medians moved 0.43..1.37
//! times, OpenVINO's M5 37% slower among them. On another CPU an entry is therefore *not
//! comparable here* (no change, a note with the commands that do compare: an A/B run or a
//! local baseline), unless both runs counted instructions under the same SIMD extensions:
//! counts are deterministic and follow the code, not the clock, so they decide there (see
//! [`decide_counts`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::stats::{agree, decide, ratio_of_medians_nested, Change, Interval, RESAMPLES};
use super::{ConfigPerf, PerfReport, SCHEMA};
use harness::fsutil::write_atomically;

/// Where baseline NAME lives: `DIR/NAME.json`; a NAME that is a path (has a `/` or ends in
/// `.json`) is taken as it is.
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    if name.contains('/') || name.ends_with(".json") {
        PathBuf::from(name)
    } else {
        dir.join(format!("{name}.json"))
    }
}

/// Writes `report` to `path` atomically (samples are not part of it, round medians are).
pub fn save(report: &PerfReport, path: &Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    write_atomically(path, &json).with_context(|| format!("{}: cannot write", path.display()))
}

/// A baseline that could not be read (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct BadBaseline {
    /// The file.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The baseline reader on arbitrary bytes, for fuzzing: any outcome but a panic is fine.
pub fn read_any(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let path = dir.path().join("baseline.json");
    if std::fs::write(&path, data).is_ok() {
        let _ = load(&path);
    }
}

/// Reads a baseline; every problem names the file.
pub fn load(path: &Path) -> std::result::Result<PerfReport, BadBaseline> {
    let bad = |problem: String| BadBaseline {
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        bad(if e.kind() == std::io::ErrorKind::NotFound {
            "no such baseline (save one with `cargo xtask perf --save NAME`)".into()
        } else {
            format!("cannot read: {e}")
        })
    })?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_u64()) {
        Some(s) if s == SCHEMA as u64 => {}
        Some(s) => {
            return Err(bad(format!(
                "baseline layout {s}, this harness reads {SCHEMA}: save it again with `cargo \
                 xtask perf --save NAME` (same cases and converters)"
            )))
        }
        None => return Err(bad("not a perf baseline (no \"schema\" field)".into())),
    }
    let report: PerfReport =
        serde_json::from_value(value).map_err(|e| bad(format!("malformed baseline: {e}")))?;
    for case in &report.cases {
        for r in &case.results {
            if r.calibrated_rounds
                .iter()
                .chain(&r.calibrated_modes)
                .any(|x| !x.is_finite() || *x <= 0.0)
            {
                return Err(bad(format!(
                    "{}: calibrated rounds must be positive numbers",
                    r.key(&case.case)
                )));
            }
        }
    }
    Ok(report)
}

/// The comparison of one (case, converter, runtime) with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Case.
    pub case: String,
    /// Converter.
    pub converter: String,
    /// Runtime.
    pub runtime: String,
    /// The decision; `None` when there was nothing to compare (see `note`).
    pub change: Option<Change>,
    /// Now / baseline in calibrated units (round floors), with its 95% interval.
    pub ratio: Option<Interval>,
    /// The same for the round modes, for runtimes that time their runs in a worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_ratio: Option<Interval>,
    /// The same for the round floors in microseconds, when the baseline was measured on this
    /// machine's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_floor_ratio: Option<Interval>,
    /// Now / baseline in raw microseconds (medians), for reference.
    pub raw_ratio: Option<f64>,
    /// Median latency in the baseline, microseconds.
    pub base_p50_us: Option<f64>,
    /// Median latency now, microseconds.
    pub now_p50_us: Option<f64>,
    /// Instructions per run now / in the baseline (callgrind), when both were counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions_ratio: Option<f64>,
    /// Measured on both sides, but the baseline on another CPU model and without comparable
    /// instruction counts: no decision is possible here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_comparable: bool,
    /// Why it could not be compared, or why a change seen by some views is not reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The command that measures this again against the same baseline.
    pub command: String,
}

/// A whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The baseline file.
    pub baseline: String,
    /// Slowdown that must be caught (fraction).
    pub threshold: f64,
    /// The interval must lie entirely above `1 + margin` to flag a regression.
    pub margin: f64,
    /// CPU the baseline was measured on.
    pub baseline_cpu: String,
    /// Whether that is this machine's CPU model and count: timings compare only then.
    pub same_machine: bool,
    /// Whether the instruction counts of both runs were made under the same SIMD extensions
    /// (so the same kernels ran): counts compare only then.
    #[serde(default)]
    pub counts_comparable: bool,
    /// The "baseline" is another build measured side by side with this one, in the same
    /// rounds of this run (`--against`, see [`super::ab`]), not a saved file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub side_by_side: bool,
    /// One per (case, converter, runtime) measured now or in the baseline.
    pub entries: Vec<Entry>,
}

impl Comparison {
    /// Entries flagged as regressions, or measured in the baseline and failing now.
    pub fn regressions(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| {
            e.change == Some(Change::Regression)
                || (e.change.is_none() && e.base_p50_us.is_some() && e.now_p50_us.is_none())
        })
    }

    /// Entries flagged as improvements.
    pub fn improvements(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.change == Some(Change::Improvement))
    }

    /// Entries that could not be decided because the baseline came from another CPU model.
    pub fn not_comparable(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.not_comparable)
    }
}

/// The regression margin for a threshold: half of it (docs/PERFORMANCE.md, "Comparisons"): an interval entirely
/// above `1 + threshold / 2` is clear evidence of a slowdown, and a slowdown of the full
/// threshold clears it whenever the interval is narrower than ± threshold / 2.
pub fn margin_for(threshold: f64) -> f64 {
    threshold / 2.0
}

/// Compares `now` with `base`. `baseline_arg` is how the user named the baseline, for the
/// reproduction commands.
pub fn compare(
    now: &PerfReport,
    base: &PerfReport,
    base_path: &Path,
    baseline_arg: &str,
    threshold: f64,
    margin: f64,
) -> Comparison {
    let mut entries = Vec::new();
    let same_machine = base.environment.cpu == now.environment.cpu
        && base.environment.cpus == now.environment.cpus;
    let counts_comparable = !now.counted_simd.is_empty() && now.counted_simd == base.counted_simd;
    for case in &now.cases {
        for r in &case.results {
            let old = base
                .cases
                .iter()
                .find(|c| c.case == case.case)
                .and_then(|c| {
                    c.results
                        .iter()
                        .find(|b| b.converter == r.converter && b.runtime == r.runtime)
                });
            let mut e = Entry {
                case: case.case.clone(),
                converter: r.converter.clone(),
                runtime: r.runtime.clone(),
                change: None,
                ratio: None,
                mode_ratio: None,
                raw_floor_ratio: None,
                raw_ratio: None,
                base_p50_us: old.and_then(|o| o.latency_us.map(|l| l.p50)),
                now_p50_us: r.latency_us.map(|l| l.p50),
                instructions_ratio: None,
                not_comparable: false,
                note: None,
                command: reproduce_command(&case.case, &r.converter, &r.runtime, baseline_arg),
            };
            match old {
                None => e.note = Some("not in the baseline".into()),
                Some(o) if o.calibrated_rounds.is_empty() => {
                    e.note = Some("not measured in the baseline".into())
                }
                Some(_) if r.calibrated_rounds.is_empty() => {
                    e.note = Some(format!(
                        "not measured now: {}",
                        r.error.as_deref().unwrap_or("no samples")
                    ))
                }
                Some(o) => {
                    decide_views(&mut e, r, o, same_machine, margin);
                    if let (Some(n), Some(b)) = (r.instructions, o.instructions) {
                        e.instructions_ratio = Some(n as f64 / b.max(1) as f64);
                    }
                    if !same_machine {
                        across_cpus(&mut e, counts_comparable, margin, &base.environment.cpu);
                    }
                }
            }
            entries.push(e);
        }
    }
    Comparison {
        baseline: base_path.display().to_string(),
        threshold,
        margin,
        baseline_cpu: format!("{} ({} CPUs)", base.environment.cpu, base.environment.cpus),
        same_machine,
        counts_comparable,
        side_by_side: false,
        entries,
    }
}

/// The decision for an entry whose baseline was measured on another CPU model (`base_cpu`):
/// its timings say nothing there (see the module doc), so the change comes from the
/// instruction counts when they are `comparable`, and otherwise there is none and the note
/// says how to compare instead. The timing intervals stay in the entry, for reading.
fn across_cpus(e: &mut Entry, comparable: bool, margin: f64, base_cpu: &str) {
    match e.instructions_ratio.filter(|_| comparable) {
        Some(ratio) => {
            e.change = Some(decide_counts(ratio, margin));
            e.note = Some(format!(
                "baseline from another CPU ({base_cpu}): decided by instruction counts ({ratio:.3}x); timings are not comparable across CPU models"
            ));
        }
        None => {
            e.change = None;
            e.not_comparable = true;
            e.note = Some(format!(
                "not comparable here: the baseline was measured on {base_cpu}, and timings do not carry across CPU models; compare builds side by side with `cargo xtask perf --against REV`, save a baseline on this machine with `cargo xtask perf --save NAME`, or count instructions on both (`--instructions`)"
            ));
        }
    }
}

/// The decision on an instruction-count ratio (now / baseline): counts repeat within about 1%
/// (tract's plan depends on hash order), so a ratio beyond `1 + margin` (or below its
/// reciprocal) is a change in the code that ran.
pub fn decide_counts(ratio: f64, margin: f64) -> Change {
    if ratio > 1.0 + margin {
        Change::Regression
    } else if ratio < 1.0 / (1.0 + margin) {
        Change::Improvement
    } else {
        Change::Unchanged
    }
}

/// The command that measures one (case, converter, runtime) again against the baseline the
/// user named `baseline_arg`, printed with a regression so it can be pasted as it is.
fn reproduce_command(case: &str, converter: &str, runtime: &str, baseline_arg: &str) -> String {
    // A converter with a runtime of its own (OpenVINO's IR) takes no --runtime.
    let runtime_arg = if harness::runtime::NAMES.contains(&runtime) {
        format!(" --runtime {runtime}")
    } else {
        String::new()
    };
    format!(
        "cargo xtask perf --case {case} --converter {converter}{runtime_arg} --baseline {baseline_arg}"
    )
}

/// Fills `e` from the views of `now` against `old` (both measured): each view's interval,
/// and the change only when all the views agree on it (see the module doc for why each view
/// is there); when they disagree, the note says what each saw. The raw floors count only
/// on the `same_machine`, the modes only when both sides recorded them.
fn decide_views(
    e: &mut Entry,
    now: &ConfigPerf,
    old: &ConfigPerf,
    same_machine: bool,
    margin: f64,
) {
    // A fixed seed per key: the same data always get the same decision.
    let seed = e.command.bytes().fold(0u64, |h, b| {
        h.wrapping_mul(0x100_0000_01b3).wrapping_add(b as u64)
    });
    let mut views = Vec::new();
    let mut view = |name, now_loads: Vec<&[f64]>, old_loads: Vec<&[f64]>, salt: u64| {
        let ci = ratio_of_medians_nested(&now_loads, &old_loads, 0.95, RESAMPLES, seed ^ salt);
        if let Some(ci) = &ci {
            views.push((name, decide(ci, margin)));
        }
        ci
    };
    e.ratio = view(
        "calibrated floors",
        now.calibrated_loads(),
        old.calibrated_loads(),
        0,
    );
    if same_machine {
        e.raw_floor_ratio = view("raw floors", now.raw_loads(), old.raw_loads(), 0x7261_7700);
    }
    if !now.calibrated_modes.is_empty() && !old.calibrated_modes.is_empty() {
        e.mode_ratio = view(
            "round modes",
            now.calibrated_mode_loads(),
            old.calibrated_mode_loads(),
            0x6d6f_6465,
        );
    }
    e.change = views.iter().map(|v| v.1).reduce(agree);
    if views.iter().any(|v| v.1 != views[0].1) {
        let said: Vec<String> = views
            .iter()
            .map(|(view, change)| format!("{view}: {}", change.word()))
            .collect();
        e.note = Some(format!("{}; not reported", said.join(", ")));
    }
    e.raw_ratio = match (e.now_p50_us, e.base_p50_us) {
        (Some(n), Some(b)) if b > 0.0 => Some(n / b),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> PerfReport {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/baselines/main.json");
        load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_committed_baseline_against_itself_is_unchanged_everywhere() {
        let base = committed();
        let c = compare(
            &base,
            &base,
            Path::new("main.json"),
            "main",
            0.1,
            margin_for(0.1),
        );
        assert!(!c.entries.is_empty());
        for e in &c.entries {
            assert_eq!(e.change, Some(Change::Unchanged), "{e:?}");
            assert_eq!(e.ratio.map(|r| r.estimate), Some(1.0));
            if let Some(m) = e.mode_ratio {
                assert_eq!(m.estimate, 1.0);
            }
        }
    }

    #[test]
    fn a_change_is_reported_only_when_every_view_shows_it() {
        // Three loads of 20 rounds, ±2% within each.
        let rounds = |level: f64, seed: usize| -> Vec<f64> {
            (0..60)
                .map(|i| level * (0.98 + 0.01 * ((i * 7 + seed) % 5) as f64))
                .collect()
        };
        let mut base = committed();
        base.cases.truncate(1);
        base.cases[0].results.truncate(1);
        let r = &mut base.cases[0].results[0];
        r.load_rounds = vec![20, 20, 20];
        r.calibrated_rounds = rounds(1.0, 1);
        r.rounds_us = rounds(5.0, 1);
        r.calibrated_modes = rounds(1.8, 2);
        // now: calibrated floors, raw floors and modes scaled by these factors
        let with = |floors: f64, raw: f64, modes: Option<f64>, cpu: &str| {
            let mut now = base.clone();
            now.environment.cpu = cpu.into();
            let r = &mut now.cases[0].results[0];
            r.calibrated_rounds = rounds(floors, 3);
            r.rounds_us = rounds(5.0 * raw, 3);
            r.calibrated_modes = modes.map(|m| rounds(1.8 * m, 4)).unwrap_or_default();
            compare(&now, &base, Path::new("b.json"), "b", 0.1, margin_for(0.1))
                .entries
                .remove(0)
        };
        let here = base.environment.cpu.clone();
        // Every view 30% slower (or faster): reported, with every interval.
        let e = with(1.3, 1.3, Some(1.3), &here);
        assert_eq!(e.change, Some(Change::Regression), "{e:?}");
        assert!(e.note.is_none() && e.raw_floor_ratio.is_some() && e.mode_ratio.is_some());
        assert_eq!(
            with(0.7, 0.7, Some(0.7), &here).change,
            Some(Change::Improvement)
        );
        // The floors 30% faster, the modes unchanged: the fast mode's share moved, not the
        // model; not reported, and the entry says why.
        let e = with(0.7, 0.7, Some(1.0), &here);
        assert_eq!(e.change, Some(Change::Unchanged), "{e:?}");
        assert!(e.ratio.unwrap().high < 0.8, "{e:?}");
        let note = e.note.unwrap();
        assert!(
            note.contains("calibrated floors: improvement")
                && note.contains("round modes: unchanged"),
            "{note}"
        );
        // The modes alone 30% slower: not reported either.
        assert_eq!(
            with(1.0, 1.0, Some(1.3), &here).change,
            Some(Change::Unchanged)
        );
        // The calibration ran 16% slow now (calibrated ratios up, raw floors as before): not
        // reported on this machine ...
        let e = with(1.16, 1.0, None, &here);
        assert_eq!(e.change, Some(Change::Unchanged), "{e:?}");
        assert!(e.note.unwrap().contains("raw floors: unchanged"));
        // ... and on another CPU no timing decides: not comparable, whatever they show.
        for factor in [0.3, 1.0, 1.16, 3.0] {
            let e = with(factor, factor, None, "another CPU");
            assert_eq!(e.change, None, "{e:?}");
            assert!(e.not_comparable && e.raw_floor_ratio.is_none(), "{e:?}");
            assert!(e.note.unwrap().contains("cargo xtask perf --against REV"));
        }
        // Modes recorded on one side only (a runtime timed in-process now): floors decide.
        let e = with(0.7, 0.7, None, &here);
        assert_eq!(e.change, Some(Change::Improvement));
        assert!(e.mode_ratio.is_none());
    }

    #[test]
    fn across_cpus_only_instruction_counts_made_under_the_same_simd_decide() {
        let mut base = committed();
        base.cases.truncate(1);
        base.cases[0].results.truncate(1);
        base.environment.cpu = "Intel(R) Xeon(R) Processor".into();
        base.counted_simd = vec!["avx".into(), "avx2".into(), "fma".into()];
        base.cases[0].results[0].instructions = Some(1_000_000);
        let with = |count: Option<u64>, simd: &[&str]| {
            let mut now = base.clone();
            now.environment.cpu = "AMD EPYC".into();
            now.counted_simd = simd.iter().map(|s| s.to_string()).collect();
            // timings 40% faster here: the CPU, not the code
            for x in &mut now.cases[0].results[0].calibrated_rounds {
                *x *= 0.6;
            }
            now.cases[0].results[0].instructions = count;
            compare(&now, &base, Path::new("b.json"), "b", 0.1, margin_for(0.1))
        };
        let same = ["avx", "avx2", "fma"];
        let c = with(Some(1_004_000), &same);
        assert!(!c.same_machine && c.counts_comparable);
        let e = &c.entries[0];
        assert_eq!(e.change, Some(Change::Unchanged), "{e:?}");
        assert!(!e.not_comparable && e.note.as_ref().unwrap().contains("instruction counts"));
        assert_eq!(c.not_comparable().count(), 0);
        let e = &with(Some(1_120_000), &same).entries[0];
        assert_eq!(e.change, Some(Change::Regression), "{e:?}");
        assert_eq!(e.instructions_ratio, Some(1.12));
        assert_eq!(
            with(Some(850_000), &same).entries[0].change,
            Some(Change::Improvement)
        );
        // other kernels (AVX-512 on one side) or no count now: nothing decides
        for c in [
            with(Some(1_120_000), &["avx", "avx2", "avx512f", "fma"]),
            with(None, &same),
        ] {
            assert_eq!(c.entries[0].change, None, "{:?}", c.entries[0]);
            assert_eq!(c.not_comparable().count(), 1);
            assert_eq!(c.regressions().count() + c.improvements().count(), 0);
        }
    }
}
