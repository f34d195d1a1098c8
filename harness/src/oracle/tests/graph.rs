//! The graph walk: ordering, inputs, initializers, opsets, domains and error reporting.

use tract_onnx::pb;

use super::{assert_close, model, Case};
use crate::onnx::proto::{tensor_to_proto, value_info, Dim};
use crate::oracle::{evaluate, evaluate_all, OracleError, Value};
use crate::tensor::{DType, Named, Tensor};

fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn float_input(name: &str, dims: &[Dim]) -> pb::ValueInfoProto {
    value_info(name, DType::Float, dims)
}

fn out(name: &str) -> pb::ValueInfoProto {
    pb::ValueInfoProto {
        name: name.into(),
        ..Default::default()
    }
}

fn x(data: &[f32]) -> Vec<Named> {
    vec![Named {
        name: "x".into(),
        tensor: Tensor::f32(&[data.len()], data.to_vec()).unwrap(),
    }]
}

/// x -> Relu -> r -> Neg -> y, with the nodes listed in `order`.
fn chain(order: [usize; 2]) -> pb::ModelProto {
    let nodes = [node("Relu", &["x"], &["r"]), node("Neg", &["r"], &["y"])];
    model(
        order.iter().map(|&i| nodes[i].clone()).collect(),
        vec![float_input("x", &[Dim::Fixed(2)])],
        vec![],
        vec![out("y")],
        17,
    )
}

#[test]
fn nodes_listed_out_of_order_are_evaluated_after_their_producers() {
    let y = evaluate(&chain([1, 0]), &x(&[-1.0, 2.0])).unwrap();
    assert_close(
        &y.outputs[0].value.iter().copied().collect::<Vec<_>>(),
        &[0.0, -2.0],
    );
}

#[test]
fn evaluate_all_returns_inputs_and_intermediate_values() {
    let (_, all) = evaluate_all(&chain([0, 1]), &x(&[-1.0, 2.0])).unwrap();
    assert!(
        ["x", "r", "y"].iter().all(|n| all.contains_key(*n)),
        "{:?}",
        all.keys()
    );
    assert!(matches!(&all["r"], Value::Float { value, .. } if value.iter().eq([0.0, 2.0].iter())));
}

#[test]
fn a_cycle_is_invalid() {
    let nodes = vec![
        node("Add", &["x", "b"], &["a"]),
        node("Neg", &["a"], &["b"]),
    ];
    let m = model(
        nodes,
        vec![float_input("x", &[Dim::Fixed(1)])],
        vec![],
        vec![out("b")],
        17,
    );
    assert!(
        matches!(evaluate(&m, &x(&[1.0])), Err(OracleError::Invalid(msg)) if msg.contains("cycle"))
    );
}

#[test]
fn an_input_nobody_produces_is_invalid_and_named() {
    let m = model(
        vec![node("Add", &["x", "ghost"], &["y"])],
        vec![float_input("x", &[Dim::Fixed(1)])],
        vec![],
        vec![out("y")],
        17,
    );
    assert!(
        matches!(evaluate(&m, &x(&[1.0])), Err(OracleError::Invalid(msg)) if msg.contains("'ghost'") && msg.contains("(Add)"))
    );
}

#[test]
fn a_value_defined_twice_is_invalid() {
    let nodes = vec![node("Relu", &["x"], &["y"]), node("Neg", &["x"], &["y"])];
    let m = model(
        nodes,
        vec![float_input("x", &[Dim::Fixed(1)])],
        vec![],
        vec![out("y")],
        17,
    );
    assert!(
        matches!(evaluate(&m, &x(&[1.0])), Err(OracleError::Invalid(msg)) if msg.contains("already defined"))
    );
}

#[test]
fn an_output_nobody_produces_is_invalid() {
    let m = model(
        vec![],
        vec![float_input("x", &[Dim::Fixed(1)])],
        vec![],
        vec![out("y")],
        17,
    );
    assert!(
        matches!(evaluate(&m, &x(&[1.0])), Err(OracleError::Invalid(msg)) if msg.contains("'y'"))
    );
}

#[test]
fn inputs_are_checked_against_the_graph_declaration() {
    let m = model(
        vec![node("Relu", &["x"], &["y"])],
        vec![float_input("x", &[Dim::Symbol("N".into()), Dim::Fixed(2)])],
        vec![],
        vec![out("y")],
        17,
    );
    let given = |shape: &[usize]| {
        vec![Named {
            name: "x".into(),
            tensor: Tensor::f32(shape, vec![0.0; shape.iter().product()]).unwrap(),
        }]
    };
    assert!(
        evaluate(&m, &given(&[3, 2])).is_ok(),
        "a symbolic dim takes any size"
    );
    assert!(
        matches!(evaluate(&m, &given(&[3, 3])), Err(OracleError::BadInput(msg)) if msg.contains("declared with shape"))
    );
    assert!(matches!(
        evaluate(&m, &given(&[2])),
        Err(OracleError::BadInput(_))
    ));
    assert!(
        matches!(evaluate(&m, &[]), Err(OracleError::BadInput(msg)) if msg.contains("not given"))
    );
    let wrong_name = vec![Named {
        name: "z".into(),
        tensor: Tensor::f32(&[1, 2], vec![0.0; 2]).unwrap(),
    }];
    assert!(
        matches!(evaluate(&m, &wrong_name), Err(OracleError::BadInput(msg)) if msg.contains("'z' is not a graph input"))
    );
    let ints = vec![Named {
        name: "x".into(),
        tensor: Tensor::I64(ndarray::ArrayD::zeros(vec![1, 2])),
    }];
    assert!(
        matches!(evaluate(&m, &ints), Err(OracleError::BadInput(msg)) if msg.contains("declared float32"))
    );
    let twice = [given(&[1, 2]), given(&[1, 2])].concat();
    assert!(
        matches!(evaluate(&m, &twice), Err(OracleError::BadInput(msg)) if msg.contains("twice"))
    );
}

