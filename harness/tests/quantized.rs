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
    let quantized: Vec<_> = results
        .iter()
        .filter(|r| ["-q", "-qo", "-qi"].iter().any(|s| r.case.ends_with(s)))
        .collect();
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

#[test]
fn the_operator_forms_compute_what_their_qdq_models_compute() {
    use harness::conformance::quantize::generated_case;
    use harness::model::QuantOperators;
    let forms = [
        QuantOperators::Qdq,
        QuantOperators::Qlinear,
        QuantOperators::Integer,
    ];
    let (mut compared, mut fused) = (0, 0);
    for i in 0..60 {
        let cases = forms.map(|f| {
            let cfg = GenConfig {
                quantized: true,
                quantized_operators: Some(f),
                ..GenConfig::default()
            };
            generated_case(3, i, &cfg)
        });
        if !cases[0].id.ends_with("-q") {
            continue; // a case that is not quantized (a negative case)
        }
        let run = |c: &harness::gen::Case| {
            let model = harness::onnx::emit::emit(&c.model).unwrap();
            let ops: Vec<String> = model
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .map(|n| n.op_type.clone())
                .collect();
            (ops, harness::oracle::evaluate(&model, &c.inputs()))
        };
        let (qdq_ops, qdq) = run(&cases[0]);
        let Ok(qdq) = qdq else { continue };
        for (form, case) in forms.iter().zip(&cases).skip(1) {
            assert_eq!(case.id, format!("s3-i{i}{}", form.id_suffix()));
            let (ops, eval) = run(case);
            // Every top-level Conv takes the form (the coverage class says so), and no QDQ
            // Conv is left where the form's operator replaced it.
            let classes = case.model.classes();
            for op in [
                "QLinearConv",
                "ConvInteger",
                "QLinearMatMul",
                "MatMulInteger",
            ] {
                if classes.iter().any(|c| c == op) {
                    assert!(
                        ops.iter().any(|o| o == op),
                        "{}: no {op} in {ops:?}",
                        case.id
                    );
                    fused += 1;
                }
            }
            let eval = eval.unwrap_or_else(|e| panic!("{}: {e}", case.id));
            for (a, b) in qdq.outputs.iter().zip(&eval.outputs) {
                for (k, (((x, ex), y), ey)) in a
                    .value
                    .iter()
                    .zip(&a.bound)
                    .zip(&b.value)
                    .zip(&b.bound)
                    .enumerate()
                {
                    // Both are answers for the same numbers, each within its own bound.
                    assert!(
                        (x - y).abs() <= ex + ey + 1e-12,
                        "{} element {k}: {x} (QDQ, ±{ex}) vs {y} (±{ey}); QDQ ops {qdq_ops:?}, {ops:?}",
                        case.id
                    );
                }
            }
            compared += 1;
        }
    }
    assert!(compared >= 80, "only {compared} forms compared");
    assert!(fused >= 20, "only {fused} operator forms reached");
}
