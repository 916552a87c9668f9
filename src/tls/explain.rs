//! rustls errors rewritten in the words an administrator uses: "certificate expired 12 days ago",
//! "the name mx.example.com is not in the certificate (it holds: a, b)", "this port speaks
//! STARTTLS".

use rustls::{AlertDescription, CertificateError, Error, InvalidMessage};
use rustls_pki_types::UnixTime;

use super::handshake::HandshakeError;

const DAY: u64 = 86_400;

/// Plain words for a certificate verification failure.
pub fn certificate_error(err: &Error) -> String {
    match err {
        Error::InvalidCertificate(cert) => certificate(cert),
        other => other.to_string(),
    }
}

fn certificate(err: &CertificateError) -> String {
    match err {
        CertificateError::Expired => "certificate has expired".into(),
        CertificateError::ExpiredContext { time, not_after } => {
            format!("certificate expired {} ago", days_between(*not_after, *time))
        }
        CertificateError::NotValidYet => "certificate is not valid yet".into(),
        CertificateError::NotValidYetContext { time, not_before } => {
            format!("certificate is not valid yet: it starts in {}", days_between(*time, *not_before))
        }
        CertificateError::UnknownIssuer => {
            "issued by an unknown authority: no chain to a trusted root (self-signed, private CA, or a missing intermediate)".into()
        }
        CertificateError::BadSignature => "a certificate's signature does not verify against its issuer's key".into(),
        CertificateError::NotValidForName => "the certificate is not valid for the name checked".into(),
        CertificateError::NotValidForNameContext { expected, presented } => {
            let held = if presented.is_empty() { "no names".to_owned() } else { presented.join(", ") };
            format!("name mismatch: the certificate is not valid for {} (it holds: {held})", expected.to_str())
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "the certificate is not allowed for TLS server authentication (extended key usage)".into()
        }
        CertificateError::BadEncoding => "the certificate is malformed".into(),
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "a certificate in the chain is signed with an algorithm that is not accepted (for example SHA-1)".into()
        }
        CertificateError::UnhandledCriticalExtension => {
            "a certificate carries a critical extension that cannot be processed".into()
        }
        CertificateError::Revoked => "the certificate has been revoked".into(),
        CertificateError::Other(other) => webpki_words(&other.to_string()),
        other => format!("{other:?}"),
    }
}

/// Words for the webpki errors rustls passes through as `Other`.
fn webpki_words(name: &str) -> String {
    let words = match name {
        "CaUsedAsEndEntity" => {
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE) used as a server certificate"
        }
        "EndEntityUsedAsCa" => {
            "a certificate that is not a CA (basicConstraints) was used to issue another"
        }
        "PathLenConstraintViolated" => {
            "the chain is longer than a CA's path length constraint allows"
        }
        "MaximumPathDepthExceeded" | "MaximumPathBuildCallsExceeded" => {
            "the chain is too long to verify"
        }
        "UnsupportedCertVersion" => "the certificate is not X.509 version 3",
        "NameConstraintViolation" => "a CA's name constraints forbid the certificate's names",
        _ => return format!("certificate rejected: {name}"),
    };
    words.to_owned()
}

/// "12 days", "1 day", "3 hours" between two instants (`later` after `earlier`).
fn days_between(earlier: UnixTime, later: UnixTime) -> String {
    let secs = later.as_secs().saturating_sub(earlier.as_secs());
    match secs / DAY {
        0 => match secs / 3600 {
            1 => "1 hour".into(),
            h => format!("{h} hours"),
        },
        1 => "1 day".into(),
        d => format!("{d} days"),
    }
}

/// What the probe was doing when the handshake failed, for the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeContext {
    /// Implicit TLS: the handshake was the first thing on the connection.
    Implicit,
    /// After the server accepted STARTTLS.
    AfterStartTls,
}

/// Plain words for a failed handshake, with the likely fix where there is one.
pub fn handshake_error(err: &HandshakeError, context: HandshakeContext) -> String {
    let first = err.first_bytes();
    if let Some(text) = plaintext_prefix(first) {
        return match context {
            HandshakeContext::Implicit => format!(
                "the server answered in plaintext ({text:?}) instead of TLS: this port speaks STARTTLS, not implicit TLS; use --tls starttls"
            ),
            HandshakeContext::AfterStartTls => {
                format!(
                    "the server did not start TLS after agreeing to STARTTLS: it sent plaintext ({text:?})"
                )
            }
        };
    }
    match err {
        HandshakeError::Tls { error: Error::AlertReceived(alert), .. } => alert_words(*alert),
        HandshakeError::Tls { error: Error::PeerIncompatible(why), .. } => {
            format!("the server and smtptls share no TLS version or cipher suite ({why:?})")
        }
        // TLS records that rustls refused are not "not TLS": a 1 MiB certificate used to be
        // reported as plaintext garbage (tests/hostile.rs, a_one_megabyte_certificate_...).
        HandshakeError::Tls { error: Error::InvalidMessage(why), first_bytes } if starts_like_tls(first_bytes) => {
            invalid_tls_words(*why)
        }
        HandshakeError::Tls { error: Error::InvalidMessage(_), .. } => match context {
            HandshakeContext::AfterStartTls => "the server did not start TLS after agreeing to STARTTLS: what it sent is not TLS".into(),
            HandshakeContext::Implicit => "what the server sent is not TLS: if this port speaks STARTTLS, use --tls starttls".into(),
        },
        HandshakeError::Closed { .. } => match context {
            HandshakeContext::Implicit => "the server closed the connection during the TLS handshake (if this port speaks STARTTLS, use --tls starttls)".into(),
            HandshakeContext::AfterStartTls => "the server closed the connection during the TLS handshake".into(),
        },
        HandshakeError::Timeout => "the TLS handshake did not finish in time".into(),
        other => other.to_string(),
    }
}

