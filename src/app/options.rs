//! Shared connection options → probe options; the EHLO name default; the live transcript.

use std::io::Write;
use std::time::Duration;

use rustls_pki_types::ServerName;

use super::UsageError;
use crate::cli::{ConnectionArgs, TlsChoice, TlsVersionArg, TrustArg};
use crate::net::Family;
use crate::probe::{ProbeOptions, QuitAfter, TlsMode};
use crate::proxy::{PASSWORD_VAR, Proxy};
use crate::secret::Secret;
use crate::smtp::command::validate_domain;
use crate::smtp::transcript::Transcript;
use crate::target::{Host, Target};
use crate::tls::{ClientSettings, TlsVersion, Trust};
use crate::verdict::Thresholds;

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
            trust: match conn.trust {
                TrustArg::Mozilla => Trust::Mozilla,
                TrustArg::System => Trust::System,
                TrustArg::Both => Trust::Both,
            },
            verify_name: match &conn.verify_name {
                Some(name) => Some(ServerName::try_from(name.clone()).map_err(|_| {
                    UsageError(format!(
                        "--verify-name {name:?} is not a valid DNS name or IP address"
                    ))
                })?),
                None => None,
            },
        },
        timeout: Duration::from_secs(conn.timeout),
        quit_after: QuitAfter::Tls,
        require_tls: true,
        proxy: conn.proxy.as_deref().map(proxy).transpose()?,
    })
}

/// `--proxy URL`, with the password from `SMTPTLS_PROXY_PASSWORD` when the URL names a user.
fn proxy(url: &str) -> Result<Proxy, UsageError> {
    let password = match std::env::var(PASSWORD_VAR) {
        Ok(value) => Some(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(UsageError(format!("{PASSWORD_VAR} is not valid UTF-8")));
        }
    };
    Proxy::parse(url, password).map_err(|e| UsageError(format!("--proxy: {e}")))
}
/// This machine's host name when it is fully qualified; otherwise `None`, and the probe uses the
/// address literal of its end of the connection (RFC 5321 §4.1.4).
pub(crate) fn default_ehlo_name() -> Option<String> {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim_end_matches('.')
        .to_owned();
    (name.contains('.') && validate_domain(&name).is_ok()).then_some(name)
}
pub(crate) fn transcript(conn: &ConnectionArgs) -> Transcript {
    if conn.quiet {
        return Transcript::default();
    }
    Transcript::with_sink(Box::new(|entry| {
        let _ = writeln!(std::io::stderr().lock(), "{entry}");
    }))
}

/// The expiry thresholds of `--warn-days` / `--crit-days`.
pub(crate) fn thresholds(conn: &ConnectionArgs) -> Thresholds {
    Thresholds {
        warn_days: conn.warn_days.map(i64::from),
        crit_days: conn.crit_days.map(i64::from),
    }
}
