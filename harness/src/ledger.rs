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
//! A bug also shows in forms no class names. An entry with a `reduced` table describes the bug
//! by what reducing a failure finds ([`Reduction`]: the first diverging node's op, attributes
//! and whether it fails alone, the reduced model's classes) and explains only results whose own
//! reduction matches, so a new bug in a model that merely contains a ledgered class still fails.
//! Results carry no reduction until the run signs and reduces its failures; the run then
//! applies the ledger again.
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
//! [failure.reduced]               # optional: what the failure's reduction must have found
//! op = "Conv"
//! alone = false
//! attributes = { kernel_shape = [1] }
//! classes = ["Conv.auto_pad=SAME_UPPER"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use crate::results::{Attribute, CaseResult, Reduction, Verdict};

/// One known failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Converter glob, or a list of them (any may match).
    pub converter: Globs,
    /// Runtime glob.
    #[serde(default = "any")]
    pub runtime: String,
    /// Case id glob.
    #[serde(default)]
    pub case: Option<String>,
    /// Coverage classes that must all be present, each a glob (`Pad.mode=*`).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Opsets `[first, last]` the case's model must import (its `opset=N` class), for
    /// behaviour that depends on an operator's version.
    #[serde(default)]
    pub opsets: Option<[i64; 2]>,
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
    /// What the failure's reduction must have found; the entry then explains only results
    /// that carry a matching reduction.
    #[serde(default)]
    pub reduced: Option<ReducedForm>,
    /// Where the failure comes from: the converter (the default) or the model itself.
    #[serde(default)]
    pub cause: Cause,
}

/// What a failure comes from, which decides when its entry is stale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The converter (or the runtime): every result of the entry's family that should fail
    /// decides whether it still does.
    #[default]
    Converter,
    /// The model: every converter that keeps what makes it fail fails the same way (a model
    /// re-saved, simplified or rewritten), while a converter that removes it passes, rightly.
    /// Failures of any converter in the family are explained; only the unconverted model
    /// (`identity`) decides whether the entry is stale.
    Model,
}

/// The form a known bug takes once a failure is reduced: every field given must hold for the
/// result's [`Reduction`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReducedForm {
    /// Operator of the reduced model's first diverging node.
    #[serde(default)]
    pub op: Option<String>,
    /// Whether that node fails alone (`false`: only together with the nodes before it).
    #[serde(default)]
    pub alone: Option<bool>,
    /// Attributes that node must have, with these values (numbers compared in f32, as ONNX
    /// stores float attributes; a scalar does not match a list).
    #[serde(default)]
    pub attributes: BTreeMap<String, Attribute>,
    /// Coverage classes the reduced model must all have.
    #[serde(default)]
    pub classes: Vec<String>,
}

impl ReducedForm {
    fn is_empty(&self) -> bool {
        self.op.is_none()
            && self.alone.is_none()
            && self.attributes.is_empty()
            && self.classes.is_empty()
    }

    /// Whether a reduction has this form.
    pub fn matches(&self, r: &Reduction) -> bool {
        self.op.as_ref().is_none_or(|op| r.op.as_ref() == Some(op))
            && self.alone.is_none_or(|a| r.alone == Some(a))
            && self
                .attributes
                .iter()
                .all(|(k, want)| r.attributes.get(k).is_some_and(|got| same_value(want, got)))
            && self.classes.iter().all(|c| r.classes.contains(c))
    }
}

