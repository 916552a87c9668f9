//! Export of the leaf or the whole chain as DER or PEM (RFC 7468 §5, "CERTIFICATE" blocks).
//!
//! The certificates are written exactly as the server sent them, whether or not they parse.

use rustls_pki_types::CertificateDer;
use serde::Serialize;

/// The encoding of an exported certificate file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Binary DER: exactly one certificate.
    Der,
    /// Base64 PEM: one `CERTIFICATE` block per certificate.
    Pem,
}

/// Why the certificates cannot be exported as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// `--chain` together with `--format der`.
    #[error(
        "DER holds exactly one certificate; --chain writes PEM (use --format pem, or drop --chain to save the leaf as DER)"
    )]
    ChainNeedsPem,
    /// The server presented no certificate.
    #[error("the server presented no certificate to export")]
    NoCertificate,
}

/// Decide the format: explicit wins; with `chain` the format is PEM and an explicit
/// [`Format::Der`] is an error that says why; otherwise PEM when `output` is `-` (stdout) or its
/// name ends in `.pem` or `.crt` (case-insensitive), DER otherwise (`.cer`, `.der`, anything
/// else).
pub fn choose_format(
    output: &str,
    explicit: Option<Format>,
    chain: bool,
) -> Result<Format, ExportError> {
    match (explicit, chain) {
        (Some(Format::Der), true) => Err(ExportError::ChainNeedsPem),
        (Some(format), _) => Ok(format),
        (None, true) => Ok(Format::Pem),
        (None, false) if output == "-" || has_pem_extension(output) => Ok(Format::Pem),
        (None, false) => Ok(Format::Der),
    }
}

fn has_pem_extension(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    lower.ends_with(".pem") || lower.ends_with(".crt")
}

