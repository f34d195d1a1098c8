//! Activations, smooth functions, Clip and broadcasting arithmetic.

use super::{assert_close, assert_near, Case};
use crate::oracle::elementwise::erf_fn;

fn unary(op: &str, x: &[f32]) -> Case {
    Case::new(op).input(&[x.len()], x)
}

#[test]
fn relu_zeroes_negatives() {
    assert_close(&unary("Relu", &[-2.0, 0.0, 3.0]).y(&[3]), &[0.0, 0.0, 3.0]);
}

#[test]
fn leaky_relu_scales_negatives_by_alpha_defaulting_to_0_01() {
    // alpha is the f32 0.01 widened exactly.
    assert_close(
        &unary("LeakyRelu", &[-2.0, 5.0]).y(&[2]),
        &[-2.0 * f64::from(0.01f32), 5.0],
    );
    assert_close(
        &unary("LeakyRelu", &[-2.0, 5.0]).float("alpha", 0.5).y(&[2]),
        &[-1.0, 5.0],
    );
}

#[test]
fn prelu_broadcasts_a_per_channel_slope() {
    let c = Case::new("PRelu")
        .input(&[1, 2, 2], &[-1.0, 2.0, -3.0, 4.0])
        .init(&[2, 1], &[0.5, 2.0]);
    assert_close(&c.y(&[1, 2, 2]), &[-0.5, 2.0, -6.0, 4.0]);
    let scalar = Case::new("PRelu")
        .input(&[2], &[-4.0, 4.0])
        .init(&[1], &[0.25]);
    assert_close(&scalar.y(&[2]), &[-1.0, 4.0]);
    let m = Case::new("PRelu")
        .input(&[1, 2, 2], &[0.0; 4])
        .init(&[3], &[0.0; 3])
        .invalid();
    assert!(m.contains("does not broadcast"), "{m}");
}

#[test]
fn sigmoid_and_tanh_match_closed_forms() {
    assert_close(
        &unary("Sigmoid", &[0.0, 1.0, -1.0]).y(&[3]),
        &[0.5, 0.7310585786300049, 0.2689414213699951],
    );
    assert_close(&unary("Tanh", &[0.0, 1.0]).y(&[2]), &[0.0, 1f64.tanh()]);
}

#[test]
fn clip_before_opset_11_reads_min_and_max_attributes() {
    let c = unary("Clip", &[-1.0, 3.0, 7.0])
        .opset(10)
        .float("min", 0.0)
        .float("max", 6.0);
    assert_close(&c.y(&[3]), &[0.0, 3.0, 6.0]);
    // Defaults are the float range.
    assert_close(
        &unary("Clip", &[-1e30, 1e30]).opset(7).y(&[2]),
        &[-1e30f32 as f64, 1e30f32 as f64],
    );
}

#[test]
fn clip_from_opset_11_reads_optional_min_and_max_inputs() {
    let c = Case::new("Clip")
        .input(&[2], &[-2.0, 3.0])
        .init(&[], &[-1.0]);
    assert_close(&c.y(&[2]), &[-1.0, 3.0]);
    let only_max = Case::new("Clip")
        .input(&[2], &[-2.0, 3.0])
        .absent()
        .init(&[], &[1.0]);
    assert_close(&only_max.y(&[2]), &[-2.0, 1.0]);
    let m = unary("Clip", &[1.0]).float("min", 0.0).invalid();
    assert!(m.contains("removed in opset 11"), "{m}");
}

#[test]
fn clip_with_min_above_max_gives_max() {
    let c = Case::new("Clip")
        .input(&[2], &[-2.0, 3.0])
        .init(&[], &[2.0])
        .init(&[], &[1.0]);
    assert_close(&c.y(&[2]), &[1.0, 1.0]);
}

#[test]
fn elu_selu_follow_their_definitions() {
    assert_close(
        &unary("Elu", &[-1.0, 0.0, 2.0]).y(&[3]),
        &[-0.6321205588285577, 0.0, 2.0],
    );
    assert_close(
        &unary("Elu", &[-1.0]).float("alpha", 2.0).y(&[1]),
        &[2.0 * -0.6321205588285577],
    );
    assert_close(
        &unary("Selu", &[-1.0, 0.0, 1.0]).y(&[3]),
        &[-1.1113307412864784, 0.0, 1.0507010221481323],
    );
}

