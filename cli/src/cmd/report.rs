//! `harness report`: merge the reports of several runs, or rebuild a run's reports from its
//! results log.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use harness::conformance::journal;

use super::exit_code;
use crate::defaults;

/// Rebuilds the reports of the run whose results log is in `dir`, judged by the ledger.
pub fn rebuild_reports(
    dir: &Path,
    out: &Path,
    known_failures: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let logged = journal::read(&dir.join(journal::FILE))?;
    let mut report = harness::report::Report::new(
        harness::results::Tool::harness(),
        logged
            .environment
            .clone()
            .unwrap_or_else(harness::results::Environment::detect),
        logged.options.clone(),
        logged.results(),
        0.0,
    );
    if !logged.ended {
        report.stopped_early = Some(format!(
            "rebuilt from the results log of a run that did not finish ({} cases done; \
             `conformance --resume` with the same options continues it)",
            logged.done()
        ));
    }
    if let Some(path) = known_failures.or_else(defaults::ledger) {
        report.apply_ledger(&harness::ledger::Ledger::load(&path)?);
    }
    report
        .write(out)
        .with_context(|| format!("{}: cannot write the reports", out.display()))?;
    print!("{}", report.terminal());
    println!("reports rebuilt in {}", out.display());
    Ok(exit_code(&report))
}

pub fn merge_reports(
    parts: &[PathBuf],
    out: &std::path::Path,
    known_failures: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let reports = parts
        .iter()
        .map(|p| {
            let file = if p.is_dir() {
                p.join("report.json")
            } else {
                p.clone()
            };
            harness::report::Report::load(&file)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut merged = harness::report::Report::merge(reports)?;
    let ledger_path = known_failures.or_else(defaults::ledger);
    if let Some(path) = ledger_path {
        merged.apply_ledger(&harness::ledger::Ledger::load(&path)?);
    }
    merged
        .write(out)
        .with_context(|| format!("{}: cannot write the reports", out.display()))?;
    print!("{}", merged.terminal());
    println!("merged report written to {}", out.display());
    Ok(if merged.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