/// Encode the leaf (first certificate) alone, or with `chain` every certificate in the order
/// given, as `format`. `chain` with [`Format::Der`] is [`ExportError::ChainNeedsPem`] whatever the
/// number of certificates, as in [`choose_format`].
///
/// PEM blocks are `-----BEGIN CERTIFICATE-----`, 64-column base64 and `\n` line endings, one block
/// per certificate, concatenated without blank lines (as `openssl s_client -showcerts` and
/// `fullchain.pem` files have them).
pub fn encode(
    certs: &[CertificateDer<'_>],
    format: Format,
    chain: bool,
) -> Result<Vec<u8>, ExportError> {
    let leaf = certs.first().ok_or(ExportError::NoCertificate)?;
    match (format, chain) {
        (Format::Der, true) => Err(ExportError::ChainNeedsPem),
        (Format::Der, false) => Ok(leaf.to_vec()),
        (Format::Pem, true) => Ok(pem_blocks(certs).into_bytes()),
        (Format::Pem, false) => Ok(pem_blocks(std::slice::from_ref(leaf)).into_bytes()),
    }
}

fn pem_blocks(certs: &[CertificateDer<'_>]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    certs
        .iter()
        .map(|der| pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    /// Three real certificates (openssl must be able to read them), each with its own name.
    fn chain() -> Vec<CertificateDer<'static>> {
        ["leaf.example", "intermediate.example", "root.example"]
            .iter()
            .map(|name| {
                let key = rcgen::KeyPair::generate().unwrap();
                let params = rcgen::CertificateParams::new(vec![(*name).to_owned()]).unwrap();
                params.self_signed(&key).unwrap().der().clone()
            })
            .collect()
    }

    fn decode_pem(pem: &[u8]) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn der_leaf_is_the_first_certificate_byte_for_byte() {
        let certs = chain();
        let der = encode(&certs, Format::Der, false).unwrap();
        assert_eq!(der, certs[0].as_ref());
    }

    #[test]
    fn pem_leaf_is_one_block_that_decodes_to_the_leaf() {
        let certs = chain();
        let pem = encode(&certs, Format::Pem, false).unwrap();
        assert_eq!(decode_pem(&pem), vec![certs[0].clone()]);
        let text = String::from_utf8(pem).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(text.ends_with("-----END CERTIFICATE-----\n"));
        assert!(!text.contains('\r'));
        assert!(text.lines().all(|line| line.len() <= 64));
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let (last, full) = body.split_last().unwrap();
        assert!(full.iter().all(|line| line.len() == 64));
        assert!(!last.is_empty() && last.len() <= 64);
    }

    #[test]
    fn pem_chain_keeps_every_certificate_in_order_without_blank_lines() {
        let certs = chain();
        let pem = encode(&certs, Format::Pem, true).unwrap();
        assert_eq!(decode_pem(&pem), certs);
        let text = String::from_utf8(pem).unwrap();
        assert_eq!(text.matches("-----BEGIN CERTIFICATE-----\n").count(), 3);
        assert!(text.lines().all(|line| !line.is_empty()));
    }

    #[test]
    fn chain_of_one_is_one_pem_block() {
        let certs = chain();
        let pem = encode(&certs[..1], Format::Pem, true).unwrap();
        assert_eq!(decode_pem(&pem), vec![certs[0].clone()]);
    }

    #[test]
    fn der_refuses_a_chain_even_of_one() {
        let certs = chain();
        assert_eq!(
            encode(&certs, Format::Der, true),
            Err(ExportError::ChainNeedsPem)
        );
        assert_eq!(
            encode(&certs[..1], Format::Der, true),
            Err(ExportError::ChainNeedsPem)
        );
    }

    #[test]
    fn no_certificate_is_an_error_in_every_mode() {
        for format in [Format::Der, Format::Pem] {
            for chain in [false, true] {
                assert_eq!(
                    encode(&[], format, chain),
                    Err(ExportError::NoCertificate),
                    "{format:?} chain={chain}"
                );
            }
        }
    }

    #[test]
    fn unparseable_bytes_are_exported_as_sent() {
        let junk = vec![CertificateDer::from(vec![0xde, 0xad, 0xbe, 0xef])];
        assert_eq!(
            encode(&junk, Format::Der, false).unwrap(),
            [0xde, 0xad, 0xbe, 0xef]
        );
        assert_eq!(
            encode(&junk, Format::Pem, false).unwrap(),
            b"-----BEGIN CERTIFICATE-----\n3q2+7w==\n-----END CERTIFICATE-----\n"
        );
    }

    #[test]
    fn choose_format_table() {
        use Format::{Der, Pem};
        type Case = (
            &'static str,
            Option<Format>,
            bool,
            Result<Format, ExportError>,
        );
        let cases: &[Case] = &[
            ("gmail.cer", None, false, Ok(Der)),
            ("gmail.der", None, false, Ok(Der)),
            ("gmail", None, false, Ok(Der)),
            ("pem", None, false, Ok(Der)),
            ("dir.pem/leaf", None, false, Ok(Der)),
            ("x.PEM", None, false, Ok(Pem)),
            ("x.pem", None, false, Ok(Pem)),
            ("x.crt", None, false, Ok(Pem)),
            ("x.Crt", None, false, Ok(Pem)),
            ("-", None, false, Ok(Pem)),
            ("x.cer", None, true, Ok(Pem)),
            ("-", None, true, Ok(Pem)),
            ("x.der", Some(Der), true, Err(ExportError::ChainNeedsPem)),
            ("-", Some(Der), true, Err(ExportError::ChainNeedsPem)),
            ("x.cer", Some(Pem), false, Ok(Pem)),
            ("x.cer", Some(Pem), true, Ok(Pem)),
            ("x.pem", Some(Der), false, Ok(Der)),
            ("-", Some(Der), false, Ok(Der)),
        ];
        for (output, explicit, chain, expected) in cases {
            assert_eq!(
                &choose_format(output, *explicit, *chain),
                expected,
                "output={output:?} explicit={explicit:?} chain={chain}"
            );
        }
    }

    #[test]
    fn chain_needs_pem_says_what_to_do() {
        assert_eq!(
            ExportError::ChainNeedsPem.to_string(),
            "DER holds exactly one certificate; --chain writes PEM \
             (use --format pem, or drop --chain to save the leaf as DER)"
        );
    }

    #[test]
    fn format_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Format::Der).unwrap(), "\"der\"");
        assert_eq!(serde_json::to_string(&Format::Pem).unwrap(), "\"pem\"");
    }

    /// OpenSSL reads what we write; offline, local binary only. Skipped when it is not installed.
    #[test]
    fn openssl_reads_der_and_pem() {
        let openssl = std::path::Path::new("/usr/bin/openssl");
        if !openssl.exists() {
            eprintln!("skipped: {} not found", openssl.display());
            return;
        }
        let certs = chain();
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "leaf.der",
                "der",
                encode(&certs, Format::Der, false).unwrap(),
            ),
            (
                "leaf.pem",
                "pem",
                encode(&certs, Format::Pem, false).unwrap(),
            ),
            (
                "chain.pem",
                "pem",
                encode(&certs, Format::Pem, true).unwrap(),
            ),
        ];
        for (name, inform, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let out = std::process::Command::new(openssl)
                .args(["x509", "-inform", inform, "-noout", "-subject", "-in"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}: {out:?}");
            let subject = String::from_utf8_lossy(&out.stdout);
            assert!(
                subject.contains("rcgen self signed cert"),
                "{name}: {subject}"
            );
        }
        // The chain file holds all three, in order.
        let out = std::process::Command::new(openssl)
            .args(["storeutl", "-noout", "-certs"])
            .arg(dir.path().join("chain.pem"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("Total found: 3"), "{listing}");
    }
}
