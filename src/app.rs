//! One function per subcommand: command-line arguments → probe options → probe → files →
//! report. This is the one place that knows both the command line and the filesystem.

use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

use rustls_pki_types::{CertificateDer, ServerName};

use crate::cert::export::{self, Format};
use crate::cert::summary::{self, CertSummary};
use crate::cli::{Cli, Commands, ConnectionArgs, FormatArg, GetCertArgs, TlsChoice, TlsVersionArg};
use crate::exit::Exit;
use crate::net::Family;
use crate::probe::{self, Outcome, ProbeOptions, TlsMode};
use crate::report::{ErrorInfo, OutputInfo, Report, SCHEMA_VERSION, TargetInfo, Verification};
use crate::smtp::command::validate_domain;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::transcript::Transcript;
use crate::target::{Host, Target};
use crate::tls::explain::certificate_error;
use crate::tls::{Captured, ClientSettings, TlsVersion};

/// A mistake on the command line that clap cannot see; exits 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Runs the parsed command line and returns how the process should exit.
pub fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Commands::GetCert(args) => get_cert(&args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("smtptls: error: {err}");
        Exit::Usage
    })
}

/// `smtptls get-cert`.
pub fn get_cert(args: &GetCertArgs) -> Result<Exit, UsageError> {
    let format = match &args.output {
        Some(path) => Some(
            export::choose_format(path, args.format.map(format_of), args.chain)
                .map_err(|e| UsageError(e.to_string()))?,
        ),
        None => None,
    };
    let to_stdout = args.output.as_deref() == Some("-");
    if to_stdout && args.conn.json {
        return Err(UsageError(
            "--json and -o - both write to stdout: write the certificate to a file".into(),
        ));
    }
    let opts = probe_options(&args.server, &args.conn)?;
    let outcome = probe::probe(&opts, transcript(&args.conn));
    let mut report = build_report(&opts, &outcome);
    let chain = outcome
        .findings
        .captured
        .as_ref()
        .map(|c| c.chain.as_slice())
        .unwrap_or_default();
    if let (Some(path), Some(format)) = (&args.output, format) {
        if !chain.is_empty() {
            match write_certificates(path, chain, format, args.chain) {
                Ok(info) => report.output = Some(info),
                Err(message) => {
                    report.error.get_or_insert(ErrorInfo {
                        kind: "output".into(),
                        message,
                    });
                }
            }
        }
    }
    let exit = exit_of(&report, &outcome);
    report.exit_code = exit.code();
    print_report(&report, args.conn.json, to_stdout);
    Ok(exit)
}

fn exit_of(report: &Report, outcome: &Outcome) -> Exit {
    if let Some(error) = &outcome.error {
        return error.exit();
    }
    if report.error.is_some() {
        return Exit::Usage;
    }
    match &report.verification {
        Some(v) if v.verified => Exit::Ok,
        _ => Exit::VerifyFailed,
    }
}

fn format_of(arg: FormatArg) -> Format {
    match arg {
        FormatArg::Der => Format::Der,
        FormatArg::Pem => Format::Pem,
    }
}

/// Turns the shared connection options into what the probe sees.
pub fn probe_options(target: &Target, conn: &ConnectionArgs) -> Result<ProbeOptions, UsageError> {
    let port = match (target.port, conn.port) {
        (Some(a), Some(b)) if a != b => {
            return Err(UsageError(format!(
                "the port is given twice and differs: :{a} in SERVER, --port {b}"
            )));
        }
        (Some(p), _) | (None, Some(p)) => p,
        (None, None) => 587,
    };
    let mode = match (conn.tls, port) {
        (TlsChoice::Implicit, _) | (TlsChoice::Auto, 465) => TlsMode::Implicit,
        _ => TlsMode::Starttls,
    };
    let ehlo_name = match &conn.domain {
        Some(name) => {
            validate_domain(name).map_err(|e| UsageError(format!("--domain {name:?}: {e}")))?;
            Some(name.clone())
        }
        None => default_ehlo_name(),
    };
    let server_name = match (&conn.sni, &target.host) {
        (Some(name), _) => ServerName::try_from(name.clone())
            .map_err(|_| UsageError(format!("--sni {name:?} is not a valid DNS name")))?,
        (None, Host::Name(name)) => ServerName::try_from(name.clone())
            .map_err(|_| UsageError(format!("{name:?} is not a valid DNS name")))?,
        (None, Host::Ip(ip)) => ServerName::IpAddress((*ip).into()),
    };
    let send_sni = !conn.no_sni && matches!(server_name, ServerName::DnsName(_));
    Ok(ProbeOptions {
        host: target.host.clone(),
        port,
        family: match (conn.ipv4, conn.ipv6) {
            (true, _) => Family::V4,
            (_, true) => Family::V6,
            _ => Family::Any,
        },
        mode,
        ehlo_name,
        server_name,
        tls: ClientSettings {
            ca_files: conn.ca_files.clone(),
            version: conn.tls_version.map(|v| match v {
                TlsVersionArg::V1_2 => TlsVersion::V1_2,
                TlsVersionArg::V1_3 => TlsVersion::V1_3,
            }),
            send_sni,
        },
        timeout: Duration::from_secs(conn.timeout),
    })
}

