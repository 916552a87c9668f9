//! DANE for SMTP (RFC 7672): does a server's certificate chain match its TLSA records?
//!
//! Pure functions over the TLSA records (RFC 6698 §2, with the operational updates of RFC 7671)
//! and the chain the server sent, leaf first. Only DANE-TA(2) and DANE-EE(3) are usable for SMTP
//! (RFC 7672 §3.1.3); PKIX-TA(0), PKIX-EE(1), unknown selectors or matching types and digests of
//! the wrong length are counted as unusable. DANE-EE(3) is compared with the leaf alone, whose
//! names and dates do not matter (§3.1.1). DANE-TA(2) is compared with the certificates the server
//! sent above its leaf, since the server must send its trust anchor (§3.1.2); the issuer/subject
//! names from the leaf up to the matched certificate are then checked to link. Signatures along
//! that path and the leaf's name (§3.2.2) are not checked here.
//!
//! Everything here is hostile input: the records come from DNS and the chain from the server.

use std::fmt;

use rustls_pki_types::CertificateDer;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};

/// TLSA certificate usage DANE-TA(2): a trust anchor the server sends in its chain.
pub const DANE_TA: u8 = 2;
/// TLSA certificate usage DANE-EE(3): the server's own certificate or key.
pub const DANE_EE: u8 = 3;

/// The TLSA record that matched, and what it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaneMatch {
    /// Index of the record in the records given (0 = first); messages count from 1.
    pub record: usize,
    /// Its certificate usage: 2 (DANE-TA) or 3 (DANE-EE).
    pub usage: u8,
    /// Index of the matched certificate in the chain as sent (0 = leaf).
    pub certificate: usize,
    /// DANE-TA(2) only: whether each certificate from the leaf up to the matched one names the
    /// next as its issuer. `None` for DANE-EE(3), where there is no path to check.
    pub chain_linked: Option<bool>,
}

/// The outcome of matching a chain against a set of TLSA records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaneOutcome {
    /// Records usable for SMTP: DANE-TA(2) or DANE-EE(3) with a known selector and matching type
    /// and data of the right length.
    pub usable: usize,
    /// Every other record.
    pub unusable: usize,
    /// The record that matched, if one did. A DANE-TA(2) match whose path does not link is kept
    /// only when no better match exists.
    pub matched: Option<DaneMatch>,
    /// Plain words.
    pub message: String,
}

/// Why a record cannot be used, or which parameters it has.
enum Usability {
    Usable {
        selector: Selector,
        matching: Matching,
    },
    Unusable(String),
}

/// Why a record did not match.
enum Miss {
    /// The record (its index) cannot be used, and why.
    Unusable(usize, String),
    /// The usable record (its index and description) matched nothing, and why.
    NoMatch(usize, String, &'static str),
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unusable(i, why) => write!(f, "record {} is unusable: {why}", i + 1),
            Self::NoMatch(i, what, why) => write!(f, "record {} ({what}) {why}", i + 1),
        }
    }
}

#[derive(Clone, Copy)]
enum Selector {
    Cert,
    Spki,
}

#[derive(Clone, Copy)]
enum Matching {
    Exact,
    Sha256,
    Sha512,
}

/// Matches `chain` (leaf first) against `records`, each `(usage, selector, matching, data)`.
pub fn check(records: &[(u8, u8, u8, &[u8])], chain: &[CertificateDer<'_>]) -> DaneOutcome {
    let mut usable = 0;
    let mut unusable = 0;
    let mut misses = Vec::new();
    let mut linked: Option<(DaneMatch, String)> = None;
    let mut unlinked: Option<(DaneMatch, String)> = None;
    for (index, &(usage, selector, matching, data)) in records.iter().enumerate() {
        let (selector, matching) = match usability(usage, selector, matching, data) {
            Usability::Usable { selector, matching } => (selector, matching),
            Usability::Unusable(why) => {
                unusable += 1;
                misses.push(Miss::Unusable(index, why));
                continue;
            }
        };
        usable += 1;
        let what = describe(usage, selector, matching);
        match find(usage, selector, matching, data, chain, index) {
            Some(m) if m.chain_linked == Some(false) => {
                unlinked.get_or_insert((m, what));
            }
            Some(m) => {
                linked.get_or_insert((m, what));
            }
            None => misses.push(Miss::NoMatch(index, what, miss_words(usage, chain))),
        }
    }
    let matched = linked.or(unlinked);
    let message = match &matched {
        Some((m, what)) => match_message(m, what),
        None => miss_message(records.len(), usable, chain, &misses),
    };
    DaneOutcome {
        usable,
        unusable,
        matched: matched.map(|(m, _)| m),
        message,
    }
}

/// Whether a record is usable for SMTP (RFC 7672 §3.1.3, RFC 7671 §4).
fn usability(usage: u8, selector: u8, matching: u8, data: &[u8]) -> Usability {
    if usage == 0 || usage == 1 {
        let name = if usage == 0 {
            "PKIX-TA(0)"
        } else {
            "PKIX-EE(1)"
        };
        return Usability::Unusable(format!("{name} is not used for SMTP (RFC 7672 §3.1.3)"));
    }
    if usage != DANE_TA && usage != DANE_EE {
        return Usability::Unusable(format!("unknown certificate usage {usage}"));
    }
    let selector = match selector {
        0 => Selector::Cert,
        1 => Selector::Spki,
        other => return Usability::Unusable(format!("unknown selector {other}")),
    };
    let (matching, want_len) = match matching {
        0 => (Matching::Exact, None),
        1 => (Matching::Sha256, Some(32)),
        2 => (Matching::Sha512, Some(64)),
        other => return Usability::Unusable(format!("unknown matching type {other}")),
    };
    match want_len {
        Some(want) if data.len() != want => Usability::Unusable(format!(
            "a {} digest is {want} bytes, this one is {}",
            matching_name(matching),
            data.len()
        )),
        None if data.is_empty() => Usability::Unusable("its data is empty".to_owned()),
        _ => Usability::Usable { selector, matching },
    }
}

/// The certificate a usable record matches, if any. DANE-EE looks at the leaf only; DANE-TA at
/// every certificate above it, the nearest to the leaf first.
fn find(
    usage: u8,
    selector: Selector,
    matching: Matching,
    data: &[u8],
    chain: &[CertificateDer<'_>],
    record: usize,
) -> Option<DaneMatch> {
    let matches = |cert: &CertificateDer<'_>| {
        selected(cert, selector).is_some_and(|bytes| digest_matches(matching, &bytes, data))
    };
    if usage == DANE_EE {
        return chain
            .first()
            .filter(|leaf| matches(leaf))
            .map(|_| DaneMatch {
                record,
                usage,
                certificate: 0,
                chain_linked: None,
            });
    }
    let certificate = chain
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, cert)| matches(cert))
        .map(|(i, _)| i)?;
    Some(DaneMatch {
        record,
        usage,
        certificate,
        chain_linked: Some(links_up_to(chain, certificate)),
    })
}

