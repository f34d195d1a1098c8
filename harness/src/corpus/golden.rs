//! Golden outputs of the corpus: what the f64 oracle says each case must produce, stored for
//! review.
//!
//! For corpus case `NAME`, `golden/NAME/output_J.pb` holds the full tensors (float64, or int64
//! for integer outputs) and `golden/NAME.snap` an insta snapshot with shapes, dtypes, a digest
//! and summary statistics per output, so that a drift shows up as a readable diff naming the
//! case and the output. `harness bless` writes both, each file atomically; tests and conformance
//! runs only read them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{case_name, list};
use crate::onnx::proto::{decode_tensor, tensor_from_proto, tensor_to_proto};
use crate::onnx::testcase;
use crate::oracle::GoldenOutput;
use crate::tensor::{DType, Named, Tensor};

/// Relative difference between a recomputed and a stored golden value that counts as drift.
/// The oracle is deterministic; this only absorbs last-bit differences of libm across machines.
pub const DRIFT_REL: f64 = 1e-12;

/// The full-precision tensor stored for an oracle output.
pub fn stored_f64(o: &GoldenOutput) -> Tensor {
    match o.dtype {
        DType::Int64 | DType::Int32 | DType::Bool => Tensor::I64(o.value.mapv(|v| v as i64)),
        _ => Tensor::F64(o.value.clone()),
    }
}

/// The tensor an f32 model is expected to produce for an oracle output (test-case directories).
pub fn stored_f32(o: &GoldenOutput) -> Tensor {
    match o.dtype {
        DType::Int64 | DType::Int32 | DType::Bool => Tensor::I64(o.value.mapv(|v| v as i64)),
        _ => Tensor::F32(o.value.mapv(|v| v as f32)),
    }
}

/// Directory of the binary golden tensors of case `name`.
pub fn tensor_dir(golden: &Path, name: &str) -> PathBuf {
    golden.join(name)
}

/// Snapshot name of case `name` (insta names may not hold `/`).
pub fn snapshot_name(name: &str) -> String {
    name.replace('/', "__")
}

/// Path of the snapshot file of case `name`.
pub fn snapshot_path(golden: &Path, name: &str) -> PathBuf {
    golden.join(format!("{}.snap", snapshot_name(name)))
}

/// The model bytes and oracle outputs of the first data set of a corpus case directory.
pub fn compute(dir: &Path) -> Result<(Vec<u8>, Vec<GoldenOutput>)> {
    let case = testcase::read(dir)?;
    let set = case
        .data_sets
        .first()
        .with_context(|| format!("{}: no test_data_set_0", dir.display()))?;
    let model = crate::onnx::proto::decode_model(&case.model)
        .with_context(|| format!("{}: model.onnx", dir.display()))?;
    let graph = model.graph.clone().unwrap_or_default();
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let names: Vec<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|n| !inits.contains(n))
        .collect();
    if names.len() != set.inputs.len() {
        bail!(
            "{}: the model has {} inputs, test_data_set_0 holds {}",
            dir.display(),
            names.len(),
            set.inputs.len()
        );
    }
    let inputs: Vec<Named> = names
        .iter()
        .zip(&set.inputs)
        .map(|(n, t)| Named {
            name: n.to_string(),
            tensor: t.clone(),
        })
        .collect();
    let eval = crate::oracle::evaluate(&model, &inputs)
        .map_err(|e| anyhow::anyhow!("{}: oracle: {e}", dir.display()))?;
    Ok((case.model, eval.outputs))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The reviewable summary of a case's golden outputs: model digest, then per output its dtype,
/// shape, a digest of the values (rounded to 12 significant digits, so last-bit libm
/// differences do not change it) and statistics.
pub fn summary(name: &str, model: &[u8], outputs: &[(String, Tensor)]) -> String {
    let mut s = format!(
        "case: {name}\nmodel_sha256: {}\n",
        &hex(&Sha256::digest(model))[..16]
    );
    for (k, (oname, t)) in outputs.iter().enumerate() {
        let v = t.to_f64();
        let mut h = Sha256::new();
        for x in v.iter() {
            h.update(format!("{x:.11e};").as_bytes());
        }
        let n = v.len().max(1) as f64;
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = v.iter().sum::<f64>() / n;
        let rms = (v.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
        let first: Vec<String> = v.iter().take(4).map(|x| format!("{x:.9e}")).collect();
        s.push_str(&format!(
            "output_{k}: {oname}\n  dtype: {}\n  shape: {:?}\n  digest: {}\n  min: {min:.9e}\n  max: {max:.9e}\n  mean: {mean:.9e}\n  rms: {rms:.9e}\n  first: [{}]\n",
            t.dtype(),
            t.shape(),
            &hex(&h.finalize())[..16],
            first.join(", ")
        ));
    }
    s
}

/// The stored golden tensors of case `name`, in output order.
pub fn read(golden: &Path, name: &str) -> Result<Vec<Tensor>> {
    let dir = tensor_dir(golden, name);
    if !dir.is_dir() {
        bail!(
            "{}: no golden outputs for corpus case {name}; run `cargo xtask bless`",
            dir.display()
        );
    }
    let mut out = Vec::new();
    loop {
        let path = dir.join(format!("output_{}.pb", out.len()));
        if !path.is_file() {
            break;
        }
        let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        let t = decode_tensor(&bytes)
            .and_then(|p| tensor_from_proto(&p))
            .with_context(|| format!("{}: not a TensorProto", path.display()))?;
        out.push(t);
    }
    if out.is_empty() {
        bail!("{}: no output_0.pb", dir.display());
    }
    Ok(out)
}

/// Where a recomputed output departs from the stored golden one, if it does.
pub fn drift(name: &str, index: usize, stored: &Tensor, now: &Tensor) -> Option<String> {
    if stored.shape() != now.shape() || stored.dtype() != now.dtype() {
        return Some(format!(
            "corpus/{name}: output_{index} is now {} {:?}, golden has {} {:?}",
            now.dtype(),
            now.shape(),
            stored.dtype(),
            stored.shape()
        ));
    }
    let (a, b) = (stored.to_f64(), now.to_f64());
    let mut worst: Option<(usize, f64, f64, f64)> = None;
    let mut count = 0;
    for (i, (&x, &y)) in a.iter().zip(b.iter()).enumerate() {
        let same = x == y || (x.is_nan() && y.is_nan());
        let d = (x - y).abs();
        let close = d <= DRIFT_REL * x.abs().max(1.0);
        if !same && !close {
            count += 1;
            if worst.is_none_or(|w| d > w.3 || d.is_nan()) {
                worst = Some((i, x, y, d));
            }
        }
    }
    worst.map(|(i, x, y, d)| {
        format!(
            "corpus/{name}: output_{index} drifted from golden in {count} of {} elements; worst at flat index {i}: golden {x:.9e}, now {y:.9e} (|diff| {d:.3e})",
            a.len()
        )
    })
}

/// The insta snapshot file for a summary.
fn snapshot_file(summary: &str) -> String {
    format!("---\nsource: harness/tests/corpus.rs\nexpression: summary\n---\n{summary}")
}

/// The summary a snapshot file holds (what follows its header).
pub fn snapshot_contents(file: &str) -> Option<&str> {
    let rest = file.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(&rest[end + 5..])
}

/// What `bless` did to one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Golden outputs written for a case that had none.
    Added {
        /// Case name.
        name: String,
    },
    /// Golden outputs rewritten; old and new summaries for review.
    Changed {
        /// Case name.
        name: String,
        /// Summary before.
        old: String,
        /// Summary after.
        new: String,
    },
    /// Golden files of a case that is no longer in the corpus, removed.
    Removed {
        /// What was removed.
        path: PathBuf,
    },
}

