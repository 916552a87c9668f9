//! An in-process HTTPS server for MTA-STS policy fetches (RFC 8461 §3.3): a rustls server with a
//! test certificate, a minimal HTTP/1.1 responder that gives every request the same canned
//! response, and a record of the request heads it read.
//!
//! [`HttpsServer::start`] listens on `127.0.0.1:0` in its own thread and serves connections one
//! after another until dropped (or until [`HttpsServer::request`]). A connection whose handshake
//! fails is recorded with an empty request head. [`response`], [`text_plain`] and [`policy`]
//! build what it answers.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::pki::Leaf;

/// How long the server waits for a client's bytes, and [`HttpsServer::request`] for a client.
const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(5);
/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// A running HTTPS server; see the module documentation.
pub struct HttpsServer {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    /// Serves `response` (raw HTTP bytes) with `leaf`'s chain on `127.0.0.1:0`, then closes each
    /// connection with close_notify.
    pub fn start(leaf: &Leaf, response: Vec<u8>) -> Self {
        Self::serve(leaf, response, false)
    }

    /// Like [`HttpsServer::start`], but after the response the server keeps the connection
    /// open, silent, until the client hangs up.
    pub fn start_stalling(leaf: &Leaf, response: Vec<u8>) -> Self {
        Self::serve(leaf, response, true)
    }

    fn serve(leaf: &Leaf, response: Vec<u8>, stall: bool) -> Self {
        let config = Arc::new(
            ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(leaf.chain(), leaf.key())
            .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (heads, stop) = (Arc::clone(&heads), Arc::clone(&stop));
            thread::Builder::new()
                .name(format!("https-{}", addr.port()))
                .spawn(move || {
                    accept_loop(&listener, &config, &response, stall, &heads, &stop);
                })
                .unwrap()
        };
        Self {
            addr,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The request heads read so far, one per connection served (empty after a failed
    /// handshake).
    pub fn requests(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits (bounded) for the first connection to be served, stops the server, and returns
    /// that connection's request head (empty when the handshake failed).
    pub fn request(mut self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while self.heads.lock().unwrap().is_empty() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        self.shutdown();
        self.heads
            .lock()
            .unwrap()
            .first()
            .cloned()
            .expect("the HTTPS server was never connected to")
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if !thread::panicking() {
                thread.join().unwrap();
            }
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(
    listener: &TcpListener,
    config: &Arc<ServerConfig>,
    response: &[u8],
    stall: bool,
    heads: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    loop {
        match listener.accept() {
            Ok((tcp, _)) => {
                let head = serve_one(tcp, config, response, stall).unwrap_or_default();
                heads.lock().unwrap().push(head);
            }
            // A client that connected before the stop is still served.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(POLL);
            }
            Err(_) => return,
        }
    }
}

/// One connection: handshake, read the head, answer. The head read, empty on a failed handshake.
fn serve_one(
    tcp: TcpStream,
    config: &Arc<ServerConfig>,
    response: &[u8],
    stall: bool,
) -> io::Result<String> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let conn = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let head = read_head(&mut tls);
    if !head.is_empty() {
        let _ = tls.write_all(response);
        if stall {
            let _ = tls.flush();
            let mut sink = Vec::new();
            let _ = tls.read_to_end(&mut sink);
        } else {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }
    Ok(head)
}

/// Reads up to the blank line that ends the request head; empty on a failed handshake.
fn read_head(tls: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < MAX_HEAD {
        match tls.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A raw HTTP/1.1 response with `Connection: close` and a `Content-Length`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `200 OK`, `text/plain`, with this body.
pub fn text_plain(body: &[u8]) -> Vec<u8> {
    response("200 OK", &[("Content-Type", "text/plain")], body)
}

/// An MTA-STS policy file (RFC 8461 §3.2): `mode` (`enforce`, `testing`, `none`), one `mx:` line
/// per pattern, max_age one day.
pub fn policy(mode: &str, mx: &[&str]) -> String {
    let mut text = format!("version: STSv1\r\nmode: {mode}\r\n");
    for pattern in mx {
        text.push_str(&format!("mx: {pattern}\r\n"));
    }
    text.push_str("max_age: 86400\r\n");
    text
}
