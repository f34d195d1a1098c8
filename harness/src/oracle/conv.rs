//! Conv and ConvTranspose over any number of spatial axes, as direct sums per output element.

use ndarray::ArrayD;

use super::bound::DotBound;
use super::geometry::{self, split_same, AutoPad};
use super::node::{FloatRef, Node, Result};
use super::value::{all_indices, flat, for_each_index, from_flat, strides, Value};
use super::OracleError;

/// Most multiply-adds one kernel may perform; beyond it the model is refused as too large.
pub(crate) const MAX_WORK: u128 = 1 << 32;

/// Most taps (kernel positions) a convolution or pooling window may have.
pub(crate) const MAX_TAPS: u128 = 1 << 20;

/// Refuses kernels whose work (the product of `factors`: outputs, terms per output...) exceeds
/// [`MAX_WORK`]. The product saturates, so hostile sizes cannot overflow.
pub(crate) fn check_work(node: &Node, factors: &[usize]) -> Result<()> {
    let work = factors
        .iter()
        .fold(1u128, |w, &f| w.saturating_mul(f as u128));
    if work > MAX_WORK {
        return Err(OracleError::TooLarge(format!(
            "{}: {work} multiply-adds exceed the limit of {MAX_WORK}",
            node.label()
        )));
    }
    Ok(())
}

/// Every kernel position, row-major, after checking there are at most [`MAX_TAPS`] (checked
/// even when the output is empty, since the list is built first).
pub(crate) fn kernel_taps(node: &Node, kernel: &[usize]) -> Result<Vec<Vec<usize>>> {
    let taps = kernel
        .iter()
        .fold(1u128, |t, &k| t.saturating_mul(k as u128));
    if taps > MAX_TAPS {
        return Err(OracleError::TooLarge(format!(
            "{}: kernel {kernel:?} has more than {MAX_TAPS} positions",
            node.label()
        )));
    }
    Ok(all_indices(kernel))
}

/// Shapes shared by both convolutions, checked against each other.
struct ConvShapes<'a> {
    x: FloatRef<'a>,
    w: FloatRef<'a>,
    bias: Option<FloatRef<'a>>,
    group: usize,
    kernel: Vec<usize>,
}

/// Reads X, W, B, group and kernel_shape, with the checks common to Conv (W is
/// `[M, C/group, k...]`) and ConvTranspose (W is `[C, M/group, k...]`).
fn read_conv<'a>(node: &Node<'a>, transpose: bool) -> Result<ConvShapes<'a>> {
    let x = node.float_input(0, "X")?;
    let w = node.float_input(1, "W")?;
    let bias = node.opt_float_input(2, "B")?;
    let (xs, ws) = (x.0.shape(), w.0.shape());
    if xs.len() < 3 {
        return Err(node.invalid(format!(
            "X must have rank >= 3 (N, C, D1, ...), has shape {xs:?}"
        )));
    }
    if ws.len() != xs.len() {
        return Err(node.invalid(format!(
            "W has shape {ws:?}, its rank must equal X's rank {} ({xs:?})",
            xs.len()
        )));
    }
    let group = node.int("group", 1)?;
    if group < 1 {
        return Err(node.invalid(format!("group must be positive, got {group}")));
    }
    let channels = xs[1];
    if !(channels as u128).is_multiple_of(group as u128) {
        return Err(node.invalid(format!(
            "group {group} does not divide the {channels} input channels of X {xs:?}"
        )));
    }
    let group = group as usize; // divides `channels` (or channels is 0, then checks below fail or no work)
    let out_channels = if transpose {
        if ws[0] != channels {
            return Err(node.invalid(format!(
                "W {ws:?} must have X's {channels} channels on axis 0"
            )));
        }
        ws[1]
            .checked_mul(group)
            .ok_or_else(|| node.invalid("output channel count overflows"))?
    } else {
        if ws[1].checked_mul(group) != Some(channels) {
            return Err(node.invalid(format!(
                "W {ws:?} has {} input channels per group; X has {channels} channels and group is {group}, \
                 so W.shape[1] must be {}",
                ws[1],
                channels / group.max(1)
            )));
        }
        if ws[0] % group != 0 {
            return Err(node.invalid(format!(
                "group {group} does not divide the {} output channels of W {ws:?}",
                ws[0]
            )));
        }
        ws[0]
    };
    let kernel = ws[2..].to_vec();
    if let Some(ks) = node.ints("kernel_shape")? {
        if ks.len() != kernel.len() || ks.iter().zip(&kernel).any(|(&a, &b)| a != b as i64) {
            return Err(node.invalid(format!(
                "kernel_shape {ks:?} does not match W's spatial shape {kernel:?}"
            )));
        }
    }
    if let Some((b, _)) = bias {
        if b.shape() != [out_channels] {
            return Err(node.invalid(format!(
                "B has shape {:?}, expected [{out_channels}]",
                b.shape()
            )));
        }
    }
    Ok(ConvShapes {
        x,
        w,
        bias,
        group,
        kernel,
    })
}

