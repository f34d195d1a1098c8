//! One worker process: starting it, a request and its reply under a timeout, what it logged,
//! how it died; and the totals of every call.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{json, Value};

use super::stacks::{STACKS, STACKS_PACKAGE};
use crate::isolate::{ChildLimits, Group};

/// The worker script, built into the binary so the harness needs no source tree.
const SCRIPT: &str = include_str!("../../python/worker.py");

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

/// Writes `text` to `path` unless it already holds it.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        crate::fsutil::write_atomically(path, text.as_bytes())?;
    }
    Ok(())
}

const DIR_PREFIX: &str = "conv1d-harness-";

/// This process's directory of worker script, stack modules and worker logs, shared by its
/// workers.
fn own_dir() -> PathBuf {
    std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()))
}

/// Removes this process's worker directory; its workers must have ended
/// ([`super::end_workers`]).
pub(super) fn remove_own_dir() {
    let _ = std::fs::remove_dir_all(own_dir());
}

/// Removes the worker directories of harness processes that no longer run (killed before
/// they could remove their own). Only where `/proc` tells which processes run.
fn remove_dirs_of_ended_processes() {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX));
        if let Some(pid) = pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
            if !proc.join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// One running worker process.
pub struct Worker {
    process: Group,
    pub(super) limits: ChildLimits,
    stdin: ChildStdin,
    replies: Receiver<String>,
    next_id: u64,
    log: PathBuf,
}

impl Worker {
    /// Starts a worker with `python`, under `limits`.
    pub fn spawn(python: &Path, limits: ChildLimits) -> Result<Worker> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(remove_dirs_of_ended_processes);
        let dir = own_dir();
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

    pub(super) fn alive(&self) -> bool {
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
