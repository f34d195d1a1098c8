//! onnxruntime, from its official Python package, as a second runtime for ONNX artifacts.
//! One intra-op thread by default, like tract.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Evaluation, Loaded, Runtime, WorkerModel};
use crate::isolate::ChildLimits;
use crate::tensor::Named;
use crate::worker::Pool;

/// onnxruntime's CPU execution provider, in the Python worker.
pub struct OnnxRuntime {
    pool: Arc<Pool>,
    timeout: Duration,
    limits: ChildLimits,
}

impl OnnxRuntime {
    /// Needs the Python environment (`cargo xtask setup`); its workers run under `limits`.
    pub fn new(timeout: Duration, limits: ChildLimits) -> Result<OnnxRuntime> {
        Ok(OnnxRuntime {
            pool: Pool::shared()?,
            timeout,
            limits,
        })
    }
}

impl Runtime for OnnxRuntime {
    fn name(&self) -> &'static str {
        "onnxruntime"
    }

    fn version(&self) -> String {
        self.pool
            .version("onnxruntime", self.limits)
            .unwrap_or_else(|| "unknown".into())
    }

    fn load(&self, model: &[u8], _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let dir = tempfile::Builder::new().prefix("conv1d-ort-").tempdir()?;
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model)?;
        let options = json!({"threads": 1});
        let loaded = WorkerModel::load(
            &self.pool,
            "onnxruntime",
            &path,
            options,
            dir.path().to_path_buf(),
            self.timeout,
            self.limits,
        )?;
        Ok(Box::new(loaded.owning(dir)))
    }

    /// One request: the worker loads the model from the bytes sent, runs and times it, and
    /// keeps nothing; tensors travel inline, so no file is written either.
    fn evaluate(&self, model: &[u8], inputs: &[Named], repeats: usize) -> Result<Evaluation> {
        super::worker_model::evaluate(
            &self.pool,
            self.limits,
            self.timeout,
            "onnxruntime",
            ("model_data", json!(crate::worker::base64(model))),
            json!({"threads": 1}),
            inputs,
            repeats,
        )
    }
}
