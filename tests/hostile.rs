//! Hostile and broken servers (issue: "every probe ends in bounded time, with a clear error,
//! leaking nothing"). One end-to-end test per misbehaviour: the `smtptls` binary against an
//! in-process server on loopback that stays silent, drips, floods, cuts replies, sends bytes that
//! are no SMTP (RFC 5321 §4.2) or no TLS where RFC 3207 promised TLS, or a certificate chain no
//! verifier should follow. Each test asserts the exit code, that the message names what the
//! server did, and — where the deadline is the point — that the run ended within `--timeout`
//! plus one second.
//!
//! Byte-level misbehaviour uses [`RawServer`]; the well-formed-but-unhelpful cases use
//! [`FakeSmtp`]. Peak memory against the floods is measured by the `#[ignore]`d
//! `peak_rss_stays_bounded_against_floods` (it needs `/usr/bin/time`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::raw::{RAW_NAME, tls_config, tls_config_unchecked};
use support::{FakeSmtp, Fixture, Flow, RawServer, Run, assert_get_cert_schema, smtptls};

/// The `--timeout` every test passes.
const TIMEOUT: &str = "2";
/// What a run bounded by the deadline may take: `--timeout` plus one second.
const BOUND: Duration = Duration::from_secs(3);
/// A line of two mebibytes, no line ending.
const TWO_MB: usize = 2 * 1024 * 1024;

/// `smtptls get-cert <server> --timeout 2 <more...>`.
fn get_cert(server: &str, more: &[&str]) -> Run {
    let mut all = vec!["get-cert", server, "--timeout", TIMEOUT];
    all.extend_from_slice(more);
    smtptls(all)
}

/// Assert the exit code, that the output (either stream) holds every one of `words`, that
/// nothing panicked, and — in a JSON run — that the document is whole (get-cert's schema) and
/// its exit code agrees.
#[track_caller]
fn assert_ends(run: &Run, code: i32, words: &[&str]) {
    run.assert_code(code);
    let output = run.output();
    for word in words {
        assert!(
            output.contains(word),
            "the output does not say {word:?}\n{run}"
        );
    }
    assert!(!output.contains("panicked"), "a panic\n{run}");
    if run.args.iter().any(|a| a == "--json") {
        let doc = run.json();
        assert_eq!(doc["exit_code"], code, "{run}");
        if doc["command"] == "get-cert" {
            assert_get_cert_schema(&doc, run);
        }
    }
}

/// Assert the run ended within `--timeout` + 1 s.
#[track_caller]
fn assert_bounded(run: &Run) {
    assert!(
        run.elapsed <= BOUND,
        "took {:?}, more than {BOUND:?}\n{run}",
        run.elapsed
    );
}

/// The JSON report's error message and kind.
#[track_caller]
fn json_error(run: &Run) -> (String, String) {
    let doc = run.json();
    let error = &doc["error"];
    assert!(error.is_object(), "no error in the report\n{run}");
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    (text(&error["kind"]), text(&error["message"]))
}

// --- Silence, hang-ups and resets -------------------------------------------------------------

#[test]
fn silent_server_times_out_naming_the_banner_stage() {
    let server = RawServer::start(|conn| conn.hold(Duration::from_secs(20)));

    let run = get_cert(&server.server_arg(), &[]);

    assert_ends(
        &run,
        3,
        &["timed out after 2 s waiting for the banner reply; no greeting arrived"],
    );
    assert_bounded(&run);
    server.finish();
}

#[test]
fn server_closing_after_the_banner_is_named() {
    let server = RawServer::start(|conn| conn.send_lines(&[&format!("220 {RAW_NAME} ESMTP")]));

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "closed", "{run}");
    assert_eq!(
        message, "the server closed the connection during ehlo",
        "{run}"
    );
    server.finish();
}

