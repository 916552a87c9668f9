//! Where test-smtp's secrets come from: an environment variable, a file (or stdin), or a prompt
//! without echo on a terminal. No option takes a secret on the command line, where `ps` and shell
//! history would keep it.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use super::UsageError;
use crate::cli::{AuthArg, TestSmtpArgs};
use crate::secret::Secret;
use crate::smtp::auth::Credential;

/// The credential the options point at, read now; `None` when no user name is given.
pub fn credential(args: &TestSmtpArgs) -> Result<Option<Credential>, UsageError> {
    let Some(user) = &args.user else {
        return Ok(None);
    };
    let wants_token = matches!(args.auth, AuthArg::Xoauth2 | AuthArg::Oauthbearer);
    let credential = if let Some(var) = &args.token_env {
        Credential::Token(from_env(var, "--token-env")?)
    } else if let Some(path) = &args.token_file {
        Credential::Token(from_file(path, "--token-file")?)
    } else if let Some(var) = &args.password_env {
        Credential::Password(from_env(var, "--password-env")?)
    } else if let Some(path) = &args.password_file {
        Credential::Password(from_file(path, "--password-file")?)
    } else if wants_token {
        return Err(UsageError(format!(
            "--auth {} needs a bearer token: give --token-env VAR or --token-file FILE",
            if args.auth == AuthArg::Xoauth2 {
                "xoauth2"
            } else {
                "oauthbearer"
            }
        )));
    } else {
        Credential::Password(prompt(user)?)
    };
    match (&credential, wants_token, args.auth) {
        (Credential::Password(_), true, _) => Err(UsageError(
            "XOAUTH2 and OAUTHBEARER take a bearer token, not a password: use --token-env or --token-file".into(),
        )),
        (Credential::Token(_), false, AuthArg::Login | AuthArg::Plain) => Err(UsageError(
            "LOGIN and PLAIN take a password, not a token: use --password-env or --password-file".into(),
        )),
        _ => Ok(Some(credential)),
    }
}

fn from_env(var: &str, option: &str) -> Result<Secret, UsageError> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
        Ok(_) => Err(UsageError(format!("{option} {var}: the variable is empty"))),
        Err(_) => Err(UsageError(format!(
            "{option} {var}: the variable is not set (or not valid UTF-8)"
        ))),
    }
}

/// The first line of the file ("-": stdin), without its line ending.
fn from_file(path: &Path, option: &str) -> Result<Secret, UsageError> {
    let fail = |why: String| UsageError(format!("{option} {}: {why}", path.display()));
    let mut line = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().lock().read_line(&mut line)
    } else {
        std::fs::File::open(path).and_then(|f| std::io::BufReader::new(f).read_line(&mut line))
    };
    read.map_err(|e| fail(e.to_string()))?;
    let secret = Secret::new(line.trim_end_matches(['\r', '\n']));
    drop(zeroize::Zeroizing::new(line));
    if secret.is_empty() {
        return Err(fail("the first line is empty".into()));
    }
    Ok(secret)
}

fn prompt(user: &str) -> Result<Secret, UsageError> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "no password for {user}: give --password-env VAR or --password-file FILE (stdin is not a terminal, so there is no prompt)"
        )));
    }
    rpassword::prompt_password(format!("Password for {user}: "))
        .map(Secret::new)
        .map_err(|e| UsageError(format!("reading the password: {e}")))
}
