//! The ONNX test-case directory: `model.onnx` plus `test_data_set_K/input_J.pb` and
//! `output_J.pb`, as the ONNX backend test suite lays it out; `meta.json` is ours.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::proto::{decode_tensor, encode_model, tensor_from_proto, tensor_to_proto};
use crate::fsutil;
use crate::tensor::Tensor;
use tract_onnx::pb;

/// One data set: inputs and expected outputs, in graph order.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSet {
    /// `input_J.pb` for J = 0, 1, ...
    pub inputs: Vec<Tensor>,
    /// `output_J.pb` for J = 0, 1, ...
    pub outputs: Vec<Tensor>,
}

/// A test-case directory read from disk.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// Where it was read from.
    pub dir: PathBuf,
    /// The raw bytes of `model.onnx`.
    pub model: Vec<u8>,
    /// Its data sets, in `test_data_set_K` order.
    pub data_sets: Vec<DataSet>,
}

/// Every directory under `root` (including `root`) that holds a `model.onnx`, sorted.
pub fn find(root: &Path) -> Result<Vec<PathBuf>> {
    ensure!(root.is_dir(), "{}: not a directory", root.display());
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("model.onnx").is_file() {
            found.push(dir.clone());
        }
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir()
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
            {
                stack.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a test-case directory. Every problem is an error naming the file.
pub fn read(dir: &Path) -> Result<TestCase> {
    let model_path = dir.join("model.onnx");
    let model = std::fs::read(&model_path)
        .with_context(|| format!("{}: cannot read", model_path.display()))?;
    let mut sets: Vec<(usize, PathBuf)> = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(k) = name.strip_prefix("test_data_set_") {
            if path.is_dir() {
                let k: usize = k
                    .parse()
                    .with_context(|| format!("{}: bad data set number", path.display()))?;
                sets.push((k, path));
            }
        }
    }
    sets.sort();
    let mut data_sets = Vec::with_capacity(sets.len());
    for (_, path) in sets {
        data_sets.push(DataSet {
            inputs: read_numbered(&path, "input")?,
            outputs: read_numbered(&path, "output")?,
        });
    }
    Ok(TestCase {
        dir: dir.to_path_buf(),
        model,
        data_sets,
    })
}

fn read_numbered(dir: &Path, prefix: &str) -> Result<Vec<Tensor>> {
    let mut out = Vec::new();
    loop {
        let path = dir.join(format!("{prefix}_{}.pb", out.len()));
        if !path.exists() {
            break;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let tensor = decode_tensor(&bytes)
            .and_then(|t| tensor_from_proto(&t))
            .with_context(|| format!("{}", path.display()))?;
        out.push(tensor);
    }
    // A gap (input_0, input_2) means a file the reader would silently skip.
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(j) = name
            .strip_prefix(&format!("{prefix}_"))
            .and_then(|r| r.strip_suffix(".pb"))
        {
            if j.parse::<usize>().map_or(true, |j| j >= out.len()) {
                bail!(
                    "{}: {name} does not follow {prefix}_0..{prefix}_{}",
                    dir.display(),
                    out.len()
                );
            }
        }
    }
    Ok(out)
}

/// Writes a test-case directory atomically: it appears complete or not at all, and an existing
/// directory of that name is replaced only once the new one is whole.
/// Writes a test case with one data set, naming its tensors after the graph's inputs (those
/// without an initializer) and outputs.
pub fn write_single(
    dir: &Path,
    model: &pb::ModelProto,
    set: DataSet,
    meta: Option<&serde_json::Value>,
) -> Result<()> {
    let graph = model.graph.as_ref().context("the model has no graph")?;
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let input_names: Vec<String> = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(&n.as_str()))
        .collect();
    let output_names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    write(dir, model, &[set], &input_names, &output_names, meta)
}

pub fn write(
    dir: &Path,
    model: &pb::ModelProto,
    data_sets: &[DataSet],
    input_names: &[String],
    output_names: &[String],
    meta: Option<&serde_json::Value>,
) -> Result<()> {
    fsutil::write_dir_atomically(dir, |tmp| {
        std::fs::write(tmp.join("model.onnx"), encode_model(model))?;
        for (k, set) in data_sets.iter().enumerate() {
            let d = tmp.join(format!("test_data_set_{k}"));
            std::fs::create_dir(&d)?;
            for (j, t) in set.inputs.iter().enumerate() {
                let name = input_names.get(j).map(String::as_str).unwrap_or("");
                let bytes = prost::Message::encode_to_vec(&tensor_to_proto(name, t));
                std::fs::write(d.join(format!("input_{j}.pb")), bytes)?;
            }
            for (j, t) in set.outputs.iter().enumerate() {
                let name = output_names.get(j).map(String::as_str).unwrap_or("");
                let bytes = prost::Message::encode_to_vec(&tensor_to_proto(name, t));
                std::fs::write(d.join(format!("output_{j}.pb")), bytes)?;
            }
        }
        if let Some(meta) = meta {
            std::fs::write(tmp.join("meta.json"), serde_json::to_vec_pretty(meta)?)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_case_reads_back_identically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("case");
        let model = pb::ModelProto {
            ir_version: 8,
            ..Default::default()
        };
        let set = DataSet {
            inputs: vec![Tensor::f32(&[1, 2], vec![1.0, 2.0]).unwrap()],
            outputs: vec![Tensor::f32(&[1], vec![3.0]).unwrap()],
        };
        write(
            &dir,
            &model,
            std::slice::from_ref(&set),
            &["x".into()],
            &["y".into()],
            None,
        )
        .unwrap();
        let back = read(&dir).unwrap();
        assert_eq!(back.data_sets, vec![set]);
        assert_eq!(find(tmp.path()).unwrap(), vec![dir]);
    }

    #[test]
    fn a_gap_in_numbered_files_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("test_data_set_0");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(tmp.path().join("model.onnx"), b"").unwrap();
        let t = prost::Message::encode_to_vec(&tensor_to_proto(
            "",
            &Tensor::f32(&[1], vec![1.0]).unwrap(),
        ));
        std::fs::write(d.join("input_0.pb"), &t).unwrap();
        std::fs::write(d.join("input_2.pb"), &t).unwrap();
        let e = format!("{:#}", read(tmp.path()).unwrap_err());
        assert!(e.contains("input_2.pb"), "{e}");
    }

    #[test]
    fn a_truncated_tensor_file_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("test_data_set_0");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(tmp.path().join("model.onnx"), b"").unwrap();
        let t = prost::Message::encode_to_vec(&tensor_to_proto(
            "",
            &Tensor::f32(&[4], vec![1.0; 4]).unwrap(),
        ));
        std::fs::write(d.join("input_0.pb"), &t[..t.len() - 3]).unwrap();
        let e = format!("{:#}", read(tmp.path()).unwrap_err());
        assert!(e.contains("input_0.pb"), "{e}");
    }
}
