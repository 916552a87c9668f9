//! The MTA-STS policy fetch (RFC 8461 §3.3) against an in-process HTTPS server on loopback
//! (`support::https`: a rustls server with a certificate for `mta-sts.example.test` from a test
//! CA, a minimal HTTP/1.1 responder), and a resolver that maps that name to 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use smtptls::check::mta_sts::{FetchSettings, StsError, fetch_policy, parse_policy};
use support::https::{HttpsServer, response, text_plain};
use support::{Leaf, TestPki};

const DOMAIN: &str = "example.test";
const POLICY_HOST: &str = "mta-sts.example.test";
const POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A test CA, its file for `ca_files`, and the directory that holds it.
struct Trust {
    pki: TestPki,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn trust() -> Trust {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let ca_file = pki.write_ca(dir.path());
    Trust {
        pki,
        ca_file,
        _dir: dir,
    }
}

/// Settings that trust `ca_file` and resolve the policy host (only) to loopback, recording the
/// names asked for.
fn settings(port: u16, ca_file: &Path, asked: &Arc<Mutex<Vec<String>>>) -> FetchSettings {
    let asked = Arc::clone(asked);
    FetchSettings {
        ca_files: vec![ca_file.to_path_buf()],
        timeout: TIMEOUT,
        port,
        resolve: Arc::new(move |host: &str| {
            asked.lock().unwrap().push(host.to_owned());
            if host == POLICY_HOST {
                Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
            } else {
                Err(format!("{host}: no such name in the test"))
            }
        }),
    }
}

/// Serves `response` with a valid certificate for the policy host and fetches from it.
fn fetch_with(response: Vec<u8>) -> (Result<String, StsError>, String) {
    let trust = trust();
    let server = HttpsServer::start(&trust.pki.leaf_for(&[POLICY_HOST]), response);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let result = fetch_policy(DOMAIN, &settings(server.port(), &trust.ca_file, &asked));
    let request = server.request();
    assert_eq!(*asked.lock().unwrap(), [POLICY_HOST]);
    (result, request)
}

#[test]
fn fetches_the_policy() {
    let (result, request) = fetch_with(text_plain(POLICY.as_bytes()));
    let text = result.unwrap();
    assert_eq!(text, POLICY);
    assert_eq!(parse_policy(&text).unwrap().mx, ["mx.example.test"]);
    let first = request.lines().next().unwrap();
    assert_eq!(first, "GET /.well-known/mta-sts.txt HTTP/1.1");
    assert!(
        request
            .to_ascii_lowercase()
            .contains(&format!("\r\nhost: {POLICY_HOST}:")),
        "{request}"
    );
}

#[test]
fn content_type_parameters_are_allowed() {
    for content_type in [
        "text/plain; charset=utf-8",
        "TEXT/PLAIN;charset=\"us-ascii\"",
    ] {
        let body = POLICY.as_bytes();
        let (result, _) = fetch_with(response("200 OK", &[("Content-Type", content_type)], body));
        assert_eq!(result.unwrap(), POLICY, "{content_type}");
    }
}

#[test]
fn only_200_is_success() {
    for (status, code) in [
        ("404 Not Found", 404),
        ("500 Oops", 500),
        ("204 No Content", 204),
    ] {
        let (result, _) = fetch_with(response(status, &[("Content-Type", "text/plain")], b""));
        let err = result.unwrap_err();
        assert_eq!(err, StsError::HttpStatus(code));
        assert_eq!(err.to_string(), format!("policy fetch failed: HTTP {code}"));
    }
}

#[test]
fn redirects_are_refused() {
    let (result, _) = fetch_with(response(
        "301 Moved Permanently",
        &[("Location", "https://elsewhere.example.test/policy.txt")],
        b"",
    ));
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "redirect refused (RFC 8461 §3.3): HTTP 301 to \"https://elsewhere.example.test/policy.txt\""
    );
    let (result, _) = fetch_with(response("302 Found", &[], b""));
    assert!(matches!(
        result,
        Err(StsError::Redirect {
            status: 302,
            location: None
        })
    ));
}

#[test]
fn wrong_content_type_is_refused() {
    let (result, _) = fetch_with(response(
        "200 OK",
        &[("Content-Type", "text/html")],
        POLICY.as_bytes(),
    ));
    assert_eq!(
        result.unwrap_err().to_string(),
        "policy fetch failed: Content-Type is \"text/html\", not text/plain (RFC 8461 §3.2)"
    );
    let (result, _) = fetch_with(response("200 OK", &[], POLICY.as_bytes()));
    assert_eq!(result, Err(StsError::ContentType(None)));
    let (result, _) = fetch_with(response(
        "200 OK",
        &[("Content-Type", "text/plainx")],
        POLICY.as_bytes(),
    ));
    assert!(matches!(result, Err(StsError::ContentType(Some(_)))));
}

