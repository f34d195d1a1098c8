//! Shape and layout ops. They move values without arithmetic, so bounds move with them (a Pad
//! constant `c` brings the bound `|c|`); they work on float and integer tensors alike.

use ndarray::{ArrayD, Axis, IxDyn};
use tract_onnx::pb::tensor_proto::DataType;

use super::bound;
use super::graph::proto_value;
use super::node::{Node, Result};
use super::value::{flat, for_each_index, from_flat, resolve_axis, strides, Value};

/// Builds `shape` from `v`, element `o` taken from flat position `src(o)` of `v`, or `fill`
/// (value, bound, integer value) where `src` gives `None`.
fn remap(v: &Value, shape: &[usize], fill: (f64, f64, i64), src: impl Fn(&[usize]) -> Option<usize>) -> Value {
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
fn with_shape(v: &Value, shape: &[usize]) -> Value {
    match v {
        Value::Float { value, bound } => Value::float(from_flat(shape, flat(value).to_vec()), from_flat(shape, flat(bound).to_vec())),
        Value::Int(a) => Value::Int(from_flat(shape, flat(a).to_vec())),
    }
}

/// Identity.
pub(crate) fn identity(node: &Node) -> Result<Vec<Value>> {
    Ok(vec![node.required(0, "input")?.clone()])
}

/// Dropout in inference: the identity; the optional mask is all true.
pub(crate) fn dropout(node: &Node) -> Result<Vec<Value>> {
    if node.opset >= 12 {
        if let Some(Value::Int(t)) = node.input(2) {
            if t.iter().any(|&v| v != 0) {
                return Err(node.unsupported("training_mode=true"));
            }
        }
    } else if node.inputs.len() > 1 {
        return Err(node.invalid("Dropout before opset 12 has one input"));
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
        return Err(node.invalid(format!("axis {axis} is out of range [{lowest}, {r}] for shape {xs:?}")));
    }
    let axis = if axis < 0 { axis + r } else { axis } as usize;
    Ok(vec![with_shape(x, &[xs[..axis].iter().product(), xs[axis..].iter().product()])])
}

/// Reshape: `0` copies the input dimension (unless `allowzero=1`), `-1` is inferred.
pub(crate) fn reshape(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let target = node.opt_int_list(1, "shape")?.unwrap_or_default();
    let allowzero = node.opset >= 14 && node.flag("allowzero", false)?;
    let xs = x.shape();
    if allowzero && target.contains(&0) && target.contains(&-1) {
        return Err(node.invalid(format!("shape {target:?} has both 0 and -1 with allowzero=1")));
    }
    let mut shape = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        shape.push(match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allowzero => *xs.get(i).ok_or_else(|| node.invalid(format!("shape {target:?}: 0 at {i} has no input dimension to copy")))?,
            d if d >= 0 => usize::try_from(d).map_err(|_| node.invalid(format!("dimension {d} too large")))?,
            _ => return Err(node.invalid(format!("invalid shape {target:?} (only one -1 allowed, no other negative)"))),
        });
    }
    let count: usize = xs.iter().product();
    let known = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match (infer, known) {
        (Some(i), Some(k)) if k > 0 && count % k == 0 => shape[i] = count / k,
        (None, Some(k)) if k == count => {}
        _ => return Err(node.invalid(format!("cannot reshape {xs:?} ({count} elements) to {target:?}"))),
    }
    Ok(vec![with_shape(x, &shape)])
}

/// Reads Squeeze/Unsqueeze axes: attribute before opset 13, input from 13.
fn axes_13(node: &Node) -> Result<Option<Vec<i64>>> {
    if node.opset < 13 {
        if node.input(1).is_some() {
            return Err(node.invalid("axes is an attribute before opset 13, not an input"));
        }
        node.ints("axes")
    } else {
        if node.has_attr("axes") {
            return Err(node.invalid("axes is an input from opset 13, not an attribute"));
        }
        node.opt_int_list(1, "axes")
    }
}

