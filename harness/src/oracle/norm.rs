//! BatchNormalization (inference), InstanceNormalization and LayerNormalization.

use ndarray::ArrayD;

use super::bound::{self, NormTerms};
use super::node::{FloatRef, Node, Result};
use super::value::{broadcast_to, flat, from_flat, resolve_axis, Value};

/// Reads a per-channel parameter of shape `[channels]`.
fn per_channel<'a>(node: &Node<'a>, i: usize, what: &str, channels: usize) -> Result<FloatRef<'a>> {
    let (v, e) = node.float_input(i, what)?;
    if v.shape() != [channels] {
        return Err(node.invalid(format!(
            "{what} has shape {:?}, expected [{channels}]",
            v.shape()
        )));
    }
    Ok((v, e))
}

/// BatchNormalization in inference mode: `y = s (x - mean) + β` with `s = γ / sqrt(var + ε)`
/// per channel (axis 1). Training mode (opset 14 `training_mode=1`, opset 1–6 `is_test=0`, or the
/// running-statistics outputs of earlier opsets) and `spatial=0` are not implemented.
pub(crate) fn batch_norm(node: &Node) -> Result<Vec<Value>> {
    // Before opset 7 the node says inference with `is_test=1`; its default is training.
    if node.opset < 7 && !node.flag("is_test", false)? {
        return Err(node.unsupported("is_test=0 (training mode) before opset 7"));
    }
    if node.flag("training_mode", false)? {
        return Err(node.unsupported("training_mode=1"));
    }
    if (1..5).any(|i| node.wants_output(i)) {
        // Opset 14 defines the extra outputs only in training mode; earlier opsets use them for
        // running statistics, which the oracle does not compute.
        return Err(if node.opset >= 14 {
            node.invalid("outputs other than Y exist only when training_mode=1")
        } else {
            node.unsupported("training-mode outputs (running mean/var, saved statistics)")
        });
    }
    if !node.flag("spatial", true)? {
        return Err(node.unsupported("spatial=0 (per-activation statistics)"));
    }
    let eps = node.float("epsilon", 1e-5)?;
    let (x, ex) = node.float_input(0, "X")?;
    let xs = x.shape();
    if xs.len() < 2 {
        return Err(node.invalid(format!(
            "X must have rank >= 2 (N, C, ...), has shape {xs:?}"
        )));
    }
    let channels = xs[1];
    let (g, _) = per_channel(node, 1, "scale", channels)?;
    let (beta, _) = per_channel(node, 2, "B", channels)?;
    let (mean, _) = per_channel(node, 3, "input_mean", channels)?;
    let (var, _) = per_channel(node, 4, "input_var", channels)?;
    let plane: usize = xs[2..].iter().product();
    let (xf, xef) = (flat(x), flat(ex));
    let (mut y, mut e) = (Vec::with_capacity(xf.len()), Vec::with_capacity(xf.len()));
    for (i, (&x, &ex)) in xf.iter().zip(xef.iter()).enumerate() {
        let c = i / plane.max(1) % channels.max(1);
        let s = g[c] / (var[c] + eps).sqrt();
        y.push(s * (x - mean[c]) + beta[c]);
        e.push(s.abs() * ex + 8.0 * ((x * s).abs() + (mean[c] * s).abs() + beta[c].abs()));
    }
    Ok(vec![Value::float(from_flat(xs, y), from_flat(xs, e))])
}

/// Statistics of one normalized group.
struct Normalized {
    /// `(x - μ) / σ` per element and its bound.
    z: Vec<(f64, f64)>,
    mean: f64,
    mean_bound: f64,
    sigma: f64,
    /// Mean of `|z| e_x`, for the bound of `1/σ`.
    mean_z_ex: f64,
}

/// Normalizes one group to zero mean and unit variance (population variance, plus ε).
fn normalize(x: &[f64], ex: &[f64], eps: f64) -> Normalized {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let sigma = (var + eps).sqrt();
    let mean_ex = ex.iter().sum::<f64>() / n;
    let mean_abs_x = x.iter().map(|v| v.abs()).sum::<f64>() / n;
    let mean_z_ex = x
        .iter()
        .zip(ex)
        .map(|(v, e)| ((v - mean) / sigma).abs() * e)
        .sum::<f64>()
        / n;
    let z = x
        .iter()
        .zip(ex)
        .map(|(&v, &e)| {
            let z = (v - mean) / sigma;
            let terms = NormTerms {
                ex: e,
                mean_ex,
                mean_z_ex,
                mean_abs_x,
                centered: (v - mean).abs(),
                sigma,
                z,
                n: x.len(),
            };
            (z, bound::normalization(&terms))
        })
        .collect();
    Normalized {
        z,
        mean,
        mean_bound: bound::mean(mean_ex * n, mean_abs_x * n, x.len(), x.len()),
        sigma,
        mean_z_ex,
    }
}

/// `γ z + β` and its bound (a Mul and an Add on top of `z`'s bound).
fn affine(z: (f64, f64), gamma: (f64, f64), beta: (f64, f64)) -> (f64, f64) {
    let (z, ez) = z;
    let y = gamma.0 * z + beta.0;
    let e = gamma.0.abs() * ez + z.abs() * gamma.1 + beta.1 + (gamma.0 * z).abs() + y.abs();
    (y, e)
}

