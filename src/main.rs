//! The smtptls binary: parse the command line, run it, exit with its status.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match smtptls::cli::Cli::try_parse() {
        Ok(cli) => ExitCode::from(smtptls::app::run(cli)),
        Err(error) if wants_nagios(&error) => {
            ExitCode::from(smtptls::app::nagios_usage_error(&error))
        }
        Err(error) => error.exit(),
    }
}

/// Whether a refused command line asked for monitoring-plugin output (help and version are not
/// refusals).
fn wants_nagios(error: &clap::Error) -> bool {
    use clap::error::ErrorKind;
    !matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) && std::env::args_os().any(|a| a == "--nagios")
}
