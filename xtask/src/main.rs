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
  setup                create .venv/ with the pinned Python packages (OpenVINO, onnxruntime,
                       onnx, onnxsim) from harness/python/requirements.txt
  fuzz [ARGS]          fuzzing campaign until --budget SECS or Ctrl-C; new failure signatures
                       are reduced, bundled and saved to corpus/regressions/
  bless [--check]      recompute the corpus's golden outputs with the f64 oracle, rewrite the
                       ones that changed (golden/), and show each change for review
  perf [ARGS]          latency of the corpus models (reports/latest/perf.md, perf.html);
                       --save NAME / --baseline NAME (reports/baselines/NAME.json; exit 1
                       on a regression), --self-test (false alarms and power on this machine)
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
        Some("setup") => setup().map(|_| ExitCode::SUCCESS),
        Some("harness") => run_harness(&rest),
        Some("report") => run_harness(&prepend("report", rest)),
        Some("bless") => run_harness(&prepend("bless", rest)),
        Some("fuzz") => setup_if_needed(&rest).and_then(|_| run_harness(&prepend("fuzz", rest))),
        Some("perf") => setup_if_needed(&rest).and_then(|_| run_harness(&prepend("perf", rest))),
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
        .args([
            "build",
            "--quiet",
            "--profile",
            "fast",
            "--package",
            "harness-cli",
            "--bin",
            "harness",
        ])
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

/// Runs `setup` first when the arguments need the Python environment and it is missing.
fn setup_if_needed(args: &[String]) -> Result<(), String> {
    if needs_python(args) && !venv_python().is_file() {
        eprintln!("xtask: the converters asked for need the Python environment; running `cargo xtask setup` first");
        setup()?;
    }
    Ok(())
}

/// Whether harness arguments name a converter or runtime that lives in Python.
fn needs_python(args: &[String]) -> bool {
    args.iter()
        .any(|a| a.contains("openvino") || a.contains("onnxruntime"))
}

fn venv_python() -> PathBuf {
    project_root().join(".venv").join("bin").join("python")
}

/// Creates `.venv/` and installs the pinned packages, unless already done for this exact
/// requirements file.
fn setup() -> Result<(), String> {
    let root = project_root();
    let requirements = root.join("harness/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = root.join(".venv/installed-requirements.txt");
    if venv_python().is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(());
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !venv_python().is_file() {
        eprintln!("xtask: creating .venv with {python}");
        let ok = Command::new(&python)
            .args(["-m", "venv", ".venv"])
            .current_dir(&root)
            .status()
            .map_err(|e| format!("cannot run {python}: {e}; install Python 3 or set PYTHON"))?
            .success();
        if !ok {
            return Err(format!("`{python} -m venv .venv` failed"));
        }
    }
    eprintln!("xtask: installing the pinned Python packages (harness/python/requirements.txt)");
    let ok = Command::new(venv_python())
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cannot run pip: {e}"))?
        .success();
    if !ok {
        return Err("pip could not install harness/python/requirements.txt".into());
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(())
}

/// The property tests' seed: the caller's PROPTEST_RNG_SEED, or a fixed one.
fn proptest_seed() -> String {
    std::env::var("PROPTEST_RNG_SEED").unwrap_or_else(|_| "20261130".into())
}

fn test(args: &[String]) -> Result<ExitCode, String> {
    setup()?;
    // Release profile without LTO: test binaries link quickly.
    let status = cargo()
        .args(["test", "--workspace", "--release", "--no-fail-fast"])
        .args(args)
        .env("HARNESS_PYTHON", venv_python())
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
