//! Linear quantization: QuantizeLinear and DequantizeLinear, per tensor or per axis, on the
//! integer types int8, uint8, int16 and uint16 (and int32 for DequantizeLinear).
//!
//! QuantizeLinear computes `q = saturate(round_half_to_even(x / s) + zp)`, the spec's exact
//! answer, in f64. Its output type is the zero point's (uint8 without one; opset 21's
//! `output_dtype` may name it). DequantizeLinear computes `y = (q - zp) s`, a float of the
//! scale's type (or opset 23's `output_dtype`). The scale and zero point are one element (per
//! tensor) or a 1-D tensor along `axis` (per axis, since opset 13). Blocked quantization
//! (`block_size`, opset 21), float8, float4 and 4- and 2-bit integer types, a division at a
//! `precision` other than float32 (opset 23) and integer scales are not implemented.
//!
//! ## Error bounds
//!
//! A quantized value is an integer, but a runtime computes it from a float `x` that is only
//! known within its bound `e_x`, and a tiny perturbation of `x / s` can flip a rounding
//! decision. The output is therefore a [`Value::Float`] (integers held exactly, whatever the
//! declared integer type; the graph output keeps its declared type) whose bound allows that
//! flip and nothing else:
//!
//! - the runtime's quotient may be anywhere in `[t - d, t + d]`, `t = x / s` exact,
//!   `d = 2 e_x QUANT_U / |s| + 4 QUANT_U |t|` ([`bound::quotient_spread`]): the input's
//!   allowed error and the division (or a multiplication by a rounded reciprocal), each with a
//!   margin of 2, at float32's unit roundoff [`bound::QUANT_U`];
//! - the output value is the exact `q0 = q(t)`, so the oracle gives the spec's answer, and its
//!   bound is `max(q0 - q(t - d), q(t + d) - q0) / QUANT_U` ([`bound::quantized`]): one
//!   quantum at float32 where the rounding is ambiguous (near a tie of `round`, ties
//!   themselves included), 0 where it is not and at saturated elements far beyond the range.
//!
//! - a QuantizeLinear of a computed value (not a graph input or initializer) gets at least the
//!   integers on either side of its quotient, `max(q0 - q(floor(t - d)), q(ceil(t + d)) - q0) /
//!   QUANT_U` ([`bound::requantized`]): one quantum, within the integer range. Runtimes fuse
//!   `DequantizeLinear → op → QuantizeLinear` into an integer kernel (onnxruntime's QLinearConv,
//!   QLinearSoftmax, …; OpenVINO's low-precision transformations) that requantizes with its own
//!   multiplier and rounding, which the spec of those kernels leaves to the implementation; so
//!   a fused result is one quantum either way of the QDQ graph's exact answer. The quantization
//!   of the graph's input is exact: nothing precedes it to fuse.
//!
//! DequantizeLinear's input is exact (an integer initializer or graph input, `e_q = 0`) or a
//! QuantizeLinear output with a bound of whole quanta. `y = (q - zp) s` rounds once, and the
//! product a runtime rounds is that of its own integer, up to `e_q` quanta from the spec's:
//! `|s| e_q + |y| + |s| e_q u`, and `4 (q_max - q_min) |s|` for runtimes that compute it in
//! another form: OpenVINO's FakeQuantize computes `fma(q - q_min, (hi - lo) / levels, lo)` from
//! the rounded ends of the output interval, whose rounding stays where the terms cancel (the
//! spec's form has none at `q = zp`); a reordering the bounds admit as they admit any order of a
//! sum, at most 6e-5 of a quantum. The integer `q - zp` is exact in every precision the harness
//! compares at up to 256 (bfloat16's 8 significant bits); beyond (int16, int32), its conversion
//! may round once more, `+ |y|`. The scale is taken as exact: a float32 scale stored in the
//! model is exact in float32, the precision quantized models compare at, so its rounding bound
//! (carried like every float initializer's) is ignored.

use tract_onnx::pb::tensor_proto::DataType;

use super::bound;
use super::node::{Node, Result};
use super::value::{flat, from_flat, resolve_axis, strides, Value};
use crate::tensor::DType;

/// An integer type of quantized data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QType {
    Int8,
    Uint8,
    Int16,
    Uint16,
    Int32,
}

impl QType {
    /// Smallest and largest value.
    fn range(self) -> (i64, i64) {
        match self {
            QType::Int8 => (-128, 127),
            QType::Uint8 => (0, 255),
            QType::Int16 => (-32768, 32767),
            QType::Uint16 => (0, 65535),
            QType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        }
    }