#[test]
fn hard_sigmoid_and_hard_swish_saturate() {
    assert_close(
        &unary("HardSigmoid", &[-5.0, 0.0, 1.0, 5.0]).y(&[4]),
        &[0.0, 0.5, 0.7000000029802322, 1.0],
    );
    let x = [-4.0, -3.0, 0.0, 1.5, 3.0, 4.0];
    assert_close(
        &unary("HardSwish", &x).y(&[6]),
        &[0.0, 0.0, 0.0, 1.125, 3.0, 4.0],
    );
}

#[test]
fn gelu_exact_and_tanh_approximation() {
    let c = unary("Gelu", &[0.0, 1.0]).opset(20);
    assert_close(&c.y(&[2]), &[0.0, 0.8413447460685429]);
    let t = unary("Gelu", &[1.0, -2.0])
        .opset(20)
        .string("approximate", "tanh");
    assert_close(&t.y(&[2]), &[0.8411919906082768, -0.04540230591222494]);
    assert!(unary("Gelu", &[0.0])
        .opset(20)
        .string("approximate", "fast")
        .invalid()
        .contains("approximate"));
}

#[test]
fn gelu_does_not_exist_before_opset_20() {
    let m = unary("Gelu", &[0.0]).invalid();
    assert!(m.contains("not defined before opset 20"), "{m}");
}

#[test]
fn softplus_softsign_mish() {
    assert_close(
        &unary("Softplus", &[0.0, -1.0]).y(&[2]),
        &[2f64.ln(), 0.31326168751822286],
    );
    assert_close(&unary("Softsign", &[1.0, -3.0]).y(&[2]), &[0.5, -0.75]);
    assert_close(
        &unary("Mish", &[0.0, 1.0]).opset(18).y(&[2]),
        &[0.0, 0.8650983882673103],
    );
}

#[test]
fn erf_matches_reference_values() {
    let cases = [
        (0.1, 0.1124629160182849),
        (0.5, 0.5204998778130465),
        (1.0, 0.8427007929497149),
        (3.0, 0.9999779095030014),
        (-2.0, -0.9953222650189527),
        (5.5, 0.9999999999999927),
    ];
    for (x, e) in cases {
        assert_near(&[erf_fn(x)], &[e], 1e-15);
    }
}

#[test]
fn exp_log_sqrt_abs_neg_reciprocal() {
    assert_close(
        &unary("Exp", &[0.0, 1.0]).y(&[2]),
        &[1.0, std::f64::consts::E],
    );
    assert_close(&unary("Log", &[1.0, 4.0]).y(&[2]), &[0.0, 4f64.ln()]);
    assert_close(&unary("Sqrt", &[0.0, 4.0]).y(&[2]), &[0.0, 2.0]);
    assert_close(&unary("Abs", &[-1.5, 2.0]).y(&[2]), &[1.5, 2.0]);
    assert_close(&unary("Neg", &[-1.5, 2.0]).y(&[2]), &[1.5, -2.0]);
    assert_close(&unary("Reciprocal", &[4.0, -0.5]).y(&[2]), &[0.25, -2.0]);
}

#[test]
fn add_broadcasts_numpy_style() {
    let c = Case::new("Add")
        .input(&[2, 1], &[1.0, 2.0])
        .init(&[3], &[10.0, 20.0, 30.0]);
    assert_close(&c.y(&[2, 3]), &[11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
}

#[test]
fn sub_mul_div_with_a_scalar() {
    let run = |op: &str| {
        Case::new(op)
            .input(&[2], &[6.0, 8.0])
            .init(&[], &[2.0])
            .y(&[2])
    };
    assert_close(&run("Sub"), &[4.0, 6.0]);
    assert_close(&run("Mul"), &[12.0, 16.0]);
    assert_close(&run("Div"), &[3.0, 4.0]);
}

#[test]
fn incompatible_broadcast_is_invalid() {
    let m = Case::new("Add")
        .input(&[2, 3], &[0.0; 6])
        .init(&[2], &[0.0; 2])
        .invalid();
    assert!(m.contains("do not broadcast"), "{m}");
}

#[test]
fn mixing_float_and_integer_operands_is_invalid() {
    let m = Case::new("Add")
        .input(&[2], &[0.0; 2])
        .init_i64(&[2], &[1, 2])
        .invalid();
    assert!(m.contains("same type"), "{m}");
}

#[test]
fn integer_arithmetic_is_exact_and_division_truncates() {
    let c = Case::new("Div")
        .init_i64(&[2], &[7, -7])
        .init_i64(&[], &[2]);
    assert_close(&c.y(&[2]), &[3.0, -3.0]);
    let zero = Case::new("Div").init_i64(&[1], &[7]).init_i64(&[], &[0]);
    assert!(matches!(
        zero.run(),
        Err(crate::oracle::OracleError::Undefined(_))
    ));
}
