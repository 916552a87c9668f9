//! Table tests for the MTA-STS record and policy parsers and MX matching.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code"
)]

use super::*;

fn txts(records: &[&str]) -> Vec<String> {
    records.iter().map(|r| (*r).to_owned()).collect()
}

#[test]
fn valid_records() {
    let cases: &[(&str, &str)] = &[
        // RFC 8461 §3.1.
        ("v=STSv1; id=20160831085700Z;", "20160831085700Z"),
        ("v=STSv1;id=abc", "abc"),
        ("v=STSv1 ;\tid=ABC123 ; ", "ABC123"),
        (
            "v=STSv1; id=12345678901234567890123456789012",
            "12345678901234567890123456789012",
        ),
        ("v=STSv1; ext=1; id=x", "x"),
        // The first id counts.
        ("v=STSv1; id=first; id=second", "first"),
    ];
    for (record, id) in cases {
        let parsed = parse_record(&txts(&[record])).unwrap();
        assert_eq!(
            parsed,
            Some(StsRecord {
                id: (*id).to_owned()
            }),
            "{record}"
        );
    }
}

#[test]
fn no_record() {
    let cases: &[&[&str]] = &[
        &[],
        &["v=spf1 -all"],
        &["v=STSv10; id=1"],
        &["V=STSv1; id=1"],
        &[" v=STSv1; id=1"],
        &["v=STS; id=1"],
    ];
    for records in cases {
        assert_eq!(parse_record(&txts(records)), Ok(None), "{records:?}");
    }
}

#[test]
fn invalid_records() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["v=STSv1; id=1", "v=STSv1; id=2"],
            "two MTA-STS records (RFC 8461 §3.1 says ignore both)",
        ),
        (
            &["v=STSv1; id=1", "v=STSv1; id=1", "v=STSv1; id=3"],
            "3 MTA-STS records",
        ),
        (&["v=STSv1"], "invalid MTA-STS record: no id= field"),
        (&["v=STSv1;"], "no id= field"),
        (&["v=STSv1; ext=1"], "no id= field"),
        (&["v=STSv1; id="], "is not name=value"),
        (&["v=STSv1; id"], "is not name=value"),
        (&["v=STSv1; =x; id=1"], "is not name=value"),
        (
            &["v=STSv1; id=abc-def"],
            "is not 1 to 32 letters and digits",
        ),
        (
            &["v=STSv1; id=abc def"],
            "is not 1 to 32 letters and digits",
        ),
        (
            &["v=STSv1; id=123456789012345678901234567890123"],
            "is not 1 to 32 letters and digits",
        ),
        (&["v=STSv1; id=é"], "is not 1 to 32 letters and digits"),
    ];
    for (records, words) in cases {
        let err = parse_record(&txts(records)).unwrap_err().to_string();
        assert!(err.contains(words), "{records:?}: {err}");
    }
}

#[test]
fn other_txt_records_are_ignored() {
    let parsed = parse_record(&txts(&["v=spf1 -all", "v=STSv1; id=1", "hello"])).unwrap();
    assert_eq!(parsed.map(|r| r.id), Some("1".to_owned()));
}

/// RFC 8461 §3.2's example policy.
const RFC_POLICY: &str = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n\
                          mx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n";

