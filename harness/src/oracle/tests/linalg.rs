//! Gemm and MatMul.

use super::{assert_close, Case};

fn gemm_trans_b() -> Case {
    // A = [[1,2,3],[4,5,6]], B (stored [N, K]) = [[1,0,1],[0,1,0]], C = [100, 200] per column.
    Case::new("Gemm")
        .input(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .init(&[2, 3], &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
        .init(&[2], &[100.0, 200.0])
        .int("transB", 1)
}

#[test]
fn gemm_with_trans_b_and_bias_broadcast_over_rows() {
    // A·Bᵀ = [[4, 2], [10, 5]].
    assert_close(&gemm_trans_b().y(&[2, 2]), &[104.0, 202.0, 110.0, 205.0]);
}

#[test]
fn gemm_scales_the_product_by_alpha_and_the_bias_by_beta() {
    let c = gemm_trans_b().float("alpha", 2.0).float("beta", 0.5);
    assert_close(&c.y(&[2, 2]), &[58.0, 104.0, 70.0, 110.0]);
}

#[test]
fn gemm_with_trans_a_and_no_bias() {
    // Aᵀ of [[1,4],[2,5],[3,6]] is [[1,2,3],[4,5,6]]; B = [[1],[1],[1]].
    let c = Case::new("Gemm")
        .input(&[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0])
        .init(&[3, 1], &[1.0; 3])
        .int("transA", 1);
    assert_close(&c.y(&[2, 1]), &[6.0, 15.0]);
}

#[test]
fn gemm_inner_dimension_mismatch_is_invalid() {
    let m = Case::new("Gemm")
        .input(&[2, 3], &[0.0; 6])
        .init(&[2, 3], &[0.0; 6])
        .invalid();
    assert!(m.contains("inner dimensions differ"), "{m}");
    let m = Case::new("Gemm")
        .input(&[2, 3, 1], &[0.0; 6])
        .init(&[1, 3], &[0.0; 3])
        .invalid();
    assert!(m.contains("A must be 2-D"), "{m}");
}

#[test]
fn matmul_broadcasts_batch_axes() {
    let c = Case::new("MatMul")
        .input(&[2, 1, 2], &[1.0, 2.0, 3.0, 4.0])
        .init(&[2, 1], &[5.0, 6.0]);
    assert_close(&c.y(&[2, 1, 1]), &[17.0, 39.0]);
}

#[test]
fn matmul_promotes_and_removes_1d_operands() {
    let c = Case::new("MatMul")
        .input(&[2], &[1.0, 2.0])
        .init(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_close(&c.y(&[2]), &[7.0, 10.0]);
    let dot = Case::new("MatMul")
        .input(&[2], &[1.0, 2.0])
        .init(&[2], &[3.0, 4.0]);
    assert_close(&dot.y(&[]), &[11.0]);
}
