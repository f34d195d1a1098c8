//! `lower1d` on every operator of the 1D catalogue (docs/edge-cases.md): the lowered model, run on
//! tract, must match the f64 oracle's outputs of the original 1D model within the error bound,
//! for both unit-axis positions.

use harness::compare::{compare, Tolerance, Verdict};
use harness::conformance::oracle_expected;
use harness::convert::{lower, UnitAxis};
use harness::onnx::proto::{attr, encode_model, tensor_to_proto, value_info, Dim};
use harness::runtime::{Precision, Runtime, Tract};
use harness::seed::{rng, Draw};
use harness::tensor::{DType, Named, Tensor};
use tract_onnx::pb;

const N: usize = 2;
const C: usize = 4;
const L: usize = 11;

struct Model {
    nodes: Vec<pb::NodeProto>,
    inits: Vec<pb::TensorProto>,
    outputs: Vec<&'static str>,
    opset: i64,
}

fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op}_{}", outputs[0]),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn init(name: &str, shape: &[usize], seed: u64) -> pb::TensorProto {
    let mut r = rng(seed, name);
    let n = shape.iter().product();
    tensor_to_proto(
        name,
        &Tensor::f32(shape, (0..n).map(|_| (r.normal() * 0.5) as f32).collect()).unwrap(),
    )
}

fn ints(name: &str, v: &[i64]) -> pb::TensorProto {
    tensor_to_proto(
        name,
        &Tensor::I64(ndarray::Array1::from(v.to_vec()).into_dyn()),
    )
}

