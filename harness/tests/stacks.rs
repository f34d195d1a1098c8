//! The plugin interface (`harness/python/stacks/`): every stack's module describes itself in
//! its own environment, converter stacks convert and run generated models with every failure
//! explained by the ledger, ONNX-to-ONNX stacks hand ONNX to the run's runtime, and a bad
//! variant is refused with the ones that exist.
//!
//! The stacks with environments of their own (TVM, LiteRT, the ONNX optimizers) are tested
//! where `cargo xtask setup --stack NAME` made them; CI makes every one and sets
//! HARNESS_REQUIRE_STACKS, so that none is skipped there.

use std::path::{Path, PathBuf};

use harness::compare::Verdict;
use harness::conformance::{Options, Runner};
use harness::isolate::ChildLimits;
use harness::ledger::Ledger;
use harness::results::CaseResult;
use harness::worker::{find_python_of, Pool, STACKS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Whether the environment `environment` is there; panics when it must be and is not.
fn environment_or_skip(environment: &str, what: &str) -> bool {
    if find_python_of(environment).is_some() {
        return true;
    }
    let setup = if environment.is_empty() {
        "cargo xtask setup".to_string()
    } else {
        format!("cargo xtask setup --stack {environment}")
    };
    let required = if environment.is_empty() {
        "HARNESS_REQUIRE_PYTHON"
    } else {
        "HARNESS_REQUIRE_STACKS"
    };
    if std::env::var_os(required).is_some() {
        panic!("{required} is set but the environment for {what} is missing: run `{setup}`");
    }
    eprintln!("SKIPPED: {what} (run `{setup}`)");
    false
}

#[test]
fn every_stack_has_a_module_and_pinned_requirements_in_the_tree() {
    let dir = root().join("harness/python/stacks");
    for stack in STACKS {
        let module = dir.join(format!("{}.py", stack.name));
        assert_eq!(
            std::fs::read_to_string(&module).unwrap(),
            stack.source,
            "{}",
            module.display()
        );
        // Every line of a stack's own environment is pinned (it is installed --no-deps).
        if !stack.environment.is_empty() {
            let file = dir.join(format!("{}.requirements.txt", stack.environment));
            let text = std::fs::read_to_string(&file).unwrap();
            let packages: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            assert!(!packages.is_empty(), "{}", file.display());
            // `cargo xtask` sets an environment up when a stack it serves is asked for.
            let served = text
                .lines()
                .find_map(|l| l.strip_prefix("# stacks:"))
                .unwrap_or_default();
            assert!(
                served.split_whitespace().any(|s| s == stack.name),
                "{}: no `# stacks:` line naming {}",
                file.display(),
                stack.name
            );
            for p in packages {
                assert!(p.contains("=="), "{}: {p} is not pinned", file.display());
            }
        }
    }
}

#[test]
fn every_stack_describes_itself_in_its_environment() {
    for stack in STACKS {
        if !environment_or_skip(stack.environment, stack.name) {
            continue;
        }
        let pool = Pool::shared_of(stack.environment).unwrap();
        let d = pool
            .describe(stack.name, ChildLimits::converters_default())
            .unwrap_or_else(|e| panic!("{}: {e:#}", stack.name));
        assert!(
            d["version"].as_str().is_some_and(|v| !v.is_empty()),
            "{}: {d}",
            stack.name
        );
        assert!(d["variants"].get("").is_some(), "{}: {d}", stack.name);
        // A stack that runs ONNX as given is a runtime; every other one converts.
        let runtime = harness::runtime::NAMES.contains(&stack.name);
        assert_eq!(d["converts"] == true, !runtime, "{}: {d}", stack.name);
    }
}

#[test]
fn a_variant_a_stack_does_not_have_is_refused_with_those_it_has() {
    if !environment_or_skip("tvm", "tvm") {
        return;
    }
    let err = harness::convert::from_spec("tvm:O9")
        .err()
        .expect("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("tvm:O0") && text.contains("tvm:fuse"),
        "{text}"
    );
    let err = harness::convert::from_spec("onnxruntime")
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("--runtime onnxruntime"),
        "{err:#}"
    );
}

/// The generated cases of seed 1 that `shard` selects of the first `cases` through `converter`
/// on `runtime`, judged by the project's ledger: (results, failures the ledger does not
/// explain). No failure is reduced (that takes minutes per TFLite case), so the ledger's entries
/// that match by reduction cannot match: the cases are chosen to need none.
fn run_through(
    converter: &str,
    runtime: &str,
    cases: u64,
    shard: harness::conformance::Shard,
) -> (Vec<CaseResult>, Vec<String>) {
    let options = Options {
        cases,
        shard,
        seed: 1,
        converters: vec![converter.into()],
        runtime: runtime.into(),
        repeats: 1,
        max_bundles: 0,
        ..Options::default()
    };
    let mut results = Runner::new(options).unwrap().run(&|_| {}).unwrap().results;
    let ledger = Ledger::load(&root().join("corpus/known-failures.toml")).unwrap();
    ledger.apply(&mut results);
    let unexplained = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass && r.expected.is_none())
        .map(|r| format!("{} {} {}: {:?}", r.case, r.converter, r.verdict, r.message))
        .collect();
    (results, unexplained)
}

