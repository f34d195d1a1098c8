//! Shape inference and validity rules per layer, following the ONNX operator spec.

use super::{output_length, Act, Conv, ConvTranspose, Invalid, Layer, LpPool, Merge, PadMode};
use super::{Padding, Pool, Quant, MAX_ACTIVATION};

fn invalid(layer: usize, reason: impl Into<String>) -> Invalid {
    Invalid {
        layer,
        reason: reason.into(),
    }
}

/// The rules that depend on the model (its opset).
pub(super) struct Rules {
    pub opset: i64,
}

impl Rules {
    /// Shape after `layer` on `act`; `index` counts layers in pre-order (nested ones included).
    pub fn layer(&self, layer: &Layer, act: Act, index: &mut usize) -> Result<Act, Invalid> {
        let me = *index;
        *index += 1;
        let next = match layer {
            Layer::Conv(c) => conv(me, c, seq(me, act, "Conv")?)?,
            Layer::ConvTranspose(c) => conv_transpose(me, c, seq(me, act, "ConvTranspose")?)?,
            Layer::MaxPool(p) => pool(me, p, true, seq(me, act, "pooling")?)?,
            Layer::AveragePool(p) => pool(me, p, false, seq(me, act, "pooling")?)?,
            Layer::LpPool(p) => lp_pool(me, p, seq(me, act, "LpPool")?)?,
            Layer::BatchNorm { .. } | Layer::InstanceNorm { .. } | Layer::LayerNorm { .. } => {
                self.normalization(me, layer, act)?
            }
            Layer::Relu
            | Layer::LeakyRelu { .. }
            | Layer::PRelu { .. }
            | Layer::Sigmoid
            | Layer::Tanh
            | Layer::Elu { .. }
            | Layer::Selu
            | Layer::HardSigmoid { .. }
            | Layer::HardSwish
            | Layer::Gelu
            | Layer::Softplus
            | Layer::Mish
            | Layer::Clip { .. } => activation(me, layer, act)?,
            Layer::QuantizeDequantize(q) => quantize_dequantize(me, q, self.opset, act)?,
            Layer::Pad { mode, begin, end } => pad(me, *mode, *begin, *end, seq(me, act, "Pad")?)?,
            Layer::Residual { body } => self.residual(me, body, act, index)?,
            Layer::Parallel { merge, branches } => {
                self.parallel(me, *merge, branches, act, index)?
            }
            Layer::SqueezeExcite { reduced } => squeeze_excite(me, *reduced, act)?,
            Layer::GlobalAveragePool | Layer::GlobalMaxPool | Layer::ReduceLength { .. } => {
                length_reduction(me, layer, act)?
            }
            Layer::Dense { .. } | Layer::MatMul { .. } | Layer::Softmax { .. } => {
                head(me, layer, act)?
            }
        };
        if next.elements() > MAX_ACTIVATION {
            return Err(invalid(
                me,
                format!(
                    "activation of {} elements is over the limit",
                    next.elements()
                ),
            ));
        }
        Ok(next)
    }

    /// BatchNormalization, InstanceNormalization and LayerNormalization: shape kept; the
    /// epsilon must be positive, and LayerNormalization needs opset 17 and an axis of 1, 2 or -1.
    fn normalization(&self, me: usize, layer: &Layer, act: Act) -> Result<Act, Invalid> {
        match layer {
            Layer::BatchNorm { epsilon } | Layer::InstanceNorm { epsilon } => {
                seq(me, act, "normalization")?;
                check_epsilon(me, *epsilon)?;
            }
            Layer::LayerNorm { axis, epsilon } => {
                seq(me, act, "LayerNormalization")?;
                check_epsilon(me, *epsilon)?;
                if self.opset < 17 {
                    return Err(invalid(
                        me,
                        format!(
                            "LayerNormalization needs opset 17, the model has {}",
                            self.opset
                        ),
                    ));
                }
                if !matches!(axis, -1 | 1 | 2) {
                    return Err(invalid(me, format!("LayerNormalization axis {axis}")));
                }
            }
            other => unreachable!("{other:?} is not a normalization"),
        }
        Ok(act)
    }

