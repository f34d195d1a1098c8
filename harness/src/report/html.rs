//! report.html: the run for a person in a browser. One self-contained page (styles and a small
//! script inline, nothing fetched): the verdicts per converter, the pass rate of every coverage
//! class per converter as a coloured matrix, the failures that fail the run with their messages,
//! bundles and repro commands, and the failures the ledger expects grouped by ledger entry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use super::{one_line, Report};
use crate::results::{CaseResult, Verdict};

/// The failures table shows at most this many rows; report.json has them all.
const MAX_FAILURE_ROWS: usize = 1000;

impl Report {
    /// The HTML report, as written into `dir` (bundle links are made relative to it).
    pub fn html(&self, dir: &Path) -> String {
        let mut s = String::new();
        s.push_str(HEAD);
        let failing = self.failures().count();
        let expected = self.summary.get("expected").copied().unwrap_or(0);
        let status = if self.all_pass() { "pass" } else { "fail" };
        let _ = writeln!(
            s,
            "<h1>Conformance report <span class=\"status {status}\" id=\"status\">{}</span></h1>",
            if self.all_pass() { "passed" } else { "failed" }
        );
        let _ = writeln!(
            s,
            "<p class=\"facts\">{} {} · <b id=\"results\">{}</b> results in {:.1} s · \
             <b id=\"failing\">{failing}</b> failing · <b>{expected}</b> expected failures · {}</p>",
            esc(&self.tool.name),
            esc(&self.tool.version),
            self.results.len(),
            self.duration_s,
            esc(&self.environment.cpu)
        );
        if let Some(why) = &self.stopped_early {
            let _ = writeln!(
                s,
                "<p class=\"warn\">Stopped early: {}; the report covers the cases that ran.</p>",
                esc(why)
            );
        }
        if !self.unexpected_passes.is_empty() {
            s.push_str("<h2>Unexpected passes</h2>\n<ul id=\"unexpected-passes\">\n");
            for u in &self.unexpected_passes {
                let _ = writeln!(s, "<li>{}</li>", esc(u));
            }
            s.push_str("</ul>\n");
        }
        s.push_str(&self.verdicts_html());
        s.push_str(&self.matrix_html());
        s.push_str(&self.failures_html(dir));
        s.push_str(&self.expected_html());
        s.push_str(&self.notes_html());
        s.push_str("<h2>Versions</h2>\n<ul>\n");
        for (k, v) in self
            .environment
            .converters
            .iter()
            .chain(&self.environment.runtimes)
        {
            let _ = writeln!(s, "<li>{}: {}</li>", esc(k), esc(v));
        }
        s.push_str("</ul>\n");
        s.push_str(SCRIPT);
        s.push_str("</body>\n</html>\n");
        s
    }

