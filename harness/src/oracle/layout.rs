//! Shape and layout ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Identity,
//! Shape). They move values without arithmetic, so bounds move with them; they work on float and
//! integer tensors alike.

use ndarray::{ArrayD, Axis};

use super::node::{Node, Result};
use super::value::{flat, for_each_index, from_flat, resolve_axis, strides, Value};

/// Builds `shape` from `v`, element `o` taken from flat position `src(o)` of `v`, or `fill`
/// (value, bound, integer value) where `src` gives `None`.
pub(crate) fn remap(
    v: &Value,
    shape: &[usize],
    fill: (f64, f64, i64),
    src: impl Fn(&[usize]) -> Option<usize>,
) -> Value {
    match v {
        Value::Float { value, bound } => {
            let (vf, bf) = (flat(value), flat(bound));
            let (mut y, mut e) = (Vec::new(), Vec::new());
            for_each_index(shape, |o| {
                let (a, b) = src(o).map_or((fill.0, fill.1), |i| (vf[i], bf[i]));
                y.push(a);
                e.push(b);
            });
            Value::float(from_flat(shape, y), from_flat(shape, e))
        }
        Value::Int(a) => {
            let af = flat(a);
            let mut y = Vec::new();
            for_each_index(shape, |o| y.push(src(o).map_or(fill.2, |i| af[i])));
            Value::Int(from_flat(shape, y))
        }
    }
}

/// `v` with the same elements in row-major order and a new shape (same element count).
pub(crate) fn with_shape(v: &Value, shape: &[usize]) -> Value {
    match v {
        Value::Float { value, bound } => Value::float(
            from_flat(shape, flat(value).to_vec()),
            from_flat(shape, flat(bound).to_vec()),
        ),
        Value::Int(a) => Value::Int(from_flat(shape, flat(a).to_vec())),
    }
}

/// Identity.
pub(crate) fn identity(node: &Node) -> Result<Vec<Value>> {
    Ok(vec![node.required(0, "input")?.clone()])
}

/// Dropout in inference: the identity; the optional mask is all true. Before opset 7 the node
/// says which with `is_test`, whose default 0 is random training-mode dropout.
pub(crate) fn dropout(node: &Node) -> Result<Vec<Value>> {
    if node.opset < 7 && !node.flag("is_test", false)? {
        return Err(node.unsupported("is_test=0 (training mode, random) before opset 7"));
    }
    if let Some(Value::Int(t)) = node.input(2) {
        if t.iter().any(|&v| v != 0) {
            return Err(node.unsupported("training_mode=true"));
        }
    }
    let x = node.required(0, "data")?;
    Ok(vec![x.clone(), Value::Int(ArrayD::from_elem(x.shape(), 1))])
}

/// Flatten: `[d0 · … · d(axis-1), d(axis) · … ]`, axis defaulting to 1 (negative from opset 11).
pub(crate) fn flatten(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "input")?;
    let xs = x.shape();
    let axis = node.int("axis", 1)?;
    let r = xs.len() as i64;
    let lowest = if node.opset >= 11 { -r } else { 0 };
    if axis < lowest || axis > r {
        return Err(node.invalid(format!(
            "axis {axis} is out of range [{lowest}, {r}] for shape {xs:?}"
        )));
    }
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    Ok(vec![with_shape(
        x,
        &[xs[..axis].iter().product(), xs[axis..].iter().product()],
    )])
}

/// Reshape: `0` copies the input dimension (unless `allowzero=1`), `-1` is inferred.
pub(crate) fn reshape(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let target = if node.opset < 5 {
        node.ints("shape")?
            .ok_or_else(|| node.invalid("attribute shape is required"))?
    } else {
        node.opt_int_list(1, "shape")?.unwrap_or_default()
    };
    let allowzero = node.opset >= 14 && node.flag("allowzero", false)?;
    let xs = x.shape();
    if allowzero && target.contains(&0) && target.contains(&-1) {
        return Err(node.invalid(format!(
            "shape {target:?} has both 0 and -1 with allowzero=1"
        )));
    }
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allowzero => *xs.get(i).ok_or_else(|| {
                node.invalid(format!(
                    "shape {target:?}: 0 at {i} has no input dimension to copy"
                ))
            })?,
            d if d >= 0 => {
                usize::try_from(d).map_err(|_| node.invalid(format!("dimension {d} too large")))?
            }
            _ => {
                return Err(node.invalid(format!(
                    "invalid shape {target:?} (only one -1 allowed, no other negative)"
                )))
            }
        });
    }
    let count: usize = xs.iter().product();
    let known = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match (infer, known) {
        (Some(i), Some(k)) if k > 0 && count.is_multiple_of(k) => shape[i] = count / k,
        (None, Some(k)) if k == count => {}
        _ => {
            return Err(node.invalid(format!(
                "cannot reshape {xs:?} ({count} elements) to {target:?}"
            )))
        }
    }
    Ok(vec![with_shape(x, &shape)])
}

/// Reads Squeeze/Unsqueeze axes: attribute before opset 13, input from 13.
fn axes_13(node: &Node) -> Result<Option<Vec<i64>>> {
    if node.opset < 13 {
        node.ints("axes")
    } else {
        node.opt_int_list(1, "axes")
    }
}

