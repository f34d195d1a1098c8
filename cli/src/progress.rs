//! A conformance run's progress on stderr: a bar (indicatif) on a terminal, a plain line every
//! few seconds anywhere else (CI logs), so neither floods nor stays silent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::conformance::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub enum View {
    /// A terminal: a bar redrawn in place.
    Bar(ProgressBar, Instant),
    /// A log: a line at most every `every`, and one when the last case is done.
    Lines {
        every: Duration,
        start: Instant,
        last: Mutex<Option<Instant>>,
    },
}

impl View {
    /// A bar when stderr is a terminal, lines every `every` otherwise.
    pub fn new(terminal: bool, every: Duration) -> View {
        let start = Instant::now();
        if terminal {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} cases · {msg} · ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("█▌ "),
            );
            return View::Bar(bar, start);
        }
        View::Lines {
            every,
            start,
            last: Mutex::new(None),
        }
    }

    /// Shows `p`.
    pub fn show(&self, p: &Progress) {
        match self {
            View::Bar(bar, start) => {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                bar.set_message(counts(p, start.elapsed()));
            }
            View::Lines { every, start, last } => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let due = last.is_none_or(|t| now.duration_since(t) >= *every);
                if due || p.done == p.total {
                    *last = Some(now);
                    eprintln!(
                        "progress: {}/{} cases · {}",
                        p.done,
                        p.total,
                        counts(p, start.elapsed())
                    );
                }
            }
        }
    }

    /// Ends the display: the bar stays, complete, and what follows starts on a line of its own.
    pub fn finish(&self) {
        if let View::Bar(bar, _) = self {
            bar.finish();
            eprintln!();
        }
    }
}

/// "N results (R results/s) · F failing · E expected".
fn counts(p: &Progress, elapsed: Duration) -> String {
    let rate = p.results as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{} results ({rate:.0}/s) · {} failing · {} expected",
        p.results, p.failing, p.expected
    )
}
