//! Examples from the ONNX operator documentation (onnx/onnx: docs/Operators.md), whose expected outputs
//! are those of the ONNX backend test suite.

use super::{assert_close, assert_near, ramp, Case};

fn grid(n: usize) -> Case {
    Case::new("AveragePool").input(&[1, 1, n, n], &ramp(n * n))
}

#[test]
fn average_pool_2d_ceil() {
    let c = grid(4)
        .ints("kernel_shape", &[3, 3])
        .ints("strides", &[2, 2])
        .int("ceil_mode", 1);
    assert_close(&c.y(&[1, 1, 2, 2]), &[6.0, 7.5, 12.0, 13.5]);
}

#[test]
fn average_pool_2d_ceil_last_window_starts_on_pad() {
    let x = [
        0.8580, 0.0786, 0.2692, 0.1537, 0.8816, 0.4353, 0.5772, 0.6623, 0.9067, 0.9483, 0.5970,
        0.7630,
    ];
    let c = Case::new("AveragePool")
        .input(&[1, 3, 2, 2], &x)
        .ints("kernel_shape", &[3, 3])
        .ints("strides", &[3, 3])
        .ints("pads", &[1, 1, 1, 1])
        .int("ceil_mode", 1)
        .int("count_include_pad", 1);
    assert_near(&c.y(&[1, 3, 1, 1]), &[0.1511, 0.2841, 0.3572], 1e-4);
}

#[test]
fn average_pool_2d_precomputed_pads_count_include_pad() {
    let c = grid(5)
        .ints("kernel_shape", &[5, 5])
        .ints("pads", &[2, 2, 2, 2])
        .int("count_include_pad", 1);
    let expected = [
        2.52, 3.6, 4.8, 4.08, 3.24, 4.56, 6.4, 8.4, 7.04, 5.52, 7.2, 10.0, 13.0, 10.8, 8.4, 6.96,
        9.6, 12.4, 10.24, 7.92, 6.12, 8.4, 10.8, 8.88, 6.84,
    ];
    assert_close(&c.y(&[1, 1, 5, 5]), &expected);
}

#[test]
fn average_pool_2d_precomputed_same_upper() {
    let c = grid(5)
        .ints("kernel_shape", &[3, 3])
        .ints("strides", &[2, 2])
        .string("auto_pad", "SAME_UPPER");
    assert_close(
        &c.y(&[1, 1, 3, 3]),
        &[4.0, 5.5, 7.0, 11.5, 13.0, 14.5, 19.0, 20.5, 22.0],
    );
}

#[test]
fn max_pool_2d_ceil_output_size_reduce_by_one() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 2, 2], &ramp(4))
        .ints("kernel_shape", &[1, 1])
        .ints("strides", &[2, 2])
        .int("ceil_mode", 1);
    assert_close(&c.y(&[1, 1, 1, 1]), &[1.0]);
}

#[test]
fn max_pool_2d_dilations() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 4, 4], &ramp(16))
        .ints("kernel_shape", &[2, 2])
        .ints("dilations", &[2, 2]);
    assert_close(&c.y(&[1, 1, 2, 2]), &[11.0, 12.0, 15.0, 16.0]);
}

#[test]
fn max_pool_2d_precomputed_same_upper() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 5, 5], &ramp(25))
        .ints("kernel_shape", &[3, 3])
        .ints("strides", &[2, 2])
        .string("auto_pad", "SAME_UPPER");
    assert_close(
        &c.y(&[1, 1, 3, 3]),
        &[7.0, 9.0, 10.0, 17.0, 19.0, 20.0, 22.0, 24.0, 25.0],
    );
}

#[test]
fn max_pool_with_argmax_2d_precomputed_strides() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 5, 5], &ramp(25))
        .ints("kernel_shape", &[2, 2])
        .ints("strides", &[2, 2])
        .int("storage_order", 1)
        .outputs(&["y", "z"]);
    assert_close(&c.y(&[1, 1, 2, 2]), &[7.0, 9.0, 17.0, 19.0]);
    assert_close(&c.output(1, &[1, 1, 2, 2]), &[6.0, 16.0, 8.0, 18.0]);
}

#[test]
fn max_pool_with_argmax_2d_precomputed_pads() {
    let c = Case::new("MaxPool")
        .input(&[1, 1, 5, 5], &ramp(25))
        .ints("kernel_shape", &[5, 5])
        .ints("pads", &[2, 2, 2, 2])
        .outputs(&["y", "z"]);
    let row = |a: f64, b: f64, c: f64| [a, b, c, c, c];
    let y: Vec<f64> = [
        row(13.0, 14.0, 15.0),
        row(18.0, 19.0, 20.0),
        row(23.0, 24.0, 25.0),
        row(23.0, 24.0, 25.0),
        row(23.0, 24.0, 25.0),
    ]
    .concat();
    assert_close(&c.y(&[1, 1, 5, 5]), &y);
    let z: Vec<f64> = y.iter().map(|v| v - 1.0).collect();
    assert_close(&c.output(1, &[1, 1, 5, 5]), &z);
}

#[test]
fn conv_transpose_autopad_same() {
    // 3x3 input 0..8, W ones (1, 2, 3, 3), strides 2, SAME_UPPER: 6x6, first channel.
    let x: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let c = Case::new("ConvTranspose")
        .input(&[1, 1, 3, 3], &x)
        .init(&[1, 2, 3, 3], &[1.0; 18])
        .ints("strides", &[2, 2])
        .string("auto_pad", "SAME_UPPER");
    let expected = [
        0.0, 0.0, 1.0, 1.0, 3.0, 2.0, 0.0, 0.0, 1.0, 1.0, 3.0, 2.0, 3.0, 3.0, 8.0, 5.0, 12.0, 7.0,
        3.0, 3.0, 7.0, 4.0, 9.0, 5.0, 9.0, 9.0, 20.0, 11.0, 24.0, 13.0, 6.0, 6.0, 13.0, 7.0, 15.0,
        8.0,
    ];
    let y = c.y(&[1, 2, 6, 6]);
    assert_close(&y[..36], &expected);
    assert_close(&y[36..], &expected);
}

#[test]
fn conv_transpose_dilations() {
    let c = Case::new("ConvTranspose")
        .input(
            &[1, 1, 3, 3],
            &[3.0, 8.0, 1.0, 9.0, 5.0, 7.0, 3.0, 2.0, 6.0],
        )
        .init(&[1, 1, 2, 2], &[7.0, 2.0, 1.0, 9.0])
        .ints("dilations", &[2, 2]);
    let expected = [
        21.0, 56.0, 13.0, 16.0, 2.0, 63.0, 35.0, 67.0, 10.0, 14.0, 24.0, 22.0, 76.0, 76.0, 21.0,
        9.0, 5.0, 88.0, 45.0, 63.0, 3.0, 2.0, 33.0, 18.0, 54.0,
    ];
    assert_close(&c.y(&[1, 1, 5, 5]), &expected);
}
