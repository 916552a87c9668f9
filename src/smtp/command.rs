//! SMTP commands as values whose `Display` is their wire form (RFC 5321 §4.1).
//!
//! Arguments come from the command line or the local host name; [`Command::validate`] refuses any
//! that would break the line (CR, LF or another control character would let an argument inject
//! further commands) or that the grammar of RFC 5321 §4.1.2 and §4.1.3 does not allow.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest EHLO/HELO argument accepted, in bytes (a domain is at most 255 octets, §4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest address accepted, in bytes (a path is at most 256 octets, §4.5.3.1.3).
pub const MAX_ADDRESS_LEN: usize = 256;
/// Longest label of a domain, in bytes (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// One SMTP command. `Display` writes it as sent, CRLF included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO name` (§4.1.1.1): the client's domain or address literal.
    Ehlo(String),
    /// `HELO name` (§4.1.1.1), for servers that do not know EHLO.
    Helo(String),
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `MAIL FROM:<addr>` (§4.1.1.2); an empty address is the null reverse path `<>`.
    MailFrom(String),
    /// `RCPT TO:<addr>` (§4.1.1.3).
    RcptTo(String),
    /// `RSET` (§4.1.1.5).
    Rset,
    /// `NOOP` (§4.1.1.9).
    Noop,
    /// `QUIT` (§4.1.1.10).
    Quit,
}

impl Command {
    /// The command verb, e.g. `"MAIL"` for `MAIL FROM:<...>`.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Ehlo(_) => "EHLO",
            Self::Helo(_) => "HELO",
            Self::StartTls => "STARTTLS",
            Self::MailFrom(_) => "MAIL",
            Self::RcptTo(_) => "RCPT",
            Self::Rset => "RSET",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
        }
    }

    /// Checks the argument: a valid EHLO/HELO name, or an address that cannot break the line.
    /// A recipient must not be empty; a sender may be (the null reverse path).
    pub fn validate(&self) -> Result<(), CommandError> {
        match self {
            Self::Ehlo(name) | Self::Helo(name) => validate_domain(name),
            Self::MailFrom(addr) => validate_address(addr),
            Self::RcptTo(addr) if addr.is_empty() => Err(CommandError::EmptyRecipient),
            Self::RcptTo(addr) => validate_address(addr),
            Self::StartTls | Self::Rset | Self::Noop | Self::Quit => Ok(()),
        }
    }
}

/// The wire form: `"EHLO mx.example\r\n"`, `"MAIL FROM:<a@b.example>\r\n"` (no space after the
/// colon, §4.1.1.2), ... It does not validate: call [`Command::validate`] first.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ehlo(name) | Self::Helo(name) => write!(f, "{} {name}\r\n", self.verb()),
            Self::MailFrom(addr) => write!(f, "MAIL FROM:<{addr}>\r\n"),
            Self::RcptTo(addr) => write!(f, "RCPT TO:<{addr}>\r\n"),
            Self::StartTls | Self::Rset | Self::Noop | Self::Quit => {
                write!(f, "{}\r\n", self.verb())
            }
        }
    }
}

/// Why a command argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The argument contains a control character such as CR or LF.
    #[error("control character {ch:?} at byte {at}: it could inject commands")]
    ControlChar {
        /// The character.
        ch: char,
        /// Its byte offset in the argument.
        at: usize,
    },
    /// The EHLO/HELO name is empty.
    #[error("the EHLO name is empty")]
    EmptyDomain,
    /// The EHLO/HELO name is longer than [`MAX_DOMAIN_LEN`].
    #[error(
        "the EHLO name is {len} bytes long; at most {} are allowed",
        MAX_DOMAIN_LEN
    )]
    DomainTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The EHLO/HELO name is neither a domain nor an address literal.
    #[error("{name:?} is not a valid EHLO name: {reason}")]
    InvalidDomain {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The address is longer than [`MAX_ADDRESS_LEN`].
    #[error(
        "the address is {len} bytes long; at most {} are allowed",
        MAX_ADDRESS_LEN
    )]
    AddressTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The address contains `<` or `>`, which would break the `<...>` path.
    #[error("the address contains {ch:?} at byte {at}; give it without angle brackets")]
    AngleBracket {
        /// The bracket.
        ch: char,
        /// Its byte offset in the address.
        at: usize,
    },
    /// `RCPT TO:<>` names no recipient.
    #[error("the recipient address is empty")]
    EmptyRecipient,
}

