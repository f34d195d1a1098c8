//! Small named cases for the edge cases of docs/edge-cases.md: one op or two, the exact attribute
//! combination that converters got wrong before.

use anyhow::Result;

use super::net::{ConvSpec, Net};
use super::{Built, InputKind};
use crate::onnx::proto::{attr, Dim};

fn f(n: usize) -> Dim {
    Dim::Fixed(n)
}

fn dims(shape: &[usize]) -> Vec<Dim> {
    shape.iter().copied().map(f).collect()
}

/// One small case: input `[n, c, l]` through `body`, output declared with `out` dims.
fn case(
    name: &str,
    represents: &str,
    source: &str,
    input: &[usize],
    body: impl FnOnce(&mut Net, &str) -> Result<(String, Vec<Dim>)>,
) -> Result<Built> {
    let seed = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut n = Net::new(name, seed, 17);
    let x = n.input("input", &dims(input));
    let (y, out) = body(&mut n, &x)?;
    let model = n.finish(&[(&y, out)]);
    let mut b = Built::new(
        name,
        represents,
        source,
        model,
        vec![("input", input.to_vec())],
    );
    b.input_kind = InputKind::Normal;
    Ok(b)
}

fn conv_case(
    name: &str,
    represents: &str,
    source: &str,
    input: [usize; 3],
    cout: usize,
    spec: ConvSpec,
    out_len: usize,
) -> Result<Built> {
    case(name, represents, source, &input, |n, x| {
        let y = n.conv(x, input[1], cout, spec)?;
        Ok((y, dims(&[input[0], cout, out_len])))
    })
}

fn pool_case(
    name: &str,
    represents: &str,
    source: &str,
    input: [usize; 3],
    op: &str,
    extra: Vec<tract_onnx::pb::AttributeProto>,
    out_len: usize,
) -> Result<Built> {
    case(name, represents, source, &input, |n, x| {
        let y = n.op(op, &[x], extra);
        Ok((y, dims(&[input[0], input[1], out_len])))
    })
}

