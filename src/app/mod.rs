//! One function per subcommand: command-line arguments → probe options → probe → files →
//! report. This is the one place that knows both the command line and the filesystem.

mod findings;
mod get_cert;
mod options;
mod secrets;
mod test_smtp;

use crate::cli::{Cli, Commands, ConnectionArgs};
use crate::exit::Exit;
use crate::probe::ProbeError;
use crate::report::Report;
use crate::verdict::ExpiryStatus;

pub use get_cert::get_cert;
pub use options::probe_options;
pub use test_smtp::test_smtp;

/// A mistake on the command line that clap cannot see; exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Runs the parsed command line and returns the process exit status: an [`Exit`] code, or its
/// monitoring-plugin status with `--nagios`.
pub fn run(cli: Cli) -> u8 {
    let (result, nagios) = match cli.command {
        Commands::GetCert(args) => (get_cert(&args), args.conn.nagios),
        Commands::TestSmtp(args) => (test_smtp(&args), args.conn.nagios),
    };
    match result {
        Ok(exit) if nagios => exit.nagios_code(),
        Ok(exit) => exit.code(),
        Err(err) => {
            if nagios {
                println!("SMTPTLS UNKNOWN - {err}");
            }
            eprintln!("smtptls: error: {err}");
            if nagios {
                Exit::Usage.nagios_code()
            } else {
                Exit::Usage.code()
            }
        }
    }
}

/// Where the report goes.
pub(crate) fn print_report(report: &Report, conn: &ConnectionArgs, cert_on_stdout: bool) {
    if conn.nagios {
        println!("{}", crate::report::nagios::render(report));
    } else if conn.json {
        println!("{}", report.to_json());
    } else if cert_on_stdout {
        eprint!("{}", crate::report::text::render(report));
    } else {
        print!("{}", crate::report::text::render(report));
    }
}

/// The exit status the certificate earns: 1 when it did not verify or expires within
/// `--crit-days`, 8 within `--warn-days`, else 0.
pub(crate) fn certificate_exit(report: &Report) -> Exit {
    match &report.verification {
        Some(v) if !v.verified => Exit::VerifyFailed,
        Some(v) => match v.expiry.as_ref().map(|e| e.status) {
            Some(ExpiryStatus::Critical) => Exit::VerifyFailed,
            Some(ExpiryStatus::Warning) => Exit::ExpiresSoon,
            _ => Exit::Ok,
        },
        None => Exit::VerifyFailed,
    }
}

/// A dialogue error's status, except that a handshake rustls ended because of the certificate
/// (a key too weak to check the handshake signature) counts as a failed verification when the
/// chain was captured.
pub(crate) fn error_exit(error: &ProbeError, captured: bool) -> Exit {
    if captured && error.is_certificate_rejection() {
        Exit::VerifyFailed
    } else {
        error.exit()
    }
}
