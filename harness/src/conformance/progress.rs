//! How far a run has got, for the caller's progress display: cases done of the total, and the
//! results so far that fail and that the ledger expects.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::ledger::Ledger;
use crate::results::{CaseResult, Verdict};

/// A snapshot of a run's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Cases finished (test-case directories and generated cases).
    pub done: usize,
    /// Cases the run will take: test-case directories and generated cases.
    pub total: usize,
    /// Results so far.
    pub results: usize,
    /// Results so far that did not pass and that the ledger does not explain by their classes
    /// or case. Before reduction and before failing cases are run again alone, so the final
    /// report's count can be lower.
    pub failing: usize,
    /// Results so far that failed as the ledger expects.
    pub expected: usize,
}

/// Counts results as they come, from any thread.
#[derive(Debug, Default)]
pub(super) struct Tally {
    results: AtomicUsize,
    failing: AtomicUsize,
    expected: AtomicUsize,
}

impl Tally {
    /// Counts `results`, judged by `ledger` as the report will first judge them.
    pub(super) fn count(&self, results: &[CaseResult], ledger: &Ledger) {
        self.results.fetch_add(results.len(), Ordering::Relaxed);
        for r in results.iter().filter(|r| r.verdict != Verdict::Pass) {
            let mut r = r.clone();
            r.expected = None;
            if ledger.explain(&mut r) {
                self.expected.fetch_add(1, Ordering::Relaxed);
            } else {
                self.failing.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The progress with `done` of `total` cases finished.
    pub(super) fn at(&self, done: usize, total: usize) -> Progress {
        Progress {
            done,
            total,
            results: self.results.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
            expected: self.expected.load(Ordering::Relaxed),
        }
    }
}
