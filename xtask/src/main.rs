//! `cargo xtask`: the project's task runner.
//!
//! Thin on purpose: it builds the `harness` binary (profile `fast`: release plus thin LTO) and calls it, or runs the
//! test suite. No dependencies beyond std.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <task> [args]

tasks:
  conformance [ARGS]   build the harness (fast profile) and run `harness conformance ARGS`
  test [ARGS]          set up the Python environment, then run every test
                       (cargo test --workspace --release ARGS); property tests use
                       PROPTEST_RNG_SEED (fixed unless set)
  setup [--stack S]    create .venv/ with the pinned Python packages (OpenVINO, onnxruntime,
                       onnx, onnxsim) from harness/python/requirements.txt; --stack S (or all):
                       the stack S's own .venv-S/ from harness/python/stacks/S.requirements.txt
  fuzz [ARGS]          fuzzing campaign until --budget SECS or Ctrl-C; new failure signatures
                       are reduced, bundled and saved to corpus/regressions/
  bless [--check]      recompute the corpus's golden outputs with the f64 oracle, rewrite the
                       ones that changed (golden/), and show each change for review
  perf [ARGS]          latency of the corpus models (reports/latest/perf.md, perf.html);
                       --against [REV]: this tree and revision REV (default: the merge base
                       with main) built and measured side by side in one run (REV is built
                       in target/against/; exit 1 on a regression); --save NAME / --baseline
                       NAME (reports/baselines/NAME.json, on the CPU model that saved it);
                       --self-test (false alarms and power on this machine)
  report --merge DIR…  merge the reports of several runs (shards) into one, judged by the ledger
  harness ARGS         build the harness (fast profile) and run it with ARGS

HARNESS_BIN=PATH makes the tasks that run the harness use that binary instead of building it.
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("conformance") => {
            setup_if_needed(&rest).and_then(|_| run_harness(&prepend("conformance", rest)))
        }
        Some("setup") => setup_command(&rest),
        Some("harness") => run_harness(&rest),
        Some("report") => run_harness(&prepend("report", rest)),
        Some("bless") => run_harness(&prepend("bless", rest)),
        Some("fuzz") => setup_if_needed(&rest).and_then(|_| run_harness(&prepend("fuzz", rest))),
        Some("perf") => setup_if_needed(&rest).and_then(|_| perf(rest)),
        Some("test") => test(&rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            return if task.is_some() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
        Some(other) => Err(format!("unknown task '{other}'; run `cargo xtask help`")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(2)
        }
    }
}

fn prepend(first: &str, rest: Vec<String>) -> Vec<String> {
    std::iter::once(first.to_string()).chain(rest).collect()
}

/// The workspace root (xtask lives one level below it).
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(project_root());
    c
}

fn status_code(status: std::process::ExitStatus) -> ExitCode {
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::from(1),
    }
}

/// `cargo` arguments that build the harness binary (profile `fast`).
const BUILD_HARNESS: [&str; 8] = [
    "build",
    "--quiet",
    "--profile",
    "fast",
    "--package",
    "harness-cli",
    "--bin",
    "harness",
];

/// The harness binary: built here, or the one `HARNESS_BIN` names (a CI job that runs a
/// binary another job built, so the shards of a run do not each compile it).
fn build_harness() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("HARNESS_BIN") {
        return std::fs::canonicalize(&bin)
            .ok()
            .filter(|b| b.is_file())
            .ok_or_else(|| format!("HARNESS_BIN={}: no such file", bin.to_string_lossy()));
    }
    let status = cargo()
        .args(BUILD_HARNESS)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the harness failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("fast").join("harness"))
}

fn run_harness(args: &[String]) -> Result<ExitCode, String> {
    let bin = build_harness()?;
    let status = Command::new(&bin)
        .args(args)
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    Ok(status_code(status))
}

/// `perf`: with `--against [REV]`, builds REV and runs `harness perf --against-bin` on it;
/// otherwise `harness perf` as it is.
fn perf(args: Vec<String>) -> Result<ExitCode, String> {
    let Some((rev, mut rest)) = split_against(&args) else {
        return run_harness(&prepend("perf", args));
    };
    let rev = match rev {
        Some(rev) => rev,
        None => default_reference()?,
    };
    // The revision is checked and built before this tree, so a wrong name fails at once.
    let commit = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])
    .map_err(|_| format!("--against {rev}: not a revision of this repository"))?;
    let reference = build_revision(&commit)?;
    let short = &commit[..commit.len().min(12)];
    let name = if rev == commit || rev.starts_with(short) {
        short.to_string()
    } else {
        format!("{rev} ({short})")
    };
    rest.extend(["--against-bin".into(), reference.display().to_string()]);
    rest.extend(["--against-name".into(), name]);
    run_harness(&prepend("perf", rest))
}

