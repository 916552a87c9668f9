//! The HTTPS fetch of an MTA-STS policy (RFC 8461 §3.3) with ureq on rustls.
//!
//! `GET https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, where the certificate must verify
//! against Mozilla's roots and any `--ca-file` for the name `mta-sts.DOMAIN`; redirects are
//! refused, only 200 counts, the policy must be `text/plain` (§3.2) and at most 64 KiB, and the
//! whole exchange is bounded by one timeout.
//!
//! ureq brings the HTTP/1.1; two of its parts are ours. The policy host is resolved through the
//! caller's resolver ([`PolicyResolver`]), so `--resolver` applies and tests can point it at
//! loopback. The TLS layer is a small connector ([`PolicyTls`]) that runs rustls with our own
//! `ClientConfig` (aws-lc-rs, webpki roots plus CA files, rustls' standard verifier): ureq's
//! `TlsConfig` cannot hold Mozilla's roots and extra CA files at once without a crate of root
//! certificates. Both use ureq's `unversioned` API, which may change in a minor ureq release.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{DnsName, ServerName};
use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, TcpConnector, Transport,
    TransportAdapter,
};

use super::{FetchSettings, MAX_POLICY_BYTES, ResolveFn, StsError, quote};
use crate::tls::explain::certificate_error;

/// The most addresses ureq takes from a resolver.
const MAX_ADDRS: usize = 16;

/// The URL of a domain's policy (RFC 8461 §3.3); the port is left out when it is 443.
pub fn policy_url(domain: &str, port: u16) -> String {
    let host = policy_host(domain);
    if port == 443 {
        format!("https://{host}/.well-known/mta-sts.txt")
    } else {
        format!("https://{host}:{port}/.well-known/mta-sts.txt")
    }
}

fn policy_host(domain: &str) -> String {
    format!("mta-sts.{}", domain.strip_suffix('.').unwrap_or(domain))
}

/// Fetches the policy text of `domain` from `https://mta-sts.{domain}/.well-known/mta-sts.txt`
/// (RFC 8461 §3.3). The text is returned unparsed; see [`super::parse_policy`].
pub fn fetch_policy(domain: &str, settings: &FetchSettings) -> Result<String, StsError> {
    let host = policy_host(domain);
    let bare = domain.strip_suffix('.').unwrap_or(domain);
    if bare.is_empty() || bare.ends_with('.') || DnsName::try_from(host.as_str()).is_err() {
        return Err(StsError::InvalidDomain(domain.to_owned()));
    }
    let tls = PolicyTls {
        config: client_config(settings)?,
    };
    let resolver = PolicyResolver {
        resolve: Arc::clone(&settings.resolve),
    };
    let agent = Agent::with_parts(
        agent_config(settings),
        ().chain(TcpConnector::default()).chain(tls),
        resolver,
    );
    let url = policy_url(domain, settings.port);
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| call_error(e, &host, settings))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get("location")
            .map(|l| quote(&String::from_utf8_lossy(l.as_bytes())));
        return Err(StsError::Redirect {
            status: status.as_u16(),
            location,
        });
    }
    if status.as_u16() != 200 {
        return Err(StsError::HttpStatus(status.as_u16()));
    }
    check_content_type(
        response
            .headers()
            .get("content-type")
            .map(ureq::http::HeaderValue::as_bytes),
    )?;
    let limit = u64::try_from(MAX_POLICY_BYTES).unwrap_or(u64::MAX);
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| call_error(e, &host, settings))?;
    String::from_utf8(body)
        .map_err(|_| StsError::InvalidPolicy("the policy is not UTF-8 text".to_owned()))
}

/// The policy must be `text/plain`, with any parameters (RFC 8461 §3.2).
fn check_content_type(value: Option<&[u8]>) -> Result<(), StsError> {
    let Some(value) = value else {
        return Err(StsError::ContentType(None));
    };
    let value = String::from_utf8_lossy(value);
    let media_type = value.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("text/plain") {
        Ok(())
    } else {
        Err(StsError::ContentType(Some(quote(&value))))
    }
}

