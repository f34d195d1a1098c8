//! The operator forms of quantized layers: QLinearConv and QLinearMatMul (integers in, integers
//! out, the requantization inside the kernel), ConvInteger and MatMulInteger (integers in, the
//! int32 accumulator out).
//!
//! Each is the QDQ graph it stands for, evaluated with the float kernels on exact values:
//! `(q - zp) s` of every integer input (exact in f64: no rounding, since an integer kernel
//! accumulates `q - zp` exactly and scales once at the end), the convolution or product, the
//! bias (int32 at `x_scale × w_scale`, added to the accumulator), and for the QLinear forms
//! the output's QuantizeLinear ([`quant::quantize_linear`]) with its bound for a computed value:
//! one quantum either way, because the spec of QLinearConv and QLinearMatMul leaves the
//! requantization's multiplier and rounding to the implementation (docs/quantization.md).
//!
//! ConvInteger and MatMulInteger are `(x - x_zp) ⊛ (w - w_zp)` in int32: an integer held as a
//! float, exact (bound 0) on exact operands; on an operand with a bound (a QuantizeLinear of a
//! computed value), the float kernel's bound, which carries the operand's and adds an
//! accumulation term an integer sum does not need (wider, never narrower). An accumulator
//! beyond int32 is undefined.

use ndarray::ArrayD;

use super::node::{Node, Result};
use super::value::{flat, from_flat, strides, Value};
use super::{conv, linalg, quant};

/// The integer values and their bounds (in integer units) of a quantized input.
fn integers<'a>(node: &Node<'a>, i: usize, what: &str) -> Result<(ArrayD<f64>, ArrayD<f64>)> {
    match node.required(i, what)? {
        Value::Int(a) => Ok((a.mapv(|v| v as f64), a.mapv(|_| 0.0))),
        Value::Float { value, bound } => {
            // A QuantizeLinear output: integers with a bound in quanta.
            if value.iter().any(|v| v.fract() != 0.0) {
                return Err(node.invalid(format!("{what} holds non-integers")));
            }
            Ok((value.clone(), bound.clone()))
        }
    }
}

/// `(q - zp) s` of input `q` with scale input `s` and zero point input `zp` (absent: 0, and no
/// scale: 1), per tensor or, when the scale or zero point has more than one element, along
/// `axis` of `q`. Exact: the bound is the input's, scaled.
fn dequantized(
    node: &Node,
    (q, s, zp): (usize, Option<usize>, usize),
    what: &str,
    axis: usize,
) -> Result<Value> {
    let (value, bound) = integers(node, q, what)?;
    let scale: Vec<f64> = match s {
        None => vec![1.0],
        Some(i) => {
            let (s, _) = node.float_input(i, &format!("{what}'s scale"))?;
            s.iter().copied().collect()
        }
    };
    let zero: Vec<f64> = match node.input(zp) {
        None => vec![0.0],
        Some(Value::Int(z)) => z.iter().map(|&v| v as f64).collect(),
        Some(Value::Float { .. }) => {
            return Err(node.invalid(format!("{what}'s zero point must be an integer tensor")))
        }
    };
    if scale.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err(node.undefined(format!("{what}'s scale is zero, NaN or infinite")));
    }
    let shape = value.shape().to_vec();
    let per_axis = scale.len().max(zero.len());
    let lanes = shape.get(axis).copied().unwrap_or(0);
    if per_axis > 1 && per_axis != lanes {
        return Err(node.invalid(format!(
            "{what}'s scale or zero point has {per_axis} elements, its axis {axis} has {lanes} \
             (shape {shape:?})"
        )));
    }
    for (name, n) in [("scale", scale.len()), ("zero point", zero.len())] {
        if n != 1 && n != per_axis {
            return Err(node.invalid(format!(
                "{what}'s {name} has {n} elements, expected 1 or {per_axis}"
            )));
        }
    }
    let stride = strides(&shape).get(axis).copied().unwrap_or(1);
    let pick = |v: &[f64], k: usize| if v.len() == 1 { v[0] } else { v[k] };
    let (mut y, mut e) = (
        Vec::with_capacity(value.len()),
        Vec::with_capacity(value.len()),
    );
    for (i, (&qi, &ei)) in flat(&value).iter().zip(flat(&bound).iter()).enumerate() {
        let k = if per_axis > 1 {
            (i / stride) % lanes
        } else {
            0
        };
        let s = pick(&scale, k);
        y.push((qi - pick(&zero, k)) * s);
        e.push(ei * s.abs());
    }
    Ok(Value::float(from_flat(&shape, y), from_flat(&shape, e)))
}

/// The int32 bias of a QLinearConv at the scale `x_scale × w_scale[m]`, exact.
fn bias(node: &Node, i: usize, x_scale: usize, w_scale: usize) -> Result<Option<Value>> {
    let Some(b) = node.input(i) else {
        return Ok(None);
    };
    let Value::Int(b) = b else {
        return Err(node.invalid("the bias must be an int32 tensor"));
    };
    let (xs, _) = node.float_input(x_scale, "x_scale")?;
    let (ws, _) = node.float_input(w_scale, "w_scale")?;
    let xs = xs.iter().copied().next().unwrap_or(1.0);
    let ws: Vec<f64> = ws.iter().copied().collect();
    if ws.len() != 1 && ws.len() != b.len() {
        return Err(node.invalid(format!(
            "w_scale has {} elements, the bias {}",
            ws.len(),
            b.len()
        )));
    }
    let y: Vec<f64> = b
        .iter()
        .enumerate()
        .map(|(m, &v)| v as f64 * xs * ws[if ws.len() == 1 { 0 } else { m }])
        .collect();
    Ok(Some(Value::float(
        from_flat(b.shape(), y),
        ArrayD::zeros(b.shape()),
    )))
}

