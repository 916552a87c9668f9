//! The blocking SMTP dialogue over one TCP connection (RFC 5321 §4), and its upgrade to TLS
//! (RFC 3207 §4; RFC 8314 §3 for implicit TLS).
//!
//! Replies are data: whatever code the server answers is returned to the caller, who decides what
//! it means. Errors here are only what stops the dialogue itself: the deadline passing, the server
//! closing, bytes that are no reply, plaintext injected after STARTTLS's 220, a failed handshake.
//! Every read of a reply runs against one deadline for the whole reply, so a server that drips a
//! byte a second cannot stretch it. The plaintext read buffer never crosses into TLS.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;

use super::command::Command;
use super::reply::{ParseError, Reply, parse_reply};
use super::transcript::{Direction, Transcript};
use crate::secret::Secret;
use crate::tls::explain::{HandshakeContext, handshake_error};
use crate::tls::{HandshakeError, TlsFacts, handshake};

/// Size of one read from the socket.
const CHUNK: usize = 4096;

/// The connection under the dialogue.
enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only between taking the plaintext socket and installing TLS, or after a failed upgrade.
    Closed,
}

impl Transport {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Transport::Plain(tcp) => Some(tcp),
            Transport::Tls(stream) => Some(stream.get_ref()),
            Transport::Closed => None,
        }
    }
}

/// One step of the dialogue, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stage {
    /// Its name: "banner", "ehlo", "helo", "starttls", "ehlo-tls", "quit", ...
    pub stage: String,
    /// Whether it ran inside TLS.
    pub tls: bool,
    /// The command sent, as the transcript shows it; `None` for the banner.
    pub sent: Option<String>,
    /// The reply code.
    pub code: Option<u16>,
    /// The reply lines.
    pub lines: Vec<String>,
}

/// What stopped the dialogue.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The deadline for one stage passed.
    #[error("timed out after {secs} s waiting for the {stage} reply{}", partial_note(*.received))]
    Timeout {
        /// The stage.
        stage: String,
        /// The timeout in seconds.
        secs: u64,
        /// Bytes of the unfinished reply that had arrived by then: more than 0 is a server that
        /// drips its reply, not one that says nothing (tests/hostile.rs, dripping_banner_...).
        received: usize,
    },
    /// The server closed the connection.
    #[error("the server closed the connection during {stage}")]
    Closed {
        /// The stage.
        stage: String,
    },
    /// The socket failed.
    #[error("{stage}: {source}")]
    Io {
        /// The stage.
        stage: String,
        /// The error.
        source: io::Error,
    },
    /// The server sent something that is no SMTP reply.
    #[error("protocol error in the {stage} reply: {source}")]
    Protocol {
        /// The stage.
        stage: String,
        /// What was wrong.
        source: ParseError,
    },
    /// The server sent plaintext after its 220 reply to STARTTLS.
    #[error(
        "response injection: the server sent {len} byte(s) of plaintext after agreeing to STARTTLS ({preview:?}); \
         they were discarded and the probe stopped before TLS (the client-side twin of CVE-2011-0411)"
    )]
    Injection {
        /// How many bytes.
        len: usize,
        /// Their start, lossily decoded.
        preview: String,
    },
    /// The TLS handshake failed.
    #[error("{message}")]
    Handshake {
        /// Plain words, with the likely fix.
        message: String,
        /// The underlying error.
        source: Box<HandshakeError>,
    },
}

/// A dialogue in progress.
pub struct Session {
    transport: Transport,
    buf: Vec<u8>,
    timeout: Duration,
    /// Every line sent and received.
    pub transcript: Transcript,
    /// Every stage with its reply.
    pub stages: Vec<Stage>,
    /// Forms of the user's secrets, scrubbed from anything the server sends back.
    secrets: Vec<String>,
}

impl Session {
    /// Starts a dialogue on a connected socket; `timeout` bounds each reply and the handshake.
    pub fn new(tcp: TcpStream, timeout: Duration, transcript: Transcript) -> Self {
        Self {
            transport: Transport::Plain(tcp),
            buf: Vec::new(),
            timeout,
            transcript,
            stages: Vec::new(),
            secrets: Vec::new(),
        }
    }

    /// Whether the dialogue now runs inside TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// Reads the server's greeting.
    pub fn banner(&mut self) -> Result<Reply, SessionError> {
        let reply = self.read_reply("banner")?;
        self.record("banner", None, &reply);
        Ok(reply)
    }

    /// Sends `command` and reads its reply, recording both under `stage`.
    pub fn command(&mut self, stage: &str, command: &Command) -> Result<Reply, SessionError> {
        let shown = command.to_string().trim_end().to_owned();
        self.send(stage, &shown, command.to_string().as_bytes())?;
        let reply = self.read_reply(stage)?;
        self.record(stage, Some(shown), &reply);
        Ok(reply)
    }

