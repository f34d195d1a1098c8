//! The CI workflow a user copies (.github/workflows/conformance.yml): its shard and merge
//! commands, taken from the file as written, are run here and the merged report must equal
//! the unsharded run's. `.ci/run` checks the file itself with actionlint.
//!
//! The commands start with `cargo xtask`, which runs the harness binary from the project's root
//! with the same arguments (`HARNESS_BIN` names a prebuilt one, as in the workflow); here a
//! shell function `cargo` does just that with the binary under test, because a test cannot run
//! cargo while cargo runs the tests.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{report, stable_results, text, BIN};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn workflow() -> String {
    std::fs::read_to_string(root().join(".github/workflows/conformance.yml"))
        .expect("the workflow is in the repository")
}

/// The value of `NAME: "value"` in the workflow's top-level `env:`.
fn env_value(yaml: &str, name: &str) -> String {
    let env = &yaml[yaml.find("\nenv:\n").expect("a top-level env")..];
    env.lines()
        .skip(2)
        .take_while(|l| l.starts_with("  "))
        .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in the workflow's env"))
        .trim()
        .trim_matches('"')
        .to_string()
}

/// The one `run:` command that starts with `prefix`.
fn run_line(yaml: &str, prefix: &str) -> String {
    let found: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: "))
        .filter(|c| c.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "one `run: {prefix}…` step expected");
    found[0].to_string()
}

/// Runs a workflow command with `sh` from the project's root, as a step would.
fn step(command: &str, env: &[(&str, String)]) -> Output {
    let script = format!(
        "cargo() {{ [ \"$1\" = xtask ] || exit 127; shift; \"$HARNESS_BIN\" \"$@\"; }}\n{command}"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(root())
        .env("HARNESS_BIN", BIN)
        .envs(env.iter().map(|(k, v)| (k, v.as_str())))
        .output()
        .expect("sh runs")
}

#[test]
fn the_workflows_shard_and_merge_commands_give_the_unsharded_report() {
    let yaml = workflow();
    let shards: Vec<String> = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("shard: ["))
        .expect("a shard matrix")
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let count = env_value(&yaml, "SHARDS");
    assert_eq!(
        shards.len().to_string(),
        count,
        "SHARDS must equal the length of the shard list"
    );
    let seed = env_value(&yaml, "SEED");
    let tmp = tempfile::tempdir().unwrap();
    // A smaller run than the workflow's: the commands are the same.
    let env = [
        ("CASES", "24".to_string()),
        ("SEED", seed.clone()),
        ("SHARDS", count.clone()),
        ("REPORTS", tmp.path().display().to_string()),
    ];
    let shard_cmd = run_line(&yaml, "cargo xtask conformance");
    let mut codes = Vec::new();
    for shard in &shards {
        let o = step(&shard_cmd.replace("${{ matrix.shard }}", shard), &env);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
        codes.push(o.status.code());
    }
    let merge = step(&run_line(&yaml, "cargo xtask report --merge"), &env);
    let merged_dir = tmp.path().join("merged");
    assert!(
        merged_dir.join("report.md").is_file(),
        "the job summary's file: {}",
        text(&merge)
    );
    assert!(merged_dir.join("junit.xml").is_file());
    assert!(merged_dir.join("report.html").is_file());

    let whole_dir = tmp.path().join("whole");
    let whole = Command::new(BIN)
        .args(["conformance", "--cases", "24", "--seed", &seed, "--report"])
        .arg(&whole_dir)
        .current_dir(root())
        .output()
        .unwrap();
    let (merged, whole_report) = (report(&merged_dir), report(&whole_dir));
    assert!(
        merged["summary"]["results"].as_u64().unwrap() > 24,
        "generated cases and the corpus, every converter"
    );
    assert_eq!(stable_results(&merged), stable_results(&whole_report));
    assert_eq!(merged["summary"], whole_report["summary"]);
    assert_eq!(merge.status.code(), whole.status.code(), "{}", text(&merge));
    // A shard fails exactly when one of its results does; the merge sees them all.
    if codes.contains(&Some(1)) {
        assert_eq!(merge.status.code(), Some(1));
    }
}
