//! Certificates for tests, generated at test time with rcgen (ECDSA P-256 keys).
//!
//! [`TestPki`] is a throw-away certificate authority. It issues the leaves the fake SMTP server
//! presents: a valid one for every loopback name, an expired one, a wrong-name one, one issued
//! through an intermediate, and (without the CA) a self-signed one. Nothing here touches the
//! network or a fixed file: the CA is written only where a test asks, for `--ca-file`.
//!
//! For chains with more shape, [`Ca`] is any issuing authority (a root, or an intermediate it
//! signs, valid until a chosen date), [`leaf_params`] the usual leaf settings to adjust, and
//! [`Leaf::followed_by`] chooses what the server sends after the leaf: nothing, the intermediate,
//! or certificates out of order. [`ca_issuers_extension`] adds an Authority Information Access
//! URI (text only: nothing ever fetches it).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, RsaKeySize, date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// The names a [`TestPki::leaf`] is valid for: every way a test can reach loopback.
pub const LOOPBACK_NAMES: &[&str] = &["localhost", "mx.smtptls.test", "127.0.0.1", "::1"];

/// A name that none of the loopback addresses or `localhost` matches.
pub const WRONG_NAME: &str = "wrong-host.smtptls.test";

/// A certificate chain as a server sends it (leaf first) and the leaf's private key.
#[derive(Clone)]
pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    signer: Option<Arc<dyn rustls::sign::SigningKey>>,
}

impl Leaf {
    /// A leaf from its certificate (DER) and its private key (PKCS#8); the server sends the
    /// certificate alone.
    pub fn from_parts(cert_der: Vec<u8>, key_pkcs8: Vec<u8>) -> Self {
        Self {
            chain: vec![CertificateDer::from(cert_der)],
            key_pkcs8,
            signer: None,
        }
    }

    /// The same leaf, with the server signing the handshake through `signer` instead of loading
    /// the PKCS#8 key into rustls' provider (for keys aws-lc refuses, such as RSA-1024).
    pub fn with_signer(mut self, signer: Arc<dyn rustls::sign::SigningKey>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The same leaf and key with its certificate replaced (e.g. re-signed by another library).
    pub fn with_certificate(mut self, cert_der: Vec<u8>) -> Self {
        self.chain[0] = CertificateDer::from(cert_der);
        self
    }

    /// The handshake signer set by [`Leaf::with_signer`], if any.
    pub fn signer(&self) -> Option<Arc<dyn rustls::sign::SigningKey>> {
        self.signer.clone()
    }

    /// The same leaf, with the server sending exactly these certificates (DER) after it, in this
    /// order: none to leave out an intermediate, or any order at all.
    pub fn followed_by(mut self, certs: &[Vec<u8>]) -> Self {
        self.chain.truncate(1);
        self.chain
            .extend(certs.iter().map(|der| CertificateDer::from(der.clone())));
        self
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.chain[0].to_vec()
    }

    /// The leaf certificate, PEM (`-----BEGIN CERTIFICATE-----`).
    pub fn pem(&self) -> String {
        to_pem(&self.chain[0])
    }

    /// Every certificate the server sends, leaf first, DER.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        self.chain.iter().map(|c| c.to_vec()).collect()
    }

    /// Every certificate the server sends, as rustls wants them.
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.chain.clone()
    }

    /// The leaf's private key (PKCS#8), as rustls wants it.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The SHA-256 fingerprint of the leaf as the CLI prints it: uppercase hex, colon-separated.
    pub fn sha256_fingerprint(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(&self.chain[0]);
        digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The SHA-256 of the leaf's SubjectPublicKeyInfo: the data of a DANE-EE `3 1 1` TLSA record
    /// (RFC 7671 §5.1).
    pub fn spki_sha256(&self) -> Vec<u8> {
        use sha2::Digest as _;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&self.chain[0]).expect("parse the test leaf");
        sha2::Sha256::digest(cert.tbs_certificate.subject_pki.raw).to_vec()
    }
}

