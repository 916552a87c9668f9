//! Interoperability tests: `smtptls get-cert` and `smtptls test-smtp` against a
//! real Postfix server with Dovecot SASL.
//!
//! `.ci/run` runs these tests: it starts a throwaway Postfix on 127.0.0.1
//! with `.ci/postfix.sh start` (STARTTLS offered, with a self-signed
//! certificate for `mx.smtptls.test` generated on the spot; SMTP AUTH PLAIN
//! and LOGIN inside TLS only, backed by a private auth-only Dovecot with one
//! user whose password is generated per run; `probe@` and `postmaster@`
//! `smtptls.test` the only recipients accepted, relaying refused), exports
//! `SMTPTLS_POSTFIX_PORT`, `SMTPTLS_POSTFIX_SMTPS_PORT`, `SMTPTLS_POSTFIX_CERT`,
//! `SMTPTLS_POSTFIX_DIR`, `SMTPTLS_POSTFIX_USER` and `SMTPTLS_POSTFIX_PASSWORD`,
//! then runs `cargo test --test postfix -- --ignored --nocapture`.
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
//! Only 127.0.0.1 is ever contacted. The test-smtp tests also check that no
//! message is ever queued (smtptls never sends DATA) and that the password
//! never shows, in clear or base64, on stdout or stderr.
//!
//! The `proxy_*` tests go through a real SOCKS5 proxy: `.ci/run` also starts
//! a throwaway Dante on 127.0.0.1 with `.ci/socks.sh start` and exports
//! `SMTPTLS_SOCKS_PORT` and `SMTPTLS_SOCKS_LOG` (its log, where each test
//! finds the connection it made through the proxy). By hand, add
//! `eval "$(.ci/socks.sh start)"` and `.ci/socks.sh stop` around the run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
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

// ---------------------------------------------------------------------------
// test-smtp: SMTP AUTH through Dovecot SASL, and the envelope.

/// The test domain's mailbox that is not the SASL user (RFC 5321 requires it).
const POSTMASTER: &str = "postmaster@smtptls.test";
/// An address of the test domain that is not in Postfix's mailbox map: 550.
const UNKNOWN_RCPT: &str = "nobody@smtptls.test";
/// An address in a domain this Postfix is not responsible for: relaying it is
/// refused (554 5.7.1), authenticated or not.
const EXTERNAL_RCPT: &str = "nobody@elsewhere.example";
/// The environment variable that carries the password (`--password-env`).
const PW_VAR: &str = "SMTPTLS_TEST_PW";
/// Postfix's queue directories where a message would be: none may hold a file.
const MESSAGE_QUEUES: [&str; 6] = [
    "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
];

/// The SASL side of the instance started by `.ci/postfix.sh`.
struct Sasl {
    postfix: Postfix,
    /// The implicit-TLS port (like 465); AUTH is offered there too.
    smtps_port: String,
    /// The instance directory (queue, maillog).
    dir: PathBuf,
    /// `probe@smtptls.test`, also a valid recipient.
    user: String,
    /// Generated for this run by `.ci/postfix.sh`.
    password: String,
}

fn sasl() -> Result<Sasl, String> {
    let postfix = postfix()?;
    let smtps_port = env_var("SMTPTLS_POSTFIX_SMTPS_PORT")?;
    if smtps_port.parse::<u16>().is_err() {
        return Err(format!(
            "SMTPTLS_POSTFIX_SMTPS_PORT={smtps_port:?} is not a port number: {HOW_TO_RUN}"
        ));
    }
    let dir = PathBuf::from(env_var("SMTPTLS_POSTFIX_DIR")?);
    if !dir.join("queue").is_dir() {
        return Err(format!(
            "SMTPTLS_POSTFIX_DIR={} has no queue directory: {HOW_TO_RUN}",
            dir.display()
        ));
    }
    Ok(Sasl {
        postfix,
        smtps_port,
        dir,
        user: env_var("SMTPTLS_POSTFIX_USER")?,
        password: env_var("SMTPTLS_POSTFIX_PASSWORD")?,
    })
}

/// A wrong password for the test user, unrelated to the right one.
fn wrong_password(sasl: &Sasl) -> String {
    format!("W{}", sasl.password.chars().rev().collect::<String>())
}

