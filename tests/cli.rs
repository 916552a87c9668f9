//! End-to-end tests of `smtptls get-cert`'s command line and outputs: certificate files (DER,
//! PEM, chain, stdout), usage errors, the `--json` document, the transcript and `-q`, and the
//! exit code for an unreachable server. Each test runs the real binary against an in-process
//! fake SMTP server on loopback (see `tests/support/`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

use std::fs;
use std::net::TcpListener;

use support::{
    FakeSmtp, Fixture, args, assert_get_cert_schema, get_cert, pem_certificates, smtptls,
};

fn is_pem(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN CERTIFICATE-----")
}

#[test]
fn der_output_is_the_servers_leaf_byte_for_byte() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("leaf.cer");

    get_cert(&server, &args(&fx.trust_args(), &["-o", &out])).assert_code(0);

    assert_eq!(fs::read(&out).unwrap(), leaf.der());
    server.finish();
}

#[test]
fn pem_output_holds_the_leaf_only() {
    let fx = Fixture::new();
    let leaf = fx.pki.chain_leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("leaf.pem");

    get_cert(&server, &args(&fx.trust_args(), &["-o", &out])).assert_code(0);

    let text = fs::read_to_string(&out).unwrap();
    assert!(is_pem(text.as_bytes()), "{text}");
    assert_eq!(
        pem_certificates(&text),
        [leaf.der()],
        "without --chain only the leaf"
    );
    server.finish();
}

#[test]
fn chain_output_holds_every_certificate_in_the_order_sent() {
    let fx = Fixture::new();
    let leaf = fx.pki.chain_leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("chain.pem");

    get_cert(&server, &args(&fx.trust_args(), &["--chain", "-o", &out])).assert_code(0);

    let certs = pem_certificates(&fs::read_to_string(&out).unwrap());
    assert_eq!(certs.len(), 2);
    assert_eq!(certs, leaf.chain_der(), "leaf first, then the intermediate");
    server.finish();
}

#[test]
fn output_format_follows_the_extension_unless_format_is_given() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    // (file name, extra arguments, expect PEM)
    let cases: &[(&str, &[&str], bool)] = &[
        ("a.pem", &[], true),
        ("a.crt", &[], true),
        ("a.cer", &[], false),
        ("a.der", &[], false),
        ("noextension", &[], false),
        ("b.cer", &["--format", "pem"], true),
        ("b.pem", &["--format", "der"], false),
    ];
    for (name, extra, pem) in cases {
        let out = fx.arg(name);
        let mut more = vec!["-o", out.as_str()];
        more.extend_from_slice(extra);
        let run = get_cert(&server, &args(&fx.trust_args(), &more));
        run.assert_code(0);
        let bytes = fs::read(&out).unwrap();
        if *pem {
            assert!(is_pem(&bytes), "{name} {extra:?} should be PEM\n{run}");
            assert_eq!(
                pem_certificates(&String::from_utf8(bytes).unwrap()),
                [leaf.der()]
            );
        } else {
            assert_eq!(bytes, leaf.der(), "{name} {extra:?} should be DER\n{run}");
        }
    }
    assert_eq!(server.finish().connections(), cases.len());
}

#[test]
fn dash_output_writes_pem_to_stdout_and_nothing_else() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let run = get_cert(&server, &args(&fx.trust_args(), &["-o", "-"]));
    run.assert_code(0);

    let stdout = run.stdout.trim();
    assert!(
        stdout.starts_with("-----BEGIN CERTIFICATE-----"),
        "stdout holds only PEM\n{run}"
    );
    assert!(
        stdout.ends_with("-----END CERTIFICATE-----"),
        "stdout holds only PEM\n{run}"
    );
    assert_eq!(pem_certificates(stdout), [leaf.der()]);
    assert!(
        !run.transcript_lines().is_empty(),
        "the transcript goes to stderr\n{run}"
    );
    assert!(
        run.stderr.contains(&leaf.sha256_fingerprint()),
        "with -o - the text report goes to stderr\n{run}"
    );
    server.finish();
}

