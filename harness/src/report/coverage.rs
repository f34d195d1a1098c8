//! Coverage in the reports: cases per class, the catalogue classes under a minimum
//! (`--min-coverage`), and the class x verdict table of report.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Report;
use crate::results::Verdict;

impl Report {
    /// Distinct cases per coverage class (a case run by three converters counts once).
    pub fn cases_per_class(&self) -> BTreeMap<String, usize> {
        let mut seen: BTreeMap<String, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for r in &self.results {
            for c in &r.classes {
                seen.entry(c.clone()).or_default().insert(&r.case);
            }
        }
        seen.into_iter().map(|(k, v)| (k, v.len())).collect()
    }

    /// The `required` classes ([`crate::model::required_classes`]) with fewer than `n` cases,
    /// with their count.
    pub fn coverage_below(&self, n: usize, required: &[String]) -> Vec<(String, usize)> {
        let cases = self.cases_per_class();
        required
            .iter()
            .map(|c| (c.clone(), cases.get(c).copied().unwrap_or(0)))
            .filter(|(_, k)| *k < n)
            .collect()
    }

    /// The coverage section of report.md: class x verdict table, then the catalogue classes
    /// that got no case.
    pub(super) fn coverage_markdown(&self) -> String {
        let mut verdicts: Vec<Verdict> = Vec::new();
        let mut table: BTreeMap<&str, BTreeMap<Verdict, usize>> = BTreeMap::new();
        for r in &self.results {
            if !verdicts.contains(&r.verdict) {
                verdicts.push(r.verdict);
            }
            for c in &r.classes {
                *table.entry(c).or_default().entry(r.verdict).or_default() += 1;
            }
        }
        verdicts.sort_by_key(|v| Verdict::ALL.iter().position(|a| a == v));
        let cases = self.cases_per_class();
        let mut s = String::from("\n## Coverage\n\n| class | cases | results |");
        for v in &verdicts {
            let _ = write!(s, " {} |", v.name());
        }
        s.push_str("\n|---|---:|---:|");
        s.push_str(&"---:|".repeat(verdicts.len()));
        s.push('\n');
        for (class, counts) in &table {
            let _ = write!(
                s,
                "| `{class}` | {} | {} |",
                cases.get(*class).copied().unwrap_or(0),
                self.coverage.get(*class).copied().unwrap_or(0)
            );
            for v in &verdicts {
                let _ = write!(s, " {} |", counts.get(v).copied().unwrap_or(0));
            }
            s.push('\n');
        }
        let missing: Vec<&str> = crate::model::CATALOGUE
            .iter()
            .copied()
            .filter(|c| !cases.contains_key(*c))
            .collect();
        if missing.is_empty() {
            s.push_str("\nEvery catalogue class got at least one case.\n");
        } else {
            let _ = writeln!(
                s,
                "\nCatalogue classes that got no case ({}): {}",
                missing.len(),
                missing
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{report, result};
    use crate::compare::Verdict;

    #[test]
    fn coverage_counts_cases_once_and_lists_catalogue_classes_under_the_minimum() {
        let mut r = report();
        // The same case under a second converter does not count twice.
        let mut again = result("s0-i1", Verdict::Pass);
        again.converter = "lower1d".into();
        r.results.push(again);
        assert_eq!(r.cases_per_class()["Conv.group=1"], 2);
        let low = r.coverage_below(2, &crate::model::required_classes((13, 13), false, false));
        assert!(!low.iter().any(|(c, _)| c == "Conv.group=1"));
        assert!(low.contains(&("Conv.group=depthwise".to_string(), 0)));
        // The opset drawn is required too: no case has opset=13.
        assert!(low.contains(&("opset=13".to_string(), 0)), "{low:?}");
        assert_eq!(low.len(), crate::model::CATALOGUE.len());
        let md = r.markdown();
        assert!(md.contains("| `Conv.group=1` | 2 |"), "{md}");
        assert!(md.contains("Catalogue classes that got no case"), "{md}");
        assert!(md.contains("`negative=wrong-weight-shape`"), "{md}");
    }
}