/// Conv: `y[n, m, o] = B[m] + Σ_{c in m's group, k} W[m, c, k] · X[n, c, o·s + k·d - pad_begin]`,
/// taps falling in the padding contributing nothing.
pub(crate) fn conv(node: &Node) -> Result<Vec<Value>> {
    let ConvShapes {
        x: (x, ex),
        w: (w, ew),
        bias,
        group,
        kernel,
    } = read_conv(node, false)?;
    let (xs, ws) = (x.shape(), w.shape());
    let win = geometry::window(node, &xs[2..], &kernel, false)?;
    let (batch, out_channels, per_group_in) = (xs[0], ws[0], ws[1]);
    let per_group_out = out_channels / group;

    let mut out_shape = vec![batch, out_channels];
    out_shape.extend(&win.out);
    let total = node.check_size(&out_shape)?;
    check_work(node, &[&[total, per_group_in], kernel.as_slice()].concat())?;

    let (xf, xef, wf, wef) = (flat(x), flat(ex), flat(w), flat(ew));
    let bias = bias.map(|(b, e)| (flat(b), flat(e)));
    let (xst, wst) = (strides(xs), strides(ws));
    let taps = kernel_taps(node, &kernel)?;
    let rank = kernel.len();
    let (mut y, mut e) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for n in 0..batch {
        for m in 0..out_channels {
            let g = m / per_group_out;
            let b = bias.as_ref().map(|(b, e)| (b[m], e[m]));
            for_each_index(&win.out, |o| {
                let (mut acc, mut db) = (0.0, DotBound::default());
                for cl in 0..per_group_in {
                    let c = g * per_group_in + cl;
                    'tap: for k in &taps {
                        let mut xo = n * xst[0] + c * xst[1];
                        let mut wo = m * wst[0] + cl * wst[1];
                        for a in 0..rank {
                            let p = win.input_pos(a, o[a], k[a]);
                            if p < 0 || p >= xs[a + 2] as i128 {
                                continue 'tap;
                            }
                            xo += p as usize * xst[a + 2];
                            wo += k[a] * wst[a + 2];
                        }
                        acc += wf[wo] * xf[xo];
                        db.add(wf[wo], wef[wo], xf[xo], xef[xo]);
                    }
                }
                y.push(acc + b.map_or(0.0, |b| b.0));
                e.push(db.finish(b, 0));
            });
        }
    }
    Ok(vec![Value::float(
        from_flat(&out_shape, y),
        from_flat(&out_shape, e),
    )])
}

