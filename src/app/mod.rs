//! One function per subcommand: command-line arguments → probe options → probe → files →
//! report. This is the one place that knows both the command line and the filesystem.

mod check;
mod docs;
mod findings;
mod get_cert;
mod many;
mod options;
mod pool;
mod secrets;
mod test_smtp;

use std::io::{IsTerminal, Write as _};

use crate::cli::{Cli, ColorArg, Commands, ConnectionArgs};
use crate::exit::Exit;
use crate::probe::ProbeError;
use crate::report::Report;
use crate::report::color::{ColorChoice, paint};
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
    let label = target_label(&cli.command);
    let (result, nagios) = match cli.command {
        Commands::GetCert(args) => (get_cert(&args), args.conn.nagios),
        Commands::TestSmtp(args) => (test_smtp(&args), args.conn.nagios),
        Commands::Check(args) => (check::check(&args), args.conn.nagios),
        Commands::Completions { shell } => (docs::completions(shell), false),
        Commands::Man { out_dir } => (docs::man(out_dir.as_deref()), false),
    };
    match result {
        Ok(exit) if nagios => exit.nagios_code(),
        Ok(exit) => exit.code(),
        Err(err) => {
            if nagios {
                stdout(&format!("SMTPTLS UNKNOWN - {label}: {err}\n"));
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

/// What a status line names: `host:port` as probed, or the domains checked.
fn target_label(command: &Commands) -> String {
    let server = |target: Option<&crate::target::Target>, conn: &ConnectionArgs| {
        target.map_or_else(
            || "targets".to_owned(),
            |t| format!("{}:{}", t.host, t.port.or(conn.port).unwrap_or(587)),
        )
    };
    match command {
        Commands::GetCert(args) => server(args.server.as_ref(), &args.conn),
        Commands::TestSmtp(args) => server(Some(&args.server), &args.conn),
        Commands::Check(args) => args.domains.join(", "),
        Commands::Completions { .. } | Commands::Man { .. } => String::new(),
    }
}

/// A command line clap refused, with `--nagios` among the arguments: monitoring must see UNKNOWN
/// (3) and a status line, not clap's usage status 2, which it would read as CRITICAL.
pub fn nagios_usage_error(error: &clap::Error) -> u8 {
    let first = error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    stdout(&format!(
        "SMTPTLS UNKNOWN - {}\n",
        crate::sanitize::for_terminal(&first)
    ));
    let _ = error.print();
    Exit::Usage.nagios_code()
}

/// Writes `text` to stdout. A reader that went away (`smtptls … | head`) is not an error worth a
/// panic, which `print!` would make of it.
pub(crate) fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Where the report goes.
pub(crate) fn print_report(report: &Report, conn: &ConnectionArgs, cert_on_stdout: bool) {
    if conn.nagios {
        stdout(&format!("{}\n", crate::report::nagios::render(report)));
    } else if conn.json {
        stdout(&format!("{}\n", report.to_json()));
    } else if cert_on_stdout {
        eprint!(
            "{}",
            colored(
                &crate::report::text::render(report),
                conn,
                std::io::stderr().is_terminal()
            )
        );
    } else {
        stdout(&colored(
            &crate::report::text::render(report),
            conn,
            std::io::stdout().is_terminal(),
        ));
    }
}

/// The text painted when `--color` and the stream allow it.
pub(crate) fn colored(text: &str, conn: &ConnectionArgs, is_terminal: bool) -> String {
    let choice = match conn.color {
        ColorArg::Auto => ColorChoice::Auto,
        ColorArg::Always => ColorChoice::Always,
        ColorArg::Never => ColorChoice::Never,
    };
    let no_color = std::env::var("NO_COLOR").ok();
    if choice.enabled(is_terminal, no_color.as_deref()) {
        paint(text)
    } else {
        text.to_owned()
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