/// Resolves a list of distinct axes against `rank`.
fn distinct_axes(node: &Node, axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axes.len());
    for &a in axes {
        let r = resolve_axis(a, rank).ok_or_else(|| node.invalid(format!("axis {a} is out of range for rank {rank}")))?;
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
        return Err(node.invalid(format!("cannot squeeze axis {a} of size {} in {xs:?}", xs[a])));
    }
    let shape: Vec<usize> = (0..xs.len()).filter(|a| !axes.contains(a)).map(|a| xs[a]).collect();
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
    let shape: Vec<usize> = (0..rank).map(|a| if axes.contains(&a) { 1 } else { *rest.next().unwrap_or(&1) }).collect();
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
        return Err(node.invalid(format!("perm {perm:?} is not a permutation of the {} axes", xs.len())));
    }
    let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
    let shape: Vec<usize> = perm.iter().map(|&p| xs[p]).collect();
    let st = strides(xs);
    Ok(vec![remap(x, &shape, (0.0, 0.0, 0), |o| Some(o.iter().zip(&perm).map(|(&i, &p)| i * st[p]).sum()))])
}

/// Concat along `axis`: all inputs share the other dimensions and the element type.
pub(crate) fn concat(node: &Node) -> Result<Vec<Value>> {
    let parts: Vec<&Value> = (0..node.inputs.len()).filter_map(|i| node.input(i)).collect();
    let first = parts.first().ok_or_else(|| node.invalid("Concat needs at least one input"))?;
    let rank = first.shape().len();
    let axis = node.opt_int("axis")?.ok_or_else(|| node.invalid("attribute axis is required"))?;
    let a = resolve_axis(axis, rank).ok_or_else(|| node.invalid(format!("axis {axis} is out of range for rank {rank}")))?;
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
    let join = |arrays: Vec<ndarray::ArrayViewD<f64>>| ndarray::concatenate(Axis(a), &arrays).expect("shapes checked");
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
            let views: Vec<_> = parts.iter().filter_map(|p| if let Value::Int(a) = p { Some(a.view()) } else { None }).collect();
            Value::Int(ndarray::concatenate(Axis(a), &views).expect("shapes checked"))
        }
    }])
}

/// Source index along one axis of length `n` for padded position `j` (input coordinates).
fn pad_source(mode: &str, j: i128, n: i128) -> Option<i128> {
    if (0..n).contains(&j) {
        return Some(j);
    }
    match mode {
        "edge" => Some(j.clamp(0, n - 1)),
        "wrap" => Some(j.rem_euclid(n)),
        // Mirror without repeating the edge; numpy extends periodically with period 2(n-1).
        "reflect" if n == 1 => Some(0),
        "reflect" => {
            let m = j.rem_euclid(2 * (n - 1));
            Some(if m < n { m } else { 2 * (n - 1) - m })
        }
        _ => None,
    }
}

