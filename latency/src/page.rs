//! `perf.md` (for people and CI step summaries) and `perf.html` (the same, with plots).
//! Regressions come first, each with the command that measures it again.

use std::fmt::Write as _;

use anyhow::Result;

use super::baseline::Comparison;
use super::plot::{bars, distributions, Row};
use super::stats::Change;
use super::{CasePerf, PerfReport};

/// A table: header and rows of cells.
struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn markdown(&self) -> String {
        let mut s = format!(
            "| {} |\n|{}\n",
            self.header.join(" | "),
            "---|".repeat(self.header.len())
        );
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }

    fn html(&self) -> String {
        let mut s = String::from("<table><tr>");
        for h in &self.header {
            let _ = write!(s, "<th>{}</th>", esc(h));
        }
        s.push_str("</tr>\n");
        for r in &self.rows {
            s.push_str("<tr>");
            for c in r {
                let _ = write!(s, "<td>{}</td>", esc(c));
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.filter(|v| v.is_finite())
        .map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

fn us(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn header(report: &PerfReport) -> String {
    let env = &report.environment;
    let versions: Vec<String> = env
        .runtimes
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let mut s = format!(
        "Machine: {} ({} CPUs, {}). Runtimes: {}. Budget {:.2} s per (case, converter, runtime), \
         warm-up until two batch medians agree within {:.0}%, interleaved rounds.",
        env.cpu,
        env.cpus,
        env.os,
        versions.join(", "),
        report.protocol.budget.as_secs_f64(),
        report.protocol.stable_within * 100.0
    );
    if let Some(f) = report.slowdown {
        let _ = write!(
            s,
            " Self-test slowdown wrapper: +{:.0}% busy work per run.",
            f * 100.0
        );
    }
    s
}

fn latency_table(report: &PerfReport, case: usize) -> Table {
    let c = &report.cases[case];
    let rows = c
        .results
        .iter()
        .map(|r| match (&r.latency_us, &r.error) {
            (Some(l), _) => vec![
                r.converter.clone(),
                r.runtime.clone(),
                r.precision.clone().unwrap_or_default(),
                us(l.p50),
                us(l.p90),
                us(l.p99),
                us(l.min),
                us(l.mad),
                l.n.to_string(),
                num(r.gflops, 2),
                num(r.share_of_fastest.map(|s| s * 100.0), 0) + "%",
                r.vs_original
                    .map(|v| format!("{:.3} [{:.3}, {:.3}]", v.estimate, v.low, v.high))
                    .unwrap_or_else(|| "–".into()),
                num(r.calibrated_p50, 3),
            ],
            (None, e) => {
                let mut row = vec![r.converter.clone(), r.runtime.clone(), String::new()];
                row.push(format!("failed: {}", e.as_deref().unwrap_or("no samples")));
                row.extend(std::iter::repeat_n("–".to_string(), 9));
                row
            }
        })
        .collect();
    Table {
        header: vec![
            "converter",
            "runtime",
            "precision",
            "p50 µs",
            "p90 µs",
            "p99 µs",
            "min µs",
            "MAD µs",
            "samples",
            "GFLOP/s",
            "share of fastest",
            "vs original (95% CI)",
            "calibrated p50",
        ],
        rows,
    }
}

/// What each conversion costs (or saves) against the original model on the same runtime.
fn conversion_cost_table(report: &PerfReport) -> Table {
    let mut rows = Vec::new();
    for c in &report.cases {
        for r in c.results.iter().filter(|r| !r.original) {
            if let Some(v) = r.vs_original {
                rows.push(vec![
                    c.case.clone(),
                    r.converter.clone(),
                    r.runtime.clone(),
                    format!("{:+.1}%", (v.estimate - 1.0) * 100.0),
                    format!(
                        "[{:+.1}%, {:+.1}%]",
                        (v.low - 1.0) * 100.0,
                        (v.high - 1.0) * 100.0
                    ),
                ]);
            }
        }
    }
    Table {
        header: vec!["case", "converter", "runtime", "cost vs original", "95% CI"],
        rows,
    }
}

fn interval(i: Option<super::stats::Interval>) -> String {
    i.map(|r| format!("{:.3} [{:.3}, {:.3}]", r.estimate, r.low, r.high))
        .unwrap_or_else(|| "–".into())
}

fn comparison_tables(cmp: &Comparison) -> (Table, Table) {
    let row = |e: &super::baseline::Entry| {
        vec![
            e.case.clone(),
            e.converter.clone(),
            e.runtime.clone(),
            match e.change {
                Some(Change::Regression) => "REGRESSION".into(),
                Some(Change::Improvement) => "improvement".into(),
                Some(Change::Unchanged) => match &e.note {
                    Some(why) => format!("unchanged ({why})"),
                    None => "unchanged".into(),
                },
                None if e.base_p50_us.is_some() && e.now_p50_us.is_none() => "FAILS NOW".into(),
                None => e.note.clone().unwrap_or_default(),
            },
            interval(e.ratio),
            interval(e.raw_floor_ratio),
            interval(e.mode_ratio),
            num(e.raw_ratio, 3),
            num(e.base_p50_us, 2),
            num(e.now_p50_us, 2),
        ]
    };
    let header = vec![
        "case",
        "converter",
        "runtime",
        "change",
        "calibrated floors ratio (95% CI)",
        "raw floors ratio",
        "round modes ratio",
        "raw p50 ratio",
        "baseline p50 µs",
        "now p50 µs",
    ];
    let flagged = Table {
        header: vec![
            "case",
            "converter",
            "runtime",
            "calibrated ratio (95% CI)",
            "reproduce",
        ],
        rows: cmp
            .regressions()
            .map(|e| {
                vec![
                    e.case.clone(),
                    e.converter.clone(),
                    e.runtime.clone(),
                    e.ratio
                        .map(|r| format!("{:.3} [{:.3}, {:.3}]", r.estimate, r.low, r.high))
                        .unwrap_or_else(|| "fails now".into()),
                    format!("`{}`", e.command),
                ]
            })
            .collect(),
    };
    let all = Table {
        header,
        rows: cmp.entries.iter().map(row).collect(),
    };
    (flagged, all)
}

fn comparison_intro(cmp: &Comparison) -> String {
    let what = if cmp.side_by_side {
        format!(
            "Reference build `{}`, measured side by side with this build: both loaded in \
             processes of their own and timed in the same interleaved rounds of this run on {}",
            cmp.baseline, cmp.baseline_cpu
        )
    } else {
        format!(
            "Baseline `{}` (measured on {}{})",
            cmp.baseline,
            cmp.baseline_cpu,
            if cmp.same_machine {
                ", this machine's CPU".to_string()
            } else {
                format!(
                    ", ANOTHER CPU: timings are not comparable across CPU models; {} entries \
                     not comparable here, the others decided by instruction counts made under \
                     the same SIMD extensions",
                    cmp.not_comparable().count()
                )
            }
        )
    };
    format!(
        "{what}. A regression is flagged when the whole 95% bootstrap \
         interval of the calibrated median ratio (now / baseline) lies above {:.3} \
         (threshold {:.0}%, margin {:.1}%); an improvement when it lies below {:.3}. That \
         ratio is of round floors (fastest run of each round) over the calibration's; the same \
         change must show in the raw floors (µs, when the baseline is from this CPU) and, for \
         runtimes timed in a worker, in the round modes (densest point of each round's runs). \
         {} regression(s), {} improvement(s).",
        1.0 + cmp.margin,
        cmp.threshold * 100.0,
        cmp.margin * 100.0,
        1.0 / (1.0 + cmp.margin),
        cmp.regressions().count(),
        cmp.improvements().count()
    )
}

fn instructions_table(report: &PerfReport, cmp: Option<&Comparison>) -> Table {
    let mut rows = Vec::new();
    for c in &report.cases {
        for r in &c.results {
            let Some(n) = r.instructions else { continue };
            let ratio = cmp
                .and_then(|cmp| {
                    cmp.entries.iter().find(|e| {
                        e.case == c.case && e.converter == r.converter && e.runtime == r.runtime
                    })
                })
                .and_then(|e| e.instructions_ratio);
            rows.push(vec![
                c.case.clone(),
                r.converter.clone(),
                r.runtime.clone(),
                n.to_string(),
                num(ratio, 4),
            ]);
        }
    }
    Table {
        header: vec![
            "case",
            "converter",
            "runtime",
            "instructions per run",
            "now / baseline",
        ],
        rows,
    }
}

/// The Markdown report.
pub fn markdown(report: &PerfReport, cmp: Option<&Comparison>) -> String {
    let mut s = String::from("# Latency report\n\n");
    let _ = writeln!(s, "{}\n", header(report));
    if let Some(cmp) = cmp {
        let (flagged, all) = comparison_tables(cmp);
        s.push_str("## Regressions\n\n");
        let _ = writeln!(s, "{}\n", comparison_intro(cmp));
        if flagged.rows.is_empty() {
            s.push_str("None.\n\n");
        } else {
            let _ = writeln!(s, "{}", flagged.markdown());
        }
        s.push_str(if cmp.side_by_side {
            "## Against the reference build\n\n"
        } else {
            "## Against the baseline\n\n"
        });
        let _ = writeln!(s, "{}", all.markdown());
    }
    for (i, c) in report.cases.iter().enumerate() {
        let _ = writeln!(
            s,
            "## {}\n\n{}; calibration workload p50 {} µs.\n",
            c.case,
            match c.flops {
                Some(f) => format!("{:.3} MFLOP per inference", f as f64 / 1e6),
                None => format!(
                    "FLOPs unknown ({})",
                    c.flops_error.as_deref().unwrap_or("?")
                ),
            },
            c.calibration
                .map(|l| us(l.p50))
                .unwrap_or_else(|| "–".into())
        );
        let _ = writeln!(s, "{}", latency_table(report, i).markdown());
    }
    let instructions = instructions_table(report, cmp);
    if !instructions.rows.is_empty() {
        s.push_str("## Instructions per run (callgrind)\n\n");
        s.push_str("Difference of two callgrind runs of 3 and 23 runs, divided by 20: loading cancels out.\n\n");
        let _ = writeln!(s, "{}", instructions.markdown());
    }
    let lower = conversion_cost_table(report);
    if !lower.rows.is_empty() {
        s.push_str("## Cost of each conversion\n\n");
        s.push_str("Median of the per-round ratios converted / original model on the same runtime, measured interleaved.\n\n");
        let _ = writeln!(s, "{}", lower.markdown());
    }
    s
}

/// The HTML report with inline SVG plots.
pub fn html(
    report: &PerfReport,
    cmp: Option<&Comparison>,
    baseline: Option<&PerfReport>,
) -> Result<String> {
    let mut s = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Latency report</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}\
         td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:right}\
         td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}.bad{color:#b00}</style></head><body>\
         <h1>Latency report</h1>",
    );
    let _ = write!(s, "<p>{}</p>", esc(&header(report)));
    if let Some(cmp) = cmp {
        let (flagged, all) = comparison_tables(cmp);
        let _ = write!(
            s,
            "<h2 class=\"bad\">Regressions</h2><p>{}</p>",
            esc(&comparison_intro(cmp))
        );
        s.push_str(&if flagged.rows.is_empty() {
            "<p>None.</p>".into()
        } else {
            flagged.html()
        });
        s.push_str(if cmp.side_by_side {
            "<h2>Against the reference build</h2>"
        } else {
            "<h2>Against the baseline</h2>"
        });
        s.push_str(&all.html());
    }
    let mut gflops = Vec::new();
    for i in 0..report.cases.len() {
        s.push_str(&case_html(report, i, baseline, &mut gflops)?);
    }
    let instructions = instructions_table(report, cmp);
    if !instructions.rows.is_empty() {
        s.push_str("<h2>Instructions per run (callgrind)</h2>");
        s.push_str(&instructions.html());
    }
    let lower = conversion_cost_table(report);
    if !lower.rows.is_empty() {
        s.push_str("<h2>Cost of each conversion</h2>");
        s.push_str(&lower.html());
    }
    s.push_str("<h2>GFLOP/s overview</h2>");
    s.push_str(&bars("GFLOP/s at the median latency", "GFLOP/s", &gflops)?);
    s.push_str("</body></html>\n");
    Ok(s)
}

/// The HTML section of case `i`: its latency table, the distribution of every sample of
/// each config, and, when `baseline` measured the case too, its calibrated round floors
/// then and now. Each config's GFLOP/s is added to `gflops` for the overview at the end,
/// in the colour of its row here.
fn case_html(
    report: &PerfReport,
    i: usize,
    baseline: Option<&PerfReport>,
    gflops: &mut Vec<(String, f64, usize)>,
) -> Result<String> {
    let c = &report.cases[i];
    let mut s = String::new();
    let _ = write!(s, "<h2>{}</h2>", esc(&c.case));
    s.push_str(&latency_table(report, i).html());
    let mut rows: Vec<Row> = Vec::new();
    for (k, r) in c.results.iter().enumerate() {
        rows.push(Row {
            label: format!("{} / {}", r.converter, r.runtime),
            values: r.samples.clone(),
            dots: r.rounds_us.clone(),
            color: [0, 2, 3, 4, 5][k % 5],
        });
        if let Some(g) = r.gflops {
            gflops.push((
                format!("{}: {} / {}", c.case, r.converter, r.runtime),
                g,
                [0, 2, 3, 4, 5][k % 5],
            ));
        }
    }
    s.push_str(&distributions(
        &format!(
            "{}: every sample (box: quartiles, whisker: p1-p99, dots: round floors)",
            c.case
        ),
        "µs per run (log)",
        &rows,
    )?);
    let old = baseline.and_then(|b| b.cases.iter().find(|o| o.case == c.case));
    if let Some(old) = old {
        s.push_str(&distributions(
            &format!(
                "{}: baseline vs now (round floors in calibrated units)",
                c.case
            ),
            "calibrated units (log)",
            &baseline_rows(c, old),
        )?);
    }
    Ok(s)
}

/// Rows of the baseline-vs-now chart of a case: for each config measured in both runs, its
/// calibrated round floors in the baseline `old` (grey) right above those of now (blue).
/// Calibrated units, since the baseline may come from another machine.
fn baseline_rows(c: &CasePerf, old: &CasePerf) -> Vec<Row> {
    let mut rows = Vec::new();
    for r in &c.results {
        let Some(o) = old
            .results
            .iter()
            .find(|o| o.converter == r.converter && o.runtime == r.runtime)
        else {
            continue;
        };
        let label = format!("{} / {}", r.converter, r.runtime);
        rows.push(Row {
            label: format!("{label} (baseline)"),
            values: o.calibrated_rounds.clone(),
            dots: vec![],
            color: 1,
        });
        rows.push(Row {
            label: format!("{label} (now)"),
            values: r.calibrated_rounds.clone(),
            dots: vec![],
            color: 0,
        });
    }
    rows
}