/// `smtptls test-smtp 127.0.0.1 --port PORT --tls starttls --domain client.smtptls.test
/// --ca-file CERT --sni mx.smtptls.test --json`: the certificate verifies, so
/// smtptls is willing to send credentials.
fn test_smtp(sasl: &Sasl) -> Result<Command, String> {
    test_smtp_on(sasl, &sasl.postfix.port, "starttls")
}

/// As [`test_smtp`], on PORT with `--tls MODE`.
fn test_smtp_on(sasl: &Sasl, port: &str, mode: &str) -> Result<Command, String> {
    let mut cmd = Command::cargo_bin("smtptls").map_err(|err| err.to_string())?;
    cmd.args(["test-smtp", "127.0.0.1", "--port", port])
        .args(["--tls", mode, "--domain", CLIENT_NAME])
        .arg("--ca-file")
        .arg(&sasl.postfix.cert_file)
        .args(["--sni", SERVER_NAME, "--json"])
        .timeout(Duration::from_secs(60));
    Ok(cmd)
}

/// `--user USER --password-env SMTPTLS_TEST_PW`, with PASSWORD in that variable.
fn login<'a>(cmd: &'a mut Command, user: &str, password: &str) -> &'a mut Command {
    cmd.env(PW_VAR, password)
        .args(["--user", user, "--password-env", PW_VAR])
}

/// What one probe printed.
struct Probe {
    /// The exit status.
    code: i32,
    /// The JSON report (stdout of the `-q` run).
    json: Value,
    /// stderr of the run without `-q`: the transcript.
    transcript: String,
}

