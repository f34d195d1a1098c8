//! The pools of idle workers, one per environment, and the lease of a worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde_json::{json, Value};

use super::process::{Worker, WorkerError};
use super::stacks::find_python_of;
use crate::isolate::ChildLimits;

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

/// Ends the workers of the process-wide pools and removes their directory (scripts and logs):
/// what a program calls once it has no more work for them.
pub fn end_workers() {
    retire_idle_workers();
    super::process::remove_own_dir();
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

    /// The process-wide pool of the project's environment, using
    /// [`find_python`](super::find_python).
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
