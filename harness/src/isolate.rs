//! Keeping one case's failure from taking the run down: panics caught and turned into
//! messages, in-process work bounded by a timeout, and child processes that end with the run.
//!
//! # Child processes
//!
//! Every process the harness starts (Python workers, `exec:` converters) goes through
//! [`Group::spawn`], so that none outlives the run, however it ends:
//!
//! - Each child leads a process group of its own, and ending it ([`Group::end`], on drop, on
//!   a timeout, on replacement) kills the whole group, so what the child started goes too.
//! - Each child gets a parent-death signal (SIGKILL), checked against a parent that died
//!   before it was set. Linux ties that signal to the *thread* that forked, not the process,
//!   so children are forked by one thread that lives as long as the process, never by the
//!   rayon or timeout threads that come and go.
//! - Descriptors other than stdin, stdout and stderr are closed at exec in the child, so no
//!   child holds another's pipe ends (which would hide a dead worker's end of file).
//! - At exit (`atexit`) the groups still alive are killed and their leaders reaped; a second
//!   SIGINT or SIGTERM kills them before the process dies of the signal.
//! - A guard process, a few lines of `sh` started with the first child, learns every group
//!   (each child registers itself before exec) and kills the ones still alive when its input
//!   reaches end of file: when the harness is gone, even by SIGKILL. The guard then exits.
//! - Resource limits ([`ChildLimits`]) are set in the child before exec, so a converter that
//!   allocates without bound fails its own allocations instead of taking the machine.

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread is inside [`catch`], where a panic is a library's, to be recorded.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Replaces the panic hook with one that records the message of a panic inside [`catch`].
/// Panics are part of what the harness observes in libraries under test, so they become
/// verdicts and messages, never noise on the terminal. Any other panic (a caller's, a test's
/// assertion) goes to the hook that was there before, and is printed as usual.
pub fn install_quiet_panic_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
                return;
            }
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("panic: {payload}{location}")));
        }));
    });
}

/// Runs `f`, turning a panic into `Err(message)`.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_panic_hook();
    let outer = CATCHING.with(|c| c.replace(true));
    let caught = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(outer));
    caught.map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panic".into())
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    // Async-signal-safe only: atomics, kill, signal, raise.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // The second signal: end the children now, then die of the signal.
        kill_remembered_groups();
        // SAFETY: resetting a disposition and raising a signal are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}

/// Makes SIGINT (Ctrl-C) and SIGTERM ask the run to stop: no new case starts, and the partial
/// report is still written. A second signal kills the child processes and ends the process at
/// once.
pub fn stop_on_signals() {
    // SAFETY: the handler only touches atomics and makes async-signal-safe calls.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// True once SIGINT or SIGTERM arrived (after [`stop_on_signals`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Outcome of [`with_timeout`].
#[derive(Debug)]
pub enum Bounded<T> {
    /// Finished in time.
    Done(T),
    /// Panicked, with the message.
    Panicked(String),
    /// Still running after the timeout; the worker thread is abandoned.
    TimedOut,
}

/// Runs `f` on its own thread and waits at most `timeout`. A thread that overruns is left to
/// finish on its own (a thread cannot be killed); its result is dropped.
pub fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Bounded<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("bounded".into())
        .spawn(move || {
            let _ = tx.send(catch(f));
        });
    if let Err(e) = spawned {
        return Bounded::Panicked(format!("could not start a thread: {e}"));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(v)) => Bounded::Done(v),
        Ok(Err(msg)) => Bounded::Panicked(msg),
        Err(mpsc::RecvTimeoutError::Timeout) => Bounded::TimedOut,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Bounded::Panicked("worker thread vanished".into())
        }
    }
}

/// Limits set in a child process before it runs (`setrlimit`, inherited by what it starts).
/// `None` leaves the harness's own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChildLimits {
    /// Address space in bytes (`RLIMIT_AS`): past it, allocations fail (Python's
    /// `MemoryError`, C++'s `std::bad_alloc`, a library's "Failed to allocate").
    pub memory: Option<u64>,
    /// CPU time in seconds (`RLIMIT_CPU`, soft): SIGXCPU at the limit, which ends a process
    /// that does not handle it (one that does is still ended by `--timeout`). For a
    /// long-lived worker it is renewed before each request ([`Group::allow_cpu`]).
    pub cpu_seconds: Option<u64>,
}

/// The signal the kernel sends at a CPU-time limit.
pub const CPU_LIMIT_SIGNAL: i32 = libc::SIGXCPU;

