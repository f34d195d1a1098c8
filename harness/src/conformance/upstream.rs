//! What a repro bundle hands to the project whose bug it shows: `repro.py`, a script that
//! replays the failure with that stack's own Python package and nothing of the harness, and
//! `ISSUE.md`, a report ready to file (docs/repro.md).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use tract_onnx::pb;

use super::reduce::Reduced;
use crate::compare::{DriftRule, Tolerance, FALLBACK};
use crate::convert::Replay;
use crate::fsutil::write_atomically;
use crate::onnx::proto::{declared_type, encode_tensor, tensor_to_proto, Dim};
use crate::results::{CaseResult, Environment, Verdict};
use crate::tensor::Tensor;

/// The script, built into the binary; `@CONFIG@` becomes the bundle's settings (JSON).
const TEMPLATE: &str = include_str!("../../python/repro.py");

/// How `repro.py` replays a failure: which stack and on which of the bundle's models.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// `openvino`, `onnxruntime`, `tract` or `tract-nnef` (the script's runner).
    pub name: &'static str,
    /// The Python package it needs besides numpy and onnx.
    pub package: &'static str,
    /// The bundle's model the script converts or runs.
    pub model: &'static str,
    /// OpenVINO's inference precision hint, when the converter sets one.
    pub precision_hint: Option<&'static str>,
    /// Whether OpenVINO saves the IR with FP16-compressed weights (`ovc`'s default).
    pub compress_to_fp16: bool,
    /// For `plugin`: the stack module the bundle carries and the variant it replays.
    pub plugin: Option<(&'static crate::worker::Stack, &'static str)>,
}

impl Stack {
    /// The stack of a conversion replayed as `replay`, run on `runtime`; `None` when no Python
    /// package runs it (another runtime).
    pub fn of(replay: Replay, runtime: &str) -> Option<Stack> {
        let onnx_on = |model| match runtime {
            "tract" => Some(Stack {
                name: "tract",
                package: "tract",
                model,
                precision_hint: None,
                compress_to_fp16: false,
                plugin: None,
            }),
            "onnxruntime" => Some(Stack {
                name: "onnxruntime",
                package: "onnxruntime",
                model,
                precision_hint: None,
                compress_to_fp16: false,
                plugin: None,
            }),
            _ => None,
        };
        match replay {
            Replay::Model => onnx_on("model.onnx"),
            Replay::ConvertedOnnx => onnx_on("converted.onnx"),
            Replay::OpenVino {
                precision_hint,
                compress_to_fp16,
                converted,
            } => Some(Stack {
                name: "openvino",
                package: "openvino",
                model: bundled_model(converted),
                precision_hint,
                compress_to_fp16,
                plugin: None,
            }),
            Replay::TractNnef { converted } => Some(Stack {
                name: "tract-nnef",
                package: "tract",
                model: bundled_model(converted),
                precision_hint: None,
                compress_to_fp16: false,
                plugin: None,
            }),
            Replay::Plugin {
                stack,
                variant,
                converted,
            } => Some(Stack {
                name: "plugin",
                package: stack.name,
                model: bundled_model(converted),
                precision_hint: None,
                compress_to_fp16: false,
                plugin: Some((stack, variant)),
            }),
        }
    }
}

/// The bundle's model a replay starts from: what the earlier converters of a chain made, or the
/// model itself.
fn bundled_model(converted: bool) -> &'static str {
    if converted {
        "converted.onnx"
    } else {
        "model.onnx"
    }
}

/// Everything the two files say about one bundled failure.
pub struct Upstream<'a> {
    /// The reduced failure.
    pub reduced: &'a Reduced,
    /// The original result.
    pub original: &'a CaseResult,
    /// How its converter is replayed.
    pub replay: Replay,
    /// The tolerance it was judged with.
    pub tolerance: Tolerance,
    /// Versions of the run.
    pub environment: &'a Environment,
    /// The harness command that runs the bundle again.
    pub command: &'a str,
    /// The run's timeout: past it, the script counts a hang as the failure.
    pub timeout: std::time::Duration,
    /// The run's drift rule: a `drift` failure is replayed with it.
    pub drift: DriftRule,
}

