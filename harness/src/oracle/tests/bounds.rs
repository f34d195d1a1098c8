//! Error-bound coefficients, checked against the rules in `oracle::bound`.

use tract_onnx::pb;

use super::{assert_close, evaluate, Case};
use crate::onnx::proto::{value_info, Dim};
use crate::tensor::{DType, Named, Tensor};

#[test]
fn inputs_and_initializers_carry_one_rounding() {
    assert_close(
        &Case::new("Identity").input(&[2], &[-3.0, 0.5]).bound(),
        &[3.0, 0.5],
    );
}

#[test]
fn conv_bound_of_an_exact_integer_sum_grows_with_the_terms_summed() {
    // x = w = 1 (bounds 1): n terms give (2 + U) n (propagated, U = 1/256 for the product of
    // the two perturbations) + (n+1) n (accumulation).
    // Kernel 3 with pads 1: n = 2 at the edges, 3 inside; padding taps are not terms.
    let c = Case::new("Conv")
        .input(&[1, 1, 4], &[1.0; 4])
        .init(&[1, 1, 3], &[1.0; 3])
        .ints("pads", &[1, 1]);
    assert_close(&c.y(&[1, 1, 4]), &[2.0, 3.0, 3.0, 2.0]);
    let u = 1.0 / 256.0;
    assert_close(
        &c.bound(),
        &[
            10.0 + 2.0 * u,
            18.0 + 3.0 * u,
            18.0 + 3.0 * u,
            10.0 + 2.0 * u,
        ],
    );
    assert!(c.bound().iter().all(|&b| b >= 0.0));
}

#[test]
fn conv_bias_adds_its_magnitude_to_the_accumulation_and_its_own_bound() {
    // One term x·w = 2·3 with bounds 2, 3 and bias 4 (bound 4):
    // |w| e_x + |x| e_w + e_w e_x U = 12 + 6/256, (n+1)(|xw| + |b|) = 2·10, plus e_b = 4.
    let c = Case::new("Conv")
        .input(&[1, 1, 1], &[2.0])
        .init(&[1, 1, 1], &[3.0])
        .init(&[1], &[4.0]);
    assert_close(&c.bound(), &[36.0 + 6.0 / 256.0]);
}

#[test]
fn relu_of_negative_inputs_has_a_zero_bound() {
    assert_close(
        &Case::new("Relu").input(&[3], &[-2.0, 0.0, 3.0]).bound(),
        &[0.0, 0.0, 3.0],
    );
}

#[test]
fn clip_saturated_elements_take_the_limits_bound() {
    // Limits are initializers (bounds |0| and |6|).
    let c = Case::new("Clip")
        .input(&[3], &[-1.0, 3.0, 7.0])
        .init(&[], &[0.0])
        .init(&[], &[6.0]);
    assert_close(&c.bound(), &[0.0, 3.0, 6.0]);
}

#[test]
fn add_and_mul_bounds() {
    let add = Case::new("Add").input(&[1], &[1.0]).init(&[1], &[-3.0]);
    assert_close(&add.bound(), &[1.0 + 3.0 + 2.0]);
    let mul = Case::new("Mul").input(&[1], &[2.0]).init(&[1], &[-3.0]);
    assert_close(
        &mul.bound(),
        &[3.0 * 2.0 + 2.0 * 3.0 + 2.0 * 3.0 / 256.0 + 6.0],
    );
}