/// Whether an attribute value asked for matches the node's. Numbers compare in f32, which
/// ONNX stores float attributes in, so `alpha = 0.1` matches the node's 0.1f32 and `1` matches
/// `1.0`; strings compare exactly; a scalar never matches a list.
fn same_value(want: &Attribute, got: &Attribute) -> bool {
    fn numbers(a: &Attribute) -> Option<(bool, Vec<f32>)> {
        match a {
            Attribute::Int(i) => Some((false, vec![*i as f32])),
            Attribute::Float(f) => Some((false, vec![*f as f32])),
            Attribute::Ints(v) => Some((true, v.iter().map(|&i| i as f32).collect())),
            Attribute::Floats(v) => Some((true, v.iter().map(|&f| f as f32).collect())),
            Attribute::Text(_) | Attribute::Texts(_) => None,
        }
    }
    match (want, got) {
        (Attribute::Int(a), Attribute::Int(b)) => a == b,
        (Attribute::Ints(a), Attribute::Ints(b)) => a == b,
        (Attribute::Text(a), Attribute::Text(b)) => a == b,
        (Attribute::Texts(a), Attribute::Texts(b)) => a == b,
        // An empty list reads as integers; it matches any empty list.
        (Attribute::Ints(a), Attribute::Texts(b)) | (Attribute::Texts(b), Attribute::Ints(a)) => {
            a.is_empty() && b.is_empty()
        }
        _ => matches!((numbers(want), numbers(got)), (Some(a), Some(b)) if a == b),
    }
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
    /// Whether `v` is one of these verdicts.
    pub fn contains(&self, v: Verdict) -> bool {
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

/// One glob or several, any of which may match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Globs {
    /// This glob.
    One(String),
    /// Any of these.
    Any(Vec<String>),
}

impl Globs {
    /// Whether one of the globs matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Globs::One(g) => glob(g, text),
            Globs::Any(gs) => gs.iter().any(|g| glob(g, text)),
        }
    }
}