    /// A residual block: its body must map `act` back to itself.
    fn residual(
        &self,
        me: usize,
        body: &[Layer],
        act: Act,
        index: &mut usize,
    ) -> Result<Act, Invalid> {
        seq(me, act, "Residual")?;
        let inner = self.chain(body, act, index)?;
        if inner != act {
            return Err(invalid(
                me,
                format!("residual body maps {act:?} to {inner:?}"),
            ));
        }
        Ok(act)
    }

    /// Parallel branches on the same input, merged into one output.
    fn parallel(
        &self,
        me: usize,
        merge: Merge,
        branches: &[Vec<Layer>],
        act: Act,
        index: &mut usize,
    ) -> Result<Act, Invalid> {
        seq(me, act, "Parallel")?;
        if branches.len() < 2 {
            return Err(invalid(me, "a parallel block needs two branches"));
        }
        let mut outs = Vec::new();
        for branch in branches {
            outs.push(self.chain(branch, act, index)?);
        }
        merge_branches(me, merge, &outs)
    }

    /// Shape after a sequence of layers (a residual body or a parallel branch).
    fn chain(&self, layers: &[Layer], act: Act, index: &mut usize) -> Result<Act, Invalid> {
        let mut inner = act;
        for l in layers {
            inner = self.layer(l, inner, index)?;
        }
        Ok(inner)
    }
}

/// Channels and length of a `[N, C, L]` activation; `what` names the layer that needs one.
fn seq(me: usize, act: Act, what: &str) -> Result<(usize, usize), Invalid> {
    match act {
        Act::Seq { channels, length } => Ok((channels, length)),
        Act::Flat { .. } => Err(invalid(
            me,
            format!("{what} needs a [N, C, L] input, got a flat one"),
        )),
    }
}

/// Conv on `(channels, length)`.
fn conv(me: usize, c: &Conv, (channels, length): (usize, usize)) -> Result<Act, Invalid> {
    check_window(me, c.kernel, c.stride, c.dilation)?;
    check_group(me, c.group, channels, c.out_channels)?;
    let (out, _, _) = output_length(length, c.kernel, c.stride, c.dilation, c.padding, false)
        .ok_or_else(|| {
            invalid(
                me,
                format!("Conv kernel field longer than the padded input of length {length}"),
            )
        })?;
    Ok(Act::Seq {
        channels: c.out_channels,
        length: out,
    })
}

/// ConvTranspose on `(channels, length)`.
fn conv_transpose(
    me: usize,
    c: &ConvTranspose,
    (channels, length): (usize, usize),
) -> Result<Act, Invalid> {
    check_window(me, c.kernel, c.stride, c.dilation)?;
    check_group(me, c.group, channels, c.out_channels)?;
    let out = conv_transpose_length(
        length,
        c.kernel,
        c.stride,
        c.dilation,
        c.padding,
        c.output_padding,
        c.output_shape,
    )
    .map_err(|r| invalid(me, r))?;
    Ok(Act::Seq {
        channels: c.out_channels,
        length: out,
    })
}

/// MaxPool (`is_max`) or AveragePool on `(channels, length)`.
fn pool(
    me: usize,
    p: &Pool,
    is_max: bool,
    (channels, length): (usize, usize),
) -> Result<Act, Invalid> {
    check_window(me, p.kernel, p.stride, p.dilation)?;
    if !is_max && p.dilation != 1 {
        return Err(invalid(me, "AveragePool has no dilation before opset 19"));
    }
    if !is_max && p.indices {
        return Err(invalid(me, "AveragePool has no Indices output"));
    }
    check_pool_pads(me, p.kernel, p.padding)?;
    let (out, begin, _) = output_length(
        length,
        p.kernel,
        p.stride,
        p.dilation,
        p.padding,
        p.ceil_mode,
    )
    .ok_or_else(|| {
        invalid(
            me,
            format!("pool window longer than the padded input of length {length}"),
        )
    })?;
    if is_max && p.dilation > 1 {
        check_windows_touch_input(me, p, length, out, begin)?;
    }
    Ok(Act::Seq {
        channels,
        length: out,
    })
}

