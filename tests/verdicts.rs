//! End-to-end tests of the certificate verdict: for each reason a fake server presents a chain
//! made at test time (expired, not yet valid, self-signed, unknown CA, missing intermediate,
//! wrong order, wrong name, RSA-1024, SHA-1, an intermediate expiring before the leaf) and
//! `get-cert --json` must report it with its code, certificate index, severity and words, and
//! exit as README says: 0 verified, 1 not (or within `--crit-days`), 8 within `--warn-days`.
//! Then `--ca-file`, `--verify-name` and `--trust system` turning a failure into success, and the
//! `--nagios` status lines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;

use rcgen::date_time_ymd;
use serde_json::Value;
use support::pki::{LOOPBACK_NAMES, WRONG_NAME, ca_issuers_extension, days_from_now, leaf_params};
use support::{
    Ca, FakeSmtp, Fixture, Run, TestPki, args, assert_get_cert_schema, assert_reason,
    assert_verdict, get_cert, legacy, reason_codes, self_signed_leaf, smtptls, smtptls_with_env,
};

/// Where the missing intermediate is "published": text in the leaf, never fetched.
const AIA_URL: &str = "http://ca.smtptls.test/i.der";

/// `get-cert --json -q <args>` against `server`; the run and its JSON, checked against the
/// get-cert contract.
fn json_run(server: &FakeSmtp, more: &[&str]) -> (Run, Value) {
    let mut all = vec!["--json", "-q"];
    all.extend_from_slice(more);
    let run = get_cert(server, &all);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    (run, doc)
}

#[test]
fn an_expired_leaf_is_reason_expired_with_its_age_in_days() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.expired_leaf()).start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));

    run.assert_code(1);
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "expired", "error", Some(0));
    let days = days_ago(&message).unwrap_or_else(|| panic!("{message:?}\n{run}"));
    assert!(days > 365, "expired on 2021-01-01\n{run}");
    assert_eq!(doc["verification"]["expiry"]["status"], "critical", "{run}");
    server.finish();
}

/// N in "... expired N days ago ...".
fn days_ago(message: &str) -> Option<u64> {
    let (_, rest) = message.split_once("expired ")?;
    let (n, _) = rest.split_once(" days ago")?;
    n.parse().ok()
}

#[test]
fn the_expired_age_counts_whole_days_gone_and_agrees_with_chain_error() {
    let fx = Fixture::new();
    let mut params = leaf_params(LOOPBACK_NAMES);
    params.not_before = days_from_now(-30, 0);
    params.not_after = days_from_now(-3, -12);
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.root().issue(&params))
        .start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));

    let message = assert_reason(&run, &doc, "expired", "error", Some(0));
    let chain_error = doc["verification"]["chain_error"].as_str().unwrap();
    assert!(chain_error.contains("expired 3 days ago"), "{run}");
    assert!(message.contains("expired 3 days ago"), "{message:?}\n{run}");
    server.finish();
}

#[test]
fn a_leaf_not_valid_yet_is_reason_not_yet_valid() {
    let fx = Fixture::new();
    let mut params = leaf_params(LOOPBACK_NAMES);
    params.not_before = days_from_now(30, 1);
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.root().issue(&params))
        .start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));

    run.assert_code(1);
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "not-yet-valid", "error", Some(0));
    assert!(message.contains("not valid yet"), "{message:?}\n{run}");
    assert_eq!(doc["certificates"][0]["not_yet_valid"], true, "{run}");
    server.finish();
}

#[test]
fn a_self_signed_leaf_is_reason_self_signed_until_ca_file_pins_it() {
    let fx = Fixture::new();
    let leaf = self_signed_leaf();
    let pinned = fx.path("pinned.pem");
    fs::write(&pinned, leaf.pem()).unwrap();
    let pinned = support::cli::path_arg(&pinned);
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));
    run.assert_code(1);
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "self-signed", "error", Some(0));
    assert!(message.contains("--ca-file"), "says what to do\n{run}");

    let (run, doc) = json_run(&server, &["--ca-file", &pinned, "--sni", "localhost"]);
    run.assert_code(0);
    assert_verdict(&run, &doc, true, true, true);
    assert_eq!(reason_codes(&doc), Vec::<&str>::new(), "{run}");
    server.finish();
}

