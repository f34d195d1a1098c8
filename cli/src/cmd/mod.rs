//! The commands of the `harness` program, one module per command or group of small commands.

use std::process::ExitCode;

pub mod conformance;
pub mod fuzz;
pub mod models;
pub mod report;

/// Exit status (docs/verdicts.md): 0 when all passed (or failed as the ledger expects), 1 otherwise, 130 when
/// a signal stopped the run.
pub fn exit_code(report: &harness::report::Report) -> ExitCode {
    if harness::isolate::interrupted() {
        ExitCode::from(130)
    } else if report.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
