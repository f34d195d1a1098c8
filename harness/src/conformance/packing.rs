//! Packed runs: generated cases of one opset merged into one model (`onnx::pack`), converted,
//! compiled and run once, their outputs split back and judged case by case.
//!
//! Packing is how a run pays a converter's fixed cost per model (OpenVINO's convert and
//! compile) once for several cases; it is not visible in what the run reports. A pack that is
//! refused, crashes or times out is split in two until each part converts and runs, down to
//! cases run alone. Every case that does not pass in its pack is run again alone, and that
//! result stands, so verdicts, messages, reduction and bundles are those of the case alone;
//! where the verdict in the pack differed, the result says so in `in_pack`
//! (docs/RELIABILITY.md). Passing results of a pack carry no latency (the pack was timed, not
//! the case).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::{scratch_dir, Runner, Subject};
use crate::convert::{Artifact, Converter};
use crate::isolate;
use crate::onnx::{pack, proto};
use crate::results::{CaseResult, Verdict};
use crate::tensor::{Named, Tensor};

/// Generated cases per window: the cases grouped by opset into packs together. Cases are
/// drawn over a dozen opsets, so a window many packs wide gives packs of the full size.
const WINDOW_PACKS: usize = 16;

/// One unit of parallel work: converter `converter` on the subjects at `members`.
struct Job {
    converter: usize,
    members: Vec<usize>,
}

impl Runner {
    /// The pack size of a converter in this run: `--pack`, else the converter's own.
    pub(super) fn pack_size(&self, converter: &dyn Converter) -> usize {
        self.options.pack.unwrap_or_else(|| converter.pack()).max(1)
    }

    /// Whether any converter of this run packs.
    pub(super) fn packs(&self) -> bool {
        self.converters
            .iter()
            .any(|c| self.pack_size(c.as_ref()) > 1)
    }

