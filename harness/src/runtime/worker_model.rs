//! A model loaded in a Python worker (OpenVINO or onnxruntime), driven over its protocol.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::{Evaluation, Loaded, Precision};
use crate::isolate::ChildLimits;
use crate::tensor::{Named, Tensor};
use crate::worker::{read_outputs, write_inputs, Lease, Pool};

/// A model held by a leased worker under a handle.
pub struct WorkerModel {
    lease: Lease,
    handle: u64,
    precision: Precision,
    work_dir: PathBuf,
    timeout: Duration,
    /// A scratch directory owned by this model, removed with it.
    scratch: Option<tempfile::TempDir>,
}

impl WorkerModel {
    /// Makes `dir` part of this model, to be removed when it is dropped.
    pub fn owning(mut self, dir: tempfile::TempDir) -> WorkerModel {
        self.scratch = Some(dir);
        self
    }

    /// Loads `model` in a worker with `engine` ("openvino" or "onnxruntime").
    pub fn load(
        pool: &Arc<Pool>,
        engine: &str,
        model: &Path,
        options: Value,
        work_dir: PathBuf,
        timeout: Duration,
        limits: ChildLimits,
    ) -> Result<WorkerModel> {
        let mut lease = pool.lease(limits)?;
        let reply = lease.call(
            json!({"op": "load", "engine": engine, "model": model, "options": options}),
            timeout,
        )?;
        let handle = reply["handle"]
            .as_u64()
            .context("load reply without handle")?;
        let precision = precision(&reply).with_context(|| engine.to_string())?;
        Ok(WorkerModel {
            lease,
            handle,
            precision,
            work_dir,
            timeout,
            scratch: None,
        })
    }
}

/// The inference precision a worker reports.
fn precision(reply: &Value) -> Result<Precision> {
    Ok(match reply["precision"].as_str() {
        Some("f32") => Precision::F32,
        Some("f16") => Precision::F16,
        Some("bf16") => Precision::Bf16,
        other => anyhow::bail!("unknown inference precision {other:?}"),
    })
}

/// Loads, runs and times a model in a worker in one request (`evaluate`), keeping nothing;
/// `source` is `("model", path)` or `("model_data", base64 of the bytes)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    pool: &Arc<Pool>,
    limits: ChildLimits,
    timeout: Duration,
    engine: &str,
    source: (&str, Value),
    options: Value,
    inputs: &[Named],
    repeats: usize,
) -> Result<Evaluation> {
    let mut request = json!({
        "op": "evaluate",
        "engine": engine,
        "options": options,
        "inputs": crate::worker::inline_inputs(inputs)?,
        "repeats": repeats,
    });
    request[source.0] = source.1;
    let reply = pool.lease(limits)?.call(request, timeout)?;
    evaluation(&reply)
}

/// The evaluation a worker's `evaluate` reply holds.
fn evaluation(reply: &Value) -> Result<Evaluation> {
    let samples = reply["run_us"]
        .as_array()
        .context("evaluate reply without samples")?;
    Ok(Evaluation {
        precision: precision(reply)?,
        outputs: crate::worker::inline_outputs(reply)?,
        samples: samples.iter().filter_map(Value::as_f64).collect(),
    })
}

impl Loaded for WorkerModel {
    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Tensor>> {
        let specs = write_inputs(&self.work_dir, inputs)?;
        let reply = self.lease.call(
            json!({"op": "run", "handle": self.handle, "inputs": specs, "work_dir": self.work_dir}),
            self.timeout,
        )?;
        read_outputs(&reply)
    }

    fn times_itself(&self) -> bool {
        true
    }

    fn timed_runs(&mut self, inputs: &[Named], repeats: usize) -> Option<Result<Vec<f64>>> {
        let mut run = || -> Result<Vec<f64>> {
            let specs = write_inputs(&self.work_dir, inputs)?;
            let reply = self.lease.call(
                json!({"op": "time", "handle": self.handle, "inputs": specs, "repeats": repeats}),
                self.timeout,
            )?;
            let samples = reply["run_us"]
                .as_array()
                .context("time reply without samples")?;
            Ok(samples.iter().filter_map(Value::as_f64).collect())
        };
        Some(run())
    }
}

impl Drop for WorkerModel {
    fn drop(&mut self) {
        let _ = self.lease.call(
            json!({"op": "release", "handle": self.handle}),
            Duration::from_secs(10),
        );
        drop(self.scratch.take());
    }
}
