//! BatchNormalization, InstanceNormalization, LayerNormalization, reductions and Softmax.

use super::{assert_close, assert_near, Case};
use crate::oracle::OracleError;

fn batch_norm(opset: i64) -> Case {
    // Channel 0: s = 1/sqrt(4) = 0.5, mean 1, beta 0; channel 1: s = 2/sqrt(0.25) = 4, mean 3,
    // beta 1.
    Case::new("BatchNormalization")
        .opset(opset)
        .input(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0])
        .init(&[2], &[1.0, 2.0])
        .init(&[2], &[0.0, 1.0])
        .init(&[2], &[1.0, 3.0])
        .init(&[2], &[4.0, 0.25])
        .float("epsilon", 0.0)
}

#[test]
fn batch_norm_normalizes_each_channel_with_running_statistics() {
    for opset in [7, 9, 15] {
        assert_close(&batch_norm(opset).y(&[1, 2, 2]), &[0.0, 0.5, 1.0, 5.0]);
    }
}

#[test]
fn batch_norm_default_epsilon_is_1e_5() {
    let c = Case::new("BatchNormalization")
        .input(&[1, 1, 1], &[2.0])
        .init(&[1], &[1.0])
        .init(&[1], &[0.0])
        .init(&[1], &[0.0])
        .init(&[1], &[1.0]);
    assert_close(&c.y(&[1, 1, 1]), &[2.0 / (1.0 + f64::from(1e-5f32)).sqrt()]);
}

#[test]
fn batch_norm_training_mode_is_unsupported_and_spatial_was_removed_in_opset_9() {
    assert!(
        matches!(batch_norm(15).int("training_mode", 1).run(), Err(OracleError::Unsupported(m)) if m.contains("training_mode"))
    );
    assert!(batch_norm(9)
        .int("spatial", 1)
        .invalid()
        .contains("removed in opset 9"));
    assert_close(
        &batch_norm(7).int("spatial", 1).y(&[1, 2, 2]),
        &[0.0, 0.5, 1.0, 5.0],
    );
    let m = Case::new("BatchNormalization")
        .input(&[1, 2, 1], &[0.0; 2])
        .init(&[3], &[0.0; 3])
        .init(&[2], &[0.0; 2])
        .init(&[2], &[0.0; 2])
        .init(&[2], &[1.0; 2])
        .invalid();
    assert!(m.contains("scale has shape [3], expected [2]"), "{m}");
}

#[test]
fn instance_norm_normalizes_each_channel_over_its_positions() {
    // mean 2.5, variance 1.25; scale 2, bias 1.
    let c = Case::new("InstanceNormalization")
        .input(&[1, 1, 4], &[1.0, 2.0, 3.0, 4.0])
        .init(&[1], &[2.0])
        .init(&[1], &[1.0])
        .float("epsilon", 0.0);
    assert_close(
        &c.y(&[1, 1, 4]),
        &[
            -1.6832815729997477,
            0.10557280900008414,
            1.8944271909999157,
            3.6832815729997477,
        ],
    );
}

#[test]
fn layer_norm_over_the_last_axis_with_mean_and_inverse_std_outputs() {
    // Rows [1,3] (mean 2, std 1) and [10,14] (mean 12, std 2) both normalize to [-1, 1].
    let c = Case::new("LayerNormalization")
        .input(&[2, 2], &[1.0, 3.0, 10.0, 14.0])
        .init(&[2], &[2.0, 3.0])
        .init(&[2], &[0.5, 0.0])
        .float("epsilon", 0.0)
        .outputs(&["y", "mean", "inv_std"]);
    assert_close(&c.y(&[2, 2]), &[-1.5, 3.0, -1.5, 3.0]);
    assert_close(&c.output(1, &[2, 1]), &[2.0, 12.0]);
    assert_close(&c.output(2, &[2, 1]), &[1.0, 0.5]);
}

#[test]
fn layer_norm_from_axis_0_normalizes_everything() {
    let c = Case::new("LayerNormalization")
        .input(&[2, 2], &[1.0, 3.0, 5.0, 7.0])
        .init(&[2, 2], &[1.0; 4])
        .int("axis", 0)
        .float("epsilon", 0.0);
    let s = 5f64.sqrt();
    assert_close(&c.y(&[2, 2]), &[-3.0 / s, -1.0 / s, 1.0 / s, 3.0 / s]);
}

fn reduce(op: &str, opset: i64) -> Case {
    Case::new(op)
        .opset(opset)
        .input(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 9.0])
}

#[test]
fn reduce_mean_axes_are_an_attribute_before_opset_18_and_an_input_from_18() {
    assert_close(
        &reduce("ReduceMean", 13).ints("axes", &[-1]).y(&[2, 1]),
        &[2.0, 6.0],
    );
    assert_close(
        &reduce("ReduceMean", 18).init_i64(&[1], &[-1]).y(&[2, 1]),
        &[2.0, 6.0],
    );
    assert!(reduce("ReduceMean", 18)
        .ints("axes", &[1])
        .invalid()
        .contains("removed in opset 18"));
}

#[test]
fn reduce_keepdims_and_empty_axes() {
    assert_close(
        &reduce("ReduceMean", 13)
            .ints("axes", &[1])
            .int("keepdims", 0)
            .y(&[2]),
        &[2.0, 6.0],
    );
    assert_close(&reduce("ReduceMean", 13).y(&[1, 1]), &[4.0]);
    assert_close(
        &reduce("ReduceMean", 18)
            .int("noop_with_empty_axes", 1)
            .y(&[2, 3]),
        &[1.0, 2.0, 3.0, 4.0, 5.0, 9.0],
    );
    assert_close(
        &reduce("ReduceMax", 13)
            .ints("axes", &[0])
            .int("keepdims", 0)
            .y(&[3]),
        &[4.0, 5.0, 9.0],
    );
    assert_close(
        &reduce("ReduceMin", 13).ints("axes", &[1]).y(&[2, 1]),
        &[1.0, 4.0],
    );
    assert_close(
        &reduce("ReduceSum", 13).init_i64(&[1], &[1]).y(&[2, 1]),
        &[6.0, 18.0],
    );
    assert!(reduce("ReduceMax", 13)
        .ints("axes", &[1, -1])
        .invalid()
        .contains("repeated"));
    assert!(reduce("ReduceMax", 13)
        .ints("axes", &[2])
        .invalid()
        .contains("out of range"));
}

#[test]
fn softmax_from_opset_13_runs_over_one_axis() {
    let c = Case::new("Softmax").input(&[1, 2], &[1.0, 2.0]);
    assert_close(&c.y(&[1, 2]), &[0.2689414213699951, 0.7310585786300049]);
    let axis1 = Case::new("Softmax")
        .input(&[1, 2, 2], &[0.0; 4])
        .int("axis", 1);
    assert_close(&axis1.y(&[1, 2, 2]), &[0.5; 4]);
}

#[test]
fn softmax_before_opset_13_coerces_to_2d_at_the_axis() {
    // Axis 1 of [1, 2, 2] flattens to one row of 4.
    let c = Case::new("Softmax").opset(11).input(&[1, 2, 2], &[0.0; 4]);
    assert_close(&c.y(&[1, 2, 2]), &[0.25; 4]);
    let big = Case::new("Softmax")
        .opset(11)
        .input(&[1, 2], &[1000.0, 1000.0]);
    assert_near(&big.y(&[1, 2]), &[0.5, 0.5], 1e-15);
}