impl Upstream<'_> {
    /// Writes `bound_J.pb` (the oracle's bounds, in units of u), `repro.py` when a Python
    /// package runs the stack, and `ISSUE.md` into the bundle `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        for (j, e) in self.reduced.expected.iter().enumerate() {
            if let Some(bound) = &e.bound {
                let t = Tensor::F64(bound.clone());
                let bytes = encode_tensor(&tensor_to_proto(&format!("bound_{j}"), &t));
                write_atomically(&dir.join(format!("bound_{j}.pb")), &bytes)?;
            }
        }
        let stack = Stack::of(self.replay, &self.original.runtime);
        if stack.as_ref().is_some_and(|s| s.compress_to_fp16) {
            // For a runtime computing in f32 on f16 weights: the bounds widened by what
            // rounding the weights does (docs/oracle.md), `bound16_J.pb`.
            let model = crate::onnx::proto::encode_model(&self.reduced.model);
            let widened = super::weight_bounds(
                &model,
                &self.reduced.inputs,
                &self.reduced.expected,
                crate::convert::WeightPrecision::F16,
                crate::runtime::Precision::F32,
            )
            .map_err(anyhow::Error::msg)?;
            for (j, e) in widened.into_iter().flatten().enumerate() {
                if let Some(bound) = e.bound {
                    let t = Tensor::F64(bound);
                    let bytes = encode_tensor(&tensor_to_proto(&format!("bound16_{j}"), &t));
                    write_atomically(&dir.join(format!("bound16_{j}.pb")), &bytes)?;
                }
            }
        }
        if let Some(stack) = &stack {
            if let Some((plugin, _)) = stack.plugin {
                // The script replays with the stack's own module, as the workers ran it.
                let modules = dir.join("stacks");
                std::fs::create_dir_all(&modules)?;
                write_atomically(
                    &modules.join("__init__.py"),
                    crate::worker::STACKS_PACKAGE.as_bytes(),
                )?;
                write_atomically(
                    &modules.join(format!("{}.py", plugin.name)),
                    plugin.source.as_bytes(),
                )?;
                write_atomically(
                    &dir.join("requirements.txt"),
                    plugin.requirements.as_bytes(),
                )?;
            }
            write_atomically(&dir.join("repro.py"), self.script(stack).as_bytes())?;
        }
        write_atomically(&dir.join("ISSUE.md"), self.issue(stack.as_ref()).as_bytes())
    }

    /// What the failing stack did wrong, in one line.
    fn title(&self) -> String {
        let r = &self.reduced.result;
        let who = self.product();
        let node = self.diverging_node();
        match (r.verdict, node) {
            (Verdict::InvalidAccepted, _) => format!(
                "{who} accepts and runs an invalid 1D model ({}) instead of refusing it",
                self.negative().unwrap_or("invalid by the spec")
            ),
            (Verdict::ConvertRejected, _) => format!("{who} refuses to convert a valid 1D model"),
            (Verdict::RuntimeRejected, _) => {
                format!("{who} refuses to load or run a valid 1D model")
            }
            (Verdict::ShapeMismatch, _) => {
                format!("{who} gives an output of the wrong shape on a 1D model")
            }
            (Verdict::NonFinite, Some(n)) => {
                format!(
                    "{who}: {} gives non-finite values on a 1D model",
                    node_summary(n)
                )
            }
            (Verdict::Mismatch, Some(n)) => {
                format!(
                    "{who}: {} gives wrong values on a 1D model",
                    node_summary(n)
                )
            }
            (v, _) => format!("{who}: {} on a 1D model", v.name()),
        }
    }

    /// The converter and runtime, with versions.
    fn product(&self) -> String {
        let env = self.environment;
        let converter = &self.original.converter;
        let runtime = &self.original.runtime;
        let version = |v: Option<&String>| {
            v.map(|v| release(v).unwrap_or(v).to_string())
                .unwrap_or_default()
        };
        let cv = version(env.converters.get(converter));
        let rv = version(env.runtimes.get(runtime));
        if self.replay == Replay::Model {
            format!("{runtime} {rv}").trim().to_string()
        } else {
            format!("{converter} ({cv}) on {runtime} {rv}")
                .replace(" ()", "")
                .trim()
                .to_string()
        }
    }

    /// The first diverging node of the reduced model, if one was located.
    fn diverging_node(&self) -> Option<&pb::NodeProto> {
        let index = self.reduced.divergence.as_ref()?.index;
        self.reduced.model.graph.as_ref()?.node.get(index)
    }

    /// The kind of invalid model, for negative cases.
    fn negative(&self) -> Option<&'static str> {
        let negative = self.reduced.desc.as_ref()?.model.negative?;
        Some(negative.name())
    }

    /// The script with this bundle's settings.
    fn script(&self, stack: &Stack) -> String {
        let negative = (self.original.verdict == Verdict::InvalidAccepted)
            .then(|| self.negative().unwrap_or("invalid by the spec"));
        let config = serde_json::json!({
            "title": self.title(),
            "stack": stack.name,
            "model": stack.model,
            "precision_hint": stack.precision_hint,
            "compress_to_fp16": stack.compress_to_fp16,
            "plugin": stack.plugin.map(|(s, _)| s.name),
            "variant": stack.plugin.map(|(_, v)| v),
            "converter": self.original.converter,
            "runtime": self.original.runtime,
            "verdict": self.original.verdict,
            "negative": negative,
            "tolerance": self.tolerance,
            "fallback": FALLBACK,
            "timeout_s": self.timeout.as_secs_f64(),
            // A drift is replayed against the same runtime on the unconverted model.
            "drift": (self.original.verdict == Verdict::Drift).then_some(self.drift),
            "reference": match stack.name {
                "tract-nnef" => "tract",
                other => other,
            },
        });
        let json = serde_json::to_string_pretty(&config).unwrap_or_default();
        TEMPLATE.replacen("@CONFIG@", &json, 1)
    }

    /// The report to file upstream.
    fn issue(&self, stack: Option<&Stack>) -> String {
        let r = &self.reduced.result;
        let mut s = format!("# {}\n\n", self.title());
        s.push_str("## Versions\n\n");
        let env = self.environment;
        for (k, v) in env.converters.iter().chain(&env.runtimes) {
            if *k == self.original.converter || *k == self.original.runtime {
                let _ = writeln!(s, "- {k}: {v}");
            }
        }
        let _ = writeln!(s, "- CPU: {} ({} logical), {}\n", env.cpu, env.cpus, env.os);
        s.push_str("## Minimal model\n\n");
        s.push_str(&model_listing(&self.reduced.model));
        if let Some(n) = self.diverging_node() {
            let alone = match self.reduced.divergence.as_ref().and_then(|d| d.alone) {
                Some(true) => " It is wrong alone, on its exact inputs.",
                Some(false) => {
                    " Alone, on its exact inputs, it is right: it goes wrong only together with \
                     the nodes before it (a rewrite or fusion across them)."
                }
                None => "",
            };
            let _ = writeln!(
                s,
                "\nThe first output that differs is that of `{}` ({}).{alone}",
                n.name, n.op_type
            );
        }
        s.push_str("\n## What the ONNX spec says\n\n");
        match (self.negative(), self.diverging_node()) {
            (Some(kind), _)
                if r.verdict == Verdict::InvalidAccepted
                    || self.original.verdict == Verdict::InvalidAccepted =>
            {
                let _ = writeln!(
                    s,
                    "The model is invalid ({kind}): {} A conforming implementation refuses it.",
                    negative_rule(kind)
                );
            }
            (_, Some(n)) => {
                let _ = writeln!(
                    s,
                    "{} ([operator page](https://onnx.ai/onnx/operators/onnx__{}.html))",
                    formula(&n.op_type),
                    n.op_type
                );
            }
            _ => s.push_str("Every node of the model is valid and has a defined result.\n"),
        }
        s.push_str(
            "\nThe expected outputs (`test_data_set_0/output_J.pb`) are an f64 evaluation of the \
             spec; an implementation computing in precision u may differ by `u × bound` per \
             element (`bound_J.pb`, a forward error bound of the graph).\n",
        );
        s.push_str("\n## What happens\n\n");
        let _ = writeln!(s, "Verdict: `{}`.", r.verdict.name());
        if let Some(m) = &r.message {
            let _ = writeln!(s, "\n```\n{}\n```", m.trim());
        }
        if let (Some(abs), Some(ratio)) = (r.max_abs_err, r.worst_ratio) {
            let _ = writeln!(
                s,
                "\nLargest error {abs:.3e}, {ratio:.3} times the tolerance{}.",
                r.precision
                    .map(|p| format!(" at {} precision", p.name()))
                    .unwrap_or_default()
            );
        }
        s.push_str("\n## Reproduce\n\n");
        match stack {
            Some(Stack {
                plugin: Some((plugin, _)),
                ..
            }) => {
                let _ = writeln!(
                    s,
                    "```sh\npip install -r requirements.txt   # the {} stack's pinned packages\npython repro.py    # exits 1 while the bug is there\n```",
                    plugin.name
                );
            }
            Some(stack) => {
                let _ = writeln!(
                    s,
                    "```sh\npip install numpy onnx {}\npython repro.py    # exits 1 while the bug is there\n```",
                    pinned(stack.package, env)
                );
            }
            None => s.push_str("No Python package replays this stack; use the harness command.\n"),
        }
        let _ = writeln!(
            s,
            "\nWith the harness that found it:\n\n```sh\n{}\n```",
            self.command
        );
        s
    }
}

