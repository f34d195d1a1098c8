//! A conformance run's progress on stderr: a bar (indicatif) on a terminal, a plain line every
//! few seconds anywhere else (CI logs), so neither floods nor stays silent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::conformance::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where progress goes.
pub enum View {
    /// A terminal: a bar redrawn in place.
    Bar(ProgressBar, Instant, Mutex<Seen>),
    /// A log: a line at most every `every`, and one when the last case is done.
    Lines {
        every: Duration,
        start: Instant,
        last: Mutex<(Option<Instant>, Seen)>,
    },
}

/// The newest snapshot shown, by (cases done, results): threads report concurrently, so an
/// older snapshot can arrive after a newer one and must not move the display back.
#[derive(Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen(usize, usize);

impl Seen {
    fn of(p: &Progress) -> Seen {
        Seen(p.done, p.results)
    }
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
            return View::Bar(bar, start, Mutex::new(Seen::default()));
        }
        View::Lines {
            every,
            start,
            last: Mutex::new((None, Seen::default())),
        }
    }

    /// Shows `p`, unless a newer snapshot was shown already.
    pub fn show(&self, p: &Progress) {
        match self {
            View::Bar(bar, start, seen) => {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                if Seen::of(p) < *seen {
                    return;
                }
                *seen = Seen::of(p);
                bar.set_length(p.total as u64);
                bar.set_message(counts(p, start.elapsed()));
                bar.set_position(p.done as u64);
            }
            View::Lines { every, start, last } => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let (printed, seen) = *last;
                if Seen::of(p) <= seen {
                    return;
                }
                let due = printed.is_none_or(|t| now.duration_since(t) >= *every);
                if due || p.done == p.total {
                    *last = (Some(now), Seen::of(p));
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
        if let View::Bar(bar, _, _) = self {
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
