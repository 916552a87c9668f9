//! Certificates that aws-lc (behind rcgen and rustls) refuses to make, made at test time with
//! RustCrypto: a leaf with a 1024-bit RSA key, with the rustls signer that lets the fake server
//! use it, and a leaf signed with SHA-1 (`sha1WithRSAEncryption`, RFC 3279 §2.2.1) by an RSA CA.

use std::sync::Arc;

use rcgen::CertificateParams;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _};
use rsa::pss::BlindedSigningKey;
use rsa::rand_core::OsRng;
use rsa::sha2::Sha256;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _, Signer as _};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use x509_cert::der::asn1::{Any, BitString, Null, ObjectIdentifier};
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::pki::{Ca, Leaf};

/// sha1WithRSAEncryption.
const SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.5");

/// A certificate from `params` for a fresh 1024-bit RSA key, signed by `ca`. The fake server
/// signs its handshake with RSA-PSS-SHA256 through RustCrypto, since aws-lc loads no RSA key
/// under 2048 bits; a client that refuses such keys fails the handshake after seeing the chain.
pub fn rsa_1024_leaf(ca: &Ca, params: &CertificateParams) -> Leaf {
    let key = RsaPrivateKey::new(&mut OsRng, 1024).expect("generate an RSA-1024 key");
    let spki = key
        .to_public_key()
        .to_public_key_der()
        .expect("encode the RSA-1024 public key");
    let spki = rcgen::SubjectPublicKeyInfo::from_der(spki.as_bytes())
        .expect("rcgen reads the RSA-1024 public key");
    let cert = ca.issue_for_key(params, &spki);
    let pkcs8 = key.to_pkcs8_der().expect("encode the RSA-1024 key");
    Leaf::from_parts(cert, pkcs8.as_bytes().to_vec())
        .with_signer(Arc::new(RsaPss(BlindedSigningKey::new(key))))
}

/// A certificate from `params` with a fresh P-256 key, signed by `ca` (an [`Ca::rsa_root`])
/// with SHA-1: rcgen signs it with SHA-256, then the signature algorithm is changed to
/// sha1WithRSAEncryption in both places and the TBSCertificate signed again.
pub fn sha1_signed_leaf(ca: &Ca, params: &CertificateParams) -> Leaf {
    let leaf = ca.issue(params);
    let ca_key = RsaPrivateKey::from_pkcs8_der(&ca.key_pkcs8()).expect("the CA key is RSA");
    let mut cert = x509_cert::Certificate::from_der(&leaf.der()).expect("parse the leaf");
    let algorithm = AlgorithmIdentifierOwned {
        oid: SHA1_WITH_RSA,
        parameters: Some(Any::from(Null)),
    };
    cert.tbs_certificate.signature = algorithm.clone();
    cert.signature_algorithm = algorithm;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .expect("encode the TBSCertificate");
    let signature = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(ca_key).sign(&tbs);
    cert.signature =
        BitString::from_bytes(&signature.to_bytes()).expect("the signature as a BIT STRING");
    leaf.with_certificate(cert.to_der().expect("encode the certificate"))
}

/// An RSA key that signs TLS handshakes with RSA-PSS-SHA256 (TLS 1.3 and 1.2).
#[derive(Debug, Clone)]
struct RsaPss(BlindedSigningKey<Sha256>);

impl SigningKey for RsaPss {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::RSA_PSS_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::RSA
    }
}

impl Signer for RsaPss {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(self.0.sign_with_rng(&mut OsRng, message).to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::RSA_PSS_SHA256
    }
}
