use super::*;
use crate::gen::{generate, GenConfig};
use crate::model::{Layer, Layout, PadMode};
use crate::onnx::proto::encode_model;

fn ops(m: &pb::ModelProto) -> Vec<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

fn one_layer(layer: Layer, opset: i64) -> ModelDesc {
    ModelDesc::new([1, 4, 10], vec![layer], opset, 0, WeightDist::Scaled)
}

#[test]
fn emission_is_byte_for_byte_reproducible() {
    for i in 0..50 {
        let case = generate(9, i, &GenConfig::default());
        assert_eq!(
            encode_model(&emit(&case.model).unwrap()),
            encode_model(&emit(&case.model).unwrap())
        );
    }
}

#[test]
fn clip_follows_the_opset_form() {
    for (opset, inputs, attrs) in [(17, 3, 0), (10, 1, 2)] {
        let m = emit(&one_layer(Layer::Clip { min: 0.0, max: 6.0 }, opset)).unwrap();
        let clip = &m.graph.as_ref().unwrap().node[0];
        assert_eq!(
            (clip.input.len(), clip.attribute.len()),
            (inputs, attrs),
            "opset {opset}"
        );
    }
}

fn node<'a>(m: &'a pb::ModelProto, op: &str) -> &'a pb::NodeProto {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .find(|n| n.op_type == op)
        .unwrap_or_else(|| panic!("no {op} in {:?}", ops(m)))
}

fn pool(indices: bool, unsqueeze_2d: bool) -> crate::model::Pool {
    crate::model::Pool {
        kernel: 3,
        stride: 2,
        dilation: 1,
        padding: crate::model::Padding::Explicit { begin: 1, end: 0 },
        ceil_mode: false,
        count_include_pad: false,
        indices,
        unsqueeze_2d,
    }
}

/// Every op form the emitter writes is evaluated by the oracle at that opset.
fn oracle_accepts(desc: &ModelDesc) {
    let m = emit(desc).unwrap();
    let case = crate::gen::case_from(0, 0, desc.clone(), crate::gen::InputDist::Normal);
    crate::oracle::evaluate(&m, &case.inputs())
        .unwrap_or_else(|e| panic!("opset {}: {e}: {:?}", desc.opset, ops(&m)));
}

#[test]
fn squeeze_and_unsqueeze_take_axes_as_attribute_before_13_and_as_input_from_13() {
    for (opset, inputs, attrs) in [(11, 1, 1), (12, 1, 1), (13, 2, 0), (21, 2, 0)] {
        let desc = one_layer(Layer::AveragePool(pool(false, true)), opset);
        let m = emit(&desc).unwrap();
        assert_eq!(ops(&m), ["Unsqueeze", "AveragePool", "Squeeze", "Identity"]);
        for op in ["Unsqueeze", "Squeeze"] {
            let n = node(&m, op);
            assert_eq!(
                (n.input.len(), n.attribute.len()),
                (inputs, attrs),
                "{op} {opset}"
            );
        }
        // The 2D pool has a unit first spatial axis and no padding on it.
        let pads = n_ints(node(&m, "AveragePool"), "pads");
        assert_eq!(pads, [0, 1, 0, 0]);
        oracle_accepts(&desc);
    }
}

fn n_ints(n: &pb::NodeProto, name: &str) -> Vec<i64> {
    n.attribute
        .iter()
        .find(|a| a.name == name)
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}

#[test]
fn reduce_axes_move_from_attribute_to_input_at_opset_18() {
    for max in [false, true] {
        for (opset, inputs) in [(17, 1), (18, 2)] {
            let desc = one_layer(
                Layer::ReduceLength {
                    max,
                    keepdims: false,
                },
                opset,
            );
            let m = emit(&desc).unwrap();
            let n = node(&m, if max { "ReduceMax" } else { "ReduceMean" });
            assert_eq!(n.input.len(), inputs, "opset {opset}");
            assert_eq!(
                n_ints(n, "axes"),
                if inputs == 1 { vec![2] } else { vec![] }
            );
            oracle_accepts(&desc);
        }
    }
}

