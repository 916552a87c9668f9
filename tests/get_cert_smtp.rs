//! End-to-end tests of `smtptls get-cert` at the SMTP layer (RFC 5321 dialogue, RFC 3207
//! STARTTLS): multi-line banners, EHLO before and after TLS, QUIT, the EHLO name, and every way
//! the dialogue can fail before TLS (exit 4).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use serde_json::Value;
use support::{FakeSmtp, Fixture, args, assert_get_cert_schema, get_cert};

#[test]
fn multi_line_banner_then_ehlo_inside_tls_and_quit() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .banner(&[
            "220-fake.smtptls.test first line",
            "220-second line",
            "220 third line",
        ])
        .leaf(&fx.pki.leaf())
        .start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json"]));

    run.assert_code(0);
    let doc = run.json();
    let banner = &doc["stages"][0];
    assert_eq!(banner["stage"], "banner");
    assert_eq!(banner["lines"].as_array().unwrap().len(), 3, "{run}");
    assert_eq!(banner["lines"][2], "220 third line");
    let log = server.finish();
    assert_eq!(log.verbs(), ["EHLO", "STARTTLS", "~EHLO", "~QUIT"]);
}

#[test]
fn domain_option_names_the_client_in_both_ehlos() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["-d", "probe.smtptls.test", "--json"]),
    );

    run.assert_code(0);
    assert_eq!(run.json()["target"]["ehlo_name"], "probe.smtptls.test");
    let log = server.finish();
    let ehlo_args: Vec<&str> = log
        .received
        .iter()
        .filter(|r| r.verb() == "EHLO")
        .map(support::Received::args)
        .collect();
    assert_eq!(ehlo_args, ["probe.smtptls.test", "probe.smtptls.test"]);
}

#[test]
fn starttls_not_offered_exits_4_without_trying() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .ehlo_extensions(&["PIPELINING", "SIZE 1000"])
        .start();
    let out = fx.arg("leaf.pem");

    let run = get_cert(&server, &["--json", "-o", &out]);

    run.assert_code(4);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    let message = doc["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("starttls") && message.contains("not offer"),
        "{run}"
    );
    assert_eq!(doc["tls"], Value::Null);
    assert_eq!(doc["certificates"], serde_json::json!([]));
    assert_eq!(doc["verification"], Value::Null);
    assert_eq!(doc["output"], Value::Null);
    assert!(!fx.path("leaf.pem").exists());
    let log = server.finish();
    assert!(
        !log.saw("STARTTLS", false),
        "not offered, so not sent: {:?}",
        log.verbs()
    );
}

#[test]
fn starttls_not_offered_message_in_text_mode() {
    let server = FakeSmtp::builder().ehlo_extensions(&["PIPELINING"]).start();

    let run = get_cert(&server, &[]);

    run.assert_code(4);
    let output = run.output().to_lowercase();
    assert!(
        output.contains("starttls") && output.contains("not offer"),
        "{run}"
    );
    server.finish();
}

#[test]
fn starttls_refused_with_454_exits_4_and_shows_the_reply() {
    let fx = Fixture::new();
    let reply = "454 4.7.0 TLS not available due to temporary reason";
    let server = FakeSmtp::builder().starttls_reply(&[reply]).start();
    let out = fx.arg("leaf.pem");

    let run = get_cert(&server, &["-o", &out]);

    run.assert_code(4);
    assert!(
        run.output()
            .contains("TLS not available due to temporary reason"),
        "{run}"
    );
    assert!(run.output().contains("454"), "{run}");
    assert!(!fx.path("leaf.pem").exists());
    let log = server.finish();
    assert!(!log.client_hello_seen());
}

#[test]
fn plaintext_injected_after_starttls_220_exits_4_before_any_handshake() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.leaf())
        .inject_after_starttls(b"250 injected\r\n")
        .start();
    let out = fx.arg("leaf.der");

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json", "-o", &out]));

    run.assert_code(4);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    let message = doc["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("inject"),
        "the message names the injection\n{run}"
    );
    assert!(!fx.path("leaf.der").exists(), "no certificate file\n{run}");
    let log = server.finish();
    assert!(
        !log.client_hello_seen(),
        "no ClientHello after an injection: {:?}",
        log.events
    );
    assert!(log.tls_sessions().is_empty());
}

#[test]
fn ehlo_refused_falls_back_to_helo_then_exits_4() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().refuse_ehlo(502).start();
    let out = fx.arg("leaf.der");

    let run = get_cert(&server, &["-o", &out]);

    run.assert_code(4);
    assert!(!fx.path("leaf.der").exists());
    let log = server.finish();
    assert!(log.saw("EHLO", false), "{:?}", log.verbs());
    assert!(
        log.saw("HELO", false),
        "HELO after the 502: {:?}",
        log.verbs()
    );
    assert!(
        !log.client_hello_seen(),
        "STARTTLS needs EHLO: {:?}",
        log.verbs()
    );
}

#[test]
fn a_server_that_hangs_up_on_ehlo_is_a_dialogue_failure() {
    let server = FakeSmtp::builder()
        .handler("EHLO", |_, _| Ok(support::Flow::Close))
        .start();

    let run = get_cert(&server, &[]);

    run.assert_code(4);
    server.finish();
}

#[test]
fn a_554_banner_is_a_dialogue_failure() {
    let server = FakeSmtp::builder()
        .banner(&["554 5.3.2 no service for you"])
        .start();

    let run = get_cert(&server, &[]);

    run.assert_code(4);
    assert!(run.output().contains("no service for you"), "{run}");
    server.finish();
}
