//! The smtptls binary: parse the command line, run it, exit with its status.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = smtptls::cli::Cli::parse();
    ExitCode::from(smtptls::app::run(cli))
}
