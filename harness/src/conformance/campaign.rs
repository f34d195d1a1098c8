//! Campaigns over failures: reducing failing results into repro bundles (one per failure
//! signature) and fuzzing, which keeps generating cases and saves each new signature as a
//! regression corpus case.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rayon::prelude::*;

use super::reduce;
use super::upstream::Upstream;
use super::{generated_subject, generated_subjects, stored_subject, Runner, Subject};
use crate::compare::Tolerance;
use crate::isolate;
use crate::onnx::proto;
use crate::report::Report;
use crate::results::{CaseResult, Origin, Reduction, Tool, Verdict};

/// Failure signatures seen so far: (converter, verdict, first diverging op) to what the
/// reduction of the first failure with that signature gave.
pub type Signatures = std::collections::HashMap<(String, Verdict, Option<String>), Signed>;

/// What a run knows of a failure signature once its first failure is reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct Signed {
    /// Path of the repro bundle; none without a report directory or when it cannot be written.
    pub bundle: Option<String>,
    /// What the reduction found; every failure with this signature shares it.
    pub reduction: Reduction,
}

/// Where a fuzzing campaign stands.
#[derive(Debug, Clone, Default)]
pub struct FuzzProgress {
    /// Cases run.
    pub cases: u64,
    /// Failing results not in the ledger.
    pub failures: usize,
    /// Distinct failure signatures.
    pub signatures: usize,
    /// Coverage classes hit.
    pub classes: usize,
    /// Seconds since the start.
    pub elapsed_s: f64,
    /// Regression cases saved.
    pub saved: Vec<String>,
    /// Bundles that could not be saved as regression cases, and why.
    pub not_saved: Vec<String>,
}

/// Copies a bundle into the regression corpus and lists it in the ledger as a failure to
/// triage. Returns the saved directory.
/// Writes the golden outputs of a new regression case (`corpus/regressions/X`) into the
/// `golden/` directory next to the corpus, when there is one, so CI checks it from now on.
fn save_golden(regressions: &Path, case_dir: &Path) -> Result<()> {
    let Some(corpus) = regressions.parent() else {
        return Ok(());
    };
    let golden = corpus.parent().unwrap_or(Path::new(".")).join("golden");
    if !golden.is_dir() {
        return Ok(());
    }
    let (model, outputs) = crate::corpus::golden::compute(case_dir)?;
    let name = crate::corpus::case_name(corpus, case_dir);
    let tensors: Vec<(String, crate::tensor::Tensor)> = outputs
        .iter()
        .map(|o| (o.name.clone(), crate::corpus::golden::stored_f64(o)))
        .collect();
    let summary = crate::corpus::golden::summary(&name, &model, &tensors);
    crate::corpus::golden::write(&golden, &name, &tensors, &summary)
}

fn save_regression(
    bundle: &Path,
    dir: &Path,
    r: &CaseResult,
    ledger_file: Option<&Path>,
) -> Result<String> {
    let name = bundle
        .file_name()
        .context("bundle name")?
        .to_string_lossy()
        .into_owned();
    let target = dir.join(&name);
    crate::fsutil::write_dir_atomically(&target, |tmp| {
        for entry in walk(bundle)? {
            let rel = entry.strip_prefix(bundle)?;
            let dest = tmp.join(rel);
            if entry.is_dir() {
                std::fs::create_dir_all(&dest)?;
            } else {
                std::fs::copy(&entry, &dest)?;
            }
        }
        Ok(())
    })?;
    save_golden(dir, &target)?;
    if let Some(ledger) = ledger_file {
        use std::io::Write;
        let corpus_label = dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sub = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = format!(
            "\n[[failure]]\nconverter = {:?}\nruntime = {:?}\ncase = \"{corpus_label}/{sub}/{name}\"\nverdict = {:?}\nreason = \"found by cargo xtask fuzz ({}): {}; triage it, then replace this reason\"\n",
            r.converter,
            r.runtime,
            r.verdict.name(),
            r.case,
            r.message.as_deref().unwrap_or("").chars().take(160).collect::<String>().replace('"', "'"),
        );
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(ledger)?;
        f.write_all(entry.as_bytes())?;
    }
    Ok(target.display().to_string())
}