fn build(m: &Model) -> pb::ModelProto {
    let dims: Vec<Dim> = [N, C, L].iter().map(|&d| Dim::Fixed(d)).collect();
    let mut outputs = Vec::new();
    for o in &m.outputs {
        let mut vi = value_info(
            o,
            if o.ends_with("idx") {
                DType::Int64
            } else {
                DType::Float
            },
            &[],
        );
        if let Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(t)),
            ..
        }) = vi.r#type.as_mut()
        {
            t.shape = None;
        }
        outputs.push(vi);
    }
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: m.opset,
        }],
        graph: Some(pb::GraphProto {
            name: "catalogue".into(),
            node: m.nodes.clone(),
            initializer: m.inits.clone(),
            input: vec![value_info("x", DType::Float, &dims)],
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A conv in front, so element-wise ops see a 2D tensor after lowering.
fn conv_then(op: pb::NodeProto, extra: Vec<pb::TensorProto>) -> Model {
    let mut inits = vec![init("w", &[C, C, 3], 1)];
    inits.extend(extra);
    Model {
        nodes: vec![
            node(
                "Conv",
                &["x", "w"],
                &["c"],
                vec![attr::ints("pads", &[1, 1])],
            ),
            op,
        ],
        inits,
        outputs: vec!["y"],
        opset: 17,
    }
}

fn single(op: pb::NodeProto, inits: Vec<pb::TensorProto>) -> Model {
    Model {
        nodes: vec![op],
        inits,
        outputs: vec!["y"],
        opset: 17,
    }
}

fn catalogue() -> Vec<(&'static str, Model)> {
    vec![
        (
            "ConvTranspose strides, pads, output_padding, dilations, group",
            single(
                node(
                    "ConvTranspose",
                    &["x", "wt"],
                    &["y"],
                    vec![
                        attr::ints("strides", &[2]),
                        attr::ints("pads", &[1, 0]),
                        attr::ints("output_padding", &[1]),
                        attr::ints("dilations", &[2]),
                        attr::int("group", 2),
                    ],
                ),
                vec![init("wt", &[C, 3, 3], 2)],
            ),
        ),
        (
            "ConvTranspose auto_pad SAME_UPPER",
            single(
                node(
                    "ConvTranspose",
                    &["x", "wt"],
                    &["y"],
                    vec![
                        attr::ints("strides", &[2]),
                        attr::string("auto_pad", "SAME_UPPER"),
                    ],
                ),
                vec![init("wt", &[C, 2, 4], 3)],
            ),
        ),
        (
            "MaxPool with Indices",
            Model {
                nodes: vec![node(
                    "MaxPool",
                    &["x"],
                    &["y", "y_idx"],
                    vec![
                        attr::ints("kernel_shape", &[3]),
                        attr::ints("strides", &[2]),
                    ],
                )],
                inits: vec![],
                outputs: vec!["y", "y_idx"],
                opset: 17,
            },
        ),
        (
            "LpPool",
            single(
                node(
                    "LpPool",
                    &["x"],
                    &["y"],
                    vec![
                        attr::ints("kernel_shape", &[3]),
                        attr::ints("strides", &[2]),
                        attr::int("p", 2),
                    ],
                ),
                vec![],
            ),
        ),
        (
            "GlobalMaxPool",
            single(node("GlobalMaxPool", &["x"], &["y"], vec![]), vec![]),
        ),
        (
            "ReduceMean over length",
            single(
                node(
                    "ReduceMean",
                    &["x"],
                    &["y"],
                    vec![attr::ints("axes", &[2]), attr::int("keepdims", 1)],
                ),
                vec![],
            ),
        ),
        (
            "ReduceMax over length, keepdims=0",
            single(
                node(
                    "ReduceMax",
                    &["x"],
                    &["y"],
                    vec![attr::ints("axes", &[-1]), attr::int("keepdims", 0)],
                ),
                vec![],
            ),
        ),
        (
            "InstanceNormalization",
            single(
                node("InstanceNormalization", &["x", "s", "b"], &["y"], vec![]),
                vec![init("s", &[C], 4), init("b", &[C], 5)],
            ),
        ),
        (
            "LayerNormalization over length",
            single(
                node(
                    "LayerNormalization",
                    &["x", "s", "b"],
                    &["y"],
                    vec![attr::int("axis", -1)],
                ),
                vec![init("s", &[L], 6), init("b", &[L], 7)],
            ),
        ),
        (
            "PRelu slope [C,1]",
            conv_then(
                node("PRelu", &["c", "slope"], &["y"], vec![]),
                vec![init("slope", &[C, 1], 8)],
            ),
        ),
        (
            "PRelu scalar slope",
            conv_then(
                node("PRelu", &["c", "slope"], &["y"], vec![]),
                vec![init("slope", &[1], 9)],
            ),
        ),
        (
            "Elu",
            conv_then(
                node("Elu", &["c"], &["y"], vec![attr::float("alpha", 0.7)]),
                vec![],
            ),
        ),
        (
            "Selu",
            conv_then(node("Selu", &["c"], &["y"], vec![]), vec![]),
        ),
        (
            "HardSigmoid",
            conv_then(node("HardSigmoid", &["c"], &["y"], vec![]), vec![]),
        ),
        (
            "HardSwish",
            conv_then(node("HardSwish", &["c"], &["y"], vec![]), vec![]),
        ),
        (
            "Softplus",
            conv_then(node("Softplus", &["c"], &["y"], vec![]), vec![]),
        ),
        (
            "Mish (opset 18)",
            Model {
                opset: 18,
                ..conv_then(node("Mish", &["c"], &["y"], vec![]), vec![])
            },
        ),
        (
            "Clip (Relu6)",
            conv_then(
                node("Clip", &["c", "lo", "hi"], &["y"], vec![]),
                vec![
                    tensor_to_proto("lo", &Tensor::f32(&[], vec![0.0]).unwrap()),
                    tensor_to_proto("hi", &Tensor::f32(&[], vec![6.0]).unwrap()),
                ],
            ),
        ),
        (
            "Pad constant",
            single(
                node(
                    "Pad",
                    &["x", "pads", "cv"],
                    &["y"],
                    vec![attr::string("mode", "constant")],
                ),
                vec![
                    ints("pads", &[0, 0, 2, 0, 0, 1]),
                    tensor_to_proto("cv", &Tensor::f32(&[], vec![0.5]).unwrap()),
                ],
            ),
        ),
        (
            "Pad reflect",
            single(
                node(
                    "Pad",
                    &["x", "pads"],
                    &["y"],
                    vec![attr::string("mode", "reflect")],
                ),
                vec![ints("pads", &[0, 0, 2, 0, 0, 3])],
            ),
        ),
        (
            "Pad edge",
            single(
                node(
                    "Pad",
                    &["x", "pads"],
                    &["y"],
                    vec![attr::string("mode", "edge")],
                ),
                vec![ints("pads", &[0, 0, 1, 0, 0, 2])],
            ),
        ),
        (
            "channel Concat",
            Model {
                nodes: vec![
                    node(
                        "Conv",
                        &["x", "w"],
                        &["a"],
                        vec![attr::ints("pads", &[1, 1])],
                    ),
                    node("Relu", &["x"], &["b"], vec![]),
                    node("Concat", &["a", "b"], &["y"], vec![attr::int("axis", 1)]),
                ],
                inits: vec![init("w", &[C, C, 3], 10)],
                outputs: vec!["y"],
                opset: 17,
            },
        ),
        (
            "squeeze-and-excitation",
            Model {
                nodes: vec![
                    node("GlobalAveragePool", &["x"], &["g"], vec![]),
                    node("Conv", &["g", "w1"], &["h"], vec![]),
                    node("Relu", &["h"], &["hr"], vec![]),
                    node("Conv", &["hr", "w2"], &["e"], vec![]),
                    node("Sigmoid", &["e"], &["s"], vec![]),
                    node("Mul", &["x", "s"], &["y"], vec![]),
                ],
                inits: vec![init("w1", &[2, C, 1], 11), init("w2", &[C, 2, 1], 12)],
                outputs: vec!["y"],
                opset: 17,
            },
        ),
        (
            "MatMul + Softmax head",
            Model {
                nodes: vec![
                    node("GlobalAveragePool", &["x"], &["g"], vec![]),
                    node("Flatten", &["g"], &["f"], vec![attr::int("axis", 1)]),
                    node("MatMul", &["f", "m"], &["z"], vec![]),
                    node("Softmax", &["z"], &["y"], vec![attr::int("axis", -1)]),
                ],
                inits: vec![init("m", &[C, 5], 13)],
                outputs: vec!["y"],
                opset: 17,
            },
        ),
        (
            "PyTorch AvgPool1d export: Unsqueeze, 2D AveragePool, Squeeze",
            Model {
                nodes: vec![
                    node("Unsqueeze", &["x", "ax"], &["u"], vec![]),
                    node(
                        "AveragePool",
                        &["u"],
                        &["p"],
                        vec![
                            attr::ints("kernel_shape", &[1, 3]),
                            attr::ints("strides", &[1, 2]),
                        ],
                    ),
                    node("Squeeze", &["p", "ax"], &["y"], vec![]),
                ],
                inits: vec![ints("ax", &[2])],
                outputs: vec!["y"],
                opset: 17,
            },
        ),
        (
            "Keras NLC layout: Transpose around Conv",
            Model {
                nodes: vec![
                    node(
                        "Transpose",
                        &["x"],
                        &["t"],
                        vec![attr::ints("perm", &[0, 2, 1])],
                    ),
                    node(
                        "Transpose",
                        &["t"],
                        &["u"],
                        vec![attr::ints("perm", &[0, 2, 1])],
                    ),
                    node(
                        "Conv",
                        &["u", "w"],
                        &["c"],
                        vec![
                            attr::string("auto_pad", "SAME_UPPER"),
                            attr::ints("kernel_shape", &[3]),
                        ],
                    ),
                    node(
                        "Transpose",
                        &["c"],
                        &["y"],
                        vec![attr::ints("perm", &[0, 2, 1])],
                    ),
                ],
                inits: vec![init("w", &[C, C, 3], 14)],
                outputs: vec!["y"],
                opset: 17,
            },
        ),
        (
            "Gelu (opset 20)",
            Model {
                opset: 20,
                ..conv_then(node("Gelu", &["c"], &["y"], vec![]), vec![])
            },
        ),
    ]
}

/// Lowered models that tract refuses although they are valid: the lowering is right, tract is
/// not. Listed so that a fix in tract shows up here (the test then fails: remove the entry).
const TRACT_REFUSES_LOWERED: &[(&str, &str)] = &[(
    "ConvTranspose auto_pad SAME_UPPER",
    "tract 0.23.9 demands (kernel - 1) * dilation > stride - 1 for SAME padding on every axis, \
     which the unit axis (kernel 1, stride 1) cannot meet",
)];

#[test]
fn lowered_catalogue_models_match_the_oracle_on_tract() {
    let mut r = rng(1, "x");
    let x = Tensor::f32(
        &[N, C, L],
        (0..N * C * L).map(|_| r.normal() as f32).collect(),
    )
    .unwrap();
    let inputs = vec![Named {
        name: "x".into(),
        tensor: x,
    }];
    let tract = Tract::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    let all = catalogue();
    let total = all.len();
    for (name, m) in all {
        let original = build(&m);
        let expected =
            oracle_expected(&original, &inputs).unwrap_or_else(|e| panic!("{name}: oracle: {e:#}"));
        // tract on the 1D model first: a tract problem is not a lowering problem.
        let plain = tract
            .load(&encode_model(&original), &inputs)
            .and_then(|mut l| l.run(&inputs));
        let plain_ok = plain.as_ref().is_ok_and(|o| {
            compare(&expected, o, Precision::F32, Tolerance::default()).verdict == Verdict::Pass
        });
        if !plain_ok {
            let why = match &plain {
                Ok(o) => format!(
                    "{:?}",
                    compare(&expected, o, Precision::F32, Tolerance::default()).message
                ),
                Err(e) => format!("{e:#}"),
            };
            eprintln!("{name}: tract fails on the 1D model itself ({why}); lowering not judged");
            continue;
        }
        checked += 1;
        for unit in [UnitAxis::Last, UnitAxis::BeforeLength] {
            let mut lowered = original.clone();
            lower(&mut lowered, unit).unwrap_or_else(|e| panic!("{name} {unit:?}: {e:#}"));
            let got = tract
                .load(&encode_model(&lowered), &inputs)
                .and_then(|mut l| l.run(&inputs));
            let verdict = match &got {
                Ok(o) => compare(&expected, o, Precision::F32, Tolerance::default()).verdict,
                Err(_) => Verdict::RuntimeRejected,
            };
            let known = TRACT_REFUSES_LOWERED.iter().any(|(n, _)| *n == name);
            if known {
                if verdict != Verdict::RuntimeRejected {
                    failures.push(format!(
                        "{name} {unit:?}: listed as refused by tract but gave {verdict}"
                    ));
                }
                continue;
            }
            if verdict != Verdict::Pass {
                failures.push(format!(
                    "{name} {unit:?}: {verdict} ({:?})",
                    got.err().map(|e| format!("{e:#}"))
                ));
            }
        }
    }
    assert!(failures.is_empty(), "lowering broke: {failures:#?}");
    assert!(
        checked + 3 >= total,
        "only {checked} of {total} catalogue models run on tract"
    );
}