/// Each of the `out` windows of a dilated MaxPool (`begin` pads before the input) must touch
/// the input: a window that only touches padding has no defined maximum.
fn check_windows_touch_input(
    me: usize,
    p: &Pool,
    length: usize,
    out: usize,
    begin: usize,
) -> Result<(), Invalid> {
    for o in 0..out {
        let start = (o * p.stride) as isize - begin as isize;
        let touches = (0..p.kernel)
            .any(|k| (0..length as isize).contains(&(start + (k * p.dilation) as isize)));
        if !touches {
            return Err(invalid(
                me,
                format!("MaxPool window {o} covers only padding"),
            ));
        }
    }
    Ok(())
}

/// LpPool on `(channels, length)`.
fn lp_pool(me: usize, p: &LpPool, (channels, length): (usize, usize)) -> Result<Act, Invalid> {
    check_window(me, p.kernel, p.stride, 1)?;
    check_pool_pads(me, p.kernel, p.padding)?;
    if p.p == 0 {
        return Err(invalid(me, "LpPool p must be positive"));
    }
    let (out, _, _) =
        output_length(length, p.kernel, p.stride, 1, p.padding, false).ok_or_else(|| {
            invalid(
                me,
                format!("LpPool window longer than the padded input of length {length}"),
            )
        })?;
    Ok(Act::Seq {
        channels,
        length: out,
    })
}

/// Element-wise activations keep the shape; a per-channel PRelu slope needs channels, and Clip
/// needs `min <= max`.
fn activation(me: usize, layer: &Layer, act: Act) -> Result<Act, Invalid> {
    match layer {
        Layer::PRelu { per_channel: true } => {
            seq(me, act, "PRelu with a [C, 1] slope")?;
        }
        Layer::Clip { min, max } if min.is_nan() || max.is_nan() || min > max => {
            return Err(invalid(me, format!("Clip min {min} above max {max}")));
        }
        // Other activations, a scalar PRelu slope and a valid Clip apply to any shape.
        _ => {}
    }
    Ok(act)
}

/// A QuantizeLinear → DequantizeLinear pair keeps the shape; it needs opset 10, a positive
/// finite scale and a zero point in the integer type's range.
fn quantize_dequantize(me: usize, q: &Quant, opset: i64, act: Act) -> Result<Act, Invalid> {
    if opset < 10 {
        return Err(invalid(me, "QuantizeLinear needs opset 10"));
    }
    if !(q.scale.is_finite() && q.scale > 0.0) {
        return Err(invalid(me, format!("quantization scale {}", q.scale)));
    }
    let (lo, hi) = q.range();
    if !(lo..=hi).contains(&q.zero_point) {
        return Err(invalid(
            me,
            format!("zero point {} outside {lo}..={hi}", q.zero_point),
        ));
    }
    Ok(act)
}

/// Pad of `begin` and `end` elements along the length of `(channels, length)`.
fn pad(
    me: usize,
    mode: PadMode,
    begin: usize,
    end: usize,
    (channels, length): (usize, usize),
) -> Result<Act, Invalid> {
    if mode == PadMode::Reflect && (begin >= length || end >= length) {
        return Err(invalid(
            me,
            format!("reflect pads [{begin}, {end}] must be below the length {length}"),
        ));
    }
    Ok(Act::Seq {
        channels,
        length: length + begin + end,
    })
}

/// The merged shape of parallel branches that output `outs`: Add and Mul need equal shapes,
/// Concat sequences of equal length (channels add up).
fn merge_branches(me: usize, merge: Merge, outs: &[Act]) -> Result<Act, Invalid> {
    match merge {
        Merge::Add | Merge::Mul => {
            if outs.iter().any(|o| *o != outs[0]) {
                return Err(invalid(
                    me,
                    format!("{merge:?} of branches shaped {outs:?}"),
                ));
            }
            Ok(outs[0])
        }
        Merge::Concat => {
            let mut channels = 0;
            for o in outs {
                match *o {
                    Act::Seq {
                        channels: c,
                        length: l,
                    } if l == outs_length(outs) => channels += c,
                    _ => return Err(invalid(me, format!("Concat of branches shaped {outs:?}"))),
                }
            }
            Ok(Act::Seq {
                channels,
                length: outs_length(outs),
            })
        }
    }
}

/// A squeeze-and-excitation block keeps the shape; its bottleneck has `reduced` channels.
fn squeeze_excite(me: usize, reduced: usize, act: Act) -> Result<Act, Invalid> {
    seq(me, act, "SqueezeExcite")?;
    if reduced == 0 {
        return Err(invalid(me, "squeeze-and-excitation needs a bottleneck"));
    }
    Ok(act)
}

