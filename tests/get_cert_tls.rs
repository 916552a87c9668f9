//! End-to-end tests of `smtptls get-cert` at the TLS layer: certificate verification outcomes
//! (exit 1 still saves the certificate), SNI choices, TLS versions, implicit TLS and the hints
//! for a wrong `--tls` mode, and IPv6 loopback.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::{
    FakeSmtp, Fixture, Leaf, args, assert_get_cert_schema, get_cert, self_signed_leaf, smtptls,
};

#[test]
fn a_trusted_certificate_for_the_name_verifies() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json"]));
    run.assert_code(0);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    assert_eq!(doc["verification"]["verified"], true, "{run}");
    assert_eq!(doc["verification"]["chain_trusted"], true);
    assert_eq!(doc["verification"]["name_matches"], true);
    assert_eq!(doc["output"], Value::Null, "no -o, nothing written");
    server.finish();
}

/// Which verdict a bad certificate must fail.
enum Fails {
    Chain(&'static str),
    Name,
}

#[test]
fn bad_certificates_exit_1_but_are_still_saved_with_the_reason_in_json() {
    let fx = Fixture::new();
    let cases: Vec<(&str, Leaf, Fails)> = vec![
        ("expired", fx.pki.expired_leaf(), Fails::Chain("expired")),
        (
            "self-signed",
            self_signed_leaf(),
            Fails::Chain("self-signed"),
        ),
        ("wrong-name", fx.pki.wrong_name_leaf(), Fails::Name),
    ];
    for (what, leaf, fails) in cases {
        let server = FakeSmtp::builder().leaf(&leaf).start();
        let out = fx.arg(&format!("{what}.der"));

        let run = get_cert(&server, &args(&fx.trust_args(), &["--json", "-o", &out]));

        run.assert_code(1);
        assert_eq!(
            fs::read(&out).unwrap(),
            leaf.der(),
            "{what}: still saved\n{run}"
        );
        let doc = run.json();
        assert_get_cert_schema(&doc, &run);
        let v = &doc["verification"];
        assert_eq!(v["verified"], false, "{what}\n{run}");
        match fails {
            Fails::Chain(word) => {
                assert_eq!(v["chain_trusted"], false, "{what}\n{run}");
                let error = v["chain_error"].as_str().unwrap_or_default().to_lowercase();
                assert!(
                    !error.is_empty() && error.contains(word),
                    "{what}: {error:?}\n{run}"
                );
                assert_eq!(
                    v["name_matches"], true,
                    "{what}: the name itself is right\n{run}"
                );
            }
            Fails::Name => {
                assert_eq!(
                    v["chain_trusted"], true,
                    "{what}: issued by the trusted CA\n{run}"
                );
                assert_eq!(v["name_matches"], false, "{what}\n{run}");
                let error = v["name_error"].as_str().unwrap_or_default();
                assert!(
                    error.contains(support::pki::WRONG_NAME),
                    "{what}: the error lists the names the certificate holds\n{run}"
                );
                assert_eq!(v["name_checked"], "localhost");
            }
        }
        assert_eq!(doc["output"]["certificates_written"], 1);
        let days_left = doc["certificates"][0]["days_left"].as_i64().unwrap();
        assert_eq!(
            days_left < 0,
            what == "expired",
            "{what}: days_left {days_left}"
        );
        assert_eq!(
            doc["certificates"][0]["self_signed"],
            what == "self-signed",
            "{what}"
        );
        server.finish();
    }
}

#[test]
fn an_untrusted_certificate_exits_1_without_a_ca_file() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("leaf.cer");

    // Default trust is the Mozilla roots, which do not include the test CA.
    get_cert(&server, &["--sni", "localhost", "-o", &out]).assert_code(1);

    assert_eq!(fs::read(&out).unwrap(), leaf.der());
    server.finish();
}

