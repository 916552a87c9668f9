//! Interoperability tests: `smtptls get-cert` against a real Postfix server.
//!
//! `.ci/run` runs these tests: it starts a throwaway Postfix on 127.0.0.1
//! with `.ci/postfix.sh start` (STARTTLS offered, with a self-signed
//! certificate for `mx.smtptls.test` generated on the spot), exports
//! `SMTPTLS_POSTFIX_PORT` and `SMTPTLS_POSTFIX_CERT`, then runs
//! `cargo test --test postfix -- --ignored --nocapture`.
//!
//! They are `#[ignore]`d so that a plain `cargo test` passes on a machine
//! without Postfix. To run them by hand (as root, on Debian or Ubuntu):
//!
//! ```text
//! eval "$(.ci/postfix.sh start)"
//! cargo test --test postfix -- --ignored --nocapture
//! .ci/postfix.sh stop
//! ```
//!
//! Only 127.0.0.1 is ever contacted.

use std::path::PathBuf;
use std::time::Duration;

use assert_cmd::Command;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The name in the certificate Postfix serves (CN and subjectAltName).
const SERVER_NAME: &str = "mx.smtptls.test";
/// What we say in EHLO.
const CLIENT_NAME: &str = "client.smtptls.test";

const HOW_TO_RUN: &str = "this test needs the throwaway Postfix of .ci/postfix.sh: \
     run `bash .ci/run`, or by hand (as root): \
     `eval \"$(.ci/postfix.sh start)\"`, then \
     `cargo test --test postfix -- --ignored --nocapture`, then `.ci/postfix.sh stop`";

/// The Postfix instance started by `.ci/postfix.sh`.
struct Postfix {
    port: String,
    cert_file: PathBuf,
    /// DER of the certificate Postfix serves.
    cert_der: Vec<u8>,
}

fn env_var(name: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(format!("{name} is not set: {HOW_TO_RUN}")),
    }
}

/// Reads the instance from the environment. (Helpers return errors rather
/// than panic: clippy's panic/unwrap lints are relaxed only inside tests.)
fn postfix() -> Result<Postfix, String> {
    let port = env_var("SMTPTLS_POSTFIX_PORT")?;
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "SMTPTLS_POSTFIX_PORT={port:?} is not a port number: {HOW_TO_RUN}"
        ));
    }
    let cert_file = PathBuf::from(env_var("SMTPTLS_POSTFIX_CERT")?);
    let cert = CertificateDer::from_pem_file(&cert_file).map_err(|err| {
        format!(
            "cannot read a PEM certificate from SMTPTLS_POSTFIX_CERT={}: {err}; {HOW_TO_RUN}",
            cert_file.display()
        )
    })?;
    Ok(Postfix {
        port,
        cert_file,
        cert_der: cert.as_ref().to_vec(),
    })
}

/// `smtptls get-cert 127.0.0.1 --port PORT --tls starttls --domain client.smtptls.test`
fn get_cert(postfix: &Postfix) -> Result<Command, String> {
    let mut cmd = Command::cargo_bin("smtptls").map_err(|err| err.to_string())?;
    cmd.args(["get-cert", "127.0.0.1", "--port", &postfix.port])
        .args(["--tls", "starttls", "--domain", CLIENT_NAME])
        // A hung probe must fail the test, not hang the CI run.
        .timeout(Duration::from_secs(60));
    Ok(cmd)
}

/// Uppercase, colon-separated SHA-256 of `der` ("AB:CD:...").
fn sha256_fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Verified against the certificate itself as CA file, with the server name
/// given by `--sni`: exit 0, and `-o` writes the leaf certificate as DER.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn starttls_verified_with_ca_file_saves_leaf_der() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leaf.der");

    get_cert(&postfix)
        .unwrap()
        .arg("--ca-file")
        .arg(&postfix.cert_file)
        .args(["--sni", SERVER_NAME, "-o"])
        .arg(&out)
        .assert()
        .code(0);

    let saved = std::fs::read(&out).unwrap();
    assert!(
        saved == postfix.cert_der,
        "{} is not the DER of the certificate Postfix serves ({} bytes saved, {} expected)",
        out.display(),
        saved.len(),
        postfix.cert_der.len()
    );
}

/// Without `--ca-file` the self-signed certificate cannot be verified:
/// exit 1 (obtained, not verified), and the file is still written.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn starttls_self_signed_unverified_exits_1_and_still_saves() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leaf.der");

    get_cert(&postfix)
        .unwrap()
        .args(["--sni", SERVER_NAME, "-o"])
        .arg(&out)
        .assert()
        .code(1);

    let saved = std::fs::read(&out).unwrap();
    assert!(
        saved == postfix.cert_der,
        "{} is not the DER of the certificate Postfix serves ({} bytes saved, {} expected)",
        out.display(),
        saved.len(),
        postfix.cert_der.len()
    );
}

/// `-o - --format pem` writes the certificate as PEM to stdout, and nothing else.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn starttls_pem_to_stdout() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));

    let output = get_cert(&postfix)
        .unwrap()
        .arg("--ca-file")
        .arg(&postfix.cert_file)
        .args(["--sni", SERVER_NAME, "-o", "-", "--format", "pem"])
        .assert()
        .code(0)
        .get_output()
        .clone();

    let stdout = String::from_utf8(output.stdout).unwrap();
    let trimmed = stdout.trim();
    assert!(
        trimmed.starts_with("-----BEGIN CERTIFICATE-----")
            && trimmed.ends_with("-----END CERTIFICATE-----"),
        "stdout is not just PEM certificates:\n{stdout}"
    );
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(stdout.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        certs.len(),
        1,
        "expected the one certificate Postfix serves"
    );
    assert!(
        certs[0].as_ref() == postfix.cert_der.as_slice(),
        "the PEM on stdout is not the certificate Postfix serves"
    );
}

/// `--json` prints one JSON document with the exit code, the negotiated TLS
/// version and the certificates with their SHA-256 fingerprints.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn starttls_json_report() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));

    let output = get_cert(&postfix)
        .unwrap()
        .arg("--ca-file")
        .arg(&postfix.cert_file)
        .args(["--sni", SERVER_NAME, "--json"])
        .assert()
        .code(0)
        .get_output()
        .clone();

    let stdout = String::from_utf8(output.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{stdout}"));

    assert_eq!(
        json.get("exit_code").and_then(Value::as_i64),
        Some(0),
        "exit_code in {json:#}"
    );
    let version = json.pointer("/tls/version").and_then(Value::as_str);
    assert!(
        version.is_some_and(|v| v.starts_with("TLSv1.")),
        "tls.version is {version:?}, expected \"TLSv1.x\", in {json:#}"
    );
    assert_eq!(
        json.pointer("/certificates/0/sha256_fingerprint")
            .and_then(Value::as_str),
        Some(sha256_fingerprint(&postfix.cert_der).as_str()),
        "certificates[0].sha256_fingerprint in {json:#}"
    );
}
