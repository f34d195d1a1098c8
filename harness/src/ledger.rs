//! The expected-failure ledger, `corpus/known-failures.toml`.
//!
//! Each entry names a known failure: which converter and runtime, which cases (an id glob or
//! coverage classes that must all be present), which verdict, why, and where it is reported
//! upstream. Results that match keep the run green and are reported as expected.
//!
//! An entry that no longer fails is an *unexpected pass* and fails the run: the bug was fixed,
//! so the entry must go (as in tract's and OpenVINO's own suites). A coverage class is a
//! family of cases of which only some hit the bug, so a class entry names a `witness`: a case
//! id known to fail. When the witness runs and passes, the entry is stale. An entry with a
//! `case` glob is its own witness: stale when its matching results all pass.
//!
//! ```toml
//! [[failure]]
//! converter = "identity"          # glob; "*" for any
//! runtime = "tract"               # glob
//! classes = ["pattern=SAME-conv->strided-1x1-conv"]   # all must be present
//! case = "s0-i*"                  # optional glob on the case id
//! witness = "s0-i45"              # a case that fails while the bug is there
//! verdict = "mismatch"
//! reason = "tract pushes the stride of a 1x1 conv into a SAME conv without re-padding"
//! link = "https://..."
//! ```

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::results::{CaseResult, Verdict};

/// One known failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Converter glob.
    pub converter: String,
    /// Runtime glob.
    #[serde(default = "any")]
    pub runtime: String,
    /// Case id glob.
    #[serde(default)]
    pub case: Option<String>,
    /// Coverage classes that must all be present.
    #[serde(default)]
    pub classes: Vec<String>,
    /// The verdict the failure has (one, or a list of the verdicts it may take).
    pub verdict: Verdicts,
    /// Why it fails, checked by hand.
    pub reason: String,
    /// A case id that fails while the bug is there; it passing means the entry is stale.
    #[serde(default)]
    pub witness: Option<String>,
    /// Upstream issue or discussion.
    #[serde(default)]
    pub link: Option<String>,
}

/// One verdict or several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Verdicts {
    /// Exactly this verdict.
    One(Verdict),
    /// Any of these.
    Any(Vec<Verdict>),
}

impl Verdicts {
    fn contains(&self, v: Verdict) -> bool {
        match self {
            Verdicts::One(x) => *x == v,
            Verdicts::Any(xs) => xs.contains(&v),
        }
    }

    fn names(&self) -> String {
        match self {
            Verdicts::One(x) => x.name().into(),
            Verdicts::Any(xs) => xs.iter().map(|v| v.name()).collect::<Vec<_>>().join(" or "),
        }
    }
}

fn any() -> String {
    "*".into()
}

/// The whole ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Entries, in file order.
    #[serde(default)]
    pub failure: Vec<Entry>,
}

/// Glob with `*` (any run of characters) and `?` (one character).
pub fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    go(&p, &t)
}

