//! MaxPool, AveragePool, LpPool and the global pools.

use super::{assert_close, ramp, Case};
use crate::oracle::{OracleError, Value};

fn pool_1d(op: &str, x: &[f32], kernel: i64) -> Case {
    Case::new(op)
        .input(&[1, 1, x.len()], x)
        .ints("kernel_shape", &[kernel])
}

#[test]
fn average_pool_ceil_mode_with_count_include_pad_counts_explicit_padding_only() {
    // out = ceil((15 + 3 - 4) / 3) + 1 = 6; the last window starts at padded position 15
    // (input index 14, inside the input) and covers [15, pad, pad]: 15 / 3 = 5.
    let c = pool_1d("AveragePool", &ramp(15), 4)
        .ints("strides", &[3])
        .ints("pads", &[1, 2])
        .int("ceil_mode", 1)
        .int("count_include_pad", 1);
    assert_close(&c.y(&[1, 1, 6]), &[1.5, 4.5, 7.5, 10.5, 13.5, 5.0]);
}

#[test]
fn average_pool_ceil_mode_drops_window_starting_in_right_padding() {
    // in 4, k 2, s 2, pads [0, 1]: ceil((4 + 1 - 2) / 2) + 1 = 3, but the third window would
    // start at 4 >= in + pad_begin, inside the right padding, so it is dropped.
    let c = pool_1d("AveragePool", &ramp(4), 2)
        .ints("strides", &[2])
        .ints("pads", &[0, 1])
        .int("ceil_mode", 1);
    assert_close(&c.y(&[1, 1, 2]), &[1.5, 3.5]);
}

#[test]
fn average_pool_ceil_mode_partial_window_ignores_positions_past_the_padded_end() {
    // in 5, k 2, s 2: ceil(3/2) + 1 = 3; the last window is [5, beyond]: 5 / 1 either way.
    for include in [0, 1] {
        let c = pool_1d("AveragePool", &ramp(5), 2)
            .ints("strides", &[2])
            .int("ceil_mode", 1)
            .int("count_include_pad", include);
        assert_close(&c.y(&[1, 1, 3]), &[1.5, 3.5, 5.0]);
    }
    let floor = pool_1d("AveragePool", &ramp(5), 2).ints("strides", &[2]);
    assert_close(&floor.y(&[1, 1, 2]), &[1.5, 3.5]);
}

#[test]
fn average_pool_count_include_pad_changes_the_divisor_at_asymmetric_pads() {
    // k 3, pads [2, 1] on [1,2,3,4]: windows {pad,pad,1} {pad,1,2} {1,2,3} {2,3,4} {3,4,pad}.
    let base = || pool_1d("AveragePool", &[1.0, 2.0, 3.0, 4.0], 3).ints("pads", &[2, 1]);
    assert_close(&base().y(&[1, 1, 5]), &[1.0, 1.5, 2.0, 3.0, 3.5]);
    assert_close(
        &base().int("count_include_pad", 1).y(&[1, 1, 5]),
        &[1.0 / 3.0, 1.0, 2.0, 3.0, 7.0 / 3.0],
    );
}

#[test]
fn average_pool_same_upper_and_lower_pad_opposite_ends() {
    // out = ceil(5/2) = 3, total pad 1.
    let base = || pool_1d("AveragePool", &ramp(5), 2).ints("strides", &[2]);
    assert_close(
        &base().string("auto_pad", "SAME_UPPER").y(&[1, 1, 3]),
        &[1.5, 3.5, 5.0],
    );
    assert_close(
        &base().string("auto_pad", "SAME_LOWER").y(&[1, 1, 3]),
        &[1.0, 2.5, 4.5],
    );
    assert_close(
        &base()
            .string("auto_pad", "SAME_LOWER")
            .int("count_include_pad", 1)
            .y(&[1, 1, 3]),
        &[0.5, 2.5, 4.5],
    );
}