impl Probe {
    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.json.pointer(pointer).and_then(Value::as_str)
    }

    fn int_at(&self, pointer: &str) -> Option<i64> {
        self.json.pointer(pointer).and_then(Value::as_i64)
    }

    /// The commands smtptls sent, from the JSON transcript.
    fn sent(&self) -> Vec<&str> {
        self.json
            .get("transcript")
            .and_then(Value::as_array)
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.get("direction").and_then(Value::as_str) == Some("sent"))
                    .filter_map(|e| e.get("text").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The forms a password could leak in: itself, base64 as LOGIN sends it, and
/// PLAIN's base64 of "\0user\0password" (and of "user\0user\0password", with
/// the authorization identity). Base64 without its `=` padding, so that any
/// padding matches too.
fn secret_forms(user: &str, password: &str) -> Vec<(String, String)> {
    let b64 = |bytes: &[u8]| BASE64.encode(bytes).trim_end_matches('=').to_owned();
    vec![
        ("the password".to_owned(), password.to_owned()),
        (
            "the base64 of the password".to_owned(),
            b64(password.as_bytes()),
        ),
        (
            "the base64 of \"\\0user\\0password\" (AUTH PLAIN)".to_owned(),
            b64(format!("\0{user}\0{password}").as_bytes()),
        ),
        (
            "the base64 of \"user\\0user\\0password\" (AUTH PLAIN)".to_owned(),
            b64(format!("{user}\0{user}\0{password}").as_bytes()),
        ),
    ]
}

/// Fails if `text` contains any of `forms` (the message names the form, not
/// the secret).
fn check_no_secret(stream: &str, text: &str, forms: &[(String, String)]) -> Result<(), String> {
    match forms.iter().find(|(_, form)| text.contains(form.as_str())) {
        Some((name, _)) => Err(format!("{stream} shows {name}")),
        None => Ok(()),
    }
}

/// Runs the command `make` builds twice: with `-q` (the JSON report on
/// stdout) and without (the transcript on stderr as well). Both must end with
/// the same exit status, and none of the four streams may show any form of
/// the right password or of `other_password` (a wrong one that was used).
fn probe<F>(sasl: &Sasl, other_password: Option<&str>, make: F) -> Result<Probe, String>
where
    F: Fn() -> Result<Command, String>,
{
    let mut forms = secret_forms(&sasl.user, &sasl.password);
    if let Some(other) = other_password {
        forms.extend(secret_forms(&sasl.user, other));
    }
    let quiet = make()?
        .arg("-q")
        .output()
        .map_err(|err| format!("running smtptls -q: {err}"))?;
    let verbose = make()?
        .output()
        .map_err(|err| format!("running smtptls: {err}"))?;

    let quiet_stdout = String::from_utf8_lossy(&quiet.stdout);
    let quiet_stderr = String::from_utf8_lossy(&quiet.stderr);
    let verbose_stdout = String::from_utf8_lossy(&verbose.stdout);
    let verbose_stderr = String::from_utf8_lossy(&verbose.stderr);
    check_no_secret("stdout (with -q)", &quiet_stdout, &forms)?;
    check_no_secret("stderr (with -q)", &quiet_stderr, &forms)?;
    check_no_secret("stdout (without -q)", &verbose_stdout, &forms)?;
    check_no_secret(
        "stderr, the transcript (without -q)",
        &verbose_stderr,
        &forms,
    )?;

    let code = quiet
        .status
        .code()
        .ok_or_else(|| format!("smtptls -q was killed: {}", quiet.status))?;
    if verbose.status.code() != Some(code) {
        return Err(format!(
            "smtptls exits {code} with -q but {} without; stderr:\n{verbose_stderr}",
            verbose.status
        ));
    }
    if !verbose_stderr.contains("~> ") {
        return Err(format!(
            "stderr without -q has no transcript inside TLS:\n{verbose_stderr}"
        ));
    }
    let json: Value = serde_json::from_str(&quiet_stdout).map_err(|err| {
        format!("stdout is not JSON ({err}):\n{quiet_stdout}\nstderr:\n{quiet_stderr}")
    })?;
    if json.get("exit_code").and_then(Value::as_i64) != Some(i64::from(code)) {
        return Err(format!("exit_code in the JSON is not {code}: {json:#}"));
    }
    let probe = Probe {
        code,
        json,
        transcript: verbose_stderr.into_owned(),
    };
    // Never a message: no DATA (nor BDAT, CHUNKING is offered) is ever sent.
    if let Some(cmd) = probe
        .sent()
        .into_iter()
        .find(|cmd| cmd.starts_with("DATA") || cmd.starts_with("BDAT"))
    {
        return Err(format!("smtptls sent {cmd:?}: {:#}", probe.json));
    }
    Ok(probe)
}

/// Every file under `dir`, recursively (the deferred queue is hashed).
fn files_under(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Postfix creates some queue directories only when it needs them.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(format!(
                "cannot list {} ({err}); the queue check needs root, as .ci/run has",
                dir.display()
            ));
        }
    };
    for entry in entries {
        let entry = entry.map_err(|err| format!("listing {}: {err}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|err| format!("{}: {err}", path.display()))?;
        if kind.is_dir() {
            files_under(&path, found)?;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

/// No message was queued: the message queues are empty (waiting a little:
/// Postfix creates a queue file in incoming/ at the first accepted RCPT and
/// removes it after RSET, maybe after the client is gone, and other tests
/// run at the same time), and the queue manager never logged a message.
fn check_nothing_queued(sasl: &Sasl) -> Result<(), String> {
    let queue = sasl.dir.join("queue");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut files = Vec::new();
        for name in MESSAGE_QUEUES {
            files_under(&queue.join(name), &mut files)?;
        }
        if files.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "a message was queued: still in Postfix's queue after 30 s: {files:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let maillog = sasl.dir.join("maillog");
    let log = std::fs::read_to_string(&maillog)
        .map_err(|err| format!("cannot read {}: {err}", maillog.display()))?;
    match log
        .lines()
        .find(|line| line.contains("(queue active)") || line.contains(" status="))
    {
        Some(line) => Err(format!("a message was queued, Postfix's log says: {line}")),
        None => Ok(()),
    }
}

/// The EHLO line that announces AUTH, if any.
fn auth_line<'a>(probe: &'a Probe, field: &str) -> Option<&'a str> {
    probe
        .json
        .get(field)?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|line| {
            line.eq_ignore_ascii_case("AUTH") || line.to_ascii_uppercase().starts_with("AUTH ")
        })
}

/// `what` in the report is `actual`, expected `expected`.
fn expect_eq<T>(what: &str, actual: T, expected: T, json: &Value) -> Result<(), String>
where
    T: PartialEq + std::fmt::Debug + Copy,
{
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what} is {actual:?}, expected {expected:?}; report: {json:#}"
        ))
    }
}

