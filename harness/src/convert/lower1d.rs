//! `lower1d` and `lower1d:nc1l`: rewrite a 1D model as a 2D one with a unit axis.
//!
//! This is the workaround people apply by hand for converters that only handle 4D data:
//! `[N, C, L]` becomes `[N, C, L, 1]` (`lower1d`) or `[N, C, 1, L]` (`lower1d:nc1l`). Spatial
//! operators (Conv, ConvTranspose, pools, normalizations, Pad) get 2D attributes and weights;
//! element-wise operators follow their input into 2D; an Unsqueeze is inserted where a 1D
//! tensor first enters a 2D operator and a Squeeze where 1D shape is needed again (heads,
//! operators with axis semantics, graph outputs).
//!
//! Tensors keep their names in 1D form; the 2D twin of `x` is called `x__2d`. A name whose 1D
//! form is never needed is never produced.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Context as _, Result};
use tract_onnx::pb;

use super::{Artifact, Context, ConvertError, Converter};
use crate::onnx::proto::{
    self, attr, decode_model, encode_model, tensor_from_proto, tensor_to_proto,
};
use crate::tensor::Tensor;

/// Where the unit axis goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitAxis {
    /// `[N, C, L, 1]`.
    Last,
    /// `[N, C, 1, L]`.
    BeforeLength,
}

impl UnitAxis {
    /// Index of the unit axis in the 4D tensor.
    fn index(self) -> usize {
        match self {
            UnitAxis::Last => 3,
            UnitAxis::BeforeLength => 2,
        }
    }
}

/// The lowering converter.
pub struct Lower1d {
    /// Where the unit axis goes.
    pub unit: UnitAxis,
}

impl Converter for Lower1d {
    fn name(&self) -> String {
        match self.unit {
            UnitAxis::Last => "lower1d".into(),
            UnitAxis::BeforeLength => "lower1d:nc1l".into(),
        }
    }

    fn version(&self) -> Option<String> {
        Some(env!("CARGO_PKG_VERSION").into())
    }

    fn needs_work_dir(&self) -> bool {
        false
    }

    fn convert(&self, model: &[u8], _cx: &Context) -> Result<Artifact, ConvertError> {
        let mut m = decode_model(model).map_err(|e| ConvertError::Rejected(format!("{e:#}")))?;
        lower(&mut m, self.unit).map_err(|e| ConvertError::Rejected(format!("lower1d: {e:#}")))?;
        Ok(Artifact::Onnx(encode_model(&m)))
    }
}

/// Operators whose spatial attributes and weights are rewritten.
const SPATIAL: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MaxPool",
    "AveragePool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    "BatchNormalization",
    "InstanceNormalization",
    "Pad",
];

/// Operators applied element by element: they follow their first input into 2D.
const POINTWISE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "HardSigmoid",
    "HardSwish",
    "Gelu",
    "Softplus",
    "Softsign",
    "Mish",
    "Clip",
    "Identity",
    "Dropout",
    "Erf",
    "Exp",
    "Log",
    "Abs",
    "Neg",
    "Sqrt",
    "Reciprocal",
    "Celu",
    "ThresholdedRelu",
    "Cast",
];

/// Broadcasting operators: lowered when one of their inputs is already 2D.
const BROADCAST: &[&str] = &[
    "Add", "Sub", "Mul", "Div", "PRelu", "Max", "Min", "Pow", "Sum", "Mean",
];

/// Rewrites `model` in place.
pub fn lower(model: &mut pb::ModelProto, unit: UnitAxis) -> Result<()> {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(17);
    let graph = model.graph.as_mut().context("the model has no graph")?;
    let mut l = Lowering::new(graph, unit, opset);
    let nodes = std::mem::take(&mut graph.node);
    for node in nodes {
        l.node(node)?;
    }
    for out in &graph.output {
        l.need_1d(&out.name)?;
    }
    graph.node = l.out;
    graph.initializer.extend(l.new_inits);
    // 1D weights replaced by their 2D form are no longer read.
    let used: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
        .map(String::as_str)
        .collect();
    let graph_inputs: HashSet<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    graph
        .initializer
        .retain(|t| used.contains(t.name.as_str()) || graph_inputs.contains(&t.name));
    // Intermediate shapes changed; value_info is optional, so drop it rather than keep it wrong.
    graph.value_info.clear();
    Ok(())
}

struct Lowering {
    unit: UnitAxis,
    opset: i64,
    rank: HashMap<String, usize>,
    inits: HashMap<String, pb::TensorProto>,
    /// 1D name to its 2D twin, for tensors that exist in 2D.
    twin: HashMap<String, String>,
    /// 1D names that are actually produced (graph inputs, initializers, 1D node outputs).
    produced: HashSet<String>,
    out: Vec<pb::NodeProto>,
    new_inits: Vec<pb::TensorProto>,
    counter: usize,
}