#[test]
fn server_closing_in_the_middle_of_a_reply_is_named() {
    let server = RawServer::start(|conn| {
        conn.send_lines(&[&format!("220 {RAW_NAME} ESMTP")])?;
        conn.expect("EHLO")?;
        conn.send(format!("250-{RAW_NAME}\r\n250-PIPELINING\r\n250-SI").as_bytes())
    });

    let run = get_cert(&server.server_arg(), &[]);

    assert_ends(&run, 4, &["the server closed the connection during ehlo"]);
    server.finish();
}

#[test]
fn server_closing_in_the_middle_of_a_reply_inside_tls_is_named() {
    let fx = Fixture::new();
    let config = tls_config(&fx.pki.leaf(), &[&rustls::version::TLS13]);
    let server = RawServer::start(move |conn| {
        conn.until_ehlo_tls(config.clone())?;
        // Half a reply, then the socket closes without close_notify.
        conn.send(format!("250-{RAW_NAME}\r\n250-SIZE 10").as_bytes())
    });
    let out = fx.arg("leaf.der");

    let run = get_cert(
        &server.server_arg(),
        &support::args(&fx.trust_args(), &["--json", "-o", &out]),
    );

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "closed", "{run}");
    assert_eq!(
        message, "the server closed the connection during ehlo-tls",
        "{run}"
    );
    assert!(
        fx.path("leaf.der").exists(),
        "the certificate is saved all the same\n{run}"
    );
    let log = server.finish();
    assert_eq!(log.tls_sessions().len(), 1);
}

#[test]
fn server_resetting_the_connection_is_a_closed_connection() {
    let server = RawServer::start(|conn| {
        conn.send_lines(&[&format!("220 {RAW_NAME} ESMTP")])?;
        // Return with the client's EHLO unread: the kernel answers with RST.
        conn.wait_for_data()
    });

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "closed", "{run}");
    assert_eq!(
        message, "the server closed the connection during ehlo",
        "{run}"
    );
    server.finish();
}

// --- Floods: a bounded amount is buffered, then the probe stops --------------------------------

#[test]
fn two_megabyte_line_is_refused_once_the_limit_is_buffered() {
    let server = RawServer::start(|conn| {
        conn.send(b"220 ")?;
        conn.flood(&[b'x'; 64 * 1024], TWO_MB)
    });

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "protocol", "{run}");
    // The line limit (8 KiB, under the 64 KiB reply limit) ends it: "reply too long" in the
    // issue's words, "reply line longer than 8192 bytes" in smtptls's.
    assert_eq!(
        message,
        "protocol error in the banner reply: reply line longer than 8192 bytes; \
         if this port expects implicit TLS (as 465 does), use --tls implicit",
        "{run}"
    );
    assert!(run.elapsed < BOUND, "{run}");
    server.finish();
}

#[test]
fn two_megabyte_line_inside_tls_is_refused() {
    let fx = Fixture::new();
    let config = tls_config(&fx.pki.leaf(), &[&rustls::version::TLS13]);
    let server = RawServer::start(move |conn| {
        conn.until_ehlo_tls(config.clone())?;
        conn.send(b"250 ")?;
        conn.flood(&[b'x'; 16 * 1024], TWO_MB)
    });

    let run = get_cert(
        &server.server_arg(),
        &support::args(&fx.trust_args(), &["--json"]),
    );

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "protocol", "{run}");
    assert_eq!(
        message, "protocol error in the ehlo-tls reply: reply line longer than 8192 bytes",
        "{run}"
    );
    assert!(run.elapsed < BOUND, "{run}");
    server.finish();
}

#[test]
fn endless_continuation_lines_are_cut_off() {
    let server = RawServer::start(|conn| {
        conn.send_lines(&[&format!("220 {RAW_NAME} ESMTP")])?;
        conn.expect("EHLO")?;
        // "250-" lines without end (well, 50 MB): only the client's limit stops this.
        conn.flood(&b"250-PIPELINING\r\n".repeat(256), 50 * 1024 * 1024)
    });

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "protocol", "{run}");
    assert_eq!(
        message, "protocol error in the ehlo reply: reply has more than 1000 lines",
        "{run}"
    );
    assert!(run.elapsed < BOUND, "{run}");
    server.finish();
}

// --- Drips: one deadline per stage, not per read ----------------------------------------------