/// The first output of `run` on `node`'s attributes with `inputs` in place of its own.
fn through(
    node: &Node,
    run: fn(&Node) -> Result<Vec<Value>>,
    inputs: &[Option<&Value>],
) -> Result<Value> {
    let inner = Node {
        proto: node.proto,
        index: node.index,
        opset: node.opset,
        inputs: inputs.to_vec(),
        input_types: vec![None; inputs.len()],
    };
    Ok(run(&inner)?.remove(0))
}

/// The QuantizeLinear of a computed `y` with the scale and zero point of inputs `s` and `zp`.
fn requantized(node: &Node, y: &Value, s: usize, zp: usize) -> Result<Value> {
    let inner = Node {
        proto: node.proto,
        index: node.index,
        // Per-tensor parameters read the same at every opset from 10.
        opset: node.opset,
        inputs: vec![Some(y), node.input(s), node.input(zp)],
        input_types: vec![
            None,
            node.input_types.get(s).copied().flatten(),
            node.input_types.get(zp).copied().flatten(),
        ],
    };
    if node.input(zp).is_none() {
        return Err(node.invalid("the output's zero point is required"));
    }
    Ok(quant::quantize_linear(&inner)?.remove(0))
}

/// A scale or zero point input that must be one element.
fn per_tensor(node: &Node, i: usize, what: &str) -> Result<()> {
    let n = match node.input(i) {
        None => 1,
        Some(Value::Int(a)) => a.len(),
        Some(Value::Float { value, .. }) => value.len(),
    };
    if n == 1 {
        Ok(())
    } else {
        Err(node.unsupported(format!("{what} of {n} elements (only one is implemented)")))
    }
}

/// QLinearConv: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B.
pub(crate) fn qlinear_conv(node: &Node) -> Result<Vec<Value>> {
    for (i, what) in [
        (1, "x_scale"),
        (2, "x_zero_point"),
        (6, "y_scale"),
        (7, "y_zero_point"),
    ] {
        per_tensor(node, i, what)?;
    }
    let x = dequantized(node, (0, Some(1), 2), "x", 0)?;
    let w = dequantized(node, (3, Some(4), 5), "w", 0)?;
    let b = bias(node, 8, 1, 4)?;
    let y = through(node, conv::conv, &[Some(&x), Some(&w), b.as_ref()])?;
    Ok(vec![requantized(node, &y, 6, 7)?])
}

/// QLinearMatMul: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point;
/// `b` per tensor or per column.
pub(crate) fn qlinear_matmul(node: &Node) -> Result<Vec<Value>> {
    for (i, what) in [
        (1, "a_scale"),
        (2, "a_zero_point"),
        (6, "y_scale"),
        (7, "y_zero_point"),
    ] {
        per_tensor(node, i, what)?;
    }
    let a = dequantized(node, (0, Some(1), 2), "a", 0)?;
    let columns = node.required(3, "b")?.shape().len().saturating_sub(1);
    let b = dequantized(node, (3, Some(4), 5), "b", columns)?;
    let y = through(node, linalg::matmul, &[Some(&a), Some(&b)])?;
    Ok(vec![requantized(node, &y, 6, 7)?])
}

/// The int32 accumulator of an integer kernel on operands `x` and `w`: its value must fit, and
/// it is exact when they are (the float kernel's bound models a float accumulation).
fn accumulator(node: &Node, x: &Value, w: &Value, y: Value) -> Result<Vec<Value>> {
    let exact = |v: &Value| match v {
        Value::Float { bound, .. } => bound.iter().all(|e| *e == 0.0),
        Value::Int(_) => true,
    };
    let Value::Float { value, bound } = y else {
        unreachable!("the float kernels give floats")
    };
    if value
        .iter()
        .any(|v| *v < f64::from(i32::MIN) || *v > f64::from(i32::MAX))
    {
        return Err(node.undefined("the int32 accumulator overflows"));
    }
    let bound = if exact(x) && exact(w) {
        ArrayD::zeros(value.shape())
    } else {
        bound
    };
    Ok(vec![Value::float(value, bound)])
}

/// ConvInteger: x, w, x_zero_point (one element), w_zero_point (one, or one per output channel).
pub(crate) fn conv_integer(node: &Node) -> Result<Vec<Value>> {
    per_tensor(node, 2, "x_zero_point")?;
    let x = dequantized(node, (0, None, 2), "x", 0)?;
    let w = dequantized(node, (1, None, 3), "w", 0)?;
    let y = through(node, conv::conv, &[Some(&x), Some(&w)])?;
    accumulator(node, &x, &w, y)
}

/// MatMulInteger: a, b, a_zero_point (one element), b_zero_point (one, or one per column).
pub(crate) fn matmul_integer(node: &Node) -> Result<Vec<Value>> {
    per_tensor(node, 2, "a_zero_point")?;
    let a = dequantized(node, (0, None, 2), "a", 0)?;
    let columns = node.required(1, "B")?.shape().len().saturating_sub(1);
    let b = dequantized(node, (1, None, 3), "b", columns)?;
    let y = through(node, linalg::matmul, &[Some(&a), Some(&b)])?;
    accumulator(node, &a, &b, y)
}