impl Lowering {
    fn new(graph: &pb::GraphProto, unit: UnitAxis, opset: i64) -> Lowering {
        let mut rank = HashMap::new();
        let mut produced = HashSet::new();
        for i in &graph.input {
            if let Some((_, dims)) = proto::declared_type(i) {
                if !dims.is_empty() || i.r#type.is_some() {
                    rank.insert(i.name.clone(), dims.len());
                }
            }
            produced.insert(i.name.clone());
        }
        let mut inits = HashMap::new();
        for t in &graph.initializer {
            rank.insert(t.name.clone(), t.dims.len());
            produced.insert(t.name.clone());
            inits.insert(t.name.clone(), t.clone());
        }
        Lowering {
            unit,
            opset,
            rank,
            inits,
            twin: HashMap::new(),
            produced,
            out: Vec::new(),
            new_inits: Vec::new(),
            counter: 0,
        }
    }

    fn is_2d(&self, name: &str) -> bool {
        self.twin.contains_key(name)
    }

    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}__lower{}", self.counter)
    }

    fn axes_node(&mut self, op: &str, input: &str, output: &str, axis: usize) {
        let mut node = pb::NodeProto {
            name: self.fresh(&op.to_lowercase()),
            op_type: op.into(),
            input: vec![input.into()],
            output: vec![output.into()],
            ..Default::default()
        };
        if self.opset >= 13 {
            let name = self.fresh("axes");
            self.new_inits.push(tensor_to_proto(
                &name,
                &Tensor::I64(ndarray::arr1(&[axis as i64]).into_dyn()),
            ));
            node.input.push(name);
        } else {
            node.attribute.push(attr::ints("axes", &[axis as i64]));
        }
        self.out.push(node);
    }

    /// The 2D twin of a rank-3 tensor, inserting an Unsqueeze the first time.
    fn get_2d(&mut self, name: &str) -> Result<String> {
        if let Some(t) = self.twin.get(name) {
            return Ok(t.clone());
        }
        let twin = format!("{name}__2d");
        self.need_1d(name)?;
        self.axes_node("Unsqueeze", name, &twin, self.unit.index());
        self.twin.insert(name.into(), twin.clone());
        Ok(twin)
    }

    /// Makes sure the 1D form of `name` exists, inserting a Squeeze of its 2D twin if needed.
    fn need_1d(&mut self, name: &str) -> Result<()> {
        if name.is_empty() || self.produced.contains(name) {
            return Ok(());
        }
        let Some(twin) = self.twin.get(name).cloned() else {
            bail!("tensor '{name}' is used before it is produced (is the graph topologically sorted?)");
        };
        self.axes_node("Squeeze", &twin, name, self.unit.index());
        self.produced.insert(name.into());
        Ok(())
    }

    /// Spatial attribute lists get an entry for the unit axis.
    fn widen(&self, values: &[i64], unit_value: i64) -> Vec<i64> {
        match self.unit {
            UnitAxis::Last => vec![values[0], unit_value],
            UnitAxis::BeforeLength => vec![unit_value, values[0]],
        }
    }

    /// A constant of rank <= 3 that broadcasts against `[N, C, L]`, reshaped to broadcast the
    /// same way against the 2D form: leading unit axes up to rank 3, then the unit axis.
    fn constant_2d(&mut self, name: &str) -> Result<String> {
        let t = self.inits.get(name).cloned().context("constant operand")?;
        if t.dims.is_empty() || t.dims.iter().product::<i64>() == 1 && t.dims.len() <= 1 {
            return Ok(name.into());
        }
        let value = tensor_from_proto(&t).with_context(|| format!("initializer '{name}'"))?;
        let mut dims: Vec<usize> = value.shape().to_vec();
        if dims.len() > 3 {
            bail!(
                "initializer '{name}' of rank {} broadcasts against a 1D tensor",
                dims.len()
            );
        }
        while dims.len() < 3 {
            dims.insert(0, 1);
        }
        dims.insert(self.unit.index(), 1);
        let new_name = format!("{name}__2d");
        if !self.new_inits.iter().any(|t| t.name == new_name) {
            self.new_inits.push(reshaped(&new_name, &value, &dims)?);
        }
        Ok(new_name)
    }

    fn set_output_2d(&mut self, node: &mut pb::NodeProto) {
        for o in node.output.iter_mut().filter(|o| !o.is_empty()) {
            let twin = format!("{o}__2d");
            self.twin.insert(o.clone(), twin.clone());
            self.rank.insert(o.clone(), 3);
            *o = twin;
        }
    }

    fn keep_1d(&mut self, node: pb::NodeProto) -> Result<()> {
        for i in &node.input {
            self.need_1d(i)?;
        }
        let r = output_rank(&node, &self.rank, &self.inits);
        for o in &node.output {
            self.produced.insert(o.clone());
            if let Some(r) = r {
                self.rank.insert(o.clone(), r);
            }
        }
        self.out.push(node);
        Ok(())
    }

    fn node(&mut self, mut node: pb::NodeProto) -> Result<()> {
        let op = node.op_type.clone();
        let first = node.input.first().cloned().unwrap_or_default();
        let first_rank = self.rank.get(&first).copied().or_else(|| {
            // Conv data of unknown rank: the weight tells.
            (op == "Conv" || op == "ConvTranspose")
                .then(|| node.input.get(1).and_then(|w| self.rank.get(w).copied()))
                .flatten()
        });
        let is_domain_default = node.domain.is_empty() || node.domain == "ai.onnx";
        if !is_domain_default {
            return self.keep_1d(node);
        }
        if SPATIAL.contains(&op.as_str()) && first_rank == Some(3) {
            return self.spatial(node);
        }
        if POINTWISE.contains(&op.as_str()) && self.is_2d(&first) {
            node.input[0] = self.get_2d(&first)?;
            for i in node.input.iter().skip(1) {
                self.need_1d(i)?;
            }
            self.set_output_2d(&mut node);
            self.out.push(node);
            return Ok(());
        }
        if BROADCAST.contains(&op.as_str())
            && node.input.iter().any(|i| self.is_2d(i))
            && output_rank(&node, &self.rank, &self.inits) == Some(3)
        {
            let mut inputs = Vec::with_capacity(node.input.len());
            for i in &node.input {
                let lowered = if self.is_2d(i)
                    || self.rank.get(i) == Some(&3) && !self.inits.contains_key(i)
                {
                    self.get_2d(i)?
                } else if self.inits.contains_key(i) {
                    self.constant_2d(i)?
                } else if self.rank.get(i).is_some_and(|&r| r == 0) {
                    self.need_1d(i)?;
                    i.clone()
                } else {
                    bail!("{op} node '{}': operand '{i}' of unknown or lower rank broadcasts against a 1D tensor", node.name);
                };
                inputs.push(lowered);
            }
            node.input = inputs;
            self.set_output_2d(&mut node);
            self.out.push(node);
            return Ok(());
        }
        if op == "Flatten" && self.is_2d(&first) {
            let axis = proto::attr(&node, "axis").map(|a| a.i).unwrap_or(1);
            let axis = if axis < 0 { axis + 3 } else { axis };
            // Flatten gives the same result on the 2D form while the unit axis falls in the
            // second (trailing) group.
            if (0..=self.unit.index() as i64).contains(&axis) {
                node.input[0] = self.get_2d(&first)?;
                if let Some(a) = node.attribute.iter_mut().find(|a| a.name == "axis") {
                    a.i = axis;
                }
                for o in &node.output {
                    self.produced.insert(o.clone());
                    self.rank.insert(o.clone(), 2);
                }
                self.out.push(node);
                return Ok(());
            }
        }
        self.keep_1d(node)
    }

    fn spatial(&mut self, mut node: pb::NodeProto) -> Result<()> {
        let op = node.op_type.clone();
        let x = node.input[0].clone();
        node.input[0] = self.get_2d(&x)?;
        for a in node.attribute.iter_mut() {
            match a.name.as_str() {
                "kernel_shape" | "strides" | "dilations" if a.ints.len() == 1 => {
                    a.ints = self.widen(&a.ints, 1)
                }
                "output_padding" if a.ints.len() == 1 => a.ints = self.widen(&a.ints, 0),
                "output_shape" if a.ints.len() == 1 => a.ints = self.widen(&a.ints, 1),
                "pads" if op != "Pad" && a.ints.len() == 2 => {
                    let (b, e) = (a.ints[0], a.ints[1]);
                    a.ints = [self.widen(&[b], 0), self.widen(&[e], 0)].concat();
                }
                "pads" if op == "Pad" => a.ints = self.pad_pairs(&a.ints)?,
                "kernel_shape" | "strides" | "dilations" | "output_padding" | "output_shape"
                | "pads" => {
                    bail!(
                        "{op} node '{}': attribute {} has {} values for one spatial axis",
                        node.name,
                        a.name,
                        a.ints.len()
                    )
                }
                _ => {}
            }
        }
        match op.as_str() {
            "Conv" | "ConvTranspose" => {
                let w = node.input.get(1).cloned().context("Conv without weights")?;
                node.input[1] = self.weight_2d(&w)?;
                for i in node.input.iter().skip(2) {
                    self.need_1d(i)?;
                }
            }
            "Pad" => {
                if let Some(p) = node.input.get(1).cloned().filter(|p| !p.is_empty()) {
                    let t = self.inits.get(&p).cloned().with_context(|| {
                        format!(
                            "Pad node '{}': pads input '{p}' is not a constant initializer",
                            node.name
                        )
                    })?;
                    let pads = tensor_from_proto(&t)?
                        .to_i64()
                        .iter()
                        .copied()
                        .collect::<Vec<_>>();
                    let name = self.fresh("pads");
                    let new = self.pad_pairs(&pads)?;
                    self.new_inits.push(tensor_to_proto(
                        &name,
                        &Tensor::I64(ndarray::arr1(&new).into_dyn()),
                    ));
                    node.input[1] = name;
                }
                if node.input.get(3).is_some_and(|a| !a.is_empty()) {
                    bail!(
                        "Pad node '{}': the axes input is not supported by lower1d",
                        node.name
                    );
                }
                for i in node.input.iter().skip(2) {
                    self.need_1d(i)?;
                }
            }
            _ => {
                for i in node.input.iter().skip(1) {
                    self.need_1d(i)?;
                }
            }
        }
        self.set_output_2d(&mut node);
        self.out.push(node);
        Ok(())
    }

    /// `[b0, b1, b2, e0, e1, e2]` to the 4D pad list with zeros on the unit axis.
    fn pad_pairs(&self, pads: &[i64]) -> Result<Vec<i64>> {
        if pads.len() != 6 {
            bail!("Pad with {} pad values on a rank-3 tensor", pads.len());
        }
        let mut begin = pads[..3].to_vec();
        let mut end = pads[3..].to_vec();
        begin.insert(self.unit.index(), 0);
        end.insert(self.unit.index(), 0);
        Ok([begin, end].concat())
    }

    /// Conv weights `[O, I, K]` to `[O, I, K, 1]` or `[O, I, 1, K]`.
    fn weight_2d(&mut self, w: &str) -> Result<String> {
        if let Some(t) = self.inits.get(w).cloned() {
            let value = tensor_from_proto(&t).with_context(|| format!("weights '{w}'"))?;
            let mut dims = value.shape().to_vec();
            if dims.len() != 3 {
                bail!("weights '{w}' have rank {}, expected 3", dims.len());
            }
            dims.insert(self.unit.index(), 1);
            let new_name = format!("{w}__2d");
            if !self.new_inits.iter().any(|t| t.name == new_name) {
                self.new_inits.push(reshaped(&new_name, &value, &dims)?);
            }
            Ok(new_name)
        } else {
            self.get_2d(w)
        }
    }
}