/// Recomputes every corpus case's golden outputs and rewrites those that changed (each file
/// atomically: a bless killed at any point leaves every file old or new, never torn). With
/// `dry_run`, reports the changes and writes nothing.
pub fn bless(corpus: &Path, golden: &Path, dry_run: bool) -> Result<Vec<Change>> {
    let cases = list(corpus)?;
    let mut changes = Vec::new();
    for case in &cases {
        let (model, outputs) = compute(&case.dir)?;
        let tensors: Vec<(String, Tensor)> = outputs
            .iter()
            .map(|o| (o.name.clone(), stored_f64(o)))
            .collect();
        let new_summary = summary(&case.name, &model, &tensors);
        let snap = snapshot_path(golden, &case.name);
        let old_summary = std::fs::read_to_string(&snap)
            .ok()
            .and_then(|f| snapshot_contents(&f).map(str::to_string));
        let stored = read(golden, &case.name).ok();
        let same_tensors = stored.as_ref().is_some_and(|s| {
            s.len() == tensors.len()
                && s.iter()
                    .zip(&tensors)
                    .enumerate()
                    .all(|(k, (a, (_, b)))| drift(&case.name, k, a, b).is_none())
        });
        if same_tensors && old_summary.as_deref() == Some(new_summary.as_str()) {
            continue;
        }
        if !dry_run {
            write(golden, &case.name, &tensors, &new_summary)?;
        }
        changes.push(match old_summary {
            None => Change::Added {
                name: case.name.clone(),
            },
            Some(old) => Change::Changed {
                name: case.name.clone(),
                old,
                new: new_summary,
            },
        });
    }
    for path in unreferenced(corpus, golden)? {
        if !dry_run {
            if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            }
            .with_context(|| format!("{}: cannot remove", path.display()))?;
        }
        changes.push(Change::Removed { path });
    }
    Ok(changes)
}

/// Writes the golden tensors and the snapshot of one case, each atomically.
pub fn write(golden: &Path, name: &str, tensors: &[(String, Tensor)], summary: &str) -> Result<()> {
    let dir = tensor_dir(golden, name);
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    }
    crate::fsutil::write_dir_atomically(&dir, |tmp| {
        for (k, (oname, t)) in tensors.iter().enumerate() {
            let bytes = prost::Message::encode_to_vec(&tensor_to_proto(oname, t));
            std::fs::write(tmp.join(format!("output_{k}.pb")), bytes)?;
        }
        Ok(())
    })?;
    crate::fsutil::write_atomically(
        &snapshot_path(golden, name),
        snapshot_file(summary).as_bytes(),
    )
}

/// Golden files (snapshots and tensor directories) that belong to no corpus case.
pub fn unreferenced(corpus: &Path, golden: &Path) -> Result<Vec<PathBuf>> {
    let names: std::collections::HashSet<String> =
        list(corpus)?.into_iter().map(|c| c.name).collect();
    let snaps: std::collections::HashSet<String> = names.iter().map(|n| snapshot_name(n)).collect();
    let mut out = Vec::new();
    if !golden.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![golden.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .with_context(|| format!("{}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let fname = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_dir() {
                let name = case_name(golden, &p);
                if names.contains(&name) {
                    continue;
                }
                // A directory holding cases deeper down (golden/regressions/) is walked.
                if names.iter().any(|n| n.starts_with(&format!("{name}/"))) {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            } else if let Some(stem) = fname.strip_suffix(".snap") {
                if d == golden && !snaps.contains(stem) {
                    out.push(p);
                }
            } else if fname.ends_with(".snap.new")
                || fname.ends_with(".pending-snap")
                || fname.starts_with(".tmp")
            {
                // Pending insta snapshots, and temporaries left by a write that was killed.
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
