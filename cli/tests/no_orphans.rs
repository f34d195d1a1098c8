//! No process the harness starts outlives the run (its workers, `exec:` converters, what they
//! start), however the run ends: finished, timed out cases, crashed workers, SIGTERM, two
//! SIGINTs, SIGKILL.
//!
//! Every run here is a real `harness` process started with a mark in its environment, which
//! every process it starts inherits; the test looks for marked processes in /proc. While a run
//! goes on, a marked process whose parent is neither the harness nor another marked process is
//! an orphan; once the run has ended, any marked process still alive is a survivor. The
//! in-process tests at the end follow worker process ids instead.
//!
//! The Python parts need the pinned environment (`cargo xtask setup`); `cargo xtask test`
//! requires it (HARNESS_REQUIRE_PYTHON=1), a plain `cargo test` without it skips them loudly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use harness::worker::{find_python, Pool, WorkerError};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_harness");
const MARK_VAR: &str = "CONV1D_HARNESS_TEST_MARK";
/// How long processes may take to go once the run has ended (killing is asynchronous).
const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    state: char,
    cmd: String,
}

/// `pid`'s parent and state from /proc, if it still exists.
fn stat(pid: i32) -> Option<(i32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((ppid, state))
}

/// Whether `pid` is a live process (zombies have ended; only their parent's wait is due).
fn alive(pid: i32) -> bool {
    stat(pid).is_some_and(|(_, state)| state != 'Z')
}

/// Live processes whose environment carries `mark`.
fn marked(mark: &str) -> Vec<Proc> {
    let needle = format!("{MARK_VAR}={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let Some((ppid, state)) = stat(pid) else {
            continue;
        };
        if state == 'Z' {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        found.push(Proc {
            pid,
            ppid,
            state,
            cmd,
        });
    }
    found
}

