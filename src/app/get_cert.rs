//! `smtptls get-cert`: probe, save the certificate, report.

use std::io::{IsTerminal, Write};

use rustls_pki_types::CertificateDer;

use super::findings::build_report;
use super::options::{probe_options, thresholds, transcript};
use super::{UsageError, certificate_exit, error_exit, print_report};
use crate::cert::export::{self, Format};
use crate::cli::{FormatArg, GetCertArgs};
use crate::exit::Exit;
use crate::probe::{self, Outcome, ProbeError};
use crate::report::{ErrorInfo, OutputInfo, Report};
use crate::smtp::transcript::Transcript;
use crate::target::Target;

/// `smtptls get-cert`.
pub fn get_cert(args: &GetCertArgs) -> Result<Exit, UsageError> {
    if let Some(file) = &args.targets {
        return super::many::get_cert_many(args, file);
    }
    let server = args
        .server
        .as_ref()
        .ok_or_else(|| UsageError("give a SERVER, or --targets FILE".into()))?;
    let output = match &args.output {
        Some(path) => Some((path.clone(), output_format(args, path)?)),
        None => None,
    };
    let to_stdout = args.output.as_deref() == Some("-");
    if to_stdout && args.conn.json {
        return Err(UsageError(
            "--json and -o - both write to stdout: write the certificate to a file".into(),
        ));
    }
    let (report, exit) = probe_one(server, args, output.as_ref(), transcript(&args.conn))?;
    print_report(&report, &args.conn, to_stdout);
    Ok(exit)
}

/// The format for the certificate file at `path`.
pub(crate) fn output_format(args: &GetCertArgs, path: &str) -> Result<Format, UsageError> {
    export::choose_format(path, args.format.map(format_of), args.chain)
        .map_err(|e| UsageError(e.to_string()))
}

/// Probes one server, writes its certificate to `output` (path and format) if asked, and returns
/// the report with its exit status filled in.
pub(crate) fn probe_one(
    server: &Target,
    args: &GetCertArgs,
    output: Option<&(String, Format)>,
    transcript: Transcript,
) -> Result<(Report, Exit), UsageError> {
    let opts = probe_options(server, &args.conn)?;
    let outcome = probe::probe(&opts, transcript);
    if let Some(ProbeError::Config(e)) = &outcome.error {
        return Err(UsageError(e.to_string()));
    }
    let mut report = build_report("get-cert", &opts, &outcome, thresholds(&args.conn));
    let chain = outcome
        .findings
        .captured
        .as_ref()
        .map(|c| c.chain.as_slice())
        .unwrap_or_default();
    if let (Some((path, format)), false) = (output, chain.is_empty()) {
        match write_certificates(path, chain, *format, args.chain) {
            Ok(info) => report.output = Some(info),
            Err(message) => {
                report.error.get_or_insert(ErrorInfo {
                    kind: "output".into(),
                    message,
                });
            }
        }
    }
    let exit = exit_of(&report, &outcome);
    report.exit_code = exit.code();
    Ok((report, exit))
}

/// A broken dialogue (3–5) first, then a file that could not be written (2), then the certificate.
fn exit_of(report: &Report, outcome: &Outcome) -> Exit {
    if let Some(error) = &outcome.error {
        return error_exit(error, outcome.findings.captured.is_some());
    }
    if report.error.is_some() {
        return Exit::Usage;
    }
    certificate_exit(report)
}

fn format_of(arg: FormatArg) -> Format {
    match arg {
        FormatArg::Der => Format::Der,
        FormatArg::Pem => Format::Pem,
    }
}
fn write_certificates(
    path: &str,
    chain: &[CertificateDer<'static>],
    format: Format,
    all: bool,
) -> Result<OutputInfo, String> {
    let bytes = export::encode(chain, format, all).map_err(|e| e.to_string())?;
    let written = if all { chain.len() } else { 1 };
    if path == "-" {
        let mut stdout = std::io::stdout().lock();
        if format == Format::Der && stdout.is_terminal() {
            return Err(
                "refusing to write binary DER to a terminal: use --format pem or redirect stdout"
                    .into(),
            );
        }
        stdout
            .write_all(&bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("writing to stdout: {e}"))?;
    } else {
        std::fs::write(path, &bytes).map_err(|e| format!("could not write {path}: {e}"))?;
    }
    Ok(OutputInfo {
        path: path.to_owned(),
        format,
        certificates_written: written,
    })
}