    /// Sends one line whose wire form may carry a secret, and reads the reply. `shown` is what the
    /// transcript and the stage record hold instead of `wire`.
    pub fn exchange(
        &mut self,
        stage: &str,
        wire: &Secret,
        shown: &str,
    ) -> Result<Reply, SessionError> {
        let line = Secret::new(format!("{}\r\n", wire.expose()));
        self.send(stage, shown, line.expose().as_bytes())?;
        let reply = self.read_reply(stage)?;
        self.record(stage, Some(shown.to_owned()), &reply);
        Ok(reply)
    }

    /// Registers text that must never be shown or stored, even when the server echoes it back.
    pub fn add_secret_forms(&mut self, forms: impl IntoIterator<Item = String>) {
        self.secrets
            .extend(forms.into_iter().filter(|f| !f.is_empty()));
    }

    /// Upgrades to TLS. After STARTTLS's 220, anything the server already sent is injected
    /// plaintext: it is refused, never handed to TLS.
    pub fn start_tls(
        &mut self,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        context: HandshakeContext,
    ) -> Result<TlsFacts, SessionError> {
        if context == HandshakeContext::AfterStartTls {
            let pending = self.pending_plaintext();
            if !pending.is_empty() {
                return Err(injection(&pending));
            }
        }
        let tcp = match std::mem::replace(&mut self.transport, Transport::Closed) {
            Transport::Plain(tcp) => tcp,
            other => {
                self.transport = other;
                return Err(SessionError::Io {
                    stage: "tls-handshake".into(),
                    source: io::Error::other("the connection is not in plaintext"),
                });
            }
        };
        self.transcript.info("starting the TLS handshake");
        match handshake(tcp, config, server_name, Instant::now() + self.timeout) {
            Ok((stream, facts)) => {
                self.transport = Transport::Tls(Box::new(stream));
                self.transcript.info(format!(
                    "TLS established: {} {}",
                    facts.version, facts.cipher_suite
                ));
                Ok(facts)
            }
            Err(source) => {
                if context == HandshakeContext::AfterStartTls
                    && looks_like_reply(source.first_bytes())
                {
                    return Err(injection(source.first_bytes()));
                }
                let message = handshake_error(&source, context);
                self.transcript
                    .info(format!("TLS handshake failed: {message}"));
                Err(SessionError::Handshake {
                    message,
                    source: Box::new(source),
                })
            }
        }
    }

