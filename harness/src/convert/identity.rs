//! The identity converter: the model as it is. Tests the runtime alone.

use super::{Artifact, Context, ConvertError, Converter};

/// Passes the model through unchanged.
pub struct Identity;

impl Converter for Identity {
    fn name(&self) -> String {
        super::IDENTITY.into()
    }

    fn keeps_model(&self) -> bool {
        true
    }

    fn version(&self) -> Option<String> {
        Some(env!("CARGO_PKG_VERSION").into())
    }

    fn needs_work_dir(&self) -> bool {
        false
    }

    fn convert(&self, model: &[u8], _cx: &Context) -> Result<Artifact, ConvertError> {
        Ok(Artifact::Onnx(model.to_vec()))
    }
}
