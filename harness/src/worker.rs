//! Long-lived Python worker processes for converters and runtimes that live in Python
//! (OpenVINO, onnxruntime).
//!
//! One process serves many cases, so a case pays what the library costs, not an interpreter
//! start. The protocol (JSON lines over stdin/stdout, tensors in files) is documented in
//! `harness/python/worker.py`, which is built into the binary. A worker that dies or overruns
//! its timeout is killed with its process group; the call fails with a [`WorkerError`] and the
//! next lease starts a fresh process. Workers are started through [`crate::isolate::Group`], so
//! none outlives the harness (see there).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use serde_json::{json, Value};

use crate::isolate::{ChildLimits, Group};
use crate::tensor::{DType, Named, Tensor};

/// The worker script, built into the binary so the harness needs no source tree.
const SCRIPT: &str = include_str!("../python/worker.py");

/// What every stack module shares (`stacks/__init__.py`).
pub const STACKS_PACKAGE: &str = include_str!("../python/stacks/__init__.py");

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
            source: include_str!(concat!("../python/stacks/", $name, ".py")),
            requirements: include_str!("../python/requirements.txt"),
        }
    };
    ($name:literal, environment $env:literal) => {
        Stack {
            name: $name,
            environment: $env,
            source: include_str!(concat!("../python/stacks/", $name, ".py")),
            requirements: include_str!(concat!("../python/stacks/", $env, ".requirements.txt")),
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

/// The process-wide pools ([`Pool::shared`]), one per environment, once something asked.
static SHARED: Mutex<BTreeMap<&'static str, Arc<Pool>>> = Mutex::new(BTreeMap::new());

/// Ends the idle workers of the process-wide pools: the next call starts a fresh process.
pub fn retire_idle_workers() {
    let pools: Vec<Arc<Pool>> = SHARED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for pool in pools {
        pool.retire_idle();
    }
}

static CALLS: AtomicU64 = AtomicU64::new(0);
static ENGINE_NANOS: AtomicU64 = AtomicU64::new(0);
static CALL_NANOS: AtomicU64 = AtomicU64::new(0);

/// Totals over every worker call of this process: how much of the time the harness spent
/// waiting on workers was the library's own work.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CallTotals {
    /// Calls answered.
    pub calls: u64,
    /// Seconds the workers spent serving them.
    pub engine_s: f64,
    /// Seconds from sending each request to reading its reply.
    pub call_s: f64,
}

/// The totals so far.
pub fn call_totals() -> CallTotals {
    CallTotals {
        calls: CALLS.load(Ordering::Relaxed),
        engine_s: ENGINE_NANOS.load(Ordering::Relaxed) as f64 * 1e-9,
        call_s: CALL_NANOS.load(Ordering::Relaxed) as f64 * 1e-9,
    }
}

/// Why a worker call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkerError {
    /// The library refused; `stage` is where (convert, read, compile, run, protocol).
    #[error("{stage}: {message}")]
    Refused {
        /// Where it failed.
        stage: String,
        /// The library's message.
        message: String,
    },
    /// The process died mid-call (crash, signal, killed).
    #[error("worker died: {0}")]
    Died(String),
    /// No reply within the timeout; the worker was killed.
    #[error("worker gave no reply within {0:?}; killed")]
    Timeout(Duration),
    /// The worker reached its memory or CPU-time limit ([`ChildLimits`]); the message says
    /// which and what failed. The worker is replaced.
    #[error("{0}")]
    OverLimit(String),
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

/// Writes `text` to `path` unless it already holds it.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        crate::fsutil::write_atomically(path, text.as_bytes())?;
    }
    Ok(())
}

/// One running worker process.
pub struct Worker {
    process: Group,
    limits: ChildLimits,
    stdin: ChildStdin,
    replies: Receiver<String>,
    next_id: u64,
    log: PathBuf,
}