    /// Sends QUIT and reads the reply within a short wait, then closes TLS cleanly. Best effort:
    /// a server that hangs up first has done nothing wrong.
    pub fn quit(&mut self) {
        let stage = if self.is_tls() { "quit-tls" } else { "quit" };
        self.timeout = self.timeout.min(Duration::from_secs(5));
        if let Ok(reply) = self
            .send(stage, "QUIT", Command::Quit.to_string().as_bytes())
            .and_then(|()| self.read_reply(stage))
        {
            self.record(stage, Some("QUIT".into()), &reply);
        }
        if let Transport::Tls(stream) = &mut self.transport {
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        self.transport = Transport::Closed;
    }

    fn send(&mut self, stage: &str, shown: &str, bytes: &[u8]) -> Result<(), SessionError> {
        let tls = self.is_tls();
        self.transcript.push(Direction::Sent, tls, shown);
        let io_err = |source: io::Error| match source.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => SessionError::Closed {
                stage: stage.into(),
            },
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => SessionError::Timeout {
                stage: stage.into(),
                secs: self.timeout.as_secs(),
                received: 0,
            },
            _ => SessionError::Io {
                stage: stage.into(),
                source,
            },
        };
        if let Some(tcp) = self.transport.tcp() {
            tcp.set_write_timeout(Some(self.timeout)).map_err(io_err)?;
        }
        let result = match &mut self.transport {
            Transport::Plain(tcp) => tcp.write_all(bytes).and_then(|()| tcp.flush()),
            Transport::Tls(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
            Transport::Closed => Err(io::ErrorKind::NotConnected.into()),
        };
        result.map_err(io_err)
    }

    /// Reads one whole reply before one deadline.
    fn read_reply(&mut self, stage: &str) -> Result<Reply, SessionError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match parse_reply(&self.buf) {
                Ok(Some(mut parsed)) => {
                    self.buf.drain(..parsed.consumed.min(self.buf.len()));
                    self.scrub(&mut parsed.reply);
                    let tls = self.is_tls();
                    for line in parsed.reply.wire_lines() {
                        self.transcript.push(Direction::Received, tls, line);
                    }
                    if parsed.bare_lf {
                        self.transcript.info("the server ended lines with a bare LF instead of CRLF (RFC 5321 §2.3.8)");
                    }
                    return Ok(parsed.reply);
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(SessionError::Protocol {
                        stage: stage.into(),
                        source,
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SessionError::Timeout {
                    stage: stage.into(),
                    secs: self.timeout.as_secs(),
                    received: self.buf.len(),
                });
            }
            self.read_chunk(stage, left)?;
        }
    }

    fn read_chunk(&mut self, stage: &str, left: Duration) -> Result<(), SessionError> {
        let io_err = |source| SessionError::Io {
            stage: stage.into(),
            source,
        };
        if let Some(tcp) = self.transport.tcp() {
            tcp.set_read_timeout(Some(left)).map_err(io_err)?;
            quick_ack(tcp);
        }
        let mut chunk = [0u8; CHUNK];
        let read = match &mut self.transport {
            Transport::Plain(tcp) => tcp.read(&mut chunk),
            Transport::Tls(stream) => read_tls_step(stream, &mut chunk),
            Transport::Closed => Err(io::ErrorKind::NotConnected.into()),
        };
        match read {
            Ok(0) => Err(SessionError::Closed {
                stage: stage.into(),
            }),
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                ) =>
            {
                Err(SessionError::Closed {
                    stage: stage.into(),
                })
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Plaintext already buffered or already waiting in the socket, without blocking.
    fn pending_plaintext(&mut self) -> Vec<u8> {
        let mut pending = std::mem::take(&mut self.buf);
        if let Transport::Plain(tcp) = &mut self.transport {
            if tcp.set_nonblocking(true).is_ok() {
                let mut chunk = [0u8; CHUNK];
                if let Ok(n) = tcp.read(&mut chunk) {
                    pending.extend_from_slice(chunk.get(..n).unwrap_or_default());
                }
                let _ = tcp.set_nonblocking(false);
            }
        }
        pending
    }

    /// Replaces every registered secret form in the reply's lines with `<redacted>`.
    /// A word that decodes (base64) to text holding a secret is replaced whole, since a secret
    /// encoded at an offset inside a longer message cannot be matched as text.
    fn scrub(&self, reply: &mut Reply) {
        if self.secrets.is_empty() {
            return;
        }
        for line in &mut reply.lines {
            for secret in &self.secrets {
                if line.contains(secret.as_str()) {
                    *line = line.replace(secret.as_str(), "<redacted>");
                }
            }
            if line.split_whitespace().any(|word| self.hides_secret(word)) {
                *line = line
                    .split(' ')
                    .map(|word| {
                        if self.hides_secret(word) {
                            "<redacted>"
                        } else {
                            word
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
    }

    /// Whether `word` is base64 of something that contains a registered secret.
    fn hides_secret(&self, word: &str) -> bool {
        use base64::Engine as _;
        if word.len() < 8 {
            return false;
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(word) else {
            return false;
        };
        let text = String::from_utf8_lossy(&bytes);
        self.secrets
            .iter()
            .any(|secret| text.contains(secret.as_str()))
    }

    fn record(&mut self, stage: &str, sent: Option<String>, reply: &Reply) {
        self.stages.push(Stage {
            stage: stage.into(),
            tls: self.is_tls(),
            sent,
            code: Some(reply.code),
            lines: reply.lines.clone(),
        });
    }
}

/// One bounded step of reading inside TLS: buffered plaintext if there is some, else at most one
/// read from the socket. `WouldBlock` means "no plaintext yet"; the caller checks its deadline and
/// comes back.
///
/// Not `StreamOwned::read`: it loops over socket reads until a whole TLS record has arrived, so a
/// server dripping a record a byte at a time — each byte well within the socket's read timeout —
/// would hold it far past the reply's deadline (tests/hostile.rs,
/// `dripping_tls_records_hit_the_stage_deadline`).
fn read_tls_step(
    stream: &mut StreamOwned<ClientConnection, TcpStream>,
    buf: &mut [u8],
) -> io::Result<usize> {
    let StreamOwned { conn, sock } = stream;
    match conn.reader().read(buf) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        // Plaintext, a clean close_notify (0), or a close without one (UnexpectedEof).
        other => return other,
    }
    // Anything rustls owes the server first (an alert, a key update); small, bounded by the
    // write timeout.
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    conn.read_tls(sock)?;
    if let Err(e) = conn.process_new_packets() {
        // Best effort: let the server see our alert.
        let _ = conn.write_tls(sock);
        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
    }
    conn.reader().read(buf)
}

/// Asks the kernel to acknowledge at once instead of delaying the ACK. Linux re-enables delayed
/// ACKs on its own, hence once per read. Without it, a server whose Nagle holds a reply until the
/// ACK of its previous segment (Postfix after the TLS 1.3 session tickets) stalls each EHLO inside
/// TLS by the 40 ms delayed-ACK timer (bench/run.sh, case 1).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn quick_ack(tcp: &TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quick_ack(_tcp: &TcpStream) {}

/// What a timeout adds when part of the reply did arrive.
fn partial_note(received: usize) -> String {
    if received == 0 {
        String::new()
    } else {
        format!(" (only {received} byte(s) of it arrived in that time)")
    }
}

fn injection(bytes: &[u8]) -> SessionError {
    let preview: String = String::from_utf8_lossy(bytes).chars().take(80).collect();
    SessionError::Injection {
        len: bytes.len(),
        preview,
    }
}

/// Whether bytes read where a TLS record was due start like an SMTP reply ("250 ...").
fn looks_like_reply(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes.iter().take(3).all(u8::is_ascii_digit)
}