/// CausalConvWithState (opset 27): a depthwise 1D convolution over `past_state ++ input`
/// along the length axis (zeros when there is no past state), `y[n, c, t] = B[c] +
/// Σ_k W[c, 0, k] · padded[n, c, t + k]`, optionally followed by SiLU (`activation` "silu" or
/// its alias "swish"); `present_state` is the last `k - 1` positions of the padded input.
pub(crate) fn causal_conv_with_state(node: &Node) -> Result<Vec<Value>> {
    let (x, ex) = node.float_input(0, "input")?;
    let (w, ew) = node.float_input(1, "weight")?;
    let bias = node.opt_float_input(2, "bias")?;
    let past = node.opt_float_input(3, "past_state")?;
    let activation = node.string("activation", "none")?;
    let silu = match activation.as_str() {
        "none" => false,
        "silu" | "swish" => true,
        other => return Err(node.invalid(format!("activation '{other}' (none, silu or swish)"))),
    };
    let (xs, ws) = (x.shape(), w.shape());
    let [batch, channels, length] = *xs else {
        return Err(node.invalid(format!(
            "input must have rank 3 (N, C, L), has shape {xs:?}"
        )));
    };
    if ws.len() != 3 || ws[0] != channels || ws[1] != 1 || ws[2] == 0 {
        return Err(node.invalid(format!(
            "weight {ws:?} must be [{channels}, 1, k] with k >= 1"
        )));
    }
    let k = ws[2];
    if let Some((b, _)) = bias {
        if b.shape() != [channels] {
            return Err(node.invalid(format!("bias {:?} must be [{channels}]", b.shape())));
        }
    }
    if let Some((p, _)) = past {
        if p.shape() != [batch, channels, k - 1] {
            return Err(node.invalid(format!(
                "past_state {:?} must be [{batch}, {channels}, {}]",
                p.shape(),
                k - 1
            )));
        }
    }
    let out_shape = [batch, channels, length];
    let total = node.check_size(&out_shape)?;
    check_work(node, &[total, k])?;
    let state_shape = [batch, channels, k - 1];
    node.check_size(&state_shape)?;

    // The padded input, row by row: value and bound of position j of row (n, c).
    let (xf, xef) = (flat(x), flat(ex));
    let past = past.map(|(p, e)| (flat(p), flat(e)));
    let padded = |row: usize, j: usize| -> (f64, f64) {
        if j + 1 < k {
            past.as_ref().map_or((0.0, 0.0), |(p, e)| {
                (p[row * (k - 1) + j], e[row * (k - 1) + j])
            })
        } else {
            let i = row * length + j + 1 - k;
            (xf[i], xef[i])
        }
    };
    let (wf, wef) = (flat(w), flat(ew));
    let bias = bias.map(|(b, e)| (flat(b), flat(e)));
    let (mut y, mut e) = (Vec::with_capacity(total), Vec::with_capacity(total));
    let (mut state, mut state_e) = (Vec::new(), Vec::new());
    for row in 0..batch * channels {
        let c = row % channels;
        let b = bias.as_ref().map(|(b, e)| (b[c], e[c]));
        for t in 0..length {
            let (mut acc, mut db) = (0.0, DotBound::default());
            for tap in 0..k {
                let (v, ev) = padded(row, t + tap);
                acc += wf[c * k + tap] * v;
                db.add(wf[c * k + tap], wef[c * k + tap], v, ev);
            }
            let (sum, bound) = (acc + b.map_or(0.0, |b| b.0), db.finish(b, 0));
            let (out, out_e) = if silu {
                super::elementwise::silu(sum, bound)
            } else {
                (sum, bound)
            };
            y.push(out);
            e.push(out_e);
        }
        for j in length..length + k - 1 {
            let (v, ev) = padded(row, j);
            state.push(v);
            state_e.push(ev);
        }
    }
    Ok(vec![
        Value::float(from_flat(&out_shape, y), from_flat(&out_shape, e)),
        Value::float(
            from_flat(&state_shape, state),
            from_flat(&state_shape, state_e),
        ),
    ])
}

/// Geometry of a ConvTranspose along the spatial axes.
struct TransposeWindow {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pad_begin: Vec<i128>,
    out: Vec<usize>,
}

/// Output size and padding of ConvTranspose, per its spec:
/// `full = s (in - 1) + output_padding + (k - 1) d + 1`;
/// - explicit pads: `out = full - pad_begin - pad_end`;
/// - `output_shape` given: `total = full - output_shape`, split like SAME_UPPER when auto_pad is
///   SAME_UPPER and with the extra pad at the beginning otherwise (the spec's "Else" branch);
///   a negative total (output larger than `full`) keeps the start aligned (`pad_begin = 0`) and
///   extends the end, as the ONNX backend test `test_convtranspose_output_shape` expects;
/// - SAME_UPPER / SAME_LOWER: `out = in · s` (the attribute's definition) and
///   `total = max(0, full - out)` (clamped like ONNX shape inference and onnxruntime);
/// - VALID: no padding.
fn transpose_window(node: &Node, input: &[usize], kernel: &[usize]) -> Result<TransposeWindow> {
    let rank = input.len();
    let strides = geometry::positive_list(node, "strides", rank)?;
    let dilations = geometry::positive_list(node, "dilations", rank)?;
    let mode = geometry::auto_pad(node)?;
    let pads = geometry::explicit_pads(node, rank)?;
    if pads.is_some() && mode != AutoPad::NotSet {
        return Err(node.invalid(format!(
            "pads cannot be used together with auto_pad={mode:?}"
        )));
    }
    let output_padding = node
        .ints("output_padding")?
        .unwrap_or_else(|| vec![0; rank]);
    if output_padding.len() != rank {
        return Err(node.invalid(format!(
            "output_padding {output_padding:?} must have {rank} values"
        )));
    }
    let output_shape = match node.ints("output_shape")? {
        // Some exporters include the batch and channel dims; the spatial ones are the last.
        Some(v) if v.len() == rank || v.len() == rank + 2 => Some(v[v.len() - rank..].to_vec()),
        Some(v) => return Err(node.invalid(format!("output_shape {v:?} must have {rank} values"))),
        None => None,
    };
    let mut pad_begin = vec![0; rank];
    let mut out = vec![0; rank];
    for axis in 0..rank {
        let (n, s, d) = (
            input[axis] as i128,
            strides[axis] as i128,
            dilations[axis] as i128,
        );
        let op = output_padding[axis] as i128;
        if op < 0 || op >= s.max(d) {
            return Err(node.invalid(format!(
                "output_padding {op} on axis {axis} must be non-negative and smaller than the stride {s} or the dilation {d}"
            )));
        }
        let full = s * (n - 1) + op + (kernel[axis] as i128 - 1) * d + 1;
        let (begin, size) = if let Some(os) = &output_shape {
            let size = os[axis] as i128;
            let total = full - size;
            let begin = match (total >= 0, mode) {
                (false, _) => 0,
                (true, AutoPad::SameUpper) => split_same(total, AutoPad::SameUpper).0,
                (true, _) => split_same(total, AutoPad::SameLower).0,
            };
            (begin, size)
        } else {
            match mode {
                AutoPad::NotSet | AutoPad::Valid => {
                    let (b, e) = pads.as_ref().map_or((0, 0), |(b, e)| (b[axis], e[axis]));
                    (b, full - b - e)
                }
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let size = n * s;
                    (split_same((full - size).max(0), mode).0, size)
                }
            }
        };
        if size < 1 {
            return Err(node.invalid(format!(
                "spatial axis {axis}: output length {size} < 1 (input length {n})"
            )));
        }
        pad_begin[axis] = begin;
        out[axis] = usize::try_from(size)
            .map_err(|_| node.invalid(format!("spatial axis {axis}: size {size} too large")))?;
    }
    Ok(TransposeWindow {
        strides,
        dilations,
        pad_begin,
        out,
    })
}