/// `--auth MECHANISM` with the right password, or with `wrong` if given.
fn auth_probe(sasl: &Sasl, mechanism: &str, wrong: Option<&str>) -> Result<Probe, String> {
    let password = wrong.unwrap_or(&sasl.password);
    probe(sasl, wrong, || {
        let mut cmd = test_smtp(sasl)?;
        login(&mut cmd, &sasl.user, password).args(["--auth", mechanism]);
        Ok(cmd)
    })
}

/// Good credentials were accepted with `mechanism`: exit 0, 235.
fn check_auth_accepted(sasl: &Sasl, probe: &Probe, mechanism: &str) -> Result<(), String> {
    let json = &probe.json;
    expect_eq("the exit status", probe.code, 0, json)?;
    expect_eq(
        "auth.result",
        probe.str_at("/auth/result"),
        Some("accepted"),
        json,
    )?;
    expect_eq("auth.code", probe.int_at("/auth/code"), Some(235), json)?;
    expect_eq(
        "auth.mechanism",
        probe.str_at("/auth/mechanism"),
        Some(mechanism),
        json,
    )?;
    expect_eq(
        "auth.user",
        probe.str_at("/auth/user"),
        Some(sasl.user.as_str()),
        json,
    )?;
    if !probe.transcript.contains(&format!("~> AUTH {mechanism}")) {
        return Err(format!(
            "no `~> AUTH {mechanism}` in the transcript:\n{}",
            probe.transcript
        ));
    }
    Ok(())
}

/// A wrong password was refused: exit 6, 535.
fn check_auth_rejected(probe: &Probe, mechanism: &str) -> Result<(), String> {
    let json = &probe.json;
    expect_eq("the exit status", probe.code, 6, json)?;
    expect_eq(
        "auth.result",
        probe.str_at("/auth/result"),
        Some("rejected"),
        json,
    )?;
    expect_eq("auth.code", probe.int_at("/auth/code"), Some(535), json)?;
    expect_eq(
        "auth.mechanism",
        probe.str_at("/auth/mechanism"),
        Some(mechanism),
        json,
    )
}

/// Postfix's `smtpd_tls_auth_only`: AUTH is announced inside TLS only.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_offered_only_after_starttls() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || test_smtp(&sasl)).unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 0, "exit status; report: {json:#}");
    let before = json.get("ehlo_before_tls").and_then(Value::as_array);
    assert!(
        before.is_some_and(|lines| lines.iter().any(|l| l.as_str() == Some("STARTTLS"))),
        "ehlo_before_tls should offer STARTTLS: {json:#}"
    );
    assert_eq!(
        auth_line(&probe, "ehlo_before_tls"),
        None,
        "AUTH offered in plaintext: {json:#}"
    );
    let after = auth_line(&probe, "ehlo_after_tls")
        .unwrap_or_else(|| panic!("no AUTH in ehlo_after_tls: {json:#}"));
    let mechanisms: Vec<String> = after
        .split_whitespace()
        .skip(1)
        .map(str::to_ascii_uppercase)
        .collect();
    assert!(
        mechanisms.iter().any(|m| m == "PLAIN") && mechanisms.iter().any(|m| m == "LOGIN"),
        "ehlo_after_tls offers {after:?}, expected PLAIN and LOGIN: {json:#}"
    );
}

/// Good credentials with AUTH PLAIN: exit 0, 235.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_plain_accepted() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = auth_probe(&sasl, "plain", None).unwrap_or_else(|msg| panic!("{msg}"));
    check_auth_accepted(&sasl, &probe, "PLAIN").unwrap_or_else(|msg| panic!("{msg}"));
}

/// Good credentials with AUTH LOGIN: exit 0, 235.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_login_accepted() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = auth_probe(&sasl, "login", None).unwrap_or_else(|msg| panic!("{msg}"));
    check_auth_accepted(&sasl, &probe, "LOGIN").unwrap_or_else(|msg| panic!("{msg}"));
}

