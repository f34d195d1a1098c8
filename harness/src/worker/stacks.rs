//! The stacks the workers run ([`STACKS`]), built into the binary, and the Python interpreters
//! of their environments.

use std::path::{Path, PathBuf};

/// What every stack module shares (`stacks/__init__.py`).
pub const STACKS_PACKAGE: &str = include_str!("../../python/stacks/__init__.py");

/// A stack the workers run: one Python module (`harness/python/stacks/NAME.py`, its interface
/// in `harness/python/stacks/README.md`), built into the binary, and the virtual environment
/// that has its packages.
#[derive(Debug, PartialEq, Eq)]
pub struct Stack {
    /// The module's name: `--converter NAME[:VARIANT]` (or `--runtime NAME`) selects it.
    pub name: &'static str,
    /// Its environment: `""` is the project's `.venv/`; any other `E` is `.venv-E/`, made by
    /// `cargo xtask setup --stack E` from `harness/python/stacks/E.requirements.txt`.
    pub environment: &'static str,
    /// The module's source.
    pub source: &'static str,
    /// The pinned packages of its environment (a repro bundle installs them).
    pub requirements: &'static str,
}

/// A [`Stack`] from its module's name and, for one with an environment of its own, that
/// environment's name.
macro_rules! stack {
    ($name:literal) => {
        Stack {
            name: $name,
            environment: "",
            source: include_str!(concat!("../../python/stacks/", $name, ".py")),
            requirements: include_str!("../../python/requirements.txt"),
        }
    };
    ($name:literal, environment $env:literal) => {
        Stack {
            name: $name,
            environment: $env,
            source: include_str!(concat!("../../python/stacks/", $name, ".py")),
            requirements: include_str!(concat!("../../python/stacks/", $env, ".requirements.txt")),
        }
    };
}

/// Every stack. Adding one is its module, its requirements and one line here.
pub const STACKS: &[Stack] = &[
    stack!("openvino"),
    stack!("onnxruntime"),
    stack!("tvm", environment "tvm"),
    stack!("tflite", environment "tflite"),
    stack!("onnxslim", environment "optimizers"),
    stack!("onnxoptimizer", environment "optimizers"),
];

/// The stack called `name`.
pub fn stack(name: &str) -> Option<&'static Stack> {
    STACKS.iter().find(|s| s.name == name)
}

/// Where the Python interpreter with the pinned packages is: `$HARNESS_PYTHON`, else
/// `.venv/bin/python` in the current directory or above the executable.
pub fn find_python() -> Option<PathBuf> {
    find_python_of("")
}

/// The interpreter of a stack's `environment` ([`Stack::environment`]): for `""` as
/// [`find_python`] says; for `E`, `$HARNESS_PYTHON_E` (upper case) or `.venv-E/bin/python` in
/// the current directory or above the executable.
pub fn find_python_of(environment: &str) -> Option<PathBuf> {
    let (variable, venv) = if environment.is_empty() {
        ("HARNESS_PYTHON".to_string(), ".venv".to_string())
    } else {
        (
            format!("HARNESS_PYTHON_{}", environment.to_uppercase()),
            format!(".venv-{environment}"),
        )
    };
    if let Some(p) = std::env::var_os(variable) {
        return Some(PathBuf::from(p));
    }
    let mut roots: Vec<PathBuf> = std::env::current_dir().ok().into_iter().collect();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join(&venv).join("bin/python"))
        .find(|p| p.is_file())
}
