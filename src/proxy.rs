//! `--proxy`: the SOCKS5 proxy a probe connects through — its URL (`socks5://` or `socks5h://`,
//! RFC 3986 authority syntax) and the credentials for RFC 1929 username/password authentication.
//! The wire protocol (RFC 1928 greeting and CONNECT, RFC 1929 sub-negotiation) is in [`socks5`].
//!
//! The password never appears on the command line (where `ps` and shell history keep it): the URL
//! carries the user name only, and the password comes from `SMTPTLS_PROXY_PASSWORD`. It is held in
//! a [`Secret`], and [`Proxy`]'s `Display` shows neither the user nor the password.

pub mod socks5;

use std::fmt;

use crate::secret::Secret;
use crate::target::{Host, Target, TargetError};

/// The environment variable that holds the proxy password.
pub const PASSWORD_VAR: &str = "SMTPTLS_PROXY_PASSWORD";

/// The port a SOCKS proxy listens on unless the URL says otherwise (RFC 1928 §3).
pub const DEFAULT_PORT: u16 = 1080;

/// Who resolves the target's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `socks5://`: smtptls resolves it and asks the proxy for each address in turn.
    Local,
    /// `socks5h://`: the name is sent to the proxy, which resolves it.
    Remote,
}

/// RFC 1929 credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    /// The user name, from the URL (percent-decoded).
    pub user: String,
    /// The password, from `SMTPTLS_PROXY_PASSWORD`.
    pub password: Secret,
}

/// A SOCKS5 proxy to connect through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's host.
    pub host: Host,
    /// The proxy's port.
    pub port: u16,
    /// Who resolves the target's name.
    pub resolution: Resolution,
    /// Username/password authentication, when the URL names a user.
    pub auth: Option<ProxyAuth>,
}

impl Proxy {
    /// The scheme as typed: `socks5` or `socks5h`.
    pub fn scheme(&self) -> &'static str {
        match self.resolution {
            Resolution::Local => "socks5",
            Resolution::Remote => "socks5h",
        }
    }

    /// `HOST:PORT` (IPv6 in brackets), for messages.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Parses `socks5://[USER@]HOST[:PORT]` or `socks5h://…`; `password` is the value of
    /// `SMTPTLS_PROXY_PASSWORD`, used when the URL names a user.
    pub fn parse(url: &str, password: Option<Secret>) -> Result<Self, ProxyUrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(ProxyUrlError::Form)?;
        let resolution = match scheme.to_ascii_lowercase().as_str() {
            "socks5" => Resolution::Local,
            "socks5h" => Resolution::Remote,
            _ => return Err(ProxyUrlError::Scheme(printable(scheme))),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(ProxyUrlError::Path);
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let auth = match userinfo {
            None => None,
            Some(userinfo) => Some(credentials(userinfo, password)?),
        };
        if hostport.is_empty() {
            return Err(ProxyUrlError::NoHost);
        }
        let target: Target = hostport.parse().map_err(ProxyUrlError::Host)?;
        Ok(Proxy {
            host: target.host,
            port: target.port.unwrap_or(DEFAULT_PORT),
            resolution,
            auth,
        })
    }
}

impl fmt::Display for Proxy {
    /// `socks5://HOST:PORT` or `socks5h://HOST:PORT`: never the user or the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.endpoint())
    }
}

/// Why a `--proxy` URL was refused. No variant carries the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyUrlError {
    /// No `scheme://`.
    #[error("give a URL: socks5://HOST[:PORT] or socks5h://HOST[:PORT]")]
    Form,
    /// Not socks5 or socks5h.
    #[error(
        "unsupported proxy scheme {0:?}: smtptls speaks SOCKS5 only; use socks5:// (smtptls resolves the server's name) or socks5h:// (the proxy does)"
    )]
    Scheme(String),
    /// A path, query or fragment after the authority.
    #[error("a proxy URL has no path, query or fragment: socks5://HOST[:PORT]")]
    Path,
    /// Nothing after `scheme://` (or after `user@`).
    #[error("the proxy host is missing: socks5://HOST[:PORT]")]
    NoHost,
    /// The host or port is malformed.
    #[error("proxy {0}")]
    Host(TargetError),
    /// `user:password@` in the URL.
    #[error(
        "a password in the proxy URL would show in `ps` and in shell history: give only the user (socks5://USER@HOST) and put the password in {PASSWORD_VAR}"
    )]
    PasswordInUrl,
    /// A user in the URL, and no password in the environment.
    #[error("the proxy URL names a user; put the password in {PASSWORD_VAR}")]
    NoPassword,
    /// A user name or password RFC 1929 cannot carry.
    #[error("the proxy {0} must be 1 to 255 bytes (RFC 1929)")]
    Length(&'static str),
    /// A malformed `%XX` escape in the user name.
    #[error("the proxy user name has a malformed %-escape")]
    Escape,
}

fn credentials(userinfo: &str, password: Option<Secret>) -> Result<ProxyAuth, ProxyUrlError> {
    if userinfo.contains(':') {
        return Err(ProxyUrlError::PasswordInUrl);
    }
    let user = percent_decode(userinfo)?;
    if user.is_empty() || user.len() > 255 {
        return Err(ProxyUrlError::Length("user name"));
    }
    let password = password.ok_or(ProxyUrlError::NoPassword)?;
    if password.is_empty() || password.expose().len() > 255 {
        return Err(ProxyUrlError::Length("password"));
    }
    Ok(ProxyAuth { user, password })
}

