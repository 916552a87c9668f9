//! What the fake SMTP server records: each line received (plaintext or TLS) and each connection
//! and TLS event, in order, for tests to assert on after the client is done.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

/// One line the server received, and whether it came inside TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// True when the line arrived over TLS (after STARTTLS, or on an implicit-TLS connection).
    pub tls: bool,
    /// The line without its CRLF (non-UTF-8 bytes replaced).
    pub line: String,
}

impl Received {
    /// The command verb, uppercased (`"EHLO"` for `ehlo client.example`).
    pub fn verb(&self) -> String {
        self.line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }

    /// Everything after the verb, trimmed (`"client.example"` for `EHLO client.example`).
    pub fn args(&self) -> &str {
        self.line
            .trim_start()
            .split_once(' ')
            .map_or("", |(_, rest)| rest.trim())
    }
}

/// What happened on the server besides command lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A client connected from this address.
    Connected(SocketAddr),
    /// The first byte the client sent where TLS was due was a TLS handshake record (ClientHello).
    ClientHello,
    /// Where TLS was due the client sent something else, or closed; the reason is given.
    NoClientHello(String),
    /// A TLS handshake completed.
    TlsEstablished(TlsInfo),
    /// A TLS handshake failed with this rustls error.
    TlsFailed(String),
    /// Unexpected I/O trouble on a connection (not counting the client closing it).
    Error(String),
    /// The connection was closed (by either side).
    Closed,
}

/// What a completed handshake negotiated, as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `"TLSv1_2"` or `"TLSv1_3"` (rustls' `ProtocolVersion` debug form).
    pub version: String,
    /// The cipher suite, rustls' debug form (e.g. `"TLS13_AES_256_GCM_SHA384"`).
    pub cipher_suite: String,
    /// The SNI host name the client sent, if any.
    pub sni: Option<String>,
}

/// Everything the server recorded, in order.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// Command lines received, in order, across all connections.
    pub received: Vec<Received>,
    /// Connection and TLS events, in order.
    pub events: Vec<Event>,
}

impl Log {
    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Connected(_)))
            .count()
    }

    /// True when a line with this verb was received, over TLS (`tls`) or in plaintext.
    pub fn saw(&self, verb: &str, tls: bool) -> bool {
        self.received
            .iter()
            .any(|r| r.tls == tls && r.verb().eq_ignore_ascii_case(verb))
    }

    /// The verbs received in order, TLS ones prefixed with `~` (`["EHLO", "STARTTLS", "~EHLO"]`).
    pub fn verbs(&self) -> Vec<String> {
        self.received
            .iter()
            .map(|r| {
                if r.tls {
                    format!("~{}", r.verb())
                } else {
                    r.verb()
                }
            })
            .collect()
    }

    /// True when a TLS ClientHello reached the server.
    pub fn client_hello_seen(&self) -> bool {
        self.events.contains(&Event::ClientHello)
    }

    /// The completed TLS handshakes.
    pub fn tls_sessions(&self) -> Vec<TlsInfo> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::TlsEstablished(info) => Some(info.clone()),
                _ => None,
            })
            .collect()
    }

    /// The failed TLS handshakes' error texts.
    pub fn tls_failures(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::TlsFailed(msg) => Some(msg.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Lock the log, shrugging off poisoning (a panicking handler must not hide the record).
pub(super) fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
