//! rustls client configuration: trust anchors (Mozilla's via webpki-roots, plus `--ca-file`), the
//! optional TLS version pin, and the capturing verifier.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

use super::verifier::CapturingVerifier;

/// A TLS protocol version the user may pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

/// Which built-in trust stores to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trust {
    /// Mozilla's roots (webpki-roots).
    #[default]
    Mozilla,
    /// The operating system's store (rustls-native-certs).
    System,
    /// Both.
    Both,
}

/// What the client configuration is built from.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// PEM files whose certificates are added as trust anchors.
    pub ca_files: Vec<PathBuf>,
    /// Allow only this version; `None` allows 1.2 and 1.3.
    pub version: Option<TlsVersion>,
    /// Whether to send SNI.
    pub send_sni: bool,
    /// The built-in trust stores.
    pub trust: Trust,
    /// Check the certificate against this name instead of the one the connection presents.
    pub verify_name: Option<ServerName<'static>>,
}

/// Why a client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A CA file could not be read or holds no usable certificate.
    #[error("--ca-file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The system trust store could not be read.
    #[error("--trust system: the operating system's trust store could not be read: {0}")]
    SystemStore(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the client configuration and returns it with its verifier, whose record the caller
/// reads after the handshake.
pub fn build_client_config(
    settings: &ClientSettings,
) -> Result<(Arc<ClientConfig>, Arc<CapturingVerifier>), ConfigError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    if matches!(settings.trust, Trust::Mozilla | Trust::Both) {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if matches!(settings.trust, Trust::System | Trust::Both) {
        add_system_roots(&mut roots)?;
    }
    let mut pinned = Vec::new();
    for path in &settings.ca_files {
        pinned.extend(add_ca_file(&mut roots, path)?);
    }
    let verifier = Arc::new(CapturingVerifier::new(
        Arc::new(roots),
        pinned,
        settings.verify_name.clone(),
        provider.signature_verification_algorithms,
    ));
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.version {
        None => rustls::DEFAULT_VERSIONS,
        Some(TlsVersion::V1_2) => &[&rustls::version::TLS12],
        Some(TlsVersion::V1_3) => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.enable_sni = settings.send_sni;
    Ok((Arc::new(config), verifier))
}

/// Adds the operating system's trust anchors; an empty system store is an error, not a silent
/// "nothing verifies".
fn add_system_roots(roots: &mut RootCertStore) -> Result<(), ConfigError> {
    let loaded = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let why = loaded
            .errors
            .first()
            .map_or_else(|| "no certificates found".to_owned(), ToString::to_string);
        return Err(ConfigError::SystemStore(why));
    }
    Ok(())
}

/// Adds the file's certificates as trust anchors and returns them (also used for the MTA-STS
/// policy host, so `--ca-file` means the same everywhere).
pub(crate) fn add_ca_file(
    roots: &mut RootCertStore,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let fail = |reason: String| ConfigError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found".into(),
        ));
    }
    let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(fail(format!(
            "none of its {ignored} certificate(s) could be used as a trust anchor"
        )));
    }
    Ok(certs)
}