#[test]
fn an_unknown_ca_whose_root_is_sent_is_unknown_issuer_naming_it_until_ca_file_trusts_it() {
    let fx = Fixture::new();
    let unknown = TestPki::named("smtptls unknown root CA");
    let unknown_ca = fx.path("unknown-ca.pem");
    unknown.root().write_pem(&unknown_ca);
    let unknown_ca = support::cli::path_arg(&unknown_ca);
    let leaf = unknown.leaf().followed_by(&[unknown.ca_der()]);
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));
    run.assert_code(1);
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "unknown-issuer", "error", Some(1));
    assert!(
        message.contains("smtptls unknown root CA"),
        "names the root\n{run}"
    );
    assert!(!reason_codes(&doc).contains(&"out-of-order"), "{run}");

    let (run, doc) = json_run(&server, &["--ca-file", &unknown_ca, "--sni", "localhost"]);
    run.assert_code(0);
    assert_verdict(&run, &doc, true, true, true);
    server.finish();
}

#[test]
fn a_missing_intermediate_is_incomplete_chain_naming_its_url_and_the_full_chain_verifies() {
    let fx = Fixture::new();
    let intermediate = fx
        .pki
        .root()
        .intermediate("smtptls test intermediate CA", date_time_ymd(2099, 1, 1));
    let mut params = leaf_params(LOOPBACK_NAMES);
    params.custom_extensions.push(ca_issuers_extension(AIA_URL));
    let leaf_only = intermediate.issue(&params);
    let full = leaf_only.clone().followed_by(&[intermediate.der()]);
    let incomplete = FakeSmtp::builder().leaf(&leaf_only).start();
    let complete = FakeSmtp::builder().leaf(&full).start();

    let (run, doc) = json_run(&incomplete, &args(&fx.trust_args(), &[]));
    run.assert_code(1);
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "incomplete-chain", "error", Some(0));
    assert!(message.contains(AIA_URL), "{message:?}\n{run}");
    assert!(
        message.contains("smtptls test intermediate CA"),
        "names the missing certificate\n{run}"
    );

    let (run, doc) = json_run(&complete, &args(&fx.trust_args(), &[]));
    run.assert_code(0);
    assert_verdict(&run, &doc, true, true, true);
    assert_eq!(reason_codes(&doc), Vec::<&str>::new(), "{run}");
    incomplete.finish();
    complete.finish();
}

#[test]
fn a_chain_sent_out_of_order_still_verifies_with_an_out_of_order_warning() {
    let fx = Fixture::new();
    let intermediate = fx
        .pki
        .root()
        .intermediate("smtptls test intermediate CA", date_time_ymd(2099, 1, 1));
    // Leaf, root, intermediate: the leaf is not followed by its issuer.
    let leaf = intermediate
        .issue(&leaf_params(LOOPBACK_NAMES))
        .followed_by(&[fx.pki.ca_der(), intermediate.der()]);
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));

    run.assert_code(0);
    assert_verdict(&run, &doc, true, true, true);
    assert_eq!(doc["certificates"].as_array().unwrap().len(), 3, "{run}");
    let message = assert_reason(&run, &doc, "out-of-order", "warning", Some(0));
    assert!(message.contains("out of order"), "{message:?}\n{run}");
    server.finish();
}

