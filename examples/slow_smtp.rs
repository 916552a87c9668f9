//! A slow loopback SMTP server with STARTTLS for `bench/run.sh`: it waits a fixed delay (50 ms by
//! default) before every reply — the banner, EHLO, the STARTTLS 220, EHLO inside TLS, QUIT — so
//! that a benchmark on a machine without traffic shaping sees round trips, as on the internet,
//! rather than CPU. The TLS handshake itself is not delayed.
//!
//!     cargo run --release --example slow_smtp -- --dir DIR \
//!         --listen 127.1.0.1+200 --listen 127.2.0.1+8 --name mx1.bench.smtptls.test
//!
//! Each `--listen FIRST+COUNT` is a group of COUNT consecutive IPv4 addresses from FIRST, all on
//! one common free port; loopback (127.0.0.0/8) only, any 127.x.y.z works on Linux without
//! configuration. At start it makes a throw-away CA and one leaf (ECDSA P-256, rcgen) valid for
//! every listening address and every `--name`, then writes into DIR:
//! `ca.pem` (for `--ca-file` / `-CAfile`), `targets-N.txt` (`ip:port` a line for group N, from 1),
//! `port-N` (group N's port) and, last, `ready`.
//!
//! One thread per listener accepts, one thread per connection serves (the dialogue of RFC 5321
//! and RFC 3207, nothing more: EHLO/HELO, STARTTLS, NOOP, RSET, QUIT; anything else gets 502).
//! The process ends by itself after `--lifetime` seconds (default 600).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Longest command line read from a client; longer ones end the connection.
const MAX_LINE: u64 = 4096;
/// How long a connection may stay silent before the server hangs up.
const IDLE: Duration = Duration::from_secs(30);
/// Tries at finding one port free on every address of a group.
const PORT_TRIES: usize = 50;
/// The EHLO reply before TLS.
const EHLO_PLAIN: &str = "250-slow.bench.smtptls.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n";
/// The EHLO reply inside TLS (no STARTTLS any more, RFC 3207 §4.2).
const EHLO_TLS: &str =
    "250-slow.bench.smtptls.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n";

/// The command line.
struct Args {
    dir: PathBuf,
    delay: Duration,
    groups: Vec<(Ipv4Addr, u32)>,
    names: Vec<String>,
    lifetime: Duration,
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let addresses: Vec<IpAddr> = args
        .groups
        .iter()
        .flat_map(|&(first, count)| group_addresses(first, count))
        .map(IpAddr::V4)
        .collect();
    let (ca_pem, config) = tls_config(&addresses, &args.names)?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    std::fs::write(args.dir.join("ca.pem"), ca_pem)?;
    for (n, &(first, count)) in args.groups.iter().enumerate() {
        let listeners = bind_group(first, count)?;
        let port = listeners.first().map_or(0, local_port);
        let targets: String = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| format!("{a}\n"))
            .collect();
        std::fs::write(args.dir.join(format!("targets-{}.txt", n + 1)), targets)?;
        std::fs::write(
            args.dir.join(format!("port-{}", n + 1)),
            format!("{port}\n"),
        )?;
        for listener in listeners {
            spawn_acceptor(listener, config.clone(), args.delay)?;
        }
    }
    std::fs::write(args.dir.join("ready"), "")?;
    std::thread::sleep(args.lifetime);
    Ok(())
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        dir: PathBuf::new(),
        delay: Duration::from_millis(50),
        groups: Vec::new(),
        names: Vec::new(),
        lifetime: Duration::from_secs(600),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => args.dir = PathBuf::from(value),
            "--delay-ms" => args.delay = Duration::from_millis(value.parse()?),
            "--lifetime" => args.lifetime = Duration::from_secs(value.parse()?),
            "--name" => args.names.push(value),
            "--listen" => args.groups.push(parse_group(&value)?),
            other => bail!("unknown option {other}"),
        }
    }
    if args.dir.as_os_str().is_empty() || args.groups.is_empty() {
        bail!(
            "usage: slow_smtp --dir DIR --listen 127.1.0.1+200 [--listen …] [--name DNS]… [--delay-ms 50] [--lifetime 600]"
        );
    }
    Ok(args)
}

/// `127.1.0.1+200`: the first address and how many follow it, all inside 127.0.0.0/8.
fn parse_group(text: &str) -> Result<(Ipv4Addr, u32)> {
    let (first, count) = text.split_once('+').unwrap_or((text, "1"));
    let first: Ipv4Addr = first.parse().with_context(|| format!("--listen {text}"))?;
    let count: u32 = count.parse().with_context(|| format!("--listen {text}"))?;
    let last = u32::from(first).checked_add(count.saturating_sub(1));
    if !first.is_loopback() || count == 0 || !last.is_some_and(|l| Ipv4Addr::from(l).is_loopback())
    {
        bail!("--listen {text}: give 1 or more addresses inside 127.0.0.0/8");
    }
    Ok((first, count))
}

