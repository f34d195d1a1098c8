//! Coverage classes: which corners of the catalogue a model exercises
//! (`Conv.auto_pad=SAME_LOWER`, `AveragePool.ceil_mode=1`, `shape.L=1`, patterns of layers).

use super::{Act, Conv, Layer, ModelDesc, Padding, WeightDist};

impl ModelDesc {
    /// Coverage classes this model exercises, such as `Conv.auto_pad=SAME_LOWER` or
    /// `AveragePool.ceil_mode=1`; sorted, each once.
    pub fn classes(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        if self.batch > 1 {
            out.insert("shape.N>1".to_string());
        }
        if self.channels == 1 {
            out.insert("shape.C=1".to_string());
        }
        if self.length == 1 {
            out.insert("shape.L=1".to_string());
        }
        out.insert(format!(
            "weights={}",
            match self.weights {
                WeightDist::Scaled => "scaled",
                WeightDist::SmallInt => "small-int",
            }
        ));
        out.insert(format!("opset={}", self.opset));
        if let Ok(shapes) = self.shapes() {
            let mut act = Act::Seq {
                channels: self.channels,
                length: self.length,
            };
            for (layer, next) in self.layers.iter().zip(shapes) {
                layer_classes(layer, act, &mut out);
                act = next;
            }
        }
        out.extend(pattern_classes(&self.layers));
        out.into_iter().collect()
    }
}

/// Classes for sequences of layers that optimizers rewrite together. A conv that only
/// subsamples (stride > 1 with kernel 1, or a dilation that is a multiple of the stride) after
/// a SAME-padded conv (element-wise layers and residual branches in between) invites pushing
/// the subsampling upstream, which must recompute the SAME pads.
fn pattern_classes(layers: &[Layer]) -> Vec<String> {
    let is_same = |c: &Conv| matches!(c.padding, Padding::SameUpper | Padding::SameLower);
    let mut out = Vec::new();
    let mut same_upstream = false;
    for layer in layers {
        match layer {
            Layer::Conv(c) => {
                let subsamples = c.stride > 1 && (c.kernel == 1 || c.dilation % c.stride == 0);
                if same_upstream && subsamples {
                    out.push("pattern=SAME-conv->subsampling-conv".to_string());
                }
                same_upstream = is_same(c);
            }
            Layer::Residual { body } => {
                same_upstream |= body
                    .iter()
                    .any(|l| matches!(l, Layer::Conv(c) if is_same(c)));
            }
            Layer::BatchNorm { .. }
            | Layer::Relu
            | Layer::LeakyRelu { .. }
            | Layer::Sigmoid
            | Layer::Tanh
            | Layer::Clip { .. } => {}
            _ => same_upstream = false,
        }
    }
    out
}

fn layer_classes(layer: &Layer, act: Act, out: &mut std::collections::BTreeSet<String>) {
    let length = match act {
        Act::Seq { length, .. } => length,
        Act::Flat { .. } => 0,
    };
    let window = |op: &str,
                  kernel: usize,
                  stride: usize,
                  dilation: usize,
                  padding: Padding,
                  out: &mut std::collections::BTreeSet<String>| {
        out.insert(format!("{op}.auto_pad={}", padding.auto_pad()));
        if let Padding::Explicit { begin, end } = padding {
            out.insert(format!(
                "{op}.pads={}",
                if begin == end {
                    "symmetric"
                } else {
                    "asymmetric"
                }
            ));
        }
        if stride > 1 {
            out.insert(format!("{op}.strides>1"));
        }
        if dilation > 1 {
            out.insert(format!("{op}.dilations>1"));
        }
        if kernel == 1 {
            out.insert(format!("{op}.kernel=1"));
        }
        if dilation * (kernel - 1) + 1 > length {
            out.insert(format!("{op}.kernel>L"));
        }
    };
    match layer {
        Layer::Conv(c) => {
            window("Conv", c.kernel, c.stride, c.dilation, c.padding, out);
            let channels = match act {
                Act::Seq { channels, .. } => channels,
                Act::Flat { .. } => 0,
            };
            let group = if c.group == 1 {
                "1"
            } else if c.group == channels && channels > 1 {
                "depthwise"
            } else {
                "between"
            };
            out.insert(format!("Conv.group={group}"));
            out.insert(format!("Conv.bias={}", u8::from(c.bias)));
        }
        Layer::MaxPool(p) | Layer::AveragePool(p) => {
            let op = layer.ops()[0];
            window(op, p.kernel, p.stride, p.dilation, p.padding, out);
            out.insert(format!("{op}.ceil_mode={}", u8::from(p.ceil_mode)));
            if op == "AveragePool" {
                out.insert(format!(
                    "AveragePool.count_include_pad={}",
                    u8::from(p.count_include_pad)
                ));
            }
        }
        Layer::Residual { body } => {
            out.insert("Add.residual".to_string());
            for l in body {
                layer_classes(l, act, out);
            }
        }
        other => {
            for op in other.ops() {
                out.insert(op.to_string());
            }
        }
    }
}
