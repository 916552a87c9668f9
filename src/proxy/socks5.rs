//! The SOCKS version 5 client exchange over a connected `TcpStream`: method negotiation and
//! CONNECT (RFC 1928 §3–§6) and username/password authentication (RFC 1929 §2). Every read and
//! write is bounded by the caller's deadline, so a proxy that accepts and never answers cannot
//! hang a probe. The messages are built and read by small pure functions, tested on their own.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Instant;

use zeroize::Zeroizing;

use super::{PASSWORD_VAR, ProxyAuth};
use crate::net::describe_io;

const VERSION: u8 = 5;
/// RFC 1929 §2: the sub-negotiation's own version.
const AUTH_VERSION: u8 = 1;
const NO_AUTH: u8 = 0x00;
const USER_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xFF;
const CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_NAME: u8 = 0x03;
const ATYP_V6: u8 = 0x04;

/// Where the proxy is asked to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An address smtptls resolved (ATYP 1 or 4).
    Addr(SocketAddr),
    /// A name for the proxy to resolve (ATYP 3), and the port.
    Name(String, u16),
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Addr(addr) => write!(f, "{addr}"),
            Destination::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// What went wrong in the exchange with the proxy.
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    /// A read or write failed or timed out.
    #[error("{}", io_words(stage, source))]
    Io {
        /// The step: "greeting", "authentication" or "CONNECT".
        stage: &'static str,
        /// What the socket said.
        source: io::Error,
    },
    /// The proxy closed the connection before it answered.
    #[error("the proxy closed the connection without answering the {stage}")]
    Closed {
        /// The step.
        stage: &'static str,
    },
    /// The first byte of the answer is no SOCKS version 5.
    #[error("{}", not_socks5(*first))]
    NotSocks5 {
        /// That byte.
        first: u8,
    },
    /// The proxy accepted none of the authentication methods offered.
    #[error("{}", if *offered_password {
        "the proxy accepts none of the authentication methods offered (none, username/password)".to_owned()
    } else {
        format!("the proxy requires authentication: give the user in the URL (socks5://USER@HOST) and the password in {PASSWORD_VAR}")
    })]
    NoAcceptableMethod {
        /// Whether username/password was among them.
        offered_password: bool,
    },
    /// The proxy refused the user name or password (RFC 1929 status not 0).
    #[error("the proxy rejected user {user:?} or its password (RFC 1929 status {status})")]
    AuthRejected {
        /// The user name sent.
        user: String,
        /// The status byte.
        status: u8,
    },
    /// The answer breaks RFC 1928 or RFC 1929.
    #[error("the proxy broke the SOCKS5 protocol: {0}")]
    Protocol(String),
    /// The proxy answered CONNECT with a failure.
    #[error("{}", reply_words(*code, *name))]
    Reply {
        /// The REP field.
        code: u8,
        /// Whether a name was sent (ATYP 3).
        name: bool,
    },
}

impl SocksError {
    /// Whether the proxy answered CONNECT for this destination: another address may still work.
    pub fn is_reply(&self) -> bool {
        matches!(self, SocksError::Reply { .. })
    }

    /// Whether the deadline ran out.
    pub fn timed_out(&self) -> bool {
        matches!(self, SocksError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

/// RFC 1928 §6's reply codes in plain words.
pub fn reply_words(code: u8, name: bool) -> String {
    let words = match code {
        1 => "the proxy failed: general SOCKS server failure",
        2 => "the proxy refused: connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the target",
        6 => "TTL expired: the proxy's connection to the target timed out",
        7 => "the proxy does not support the CONNECT command",
        8 if name => {
            "the proxy does not accept host names (address type not supported): use socks5:// so that smtptls resolves the name"
        }
        8 => "the proxy does not support this address type",
        _ => "the proxy failed with an unknown reply",
    };
    format!("{words} (SOCKS reply {code})")
}

fn io_words(stage: &str, err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("timed out waiting for the proxy to answer the {stage}")
        }
        _ => format!("{} during the {stage}", describe_io(err)),
    }
}

fn not_socks5(first: u8) -> String {
    let shown = if first.is_ascii_graphic() {
        format!("{first:#04x} ({:?})", char::from(first))
    } else {
        format!("{first:#04x}")
    };
    let hint = match first {
        b'H' => ": is it an HTTP proxy?",
        4 => ": is it a SOCKS4 proxy?",
        _ => "",
    };
    format!("the proxy does not speak SOCKS5: its answer begins with {shown}{hint}")
}

/// The method-selection message (RFC 1928 §3): no authentication, and username/password when
/// there are credentials.
pub fn greeting(with_password: bool) -> Vec<u8> {
    if with_password {
        vec![VERSION, 2, NO_AUTH, USER_PASSWORD]
    } else {
        vec![VERSION, 1, NO_AUTH]
    }
}

/// The username/password request (RFC 1929 §2), wiped from memory when dropped.
pub fn auth_request(auth: &ProxyAuth) -> Result<Zeroizing<Vec<u8>>, SocksError> {
    let user = auth.user.as_bytes();
    let password = auth.password.expose().as_bytes();
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(password.len())) else {
        return Err(SocksError::Protocol(
            "the user name or password is longer than 255 bytes".into(),
        ));
    };
    let mut request = Zeroizing::new(Vec::with_capacity(3 + user.len() + password.len()));
    request.extend_from_slice(&[AUTH_VERSION, ulen]);
    request.extend_from_slice(user);
    request.push(plen);
    request.extend_from_slice(password);
    Ok(request)
}

