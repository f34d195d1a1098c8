//! Converters under test: ONNX in, an artifact out.
//!
//! Adding a converter is one file implementing [`Converter`] and one line in [`from_spec`].
//! Nothing outside this module knows a converter's name.

mod chain;
mod exec;
mod identity;
mod lower1d;
mod nnef;
mod openvino;
mod plugin;

use std::path::Path;
use std::time::Duration;

use crate::isolate::ChildLimits;

pub use self::chain::Chain;
pub use self::exec::Exec;
pub use self::identity::Identity;
pub use self::lower1d::{lower, Lower1d, UnitAxis};
pub use self::nnef::NnefRoundTrip;
pub use self::openvino::{Frontend, OpenVino};
pub use self::plugin::Plugin;

/// What a converter produced.
pub enum Artifact {
    /// An ONNX model, run by the selected `--runtime`.
    Onnx(Vec<u8>),
    /// A model in the converter's own format, run by the runtime that goes with it (an NNEF
    /// model on tract, an OpenVINO IR on OpenVINO).
    Native(Box<dyn NativeArtifact>),
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Artifact::Onnx(b) => write!(f, "Onnx({} bytes)", b.len()),
            Artifact::Native(n) => write!(f, "Native(runs on {})", n.runtime()),
        }
    }
}

/// A converted model that only its own runtime can run.
pub trait NativeArtifact: Send {
    /// Name of the runtime that runs it, for reports.
    fn runtime(&self) -> String;
    /// Prepares it for the shapes of `inputs`.
    fn load(
        self: Box<Self>,
        inputs: &[crate::tensor::Named],
    ) -> anyhow::Result<Box<dyn crate::runtime::Loaded>>;
    /// Loads it, runs it once on `inputs` and times `repeats` runs more. An artifact run by a
    /// worker does it in one round trip; the default loads and runs here.
    fn evaluate(
        self: Box<Self>,
        inputs: &[crate::tensor::Named],
        repeats: usize,
    ) -> anyhow::Result<crate::runtime::Evaluation> {
        crate::runtime::evaluate_loaded(self.load(inputs)?, inputs, repeats)
    }
}

/// How a conversion failed; each maps to a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvertError {
    /// The converter refused, with its message (`convert-rejected`).
    Rejected(String),
    /// The converter died or wrote an unreadable artifact (`convert-crash`).
    Crashed(String),
    /// The converter ran past the timeout (`timeout`).
    Timeout(String),
    /// The converter's process reached its memory or CPU-time limit (`resource-limit`).
    OverLimit(String),
}

/// Everything a conversion may need besides the model.
pub struct Context<'a> {
    /// A fresh directory the converter may write to; removed after the case.
    pub work_dir: &'a Path,
    /// Past this, the conversion is abandoned with [`ConvertError::Timeout`].
    pub timeout: Duration,
    /// Limits of the processes a conversion starts (`exec:` commands, workers).
    pub limits: ChildLimits,
}

/// A model converter.
pub trait Converter: Send + Sync {
    /// The spec it was created from, as it appears in reports.
    fn name(&self) -> String;
    /// Version of the converter, when known.
    fn version(&self) -> Option<String> {
        None
    }
    /// The runtime that runs this converter's native artifacts, if it makes them (reported
    /// even when conversion fails); `None` for converters whose ONNX goes to `--runtime`.
    fn native_runtime(&self) -> Option<String> {
        None
    }
    /// Version of the runtime of its native artifacts, when it makes them: by default the
    /// converter's own (one package makes and runs them).
    fn native_version(&self) -> Option<String> {
        self.version()
    }
    /// Whether the converter hands the model on unchanged, so that its results are the
    /// original model's (latency relates every other converter to it).
    fn keeps_model(&self) -> bool {
        false
    }
    /// Whether [`Converter::convert`] writes to [`Context::work_dir`]; converters that work in
    /// memory say no and save each case a scratch directory.
    fn needs_work_dir(&self) -> bool {
        true
    }
    /// How many generated cases a run merges into one model for this converter, unless
    /// `--pack` says otherwise: more than 1 only where a fixed cost per model dominates and
    /// packing was measured to pay (docs/PERFORMANCE.md).
    fn pack(&self) -> usize {
        1
    }
    /// The precision the converted model stores its weights in.
    fn weights(&self) -> WeightPrecision {
        WeightPrecision::AsGiven
    }
    /// The ONNX a repro bundle stores as `converted.onnx`: what [`Converter::replay`] starts
    /// from when it says [`Replay::ConvertedOnnx`] (or `converted: true`). `None` when the
    /// converter makes no ONNX or fails.
    fn converted_onnx(&self, model: &[u8], cx: &Context) -> Option<Vec<u8>> {
        match self.convert(model, cx) {
            Ok(Artifact::Onnx(bytes)) => Some(bytes),
            _ => None,
        }
    }
    /// How a standalone script replays this conversion with the stack's own Python package
    /// (a repro bundle's `repro.py`, docs/repro.md).
    fn replay(&self) -> Replay {
        if self.keeps_model() {
            Replay::Model
        } else {
            Replay::ConvertedOnnx
        }
    }
    /// Converts a serialized ONNX model.
    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError>;
}

