//! Tests of the SOCKS5 exchange: the messages byte for byte, the words for each failure, and
//! the handshake against scripted proxies on loopback.

use super::*;
use crate::secret::Secret;
use std::net::TcpListener;
use std::time::Duration;

#[test]
fn builds_every_connect_request() {
    let table: &[(Destination, &[u8])] = &[
        (
            Destination::Addr("127.0.0.1:25".parse().unwrap()),
            &[5, 1, 0, 1, 127, 0, 0, 1, 0, 25],
        ),
        (
            Destination::Addr("[::1]:587".parse().unwrap()),
            &[
                5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 75,
            ],
        ),
        (
            Destination::Name("mx.example".into(), 465),
            b"\x05\x01\x00\x03\x0amx.example\x01\xd1",
        ),
    ];
    for (destination, want) in table {
        assert_eq!(
            connect_request(destination).unwrap(),
            *want,
            "{destination}"
        );
    }
    assert!(connect_request(&Destination::Name("a".repeat(256), 25)).is_err());
}

#[test]
fn greeting_offers_password_only_with_credentials() {
    assert_eq!(greeting(false), [5, 1, 0]);
    assert_eq!(greeting(true), [5, 2, 0, 2]);
}

#[test]
fn auth_request_is_rfc_1929() {
    let auth = ProxyAuth {
        user: "alice".into(),
        password: Secret::new("pw"),
    };
    assert_eq!(*auth_request(&auth).unwrap(), b"\x01\x05alice\x02pw");
}

#[test]
fn every_reply_code_has_words() {
    let table = [
        (1, "general SOCKS server failure (SOCKS reply 1)"),
        (
            2,
            "the proxy refused: connection not allowed by ruleset (SOCKS reply 2)",
        ),
        (3, "network unreachable (SOCKS reply 3)"),
        (4, "host unreachable (SOCKS reply 4)"),
        (5, "connection refused by the target (SOCKS reply 5)"),
        (6, "TTL expired"),
        (7, "CONNECT command"),
        (8, "address type (SOCKS reply 8)"),
        (9, "unknown reply (SOCKS reply 9)"),
    ];
    for (code, words) in table {
        let text = reply_words(code, false);
        assert!(text.contains(words), "{code}: {text}");
    }
    assert!(reply_words(8, true).contains("use socks5://"));
}

#[test]
fn an_http_proxy_is_named() {
    let text = SocksError::NotSocks5 { first: b'H' }.to_string();
    assert!(
        text.contains("'H'") && text.contains("HTTP proxy"),
        "{text}"
    );
}

/// A proxy's script: read exactly these bytes, then send those; step by step.
type Steps = Vec<(Vec<u8>, Vec<u8>)>;

/// A proxy that follows `steps`, then holds the connection until the client is done.
fn scripted(steps: Steps) -> (TcpStream, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        for (expect, answer) in steps {
            let mut got = vec![0; expect.len()];
            conn.read_exact(&mut got).unwrap();
            assert_eq!(got, expect);
            conn.write_all(&answer).unwrap();
        }
        // Hold the connection until the client is done.
        let _ = conn.read(&mut [0; 1]);
    });
    (TcpStream::connect(addr).unwrap(), thread)
}

#[test]
fn success_reads_exactly_the_reply() {
    let destination = Destination::Name("localhost".into(), 25);
    let auth = ProxyAuth {
        user: "alice".into(),
        password: Secret::new("pw"),
    };
    let reply = [&[5, 0, 0, 1, 192, 0, 2, 7, 0x04, 0x38][..], b"220 "].concat();
    let (stream, thread) = scripted(vec![
        (greeting(true), vec![5, 2]),
        (auth_request(&auth).unwrap().to_vec(), vec![1, 0]),
        (connect_request(&destination).unwrap(), reply),
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let bound = handshake(&stream, Some(&auth), &destination, deadline).unwrap();
    assert_eq!(bound, Some("192.0.2.7:1080".parse().unwrap()));
    let mut next = [0; 4];
    (&stream).read_exact(&mut next).unwrap();
    assert_eq!(&next, b"220 ", "the target's first bytes are left unread");
    drop(stream);
    thread.join().unwrap();
}

#[test]
fn failures_in_words() {
    let destination = Destination::Addr("127.0.0.1:25".parse().unwrap());
    let connect = connect_request(&destination).unwrap();
    let table: Vec<(Steps, &str)> = vec![
        (
            vec![(greeting(false), vec![5, 0xFF])],
            "requires authentication",
        ),
        (vec![(greeting(false), b"HT".to_vec())], "HTTP proxy"),
        (vec![(greeting(false), vec![5, 2])], "was not offered"),
        (
            vec![
                (greeting(false), vec![5, 0]),
                (connect.clone(), vec![5, 2, 0, 1]),
            ],
            "connection not allowed by ruleset (SOCKS reply 2)",
        ),
        (
            vec![
                (greeting(false), vec![5, 0]),
                (connect.clone(), vec![5, 0, 0, 9]),
            ],
            "address type 9",
        ),
    ];
    for (steps, words) in table {
        let (stream, thread) = scripted(steps);
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = handshake(&stream, None, &destination, deadline).unwrap_err();
        assert!(err.to_string().contains(words), "{err}");
        drop(stream);
        thread.join().unwrap();
    }
}

#[test]
fn a_silent_proxy_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let destination = Destination::Addr("127.0.0.1:25".parse().unwrap());
    let err = handshake(&stream, None, &destination, deadline).unwrap_err();
    assert!(err.timed_out(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.to_string().contains("timed out"), "{err}");
}