/// A package requirement pinned to the version the run used, when known.
fn pinned(package: &str, env: &Environment) -> String {
    let version = match package {
        "openvino" => env.runtimes.get("openvino-cpu"),
        "onnxruntime" => env.runtimes.get("onnxruntime"),
        "tract" => env.runtimes.get("tract"),
        _ => None,
    };
    // "2026.4.1-22982-e213a147257-releases/2026/4" or "tract-nnef 0.23.9": the release number.
    match version.and_then(|v| release(v)) {
        Some(n) => format!("{package}=={n}"),
        None => package.to_string(),
    }
}

/// The release number in a version string: "2026.4.1" of
/// "2026.4.1-22982-e213a147257-releases/2026/4", "0.23.9" of "tract-nnef 0.23.9".
fn release(version: &str) -> Option<&str> {
    version
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .and_then(|w| w.split(|c: char| !(c.is_ascii_digit() || c == '.')).next())
        // "0.27.0.post1": the release is 0.27.0.
        .map(|n| n.trim_end_matches('.'))
}

/// `Op(attr=value, …)` of a node, for the title.
fn node_summary(n: &pb::NodeProto) -> String {
    let attrs = attributes(n);
    if attrs.is_empty() {
        n.op_type.clone()
    } else {
        format!("{} ({})", n.op_type, attrs.join(", "))
    }
}

