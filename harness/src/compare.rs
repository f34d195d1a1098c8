//! Turning outputs into a verdict: shapes, non-finite values, per-element tolerances.

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::runtime::Precision;
use crate::tensor::{DType, Tensor};

/// One verdict per (case, converter, runtime); meanings and deciding stages: docs/verdicts.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Outputs within tolerance of golden.
    Pass,
    /// Same shape, values outside tolerance.
    Mismatch,
    /// Output count, shape or dtype differs.
    ShapeMismatch,
    /// NaN or infinity where golden is finite, or the reverse.
    NonFinite,
    /// The converter refused with an error message.
    ConvertRejected,
    /// The converter died or wrote an unreadable artifact.
    ConvertCrash,
    /// The runtime refused to load or run the converted model.
    RuntimeRejected,
    /// Conversion or run exceeded `--timeout`.
    Timeout,
    /// A converter's process or a worker reached its memory or CPU-time limit
    /// (`--max-converter-memory`, `--max-converter-cpu`); the process was replaced.
    ResourceLimit,
    /// The converter accepted a model the generator marked invalid.
    InvalidAccepted,
    /// The case is over the resource limits (`--max-elements`, `--max-case-bytes`) and was
    /// not run.
    TooLarge,
    /// The case itself could not be set up (unreadable test-case directory, golden missing).
    Error,
    /// Within the error bound, but far further from the oracle than the same runtime on the
    /// unconverted model: the converter changed the computation (`DriftRule`).
    Drift,
}

impl Verdict {
    /// Every verdict, in report order.
    pub const ALL: [Verdict; 13] = [
        Verdict::Pass,
        Verdict::Drift,
        Verdict::Mismatch,
        Verdict::ShapeMismatch,
        Verdict::NonFinite,
        Verdict::ConvertRejected,
        Verdict::ConvertCrash,
        Verdict::RuntimeRejected,
        Verdict::Timeout,
        Verdict::ResourceLimit,
        Verdict::InvalidAccepted,
        Verdict::TooLarge,
        Verdict::Error,
    ];

    /// The kebab-case name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Mismatch => "mismatch",
            Verdict::ShapeMismatch => "shape-mismatch",
            Verdict::NonFinite => "non-finite",
            Verdict::ConvertRejected => "convert-rejected",
            Verdict::ConvertCrash => "convert-crash",
            Verdict::RuntimeRejected => "runtime-rejected",
            Verdict::Timeout => "timeout",
            Verdict::ResourceLimit => "resource-limit",
            Verdict::InvalidAccepted => "invalid-accepted",
            Verdict::TooLarge => "too-large",
            Verdict::Error => "error",
            Verdict::Drift => "drift",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How far an output may be from golden.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum Tolerance {
    /// Per element: `factor * u * bound`, with u the unit roundoff of the runtime's precision
    /// and `bound` the oracle's first-order error bound for that element.
    Bound {
        /// Safety factor on the bound.
        factor: f64,
    },
    /// Per element: `atol + rtol * |golden|`.
    Fixed {
        /// Absolute tolerance.
        atol: f64,
        /// Relative tolerance.
        rtol: f64,
    },
}

impl Tolerance {
    /// The name reported in results (`bound` or `fixed`).
    pub fn name(&self) -> &'static str {
        match self {
            Tolerance::Bound { .. } => "bound",
            Tolerance::Fixed { .. } => "fixed",
        }
    }
}

impl Tolerance {
    /// This (the run's) policy refined by a case's own: two bounds multiply their factors, a
    /// case's fixed tolerance replaces the run's bound, and a fixed tolerance asked for on the
    /// command line wins over the case's.
    pub fn refined_by(self, case: Option<Tolerance>) -> Tolerance {
        match (self, case) {
            (run, None) => run,
            (Tolerance::Bound { factor: a }, Some(Tolerance::Bound { factor: b })) => {
                Tolerance::Bound { factor: a * b }
            }
            (Tolerance::Bound { .. }, Some(fixed)) => fixed,
            (run, Some(_)) => run,
        }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance::Bound { factor: 1.0 }
    }
}

