//! Where things are when the command line does not say: the repository's own layout, relative
//! to the directory the command runs in (`cargo xtask` runs it at the repository's root).

use std::path::PathBuf;

/// Reports of the last run.
pub const REPORT_DIR: &str = "reports/latest";
/// The committed corpus of test-case directories.
pub const CORPUS: &str = "corpus";
/// Reviewed golden outputs of the corpus, beside it.
pub const GOLDEN: &str = "golden";
/// Where fuzzing saves new failure signatures as corpus cases.
pub const REGRESSIONS: &str = "corpus/regressions";
/// The expected-failure ledger.
pub const LEDGER: &str = "corpus/known-failures.toml";
/// Named latency baselines.
pub const BASELINES: &str = "reports/baselines";

/// The ledger, when the repository has one here.
pub fn ledger() -> Option<PathBuf> {
    Some(PathBuf::from(LEDGER)).filter(|p| p.is_file())
}
