//! Unit tests of the ledger: matching, staleness, loading.
use super::*;

#[test]
fn globs_match_stars_and_question_marks() {
    assert!(glob("s0-i*", "s0-i45"));
    assert!(glob("*", ""));
    assert!(glob("openvino*", "openvino:f32"));
    assert!(glob("s?-i1", "s3-i1"));
    assert!(!glob("s0-i4", "s0-i45"));
}

fn result(case: &str, verdict: Verdict, classes: &[&str]) -> CaseResult {
    CaseResult {
        verdict,
        classes: classes.iter().map(|s| s.to_string()).collect(),
        tolerance: crate::results::Policy::Bound,
        ..CaseResult::unjudged(case, crate::results::Origin::Derived, "identity", "tract")
    }
}

const LEDGER: &str = r#"
[[failure]]
converter = "identity"
runtime = "tract"
classes = ["A", "B"]
witness = "s0-i1"
verdict = "mismatch"
reason = "known bug"
"#;

#[test]
fn matching_failures_become_expected_and_others_stay_failures() {
    let ledger: Ledger = toml::from_str(LEDGER).unwrap();
    let mut rs = vec![
        result("s0-i1", Verdict::Mismatch, &["A", "B", "C"]),
        result("s0-i2", Verdict::Mismatch, &["A"]),
        result("s0-i3", Verdict::Pass, &["A", "B"]),
    ];
    assert!(ledger.apply(&mut rs).is_empty());
    assert_eq!(rs[0].expected.as_deref(), Some("known bug"));
    assert_eq!(rs[1].expected, None);
    assert_eq!(rs[2].expected, None);
}

#[test]
fn an_opset_range_matches_only_models_of_those_opsets() {
    let ledger: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"*\"\nclasses = [\"Clip\"]\nopsets = [1, 5]\n\
         verdict = \"runtime-rejected\"\nreason = \"Clip-1 unsupported\"\n",
    )
    .unwrap();
    let mut rs = vec![
        result("s0-i1", Verdict::RuntimeRejected, &["Clip", "opset=1"]),
        result("s0-i2", Verdict::RuntimeRejected, &["Clip", "opset=5"]),
        result("s0-i3", Verdict::RuntimeRejected, &["Clip", "opset=6"]),
        result("s0-i4", Verdict::RuntimeRejected, &["Clip"]),
    ];
    assert!(ledger.apply(&mut rs).is_empty());
    let explained: Vec<bool> = rs.iter().map(|r| r.expected.is_some()).collect();
    assert_eq!(explained, [true, true, false, false]);
    let backwards = "[[failure]]\nconverter = \"*\"\nclasses = [\"Clip\"]\nopsets = [5, 1]\n\
                     verdict = \"runtime-rejected\"\nreason = \"r\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.toml");
    std::fs::write(&path, backwards).unwrap();
    let err = Ledger::load(&path).unwrap_err().to_string();
    assert!(err.contains("first is after its last"), "{err}");
}

#[test]
fn a_passing_witness_is_an_unexpected_pass_and_other_passing_members_are_not() {
    let ledger: Ledger = toml::from_str(LEDGER).unwrap();
    let mut rs = vec![
        result("s0-i1", Verdict::Mismatch, &["A", "B"]),
        result("s0-i9", Verdict::Pass, &["A", "B"]),
    ];
    assert!(
        ledger.apply(&mut rs).is_empty(),
        "a class member that passes is fine"
    );
    let mut rs = vec![result("s0-i1", Verdict::Pass, &["A", "B"])];
    let stale = ledger.apply(&mut rs);
    assert_eq!(stale.len(), 1);
    assert!(
        stale[0].contains("unexpected pass") && stale[0].contains("remove it"),
        "{stale:?}"
    );
    let mut rs = vec![result("s0-i2", Verdict::Pass, &["A", "B"])];
    assert!(
        ledger.apply(&mut rs).is_empty(),
        "the witness did not run: nothing to judge"
    );
}