fn alert_words(alert: AlertDescription) -> String {
    let hint = match alert {
        AlertDescription::ProtocolVersion => {
            ": the server does not accept the TLS version offered (see --tls-version)"
        }
        AlertDescription::HandshakeFailure | AlertDescription::InsufficientSecurity => {
            ": no TLS version or cipher suite in common"
        }
        AlertDescription::UnrecognisedName => {
            ": the server does not know the SNI name sent (see --sni / --no-sni)"
        }
        AlertDescription::CertificateRequired => ": the server requires a client certificate",
        _ => "",
    };
    format!("the server sent the TLS alert {alert:?}{hint}")
}

/// Whether `bytes` start like a TLS record: a content type (20 to 24), then major version 3.
fn starts_like_tls(bytes: &[u8]) -> bool {
    matches!(bytes, [0x14..=0x18, 0x03, ..])
}

/// Words for a TLS message rustls refused to decode.
fn invalid_tls_words(why: InvalidMessage) -> String {
    match why {
        InvalidMessage::HandshakePayloadTooLarge
        | InvalidMessage::CertificatePayloadTooLarge
        | InvalidMessage::MessageTooLarge => {
            "the server sent a TLS handshake message too large to accept (over 64 KiB: an oversized certificate or chain)".into()
        }
        other => format!("the server sent a malformed TLS message ({other:?})"),
    }
}

/// The start of `bytes` as text when it looks like an SMTP reply ("220 ..."), not a TLS record.
fn plaintext_prefix(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..3)?;
    if !head.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let line = bytes
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or(bytes);
    Some(String::from_utf8_lossy(line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::ServerName;

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[test]
    fn certificate_errors_in_words() {
        let table: Vec<(CertificateError, &str)> = vec![
            (
                CertificateError::ExpiredContext {
                    time: at(100 * DAY),
                    not_after: at(88 * DAY),
                },
                "certificate expired 12 days ago",
            ),
            (
                CertificateError::NotValidYetContext {
                    time: at(DAY),
                    not_before: at(4 * DAY),
                },
                "not valid yet: it starts in 3 days",
            ),
            (
                CertificateError::NotValidForNameContext {
                    expected: ServerName::try_from("mx.example.com").unwrap(),
                    presented: vec!["DnsName(\"other.example\")".into()],
                },
                "not valid for mx.example.com",
            ),
            (CertificateError::UnknownIssuer, "unknown authority"),
            (CertificateError::BadSignature, "signature does not verify"),
        ];
        for (err, want) in table {
            let text = certificate_error(&Error::InvalidCertificate(err.clone()));
            assert!(text.contains(want), "{err:?}: {text}");
        }
    }

    #[test]
    fn plaintext_greeting_names_the_fix() {
        let err = HandshakeError::Tls {
            error: Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            first_bytes: b"220 mx.example.com ESMTP\r\n".to_vec(),
        };
        let text = handshake_error(&err, HandshakeContext::Implicit);
        assert!(text.contains("--tls starttls"), "{text}");
        assert!(text.contains("220 mx.example.com ESMTP"), "{text}");
        let text = handshake_error(&err, HandshakeContext::AfterStartTls);
        assert!(text.contains("did not start TLS"), "{text}");
    }

    #[test]
    fn refused_tls_messages_are_not_called_plaintext() {
        let err = |why, first: &[u8]| HandshakeError::Tls {
            error: Error::InvalidMessage(why),
            first_bytes: first.to_vec(),
        };
        let record = [0x16, 0x03, 0x03, 0xff, 0xff];
        // (error, words expected, in both contexts)
        let table = [
            (
                err(InvalidMessage::HandshakePayloadTooLarge, &record),
                "too large to accept",
            ),
            (
                err(InvalidMessage::MessageTooShort, &record),
                "malformed TLS message (MessageTooShort)",
            ),
            (
                err(InvalidMessage::InvalidContentType, b"garbage"),
                "not TLS",
            ),
            (err(InvalidMessage::InvalidContentType, &[]), "not TLS"),
        ];
        for (error, want) in table {
            for context in [HandshakeContext::Implicit, HandshakeContext::AfterStartTls] {
                let text = handshake_error(&error, context);
                assert!(text.contains(want), "{error:?} {context:?}: {text}");
            }
        }
    }

    #[test]
    fn tls_records_are_not_mistaken_for_plaintext() {
        assert_eq!(plaintext_prefix(&[0x16, 0x03, 0x03, 0x00]), None);
        assert_eq!(plaintext_prefix(b"22"), None);
    }

    #[test]
    fn alerts_are_named() {
        let err = HandshakeError::Tls {
            error: Error::AlertReceived(AlertDescription::ProtocolVersion),
            first_bytes: vec![0x15, 0x03, 0x03],
        };
        let text = handshake_error(&err, HandshakeContext::AfterStartTls);
        assert!(
            text.contains("ProtocolVersion") && text.contains("--tls-version"),
            "{text}"
        );
    }
}