#[test]
fn an_ip_target_sends_no_sni_and_checks_the_ip() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = get_cert(&server, &["--ca-file", &fx.ca_file(), "--json"]);
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["target"]["sni"], Value::Null, "{run}");
    assert_eq!(doc["verification"]["name_checked"], "127.0.0.1", "{run}");

    let log = server.finish();
    assert_eq!(log.tls_sessions().len(), 1);
    assert_eq!(log.tls_sessions()[0].sni, None, "no SNI for an IP address");
}

#[test]
fn sni_defaults_to_the_server_name_and_follows_sni_and_no_sni() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let ca = fx.ca_file();
    let by_name = format!("localhost:{}", server.port());
    let by_ip = server.server_arg();
    // (SERVER, extra arguments, SNI the server must see)
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        (&by_name, &["-4"], Some("localhost")),
        (&by_name, &["-4", "--no-sni"], None),
        (
            &by_ip,
            &["--sni", "mx.smtptls.test"],
            Some("mx.smtptls.test"),
        ),
    ];
    for (target, extra, _) in cases {
        let mut all = vec!["get-cert", target, "--timeout", "5", "--ca-file", &ca, "-q"];
        all.extend_from_slice(extra);
        let run = smtptls(all);
        // Without SNI the name checked is still `localhost`, which the leaf carries.
        run.assert_code(0);
    }
    let seen: Vec<Option<String>> = server
        .finish()
        .tls_sessions()
        .into_iter()
        .map(|s| s.sni)
        .collect();
    let expected: Vec<Option<String>> = cases.iter().map(|c| c.2.map(str::to_owned)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn tls_version_selects_the_protocol() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    for (flag, json, server_view) in [("1.2", "TLSv1.2", "TLSv1_2"), ("1.3", "TLSv1.3", "TLSv1_3")]
    {
        let run = get_cert(
            &server,
            &args(&fx.trust_args(), &["--json", "--tls-version", flag]),
        );
        run.assert_code(0);
        let doc = run.json();
        assert_get_cert_schema(&doc, &run);
        assert_eq!(doc["tls"]["version"], json, "{run}");
        assert_eq!(
            server.log().tls_sessions().last().unwrap().version,
            server_view
        );
    }
    server.finish();
}

#[test]
fn a_tls_version_the_server_lacks_is_a_handshake_failure() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.leaf())
        .tls_versions(&[&rustls::version::TLS12])
        .start();
    let out = fx.arg("leaf.pem");

    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["--tls-version", "1.3", "-o", &out]),
    );

    run.assert_code(5);
    assert!(
        !fx.path("leaf.pem").exists(),
        "no certificate, no file\n{run}"
    );
    let log = server.finish();
    assert!(log.client_hello_seen());
    assert!(log.tls_sessions().is_empty());
}

#[test]
fn implicit_tls_works_with_the_tls_flag() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().implicit_tls(true).leaf(&leaf).start();
    let out = fx.arg("leaf.der");

    let run = get_cert(
        &server,
        &args(
            &fx.trust_args(),
            &["--tls", "implicit", "--json", "-o", &out],
        ),
    );

    run.assert_code(0);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    assert_eq!(doc["target"]["tls_mode"], "implicit");
    assert_eq!(doc["ehlo_before_tls"], Value::Null, "{run}");
    assert_eq!(fs::read(&out).unwrap(), leaf.der());
    let log = server.finish();
    assert_eq!(
        log.verbs().first().map(String::as_str),
        Some("~EHLO"),
        "{:?}",
        log.verbs()
    );
    assert!(
        log.received.iter().all(|r| r.tls),
        "nothing in plaintext: {:?}",
        log.verbs()
    );
}

#[test]
fn starttls_against_an_implicit_tls_server_fails_in_bounded_time_with_a_hint() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .implicit_tls(true)
        .leaf(&fx.pki.leaf())
        .start();
    let target = server.server_arg();

    let run = smtptls(["get-cert", target.as_str(), "--timeout", "2"]);

    run.assert_code(3); // a server that never greets is a timeout (README: exit 3)
    assert!(
        run.elapsed < Duration::from_secs(6),
        "--timeout 2 is honoured\n{run}"
    );
    assert!(
        run.output().contains("--tls implicit"),
        "the hint names --tls implicit\n{run}"
    );
    let log = server.finish();
    assert!(log.received.is_empty());
}