#[test]
fn a_case_entry_is_stale_when_its_cases_all_pass() {
    let ledger: Ledger =
        toml::from_str("[[failure]]\nconverter = \"identity\"\ncase = \"s0-i7\"\nverdict = \"mismatch\"\nreason = \"r\"\n").unwrap();
    let mut rs = vec![result("s0-i7", Verdict::Pass, &[])];
    assert_eq!(ledger.apply(&mut rs).len(), 1);
    let mut rs = vec![result("s0-i7", Verdict::Mismatch, &[])];
    assert!(ledger.apply(&mut rs).is_empty());
    assert!(rs[0].expected.is_some());
}

#[test]
fn a_failure_the_model_causes_is_explained_for_every_converter_and_judged_on_identity() {
    let ledger: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"*\"\nruntime = \"tract\"\ncase = \"corpus/m\"\ncause = \"model\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n",
    )
    .unwrap();
    let on = |converter: &str, verdict| CaseResult {
        converter: converter.into(),
        ..result("corpus/m", verdict, &[])
    };
    // A converter that keeps the cause fails the same way, and is explained; one that
    // removes it passes, and that does not make the entry stale.
    let mut rs = vec![
        on("identity", Verdict::RuntimeRejected),
        on("exec:resave {input} {output}", Verdict::RuntimeRejected),
        on("lower1d", Verdict::Pass),
    ];
    assert!(ledger.apply(&mut rs).is_empty());
    assert!(rs[0].expected.is_some() && rs[1].expected.is_some());
    let mut rs = vec![on("lower1d", Verdict::Pass)];
    assert!(ledger.apply(&mut rs).is_empty(), "no identity result ran");
    // The unconverted model passing is what makes it stale.
    let mut rs = vec![
        on("identity", Verdict::Pass),
        on("exec:resave {input} {output}", Verdict::RuntimeRejected),
    ];
    assert_eq!(ledger.apply(&mut rs).len(), 1);
    // The same entry with the default cause is stale once every converter passes, and a
    // converter that removes the cause keeps it from being judged on the others.
    let by_converter: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"*\"\nruntime = \"tract\"\ncase = \"corpus/m\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n",
    )
    .unwrap();
    let mut rs = vec![on("lower1d", Verdict::Pass)];
    assert_eq!(by_converter.apply(&mut rs).len(), 1);
}

#[test]
fn a_drift_is_ledgered_like_any_failure() {
    let ledger: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"exec:*approx*\"\nclasses = [\"Gelu.form=op\"]\nwitness = \"s1-i48\"\nverdict = \"drift\"\nreason = \"r\"\n",
    )
    .unwrap();
    let drifted = |case: &str, verdict| CaseResult {
        converter: "exec:approx {input} {output}".into(),
        ..result(case, verdict, &["Gelu.form=op"])
    };
    let mut rs = vec![drifted("s1-i48", Verdict::Drift)];
    assert!(ledger.apply(&mut rs).is_empty());
    assert!(rs[0].expected.is_some());
    let mut rs = vec![drifted("s1-i48", Verdict::Pass)];
    assert_eq!(ledger.apply(&mut rs).len(), 1, "the drift is gone");
}

#[test]
fn malformed_ledgers_are_refused_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("known-failures.toml");
    for bad in [
        "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n",
        "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"pass\"\nreason = \"r\"\n",
        "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"wrong\"\nreason = \"r\"\n",
        "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = [\"mismatch\", \"pass\"]\nreason = \"r\"\n",
        "[[failure]]\nconverter = \"x\"\ncase = \"a\"\nverdict = \"mismatch\"\nreason = \"r\"\ntypo = 1\n",
        "not toml [",
        // An empty reduced form, an unknown key in it, a node asked of a verdict that has
        // none.
        "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\n",
        "[[failure]]\nconverter = \"x\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\nopp = \"Conv\"\n",
        "[[failure]]\nconverter = \"x\"\nverdict = \"runtime-rejected\"\nreason = \"r\"\n[failure.reduced]\nop = \"Conv\"\n",
    ] {
        std::fs::write(&p, bad).unwrap();
        let e = format!("{:#}", Ledger::load(&p).unwrap_err());
        assert!(e.contains("known-failures.toml"), "{e}");
    }
}