    /// The ONNX type name.
    fn name(self) -> &'static str {
        match self {
            QType::Int8 => "int8",
            QType::Uint8 => "uint8",
            QType::Int16 => "int16",
            QType::Uint16 => "uint16",
            QType::Int32 => "int32",
        }
    }

    /// The quantized type of a tensor type the harness reads, `None` for the other types.
    fn of(d: DType) -> Option<QType> {
        match d {
            DType::Int8 => Some(QType::Int8),
            DType::Uint8 => Some(QType::Uint8),
            DType::Int32 => Some(QType::Int32),
            _ => None,
        }
    }
}

/// Scale and zero point of every element of `x`: one pair, or one per index along an axis.
struct Params {
    scale: Vec<f64>,
    zero: Vec<i64>,
    /// Per axis: the stride of the axis in `x` (row-major) and its length.
    axis: Option<(usize, usize)>,
}

impl Params {
    /// Scale and zero point of element `i` of `x` (row-major).
    fn at(&self, i: usize) -> (f64, i64) {
        let k = self.axis.map_or(0, |(stride, len)| (i / stride) % len);
        (self.scale[k], self.zero.get(k).copied().unwrap_or(0))
    }
}

/// Reads the scale (input 1) and zero point (input 2) for `x` of shape `shape`, with the
/// spec's shape rules (one element only before opset 13, which has no per-axis form).
fn params(node: &Node, shape: &[usize]) -> Result<Params> {
    let block_size = node.int("block_size", 0)?;
    if block_size < 0 {
        return Err(node.invalid(format!("block_size must be positive, got {block_size}")));
    }
    if block_size > 0 {
        return Err(node.unsupported("blocked quantization (block_size > 0)"));
    }
    let scale = match node.required(1, "scale")? {
        Value::Float { value, .. } => value,
        // QuantizeLinear's type constraints allow an int32 scale from opset 19 (T1, then T2),
        // DequantizeLinear's never do.
        Value::Int(_) if node.opset >= 19 && node.proto.op_type == "QuantizeLinear" => {
            return Err(node.unsupported("an integer scale"))
        }
        Value::Int(_) => return Err(node.invalid("the scale must be a float tensor")),
    };
    if scale.ndim() > 1 {
        return Err(node.invalid(format!(
            "the scale must be a scalar or 1-D (blocked quantization needs block_size), has shape {:?}",
            scale.shape()
        )));
    }
    let zero = match node.input(2) {
        None => None,
        Some(Value::Int(z)) => Some(z),
        Some(Value::Float { .. }) => {
            return Err(node.invalid("the zero point must be an integer tensor"))
        }
    };
    if let Some(z) = zero {
        let one = |s: &[usize]| s.iter().product::<usize>() == 1 && s.len() <= 1;
        if z.shape() != scale.shape() && !(one(z.shape()) && one(scale.shape())) {
            return Err(node.invalid(format!(
                "the zero point's shape {:?} differs from the scale's {:?}",
                z.shape(),
                scale.shape()
            )));
        }
    }
    // Read (and type-checked) even where per-tensor parameters ignore it.
    let given = node.int("axis", 1)?;
    let axis = if scale.len() == 1 {
        None
    } else if node.opset < 13 {
        return Err(node.invalid(format!(
            "the scale must hold one element before opset 13 (per-axis quantization came in \
             opset 13), has shape {:?}",
            scale.shape()
        )));
    } else {
        let axis = resolve_axis(given, shape.len()).ok_or_else(|| {
            node.invalid(format!(
                "axis {given} is out of range for an input of rank {}",
                shape.len()
            ))
        })?;
        if scale.len() != shape[axis] {
            return Err(node.invalid(format!(
                "per-axis scale of {} elements for axis {axis} of length {} (input shape {shape:?})",
                scale.len(),
                shape[axis]
            )));
        }
        Some((strides(shape)[axis], shape[axis]))
    };
    Ok(Params {
        scale: scale.iter().copied().collect(),
        zero: zero
            .map(|z| z.iter().copied().collect())
            .unwrap_or_default(),
        axis,
    })
}