#[test]
fn a_wrong_name_is_name_mismatch_listing_the_names_held_until_verify_name_names_one() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.wrong_name_leaf()).start();

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &[]));
    run.assert_code(1);
    assert_verdict(&run, &doc, false, true, false);
    let message = assert_reason(&run, &doc, "name-mismatch", "error", Some(0));
    assert!(
        message.contains("localhost") && message.contains(&format!("DNS:{WRONG_NAME}")),
        "the name checked and the names held: {message:?}\n{run}"
    );

    let (run, doc) = json_run(
        &server,
        &args(&fx.trust_args(), &["--verify-name", WRONG_NAME]),
    );
    run.assert_code(0);
    assert_verdict(&run, &doc, true, true, true);
    assert_eq!(doc["verification"]["name_checked"], WRONG_NAME, "{run}");
    assert_eq!(doc["target"]["sni"], "localhost", "SNI is unchanged\n{run}");
    server.finish();
}

#[test]
fn an_rsa_1024_leaf_is_weak_key_exit_1_and_still_saved() {
    let fx = Fixture::new();
    let leaf = legacy::rsa_1024_leaf(fx.pki.root(), &leaf_params(LOOPBACK_NAMES));
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("weak.der");

    let (run, doc) = json_run(&server, &args(&fx.trust_args(), &["-o", &out]));

    run.assert_code(1);
    assert_eq!(
        fs::read(&out).unwrap(),
        leaf.der(),
        "the certificate is saved\n{run}"
    );
    assert_eq!(doc["certificates"][0]["public_key_type"], "RSA", "{run}");
    assert_eq!(doc["certificates"][0]["public_key_bits"], 1024, "{run}");
    // rustls will not check a handshake signature made with a 1024-bit key: the handshake
    // fails after the chain was captured, and that counts as a failed verification.
    assert_eq!(doc["error"]["kind"], "tls", "{run}");
    assert_verdict(&run, &doc, false, true, true);
    let message = assert_reason(&run, &doc, "weak-key", "error", Some(0));
    assert!(message.contains("1024"), "{message:?}\n{run}");
    server.finish();
}

#[test]
fn a_sha1_signed_leaf_is_sha1_signature() {
    let fx = Fixture::new();
    let ca = Ca::rsa_root("smtptls SHA-1 test root CA");
    let ca_file = fx.path("rsa-ca.pem");
    ca.write_pem(&ca_file);
    let ca_file = support::cli::path_arg(&ca_file);
    let leaf = legacy::sha1_signed_leaf(&ca, &leaf_params(LOOPBACK_NAMES));
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let (run, doc) = json_run(&server, &["--ca-file", &ca_file, "--sni", "localhost"]);

    run.assert_code(1);
    assert_eq!(
        doc["certificates"][0]["signature_algorithm"], "sha1WithRSAEncryption",
        "{run}"
    );
    assert_verdict(&run, &doc, false, false, true);
    let message = assert_reason(&run, &doc, "sha1-signature", "error", Some(0));
    assert!(message.contains("SHA-1"), "{message:?}\n{run}");
    server.finish();
}

