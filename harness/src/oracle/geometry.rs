//! Sliding-window geometry shared by Conv and the pools: kernel, strides, dilations, pads
//! (explicit or from `auto_pad`) and the output size, with the spec's validity checks.
//!
//! Arithmetic is done in i128 so that hostile attribute values cannot overflow.

use super::node::{Node, Result};

/// The `auto_pad` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AutoPad {
    /// Explicit `pads` (default).
    NotSet,
    /// No padding.
    Valid,
    /// Pad so that `out = ceil(in / stride)`; an odd total puts the extra pad at the end.
    SameUpper,
    /// Same, with the extra pad at the beginning.
    SameLower,
}

/// Reads `auto_pad`.
pub(crate) fn auto_pad(node: &Node) -> Result<AutoPad> {
    match node.string("auto_pad", "NOTSET")?.as_str() {
        "NOTSET" => Ok(AutoPad::NotSet),
        "VALID" => Ok(AutoPad::Valid),
        "SAME_UPPER" => Ok(AutoPad::SameUpper),
        "SAME_LOWER" => Ok(AutoPad::SameLower),
        other => Err(node.invalid(format!(
            "auto_pad must be NOTSET, VALID, SAME_UPPER or SAME_LOWER, got '{other}'"
        ))),
    }
}

/// Splits a total padding between the two ends the way `auto_pad` says.
pub(crate) fn split_same(total: i128, mode: AutoPad) -> (i128, i128) {
    let small = total.div_euclid(2);
    let big = total - small;
    match mode {
        AutoPad::SameLower => (big, small),
        _ => (small, big),
    }
}

/// Window geometry along the spatial axes of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    /// Kernel size per axis.
    pub kernel: Vec<usize>,
    /// Stride per axis.
    pub strides: Vec<usize>,
    /// Dilation per axis.
    pub dilations: Vec<usize>,
    /// Padding before the first element, per axis.
    pub pad_begin: Vec<usize>,
    /// Padding after the last element, per axis.
    pub pad_end: Vec<usize>,
    /// Output size per axis (at least 1).
    pub out: Vec<usize>,
}

impl Window {
    /// Input coordinate along `axis` of kernel tap `k` of output position `o`; outside
    /// `0..input[axis]` it falls in the padding (or past it, for ceil_mode windows).
    pub fn input_pos(&self, axis: usize, o: usize, k: usize) -> i128 {
        o as i128 * self.strides[axis] as i128 + k as i128 * self.dilations[axis] as i128
            - self.pad_begin[axis] as i128
    }
}

/// A per-axis list attribute of positive values (`strides`, `dilations`, `kernel_shape`),
/// defaulting to ones.
pub(crate) fn positive_list(node: &Node, name: &str, rank: usize) -> Result<Vec<usize>> {
    let Some(v) = node.ints(name)? else {
        return Ok(vec![1; rank]);
    };
    if v.len() != rank {
        return Err(node.invalid(format!(
            "{name} has {} values, the input has {rank} spatial axes",
            v.len()
        )));
    }
    if let Some(bad) = v.iter().find(|&&x| x < 1) {
        return Err(node.invalid(format!("{name} must be positive, got {bad} in {v:?}")));
    }
    v.iter()
        .map(|&x| {
            usize::try_from(x).map_err(|_| node.invalid(format!("{name} value {x} is too large")))
        })
        .collect()
}

/// Explicit `pads` ([begin..., end...], non-negative), or `None` when absent.
pub(crate) fn explicit_pads(node: &Node, rank: usize) -> Result<Option<(Vec<i128>, Vec<i128>)>> {
    let Some(p) = node.ints("pads")? else {
        return Ok(None);
    };
    if p.len() != 2 * rank {
        return Err(node.invalid(format!(
            "pads has {} values, expected {} (begin and end of {rank} axes)",
            p.len(),
            2 * rank
        )));
    }
    if let Some(bad) = p.iter().find(|&&x| x < 0) {
        return Err(node.invalid(format!("pads must not be negative, got {bad} in {p:?}")));
    }
    Ok(Some((
        p[..rank].iter().map(|&x| x as i128).collect(),
        p[rank..].iter().map(|&x| x as i128).collect(),
    )))
}

