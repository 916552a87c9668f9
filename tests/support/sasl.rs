//! The fake server's side of SMTP AUTH (RFC 4954): LOGIN, PLAIN (RFC 4616), XOAUTH2 (Google's and
//! Microsoft's protocol) and OAUTHBEARER (RFC 7628). A [`SaslScript`] becomes an `AUTH` handler
//! that checks the exact bytes the client sends against what the mechanism requires, and answers
//! as scripted: 235, or — for a refusal — the mechanism's failure dance (an error challenge for the
//! token mechanisms) ending in 535, optionally echoing the credentials back.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::record::Received;
use super::server::FakeSmtpBuilder;
use super::session::{Exchange, Flow};

/// A SASL mechanism, as the tests name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mech {
    /// `LOGIN`.
    Login,
    /// `PLAIN`.
    Plain,
    /// `XOAUTH2`.
    XOAuth2,
    /// `OAUTHBEARER`.
    OAuthBearer,
}

impl Mech {
    /// Every mechanism.
    pub const ALL: [Mech; 4] = [Mech::Plain, Mech::Login, Mech::XOAuth2, Mech::OAuthBearer];

    /// The name on the wire, in EHLO and in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Mech::Login => "LOGIN",
            Mech::Plain => "PLAIN",
            Mech::XOAuth2 => "XOAUTH2",
            Mech::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The `--auth` value.
    pub fn arg(self) -> &'static str {
        match self {
            Mech::Login => "login",
            Mech::Plain => "plain",
            Mech::XOAuth2 => "xoauth2",
            Mech::OAuthBearer => "oauthbearer",
        }
    }

    /// Whether it takes a bearer token (else a password).
    pub fn uses_token(self) -> bool {
        matches!(self, Mech::XOAuth2 | Mech::OAuthBearer)
    }
}

/// How the scripted server ends a well-formed exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 235 when the credentials are exactly the expected ones (535 otherwise).
    Accept,
    /// 535 whatever was sent.
    Reject,
    /// 535, with the credential line and the raw secret echoed in its text.
    RejectEcho,
}

/// The reply text of a refusal.
pub const REJECT_TEXT: &str = "5.7.8 Username and Password not accepted";

/// The JSON a token server sends in its error challenge (RFC 7628 §3.2.2).
pub const ERROR_CHALLENGE_JSON: &str =
    r#"{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}"#;

/// One account and how the server treats it.
#[derive(Clone, Debug)]
pub struct SaslScript {
    /// The mechanism the server expects.
    pub mech: Mech,
    /// The user name.
    pub user: String,
    /// The password or token.
    pub secret: String,
    /// The outcome.
    pub verdict: Verdict,
    /// OAUTHBEARER's `host` value (the client's server name).
    pub host: String,
    port: Arc<AtomicU16>,
}

impl SaslScript {
    /// A script for `user` with `secret`; OAUTHBEARER's host is `localhost` (the `--sni` the
    /// tests trust).
    pub fn new(mech: Mech, user: &str, secret: &str, verdict: Verdict) -> Self {
        Self {
            mech,
            user: user.to_owned(),
            secret: secret.to_owned(),
            verdict,
            host: "localhost".to_owned(),
            port: Arc::new(AtomicU16::new(0)),
        }
    }

    /// Tell the script the server's port (known only after it started), for OAUTHBEARER.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::SeqCst);
    }

    /// The whole SASL message the client must send, decoded (LOGIN: the password alone).
    pub fn message(&self) -> String {
        let (user, secret) = (&self.user, &self.secret);
        match self.mech {
            Mech::Login => secret.clone(),
            Mech::Plain => format!("\0{user}\0{secret}"),
            Mech::XOAuth2 => format!("user={user}\x01auth=Bearer {secret}\x01\x01"),
            Mech::OAuthBearer => format!(
                "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {secret}\x01\x01",
                self.host,
                self.port.load(Ordering::SeqCst)
            ),
        }
    }

    /// Install the script as the server's `AUTH` handler.
    pub fn install(&self, builder: FakeSmtpBuilder) -> FakeSmtpBuilder {
        let script = self.clone();
        builder.handler("AUTH", move |ex, received| script.serve(ex, received))
    }

    fn serve(&self, ex: &mut Exchange<'_>, received: &Received) -> io::Result<Flow> {
        let mut words = received.args().split_whitespace();
        let mech = words.next().unwrap_or_default();
        if !mech.eq_ignore_ascii_case(self.mech.name()) {
            ex.send(&["504 5.5.4 Unrecognized authentication type"])?;
            return Ok(Flow::Continue);
        }
        let initial = words.next().map(str::to_owned);
        let (matches, credential_line) = match self.mech {
            Mech::Login => {
                ex.send(&["334 VXNlcm5hbWU6"])?;
                let Some(user) = ex.read_line()? else {
                    return Ok(Flow::Close);
                };
                ex.send(&["334 UGFzc3dvcmQ6"])?;
                let Some(password) = ex.read_line()? else {
                    return Ok(Flow::Close);
                };
                let ok = decode(&user) == self.user && decode(&password) == self.secret;
                (ok, password)
            }
            Mech::Plain | Mech::XOAuth2 | Mech::OAuthBearer => {
                let blob = match initial {
                    Some(blob) => blob,
                    None => {
                        ex.send(&["334 "])?;
                        let Some(line) = ex.read_line()? else {
                            return Ok(Flow::Close);
                        };
                        line
                    }
                };
                (decode(&blob) == self.message(), blob)
            }
        };
        if matches && self.verdict == Verdict::Accept {
            ex.send(&["235 2.7.0 Authentication successful"])?;
            return Ok(Flow::Continue);
        }
        if self.mech.uses_token() {
            // The error challenge; the client's answer (empty, or ^A) is recorded in the log.
            let challenge = format!("334 {}", B64.encode(ERROR_CHALLENGE_JSON));
            ex.send(&[challenge.as_str()])?;
            if ex.read_line()?.is_none() {
                return Ok(Flow::Close);
            }
        }
        let reply = match self.verdict {
            Verdict::RejectEcho => format!(
                "535 {REJECT_TEXT}: got {credential_line} for {}",
                self.secret
            ),
            Verdict::Accept | Verdict::Reject => format!("535 {REJECT_TEXT}"),
        };
        ex.send(&[reply.as_str()])?;
        Ok(Flow::Continue)
    }
}

/// Base64 decoded lossily; text that is not base64 comes back marked, so it never matches.
pub fn decode(line: &str) -> String {
    B64.decode(line.trim()).map_or_else(
        |_| format!("(not base64: {line:?})"),
        |bytes| String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Base64, as the client encodes.
pub fn encode(value: &str) -> String {
    B64.encode(value)
}
