//! QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger on hand-computed answers: zero
//! points subtracted, per-channel weight scales along the output channels (per column for a
//! matrix), int32 biases at `x_scale × w_scale`, the requantization's one quantum.

use super::quant::QUANTUM;
use super::{assert_close, Case};

/// x = [[130, 128, 126], [128, 132, 128]] (uint8, zero point 128, scale 0.5), so
/// `(x - zp) = [[2, 0, -2], [0, 4, 0]]`; w (int8, k = 1) = [[1, 1], [2, -1]] with per-channel
/// scales [0.125, 0.25] and zero points 0; bias (int32) [10, -5].
fn qlinear_conv(y_scale: f32, y_zero: u8) -> Case {
    Case::new("QLinearConv")
        .init_u8(&[1, 2, 3], &[130, 128, 126, 128, 132, 128])
        .init(&[], &[0.5])
        .init_u8(&[], &[128])
        .init_i8(&[2, 2, 1], &[1, 1, 2, -1])
        .init(&[2], &[0.125, 0.25])
        .init_i8(&[2], &[0, 0])
        .init(&[], &[y_scale])
        .init_u8(&[], &[y_zero])
        .init_i32(&[2], &[10, -5])
}

#[test]
fn qlinear_conv_scales_each_output_channel_by_its_own_weight_scale() {
    // Accumulators: channel 0 [2, 4, -2] + 10, at 0.5 × 0.125 = 1/16: [0.75, 0.875, 0.5];
    // channel 1 [4, -4, -4] - 5, at 0.5 × 0.25 = 1/8: [-0.125, -1.125, -1.125].
    // Quantized at 1/8 + 100 (uint8): [106, 107, 104] and [99, 91, 91].
    let c = qlinear_conv(0.125, 100);
    assert_close(&c.y(&[1, 2, 3]), &[106.0, 107.0, 104.0, 99.0, 91.0, 91.0]);
    // The requantization inside the kernel is the implementation's: one quantum either way.
    assert_close(&c.bound(), &[QUANTUM; 6]);
    // With one weight scale (0.125) for both channels the answer changes: the scale of each
    // output channel is what the oracle applies.
    let swapped = Case::new("QLinearConv")
        .init_u8(&[1, 2, 3], &[130, 128, 126, 128, 132, 128])
        .init(&[], &[0.5])
        .init_u8(&[], &[128])
        .init_i8(&[2, 2, 1], &[1, 1, 2, -1])
        .init(&[], &[0.125])
        .init_i8(&[], &[0])
        .init(&[], &[0.125])
        .init_u8(&[], &[100])
        .init_i32(&[2], &[10, -5]);
    // Per tensor at 0.125: channel 1's accumulator is at 1/16 too: [-0.0625, -0.5625, -0.5625],
    // which rounds (ties to even) to [-0, -4, -4] + 100.
    assert_close(
        &swapped.y(&[1, 2, 3]),
        &[106.0, 107.0, 104.0, 100.0, 96.0, 96.0],
    );
}

#[test]
fn qlinear_conv_saturates_its_output() {
    // At 1/64 channel 0's 0.875 is 56 quanta, 100 + 56 = 156; channel 1's -1.125 is -72: 28.
    // At 1/256: 0.875 is 224 + 100, saturated to 255; -1.125 is -288 + 100, saturated to 0.
    let c = qlinear_conv(1.0 / 256.0, 100);
    let y = c.y(&[1, 2, 3]);
    assert_eq!(y[1], 255.0);
    assert_eq!(y[4], 0.0);
}

#[test]
fn qlinear_matmul_scales_b_per_column() {
    // a - 128 = [[1, -1], [2, 0]] at scale 1; b (int8) [[1, 2, 3], [4, 5, 6]] with column
    // scales [1, 0.5, 0.25]: a·b = [[-3, -3, -3], [2, 4, 6]], scaled [[-3, -1.5, -0.75],
    // [2, 2, 1.5]]; at 0.25 (int8, zero point 0): [[-12, -6, -3], [8, 8, 6]].
    let c = Case::new("QLinearMatMul")
        .init_u8(&[2, 2], &[129, 127, 130, 128])
        .init(&[], &[1.0])
        .init_u8(&[], &[128])
        .init_i8(&[2, 3], &[1, 2, 3, 4, 5, 6])
        .init(&[3], &[1.0, 0.5, 0.25])
        .init_i8(&[3], &[0, 0, 0])
        .init(&[], &[0.25])
        .init_i8(&[], &[0]);
    assert_close(&c.y(&[2, 3]), &[-12.0, -6.0, -3.0, 8.0, 8.0, 6.0]);
    assert_close(&c.bound(), &[QUANTUM; 6]);
}

#[test]
fn conv_integer_subtracts_per_channel_weight_zero_points_exactly() {
    // x - 1 = [2, 4, 6]; w (uint8, k = 2) [[10, 12], [0, 1]] minus zero points [10, 1]:
    // [[0, 2], [-1, 0]]; int32 outputs [[8, 12], [-2, -4]], exact.
    let c = Case::new("ConvInteger")
        .init_u8(&[1, 1, 3], &[3, 5, 7])
        .init_u8(&[2, 1, 2], &[10, 12, 0, 1])
        .init_u8(&[], &[1])
        .init_u8(&[2], &[10, 1]);
    assert_close(&c.y(&[1, 2, 2]), &[8.0, 12.0, -2.0, -4.0]);
    assert_close(&c.bound(), &[0.0; 4]);
    // Without zero points: the stored integers themselves.
    let plain = Case::new("ConvInteger")
        .init_u8(&[1, 1, 3], &[3, 5, 7])
        .init_u8(&[1, 1, 2], &[1, 2]);
    assert_close(&plain.y(&[1, 1, 2]), &[13.0, 19.0]);
}

#[test]
fn matmul_integer_subtracts_per_column_zero_points_exactly() {
    // a - 1 = [2, -3]; b (uint8) [[5, 7], [6, 9]] minus column zero points [5, 7]:
    // [[0, 0], [1, 2]]; a·b = [-3, -6].
    let c = Case::new("MatMulInteger")
        .init_i8(&[1, 2], &[3, -2])
        .init_u8(&[2, 2], &[5, 7, 6, 9])
        .init_i8(&[], &[1])
        .init_u8(&[2], &[5, 7]);
    assert_close(&c.y(&[1, 2]), &[-3.0, -6.0]);
    assert_close(&c.bound(), &[0.0; 2]);
}
