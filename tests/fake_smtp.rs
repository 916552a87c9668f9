//! Self-tests of the test support: the fake SMTP server and the test PKI, driven by a plain rustls
//! client, so they are proven independently of the `smtptls` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use support::{Event, FakeSmtp, Flow, TestPki, self_signed_leaf};

/// A minimal SMTP client: enough to drive the fake server through each of its behaviours.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(server: &FakeSmtp) -> Self {
        let sock = TcpStream::connect(server.addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Self {
            reader: BufReader::new(sock),
        }
    }

    fn send(&mut self, line: &str) {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    fn reply(&mut self) -> Vec<String> {
        read_reply(&mut self.reader)
    }

    fn command(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.reply()
    }

    /// STARTTLS has been answered 220: hand the socket to rustls (asserting nothing was buffered).
    fn into_tls(self, config: ClientConfig, name: &str) -> TlsClient {
        assert!(
            self.reader.buffer().is_empty(),
            "bytes after the 220: {:?}",
            self.reader.buffer()
        );
        TlsClient::handshake(self.reader.into_inner(), config, name)
    }
}

struct TlsClient {
    reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    fn handshake(mut sock: TcpStream, config: ClientConfig, name: &str) -> Self {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).unwrap();
        }
        Self {
            reader: BufReader::new(StreamOwned::new(conn, sock)),
        }
    }

    fn command(&mut self, line: &str) -> Vec<String> {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.reader.get_mut().flush().unwrap();
        read_reply(&mut self.reader)
    }

    fn reply(&mut self) -> Vec<String> {
        read_reply(&mut self.reader)
    }

    fn peer_chain(&self) -> Vec<Vec<u8>> {
        let conn = &self.reader.get_ref().conn;
        conn.peer_certificates()
            .unwrap()
            .iter()
            .map(|c| c.to_vec())
            .collect()
    }

    fn version(&self) -> rustls::ProtocolVersion {
        self.reader.get_ref().conn.protocol_version().unwrap()
    }
}

fn read_reply(reader: &mut impl BufRead) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "connection closed mid-reply"
        );
        let line = line.trim_end().to_owned();
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line);
        if last {
            return lines;
        }
    }
}

fn client_config(pki: &TestPki, versions: &[&'static SupportedProtocolVersion]) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_der())).unwrap();
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn all_versions() -> Vec<&'static SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

#[test]
fn starttls_dialogue_is_recorded_plain_then_tls() {
    let pki = TestPki::new();
    let leaf = pki.leaf();
    let server = FakeSmtp::builder()
        .banner(&["220-fake.smtptls.test first line", "220 second line"])
        .ehlo_extensions(&["PIPELINING", "STARTTLS", "SIZE 1000"])
        .leaf(&leaf)
        .start();

    let mut client = Client::connect(&server);
    assert_eq!(
        client.reply(),
        ["220-fake.smtptls.test first line", "220 second line"]
    );
    let ehlo = client.command("EHLO client.test");
    assert_eq!(ehlo[0], "250-fake.smtptls.test greets client.test");
    assert_eq!(
        &ehlo[1..],
        ["250-PIPELINING", "250-STARTTLS", "250 SIZE 1000"]
    );
    assert_eq!(client.command("STARTTLS"), ["220 2.0.0 Ready to start TLS"]);
    let mut tls = client.into_tls(client_config(&pki, &all_versions()), "localhost");
    assert_eq!(tls.peer_chain(), leaf.chain_der());
    let ehlo_tls = tls.command("EHLO client.test");
    assert_eq!(
        &ehlo_tls[1..],
        ["250-PIPELINING", "250 SIZE 1000"],
        "no STARTTLS inside TLS"
    );
    assert_eq!(tls.command("QUIT"), ["221 2.0.0 Bye"]);
    drop(tls);

    let log = server.finish();
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "~EHLO", "~QUIT"]);
    assert_eq!(log.received[2].args(), "client.test");
    assert!(log.client_hello_seen());
    let sessions = log.tls_sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].version, "TLSv1_3");
    assert_eq!(sessions[0].sni.as_deref(), Some("localhost"));
    assert_eq!(log.connections(), 1);
}

#[test]
fn implicit_tls_handshakes_before_the_banner_and_sends_the_whole_chain() {
    let pki = TestPki::new();
    let leaf = pki.chain_leaf();
    let server = FakeSmtp::builder().implicit_tls(true).leaf(&leaf).start();

    let sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = TlsClient::handshake(
        sock,
        client_config(&pki, &all_versions()),
        "mx.smtptls.test",
    );
    assert_eq!(
        tls.reply(),
        ["220 fake.smtptls.test ESMTP fake server ready"]
    );
    let chain = tls.peer_chain();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain, leaf.chain_der());
    assert_eq!(tls.command("EHLO c").last().unwrap(), "250 8BITMIME");
    assert_eq!(tls.command("QUIT"), ["221 2.0.0 Bye"]);
    drop(tls);

    let log = server.finish();
    assert_eq!(log.verbs(), ["~EHLO", "~QUIT"]);
    assert_eq!(
        log.tls_sessions()[0].sni.as_deref(),
        Some("mx.smtptls.test")
    );
}