impl Worker {
    /// Starts a worker with `python`, under `limits`.
    pub fn spawn(python: &Path, limits: ChildLimits) -> Result<Worker> {
        let dir = std::env::temp_dir().join(format!("conv1d-harness-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let script = dir.join("worker.py");
        write_if_changed(&script, SCRIPT)?;
        let stacks = dir.join("stacks");
        std::fs::create_dir_all(&stacks)?;
        write_if_changed(&stacks.join("__init__.py"), STACKS_PACKAGE)?;
        for stack in STACKS {
            write_if_changed(&stacks.join(format!("{}.py", stack.name)), stack.source)?;
        }
        let log = tempfile::Builder::new()
            .prefix("worker-")
            .suffix(".log")
            .tempfile_in(&dir)?
            .into_temp_path()
            .keep()?;
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log)?))
            .env("PYTHONUNBUFFERED", "1");
        // Its own process group (as every child's): a Ctrl-C at the terminal stops the harness,
        // which then ends its workers itself, instead of killing them mid-case.
        let mut process = Group::spawn(cmd, limits)
            .with_context(|| format!("cannot start the Python worker with {}", python.display()))?;
        let stdin = process.child().stdin.take().expect("piped");
        let stdout = process.child().stdout.take().expect("piped");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            process,
            limits,
            stdin,
            replies,
            next_id: 0,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends a request and waits at most `timeout` for its reply.
    pub fn call(&mut self, mut request: Value, timeout: Duration) -> Result<Value, WorkerError> {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        let line = format!("{request}\n");
        if let Some(seconds) = self.limits.cpu_seconds {
            self.process.allow_cpu(seconds);
        }
        let sent = std::time::Instant::now();
        let log_start = std::fs::metadata(&self.log).map_or(0, |m| m.len());
        if self
            .stdin
            .write_all(line.as_bytes())
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return Err(self.died());
        }
        loop {
            match self.replies.recv_timeout(timeout) {
                Ok(line) => {
                    let reply: Value = match serde_json::from_str(&line) {
                        Ok(v) => v,
                        // Not ours (a library printing to stdout): skip it.
                        Err(_) => continue,
                    };
                    if reply["id"] != json!(self.next_id) {
                        continue;
                    }
                    CALLS.fetch_add(1, Ordering::Relaxed);
                    CALL_NANOS.fetch_add(sent.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let engine = reply["engine_s"].as_f64().unwrap_or(0.0);
                    ENGINE_NANOS.fetch_add((engine * 1e9) as u64, Ordering::Relaxed);
                    if reply["ok"] == json!(true) {
                        return Ok(reply);
                    }
                    let stage = reply["stage"].as_str().unwrap_or("unknown");
                    let message = reply["error"].as_str().unwrap_or("no message");
                    // An allocation that failed under the limit leaves the process in no state
                    // to trust: it is replaced (by the lease) and the verdict says why.
                    if let Some(reached) = self.limits.memory_reached(message) {
                        let _ = self.process.end();
                        return Err(WorkerError::OverLimit(format!(
                            "{reached}: {stage}: {message}"
                        )));
                    }
                    return Err(WorkerError::Refused {
                        stage: stage.into(),
                        message: with_log(message, &self.log_since(log_start)),
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.process.end();
                    return Err(WorkerError::Timeout(timeout));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.died()),
            }
        }
    }

    /// Ends what is left of a worker that died (its group) and says how it died: past one of
    /// its limits, or otherwise.
    fn died(&mut self) -> WorkerError {
        let ended = self.process.end();
        let cpu = ended
            .as_ref()
            .ok()
            .and_then(|s| self.limits.cpu_reached(*s));
        let death = self.death(
            ended
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string()),
        );
        match cpu.or_else(|| self.limits.memory_reached(&death)) {
            Some(reached) => WorkerError::OverLimit(format!("{reached}: worker died: {death}")),
            None => WorkerError::Died(death),
        }
    }

    /// What the worker's libraries logged on stderr since byte `start` of its log.
    fn log_since(&self, start: u64) -> String {
        use std::io::{Read, Seek};
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            if f.seek(std::io::SeekFrom::Start(start)).is_ok() {
                let _ = f.take(64 * 1024).read_to_string(&mut text);
            }
        }
        text
    }

