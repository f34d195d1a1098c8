//! Keeping one case's failure from taking the run down: panics caught and turned into
//! messages, in-process work bounded by a timeout.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Once;
use std::time::Duration;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Replaces the default panic hook (which prints to stderr) with one that records the message
/// for [`catch`]. Panics are part of what the harness observes in libraries under test, so
/// they become verdicts and messages, never noise on the terminal.
pub fn install_quiet_panic_hook() {
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
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
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| "panic".into())
    })
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe. A second signal gets the default action.
    INTERRUPTED.store(true, Ordering::SeqCst);
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
}

/// Makes SIGINT (Ctrl-C) and SIGTERM ask the run to stop: no new case starts, and the partial
/// report is still written. A second signal ends the process at once.
pub fn stop_on_signals() {
    // SAFETY: the handler only stores to an atomic and resets the dispositions.
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
