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
//! | LpPool | `Σ (|x_i|/y)^(p-1) e_i + ((k+1+64)/p + 64) y` |
//! | Add, Sub | `e_a + e_b + |y|` |
//! | Mul | `|b| e_a + |a| e_b + e_a e_b U + |y|`, `U` = [`COARSEST_U`] (the product of the two perturbations) |
//! | Div | `e_a / |b| + |a| e_b / b² + |y|` |
//! | BatchNormalization | `|s| e_x + 8 (|x s| + |mean s| + |β|)`, `s = γ / sqrt(var + ε)` |
//! | smooth unary `f` (Sigmoid, Tanh, Elu, Gelu, Exp, …) | `L(x) e_x + r_f |y| + a_f`, `L` = local bound of `|f'|` ([`smooth_unary`]), `r_f`, `a_f` = the function's [`Accuracy`] (table below) |
//! | Softmax | `2 y_i max(e_x over the axis) + (len + 4) y_i` |
//! | Instance/LayerNormalization | see [`normalization`] |
//! | shape ops, Pad, Concat, Gather, … | `e` moves with the values; a Pad constant `c` brings `|c|` |
//! | QuantizeLinear `q = sat(round(x / s) + zp)` | `max(q - q_lo, q_hi - q) / QUANT_U`, `q_lo`, `q_hi` = the quantization of `x/s ∓ d`, `d = 2 e_x QUANT_U / |s| + 4 QUANT_U |x/s|` (see [`quantized`]): one quantum where the rounding is ambiguous at float32, 0 elsewhere; for a computed `x` at least the integers on either side of `x/s` ([`requantized`]: fused kernels requantize their own way) |
//! | DequantizeLinear `y = (q - zp) s` | `|s| e_q + |y|` (+ `|y|` when `|q - zp| > 256`, whose conversion may round); the scale is exact |
//!
//! ## Accuracy of elementwise functions
//!
//! A runtime evaluates a transcendental function with a vector math kernel, not correctly
//! rounded: the bound allows each function the error of realistic kernels, `r_f |y| + a_f` (in u;
//! `k` ulp of the result is at most `2k u |y|`). The relative part is a few ulp; the absolute
//! floor is there only where kernels are accurate in absolute terms near a zero of `f`
//! (cancellation in `1 - (1+p)^-16`, `e^x - 1`, `ln(1 + e^x)`, a fit of `sigmoid - 1/2`). Each
//! value covers the documented and measured accuracy of tract 0.23.9, onnxruntime 1.32.0 and
//! OpenVINO 2026.4.1 (f32) with some margin, and no more; the evidence is in docs/oracle.md.
//!
//! | function | `r_f` | `a_f` | what it must admit |
//! |---|---:|---:|---|
//! | Exp | 16 | 0 | 2 ulp (tract), 5.3 ulp near overflow (OpenVINO) |
//! | Log | 8 | 0 | 1 ulp (tract), 3.1 ulp (onnxruntime); relative near `x = 1` too |
//! | Tanh | 16 | 0 | tract's fit saturates at `±(1 - 12u)` beyond `|x| = 7.5` |
//! | Sigmoid | 8 | 4 | fits accurate to 3u absolute (tract, onnxruntime); tract's top saturation `1 - 8u` |
//! | Erf | 4 | 40 | tract's `1 - (1+p)^-16` (Abramowitz–Stegun 7.1.28, 3·10⁻⁷ = 5u) with 32u of f32 rounding: 32.2u measured |
//! | Gelu (exact) | 8 | 16 | the Erf's error times `|x|/2` where `1 + erf` cancels: 9.3u (tract) |
//! | Softplus | 8 | 24 | `ln(1 + e^x)` cancelling for `x < 0`: 17.9u (OpenVINO) |
//! | Mish | 16 | 24 | Tanh's saturation times `x`; 15.5u where the softplus cancels (OpenVINO) |
//! | Elu | 4 | `4 |α|` | `α (e^x - 1)`: the exp's error becomes absolute near 0 |
//! | Selu | 4 | `4 |γ α|` | as Elu |
//! | HardSigmoid, HardSwish, Softsign, Sqrt, Gelu (tanh) | 64 | 16 | not retuned: [`GENERIC`] |
//!
//! A floor is no wider than the fits need, so a kernel that is only accurate in absolute terms
//! where the exact value is far smaller still fails: tract's Sigmoid returns `2^-21` (8u) for
//! every input below -14.5, which is outside `8 |y| + 4` once `sigmoid(x) < 2.4·10⁻⁷`.

