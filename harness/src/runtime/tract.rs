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

    fn load(&self, model: &[u8], inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let mut model = self
            .onnx
            .model_for_read(&mut &model[..])
            .context("tract could not read the model")?;
        let declared = model.inputs.len();
        if declared != inputs.len() {
            bail!(
                "model has {declared} inputs, the case feeds {}",
                inputs.len()
            );
        }
        for (ix, input) in inputs.iter().enumerate() {
            let fact = match &input.tensor {
                Tensor::F32(a) => f32::fact(a.shape()),
                Tensor::F64(a) => f64::fact(a.shape()),
                Tensor::F16(a) => half::f16::fact(a.shape()),
                Tensor::Bf16(_) => bail!("tract has no bfloat16 tensors"),
                Tensor::I64(a) => i64::fact(a.shape()),
                Tensor::I32(a) => i32::fact(a.shape()),
                Tensor::I8(a) => i8::fact(a.shape()),
                Tensor::U8(a) => u8::fact(a.shape()),
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
                    Tensor::F16(a) => a.clone().into(),
                    Tensor::Bf16(_) => bail!("tract has no bfloat16 tensors"),
                    Tensor::I64(a) => a.clone().into(),
                    Tensor::I32(a) => a.clone().into(),
                    Tensor::I8(a) => a.clone().into(),
                    Tensor::U8(a) => a.clone().into(),
                    Tensor::Bool(a) => a.clone().into(),
                };
                Ok(t.into_tvalue())
            })
            .collect::<Result<_>>()?;
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
        DatumType::I8 => Tensor::I8(t.to_plain_array_view::<i8>()?.to_owned()),
        DatumType::U8 => Tensor::U8(t.to_plain_array_view::<u8>()?.to_owned()),
        DatumType::Bool => Tensor::Bool(t.to_plain_array_view::<bool>()?.to_owned()),
        DatumType::F16 => Tensor::F16(t.to_plain_array_view::<half::f16>()?.to_owned()),
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
            // Negative cases and what tract refuses (see the ledger) are other tests.
            let refused = |c: &String| c == "LpPool" || c.starts_with("ConvTranspose.SAME");
            if case.model.negative.is_some() || case.model.classes().iter().any(refused) {
                continue;
            }
            let proto = emit(&case.model).unwrap();
            let outputs = proto.graph.as_ref().unwrap().output.len();
            let model = encode_model(&proto);
            let inputs = case.inputs();
            let mut loaded = tract
                .load(&model, &inputs)
                .unwrap_or_else(|e| panic!("{}: {e:#}", case.id));
            let out = loaded.run(&inputs).unwrap();
            // The output, then one per MaxPool with Indices.
            assert_eq!(out.len(), outputs);
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
