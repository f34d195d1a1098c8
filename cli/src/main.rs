//! The `harness` command line. `cargo xtask conformance` builds and calls it.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

mod args;
mod cmd;
mod corpus_cmd;
mod defaults;
mod perf;
mod progress;

use args::{Cli, Command};
use cmd::conformance::conformance;
use cmd::fuzz::fuzz;
use cmd::models::{emit, inject_fault, lower1d};
use cmd::report::{merge_reports, rebuild_reports};
use corpus_cmd::{bless, corpus_build, corpus_table};

fn main() -> ExitCode {
    // tract reports failed inference attempts as errors and tries again, thousands per model;
    // with RUST_BACKTRACE=1 (common in CI) every one captured a backtrace: 8% of a tract run's
    // time, measured with perf. Error backtraces are never shown (messages are); panics keep
    // theirs (RUST_BACKTRACE still governs them).
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    harness::isolate::install_quiet_panic_hook();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Conformance(args) => conformance(args),
        Command::Fuzz(args) => fuzz(args),
        Command::Report {
            merge,
            resume: Some(dir),
            report_dir,
            known_failures,
        } => {
            let out = if merge.is_empty() && report_dir == Path::new(defaults::REPORT_DIR) {
                dir.clone()
            } else {
                report_dir
            };
            rebuild_reports(&dir, &out, known_failures)
        }
        Command::Report {
            merge,
            resume: None,
            report_dir,
            known_failures,
        } => merge_reports(&merge, &report_dir, known_failures),
        Command::InjectFault {
            kind,
            input,
            output,
        } => inject_fault(&kind, &input, &output),
        Command::Lower1d {
            nc1l,
            input,
            output,
        } => lower1d(nc1l, &input, &output),
        Command::Perf(args) => perf::main(args),
        Command::Emit {
            seed,
            index,
            opset,
            opsets,
            dtype,
            quantized,
            quantized_operators,
            dir,
        } => emit(
            seed,
            index,
            (opset, opsets.as_deref()),
            (dtype, quantized, quantized_operators),
            &dir,
        ),
        Command::CorpusBuild { corpus } => corpus_build(&corpus),
        Command::CorpusTable { corpus, reports } => corpus_table(&corpus, &reports),
        Command::Bless {
            corpus,
            golden,
            check,
        } => bless(&corpus, &golden, check),
    };
    // The Python workers end with the program, and their scripts and logs with them.
    harness::worker::end_workers();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