/// ConvTranspose: every input element `X[n, c, i]` scatters `X · W[c, m, k]` to output position
/// `i·s + k·d - pad_begin`; computed here as a gather per output element so that each output's
/// bound sees exactly its own terms.
pub(crate) fn conv_transpose(node: &Node) -> Result<Vec<Value>> {
    let ConvShapes {
        x: (x, ex),
        w: (w, ew),
        bias,
        group,
        kernel,
    } = read_conv(node, true)?;
    let (xs, ws) = (x.shape(), w.shape());
    let win = transpose_window(node, &xs[2..], &kernel)?;
    let (batch, per_group_in, per_group_out) = (xs[0], xs[1] / group, ws[1]);
    let out_channels = per_group_out * group;

    let mut out_shape = vec![batch, out_channels];
    out_shape.extend(&win.out);
    let total = node.check_size(&out_shape)?;
    check_work(node, &[&[total, per_group_in], kernel.as_slice()].concat())?;

    let (xf, xef, wf, wef) = (flat(x), flat(ex), flat(w), flat(ew));
    let bias = bias.map(|(b, e)| (flat(b), flat(e)));
    let (xst, wst) = (strides(xs), strides(ws));
    let taps = kernel_taps(node, &kernel)?;
    let rank = kernel.len();
    let (mut y, mut e) = (Vec::with_capacity(total), Vec::with_capacity(total));
    for n in 0..batch {
        for m in 0..out_channels {
            let (g, ml) = (m / per_group_out, m % per_group_out);
            let b = bias.as_ref().map(|(b, e)| (b[m], e[m]));
            for_each_index(&win.out, |o| {
                let (mut acc, mut db) = (0.0, DotBound::default());
                for cl in 0..per_group_in {
                    let c = g * per_group_in + cl;
                    'tap: for k in &taps {
                        let mut xo = n * xst[0] + c * xst[1];
                        let mut wo = c * wst[0] + ml * wst[1];
                        for a in 0..rank {
                            // o = i·s + k·d - pad_begin  ⇔  i = (o + pad_begin - k·d) / s
                            let t = o[a] as i128 + win.pad_begin[a]
                                - k[a] as i128 * win.dilations[a] as i128;
                            let s = win.strides[a] as i128;
                            if t < 0 || t % s != 0 || t / s >= xs[a + 2] as i128 {
                                continue 'tap;
                            }
                            xo += (t / s) as usize * xst[a + 2];
                            wo += k[a] * wst[a + 2];
                        }
                        acc += wf[wo] * xf[xo];
                        db.add(wf[wo], wef[wo], xf[xo], xef[xo]);
                    }
                }
                y.push(acc + b.map_or(0.0, |b| b.0));
                e.push(db.finish(b, 0));
            });
        }
    }
    let value: ArrayD<f64> = from_flat(&out_shape, y);
    Ok(vec![Value::float(value, from_flat(&out_shape, e))])
}