    /// Results of the generated cases at `indices`, converters packing as they do, in the
    /// order of an unpacked run (case by case, converters in the order given).
    pub(super) fn run_generated_packed(
        &self,
        indices: &[u64],
        stopped: &(dyn Fn() -> bool + Sync),
        stop: &AtomicBool,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Vec<CaseResult> {
        let widest = self
            .converters
            .iter()
            .map(|c| self.pack_size(c.as_ref()))
            .max()
            .unwrap_or(1);
        let done = AtomicUsize::new(0);
        let mut results = Vec::new();
        for window in indices.chunks(widest * WINDOW_PACKS) {
            if stopped() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            // An index can make two subjects (a float case and its quantized form); `owner`
            // is the window position each subject came from.
            let (owner, subjects): (Vec<usize>, Vec<Subject>) = window
                .par_iter()
                .map(|&i| super::generated_subjects(self.options.seed, i, &self.options.gen))
                .collect::<Vec<_>>()
                .into_iter()
                .enumerate()
                .flat_map(|(position, of_case)| of_case.into_iter().map(move |s| (position, s)))
                .unzip();
            // Results still to come per window position; a case is done at 0.
            let per_case = self.converters.len();
            let pending: Vec<AtomicUsize> = (0..window.len())
                .map(|position| {
                    AtomicUsize::new(per_case * owner.iter().filter(|&&o| o == position).count())
                })
                .collect();
            let jobs = self.jobs(&subjects);
            let finished: Vec<(usize, Vec<(usize, CaseResult)>)> = jobs
                .par_iter()
                .map(|job| {
                    if stopped() {
                        stop.store(true, Ordering::Relaxed);
                        return (job.converter, Vec::new());
                    }
                    let converter = self.converters[job.converter].as_ref();
                    let members: Vec<&Subject> =
                        job.members.iter().map(|&m| &subjects[m]).collect();
                    let out = self.run_pack(&members, converter);
                    self.tally.count(&out, &self.ledger);
                    // Progress counts cases: a case is done once all its subjects are, on
                    // every converter.
                    for (&m, _) in job.members.iter().zip(&out) {
                        if pending[owner[m]].fetch_sub(1, Ordering::Relaxed) == 1 {
                            progress(done.fetch_add(1, Ordering::Relaxed) + 1, indices.len());
                        }
                    }
                    (
                        job.converter,
                        job.members.iter().copied().zip(out).collect(),
                    )
                })
                .collect();
            let mut table: BTreeMap<(usize, usize), CaseResult> = BTreeMap::new();
            for (converter, out) in finished {
                for (member, r) in out {
                    table.insert((member, converter), r);
                }
            }
            // A case whose every subject finished on every converter is logged as done.
            for (position, &index) in window.iter().enumerate() {
                if pending[position].load(Ordering::Relaxed) == 0 {
                    let of_case: Vec<CaseResult> = table
                        .iter()
                        .filter(|((m, _), _)| owner[*m] == position)
                        .map(|(_, r)| r.clone())
                        .collect();
                    self.log_unit(&super::journal::generated_unit(index), &of_case);
                }
            }
            results.extend(table.into_values());
        }
        results
    }

    /// The jobs of a window: per converter, its packs (subjects of one opset, at most its
    /// pack size), and the subjects that are not packed (negative cases, cases without
    /// expected outputs, models that do not decode) one by one.
    fn jobs(&self, subjects: &[Subject]) -> Vec<Job> {
        let mut jobs = Vec::new();
        for (converter, c) in self.converters.iter().enumerate() {
            let size = self.pack_size(c.as_ref());
            let mut by_opset: BTreeMap<PackKey, Vec<usize>> = BTreeMap::new();
            for (m, s) in subjects.iter().enumerate() {
                match pack_key(s) {
                    Some(key) if size > 1 => by_opset.entry(key).or_default().push(m),
                    _ => jobs.push(Job {
                        converter,
                        members: vec![m],
                    }),
                }
            }
            for members in by_opset.into_values() {
                for chunk in members.chunks(size) {
                    jobs.push(Job {
                        converter,
                        members: chunk.to_vec(),
                    });
                }
            }
        }
        jobs
    }

    /// Results of `converter` on `subjects` packed into one model, in their order.
    fn run_pack(&self, subjects: &[&Subject], converter: &dyn Converter) -> Vec<CaseResult> {
        if subjects.len() == 1 || isolate::interrupted() {
            return subjects
                .iter()
                .map(|s| self.timed_one(s, converter))
                .collect();
        }
        let start = Instant::now();
        let (precision, outputs) = match self.run_merged(subjects, converter) {
            Ok(done) => done,
            // The converter's message names one member's node (`p3_conv_4`): that member
            // runs alone, the others stay packed.
            Err(Some(message)) if named_member(&message, subjects.len()).is_some() => {
                let k = named_member(&message, subjects.len()).unwrap_or_default();
                let others: Vec<&Subject> = subjects
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != k)
                    .map(|(_, s)| *s)
                    .collect();
                let mut results: Vec<Option<CaseResult>> = vec![None; subjects.len()];
                results[k] = Some(self.timed_one(subjects[k], converter));
                let mut rest = self.run_pack(&others, converter).into_iter();
                for (i, slot) in results.iter_mut().enumerate() {
                    if i != k {
                        *slot = rest.next();
                    }
                }
                return results.into_iter().flatten().collect();
            }
            Err(_) => {
                let (left, right) = subjects.split_at(subjects.len() / 2);
                let mut results = self.run_pack(left, converter);
                results.extend(self.run_pack(right, converter));
                return results;
            }
        };
        let share = start.elapsed().as_secs_f64() * 1e3 / subjects.len() as f64;
        subjects
            .iter()
            .zip(outputs)
            .map(|(s, outputs)| {
                let mut r = self.unjudged(s, converter);
                if let Ok(expected) = &s.expected {
                    self.conclude(&mut r, s, expected, converter, precision, &outputs);
                    self.check_drift(&mut r, s, expected, converter);
                }
                r.wall_ms = share;
                if r.verdict == Verdict::Pass {
                    return r;
                }
                let mut alone = self.timed_one(s, converter);
                if alone.verdict != r.verdict {
                    alone.in_pack = Some(format!(
                        "{}: {}",
                        r.verdict.name(),
                        r.message.as_deref().unwrap_or_default()
                    ));
                }
                alone
            })
            .collect()
    }

    /// One subject alone, with its wall time.
    fn timed_one(&self, s: &Subject, converter: &dyn Converter) -> CaseResult {
        let start = Instant::now();
        let mut r = self.run_one(s, converter);
        r.wall_ms = start.elapsed().as_secs_f64() * 1e3;
        r
    }

