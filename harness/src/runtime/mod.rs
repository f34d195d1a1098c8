//! Runtimes: what executes a converted ONNX model.
//!
//! Adding a runtime is one file implementing [`Runtime`] and one line in [`by_name`], or, for
//! one in Python, a stack module (`harness/python/stacks/`) and its name in [`NAMES`].

mod python;
mod tract;
pub(crate) mod worker_model;

use std::time::Duration;

use crate::tensor::{Named, Tensor};

pub use self::python::PythonRuntime;
pub use self::tract::{Tract, TractPlan, VERSION as TRACT_VERSION};
pub use self::worker_model::WorkerModel;

/// Floating-point precision a runtime computed in; tolerances follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
    /// IEEE binary64 (the oracle).
    F64,
}

impl Precision {
    /// Unit roundoff u: half the distance from 1 to the next representable number.
    pub fn unit_roundoff(self) -> f64 {
        match self {
            Precision::F32 => 2f64.powi(-24),
            Precision::F16 => 2f64.powi(-11),
            Precision::Bf16 => 2f64.powi(-8),
            Precision::F64 => 2f64.powi(-53),
        }
    }

    /// Lower-case name, as in reports.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
            Precision::F64 => "f64",
        }
    }
}

/// A runtime that loads ONNX models.
pub trait Runtime: Send + Sync {
    /// Name as given to `--runtime`.
    fn name(&self) -> &'static str;
    /// Version of the underlying library.
    fn version(&self) -> String;
    /// Loads and prepares `model` for the concrete shapes of `inputs`. An error means the
    /// runtime refused the model (verdict `runtime-rejected`).
    fn load(&self, model: &[u8], inputs: &[Named]) -> anyhow::Result<Box<dyn Loaded>>;
    /// Loads `model`, runs it once on `inputs` and times `repeats` runs more. A runtime in
    /// another process does all of it in one round trip; the default loads and runs here.
    fn evaluate(
        &self,
        model: &[u8],
        inputs: &[Named],
        repeats: usize,
    ) -> anyhow::Result<Evaluation> {
        evaluate_loaded(self.load(model, inputs)?, inputs, repeats)
    }
}

/// What one evaluation of a model gave.
#[derive(Debug)]
pub struct Evaluation {
    /// Precision the computation ran in.
    pub precision: Precision,
    /// Outputs of the first run, in graph order.
    pub outputs: Vec<Tensor>,
    /// Microseconds of each timed run.
    pub samples: Vec<f64>,
}

/// Runs a loaded model once on `inputs`, then `repeats` timed runs (timed by the model's own
/// process when it lives in a worker).
pub fn evaluate_loaded(
    mut loaded: Box<dyn Loaded>,
    inputs: &[Named],
    repeats: usize,
) -> anyhow::Result<Evaluation> {
    let outputs = loaded.run(inputs)?;
    let samples = match loaded.timed_runs(inputs, repeats) {
        Some(samples) => samples?,
        None => {
            let mut samples = Vec::with_capacity(repeats);
            for _ in 0..repeats {
                let t = std::time::Instant::now();
                loaded.run(inputs)?;
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
            samples
        }
    };
    Ok(Evaluation {
        precision: loaded.precision(),
        outputs,
        samples,
    })
}

/// A model loaded by a runtime, ready to run.
pub trait Loaded: Send {
    /// Precision the computation runs in.
    fn precision(&self) -> Precision;
    /// Runs the model once; outputs in graph order.
    fn run(&mut self, inputs: &[Named]) -> anyhow::Result<Vec<Tensor>>;
    /// Times `repeats` runs inside the runtime's own process, in microseconds, where the
    /// runtime lives elsewhere (a worker); `None` lets the caller time [`Loaded::run`].
    fn timed_runs(
        &mut self,
        _inputs: &[Named],
        _repeats: usize,
    ) -> Option<anyhow::Result<Vec<f64>>> {
        None
    }
    /// Whether [`Loaded::timed_runs`] times the runs (the runtime lives in a worker).
    fn times_itself(&self) -> bool {
        false
    }
}

/// The runtime registered under `name`; `timeout` bounds each call to an external process,
/// which runs under `limits`.
pub fn by_name(
    name: &str,
    timeout: Duration,
    limits: crate::isolate::ChildLimits,
) -> Result<Box<dyn Runtime>, String> {
    match name {
        TRACT => Ok(Box::new(Tract::new())),
        other => match crate::worker::stack(other) {
            // A stack whose module converts makes artifacts of its own: a converter.
            Some(stack) if NAMES.contains(&stack.name) => {
                PythonRuntime::new(stack, timeout, limits)
                    .map(|r| Box::new(r) as Box<dyn Runtime>)
                    .map_err(|e| format!("{e:#}"))
            }
            _ => Err(format!(
                "unknown runtime '{other}': use one of {}",
                NAMES.join(", ")
            )),
        },
    }
}

/// The in-process runtime, the default for ONNX artifacts.
pub const TRACT: &str = "tract";

/// Names accepted by [`by_name`]: tract and the stacks that run ONNX as given
/// ([`crate::worker::STACKS`]).
pub const NAMES: &[&str] = &[TRACT, "onnxruntime"];
