//! From failure to repro: the first diverging node, reduction to a minimal failing model, and
//! the repro bundle.
//!
//! * **First diverging node.** Every prefix of the model (the nodes one tensor needs) is
//!   converted and run on its own, with that tensor as the only output, and compared with the
//!   oracle's value and bound for it. The first prefix that fails names the node. That node is
//!   then run alone on its golden inputs: failing alone means the node itself is wrong; passing
//!   alone means it is wrong only together with what comes before it (an optimizer rewrite or a
//!   fusion across nodes). No output is added to the model under test, so nothing about what is
//!   tested changes.
//! * **Reduction.** A generated case is shrunk with proptest's own shrinking of its value tree
//!   (fewer layers, fewer channels, shorter input, smaller kernels, simpler attributes), keeping
//!   each step only while it fails the same way: same verdict and, for mismatches, the same op
//!   as first diverging node. Other models are cut to the failing node alone, or to the prefix
//!   that ends at it. The reduced case is run again before it is reported.
//! * **Bundle.** An ONNX test-case directory with the reduced model, its inputs, golden outputs,
//!   the converter's output where it is ONNX, and `meta.json` with the command that reproduces
//!   the failure through `--onnx-tests`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use tract_onnx::pb;

use super::{case_subject, oracle_expected, Runner, Subject};
use crate::compare::{Expected, Tolerance};
use crate::gen::{self, GenConfig};
use crate::onnx::{proto, slice, testcase};
use crate::oracle::{self, Value};
use crate::results::{Attribute, CaseResult, Origin, Reduction, Verdict};
use crate::tensor::{DType, Named, Tensor};

/// Where a failing model first goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Index of the node in the graph.
    pub index: usize,
    /// Node name.
    pub node: String,
    /// Operator.
    pub op: String,
    /// Verdict of the prefix that ends at this node.
    pub verdict: Verdict,
    /// Message of that prefix's comparison.
    pub message: Option<String>,
    /// Whether the node fails when run alone on its golden inputs: `Some(false)` means it fails
    /// only together with the nodes before it.
    pub alone: Option<bool>,
}

/// A model cut from a failing one, to run on its own; judged with `tolerance` (the original
/// case's own policy) refining the run's.
fn subject(
    id: &str,
    model: &pb::ModelProto,
    inputs: Vec<Named>,
    expected: Vec<Expected>,
    tolerance: Option<Tolerance>,
) -> Subject {
    Subject {
        id: id.into(),
        origin: Origin::Derived,
        seed: None,
        model: proto::encode_model(model),
        inputs,
        expected: Ok(expected),
        ops: vec![],
        classes: vec![],
        negative: None,
        tolerance,
    }
}

/// Runs the prefixes of `model` through `converter` and finds the first that fails.
pub fn first_divergence(
    runner: &Runner,
    converter: &str,
    model: &pb::ModelProto,
    inputs: &[Named],
) -> Result<Option<Divergence>> {
    let (_, values) =
        oracle::evaluate_all(model, inputs).context("the oracle cannot evaluate the model")?;
    let graph = model.graph.as_ref().context("the model has no graph")?;
    for k in reading_inputs(graph) {
        let node = &graph.node[k];
        let Some(out) = node.output.first().filter(|o| !o.is_empty()) else {
            continue;
        };
        let Some(Value::Float { value, bound }) = values.get(out) else {
            continue;
        };
        let prefix = slice::prefix(model, out)?;
        let expected = vec![Expected {
            value: value.clone(),
            bound: Some(bound.clone()),
            // A quantized integer (held as a float by the oracle) is compared as the integer
            // type the runtime returns.
            dtype: slice::integer_type(graph, out)
                .unwrap_or_else(|| crate::onnx::proto::float_type(model)),
        }];
        let Some(r) = runner.run_with(
            &subject("prefix", &prefix, inputs.to_vec(), expected, None),
            converter,
        ) else {
            anyhow::bail!("no converter '{converter}' in this run");
        };
        if r.verdict == Verdict::Pass {
            continue;
        }
        let alone = fails_alone(runner, converter, model, k, &values).ok();
        return Ok(Some(Divergence {
            index: k,
            node: node.name.clone(),
            op: diverging_op(graph, node, alone),
            verdict: r.verdict,
            message: r.message,
            alone,
        }));
    }
    Ok(None)
}

