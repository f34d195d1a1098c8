//! Conv and ConvTranspose.

use super::{assert_close, ramp, Case};

fn conv_1d(x: &[f32], w: &[f32]) -> Case {
    Case::new("Conv")
        .input(&[1, 1, x.len()], x)
        .init(&[1, 1, w.len()], w)
}

#[test]
fn conv_same_lower_with_even_kernel_and_stride_2_puts_the_extra_pad_first() {
    // out = ceil(5/2) = 3, total pad = 2*2 + 2 - 5 = 1, all of it at the beginning:
    // padded [0,1,2,3,4,5], windows [0,1] [2,3] [4,5] against w = [1, 10].
    let c = conv_1d(&ramp(5), &[1.0, 10.0])
        .ints("strides", &[2])
        .string("auto_pad", "SAME_LOWER");
    assert_close(&c.y(&[1, 1, 3]), &[10.0, 32.0, 54.0]);
}

#[test]
fn conv_same_upper_with_even_kernel_and_stride_2_puts_the_extra_pad_last() {
    // padded [1,2,3,4,5,0]: windows [1,2] [3,4] [5,0].
    let c = conv_1d(&ramp(5), &[1.0, 10.0])
        .ints("strides", &[2])
        .string("auto_pad", "SAME_UPPER");
    assert_close(&c.y(&[1, 1, 3]), &[21.0, 43.0, 5.0]);
}

#[test]
fn conv_valid_ignores_nothing_and_pads_nothing() {
    let c = conv_1d(&ramp(5), &[1.0, 1.0, 1.0])
        .string("auto_pad", "VALID")
        .ints("strides", &[2]);
    assert_close(&c.y(&[1, 1, 2]), &[6.0, 12.0]);
}

#[test]
fn conv_dilation_with_asymmetric_pads_reads_taps_spaced_by_the_dilation() {
    // ek = 5, out = (5 + 2 + 1 - 5) + 1 = 4; taps of output o at o + 2k - 2.
    // o=0: [pad, 1, 3] -> 2 + 9; o=1: [pad, 2, 4] -> 4 + 12; o=2: [1, 3, 5] -> 1 + 6 + 15;
    // o=3: [2, 4, pad] -> 2 + 8.
    let c = conv_1d(&ramp(5), &[1.0, 2.0, 3.0])
        .ints("dilations", &[2])
        .ints("pads", &[2, 1]);
    assert_close(&c.y(&[1, 1, 4]), &[11.0, 16.0, 22.0, 10.0]);
}

#[test]
fn conv_group_2_of_4_channels_uses_each_groups_own_channels() {
    // Group 0 (channels 0, 1) -> output 0; group 1 (channels 2, 3) -> output 1.
    let c = Case::new("Conv")
        .input(&[1, 4, 3], &ramp(12))
        .init(&[2, 2, 1], &[1.0, 2.0, 3.0, 4.0])
        .init(&[2], &[100.0, 200.0])
        .int("group", 2);
    // y0 = 1*[1,2,3] + 2*[4,5,6] + 100; y1 = 3*[7,8,9] + 4*[10,11,12] + 200.
    assert_close(
        &c.y(&[1, 2, 3]),
        &[109.0, 112.0, 115.0, 261.0, 268.0, 275.0],
    );
}

#[test]
fn conv_depthwise_without_bias_filters_each_channel_alone() {
    let c = Case::new("Conv")
        .input(&[1, 2, 4], &ramp(8))
        .init(&[2, 1, 2], &[1.0, -1.0, 2.0, 1.0])
        .int("group", 2);
    // c0 = [1,2,3,4] * [1,-1]; c1 = [5,6,7,8] * [2,1].
    assert_close(&c.y(&[1, 2, 3]), &[-1.0, -1.0, -1.0, 16.0, 19.0, 22.0]);
}

#[test]
fn conv_2d_with_stride_and_pads_skips_padding_taps() {
    // x = [[1,2,3],[4,5,6],[7,8,9]], 2x2 ones kernel, stride 2, pads 1 on every side:
    // windows cover {1}, {2,3}, {4,7}, {5,6,8,9}.
    let c = Case::new("Conv")
        .input(&[1, 1, 3, 3], &ramp(9))
        .init(&[1, 1, 2, 2], &[1.0; 4])
        .ints("strides", &[2, 2])
        .ints("pads", &[1, 1, 1, 1]);
    assert_close(&c.y(&[1, 1, 2, 2]), &[1.0, 5.0, 11.0, 28.0]);
}

