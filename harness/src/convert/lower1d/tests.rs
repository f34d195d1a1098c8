use super::*;
use crate::gen::{generate, GenConfig};
use crate::onnx::emit::emit;

fn ops(m: &pb::ModelProto) -> Vec<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

#[test]
fn conv_relu_chain_gets_one_unsqueeze_and_one_squeeze() {
    let desc = crate::model::ModelDesc::new(
        [1, 2, 9],
        vec![
            crate::model::Layer::Conv(crate::model::Conv {
                out_channels: 3,
                kernel: 3,
                stride: 2,
                dilation: 1,
                padding: crate::model::Padding::Explicit { begin: 1, end: 0 },
                group: 1,
                bias: true,
            }),
            crate::model::Layer::Relu,
        ],
        17,
        1,
        crate::model::WeightDist::Scaled,
    );
    let mut m = emit(&desc).unwrap();
    lower(&mut m, UnitAxis::Last).unwrap();
    assert_eq!(
        ops(&m),
        ["Unsqueeze", "Conv", "Relu", "Identity", "Squeeze"]
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    let g = m.graph.as_ref().unwrap();
    let conv = &g.node[1];
    assert_eq!(proto::attr(conv, "pads").unwrap().ints, vec![1, 0, 0, 0]);
    assert_eq!(proto::attr(conv, "kernel_shape").unwrap().ints, vec![3, 1]);
    assert_eq!(proto::attr(conv, "strides").unwrap().ints, vec![2, 1]);
    let w = g
        .initializer
        .iter()
        .find(|t| t.name == conv.input[1])
        .unwrap();
    assert_eq!(w.dims, vec![3, 2, 3, 1]);

    let mut m = emit(&desc).unwrap();
    lower(&mut m, UnitAxis::BeforeLength).unwrap();
    let g = m.graph.as_ref().unwrap();
    assert_eq!(
        proto::attr(&g.node[1], "pads").unwrap().ints,
        vec![0, 1, 0, 0]
    );
    assert_eq!(
        g.initializer
            .iter()
            .find(|t| t.name == g.node[1].input[1])
            .unwrap()
            .dims,
        vec![3, 2, 1, 3]
    );
}

#[test]
fn every_generated_model_lowers_without_error_and_keeps_its_interface() {
    for i in 0..300 {
        let case = generate(0, i, &GenConfig::default());
        for unit in [UnitAxis::Last, UnitAxis::BeforeLength] {
            let mut m = emit(&case.model).unwrap();
            let before = (
                m.graph.as_ref().unwrap().input.clone(),
                m.graph.as_ref().unwrap().output.clone(),
            );
            lower(&mut m, unit).unwrap_or_else(|e| panic!("{}: {e:#}", case.id));
            let g = m.graph.as_ref().unwrap();
            assert_eq!((g.input.clone(), g.output.clone()), before);
            // Every node input is produced before use.
            let mut known: HashSet<String> = g
                .input
                .iter()
                .map(|i| i.name.clone())
                .chain(g.initializer.iter().map(|t| t.name.clone()))
                .collect();
            for n in &g.node {
                for i in n.input.iter().filter(|i| !i.is_empty()) {
                    assert!(
                        known.contains(i),
                        "{}: {} reads {i} before it exists",
                        case.id,
                        n.op_type
                    );
                }
                known.extend(n.output.iter().cloned());
            }
            assert!(g.output.iter().all(|o| known.contains(&o.name)));
        }
    }
}

#[test]
fn lowered_models_compute_what_the_originals_compute_on_tract() {
    use crate::runtime::{Runtime, Tract};
    let tract = Tract::new();
    // Left out: negative cases, and what tract refuses on the original (LpPool, short
    // SAME ConvTranspose) or on the unit axis (SAME ConvTranspose); see the ledger.
    let refused = |c: &String| {
        c == "LpPool"
            || c.starts_with("ConvTranspose.SAME")
            || c.starts_with("ConvTranspose.auto_pad=SAME")
    };
    for i in 0..120 {
        let case = generate(2, i, &GenConfig::default());
        if case.model.negative.is_some() || case.model.classes().iter().any(refused) {
            continue;
        }
        let inputs = case.inputs();
        let original = emit(&case.model).unwrap();
        let want = tract
            .load(&encode_model(&original), &inputs)
            .unwrap()
            .run(&inputs)
            .unwrap();
        for unit in [UnitAxis::Last, UnitAxis::BeforeLength] {
            let mut m = original.clone();
            lower(&mut m, unit).unwrap();
            let got = tract
                .load(&encode_model(&m), &inputs)
                .unwrap_or_else(|e| panic!("{} {unit:?}: {e:#}", case.id))
                .run(&inputs)
                .unwrap();
            assert_eq!(got[0].shape(), want[0].shape(), "{} {unit:?}", case.id);
            let (g, w) = (got[0].to_f64(), want[0].to_f64());
            let scale = w.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(w.iter()) {
                assert!(
                    a == b || (a - b).abs() <= 1e-4 * scale,
                    "{} {unit:?}: {a} vs {b}",
                    case.id
                );
            }
        }
    }
}
