//! Error-bound rules: first-order forward error analysis, in units of the runtime's unit
//! roundoff `u` (2^-24 for f32, 2^-11 for f16, 2^-8 for bf16).
//!
//! Every float tensor `x` carries `e_x` (same shape): a runtime computing in precision `u` is
//! expected to be within `e_x * u` of the exact value. The rules, one place for all ops:
//!
//! | op | rule |
//! |---|---|
//! | graph inputs, float initializers, constants | `e = |x|` (one rounding to the runtime's precision) |
//! | Conv, ConvTranspose, Gemm, MatMul: `y = Σ_k w_k x_k (+ b)` | `Σ_k (|w_k| e_xk + |x_k| e_wk + e_wk e_xk U) + (n+1)(Σ_k |w_k x_k| + |b|) + e_b`, `n` = terms summed (padding excluded) |
//! | Relu, Clip, MaxPool, GlobalMaxPool, ReduceMax/Min | 1-Lipschitz: `e_y = e_x` (max over the window); 0 where the output is a constant no perturbation can leave (see [`COARSEST_U`]) |
//! | LeakyRelu, PRelu | `max(1, |alpha|) e_x + |y|` (+ `|x| e_slope` for a PRelu slope tensor) |
//! | AveragePool, GlobalAveragePool, ReduceMean | `mean(e_x) + (k+1) mean(|x|)`, `k` = elements summed, mean over the divisor |
//! | LpPool | `Σ (|x_i|/y)^(p-1) e_i + ((k+1+16)/p + 16) y` |
//! | Add, Sub | `e_a + e_b + |y|` |
//! | Mul | `|b| e_a + |a| e_b + e_a e_b U + |y|`, `U` = [`COARSEST_U`] (the product of the two perturbations) |
//! | Div | `e_a / |b| + |a| e_b / b² + |y|` |
//! | BatchNormalization | `|s| e_x + 8 (|x s| + |mean s| + |β|)`, `s = γ / sqrt(var + ε)` |
//! | smooth unary `f` (Sigmoid, Tanh, Elu, Gelu, Exp, …) | `L(x) e_x + 64 |y| + 16`, `L` = local bound of `|f'|` ([`smooth_unary`]) |
//! | Softmax | `2 y_i max(e_x over the axis) + (len + 4) y_i` |
//! | Instance/LayerNormalization | see [`normalization`] |
//! | shape ops, Pad, Concat, Gather, … | `e` moves with the values; a Pad constant `c` brings `|c|` |
//!
//! The `+16` floor of smooth functions covers polynomial approximations that are accurate in
//! absolute, not relative, terms near zero.

/// Bound of a value rounded once to the runtime's precision.
pub fn rounding(x: f64) -> f64 {
    x.abs()
}

/// Coarsest unit roundoff the harness compares against (bf16). Deciding whether a
/// perturbation can cross a kink (Relu at 0, Clip at its limits, HardSwish at ±3) needs the
/// perturbation's actual size `e * u`; using the coarsest `u` keeps the bound valid for every
/// precision.
pub const COARSEST_U: f64 = 1.0 / 256.0;

/// Absolute floor (in units of u) of smooth elementwise functions.
pub const SMOOTH_FLOOR: f64 = 16.0;

/// Relative error (in units of u) of one smooth elementwise function evaluation. Runtimes
/// evaluate `exp`-based activations with fast approximations: tract's Selu was measured 25-30
/// ulp off (`alpha*gamma*(exp(x)-1)`), so 64 u (about 4e-6 in f32) is allowed; real bugs are
/// orders of magnitude larger.
pub const SMOOTH_RELATIVE: f64 = 64.0;

/// Bound of the product `a b` of two perturbed factors, before its own rounding:
/// `|b| e_a + |a| e_b + e_a e_b COARSEST_U`.
///
/// The last term is the product of the two perturbations, `(e_a u)(e_b u)`, in units of `u`
/// for the coarsest precision, so it holds for every precision. It matters only where a factor
/// is much smaller than its own error; for a weight (`e_w = |w|`) it adds a 1/256 part.
pub fn product(a: f64, ea: f64, b: f64, eb: f64) -> f64 {
    b.abs() * ea + a.abs() * eb + ea * eb * COARSEST_U
}

/// Accumulates the bound of a dot product `Σ w_k x_k`, term by term.
#[derive(Debug, Default, Clone, Copy)]
pub struct DotBound {
    propagated: f64,
    abs_sum: f64,
    terms: usize,
}