#[test]
fn a_graph_input_with_an_initializer_is_optional_and_can_be_overridden() {
    let init = tensor_to_proto("x", &Tensor::f32(&[1], vec![-5.0]).unwrap());
    let m = model(
        vec![node("Neg", &["x"], &["y"])],
        vec![float_input("x", &[Dim::Fixed(1)])],
        vec![init],
        vec![out("y")],
        17,
    );
    assert_eq!(evaluate(&m, &[]).unwrap().outputs[0].value[[0]], 5.0);
    assert_eq!(
        evaluate(&m, &x(&[2.0])).unwrap().outputs[0].value[[0]],
        -2.0
    );
}

#[test]
fn unknown_ops_domains_and_opsets_are_unsupported() {
    let c = Case::new("Frobnicate").input(&[1], &[0.0]);
    assert!(
        matches!(c.run(), Err(OracleError::Unsupported(m)) if m.contains("Frobnicate") && m.contains("'n'"))
    );
    let mut m = Case::new("Relu").input(&[1], &[0.0]).model();
    m.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    assert!(
        matches!(evaluate(&m, &[Named { name: "in0".into(), tensor: Tensor::f32(&[1], vec![0.0]).unwrap() }]), Err(OracleError::Unsupported(msg)) if msg.contains("com.microsoft"))
    );
    for opset in [0, 29] {
        assert!(
            matches!(Case::new("Relu").opset(opset).input(&[1], &[0.0]).run(), Err(OracleError::Unsupported(m)) if m.contains("opset"))
        );
    }
}

#[test]
fn a_missing_opset_import_means_opset_17() {
    let mut m = Case::new("Clip")
        .input(&[2], &[-2.0, 3.0])
        .init(&[], &[0.0])
        .model();
    m.opset_import.clear();
    let inputs = vec![Named {
        name: "in0".into(),
        tensor: Tensor::f32(&[2], vec![-2.0, 3.0]).unwrap(),
    }];
    assert_close(
        &evaluate(&m, &inputs).unwrap().outputs[0]
            .value
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        &[0.0, 3.0],
    );
}

#[test]
fn unknown_attributes_and_wrong_attribute_types_are_invalid() {
    assert!(Case::new("Relu")
        .input(&[1], &[0.0])
        .int("alpha", 1)
        .invalid()
        .contains("unknown attribute 'alpha'"));
    assert!(Case::new("LeakyRelu")
        .input(&[1], &[0.0])
        .int("alpha", 1)
        .invalid()
        .contains("attribute 'alpha' has type Int"));
}

#[test]
fn arity_is_checked() {
    assert!(Case::new("Relu")
        .input(&[1], &[0.0])
        .input(&[1], &[0.0])
        .invalid()
        .contains("at most 1"));
    assert!(Case::new("Add")
        .input(&[1], &[0.0])
        .invalid()
        .contains("required input 1"));
}

#[test]
fn integer_outputs_report_their_declared_type_and_a_zero_bound() {
    let mut m = Case::new("Shape").input(&[1, 2], &[0.0, 0.0]).model();
    m.graph.as_mut().unwrap().output[0] = value_info("y", DType::Int64, &[Dim::Fixed(2)]);
    let ev = evaluate(
        &m,
        &[Named {
            name: "in0".into(),
            tensor: Tensor::f32(&[1, 2], vec![0.0; 2]).unwrap(),
        }],
    )
    .unwrap();
    assert_eq!(ev.outputs[0].dtype, DType::Int64);
    assert!(ev.outputs[0].bound.iter().all(|&b| b == 0.0));
}

#[test]
fn shape_computations_flow_through_integer_ops() {
    // Reshape(x, Concat(Gather(Shape(x), [0]), [-1])): [1, 2, 3] -> [1, 6].
    let nodes = vec![
        node("Shape", &["x"], &["s"]),
        node("Gather", &["s", "zero"], &["n"]),
        pb::NodeProto {
            attribute: vec![crate::onnx::proto::attr::int("axis", 0)],
            ..node("Concat", &["n", "minus_one"], &["shape"])
        },
        node("Reshape", &["x", "shape"], &["y"]),
    ];
    let i64s = |name: &str, v: &[i64]| {
        tensor_to_proto(
            name,
            &Tensor::I64(ndarray::ArrayD::from_shape_vec(vec![v.len()], v.to_vec()).unwrap()),
        )
    };
    let dims = [Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(3)];
    let m = model(
        nodes,
        vec![float_input("x", &dims)],
        vec![i64s("zero", &[0]), i64s("minus_one", &[-1])],
        vec![out("y")],
        17,
    );
    let given = vec![Named {
        name: "x".into(),
        tensor: Tensor::f32(&[1, 2, 3], vec![1.0; 6]).unwrap(),
    }];
    assert_eq!(
        evaluate(&m, &given).unwrap().outputs[0].value.shape(),
        &[1, 6]
    );
}

