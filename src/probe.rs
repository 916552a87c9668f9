//! The probe: the dialogue every subcommand shares (RFC 5321, RFC 3207, RFC 8314) — connect,
//! banner, EHLO (HELO as fallback), STARTTLS, handshake, EHLO again inside TLS, then whatever the
//! subcommand adds, then QUIT. What was learned is kept even when a step fails, so the report can
//! show how far the dialogue got.

use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;

use crate::exit::Exit;
use crate::net::{ConnectError, Family, open};
use crate::proxy::{Proxy, Resolution};
use crate::smtp::command::Command;
use crate::smtp::ehlo::Capabilities;
use crate::smtp::reply::Reply;
use crate::smtp::session::{Session, SessionError, Stage};
use crate::smtp::transcript::{Entry, Transcript};
use crate::target::Host;
use crate::tls::config::ConfigError;
use crate::tls::explain::HandshakeContext;
use crate::tls::{Captured, ClientSettings, HandshakeError, TlsFacts, build_client_config};

/// How TLS starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext SMTP, then STARTTLS (RFC 3207).
    Starttls,
    /// TLS from the first byte (RFC 8314), as on port 465.
    Implicit,
}

/// Everything the probe needs; nothing here knows the command line.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Where to connect.
    pub host: Host,
    /// The port.
    pub port: u16,
    /// Which address families to use.
    pub family: Family,
    /// How TLS starts.
    pub mode: TlsMode,
    /// The EHLO/HELO argument; `None` uses the address literal of our end of the connection.
    pub ehlo_name: Option<String>,
    /// The name sent as SNI (when enabled) and checked against the certificate.
    pub server_name: ServerName<'static>,
    /// Trust anchors, version pin, SNI.
    pub tls: ClientSettings,
    /// Bounds the connect, each reply and the handshake.
    pub timeout: Duration,
    /// The last stage to run before QUIT.
    pub quit_after: QuitAfter,
    /// Whether a server without STARTTLS ends the probe (`false`: go on in plaintext).
    pub require_tls: bool,
    /// The SOCKS5 proxy to connect through (`--proxy`).
    pub proxy: Option<Proxy>,
}

/// The stages of a probe, in order; `--quit-after` names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuitAfter {
    /// Just connect.
    Connect,
    /// Read the greeting.
    Banner,
    /// EHLO (in plaintext, or inside implicit TLS).
    Ehlo,
    /// STARTTLS, the handshake and EHLO inside TLS.
    Tls,
    /// AUTH.
    Auth,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
}

/// What the probe learned, however far it got.
#[derive(Debug, Default)]
pub struct Findings {
    /// The address connected to (through the proxy, the target's address the proxy was asked
    /// for); `None` when the proxy resolved the name.
    pub address: Option<SocketAddr>,
    /// When the proxy resolved the name (`socks5h://`): `NAME:PORT via socks5h://PROXY`,
    /// reported in place of the address.
    pub address_via_proxy: Option<String>,
    /// The EHLO/HELO argument used.
    pub ehlo_name: String,
    /// The greeting.
    pub banner: Option<Reply>,
    /// The capabilities announced before TLS (from EHLO; `None` after HELO or in implicit TLS).
    pub ehlo_before_tls: Option<Capabilities>,
    /// The capabilities announced inside TLS.
    pub ehlo_after_tls: Option<Capabilities>,
    /// Whether the server refused EHLO and smtptls fell back to HELO.
    pub helo_fallback: bool,
    /// The negotiated TLS parameters.
    pub tls: Option<TlsFacts>,
    /// The certificates and the verifier's verdicts.
    pub captured: Option<Captured>,
    /// Each stage with its reply.
    pub stages: Vec<Stage>,
    /// Every line sent and received.
    pub transcript: Vec<Entry>,
}

impl Findings {
    /// The address for the report: the one connected to, or `NAME:PORT via socks5h://PROXY`.
    pub fn address_label(&self) -> Option<String> {
        self.address
            .map(|a| a.to_string())
            .or_else(|| self.address_via_proxy.clone())
    }
}

