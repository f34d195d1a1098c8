//! A 1D op equals the same op in 2D over a trailing unit axis (`[N, C, L]` as `[N, C, L, 1]`),
//! the rewrite the lowering converter performs; the oracle must agree with itself on both.

use super::Case;

/// Runs `op` on `x` shaped `[1, 2, L]` and on `[1, 2, L, 1]`, with 1D attributes and their 2D
/// counterparts, and optional weights (shaped for 1D; a unit axis is appended for 2D).
fn same_in_1d_and_2d(op: &str, attrs_1d: &[(&str, Vec<i64>)], weights: Option<(&[usize], &[f32])>) {
    let x: Vec<f32> = (0..14).map(|v| ((v * 7) % 11) as f32 - 5.0).collect();
    let mut one = Case::new(op).input(&[1, 2, 7], &x);
    let mut two = Case::new(op).input(&[1, 2, 7, 1], &x);
    if let Some((shape, w)) = weights {
        one = one.init(shape, w);
        two = two.init(&[shape, &[1]].concat(), w);
    }
    for (name, v) in attrs_1d {
        let v2: Vec<i64> = match *name {
            // pads [b, e] -> [b, 0, e, 0]; other lists gain a 1 for the unit axis.
            "pads" => vec![v[0], 0, v[1], 0],
            "output_padding" => vec![v[0], 0],
            _ => vec![v[0], 1],
        };
        one = one.ints(name, v);
        two = two.ints(name, &v2);
    }
    let (a, b) = (one.run().unwrap(), two.run().unwrap());
    let shape_1d = a.outputs[0].value.shape().to_vec();
    assert_eq!(
        b.outputs[0].value.shape(),
        [shape_1d.as_slice(), &[1]].concat().as_slice()
    );
    assert_eq!(
        a.outputs[0].value.iter().collect::<Vec<_>>(),
        b.outputs[0].value.iter().collect::<Vec<_>>()
    );
    assert_eq!(
        a.outputs[0].bound.iter().collect::<Vec<_>>(),
        b.outputs[0].bound.iter().collect::<Vec<_>>()
    );
}

#[test]
fn conv_1d_equals_conv_2d_over_a_unit_axis() {
    let w: Vec<f32> = (0..12).map(|v| v as f32 - 6.0).collect();
    let attrs = [
        ("strides", vec![2]),
        ("dilations", vec![2]),
        ("pads", vec![2, 1]),
    ];
    same_in_1d_and_2d("Conv", &attrs, Some((&[2, 2, 3], &w)));
}

#[test]
fn pools_1d_equal_pools_2d_over_a_unit_axis() {
    let attrs = [
        ("kernel_shape", vec![3]),
        ("strides", vec![2]),
        ("pads", vec![1, 2]),
    ];
    same_in_1d_and_2d("AveragePool", &attrs, None);
    same_in_1d_and_2d(
        "MaxPool",
        &[attrs[0].clone(), attrs[1].clone(), ("dilations", vec![2])],
        None,
    );
    same_in_1d_and_2d("LpPool", &attrs, None);
}

#[test]
fn conv_transpose_1d_equals_conv_transpose_2d_over_a_unit_axis() {
    let w: Vec<f32> = (0..6).map(|v| v as f32 - 2.0).collect();
    let attrs = [
        ("strides", vec![3]),
        ("pads", vec![1, 2]),
        ("output_padding", vec![1]),
    ];
    same_in_1d_and_2d("ConvTranspose", &attrs, Some((&[2, 1, 3], &w)));
}
