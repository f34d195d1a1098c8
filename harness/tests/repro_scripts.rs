//! Every finding of the ledger on the stacks of the project's environment (tract, OpenVINO,
//! onnxruntime, onnxsim) reproduces outside the harness: each entry's witness case is run on its
//! stack, its failure bundled, and the bundle's `repro.py` (numpy, onnx and the stack's own
//! Python package, in the project's .venv) must exit 1, the bug being there. The stacks with
//! environments of their own (TVM, TFLite, onnxslim) are left out here: converting their
//! witnesses again costs minutes each; `harness/tests/stacks.rs` replays a TVM bundle with the
//! module it carries.
//!
//! Needs the Python environment (`cargo xtask test` provides it and sets
//! HARNESS_REQUIRE_PYTHON=1); a plain `cargo test` without it skips loudly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harness::compare::Verdict;
use harness::conformance::{generated_subject, Bundled, Options, Runner, Signatures};
use harness::gen::GenConfig;
use harness::ledger::{Entry, Globs, Ledger};
use harness::model::QuantOperators;
use harness::runtime::Precision;
use harness::worker::find_python;

/// The converter spec and runtime a ledger entry's globs stand for, as its witness ran.
fn stack_of(entry: &Entry, python: &Path) -> Option<(String, String)> {
    let onnxsim = python.with_file_name("onnxsim");
    // A list of globs stands for its first: the stack the witness was found on.
    let first = match &entry.converter {
        Globs::One(g) => g.as_str(),
        Globs::Any(gs) => gs.first()?.as_str(),
    };
    // A stack module with an environment of its own (worker::STACKS): not replayed here.
    let module = first
        .trim_end_matches('*')
        .split(':')
        .next()
        .unwrap_or_default();
    if harness::worker::stack(module).is_some_and(|s| !s.environment.is_empty()) {
        return None;
    }
    let converter = match first {
        "*" | "identity" => "identity".to_string(),
        // Both precisions show these bugs; the f32 hint gives the same precision on every CPU.
        "openvino*" | "openvino:f32" => "openvino:f32".to_string(),
        // An entry that holds at f32 only: the hint pins it (the default is bf16 on CPUs
        // that have bf16).
        "openvino" if entry.precision == [Precision::F32] => "openvino:f32".to_string(),
        "openvino" => "openvino".to_string(),
        "openvino:ovc*" => "openvino:ovc:f32".to_string(),
        "lower1d*" | "lower1d" => "lower1d".to_string(),
        "nnef" => "nnef".to_string(),
        "exec:*onnxsim*" => format!("exec:{} {{input}} {{output}}", onnxsim.display()),
        other => panic!("no stack known for converter glob {other:?}; extend this test"),
    };
    let runtime = match entry.runtime.as_str() {
        "tract" | "openvino-cpu" | "*" => "tract",
        "onnxruntime" => "onnxruntime",
        other => panic!("no runtime known for {other:?}; extend this test"),
    };
    Some((converter, runtime.to_string()))
}

/// `s5-i198` as (5, 198, None); `s5-i198-q`, the case's quantized form, as (5, 198, Some(Qdq)),
/// and `-qo`, `-qi` with their operator forms.
fn seed_and_index(witness: &str) -> (u64, u64, Option<QuantOperators>) {
    let forms = [
        QuantOperators::Qdq,
        QuantOperators::Qlinear,
        QuantOperators::Integer,
    ];
    let (id, form) = forms
        .iter()
        .find_map(|f| witness.strip_suffix(f.id_suffix()).map(|id| (id, Some(*f))))
        .unwrap_or((witness, None));
    let (s, i) = id
        .strip_prefix('s')
        .and_then(|w| w.split_once("-i"))
        .unwrap_or_else(|| panic!("witness {witness:?} is not sS-iK or sS-iK-q(o|i)"));
    (s.parse().unwrap(), i.parse().unwrap(), form)
}

#[test]
fn every_ledger_witness_bundle_has_a_repro_script_that_still_fails() {
    let Some(python) = find_python() else {
        assert!(
            std::env::var_os("HARNESS_REQUIRE_PYTHON").is_none(),
            "HARNESS_REQUIRE_PYTHON is set but no Python environment was found"
        );
        eprintln!("SKIPPED: no .venv (run `cargo xtask setup`); repro scripts not run");
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ledger = Ledger::load(&root.join("corpus/known-failures.toml")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    // Hangs last, with a short timeout: a runtime step past its timeout leaves its thread
    // running until the process ends.
    let mut entries: Vec<(usize, &Entry)> = ledger.failure.iter().enumerate().collect();
    let hangs = |e: &Entry| e.verdict.contains(Verdict::Timeout);
    entries.sort_by_key(|(_, e)| hangs(e));
    for (n, entry) in entries {
        let Some(witness) = &entry.witness else {
            continue;
        };
        let Some((converter, runtime)) = stack_of(entry, &python) else {
            continue;
        };
        // A bug this CPU's extensions take away (onnxruntime's u8s8 saturation without VNNI).
        if !ledger.holds_on_cpu(entry) {
            continue;
        }
        let (seed, index, form) = seed_and_index(witness);
        let report_dir: PathBuf = work.path().join(format!("entry-{n}"));
        let runner = Runner::new(Options {
            converters: vec![converter.clone()],
            runtime: runtime.clone(),
            report_dir: Some(report_dir),
            timeout: Duration::from_secs(if hangs(entry) { 5 } else { 60 }),
            repeats: 0,
            max_bundles: 1,
            reduce_budget: Duration::from_secs(3),
            // A quantized witness is made, and reduced, in its quantized form.
            gen: GenConfig {
                quantized_operators: form,
                ..GenConfig::default().one_form(form.is_some())
            },
            ..Options::default()
        })
        .unwrap();
        let subject = generated_subject(seed, index, form.is_some(), &runner.options().gen);
        let mut result = runner.run_with(&subject, &converter).unwrap();
        let what = format!("{witness} on {converter} / {runtime}");
        if result.verdict == Verdict::Pass {
            problems.push(format!("{what}: passes, the entry is stale"));
            continue;
        }
        let bundle = match runner.bundle_one(&mut result, &mut Signatures::new()) {
            Some(Bundled::New(Some(path))) => PathBuf::from(path),
            other => {
                problems.push(format!("{what}: no bundle ({other:?})"));
                continue;
            }
        };
        let script = bundle.join("repro.py");
        assert!(
            script.is_file(),
            "{what}: no repro.py in {}",
            bundle.display()
        );
        assert!(bundle.join("ISSUE.md").is_file(), "{what}: no ISSUE.md");
        let out = Command::new(&python)
            .arg(&script)
            .env("RUST_BACKTRACE", "0")
            .env("REPRO_TIMEOUT", if hangs(entry) { "10" } else { "120" })
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        match out.status.code() {
            Some(1) if text.contains("still failing") => checked.push(what),
            code => problems.push(format!(
                "{what}: repro.py exited {code:?}, expected 1 (bug present):\n{text}"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(
        checked.len() >= 40,
        "only {} witnesses checked",
        checked.len()
    );
    eprintln!("{} repro scripts fail as their findings say", checked.len());
}
