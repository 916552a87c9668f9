//! DANE (RFC 7672) in `smtptls check`: TLSA records at `_PORT._tcp.HOST`, trusted only in a
//! DNSSEC-authenticated answer (the test DNS server stamps the AD bit), where a DANE-EE(3) or
//! DANE-TA(2) match authenticates the server whatever the Web PKI says and a miss fails it.

use rcgen::date_time_ymd;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::support::check::{address, check_json, domain, domain_reason, host};
use super::support::dns::TestDns;
use super::support::pki::{Ca, Leaf, leaf_params, self_signed_leaf_for};
use super::support::{FakeSmtp, Fixture};
use super::{DOMAIN, MX1, TLS_RPT, TLS_RPT_NAME, assert_status, tlsa_name, zone};

/// An intermediate CA under the fixture's root, and a leaf for `host` it issued, sent as
/// `[leaf, intermediate]`.
fn chain_through_intermediate(fx: &Fixture, host: &str) -> (Ca, Leaf) {
    let intermediate = fx
        .pki
        .root()
        .intermediate("smtptls DANE-TA intermediate", date_time_ymd(2099, 1, 1));
    let leaf = intermediate
        .issue(&leaf_params(&[host]))
        .followed_by(&[intermediate.der()]);
    (intermediate, leaf)
}

/// One MX (mx1 on 127.0.0.2) presenting `leaf`, with these `(usage, selector, matching, data)`
/// TLSA records at `_PORT._tcp.mx1.example.test`, served in answers that are DNSSEC-authenticated
/// or not. TLS-RPT is published, so a clean domain is `ok`.
fn dane_world(leaf: &Leaf, tlsa: &[(u8, u8, u8, Vec<u8>)], authentic: bool) -> (FakeSmtp, TestDns) {
    let server = FakeSmtp::builder()
        .leaf(leaf)
        .bind("127.0.0.2:0".parse().unwrap())
        .start();
    let mut dns = zone(&[(MX1, &["127.0.0.2"])]).txt(TLS_RPT_NAME, TLS_RPT);
    for (usage, selector, matching, data) in tlsa {
        dns = dns.tlsa(
            &tlsa_name(server.port(), MX1),
            *usage,
            *selector,
            *matching,
            data,
        );
    }
    (server, dns.authentic(authentic).start())
}

#[test]
fn dane_ee_authenticates_the_server_without_a_ca_file() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf_for(&[MX1]);
    let digest = leaf.spki_sha256();
    let (server, dns) = dane_world(&leaf, &[(3, 1, 1, digest.clone())], true);

    // No --ca-file: the Web PKI does not know the test CA; DANE alone decides.
    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);

    run.assert_code(0);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "ok");
    let dane = &host(d, MX1)["dane"];
    assert_eq!(dane["authenticated"], true, "{run}");
    assert_eq!(
        dane["records"],
        json!([{"usage": 3, "selector": 1, "matching": 1, "data": hex::encode(&digest)}])
    );
    let a = address(d, "127.0.0.2");
    assert_eq!(a["dane_verified"], true, "{run}");
    assert_eq!(
        a["dane"]["matched"],
        json!({"record": 0, "usage": 3, "certificate": 0, "chain_linked": null})
    );
    assert_eq!(a["exit_code"], 0, "{run}");
    assert_eq!(
        a["report"]["verification"]["verified"], false,
        "PKIX alone fails"
    );
    server.finish();
}

#[test]
fn dane_ta_authenticates_a_chain_sent_with_its_anchor() {
    let fx = Fixture::new();
    let (intermediate, leaf) = chain_through_intermediate(&fx, MX1);
    let digest = sha2::Sha256::digest(intermediate.der()).to_vec();
    let (server, dns) = dane_world(&leaf, &[(2, 0, 1, digest)], true);

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);

    run.assert_code(0);
    let a = address(domain(&doc, DOMAIN), "127.0.0.2");
    assert_eq!(a["dane_verified"], true, "{run}");
    assert_eq!(
        a["dane"]["matched"],
        json!({"record": 0, "usage": 2, "certificate": 1, "chain_linked": true})
    );
    server.finish();
}