#[test]
fn tls_versions_limit_what_the_server_accepts() {
    let pki = TestPki::new();
    let server = FakeSmtp::builder()
        .implicit_tls(true)
        .leaf(&pki.leaf())
        .tls_versions(&[&rustls::version::TLS12])
        .start();
    let sock = TcpStream::connect(server.addr()).unwrap();
    let tls = TlsClient::handshake(sock, client_config(&pki, &all_versions()), "localhost");
    assert_eq!(tls.version(), rustls::ProtocolVersion::TLSv1_2);
    drop(tls);
    let log = server.finish();
    assert_eq!(log.tls_sessions()[0].version, "TLSv1_2");
}

#[test]
fn a_failed_handshake_is_recorded() {
    let pki = TestPki::new();
    let server = FakeSmtp::builder()
        .implicit_tls(true)
        .leaf(&pki.leaf())
        .tls_versions(&[&rustls::version::TLS12])
        .start();
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let config = client_config(&pki, &[&rustls::version::TLS13]);
    let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let failed = loop {
        if !conn.is_handshaking() {
            break false;
        }
        if conn.complete_io(&mut sock).is_err() {
            break true;
        }
    };
    assert!(
        failed,
        "a TLS 1.3-only client cannot talk to a TLS 1.2-only server"
    );
    drop(sock);
    let log = server.finish();
    assert!(log.client_hello_seen());
    assert_eq!(log.tls_failures().len(), 1, "{log:#?}");
    assert!(log.tls_sessions().is_empty());
}

#[test]
fn plaintext_injected_after_the_starttls_reply_reaches_the_client() {
    let server = FakeSmtp::builder()
        .inject_after_starttls(b"250 injected\r\n")
        .start();
    let mut client = Client::connect(&server);
    client.reply();
    client.command("EHLO c");
    assert_eq!(client.command("STARTTLS"), ["220 2.0.0 Ready to start TLS"]);
    assert_eq!(client.reader.buffer(), b"250 injected\r\n");
    // A careful client gives up here; the server stays in plaintext and answers QUIT.
    let mut rest = Vec::new();
    client.reader.consume(client.reader.buffer().len());
    assert_eq!(client.command("QUIT"), ["221 2.0.0 Bye"]);
    client.reader.read_to_end(&mut rest).unwrap();
    drop(client);

    let log = server.finish();
    assert!(!log.client_hello_seen());
    assert!(
        log.events
            .iter()
            .any(|e| matches!(e, Event::NoClientHello(why) if why.contains("0x51"))),
        "QUIT's Q came where a ClientHello was due: {log:#?}"
    );
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "QUIT"]);
}

#[test]
fn a_client_that_closes_instead_of_a_client_hello_is_recorded() {
    let server = FakeSmtp::builder().start();
    let mut client = Client::connect(&server);
    client.reply();
    client.command("EHLO c");
    client.command("STARTTLS");
    drop(client);
    let log = server.finish();
    assert!(!log.client_hello_seen());
    assert!(
        log.events
            .contains(&Event::NoClientHello("client closed the connection".into()))
    );
}

#[test]
fn refused_ehlo_leaves_helo_working() {
    let server = FakeSmtp::builder().refuse_ehlo(502).start();
    let mut client = Client::connect(&server);
    client.reply();
    assert_eq!(
        client.command("EHLO c"),
        ["502 5.5.1 EHLO not supported, try HELO"]
    );
    assert_eq!(client.command("HELO c"), ["250 fake.smtptls.test"]);
    assert_eq!(client.command("QUIT"), ["221 2.0.0 Bye"]);
    drop(client);
    assert_eq!(server.finish().verbs(), ["EHLO", "HELO", "QUIT"]);
}

#[test]
fn starttls_not_offered_is_refused_and_a_custom_reply_is_sent_as_configured() {
    let without = FakeSmtp::builder().ehlo_extensions(&["PIPELINING"]).start();
    let mut client = Client::connect(&without);
    client.reply();
    assert_eq!(
        client.command("EHLO c"),
        ["250-fake.smtptls.test greets c", "250 PIPELINING"]
    );
    assert_eq!(
        client.command("STARTTLS"),
        ["502 5.5.1 STARTTLS not available"]
    );
    drop(client);
    without.finish();

    let busy = FakeSmtp::builder()
        .starttls_reply(&["454 4.7.0 TLS not available due to temporary reason"])
        .start();
    let mut client = Client::connect(&busy);
    client.reply();
    client.command("EHLO c");
    assert_eq!(
        client.command("STARTTLS"),
        ["454 4.7.0 TLS not available due to temporary reason"]
    );
    assert_eq!(
        client.command("NOOP"),
        ["250 2.0.0 OK"],
        "still plaintext after a refusal"
    );
    drop(client);
    let log = busy.finish();
    assert!(!log.client_hello_seen());
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "NOOP"]);
}