/// The nodes (indices, in order) that read a graph input, directly or through other nodes. A
/// node computed from initializers alone (a weight's DequantizeLinear) is a constant: its
/// prefix has no input to run on and tests nothing a converter does with the data.
fn reading_inputs(graph: &pb::GraphProto) -> Vec<usize> {
    let mut computed: std::collections::HashSet<&str> = graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|i| graph.initializer.iter().all(|t| t.name != *i))
        .collect();
    let mut nodes = Vec::new();
    for (k, node) in graph.node.iter().enumerate() {
        if node.input.iter().any(|i| computed.contains(i.as_str())) {
            computed.extend(node.output.iter().map(String::as_str));
            nodes.push(k);
        }
    }
    nodes
}

/// The op a divergence is named by. A QuantizeLinear that is right alone but wrong after the
/// node before it is where a runtime's fused quantized kernel shows (every layer of a QDQ model
/// ends in one, and the float prefix up to it passes): named after the fusion, `Softmax+
/// QuantizeLinear`, so that different fused kernels are different failures.
fn diverging_op(graph: &pb::GraphProto, node: &pb::NodeProto, alone: Option<bool>) -> String {
    if node.op_type != "QuantizeLinear" || alone != Some(false) {
        return node.op_type.clone();
    }
    let producer = node
        .input
        .first()
        .and_then(|x| graph.node.iter().find(|n| n.output.iter().any(|o| o == x)));
    match producer {
        Some(p) => format!("{}+QuantizeLinear", p.op_type),
        None => node.op_type.clone(),
    }
}

/// Golden values as the tensors a runtime is fed: floats rounded to the model's float type,
/// quantized integers (held as floats by the oracle) in their integer type.
fn as_tensors(
    graph: &pb::GraphProto,
    values: &HashMap<String, Value>,
    float: DType,
) -> HashMap<String, Tensor> {
    values
        .iter()
        .map(|(k, v)| {
            let t = match (v, slice::integer_type(graph, k)) {
                (Value::Float { value, .. }, Some(integer)) => Expected {
                    value: value.clone(),
                    bound: None,
                    dtype: integer,
                }
                .to_tensor(),
                (Value::Float { value, .. }, None) => Tensor::from_f64(float, value)
                    .unwrap_or_else(|| Tensor::F32(value.mapv(|x| x as f32))),
                (Value::Int(a), _) => Tensor::I64(a.clone()),
            };
            (k.clone(), t)
        })
        .collect()
}

fn fails_alone(
    runner: &Runner,
    converter: &str,
    model: &pb::ModelProto,
    index: usize,
    values: &HashMap<String, Value>,
) -> Result<bool> {
    let float = crate::onnx::proto::float_type(model);
    let graph = model.graph.as_ref().context("the model has no graph")?;
    let (single, feeds) = slice::single_node(model, index, &as_tensors(graph, values, float))?;
    let expected = oracle_expected(&single, &feeds)?;
    let r = runner
        .run_with(&subject("alone", &single, feeds, expected, None), converter)
        .context("converter")?;
    Ok(r.verdict != Verdict::Pass)
}

/// What "failing the same way" means.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// The verdict.
    pub verdict: Verdict,
    /// For mismatches, the op of the first diverging node.
    pub op: Option<String>,
}

/// A reduced failure.
#[derive(Debug, Clone)]
pub struct Reduced {
    /// The model.
    pub model: pb::ModelProto,
    /// Its inputs.
    pub inputs: Vec<Named>,
    /// Golden outputs.
    pub expected: Vec<Expected>,
    /// The result of the converter on it.
    pub result: CaseResult,
    /// Its first diverging node.
    pub divergence: Option<Divergence>,
    /// The description, for generated cases.
    pub desc: Option<gen::Case>,
    /// Coverage classes of the reduced description (generated cases; the graph cut that may
    /// follow shrinking only drops nodes after the first diverging node). Empty otherwise.
    pub classes: Vec<String>,
    /// Whether reduction made it smaller and it still fails the same way.
    pub status: &'static str,
    /// Shrinking steps tried.
    pub steps: usize,
}

impl Reduced {
    /// What this reduction found, as a result records it and the ledger matches it; `case` is
    /// the failure that was reduced.
    pub fn evidence(&self, case: &str) -> Reduction {
        let node = self
            .divergence
            .as_ref()
            .and_then(|d| self.model.graph.as_ref().and_then(|g| g.node.get(d.index)));
        Reduction {
            case: case.into(),
            op: self.divergence.as_ref().map(|d| d.op.clone()),
            attributes: node.map(attributes).unwrap_or_default(),
            alone: self.divergence.as_ref().and_then(|d| d.alone),
            classes: self.classes.clone(),
        }
    }
}

