//! End-to-end tests of `smtptls test-smtp` against the in-process fake server: SMTP AUTH
//! (RFC 4954) with LOGIN, PLAIN, XOAUTH2 and OAUTHBEARER, succeeding and failing; when credentials
//! are withheld (no TLS, an unverified certificate); the envelope (RFC 5321 MAIL FROM / RCPT TO)
//! with the fake server asserting DATA never comes; `--quit-after`; usage errors; and, for every
//! mechanism, that no form of the secret reaches stdout, stderr or the JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use smtptls::submit::MAX_AUTH_ROUNDS;
use support::cli::{TIMEOUT_ARG, smtptls_env};
use support::sasl::{self, ERROR_CHALLENGE_JSON, Mech, REJECT_TEXT, SaslScript, Verdict};
use support::server::FakeSmtpBuilder;
use support::{FakeSmtp, Fixture, Flow, Log, Run, assert_get_cert_schema};

const USER: &str = "probe@example.org";
const PASSWORD: &str = "Tr0ub4dor&3-correct-horse";
const TOKEN: &str = "ya29.a0AfH6SMB-secret-token-Qx7Lm";
/// The variable the tests put the secret in (not `SMTPTLS*`, which the runner clears).
const SECRET_VAR: &str = "TSMTP_TEST_SECRET";
/// A variable the usage tests set to the empty string.
const EMPTY_VAR: &str = "TSMTP_TEST_EMPTY";
/// What a submission server offers inside TLS.
const SUBMISSION_TLS: &[&str] = &[
    "PIPELINING",
    "SIZE 10240000",
    "AUTH LOGIN PLAIN",
    "ENHANCEDSTATUSCODES",
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `smtptls test-smtp <server> --timeout 5 <args...>`, with `env` set and `stdin` piped in.
fn test_smtp(server: &FakeSmtp, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let server_arg = server.server_arg();
    let mut all = vec!["test-smtp", server_arg.as_str(), "--timeout", TIMEOUT_ARG];
    all.extend_from_slice(args);
    smtptls_env(all, env, stdin.map(str::as_bytes))
}

/// Where the secret comes from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// `--password-env` / `--token-env`.
    Env,
    /// `--password-file FILE` / `--token-file FILE`.
    File,
    /// `--password-file -` / `--token-file -`.
    Stdin,
}

/// A secret, and how smtptls is given it.
#[derive(Clone, Copy, Debug)]
struct Given {
    source: Source,
    /// A bearer token (`--token-*`) rather than a password (`--password-*`).
    token: bool,
    secret: &'static str,
}

/// [`PASSWORD`], given the `source` way.
fn password(source: Source) -> Given {
    Given {
        source,
        token: false,
        secret: PASSWORD,
    }
}

/// [`TOKEN`], given the `source` way.
fn token(source: Source) -> Given {
    Given {
        source,
        token: true,
        secret: TOKEN,
    }
}

/// Run with `--ca-file` (the fixture's CA), `--sni localhost`, `--user USER` and the secret
/// `given`, then `more`.
fn authenticate(fx: &Fixture, server: &FakeSmtp, given: Given, more: &[&str]) -> Run {
    let Given {
        source,
        token,
        secret,
    } = given;
    let kind = if token { "token" } else { "password" };
    let file = fx.arg("secret.txt");
    let (option, value) = match source {
        Source::Env => (format!("--{kind}-env"), SECRET_VAR.to_owned()),
        Source::File => {
            std::fs::write(&file, format!("{secret}\n")).unwrap();
            (format!("--{kind}-file"), file)
        }
        Source::Stdin => (format!("--{kind}-file"), "-".to_owned()),
    };
    let trust = fx.trust_args();
    let mut args: Vec<&str> = trust.iter().map(String::as_str).collect();
    args.extend(["--user", USER, option.as_str(), value.as_str()]);
    args.extend_from_slice(more);
    let stdin = matches!(source, Source::Stdin).then(|| format!("{secret}\n"));
    test_smtp(server, &args, &[(SECRET_VAR, secret)], stdin.as_deref())
}

/// A STARTTLS server with a certificate the fixture's CA issued, offering [`SUBMISSION_TLS`]
/// inside TLS, that panics (failing the test) if DATA or BDAT ever arrives.
fn trusted(fx: &Fixture) -> FakeSmtpBuilder {
    forbid_data(
        FakeSmtp::builder()
            .leaf(&fx.pki.leaf())
            .ehlo_tls_extensions(SUBMISSION_TLS),
    )
}

/// The fake server's own assertion that no message is ever sent.
fn forbid_data(builder: FakeSmtpBuilder) -> FakeSmtpBuilder {
    let refuse = |_: &mut support::Exchange<'_>, r: &support::Received| -> std::io::Result<Flow> {
        panic!(
            "the fake server received {:?}: test-smtp must never send a message",
            r.line
        )
    };
    builder.handler("DATA", refuse).handler("BDAT", refuse)
}

/// Start a server with `script` as its AUTH handler, telling the script the port.
fn start_with(builder: FakeSmtpBuilder, script: &SaslScript) -> FakeSmtp {
    let server = script.install(builder).start();
    script.set_port(server.port());
    server
}

