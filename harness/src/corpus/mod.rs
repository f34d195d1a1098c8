//! The committed corpus: real 1D CNN architectures and named edge cases, with golden outputs.
//!
//! Every corpus case is an ONNX test-case directory (docs/test-case-format.md) with a `case.toml` saying what it
//! represents. The models of [`builtin`] are made by code in this module ([`zoo`], [`edge`]),
//! so `harness corpus-build` rewrites them byte for byte; cases that fuzzing saves land in
//! `corpus/regressions/`. The reviewed expected outputs live in `golden/` ([`golden`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tract_onnx::pb;

use crate::onnx::proto::{declared_type, Dim};
use crate::onnx::testcase;
use crate::seed::{self, Draw};
use crate::tensor::{Named, Tensor};

mod edge;
pub mod golden;
pub mod net;
pub mod stats;
mod zoo;

/// What `case.toml` says about a corpus case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseToml {
    /// Case name (its directory under corpus/).
    pub name: String,
    /// What the model represents.
    pub represents: String,
    /// Where the architecture or the edge case comes from.
    pub source: String,
    /// How the model was made.
    pub made_by: String,
    /// ONNX opset of the model.
    pub opset: i64,
    /// Declared input dims (`N`, `L` for symbols) and the concrete shapes the case feeds.
    pub inputs: Vec<InputDecl>,
    /// Tolerance policy: `bound` (error bound of the runtime's precision), `bound:F` (bound
    /// times F), or `atol=A,rtol=R`.
    pub tolerance: String,
    /// Part of the default set `harness perf` measures (omitted when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub perf: bool,
}

/// One model input of a corpus case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDecl {
    /// Graph input name.
    pub name: String,
    /// Dims as the model declares them.
    pub declared: Vec<String>,
    /// Shape of the data the case feeds.
    pub fed: Vec<usize>,
}

impl CaseToml {
    /// Reads and checks `case.toml` in `dir`.
    pub fn read(dir: &Path) -> Result<CaseToml> {
        let path = dir.join("case.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let c: CaseToml = toml::from_str(&text)
            .with_context(|| format!("{}: not a valid case.toml", path.display()))?;
        c.tolerance()
            .with_context(|| format!("{}: tolerance", path.display()))?;
        Ok(c)
    }

    /// The tolerance policy as the comparison takes it.
    pub fn tolerance(&self) -> Result<crate::compare::Tolerance> {
        use crate::compare::Tolerance;
        let t = self.tolerance.trim();
        if t == "bound" {
            return Ok(Tolerance::Bound { factor: 1.0 });
        }
        if let Some(f) = t.strip_prefix("bound:") {
            let factor: f64 = f.parse().with_context(|| format!("bad factor {f:?}"))?;
            if !(factor.is_finite() && factor > 0.0) {
                bail!("bound factor must be positive, got {factor}");
            }
            return Ok(Tolerance::Bound { factor });
        }
        let (mut atol, mut rtol) = (None, None);
        for part in t.split(',') {
            let (k, v) = part
                .split_once('=')
                .with_context(|| format!("expected bound, bound:F or atol=A,rtol=R, got {t:?}"))?;
            let v: f64 = v
                .trim()
                .parse()
                .with_context(|| format!("bad number {v:?}"))?;
            match k.trim() {
                "atol" => atol = Some(v),
                "rtol" => rtol = Some(v),
                other => bail!("unknown tolerance key {other:?}"),
            }
        }
        Ok(Tolerance::Fixed {
            atol: atol.unwrap_or(0.0),
            rtol: rtol.unwrap_or(0.0),
        })
    }
}

/// How a built-in case's input data is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A mixture of two sines per channel plus noise, like audio or a biosignal.
    Signal,
    /// Standard normal values.
    Normal,
}

/// A corpus case made by code: the model and how to feed it.
pub struct Built {
    /// Case name.
    pub name: String,
    /// What it represents.
    pub represents: String,
    /// Where it comes from.
    pub source: String,
    /// The model.
    pub model: pb::ModelProto,
    /// Input names and fed shapes.
    pub inputs: Vec<(String, Vec<usize>)>,
    /// How input data is drawn.
    pub input_kind: InputKind,
    /// In the default set `harness perf` measures.
    pub perf: bool,
}

impl Built {
    /// A case with signal-like inputs.
    pub fn new(
        name: &str,
        represents: &str,
        source: &str,
        model: pb::ModelProto,
        inputs: Vec<(&str, Vec<usize>)>,
    ) -> Built {
        Built {
            name: name.into(),
            represents: represents.into(),
            source: source.into(),
            model,
            inputs: inputs
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            input_kind: InputKind::Signal,
            perf: false,
        }
    }