#[test]
fn conv_batch_and_output_channels_are_independent() {
    let c = Case::new("Conv")
        .input(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0])
        .init(&[2, 1, 1], &[1.0, -1.0])
        .init(&[2], &[0.5, 0.0]);
    assert_close(
        &c.y(&[2, 2, 2]),
        &[1.5, 2.5, -1.0, -2.0, 3.5, 4.5, -3.0, -4.0],
    );
}

#[test]
fn conv_kernel_shape_attribute_must_match_the_weights() {
    let m = conv_1d(&ramp(5), &[1.0, 1.0])
        .ints("kernel_shape", &[3])
        .invalid();
    assert!(
        m.contains("kernel_shape") && m.contains("'n' (Conv)"),
        "{m}"
    );
    assert_close(
        &conv_1d(&ramp(3), &[1.0, 1.0])
            .ints("kernel_shape", &[2])
            .y(&[1, 1, 2]),
        &[3.0, 5.0],
    );
}

#[test]
fn conv_weight_channels_inconsistent_with_input_and_group_is_invalid() {
    let m = Case::new("Conv")
        .input(&[1, 3, 5], &[0.0; 15])
        .init(&[2, 2, 1], &[0.0; 4])
        .invalid();
    assert!(m.contains("W.shape[1] must be 3"), "{m}");
}

#[test]
fn conv_group_not_dividing_channels_is_invalid() {
    let m = Case::new("Conv")
        .input(&[1, 3, 5], &[0.0; 15])
        .init(&[2, 1, 1], &[0.0; 2])
        .int("group", 2)
        .invalid();
    assert!(m.contains("does not divide the 3 input channels"), "{m}");
    let m = Case::new("Conv")
        .input(&[1, 4, 5], &[0.0; 20])
        .init(&[3, 2, 1], &[0.0; 6])
        .int("group", 2)
        .invalid();
    assert!(m.contains("does not divide the 3 output channels"), "{m}");
}

#[test]
fn conv_output_shorter_than_one_is_invalid() {
    let m = conv_1d(&[1.0, 2.0], &[1.0; 3]).invalid();
    assert!(m.contains("output length would be < 1"), "{m}");
    // Padding can make room for the kernel.
    assert_close(
        &conv_1d(&[1.0, 2.0], &[1.0; 3])
            .ints("pads", &[1, 0])
            .y(&[1, 1, 1]),
        &[3.0],
    );
}

#[test]
fn conv_attribute_lengths_and_signs_are_checked() {
    let m = conv_1d(&ramp(5), &[1.0]).ints("strides", &[1, 1]).invalid();
    assert!(m.contains("strides has 2 values"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0]).ints("strides", &[0]).invalid();
    assert!(m.contains("strides must be positive"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0]).ints("dilations", &[-1]).invalid();
    assert!(m.contains("dilations must be positive"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0]).ints("pads", &[1]).invalid();
    assert!(m.contains("pads has 1 values"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0]).ints("pads", &[-1, 0]).invalid();
    assert!(m.contains("must not be negative"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0])
        .ints("pads", &[0, 0])
        .string("auto_pad", "VALID")
        .invalid();
    assert!(m.contains("cannot be used together with auto_pad"), "{m}");
    let m = conv_1d(&ramp(5), &[1.0])
        .string("auto_pad", "SAME")
        .invalid();
    assert!(m.contains("auto_pad must be"), "{m}");
    let m = Case::new("Conv")
        .input(&[1, 5], &ramp(5))
        .init(&[1, 1], &[1.0])
        .invalid();
    assert!(m.contains("rank >= 3"), "{m}");
}

#[test]
fn conv_bias_must_have_one_value_per_output_channel() {
    let m = conv_1d(&ramp(3), &[1.0]).init(&[2], &[0.0, 0.0]).invalid();
    assert!(m.contains("B has shape [2], expected [1]"), "{m}");
}

fn conv_transpose_1d(x: &[f32], w: &[f32]) -> Case {
    Case::new("ConvTranspose")
        .input(&[1, 1, x.len()], x)
        .init(&[1, 1, w.len()], w)
}