/// Answer MAIL with `mail` and RCPT with the reply of the first rule naming its address (250
/// otherwise).
fn mailbox(builder: FakeSmtpBuilder, mail: &str, rcpt: &[(&str, &str)]) -> FakeSmtpBuilder {
    let mail = mail.to_owned();
    let rules: Vec<(String, String)> = rcpt
        .iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect();
    builder
        .handler("MAIL", move |ex, _| {
            ex.send(&[mail.as_str()])?;
            Ok(Flow::Continue)
        })
        .handler("RCPT", move |ex, received| {
            let address = received
                .args()
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map_or("", |(address, _)| address);
            let reply = rules
                .iter()
                .find(|(a, _)| a == address)
                .map_or("250 2.1.5 Ok", |(_, r)| r.as_str());
            ex.send(&[reply])?;
            Ok(Flow::Continue)
        })
}

/// stdout as the test-smtp JSON document: get-cert's object (checked by its schema check) with
/// `command` "test-smtp" and the `auth` and `envelope` objects of the README.
#[track_caller]
fn checked_json(run: &Run) -> Value {
    let doc = run.json();
    assert_eq!(doc["command"], "test-smtp", "{run}");
    let mut shared = doc.clone();
    shared["command"] = json!("get-cert");
    assert_get_cert_schema(&shared, run);
    let keys = |v: &Value, names: &[&str]| {
        for name in names {
            assert!(v.get(name).is_some(), "missing {name:?} in {v}\n{run}");
        }
    };
    let result = |v: &Value| {
        let classes = [
            "accepted",
            "temporary-failure",
            "rejected",
            "not-offered",
            "not-attempted",
            "aborted",
        ];
        assert!(
            classes.contains(&v["result"].as_str().unwrap_or_default()),
            "result of {v} is none of the README's classes\n{run}"
        );
    };
    let auth = &doc["auth"];
    if !auth.is_null() {
        #[rustfmt::skip]
        keys(auth, &["user", "mechanism", "advertised", "result", "code", "lines", "message"]);
        result(auth);
        assert!(
            auth["advertised"].is_array() && auth["lines"].is_array(),
            "{run}"
        );
        assert!(auth["message"].is_string(), "{run}");
    }
    let envelope = &doc["envelope"];
    if !envelope.is_null() {
        keys(envelope, &["mail_from", "rcpt_to"]);
        let mail = Some(&envelope["mail_from"]).filter(|m| !m.is_null());
        let rcpts = envelope["rcpt_to"].as_array().expect("rcpt_to is an array");
        for row in mail.into_iter().chain(rcpts) {
            keys(row, &["address", "result", "code", "lines", "message"]);
            result(row);
        }
    }
    doc
}

/// The lines the server received inside TLS, after the EHLO there.
fn after_ehlo_tls(log: &Log) -> Vec<String> {
    log.received
        .iter()
        .filter(|r| r.tls)
        .skip_while(|r| r.verb() == "EHLO")
        .map(|r| r.line.clone())
        .collect()
}

/// The `sent` transcript texts of the JSON report.
fn sent_texts(doc: &Value) -> Vec<String> {
    doc["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "sent")
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The rcpt_to results, in order.
fn rcpt_results(doc: &Value) -> Vec<&str> {
    doc["envelope"]["rcpt_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect()
}

#[track_caller]
fn assert_no_data(log: &Log) {
    assert!(
        !log.verbs()
            .iter()
            .any(|v| matches!(v.trim_start_matches('~'), "DATA" | "BDAT")),
        "no message may be sent: {:?}",
        log.verbs()
    );
}

/// Every form in which `secret` could leak: itself, its base64, the base64 of the whole SASL
/// `message`, and the base64 of the secret at each of the three alignments inside a longer base64
/// text (the characters that depend on the secret's bytes alone).
fn leak_forms(secret: &str, message: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned(), B64.encode(secret), B64.encode(message)];
    for pad in 1..=3 {
        let encoded = B64.encode(format!("{}{secret}", "\0".repeat(pad)));
        forms.push(encoded[4..encoded.len() - 4].to_owned());
    }
    forms
}

#[track_caller]
fn assert_no_leak(run: &Run, forms: &[String]) {
    for form in forms {
        for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert!(
                !text.contains(form.as_str()),
                "{stream} holds a form of the secret ({form:?})\n{run}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AUTH: each mechanism
// ---------------------------------------------------------------------------------------------

#[test]
fn plain_succeeds_and_auto_prefers_it_over_login() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
    let server = start_with(trusted(&fx), &script);

    let run = authenticate(&fx, &server, password(Source::Env), &["--json"]);

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(
        doc["auth"],
        json!({
            "user": USER, "mechanism": "PLAIN", "advertised": ["LOGIN", "PLAIN"],
            "result": "accepted", "code": 235, "lines": ["2.7.0 Authentication successful"],
            "message": "authentication succeeded",
        }),
        "{run}"
    );
    assert_eq!(doc["envelope"], Value::Null);
    assert!(
        sent_texts(&doc).contains(&"AUTH PLAIN <credentials redacted>".to_owned()),
        "{run}"
    );
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    assert_eq!(lines.len(), 2, "AUTH then QUIT: {lines:?}");
    let blob = lines[0]
        .strip_prefix("AUTH PLAIN ")
        .expect("AUTH PLAIN <initial response>");
    assert_eq!(sasl::decode(blob), format!("\0{USER}\0{PASSWORD}"));
    assert_eq!(lines[1], "QUIT");
}

#[test]
fn login_succeeds_with_decoded_prompts_and_the_password_redacted() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Login, USER, PASSWORD, Verdict::Accept);
    let server = start_with(
        trusted(&fx).ehlo_tls_extensions(&["AUTH LOGIN", "PIPELINING"]),
        &script,
    );

    let run = authenticate(&fx, &server, password(Source::Stdin), &[]);

    run.assert_code(0);
    for shown in [
        "Username:",
        "Password:",
        "~> <password redacted>",
        "~> AUTH LOGIN",
    ] {
        assert!(
            run.stderr.contains(shown),
            "transcript shows {shown:?}\n{run}"
        );
    }
    assert!(run.stdout.contains("AUTH LOGIN"), "{run}");
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    assert_eq!(
        lines,
        [
            "AUTH LOGIN",
            &sasl::encode(USER),
            &sasl::encode(PASSWORD),
            "QUIT"
        ]
    );
}

#[test]
fn xoauth2_succeeds_with_the_token_from_the_environment() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::XOAuth2, USER, TOKEN, Verdict::Accept);
    let server = start_with(
        trusted(&fx).ehlo_tls_extensions(&["AUTH PLAIN XOAUTH2"]),
        &script,
    );

    let run = authenticate(&fx, &server, token(Source::Env), &["--json"]);

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["mechanism"], "XOAUTH2", "auto, token: {run}");
    assert_eq!(doc["auth"]["result"], "accepted");
    assert_eq!(doc["auth"]["code"], 235);
    assert!(
        sent_texts(&doc).contains(&"AUTH XOAUTH2 <token redacted>".to_owned()),
        "{run}"
    );
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    let blob = lines[0]
        .strip_prefix("AUTH XOAUTH2 ")
        .expect("initial response");
    assert_eq!(
        sasl::decode(blob),
        format!("user={USER}\x01auth=Bearer {TOKEN}\x01\x01")
    );
    assert_eq!(lines[1..], ["QUIT"]);
}