/// Pad: modes constant (value `c`, bound `|c|`), reflect, edge and wrap (opset 19). Pads are an
/// attribute before opset 11 and an input from 11 (with optional `axes` from 18); negative
/// pads crop. Reflect and edge look at the original data's edges.
pub(crate) fn pad(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let xs = x.shape();
    let mode = node.string("mode", "constant")?;
    let known = ["constant", "reflect", "edge"].contains(&mode.as_str()) || (mode == "wrap" && node.opset >= 19);
    if !known {
        return Err(node.invalid(format!("mode '{mode}' is not defined in opset {}", node.opset)));
    }
    let (pads, c, axes) = if node.opset < 11 {
        let pads = node.ints("pads")?.ok_or_else(|| node.invalid("attribute pads is required"))?;
        (pads, (node.float("value", 0.0)?, None), None)
    } else {
        if node.has_attr("pads") || node.has_attr("value") {
            return Err(node.invalid("pads and value are inputs from opset 11, not attributes"));
        }
        let pads = node.opt_int_list(1, "pads")?.ok_or_else(|| node.invalid("input pads is required"))?;
        let c = match node.input(2) {
            Some(Value::Int(a)) => (a.iter().next().copied().unwrap_or(0) as f64, None),
            _ => node.opt_scalar(2, "constant_value")?.map_or((0.0, None), |(v, e)| (v, Some(e))),
        };
        let axes = if node.opset >= 18 { node.opt_int_list(3, "axes")? } else { None };
        (pads, c, axes)
    };
    let rank = xs.len();
    let axes = match axes {
        Some(a) => distinct_axes(node, &a, rank)?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(node.invalid(format!("pads {pads:?} must have {} values", 2 * axes.len())));
    }
    let (mut begin, mut shape) = (vec![0i64; rank], Vec::with_capacity(rank));
    let mut end = vec![0i64; rank];
    for (i, &a) in axes.iter().enumerate() {
        (begin[a], end[a]) = (pads[i], pads[axes.len() + i]);
    }
    for a in 0..rank {
        let size = (xs[a] as i128) + begin[a] as i128 + end[a] as i128;
        if size < 0 {
            return Err(node.invalid(format!("pads {pads:?} remove more than axis {a} of {xs:?} holds")));
        }
        if xs[a] == 0 && size > 0 && mode != "constant" {
            return Err(node.invalid(format!("cannot {mode}-pad the empty axis {a}")));
        }
        shape.push(usize::try_from(size).map_err(|_| node.invalid("padded size too large"))?);
    }
    node.check_size(&shape)?;
    let st = strides(xs);
    let fill = (c.0, c.1.unwrap_or_else(|| bound::rounding(c.0)), c.0 as i64);
    Ok(vec![remap(x, &shape, fill, |o| {
        let mut offset = 0;
        for a in 0..rank {
            let j = pad_source(&mode, o[a] as i128 - begin[a] as i128, xs[a] as i128)?;
            offset += j as usize * st[a];
        }
        Some(offset)
    })])
}

