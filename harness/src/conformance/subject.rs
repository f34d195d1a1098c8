//! The subjects a run puts to the converters: generated cases, and data sets of test-case
//! directories (with the oracle's own check of their stored outputs).

use anyhow::{Context as _, Result};

use super::Subject;
use crate::compare::{compare, Expected, Tolerance, Verdict};
use crate::gen::{self, GenConfig};
use crate::onnx::{emit, proto, testcase};
use crate::oracle;
use crate::report::CaseResult;
use crate::runtime::Precision;
use crate::tensor::{DType, Named};

pub(super) fn error_result(
    case: &str,
    converter: &str,
    runtime: &str,
    message: String,
) -> CaseResult {
    CaseResult {
        case: case.into(),
        seed: None,
        converter: converter.into(),
        runtime: runtime.into(),
        verdict: Verdict::Error,
        ops: vec![],
        classes: vec![],
        max_abs_err: None,
        max_rel_err: None,
        max_ulp: None,
        count_over: None,
        worst_ratio: None,
        tolerance: "none".into(),
        precision: None,
        latency_us: None,
        message: Some(message),
        repro: None,
        wall_ms: 0.0,
        expected: None,
    }
}

/// The base seed and index of a generated case id `s{base}-i{index}`.
pub fn parse_generated_id(id: &str) -> Option<(u64, u64)> {
    let (base, index) = id.strip_prefix('s')?.split_once("-i")?;
    Some((base.parse().ok()?, index.parse().ok()?))
}

/// Golden outputs of a model from the oracle, as expectations.
pub fn oracle_expected(
    model: &tract_onnx::pb::ModelProto,
    inputs: &[Named],
) -> Result<Vec<Expected>> {
    let eval = oracle::evaluate(model, inputs)?;
    Ok(eval
        .outputs
        .into_iter()
        .map(|o| Expected {
            value: o.value,
            bound: Some(o.bound),
            dtype: o.dtype,
        })
        .collect())
}

/// The subject of generated case `index` of base seed `seed`.
pub fn generated_subject(seed: u64, index: u64, cfg: &GenConfig) -> Subject {
    case_subject(&gen::generate(seed, index, cfg))
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
            let expected = oracle_expected(&proto, &inputs).map_err(|e| {
                if too_large(&e) {
                    (Verdict::TooLarge, format!("{e:#}"))
                } else {
                    (
                        Verdict::Error,
                        format!("oracle failed on a generated model: {e:#}"),
                    )
                }
            });
            (proto::encode_model(&proto), expected)
        }
        Err(e) => (
            Vec::new(),
            Err((Verdict::Error, format!("generated an invalid model: {e:#}"))),
        ),
    };
    Subject {
        id: case.id.clone(),
        seed: Some(case.seed),
        model,
        inputs,
        expected,
        ops,
        classes,
    }
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
    model_bytes: &[u8],
    set: &testcase::DataSet,
) -> (Subject, CaseResult) {
    let mut oracle_result = error_result(id, "oracle", "f64", String::new());
    oracle_result.tolerance = "bound".into();
    let model = match proto::decode_model(model_bytes).context("model.onnx") {
        Ok(m) => m,
        Err(e) => {
            let msg = format!("{e:#}");
            oracle_result.message = Some(msg.clone());
            let subject = Subject {
                id: id.into(),
                seed: None,
                model: model_bytes.to_vec(),
                inputs: vec![],
                expected: Err((Verdict::Error, msg)),
                ops: vec![],
                classes: vec![],
            };
            return (subject, oracle_result);
        }
    };
    let graph = model.graph.clone().unwrap_or_default();
    let mut ops: Vec<String> = Vec::new();
    for n in &graph.node {
        if !ops.contains(&n.op_type) {
            ops.push(n.op_type.clone());
        }
    }
    oracle_result.ops = ops.clone();
    let initializers: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let input_names: Vec<String> = graph
        .input
        .iter()
        .map(|i| i.name.clone())
        .filter(|n| !initializers.contains(n.as_str()))
        .collect();
    let inputs: Vec<Named> = set
        .inputs
        .iter()
        .enumerate()
        .map(|(j, t)| Named {
            name: input_names
                .get(j)
                .cloned()
                .unwrap_or_else(|| format!("input_{j}")),
            tensor: t.clone(),
        })
        .collect();
    if let Err(problem) = check_inputs(
        graph
            .input
            .iter()
            .filter(|i| !initializers.contains(i.name.as_str())),
        &inputs,
    ) {
        let msg = format!("test data does not fit the model: {problem}");
        oracle_result.verdict = Verdict::Error;
        oracle_result.message = Some(msg.clone());
        let subject = Subject {
            id: id.into(),
            seed: None,
            model: model_bytes.to_vec(),
            inputs,
            expected: Err((Verdict::Error, msg)),
            ops,
            classes: vec![],
        };
        return (subject, oracle_result);
    }
    let oracle = oracle_expected(&model, &inputs);
    let stored: Vec<Expected> = set
        .outputs
        .iter()
        .map(|t| Expected {
            value: t.to_f64(),
            bound: None,
            dtype: match t.dtype() {
                DType::Double => DType::Float,
                d => d,
            },
        })
        .collect();
    let expected = match &oracle {
        Ok(golden) => {
            // The stored outputs come from some f32 implementation: they must sit within the
            // oracle's bound, exactly like a runtime's.
            // Golden float64 tensors (corpus) are checked at float32 precision here; the
            // corpus tests check them against the oracle exactly.
            let as_tensors: Vec<crate::tensor::Tensor> = set
                .outputs
                .iter()
                .map(|t| match t {
                    crate::tensor::Tensor::F64(a) => {
                        crate::tensor::Tensor::F32(a.mapv(|v| v as f32))
                    }
                    t => t.clone(),
                })
                .collect();
            let c = compare(golden, &as_tensors, Precision::F32, Tolerance::default());
            oracle_result.verdict = c.verdict;
            oracle_result.message = c.message;
            oracle_result.max_abs_err = Some(c.stats.max_abs_err);
            oracle_result.worst_ratio = Some(c.stats.worst_ratio);
            // Judge converters against the stored outputs, with the oracle's bounds where shapes agree.
            stored
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
        Err(e) if too_large(e) => {
            // Over the resource limits: nothing else runs this case.
            let msg = format!("{e:#}");
            oracle_result.verdict = Verdict::TooLarge;
            oracle_result.message = Some(msg.clone());
            let subject = Subject {
                id: id.into(),
                seed: None,
                model: model_bytes.to_vec(),
                inputs,
                expected: Err((Verdict::TooLarge, msg)),
                ops,
                classes: vec![],
            };
            return (subject, oracle_result);
        }
        Err(e) => {
            oracle_result.verdict = Verdict::RuntimeRejected;
            oracle_result.message = Some(format!("oracle: {e:#}"));
            stored
        }
    };
    let subject = Subject {
        id: id.into(),
        seed: None,
        model: model_bytes.to_vec(),
        inputs,
        expected: Ok(expected),
        ops,
        classes: vec![],
    };
    (subject, oracle_result)
}

/// Whether an oracle failure is the resource limits refusing the case.
fn too_large(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<crate::oracle::OracleError>(),
        Some(crate::oracle::OracleError::TooLarge(_))
    )
}