#[test]
fn dripping_banner_hits_the_stage_deadline() {
    let server = RawServer::start(|conn| {
        // Well-formed continuation lines, one byte a second, forever: every read returns well
        // within any per-read timeout, so only a deadline for the whole reply ends this.
        let endless = b"220-slow\r\n".iter().copied().cycle();
        conn.drip(endless, Duration::from_secs(1))
    });

    let run = get_cert(&server.server_arg(), &[]);

    assert_ends(
        &run,
        3,
        &["timed out after 2 s waiting for the banner reply (only "],
    );
    assert!(
        !run.output().contains("no greeting arrived"),
        "a greeting did arrive, slowly\n{run}"
    );
    assert_bounded(&run);
    server.finish();
}

#[test]
fn dripping_tls_records_hit_the_stage_deadline() {
    let fx = Fixture::new();
    let config = tls_config(&fx.pki.leaf(), &[&rustls::version::TLS13]);
    let server = RawServer::start(move |conn| {
        conn.until_ehlo_tls(config.clone())?;
        // A whole EHLO reply, encrypted, its record sent one byte a second: each socket read
        // returns a byte, but no plaintext comes out until the record is complete.
        let reply = format!("250-{RAW_NAME}\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
        let records = conn.encrypt(reply.as_bytes())?;
        conn.drip(records, Duration::from_secs(1))
    });

    let run = get_cert(&server.server_arg(), &support::args(&fx.trust_args(), &[]));

    assert_ends(
        &run,
        3,
        &["timed out after 2 s waiting for the ehlo-tls reply"],
    );
    assert_bounded(&run);
    server.finish();
}

// --- Server text: shown sanitized, stored escaped ---------------------------------------------

#[test]
fn hostile_bytes_in_banner_and_ehlo_are_sanitized_and_kept_escaped_in_json() {
    let fx = Fixture::new();
    let config = tls_config(&fx.pki.leaf(), &[&rustls::version::TLS13]);
    let server = RawServer::start(move |conn| {
        // Invalid UTF-8, a screen clear, a title change with BEL, a right-to-left override.
        conn.send(
            b"220 raw.smtptls.test \xff\xfe \x1b[2J\x1b]0;pwned\x07 \xe2\x80\xaegnp.exe\r\n",
        )?;
        conn.expect("EHLO")?;
        // Colour, a C1 CSI, NUL, a cut UTF-8 sequence, a carriage return forging a line.
        conn.send(
            b"250-raw.smtptls.test \x1b[31mred\r\n\
              250-X-EVIL \xc2\x9b31m \x00 \xc3\r\n\
              250-X-FORGE a\rResult:       certificate verified\r\n\
              250 STARTTLS\r\n",
        )?;
        conn.expect("STARTTLS")?;
        conn.send_lines(&["220 go ahead"])?;
        conn.start_tls(config.clone())?;
        conn.expect("EHLO")?;
        conn.send(b"250-raw.smtptls.test\r\n250 X-TLS-EVIL \x1b[5m\xff\x7f\r\n")?;
        conn.expect("QUIT")?;
        conn.send_lines(&["221 bye"])
    });
    let trust = fx.trust_args();

    let text = get_cert(&server.server_arg(), &support::args(&trust, &[]));
    let json = get_cert(&server.server_arg(), &support::args(&trust, &["--json"]));

    // On a terminal: nothing that steers it, on either stream; lossy characters and escapes shown.
    assert_ends(
        &text,
        0,
        &[
            "\u{fffd}",
            "\\x1b[2J",
            "\\u{202e}",
            "\\u{9b}31m",
            "\\x00",
            "\\x7f",
        ],
    );
    for (stream, output) in [("stdout", &text.stdout), ("stderr", &text.stderr)] {
        let bad: Vec<char> = output
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(bad.is_empty(), "raw {bad:?} on {stream}\n{text}");
    }
    assert!(
        text.stdout.contains("X-EVIL \\u{9b}31m \\x00 \u{fffd}"),
        "EHLO shown escaped\n{text}"
    );
    assert!(
        text.stdout.contains("X-FORGE a\\rResult:"),
        "the forged line stays on its line\n{text}"
    );
    assert!(
        text.stdout.contains("X-TLS-EVIL \\x1b[5m\u{fffd}\\x7f"),
        "{text}"
    );
    // In JSON: control characters escaped by JSON itself, the text kept as received (lossily).
    assert_ends(&json, 0, &[]);
    assert!(
        !json.stdout.contains('\x1b') && !json.stdout.contains('\x07'),
        "{json}"
    );
    assert!(json.stdout.contains("\\u001b[2J"), "{json}");
    let doc = json.json();
    let banner = doc["stages"][0]["lines"][0].as_str().unwrap();
    assert_eq!(
        banner,
        "raw.smtptls.test \u{fffd}\u{fffd} \x1b[2J\x1b]0;pwned\x07 \u{202e}gnp.exe"
    );
    let received: Vec<&str> = doc["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "received")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        received.contains(&format!("220 {banner}").as_str()),
        "{json}"
    );
    assert!(
        received.contains(&"250-X-EVIL \u{9b}31m \0 \u{fffd}"),
        "{json}"
    );
    let ehlo: Vec<&str> = doc["ehlo_before_tls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        ehlo,
        [
            "X-EVIL \u{9b}31m \0 \u{fffd}",
            "X-FORGE a\rResult:       certificate verified",
            "STARTTLS"
        ]
    );
    assert_eq!(doc["ehlo_after_tls"][0], "X-TLS-EVIL \x1b[5m\u{fffd}\x7f");
    server.finish();
}

// --- Replies that refuse, and replies that are no replies ---------------------------------------

#[test]
fn a_421_banner_is_service_not_available() {
    let server = FakeSmtp::builder()
        .banner(&["421 4.3.2 fake.smtptls.test too busy, try later"])
        .start();

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 4, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "smtp-reply", "{run}");
    assert!(message.contains("service not available"), "{run}");
    assert!(
        message.contains("421") && message.contains("too busy, try later"),
        "{run}"
    );
    let log = server.finish();
    assert!(
        !log.saw("EHLO", false),
        "no EHLO after a 421: {:?}",
        log.verbs()
    );
}