/// When a result that passes the error bound is still `drift`: the worst-case bound is far
/// looser than real rounding (a passing result typically uses under 1% of it), so a converter
/// that swaps an exact function for an approximation can stay inside it. The same runtime on
/// the unconverted model shows how close that engine really gets: a converted model whose
/// worst error, as a fraction of the tolerance, is more than `factor` times the reference's and
/// at least `floor` has changed the computation, not just its rounding (docs/verdicts.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftRule {
    /// How many times the reference's worst ratio the converted model's may reach; 0 turns
    /// the check off.
    pub factor: f64,
    /// Worst ratios below this are never drift, however small the reference's.
    pub floor: f64,
}

impl DriftRule {
    /// The check turned off.
    pub const OFF: DriftRule = DriftRule {
        factor: 0.0,
        floor: 0.0,
    };

    /// Whether the check runs at all.
    pub fn enabled(&self) -> bool {
        self.factor > 0.0
    }

    /// Whether a converted model's worst ratio `converted` is drift against the unconverted
    /// model's `reference` on the same runtime.
    pub fn is_drift(&self, converted: f64, reference: f64) -> bool {
        self.enabled() && converted >= self.floor && converted > self.factor * reference
    }
}

impl Default for DriftRule {
    fn default() -> Self {
        DriftRule {
            factor: 32.0,
            floor: 0.01,
        }
    }
}

/// Tolerance used when no error bound is known (ONNX backend-suite defaults).
pub const FALLBACK: Tolerance = Tolerance::Fixed {
    atol: 1e-5,
    rtol: 1e-3,
};

/// An expected output.
#[derive(Debug, Clone)]
pub struct Expected {
    /// Golden values.
    pub value: ArrayD<f64>,
    /// Oracle error bound per element, if known.
    pub bound: Option<ArrayD<f64>>,
    /// Declared element type.
    pub dtype: DType,
}

impl Expected {
    /// The golden values as a tensor of the declared element type, as a test case stores them.
    pub fn to_tensor(&self) -> Tensor {
        match self.dtype {
            DType::Float | DType::Double | DType::Float16 | DType::Bfloat16 => {
                Tensor::from_f64(self.dtype, &self.value).expect("a float type")
            }
            DType::Int64 => Tensor::I64(self.value.mapv(|v| v as i64)),
            DType::Int32 => Tensor::I32(self.value.mapv(|v| v as i32)),
            DType::Int8 => Tensor::I8(self.value.mapv(|v| v as i8)),
            DType::Uint8 => Tensor::U8(self.value.mapv(|v| v as u8)),
            DType::Bool => Tensor::Bool(self.value.mapv(|v| v != 0.0)),
        }
    }
}

/// Error statistics of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Largest |actual - golden|.
    pub max_abs_err: f64,
    /// Largest |actual - golden| / |golden| over elements with non-zero golden.
    pub max_rel_err: f64,
    /// Largest distance in f32 units in the last place between actual and golden rounded to f32.
    pub max_ulp: u64,
    /// Elements outside tolerance.
    pub count_over: usize,
    /// Elements compared.
    pub count: usize,
    /// Largest |actual - golden| / tolerance: above 1 fails.
    pub worst_ratio: f64,
}

/// Result of comparing all outputs of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The verdict.
    pub verdict: Verdict,
    /// Statistics over all outputs (empty when shapes differ).
    pub stats: Stats,
    /// What went wrong, for people.
    pub message: Option<String>,
}

/// Distance between two f32 values in units in the last place (0 for equal values, including
/// +0 and -0).
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    fn ordered(x: f32) -> i64 {
        let bits = x.to_bits() as i32;
        (if bits < 0 { i32::MIN - bits } else { bits }) as i64
    }
    (ordered(a) - ordered(b)).unsigned_abs()
}

/// Compares actual outputs with expected ones, in order.
pub fn compare(
    expected: &[Expected],
    actual: &[Tensor],
    precision: Precision,
    tol: Tolerance,
) -> Comparison {
    if let Some(message) = shape_mismatch(expected, actual) {
        return Comparison {
            verdict: Verdict::ShapeMismatch,
            stats: Stats::default(),
            message: Some(message),
        };
    }
    let mut tally = Tally::new(tol);
    for (j, (e, a)) in expected.iter().zip(actual).enumerate() {
        let u = output_precision(e, a, precision).unit_roundoff();
        tally.output(j, e, a, u);
    }
    tally.into_comparison()
}