#[test]
fn valid_policies() {
    let rfc = Policy {
        version: "STSv1".to_owned(),
        mode: Mode::Enforce,
        max_age: 604_800,
        mx: vec![
            "mail.example.com".to_owned(),
            "*.example.net".to_owned(),
            "backupmx.example.com".to_owned(),
        ],
    };
    assert_eq!(parse_policy(RFC_POLICY).unwrap(), rfc);
    // LF endings, no final newline, blank lines, odd spacing, unknown fields, repeats.
    let lf = "version:STSv1\nmode:   enforce \n\nmx: mail.example.com\nmx:*.example.net\n\
              future_field: anything at all\nmx: backupmx.example.com\t\nmax_age: 604800\n\
              mode: none\nmax_age: 1";
    assert_eq!(parse_policy(lf).unwrap(), rfc);

    let cases: &[(&str, Mode, u64, usize)] = &[
        (
            "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\n",
            Mode::Testing,
            86_400,
            1,
        ),
        ("version: STSv1\nmode: none\nmax_age: 0\n", Mode::None, 0, 0),
        (
            "version: STSv1\nmode: none\nmx: a.example\nmax_age: 31557600",
            Mode::None,
            31_557_600,
            1,
        ),
        (
            "version: STSv1\nmode: enforce\nmx: mail.example.com.\nmax_age: 0000000010",
            Mode::Enforce,
            10,
            1,
        ),
    ];
    for (text, mode, max_age, mx) in cases {
        let policy = parse_policy(text).unwrap();
        assert_eq!(
            (policy.mode, policy.max_age, policy.mx.len()),
            (*mode, *max_age, *mx),
            "{text}"
        );
    }
}

#[test]
fn invalid_policies() {
    let cases: &[(&str, &str)] = &[
        ("", "invalid policy: no version: field"),
        (
            "mode: enforce\nmx: a.example\nmax_age: 1",
            "no version: field",
        ),
        (
            "version: STSv1\nmx: a.example\nmax_age: 1",
            "no mode: field",
        ),
        (
            "version: STSv1\nmode: enforce\nmx: a.example",
            "no max_age: field",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 1",
            "no mx: field, which mode enforce requires",
        ),
        (
            "version: STSv1\nmode: testing\nmax_age: 1",
            "which mode testing requires",
        ),
        (
            "version: STSv2\nmode: enforce",
            "malformed policy line 1 (\"version: STSv2\"): version is \"STSv2\", not STSv1",
        ),
        (
            "Version: STSv1\nmode: none\nmax_age: 1",
            "no version: field",
        ),
        (
            "version: STSv1\nmode: Enforce",
            "line 2 (\"mode: Enforce\"): mode is \"Enforce\", not enforce, testing or none",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 31557601",
            "over the limit of 31557600 seconds",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: -1",
            "is not a number of seconds",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: +1",
            "is not a number of seconds",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 1 day",
            "is not a number of seconds",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age: 12345678901",
            "is not a number of seconds",
        ),
        (
            "version: STSv1\nmode: enforce\nmax_age:",
            "is not a number of seconds",
        ),
        (
            "version: STSv1\r\nthis line has no colon\r\n",
            "line 2 (\"this line has no colon\"): not key: value",
        ),
        (
            "version: STSv1\n mode: enforce",
            "\" mode\" is not a field name",
        ),
        ("version: STSv1\n: enforce", "is not a field name"),
        ("mx: mail example.com", "is not a host name or *.host name"),
        ("mx: *.", "is not a host name"),
        ("mx: mail.*.example.com", "is not a host name"),
        ("mx: mail..example.com", "is not a host name"),
        ("mx: -mail.example.com", "is not a host name"),
        ("mx: https://mail.example.com/", "is not a host name"),
        ("mx:", "is not a host name"),
    ];
    for (text, words) in cases {
        let err = parse_policy(text).unwrap_err().to_string();
        assert!(err.contains(words), "{text:?}: {err}");
    }
}

