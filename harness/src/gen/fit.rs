//! Turns raw choices into a valid model description by following the activation shape.

use super::raw::{RawConv, RawConvT, RawHead, RawLayer, RawModel, RawPool, RawWindow};
use crate::model::{output_length, Act, Conv, ConvTranspose, Layer, Layout, LpPool, Merge};
use crate::model::{ModelDesc, Negative, PadMode, Padding, Pool, Symbolic};

/// Most channels a fitted layer produces (keeps the f64 oracle fast).
const MAX_CHANNELS: usize = 16;

/// The model of raw choices, with at most `max_layers` layers in the main stack.
pub fn fit_model(raw: &RawModel, max_layers: usize) -> ModelDesc {
    let (batch, channels, mut length) = raw.dims;
    match raw.dims_special {
        1 => length = 1,
        2 => length = channels,
        _ => {}
    }
    let mut desc = ModelDesc::new(
        [batch, channels, length],
        Vec::new(),
        raw.opset,
        raw.weight_seed,
        raw.weights,
    );
    desc.layout = if raw.nlc { Layout::Nlc } else { Layout::Ncl };
    desc.symbolic = Symbolic {
        batch: raw.symbolic.0,
        length: raw.symbolic.1,
    };
    let mut f = Fitter {
        opset: raw.opset,
        c: channels,
        l: length,
        layers: Vec::new(),
    };
    for r in raw.layers.iter().take(max_layers) {
        let layer = f.layer(r);
        f.push(layer);
    }
    match raw.negative {
        Some((kind, extra)) => {
            let kind = Negative::ALL[kind as usize % Negative::ALL.len()];
            f.layers.push(negative_layer(kind, extra, f.c, f.l));
            desc.negative = Some(kind);
        }
        None => f.head(&raw.head),
    }
    desc.layers = f.layers;
    desc
}

/// The invalid layer of a negative case on a `c` x `l` input.
fn negative_layer(kind: Negative, extra: usize, c: usize, l: usize) -> Layer {
    let conv = |out_channels, kernel, group| {
        Layer::Conv(Conv {
            out_channels,
            kernel,
            stride: 1,
            dilation: 1,
            padding: Padding::Valid,
            group,
            bias: extra.is_multiple_of(2),
        })
    };
    match kind {
        Negative::KernelTooLong => conv(c, l + 1 + extra, 1),
        Negative::GroupNotDividing => {
            let g = (2..).find(|g| !c.is_multiple_of(*g)).unwrap_or(2);
            conv(g, 1, g)
        }
        Negative::WrongWeightShape => conv(c, 1 + extra.min(l - 1), 1),
        Negative::PoolPadsNotBelowKernel => {
            let kernel = 1 + extra;
            let pool = Pool {
                kernel,
                stride: 1,
                dilation: 1,
                padding: Padding::Explicit {
                    begin: kernel,
                    end: 0,
                },
                ceil_mode: false,
                count_include_pad: false,
                indices: false,
                unsqueeze_2d: false,
            };
            if extra.is_multiple_of(2) {
                Layer::MaxPool(pool)
            } else {
                Layer::AveragePool(pool)
            }
        }
    }
}

struct Fitter {
    opset: i64,
    c: usize,
    l: usize,
    layers: Vec<Layer>,
}

impl Fitter {
    /// Appends `layer` if it is valid on the current shape.
    fn push(&mut self, layer: Layer) {
        if let Some(Act::Seq { channels, length }) = self.shape_after(&layer) {
            self.c = channels;
            self.l = length;
            self.layers.push(layer);
        }
    }

    fn shape_after(&self, layer: &Layer) -> Option<Act> {
        shape_after(layer, self.c, self.l, self.opset)
    }