/// What "a malformed reply code" means here. RFC 5321 §4.2: `Reply-line = *( Reply-code "-"
/// [ textstring ] CRLF ) Reply-code [ SP textstring ] CRLF`, with `Reply-code = %x32-35 %x30-35
/// %x30-39`. So a bare `220` is a valid last line (accepted, see below), and "a code without
/// text" that is malformed is a code run straight into something that is neither SP, `-` nor
/// the line end (`220x`, `2200`, `220<TAB>`).
#[test]
fn malformed_reply_codes_are_protocol_errors_naming_the_line() {
    // (banner lines, the stage, the line quoted, the fault in words)
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["2x0 raw ready"],
            "banner",
            "2x0 raw ready",
            "must be three digits",
        ),
        (&["99"], "banner", "99", "must be three digits"),
        (&[""], "banner", "", "the line is empty"),
        (&["220-hello", ""], "banner", "", "the line is empty"),
        (
            &["220x"],
            "banner",
            "220x",
            "followed by a space, a hyphen or the end of the line",
        ),
        (
            &["2200 ready"],
            "banner",
            "2200 ready",
            "followed by a space, a hyphen",
        ),
        (
            &["220\tready"],
            "banner",
            "220\\tready",
            "followed by a space, a hyphen",
        ),
        (&["620 ready"], "banner", "620 ready", "first digit"),
        (&["290 ready"], "banner", "290 ready", "second digit"),
    ];
    for &(banner, stage, line, fault) in cases {
        let server = FakeSmtp::builder().banner(banner).start();

        let run = get_cert(&server.server_arg(), &["--json"]);

        assert_ends(&run, 4, &[]);
        let (kind, message) = json_error(&run);
        assert_eq!(kind, "protocol", "{banner:?}\n{run}");
        let want =
            format!("protocol error in the {stage} reply: malformed reply line \"{line}\": ");
        assert!(
            message.starts_with(&want),
            "{banner:?}: want {want:?}\n{run}"
        );
        assert!(message.contains(fault), "{banner:?}: want {fault:?}\n{run}");
        server.finish();
    }
    // A malformed line inside the EHLO reply, and a code that changes mid-reply.
    let cases: &[(&[u8], &str)] = &[
        (
            b"250-fake.smtptls.test\r\n25O STARTTLS\r\n",
            "protocol error in the ehlo reply: malformed reply line \"25O STARTTLS\": the reply code must be three digits",
        ),
        (
            b"250-fake.smtptls.test\r\n251 STARTTLS\r\n",
            "protocol error in the ehlo reply: reply line \"251 STARTTLS\" has code 251, but the reply began with code 250",
        ),
    ];
    for &(ehlo, want) in cases {
        let server = FakeSmtp::builder()
            .handler("EHLO", move |ex, _| {
                ex.send_raw(ehlo)?;
                Ok(Flow::Continue)
            })
            .start();

        let run = get_cert(&server.server_arg(), &["--json"]);

        assert_ends(&run, 4, &[]);
        assert_eq!(
            json_error(&run),
            ("protocol".to_owned(), want.to_owned()),
            "{run}"
        );
        server.finish();
    }
}

