//! A runtime in a Python stack module (`harness/python/stacks/NAME.py`) that loads ONNX as
//! given, such as onnxruntime's CPU execution provider: `--runtime NAME`. It runs in the
//! workers of the stack's environment, one intra-op thread, like tract.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::{Evaluation, Loaded, Runtime, WorkerModel};
use crate::isolate::ChildLimits;
use crate::tensor::Named;
use crate::worker::{Pool, Stack};

/// A stack's runtime, in its workers.
pub struct PythonRuntime {
    stack: &'static Stack,
    pool: Arc<Pool>,
    timeout: Duration,
    limits: ChildLimits,
}

impl PythonRuntime {
    /// Needs the stack's Python environment (`cargo xtask setup`); its workers run under
    /// `limits`.
    pub fn new(stack: &'static Stack, timeout: Duration, limits: ChildLimits) -> Result<Self> {
        Ok(PythonRuntime {
            stack,
            pool: Pool::shared_of(stack.environment)?,
            timeout,
            limits,
        })
    }
}

impl Runtime for PythonRuntime {
    fn name(&self) -> &'static str {
        self.stack.name
    }

    fn version(&self) -> String {
        self.pool
            .stack_version(self.stack.name, self.limits)
            .unwrap_or_else(|| "unknown".into())
    }

    fn load(&self, model: &[u8], _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let dir = tempfile::Builder::new().prefix("conv1d-rt-").tempdir()?;
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model)?;
        let options = json!({"threads": 1});
        let loaded = WorkerModel::load(
            &self.pool,
            self.stack.name,
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
            self.stack.name,
            ("model_data", json!(crate::worker::base64(model))),
            json!({"threads": 1}),
            inputs,
            repeats,
        )
    }
}