    fn layer(&self, r: &RawLayer) -> Layer {
        let (c, l) = (self.c, self.l);
        match r {
            RawLayer::Conv(rc) => Layer::Conv(fit_conv(rc, c, l)),
            RawLayer::ConvTranspose(rt) => Layer::ConvTranspose(fit_conv_t(rt, c, l)),
            RawLayer::Pool(rp) => fit_pool(rp, l, self.opset),
            RawLayer::Pointwise(p) => self.pointwise(p),
            RawLayer::Pad(mode, begin, end) => {
                let mode = match mode {
                    0 => PadMode::Constant,
                    1 if l > 1 => PadMode::Reflect,
                    _ => PadMode::Edge,
                };
                let cap = if mode == PadMode::Reflect { l - 1 } else { 3 };
                Layer::Pad {
                    mode,
                    begin: (*begin).min(cap),
                    end: (*end).min(cap),
                }
            }
            RawLayer::Residual(rc, act) => Layer::Residual {
                body: vec![
                    Layer::Conv(same_length_conv(rc, c, l, c)),
                    self.pointwise(act),
                ],
            },
            RawLayer::Parallel(merge, branches) => {
                let merge = match merge {
                    0 => Merge::Add,
                    1 => Merge::Mul,
                    _ => Merge::Concat,
                };
                let branches = branches
                    .iter()
                    .map(|b| {
                        let mut cin = c;
                        let mut out = Vec::new();
                        for (rc, act) in b {
                            let cout = match merge {
                                Merge::Concat => rc.out_channels.clamp(1, 8),
                                _ => c,
                            };
                            out.push(Layer::Conv(same_length_conv(rc, cin, l, cout)));
                            out.push(self.pointwise(act));
                            cin = cout;
                        }
                        out
                    })
                    .collect();
                Layer::Parallel { merge, branches }
            }
            // Its gate is a Mul of [N, C, L] by [N, C, 1], which opset 1-6 broadcasting (B a
            // run of A's dimensions) cannot write; a Sigmoid stands in.
            RawLayer::SqueezeExcite(_) if self.opset < 7 => Layer::Sigmoid,
            RawLayer::SqueezeExcite(r) => Layer::SqueezeExcite {
                reduced: (*r).min(c).max(1),
            },
        }
    }

    /// LayerNormalization exists from opset 17; before, an InstanceNormalization stands in.
    /// Exact Gelu is written with Erf before opset 20, and Erf exists from 9; before, a Tanh
    /// stands in.
    fn pointwise(&self, p: &Layer) -> Layer {
        match p {
            Layer::LayerNorm { epsilon, .. } if self.opset < 17 => {
                Layer::InstanceNorm { epsilon: *epsilon }
            }
            Layer::Gelu if self.opset < 9 => Layer::Tanh,
            other => other.clone(),
        }
    }

    /// Global pooling, linear and softmax head.
    fn head(&mut self, h: &RawHead) {
        let pool = match h.pool {
            1 => Some(Layer::GlobalAveragePool),
            2 => Some(Layer::GlobalMaxPool),
            3 | 4 => Some(Layer::ReduceLength {
                max: h.pool == 4,
                keepdims: h.keepdims,
            }),
            _ => None,
        };
        let mut flat = false;
        if let Some(p) = pool {
            flat = matches!(
                p,
                Layer::ReduceLength {
                    keepdims: false,
                    ..
                }
            );
            self.layers.push(p);
        }
        let out_features = h.out_features;
        match h.linear {
            1 | 2 => {
                self.layers.push(Layer::Dense {
                    out_features,
                    reshape: h.linear == 2,
                });
                flat = true;
            }
            3 => self.layers.push(Layer::MatMul { out_features }),
            _ => {}
        }
        if let Some(channels) = h.softmax {
            let axis = if channels && !flat { 1 } else { -1 };
            self.layers.push(Layer::Softmax { axis });
        }
    }
}

/// Shape after one layer on a `channels` x `length` input, if it is valid there.
fn shape_after(layer: &Layer, channels: usize, length: usize, opset: i64) -> Option<Act> {
    let probe = ModelDesc::new(
        [1, channels, length],
        vec![layer.clone()],
        opset,
        0,
        crate::model::WeightDist::Scaled,
    );
    probe.shapes().ok().and_then(|s| s.last().copied())
}

fn padding(w: &RawWindow, kernel: usize) -> Padding {
    // Explicit pads stay below the kernel: pools require it and it keeps convs meaningful.
    let cap = kernel.saturating_sub(1);
    match w.pad_mode {
        0 => Padding::Explicit {
            begin: w.begin.min(cap),
            end: w.begin.min(cap),
        },
        1 => Padding::Explicit {
            begin: w.begin.min(cap),
            end: w.end.min(cap),
        },
        2 => Padding::Valid,
        3 => Padding::SameUpper,
        _ => Padding::SameLower,
    }
}