#[test]
fn xoauth2_error_challenge_gets_an_empty_answer_then_535_exits_6() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::XOAuth2, USER, TOKEN, Verdict::Reject);
    let server = start_with(trusted(&fx), &script);

    let run = authenticate(
        &fx,
        &server,
        token(Source::File),
        &["--auth", "xoauth2", "--json"],
    );

    run.assert_code(6);
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["result"], "rejected", "{run}");
    assert_eq!(doc["auth"]["code"], 535);
    assert_eq!(doc["auth"]["lines"], json!([REJECT_TEXT]));
    assert!(
        run.stderr
            .contains(&format!("<~ 334 {}", B64.encode(ERROR_CHALLENGE_JSON))),
        "the error challenge as received\n{run}"
    );
    assert!(
        run.stderr.contains("server challenge decoded") && run.stderr.contains("401"),
        "the error challenge is shown decoded\n{run}"
    );
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    assert!(lines[0].starts_with("AUTH XOAUTH2 "), "{lines:?}");
    assert_eq!(
        lines[1..],
        ["", "QUIT"],
        "an empty line answers the error challenge"
    );
}

#[test]
fn oauthbearer_succeeds_with_host_and_port_and_auto_prefers_it() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::OAuthBearer, USER, TOKEN, Verdict::Accept);
    let server = start_with(
        trusted(&fx).ehlo_tls_extensions(&["AUTH PLAIN XOAUTH2 OAUTHBEARER"]),
        &script,
    );

    let run = authenticate(&fx, &server, token(Source::File), &["--json"]);

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["mechanism"], "OAUTHBEARER", "{run}");
    assert_eq!(doc["auth"]["result"], "accepted");
    let port = server.port();
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    let blob = lines[0]
        .strip_prefix("AUTH OAUTHBEARER ")
        .expect("initial response");
    assert_eq!(
        sasl::decode(blob),
        format!("n,a={USER},\x01host=localhost\x01port={port}\x01auth=Bearer {TOKEN}\x01\x01"),
        "host is the --sni name, port the one connected to"
    );
}

#[test]
fn oauthbearer_error_challenge_gets_ctrl_a_then_535_exits_6() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::OAuthBearer, USER, TOKEN, Verdict::Reject);
    let server = start_with(trusted(&fx), &script);

    let run = authenticate(
        &fx,
        &server,
        token(Source::Env),
        &["--auth", "oauthbearer", "--json"],
    );

    run.assert_code(6);
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["mechanism"], "OAUTHBEARER", "{run}");
    assert_eq!(doc["auth"]["result"], "rejected");
    assert_eq!(doc["auth"]["code"], 535);
    let log = server.finish();
    let lines = after_ehlo_tls(&log);
    assert!(lines[0].starts_with("AUTH OAUTHBEARER "), "{lines:?}");
    assert_eq!(
        lines[1..],
        ["AQ==", "QUIT"],
        "^A (RFC 7628 §3.2.3) answers the error challenge"
    );
}