    /// Converts and runs the subjects merged into one model: the precision and each
    /// subject's outputs, or, when the pack cannot be made, converted or run (it is then
    /// split), the converter's or runtime's message if there is one.
    #[allow(clippy::type_complexity)]
    fn run_merged(
        &self,
        subjects: &[&Subject],
        converter: &dyn Converter,
    ) -> Result<(crate::runtime::Precision, Vec<Vec<Tensor>>), Option<String>> {
        let models = subjects
            .iter()
            .map(|s| proto::decode_model(&s.model).ok())
            .collect::<Option<Vec<_>>>()
            .ok_or(None)?;
        let merged = pack::merge(&models).map_err(|_| None)?;
        let inputs: Vec<Named> = subjects
            .iter()
            .enumerate()
            .flat_map(|(k, s)| {
                s.inputs.iter().map(move |n| Named {
                    name: format!("{}{}", pack::prefix(k), n.name),
                    tensor: n.tensor.clone(),
                })
            })
            .collect();
        let work = scratch_dir(converter).map_err(Some)?;
        let work_dir = work.as_ref().map(|w| w.path()).unwrap_or(Path::new("."));
        let model = proto::encode_model(&merged.model);
        let artifact: Artifact = self
            .convert(&model, converter, work_dir)
            .map_err(|(_, m)| Some(m))?;
        let (precision, mut outputs, _) = self
            .execute(artifact, inputs, 0)
            .map_err(|(_, m)| Some(m))?;
        let total = merged.outputs.last().map_or(0, |r| r.end);
        if outputs.len() != total {
            return Err(None);
        }
        let mut split = Vec::with_capacity(subjects.len());
        for range in merged.outputs.iter().rev() {
            split.push(outputs.split_off(range.start));
        }
        split.reverse();
        Ok((precision, split))
    }
}

/// The one member of a pack of `members` whose names (`p3_…`) a message mentions, if exactly
/// one is.
fn named_member(message: &str, members: usize) -> Option<usize> {
    let mut named = (0..members).filter(|&k| {
        let prefix = pack::prefix(k);
        message.match_indices(&prefix).any(|(at, _)| {
            message[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() && c != '_')
        })
    });
    match (named.next(), named.next()) {
        (Some(k), None) => Some(k),
        _ => None,
    }
}

/// What packs are grouped by: whether the model is quantized, and its opsets.
type PackKey = (bool, Vec<(String, i64)>);

/// The key of a subject that may be packed (valid by the spec, with expected outputs, a model
/// that decodes). Quantized and float models never share a pack: converters decide some
/// things once per model, and a quantization node anywhere changes them for every member
/// (onnx2tf skips its whole-model dummy inference, and the layout checks made with it, when
/// one QuantizeLinear is in the model; OpenVINO's low-precision transformations are
/// model-wide), so a float case's verdict would depend on what was packed beside it.
fn pack_key(s: &Subject) -> Option<PackKey> {
    if s.negative.is_some() || s.expected.is_err() {
        return None;
    }
    let model = proto::decode_model(&s.model).ok()?;
    Some((is_quantized(&model), pack::opset_key(&model)))
}

/// Whether the model has a quantization operator (a QDQ pair or a quantized operator form).
fn is_quantized(model: &tract_onnx::pb::ModelProto) -> bool {
    const QUANTIZATION_OPS: [&str; 7] = [
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeLinear",
        "QLinearConv",
        "QLinearMatMul",
        "ConvInteger",
        "MatMulInteger",
    ];
    model.graph.as_ref().is_some_and(|g| {
        g.node
            .iter()
            .any(|n| QUANTIZATION_OPS.contains(&n.op_type.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::{is_quantized, named_member};
    use tract_onnx::pb;

    fn model(ops: &[&str]) -> pb::ModelProto {
        pb::ModelProto {
            graph: Some(pb::GraphProto {
                node: ops
                    .iter()
                    .map(|op| pb::NodeProto {
                        op_type: op.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn quantized_models_are_told_from_float_ones() {
        assert!(!is_quantized(&model(&["Conv", "Relu", "MatMul"])));
        assert!(is_quantized(&model(&[
            "QuantizeLinear",
            "DequantizeLinear",
            "Conv"
        ])));
        assert!(is_quantized(&model(&["Cast", "ConvInteger", "Mul"])));
        assert!(is_quantized(&model(&["QLinearMatMul"])));
        assert!(!is_quantized(&pb::ModelProto::default()));
    }

    #[test]
    fn a_message_naming_one_members_node_names_that_member() {
        let m = "Conversion failed for AveragePool-18 While validating ONNX node '<Node(AveragePool): p3_t_11>'";
        assert_eq!(named_member(m, 8), Some(3));
        assert_eq!(named_member("node p11_conv_2 (Conv)", 12), Some(11));
        assert_eq!(named_member("node p11_conv_2 (Conv)", 8), None);
        assert_eq!(named_member("p1_a and p2_b", 8), None);
        assert_eq!(named_member("xp1_a and Relu_12", 8), None);
    }
}