/// Kernel, stride, dilation and padding that fit a `length` input, honouring the special
/// choices (kernel longer than the input, output length 1).
fn fit_window(w: &RawWindow, length: usize, ceil_mode: bool) -> (usize, usize, usize, Padding) {
    match w.special {
        1 => {
            // Kernel longer than the input, made valid by symmetric pads below the kernel.
            let kernel = length + 1 + w.begin % 3;
            let pad = (kernel - length).div_ceil(2);
            let padding = Padding::Explicit {
                begin: pad,
                end: pad,
            };
            return (kernel, w.stride, 1, padding);
        }
        2 => {
            // Output length 1: a VALID window with a stride past the remaining input.
            let kernel = w.kernel.min(length);
            return (kernel, (length - kernel + 1).max(1), 1, Padding::Valid);
        }
        _ => {}
    }
    let (mut kernel, mut dilation) = (w.kernel, w.dilation);
    loop {
        let pad = padding(w, kernel);
        if output_length(length, kernel, w.stride, dilation, pad, ceil_mode).is_some()
            || kernel == 1
        {
            return (kernel, w.stride, dilation, pad);
        }
        if dilation > 1 {
            dilation -= 1;
        } else {
            kernel -= 1;
        }
    }
}

fn group_of(mode: u8, channels: usize) -> usize {
    match mode {
        0 => 1,
        1 => channels,
        // The largest proper divisor above 1, if any.
        _ => (2..channels)
            .rev()
            .find(|g| channels.is_multiple_of(*g))
            .unwrap_or(1),
    }
}

/// Output channels near `wanted`, a multiple of `group`, at most [`MAX_CHANNELS`] (or one per
/// group).
fn out_channels(wanted: usize, group: usize) -> usize {
    let per_group = wanted
        .div_ceil(group)
        .clamp(1, (MAX_CHANNELS / group).max(1));
    per_group * group
}

fn fit_conv(rc: &RawConv, channels: usize, length: usize) -> Conv {
    let (kernel, stride, dilation, padding) = fit_window(&rc.window, length, false);
    let group = group_of(rc.group_mode, channels);
    Conv {
        out_channels: out_channels(rc.out_channels, group),
        kernel,
        stride,
        dilation,
        padding,
        group,
        bias: rc.bias,
    }
}

/// A conv that keeps the length: stride 1, odd kernel centred by symmetric pads or SAME_UPPER.
fn same_length_conv(rc: &RawConv, c: usize, l: usize, out: usize) -> Conv {
    let mut conv = fit_conv(rc, c, l);
    let k = conv.kernel | 1;
    let half = conv.dilation * (k - 1) / 2;
    conv.kernel = k;
    conv.stride = 1;
    conv.padding = if rc.window.pad_mode.is_multiple_of(2) {
        Padding::Explicit {
            begin: half,
            end: half,
        }
    } else {
        Padding::SameUpper
    };
    conv.out_channels = out;
    if !c.is_multiple_of(conv.group) || !out.is_multiple_of(conv.group) {
        conv.group = 1;
    }
    conv
}

fn fit_conv_t(rt: &RawConvT, channels: usize, length: usize) -> ConvTranspose {
    let w = &rt.conv.window;
    let (kernel, stride, dilation) = (w.kernel.min(5), w.stride, w.dilation.min(2));
    let group = group_of(rt.conv.group_mode, channels);
    let full = stride * (length - 1) + (kernel - 1) * dilation + 1;
    let mut output_padding = 0;
    let mut output_shape = None;
    let padding = match (rt.output_shape, w.pad_mode) {
        (Some(d), _) => {
            output_shape = Some(full - d.min(full - 1));
            Padding::Explicit { begin: 0, end: 0 }
        }
        // SAME's output length ignores output_padding, so the two are not combined.
        (None, 3) => Padding::SameUpper,
        (None, 4) => Padding::SameLower,
        (None, mode) => {
            output_padding = rt.output_padding % stride.max(dilation);
            let cap = (full + output_padding - 1) / 2;
            match mode {
                0 => Padding::Explicit {
                    begin: w.begin.min(cap),
                    end: w.begin.min(cap),
                },
                1 => Padding::Explicit {
                    begin: w.begin.min(cap),
                    end: w.end.min(cap),
                },
                _ => Padding::Valid,
            }
        }
    };
    ConvTranspose {
        out_channels: out_channels(rt.conv.out_channels, group),
        kernel,
        stride,
        dilation,
        padding,
        output_padding,
        output_shape,
        group,
        bias: rt.conv.bias,
    }
}

