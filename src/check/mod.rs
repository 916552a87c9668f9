//! `smtptls check DOMAIN`: is inbound mail to a domain protected? The pieces that know nothing of
//! the command line: DNS (MX per RFC 5321 §5.1 and RFC 7505, TLSA, TXT), DANE (RFC 7672),
//! MTA-STS (RFC 8461), TLS-RPT (RFC 8460), the report model of one domain, and how the findings
//! of every MX address combine into one verdict and one exit code.

pub mod dane;
pub mod dns;
pub mod mta_sts;
pub mod tlsrpt;

use serde::Serialize;

use crate::exit::Exit;
use crate::report::Report;
use crate::verdict::Severity;

/// Everything `check` found about one domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    /// The domain.
    pub domain: String,
    /// The MX answer.
    pub mx: Option<dns::MxLookup>,
    /// Whether the domain's own addresses served as the implicit MX (no MX records).
    pub implicit_mx: bool,
    /// Each mail host, in preference order.
    pub hosts: Vec<HostReport>,
    /// The MTA-STS record and policy.
    pub mta_sts: Option<MtaStsReport>,
    /// The TLS-RPT record.
    pub tls_rpt: Option<TlsRptReport>,
    /// The verdict.
    pub verdict: DomainVerdict,
    /// This domain's exit status.
    pub exit_code: u8,
}

/// One mail host.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// Its name.
    pub host: String,
    /// Its MX preference (`None` for the implicit MX).
    pub preference: Option<u16>,
    /// Why its addresses could not be found, if they could not.
    pub resolve_error: Option<String>,
    /// The TLSA records at `_PORT._tcp.HOST` and what they matched.
    pub dane: Option<DaneReport>,
    /// Whether the host is listed in the MTA-STS policy (`None` without a policy).
    pub mta_sts_listed: Option<bool>,
    /// Each address probed.
    pub addresses: Vec<AddressReport>,
}

/// One probed address: the same report get-cert gives, plus DANE.
#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    /// The address.
    pub address: String,
    /// Whether DANE authenticated this server (a usable, DNSSEC-authenticated TLSA record matched).
    pub dane_verified: Option<bool>,
    /// DANE's outcome against this address's chain.
    pub dane: Option<dane::DaneOutcome>,
    /// The exit status for this address alone.
    pub exit_code: u8,
    /// The full probe report.
    pub report: Report,
}

/// The TLSA answer for one host.
#[derive(Debug, Clone, Serialize)]
pub struct DaneReport {
    /// The records.
    pub records: Vec<dns::Tlsa>,
    /// Whether the answer was DNSSEC-authenticated (the AD bit of the resolver's answer).
    pub authenticated: bool,
    /// Why the lookup failed, if it did.
    pub error: Option<String>,
}

/// The MTA-STS findings.
#[derive(Debug, Clone, Serialize)]
pub struct MtaStsReport {
    /// The `_mta-sts` TXT record.
    pub record: Option<mta_sts::StsRecord>,
    /// The policy fetched over HTTPS.
    pub policy: Option<mta_sts::Policy>,
    /// What went wrong, in words.
    pub error: Option<String>,
}

/// The TLS-RPT findings.
#[derive(Debug, Clone, Serialize)]
pub struct TlsRptReport {
    /// The record, if any.
    pub record: Option<tlsrpt::TlsRpt>,
    /// What went wrong, in words.
    pub error: Option<String>,
}

/// The overall answer for a domain.
#[derive(Debug, Clone, Serialize)]
pub struct DomainVerdict {
    /// `ok`, `warning` or `fail`.
    pub status: VerdictStatus,
    /// Every finding, errors first.
    pub reasons: Vec<DomainReason>,
}

/// A domain verdict's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictStatus {
    /// Every address verified, every policy satisfied.
    Ok,
    /// Nothing failed, but something needs attention.
    Warning,
    /// Something failed.
    Fail,
}

/// One domain-level finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainReason {
    /// A stable code: `null-mx`, `implicit-mx`, `no-address`, `address` (an address failed),
    /// `mta-sts-unlisted`, `mta-sts-unverified`, `mta-sts-error`, `dane-mismatch`,
    /// `dane-unauthenticated`, `no-tls-rpt`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// The host concerned.
    pub host: Option<String>,
    /// The address concerned.
    pub address: Option<String>,
    /// Plain words.
    pub message: String,
}

/// How bad an exit status is, for "the worst over all addresses": 0 < 8 < 1 < 7 < 6 < 4 < 5 < 3 < 2.
pub fn severity_rank(exit: Exit) -> u8 {
    match exit {
        Exit::Ok => 0,
        Exit::ExpiresSoon => 1,
        Exit::VerifyFailed => 2,
        Exit::Envelope => 3,
        Exit::Auth => 4,
        Exit::Smtp => 5,
        Exit::Tls => 6,
        Exit::Connect => 7,
        Exit::Usage => 8,
    }
}

/// The worse of two exit statuses.
pub fn worse(a: Exit, b: Exit) -> Exit {
    if severity_rank(b) > severity_rank(a) {
        b
    } else {
        a
    }
}

/// Combines the reasons into a status: any error fails, any warning warns.
pub fn status_of(reasons: &[DomainReason]) -> VerdictStatus {
    if reasons.iter().any(|r| r.severity == Severity::Error) {
        VerdictStatus::Fail
    } else if reasons.is_empty() {
        VerdictStatus::Ok
    } else {
        VerdictStatus::Warning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_exit_follows_the_documented_order() {
        let order = [
            Exit::Ok,
            Exit::ExpiresSoon,
            Exit::VerifyFailed,
            Exit::Envelope,
            Exit::Auth,
            Exit::Smtp,
            Exit::Tls,
            Exit::Connect,
            Exit::Usage,
        ];
        for pair in order.windows(2) {
            if let [a, b] = pair {
                assert_eq!(worse(*a, *b), *b, "{a:?} < {b:?}");
                assert_eq!(worse(*b, *a), *b, "{b:?} > {a:?}");
            }
        }
    }

    #[test]
    fn status_follows_the_worst_reason() {
        let reason = |severity| DomainReason {
            code: "x",
            severity,
            host: None,
            address: None,
            message: String::new(),
        };
        assert_eq!(status_of(&[]), VerdictStatus::Ok);
        assert_eq!(
            status_of(&[reason(Severity::Warning)]),
            VerdictStatus::Warning
        );
        assert_eq!(
            status_of(&[reason(Severity::Warning), reason(Severity::Error)]),
            VerdictStatus::Fail
        );
    }
}