/// The CONNECT request (RFC 1928 §4–§5).
pub fn connect_request(destination: &Destination) -> Result<Vec<u8>, SocksError> {
    let mut request = vec![VERSION, CONNECT, 0];
    let port = match destination {
        Destination::Addr(SocketAddr::V4(addr)) => {
            request.push(ATYP_V4);
            request.extend_from_slice(&addr.ip().octets());
            addr.port()
        }
        Destination::Addr(SocketAddr::V6(addr)) => {
            request.push(ATYP_V6);
            request.extend_from_slice(&addr.ip().octets());
            addr.port()
        }
        Destination::Name(name, port) => {
            let len = u8::try_from(name.len())
                .ok()
                .filter(|len| *len > 0)
                .ok_or_else(|| SocksError::Protocol("a host name must be 1 to 255 bytes".into()))?;
            request.extend_from_slice(&[ATYP_NAME, len]);
            request.extend_from_slice(name.as_bytes());
            *port
        }
    };
    request.extend_from_slice(&port.to_be_bytes());
    Ok(request)
}

/// Runs the exchange on `stream`, connected to the proxy, before `deadline`: greeting,
/// authentication when the proxy asks for it, CONNECT. Returns the proxy's bound address
/// (BND.ADDR: the address it connects to the target from), when it gives an IP address.
pub fn handshake(
    stream: &TcpStream,
    auth: Option<&ProxyAuth>,
    destination: &Destination,
    deadline: Instant,
) -> Result<Option<SocketAddr>, SocksError> {
    let mut io = Timed { stream, deadline };
    io.write("greeting", &greeting(auth.is_some()))?;
    let [version, method] = io.read::<2>("greeting")?;
    if version != VERSION {
        return Err(SocksError::NotSocks5 { first: version });
    }
    match (method, auth) {
        (NO_AUTH, _) => {}
        (USER_PASSWORD, Some(auth)) => authenticate(&mut io, auth)?,
        (NO_ACCEPTABLE, _) => {
            return Err(SocksError::NoAcceptableMethod {
                offered_password: auth.is_some(),
            });
        }
        (other, _) => {
            return Err(SocksError::Protocol(format!(
                "it chose authentication method {other:#04x}, which was not offered"
            )));
        }
    }
    io.write("CONNECT", &connect_request(destination)?)?;
    let [version, code, _reserved, atyp] = io.read::<4>("CONNECT")?;
    if version != VERSION {
        return Err(SocksError::Protocol(format!(
            "its CONNECT reply has version {version}, not 5"
        )));
    }
    if code != 0 {
        return Err(SocksError::Reply {
            code,
            name: matches!(destination, Destination::Name(..)),
        });
    }
    bound_address(&mut io, atyp)
}

fn authenticate(io: &mut Timed<'_>, auth: &ProxyAuth) -> Result<(), SocksError> {
    io.write("authentication", &auth_request(auth)?)?;
    let [version, status] = io.read::<2>("authentication")?;
    if version != AUTH_VERSION {
        return Err(SocksError::Protocol(format!(
            "its authentication reply has version {version}, not 1"
        )));
    }
    if status != 0 {
        return Err(SocksError::AuthRejected {
            user: auth.user.clone(),
            status,
        });
    }
    Ok(())
}

/// Reads BND.ADDR and BND.PORT, the rest of a successful CONNECT reply; nothing more is read,
/// so the next byte on the stream is the target's.
fn bound_address(io: &mut Timed<'_>, atyp: u8) -> Result<Option<SocketAddr>, SocksError> {
    let ip = match atyp {
        ATYP_V4 => Some(IpAddr::V4(Ipv4Addr::from(io.read::<4>("CONNECT")?))),
        ATYP_V6 => Some(IpAddr::V6(Ipv6Addr::from(io.read::<16>("CONNECT")?))),
        ATYP_NAME => {
            let [len] = io.read::<1>("CONNECT")?;
            let mut name = vec![0; usize::from(len)];
            io.read_into("CONNECT", &mut name)?;
            None
        }
        other => {
            return Err(SocksError::Protocol(format!(
                "its CONNECT reply has address type {other}"
            )));
        }
    };
    let port = u16::from_be_bytes(io.read::<2>("CONNECT")?);
    Ok(ip.map(|ip| SocketAddr::new(ip, port)))
}

/// The stream, with each read and write bounded by what is left before the deadline.
struct Timed<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl Timed<'_> {
    fn left(&self, stage: &'static str) -> Result<std::time::Duration, SocksError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SocksError::Io {
                stage,
                source: io::ErrorKind::TimedOut.into(),
            });
        }
        Ok(left)
    }

    fn write(&mut self, stage: &'static str, bytes: &[u8]) -> Result<(), SocksError> {
        let io_err = |source: io::Error| match source.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                SocksError::Closed { stage }
            }
            _ => SocksError::Io { stage, source },
        };
        self.stream
            .set_write_timeout(Some(self.left(stage)?))
            .map_err(io_err)?;
        self.stream.write_all(bytes).map_err(io_err)
    }

    fn read<const N: usize>(&mut self, stage: &'static str) -> Result<[u8; N], SocksError> {
        let mut buf = [0; N];
        self.read_into(stage, &mut buf)?;
        Ok(buf)
    }

    fn read_into(&mut self, stage: &'static str, buf: &mut [u8]) -> Result<(), SocksError> {
        let mut filled = 0;
        while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
            let left = self.left(stage)?;
            let io_err = |source| SocksError::Io { stage, source };
            self.stream.set_read_timeout(Some(left)).map_err(io_err)?;
            match self.stream.read(rest) {
                Ok(0) => return Err(SocksError::Closed { stage }),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(SocksError::Closed { stage });
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
