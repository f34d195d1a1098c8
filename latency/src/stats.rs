//! Statistics of latency samples: quantiles, median absolute deviation, the half-sample mode,
//! a bootstrap confidence interval of a ratio of medians, and the regression decision built
//! on it.
//!
//! Everything here is deterministic (the bootstrap draws from a seeded generator), so the
//! decision on a given pair of sample sets never changes between runs.

use serde::{Deserialize, Serialize};

// One quantile convention and one summary for the whole project: the harness library's.
pub use harness::results::{median, quantile, Summary};

/// The half-sample mode of sorted data (Bickel and Frühwirth): the densest point, found by
/// keeping, again and again, the half of the values that spans the shortest range, until
/// three or fewer are left. Unlike the minimum it ignores a minority of unusually fast runs,
/// and unlike the median it ignores a minority of slow ones. `NaN` for no data.
pub fn half_sample_mode(sorted: &[f64]) -> f64 {
    let mut x = sorted;
    while x.len() > 3 {
        let h = x.len().div_ceil(2);
        let start = (0..=x.len() - h)
            .min_by(|&a, &b| (x[a + h - 1] - x[a]).total_cmp(&(x[b + h - 1] - x[b])))
            .unwrap_or(0);
        x = &x[start..start + h];
    }
    match *x {
        [] => f64::NAN,
        [a] => a,
        [a, b] => (a + b) / 2.0,
        [a, b, c] => match (b - a).total_cmp(&(c - b)) {
            std::cmp::Ordering::Less => (a + b) / 2.0,
            std::cmp::Ordering::Greater => (b + c) / 2.0,
            std::cmp::Ordering::Equal => b,
        },
        _ => unreachable!("at most three values are left"),
    }
}

/// A point estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// The estimate from the data as they are.
    pub estimate: f64,
    /// Upper end.
    pub high: f64,
}

/// SplitMix64: a tiny, well-mixed generator, enough for resampling indices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * n as f64) as usize
    }
}

/// Median of `v`, reordering it (no copy: the bootstrap calls this thousands of times).
fn median_in_place(v: &mut [f64]) -> f64 {
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *m;
    if v.len() % 2 == 1 {
        upper
    } else {
        let lower = v[..mid].iter().copied().fold(f64::MIN, f64::max);
        (lower + upper) / 2.0
    }
}

fn resampled_median(xs: &[f64], rng: &mut SplitMix, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..xs.len()).map(|_| xs[rng.below(xs.len())]));
    median_in_place(scratch)
}

/// Median of a two-level resample of `groups`: as many groups as there are, drawn with
/// replacement, and from each drawn group as many values as it has, drawn with replacement.
fn resampled_nested_median(groups: &[&[f64]], rng: &mut SplitMix, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    for _ in 0..groups.len() {
        let g = groups[rng.below(groups.len())];
        scratch.extend((0..g.len()).map(|_| g[rng.below(g.len())]));
    }
    median_in_place(scratch)
}

/// Bootstrap resamples drawn by [`ratio_of_medians`].
pub const RESAMPLES: usize = 2000;

/// Confidence interval of `median(now) / median(base)` by the percentile bootstrap: both
/// sets are resampled independently `resamples` times, from a generator seeded with `seed`.
/// `None` when either set is empty or the base median is not positive.
pub fn ratio_of_medians(
    now: &[f64],
    base: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    ratio_of_medians_nested(&[now], &[base], confidence, resamples, seed)
}