/// Good credentials with `--auth auto`: PLAIN is preferred to LOGIN.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_auto_picks_plain() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = auth_probe(&sasl, "auto", None).unwrap_or_else(|msg| panic!("{msg}"));
    check_auth_accepted(&sasl, &probe, "PLAIN").unwrap_or_else(|msg| panic!("{msg}"));
}

/// A wrong password with AUTH PLAIN: exit 6, 535.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_plain_bad_password_rejected() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let wrong = wrong_password(&sasl);
    let probe = auth_probe(&sasl, "plain", Some(&wrong)).unwrap_or_else(|msg| panic!("{msg}"));
    check_auth_rejected(&probe, "PLAIN").unwrap_or_else(|msg| panic!("{msg}"));
}

/// A wrong password with AUTH LOGIN: exit 6, 535.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_login_bad_password_rejected() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let wrong = wrong_password(&sasl);
    let probe = auth_probe(&sasl, "login", Some(&wrong)).unwrap_or_else(|msg| panic!("{msg}"));
    check_auth_rejected(&probe, "LOGIN").unwrap_or_else(|msg| panic!("{msg}"));
}

/// AUTH over implicit TLS (the smtps port, like 465) works too.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_implicit_tls_auth_accepted() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp_on(&sasl, &sasl.smtps_port, "implicit")?;
        login(&mut cmd, &sasl.user, &sasl.password);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 0, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/target/tls_mode"),
        Some("implicit"),
        "target.tls_mode in {json:#}"
    );
    assert_eq!(
        probe.str_at("/auth/result"),
        Some("accepted"),
        "auth.result in {json:#}"
    );
    assert_eq!(
        probe.int_at("/auth/code"),
        Some(235),
        "auth.code in {json:#}"
    );
}

/// Without `--ca-file` the certificate does not verify, so the credentials
/// are not sent: auth "not-attempted", exit 1, no AUTH command at all.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_unverified_certificate_credentials_not_sent() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = Command::cargo_bin("smtptls").map_err(|err| err.to_string())?;
        cmd.args(["test-smtp", "127.0.0.1", "--port", &sasl.postfix.port])
            .args([
                "--tls",
                "starttls",
                "--domain",
                CLIENT_NAME,
                "--sni",
                SERVER_NAME,
                "--json",
            ])
            .timeout(Duration::from_secs(60));
        login(&mut cmd, &sasl.user, &sasl.password);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 1, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/auth/result"),
        Some("not-attempted"),
        "auth.result in {json:#}"
    );
    assert!(
        !probe.sent().iter().any(|cmd| cmd.starts_with("AUTH")),
        "AUTH was sent to an unverified server: {json:#}"
    );
}

/// Authenticated, MAIL FROM and RCPT TO the test user: all accepted, exit 0,
/// and no message queued.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_envelope_accepted_nothing_queued() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp(&sasl)?;
        login(&mut cmd, &sasl.user, &sasl.password)
            .args(["--from", &sasl.user, "--to", &sasl.user, "--to", POSTMASTER]);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 0, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/auth/result"),
        Some("accepted"),
        "auth.result in {json:#}"
    );
    assert_eq!(
        probe.str_at("/envelope/mail_from/result"),
        Some("accepted"),
        "envelope.mail_from.result in {json:#}"
    );
    for (i, address) in [sasl.user.as_str(), POSTMASTER].into_iter().enumerate() {
        assert_eq!(
            probe.str_at(&format!("/envelope/rcpt_to/{i}/address")),
            Some(address),
            "envelope.rcpt_to[{i}].address in {json:#}"
        );
        assert_eq!(
            probe.str_at(&format!("/envelope/rcpt_to/{i}/result")),
            Some("accepted"),
            "envelope.rcpt_to[{i}].result in {json:#}"
        );
        assert_eq!(
            probe.int_at(&format!("/envelope/rcpt_to/{i}/code")),
            Some(250),
            "envelope.rcpt_to[{i}].code in {json:#}"
        );
    }
    let sent = probe.sent();
    assert!(
        sent.contains(&"RSET"),
        "the envelope should end with RSET; sent: {sent:?}"
    );
    check_nothing_queued(&sasl).unwrap_or_else(|msg| panic!("{msg}"));
}