/// Computes the window geometry of a Conv or pool node over spatial input sizes `input`,
/// for `kernel` (already validated against the weights or read from `kernel_shape`).
///
/// Output size, per the spec of Conv and the pools:
/// - explicit pads: `floor((in + pads - ek) / s) + 1` with `ek = (k-1) d + 1`; with `ceil_mode`
///   the division rounds up, and a last window that would start in the right padding
///   (`(out-1) s >= in + pad_begin`) is dropped, as the pooling spec says;
/// - VALID: the same with no padding;
/// - SAME_UPPER / SAME_LOWER: `out = ceil(in / s)` and total padding
///   `max(0, (out-1) s + ek - in)` (clamped like ONNX shape inference), split per mode.
///   `ceil_mode` changes nothing there: both formulas of the spec agree.
///
/// `pads` together with an `auto_pad` other than NOTSET is invalid ("This attribute cannot be
/// used simultaneously with auto_pad attribute").
pub(crate) fn window(
    node: &Node,
    input: &[usize],
    kernel: &[usize],
    ceil_mode: bool,
) -> Result<Window> {
    let rank = input.len();
    if let Some(bad) = kernel.iter().find(|&&k| k < 1) {
        return Err(node.invalid(format!(
            "kernel sizes must be positive, got {bad} in {kernel:?}"
        )));
    }
    let strides = positive_list(node, "strides", rank)?;
    let dilations = positive_list(node, "dilations", rank)?;
    let mode = auto_pad(node)?;
    let pads = explicit_pads(node, rank)?;
    if pads.is_some() && mode != AutoPad::NotSet {
        return Err(node.invalid(format!(
            "pads cannot be used together with auto_pad={mode:?}"
        )));
    }
    let mut w = Window {
        kernel: kernel.to_vec(),
        strides: strides.clone(),
        dilations: dilations.clone(),
        pad_begin: vec![0; rank],
        pad_end: vec![0; rank],
        out: vec![0; rank],
    };
    for axis in 0..rank {
        let n = input[axis] as i128;
        let s = strides[axis] as i128;
        let ek = (kernel[axis] as i128 - 1) * dilations[axis] as i128 + 1;
        let (begin, end, out) = match mode {
            AutoPad::NotSet | AutoPad::Valid => {
                let (begin, end) = pads.as_ref().map_or((0, 0), |(b, e)| (b[axis], e[axis]));
                let span = n + begin + end - ek;
                if span < 0 {
                    return Err(node.invalid(format!(
                        "spatial axis {axis}: input length {n} plus pads {begin}+{end} is shorter than the \
                         effective kernel {ek}, so the output length would be < 1"
                    )));
                }
                let mut out = if ceil_mode {
                    (span + s - 1) / s + 1
                } else {
                    span / s + 1
                };
                if ceil_mode && (out - 1) * s >= n + begin {
                    out -= 1;
                }
                (begin, end, out)
            }
            AutoPad::SameUpper | AutoPad::SameLower => {
                let out = (n + s - 1) / s;
                let total = ((out - 1) * s + ek - n).max(0);
                let (begin, end) = split_same(total, mode);
                (begin, end, out)
            }
        };
        if out < 1 {
            return Err(node.invalid(format!(
                "spatial axis {axis}: output length {out} < 1 (input length {n})"
            )));
        }
        let fits = |v: i128| {
            usize::try_from(v)
                .map_err(|_| node.invalid(format!("spatial axis {axis}: size {v} is too large")))
        };
        w.pad_begin[axis] = fits(begin)?;
        w.pad_end[axis] = fits(end)?;
        w.out[axis] = fits(out)?;
    }
    Ok(w)
}
