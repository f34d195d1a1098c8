//! Raw, unchecked choices and the proptest strategies that draw them. The weights of
//! `prop_oneof!` set each class's share in the default distribution (docs/generator.md, "Coverage").

use proptest::prelude::*;

use crate::model::{Layer, WeightDist};

/// Raw choices of a whole model.
#[derive(Debug, Clone)]
pub struct RawModel {
    /// Batch, channels, length.
    pub dims: (usize, usize, usize),
    /// 0: as drawn, 1: length 1, 2: length equal to the channels.
    pub dims_special: u8,
    /// Layers of the main stack.
    pub layers: Vec<RawLayer>,
    /// The head.
    pub head: RawHead,
    /// Weight distribution.
    pub weights: WeightDist,
    /// Weight seed.
    pub weight_seed: u64,
    /// Opset.
    pub opset: i64,
    /// Keras/TensorFlow `[N, L, C]` layout.
    pub nlc: bool,
    /// Symbolic batch and length.
    pub symbolic: (bool, bool),
    /// Negative case: which kind and a free parameter.
    pub negative: Option<(u8, usize)>,
}

/// Raw choices for one layer.
#[derive(Debug, Clone)]
pub enum RawLayer {
    /// A convolution.
    Conv(RawConv),
    /// A transposed convolution.
    ConvTranspose(RawConvT),
    /// A pooling layer.
    Pool(RawPool),
    /// An element-wise activation or a normalization.
    Pointwise(Layer),
    /// Pad on the length axis: mode (0 constant, 1 reflect, 2 edge), begin, end.
    Pad(u8, usize, usize),
    /// A residual block around a same-shape convolution and an activation.
    Residual(RawConv, Layer),
    /// A series-parallel block: merge (0 Add, 1 Mul, 2 Concat) and branches of
    /// (same-length convolution, activation) steps.
    Parallel(u8, Vec<Vec<(RawConv, Layer)>>),
    /// Squeeze-and-excitation with this bottleneck.
    SqueezeExcite(usize),
}

/// Raw convolution choices.
#[derive(Debug, Clone)]
pub struct RawConv {
    pub out_channels: usize,
    pub window: RawWindow,
    /// 0: group 1, 1: depthwise, 2: in between.
    pub group_mode: u8,
    pub bias: bool,
}

/// Raw transposed-convolution choices.
#[derive(Debug, Clone)]
pub struct RawConvT {
    pub conv: RawConv,
    pub output_padding: usize,
    /// Some(d): `output_shape` = full length minus d.
    pub output_shape: Option<usize>,
}

/// Raw pooling choices.
#[derive(Debug, Clone)]
pub struct RawPool {
    /// 0 MaxPool, 1 AveragePool, 2 LpPool.
    pub kind: u8,
    pub window: RawWindow,
    pub ceil_mode: bool,
    pub count_include_pad: bool,
    pub indices: bool,
    pub unsqueeze_2d: bool,
    pub p: u8,
}

/// Raw window choices shared by convolutions and pools.
#[derive(Debug, Clone)]
pub struct RawWindow {
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    /// 0: explicit symmetric, 1: explicit asymmetric, 2: VALID, 3: SAME_UPPER, 4: SAME_LOWER.
    pub pad_mode: u8,
    pub begin: usize,
    pub end: usize,
    /// 0: as drawn; 1: kernel longer than the input (pads make it valid); 2: output length 1;
    /// 3: (pools) a ceil_mode window that starts in the right padding.
    pub special: u8,
}

/// Raw head choices.
#[derive(Debug, Clone)]
pub struct RawHead {
    /// 0 none, 1 GlobalAveragePool, 2 GlobalMaxPool, 3 ReduceMean, 4 ReduceMax.
    pub pool: u8,
    pub keepdims: bool,
    /// 0 none, 1 Flatten + Gemm, 2 Reshape + Gemm, 3 MatMul.
    pub linear: u8,
    pub out_features: usize,
    /// Softmax: None, or over channels (true) / the last axis (false).
    pub softmax: Option<bool>,
}

