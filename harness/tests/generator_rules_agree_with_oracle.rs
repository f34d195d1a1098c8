//! The generator never yields a model that its own validity rules call valid and the oracle
//! refuses, and negative cases (marked invalid) are refused by both: 10,000 descriptions of the
//! default distribution go through `ModelDesc::shapes` and the f64 oracle.

use harness::gen::{generate, GenConfig};
use harness::onnx::emit::emit;
use harness::oracle::{evaluate, OracleError};
use rayon::prelude::*;

#[test]
fn model_rules_and_oracle_agree_on_10000_generated_descriptions() {
    let cfg = GenConfig::default();
    let negatives = (0..10_000u64).into_par_iter().map(|i| {
        let case = generate(1, i, &cfg);
        let rules = case.model.shapes();
        let proto = emit(&case.model)
            .unwrap_or_else(|e| panic!("{}: emission failed: {e:#}: {:?}", case.id, case.model));
        let oracle = evaluate(&proto, &case.inputs());
        match case.model.negative {
            None => {
                assert!(
                    rules.is_ok(),
                    "{}: unmarked invalid model: {rules:?}",
                    case.id
                );
                if let Err(e) = oracle {
                    panic!(
                        "{}: rules accept, oracle refuses: {e}: {:?}",
                        case.id, case.model
                    );
                }
            }
            Some(kind) => {
                assert!(rules.is_err(), "{}: rules accept a {kind:?} case", case.id);
                match oracle {
                    Err(OracleError::Invalid(_) | OracleError::Undefined(_)) => {}
                    other => panic!(
                        "{}: oracle does not refuse a {kind:?} case: {other:?}",
                        case.id
                    ),
                }
            }
        }
        usize::from(case.model.negative.is_some())
    });
    let negative: usize = negatives.sum();
    let valid = 10_000 - negative;
    // The negative share is about 3%.
    assert!(
        valid > 9_500 && (150..=500).contains(&negative),
        "{valid} valid, {negative} negative"
    );
}