/// Authenticated, a local recipient and one in another domain: relaying is
/// refused even to an authenticated client (exit 7), the local one is still
/// accepted, and no message is queued.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_relay_denied_exits_7_nothing_queued() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp(&sasl)?;
        login(&mut cmd, &sasl.user, &sasl.password).args([
            "--from",
            &sasl.user,
            "--to",
            &sasl.user,
            "--to",
            EXTERNAL_RCPT,
        ]);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 7, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/auth/result"),
        Some("accepted"),
        "auth.result in {json:#}"
    );
    assert_eq!(
        probe.str_at("/envelope/rcpt_to/0/result"),
        Some("accepted"),
        "envelope.rcpt_to[0] ({}) in {json:#}",
        sasl.user
    );
    assert_eq!(
        probe.str_at("/envelope/rcpt_to/1/address"),
        Some(EXTERNAL_RCPT),
        "envelope.rcpt_to[1].address in {json:#}"
    );
    assert_eq!(
        probe.str_at("/envelope/rcpt_to/1/result"),
        Some("rejected"),
        "envelope.rcpt_to[1] ({EXTERNAL_RCPT}) in {json:#}"
    );
    let code = probe.int_at("/envelope/rcpt_to/1/code");
    assert!(
        matches!(code, Some(550 | 554)),
        "relaying to {EXTERNAL_RCPT} refused with {code:?}, expected 554 or 550: {json:#}"
    );
    let lines = json
        .pointer("/envelope/rcpt_to/1/lines")
        .map(Value::to_string);
    assert!(
        lines
            .as_deref()
            .is_some_and(|l| l.contains("Relay access denied")),
        "envelope.rcpt_to[1].lines should say \"Relay access denied\": {json:#}"
    );
    check_nothing_queued(&sasl).unwrap_or_else(|msg| panic!("{msg}"));
}

/// An address of the test domain that is not a mailbox: 550 at RCPT, exit 7.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_auth_unknown_recipient_rejected() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp(&sasl)?;
        login(&mut cmd, &sasl.user, &sasl.password).args([
            "--from",
            &sasl.user,
            "--to",
            UNKNOWN_RCPT,
        ]);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 7, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/envelope/rcpt_to/0/result"),
        Some("rejected"),
        "envelope.rcpt_to[0] ({UNKNOWN_RCPT}) in {json:#}"
    );
    assert_eq!(
        probe.int_at("/envelope/rcpt_to/0/code"),
        Some(550),
        "envelope.rcpt_to[0].code in {json:#}"
    );
    check_nothing_queued(&sasl).unwrap_or_else(|msg| panic!("{msg}"));
}

/// Not authenticated: MAIL FROM is accepted, RCPT TO another domain is
/// refused as relaying (exit 7), and no AUTH is sent.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn test_smtp_without_auth_relay_denied_exits_7() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp(&sasl)?;
        cmd.args(["--from", &sasl.user, "--to", EXTERNAL_RCPT]);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 7, "exit status; report: {json:#}");
    assert!(
        !probe.sent().iter().any(|cmd| cmd.starts_with("AUTH")),
        "AUTH sent without --user: {json:#}"
    );
    assert_eq!(
        probe.str_at("/envelope/mail_from/result"),
        Some("accepted"),
        "envelope.mail_from.result in {json:#}"
    );
    assert_eq!(
        probe.str_at("/envelope/rcpt_to/0/result"),
        Some("rejected"),
        "envelope.rcpt_to[0] ({EXTERNAL_RCPT}) in {json:#}"
    );
    let code = probe.int_at("/envelope/rcpt_to/0/code");
    assert!(
        matches!(code, Some(550 | 554)),
        "relaying to {EXTERNAL_RCPT} refused with {code:?}, expected 554 or 550: {json:#}"
    );
    check_nothing_queued(&sasl).unwrap_or_else(|msg| panic!("{msg}"));
}

