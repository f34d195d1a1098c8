//! Ops that pick elements by index: Pad, Slice, Gather. Bounds move with the values; a Pad
//! constant `c` brings the bound `|c|`.

use ndarray::IxDyn;

use super::bound;
use super::layout::{distinct_axes, remap};
use super::node::{Node, Result};
use super::value::{resolve_axis, strides, Value};

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
    let known = ["constant", "reflect", "edge"].contains(&mode.as_str())
        || (mode == "wrap" && node.opset >= 19);
    if !known {
        return Err(node.invalid(format!(
            "mode '{mode}' is not defined in opset {}",
            node.opset
        )));
    }
    let (pads, c, axes) = if node.opset < 11 {
        // Opset 1 names the attribute `paddings`; same layout.
        let name = if node.opset < 2 { "paddings" } else { "pads" };
        let pads = node
            .ints(name)?
            .ok_or_else(|| node.invalid(format!("attribute {name} is required")))?;
        (pads, (node.float("value", 0.0)?, None), None)
    } else {
        let pads = node
            .opt_int_list(1, "pads")?
            .ok_or_else(|| node.invalid("input pads is required"))?;
        let c = match node.input(2) {
            Some(Value::Int(a)) => (a.iter().next().copied().unwrap_or(0) as f64, None),
            _ => node
                .opt_scalar(2, "constant_value")?
                .map_or((0.0, None), |(v, e)| (v, Some(e))),
        };
        (pads, c, node.opt_int_list(3, "axes")?)
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
            return Err(node.invalid(format!(
                "pads {pads:?} remove more than axis {a} of {xs:?} holds"
            )));
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
        let get = |n: &str| {
            node.ints(n)?
                .ok_or_else(|| node.invalid(format!("attribute {n} is required")))
        };
        (get("starts")?, get("ends")?, node.ints("axes")?, None)
    } else {
        let get = |i: usize, n: &str| node.opt_int_list(i, n);
        let required = |i: usize, n: &str| {
            get(i, n)?.ok_or_else(|| node.invalid(format!("input {n} is required")))
        };
        (
            required(1, "starts")?,
            required(2, "ends")?,
            get(3, "axes")?,
            get(4, "steps")?,
        )
    };
    let axes = distinct_axes(
        node,
        &axes.unwrap_or_else(|| (0..starts.len() as i64).collect()),
        xs.len(),
    )?;
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(node.invalid("starts, ends, axes and steps must have the same length"));
    }
    let (mut first, mut step, mut shape) =
        (vec![0i64; xs.len()], vec![1i64; xs.len()], xs.to_vec());
    for (i, &a) in axes.iter().enumerate() {
        let (n, s) = (xs[a] as i64, steps[i]);
        if s == 0 {
            return Err(node.invalid("steps must not be 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (b, e) = if s > 0 {
            (norm(starts[i]).clamp(0, n), norm(ends[i]).clamp(0, n))
        } else {
            (
                norm(starts[i]).clamp(0, (n - 1).max(0)),
                norm(ends[i]).clamp(-1, n - 1),
            )
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
        Some(
            (0..xs.len())
                .map(|a| (first[a] + o[a] as i64 * step[a]) as usize * st[a])
                .sum(),
        )
    })])
}

/// Gather along `axis`: negative indices count from the end; out-of-range indices are invalid.
pub(crate) fn gather(node: &Node) -> Result<Vec<Value>> {
    let x = node.required(0, "data")?;
    let indices = node.int_input(1, "indices")?;
    let xs = x.shape();
    let axis = node.int("axis", 0)?;
    let a = resolve_axis(axis, xs.len())
        .ok_or_else(|| node.invalid(format!("axis {axis} out of range for {xs:?}")))?;
    let n = xs[a] as i64;
    if let Some(bad) = indices.iter().find(|&&i| i < -n || i >= n) {
        return Err(node.invalid(format!(
            "index {bad} is out of range for axis {a} of size {n}"
        )));
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
