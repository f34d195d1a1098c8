//! Elementwise activations and smooth functions, and Clip.

use std::f64::consts::{FRAC_2_SQRT_PI, PI, SQRT_2};

use ndarray::{ArrayD, Zip};

use super::bound::{self, surely_above, surely_below, Accuracy};
use super::node::{Node, Result};
use super::value::{broadcast_to, Value};

/// Applies `f(x, e_x) -> (y, e_y)` to every element of input 0.
pub(crate) fn map_unary(node: &Node, f: impl Fn(f64, f64) -> (f64, f64)) -> Result<Vec<Value>> {
    let (x, ex) = node.float_input(0, "X")?;
    let (mut y, mut e) = (x.clone(), ex.clone());
    Zip::from(&mut y)
        .and(&mut e)
        .for_each(|y, e| (*y, *e) = f(*y, *e));
    Ok(vec![Value::float(y, e)])
}

/// A smooth function `f` with derivative `df`, evaluated by runtimes with accuracy `acc`,
/// bounded by [`bound::smooth_unary`].
fn smooth(
    node: &Node,
    acc: Accuracy,
    f: impl Fn(f64) -> f64,
    df: impl Fn(f64) -> f64 + Copy,
) -> Result<Vec<Value>> {
    map_unary(node, |x, e| {
        let y = f(x);
        (y, bound::smooth_unary(x, e, y, df, acc))
    })
}

/// Relu: `max(x, 0)` (NaN stays NaN). Bound `e_x`, or 0 where no perturbation reaches 0.
pub(crate) fn relu(node: &Node) -> Result<Vec<Value>> {
    map_unary(node, |x, e| {
        let y = if x < 0.0 { 0.0 } else { x };
        (y, if surely_below(x, e, 0.0) { 0.0 } else { e })
    })
}

/// LeakyRelu: `x < 0 ? alpha x : x`, alpha defaulting to 0.01.
pub(crate) fn leaky_relu(node: &Node) -> Result<Vec<Value>> {
    let alpha = node.float("alpha", 0.01)?;
    map_unary(node, |x, e| {
        let y = if x < 0.0 { alpha * x } else { x };
        (y, 1f64.max(alpha.abs()) * e + y.abs())
    })
}

/// PRelu: `x < 0 ? slope x : x` with `slope` broadcast (numpy, unidirectional) to X.
pub(crate) fn prelu(node: &Node) -> Result<Vec<Value>> {
    let (x, ex) = node.float_input(0, "X")?;
    let (s, es) = node.float_input(1, "slope")?;
    let shape = x.shape();
    // Before opset 7 a slope of one element is shared and a slope of C elements is per channel
    // (axis 1), as Caffe2 and the PyTorch exporter of the time wrote it.
    let per_channel;
    let (s, es) =
        if node.opset < 7 && s.len() > 1 && s.ndim() == 1 && shape.get(1) == Some(&s.len()) {
            let mut to = vec![1; shape.len()];
            to[1] = s.len();
            per_channel = (
                s.to_shape(to.clone())
                    .map_err(|e| node.invalid(e))?
                    .to_owned(),
                es.to_shape(to).map_err(|e| node.invalid(e))?.to_owned(),
            );
            (&per_channel.0, &per_channel.1)
        } else {
            (s, es)
        };
    let (s, es) = match (broadcast_to(s, shape), broadcast_to(es, shape)) {
        (Some(s), Some(es)) => (s, es),
        _ => {
            return Err(node.invalid(format!(
                "slope {:?} does not broadcast to X {shape:?}",
                s.shape()
            )))
        }
    };
    let (mut y, mut e) = (x.clone(), ex.clone());
    Zip::from(&mut y)
        .and(&mut e)
        .and(&s)
        .and(&es)
        .for_each(|y, e, &s, &es| {
            let x = *y;
            *y = if x < 0.0 { s * x } else { x };
            let slope_error = if x < 0.0 { x.abs() * es } else { 0.0 };
            *e = 1f64.max(s.abs()) * *e + slope_error + y.abs();
        });
    Ok(vec![Value::float(y, e)])
}

