//! Running the `smtptls` binary from tests: a hermetic command, the outcome captured as text
//! with a readable failure dump, a per-test fixture (test PKI, temp dir, CA file), and a check
//! of the `--json` document's shape.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::pki::TestPki;
use super::server::FakeSmtp;

/// The longest any single run may take before the test fails (the binary is killed).
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// The `--timeout` the helpers pass, so a hang fails fast instead of waiting the default 20 s.
pub const TIMEOUT_ARG: &str = "5";

/// What one run of the binary did.
pub struct Run {
    /// The command line (for failure messages).
    pub args: Vec<String>,
    /// The exit code.
    pub code: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard output, raw (for DER written to `-o -`).
    pub stdout_bytes: Vec<u8>,
    /// Standard error, lossily decoded.
    pub stderr: String,
    /// Wall-clock time the run took.
    pub elapsed: Duration,
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ smtptls {}", self.args.join(" "))?;
        writeln!(f, "exit code: {} (after {:?})", self.code, self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

impl Run {
    /// Assert the exit code, dumping the run when it differs.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code\n{self}");
        self
    }

    /// stdout parsed as exactly one JSON object (trailing whitespace allowed).
    #[track_caller]
    pub fn json(&self) -> Value {
        let value: Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not exactly one JSON document: {e}\n{self}"));
        assert!(value.is_object(), "stdout JSON is not an object\n{self}");
        value
    }

    /// stdout and stderr together, for messages whose stream the contract leaves open.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The transcript lines on stderr (`-> `, `<- `, `~> `, `<~ `).
    pub fn transcript_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| is_transcript_line(l))
            .collect()
    }
}

