//! The report as a monitoring-plugin status line (Nagios, Icinga, Sensu, …): `SMTPTLS <STATUS> -
//! <what happened> | <performance data>`, one line, server text sanitized and without `|`.

use super::Report;
use crate::exit::Exit;
use crate::sanitize::for_terminal;
use crate::verdict::{Expiry, Severity};

/// Renders the status line for `report`, whose `exit_code` is already set.
pub fn render(report: &Report) -> String {
    let exit = Exit::from_code(report.exit_code).unwrap_or(Exit::Usage);
    let target = format!("{}:{}", report.target.host, report.target.port);
    let summary = summary(report, exit);
    let mut line = format!(
        "SMTPTLS {} - {target}: {}",
        exit.nagios_word(),
        one_line(&summary)
    );
    line.push_str(&perf_data(
        report.verification.as_ref().and_then(|v| v.expiry.as_ref()),
    ));
    line
}

/// ` | days_left=N;WARN;CRIT` for the first certificate to expire (empty thresholds when not
/// given), or nothing without a certificate.
pub(crate) fn perf_data(expiry: Option<&Expiry>) -> String {
    let limit = |d: Option<i64>| d.map(|d| d.to_string()).unwrap_or_default();
    expiry.map_or_else(String::new, |e| {
        format!(
            " | days_left={};{};{}",
            e.min_days_left,
            limit(e.warn_days),
            limit(e.crit_days)
        )
    })
}

fn summary(report: &Report, exit: Exit) -> String {
    if let Some(error) = &report.error {
        return error.message.clone();
    }
    let verification = report.verification.as_ref();
    match exit {
        Exit::Auth => report.auth.as_ref().map_or_else(String::new, |a| {
            format!("authentication failed: {}", a.message)
        }),
        Exit::Envelope => {
            let rows = report
                .envelope
                .iter()
                .flat_map(|e| e.mail_from.iter().chain(e.rcpt_to.iter()));
            let refused: Vec<String> = rows
                .filter(|r| r.result != crate::submit::StepResult::Accepted)
                .map(|r| {
                    format!(
                        "<{}> {}",
                        r.address,
                        r.code.map(|c| c.to_string()).unwrap_or_default()
                    )
                })
                .collect();
            format!("envelope refused: {}", refused.join(", "))
        }
        _ => match verification {
            Some(v) => {
                let first_error = v.reasons.iter().find(|r| r.severity == Severity::Error);
                let expiry = v
                    .expiry
                    .as_ref()
                    .map(|e| format!("; first expiry in {} days ({})", e.min_days_left, e.subject));
                let tls = report
                    .tls
                    .as_ref()
                    .map(|t| format!("{}, ", t.version))
                    .unwrap_or_default();
                let soon = v.reasons.iter().find(|r| r.code == "expires-soon");
                if let (Exit::ExpiresSoon, Some(reason)) = (exit, soon) {
                    return format!("{tls}certificate verified, but {}", reason.message);
                }
                match (v.verified, first_error) {
                    (true, None) => {
                        format!("{tls}certificate verified{}", expiry.unwrap_or_default())
                    }
                    (_, Some(reason)) => {
                        format!("{tls}certificate not accepted: {}", reason.message)
                    }
                    (false, None) => format!("{tls}certificate not verified"),
                }
            }
            None => "no certificate".into(),
        },
    }
}

/// One line, sanitized, with `|` (the performance-data separator) replaced.
pub(crate) fn one_line(text: &str) -> String {
    for_terminal(text).replace('|', "/")
}