#[test]
fn implicit_tls_against_a_starttls_server_exits_5_with_a_hint() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["--tls", "implicit"]));

    run.assert_code(5);
    assert!(
        run.output().contains("--tls starttls"),
        "the hint names --tls starttls\n{run}"
    );
    let log = server.finish();
    assert!(log.tls_sessions().is_empty());
}

#[test]
fn ipv6_loopback_in_brackets() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = match FakeSmtp::builder().ipv6().leaf(&leaf).try_start() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("note: skipping the IPv6 test, [::1] cannot be bound here: {e}");
            return;
        }
    };
    let out = fx.arg("leaf.der");
    let target = server.server_arg();
    assert!(target.starts_with("[::1]:"));

    let run = smtptls([
        "get-cert",
        &target,
        "--timeout",
        "5",
        "--ca-file",
        &fx.ca_file(),
        "--json",
        "-o",
        &out,
    ]);

    run.assert_code(0);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    assert_eq!(
        doc["target"]["host"], "[::1]",
        "as given, in brackets (README)\n{run}"
    );
    assert_eq!(doc["target"]["port"], server.port());
    assert_eq!(doc["target"]["address"], target);
    assert_eq!(
        doc["target"]["sni"],
        Value::Null,
        "no SNI for an IP address"
    );
    assert_eq!(doc["verification"]["name_checked"], "::1", "{run}");
    assert_eq!(fs::read(&out).unwrap(), leaf.der());
    let log = server.finish();
    assert_eq!(log.tls_sessions().len(), 1);
}

#[test]
fn port_option_is_used_when_server_has_no_port() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let port = server.port().to_string();

    let run = smtptls([
        "get-cert",
        "127.0.0.1",
        "--port",
        &port,
        "--timeout",
        "5",
        "--ca-file",
        &fx.ca_file(),
        "-q",
    ]);

    run.assert_code(0);
    assert_eq!(server.finish().connections(), 1);
}

#[test]
fn a_ca_file_holding_the_self_signed_certificate_itself_trusts_it() {
    let fx = Fixture::new();
    let leaf = self_signed_leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let pinned = fx.path("pinned.pem");
    fs::write(&pinned, leaf.pem()).unwrap();
    let pinned = support::cli::path_arg(&pinned);

    get_cert(&server, &["--ca-file", &pinned, "--sni", "localhost", "-q"]).assert_code(0);

    server.finish();
}

#[test]
fn ca_file_is_repeatable() {
    let fx = Fixture::new();
    let unrelated = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    #[rustfmt::skip]
    let both = [
        "--ca-file", &unrelated.ca_file(), "--ca-file", &fx.ca_file(), "--sni", "localhost", "-q",
    ];

    get_cert(&server, &both).assert_code(0);
    get_cert(&server, &both[..2]).assert_code(1);

    assert_eq!(server.finish().connections(), 2);
}

#[test]
fn no_sni_still_checks_the_certificate_against_server() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let target = format!("localhost:{}", server.port());
    #[rustfmt::skip]
    let run = smtptls([
        "get-cert", &target, "-4", "--no-sni", "--timeout", "5", "--ca-file", &fx.ca_file(), "--json",
    ]);

    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["target"]["sni"], Value::Null, "{run}");
    assert_eq!(doc["verification"]["name_checked"], "localhost", "{run}");
    assert_eq!(server.finish().tls_sessions()[0].sni, None);
}

#[test]
fn tls_auto_uses_starttls_off_port_465() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["--tls", "auto", "--json"]),
    );

    run.assert_code(0);
    assert_eq!(run.json()["target"]["tls_mode"], "starttls");
    assert_eq!(server.finish().verbs()[..2], ["EHLO", "STARTTLS"]);
}