#[test]
fn a_bare_code_is_a_valid_last_line() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .banner(&["220-fake.smtptls.test", "220"])
        .leaf(&fx.pki.leaf())
        .start();

    let run = get_cert(
        &server.server_arg(),
        &support::args(&fx.trust_args(), &["--json"]),
    );

    run.assert_code(0);
    assert_eq!(
        run.json()["stages"][0]["lines"],
        serde_json::json!(["fake.smtptls.test", ""])
    );
    server.finish();
}

#[test]
fn starttls_not_advertised_or_refused_exits_4_with_the_reply() {
    let server = FakeSmtp::builder()
        .ehlo_extensions(&["PIPELINING", "SIZE 1000"])
        .start();
    let run = get_cert(&server.server_arg(), &[]);
    assert_ends(
        &run,
        4,
        &[
            "the server does not offer STARTTLS in its EHLO reply",
            "EHLO (plain): PIPELINING, SIZE 1000",
        ],
    );
    let log = server.finish();
    assert!(!log.saw("STARTTLS", false), "{:?}", log.verbs());

    let server = FakeSmtp::builder()
        .starttls_reply(&["454 4.7.0 TLS not available due to temporary reason"])
        .start();
    let run = get_cert(&server.server_arg(), &[]);
    assert_ends(
        &run,
        4,
        &[
            "starttls: the server answered 454 \"4.7.0 TLS not available due to temporary reason\"",
            "RFC 3207",
        ],
    );
    let log = server.finish();
    assert!(!log.client_hello_seen(), "{:?}", log.events);
}

// --- Where TLS was promised --------------------------------------------------------------------

#[test]
fn plaintext_pipelined_after_starttls_220_is_response_injection() {
    // In the same packet as the 220: caught before any handshake.
    let server = FakeSmtp::builder()
        .inject_after_starttls(b"250-injected\r\n250 AUTH PLAIN\r\n")
        .start();
    let run = get_cert(&server.server_arg(), &[]);
    assert_ends(
        &run,
        4,
        &["response injection", "250-injected", "they were discarded"],
    );
    let log = server.finish();
    assert!(
        !log.client_hello_seen(),
        "nothing reaches TLS: {:?}",
        log.events
    );

    // A moment later, when the ClientHello is already on its way: still an injection, not TLS.
    let server = RawServer::start(|conn| {
        conn.until_starttls()?;
        conn.wait_for_data()?;
        conn.send_raw(b"250 injected\r\n")
    });
    let run = get_cert(&server.server_arg(), &[]);
    assert_ends(&run, 4, &["response injection", "250 injected"]);
    assert!(!run.stderr.contains("TLS established"), "{run}");
    server.finish();
}

