//! Name resolution and TCP connection within one deadline, trying each address in turn —
//! directly, or through a SOCKS5 proxy (RFC 1928, see [`crate::proxy`]).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::proxy::socks5::{self, Destination};
use crate::proxy::{Proxy, Resolution};
use crate::target::Host;

/// Which address families may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6, in the resolver's order.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    fn allows(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The name did not resolve.
    #[error("could not resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// The name resolved, but to no address of the wanted family.
    #[error("{host} has no {family} address (resolved to: {found})")]
    NoAddress {
        /// The name.
        host: String,
        /// "IPv4" or "IPv6".
        family: &'static str,
        /// What it did resolve to.
        found: String,
    },
    /// Every address was tried and none accepted the connection in time.
    #[error("could not connect to {host} port {port}: {attempts}")]
    Failed {
        /// The host as given.
        host: String,
        /// The port.
        port: u16,
        /// Each address tried and what happened, joined with "; ".
        attempts: String,
        /// Whether the last failure was a timeout.
        timed_out: bool,
    },
    /// The SOCKS5 proxy could not be reached, failed, or could not connect to the target.
    #[error("could not connect to {host} port {port} through the SOCKS5 proxy {proxy}: {detail}")]
    Proxy {
        /// The host as given.
        host: String,
        /// The port.
        port: u16,
        /// The proxy's `HOST:PORT`.
        proxy: String,
        /// What happened, per address where the proxy answered CONNECT, joined with "; ".
        detail: String,
        /// Whether the last failure was a timeout.
        timed_out: bool,
    },
}

/// A connection to the target, made directly or through a proxy.
#[derive(Debug)]
pub struct Connection {
    /// The stream; through a proxy, its next byte is the target's.
    pub stream: TcpStream,
    /// The target's address, connected to directly or through the proxy; `None` when the proxy
    /// resolved the name (`socks5h://`).
    pub peer: Option<SocketAddr>,
    /// Our address as the target sees it: our end of the socket, or, through a proxy, the
    /// address the proxy says it connected from (BND.ADDR) when it gives one.
    pub local: Option<SocketAddr>,
}

/// Connects to `host` port `port`, through `proxy` when one is given, all within `timeout`.
pub fn open(
    host: &Host,
    port: u16,
    family: Family,
    timeout: Duration,
    proxy: Option<&Proxy>,
) -> Result<Connection, ConnectError> {
    match proxy {
        None => {
            let (stream, peer) = connect(host, port, family, timeout)?;
            Ok(Connection {
                local: stream.local_addr().ok(),
                stream,
                peer: Some(peer),
            })
        }
        Some(proxy) => through(proxy, host, port, family, timeout),
    }
}

/// Through `proxy`: the name resolved here (`socks5://`, honouring `family`) and each address
/// asked of the proxy in turn, one proxy connection each; or the name sent to the proxy
/// (`socks5h://`). The connect to the proxy, the SOCKS exchange and the CONNECT reply all fit
/// in `timeout`. A CONNECT failure moves on to the next address; anything else about the proxy
/// itself ends the attempt.
fn through(
    proxy: &Proxy,
    host: &Host,
    port: u16,
    family: Family,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let deadline = Instant::now() + timeout;
    let destinations: Vec<Destination> = match (proxy.resolution, host) {
        (Resolution::Remote, Host::Name(name)) => vec![Destination::Name(name.clone(), port)],
        _ => resolve(host, port, family)?
            .into_iter()
            .map(Destination::Addr)
            .collect(),
    };
    let fail = |detail: String, timed_out: bool| ConnectError::Proxy {
        host: host.to_string(),
        port,
        proxy: proxy.endpoint(),
        detail,
        timed_out,
    };
    let proxy_addrs = match &proxy.host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, proxy.port)],
        Host::Name(name) => (name.as_str(), proxy.port)
            .to_socket_addrs()
            .map_err(|e| {
                fail(
                    format!("could not resolve the proxy's name {name}: {e}"),
                    false,
                )
            })?
            .collect(),
    };
    let mut attempts = Vec::new();
    for destination in &destinations {
        let stream = reach(&proxy_addrs, deadline).map_err(|(detail, timed_out)| {
            attempts.push(detail);
            fail(attempts.join("; "), timed_out)
        })?;
        match socks5::handshake(&stream, proxy.auth.as_ref(), destination, deadline) {
            Ok(bound) => {
                stream.set_read_timeout(None).ok();
                stream.set_write_timeout(None).ok();
                let local = bound
                    .filter(|a| !a.ip().is_unspecified())
                    .or_else(|| stream.local_addr().ok());
                return Ok(Connection {
                    stream,
                    peer: match destination {
                        Destination::Addr(addr) => Some(*addr),
                        Destination::Name(..) => None,
                    },
                    local,
                });
            }
            Err(e) if e.is_reply() => attempts.push(format!("{destination}: {e}")),
            Err(e) => {
                attempts.push(e.to_string());
                return Err(fail(attempts.join("; "), e.timed_out()));
            }
        }
    }
    Err(fail(attempts.join("; "), false))
}

