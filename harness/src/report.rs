//! What happened, for people and machines: terminal summary, report.json, report.md, junit.xml,
//! report.html.

mod coverage;
mod html;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomically;
use crate::ledger::Ledger;
use crate::results::{CaseResult, Environment, Tool, Verdict};

/// Where the time of external conversions and runs went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerTime {
    /// Worker calls.
    pub calls: u64,
    /// Seconds the libraries spent serving them (inside the worker).
    pub engine_s: f64,
    /// Seconds the harness's threads spent on the results (all stages, summed over threads).
    pub results_s: f64,
    /// Share of `results_s` spent outside the libraries' own calls.
    pub outside_share: f64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The tool.
    pub tool: Tool,
    /// Versions and machine.
    pub environment: Environment,
    /// The options of the run.
    pub options: serde_json::Value,
    /// Count per verdict, plus `results`.
    pub summary: BTreeMap<String, usize>,
    /// Count of results per coverage class.
    pub coverage: BTreeMap<String, usize>,
    /// Wall time of the run in seconds.
    pub duration_s: f64,
    /// Ledger entries whose failures disappeared; each fails the run.
    #[serde(default)]
    pub unexpected_passes: Vec<String>,
    /// Time in external workers (OpenVINO, onnxruntime), when any ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<WorkerTime>,
    /// Why the run stopped before every case ran, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<String>,
    /// Every result, in case order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// Builds the summary and coverage from the results.
    pub fn new(
        tool: Tool,
        environment: Environment,
        options: serde_json::Value,
        results: Vec<CaseResult>,
        duration_s: f64,
    ) -> Report {
        let mut summary: BTreeMap<String, usize> = Verdict::ALL
            .iter()
            .map(|v| (v.name().to_string(), 0))
            .collect();
        summary.insert("results".into(), results.len());
        summary.insert(
            "expected".into(),
            results
                .iter()
                .filter(|r| r.verdict != Verdict::Pass && r.expected.is_some())
                .count(),
        );
        let mut coverage = BTreeMap::new();
        for r in &results {
            *summary.entry(r.verdict.name().into()).or_default() += 1;
            for c in &r.classes {
                *coverage.entry(c.clone()).or_default() += 1;
            }
        }
        Report {
            tool,
            environment,
            options,
            summary,
            coverage,
            duration_s,
            unexpected_passes: Vec::new(),
            workers: None,
            stopped_early: None,
            results,
        }
    }

    /// True when every result passed or failed as expected, and no expected failure passed.
    pub fn all_pass(&self) -> bool {
        self.results.iter().all(CaseResult::ok) && self.unexpected_passes.is_empty()
    }

    /// Results that did not pass and are not expected to fail.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.results.iter().filter(|r| !r.ok())
    }

    /// Reads a report.json.
    pub fn load(path: &Path) -> Result<Report> {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a report: {e}", path.display()))
    }

    /// Merges the reports of shards of one run into the report of the whole run: results in
    /// case order (test-case directories by id, then generated cases by index), summary and
    /// coverage recomputed. Expected-failure marks are dropped; apply the ledger again.
    pub fn merge(mut parts: Vec<Report>) -> Result<Report> {
        anyhow::ensure!(!parts.is_empty(), "nothing to merge");
        let first = parts.remove(0);
        let mut results = first.results;
        let mut duration_s = first.duration_s;
        let mut environment = first.environment;
        for p in parts {
            results.extend(p.results);
            duration_s = duration_s.max(p.duration_s);
            environment.converters.extend(p.environment.converters);
            environment.runtimes.extend(p.environment.runtimes);
        }
        results.sort_by_key(|r| r.origin.sort_key(&r.case));
        for r in &mut results {
            r.expected = None;
        }
        Ok(Report::new(
            first.tool,
            environment,
            first.options,
            results,
            duration_s,
        ))
    }

    /// Applies an expected-failure ledger: marks expected failures and records unexpected passes.
    pub fn apply_ledger(&mut self, ledger: &Ledger) {
        // Judged as on the CPU the results came from (a merged or rebuilt report's may be
        // another machine's); a report that names no SIMD extensions keeps the ledger's.
        self.unexpected_passes = if self.environment.simd.is_empty() {
            ledger.apply(&mut self.results)
        } else {
            ledger
                .on_cpu(&self.environment.simd)
                .apply(&mut self.results)
        };
        let expected = self
            .results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass && r.expected.is_some())
            .count();
        self.summary.insert("expected".into(), expected);
    }

    /// Writes report.json, report.md, junit.xml and report.html into `dir`, each atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        write_atomically(&dir.join("report.json"), &serde_json::to_vec_pretty(self)?)?;
        write_atomically(&dir.join("report.md"), self.markdown().as_bytes())?;
        write_atomically(&dir.join("junit.xml"), self.junit().as_bytes())?;
        write_atomically(&dir.join("report.html"), self.html(dir).as_bytes())?;
        Ok(())
    }

    /// Counts per (converter/runtime, verdict).
    fn table(&self) -> (Vec<String>, BTreeMap<(String, Verdict), usize>) {
        let mut columns: Vec<String> = Vec::new();
        let mut counts = BTreeMap::new();
        for r in &self.results {
            let col = format!("{} on {}", r.converter, r.runtime);
            if !columns.contains(&col) {
                columns.push(col.clone());
            }
            *counts.entry((col, r.verdict)).or_default() += 1;
        }
        (columns, counts)
    }

    /// The worst results: failures first, then the closest to their tolerance.
    pub fn worst(&self, n: usize) -> Vec<&CaseResult> {
        let mut v: Vec<&CaseResult> = self.results.iter().collect();
        v.sort_by(|a, b| {
            (!b.ok())
                .cmp(&!a.ok())
                .then((b.verdict != Verdict::Pass).cmp(&(a.verdict != Verdict::Pass)))
                .then(
                    b.worst_ratio
                        .unwrap_or(0.0)
                        .total_cmp(&a.worst_ratio.unwrap_or(0.0)),
                )
        });
        v.truncate(n);
        v
    }

    /// The terminal summary.
    pub fn terminal(&self) -> String {
        let (columns, counts) = self.table();
        let mut s = String::new();
        let width = columns.iter().map(String::len).max().unwrap_or(10).max(10);
        let _ = write!(s, "{:<18}", "verdict");
        for c in &columns {
            let _ = write!(s, " {c:>width$}");
        }
        s.push('\n');
        for v in Verdict::ALL {
            if columns
                .iter()
                .all(|c| !counts.contains_key(&(c.clone(), v)))
            {
                continue;
            }
            let _ = write!(s, "{:<18}", v.name());
            for c in &columns {
                let _ = write!(
                    s,
                    " {:>width$}",
                    counts.get(&(c.clone(), v)).copied().unwrap_or(0)
                );
            }
            s.push('\n');
        }
        let worst = self.worst(5);
        if !worst.is_empty() {
            s.push_str("\nworst results:\n");
            for r in worst {
                let _ = writeln!(
                    s,
                    "  {:<14} {:<22} {:<16} err/tol {:>9}  {}",
                    r.case,
                    r.converter,
                    if r.verdict != Verdict::Pass && r.expected.is_some() {
                        format!("{} (expected)", r.verdict.name())
                    } else {
                        r.verdict.name().to_string()
                    },
                    r.worst_ratio
                        .map(|x| format!("{x:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    one_line(r.message.as_deref().unwrap_or(""), 90)
                );
            }
        }
        for u in &self.unexpected_passes {
            let _ = writeln!(s, "\n{u}");
        }
        if let Some(why) = &self.stopped_early {
            let _ = writeln!(
                s,
                "\nstopped early: {why}; the report covers the cases that ran"
            );
        }
        let parallel_only: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.in_parallel.is_some())
            .map(|r| format!("{} {}", r.case, r.converter))
            .collect();
        if !parallel_only.is_empty() {
            let _ = writeln!(
                s,
                "\nnot reproduced alone: {} result(s) timed out or lost their worker beside other \
                 cases but completed alone in a fresh worker (the verdicts shown are the ones run \
                 alone; field in_parallel): {}",
                parallel_only.len(),
                one_line(&parallel_only.join(", "), 200)
            );
        }
        let pack_only: Vec<String> = self
            .results
            .iter()
            .filter(|r| r.in_pack.is_some())
            .map(|r| format!("{} {}", r.case, r.converter))
            .collect();
        if !pack_only.is_empty() {
            let _ = writeln!(
                s,
                "\ndiffer packed and alone: {} result(s) got another verdict merged with other \
                 cases into one model than alone (the verdicts shown are the ones run alone; \
                 field in_pack): {}",
                pack_only.len(),
                one_line(&pack_only.join(", "), 200)
            );
        }
        if let Some(w) = &self.workers {
            let _ = writeln!(
                s,
                "\nexternal workers: {} calls, {:.1} s in the libraries of {:.1} s spent on results ({:.0}% outside them)",
                w.calls,
                w.engine_s,
                w.results_s,
                100.0 * w.outside_share
            );
        }
        let n = self.results.len();
        // A report rebuilt from a results log has no wall time of its own.
        let timing = if self.duration_s > 0.0 {
            format!(
                " in {:.1} s ({:.0} results/s)",
                self.duration_s,
                n as f64 / self.duration_s
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "\n{n} results{timing}, {} failing, {} expected failures (corpus/known-failures.toml)",
            self.failures().count(),
            self.summary.get("expected").copied().unwrap_or(0)
        );
        s
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Conformance report\n\n");
        let _ = writeln!(
            s,
            "{} {} · {} results in {:.1} s · {}\n",
            self.tool.name,
            self.tool.version,
            self.results.len(),
            self.duration_s,
            self.environment.cpu
        );
        s.push_str(&self.verdicts_markdown());
        s.push_str("\n## Versions\n\n");
        for (k, v) in self
            .environment
            .converters
            .iter()
            .chain(&self.environment.runtimes)
        {
            let _ = writeln!(s, "- {k}: {v}");
        }
        if !self.unexpected_passes.is_empty() {
            s.push_str("\n## Unexpected passes\n\n");
            for u in &self.unexpected_passes {
                let _ = writeln!(s, "- {u}");
            }
        }
        s.push_str(&self.expected_markdown());
        s.push_str(&self.failures_markdown());
        if !self.coverage.is_empty() {
            s.push_str(&self.coverage_markdown());
        }
        s
    }

    /// The count of each verdict per converter and runtime, as a Markdown table.
    fn verdicts_markdown(&self) -> String {
        let (columns, counts) = self.table();
        let mut s = String::from("## Verdicts\n\n| verdict |");
        for c in &columns {
            let _ = write!(s, " {c} |");
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(columns.len()));
        s.push('\n');
        for v in Verdict::ALL {
            let _ = write!(s, "| {} |", v.name());
            for c in &columns {
                let _ = write!(
                    s,
                    " {} |",
                    counts.get(&(c.clone(), v)).copied().unwrap_or(0)
                );
            }
            s.push('\n');
        }
        s
    }

    /// The failures the ledger expects, with its reasons (the first 100).
    fn expected_markdown(&self) -> String {
        let mut s = String::new();
        let expected: Vec<&CaseResult> = self
            .results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass && r.expected.is_some())
            .collect();
        if !expected.is_empty() {
            let _ = writeln!(s, "\n## Expected failures ({})\n\n| case | converter | verdict | reason |\n|---|---|---|---|", expected.len());
            for r in expected.iter().take(100) {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {} |",
                    r.case,
                    r.converter,
                    r.verdict.name(),
                    r.expected.as_deref().unwrap_or("").replace('|', "\\|")
                );
            }
        }
        s
    }

    /// The failures that fail the run (the first 200).
    fn failures_markdown(&self) -> String {
        let mut s = String::new();
        let failures: Vec<&CaseResult> = self.failures().collect();
        let _ = writeln!(s, "\n## Failures ({})\n", failures.len());
        if !failures.is_empty() {
            s.push_str("| case | converter | runtime | verdict | max abs err | message |\n|---|---|---|---|---:|---|\n");
            for r in failures.iter().take(200) {
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {} | {} | {} |",
                    r.case,
                    r.converter,
                    r.runtime,
                    r.verdict.name(),
                    r.max_abs_err
                        .map(|x| format!("{x:.3e}"))
                        .unwrap_or_default(),
                    one_line(r.message.as_deref().unwrap_or(""), 160).replace('|', "\\|")
                );
            }
            if failures.len() > 200 {
                let _ = writeln!(s, "\n… and {} more in report.json", failures.len() - 200);
            }
        }
        s
    }

    /// JUnit XML: one test suite per converter and runtime, one test case per result.
    pub fn junit(&self) -> String {
        let mut suites: BTreeMap<String, Vec<&CaseResult>> = BTreeMap::new();
        for r in &self.results {
            suites
                .entry(format!("{} on {}", r.converter, r.runtime))
                .or_default()
                .push(r);
        }
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"conformance\" tests=\"{}\" failures=\"{}\">",
            self.results.len(),
            self.failures().count()
        );
        for (name, results) in suites {
            let fails = results
                .iter()
                .filter(|r| r.verdict != Verdict::Pass)
                .count();
            let _ = writeln!(
                s,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\">",
                xml(&name),
                results.len()
            );
            for r in results {
                let time = r.latency_us.as_ref().map(|l| l.p50 / 1e6).unwrap_or(0.0);
                let _ = write!(
                    s,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.6}\"",
                    xml(&name),
                    xml(&r.case)
                );
                if r.verdict == Verdict::Pass {
                    s.push_str("/>\n");
                } else if let Some(reason) = &r.expected {
                    let _ = writeln!(
                        s,
                        ">\n      <skipped message=\"expected {}: {}\"/>\n    </testcase>",
                        r.verdict.name(),
                        xml(reason)
                    );
                } else {
                    let _ = writeln!(
                        s,
                        ">\n      <failure type=\"{}\" message=\"{}\"/>\n    </testcase>",
                        r.verdict.name(),
                        xml(&one_line(r.message.as_deref().unwrap_or(""), 1000))
                    );
                }
            }
            s.push_str("  </testsuite>\n");
        }
        s.push_str("</testsuites>\n");
        s
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn result(case: &str, verdict: Verdict) -> CaseResult {
        CaseResult {
            seed: Some(1),
            verdict,
            ops: vec!["Conv".into()],
            classes: vec!["Conv.group=1".into()],
            max_abs_err: Some(0.5),
            worst_ratio: Some(2.0),
            tolerance: crate::results::Policy::Bound,
            precision: Some(crate::runtime::Precision::F32),
            latency_us: crate::results::Latency::from_samples(vec![3.0, 1.0, 2.0]),
            message: Some("a <b> & \"c\"".into()),
            ..CaseResult::unjudged(case, crate::results::Origin::Derived, "identity", "tract")
        }
    }

    pub(super) fn report() -> Report {
        let tool = Tool {
            name: "harness".into(),
            version: "0".into(),
        };
        Report::new(
            tool,
            Environment::default(),
            serde_json::json!({}),
            vec![
                result("s0-i0", Verdict::Pass),
                result("s0-i1", Verdict::Mismatch),
            ],
            1.0,
        )
    }

    #[test]
    fn the_terminal_lists_results_whose_verdict_differs_packed_and_alone() {
        let mut r = report();
        assert!(!r.terminal().contains("differ packed and alone"));
        r.results[0].in_pack = Some("mismatch: 2 of 2 elements out of tolerance".into());
        let text = r.terminal();
        assert!(
            text.contains("differ packed and alone: 1 result(s)")
                && text.contains("s0-i0 identity"),
            "{text}"
        );
    }

    #[test]
    fn summary_counts_every_verdict_and_coverage_counts_classes() {
        let r = report();
        assert_eq!(r.summary["results"], 2);
        assert_eq!(r.summary["pass"], 1);
        assert_eq!(r.summary["mismatch"], 1);
        assert_eq!(r.summary["timeout"], 0);
        assert_eq!(r.coverage["Conv.group=1"], 2);
        assert!(!r.all_pass());
    }

    #[test]
    fn latency_quantiles_come_from_sorted_samples() {
        let l = crate::results::Latency::from_samples(vec![5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((l.min, l.p50, l.samples), (1.0, 3.0, 5));
        // Interpolated between order statistics, as every quantile in the project is.
        assert!((l.p90 - 4.6).abs() < 1e-12, "{}", l.p90);
    }

    #[test]
    fn junit_escapes_messages_and_marks_failures() {
        let x = report().junit();
        assert!(x.contains("tests=\"2\" failures=\"1\""));
        assert!(x.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert_eq!(x.matches("<failure").count(), 1);
    }

    #[test]
    fn json_has_the_spec_fields() {
        let v: serde_json::Value = serde_json::to_value(report()).unwrap();
        for key in ["tool", "environment", "summary", "coverage", "results"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        let r0 = &v["results"][1];
        assert_eq!(r0["verdict"], "mismatch");
        assert_eq!(r0["latency_us"]["p50"], 2.0);
    }
}
