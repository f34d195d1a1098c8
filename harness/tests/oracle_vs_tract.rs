//! Property: on small models with integer weights and inputs, the f64 oracle and tract agree
//! within the oracle's error bound, on every op of the catalogue (the generator's full
//! distribution: all layer kinds, both layouts, symbolic dimensions, opsets 11 to 21).
//! proptest shrinks any counterexample to a minimal model.

use harness::compare::{compare, Tolerance, Verdict};
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
    let case = harness::gen::Case {
        id: "prop".into(),
        base_seed: 0,
        index: 0,
        seed,
        model,
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
    let c = compare(&expected, &got, Precision::F32, Tolerance::default());
    prop_assert_eq!(
        c.verdict,
        Verdict::Pass,
        "{:?}\n{:?}",
        c.message,
        case.model
    );
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