    /// How a worker that ended with `status` died, with the last lines of its stderr.
    fn death(&self, status: String) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        format!(
            "{status}{}",
            if tail.is_empty() {
                String::new()
            } else {
                format!("; stderr: {tail}")
            }
        )
    }

    fn alive(&self) -> bool {
        !self.process.exited()
    }
}

/// A refusal's message with what the library logged while refusing (onnxruntime's and
/// OpenVINO's own log lines go to the worker's stderr, never to the terminal): each line
/// without colours and timestamps, and only when the message does not already say it.
fn with_log(message: &str, log: &str) -> String {
    let mut extra: Vec<String> = Vec::new();
    for line in log.lines() {
        let line = strip_ansi(line);
        let line = line.trim();
        // "2026-11-30 11:42:27.339710341 [E:onnxruntime:, file.cc:677 Fn] text"
        let line = match line.split_once(' ') {
            Some((date, rest)) if date.len() == 10 && date.as_bytes()[4] == b'-' => rest
                .split_once(' ')
                .map_or(rest, |(_, after_time)| after_time),
            _ => line,
        };
        let body = line.split_once("] ").map_or(line, |(_, body)| body).trim();
        if !body.is_empty() && !message.contains(body) && !extra.iter().any(|e| e == line) {
            extra.push(line.to_string());
        }
    }
    if extra.is_empty() {
        return message.to_string();
    }
    let joined = extra.join(" | ");
    let kept: String = joined.chars().take(2000).collect();
    format!("{message} [log: {kept}]")
}

/// `s` without terminal colour sequences (ESC [ … letter).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Kills the group (the worker and anything it started) and reaps the worker.
        let _ = self.process.end();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Idle workers, shared by every converter and runtime that needs one.
pub struct Pool {
    python: PathBuf,
    idle: Mutex<Vec<Worker>>,
    /// Package versions the workers reported, by package.
    versions: Mutex<BTreeMap<String, String>>,
    /// What each stack module said of itself (`describe`), by stack.
    described: Mutex<BTreeMap<String, Value>>,
}

/// A worker taken from the pool; it goes back when dropped, if still alive.
pub struct Lease {
    pool: Arc<Pool>,
    worker: Option<Worker>,
}

impl Pool {
    /// A pool running workers with `python`.
    pub fn new(python: PathBuf) -> Arc<Pool> {
        Arc::new(Pool {
            python,
            idle: Mutex::new(Vec::new()),
            versions: Mutex::new(BTreeMap::new()),
            described: Mutex::new(BTreeMap::new()),
        })
    }

    /// The process-wide pool of the project's environment, using [`find_python`].
    pub fn shared() -> Result<Arc<Pool>> {
        Pool::shared_of("")
    }

    /// The process-wide pool of a stack's environment ([`find_python_of`]).
    pub fn shared_of(environment: &'static str) -> Result<Arc<Pool>> {
        let mut pools = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pools.get(environment) {
            return Ok(Arc::clone(p));
        }
        let python = find_python_of(environment).ok_or_else(|| {
            if environment.is_empty() {
                anyhow!("the Python environment for external converters is missing: run `cargo xtask setup` (or set HARNESS_PYTHON)")
            } else {
                anyhow!(
                    "the Python environment .venv-{environment} is missing: run `cargo xtask setup --stack {environment}` (or set HARNESS_PYTHON_{})",
                    environment.to_uppercase()
                )
            }
        })?;
        let pool = Pool::new(python);
        pools.insert(environment, Arc::clone(&pool));
        Ok(pool)
    }

    /// Ends every idle worker, so that the next lease starts a fresh process.
    pub fn retire_idle(&self) {
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(idle);
    }