#[test]
fn a_product_of_two_perturbed_factors_keeps_the_product_of_their_perturbations() {
    // y = Sigmoid(a) · (b - b) with a = -40, b = 3. Sigmoid(-40) is about 4e-18 with the
    // absolute floor 4; b - b is exactly 0 with bound 2|b| = 6. The first-order terms give
    // 4e-18 · 6, far below what a runtime multiplying a 4 u error by a 6 u error can produce
    // (a tail sigmoid saturating at 1e-8 times a difference that does not cancel); the bound
    // keeps their product, 4 · 6 at the coarsest precision (1/256).
    let node = |op: &str, inputs: &[&str], output: &str| pb::NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    let scalar = |name: &str| value_info(name, DType::Float, &[Dim::Fixed(1)]);
    let m = super::model(
        vec![
            node("Sigmoid", &["a"], "s"),
            node("Sub", &["b", "b"], "z"),
            node("Mul", &["s", "z"], "y"),
        ],
        vec![scalar("a"), scalar("b")],
        vec![],
        vec![scalar("y")],
        13,
    );
    let feed = |name: &str, v: f32| Named {
        name: name.into(),
        tensor: Tensor::f32(&[1], vec![v]).unwrap(),
    };
    let ev = evaluate(&m, &[feed("a", -40.0), feed("b", 3.0)]).unwrap();
    let (y, bound) = (ev.outputs[0].value[[0]], ev.outputs[0].bound[[0]]);
    assert_eq!(y, 0.0);
    assert!(
        bound >= 4.0 * 6.0 / 256.0,
        "bound {bound} misses the product of the perturbations"
    );
}

#[test]
fn smooth_functions_add_their_accuracy_to_the_propagated_bound() {
    // Sigmoid(0): slope 1/4 times bound 0, plus 8 * 0.5, plus 4.
    assert_close(&Case::new("Sigmoid").input(&[1], &[0.0]).bound(), &[8.0]);
    // Sigmoid(2): input bound 2 through the largest slope at 2 and 2 ± 2/256 (at 2 - 2/256),
    // plus 8 sigmoid(2) + 4.
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let x = 2.0 - 2.0 / 256.0;
    let slope = s(x) * (1.0 - s(x));
    assert_close(
        &Case::new("Sigmoid").input(&[1], &[2.0]).bound(),
        &[2.0 * slope + 8.0 * s(2.0) + 4.0],
    );
}

#[test]
fn max_pool_bound_is_the_largest_bound_in_the_window() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 3], &[-5.0, 1.0, 2.0])
        .ints("kernel_shape", &[3]);
    assert_close(&c.bound(), &[5.0]);
}

#[test]
fn average_pool_bound_is_the_mean_bound_plus_accumulation() {
    // Window {2, 4}: mean(e) = 3, (k+1) mean(|x|) = 3 * 3.
    let c = Case::new("AveragePool")
        .input(&[1, 1, 2], &[2.0, 4.0])
        .ints("kernel_shape", &[2]);
    assert_close(&c.bound(), &[12.0]);
}

#[test]
fn batch_norm_bound_follows_its_rule() {
    // s = 2 / sqrt(1) = 2: |s| e_x + 8 (|x s| + |mean s| + |β|) = 2*3 + 8 (6 + 2 + 1).
    let c = Case::new("BatchNormalization")
        .input(&[1, 1, 1], &[3.0])
        .init(&[1], &[2.0])
        .init(&[1], &[1.0])
        .init(&[1], &[1.0])
        .init(&[1], &[1.0])
        .float("epsilon", 0.0);
    assert_close(&c.y(&[1, 1, 1]), &[5.0]);
    assert_close(&c.bound(), &[78.0]);
}

#[test]
fn softmax_bound_scales_with_the_output_and_the_axis_length() {
    // y = 0.5 each, max e = 1: 2 * 0.5 * 1 + (2 + 4) * 0.5.
    assert_close(
        &Case::new("Softmax").input(&[2], &[1.0, 1.0]).bound(),
        &[4.0, 4.0],
    );
}

#[test]
fn shape_ops_move_bounds_with_values_and_pad_constants_bring_their_own() {
    let c = Case::new("Pad")
        .input(&[2], &[1.0, -2.0])
        .init_i64(&[2], &[1, 0])
        .init(&[], &[-7.0]);
    assert_close(&c.bound(), &[7.0, 1.0, 2.0]);
    let t = Case::new("Transpose").input(&[1, 2], &[1.0, -2.0]);
    assert_close(&t.bound(), &[1.0, 2.0]);
}
