//! `exec:'COMMAND {input} {output}'`: any ONNX-to-ONNX command, one process per conversion.
//!
//! The command runs under `sh -c` in the harness's working directory (so relative paths in it
//! work as typed), with `{input}` and `{output}` replaced by quoted paths in a scratch
//! directory.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use super::{Artifact, Context, ConvertError, Converter};
use crate::isolate::Group;
use crate::onnx::proto::decode_model;

/// Most bytes of a converter's stderr kept for the report.
pub const STDERR_LIMIT: usize = 4096;

/// Runs a shell command with `{input}` and `{output}` replaced by file paths.
pub struct Exec {
    spec: String,
    command: String,
}

impl Exec {
    /// Parses `exec:COMMAND`; the command must mention `{output}`.
    pub fn new(spec: &str) -> anyhow::Result<Exec> {
        let command = spec.strip_prefix("exec:").unwrap_or(spec).trim();
        let command = command
            .strip_prefix('\'')
            .and_then(|c| c.strip_suffix('\''))
            .unwrap_or(command)
            .to_string();
        anyhow::ensure!(
            !command.is_empty(),
            "converter '{spec}': the command is empty"
        );
        anyhow::ensure!(
            command.contains("{output}"),
            "converter '{spec}': the command must contain {{output}} (and usually {{input}})"
        );
        Ok(Exec {
            spec: spec.to_string(),
            command,
        })
    }
}

fn quote(path: &std::path::Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Reads at most `limit` bytes from `r`, draining (and counting) the rest so the child never
/// blocks on a full pipe.
fn capped(mut r: impl Read, limit: usize) -> (Vec<u8>, usize) {
    let mut kept = Vec::new();
    let mut total = 0;
    let mut buf = [0u8; 8192];
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
        let room = limit.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    (kept, total)
}

fn describe_stderr(kept: &[u8], total: usize) -> String {
    let mut s = String::from_utf8_lossy(kept).trim().to_string();
    if total > kept.len() {
        s.push_str(&format!(
            " [... {} more bytes of stderr]",
            total - kept.len()
        ));
    }
    s
}

/// Runs a converter's process with no input, its stderr captured (at most [`STDERR_LIMIT`]
/// bytes), in a process group of its own that is killed whole at the timeout or when the
/// process exits (so nothing it started lingers; see `isolate::Group`). Returns its stderr
/// when it exits 0; a signal is a crash, another status a refusal.
pub(super) fn run_isolated(
    mut cmd: Command,
    program: &str,
    cx: &Context,
) -> Result<String, ConvertError> {
    let timeout = cx.timeout;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut process = Group::spawn(cmd, cx.limits)
        .map_err(|e| ConvertError::Crashed(format!("cannot start {program}: {e}")))?;
    let stderr = process.child().stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || capped(stderr, STDERR_LIMIT));
    if !process.wait_exit(timeout) {
        let _ = process.end();
        let _ = reader.join();
        return Err(ConvertError::Timeout(format!(
            "converter still running after {timeout:?}; killed"
        )));
    }
    // Children of the command may keep stderr open; ending the group ends them (before
    // the leader is reaped, so the group id is still its own).
    let status = process
        .end()
        .map_err(|e| ConvertError::Crashed(format!("cannot wait for {program}: {e}")))?;
    let (kept, total) = reader.join().unwrap_or_default();
    let stderr = describe_stderr(&kept, total);
    if !status.success() {
        let limits = &cx.limits;
        let reached = limits
            .cpu_reached(status)
            .or_else(|| limits.memory_reached(&stderr));
        if let Some(reached) = reached {
            return Err(ConvertError::OverLimit(format!(
                "{reached}: {program} {status}: {stderr}"
            )));
        }
    }
    if let Some(sig) = status.signal() {
        return Err(ConvertError::Crashed(format!(
            "converter killed by signal {sig}: {stderr}"
        )));
    }
    if !status.success() {
        let code = status.code().unwrap_or(-1);
        return Err(ConvertError::Rejected(format!(
            "converter exited with status {code}: {stderr}"
        )));
    }
    Ok(stderr)
}