/// Every case of the first `cases`.
const ALL: harness::conformance::Shard = harness::conformance::Shard { index: 1, count: 1 };

/// A converter stack's results: on its own runtime, most pass, none is `error`.
fn check_converter_stack(
    converter: &str,
    runtime_name: &str,
    (cases, shard): (u64, harness::conformance::Shard),
    passing: usize,
) {
    let (results, unexplained) = run_through(converter, "tract", cases, shard);
    assert_eq!(results.len() as u64, cases / shard.count);
    for r in &results {
        assert_eq!(r.runtime, runtime_name, "{r:?}");
        assert_ne!(r.verdict, Verdict::Error, "{}: {:?}", r.case, r.message);
    }
    let passed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Pass)
        .count();
    assert!(
        passed >= passing,
        "{converter}: only {passed} of {cases} pass"
    );
    assert!(unexplained.is_empty(), "{converter}: {unexplained:#?}");
}

#[test]
fn tvm_converts_and_runs_generated_models_with_every_failure_explained() {
    if environment_or_skip("tvm", "tvm") {
        check_converter_stack("tvm", "tvm-llvm", (40, ALL), 20);
    }
}

#[test]
fn litert_runs_what_onnx2tf_converts_with_every_failure_explained() {
    if environment_or_skip("tflite", "tflite") {
        // Every fourth of the first 160: 40 cases, 23 of them passing when this was written;
        // s1-i7 and s1-i34, which the ledger knows by their reduction, are not among them.
        let every_fourth = harness::conformance::Shard { index: 1, count: 4 };
        check_converter_stack("tflite", "litert", (160, every_fourth), 15);
    }
}

#[test]
fn litert_outputs_whose_shape_cannot_tell_the_layout_come_back_in_onnx_order() {
    if environment_or_skip("tflite", "tflite") {
        // Outputs [N, k, k] (C = L): the shape cannot say whether onnx2tf left them channel
        // last; its record of the output layouts does. These three were false mismatches when
        // the stack guessed from the shape.
        for index in [916, 1039, 1480] {
            let only = harness::conformance::Shard {
                index: index + 1,
                count: index + 1,
            };
            let (results, _) = run_through("tflite", "tract", index + 1, only);
            assert_eq!(results.len(), 1);
            let r = &results[0];
            assert_eq!(r.case, format!("s1-i{index}"));
            assert_eq!(r.verdict, Verdict::Pass, "{}: {:?}", r.case, r.message);
        }
    }
}

#[test]
fn onnx_optimizers_hand_onnx_to_the_runtime_and_are_checked_for_drift() {
    if !environment_or_skip("optimizers", "onnxslim and onnxoptimizer") {
        return;
    }
    for converter in ["onnxslim", "onnxoptimizer"] {
        let (results, unexplained) = run_through(converter, "tract", 30, ALL);
        for r in &results {
            // Their ONNX runs on the run's runtime, so the drift check compares it with the
            // unconverted model there.
            assert_eq!(r.runtime, "tract", "{r:?}");
        }
        assert!(
            results.iter().any(|r| r.reference_ratio.is_some()),
            "{converter}: no result compared with the unconverted model"
        );
        let passed = results
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .count();
        assert!(passed >= 12, "{converter}: only {passed} of 30 pass");
        assert!(unexplained.is_empty(), "{converter}: {unexplained:#?}");
    }
}

#[test]
fn a_stack_failure_is_bundled_with_its_module_and_replays_outside_the_harness() {
    if !environment_or_skip("tvm", "tvm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // s1-i19: TVM computes a grouped 1D ConvTranspose with output_shape wrongly (FINDINGS).
    let options = Options {
        cases: 20,
        seed: 1,
        shard: harness::conformance::Shard {
            index: 20,
            count: 20,
        },
        converters: vec!["tvm".into()],
        report_dir: Some(dir.path().to_path_buf()),
        max_bundles: 1,
        ..Options::default()
    };
    let results = Runner::new(options).unwrap().run(&|_| {}).unwrap().results;
    let r = results
        .iter()
        .find(|r| r.case == "s1-i19")
        .expect("s1-i19 ran");
    assert_eq!(r.verdict, Verdict::Mismatch, "{r:?}");
    let bundle = PathBuf::from(r.repro.as_ref().expect("bundled"));
    // The bundle carries the module it was run with and the stack's pinned packages.
    assert_eq!(
        std::fs::read_to_string(bundle.join("stacks/tvm.py")).unwrap(),
        harness::worker::stack("tvm").unwrap().source
    );
    let requirements = std::fs::read_to_string(bundle.join("requirements.txt")).unwrap();
    assert!(
        requirements.contains("apache-tvm==0.27.0.post1"),
        "{requirements}"
    );
    let issue = std::fs::read_to_string(bundle.join("ISSUE.md")).unwrap();
    assert!(issue.contains("pip install -r requirements.txt"), "{issue}");
    // Replayed with the stack's own interpreter and nothing of the harness: still failing.
    let python = find_python_of("tvm").unwrap();
    let replay = std::process::Command::new(python)
        .arg(bundle.join("repro.py"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("still failing (mismatch"), "{stdout}");
}
