//! Resource limits of one case: the largest tensor and the oracle's working set.
//!
//! A hostile or mistaken model can declare shapes whose tensors do not fit in memory. Every
//! tensor read from a file and every value the oracle computes is checked against these
//! limits before it is allocated; a case over them gets the verdict `too-large` and is not run
//! by any converter or runtime. The limits are process-wide (set once from the command line).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Default largest tensor: 2^28 elements (1 GiB of f32).
pub const DEFAULT_MAX_ELEMENTS: usize = 1 << 28;

/// Default oracle working set per case: 6 GiB, so two cases at a time stay well inside a
/// 24 GiB machine next to the runtimes.
pub const DEFAULT_MAX_CASE_BYTES: usize = 6 << 30;

/// Bytes the oracle holds per element of a float value: the f64 value and its f64 bound.
pub const ORACLE_BYTES_PER_ELEMENT: usize = 16;

static MAX_ELEMENTS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_ELEMENTS);
static MAX_CASE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_CASE_BYTES);

thread_local! {
    /// Bytes the oracle has allocated for the case this thread evaluates.
    static CASE_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// A tensor or a working set over the limits: the case gets the verdict `too-large`. Kept as a
/// type so that the verdict is chosen by what the error is, not by its text.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(pub String);

/// Sets both limits for the rest of the process.
pub fn set(max_elements: usize, max_case_bytes: usize) {
    MAX_ELEMENTS.store(max_elements.max(1), Ordering::Relaxed);
    MAX_CASE_BYTES.store(max_case_bytes.max(1), Ordering::Relaxed);
}

/// The largest tensor, in elements.
pub fn max_elements() -> usize {
    MAX_ELEMENTS.load(Ordering::Relaxed)
}

/// The oracle's working-set limit per case, in bytes.
pub fn max_case_bytes() -> usize {
    MAX_CASE_BYTES.load(Ordering::Relaxed)
}

/// Element count of `shape`, or `None` when it exceeds [`max_elements`] (or overflows).
pub fn element_count(shape: &[usize]) -> Option<usize> {
    let limit = max_elements();
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d).filter(|&n| n <= limit))
}

/// Starts counting the working set of a new case on this thread.
pub fn begin_case() {
    CASE_BYTES.with(|c| c.set(0));
}

/// Reserves `elements` oracle elements for the current case; `Err` with the totals when the
/// case would go over [`max_case_bytes`].
pub fn reserve(elements: usize) -> Result<(), String> {
    let add = elements.saturating_mul(ORACLE_BYTES_PER_ELEMENT);
    CASE_BYTES.with(|c| {
        let total = c.get().saturating_add(add);
        if total > max_case_bytes() {
            Err(format!(
                "the case needs more than {} bytes of oracle values (limit {}; --max-case-bytes)",
                total,
                max_case_bytes()
            ))
        } else {
            c.set(total);
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_refuses_past_the_case_limit_and_resets_per_case() {
        begin_case();
        let limit_elements = max_case_bytes() / ORACLE_BYTES_PER_ELEMENT;
        assert!(reserve(limit_elements / 2).is_ok());
        assert!(reserve(limit_elements / 2).is_ok());
        let e = reserve(1).unwrap_err();
        assert!(e.contains("--max-case-bytes"), "{e}");
        begin_case();
        assert!(reserve(1).is_ok());
    }

    #[test]
    fn element_count_saturates_instead_of_overflowing() {
        assert_eq!(element_count(&[2, 3]), Some(6));
        assert_eq!(element_count(&[usize::MAX, 2]), None);
        assert_eq!(element_count(&[1 << 20, 1 << 20]), None);
    }
}