/// Splits `--against [REV]` (or `--against=REV`) off the perf arguments: `None` when it is
/// not there; `Some((None, rest))` when it names no revision.
fn split_against(args: &[String]) -> Option<(Option<String>, Vec<String>)> {
    let i = args
        .iter()
        .position(|a| a == "--against" || a.starts_with("--against="))?;
    let mut rest = args.to_vec();
    let flag = rest.remove(i);
    let rev = match flag.strip_prefix("--against=") {
        Some(v) => Some(v.to_string()),
        None if rest.get(i).is_some_and(|v| !v.starts_with('-')) => Some(rest.remove(i)),
        None => None,
    };
    Some((rev, rest))
}

/// The default reference: where this branch left main (`main`, else `origin/main`).
fn default_reference() -> Result<String, String> {
    ["main", "origin/main"]
        .iter()
        .find_map(|base| git(&["merge-base", "HEAD", base]).ok())
        .ok_or_else(|| {
            "--against: no merge base with main or origin/main; name a revision (--against REV)"
                .into()
        })
}

/// `git ARGS` in the project's root: its trimmed output, or an error.
fn git(args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(project_root())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The harness binary of `commit` (fast profile), built once: checked out in a temporary
/// worktree and built with its own target directory, `target/against/target` (kept, so the
/// next revision builds incrementally); the binary is kept as `target/against/COMMIT/harness`.
fn build_revision(commit: &str) -> Result<PathBuf, String> {
    let against = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
        .join("against");
    let kept = against.join(commit).join("harness");
    if kept.is_file() {
        return Ok(kept);
    }
    let src = against.join("src");
    if src.exists() {
        let _ = git(&["worktree", "remove", "--force", &src.display().to_string()]);
        let _ = std::fs::remove_dir_all(&src);
        let _ = git(&["worktree", "prune"]);
    }
    std::fs::create_dir_all(&against).map_err(|e| format!("{}: {e}", against.display()))?;
    eprintln!("xtask: building the reference revision {commit} (target/against/)");
    git(&[
        "worktree",
        "add",
        "--detach",
        "--quiet",
        &src.display().to_string(),
        commit,
    ])?;
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(BUILD_HARNESS)
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", against.join("target"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?
        .success();
    let copied = built
        .then(|| {
            let dir = against.join(commit);
            std::fs::create_dir_all(&dir)?;
            // Copied under a temporary name, then renamed: a kept binary is always whole.
            let partial = dir.join("harness.partial");
            std::fs::copy(against.join("target/fast/harness"), &partial)?;
            std::fs::rename(&partial, &kept)
        })
        .transpose();
    let _ = git(&["worktree", "remove", "--force", &src.display().to_string()]);
    match (built, copied) {
        (true, Ok(_)) => Ok(kept),
        (true, Err(e)) => Err(format!("{}: {e}", kept.display())),
        (false, _) => Err(format!("building revision {commit} failed")),
    }
}

/// Runs `setup` first when the arguments need a Python environment and it is missing: the
/// project's for OpenVINO and onnxruntime, a stack's own for a stack named in them.
fn setup_if_needed(args: &[String]) -> Result<(), String> {
    if needs_python(args) && !venv_python("").is_file() {
        eprintln!("xtask: the converters asked for need the Python environment; running `cargo xtask setup` first");
        setup("")?;
    }
    for stack in stack_environments()? {
        let served = stacks_of(&stack);
        let named = args.iter().any(|a| {
            a.split(['+', ',', ' ']).any(|part| {
                part.split(':')
                    .next()
                    .is_some_and(|name| served.iter().any(|s| s == name))
            })
        });
        if named && !venv_python(&stack).is_file() {
            eprintln!("xtask: {stack} needs its own Python environment; running `cargo xtask setup --stack {stack}` first");
            setup(&stack)?;
        }
    }
    Ok(())
}

/// Whether harness arguments name a converter or runtime that lives in Python.
fn needs_python(args: &[String]) -> bool {
    args.iter()
        .any(|a| a.contains("openvino") || a.contains("onnxruntime"))
}

/// The stacks with an environment of their own: `harness/python/stacks/E.requirements.txt`.
fn stack_environments() -> Result<Vec<String>, String> {
    let dir = project_root().join("harness/python/stacks");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".requirements.txt"))
                .map(str::to_string)
        })
        .collect();
    found.sort();
    Ok(found)
}

