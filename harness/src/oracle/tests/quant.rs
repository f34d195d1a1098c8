//! QuantizeLinear and DequantizeLinear: rounding half to even, saturation, zero points, per-axis
//! parameters, the bound of an ambiguous rounding, and the spec's rules on types and opsets.

use ndarray::ArrayD;
use tract_onnx::pb;

use super::{assert_close, evaluate, model, Case};
use crate::onnx::proto::{attr, tensor_to_proto, value_info, Dim};
use crate::oracle::bound::QUANT_U;
use crate::oracle::OracleError;
use crate::tensor::{DType, Named, Tensor};

/// One quantum at float32, in units of u.
pub(super) const QUANTUM: f64 = 1.0 / QUANT_U;

impl Case {
    pub(super) fn init_u8(self, shape: &[usize], data: &[u8]) -> Case {
        self.init_tensor(Tensor::U8(
            ArrayD::from_shape_vec(shape, data.to_vec()).unwrap(),
        ))
    }

    pub(super) fn init_i8(self, shape: &[usize], data: &[i8]) -> Case {
        self.init_tensor(Tensor::I8(
            ArrayD::from_shape_vec(shape, data.to_vec()).unwrap(),
        ))
    }

    pub(super) fn init_i32(self, shape: &[usize], data: &[i32]) -> Case {
        self.init_tensor(Tensor::I32(
            ArrayD::from_shape_vec(shape, data.to_vec()).unwrap(),
        ))
    }
}

/// QuantizeLinear of the float input `x` (shape `[n]`) with a scalar scale.
fn quantize(x: &[f32], scale: f32) -> Case {
    Case::new("QuantizeLinear")
        .input(&[x.len()], x)
        .init(&[], &[scale])
}

