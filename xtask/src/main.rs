//! `cargo xtask`: the project's task runner.
//!
//! Thin on purpose: it builds the `harness` binary in release mode and calls it, or runs the
//! test suite. No dependencies beyond std.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HELP: &str = "\
cargo xtask <task> [args]

tasks:
  conformance [ARGS]   build the harness (release) and run `harness conformance ARGS`
  test [ARGS]          run every test (cargo test --workspace --release ARGS)
  harness ARGS         build the harness (release) and run it with ARGS
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("conformance") => run_harness(&prepend("conformance", rest)),
        Some("harness") => run_harness(&rest),
        Some("test") => test(&rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{HELP}");
            return if task.is_some() { ExitCode::SUCCESS } else { ExitCode::from(2) };
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
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
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

fn build_harness() -> Result<PathBuf, String> {
    let status = cargo()
        .args(["build", "--quiet", "--release", "--package", "harness", "--bin", "harness"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the harness failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join("target"));
    Ok(target.join("release").join("harness"))
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

fn test(args: &[String]) -> Result<ExitCode, String> {
    // Release profile: shares the warm build of `cargo xtask conformance`.
    let status = cargo()
        .args(["test", "--workspace", "--release"])
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    Ok(status_code(status))
}