/// The stacks an environment serves: its requirements file's `# stacks: A B` line.
fn stacks_of(environment: &str) -> Vec<String> {
    let file = project_root().join(format!(
        "harness/python/stacks/{environment}.requirements.txt"
    ));
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("# stacks:"))
        .map(|names| names.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The virtual environment of `stack` (`""`: the project's, `.venv/`; else `.venv-STACK/`).
fn venv_dir(stack: &str) -> PathBuf {
    if stack.is_empty() {
        project_root().join(".venv")
    } else {
        project_root().join(format!(".venv-{stack}"))
    }
}

fn venv_python(stack: &str) -> PathBuf {
    venv_dir(stack).join("bin").join("python")
}

/// `cargo xtask setup [--stack NAME|all]...`: the project's environment, or the stacks'.
fn setup_command(args: &[String]) -> Result<ExitCode, String> {
    let mut stacks = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--stack" => {
                let name = rest.next().ok_or("--stack needs a name")?;
                let known = stack_environments()?;
                if name == "all" {
                    stacks.extend(known);
                } else if known.contains(name) {
                    stacks.push(name.clone());
                } else {
                    return Err(format!(
                        "unknown stack environment '{name}': one of {} or all",
                        known.join(", ")
                    ));
                }
            }
            other => return Err(format!("setup: unknown argument '{other}'")),
        }
    }
    if stacks.is_empty() {
        stacks.push(String::new());
    }
    for stack in &stacks {
        setup(stack)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the environment of `stack` (`""` for the project's) and installs its pinned
/// packages, unless already done for this exact requirements file.
fn setup(stack: &str) -> Result<(), String> {
    let root = project_root();
    let (requirements, venv_name) = if stack.is_empty() {
        (
            "harness/python/requirements.txt".to_string(),
            ".venv".to_string(),
        )
    } else {
        (
            format!("harness/python/stacks/{stack}.requirements.txt"),
            format!(".venv-{stack}"),
        )
    };
    let wanted = std::fs::read_to_string(root.join(&requirements))
        .map_err(|e| format!("{requirements}: {e}"))?;
    let stamp = venv_dir(stack).join("installed-requirements.txt");
    let python_in_venv = venv_python(stack);
    if python_in_venv.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !python_in_venv.is_file() {
        eprintln!("xtask: creating {venv_name} with {python}");
        let ok = Command::new(&python)
            .args(["-m", "venv", &venv_name])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run {python}: {e}; install Python 3 or set PYTHON"))?
            .success();
        if !ok {
            return Err(format!("`{python} -m venv {venv_name}` failed"));
        }
    }
    eprintln!("xtask: installing the pinned Python packages ({requirements})");
    let mut pip = Command::new(&python_in_venv);
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    if !stack.is_empty() {
        // A stack's file pins its whole environment, as `pip freeze` prints it: installed as
        // listed, so that no resolver adds what a package's optional extras ask for.
        pip.arg("--no-deps");
    }
    let ok = pip
        .arg("-r")
        .arg(root.join(&requirements))
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?
        .success();
    if !ok {
        return Err(format!("pip could not install {requirements}"));
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(())
}

/// The property tests' seed: the caller's PROPTEST_RNG_SEED, or a fixed one.
fn proptest_seed() -> String {
    std::env::var("PROPTEST_RNG_SEED").unwrap_or_else(|_| "20261130".into())
}

fn test(args: &[String]) -> Result<ExitCode, String> {
    setup("")?;
    // Release profile without LTO: test binaries link quickly.
    let mut command = cargo();
    command
        .args(["test", "--workspace", "--release", "--no-fail-fast"])
        .args(args)
        .env("HARNESS_PYTHON", venv_python(""));
    // The stacks set up with `setup --stack` are tested too; the others' tests say they skip
    // (CI sets up every one and sets HARNESS_REQUIRE_STACKS, so that none may skip).
    for stack in stack_environments()? {
        let python = venv_python(&stack);
        if python.is_file() {
            command.env(format!("HARNESS_PYTHON_{}", stack.to_uppercase()), python);
        }
    }
    let status = command
        // Golden snapshots are only ever rewritten by `cargo xtask bless`.
        .env("INSTA_UPDATE", "no")
        .env("HARNESS_REQUIRE_PYTHON", "1")
        // Property tests draw from a fixed seed, so that a run's verdict does not depend on
        // the day; set PROPTEST_RNG_SEED to another number to explore other models.
        .env("PROPTEST_RNG_SEED", proptest_seed())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(status_code(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_stack_environment_says_which_stacks_it_serves() {
        let environments = stack_environments().unwrap();
        for e in ["optimizers", "tflite", "tvm"] {
            assert!(environments.iter().any(|x| x == e), "{environments:?}");
        }
        assert_eq!(stacks_of("optimizers"), ["onnxslim", "onnxoptimizer"]);
        assert_eq!(stacks_of("tvm"), ["tvm"]);
    }

    #[test]
    fn against_takes_a_revision_or_none_and_leaves_the_other_arguments() {
        assert_eq!(split_against(&args(&["--case", "m5"])), None);
        assert_eq!(
            split_against(&args(&["--against", "v1", "--case", "m5"])),
            Some((Some("v1".into()), args(&["--case", "m5"])))
        );
        assert_eq!(
            split_against(&args(&["--case", "m5", "--against=abc123"])),
            Some((Some("abc123".into()), args(&["--case", "m5"])))
        );
        // no revision: the merge base with main
        assert_eq!(
            split_against(&args(&["--against", "--budget", "1"])),
            Some((None, args(&["--budget", "1"])))
        );
        assert_eq!(split_against(&args(&["--against"])), Some((None, vec![])));
    }
}
