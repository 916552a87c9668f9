//! The `--json` contract as a JSON Schema: `schemas/report.schema.json` (draft 2020-12) must be
//! a valid schema that closes every object, and the real output of both subcommands must match
//! it — verified, failed with reasons and thresholds, connection refused, a certificate written,
//! AUTH and the envelope, and a run that stops before TLS. A renamed field or an unknown enum
//! value must not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::ffi::OsStr;
use std::net::TcpListener;

use jsonschema::Validator;
use serde_json::{Value, json};
use support::{
    FakeSmtp, Fixture, Flow, Run, TestPki, args, get_cert, reason_codes, smtptls_with_env,
};

/// The schema, as shipped.
const SCHEMA: &str = include_str!("../schemas/report.schema.json");

/// The password the test-smtp run authenticates with (it must not appear in the report).
const PASSWORD: &str = "correct horse battery staple";

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("schemas/report.schema.json is JSON")
}

fn validator() -> Validator {
    jsonschema::draft202012::new(&schema()).expect("the schema compiles")
}

/// Every way `doc` breaks the schema, one line each (empty when it matches).
fn violations(validator: &Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// The run's stdout as JSON, asserted to match the schema.
#[track_caller]
fn assert_matches_schema(run: &Run) -> Value {
    let doc = run.json();
    let errors = violations(&validator(), &doc);
    assert!(
        errors.is_empty(),
        "the --json output does not match schemas/report.schema.json:\n{}\n{run}",
        errors.join("\n")
    );
    doc
}

/// A port on loopback that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_schema_is_valid_draft_2020_12_and_closes_every_object() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e} at {}", e.instance_path());
    }
    validator();

    let mut objects = vec![("(root)".to_owned(), &schema)];
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            objects.push((name.clone(), def));
        }
    }
    assert!(objects.len() > 10, "every object of the report has a $def");
    for (name, object) in objects {
        assert_eq!(object["additionalProperties"], false, "{name}");
        let mut properties: Vec<&String> =
            object["properties"].as_object().unwrap().keys().collect();
        let mut required: Vec<&str> = object["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        properties.sort();
        required.sort_unstable();
        assert_eq!(
            properties, required,
            "{name}: every field is always present (null when absent)"
        );
    }
}

#[test]
fn get_cert_verified_matches() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.chain_leaf()).start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["--json"]));

    run.assert_code(0);
    let doc = assert_matches_schema(&run);
    assert_eq!(doc["verification"]["verified"], true, "{run}");
    assert!(!doc["transcript"].as_array().unwrap().is_empty(), "{run}");
    server.finish();
}

#[test]
fn get_cert_failed_verification_with_reasons_and_thresholds_matches() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.short_lived_intermediate_leaf(5))
        .start();

    // No --ca-file, another name, and an expiry within both thresholds.
    #[rustfmt::skip]
    let run = get_cert(&server, &[
        "--json", "--sni", "elsewhere.smtptls.test", "--warn-days", "30", "--crit-days", "10",
    ]);

    run.assert_code(1);
    let doc = assert_matches_schema(&run);
    let codes = reason_codes(&doc);
    for code in ["unknown-issuer", "name-mismatch", "expires-soon"] {
        assert!(codes.contains(&code), "{code} in {codes:?}\n{run}");
    }
    assert_eq!(doc["verification"]["expiry"]["status"], "critical", "{run}");
    server.finish();
}

#[test]
fn get_cert_connection_refused_matches() {
    let target = format!("127.0.0.1:{}", closed_port());

    let run = support::smtptls(["get-cert", &target, "--timeout", "5", "--json"]);

    run.assert_code(3);
    let doc = assert_matches_schema(&run);
    assert_eq!(doc["error"]["kind"], "connect", "{run}");
    for field in ["tls", "verification", "output", "ehlo_before_tls"] {
        assert_eq!(doc[field], Value::Null, "{field}\n{run}");
    }
}

#[test]
fn get_cert_with_an_output_file_matches() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.chain_leaf()).start();
    let out = fx.arg("chain.pem");

    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["--json", "-q", "--chain", "-o", &out]),
    );

    run.assert_code(0);
    let doc = assert_matches_schema(&run);
    assert_eq!(doc["output"]["format"], "pem", "{run}");
    assert_eq!(doc["output"]["certificates_written"], 2, "{run}");
    server.finish();
}

