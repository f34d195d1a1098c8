//! Long-lived Python worker processes for converters and runtimes that live in Python
//! (OpenVINO, onnxruntime).
//!
//! One process serves many cases, so a case pays what the library costs, not an interpreter
//! start. The protocol (JSON lines over stdin/stdout, tensors in files) is documented in
//! `harness/python/worker.py`, which is built into the binary. A worker that dies or overruns
//! its timeout is killed with its process group; the call fails with a [`WorkerError`] and the
//! next lease starts a fresh process. Workers are started through [`crate::isolate::Group`], so
//! none outlives the harness (see there).

mod pool;
mod process;
mod stacks;
mod tensors;

pub use pool::{end_workers, retire_idle_workers, Lease, Pool};
pub use process::{call_totals, CallTotals, Worker, WorkerError};
pub use stacks::{find_python, find_python_of, stack, Stack, STACKS, STACKS_PACKAGE};
pub use tensors::{base64, inline_inputs, inline_outputs, read_outputs, write_inputs};