#[test]
fn plain_rejected_with_535_exits_6_and_says_the_credentials_are_invalid() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Reject);
    let server = start_with(trusted(&fx), &script);

    let run = authenticate(&fx, &server, password(Source::File), &["--json"]);

    run.assert_code(6);
    let doc = checked_json(&run);
    let auth = &doc["auth"];
    assert_eq!(auth["mechanism"], "PLAIN");
    assert_eq!(auth["result"], "rejected");
    assert_eq!(auth["code"], 535);
    assert_eq!(auth["lines"], json!([REJECT_TEXT]));
    let message = auth["message"].as_str().unwrap();
    assert!(message.contains("invalid"), "{message:?}\n{run}");
    assert_eq!(doc["envelope"], Value::Null);
    let log = server.finish();
    assert_eq!(after_ehlo_tls(&log).last().unwrap(), "QUIT");
}

#[test]
fn credentials_echoed_in_the_535_text_are_redacted_everywhere() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::RejectEcho);
    let server = start_with(trusted(&fx), &script);
    let blob = B64.encode(script.message());

    let run = authenticate(&fx, &server, password(Source::Env), &["--json"]);

    run.assert_code(6);
    let doc = checked_json(&run);
    let redacted = format!("{REJECT_TEXT}: got <redacted> for <redacted>");
    assert_eq!(doc["auth"]["lines"], json!([redacted]), "{run}");
    assert!(
        run.stderr.contains(&format!("<~ 535 {redacted}")),
        "transcript on stderr\n{run}"
    );
    let received: Vec<&str> = doc["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["direction"] == "received")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        received.iter().any(|t| t.contains(&redacted)),
        "JSON transcript: {received:?}"
    );
    assert_no_leak(&run, &leak_forms(PASSWORD, &script.message()));
    assert!(!run.output().contains(&blob), "{run}");
    server.finish();
}

#[test]
fn credentials_echoed_inside_a_base64_challenge_are_not_shown_decoded() {
    let fx = Fixture::new();
    // A server that answers the initial response with a 334 challenge carrying it back decoded
    // (base64 of "\0user\0password" inside a longer text), then refuses.
    let server = trusted(&fx)
        .handler("AUTH", |ex, received| {
            let blob = received
                .args()
                .split_whitespace()
                .nth(1)
                .unwrap_or_default();
            let echo = format!("you sent: {}", sasl::decode(blob));
            ex.send(&[format!("334 {}", B64.encode(echo)).as_str()])?;
            if ex.read_line()?.is_none() {
                return Ok(Flow::Close);
            }
            ex.send(&[format!("535 {REJECT_TEXT}").as_str()])?;
            Ok(Flow::Continue)
        })
        .start();

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--auth", "plain", "--json"],
    );

    run.assert_code(6);
    let message = format!("\0{USER}\0{PASSWORD}");
    let forms = [
        PASSWORD.to_owned(),
        B64.encode(PASSWORD),
        B64.encode(&message),
    ];
    assert_no_leak(&run, &forms);
    server.finish();
}

#[test]
fn a_failed_auth_outranks_the_envelope_and_no_message_is_sent() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Reject);
    let server = start_with(mailbox(trusted(&fx), "250 2.1.0 Ok", &[]), &script);

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--from", USER, "--to", "you@example.net", "--json"],
    );

    run.assert_code(6);
    assert_eq!(checked_json(&run)["auth"]["result"], "rejected", "{run}");
    assert_no_data(&server.finish());
}

#[test]
fn auth_works_inside_implicit_tls() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
    let server = start_with(trusted(&fx).implicit_tls(true), &script);

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--tls", "implicit", "--json"],
    );

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(doc["target"]["tls_mode"], "implicit");
    assert_eq!(doc["auth"]["result"], "accepted", "{run}");
    let log = server.finish();
    assert_eq!(log.verbs(), ["~EHLO", "~AUTH", "~QUIT"]);
}

#[test]
fn server_text_that_only_names_the_mechanism_is_not_redacted() {
    let fx = Fixture::new();
    let text = "5.7.8 AUTH LOGIN failed: bad user name or password";
    let server = trusted(&fx)
        .handler("AUTH", move |ex, _| {
            for prompt in ["334 VXNlcm5hbWU6", "334 UGFzc3dvcmQ6"] {
                ex.send(&[prompt])?;
                if ex.read_line()?.is_none() {
                    return Ok(Flow::Close);
                }
            }
            ex.send(&[format!("535 {text}").as_str()])?;
            Ok(Flow::Continue)
        })
        .start();

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--auth", "login", "--json"],
    );

    run.assert_code(6);
    let doc = checked_json(&run);
    assert_eq!(
        doc["auth"]["lines"],
        json!([text]),
        "only secrets are redacted\n{run}"
    );
    server.finish();
}

// ---------------------------------------------------------------------------------------------
// AUTH: offered or not, and when credentials are withheld
// ---------------------------------------------------------------------------------------------

#[test]
fn auth_not_advertised_inside_tls_exits_6_not_offered_and_sends_nothing() {
    let fx = Fixture::new();
    // AUTH before TLS only: what counts is what the server says inside TLS (RFC 3207 §4.2).
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
    let server = start_with(
        trusted(&fx)
            .ehlo_extensions(&["PIPELINING", "STARTTLS", "AUTH PLAIN LOGIN"])
            .ehlo_tls_extensions(&["PIPELINING", "8BITMIME"]),
        &script,
    );

    let run = authenticate(&fx, &server, password(Source::Env), &["--json"]);

    run.assert_code(6);
    let doc = checked_json(&run);
    let auth = &doc["auth"];
    assert_eq!(auth["result"], "not-offered", "{run}");
    assert_eq!(auth["advertised"], json!([]));
    assert_eq!(auth["mechanism"], Value::Null);
    assert_eq!(auth["code"], Value::Null);
    assert!(
        auth["message"].as_str().unwrap().contains("not offer"),
        "{run}"
    );
    let log = server.finish();
    assert!(
        !log.saw("AUTH", true) && !log.saw("AUTH", false),
        "{:?}",
        log.verbs()
    );
}

