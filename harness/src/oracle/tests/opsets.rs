//! The oldest and newest opsets: opset 1–6 forms (legacy broadcasting, `consumed_inputs`,
//! `is_test`, attributes that later became inputs or changed type), opsets 24–28 and
//! CausalConvWithState (opset 27).

use super::{assert_close, Case};
use crate::oracle::OracleError;

fn unsupported(c: &Case) -> String {
    match c.run() {
        Err(OracleError::Unsupported(m)) => m,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn the_oracle_implements_opsets_1_to_28() {
    let relu = |opset| Case::new("Relu").opset(opset).input(&[2], &[-1.0, 2.0]);
    for opset in [1, 6, 7, 23, 24, 28] {
        assert_close(&relu(opset).y(&[2]), &[0.0, 2.0]);
    }
    assert!(unsupported(&relu(29)).contains("opset 29"));
}

#[test]
fn opset_6_arithmetic_broadcasts_b_only_with_broadcast_1_aligned_at_axis() {
    // A [2, 3, 1] + B [3] at axis 1: B runs along the channels.
    let add = |b: &[f32]| {
        Case::new("Add")
            .opset(6)
            .input(&[2, 3, 1], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
            .init(&[b.len()], b)
    };
    let y = add(&[10.0, 20.0, 30.0])
        .int("broadcast", 1)
        .int("axis", 1)
        .y(&[2, 3, 1]);
    assert_close(&y, &[10.0, 21.0, 32.0, 13.0, 24.0, 35.0]);
    // Without broadcast=1 unequal shapes are invalid, though numpy rules would accept them.
    assert!(add(&[10.0]).invalid().contains("broadcast is 0"));
    // A single element is shared; by default B matches A's last dimensions.
    assert_close(
        &add(&[10.0]).int("broadcast", 1).y(&[2, 3, 1]),
        &[10.0, 11.0, 12.0, 13.0, 14.0, 15.0],
    );
    assert!(add(&[1.0, 2.0, 3.0])
        .int("broadcast", 1)
        .invalid()
        .contains("not a run of A"));
    let sub = Case::new("Sub")
        .opset(6)
        .input(&[2, 2], &[5.0, 6.0, 7.0, 8.0])
        .init(&[2], &[1.0, 2.0])
        .int("broadcast", 1);
    assert_close(&sub.y(&[2, 2]), &[4.0, 4.0, 6.0, 6.0]);
    // The attributes are gone from opset 7, where numpy rules apply.
    assert!(add(&[10.0])
        .opset(7)
        .int("broadcast", 1)
        .invalid()
        .contains("removed in opset 7"));
}

#[test]
fn consumed_inputs_is_accepted_until_opset_6() {
    let relu = |opset| {
        Case::new("Relu")
            .opset(opset)
            .input(&[1], &[-3.0])
            .ints("consumed_inputs", &[0])
    };
    assert_close(&relu(1).y(&[1]), &[0.0]);
    assert!(relu(6).invalid().contains("removed in opset 6"));
}

#[test]
fn opset_6_prelu_applies_a_c_element_slope_per_channel() {
    let prelu = |opset| {
        Case::new("PRelu")
            .opset(opset)
            .input(&[1, 2, 2], &[-1.0, 2.0, -3.0, 4.0])
            .init(&[2], &[0.5, 0.25])
    };
    assert_close(&prelu(6).y(&[1, 2, 2]), &[-0.5, 2.0, -0.75, 4.0]);
    // From opset 7 the slope broadcasts by numpy rules: along the last axis.
    assert_close(&prelu(7).y(&[1, 2, 2]), &[-0.5, 2.0, -1.5, 4.0]);
}

#[test]
fn opset_6_batch_norm_and_dropout_need_is_test() {
    let bn = Case::new("BatchNormalization")
        .opset(6)
        .input(&[1, 1, 2], &[1.0, 3.0])
        .init(&[1], &[2.0])
        .init(&[1], &[1.0])
        .init(&[1], &[1.0])
        .init(&[1], &[4.0])
        .float("epsilon", 0.0);
    assert!(unsupported(&bn).contains("is_test=0"));
    assert_close(&bn.int("is_test", 1).y(&[1, 1, 2]), &[1.0, 3.0]);
    let dropout = Case::new("Dropout").opset(6).input(&[2], &[1.0, -2.0]);
    assert!(unsupported(&dropout).contains("is_test=0"));
    assert_close(&dropout.int("is_test", 1).y(&[2]), &[1.0, -2.0]);
}

#[test]
fn opset_1_attributes_that_later_changed() {
    // LpPool's p is a float in opset 1: (3³ + 4³)^(1/3).
    let lp = Case::new("LpPool")
        .opset(1)
        .input(&[1, 1, 2], &[3.0, 4.0])
        .ints("kernel_shape", &[2])
        .float("p", 3.0);
    assert_close(&lp.y(&[1, 1, 1]), &[91f64.powf(1.0 / 3.0)]);
    // Pad's pads are `paddings` in opset 1, `pads` from 2.
    let pad = Case::new("Pad")
        .opset(1)
        .input(&[1, 1, 2], &[1.0, 2.0])
        .ints("paddings", &[0, 0, 1, 0, 0, 1])
        .float("value", 5.0);
    assert_close(&pad.y(&[1, 1, 4]), &[5.0, 1.0, 2.0, 5.0]);
    // Reshape's shape is an attribute before opset 5.
    let reshape = Case::new("Reshape")
        .opset(4)
        .input(&[1, 2], &[1.0, 2.0])
        .ints("shape", &[2, 1]);
    assert_close(&reshape.y(&[2, 1]), &[1.0, 2.0]);
    // Concat's axis defaults to 1 before opset 4.
    let concat = |opset| {
        Case::new("Concat")
            .opset(opset)
            .input(&[1, 1], &[1.0])
            .input(&[1, 1], &[2.0])
    };
    assert_close(&concat(3).y(&[1, 2]), &[1.0, 2.0]);
    assert!(concat(4).invalid().contains("axis is required"));
    // Cast's target type is a string before opset 6.
    let cast = Case::new("Cast")
        .opset(5)
        .input(&[2], &[1.7, -2.5])
        .string("to", "INT32");
    assert_close(&cast.y(&[2]), &[1.0, -2.0]);
    // Gemm's C must be [M, N] unless broadcast=1 before opset 7.
    let gemm = || {
        Case::new("Gemm")
            .opset(6)
            .input(&[1, 1], &[2.0])
            .init(&[1, 2], &[1.0, 3.0])
            .init(&[2], &[10.0, 20.0])
    };
    assert!(gemm().invalid().contains("broadcast is 0"));
    assert_close(&gemm().int("broadcast", 1).y(&[1, 2]), &[12.0, 26.0]);
}

fn causal(past: Option<f32>) -> Case {
    // Channel 0 of one batch, kernel [10, 1]: y[t] = 10 p[t] + p[t + 1] over the padded input.
    let c = Case::new("CausalConvWithState")
        .opset(27)
        .input(&[1, 1, 3], &[1.0, 2.0, 3.0])
        .init(&[1, 1, 2], &[10.0, 1.0]);
    let c = match past {
        Some(p) => c.absent().init(&[1, 1, 1], &[p]),
        None => c,
    };
    c.outputs(&["y", "state"])
}

#[test]
fn causal_conv_with_state_pads_with_the_past_and_returns_the_last_positions() {
    // No past: padded [0, 1, 2, 3].
    assert_close(&causal(None).y(&[1, 1, 3]), &[1.0, 12.0, 23.0]);
    assert_close(&causal(None).output(1, &[1, 1, 1]), &[3.0]);
    // Past 5: padded [5, 1, 2, 3].
    assert_close(&causal(Some(5.0)).y(&[1, 1, 3]), &[51.0, 12.0, 23.0]);
    let silu = |x: f64| x / (1.0 + (-x).exp());
    for activation in ["silu", "swish"] {
        assert_close(
            &causal(None).string("activation", activation).y(&[1, 1, 3]),
            &[silu(1.0), silu(12.0), silu(23.0)],
        );
    }
    assert!(causal(None).opset(26).invalid().contains("opset 27"));
    assert!(causal(None)
        .string("activation", "relu")
        .invalid()
        .contains("activation"));
    assert!(causal(Some(5.0))
        .init(&[1], &[0.0])
        .invalid()
        .contains("at most 4"));
}

#[test]
fn max_pool_and_reduce_max_select_integers_exactly() {
    let pool = Case::new("MaxPool")
        .init_i64(&[1, 1, 4], &[3, -1, 7, 2])
        .ints("kernel_shape", &[2])
        .ints("strides", &[2]);
    assert_close(&pool.y(&[1, 1, 2]), &[3.0, 7.0]);
    assert!(matches!(
        pool.run().unwrap().outputs[0].bound.iter().next(),
        Some(&b) if b == 0.0
    ));
    let reduce = |op: &str| {
        Case::new(op)
            .opset(13)
            .init_i64(&[2, 2], &[1, 5, 4, 2])
            .ints("axes", &[1])
            .int("keepdims", 0)
    };
    assert_close(&reduce("ReduceMax").y(&[2]), &[5.0, 4.0]);
    assert_close(&reduce("ReduceMin").y(&[2]), &[1.0, 2.0]);
    // The max of no integers is the type's smallest value, their min its largest.
    let empty = |op: &str| {
        Case::new(op)
            .opset(13)
            .init_i64(&[0, 2], &[])
            .ints("axes", &[0])
    };
    let min = i64::MIN as f64;
    assert_close(&empty("ReduceMax").y(&[1, 2]), &[min, min]);
    let max = i64::MAX as f64;
    assert_close(&empty("ReduceMin").y(&[1, 2]), &[max, max]);
}