/// A node's attributes as `name=value`.
fn attributes(n: &pb::NodeProto) -> Vec<String> {
    use pb::attribute_proto::AttributeType as T;
    n.attribute
        .iter()
        .map(|a| {
            let value = match T::try_from(a.r#type) {
                Ok(T::Int) => a.i.to_string(),
                Ok(T::Float) => format!("{}", a.f),
                Ok(T::String) => format!("{:?}", String::from_utf8_lossy(&a.s)),
                Ok(T::Ints) => format!("{:?}", a.ints),
                Ok(T::Floats) => format!("{:?}", a.floats),
                _ => "…".into(),
            };
            format!("{}={value}", a.name)
        })
        .collect()
}

/// The model as a node list: inputs, initializers (shapes), nodes with attributes, outputs.
fn model_listing(model: &pb::ModelProto) -> String {
    let mut s = String::new();
    let Some(g) = &model.graph else {
        return s;
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty())
        .map_or(0, |o| o.version);
    let _ = writeln!(
        s,
        "Opset {opset}, {} nodes (`model.onnx`).\n\n```",
        g.node.len()
    );
    let inits: std::collections::HashMap<&str, &pb::TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    for i in g
        .input
        .iter()
        .filter(|i| !inits.contains_key(i.name.as_str()))
    {
        let _ = writeln!(s, "input  {}: {}", i.name, value_type(i));
    }
    for n in &g.node {
        let args: Vec<String> = n
            .input
            .iter()
            .map(|x| match inits.get(x.as_str()) {
                Some(t) => format!("{x}{:?}", t.dims),
                None => x.clone(),
            })
            .collect();
        let attrs = attributes(n);
        let _ = writeln!(
            s,
            "{} = {}({}){}",
            n.output.join(", "),
            n.op_type,
            args.join(", "),
            if attrs.is_empty() {
                String::new()
            } else {
                format!("  {{{}}}", attrs.join(", "))
            }
        );
    }
    for o in &g.output {
        let _ = writeln!(s, "output {}: {}", o.name, value_type(o));
    }
    s.push_str("```\n");
    s
}

/// `float[1, 4, L]` for a declared tensor type (the symbol for a symbolic dimension).
fn value_type(v: &pb::ValueInfoProto) -> String {
    let Some((elem, dims)) = declared_type(v) else {
        return "?".into();
    };
    let dtype = pb::tensor_proto::DataType::try_from(elem)
        .map(|d| format!("{d:?}").to_lowercase())
        .unwrap_or_else(|_| "?".into());
    let dims: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => n.to_string(),
            Dim::Symbol(s) => s.clone(),
        })
        .collect();
    format!("{dtype}[{}]", dims.join(", "))
}

