//! The code's own rules, checked in plain `cargo test` (ARCHITECTURE.md states them):
//!
//! * the top-level modules of the `harness` library import one way, in the pipeline's order
//!   ([`LAYERS`]): a module imports only modules listed before it, so there is no cycle;
//! * the oracle stands on the ONNX reader, tensors and limits alone;
//! * the crates depend one way: `harness` ← `latency` ← `harness-cli`;
//! * comments cite only files inside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `harness/src`, in import order: each may import only those before
/// it. A new module gets its place here.
const LAYERS: &[&str] = &[
    "limits",
    "fsutil",
    "seed",
    "tensor",
    "isolate",
    "model",
    "onnx",
    "worker",
    "gen",
    "oracle",
    "flops",
    "runtime",
    "convert",
    "compare",
    "results",
    "ledger",
    "report",
    "corpus",
    "fault",
    "conformance",
    "fuzzing",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file under `dir`, skipping `tests/` directories and `tests.rs` files (unit
/// tests may reach anywhere).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "tests") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.file_name().is_some_and(|n| n != "tests.rs")
        {
            out.push(p);
        }
    }
}

/// The text of a source file without its unit-test module and its comments.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules each top-level module of the crate at `src` refers to
/// (`crate::NAME` paths and `use crate::{NAME, …}` groups).
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_dir() {
            modules.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "lib" && stem != "main" {
                modules.insert(stem.to_string());
            }
        }
    }
    let mut imports = BTreeMap::new();
    for m in &modules {
        let mut files = Vec::new();
        let file = src.join(format!("{m}.rs"));
        if file.is_file() {
            files.push(file);
        }
        rust_files(&src.join(m), &mut files);
        let mut uses = BTreeSet::new();
        for f in files {
            let code = code_of(&std::fs::read_to_string(&f).unwrap());
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    group
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .collect()
                } else {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    vec![&rest[..end]]
                };
                for n in names {
                    if modules.contains(n) && n != m {
                        uses.insert(n.to_string());
                    }
                }
            }
        }
        imports.insert(m.clone(), uses);
    }
    imports
}

/// Groups of modules that import each other (strongly connected components of two or more).
fn cycles(imports: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are in one cycle when each reaches the other.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(m) = stack.pop() {
            for n in imports.get(&m).into_iter().flatten() {
                if seen.insert(n.clone()) {
                    stack.push(n.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        imports.keys().map(|m| (m, reach(m))).collect();
    let mut groups: Vec<Vec<String>> = Vec::new();
    for m in imports.keys() {
        if groups.iter().any(|g| g.contains(m)) {
            continue;
        }
        let group: Vec<String> = imports
            .keys()
            .filter(|n| *n == m || (reaches[m].contains(*n) && reaches[n].contains(m)))
            .cloned()
            .collect();
        if group.len() > 1 {
            groups.push(group);
        }
    }
    groups
}

/// Every import against the order of `layers`, and every module `layers` does not place.
fn order_violations(imports: &BTreeMap<String, BTreeSet<String>>, layers: &[&str]) -> Vec<String> {
    let place = |m: &str| layers.iter().position(|l| *l == m);
    let mut out = Vec::new();
    for (m, uses) in imports {
        let Some(pm) = place(m) else {
            out.push(format!("module `{m}` has no place in LAYERS"));
            continue;
        };
        for u in uses {
            if place(u).is_none_or(|pu| pu >= pm) {
                out.push(format!(
                    "`{m}` imports `{u}`, which LAYERS puts after it (or not at all)"
                ));
            }
        }
    }
    out
}

#[test]
fn harness_modules_import_one_way_in_pipeline_order() {
    let imports = module_imports(&root().join("harness/src"));
    let cycles = cycles(&imports);
    assert!(cycles.is_empty(), "import cycles: {cycles:?}");
    let violations = order_violations(&imports, LAYERS);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checks_see_a_reintroduced_cycle() {
    // A copy of the real tree with one deliberate back edge: `results` importing `report`.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_tree(&root().join("harness/src"), &src);
    let results = src.join("results.rs");
    let mut text = std::fs::read_to_string(&results).unwrap();
    text.push_str("\npub fn back_edge() -> Option<crate::report::Report> {\n    None\n}\n");
    std::fs::write(&results, text).unwrap();
    let imports = module_imports(&src);
    let cycles = cycles(&imports);
    assert!(
        cycles
            .iter()
            .any(|g| g.contains(&"results".to_string()) && g.contains(&"report".to_string())),
        "{cycles:?}"
    );
    let violations = order_violations(&imports, LAYERS);
    assert!(
        violations
            .iter()
            .any(|v| v.contains("`results` imports `report`")),
        "{violations:?}"
    );
}

#[test]
fn the_oracle_stands_on_the_onnx_reader_tensors_and_limits_alone() {
    let imports = module_imports(&root().join("harness/src"));
    let allowed: BTreeSet<String> = ["onnx", "tensor", "limits"].map(String::from).into();
    let extra: Vec<&String> = imports["oracle"].difference(&allowed).collect();
    assert!(extra.is_empty(), "the oracle imports {extra:?}");
}

#[test]
fn crates_depend_one_way_harness_then_latency_then_the_cli() {
    let manifest =
        |dir: &str| std::fs::read_to_string(root().join(dir).join("Cargo.toml")).unwrap();
    let deps = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect()
    };
    let harness = deps(&manifest("harness"));
    assert!(!harness.iter().any(|d| d == "latency" || d == "harness-cli"));
    let latency = deps(&manifest("latency"));
    assert!(latency.iter().any(|d| d == "harness"));
    assert!(!latency.iter().any(|d| d == "harness-cli"));
    let cli = deps(&manifest("cli"));
    assert!(cli.iter().any(|d| d == "harness") && cli.iter().any(|d| d == "latency"));
}

#[test]
fn comments_cite_only_files_inside_the_repository() {
    // Spelled in pieces so that this file does not match itself.
    let outside = [
        ["SPEC", ".md"].concat(),
        ["SPEC", " §"].concat(),
        ["EDGE_", "CASES"].concat(),
        ["../", "shared"].concat(),
        ["issue", " #"].concat(),
        ["DEVELOPERS", ".md"].concat(),
    ];
    let mut files = Vec::new();
    for dir in [
        "harness/src",
        "harness/tests",
        "harness/benches",
        "harness/python",
        "latency",
        "cli",
        "xtask",
    ] {
        collect_sources(&root().join(dir), &mut files);
    }
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            if let Some(o) = outside.iter().find(|o| line.contains(o.as_str())) {
                found.push(format!("{}:{}: cites `{o}`", f.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Source files (Rust, Python, TOML) under `dir`, tests included.
fn collect_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_sources(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "rs" || x == "py" || x == "toml")
        {
            out.push(p);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
