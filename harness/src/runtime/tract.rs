//! tract, the SIMD CPU runtime: load, optimize, run.

use anyhow::{bail, Context, Result};
use tract_onnx::prelude::*;

use super::{Loaded, Precision, Runtime};
use crate::tensor::{Named, Tensor};

/// tract-onnx as a runtime.
pub struct Tract {
    onnx: tract_onnx::Onnx,
}

impl Tract {
    /// A tract runtime with the standard ONNX operator set.
    pub fn new() -> Tract {
        Tract {
            onnx: tract_onnx::onnx(),
        }
    }
}

impl Default for Tract {
    fn default() -> Self {
        Tract::new()
    }
}

/// The tract-onnx version this harness is built with.
pub const VERSION: &str = "0.23.9";

impl Runtime for Tract {
    fn name(&self) -> &'static str {
        "tract"
    }

    fn version(&self) -> String {
        VERSION.into()
    }

    fn load(&self, model_bytes: &[u8], inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let mut model = self
            .onnx
            .model_for_read(&mut &model_bytes[..])
            .context("tract could not read the model")?;
        let declared = model.inputs.len();
        if declared != inputs.len() {
            bail!(
                "model has {declared} inputs, the case feeds {}",
                inputs.len()
            );
        }
        // A model that declares symbolic dimensions is optimized with its symbols, as a user of
        // a dynamic model would do it, and then run on concrete inputs; other models get the
        // concrete input shapes, so tract can specialize.
        if declares_symbols(model_bytes) {
            let plan = model
                .into_optimized()
                .context("tract could not optimize the model")?
                .into_runnable()?;
            return Ok(Box::new(TractPlan::new(plan, Precision::F32)));
        }
        for (ix, input) in inputs.iter().enumerate() {
            let fact = match &input.tensor {
                Tensor::F32(a) => f32::fact(a.shape()),
                Tensor::F64(a) => f64::fact(a.shape()),
                Tensor::I64(a) => i64::fact(a.shape()),
                Tensor::I32(a) => i32::fact(a.shape()),
                Tensor::Bool(a) => bool::fact(a.shape()),
            };
            model = model.with_input_fact(ix, fact.into())?;
        }
        let plan = model
            .into_optimized()
            .context("tract could not optimize the model")?
            .into_runnable()?;
        Ok(Box::new(TractPlan::new(plan, Precision::F32)))
    }
}

/// Whether some graph input (not an initializer) declares a symbolic dimension.
fn declares_symbols(model: &[u8]) -> bool {
    let Ok(proto) = crate::onnx::proto::decode_model(model) else {
        return false;
    };
    let graph = proto.graph.unwrap_or_default();
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .filter_map(crate::onnx::proto::declared_type)
        .any(|(_, dims)| {
            dims.iter()
                .any(|d| matches!(d, crate::onnx::proto::Dim::Symbol(_)))
        })
}

/// A runnable tract plan (from ONNX or NNEF).
pub struct TractPlan {
    plan: Arc<TypedRunnableModel>,
    precision: Precision,
}

impl TractPlan {
    /// Wraps a plan that computes in `precision`.
    pub fn new(plan: Arc<TypedRunnableModel>, precision: Precision) -> TractPlan {
        TractPlan { plan, precision }
    }
}

impl Loaded for TractPlan {
    fn precision(&self) -> Precision {
        self.precision
    }

    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Tensor>> {
        let values: TVec<TValue> = inputs
            .iter()
            .map(|i| {
                let t: tract_onnx::prelude::Tensor = match &i.tensor {
                    Tensor::F32(a) => a.clone().into(),
                    Tensor::F64(a) => a.clone().into(),
                    Tensor::I64(a) => a.clone().into(),
                    Tensor::I32(a) => a.clone().into(),
                    Tensor::Bool(a) => a.clone().into(),
                };
                t.into_tvalue()
            })
            .collect();
        let outputs = self.plan.run(values)?;
        outputs.into_iter().map(|v| from_tract(&v)).collect()
    }
}

fn from_tract(t: &tract_onnx::prelude::Tensor) -> Result<Tensor> {
    Ok(match t.datum_type() {
        DatumType::F32 => Tensor::F32(t.to_plain_array_view::<f32>()?.to_owned()),
        DatumType::F64 => Tensor::F64(t.to_plain_array_view::<f64>()?.to_owned()),
        DatumType::I64 => Tensor::I64(t.to_plain_array_view::<i64>()?.to_owned()),
        DatumType::I32 => Tensor::I32(t.to_plain_array_view::<i32>()?.to_owned()),
        DatumType::Bool => Tensor::Bool(t.to_plain_array_view::<bool>()?.to_owned()),
        DatumType::F16 => Tensor::F32(t.cast_to::<f32>()?.to_plain_array_view::<f32>()?.to_owned()),
        other => bail!("tract produced an output of type {other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};
    use crate::onnx::{emit::emit, proto::encode_model};

    #[test]
    fn tract_runs_generated_models_with_the_described_output_shape() {
        let tract = Tract::new();
        for i in 0..150 {
            let case = generate(1, i, &GenConfig::default());
            let model = encode_model(&emit(&case.model).unwrap());
            let inputs = case.inputs();
            let mut loaded = tract
                .load(&model, &inputs)
                .unwrap_or_else(|e| panic!("{}: {e:#}", case.id));
            let out = loaded.run(&inputs).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(
                out[0].shape(),
                case.model.output_shape().unwrap().as_slice(),
                "{}",
                case.id
            );
        }
    }

    #[test]
    fn the_reported_version_is_the_pinned_one() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(
            manifest.contains(&format!("tract-onnx = {{ version = \"={VERSION}\"")),
            "pin and VERSION differ"
        );
    }

    #[test]
    fn garbage_bytes_are_refused_not_a_panic() {
        let inputs = [Named {
            name: "x".into(),
            tensor: Tensor::f32(&[1], vec![0.0]).unwrap(),
        }];
        assert!(Tract::new().load(b"\xff\xffnot onnx", &inputs).is_err());
    }
}
