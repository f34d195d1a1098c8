//! `nnef`: tract's ONNX → NNEF export and reload, run on tract.
//!
//! The ONNX model is read and typed by tract-onnx, written as an NNEF archive (with tract's
//! ONNX operator extensions), read back by tract-nnef, and the reloaded model is what runs.
//! Anything lost or changed by the NNEF serialization shows up as a verdict.

use anyhow::{Context as _, Result};
use tract_nnef::framework::Nnef;
use tract_onnx::prelude::*;
use tract_onnx::WithOnnx;

use super::{Artifact, Context, ConvertError, Converter, NativeArtifact};
use crate::runtime::{Loaded, Precision, TractPlan};
use crate::tensor::Named;

/// The NNEF round-trip converter.
pub struct NnefRoundTrip;

fn nnef() -> Nnef {
    tract_nnef::nnef().with_onnx()
}

impl Converter for NnefRoundTrip {
    fn name(&self) -> String {
        "nnef".into()
    }

    fn version(&self) -> Option<String> {
        Some(format!("tract-nnef {}", crate::runtime::TRACT_VERSION))
    }

    fn replay(&self) -> super::Replay {
        super::Replay::TractNnef { converted: false }
    }

    fn native_runtime(&self) -> Option<String> {
        Some("tract".into())
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let typed = tract_onnx::onnx()
            .model_for_read(&mut &model[..])
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .map_err(|e| {
                ConvertError::Rejected(format!("tract could not type the ONNX model: {e:#}"))
            })?;
        let tar = nnef()
            .write_to_tar_with_config(&typed, Vec::new(), false, true)
            .map_err(|e| ConvertError::Rejected(format!("NNEF export refused: {e:#}")))?;
        // Keep the artifact on disk, as a user of the converter would get it.
        let path = cx.work_dir.join("model.nnef.tar");
        std::fs::write(&path, &tar)
            .map_err(|e| ConvertError::Crashed(format!("cannot write {}: {e}", path.display())))?;
        let reloaded = nnef().model_for_read(&mut &tar[..]).map_err(|e| {
            ConvertError::Crashed(format!("NNEF archive does not load back: {e:#}"))
        })?;
        Ok(Artifact::Native(Box::new(NnefModel { model: reloaded })))
    }
}

/// A reloaded NNEF model, run on tract.
struct NnefModel {
    model: TypedModel,
}

impl NativeArtifact for NnefModel {
    fn runtime(&self) -> String {
        "tract".into()
    }

    fn load(self: Box<Self>, _inputs: &[Named]) -> Result<Box<dyn Loaded>> {
        let plan = self
            .model
            .into_optimized()
            .context("tract could not optimize the NNEF model")?
            .into_runnable()?;
        Ok(Box::new(TractPlan::new(plan, Precision::F32)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::{generate, GenConfig};
    use crate::onnx::{emit::emit, proto::encode_model};
    use crate::runtime::{Runtime, Tract};

    #[test]
    fn nnef_round_trip_computes_what_tract_computes_on_the_onnx_model() {
        let dir = tempfile::tempdir().unwrap();
        let cx = Context {
            work_dir: dir.path(),
            timeout: std::time::Duration::from_secs(60),
            limits: Default::default(),
        };
        // Pools with ceil_mode are left out here: tract's NNEF round trip changes their result
        // (a finding of the harness itself; see corpus/known-failures.toml).
        let cases = (0..80)
            .map(|i| generate(4, i, &GenConfig::default()))
            .filter(|c| {
                c.model.negative.is_none()
                    && !c.model.classes().iter().any(|k| {
                        k.ends_with("ceil_mode=1")
                            || k == "LpPool"
                            || k.starts_with("ConvTranspose.SAME")
                    })
            })
            .take(40);
        let mut converted = 0;
        for case in cases {
            let inputs = case.inputs();
            let bytes = encode_model(&emit(&case.model).unwrap());
            let want = Tract::new()
                .load(&bytes, &inputs)
                .unwrap()
                .run(&inputs)
                .unwrap();
            let native = match NnefRoundTrip.convert(&bytes, &cx) {
                Ok(Artifact::Native(native)) => native,
                // Some padding schemes have no NNEF form: a refusal, never a crash.
                // So are ops tract-nnef cannot write and shapes it needs concrete (the ledger
                // lists them).
                Err(ConvertError::Rejected(m))
                    if [
                        "Unsupported padding scheme",
                        "No serializer found",
                        "Undetermined symbol",
                        "not concrete",
                        "could not type the ONNX model",
                    ]
                    .iter()
                    .any(|known| m.contains(known)) =>
                {
                    continue
                }
                other => panic!("{}: {other:?}", case.id),
            };
            converted += 1;
            let got = native.load(&inputs).unwrap().run(&inputs).unwrap();
            assert_eq!(got[0].shape(), want[0].shape(), "{}", case.id);
            let (g, w) = (got[0].to_f64(), want[0].to_f64());
            let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(w.iter()) {
                assert!((a - b).abs() <= 1e-4 * scale, "{}: {a} vs {b}", case.id);
            }
        }
        assert!(converted >= 15, "only {converted} of 40 converted");
        assert!(dir.path().join("model.nnef.tar").is_file());
    }
}
