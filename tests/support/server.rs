//! An in-process fake SMTP server for end-to-end tests (RFC 5321 dialogue, RFC 3207 STARTTLS,
//! RFC 8314 implicit TLS), speaking real TLS with a rustls `ServerConnection`.
//!
//! Start one with [`FakeSmtp::builder`]; it listens on `127.0.0.1:0` (or `[::1]:0`) in its own
//! thread and serves connections one after another until the test ends. Everything it receives is
//! recorded, marked plaintext or TLS, with the TLS events (ClientHello seen, handshake result,
//! SNI). [`FakeSmtp::finish`] (or `Drop`) stops it, waits a bounded time for its thread, and
//! asserts it saw a connection unless told otherwise.
//!
//! The dialogue is a small script: built-in answers for EHLO, HELO, STARTTLS, NOOP, RSET and
//! QUIT, shaped by the builder, and per-verb [`Handler`]s that override or add verbs (AUTH, MAIL,
//! RCPT...) and may read further lines, as a SASL exchange needs.

use std::collections::HashMap;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::TestPki;

/// How long the server waits for the client on any read before giving up on the connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `finish`/`Drop` waits for the server thread once the test is done.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest command line the server reads; longer input is cut there.
const MAX_LINE: u64 = 4096;
/// The host name the fake server gives itself in its replies.
pub const SERVER_NAME: &str = "fake.smtptls.test";

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

/// What the dialogue does after a handler ran.
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Close the connection.
    Close,
}

/// A per-verb script step: gets the [`Exchange`] and the received line, answers it.
pub type Handler = Arc<dyn Fn(&mut Exchange<'_>, &Received) -> io::Result<Flow> + Send + Sync>;

/// A handler's view of the connection: send replies, read more lines (recorded like commands).
pub struct Exchange<'a> {
    conn: &'a mut Conn,
    log: &'a Mutex<Log>,
}

impl Exchange<'_> {
    /// Send reply lines, each followed by CRLF, in one write.
    pub fn send(&mut self, lines: &[&str]) -> io::Result<()> {
        self.conn.send_lines(lines)
    }

    /// Send raw bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.conn.send_raw(bytes)
    }

    /// Read one more line (e.g. a SASL response); `None` when the client closed.
    pub fn read_line(&mut self) -> io::Result<Option<String>> {
        let line = self.conn.read_line()?;
        if let Some(line) = &line {
            lock(self.log).received.push(Received {
                tls: self.conn.is_tls(),
                line: line.clone(),
            });
        }
        Ok(line)
    }

    /// True when the connection is inside TLS.
    pub fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }
}

/// Whether the test expects the server to be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    AtLeastOneConnection,
    NoConnection,
    Anything,
}

/// Configures a [`FakeSmtp`]; every setting has a working default (a STARTTLS server with a
/// certificate for `localhost` from a fresh [`TestPki`]).
pub struct FakeSmtpBuilder {
    ipv6: bool,
    implicit_tls: bool,
    banner: Vec<String>,
    ehlo_extensions: Vec<String>,
    ehlo_tls_extensions: Option<Vec<String>>,
    refuse_ehlo: Option<u16>,
    starttls_reply: Vec<String>,
    inject_after_starttls: Vec<u8>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    tls_versions: Vec<&'static SupportedProtocolVersion>,
    handlers: HashMap<String, Handler>,
    expect: Expect,
}

impl Default for FakeSmtpBuilder {
    fn default() -> Self {
        Self {
            ipv6: false,
            implicit_tls: false,
            banner: vec![format!("220 {SERVER_NAME} ESMTP fake server ready")],
            ehlo_extensions: [
                "PIPELINING",
                "SIZE 10240000",
                "STARTTLS",
                "ENHANCEDSTATUSCODES",
                "8BITMIME",
            ]
            .map(String::from)
            .to_vec(),
            ehlo_tls_extensions: None,
            refuse_ehlo: None,
            starttls_reply: vec!["220 2.0.0 Ready to start TLS".to_owned()],
            inject_after_starttls: Vec::new(),
            cert: None,
            tls_versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            handlers: HashMap::new(),
            expect: Expect::AtLeastOneConnection,
        }
    }
}

