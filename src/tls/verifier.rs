//! A certificate verifier that records instead of refusing.
//!
//! **Warning:** this verifier lets the handshake finish even when the server's certificate does
//! not chain to a trust anchor or does not match the name. That is what a probe needs — the
//! admin must see the broken certificate — and nothing else may use it: the connection it
//! produces carries no authentication guarantee until the recorded verdict says so. It never
//! skips the handshake signature checks, so the peer did prove possession of the key in the
//! certificate it presented.
//!
//! rustls keeps no peer chain when verification fails, so the chain is copied here, then the chain
//! check (`verify_server_cert_signed_by_trust_anchor`) and the name check (`verify_server_name`)
//! run separately and both verdicts are recorded.

use std::sync::{Arc, Mutex, PoisonError};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// What the verifier saw and concluded during one handshake.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Every certificate the server sent, in the order sent (leaf first).
    pub chain: Vec<CertificateDer<'static>>,
    /// Whether the chain leads to a trust anchor, and if not why.
    pub chain_result: Result<(), Error>,
    /// The name the leaf was checked against.
    pub name_checked: String,
    /// Whether the leaf is valid for that name, and if not why.
    pub name_result: Result<(), Error>,
    /// Whether the server stapled an OCSP response.
    pub ocsp_stapled: bool,
    /// The time the checks were made against.
    pub now: UnixTime,
    /// For each certificate of `chain`: whether its issuer is the subject of a trust anchor
    /// (`None` when the certificate could not be parsed).
    pub issuer_is_anchor: Vec<Option<bool>>,
}

/// A [`ServerCertVerifier`] that records the chain and both verdicts, and lets the handshake go on.
#[derive(Debug)]
pub struct CapturingVerifier {
    roots: Arc<RootCertStore>,
    /// Certificates the user named as trusted (`--ca-file`); a leaf among them is trusted as it
    /// is, the way `openssl s_client -CAfile` trusts a self-signed server certificate.
    pinned: Vec<CertificateDer<'static>>,
    /// The name to check instead of the one the connection presents (`--verify-name`).
    verify_name: Option<ServerName<'static>>,
    algorithms: WebPkiSupportedAlgorithms,
    captured: Mutex<Option<Captured>>,
}

impl CapturingVerifier {
    /// A verifier checking against `roots` with the provider's signature `algorithms`.
    /// `pinned` are the user's own trusted certificates, checked byte for byte against the leaf.
    pub fn new(
        roots: Arc<RootCertStore>,
        pinned: Vec<CertificateDer<'static>>,
        verify_name: Option<ServerName<'static>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            roots,
            pinned,
            verify_name,
            algorithms,
            captured: Mutex::new(None),
        }
    }

    /// What the last handshake presented, if it got as far as a certificate.
    pub fn captured(&self) -> Option<Captured> {
        self.captured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether `cert`'s issuer names one of the trust anchors.
    fn issuer_is_anchor(&self, cert: &CertificateDer<'_>) -> Option<bool> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let issuer = parsed.issuer().as_raw();
        let contents = tlv_contents(issuer);
        Some(self.roots.roots.iter().any(|anchor| {
            let subject = anchor.subject.as_ref();
            subject == issuer || Some(subject) == contents
        }))
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> (Result<(), Error>, Result<(), Error>) {
        match ParsedCertificate::try_from(end_entity) {
            Ok(cert) => {
                let chain = if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref())
                {
                    Ok(())
                } else {
                    verify_server_cert_signed_by_trust_anchor(
                        &cert,
                        &self.roots,
                        intermediates,
                        now,
                        self.algorithms.all,
                    )
                };
                (chain, verify_server_name(&cert, server_name))
            }
            Err(err) => (Err(err.clone()), Err(err)),
        }
    }
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let server_name = self.verify_name.as_ref().unwrap_or(server_name);
        let (chain_result, name_result) = self.check(end_entity, intermediates, server_name, now);
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| cert.clone().into_owned())
            .collect();
        let issuer_is_anchor = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|cert| self.issuer_is_anchor(cert))
            .collect();
        let captured = Captured {
            issuer_is_anchor,
            chain,
            chain_result,
            name_checked: server_name.to_str().into_owned(),
            name_result,
            ocsp_stapled: !ocsp_response.is_empty(),
            now,
        };
        *self.captured.lock().unwrap_or_else(PoisonError::into_inner) = Some(captured);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The contents of a DER TLV (what follows its tag and length), as webpki stores anchor subjects.
fn tlv_contents(tlv: &[u8]) -> Option<&[u8]> {
    let first = *tlv.get(1)?;
    let header = if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    };
    tlv.get(header..)
}

/// Verifies `chain` (leaf first) with `anchor` as the only trust anchor, and the leaf against
/// `name`: what DANE-TA(2) asks once a TLSA record has matched `anchor` (RFC 7672 §3.1.2).
pub fn verify_with_anchor(
    chain: &[CertificateDer<'static>],
    anchor: &CertificateDer<'static>,
    name: &ServerName<'_>,
) -> Result<(), Error> {
    let mut roots = RootCertStore::empty();
    roots.add(anchor.clone())?;
    let leaf = chain.first().ok_or(Error::NoCertificatesPresented)?;
    let parsed = ParsedCertificate::try_from(leaf)?;
    let algorithms =
        rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
    verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        chain.get(1..).unwrap_or_default(),
        UnixTime::now(),
        algorithms.all,
    )?;
    verify_server_name(&parsed, name)
}
