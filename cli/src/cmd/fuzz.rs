//! `harness fuzz`: a campaign that reduces each new failure signature and saves it as a
//! regression corpus case.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use harness::conformance::{Runner, SetupError};

use super::conformance::options;
use super::exit_code;
use crate::args::{seconds, FuzzArgs};
use crate::defaults;

pub fn fuzz(f: FuzzArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !f.run.resume,
        "--resume is for conformance runs; a fuzz campaign starts from its seed and --cases"
    );
    let budget = f.run.budget.map(|b| seconds("budget", b)).transpose()?;
    let cases = f.run.cases.unwrap_or(0);
    let report_dir = f.run.report_dir.clone();
    let mut options = options(f.run)?;
    options.cases = cases;
    // The campaign reduces every new signature itself.
    options.max_bundles = usize::MAX;
    options.budget = None;
    let regressions = match (f.no_save, f.save_regressions) {
        (true, _) => None,
        (false, Some(dir)) => Some(dir),
        (false, None) => Some(PathBuf::from(defaults::REGRESSIONS))
            .filter(|_| std::path::Path::new(defaults::CORPUS).is_dir()),
    };
    let ledger_file = options
        .known_failures
        .clone()
        .or_else(|| Some(PathBuf::from(defaults::LEDGER)));
    let runner = Runner::new(options).map_err(|SetupError(m)| anyhow::anyhow!(m))?;
    harness::isolate::stop_on_signals();
    let tty = std::io::stderr().is_terminal();
    let last_thousand = std::sync::atomic::AtomicU64::new(0);
    let reported_unsaved = std::sync::atomic::AtomicUsize::new(0);
    let progress = |p: &harness::conformance::FuzzProgress| {
        let already =
            reported_unsaved.swap(p.not_saved.len(), std::sync::atomic::Ordering::Relaxed);
        for problem in p.not_saved.iter().skip(already) {
            eprintln!("{problem}");
        }
        let rate = p.cases as f64 / p.elapsed_s.max(1e-9);
        let line = format!(
            "{:>6.0} s  {} cases  {rate:.0} cases/s  {} failing  {} signatures  {} classes hit",
            p.elapsed_s, p.cases, p.failures, p.signatures, p.classes
        );
        if tty {
            eprint!("\r{line}   ");
        } else if p.cases / 1000 > last_thousand.load(std::sync::atomic::Ordering::Relaxed) {
            last_thousand.store(p.cases / 1000, std::sync::atomic::Ordering::Relaxed);
            eprintln!("{line}");
        }
    };
    let report = runner.fuzz(
        budget,
        regressions.as_deref(),
        ledger_file.as_deref(),
        &progress,
    )?;
    if tty {
        eprintln!();
    }
    report
        .write(&report_dir)
        .with_context(|| format!("{}: cannot write the reports", report_dir.display()))?;
    print!("{}", report.terminal());
    let bundles: std::collections::BTreeSet<&str> = report
        .results
        .iter()
        .filter_map(|r| r.repro.as_deref())
        .collect();
    for b in &bundles {
        println!("repro bundle: {b}");
    }
    println!("reports written to {}", report_dir.display());
    Ok(exit_code(&report))
}