fn new_mark(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn python() -> Option<std::path::PathBuf> {
    match find_python() {
        Some(p) => Some(p),
        None if std::env::var_os("HARNESS_REQUIRE_PYTHON").is_some() => {
            panic!("HARNESS_REQUIRE_PYTHON is set but no Python environment was found")
        }
        None => {
            eprintln!(
                "SKIPPED: no .venv (run `cargo xtask setup`); Python worker runs not checked"
            );
            None
        }
    }
}

/// A marked harness run in progress.
struct Run {
    child: Child,
    mark: String,
    dir: tempfile::TempDir,
    /// pid -> (command, samples in a row it was seen orphaned).
    orphaned: BTreeMap<i32, (String, u32)>,
    /// Orphans seen in two samples in a row (100 ms or more apart).
    orphans: BTreeSet<String>,
    /// Every marked process seen.
    seen: BTreeMap<i32, String>,
}

impl Run {
    fn start(name: &str, args: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let mark = new_mark(name);
        let child = Command::new(BIN)
            .args(args)
            .arg("--report")
            .arg(dir.path().join("report"))
            .current_dir(dir.path())
            .env(MARK_VAR, &mark)
            .env("HARNESS_PERF_QUIET", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("harness starts");
        Run {
            child,
            mark,
            dir,
            orphaned: BTreeMap::new(),
            orphans: BTreeSet::new(),
            seen: BTreeMap::new(),
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// One look at the run's processes: records orphans; returns what it saw.
    fn sample(&mut self) -> Vec<Proc> {
        let procs = marked(&self.mark);
        let pids: BTreeSet<i32> = procs.iter().map(|p| p.pid).collect();
        let harness = self.pid();
        let mut still = BTreeMap::new();
        for p in &procs {
            self.seen.entry(p.pid).or_insert_with(|| p.cmd.clone());
            if p.pid != harness && p.ppid != harness && !pids.contains(&p.ppid) && alive(harness) {
                let n = self.orphaned.get(&p.pid).map_or(0, |(_, n)| *n) + 1;
                if n >= 2 {
                    self.orphans.insert(format!(
                        "pid {} (parent {}, state {}): {}",
                        p.pid, p.ppid, p.state, p.cmd
                    ));
                }
                still.insert(p.pid, (p.cmd.clone(), n));
            }
        }
        self.orphaned = still;
        procs
    }

    /// Samples until `done` says so or `limit` passes; whether `done` did.
    fn watch_until(&mut self, limit: Duration, mut done: impl FnMut(&[Proc]) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            let procs = self.sample();
            if done(&procs) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Samples until the harness exits; its exit code (None: killed by a signal) and stderr.
    fn finish(mut self) -> Finished {
        let deadline = Instant::now() + Duration::from_secs(300);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the harness run did not end in 300 s"
            );
            self.sample();
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        // Whatever is still alive after the grace period has outlived the run.
        let end = Instant::now() + GRACE;
        let survivors = loop {
            let left = marked(&self.mark);
            if left.is_empty() || Instant::now() >= end {
                break left;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        for p in &survivors {
            // Clean up after a failing test, so one failure does not pile up processes.
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
        Finished {
            code: status.code(),
            stderr,
            survivors,
            orphans: self.orphans.into_iter().collect(),
            seen: self.seen,
            report: std::fs::read(self.dir.path().join("report/report.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
        }
    }

    fn signal(&self, sig: libc::c_int) {
        unsafe { libc::kill(self.pid(), sig) };
    }
}

struct Finished {
    code: Option<i32>,
    stderr: String,
    survivors: Vec<Proc>,
    orphans: Vec<String>,
    seen: BTreeMap<i32, String>,
    report: Option<Value>,
}

impl Finished {
    /// The checks every run must pass: nothing survived, nothing was orphaned on the way.
    fn assert_clean(&self, what: &str) {
        assert!(
            self.survivors.is_empty(),
            "{what}: {} process(es) the run started are still alive after it ended (+{GRACE:?}):\n{}\nstderr:\n{}",
            self.survivors.len(),
            self.survivors
                .iter()
                .map(|p| format!("  pid {} parent {} state {}: {}", p.pid, p.ppid, p.state, p.cmd))
                .collect::<Vec<_>>()
                .join("\n"),
            self.stderr
        );
        assert!(
            self.orphans.is_empty(),
            "{what}: processes orphaned while the run went on:\n{}",
            self.orphans.join("\n")
        );
    }

    fn workers_seen(&self) -> usize {
        self.seen
            .values()
            .filter(|c| c.contains("worker.py"))
            .count()
    }

    fn verdicts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        if let Some(results) = self.report.as_ref().and_then(|r| r["results"].as_array()) {
            for r in results {
                *counts
                    .entry(r["verdict"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
        }
        counts
    }
}

fn conformance<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["conformance", "--seed", "1", "--no-corpus"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn an_openvino_run_leaves_no_process_behind() {
    if python().is_none() {
        return;
    }
    let run = Run::start(
        "openvino",
        &conformance(&["--cases", "16", "--converter", "openvino:f32"]),
    );
    let workers_dir = std::env::temp_dir().join(format!("conv1d-harness-{}", run.pid()));
    let done = run.finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    assert!(
        done.workers_seen() > 0,
        "no worker was seen: {:?}",
        done.seen
    );
    done.assert_clean("conformance --converter openvino:f32");
    // The workers' scripts and logs went with them.
    assert!(!workers_dir.exists(), "{} is left", workers_dir.display());
}

#[test]
fn a_killed_runs_worker_directory_is_removed_by_the_next_run() {
    if python().is_none() {
        return;
    }
    // A directory of a process that no longer runs (pid 0 is never a process's) ...
    let stale = std::env::temp_dir().join("conv1d-harness-0");
    std::fs::create_dir_all(stale.join("stacks")).unwrap();
    std::fs::write(stale.join("worker.py"), "").unwrap();
    // ... and one of a process that does: this test's.
    let live = std::env::temp_dir().join(format!("conv1d-harness-{}", std::process::id()));
    std::fs::create_dir_all(&live).unwrap();
    let done = Run::start(
        "stale-dirs",
        &conformance(&["--cases", "2", "--converter", "openvino:f32"]),
    )
    .finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    assert!(!stale.exists(), "{} is left", stale.display());
    assert!(live.exists(), "a running process's directory was removed");
    std::fs::remove_dir_all(&live).unwrap();
}

#[test]
fn an_onnxruntime_run_leaves_no_process_behind() {
    if python().is_none() {
        return;
    }
    let done = Run::start(
        "onnxruntime",
        &conformance(&[
            "--cases",
            "16",
            "--converter",
            "identity",
            "--runtime",
            "onnxruntime",
        ]),
    )
    .finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    assert!(
        done.workers_seen() > 0,
        "no worker was seen: {:?}",
        done.seen
    );
    done.assert_clean("conformance --runtime onnxruntime");
}

#[test]
fn a_perf_run_leaves_no_process_behind() {
    if python().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join("corpus/tiny");
    let o = Command::new(BIN)
        .args(["emit", "--seed", "0", "--index", "3"])
        .arg(&case)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let corpus = tmp.path().join("corpus");
    let done = Run::start(
        "perf",
        &[
            "perf",
            "--corpus",
            corpus.to_str().unwrap(),
            "--runtime",
            "onnxruntime",
            "--converter",
            "identity",
            "--converter",
            "openvino:f32",
            "--budget",
            "0.05",
        ],
    )
    .finish();
    assert_eq!(done.code, Some(0), "{}", done.stderr);
    assert!(
        done.workers_seen() > 0,
        "no worker was seen: {:?}",
        done.seen
    );
    done.assert_clean("perf --runtime onnxruntime --converter openvino:f32");
}

#[test]
fn workers_replaced_after_timeouts_leave_no_process_behind() {
    if python().is_none() {
        return;
    }
    // Conversions take longer than 0.15 s on this machine's first calls at least: workers
    // time out, are killed and replaced.
    let done = Run::start(
        "timeouts",
        &conformance(&[
            "--cases",
            "8",
            "--converter",
            "openvino:f32",
            "--timeout",
            "0.15",
        ]),
    )
    .finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    let verdicts = done.verdicts();
    assert!(
        verdicts.get("timeout").copied().unwrap_or(0) > 0,
        "no case timed out: {verdicts:?}"
    );
    assert!(
        done.workers_seen() > 1,
        "no worker was replaced: {:?}",
        done.seen
    );
    done.assert_clean("a run whose workers time out");
}

#[test]
fn workers_replaced_after_crashes_leave_no_process_behind() {
    if python().is_none() {
        return;
    }
    let mut run = Run::start(
        "crashes",
        &conformance(&["--cases", "40", "--converter", "openvino:f32"]),
    );
    // Crash three workers (SIGKILL to the worker alone, as a segfault would end it).
    let harness = run.pid();
    let mut killed = BTreeSet::new();
    for _ in 0..3 {
        let found = run.watch_until(Duration::from_secs(60), |procs| {
            procs.iter().any(|p| {
                p.ppid == harness && p.cmd.contains("worker.py") && !killed.contains(&p.pid)
            })
        });
        if !found {
            break;
        }
        if let Some(p) = marked(&run.mark)
            .into_iter()
            .find(|p| p.ppid == harness && p.cmd.contains("worker.py") && !killed.contains(&p.pid))
        {
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
            killed.insert(p.pid);
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(!killed.is_empty(), "no worker to crash was seen");
    let done = run.finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    assert!(done.workers_seen() > killed.len(), "{:?}", done.seen);
    done.assert_clean("a run whose workers crash");
}

/// A converter that starts a process of its own and hangs.
const HANGING_CONVERTER: &str = "exec:sleep 300; cp {input} {output}";

#[test]
fn a_sigkilled_run_leaves_no_process_behind() {
    let with_python = python().is_some();
    // The worker's converter first: each case converts with it before it hangs in the other.
    let mut args = conformance(&["--cases", "40"]);
    if with_python {
        args.extend_from_slice(&["--converter", "openvino:f32"]);
    }
    args.extend_from_slice(&["--converter", HANGING_CONVERTER]);
    let mut run = Run::start("sigkill", &args);
    // Wait until the run has a converter's own child (`sleep`) and, with Python, a worker.
    let ready = run.watch_until(Duration::from_secs(120), |procs| {
        procs.iter().any(|p| p.cmd.starts_with("sleep 300"))
            && (!with_python || procs.iter().any(|p| p.cmd.contains("worker.py")))
    });
    assert!(ready, "the run never started its children: {:?}", run.seen);
    run.signal(libc::SIGKILL);
    let done = run.finish();
    assert_eq!(done.code, None, "killed by a signal");
    done.assert_clean("a SIGKILLed run");
}

#[test]
fn interrupted_runs_leave_no_process_behind() {
    let with_python = python().is_some();
    // One SIGTERM: the run stops after the cases in flight (a 2 s conversion) and exits 130.
    // Two SIGINTs: the second ends the process at once, a 60 s conversion still running.
    for (name, signals, converter) in [
        (
            "sigterm",
            &[libc::SIGTERM][..],
            "exec:sleep 2; cp {input} {output}",
        ),
        (
            "sigint2",
            &[libc::SIGINT, libc::SIGINT],
            "exec:sleep 60; cp {input} {output}",
        ),
    ] {
        let mut args = conformance(&["--cases", "40"]);
        if with_python {
            args.extend_from_slice(&["--converter", "openvino:f32"]);
        }
        args.extend_from_slice(&["--converter", converter]);
        let mut run = Run::start(name, &args);
        let sleep = &converter["exec:".len()..converter.find(';').unwrap()];
        let ready = run.watch_until(Duration::from_secs(120), |procs| {
            procs.iter().any(|p| p.cmd.starts_with(sleep))
                && (!with_python || procs.iter().any(|p| p.cmd.contains("worker.py")))
        });
        assert!(
            ready,
            "{name}: the run never started its children: {:?}",
            run.seen
        );
        for &sig in signals {
            run.signal(sig);
            std::thread::sleep(Duration::from_millis(200));
        }
        let done = run.finish();
        if signals.len() == 1 {
            assert_eq!(done.code, Some(130), "{name}: {}", done.stderr);
        } else {
            assert_eq!(done.code, None, "{name}: killed by the second signal");
        }
        done.assert_clean(name);
    }
}

#[test]
fn an_exec_converter_that_leaves_a_process_running_has_it_ended() {
    let done = Run::start(
        "exec-background",
        &conformance(&[
            "--cases",
            "4",
            "--converter",
            "exec:sleep 300 & sleep 0.5; cp {input} {output}",
        ]),
    )
    .finish();
    assert!(matches!(done.code, Some(0 | 1)), "{}", done.stderr);
    assert!(
        done.seen.values().any(|c| c.starts_with("sleep 300")),
        "the converter's process was never seen: {:?}",
        done.seen
    );
    done.assert_clean("an exec: converter leaving `sleep 300 &` behind");
}

// In-process: the library's own guarantees, followed by process id.

fn pool() -> Option<std::sync::Arc<Pool>> {
    python().map(Pool::new)
}

fn wait_gone(pid: i32) -> bool {
    let end = Instant::now() + GRACE;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Whether our child `pid` was reaped (no zombie left).
fn reaped(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || stat(pid).is_none_or(|(ppid, _)| ppid != std::process::id() as i32)
}

fn fork_copy(lease: &mut harness::worker::Lease) -> i32 {
    let reply = lease
        .call(
            json!({"op": "fork", "seconds": 300}),
            Duration::from_secs(60),
        )
        .unwrap();
    let copy = reply["pid"].as_i64().unwrap() as i32;
    assert!(alive(copy));
    copy
}

#[test]
fn a_worker_that_times_out_is_killed_with_what_it_started_and_reaped() {
    let Some(pool) = pool() else { return };
    let mut lease = pool.lease(Default::default()).unwrap();
    let worker = lease.pid().unwrap() as i32;
    let copy = fork_copy(&mut lease);
    let err = lease
        .call(
            json!({"op": "sleep", "seconds": 30}),
            Duration::from_millis(500),
        )
        .unwrap_err();
    assert!(matches!(err, WorkerError::Timeout(_)), "{err:?}");
    assert!(reaped(worker), "the timed-out worker {worker} is a zombie");
    assert!(wait_gone(copy), "the worker's fork {copy} outlived it");
}

#[test]
fn a_crashed_worker_is_reported_at_once_though_its_fork_lives_and_then_both_are_gone() {
    let Some(pool) = pool() else { return };
    let mut lease = pool.lease(Default::default()).unwrap();
    let worker = lease.pid().unwrap() as i32;
    // A fork made from a thread, as OpenVINO's telemetry made them: it gets every descriptor
    // of the worker, and must not keep the worker's pipes open.
    let copy = fork_copy(&mut lease);
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        unsafe { libc::kill(worker, libc::SIGKILL) };
    });
    let start = Instant::now();
    let err = lease
        .call(
            json!({"op": "sleep", "seconds": 30}),
            Duration::from_secs(40),
        )
        .unwrap_err();
    killer.join().unwrap();
    assert!(
        matches!(&err, WorkerError::Died(m) if m.contains("signal")),
        "a crash must be reported as a death, not a timeout: {err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "the death was seen only after {:?}",
        start.elapsed()
    );
    assert!(reaped(worker), "the crashed worker {worker} is a zombie");
    assert!(
        wait_gone(copy),
        "the crashed worker's fork {copy} outlived it"
    );
}

#[test]
fn a_worker_started_from_a_thread_that_ended_stays_alive() {
    // The parent-death signal belongs to the thread that forked; workers started from a
    // short-lived thread (a timeout thread, a rayon job) must not die with it.
    let Some(pool) = pool() else { return };
    let p = pool.clone();
    let pid = std::thread::spawn(move || {
        let mut lease = p.lease(Default::default()).unwrap();
        lease
            .call(json!({"op": "hello"}), Duration::from_secs(120))
            .unwrap();
        lease.pid().unwrap()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        alive(pid as i32),
        "worker {pid} died with the thread that started it"
    );
    let mut lease = pool.lease(Default::default()).unwrap();
    assert_eq!(lease.pid(), Some(pid), "the idle worker was not reused");
    lease
        .call(json!({"op": "hello"}), Duration::from_secs(60))
        .unwrap();
}
