//! Results that may depend on what ran beside them (a timeout, a worker that died or reached its
//! limit) run again alone after the parallel part of a run; the result run alone stands.

use std::time::Instant;

use super::Runner;
use crate::isolate;
use crate::results::{CaseResult, Verdict};

/// Whether a result may come from what ran beside it rather than from its own case: a timeout
/// (a starved process), a worker process that died (the error the worker module reports
/// as "worker died") or reached its memory limit, which a library's state left by earlier
/// cases can cause.
fn may_depend_on_neighbours(r: &CaseResult) -> bool {
    matches!(r.verdict, Verdict::Timeout | Verdict::ResourceLimit)
        || r.message
            .as_deref()
            .is_some_and(|m| m.contains("worker died"))
}

impl Runner {
    /// Runs every result that timed out or whose worker process died again, one at a time,
    /// each in a fresh worker with nothing else running. A verdict must not depend on what ran
    /// beside it: the result that stands is the one run alone, and where that one completes it
    /// keeps what the parallel run said in `in_parallel` (docs/RELIABILITY.md). A timeout that
    /// does not reproduce alone is a defect of the harness; a crash that does not is a
    /// library's state left by earlier cases, a finding to minimize.
    pub(super) fn retry_alone(&self, results: &mut [CaseResult]) {
        for r in results.iter_mut() {
            if !may_depend_on_neighbours(r) || isolate::interrupted() {
                continue;
            }
            // Already run alone by the run this one resumes.
            if self
                .resumed
                .alone
                .iter()
                .any(|a| a.case == r.case && a.converter == r.converter)
            {
                continue;
            }
            let Some(subject) = self.subject_again(r) else {
                continue;
            };
            crate::worker::retire_idle_workers();
            let start = Instant::now();
            let Some(mut alone) = self.run_with(&subject, &r.converter) else {
                continue;
            };
            alone.wall_ms = start.elapsed().as_secs_f64() * 1e3;
            if may_depend_on_neighbours(&alone) {
                let m = alone.message.take().unwrap_or_default();
                alone.message = Some(format!("{m} (also alone, in a fresh worker)"));
            } else {
                alone.in_parallel = Some(format!(
                    "{}: {}",
                    r.verdict.name(),
                    r.message.as_deref().unwrap_or_default()
                ));
            }
            if let Some(j) = &self.journal {
                j.alone(&alone);
            }
            *r = alone;
        }
    }
}
