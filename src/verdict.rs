//! The verdict on a captured chain, for people and for monitoring: whether it verifies, every
//! reason why not in plain words (each its own entry), and how close the nearest expiry is to the
//! `--warn-days` / `--crit-days` thresholds. RFC 5280 for paths, RFC 6125/7817 for names.
//!
//! rustls' checks (chain to a trust anchor, name) are the authority on trust; this module explains
//! their answer and adds what a verifier does not look at: expiry of every certificate sent, weak
//! keys, SHA-1, the order certificates were sent in, a missing intermediate.

use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;

use crate::cert::summary::CertSummary;
use crate::tls::Captured;
use crate::tls::explain::certificate_error;

/// Smallest acceptable RSA modulus, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// Smallest acceptable EC key, in bits.
pub const MIN_EC_BITS: u32 = 256;

/// The expiry thresholds, in days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// A certificate expiring within this many days is a warning (exit 8).
    pub warn_days: Option<i64>,
    /// A certificate expiring within this many days fails verification (exit 1).
    pub crit_days: Option<i64>,
}

/// How bad a reason is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Verification fails.
    Error,
    /// Worth fixing; verification still passes.
    Warning,
}

/// One finding about the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// A stable code: `expired`, `not-yet-valid`, `self-signed`, `unknown-issuer`,
    /// `incomplete-chain`, `name-mismatch`, `weak-key`, `sha1-signature`, `out-of-order`,
    /// `expires-soon`, `chain` (any other chain failure).
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// The index of the certificate concerned in the chain as sent (0 = leaf), if one.
    pub certificate: Option<usize>,
    /// Plain words.
    pub message: String,
}

/// Where the nearest expiry stands against the thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiryStatus {
    /// Beyond both thresholds (or none set).
    Ok,
    /// Within `--warn-days`.
    Warning,
    /// Within `--crit-days`, or already expired.
    Critical,
}

/// The nearest expiry over every certificate the server sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    /// Days left on the certificate that expires first.
    pub min_days_left: i64,
    /// Its index in the chain as sent.
    pub certificate: usize,
    /// Its subject.
    pub subject: String,
    /// `--warn-days`, if given.
    pub warn_days: Option<i64>,
    /// `--crit-days`, if given.
    pub crit_days: Option<i64>,
    /// The outcome.
    pub status: ExpiryStatus,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Chain trusted, name matches, and no other error reason.
    pub verified: bool,
    /// Whether rustls found a path to a trust anchor.
    pub chain_trusted: bool,
    /// Why not, in plain words.
    pub chain_error: Option<String>,
    /// The name checked.
    pub name_checked: String,
    /// Whether the leaf is valid for it.
    pub name_matches: bool,
    /// Why not, in plain words (listing the names the certificate holds).
    pub name_error: Option<String>,
    /// Whether the server stapled an OCSP response.
    pub ocsp_stapled: bool,
    /// Every reason found, errors first.
    pub reasons: Vec<Reason>,
    /// The nearest expiry and the threshold outcome.
    pub expiry: Option<Expiry>,
}

/// Facts about a sent certificate that the summary does not carry.
struct Links {
    subject: Vec<u8>,
    issuer: Vec<u8>,
    ca_issuers_url: Option<String>,
}

fn links(der: &[u8]) -> Option<Links> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let ca_issuers_url = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => aia.accessdescs.iter().find_map(|desc| {
                match (
                    desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS,
                    &desc.access_location,
                ) {
                    (true, GeneralName::URI(uri)) => Some((*uri).to_owned()),
                    _ => None,
                }
            }),
            _ => None,
        });
    Some(Links {
        subject: cert.subject().as_raw().to_vec(),
        issuer: cert.issuer().as_raw().to_vec(),
        ca_issuers_url,
    })
}

/// Assesses a captured chain; `certs[i]` is the summary of `captured.chain[i]`, `None` when it
/// could not be read.
pub fn assess(
    captured: &Captured,
    certs: &[Option<CertSummary>],
    thresholds: Thresholds,
) -> Verdict {
    let links: Vec<Option<Links>> = captured.chain.iter().map(|der| links(der)).collect();
    let mut reasons = Vec::new();
    let chain_error = captured.chain_result.as_ref().err().map(|err| {
        let reason = chain_reason(err, captured, certs, &links);
        let message = reason.message.clone();
        reasons.push(reason);
        message
    });
    let name_error = captured.name_result.as_ref().err().map(|err| {
        let message = name_words(
            err,
            &captured.name_checked,
            certs.first().and_then(Option::as_ref),
        );
        reasons.push(Reason {
            code: "name-mismatch",
            severity: Severity::Error,
            certificate: Some(0),
            message: message.clone(),
        });
        message
    });
    validity_reasons(certs, chain_error.is_some(), &mut reasons);
    key_reasons(certs, &mut reasons);
    order_reason(&links, &mut reasons);
    let expiry = expiry(certs, thresholds);
    if let Some(e) = &expiry {
        if e.status != ExpiryStatus::Ok && e.min_days_left >= 0 {
            let (severity, limit) = match e.status {
                ExpiryStatus::Critical => (Severity::Error, e.crit_days),
                _ => (Severity::Warning, e.warn_days),
            };
            reasons.push(Reason {
                code: "expires-soon",
                severity,
                certificate: Some(e.certificate),
                message: format!(
                    "certificate {} ({}) expires in {} days, within the {} days asked for",
                    e.certificate,
                    e.subject,
                    e.min_days_left,
                    limit.unwrap_or_default()
                ),
            });
        }
    }
    dedup(&mut reasons);
    reasons.sort_by_key(|r| r.severity == Severity::Warning);
    let verified = chain_error.is_none()
        && name_error.is_none()
        && !reasons
            .iter()
            .any(|r| r.severity == Severity::Error && r.code != "expires-soon");
    Verdict {
        verified,
        chain_trusted: chain_error.is_none(),
        chain_error,
        name_checked: captured.name_checked.clone(),
        name_matches: name_error.is_none(),
        name_error,
        ocsp_stapled: captured.ocsp_stapled,
        reasons,
        expiry,
    }
}