/// Bound of a value rounded once to the runtime's precision.
pub fn rounding(x: f64) -> f64 {
    x.abs()
}

/// Coarsest unit roundoff the harness compares against (bf16). Deciding whether a
/// perturbation can cross a kink (Relu at 0, Clip at its limits, HardSwish at ±3) needs the
/// perturbation's actual size `e * u`; using the coarsest `u` keeps the bound valid for every
/// precision.
pub const COARSEST_U: f64 = 1.0 / 256.0;

/// Unit roundoff at which QuantizeLinear's rounding decisions are judged: float32's, 2^-24.
///
/// A quantized output is an integer, so an error bound in units of the runtime's `u` cannot
/// shrink with the precision the way a float's does: what a perturbation can do is flip a
/// rounding decision, a whole quantum. Quantized models compare at float32, so the decision is
/// modelled at float32's unit roundoff with a margin of 2 ([`quantized`]), and the quantum
/// allowed where it is ambiguous is `1 / QUANT_U` units of u, one integer at float32. A runtime
/// at a coarser precision is not covered exactly: its division may flip decisions the float32
/// model calls safe (no allowance there), and where one is ambiguous the allowance
/// `u / QUANT_U` is more than a quantum.
pub const QUANT_U: f64 = 1.0 / 16_777_216.0;

/// Half-width of the interval where a runtime's `x / s` may lie, for QuantizeLinear: the exact
/// quotient `t`, the input's bound `e_x` (in u) and the scale `s` give
/// `d = 2 e_x QUANT_U / |s| + 4 QUANT_U |t|`, the input's allowed error with a margin of 2 plus
/// a division, or a multiplication by a rounded reciprocal (two roundings), with a margin of 2.
pub fn quotient_spread(t: f64, ex: f64, s: f64) -> f64 {
    2.0 * ex * QUANT_U / s.abs() + 4.0 * QUANT_U * t.abs()
}

/// Bound of a quantized value `quantize(t)` (rounding half to even, adding the zero point and
/// saturating), when the runtime's quotient may lie anywhere in `[t - d, t + d]`:
/// `max(q(t) - q(t - d), q(t + d) - q(t)) / QUANT_U`. The quantization is monotone, so the
/// interval's ends give the farthest integers reachable: 0 where no rounding decision can flip
/// (an exact integer adds no error), a quantum where one can, more when `d` spans several.
pub fn quantized(t: f64, d: f64, quantize: impl Fn(f64) -> f64) -> f64 {
    let q = quantize(t);
    let spread = (q - quantize(t - d)).max(quantize(t + d) - q);
    spread / QUANT_U
}

/// Bound of a requantized value: a fused kernel's integer `q` for the exact quotient `t` may be
/// any rounding of a quotient within its spread, from `down = q(floor(t - d))` to
/// `up = q(ceil(t + d))` (saturated): `max(q - down, up - q) / QUANT_U`, one quantum where
/// nothing saturates.
pub fn requantized(q: f64, down: f64, up: f64) -> f64 {
    (q - down).max(up - q) / QUANT_U
}

/// The error one evaluation of an elementwise function may add, in units of u:
/// `relative * |y| + floor` (the table above; why each value: docs/oracle.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Relative part, in u of the result (`k` ulp of `y` is at most `2k u |y|`).
    pub relative: f64,
    /// Absolute part, in u, for kernels accurate in absolute terms near a zero of the function.
    pub floor: f64,
}

impl Accuracy {
    /// The allowance for the result `y`.
    pub fn of(self, y: f64) -> f64 {
        self.relative * y.abs() + self.floor
    }

    /// The same with the floor scaled by `s` (Elu's `α`, Selu's `γ α` multiply the `e^x - 1`
    /// whose absolute error the floor stands for).
    pub fn floor_times(self, s: f64) -> Accuracy {
        Accuracy {
            floor: self.floor * s.abs(),
            ..self
        }
    }
}

