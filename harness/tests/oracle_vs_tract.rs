//! Property: on small models with integer weights and inputs, the f64 oracle and tract agree
//! within the oracle's error bound, on every op of the catalogue (the generator's full
//! distribution: all layer kinds, both layouts, symbolic dimensions, opsets 11 to 21).
//! proptest shrinks any counterexample to a minimal model.

use harness::compare::{compare, Expected, Tolerance, Verdict};
use harness::conformance::oracle_expected;
use harness::gen::{model_strategy, GenConfig, InputDist};
use harness::model::{Layer, ModelDesc, WeightDist};
use harness::onnx::{emit::emit, proto::encode_model};
use harness::runtime::{Precision, Runtime, Tract};
use proptest::prelude::*;

/// Classes of tract deviations recorded in corpus/known-failures.toml (each checked by hand
/// against the spec); models with them are not this property.
const KNOWN_TRACT_DEVIATIONS: &[&str] = &[
    "pattern=SAME-conv->subsampling-conv",
    "pattern=length-normalization->subsampling-conv",
    "pattern=squeeze-excite",
    "Sigmoid",
    "Selu",
    "LpPool",
    "ConvTranspose.output_shape",
    "ConvTranspose.SAME.(k-1)*d<s",
    "Softplus",
    "Mish.form=op",
    "Mish.form=decomposed",
];

fn check(model: ModelDesc, seed: u64) -> Result<(), TestCaseError> {
    let classes = model.classes();
    prop_assume!(model.negative.is_none());
    prop_assume!(!classes
        .iter()
        .any(|c| KNOWN_TRACT_DEVIATIONS.contains(&c.as_str())));
    agree(model, seed)
}

/// The oracle's expected outputs and tract's outputs for `model` on small-integer inputs drawn
/// from `seed`.
fn oracle_and_tract(model: &ModelDesc, seed: u64) -> (Vec<Expected>, Vec<harness::tensor::Tensor>) {
    let case = harness::gen::Case {
        id: "prop".into(),
        base_seed: 0,
        index: 0,
        seed,
        model: model.clone(),
        input: InputDist::SmallInt,
    };
    let inputs = case.inputs();
    let proto = emit(&case.model).unwrap();
    let expected = oracle_expected(&proto, &inputs).unwrap();
    let got = Tract::new()
        .load(&encode_model(&proto), &inputs)
        .unwrap()
        .run(&inputs)
        .unwrap();
    (expected, got)
}

/// The oracle and tract agree on `model` with inputs drawn from `seed`.
fn agree(model: ModelDesc, seed: u64) -> Result<(), TestCaseError> {
    let (expected, got) = oracle_and_tract(&model, seed);
    let c = compare(&expected, &got, Precision::F32, Tolerance::default());
    prop_assert_eq!(c.verdict, Verdict::Pass, "{:?}\n{:?}", c.message, model);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn oracle_and_tract_agree_on_small_integer_models(
        mut model in model_strategy(GenConfig { max_layers: 3, ..GenConfig::default() }),
        seed in any::<u64>(),
    ) {
        model.weights = WeightDist::SmallInt;
        check(model, seed)?;
    }

    /// One layer at a time, so that every op is checked alone as well as in context.
    #[test]
    fn oracle_and_tract_agree_on_every_single_op(
        mut model in model_strategy(GenConfig { max_layers: 1, ..GenConfig::default() }),
        seed in any::<u64>(),
    ) {
        model.weights = WeightDist::SmallInt;
        // Keep the first layer and no head, unless the head is the only layer.
        if model.layers.len() > 1 && !matches!(model.layers[0], Layer::Dense { .. }) {
            model.layers.truncate(1);
        }
        check(model, seed)?;
    }
}

/// A counterexample the property once found, kept as a fixed case: a sigmoid deep in its tail
/// (conv output -35) times a convolution that cancels to exactly 0 (output element [3][5]).
/// tract's sigmoid saturates at 4.8e-7 instead of 6e-16 and its 0 is a few u off, so the
/// product is about 2e-13 where first-order error terms alone allowed 5e-20 (see
/// `oracle::bound::product`). Other elements of this model show tract's Sigmoid clamp itself
/// (corpus/known-failures.toml), so only this one is checked.
#[test]
fn a_tail_sigmoid_times_a_cancelled_convolution_is_within_its_bound() {
    use harness::model::{Conv, Layout, Merge, Padding, Symbolic};
    let conv = Layer::Conv(Conv {
        out_channels: 6,
        kernel: 7,
        stride: 1,
        dilation: 1,
        padding: Padding::Explicit { begin: 3, end: 3 },
        group: 1,
        bias: false,
    });
    let model = ModelDesc {
        batch: 1,
        channels: 6,
        length: 6,
        layers: vec![Layer::Parallel {
            merge: Merge::Mul,
            branches: vec![
                vec![conv.clone(), Layer::Sigmoid],
                vec![conv, Layer::BatchNorm { epsilon: 1e-5 }],
            ],
        }],
        opset: 11,
        weight_seed: 9762224886221369456,
        weights: WeightDist::SmallInt,
        layout: Layout::Ncl,
        symbolic: Symbolic {
            batch: false,
            length: false,
        },
        negative: None,
        dtype: harness::tensor::DType::Float,
        quantized_weights: None,
    };
    let (expected, got) = oracle_and_tract(&model, 4523029501174743002);
    let at: &[usize] = &[0, 3, 5];
    let (exact, bound) = (
        expected[0].value[at],
        expected[0].bound.as_ref().unwrap()[at],
    );
    let actual = got[0].to_f64()[at];
    assert_eq!(exact, 0.0);
    assert!(
        actual != 0.0,
        "tract no longer perturbs this element: {actual}"
    );
    let tolerance = bound * f64::from(f32::EPSILON) / 2.0;
    assert!(
        (actual - exact).abs() <= tolerance,
        "|{actual}| > {tolerance} (bound {bound} u)"
    );
}