/// Default address-space limit of a converter's process or a worker: 6 GiB. Two of them at a
/// time (one per core on 2 cores) with the oracle's own `--max-case-bytes` stay inside a
/// 24 GiB machine; a worker serving OpenVINO and onnxruntime maps under 1 GiB on the
/// generated models (docs/RELIABILITY.md).
pub const DEFAULT_CONVERTER_MEMORY: u64 = 6 << 30;

impl ChildLimits {
    /// The limits a run uses unless told otherwise: [`DEFAULT_CONVERTER_MEMORY`], no CPU-time
    /// limit (`--timeout` bounds the wall time already).
    pub fn converters_default() -> ChildLimits {
        ChildLimits {
            memory: Some(DEFAULT_CONVERTER_MEMORY),
            cpu_seconds: None,
        }
    }

    /// Words that a failed allocation leaves in a message (Python, C++, onnxruntime,
    /// OpenVINO, Rust, libc).
    const ALLOCATION_FAILED: [&'static str; 6] = [
        "MemoryError",
        "bad_alloc",
        "Failed to allocate",
        "Cannot allocate memory",
        "memory allocation of",
        "out of memory",
    ];

    /// When a memory limit is set and `message` reads as a failed allocation: how to say
    /// that the limit was reached.
    pub fn memory_reached(&self, message: &str) -> Option<String> {
        let limit = self.memory?;
        Self::ALLOCATION_FAILED
            .iter()
            .any(|w| message.contains(w))
            .then(|| {
                format!(
                    "memory limit of {} reached (--max-converter-memory)",
                    bytes(limit)
                )
            })
    }

    /// When a CPU-time limit is set and the process ended by its signal (or, for a shell
    /// whose command did, with status 128 + the signal): how to say so.
    pub fn cpu_reached(&self, status: ExitStatus) -> Option<String> {
        use std::os::unix::process::ExitStatusExt as _;
        let limit = self.cpu_seconds?;
        (status.signal() == Some(CPU_LIMIT_SIGNAL) || status.code() == Some(128 + CPU_LIMIT_SIGNAL))
            .then(|| format!("CPU-time limit of {limit} s reached (--max-converter-cpu)"))
    }
}

/// `n` bytes the way people read them: "6 GiB", "512 MiB", "1000 bytes".
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", n >> shift);
        }
    }
    match UNITS.iter().find(|(_, shift)| n >= 1 << shift) {
        Some((unit, shift)) => format!("{:.1} {unit}", n as f64 / (1u64 << shift) as f64),
        None => format!("{n} bytes"),
    }
}

/// A child process that leads its own process group; see the module documentation. Dropping
/// it kills the group and reaps the leader.
pub struct Group {
    child: Child,
    status: Option<ExitStatus>,
    /// Killed and waited for (even if the wait failed): never signal the group id again.
    ended: bool,
}

impl Group {
    /// Starts `cmd` as the leader of a new process group, with a parent-death signal, no
    /// inherited descriptors beyond 0, 1 and 2, `limits` set, and registered for killing at
    /// exit. `cmd`'s stdio settings are kept; its process group setting is replaced.
    pub fn spawn(cmd: Command, limits: ChildLimits) -> io::Result<Group> {
        let (reply, answer) = mpsc::channel();
        let gone = || io::Error::other("the thread that starts child processes is gone");
        spawner().send((cmd, limits, reply)).map_err(|_| gone())?;
        let child = answer.recv().map_err(|_| gone())??;
        Ok(Group {
            child,
            status: None,
            ended: false,
        })
    }

    /// The leader's process id, which is also the group's id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Lets the leader use `seconds` more CPU time from now on (`prlimit` on its
    /// `RLIMIT_CPU`), for a long-lived process whose limit is per request. Best effort: a
    /// leader that is gone is left alone.
    pub fn allow_cpu(&self, seconds: u64) {
        let pid = self.child.id() as libc::pid_t;
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        // Fields after the command name (which may hold spaces) start at state, field 3;
        // utime and stime are fields 14 and 15, in clock ticks.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |k: usize| fields.get(k - 3).and_then(|f| f.parse::<u64>().ok());
        let (Some(user), Some(system)) = (ticks(14), ticks(15)) else {
            return;
        };
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let soft = (user + system).div_ceil(hz) + seconds;
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit on our own child with valid rlimits; the hard limit is kept.
        unsafe {
            if libc::prlimit(pid, libc::RLIMIT_CPU, std::ptr::null(), &mut limit) != 0 {
                return;
            }
            limit.rlim_cur = soft.min(limit.rlim_max);
            libc::prlimit(pid, libc::RLIMIT_CPU, &limit, std::ptr::null_mut());
        }
    }

