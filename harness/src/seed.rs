//! Seeds and deterministic random streams.
//!
//! Everything random in a case (its model, weights, inputs) comes from a stream derived from
//! the base seed, the case index and a label, so case i of seed S is the same on every machine,
//! thread count and run.

use proptest::test_runner::{RngAlgorithm, TestRng};
use sha2::{Digest, Sha256};

/// Derives a 64-bit seed for case `index` of base seed `base`.
pub fn case_seed(base: u64, index: u64) -> u64 {
    let d = digest(&[b"case", &base.to_le_bytes(), &index.to_le_bytes()]);
    u64::from_le_bytes(d[..8].try_into().expect("8 bytes"))
}

/// A ChaCha random stream for `seed`, separated by `label` (e.g. "weights", "inputs").
pub fn rng(seed: u64, label: &str) -> TestRng {
    TestRng::from_seed(
        RngAlgorithm::ChaCha,
        &digest(&[label.as_bytes(), &seed.to_le_bytes()]),
    )
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Simple draws from a random stream, written out so they never change with a crate update.
pub trait Draw {
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64;
    /// Uniform integer in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64;
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Uniform in [lo, hi).
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

impl<R: proptest::prelude::Rng> Draw for R {
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::Rng;

    #[test]
    fn streams_are_reproducible_and_separated_by_label() {
        let a: Vec<u64> = (0..4).map(|_| rng(7, "w").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(rng(7, "w").next_u64(), rng(7, "x").next_u64());
        assert_ne!(case_seed(0, 1), case_seed(0, 2));
        assert_ne!(case_seed(0, 1), case_seed(1, 1));
    }

    #[test]
    fn draws_stay_in_range() {
        let mut r = rng(1, "t");
        for _ in 0..1000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            assert!((-2..=2).contains(&r.int(-2, 2)));
            assert!(r.normal().is_finite());
        }
    }
}