/// A node's attributes that have a plain value (numbers, strings and lists of them).
fn attributes(node: &pb::NodeProto) -> BTreeMap<String, Attribute> {
    use pb::attribute_proto::AttributeType as T;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    node.attribute
        .iter()
        .filter_map(|a| {
            let value = match T::try_from(a.r#type).ok()? {
                T::Int => Attribute::Int(a.i),
                T::Float => Attribute::Float(f64::from(a.f)),
                T::String => Attribute::Text(text(&a.s)),
                T::Ints => Attribute::Ints(a.ints.clone()),
                T::Floats => Attribute::Floats(a.floats.iter().map(|&f| f64::from(f)).collect()),
                T::Strings => Attribute::Texts(a.strings.iter().map(|b| text(b)).collect()),
                _ => return None,
            };
            Some((a.name.clone(), value))
        })
        .collect()
}

/// The signature of a result: its verdict, and for mismatches the first diverging op.
pub fn signature_of(
    runner: &Runner,
    converter: &str,
    model: &pb::ModelProto,
    inputs: &[Named],
    r: &CaseResult,
) -> (Signature, Option<Divergence>) {
    let divergence = if r.verdict == Verdict::Mismatch || r.verdict == Verdict::NonFinite {
        first_divergence(runner, converter, model, inputs)
            .ok()
            .flatten()
    } else {
        None
    };
    (
        Signature {
            verdict: r.verdict,
            op: divergence.as_ref().map(|d| d.op.clone()),
        },
        divergence,
    )
}

/// A case that failed: its result, model, golden outputs, divergence and signature.
type Checked = (
    CaseResult,
    pb::ModelProto,
    Vec<Expected>,
    Option<Divergence>,
    Signature,
);

