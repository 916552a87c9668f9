//! test-smtp's stages after TLS: SMTP AUTH (RFC 4954) and the mail envelope (RFC 5321 §4.1.1.2–3)
//! — MAIL FROM, one RCPT TO per recipient, RSET. DATA is never sent, so no message can leave.
//! Every reply is a finding recorded with its code and class; only a broken dialogue is an error.

use serde::Serialize;

use crate::probe::{Findings, ProbeError, QuitAfter};
use crate::secret::Secret;
use crate::smtp::auth::{self, Credential, LoginPrompt, Mechanism};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use crate::smtp::session::Session;

/// Most 334 challenges answered in one AUTH exchange before smtptls cancels it.
pub const MAX_AUTH_ROUNDS: usize = 4;

/// What test-smtp does after TLS.
#[derive(Debug, Clone)]
pub struct SubmitOptions {
    /// The user name and what to authenticate with; `None`: no AUTH.
    pub login: Option<(String, Credential)>,
    /// A forced mechanism; `None` picks the best advertised.
    pub mechanism: Option<Mechanism>,
    /// Whether AUTH may be sent outside TLS.
    pub allow_plaintext_auth: bool,
    /// Whether AUTH may be sent to a server whose certificate did not verify.
    pub allow_unverified_auth: bool,
    /// The reverse-path for MAIL FROM ("" is the null sender `<>`).
    pub from: Option<String>,
    /// The recipients, one RCPT TO each.
    pub to: Vec<String>,
    /// The last stage to run.
    pub quit_after: QuitAfter,
    /// The server's host name and port, for OAUTHBEARER's `host` and `port`.
    pub host: String,
    /// See `host`.
    pub port: u16,
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepResult {
    /// 2xx (235 for AUTH).
    Accepted,
    /// 4xx: try again later (greylisting, rate limits, temporary failure).
    TemporaryFailure,
    /// 5xx: refused for good.
    Rejected,
    /// The server does not offer AUTH, or no mechanism it offers fits the secret given.
    NotOffered,
    /// smtptls did not send it (a previous step failed, or credentials were withheld).
    NotAttempted,
    /// The exchange went on too long and smtptls cancelled it.
    Aborted,
}

impl StepResult {
    fn of(reply: &Reply) -> Self {
        match reply.class() {
            2 => StepResult::Accepted,
            4 => StepResult::TemporaryFailure,
            _ => StepResult::Rejected,
        }
    }
}

/// The AUTH finding.
#[derive(Debug, Clone, Serialize)]
pub struct AuthReport {
    /// The user name (not secret).
    pub user: String,
    /// The mechanism used or that would have been.
    pub mechanism: Option<Mechanism>,
    /// The mechanisms the server advertised.
    pub advertised: Vec<String>,
    /// How it ended.
    pub result: StepResult,
    /// The final reply code.
    pub code: Option<u16>,
    /// The final reply's lines (secrets scrubbed).
    pub lines: Vec<String>,
    /// Plain words.
    pub message: String,
}

/// One MAIL FROM or RCPT TO finding.
#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    /// The address.
    pub address: String,
    /// How it ended.
    pub result: StepResult,
    /// The reply code.
    pub code: Option<u16>,
    /// The reply's lines.
    pub lines: Vec<String>,
    /// Plain words for codes that need them.
    pub message: Option<String>,
}

/// The envelope findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnvelopeReport {
    /// MAIL FROM.
    pub mail_from: Option<AddressReport>,
    /// Each RCPT TO, in order.
    pub rcpt_to: Vec<AddressReport>,
}

/// What test-smtp found after TLS.
#[derive(Debug, Clone, Default)]
pub struct SubmitResults {
    /// AUTH, if asked for.
    pub auth: Option<AuthReport>,
    /// The envelope, if asked for.
    pub envelope: Option<EnvelopeReport>,
}

/// Runs AUTH and the envelope as far as `opts.quit_after` asks; RSET after the envelope.
pub fn run(
    session: &mut Session,
    findings: &Findings,
    opts: &SubmitOptions,
    results: &mut SubmitResults,
) -> Result<(), ProbeError> {
    if let Some((user, credential)) = &opts.login {
        let report = authenticate(session, findings, opts, user, credential)?;
        let accepted = report.result == StepResult::Accepted;
        results.auth = Some(report);
        if !accepted {
            return Ok(());
        }
    }
    if opts.quit_after >= QuitAfter::Mail {
        if let Some(from) = &opts.from {
            results.envelope = Some(envelope(session, from, &opts.to, opts.quit_after)?);
            let reply = session
                .command("rset", &Command::Rset)
                .map_err(session_error)?;
            if !reply.is_positive() {
                session
                    .transcript
                    .info(format!("RSET answered {}", reply.code));
            }
        }
    }
    Ok(())
}

fn session_error(source: crate::smtp::session::SessionError) -> ProbeError {
    ProbeError::Session { source, hint: None }
}