/// Why the probe stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The TLS configuration could not be built (a bad --ca-file).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The dialogue itself broke.
    #[error("{source}{}", hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Session {
        /// What happened.
        source: SessionError,
        /// The likely fix, when there is one.
        hint: Option<String>,
    },
    /// The server answered a step with a reply that does not let the probe go on.
    #[error("{stage}: the server answered {code} {text:?}{}", advice.as_deref().map(|a| format!(": {a}")).unwrap_or_default())]
    Refused {
        /// The stage.
        stage: String,
        /// The reply code.
        code: u16,
        /// The reply text.
        text: String,
        /// What it means, in words.
        advice: Option<String>,
    },
    /// The server does not offer STARTTLS.
    #[error("{0}")]
    NoStartTls(String),
}

impl ProbeError {
    /// The exit status this error ends the run with.
    pub fn exit(&self) -> Exit {
        match self {
            ProbeError::Config(_) => Exit::Usage,
            ProbeError::Connect(_) => Exit::Connect,
            ProbeError::Session { source, .. } => match source {
                SessionError::Timeout { .. } => Exit::Connect,
                SessionError::Handshake { source, .. }
                    if matches!(**source, HandshakeError::Timeout) =>
                {
                    Exit::Connect
                }
                SessionError::Handshake { .. } => Exit::Tls,
                _ => Exit::Smtp,
            },
            ProbeError::Refused { .. } | ProbeError::NoStartTls(_) => Exit::Smtp,
        }
    }

    /// Whether rustls ended the handshake because of the server's certificate itself.
    pub fn is_certificate_rejection(&self) -> bool {
        match self {
            ProbeError::Session {
                source: SessionError::Handshake { source, .. },
                ..
            } => matches!(
                **source,
                HandshakeError::Tls {
                    error: rustls::Error::InvalidCertificate(_),
                    ..
                }
            ),
            _ => false,
        }
    }

    /// A short machine-readable name for the JSON report.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeError::Config(_) => "config",
            ProbeError::Connect(_) => "connect",
            ProbeError::Session { source, .. } => match source {
                SessionError::Timeout { .. } => "timeout",
                SessionError::Closed { .. } => "closed",
                SessionError::Io { .. } => "io",
                SessionError::Protocol { .. } => "protocol",
                SessionError::Injection { .. } => "injection",
                SessionError::Handshake { .. } => "tls",
            },
            ProbeError::Refused { .. } => "smtp-reply",
            ProbeError::NoStartTls(_) => "no-starttls",
        }
    }
}

/// The end of a probe: what was learned, and the error that stopped it, if any.
#[derive(Debug)]
pub struct Outcome {
    /// What was learned.
    pub findings: Findings,
    /// Why it stopped early.
    pub error: Option<ProbeError>,
}

/// Runs the shared dialogue, then — when `quit_after` lies beyond TLS — `after` (test-smtp's AUTH
/// and envelope), then QUIT. `after` sees the findings with the certificate verdict filled in.
pub fn probe_with<F>(opts: &ProbeOptions, mut transcript: Transcript, after: F) -> Outcome
where
    F: FnOnce(&mut Session, &mut Findings) -> Result<(), ProbeError>,
{
    let mut findings = Findings::default();
    let (config, verifier) = match build_client_config(&opts.tls) {
        Ok(built) => built,
        Err(e) => {
            return Outcome {
                findings,
                error: Some(e.into()),
            };
        }
    };
    transcript.info(format!("connecting to {} port {}", opts.host, opts.port));
    if let Some(proxy) = &opts.proxy {
        transcript.info(proxy_note(opts, proxy));
    }
    let connection = match open(
        &opts.host,
        opts.port,
        opts.family,
        opts.timeout,
        opts.proxy.as_ref(),
    ) {
        Ok(connected) => connected,
        Err(e) => {
            transcript.info(e.to_string());
            findings.transcript = transcript.take();
            return Outcome {
                findings,
                error: Some(e.into()),
            };
        }
    };
    findings.address = connection.peer;
    if let (None, Some(proxy)) = (connection.peer, &opts.proxy) {
        findings.address_via_proxy = Some(format!("{}:{} via {proxy}", opts.host, opts.port));
    }
    if let Some(address) = findings.address_label() {
        transcript.info(format!("connected to {address}"));
    }
    findings.ehlo_name = opts
        .ehlo_name
        .clone()
        .unwrap_or_else(|| match connection.local {
            Some(SocketAddr::V4(local)) => format!("[{}]", local.ip()),
            Some(SocketAddr::V6(local)) => format!("[IPv6:{}]", local.ip()),
            None => "localhost".to_owned(),
        });
    let mut session = Session::new(connection.stream, opts.timeout, transcript);
    let steps = Steps { opts, config };
    let result = steps
        .dialogue(&mut session, &mut findings)
        .and_then(|go_on| {
            findings.captured = verifier.captured();
            if go_on {
                after(&mut session, &mut findings)
            } else {
                Ok(())
            }
        });
    findings.captured = verifier.captured();
    let error = result.err();
    if opts.quit_after > QuitAfter::Connect && error.as_ref().is_none_or(ProbeError::may_quit) {
        session.quit();
    }
    findings.stages = std::mem::take(&mut session.stages);
    findings.transcript = session.transcript.take();
    Outcome { findings, error }
}

