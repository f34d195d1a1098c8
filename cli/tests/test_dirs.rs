//! End-to-end tests of test-case directories (the corpus, `--onnx-tests`): valid and
//! malformed cases, resource limits, order and threads.

use std::path::Path;

use serde_json::Value;

mod common;
use common::*;

#[test]
fn test_case_directories_run_on_every_thread_and_report_in_directory_order() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let tmp = tempfile::tempdir().unwrap();
    let run = |jobs: &str| {
        let dir = tmp.path().join(jobs);
        let out = harness(&[
            "conformance",
            "--cases",
            "0",
            "--corpus",
            corpus.to_str().unwrap(),
            "--converter",
            "identity",
            "--max-bundles",
            "0",
            "--jobs",
            jobs,
            "--report",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        report(&dir)
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(stable_results(&one), stable_results(&two));
    let cases: Vec<&str> = one["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["case"].as_str().unwrap())
        .collect();
    let mut sorted = cases.clone();
    sorted.sort();
    assert_eq!(cases, sorted, "results in directory order");
    assert!(cases.len() >= 80, "{}", cases.len());
}

#[test]
fn onnx_tests_runs_valid_cases_and_gives_malformed_ones_an_error_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    for (i, name) in ["good_a", "good_b"].iter().enumerate() {
        let out = harness(&[
            "emit",
            "--seed",
            "3",
            "--index",
            &i.to_string(),
            suite.join(name).to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    // A model file that is not protobuf.
    let garbage = suite.join("garbage_model");
    std::fs::create_dir_all(garbage.join("test_data_set_0")).unwrap();
    std::fs::write(garbage.join("model.onnx"), b"\xff\xff\xff\xffnot a model").unwrap();
    // A valid model whose input file is truncated.
    let truncated = suite.join("truncated_input");
    let out = harness(&[
        "emit",
        "--seed",
        "3",
        "--index",
        "2",
        truncated.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let input = truncated.join("test_data_set_0/input_0.pb");
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();

    let rdir = tmp.path().join("report");
    let out = conformance(
        &rdir,
        &[
            "--cases",
            "0",
            "--converter",
            "identity",
            "--onnx-tests",
            suite.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    let r = report(&rdir);
    let by_case = |case: &str| -> Vec<(String, String, String)> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["case"] == case)
            .map(|x| {
                (
                    x["converter"].as_str().unwrap().into(),
                    x["verdict"].as_str().unwrap().into(),
                    x["message"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    };
    for good in ["suite/good_a", "suite/good_b"] {
        let rs = by_case(good);
        assert_eq!(rs.len(), 2, "{good}: oracle + identity: {rs:?}");
        assert!(rs.iter().all(|(_, v, _)| v == "pass"), "{good}: {rs:?}");
    }
    let g = by_case("suite/garbage_model");
    assert!(
        !g.is_empty() && g.iter().all(|(_, v, m)| v != "pass" && !m.is_empty()),
        "{g:?}"
    );
    let t = by_case("suite/truncated_input");
    assert!(
        !t.is_empty()
            && t.iter()
                .all(|(_, v, m)| v == "error" && m.contains("input_0.pb")),
        "{t:?}"
    );
}

fn write_case(
    dir: &std::path::Path,
    model: &[u8],
    inputs: &[harness::tensor::Tensor],
    outputs: &[harness::tensor::Tensor],
) {
    use prost::Message;
    let set = dir.join("test_data_set_0");
    std::fs::create_dir_all(&set).unwrap();
    std::fs::write(dir.join("model.onnx"), model).unwrap();
    for (j, t) in inputs.iter().enumerate() {
        std::fs::write(
            set.join(format!("input_{j}.pb")),
            harness::onnx::proto::tensor_to_proto("x", t).encode_to_vec(),
        )
        .unwrap();
    }
    for (j, t) in outputs.iter().enumerate() {
        std::fs::write(
            set.join(format!("output_{j}.pb")),
            harness::onnx::proto::tensor_to_proto("y", t).encode_to_vec(),
        )
        .unwrap();
    }
}

fn relu_model(op: &str, opset: i64, dims: &[usize], cycle: bool) -> Vec<u8> {
    use harness::onnx::proto::{encode_model, value_info, Dim};
    use harness::tensor::DType;
    use tract_onnx::pb;
    let d: Vec<Dim> = dims.iter().map(|&n| Dim::Fixed(n)).collect();
    let mut nodes = vec![pb::NodeProto {
        op_type: op.into(),
        input: vec![if cycle { "z".into() } else { "x".into() }],
        output: vec!["y".into()],
        ..Default::default()
    }];
    if cycle {
        nodes.push(pb::NodeProto {
            op_type: "Relu".into(),
            input: vec!["y".into()],
            output: vec!["z".into()],
            ..Default::default()
        });
    }
    encode_model(&pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(pb::GraphProto {
            node: nodes,
            input: vec![value_info("x", DType::Float, &d)],
            output: vec![value_info("y", DType::Float, &d)],
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[test]
fn a_suite_mixing_valid_and_malformed_cases_runs_to_the_end_without_a_panic() {
    use harness::tensor::Tensor;
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("suite");
    let x = Tensor::f32(&[1, 2, 3], vec![-1.0, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
    let y = Tensor::f32(&[1, 2, 3], vec![0.0, 2.0, 0.0, 4.0, 0.0, 6.0]).unwrap();
    write_case(
        &suite.join("valid_relu"),
        &relu_model("Relu", 17, &[1, 2, 3], false),
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("random_bytes"),
        b"\x08\x96\x01\xff\xfe garbage \x00\x13",
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    let good = relu_model("Relu", 17, &[1, 2, 3], false);
    write_case(
        &suite.join("truncated_model"),
        &good[..good.len() / 2],
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("cycle"),
        &relu_model("Relu", 17, &[1, 2, 3], true),
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("unknown_op"),
        &relu_model("FrobnicateV9", 17, &[1, 2, 3], false),
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("unknown_opset"),
        &relu_model("Relu", 99, &[1, 2, 3], false),
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("gigantic_dims"),
        &relu_model("Relu", 17, &[1 << 20, 1 << 20, 1 << 20], false),
        std::slice::from_ref(&x),
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("wrong_input_type"),
        &good,
        &[Tensor::I64(ndarray::ArrayD::zeros(ndarray::IxDyn(&[
            1, 2, 3,
        ])))],
        std::slice::from_ref(&y),
    );
    write_case(
        &suite.join("too_many_inputs"),
        &good,
        &[x.clone(), x.clone()],
        std::slice::from_ref(&y),
    );
    write_case(&suite.join("missing_data_set"), &good, &[], &[]);
    std::fs::remove_dir_all(suite.join("missing_data_set/test_data_set_0")).unwrap();

    let rdir = tmp.path().join("report");
    let out = conformance(
        &rdir,
        &[
            "--cases",
            "0",
            "--converter",
            "identity",
            "--onnx-tests",
            suite.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    let r = report(&rdir);
    let results = r["results"].as_array().unwrap();
    for x in results.iter().filter(|x| x["case"] == "suite/valid_relu") {
        assert_eq!(x["verdict"], "pass", "{x}");
    }
    // Every malformed case has a result that is not a pass and says what is wrong. (A model
    // with an unknown opset still runs on tract; the oracle refuses it and names the opset.)
    for (case, needle) in [
        ("random_bytes", "ModelProto"),
        ("truncated_model", "ModelProto"),
        ("cycle", "cycle"),
        ("unknown_op", "FrobnicateV9"),
        ("unknown_opset", "99"),
        ("gigantic_dims", "declared"),
        ("wrong_input_type", "element type"),
        ("too_many_inputs", "feeds 2"),
        ("missing_data_set", "test_data_set"),
    ] {
        let id = format!("suite/{case}");
        let flagged: Vec<&Value> = results
            .iter()
            .filter(|x| x["case"] == id.as_str() && x["verdict"] != "pass")
            .collect();
        assert!(!flagged.is_empty(), "{case}: no failing result");
        assert!(
            flagged
                .iter()
                .any(|x| x["message"].as_str().unwrap_or("").contains(needle)),
            "{case}: no message mentions {needle:?}: {flagged:?}"
        );
        assert!(
            flagged
                .iter()
                .all(|x| !x["message"].as_str().unwrap_or("").contains("panic")),
            "{case}: {flagged:?}"
        );
    }
    let names: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|x| x["case"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10, "every case reported: {names:?}");
}

#[test]
fn cases_over_the_resource_limits_get_too_large_and_are_not_run() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (flag, value, what) in [
        ("--max-elements", "5000", "--max-elements"),
        ("--max-case-bytes", "1000000", "--max-case-bytes"),
    ] {
        let dir = tmp.path().join(flag.trim_start_matches('-'));
        let out = harness(&[
            "conformance",
            "--report",
            dir.to_str().unwrap(),
            "--cases",
            "0",
            "--corpus",
            corpus.to_str().unwrap(),
            "--converter",
            "identity",
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let r = report(&dir);
        let big: Vec<&Value> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["case"] == "corpus/m5")
            .collect();
        assert!(!big.is_empty(), "results for m5");
        for x in big {
            assert_eq!(x["verdict"], "too-large", "{x}");
            let m = x["message"].as_str().unwrap();
            assert!(m.contains(what), "{m}");
            // Not run: no latency was measured.
            assert!(x["latency_us"].is_null(), "{x}");
        }
        // Small cases still pass under the same limits.
        let small = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["case"] == "corpus/edge_c_equals_l" && x["converter"] == "identity")
            .unwrap();
        assert_eq!(small["verdict"], "pass", "{small}");
    }
}