impl DotBound {
    /// Adds the term `w * x` whose factors carry bounds `ew`, `ex`.
    pub fn add(&mut self, w: f64, ew: f64, x: f64, ex: f64) {
        self.propagated += product(w, ew, x, ex);
        self.abs_sum += (w * x).abs();
        self.terms += 1;
    }

    /// Bound of the sum plus an optional bias `(b, e_b)`; `extra_roundings` counts scalings
    /// (Gemm's alpha and beta) that round once more.
    pub fn finish(&self, bias: Option<(f64, f64)>, extra_roundings: usize) -> f64 {
        let (b, eb) = bias.unwrap_or((0.0, 0.0));
        let n = (self.terms + 1 + extra_roundings) as f64;
        self.propagated + n * (self.abs_sum + b.abs()) + eb
    }
}

/// Bound of a mean of `k` summed elements divided by `divisor` (padding counted in the divisor
/// contributes zero): `Σe/divisor + (k+1) Σ|x|/divisor`.
pub fn mean(sum_e: f64, sum_abs: f64, k: usize, divisor: usize) -> f64 {
    let d = divisor.max(1) as f64;
    sum_e / d + (k as f64 + 1.0) * sum_abs / d
}

/// Bound of a smooth elementwise function `y = f(x)` with derivative `df`.
///
/// `L` is the largest `|f'|` at `x` and at `x ± δ`, where `δ = e_x * COARSEST_U` is the largest
/// perturbation the runtime may see. Where `f'` jumps (Elu at 0, HardSigmoid and HardSwish at
/// their corners) and is monotone on each piece, that is an upper bound of `|f'|` over the
/// reachable interval, hence a valid Lipschitz constant there.
pub fn smooth_unary(x: f64, ex: f64, y: f64, df: impl Fn(f64) -> f64) -> f64 {
    let delta = ex * COARSEST_U;
    let slope = df(x)
        .abs()
        .max(df(x - delta).abs())
        .max(df(x + delta).abs());
    // An exact input propagates nothing, even where the slope is infinite (sqrt at 0).
    let propagated = if ex == 0.0 { 0.0 } else { slope * ex };
    propagated + SMOOTH_RELATIVE * y.abs() + SMOOTH_FLOOR
}

/// True when every perturbation of `x` within its bound stays strictly below `t`.
pub fn surely_below(x: f64, ex: f64, t: f64) -> bool {
    x + ex * COARSEST_U < t
}

/// True when every perturbation of `x` within its bound stays strictly above `t`.
pub fn surely_above(x: f64, ex: f64, t: f64) -> bool {
    x - ex * COARSEST_U > t
}

/// Inputs to the normalization bound of one element.
pub struct NormTerms {
    /// `e_x` of this element.
    pub ex: f64,
    /// Mean of `e_x` over the normalized group.
    pub mean_ex: f64,
    /// Mean of `|z| e_x` over the group (`z` the normalized values).
    pub mean_z_ex: f64,
    /// Mean of `|x|` over the group.
    pub mean_abs_x: f64,
    /// `|x - μ|` of this element.
    pub centered: f64,
    /// `sqrt(var + ε)`.
    pub sigma: f64,
    /// `z` of this element.
    pub z: f64,
    /// Group size.
    pub n: usize,
}

/// Bound of `z = (x - μ) / sqrt(var + ε)` for Instance- and LayerNormalization (the affine
/// part `γ z + β` is added by the caller like a Mul and an Add).
///
/// Derivation (first order): perturbing the inputs by `dx` changes
/// `z_i` by `(dx_i - mean(dx)) / σ - z_i mean(z dx) / σ`, bounded by
/// `(e_i + mean(e) + |z_i| mean(|z| e)) / σ`. Rounding: the mean is a sum of `n` terms, off by
/// `(n+1) mean(|x|)`, and the subtraction adds `|x_i - μ|`; the variance is a sum of `n` squares,
/// conservatively `(n+4)` relative, and `sqrt` and the division add a few more, so `z` carries
/// `(n+8) |z|` relative on top.
pub fn normalization(t: &NormTerms) -> f64 {
    let n = t.n as f64;
    let propagated = (t.ex + t.mean_ex + t.z.abs() * t.mean_z_ex) / t.sigma;
    let centering = ((n + 1.0) * t.mean_abs_x + t.centered) / t.sigma;
    propagated + centering + (n + 8.0) * t.z.abs()
}
