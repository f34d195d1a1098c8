//! Unit tests of the oracle: small hand-built models checked against hand-computed answers.

mod accuracy;
mod bounds;
mod conv;
mod elementwise;
mod graph;
mod layout;
mod linalg;
mod lowering;
mod norm;
mod onnx_examples;
mod opsets;
mod pool;
mod qlinear;
mod quant;

use tract_onnx::pb;

use crate::onnx::proto::{attr as make, tensor_to_proto, value_info, Dim};
use crate::tensor::{DType, Named, Tensor};

use super::{evaluate, Evaluation, OracleError};

/// A one-node model under construction: inputs are fed graph inputs or initializers, in the
/// node's input order.
pub(super) struct Case {
    op: String,
    opset: i64,
    node_inputs: Vec<String>,
    attrs: Vec<pb::AttributeProto>,
    fed: Vec<Named>,
    inits: Vec<pb::TensorProto>,
    outputs: Vec<String>,
}

impl Case {
    /// A node of type `op`, opset 17.
    pub fn new(op: &str) -> Case {
        Case {
            op: op.into(),
            opset: 17,
            node_inputs: Vec::new(),
            attrs: Vec::new(),
            fed: Vec::new(),
            inits: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Sets the default-domain opset.
    pub fn opset(mut self, v: i64) -> Case {
        self.opset = v;
        self
    }

    /// Adds a float graph input fed with `data`.
    pub fn input(mut self, shape: &[usize], data: &[f32]) -> Case {
        let name = format!("in{}", self.node_inputs.len());
        self.fed.push(Named {
            name: name.clone(),
            tensor: Tensor::f32(shape, data.to_vec()).unwrap(),
        });
        self.node_inputs.push(name);
        self
    }

    /// Adds a float initializer.
    pub fn init(self, shape: &[usize], data: &[f32]) -> Case {
        self.init_tensor(Tensor::f32(shape, data.to_vec()).unwrap())
    }

    /// Adds an int64 initializer.
    pub fn init_i64(self, shape: &[usize], data: &[i64]) -> Case {
        self.init_tensor(Tensor::I64(
            ndarray::ArrayD::from_shape_vec(shape, data.to_vec()).unwrap(),
        ))
    }

    fn init_tensor(mut self, t: Tensor) -> Case {
        let name = format!("in{}", self.node_inputs.len());
        self.inits.push(tensor_to_proto(&name, &t));
        self.node_inputs.push(name);
        self
    }

    /// Adds an absent optional input (empty name).
    pub fn absent(mut self) -> Case {
        self.node_inputs.push(String::new());
        self
    }

    /// Adds an attribute.
    pub fn attr(mut self, a: pb::AttributeProto) -> Case {
        self.attrs.push(a);
        self
    }

    /// Integer attribute.
    pub fn int(self, name: &str, v: i64) -> Case {
        self.attr(make::int(name, v))
    }

    /// Integer-list attribute.
    pub fn ints(self, name: &str, v: &[i64]) -> Case {
        self.attr(make::ints(name, v))
    }

    /// Float attribute.
    pub fn float(self, name: &str, v: f32) -> Case {
        self.attr(make::float(name, v))
    }

    /// String attribute.
    pub fn string(self, name: &str, v: &str) -> Case {
        self.attr(make::string(name, v))
    }

    /// Names the node's outputs (default: one output "y"); "" leaves a slot empty.
    pub fn outputs(mut self, names: &[&str]) -> Case {
        self.outputs = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The model.
    pub fn model(&self) -> pb::ModelProto {
        let outputs = if self.outputs.is_empty() {
            vec!["y".to_string()]
        } else {
            self.outputs.clone()
        };
        let node = pb::NodeProto {
            op_type: self.op.clone(),
            name: "n".into(),
            input: self.node_inputs.clone(),
            output: outputs.clone(),
            attribute: self.attrs.clone(),
            ..Default::default()
        };
        let inputs = self
            .fed
            .iter()
            .map(|n| {
                value_info(
                    &n.name,
                    DType::Float,
                    &n.tensor
                        .shape()
                        .iter()
                        .map(|&d| Dim::Fixed(d))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let graph_outputs = outputs
            .iter()
            .filter(|o| !o.is_empty())
            .map(|o| pb::ValueInfoProto {
                name: o.clone(),
                ..Default::default()
            })
            .collect();
        model(
            vec![node],
            inputs,
            self.inits.clone(),
            graph_outputs,
            self.opset,
        )
    }

    /// Evaluates the model on its fed inputs.
    pub fn run(&self) -> Result<Evaluation, OracleError> {
        evaluate(&self.model(), &self.fed)
    }

    /// Output 0, row-major, after checking its shape.
    pub fn y(&self, shape: &[usize]) -> Vec<f64> {
        self.output(0, shape)
    }

    /// Output `i`, row-major, after checking its shape.
    pub fn output(&self, i: usize, shape: &[usize]) -> Vec<f64> {
        let ev = self
            .run()
            .unwrap_or_else(|e| panic!("{} failed: {e}", self.op));
        let out = &ev.outputs[i];
        assert_eq!(out.value.shape(), shape, "shape of output {i}");
        out.value.iter().copied().collect()
    }

    /// The inputs the case feeds.
    pub fn run_inputs(&self) -> Vec<Named> {
        self.fed.clone()
    }

    /// Bound of output 0, row-major.
    pub fn bound(&self) -> Vec<f64> {
        self.run().unwrap().outputs[0]
            .bound
            .iter()
            .copied()
            .collect()
    }

    /// The error, which must be `Invalid`; returns its message.
    pub fn invalid(&self) -> String {
        match self.run() {
            Err(OracleError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}

/// A model from its parts.
pub(super) fn model(
    node: Vec<pb::NodeProto>,
    input: Vec<pb::ValueInfoProto>,
    initializer: Vec<pb::TensorProto>,
    output: Vec<pb::ValueInfoProto>,
    opset: i64,
) -> pb::ModelProto {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(pb::GraphProto {
            node,
            input,
            initializer,
            output,
            name: "g".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Asserts two sequences are equal to a relative 1e-12 (f64 rounding of the oracle's sums).
#[track_caller]
pub(super) fn assert_close(actual: &[f64], expected: &[f64]) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let ok = (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-12 * e.abs().max(1.0);
        assert!(
            ok,
            "element {i}: {a} != {e}\nactual   {actual:?}\nexpected {expected:?}"
        );
    }
}

/// Asserts two sequences are equal to a relative `tol`.
#[track_caller]
pub(super) fn assert_near(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "length: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol * e.abs().max(1.0),
            "element {i}: {a} != {e}\nactual   {actual:?}\nexpected {expected:?}"
        );
    }
}

/// 1, 2, ..., n as f32.
pub(super) fn ramp(n: usize) -> Vec<f32> {
    (1..=n).map(|v| v as f32).collect()
}
