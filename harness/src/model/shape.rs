//! Shape inference and validity rules per layer, following the ONNX operator spec.

use super::{output_length, Act, Invalid, Layer, Merge, PadMode, Padding, MAX_ACTIVATION};

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
        let seq = |what: &str| match act {
            Act::Seq { channels, length } => Ok((channels, length)),
            Act::Flat { .. } => Err(invalid(
                me,
                format!("{what} needs a [N, C, L] input, got a flat one"),
            )),
        };
        let next = match layer {
            Layer::Conv(c) => {
                let (channels, length) = seq("Conv")?;
                check_window(me, c.kernel, c.stride, c.dilation)?;
                check_group(me, c.group, channels, c.out_channels)?;
                let (out, _, _) =
                    output_length(length, c.kernel, c.stride, c.dilation, c.padding, false)
                        .ok_or_else(|| {
                            invalid(
                                me,
                                format!(
                            "Conv kernel field longer than the padded input of length {length}"
                        ),
                            )
                        })?;
                Act::Seq {
                    channels: c.out_channels,
                    length: out,
                }
            }
            Layer::ConvTranspose(c) => {
                let (channels, length) = seq("ConvTranspose")?;
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
                Act::Seq {
                    channels: c.out_channels,
                    length: out,
                }
            }
            Layer::MaxPool(p) | Layer::AveragePool(p) => {
                let is_max = matches!(layer, Layer::MaxPool(_));
                let (channels, length) = seq("pooling")?;
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
                    // A dilated window that only touches padding has no defined maximum.
                    for o in 0..out {
                        let start = (o * p.stride) as isize - begin as isize;
                        let touches = (0..p.kernel).any(|k| {
                            (0..length as isize).contains(&(start + (k * p.dilation) as isize))
                        });
                        if !touches {
                            return Err(invalid(
                                me,
                                format!("MaxPool window {o} covers only padding"),
                            ));
                        }
                    }
                }
                Act::Seq {
                    channels,
                    length: out,
                }
            }
            Layer::LpPool(p) => {
                let (channels, length) = seq("LpPool")?;
                check_window(me, p.kernel, p.stride, 1)?;
                check_pool_pads(me, p.kernel, p.padding)?;
                if p.p == 0 {
                    return Err(invalid(me, "LpPool p must be positive"));
                }
                let (out, _, _) = output_length(length, p.kernel, p.stride, 1, p.padding, false)
                    .ok_or_else(|| {
                        invalid(
                            me,
                            format!(
                                "LpPool window longer than the padded input of length {length}"
                            ),
                        )
                    })?;
                Act::Seq {
                    channels,
                    length: out,
                }
            }
            Layer::BatchNorm { epsilon } | Layer::InstanceNorm { epsilon } => {
                seq("normalization")?;
                check_epsilon(me, *epsilon)?;
                act
            }
            Layer::LayerNorm { axis, epsilon } => {
                seq("LayerNormalization")?;
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
                act
            }
            Layer::PRelu { per_channel } => {
                if *per_channel {
                    seq("PRelu with a [C, 1] slope")?;
                }
                act
            }
            Layer::Clip { min, max } => {
                if min.is_nan() || max.is_nan() || min > max {
                    return Err(invalid(me, format!("Clip min {min} above max {max}")));
                }
                act
            }
            Layer::Relu
            | Layer::LeakyRelu { .. }
            | Layer::Sigmoid
            | Layer::Tanh
            | Layer::Elu { .. }
            | Layer::Selu
            | Layer::HardSigmoid { .. }
            | Layer::HardSwish
            | Layer::Gelu
            | Layer::Softplus
            | Layer::Mish => act,
            Layer::Pad { mode, begin, end } => {
                let (channels, length) = seq("Pad")?;
                if *mode == PadMode::Reflect && (*begin >= length || *end >= length) {
                    return Err(invalid(
                        me,
                        format!("reflect pads [{begin}, {end}] must be below the length {length}"),
                    ));
                }
                Act::Seq {
                    channels,
                    length: length + begin + end,
                }
            }
            Layer::Residual { body } => {
                seq("Residual")?;
                let mut inner = act;
                for l in body {
                    inner = self.layer(l, inner, index)?;
                }
                if inner != act {
                    return Err(invalid(
                        me,
                        format!("residual body maps {act:?} to {inner:?}"),
                    ));
                }
                act
            }
            Layer::Parallel { merge, branches } => {
                seq("Parallel")?;
                if branches.len() < 2 {
                    return Err(invalid(me, "a parallel block needs two branches"));
                }
                let mut outs = Vec::new();
                for branch in branches {
                    let mut inner = act;
                    for l in branch {
                        inner = self.layer(l, inner, index)?;
                    }
                    outs.push(inner);
                }
                match merge {
                    Merge::Add | Merge::Mul => {
                        if outs.iter().any(|o| *o != outs[0]) {
                            return Err(invalid(
                                me,
                                format!("{merge:?} of branches shaped {outs:?}"),
                            ));
                        }
                        outs[0]
                    }
                    Merge::Concat => {
                        let mut channels = 0;
                        for o in &outs {
                            match *o {
                                Act::Seq {
                                    channels: c,
                                    length: l,
                                } if l == outs_length(&outs) => channels += c,
                                _ => {
                                    return Err(invalid(
                                        me,
                                        format!("Concat of branches shaped {outs:?}"),
                                    ))
                                }
                            }
                        }
                        Act::Seq {
                            channels,
                            length: outs_length(&outs),
                        }
                    }
                }
            }
            Layer::SqueezeExcite { reduced } => {
                seq("SqueezeExcite")?;
                if *reduced == 0 {
                    return Err(invalid(me, "squeeze-and-excitation needs a bottleneck"));
                }
                act
            }
            Layer::GlobalAveragePool | Layer::GlobalMaxPool => {
                let (channels, _) = seq("global pooling")?;
                Act::Seq {
                    channels,
                    length: 1,
                }
            }
            Layer::ReduceLength { keepdims, .. } => {
                let (channels, _) = seq("ReduceMean/ReduceMax")?;
                if *keepdims {
                    Act::Seq {
                        channels,
                        length: 1,
                    }
                } else {
                    Act::Flat { features: channels }
                }
            }
            Layer::Dense { out_features, .. } | Layer::MatMul { out_features } => {
                if *out_features == 0 {
                    return Err(invalid(me, "a head needs at least one output feature"));
                }
                match (layer, act) {
                    (Layer::MatMul { .. }, Act::Seq { channels, .. }) => Act::Seq {
                        channels,
                        length: *out_features,
                    },
                    _ => Act::Flat {
                        features: *out_features,
                    },
                }
            }
            Layer::Softmax { axis } => {
                let rank = match act {
                    Act::Seq { .. } => 3,
                    Act::Flat { .. } => 2,
                };
                if !(-rank..rank).contains(axis) {
                    return Err(invalid(me, format!("Softmax axis {axis} on rank {rank}")));
                }
                act
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