/// This machine's host name when it is fully qualified; otherwise `None`, and the probe uses the
/// address literal of its end of the connection (RFC 5321 §4.1.4).
fn default_ehlo_name() -> Option<String> {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim_end_matches('.')
        .to_owned();
    (name.contains('.') && validate_domain(&name).is_ok()).then_some(name)
}

fn transcript(conn: &ConnectionArgs) -> Transcript {
    if conn.quiet {
        return Transcript::default();
    }
    Transcript::with_sink(Box::new(|entry| {
        let _ = writeln!(std::io::stderr().lock(), "{entry}");
    }))
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

fn build_report(opts: &ProbeOptions, outcome: &Outcome) -> Report {
    let findings = &outcome.findings;
    let now = SystemTime::now();
    let mut warnings = Vec::new();
    let certificates: Vec<CertSummary> = findings
        .captured
        .iter()
        .flat_map(|c| c.chain.iter().enumerate())
        .filter_map(|(i, der)| match summary::summarize(der, now) {
            Ok(s) => Some(s),
            Err(e) => {
                warnings.push(format!(
                    "certificate {i} of the chain could not be read: {e}"
                ));
                None
            }
        })
        .collect();
    if findings.helo_fallback {
        warnings.push("the server refused EHLO; HELO was used instead".into());
    }
    Report {
        schema_version: SCHEMA_VERSION,
        command: "get-cert",
        target: TargetInfo {
            host: opts.host.to_string(),
            port: opts.port,
            address: findings.address.map(|a| a.to_string()),
            tls_mode: opts.mode,
            sni: opts
                .tls
                .send_sni
                .then(|| opts.server_name.to_str().into_owned()),
            ehlo_name: (!findings.ehlo_name.is_empty()).then(|| findings.ehlo_name.clone()),
        },
        stages: findings.stages.clone(),
        ehlo_before_tls: findings
            .ehlo_before_tls
            .as_ref()
            .map(Capabilities::keywords),
        ehlo_after_tls: findings.ehlo_after_tls.as_ref().map(Capabilities::keywords),
        tls: findings.tls.clone(),
        verification: findings
            .captured
            .as_ref()
            .map(|c| verification(c, &certificates)),
        certificates,
        output: None,
        warnings,
        transcript: findings.transcript.clone(),
        error: outcome.error.as_ref().map(|e| ErrorInfo {
            kind: e.kind().into(),
            message: e.to_string(),
        }),
        exit_code: 0,
    }
}

fn verification(captured: &Captured, certs: &[CertSummary]) -> Verification {
    let chain_error = captured
        .chain_result
        .as_ref()
        .err()
        .map(|e| chain_words(e, certs));
    let name_error = captured
        .name_result
        .as_ref()
        .err()
        .map(|e| name_words(e, &captured.name_checked, certs));
    Verification {
        verified: chain_error.is_none() && name_error.is_none(),
        chain_trusted: chain_error.is_none(),
        chain_error,
        name_checked: captured.name_checked.clone(),
        name_matches: name_error.is_none(),
        name_error,
        ocsp_stapled: captured.ocsp_stapled,
    }
}

/// The chain error in words, made precise with what the certificates show.
fn chain_words(err: &rustls::Error, certs: &[CertSummary]) -> String {
    let unknown_issuer = match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => true,
        // webpki reports a self-signed CA:TRUE leaf this way before it looks for an issuer.
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.to_string() == "CaUsedAsEndEntity" && matches!(certs, [leaf] if leaf.self_signed)
        }
        _ => false,
    };
    match (unknown_issuer, certs) {
        (true, [leaf]) if leaf.self_signed => {
            "self-signed certificate: not issued by any trusted authority (if you trust it, pass it with --ca-file)".into()
        }
        (true, [.., last]) => format!(
            "issued by an unknown authority: \"{}\" is not a trusted root and the server sent no certificate that leads to one \
             (a private CA needs --ca-file; a public CA may mean the server left out an intermediate)",
            last.issuer
        ),
        _ => certificate_error(err),
    }
}

/// The name error in words, listing the names the leaf does hold.
fn name_words(err: &rustls::Error, checked: &str, certs: &[CertSummary]) -> String {
    let mismatch = matches!(
        err,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    );
    match (mismatch, certs.first()) {
        (true, Some(leaf)) => {
            let held = if leaf.subject_alt_names.is_empty() {
                format!("no subject alternative names; subject {}", leaf.subject)
            } else {
                leaf.subject_alt_names.join(", ")
            };
            format!("name mismatch: the certificate is not valid for {checked} (it holds: {held})")
        }
        _ => certificate_error(err),
    }
}

fn print_report(report: &Report, json: bool, cert_on_stdout: bool) {
    if json {
        println!("{}", report.to_json());
    } else if cert_on_stdout {
        eprint!("{}", crate::report::text::render(report));
    } else {
        print!("{}", crate::report::text::render(report));
    }
}