    /// The leader, to take its pipes. Reap it only through [`Group::end`].
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Whether the leader has exited. It is not reaped, so its group id stays reserved.
    pub fn exited(&self) -> bool {
        self.ended || exited(self.child.id() as i32)
    }

    /// Waits at most `timeout` for the leader to exit, without reaping it; whether it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        if self.exited() {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let pid = self.child.id() as libc::c_int;
        // SAFETY: pidfd_open on our own unreaped child; the descriptor is owned below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd >= 0 {
            // SAFETY: a descriptor just returned by the kernel, owned by no one else.
            let pidfd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
                let mut p = libc::pollfd {
                    fd: pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                let r = unsafe { libc::poll(&mut p, 1, ms) };
                if r > 0 {
                    return true;
                }
                if r == 0 && left.is_zero() {
                    return self.exited();
                }
                if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
        }
        // No pidfd (a kernel before 5.3): look every 10 ms.
        loop {
            if self.exited() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    /// Kills the whole group (the leader, if still running, and whatever it started), reaps
    /// the leader and returns how it ended. Safe to call again: the first status is kept.
    pub fn end(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if self.ended {
            return Err(io::Error::other("the process was already ended"));
        }
        self.ended = true;
        let pgid = self.child.id() as i32;
        // The leader is not reaped yet, so the group id cannot belong to anyone else.
        // SAFETY: kill(2) on our own process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        forget_group(pgid);
        let status = self.child.wait()?;
        self.status = Some(status);
        Ok(status)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = self.end();
    }
}

/// Whether our unreaped child `pid` has exited (or is not ours to wait for any more).
fn exited(pid: i32) -> bool {
    // SAFETY: waitid with WNOWAIT only looks; siginfo_t is plain data.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r != 0 || info.si_pid() != 0
    }
}

/// Groups of the children alive now, for the exit and signal paths, which must neither lock
/// nor allocate. 0 marks a free slot. More children than slots are still killed by their
/// `Group`, the guard and the parent-death signal.
static GROUPS: [AtomicI32; 1024] = [const { AtomicI32::new(0) }; 1024];

fn remember_group(pgid: i32) {
    for slot in &GROUPS {
        if slot
            .compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

fn forget_group(pgid: i32) {
    for slot in &GROUPS {
        if slot
            .compare_exchange(pgid, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            break;
        }
    }
    if let Some(guard) = GUARD.get() {
        // A single write below PIPE_BUF: atomic, no lock needed.
        let _ = (&guard.input).write_all(format!("- {pgid}\n").as_bytes());
    }
}

/// Async-signal-safe: SIGKILL to every remembered group.
fn kill_remembered_groups() {
    for slot in &GROUPS {
        let pgid = slot.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) is async-signal-safe.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// The guard: reads `+ PGID` (sent by each child before exec) and `- PGID` (sent when the
/// harness ended that group itself); at end of file, or at `!`, kills the groups left and
/// exits. Ignores the terminal's SIGINT and SIGHUP: it must outlive the harness to do its job.
const GUARD_SCRIPT: &str = r#"trap '' INT HUP
live=' '
while read -r op pgid; do
  case $op in
    +) live="$live$pgid " ;;
    -) case $live in *" $pgid "*) live="${live%% $pgid *} ${live#* $pgid }" ;; esac ;;
    !) break ;;
  esac
done
for pgid in $live; do kill -s KILL -- "-$pgid" 2>/dev/null; done
"#;

struct Guard {
    pid: libc::pid_t,
    input: ChildStdin,
}

static GUARD: OnceLock<Guard> = OnceLock::new();

fn start_guard() -> Option<Guard> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(GUARD_SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Not the harness's group: a signal to that group must not take the guard with it.
        .process_group(0);
    // SAFETY: the closure only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(|| {
            cloexec_from(3);
            Ok(())
        });
    }
    let mut child = cmd.spawn().ok()?;
    let input = child.stdin.take()?;
    Some(Guard {
        pid: child.id() as libc::pid_t,
        input,
    })
}

type Job = (Command, ChildLimits, mpsc::Sender<io::Result<Child>>);

/// The one thread that forks children (see the module documentation): started with the first
/// child, it never exits, since its sender lives in a static.
fn spawner() -> &'static mpsc::Sender<Job> {
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                if let Some(guard) = start_guard() {
                    let _ = GUARD.set(guard);
                }
                for (cmd, limits, reply) in queue {
                    let _ = reply.send(spawn_here(cmd, limits));
                }
            })
            .expect("cannot start the thread that starts child processes");
        // SAFETY: registering a plain function.
        unsafe {
            libc::atexit(end_children_at_exit);
        }
        jobs
    })
}