#[test]
fn newer_activations_are_decomposed_before_their_opset() {
    for (layer, since, op, decomposed) in [
        (
            Layer::HardSwish,
            14,
            "HardSwish",
            vec!["HardSigmoid", "Mul"],
        ),
        (Layer::Mish, 18, "Mish", vec!["Softplus", "Tanh", "Mul"]),
        (
            Layer::Gelu,
            20,
            "Gelu",
            vec!["Mul", "Erf", "Add", "Mul", "Mul"],
        ),
    ] {
        let before = one_layer(layer.clone(), since - 1);
        let mut want: Vec<String> = decomposed.iter().map(|s| s.to_string()).collect();
        want.push("Identity".into());
        assert_eq!(ops(&emit(&before).unwrap()), want, "{op} at {}", since - 1);
        oracle_accepts(&before);
        let at = one_layer(layer, since);
        assert_eq!(ops(&emit(&at).unwrap()), [op, "Identity"]);
        oracle_accepts(&at);
    }
}

#[test]
fn pad_takes_pads_as_an_input_on_the_length_axis() {
    for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
        let desc = one_layer(
            Layer::Pad {
                mode,
                begin: 2,
                end: 1,
            },
            11,
        );
        let m = emit(&desc).unwrap();
        let n = node(&m, "Pad");
        let pads = &m.graph.as_ref().unwrap().initializer;
        let pads = pads.iter().find(|t| t.name == n.input[1]).unwrap();
        assert_eq!(pads.int64_data.len() + pads.raw_data.len() / 8, 6);
        assert_eq!(desc.output_shape().unwrap(), vec![1, 4, 13]);
        oracle_accepts(&desc);
    }
}

#[test]
fn before_opset_11_pad_takes_pads_and_value_as_attributes_and_softmax_a_positive_axis() {
    for mode in [PadMode::Constant, PadMode::Reflect] {
        let desc = one_layer(
            Layer::Pad {
                mode,
                begin: 2,
                end: 1,
            },
            10,
        );
        let m = emit(&desc).unwrap();
        let n = node(&m, "Pad");
        assert_eq!(n.input.len(), 1);
        assert_eq!(n_ints(n, "pads"), [0, 0, 2, 0, 0, 1]);
        let value = n.attribute.iter().any(|a| a.name == "value");
        assert_eq!(value, mode == PadMode::Constant);
        oracle_accepts(&desc);
    }
    let desc = one_layer(Layer::Softmax { axis: -1 }, 7);
    let m = emit(&desc).unwrap();
    let axis = node(&m, "Softmax").attribute[0].i;
    assert_eq!(axis, 2);
    oracle_accepts(&desc);
}

#[test]
fn nlc_models_take_nlc_input_and_wrap_convolutions_in_transposes() {
    let mut desc = one_layer(
        Layer::Conv(crate::model::Conv {
            out_channels: 3,
            kernel: 3,
            stride: 1,
            dilation: 1,
            padding: crate::model::Padding::Valid,
            group: 1,
            bias: true,
        }),
        13,
    );
    desc.layers.push(Layer::Relu);
    desc.layout = Layout::Nlc;
    assert_eq!(desc.input_shape(), [1, 10, 4]);
    assert_eq!(desc.output_shape().unwrap(), vec![1, 8, 3]);
    let m = emit(&desc).unwrap();
    assert_eq!(
        ops(&m),
        ["Transpose", "Conv", "Transpose", "Relu", "Identity"]
    );
    oracle_accepts(&desc);
}

#[test]
fn symbolic_dimensions_are_declared_as_dim_params() {
    use crate::onnx::proto::{declared_type, Dim};
    let mut desc = one_layer(Layer::Relu, 17);
    desc.symbolic = crate::model::Symbolic {
        batch: true,
        length: true,
    };
    let m = emit(&desc).unwrap();
    let g = m.graph.as_ref().unwrap();
    let (_, dims) = declared_type(&g.input[0]).unwrap();
    assert_eq!(
        dims,
        [
            Dim::Symbol("N".into()),
            Dim::Fixed(4),
            Dim::Symbol("L".into())
        ]
    );
    let (_, out) = declared_type(&g.output[0]).unwrap();
    assert_eq!(out[0], Dim::Symbol("N".into()));
    oracle_accepts(&desc);
}

