//! MaxPool, AveragePool, LpPool and the global pools over any number of spatial axes.
//!
//! Padding semantics, per the spec and the ONNX reference implementation: a window tap is
//! *real* when it falls inside the input, *padding* when it falls inside the explicit (or
//! auto_pad) padding, and *beyond* when a ceil_mode window runs past the padded end; beyond
//! taps are never counted. MaxPool ignores padding; AveragePool divides by the real taps, or by
//! real plus padding taps with `count_include_pad=1`; LpPool is the p-norm of the real taps
//! (padding is zero).
//!
//! Pads as large as the kernel: the spec puts no limit on pads (onnxruntime refuses
//! `pads >= kernel`, ONNX shape inference does not), so they are accepted. A window may then
//! contain no real element; its max (and its count_include_pad=0 average) is undefined, so the
//! oracle reports [`OracleError::Undefined`](super::OracleError::Undefined) instead of
//! inventing a value. Average with count_include_pad=1 and LpPool stay defined (0).

use super::bound::{self, GENERIC};
use super::conv::{check_work, kernel_taps};
use super::geometry::{self, Window};
use super::node::{FloatRef, Node, Result};
use super::value::{flat, from_flat, strides, try_for_each_index, Value};

/// The taps of one window.
struct Taps<'t> {
    /// Flat offsets into X of the real taps, in kernel row-major order.
    real: &'t [usize],
    /// Number of taps inside the padding.
    padding: usize,
}

/// Reads X and the window of a pool node (the op table has checked which attributes exist in
/// the model's opset).
fn read_pool<'a>(node: &Node<'a>) -> Result<(FloatRef<'a>, Window)> {
    let (x, ex) = node.float_input(0, "X")?;
    let xs = x.shape();
    if xs.len() < 3 {
        return Err(node.invalid(format!(
            "X must have rank >= 3 (N, C, D1, ...), has shape {xs:?}"
        )));
    }
    let kernel = node
        .ints("kernel_shape")?
        .ok_or_else(|| node.invalid("attribute kernel_shape is required"))?;
    let rank = xs.len() - 2;
    if kernel.len() != rank {
        return Err(node.invalid(format!(
            "kernel_shape {kernel:?} must have {rank} values (spatial axes of X {xs:?})"
        )));
    }
    if let Some(bad) = kernel.iter().find(|&&k| k < 1) {
        return Err(node.invalid(format!(
            "kernel_shape must be positive, got {bad} in {kernel:?}"
        )));
    }
    let kernel: Vec<usize> = kernel
        .iter()
        .map(|&k| {
            usize::try_from(k).map_err(|_| node.invalid(format!("kernel size {k} is too large")))
        })
        .collect::<Result<_>>()?;
    let ceil_mode = node.flag("ceil_mode", false)?;
    let win = geometry::window(node, &xs[2..], &kernel, ceil_mode)?;
    Ok(((x, ex), win))
}

/// Visits every output element of a pool (row-major over `[N, C, out...]`) with its taps;
/// returns the output shape.
fn for_each_window(
    node: &Node,
    xs: &[usize],
    win: &Window,
    mut visit: impl FnMut(&Taps) -> Result<()>,
) -> Result<Vec<usize>> {
    let mut out_shape = xs[..2].to_vec();
    out_shape.extend(&win.out);
    let total = node.check_size(&out_shape)?;
    check_work(node, &[&[total], win.kernel.as_slice()].concat())?;
    let xst = strides(xs);
    let taps = kernel_taps(node, &win.kernel)?;
    let rank = win.kernel.len();
    let mut real = Vec::with_capacity(taps.len());
    try_for_each_index(&out_shape, |idx| {
        let (base, o) = (idx[0] * xst[0] + idx[1] * xst[1], &idx[2..]);
        real.clear();
        let mut padding = 0;
        'tap: for k in &taps {
            let mut offset = base;
            let mut inside = true;
            for a in 0..rank {
                let p = win.input_pos(a, o[a], k[a]);
                let n = xs[a + 2] as i128;
                if p < -(win.pad_begin[a] as i128) || p >= n + win.pad_end[a] as i128 {
                    continue 'tap; // beyond the padded extent (ceil_mode): never counted
                }
                if p < 0 || p >= n {
                    inside = false;
                } else {
                    offset += p as usize * xst[a + 2];
                }
            }
            if inside {
                real.push(offset);
            } else {
                padding += 1;
            }
        }
        visit(&Taps {
            real: &real,
            padding,
        })
    })?;
    Ok(out_shape)
}

