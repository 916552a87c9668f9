//! The report as text for a terminal. Every string that came from the server (reply lines,
//! certificate names) passes through [`crate::sanitize::for_terminal`].

use std::fmt::Write as _;

use super::Report;
use crate::probe::TlsMode;
use crate::sanitize::for_terminal as clean;
use crate::submit::StepResult;
use crate::verdict::{ExpiryStatus, Severity};

/// Renders the report for people.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    target(&mut out, report);
    if let Some(tls) = &report.tls {
        let _ = writeln!(out, "TLS:          {} {}", tls.version, tls.cipher_suite);
    }
    if let Some(ehlo) = &report.ehlo_before_tls {
        let _ = writeln!(out, "EHLO (plain): {}", clean(&ehlo.join(", ")));
    }
    if let Some(ehlo) = &report.ehlo_after_tls {
        let _ = writeln!(out, "EHLO (TLS):   {}", clean(&ehlo.join(", ")));
    }
    certificates(&mut out, report);
    verification(&mut out, report);
    if let Some(output) = &report.output {
        let what = if output.certificates_written == 1 {
            "1 certificate".to_owned()
        } else {
            format!("{} certificates", output.certificates_written)
        };
        let to = if output.path == "-" {
            "stdout".to_owned()
        } else {
            output.path.clone()
        };
        let _ = writeln!(
            out,
            "Saved:        {what} as {} to {}",
            format!("{:?}", output.format).to_uppercase(),
            clean(&to)
        );
    }
    auth(&mut out, report);
    envelope(&mut out, report);
    for warning in &report.warnings {
        let _ = writeln!(out, "Warning:      {}", clean(warning));
    }
    verdict(&mut out, report);
    out
}

fn target(out: &mut String, report: &Report) {
    let t = &report.target;
    let mode = match t.tls_mode {
        TlsMode::Starttls => "STARTTLS",
        TlsMode::Implicit => "implicit TLS",
    };
    let _ = write!(
        out,
        "Server:       {} port {} ({mode})",
        clean(&t.host),
        t.port
    );
    if let Some(address) = &t.address {
        let _ = write!(out, ", connected to {address}");
    }
    out.push('\n');
    let sni = t
        .sni
        .as_deref()
        .map_or_else(|| "none".to_owned(), |s| clean(s).into_owned());
    let ehlo = t
        .ehlo_name
        .as_deref()
        .map_or_else(|| "not sent".to_owned(), |n| clean(n).into_owned());
    let _ = writeln!(out, "EHLO name:    {ehlo}; SNI: {sni}");
}

fn certificates(out: &mut String, report: &Report) {
    if report.certificates.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Certificates: {} sent, leaf first",
        report.certificates.len()
    );
    for (i, cert) in report.certificates.iter().enumerate() {
        let _ = writeln!(out, "  [{i}] subject:   {}", clean(&cert.subject));
        let _ = writeln!(out, "      issuer:    {}", clean(&cert.issuer));
        if !cert.subject_alt_names.is_empty() {
            let _ = writeln!(
                out,
                "      names:     {}",
                clean(&cert.subject_alt_names.join(", "))
            );
        }
        let _ = writeln!(
            out,
            "      valid:     {} to {} ({})",
            cert.not_before,
            cert.not_after,
            cert.validity_text()
        );
        let _ = writeln!(out, "      serial:    {}", cert.serial);
        let _ = writeln!(out, "      sha256:    {}", cert.sha256_fingerprint);
        let bits = cert
            .public_key_bits
            .map(|b| format!(" ({b} bits)"))
            .unwrap_or_default();
        let curve = cert
            .public_key_curve
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "      key:       {}{curve}{bits}; signed with {}",
            cert.public_key_type, cert.signature_algorithm
        );
    }
}

