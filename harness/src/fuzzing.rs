//! Entry points for coverage-guided fuzzing.
//!
//! `harness/fuzz/` (cargo-fuzz, libFuzzer) calls these with the fuzzer's bytes; the tests in
//! `harness/tests/fuzz_inputs.rs` call them on stable Rust with seeded random bytes and with
//! every input kept under `harness/fuzz/regressions/<target>/`, so what a fuzzer once found
//! stays fixed. A target "crashes" only by panicking: bad input must give an error value.

use anyhow::Result;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use crate::compare::Verdict;
use crate::conformance::{case_subject, Options, Runner};
use crate::gen::{self, GenConfig, InputDist};
use crate::ledger::Ledger;
use crate::model::ModelDesc;
use crate::onnx::proto::{self, declared_type, Dim};
use crate::results::Reduction;
use crate::tensor::{DType, Named, Tensor};

/// The generator's model and input distribution for fuzzer bytes. The bytes select the random
/// stream the generator draws from (a ChaCha stream keyed by their SHA-256), so every input is
/// one reproducible case and libFuzzer keeps the inputs whose cases reach new code. proptest's
/// pass-through RNG is not used: each forked RNG gets half of the remaining bytes, and once
/// they run out it yields zeros, on which rand's rejection sampling never returns.
pub fn model_from_bytes(data: &[u8], cfg: &GenConfig) -> (ModelDesc, InputDist) {
    let digest: [u8; 32] = Sha256::digest(data).into();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &digest);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    (gen::model_strategy(cfg.clone()), gen::input_strategy())
        .new_tree(&mut runner)
        .expect("the generator's strategies never reject")
        .current()
}

/// What the generated-case target checks: a runner (identity on tract) and the ledger.
pub struct GeneratedCheck {
    runner: Runner,
    ledger: Ledger,
}

impl GeneratedCheck {
    /// Identity on tract, judged with `ledger` (an empty one if `None`).
    pub fn new(ledger: Option<&std::path::Path>) -> Result<GeneratedCheck> {
        let runner = Runner::new(Options {
            converters: vec![crate::convert::IDENTITY.into()],
            repeats: 0,
            max_bundles: 0,
            ..Options::default()
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let ledger = match ledger {
            Some(p) => Ledger::load(p)?,
            None => Ledger::default(),
        };
        Ok(GeneratedCheck { runner, ledger })
    }

    /// The same checks as a conformance run on the model the bytes describe: the emitted model
    /// is valid, the oracle evaluates it, tract's output is within the bound (or the failure is
    /// one the ledger explains). Returns what went wrong.
    pub fn check(&self, data: &[u8]) -> std::result::Result<(), String> {
        let (model, input) = model_from_bytes(data, &GenConfig::default());
        let digest = Sha256::digest(data);
        let index = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let case = gen::case_from(0, index, model, input);
        let subject = case_subject(&case);
        let mut results = self.runner.run_subject(&subject);
        self.ledger.apply(&mut results);
        // As a run does, a failure no entry explains yet is judged again by what reducing it
        // finds (docs/ledger.md). A run also shrinks the model; these models come from fuzz
        // bytes, not from a seed the shrinker can start from, so this stops at the first
        // diverging node (op and whether it fails alone).
        if results.iter().any(|r| !r.ok()) {
            if let Ok(model) = proto::decode_model(&subject.model) {
                for r in results.iter_mut().filter(|r| !r.ok()) {
                    let (_, divergence) = crate::conformance::reduce::signature_of(
                        &self.runner,
                        &r.converter,
                        &model,
                        &subject.inputs,
                        r,
                    );
                    r.reduction = divergence.map(|d| Reduction {
                        case: r.case.clone(),
                        op: Some(d.op),
                        alone: d.alone,
                        ..Reduction::default()
                    });
                }
                self.ledger.apply(&mut results);
            }
        }
        match results
            .iter()
            .find(|r| r.verdict != Verdict::Pass && r.expected.is_none())
        {
            None => Ok(()),
            Some(r) => Err(format!(
                "{} on {}: {}: {}\nmodel: {}",
                r.converter,
                r.runtime,
                r.verdict.name(),
                r.message.as_deref().unwrap_or(""),
                serde_json::to_string(&case.model).unwrap_or_default()
            )),
        }
    }
}

/// Largest input (elements) the model-reader target feeds the oracle.
const READER_INPUT_LIMIT: usize = 1 << 12;

/// The ONNX reader and the oracle's graph loader on arbitrary bytes: decoding, then evaluation
/// on zero inputs shaped as the graph declares (symbols as 2; skipped when larger than a few
/// thousand elements). Errors are fine; panics are bugs.
pub fn read_model(data: &[u8]) {
    let Ok(model) = proto::decode_model(data) else {
        return;
    };
    let graph = model.graph.clone().unwrap_or_default();
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = Vec::new();
    for vi in graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
    {
        let Some((elem, dims)) = declared_type(vi) else {
            return;
        };
        let shape: Vec<usize> = dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Symbol(_) => 2,
            })
            .collect();
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .unwrap_or(usize::MAX);
        if n > READER_INPUT_LIMIT {
            return;
        }
        let dims = ndarray::IxDyn(&shape);
        let tensor = if elem == proto::data_type_code(DType::Int64) {
            Tensor::I64(ndarray::ArrayD::zeros(dims))
        } else {
            Tensor::F32(ndarray::ArrayD::zeros(dims))
        };
        inputs.push(Named {
            name: vi.name.clone(),
            tensor,
        });
    }
    let _ = crate::oracle::evaluate(&model, &inputs);
}

/// The TensorProto reader on arbitrary bytes.
pub fn read_tensor(data: &[u8]) {
    if let Ok(t) = proto::decode_tensor(data) {
        let _ = proto::tensor_from_proto(&t);
    }
}

/// The readers of text inputs (case.toml, known-failures.toml, report.json) on arbitrary
/// bytes. (The latency crate's baseline reader is fuzzed by the same target beside it.)
pub fn read_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(_) => return,
    };
    for name in ["case.toml", "known-failures.toml", "report.json"] {
        let path = dir.path().join(name);
        if std::fs::write(&path, text).is_err() {
            return;
        }
    }
    let _ = crate::corpus::CaseToml::read(dir.path());
    let _ = Ledger::load(&dir.path().join("known-failures.toml"));
    let _ = crate::report::Report::load(&dir.path().join("report.json"));
}