/// Slice: `starts`, `ends` (clamped per the spec), optional `axes` and `steps`; attributes before
/// opset 10, inputs from 10.
pub(crate) fn slice(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let xs = x.shape();
    let (starts, ends, axes, steps) = if node.opset < 10 {
        let get = |n: &str| node.ints(n)?.ok_or_else(|| node.invalid(format!("attribute {n} is required")));
        (get("starts")?, get("ends")?, node.ints("axes")?, None)
    } else {
        let get = |i: usize, n: &str| node.opt_int_list(i, n);
        let required = |i: usize, n: &str| get(i, n)?.ok_or_else(|| node.invalid(format!("input {n} is required")));
        (required(1, "starts")?, required(2, "ends")?, get(3, "axes")?, get(4, "steps")?)
    };
    let axes = distinct_axes(node, &axes.unwrap_or_else(|| (0..starts.len() as i64).collect()), xs.len())?;
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(node.invalid("starts, ends, axes and steps must have the same length"));
    }
    let (mut first, mut step, mut shape) = (vec![0i64; xs.len()], vec![1i64; xs.len()], xs.to_vec());
    for (i, &a) in axes.iter().enumerate() {
        let (n, s) = (xs[a] as i64, steps[i]);
        if s == 0 {
            return Err(node.invalid("steps must not be 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (b, e) = if s > 0 {
            (norm(starts[i]).clamp(0, n), norm(ends[i]).clamp(0, n))
        } else {
            (norm(starts[i]).clamp(0, (n - 1).max(0)), norm(ends[i]).clamp(-1, n - 1))
        };
        let (b128, e128, s128) = (b as i128, e as i128, s as i128);
        let len = if n == 0 {
            0
        } else if s > 0 {
            (e128 - b128 + s128 - 1) / s128
        } else {
            (b128 - e128 - s128 - 1) / -s128
        };
        (first[a], step[a], shape[a]) = (b, s, len.max(0) as usize);
    }
    let st = strides(xs);
    Ok(vec![remap(x, &shape, (0.0, 0.0, 0), |o| {
        Some((0..xs.len()).map(|a| (first[a] + o[a] as i64 * step[a]) as usize * st[a]).sum())
    })])
}

/// Gather along `axis`: negative indices count from the end; out-of-range indices are invalid.
pub(crate) fn gather(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let indices = node.int_input(1, "indices")?;
    let xs = x.shape();
    let axis = node.int("axis", 0)?;
    let a = resolve_axis(axis, xs.len()).ok_or_else(|| node.invalid(format!("axis {axis} out of range for {xs:?}")))?;
    let n = xs[a] as i64;
    if let Some(bad) = indices.iter().find(|&&i| i < -n || i >= n) {
        return Err(node.invalid(format!("index {bad} is out of range for axis {a} of size {n}")));
    }
    let shape: Vec<usize> = [&xs[..a], indices.shape(), &xs[a + 1..]].concat();
    node.check_size(&shape)?;
    let (st, q) = (strides(xs), indices.ndim());
    Ok(vec![remap(x, &shape, (0.0, 0.0, 0), |o| {
        let i = indices[IxDyn(&o[a..a + q])];
        let i = if i < 0 { i + n } else { i } as usize;
        let outer: usize = (0..a).map(|d| o[d] * st[d]).sum();
        let inner: usize = (a + 1..xs.len()).map(|d| o[d + q - 1] * st[d]).sum();
        Some(outer + i * st[a] + inner)
    })])
}

/// Shape, with opset-15 `start`/`end` (clamped).
pub(crate) fn shape(node: &Node) -> Result<Vec<Value>> {
    let xs = node.required(0, "data")?.shape();
    let r = xs.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let (start, end) = (clamp(node.int("start", 0)?), clamp(node.int("end", r)?));
    let dims: Vec<i64> = xs[start..end.max(start)].iter().map(|&d| d as i64).collect();
    Ok(vec![Value::Int(from_flat(&[dims.len()], dims))])
}

/// Constant: exactly one of the value attributes.
pub(crate) fn constant(node: &Node) -> Result<Vec<Value>> {
    if node.proto.attribute.len() != 1 {
        return Err(node.invalid("Constant needs exactly one value attribute"));
    }
    let value = if let Some(t) = node.tensor_attr("value")? {
        proto_value(t).map_err(|e| e.context(&node.label()))?
    } else if let Some(v) = node.opt_float("value_float")? {
        Value::rounded(ArrayD::from_elem(IxDyn(&[]), v))
    } else if let Some(v) = node.floats("value_floats")? {
        Value::rounded(from_flat(&[v.len()], v.iter().map(|&f| f64::from(f)).collect()))
    } else if let Some(v) = node.opt_int("value_int")? {
        Value::Int(ArrayD::from_elem(IxDyn(&[]), v))
    } else if let Some(v) = node.ints("value_ints")? {
        Value::Int(from_flat(&[v.len()], v))
    } else {
        return Err(node.unsupported(format!("Constant attribute '{}'", node.proto.attribute[0].name)));
    };
    Ok(vec![value])
}

/// Cast between float types (the value is rounded once more) and integer types (floats
/// truncate toward zero; bool is `x != 0`).
pub(crate) fn cast(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "input")?;
    let to = node.opt_int("to")?.ok_or_else(|| node.invalid("attribute to is required"))?;
    let to = DataType::try_from(to as i32).map_err(|_| node.invalid(format!("unknown data type {to}")))?;
    let value = match (to, x) {
        (DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16, Value::Float { value, bound }) => {
            Value::float(value.clone(), bound + &value.mapv(bound::rounding))
        }
        (DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16, Value::Int(a)) => {
            Value::rounded(a.mapv(|v| v as f64))
        }
        (DataType::Bool, Value::Float { value, .. }) => Value::Int(value.mapv(|v| i64::from(v != 0.0))),
        (DataType::Bool, Value::Int(a)) => Value::Int(a.mapv(|v| i64::from(v != 0))),
        (DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint8, Value::Float { value, .. }) => {
            if value.iter().any(|v| !v.is_finite()) {
                return Err(node.undefined("casting NaN or infinity to an integer"));
            }
            Value::Int(value.mapv(|v| v.trunc() as i64))
        }
        (DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint8, Value::Int(a)) => {
            Value::Int(a.clone())
        }
        (other, _) => return Err(node.unsupported(format!("Cast to {other:?}"))),
    };
    Ok(vec![value])
}