/// [`ratio_of_medians`] for values that come in groups (the round floors of independent
/// loads of a model): the bootstrap resamples groups, then values within each drawn group,
/// so differences between groups widen the interval as much as they are seen to vary. With
/// one group per side it is the plain bootstrap. The estimate is the ratio of the medians of
/// all values pooled. `None` when either side has no value or the base median is not
/// positive.
pub fn ratio_of_medians_nested(
    now: &[&[f64]],
    base: &[&[f64]],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    let now: Vec<&[f64]> = now.iter().copied().filter(|g| !g.is_empty()).collect();
    let base: Vec<&[f64]> = base.iter().copied().filter(|g| !g.is_empty()).collect();
    let (all_now, all_base) = (now.concat(), base.concat());
    let estimate = median(&all_now) / median(&all_base);
    if all_now.is_empty()
        || all_base.is_empty()
        || !estimate.is_finite()
        || median(&all_base) <= 0.0
    {
        return None;
    }
    let mut rng = SplitMix(seed);
    let mut scratch = Vec::with_capacity(all_now.len().max(all_base.len()));
    let mut ratios: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            let n = resampled_nested_median(&now, &mut rng, &mut scratch);
            let b = resampled_nested_median(&base, &mut rng, &mut scratch);
            n / b
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    Some(Interval {
        low: quantile(&ratios, tail),
        estimate,
        high: quantile(&ratios, 1.0 - tail),
    })
}

/// Confidence interval of the median of one set (paired ratios, for instance).
pub fn median_interval(
    xs: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let mut rng = SplitMix(seed);
    let mut scratch = Vec::with_capacity(xs.len());
    let mut meds: Vec<f64> = (0..resamples.max(1))
        .map(|_| resampled_median(xs, &mut rng, &mut scratch))
        .collect();
    meds.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    Some(Interval {
        low: quantile(&meds, tail),
        estimate: median(xs),
        high: quantile(&meds, 1.0 - tail),
    })
}

/// What a comparison with a baseline concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Clearly slower: the whole interval lies above `1 + margin`.
    Regression,
    /// Clearly faster: the whole interval lies below `1 / (1 + margin)`.
    Improvement,
    /// Neither is clear.
    Unchanged,
}

impl Change {
    /// The decision in a word.
    pub fn word(self) -> &'static str {
        match self {
            Change::Regression => "regression",
            Change::Improvement => "improvement",
            Change::Unchanged => "unchanged",
        }
    }
}

/// The decision rule: a change is reported only when the whole confidence interval of the
/// ratio (now / baseline) lies beyond `1 + margin` (or below its reciprocal), so noise that
/// merely widens the interval never raises an alarm.
pub fn decide(ci: &Interval, margin: f64) -> Change {
    if ci.low > 1.0 + margin {
        Change::Regression
    } else if ci.high < 1.0 / (1.0 + margin) {
        Change::Improvement
    } else {
        Change::Unchanged
    }
}