#[test]
fn a_dane_mismatch_fails_even_when_pkix_verifies() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf_for(&[MX1]);
    let (server, dns) = dane_world(&leaf, &[(3, 1, 1, vec![0xAB; 32])], true);
    let ca = fx.ca_file();

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(1);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "fail");
    let reason = domain_reason(&run, d, "dane-mismatch", "error");
    assert_eq!(
        (&reason["host"], &reason["address"]),
        (&json!(MX1), &json!("127.0.0.2"))
    );
    let a = address(d, "127.0.0.2");
    assert_eq!(a["dane_verified"], false, "{run}");
    assert_eq!(a["dane"]["matched"], Value::Null, "{run}");
    assert_eq!(a["exit_code"], 1, "{run}");
    assert_eq!(
        a["report"]["verification"]["verified"], true,
        "PKIX alone passes"
    );
    server.finish();
}

#[test]
fn unauthenticated_tlsa_records_are_ignored_and_pkix_decides() {
    let fx = Fixture::new();
    let leaf = fx.pki.leaf_for(&[MX1]);
    let (server, dns) = dane_world(&leaf, &[(3, 1, 1, leaf.spki_sha256())], false);
    let ca = fx.ca_file();

    // PKIX verifies: a warning only.
    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &["--ca-file", &ca]);
    run.assert_code(0);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "warning");
    let reason = domain_reason(&run, d, "dane-unauthenticated", "warning");
    assert_eq!(reason["host"], MX1, "{run}");
    assert_eq!(host(d, MX1)["dane"]["authenticated"], false, "{run}");
    assert_eq!(
        address(d, "127.0.0.2")["dane_verified"],
        Value::Null,
        "{run}"
    );

    // PKIX does not verify: the matching but unauthenticated record does not save it.
    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);
    run.assert_code(1);
    let d = domain(&doc, DOMAIN);
    domain_reason(&run, d, "dane-unauthenticated", "warning");
    domain_reason(&run, d, "address", "error");
    assert_eq!(
        address(d, "127.0.0.2")["dane_verified"],
        Value::Null,
        "{run}"
    );
    server.finish();
}

#[test]
fn dane_ta_needs_a_leaf_the_anchor_signed() {
    let fx = Fixture::new();
    let (intermediate, _) = chain_through_intermediate(&fx, MX1);
    let anchor = sha2::Sha256::digest(intermediate.der()).to_vec();
    // An impostor CA with the intermediate's very name: its leaf's issuer names the anchor.
    let impostor = Ca::root("smtptls DANE-TA intermediate");
    let forgeries = [
        (
            "leaf from an impostor",
            impostor.issue(&leaf_params(&[MX1])),
        ),
        ("self-signed leaf", self_signed_leaf_for(&[MX1])),
    ];
    for (case, forged) in forgeries {
        // The genuine anchor is public: anyone can send it after their own leaf.
        let chain = forged.followed_by(&[intermediate.der()]);
        let (server, dns) = dane_world(&chain, &[(2, 0, 1, anchor.clone())], true);

        let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);

        assert_eq!(run.code, 1, "{case}\n{run}");
        let a = address(domain(&doc, DOMAIN), "127.0.0.2");
        assert_ne!(a["dane_verified"], true, "{case}\n{run}");
        server.finish();
    }
}

#[test]
fn dane_ta_still_checks_the_mx_name() {
    let fx = Fixture::new();
    let (intermediate, _) = chain_through_intermediate(&fx, MX1);
    let leaf = intermediate
        .issue(&leaf_params(&["other.example.test"]))
        .followed_by(&[intermediate.der()]);
    let anchor = sha2::Sha256::digest(intermediate.der()).to_vec();
    let (server, dns) = dane_world(&leaf, &[(2, 0, 1, anchor)], true);

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);

    run.assert_code(1);
    let a = address(domain(&doc, DOMAIN), "127.0.0.2");
    assert_ne!(a["exit_code"], 0, "{run}");
    server.finish();
}
