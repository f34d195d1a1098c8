//! The generator: random valid 1D CNNs and their inputs, as proptest strategies.
//!
//! Strategies draw raw layer choices; [`fit`] then turns them into a valid [`ModelDesc`] by
//! following the activation shape and adjusting what does not fit (a kernel too long for the
//! remaining length, a group that does not divide the channels). Drawing raw choices keeps the
//! strategies simple and lets proptest shrink any of them without ever producing an invalid
//! model. Case `i` of base seed `S` runs the strategy on a [`TestRunner`] seeded from `(S, i)`,
//! so it is the same bit for bit everywhere.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};

use crate::model::{output_length, Act, Conv, Layer, ModelDesc, Padding, Pool, WeightDist};
use crate::onnx::emit::{DEFAULT_OPSET, INPUT};
use crate::seed::{self, Draw};
use crate::tensor::{Named, Tensor};

/// Knobs of the generator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenConfig {
    /// Most layers in the main stack (heads and residual bodies count once).
    pub max_layers: usize,
    /// Opset of emitted models.
    pub opset: i64,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            max_layers: 8,
            opset: DEFAULT_OPSET,
        }
    }
}

/// How input values are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputDist {
    /// Standard normal.
    Normal,
    /// Uniform in [-100, 100).
    WideUniform,
    /// Integers in -4..=4, exact in every precision.
    SmallInt,
    /// Normal scaled by 1e-3.
    NearZero,
    /// Normal scaled by 1e3.
    Large,
}

impl InputDist {
    fn draw(self, rng: &mut impl Draw) -> f32 {
        (match self {
            InputDist::Normal => rng.normal(),
            InputDist::WideUniform => rng.uniform(-100.0, 100.0),
            InputDist::SmallInt => rng.int(-4, 4) as f64,
            InputDist::NearZero => rng.normal() * 1e-3,
            InputDist::Large => rng.normal() * 1e3,
        }) as f32
    }
}

/// One generated case: a model and how to draw its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Stable id, `s{seed}-i{index}`.
    pub id: String,
    /// Base seed of the run.
    pub base_seed: u64,
    /// Index within the run.
    pub index: u64,
    /// Seed of this case, derived from (base seed, index).
    pub seed: u64,
    /// The model.
    pub model: ModelDesc,
    /// Input distribution.
    pub input: InputDist,
}

impl Case {
    /// The input tensors, drawn from the case seed.
    pub fn inputs(&self) -> Vec<Named> {
        let mut rng = seed::rng(self.seed, "inputs");
        let shape = self.model.input_shape();
        let data = (0..shape.iter().product::<usize>())
            .map(|_| self.input.draw(&mut rng))
            .collect();
        let tensor = Tensor::f32(&shape, data).expect("shape matches data");
        vec![Named {
            name: INPUT.into(),
            tensor,
        }]
    }
}

/// Generates case `index` of base seed `base`.
pub fn generate(base: u64, index: u64, cfg: &GenConfig) -> Case {
    let (model, input) = tree(base, index, cfg).current();
    case_from(base, index, model, input)
}

/// The proptest value tree of case `index`: its current value is the case, and
/// `simplify`/`complicate` walk proptest's shrinking of it (used by reduction).
pub fn tree(
    base: u64,
    index: u64,
    cfg: &GenConfig,
) -> Box<dyn ValueTree<Value = (ModelDesc, InputDist)>> {
    let seed = seed::case_seed(base, index);
    let mut runner = TestRunner::new_with_rng(Config::default(), seed::rng(seed, "model"));
    let strategy = (model_strategy(cfg.clone()), input_strategy()).boxed();
    strategy
        .new_tree(&mut runner)
        .expect("the generator's strategies never reject")
}

/// The case of `index` with a given model and input distribution (its seed still derives
/// from the base seed and index, so inputs stay those of the case).
pub fn case_from(base: u64, index: u64, model: ModelDesc, input: InputDist) -> Case {
    Case {
        id: format!("s{base}-i{index}"),
        base_seed: base,
        index,
        seed: seed::case_seed(base, index),
        model,
        input,
    }
}