/// Two decisions on the same comparison taken together: a change only where both see the
/// same one, unchanged where they differ.
pub fn agree(a: Change, b: Change) -> Change {
    if a == b {
        a
    } else {
        Change::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic "noisy" samples: a base value times a spread of 1 ± 8% plus rare 3x
    /// outliers (a descheduled thread), in a fixed pseudo-random order.
    fn noisy(base: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix(seed);
        (0..n)
            .map(|i| {
                let u = rng.below(10_000) as f64 / 10_000.0;
                let outlier = if i % 37 == 0 { 3.0 } else { 1.0 };
                base * (0.92 + 0.16 * u) * outlier
            })
            .collect()
    }

    #[test]
    fn quantiles_interpolate_between_order_statistics_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.0), 1.0);
        assert_eq!(quantile(&s, 1.0), 4.0);
        assert_eq!(quantile(&s, 0.5), 2.5);
        // numpy.percentile([1,2,3,4], 90) == 3.7
        assert!((quantile(&s, 0.9) - 3.7).abs() < 1e-12);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_half_sample_mode_finds_the_bulk_not_a_minority_mode_or_the_tail() {
        assert!(half_sample_mode(&[]).is_nan());
        assert_eq!(half_sample_mode(&[4.0]), 4.0);
        assert_eq!(half_sample_mode(&[1.0, 2.0, 2.5]), 2.25);
        assert_eq!(half_sample_mode(&[1.0, 2.0, 3.0]), 2.0);
        // 80 runs near 100, 15 fast ones near 58 and 5 slow ones near 200: the mode stays
        // with the 80 where the minimum follows the fast ones and the mean the slow ones.
        let mut v: Vec<f64> = noisy(100.0, 80, 1)
            .iter()
            .map(|x| x.min(110.0))
            .chain((0..15).map(|i| 58.0 + i as f64 * 0.1))
            .chain((0..5).map(|i| 200.0 + i as f64))
            .collect();
        v.sort_by(f64::total_cmp);
        let m = half_sample_mode(&v);
        assert!((92.0..108.0).contains(&m), "{m}");
        // A uniform slowdown moves it by the same factor.
        let slower: Vec<f64> = v.iter().map(|x| x * 1.1).collect();
        assert!((half_sample_mode(&slower) / m - 1.1).abs() < 1e-12);
    }

    #[test]
    fn two_decisions_count_only_when_they_agree() {
        use Change::*;
        assert_eq!(agree(Regression, Regression), Regression);
        assert_eq!(agree(Improvement, Improvement), Improvement);
        assert_eq!(agree(Improvement, Unchanged), Unchanged);
        assert_eq!(agree(Unchanged, Regression), Unchanged);
        assert_eq!(agree(Regression, Improvement), Unchanged);
    }

    #[test]
    fn summary_of_known_samples() {
        let s = Summary::of(&[5.0, 1.0, 2.0, 4.0, 3.0, 100.0]).unwrap();
        assert_eq!(s.n, 6);
        assert_eq!(s.min, 1.0);
        assert_eq!(s.max, 100.0);
        assert_eq!(s.p50, 3.5);
        // deviations from 3.5: 2.5 1.5 0.5 0.5 1.5 96.5 -> median 1.5
        assert_eq!(s.mad, 1.5);
        assert!((s.mean - 115.0 / 6.0).abs() < 1e-12);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn the_bootstrap_is_deterministic_and_brackets_the_estimate() {
        let a = noisy(100.0, 201, 1);
        let b = noisy(100.0, 151, 2);
        let x = ratio_of_medians(&a, &b, 0.95, RESAMPLES, 7).unwrap();
        let y = ratio_of_medians(&a, &b, 0.95, RESAMPLES, 7).unwrap();
        assert_eq!(x, y);
        assert!(x.low <= x.estimate && x.estimate <= x.high, "{x:?}");
        assert!(x.low > 0.95 && x.high < 1.05, "{x:?}");
    }

    #[test]
    fn equal_distributions_are_unchanged_a_known_shift_is_a_regression() {
        let base = noisy(50.0, 200, 3);
        let same = noisy(50.0, 200, 4);
        let ci = ratio_of_medians(&same, &base, 0.95, RESAMPLES, 1).unwrap();
        assert_eq!(decide(&ci, 0.05), Change::Unchanged, "{ci:?}");
        // 25% slower: the interval of the ratio must clear 1.05 and contain 1.25.
        let slower: Vec<f64> = noisy(50.0, 200, 5).iter().map(|x| x * 1.25).collect();
        let ci = ratio_of_medians(&slower, &base, 0.95, RESAMPLES, 1).unwrap();
        assert!(ci.low < 1.25 && 1.25 < ci.high, "{ci:?}");
        assert_eq!(decide(&ci, 0.05), Change::Regression, "{ci:?}");
        // and the same shift the other way is an improvement
        let faster: Vec<f64> = noisy(50.0, 200, 6).iter().map(|x| x / 1.25).collect();
        let ci = ratio_of_medians(&faster, &base, 0.95, RESAMPLES, 1).unwrap();
        assert_eq!(decide(&ci, 0.05), Change::Improvement, "{ci:?}");
    }

    #[test]
    fn a_shift_inside_the_margin_is_not_flagged_even_when_significant() {
        // 3% slower with little noise: clearly different, but not beyond a 5% margin.
        let base: Vec<f64> = (0..300).map(|i| 100.0 + (i % 7) as f64 * 0.1).collect();
        let now: Vec<f64> = base.iter().map(|x| x * 1.03).collect();
        let ci = ratio_of_medians(&now, &base, 0.95, RESAMPLES, 9).unwrap();
        assert!(ci.low > 1.0, "{ci:?}");
        assert_eq!(decide(&ci, 0.05), Change::Unchanged);
    }

    #[test]
    fn too_few_samples_give_a_wide_interval_not_an_alarm() {
        let base = [100.0, 180.0, 90.0];
        let now = [130.0, 95.0, 200.0];
        let ci = ratio_of_medians(&now, &base, 0.95, RESAMPLES, 3).unwrap();
        assert!(ci.high / ci.low > 1.3, "{ci:?}");
        assert_eq!(decide(&ci, 0.05), Change::Unchanged);
    }

    #[test]
    fn loads_that_disagree_widen_the_interval_instead_of_raising_an_alarm() {
        // Three loads each side, tight within a load but 12% apart between loads, as
        // OpenVINO's are on this machine; the base happens to have the fast loads.
        let load = |level: f64, seed: u64| -> Vec<f64> {
            noisy(level, 60, seed)
                .iter()
                .map(|x| x.min(level * 1.1))
                .collect()
        };
        let base = [load(100.0, 1), load(100.0, 2), load(104.0, 3)];
        let now = [load(104.0, 4), load(110.0, 5), load(112.0, 6)];
        let (b, n): (Vec<&[f64]>, Vec<&[f64]>) = (
            base.iter().map(Vec::as_slice).collect(),
            now.iter().map(Vec::as_slice).collect(),
        );
        // Pooled as if from one load, the 7% difference looks certain: a false alarm.
        let flat = ratio_of_medians(&n.concat(), &b.concat(), 0.95, RESAMPLES, 1).unwrap();
        assert_eq!(decide(&flat, 0.05), Change::Regression, "{flat:?}");
        // Resampling loads shows how little three loads say.
        let nested = ratio_of_medians_nested(&n, &b, 0.95, RESAMPLES, 1).unwrap();
        assert_eq!(nested.estimate, flat.estimate);
        assert!(
            nested.high - nested.low > 2.0 * (flat.high - flat.low),
            "{nested:?}"
        );
        assert_eq!(decide(&nested, 0.05), Change::Unchanged, "{nested:?}");
        // A real 25% slowdown of every load still clears the margin.
        let slower: Vec<Vec<f64>> = base
            .iter()
            .map(|l| l.iter().map(|x| x * 1.25).collect())
            .collect();
        let s: Vec<&[f64]> = slower.iter().map(Vec::as_slice).collect();
        let ci = ratio_of_medians_nested(&s, &b, 0.95, RESAMPLES, 1).unwrap();
        assert_eq!(decide(&ci, 0.05), Change::Regression, "{ci:?}");
    }

    #[test]
    fn empty_loads_are_ignored_and_no_values_give_no_interval() {
        let b = noisy(100.0, 151, 2);
        assert!(ratio_of_medians_nested(&[&[], &[]], &[&b], 0.95, 10, 0).is_none());
        let ci = ratio_of_medians_nested(&[&[], &b], &[&b], 0.95, 200, 0).unwrap();
        assert_eq!(ci.estimate, 1.0);
    }

    #[test]
    fn empty_or_degenerate_sets_give_no_interval() {
        assert!(ratio_of_medians(&[], &[1.0], 0.95, 10, 0).is_none());
        assert!(ratio_of_medians(&[1.0], &[0.0], 0.95, 10, 0).is_none());
        assert!(median_interval(&[], 0.95, 10, 0).is_none());
    }

    #[test]
    fn the_median_interval_of_paired_ratios_contains_the_true_ratio() {
        let ratios: Vec<f64> = noisy(1.4, 150, 11);
        let ci = median_interval(&ratios, 0.95, RESAMPLES, 5).unwrap();
        assert!(ci.low < 1.4 && 1.4 < ci.high, "{ci:?}");
    }
}