#[test]
fn body_over_64_kib_is_refused() {
    let limit = 64 * 1024;
    let (result, _) = fetch_with(text_plain(&vec![b'a'; limit]));
    assert_eq!(result.unwrap().len(), limit);
    let (result, _) = fetch_with(text_plain(&vec![b'a'; limit + 1]));
    assert_eq!(result, Err(StsError::TooLarge));
    // Without Content-Length, delimited by the end of the connection.
    let mut close_delimited =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n".to_vec();
    close_delimited.extend(vec![b'a'; 200 * 1024]);
    let (result, _) = fetch_with(close_delimited);
    assert_eq!(result, Err(StsError::TooLarge));
}

#[test]
fn body_that_is_not_utf8_is_refused() {
    let (result, _) = fetch_with(text_plain(b"version: STSv1\r\n\xff\xfe\r\n"));
    assert_eq!(
        result,
        Err(StsError::InvalidPolicy(
            "the policy is not UTF-8 text".to_owned()
        ))
    );
}

fn certificate_refused(leaf: &Leaf, ca_files: Vec<PathBuf>) -> String {
    let server = HttpsServer::start(leaf, text_plain(POLICY.as_bytes()));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut settings = settings(server.port(), Path::new(""), &asked);
    settings.ca_files = ca_files;
    let err = fetch_policy(DOMAIN, &settings).unwrap_err();
    assert!(
        server.request().is_empty(),
        "no request after a failed handshake"
    );
    match err {
        StsError::Certificate(words) => words,
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn untrusted_ca_is_refused() {
    let trusted = trust();
    // Another CA under the same name: the chain is found, its signature does not verify.
    let stranger = TestPki::new();
    let words = certificate_refused(
        &stranger.leaf_for(&[POLICY_HOST]),
        vec![trusted.ca_file.clone()],
    );
    assert!(words.contains("signature"), "{words}");
    // Mozilla's roots alone do not know the test CA either.
    let words = certificate_refused(&trusted.pki.leaf_for(&[POLICY_HOST]), vec![]);
    assert!(words.contains("unknown authority"), "{words}");
}

#[test]
fn certificate_for_another_name_is_refused() {
    let trust = trust();
    let words = certificate_refused(
        &trust.pki.leaf_for(&["example.test", "www.example.test"]),
        vec![trust.ca_file.clone()],
    );
    assert!(
        words.contains("not valid for mta-sts.example.test"),
        "{words}"
    );
}

#[test]
fn unreadable_ca_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let err = fetch_policy(DOMAIN, &settings(1, &empty, &asked)).unwrap_err();
    assert!(matches!(err, StsError::CaFile { .. }), "{err:?}");
    assert!(
        asked.lock().unwrap().is_empty(),
        "nothing resolved before the trust is known"
    );
}

#[test]
fn resolution_failure_is_reported() {
    let trust = trust();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let err = fetch_policy("other.test", &settings(1, &trust.ca_file, &asked)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy host mta-sts.other.test could not be resolved: mta-sts.other.test: no such name in the test"
    );
    let mut no_address = settings(1, &trust.ca_file, &asked);
    no_address.resolve = Arc::new(|_: &str| Ok(Vec::new()));
    assert!(matches!(
        fetch_policy(DOMAIN, &no_address),
        Err(StsError::Resolve { .. })
    ));
}

#[test]
fn silent_server_is_bounded_by_the_timeout() {
    let trust = trust();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts, then says nothing until the client gives up.
    let silent = thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink);
    });
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut settings = settings(port, &trust.ca_file, &asked);
    settings.timeout = Duration::from_millis(700);
    let started = Instant::now();
    let err = fetch_policy(DOMAIN, &settings).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, StsError::Timeout(Duration::from_millis(700)));
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    silent.join().unwrap();
}

#[test]
fn stalled_body_is_bounded_by_the_timeout() {
    let trust = trust();
    let leaf = trust.pki.leaf_for(&[POLICY_HOST]);
    // Promises 100 bytes, sends 10, then waits until the client hangs up.
    let head =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789";
    let server = HttpsServer::start_stalling(&leaf, head.to_vec());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut settings = settings(server.port(), &trust.ca_file, &asked);
    settings.timeout = Duration::from_millis(700);
    let started = Instant::now();
    let result = fetch_policy(DOMAIN, &settings);
    let took = started.elapsed();
    drop(server);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(result, Err(StsError::Timeout(Duration::from_millis(700))));
}

#[test]
fn resolver_that_hangs_is_bounded_by_the_timeout() {
    let trust = trust();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut settings = settings(1, &trust.ca_file, &asked);
    settings.timeout = Duration::from_millis(500);
    settings.resolve = Arc::new(|_: &str| {
        thread::sleep(Duration::from_secs(3));
        Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
    });
    let started = Instant::now();
    let err = fetch_policy(DOMAIN, &settings).unwrap_err();
    assert_eq!(err, StsError::Timeout(Duration::from_millis(500)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn refused_connection_is_reported() {
    let trust = trust();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let asked = Arc::new(Mutex::new(Vec::new()));
    let err = fetch_policy(DOMAIN, &settings(port, &trust.ca_file, &asked)).unwrap_err();
    assert!(
        matches!(&err, StsError::Fetch(words) if words.starts_with("connection to mta-sts.example.test")),
        "{err:?}"
    );
}
