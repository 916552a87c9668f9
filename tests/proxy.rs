//! End-to-end tests of `--proxy` (RFC 1928 SOCKS5, RFC 1929 username/password) against a tiny
//! in-test SOCKS5 proxy on `127.0.0.1:0`, in front of the fake SMTP server: the CONNECT request
//! smtptls sends (an address for `socks5://`, the name for `socks5h://`), success end to end for
//! every subcommand, each refusal in words with exit 3, a proxy that never answers bounded by
//! `--timeout`, an unreachable proxy, authentication, and the URL's usage errors — and the proxy
//! password nowhere in the output. The real-proxy tests (Dante) are in tests/postfix.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;
use support::cli::smtptls_env;
use support::dns::TestDns;
use support::{FakeSmtp, Fixture, Run, args, get_cert, smtptls};

/// The proxy password the tests put in the environment; it must never be printed.
const PASSWORD: &str = "proxy-pw-7f3a9c";
/// The schema the `--json` output must match.
const SCHEMA: &str = include_str!("../schemas/report.schema.json");

/// What the fake proxy does with a connection.
#[derive(Clone)]
enum Behaviour {
    /// No authentication; CONNECT relayed to the destination (`localhost` is 127.0.0.1).
    Relay,
    /// No authentication; CONNECT answered with this failure code.
    Refuse(u8),
    /// Accept the TCP connection, then say nothing at all.
    Silent,
    /// Answer the greeting, then never answer CONNECT.
    SilentAfterGreeting,
    /// Require username/password (RFC 1929); relay when they match, else status 1.
    Auth(&'static str, &'static str),
    /// Answer the greeting with these bytes (another protocol) and close.
    Raw(&'static [u8]),
}

/// One connection as the proxy saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// The methods offered in the greeting.
    methods: Vec<u8>,
    /// The user and password sent, if any.
    auth: Option<(String, String)>,
    /// The CONNECT request's address type (0 when none came).
    atyp: u8,
    /// The CONNECT destination as `HOST:PORT` (`[v6]:PORT` for IPv6).
    destination: String,
}

/// A SOCKS5 proxy on `127.0.0.1:0`, serving each connection in its own thread until dropped.
struct FakeSocks {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeSocks {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            let (behaviour, seen, stop) =
                                (behaviour.clone(), seen.clone(), stop.clone());
                            thread::spawn(move || serve(conn, &behaviour, &seen, &stop));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => panic!("fake proxy accept: {e}"),
                    }
                }
            })
        };
        Self {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeSocks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One connection: the greeting, authentication when required, CONNECT, then what `behaviour`
/// says. Records what it saw as it goes.
fn serve(mut conn: TcpStream, behaviour: &Behaviour, seen: &Mutex<Vec<Seen>>, stop: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen::default());
        seen.len() - 1
    };
    let record = |f: &dyn Fn(&mut Seen)| f(&mut seen.lock().unwrap()[index]);
    if matches!(behaviour, Behaviour::Silent) {
        return hold(conn, stop);
    }
    let Ok([5, count]) = read::<2>(&mut conn) else {
        return;
    };
    let mut methods = vec![0; usize::from(count)];
    conn.read_exact(&mut methods).unwrap();
    record(&|s| s.methods.clone_from(&methods));
    match behaviour {
        Behaviour::Raw(bytes) => {
            conn.write_all(bytes).unwrap();
            return;
        }
        Behaviour::Auth(user, password) => {
            if !methods.contains(&2) {
                conn.write_all(&[5, 0xFF]).unwrap();
                return;
            }
            conn.write_all(&[5, 2]).unwrap();
            let [1, ulen] = read::<2>(&mut conn).unwrap() else {
                panic!("RFC 1929 version is not 1");
            };
            let got_user = read_string(&mut conn, ulen);
            let [plen] = read::<1>(&mut conn).unwrap();
            let got_password = read_string(&mut conn, plen);
            record(&|s| s.auth = Some((got_user.clone(), got_password.clone())));
            let ok = got_user == *user && got_password == *password;
            conn.write_all(&[1, u8::from(!ok)]).unwrap();
            if !ok {
                return;
            }
        }
        _ => conn.write_all(&[5, 0]).unwrap(),
    }
    if matches!(behaviour, Behaviour::SilentAfterGreeting) {
        return hold(conn, stop);
    }
    let [5, 1, 0, atyp] = read::<4>(&mut conn).unwrap() else {
        panic!("not a SOCKS5 CONNECT request");
    };
    let (host, target) = match atyp {
        1 => {
            let ip = Ipv4Addr::from(read::<4>(&mut conn).unwrap());
            (ip.to_string(), SocketAddr::from((ip, 0)))
        }
        4 => {
            let ip = Ipv6Addr::from(read::<16>(&mut conn).unwrap());
            (format!("[{ip}]"), SocketAddr::from((ip, 0)))
        }
        3 => {
            let [len] = read::<1>(&mut conn).unwrap();
            let name = read_string(&mut conn, len);
            assert_eq!(name, "localhost", "the fake proxy resolves localhost only");
            (name, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        }
        other => panic!("address type {other}"),
    };
    let port = u16::from_be_bytes(read::<2>(&mut conn).unwrap());
    record(&|s| {
        s.atyp = atyp;
        s.destination = format!("{host}:{port}");
    });
    if let Behaviour::Refuse(code) = behaviour {
        conn.write_all(&[5, *code, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        return;
    }
    let Ok(upstream) = TcpStream::connect(SocketAddr::new(target.ip(), port)) else {
        conn.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        return;
    };
    let bound = upstream.local_addr().unwrap();
    let mut reply = vec![5, 0, 0, 1];
    reply.extend_from_slice(&[127, 0, 0, 1]);
    reply.extend_from_slice(&bound.port().to_be_bytes());
    conn.write_all(&reply).unwrap();
    relay(conn, upstream);
}

/// Keep the connection open, saying nothing, until the test ends.
fn hold(conn: TcpStream, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(20));
    }
    drop(conn);
}