/// A submission server: AUTH PLAIN inside TLS, every MAIL FROM accepted, RCPT TO accepted only
/// for addresses starting `ok@`.
fn submission_server(pki: &TestPki) -> FakeSmtp {
    FakeSmtp::builder()
        .leaf(&pki.leaf())
        .ehlo_tls_extensions(&["PIPELINING", "AUTH PLAIN LOGIN", "ENHANCEDSTATUSCODES"])
        .reply("AUTH", &["235 2.7.0 Authentication successful"])
        .reply("MAIL", &["250 2.1.0 Sender OK"])
        .handler("RCPT", |ex, received| {
            if received.args().to_ascii_lowercase().contains("<ok@") {
                ex.send(&["250 2.1.5 Recipient OK"])?;
            } else {
                ex.send(&["550 5.1.1 No such user here"])?;
            }
            Ok(Flow::Continue)
        })
        .start()
}

/// `smtptls test-smtp <server> --timeout 5 <args...>`, with the test password in the environment.
fn test_smtp(server: &FakeSmtp, more: &[&str]) -> Run {
    let target = server.server_arg();
    let mut all = vec!["test-smtp", target.as_str(), "--timeout", "5"];
    all.extend_from_slice(more);
    smtptls_with_env(all, &[("SCHEMA_TEST_PASSWORD", OsStr::new(PASSWORD))])
}

#[test]
fn test_smtp_with_auth_and_envelope_matches() {
    let fx = Fixture::new();
    let server = submission_server(&fx.pki);

    #[rustfmt::skip]
    let run = test_smtp(&server, &args(&fx.trust_args(), &[
        "--json", "-q", "--user", "alice", "--password-env", "SCHEMA_TEST_PASSWORD",
        "--from", "alice@example.com", "--to", "ok@example.com", "--to", "nobody@example.com",
    ]));

    run.assert_code(7);
    let doc = assert_matches_schema(&run);
    assert_eq!(doc["command"], "test-smtp");
    assert_eq!(doc["auth"]["result"], "accepted", "{run}");
    assert_eq!(doc["auth"]["mechanism"], "PLAIN", "{run}");
    let rcpt = &doc["envelope"]["rcpt_to"];
    assert_eq!(
        (&rcpt[0]["result"], &rcpt[1]["result"]),
        (&json!("accepted"), &json!("rejected")),
        "{run}"
    );
    assert!(!run.stdout.contains(PASSWORD), "no secret in the report");
    let log = server.finish();
    assert!(log.saw("AUTH", true) && log.saw("RSET", true));
}

#[test]
fn test_smtp_quit_after_ehlo_matches() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let run = test_smtp(&server, &["--json", "-q", "--quit-after", "ehlo"]);

    run.assert_code(0);
    let doc = assert_matches_schema(&run);
    for field in ["tls", "verification", "auth", "envelope", "ehlo_after_tls"] {
        assert_eq!(doc[field], Value::Null, "{field}\n{run}");
    }
    assert_eq!(doc["certificates"], json!([]), "{run}");
    assert!(doc["ehlo_before_tls"].is_array(), "{run}");
    let log = server.finish();
    assert!(log.tls_sessions().is_empty(), "no TLS");
}

#[test]
fn the_schema_catches_renames_removals_and_unknown_values() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.wrong_name_leaf()).start();
    let run = get_cert(&server, &args(&fx.trust_args(), &["--json", "-q"]));
    let doc = assert_matches_schema(&run);
    server.finish();
    let validator = validator();

    // Each change is (a JSON pointer to the parent object, the key, what to do with it).
    enum Change {
        Rename(&'static str),
        Remove,
        Set(Value),
    }
    let cases = [
        ("/verification", "chain_trusted", Change::Rename("chain_ok")),
        (
            "/verification/reasons/0",
            "code",
            Change::Set(json!("bad-name")),
        ),
        (
            "/verification/reasons/0",
            "severity",
            Change::Set(json!("fatal")),
        ),
        ("/target", "tls_mode", Change::Set(json!("STARTTLS"))),
        ("/certificates/0", "days_left", Change::Set(json!("12"))),
        ("/transcript/0", "direction", Change::Set(json!("in"))),
        ("", "exit_code", Change::Remove),
        ("", "schema_version", Change::Set(json!(2))),
        ("", "extra", Change::Set(json!(true))),
        ("", "auth", Change::Set(json!({}))), // get-cert has no AUTH
    ];
    for (parent, key, change) in cases {
        let mut changed = doc.clone();
        let object = changed
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{parent} in\n{run}"));
        match change {
            Change::Rename(to) => {
                let value = object.remove(key).unwrap();
                object.insert(to.to_owned(), value);
            }
            Change::Remove => {
                object.remove(key).unwrap();
            }
            Change::Set(value) => {
                object.insert(key.to_owned(), value);
            }
        }
        assert!(
            !violations(&validator, &changed).is_empty(),
            "{parent}/{key}: the change went unnoticed"
        );
    }
}