/// MaxPool, with the optional Indices output: the flat index into X (`[N, C, D...]`) of the
/// first maximum in kernel order, row-major over the spatial axes, or column-major with
/// `storage_order=1` (batch and channel offsets stay row-major, as in the reference
/// implementation). A NaN in the window makes the result NaN.
pub(crate) fn max_pool(node: &Node) -> Result<Vec<Value>> {
    if let Some(Value::Int(_)) = node.input(0) {
        return node.selecting_on_integers(max_pool);
    }
    let ((x, ex), win) = read_pool(node)?;
    let storage_order = node.flag("storage_order", false)?;
    let xs = x.shape();
    let (xf, xef) = (flat(x), flat(ex));
    let (mut y, mut e, mut indices) = (Vec::new(), Vec::new(), Vec::new());
    let shape = for_each_window(node, xs, &win, |taps| {
        let mut best: Option<usize> = None;
        for &t in taps.real {
            match best {
                Some(b) if xf[b].is_nan() || !(xf[t] > xf[b] || xf[t].is_nan()) => {}
                _ => best = Some(t),
            }
        }
        let best = best.ok_or_else(|| {
            node.undefined("a window covers only padding, so its maximum is undefined")
        })?;
        y.push(xf[best]);
        // 1-Lipschitz: max of the window's bounds.
        e.push(taps.real.iter().map(|&t| xef[t]).fold(0.0, f64::max));
        indices.push(if storage_order {
            column_major(best, xs)
        } else {
            best
        } as i64);
        Ok(())
    })?;
    let mut outputs = vec![Value::float(from_flat(&shape, y), from_flat(&shape, e))];
    if node.wants_output(1) {
        outputs.push(Value::Int(from_flat(&shape, indices)));
    }
    Ok(outputs)
}

/// Re-expresses a row-major flat offset into `[N, C, D...]` with the spatial axes column-major.
fn column_major(row_major: usize, xs: &[usize]) -> usize {
    let rst = strides(xs);
    let idx: Vec<usize> = (0..xs.len())
        .map(|a| row_major / rst[a] % xs[a].max(1))
        .collect();
    let plane: usize = xs[2..].iter().product();
    let mut offset = (idx[0] * xs[1] + idx[1]) * plane;
    let mut stride = 1;
    for a in 2..xs.len() {
        offset += idx[a] * stride;
        stride *= xs[a];
    }
    offset
}

