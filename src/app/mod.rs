//! One function per subcommand: command-line arguments → probe options → probe → files →
//! report. This is the one place that knows both the command line and the filesystem.

mod findings;
mod get_cert;
mod options;
mod secrets;
mod test_smtp;

use crate::cli::{Cli, Commands};
use crate::exit::Exit;
use crate::report::Report;

pub use get_cert::get_cert;
pub use options::probe_options;
pub use test_smtp::test_smtp;

/// A mistake on the command line that clap cannot see; exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Runs the parsed command line and returns how the process should exit.
pub fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Commands::GetCert(args) => get_cert(&args),
        Commands::TestSmtp(args) => test_smtp(&args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("smtptls: error: {err}");
        Exit::Usage
    })
}

pub(crate) fn print_report(report: &Report, json: bool, cert_on_stdout: bool) {
    if json {
        println!("{}", report.to_json());
    } else if cert_on_stdout {
        eprint!("{}", crate::report::text::render(report));
    } else {
        print!("{}", crate::report::text::render(report));
    }
}