fn unsupported(c: &Case) -> String {
    match c.run() {
        Err(OracleError::Unsupported(m)) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn quantize_rounds_ties_to_even() {
    // x / s = 0.5, 1.5, 2.5, -0.5, -1.5, -2.5.
    let c = quantize(&[1.0, 3.0, 5.0, -1.0, -3.0, -5.0], 2.0).init_i8(&[], &[0]);
    assert_close(&c.y(&[6]), &[0.0, 2.0, 2.0, 0.0, -2.0, -2.0]);
    // A tie is the most ambiguous rounding there is: every element may come out a quantum off.
    assert_close(&c.bound(), &[QUANTUM; 6]);
}

#[test]
fn quantize_saturates_int8_and_uint8_at_both_ends() {
    let int8 = quantize(&[-1000.0, -129.0, -128.4, 127.0, 127.4, 1000.0], 1.0).init_i8(&[], &[0]);
    assert_close(
        &int8.y(&[6]),
        &[-128.0, -128.0, -128.0, 127.0, 127.0, 127.0],
    );
    // Far from a tie or saturated whatever the perturbation: exact.
    assert_close(&int8.bound(), &[0.0; 6]);
    let uint8 = quantize(&[-5.0, -0.4, 0.0, 254.6, 255.4, 1e6], 1.0).init_u8(&[], &[0]);
    assert_close(&uint8.y(&[6]), &[0.0, 0.0, 0.0, 255.0, 255.0, 255.0]);
    assert_close(&uint8.bound(), &[0.0; 6]);
}

#[test]
fn quantize_adds_the_zero_point_before_saturating() {
    // The backend suite's test_quantizelinear: uint8, zero point 128.
    let uint8 = quantize(&[0.0, 2.0, 3.0, 1000.0, -254.0, -1000.0], 2.0).init_u8(&[], &[128]);
    assert_close(&uint8.y(&[6]), &[128.0, 129.0, 130.0, 255.0, 1.0, 0.0]);
    // int8, zero point -3: -250 - 3 saturates, 0.9 rounds to 1.
    let int8 = quantize(&[0.0, 10.0, -250.0, 0.9, 131.0], 1.0).init_i8(&[], &[-3]);
    assert_close(&int8.y(&[5]), &[-3.0, 7.0, -128.0, -2.0, 127.0]);
}

#[test]
fn without_a_zero_point_the_output_is_uint8() {
    let c = quantize(&[-3.0, 7.6, 300.0], 1.0);
    assert_close(&c.y(&[3]), &[0.0, 8.0, 255.0]);
    let absent = quantize(&[-3.0, 7.6, 300.0], 1.0).absent();
    assert_close(&absent.y(&[3]), &[0.0, 8.0, 255.0]);
    // opset 21's output_dtype names the type when there is no zero point.
    let int8 = quantize(&[-300.0, 7.6], 1.0)
        .opset(21)
        .int("output_dtype", 3);
    assert_close(&int8.y(&[2]), &[-128.0, 8.0]);
    let int16 = quantize(&[-40000.0, 300.0, 70000.0], 1.0)
        .opset(21)
        .int("output_dtype", 5);
    assert_close(&int16.y(&[3]), &[-32768.0, 300.0, 32767.0]);
}

#[test]
fn a_quantized_graph_output_keeps_its_declared_integer_type() {
    let c = quantize(&[1.2, 300.0], 1.0).init_u8(&[], &[0]);
    let mut m = c.model();
    let graph = m.graph.as_mut().unwrap();
    graph.output[0] = value_info("y", DType::Uint8, &[Dim::Fixed(2)]);
    let out = &evaluate(&m, &c.run_inputs()).unwrap().outputs[0];
    assert_eq!(out.dtype, DType::Uint8);
    assert_close(
        &out.value.iter().copied().collect::<Vec<_>>(),
        &[1.0, 255.0],
    );
    assert_close(&out.bound.iter().copied().collect::<Vec<_>>(), &[0.0, 0.0]);
}

#[test]
fn quantize_per_axis_applies_one_scale_and_zero_point_per_index_of_the_axis() {
    let x: Vec<f32> = (1..=24).map(|v| v as f32).collect();
    let axis0 = Case::new("QuantizeLinear")
        .input(&[2, 3, 4], &x)
        .init(&[2], &[1.0, 4.0])
        .init_u8(&[2], &[0, 100])
        .int("axis", 0);
    #[rustfmt::skip]
    let expected = [
        1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
        // 13..24 / 4 = 3.25, 3.5, 3.75, 4, 4.25, 4.5, ...: 3.5 -> 4, 4.5 -> 4, 5.5 -> 6.
        103.0, 104.0, 104.0, 104.0, 104.0, 104.0, 105.0, 105.0, 105.0, 106.0, 106.0, 106.0,
    ];
    assert_close(&axis0.y(&[2, 3, 4]), &expected);
    // The ties (x / s = 3.5, 4.5, 5.5) are the ambiguous elements.
    let ties: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let t = f64::from(v) / if i < 12 { 1.0 } else { 4.0 };
            if t.fract() == 0.5 {
                QUANTUM
            } else {
                0.0
            }
        })
        .collect();
    assert_close(&axis0.bound(), &ties);

    // Axis 1 (and its negative form -2): scales 1, 2, 4 and zero points 0, -3, 5 in int8.
    let axis1 = |axis| {
        Case::new("QuantizeLinear")
            .input(&[2, 3, 4], &x)
            .init(&[3], &[1.0, 2.0, 4.0])
            .init_i8(&[3], &[0, -3, 5])
            .int("axis", axis)
    };
    #[rustfmt::skip]
    let expected = [
        1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 1.0, 7.0, 7.0, 8.0, 8.0,
        13.0, 14.0, 15.0, 16.0, 5.0, 6.0, 7.0, 7.0, 10.0, 11.0, 11.0, 11.0,
    ];
    assert_close(&axis1(1).y(&[2, 3, 4]), &expected);
    assert_close(&axis1(-2).y(&[2, 3, 4]), &expected);
    // The default axis is 1.
    let default = Case::new("QuantizeLinear")
        .input(&[2, 3, 4], &x)
        .init(&[3], &[1.0, 2.0, 4.0])
        .init_i8(&[3], &[0, -3, 5]);
    assert_close(&default.y(&[2, 3, 4]), &expected);
}