/// Copy both ways until each side closes.
fn relay(client: TcpStream, upstream: TcpStream) {
    client.set_read_timeout(None).unwrap();
    let pump = |mut from: TcpStream, mut to: TcpStream| {
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        })
    };
    let a = pump(client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let b = pump(upstream, client);
    let _ = a.join();
    let _ = b.join();
}

fn read<const N: usize>(conn: &mut TcpStream) -> io::Result<[u8; N]> {
    let mut buf = [0; N];
    conn.read_exact(&mut buf)?;
    Ok(buf)
}

fn read_string(conn: &mut TcpStream, len: u8) -> String {
    let mut buf = vec![0; usize::from(len)];
    conn.read_exact(&mut buf).unwrap();
    String::from_utf8(buf).unwrap()
}

/// A port on loopback that nothing listens on (bound, then released).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// stdout as JSON, matching `schemas/report.schema.json`.
#[track_caller]
fn schema_checked(run: &Run) -> Value {
    let doc = run.json();
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}\n{run}", errors.join("\n"));
    doc
}

/// `first` (the subcommand and its arguments), then the fixture's `--ca-file` and `--sni`.
fn trusting(first: &[&str], fx: &Fixture) -> Vec<String> {
    let mut all: Vec<String> = first.iter().map(|s| (*s).to_owned()).collect();
    all.extend(fx.trust_args());
    all
}

/// The proxy password shows neither on stdout nor on stderr.
#[track_caller]
fn assert_no_password(run: &Run) {
    assert!(
        !run.output().contains(PASSWORD),
        "the proxy password is in the output\n{run}"
    );
}

#[test]
fn socks5_sends_the_address_and_the_probe_succeeds() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let proxy = FakeSocks::start(Behaviour::Relay);

    let url = proxy.url("socks5");
    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["--proxy", &url, "--json"]),
    );

    run.assert_code(0);
    let doc = schema_checked(&run);
    assert_eq!(doc["target"]["address"], server.addr().to_string(), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "== connecting through SOCKS5 proxy {}\n",
            proxy.addr
        )),
        "{run}"
    );
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].methods, [0], "only 'no authentication' offered");
    assert_eq!(seen[0].atyp, 1, "ATYP IPv4");
    assert_eq!(seen[0].destination, server.addr().to_string());
    let log = server.finish();
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "~EHLO", "~QUIT"]);
}

#[test]
fn socks5_resolves_the_name_here_honouring_dash_4() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let proxy = FakeSocks::start(Behaviour::Relay);

    let target = format!("localhost:{}", server.port());
    let url = proxy.url("socks5");
    let run = smtptls(trusting(
        &["get-cert", &target, "-4", "--timeout", "5", "--proxy", &url],
        &fx,
    ));

    run.assert_code(0);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].atyp, 1, "ATYP IPv4: -4 is honoured");
    assert_eq!(seen[0].destination, format!("127.0.0.1:{}", server.port()));
    server.finish();
}

