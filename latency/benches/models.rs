//! The corpus models on each available runtime, one criterion benchmark per (case, converter,
//! runtime): `cargo bench -p harness --bench models` (add `-- --save-baseline NAME`, then
//! `-- --baseline NAME`, to compare builds the criterion way).
//!
//! tract always; onnxruntime and OpenVINO (default precision and f32) only when HARNESS_PYTHON
//! names the Python environment. Cases: the corpus's architectures (not the `edge_*` cases),
//! or those named in HARNESS_BENCH_CASES (comma-separated). `cargo xtask perf` is the
//! statistically careful measurement; this is for quick local comparisons.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use latency::measure::ModelRun;
use latency::PerfOptions;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus")
}

fn models(c: &mut Criterion) {
    let python = std::env::var_os("HARNESS_PYTHON").is_some();
    let mut options = PerfOptions {
        corpus: corpus(),
        cases: vec![],
        converters: vec!["identity".into(), "lower1d".into()],
        runtimes: vec!["tract".into()],
        protocol: latency::measure::Protocol::with_budget(Duration::from_secs(1)),
        slowdown: None,
        timeout: Duration::from_secs(60),
    };
    if python {
        options.runtimes.push("onnxruntime".into());
        options
            .converters
            .extend(["openvino".into(), "openvino:f32".into()]);
    }
    let wanted: Option<Vec<String>> = std::env::var("HARNESS_BENCH_CASES")
        .ok()
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let cases = latency::select_cases(&options).expect("corpus/ with cases");
    let configs = latency::configs(&options).expect("converters and runtimes");
    let mut g = c.benchmark_group("model");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(300));
    g.measurement_time(Duration::from_secs(1));
    for (name, dir) in cases {
        let selected = match &wanted {
            Some(w) => w.contains(&name),
            None => !name.starts_with("edge_") && !name.contains('/'),
        };
        if !selected {
            continue;
        }
        let (model, inputs) = latency::read_case(&dir).expect("readable case");
        for config in &configs {
            let label = format!("{name}/{}", config.label());
            let (loaded, _work) = match latency::load(config, &model, &inputs, options.timeout) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{label}: not benchmarked: {e:#}");
                    continue;
                }
            };
            let mut run = ModelRun {
                loaded,
                inputs: inputs.clone(),
            };
            g.bench_function(&label, |b| {
                b.iter_custom(|iters| {
                    // Workers time inside themselves; in-process runtimes are timed here.
                    let mut samples = Vec::with_capacity(iters as usize);
                    use latency::measure::Timeable;
                    run.batch(iters as usize, 1, &mut samples).expect("runs");
                    Duration::from_secs_f64(samples.iter().sum::<f64>() * 1e-6)
                })
            });
        }
    }
    g.finish();
}

/// The protocol's per-run timing against a bare loop, on the smallest corpus model with
/// tract: the harness's timing overhead (docs/PERFORMANCE.md, timing overhead).
fn overhead(c: &mut Criterion) {
    let options = PerfOptions {
        corpus: corpus(),
        cases: vec![],
        converters: vec!["identity".into()],
        runtimes: vec!["tract".into()],
        protocol: latency::measure::Protocol::with_budget(Duration::from_secs(1)),
        slowdown: None,
        timeout: Duration::from_secs(60),
    };
    let (name, dir) = latency::select_cases(&options)
        .expect("corpus/ with cases")
        .into_iter()
        .min_by_key(|(_, d)| {
            std::fs::metadata(d.join("model.onnx"))
                .map(|m| m.len())
                .unwrap_or(u64::MAX)
        })
        .expect("a case");
    let configs = latency::configs(&options).expect("tract");
    let (model, inputs) = latency::read_case(&dir).expect("readable case");
    let (loaded, _work) =
        latency::load(&configs[0], &model, &inputs, options.timeout).expect("loads");
    let mut run = ModelRun { loaded, inputs };
    let mut g = c.benchmark_group(format!("overhead/{name}"));
    g.sample_size(20);
    g.bench_function("bare_loop", |b| {
        b.iter_custom(|iters| {
            let per_run = run.bare_loop(iters as usize).expect("runs");
            Duration::from_secs_f64(per_run * iters as f64 * 1e-6)
        })
    });
    g.bench_function("harness_loop", |b| {
        b.iter_custom(|iters| {
            use latency::measure::Timeable;
            let mut samples = Vec::with_capacity(iters as usize);
            let t = std::time::Instant::now();
            run.batch(iters as usize, 1, &mut samples).expect("runs");
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, overhead, models);
criterion_main!(benches);