/// The known type of input `i` (a graph input or initializer), as a quantized type; invalid
/// when it is known and not one of `allowed`.
fn known_type(node: &Node, i: usize, what: &str, allowed: &[QType]) -> Result<Option<QType>> {
    let Some(d) = node.input_types.get(i).copied().flatten() else {
        return Ok(None);
    };
    match QType::of(d).filter(|q| allowed.contains(q)) {
        Some(q) => Ok(Some(q)),
        None => Err(node.invalid(format!(
            "{what} has type {d}, expected one of {}",
            allowed
                .iter()
                .map(|q| q.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The quantized type named by a data type code (`output_dtype`).
fn named_type(node: &Node, code: i64) -> Result<QType> {
    // UINT2, INT2 (opset 25), FLOAT6E2M3, FLOAT6E3M2 (opset 28): codes newer than the protobuf
    // definitions here.
    if (25..=28).contains(&code) {
        return Err(node.unsupported(format!("quantization to data type {code}")));
    }
    let dt = i32::try_from(code)
        .ok()
        .and_then(|c| DataType::try_from(c).ok())
        .ok_or_else(|| node.invalid(format!("unknown data type {code}")))?;
    match dt {
        DataType::Int8 => Ok(QType::Int8),
        DataType::Uint8 => Ok(QType::Uint8),
        DataType::Int16 => Ok(QType::Int16),
        DataType::Uint16 => Ok(QType::Uint16),
        DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz
        | DataType::Uint4
        | DataType::Int4
        | DataType::Float4e2m1 => Err(node.unsupported(format!("quantization to {dt:?}"))),
        other => Err(node.invalid(format!("{other:?} is not a quantized type"))),
    }
}

/// QuantizeLinear: `saturate(round_half_to_even(x / s) + zp)`, bound per [`bound::quantized`].
pub(crate) fn quantize_linear(node: &Node) -> Result<Vec<Value>> {
    // `saturate` only matters for float8 outputs, which are not implemented.
    node.flag("saturate", true)?;
    match node.int("precision", 0)? {
        0 => {}
        p if p == DataType::Float as i64 => {}
        p if p == DataType::Float16 as i64 || p == DataType::Bfloat16 as i64 => {
            // The spec's answer then rounds x to that type before dividing.
            return Err(node.unsupported("a division at float16 or bfloat16 precision"));
        }
        p => {
            return Err(node.invalid(format!(
                "precision {p} is not a float type (float, float16, bfloat16)"
            )))
        }
    }
    let declared = match node.int("output_dtype", 0)? {
        0 => None,
        code => Some(named_type(node, code)?),
    };
    let zero_type = if node.input(2).is_some() {
        known_type(node, 2, "the zero point", &[QType::Int8, QType::Uint8])?
    } else {
        None
    };
    let out = match (declared, zero_type) {
        (Some(d), Some(z)) if d != z => {
            return Err(node.invalid(format!(
                "output_dtype {} differs from the zero point's type {}",
                d.name(),
                z.name()
            )))
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) if node.input(2).is_some() => {
            return Err(node.unsupported(
                "a zero point computed by a node: its type, the output type, is not known",
            ))
        }
        (None, None) => QType::Uint8,
    };

    let (x, ex) = match node.required(0, "x")? {
        Value::Float { value, bound } => (value.clone(), bound.clone()),
        Value::Int(a) => {
            known_type(node, 0, "x", &[QType::Int32])?;
            // The runtime converts the integers to float: one rounding.
            let x = a.mapv(|v| v as f64);
            let ex = x.mapv(bound::rounding);
            (x, ex)
        }
    };
    if x.iter().any(|v| !v.is_finite()) {
        return Err(node.undefined("quantizing NaN or infinity"));
    }
    let p = params(node, x.shape())?;
    if p.scale.iter().any(|s| *s == 0.0 || !s.is_finite()) {
        return Err(node.undefined("a scale of zero, NaN or infinity"));
    }
    let (lo, hi) = out.range();
    // A graph input or initializer is quantized as the spec says; a computed value may be
    // requantized inside a fused kernel (see the module doc).
    let computed = node.input_types.first().copied().flatten().is_none();
    let (mut y, mut e) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
    for (i, (&xi, &exi)) in flat(&x).iter().zip(flat(&ex).iter()).enumerate() {
        let (s, zp) = p.at(i);
        // Exact in f64 while |t| < 2^52; beyond, the result saturates anyway.
        let q = |t: f64| (t.round_ties_even() + zp as f64).clamp(lo as f64, hi as f64);
        let t = xi / s;
        let d = bound::quotient_spread(t, exi, s);
        y.push(q(t));
        let mut bound = bound::quantized(t, d, q);
        if computed {
            let sat = |v: f64| (v + zp as f64).clamp(lo as f64, hi as f64);
            bound = bound.max(bound::requantized(
                q(t),
                sat((t - d).floor()),
                sat((t + d).ceil()),
            ));
        }
        e.push(bound);
    }
    Ok(vec![Value::float(
        from_flat(x.shape(), y),
        from_flat(x.shape(), e),
    )])
}

/// DequantizeLinear: `(q - zp) s`, bound `|s| e_q + |y| + |s| e_q u + 4 (q_max - q_min) |s|`
/// (see the module documentation).
pub(crate) fn dequantize_linear(node: &Node) -> Result<Vec<Value>> {
    match node.int("output_dtype", 0)? {
        0 => {}
        c if [DataType::Float, DataType::Float16, DataType::Bfloat16]
            .iter()
            .any(|&d| d as i64 == c) => {}
        c => {
            return Err(node.invalid(format!(
                "output_dtype {c} is not float, float16 or bfloat16"
            )))
        }
    }
    let mut allowed = vec![QType::Int8, QType::Uint8, QType::Int32];
    if node.opset >= 21 {
        allowed.extend([QType::Int16, QType::Uint16]);
    }
    let (q, eq, x_type) = match node.required(0, "x")? {
        Value::Int(a) => {
            let t = known_type(node, 0, "x", &allowed)?;
            (a.mapv(|v| v as f64), a.mapv(|_| 0.0), t)
        }
        Value::Float { value, bound } => {
            // A QuantizeLinear output (integers with a bound), or moved by a layout op.
            if let Some(d) = node.input_types.first().copied().flatten() {
                return Err(node.invalid(format!("x has type {d}, not a quantized type")));
            }
            if value.iter().any(|v| v.fract() != 0.0) {
                return Err(
                    node.invalid("x holds non-integers: it must be a quantized (integer) tensor")
                );
            }
            (value.clone(), bound.clone(), None)
        }
    };
    let zero_type = if node.input(2).is_some() {
        known_type(node, 2, "the zero point", &allowed)?
    } else {
        None
    };
    if let (Some(xt), Some(zt)) = (x_type, zero_type) {
        if xt != zt {
            return Err(node.invalid(format!(
                "the zero point has type {}, x has type {}",
                zt.name(),
                xt.name()
            )));
        }
    }
    let p = params(node, q.shape())?;
    if x_type == Some(QType::Int32) && p.zero.iter().any(|&z| z != 0) {
        return Err(node.invalid("an int32 x needs a zero point of 0"));
    }
    // Runtimes do not all compute `(q - zp) s`: OpenVINO's FakeQuantize form computes
    // `fma(q - q_min, (hi - lo) / levels, lo)` with the ends of the output interval
    // `lo = (q_min - zp) s`, `hi = (q_max - zp) s` rounded, and keeps their rounding where the
    // terms cancel. A reordering the bounds admit as they admit any order of a sum: `4 (q_max -
    // q_min) |s|` more (twice what was measured on OpenVINO, at most 6e-5 of a quantum), for the
    // 8- and 16-bit types; an int32 input (a bias, zero point 0) is `q s` as the spec writes it.
    let interval = match x_type.or(zero_type) {
        Some(QType::Int32) => 0.0,
        Some(t) => {
            let (lo, hi) = t.range();
            4.0 * (hi - lo) as f64
        }
        None => 4.0 * 255.0,
    };
    let (mut y, mut e) = (Vec::with_capacity(q.len()), Vec::with_capacity(q.len()));
    for (i, (&qi, &eqi)) in flat(&q).iter().zip(flat(&eq).iter()).enumerate() {
        let (s, zp) = p.at(i);
        let centred = qi - zp as f64;
        let v = centred * s;
        let conversion = if centred.abs() > 256.0 { v.abs() } else { 0.0 };
        // The runtime rounds the product at the integer it has, which may be `e_q` quanta
        // away: the rounding is of up to `|y| + |s| e_q u` (a saturated integer far from the
        // spec's is rounded too).
        let reach = s.abs() * eqi;
        y.push(v);
        e.push(reach + v.abs() + reach * bound::QUANT_U + interval * s.abs() + conversion);
    }
    Ok(vec![Value::float(
        from_flat(q.shape(), y),
        from_flat(q.shape(), e),
    )])
}