#[test]
fn a_token_with_only_password_mechanisms_offered_exits_6_not_offered() {
    let fx = Fixture::new();
    let server = trusted(&fx).start();

    let run = authenticate(&fx, &server, token(Source::Stdin), &["--json"]);

    run.assert_code(6);
    let auth = &checked_json(&run)["auth"];
    assert_eq!(auth["result"], "not-offered", "{run}");
    assert_eq!(auth["advertised"], json!(["LOGIN", "PLAIN"]));
    assert!(auth["message"].as_str().unwrap().contains("token"), "{run}");
    let log = server.finish();
    assert!(!log.saw("AUTH", true), "{:?}", log.verbs());
}

#[test]
fn a_forced_mechanism_not_advertised_is_tried_with_a_warning() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Login, USER, PASSWORD, Verdict::Accept);
    let server = start_with(trusted(&fx).ehlo_tls_extensions(&["AUTH PLAIN"]), &script);

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--auth", "login", "--json"],
    );

    run.assert_code(0);
    let warning = "does not advertise AUTH LOGIN";
    assert!(run.stderr.contains(warning), "{run}");
    let doc = checked_json(&run);
    assert!(
        doc["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["direction"] == "info" && e["text"].as_str().unwrap().contains(warning)),
        "{run}"
    );
    assert_eq!(doc["auth"]["mechanism"], "LOGIN");
    assert_eq!(doc["auth"]["advertised"], json!(["PLAIN"]));
    assert_eq!(doc["auth"]["result"], "accepted");
    let log = server.finish();
    assert_eq!(after_ehlo_tls(&log)[0], "AUTH LOGIN");
}

/// A server without STARTTLS that offers AUTH in plaintext, answering it with `auth_reply`.
fn plaintext_server(auth_reply: &str) -> FakeSmtp {
    forbid_data(FakeSmtp::builder())
        .ehlo_extensions(&["PIPELINING", "AUTH PLAIN LOGIN"])
        .reply("AUTH", &[auth_reply])
        .start()
}

#[test]
fn allow_plaintext_auth_reports_530_starttls_required_as_exit_6() {
    let fx = Fixture::new();
    let server = plaintext_server("530 5.7.0 Must issue a STARTTLS command first");

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--allow-plaintext-auth", "--json"],
    );

    run.assert_code(6);
    let doc = checked_json(&run);
    let auth = &doc["auth"];
    assert_eq!(auth["result"], "rejected", "{run}");
    assert_eq!(auth["code"], 530);
    assert_eq!(
        auth["lines"],
        json!(["5.7.0 Must issue a STARTTLS command first"])
    );
    assert!(
        auth["message"].as_str().unwrap().contains("STARTTLS"),
        "the message says STARTTLS is required\n{run}"
    );
    assert_eq!(doc["tls"], Value::Null);
    let log = server.finish();
    assert!(
        log.saw("AUTH", false),
        "sent in plaintext: {:?}",
        log.verbs()
    );
    assert!(!log.client_hello_seen());
}

#[test]
fn allow_plaintext_auth_that_succeeds_still_ends_with_4_as_tls_never_started() {
    let fx = Fixture::new();
    let server = plaintext_server("235 2.7.0 Authentication successful");

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--allow-plaintext-auth", "--json"],
    );

    run.assert_code(4);
    assert_eq!(checked_json(&run)["auth"]["result"], "accepted", "{run}");
    server.finish();
}

#[test]
fn without_starttls_and_without_the_flag_no_auth_is_sent_and_it_exits_4() {
    let fx = Fixture::new();
    let server = plaintext_server("235 2.7.0 Authentication successful");

    let run = authenticate(&fx, &server, password(Source::Env), &["--json"]);

    run.assert_code(4);
    let doc = checked_json(&run);
    assert_eq!(doc["error"]["kind"], "no-starttls", "{run}");
    assert_no_leak(
        &run,
        &leak_forms(PASSWORD, &format!("\0{USER}\0{PASSWORD}")),
    );
    let log = server.finish();
    assert!(
        !log.saw("AUTH", false),
        "no AUTH in plaintext: {:?}",
        log.verbs()
    );
}

#[test]
fn an_unverified_certificate_withholds_credentials_unless_allowed() {
    for allow in [false, true] {
        let fx = Fixture::new();
        let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
        // A certificate from another CA than the one in --ca-file.
        let server = start_with(
            forbid_data(FakeSmtp::builder()).ehlo_tls_extensions(SUBMISSION_TLS),
            &script,
        );
        let more: &[&str] = if allow {
            &["--json", "--allow-unverified-auth"]
        } else {
            &["--json"]
        };

        let run = authenticate(&fx, &server, password(Source::Env), more);

        run.assert_code(1);
        let doc = checked_json(&run);
        assert_eq!(doc["verification"]["verified"], false, "{run}");
        let log = server.finish();
        if allow {
            assert_eq!(doc["auth"]["result"], "accepted", "{run}");
            assert!(log.saw("AUTH", true), "{:?}", log.verbs());
        } else {
            assert_eq!(doc["auth"]["result"], "not-attempted", "{run}");
            assert_eq!(doc["auth"]["code"], Value::Null);
            let message = doc["auth"]["message"].as_str().unwrap();
            assert!(
                message.contains("--allow-unverified-auth") && message.contains("--ca-file"),
                "{message:?}"
            );
            assert!(!log.saw("AUTH", true), "withheld: {:?}", log.verbs());
            assert_eq!(after_ehlo_tls(&log), ["QUIT"]);
        }
    }
}

