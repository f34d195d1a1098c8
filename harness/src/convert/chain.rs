//! `A+B`: two converters in a row, A's ONNX handed to B, as when a 1D model is rewritten to
//! 2D (`lower1d`) before OpenVINO converts it.
//!
//! Only the last converter of a chain may make a native artifact; every earlier one must make
//! ONNX. A chain is a converter like any other, so reduction, bundles and the first diverging
//! node search work on it unchanged.

use super::{Artifact, Context, ConvertError, Converter, Replay, WeightPrecision};

/// `head` then `tail`.
pub struct Chain {
    head: Box<dyn Converter>,
    tail: Box<dyn Converter>,
}

impl Chain {
    /// Chains two converters; `head` must make ONNX.
    pub fn new(head: Box<dyn Converter>, tail: Box<dyn Converter>) -> anyhow::Result<Chain> {
        anyhow::ensure!(
            head.native_runtime().is_none(),
            "converter '{}+{}': {} makes a model in its own format, so no converter can follow it \
             (only the last converter of a chain may)",
            head.name(),
            tail.name(),
            head.name()
        );
        Ok(Chain { head, tail })
    }

    /// What `head` makes of `model`: the ONNX the tail converts.
    fn head_onnx(&self, model: &[u8], cx: &Context) -> Result<Vec<u8>, ConvertError> {
        let within = |m: String| format!("{}: {m}", self.head.name());
        match self.head.convert(model, cx) {
            Ok(Artifact::Onnx(bytes)) => Ok(bytes),
            Ok(Artifact::Native(_)) => Err(ConvertError::Crashed(within(
                "made a native artifact where ONNX was expected".into(),
            ))),
            Err(ConvertError::Rejected(m)) => Err(ConvertError::Rejected(within(m))),
            Err(ConvertError::Crashed(m)) => Err(ConvertError::Crashed(within(m))),
            Err(ConvertError::Timeout(m)) => Err(ConvertError::Timeout(within(m))),
            Err(ConvertError::OverLimit(m)) => Err(ConvertError::OverLimit(within(m))),
        }
    }
}

impl Converter for Chain {
    fn name(&self) -> String {
        format!("{}+{}", self.head.name(), self.tail.name())
    }

    fn version(&self) -> Option<String> {
        match (self.head.version(), self.tail.version()) {
            (None, None) => None,
            (h, t) => Some(format!(
                "{}+{}",
                h.as_deref().unwrap_or("?"),
                t.as_deref().unwrap_or("?")
            )),
        }
    }

    fn native_runtime(&self) -> Option<String> {
        self.tail.native_runtime()
    }

    fn native_version(&self) -> Option<String> {
        self.tail.native_version()
    }

    fn keeps_model(&self) -> bool {
        self.head.keeps_model() && self.tail.keeps_model()
    }

    fn needs_work_dir(&self) -> bool {
        self.head.needs_work_dir() || self.tail.needs_work_dir()
    }

    fn weights(&self) -> WeightPrecision {
        self.tail.weights()
    }

    /// The tail's: the head (a rewrite or a command) costs the same per model either way.
    fn pack(&self) -> usize {
        self.tail.pack()
    }

    /// The tail's replay, on the ONNX the head made (the bundle's `converted.onnx`).
    fn replay(&self) -> Replay {
        match self.tail.replay() {
            Replay::Model | Replay::ConvertedOnnx => Replay::ConvertedOnnx,
            Replay::OpenVino {
                precision_hint,
                compress_to_fp16,
                ..
            } => Replay::OpenVino {
                precision_hint,
                compress_to_fp16,
                converted: true,
            },
            Replay::TractNnef { .. } => Replay::TractNnef { converted: true },
            Replay::Plugin { stack, variant, .. } => Replay::Plugin {
                stack,
                variant,
                converted: true,
            },
        }
    }

    /// The chain's ONNX when the tail makes ONNX, else the head's: what the tail's replay
    /// starts from.
    fn converted_onnx(&self, model: &[u8], cx: &Context) -> Option<Vec<u8>> {
        let head = self.head_onnx(model, cx).ok()?;
        if self.tail.native_runtime().is_some() {
            return Some(head);
        }
        self.tail.converted_onnx(&head, cx)
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let onnx = self.head_onnx(model, cx)?;
        self.tail.convert(&onnx, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::from_spec;
    use std::time::Duration;

    fn model() -> Vec<u8> {
        crate::onnx::proto::encode_model(&tract_onnx::pb::ModelProto {
            ir_version: 8,
            graph: Some(Default::default()),
            ..Default::default()
        })
    }

    fn convert(spec: &str) -> Result<Artifact, ConvertError> {
        let dir = tempfile::tempdir().unwrap();
        from_spec(spec).unwrap().convert(
            &model(),
            &Context {
                work_dir: dir.path(),
                timeout: Duration::from_secs(10),
                limits: Default::default(),
            },
        )
    }

    #[test]
    fn a_chain_names_its_parts_and_hands_the_first_ones_onnx_to_the_second() {
        let chain = from_spec("identity+exec:cp {input} {output}").unwrap();
        assert_eq!(chain.name(), "identity+exec:cp {input} {output}");
        assert!(chain.native_runtime().is_none());
        assert!(!chain.keeps_model());
        assert!(matches!(
            convert("identity+exec:cp {input} {output}"),
            Ok(Artifact::Onnx(_))
        ));
        assert_eq!(
            from_spec("identity+identity").unwrap().replay(),
            Replay::ConvertedOnnx
        );
    }

    #[test]
    fn a_failure_in_the_first_converter_keeps_its_verdict_and_names_it() {
        let e = convert("exec:echo no >&2; exit 4 # {output}+identity").unwrap_err();
        let ConvertError::Rejected(m) = e else {
            panic!("{e:?}")
        };
        assert!(m.starts_with("exec:echo no"), "{m}");
        assert!(m.ends_with("converter exited with status 4: no"), "{m}");
    }

    #[test]
    fn a_converter_making_its_own_format_cannot_be_followed() {
        let e = from_spec("nnef+identity").err().unwrap().to_string();
        assert!(e.contains("only the last converter of a chain"), "{e}");
    }

    #[test]
    fn a_plus_inside_an_exec_command_does_not_split_it() {
        let c = from_spec("exec:sh -c 'cp {input} {output}' x+y+lower1d").unwrap();
        assert_eq!(c.name(), "exec:sh -c 'cp {input} {output}' x+y+lower1d");
        assert!(from_spec("lower1d+").is_err());
    }
}