#[test]
fn plaintext_garbage_instead_of_a_handshake_is_not_tls() {
    let server = RawServer::start(|conn| {
        conn.until_starttls()?;
        conn.wait_for_data()?;
        conn.send_raw(b"garbage, not a TLS record\r\n")
    });

    let run = get_cert(&server.server_arg(), &["--json"]);

    assert_ends(&run, 5, &[]);
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "tls", "{run}");
    assert!(message.contains("server did not start TLS"), "{run}");
    let log = server.finish();
    assert!(log.client_hello_seen());
}

#[test]
fn tls_alerts_and_version_mismatches_are_named() {
    // --tls-version 1.3 against a TLS 1.2-only server, and the other way round.
    let cases = [
        (&rustls::version::TLS12, "1.3"),
        (&rustls::version::TLS13, "1.2"),
    ];
    for (server_version, client_version) in cases {
        let server = FakeSmtp::builder().tls_versions(&[server_version]).start();

        let run = get_cert(&server.server_arg(), &["--tls-version", client_version]);

        assert_ends(
            &run,
            5,
            &[
                "the server sent the TLS alert ProtocolVersion",
                "does not accept the TLS version offered (see --tls-version)",
            ],
        );
        server.finish();
    }
    // A hand-made fatal handshake_failure alert (TLS record type 21, alert 2/40) in answer to
    // the ClientHello.
    let server = RawServer::start(|conn| {
        conn.until_starttls()?;
        conn.wait_for_data()?;
        conn.send_raw(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])
    });
    let run = get_cert(&server.server_arg(), &[]);
    assert_ends(
        &run,
        5,
        &[
            "the server sent the TLS alert HandshakeFailure",
            "no TLS version or cipher suite in common",
        ],
    );
    server.finish();
}

// --- Certificates no verifier should follow ----------------------------------------------------

#[test]
fn a_fifty_certificate_chain_is_handled() {
    let fx = Fixture::new();
    let leaf = fx.pki.long_chain_leaf(49);
    assert_eq!(leaf.chain().len(), 50);
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("chain.pem");

    let run = get_cert(
        &server.server_arg(),
        &support::args(&fx.trust_args(), &["--json", "--chain", "-o", &out]),
    );

    // Captured and reported in full; the path is too long to verify.
    run.assert_code(1);
    assert!(run.elapsed < BOUND, "{run}");
    let doc = run.json();
    assert_eq!(doc["certificates"].as_array().unwrap().len(), 50, "{run}");
    assert_eq!(doc["verification"]["chain_trusted"], false, "{run}");
    assert_eq!(
        doc["verification"]["chain_error"], "the chain is too long to verify",
        "{run}"
    );
    assert_eq!(doc["output"]["certificates_written"], 50, "{run}");
    let saved = std::fs::read_to_string(fx.path("chain.pem")).unwrap();
    assert_eq!(support::pem_certificates(&saved), leaf.chain_der());
    server.finish();
}

#[test]
fn a_one_megabyte_certificate_is_refused_cleanly() {
    let fx = Fixture::new();
    let leaf = fx.pki.huge_leaf(1024 * 1024);
    assert!(leaf.der().len() > 1024 * 1024);
    let config = tls_config_unchecked(leaf.chain(), leaf.key());
    let server = RawServer::start(move |conn| {
        conn.until_starttls()?;
        conn.start_tls(config.clone())
    });

    let run = get_cert(
        &server.server_arg(),
        &support::args(&fx.trust_args(), &["--json"]),
    );

    assert_ends(&run, 5, &[]);
    assert!(run.elapsed < BOUND, "{run}");
    let (kind, message) = json_error(&run);
    assert_eq!(kind, "tls", "{run}");
    assert!(
        !message.contains("not TLS"),
        "it is TLS, just too large: say so\n{run}"
    );
    assert!(message.contains("too large"), "{run}");
    server.finish();
}

// --- test-smtp ---------------------------------------------------------------------------------