#[test]
fn an_output_file_that_cannot_be_written_exits_2() {
    let fx = Fixture::new();
    // Whether the file is checked before or after dialing is the binary's choice.
    let server = FakeSmtp::builder()
        .leaf(&fx.pki.leaf())
        .allow_unused()
        .start();
    let out = fx.arg("no-such-dir/leaf.pem");

    let run = get_cert(&server, &args(&fx.trust_args(), &["-o", &out]));

    run.assert_code(2);
    assert!(
        run.output().contains("no-such-dir"),
        "the message names the file\n{run}"
    );
    server.finish();
}

#[test]
fn dash_output_takes_the_chain_and_der_too() {
    let fx = Fixture::new();
    let leaf = fx.pki.chain_leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();

    let chain = get_cert(
        &server,
        &args(&fx.trust_args(), &["-q", "--chain", "-o", "-"]),
    );
    let der = get_cert(
        &server,
        &args(&fx.trust_args(), &["-q", "--format", "der", "-o", "-"]),
    );

    chain.assert_code(0);
    assert_eq!(pem_certificates(&chain.stdout), leaf.chain_der(), "{chain}");
    der.assert_code(0);
    assert_eq!(
        der.stdout_bytes,
        leaf.der(),
        "raw DER into a pipe (not a terminal)\n{der}"
    );
    assert_eq!(server.finish().connections(), 2);
}

#[test]
fn chain_with_der_format_is_a_usage_error_that_names_pem() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().expect_no_connection().start();
    let out = fx.arg("chain.der");

    let run = get_cert(&server, &["--chain", "--format", "der", "-o", &out]);

    run.assert_code(2);
    assert!(
        run.output().contains("PEM"),
        "the message should say --chain needs PEM\n{run}"
    );
    assert!(!fx.path("chain.der").exists());
    server.finish();
}

#[test]
fn usage_errors_exit_2_without_dialing() {
    let server = FakeSmtp::builder().expect_no_connection().start();
    let target = server.server_arg();
    let t = target.as_str();
    let other_port = (server.port() ^ 1).to_string();
    let fx = Fixture::new();
    let missing_ca = fx.arg("no-such-ca.pem");
    let cases: &[&[&str]] = &[
        &["get-cert"],
        &["get-cert", t, "--port", &other_port],
        &["get-cert", t, "--json", "-o", "-"],
        &["get-cert", t, "--timeout", "0"],
        &["get-cert", t, "--ca-file", &missing_ca],
        &["get-cert", t, "--tls", "smtps"],
        &["get-cert", t, "--tls-version", "1.1"],
        &["get-cert", t, "--format", "txt", "-o", "-"],
        &["get-cert", t, "--port", "not-a-port"],
        &["get-cert", t, "--timeout", "soon"],
        &["get-cert", t, "--sni", "localhost", "--no-sni"],
        &["get-cert", t, "-4", "-6"],
        &["get-cert", t, "--no-such-option"],
    ];
    for case in cases {
        let run = smtptls(*case);
        run.assert_code(2);
        // Clap's errors go to stderr; errors found later are in the report (stdout).
        assert!(
            run.output().to_lowercase().contains("error"),
            "a usage error explains itself\n{run}"
        );
    }
    server.finish();
}