#[test]
fn socks5h_sends_the_name_to_the_proxy() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let proxy = FakeSocks::start(Behaviour::Relay);

    let target = format!("localhost:{}", server.port());
    let url = proxy.url("socks5h");
    let run = smtptls(trusting(
        &[
            "get-cert",
            &target,
            "-4",
            "--timeout",
            "5",
            "--proxy",
            &url,
            "--json",
        ],
        &fx,
    ));

    run.assert_code(0);
    let doc = schema_checked(&run);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].atyp, 3, "ATYP domain name");
    assert_eq!(seen[0].destination, target);
    assert_eq!(
        doc["target"]["address"],
        format!("{target} via {url}"),
        "the proxy's bound address is not the target's: {run}"
    );
    assert!(
        run.stderr
            .contains("the proxy resolves localhost (socks5h), so -4/-6 cannot apply"),
        "{run}"
    );
    server.finish();
}

#[test]
fn a_refusing_proxy_exits_3_in_words() {
    let table = [
        (
            2,
            "the proxy refused: connection not allowed by ruleset (SOCKS reply 2)",
        ),
        (4, "host unreachable (SOCKS reply 4)"),
        (5, "connection refused by the target (SOCKS reply 5)"),
    ];
    for (code, words) in table {
        let proxy = FakeSocks::start(Behaviour::Refuse(code));
        let target = format!("127.0.0.1:{}", dead_port());
        let url = proxy.url("socks5");
        let run = smtptls(["get-cert", &target, "--proxy", &url, "--json"]);

        run.assert_code(3);
        let doc = schema_checked(&run);
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "reply {code}: {message}");
        assert!(
            message.contains(&format!("through the SOCKS5 proxy {}", proxy.addr)),
            "{message}"
        );
        assert_eq!(doc["error"]["kind"], "connect");
    }
}

#[test]
fn a_proxy_that_never_answers_is_bounded_by_the_timeout() {
    for behaviour in [Behaviour::Silent, Behaviour::SilentAfterGreeting] {
        let proxy = FakeSocks::start(behaviour);
        let target = format!("127.0.0.1:{}", dead_port());
        let url = proxy.url("socks5");
        let run = smtptls(["get-cert", &target, "--timeout", "2", "--proxy", &url]);

        run.assert_code(3);
        assert!(
            run.elapsed < Duration::from_secs(3),
            "took {:?}, --timeout is 2\n{run}",
            run.elapsed
        );
        let output = run.output();
        assert!(output.contains("timed out waiting for the proxy"), "{run}");
        assert!(output.contains(&proxy.addr.to_string()), "{run}");
    }
}

#[test]
fn an_unreachable_proxy_exits_3_naming_it() {
    let port = dead_port();
    let url = format!("socks5://127.0.0.1:{port}");
    let run = smtptls([
        "get-cert",
        "127.0.0.1:25",
        "--timeout",
        "5",
        "--proxy",
        &url,
    ]);

    run.assert_code(3);
    let output = run.output();
    assert!(
        output.contains(&format!(
            "through the SOCKS5 proxy 127.0.0.1:{port}: the proxy is unreachable"
        )),
        "{run}"
    );
    assert!(output.contains("connection refused"), "{run}");
}

#[test]
fn user_in_the_url_password_from_the_environment() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let proxy = FakeSocks::start(Behaviour::Auth("alice", PASSWORD));
    let url = format!("socks5://alice@{}", proxy.addr);

    for extra in [&["--json"][..], &[][..]] {
        let target = server.server_arg();
        let mut all = trusting(&["get-cert", &target], &fx);
        all.extend(["--timeout", "5", "--proxy", &url].map(String::from));
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        let run = smtptls_env(&all, &[("SMTPTLS_PROXY_PASSWORD", PASSWORD)], None);
        run.assert_code(0);
        assert_no_password(&run);
        assert!(
            run.stderr
                .contains(&format!("proxy {} as user \"alice\"", proxy.addr)),
            "{run}"
        );
    }
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[0].methods,
        [0, 2],
        "none and username/password offered"
    );
    assert_eq!(
        seen[0].auth,
        Some(("alice".to_owned(), PASSWORD.to_owned()))
    );
    server.finish();
}

