//! SMTP MTA Strict Transport Security (RFC 8461): the `_mta-sts.DOMAIN` TXT record (§3.1), the
//! policy file and its limits (§3.2), MX host matching (§4.1), and the HTTPS fetch
//! of the policy (§3.3, [`fetch_policy`], in the `fetch` submodule).
//!
//! The TXT record, the policy text and everything the policy host says are hostile input: parsing
//! never panics, keeps within the 64 KiB policy limit, and quotes what it rejects.

mod fetch;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use fetch::{fetch_policy, policy_url};

/// The largest policy accepted, in bytes (RFC 8461 §3.2: 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// The largest `max_age` allowed, in seconds: about one year (RFC 8461 §3.2).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// The most of a hostile line quoted in an error.
const QUOTE_CHARS: usize = 80;

/// The parsed `_mta-sts.DOMAIN` TXT record (RFC 8461 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StsRecord {
    /// The policy instance id: 1 to 32 letters and digits; a new id means a new policy.
    pub id: String,
}

/// What a sending server does when the policy is not met (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Do not deliver to an MX that fails validation.
    Enforce,
    /// Deliver anyway, but report failures (TLS-RPT).
    Testing,
    /// The domain has withdrawn its policy.
    None,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        })
    }
}

/// A parsed policy file (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Always `STSv1`.
    pub version: String,
    /// The policy mode.
    pub mode: Mode,
    /// How long a sender may cache the policy, in seconds (at most [`MAX_AGE_LIMIT`]).
    pub max_age: u64,
    /// The MX host patterns, as written (`mail.example.com`, `*.example.net`).
    pub mx: Vec<String>,
}

/// Resolves a host name to its addresses, or says why not.
pub type ResolveFn = dyn Fn(&str) -> Result<Vec<IpAddr>, String> + Send + Sync;

/// How the policy is fetched.
#[derive(Clone)]
pub struct FetchSettings {
    /// PEM files whose certificates are trusted besides Mozilla's roots (`--ca-file`).
    pub ca_files: Vec<PathBuf>,
    /// The bound on the whole fetch: name resolution, connection, TLS, request and body.
    pub timeout: Duration,
    /// The HTTPS port: 443, except in tests.
    pub port: u16,
    /// Resolves the policy host, `mta-sts.DOMAIN`, so that `--resolver` applies.
    pub resolve: Arc<ResolveFn>,
}

impl fmt::Debug for FetchSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchSettings")
            .field("ca_files", &self.ca_files)
            .field("timeout", &self.timeout)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Why MTA-STS does not apply, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    /// No TXT record at `_mta-sts.DOMAIN` begins with `v=STSv1` ([`parse_record`] reports this as
    /// `Ok(None)`; the variant is for callers that need it as an error).
    #[error("no MTA-STS record")]
    NoRecord,
    /// More than one record begins with `v=STSv1`.
    #[error("{}", many_records(*.0))]
    ManyRecords(usize),
    /// The record is not valid.
    #[error("invalid MTA-STS record: {0}")]
    InvalidRecord(String),
    /// A line of the policy is not `key: value`, or its value is not valid.
    #[error("malformed policy line {line} ({text}): {reason}")]
    MalformedLine {
        /// Its number, from 1.
        line: usize,
        /// The line, quoted and shortened.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The policy lacks a required field or holds a wrong value.
    #[error("invalid policy: {0}")]
    InvalidPolicy(String),
    /// The policy is over 64 KiB.
    #[error("policy too large (over {} KiB, RFC 8461 §3.2)", MAX_POLICY_BYTES / 1024)]
    TooLarge,
    /// The domain cannot make a policy host name.
    #[error("{0:?} is not a domain name a policy host can be made of")]
    InvalidDomain(String),
    /// A `--ca-file` could not be used.
    #[error("--ca-file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The policy host's name did not resolve.
    #[error("policy host {host} could not be resolved: {reason}")]
    Resolve {
        /// `mta-sts.DOMAIN`.
        host: String,
        /// Why not.
        reason: String,
    },
    /// The policy host's certificate did not verify.
    #[error("policy host certificate invalid: {0}")]
    Certificate(String),
    /// The server answered with a redirect, which must not be followed.
    #[error("redirect refused (RFC 8461 §3.3): HTTP {status}{}", location_words(location.as_deref()))]
    Redirect {
        /// The 3xx status.
        status: u16,
        /// Where it pointed, quoted and shortened, if it said.
        location: Option<String>,
    },
    /// The server answered with a status other than 200.
    #[error("policy fetch failed: HTTP {0}")]
    HttpStatus(u16),
    /// The policy was not served as `text/plain`.
    #[error("policy fetch failed: Content-Type is {}, not text/plain (RFC 8461 §3.2)", content_type_words(.0.as_deref()))]
    ContentType(Option<String>),
    /// The fetch took longer than the timeout.
    #[error("policy fetch timed out after {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// Any other failure to fetch: connection refused or reset, TLS alert, broken HTTP.
    #[error("policy fetch failed: {0}")]
    Fetch(String),
}