/// Shrinks generated case `index` of `base`, failing with `converter`, within `budget`.
pub fn reduce_generated(
    runner: &Runner,
    converter: &str,
    base: u64,
    index: u64,
    cfg: &GenConfig,
    budget: Duration,
) -> Result<Reduced> {
    let deadline = Instant::now() + budget;
    let original = super::quantize::generated_case(base, index, cfg);
    let check = |case: &gen::Case, want: Option<&Signature>| -> Option<Checked> {
        let s = case_subject(case);
        let expected = s.expected.clone().ok()?;
        let r = runner.run_with(&s, converter)?;
        if r.verdict == Verdict::Pass || want.is_some_and(|w| w.verdict != r.verdict) {
            return None;
        }
        let model = proto::decode_model(&s.model).ok()?;
        let (sig, divergence) = signature_of(runner, converter, &model, &s.inputs, &r);
        if want.is_some_and(|w| *w != sig) {
            return None;
        }
        Some((r, model, expected, divergence, sig))
    };
    let (r, model, expected, divergence, target) =
        check(&original, None).context("the case does not fail when run again")?;
    let mut best = (original.clone(), r, model, expected, divergence);
    let mut tree = gen::tree(base, index, cfg);
    let mut steps = 0;
    let mut improved = false;
    if tree.simplify() {
        while Instant::now() < deadline && steps < 2000 {
            steps += 1;
            let (m, input) = tree.current();
            let case = super::quantize::prepared(gen::case_from(base, index, m, input), cfg);
            // A negative case stays negative in the same way; a valid one stays valid.
            let valid = case.model.negative == original.model.negative
                && (case.model.negative.is_some() || case.model.shapes().is_ok());
            match valid.then(|| check(&case, Some(&target))).flatten() {
                Some((r, model, expected, divergence, _)) => {
                    best = (case, r, model, expected, divergence);
                    improved = true;
                    if !tree.simplify() {
                        break;
                    }
                }
                None => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    let (case, result, model, expected, divergence) = best;
    let inputs = case.inputs();
    let classes = case.model.classes();
    // Shrinking works on the description; a graph cut at the first diverging node can still
    // drop nodes after it (a head that only reads the wrong values).
    if let Ok(cut) = reduce_model(runner, converter, &model, &inputs, &expected, None, &result) {
        let nodes = |m: &pb::ModelProto| m.graph.as_ref().map_or(0, |g| g.node.len());
        if cut.status == "reduced" && nodes(&cut.model) < nodes(&model) {
            return Ok(Reduced {
                desc: None,
                classes,
                steps: steps + cut.steps,
                ..cut
            });
        }
    }
    Ok(Reduced {
        model,
        inputs,
        expected,
        result,
        divergence,
        desc: Some(case),
        classes,
        status: if improved { "reduced" } else { "not reducible" },
        steps,
    })
}

/// Cuts an arbitrary failing model to its first diverging node: that node alone on its golden
/// inputs when it fails alone, else the prefix that ends at it. Keeps the model as it is when
/// the cut does not fail the same way.
///
/// `tolerance` is the failing case's own policy, so the cut is judged as the case was.
pub fn reduce_model(
    runner: &Runner,
    converter: &str,
    model: &pb::ModelProto,
    inputs: &[Named],
    expected: &[Expected],
    tolerance: Option<Tolerance>,
    r: &CaseResult,
) -> Result<Reduced> {
    let (sig, divergence) = signature_of(runner, converter, model, inputs, r);
    let keep = || Reduced {
        model: model.clone(),
        inputs: inputs.to_vec(),
        expected: expected.to_vec(),
        result: r.clone(),
        divergence: divergence.clone(),
        desc: None,
        classes: vec![],
        status: "not reducible",
        steps: 0,
    };
    let Some(d) = divergence.clone() else {
        return Ok(keep());
    };
    let (_, values) = oracle::evaluate_all(model, inputs)?;
    let (cut, feeds) = if d.alone == Some(true) {
        slice::single_node(
            model,
            d.index,
            &as_tensors(
                model.graph.as_ref().context("graph")?,
                &values,
                crate::onnx::proto::float_type(model),
            ),
        )?
    } else {
        let out = model.graph.as_ref().context("graph")?.node[d.index].output[0].clone();
        (slice::prefix(model, &out)?, inputs.to_vec())
    };
    let cut_expected = oracle_expected(&cut, &feeds)?;
    let s = subject(
        &r.case,
        &cut,
        feeds.clone(),
        cut_expected.clone(),
        tolerance,
    );
    let Some(cut_result) = runner.run_with(&s, converter) else {
        return Ok(keep());
    };
    let (cut_sig, cut_div) = signature_of(runner, converter, &cut, &feeds, &cut_result);
    if cut_sig != sig {
        return Ok(Reduced {
            status: "reduction failed",
            ..keep()
        });
    }
    Ok(Reduced {
        model: cut,
        inputs: feeds,
        expected: cut_expected,
        result: cut_result,
        divergence: cut_div,
        desc: None,
        classes: vec![],
        status: "reduced",
        steps: 1,
    })
}

/// A name safe for a directory.
pub fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .chars()
        .take(80)
        .collect()
}

/// Writes the repro bundle of `reduced` into `dir`.
pub fn write_bundle(
    dir: &Path,
    reduced: &Reduced,
    original: &CaseResult,
    meta_extra: serde_json::Value,
    converted: Option<Vec<u8>>,
) -> Result<PathBuf> {
    let set = testcase::DataSet {
        inputs: reduced.inputs.iter().map(|n| n.tensor.clone()).collect(),
        outputs: reduced.expected.iter().map(Expected::to_tensor).collect(),
    };
    let r = &reduced.result;
    let mut meta = serde_json::json!({
        "case": original.case,
        "seed": original.seed,
        "converter": original.converter,
        "runtime": original.runtime,
        "verdict": r.verdict,
        "original_verdict": original.verdict,
        "message": r.message,
        "max_abs_err": r.max_abs_err,
        "max_rel_err": r.max_rel_err,
        "max_ulp": r.max_ulp,
        "worst_ratio": r.worst_ratio,
        "precision": r.precision,
        "first_diverging_node": reduced.divergence,
        "reduction": {
            "status": reduced.status,
            "steps": reduced.steps,
            "nodes": reduced.model.graph.as_ref().map_or(0, |g| g.node.len()),
        },
        "found": reduced.evidence(&original.case),
        "model_description": reduced.desc.as_ref().map(|c| &c.model),
        "input_distribution": reduced.desc.as_ref().map(|c| c.input),
    });
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), meta_extra.as_object()) {
        m.extend(extra.clone());
    }
    testcase::write_single(dir, &reduced.model, set, Some(&meta))?;
    if let Some(bytes) = converted {
        crate::fsutil::write_atomically(&dir.join("converted.onnx"), &bytes)?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn prefixes_are_cut_only_at_nodes_that_read_the_input() {
        let tensor = |name: &str| pb::TensorProto {
            name: name.into(),
            ..Default::default()
        };
        let value = |name: &str| pb::ValueInfoProto {
            name: name.into(),
            ..Default::default()
        };
        let graph = pb::GraphProto {
            // `w` is an initializer listed among the inputs too, as older exporters write it.
            input: vec![value("x"), value("w")],
            initializer: vec![tensor("w"), tensor("s")],
            node: vec![
                node("DequantizeLinear", &["w", "s"], "w_f"),
                node("Conv", &["x", "w_f"], "y"),
                node("Mul", &["s", "s"], "s2"),
                node("Add", &["y", "s2"], "z"),
            ],
            ..Default::default()
        };
        // The weight's DequantizeLinear and the product of two constants are not prefixes.
        assert_eq!(reading_inputs(&graph), vec![1, 3]);
    }
}