    /// Verdict × converter counts; zero cells are faint, failing verdicts red.
    fn verdicts_html(&self) -> String {
        let (columns, counts) = self.table();
        let mut s =
            String::from("<h2>Verdicts</h2>\n<table id=\"verdicts\">\n<tr><th>verdict</th>");
        for c in &columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr>\n");
        for v in Verdict::ALL {
            let _ = write!(s, "<tr><td>{}</td>", v.name());
            for c in &columns {
                let n = counts.get(&(c.clone(), v)).copied().unwrap_or(0);
                let class = match (n, v) {
                    (0, _) => "zero",
                    (_, Verdict::Pass) => "good",
                    _ => "bad",
                };
                let _ = write!(s, "<td class=\"num {class}\">{n}</td>");
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }

    /// Coverage class × converter: the share of results that passed, coloured red (none) to
    /// green (all), as conformance dashboards show operator pass rates.
    fn matrix_html(&self) -> String {
        let (columns, _) = self.table();
        // (class, column) -> (results, passed, expected failures)
        let mut cells: BTreeMap<(&str, String), (usize, usize, usize)> = BTreeMap::new();
        for r in &self.results {
            let col = format!("{} on {}", r.converter, r.runtime);
            for c in &r.classes {
                let cell = cells.entry((c.as_str(), col.clone())).or_default();
                cell.0 += 1;
                if r.verdict == Verdict::Pass {
                    cell.1 += 1;
                } else if r.expected.is_some() {
                    cell.2 += 1;
                }
            }
        }
        let mut classes: Vec<&str> = cells.keys().map(|(c, _)| *c).collect();
        classes.dedup();
        let mut s = String::from(
            "<h2>Pass rate per coverage class</h2>\n\
             <p>Share of results that pass; hover a cell for counts. \
             <input id=\"class-filter\" type=\"search\" placeholder=\"filter classes\"></p>\n\
             <table id=\"matrix\">\n<tr><th>class</th>",
        );
        for c in &columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr>\n");
        for class in classes {
            let _ = write!(s, "<tr><td><code>{}</code></td>", esc(class));
            for col in &columns {
                match cells.get(&(class, col.clone())) {
                    None => s.push_str("<td class=\"rate none\">–</td>"),
                    Some(&(n, pass, expected)) => {
                        let rate = pass as f64 / n as f64;
                        let _ = write!(
                            s,
                            "<td class=\"rate\" style=\"background:hsl({:.0},70%,80%)\" \
                             title=\"{pass} of {n} pass, {expected} expected failures\">{:.0}%</td>",
                            120.0 * rate,
                            100.0 * rate
                        );
                    }
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</table>\n");
        s
    }

    /// The failures that fail the run: message, bundle and the command that reproduces them.
    fn failures_html(&self, dir: &Path) -> String {
        let failures: Vec<&CaseResult> = self.failures().collect();
        let mut s = format!(
            "<h2>Failures ({})</h2>\n<p><input id=\"failure-filter\" type=\"search\" \
             placeholder=\"filter failures\"></p>\n",
            failures.len()
        );
        if failures.is_empty() {
            s.push_str("<p id=\"no-failures\">No result failed unexpectedly.</p>\n");
            return s;
        }
        s.push_str(
            "<table id=\"failures\">\n<tr><th>case</th><th>converter</th><th>runtime</th>\
             <th>verdict</th><th>max abs err</th><th>message</th><th>repro</th></tr>\n",
        );
        for r in failures.iter().take(MAX_FAILURE_ROWS) {
            let repro = match (&r.repro, r.repro_command()) {
                (Some(bundle), Some(command)) => format!(
                    "<a href=\"{}\">bundle</a><br><code>{}</code>",
                    esc(&link(dir, bundle)),
                    esc(&command)
                ),
                _ => String::from("–"),
            };
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"bad\">{}</td>\
                 <td class=\"num\">{}</td><td>{}</td><td>{repro}</td></tr>",
                esc(&r.case),
                esc(&r.converter),
                esc(&r.runtime),
                r.verdict.name(),
                r.max_abs_err
                    .map(|x| format!("{x:.3e}"))
                    .unwrap_or_default(),
                message_html(r.message.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>\n");
        if failures.len() > MAX_FAILURE_ROWS {
            let _ = writeln!(
                s,
                "<p>… and {} more in report.json</p>",
                failures.len() - MAX_FAILURE_ROWS
            );
        }
        s
    }

    /// The failures the ledger expects, one group per ledger reason, shown once.
    fn expected_html(&self) -> String {
        let mut groups: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
        for r in &self.results {
            if let (false, Some(reason)) = (r.verdict == Verdict::Pass, &r.expected) {
                groups.entry(reason.as_str()).or_default().push(r);
            }
        }
        let total: usize = groups.values().map(Vec::len).sum();
        let mut s = format!(
            "<h2>Expected failures ({total}, {} ledger entries)</h2>\n<div id=\"expected\">\n",
            groups.len()
        );
        let mut groups: Vec<(&str, Vec<&CaseResult>)> = groups.into_iter().collect();
        groups.sort_by_key(|(_, rs)| std::cmp::Reverse(rs.len()));
        for (reason, results) in groups {
            let mut per_converter: BTreeMap<(&str, Verdict), Vec<&str>> = BTreeMap::new();
            for r in &results {
                per_converter
                    .entry((r.converter.as_str(), r.verdict))
                    .or_default()
                    .push(&r.case);
            }
            let _ = writeln!(
                s,
                "<details class=\"entry\"><summary><b>{}</b> {}</summary>\n<ul>",
                results.len(),
                esc(reason)
            );
            for ((converter, verdict), cases) in per_converter {
                let _ = writeln!(
                    s,
                    "<li><code>{}</code> {}: {}</li>",
                    esc(converter),
                    verdict.name(),
                    esc(&cases.join(", "))
                );
            }
            s.push_str("</ul></details>\n");
        }
        s.push_str("</div>\n");
        s
    }

    /// Results whose verdict depended on company: run alone again, or packed with others.
    fn notes_html(&self) -> String {
        let mut s = String::new();
        let alone: Vec<&CaseResult> = self
            .results
            .iter()
            .filter(|r| r.in_parallel.is_some() || r.in_pack.is_some())
            .collect();
        if !alone.is_empty() {
            let _ = writeln!(
                s,
                "<h2>Verdicts given alone ({})</h2>\n<p>These timed out, lost their worker or \
                 differed beside other cases; the verdicts shown are the ones run alone.</p>\n<ul>",
                alone.len()
            );
            for r in alone {
                let before = r.in_parallel.as_deref().or(r.in_pack.as_deref());
                let _ = writeln!(
                    s,
                    "<li>{} <code>{}</code>: {} alone; before: {}</li>",
                    esc(&r.case),
                    esc(&r.converter),
                    r.verdict.name(),
                    esc(&one_line(before.unwrap_or(""), 200))
                );
            }
            s.push_str("</ul>\n");
        }
        s
    }
}

/// A message: its first line in full, the rest folded away when long.
fn message_html(message: &str) -> String {
    let flat = one_line(message, 100_000);
    if flat.chars().count() <= 240 {
        return esc(&flat);
    }
    let head: String = flat.chars().take(240).collect();
    format!(
        "<details><summary>{}…</summary><pre>{}</pre></details>",
        esc(&head),
        esc(message)
    )
}

/// A link to a bundle from the report's directory `dir`: a relative path when both can be
/// placed (a merged report links to the bundles in its shards' directories), else the path.
fn link(dir: &Path, bundle: &str) -> String {
    let bundle = Path::new(bundle);
    let absolute = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        // Only plain names below the root: `..` would need the file system to resolve.
        p.components()
            .all(|c| {
                matches!(
                    c,
                    Component::RootDir | Component::Normal(_) | Component::CurDir
                )
            })
            .then(|| p.components().filter(|c| *c != Component::CurDir).collect())
    };
    let (Some(from), Some(to)) = (absolute(dir), absolute(bundle)) else {
        return bundle.display().to_string();
    };
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = PathBuf::new();
    for _ in common..from.components().count() {
        rel.push("..");
    }
    rel.extend(to.components().skip(common));
    rel.display().to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Conformance report</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num, td.rate { text-align: right; }
td.zero { color: #bbb; } td.good { background: #dff3df; } td.bad { background: #f8d7d7; }
td.rate.none { color: #bbb; text-align: center; }
#matrix td, #matrix th { font-size: 12px; padding: 0 5px; }
.status { font-size: .7em; padding: 2px 8px; border-radius: 4px; vertical-align: middle; }
.status.pass { background: #2e7d32; color: white; } .status.fail { background: #c62828; color: white; }
.facts { color: #555; } .warn { background: #fff3cd; padding: 4px 8px; }
code { font-size: 12px; } pre { white-space: pre-wrap; max-width: 70em; }
details.entry { margin: .3em 0; }
</style>
</head>
<body>
"#;

/// Filters for the matrix and the failures. Any script error is recorded on the page
/// (`data-script-errors`), and `data-ready` is set once the script has run, so a headless
/// browser can check both.
const SCRIPT: &str = r#"<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push(String(e.message));
    document.body.setAttribute("data-script-errors", errors.join("; "));
  });
  function filter(inputId, tableId) {
    var input = document.getElementById(inputId);
    var table = document.getElementById(tableId);
    if (!input || !table) return;
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      var rows = table.rows;
      for (var i = 1; i < rows.length; i++) {
        rows[i].style.display = rows[i].textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      }
    });
  }
  filter("class-filter", "matrix");
  filter("failure-filter", "failures");
  document.body.setAttribute("data-script-errors", errors.join("; "));
  document.body.setAttribute("data-ready", "yes");
})();
</script>
"#;

#[cfg(test)]
mod tests {
    use super::super::tests::{report, result};
    use crate::compare::Verdict;
    use std::path::Path;

    #[test]
    fn the_page_has_the_tables_escapes_messages_and_groups_expected_failures_by_reason() {
        let mut r = report();
        let mut known = result("s0-i2", Verdict::Mismatch);
        known.expected = Some("a known <bug>".into());
        let mut known2 = result("s0-i3", Verdict::Mismatch);
        known2.expected = Some("a known <bug>".into());
        r.results.push(known);
        r.results.push(known2);
        r.results[1].repro = Some("out/failures/s0-i1-identity".into());
        let page = r.html(Path::new("out"));
        for id in [
            "id=\"verdicts\"",
            "id=\"matrix\"",
            "id=\"failures\"",
            "id=\"expected\"",
        ] {
            assert!(page.contains(id), "{id}");
        }
        // The reason once, with both cases under it.
        assert_eq!(page.matches("a known &lt;bug&gt;").count(), 1, "{page}");
        assert!(page.contains("s0-i2, s0-i3"), "{page}");
        assert!(page.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        assert!(page.contains("href=\"failures/s0-i1-identity\""), "{page}");
        // A merged report links to its shards' bundles.
        assert_eq!(
            super::link(Path::new("r/merged"), "r/shard-1/failures/x"),
            "../shard-1/failures/x"
        );
        assert_eq!(super::link(Path::new("/a/b"), "/a/c/d"), "../c/d");
        assert!(page.contains("--onnx-tests out/failures/s0-i1-identity --converter 'identity'"));
        // Conv.group=1: 1 pass of 4 results under identity on tract.
        assert!(
            page.contains("title=\"1 of 4 pass, 2 expected failures\">25%</td>"),
            "{page}"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}