fn many_records(count: usize) -> String {
    if count == 2 {
        "two MTA-STS records (RFC 8461 §3.1 says ignore both)".to_owned()
    } else {
        format!("{count} MTA-STS records (RFC 8461 §3.1 says ignore them all)")
    }
}

fn location_words(location: Option<&str>) -> String {
    location.map_or_else(String::new, |l| format!(" to {l}"))
}

fn content_type_words(content_type: Option<&str>) -> String {
    content_type.map_or_else(|| "missing".to_owned(), ToOwned::to_owned)
}

/// Quotes hostile text for an error: debug-escaped, at most [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// Parses the TXT records found at `_mta-sts.DOMAIN` (one string per record, its character
/// strings already joined). Records not beginning with `v=STSv1` are discarded; none left is
/// `Ok(None)`, more than one is an error (RFC 8461 §3.1).
pub fn parse_record(txts: &[String]) -> Result<Option<StsRecord>, StsError> {
    let sts: Vec<&String> = txts.iter().filter(|txt| is_sts(txt)).collect();
    match sts.as_slice() {
        [] => Ok(None),
        [record] => record_fields(record).map(Some),
        many => Err(StsError::ManyRecords(many.len())),
    }
}

/// Whether a TXT record begins with `v=STSv1`, followed by a separator or nothing.
fn is_sts(txt: &str) -> bool {
    txt.strip_prefix("v=STSv1").is_some_and(|rest| {
        let rest = rest.trim_start_matches([' ', '\t']);
        rest.is_empty() || rest.starts_with(';')
    })
}

/// The fields after `v=STSv1`: `id` is required; the first `id` counts; others are ignored.
fn record_fields(record: &str) -> Result<StsRecord, StsError> {
    let invalid = |why: String| StsError::InvalidRecord(why);
    let mut id = None;
    for field in record.split(';').skip(1) {
        let field = field.trim_matches([' ', '\t']);
        if field.is_empty() {
            continue;
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(invalid(format!("field {} is not name=value", quote(field))));
        };
        if !is_field_name(name) || value.is_empty() {
            return Err(invalid(format!("field {} is not name=value", quote(field))));
        }
        if name == "id" && id.is_none() {
            id = Some(value);
        }
    }
    let id = id.ok_or_else(|| invalid("no id= field".to_owned()))?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid(format!(
            "id {} is not 1 to 32 letters and digits",
            quote(id)
        )));
    }
    Ok(StsRecord { id: id.to_owned() })
}

/// A field name in the record or the policy: a letter or digit, then up to 31 letters, digits,
/// `_`, `-` or `.` (RFC 8461 §3.1, §3.2).
fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 32
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The fields of a policy as first seen; `mx` collects every instance.
#[derive(Default)]
struct Fields {
    version: Option<String>,
    mode: Option<Mode>,
    max_age: Option<u64>,
    mx: Vec<String>,
}

