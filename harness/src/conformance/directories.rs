//! ONNX test-case directories (the corpus, `--onnx-tests`) as subjects of a run: read, checked
//! against the oracle, judged against golden outputs.

use std::path::Path;

use anyhow::{Context as _, Result};

use super::subject::stored_subject;
use super::Runner;
use crate::compare::Tolerance;
use crate::limits::TooLarge;
use crate::onnx::testcase;
use crate::results::{CaseResult, Origin, Verdict};

/// A test-case directory as read, with its case's own tolerance policy.
pub(super) struct StoredCase {
    pub(super) test: testcase::TestCase,
    pub(super) tolerance: Option<Tolerance>,
}

impl Runner {
    /// Results of one ONNX test-case directory: the oracle's own check against the stored
    /// outputs, then each converter. A directory that cannot be read gets `error` results
    /// (`too-large` when a tensor is over the resource limits).
    pub fn run_test_dir(&self, root: &Path, dir: &Path) -> Vec<CaseResult> {
        let rel = dir.strip_prefix(root).unwrap_or(dir);
        let label = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = if rel.as_os_str().is_empty() {
            label
        } else {
            format!("{label}/{}", rel.display())
        };
        let is_corpus = self.options.corpus.as_deref() == Some(root);
        let origin = |data_set| {
            let dir = dir.to_path_buf();
            if is_corpus {
                Origin::Corpus { dir, data_set }
            } else {
                Origin::TestDir { dir, data_set }
            }
        };
        let case = match self.read_test_dir(root, dir, is_corpus) {
            Ok(c) => c,
            Err(e) => {
                let verdict = if e.chain().any(|c| c.is::<TooLarge>()) {
                    Verdict::TooLarge
                } else {
                    Verdict::Error
                };
                return self
                    .converters
                    .iter()
                    .map(|c| {
                        let mut r =
                            CaseResult::unjudged(&id, origin(0), &c.name(), self.runtime.name());
                        r.verdict = verdict;
                        r.message = Some(format!("{e:#}"));
                        r
                    })
                    .collect();
            }
        };
        let mut out = Vec::new();
        let many = case.test.data_sets.len() > 1;
        for (k, set) in case.test.data_sets.iter().enumerate() {
            let id = if many {
                format!("{id}#{k}")
            } else {
                id.clone()
            };
            let (mut subject, oracle_result) =
                stored_subject(&id, origin(k), &case.test.model, set);
            subject.tolerance = case.tolerance;
            out.push(oracle_result);
            out.extend(self.run_subject(&subject));
        }
        out
    }

    /// Reads a test-case directory; for a corpus case, its stored outputs are replaced by the
    /// reviewed golden ones and its case.toml tolerance policy is read.
    pub(super) fn read_test_dir(
        &self,
        root: &Path,
        dir: &Path,
        is_corpus: bool,
    ) -> Result<StoredCase> {
        let mut test = testcase::read(dir)?;
        anyhow::ensure!(
            !test.data_sets.is_empty(),
            "{}: no test_data_set_K directory",
            dir.display()
        );
        if !is_corpus {
            return Ok(StoredCase {
                test,
                tolerance: None,
            });
        }
        let tolerance = if dir.join("case.toml").is_file() {
            Some(crate::corpus::CaseToml::read(dir)?.tolerance()?)
        } else {
            None
        };
        if let Some(golden) = &self.options.golden {
            let name = crate::corpus::case_name(root, dir);
            let outputs = crate::corpus::golden::read(golden, &name)?;
            let set = test
                .data_sets
                .first_mut()
                .with_context(|| format!("{}: no test_data_set_0", dir.display()))?;
            set.outputs = outputs;
        }
        Ok(StoredCase { test, tolerance })
    }
}