/// Runs the shared dialogue and QUIT: get-cert's whole probe.
pub fn probe(opts: &ProbeOptions, transcript: Transcript) -> Outcome {
    probe_with(opts, transcript, |_, _| Ok(()))
}

/// The transcript line that says the probe goes through a proxy, and what that changes.
fn proxy_note(opts: &ProbeOptions, proxy: &Proxy) -> String {
    let mut note = format!("connecting through SOCKS5 proxy {}", proxy.endpoint());
    if let Some(auth) = &proxy.auth {
        note.push_str(&format!(" as user {:?}", auth.user));
    }
    if let (Resolution::Remote, Host::Name(name)) = (proxy.resolution, &opts.host) {
        note.push_str(&format!("; the proxy resolves {name} (socks5h)"));
        if opts.family != Family::Any {
            note.push_str(", so -4/-6 cannot apply");
        }
    }
    note
}

impl ProbeError {
    /// Whether the connection is still in a state where QUIT makes sense.
    fn may_quit(&self) -> bool {
        matches!(self, ProbeError::Refused { .. } | ProbeError::NoStartTls(_))
    }
}

struct Steps<'a> {
    opts: &'a ProbeOptions,
    config: std::sync::Arc<rustls::ClientConfig>,
}

impl Steps<'_> {
    /// Runs the dialogue up to `quit_after`; `Ok(true)` when it reached the point where the
    /// subcommand's own stages may run.
    fn dialogue(&self, session: &mut Session, findings: &mut Findings) -> Result<bool, ProbeError> {
        let stop = self.opts.quit_after;
        if stop == QuitAfter::Connect {
            return Ok(false);
        }
        match self.opts.mode {
            TlsMode::Implicit => {
                findings.tls = Some(self.handshake(session, HandshakeContext::Implicit)?);
                self.banner(session, findings)?;
                if stop == QuitAfter::Banner {
                    return Ok(false);
                }
                findings.ehlo_after_tls = self.ehlo(session, findings, "ehlo-tls")?;
                Ok(stop > QuitAfter::Tls)
            }
            TlsMode::Starttls => {
                self.banner(session, findings)?;
                if stop == QuitAfter::Banner {
                    return Ok(false);
                }
                let caps = self.ehlo(session, findings, "ehlo")?;
                let offered = caps.as_ref().is_some_and(Capabilities::starttls);
                findings.ehlo_before_tls = caps;
                if stop == QuitAfter::Ehlo {
                    return Ok(false);
                }
                if !offered {
                    let advice = self.no_starttls_advice(findings.helo_fallback);
                    if self.opts.require_tls {
                        return Err(ProbeError::NoStartTls(advice));
                    }
                    session.transcript.info(format!(
                        "{advice}; going on WITHOUT TLS as --allow-plaintext-auth asks"
                    ));
                    return Ok(stop > QuitAfter::Tls);
                }
                let reply = session
                    .command("starttls", &Command::StartTls)
                    .map_err(|e| self.session_error(e))?;
                if reply.code != 220 {
                    return Err(refused("starttls", &reply));
                }
                findings.tls = Some(self.handshake(session, HandshakeContext::AfterStartTls)?);
                // RFC 3207 §4.2: what was learned before TLS is discarded; ask again.
                findings.ehlo_after_tls = self.ehlo(session, findings, "ehlo-tls")?;
                Ok(stop > QuitAfter::Tls)
            }
        }
    }

    fn banner(&self, session: &mut Session, findings: &mut Findings) -> Result<(), ProbeError> {
        let reply = session.banner().map_err(|e| self.session_error(e))?;
        findings.banner = Some(reply.clone());
        if reply.code != 220 {
            return Err(refused("banner", &reply));
        }
        Ok(())
    }

    /// EHLO, falling back to HELO when EHLO is refused (500/502); `None` after HELO.
    fn ehlo(
        &self,
        session: &mut Session,
        findings: &mut Findings,
        stage: &str,
    ) -> Result<Option<Capabilities>, ProbeError> {
        let name = findings.ehlo_name.clone();
        let reply = session
            .command(stage, &Command::Ehlo(name.clone()))
            .map_err(|e| self.session_error(e))?;
        if reply.is_positive() {
            return Ok(Some(Capabilities::from_reply(&reply)));
        }
        if !matches!(reply.code, 500 | 502) {
            return Err(refused(stage, &reply));
        }
        session
            .transcript
            .info("EHLO refused; falling back to HELO (no ESMTP extensions, so no STARTTLS)");
        findings.helo_fallback = true;
        let helo_stage = if session.is_tls() { "helo-tls" } else { "helo" };
        let reply = session
            .command(helo_stage, &Command::Helo(name))
            .map_err(|e| self.session_error(e))?;
        if !reply.is_positive() {
            return Err(refused(helo_stage, &reply));
        }
        Ok(None)
    }

    fn handshake(
        &self,
        session: &mut Session,
        context: HandshakeContext,
    ) -> Result<TlsFacts, ProbeError> {
        session
            .start_tls(self.config.clone(), self.opts.server_name.clone(), context)
            .map_err(|e| self.session_error(e))
    }

    fn no_starttls_advice(&self, helo_fallback: bool) -> String {
        if helo_fallback {
            return "the server refused EHLO and accepted only HELO: without ESMTP there is no STARTTLS".into();
        }
        let mut text = "the server does not offer STARTTLS in its EHLO reply".to_owned();
        if self.opts.port == 465 {
            text.push_str("; port 465 normally speaks implicit TLS: use --tls implicit");
        }
        text
    }

    /// Adds the likely fix to a dialogue error.
    fn session_error(&self, source: SessionError) -> ProbeError {
        let hint = match (&source, self.opts.mode) {
            // Only when nothing came: a server dripping its greeting did send one.
            (SessionError::Timeout { stage, received: 0, .. }, TlsMode::Starttls) if stage == "banner" => Some(
                "no greeting arrived: if this port expects implicit TLS (as 465 does), use --tls implicit".to_owned(),
            ),
            (SessionError::Protocol { stage, .. }, TlsMode::Starttls) if stage == "banner" => {
                Some("if this port expects implicit TLS (as 465 does), use --tls implicit".to_owned())
            }
            _ => None,
        };
        ProbeError::Session { source, hint }
    }
}

fn refused(stage: &str, reply: &Reply) -> ProbeError {
    let advice = match (stage, reply.code) {
        (_, 421) => Some(
            "service not available: the server is closing the connection (overloaded, rate-limited, or refusing this client)",
        ),
        ("starttls", 454) => {
            Some("TLS not available due to a temporary reason on the server (RFC 3207)")
        }
        ("starttls", 502 | 500) => Some("the server does not implement STARTTLS"),
        (_, 554) => Some("transaction failed: the server refuses this client"),
        _ => None,
    };
    ProbeError::Refused {
        stage: stage.into(),
        code: reply.code,
        text: reply.text(),
        advice: advice.map(str::to_owned),
    }
}
