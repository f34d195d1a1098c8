//! Shape and layout ops.

use super::{assert_close, ramp, Case};

fn ramp0(n: usize) -> Vec<f32> {
    (0..n).map(|v| v as f32).collect()
}

#[test]
fn flatten_splits_the_shape_at_axis() {
    let base = || Case::new("Flatten").input(&[2, 3, 4], &ramp(24));
    assert_eq!(base().y(&[2, 12]).len(), 24);
    base().int("axis", 2).y(&[6, 4]);
    base().int("axis", 0).y(&[1, 24]);
    base().int("axis", -1).y(&[6, 4]);
    base().int("axis", 3).y(&[24, 1]);
    assert!(base()
        .int("axis", -1)
        .opset(9)
        .invalid()
        .contains("out of range"));
}

#[test]
fn reshape_copies_zero_dims_and_infers_minus_one() {
    let c = Case::new("Reshape")
        .input(&[2, 3, 4], &ramp(24))
        .init_i64(&[2], &[0, -1]);
    assert_close(
        &c.y(&[2, 12]),
        &ramp(24).iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
    );
    let m = Case::new("Reshape")
        .input(&[2, 3], &ramp(6))
        .init_i64(&[1], &[4])
        .invalid();
    assert!(m.contains("cannot reshape"), "{m}");
    let m = Case::new("Reshape")
        .input(&[2, 3], &ramp(6))
        .init_i64(&[2], &[-1, -1])
        .invalid();
    assert!(m.contains("only one -1"), "{m}");
}

#[test]
fn reshape_allowzero_keeps_zero_as_a_size() {
    let c = Case::new("Reshape")
        .opset(14)
        .input(&[0, 3], &[])
        .init_i64(&[2], &[3, 0])
        .int("allowzero", 1);
    c.y(&[3, 0]);
}

#[test]
fn squeeze_and_unsqueeze_axes_moved_to_an_input_in_opset_13() {
    let x = ramp(6);
    Case::new("Squeeze")
        .opset(11)
        .input(&[2, 1, 3], &x)
        .ints("axes", &[1])
        .y(&[2, 3]);
    Case::new("Squeeze")
        .opset(13)
        .input(&[2, 1, 3], &x)
        .init_i64(&[1], &[-2])
        .y(&[2, 3]);
    Case::new("Squeeze").input(&[1, 2, 1, 3], &x).y(&[2, 3]);
    assert!(Case::new("Squeeze")
        .input(&[2, 1, 3], &x)
        .init_i64(&[1], &[0])
        .invalid()
        .contains("cannot squeeze axis 0"));
    Case::new("Unsqueeze")
        .input(&[2, 3], &x)
        .init_i64(&[2], &[0, 3])
        .y(&[1, 2, 3, 1]);
    Case::new("Unsqueeze")
        .opset(11)
        .input(&[2, 3], &x)
        .ints("axes", &[-1])
        .y(&[2, 3, 1]);
    assert!(Case::new("Unsqueeze")
        .input(&[2, 3], &x)
        .init_i64(&[2], &[0, 0])
        .invalid()
        .contains("repeated"));
}