/// The leak check itself: each secret form, made to show by putting it in
/// the MAIL FROM address (echoed in the transcript and the JSON), is caught
/// and named. Without this, a check that never matches would pass silently.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs a Postfix server: run by .ci/run (see .ci/postfix.sh)"]
fn leak_check_catches_each_secret_form() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let forms = secret_forms(&sasl.user, &sasl.password);
    for (name, form) in &forms {
        let from = format!("{form}@smtptls.test");
        let result = probe(&sasl, None, || {
            let mut cmd = test_smtp(&sasl)?;
            cmd.args(["--from", &from, "--quit-after", "mail"]);
            Ok(cmd)
        });
        // One form may contain another: with an 18-character user name (a
        // multiple of 3), base64("user\0user\0pw") ends with base64("\0user\0pw").
        let acceptable: Vec<String> = forms
            .iter()
            .filter(|(_, other)| form.contains(other.as_str()))
            .map(|(other_name, _)| format!(" shows {other_name}"))
            .collect();
        match result {
            Err(msg) => assert!(
                acceptable.iter().any(|end| msg.ends_with(end.as_str())),
                "the leak check of {name} failed otherwise: {msg}"
            ),
            Ok(probe) => panic!(
                "the leak check missed {name} in MAIL FROM; report: {:#}",
                probe.json
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// --proxy: the same Postfix through a real SOCKS5 proxy (Dante, .ci/socks.sh).

const HOW_TO_RUN_SOCKS: &str = "this test needs the throwaway Dante of .ci/socks.sh as well: \
     run `bash .ci/run`, or by hand (as root) add `eval \"$(.ci/socks.sh start)\"` \
     before and `.ci/socks.sh stop` after the Postfix steps";

/// The proxy tests run one at a time, so that the connections each one finds
/// in Dante's log are its own.
static PROXY_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The Dante instance started by `.ci/socks.sh`.
struct Socks {
    port: String,
    log: PathBuf,
}

fn socks() -> Result<Socks, String> {
    let var =
        |name: &str| env_var(name).map_err(|_| format!("{name} is not set: {HOW_TO_RUN_SOCKS}"));
    let port = var("SMTPTLS_SOCKS_PORT")?;
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "SMTPTLS_SOCKS_PORT={port:?} is not a port number: {HOW_TO_RUN_SOCKS}"
        ));
    }
    Ok(Socks {
        port,
        log: PathBuf::from(var("SMTPTLS_SOCKS_LOG")?),
    })
}

impl Socks {
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Dante's log so far.
    fn log(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.log)
            .map_err(|err| format!("cannot read Dante's log {}: {err}", self.log.display()))
    }

    /// Lines Dante logged after `before` that record a CONNECT it relayed to
    /// 127.0.0.1 port `port` — `pass(1): tcp/connect [: CLIENT PROXY -> FROM
    /// 127.0.0.1.PORT`, Dante writing addresses as `IP.PORT` — waiting a
    /// little for them: Dante logs from its own processes.
    fn relayed_since(&self, before: &str, port: &str) -> Result<Vec<String>, String> {
        let target = format!(" 127.0.0.1.{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log()?;
            let new = log.get(before.len()..).unwrap_or_default();
            let lines: Vec<String> = new
                .lines()
                .filter(|l| l.contains("pass(") && l.contains("tcp/connect [: "))
                .filter(|l| l.trim_end().ends_with(&target))
                .map(str::to_owned)
                .collect();
            if !lines.is_empty() || Instant::now() >= deadline {
                return Ok(lines);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `get-cert` through `socks5://` (smtptls resolves, the proxy gets an IPv4
/// address): exit 0, the certificate Postfix serves, and Dante's log shows
/// the connection it relayed to Postfix.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs Postfix and Dante: run by .ci/run (see .ci/postfix.sh, .ci/socks.sh)"]
fn proxy_socks5_get_cert_same_certificate() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));
    let socks = socks().unwrap_or_else(|msg| panic!("{msg}"));
    let _serial = PROXY_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = socks.log().unwrap_or_else(|msg| panic!("{msg}"));
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("leaf.der");

    let output = get_cert(&postfix)
        .unwrap()
        .args(["--proxy", &socks.url("socks5")])
        .arg("--ca-file")
        .arg(&postfix.cert_file)
        .args(["--sni", SERVER_NAME, "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "connecting through SOCKS5 proxy 127.0.0.1:{}",
            socks.port
        )),
        "no transcript line about the proxy:\n{stderr}"
    );
    let saved = std::fs::read(&out).unwrap();
    assert!(
        saved == postfix.cert_der,
        "{} is not the DER of the certificate Postfix serves",
        out.display()
    );
    let relayed = socks
        .relayed_since(&before, &postfix.port)
        .unwrap_or_else(|msg| panic!("{msg}"));
    assert!(
        !relayed.is_empty(),
        "Dante's log shows no connection to 127.0.0.1.{} (the probe did not go through the proxy?):\n{}",
        postfix.port,
        socks.log().unwrap_or_default()
    );
}