impl FakeSmtpBuilder {
    /// Listen on `[::1]:0` instead of `127.0.0.1:0`.
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Implicit TLS (RFC 8314, port-465 style): the TLS handshake comes first, then the banner.
    pub fn implicit_tls(mut self, on: bool) -> Self {
        self.implicit_tls = on;
        self
    }

    /// The greeting, one full line each (`"220-first"`, `"220 last"`).
    pub fn banner(mut self, lines: &[&str]) -> Self {
        self.banner = strings(lines);
        self
    }

    /// The EHLO keywords offered before TLS, one per line (`"SIZE 1000"`). Without `STARTTLS`
    /// here the server refuses STARTTLS with 502.
    pub fn ehlo_extensions(mut self, extensions: &[&str]) -> Self {
        self.ehlo_extensions = strings(extensions);
        self
    }

    /// The EHLO keywords offered inside TLS; by default those before TLS minus `STARTTLS`.
    pub fn ehlo_tls_extensions(mut self, extensions: &[&str]) -> Self {
        self.ehlo_tls_extensions = Some(strings(extensions));
        self
    }

    /// Answer EHLO with this error code (HELO still works).
    pub fn refuse_ehlo(mut self, code: u16) -> Self {
        self.refuse_ehlo = Some(code);
        self
    }

    /// The reply to STARTTLS, one full line each. A reply that is not `220` leaves the
    /// connection in plaintext.
    pub fn starttls_reply(mut self, lines: &[&str]) -> Self {
        self.starttls_reply = strings(lines);
        self
    }

    /// Bytes sent in the same write right after the STARTTLS reply (a plaintext injection).
    pub fn inject_after_starttls(mut self, bytes: &[u8]) -> Self {
        self.inject_after_starttls = bytes.to_vec();
        self
    }

    /// Present this chain (leaf first) and key.
    pub fn cert_chain(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.cert = Some((chain, key));
        self
    }

    /// Present this test leaf (and its chain).
    pub fn leaf(self, leaf: &super::pki::Leaf) -> Self {
        self.cert_chain(leaf.chain(), leaf.key())
    }

    /// The TLS versions the server accepts (default 1.3 and 1.2).
    pub fn tls_versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> Self {
        self.tls_versions = versions.to_vec();
        self
    }

    /// Answer `verb` (case-insensitive) with this handler instead of the built-in answer.
    pub fn handler(
        mut self,
        verb: &str,
        handler: impl Fn(&mut Exchange<'_>, &Received) -> io::Result<Flow> + Send + Sync + 'static,
    ) -> Self {
        self.handlers
            .insert(verb.to_ascii_uppercase(), Arc::new(handler));
        self
    }

    /// Answer `verb` (case-insensitive) with these fixed reply lines.
    pub fn reply(self, verb: &str, lines: &[&str]) -> Self {
        let lines = strings(lines);
        self.handler(verb, move |ex, _| {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            ex.send(&refs)?;
            Ok(Flow::Continue)
        })
    }

    /// Assert on finish that nobody connected (e.g. a usage error must not dial).
    pub fn expect_no_connection(mut self) -> Self {
        self.expect = Expect::NoConnection;
        self
    }

    /// Make no assertion on finish about connections.
    pub fn allow_unused(mut self) -> Self {
        self.expect = Expect::Anything;
        self
    }

    /// Bind and start serving; `Err` when the address cannot be bound (e.g. no IPv6).
    pub fn try_start(self) -> io::Result<FakeSmtp> {
        let bind: SocketAddr = if self.ipv6 { "[::1]:0" } else { "127.0.0.1:0" }
            .parse()
            .map_err(io::Error::other)?;
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let expect = self.expect;
        let script = Arc::new(Script::new(self)?);
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        let thread = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("fake-smtp-{}", addr.port()))
                .spawn(move || {
                    let _done = DoneSignal(done_tx);
                    serve(&listener, &script, &log, &stop);
                })?
        };
        Ok(FakeSmtp {
            addr,
            log,
            stop,
            done: done_rx,
            thread: Some(thread),
            expect,
        })
    }

    /// Bind and start serving; panics if the address cannot be bound.
    pub fn start(self) -> FakeSmtp {
        self.try_start().expect("start the fake SMTP server")
    }
}

