//! One named test per corpus case and converter (`corpus/<name>/<converter>`), plus the golden
//! checks: every case's oracle outputs must equal its reviewed golden tensors and snapshot
//! (`corpus/<name>/golden`), the built-in cases must be what the code builds, and no golden file
//! may be unreferenced.
//!
//! Filter like any test: `cargo test --release -p harness --test corpus -- m5`. When a golden
//! check fails, `cargo xtask bless` shows the change and rewrites golden/ for review.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use harness::compare::Verdict;
use harness::conformance::{Options, Runner};
use harness::corpus::{self, golden};
use harness::ledger::Ledger;
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn main() {
    let args = Arguments::from_args();
    let root = root();
    let corpus_dir = root.join("corpus");
    let golden_dir = root.join("golden");
    let cases = corpus::list(&corpus_dir).expect("corpus/ lists");
    let mut trials = Vec::new();

    trials.push(Trial::test("corpus/built-by-code", {
        let corpus_dir = corpus_dir.clone();
        move || built_by_code(&corpus_dir)
    }));
    trials.push(Trial::test("golden/no-unreferenced-files", {
        let (c, g) = (corpus_dir.clone(), golden_dir.clone());
        move || {
            let stray = golden::unreferenced(&c, &g).map_err(|e| format!("{e:#}"))?;
            if stray.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "golden files that belong to no corpus case (run `cargo xtask bless`): {stray:?}"
                )
                .into())
            }
        }
    }));
    for case in &cases {
        let (name, dir, g) = (case.name.clone(), case.dir.clone(), golden_dir.clone());
        trials.push(Trial::test(
            format!("corpus/{}/golden", case.name),
            move || golden_check(&name, &dir, &g),
        ));
    }

    let ledger =
        Arc::new(Ledger::load(&corpus_dir.join("known-failures.toml")).expect("ledger loads"));
    let mut setups: Vec<(&str, &str)> = vec![
        ("identity", "tract"),
        ("lower1d", "tract"),
        ("lower1d:nc1l", "tract"),
        ("nnef", "tract"),
    ];
    if std::env::var_os("HARNESS_PYTHON").is_some() {
        setups.extend([
            ("openvino", "tract"),
            ("openvino:f32", "tract"),
            ("identity", "onnxruntime"),
        ]);
    }
    // The stacks with environments of their own (`cargo xtask setup --stack NAME`), where set
    // up; CI sets up every one and requires them.
    for (environment, converters) in [
        ("TVM", &["tvm"][..]),
        ("TFLITE", &["tflite"][..]),
        ("OPTIMIZERS", &["onnxslim", "onnxoptimizer"][..]),
    ] {
        if std::env::var_os(format!("HARNESS_PYTHON_{environment}")).is_some() {
            setups.extend(converters.iter().map(|c| (*c, "tract")));
        } else if std::env::var_os("HARNESS_REQUIRE_STACKS").is_some() {
            panic!("HARNESS_REQUIRE_STACKS is set but HARNESS_PYTHON_{environment} is not: run `cargo xtask setup --stack all`");
        }
    }
    for (converter, runtime) in setups {
        let runner = Arc::new(
            Runner::new(Options {
                converters: vec![converter.into()],
                runtime: runtime.into(),
                corpus: Some(corpus_dir.clone()),
                golden: Some(golden_dir.clone()),
                // as `cargo xtask conformance` does: timed runs after the checked one (an
                // engine can fail only from its second run on the same bound inputs)
                repeats: 2,
                max_bundles: 0,
                ..Options::default()
            })
            .expect("runner builds"),
        );
        let label = if runtime == "tract" {
            converter.to_string()
        } else {
            format!("{converter}@{runtime}")
        };
        for case in &cases {
            let (runner, ledger) = (runner.clone(), ledger.clone());
            let (c, dir) = (corpus_dir.clone(), case.dir.clone());
            trials.push(Trial::test(
                format!("corpus/{}/{label}", case.name),
                move || converter_check(&runner, &ledger, &c, &dir),
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The oracle's outputs equal the stored golden tensors, and the summary equals the snapshot.
fn golden_check(name: &str, dir: &Path, golden_dir: &Path) -> Result<(), Failed> {
    let (model, outputs) = golden::compute(dir).map_err(|e| format!("{e:#}"))?;
    let now: Vec<(String, harness::tensor::Tensor)> = outputs
        .iter()
        .map(|o| (o.name.clone(), golden::stored_f64(o)))
        .collect();
    let stored = golden::read(golden_dir, name).map_err(|e| format!("{e:#}"))?;
    if stored.len() != now.len() {
        return Err(format!(
            "corpus/{name}: {} outputs now, golden has {}; run `cargo xtask bless`",
            now.len(),
            stored.len()
        )
        .into());
    }
    let mut drifts: Vec<String> = stored
        .iter()
        .zip(&now)
        .enumerate()
        .filter_map(|(k, (s, (_, n)))| golden::drift(name, k, s, n))
        .collect();
    // The directory's own output_J.pb (the oracle's rounded to f32, or an exporter's: PyTorch's
    // for cnn1d_torch) must sit within the oracle's float32 bound, like any runtime's output.
    let case = harness::onnx::testcase::read(dir).map_err(|e| format!("{e:#}"))?;
    let stored_f32 = case.data_sets[0].outputs.clone();
    if !stored_f32.is_empty() {
        let expected: Vec<harness::compare::Expected> = outputs
            .iter()
            .map(|o| harness::compare::Expected {
                value: o.value.clone(),
                bound: Some(o.bound.clone()),
                dtype: o.dtype,
            })
            .collect();
        let c = harness::compare::compare(
            &expected,
            &stored_f32,
            harness::runtime::Precision::F32,
            harness::compare::Tolerance::default(),
        );
        if c.verdict != Verdict::Pass {
            drifts.push(format!(
                "corpus/{name}: test_data_set_0's outputs disagree with the oracle: {} {}",
                c.verdict.name(),
                c.message.unwrap_or_default()
            ));
        }
    }
    let summary = golden::summary(name, &model, &now);
    let snapshot = std::panic::catch_unwind(|| {
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(golden_dir);
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!(golden::snapshot_name(name), summary));
    });
    match (drifts.is_empty(), snapshot) {
        (true, Ok(())) => Ok(()),
        (_, snap) => {
            let mut msg = drifts.join("\n");
            if snap.is_err() {
                msg.push_str(&format!(
                    "\ncorpus/{name}: golden/{}.snap differs (diff above)",
                    golden::snapshot_name(name)
                ));
            }
            msg.push_str(
                "\nif the change is intended, run `cargo xtask bless` and review `git diff golden`",
            );
            Err(msg.into())
        }
    }
}

/// Every result of the case on this converter passes or is an expected failure of the ledger,
/// and no ledger entry for the case passes unexpectedly.
fn converter_check(
    runner: &Runner,
    ledger: &Ledger,
    corpus: &Path,
    dir: &Path,
) -> Result<(), Failed> {
    let mut results = runner.run_test_dir(corpus, dir);
    let stale = ledger.apply(&mut results);
    let bad: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass && r.expected.is_none())
        .map(|r| {
            format!(
                "{} {} on {}: {} {}",
                r.case,
                r.converter,
                r.runtime,
                r.verdict.name(),
                r.message.as_deref().unwrap_or("")
            )
        })
        .collect();
    if results.is_empty() {
        return Err("no results".into());
    }
    if bad.is_empty() && stale.is_empty() {
        Ok(())
    } else {
        Err(bad
            .into_iter()
            .chain(stale)
            .collect::<Vec<_>>()
            .join("\n")
            .into())
    }
}

/// The built-in cases on disk are exactly what the code builds today.
fn built_by_code(corpus_dir: &Path) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    for b in corpus::builtin().map_err(|e| format!("{e:#}"))? {
        let fresh = corpus::write_case(tmp.path(), &b).map_err(|e| format!("{e:#}"))?;
        let committed = corpus_dir.join(&b.name);
        for file in [
            "model.onnx",
            "case.toml",
            "test_data_set_0/input_0.pb",
            "test_data_set_0/output_0.pb",
        ] {
            let a = std::fs::read(fresh.join(file)).map_err(|e| e.to_string())?;
            match std::fs::read(committed.join(file)) {
                Ok(c) if c == a => {}
                Ok(_) => problems.push(format!(
                    "corpus/{}/{file} differs from what the code builds",
                    b.name
                )),
                Err(e) => problems.push(format!("corpus/{}/{file}: {e}", b.name)),
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.push("run `cargo xtask harness corpus-build`, then `cargo xtask bless`".into());
        Err(problems.join("\n").into())
    }
}
