//! The SERVER argument: a host name, an IPv4 address or a bracketed IPv6 address, optionally
//! followed by `:PORT` (RFC 3986 authority syntax, as admins type it).

use std::fmt;
use std::net::IpAddr;

/// The host part of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, as given (a trailing dot removed, lowercased).
    Name(String),
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// A parsed SERVER argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where to connect.
    pub host: Host,
    /// The port given after the colon, if any.
    pub port: Option<u16>,
}

/// Why a SERVER argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing was given.
    #[error("the server is empty")]
    Empty,
    /// The port is not a number from 1 to 65535.
    #[error("invalid port {0:?}: give a number from 1 to 65535")]
    Port(String),
    /// A bracket was opened and not closed, or the text inside is no IPv6 address.
    #[error("invalid IPv6 address {0:?}: write it in brackets, e.g. [2001:db8::1]:25")]
    Ipv6(String),
    /// The host name has characters a DNS name cannot have.
    #[error("invalid host name {0:?}")]
    Name(String),
}

impl std::str::FromStr for Target {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(TargetError::Empty);
        }
        if let Some(rest) = s.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| TargetError::Ipv6(s.to_owned()))?;
            let ip: std::net::Ipv6Addr = inside
                .parse()
                .map_err(|_| TargetError::Ipv6(s.to_owned()))?;
            let port = match after {
                "" => None,
                _ => Some(parse_port(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| TargetError::Ipv6(s.to_owned()))?,
                )?),
            };
            return Ok(Target {
                host: Host::Ip(IpAddr::V6(ip)),
                port,
            });
        }
        // A bare IPv6 literal is unambiguous only without a port.
        if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
            return Ok(Target {
                host: Host::Ip(IpAddr::V6(ip)),
                port: None,
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => (host, Some(parse_port(port)?)),
            None => (s, None),
        };
        if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            return Ok(Target {
                host: Host::Ip(IpAddr::V4(ip)),
                port,
            });
        }
        Ok(Target {
            host: Host::Name(parse_name(host)?),
            port,
        })
    }
}

fn parse_port(text: &str) -> Result<u16, TargetError> {
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(TargetError::Port(text.to_owned())),
    }
}

fn parse_name(text: &str) -> Result<String, TargetError> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(TargetError::Name(text.to_owned()));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn name(n: &str) -> Host {
        Host::Name(n.to_owned())
    }

    #[test]
    fn parses_every_form() {
        let v6 = |s: &str| Host::Ip(IpAddr::V6(s.parse::<Ipv6Addr>().unwrap()));
        let table: &[(&str, Host, Option<u16>)] = &[
            ("smtp.gmail.com", name("smtp.gmail.com"), None),
            ("Mail.Example.COM.", name("mail.example.com"), None),
            ("mail.example.com:25", name("mail.example.com"), Some(25)),
            ("localhost", name("localhost"), None),
            (
                "192.0.2.1",
                Host::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                None,
            ),
            (
                "192.0.2.1:465",
                Host::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                Some(465),
            ),
            ("[::1]", v6("::1"), None),
            ("[2001:db8::1]:587", v6("2001:db8::1"), Some(587)),
            ("2001:db8::1", v6("2001:db8::1"), None),
        ];
        for (input, host, port) in table {
            let target: Target = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&target.host, host, "{input}");
            assert_eq!(&target.port, port, "{input}");
        }
    }

    #[test]
    fn refuses_bad_forms() {
        let table = [
            ("", TargetError::Empty),
            ("host:0", TargetError::Port("0".into())),
            ("host:70000", TargetError::Port("70000".into())),
            ("host:", TargetError::Port(String::new())),
            ("[::1", TargetError::Ipv6("[::1".into())),
            ("[nope]:25", TargetError::Ipv6("[nope]:25".into())),
            ("[::1]25", TargetError::Ipv6("[::1]25".into())),
            ("bad host", TargetError::Name("bad host".into())),
            ("a..b", TargetError::Name("a..b".into())),
            ("evil\r\nRCPT", TargetError::Name("evil\r\nRCPT".into())),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Target>(), Err(want), "{input:?}");
        }
    }

    #[test]
    fn displays_for_messages() {
        assert_eq!(
            "[::1]:25".parse::<Target>().unwrap().host.to_string(),
            "[::1]"
        );
        assert_eq!(
            "10.0.0.1".parse::<Target>().unwrap().host.to_string(),
            "10.0.0.1"
        );
    }
}
