//! The fuzz targets of `harness/fuzz/` on stable Rust: every input a fuzzer once found (kept in
//! `harness/fuzz/regressions/<target>/`), seeded random bytes, and seeded mutations (bit flips,
//! truncations, splices) of real files. A panic fails the test; error values are fine.

use std::path::{Path, PathBuf};

use harness::fuzzing;
use harness::seed::{self, Draw};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn kept(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = repo().join("harness/fuzz/regressions").join(target);
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

/// `count` mutants of `seeds`: flips, truncations, byte overwrites and splices.
fn mutants(seeds: &[Vec<u8>], count: usize, label: &str) -> Vec<Vec<u8>> {
    let mut rng = seed::rng(0, label);
    (0..count)
        .map(|i| {
            let mut v = seeds[i % seeds.len()].clone();
            if v.is_empty() {
                return v;
            }
            let n = v.len() as i64;
            match rng.int(0, 3) {
                0 => {
                    for _ in 0..rng.int(1, 8) {
                        let at = rng.int(0, n - 1) as usize;
                        v[at] ^= 1 << rng.int(0, 7);
                    }
                }
                1 => v.truncate(rng.int(0, n - 1) as usize),
                2 => {
                    let at = rng.int(0, n - 1) as usize;
                    v[at] = rng.int(0, 255) as u8;
                }
                _ => {
                    let other = &seeds[rng.int(0, seeds.len() as i64 - 1) as usize];
                    let cut = rng.int(0, n) as usize;
                    let from = rng.int(0, other.len() as i64) as usize;
                    v.truncate(cut);
                    v.extend_from_slice(&other[from..]);
                }
            }
            v
        })
        .collect()
}

fn random_bytes(count: usize, label: &str) -> Vec<Vec<u8>> {
    let mut rng = seed::rng(0, label);
    (0..count)
        .map(|_| {
            (0..rng.int(0, 300))
                .map(|_| rng.int(0, 255) as u8)
                .collect()
        })
        .collect()
}

/// The corpus's files of that name, small ones only (the edge cases), so each mutant that still
/// decodes is evaluated quickly.
fn files_named(name: &str) -> Vec<Vec<u8>> {
    harness::corpus::list(&repo().join("corpus"))
        .unwrap()
        .into_iter()
        .filter_map(|c| std::fs::read(c.dir.join(name)).ok())
        .filter(|b| b.len() < 4_000)
        .collect()
}

#[test]
fn model_reader_survives_kept_random_and_mutated_models() {
    for (path, bytes) in kept("onnx_reader") {
        eprintln!("{}", path.display());
        fuzzing::read_model(&bytes);
    }
    for bytes in random_bytes(500, "fuzz-model-random") {
        fuzzing::read_model(&bytes);
    }
    let models = files_named("model.onnx");
    assert!(models.len() > 10, "corpus models to mutate");
    for bytes in mutants(&models, 1500, "fuzz-model-mutants") {
        fuzzing::read_model(&bytes);
    }
}

#[test]
fn tensor_reader_survives_kept_random_and_mutated_tensors() {
    for (_, bytes) in kept("tensor_reader") {
        fuzzing::read_tensor(&bytes);
    }
    for bytes in random_bytes(2000, "fuzz-tensor-random") {
        fuzzing::read_tensor(&bytes);
    }
    let tensors = files_named("test_data_set_0/input_0.pb");
    for bytes in mutants(&tensors, 3000, "fuzz-tensor-mutants") {
        fuzzing::read_tensor(&bytes);
    }
}

#[test]
fn config_readers_survive_kept_random_and_mutated_files() {
    for (_, bytes) in kept("config_reader") {
        fuzzing::read_config(&bytes);
    }
    let mut seeds = files_named("case.toml");
    seeds.push(std::fs::read(repo().join("corpus/known-failures.toml")).unwrap());
    for bytes in mutants(&seeds, 400, "fuzz-config-mutants") {
        fuzzing::read_config(&bytes);
    }
}

#[test]
fn generated_cases_from_fuzzer_bytes_pass_or_fail_as_the_ledger_expects() {
    let check =
        fuzzing::GeneratedCheck::new(Some(&repo().join("corpus/known-failures.toml"))).unwrap();
    let mut failures = Vec::new();
    let mut inputs: Vec<Vec<u8>> = kept("generated_case").into_iter().map(|(_, b)| b).collect();
    inputs.extend(random_bytes(150, "fuzz-generated-random"));
    // Bytes that run out early (zeros after them) and a long run of 0xff reach the extremes.
    inputs.push(Vec::new());
    inputs.push(vec![0xff; 512]);
    let mut distinct = std::collections::HashSet::new();
    for bytes in &inputs {
        // Panics are caught so that their message is shown (the harness's quiet panic hook
        // keeps it off the terminal).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let model = fuzzing::model_from_bytes(bytes, &Default::default()).0;
            (format!("{model:?}"), check.check(bytes))
        }));
        match outcome {
            Ok((model, result)) => {
                distinct.insert(model);
                if let Err(e) = result {
                    failures.push(e);
                }
            }
            Err(payload) => failures.push(format!(
                "panic on input {bytes:?}: {}",
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
    // The harness's quiet panic hook hides assertion messages, so say what failed first.
    for f in &failures {
        eprintln!("{f}\n");
    }
    eprintln!(
        "{} distinct models of {} inputs",
        distinct.len(),
        inputs.len()
    );
    assert!(
        distinct.len() > inputs.len() / 2,
        "bytes steer the generator"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed",
        failures.len(),
        inputs.len()
    );
}
