//! A readable summary of one X.509 certificate (RFC 5280 §4.1): names, validity, serial, SHA-256
//! fingerprint, key and signature algorithm, and the basic constraints CA flag.
//!
//! The DER comes from the server, possibly a hostile one: every step returns an error instead of
//! panicking, and the strings kept here are raw (a terminal renderer must sanitize them).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::der::parse_der_integer;
use x509_parser::extensions::{GeneralName, ParsedExtension, X509Extension};
use x509_parser::nom;
use x509_parser::oid_registry::{
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME, Oid,
};
use x509_parser::parse_x509_certificate;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

const SECONDS_PER_DAY: i64 = 86_400;

/// What a report shows about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// Subject name as x509-parser prints it, e.g. `CN=mx.example.com, O=Example`.
    pub subject: String,
    /// Issuer name, same format as `subject`.
    pub issuer: String,
    /// Subject alternative names in certificate order: `DNS:…`, `IP:…`, `email:…`, `URI:…`,
    /// `DirName:…`, `RID:<oid>`, `othername:<oid>`, `X400Name`, `EdiPartyName`, `invalid`.
    pub subject_alt_names: Vec<String>,
    /// Start of validity, RFC 3339 UTC (`2026-01-02T03:04:05Z`).
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whole days from `now` to `not_after`, rounded toward negative infinity: expires in 12 h
    /// gives 0, expired one second ago gives -1. Negative exactly when the certificate has expired.
    pub days_left: i64,
    /// Seconds from `now` to `not_after` (negative once expired), for exact wording; not part of
    /// the JSON report.
    #[serde(skip)]
    pub seconds_left: i64,
    /// `now` is before `not_before`.
    pub not_yet_valid: bool,
    /// Whole days from `now` to `not_before`, rounded toward negative infinity (0 when it starts
    /// later today, negative once it has started).
    pub days_until_valid: i64,
    /// Serial number as uppercase colon-separated hex, without the DER sign byte (`01:A2:…`).
    pub serial: String,
    /// SHA-256 of the DER, uppercase colon-separated hex (as `openssl x509 -fingerprint -sha256`).
    pub sha256_fingerprint: String,
    /// `RSA`, `RSA-PSS`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the dotted algorithm OID.
    pub public_key_type: String,
    /// Key size in bits: RSA/DSA modulus length, EC curve size, 256 for Ed25519, 456 for Ed448.
    pub public_key_bits: Option<u32>,
    /// Named curve of an EC key: `P-256`, `P-384`, `P-521`, `secp256k1`, else the dotted OID.
    pub public_key_curve: Option<String>,
    /// Signature algorithm by its OpenSSL name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`,
    /// `ED25519`, `rsassaPss`…), else the dotted OID.
    pub signature_algorithm: String,
    /// Subject and issuer are byte-for-byte the same name.
    pub self_signed: bool,
    /// The basic constraints extension says `cA: TRUE`.
    pub is_ca: bool,
}

/// Why a certificate could not be summarized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a valid X.509 certificate: {reason}")]
    Unparseable {
        /// The parser's explanation.
        reason: String,
    },
    /// A certificate parsed, but more bytes follow it.
    #[error("{len} unexpected byte(s) after the certificate")]
    TrailingData {
        /// How many bytes follow the certificate.
        len: usize,
    },
    /// An extension this summary relies on is malformed or present more than once.
    #[error("malformed {extension} extension: {reason}")]
    Extension {
        /// The extension's name (`subjectAltName`, `basicConstraints`).
        extension: &'static str,
        /// The parser's explanation.
        reason: String,
    },
}

/// Summarize one DER certificate, judging its validity period against `now`.
pub fn summarize(der: &[u8], now: SystemTime) -> Result<CertSummary, CertError> {
    let (rest, cert) = parse_x509_certificate(der).map_err(|e| CertError::Unparseable {
        reason: nom_reason(&e),
    })?;
    if !rest.is_empty() {
        return Err(CertError::TrailingData { len: rest.len() });
    }
    let now = unix_seconds(now);
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let key = cert.public_key();
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        subject_alt_names: subject_alt_names(&cert)?,
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        days_left: not_after.saturating_sub(now).div_euclid(SECONDS_PER_DAY),
        seconds_left: not_after.saturating_sub(now),
        not_yet_valid: now < not_before,
        days_until_valid: not_before.saturating_sub(now).div_euclid(SECONDS_PER_DAY),
        serial: serial_hex(cert.raw_serial()),
        sha256_fingerprint: colon_hex(&Sha256::digest(der)),
        public_key_type: key_type(key.algorithm.oid()),
        public_key_bits: key_bits(key),
        public_key_curve: key_curve(key),
        signature_algorithm: signature_name(cert.signature_algorithm.oid()),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        is_ca: is_ca(&cert)?,
    })
}