/// A running fake SMTP server. See the module documentation.
pub struct FakeSmtp {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    expect: Expect,
}

impl FakeSmtp {
    /// Start configuring a server.
    pub fn builder() -> FakeSmtpBuilder {
        FakeSmtpBuilder::default()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `host:port` as the CLI's SERVER argument: `127.0.0.1:PORT` or `[::1]:PORT`.
    pub fn server_arg(&self) -> String {
        self.addr.to_string()
    }

    /// A snapshot of what was recorded so far (racy while a client is still talking: prefer
    /// [`FakeSmtp::finish`] once the client is done).
    pub fn log(&self) -> Log {
        lock(&self.log).clone()
    }

    /// Stop the server, wait for its thread (bounded), check the connection expectation, and
    /// return everything it recorded.
    pub fn finish(mut self) -> Log {
        self.shutdown();
        self.log()
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        let finished = self.done.recv_timeout(JOIN_TIMEOUT).is_ok();
        if thread::panicking() {
            return;
        }
        assert!(
            finished,
            "fake SMTP server on {} did not stop within {JOIN_TIMEOUT:?}",
            self.addr
        );
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
        let log = self.log();
        match self.expect {
            Expect::AtLeastOneConnection => assert!(
                log.connections() > 0,
                "fake SMTP server on {} was never connected to",
                self.addr
            ),
            Expect::NoConnection => assert_eq!(
                log.connections(),
                0,
                "fake SMTP server on {} was connected to, but should not have been: {log:#?}",
                self.addr
            ),
            Expect::Anything => {}
        }
    }
}

impl Drop for FakeSmtp {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Signals the end of the server thread even when it panics.
struct DoneSignal(Sender<()>);

impl Drop for DoneSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// The builder's settings, frozen for the server thread.
struct Script {
    implicit_tls: bool,
    banner: Vec<String>,
    ehlo_extensions: Vec<String>,
    ehlo_tls_extensions: Vec<String>,
    refuse_ehlo: Option<u16>,
    starttls_reply: Vec<String>,
    inject_after_starttls: Vec<u8>,
    handlers: HashMap<String, Handler>,
    tls: Arc<ServerConfig>,
}

impl Script {
    fn new(b: FakeSmtpBuilder) -> io::Result<Self> {
        let (chain, key) = match b.cert {
            Some(cert) => cert,
            None => {
                let leaf = TestPki::new().leaf();
                (leaf.chain(), leaf.key())
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&b.tls_versions)
            .and_then(|c| c.with_no_client_auth().with_single_cert(chain, key))
            .map_err(io::Error::other)?;
        let ehlo_tls_extensions = b.ehlo_tls_extensions.unwrap_or_else(|| {
            b.ehlo_extensions
                .iter()
                .filter(|e| !e.eq_ignore_ascii_case("STARTTLS"))
                .cloned()
                .collect()
        });
        Ok(Self {
            implicit_tls: b.implicit_tls,
            banner: b.banner,
            ehlo_extensions: b.ehlo_extensions,
            ehlo_tls_extensions,
            refuse_ehlo: b.refuse_ehlo,
            starttls_reply: b.starttls_reply,
            inject_after_starttls: b.inject_after_starttls,
            handlers: b.handlers,
            tls: Arc::new(tls),
        })
    }

    fn offers_starttls(&self) -> bool {
        self.ehlo_extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case("STARTTLS"))
    }
}

fn serve(listener: &TcpListener, script: &Script, log: &Mutex<Log>, stop: &AtomicBool) {
    loop {
        match listener.accept() {
            Ok((sock, peer)) => {
                lock(log).events.push(Event::Connected(peer));
                if let Err(e) = session(sock, script, log) {
                    lock(log).events.push(Event::Error(e.to_string()));
                }
                lock(log).events.push(Event::Closed);
            }
            // Stop only when no connection is waiting, so a client that connected just before
            // the test ended is still served and counted.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                lock(log).events.push(Event::Error(format!("accept: {e}")));
                return;
            }
        }
    }
}

/// One SMTP session, banner to close.
fn session(sock: TcpStream, script: &Script, log: &Mutex<Log>) -> io::Result<()> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(READ_TIMEOUT))?;
    sock.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut conn = if script.implicit_tls {
        match start_tls(sock, script, log)? {
            Upgrade::Done(tls) => tls,
            Upgrade::NoClientHello | Upgrade::Failed => return Ok(()),
        }
    } else {
        Conn::Plain(BufReader::new(sock))
    };
    conn.send_lines(&script.banner)?;
    loop {
        let Some(line) = conn.read_line()? else {
            return Ok(());
        };
        let received = Received {
            tls: conn.is_tls(),
            line,
        };
        lock(log).received.push(received.clone());
        let verb = received.verb();
        if let Some(handler) = script.handlers.get(&verb) {
            match handler(
                &mut Exchange {
                    conn: &mut conn,
                    log,
                },
                &received,
            )? {
                Flow::Continue => continue,
                Flow::Close => return conn.close(),
            }
        }
        match verb.as_str() {
            "EHLO" => ehlo(&mut conn, script, &received)?,
            "HELO" => conn.send_lines(&[format!("250 {SERVER_NAME}")])?,
            "STARTTLS" => match starttls(conn, script, log)? {
                Some(next) => conn = next,
                None => return Ok(()),
            },
            "NOOP" | "RSET" => conn.send_lines(&["250 2.0.0 OK"])?,
            "QUIT" => {
                conn.send_lines(&["221 2.0.0 Bye"])?;
                return conn.close();
            }
            _ => conn.send_lines(&["500 5.5.2 Command not recognized"])?,
        }
    }
}

