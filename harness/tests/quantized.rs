//! Quantized cases end to end (docs/quantization.md): generated with `quantized`, run on tract
//! through the identity and the 1D→2D lowering, judged by the f64 oracle's quantization rules
//! and the project's ledger.

use std::path::PathBuf;

use harness::conformance::{Options, Runner};
use harness::gen::GenConfig;
use harness::ledger::Ledger;
use harness::results::Verdict;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn quantized_cases_run_on_tract_with_every_failure_explained() {
    let options = Options {
        cases: 60,
        seed: 1,
        converters: vec!["identity".into(), "lower1d".into()],
        repeats: 1,
        max_bundles: 0,
        gen: GenConfig {
            quantized: true,
            ..GenConfig::default()
        },
        ..Options::default()
    };
    let mut results = Runner::new(options).unwrap().run(&|_| {}).unwrap().results;
    let ledger = Ledger::load(&root().join("corpus/known-failures.toml")).unwrap();
    ledger.apply(&mut results);
    assert_eq!(results.len(), 120);
    let quantized: Vec<_> = results.iter().filter(|r| r.case.ends_with("-q")).collect();
    // Negative cases stay float; every other case of the first 60 is quantized.
    assert!(quantized.len() >= 110, "{} quantized", quantized.len());
    for r in &quantized {
        assert!(
            r.ops.iter().any(|op| op == "QuantizeLinear"),
            "{}: {:?}",
            r.case,
            r.ops
        );
    }
    let passed = quantized
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    // 87 of the 118 quantized results passed when this was written (most failures: tract's
    // quantized Softmax, in the ledger).
    assert!(passed >= 70, "only {passed} quantized results pass");
    let unexplained: Vec<_> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass && r.expected.is_none())
        .map(|r| format!("{} {} {}: {:?}", r.case, r.converter, r.verdict, r.message))
        .collect();
    assert!(unexplained.is_empty(), "{unexplained:#?}");
    // The tract quantized-Softmax entry is what explains most failures: the ledger recognizes
    // the bug rather than a catch-all.
    assert!(
        results
            .iter()
            .filter_map(|r| r.expected.as_deref())
            .any(|reason| reason.contains("DequantizeLinear -> Softmax -> QuantizeLinear")),
        "no result matched the quantized Softmax entry"
    );
}

#[test]
fn quantized_runs_reach_the_quantization_classes() {
    let cfg = GenConfig {
        quantized: true,
        ..GenConfig::default()
    };
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..300 {
        let case = harness::conformance::quantize::generated_case(0, i, &cfg);
        seen.extend(case.model.classes());
    }
    let missing: Vec<_> = harness::model::QUANT_CATALOGUE
        .iter()
        .filter(|c| !seen.contains(**c))
        .collect();
    assert!(missing.is_empty(), "not reached in 300 cases: {missing:?}");
}