/// What the spec says an invalid model of this kind breaks.
fn negative_rule(kind: &str) -> &'static str {
    match kind {
        "kernel-too-long" => {
            "the dilated kernel, (k-1)·d + 1, is longer than the padded input, so the output \
             length floor((L + pads - (k-1)·d - 1) / s) + 1 is below 1."
        }
        "group-not-dividing" => "`group` must divide the input channels (and the output channels).",
        "pool-pads-not-below-kernel" => {
            "each pad of a pooling node must be smaller than its kernel, or a window covers only \
             padding and has no defined value."
        }
        "wrong-weight-shape" => "Conv's weight must have shape [M, C/group, k].",
        _ => "it breaks a rule of its operator.",
    }
}

/// The spec's formula for the ops the generator uses, in the 1D form `[N, C, L]`.
fn formula(op: &str) -> &'static str {
    match op {
        "Conv" => {
            "Conv: `y[n, m, i] = b[m] + Σ_c Σ_k w[m, c, k] · x[n, g·C/G + c, i·s + k·d - pad_begin]` \
             over the group's channels, taps in the padding counting 0; output length \
             `floor((L + pad_begin + pad_end - (K-1)·d - 1) / s) + 1` (auto_pad SAME_*: \
             `ceil(L / s)`, the odd pad at the end for SAME_UPPER, at the beginning for SAME_LOWER)."
        }
        "ConvTranspose" => {
            "ConvTranspose: each input element adds `x · w` to the outputs at `i·s + k·d - \
             pad_begin`; output length `s·(L-1) + output_padding + (K-1)·d + 1 - pad_begin - \
             pad_end`, or `output_shape` when given."
        }
        "MaxPool" => {
            "MaxPool: `y[i] = max over k of x[i·s + k·d - pad_begin]`, padding excluded; output \
             length `floor` (or `ceil` with ceil_mode=1, dropping a last window that starts in \
             the right padding) of `(L + pads - (K-1)·d - 1) / s` plus 1."
        }
        "AveragePool" => {
            "AveragePool: the mean of each window, divided by the elements in the input \
             (count_include_pad=0) or by K (count_include_pad=1); output length as MaxPool's."
        }
        "LpPool" => "LpPool: `y = (Σ_window |x|^p)^(1/p)`, padding counting 0.",
        "GlobalAveragePool" => "GlobalAveragePool: the mean over the length axis.",
        "GlobalMaxPool" => "GlobalMaxPool: the maximum over the length axis.",
        "BatchNormalization" => {
            "BatchNormalization (inference): `y = γ (x - mean) / sqrt(var + ε) + β` per channel."
        }
        "InstanceNormalization" => {
            "InstanceNormalization: `y = γ (x - μ) / sqrt(σ² + ε) + β`, μ and σ² over the length \
             axis of each sample and channel."
        }
        "LayerNormalization" => {
            "LayerNormalization: `y = γ (x - μ) / sqrt(σ² + ε) + β`, μ and σ² over the axes from \
             `axis` on."
        }
        "Relu" => "Relu: `y = max(0, x)`.",
        "LeakyRelu" => "LeakyRelu: `y = x` for x ≥ 0, `α x` otherwise (α defaults to 0.01).",
        "PRelu" => "PRelu: `y = x` for x ≥ 0, `slope · x` otherwise, slope broadcast.",
        "Sigmoid" => "Sigmoid: `y = 1 / (1 + e^-x)`.",
        "HardSigmoid" => "HardSigmoid: `y = max(0, min(1, α x + β))`, α = 0.2, β = 0.5 by default.",
        "HardSwish" => "HardSwish: `y = x · max(0, min(1, x/6 + 1/2))`.",
        "Tanh" => "Tanh: `y = tanh(x)`.",
        "Elu" => "Elu: `y = x` for x ≥ 0, `α (e^x - 1)` otherwise (α defaults to 1).",
        "Selu" => {
            "Selu: `y = γ x` for x > 0, `γ α (e^x - 1)` otherwise, α = 1.67326319217681884765625 \
             and γ = 1.05070102214813232421875 by default."
        }
        "Gelu" => {
            "Gelu: `y = x/2 · (1 + erf(x/√2))` (approximate=\"tanh\": `x/2 · (1 + tanh(√(2/π) (x + \
             0.044715 x³)))`)."
        }
        "Erf" => "Erf: `y = 2/√π ∫_0^x e^(-t²) dt`.",
        "Softplus" => "Softplus: `y = ln(1 + e^x)`.",
        "Softsign" => "Softsign: `y = x / (1 + |x|)`.",
        "Mish" => "Mish: `y = x · tanh(ln(1 + e^x))`.",
        "Exp" => "Exp: `y = e^x`.",
        "Log" => "Log: `y = ln(x)`.",
        "Sqrt" => "Sqrt: `y = √x`.",
        "Add" => "Add: `y = a + b`, numpy broadcasting.",
        "Sub" => "Sub: `y = a - b`, numpy broadcasting.",
        "Mul" => "Mul: `y = a · b`, numpy broadcasting.",
        "Div" => "Div: `y = a / b`, numpy broadcasting.",
        "Gemm" => "Gemm: `Y = α · A' · B' + β · C`, A' and B' transposed as transA, transB say.",
        "MatMul" => "MatMul: matrix product with numpy semantics.",
        "Softmax" => "Softmax: `y_i = e^(x_i) / Σ_j e^(x_j)` along `axis`.",
        "Clip" => "Clip: `y = min(max(x, min), max)`.",
        "Pad" => {
            "Pad: constant, reflect (mirror without the edge), edge (repeat the edge) or wrap \
             padding of the given amounts; negative pads crop."
        }
        "ReduceMean" => "ReduceMean: the mean over `axes`.",
        _ => "See the operator's definition",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replay_on_a_python_runtime_has_a_stack_and_another_runtime_none() {
        assert_eq!(Stack::of(Replay::Model, "tract").unwrap().name, "tract");
        assert_eq!(
            Stack::of(Replay::ConvertedOnnx, "onnxruntime")
                .unwrap()
                .model,
            "converted.onnx"
        );
        let ov = Stack::of(
            Replay::OpenVino {
                precision_hint: Some("f32"),
                compress_to_fp16: true,
                converted: true,
            },
            "openvino-cpu",
        )
        .unwrap();
        assert_eq!(
            (ov.name, ov.precision_hint, ov.compress_to_fp16, ov.model),
            ("openvino", Some("f32"), true, "converted.onnx")
        );
        let nnef = Stack::of(Replay::TractNnef { converted: false }, "tract").unwrap();
        assert_eq!((nnef.package, nnef.model), ("tract", "model.onnx"));
        assert_eq!(Stack::of(Replay::Model, "elsewhere"), None);
    }

    #[test]
    fn the_model_listing_names_every_node_with_its_attributes_and_the_declared_shapes() {
        let case = (0..50)
            .map(|i| crate::gen::generate(0, i, &crate::gen::GenConfig::default()))
            .find(|c| c.model.negative.is_none() && c.model.symbolic.length)
            .expect("a valid case with a symbolic length in 50");
        let model = crate::onnx::emit::emit(&case.model).unwrap();
        let listing = model_listing(&model);
        let graph = model.graph.as_ref().unwrap();
        for node in &graph.node {
            let line = listing
                .lines()
                .find(|l| l.starts_with(&format!("{} = {}(", node.output.join(", "), node.op_type)))
                .unwrap_or_else(|| panic!("{} missing:\n{listing}", node.op_type));
            for a in &node.attribute {
                assert!(line.contains(&format!("{}=", a.name)), "{line}");
            }
        }
        let input = listing.lines().find(|l| l.starts_with("input ")).unwrap();
        assert!(input.contains("float[") && input.contains('L'), "{input}");
    }

    #[test]
    fn the_template_has_one_place_for_the_settings() {
        assert_eq!(TEMPLATE.matches("@CONFIG@").count(), 1);
    }

    #[test]
    fn packages_are_pinned_to_the_versions_the_run_used() {
        let mut env = Environment::detect();
        env.runtimes
            .insert("onnxruntime".into(), "onnxruntime 1.32.0".into());
        env.runtimes.insert(
            "openvino-cpu".into(),
            "2026.4.1-22982-e213a147257-releases/2026/4".into(),
        );
        assert_eq!(pinned("onnxruntime", &env), "onnxruntime==1.32.0");
        assert_eq!(pinned("openvino", &env), "openvino==2026.4.1");
        assert_eq!(pinned("tract", &Environment::detect()), "tract");
        assert_eq!(release("0.27.0.post1"), Some("0.27.0"));
    }
}
