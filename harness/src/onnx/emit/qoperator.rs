//! The operator forms of a QDQ model, as quantization tools also write them: onnxruntime's
//! `QuantFormat.QOperator` (QLinearConv, QLinearMatMul: integers in and out) and its dynamic
//! quantization (ConvInteger, MatMulInteger: integers in, the int32 accumulator out, scaled
//! back to float by a Mul). The QDQ model is emitted first and rewritten here, so that the
//! weights, scales and zero points of the two forms are the same numbers.
//!
//! The rewrite:
//! 1. moves per-tensor QuantizeLinear and DequantizeLinear across the Transposes that the NLC
//!    layout puts around each layer (exact: a Transpose moves integers as it moves floats), so
//!    that a layer reads a DequantizeLinear and feeds a QuantizeLinear directly;
//! 2. turns each Conv and MatMul whose input and weights are dequantized integers into its
//!    operator form: with [`QuantOperators::Qlinear`], only where the layer's output goes to
//!    one QuantizeLinear alone (and a Conv's bias, if any, is int32 at `x_scale × w_scale`);
//!    with [`QuantOperators::Integer`], everywhere, the bias added in float after the Mul;
//! 3. removes the nodes and initializers left unused.
//!
//! Other layers (ConvTranspose, Gemm, pools, element-wise ops) stay in QDQ form: the standard
//! domain has no operator form for them.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use tract_onnx::pb;

use crate::model::QuantOperators;
use crate::onnx::proto::{attr, tensor_from_proto, tensor_to_proto};
use crate::tensor::Tensor;

/// Rewrites the QDQ layers of `graph` into `form` (nothing for [`QuantOperators::Qdq`]).
pub(super) fn rewrite(graph: &mut pb::GraphProto, form: QuantOperators) -> Result<()> {
    if form == QuantOperators::Qdq {
        return Ok(());
    }
    let mut g = Graph::new(graph);
    g.sink_transposes();
    g.operator_forms(form)?;
    g.finish(graph);
    Ok(())
}

/// The graph being rewritten: nodes in order (`None` once removed), initializers by name.
struct Graph {
    nodes: Vec<Option<pb::NodeProto>>,
    inits: Vec<pb::TensorProto>,
    outputs: HashSet<String>,
    fresh: usize,
}

impl Graph {
    fn new(graph: &pb::GraphProto) -> Graph {
        Graph {
            nodes: graph.node.iter().cloned().map(Some).collect(),
            inits: graph.initializer.clone(),
            outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            fresh: 0,
        }
    }

    fn name(&mut self, what: &str) -> String {
        self.fresh += 1;
        format!("qop_{what}_{}", self.fresh)
    }

    fn init(&self, name: &str) -> Option<&pb::TensorProto> {
        self.inits.iter().find(|t| t.name == name)
    }

