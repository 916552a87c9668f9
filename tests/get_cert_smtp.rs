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

use std::fs;
use std::time::Duration;

use serde_json::Value;
use support::{FakeSmtp, Fixture, Flow, args, assert_get_cert_schema, get_cert};

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
    assert_eq!(
        banner["lines"][2], "third line",
        "reply text without the code"
    );
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
        .handler("EHLO", |_, _| Ok(Flow::Close))
        .start();

    let run = get_cert(&server, &[]);

    run.assert_code(4);
    server.finish();
}

#[test]
fn a_refusing_banner_is_a_dialogue_failure() {
    for banner in [
        "554 5.3.2 no service for you",
        "421 4.3.2 too busy, try later",
    ] {
        let server = FakeSmtp::builder().banner(&[banner]).start();

        let run = get_cert(&server, &[]);

        run.assert_code(4);
        assert!(
            run.output().contains(&banner[10..]),
            "the reply is shown\n{run}"
        );
        let log = server.finish();
        assert!(!log.saw("STARTTLS", false), "{:?}", log.verbs());
    }
}

#[test]
fn a_dialogue_failure_after_the_handshake_exits_4_and_still_saves_the_certificate() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder()
        .leaf(&leaf)
        .handler("EHLO", |ex, _| {
            if ex.is_tls() {
                return Ok(Flow::Close); // hang up on the EHLO inside TLS
            }
            ex.send(&["250-fake.smtptls.test", "250 STARTTLS"])?;
            Ok(Flow::Continue)
        })
        .start();
    let out = fx.arg("leaf.der");

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json", "-o", &out]));

    run.assert_code(4);
    assert_eq!(
        fs::read(&out).unwrap(),
        leaf.der(),
        "saved all the same\n{run}"
    );
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    assert_eq!(
        doc["verification"]["verified"], true,
        "the verdict is still there\n{run}"
    );
    assert_eq!(doc["output"]["certificates_written"], 1);
    assert!(doc["error"].is_object(), "{run}");
    let log = server.finish();
    assert!(log.saw("EHLO", true));
}

#[test]
fn an_overlong_reply_line_is_a_protocol_error() {
    let long = format!("220-{}", "x".repeat(9 * 1024));
    let server = FakeSmtp::builder()
        .banner(&[long.as_str(), "220 ok"])
        .start();

    let run = get_cert(&server, &[]);

    run.assert_code(4);
    assert!(run.elapsed < Duration::from_secs(4), "{run}");
    server.finish();
}

#[test]
fn replies_with_bare_lf_line_endings_are_accepted() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.leaf())
        .handler("EHLO", |ex, _| {
            let starttls: &[u8] = if ex.is_tls() { b"" } else { b"250-STARTTLS\n" };
            let reply = [b"250-fake.smtptls.test\n", starttls, b"250 SIZE 1000\n"].concat();
            ex.send_raw(&reply)?;
            Ok(Flow::Continue)
        })
        .start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json"]));

    run.assert_code(0);
    let doc = run.json();
    assert_eq!(
        doc["ehlo_after_tls"],
        serde_json::json!(["SIZE 1000"]),
        "{run}"
    );
    assert_eq!(
        server.finish().verbs(),
        ["EHLO", "STARTTLS", "~EHLO", "~QUIT"]
    );
}

#[test]
fn a_server_that_stops_answering_is_a_timeout() {
    let server = FakeSmtp::builder()
        .handler("EHLO", |_, _| {
            std::thread::sleep(Duration::from_secs(2));
            Ok(Flow::Close)
        })
        .start();
    let target = server.server_arg();

    let run = support::smtptls(["get-cert", target.as_str(), "--timeout", "1"]);

    run.assert_code(3);
    assert!(
        run.elapsed < Duration::from_millis(1900),
        "--timeout 1 is honoured\n{run}"
    );
    server.finish();
}

#[test]
fn server_text_is_sanitized_on_the_terminal_but_kept_in_json() {
    let fx = Fixture::new();
    let evil = "220 fake.smtptls.test \x1b[2J\x1b]0;pwned\x07 \u{202e}txt.exe";
    let server = FakeSmtp::builder()
        .banner(&[evil])
        .leaf(&fx.pki.leaf())
        .start();

    let text = get_cert(
        &server,
        &fx.trust_args()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let json = get_cert(&server, &args(&fx.trust_args(), &["--json"]));

    text.assert_code(0);
    for (stream, output) in [("stderr", &text.stderr), ("stdout", &text.stdout)] {
        assert!(!output.contains('\x1b'), "raw ESC on {stream}\n{text}");
        assert!(!output.contains('\x07'), "raw BEL on {stream}\n{text}");
        assert!(
            !output.contains('\u{202e}'),
            "raw bidi override on {stream}\n{text}"
        );
    }
    assert!(text.stderr.contains("\\x1b"), "shown escaped\n{text}");
    json.assert_code(0);
    let transcript = json.json()["transcript"].clone();
    let received_banner = transcript
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["direction"] == "received" && l["text"] == evil);
    assert!(
        received_banner,
        "JSON keeps server text as received\n{json}"
    );
    server.finish();
}