#[test]
fn transpose_permutes_axes() {
    let c = Case::new("Transpose")
        .input(&[1, 2, 3], &ramp0(6))
        .ints("perm", &[0, 2, 1]);
    assert_close(&c.y(&[1, 3, 2]), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    let reversed = Case::new("Transpose").input(&[2, 3], &ramp0(6));
    assert_close(&reversed.y(&[3, 2]), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert!(Case::new("Transpose")
        .input(&[2, 3], &ramp0(6))
        .ints("perm", &[0, 0])
        .invalid()
        .contains("not a permutation"));
}

#[test]
fn concat_joins_along_the_axis() {
    let c = Case::new("Concat")
        .input(&[1, 1, 2], &[1.0, 2.0])
        .init(&[1, 2, 2], &[3.0, 4.0, 5.0, 6.0])
        .int("axis", 1);
    assert_close(&c.y(&[1, 3, 2]), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let m = Case::new("Concat")
        .input(&[1, 1, 2], &[1.0, 2.0])
        .init(&[1, 1, 3], &[0.0; 3])
        .int("axis", 1)
        .invalid();
    assert!(m.contains("does not match"), "{m}");
}

#[test]
fn pad_modes_on_the_length_axis() {
    let pads = [0, 0, 2, 0, 0, 2];
    let run = |mode: &str| {
        Case::new("Pad")
            .input(&[1, 1, 3], &[1.0, 2.0, 3.0])
            .init_i64(&[6], &pads)
            .string("mode", mode)
            .y(&[1, 1, 7])
    };
    assert_close(&run("constant"), &[0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]);
    assert_close(&run("reflect"), &[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    assert_close(&run("edge"), &[1.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]);
    assert_close(
        &Case::new("Pad")
            .opset(19)
            .input(&[1, 1, 3], &[1.0, 2.0, 3.0])
            .init_i64(&[6], &pads)
            .string("mode", "wrap")
            .y(&[1, 1, 7]),
        &[2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0],
    );
}

#[test]
fn pad_reflect_matches_the_spec_example() {
    let c = Case::new("Pad")
        .input(&[3, 2], &[1.0, 1.2, 2.3, 3.4, 4.5, 5.7])
        .init_i64(&[4], &[0, 2, 0, 0])
        .string("mode", "reflect");
    let y = c.y(&[3, 4]);
    let f = |v: f32| f64::from(v);
    assert_close(&y[..4], &[f(1.0), f(1.2), f(1.0), f(1.2)]);
}

#[test]
fn pad_constant_value_and_negative_pads() {
    let c = Case::new("Pad")
        .input(&[1, 1, 2], &[1.0, 2.0])
        .init_i64(&[6], &[0, 0, 1, 0, 0, 2])
        .init(&[], &[9.0]);
    assert_close(&c.y(&[1, 1, 5]), &[9.0, 1.0, 2.0, 9.0, 9.0]);
    let crop = Case::new("Pad")
        .input(&[1, 1, 3], &[1.0, 2.0, 3.0])
        .init_i64(&[6], &[0, 0, -1, 0, 0, 1]);
    assert_close(&crop.y(&[1, 1, 3]), &[2.0, 3.0, 0.0]);
    let opset2 = Case::new("Pad")
        .opset(7)
        .input(&[1, 2], &[1.0, 2.0])
        .ints("pads", &[0, 1, 0, 0])
        .float("value", 5.0);
    assert_close(&opset2.y(&[1, 3]), &[5.0, 1.0, 2.0]);
    let axes = Case::new("Pad")
        .opset(18)
        .input(&[1, 1, 2], &[1.0, 2.0])
        .init_i64(&[2], &[1, 1])
        .absent()
        .init_i64(&[1], &[-1]);
    assert_close(&axes.y(&[1, 1, 4]), &[0.0, 1.0, 2.0, 0.0]);
}

#[test]
fn slice_with_steps_and_clamped_ends() {
    let base = || Case::new("Slice").input(&[10], &ramp0(10));
    assert_close(
        &base()
            .init_i64(&[1], &[2])
            .init_i64(&[1], &[8])
            .absent()
            .init_i64(&[1], &[3])
            .y(&[2]),
        &[2.0, 5.0],
    );
    assert_close(
        &base()
            .init_i64(&[1], &[8])
            .init_i64(&[1], &[2])
            .absent()
            .init_i64(&[1], &[-2])
            .y(&[3]),
        &[8.0, 6.0, 4.0],
    );
    let all_reversed = base()
        .init_i64(&[1], &[-1])
        .init_i64(&[1], &[i64::MIN])
        .absent()
        .init_i64(&[1], &[-1]);
    assert_close(
        &all_reversed.y(&[10]),
        &(0..10).rev().map(f64::from).collect::<Vec<_>>(),
    );
    assert_close(
        &base()
            .init_i64(&[1], &[7])
            .init_i64(&[1], &[i64::MAX])
            .y(&[3]),
        &[7.0, 8.0, 9.0],
    );
}

#[test]
fn gather_takes_rows_with_negative_indices() {
    let c = Case::new("Gather")
        .input(&[3, 2], &ramp0(6))
        .init_i64(&[2], &[-1, 0]);
    assert_close(&c.y(&[2, 2]), &[4.0, 5.0, 0.0, 1.0]);
    let cols = Case::new("Gather")
        .input(&[2, 3], &ramp0(6))
        .init_i64(&[], &[1])
        .int("axis", 1);
    assert_close(&cols.y(&[2]), &[1.0, 4.0]);
    assert!(Case::new("Gather")
        .input(&[3], &ramp0(3))
        .init_i64(&[1], &[3])
        .invalid()
        .contains("out of range"));
}

#[test]
fn shape_constant_and_cast() {
    assert_close(
        &Case::new("Shape").input(&[1, 2, 3], &ramp(6)).y(&[3]),
        &[1.0, 2.0, 3.0],
    );
    assert_close(
        &Case::new("Shape")
            .opset(15)
            .input(&[1, 2, 3], &ramp(6))
            .int("start", -2)
            .y(&[2]),
        &[2.0, 3.0],
    );
    assert_close(
        &Case::new("Constant").ints("value_ints", &[4, 5]).y(&[2]),
        &[4.0, 5.0],
    );
    assert_close(
        &Case::new("Constant").float("value_float", 0.5).y(&[]),
        &[0.5],
    );
    assert_close(
        &Case::new("Cast")
            .input(&[2], &[1.7, -1.7])
            .int("to", 7)
            .y(&[2]),
        &[1.0, -1.0],
    );
    assert_close(
        &Case::new("Cast").init_i64(&[1], &[3]).int("to", 1).y(&[1]),
        &[3.0],
    );
}

#[test]
fn identity_and_dropout_pass_values_through() {
    assert_close(
        &Case::new("Identity").input(&[2], &[1.0, 2.0]).y(&[2]),
        &[1.0, 2.0],
    );
    assert_close(
        &Case::new("Dropout").input(&[2], &[1.0, 2.0]).y(&[2]),
        &[1.0, 2.0],
    );
}