#[test]
fn authentication_failures_exit_3_in_words() {
    let proxy = FakeSocks::start(Behaviour::Auth("alice", "the-right-one"));
    let target = format!("127.0.0.1:{}", dead_port());
    let with_user = format!("socks5://alice@{}", proxy.addr);
    let without_user = proxy.url("socks5");
    let table: &[(&str, &str)] = &[
        (
            &with_user,
            "the proxy rejected user \"alice\" or its password",
        ),
        (
            &without_user,
            "the proxy requires authentication: give the user in the URL (socks5://USER@HOST) and the password in SMTPTLS_PROXY_PASSWORD",
        ),
    ];
    for (url, words) in table {
        let run = smtptls_env(
            ["get-cert", &target, "--timeout", "5", "--proxy", url],
            &[("SMTPTLS_PROXY_PASSWORD", PASSWORD)],
            None,
        );
        run.assert_code(3);
        assert!(run.output().contains(words), "{run}");
        assert_no_password(&run);
    }
}

#[test]
fn an_http_proxy_is_recognised() {
    let proxy = FakeSocks::start(Behaviour::Raw(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    let target = format!("127.0.0.1:{}", dead_port());
    let url = proxy.url("socks5");
    let run = smtptls(["get-cert", &target, "--timeout", "5", "--proxy", &url]);

    run.assert_code(3);
    assert!(
        run.output()
            .contains("the proxy does not speak SOCKS5: its answer begins with 0x48 ('H'): is it an HTTP proxy?"),
        "{run}"
    );
}

#[test]
fn bad_proxy_urls_are_usage_errors() {
    let table: &[(&str, Option<&str>, &str)] = &[
        (
            "http://127.0.0.1:3128",
            None,
            "unsupported proxy scheme \"http\"",
        ),
        ("127.0.0.1:1080", None, "give a URL: socks5://HOST[:PORT]"),
        ("socks5://", None, "the proxy host is missing"),
        ("socks5://h:0", None, "proxy invalid port \"0\""),
        (
            "socks5://alice:proxy-pw-7f3a9c@127.0.0.1",
            None,
            "a password in the proxy URL would show in `ps` and in shell history",
        ),
        (
            "socks5://alice@127.0.0.1",
            None,
            "the proxy URL names a user; put the password in SMTPTLS_PROXY_PASSWORD",
        ),
        (
            "socks5://alice@127.0.0.1",
            Some(""),
            "the proxy password must be 1 to 255 bytes",
        ),
    ];
    for (url, password, words) in table {
        let env: Vec<(&str, &str)> = password
            .map(|p| ("SMTPTLS_PROXY_PASSWORD", p))
            .into_iter()
            .collect();
        let run = smtptls_env(
            ["get-cert", "127.0.0.1:25", "--proxy", url, "--json"],
            &env,
            None,
        );
        run.assert_code(2);
        assert!(run.stderr.contains(words), "{url}: {run}");
        assert_no_password(&run);
    }
}

#[test]
fn test_smtp_goes_through_the_proxy() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let proxy = FakeSocks::start(Behaviour::Relay);

    let url = proxy.url("socks5");
    let target = server.server_arg();
    let run = smtptls(trusting(
        &["test-smtp", &target, "--timeout", "5", "--proxy", &url],
        &fx,
    ));

    run.assert_code(0);
    assert_eq!(proxy.seen().len(), 1);
    server.finish();
}

#[test]
fn check_probes_through_the_proxy_and_asks_dns_directly() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.leaf_for(&["mx.proxied.test"]))
        .start();
    let dns = TestDns::builder()
        .mx("proxied.test", 10, "mx.proxied.test")
        .a("mx.proxied.test", "127.0.0.1")
        .start();
    let proxy = FakeSocks::start(Behaviour::Relay);

    let (port, resolver, ca) = (
        server.port().to_string(),
        dns.addr().to_string(),
        fx.ca_file(),
    );
    let url = proxy.url("socks5h");
    let run = smtptls([
        "check",
        "proxied.test",
        "--resolver",
        &resolver,
        "--port",
        &port,
        "--ca-file",
        &ca,
        "--timeout",
        "5",
        "--proxy",
        &url,
        "--json",
    ]);

    let doc = run.json();
    let address = &doc["domains"][0]["hosts"][0]["addresses"][0];
    assert_eq!(address["report"]["exit_code"], 0, "{run}");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0].atyp, 1,
        "check resolves the MX itself: an address, even with socks5h"
    );
    assert_eq!(seen[0].destination, format!("127.0.0.1:{port}"));
    server.finish();
}