#[test]
fn endless_334_challenges_are_cancelled_after_a_bounded_number_of_rounds() {
    assert_eq!(MAX_AUTH_ROUNDS, 4, "the README documents 4 rounds");
    let fx = Fixture::new();
    // Answers every line with a 334 challenge, "*" and QUIT included, until the client leaves.
    let server = trusted(&fx)
        .handler("AUTH", |ex, _| {
            for _ in 0..100 {
                ex.send(&["334 bW9yZSwgcGxlYXNl"])?;
                if ex.read_line()?.is_none() {
                    break;
                }
            }
            Ok(Flow::Close)
        })
        .start();

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--auth", "plain", "--json"],
    );

    run.assert_code(6);
    assert!(
        run.elapsed < Duration::from_secs(5),
        "within --timeout\n{run}"
    );
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["result"], "aborted", "{run}");
    assert!(
        doc["auth"]["message"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{run}"
    );
    let log = server.finish();
    let mut lines = after_ehlo_tls(&log);
    if lines.last().is_some_and(|l| l == "QUIT") {
        lines.pop();
    }
    assert!(
        lines.len() <= MAX_AUTH_ROUNDS + 2,
        "AUTH, at most {MAX_AUTH_ROUNDS} answers, then *: {} lines",
        lines.len()
    );
    assert_eq!(lines.last().unwrap(), "*", "cancelled with * (RFC 4954 §4)");
}

// ---------------------------------------------------------------------------------------------
// The envelope
// ---------------------------------------------------------------------------------------------

#[test]
fn each_recipient_is_reported_in_order_and_a_refusal_exits_7() {
    let fx = Fixture::new();
    let bad = "550 5.1.1 <bad@example.net>: Recipient address rejected: User unknown";
    let server = mailbox(trusted(&fx), "250 2.1.0 Ok", &[("bad@example.net", bad)]).start();

    let run = test_smtp(
        &server,
        &support::args(
            &fx.trust_args(),
            &[
                "--from",
                "a@example.org",
                "--to",
                "ok@example.net",
                "--to",
                "bad@example.net",
                "--to",
                "ok2@example.net",
                "--json",
            ],
        ),
        &[],
        None,
    );

    run.assert_code(7);
    let doc = checked_json(&run);
    let mail = &doc["envelope"]["mail_from"];
    assert_eq!(mail["address"], "a@example.org");
    assert_eq!(mail["result"], "accepted");
    assert_eq!(mail["code"], 250);
    assert_eq!(
        rcpt_results(&doc),
        ["accepted", "rejected", "accepted"],
        "{run}"
    );
    let rows = doc["envelope"]["rcpt_to"].as_array().unwrap();
    let addresses: Vec<&str> = rows
        .iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["ok@example.net", "bad@example.net", "ok2@example.net"]
    );
    assert_eq!(rows[1]["code"], 550);
    assert_eq!(rows[1]["lines"], json!([&bad[4..]]));
    assert!(rows[1]["message"].is_string(), "550 is explained\n{run}");
    assert_eq!(rows[0]["code"], 250);
    assert_eq!(doc["auth"], Value::Null);
    let log = server.finish();
    assert_eq!(
        after_ehlo_tls(&log),
        [
            "MAIL FROM:<a@example.org>",
            "RCPT TO:<ok@example.net>",
            "RCPT TO:<bad@example.net>",
            "RCPT TO:<ok2@example.net>",
            "RSET",
            "QUIT",
        ],
        "exact wire forms (no space after the colon), then RSET and QUIT"
    );
    assert_no_data(&log);
}

#[test]
fn a_refused_mail_from_sends_no_rcpt_and_exits_7() {
    let fx = Fixture::new();
    let refused = "553 5.7.1 <a@example.org>: Sender address rejected: not owned by user";
    let server = mailbox(trusted(&fx), refused, &[]).start();

    let run = test_smtp(
        &server,
        &support::args(
            &fx.trust_args(),
            &[
                "--from",
                "a@example.org",
                "--to",
                "b@example.net",
                "--to",
                "c@example.net",
                "--json",
            ],
        ),
        &[],
        None,
    );

    run.assert_code(7);
    let doc = checked_json(&run);
    let mail = &doc["envelope"]["mail_from"];
    assert_eq!(mail["result"], "rejected", "{run}");
    assert_eq!(mail["code"], 553);
    assert!(mail["message"].is_string(), "553 is explained\n{run}");
    assert_eq!(rcpt_results(&doc), ["not-attempted", "not-attempted"]);
    for row in doc["envelope"]["rcpt_to"].as_array().unwrap() {
        assert_eq!(row["code"], Value::Null, "{run}");
    }
    let log = server.finish();
    assert!(!log.saw("RCPT", true), "{:?}", log.verbs());
    assert_eq!(
        after_ehlo_tls(&log),
        ["MAIL FROM:<a@example.org>", "RSET", "QUIT"]
    );
    assert_no_data(&log);
}