/// The chain error classified and in words, made precise with what the certificates show.
fn chain_reason(
    err: &rustls::Error,
    captured: &Captured,
    certs: &[Option<CertSummary>],
    links: &[Option<Links>],
) -> Reason {
    use rustls::CertificateError as C;
    let cert_err = match err {
        rustls::Error::InvalidCertificate(c) => Some(c),
        _ => None,
    };
    let leaf = certs.first().and_then(Option::as_ref);
    let last_index = captured.chain.len().saturating_sub(1);
    let last = certs.get(last_index).and_then(Option::as_ref);
    let ca_as_leaf = matches!(cert_err, Some(C::Other(o)) if o.to_string() == "CaUsedAsEndEntity");
    let unknown = matches!(cert_err, Some(C::UnknownIssuer))
        || (ca_as_leaf && leaf.is_some_and(|l| l.self_signed));
    let error = |code, certificate, message| Reason {
        code,
        severity: Severity::Error,
        certificate,
        message,
    };
    if unknown {
        if let (1, Some(leaf)) = (captured.chain.len(), leaf) {
            if leaf.self_signed {
                return error(
                    "self-signed",
                    Some(0),
                    "self-signed certificate: not issued by any trusted authority (if you trust it, pass it with --ca-file)".into(),
                );
            }
        }
        if let Some(last) = last {
            if last.self_signed {
                return error(
                    "unknown-issuer",
                    Some(last_index),
                    format!(
                        "unknown issuer: the chain ends in the root \"{}\", which is not trusted (a private CA needs --ca-file)",
                        last.subject
                    ),
                );
            }
            let issuer_trusted =
                captured.issuer_is_anchor.get(last_index).copied().flatten() == Some(true);
            let url = links
                .get(last_index)
                .and_then(Option::as_ref)
                .and_then(|l| l.ca_issuers_url.clone());
            if !issuer_trusted {
                if let Some(url) = url {
                    return error(
                        "incomplete-chain",
                        Some(last_index),
                        format!(
                            "incomplete chain: the server did not send the intermediate certificate \"{}\" (it is published at {url}); \
                             configure the server to send the full chain — the most common misconfiguration",
                            last.issuer
                        ),
                    );
                }
                return error(
                    "unknown-issuer",
                    Some(last_index),
                    format!(
                        "unknown issuer: \"{}\" is not a trusted root and the server did not send its certificate \
                         (a private CA needs --ca-file; a public CA's intermediate the server must send)",
                        last.issuer
                    ),
                );
            }
        }
    }
    let code = match cert_err {
        Some(C::Expired | C::ExpiredContext { .. }) => "expired",
        Some(C::NotValidYet | C::NotValidYetContext { .. }) => "not-yet-valid",
        Some(
            C::UnsupportedSignatureAlgorithmContext { .. }
            | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) if certs.iter().flatten().any(is_sha1) => "sha1-signature",
        Some(C::UnknownIssuer) => "unknown-issuer",
        _ => "chain",
    };
    error(code, None, certificate_error(err))
}

fn is_sha1(cert: &CertSummary) -> bool {
    !cert.self_signed
        && cert
            .signature_algorithm
            .to_ascii_lowercase()
            .contains("sha1")
}