impl std::fmt::Display for Globs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Globs::One(g) => f.write_str(g),
            Globs::Any(gs) => f.write_str(&gs.join(" or ")),
        }
    }
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
            if e.case.is_none() && e.classes.is_empty() && e.reduced.is_none() && e.opsets.is_none()
            {
                bail!(
                    "{}: entry {} ({}) names neither a case, classes, opsets nor a reduced form",
                    path.display(),
                    i + 1,
                    e.converter
                );
            }
            if e.opsets.is_some_and(|[first, last]| first > last) {
                bail!(
                    "{}: entry {} has opsets whose first is after its last",
                    path.display(),
                    i + 1
                );
            }
            if e.verdict.contains(Verdict::Pass) {
                bail!("{}: entry {} expects verdict pass", path.display(), i + 1);
            }
            if e.reason.trim().is_empty() {
                bail!("{}: entry {} has no reason", path.display(), i + 1);
            }
            if let Some(f) = &e.reduced {
                if f.is_empty() {
                    bail!(
                        "{}: entry {} has an empty reduced table",
                        path.display(),
                        i + 1
                    );
                }
                // Only these verdicts are located at a node (docs/repro.md); an entry asking
                // for a node under any other verdict could never match.
                let located = [Verdict::Mismatch, Verdict::NonFinite];
                let asks_node = f.op.is_some() || f.alone.is_some() || !f.attributes.is_empty();
                if asks_node && !located.iter().any(|&v| e.verdict.contains(v)) {
                    bail!(
                        "{}: entry {} describes a diverging node, which only mismatch and non-finite failures have",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
        Ok(ledger)
    }

    /// Whether a result is in the entry's family: converter, runtime, case glob and classes.
    fn in_family(e: &Entry, r: &CaseResult) -> bool {
        e.converter.matches(&r.converter)
            && glob(&e.runtime, &r.runtime)
            && e.case.as_deref().is_none_or(|c| glob(c, &r.case))
            && e.classes
                .iter()
                .all(|c| r.classes.iter().any(|have| glob(c, have)))
            && e.opsets.is_none_or(|[first, last]| {
                r.classes.iter().any(|c| {
                    c.strip_prefix("opset=")
                        .and_then(|n| n.parse::<i64>().ok())
                        .is_some_and(|n| (first..=last).contains(&n))
                })
            })
    }

    /// Whether the entry describes the result: in its family and, for an entry with a reduced
    /// form, reduced to that form. A result not reduced (yet) does not match such an entry.
    fn matches(e: &Entry, r: &CaseResult) -> bool {
        Self::in_family(e, r)
            && e.reduced.as_ref().is_none_or(|f| {
                r.reduction
                    .as_ref()
                    .is_some_and(|reduction| f.matches(reduction))
            })
    }

    /// Whether the entry explains the result's failure.
    fn explains(e: &Entry, r: &CaseResult) -> bool {
        r.verdict != Verdict::Pass && e.verdict.contains(r.verdict) && Self::matches(e, r)
    }

    /// Marks a failing result that an entry explains: its `expected` field gets the reason of
    /// the first such entry in file order. Returns whether the result is now expected.
    pub fn explain(&self, r: &mut CaseResult) -> bool {
        if r.expected.is_none() {
            r.expected = self
                .failure
                .iter()
                .find(|e| Self::explains(e, r))
                .map(|e| e.reason.clone());
        }
        r.expected.is_some()
    }

    /// Marks failing results that an entry explains (their `expected` field gets the reason)
    /// and returns the stale entries: unexpected passes.
    ///
    /// Marks are made afresh: applying the ledger again once failures carry their reduction
    /// gives what one application to the reduced results gives (as a merge of shards does).
    pub fn apply(&self, results: &mut [CaseResult]) -> Vec<String> {
        for r in results.iter_mut() {
            r.expected = None;
            self.explain(r);
        }
        self.failure
            .iter()
            .filter_map(|e| Self::stale(e, results))
            .collect()
    }

    /// The unexpected pass of an entry, if it is stale.
    ///
    /// The results that decide: the witness's on a matching converter and runtime (even when
    /// it no longer has the entry's classes or case, since a generator change can move it out
    /// of the family), or without a witness but with a case glob every result of the family;
    /// for a failure the model causes, only those of the unconverted model (`identity`).
    /// A reduced form never narrows them: a passing result has no reduction to match.
    fn stale(e: &Entry, results: &[CaseResult]) -> Option<String> {
        let deciding = results.iter().filter(|r| {
            let decides = match &e.witness {
                Some(w) => {
                    &r.case == w
                        && e.converter.matches(&r.converter)
                        && glob(&e.runtime, &r.runtime)
                }
                None => e.case.is_some() && Self::in_family(e, r),
            };
            decides && (e.cause == Cause::Converter || r.converter == "identity")
        });
        let mut judged = 0;
        let mut failing = 0;
        for r in deciding {
            judged += 1;
            failing += usize::from(r.verdict != Verdict::Pass && e.verdict.contains(r.verdict));
        }
        if judged == 0 || failing > 0 {
            return None;
        }
        let what = e
            .witness
            .clone()
            .or_else(|| e.case.clone())
            .unwrap_or_default();
        Some(format!(
            "unexpected pass: {} on {} ({what}) no longer gives {}; remove it from the ledger ({})",
            e.converter,
            e.runtime,
            e.verdict.names(),
            e.reason
        ))
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
            verdict,
            classes: classes.iter().map(|s| s.to_string()).collect(),
            tolerance: crate::results::Policy::Bound,
            ..CaseResult::unjudged(case, crate::results::Origin::Derived, "identity", "tract")
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
    fn an_opset_range_matches_only_models_of_those_opsets() {
        let ledger: Ledger = toml::from_str(
            "[[failure]]\nconverter = \"*\"\nclasses = [\"Clip\"]\nopsets = [1, 5]\n\
             verdict = \"runtime-rejected\"\nreason = \"Clip-1 unsupported\"\n",
        )
        .unwrap();
        let mut rs = vec![
            result("s0-i1", Verdict::RuntimeRejected, &["Clip", "opset=1"]),
            result("s0-i2", Verdict::RuntimeRejected, &["Clip", "opset=5"]),
            result("s0-i3", Verdict::RuntimeRejected, &["Clip", "opset=6"]),
            result("s0-i4", Verdict::RuntimeRejected, &["Clip"]),
        ];
        assert!(ledger.apply(&mut rs).is_empty());
        let explained: Vec<bool> = rs.iter().map(|r| r.expected.is_some()).collect();
        assert_eq!(explained, [true, true, false, false]);
        let backwards = "[[failure]]\nconverter = \"*\"\nclasses = [\"Clip\"]\nopsets = [5, 1]\n\
                         verdict = \"runtime-rejected\"\nreason = \"r\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.toml");
        std::fs::write(&path, backwards).unwrap();
        let err = Ledger::load(&path).unwrap_err().to_string();
        assert!(err.contains("first is after its last"), "{err}");
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
    fn a_failure_the_model_causes_is_explained_for_every_converter_and_judged_on_identity() {
        let ledger: Ledger = toml::from_str(
            "[[failure]]\nconverter = \"*\"\nruntime = \"tract\"\ncase = \"corpus/m\"\ncause = \"model\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n",
        )
        .unwrap();
        let on = |converter: &str, verdict| CaseResult {
            converter: converter.into(),
            ..result("corpus/m", verdict, &[])
        };
        // A converter that keeps the cause fails the same way, and is explained; one that
        // removes it passes, and that does not make the entry stale.
        let mut rs = vec![
            on("identity", Verdict::RuntimeRejected),
            on("exec:resave {input} {output}", Verdict::RuntimeRejected),
            on("lower1d", Verdict::Pass),
        ];
        assert!(ledger.apply(&mut rs).is_empty());
        assert!(rs[0].expected.is_some() && rs[1].expected.is_some());
        let mut rs = vec![on("lower1d", Verdict::Pass)];
        assert!(ledger.apply(&mut rs).is_empty(), "no identity result ran");
        // The unconverted model passing is what makes it stale.
        let mut rs = vec![
            on("identity", Verdict::Pass),
            on("exec:resave {input} {output}", Verdict::RuntimeRejected),
        ];
        assert_eq!(ledger.apply(&mut rs).len(), 1);
        // The same entry with the default cause is stale once every converter passes, and a
        // converter that removes the cause keeps it from being judged on the others.
        let by_converter: Ledger = toml::from_str(
            "[[failure]]\nconverter = \"*\"\nruntime = \"tract\"\ncase = \"corpus/m\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n",
        )
        .unwrap();
        let mut rs = vec![on("lower1d", Verdict::Pass)];
        assert_eq!(by_converter.apply(&mut rs).len(), 1);
    }

    #[test]
    fn a_drift_is_ledgered_like_any_failure() {
        let ledger: Ledger = toml::from_str(
            "[[failure]]\nconverter = \"exec:*approx*\"\nclasses = [\"Gelu.form=op\"]\nwitness = \"s1-i48\"\nverdict = \"drift\"\nreason = \"r\"\n",
        )
        .unwrap();
        let drifted = |case: &str, verdict| CaseResult {
            converter: "exec:approx {input} {output}".into(),
            ..result(case, verdict, &["Gelu.form=op"])
        };
        let mut rs = vec![drifted("s1-i48", Verdict::Drift)];
        assert!(ledger.apply(&mut rs).is_empty());
        assert!(rs[0].expected.is_some());
        let mut rs = vec![drifted("s1-i48", Verdict::Pass)];
        assert_eq!(ledger.apply(&mut rs).len(), 1, "the drift is gone");
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
            // An empty reduced form, an unknown key in it, a node asked of a verdict that has
            // none.
            "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\n",
            "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\nopp = \"Conv\"\n",
            "[[failure]]\nconverter = \"x\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n[failure.reduced]\nop = \"Conv\"\n",
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = format!("{:#}", Ledger::load(&p).unwrap_err());
            assert!(e.contains("known-failures.toml"), "{e}");
        }
    }

    /// A class entry for a bug (classes A, B) and an entry for the same bug in another form,
    /// recognized by its reduction: the first diverging node is a strided k1 Conv that is
    /// right alone, in a reduced model with class P.
    const REDUCED: &str = r#"
[[failure]]
converter = "identity"
runtime = "tract"
classes = ["A", "B"]
witness = "s0-i1"
verdict = "mismatch"
reason = "known bug"

[[failure]]
converter = "*"
runtime = "tract"
witness = "s5-i252"
verdict = ["mismatch", "non-finite"]
reason = "known bug, another form"

[failure.reduced]
op = "Conv"
alone = false
attributes = { kernel_shape = [1], strides = [2], alpha = 0.1, auto_pad = "VALID" }
classes = ["P"]
"#;

    /// The reduction of a Conv k1 s2 that fails only after what comes before it.
    fn reduction(op: &str, alone: bool, classes: &[&str]) -> Reduction {
        Reduction {
            case: "s5-i252".into(),
            op: Some(op.into()),
            attributes: [
                ("kernel_shape", Attribute::Ints(vec![1])),
                ("strides", Attribute::Ints(vec![2])),
                ("alpha", Attribute::Float(f64::from(0.1f32))),
                ("auto_pad", Attribute::Text("VALID".into())),
                ("group", Attribute::Int(1)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            alone: Some(alone),
            classes: classes.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn reduced(case: &str, verdict: Verdict, classes: &[&str], r: Reduction) -> CaseResult {
        CaseResult {
            reduction: Some(r),
            ..result(case, verdict, classes)
        }
    }

    #[test]
    fn a_known_bug_in_a_new_form_is_recognized_by_its_reduction() {
        let ledger: Ledger = toml::from_str(REDUCED).unwrap();
        // Not in the class entry's family (no B), but reduced to the entry's form.
        let mut rs = vec![reduced(
            "s5-i252",
            Verdict::Mismatch,
            &["A", "C"],
            reduction("Conv", false, &["P", "Q"]),
        )];
        assert!(ledger.apply(&mut rs).is_empty());
        assert_eq!(rs[0].expected.as_deref(), Some("known bug, another form"));
        // Any verdict the entry lists.
        let mut rs = vec![reduced(
            "s5-i9",
            Verdict::NonFinite,
            &[],
            reduction("Conv", false, &["P"]),
        )];
        ledger.apply(&mut rs);
        assert!(rs[0].expected.is_some());
    }

    #[test]
    fn a_new_bug_in_a_model_with_ledgered_classes_still_fails() {
        let ledger: Ledger = toml::from_str(REDUCED).unwrap();
        let classes = ["A", "C"];
        let new_bugs = [
            // Another first diverging op: a different bug.
            reduction("Relu", false, &["P"]),
            // The same op, but the node is wrong on its own.
            reduction("Conv", true, &["P"]),
            // The reduced model lacks the class the bug needs.
            reduction("Conv", false, &["Q"]),
            // The diverging node has other attributes.
            Reduction {
                attributes: [("kernel_shape".to_string(), Attribute::Ints(vec![3]))].into(),
                ..reduction("Conv", false, &["P"])
            },
        ];
        for r in new_bugs {
            let mut rs = vec![reduced("s5-i7", Verdict::Mismatch, &classes, r.clone())];
            ledger.apply(&mut rs);
            assert_eq!(rs[0].expected, None, "{r:?} must not be masked");
        }
        // Not reduced (yet): a reduced entry cannot explain it.
        let mut rs = vec![result("s5-i7", Verdict::Mismatch, &classes)];
        ledger.apply(&mut rs);
        assert_eq!(rs[0].expected, None);
        // Reduced to the form, but with a verdict the entry does not list.
        let mut rs = vec![reduced(
            "s5-i7",
            Verdict::ShapeMismatch,
            &classes,
            reduction("Conv", false, &["P"]),
        )];
        ledger.apply(&mut rs);
        assert_eq!(rs[0].expected, None);
    }

    #[test]
    fn attributes_compare_numbers_in_f32_and_keep_scalars_apart_from_lists() {
        let (int, float) = (Attribute::Int(1), Attribute::Float(1.0));
        assert!(same_value(&int, &float) && same_value(&float, &int));
        assert!(same_value(
            &Attribute::Float(0.1),
            &Attribute::Float(f64::from(0.1f32))
        ));
        assert!(!same_value(&Attribute::Float(0.1), &Attribute::Float(0.2)));
        assert!(same_value(
            &Attribute::Ints(vec![2]),
            &Attribute::Floats(vec![2.0])
        ));
        assert!(!same_value(&Attribute::Int(2), &Attribute::Ints(vec![2])));
        assert!(!same_value(
            &Attribute::Ints(vec![2]),
            &Attribute::Ints(vec![2, 2])
        ));
        assert!(same_value(
            &Attribute::Ints(vec![]),
            &Attribute::Texts(vec![])
        ));
        assert!(!same_value(
            &Attribute::Text("2".into()),
            &Attribute::Int(2)
        ));
        // An attribute the node leaves out (at its default) does not match a value asked for.
        let form = ReducedForm {
            attributes: [("dilations".to_string(), Attribute::Ints(vec![1]))].into(),
            ..ReducedForm::default()
        };
        assert!(!form.matches(&reduction("Conv", false, &[])));
    }

    #[test]
    fn witnesses_and_unexpected_passes_work_for_reduced_entries() {
        let ledger: Ledger = toml::from_str(REDUCED).unwrap();
        // The witness fails, not reduced (past --max-bundles, or before reduction): the entry is
        // not stale, and the failure is not explained.
        let mut rs = vec![result("s5-i252", Verdict::Mismatch, &[])];
        assert!(ledger.apply(&mut rs).is_empty());
        assert_eq!(rs[0].expected, None);
        // The witness passes: stale, whatever its classes.
        let mut rs = vec![result("s5-i252", Verdict::Pass, &["A"])];
        let stale = ledger.apply(&mut rs);
        assert_eq!(stale.len(), 1, "{stale:?}");
        assert!(stale[0].contains("s5-i252") && stale[0].contains("mismatch or non-finite"));
        // Another case that passes decides nothing.
        let mut rs = vec![result("s5-i3", Verdict::Pass, &["A", "B"])];
        assert!(ledger.apply(&mut rs).is_empty());
        // A reduced entry with a case glob and no witness: its cases decide, reduced or not.
        let by_case: Ledger = toml::from_str(
            "[[failure]]\nconverter = \"*\"\ncase = \"s5-*\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\nop = \"Conv\"\n",
        )
        .unwrap();
        let mut rs = vec![result("s5-i1", Verdict::Pass, &[])];
        assert_eq!(by_case.apply(&mut rs).len(), 1);
        let mut rs = vec![
            result("s5-i1", Verdict::Pass, &[]),
            reduced(
                "s5-i2",
                Verdict::Mismatch,
                &[],
                reduction("Conv", true, &[]),
            ),
        ];
        assert!(by_case.apply(&mut rs).is_empty());
        assert!(rs[1].expected.is_some());
    }

    #[test]
    fn applying_again_after_reduction_equals_applying_once_to_reduced_results() {
        let ledger: Ledger = toml::from_str(REDUCED).unwrap();
        let make = || {
            vec![
                result("s0-i1", Verdict::Mismatch, &["A", "B"]),
                result("s5-i252", Verdict::Mismatch, &["A"]),
                result("s5-i7", Verdict::Mismatch, &["A"]),
            ]
        };
        let reduce = |rs: &mut Vec<CaseResult>| {
            rs[1].reduction = Some(reduction("Conv", false, &["P"]));
            rs[2].reduction = Some(reduction("Relu", false, &["P"]));
        };
        // As a run does: apply, reduce what is left, apply again.
        let mut twice = make();
        assert!(ledger.apply(&mut twice).is_empty());
        assert_eq!(twice.iter().filter(|r| r.ok()).count(), 1);
        reduce(&mut twice);
        assert!(ledger.apply(&mut twice).is_empty());
        // As a merge of shards does: results that carry their reduction, applied once.
        let mut once = make();
        reduce(&mut once);
        let marks = |rs: &[CaseResult]| rs.iter().map(|r| r.expected.clone()).collect::<Vec<_>>();
        for r in &mut once {
            r.expected = Some("stale mark".into());
        }
        ledger.apply(&mut once);
        assert_eq!(marks(&twice), marks(&once));
        assert_eq!(
            marks(&once),
            [
                Some("known bug".to_string()),
                Some("known bug, another form".to_string()),
                None
            ]
        );
    }

    #[test]
    fn a_reduction_survives_report_json() {
        let r = reduced(
            "s5-i252",
            Verdict::Mismatch,
            &["A"],
            reduction("Conv", false, &["P"]),
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""strides":[2]"#) && json.contains(r#""alone":false"#),
            "{json}"
        );
        let back: CaseResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        // A result without one writes no field.
        let plain = serde_json::to_string(&result("s0-i1", Verdict::Pass, &[])).unwrap();
        assert!(!plain.contains("reduction"), "{plain}");
    }

    /// The project's ledger: the reduced forms of s5-i252 and s5-i198 (as their runs record them
    /// in report.json, docs/ledger.md) are recognized; the same failures reduced to another
    /// op are not.
    #[test]
    fn the_project_ledger_recognizes_its_reduced_forms() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/known-failures.toml");
        let ledger = Ledger::load(&path).unwrap();
        let ints = |v: &[i64]| Attribute::Ints(v.to_vec());
        let same_conv = Reduction {
            case: "s5-i252".into(),
            op: Some("Conv".into()),
            attributes: [
                ("auto_pad".to_string(), Attribute::Text("VALID".into())),
                ("dilations".to_string(), ints(&[1])),
                ("group".to_string(), Attribute::Int(1)),
                ("kernel_shape".to_string(), ints(&[1])),
                ("strides".to_string(), ints(&[2])),
            ]
            .into(),
            alone: Some(false),
            classes: [
                "Add.residual",
                "Conv.auto_pad=SAME_UPPER",
                "Conv.kernel=1",
                "Conv.strides>1",
            ]
            .into_iter()
            .chain(["pattern=SAME-conv->subsampling-conv", "Relu"])
            .map(String::from)
            .collect(),
        };
        let sigmoid_gather = Reduction {
            case: "s5-i198".into(),
            op: Some("Gather".into()),
            attributes: [("axis".to_string(), Attribute::Int(0))].into(),
            alone: Some(false),
            classes: [
                "Conv.group=1",
                "MaxPool.indices=1",
                "Mul.branches",
                "Sigmoid",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        };
        // The original models' classes lack the class entries' classes.
        let original = [
            "Conv.auto_pad=SAME_UPPER",
            "Conv.strides>1",
            "Sigmoid",
            "MaxPool.indices=1",
        ];
        for (case, found) in [("s5-i252", same_conv), ("s5-i198", sigmoid_gather)] {
            let mut rs = vec![reduced(case, Verdict::Mismatch, &original, found.clone())];
            ledger.apply(&mut rs);
            let entry = ledger
                .failure
                .iter()
                .find(|e| e.witness.as_deref() == Some(case));
            assert_eq!(rs[0].expected, entry.map(|e| e.reason.clone()), "{case}");
            let mut rs = vec![reduced(
                case,
                Verdict::Mismatch,
                &original,
                Reduction {
                    op: Some("Softmax".into()),
                    ..found
                },
            )];
            ledger.apply(&mut rs);
            assert_eq!(rs[0].expected, None, "{case}: another op is another bug");
            let mut rs = vec![result(case, Verdict::Mismatch, &original)];
            ledger.apply(&mut rs);
            assert_eq!(rs[0].expected, None, "{case}: not reduced");
        }
    }
}