#[test]
fn a_greylisted_recipient_is_a_temporary_failure_and_exits_7() {
    let fx = Fixture::new();
    let greylisted = "451 4.7.1 <b@example.net>: Recipient address rejected: Greylisted";
    let server = mailbox(
        trusted(&fx),
        "250 2.1.0 Ok",
        &[("b@example.net", greylisted)],
    )
    .start();

    let run = test_smtp(
        &server,
        &support::args(
            &fx.trust_args(),
            &["--from", "a@example.org", "--to", "b@example.net", "--json"],
        ),
        &[],
        None,
    );

    run.assert_code(7);
    let doc = checked_json(&run);
    assert_eq!(rcpt_results(&doc), ["temporary-failure"], "{run}");
    let row = &doc["envelope"]["rcpt_to"][0];
    assert_eq!(row["code"], 451);
    assert!(
        row["message"].as_str().unwrap().contains("try again later"),
        "{run}"
    );
    let log = server.finish();
    assert_no_data(&log);
}

#[test]
fn the_null_sender_is_sent_as_empty_angle_brackets() {
    let fx = Fixture::new();
    let server = mailbox(trusted(&fx), "250 2.1.0 Ok", &[]).start();

    let run = test_smtp(
        &server,
        &support::args(&fx.trust_args(), &["--from", "", "--json"]),
        &[],
        None,
    );

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(doc["envelope"]["mail_from"]["address"], "", "{run}");
    assert_eq!(doc["envelope"]["mail_from"]["result"], "accepted");
    assert_eq!(doc["envelope"]["rcpt_to"], json!([]));
    let log = server.finish();
    assert_eq!(after_ehlo_tls(&log), ["MAIL FROM:<>", "RSET", "QUIT"]);
    assert_no_data(&log);
}

#[test]
fn auth_then_envelope_in_one_session() {
    let fx = Fixture::new();
    let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
    let server = start_with(mailbox(trusted(&fx), "250 2.1.0 Ok", &[]), &script);

    let run = authenticate(
        &fx,
        &server,
        password(Source::Env),
        &["--from", USER, "--to", "you@example.net", "--json"],
    );

    run.assert_code(0);
    let doc = checked_json(&run);
    assert_eq!(doc["auth"]["result"], "accepted", "{run}");
    assert_eq!(rcpt_results(&doc), ["accepted"]);
    let log = server.finish();
    let verbs: Vec<String> = log.verbs().into_iter().skip(3).collect();
    assert_eq!(verbs, ["~AUTH", "~MAIL", "~RCPT", "~RSET", "~QUIT"]);
    assert_no_data(&log);
}

// ---------------------------------------------------------------------------------------------
// --quit-after, the EHLO name, usage errors
// ---------------------------------------------------------------------------------------------

#[test]
fn quit_after_stops_at_the_stage_asked_for() {
    let plain = format!("AUTH PLAIN {}", B64.encode(format!("\0{USER}\0{PASSWORD}")));
    #[rustfmt::skip]
    let table: &[(&[&str], &[&str])] = &[
        (&["--quit-after", "connect"], &[]),
        (&["--quit-after", "banner"], &["QUIT"]),
        (&["--quit-after", "ehlo"], &["EHLO", "QUIT"]),
        (&["--quit-after", "tls"], &["EHLO", "STARTTLS", "~EHLO", "~QUIT"]),
        (&["--user", USER, "--password-env", SECRET_VAR, "--from", "a@example.org", "--quit-after", "auth"],
            &["EHLO", "STARTTLS", "~EHLO", "~AUTH", "~QUIT"]),
        (&["--from", "a@example.org", "--to", "b@example.net", "--quit-after", "mail"],
            &["EHLO", "STARTTLS", "~EHLO", "~MAIL", "~RSET", "~QUIT"]),
        (&["--from", "a@example.org", "--to", "b@example.net"],
            &["EHLO", "STARTTLS", "~EHLO", "~MAIL", "~RCPT", "~RSET", "~QUIT"]),
    ];
    for (options, verbs) in table {
        let fx = Fixture::new();
        let script = SaslScript::new(Mech::Plain, USER, PASSWORD, Verdict::Accept);
        let server = start_with(mailbox(trusted(&fx), "250 2.1.0 Ok", &[]), &script);
        let trust = fx.trust_args();
        let mut all = support::args(&trust, options);
        all.push("--json");

        let run = test_smtp(&server, &all, &[(SECRET_VAR, PASSWORD)], None);

        run.assert_code(0);
        let doc = checked_json(&run);
        if options.contains(&"mail") {
            assert!(
                rcpt_results(&doc).iter().all(|r| *r == "not-attempted"),
                "{run}"
            );
        }
        let log = server.finish();
        assert_eq!(log.connections(), 1, "{options:?}");
        assert_eq!(log.verbs(), *verbs, "{options:?}\n{run}");
        if log.saw("AUTH", true) {
            assert_eq!(after_ehlo_tls(&log)[0], plain);
        }
        assert_no_data(&log);
    }
}

