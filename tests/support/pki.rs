//! Certificates for tests, generated at test time with rcgen (ECDSA P-256 keys).
//!
//! [`TestPki`] is a throw-away certificate authority. It issues the leaves the fake SMTP server
//! presents: a valid one for every loopback name, an expired one, a wrong-name one, one issued
//! through an intermediate, and (without the CA) a self-signed one. Nothing here touches the
//! network or a fixed file: the CA is written only where a test asks, for `--ca-file`.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The names a [`TestPki::leaf`] is valid for: every way a test can reach loopback.
pub const LOOPBACK_NAMES: &[&str] = &["localhost", "mx.smtptls.test", "127.0.0.1", "::1"];

/// A name that none of the loopback addresses or `localhost` matches.
pub const WRONG_NAME: &str = "wrong-host.smtptls.test";

/// A certificate chain as a server sends it (leaf first) and the leaf's private key.
pub struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl Leaf {
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
}

/// A test certificate authority (self-signed root) that issues [`Leaf`]s.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// A fresh root CA, `CN=smtptls test root CA`.
    pub fn new() -> Self {
        let ca = CertifiedIssuer::self_signed(ca_params("smtptls test root CA"), key())
            .expect("self-sign the test root CA");
        Self { ca }
    }

    /// The root CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// The root CA certificate, PEM: what `--ca-file` reads.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Write the root CA as PEM to `dir/ca.pem` and return that path (for `--ca-file`).
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        fs::write(&path, self.ca_pem()).expect("write the test CA file");
        path
    }

    /// A valid leaf for [`LOOPBACK_NAMES`] (`localhost`, `mx.smtptls.test`, `127.0.0.1`, `::1`).
    pub fn leaf(&self) -> Leaf {
        self.leaf_for(LOOPBACK_NAMES)
    }

    /// A valid leaf for the given DNS names and IP addresses (the first is also the CN).
    pub fn leaf_for(&self, names: &[&str]) -> Leaf {
        let params = leaf_params(names);
        let key = key();
        let cert = params.signed_by(&key, &self.ca).expect("sign a test leaf");
        Leaf {
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    }

    /// A leaf for [`LOOPBACK_NAMES`] that expired on 2021-01-01 (valid from 2020-01-01).
    pub fn expired_leaf(&self) -> Leaf {
        let mut params = leaf_params(LOOPBACK_NAMES);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
        let key = key();
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("sign an expired leaf");
        Leaf {
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    }

    /// A valid, trusted leaf for [`WRONG_NAME`] only: the name check must fail.
    pub fn wrong_name_leaf(&self) -> Leaf {
        self.leaf_for(&[WRONG_NAME])
    }

    /// A leaf for [`LOOPBACK_NAMES`] issued by an intermediate CA that the root issued; the
    /// chain is `[leaf, intermediate]`, the order a server sends it.
    pub fn chain_leaf(&self) -> Leaf {
        let intermediate =
            CertifiedIssuer::signed_by(ca_params("smtptls test intermediate CA"), key(), &self.ca)
                .expect("sign the intermediate CA");
        let key = key();
        let leaf = leaf_params(LOOPBACK_NAMES)
            .signed_by(&key, &intermediate)
            .expect("sign a leaf with the intermediate");
        Leaf {
            chain: vec![leaf.der().clone(), intermediate.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
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
                None => CertifiedIssuer::signed_by(params, key(), &self.ca),
            }
            .expect("sign an intermediate CA");
            cas.push(ca);
        }
        let key = key();
        let leaf = match cas.last() {
            Some(issuer) => leaf_params(LOOPBACK_NAMES).signed_by(&key, issuer),
            None => leaf_params(LOOPBACK_NAMES).signed_by(&key, &self.ca),
        }
        .expect("sign the leaf of a long chain");
        let chain = std::iter::once(leaf.der().clone())
            .chain(cas.iter().rev().map(|ca| ca.der().clone()))
            .collect();
        Leaf {
            chain,
            key_pkcs8: key.serialize_der(),
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
        let cert = params.signed_by(&key, &self.ca).expect("sign a huge leaf");
        Leaf {
            chain: vec![cert.der().clone()],
            key_pkcs8: key.serialize_der(),
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
    let key = key();
    let cert = leaf_params(LOOPBACK_NAMES)
        .self_signed(&key)
        .expect("self-sign a leaf");
    Leaf {
        chain: vec![cert.der().clone()],
        key_pkcs8: key.serialize_der(),
    }
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

fn leaf_params(names: &[&str]) -> CertificateParams {
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
