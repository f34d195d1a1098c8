//! Quantized cases: a generated float model turned into the QDQ model a static quantization
//! tool would write for it.
//!
//! The tool's steps, done here on the description: calibrate (run the float model on the
//! case's own input through the oracle and take each activation's range), then put a
//! QuantizeLinear → DequantizeLinear pair on the input and after every top-level layer with
//! the scale and zero point of that range, and store the weights as integers
//! ([`crate::model::WeightQuant`]; biases become int32 where the emitter can, see
//! `crate::onnx::emit`). Which integer types, zero points and weight scales a case gets is
//! drawn from its own seed, so a case is the same everywhere, reduction included (a reduced
//! model is calibrated again). Half the cases keep that QDQ form; a quarter write Conv and
//! MatMul as QLinearConv and QLinearMatMul, a quarter as ConvInteger and MatMulInteger
//! ([`QuantOperators`]). A quantized case's id is its float case's with the form's suffix after
//! it (`s1-i70-q`, `-qo`, `-qi`), so that ledger witnesses and reports never mix the forms.
//!
//! A run makes the quantized forms alone (`--quantized`), or beside the float cases at a share
//! of the indices (the default run, [`QuantizedCases::Beside`]): there the float cases are
//! those of a float-only run, and the quantized case at an index is the one `--quantized`
//! makes there.

use crate::gen::{self, GenConfig, QuantizedCases, QUANTIZED_SHARE};
use crate::model::{Layer, ModelDesc, Quant, QuantOperators, WeightQuant};
use crate::onnx::emit;
use crate::oracle::{self, Value};
use crate::seed::{self, Draw};
use crate::tensor::DType;

/// The cases a run makes of generated index `index` of base seed `base`: the float case, its
/// quantized form, or (with [`QuantizedCases::Beside`], at the indices drawn for it) both, the
/// float case first.
pub fn generated_cases(base: u64, index: u64, cfg: &GenConfig) -> Vec<gen::Case> {
    let float = gen::generate(base, index, cfg);
    match cfg.quantized {
        QuantizedCases::None => vec![float],
        QuantizedCases::Only => vec![prepared(float, cfg)],
        QuantizedCases::Beside => {
            // A stream of its own: which indices get one changes no other draw.
            let drawn =
                seed::rng(float.seed, "quantized share").uniform(0.0, 1.0) < QUANTIZED_SHARE;
            let beside = drawn.then(|| quantized_case(&float, cfg)).flatten();
            std::iter::once(float).chain(beside).collect()
        }
    }
}

/// Generated case `index` of base seed `base` in the form `cfg` makes alone: quantized with
/// [`QuantizedCases::Only`], float otherwise (see [`GenConfig::one_form`]).
pub fn generated_case(base: u64, index: u64, cfg: &GenConfig) -> gen::Case {
    prepared(gen::generate(base, index, cfg), cfg)
}

/// `case` quantized when `cfg` makes quantized cases alone ([`QuantizedCases::Only`]) and the
/// model can be quantized (a valid float32 model of opset 10 or later that the oracle
/// evaluates); otherwise unchanged.
pub fn prepared(case: gen::Case, cfg: &GenConfig) -> gen::Case {
    if cfg.quantized != QuantizedCases::Only {
        return case;
    }
    quantized_case(&case, cfg).unwrap_or(case)
}

/// The quantized form of `case`, with its id (the float case's and the form's suffix), if its
/// model has one.
fn quantized_case(case: &gen::Case, cfg: &GenConfig) -> Option<gen::Case> {
    let model = quantized(case, cfg)?;
    let suffix = model
        .quantized_weights
        .map_or("-q", |w| w.operators.id_suffix());
    Some(gen::Case {
        id: format!("{}{suffix}", case.id),
        model,
        ..case.clone()
    })
}

/// How activations of a model are quantized.
#[derive(Debug, Clone, Copy)]
struct ActivationScheme {
    /// int8 rather than uint8.
    signed: bool,
    /// int8 with zero point 0 and a range symmetric around it.
    symmetric: bool,
}

/// The quantized form of `case`'s model, or `None` when it has none.
fn quantized(case: &gen::Case, cfg: &GenConfig) -> Option<ModelDesc> {
    let float = &case.model;
    if float.negative.is_some()
        || float.dtype != DType::Float
        || float.opset < 10
        || float.quantized_weights.is_some()
    {
        return None;
    }
    let mut rng = seed::rng(case.seed, "quantization");
    let signed = rng.int(0, 1) == 1;
    let activations = ActivationScheme {
        signed,
        symmetric: signed && rng.int(0, 2) == 0,
    };
    let weights = WeightQuant {
        per_channel: float.opset >= 13 && rng.int(0, 1) == 1,
        signed: rng.int(0, 3) != 0,
        // From a stream of its own, so that the draws above stay what they were before the
        // operator forms existed: a QDQ case (`-q`) is the same model it always was.
        operators: cfg.quantized_operators.unwrap_or_else(|| {
            match seed::rng(case.seed, "quantized operators").int(0, 3) {
                0 => QuantOperators::Qlinear,
                1 => QuantOperators::Integer,
                _ => QuantOperators::Qdq,
            }
        }),
    };
    let ranges = calibrate(case)?;
    let quant = |(min, max): (f64, f64)| activation_params(min, max, activations);
    let mut layers = Vec::with_capacity(2 * float.layers.len() + 1);
    layers.push(Layer::QuantizeDequantize(quant(ranges[0])?));
    for (layer, &range) in float.layers.iter().zip(&ranges[1..]) {
        layers.push(layer.clone());
        layers.push(Layer::QuantizeDequantize(quant(range)?));
    }
    let model = ModelDesc {
        layers,
        quantized_weights: Some(weights),
        ..float.clone()
    };
    model.shapes().ok()?;
    Some(model)
}

