//! MTA-STS (RFC 8461) in `smtptls check`: the `_mta-sts` record, the policy fetched from an
//! HTTPS server on 127.0.0.1 with a certificate for `mta-sts.example.test` from the test CA,
//! each MX host against the policy's patterns, and certificates that must verify in the Web PKI
//! sense (DANE does not count).

use serde_json::{Value, json};

use super::support::check::{
    address, addresses, assert_no_reason, check_json, domain, domain_reason, host, loopback,
};
use super::support::https::{HttpsServer, policy, response, text_plain};
use super::support::pki::self_signed_leaf_for;
use super::support::{FakeSmtp, Fixture, Run};
use super::{DOMAIN, MX1, MX2, TLS_RPT, TLS_RPT_NAME, assert_status, mx_server, tlsa_name, zone};

const STS_HOST: &str = "mta-sts.example.test";
const STS_RECORD: &str = "v=STSv1; id=20260101";

/// Two good MX (mx1 on 127.0.0.2, mx2 on 127.0.0.3), an `_mta-sts` record, and a policy
/// server answering `response`; runs the check and hands back the run, the document and
/// the policy server.
fn check_with_policy(response: Vec<u8>) -> (Run, Value, HttpsServer) {
    let fx = Fixture::new();
    let servers = FakeSmtp::start_on_one_port(vec![
        (loopback(2), mx_server(&fx, MX1)),
        (loopback(3), mx_server(&fx, MX2)),
    ]);
    let https = HttpsServer::start(&fx.pki.leaf_for(&[STS_HOST]), response);
    let dns = zone(&[(MX1, &["127.0.0.2"]), (MX2, &["127.0.0.3"])])
        .txt("_mta-sts.example.test", STS_RECORD)
        .a(STS_HOST, "127.0.0.1")
        .txt(TLS_RPT_NAME, TLS_RPT)
        .start();
    let ca = fx.ca_file();
    let sts_port = https.port().to_string();
    let (run, doc) = check_json(
        &dns,
        servers[0].port(),
        &[DOMAIN],
        &["--ca-file", &ca, "--mta-sts-port", &sts_port],
    );
    (run, doc, https)
}

#[test]
fn mta_sts_mx_patterns_by_mode() {
    // (mode, the policy's mx patterns, exit, severity of mx2's mta-sts-unlisted reason)
    let cases = [
        ("enforce", &[MX1][..], 1, Some("error")),
        ("testing", &[MX1][..], 0, Some("warning")),
        ("enforce", &["*.example.test"][..], 0, None),
    ];
    for (mode, patterns, code, unlisted) in cases {
        let body = policy(mode, patterns);
        let (run, doc, https) = check_with_policy(text_plain(body.as_bytes()));

        assert_eq!(run.code, code, "{mode} {patterns:?}\n{run}");
        let d = domain(&doc, DOMAIN);
        let sts = &d["mta_sts"];
        assert_eq!(sts["record"]["id"], "20260101", "{run}");
        assert_eq!(sts["error"], Value::Null, "{run}");
        assert_eq!(sts["policy"]["mode"], mode, "{run}");
        assert_eq!(sts["policy"]["mx"], json!(patterns), "{run}");
        assert_eq!(sts["policy"]["max_age"], 86400, "{run}");
        assert_eq!(host(d, MX1)["mta_sts_listed"], true, "{run}");
        assert_eq!(
            host(d, MX2)["mta_sts_listed"],
            unlisted.is_none(),
            "{mode} {patterns:?}\n{run}"
        );
        match unlisted {
            Some(severity) => {
                let reason = domain_reason(&run, d, "mta-sts-unlisted", severity);
                assert_eq!(reason["host"], MX2, "{run}");
                assert_status(
                    &run,
                    d,
                    if severity == "error" {
                        "fail"
                    } else {
                        "warning"
                    },
                );
            }
            None => {
                assert_no_reason(&run, d, "mta-sts-unlisted");
                assert_status(&run, d, "ok");
            }
        }
        // Every address passed on its own: MTA-STS failed the domain, not them.
        for a in addresses(d) {
            assert_eq!(a["exit_code"], 0, "{run}");
        }
        let requests = https.requests();
        assert_eq!(requests.len(), 1, "one policy fetch\n{run}");
        assert!(
            requests[0].starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
            "{}",
            requests[0]
        );
        assert!(
            requests[0]
                .to_ascii_lowercase()
                .contains(&format!("\r\nhost: {STS_HOST}:")),
            "{}",
            requests[0]
        );
    }
}

#[test]
fn an_mta_sts_policy_that_cannot_be_fetched_is_an_error() {
    let not_found = response("404 Not Found", &[("Content-Type", "text/plain")], b"");
    let (run, doc, https) = check_with_policy(not_found);

    run.assert_code(1);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "fail");
    let sts = &d["mta_sts"];
    assert_eq!(sts["record"]["id"], "20260101", "{run}");
    assert_eq!(sts["policy"], Value::Null, "{run}");
    let error = sts["error"].as_str().unwrap();
    assert!(error.contains("404"), "{error}");
    let reason = domain_reason(&run, d, "mta-sts-error", "error");
    assert!(reason["message"].as_str().unwrap().contains("404"), "{run}");
    for name in [MX1, MX2] {
        assert_eq!(host(d, name)["mta_sts_listed"], Value::Null, "{run}");
    }
    assert_eq!(https.requests().len(), 1, "{run}");
}

/// MTA-STS enforce listing mx1, whose self-signed certificate only DANE-EE vouches for.
fn mta_sts_enforce_with_dane_only() -> (Run, Value) {
    let fx = Fixture::new();
    let leaf = self_signed_leaf_for(&[MX1]);
    let server = FakeSmtp::builder()
        .leaf(&leaf)
        .bind("127.0.0.2:0".parse().unwrap())
        .start();
    let body = policy("enforce", &[MX1]);
    let https = HttpsServer::start(&fx.pki.leaf_for(&[STS_HOST]), text_plain(body.as_bytes()));
    let dns = zone(&[(MX1, &["127.0.0.2"])])
        .tlsa(&tlsa_name(server.port(), MX1), 3, 1, 1, &leaf.spki_sha256())
        .txt("_mta-sts.example.test", STS_RECORD)
        .a(STS_HOST, "127.0.0.1")
        .txt(TLS_RPT_NAME, TLS_RPT)
        .authentic(true)
        .start();
    let ca = fx.ca_file();
    let sts_port = https.port().to_string();
    let result = check_json(
        &dns,
        server.port(),
        &[DOMAIN],
        &["--ca-file", &ca, "--mta-sts-port", &sts_port],
    );
    server.finish();
    result
}

#[test]
fn mta_sts_enforce_does_not_count_dane() {
    let (run, doc) = mta_sts_enforce_with_dane_only();

    run.assert_code(1);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "fail");
    let reason = domain_reason(&run, d, "mta-sts-unverified", "error");
    assert_eq!(
        (&reason["host"], &reason["address"]),
        (&json!(MX1), &json!("127.0.0.2"))
    );
    assert_eq!(host(d, MX1)["mta_sts_listed"], true, "{run}");
    let a = address(d, "127.0.0.2");
    assert_eq!(a["dane_verified"], true, "{run}");
    assert_eq!(a["exit_code"], 1, "{run}");
}

#[test]
fn each_address_report_carries_the_address_exit_code() {
    let (run, doc) = mta_sts_enforce_with_dane_only();
    let a = address(domain(&doc, DOMAIN), "127.0.0.2");
    assert_eq!(a["report"]["exit_code"], a["exit_code"], "{run}");
}