#[test]
fn the_intermediate_expiring_first_drives_every_threshold_path() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.short_lived_intermediate_leaf(5))
        .start();
    // (thresholds, exit code, expiry status)
    let cases: &[(&[&str], i32, &str)] = &[
        (&[], 0, "ok"),
        (&["--warn-days", "4"], 0, "ok"),
        (&["--warn-days", "10"], 8, "warning"),
        (&["--warn-days", "5"], 8, "warning"), // days_left == N is within
        (&["--crit-days", "4"], 0, "ok"),
        (&["--crit-days", "10"], 1, "critical"),
        (&["--crit-days", "5"], 1, "critical"),
        (&["--warn-days", "30", "--crit-days", "10"], 1, "critical"),
        (&["--warn-days", "10", "--crit-days", "3"], 8, "warning"),
    ];
    for (thresholds, code, status) in cases {
        let (run, doc) = json_run(&server, &args(&fx.trust_args(), thresholds));
        run.assert_code(*code);
        assert_eq!(doc["verification"]["chain_trusted"], true, "{run}");
        let expiry = &doc["verification"]["expiry"];
        assert_eq!(expiry["status"], *status, "{thresholds:?}\n{run}");
        assert_eq!(expiry["certificate"], 1, "the intermediate\n{run}");
        assert_eq!(expiry["min_days_left"], 5, "{run}");
        assert!(
            expiry["subject"]
                .as_str()
                .unwrap()
                .contains("short-lived intermediate"),
            "{run}"
        );
        let given = |flag: &str| {
            thresholds
                .iter()
                .position(|a| *a == flag)
                .map_or(Value::Null, |i| {
                    Value::from(thresholds[i + 1].parse::<i64>().unwrap())
                })
        };
        assert_eq!(expiry["warn_days"], given("--warn-days"), "{run}");
        assert_eq!(expiry["crit_days"], given("--crit-days"), "{run}");
        match *status {
            "ok" => assert!(!reason_codes(&doc).contains(&"expires-soon"), "{run}"),
            "warning" => {
                assert_reason(&run, &doc, "expires-soon", "warning", Some(1));
            }
            _ => {
                assert_reason(&run, &doc, "expires-soon", "error", Some(1));
            }
        }
    }
    server.finish();
}

/// The `--nagios` status line of a run: exactly one line on stdout.
#[track_caller]
fn nagios_line(run: &Run) -> &str {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one status line\n{run}");
    lines[0]
}

/// The performance data of a status line, checked for the form `days_left=<int>;<warn>;<crit>`
/// (thresholds empty when not given).
#[track_caller]
fn perf_data(line: &str) -> Option<(i64, Option<i64>, Option<i64>)> {
    let (_, perf) = line.split_once(" | ")?;
    let value = perf
        .strip_prefix("days_left=")
        .unwrap_or_else(|| panic!("perf data {perf:?}"));
    let fields: Vec<&str> = value.split(';').collect();
    assert_eq!(fields.len(), 3, "days_left=N;W;C: {perf:?}");
    let number = |s: &str| {
        s.parse::<i64>()
            .unwrap_or_else(|_| panic!("{s:?} in {perf:?}"))
    };
    let optional = |s: &str| (!s.is_empty()).then(|| number(s));
    Some((number(fields[0]), optional(fields[1]), optional(fields[2])))
}

#[test]
fn nagios_status_lines_follow_the_plugin_convention() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.short_lived_intermediate_leaf(5))
        .start();
    let target = server.server_arg();
    let trust = fx.trust_args();
    let trusted = |more: &[&'static str]| {
        let mut all: Vec<&str> = trust.iter().map(String::as_str).collect();
        all.extend_from_slice(more);
        all
    };
    // (arguments, exit code, status word, words in the line, perf data)
    type Perf = (i64, Option<i64>, Option<i64>);
    let cases: Vec<(Vec<&str>, i32, &str, &str, Perf)> = vec![
        (
            trusted(&[]),
            0,
            "OK",
            "certificate verified",
            (5, None, None),
        ),
        (
            trusted(&["--warn-days", "10"]),
            1,
            "WARNING",
            "expires in 5 days",
            (5, Some(10), None),
        ),
        (
            trusted(&["--warn-days", "10", "--crit-days", "5"]),
            2,
            "CRITICAL",
            "expires in 5 days",
            (5, Some(10), Some(5)),
        ),
        // Not trusted without --ca-file.
        (
            vec!["--sni", "localhost"],
            2,
            "CRITICAL",
            "not accepted",
            (5, None, None),
        ),
    ];
    for (more, code, word, words, perf) in cases {
        let mut all = vec!["--nagios"];
        all.extend_from_slice(&more);
        let run = get_cert(&server, &all);
        run.assert_code(code);
        let line = nagios_line(&run);
        let prefix = format!("SMTPTLS {word} - {target}: ");
        assert!(line.starts_with(&prefix), "{prefix:?}\n{run}");
        assert!(line.contains(words), "{words:?}\n{run}");
        assert_eq!(perf_data(line), Some(perf), "{run}");
    }
    server.finish();
}

