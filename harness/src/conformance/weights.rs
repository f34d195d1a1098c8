//! The allowance for converters that store their weights in f16 (`ovc`): how far moving every
//! stored float by an f16 rounding moves each output (docs/oracle.md, "Weights stored in f16").

use crate::compare::Expected;
use crate::convert::WeightPrecision;
use crate::onnx::proto;
use crate::oracle;
use crate::runtime::Precision;
use crate::tensor::Named;

/// How many times the largest output change seen over [`F16_WEIGHT_SAMPLES`] perturbations of
/// the stored floats a converter storing f16 weights may move an output (docs/oracle.md).
pub const F16_WEIGHTS_MARGIN: f64 = 4.0;

/// Perturbations of the stored floats measured per model.
const F16_WEIGHT_SAMPLES: u64 = 4;

/// The expectations of a model whose converter stores its weights in f16, judged on a runtime
/// computing in f32: the same values, each output's bounds widened by [`F16_WEIGHTS_MARGIN`]
/// times the largest change to that output over [`F16_WEIGHT_SAMPLES`] runs of the oracle on
/// the model with every stored float moved by up to an f16 rounding (2^-11 relative,
/// `onnx::perturb`), in u of f32. `None` when nothing needs widening (weights as given, a
/// runtime at f16 or coarser whose bounds already cover a rounding of every weight, or
/// expectations without oracle bounds, judged by fixed tolerances); an error when the oracle
/// cannot evaluate a perturbed model after all.
pub(super) fn weight_bounds(
    model: &[u8],
    inputs: &[Named],
    expected: &[Expected],
    weights: WeightPrecision,
    precision: Precision,
) -> std::result::Result<Option<Vec<Expected>>, String> {
    let oracle_bounds = expected.iter().all(|e| e.bound.is_some());
    if weights == WeightPrecision::AsGiven || precision != Precision::F32 || !oracle_bounds {
        return Ok(None);
    }
    let cannot = |why: String| format!("cannot evaluate the model with f16 weights: {why}");
    let model = proto::decode_model(model).map_err(|e| cannot(format!("{e:#}")))?;
    let mut change = vec![0.0f64; expected.len()];
    for sample in 0..F16_WEIGHT_SAMPLES {
        let moved =
            crate::onnx::perturb::stored_floats(&model, Precision::F16.unit_roundoff(), sample);
        let eval = oracle::evaluate(&moved, inputs).map_err(|e| cannot(e.to_string()))?;
        if eval.outputs.len() != expected.len() {
            return Err(cannot(
                "the oracle's outputs are not the expected ones".into(),
            ));
        }
        for ((c, e), o) in change.iter_mut().zip(expected).zip(&eval.outputs) {
            if o.value.shape() != e.value.shape() {
                return Err(cannot(format!(
                    "output '{}' has shape {:?}, expected {:?}",
                    o.name,
                    o.value.shape(),
                    e.value.shape()
                )));
            }
            let largest = e
                .value
                .iter()
                .zip(&o.value)
                .map(|(a, b)| (a - b).abs())
                .filter(|d| d.is_finite())
                .fold(0.0, f64::max);
            *c = c.max(largest);
        }
    }
    let u = Precision::F32.unit_roundoff();
    expected
        .iter()
        .zip(change)
        .map(|(e, change)| {
            let widening = F16_WEIGHTS_MARGIN * change / u;
            Ok(Expected {
                value: e.value.clone(),
                bound: e.bound.as_ref().map(|b| b.mapv(|b| b + widening)),
                dtype: e.dtype,
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map(Some)
}