#[test]
fn only_a_rounding_the_bound_can_flip_gets_a_quantum() {
    // 2.5 + 2^-22 (one f32 ulp above the tie): the runtime's quotient may lie within
    // d = 2 |x| QUANT_U + 4 QUANT_U |t| = 15 · 2^-24 ≈ 8.9e-7 of 2.50000024, across the tie.
    // 2.5 + 2^-19 is beyond that reach, and 2.7 far from any tie.
    let near = 2.5 + 2f32.powi(-22);
    let beyond = 2.5 + 2f32.powi(-19);
    let c = quantize(&[near, beyond, 2.7], 1.0).init_u8(&[], &[0]);
    assert_close(&c.y(&[3]), &[3.0, 3.0, 3.0]);
    assert_close(&c.bound(), &[QUANTUM, 0.0, 0.0]);
}

#[test]
fn dequantize_subtracts_the_zero_point_and_scales() {
    let uint8 = Case::new("DequantizeLinear")
        .init_u8(&[4], &[0, 3, 128, 255])
        .init(&[], &[2.0])
        .init_u8(&[], &[128]);
    assert_close(&uint8.y(&[4]), &[-256.0, -250.0, 0.0, 254.0]);
    // An exact integer input: one rounding of the product, and 4 (q_max - q_min) |s| = 2040 for
    // a runtime that computes it from the ends of the output interval (OpenVINO's FakeQuantize).
    assert_close(&uint8.bound(), &[2296.0, 2290.0, 2040.0, 2294.0]);
    let int8 = Case::new("DequantizeLinear")
        .init_i8(&[3], &[-128, 0, 127])
        .init(&[], &[0.5])
        .init_i8(&[], &[-3]);
    assert_close(&int8.y(&[3]), &[-62.5, 1.5, 65.0]);
    let no_zero_point = Case::new("DequantizeLinear")
        .init_u8(&[2], &[7, 255])
        .init(&[], &[0.25]);
    assert_close(&no_zero_point.y(&[2]), &[1.75, 63.75]);
}

#[test]
fn dequantize_per_axis_reads_an_int32_bias() {
    let c = Case::new("DequantizeLinear")
        .init_i32(&[3], &[1000, -2000, 123_456_789])
        .init(&[3], &[0.5, 0.25, 2.0])
        .int("axis", 0);
    assert_close(&c.y(&[3]), &[500.0, -500.0, 246_913_578.0]);
    // Beyond 256 the integer's conversion to float may round too: 2 |y|.
    assert_close(&c.bound(), &[1000.0, 1000.0, 493_827_156.0]);
    // Per axis on axis 1 of a [2, 3, 4] int8 tensor, zero points per channel.
    let x: Vec<i8> = (0..24).map(|v| v as i8).collect();
    let c = Case::new("DequantizeLinear")
        .init_i8(&[2, 3, 4], &x)
        .init(&[3], &[1.0, 0.5, 2.0])
        .init_i8(&[3], &[0, 4, 10]);
    #[rustfmt::skip]
    let expected = [
        0.0, 1.0, 2.0, 3.0, 0.0, 0.5, 1.0, 1.5, -4.0, -2.0, 0.0, 2.0,
        12.0, 13.0, 14.0, 15.0, 6.0, 6.5, 7.0, 7.5, 20.0, 22.0, 24.0, 26.0,
    ];
    assert_close(&c.y(&[2, 3, 4]), &expected);
    // An int32 x takes no zero point but 0.
    let nonzero = Case::new("DequantizeLinear")
        .init_i32(&[3], &[1, 2, 3])
        .init(&[3], &[0.5, 0.25, 2.0])
        .init_i32(&[3], &[0, 1, 0])
        .int("axis", 0);
    assert!(nonzero.invalid().contains("zero point of 0"));
}