/// Exp: 2 ulp in tract, 0.8 in onnxruntime, 5.3 in OpenVINO near overflow.
pub const EXP: Accuracy = Accuracy {
    relative: 16.0,
    floor: 0.0,
};

/// Log: 1 ulp in tract and OpenVINO, 3.1 in onnxruntime, relative near `x = 1` as well.
pub const LOG: Accuracy = Accuracy {
    relative: 8.0,
    floor: 0.0,
};

/// Tanh: odd rational fits are relative near 0; tract's saturates at `±(1 - 12u)`.
pub const TANH: Accuracy = Accuracy {
    relative: 16.0,
    floor: 0.0,
};

/// Sigmoid: fits of `sigmoid - 1/2` are accurate to 3u absolute; tract's saturates at
/// `1 - 8u` above and `2^-21` below -14.5, which the floor of 4 does not admit.
pub const SIGMOID: Accuracy = Accuracy {
    relative: 8.0,
    floor: 4.0,
};

/// Erf: tract's `1 - (1+p)^-16` is accurate to 3·10⁻⁷ (5u) plus 32u of f32 rounding in
/// absolute terms, which near 0 is up to 2000 ulp of the result.
pub const ERF: Accuracy = Accuracy {
    relative: 4.0,
    floor: 40.0,
};

/// Gelu (exact): `x/2 (1 + erf(x/√2))`, the erf's absolute error scaled by `|x|/2`.
pub const GELU: Accuracy = Accuracy {
    relative: 8.0,
    floor: 16.0,
};

/// Softplus: `ln(1 + e^x)` cancels for negative x (OpenVINO: 17.9u absolute).
pub const SOFTPLUS: Accuracy = Accuracy {
    relative: 8.0,
    floor: 24.0,
};

/// Mish: `x tanh(softplus(x))`, Tanh's relative error and Softplus's absolute one times `x`.
pub const MISH: Accuracy = Accuracy {
    relative: 16.0,
    floor: 24.0,
};

/// SiLU `x σ(x)` (CausalConvWithState's activation): Sigmoid's relative error plus the
/// product's rounding, and Sigmoid's absolute floor, to be scaled by `max(1, |x|)`
/// ([`Accuracy::floor_times`]).
pub const SILU: Accuracy = Accuracy {
    relative: 10.0,
    floor: 4.0,
};

/// Elu: `α (e^x - 1)`; the floor is in units of `|α|` ([`Accuracy::floor_times`]).
pub const ELU: Accuracy = Accuracy {
    relative: 4.0,
    floor: 4.0,
};

/// Selu: `γ (α e^x - α)`; the floor is in units of `|γ α|`.
pub const SELU: Accuracy = Accuracy {
    relative: 4.0,
    floor: 4.0,
};

/// Every other smooth function (HardSigmoid, HardSwish, Softsign, Sqrt, Gelu's tanh form) and
/// LpPool's powers: the blanket allowance that predates the per-function table, not retuned.
pub const GENERIC: Accuracy = Accuracy {
    relative: 64.0,
    floor: 16.0,
};

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

/// Bound of a smooth elementwise function `y = f(x)` with derivative `df`, evaluated with
/// accuracy `acc`: `L e_x + acc.of(y)`.
///
/// `L` is the largest `|f'|` at `x` and at `x ± δ`, where `δ = e_x * COARSEST_U` is the largest
/// perturbation the runtime may see. Where `f'` jumps (Elu at 0, HardSigmoid and HardSwish at
/// their corners) and is monotone on each piece, that is an upper bound of `|f'|` over the
/// reachable interval, hence a valid Lipschitz constant there.
pub fn smooth_unary(x: f64, ex: f64, y: f64, df: impl Fn(f64) -> f64, acc: Accuracy) -> f64 {
    let delta = ex * COARSEST_U;
    let slope = df(x)
        .abs()
        .max(df(x - delta).abs())
        .max(df(x + delta).abs());
    // An exact input propagates nothing, even where the slope is infinite (sqrt at 0).
    let propagated = if ex == 0.0 { 0.0 } else { slope * ex };
    propagated + acc.of(y)
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
