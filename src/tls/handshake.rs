//! The TLS handshake over an already connected socket, driven by hand so that the whole
//! handshake — not each read — is bounded by one deadline, and so that the first bytes the server
//! sent can be shown when they were not TLS at all (a plaintext SMTP greeting on a port the user
//! thought was implicit TLS).

use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

/// How many of the server's first bytes are kept for diagnosis.
const KEEP_FIRST: usize = 64;

/// The negotiated parameters, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsFacts {
    /// "TLSv1.2" or "TLSv1.3".
    pub version: String,
    /// The IANA-style cipher suite name rustls reports, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher_suite: String,
}

/// Why the handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The deadline passed.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The socket failed or closed.
    #[error("TLS handshake: {0}")]
    Io(#[source] io::Error),
    /// The server closed the connection before the handshake finished.
    #[error("the server closed the connection during the TLS handshake")]
    Closed {
        /// The first bytes the server sent, if any.
        first_bytes: Vec<u8>,
    },
    /// rustls rejected what the server sent, or the server sent an alert.
    #[error("TLS handshake failed: {error}")]
    Tls {
        /// The rustls error.
        error: rustls::Error,
        /// The first bytes the server sent, if any.
        first_bytes: Vec<u8>,
    },
    /// The client connection could not be created.
    #[error("TLS setup: {0}")]
    Setup(rustls::Error),
}

impl HandshakeError {
    /// The first bytes the server sent during the handshake, when known.
    pub fn first_bytes(&self) -> &[u8] {
        match self {
            HandshakeError::Closed { first_bytes } | HandshakeError::Tls { first_bytes, .. } => {
                first_bytes
            }
            _ => &[],
        }
    }
}

/// A reader that keeps a copy of the first bytes that pass through it.
struct Recording<'a> {
    inner: &'a mut TcpStream,
    first: &'a mut Vec<u8>,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let room = KEEP_FIRST.saturating_sub(self.first.len());
        self.first.extend(buf.iter().take(n.min(room)));
        Ok(n)
    }
}

/// Runs the handshake on `tcp` before `deadline`, presenting `server_name` (sent as SNI when the
/// configuration enables it, and checked by the verifier either way).
pub fn handshake(
    mut tcp: TcpStream,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    deadline: Instant,
) -> Result<(StreamOwned<ClientConnection, TcpStream>, TlsFacts), HandshakeError> {
    let mut conn = ClientConnection::new(config, server_name).map_err(HandshakeError::Setup)?;
    let mut first = Vec::new();
    while conn.is_handshaking() {
        flush(&mut conn, &mut tcp, deadline)?;
        if !conn.is_handshaking() {
            break;
        }
        set_deadline(&tcp, deadline)?;
        let read = conn.read_tls(&mut Recording {
            inner: &mut tcp,
            first: &mut first,
        });
        match read {
            Ok(0) => return Err(HandshakeError::Closed { first_bytes: first }),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(HandshakeError::Timeout),
            Err(e) => return Err(HandshakeError::Io(e)),
        }
        if let Err(error) = conn.process_new_packets() {
            // Best effort: let the server see our alert.
            let _ = conn.write_tls(&mut tcp);
            return Err(HandshakeError::Tls {
                error,
                first_bytes: first,
            });
        }
    }
    flush(&mut conn, &mut tcp, deadline)?;
    let facts = TlsFacts {
        version: conn
            .protocol_version()
            .map_or_else(|| "unknown".into(), |v| version_name(v).to_owned()),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map_or_else(|| "unknown".into(), |s| format!("{:?}", s.suite())),
    };
    Ok((StreamOwned::new(conn, tcp), facts))
}

fn flush(
    conn: &mut ClientConnection,
    tcp: &mut TcpStream,
    deadline: Instant,
) -> Result<(), HandshakeError> {
    while conn.wants_write() {
        set_deadline(tcp, deadline)?;
        match conn.write_tls(tcp) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return Err(HandshakeError::Timeout),
            Err(e) => return Err(HandshakeError::Io(e)),
        }
    }
    Ok(())
}

/// Sets the socket's read and write timeouts to what is left before `deadline`.
fn set_deadline(tcp: &TcpStream, deadline: Instant) -> Result<(), HandshakeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(HandshakeError::Timeout);
    }
    tcp.set_read_timeout(Some(left))
        .map_err(HandshakeError::Io)?;
    tcp.set_write_timeout(Some(left))
        .map_err(HandshakeError::Io)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// "TLSv1.2" / "TLSv1.3", as openssl and most reports spell them.
pub fn version_name(version: rustls::ProtocolVersion) -> &'static str {
    match version {
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0",
        _ => "unknown",
    }
}