/// Resolves a list of distinct axes against `rank`.
pub(crate) fn distinct_axes(node: &Node, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = resolve_axis(a, rank)
            .ok_or_else(|| node.invalid(format!("axis {a} is out of range for rank {rank}")))?;
        if out.contains(&r) {
            return Err(node.invalid(format!("axis {a} is repeated in {axes:?}")));
        }
        out.push(r);
    }
    Ok(out)
}

/// Squeeze: removes the given axes (each of size 1), or every size-1 axis.
pub(crate) fn squeeze(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let xs = x.shape();
    let axes = match axes_13(node)? {
        Some(a) => distinct_axes(node, &a, xs.len())?,
        None => (0..xs.len()).filter(|&a| xs[a] == 1).collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| xs[a] != 1) {
        return Err(node.invalid(format!(
            "cannot squeeze axis {a} of size {} in {xs:?}",
            xs[a]
        )));
    }
    let shape: Vec<usize> = (0..xs.len())
        .filter(|a| !axes.contains(a))
        .map(|a| xs[a])
        .collect();
    Ok(vec![with_shape(x, &shape)])
}

/// Unsqueeze: inserts size-1 axes at the given positions of the output.
pub(crate) fn unsqueeze(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let xs = x.shape();
    let axes = axes_13(node)?.ok_or_else(|| node.invalid("axes is required"))?;
    let rank = xs.len() + axes.len();
    let axes = distinct_axes(node, &axes, rank)?;
    let mut rest = xs.iter();
    let shape: Vec<usize> = (0..rank)
        .map(|a| {
            if axes.contains(&a) {
                1
            } else {
                *rest.next().unwrap_or(&1)
            }
        })
        .collect();
    Ok(vec![with_shape(x, &shape)])
}

/// Transpose: output axis `i` is input axis `perm[i]` (default: reversed).
pub(crate) fn transpose(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let xs = x.shape();
    let perm = match node.ints("perm")? {
        Some(p) => p,
        None => (0..xs.len() as i64).rev().collect(),
    };
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..xs.len() as i64).collect::<Vec<_>>() {
        return Err(node.invalid(format!(
            "perm {perm:?} is not a permutation of the {} axes",
            xs.len()
        )));
    }
    let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
    let shape: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    let st = strides(xs);
    Ok(vec![remap(x, &shape, (0.0, 0.0, 0), |o| {
        Some(o.iter().zip(&perm).map(|(&i, &p)| i * st[p]).sum())
    })])
}

/// Concat along `axis`: all inputs share the other dimensions and the element type.
pub(crate) fn concat(node: &Node) -> Result<Vec<Value>> {
    let parts: Vec<&Value> = (0..node.inputs.len())
        .filter_map(|i| node.input(i))
        .collect();
    let first = parts
        .first()
        .ok_or_else(|| node.invalid("Concat needs at least one input"))?;
    let rank = first.shape().len();
    // Opsets 1-3 default the axis to 1; from 4 it is required.
    let axis = match node.opt_int("axis")? {
        Some(axis) => axis,
        None if node.opset < 4 => 1,
        None => return Err(node.invalid("attribute axis is required")),
    };
    let a = resolve_axis(axis, rank)
        .ok_or_else(|| node.invalid(format!("axis {axis} is out of range for rank {rank}")))?;
    for p in &parts {
        let s = p.shape();
        let compatible = s.len() == rank && (0..rank).all(|d| d == a || s[d] == first.shape()[d]);
        if !compatible || p.is_float() != first.is_float() {
            return Err(node.invalid(format!(
                "input {} {:?} does not match {} {:?} outside axis {a}",
                p.kind(),
                s,
                first.kind(),
                first.shape()
            )));
        }
    }
    let mut shape = first.shape().to_vec();
    shape[a] = parts.iter().map(|p| p.shape()[a]).sum();
    node.check_size(&shape)?;
    let join = |arrays: Vec<ndarray::ArrayViewD<f64>>| {
        ndarray::concatenate(Axis(a), &arrays).expect("shapes checked")
    };
    Ok(vec![match first {
        Value::Float { .. } => {
            let (mut vs, mut es) = (Vec::new(), Vec::new());
            for p in &parts {
                if let Value::Float { value, bound } = p {
                    vs.push(value.view());
                    es.push(bound.view());
                }
            }
            Value::float(join(vs), join(es))
        }
        Value::Int(_) => {
            let views: Vec<_> = parts
                .iter()
                .filter_map(|p| {
                    if let Value::Int(a) = p {
                        Some(a.view())
                    } else {
                        None
                    }
                })
                .collect();
            Value::Int(ndarray::concatenate(Axis(a), &views).expect("shapes checked"))
        }
    }])
}

/// Shape, with opset-15 `start`/`end` (clamped).
pub(crate) fn shape(node: &Node) -> Result<Vec<Value>> {
    let xs = node.required(0, "data")?.shape();
    let r = xs.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (start, end) = (clamp(node.int("start", 0)?), clamp(node.int("end", r)?));
    let dims: Vec<i64> = xs[start..end.max(start)]
        .iter()
        .map(|&d| d as i64)
        .collect();
    Ok(vec![Value::Int(from_flat(&[dims.len()], dims))])
}