fn authenticate(
    session: &mut Session,
    findings: &Findings,
    opts: &SubmitOptions,
    user: &str,
    credential: &Credential,
) -> Result<AuthReport, ProbeError> {
    let caps = if session.is_tls() {
        &findings.ehlo_after_tls
    } else {
        &findings.ehlo_before_tls
    };
    let advertised = caps
        .as_ref()
        .map(Capabilities::auth_mechanisms)
        .unwrap_or_default();
    let mut report = AuthReport {
        user: user.to_owned(),
        mechanism: opts.mechanism,
        advertised: advertised.clone(),
        result: StepResult::NotAttempted,
        code: None,
        lines: Vec::new(),
        message: String::new(),
    };
    if let Some(why) = withhold_reason(session, findings, opts) {
        report.message = why;
        return Ok(report);
    }
    let mechanism = match opts.mechanism {
        Some(forced) => {
            if !advertised
                .iter()
                .any(|a| a.eq_ignore_ascii_case(forced.name()))
            {
                session.transcript.info(format!(
                    "warning: the server does not advertise AUTH {forced} (it offers: {}); trying anyway",
                    list(&advertised)
                ));
            }
            forced
        }
        None => match auth::choose(&advertised, credential) {
            Some(m) => m,
            None => {
                report.result = StepResult::NotOffered;
                report.message = if advertised.is_empty() {
                    "the server does not offer AUTH here".into()
                } else {
                    let kind = if matches!(credential, Credential::Token(_)) {
                        "a bearer token"
                    } else {
                        "a password"
                    };
                    format!(
                        "none of the mechanisms offered ({}) works with {kind}",
                        list(&advertised)
                    )
                };
                return Ok(report);
            }
        },
    };
    report.mechanism = Some(mechanism);
    session.add_secret_forms(auth::exposed_forms(credential.secret()));
    let (code, lines, rounds_exceeded) = converse(session, opts, user, credential, mechanism)?;
    report.code = Some(code);
    report.result = if rounds_exceeded {
        StepResult::Aborted
    } else {
        StepResult::of(&Reply {
            code,
            lines: lines.clone(),
        })
    };
    report.message = auth_words(code, &lines.join(" "), rounds_exceeded);
    report.lines = lines;
    Ok(report)
}

/// Why credentials must not be sent on this connection, if they must not.
fn withhold_reason(session: &Session, findings: &Findings, opts: &SubmitOptions) -> Option<String> {
    if !session.is_tls() {
        return (!opts.allow_plaintext_auth).then(|| {
            "credentials not sent: the connection is not encrypted (RFC 8314); --allow-plaintext-auth overrides".into()
        });
    }
    let verified = findings
        .captured
        .as_ref()
        .is_some_and(|c| c.chain_result.is_ok() && c.name_result.is_ok());
    (!verified && !opts.allow_unverified_auth).then(|| {
        "credentials not sent: the server's certificate did not verify, so the connection may not reach the real server \
         (trust its CA with --ca-file, or override with --allow-unverified-auth)"
            .into()
    })
}

/// The AUTH exchange: the initial command, then one answer per 334 challenge, at most
/// [`MAX_AUTH_ROUNDS`]. Returns the final code and lines, and whether it was cancelled.
fn converse(
    session: &mut Session,
    opts: &SubmitOptions,
    user: &str,
    credential: &Credential,
    mechanism: Mechanism,
) -> Result<(u16, Vec<String>, bool), ProbeError> {
    let secret = credential.secret();
    let (first, shown) = match mechanism {
        Mechanism::Login => (Secret::new("AUTH LOGIN"), "AUTH LOGIN".to_owned()),
        Mechanism::Plain => (
            Secret::new(format!("AUTH PLAIN {}", auth::plain(user, secret).expose())),
            "AUTH PLAIN <credentials redacted>".to_owned(),
        ),
        Mechanism::XOAuth2 => (
            Secret::new(format!(
                "AUTH XOAUTH2 {}",
                auth::xoauth2(user, secret).expose()
            )),
            "AUTH XOAUTH2 <token redacted>".to_owned(),
        ),
        Mechanism::OAuthBearer => (
            Secret::new(format!(
                "AUTH OAUTHBEARER {}",
                auth::oauthbearer(user, &opts.host, opts.port, secret).expose()
            )),
            "AUTH OAUTHBEARER <token redacted>".to_owned(),
        ),
    };
    // "AUTH MECHANISM INITIAL-RESPONSE": the initial response carries the credential (LOGIN has none).
    if let Some(blob) = first.expose().splitn(3, ' ').nth(2) {
        session.add_secret_forms([blob.to_owned()]);
    }
    let mut reply = session
        .exchange("auth", &first, &shown)
        .map_err(session_error)?;
    let mut rounds = 0;
    while reply.code == 334 {
        rounds += 1;
        let challenge = reply.lines.first().cloned().unwrap_or_default();
        session.transcript.info(format!(
            "server challenge decoded: {:?}",
            auth::decode_challenge(&challenge)
        ));
        if rounds > MAX_AUTH_ROUNDS {
            let cancel = session
                .exchange("auth", &Secret::new("*"), "* (cancel)")
                .map_err(session_error)?;
            return Ok((cancel.code, cancel.lines, true));
        }
        let (answer, shown) = answer(mechanism, &challenge, user, secret);
        reply = session
            .exchange("auth", &answer, &shown)
            .map_err(session_error)?;
    }
    Ok((reply.code, reply.lines, false))
}