/// Every path under `root`, directories before their contents.
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            out.push(p.clone());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What [`Runner::bundle_one`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Bundled {
    /// A new signature: the failure was reduced and its bundle written here (none without a
    /// report directory or when it cannot be written).
    New(Option<String>),
    /// A known signature: the result shares its reduction and points to its bundle.
    Known(Option<String>),
}

impl Runner {
    /// A fuzzing campaign: generated cases in batches until `budget`, Ctrl-C, or `--cases`
    /// (0: no limit). Each new failure signature is reduced into a bundle and, with
    /// `regressions`, saved there as a corpus case and listed in the ledger file `ledger_file`
    /// (as an expected failure to triage), so every later run re-checks it.
    pub fn fuzz(
        &self,
        budget: Option<Duration>,
        regressions: Option<&Path>,
        ledger_file: Option<&Path>,
        progress: &dyn Fn(&FuzzProgress),
    ) -> Result<Report> {
        let start = Instant::now();
        let mut results: Vec<CaseResult> = Vec::new();
        let mut seen = Signatures::default();
        let mut classes = std::collections::BTreeSet::new();
        let mut state = FuzzProgress::default();
        let mut next = 0u64;
        const BATCH: u64 = 64;
        loop {
            let over_budget = budget.is_some_and(|b| start.elapsed() >= b);
            let over_cases = self.options.cases > 0 && next >= self.options.cases;
            if over_budget || over_cases || isolate::interrupted() {
                break;
            }
            let end = if self.options.cases > 0 {
                (next + BATCH).min(self.options.cases)
            } else {
                next + BATCH
            };
            let indices: Vec<u64> = (next..end)
                .filter(|&i| self.options.shard.contains(i))
                .collect();
            next = end;
            let mut batch: Vec<CaseResult> = indices
                .par_iter()
                .flat_map_iter(|&i| {
                    generated_subjects(self.options.seed, i, &self.options.gen)
                        .iter()
                        .flat_map(|subject| self.run_subject(subject))
                        .collect::<Vec<_>>()
                })
                .collect();
            self.ledger.apply(&mut batch);
            self.bundle_new_signatures(&mut batch, &mut seen, &mut state, regressions, ledger_file);
            classes.extend(batch.iter().flat_map(|r| r.classes.iter().cloned()));
            results.extend(batch);
            state.cases = next;
            state.classes = classes.len();
            state.elapsed_s = start.elapsed().as_secs_f64();
            progress(&state);
        }
        let tool = Tool::harness();
        let mut report = Report::new(
            tool,
            self.environment(),
            serde_json::to_value(&self.options)?,
            results,
            start.elapsed().as_secs_f64(),
        );
        report.apply_ledger(&self.ledger);
        // A fuzz run covers a changing set of cases: only the failures decide.
        report.unexpected_passes.clear();
        report.stopped_early = Some(
            if isolate::interrupted() {
                "interrupted by a signal"
            } else {
                "campaign ended"
            }
            .into(),
        );
        Ok(report)
    }

    /// Bundles each failure of a fuzzing batch whose signature is new and, with
    /// `regressions`, saves the bundle there as a regression corpus case.
    fn bundle_new_signatures(
        &self,
        batch: &mut [CaseResult],
        seen: &mut Signatures,
        state: &mut FuzzProgress,
        regressions: Option<&Path>,
        ledger_file: Option<&Path>,
    ) {
        for r in batch.iter_mut().filter(|r| !r.ok()) {
            if isolate::interrupted() {
                break;
            }
            let bundled = self.bundle_one(r, seen);
            // A known bug in a new form, recognized by its reduction: nothing to save.
            if self.ledger.explain(r) {
                continue;
            }
            state.failures += 1;
            let Some(Bundled::New(Some(path))) = bundled else {
                continue;
            };
            state.signatures += 1;
            if let Some(dir) = regressions {
                match save_regression(Path::new(&path), dir, r, ledger_file) {
                    Ok(saved) => state.saved.push(saved),
                    Err(e) => state
                        .not_saved
                        .push(format!("{path}: cannot save the regression case: {e:#}")),
                }
            }
        }
    }

    /// Signs and reduces failing results, one reduction per failure signature (converter,
    /// verdict, first diverging op), and writes their repro bundles under
    /// `--report DIR/failures/`; later failures with the same signature share its reduction and
    /// point to its bundle. At most `max_bundles` reductions per converter (so that testing
    /// several converters in one run does not starve the last): after that, its failures are
    /// neither signed nor reduced (a run with that many new signatures fails anyway), so they
    /// carry no reduction and only ledger entries without a reduced form can explain them.
    pub(super) fn bundle_failures(&self, report: &mut Report) {
        let mut seen = Signatures::default();
        let mut made: HashMap<String, usize> = HashMap::new();
        for r in report.results.iter_mut() {
            // A case over the resource limits has nothing a smaller repro would show.
            let too_large = r.verdict == Verdict::TooLarge;
            let used = made.get(&r.converter).copied().unwrap_or(0);
            if r.ok() || too_large || used >= self.options.max_bundles || isolate::interrupted() {
                continue;
            }
            let bundled = self.bundle_one(r, &mut seen);
            if let Some(Bundled::New(_)) = bundled {
                *made.entry(r.converter.clone()).or_default() += 1;
            }
            // The reduction can show a known bug the first result did not (or its failure
            // notes why there is no bundle): `report --resume` judges the result as it is now.
            if let Some(j) = &self.journal {
                j.bundled(r);
            }
        }
    }

    /// Signs a failing result and, when its signature is new, reduces it and writes its bundle
    /// (with a report directory); a known signature shares the reduction of its first failure.
    /// Sets `r.reduction` and `r.repro`. The reduction is made without a report directory too:
    /// whether the ledger recognizes a failure does not depend on where files go.
    pub fn bundle_one(&self, r: &mut CaseResult, seen: &mut Signatures) -> Option<Bundled> {
        let start = Instant::now();
        // The original subject, to sign the failure before spending time reducing it.
        let subject = self.subject_again(r)?;
        let model = proto::decode_model(&subject.model).ok()?;
        let (sig, _) = reduce::signature_of(self, &r.converter, &model, &subject.inputs, r);
        let key = (r.converter.clone(), sig.verdict, sig.op.clone());
        if let Some(known) = seen.get(&key) {
            r.repro = known.bundle.clone();
            r.reduction = Some(known.reduction.clone());
            return Some(Bundled::Known(known.bundle.clone()));
        }
        let tolerance = self.tolerance_of(&subject);
        let reduced = self.reduce(r, &subject, &model);
        let reduced = match reduced {
            Ok(x) => x,
            Err(e) => {
                let m = r.message.take().unwrap_or_default();
                r.message = Some(format!("{m} [no repro bundle: {e:#}]"));
                return None;
            }
        };
        let reduction = reduced.evidence(&r.case);
        r.reduction = Some(reduction.clone());
        let bundle = self.options.report_dir.as_ref().and_then(|dir| {
            self.write_bundle(&dir.join("failures"), r, &reduced, &key, tolerance, start)
        });
        r.repro = bundle.clone();
        seen.insert(
            key,
            Signed {
                bundle: bundle.clone(),
                reduction,
            },
        );
        Some(Bundled::New(bundle))
    }

    /// Writes the repro bundle of a reduced failure under `dir`; returns its path, or notes in
    /// the result's message why it could not be written.
    fn write_bundle(
        &self,
        dir: &Path,
        r: &mut CaseResult,
        reduced: &reduce::Reduced,
        key: &(String, Verdict, Option<String>),
        tolerance: Tolerance,
        start: Instant,
    ) -> Option<String> {
        let name = reduce::slug(&format!(
            "{}-{}",
            r.case,
            r.converter.chars().take(24).collect::<String>()
        ));
        let bundle = dir.join(&name);
        let converted = self.converted_onnx(&proto::encode_model(&reduced.model), &r.converter);
        let command = crate::results::repro_command(&bundle, &r.converter, &self.options.runtime);
        let environment = self.environment();
        let extra = serde_json::json!({
            "command": command,
            "signature": {"converter": &key.0, "verdict": key.1, "first_diverging_op": &key.2},
            "versions": environment,
            "seconds_to_bundle": start.elapsed().as_secs_f64(),
        });
        let replay = self
            .converters
            .iter()
            .find(|c| c.name() == r.converter)
            .map(|c| c.replay());
        let written =
            reduce::write_bundle(&bundle, reduced, r, extra, converted).and_then(|path| {
                if let Some(replay) = replay {
                    let upstream = Upstream {
                        reduced,
                        original: r,
                        replay,
                        tolerance,
                        environment: &environment,
                        command: &command,
                        timeout: self.options.timeout,
                        drift: self.options.drift,
                    };
                    upstream.write(&path)?;
                }
                Ok(path)
            });
        match written {
            Ok(path) => Some(path.display().to_string()),
            Err(e) => {
                let m = r.message.take().unwrap_or_default();
                r.message = Some(format!("{m} [cannot write the repro bundle: {e:#}]"));
                None
            }
        }
    }

    /// Reduces a failure: a generated case by shrinking its model description, any other by
    /// cutting its model at the first diverging node.
    fn reduce(
        &self,
        r: &CaseResult,
        subject: &Subject,
        model: &tract_onnx::pb::ModelProto,
    ) -> Result<reduce::Reduced> {
        match (&subject.origin, &subject.expected) {
            (
                &Origin::Generated {
                    base,
                    index,
                    quantized,
                },
                _,
            ) => reduce::reduce_generated(
                self,
                &r.converter,
                base,
                index,
                &self.options.gen.one_form(quantized),
                self.options.reduce_budget,
            ),
            (_, Ok(expected)) => reduce::reduce_model(
                self,
                &r.converter,
                model,
                &subject.inputs,
                expected,
                subject.tolerance,
                r,
            ),
            (_, Err((_, m))) => Err(anyhow::anyhow!(m.clone())),
        }
    }

    /// The subject a result came from, built again from its origin (a corpus case with its
    /// golden outputs and its own tolerance, as the run read it).
    pub(super) fn subject_again(&self, r: &CaseResult) -> Option<Subject> {
        match &r.origin {
            &Origin::Generated {
                base,
                index,
                quantized,
            } => Some(generated_subject(base, index, quantized, &self.options.gen)),
            Origin::Corpus { dir, data_set } | Origin::TestDir { dir, data_set } => {
                let is_corpus = matches!(r.origin, Origin::Corpus { .. });
                let root = match &self.options.corpus {
                    Some(root) if is_corpus => root.as_path(),
                    _ => dir.as_path(),
                };
                let case = self.read_test_dir(root, dir, is_corpus).ok()?;
                let set = case.test.data_sets.get(*data_set)?;
                let mut subject =
                    stored_subject(&r.case, r.origin.clone(), &case.test.model, set).0;
                subject.tolerance = case.tolerance;
                Some(subject)
            }
            Origin::Derived => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Options, Shard};
    use super::*;

    /// A run of generated case `index` of seed 5 on identity and tract, with a ledger file.
    fn run_case(index: u64, ledger: &Path, max_bundles: usize) -> Report {
        let runner = Runner::new(Options {
            cases: index + 1,
            seed: 5,
            shard: Shard {
                index: index + 1,
                count: index + 1,
            },
            converters: vec!["identity".into()],
            repeats: 0,
            known_failures: Some(ledger.to_path_buf()),
            max_bundles,
            ..Options::default()
        })
        .unwrap();
        runner.run(&|_| {}).unwrap()
    }

    fn project_ledger() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/known-failures.toml")
    }

    /// s5-i252 is tract's SAME-conv subsampling bug in a form its class does not name; the
    /// project's ledger recognizes it once the run has reduced it (docs/ledger.md).
    #[test]
    fn a_run_recognizes_a_known_bug_by_its_reduction() {
        let report = run_case(252, &project_ledger(), 10);
        let r = &report.results[0];
        assert_eq!((r.case.as_str(), r.verdict), ("s5-i252", Verdict::Mismatch));
        assert!(report.all_pass(), "{:?}", r.message);
        let found = r.reduction.as_ref().expect("the failure was reduced");
        assert_eq!(found.op.as_deref(), Some("Conv"));
        assert_eq!(found.alone, Some(false));
        assert!(found
            .classes
            .iter()
            .any(|c| c == "pattern=SAME-conv->subsampling-conv"));
        assert_eq!(r.repro, None, "no report directory, no bundle");
        // Without reductions (--max-bundles 0) the reduced entry cannot explain it.
        let report = run_case(252, &project_ledger(), 0);
        assert!(!report.all_pass());
        assert_eq!(report.results[0].reduction, None);
    }

    /// The same failure against a ledger whose reduced form names another diverging op: the
    /// failure stays a failure, and the entry (whose witness fails) is not stale.
    #[test]
    fn a_run_does_not_mask_a_failure_reduced_to_another_form() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("known-failures.toml");
        std::fs::write(
            &ledger,
            r#"
[[failure]]
converter = "*"
runtime = "tract"
classes = ["Conv.auto_pad=SAME_UPPER", "Conv.strides>1"]
witness = "s5-i252"
verdict = "mismatch"
reason = "another bug of models with these classes"

[failure.reduced]
op = "Relu"
"#,
        )
        .unwrap();
        let report = run_case(252, &ledger, 10);
        let r = &report.results[0];
        assert!(r.classes.iter().any(|c| c == "Conv.auto_pad=SAME_UPPER"));
        assert_eq!(r.expected, None);
        assert!(r.reduction.is_some());
        assert!(!report.all_pass());
        assert!(report.unexpected_passes.is_empty());
    }
}