/// True for a transcript line: `-> `/`<- ` before TLS, `~> `/`<~ ` inside it.
pub fn is_transcript_line(line: &str) -> bool {
    ["-> ", "<- ", "~> ", "<~ "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// Run `smtptls` with these arguments, hermetically (no `SMTPTLS*` variables from outside, no
/// stdin), killed after [`RUN_LIMIT`].
pub fn smtptls<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    smtptls_env(args, &[], None)
}

/// [`smtptls`] with these environment variables set for the run (e.g. `SSL_CERT_FILE`).
pub fn smtptls_with_env<I, S>(args: I, env: &[(&str, &OsStr)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let owned: Vec<(&str, String)> = env
        .iter()
        .map(|(key, value)| (*key, value.to_string_lossy().into_owned()))
        .collect();
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    smtptls_env(args, &borrowed, None)
}

/// [`smtptls`], with these environment variables set (after the `SMTPTLS*` ones are removed) and,
/// when given, these bytes on stdin (a pipe either way, never a terminal).
pub fn smtptls_env<I, S>(args: I, env: &[(&str, &str)], stdin: Option<&[u8]>) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("smtptls");
    for (key, _) in std::env::vars_os() {
        if key
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("SMTPTLS")
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").args(&args).timeout(RUN_LIMIT);
    cmd.envs(env.iter().copied());
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes.to_vec());
    }
    let started = Instant::now();
    let output = cmd.output().expect("run smtptls");
    let elapsed = started.elapsed();
    let code = output.status.code().unwrap_or_else(|| {
        panic!(
            "smtptls {} was killed (no exit code) after {elapsed:?}; stderr:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Run {
        args,
        code,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stdout_bytes: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed,
    }
}

/// `smtptls get-cert <server> --timeout 5 <args...>`.
pub fn get_cert(server: &FakeSmtp, args: &[&str]) -> Run {
    let server_arg = server.server_arg();
    let mut all = vec!["get-cert", server_arg.as_str(), "--timeout", TIMEOUT_ARG];
    all.extend_from_slice(args);
    smtptls(all)
}

/// One test's private files: a test PKI, a temp dir, and the CA written there for `--ca-file`.
pub struct Fixture {
    /// The CA that issues the server's certificates.
    pub pki: TestPki,
    dir: TempDir,
    ca_file: PathBuf,
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture {
    /// A fresh PKI and temp dir, with the CA at `<dir>/ca.pem`.
    pub fn new() -> Self {
        let pki = TestPki::new();
        let dir = tempfile::tempdir().expect("create a temp dir");
        let ca_file = pki.write_ca(dir.path());
        Self { pki, dir, ca_file }
    }

    /// `<dir>/<name>` (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The same, as a `&str` argument.
    pub fn arg(&self, name: &str) -> String {
        path_arg(&self.path(name))
    }

    /// The CA file's path, as an argument.
    pub fn ca_file(&self) -> String {
        path_arg(&self.ca_file)
    }

    /// `--ca-file <ca> --sni localhost`: makes a [`TestPki::leaf`] verify on `127.0.0.1`.
    pub fn trust_args(&self) -> Vec<String> {
        vec![
            "--ca-file".into(),
            self.ca_file(),
            "--sni".into(),
            "localhost".into(),
        ]
    }
}

/// A path as a UTF-8 command-line argument (temp dirs are UTF-8 here).
pub fn path_arg(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_owned()
}

/// Join owned and borrowed arguments for [`get_cert`].
pub fn args<'a>(owned: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    owned
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

/// Assert the `--json` document has every field of the `get-cert` contract with the right
/// type (nullable ones may be null), and that `exit_code` matches the process's exit code.
#[track_caller]
pub fn assert_get_cert_schema(doc: &Value, run: &Run) {
    let ctx = |field: &str| format!("JSON field {field}\n{run}");
    let obj = |v: &Value, field: &str| {
        assert!(v.is_object(), "{}: expected an object, got {v}", ctx(field));
    };
    let s = |v: &Value, field: &str| assert!(v.is_string(), "{}: expected a string", ctx(field));
    let s_or_null = |v: &Value, field: &str| {
        assert!(
            v.is_string() || v.is_null(),
            "{}: expected string|null",
            ctx(field)
        );
    };
    let int = |v: &Value, field: &str| assert!(v.is_i64(), "{}: expected an integer", ctx(field));
    let int_or_null = |v: &Value, field: &str| {
        assert!(
            v.is_i64() || v.is_null(),
            "{}: expected integer|null",
            ctx(field)
        );
    };
    let b = |v: &Value, field: &str| assert!(v.is_boolean(), "{}: expected a bool", ctx(field));
    let arr = |v: &Value, field: &str| -> Vec<Value> {
        v.as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{}: expected an array", ctx(field)))
    };
    let strings = |v: &Value, field: &str| {
        for item in arr(v, field) {
            s(&item, field);
        }
    };

    let keys = |v: &Value, field: &str, names: &[&str]| {
        for name in names {
            assert!(
                v.get(name).is_some(),
                "{}: missing key {name:?}",
                ctx(field)
            );
        }
    };

    obj(doc, "(top level)");
    #[rustfmt::skip]
    keys(doc, "(top level)", &[
        "schema_version", "command", "target", "stages", "ehlo_before_tls", "ehlo_after_tls",
        "tls", "certificates", "verification", "output", "transcript", "error", "exit_code",
    ]);
    assert_eq!(doc["schema_version"], 1, "{}", ctx("schema_version"));
    assert_eq!(doc["command"], "get-cert", "{}", ctx("command"));

    let t = &doc["target"];
    obj(t, "target");
    keys(
        t,
        "target",
        &["host", "port", "address", "tls_mode", "sni", "ehlo_name"],
    );
    s(&t["host"], "target.host");
    int(&t["port"], "target.port");
    s_or_null(&t["address"], "target.address");
    assert!(
        t["tls_mode"] == "starttls" || t["tls_mode"] == "implicit",
        "{}",
        ctx("target.tls_mode")
    );
    s_or_null(&t["sni"], "target.sni");
    s_or_null(&t["ehlo_name"], "target.ehlo_name");

    for stage in arr(&doc["stages"], "stages") {
        obj(&stage, "stages[]");
        keys(
            &stage,
            "stages[]",
            &["stage", "tls", "sent", "code", "lines"],
        );
        s(&stage["stage"], "stages[].stage");
        b(&stage["tls"], "stages[].tls");
        s_or_null(&stage["sent"], "stages[].sent");
        int_or_null(&stage["code"], "stages[].code");
        strings(&stage["lines"], "stages[].lines");
    }
    for field in ["ehlo_before_tls", "ehlo_after_tls"] {
        if !doc[field].is_null() {
            strings(&doc[field], field);
        }
    }
    if !doc["tls"].is_null() {
        obj(&doc["tls"], "tls");
        keys(&doc["tls"], "tls", &["version", "cipher_suite"]);
        s(&doc["tls"]["version"], "tls.version");
        s(&doc["tls"]["cipher_suite"], "tls.cipher_suite");
    }
    for cert in arr(&doc["certificates"], "certificates") {
        obj(&cert, "certificates[]");
        #[rustfmt::skip]
        keys(&cert, "certificates[]", &[
            "subject", "issuer", "subject_alt_names", "not_before", "not_after", "days_left",
            "serial", "sha256_fingerprint", "public_key_type", "public_key_bits",
            "signature_algorithm", "self_signed", "is_ca",
        ]);
        for field in [
            "subject",
            "issuer",
            "not_before",
            "not_after",
            "serial",
            "sha256_fingerprint",
            "public_key_type",
            "signature_algorithm",
        ] {
            s(&cert[field], &format!("certificates[].{field}"));
        }
        strings(
            &cert["subject_alt_names"],
            "certificates[].subject_alt_names",
        );
        int(&cert["days_left"], "certificates[].days_left");
        int_or_null(&cert["public_key_bits"], "certificates[].public_key_bits");
        b(&cert["self_signed"], "certificates[].self_signed");
        b(&cert["is_ca"], "certificates[].is_ca");
    }
    let v = &doc["verification"];
    if !v.is_null() {
        obj(v, "verification");
        #[rustfmt::skip]
        keys(v, "verification", &[
            "verified", "chain_trusted", "chain_error", "name_checked", "name_matches",
            "name_error",
        ]);
        b(&v["verified"], "verification.verified");
        b(&v["chain_trusted"], "verification.chain_trusted");
        s_or_null(&v["chain_error"], "verification.chain_error");
        s(&v["name_checked"], "verification.name_checked");
        b(&v["name_matches"], "verification.name_matches");
        s_or_null(&v["name_error"], "verification.name_error");
    }
    let o = &doc["output"];
    if !o.is_null() {
        obj(o, "output");
        keys(o, "output", &["path", "format", "certificates_written"]);
        s(&o["path"], "output.path");
        assert!(
            o["format"] == "der" || o["format"] == "pem",
            "{}",
            ctx("output.format")
        );
        int(&o["certificates_written"], "output.certificates_written");
    }
    for line in arr(&doc["transcript"], "transcript") {
        obj(&line, "transcript[]");
        keys(&line, "transcript[]", &["direction", "tls", "text"]);
        let direction = line["direction"].as_str().unwrap_or_default();
        assert!(
            ["sent", "received", "info"].contains(&direction),
            "{}",
            ctx("transcript[].direction")
        );
        b(&line["tls"], "transcript[].tls");
        s(&line["text"], "transcript[].text");
    }
    let e = &doc["error"];
    if !e.is_null() {
        obj(e, "error");
        keys(e, "error", &["kind", "message"]);
        s(&e["kind"], "error.kind");
        s(&e["message"], "error.message");
    }
    assert_eq!(doc["exit_code"], run.code, "{}", ctx("exit_code"));
}
