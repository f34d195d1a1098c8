//! Gemm and MatMul.

use ndarray::{ArrayD, ArrayView2, Ix2, IxDyn};

use super::bound::DotBound;
use super::conv::check_work;
use super::node::{Node, Result};
use super::value::{broadcast_shapes, broadcast_to, flat, from_flat, Value};

/// Gemm: `Y = alpha · A' · B' + beta · C` with `A' = transA ? Aᵀ : A` (shape `[M, K]`),
/// `B' = transB ? Bᵀ : B` (`[K, N]`) and C optional, broadcast (unidirectionally) to `[M, N]`.
/// Each product is a dot-product term scaled by alpha; alpha and beta other than 1 each add one
/// rounding.
pub(crate) fn gemm(node: &Node) -> Result<Vec<Value>> {
    let (a, ea) = node.float_input(0, "A")?;
    let (b, eb) = node.float_input(1, "B")?;
    let c = node.opt_float_input(2, "C")?;
    let alpha = node.float("alpha", 1.0)?;
    let beta = node.float("beta", 1.0)?;
    let (trans_a, trans_b) = (node.flag("transA", false)?, node.flag("transB", false)?);
    fn as_matrix<'a>(
        node: &Node,
        x: &'a ArrayD<f64>,
        name: &str,
        t: bool,
    ) -> Result<ArrayView2<'a, f64>> {
        let m = x
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| node.invalid(format!("{name} must be 2-D, has shape {:?}", x.shape())))?;
        Ok(if t { m.reversed_axes() } else { m })
    }
    let (a, ea) = (
        as_matrix(node, a, "A", trans_a)?,
        as_matrix(node, ea, "A", trans_a)?,
    );
    let (b, eb) = (
        as_matrix(node, b, "B", trans_b)?,
        as_matrix(node, eb, "B", trans_b)?,
    );
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    if b.nrows() != k {
        return Err(node.invalid(format!(
            "A' is {m}x{k} but B' is {}x{n}: inner dimensions differ",
            b.nrows()
        )));
    }
    let shape = [m, n];
    node.check_size(&shape)?;
    check_work(node, &[m, n, k])?;
    // Before opset 7, C has the output's shape unless `broadcast=1`.
    if let Some((c, _)) = c {
        if node.opset < 7 && !node.flag("broadcast", false)? && c.shape() != shape {
            return Err(node.invalid(format!(
                "C {:?} is not [{m}, {n}] and broadcast is 0 (opset {})",
                c.shape(),
                node.opset
            )));
        }
    }
    let c = match c {
        None => None,
        Some((c, ec)) => match (broadcast_to(c, &shape), broadcast_to(ec, &shape)) {
            (Some(c), Some(ec)) => Some((c, ec)),
            _ => {
                return Err(node.invalid(format!(
                    "C {:?} does not broadcast to [{m}, {n}]",
                    c.shape()
                )))
            }
        },
    };
    let extra = usize::from(alpha != 1.0) + usize::from(beta != 1.0 && c.is_some());
    let (mut y, mut e) = (Vec::with_capacity(m * n), Vec::with_capacity(m * n));
    for i in 0..m {
        for j in 0..n {
            let (mut acc, mut db) = (0.0, DotBound::default());
            for l in 0..k {
                acc += a[(i, l)] * b[(l, j)];
                db.add(
                    alpha * a[(i, l)],
                    alpha.abs() * ea[(i, l)],
                    b[(l, j)],
                    eb[(l, j)],
                );
            }
            let bias = c
                .as_ref()
                .map(|(c, ec)| (beta * c[IxDyn(&[i, j])], beta.abs() * ec[IxDyn(&[i, j])]));
            y.push(alpha * acc + bias.map_or(0.0, |b| b.0));
            e.push(db.finish(bias, extra));
        }
    }
    Ok(vec![Value::float(
        from_flat(&shape, y),
        from_flat(&shape, e),
    )])
}

/// MatMul with numpy semantics: 1-D operands are promoted (a row for A, a column for B) and the
/// promoted axis removed from the result; batch axes broadcast.
pub(crate) fn matmul(node: &Node) -> Result<Vec<Value>> {
    let (a, ea) = node.float_input(0, "A")?;
    let (b, eb) = node.float_input(1, "B")?;
    let (ash, bsh) = (a.shape().to_vec(), b.shape().to_vec());
    if ash.is_empty() || bsh.is_empty() {
        return Err(node.invalid(format!(
            "MatMul operands must have rank >= 1, got {ash:?} and {bsh:?}"
        )));
    }
    let a_shape = if ash.len() == 1 {
        vec![1, ash[0]]
    } else {
        ash.clone()
    };
    let b_shape = if bsh.len() == 1 {
        vec![bsh[0], 1]
    } else {
        bsh.clone()
    };
    let (m, k) = (a_shape[a_shape.len() - 2], a_shape[a_shape.len() - 1]);
    let (k2, n) = (b_shape[b_shape.len() - 2], b_shape[b_shape.len() - 1]);
    if k != k2 {
        return Err(node.invalid(format!("inner dimensions differ: {ash:?} x {bsh:?}")));
    }
    let batch = broadcast_shapes(&a_shape[..a_shape.len() - 2], &b_shape[..b_shape.len() - 2])
        .ok_or_else(|| {
            node.invalid(format!(
                "batch dimensions of {ash:?} and {bsh:?} do not broadcast"
            ))
        })?;
    let full = |tail: [usize; 2]| [batch.as_slice(), &tail].concat();
    let (a_full, b_full, y_full) = (full([m, k]), full([k, n]), full([m, n]));
    for s in [&a_full, &b_full, &y_full] {
        node.check_size(s)?;
    }
    let count: usize = y_full.iter().product();
    check_work(node, &[count, k])?;
    let reshape = |x: &ArrayD<f64>, promoted: &[usize], to: &[usize]| {
        let x = x
            .to_shape(IxDyn(promoted))
            .expect("same element count")
            .to_owned();
        broadcast_to(&x, to).expect("broadcast shape computed above")
    };
    let (af, eaf) = (
        reshape(a, &a_shape, &a_full),
        reshape(ea, &a_shape, &a_full),
    );
    let (bf, ebf) = (
        reshape(b, &b_shape, &b_full),
        reshape(eb, &b_shape, &b_full),
    );
    let (af, eaf, bf, ebf) = (flat(&af), flat(&eaf), flat(&bf), flat(&ebf));
    let (mut y, mut e) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for p in 0..count / (m * n).max(1) {
        for i in 0..m {
            for j in 0..n {
                let (mut acc, mut db) = (0.0, DotBound::default());
                for l in 0..k {
                    let (ai, bi) = (p * m * k + i * k + l, p * k * n + l * n + j);
                    acc += af[ai] * bf[bi];
                    db.add(af[ai], eaf[ai], bf[bi], ebf[bi]);
                }
                y.push(acc);
                e.push(db.finish(None, 0));
            }
        }
    }
    let mut out_shape = batch.clone();
    if ash.len() > 1 {
        out_shape.push(m);
    }
    if bsh.len() > 1 {
        out_shape.push(n);
    }
    Ok(vec![Value::float(
        from_flat(&out_shape, y),
        from_flat(&out_shape, e),
    )])
}