/// A class entry for a bug (classes A, B) and an entry for the same bug in another form,
/// recognized by its reduction: the first diverging node is a strided k1 Conv that is
/// right alone, in a reduced model with class P.
const REDUCED: &str = r#"
[[failure]]
converter = "identity"
runtime = "tract"
classes = ["A", "B"]
witness = "s0-i1"
verdict = "mismatch"
reason = "known bug"

[[failure]]
converter = "*"
runtime = "tract"
witness = "s5-i252"
verdict = ["mismatch", "non-finite"]
reason = "known bug, another form"

[failure.reduced]
op = "Conv"
alone = false
attributes = { kernel_shape = [1], strides = [2], alpha = 0.1, auto_pad = "VALID" }
classes = ["P"]
"#;

/// The reduction of a Conv k1 s2 that fails only after what comes before it.
fn reduction(op: &str, alone: bool, classes: &[&str]) -> Reduction {
    Reduction {
        case: "s5-i252".into(),
        op: Some(op.into()),
        attributes: [
            ("kernel_shape", Attribute::Ints(vec![1])),
            ("strides", Attribute::Ints(vec![2])),
            ("alpha", Attribute::Float(f64::from(0.1f32))),
            ("auto_pad", Attribute::Text("VALID".into())),
            ("group", Attribute::Int(1)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        alone: Some(alone),
        classes: classes.iter().map(|s| s.to_string()).collect(),
    }
}

fn reduced(case: &str, verdict: Verdict, classes: &[&str], r: Reduction) -> CaseResult {
    CaseResult {
        reduction: Some(r),
        ..result(case, verdict, classes)
    }
}

#[test]
fn a_reduced_forms_classes_are_globs() {
    let ledger: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"*\"\nverdict = \"mismatch\"\nreason = \"r\"\n\
         [failure.reduced]\nclasses = [\"Add.*\", \"P\"]\n",
    )
    .unwrap();
    let explained = |classes: &[&str]| {
        let mut rs = vec![reduced(
            "s5-i7",
            Verdict::Mismatch,
            &[],
            reduction("Conv", true, classes),
        )];
        ledger.apply(&mut rs);
        rs[0].expected.is_some()
    };
    assert!(explained(&["Add.residual", "P"]));
    assert!(explained(&["Add.branches", "P", "Q"]));
    assert!(!explained(&["Add.branches"]));
    assert!(!explained(&["Mul.branches", "P"]));
}

#[test]
fn a_known_bug_in_a_new_form_is_recognized_by_its_reduction() {
    let ledger: Ledger = toml::from_str(REDUCED).unwrap();
    // Not in the class entry's family (no B), but reduced to the entry's form.
    let mut rs = vec![reduced(
        "s5-i252",
        Verdict::Mismatch,
        &["A", "C"],
        reduction("Conv", false, &["P", "Q"]),
    )];
    assert!(ledger.apply(&mut rs).is_empty());
    assert_eq!(rs[0].expected.as_deref(), Some("known bug, another form"));
    // Any verdict the entry lists.
    let mut rs = vec![reduced(
        "s5-i9",
        Verdict::NonFinite,
        &[],
        reduction("Conv", false, &["P"]),
    )];
    ledger.apply(&mut rs);
    assert!(rs[0].expected.is_some());
}

#[test]
fn a_new_bug_in_a_model_with_ledgered_classes_still_fails() {
    let ledger: Ledger = toml::from_str(REDUCED).unwrap();
    let classes = ["A", "C"];
    let new_bugs = [
        // Another first diverging op: a different bug.
        reduction("Relu", false, &["P"]),
        // The same op, but the node is wrong on its own.
        reduction("Conv", true, &["P"]),
        // The reduced model lacks the class the bug needs.
        reduction("Conv", false, &["Q"]),
        // The diverging node has other attributes.
        Reduction {
            attributes: [("kernel_shape".to_string(), Attribute::Ints(vec![3]))].into(),
            ..reduction("Conv", false, &["P"])
        },
    ];
    for r in new_bugs {
        let mut rs = vec![reduced("s5-i7", Verdict::Mismatch, &classes, r.clone())];
        ledger.apply(&mut rs);
        assert_eq!(rs[0].expected, None, "{r:?} must not be masked");
    }
    // Not reduced (yet): a reduced entry cannot explain it.
    let mut rs = vec![result("s5-i7", Verdict::Mismatch, &classes)];
    ledger.apply(&mut rs);
    assert_eq!(rs[0].expected, None);
    // Reduced to the form, but with a verdict the entry does not list.
    let mut rs = vec![reduced(
        "s5-i7",
        Verdict::ShapeMismatch,
        &classes,
        reduction("Conv", false, &["P"]),
    )];
    ledger.apply(&mut rs);
    assert_eq!(rs[0].expected, None);
}

#[test]
fn attributes_compare_numbers_in_f32_and_keep_scalars_apart_from_lists() {
    let (int, float) = (Attribute::Int(1), Attribute::Float(1.0));
    assert!(same_value(&int, &float) && same_value(&float, &int));
    assert!(same_value(
        &Attribute::Float(0.1),
        &Attribute::Float(f64::from(0.1f32))
    ));
    assert!(!same_value(&Attribute::Float(0.1), &Attribute::Float(0.2)));
    assert!(same_value(
        &Attribute::Ints(vec![2]),
        &Attribute::Floats(vec![2.0])
    ));
    assert!(!same_value(&Attribute::Int(2), &Attribute::Ints(vec![2])));
    assert!(!same_value(
        &Attribute::Ints(vec![2]),
        &Attribute::Ints(vec![2, 2])
    ));
    assert!(same_value(
        &Attribute::Ints(vec![]),
        &Attribute::Texts(vec![])
    ));
    assert!(!same_value(
        &Attribute::Text("2".into()),
        &Attribute::Int(2)
    ));
    // An attribute the node leaves out (at its default) does not match a value asked for.
    let form = ReducedForm {
        attributes: [("dilations".to_string(), Attribute::Ints(vec![1]))].into(),
        ..ReducedForm::default()
    };
    assert!(!form.matches(&reduction("Conv", false, &[])));
}

#[test]
fn witnesses_and_unexpected_passes_work_for_reduced_entries() {
    let ledger: Ledger = toml::from_str(REDUCED).unwrap();
    // The witness fails, not reduced (past --max-bundles, or before reduction): the entry is
    // not stale, and the failure is not explained.
    let mut rs = vec![result("s5-i252", Verdict::Mismatch, &[])];
    assert!(ledger.apply(&mut rs).is_empty());
    assert_eq!(rs[0].expected, None);
    // The witness passes: stale, whatever its classes.
    let mut rs = vec![result("s5-i252", Verdict::Pass, &["A"])];
    let stale = ledger.apply(&mut rs);
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(stale[0].contains("s5-i252") && stale[0].contains("mismatch or non-finite"));
    // Another case that passes decides nothing.
    let mut rs = vec![result("s5-i3", Verdict::Pass, &["A", "B"])];
    assert!(ledger.apply(&mut rs).is_empty());
    // A reduced entry with a case glob and no witness: its cases decide, reduced or not.
    let by_case: Ledger = toml::from_str(
        "[[failure]]\nconverter = \"*\"\ncase = \"s5-*\"\nverdict = \"mismatch\"\nreason = \"r\"\n[failure.reduced]\nop = \"Conv\"\n",
    )
    .unwrap();
    let mut rs = vec![result("s5-i1", Verdict::Pass, &[])];
    assert_eq!(by_case.apply(&mut rs).len(), 1);
    let mut rs = vec![
        result("s5-i1", Verdict::Pass, &[]),
        reduced(
            "s5-i2",
            Verdict::Mismatch,
            &[],
            reduction("Conv", true, &[]),
        ),
    ];
    assert!(by_case.apply(&mut rs).is_empty());
    assert!(rs[1].expected.is_some());
}

#[test]
fn applying_again_after_reduction_equals_applying_once_to_reduced_results() {
    let ledger: Ledger = toml::from_str(REDUCED).unwrap();
    let make = || {
        vec![
            result("s0-i1", Verdict::Mismatch, &["A", "B"]),
            result("s5-i252", Verdict::Mismatch, &["A"]),
            result("s5-i7", Verdict::Mismatch, &["A"]),
        ]
    };
    let reduce = |rs: &mut Vec<CaseResult>| {
        rs[1].reduction = Some(reduction("Conv", false, &["P"]));
        rs[2].reduction = Some(reduction("Relu", false, &["P"]));
    };
    // As a run does: apply, reduce what is left, apply again.
    let mut twice = make();
    assert!(ledger.apply(&mut twice).is_empty());
    assert_eq!(twice.iter().filter(|r| r.ok()).count(), 1);
    reduce(&mut twice);
    assert!(ledger.apply(&mut twice).is_empty());
    // As a merge of shards does: results that carry their reduction, applied once.
    let mut once = make();
    reduce(&mut once);
    let marks = |rs: &[CaseResult]| rs.iter().map(|r| r.expected.clone()).collect::<Vec<_>>();
    for r in &mut once {
        r.expected = Some("stale mark".into());
    }
    ledger.apply(&mut once);
    assert_eq!(marks(&twice), marks(&once));
    assert_eq!(
        marks(&once),
        [
            Some("known bug".to_string()),
            Some("known bug, another form".to_string()),
            None
        ]
    );
}

#[test]
fn a_reduction_survives_report_json() {
    let r = reduced(
        "s5-i252",
        Verdict::Mismatch,
        &["A"],
        reduction("Conv", false, &["P"]),
    );
    let json = serde_json::to_string(&r).unwrap();
    assert!(
        json.contains(r#""strides":[2]"#) && json.contains(r#""alone":false"#),
        "{json}"
    );
    let back: CaseResult = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // A result without one writes no field.
    let plain = serde_json::to_string(&result("s0-i1", Verdict::Pass, &[])).unwrap();
    assert!(!plain.contains("reduction"), "{plain}");
}

/// The project's ledger: the reduced forms of s5-i252 and s5-i198 (as their runs record them
/// in report.json, docs/ledger.md) are recognized; the same failures reduced to another
/// op are not.
#[test]
fn the_project_ledger_recognizes_its_reduced_forms() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/known-failures.toml");
    let ledger = Ledger::load(&path).unwrap();
    let ints = |v: &[i64]| Attribute::Ints(v.to_vec());
    let same_conv = Reduction {
        case: "s5-i252".into(),
        op: Some("Conv".into()),
        attributes: [
            ("auto_pad".to_string(), Attribute::Text("VALID".into())),
            ("dilations".to_string(), ints(&[1])),
            ("group".to_string(), Attribute::Int(1)),
            ("kernel_shape".to_string(), ints(&[1])),
            ("strides".to_string(), ints(&[2])),
        ]
        .into(),
        alone: Some(false),
        classes: [
            "Add.residual",
            "Conv.auto_pad=SAME_UPPER",
            "Conv.kernel=1",
            "Conv.strides>1",
        ]
        .into_iter()
        .chain(["pattern=SAME-conv->subsampling-conv", "Relu"])
        .map(String::from)
        .collect(),
    };
    let sigmoid_gather = Reduction {
        case: "s5-i198".into(),
        op: Some("Gather".into()),
        attributes: [("axis".to_string(), Attribute::Int(0))].into(),
        alone: Some(false),
        classes: [
            "Conv.group=1",
            "MaxPool.indices=1",
            "Mul.branches",
            "Sigmoid",
        ]
        .into_iter()
        .map(String::from)
        .collect(),
    };
    // The original models' classes lack the class entries' classes.
    let original = [
        "Conv.auto_pad=SAME_UPPER",
        "Conv.strides>1",
        "Sigmoid",
        "MaxPool.indices=1",
    ];
    for (case, found) in [("s5-i252", same_conv), ("s5-i198", sigmoid_gather)] {
        let mut rs = vec![reduced(case, Verdict::Mismatch, &original, found.clone())];
        ledger.apply(&mut rs);
        let entry = ledger
            .failure
            .iter()
            .find(|e| e.witness.as_deref() == Some(case));
        assert_eq!(rs[0].expected, entry.map(|e| e.reason.clone()), "{case}");
        let mut rs = vec![reduced(
            case,
            Verdict::Mismatch,
            &original,
            Reduction {
                op: Some("Softmax".into()),
                ..found
            },
        )];
        ledger.apply(&mut rs);
        assert_eq!(rs[0].expected, None, "{case}: another op is another bug");
        let mut rs = vec![result(case, Verdict::Mismatch, &original)];
        ledger.apply(&mut rs);
        assert_eq!(rs[0].expected, None, "{case}: not reduced");
    }
}

#[test]
fn an_entry_for_cpus_lacking_an_extension_explains_and_goes_stale_only_on_such_cpus() {
    let ledger: Ledger = toml::from_str(
        r#"
[[failure]]
converter = "identity"
classes = ["quant.weights=int8"]
witness = "s0-i1"
verdict = "mismatch"
cpu_lacks = ["avx512vnni", "avxvnni"]
reason = "int16 sums saturate without VNNI"
"#,
    )
    .unwrap();
    let without = ledger.on_cpu(&["avx2".to_string()]);
    let with = ledger.on_cpu(&["avx2".to_string(), "avxvnni".to_string()]);

    let mut failing = vec![result("s0-i1", Verdict::Mismatch, &["quant.weights=int8"])];
    assert!(without.apply(&mut failing).is_empty());
    assert!(failing[0].expected.is_some(), "explained without VNNI");
    assert!(with.apply(&mut failing).is_empty());
    assert!(
        failing[0].expected.is_none(),
        "a VNNI CPU has no such bug to explain"
    );

    let mut passing = vec![result("s0-i1", Verdict::Pass, &["quant.weights=int8"])];
    assert_eq!(
        without.apply(&mut passing).len(),
        1,
        "stale where the bug can show"
    );
    assert!(
        with.apply(&mut passing).is_empty(),
        "not stale where it cannot"
    );
}

#[test]
fn an_entry_for_one_precision_leaves_results_of_another_alone() {
    let ledger: Ledger = toml::from_str(
        r#"
[[failure]]
converter = "identity"
classes = ["A"]
witness = "s0-i1"
verdict = ["mismatch", "convert-rejected"]
precision = ["f32"]
reason = "wrong in the f32 kernels only"
"#,
    )
    .unwrap();
    let at = |verdict, precision| CaseResult {
        precision,
        ..result("s0-i1", verdict, &["A"])
    };
    let mut f32_failing = vec![at(Verdict::Mismatch, Some(Precision::F32))];
    assert!(ledger.apply(&mut f32_failing).is_empty());
    assert!(f32_failing[0].expected.is_some());
    let mut bf16_failing = vec![at(Verdict::Mismatch, Some(Precision::Bf16))];
    ledger.apply(&mut bf16_failing);
    assert!(
        bf16_failing[0].expected.is_none(),
        "another precision's failure is not this bug"
    );
    let mut refused = vec![at(Verdict::ConvertRejected, None)];
    ledger.apply(&mut refused);
    assert!(
        refused[0].expected.is_some(),
        "a refusal computed nothing to rule it out"
    );
    // The witness passing at bf16 says nothing of the f32 bug; passing at f32 makes it stale.
    assert!(ledger
        .apply(&mut [at(Verdict::Pass, Some(Precision::Bf16))])
        .is_empty());
    assert_eq!(
        ledger
            .apply(&mut [at(Verdict::Pass, Some(Precision::F32))])
            .len(),
        1
    );
}