/// Parses a policy file (RFC 8461 §3.2): `key: value` lines ended by LF or CRLF. `version`,
/// `mode` and `max_age` are required, and `mx` too unless the mode is `none`; when a field other
/// than `mx` is repeated the first one counts; unknown fields are ignored; blank lines are
/// tolerated.
pub fn parse_policy(text: &str) -> Result<Policy, StsError> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(StsError::TooLarge);
    }
    let mut fields = Fields::default();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_matches([' ', '\t']).is_empty() {
            continue;
        }
        policy_line(&mut fields, line).map_err(|reason| StsError::MalformedLine {
            line: index.saturating_add(1),
            text: quote(line),
            reason,
        })?;
    }
    let missing = |name: &str| StsError::InvalidPolicy(format!("no {name}: field"));
    let version = fields.version.ok_or_else(|| missing("version"))?;
    let mode = fields.mode.ok_or_else(|| missing("mode"))?;
    let max_age = fields.max_age.ok_or_else(|| missing("max_age"))?;
    if fields.mx.is_empty() && mode != Mode::None {
        return Err(StsError::InvalidPolicy(format!(
            "no mx: field, which mode {mode} requires"
        )));
    }
    Ok(Policy {
        version,
        mode,
        max_age,
        mx: fields.mx,
    })
}

/// Reads one non-blank line into `fields`.
fn policy_line(fields: &mut Fields, line: &str) -> Result<(), String> {
    let Some((key, value)) = line.split_once(':') else {
        return Err("not key: value".to_owned());
    };
    if !is_field_name(key) {
        return Err(format!("{} is not a field name", quote(key)));
    }
    let value = value.trim_matches([' ', '\t']);
    match key {
        "version" if fields.version.is_none() => {
            if value != "STSv1" {
                return Err(format!("version is {}, not STSv1", quote(value)));
            }
            fields.version = Some(value.to_owned());
        }
        "mode" if fields.mode.is_none() => {
            fields.mode = Some(match value {
                "enforce" => Mode::Enforce,
                "testing" => Mode::Testing,
                "none" => Mode::None,
                other => {
                    return Err(format!(
                        "mode is {}, not enforce, testing or none",
                        quote(other)
                    ));
                }
            });
        }
        "max_age" if fields.max_age.is_none() => fields.max_age = Some(max_age(value)?),
        "mx" => {
            if !is_mx_pattern(value) {
                return Err(format!(
                    "{} is not a host name or *.host name",
                    quote(value)
                ));
            }
            fields.mx.push(value.to_owned());
        }
        _ => {}
    }
    Ok(())
}

/// `max_age`: 1 to 10 digits, at most [`MAX_AGE_LIMIT`].
fn max_age(value: &str) -> Result<u64, String> {
    let digits =
        !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    let seconds = value
        .parse::<u64>()
        .ok()
        .filter(|_| digits)
        .ok_or_else(|| format!("max_age {} is not a number of seconds", quote(value)))?;
    if seconds > MAX_AGE_LIMIT {
        return Err(format!(
            "max_age {seconds} is over the limit of {MAX_AGE_LIMIT} seconds (about a year)"
        ));
    }
    Ok(seconds)
}

/// An `mx` pattern: a host name, optionally with `*.` in place of its left-most label; one
/// trailing dot is tolerated.
fn is_mx_pattern(value: &str) -> bool {
    let name = value.strip_prefix("*.").unwrap_or(value);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Whether an MX host matches a policy's `mx` pattern (RFC 8461 §4.1): case-insensitive,
/// trailing dots ignored; `*.example.com` matches exactly one more label on the left
/// (`mail.example.com`, not `example.com` nor `a.b.example.com`).
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern
        .strip_suffix('.')
        .unwrap_or(pattern)
        .to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(parent) if !parent.is_empty() => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && label != "*" && rest == parent),
        Some(_) => false,
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests;
