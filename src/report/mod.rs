//! One report model, rendered as text for people and as JSON for machines. It holds plain data
//! only: the probe's findings are turned into it by `app`, and nothing here does I/O.
//!
//! The JSON form is a stable interface (see README.md, "JSON output"): fields are added, never
//! renamed or removed, without bumping [`SCHEMA_VERSION`].

pub mod check;
pub mod color;
pub mod nagios;
pub mod text;

use serde::Serialize;

use crate::cert::summary::CertSummary;
use crate::probe::TlsMode;
use crate::smtp::session::Stage;
use crate::smtp::transcript::Entry;
use crate::submit::{AuthReport, EnvelopeReport};
use crate::tls::TlsFacts;
use crate::verdict::Verdict;

/// The version of the JSON layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The subcommand: "get-cert" or "test-smtp".
    pub command: &'static str,
    /// What was probed, and how.
    pub target: TargetInfo,
    /// Each step of the dialogue with its reply.
    pub stages: Vec<Stage>,
    /// The EHLO extension lines before TLS (`None` when there was no EHLO reply in plaintext).
    pub ehlo_before_tls: Option<Vec<String>>,
    /// The EHLO extension lines inside TLS.
    pub ehlo_after_tls: Option<Vec<String>>,
    /// The negotiated version and cipher suite.
    pub tls: Option<TlsFacts>,
    /// Each certificate the server sent, in the order sent.
    pub certificates: Vec<CertSummary>,
    /// The verdict on the chain and the name, every reason, and the expiry thresholds.
    pub verification: Option<Verdict>,
    /// What was written, if anything (get-cert).
    pub output: Option<OutputInfo>,
    /// The AUTH finding (test-smtp).
    pub auth: Option<AuthReport>,
    /// The MAIL FROM and RCPT TO findings (test-smtp).
    pub envelope: Option<EnvelopeReport>,
    /// Things worth knowing that are not failures.
    pub warnings: Vec<String>,
    /// Every line sent and received.
    pub transcript: Vec<Entry>,
    /// What stopped the run early.
    pub error: Option<ErrorInfo>,
    /// The process exit status.
    pub exit_code: u8,
}

/// The target as probed.
#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    /// The host as given (a name or an address).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The address actually connected to.
    pub address: Option<String>,
    /// How TLS started.
    pub tls_mode: TlsMode,
    /// The SNI name sent, if any.
    pub sni: Option<String>,
    /// The EHLO name used (`None` when the probe never got to send one).
    pub ehlo_name: Option<String>,
}

/// The certificate file written.
#[derive(Debug, Clone, Serialize)]
pub struct OutputInfo {
    /// The path, or "-" for stdout.
    pub path: String,
    /// "der" or "pem".
    pub format: crate::cert::export::Format,
    /// How many certificates it holds.
    pub certificates_written: usize,
}

/// What stopped the run.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    /// A short name: "connect", "timeout", "closed", "protocol", "injection", "tls", "smtp-reply",
    /// "no-starttls", "config", "output".
    pub kind: String,
    /// Plain words.
    pub message: String,
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