fn window_strategy() -> impl Strategy<Value = RawWindow> {
    (
        1usize..=7,
        prop_oneof![3 => Just(1usize), 2 => 2usize..=3],
        prop_oneof![3 => Just(1usize), 1 => 2usize..=4],
        0u8..=4,
        0usize..=3,
        0usize..=3,
        prop_oneof![20 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8), 3 => Just(3u8)],
    )
        .prop_map(
            |(kernel, stride, dilation, pad_mode, begin, end, special)| RawWindow {
                kernel,
                stride,
                dilation,
                pad_mode,
                begin,
                end,
                special,
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

fn conv_t_strategy() -> impl Strategy<Value = RawConvT> {
    (
        conv_strategy(),
        0usize..=2,
        prop::option::weighted(0.25, 0usize..=2),
    )
        .prop_map(|(conv, output_padding, output_shape)| RawConvT {
            conv,
            output_padding,
            output_shape,
        })
}

fn pool_strategy() -> impl Strategy<Value = RawPool> {
    (
        prop_oneof![5 => Just(0u8), 5 => Just(1u8), 1 => Just(2u8)],
        window_strategy(),
        prop::bool::weighted(0.3),
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.15),
        1u8..=2,
    )
        .prop_map(
            |(kind, window, ceil_mode, count_include_pad, indices, unsqueeze_2d, p)| RawPool {
                kind,
                window,
                ceil_mode,
                count_include_pad,
                indices,
                unsqueeze_2d,
                p,
            },
        )
}

/// Element-wise activations and normalizations.
pub fn pointwise_strategy() -> impl Strategy<Value = Layer> {
    prop_oneof![
        3 => Just(Layer::Relu),
        1 => prop::sample::select(vec![0.01f32, 0.1, 0.2, 0.3]).prop_map(|alpha| Layer::LeakyRelu { alpha }),
        1 => any::<bool>().prop_map(|per_channel| Layer::PRelu { per_channel }),
        1 => Just(Layer::Sigmoid),
        1 => Just(Layer::Tanh),
        1 => prop::sample::select(vec![1.0f32, 0.5]).prop_map(|alpha| Layer::Elu { alpha }),
        1 => Just(Layer::Selu),
        1 => prop::sample::select(vec![(0.2f32, 0.5f32), (0.5, 0.25)])
            .prop_map(|(alpha, beta)| Layer::HardSigmoid { alpha, beta }),
        1 => Just(Layer::HardSwish),
        1 => Just(Layer::Gelu),
        1 => Just(Layer::Softplus),
        1 => Just(Layer::Mish),
        1 => prop::sample::select(vec![(0.0f32, 6.0f32), (-1.0, 1.0), (-0.5, 2.0)])
            .prop_map(|(min, max)| Layer::Clip { min, max }),
        2 => prop::sample::select(vec![1e-5f32, 1e-3]).prop_map(|epsilon| Layer::BatchNorm { epsilon }),
        1 => prop::sample::select(vec![1e-5f32, 1e-3]).prop_map(|epsilon| Layer::InstanceNorm { epsilon }),
        1 => (prop::sample::select(vec![-1i64, 1]), prop::sample::select(vec![1e-5f32, 1e-3]))
            .prop_map(|(axis, epsilon)| Layer::LayerNorm { axis, epsilon }),
    ]
}

fn branch_strategy() -> impl Strategy<Value = Vec<(RawConv, Layer)>> {
    prop::collection::vec((conv_strategy(), pointwise_strategy()), 0..=1)
}

fn raw_layer_strategy() -> impl Strategy<Value = RawLayer> {
    prop_oneof![
        10 => conv_strategy().prop_map(RawLayer::Conv),
        3 => conv_t_strategy().prop_map(RawLayer::ConvTranspose),
        7 => pool_strategy().prop_map(RawLayer::Pool),
        10 => pointwise_strategy().prop_map(RawLayer::Pointwise),
        2 => (0u8..=2, 0usize..=3, 0usize..=3).prop_map(|(m, b, e)| RawLayer::Pad(m, b, e)),
        2 => (conv_strategy(), pointwise_strategy()).prop_map(|(c, a)| RawLayer::Residual(c, a)),
        3 => (0u8..=2, prop::collection::vec(branch_strategy(), 2..=3))
            .prop_map(|(m, b)| RawLayer::Parallel(m, b)),
        1 => (1usize..=4).prop_map(RawLayer::SqueezeExcite),
    ]
}

fn head_strategy() -> impl Strategy<Value = RawHead> {
    (
        prop_oneof![5 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)],
        any::<bool>(),
        prop_oneof![4 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        1usize..=10,
        prop::option::weighted(0.2, any::<bool>()),
    )
        .prop_map(|(pool, keepdims, linear, out_features, softmax)| RawHead {
            pool,
            keepdims,
            linear,
            out_features,
            softmax,
        })
}

/// Strategy over raw models, each with an opset drawn from `opsets` (inclusive).
pub fn model_strategy(opsets: (i64, i64)) -> impl Strategy<Value = RawModel> {
    let dims = (
        prop_oneof![6 => Just(1usize), 1 => 2usize..=4],
        prop_oneof![2 => 1usize..=4, 2 => 5usize..=8, 1 => 9usize..=16],
        prop_oneof![1 => 1usize..=8, 4 => 9usize..=48, 2 => 49usize..=128, 1 => 129usize..=256],
        prop_oneof![18 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
    );
    let opset = match opsets {
        (lo, hi) if lo == hi => Just(lo).boxed(),
        (lo, hi) => (lo..=hi).boxed(),
    };
    let model = (
        prop_oneof![3 => Just(WeightDist::Scaled), 1 => Just(WeightDist::SmallInt)],
        any::<u64>(),
        opset,
        prop::bool::weighted(0.25),
        (prop::bool::weighted(0.15), prop::bool::weighted(0.15)),
        prop::option::weighted(0.03, (0u8..=3, 0usize..=2)),
    );
    (
        dims,
        // Mostly short stacks: layers here cost more than in the first op set (branches,
        // Transposes of the NLC layout, decompositions), and short models keep the throughput.
        prop_oneof![
            3 => prop::collection::vec(raw_layer_strategy(), 1..=4),
            1 => prop::collection::vec(raw_layer_strategy(), 5..=8),
        ],
        head_strategy(),
        model,
    )
        .prop_map(
            |(
                (batch, channels, length, dims_special),
                layers,
                head,
                (weights, weight_seed, opset, nlc, symbolic, negative),
            )| RawModel {
                dims: (batch, channels, length),
                dims_special,
                layers,
                head,
                weights,
                weight_seed,
                opset,
                nlc,
                symbolic,
                negative,
            },
        )
}