/// The precision an output is judged at: the runtime's, or a narrower float type that the
/// output is declared or returned in (its values were rounded to that type, in a model of that
/// type computed in it).
fn output_precision(e: &Expected, a: &Tensor, precision: Precision) -> Precision {
    let narrow = |d: DType| match d {
        DType::Float16 => Some(Precision::F16),
        DType::Bfloat16 => Some(Precision::Bf16),
        _ => None,
    };
    [e.dtype, a.dtype()]
        .into_iter()
        .filter_map(narrow)
        .chain([precision])
        .max_by(|x, y| x.unit_roundoff().total_cmp(&y.unit_roundoff()))
        .unwrap_or(precision)
}

/// The coarsest precision any output is judged at ([`compare`]); the runtime's when the
/// outputs cannot be compared.
pub fn judged_precision(
    expected: &[Expected],
    actual: &[Tensor],
    precision: Precision,
) -> Precision {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| output_precision(e, a, precision))
        .max_by(|x, y| x.unit_roundoff().total_cmp(&y.unit_roundoff()))
        .unwrap_or(precision)
}

/// Why the outputs cannot be compared element by element (their count, a shape or an element
/// type differs), if they can't.
fn shape_mismatch(expected: &[Expected], actual: &[Tensor]) -> Option<String> {
    if expected.len() != actual.len() {
        return Some(format!(
            "expected {} outputs, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for (j, (e, a)) in expected.iter().zip(actual).enumerate() {
        if e.value.shape() != a.shape() || !dtype_compatible(e.dtype, a.dtype()) {
            return Some(format!(
                "output {j}: expected {} {:?}, got {} {:?}",
                e.dtype,
                e.value.shape(),
                a.dtype(),
                a.shape()
            ));
        }
    }
    None
}

/// Statistics and the first failures over the elements compared so far.
struct Tally {
    tol: Tolerance,
    stats: Stats,
    /// The first element where golden and actual disagree on being finite.
    non_finite: Option<String>,
    /// The first element out of tolerance.
    first_over: Option<String>,
}

impl Tally {
    /// Nothing compared yet.
    fn new(tol: Tolerance) -> Tally {
        Tally {
            tol,
            stats: Stats::default(),
            non_finite: None,
            first_over: None,
        }
    }

    /// Compares output `j` (golden `e`, same shape as `a`) element by element, with unit
    /// roundoff `u`.
    fn output(&mut self, j: usize, e: &Expected, a: &Tensor, u: f64) {
        let gs: Vec<f64> = e.value.iter().copied().collect();
        let xs: Vec<f64> = a.to_f64().iter().copied().collect();
        let bs: Option<Vec<f64>> = e
            .bound
            .as_ref()
            .map(|b| b.iter().copied().collect())
            .filter(|b: &Vec<f64>| b.len() == gs.len());
        // A float32 or float16 output cannot hold a golden value beyond its range: the
        // correctly rounded answer is the infinity of that sign.
        let in_range = |g: f64| match e.dtype {
            DType::Float if (g as f32).is_infinite() => f64::from(g as f32),
            DType::Float16 if half::f16::from_f64(g).is_infinite() => {
                f64::from(half::f16::from_f64(g))
            }
            _ => g,
        };
        // Results below the smallest normal value may be flushed to zero or rounded up to it.
        let underflow = 2.0 * e.dtype.min_positive().max(a.dtype().min_positive());
        for (i, (&g, &x)) in gs.iter().zip(&xs).enumerate() {
            let b = bs.as_ref().map(|b| b[i]);
            let allowed = allowed(self.tol, u, underflow, g, b);
            self.element((j, i), in_range(g), x, allowed);
        }
    }

    /// Compares element `i` of output `j`: golden `g`, actual `x`, the error `allowed`.
    fn element(&mut self, (j, i): (usize, usize), g: f64, x: f64, allowed: f64) {
        let stats = &mut self.stats;
        stats.count += 1;
        let same_special = (g.is_nan() && x.is_nan()) || g == x;
        if g.is_finite() != x.is_finite() || (!g.is_finite() && !same_special) {
            self.non_finite
                .get_or_insert(format!("output {j}[{i}]: expected {g}, got {x}"));
            return;
        }
        if !g.is_finite() {
            return;
        }
        let diff = (x - g).abs();
        stats.max_abs_err = stats.max_abs_err.max(diff);
        if g != 0.0 {
            stats.max_rel_err = stats.max_rel_err.max(diff / g.abs());
        }
        stats.max_ulp = stats.max_ulp.max(ulp_distance(x as f32, g as f32));
        stats.worst_ratio = stats.worst_ratio.max(if allowed > 0.0 {
            diff / allowed
        } else {
            f64::INFINITY
        });
        if diff > allowed {
            stats.count_over += 1;
            self.first_over.get_or_insert(format!("output {j}[{i}]: expected {g:e}, got {x:e}, |diff| {diff:.3e} > tolerance {allowed:.3e}"));
        }
    }

    /// The verdict: non-finite values first, then elements out of tolerance.
    fn into_comparison(self) -> Comparison {
        let stats = self.stats;
        let (verdict, message) = if let Some(m) = self.non_finite {
            (Verdict::NonFinite, Some(m))
        } else if let Some(m) = self.first_over {
            (
                Verdict::Mismatch,
                Some(format!(
                    "{} of {} elements out of tolerance; first: {m}",
                    stats.count_over, stats.count
                )),
            )
        } else {
            (Verdict::Pass, None)
        };
        Comparison {
            verdict,
            stats,
            message,
        }
    }
}

/// The largest error allowed on a finite golden value `g` with bound `b`, unit roundoff `u`.
fn allowed(tol: Tolerance, u: f64, underflow: f64, g: f64, b: Option<f64>) -> f64 {
    match (tol, b) {
        // The bound ignores underflow: a result below the smallest normal value may come
        // out flushed to zero or rounded up to the smallest normals (SIMD exp
        // approximations clamp there), an error of up to twice the smallest normal.
        (Tolerance::Bound { factor }, Some(b)) => factor * u * b + underflow,
        (Tolerance::Bound { .. }, None) => tolerance_of(FALLBACK, g),
        (fixed, _) => tolerance_of(fixed, g),
    }
}

fn tolerance_of(tol: Tolerance, golden: f64) -> f64 {
    match tol {
        Tolerance::Fixed { atol, rtol } => atol + rtol * golden.abs(),
        Tolerance::Bound { .. } => unreachable!("bound tolerances need a bound"),
    }
}

/// Float outputs may come back in any float width a runtime computes in; integers must match.
fn dtype_compatible(expected: DType, actual: DType) -> bool {
    expected == actual || (expected.is_float() && actual.is_float())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn drift_needs_both_the_factor_and_the_floor() {
        let rule = DriftRule::default();
        // 32 times the reference is still rounding; more, above the floor, is drift.
        assert!(!rule.is_drift(0.32, 0.01));
        assert!(rule.is_drift(0.33, 0.01));
        // A reference that is exact makes any error above the floor drift.
        assert!(rule.is_drift(0.02, 0.0));
        // Below the floor nothing is, however small the reference.
        assert!(!rule.is_drift(0.009, 0.0));
        // Turned off, nothing is.
        assert!(!DriftRule::OFF.is_drift(0.9, 0.0));
        assert!(!DriftRule::OFF.enabled());
    }

    fn exp(v: &[f64], b: &[f64]) -> Expected {
        Expected {
            value: arr1(v).into_dyn(),
            bound: Some(arr1(b).into_dyn()),
            dtype: DType::Float,
        }
    }

    fn got(v: &[f32]) -> Tensor {
        Tensor::f32(&[v.len()], v.to_vec()).unwrap()
    }

    #[test]
    fn ulp_distance_counts_representable_steps_across_zero() {
        assert_eq!(ulp_distance(1.0, 1.0), 0);
        assert_eq!(ulp_distance(1.0, f32::from_bits(1.0f32.to_bits() + 3)), 3);
        assert_eq!(ulp_distance(0.0, -0.0), 0);
        assert_eq!(ulp_distance(f32::from_bits(1), -f32::from_bits(1)), 2);
    }

    #[test]
    fn within_the_bound_passes_and_beyond_it_is_a_mismatch() {
        let u = Precision::F32.unit_roundoff();
        // bound 8 => tolerance 8u ~ 4.8e-7 on a value of 1.
        let e = exp(&[1.0, 2.0], &[8.0, 8.0]);
        let ok = compare(
            std::slice::from_ref(&e),
            &[got(&[1.0 + 2.0 * u as f32 * 2.0, 2.0])],
            Precision::F32,
            Tolerance::default(),
        );
        assert_eq!(ok.verdict, Verdict::Pass, "{ok:?}");
        let bad = compare(
            &[e],
            &[got(&[1.0, 2.0001])],
            Precision::F32,
            Tolerance::default(),
        );
        assert_eq!(bad.verdict, Verdict::Mismatch);
        assert_eq!(bad.stats.count_over, 1);
        assert!((bad.stats.max_abs_err - 1e-4).abs() < 1e-6);
    }

    #[test]
    fn a_golden_value_beyond_float32_is_the_infinity_a_float32_output_must_give() {
        // LpPool of large values (seed 4, case 1884): -9e48 exactly, -inf in float32.
        let e = exp(&[-9.0e48, 1.0], &[4.0, 4.0]);
        let verdict = |x: f32| {
            compare(
                std::slice::from_ref(&e),
                &[got(&[x, 1.0])],
                Precision::F32,
                Tolerance::default(),
            )
            .verdict
        };
        assert_eq!(verdict(f32::NEG_INFINITY), Verdict::Pass);
        assert_eq!(verdict(f32::INFINITY), Verdict::NonFinite);
        assert_eq!(verdict(-f32::MAX), Verdict::NonFinite);
        // A float64 output holds it.
        let d = Expected {
            dtype: DType::Double,
            ..e.clone()
        };
        let double = compare(
            &[d],
            &[Tensor::F64(arr1(&[f64::NEG_INFINITY, 1.0]).into_dyn())],
            Precision::F32,
            Tolerance::default(),
        );
        assert_eq!(double.verdict, Verdict::NonFinite);
    }

    #[test]
    fn lower_precision_widens_the_tolerance() {
        let e = exp(&[1.0], &[4.0]);
        let a = [got(&[1.001])];
        assert_eq!(
            compare(
                std::slice::from_ref(&e),
                &a,
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::Mismatch
        );
        assert_eq!(
            compare(&[e], &a, Precision::Bf16, Tolerance::default()).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn a_float16_output_is_judged_at_float16_whatever_the_runtime_says() {
        // 1 + 2^-10 is one float16 ulp above 1: within 4 units of f16's roundoff (2^-11) of 1,
        // far outside f32's.
        let mut e = exp(&[1.0], &[4.0]);
        e.dtype = DType::Float16;
        let x = 1.0 + 2f64.powi(-10);
        let half = Tensor::F16(arr1(&[half::f16::from_f64(x)]).into_dyn());
        let c = compare(
            std::slice::from_ref(&e),
            std::slice::from_ref(&half),
            Precision::F32,
            Tolerance::default(),
        );
        assert_eq!(c.verdict, Verdict::Pass);
        assert_eq!(
            judged_precision(&[e.clone()], &[half], Precision::F32),
            Precision::F16
        );
        e.dtype = DType::Float;
        assert_eq!(
            compare(
                &[e],
                &[got(&[x as f32])],
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::Mismatch
        );
        // Beyond 65504 a float16 output is expected as infinity.
        let mut big = exp(&[1e5], &[1.0]);
        big.dtype = DType::Float16;
        let inf = Tensor::F16(arr1(&[half::f16::INFINITY]).into_dyn());
        assert_eq!(
            compare(&[big], &[inf], Precision::F32, Tolerance::default()).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn shape_count_and_nan_verdicts() {
        let e = exp(&[1.0, 2.0], &[1.0, 1.0]);
        assert_eq!(
            compare(
                std::slice::from_ref(&e),
                &[got(&[1.0])],
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::ShapeMismatch
        );
        assert_eq!(
            compare(
                std::slice::from_ref(&e),
                &[],
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::ShapeMismatch
        );
        assert_eq!(
            compare(
                std::slice::from_ref(&e),
                &[Tensor::I64(arr1(&[1i64, 2]).into_dyn())],
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::ShapeMismatch
        );
        assert_eq!(
            compare(
                &[e],
                &[got(&[1.0, f32::NAN])],
                Precision::F32,
                Tolerance::default()
            )
            .verdict,
            Verdict::NonFinite
        );
    }

    #[test]
    fn fixed_tolerance_uses_atol_and_rtol() {
        let e = exp(&[100.0], &[0.0]);
        let t = Tolerance::Fixed {
            atol: 0.0,
            rtol: 1e-3,
        };
        assert_eq!(
            compare(
                std::slice::from_ref(&e),
                &[got(&[100.05])],
                Precision::F32,
                t
            )
            .verdict,
            Verdict::Pass
        );
        assert_eq!(
            compare(&[e], &[got(&[100.2])], Precision::F32, t).verdict,
            Verdict::Mismatch
        );
    }
}
