//! Converters that live in a Python stack module (`harness/python/stacks/NAME.py`, listed in
//! [`crate::worker::STACKS`]): `--converter NAME` or `NAME:VARIANT`. The module converts the
//! ONNX model to its own artifact in a worker of its environment and its runtime runs it there,
//! with the workers' isolation, timeouts and timing. Nothing here knows a stack by name: what
//! the harness needs (the runtime's name, the variants, how many cases to pack) the module says
//! itself when asked (`describe`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::{Artifact, Context, ConvertError, Converter, NativeArtifact, Replay};
use crate::isolate::ChildLimits;
use crate::runtime::{Evaluation, Loaded, WorkerModel};
use crate::tensor::Named;
use crate::worker::{Pool, Stack, WorkerError};

/// A stack's converter with one of its variants.
pub struct Plugin {
    stack: &'static Stack,
    /// The spec's suffix after `NAME:`, `""` for none.
    variant: &'static str,
    /// The variant's options, as the module gives them, for convert() and load().
    options: Value,
    /// The runtime of its artifacts, as reports name it; `None` for a module whose artifact is
    /// ONNX, run by the run's `--runtime`.
    runtime: Option<String>,
    version: String,
    pack: usize,
    pool: Arc<Pool>,
}

impl Plugin {
    /// The converter `spec` names (`NAME` or `NAME:VARIANT`), if `NAME` is a stack that
    /// converts; `Ok(None)` when it is no stack. Starts a worker of the stack's environment to
    /// ask the module what it is.
    pub fn from_spec(spec: &str) -> Result<Option<Plugin>> {
        let (name, variant) = spec.split_once(':').unwrap_or((spec, ""));
        let Some(stack) = crate::worker::stack(name) else {
            return Ok(None);
        };
        let pool = Pool::shared_of(stack.environment)?;
        let described = pool
            .describe(stack.name, ChildLimits::converters_default())
            .with_context(|| format!("the {name} stack cannot describe itself"))?;
        anyhow::ensure!(
            described["converts"] == json!(true),
            "the {name} stack converts nothing: it is a runtime (--runtime {name})"
        );
        let variants = described["variants"]
            .as_object()
            .context("describe without variants")?;
        let Some(options) = variants.get(variant) else {
            let known: Vec<String> = variants
                .keys()
                .map(|v| {
                    if v.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name}:{v}")
                    }
                })
                .collect();
            anyhow::bail!(
                "unknown variant '{spec}' of the {name} stack: use {}",
                known.join(", ")
            );
        };
        Ok(Some(Plugin {
            stack,
            // A converter lives for the run; its variant names the replay of every bundle.
            variant: Box::leak(variant.to_string().into_boxed_str()),
            options: options.clone(),
            runtime: described["runtime"].as_str().map(str::to_string),
            version: described["version"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            pack: described["pack"].as_u64().unwrap_or(1).max(1) as usize,
            pool,
        }))
    }

    /// Options for the module: the variant's, one thread.
    fn options(&self) -> Value {
        let mut options = self.options.clone();
        if let Some(map) = options.as_object_mut() {
            map.insert("threads".into(), json!(1));
        }
        options
    }
}

impl Converter for Plugin {
    fn name(&self) -> String {
        if self.variant.is_empty() {
            self.stack.name.to_string()
        } else {
            format!("{}:{}", self.stack.name, self.variant)
        }
    }

    fn version(&self) -> Option<String> {
        Some(self.version.clone())
    }

    fn native_runtime(&self) -> Option<String> {
        self.runtime.clone()
    }

    fn pack(&self) -> usize {
        self.pack
    }

    fn replay(&self) -> Replay {
        if self.runtime.is_none() {
            return Replay::ConvertedOnnx;
        }
        Replay::Plugin {
            stack: self.stack,
            variant: self.variant,
            converted: false,
        }
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let onnx = cx.work_dir.join("model.onnx");
        std::fs::write(&onnx, model)
            .map_err(|e| ConvertError::Crashed(format!("cannot write the model: {e}")))?;
        let mut lease = self
            .pool
            .lease(cx.limits)
            .map_err(|e| ConvertError::Crashed(format!("{e:#}")))?;
        let request = json!({
            "op": "convert",
            "engine": self.stack.name,
            "model": onnx,
            "work_dir": cx.work_dir,
            "options": self.options(),
        });
        let reply = lease.call(request, cx.timeout).map_err(conversion_error)?;
        let artifact = reply["artifact"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| ConvertError::Crashed("convert reply without artifact".into()))?;
        let Some(runtime) = self.runtime.clone() else {
            let onnx = std::fs::read(&artifact).map_err(|e| {
                ConvertError::Crashed(format!(
                    "{}: cannot read the ONNX it wrote: {e}",
                    artifact.display()
                ))
            })?;
            return Ok(Artifact::Onnx(onnx));
        };
        Ok(Artifact::Native(Box::new(PluginArtifact {
            stack: self.stack,
            runtime,
            path: artifact,
            options: self.options(),
            pool: Arc::clone(&self.pool),
            work_dir: cx.work_dir.to_path_buf(),
            timeout: cx.timeout,
            limits: cx.limits,
        })))
    }
}

/// How a worker's failure during conversion maps to a verdict.
pub(super) fn conversion_error(e: WorkerError) -> ConvertError {
    match e {
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
        WorkerError::OverLimit(m) => ConvertError::OverLimit(m),
    }
}

/// What a stack's convert() wrote, run by the same stack.
struct PluginArtifact {
    stack: &'static Stack,
    runtime: String,
    path: PathBuf,
    options: Value,
    pool: Arc<Pool>,
    work_dir: PathBuf,
    timeout: Duration,
    limits: ChildLimits,
}

impl NativeArtifact for PluginArtifact {
    fn runtime(&self) -> String {
        self.runtime.clone()
    }

    /// One request: the worker loads the artifact, runs and times it, keeps nothing.
    fn evaluate(self: Box<Self>, inputs: &[Named], repeats: usize) -> Result<Evaluation> {
        crate::runtime::worker_model::evaluate(
            &self.pool,
            self.limits,
            self.timeout,
            self.stack.name,
            ("model", json!(self.path)),
            self.options.clone(),
            inputs,
            repeats,
        )
    }

    fn load(self: Box<Self>, _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let model = WorkerModel::load(
            &self.pool,
            self.stack.name,
            &self.path,
            self.options,
            self.work_dir,
            self.timeout,
            self.limits,
        )?;
        Ok(Box::new(model))
    }
}