/// AveragePool.
pub(crate) fn average_pool(node: &Node) -> Result<Vec<Value>> {
    let ((x, ex), win) = read_pool(node)?;
    let include_pad = node.flag("count_include_pad", false)?;
    let (xf, xef) = (flat(x), flat(ex));
    let (mut y, mut e) = (Vec::new(), Vec::new());
    let shape = for_each_window(node, x.shape(), &win, |taps| {
        let k = taps.real.len();
        let divisor = if include_pad { k + taps.padding } else { k };
        if divisor == 0 {
            return Err(node.undefined("a window covers only padding and count_include_pad=0: 0/0"));
        }
        let sum: f64 = taps.real.iter().map(|&t| xf[t]).sum();
        let sum_abs: f64 = taps.real.iter().map(|&t| xf[t].abs()).sum();
        let sum_e: f64 = taps.real.iter().map(|&t| xef[t]).sum();
        y.push(sum / divisor as f64);
        e.push(bound::mean(sum_e, sum_abs, k, divisor));
        Ok(())
    })?;
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// LpPool: `(Σ |x|^p)^(1/p)` over the real taps.
///
/// The ONNX reference implementation computes `kernel_size · mean(|x|^p)`, which differs from
/// the norm only for ceil_mode windows that run past the padded end; the oracle follows the
/// spec's definition (the Lp norm of the window).
pub(crate) fn lp_pool(node: &Node) -> Result<Vec<Value>> {
    let ((x, ex), win) = read_pool(node)?;
    // Opset 1 has a float p, later opsets an integer.
    let p = if node.opset < 2 {
        node.float("p", 2.0)?
    } else {
        node.int("p", 2)? as f64
    };
    if p.is_nan() || p < 1.0 {
        return Err(node.invalid(format!("p must be >= 1, got {p}")));
    }
    let (xf, xef) = (flat(x), flat(ex));
    let (mut y, mut e) = (Vec::new(), Vec::new());
    let shape = for_each_window(node, x.shape(), &win, |taps| {
        let norm = taps
            .real
            .iter()
            .map(|&t| xf[t].abs().powf(p))
            .sum::<f64>()
            .powf(1.0 / p);
        y.push(norm);
        e.push(lp_bound(
            taps.real.iter().map(|&t| (xf[t], xef[t])),
            norm,
            p,
        ));
        Ok(())
    })?;
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// Bound of a p-norm `y` of `k` terms: the gradient `(|x_i| / y)^(p-1)` is at most 1 per term;
/// rounding: `k+1` for the sum plus [`GENERIC`]'s relative part for the powers, divided by p through the
/// root, plus the root's own rounding.
fn lp_bound(terms: impl Iterator<Item = (f64, f64)> + Clone, y: f64, p: f64) -> f64 {
    let k = terms.clone().count() as f64;
    let propagated: f64 = if y > 0.0 {
        terms.map(|(x, e)| (x.abs() / y).powf(p - 1.0) * e).sum()
    } else {
        terms.map(|(_, e)| e).sum()
    };
    let r = GENERIC.relative;
    propagated + ((k + 1.0 + r) / p + r) * y
}

/// Reads X of a global pool: rank >= 3, reduced over every spatial axis; returns the output
/// shape `[N, C, 1, ...]` and the number of elements per (n, c).
fn read_global<'a>(node: &Node<'a>) -> Result<(FloatRef<'a>, Vec<usize>, usize)> {
    let (x, ex) = node.float_input(0, "X")?;
    let xs = x.shape();
    if xs.len() < 3 {
        return Err(node.invalid(format!(
            "X must have rank >= 3 (N, C, D1, ...), has shape {xs:?}"
        )));
    }
    let mut shape = xs[..2].to_vec();
    shape.resize(xs.len(), 1);
    Ok(((x, ex), shape, xs[2..].iter().product()))
}

/// GlobalAveragePool: the mean over all spatial positions of each (n, c).
pub(crate) fn global_average_pool(node: &Node) -> Result<Vec<Value>> {
    let ((x, ex), shape, plane) = read_global(node)?;
    if plane == 0 {
        return Err(node.undefined("the spatial size is 0, so the mean is 0/0"));
    }
    let (xf, xef) = (flat(x), flat(ex));
    let (y, e) = xf
        .chunks(plane)
        .zip(xef.chunks(plane))
        .map(|(v, b)| {
            let sum_abs: f64 = v.iter().map(|x| x.abs()).sum();
            (
                v.iter().sum::<f64>() / plane as f64,
                bound::mean(b.iter().sum(), sum_abs, plane, plane),
            )
        })
        .unzip();
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// GlobalMaxPool: the max over all spatial positions of each (n, c) (NaN propagates).
pub(crate) fn global_max_pool(node: &Node) -> Result<Vec<Value>> {
    let ((x, ex), shape, plane) = read_global(node)?;
    if plane == 0 {
        return Err(node.undefined("the spatial size is 0, so the maximum is undefined"));
    }
    let (xf, xef) = (flat(x), flat(ex));
    let (y, e) = xf
        .chunks(plane)
        .zip(xef.chunks(plane))
        .map(|(v, b)| {
            (
                v.iter().copied().fold(f64::NEG_INFINITY, nan_max),
                b.iter().copied().fold(0.0, f64::max),
            )
        })
        .unzip();
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// Maximum that propagates NaN.
pub(crate) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}
