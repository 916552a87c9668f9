//! `check`'s report for people: per domain the MX answer, MTA-STS and TLS-RPT, a table with one
//! row per MX address, and the verdict with its reasons; and its monitoring-plugin line.

use std::fmt::Write as _;

use crate::check::dns::MxLookup;
use crate::check::{DomainReport, VerdictStatus};
use crate::exit::Exit;
use crate::report::nagios::{one_line, perf_data};
use crate::sanitize::for_terminal as clean;
use crate::verdict::Severity;

/// Renders every domain as text.
pub fn render(domains: &[DomainReport], exit: Exit) -> String {
    let mut out = String::new();
    for domain in domains {
        render_domain(&mut out, domain);
        out.push('\n');
    }
    let _ = writeln!(out, "Result: exit {}", exit.code());
    out
}

fn render_domain(out: &mut String, d: &DomainReport) {
    let _ = writeln!(out, "Domain:   {}", clean(&d.domain));
    let mx = match &d.mx {
        Some(MxLookup::Hosts { hosts }) => hosts
            .iter()
            .map(|h| format!("{} {}", h.preference, h.host))
            .collect::<Vec<_>>()
            .join(", "),
        Some(MxLookup::NullMx) => "null MX: accepts no mail".into(),
        Some(MxLookup::NoMx) => format!("none (implicit MX: {})", d.domain),
        None => "lookup failed".into(),
    };
    let _ = writeln!(out, "MX:       {}", clean(&mx));
    let sts = match &d.mta_sts {
        None => "no record".to_owned(),
        Some(m) => match (&m.policy, &m.error) {
            (Some(p), _) => format!(
                "{:?} mode, max_age {}, mx {} (id {})",
                p.mode,
                p.max_age,
                p.mx.join(", "),
                m.record.as_ref().map_or("?", |r| r.id.as_str())
            )
            .to_lowercase(),
            (None, Some(e)) => format!("ERROR: {e}"),
            (None, None) => "record without policy".into(),
        },
    };
    let _ = writeln!(out, "MTA-STS:  {}", clean(&sts));
    let rpt = match &d.tls_rpt {
        Some(t) => match (&t.record, &t.error) {
            (Some(r), _) => r.rua.join(", "),
            (None, Some(e)) => format!("ERROR: {e}"),
            (None, None) => "no record".into(),
        },
        None => "not checked".into(),
    };
    let _ = writeln!(out, "TLS-RPT:  {}", clean(&rpt));
    table(out, d);
    let status = match d.verdict.status {
        VerdictStatus::Ok => "OK",
        VerdictStatus::Warning => "WARNING",
        VerdictStatus::Fail => "FAIL",
    };
    let _ = writeln!(out, "Verdict:  {status} (exit {})", d.exit_code);
    for r in &d.verdict.reasons {
        let mark = if r.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        let _ = writeln!(out, "  {mark:<8} {} [{}]", clean(&r.message), r.code);
    }
}

fn table(out: &mut String, d: &DomainReport) {
    if d.hosts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  {:<28} {:<24} {:<8} {:<22} {:<10} {:<8} exit",
        "host", "address", "TLS", "certificate", "DANE", "MTA-STS"
    );
    for host in &d.hosts {
        if host.addresses.is_empty() {
            let why = host.resolve_error.as_deref().unwrap_or("no address");
            let _ = writeln!(out, "  {:<28} {}", clean(&host.host), clean(why));
        }
        for a in &host.addresses {
            let r = &a.report;
            let tls = r
                .tls
                .as_ref()
                .map_or_else(|| "-".to_owned(), |t| t.version.clone());
            let cert = match &r.verification {
                Some(v) if v.verified => v.expiry.as_ref().map_or_else(
                    || "verified".to_owned(),
                    |e| format!("verified, {}d left", e.min_days_left),
                ),
                Some(v) => v.reasons.first().map_or_else(
                    || "NOT verified".to_owned(),
                    |x| format!("NOT verified: {}", x.code),
                ),
                None => r
                    .error
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |e| e.kind.clone()),
            };
            let dane = match (a.dane_verified, host.dane.as_ref()) {
                (Some(true), _) => "match",
                (Some(false), _) => "MISMATCH",
                (None, Some(d)) if !d.records.is_empty() => "unauth.",
                _ => "-",
            };
            let sts = match host.mta_sts_listed {
                Some(true) => "listed",
                Some(false) => "UNLISTED",
                None => "-",
            };
            let _ = writeln!(
                out,
                "  {:<28} {:<24} {:<8} {:<22} {:<10} {:<8} {}",
                clean(&host.host),
                format!("{}:{}", a.address, r.target.port),
                tls,
                cert,
                dane,
                sts,
                a.exit_code
            );
        }
    }
}

/// The monitoring-plugin line for a whole run.
pub fn nagios(domains: &[DomainReport], exit: Exit) -> String {
    let names: Vec<&str> = domains.iter().map(|d| d.domain.as_str()).collect();
    let addresses: usize = domains
        .iter()
        .flat_map(|d| &d.hosts)
        .map(|h| h.addresses.len())
        .sum();
    let first_error = domains
        .iter()
        .flat_map(|d| &d.verdict.reasons)
        .find(|r| r.severity == Severity::Error || exit == Exit::ExpiresSoon);
    let summary = match first_error {
        Some(r) if exit != Exit::Ok => one_line(&r.message),
        _ => format!("{addresses} address(es) checked, all verified"),
    };
    let min_days = domains
        .iter()
        .flat_map(|d| &d.hosts)
        .flat_map(|h| &h.addresses)
        .filter_map(|a| {
            a.report
                .verification
                .as_ref()
                .and_then(|v| v.expiry.as_ref())
        })
        .min_by_key(|e| e.min_days_left);
    let perf = perf_data(min_days);
    format!(
        "SMTPTLS {} - {}: {summary}{perf}",
        exit.nagios_word(),
        names.join(", ")
    )
}