#[test]
fn outputs_and_inputs_that_appeared_in_later_opsets_are_checked() {
    let indices = Case::new("MaxPool")
        .opset(7)
        .input(&[1, 1, 2], &[1.0, 2.0])
        .ints("kernel_shape", &[1])
        .outputs(&["y", "i"]);
    assert!(indices.invalid().contains("expected 1..=1 in opset 7"));
    let gemm = Case::new("Gemm")
        .opset(9)
        .input(&[1, 1], &[1.0])
        .init(&[1, 1], &[1.0]);
    assert!(gemm.invalid().contains("required input 2"));
    assert_close(
        &Case::new("Gemm")
            .opset(11)
            .input(&[1, 1], &[2.0])
            .init(&[1, 1], &[3.0])
            .y(&[1, 1]),
        &[6.0],
    );
    let unsqueeze = Case::new("Unsqueeze").input(&[2], &[1.0, 2.0]);
    assert!(unsqueeze.invalid().contains("required input 1"));
    let squeeze_input = Case::new("Squeeze")
        .opset(11)
        .input(&[1], &[1.0])
        .init_i64(&[1], &[0]);
    assert!(squeeze_input
        .invalid()
        .contains("at most 1 allowed in opset 11"));
}

#[test]
fn hostile_sizes_are_refused_without_panicking() {
    let huge = 1i64 << 40;
    let pool = Case::new("MaxPool")
        .input(&[1, 1, 2], &[1.0, 2.0])
        .ints("kernel_shape", &[huge])
        .ints("pads", &[huge, huge]);
    assert!(
        matches!(pool.run(), Err(OracleError::TooLarge(_))),
        "{:?}",
        pool.run()
    );
    let strides = Case::new("Conv")
        .input(&[1, 1, 3], &[1.0; 3])
        .init(&[1, 1, 1], &[1.0])
        .ints("strides", &[i64::MAX]);
    assert_close(&strides.y(&[1, 1, 1]), &[1.0]);
    let dilations = Case::new("Conv")
        .input(&[1, 1, 3], &[1.0; 3])
        .init(&[1, 1, 2], &[1.0; 2])
        .ints("dilations", &[i64::MAX]);
    assert!(dilations.invalid().contains("output length would be < 1"));
    // Crop 2^63 at the start, add 2^63 - 1 at the end: one padding element.
    let pads = Case::new("Pad")
        .input(&[2], &[1.0, 2.0])
        .init_i64(&[2], &[i64::MIN, i64::MAX]);
    assert_close(&pads.y(&[1]), &[0.0]);
    let pads = Case::new("Pad")
        .input(&[2], &[1.0, 2.0])
        .init_i64(&[2], &[i64::MAX, 0]);
    assert!(matches!(
        pads.run(),
        Err(OracleError::Invalid(_) | OracleError::TooLarge(_))
    ));
    let slice = Case::new("Slice")
        .input(&[3], &[1.0, 2.0, 3.0])
        .init_i64(&[1], &[i64::MAX])
        .init_i64(&[1], &[i64::MIN])
        .absent()
        .init_i64(&[1], &[i64::MIN]);
    assert_close(&slice.y(&[1]), &[3.0]);
    let transpose = Case::new("ConvTranspose")
        .input(&[1, 1, 2], &[1.0, 2.0])
        .init(&[1, 1, 1], &[1.0])
        .ints("strides", &[1 << 40]);
    assert!(
        matches!(transpose.run(), Err(OracleError::TooLarge(_))),
        "{:?}",
        transpose.run()
    );
    let reshape = Case::new("Reshape")
        .input(&[2], &[1.0, 2.0])
        .init_i64(&[3], &[huge, huge, 0])
        .int("allowzero", 1)
        .opset(14);
    assert!(reshape.invalid().contains("cannot reshape"));
}

#[test]
fn evaluate_all_includes_used_initializers_with_their_rounding_bound() {
    let c = Case::new("Add").input(&[1], &[1.0]).init(&[1], &[-3.0]);
    let (_, all) = evaluate_all(&c.model(), &c.run_inputs()).unwrap();
    assert!(
        matches!(&all["in1"], Value::Float { value, bound } if value[[0]] == -3.0 && bound[[0]] == 3.0)
    );
}

#[test]
fn integer_data_in_a_float_kernel_is_unsupported_not_invalid() {
    let c = Case::new("Relu").init_i64(&[1], &[-1]);
    assert!(matches!(c.run(), Err(OracleError::Unsupported(m)) if m.contains("integer tensor")));
}
