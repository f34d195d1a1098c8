//! Cost of each stage of the pipeline on the default model distribution, and of a whole case.
//!
//! `cargo bench -p harness --bench pipeline` (add `-- --save-baseline NAME` to keep a baseline).
//! Every iteration walks the same 64 seeded cases, so numbers compare across builds.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use harness::compare::{compare, Tolerance};
use harness::conformance::{generated_subject, oracle_expected, Options, Runner};
use harness::gen::{generate, GenConfig};
use harness::onnx::{emit::emit, proto::encode_model};
use harness::runtime::{Precision, Runtime, Tract};

const CASES: u64 = 64;

fn stages(c: &mut Criterion) {
    let cfg = GenConfig::default();
    let tract = Tract::new();
    // The first CASES cases that every stage completes: negative cases (refused by design) and
    // models tract refuses (ledgered, e.g. LpPool) would stop a stage half-way.
    let cases: Vec<_> = (0..)
        .map(|i| generate(0, i, &cfg))
        .filter(|c| {
            let Ok(p) = emit(&c.model) else { return false };
            let inputs = c.inputs();
            oracle_expected(&p, &inputs).is_ok()
                && tract
                    .load(&encode_model(&p), &inputs)
                    .is_ok_and(|mut l| l.run(&inputs).is_ok())
        })
        .take(CASES as usize)
        .collect();
    let protos: Vec<_> = cases.iter().map(|c| emit(&c.model).unwrap()).collect();
    let inputs: Vec<_> = cases.iter().map(|c| c.inputs()).collect();
    let bytes: Vec<_> = protos.iter().map(encode_model).collect();

    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Elements(CASES));
    g.sample_size(10);
    g.bench_function("generate", |b| {
        b.iter(|| {
            (0..CASES)
                .map(|i| generate(0, i, &cfg).model.layers.len())
                .sum::<usize>()
        })
    });
    g.bench_function("emit", |b| {
        b.iter(|| {
            cases
                .iter()
                .map(|c| encode_model(&emit(&c.model).unwrap()).len())
                .sum::<usize>()
        })
    });
    g.bench_function("oracle", |b| {
        b.iter(|| {
            protos
                .iter()
                .zip(&inputs)
                .map(|(p, i)| oracle_expected(p, i).unwrap().len())
                .sum::<usize>()
        })
    });
    g.bench_function("tract_load", |b| {
        b.iter(|| {
            bytes
                .iter()
                .zip(&inputs)
                .map(|(m, i)| tract.load(m, i).is_ok() as usize)
                .sum::<usize>()
        })
    });
    let mut loaded: Vec<_> = bytes
        .iter()
        .zip(&inputs)
        .map(|(m, i)| tract.load(m, i).unwrap())
        .collect();
    g.bench_function("tract_run", |b| {
        b.iter(|| {
            loaded
                .iter_mut()
                .zip(&inputs)
                .map(|(l, i)| l.run(i).unwrap().len())
                .sum::<usize>()
        })
    });
    let expected: Vec<_> = protos
        .iter()
        .zip(&inputs)
        .map(|(p, i)| oracle_expected(p, i).unwrap())
        .collect();
    let outputs: Vec<_> = loaded
        .iter_mut()
        .zip(&inputs)
        .map(|(l, i)| l.run(i).unwrap())
        .collect();
    g.bench_function("compare", |b| {
        b.iter(|| {
            expected
                .iter()
                .zip(&outputs)
                .map(|(e, o)| {
                    compare(e, o, Precision::F32, Tolerance::default())
                        .stats
                        .count
                })
                .sum::<usize>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("case");
    g.throughput(Throughput::Elements(CASES));
    g.sample_size(10);
    let runner = Runner::new(Options {
        converters: vec!["identity".into()],
        ..Options::default()
    })
    .unwrap();
    g.bench_function("identity_on_tract", |b| {
        b.iter_batched(
            || (),
            |_| {
                (0..CASES)
                    .map(|i| {
                        runner
                            .run_subject(&generated_subject(0, i, false, &cfg))
                            .len()
                    })
                    .sum::<usize>()
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A run of OpenVINO with f32 inference on the same generated cases, packed (its default, 16
/// cases per model) and case by case (`--pack 1`), verdicts checked equal. Needs the Python
/// environment (`cargo xtask setup`); without it the group is skipped.
fn packing(c: &mut Criterion) {
    if harness::worker::find_python().is_none() {
        eprintln!("SKIPPED: packing bench needs .venv (cargo xtask setup)");
        return;
    }
    const PACKED_CASES: u64 = 192;
    let run = |pack: usize| {
        Runner::new(Options {
            cases: PACKED_CASES,
            seed: 1,
            converters: vec!["openvino:f32".into()],
            max_bundles: 0,
            pack: Some(pack),
            ..Options::default()
        })
        .unwrap()
        .run(&|_| {})
        .unwrap()
        .results
    };
    let verdicts = |pack| run(pack).iter().map(|r| r.verdict).collect::<Vec<_>>();
    assert_eq!(verdicts(1), verdicts(16), "packing changed a verdict");
    let mut g = c.benchmark_group("openvino_f32_run");
    g.throughput(Throughput::Elements(PACKED_CASES));
    g.sample_size(10);
    for pack in [1, 16] {
        g.bench_function(format!("pack_{pack}"), |b| b.iter(|| run(pack).len()));
    }
    g.finish();
}

criterion_group!(benches, stages, packing);
criterion_main!(benches);