/// Clip: `min(max(x, lo), hi)` (so `hi` wins when `lo > hi`, as the spec says). Limits are the
/// `min`/`max` attributes before opset 11 and optional scalar inputs from 11.
/// Bound: the max of the bounds of whichever of `lo`, `x`, `hi` a perturbation can select.
pub(crate) fn clip(node: &Node) -> Result<Vec<Value>> {
    if let Some(Value::Int(x)) = node.input(0) {
        return clip_integers(node, x);
    }
    let limit = |v: f64| (v, bound::rounding(v));
    let (lo, hi) = if node.opset < 11 {
        (
            limit(node.float("min", f32::MIN)?),
            limit(node.float("max", f32::MAX)?),
        )
    } else {
        (
            node.opt_scalar(1, "min")?
                .unwrap_or((f64::NEG_INFINITY, 0.0)),
            node.opt_scalar(2, "max")?.unwrap_or((f64::INFINITY, 0.0)),
        )
    };
    map_unary(node, |x, e| {
        let y = if x.is_nan() { x } else { x.max(lo.0).min(hi.0) };
        if lo.0 > hi.0 {
            return (y, hi.1);
        }
        let mut ey: f64 = 0.0;
        if !surely_above(x, e, lo.0) {
            ey = ey.max(lo.1);
        }
        if !surely_below(x, e, hi.0) {
            ey = ey.max(hi.1);
        }
        if !surely_below(x, e, lo.0) && !surely_above(x, e, hi.0) {
            ey = ey.max(e);
        }
        (y, ey)
    })
}

/// Logistic sigmoid, evaluated without overflow.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let z = x.exp();
        z / (1.0 + z)
    }
}

/// Clip of an integer tensor (opset 12 on): exact, the limits being integer scalars.
fn clip_integers(node: &Node, x: &ArrayD<i64>) -> Result<Vec<Value>> {
    let limit = |i: usize, what: &str| -> Result<Option<i64>> {
        match node.input(i) {
            None => Ok(None),
            Some(Value::Int(a)) if a.len() == 1 => Ok(a.iter().next().copied()),
            Some(v) => Err(node.invalid(format!(
                "{what} must be one integer like the input, got {} {:?}",
                v.kind(),
                v.shape()
            ))),
        }
    };
    let (lo, hi) = (limit(1, "min")?, limit(2, "max")?);
    let y = x.mapv(|v| {
        let v = lo.map_or(v, |lo| v.max(lo));
        hi.map_or(v, |hi| v.min(hi))
    });
    Ok(vec![Value::Int(y)])
}

/// SiLU `x σ(x)` of a value `x` with bound `e_x`, and its bound: Sigmoid's errors scaled by
/// `|x|` plus the product's rounding ([`bound::SILU`]).
pub(crate) fn silu(x: f64, ex: f64) -> (f64, f64) {
    let s = logistic(x);
    let y = x * s;
    let acc = bound::SILU.floor_times(x.abs().max(1.0));
    (
        y,
        bound::smooth_unary(
            x,
            ex,
            y,
            |v| {
                let s = logistic(v);
                s * (1.0 + v * (1.0 - s))
            },
            acc,
        ),
    )
}

/// `ln(1 + e^x)`, evaluated without overflow.
fn softplus_fn(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// The error function, to f64 accuracy: `erf(x) = 2/√π e^(-x²) Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`,
/// a series of positive terms (no cancellation); `|erf(x)| = 1` to f64 precision beyond 6.
pub(crate) fn erf_fn(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() >= 6.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-17 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    FRAC_2_SQRT_PI * (-x * x).exp() * sum
}

/// Sigmoid.
pub(crate) fn sigmoid(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::SIGMOID, logistic, |x| {
        logistic(x) * (1.0 - logistic(x))
    })
}

/// Tanh.
pub(crate) fn tanh(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::TANH, f64::tanh, |x| 1.0 - x.tanh().powi(2))
}

/// Elu: `x >= 0 ? x : alpha (e^x - 1)`, alpha defaulting to 1.
pub(crate) fn elu(node: &Node) -> Result<Vec<Value>> {
    let alpha = node.float("alpha", 1.0)?;
    smooth(
        node,
        bound::ELU.floor_times(alpha),
        move |x| if x >= 0.0 { x } else { alpha * x.exp_m1() },
        move |x| if x >= 0.0 { 1.0 } else { alpha * x.exp() },
    )
}

