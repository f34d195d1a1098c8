//! The calibration workload, and the slowdown wrapper of the self-test.
//!
//! The calibration workload is a fixed, deterministic f32 1D convolution in plain Rust. It is
//! timed in the same rounds as the models, so a latency divided by its median (a "calibrated
//! unit") cancels most of what makes one run or machine slower than another (clock speed,
//! a busy neighbour), and results of different runs compare.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Result;

use harness::runtime::{Loaded, Precision};
use harness::tensor::{Named, Tensor};

/// Signal length of the calibration convolution.
const SIGNAL: usize = 2048;
/// Taps of the calibration convolution.
const TAPS: usize = 32;

/// Outputs of the calibration convolution.
const OUT: usize = SIGNAL - TAPS + 1;

/// The workload's buffers in one allocation with a fixed layout. With three separate `Vec`s,
/// one instance once ran 1.65x slower than the others for its whole life (a whole case's
/// calibrated latencies shifted with it); the distance between the buffers, which changed
/// from one instance to the next, is the likely cause (4 KiB aliasing of loads and stores).
/// With fixed offsets and a 64-byte alignment every instance has the same layout; the
/// round floors then stayed within 5.02..5.09 us over seven processes.
#[repr(C, align(64))]
struct Buffers {
    signal: [f32; SIGNAL],
    taps: [f32; TAPS],
    out: [f32; OUT],
}

/// The calibration workload: a valid 1D convolution of a fixed signal with fixed taps
/// (`(SIGNAL - TAPS + 1) * TAPS` multiply-adds, about 64 k).
pub struct Calibration {
    buffers: Box<Buffers>,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::new()
    }
}

impl Calibration {
    /// The workload with its fixed data.
    pub fn new() -> Calibration {
        let mut buffers = Box::new(Buffers {
            signal: [0.0; SIGNAL],
            taps: [0.0; TAPS],
            out: [0.0; OUT],
        });
        // Small integers scaled by a power of two: exact in f32, identical everywhere.
        for (i, x) in buffers.signal.iter_mut().enumerate() {
            *x = ((i * 7919) % 17) as f32 / 16.0 - 0.5;
        }
        for (k, w) in buffers.taps.iter_mut().enumerate() {
            *w = ((k * 31) % 9) as f32 / 8.0 - 0.5;
        }
        Calibration { buffers }
    }

    /// Runs the workload once; returns a checksum so the work cannot be optimized away.
    pub fn run(&mut self) -> f32 {
        let b = &mut *self.buffers;
        let signal = black_box(&b.signal);
        let taps = black_box(&b.taps);
        for (o, window) in b.out.iter_mut().zip(signal.windows(TAPS)) {
            *o = window.iter().zip(taps).map(|(x, w)| x * w).sum();
        }
        black_box(&b.out).iter().sum()
    }

    /// Floating-point operations of one run (a multiply and an add per tap and output).
    pub fn flops() -> u64 {
        (2 * (SIGNAL - TAPS + 1) * TAPS) as u64
    }
}

/// Spins (busy work, not sleep) for `d`.
fn busy(d: Duration) {
    spin_until(Instant::now() + d);
}

/// Spins (busy work, not sleep) until `deadline`.
fn spin_until(deadline: Instant) {
    let mut x = 1u64;
    while Instant::now() < deadline {
        for _ in 0..64 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    black_box(x);
}

/// A runtime wrapper that adds a known share of busy work to every run: when the model ran in
/// `t`, it spins until `(1 + fraction) * t` after the run started (a deadline, so the clock
/// reads of the spin are part of the added time, which matters for runs of a microsecond).
/// Only the self-test uses it, to check that a slowdown of that size is detected.
pub struct Slowdown {
    /// The wrapped model.
    pub inner: Box<dyn Loaded>,
    /// Extra busy work, as a fraction of each run's time (0.1 = 10% slower).
    pub fraction: f64,
}

impl Loaded for Slowdown {
    fn precision(&self) -> Precision {
        self.inner.precision()
    }

    fn run(&mut self, inputs: &[Named]) -> Result<Vec<Tensor>> {
        let start = Instant::now();
        let out = self.inner.run(inputs)?;
        spin_until(start + start.elapsed().mul_f64(1.0 + self.fraction));
        Ok(out)
    }

    fn times_itself(&self) -> bool {
        self.inner.times_itself()
    }

    fn timed_runs(&mut self, inputs: &[Named], repeats: usize) -> Option<Result<Vec<f64>>> {
        // A worker times its runs itself: add the busy work to each sample here.
        let samples = self.inner.timed_runs(inputs, repeats)?;
        Some(samples.map(|s| {
            s.into_iter()
                .map(|us| {
                    busy(Duration::from_secs_f64(us * 1e-6 * self.fraction));
                    us * (1.0 + self.fraction)
                })
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibration_workload_is_deterministic() {
        let a = Calibration::new().run();
        let b = Calibration::new().run();
        assert_eq!(a.to_bits(), b.to_bits());
        assert!(a.is_finite() && a != 0.0);
        assert_eq!(Calibration::flops(), 2 * 2017 * 32);
    }

    #[test]
    fn busy_work_lasts_at_least_as_asked() {
        let t = Instant::now();
        busy(Duration::from_millis(3));
        assert!(t.elapsed() >= Duration::from_millis(3));
    }
}
