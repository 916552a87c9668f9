//! A raw fake SMTP server for byte-level misbehaviour: where [`super::FakeSmtp`] plays a
//! well-formed script, [`RawServer`] hands each connection to a test's own function, which sends
//! exactly the bytes it wants — silence, a drip, a flood, a cut reply, plaintext where TLS is due,
//! a hand-made TLS alert, TLS records dripped byte by byte — with a rustls `ServerConnection` when
//! it wants real TLS (RFC 3207 STARTTLS).
//!
//! It listens on `127.0.0.1:0`, serves connections one after another in its own thread, and
//! records what it received in the same [`Log`] as `FakeSmtp`. Every loop that could run forever
//! ([`RawConn::drip`], [`RawConn::flood`], [`RawConn::hold`]) also ends when the client goes away
//! or the test is over, so [`RawServer::finish`] (or `Drop`) stops the thread in bounded time.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::pki::Leaf;
use super::record::{Event, Log, Received, TlsInfo, lock};

/// How long the server waits for the client on one read.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `finish`/`Drop` waits for the server thread.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest line [`RawConn::read_line`] reads.
const MAX_LINE: usize = 4096;
/// The name the raw server gives itself.
pub const RAW_NAME: &str = "raw.smtptls.test";

/// What a test's function does with one connection.
type Script = dyn Fn(&mut RawConn<'_>) -> io::Result<()> + Send + Sync;

/// A running raw server. See the module documentation.
pub struct RawServer {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl RawServer {
    /// Listen on `127.0.0.1:0` and run `script` for each connection, one at a time. An `Err`
    /// from the script is recorded as [`Event::Error`] (a client hanging up mid-flood is normal).
    pub fn start(
        script: impl Fn(&mut RawConn<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = mpsc::channel::<()>();
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("raw-smtp-{}", addr.port()))
                .spawn(move || {
                    let _done = done_tx;
                    serve(&listener, &*script, &log, &stop);
                })
                .expect("spawn the raw server thread")
        };
        Self {
            addr,
            log,
            stop,
            done,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, the CLI's SERVER argument.
    pub fn server_arg(&self) -> String {
        self.addr.to_string()
    }

    /// Stop the server, wait for its thread (bounded), assert it was connected to, and return
    /// what it recorded.
    pub fn finish(mut self) -> Log {
        self.shutdown();
        let log = lock(&self.log).clone();
        assert!(
            log.connections() > 0,
            "raw server on {} was never connected to",
            self.addr
        );
        log
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // The sender is dropped when the thread ends, panic or not.
        let ended = matches!(
            self.done.recv_timeout(JOIN_TIMEOUT),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        if thread::panicking() {
            return;
        }
        assert!(
            ended,
            "raw server on {} did not stop within {JOIN_TIMEOUT:?}",
            self.addr
        );
        if let Err(panic) = thread.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(listener: &TcpListener, script: &Script, log: &Mutex<Log>, stop: &AtomicBool) {
    loop {
        match listener.accept() {
            Ok((sock, peer)) => {
                lock(log).events.push(Event::Connected(peer));
                let result = RawConn::new(sock, log, stop).and_then(|mut conn| script(&mut conn));
                if let Err(e) = result {
                    lock(log).events.push(Event::Error(e.to_string()));
                }
                lock(log).events.push(Event::Closed);
            }
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

/// A rustls server configuration presenting `leaf`, accepting `versions`.
pub fn tls_config(
    leaf: &Leaf,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(leaf.chain(), leaf.key())
        .expect("server certificate and key");
    Arc::new(config)
}

/// A rustls server configuration presenting `chain` as it is — not parsed, not checked against
/// the key — for certificates rustls would refuse to load (a 1 MiB certificate). The handshake
/// is still signed with `key`.
pub fn tls_config_unchecked(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signer = provider
        .key_provider
        .load_private_key(key)
        .expect("load the private key");
    let certified = Arc::new(CertifiedKey::new(chain, signer));
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .expect("protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    Arc::new(config)
}

/// Always the same certificate and key, whatever the ClientHello asks.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// One connection as a test's script sees it: plaintext until [`RawConn::start_tls`], then TLS.
pub struct RawConn<'a> {
    sock: TcpStream,
    tls: Option<ServerConnection>,
    log: &'a Mutex<Log>,
    stop: &'a AtomicBool,
}

impl<'a> RawConn<'a> {
    fn new(sock: TcpStream, log: &'a Mutex<Log>, stop: &'a AtomicBool) -> io::Result<Self> {
        sock.set_nonblocking(false)?;
        sock.set_nodelay(true)?;
        sock.set_read_timeout(Some(READ_TIMEOUT))?;
        sock.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Self {
            sock,
            tls: None,
            log,
            stop,
        })
    }

    /// Whether the test is over (every endless loop checks it).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn check_stopped(&self) -> io::Result<()> {
        if self.stopped() {
            Err(io::Error::other("the test is over"))
        } else {
            Ok(())
        }
    }

    /// Send bytes as they are, through TLS once it is up.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.check_stopped()?;
        match &mut self.tls {
            Some(tls) => {
                let mut stream = rustls::Stream::new(tls, &mut self.sock);
                stream.write_all(bytes)?;
                stream.flush()
            }
            None => self.sock.write_all(bytes),
        }
    }

    /// Send lines, each followed by CRLF, in one write.
    pub fn send_lines(&mut self, lines: &[&str]) -> io::Result<()> {
        let bytes: Vec<u8> = lines
            .iter()
            .flat_map(|l| format!("{l}\r\n").into_bytes())
            .collect();
        self.send(&bytes)
    }

    /// Send bytes straight to the socket, around TLS even when it is up (hand-made records,
    /// ciphertext from [`RawConn::encrypt`], plaintext where TLS is due).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.check_stopped()?;
        self.sock.write_all(bytes)
    }

    /// Read one line (CRLF or LF removed), a byte at a time so nothing after it is consumed
    /// (a ClientHello after STARTTLS stays in the socket); `None` when the client closed.
    pub fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let n = match &mut self.tls {
                Some(tls) => rustls::Stream::new(tls, &mut self.sock).read(&mut byte),
                None => self.sock.read(&mut byte),
            };
            match n {
                Ok(0) => return Ok(None),
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() < MAX_LINE => line.push(byte[0]),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        lock(self.log).received.push(Received {
            tls: self.tls.is_some(),
            line: line.clone(),
        });
        Ok(Some(line))
    }

    /// Read one line and fail unless it starts with `verb` (case-insensitive).
    pub fn expect(&mut self, verb: &str) -> io::Result<String> {
        let line = self
            .read_line()?
            .ok_or_else(|| io::Error::other(format!("client closed; expected {verb}")))?;
        if line.to_ascii_uppercase().starts_with(verb) {
            Ok(line)
        } else {
            Err(io::Error::other(format!("expected {verb}, got {line:?}")))
        }
    }

    /// The usual start of a STARTTLS dialogue: banner, EHLO answered with STARTTLS offered,
    /// STARTTLS answered `220`. The client's next bytes (its ClientHello) are left unread.
    pub fn until_starttls(&mut self) -> io::Result<()> {
        self.send_lines(&[&format!("220 {RAW_NAME} ESMTP raw server")])?;
        self.expect("EHLO")?;
        self.send_lines(&[&format!("250-{RAW_NAME}"), "250-SIZE 1000", "250 STARTTLS"])?;
        self.expect("STARTTLS")?;
        self.send_lines(&["220 2.0.0 Ready to start TLS"])
    }

    /// [`RawConn::until_starttls`], the handshake, and the EHLO inside TLS read (not answered).
    pub fn until_ehlo_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        self.until_starttls()?;
        self.start_tls(config)?;
        self.expect("EHLO").map(drop)
    }

    /// Wait until the client has sent something, without reading it; records whether it was a
    /// TLS handshake record ([`Event::ClientHello`]). A script that returns right after closes
    /// the socket with those bytes unread, which Linux answers with RST instead of FIN: that is
    /// how a test makes the server reset the connection.
    pub fn wait_for_data(&mut self) -> io::Result<()> {
        let mut first = [0u8; 1];
        match self.sock.peek(&mut first)? {
            0 => Err(io::Error::other("client closed")),
            _ => {
                let event = if first[0] == 0x16 {
                    Event::ClientHello
                } else {
                    Event::NoClientHello(format!("first byte {:#04x}", first[0]))
                };
                lock(self.log).events.push(event);
                Ok(())
            }
        }
    }

    /// Run the TLS handshake as the server; later sends and reads go through TLS.
    pub fn start_tls(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        self.wait_for_data()?;
        let mut tls = ServerConnection::new(config).map_err(io::Error::other)?;
        while tls.is_handshaking() {
            if let Err(e) = tls.complete_io(&mut self.sock) {
                lock(self.log).events.push(Event::TlsFailed(e.to_string()));
                return Err(e);
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
        lock(self.log).events.push(Event::TlsEstablished(info));
        self.tls = Some(tls);
        Ok(())
    }

    /// `plaintext` as TLS records, ready to send with [`RawConn::send_raw`] or
    /// [`RawConn::drip`] (TLS must be up).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> io::Result<Vec<u8>> {
        let tls = self
            .tls
            .as_mut()
            .ok_or_else(|| io::Error::other("TLS is not up"))?;
        tls.writer().write_all(plaintext)?;
        let mut records = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut records)?;
        }
        Ok(records)
    }

    /// Send `bytes` straight to the socket one at a time, `every` apart, until they run out, the
    /// client goes away or the test ends.
    pub fn drip(&mut self, bytes: impl IntoIterator<Item = u8>, every: Duration) -> io::Result<()> {
        for byte in bytes {
            self.send_raw(&[byte])?;
            self.sleep(every)?;
        }
        Ok(())
    }

    /// Send `chunk` over and over (through TLS once it is up) until `total` bytes are out, the
    /// client goes away or the test ends.
    pub fn flood(&mut self, chunk: &[u8], total: usize) -> io::Result<()> {
        let mut sent = 0;
        while sent < total {
            self.send(chunk)?;
            sent += chunk.len();
        }
        Ok(())
    }

    /// Say nothing until the client closes, the test ends, or `at_most` has passed.
    pub fn hold(&mut self, at_most: Duration) -> io::Result<()> {
        let end = Instant::now() + at_most;
        self.sock
            .set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut buf = [0u8; 512];
        while Instant::now() < end && !self.stopped() {
            match self.sock.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sleep `d` in short steps, failing early when the test is over.
    fn sleep(&self, d: Duration) -> io::Result<()> {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.check_stopped()?;
            thread::sleep(
                Duration::from_millis(20).min(end.saturating_duration_since(Instant::now())),
            );
        }
        Ok(())
    }
}