fn ehlo(conn: &mut Conn, script: &Script, received: &Received) -> io::Result<()> {
    if let Some(code) = script.refuse_ehlo {
        return conn.send_lines(&[format!("{code} 5.5.1 EHLO not supported, try HELO")]);
    }
    let extensions = if conn.is_tls() {
        &script.ehlo_tls_extensions
    } else {
        &script.ehlo_extensions
    };
    let mut lines = vec![format!("{SERVER_NAME} greets {}", received.args())];
    lines.extend(extensions.iter().cloned());
    let last = lines.len() - 1;
    let lines: Vec<String> = lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
        .collect();
    conn.send_lines(&lines)
}

/// Answer STARTTLS; on a 220 answer, upgrade the connection. `None` ends the session (the
/// handshake failed); when the client sends no ClientHello the connection stays plaintext, so it
/// can still say QUIT.
fn starttls(mut conn: Conn, script: &Script, log: &Mutex<Log>) -> io::Result<Option<Conn>> {
    if conn.is_tls() {
        conn.send_lines(&["503 5.5.1 TLS already active"])?;
        return Ok(Some(conn));
    }
    if !script.offers_starttls() {
        conn.send_lines(&["502 5.5.1 STARTTLS not available"])?;
        return Ok(Some(conn));
    }
    let mut bytes: Vec<u8> = script
        .starttls_reply
        .iter()
        .flat_map(|l| format!("{l}\r\n").into_bytes())
        .collect();
    bytes.extend_from_slice(&script.inject_after_starttls);
    conn.send_raw(&bytes)?;
    if !script
        .starttls_reply
        .last()
        .is_some_and(|l| l.starts_with("220"))
    {
        return Ok(Some(conn));
    }
    let Conn::Plain(reader) = conn else {
        return Ok(None);
    };
    if !reader.buffer().is_empty() {
        let early = String::from_utf8_lossy(reader.buffer()).into_owned();
        lock(log).events.push(Event::Error(format!(
            "client sent data before the STARTTLS reply: {early:?}"
        )));
    }
    let sock = reader.into_inner();
    Ok(match start_tls(sock.try_clone()?, script, log)? {
        Upgrade::Done(tls) => Some(tls),
        Upgrade::NoClientHello => Some(Conn::Plain(BufReader::new(sock))),
        Upgrade::Failed => None,
    })
}