/// Strategy over input distributions.
pub fn input_strategy() -> impl Strategy<Value = InputDist> {
    prop_oneof![
        4 => Just(InputDist::Normal),
        2 => Just(InputDist::WideUniform),
        2 => Just(InputDist::SmallInt),
        1 => Just(InputDist::NearZero),
        1 => Just(InputDist::Large),
    ]
}

/// Raw, unchecked choices for one layer; [`fit`] makes them valid.
#[derive(Debug, Clone)]
pub enum RawLayer {
    /// A convolution.
    Conv(RawConv),
    /// A pooling layer.
    Pool {
        /// MaxPool rather than AveragePool.
        max: bool,
        /// Window, stride, dilation, padding choices.
        window: RawWindow,
        /// ceil_mode.
        ceil_mode: bool,
        /// count_include_pad.
        count_include_pad: bool,
    },
    /// An element-wise activation or BatchNormalization.
    Pointwise(Layer),
    /// A residual block around a same-shape convolution and an activation.
    Residual(RawConv, Layer),
}

/// Raw convolution choices.
#[derive(Debug, Clone)]
pub struct RawConv {
    out_channels: usize,
    window: RawWindow,
    /// 0: group 1, 1: depthwise, 2: in between.
    group_mode: u8,
    bias: bool,
}

/// Raw window choices shared by convolutions and pools.
#[derive(Debug, Clone)]
pub struct RawWindow {
    kernel: usize,
    stride: usize,
    dilation: usize,
    /// 0: explicit symmetric, 1: explicit asymmetric, 2: VALID, 3: SAME_UPPER, 4: SAME_LOWER.
    pad_mode: u8,
    begin: usize,
    end: usize,
}

fn window_strategy() -> impl Strategy<Value = RawWindow> {
    (
        1usize..=7,
        prop_oneof![3 => Just(1usize), 2 => 2usize..=3],
        prop_oneof![3 => Just(1usize), 1 => 2usize..=4],
        0u8..=4,
        0usize..=3,
        0usize..=3,
    )
        .prop_map(
            |(kernel, stride, dilation, pad_mode, begin, end)| RawWindow {
                kernel,
                stride,
                dilation,
                pad_mode,
                begin,
                end,
            },
        )
}

fn conv_strategy() -> impl Strategy<Value = RawConv> {
    (
        1usize..=16,
        window_strategy(),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        any::<bool>(),
    )
        .prop_map(|(out_channels, window, group_mode, bias)| RawConv {
            out_channels,
            window,
            group_mode,
            bias,
        })
}

fn pointwise_strategy() -> impl Strategy<Value = Layer> {
    prop_oneof![
        3 => Just(Layer::Relu),
        1 => prop::sample::select(vec![0.01f32, 0.1, 0.2, 0.3]).prop_map(|alpha| Layer::LeakyRelu { alpha }),
        1 => Just(Layer::Sigmoid),
        1 => Just(Layer::Tanh),
        1 => prop::sample::select(vec![(0.0f32, 6.0f32), (-1.0, 1.0), (-0.5, 2.0)])
            .prop_map(|(min, max)| Layer::Clip { min, max }),
        2 => prop::sample::select(vec![1e-5f32, 1e-3]).prop_map(|epsilon| Layer::BatchNorm { epsilon }),
    ]
}

fn raw_layer_strategy() -> impl Strategy<Value = RawLayer> {
    prop_oneof![
        5 => conv_strategy().prop_map(RawLayer::Conv),
        3 => (any::<bool>(), window_strategy(), prop::bool::weighted(0.3), any::<bool>()).prop_map(
            |(max, window, ceil_mode, count_include_pad)| RawLayer::Pool { max, window, ceil_mode, count_include_pad }
        ),
        4 => pointwise_strategy().prop_map(RawLayer::Pointwise),
        1 => (conv_strategy(), pointwise_strategy()).prop_map(|(c, a)| RawLayer::Residual(c, a)),
    ]
}