impl CertSummary {
    /// The validity period in words relative to the `now` given to [`summarize`]: "expires in 89
    /// days", "expires today", "expired 12 days ago", "not valid for another 3 days".
    pub fn validity_text(&self) -> String {
        if self.not_yet_valid {
            return match self.days_until_valid {
                ..=0 => "not valid until later today".to_owned(),
                1 => "not valid for another 1 day".to_owned(),
                n => format!("not valid for another {n} days"),
            };
        }
        match self.days_left {
            0 => "expires today".to_owned(),
            1 => "expires in 1 day".to_owned(),
            -1 => "expired 1 day ago".to_owned(),
            n if n < 0 => format!("expired {} days ago", n.unsigned_abs()),
            n => format!("expires in {n} days"),
        }
    }
}

/// The reason inside a nom error, without nom's debug formatting.
fn nom_reason<E: std::fmt::Display>(err: &nom::Err<E>) -> String {
    match err {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.to_string(),
        nom::Err::Incomplete(nom::Needed::Size(n)) => format!("truncated ({n} more bytes needed)"),
        nom::Err::Incomplete(nom::Needed::Unknown) => "truncated".to_owned(),
    }
}

/// The parsed value of a certificate's only extension with `oid`, `None` when absent.
fn extension<'c, 'a>(
    cert: &'c X509Certificate<'a>,
    oid: &Oid<'_>,
    name: &'static str,
) -> Result<Option<&'c ParsedExtension<'a>>, CertError> {
    let malformed = |reason: String| CertError::Extension {
        extension: name,
        reason,
    };
    let found = cert
        .get_extension_unique(oid)
        .map_err(|e| malformed(e.to_string()))?;
    match found.map(X509Extension::parsed_extension) {
        Some(ParsedExtension::ParseError { error }) => Err(malformed(nom_reason(error))),
        other => Ok(other),
    }
}

fn subject_alt_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, CertError> {
    const NAME: &str = "subjectAltName";
    match extension(cert, &OID_X509_EXT_SUBJECT_ALT_NAME, NAME)? {
        None => Ok(Vec::new()),
        Some(ParsedExtension::SubjectAlternativeName(san)) => {
            Ok(san.general_names.iter().map(general_name).collect())
        }
        Some(_) => Err(CertError::Extension {
            extension: NAME,
            reason: "not understood".to_owned(),
        }),
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> Result<bool, CertError> {
    const NAME: &str = "basicConstraints";
    match extension(cert, &OID_X509_EXT_BASIC_CONSTRAINTS, NAME)? {
        None => Ok(false),
        Some(ParsedExtension::BasicConstraints(bc)) => Ok(bc.ca),
        Some(_) => Err(CertError::Extension {
            extension: NAME,
            reason: "not understood".to_owned(),
        }),
    }
}

/// One subject alternative name in OpenSSL's prefix style.
fn general_name(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) => format!("DNS:{s}"),
        GeneralName::IPAddress(bytes) => ip_address(bytes),
        GeneralName::RFC822Name(s) => format!("email:{s}"),
        GeneralName::URI(s) => format!("URI:{s}"),
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        GeneralName::RegisteredID(oid) => format!("RID:{}", oid.to_id_string()),
        GeneralName::OtherName(oid, _) => format!("othername:{}", oid.to_id_string()),
        GeneralName::X400Address(_) => "X400Name".to_owned(),
        GeneralName::EDIPartyName(_) => "EdiPartyName".to_owned(),
        GeneralName::Invalid(..) => "invalid".to_owned(),
    }
}

fn ip_address(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        format!("IP:{}", Ipv4Addr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        format!("IP:{}", Ipv6Addr::from(v6))
    } else {
        format!("IP:<invalid {}>", hex::encode(bytes))
    }
}