#[test]
fn json_document_has_every_field_of_the_contract() {
    let fx = Fixture::new();
    let leaf = fx.pki.chain_leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("chain.pem");

    let run = get_cert(
        &server,
        &args(&fx.trust_args(), &["--json", "--chain", "-o", &out]),
    );
    run.assert_code(0);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);

    let target = &doc["target"];
    assert_eq!(target["host"], "127.0.0.1");
    assert_eq!(target["port"], server.port());
    assert_eq!(target["address"], server.server_arg());
    assert_eq!(target["tls_mode"], "starttls");
    assert_eq!(target["sni"], "localhost");

    let stages: Vec<(&str, bool)> = doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["tls"].as_bool().unwrap()))
        .collect();
    // Stage names as the README documents them (there is no separate handshake stage: the
    // handshake is in `tls`, `certificates` and the transcript).
    #[rustfmt::skip]
    let expected = [
        ("banner", false), ("ehlo", false), ("starttls", false),
        ("ehlo-tls", true), ("quit-tls", true),
    ];
    assert_eq!(stages, expected, "{run}");
    let banner = &doc["stages"][0];
    assert_eq!(banner["code"], 220);
    assert_eq!(banner["sent"], serde_json::Value::Null);
    assert_eq!(
        banner["lines"],
        serde_json::json!(["fake.smtptls.test ESMTP fake server ready"])
    );
    assert_eq!(doc["stages"][2]["sent"], "STARTTLS");
    assert_eq!(doc["stages"][2]["code"], 220);

    let before: Vec<&str> = doc["ehlo_before_tls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    let after: Vec<&str> = doc["ehlo_after_tls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(before.iter().any(|l| l.contains("STARTTLS")), "{before:?}");
    assert!(
        before.iter().any(|l| l.contains("SIZE 10240000")),
        "{before:?}"
    );
    assert!(!after.iter().any(|l| l.contains("STARTTLS")), "{after:?}");
    assert!(after.iter().any(|l| l.contains("8BITMIME")), "{after:?}");

    assert_eq!(doc["tls"]["version"], "TLSv1.3");
    assert!(!doc["tls"]["cipher_suite"].as_str().unwrap().is_empty());

    let certs = doc["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "both certificates the server sent");
    let (leaf_json, intermediate) = (&certs[0], &certs[1]);
    assert_eq!(leaf_json["sha256_fingerprint"], leaf.sha256_fingerprint());
    assert!(leaf_json["subject"].as_str().unwrap().contains("localhost"));
    assert!(
        leaf_json["issuer"]
            .as_str()
            .unwrap()
            .contains("smtptls test intermediate CA")
    );
    let sans = leaf_json["subject_alt_names"].as_array().unwrap();
    for name in ["localhost", "mx.smtptls.test", "127.0.0.1"] {
        assert!(
            sans.iter().any(|s| s.as_str().unwrap().contains(name)),
            "{name} in {sans:?}"
        );
    }
    assert!(leaf_json["not_after"].as_str().unwrap().contains("2099"));
    assert!(leaf_json["not_before"].as_str().unwrap().contains("2020"));
    assert!(leaf_json["days_left"].as_i64().unwrap() > 365 * 50);
    assert!(!leaf_json["serial"].as_str().unwrap().is_empty());
    assert_eq!(leaf_json["public_key_bits"], 256);
    assert!(!leaf_json["public_key_type"].as_str().unwrap().is_empty());
    assert!(
        leaf_json["signature_algorithm"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ecdsa"),
        "{leaf_json}"
    );
    assert_eq!(leaf_json["self_signed"], false);
    assert_eq!(leaf_json["is_ca"], false);
    assert_eq!(intermediate["is_ca"], true);
    assert_eq!(intermediate["self_signed"], false);
    assert!(
        intermediate["subject"]
            .as_str()
            .unwrap()
            .contains("smtptls test intermediate CA")
    );

    let v = &doc["verification"];
    assert_eq!(v["verified"], true);
    assert_eq!(v["chain_trusted"], true);
    assert_eq!(v["chain_error"], serde_json::Value::Null);
    assert_eq!(v["name_checked"], "localhost");
    assert_eq!(v["name_matches"], true);
    assert_eq!(v["name_error"], serde_json::Value::Null);

    assert_eq!(doc["output"]["path"], out);
    assert_eq!(doc["output"]["format"], "pem");
    assert_eq!(doc["output"]["certificates_written"], 2);

    let transcript = doc["transcript"].as_array().unwrap();
    let has = |direction: &str, tls: bool, prefix: &str| {
        transcript.iter().any(|l| {
            l["direction"] == direction
                && l["tls"] == tls
                && l["text"].as_str().unwrap().starts_with(prefix)
        })
    };
    assert!(
        has("received", false, "220 fake.smtptls.test"),
        "{transcript:?}"
    );
    assert!(has("sent", false, "EHLO "), "{transcript:?}");
    assert!(has("sent", false, "STARTTLS"), "{transcript:?}");
    assert!(has("sent", true, "EHLO "), "{transcript:?}");
    assert!(has("received", true, "250"), "{transcript:?}");
    assert!(has("sent", true, "QUIT"), "{transcript:?}");

    assert_eq!(doc["error"], serde_json::Value::Null);
    assert_eq!(doc["exit_code"], 0);
    assert!(
        run.stdout.trim_end().ends_with('}'),
        "nothing after the JSON object\n{run}"
    );
    server.finish();
}

#[test]
fn transcript_goes_to_stderr_and_quiet_removes_it() {
    let fx = Fixture::new();
    let server = FakeSmtp::builder().leaf(&fx.pki.leaf()).start();

    let loud = get_cert(
        &server,
        &fx.trust_args()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    loud.assert_code(0);
    let lines = loud.transcript_lines();
    for expected in [
        "<- 220 fake.smtptls.test",
        "-> EHLO ",
        "-> STARTTLS",
        "~> EHLO ",
        "<~ 250",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "{expected:?} missing\n{loud}"
        );
    }
    assert!(
        !loud.stdout.lines().any(support::cli::is_transcript_line),
        "not on stdout\n{loud}"
    );

    let quiet = get_cert(&server, &args(&fx.trust_args(), &["-q"]));
    quiet.assert_code(0);
    assert_eq!(quiet.transcript_lines(), Vec::<&str>::new(), "{quiet}");
    assert!(
        !quiet.stdout.lines().any(support::cli::is_transcript_line),
        "{quiet}"
    );
    assert_eq!(server.finish().connections(), 2);
}

#[test]
fn text_report_goes_to_stdout() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let server = FakeSmtp::builder().leaf(&leaf).start();
    let out = fx.arg("leaf.pem");

    let run = get_cert(&server, &args(&fx.trust_args(), &["-q", "-o", &out]));
    run.assert_code(0);

    assert!(
        serde_json::from_str::<serde_json::Value>(&run.stdout).is_err(),
        "not JSON\n{run}"
    );
    assert!(
        run.stdout.contains("localhost"),
        "the report names the certificate\n{run}"
    );
    assert!(
        run.stdout
            .to_uppercase()
            .contains(&leaf.sha256_fingerprint()[..23]),
        "the report shows the SHA-256 fingerprint\n{run}"
    );
    server.finish();
}

#[test]
fn connection_refused_exits_3() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    let run = smtptls(["get-cert", target.as_str(), "--timeout", "5"]);
    run.assert_code(3);
    assert!(run.elapsed.as_secs() < 5, "refused is immediate\n{run}");

    let run = smtptls(["get-cert", target.as_str(), "--timeout", "5", "--json"]);
    run.assert_code(3);
    let doc = run.json();
    assert_get_cert_schema(&doc, &run);
    assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
    assert_eq!(doc["tls"], serde_json::Value::Null);
    assert_eq!(doc["certificates"], serde_json::json!([]));
}

