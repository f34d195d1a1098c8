//! The subjects a run puts to the converters: generated cases, and data sets of test-case
//! directories (with the oracle's own check of their stored outputs).

use anyhow::{Context as _, Result};

use super::Subject;
use crate::compare::{compare, Expected, Tolerance};
use crate::gen::{self, GenConfig};
use crate::onnx::{emit, proto, testcase};
use crate::oracle;
use crate::results::{CaseResult, Origin, Policy, Verdict};
use crate::runtime::Precision;
use crate::tensor::{DType, Named, Tensor};

/// Golden outputs of a model from the oracle, as expectations.
pub fn oracle_expected(
    model: &tract_onnx::pb::ModelProto,
    inputs: &[Named],
) -> Result<Vec<Expected>> {
    Ok(expectations(oracle::evaluate(model, inputs)?))
}

/// The oracle's golden outputs with their bounds.
fn expectations(eval: oracle::Evaluation) -> Vec<Expected> {
    eval.outputs
        .into_iter()
        .map(|o| Expected {
            value: o.value,
            bound: Some(o.bound),
            dtype: o.dtype,
        })
        .collect()
}

/// Golden outputs of a generated model, unless a value of its exact computation is beyond the
/// range of the model's float type (float32, or float16 for a float16 model): a runtime
/// overflows there (to infinity, then NaN where infinities meet), so no result of that type can
/// match the golden one and the error bounds, which assume no overflow, say nothing. Such a case
/// is too large for its type (`too-large`, not run).
fn generated_expected(
    model: &tract_onnx::pb::ModelProto,
    inputs: &[Named],
) -> std::result::Result<Vec<Expected>, (Verdict, String)> {
    let (eval, values) = oracle::evaluate_all(model, inputs).map_err(|e| {
        if matches!(e, oracle::OracleError::TooLarge(_)) {
            (Verdict::TooLarge, e.to_string())
        } else {
            (
                Verdict::Error,
                format!("oracle failed on a generated model: {e}"),
            )
        }
    })?;
    let float = crate::onnx::proto::float_type(model);
    let limit = float.max_finite();
    let beyond = values.iter().find_map(|(name, v)| match v {
        oracle::Value::Float { value, .. } => {
            value.iter().find(|x| x.abs() > limit).map(|x| (name, *x))
        }
        oracle::Value::Int(_) => None,
    });
    if let Some((name, x)) = beyond {
        return Err((
            Verdict::TooLarge,
            format!(
                "'{name}' reaches {x:e} in the exact computation, beyond the {float} range: \
                 {float} arithmetic overflows there"
            ),
        ));
    }
    Ok(expectations(eval))
}

/// The subjects a run makes of generated index `index` of base seed `seed`: the float case,
/// its quantized form, or both (see [`super::quantize::generated_cases`]).
pub fn generated_subjects(seed: u64, index: u64, cfg: &GenConfig) -> Vec<Subject> {
    super::quantize::generated_cases(seed, index, cfg)
        .iter()
        .map(case_subject)
        .collect()
}

/// The subject of a generated case made again from its origin: the float case, or its
/// quantized form when that is what the origin names.
pub fn generated_subject(seed: u64, index: u64, quantized: bool, cfg: &GenConfig) -> Subject {
    case_subject(&super::quantize::generated_case(
        seed,
        index,
        &cfg.one_form(quantized),
    ))
}

/// The subject of a generated case.
pub fn case_subject(case: &gen::Case) -> Subject {
    let inputs = case.inputs();
    let ops = case.model.ops().into_iter().map(String::from).collect();
    let classes = case.model.classes();
    let (model, expected) = match emit::emit(&case.model) {
        Ok(proto) if case.model.negative.is_some() => {
            // Negative case: the oracle must refuse it too; nothing is expected of the output.
            let expected = match oracle_expected(&proto, &inputs) {
                Err(_) => Ok(vec![]),
                Ok(_) => Err((
                    Verdict::Error,
                    "the oracle accepted a generated model marked invalid".to_string(),
                )),
            };
            (proto::encode_model(&proto), expected)
        }
        Ok(proto) => {
            let expected = generated_expected(&proto, &inputs);
            (proto::encode_model(&proto), expected)
        }
        Err(e) => (
            Vec::new(),
            Err((Verdict::Error, format!("generated an invalid model: {e:#}"))),
        ),
    };
    Subject {
        id: case.id.clone(),
        origin: Origin::Generated {
            base: case.base_seed,
            index: case.index,
            // Only a quantized form has integer weights; a generated float model never does.
            quantized: case.model.quantized_weights.is_some(),
        },
        seed: Some(case.seed),
        model,
        inputs,
        expected,
        ops,
        classes,
        negative: case.model.negative,
        tolerance: None,
    }
}

