//! The probe's findings turned into the report: certificate summaries and the verdict in plain words.

use std::time::SystemTime;

use crate::cert::summary::{self, CertSummary};
use crate::probe::{Outcome, ProbeOptions};
use crate::report::{ErrorInfo, Report, SCHEMA_VERSION, TargetInfo, Verification};
use crate::smtp::ehlo::Capabilities;
use crate::tls::Captured;
use crate::tls::explain::certificate_error;

/// The report for `command`, without the subcommand's own parts.
pub(crate) fn build_report(
    command: &'static str,
    opts: &ProbeOptions,
    outcome: &Outcome,
) -> Report {
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
        command,
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
        auth: None,
        envelope: None,
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