/// The head: 0 none, 1 GlobalAveragePool, 2 GlobalAveragePool + Dense, 3 Dense.
fn head_strategy() -> impl Strategy<Value = (u8, usize)> {
    (
        prop_oneof![4 => Just(0u8), 1 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
        1usize..=10,
    )
}

/// Strategy over valid model descriptions.
pub fn model_strategy(cfg: GenConfig) -> impl Strategy<Value = ModelDesc> {
    let dims = (
        prop_oneof![6 => Just(1usize), 1 => 2usize..=4],
        prop_oneof![2 => 1usize..=4, 2 => 5usize..=8, 1 => 9usize..=16],
        prop_oneof![1 => 1usize..=8, 4 => 9usize..=48, 2 => 49usize..=128, 1 => 129usize..=256],
    );
    let max_layers = cfg.max_layers.max(1);
    (
        dims,
        prop::collection::vec(raw_layer_strategy(), 1..=max_layers),
        head_strategy(),
        prop_oneof![3 => Just(WeightDist::Scaled), 1 => Just(WeightDist::SmallInt)],
        any::<u64>(),
    )
        .prop_map(
            move |((batch, channels, length), raw, head, weights, weight_seed)| {
                let mut desc = ModelDesc {
                    batch,
                    channels,
                    length,
                    layers: Vec::new(),
                    opset: cfg.opset,
                    weight_seed,
                    weights,
                };
                desc.layers = fit(&raw, head, channels, length, max_layers);
                desc
            },
        )
}

/// Turns raw choices into valid layers for an input of `channels` x `length`.
pub fn fit(
    raw: &[RawLayer],
    head: (u8, usize),
    channels: usize,
    length: usize,
    max_layers: usize,
) -> Vec<Layer> {
    let mut layers = Vec::new();
    let (mut c, mut l) = (channels, length);
    for r in raw.iter().take(max_layers) {
        let layer = match r {
            RawLayer::Conv(rc) => Layer::Conv(fit_conv(rc, c, l)),
            RawLayer::Pool {
                max,
                window,
                ceil_mode,
                count_include_pad,
            } => {
                let pool = fit_pool(window, *max, *ceil_mode, *count_include_pad, l);
                if *max {
                    Layer::MaxPool(pool)
                } else {
                    Layer::AveragePool(pool)
                }
            }
            RawLayer::Pointwise(p) => p.clone(),
            RawLayer::Residual(rc, act) => {
                let mut conv = fit_conv(rc, c, l);
                // Same shape: stride 1, odd kernel centred by symmetric pads, C output channels.
                let k = conv.kernel | 1;
                let half = conv.dilation * (k - 1) / 2;
                conv.kernel = k;
                conv.stride = 1;
                conv.padding = if rc.window.pad_mode % 2 == 0 {
                    Padding::Explicit {
                        begin: half,
                        end: half,
                    }
                } else {
                    Padding::SameUpper
                };
                conv.out_channels = c;
                if c % conv.group != 0 {
                    conv.group = 1;
                }
                Layer::Residual {
                    body: vec![Layer::Conv(conv), act.clone()],
                }
            }
        };
        if let Some(Act::Seq { channels, length }) = shape_after(&layer, c, l) {
            c = channels;
            l = length;
            layers.push(layer);
        }
    }
    match head.0 {
        1 => layers.push(Layer::GlobalAveragePool),
        2 => layers.extend([
            Layer::GlobalAveragePool,
            Layer::Dense {
                out_features: head.1,
            },
        ]),
        3 => layers.push(Layer::Dense {
            out_features: head.1,
        }),
        _ => {}
    }
    layers
}

fn shape_after(layer: &Layer, channels: usize, length: usize) -> Option<Act> {
    let probe = ModelDesc {
        batch: 1,
        channels,
        length,
        layers: vec![layer.clone()],
        opset: DEFAULT_OPSET,
        weight_seed: 0,
        weights: WeightDist::Scaled,
    };
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

/// Shrinks dilation, then kernel, until the window fits the padded length.
fn fit_window(w: &RawWindow, length: usize, ceil_mode: bool) -> (usize, usize, Padding) {
    let (mut kernel, mut dilation) = (w.kernel, w.dilation);
    loop {
        let pad = padding(w, kernel);
        if output_length(length, kernel, w.stride, dilation, pad, ceil_mode).is_some()
            || kernel == 1
        {
            return (kernel, dilation, pad);
        }
        if dilation > 1 {
            dilation -= 1;
        } else {
            kernel -= 1;
        }
    }
}

fn fit_conv(rc: &RawConv, channels: usize, length: usize) -> Conv {
    let (kernel, dilation, padding) = fit_window(&rc.window, length, false);
    let group = match rc.group_mode {
        0 => 1,
        1 => channels,
        // The largest proper divisor above 1, if any.
        _ => (2..channels)
            .rev()
            .find(|g| channels.is_multiple_of(*g))
            .unwrap_or(1),
    };
    // Channels stay at 16 or below (32 for a depthwise multiplier of 2 on 16 channels is not
    // reached: the multiplier is 1 above 8 channels), which keeps the f64 oracle fast.
    let per_group = rc
        .out_channels
        .div_ceil(group)
        .clamp(1, (16 / group).max(1));
    let out_channels = per_group * group;
    Conv {
        out_channels,
        kernel,
        stride: rc.window.stride,
        dilation,
        padding,
        group,
        bias: rc.bias,
    }
}

fn fit_pool(
    w: &RawWindow,
    max: bool,
    ceil_mode: bool,
    count_include_pad: bool,
    length: usize,
) -> Pool {
    let mut w = RawWindow {
        dilation: if max { w.dilation } else { 1 },
        ..w.clone()
    };
    // ceil_mode goes with explicit pads: with auto_pad the spec's formulas ignore it, and
    // runtimes disagree about that (onnxruntime honours it), so the combination is ambiguous.
    if ceil_mode && w.pad_mode >= 2 {
        w.pad_mode = 1;
    }
    let (kernel, mut dilation, padding) = fit_window(&w, length, ceil_mode);
    let mut pool = Pool {
        kernel,
        stride: w.stride,
        dilation,
        padding,
        ceil_mode,
        count_include_pad,
    };
    // A dilated max window that only sees padding is refused by shapes(); drop the dilation then.
    if max && shape_after(&Layer::MaxPool(pool), 1, length).is_none() {
        dilation = 1;
        pool = Pool { dilation, ..pool };
    }
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_the_same_case() {
        let cfg = GenConfig::default();
        for i in 0..50 {
            let a = generate(3, i, &cfg);
            assert_eq!(a, generate(3, i, &cfg));
            assert_eq!(a.inputs(), generate(3, i, &cfg).inputs());
        }
        assert_ne!(generate(3, 1, &cfg).model, generate(4, 1, &cfg).model);
    }

    #[test]
    fn every_generated_model_is_valid_and_within_limits() {
        let cfg = GenConfig::default();
        for i in 0..2000 {
            let case = generate(0, i, &cfg);
            let shapes = case
                .model
                .shapes()
                .unwrap_or_else(|e| panic!("{}: {e}: {:?}", case.id, case.model));
            assert!(!case.model.layers.is_empty() || shapes.is_empty());
            assert!(case.model.depth() <= 2 * cfg.max_layers + 2, "{}", case.id);
        }
    }

    #[test]
    fn the_generator_reaches_the_attribute_classes_of_the_first_op_set() {
        let cfg = GenConfig::default();
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..1000 {
            for class in generate(0, i, &cfg).model.classes() {
                *seen.entry(class).or_default() += 1;
            }
        }
        for class in [
            "Conv.auto_pad=NOTSET",
            "Conv.auto_pad=VALID",
            "Conv.auto_pad=SAME_UPPER",
            "Conv.auto_pad=SAME_LOWER",
            "Conv.pads=symmetric",
            "Conv.pads=asymmetric",
            "Conv.group=1",
            "Conv.group=depthwise",
            "Conv.group=between",
            "Conv.bias=0",
            "Conv.bias=1",
            "Conv.dilations>1",
            "Conv.strides>1",
            "MaxPool.ceil_mode=1",
            "MaxPool.dilations>1",
            "AveragePool.ceil_mode=1",
            "AveragePool.count_include_pad=0",
            "AveragePool.count_include_pad=1",
            "AveragePool.pads=asymmetric",
            "BatchNormalization",
            "Relu",
            "LeakyRelu",
            "Sigmoid",
            "Tanh",
            "Clip",
            "Add.residual",
            "GlobalAveragePool",
            "Gemm",
            "shape.N>1",
            "shape.C=1",
            "shape.L=1",
        ] {
            let n = seen.get(class).copied().unwrap_or(0);
            assert!(
                n >= 5,
                "{class} generated {n} times in 1000 cases; seen {seen:?}"
            );
        }
    }
}