/// ureq's settings: no redirects, statuses as responses, HTTPS only, no proxy, one deadline.
fn agent_config(settings: &FetchSettings) -> Config {
    Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .https_only(true)
        .proxy(None)
        .timeout_global(Some(settings.timeout))
        .user_agent(concat!("smtptls/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// rustls with aws-lc-rs, Mozilla's roots plus the CA files, and rustls' own (strict) verifier.
fn client_config(settings: &FetchSettings) -> Result<Arc<ClientConfig>, StsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in &settings.ca_files {
        add_ca_file(&mut roots, path)?;
    }
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StsError::Fetch(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Adds the file's certificates as trust anchors, exactly as `--ca-file` does for the SMTP probe.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), StsError> {
    crate::tls::config::add_ca_file(roots, path)
        .map(drop)
        .map_err(|e| match e {
            crate::tls::config::ConfigError::CaFile { path, reason } => {
                StsError::CaFile { path, reason }
            }
            other => StsError::Fetch(other.to_string()),
        })
}

/// A failed resolution, carried through ureq as [`ureq::Error::Other`].
#[derive(Debug)]
struct ResolveFailed(String);

impl fmt::Display for ResolveFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ResolveFailed {}

/// Plain words for what went wrong in the request.
fn call_error(err: ureq::Error, host: &str, settings: &FetchSettings) -> StsError {
    match err {
        ureq::Error::Rustls(e @ rustls::Error::InvalidCertificate(_)) => {
            StsError::Certificate(certificate_error(&e))
        }
        ureq::Error::Rustls(e) => StsError::Fetch(format!("TLS with {host}: {e}")),
        ureq::Error::Timeout(_) => StsError::Timeout(settings.timeout),
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            StsError::Timeout(settings.timeout)
        }
        ureq::Error::HostNotFound => StsError::Resolve {
            host: host.to_owned(),
            reason: "no address".to_owned(),
        },
        ureq::Error::Other(e) if e.is::<ResolveFailed>() => StsError::Resolve {
            host: host.to_owned(),
            reason: e.to_string(),
        },
        ureq::Error::BodyExceedsLimit(_) => StsError::TooLarge,
        ureq::Error::Io(e) => StsError::Fetch(format!("connection to {host}: {e}")),
        other => StsError::Fetch(other.to_string()),
    }
}

/// Resolves the policy host with the caller's function, within the fetch's deadline.
struct PolicyResolver {
    resolve: Arc<ResolveFn>,
}

impl fmt::Debug for PolicyResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyResolver").finish_non_exhaustive()
    }
}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri("no host".to_owned()))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        // The caller's resolver may block; run it aside so the deadline holds.
        let resolve = Arc::clone(&self.resolve);
        let (tx, rx) = mpsc::sync_channel(1);
        thread::spawn(move || {
            let _ = tx.send(resolve(&host));
        });
        let ips = match rx.recv_timeout(*timeout.after) {
            Ok(result) => result.map_err(|why| ureq::Error::Other(Box::new(ResolveFailed(why))))?,
            Err(RecvTimeoutError::Timeout) => return Err(ureq::Error::Timeout(timeout.reason)),
            Err(RecvTimeoutError::Disconnected) => {
                return Err(ureq::Error::Other(Box::new(ResolveFailed(
                    "the resolver stopped without an answer".to_owned(),
                ))));
            }
        };
        let mut addrs = self.empty();
        for ip in ips.into_iter().take(MAX_ADDRS) {
            if addrs.try_push(SocketAddr::new(ip, port)).is_err() {
                break;
            }
        }
        if addrs.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(addrs)
    }
}

/// Wraps the TCP connection in TLS with our rustls configuration. Plain HTTP is refused.
struct PolicyTls {
    config: Arc<ClientConfig>,
}

impl fmt::Debug for PolicyTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyTls").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for PolicyTls {
    type Out = TlsTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(ureq::Error::ConnectionFailed);
        };
        if !details.needs_tls() {
            return Err(ureq::Error::TlsRequired);
        }
        let host = details
            .uri
            .host()
            .ok_or_else(|| ureq::Error::BadUri("no host".to_owned()))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| ureq::Error::Tls("the policy host is not a valid DNS name"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock).map_err(handshake_error)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(TlsTransport {
            buffers,
            stream: StreamOwned::new(conn, sock),
        }))
    }
}

/// Keeps a rustls error (a bad certificate) as such rather than as an I/O error.
fn handshake_error(err: io::Error) -> ureq::Error {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(tls) => ureq::Error::Rustls(tls),
        None => ureq::Error::from(err),
    }
}

/// A TLS connection as ureq's transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or(ureq::Error::ConnectionFailed)?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