/// Every edge case.
pub fn all() -> Result<Vec<Built>> {
    let k = |v: &[i64]| v.to_vec();
    Ok(vec![
        conv_case(
            "edge_conv_same_lower_dilated",
            "Conv auto_pad SAME_LOWER with dilation 2 (odd total pad goes first)",
            "onnxruntime refuses SAME with dilation ('Dilation not supported for SAME')",
            [1, 3, 17],
            4,
            ConvSpec::k(4).dilation(2).auto_pad("SAME_LOWER"),
            17,
        )?,
        conv_case(
            "edge_conv_same_upper_strided",
            "Conv auto_pad SAME_UPPER with stride 3 and an even kernel: output ceil(16/3) = 6",
            "docs/edge-cases.md: auto_pad modes",
            [1, 3, 16],
            5,
            ConvSpec::k(4).stride(3).auto_pad("SAME_UPPER"),
            6,
        )?,
        conv_case(
            "edge_conv_grouped",
            "grouped, not depthwise, conv: 6 -> 9 channels in 3 groups",
            "tensorflow #40044; onnx2tf #321, #782",
            [1, 6, 20],
            9,
            ConvSpec::k(3).group(3),
            18,
        )?,
        conv_case(
            "edge_conv_depthwise_no_bias",
            "depthwise conv (group = C = 8), k5 with pads [2, 2], no bias",
            "docs/edge-cases.md: depthwise, bias absent",
            [1, 8, 30],
            8,
            ConvSpec::k(5).pads(2, 2).group(8).no_bias(),
            30,
        )?,
        conv_case(
            "edge_conv_kernel_longer_than_length",
            "kernel 5 on a length-3 input, made valid by pads [1, 1]: one output position",
            "onnx2tf #443",
            [1, 2, 3],
            3,
            ConvSpec::k(5).pads(1, 1),
            1,
        )?,
        conv_case(
            "edge_conv_dilation_with_stride",
            "dilation 3 together with stride 2 and asymmetric pads [2, 1]",
            "onnx2tf #251; onnxruntime #2518; tensorflow #30315 (dilated Conv1D lowering)",
            [1, 4, 40],
            6,
            ConvSpec::k(3).dilation(3).stride(2).pads(2, 1),
            19,
        )?,
        case(
            "edge_length_one",
            "length-1 input (L = 1) through a k1 conv, Relu and GlobalAveragePool",
            "docs/edge-cases.md: degenerate sizes",
            &[2, 4, 1],
            |n, x| {
                let c = n.conv(x, 4, 3, ConvSpec::k(1))?;
                let r = n.unary("Relu", &c);
                Ok((n.unary("GlobalAveragePool", &r), dims(&[2, 3, 1])))
            },
        )?,
        conv_case(
            "edge_c_equals_l",
            "C == L = 8, where NCW/NWC heuristics cannot tell the layout",
            "onnx2tf PR #382",
            [1, 8, 8],
            8,
            ConvSpec::k(3).pads(1, 1),
            8,
        )?,
        pool_case(
            "edge_maxpool_ceil_right_padding",
            "MaxPool k3 s3 pads [0, 2] ceil_mode on length 14: rounding up gives 6 windows, but \
             the 6th would start in the right padding, so the spec drops it: 5",
            "onnx2tf PR #211; openvino #18731, #21067, #33369; onnx #5711",
            [1, 2, 14],
            "MaxPool",
            vec![
                attr::ints("kernel_shape", &k(&[3])),
                attr::ints("strides", &k(&[3])),
                attr::ints("pads", &k(&[0, 2])),
                attr::int("ceil_mode", 1),
            ],
            5,
        )?,
        pool_case(
            "edge_maxpool_ceil_last_window",
            "MaxPool k4 s3 pads [1, 2] ceil_mode on length 15: the extra window rounding up adds \
             starts inside the input and is kept: 6",
            "onnx2tf PR #211; onnx #5711",
            [1, 2, 15],
            "MaxPool",
            vec![
                attr::ints("kernel_shape", &k(&[4])),
                attr::ints("strides", &k(&[3])),
                attr::ints("pads", &k(&[1, 2])),
                attr::int("ceil_mode", 1),
            ],
            6,
        )?,
        pool_case(
            "edge_avgpool_count_include_pad_asym",
            "AveragePool k3 s2 pads [0, 2], count_include_pad and ceil_mode: the last window",
            "onnxruntime #16203, PR #27375",
            [1, 2, 11],
            "AveragePool",
            vec![
                attr::ints("kernel_shape", &k(&[3])),
                attr::ints("strides", &k(&[2])),
                attr::ints("pads", &k(&[0, 2])),
                attr::int("count_include_pad", 1),
                attr::int("ceil_mode", 1),
            ],
            6,
        )?,
        pool_case(
            "edge_maxpool_dilated_short",
            "MaxPool k2 dilation 3 on a length-5 input: two windows",
            "onnxruntime #1224",
            [1, 2, 5],
            "MaxPool",
            vec![
                attr::ints("kernel_shape", &k(&[2])),
                attr::ints("dilations", &k(&[3])),
            ],
            2,
        )?,
        case(
            "edge_maxpool_indices",
            "MaxPool with its Indices output (flat int64 indices into [N, C, L])",
            "docs/edge-cases.md: MaxPool with the Indices output",
            &[2, 3, 9],
            |n, x| {
                let v = "pooled";
                let i = "indices";
                n.op_into(
                    "MaxPool",
                    &[x],
                    &[v, i],
                    vec![
                        attr::ints("kernel_shape", &[3]),
                        attr::ints("strides", &[2]),
                        attr::ints("pads", &[1, 1]),
                    ],
                );
                // Both outputs are checked: the values as floats, the indices through a Cast.
                let fi = n.op("Cast", &[i], vec![attr::int("to", 1)]);
                let both = n.concat(&[v, &fi], 1);
                Ok((both, dims(&[2, 6, 5])))
            },
        )?,
        case(
            "edge_convtranspose_stride_pads_output_padding",
            "ConvTranspose k3 s2 pads [1, 1] output_padding 1: length (10-1)*2 - 2 + 3 + 1 = 20",
            "onnx2tf #56; onnxruntime #4698, #11927; openvino #31007, #33397",
            &[1, 4, 10],
            |n, x| {
                let y = n.conv_transpose(x, 4, 3, 3, 2, [1, 1], 1)?;
                Ok((y, dims(&[1, 3, 20])))
            },
        )?,
        case(
            "edge_convtranspose_same_upper",
            "ConvTranspose k4 s2 auto_pad SAME_UPPER: output length L * stride = 20",
            "onnxruntime #4698; openvino #33397",
            &[1, 3, 10],
            |n, x| {
                let w = n.weight("wt", &[3, 2, 4], 6, 2f64.sqrt())?;
                let y = n.op(
                    "ConvTranspose",
                    &[x, &w],
                    vec![
                        attr::ints("kernel_shape", &[4]),
                        attr::ints("strides", &[2]),
                        attr::string("auto_pad", "SAME_UPPER"),
                    ],
                );
                Ok((y, dims(&[1, 2, 20])))
            },
        )?,
        case(
            "edge_conv_bn_extreme_stats",
            "Conv then BatchNormalization with tiny variances and large scales, where folding \
             BN into the conv weights loses precision",
            "onnx/optimizer #255",
            &[1, 4, 32],
            |n, x| {
                let c = n.conv(x, 4, 6, ConvSpec::k(3).pads(1, 1))?;
                let gamma = n.uniform("bn_scale", &[6], 20.0, 50.0)?;
                let beta = n.uniform("bn_bias", &[6], -1.0, 1.0)?;
                let mean = n.uniform("bn_mean", &[6], -0.5, 0.5)?;
                let var = n.uniform("bn_var", &[6], 1e-4, 1e-3)?;
                let y = n.op(
                    "BatchNormalization",
                    &[&c, &gamma, &beta, &mean, &var],
                    vec![attr::float("epsilon", 1e-5)],
                );
                Ok((y, dims(&[1, 6, 32])))
            },
        )?,
        symbolic_batch_strided()?,
        case(
            "edge_nlc_transposes_around_conv_relu",
            "Keras/TensorFlow export pattern on [N, L, C] data: Transpose, Conv, Transpose back, \
             Relu, Transpose again (as before a pool)",
            "docs/edge-cases.md: layout; found by this corpus (keras_conv1d_nlc) on OpenVINO",
            &[1, 20, 2],
            |n, x| {
                let t = n.transpose(x, &[0, 2, 1]);
                let c = n.conv(&t, 2, 4, ConvSpec::k(3))?;
                let back = n.transpose(&c, &[0, 2, 1]);
                let r = n.unary("Relu", &back);
                Ok((n.transpose(&r, &[0, 2, 1]), dims(&[1, 4, 18])))
            },
        )?,
        case(
            "edge_pad_reflect_then_conv",
            "Pad reflect [2, 3] on the length axis (pads as an input, opset 17), then a valid conv",
            "docs/edge-cases.md: Pad (constant, reflect, edge)",
            &[1, 2, 6],
            |n, x| {
                let pads = n.ints("pads", &[0, 0, 2, 0, 0, 3])?;
                let p = n.op("Pad", &[x, &pads], vec![attr::string("mode", "reflect")]);
                let y = n.conv(&p, 2, 3, ConvSpec::k(3))?;
                Ok((y, dims(&[1, 3, 9])))
            },
        )?,
    ])
}

/// Symbolic batch and length into a strided conv (sonos/tract #1122).
fn symbolic_batch_strided() -> Result<Built> {
    let name = "edge_symbolic_batch_strided_conv";
    let mut n = Net::new(name, 11, 17);
    let sym = |s: &str| Dim::Symbol(s.into());
    let x = n.input("input", &[sym("N"), f(3), sym("L")]);
    let y = n.conv(&x, 3, 4, ConvSpec::k(3).stride(2))?;
    let model = n.finish(&[(&y, vec![sym("N"), f(4), sym("L_out")])]);
    let mut b = Built::new(
        name,
        "symbolic batch and length into a stride-2 conv, fed [3, 3, 21]",
        "sonos/tract #1122",
        model,
        vec![("input", vec![3, 3, 21])],
    );
    b.input_kind = InputKind::Normal;
    Ok(b)
}