/// The name error in words, listing the names the leaf does hold.
fn name_words(err: &rustls::Error, checked: &str, leaf: Option<&CertSummary>) -> String {
    let mismatch = matches!(
        err,
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. }
        )
    );
    match (mismatch, leaf) {
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

/// Expired and not-yet-valid certificates anywhere in the chain. A certificate other than the
/// leaf is an error only when the chain did not verify (else rustls found a path without it).
fn validity_reasons(certs: &[Option<CertSummary>], chain_failed: bool, reasons: &mut Vec<Reason>) {
    for (i, cert) in certs.iter().enumerate() {
        let Some(cert) = cert else { continue };
        let severity = if i == 0 || chain_failed {
            Severity::Error
        } else {
            Severity::Warning
        };
        let which = if i == 0 {
            "the server's certificate".to_owned()
        } else {
            format!("certificate {i} (\"{}\")", cert.subject)
        };
        if cert.days_left < 0 {
            // Whole days gone since not_after (days_left rounds the other way).
            let days = cert.seconds_left.saturating_neg().div_euclid(86_400);
            let unit = if days == 1 { "day" } else { "days" };
            reasons.push(Reason {
                code: "expired",
                severity,
                certificate: Some(i),
                message: format!("{which} expired {days} {unit} ago ({})", cert.not_after),
            });
        }
        if cert.not_yet_valid {
            reasons.push(Reason {
                code: "not-yet-valid",
                severity,
                certificate: Some(i),
                message: format!(
                    "{which} is not valid yet: {} (from {})",
                    cert.validity_text(),
                    cert.not_before
                ),
            });
        }
    }
}

/// Weak keys and SHA-1 signatures; a self-signed root's own signature is never checked, so it is
/// not held against it.
fn key_reasons(certs: &[Option<CertSummary>], reasons: &mut Vec<Reason>) {
    for (i, cert) in certs.iter().enumerate() {
        let Some(cert) = cert else { continue };
        let min = match cert.public_key_type.as_str() {
            "RSA" | "RSA-PSS" | "DSA" => Some(MIN_RSA_BITS),
            "EC" => Some(MIN_EC_BITS),
            _ => None,
        };
        if let (Some(min), Some(bits)) = (min, cert.public_key_bits) {
            if bits < min {
                reasons.push(Reason {
                    code: "weak-key",
                    severity: Severity::Error,
                    certificate: Some(i),
                    message: format!("certificate {i} (\"{}\") has a weak {} key of {bits} bits (at least {min} needed)", cert.subject, cert.public_key_type),
                });
            }
        }
        if is_sha1(cert) {
            reasons.push(Reason {
                code: "sha1-signature",
                severity: Severity::Error,
                certificate: Some(i),
                message: format!("certificate {i} (\"{}\") is signed with SHA-1 ({}), which is no longer accepted", cert.subject, cert.signature_algorithm),
            });
        }
    }
}

/// Certificates sent out of order: each should be followed by its issuer (RFC 5246 §7.4.2;
/// TLS 1.3 tolerates other orders, many clients do not).
fn order_reason(links: &[Option<Links>], reasons: &mut Vec<Reason>) {
    let links: Vec<&Links> = links.iter().flatten().collect();
    let pairs = links.windows(2).filter_map(|w| match w {
        [a, b] => Some((*a, *b)),
        _ => None,
    });
    let mut misplaced = None;
    for (i, (cert, next)) in pairs.enumerate() {
        if cert.issuer != next.subject && cert.subject != cert.issuer {
            misplaced = Some(i);
            break;
        }
    }
    let Some(i) = misplaced else { return };
    // Out of order only if the issuer was sent somewhere else; otherwise the chain simply has an
    // unrelated certificate in it.
    let issuer_sent = links
        .iter()
        .any(|l| links.get(i).is_some_and(|c| c.issuer == l.subject));
    let message = if issuer_sent {
        format!(
            "the server sent its certificates out of order: certificate {i} is not followed by its issuer (strict clients reject this)"
        )
    } else {
        format!(
            "certificate {i} is followed by a certificate that did not issue it (an unneeded or wrong certificate in the chain)"
        )
    };
    reasons.push(Reason {
        code: "out-of-order",
        severity: Severity::Warning,
        certificate: Some(i),
        message,
    });
}

fn expiry(certs: &[Option<CertSummary>], thresholds: Thresholds) -> Option<Expiry> {
    let (index, cert) = certs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
        .min_by_key(|(_, c)| c.days_left)?;
    let within = |limit: Option<i64>| limit.is_some_and(|days| cert.days_left <= days);
    let status = if cert.days_left < 0 || within(thresholds.crit_days) {
        ExpiryStatus::Critical
    } else if within(thresholds.warn_days) {
        ExpiryStatus::Warning
    } else {
        ExpiryStatus::Ok
    };
    Some(Expiry {
        min_days_left: cert.days_left,
        certificate: index,
        subject: cert.subject.clone(),
        warn_days: thresholds.warn_days,
        crit_days: thresholds.crit_days,
        status,
    })
}

/// Keeps the first reason of each code for each certificate (the chain error and the per
/// certificate checks can name the same fact).
fn dedup(reasons: &mut Vec<Reason>) {
    let mut seen: Vec<(&'static str, Option<usize>)> = Vec::new();
    let mut codes_with_cert: Vec<&'static str> = reasons
        .iter()
        .filter(|r| r.certificate.is_some())
        .map(|r| r.code)
        .collect();
    codes_with_cert.dedup();
    reasons.retain(|r| {
        // A chain-wide reason is dropped when a per-certificate reason already says the same.
        if r.certificate.is_none() && codes_with_cert.contains(&r.code) {
            return false;
        }
        let key = (r.code, r.certificate);
        if seen.contains(&key) {
            return false;
        }
        seen.push(key);
        true
    });
}