    /// An idle worker started under `limits`, or a new one. Idle workers that died meanwhile
    /// are reaped here.
    pub fn lease(self: &Arc<Self>, limits: ChildLimits) -> Result<Lease> {
        let idle = loop {
            let idle = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                let found = idle.iter().rposition(|w| w.limits == limits);
                found.map(|k| idle.remove(k))
            };
            match idle {
                Some(w) if !w.alive() => drop(w),
                other => break other,
            }
        };
        let worker = match idle {
            Some(w) => w,
            None => Worker::spawn(&self.python, limits)?,
        };
        Ok(Lease {
            pool: Arc::clone(self),
            worker: Some(worker),
        })
    }

    /// Versions of Python and its packages, as the worker reports them.
    pub fn versions(self: &Arc<Self>) -> Result<Value> {
        let reply = self
            .lease(ChildLimits::default())?
            .call(json!({"op": "hello"}), Duration::from_secs(120))?;
        Ok(reply["versions"].clone())
    }

    /// The version of one package, asked of a worker under `limits` (the one the run's
    /// requests will use, so no second worker starts) that imports only that package.
    pub fn version(self: &Arc<Self>, package: &str, limits: ChildLimits) -> Option<String> {
        let mut known = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = known.get(package) {
            return Some(v.clone());
        }
        let reply = self
            .lease(limits)
            .ok()?
            .call(
                json!({"op": "hello", "packages": [package]}),
                Duration::from_secs(120),
            )
            .ok()?;
        let version = reply["versions"][package].as_str()?.to_string();
        known.insert(package.to_string(), version.clone());
        Some(version)
    }

    /// What the module of `stack` says of itself: its runtime's name, variants, whether it
    /// converts, how many cases to pack, its version (the worker's `describe`). Asked once.
    pub fn describe(self: &Arc<Self>, stack: &str, limits: ChildLimits) -> Result<Value> {
        if let Some(v) = self
            .described
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stack)
        {
            return Ok(v.clone());
        }
        // Importing a compiler stack (TVM, TensorFlow) takes seconds on a busy machine.
        let reply = self.lease(limits)?.call(
            json!({"op": "describe", "engine": stack}),
            Duration::from_secs(300),
        )?;
        self.described
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stack.to_string(), reply.clone());
        Ok(reply)
    }

    /// The version of `stack` as its module reports it.
    pub fn stack_version(self: &Arc<Self>, stack: &str, limits: ChildLimits) -> Option<String> {
        let described = self.describe(stack, limits).ok()?;
        described["version"].as_str().map(str::to_string)
    }
}

impl Lease {
    /// Calls the leased worker; a dead or killed worker is dropped, not returned to the pool.
    pub fn call(&mut self, request: Value, timeout: Duration) -> Result<Value, WorkerError> {
        let worker = self
            .worker
            .as_mut()
            .ok_or_else(|| WorkerError::Died("worker already lost".into()))?;
        let result = worker.call(request, timeout);
        if matches!(
            result,
            Err(WorkerError::Died(_) | WorkerError::Timeout(_) | WorkerError::OverLimit(_))
        ) {
            self.worker = None;
        }
        result
    }

    /// The leased worker's process id.
    pub fn pid(&self) -> Option<u32> {
        self.worker.as_ref().map(Worker::pid)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            if w.alive() {
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(w);
            }
        }
    }
}

/// Writes inputs as raw files in `dir` and describes them for a request.
pub fn write_inputs(dir: &Path, inputs: &[Named]) -> Result<Value> {
    let mut specs = Vec::new();
    for (j, input) in inputs.iter().enumerate() {
        let path = dir.join(format!("input_{j}.bin"));
        let proto = crate::onnx::proto::tensor_to_proto(&input.name, &input.tensor);
        std::fs::write(&path, &proto.raw_data)?;
        specs.push(json!({
            "name": input.name,
            "dtype": numpy_dtype(input.tensor.dtype())?,
            "shape": input.tensor.shape(),
            "path": path,
        }));
    }
    Ok(Value::Array(specs))
}

/// The numpy name of a type; numpy has no bfloat16, so the workers receive no such tensor.
fn numpy_dtype(d: DType) -> Result<&'static str> {
    Ok(match d {
        DType::Float => "float32",
        DType::Double => "float64",
        DType::Float16 => "float16",
        DType::Bfloat16 => {
            anyhow::bail!("the Python workers exchange numpy arrays, and numpy has no bfloat16")
        }
        DType::Int64 => "int64",
        DType::Int32 => "int32",
        DType::Int8 => "int8",
        DType::Uint8 => "uint8",
        DType::Bool => "bool",
    })
}