/// Checks an EHLO/HELO argument: non-empty, at most 255 bytes, no control character or space;
/// a domain (letters, digits, hyphens and dots; underscores tolerated) or an address literal
/// such as `[192.0.2.1]` or `[IPv6:2001:db8::1]` (§4.1.3).
pub fn validate_domain(name: &str) -> Result<(), CommandError> {
    reject_controls(name)?;
    if name.is_empty() {
        return Err(CommandError::EmptyDomain);
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(CommandError::DomainTooLong { len: name.len() });
    }
    let reason = match name.strip_prefix('[') {
        Some(literal) => address_literal_fault(literal),
        None => domain_fault(name),
    };
    match reason {
        Some(reason) => Err(CommandError::InvalidDomain {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a MAIL FROM or RCPT TO address: no control character, no `<` or `>`, at most 256 bytes.
/// Empty is allowed (`MAIL FROM:<>`, the null reverse path).
pub fn validate_address(addr: &str) -> Result<(), CommandError> {
    reject_controls(addr)?;
    if let Some((at, ch)) = addr.char_indices().find(|&(_, c)| matches!(c, '<' | '>')) {
        return Err(CommandError::AngleBracket { ch, at });
    }
    if addr.len() > MAX_ADDRESS_LEN {
        return Err(CommandError::AddressTooLong { len: addr.len() });
    }
    Ok(())
}

/// Refuses C0 controls (CR and LF among them), DEL and C1 controls.
fn reject_controls(arg: &str) -> Result<(), CommandError> {
    match arg.char_indices().find(|&(_, c)| c.is_control()) {
        Some((at, ch)) => Err(CommandError::ControlChar { ch, at }),
        None => Ok(()),
    }
}

/// What is wrong with `name` as a domain (§4.1.2 `Domain`), if anything.
fn domain_fault(name: &str) -> Option<&'static str> {
    if name.contains(' ') {
        return Some("it contains a space");
    }
    if !name.is_ascii() {
        return Some("it is not ASCII; give an internationalized name in its xn-- form");
    }
    for label in name.split('.') {
        let fault = if label.is_empty() {
            "it has an empty label (a leading, trailing or doubled dot)"
        } else if label.len() > MAX_LABEL_LEN {
            "a label is longer than 63 bytes"
        } else if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            "only letters, digits, hyphens, underscores and dots are allowed"
        } else if label.starts_with('-') || label.ends_with('-') {
            "a label starts or ends with a hyphen"
        } else {
            continue;
        };
        return Some(fault);
    }
    None
}

/// What is wrong with an address literal (§4.1.3), given without its opening bracket.
///
/// IPv4 and `IPv6:` literals only: no other Standardized-tag has ever been registered.
fn address_literal_fault(literal: &str) -> Option<&'static str> {
    let Some(inner) = literal.strip_suffix(']') else {
        return Some("an address literal must end with ']'");
    };
    if inner.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    match inner.split_at_checked(5) {
        Some((tag, addr)) if tag.eq_ignore_ascii_case("IPv6:") => match addr.parse::<Ipv6Addr>() {
            Ok(_) => None,
            Err(_) => Some("the IPv6 address in the literal does not parse"),
        },
        _ if inner.parse::<Ipv6Addr>().is_ok() => {
            Some("an IPv6 address literal needs the tag, as in [IPv6:2001:db8::1]")
        }
        _ => Some("an address literal must hold an IPv4 address or IPv6: and an IPv6 address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let cases = [
            (
                Command::Ehlo("client.example".into()),
                "EHLO client.example\r\n",
                "EHLO",
            ),
            (
                Command::Helo("[192.0.2.1]".into()),
                "HELO [192.0.2.1]\r\n",
                "HELO",
            ),
            (Command::StartTls, "STARTTLS\r\n", "STARTTLS"),
            (
                Command::MailFrom("a@b.example".into()),
                "MAIL FROM:<a@b.example>\r\n",
                "MAIL",
            ),
            (Command::MailFrom(String::new()), "MAIL FROM:<>\r\n", "MAIL"),
            (
                Command::RcptTo("postmaster".into()),
                "RCPT TO:<postmaster>\r\n",
                "RCPT",
            ),
            (Command::Rset, "RSET\r\n", "RSET"),
            (Command::Noop, "NOOP\r\n", "NOOP"),
            (Command::Quit, "QUIT\r\n", "QUIT"),
        ];
        for (command, wire, verb) in cases {
            assert_eq!(command.to_string(), wire);
            assert_eq!(command.verb(), verb);
            assert_eq!(command.validate(), Ok(()), "{command:?}");
        }
    }

    #[test]
    fn validate_rejects_injection() {
        use CommandError::*;
        let cases = [
            (
                Command::Ehlo("a.example\r\nQUIT".into()),
                ControlChar { ch: '\r', at: 9 },
            ),
            (
                Command::Helo("a\nb".into()),
                ControlChar { ch: '\n', at: 1 },
            ),
            (
                Command::MailFrom("a@b\r\nRCPT TO:<x>".into()),
                ControlChar { ch: '\r', at: 3 },
            ),
            (
                Command::RcptTo("x@y\0".into()),
                ControlChar { ch: '\0', at: 3 },
            ),
            (
                Command::RcptTo("x\u{85}@y".into()),
                ControlChar {
                    ch: '\u{85}',
                    at: 1,
                },
            ),
            (
                Command::RcptTo("x@y>\r\n".into()),
                ControlChar { ch: '\r', at: 4 },
            ),
            (
                Command::RcptTo("x@y> NOTIFY=NEVER".into()),
                AngleBracket { ch: '>', at: 3 },
            ),
            (
                Command::MailFrom("<a@b>".into()),
                AngleBracket { ch: '<', at: 0 },
            ),
            (Command::RcptTo(String::new()), EmptyRecipient),
            (Command::Ehlo(String::new()), EmptyDomain),
        ];
        for (command, want) in cases {
            assert_eq!(command.validate(), Err(want), "{command:?}");
        }
    }

    #[test]
    fn domains() {
        let long_label = format!("{}.example", "a".repeat(64));
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
        ]
        .join(".");
        let too_long = format!("{longest}e");
        let good = [
            "localhost",
            "mx.example",
            "MX-1.Example.COM",
            "my_host.example",
            "123.example",
            "xn--bcher-kva.example",
            longest.as_str(),
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "[ipv6:::1]",
            "[IPv6:::ffff:192.0.2.1]",
        ];
        for name in good {
            assert_eq!(validate_domain(name), Ok(()), "{name}");
        }
        let bad = [
            "a b",
            " mx.example",
            "mx..example",
            ".mx.example",
            "mx.example.",
            "-mx.example",
            "mx-.example",
            "mx.ex@mple",
            "mx/example",
            "bücher.example",
            long_label.as_str(),
            "[192.0.2.1",
            "[192.0.2.256]",
            "[2001:db8::1]",
            "[IPv6:2001:db8::g]",
            "[IPv6:192.0.2.1]",
            "[]",
            "[:x]",
            "[tag:]",
            "[tag:a]b]",
            "[tag:a b]",
            "[x-tag:some-thing]",
            "[IPv6:]",
            "[IPv6]",
            "[ééééé]",
        ];
        for name in bad {
            let got = validate_domain(name);
            assert!(
                matches!(got, Err(CommandError::InvalidDomain { .. })),
                "{name}: {got:?}"
            );
        }
        assert_eq!(
            validate_domain(&too_long),
            Err(CommandError::DomainTooLong { len: 256 })
        );
        assert_eq!(
            validate_domain("a\tb"),
            Err(CommandError::ControlChar { ch: '\t', at: 1 })
        );
    }

    #[test]
    fn addresses() {
        let longest = format!("{}@example", "a".repeat(MAX_ADDRESS_LEN - 8));
        let good = [
            "",
            "a@b.example",
            "Postmaster",
            "\"john doe\"@example",
            "用户@例子.广告",
            &longest,
        ];
        for addr in good {
            assert_eq!(validate_address(addr), Ok(()), "{addr}");
        }
        let too_long = format!("a{longest}");
        assert_eq!(
            validate_address(&too_long),
            Err(CommandError::AddressTooLong { len: 257 })
        );
        assert_eq!(
            validate_address("a@b\x7f"),
            Err(CommandError::ControlChar { ch: '\x7f', at: 3 })
        );
    }

    #[test]
    fn error_messages() {
        let cases = [
            (
                validate_domain("a\r\nQUIT"),
                "control character '\\r' at byte 1: it could inject commands",
            ),
            (
                validate_domain("a..b"),
                "\"a..b\" is not a valid EHLO name: it has an empty label (a leading, trailing or doubled dot)",
            ),
            (
                validate_address("<a>"),
                "the address contains '<' at byte 0; give it without angle brackets",
            ),
            (
                Command::RcptTo(String::new()).validate(),
                "the recipient address is empty",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got.unwrap_err().to_string(), want);
        }
    }
}