/// Seconds since the Unix epoch, rounded toward negative infinity.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let before = before.duration();
            let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            let partial = i64::from(before.subsec_nanos() > 0);
            secs.saturating_add(partial).saturating_neg()
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix timestamp.
fn rfc3339(timestamp: i64) -> String {
    let days = timestamp.div_euclid(SECONDS_PER_DAY);
    let secs = timestamp.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01, after Howard
/// Hinnant's `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1st, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Uppercase hex bytes joined by `:`.
fn colon_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The serial's magnitude as OpenSSL prints it: DER leading zero bytes dropped, at least one kept.
fn serial_hex(raw: &[u8]) -> String {
    let first = raw.iter().position(|&b| b != 0);
    match first.and_then(|i| raw.get(i..)) {
        Some(magnitude) => colon_hex(magnitude),
        None => "00".to_owned(),
    }
}

/// Bit length of a big-endian unsigned integer.
fn bit_length(be: &[u8]) -> Option<u32> {
    let first = be.iter().position(|&b| b != 0)?;
    let significant = u32::try_from(be.len() - first).ok()?;
    let top = be.get(first)?;
    significant.checked_mul(8)?.checked_sub(top.leading_zeros())
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_DSA: &str = "1.2.840.10040.4.1";

fn key_type(algorithm: &Oid<'_>) -> String {
    let name = match algorithm.to_id_string().as_str() {
        OID_RSA => "RSA",
        OID_RSA_PSS => "RSA-PSS",
        OID_EC => "EC",
        OID_ED25519 => "Ed25519",
        OID_ED448 => "Ed448",
        OID_DSA => "DSA",
        other => return other.to_owned(),
    };
    name.to_owned()
}

/// (OID, name, size in bits) of the named curves a mail server might use.
const CURVES: &[(&str, &str, u32)] = &[
    ("1.2.840.10045.3.1.7", "P-256", 256),
    ("1.3.132.0.34", "P-384", 384),
    ("1.3.132.0.35", "P-521", 521),
    ("1.3.132.0.10", "secp256k1", 256),
];

/// The named curve OID in an EC key's algorithm parameters.
fn curve_oid(key: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    if key.algorithm.oid().to_id_string() != OID_EC {
        return None;
    }
    let params = key.algorithm.parameters()?;
    Oid::try_from(params).ok().map(|oid| oid.to_id_string())
}

fn key_curve(key: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    let oid = curve_oid(key)?;
    let known = CURVES.iter().find(|(o, ..)| *o == oid);
    Some(known.map_or(oid, |(_, name, _)| (*name).to_owned()))
}

fn key_bits(key: &SubjectPublicKeyInfo<'_>) -> Option<u32> {
    match key.algorithm.oid().to_id_string().as_str() {
        OID_ED25519 => return Some(256),
        OID_ED448 => return Some(456),
        // x509-parser leaves RSA-PSS keys unparsed; the key itself is an RSAPublicKey.
        OID_RSA_PSS => return rsa_modulus_bits(&key.subject_public_key.data),
        OID_DSA => return dsa_p_bits(key),
        _ => {}
    }
    if let Some(oid) = curve_oid(key) {
        if let Some((.., bits)) = CURVES.iter().find(|(o, ..)| *o == oid) {
            return Some(*bits);
        }
    }
    match key.parsed().ok()? {
        // x509-parser's own RSA size is off for moduli without a sign byte; count the bits.
        PublicKey::RSA(rsa) => bit_length(rsa.modulus),
        // Unknown curve: the field size rounded up to whole bytes.
        PublicKey::EC(point) => u32::try_from(point.key_size()).ok().filter(|&b| b > 0),
        _ => None,
    }
}

fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Option<u32> {
    use x509_parser::der_parser::der::parse_der_sequence_defined_g;
    let (_, modulus) = parse_der_sequence_defined_g(|i, _| {
        let (i, modulus) = parse_der_integer(i)?;
        Ok((i, modulus))
    })(rsa_public_key)
    .ok()?;
    bit_length(modulus.as_slice().ok()?)
}

/// DSA key size is the size of the prime `p`, the first integer of the parameters.
fn dsa_p_bits(key: &SubjectPublicKeyInfo<'_>) -> Option<u32> {
    let params = key.algorithm.parameters()?;
    let (_, p) = parse_der_integer(params.data).ok()?;
    bit_length(p.as_slice().ok()?)
}

/// Signature algorithm OIDs and their OpenSSL names.
const SIGNATURES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "rsassaPss"),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption"),
    ("1.3.14.3.2.29", "sha1WithRSA"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.3.101.112", "ED25519"),
    ("1.3.101.113", "ED448"),
    ("1.2.840.10040.4.3", "dsaWithSHA1"),
    ("2.16.840.1.101.3.4.3.1", "dsa_with_SHA224"),
    ("2.16.840.1.101.3.4.3.2", "dsa_with_SHA256"),
];

fn signature_name(algorithm: &Oid<'_>) -> String {
    let oid = algorithm.to_id_string();
    match SIGNATURES.iter().find(|(o, _)| *o == oid) {
        Some((_, name)) => (*name).to_owned(),
        None => oid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
        OtherNameValue, SanType, SerialNumber, SignatureAlgorithm,
    };
    use std::time::Duration;

    /// 2026-01-02T03:04:05Z
    const NOT_BEFORE: i64 = 1_767_323_045;
    /// 2026-04-02T03:04:05Z
    const NOT_AFTER: i64 = 1_775_099_045;
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;

    fn at(unix: i64) -> SystemTime {
        let secs = Duration::from_secs(unix.unsigned_abs());
        if unix >= 0 {
            UNIX_EPOCH + secs
        } else {
            UNIX_EPOCH - secs
        }
    }

    fn params(cn: &str, serial: &[u8]) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Example");
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.not_before =
            rcgen::date_time_ymd(2026, 1, 2) + Duration::from_secs(3 * 3600 + 4 * 60 + 5);
        params.not_after =
            rcgen::date_time_ymd(2026, 4, 2) + Duration::from_secs(3 * 3600 + 4 * 60 + 5);
        params
    }

    fn self_signed(alg: &'static SignatureAlgorithm) -> Vec<u8> {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = params("self.example", &[7]).self_signed(&key).unwrap();
        cert.der().to_vec()
    }

    /// A P-384 CA and an RSA-2048 leaf it signs: (ca DER, leaf DER).
    fn ca_and_leaf() -> (Vec<u8>, Vec<u8>) {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut ca_params = params("Example Test CA", &[0x8F, 0x00]);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let mut leaf_params = params("mx.example.com", &[0x01, 0xA2, 0xB3]);
        leaf_params.subject_alt_names = vec![
            SanType::DnsName("mx.example.com".try_into().unwrap()),
            SanType::IpAddress("192.0.2.1".parse().unwrap()),
            SanType::IpAddress("2001:db8::1".parse().unwrap()),
            SanType::Rfc822Name("postmaster@example.com".try_into().unwrap()),
            SanType::URI("https://example.com/".try_into().unwrap()),
            SanType::OtherName((
                vec![1, 3, 6, 1, 5, 5, 7, 8, 9],
                OtherNameValue::Utf8String("postmaster@example.com".to_owned()),
            )),
        ];
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        (ca.der().to_vec(), leaf.der().to_vec())
    }

    /// Fingerprint computed independently of `colon_hex`.
    fn fingerprint(der: &[u8]) -> String {
        let hex = hex::encode_upper(Sha256::digest(der));
        let pairs: Vec<&str> = (0..hex.len()).step_by(2).map(|i| &hex[i..i + 2]).collect();
        pairs.join(":")
    }

    #[test]
    fn leaf_signed_by_ca_every_field() {
        let (_, leaf) = ca_and_leaf();
        let now = at(NOT_AFTER - 89 * DAY - HOUR);
        let summary = summarize(&leaf, now).unwrap();
        let expected = CertSummary {
            subject: "CN=mx.example.com, O=Example".to_owned(),
            issuer: "CN=Example Test CA, O=Example".to_owned(),
            subject_alt_names: vec![
                "DNS:mx.example.com".to_owned(),
                "IP:192.0.2.1".to_owned(),
                "IP:2001:db8::1".to_owned(),
                "email:postmaster@example.com".to_owned(),
                "URI:https://example.com/".to_owned(),
                "othername:1.3.6.1.5.5.7.8.9".to_owned(),
            ],
            not_before: "2026-01-02T03:04:05Z".to_owned(),
            not_after: "2026-04-02T03:04:05Z".to_owned(),
            days_left: 89,
            seconds_left: 89 * DAY + HOUR,
            not_yet_valid: false,
            days_until_valid: -1,
            serial: "01:A2:B3".to_owned(),
            sha256_fingerprint: fingerprint(&leaf),
            public_key_type: "RSA".to_owned(),
            public_key_bits: Some(2048),
            public_key_curve: None,
            signature_algorithm: "ecdsa-with-SHA384".to_owned(),
            self_signed: false,
            is_ca: false,
        };
        assert_eq!(summary, expected);
        assert_eq!(summary.validity_text(), "expires in 89 days");
    }

    #[test]
    fn ca_every_field() {
        let (ca, _) = ca_and_leaf();
        let summary = summarize(&ca, at(NOT_BEFORE)).unwrap();
        let expected = CertSummary {
            subject: "CN=Example Test CA, O=Example".to_owned(),
            issuer: "CN=Example Test CA, O=Example".to_owned(),
            subject_alt_names: vec![],
            not_before: "2026-01-02T03:04:05Z".to_owned(),
            not_after: "2026-04-02T03:04:05Z".to_owned(),
            days_left: 90,
            seconds_left: NOT_AFTER - NOT_BEFORE,
            not_yet_valid: false,
            days_until_valid: 0,
            // DER adds a 00 sign byte before 8F; OpenSSL does not print it.
            serial: "8F:00".to_owned(),
            sha256_fingerprint: fingerprint(&ca),
            public_key_type: "EC".to_owned(),
            public_key_bits: Some(384),
            public_key_curve: Some("P-384".to_owned()),
            signature_algorithm: "ecdsa-with-SHA384".to_owned(),
            self_signed: true,
            is_ca: true,
        };
        assert_eq!(summary, expected);
    }

    #[test]
    fn key_and_signature_algorithms() {
        // (algorithm, key type, bits, curve, signature name)
        type Case = (
            &'static SignatureAlgorithm,
            &'static str,
            Option<u32>,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            (
                &rcgen::PKCS_ECDSA_P256_SHA256,
                "EC",
                Some(256),
                Some("P-256"),
                "ecdsa-with-SHA256",
            ),
            (
                &rcgen::PKCS_ECDSA_P384_SHA384,
                "EC",
                Some(384),
                Some("P-384"),
                "ecdsa-with-SHA384",
            ),
            (
                &rcgen::PKCS_ECDSA_P521_SHA512,
                "EC",
                Some(521),
                Some("P-521"),
                "ecdsa-with-SHA512",
            ),
            (&rcgen::PKCS_ED25519, "Ed25519", Some(256), None, "ED25519"),
            (
                &rcgen::PKCS_RSA_SHA256,
                "RSA",
                Some(2048),
                None,
                "sha256WithRSAEncryption",
            ),
            (
                &rcgen::PKCS_RSA_SHA384,
                "RSA",
                Some(2048),
                None,
                "sha384WithRSAEncryption",
            ),
            // Unknown to this module: the dotted OIDs come through.
            (
                &rcgen::PKCS_ML_DSA_44,
                "2.16.840.1.101.3.4.3.17",
                None,
                None,
                "2.16.840.1.101.3.4.3.17",
            ),
        ];
        for &(alg, key_type, bits, curve, signature) in cases {
            let der = self_signed(alg);
            let s = summarize(&der, at(NOT_BEFORE)).unwrap();
            let got = (
                s.public_key_type.as_str(),
                s.public_key_bits,
                s.public_key_curve.as_deref(),
                s.signature_algorithm.as_str(),
            );
            assert_eq!(got, (key_type, bits, curve, signature), "{alg:?}");
            assert!(s.self_signed);
            assert!(!s.is_ca);
            assert_eq!(s.serial, "07");
        }
    }

    #[test]
    fn explicit_ca_false_is_not_ca() {
        let key = KeyPair::generate().unwrap();
        let mut p = params("leaf.example", &[1]);
        p.is_ca = IsCa::ExplicitNoCa;
        let der = p.self_signed(&key).unwrap().der().to_vec();
        assert!(!summarize(&der, at(NOT_BEFORE)).unwrap().is_ca);
    }

    #[test]
    fn days_left_and_validity_text_around_the_edges() {
        let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let cases: &[(i64, i64, bool, &str)] = &[
            // (now, days_left, not_yet_valid, text)
            (
                NOT_BEFORE - 3 * DAY - HOUR,
                93,
                true,
                "not valid for another 3 days",
            ),
            (
                NOT_BEFORE - DAY - HOUR,
                91,
                true,
                "not valid for another 1 day",
            ),
            (NOT_BEFORE - 1, 90, true, "not valid until later today"),
            (NOT_BEFORE, 90, false, "expires in 90 days"),
            (NOT_AFTER - DAY, 1, false, "expires in 1 day"),
            (NOT_AFTER - DAY + 1, 0, false, "expires today"),
            (NOT_AFTER - 12 * HOUR, 0, false, "expires today"),
            (NOT_AFTER, 0, false, "expires today"),
            (NOT_AFTER + 1, -1, false, "expired 1 day ago"),
            (NOT_AFTER + DAY, -1, false, "expired 1 day ago"),
            (NOT_AFTER + DAY + 1, -2, false, "expired 2 days ago"),
            (NOT_AFTER + 12 * DAY, -12, false, "expired 12 days ago"),
        ];
        for &(now, days_left, not_yet_valid, text) in cases {
            let s = summarize(&der, at(now)).unwrap();
            assert_eq!(
                (s.days_left, s.not_yet_valid, s.validity_text().as_str()),
                (days_left, not_yet_valid, text),
                "now = {now}"
            );
        }
    }

    #[test]
    fn sub_second_now_rounds_down() {
        let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let now = at(NOT_AFTER) + Duration::from_millis(1);
        assert_eq!(summarize(&der, now).unwrap().days_left, 0);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(1)), -1);
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_millis(999)), 0);
    }

    #[test]
    fn garbage_is_an_error() {
        for input in [
            &b""[..],
            b"garbage",
            &[0x30],
            &[0x30, 0x80],
            &[0x30, 0x03, 1, 2, 3],
        ] {
            let err = summarize(input, at(NOT_BEFORE)).unwrap_err();
            assert!(
                matches!(err, CertError::Unparseable { .. }),
                "{input:?}: {err:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        for len in 0..der.len() {
            let result = summarize(&der[..len], at(NOT_BEFORE));
            assert!(
                matches!(result, Err(CertError::Unparseable { .. })),
                "len {len}: {result:?}"
            );
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        for i in 0..der.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = summarize(&bad, at(NOT_BEFORE));
            }
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut one = der.clone();
        one.push(0);
        assert_eq!(
            summarize(&one, at(NOT_BEFORE)),
            Err(CertError::TrailingData { len: 1 })
        );
        let two = [der.clone(), der.clone()].concat();
        assert_eq!(
            summarize(&two, at(NOT_BEFORE)),
            Err(CertError::TrailingData { len: der.len() })
        );
    }

    fn with_extension(oid: &[u64], content: Vec<u8>, sans: Vec<SanType>) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut p = params("odd.example", &[1]);
        p.subject_alt_names = sans;
        p.custom_extensions = vec![CustomExtension::from_oid_content(oid, content)];
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn malformed_or_duplicate_extensions_are_errors() {
        const SAN: &[u64] = &[2, 5, 29, 17];
        const BASIC: &[u64] = &[2, 5, 29, 19];
        let dns = || vec![SanType::DnsName("a.example".try_into().unwrap())];
        // SEQUENCE { [2] "b.example" }: a well-formed SAN, but a second one.
        let good_san = [&[0x30, 0x0b, 0x82, 0x09][..], b"b.example"].concat();
        let cases = [
            (
                with_extension(SAN, vec![0xff, 0x00], vec![]),
                "subjectAltName",
            ),
            (with_extension(SAN, good_san, dns()), "subjectAltName"),
            (
                with_extension(BASIC, vec![0x04, 0x00], vec![]),
                "basicConstraints",
            ),
        ];
        for (der, name) in cases {
            let result = summarize(&der, at(NOT_BEFORE));
            assert!(
                matches!(&result, Err(CertError::Extension { extension, .. }) if *extension == name),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn san_rendering() {
        let cases: &[(GeneralName<'_>, &str)] = &[
            (GeneralName::DNSName("mx.example.com"), "DNS:mx.example.com"),
            (GeneralName::IPAddress(&[192, 0, 2, 1]), "IP:192.0.2.1"),
            (
                GeneralName::IPAddress(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
                "IP:fe80::1",
            ),
            (GeneralName::IPAddress(&[10, 0, 0]), "IP:<invalid 0a0000>"),
            (GeneralName::IPAddress(&[]), "IP:<invalid >"),
            (
                GeneralName::RFC822Name("a@example.com"),
                "email:a@example.com",
            ),
            (GeneralName::URI("ldap://x"), "URI:ldap://x"),
        ];
        for (name, text) in cases {
            assert_eq!(general_name(name), *text);
        }
    }

    #[test]
    fn serial_and_fingerprint_hex() {
        assert_eq!(serial_hex(&[]), "00");
        assert_eq!(serial_hex(&[0]), "00");
        assert_eq!(serial_hex(&[0, 0x8f, 0x0a]), "8F:0A");
        assert_eq!(serial_hex(&[0x01, 0xa2]), "01:A2");
        // A negative (invalid) serial is shown as its bytes.
        assert_eq!(serial_hex(&[0xff]), "FF");
        assert_eq!(colon_hex(&[]), "");
        assert_eq!(colon_hex(&[0xab]), "AB");
        assert_eq!(colon_hex(&[0x00, 0x0f, 0xf0]), "00:0F:F0");
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), None);
        assert_eq!(bit_length(&[0, 0]), None);
        assert_eq!(bit_length(&[1]), Some(1));
        assert_eq!(bit_length(&[0, 0x80, 0]), Some(16));
        assert_eq!(bit_length(&[0x7f, 0xff]), Some(15));
    }

    #[test]
    fn rfc3339_known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (NOT_BEFORE, "2026-01-02T03:04:05Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-62_167_219_200, "0000-01-01T00:00:00Z"),
            (-2_208_988_800, "1900-01-01T00:00:00Z"),
        ];
        for (timestamp, text) in cases {
            assert_eq!(rfc3339(timestamp), text, "{timestamp}");
        }
    }

    /// Every day from year 1600 to 2600 against the `time` crate behind x509-parser.
    #[test]
    fn civil_from_days_matches_the_time_crate() {
        let first = -135_140; // 1600-01-01
        let last = 230_120; // 2600-01-21
        let mut previous = civil_from_days(first - 1);
        for days in first..=last {
            let timestamp = days * DAY + 45_296; // 12:34:56
            let reference = x509_parser::time::ASN1Time::from_timestamp(timestamp)
                .unwrap()
                .to_datetime();
            let ours = civil_from_days(days);
            let theirs = (
                i64::from(reference.year()),
                i64::from(u8::from(reference.month())),
                i64::from(reference.day()),
            );
            assert_eq!(ours, theirs, "day {days}");
            assert_ne!(ours, previous);
            previous = ours;
        }
        assert_eq!(civil_from_days(first), (1600, 1, 1));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            CertError::TrailingData { len: 3 }.to_string(),
            "3 unexpected byte(s) after the certificate"
        );
        let err = summarize(b"", at(0)).unwrap_err().to_string();
        assert!(err.starts_with("not a valid X.509 certificate: "), "{err}");
        assert!(!err.contains("Parsing"), "{err}");
    }

    #[test]
    fn summary_serializes_with_field_names() {
        let der = self_signed(&rcgen::PKCS_ED25519);
        let json = serde_json::to_value(summarize(&der, at(NOT_BEFORE)).unwrap()).unwrap();
        assert_eq!(json["public_key_type"], "Ed25519");
        assert_eq!(json["days_left"], 90);
        assert_eq!(json["public_key_curve"], serde_json::Value::Null);
    }

    /// Serial, fingerprint, signature algorithm and key size agree with the local OpenSSL
    /// (offline); skipped when it is not installed.
    #[test]
    fn agrees_with_openssl() {
        let openssl = std::path::Path::new("/usr/bin/openssl");
        if !openssl.exists() {
            eprintln!("skipped: {} not found", openssl.display());
            return;
        }
        let (ca, leaf) = ca_and_leaf();
        for der in [ca, leaf] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cert.der");
            std::fs::write(&path, &der).unwrap();
            let out = std::process::Command::new(openssl)
                .args([
                    "x509",
                    "-inform",
                    "der",
                    "-noout",
                    "-serial",
                    "-fingerprint",
                    "-sha256",
                ])
                .args(["-text", "-in"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let s = summarize(&der, at(NOT_BEFORE)).unwrap();
            let serial = format!("serial={}", s.serial.replace(':', ""));
            let fingerprint = format!("Fingerprint={}", s.sha256_fingerprint);
            let signature = format!("Signature Algorithm: {}", s.signature_algorithm);
            let bits = format!("Public-Key: ({} bit)", s.public_key_bits.unwrap());
            for needle in [serial, fingerprint, signature, bits] {
                assert!(text.contains(&needle), "{needle:?} not in\n{text}");
            }
        }
    }
}