/// Reads the outputs a worker wrote to files.
pub fn read_outputs(reply: &Value) -> Result<Vec<Tensor>> {
    outputs_of(reply, |o| {
        let path = o["path"].as_str().context("output without path")?;
        std::fs::read(path).with_context(|| format!("{path}: cannot read worker output"))
    })
}

/// The outputs a worker sent inline (base64 of their raw bytes).
pub fn inline_outputs(reply: &Value) -> Result<Vec<Tensor>> {
    outputs_of(reply, |o| {
        unbase64(o["data"].as_str().context("output without data")?)
            .context("output data is not base64")
    })
}

/// Inputs to send inline: name, dtype, shape and base64 of the raw little-endian bytes.
pub fn inline_inputs(inputs: &[Named]) -> Result<Value> {
    Ok(Value::Array(
        inputs
            .iter()
            .map(|input| {
                let proto = crate::onnx::proto::tensor_to_proto(&input.name, &input.tensor);
                Ok(json!({
                    "name": input.name,
                    "dtype": numpy_dtype(input.tensor.dtype())?,
                    "shape": input.tensor.shape(),
                    "data": base64(&proto.raw_data),
                }))
            })
            .collect::<Result<_>>()?,
    ))
}

/// The tensors of a reply's `outputs`, their bytes got by `bytes`.
fn outputs_of(reply: &Value, bytes: impl Fn(&Value) -> Result<Vec<u8>>) -> Result<Vec<Tensor>> {
    let outputs = reply["outputs"]
        .as_array()
        .context("worker reply without outputs")?;
    outputs
        .iter()
        .map(|o| {
            let shape: Vec<usize> = o["shape"]
                .as_array()
                .context("output without shape")?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize).context("bad dimension"))
                .collect::<Result<_>>()?;
            let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let data_type = match o["dtype"].as_str() {
                Some("float32") => DType::Float,
                Some("float64") => DType::Double,
                Some("float16") => DType::Float16,
                Some("int64") => DType::Int64,
                Some("int32") => DType::Int32,
                Some("int8") => DType::Int8,
                Some("uint8") => DType::Uint8,
                Some("bool") => DType::Bool,
                other => anyhow::bail!("worker output of unknown dtype {other:?}"),
            };
            let proto = tract_onnx::pb::TensorProto {
                dims,
                data_type: crate::onnx::proto::data_type_code(data_type),
                raw_data: bytes(o)?,
                ..Default::default()
            };
            let name = o["name"].as_str().unwrap_or("output");
            crate::onnx::proto::tensor_from_proto(&proto).with_context(|| name.to_string())
        })
        .collect()
}

/// Standard base64 with padding, as Python's `base64.b64encode` writes it.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unbase64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text)
}

#[cfg(test)]
mod tests {
    use super::with_log;

    #[test]
    fn a_refusal_keeps_what_the_library_logged_without_colours_times_or_repeats() {
        let message =
            "run: [ONNXRuntimeError] : 2 : Non-zero status code. Status Message: bad dilation";
        let repeated = "\u{1b}[1;31m2026-11-30 11:42:27.339710341 [E:onnxruntime:, \
                        sequential_executor.cc:677 ExecuteKernel] Non-zero status code. Status \
                        Message: bad dilation\u{1b}[m\n";
        assert_eq!(with_log(message, repeated), message);
        let new = "2026-11-30 11:42:27.1 [W:onnxruntime:, graph.cc:1 Fn] initializer unused\n\
                   [ WARNING ] an OpenVINO line\n\n";
        assert_eq!(
            with_log(message, &format!("{repeated}{new}")),
            format!(
                "{message} [log: [W:onnxruntime:, graph.cc:1 Fn] initializer unused | \
                 [ WARNING ] an OpenVINO line]"
            )
        );
        assert_eq!(with_log(message, ""), message);
    }
}