#[test]
fn endless_auth_challenges_are_cancelled_after_a_bounded_number_of_rounds() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .ehlo_extensions(&["STARTTLS", "AUTH LOGIN PLAIN"])
        .leaf(&fx.pki.leaf())
        .handler("AUTH", |ex, _| {
            // 334 to everything, even to the "*" that cancels, for as long as the client talks.
            for _ in 0..1000 {
                ex.send(&["334 UGFzc3dvcmQ6"])?;
                if ex.read_line()?.is_none() {
                    break;
                }
            }
            Ok(Flow::Close)
        })
        .start();
    let password = fx.path("password");
    std::fs::write(&password, "hunter2\n").unwrap();
    let password = support::cli::path_arg(&password);
    let target = server.server_arg();
    let mut args = vec!["test-smtp", &target, "--timeout", TIMEOUT];
    let trust = fx.trust_args();
    args.extend(trust.iter().map(String::as_str));
    args.extend([
        "--user",
        "me",
        "--password-file",
        &password,
        "--auth",
        "login",
        "--json",
    ]);

    let run = smtptls(args);

    assert_ends(&run, 6, &[]);
    assert!(run.elapsed < BOUND, "{run}");
    let doc = run.json();
    assert_eq!(doc["auth"]["result"], "aborted", "{run}");
    assert_eq!(
        doc["auth"]["message"], "the server kept sending challenges; cancelled after 4 rounds",
        "{run}"
    );
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{run}"
    );
    let log = server.finish();
    let after_auth = log
        .received
        .iter()
        .skip_while(|r| r.verb() != "AUTH")
        .count();
    // AUTH LOGIN, 4 answers, the "*" that cancels, and QUIT.
    assert!(
        after_auth <= 7,
        "{after_auth} lines after AUTH: {:?}",
        log.received
    );
}

// --- Memory -------------------------------------------------------------------------------------

/// Peak RSS of `smtptls get-cert` against the floods, next to a well-behaved server. Run with
/// `cargo test --test hostile -- --ignored --nocapture peak_rss` (needs GNU time at
/// `/usr/bin/time`: `apt-get install time`); prints the numbers and asserts each stays within a
/// few MiB of the baseline.
#[test]
#[ignore = "needs /usr/bin/time; run on demand to measure peak memory"]
fn peak_rss_stays_bounded_against_floods() {
    let fx = Fixture::new();
    let config = tls_config(&fx.pki.leaf(), &[&rustls::version::TLS13]);
    let ok = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let long_line = RawServer::start(|conn| {
        conn.send(b"220 ")?;
        conn.flood(&[b'x'; 64 * 1024], TWO_MB)
    });
    let continuation = RawServer::start(|conn| {
        conn.send_lines(&[&format!("220 {RAW_NAME} ESMTP")])?;
        conn.expect("EHLO")?;
        conn.flood(&b"250-PIPELINING\r\n".repeat(256), 50 * 1024 * 1024)
    });
    let tls_line = RawServer::start(move |conn| {
        conn.until_ehlo_tls(config.clone())?;
        conn.send(b"250 ")?;
        conn.flood(&[b'x'; 16 * 1024], TWO_MB)
    });
    let cases = [
        ("well-behaved server (baseline)", ok.server_arg(), 0),
        ("2 MB line without line ending", long_line.server_arg(), 4),
        ("endless 250- continuation", continuation.server_arg(), 4),
        ("2 MB line inside TLS", tls_line.server_arg(), 4),
    ];
    let mut baseline = None;
    for (name, target, code) in cases {
        let output = std::process::Command::new("/usr/bin/time")
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_smtptls"))
            .args(["get-cert", &target, "--timeout", TIMEOUT, "--quiet"])
            .args(fx.trust_args())
            .output()
            .expect("run /usr/bin/time");
        assert_eq!(output.status.code(), Some(code), "{name}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let kib: u64 = stderr
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
        println!("peak RSS {kib:>6} KiB  {name}");
        let base = *baseline.get_or_insert(kib);
        assert!(
            kib < base + 8 * 1024,
            "{name}: {kib} KiB against a baseline of {base} KiB"
        );
    }
    drop((ok, long_line, continuation));
    tls_line.finish();
}