#[test]
fn average_pool_pads_as_large_as_the_kernel_are_accepted_with_count_include_pad() {
    // Window [-2, -1] lies in the padding: 0 / 2.
    let c = pool_1d("AveragePool", &[4.0, 8.0], 2)
        .ints("pads", &[2, 0])
        .int("count_include_pad", 1);
    assert_close(&c.y(&[1, 1, 3]), &[0.0, 2.0, 6.0]);
}

#[test]
fn average_pool_window_only_in_padding_without_count_include_pad_is_undefined() {
    let c = pool_1d("AveragePool", &[4.0, 8.0], 2).ints("pads", &[2, 0]);
    assert!(matches!(c.run(), Err(OracleError::Undefined(m)) if m.contains("0/0")));
}

#[test]
fn average_pool_dilations_exist_from_opset_19() {
    let c = pool_1d("AveragePool", &ramp(6), 2).ints("dilations", &[2]);
    assert!(c
        .opset(18)
        .invalid()
        .contains("'dilations' is not defined before opset 19"));
    let c = pool_1d("AveragePool", &ramp(6), 2)
        .ints("dilations", &[2])
        .opset(19);
    assert_close(&c.y(&[1, 1, 4]), &[2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn average_pool_2d_averages_over_both_axes() {
    let c = Case::new("AveragePool")
        .input(&[1, 1, 2, 4], &ramp(8))
        .ints("kernel_shape", &[2, 2])
        .ints("strides", &[1, 2]);
    // windows {1,2,5,6} and {3,4,7,8}.
    assert_close(&c.y(&[1, 1, 1, 2]), &[3.5, 5.5]);
}

#[test]
fn max_pool_ceil_mode_with_dilations_keeps_the_partial_last_window() {
    // ek = 3, ceil((8 - 3) / 3) + 1 = 3; windows {0,2} {3,5} {6, beyond}.
    let x = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
    let c = pool_1d("MaxPool", &x, 2)
        .ints("dilations", &[2])
        .ints("strides", &[3])
        .int("ceil_mode", 1)
        .outputs(&["y", "i"]);
    assert_close(&c.y(&[1, 1, 3]), &[4.0, 9.0, 2.0]);
    assert_close(&c.output(1, &[1, 1, 3]), &[2.0, 5.0, 6.0]);
    let floor = pool_1d("MaxPool", &x, 2)
        .ints("dilations", &[2])
        .ints("strides", &[3]);
    assert_close(&floor.y(&[1, 1, 2]), &[4.0, 9.0]);
}

#[test]
fn max_pool_indices_are_flat_over_batch_and_channels() {
    let c = Case::new("MaxPool")
        .input(&[1, 2, 4], &[1.0, 5.0, 2.0, 0.0, 7.0, 3.0, 3.0, 8.0])
        .ints("kernel_shape", &[2])
        .ints("strides", &[2])
        .outputs(&["y", "indices"]);
    assert_close(&c.y(&[1, 2, 2]), &[5.0, 2.0, 7.0, 8.0]);
    let ev = c.run().unwrap();
    assert_eq!(
        ev.outputs[1].dtype,
        crate::tensor::DType::Float,
        "undeclared output defaults to Float"
    );
    assert_close(&c.output(1, &[1, 2, 2]), &[1.0, 2.0, 4.0, 7.0]);
}

#[test]
fn max_pool_index_of_a_tie_is_the_first_maximum() {
    let c = pool_1d("MaxPool", &[2.0, 2.0, 1.0], 2).outputs(&["y", "i"]);
    assert_close(&c.output(1, &[1, 1, 2]), &[0.0, 1.0]);
}

#[test]
fn max_pool_storage_order_1_gives_column_major_indices() {
    // x = [[1,2,3],[4,5,6]], 2x2 windows: maxima 5 at (1,1) and 6 at (1,2).
    let base = || {
        Case::new("MaxPool")
            .input(&[1, 1, 2, 3], &ramp(6))
            .ints("kernel_shape", &[2, 2])
            .outputs(&["y", "i"])
    };
    assert_close(&base().output(1, &[1, 1, 1, 2]), &[4.0, 5.0]);
    assert_close(
        &base().int("storage_order", 1).output(1, &[1, 1, 1, 2]),
        &[3.0, 5.0],
    );
}

#[test]
fn max_pool_ignores_padding_even_when_inputs_are_negative() {
    let c = pool_1d("MaxPool", &[-3.0, -1.0, -2.0], 2).ints("pads", &[1, 1]);
    assert_close(&c.y(&[1, 1, 4]), &[-3.0, -1.0, -1.0, -2.0]);
}

#[test]
fn max_pool_window_only_in_padding_is_undefined() {
    let c = pool_1d("MaxPool", &[1.0, 2.0], 2).ints("pads", &[2, 0]);
    assert!(matches!(c.run(), Err(OracleError::Undefined(m)) if m.contains("only padding")));
}

#[test]
fn max_pool_propagates_nan() {
    let c = pool_1d("MaxPool", &[1.0, f32::NAN, 3.0, 0.0], 2).ints("strides", &[2]);
    let y = c.y(&[1, 1, 2]);
    assert!(y[0].is_nan() && y[1] == 3.0, "{y:?}");
}

#[test]
fn pool_attributes_are_validated() {
    assert!(Case::new("MaxPool")
        .input(&[1, 1, 4], &ramp(4))
        .invalid()
        .contains("kernel_shape is required"));
    assert!(pool_1d("MaxPool", &ramp(4), 2)
        .ints("pads", &[-1, 0])
        .invalid()
        .contains("must not be negative"));
    assert!(pool_1d("MaxPool", &ramp(2), 3)
        .invalid()
        .contains("output length would be < 1"));
    assert!(pool_1d("MaxPool", &ramp(4), 0)
        .invalid()
        .contains("kernel_shape must be positive"));
    assert!(pool_1d("MaxPool", &ramp(4), 2)
        .ints("strides", &[1, 1])
        .invalid()
        .contains("strides has 2 values"));
    assert!(pool_1d("MaxPool", &ramp(4), 2)
        .int("ceil_mode", 1)
        .opset(8)
        .invalid()
        .contains("not defined before opset 10"));
    assert!(pool_1d("AveragePool", &ramp(4), 2)
        .int("count_include_pad", 2)
        .invalid()
        .contains("must be 0 or 1"));
    assert!(Case::new("MaxPool")
        .input(&[1, 4], &ramp(4))
        .ints("kernel_shape", &[2])
        .invalid()
        .contains("rank >= 3"));
}

#[test]
fn lp_pool_is_the_p_norm_of_each_window() {
    let base = || pool_1d("LpPool", &[3.0, 4.0, 6.0, 8.0], 2).ints("strides", &[2]);
    assert_close(&base().y(&[1, 1, 2]), &[5.0, 10.0]);
    assert_close(&base().int("p", 1).y(&[1, 1, 2]), &[7.0, 14.0]);
    // Padding counts as zero.
    let padded = pool_1d("LpPool", &[3.0, 4.0], 2).ints("pads", &[1, 0]);
    assert_close(&padded.y(&[1, 1, 2]), &[3.0, 5.0]);
}

#[test]
fn global_pools_reduce_every_spatial_axis() {
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0];
    assert_close(
        &Case::new("GlobalAveragePool")
            .input(&[1, 2, 3], &x)
            .y(&[1, 2, 1]),
        &[2.0, 6.0],
    );
    assert_close(
        &Case::new("GlobalMaxPool")
            .input(&[1, 2, 3], &x)
            .y(&[1, 2, 1]),
        &[3.0, 9.0],
    );
    assert_close(
        &Case::new("GlobalAveragePool")
            .input(&[1, 1, 2, 3], &x)
            .y(&[1, 1, 1, 1]),
        &[4.0],
    );
}

#[test]
fn max_pool_indices_are_int64_values() {
    let c = pool_1d("MaxPool", &[1.0, 3.0], 2).outputs(&["y", "i"]);
    let (_, all) = crate::oracle::evaluate_all(&c.model(), &c.run_inputs()).unwrap();
    assert_eq!(
        all["i"],
        Value::Int(
            ndarray::arr1(&[1i64])
                .into_dyn()
                .into_shape_with_order(vec![1, 1, 1])
                .unwrap()
        )
    );
}