#[test]
fn maxpool_indices_become_an_output_of_the_values_they_select() {
    let desc = one_layer(Layer::MaxPool(pool(true, false)), 17);
    let m = emit(&desc).unwrap();
    assert_eq!(node(&m, "MaxPool").output.len(), 2);
    let g = m.graph.as_ref().unwrap();
    assert_eq!(g.output.len(), 2);
    let case = crate::gen::case_from(0, 0, desc.clone(), crate::gen::InputDist::Normal);
    let eval = crate::oracle::evaluate(&m, &case.inputs()).unwrap();
    // Gathering at the indices gives back the pooled maxima.
    assert_eq!(eval.outputs[0].value, eval.outputs[1].value);
}

#[test]
fn negative_cases_are_emitted_with_their_invalid_layer() {
    use crate::model::Negative;
    let mut desc = one_layer(
        Layer::Conv(crate::model::Conv {
            out_channels: 4,
            kernel: 1,
            stride: 1,
            dilation: 1,
            padding: crate::model::Padding::Valid,
            group: 1,
            bias: false,
        }),
        17,
    );
    desc.negative = Some(Negative::WrongWeightShape);
    assert!(desc.shapes().is_err());
    let m = emit(&desc).unwrap();
    let w = &m.graph.as_ref().unwrap().initializer[0];
    assert_eq!(w.dims, [4, 5, 1], "one input channel too many");
    let case = crate::gen::case_from(0, 0, desc, crate::gen::InputDist::Normal);
    assert!(matches!(
        crate::oracle::evaluate(&m, &case.inputs()),
        Err(crate::oracle::OracleError::Invalid(_))
    ));
}

#[test]
fn before_opset_7_the_emitter_writes_each_op_in_its_old_form() {
    let attr_names =
        |n: &pb::NodeProto| -> Vec<String> { n.attribute.iter().map(|a| a.name.clone()).collect() };
    let m = emit(&one_layer(Layer::BatchNorm { epsilon: 1e-5 }, 6)).unwrap();
    let bn = node(&m, "BatchNormalization");
    assert!(bn.attribute.iter().any(|a| a.name == "is_test" && a.i == 1));
    let m = emit(&one_layer(Layer::AveragePool(pool(false, false)), 6)).unwrap();
    assert!(!attr_names(node(&m, "AveragePool")).contains(&"count_include_pad".into()));
    let m = emit(&one_layer(Layer::PRelu { per_channel: true }, 6)).unwrap();
    let slope = &node(&m, "PRelu").input[1];
    let init = m
        .graph
        .as_ref()
        .unwrap()
        .initializer
        .iter()
        .find(|t| &t.name == slope);
    assert_eq!(init.unwrap().dims, [4]);
    let dense = |opset| {
        let mut d = one_layer(
            Layer::Dense {
                out_features: 2,
                reshape: true,
            },
            opset,
        );
        d.layers.insert(0, Layer::Relu);
        emit(&d).unwrap()
    };
    let m = dense(4);
    assert_eq!(node(&m, "Reshape").input.len(), 1);
    assert_eq!(n_ints(node(&m, "Reshape"), "shape"), [0, -1]);
    assert!(node(&m, "Gemm")
        .attribute
        .iter()
        .any(|a| a.name == "broadcast" && a.i == 1));
    let m = emit(&one_layer(
        Layer::Pad {
            mode: PadMode::Edge,
            begin: 1,
            end: 0,
        },
        1,
    ))
    .unwrap();
    assert_eq!(n_ints(node(&m, "Pad"), "paddings"), [0, 0, 1, 0, 0, 0]);
    for opset in [1, 4, 6] {
        for layer in [
            Layer::BatchNorm { epsilon: 1e-5 },
            Layer::AveragePool(pool(false, false)),
            Layer::PRelu { per_channel: true },
        ] {
            oracle_accepts(&one_layer(layer, opset));
        }
    }
}