/// A certificate authority that issues certificates: a self-signed root, or an intermediate
/// another [`Ca`] signed.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    /// The rcgen issuer, for signing certificates by hand.
    pub fn issuer(&self) -> &CertifiedIssuer<'static, KeyPair> {
        &self.issuer
    }

    /// A self-signed root CA, `CN=<common_name>`, with an ECDSA P-256 key.
    pub fn root(common_name: &str) -> Self {
        let issuer = CertifiedIssuer::self_signed(ca_params(common_name), key())
            .expect("self-sign a test root CA");
        Self { issuer }
    }

    /// A self-signed root CA with a 2048-bit RSA key (signing with sha256WithRSAEncryption).
    pub fn rsa_root(common_name: &str) -> Self {
        let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            .expect("generate an RSA-2048 key");
        let issuer = CertifiedIssuer::self_signed(ca_params(common_name), key)
            .expect("self-sign an RSA test root CA");
        Self { issuer }
    }

    /// An intermediate CA, `CN=<common_name>`, signed by this one and valid until `not_after`.
    pub fn intermediate(&self, common_name: &str, not_after: OffsetDateTime) -> Ca {
        let mut params = ca_params(common_name);
        params.not_after = not_after;
        let issuer = CertifiedIssuer::signed_by(params, key(), &self.issuer)
            .expect("sign an intermediate CA");
        Ca { issuer }
    }

    /// A certificate from `params` with a fresh ECDSA P-256 key, signed by this CA; the server
    /// sends it alone (see [`Leaf::followed_by`]).
    pub fn issue(&self, params: &CertificateParams) -> Leaf {
        let key = key();
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a test certificate");
        Leaf::from_parts(cert.der().to_vec(), key.serialize_der())
    }

    /// A certificate from `params` for this public key (any key rcgen can describe, e.g. an
    /// RSA-1024 SubjectPublicKeyInfo), signed by this CA.
    pub fn issue_for_key(
        &self,
        params: &CertificateParams,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Vec<u8> {
        params
            .signed_by(public_key, &self.issuer)
            .expect("sign a test certificate")
            .der()
            .to_vec()
    }

    /// This CA's certificate, DER.
    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// This CA's certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// This CA's private key, PKCS#8 DER (to sign with another library).
    pub fn key_pkcs8(&self) -> Vec<u8> {
        self.issuer.key().serialize_der()
    }

    /// Write this CA's certificate as PEM to `path` (for `--ca-file`).
    pub fn write_pem(&self, path: &Path) {
        fs::write(path, self.pem()).expect("write a test CA file");
    }
}

/// A test certificate authority (self-signed root) that issues [`Leaf`]s.
pub struct TestPki {
    ca: Ca,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A fresh root CA, `CN=smtptls test root CA`.
    pub fn new() -> Self {
        Self::named("smtptls test root CA")
    }

    /// A fresh root CA, `CN=<common_name>` (to tell two test CAs apart).
    pub fn named(common_name: &str) -> Self {
        Self {
            ca: Ca::root(common_name),
        }
    }

    /// The root CA, to issue intermediates and certificates of any shape.
    pub fn root(&self) -> &Ca {
        &self.ca
    }

    /// The root CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der()
    }

    /// The root CA certificate, PEM: what `--ca-file` reads.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Write the root CA as PEM to `dir/ca.pem` and return that path (for `--ca-file`).
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        self.ca.write_pem(&path);
        path
    }

    /// A valid leaf for [`LOOPBACK_NAMES`] (`localhost`, `mx.smtptls.test`, `127.0.0.1`, `::1`).
    pub fn leaf(&self) -> Leaf {
        self.leaf_for(LOOPBACK_NAMES)
    }

    /// A valid leaf for the given DNS names and IP addresses (the first is also the CN).
    pub fn leaf_for(&self, names: &[&str]) -> Leaf {
        self.ca.issue(&leaf_params(names))
    }

    /// A leaf for [`LOOPBACK_NAMES`] that expired on 2021-01-01 (valid from 2020-01-01).
    pub fn expired_leaf(&self) -> Leaf {
        self.expired_leaf_for(LOOPBACK_NAMES)
    }

    /// A leaf for the given names that expired on 2021-01-01 (valid from 2020-01-01).
    pub fn expired_leaf_for(&self, names: &[&str]) -> Leaf {
        let mut params = leaf_params(names);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
        self.ca.issue(&params)
    }

    /// A leaf for [`LOOPBACK_NAMES`] valid for 60 more days, sent with its intermediate
    /// (`CN=smtptls short-lived intermediate CA`), which expires in `days` days and 1 hour: its
    /// `days_left` is `days` for the whole test, and it expires first.
    pub fn short_lived_intermediate_leaf(&self, days: i64) -> Leaf {
        let intermediate = self.ca.intermediate(
            "smtptls short-lived intermediate CA",
            days_from_now(days, 1),
        );
        let mut params = leaf_params(LOOPBACK_NAMES);
        params.not_after = days_from_now(60, 1);
        intermediate
            .issue(&params)
            .followed_by(&[intermediate.der()])
    }

    /// A valid, trusted leaf for [`WRONG_NAME`] only: the name check must fail.
    pub fn wrong_name_leaf(&self) -> Leaf {
        self.leaf_for(&[WRONG_NAME])
    }

    /// A leaf for [`LOOPBACK_NAMES`] issued by an intermediate CA that the root issued; the
    /// chain is `[leaf, intermediate]`, the order a server sends it.
    pub fn chain_leaf(&self) -> Leaf {
        let intermediate = self
            .ca
            .intermediate("smtptls test intermediate CA", date_time_ymd(2099, 1, 1));
        intermediate
            .issue(&leaf_params(LOOPBACK_NAMES))
            .followed_by(&[intermediate.der()])
    }
}