fn group_addresses(first: Ipv4Addr, count: u32) -> impl Iterator<Item = Ipv4Addr> {
    (0..count).map(move |i| Ipv4Addr::from(u32::from(first).wrapping_add(i)))
}

fn local_port(listener: &TcpListener) -> u16 {
    listener.local_addr().map_or(0, |a| a.port())
}

/// Binds every address of the group on one port: the first on a free port, the rest on the same,
/// starting over when one of them is taken there.
fn bind_group(first: Ipv4Addr, count: u32) -> Result<Vec<TcpListener>> {
    for _ in 0..PORT_TRIES {
        let head = TcpListener::bind((first, 0))?;
        let port = local_port(&head);
        let mut listeners = vec![head];
        let all = group_addresses(first, count).skip(1).all(|ip| {
            TcpListener::bind((ip, port))
                .map(|l| listeners.push(l))
                .is_ok()
        });
        if all {
            return Ok(listeners);
        }
    }
    bail!("no port free on all of {count} addresses from {first} after {PORT_TRIES} tries")
}

/// A fresh CA (written out as PEM) and a server configuration presenting one leaf it signed,
/// valid for every address and name.
fn tls_config(addresses: &[IpAddr], names: &[String]) -> Result<(String, Arc<ServerConfig>)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "smtptls bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let sans: Vec<String> = names
        .iter()
        .cloned()
        .chain(addresses.iter().map(ToString::to_string))
        .collect();
    let mut leaf_params = CertificateParams::new(sans)?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "slow.bench.smtptls.test");
    let key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&key, &ca)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    Ok((ca.pem(), Arc::new(config)))
}

fn spawn_acceptor(listener: TcpListener, config: Arc<ServerConfig>, delay: Duration) -> Result<()> {
    std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            for tcp in listener.incoming().flatten() {
                let config = config.clone();
                // A failed spawn drops the connection; the client reports it.
                let _ = std::thread::Builder::new()
                    .stack_size(512 * 1024)
                    .spawn(move || serve(tcp, &config, delay));
            }
        })?;
    Ok(())
}

/// One connection: plaintext dialogue up to STARTTLS, then the same inside TLS. Errors just end
/// the connection (a client that hangs up after the handshake, as `openssl s_client` does).
fn serve(tcp: TcpStream, config: &Arc<ServerConfig>, delay: Duration) -> io::Result<()> {
    tcp.set_read_timeout(Some(IDLE))?;
    tcp.set_nodelay(true)?;
    let mut plain = BufReader::new(tcp);
    reply(
        &mut plain,
        delay,
        "220 slow.bench.smtptls.test ESMTP slow bench server\r\n",
    )?;
    // Anything pipelined after STARTTLS would be injected plaintext: hang up instead.
    if dialogue(&mut plain, delay, false)? == Next::Quit || !plain.buffer().is_empty() {
        return Ok(());
    }
    let conn = ServerConnection::new(config.clone()).map_err(io::Error::other)?;
    let mut tls = BufReader::new(StreamOwned::new(conn, plain.into_inner()));
    let result = dialogue(&mut tls, delay, true);
    let stream = tls.get_mut();
    stream.conn.send_close_notify();
    let _ = stream.flush();
    result.map(drop)
}

/// What ended a dialogue.
#[derive(PartialEq, Eq)]
enum Next {
    Quit,
    StartTls,
}

/// Reads commands and answers them until QUIT, or STARTTLS in plaintext. Writes go straight to
/// the stream under the reader (a `BufReader` buffers reads only).
fn dialogue<S: Read + Write>(
    io: &mut BufReader<S>,
    delay: Duration,
    tls: bool,
) -> io::Result<Next> {
    loop {
        let line = read_line(io)?;
        let verb = line
            .split_ascii_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let text = match verb.as_str() {
            "EHLO" if tls => EHLO_TLS,
            "EHLO" => EHLO_PLAIN,
            "HELO" => "250 slow.bench.smtptls.test\r\n",
            "STARTTLS" if !tls => "220 2.0.0 Ready to start TLS\r\n",
            "NOOP" | "RSET" => "250 2.0.0 OK\r\n",
            "QUIT" => "221 2.0.0 Bye\r\n",
            _ => "502 5.5.2 Command not implemented\r\n",
        };
        reply(io, delay, text)?;
        match verb.as_str() {
            "QUIT" => return Ok(Next::Quit),
            "STARTTLS" if !tls => return Ok(Next::StartTls),
            _ => {}
        }
    }
}

/// One command line, without its line end; end of stream or an overlong line is an error.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    let n = reader.take(MAX_LINE).read_line(&mut line)?;
    if n == 0 || !line.ends_with('\n') {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_owned())
}

/// Waits `delay`, then sends `text` in one write: the simulated round trip.
fn reply<S: Write>(io: &mut BufReader<S>, delay: Duration, text: &str) -> io::Result<()> {
    std::thread::sleep(delay);
    let stream = io.get_mut();
    stream.write_all(text.as_bytes())?;
    stream.flush()
}