/// What a repro script does to replay a conversion outside the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Runs the model as it is on the runtime.
    Model,
    /// Runs the ONNX the converter made (the bundle's `converted.onnx`) on the runtime.
    ConvertedOnnx,
    /// Converts with OpenVINO's Python API (as `ovc` does), saves and reads back the IR and
    /// compiles it for the CPU, with this inference precision hint or the plugin's default.
    OpenVino {
        /// `INFERENCE_PRECISION_HINT`, when the converter sets one.
        precision_hint: Option<&'static str>,
        /// Whether the IR is saved with weights compressed to FP16 (`ovc`'s default).
        compress_to_fp16: bool,
        /// Converts `converted.onnx` (what the earlier converters of a chain made) rather
        /// than the model.
        converted: bool,
    },
    /// Writes the model as an NNEF archive with tract's Python bindings, reads it back and
    /// runs it on tract.
    TractNnef {
        /// Starts from `converted.onnx` rather than the model, as for `OpenVino`.
        converted: bool,
    },
    /// Converts and runs with a stack's own module (`harness/python/stacks/NAME.py`, which
    /// the bundle carries) and the options of one of its variants.
    Plugin {
        /// The stack.
        stack: &'static crate::worker::Stack,
        /// Its variant (`""` for the plain spec).
        variant: &'static str,
        /// Starts from `converted.onnx` rather than the model, as for `OpenVino`.
        converted: bool,
    },
}

/// The precision a converted model keeps its weights (initializers and constants) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightPrecision {
    /// As the ONNX model gives them.
    AsGiven,
    /// Rounded to IEEE half precision, as `ovc` saves an IR by default; the tolerance then
    /// allows what rounding the weights to f16 does to the outputs (docs/oracle.md).
    F16,
}

/// The spec of the converter that hands the model on unchanged.
pub const IDENTITY: &str = "identity";

/// The converters a run tests when none is named: the runtime alone, the 1D→2D rewrite and
/// the NNEF round trip, all in this process.
pub const DEFAULTS: &[&str] = &[IDENTITY, "lower1d", "nnef"];

/// The converter specs a chain's parts start with: a `+` followed by one of them starts the
/// next converter of a chain (`lower1d+openvino:f32`); any other `+` is part of the spec, as in
/// an `exec:` command.
const CHAIN_STARTS: &[&str] = &[IDENTITY, "lower1d", "nnef", "openvino", "exec:"];

/// Builds the converter a `--converter` spec names; `A+B` chains A and B.
pub fn from_spec(spec: &str) -> anyhow::Result<Box<dyn Converter>> {
    let split = spec.char_indices().rev().find(|&(i, c)| {
        let next = &spec[i + 1..];
        c == '+'
            && i > 0
            && (CHAIN_STARTS.iter().any(|s| next.starts_with(s))
                || crate::worker::STACKS
                    .iter()
                    .any(|s| next.split(':').next() == Some(s.name)))
    });
    if let Some((i, _)) = split {
        return Ok(Box::new(Chain::new(
            from_spec(&spec[..i])?,
            from_spec(&spec[i + 1..])?,
        )?));
    }
    Ok(match spec {
        IDENTITY => Box::new(Identity),
        "lower1d" => Box::new(Lower1d {
            unit: UnitAxis::Last,
        }),
        "lower1d:nc1l" => Box::new(Lower1d {
            unit: UnitAxis::BeforeLength,
        }),
        "nnef" => Box::new(NnefRoundTrip),
        "openvino" => Box::new(OpenVino::new(Frontend::PythonApi, false)?),
        "openvino:f32" => Box::new(OpenVino::new(Frontend::PythonApi, true)?),
        "openvino:ovc" => Box::new(OpenVino::new(Frontend::Ovc, false)?),
        "openvino:ovc:f32" => Box::new(OpenVino::new(Frontend::Ovc, true)?),
        s if s.starts_with("exec:") => Box::new(Exec::new(s)?),
        other => match Plugin::from_spec(other)? {
            Some(plugin) => Box::new(plugin),
            None => {
                let stacks: Vec<&str> = crate::worker::STACKS.iter().map(|s| s.name).collect();
                anyhow::bail!(
                    "unknown converter '{other}': use identity, lower1d, lower1d:nc1l, nnef, openvino, openvino:f32, openvino:ovc, openvino:ovc:f32, a stack ({}) or exec:'COMMAND {{input}} {{output}}', or chain them as A+B",
                    stacks.join(", ")
                )
            }
        },
    })
}