/// Writes generated case `index` of base seed `seed` as an ONNX test-case directory: its
/// model, inputs and the oracle's outputs, and meta.json with its description and `command`
/// (how to make it again). Returns the case.
pub fn write_generated_case(
    seed: u64,
    index: u64,
    cfg: &GenConfig,
    dir: &std::path::Path,
    command: &str,
) -> Result<gen::Case> {
    let case = super::quantize::generated_case(seed, index, cfg);
    let model = emit::emit(&case.model)?;
    let inputs = case.inputs();
    let expected = oracle_expected(&model, &inputs)?;
    let set = testcase::DataSet {
        inputs: inputs.iter().map(|n| n.tensor.clone()).collect(),
        outputs: expected.iter().map(Expected::to_tensor).collect(),
    };
    let meta = serde_json::json!({
        "case": case.id,
        "seed": case.seed,
        "model": case.model,
        "input": case.input,
        "command": command,
    });
    testcase::write_single(dir, &model, set, Some(&meta))?;
    Ok(case)
}

/// Checks fed inputs against the graph's declared inputs: count, element type, and every
/// fixed dimension.
fn check_inputs<'a>(
    declared: impl Iterator<Item = &'a tract_onnx::pb::ValueInfoProto>,
    inputs: &[Named],
) -> std::result::Result<(), String> {
    use crate::onnx::proto::{data_type_code, declared_type, Dim};
    let declared: Vec<_> = declared.collect();
    if declared.len() != inputs.len() {
        return Err(format!(
            "the model has {} inputs, the data set feeds {}",
            declared.len(),
            inputs.len()
        ));
    }
    for (d, fed) in declared.iter().zip(inputs) {
        let Some((elem, dims)) = declared_type(d) else {
            continue;
        };
        if elem != 0 && elem != data_type_code(fed.tensor.dtype()) {
            return Err(format!(
                "input '{}' is declared with element type {elem}, fed {}",
                d.name,
                fed.tensor.dtype()
            ));
        }
        let shape = fed.tensor.shape();
        if !dims.is_empty() && dims.len() != shape.len() {
            return Err(format!(
                "input '{}' is declared with rank {}, fed shape {shape:?}",
                d.name,
                dims.len()
            ));
        }
        for (k, (dim, &n)) in dims.iter().zip(shape).enumerate() {
            if let Dim::Fixed(m) = dim {
                if *m != n {
                    return Err(format!(
                        "input '{}' dimension {k} is declared {m}, fed {n}",
                        d.name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The subject of one data set of a test-case directory, and the oracle's own result on it.
pub(super) fn stored_subject(
    id: &str,
    origin: Origin,
    model_bytes: &[u8],
    set: &testcase::DataSet,
) -> (Subject, CaseResult) {
    let mut oracle_result = CaseResult::unjudged(id, origin.clone(), "oracle", "f64");
    oracle_result.tolerance = Policy::Bound;
    let mut subject = Subject {
        id: id.into(),
        origin,
        seed: None,
        model: model_bytes.to_vec(),
        inputs: vec![],
        expected: Ok(vec![]),
        ops: vec![],
        classes: vec![],
        negative: None,
        tolerance: None,
    };
    let model = match proto::decode_model(model_bytes).context("model.onnx") {
        Ok(m) => m,
        Err(e) => {
            refuse(
                &mut subject,
                &mut oracle_result,
                Verdict::Error,
                format!("{e:#}"),
            );
            return (subject, oracle_result);
        }
    };
    let graph = model.graph.clone().unwrap_or_default();
    for n in &graph.node {
        if !subject.ops.contains(&n.op_type) {
            subject.ops.push(n.op_type.clone());
        }
    }
    oracle_result.ops = subject.ops.clone();
    let declared = declared_inputs(&graph);
    subject.inputs = set
        .inputs
        .iter()
        .enumerate()
        .map(|(j, t)| Named {
            name: declared
                .get(j)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| format!("input_{j}")),
            tensor: t.clone(),
        })
        .collect();
    if let Err(problem) = check_inputs(declared.into_iter(), &subject.inputs) {
        let msg = format!("test data does not fit the model: {problem}");
        refuse(&mut subject, &mut oracle_result, Verdict::Error, msg);
        return (subject, oracle_result);
    }
    match oracle_expected(&model, &subject.inputs) {
        Ok(golden) => {
            check_stored_outputs(&mut oracle_result, &golden, &set.outputs);
            subject.expected = Ok(stored_with_bounds(&set.outputs, &golden));
        }
        // Over the resource limits: nothing else runs this case.
        Err(e) if too_large(&e) => {
            refuse(
                &mut subject,
                &mut oracle_result,
                Verdict::TooLarge,
                format!("{e:#}"),
            );
        }
        Err(e) => {
            oracle_result.verdict = Verdict::RuntimeRejected;
            oracle_result.message = Some(format!("oracle: {e:#}"));
            subject.expected = Ok(stored_expectations(&set.outputs));
        }
    }
    (subject, oracle_result)
}

/// The graph's inputs that are fed (those without an initializer), in order.
fn declared_inputs(graph: &tract_onnx::pb::GraphProto) -> Vec<&tract_onnx::pb::ValueInfoProto> {
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_str()))
        .collect()
}

/// A stored case that nothing can run: the oracle's result and every converter's get the
/// same verdict and message.
fn refuse(subject: &mut Subject, oracle_result: &mut CaseResult, verdict: Verdict, msg: String) {
    oracle_result.verdict = verdict;
    oracle_result.message = Some(msg.clone());
    subject.expected = Err((verdict, msg));
}

/// The oracle's own check: the stored outputs come from some f32 implementation, so they must
/// sit within the oracle's bound, exactly like a runtime's. Golden float64 tensors (corpus) are
/// checked at float32 precision here; the corpus tests check them against the oracle exactly.
fn check_stored_outputs(oracle_result: &mut CaseResult, golden: &[Expected], stored: &[Tensor]) {
    let as_f32: Vec<Tensor> = stored
        .iter()
        .map(|t| match t {
            Tensor::F64(a) => Tensor::F32(a.mapv(|v| v as f32)),
            t => t.clone(),
        })
        .collect();
    let c = compare(golden, &as_f32, Precision::F32, Tolerance::default());
    oracle_result.verdict = c.verdict;
    oracle_result.message = c.message;
    oracle_result.max_abs_err = Some(c.stats.max_abs_err);
    oracle_result.worst_ratio = Some(c.stats.worst_ratio);
}

/// The stored outputs as expectations, with no error bound.
fn stored_expectations(stored: &[Tensor]) -> Vec<Expected> {
    stored
        .iter()
        .map(|t| Expected {
            value: t.to_f64(),
            bound: None,
            dtype: match t.dtype() {
                DType::Double => DType::Float,
                d => d,
            },
        })
        .collect()
}

/// Converters are judged against the stored outputs, with the oracle's bounds where the
/// shapes agree.
fn stored_with_bounds(stored: &[Tensor], golden: &[Expected]) -> Vec<Expected> {
    stored_expectations(stored)
        .into_iter()
        .zip(golden)
        .map(|(mut s, g)| {
            if g.bound
                .as_ref()
                .is_some_and(|b| b.shape() == s.value.shape())
            {
                s.bound = g.bound.clone();
            }
            s
        })
        .collect()
}

/// Whether an oracle failure is the resource limits refusing the case.
fn too_large(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<crate::oracle::OracleError>(),
        Some(crate::oracle::OracleError::TooLarge(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::{value_info, Dim};
    use tract_onnx::pb;

    /// `y = x · x · x` on one element.
    fn cube() -> pb::ModelProto {
        let mul = |a: &str, b: &str, y: &str| pb::NodeProto {
            op_type: "Mul".into(),
            input: vec![a.into(), b.into()],
            output: vec![y.into()],
            ..Default::default()
        };
        pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(pb::GraphProto {
                node: vec![mul("x", "x", "x2"), mul("x2", "x", "y")],
                input: vec![value_info("x", DType::Float, &[Dim::Fixed(1)])],
                output: vec![value_info("y", DType::Float, &[Dim::Fixed(1)])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn input(x: f32) -> Vec<Named> {
        vec![Named {
            name: "x".into(),
            tensor: Tensor::f32(&[1], vec![x]).unwrap(),
        }]
    }

    #[test]
    fn a_generated_case_whose_exact_values_leave_the_float32_range_is_too_large() {
        // 1e13 cubed is 1e39, beyond float32's 3.4e38, though the square (1e26) is not.
        let err = generated_expected(&cube(), &input(1e13)).unwrap_err();
        assert_eq!(err.0, Verdict::TooLarge, "{err:?}");
        assert!(
            err.1.contains("'y'") && err.1.contains("float32 range"),
            "{}",
            err.1
        );
        // Within the range, the golden output and its bound.
        let ok = generated_expected(&cube(), &input(1e12)).unwrap();
        assert_eq!(ok[0].value[[0]], f64::from(1e12f32).powi(3));
    }
}
