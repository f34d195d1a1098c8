use super::*;
use crate::gen::{generate, GenConfig};
use crate::model::Layer;
use crate::onnx::proto::encode_model;

fn ops(m: &pb::ModelProto) -> Vec<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.clone())
        .collect()
}

fn one_layer(layer: Layer, opset: i64) -> ModelDesc {
    ModelDesc::new([1, 4, 10], vec![layer], opset, 0, WeightDist::Scaled)
}

#[test]
fn emission_is_byte_for_byte_reproducible() {
    for i in 0..50 {
        let case = generate(9, i, &GenConfig::default());
        assert_eq!(
            encode_model(&emit(&case.model).unwrap()),
            encode_model(&emit(&case.model).unwrap())
        );
    }
}

#[test]
fn clip_follows_the_opset_form() {
    for (opset, inputs, attrs) in [(17, 3, 0), (10, 1, 2)] {
        let m = emit(&one_layer(Layer::Clip { min: 0.0, max: 6.0 }, opset)).unwrap();
        let clip = &m.graph.as_ref().unwrap().node[0];
        assert_eq!(
            (clip.input.len(), clip.attribute.len()),
            (inputs, attrs),
            "opset {opset}"
        );
    }
}
