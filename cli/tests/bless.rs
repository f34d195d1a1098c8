//! A bless killed at any moment leaves every golden file either as it was or as the finished
//! bless writes it, never torn or missing; the next bless completes the job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harness::onnx::proto::{decode_tensor, tensor_from_proto, tensor_to_proto};
use harness::tensor::Tensor;

const CASES: &[&str] = &[
    "wavenet",
    "tcn",
    "m5",
    "unet1d",
    "se_net",
    "resnet1d_ecg",
    "cnn1d",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Every regular file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn bless(corpus: &Path, golden: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_harness"));
    c.arg("bless")
        .arg("--corpus")
        .arg(corpus)
        .arg("--golden")
        .arg(golden);
    c.stdout(std::process::Stdio::null());
    c
}

fn is_temporary(rel: &Path) -> bool {
    rel.components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with(".tmp"))
}

#[test]
fn a_killed_bless_leaves_old_or_new_files_never_torn_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (corpus_a, corpus_b) = (tmp.path().join("a/corpus"), tmp.path().join("b/corpus"));
    for case in CASES {
        copy_dir(&repo().join("corpus").join(case), &corpus_a.join(case));
        copy_dir(&repo().join("corpus").join(case), &corpus_b.join(case));
        // Corpus B feeds the negated input, so every golden output changes.
        let input = corpus_b.join(case).join("test_data_set_0/input_0.pb");
        let proto = decode_tensor(&std::fs::read(&input).unwrap()).unwrap();
        let Tensor::F32(a) = tensor_from_proto(&proto).unwrap() else {
            panic!("float input")
        };
        let negated = tensor_to_proto(&proto.name, &Tensor::F32(a.mapv(|v| -v)));
        std::fs::write(&input, prost::Message::encode_to_vec(&negated)).unwrap();
    }
    let (golden_a, golden_b) = (tmp.path().join("a/golden"), tmp.path().join("b/golden"));
    assert!(bless(&corpus_a, &golden_a).status().unwrap().success());
    let start = Instant::now();
    assert!(bless(&corpus_b, &golden_b).status().unwrap().success());
    let full = start.elapsed();
    let (old, new) = (files(&golden_a), files(&golden_b));
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>()
    );
    assert!(
        old.iter().all(|(k, v)| new[k] != *v),
        "every golden file changes"
    );

    let work = tmp.path().join("work/golden");
    let mut mixed = 0;
    for step in 1..=12 {
        let _ = std::fs::remove_dir_all(&work);
        copy_dir(&golden_a, &work);
        let mut child = bless(&corpus_b, &work).spawn().unwrap();
        std::thread::sleep(full.mul_f64(step as f64 / 12.0) + Duration::from_millis(step % 3));
        let _ = child.kill();
        child.wait().unwrap();
        let now = files(&work);
        let (mut from_old, mut from_new) = (0, 0);
        for (rel, want_old) in &old {
            let got = now
                .get(rel)
                .unwrap_or_else(|| panic!("kill {step}: {} is missing", rel.display()));
            if got == want_old {
                from_old += 1;
            } else if *got == new[rel] {
                from_new += 1;
            } else {
                panic!(
                    "kill {step}: {} is neither the old nor the new file",
                    rel.display()
                );
            }
        }
        for rel in now.keys() {
            assert!(
                old.contains_key(rel) || is_temporary(rel),
                "kill {step}: unexpected file {}",
                rel.display()
            );
        }
        if from_old > 0 && from_new > 0 {
            mixed += 1;
        }
        // The next bless finishes the job and removes what the killed one left behind.
        assert!(bless(&corpus_b, &work).status().unwrap().success());
        assert_eq!(
            files(&work),
            new,
            "kill {step}: bless after the kill completes"
        );
    }
    assert!(
        mixed > 0,
        "no kill landed in the middle of a bless ({full:?} per bless)"
    );
}

#[test]
fn a_changed_weight_is_reported_with_the_case_and_output_named() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("corpus");
    let golden = tmp.path().join("golden");
    copy_dir(&repo().join("corpus/m5"), &corpus.join("m5"));
    copy_dir(&repo().join("golden/m5"), &golden.join("m5"));
    std::fs::copy(repo().join("golden/m5.snap"), golden.join("m5.snap")).unwrap();
    let check = |expect_ok: bool| {
        let out = bless(&corpus, &golden)
            .arg("--check")
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.success(), expect_ok, "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(check(true).contains("up to date"));
    // Change one weight of the first initializer.
    let path = corpus.join("m5/model.onnx");
    let mut model = harness::onnx::proto::decode_model(&std::fs::read(&path).unwrap()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let init = &mut graph.initializer[0];
    let mut t = tensor_from_proto(init).unwrap();
    if let Tensor::F32(a) = &mut t {
        a.as_slice_mut().unwrap()[0] += 0.5;
    }
    *init = tensor_to_proto(&init.name.clone(), &t);
    std::fs::write(&path, harness::onnx::proto::encode_model(&model)).unwrap();
    let review = check(false);
    assert!(review.contains("changed  m5"), "{review}");
    assert!(review.contains("output_0: output"), "{review}");
    assert!(
        review.contains("-   digest:") && review.contains("+   digest:"),
        "{review}"
    );
    // --check wrote nothing; a real bless takes the change and is then up to date.
    assert!(bless(&corpus, &golden).status().unwrap().success());
    assert!(check(true).contains("up to date"));
}