/// Selu: `gamma (x > 0 ? x : alpha e^x - alpha)` with the spec's default constants.
pub(crate) fn selu(node: &Node) -> Result<Vec<Value>> {
    let alpha = node.float("alpha", 1.673_263_2)?;
    let gamma = node.float("gamma", 1.050_701)?;
    smooth(
        node,
        bound::SELU.floor_times(gamma * alpha),
        move |x| gamma * if x > 0.0 { x } else { alpha * x.exp_m1() },
        move |x| gamma * if x > 0.0 { 1.0 } else { alpha * x.exp() },
    )
}

/// HardSigmoid: `max(0, min(1, alpha x + beta))`, defaults 0.2 and 0.5.
pub(crate) fn hard_sigmoid(node: &Node) -> Result<Vec<Value>> {
    let alpha = node.float("alpha", 0.2)?;
    let beta = node.float("beta", 0.5)?;
    let inside = move |x: f64| (0.0..=1.0).contains(&(alpha * x + beta));
    smooth(
        node,
        bound::GENERIC,
        move |x| (alpha * x + beta).clamp(0.0, 1.0),
        move |x| if inside(x) { alpha } else { 0.0 },
    )
}

/// HardSwish: `x · max(0, min(1, x/6 + 1/2))`.
pub(crate) fn hard_swish(node: &Node) -> Result<Vec<Value>> {
    smooth(
        node,
        bound::GENERIC,
        |x| x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
        |x| {
            if x < -3.0 {
                0.0
            } else if x > 3.0 {
                1.0
            } else {
                x / 3.0 + 0.5
            }
        },
    )
}

/// Gelu: `x Φ(x)` (approximate="none") or its tanh approximation (approximate="tanh").
pub(crate) fn gelu(node: &Node) -> Result<Vec<Value>> {
    let phi = |x: f64| (-x * x / 2.0).exp() / (2.0 * PI).sqrt();
    let cdf = |x: f64| 0.5 * (1.0 + erf_fn(x / SQRT_2));
    match node.string("approximate", "none")?.as_str() {
        "none" => smooth(
            node,
            bound::GELU,
            move |x| x * cdf(x),
            move |x| cdf(x) + x * phi(x),
        ),
        "tanh" => {
            let c = (2.0 / PI).sqrt();
            let inner = move |x: f64| c * (x + 0.044715 * x.powi(3));
            smooth(
                node,
                bound::GENERIC,
                move |x| 0.5 * x * (1.0 + inner(x).tanh()),
                move |x| {
                    let t = inner(x).tanh();
                    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x)
                },
            )
        }
        other => Err(node.invalid(format!(
            "approximate must be 'none' or 'tanh', got '{other}'"
        ))),
    }
}

/// Softplus: `ln(1 + e^x)`.
pub(crate) fn softplus(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::SOFTPLUS, softplus_fn, logistic)
}

/// Softsign: `x / (1 + |x|)`.
pub(crate) fn softsign(node: &Node) -> Result<Vec<Value>> {
    smooth(
        node,
        bound::GENERIC,
        |x| x / (1.0 + x.abs()),
        |x| 1.0 / (1.0 + x.abs()).powi(2),
    )
}

/// Mish: `x tanh(softplus(x))`.
pub(crate) fn mish(node: &Node) -> Result<Vec<Value>> {
    smooth(
        node,
        bound::MISH,
        |x| x * softplus_fn(x).tanh(),
        |x| {
            let t = softplus_fn(x).tanh();
            t + x * (1.0 - t * t) * logistic(x)
        },
    )
}

/// Exp.
pub(crate) fn exp(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::EXP, f64::exp, f64::exp)
}

/// Natural logarithm.
pub(crate) fn log(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::LOG, f64::ln, |x| 1.0 / x)
}

/// Square root.
pub(crate) fn sqrt(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::GENERIC, f64::sqrt, |x| 0.5 / x.sqrt())
}

/// Erf.
pub(crate) fn erf(node: &Node) -> Result<Vec<Value>> {
    smooth(node, bound::ERF, erf_fn, |x| {
        FRAC_2_SQRT_PI * (-x * x).exp()
    })
}