#[test]
fn nagios_connection_refused_is_critical() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");

    let run = smtptls(["get-cert", &target, "--timeout", "5", "--nagios"]);

    run.assert_code(2);
    let line = nagios_line(&run);
    assert!(
        line.starts_with(&format!("SMTPTLS CRITICAL - {target}: ")),
        "{run}"
    );
    if let Some(perf) = perf_data(line) {
        panic!("no certificate, no days_left: {perf:?}\n{run}");
    }
}

#[test]
fn nagios_usage_error_is_unknown() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().expect_no_connection().start();
    let missing = fx.arg("missing-ca.pem");

    let run = get_cert(&server, &["--nagios", "--ca-file", &missing]);

    run.assert_code(3);
    let line = nagios_line(&run);
    assert!(line.starts_with("SMTPTLS UNKNOWN - "), "{run}");
    assert!(line.contains("missing-ca.pem"), "says what is wrong\n{run}");
    server.finish();
}

#[test]
fn nagios_usage_error_line_names_the_target() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().expect_no_connection().start();
    let missing = fx.arg("missing-ca.pem");

    let run = get_cert(&server, &["--nagios", "--ca-file", &missing]);

    let prefix = format!("SMTPTLS UNKNOWN - {}: ", server.server_arg());
    assert!(nagios_line(&run).starts_with(&prefix), "{prefix:?}\n{run}");
    server.finish();
}

#[test]
fn nagios_option_errors_are_unknown_too() {
    for bad in [&["--warn-days", "soon"][..], &["--tls", "maybe"]] {
        let mut all = vec!["get-cert", "127.0.0.1:1", "--nagios"];
        all.extend_from_slice(bad);
        let run = smtptls(all);
        run.assert_code(3);
        assert!(nagios_line(&run).starts_with("SMTPTLS UNKNOWN - "), "{run}");
    }
}

#[test]
fn nagios_and_json_together_are_refused() {
    let run = smtptls(["get-cert", "127.0.0.1:1", "--nagios", "--json"]);

    // Refused like any other option clash under --nagios: UNKNOWN, one status line, no report.
    run.assert_code(3);
    assert!(nagios_line(&run).starts_with("SMTPTLS UNKNOWN - "), "{run}");
    assert_eq!(run.stdout.lines().count(), 1, "only the status line\n{run}");
    assert!(
        run.stderr.contains("--json") && run.stderr.contains("--nagios"),
        "{run}"
    );
}

#[test]
fn trust_system_reads_ssl_cert_file_and_mozilla_does_not() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();
    let target = server.server_arg();
    let no_dir = fx.path("no-certs");
    fs::create_dir(&no_dir).unwrap();
    let ca = fx.path("ca.pem");
    // rustls-native-certs reads only these when either is set: the real store stays out of it.
    let env: [(&str, &OsStr); 2] = [
        ("SSL_CERT_FILE", ca.as_os_str()),
        ("SSL_CERT_DIR", no_dir.as_os_str()),
    ];
    let cases: &[(&[&str], i32)] = &[
        (&["--trust", "system"], 0),
        (&["--trust", "both"], 0),
        (&["--trust", "mozilla"], 1),
        (&[], 1), // mozilla is the default
    ];
    for (trust, code) in cases {
        let mut all = vec![
            "get-cert",
            &target,
            "--timeout",
            "5",
            "--sni",
            "localhost",
            "--json",
            "-q",
        ];
        all.extend_from_slice(trust);
        let run = smtptls_with_env(all, &env);
        run.assert_code(*code);
        assert_eq!(
            run.json()["verification"]["chain_trusted"],
            *code == 0,
            "{run}"
        );
    }
    server.finish();
}