fn spawn_here(mut cmd: Command, limits: ChildLimits) -> io::Result<Child> {
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let guard = GUARD.get().map_or(-1, |g| g.input.as_raw_fd());
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
    // on stack memory.
    unsafe {
        cmd.pre_exec(move || in_child(parent, guard, limits));
    }
    let child = cmd.spawn()?;
    remember_group(child.id() as i32);
    Ok(child)
}

/// In the child, before exec.
fn in_child(parent: libc::pid_t, guard: libc::c_int, limits: ChildLimits) -> io::Result<()> {
    set_limits(limits)?;
    // SAFETY: prctl, getppid, getpid, signal, write and close_range are async-signal-safe;
    // the buffer is on the stack.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            return Err(io::Error::last_os_error());
        }
        // The harness died before the signal was set: this child is already an orphan.
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if guard >= 0 {
            let mut line = [0u8; 24];
            let n = guard_line(&mut line, libc::getpid());
            let old = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::write(guard, line.as_ptr().cast(), n);
            libc::signal(libc::SIGPIPE, old);
        }
    }
    cloexec_from(3);
    Ok(())
}

/// Sets `limits` on the calling process as soft limits, below the hard ones it inherited
/// (async-signal-safe: getrlimit and setrlimit only). Hard limits are left alone: a long-lived
/// worker's CPU limit is raised again before each request (`Group::allow_cpu`), which an
/// unprivileged process could not do past a lowered hard limit.
fn set_limits(limits: ChildLimits) -> io::Result<()> {
    let set = |resource, soft: u64| {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit with a valid rlimit on stack memory.
        unsafe {
            if libc::getrlimit(resource, &mut limit) != 0 {
                return Err(io::Error::last_os_error());
            }
            limit.rlim_cur = soft.min(limit.rlim_max);
            if libc::setrlimit(resource, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    if let Some(bytes) = limits.memory {
        set(libc::RLIMIT_AS, bytes)?;
    }
    if let Some(seconds) = limits.cpu_seconds {
        set(libc::RLIMIT_CPU, seconds)?;
    }
    Ok(())
}

/// Writes `+ PID\n` into `buf` without allocating; its length.
fn guard_line(buf: &mut [u8; 24], pid: libc::pid_t) -> usize {
    let mut digits = [0u8; 12];
    let mut n = 0;
    let mut v = pid.unsigned_abs();
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf[0] = b'+';
    buf[1] = b' ';
    for i in 0..n {
        buf[2 + i] = digits[n - 1 - i];
    }
    buf[2 + n] = b'\n';
    3 + n
}

/// Marks every descriptor from `first` on close-on-exec (async-signal-safe).
fn cloexec_from(first: libc::c_uint) {
    // SAFETY: close_range and fcntl only change descriptor flags.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) != 0
        {
            // Before Linux 5.11: one by one, as far as descriptors usually go.
            for fd in first as libc::c_int..4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

extern "C" fn end_children_at_exit() {
    end_children();
}

/// Kills every child group still alive, ends the guard and reaps them all. Runs at exit
/// (returning from `main` or `std::process::exit`); later children still die with the
/// process by their parent-death signal.
fn end_children() {
    let mut leaders = Vec::new();
    for slot in &GROUPS {
        let pgid = slot.swap(0, Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill(2) on a group whose leader we have not reaped.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            leaders.push(pgid);
        }
    }
    if let Some(guard) = GUARD.get() {
        // The guard kills what it knows (the same groups, their ids still reserved by the
        // unreaped leaders) and exits.
        let _ = (&guard.input).write_all(b"! 0\n");
        reap(guard.pid);
    }
    for pid in leaders {
        reap(pid);
    }
}

/// Waits for our child `pid` to end, giving up after two seconds (or if it is not ours to
/// wait for), so that exit cannot hang.
fn reap(pid: libc::pid_t) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: waitpid on one of our children.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r != 0 || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<(), String> = catch(|| panic!("boom {}", 7));
        let msg = r.unwrap_err();
        assert!(msg.contains("boom 7"), "{msg}");
    }

    #[test]
    fn a_slow_job_times_out_and_a_fast_one_finishes() {
        assert!(matches!(
            with_timeout(Duration::from_millis(50), || std::thread::sleep(
                Duration::from_secs(2)
            )),
            Bounded::TimedOut
        ));
        assert!(matches!(
            with_timeout(Duration::from_secs(5), || 41 + 1),
            Bounded::Done(42)
        ));
    }
}
