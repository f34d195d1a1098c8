//! Reductions (ReduceMean/Max/Min/Sum) and Softmax.

use super::bound;
use super::node::{Node, Result};
use super::pool::nan_max;
use super::value::{flat, for_each_index, from_flat, resolve_axis, strides, Value};

/// What a reduction computes from the reduced elements: `(x, e_x)` pairs to `(y, e_y)`.
type Reducer = fn(&Node, &[(f64, f64)]) -> Result<(f64, f64)>;

/// Reads the reduced axes: the `axes` attribute before `input_since`, input 1 from it.
/// `None` means "no axes given".
fn reduce_axes(node: &Node, input_since: i64, rank: usize) -> Result<Option<Vec<usize>>> {
    let axes = if node.opset < input_since {
        node.ints("axes")?
    } else {
        node.opt_int_list(1, "axes")?
    };
    let Some(axes) = axes else { return Ok(None) };
    let mut resolved = Vec::with_capacity(axes.len());
    for &a in &axes {
        let r = resolve_axis(a, rank)
            .ok_or_else(|| node.invalid(format!("axis {a} is out of range for rank {rank}")))?;
        if resolved.contains(&r) {
            return Err(node.invalid(format!("axis {a} is repeated in {axes:?}")));
        }
        resolved.push(r);
    }
    Ok(Some(resolved))
}