/// `get-cert localhost` through `socks5h://`: the name goes to Dante, which
/// resolves it; the certificate is checked against mx.smtptls.test. Exit 0,
/// the report's address says who resolved it, and Dante relayed the
/// connection.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs Postfix and Dante: run by .ci/run (see .ci/postfix.sh, .ci/socks.sh)"]
fn proxy_socks5h_name_resolved_by_the_proxy() {
    let postfix = postfix().unwrap_or_else(|msg| panic!("{msg}"));
    let socks = socks().unwrap_or_else(|msg| panic!("{msg}"));
    let _serial = PROXY_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = socks.log().unwrap_or_else(|msg| panic!("{msg}"));
    let proxy = socks.url("socks5h");

    let mut cmd = Command::cargo_bin("smtptls").unwrap();
    let output = cmd
        .args(["get-cert", "localhost", "--port", &postfix.port])
        .args([
            "--tls",
            "starttls",
            "--domain",
            CLIENT_NAME,
            "--proxy",
            &proxy,
        ])
        .arg("--ca-file")
        .arg(&postfix.cert_file)
        .args(["--sni", SERVER_NAME, "--verify-name", SERVER_NAME, "--json"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{stdout}"));
    assert_eq!(
        json.pointer("/target/address").and_then(Value::as_str),
        Some(format!("localhost:{} via {proxy}", postfix.port).as_str()),
        "target.address in {json:#}"
    );
    assert_eq!(
        json.pointer("/certificates/0/sha256_fingerprint")
            .and_then(Value::as_str),
        Some(sha256_fingerprint(&postfix.cert_der).as_str()),
        "certificates[0].sha256_fingerprint in {json:#}"
    );
    let relayed = socks
        .relayed_since(&before, &postfix.port)
        .unwrap_or_else(|msg| panic!("{msg}"));
    assert!(
        !relayed.is_empty(),
        "Dante's log shows no connection to 127.0.0.1.{} (did Dante resolve localhost?):\n{}",
        postfix.port,
        socks.log().unwrap_or_default()
    );
}

/// `test-smtp` through the proxy: AUTH inside TLS accepted (exit 0), and the
/// password shows nowhere.
/// Run by `.ci/run` (see the module docs).
#[test]
#[ignore = "needs Postfix and Dante: run by .ci/run (see .ci/postfix.sh, .ci/socks.sh)"]
fn proxy_test_smtp_auth_accepted() {
    let sasl = sasl().unwrap_or_else(|msg| panic!("{msg}"));
    let socks = socks().unwrap_or_else(|msg| panic!("{msg}"));
    let _serial = PROXY_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = socks.log().unwrap_or_else(|msg| panic!("{msg}"));
    let probe = probe(&sasl, None, || {
        let mut cmd = test_smtp(&sasl)?;
        login(&mut cmd, &sasl.user, &sasl.password).args(["--proxy", &socks.url("socks5")]);
        Ok(cmd)
    })
    .unwrap_or_else(|msg| panic!("{msg}"));
    let json = &probe.json;

    assert_eq!(probe.code, 0, "exit status; report: {json:#}");
    assert_eq!(
        probe.str_at("/auth/result"),
        Some("accepted"),
        "auth.result in {json:#}"
    );
    assert!(
        probe.transcript.contains("connecting through SOCKS5 proxy"),
        "no transcript line about the proxy:\n{}",
        probe.transcript
    );
    let relayed = socks
        .relayed_since(&before, &sasl.postfix.port)
        .unwrap_or_else(|msg| panic!("{msg}"));
    assert!(
        relayed.len() >= 2,
        "Dante's log shows {} connection(s) to 127.0.0.1.{}, expected one per run (two):\n{}",
        relayed.len(),
        sasl.postfix.port,
        socks.log().unwrap_or_default()
    );
}
