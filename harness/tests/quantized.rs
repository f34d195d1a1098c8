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
            quantized: harness::gen::QuantizedCases::Only,
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
        quantized: harness::gen::QuantizedCases::Only,
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
fn a_run_in_one_operator_form_reaches_exactly_the_classes_said_reachable_in_it() {
    use harness::model::{reachable_in_form, QuantOperators, QUANT_CATALOGUE};
    for form in [
        QuantOperators::Qdq,
        QuantOperators::Qlinear,
        QuantOperators::Integer,
    ] {
        let cfg = GenConfig {
            quantized: harness::gen::QuantizedCases::Only,
            quantized_operators: Some(form),
            ..GenConfig::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..300 {
            let case = harness::conformance::quantize::generated_case(0, i, &cfg);
            seen.extend(case.model.classes());
        }
        for class in QUANT_CATALOGUE {
            assert_eq!(
                seen.contains(*class),
                reachable_in_form(class, form),
                "{class} in 300 cases of form {form:?}"
            );
        }
    }
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
                quantized: harness::gen::QuantizedCases::Only,
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

#[test]
fn a_quantized_divergence_is_found_at_the_fused_kernel_and_named_after_it() {
    use harness::conformance::quantize::generated_case;
    use harness::conformance::reduce::first_divergence;
    use harness::onnx::slice::integer_type;
    use harness::tensor::DType;
    let cfg = GenConfig {
        quantized: harness::gen::QuantizedCases::Only,
        ..GenConfig::default()
    };
    // s1-i70-q: Conv, Gemm and Softmax between QDQ pairs, int8 activations; tract's quantized
    // Softmax is wrong (the ledger's entry).
    let case = generated_case(1, 70, &cfg);
    assert_eq!(case.id, "s1-i70-q");
    let model = harness::onnx::emit::emit(&case.model).unwrap();
    let graph = model.graph.as_ref().unwrap();
    // The integers of a quantized model have their types: each QuantizeLinear's is its zero
    // point's (int8 here), a DequantizeLinear's output is a float.
    for node in &graph.node {
        let t = integer_type(graph, &node.output[0]);
        match node.op_type.as_str() {
            "QuantizeLinear" => assert_eq!(t, Some(DType::Int8), "{}", node.name),
            "DequantizeLinear" | "Conv" | "Gemm" | "Softmax" => assert_eq!(t, None),
            _ => {}
        }
    }
    let runner = Runner::new(Options {
        converters: vec!["identity".into()],
        ..Options::default()
    })
    .unwrap();
    let d = first_divergence(&runner, "identity", &model, &case.inputs())
        .unwrap()
        .expect("s1-i70-q fails on tract");
    // Every prefix up to the Softmax passes, and so does the QuantizeLinear after it on its own
    // exact input: the fault is tract's rewrite of the pair.
    assert_eq!(d.op, "Softmax+QuantizeLinear", "{d:?}");
    assert_eq!(d.alone, Some(false));
    assert_eq!(d.verdict, Verdict::Mismatch);
    // In the operator form, a QLinearConv's output is an integer of its zero point's type, and
    // ConvInteger's int32.
    for (suffix, op, want) in [
        ("-qo", "QLinearConv", None),
        ("-qi", "ConvInteger", Some(DType::Int32)),
    ] {
        let found = (0..40).find_map(|i| {
            let c = generated_case(1, i, &cfg);
            let m = harness::onnx::emit::emit(&c.model).unwrap();
            let g = m.graph.unwrap();
            let n = g.node.iter().find(|n| n.op_type == op)?.clone();
            c.id.ends_with(suffix)
                .then(|| (integer_type(&g, &n.output[0]), g, n))
        });
        let (t, g, n) = found.unwrap_or_else(|| panic!("no {op} in 40 cases"));
        let expected = want.or_else(|| {
            let zp = &n.input[7];
            let init = g.initializer.iter().find(|i| &i.name == zp).unwrap();
            harness::onnx::proto::dtype_of_code(init.data_type)
        });
        assert!(t.is_some());
        assert_eq!(t, expected, "{op}");
    }
}