/// Runs a reduction with the shared `axes` / `keepdims` / `noop_with_empty_axes` semantics.
fn reduce(node: &Node, input_since: i64, reducer: Reducer) -> Result<Vec<Value>> {
    let (x, ex) = match node.required(0, "data")? {
        Value::Float { value, bound } => (value, bound),
        Value::Int(_) => return Err(node.unsupported("integer reductions")),
    };
    let xs = x.shape();
    let keepdims = node.flag("keepdims", true)?;
    let noop = node.flag("noop_with_empty_axes", false)?;
    let axes = match reduce_axes(node, input_since, xs.len())? {
        Some(a) if !a.is_empty() => a,
        _ if noop => return Ok(vec![Value::float(x.clone(), ex.clone())]),
        _ => (0..xs.len()).collect(),
    };
    // The kept shape has 1 on reduced axes; the window spans the reduced axes.
    let kept: Vec<usize> = (0..xs.len())
        .map(|a| if axes.contains(&a) { 1 } else { xs[a] })
        .collect();
    let window: Vec<usize> = (0..xs.len())
        .map(|a| if axes.contains(&a) { xs[a] } else { 1 })
        .collect();
    let (xf, xef, st) = (flat(x), flat(ex), strides(xs));
    let (mut y, mut e, mut error) = (Vec::new(), Vec::new(), None);
    let mut elems = Vec::new();
    for_each_index(&kept, |o| {
        elems.clear();
        for_each_index(&window, |w| {
            let offset: usize = (0..xs.len()).map(|a| (o[a] + w[a]) * st[a]).sum();
            elems.push((xf[offset], xef[offset]));
        });
        match reducer(node, &elems) {
            Ok((v, b)) => {
                y.push(v);
                e.push(b);
            }
            Err(err) => error = error.take().or(Some(err)),
        }
    });
    if let Some(err) = error {
        return Err(err);
    }
    let shape: Vec<usize> = if keepdims {
        kept
    } else {
        (0..xs.len())
            .filter(|a| !axes.contains(a))
            .map(|a| xs[a])
            .collect()
    };
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// Sums of values, bounds and magnitudes.
fn sums(elems: &[(f64, f64)]) -> (f64, f64, f64) {
    elems.iter().fold((0.0, 0.0, 0.0), |(s, se, sa), &(x, e)| {
        (s + x, se + e, sa + x.abs())
    })
}

/// ReduceMean (axes an input from opset 18).
pub(crate) fn reduce_mean(node: &Node) -> Result<Vec<Value>> {
    reduce(node, 18, |node, elems| {
        if elems.is_empty() {
            return Err(node.undefined("the mean of no elements is 0/0"));
        }
        let (s, se, sa) = sums(elems);
        let k = elems.len();
        Ok((s / k as f64, bound::mean(se, sa, k, k)))
    })
}

/// ReduceSum (axes an input from opset 13): bound `Σe + (k+1) Σ|x|`.
pub(crate) fn reduce_sum(node: &Node) -> Result<Vec<Value>> {
    reduce(node, 13, |_, elems| {
        let (s, se, sa) = sums(elems);
        Ok((s, se + (elems.len() as f64 + 1.0) * sa))
    })
}

/// ReduceMax (axes an input from opset 18): 1-Lipschitz, NaN propagates; minus infinity over
/// no elements.
pub(crate) fn reduce_max(node: &Node) -> Result<Vec<Value>> {
    if let Some(Value::Int(_)) = node.input(0) {
        return node.selecting_on_integers(reduce_max);
    }
    reduce(node, 18, |_, elems| {
        Ok(extreme(elems, nan_max, f64::NEG_INFINITY))
    })
}

/// ReduceMin (axes an input from opset 18): 1-Lipschitz, NaN propagates; infinity over no
/// elements.
pub(crate) fn reduce_min(node: &Node) -> Result<Vec<Value>> {
    if let Some(Value::Int(_)) = node.input(0) {
        return node.selecting_on_integers(reduce_min);
    }
    reduce(node, 18, |_, elems| {
        Ok(extreme(elems, |a, b| -nan_max(-a, -b), f64::INFINITY))
    })
}

/// The extremum `pick` selects and its bound; `empty` over no elements, as the spec of every
/// version says except 12's, which is silent.
fn extreme(elems: &[(f64, f64)], pick: fn(f64, f64) -> f64, empty: f64) -> (f64, f64) {
    let Some((&(first, _), rest)) = elems.split_first() else {
        return (empty, 0.0);
    };
    let y = rest.iter().fold(first, |m, &(x, _)| pick(m, x));
    (y, elems.iter().map(|&(_, e)| e).fold(0.0, f64::max))
}

/// Softmax: `exp(x_i - max) / Σ exp(x_j - max)` along `axis`. Before opset 13 the input is
/// coerced to 2-D at `axis` (default 1) and the softmax runs over all axes from `axis` on; from
/// 13 it runs over the one axis (default -1).
/// Bound: `2 y_i max(e_x over the group) + (len + 4) y_i`.
pub(crate) fn softmax(node: &Node) -> Result<Vec<Value>> {
    let (x, ex) = node.float_input(0, "input")?;
    let xs = x.shape();
    let legacy = node.opset < 13;
    let axis = node.int("axis", if legacy { 1 } else { -1 })?;
    // A scalar has one element along a virtual axis.
    let rank = xs.len().max(1);
    let axis = resolve_axis(axis, rank).ok_or_else(|| {
        node.invalid(format!("axis {axis} is out of range for rank {}", xs.len()))
    })?;
    let dim = |a: usize| xs.get(a).copied().unwrap_or(1);
    let outer: usize = (0..axis).map(dim).product();
    let (len, inner) = if legacy {
        ((axis..rank).map(dim).product::<usize>(), 1)
    } else {
        (dim(axis), (axis + 1..rank).map(dim).product())
    };
    let (xf, xef) = (flat(x), flat(ex));
    let mut y = vec![0.0; xf.len()];
    let mut e = vec![0.0; xf.len()];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| (o * len + j) * inner + i;
            let max = (0..len).map(|j| xf[at(j)]).fold(f64::NEG_INFINITY, nan_max);
            let max_e = (0..len).map(|j| xef[at(j)]).fold(0.0, f64::max);
            let sum: f64 = (0..len).map(|j| (xf[at(j)] - max).exp()).sum();
            for j in 0..len {
                let v = (xf[at(j)] - max).exp() / sum;
                y[at(j)] = v;
                e[at(j)] = 2.0 * v * max_e + (len as f64 + 4.0) * v;
            }
        }
    }
    Ok(vec![Value::float(from_flat(xs, y), from_flat(xs, e))])
}
