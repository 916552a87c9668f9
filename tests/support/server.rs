//! An in-process fake SMTP server for end-to-end tests (RFC 5321 dialogue, RFC 3207 STARTTLS,
//! RFC 8314 implicit TLS), speaking real TLS with a rustls `ServerConnection`.
//!
//! Start one with [`FakeSmtp::builder`]; it listens on `127.0.0.1:0` (or `[::1]:0`, or the address
//! given with [`FakeSmtpBuilder::bind`]) in its own thread and serves connections one after another
//! until the test ends. [`FakeSmtp::start_on_one_port`] starts several on distinct loopback
//! addresses (`127.0.0.2`, `127.0.0.3`...) sharing one port, as the MX hosts of a domain probed
//! with one `--port`. Everything it receives is
//! recorded, marked plaintext or TLS, with the TLS events (ClientHello seen, handshake result,
//! SNI). [`FakeSmtp::finish`] (or `Drop`) stops it, waits a bounded time for its thread, and
//! asserts it saw a connection unless told otherwise.
//!
//! The dialogue is a small script: built-in answers for EHLO, HELO, STARTTLS, NOOP, RSET and
//! QUIT, shaped by the builder, and per-verb [`Handler`]s that override or add verbs (AUTH, MAIL,
//! RCPT...) and may read further lines, as a SASL exchange needs.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::{CertifiedKey, SigningKey};
use rustls::{ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::{Leaf, TestPki};
use super::record::Received;
use super::record::{Log, lock};
use super::session::{Exchange, Flow, Handler, SERVER_NAME, Script, serve};

/// How long `finish`/`Drop` waits for the server thread once the test is done.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How many ports [`FakeSmtp::start_on_one_port`] tries before giving up.
const SHARED_PORT_ATTEMPTS: usize = 50;

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
    bind: Option<SocketAddr>,
    listener: Option<TcpListener>,
    banner_delay: Duration,
    implicit_tls: bool,
    banner: Vec<String>,
    ehlo_extensions: Vec<String>,
    ehlo_tls_extensions: Option<Vec<String>>,
    refuse_ehlo: Option<u16>,
    starttls_reply: Vec<String>,
    inject_after_starttls: Vec<u8>,
    cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    signer: Option<Arc<dyn SigningKey>>,
    tls_versions: Vec<&'static SupportedProtocolVersion>,
    handlers: HashMap<String, Handler>,
    expect: Expect,
}

impl Default for FakeSmtpBuilder {
    fn default() -> Self {
        Self {
            ipv6: false,
            bind: None,
            listener: None,
            banner_delay: Duration::ZERO,
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
            signer: None,
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

    /// Listen on this address instead, e.g. `127.0.0.2:PORT` (port 0: any free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = Some(addr);
        self
    }

    /// Serve on this already bound listener (see [`FakeSmtp::start_on_one_port`]).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Wait this long after accepting a connection before sending the banner (a slow server).
    pub fn banner_delay(mut self, delay: Duration) -> Self {
        self.banner_delay = delay;
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
        self.signer = None;
        self
    }

    /// Present this test leaf (and its chain), signing with its own signer if it has one.
    pub fn leaf(self, leaf: &Leaf) -> Self {
        let mut builder = self.cert_chain(leaf.chain(), leaf.key());
        builder.signer = leaf.signer();
        builder
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
    pub fn try_start(mut self) -> io::Result<FakeSmtp> {
        let listener = match self.listener.take() {
            Some(listener) => listener,
            None => {
                let default = if self.ipv6 { "[::1]:0" } else { "127.0.0.1:0" };
                let bind = match self.bind {
                    Some(addr) => addr,
                    None => default.parse().map_err(io::Error::other)?,
                };
                TcpListener::bind(bind)?
            }
        };
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let expect = self.expect;
        let script = Arc::new(self.script()?);
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

    /// Start one server per `(address, builder)`, all on the same port: the first address is
    /// bound on port 0 and its port reused on the others, with a new port when one is taken.
    /// The servers come back in the order given; any [`FakeSmtpBuilder::bind`] is overridden.
    pub fn start_on_one_port(servers: Vec<(IpAddr, FakeSmtpBuilder)>) -> Vec<FakeSmtp> {
        let addresses: Vec<IpAddr> = servers.iter().map(|(ip, _)| *ip).collect();
        let listeners = listeners_on_one_port(&addresses);
        servers
            .into_iter()
            .zip(listeners)
            .map(|((_, builder), listener)| builder.listener(listener).start())
            .collect()
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

/// One listener on each address, all on the same port (see [`FakeSmtp::start_on_one_port`]).
pub fn listeners_on_one_port(addresses: &[IpAddr]) -> Vec<TcpListener> {
    let Some(first) = addresses.first() else {
        return Vec::new();
    };
    for _ in 0..SHARED_PORT_ATTEMPTS {
        let head = TcpListener::bind(SocketAddr::new(*first, 0)).expect("bind a loopback port");
        let port = head.local_addr().expect("a bound address").port();
        let mut listeners = vec![head];
        for ip in addresses.iter().skip(1) {
            match TcpListener::bind(SocketAddr::new(*ip, port)) {
                Ok(listener) => listeners.push(listener),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => break,
                Err(e) => panic!("cannot bind {ip}:{port}: {e}"),
            }
        }
        if listeners.len() == addresses.len() {
            return listeners;
        }
    }
    panic!("no port free on all of {addresses:?} after {SHARED_PORT_ATTEMPTS} attempts");
}

/// Signals the end of the server thread even when it panics.
struct DoneSignal(Sender<()>);

impl Drop for DoneSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl FakeSmtpBuilder {
    /// Freeze the settings for the server thread, building the rustls configuration.
    fn script(self) -> io::Result<Script> {
        let b = self;
        let (chain, key) = match b.cert {
            Some(cert) => cert,
            None => {
                let leaf = TestPki::new().leaf();
                (leaf.chain(), leaf.key())
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&b.tls_versions)
            .map_err(io::Error::other)?
            .with_no_client_auth();
        let tls = match b.signer {
            Some(signer) => builder.with_cert_resolver(Arc::new(FixedCert(Arc::new(
                CertifiedKey::new(chain, signer),
            )))),
            None => builder
                .with_single_cert(chain, key)
                .map_err(io::Error::other)?,
        };
        let ehlo_tls_extensions = b.ehlo_tls_extensions.unwrap_or_else(|| {
            b.ehlo_extensions
                .iter()
                .filter(|e| !e.eq_ignore_ascii_case("STARTTLS"))
                .cloned()
                .collect()
        });
        Ok(Script {
            banner_delay: b.banner_delay,
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
}

/// Always the same certificate and signer (for a key rustls' provider cannot load).
#[derive(Debug)]
struct FixedCert(Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn strings(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}