#[test]
fn targets_file_probes_each_target_writes_a_file_each_and_exits_with_the_worst() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf();
    let first = FakeSmtp::builder().leaf(&leaf).start();
    let second = FakeSmtp::builder().leaf(&leaf).start();
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let list = fx.path("targets.txt");
    fs::write(
        &list,
        format!(
            "# relays\n{}\n\n{} # second\n{refused}\n",
            first.server_arg(),
            second.server_arg()
        ),
    )
    .unwrap();
    let dir = fx.path("certs");
    let (list, dir_arg) = (fx.arg("targets.txt"), dir.to_string_lossy().into_owned());
    let trust = fx.trust_args();
    let mut all = vec![
        "get-cert",
        "--targets",
        &list,
        "--timeout",
        "5",
        "-o",
        &dir_arg,
    ];
    all.extend(trust.iter().map(String::as_str));

    let run = smtptls(all.clone());
    run.assert_code(3);
    for server in [&first, &second] {
        let file = dir.join(format!("127.0.0.1_{}.pem", server.port()));
        let saved = pem_certificates(&fs::read_to_string(&file).unwrap());
        assert_eq!(
            saved,
            vec![leaf.der().to_vec()],
            "{}\n{run}",
            file.display()
        );
    }
    assert!(
        run.stdout.contains("3 target(s); worst exit 3"),
        "summary table\n{run}"
    );
    assert!(
        run.stderr.is_empty(),
        "no transcript, no progress bar on a pipe\n{run}"
    );

    all.push("--json");
    let run = smtptls(all);
    run.assert_code(3);
    let codes: Vec<i64> = run
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["exit_code"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [0, 0, 3],
        "one JSON object a line, each target once\n{run}"
    );
    first.finish();
    second.finish();
}