fn verification(out: &mut String, report: &Report) {
    let Some(v) = &report.verification else {
        return;
    };
    let _ = writeln!(
        out,
        "Verification: {}",
        if v.verified { "OK" } else { "FAILED" }
    );
    let chain = if v.chain_trusted {
        "trusted"
    } else {
        "NOT trusted"
    };
    let _ = writeln!(out, "  chain:      {chain}");
    let matches = if v.name_matches {
        "matches"
    } else {
        "does NOT match"
    };
    let _ = writeln!(out, "  name:       {} {matches}", clean(&v.name_checked));
    for reason in &v.reasons {
        let mark = match reason.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(
            out,
            "  {mark:<10}  {} [{}]",
            clean(&reason.message),
            reason.code
        );
    }
    if let Some(e) = &v.expiry {
        let limits: Vec<String> = [("warn", e.warn_days), ("crit", e.crit_days)]
            .iter()
            .filter_map(|(n, d)| d.map(|d| format!("{n} at {d}")))
            .collect();
        let limits = if limits.is_empty() {
            String::new()
        } else {
            format!(" ({})", limits.join(", "))
        };
        let status = match e.status {
            ExpiryStatus::Ok => "ok",
            ExpiryStatus::Warning => "WARNING",
            ExpiryStatus::Critical => "CRITICAL",
        };
        let _ = writeln!(
            out,
            "  expiry:     {status}: first to expire is certificate {} ({}), {} days left{limits}",
            e.certificate,
            clean(&e.subject),
            e.min_days_left
        );
    }
    let _ = writeln!(
        out,
        "  OCSP:       {}",
        if v.ocsp_stapled {
            "response stapled"
        } else {
            "no stapled response"
        }
    );
}

fn auth(out: &mut String, report: &Report) {
    let Some(auth) = &report.auth else {
        return;
    };
    let mechanism = auth
        .mechanism
        .map_or_else(|| "AUTH".to_owned(), |m| format!("AUTH {m}"));
    let _ = writeln!(
        out,
        "Auth:         {mechanism} as {:?}: {}{} — {}",
        clean(&auth.user),
        result_word(auth.result),
        reply_suffix(auth.code, &auth.lines),
        clean(&auth.message)
    );
}

fn envelope(out: &mut String, report: &Report) {
    let Some(envelope) = &report.envelope else {
        return;
    };
    let rows = envelope.mail_from.iter().map(|r| ("MAIL FROM:", r));
    for (label, row) in rows.chain(envelope.rcpt_to.iter().map(|r| ("RCPT TO:", r))) {
        let message = row
            .message
            .as_deref()
            .map(|m| format!(" — {m}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{label:<13} <{}>: {}{}{message}",
            clean(&row.address),
            result_word(row.result),
            reply_suffix(row.code, &row.lines)
        );
    }
}

fn result_word(result: StepResult) -> &'static str {
    match result {
        StepResult::Accepted => "accepted",
        StepResult::TemporaryFailure => "TEMPORARY FAILURE",
        StepResult::Rejected => "REJECTED",
        StepResult::NotOffered => "NOT OFFERED",
        StepResult::NotAttempted => "not attempted",
        StepResult::Aborted => "ABORTED",
    }
}

fn reply_suffix(code: Option<u16>, lines: &[String]) -> String {
    match code {
        Some(code) => format!(" ({code} {})", clean(&lines.join(" "))),
        None => String::new(),
    }
}

fn verdict(out: &mut String, report: &Report) {
    let status = match (&report.error, &report.verification) {
        (Some(error), _) => format!("ERROR: {}", clean(&error.message)),
        (None, _) if report.exit_code == 6 => "authentication FAILED".to_owned(),
        (None, _) if report.exit_code == 7 => "envelope REJECTED".to_owned(),
        (None, _) if report.command == "test-smtp" && report.exit_code == 0 => {
            "every stage asked for succeeded".to_owned()
        }
        (None, Some(_)) if report.exit_code == 8 => {
            "certificate verified, but expires soon".to_owned()
        }
        (None, Some(v)) if v.verified => "certificate verified".to_owned(),
        (None, Some(_)) => "certificate obtained, verification FAILED".to_owned(),
        (None, None) => "no certificate".to_owned(),
    };
    let _ = writeln!(out, "Result:       {status} (exit {})", report.exit_code);
}
