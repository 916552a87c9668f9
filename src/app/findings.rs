//! The probe's findings turned into the report: certificate summaries and the verdict.

use std::time::SystemTime;

use crate::cert::summary::{self, CertSummary};
use crate::probe::{Outcome, ProbeOptions};
use crate::report::{ErrorInfo, Report, SCHEMA_VERSION, TargetInfo};
use crate::smtp::ehlo::Capabilities;
use crate::verdict::{self, Thresholds};

/// The report for `command`, without the subcommand's own parts.
pub(crate) fn build_report(
    command: &'static str,
    opts: &ProbeOptions,
    outcome: &Outcome,
    thresholds: Thresholds,
) -> Report {
    let findings = &outcome.findings;
    let now = SystemTime::now();
    let mut warnings = Vec::new();
    let summaries: Vec<Option<CertSummary>> = findings
        .captured
        .iter()
        .flat_map(|c| c.chain.iter().enumerate())
        .map(|(i, der)| match summary::summarize(der, now) {
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
            address: findings.address_label(),
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
            .map(|c| verdict::assess(c, &summaries, thresholds)),
        certificates: summaries.into_iter().flatten().collect(),
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