/// A pool fitted to a `length` input. Before opset 10 there is no ceil_mode and no MaxPool
/// dilation, before 8 no MaxPool indices output.
fn fit_pool(rp: &RawPool, length: usize, opset: i64) -> Layer {
    let max = rp.kind == 0;
    let mut w = RawWindow {
        dilation: if max && opset >= 10 {
            rp.window.dilation
        } else {
            1
        },
        ..rp.window.clone()
    };
    if opset < 10 && w.special == 3 {
        w.special = 0;
    }
    if rp.kind == 2 {
        // LpPool: no dilation, no ceil_mode (both appear only in opset 18).
        w.dilation = 1;
        if w.special == 3 {
            w.special = 0;
        }
        let (kernel, stride, _, padding) = fit_window(&w, length, false);
        return Layer::LpPool(LpPool {
            kernel,
            stride,
            padding,
            p: rp.p,
        });
    }
    // ceil_mode goes with explicit pads: with auto_pad the spec's formulas ignore it, and
    // runtimes disagree about that (onnxruntime honours it), so the combination is ambiguous.
    let mut ceil_mode = rp.ceil_mode && opset >= 10;
    if ceil_mode && w.pad_mode >= 2 {
        w.pad_mode = 1;
    }
    let (mut kernel, mut stride, mut dilation, mut padding) = if w.special == 3 {
        ceil_mode = true;
        match dropped_window(&w, length) {
            Some(found) => found,
            None => fit_window(&RawWindow { special: 0, ..w }, length, true),
        }
    } else {
        fit_window(&w, length, ceil_mode)
    };
    if !max
        && matches!(padding, Padding::Explicit { begin, end } if begin >= kernel || end >= kernel)
    {
        padding = Padding::Valid;
    }
    // ceil_mode only with explicit pads (see above), whatever the special choice made.
    if !matches!(padding, Padding::Explicit { .. }) {
        ceil_mode = false;
    }
    let mut pool = Pool {
        kernel,
        stride,
        dilation,
        padding,
        ceil_mode,
        // count_include_pad exists from opset 7; before, padding is never counted.
        count_include_pad: rp.count_include_pad && opset >= 7,
        indices: max && rp.indices && opset >= 8,
        unsqueeze_2d: rp.unsqueeze_2d,
    };
    let layer = |p: Pool| {
        if max {
            Layer::MaxPool(p)
        } else {
            Layer::AveragePool(p)
        }
    };
    // A dilated max window that only sees padding is refused by shapes(); drop the dilation then.
    if shape_after(&layer(pool), 1, length, 21).is_none() {
        dilation = 1;
        pool = Pool { dilation, ..pool };
    }
    if shape_after(&layer(pool), 1, length, 21).is_none() {
        (kernel, stride) = (1, 1);
        pool = Pool {
            kernel,
            stride,
            padding: Padding::Valid,
            ..pool
        };
    }
    layer(pool)
}

/// A ceil_mode window (kernel, stride, pads) whose last window starts in the right padding,
/// searched from the raw choices.
fn dropped_window(w: &RawWindow, length: usize) -> Option<(usize, usize, usize, Padding)> {
    for kernel in (2..=5).map(|k| (k + w.kernel) % 4 + 2) {
        for stride in (2..=4).map(|s| (s + w.stride) % 3 + 2) {
            for begin in 0..kernel {
                for end in 0..kernel {
                    let padding = Padding::Explicit { begin, end };
                    let pool = Pool {
                        kernel,
                        stride,
                        dilation: 1,
                        padding,
                        ceil_mode: true,
                        count_include_pad: false,
                        indices: false,
                        unsqueeze_2d: false,
                    };
                    if output_length(length, kernel, stride, 1, padding, true).is_some()
                        && crate::model::drops_window(length, &pool)
                    {
                        return Some((kernel, stride, 1, padding));
                    }
                }
            }
        }
    }
    None
}
