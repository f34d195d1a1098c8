//! The `drift` check: a pass compared with the same runtime on the unconverted model
//! (docs/verdicts.md).

use super::{Runner, Subject};
use crate::compare::{compare, Expected};
use crate::convert::{Artifact, Converter};
use crate::results::{CaseResult, Verdict};

impl Runner {
    /// A result that passed, of a converter that changed the model and ran on the run's
    /// runtime, is compared with that runtime on the unconverted model: how far each is from
    /// the oracle, as a fraction of the same tolerance (`reference_ratio`). Much further than
    /// the reference is `drift` (`DriftRule`). The reference runs in this result's own call,
    /// so the verdict does not depend on which other converters the run has.
    pub(super) fn check_drift(
        &self,
        r: &mut CaseResult,
        s: &Subject,
        expected: &[Expected],
        converter: &dyn Converter,
    ) {
        let rule = self.options.drift;
        if !rule.enabled()
            || r.verdict != Verdict::Pass
            || s.negative.is_some()
            // A quantized model's error is whole quanta that a fused kernel may legitimately
            // flip (docs/quantization.md): its ratio to the bound is not a measure of drift.
            || s.ops.iter().any(|op| op == "QuantizeLinear")
            || converter.name() == "identity"
            || r.runtime != self.runtime.name()
        {
            return;
        }
        let (Some(converted), Some(precision)) = (r.worst_ratio, r.precision) else {
            return;
        };
        let Ok((reference_precision, reference_outputs, _)) =
            self.execute(Artifact::Onnx(s.model.clone()), s.inputs.clone(), 0)
        else {
            return;
        };
        if reference_precision != precision {
            return;
        }
        let c = compare(
            expected,
            &reference_outputs,
            precision,
            self.tolerance_of(s),
        );
        if c.stats.count == 0 {
            return;
        }
        let reference = c.stats.worst_ratio;
        r.reference_ratio = Some(reference);
        if rule.is_drift(converted, reference) {
            r.verdict = Verdict::Drift;
            r.message = Some(format!(
                "within the error bound, but drifted: worst error {converted:.3e} of the \
                 tolerance, {} the {reference:.3e} of {} on the unconverted model (drift \
                 beyond {}× and {:.0e})",
                times(converted, reference),
                r.runtime,
                rule.factor,
                rule.floor
            ));
        }
    }
}

/// How many times `reference` `converted` is, in words.
fn times(converted: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("{:.0} times", converted / reference)
    } else {
        "against".into()
    }
}