impl TestPki {
    /// A leaf for [`LOOPBACK_NAMES`] at the end of a chain of `intermediates` CAs, each issued by
    /// the one before (the first by the root): the server sends `intermediates + 1` certificates,
    /// leaf first, and the path is far longer than any verifier follows.
    pub fn long_chain_leaf(&self, intermediates: usize) -> Leaf {
        let mut cas: Vec<CertifiedIssuer<'static, KeyPair>> = Vec::new();
        for i in 1..=intermediates {
            let params = ca_params(&format!("smtptls test intermediate CA {i}"));
            let ca = match cas.last() {
                Some(parent) => CertifiedIssuer::signed_by(params, key(), parent),
                None => CertifiedIssuer::signed_by(params, key(), self.ca.issuer()),
            }
            .expect("sign an intermediate CA");
            cas.push(ca);
        }
        let key = key();
        let leaf = match cas.last() {
            Some(issuer) => leaf_params(LOOPBACK_NAMES).signed_by(&key, issuer),
            None => leaf_params(LOOPBACK_NAMES).signed_by(&key, self.ca.issuer()),
        }
        .expect("sign the leaf of a long chain");
        let chain = std::iter::once(leaf.der().clone())
            .chain(cas.iter().rev().map(|ca| ca.der().clone()))
            .collect();
        Leaf {
            chain,
            key_pkcs8: key.serialize_der(),
            signer: None,
        }
    }

    /// A valid leaf for [`LOOPBACK_NAMES`] padded to more than `bytes` bytes by a private,
    /// non-critical extension (as a server stuffing its certificate would).
    pub fn huge_leaf(&self, bytes: usize) -> Leaf {
        let mut params = leaf_params(LOOPBACK_NAMES);
        // 1.3.6.1.4.1.32473 is the documentation-only private enterprise number (RFC 5612).
        let padding = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 32473, 1],
            der_octet_string(&vec![b'x'; bytes]),
        );
        params.custom_extensions.push(padding);
        let key = key();
        let cert = params
            .signed_by(&key, self.ca.issuer())
            .expect("sign a huge leaf");
        Leaf {
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
            signer: None,
        }
    }
}

/// `content` as a DER OCTET STRING.
fn der_octet_string(content: &[u8]) -> Vec<u8> {
    let mut der = vec![0x04];
    match u8::try_from(content.len()) {
        Ok(short) if short < 0x80 => der.push(short),
        _ => {
            let len = content.len().to_be_bytes();
            let len: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
            der.push(0x80 | u8::try_from(len.len()).expect("a length of a few bytes"));
            der.extend_from_slice(&len);
        }
    }
    der.extend_from_slice(content);
    der
}

/// A self-signed leaf for [`LOOPBACK_NAMES`], issued by no [`TestPki`].
pub fn self_signed_leaf() -> Leaf {
    self_signed_leaf_for(LOOPBACK_NAMES)
}

/// A self-signed leaf for the given DNS names and IP addresses, issued by no [`TestPki`].
pub fn self_signed_leaf_for(names: &[&str]) -> Leaf {
    let key = key();
    let cert = leaf_params(names)
        .self_signed(&key)
        .expect("self-sign a leaf");
    Leaf::from_parts(cert.der().to_vec(), key.serialize_der())
}

/// `now` moved by `days` whole days (negative: in the past) and `hours` hours, for validity
/// dates relative to the test run.
pub fn days_from_now(days: i64, hours: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days) + time::Duration::hours(hours)
}

/// An Authority Information Access extension (RFC 5280 §4.2.2.1, OID 1.3.6.1.5.5.7.1.1) whose
/// one access description is caIssuers (1.3.6.1.5.5.7.48.2) at this URI.
pub fn ca_issuers_extension(uri: &str) -> CustomExtension {
    const CA_ISSUERS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let method = der_tlv(0x06, CA_ISSUERS);
    let location = der_tlv(0x86, uri.as_bytes()); // [6] IMPLICIT IA5String: uniformResourceIdentifier
    let description = der_tlv(0x30, &[method, location].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der_tlv(0x30, &description))
}

/// One DER tag-length-value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(u8::try_from(len).expect("short length"));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).expect("length of length"));
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// PEM-encode one certificate the way every tool writes it.
pub fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Decode every `CERTIFICATE` block of a PEM text, in order, to DER.
pub fn pem_certificates(text: &str) -> Vec<Vec<u8>> {
    pem::parse_many(text)
        .expect("parse PEM")
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect()
}

fn key() -> KeyPair {
    KeyPair::generate().expect("generate an ECDSA P-256 key")
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "smtptls tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    params
}

/// The settings of a [`TestPki::leaf`] for these names (the first is also the CN), valid
/// 2020–2099: adjust them, then [`Ca::issue`].
pub fn leaf_params(names: &[&str]) -> CertificateParams {
    let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(sans).expect("valid subject alternative names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("smtptls test leaf"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "smtptls tests");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    params
}