    /// The input tensors, drawn from a stream named after the case.
    pub fn input_tensors(&self) -> Result<Vec<Named>> {
        let mut rng = seed::rng(0, &format!("corpus-input/{}", self.name));
        self.inputs
            .iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let data: Vec<f32> = match self.input_kind {
                    InputKind::Normal => (0..n).map(|_| rng.normal() as f32).collect(),
                    InputKind::Signal => {
                        let len = *shape.last().unwrap_or(&1);
                        let rows = n / len.max(1);
                        let mut v = Vec::with_capacity(n);
                        for _ in 0..rows {
                            let (f1, f2) = (rng.uniform(0.002, 0.02), rng.uniform(0.02, 0.2));
                            let (p1, p2) = (rng.uniform(0.0, 6.3), rng.uniform(0.0, 6.3));
                            for t in 0..len {
                                let t = t as f64 * std::f64::consts::TAU;
                                let x = 0.6 * (f1 * t + p1).sin()
                                    + 0.3 * (f2 * t + p2).sin()
                                    + 0.1 * rng.normal();
                                v.push(x as f32);
                            }
                        }
                        v
                    }
                };
                Ok(Named {
                    name: name.clone(),
                    tensor: Tensor::f32(shape, data)?,
                })
            })
            .collect()
    }

    /// The `case.toml` of this case.
    pub fn case_toml(&self) -> CaseToml {
        let graph = self.model.graph.clone().unwrap_or_default();
        let inputs = self
            .inputs
            .iter()
            .map(|(name, fed)| {
                let declared = graph
                    .input
                    .iter()
                    .find(|i| &i.name == name)
                    .and_then(declared_type)
                    .map(|(_, dims)| {
                        dims.into_iter()
                            .map(|d| match d {
                                Dim::Fixed(n) => n.to_string(),
                                Dim::Symbol(s) => s,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                InputDecl {
                    name: name.clone(),
                    declared,
                    fed: fed.clone(),
                }
            })
            .collect();
        CaseToml {
            name: self.name.clone(),
            represents: self.represents.clone(),
            source: self.source.clone(),
            made_by: "harness/src/corpus (`harness corpus build`), seeded weights and inputs"
                .into(),
            opset: self
                .model
                .opset_import
                .iter()
                .find(|o| o.domain.is_empty())
                .map_or(0, |o| o.version),
            inputs,
            tolerance: "bound".into(),
            perf: self.perf,
        }
    }
}

/// Every case this module builds: architectures (static and symbolic) and edge cases.
pub fn builtin() -> Result<Vec<Built>> {
    let mut all = zoo::all()?;
    all.extend(edge::all()?);
    Ok(all)
}

/// Writes one built case into `corpus/<name>/`: model, inputs, the oracle's outputs rounded to
/// f32 (so the directory is a complete ONNX test case for other tools) and `case.toml`.
pub fn write_case(corpus: &Path, b: &Built) -> Result<PathBuf> {
    let inputs = b.input_tensors()?;
    let eval = crate::oracle::evaluate(&b.model, &inputs)
        .map_err(|e| anyhow::anyhow!("{}: the oracle refuses the model: {e}", b.name))?;
    let outputs: Vec<Tensor> = eval.outputs.iter().map(golden::stored_f32).collect();
    let output_names: Vec<String> = eval.outputs.iter().map(|o| o.name.clone()).collect();
    let set = testcase::DataSet {
        inputs: inputs.iter().map(|n| n.tensor.clone()).collect(),
        outputs,
    };
    let input_names: Vec<String> = inputs.iter().map(|n| n.name.clone()).collect();
    let dir = corpus.join(&b.name);
    let toml = toml::to_string(&b.case_toml())?;
    testcase::write(&dir, &b.model, &[set], &input_names, &output_names, None)?;
    crate::fsutil::write_atomically(&dir.join("case.toml"), toml.as_bytes())?;
    Ok(dir)
}

/// A corpus case on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusCase {
    /// Path relative to the corpus root, with `/` separators (`m5`, `regressions/x`).
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
}

/// Every test-case directory under `corpus`, named by relative path.
pub fn list(corpus: &Path) -> Result<Vec<CorpusCase>> {
    Ok(testcase::find(corpus)?
        .into_iter()
        .map(|dir| CorpusCase {
            name: case_name(corpus, &dir),
            dir,
        })
        .collect())
}

/// The name of the case in `dir` under `corpus`: its relative path with `/` separators.
pub fn case_name(corpus: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(corpus).unwrap_or(dir);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}
