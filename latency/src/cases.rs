//! The corpus side of a perf run: which cases are measured, and what a case holds (its model,
//! inputs and operation count).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::PerfOptions;
use harness::corpus::CaseToml;
use harness::flops;
use harness::onnx::{proto, testcase};
use harness::tensor::Named;

/// Corpus cases selected by the options: (name, directory). Without `--case`, the cases marked
/// `perf = true` in their case.toml (the static zoo models), or all when none is marked.
pub fn select_cases(options: &PerfOptions) -> Result<Vec<(String, PathBuf)>> {
    let mut out = named_cases(options)?;
    if options.cases.is_empty() {
        // The default set: the cases whose case.toml says `perf = true`, or every case of a
        // corpus that marks none.
        let marked: Vec<(String, PathBuf)> = out
            .iter()
            .filter(|(_, dir)| CaseToml::read(dir).is_ok_and(|t| t.perf))
            .cloned()
            .collect();
        if !marked.is_empty() {
            out = marked;
        }
    }
    Ok(out)
}

/// The cases named by `--case`, or every case of the corpus when none is named.
pub fn named_cases(options: &PerfOptions) -> Result<Vec<(String, PathBuf)>> {
    anyhow::ensure!(
        options.corpus.is_dir(),
        "{}: no such corpus directory",
        options.corpus.display()
    );
    let mut out = Vec::new();
    for dir in testcase::find(&options.corpus)? {
        let name = dir
            .strip_prefix(&options.corpus)
            .unwrap_or(&dir)
            .display()
            .to_string();
        let name = if name.is_empty() {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            name
        };
        if options.cases.is_empty() || options.cases.contains(&name) {
            out.push((name, dir));
        }
    }
    for wanted in &options.cases {
        anyhow::ensure!(
            out.iter().any(|(n, _)| n == wanted),
            "no case '{wanted}' under {} (a case is a directory holding model.onnx)",
            options.corpus.display()
        );
    }
    anyhow::ensure!(
        !out.is_empty(),
        "{}: no case (no directory holding model.onnx)",
        options.corpus.display()
    );
    Ok(out)
}

/// The model bytes and named inputs (data set 0) of a test-case directory.
pub fn read_case(dir: &Path) -> Result<(Vec<u8>, Vec<Named>)> {
    let case = testcase::read(dir)?;
    let set = case
        .data_sets
        .first()
        .with_context(|| format!("{}: no test_data_set_0", dir.display()))?;
    let model = proto::decode_model(&case.model)
        .with_context(|| format!("{}/model.onnx", dir.display()))?;
    let graph = model.graph.unwrap_or_default();
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let names: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !inits.contains(n))
        .collect();
    let inputs = set
        .inputs
        .iter()
        .enumerate()
        .map(|(j, t)| Named {
            name: names
                .get(j)
                .map(|s| s.to_string())
                .unwrap_or_else(|| format!("input_{j}")),
            tensor: t.clone(),
        })
        .collect();
    Ok((case.model, inputs))
}

/// Operations of one inference of a case's model ([`flops`]), or why they could not be
/// counted.
pub(crate) fn flops_of(model: &[u8], inputs: &[Named]) -> (Option<u64>, Option<String>) {
    match proto::decode_model(model).and_then(|m| flops::count(&m, inputs)) {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    }
}

/// [`flops_of`] the case in directory `dir`.
pub(crate) fn case_flops(dir: &Path) -> (Option<u64>, Option<String>) {
    match read_case(dir) {
        Ok((model, inputs)) => flops_of(&model, &inputs),
        Err(e) => (None, Some(format!("{e:#}"))),
    }
}