/// How an attempt to enter TLS ended.
enum Upgrade {
    Done(Conn),
    NoClientHello,
    Failed,
}

/// Check that a ClientHello comes (recording what came instead), then run the handshake.
fn start_tls(mut sock: TcpStream, script: &Script, log: &Mutex<Log>) -> io::Result<Upgrade> {
    let mut first = [0u8; 1];
    let no_hello = match sock.peek(&mut first) {
        Ok(0) => Some("client closed the connection".to_owned()),
        Ok(_) if first[0] == 0x16 => None,
        Ok(_) => Some(format!("first byte {:#04x}", first[0])),
        Err(e) => Some(e.to_string()),
    };
    if let Some(reason) = no_hello {
        lock(log).events.push(Event::NoClientHello(reason));
        return Ok(Upgrade::NoClientHello);
    }
    lock(log).events.push(Event::ClientHello);
    let mut tls = ServerConnection::new(Arc::clone(&script.tls)).map_err(io::Error::other)?;
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(&mut sock) {
            lock(log).events.push(Event::TlsFailed(e.to_string()));
            return Ok(Upgrade::Failed);
        }
    }
    let info = TlsInfo {
        version: tls
            .protocol_version()
            .map_or_else(String::new, |v| format!("{v:?}")),
        cipher_suite: tls
            .negotiated_cipher_suite()
            .map_or_else(String::new, |c| format!("{:?}", c.suite())),
        sni: tls.server_name().map(str::to_owned),
    };
    lock(log).events.push(Event::TlsEstablished(info));
    Ok(Upgrade::Done(Conn::Tls(Box::new(BufReader::new(
        StreamOwned::new(tls, sock),
    )))))
}

/// The connection, before or inside TLS. The plaintext reader is dropped at STARTTLS.
enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<StreamOwned<ServerConnection, TcpStream>>>),
}

impl Conn {
    fn is_tls(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    fn send_lines<S: AsRef<str>>(&mut self, lines: &[S]) -> io::Result<()> {
        let bytes: Vec<u8> = lines
            .iter()
            .flat_map(|l| format!("{}\r\n", l.as_ref()).into_bytes())
            .collect();
        self.send_raw(&bytes)
    }

    fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(r) => {
                r.get_mut().write_all(bytes)?;
                r.get_mut().flush()
            }
            Self::Tls(r) => {
                r.get_mut().write_all(bytes)?;
                r.get_mut().flush()
            }
        }
    }

    /// One line without CRLF; `None` at end of stream (a TLS stream cut without close_notify
    /// counts as the end too: clients often just close).
    fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let read = match self {
            Self::Plain(r) => r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf),
            Self::Tls(r) => r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf),
        };
        match read {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e)
                if e.kind() == io::ErrorKind::UnexpectedEof
                    || e.kind() == io::ErrorKind::ConnectionReset =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    fn close(self) -> io::Result<()> {
        if let Self::Tls(mut r) = self {
            let stream = r.get_mut();
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
        Ok(())
    }
}

fn strings(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}

fn lock(log: &Mutex<Log>) -> MutexGuard<'_, Log> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
