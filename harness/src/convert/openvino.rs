//! OpenVINO's converter and CPU plugin, two ways:
//!
//! - `openvino` and `openvino:f32`: the converter's Python API (as `ovc` uses it) in the
//!   Python worker, the IR saved with f32 weights and read back.
//! - `openvino:ovc` and `openvino:ovc:f32`: the `ovc` command line of the pinned package, as
//!   users run it, in a process of its own with its default options: the IR's weights are
//!   compressed to FP16, so the tolerance allows what that rounding does (docs/oracle.md).
//!
//! Either IR is compiled for the CPU and run in the worker, by the `openvino` stack module
//! (`harness/python/stacks/openvino.py`, the plugin interface's). Without `:f32` the plugin keeps
//! its default inference precision (bf16 on CPUs that support it); `:f32` sets the f32
//! precision hint. The precision the plugin reports is what the tolerance follows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Artifact, Context, ConvertError, Converter, NativeArtifact, WeightPrecision};
use crate::isolate::ChildLimits;
use crate::runtime::{Evaluation, Loaded, WorkerModel};
use crate::tensor::Named;
use crate::worker::Pool;

/// Generated cases per OpenVINO model in a run: converting and compiling cost about 50 ms a
/// model whatever its size, so a run merges cases (docs/PERFORMANCE.md has the measurement
/// that chose this).
const PACK: usize = 16;

/// How the ONNX model becomes an IR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    /// `openvino.convert_model` in the worker, saved with f32 weights.
    PythonApi,
    /// The `ovc` command line with its defaults (weights compressed to FP16).
    Ovc,
}

/// OpenVINO's ONNX converter and CPU plugin.
pub struct OpenVino {
    /// How the IR is made.
    pub frontend: Frontend,
    /// Set the f32 precision hint (`openvino:f32`) rather than the plugin default.
    pub f32_hint: bool,
    /// The `ovc` program, for [`Frontend::Ovc`].
    ovc: Option<PathBuf>,
    pool: Arc<Pool>,
}

impl OpenVino {
    /// Needs the Python environment (`cargo xtask setup`); [`Frontend::Ovc`] needs its `ovc`
    /// beside the Python interpreter.
    pub fn new(frontend: Frontend, f32_hint: bool) -> Result<OpenVino> {
        let pool = Pool::shared()?;
        let ovc = match frontend {
            Frontend::PythonApi => None,
            Frontend::Ovc => {
                let python = crate::worker::find_python()
                    .ok_or_else(|| anyhow::anyhow!("no Python environment for ovc"))?;
                let ovc = python.with_file_name("ovc");
                anyhow::ensure!(
                    ovc.is_file(),
                    "openvino:ovc needs the ovc program beside {} (cargo xtask setup installs it)",
                    python.display()
                );
                Some(ovc)
            }
        };
        Ok(OpenVino {
            frontend,
            f32_hint,
            ovc,
            pool,
        })
    }

    /// Converts with the Python API in a worker: the IR's `model.xml`.
    fn convert_in_worker(&self, onnx: &Path, cx: &Context) -> Result<PathBuf, ConvertError> {
        let mut lease = self
            .pool
            .lease(cx.limits)
            .map_err(|e| ConvertError::Crashed(format!("{e:#}")))?;
        let request =
            json!({"op": "convert", "engine": "openvino", "model": onnx, "work_dir": cx.work_dir});
        let reply = lease
            .call(request, cx.timeout)
            .map_err(super::plugin::conversion_error)?;
        Ok(PathBuf::from(
            reply["artifact"].as_str().unwrap_or_default(),
        ))
    }

    /// Converts with `ovc MODEL --output_model DIR/model.xml` in a process of its own.
    fn convert_with_ovc(
        &self,
        ovc: &Path,
        onnx: &Path,
        cx: &Context,
    ) -> Result<PathBuf, ConvertError> {
        let xml = cx.work_dir.join("model.xml");
        let mut cmd = Command::new(ovc);
        cmd.arg(onnx).arg("--output_model").arg(&xml);
        // ovc has no telemetry switch; it sends nothing when it believes it runs in CI
        // (openvino_telemetry's opt-in check). Otherwise it forks a sender after each
        // conversion and waits up to 3 s for it.
        cmd.env("CI", "true");
        super::exec::run_isolated(cmd, "ovc", cx)?;
        if !xml.is_file() {
            return Err(ConvertError::Crashed(
                "ovc exited 0 but wrote no model.xml".into(),
            ));
        }
        Ok(xml)
    }
}

impl Converter for OpenVino {
    fn name(&self) -> String {
        let frontend = match self.frontend {
            Frontend::PythonApi => "",
            Frontend::Ovc => ":ovc",
        };
        let hint = if self.f32_hint { ":f32" } else { "" };
        format!("openvino{frontend}{hint}")
    }

    fn pack(&self) -> usize {
        PACK
    }

    fn weights(&self) -> WeightPrecision {
        match self.frontend {
            Frontend::PythonApi => WeightPrecision::AsGiven,
            Frontend::Ovc => WeightPrecision::F16,
        }
    }

    fn version(&self) -> Option<String> {
        // The run's workers start under the default limits unless the run says otherwise.
        self.pool
            .version("openvino", ChildLimits::converters_default())
    }

    fn replay(&self) -> super::Replay {
        super::Replay::OpenVino {
            precision_hint: self.f32_hint.then_some("f32"),
            compress_to_fp16: self.frontend == Frontend::Ovc,
            converted: false,
        }
    }

    fn native_runtime(&self) -> Option<String> {
        Some("openvino-cpu".into())
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let onnx = cx.work_dir.join("model.onnx");
        std::fs::write(&onnx, model)
            .map_err(|e| ConvertError::Crashed(format!("cannot write the model: {e}")))?;
        let xml = match &self.ovc {
            Some(ovc) => self.convert_with_ovc(ovc, &onnx, cx)?,
            None => self.convert_in_worker(&onnx, cx)?,
        };
        Ok(Artifact::Native(Box::new(OpenVinoIr {
            xml,
            f32_hint: self.f32_hint,
            pool: Arc::clone(&self.pool),
            work_dir: cx.work_dir.to_path_buf(),
            timeout: cx.timeout,
            limits: cx.limits,
        })))
    }
}

/// An OpenVINO IR (`model.xml` + `model.bin`) produced by the converter.
struct OpenVinoIr {
    xml: PathBuf,
    f32_hint: bool,
    pool: Arc<Pool>,
    work_dir: PathBuf,
    timeout: Duration,
    limits: ChildLimits,
}

impl OpenVinoIr {
    /// Compile options: the precision hint asked for, one inference thread.
    fn options(&self) -> serde_json::Value {
        let precision = if self.f32_hint { "f32" } else { "default" };
        json!({"precision": precision, "threads": 1})
    }
}

impl NativeArtifact for OpenVinoIr {
    fn runtime(&self) -> String {
        "openvino-cpu".into()
    }

    /// One request: the worker reads and compiles the IR, runs and times it, keeps nothing.
    fn evaluate(self: Box<Self>, inputs: &[Named], repeats: usize) -> Result<Evaluation> {
        crate::runtime::worker_model::evaluate(
            &self.pool,
            self.limits,
            self.timeout,
            "openvino",
            ("model", json!(self.xml)),
            self.options(),
            inputs,
            repeats,
        )
    }

    fn load(self: Box<Self>, _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let options = self.options();
        let model = WorkerModel::load(
            &self.pool,
            "openvino",
            &self.xml,
            options,
            self.work_dir,
            self.timeout,
            self.limits,
        )?;
        Ok(Box::new(model))
    }
}