impl Converter for Exec {
    fn name(&self) -> String {
        self.spec.clone()
    }

    fn convert(&self, model: &[u8], cx: &Context) -> Result<Artifact, ConvertError> {
        let input = cx.work_dir.join("input.onnx");
        let output = cx.work_dir.join("output.onnx");
        std::fs::write(&input, model)
            .map_err(|e| ConvertError::Crashed(format!("cannot write the input model: {e}")))?;
        let command = self
            .command
            .replace("{input}", &quote(&input))
            .replace("{output}", &quote(&output));
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(&command);
        let stderr = run_isolated(cmd, "sh", cx)?;
        let bytes = std::fs::read(&output).map_err(|_| {
            ConvertError::Crashed(format!("converter exited 0 but wrote no output: {stderr}"))
        })?;
        let decoded = decode_model(&bytes).map_err(|e| {
            ConvertError::Crashed(format!("converter wrote an unreadable model: {e:#}"))
        })?;
        if decoded.graph.is_none() {
            return Err(ConvertError::Crashed(format!(
                "converter wrote a model without a graph ({} bytes)",
                bytes.len()
            )));
        }
        Ok(Artifact::Onnx(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(cmd: &str, timeout_ms: u64) -> Result<Artifact, ConvertError> {
        let dir = tempfile::tempdir().unwrap();
        let exec = Exec::new(&format!("exec:{cmd}")).unwrap();
        let model = crate::onnx::proto::encode_model(&tract_onnx::pb::ModelProto {
            ir_version: 8,
            graph: Some(Default::default()),
            ..Default::default()
        });
        exec.convert(
            &model,
            &Context {
                work_dir: dir.path(),
                timeout: Duration::from_millis(timeout_ms),
                limits: Default::default(),
            },
        )
    }

    #[test]
    fn copying_command_yields_the_model() {
        assert!(matches!(
            run("cp {input} {output}", 10_000),
            Ok(Artifact::Onnx(_))
        ));
    }

    #[test]
    fn nonzero_exit_is_rejected_with_stderr() {
        let e = run("echo nope >&2; exit 3 # {output}", 10_000).unwrap_err();
        assert_eq!(
            e,
            ConvertError::Rejected("converter exited with status 3: nope".into())
        );
    }

    #[test]
    fn signal_is_a_crash() {
        assert!(
            matches!(run("kill -SEGV $$ # {output}", 10_000), Err(ConvertError::Crashed(m)) if m.contains("signal 11"))
        );
    }

    #[test]
    fn sleeping_past_the_timeout_is_killed() {
        let start = std::time::Instant::now();
        assert!(matches!(
            run("sleep 30; cp {input} {output}", 300),
            Err(ConvertError::Timeout(_))
        ));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_or_garbage_output_is_a_crash() {
        assert!(
            matches!(run("true {output}", 10_000), Err(ConvertError::Crashed(m)) if m.contains("wrote no output"))
        );
        assert!(
            matches!(run("printf garbage > {output}", 10_000), Err(ConvertError::Crashed(m)) if m.contains("unreadable"))
        );
        assert!(
            matches!(run(": > {output}", 10_000), Err(ConvertError::Crashed(m)) if m.contains("without a graph"))
        );
    }

    #[test]
    fn megabytes_of_stderr_are_truncated() {
        let e = run(
            "head -c 3000000 /dev/zero | tr '\\0' x >&2; exit 1 # {output}",
            10_000,
        )
        .unwrap_err();
        let ConvertError::Rejected(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.len() < STDERR_LIMIT + 200 && m.contains("more bytes of stderr"),
            "{}",
            m.len()
        );
    }

    #[test]
    fn command_without_output_placeholder_is_refused() {
        assert!(Exec::new("exec:cp a b").is_err());
    }
}