/// The range (min, max) of the input and of each top-level layer's output on the case's input,
/// by the oracle; `None` when the oracle does not evaluate the float model or a value is not
/// finite.
fn calibrate(case: &gen::Case) -> Option<Vec<(f64, f64)>> {
    let (model, outputs) = emit::emit_traced(&case.model).ok()?;
    let inputs = case.inputs();
    let (_, values) = oracle::evaluate_all(&model, &inputs).ok()?;
    let mut ranges = vec![range(&inputs[0].tensor.to_f64())?];
    for name in &outputs {
        match values.get(name)? {
            Value::Float { value, .. } => ranges.push(range(value)?),
            Value::Int(_) => return None,
        }
    }
    Some(ranges)
}

fn range(values: &ndarray::ArrayD<f64>) -> Option<(f64, f64)> {
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    (min.is_finite() && max.is_finite()).then_some((min, max))
}

/// Scale and zero point for values in `min..=max` (0 always representable, as the tools make
/// it): uint8 or int8 over the range, or int8 symmetric around 0. `None` when the scale is not a
/// normal float32 (a range too small or too large to quantize).
fn activation_params(min: f64, max: f64, scheme: ActivationScheme) -> Option<Quant> {
    let q = Quant::for_range(min, max, scheme.signed, scheme.symmetric);
    q.scale.is_normal().then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GenConfig {
        GenConfig {
            quantized: QuantizedCases::Only,
            ..GenConfig::default()
        }
    }

    #[test]
    fn activation_parameters_put_the_range_on_the_integer_grid() {
        let u8 = ActivationScheme {
            signed: false,
            symmetric: false,
        };
        let q = activation_params(-1.0, 1.55, u8).unwrap();
        assert!((f64::from(q.scale) - 0.01).abs() < 1e-7);
        assert_eq!((q.zero_point, q.signed), (100, false));
        let i8 = ActivationScheme {
            signed: true,
            symmetric: false,
        };
        assert_eq!(activation_params(-1.0, 1.55, i8).unwrap().zero_point, -28);
        let sym = ActivationScheme {
            signed: true,
            symmetric: true,
        };
        let q = activation_params(-2.54, 1.0, sym).unwrap();
        assert_eq!(q.zero_point, 0);
        assert!((f64::from(q.scale) - 0.02).abs() < 1e-7);
        // A constant zero activation gets a unit scale.
        assert_eq!(activation_params(0.0, 0.0, u8).unwrap().scale, 1.0);
    }

    #[test]
    fn quantized_cases_are_valid_deterministic_and_wrap_every_layer() {
        let cfg = cfg();
        let mut quantized = 0;
        for i in 0..40 {
            let a = generated_case(5, i, &cfg);
            assert_eq!(
                a,
                generated_case(5, i, &cfg),
                "case {i} is not reproducible"
            );
            let float = gen::generate(5, i, &GenConfig::default());
            if a.model.quantized_weights.is_none() {
                assert_eq!(a.model, float.model, "an unquantized case changed");
                continue;
            }
            quantized += 1;
            let form = a.model.quantized_weights.as_ref().unwrap().operators;
            assert_eq!(a.id, format!("s5-i{i}{}", form.id_suffix()));
            a.model.shapes().unwrap();
            assert_eq!(a.model.layers.len(), 2 * float.model.layers.len() + 1);
            assert!(matches!(a.model.layers[0], Layer::QuantizeDequantize(_)));
            for (k, layer) in float.model.layers.iter().enumerate() {
                assert_eq!(&a.model.layers[2 * k + 1], layer);
                assert!(matches!(
                    a.model.layers[2 * k + 2],
                    Layer::QuantizeDequantize(_)
                ));
            }
            // The oracle evaluates the quantized model.
            let model = emit::emit(&a.model).unwrap();
            oracle::evaluate(&model, &a.inputs()).unwrap();
        }
        assert!(quantized >= 30, "only {quantized} of 40 cases quantized");
        // Without the knob nothing changes.
        assert_eq!(
            generated_case(5, 3, &GenConfig::default()),
            gen::generate(5, 3, &GenConfig::default())
        );
    }

    #[test]
    fn a_share_of_the_indices_get_their_quantized_case_beside_the_float_one() {
        let beside = GenConfig {
            quantized: QuantizedCases::Beside,
            ..GenConfig::default()
        };
        let (mut pairs, n) = (0, 200);
        for i in 0..n {
            let cases = generated_cases(5, i, &beside);
            // The float case is the one a float-only run makes.
            assert_eq!(cases[0], gen::generate(5, i, &GenConfig::default()));
            assert_eq!(generated_case(5, i, &beside), cases[0]);
            match &cases[1..] {
                [] => {}
                [q] => {
                    pairs += 1;
                    // The quantized one is the case `--quantized` makes at that index.
                    assert_eq!(q, &generated_case(5, i, &cfg()));
                    assert_eq!(*q, generated_case(5, i, &beside.one_form(true)));
                    assert!(q.model.quantized_weights.is_some());
                }
                more => panic!("case {i}: {} cases beside the float one", more.len()),
            }
        }
        // About an eighth of 200: the share, not none or all.
        let expected = QUANTIZED_SHARE * n as f64;
        assert!(
            (pairs as f64 - expected).abs() < 0.5 * expected,
            "{pairs} quantized cases of {n}"
        );
        let none = GenConfig::default();
        assert_eq!(generated_cases(5, 7, &none).len(), 1);
    }
}