/// The bytes a selector picks from a certificate: the whole DER, or its SubjectPublicKeyInfo.
fn selected(cert: &CertificateDer<'_>, selector: Selector) -> Option<Vec<u8>> {
    match selector {
        Selector::Cert => Some(cert.to_vec()),
        Selector::Spki => {
            let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
            Some(parsed.tbs_certificate.subject_pki.raw.to_vec())
        }
    }
}

fn digest_matches(matching: Matching, bytes: &[u8], data: &[u8]) -> bool {
    match matching {
        Matching::Exact => bytes == data,
        Matching::Sha256 => Sha256::digest(bytes).as_slice() == data,
        Matching::Sha512 => Sha512::digest(bytes).as_slice() == data,
    }
}

/// Whether each certificate from the leaf up to `top` names the next one's subject as its issuer.
fn links_up_to(chain: &[CertificateDer<'_>], top: usize) -> bool {
    let names: Option<Vec<(Vec<u8>, Vec<u8>)>> = chain
        .iter()
        .take(top.saturating_add(1))
        .map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
            Some((
                cert.subject().as_raw().to_vec(),
                cert.issuer().as_raw().to_vec(),
            ))
        })
        .collect();
    names.is_some_and(|names| {
        names
            .windows(2)
            .all(|pair| matches!(pair, [(_, issuer), (subject, _)] if issuer == subject))
    })
}

fn usage_name(usage: u8) -> &'static str {
    if usage == DANE_TA {
        "DANE-TA(2)"
    } else {
        "DANE-EE(3)"
    }
}

fn matching_name(matching: Matching) -> &'static str {
    match matching {
        Matching::Exact => "full",
        Matching::Sha256 => "SHA-256",
        Matching::Sha512 => "SHA-512",
    }
}

/// "DANE-EE(3) SPKI SHA-256", "DANE-TA(2) certificate full".
fn describe(usage: u8, selector: Selector, matching: Matching) -> String {
    let selector = match selector {
        Selector::Cert => "certificate",
        Selector::Spki => "SPKI",
    };
    format!(
        "{} {selector} {}",
        usage_name(usage),
        matching_name(matching)
    )
}

fn miss_words(usage: u8, chain: &[CertificateDer<'_>]) -> &'static str {
    match (usage, chain.len()) {
        (_, 0) => "has nothing to match: the server sent no certificate",
        (DANE_EE, _) => "does not match the server's certificate",
        (_, 1) => {
            "needs the trust anchor in the chain, but the server sent only its own certificate"
        }
        _ => "matches none of the certificates the server sent above its own",
    }
}

fn match_message(m: &DaneMatch, what: &str) -> String {
    let record = m.record.saturating_add(1);
    match m.chain_linked {
        None => format!("{what} record {record} matches the server's certificate"),
        Some(true) => format!(
            "{what} record {record} matches certificate {} sent by the server, and the chain \
             from the server's certificate links up to it",
            m.certificate
        ),
        Some(false) => format!(
            "{what} record {record} matches certificate {} sent by the server, but the chain \
             from the server's certificate does not link up to it by issuer and subject names",
            m.certificate
        ),
    }
}

fn miss_message(
    records: usize,
    usable: usize,
    chain: &[CertificateDer<'_>],
    misses: &[Miss],
) -> String {
    let list = |misses: &[Miss]| {
        misses
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if records == 0 {
        "no TLSA records".to_owned()
    } else if usable == 0 {
        let all = if records == 1 {
            "the only TLSA record is".to_owned()
        } else {
            format!("all {records} TLSA records are")
        };
        format!(
            "{all} unusable for SMTP (PKIX-TA/PKIX-EE, unknown parameters or malformed data): {}",
            list(misses)
        )
    } else if chain.is_empty() {
        "no usable TLSA record matches: the server sent no certificate".to_owned()
    } else {
        format!("no usable TLSA record matches: {}", list(misses))
    }
}

#[cfg(test)]
mod tests;