/// A TCP connection to the proxy, trying each of its addresses before `deadline`; on failure,
/// the words and whether time ran out.
fn reach(addrs: &[SocketAddr], deadline: Instant) -> Result<TcpStream, (String, bool)> {
    let mut errors = Vec::new();
    let mut timed_out = false;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                return Ok(stream);
            }
            Err(err) => {
                timed_out = err.kind() == io::ErrorKind::TimedOut;
                errors.push((addr, describe_io(&err)));
            }
        }
    }
    let words = match errors.as_slice() {
        [] => "no time left".to_owned(),
        [(_, only)] => only.clone(),
        all => all
            .iter()
            .map(|(addr, e)| format!("{addr}: {e}"))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Err((format!("the proxy is unreachable: {words}"), timed_out))
}

/// Resolves `host` (honouring `family`) and connects to each address in turn until one accepts,
/// all within `timeout` in total. Returns the stream and the address it is connected to.
pub fn connect(
    host: &Host,
    port: u16,
    family: Family,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), ConnectError> {
    let deadline = Instant::now() + timeout;
    let addrs = resolve(host, port, family)?;
    let mut attempts = Vec::new();
    let mut timed_out = false;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            attempts.push(format!("{addr}: no time left"));
            timed_out = true;
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                return Ok((stream, addr));
            }
            Err(err) => {
                timed_out = err.kind() == io::ErrorKind::TimedOut;
                attempts.push(format!("{addr}: {}", describe_io(&err)));
            }
        }
    }
    Err(ConnectError::Failed {
        host: host.to_string(),
        port,
        attempts: attempts.join("; "),
        timed_out,
    })
}

fn resolve(host: &Host, port: u16, family: Family) -> Result<Vec<SocketAddr>, ConnectError> {
    let all: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => (name.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| ConnectError::Resolve {
                host: name.clone(),
                source,
            })?
            .collect(),
    };
    let wanted: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| family.allows(a.ip()))
        .collect();
    if wanted.is_empty() {
        let found = all.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>();
        return Err(ConnectError::NoAddress {
            host: host.to_string(),
            family: if family == Family::V6 { "IPv6" } else { "IPv4" },
            found: if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            },
        });
    }
    Ok(wanted)
}

/// Plain words for the socket errors users meet.
pub fn describe_io(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on that port)".into()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".into(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".into(),
        io::ErrorKind::HostUnreachable => "host unreachable".into(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".into(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    #[test]
    fn connects_to_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let host = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let (_stream, addr) = connect(&host, port, Family::Any, Duration::from_secs(5)).unwrap();
        assert_eq!(addr.port(), port);
    }

    #[test]
    fn refused_is_reported_in_words() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let err = connect(&host, port, Family::Any, Duration::from_secs(5)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("connection refused"), "{text}");
    }

    #[test]
    fn family_filter_applies_to_literals() {
        let host = Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let err = connect(&host, 25, Family::V6, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ConnectError::NoAddress { .. }), "{err}");
    }
}