/// The answer to one 334 challenge, and how the transcript shows it.
fn answer(mechanism: Mechanism, challenge: &str, user: &str, secret: &Secret) -> (Secret, String) {
    let password = || {
        (
            Secret::new(auth::encode(secret.expose())),
            "<password redacted>".to_owned(),
        )
    };
    match mechanism {
        Mechanism::Login => match auth::login_prompt(challenge) {
            LoginPrompt::Password => password(),
            LoginPrompt::Username | LoginPrompt::Other(_) => (
                Secret::new(auth::encode(user)),
                format!("{} (user name {user:?})", auth::encode(user)),
            ),
        },
        // The server ignored the initial response: send it again.
        Mechanism::Plain => (
            auth::plain(user, secret),
            "<credentials redacted>".to_owned(),
        ),
        // An error challenge (JSON); the client answers empty / ^A and the server sends the final code.
        Mechanism::XOAuth2 => (
            Secret::new(""),
            "(empty response to the error challenge)".to_owned(),
        ),
        Mechanism::OAuthBearer => (
            Secret::new(auth::OAUTHBEARER_ABORT),
            "AQ== (^A: end of the failed exchange)".to_owned(),
        ),
    }
}

fn auth_words(code: u16, text: &str, cancelled: bool) -> String {
    if cancelled {
        return format!(
            "the server kept sending challenges; cancelled after {MAX_AUTH_ROUNDS} rounds"
        );
    }
    let lower = text.to_ascii_lowercase();
    match code {
        235 => "authentication succeeded".into(),
        530 if lower.contains("starttls") => "the server requires STARTTLS before AUTH".into(),
        530 => "the server requires authentication first".into(),
        534 => "the mechanism is too weak for this account, or the provider wants a web sign-in first \
                (Gmail and Microsoft 365: use an app password or OAuth with --auth xoauth2/oauthbearer)"
            .into(),
        535 => "authentication credentials invalid: wrong user name or password/token".into(),
        538 => "this mechanism needs an encrypted connection".into(),
        454 => "temporary authentication failure on the server: try again later".into(),
        504 => "the server does not support this mechanism".into(),
        _ if (400..500).contains(&code) => "temporary failure: try again later".into(),
        _ => "authentication refused".into(),
    }
}

fn envelope(
    session: &mut Session,
    from: &str,
    to: &[String],
    quit_after: QuitAfter,
) -> Result<EnvelopeReport, ProbeError> {
    let mut report = EnvelopeReport::default();
    let reply = session
        .command("mail", &Command::MailFrom(from.to_owned()))
        .map_err(session_error)?;
    let mail = address_report(from, &reply);
    let accepted = mail.result == StepResult::Accepted;
    report.mail_from = Some(mail);
    if quit_after < QuitAfter::Rcpt {
        return Ok(report);
    }
    for rcpt in to {
        if !accepted {
            report.rcpt_to.push(AddressReport {
                address: rcpt.clone(),
                result: StepResult::NotAttempted,
                code: None,
                lines: Vec::new(),
                message: Some("MAIL FROM was not accepted".into()),
            });
            continue;
        }
        let reply = session
            .command("rcpt", &Command::RcptTo(rcpt.clone()))
            .map_err(session_error)?;
        report.rcpt_to.push(address_report(rcpt, &reply));
    }
    Ok(report)
}

fn address_report(address: &str, reply: &Reply) -> AddressReport {
    let lower = reply.text().to_ascii_lowercase();
    let message = match reply.code {
        530 if lower.contains("starttls") => Some("the server requires STARTTLS first".to_owned()),
        530 => Some("the server requires authentication first (give --user)".to_owned()),
        _ if lower.contains("relay") => Some(
            "relaying denied: the server does not accept mail for that domain from this client (authenticate, or it is not a local domain)"
                .to_owned(),
        ),
        550 | 551 | 553 => {
            Some("mailbox unavailable or not allowed (unknown user, or relaying denied)".to_owned())
        }
        552 => Some("exceeded storage allocation".to_owned()),
        554 => Some("transaction failed: policy rejection".to_owned()),
        450..=452 => Some(
            "temporary failure (greylisting, rate limit, or local error): try again later"
                .to_owned(),
        ),
        421 => Some("service not available: the server is closing the connection".to_owned()),
        _ => None,
    };
    AddressReport {
        address: address.to_owned(),
        result: StepResult::of(reply),
        code: Some(reply.code),
        lines: reply.lines.clone(),
        message,
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}
