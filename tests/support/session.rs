//! The fake server's side of one SMTP session (RFC 5321 dialogue, RFC 3207 STARTTLS, RFC 8314
//! implicit TLS): the accept loop, the built-in answers, the STARTTLS upgrade with a real rustls
//! `ServerConnection`, and the [`Exchange`] that per-verb [`Handler`]s use.

use std::collections::HashMap;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::record::{Event, Log, Received, TlsInfo, lock};

/// How long the server waits for the client on any read before giving up on the connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest command line the server reads; longer input is cut there.
const MAX_LINE: u64 = 4096;
/// The host name the fake server gives itself in its replies.
pub const SERVER_NAME: &str = "fake.smtptls.test";

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

/// The builder's settings, frozen for the server thread.
pub(super) struct Script {
    pub(super) banner_delay: Duration,
    pub(super) implicit_tls: bool,
    pub(super) banner: Vec<String>,
    pub(super) ehlo_extensions: Vec<String>,
    pub(super) ehlo_tls_extensions: Vec<String>,
    pub(super) refuse_ehlo: Option<u16>,
    pub(super) starttls_reply: Vec<String>,
    pub(super) inject_after_starttls: Vec<u8>,
    pub(super) handlers: HashMap<String, Handler>,
    pub(super) tls: Arc<ServerConfig>,
}

impl Script {
    fn offers_starttls(&self) -> bool {
        self.ehlo_extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case("STARTTLS"))
    }
}

pub(super) fn serve(listener: &TcpListener, script: &Script, log: &Mutex<Log>, stop: &AtomicBool) {
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
    thread::sleep(script.banner_delay);
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
