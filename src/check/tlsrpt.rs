//! SMTP TLS Reporting (RFC 8460): the TXT record at `_smtp._tls.DOMAIN` that says where sending
//! servers report TLS failures.
//!
//! RFC 8460 §3: records that do not begin with `v=TLSRPTv1` are discarded; more than one that
//! does means the domain has no usable TLS-RPT record. Fields are separated by `;` with optional
//! whitespace around it; `rua=` holds one or more comma-separated `mailto:` or `https:` URIs and
//! is required. Unknown fields are ignored. The TXT text is hostile input.

use serde::Serialize;

/// The TLS-RPT version tag a record must begin with (RFC 8460 §3).
const VERSION: &str = "v=TLSRPTv1";

/// A parsed TLS-RPT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsRpt {
    /// Where reports go: `mailto:` and `https:` URIs, in the record's order.
    pub rua: Vec<String>,
    /// The record as published.
    pub raw: String,
}

/// Parses the TXT records found at `_smtp._tls.DOMAIN` (one string per record, its character
/// strings already joined). `Ok(None)` when no record begins with `v=TLSRPTv1`.
pub fn parse(txts: &[String]) -> Result<Option<TlsRpt>, String> {
    let mut records = txts.iter().filter(|txt| is_tlsrpt(txt));
    let Some(record) = records.next() else {
        return Ok(None);
    };
    let others = records.count();
    if others > 0 {
        return Err(format!(
            "{} TLS-RPT records (RFC 8460 §3 says a domain with more than one has none)",
            others.saturating_add(1)
        ));
    }
    parse_one(record).map(Some)
}

/// Whether a TXT record begins with the version tag, followed by a separator or nothing.
fn is_tlsrpt(txt: &str) -> bool {
    txt.strip_prefix(VERSION).is_some_and(|rest| {
        let rest = rest.trim_start_matches([' ', '\t']);
        rest.is_empty() || rest.starts_with(';')
    })
}

fn parse_one(record: &str) -> Result<TlsRpt, String> {
    let mut rua: Option<Vec<String>> = None;
    // The first field is the version, checked by `is_tlsrpt`.
    for field in record.split(';').skip(1) {
        let field = field.trim_matches([' ', '\t']);
        if field.is_empty() {
            // A trailing ";" is allowed; an empty field in the middle is harmless.
            continue;
        }
        let Some((name, value)) = field.split_once('=') else {
            return Err(format!("malformed field {field:?} (expected name=value)"));
        };
        if name == "rua" {
            if rua.is_some() {
                return Err("rua= appears twice".to_owned());
            }
            rua = Some(parse_rua(value)?);
        }
    }
    let rua = rua.ok_or_else(|| "no rua= field (where reports go)".to_owned())?;
    Ok(TlsRpt {
        rua,
        raw: record.to_owned(),
    })
}

fn parse_rua(value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(|uri| {
            let uri = uri.trim_matches([' ', '\t']);
            let scheme = uri.split_once(':').map(|(scheme, _)| scheme);
            match scheme {
                _ if uri.is_empty() => Err("an empty URI in rua=".to_owned()),
                Some(s) if s.eq_ignore_ascii_case("mailto") || s.eq_ignore_ascii_case("https") => {
                    if uri.len() <= s.len().saturating_add(1) {
                        Err(format!("rua URI {uri:?} has nothing after its scheme"))
                    } else {
                        Ok(uri.to_owned())
                    }
                }
                _ => Err(format!(
                    "rua URI {uri:?} is neither mailto: nor https: (RFC 8460 §3)"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn txts(records: &[&str]) -> Vec<String> {
        records.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn valid_records() {
        let cases: &[(&str, &[&str])] = &[
            // RFC 8460 §3 examples.
            (
                "v=TLSRPTv1;rua=mailto:reports@example.com",
                &["mailto:reports@example.com"],
            ),
            (
                "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
                &["https://reporting.example.com/v1/tlsrpt"],
            ),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.net/tlsrpt ;",
                &["mailto:a@example.com", "https://r.example.net/tlsrpt"],
            ),
            (
                "v=TLSRPTv1 ;\trua=MAILTO:a@example.com; ext=whatever",
                &["MAILTO:a@example.com"],
            ),
        ];
        for (record, rua) in cases {
            let parsed = parse(&txts(&[record])).unwrap().unwrap();
            assert_eq!(parsed.rua, *rua, "{record}");
            assert_eq!(parsed.raw, *record);
        }
    }

    #[test]
    fn no_record() {
        let cases: &[&[&str]] = &[
            &[],
            &["v=spf1 -all"],
            &["v=TLSRPTv10; rua=mailto:a@example.com"],
            &["V=TLSRPTv1; rua=mailto:a@example.com"],
            &[" v=TLSRPTv1; rua=mailto:a@example.com"],
        ];
        for records in cases {
            assert_eq!(parse(&txts(records)), Ok(None), "{records:?}");
        }
    }

    #[test]
    fn invalid_records() {
        let cases: &[(&[&str], &str)] = &[
            (
                &[
                    "v=TLSRPTv1; rua=mailto:a@example.com",
                    "v=TLSRPTv1; rua=mailto:b@example.com",
                ],
                "2 TLS-RPT records",
            ),
            (&["v=TLSRPTv1"], "no rua="),
            (&["v=TLSRPTv1;"], "no rua="),
            (&["v=TLSRPTv1; ext=1"], "no rua="),
            (
                &["v=TLSRPTv1; rua=ftp://example.com/x"],
                "neither mailto: nor https:",
            ),
            (
                &["v=TLSRPTv1; rua=http://example.com/x"],
                "neither mailto: nor https:",
            ),
            (
                &["v=TLSRPTv1; rua=reports@example.com"],
                "neither mailto: nor https:",
            ),
            (&["v=TLSRPTv1; rua="], "an empty URI"),
            (&["v=TLSRPTv1; rua=mailto:a@example.com,"], "an empty URI"),
            (&["v=TLSRPTv1; rua=mailto:"], "nothing after its scheme"),
            (&["v=TLSRPTv1; rua"], "malformed field"),
            (
                &["v=TLSRPTv1; rua=mailto:a@example.com; rua=mailto:b@example.com"],
                "rua= appears twice",
            ),
        ];
        for (records, words) in cases {
            let err = parse(&txts(records)).unwrap_err();
            assert!(err.contains(words), "{records:?}: {err}");
        }
    }

    #[test]
    fn other_txt_records_are_ignored() {
        let parsed = parse(&txts(&[
            "v=spf1 -all",
            "v=TLSRPTv1; rua=mailto:a@example.com",
            "google-site-verification=x",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(parsed.rua, ["mailto:a@example.com"]);
    }
}