/// RFC 3986 §2.1 percent-decoding, so a user name can hold `@` or `:` (`me%40example.com`).
fn percent_decode(text: &str) -> Result<String, ProxyUrlError> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%' {
            let hex = tail.get(..2).ok_or(ProxyUrlError::Escape)?;
            let text = std::str::from_utf8(hex).map_err(|_| ProxyUrlError::Escape)?;
            bytes.push(u8::from_str_radix(text, 16).map_err(|_| ProxyUrlError::Escape)?);
            rest = tail.get(2..).unwrap_or_default();
        } else {
            bytes.push(first);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| ProxyUrlError::Escape)
}

/// A scheme for an error message: printable ASCII only, at most 20 characters.
fn printable(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_graphic)
        .take(20)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn pw(text: &str) -> Option<Secret> {
        Some(Secret::new(text))
    }

    #[test]
    fn parses_every_form() {
        let v4 = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let v6 = Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let name = |n: &str| Host::Name(n.to_owned());
        let table: &[(&str, Host, u16, Resolution)] = &[
            (
                "socks5://127.0.0.1:1081",
                v4.clone(),
                1081,
                Resolution::Local,
            ),
            ("socks5://127.0.0.1", v4.clone(), 1080, Resolution::Local),
            ("socks5://127.0.0.1:1081/", v4, 1081, Resolution::Local),
            ("socks5h://[::1]:9050", v6.clone(), 9050, Resolution::Remote),
            ("socks5h://[::1]", v6, 1080, Resolution::Remote),
            (
                "SOCKS5H://Proxy.Example.NET:1",
                name("proxy.example.net"),
                1,
                Resolution::Remote,
            ),
            ("socks5://proxy", name("proxy"), 1080, Resolution::Local),
        ];
        for (url, host, port, resolution) in table {
            let proxy = Proxy::parse(url, None).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(&proxy.host, host, "{url}");
            assert_eq!(proxy.port, *port, "{url}");
            assert_eq!(proxy.resolution, *resolution, "{url}");
            assert_eq!(proxy.auth, None, "{url}");
        }
    }

    #[test]
    fn refuses_bad_urls() {
        let table: &[(&str, Option<Secret>, ProxyUrlError)] = &[
            ("127.0.0.1:1080", None, ProxyUrlError::Form),
            (
                "http://127.0.0.1:3128",
                None,
                ProxyUrlError::Scheme("http".into()),
            ),
            (
                "socks4://127.0.0.1",
                None,
                ProxyUrlError::Scheme("socks4".into()),
            ),
            ("socks5://", None, ProxyUrlError::NoHost),
            ("socks5://alice@", pw("x"), ProxyUrlError::NoHost),
            ("socks5://h:1080/path", None, ProxyUrlError::Path),
            ("socks5://h?x=1", None, ProxyUrlError::Path),
            (
                "socks5://h:0",
                None,
                ProxyUrlError::Host(TargetError::Port("0".into())),
            ),
            (
                "socks5://h:99999",
                None,
                ProxyUrlError::Host(TargetError::Port("99999".into())),
            ),
            (
                "socks5://[::1",
                None,
                ProxyUrlError::Host(TargetError::Ipv6("[::1".into())),
            ),
            (
                "socks5://bad host",
                None,
                ProxyUrlError::Host(TargetError::Name("bad host".into())),
            ),
            (
                "socks5://alice:hunter2@h",
                pw("x"),
                ProxyUrlError::PasswordInUrl,
            ),
            ("socks5://alice@h", None, ProxyUrlError::NoPassword),
            (
                "socks5://alice@h",
                pw(""),
                ProxyUrlError::Length("password"),
            ),
            (
                "socks5://alice@h",
                Some(Secret::new("p".repeat(256))),
                ProxyUrlError::Length("password"),
            ),
            ("socks5://@h", pw("x"), ProxyUrlError::Length("user name")),
            (
                &format!("socks5://{}@h", "u".repeat(256)),
                pw("x"),
                ProxyUrlError::Length("user name"),
            ),
            ("socks5://al%4@h", pw("x"), ProxyUrlError::Escape),
            ("socks5://al%zz@h", pw("x"), ProxyUrlError::Escape),
        ];
        for (url, password, want) in table {
            assert_eq!(
                Proxy::parse(url, password.clone()).as_ref(),
                Err(want),
                "{url}"
            );
        }
    }

    #[test]
    fn user_from_the_url_password_from_the_environment() {
        let proxy = Proxy::parse("socks5h://me%40example.com@[::1]:1081", pw("s3cret")).unwrap();
        let auth = proxy.auth.as_ref().unwrap();
        assert_eq!(auth.user, "me@example.com");
        assert_eq!(auth.password.expose(), "s3cret");
        // A password in the environment without a user in the URL is not used.
        assert_eq!(Proxy::parse("socks5://h", pw("s3cret")).unwrap().auth, None);
    }

    #[test]
    fn the_password_never_prints() {
        let proxy = Proxy::parse("socks5://alice@127.0.0.1:1081", pw("hunter2")).unwrap();
        assert_eq!(proxy.to_string(), "socks5://127.0.0.1:1081");
        assert_eq!(proxy.endpoint(), "127.0.0.1:1081");
        let debug = format!("{proxy:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redacted"), "{debug}");
        let error = Proxy::parse("socks5://alice:hunter2@h", None).unwrap_err();
        for text in [error.to_string(), format!("{error:?}")] {
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn ipv6_proxy_displays_in_brackets() {
        let proxy = Proxy::parse("socks5h://[2001:db8::1]:1081", None).unwrap();
        assert_eq!(proxy.to_string(), "socks5h://[2001:db8::1]:1081");
    }
}