/// Normalizes each row of `x` viewed as `[rows, cols]`, then applies per-element `(γ, β)` given
/// by `params(row, col)`. Returns y, e and the per-row statistics.
fn normalize_rows(
    x: FloatRef,
    cols: usize,
    eps: f64,
    params: impl Fn(usize, usize) -> ((f64, f64), (f64, f64)),
) -> (Vec<f64>, Vec<f64>, Vec<Normalized>) {
    let (xf, xef) = (flat(x.0), flat(x.1));
    let (mut y, mut e, mut stats) = (
        Vec::with_capacity(xf.len()),
        Vec::with_capacity(xf.len()),
        Vec::new(),
    );
    if cols == 0 {
        return (y, e, stats);
    }
    for (row, (xr, er)) in xf.chunks(cols).zip(xef.chunks(cols)).enumerate() {
        let norm = normalize(xr, er, eps);
        for (col, &z) in norm.z.iter().enumerate() {
            let (gamma, beta) = params(row, col);
            let (yv, ev) = affine(z, gamma, beta);
            y.push(yv);
            e.push(ev);
        }
        stats.push(norm);
    }
    (y, e, stats)
}

/// InstanceNormalization: each (n, c) normalized over its spatial positions, then
/// `scale[c] z + B[c]`. Bound: [`bound::normalization`] plus the affine step.
pub(crate) fn instance_norm(node: &Node) -> Result<Vec<Value>> {
    let eps = node.float("epsilon", 1e-5)?;
    let (x, ex) = node.float_input(0, "input")?;
    let xs = x.shape();
    if xs.len() < 3 {
        return Err(node.invalid(format!(
            "input must have rank >= 3 (N, C, D1, ...), has shape {xs:?}"
        )));
    }
    let channels = xs[1];
    let (g, eg) = per_channel(node, 1, "scale", channels)?;
    let (b, eb) = per_channel(node, 2, "B", channels)?;
    let plane: usize = xs[2..].iter().product();
    let (y, e, _) = normalize_rows((x, ex), plane, eps, |row, _| {
        let c = row % channels;
        ((g[c], eg[c]), (b[c], eb[c]))
    });
    Ok(vec![Value::float(from_flat(xs, y), from_flat(xs, e))])
}

/// LayerNormalization (opset 17): normalizes over axes `axis..`, then `Scale · z + B` with Scale
/// and B broadcast to X. Optional outputs Mean and InvStdDev have shape `X.shape[..axis]`
/// followed by ones.
pub(crate) fn layer_norm(node: &Node) -> Result<Vec<Value>> {
    let eps = node.float("epsilon", 1e-5)?;
    let (x, ex) = node.float_input(0, "X")?;
    let xs = x.shape();
    let axis = node.int("axis", -1)?;
    let axis = resolve_axis(axis, xs.len()).ok_or_else(|| {
        node.invalid(format!(
            "axis {axis} is out of range for X of rank {}",
            xs.len()
        ))
    })?;
    let stash = node.int("stash_type", 1)?;
    if stash != 1 {
        return Err(node.unsupported(format!("stash_type={stash}")));
    }
    let param = |i: usize, what: &str, default: f64| -> Result<(ArrayD<f64>, ArrayD<f64>)> {
        match node.opt_float_input(i, what)? {
            None => Ok((ArrayD::from_elem(xs, default), ArrayD::zeros(xs))),
            Some((v, e)) => match (broadcast_to(v, xs), broadcast_to(e, xs)) {
                (Some(v), Some(e)) => Ok((v, e)),
                _ => Err(node.invalid(format!(
                    "{what} {:?} does not broadcast to X {xs:?}",
                    v.shape()
                ))),
            },
        }
    };
    let (g, eg) = param(1, "Scale", 1.0)?;
    let (b, eb) = param(2, "B", 0.0)?;
    let (g, eg, b, eb) = (flat(&g), flat(&eg), flat(&b), flat(&eb));
    let cols: usize = xs[axis..].iter().product();
    let (y, e, stats) = normalize_rows((x, ex), cols, eps, |row, col| {
        let i = row * cols + col;
        ((g[i], eg[i]), (b[i], eb[i]))
    });
    let mut outputs = vec![Value::float(from_flat(xs, y), from_flat(xs, e))];
    let mut stat_shape = xs[..axis].to_vec();
    stat_shape.resize(xs.len(), 1);
    if node.wants_output(1) || node.wants_output(2) {
        let n = cols as f64;
        let mean = stats.iter().map(|s| s.mean).collect();
        let mean_e = stats.iter().map(|s| s.mean_bound).collect();
        outputs.push(Value::float(
            from_flat(&stat_shape, mean),
            from_flat(&stat_shape, mean_e),
        ));
        // 1/σ: propagated `mean(|z| e) / σ²` (first order), rounding `(n+8)` relative.
        let inv = stats.iter().map(|s| 1.0 / s.sigma).collect();
        let inv_e = stats
            .iter()
            .map(|s| s.mean_z_ex / (s.sigma * s.sigma) + (n + 8.0) / s.sigma)
            .collect();
        outputs.push(Value::float(
            from_flat(&stat_shape, inv),
            from_flat(&stat_shape, inv_e),
        ));
    }
    Ok(outputs)
}
