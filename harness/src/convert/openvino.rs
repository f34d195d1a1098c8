//! `openvino` and `openvino:f32`: OpenVINO's converter (its Python API, as `ovc` uses it),
//! the IR saved and read back, compiled for CPU and run, all in the Python worker.
//!
//! `openvino` keeps the CPU plugin's default inference precision (bf16 on CPUs that support
//! it); `openvino:f32` sets the f32 precision hint. The precision the plugin reports is what
//! the tolerance follows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Artifact, Context, ConvertError, Converter, NativeArtifact};
use crate::runtime::{Loaded, WorkerModel};
use crate::tensor::Named;
use crate::worker::{Pool, WorkerError};

/// OpenVINO's ONNX converter and CPU plugin.
pub struct OpenVino {
    /// Set the f32 precision hint (`openvino:f32`) rather than the plugin default.
    pub f32_hint: bool,
    pool: Arc<Pool>,
}

impl OpenVino {
    /// Needs the Python environment (`cargo xtask setup`).
    pub fn new(f32_hint: bool) -> Result<OpenVino> {
        Ok(OpenVino {
            f32_hint,
            pool: Pool::shared()?,
        })
    }
}

impl Converter for OpenVino {
    fn name(&self) -> String {
        if self.f32_hint {
            "openvino:f32".into()
        } else {
            "openvino".into()
        }
    }

    fn version(&self) -> Option<String> {
        self.pool
            .versions()
            .ok()
            .and_then(|v| v["openvino"].as_str().map(String::from))
    }

    fn replay(&self) -> super::Replay {
        super::Replay::OpenVino {
            precision_hint: self.f32_hint.then_some("f32"),
        }
    }

    fn native_runtime(&self) -> Option<&'static str> {
        Some("openvino-cpu")
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let onnx = cx.work_dir.join("model.onnx");
        std::fs::write(&onnx, model)
            .map_err(|e| ConvertError::Crashed(format!("cannot write the model: {e}")))?;
        let mut lease = self
            .pool
            .lease()
            .map_err(|e| ConvertError::Crashed(format!("{e:#}")))?;
        let request =
            json!({"op": "convert", "engine": "openvino", "model": onnx, "work_dir": cx.work_dir});
        let reply = lease.call(request, cx.timeout).map_err(|e| match e {
            WorkerError::Refused { stage, message } if stage == "convert" => {
                ConvertError::Rejected(message)
            }
            WorkerError::Refused { stage, message } => {
                ConvertError::Crashed(format!("{stage}: {message}"))
            }
            WorkerError::Died(m) => {
                ConvertError::Crashed(format!("worker died during conversion: {m}"))
            }
            WorkerError::Timeout(t) => ConvertError::Timeout(format!(
                "conversion still running after {t:?}; worker killed"
            )),
        })?;
        let xml = PathBuf::from(reply["artifact"].as_str().unwrap_or_default());
        Ok(Artifact::Native(Box::new(OpenVinoIr {
            xml,
            f32_hint: self.f32_hint,
            pool: Arc::clone(&self.pool),
            work_dir: cx.work_dir.to_path_buf(),
            timeout: cx.timeout,
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
}

impl NativeArtifact for OpenVinoIr {
    fn runtime(&self) -> String {
        "openvino-cpu".into()
    }

    fn load(self: Box<Self>, _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let precision = if self.f32_hint { "f32" } else { "default" };
        let options = json!({"precision": precision, "threads": 1});
        let model = WorkerModel::load(
            &self.pool,
            "openvino",
            &self.xml,
            options,
            self.work_dir,
            self.timeout,
        )?;
        Ok(Box::new(model))
    }
}
