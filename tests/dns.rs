//! Tests of the DNS layer of `smtptls check` (`smtptls::check::dns::Dns`) against the in-process
//! test DNS server (`tests/support/dns.rs`): MX (RFC 5321 §5.1, RFC 7505), addresses, TXT, TLSA
//! with the AD bit, UDP truncation and TCP fallback, timeouts. Every server is on loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_server::proto::op::{Edns, Message, Query};
use hickory_server::proto::rr::{Name, RecordType};
use smtptls::check::dns::{Dns, DnsError, MxHost, MxLookup, Tlsa, TlsaLookup};
use support::dns::TestDns;

/// Generous: the test machine may be busy; only the timeout test waits for it to pass.
const TIMEOUT: Duration = Duration::from_secs(5);

fn dns(server: &TestDns) -> Dns {
    Dns::new(Some(server.addr()), TIMEOUT).unwrap()
}

fn mx(preference: u16, host: &str) -> MxHost {
    MxHost {
        preference,
        host: host.to_owned(),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Sends one query to the test server by hand, over UDP or TCP, with EDNS (1232 bytes) and
/// optionally the DO bit, and returns the decoded answer.
fn raw_query(
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
    dnssec: bool,
    tcp: bool,
) -> Message {
    let mut query = Message::new();
    query
        .set_id(7)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    query
        .extensions_mut()
        .get_or_insert_with(Edns::new)
        .set_max_payload(1232)
        .set_dnssec_ok(dnssec);
    let query = query.to_vec().unwrap();
    let reply = if tcp {
        let mut stream = TcpStream::connect(server).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let len = u16::try_from(query.len()).unwrap().to_be_bytes();
        stream.write_all(&[&len[..], &query].concat()).unwrap();
        let mut len = [0; 2];
        stream.read_exact(&mut len).unwrap();
        let mut reply = vec![0; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut reply).unwrap();
        reply
    } else {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket.send_to(&query, server).unwrap();
        let mut reply = vec![0; 65_535];
        let len = socket.recv(&mut reply).unwrap();
        reply.truncate(len);
        reply
    };
    Message::from_vec(&reply).unwrap()
}

#[test]
fn the_test_server_truncates_over_udp_and_stamps_ad_only_when_asked() {
    let chunk = "y".repeat(255);
    let server = TestDns::builder()
        .zone("example.test")
        .txt_strings("big.example.test", &[chunk.as_str(); 8])
        .txt("small.example.test", "hello")
        .authentic(true)
        .start();
    let addr = server.addr();
    let udp = raw_query(addr, "big.example.test.", RecordType::TXT, false, false);
    assert!(udp.truncated(), "a 2 KB answer must not fit 1232 bytes");
    let tcp = raw_query(addr, "big.example.test.", RecordType::TXT, false, true);
    assert!(!tcp.truncated());
    assert_eq!(tcp.answers().len(), 1);
    for tcp in [false, true] {
        let plain = raw_query(addr, "small.example.test.", RecordType::TXT, false, tcp);
        assert!(!plain.authentic_data(), "AD without asking (tcp: {tcp})");
        let asked = raw_query(addr, "small.example.test.", RecordType::TXT, true, tcp);
        assert!(asked.authentic_data(), "no AD with DO (tcp: {tcp})");
        assert_eq!(asked.answers().len(), 1);
    }
}

#[test]
fn mx_hosts_are_sorted_by_preference_then_name() {
    let server = TestDns::builder()
        .zone("example.test")
        .mx("example.test", 20, "mx3.example.test")
        .mx("example.test", 10, "MX2.Example.Test")
        .mx("example.test", 10, "mx1.example.test")
        .start();
    let expected = MxLookup::Hosts {
        hosts: vec![
            mx(10, "mx1.example.test"),
            mx(10, "mx2.example.test"),
            mx(20, "mx3.example.test"),
        ],
    };
    let dns = dns(&server);
    assert_eq!(dns.mx("example.test").unwrap(), expected);
    assert_eq!(
        dns.mx("EXAMPLE.test.").unwrap(),
        expected,
        "case and root dot"
    );
}

#[test]
fn mx_outcomes_null_none_and_cname() {
    let server = TestDns::builder()
        .zone("example.test")
        .a("example.test", "127.0.0.2")
        .cname("alias.example.test", "target.example.test")
        .mx("target.example.test", 5, "mx.target.example.test")
        .null_mx("nullmx.test")
        .start();
    let dns = dns(&server);
    let table = [
        ("nullmx.test", MxLookup::NullMx),
        ("example.test", MxLookup::NoMx),
        (
            "alias.example.test",
            MxLookup::Hosts {
                hosts: vec![mx(5, "mx.target.example.test")],
            },
        ),
    ];
    for (domain, expected) in table {
        assert_eq!(dns.mx(domain).unwrap(), expected, "{domain}");
    }
}

#[test]
fn mx_of_a_missing_domain_is_nxdomain() {
    let server = TestDns::builder()
        .zone("example.test")
        .mx("example.test", 10, "mx.example.test")
        .start();
    let err = dns(&server).mx("missing.example.test").unwrap_err();
    assert!(
        matches!(&err, DnsError::NxDomain { name } if name == "missing.example.test"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "missing.example.test does not exist in DNS (NXDOMAIN)"
    );
}

#[test]
fn refused_and_invalid_names_are_failures() {
    let server = TestDns::builder().zone("example.test").start();
    let dns = dns(&server);
    let err = dns.mx("outside.invalid").unwrap_err();
    assert!(
        matches!(&err, DnsError::Failed { name, reason } if name == "outside.invalid" && reason.contains("Refused")),
        "{err:?}"
    );
    let err = dns.txt("a..b").unwrap_err();
    assert!(matches!(&err, DnsError::Failed { .. }), "{err:?}");
}

#[test]
fn addresses_are_ipv4_then_ipv6() {
    let server = TestDns::builder()
        .zone("example.test")
        .aaaa("mx1.example.test", "2001:db8::25")
        .a("mx1.example.test", "127.0.0.2")
        .a("mx1.example.test", "127.0.0.3")
        .aaaa("v6.example.test", "::1")
        .cname("alias.example.test", "mx1.example.test")
        .txt("noaddr.example.test", "v=spf1 -all")
        .start();
    let dns = dns(&server);
    let both = vec![ip("127.0.0.2"), ip("127.0.0.3"), ip("2001:db8::25")];
    let mut got = dns.addresses("mx1.example.test").unwrap();
    got[..2].sort();
    assert_eq!(got, both);
    assert_eq!(dns.addresses("v6.example.test").unwrap(), vec![ip("::1")]);
    assert_eq!(dns.addresses("alias.example.test").unwrap().len(), 3);
    assert!(
        dns.addresses("noaddr.example.test").unwrap().is_empty(),
        "NODATA"
    );
    assert!(
        dns.addresses("gone.example.test").unwrap().is_empty(),
        "NXDOMAIN"
    );
}

#[test]
fn txt_strings_are_concatenated_per_record() {
    let server = TestDns::builder()
        .zone("example.test")
        .txt("_mta-sts.example.test", "v=STSv1; id=1")
        .txt_strings(
            "_smtp._tls.example.test",
            &["v=TLSRPTv1; ", "rua=mailto:tls@example.test"],
        )
        .txt("multi.example.test", "one")
        .txt("multi.example.test", "two")
        .a("addr-only.example.test", "127.0.0.2")
        .start();
    let dns = dns(&server);
    assert_eq!(dns.txt("_mta-sts.example.test").unwrap(), ["v=STSv1; id=1"]);
    assert_eq!(
        dns.txt("_smtp._tls.example.test").unwrap(),
        ["v=TLSRPTv1; rua=mailto:tls@example.test"]
    );
    let mut multi = dns.txt("multi.example.test").unwrap();
    multi.sort();
    assert_eq!(multi, ["one", "two"]);
    assert!(
        dns.txt("addr-only.example.test").unwrap().is_empty(),
        "NODATA"
    );
    assert!(dns.txt("gone.example.test").unwrap().is_empty(), "NXDOMAIN");
}

#[test]
fn a_truncated_udp_answer_is_asked_again_over_tcp() {
    let chunk = "x".repeat(255);
    let strings = [chunk.as_str(); 8];
    let server = TestDns::builder()
        .zone("example.test")
        .txt_strings("big.example.test", &strings)
        .start();
    let texts = dns(&server).txt("big.example.test").unwrap();
    assert_eq!(texts, [chunk.repeat(8)]);
}

#[test]
fn tlsa_records_carry_their_data_and_no_ad_from_a_plain_server() {
    let hash = [0xab; 32];
    let server = TestDns::builder()
        .zone("example.test")
        .tlsa("_25._tcp.mx1.example.test", 3, 1, 1, &hash)
        .tlsa("_25._tcp.mx1.example.test", 2, 0, 2, &[0x01; 64])
        .a("mx1.example.test", "127.0.0.2")
        .start();
    let dns = dns(&server);
    let mut lookup = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    lookup.records.sort_by_key(|tlsa| tlsa.usage);
    let expected = TlsaLookup {
        records: vec![
            Tlsa {
                usage: 2,
                selector: 0,
                matching: 2,
                data: vec![0x01; 64],
            },
            Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: hash.to_vec(),
            },
        ],
        authenticated: false,
    };
    assert_eq!(lookup, expected);
    let none = dns.tlsa("_25._tcp.other.example.test").unwrap();
    assert_eq!(
        none,
        TlsaLookup {
            records: vec![],
            authenticated: false
        }
    );
}

#[test]
fn tlsa_authenticated_follows_the_ad_bit() {
    let hash = [0x5a; 32];
    let server = TestDns::builder()
        .zone("example.test")
        .tlsa("_25._tcp.mx1.example.test", 3, 1, 1, &hash)
        .tlsa("_25._tcp.big.example.test", 3, 0, 0, &[0x30; 1800])
        .a("mx1.example.test", "127.0.0.2")
        .authentic(true)
        .start();
    let dns = dns(&server);
    let lookup = dns.tlsa("_25._tcp.mx1.example.test").unwrap();
    assert!(lookup.authenticated);
    assert_eq!(lookup.records.len(), 1);
    assert_eq!(lookup.records[0].data, hash);
    let denial = dns.tlsa("_25._tcp.nothere.example.test").unwrap();
    assert_eq!(
        denial,
        TlsaLookup {
            records: vec![],
            authenticated: true
        },
        "authenticated NXDOMAIN"
    );
    let big = dns.tlsa("_25._tcp.big.example.test").unwrap();
    assert!(big.authenticated, "over TCP through the relay");
    assert_eq!(big.records[0].data.len(), 1800);
    // Lookups that do not ask for DNSSEC get no AD bit, but still their answer.
    assert_eq!(
        dns.addresses("mx1.example.test").unwrap(),
        [ip("127.0.0.2")]
    );
}

#[test]
fn a_silent_resolver_times_out_in_bounded_time() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let timeout = Duration::from_millis(200);
    let dns = Dns::new(Some(silent.local_addr().unwrap()), timeout).unwrap();
    let started = Instant::now();
    let err = dns.mx("example.test").unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, DnsError::Timeout { name } if name == "example.test"),
        "{err:?}"
    );
    assert!(elapsed >= timeout, "gave up after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[test]
fn a_resolver_given_with_a_port_is_used_and_shared_between_threads() {
    let server = TestDns::builder()
        .zone("example.test")
        .mx("example.test", 10, "mx1.example.test")
        .a("mx1.example.test", "127.0.0.2")
        .start();
    let addr: SocketAddr = format!("127.0.0.1:{}", server.addr().port())
        .parse()
        .unwrap();
    assert_ne!(addr.port(), 53);
    let dns = Arc::new(Dns::new(Some(addr), TIMEOUT).unwrap());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let dns = Arc::clone(&dns);
            thread::spawn(move || {
                for _ in 0..5 {
                    assert!(matches!(
                        dns.mx("example.test").unwrap(),
                        MxLookup::Hosts { .. }
                    ));
                    assert_eq!(
                        dns.addresses("mx1.example.test").unwrap(),
                        [ip("127.0.0.2")]
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