    /// The index of the node that outputs `tensor`.
    fn producer(&self, tensor: &str) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.as_ref()
                .is_some_and(|n| n.output.iter().any(|o| o == tensor))
        })
    }

    /// The indices of the nodes that read `tensor`.
    fn consumers(&self, tensor: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.input.iter().any(|x| x == tensor))
            })
            .collect()
    }

    fn node(&self, i: usize) -> &pb::NodeProto {
        self.nodes[i].as_ref().expect("a live node")
    }

    /// Whether input `i` of node `n` is an initializer of one element.
    fn scalar_input(&self, n: &pb::NodeProto, i: usize) -> bool {
        n.input
            .get(i)
            .and_then(|x| self.init(x))
            .is_some_and(|t| t.dims.iter().product::<i64>() == 1)
    }

    /// The node at `i` if it is a `op_type` (QuantizeLinear, DequantizeLinear) with a scale
    /// and zero point of one element each, initializers.
    fn per_tensor(&self, i: usize, op_type: &str) -> Option<&pb::NodeProto> {
        let n = self.nodes[i].as_ref()?;
        (n.op_type == op_type
            && n.input.len() == 3
            && self.scalar_input(n, 1)
            && self.scalar_input(n, 2))
        .then_some(n)
    }

    fn new_node(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) -> pb::NodeProto {
        pb::NodeProto {
            name: self.name(&op.to_lowercase()),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute,
            ..Default::default()
        }
    }

    /// Step 1: `DequantizeLinear → Transpose` becomes `Transpose → DequantizeLinear`, and
    /// `Transpose → QuantizeLinear` (the Transpose's only reader) `QuantizeLinear → Transpose`.
    fn sink_transposes(&mut self) {
        let mut t = 0;
        while t < self.nodes.len() {
            t += 1;
            let t = t - 1;
            let Some(tr) = self.nodes[t].clone().filter(|n| n.op_type == "Transpose") else {
                continue;
            };
            // Dequantize after the Transpose.
            if let Some(d) = self.producer(&tr.input[0]) {
                if let Some(dq) = self.per_tensor(d, "DequantizeLinear").cloned() {
                    let moved = self.name("t");
                    let mut before = tr.clone();
                    before.input[0] = dq.input[0].clone();
                    before.output[0] = moved.clone();
                    let after = self.new_node(
                        "DequantizeLinear",
                        &[&moved, &dq.input[1], &dq.input[2]],
                        &tr.output[0],
                        vec![],
                    );
                    // Both where the Transpose was: its input's producer comes before it.
                    self.nodes[t] = Some(before);
                    self.nodes.insert(t + 1, Some(after));
                    continue;
                }
            }
            // Quantize before the Transpose.
            let readers = self.consumers(&tr.output[0]);
            if self.outputs.contains(&tr.output[0]) || readers.len() != 1 {
                continue;
            }
            let Some(q) = self.per_tensor(readers[0], "QuantizeLinear").cloned() else {
                continue;
            };
            let moved = self.name("t");
            let mut quantize = q.clone();
            quantize.input[0] = tr.input[0].clone();
            quantize.output[0] = moved.clone();
            let mut transpose = tr.clone();
            transpose.input[0] = moved;
            transpose.output[0] = q.output[0].clone();
            self.nodes[t] = Some(quantize);
            self.nodes[readers[0]] = Some(transpose);
        }
    }

    /// Step 2 (see the module documentation).
    fn operator_forms(&mut self, form: QuantOperators) -> Result<()> {
        let mut i = 0;
        while i < self.nodes.len() {
            let op = self.nodes[i].as_ref().map(|n| n.op_type.clone());
            let inserted = match op.as_deref() {
                Some(op @ ("Conv" | "MatMul")) => {
                    let conv = op == "Conv";
                    match form {
                        QuantOperators::Qlinear => self.qlinear(i, conv)?,
                        QuantOperators::Integer => self.integer(i, conv)?,
                        QuantOperators::Qdq => 0,
                    }
                }
                _ => 0,
            };
            i += 1 + inserted;
        }
        Ok(())
    }

    /// The DequantizeLinear nodes of a layer's input (per tensor) and weights (an integer
    /// initializer), if that is what it reads.
    fn dequantized_operands(
        &self,
        layer: &pb::NodeProto,
    ) -> Option<(pb::NodeProto, pb::NodeProto)> {
        let x = self.producer(layer.input.first()?)?;
        let x = self.per_tensor(x, "DequantizeLinear")?.clone();
        let w = self.producer(layer.input.get(1)?)?;
        let w = self.nodes[w].as_ref()?;
        (w.op_type == "DequantizeLinear"
            && w.input.len() == 3
            && self.init(&w.input[0]).is_some()
            && self.init(&w.input[1]).is_some()
            && self.init(&w.input[2]).is_some())
        .then(|| (x, w.clone()))
    }

    /// QLinearConv or QLinearMatMul in place of the layer at `i` and the QuantizeLinear after
    /// it; returns how many nodes were inserted (none: the layer is left as it is).
    fn qlinear(&mut self, i: usize, conv: bool) -> Result<usize> {
        let layer = self.node(i).clone();
        let Some((dx, dw)) = self.dequantized_operands(&layer) else {
            return Ok(0);
        };
        let readers = self.consumers(&layer.output[0]);
        if self.outputs.contains(&layer.output[0]) || readers.len() != 1 {
            return Ok(0);
        }
        let Some(q) = self.per_tensor(readers[0], "QuantizeLinear").cloned() else {
            return Ok(0);
        };
        let mut inputs = vec![
            dx.input[0].as_str(),
            &dx.input[1],
            &dx.input[2],
            &dw.input[0],
            &dw.input[1],
            &dw.input[2],
            &q.input[1],
            &q.input[2],
        ];
        let bias;
        if let Some(b) = layer.input.get(2).filter(|b| !b.is_empty()) {
            // The bias must be int32 at x_scale × w_scale, as the emitter writes it after a
            // quantized activation.
            let Some(db) = self.producer(b).and_then(|d| self.nodes[d].clone()) else {
                return Ok(0);
            };
            if db.op_type != "DequantizeLinear" || self.init(&db.input[0]).is_none() {
                return Ok(0);
            }
            bias = db.input[0].clone();
            inputs.push(&bias);
        }
        let op = if conv { "QLinearConv" } else { "QLinearMatMul" };
        let fused = self.new_node(op, &inputs, &q.output[0], layer.attribute.clone());
        self.nodes[i] = Some(fused);
        self.nodes[readers[0]] = None;
        Ok(0)
    }

    /// ConvInteger or MatMulInteger, Cast, Mul by `x_scale × w_scale` and (a Conv's bias) Add in
    /// place of the layer at `i`; returns how many nodes were inserted.
    fn integer(&mut self, i: usize, conv: bool) -> Result<usize> {
        let layer = self.node(i).clone();
        let Some((dx, dw)) = self.dequantized_operands(&layer) else {
            return Ok(0);
        };
        let x_scale = self.floats(&dx.input[1])?[0];
        let w_scales = self.floats(&dw.input[1])?;
        let channels = if conv {
            *self
                .init(&dw.input[0])
                .context("weights")?
                .dims
                .first()
                .unwrap_or(&1) as usize
        } else {
            *self
                .init(&dw.input[0])
                .context("weights")?
                .dims
                .last()
                .unwrap_or(&1) as usize
        };
        // The product as a tool computes it: in float32.
        let scales: Vec<f32> = (0..channels)
            .map(|c| x_scale * w_scales[if w_scales.len() == 1 { 0 } else { c }])
            .collect();
        let shape: Vec<usize> = if conv {
            vec![channels, 1]
        } else {
            vec![channels]
        };
        let scale = self.name("scale");
        self.inits
            .push(tensor_to_proto(&scale, &Tensor::f32(&shape, scales)?));

        let op = if conv { "ConvInteger" } else { "MatMulInteger" };
        let acc = self.name("acc");
        let integer = self.new_node(
            op,
            &[&dx.input[0], &dw.input[0], &dx.input[2], &dw.input[2]],
            &acc,
            layer.attribute.clone(),
        );
        let float = self.name("acc_f");
        let cast = self.new_node("Cast", &[&acc], &float, vec![attr::int("to", 1)]);
        let bias = match layer.input.get(2).filter(|b| !b.is_empty()) {
            Some(b) => Some(self.float_bias(b)?),
            None => None,
        };
        let scaled = if bias.is_some() {
            self.name("scaled")
        } else {
            layer.output[0].clone()
        };
        let mul = self.new_node("Mul", &[&float, &scale], &scaled, vec![]);
        let mut new = vec![integer, cast, mul];
        if let Some(b) = bias {
            let name = self.name("bias");
            let n = b.len();
            self.inits
                .push(tensor_to_proto(&name, &Tensor::f32(&[n, 1], b)?));
            new.push(self.new_node("Add", &[&scaled, &name], &layer.output[0], vec![]));
        }
        let inserted = new.len() - 1;
        self.nodes
            .splice(i..=i, new.into_iter().map(Some))
            .for_each(drop);
        Ok(inserted)
    }

    /// The float values of initializer `name`.
    fn floats(&self, name: &str) -> Result<Vec<f32>> {
        let t = tensor_from_proto(self.init(name).context("an initializer")?)?;
        Ok(t.to_f64().iter().map(|&v| v as f32).collect())
    }

    /// A bias as float32: the initializer itself, or the int32 initializer times its scale as
    /// its DequantizeLinear computes it.
    fn float_bias(&self, b: &str) -> Result<Vec<f32>> {
        if self.init(b).is_some() {
            return self.floats(b);
        }
        let d = self
            .producer(b)
            .map(|d| self.node(d))
            .filter(|d| d.op_type == "DequantizeLinear")
            .context("a bias that is neither an initializer nor dequantized")?;
        let q = self.floats(&d.input[0])?;
        let s = self.floats(&d.input[1])?;
        Ok(q.iter()
            .enumerate()
            .map(|(c, &v)| v * s[if s.len() == 1 { 0 } else { c }])
            .collect())
    }

    /// Step 3, and the graph written back.
    fn finish(mut self, graph: &mut pb::GraphProto) {
        loop {
            let read: HashSet<String> = self
                .nodes
                .iter()
                .flatten()
                .flat_map(|n| n.input.iter().cloned())
                .chain(self.outputs.iter().cloned())
                .collect();
            let mut changed = false;
            for n in &mut self.nodes {
                if n.as_ref()
                    .is_some_and(|node| node.output.iter().all(|o| !read.contains(o)))
                {
                    *n = None;
                    changed = true;
                }
            }
            if !changed {
                self.inits.retain(|t| read.contains(&t.name));
                graph.initializer = self.inits;
                graph.node = self.nodes.into_iter().flatten().collect();
                return;
            }
        }
    }
}