/// Global pools and ReduceMean/ReduceMax over the length: length 1, or flat without keepdims.
fn length_reduction(me: usize, layer: &Layer, act: Act) -> Result<Act, Invalid> {
    let (what, keepdims) = match layer {
        Layer::GlobalAveragePool | Layer::GlobalMaxPool => ("global pooling", true),
        Layer::ReduceLength { keepdims, .. } => ("ReduceMean/ReduceMax", *keepdims),
        other => unreachable!("{other:?} does not reduce the length"),
    };
    let (channels, _) = seq(me, act, what)?;
    Ok(if keepdims {
        Act::Seq {
            channels,
            length: 1,
        }
    } else {
        Act::Flat { features: channels }
    })
}

/// Heads: Dense (flattens), MatMul (over the last axis) and Softmax (shape kept; the axis must
/// be within the rank).
fn head(me: usize, layer: &Layer, act: Act) -> Result<Act, Invalid> {
    match layer {
        Layer::Dense { out_features, .. } | Layer::MatMul { out_features } => {
            if *out_features == 0 {
                return Err(invalid(me, "a head needs at least one output feature"));
            }
            Ok(match (layer, act) {
                (Layer::MatMul { .. }, Act::Seq { channels, .. }) => Act::Seq {
                    channels,
                    length: *out_features,
                },
                _ => Act::Flat {
                    features: *out_features,
                },
            })
        }
        Layer::Softmax { axis } => {
            let rank = match act {
                Act::Seq { .. } => 3,
                Act::Flat { .. } => 2,
            };
            if !(-rank..rank).contains(axis) {
                return Err(invalid(me, format!("Softmax axis {axis} on rank {rank}")));
            }
            Ok(act)
        }
        other => unreachable!("{other:?} is not a head"),
    }
}

fn outs_length(outs: &[Act]) -> usize {
    match outs[0] {
        Act::Seq { length, .. } => length,
        Act::Flat { .. } => 0,
    }
}

/// Output length of a ConvTranspose per the spec, or why there is none.
pub fn conv_transpose_length(
    length: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output_padding: usize,
    output_shape: Option<usize>,
) -> Result<usize, String> {
    if output_padding >= stride.max(dilation) {
        return Err(format!(
            "output_padding {output_padding} must be below the stride {stride} or the dilation {dilation}"
        ));
    }
    let full = stride * (length - 1) + output_padding + (kernel - 1) * dilation + 1;
    let out = match (output_shape, padding) {
        (Some(s), _) => s as isize,
        (None, Padding::Explicit { begin, end }) => full as isize - (begin + end) as isize,
        (None, Padding::Valid) => full as isize,
        (None, Padding::SameUpper | Padding::SameLower) => (length * stride) as isize,
    };
    if out < 1 {
        return Err(format!(
            "ConvTranspose output length {out} < 1 (input length {length})"
        ));
    }
    Ok(out as usize)
}

fn check_epsilon(me: usize, epsilon: f32) -> Result<(), Invalid> {
    if epsilon.is_nan() || epsilon <= 0.0 {
        return Err(invalid(me, "normalization epsilon must be positive"));
    }
    Ok(())
}

fn check_group(me: usize, group: usize, channels: usize, out: usize) -> Result<(), Invalid> {
    if group == 0 || !channels.is_multiple_of(group) || !out.is_multiple_of(group) {
        return Err(invalid(
            me,
            format!(
                "group {group} does not divide input channels {channels} and output channels {out}"
            ),
        ));
    }
    Ok(())
}

fn check_pool_pads(me: usize, kernel: usize, padding: Padding) -> Result<(), Invalid> {
    if let Padding::Explicit { begin, end } = padding {
        if begin >= kernel || end >= kernel {
            return Err(invalid(
                me,
                format!("pool pads [{begin}, {end}] must be smaller than the kernel {kernel}"),
            ));
        }
    }
    Ok(())
}

fn check_window(
    layer: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(), Invalid> {
    if kernel == 0 || stride == 0 || dilation == 0 {
        return Err(invalid(
            layer,
            format!("kernel {kernel}, stride {stride}, dilation {dilation} must all be positive"),
        ));
    }
    Ok(())
}