#[test]
fn conv_transpose_scatters_each_input_at_stride_spacing() {
    // y[2i + k] += x[i] w[k]: full length 2*2 + 2 = 6.
    let c = conv_transpose_1d(&[1.0, 2.0, 3.0], &[1.0, 10.0]).ints("strides", &[2]);
    assert_close(&c.y(&[1, 1, 6]), &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
}

#[test]
fn conv_transpose_pads_crop_and_output_padding_extends_the_end() {
    // full = 2*2 + 1 + 2 = 7 = [1,10,2,20,3,30,0]; pad_begin 1 crops the first element.
    let c = conv_transpose_1d(&[1.0, 2.0, 3.0], &[1.0, 10.0])
        .ints("strides", &[2])
        .ints("pads", &[1, 0])
        .ints("output_padding", &[1]);
    assert_close(&c.y(&[1, 1, 6]), &[10.0, 2.0, 20.0, 3.0, 30.0, 0.0]);
}

#[test]
fn conv_transpose_same_upper_and_lower_crop_opposite_ends() {
    // full = 2*1 + 3 = 5 = [1,1,3,2,2]; out = 2*2 = 4, total pad 1.
    let base = || conv_transpose_1d(&[1.0, 2.0], &[1.0, 1.0, 1.0]).ints("strides", &[2]);
    assert_close(
        &base().string("auto_pad", "SAME_UPPER").y(&[1, 1, 4]),
        &[1.0, 1.0, 3.0, 2.0],
    );
    assert_close(
        &base().string("auto_pad", "SAME_LOWER").y(&[1, 1, 4]),
        &[1.0, 3.0, 2.0, 2.0],
    );
}

#[test]
fn conv_transpose_output_shape_larger_than_full_extends_the_end() {
    // As the ONNX backend test test_convtranspose_output_shape expects.
    let c = conv_transpose_1d(&[1.0, 2.0], &[1.0, 1.0, 1.0])
        .ints("strides", &[2])
        .ints("output_shape", &[7]);
    assert_close(&c.y(&[1, 1, 7]), &[1.0, 1.0, 3.0, 2.0, 2.0, 0.0, 0.0]);
}

#[test]
fn conv_transpose_output_shape_smaller_than_full_puts_the_extra_crop_first() {
    // total = 5 - 4 = 1, NOTSET: pad_begin = total - total/2 = 1 (the spec's "Else" branch).
    let c = conv_transpose_1d(&[1.0, 2.0], &[1.0, 1.0, 1.0])
        .ints("strides", &[2])
        .ints("output_shape", &[4]);
    assert_close(&c.y(&[1, 1, 4]), &[1.0, 3.0, 2.0, 2.0]);
}

#[test]
fn conv_transpose_dilation_spreads_the_kernel() {
    // y[i + 2k] += x[i] w[k]: full = 1 + 2 + 1 = 4.
    let c = conv_transpose_1d(&[1.0, 2.0], &[1.0, 10.0]).ints("dilations", &[2]);
    assert_close(&c.y(&[1, 1, 4]), &[1.0, 2.0, 10.0, 20.0]);
}

#[test]
fn conv_transpose_groups_map_input_channels_to_their_own_outputs() {
    let c = Case::new("ConvTranspose")
        .input(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0])
        .init(&[2, 1, 1], &[2.0, 3.0])
        .init(&[2], &[1.0, -1.0])
        .int("group", 2);
    assert_close(&c.y(&[1, 2, 2]), &[3.0, 5.0, 8.0, 11.0]);
}

#[test]
fn conv_transpose_2d_matches_the_onnx_pads_example() {
    // onnx/onnx docs/Operators.md, convtranspose_pads: x = 0..8 (3x3), W ones (1,2,3,3), strides [3,2],
    // pads [1,2,1,2] -> (1,2,7,3); first channel rows shown there.
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let c = Case::new("ConvTranspose")
        .input(&[1, 1, 3, 3], &x)
        .init(&[1, 2, 3, 3], &[1.0; 18])
        .ints("strides", &[3, 2])
        .ints("pads", &[1, 2, 1, 2]);
    let y = c.y(&[1, 2, 7, 3]);
    let expected = [
        1.0, 1.0, 3.0, 1.0, 1.0, 3.0, 7.0, 4.0, 9.0, 7.0, 4.0, 9.0, 7.0, 4.0, 9.0, 13.0, 7.0, 15.0,
        13.0, 7.0, 15.0,
    ];
    assert_close(&y[..21], &expected);
    assert_close(&y[21..], &expected);
}

#[test]
fn conv_transpose_output_padding_must_be_smaller_than_stride_or_dilation() {
    let m = conv_transpose_1d(&[1.0, 2.0], &[1.0, 1.0])
        .ints("output_padding", &[1])
        .invalid();
    assert!(m.contains("output_padding 1"), "{m}");
}

#[test]
fn conv_transpose_weight_must_have_input_channels_first() {
    let m = Case::new("ConvTranspose")
        .input(&[1, 2, 2], &[0.0; 4])
        .init(&[1, 2, 1], &[0.0; 2])
        .invalid();
    assert!(m.contains("must have X's 2 channels on axis 0"), "{m}");
}