fn reshaped(name: &str, value: &Tensor, dims: &[usize]) -> Result<pb::TensorProto> {
    let mut t = tensor_to_proto(name, value);
    t.dims = dims.iter().map(|&d| d as i64).collect();
    Ok(t)
}

/// Rank of a node's first output, where it follows from the op and input ranks.
fn output_rank(
    node: &pb::NodeProto,
    rank: &HashMap<String, usize>,
    inits: &HashMap<String, pb::TensorProto>,
) -> Option<usize> {
    let r = |i: usize| node.input.get(i).and_then(|n| rank.get(n)).copied();
    let op = node.op_type.as_str();
    match op {
        "Flatten" | "Gemm" => Some(2),
        "Shape" => Some(1),
        "MatMul" => Some(r(0)?.max(r(1)?)),
        "Reshape" => node
            .input
            .get(1)
            .and_then(|s| inits.get(s))
            .map(|t| t.dims.first().copied().unwrap_or(0) as usize),
        "Unsqueeze" | "Squeeze" => {
            let n = proto::attr(node, "axes")
                .map(|a| a.ints.len())
                .or_else(|| {
                    node.input
                        .get(1)
                        .and_then(|a| inits.get(a))
                        .map(|t| t.dims.first().copied().unwrap_or(1) as usize)
                })?;
            if op == "Unsqueeze" {
                Some(r(0)? + n)
            } else {
                r(0)?.checked_sub(n)
            }
        }
        "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceSum" | "ReduceL2" => {
            let keep = proto::attr(node, "keepdims").map(|a| a.i).unwrap_or(1);
            if keep == 1 {
                r(0)
            } else {
                None
            }
        }
        _ if BROADCAST.contains(&op) => node
            .input
            .iter()
            .map(|i| rank.get(i).copied())
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max(),
        _ => r(0),
    }
}

#[cfg(test)]
mod tests;
