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
use crate::runtime::Precision;

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
    /// SIMD extensions (named as report.json's `environment.simd` names them) whose presence
    /// takes the bug's code path away: on a CPU with any of them the entry explains nothing
    /// and is never stale, so a run's verdict does not depend on the machine it ran on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_lacks: Vec<String>,
    /// Precisions the runtime must have computed in (`f32`, `bf16`, `f16`): a bug of one
    /// precision's kernels, where the same converter computes in another on other CPUs
    /// (OpenVINO's default: bf16 where the CPU has it, f32 elsewhere).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub precision: Vec<Precision>,
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
    /// Coverage classes the reduced model must all have, each a glob as an entry's `classes`.
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
            && self
                .classes
                .iter()
                .all(|c| r.classes.iter().any(|have| glob(c, have)))
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
    /// The SIMD extensions of the CPU whose results it judges ([`Entry::cpu_lacks`]): this
    /// machine's once loaded, a report's own with [`Ledger::on_cpu`].
    #[serde(skip)]
    pub cpu: Vec<String>,
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
        Ok(Ledger {
            cpu: crate::results::simd_features(),
            ..ledger
        })
    }

    /// The ledger judging results of a CPU with the SIMD extensions `simd`.
    pub fn on_cpu(&self, simd: &[String]) -> Ledger {
        Ledger {
            failure: self.failure.clone(),
            cpu: simd.to_vec(),
        }
    }

    /// Whether the entry holds on the ledger's CPU: it has none of the extensions the entry
    /// says take the bug away.
    pub fn holds_on_cpu(&self, e: &Entry) -> bool {
        !e.cpu_lacks.iter().any(|f| self.cpu.contains(f))
    }

    /// Whether the result ran at one of the entry's precisions (any, when it names none); a
    /// result that never computed (a refusal) has no precision to rule it out.
    fn at_precision(e: &Entry, r: &CaseResult) -> bool {
        e.precision.is_empty() || r.precision.is_none_or(|p| e.precision.contains(&p))
    }

    /// Whether a result is in the entry's family: converter, runtime, precision, case glob
    /// and classes.
    fn in_family(e: &Entry, r: &CaseResult) -> bool {
        e.converter.matches(&r.converter)
            && glob(&e.runtime, &r.runtime)
            && Self::at_precision(e, r)
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
                .find(|e| self.holds_on_cpu(e) && Self::explains(e, r))
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
            .filter(|e| self.holds_on_cpu(e))
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
                        && Self::at_precision(e, r)
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
mod tests;
