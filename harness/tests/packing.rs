//! Packing is invisible in what a run reports: the same verdicts and messages with packs as
//! without, packs that fail split down to cases alone, and a case that fails only in its pack
//! reported with its alone verdict and what the pack said.

use harness::compare::Verdict;
use harness::conformance::{Options, Runner};
use harness::gen::{GenConfig, QuantizedCases};
use harness::results::CaseResult;

fn run(converters: &[&str], cases: u64, pack: usize) -> Vec<CaseResult> {
    let options = Options {
        cases,
        seed: 5,
        converters: converters.iter().map(|s| s.to_string()).collect(),
        repeats: 0,
        max_bundles: 0,
        pack: Some(pack),
        // As the default run: some cases with their quantized form beside them, so that a
        // window's subjects are more than its cases.
        gen: GenConfig {
            quantized: QuantizedCases::Beside,
            ..GenConfig::default()
        },
        ..Options::default()
    };
    Runner::new(options).unwrap().run(&|_| {}).unwrap().results
}

/// What a run reports of a result, timing and latency aside.
fn seen(r: &CaseResult) -> (String, String, Verdict, Option<String>, Vec<String>) {
    (
        r.case.clone(),
        r.converter.clone(),
        r.verdict,
        r.message.clone(),
        r.classes.clone(),
    )
}

#[test]
fn packed_and_alone_runs_report_the_same_results_in_the_same_order() {
    let converters = ["identity", "lower1d"];
    let alone = run(&converters, 120, 1);
    let packed = run(&converters, 120, 6);
    let quantized = alone.iter().filter(|r| r.case.contains("-q")).count();
    assert!(quantized >= 10, "{quantized} quantized results");
    assert_eq!(alone.len(), 240 + quantized);
    let alone: Vec<_> = alone.iter().map(seen).collect();
    let packed_seen: Vec<_> = packed.iter().map(seen).collect();
    assert_eq!(alone, packed_seen);
    assert!(packed.iter().all(|r| r.in_pack.is_none()));
    let passes = packed.iter().filter(|r| r.verdict == Verdict::Pass).count();
    assert!(passes > 150, "{passes} passes");
}

#[test]
fn a_pack_the_converter_refuses_is_split_down_to_cases_alone() {
    // Refuses any model holding a second packed member's names: every pack, never a case
    // alone (which is not renamed).
    let picky = "exec:grep -q p1_ {input} && exit 3; cp {input} {output}";
    let alone = run(&["identity"], 40, 1);
    let packed = run(&[picky], 40, 8);
    assert_eq!(alone.len(), packed.len());
    for (a, p) in alone.iter().zip(&packed) {
        assert_eq!(
            (&a.case, a.verdict, &a.message),
            (&p.case, p.verdict, &p.message)
        );
        assert!(p.in_pack.is_none());
    }
}

/// An `exec:` converter that runs `when` (Python, on the loaded ONNX model `m`) and, if it is
/// true, doubles every float weight of the model, as a converter spoiling it would; other
/// models pass through. None (the test skips) without the project's Python environment.
fn spoiler(when: &str) -> Option<(tempfile::TempDir, String)> {
    let Some(python) = harness::worker::find_python() else {
        assert!(
            std::env::var_os("HARNESS_REQUIRE_PYTHON").is_none(),
            "HARNESS_REQUIRE_PYTHON is set but no Python environment was found"
        );
        eprintln!("SKIPPED: no .venv (run `cargo xtask setup`)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spoil.py");
    std::fs::write(
        &script,
        format!(
            "import sys, numpy as np, onnx\n\
             from onnx import numpy_helper\n\
             m = onnx.load(sys.argv[1])\n\
             {when}\n\
             if spoil(m):\n\
             \x20   for i, t in enumerate(m.graph.initializer):\n\
             \x20       if t.data_type == onnx.TensorProto.FLOAT:\n\
             \x20           w = numpy_helper.to_array(t)\n\
             \x20           m.graph.initializer[i].CopyFrom(numpy_helper.from_array((2 * w).astype(np.float32), t.name))\n\
             onnx.save(m, sys.argv[2])\n"
        ),
    )
    .unwrap();
    let converter = format!(
        "exec:{} {} {{input}} {{output}}",
        python.display(),
        script.display()
    );
    Some((dir, converter))
}

#[test]
fn a_case_that_fails_only_in_its_pack_reports_its_alone_verdict_and_the_packs() {
    // Spoils a packed model (its names start with p0_); a model alone passes through.
    let Some((_dir, spoiler)) =
        spoiler("def spoil(m): return any(t.name.startswith('p0_') for t in m.graph.initializer)")
    else {
        return;
    };
    let alone = run(&["identity"], 24, 1);
    let packed = run(&[&spoiler], 24, 4);
    assert_eq!(alone.len(), packed.len());
    for (a, p) in alone.iter().zip(&packed) {
        assert_eq!((&a.case, a.verdict), (&p.case, p.verdict), "{p:?}");
    }
    let caught = packed
        .iter()
        .filter(|r| {
            r.in_pack
                .as_deref()
                .is_some_and(|m| m.starts_with("mismatch:"))
        })
        .count();
    assert!(
        caught >= 8,
        "only {caught} results say their pack failed: {packed:#?}"
    );
}

#[test]
fn quantized_and_float_cases_never_share_a_pack() {
    // Spoils a model whose members (name prefixes pK_) are some quantized and some not, as a
    // converter deciding once per model would.
    let Some((_dir, spoiler)) = spoiler(
        "def spoil(m):\n\
         \x20   quant = {'QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger'}\n\
         \x20   members = {}\n\
         \x20   for n in m.graph.node:\n\
         \x20       p = n.output[0].split('_')[0]\n\
         \x20       if p[:1] == 'p' and p[1:].isdigit():\n\
         \x20           members[p] = members.get(p, False) or n.op_type in quant\n\
         \x20   return len(set(members.values())) > 1",
    ) else {
        return;
    };
    let alone = run(&["identity"], 80, 1);
    let packed = run(&[&spoiler], 80, 8);
    let quantized = packed.iter().filter(|r| r.case.contains("-q")).count();
    assert!(quantized >= 5, "{quantized} quantized results");
    assert_eq!(alone.len(), packed.len());
    for (a, p) in alone.iter().zip(&packed) {
        assert_eq!((&a.case, a.verdict), (&p.case, p.verdict), "{p:?}");
        assert!(p.in_pack.is_none(), "a mixed pack: {p:?}");
    }
}