#[test]
fn the_from_domain_is_the_ehlo_name_without_domain() {
    let fx = Fixture::new();
    let server = mailbox(trusted(&fx), "250 2.1.0 Ok", &[]).start();

    let run = test_smtp(
        &server,
        &support::args(&fx.trust_args(), &["--from", "me@example.org", "--json"]),
        &[],
        None,
    );

    run.assert_code(0);
    assert_eq!(checked_json(&run)["target"]["ehlo_name"], "example.org");
    let log = server.finish();
    let ehlo: Vec<&str> = log
        .received
        .iter()
        .filter(|r| r.verb() == "EHLO")
        .map(|r| r.line.as_str())
        .collect();
    assert_eq!(ehlo, ["EHLO example.org", "EHLO example.org"]);
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    #[rustfmt::skip]
    let table: &[(&[&str], &str)] = &[
        (&["--from", "a@example.org", "--quit-after", "rcpt"], "--to"),
        (&["--to", "b@example.net"], "--from"),
        (&["--user", USER], "--password-env"),
        (&["--user", USER, "--password-env", "TSMTP_TEST_UNSET_VARIABLE"], "TSMTP_TEST_UNSET_VARIABLE"),
        (&["--user", USER, "--auth", "xoauth2", "--password-env", SECRET_VAR], "token"),
        (&["--user", USER, "--auth", "plain", "--token-env", SECRET_VAR], "password"),
        (&["--user", USER, "--password", PASSWORD], "--password"),
        (&["--user", USER, "--pass", PASSWORD], "--pass"),
        (&["--user", USER, "--token", TOKEN], "--token"),
        (&["--user", USER, "--secret", PASSWORD], "--secret"),
        (&["--user", USER, "--password-env", EMPTY_VAR], "empty"),
        (&["--user", USER, "--password-file", "/nonexistent/tsmtp-secret.txt"], "--password-file"),
    ];
    for (options, named) in table {
        let server = FakeSmtp::builder().expect_no_connection().start();

        let env = [(SECRET_VAR, PASSWORD), (EMPTY_VAR, "")];
        let run = test_smtp(&server, options, &env, None);

        run.assert_code(2);
        assert!(run.stderr.contains(named), "the error names {named}\n{run}");
        assert!(run.stdout.is_empty(), "{run}");
        assert_no_leak(&run, &[PASSWORD.to_owned(), TOKEN.to_owned()]);
        server.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Secret hygiene
// ---------------------------------------------------------------------------------------------

/// How each mechanism's secret-carrying command is shown.
fn redacted_form(mech: Mech) -> &'static str {
    match mech {
        Mech::Plain => "AUTH PLAIN <credentials redacted>",
        Mech::Login => "<password redacted>",
        Mech::XOAuth2 => "AUTH XOAUTH2 <token redacted>",
        Mech::OAuthBearer => "AUTH OAUTHBEARER <token redacted>",
    }
}

#[test]
fn no_form_of_the_secret_reaches_stdout_stderr_or_the_json() {
    for mech in Mech::ALL {
        let secret = if mech.uses_token() { TOKEN } else { PASSWORD };
        let source = match mech {
            Mech::Plain => Source::File,
            Mech::Login | Mech::OAuthBearer => Source::Stdin,
            Mech::XOAuth2 => Source::Env,
        };
        for verdict in [Verdict::Accept, Verdict::Reject, Verdict::RejectEcho] {
            for json in [true, false] {
                let fx = Fixture::new();
                let script = SaslScript::new(mech, USER, secret, verdict);
                let server = start_with(
                    trusted(&fx).ehlo_tls_extensions(&["AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER"]),
                    &script,
                );
                let mut more = vec!["--auth", mech.arg()];
                if json {
                    more.push("--json");
                }

                let given = if mech.uses_token() {
                    token(source)
                } else {
                    password(source)
                };
                let run = authenticate(&fx, &server, given, &more);

                let case = format!("{mech:?} {verdict:?} json={json}");
                run.assert_code(if verdict == Verdict::Accept { 0 } else { 6 });
                assert_no_leak(&run, &leak_forms(secret, &script.message()));
                assert!(
                    run.stderr.contains(redacted_form(mech)),
                    "{case}: transcript shows {:?}\n{run}",
                    redacted_form(mech)
                );
                if json {
                    let doc = checked_json(&run);
                    assert!(
                        sent_texts(&doc).iter().any(|t| t == redacted_form(mech)),
                        "{case}: JSON transcript\n{run}"
                    );
                    if verdict == Verdict::RejectEcho {
                        let line = doc["auth"]["lines"][0].as_str().unwrap();
                        assert!(line.contains("<redacted>"), "{case}: {line:?}");
                    }
                } else {
                    assert!(run.stdout.contains("Auth:"), "{case}: text report\n{run}");
                }
                // The forms searched for are real: the server did receive them on the wire.
                let log = server.finish();
                let wire: String = log.received.iter().map(|r| r.line.as_str()).collect();
                let forms = leak_forms(secret, &script.message());
                assert!(
                    wire.contains(&forms[2]),
                    "{case}: whole message on the wire"
                );
                if mech != Mech::Login {
                    assert!(
                        forms[3..].iter().any(|core| wire.contains(core.as_str())),
                        "{case}: an aligned base64 core of the secret is on the wire"
                    );
                }
            }
        }
    }
}
