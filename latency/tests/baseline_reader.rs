//! The baseline reader on the committed baseline and on seeded mutations of it (bit flips,
//! truncations): every outcome is a value or an error naming the file, never a panic.

use std::path::Path;

use harness::seed::{self, Draw};

#[test]
fn baseline_reader_reads_the_committed_baseline_and_survives_mutations_of_it() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/baselines/main.json");
    let report = latency::baseline::load(&committed).expect("the committed baseline loads");
    assert!(!report.cases.is_empty());
    let bytes = std::fs::read(&committed).unwrap();
    let mut rng = seed::rng(0, "fuzz-baseline-mutants");
    for _ in 0..300 {
        let mut v = bytes.clone();
        match rng.int(0, 2) {
            0 => {
                let at = rng.int(0, v.len() as i64 - 1) as usize;
                v[at] ^= 1 << rng.int(0, 7);
            }
            1 => v.truncate(rng.int(0, v.len() as i64) as usize),
            _ => {
                let at = rng.int(0, v.len() as i64 - 1) as usize;
                v[at] = rng.int(0, 255) as u8;
            }
        }
        latency::baseline::read_any(&v);
    }
}