impl Ledger {
    /// Reads and checks a ledger file; errors name the file and the entry.
    pub fn load(path: &Path) -> Result<Ledger> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let ledger: Ledger = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid ledger", path.display()))?;
        for (i, e) in ledger.failure.iter().enumerate() {
            if e.case.is_none() && e.classes.is_empty() {
                bail!(
                    "{}: entry {} ({}) names neither a case nor classes",
                    path.display(),
                    i + 1,
                    e.converter
                );
            }
            if e.verdict.contains(Verdict::Pass) {
                bail!("{}: entry {} expects verdict pass", path.display(), i + 1);
            }
            if e.reason.trim().is_empty() {
                bail!("{}: entry {} has no reason", path.display(), i + 1);
            }
        }
        Ok(ledger)
    }

    fn matches(e: &Entry, r: &CaseResult) -> bool {
        glob(&e.converter, &r.converter)
            && glob(&e.runtime, &r.runtime)
            && e.case.as_deref().is_none_or(|c| glob(c, &r.case))
            && e.classes.iter().all(|c| r.classes.contains(c))
    }

    /// Marks failing results that an entry explains (their `expected` field gets the reason)
    /// and returns the stale entries: unexpected passes.
    pub fn apply(&self, results: &mut [CaseResult]) -> Vec<String> {
        let mut stale = Vec::new();
        for e in &self.failure {
            // Results that decide staleness: the witness's, or with a case glob every match.
            let mut judged = 0;
            let mut judged_failing = 0;
            for r in results.iter_mut().filter(|r| Self::matches(e, r)) {
                let fails = r.verdict != Verdict::Pass && e.verdict.contains(r.verdict);
                // The first entry that explains a failure names it.
                if fails && r.expected.is_none() {
                    r.expected = Some(e.reason.clone());
                }
                let judges = match &e.witness {
                    Some(w) => &r.case == w,
                    None => e.case.is_some(),
                };
                if judges {
                    judged += 1;
                    judged_failing += usize::from(fails);
                }
            }
            // A witness that no longer has the classes does not match, so look it up directly.
            if let Some(w) = &e.witness {
                if judged == 0 {
                    for r in results.iter().filter(|r| {
                        &r.case == w
                            && glob(&e.converter, &r.converter)
                            && glob(&e.runtime, &r.runtime)
                    }) {
                        judged += 1;
                        judged_failing += usize::from(
                            r.verdict != Verdict::Pass && e.verdict.contains(r.verdict),
                        );
                    }
                }
            }
            if judged > 0 && judged_failing == 0 {
                let what = e
                    .witness
                    .clone()
                    .or_else(|| e.case.clone())
                    .unwrap_or_default();
                stale.push(format!(
                    "unexpected pass: {} on {} ({what}) no longer gives {}; remove it from the ledger ({})",
                    e.converter,
                    e.runtime,
                    e.verdict.names(),
                    e.reason
                ));
            }
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_stars_and_question_marks() {
        assert!(glob("s0-i*", "s0-i45"));
        assert!(glob("*", ""));
        assert!(glob("openvino*", "openvino:f32"));
        assert!(glob("s?-i1", "s3-i1"));
        assert!(!glob("s0-i4", "s0-i45"));
    }

    fn result(case: &str, verdict: Verdict, classes: &[&str]) -> CaseResult {
        CaseResult {
            case: case.into(),
            origin: crate::results::Origin::Derived,
            seed: None,
            converter: "identity".into(),
            runtime: "tract".into(),
            verdict,
            ops: vec![],
            classes: classes.iter().map(|s| s.to_string()).collect(),
            max_abs_err: None,
            max_rel_err: None,
            max_ulp: None,
            count_over: None,
            worst_ratio: None,
            tolerance: crate::results::Policy::Bound,
            precision: None,
            latency_us: None,
            message: None,
            repro: None,
            wall_ms: 0.0,
            expected: None,
        }
    }

    const LEDGER: &str = r#"
[[failure]]
converter = "identity"
runtime = "tract"
classes = ["A", "B"]
witness = "s0-i1"
verdict = "mismatch"
reason = "known bug"
"#;

    #[test]
    fn matching_failures_become_expected_and_others_stay_failures() {
        let ledger: Ledger = toml::from_str(LEDGER).unwrap();
        let mut rs = vec![
            result("s0-i1", Verdict::Mismatch, &["A", "B", "C"]),
            result("s0-i2", Verdict::Mismatch, &["A"]),
            result("s0-i3", Verdict::Pass, &["A", "B"]),
        ];
        assert!(ledger.apply(&mut rs).is_empty());
        assert_eq!(rs[0].expected.as_deref(), Some("known bug"));
        assert_eq!(rs[1].expected, None);
        assert_eq!(rs[2].expected, None);
    }

    #[test]
    fn a_passing_witness_is_an_unexpected_pass_and_other_passing_members_are_not() {
        let ledger: Ledger = toml::from_str(LEDGER).unwrap();
        let mut rs = vec![
            result("s0-i1", Verdict::Mismatch, &["A", "B"]),
            result("s0-i9", Verdict::Pass, &["A", "B"]),
        ];
        assert!(
            ledger.apply(&mut rs).is_empty(),
            "a class member that passes is fine"
        );
        let mut rs = vec![result("s0-i1", Verdict::Pass, &["A", "B"])];
        let stale = ledger.apply(&mut rs);
        assert_eq!(stale.len(), 1);
        assert!(
            stale[0].contains("unexpected pass") && stale[0].contains("remove it"),
            "{stale:?}"
        );
        let mut rs = vec![result("s0-i2", Verdict::Pass, &["A", "B"])];
        assert!(
            ledger.apply(&mut rs).is_empty(),
            "the witness did not run: nothing to judge"
        );
    }

    #[test]
    fn a_case_entry_is_stale_when_its_cases_all_pass() {
        let ledger: Ledger =
            toml::from_str("[[failure]]\nconverter = \"identity\"\ncase = \"s0-i7\"\nverdict = \"mismatch\"\nreason = \"r\"\n").unwrap();
        let mut rs = vec![result("s0-i7", Verdict::Pass, &[])];
        assert_eq!(ledger.apply(&mut rs).len(), 1);
        let mut rs = vec![result("s0-i7", Verdict::Mismatch, &[])];
        assert!(ledger.apply(&mut rs).is_empty());
        assert!(rs[0].expected.is_some());
    }

    #[test]
    fn malformed_ledgers_are_refused_with_the_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known-failures.toml");
        for bad in [
            "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n",
            "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"pass\"\nreason = \"r\"\n",
            "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"wrong\"\nreason = \"r\"\n",
            "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = [\"mismatch\", \"pass\"]\nreason = \"r\"\n",
            "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"mismatch\"\nreason = \"r\"\ntypo = 1\n",
            "not toml [",
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = format!("{:#}", Ledger::load(&p).unwrap_err());
            assert!(e.contains("known-failures.toml"), "{e}");
        }
    }
}