#[test]
fn handlers_script_extra_verbs_and_can_read_more_lines() {
    let server = FakeSmtp::builder()
        .reply("MAIL", &["250 2.1.0 Sender OK"])
        .handler("AUTH", |ex, received| {
            assert_eq!(received.args(), "LOGIN");
            ex.send(&["334 VXNlcm5hbWU6"])?;
            let user = ex.read_line()?.unwrap_or_default();
            ex.send(&[if user == "dXNlcg==" {
                "235 2.7.0 OK"
            } else {
                "535 5.7.8 no"
            }])?;
            Ok(Flow::Continue)
        })
        .handler("XCLOSE", |ex, _| {
            ex.send(&["421 4.3.0 closing"])?;
            Ok(Flow::Close)
        })
        .start();
    let mut client = Client::connect(&server);
    client.reply();
    assert_eq!(client.command("AUTH LOGIN"), ["334 VXNlcm5hbWU6"]);
    assert_eq!(client.command("dXNlcg=="), ["235 2.7.0 OK"]);
    assert_eq!(
        client.command("mail from:<a@b.test>"),
        ["250 2.1.0 Sender OK"]
    );
    assert_eq!(
        client.command("BOGUS"),
        ["500 5.5.2 Command not recognized"]
    );
    assert_eq!(client.command("XCLOSE"), ["421 4.3.0 closing"]);
    let mut rest = Vec::new();
    client.reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "the server closed the connection");
    drop(client);
    let log = server.finish();
    assert_eq!(log.verbs(), ["AUTH", "DXNLCG==", "MAIL", "BOGUS", "XCLOSE"]);
    assert_eq!(log.received[1].line, "dXNlcg==");
}

#[test]
fn serves_on_ipv6_loopback() {
    let server = match FakeSmtp::builder().ipv6().try_start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("note: skipping the IPv6 test, [::1] cannot be bound here: {e}");
            return;
        }
    };
    assert!(server.addr().is_ipv6());
    assert!(server.server_arg().starts_with("[::1]:"));
    let mut client = Client::connect(&server);
    assert!(client.reply()[0].starts_with("220 "));
    drop(client);
    assert_eq!(server.finish().connections(), 1);
}

#[test]
fn an_unused_server_can_be_expected_or_allowed() {
    FakeSmtp::builder().expect_no_connection().start().finish();
    FakeSmtp::builder().allow_unused().start().finish();
}

#[test]
#[should_panic(expected = "was never connected to")]
fn an_unused_server_fails_the_test_by_default() {
    drop(FakeSmtp::builder().start());
}

#[test]
#[should_panic(expected = "should not have been")]
fn a_server_expected_unused_fails_the_test_when_connected() {
    let server = FakeSmtp::builder().expect_no_connection().start();
    drop(TcpStream::connect(server.addr()).unwrap());
    server.finish();
}

#[test]
fn the_test_pki_issues_what_each_case_needs() {
    let pki = TestPki::new();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_der())).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let verify = |leaf: &support::Leaf, name: &str| {
        let chain = leaf.chain();
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    };

    let leaf = pki.leaf();
    for name in support::pki::LOOPBACK_NAMES {
        assert_eq!(verify(&leaf, name), Ok(()), "leaf for {name}");
    }
    assert_eq!(verify(&pki.chain_leaf(), "localhost"), Ok(()));
    assert_eq!(pki.chain_leaf().chain_der().len(), 2);
    let expired = verify(&pki.expired_leaf(), "localhost").unwrap_err();
    assert!(expired.contains("Expired"), "{expired}");
    let wrong = verify(&pki.wrong_name_leaf(), "localhost").unwrap_err();
    assert!(wrong.contains("NotValidForName"), "{wrong}");
    assert_eq!(
        verify(&pki.wrong_name_leaf(), support::pki::WRONG_NAME),
        Ok(())
    );
    let untrusted = verify(&self_signed_leaf(), "localhost").unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = pki.write_ca(dir.path());
    let written = std::fs::read_to_string(ca_file).unwrap();
    assert_eq!(support::pki::pem_certificates(&written), [pki.ca_der()]);
    assert_eq!(support::pki::pem_certificates(&leaf.pem()), [leaf.der()]);
    let fingerprint = leaf.sha256_fingerprint();
    assert_eq!(fingerprint.len(), 32 * 3 - 1);
    assert_eq!(fingerprint, fingerprint.to_uppercase());
}