/// `DequantizeLinear(QuantizeLinear(x, s, zp), s, zp)` on a float input `x`.
fn round_trip(x: &[f32], s: f32, zp: u8) -> pb::ModelProto {
    let node = |op: &str, input: [&str; 3], output: &str| pb::NodeProto {
        op_type: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    let n = x.len();
    model(
        vec![
            node("QuantizeLinear", ["x", "s", "zp"], "q"),
            node("DequantizeLinear", ["q", "s", "zp"], "y"),
        ],
        vec![value_info("x", DType::Float, &[Dim::Fixed(n)])],
        vec![
            tensor_to_proto("s", &Tensor::f32(&[], vec![s]).unwrap()),
            tensor_to_proto(
                "zp",
                &Tensor::U8(ArrayD::from_shape_vec(vec![], vec![zp]).unwrap()),
            ),
        ],
        vec![
            value_info("q", DType::Uint8, &[Dim::Fixed(n)]),
            value_info("y", DType::Float, &[Dim::Fixed(n)]),
        ],
        13,
    )
}

#[test]
fn dequantize_of_quantize_carries_the_quantum_scaled() {
    // x / 0.5 = 0.5 (a tie), 3, 5.2, 600 (saturated); zero point 10.
    let x = [0.25, 1.5, 2.6, 300.0];
    let m = round_trip(&x, 0.5, 10);
    let inputs = [Named {
        name: "x".into(),
        tensor: Tensor::f32(&[4], x.to_vec()).unwrap(),
    }];
    let ev = evaluate(&m, &inputs).unwrap();
    let (q, y) = (&ev.outputs[0], &ev.outputs[1]);
    assert_eq!(q.dtype, DType::Uint8);
    assert_close(
        &q.value.iter().copied().collect::<Vec<_>>(),
        &[10.0, 13.0, 15.0, 255.0],
    );
    assert_close(
        &q.bound.iter().copied().collect::<Vec<_>>(),
        &[QUANTUM, 0.0, 0.0, 0.0],
    );
    // y = (q - 10) 0.5; bound |s| e_q + |y| + |s| e_q u + 4 · 255 |s|: the tie's quantum
    // becomes half a unit of y, the product at the neighbouring integer (0.5) is rounded too,
    // and the interval form's rounding is 510.
    assert_close(
        &y.value.iter().copied().collect::<Vec<_>>(),
        &[0.0, 1.5, 2.5, 122.5],
    );
    assert_close(
        &y.bound.iter().copied().collect::<Vec<_>>(),
        &[0.5 * QUANTUM + 510.5, 511.5, 512.5, 632.5],
    );
}

#[test]
fn invalid_quantization_parameters_are_rejected() {
    let x: Vec<f32> = (1..=24).map(|v| v as f32).collect();
    let per_axis = |scales: &[f32], axis: i64| {
        Case::new("QuantizeLinear")
            .input(&[2, 3, 4], &x)
            .init(&[scales.len()], scales)
            .int("axis", axis)
    };
    assert!(per_axis(&[1.0, 2.0], 1)
        .invalid()
        .contains("per-axis scale of 2"));
    assert!(per_axis(&[1.0, 2.0, 3.0], 3)
        .invalid()
        .contains("axis 3 is out of range"));
    assert!(per_axis(&[1.0, 2.0, 3.0], -4)
        .invalid()
        .contains("out of range"));
    // The zero point must have the output type, and the scale's shape.
    let mismatch = quantize(&[1.0], 1.0)
        .init_u8(&[], &[0])
        .opset(21)
        .int("output_dtype", 3);
    assert!(mismatch
        .invalid()
        .contains("differs from the zero point's type"));
    let shapes = per_axis(&[1.0, 2.0, 3.0], 1).init_u8(&[2], &[0, 0]);
    assert!(shapes.invalid().contains("zero point's shape"));
    let int32_zero_point = quantize(&[1.0], 1.0).init_i32(&[], &[0]);
    assert!(int32_zero_point
        .invalid()
        .contains("the zero point has type int32"));
    let not_quantized = quantize(&[1.0], 1.0).opset(21).int("output_dtype", 1);
    assert!(not_quantized.invalid().contains("not a quantized type"));
    let two_d = Case::new("QuantizeLinear")
        .input(&[2, 2], &[1.0; 4])
        .init(&[2, 2], &[1.0; 4]);
    assert!(two_d.invalid().contains("scalar or 1-D"));
    // DequantizeLinear: the zero point has x's type.
    let dq = Case::new("DequantizeLinear")
        .init_i8(&[2], &[1, 2])
        .init(&[], &[1.0])
        .init_u8(&[], &[0]);
    assert!(dq
        .invalid()
        .contains("the zero point has type uint8, x has type int8"));
    let float_x = Case::new("DequantizeLinear")
        .input(&[2], &[1.0, 2.0])
        .init(&[], &[1.0]);
    assert!(float_x.invalid().contains("not a quantized type"));
}

#[test]
fn blocked_and_non_integer_quantization_are_unsupported() {
    let blocked = Case::new("QuantizeLinear")
        .opset(21)
        .input(&[2, 4], &[1.0; 8])
        .init(&[2, 2], &[1.0; 4])
        .int("axis", 1)
        .int("block_size", 2);
    assert!(unsupported(&blocked).contains("blocked quantization"));
    let blocked_dq = Case::new("DequantizeLinear")
        .opset(21)
        .init_u8(&[2, 4], &[1; 8])
        .init(&[2, 2], &[1.0; 4])
        .int("axis", 1)
        .int("block_size", 2);
    assert!(unsupported(&blocked_dq).contains("blocked quantization"));
    for (code, name) in [
        (17, "Float8e4m3fn"),
        (21, "Uint4"),
        (22, "Int4"),
        (23, "Float4e2m1"),
    ] {
        let c = quantize(&[1.0], 1.0).opset(21).int("output_dtype", code);
        assert!(unsupported(&c).contains(name), "{name}");
    }
    let f16_division = quantize(&[1.0], 1.0).opset(23).int("precision", 10);
    assert!(unsupported(&f16_division).contains("float16"));
    // saturate (opset 19) only concerns float8 outputs: accepted and without effect here.
    let saturate = quantize(&[300.0], 1.0).opset(19).int("saturate", 0);
    assert_close(&saturate.y(&[1]), &[255.0]);
}

#[test]
fn the_opset_table_follows_the_spec() {
    let q = |opset| quantize(&[1.0, 2.6], 1.0).opset(opset);
    assert!(q(9).invalid().contains("not defined before opset 10"));
    assert_close(&q(10).y(&[2]), &[1.0, 3.0]);
    // Per-axis parameters and the axis attribute came in opset 13.
    assert!(q(12)
        .int("axis", 0)
        .invalid()
        .contains("attribute 'axis' is not defined before opset 13"));
    let per_axis = |opset| {
        Case::new("QuantizeLinear")
            .opset(opset)
            .input(&[2], &[1.0, 2.0])
            .init(&[2], &[1.0, 2.0])
    };
    assert!(per_axis(12).invalid().contains("before opset 13"));
    assert_close(&per_axis(13).int("axis", 0).y(&[2]), &[1.0, 1.0]);
    assert!(q(18)
        .int("saturate", 1)
        .invalid()
        .contains("not defined before opset 19"));
    for late in ["block_size", "output_dtype"] {
        assert!(q(20)
            .int(late, 0)
            .invalid()
            .contains("not defined before opset 21"));
    }
    assert!(q(22)
        .int("precision", 1)
        .invalid()
        .contains("not defined before opset 23"));
    assert_close(&q(23).int("precision", 1).y(&[2]), &[1.0, 3.0]);
    let dq = |opset| {
        Case::new("DequantizeLinear")
            .opset(opset)
            .init_u8(&[2], &[1, 2])
            .init(&[], &[1.5])
    };
    assert!(dq(9).invalid().contains("not defined before opset 10"));
    assert!(dq(12)
        .int("axis", 0)
        .invalid()
        .contains("not defined before opset 13"));
    assert!(dq(22)
        .int("output_dtype", 1)
        .invalid()
        .contains("not defined before opset 23"));
    assert_close(&dq(23).int("output_dtype", 10).y(&[2]), &[1.5, 3.0]);
    assert!(dq(23)
        .int("output_dtype", 3)
        .invalid()
        .contains("not float, float16 or bfloat16"));
}

#[test]
fn quantize_reads_an_int32_input_and_rejects_nan() {
    let c = Case::new("QuantizeLinear")
        .init_i32(&[3], &[3, -7, 1000])
        .init(&[], &[2.0])
        .init_i8(&[], &[0]);
    // 1.5 -> 2, -3.5 -> -4, 500 saturates.
    assert_close(&c.y(&[3]), &[2.0, -4.0, 127.0]);
    let nan = quantize(&[f32::NAN], 1.0);
    assert!(matches!(nan.run(), Err(OracleError::Undefined(_))));
    let zero_scale = quantize(&[1.0], 0.0);
    assert!(matches!(zero_scale.run(), Err(OracleError::Undefined(_))));
    // Attribute types are checked as for every op.
    let bad = quantize(&[1.0], 1.0).attr(attr::float("axis", 1.0));
    assert!(bad.invalid().contains("axis"));
}

/// `x → Relu → QuantizeLinear(s = 0.5, zp = 10)`: a computed value, which a runtime may requantize
/// in a fused kernel.
fn relu_then_quantize(n: usize) -> pb::ModelProto {
    let node = |op: &str, input: &[&str], output: &str| pb::NodeProto {
        op_type: op.into(),
        input: input.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    model(
        vec![
            node("Relu", &["x"], "r"),
            node("QuantizeLinear", &["r", "s", "zp"], "q"),
        ],
        vec![value_info("x", DType::Float, &[Dim::Fixed(n)])],
        vec![
            tensor_to_proto("s", &Tensor::f32(&[], vec![0.5]).unwrap()),
            tensor_to_proto(
                "zp",
                &Tensor::U8(ArrayD::from_shape_vec(vec![], vec![10]).unwrap()),
            ),
        ],
        vec![value_info("q", DType::Uint8, &[Dim::Fixed(n)])],
        13,
    )
}

#[test]
fn a_computed_value_may_be_requantized_one_quantum_either_way() {
    // x / 0.5 = 3 (exact), 5.2, 600 and 1000 (both saturated far beyond 255), and an exact 0
    // after Relu of a negative.
    let x = [1.5, 2.6, 300.0, 500.0, -4.0];
    let inputs = [Named {
        name: "x".into(),
        tensor: Tensor::f32(&[5], x.to_vec()).unwrap(),
    }];
    let ev = evaluate(&relu_then_quantize(5), &inputs).unwrap();
    let q = &ev.outputs[0];
    assert_close(
        &q.value.iter().copied().collect::<Vec<_>>(),
        &[13.0, 15.0, 255.0, 255.0, 10.0],
    );
    // One quantum wherever a fused kernel's rounding could land on a neighbour; none where
    // every neighbour saturates to the same integer, nor where the quotient is an exact
    // integer no perturbation reaches (Relu's 0: every rounding of 0 is 0).
    assert_close(
        &q.bound.iter().copied().collect::<Vec<_>>(),
        &[QUANTUM, QUANTUM, 0.0, 0.0, 0.0],
    );
    // The same values quantized straight from the graph input: exact, as the spec says.
    let direct = round_trip(&[1.5, 2.6], 0.5, 10);
    let ev = evaluate(
        &direct,
        &[Named {
            name: "x".into(),
            tensor: Tensor::f32(&[2], vec![1.5, 2.6]).unwrap(),
        }],
    )
    .unwrap();
    assert_close(
        &ev.outputs[0].bound.iter().copied().collect::<Vec<_>>(),
        &[0.0, 0.0],
    );
}