#[test]
fn hostile_policy_lines_are_quoted_and_shortened() {
    let long = format!("{}\u{1b}[31m", "x".repeat(200));
    let err = parse_policy(&long).unwrap_err().to_string();
    assert!(err.starts_with("malformed policy line 1 (\"xxxx"), "{err}");
    assert!(err.contains("…"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.len() < 200, "{err}");
}

#[test]
fn policy_size_limit() {
    let pad = |total: usize| {
        let head = "version: STSv1\nmode: none\nmax_age: 1\nx: ";
        format!("{head}{}", "a".repeat(total - head.len()))
    };
    assert!(parse_policy(&pad(MAX_POLICY_BYTES)).is_ok());
    assert_eq!(
        parse_policy(&pad(MAX_POLICY_BYTES + 1)),
        Err(StsError::TooLarge)
    );
    assert_eq!(
        StsError::TooLarge.to_string(),
        "policy too large (over 64 KiB, RFC 8461 §3.2)"
    );
}

#[test]
fn mode_serializes_lowercase() {
    for (mode, word) in [
        (Mode::Enforce, "enforce"),
        (Mode::Testing, "testing"),
        (Mode::None, "none"),
    ] {
        assert_eq!(serde_json::to_value(mode).unwrap(), word);
        assert_eq!(mode.to_string(), word);
    }
}

#[test]
fn mx_matching() {
    let cases: &[(&str, &str, bool)] = &[
        // RFC 8461 §4.1: the wildcard stands for exactly one left-most label.
        ("*.example.com", "mail.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "foo.bar.example.com", false),
        ("mail.example.com", "mail.example.com", true),
        ("mail.example.com", "mail2.example.com", false),
        ("mail.example.com", "example.com", false),
        // Case and trailing dots do not matter.
        ("MAIL.Example.COM", "mail.example.com.", true),
        ("mail.example.com.", "MAIL.EXAMPLE.COM", true),
        ("*.Example.Com.", "MX1.example.com.", true),
        // Only "*." at the very left is a wildcard.
        ("mx*.example.com", "mx1.example.com", false),
        ("*example.com", "mail.example.com", false),
        ("*.example.com", "mail.xexample.com", false),
        ("*.example.com", ".example.com", false),
        ("*.example.com", "*.example.com", false),
        ("*.", "mail.", false),
        ("*", "mail", false),
        ("", "", false),
        ("", ".", false),
        ("mail.example.com", "", false),
    ];
    for (pattern, host, expected) in cases {
        assert_eq!(mx_matches(pattern, host), *expected, "{pattern} vs {host}");
    }
}

#[test]
fn policy_urls() {
    assert_eq!(
        policy_url("example.com", 443),
        "https://mta-sts.example.com/.well-known/mta-sts.txt"
    );
    assert_eq!(
        policy_url("example.com.", 8443),
        "https://mta-sts.example.com:8443/.well-known/mta-sts.txt"
    );
}

#[test]
fn domains_that_cannot_make_a_host_name_are_refused_before_any_lookup() {
    let settings = FetchSettings {
        ca_files: Vec::new(),
        timeout: Duration::from_secs(1),
        port: 443,
        resolve: Arc::new(|host: &str| panic!("resolved {host}")),
    };
    for domain in [
        "example.com/evil?",
        "user@example.com",
        "exa mple.com",
        "a:b",
        "",
        ".",
        "example.com..",
    ] {
        assert_eq!(
            fetch_policy(domain, &settings),
            Err(StsError::InvalidDomain(domain.to_owned())),
            "{domain}"
        );
    }
}

#[test]
fn error_words() {
    let cases: Vec<(StsError, &str)> = vec![
        (StsError::NoRecord, "no MTA-STS record"),
        (StsError::HttpStatus(404), "policy fetch failed: HTTP 404"),
        (
            StsError::Redirect {
                status: 301,
                location: Some("\"https://elsewhere.example/\"".to_owned()),
            },
            "redirect refused (RFC 8461 §3.3): HTTP 301 to \"https://elsewhere.example/\"",
        ),
        (
            StsError::ContentType(None),
            "policy fetch failed: Content-Type is missing, not text/plain (RFC 8461 §3.2)",
        ),
        (
            StsError::Timeout(Duration::from_millis(1500)),
            "policy fetch timed out after 1.5 s",
        ),
    ];
    for (err, words) in cases {
        assert_eq!(err.to_string(), words);
    }
}
