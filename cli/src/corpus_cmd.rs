//! The corpus commands of the `harness` program: `corpus-build`, `bless`, `corpus-table`.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use harness::corpus::stats::ModelStats;
use harness::corpus::CaseToml;
use harness::onnx::{proto, testcase};
use harness::tensor::Named;

pub fn corpus_build(corpus: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(corpus).with_context(|| format!("{}", corpus.display()))?;
    for b in harness::corpus::builtin()? {
        let dir = harness::corpus::write_case(corpus, &b)?;
        println!("wrote {}", dir.display());
    }
    println!("now run `cargo xtask bless` to review the golden outputs");
    Ok(ExitCode::SUCCESS)
}

pub fn bless(
    corpus: &std::path::Path,
    golden: &std::path::Path,
    check: bool,
) -> anyhow::Result<ExitCode> {
    use harness::corpus::golden::Change;
    anyhow::ensure!(
        corpus.is_dir(),
        "{}: no such corpus directory",
        corpus.display()
    );
    std::fs::create_dir_all(golden).with_context(|| format!("{}", golden.display()))?;
    let changes = harness::corpus::golden::bless(corpus, golden, check)?;
    let verb = if check { "would" } else { "did" };
    for c in &changes {
        match c {
            Change::Added { name } => println!("added    {name} ({verb} write golden outputs)"),
            Change::Removed { path } => {
                println!("removed  {} (no such corpus case)", path.display())
            }
            Change::Changed { name, old, new } => {
                println!("changed  {name}");
                for line in diff_lines(old, new) {
                    println!("    {line}");
                }
            }
        }
    }
    if changes.is_empty() {
        println!("golden outputs are up to date");
        return Ok(ExitCode::SUCCESS);
    }
    if check {
        println!(
            "{} golden change(s) pending; run `cargo xtask bless`",
            changes.len()
        );
        return Ok(ExitCode::from(1));
    }
    println!(
        "{} golden change(s) written under {}; review them with `git diff {}` before committing",
        changes.len(),
        golden.display(),
        golden.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Line-by-line differences of two snapshot summaries (`-` old, `+` new), keeping the output
/// headers so each change names its output.
fn diff_lines(old: &str, new: &str) -> Vec<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut out = Vec::new();
    let mut header = "";
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        if let Some(l) = y.filter(|l| l.starts_with("output_")) {
            header = l;
        }
        if x != y {
            if !header.is_empty() && !out.iter().any(|o: &String| o == header) {
                out.push(header.to_string());
            }
            if let Some(x) = x {
                out.push(format!("- {x}"));
            }
            if let Some(y) = y {
                out.push(format!("+ {y}"));
            }
        }
    }
    out
}

pub fn corpus_table(corpus: &std::path::Path, reports: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let label = corpus
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (cells, columns) = verdict_cells(&label, reports)?;
    print!("| case | input fed | params | MFLOPs |");
    for c in &columns {
        print!(" {c} |");
    }
    println!();
    print!("|---|---|---:|---:|");
    for _ in &columns {
        print!("---|");
    }
    println!();
    for case in harness::corpus::list(corpus)? {
        let toml = CaseToml::read(&case.dir).ok();
        let tc = testcase::read(&case.dir)?;
        let (stats, inputs) = model_stats(&tc)?;
        print!(
            "| {} | {} | {} | {:.3} |",
            case.name,
            fed(toml.as_ref(), &inputs),
            stats.params,
            stats.flops as f64 / 1e6
        );
        for c in &columns {
            let cell = cells
                .get(&(case.name.clone(), c.clone()))
                .map(String::as_str)
                .unwrap_or("-");
            print!(" {cell} |");
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// The corpus table's cells: (case, "converter on runtime") -> verdict.
type Cells = BTreeMap<(String, String), String>;

/// The verdict cells of the corpus table from `reports` (a run's report directory or its
/// report.json), keyed by (case, "converter on runtime"), and the columns in the order the
/// reports first name them. Only cases of the corpus named `label` count, and not the
/// oracle's own results. A failure the ledger expects reads "VERDICT (known)"; an
/// unexpected one is in bold, so it stands out in the table.
fn verdict_cells(label: &str, reports: &[PathBuf]) -> anyhow::Result<(Cells, Vec<String>)> {
    let mut cells = Cells::new();
    let mut columns: Vec<String> = Vec::new();
    for r in reports {
        let path = if r.is_dir() {
            r.join("report.json")
        } else {
            r.clone()
        };
        let report = harness::report::Report::load(&path)?;
        for x in report.results.iter().filter(|x| x.converter != "oracle") {
            let Some(case) = x.case.strip_prefix(&format!("{label}/")) else {
                continue;
            };
            let column = format!("{} on {}", x.converter, x.runtime);
            if !columns.contains(&column) {
                columns.push(column.clone());
            }
            let cell = match (x.verdict.name(), &x.expected) {
                ("pass", _) => "pass".to_string(),
                (v, Some(_)) => format!("{v} (known)"),
                (v, None) => format!("**{v}**"),
            };
            cells.insert((case.to_string(), column), cell);
        }
    }
    Ok((cells, columns))
}

/// The parameters and FLOPs of a test case's model, counted on its first data set, with
/// that data set's inputs (also shown when case.toml does not describe them). The inputs are
/// named after the graph inputs that are not initializers: those a caller feeds.
fn model_stats(tc: &testcase::TestCase) -> anyhow::Result<(ModelStats, Vec<Named>)> {
    let model = proto::decode_model(&tc.model)?;
    let graph = model.graph.clone().unwrap_or_default();
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let names: Vec<String> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .map(|i| i.name.clone())
        .collect();
    let inputs: Vec<Named> = names
        .into_iter()
        .zip(
            tc.data_sets
                .first()
                .map(|s| s.inputs.clone())
                .unwrap_or_default(),
        )
        .map(|(name, tensor)| Named { name, tensor })
        .collect();
    let stats = harness::corpus::stats::stats(&model, &inputs)?;
    Ok((stats, inputs))
}

/// The "input fed" column: what case.toml says each input is fed with and its declared
/// shape; for a case without a readable case.toml, the shapes of the data set's inputs.
fn fed(toml: Option<&CaseToml>, inputs: &[Named]) -> String {
    match toml {
        Some(t) => t
            .inputs
            .iter()
            .map(|i| format!("{:?} ({})", i.fed, i.declared.join("×")))
            .collect::<Vec<_>>()
            .join(", "),
        None => inputs
            .iter()
            .map(|i| format!("{:?}", i.tensor.shape()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
