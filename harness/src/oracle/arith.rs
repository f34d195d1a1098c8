//! Exact and rational arithmetic: Add, Sub, Mul, Div with numpy broadcasting (float or
//! integer; before opset 7, the `broadcast`/`axis` form), and Abs, Neg, Reciprocal.

use ndarray::{ArrayD, Zip};

use super::bound;
use super::elementwise::map_unary;
use super::layout::with_shape;
use super::node::{Node, Result};
use super::value::{broadcast_shapes, broadcast_to, Value};

/// Abs: exact, 1-Lipschitz.
pub(crate) fn abs(node: &Node) -> Result<Vec<Value>> {
    match node.required(0, "X")? {
        Value::Int(a) => Ok(vec![Value::Int(a.mapv(i64::wrapping_abs))]),
        Value::Float { .. } => map_unary(node, |x, e| (x.abs(), e)),
    }
}

/// Neg: exact.
pub(crate) fn neg(node: &Node) -> Result<Vec<Value>> {
    match node.required(0, "X")? {
        Value::Int(a) => Ok(vec![Value::Int(a.mapv(i64::wrapping_neg))]),
        Value::Float { .. } => map_unary(node, |x, e| (-x, e)),
    }
}

/// Reciprocal: `1/x`, bounded like Div with an exact numerator.
pub(crate) fn reciprocal(node: &Node) -> Result<Vec<Value>> {
    map_unary(node, |x, e| {
        let y = 1.0 / x;
        (y, e / (x * x) + y.abs())
    })
}

/// A binary arithmetic op: exact f64 value and bound of `y = a ∘ b`, and the integer version.
struct Arith {
    float: fn(f64, f64) -> f64,
    bound: fn(a: f64, ea: f64, b: f64, eb: f64, y: f64) -> f64,
    int: fn(i64, i64) -> Option<i64>,
}

/// B of an opset 1–6 Add, Sub, Mul or Div, reshaped so that numpy broadcasting gives the
/// old rule. Without `broadcast=1` the shapes must be equal. With it, B is a single element or
/// a contiguous run of A's dimensions starting at `axis` (by default, A's last dimensions); B
/// never widens A.
fn legacy_operand(node: &Node, a: &Value, b: &Value) -> Result<Value> {
    let (ash, bsh) = (a.shape(), b.shape());
    if !node.flag("broadcast", false)? {
        if ash != bsh {
            return Err(node.invalid(format!(
                "shapes {ash:?} and {bsh:?} differ and broadcast is 0 (opset {} broadcasts only with broadcast=1)",
                node.opset
            )));
        }
        return Ok(b.clone());
    }
    if bsh.iter().product::<usize>() == 1 {
        return Ok(with_shape(b, &[]));
    }
    let start = match node.opt_int("axis")? {
        Some(axis) => axis,
        None => ash.len() as i64 - bsh.len() as i64,
    };
    let fits = usize::try_from(start)
        .ok()
        .filter(|&s| s + bsh.len() <= ash.len() && ash[s..s + bsh.len()] == *bsh);
    let Some(start) = fits else {
        return Err(node.invalid(format!(
            "B {bsh:?} is not a run of A {ash:?}'s dimensions at axis {start}"
        )));
    };
    let mut shape = vec![1; ash.len()];
    shape[start..start + bsh.len()].copy_from_slice(bsh);
    Ok(with_shape(b, &shape))
}

/// Applies `op` with numpy broadcasting. Both inputs must be float, or both integer.
fn binary(node: &Node, op: Arith) -> Result<Vec<Value>> {
    let (a, b) = (node.required(0, "A")?, node.required(1, "B")?);
    let legacy;
    let b = if node.opset < 7 {
        legacy = legacy_operand(node, a, b)?;
        &legacy
    } else {
        b
    };
    let shape = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
        node.invalid(format!(
            "shapes {:?} and {:?} do not broadcast",
            a.shape(),
            b.shape()
        ))
    })?;
    node.check_size(&shape)?;
    let widen = |x: &ArrayD<f64>| broadcast_to(x, &shape).expect("broadcast shape computed above");
    match (a, b) {
        (
            Value::Float {
                value: av,
                bound: ae,
            },
            Value::Float {
                value: bv,
                bound: be,
            },
        ) => {
            let (av, ae, bv, be) = (widen(av), widen(ae), widen(bv), widen(be));
            let mut y = av.clone();
            let mut e = ae.clone();
            Zip::from(&mut y)
                .and(&mut e)
                .and(&bv)
                .and(&be)
                .for_each(|y, e, &b, &eb| {
                    let (a, ea) = (*y, *e);
                    *y = (op.float)(a, b);
                    *e = (op.bound)(a, ea, b, eb, *y);
                });
            Ok(vec![Value::float(y, e)])
        }
        (Value::Int(ai), Value::Int(bi)) => {
            let ai = broadcast_to(ai, &shape).expect("broadcast shape computed above");
            let bi = broadcast_to(bi, &shape).expect("broadcast shape computed above");
            let mut failed = false;
            let y = Zip::from(&ai).and(&bi).map_collect(|&a, &b| {
                (op.int)(a, b).unwrap_or_else(|| {
                    failed = true;
                    0
                })
            });
            if failed {
                return Err(node.undefined("integer overflow or division by zero"));
            }
            Ok(vec![Value::Int(y)])
        }
        _ => Err(node.invalid(format!(
            "inputs must have the same type, got {} and {}",
            a.kind(),
            b.kind()
        ))),
    }
}

/// Add: bound `e_a + e_b + |y|`.
pub(crate) fn add(node: &Node) -> Result<Vec<Value>> {
    binary(
        node,
        Arith {
            float: |a, b| a + b,
            bound: |_, ea, _, eb, y| ea + eb + y.abs(),
            int: i64::checked_add,
        },
    )
}

/// Sub: bound `e_a + e_b + |y|`.
pub(crate) fn sub(node: &Node) -> Result<Vec<Value>> {
    binary(
        node,
        Arith {
            float: |a, b| a - b,
            bound: |_, ea, _, eb, y| ea + eb + y.abs(),
            int: i64::checked_sub,
        },
    )
}

/// Mul: bound `|b| e_a + |a| e_b + e_a e_b COARSEST_U + |y|`.
///
/// The product of the two perturbations is not negligible when the exact factors are much
/// smaller than their perturbations: a sigmoid deep in its tail times a convolution output that
/// cancels to zero is exactly 0 here, while a runtime multiplies two small errors.
pub(crate) fn mul(node: &Node) -> Result<Vec<Value>> {
    binary(
        node,
        Arith {
            float: |a, b| a * b,
            bound: |a, ea, b, eb, y| bound::product(a, ea, b, eb) + y.abs(),
            int: i64::checked_mul,
        },
    )
}

/// Div: bound `e_a / |b| + |a| e_b / b² + |y|`; integer division truncates (as in C).
pub(crate) fn div(node: &Node) -> Result<Vec<Value>> {
    binary(
        node,
        Arith {
            float: |a, b| a / b,
            bound: |a, ea, b, eb, y| ea / b.abs() + a.abs() * eb / (b * b) + y.abs(),
            int: i64::checked_div,
        },
    )
}
