//! `smtptls check DOMAIN…` end to end, against README's `## check`: fake MX servers on 127.0.0.2,
//! .3, … sharing one port, an in-process DNS server that maps the MX hosts to them (stamping the
//! AD bit where DANE needs an authenticated answer), and an HTTPS server on 127.0.0.1 for MTA-STS
//! policies. Every `--json` run is checked against `schemas/check.schema.json` (each address's
//! report against `schemas/report.schema.json`) and README's order of exit codes.
//!
//! Here: MX hosts and their addresses, several domains, the text and `--nagios` outputs, and
//! concurrency; MTA-STS, DANE and the schema have their own modules under `tests/check/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed assumption should fail the test"
)]

mod support;

#[path = "check/dane.rs"]
mod dane;
#[path = "check/mta_sts.rs"]
mod mta_sts;
#[path = "check/schema.rs"]
mod schema;

use std::time::Duration;

use serde_json::{Value, json};
use support::check::{
    address, addresses, check, check_json, domain, domain_reason, domain_reasons, host, loopback,
};
use support::dns::{TestDns, TestDnsBuilder};
use support::server::FakeSmtpBuilder;
use support::{FakeSmtp, Fixture, Run};

const DOMAIN: &str = "example.test";
const MX1: &str = "mx1.example.test";
const MX2: &str = "mx2.example.test";
const MX3: &str = "mx3.example.test";
const TLS_RPT_NAME: &str = "_smtp._tls.example.test";
const TLS_RPT: &str = "v=TLSRPTv1; rua=mailto:tls-reports@example.test";
/// An address in 127/8 where no test ever listens.
const DEAD: &str = "127.0.0.99";

/// A fake MX with a valid certificate for `host` from the fixture's CA.
fn mx_server(fx: &Fixture, host: &str) -> FakeSmtpBuilder {
    FakeSmtp::builder().leaf(&fx.pki.leaf_for(&[host]))
}

/// A zone for [`DOMAIN`] with these MX hosts (preference 10, 20, …), each with one A record per
/// address given.
fn zone(mx: &[(&str, &[&str])]) -> TestDnsBuilder {
    let mut dns = TestDns::builder().zone(DOMAIN);
    for (i, (host, ips)) in mx.iter().enumerate() {
        let preference = 10 * (u16::try_from(i).unwrap() + 1);
        dns = dns.mx(DOMAIN, preference, host);
        for ip in *ips {
            dns = dns.a(host, ip);
        }
    }
    dns
}

/// The TLSA owner name for `host` on `port` (RFC 7672 §2.2.3).
fn tlsa_name(port: u16, host: &str) -> String {
    format!("_{port}._tcp.{host}")
}

#[track_caller]
fn assert_status(run: &Run, domain: &Value, status: &str) {
    assert_eq!(
        domain["verdict"]["status"],
        status,
        "verdict.status; reasons {:?}\n{run}",
        domain_reasons(domain)
    );
}

// ---------------------------------------------------------------------------------------------
// MX hosts and their addresses

#[test]
fn two_good_mx_pass_and_the_tls_rpt_record_is_read() {
    let fx = Fixture::new();
    let servers = FakeSmtp::start_on_one_port(vec![
        (loopback(2), mx_server(&fx, MX1)),
        (loopback(3), mx_server(&fx, MX2)),
    ]);
    let port = servers[0].port();
    let dns = zone(&[(MX1, &["127.0.0.2"]), (MX2, &["127.0.0.3"])])
        .txt(TLS_RPT_NAME, TLS_RPT)
        .start();
    let ca = fx.ca_file();

    let (run, doc) = check_json(&dns, port, &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(0);
    assert_eq!(doc["command"], "check");
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "ok");
    assert_eq!(d["exit_code"], 0);
    assert_eq!(
        d["mx"],
        json!({"kind": "hosts", "hosts": [
            {"preference": 10, "host": MX1}, {"preference": 20, "host": MX2}
        ]})
    );
    assert_eq!(d["implicit_mx"], false);
    assert_eq!(d["mta_sts"], Value::Null);
    assert_eq!(
        d["tls_rpt"]["record"]["rua"],
        json!(["mailto:tls-reports@example.test"])
    );
    assert_eq!(d["tls_rpt"]["record"]["raw"], TLS_RPT);
    for (name, ip) in [(MX1, "127.0.0.2"), (MX2, "127.0.0.3")] {
        assert_eq!(host(d, name)["resolve_error"], Value::Null, "{run}");
        let a = address(d, ip);
        assert_eq!(a["exit_code"], 0, "{ip}\n{run}");
        let report = &a["report"];
        assert_eq!(report["exit_code"], 0, "{ip}\n{run}");
        assert_eq!(report["target"]["address"], format!("{ip}:{port}"));
        assert_eq!(report["target"]["sni"], name, "SNI is the MX host's name");
        assert_eq!(report["verification"]["verified"], true, "{ip}\n{run}");
        assert_eq!(
            report["verification"]["name_checked"], name,
            "verified against the MX host's own name"
        );
    }
    for (server, name) in servers.into_iter().zip([MX1, MX2]) {
        let log = server.finish();
        assert!(log.saw("STARTTLS", false), "{log:?}");
        assert_eq!(log.tls_sessions()[0].sni.as_deref(), Some(name));
    }
}

#[test]
fn one_failing_mx_fails_the_domain_with_the_worst_exit() {
    let fx = Fixture::new();
    let cases: [(&str, FakeSmtpBuilder, i32); 2] = [
        (
            "expired certificate",
            FakeSmtp::builder().leaf(&fx.pki.expired_leaf_for(&[MX2])),
            1,
        ),
        (
            "no STARTTLS",
            mx_server(&fx, MX2).ehlo_extensions(&["PIPELINING", "SIZE 10240000"]),
            4,
        ),
    ];
    for (case, bad, code) in cases {
        let servers = FakeSmtp::start_on_one_port(vec![
            (loopback(2), mx_server(&fx, MX1)),
            (loopback(3), bad),
        ]);
        let port = servers[0].port();
        let dns = zone(&[(MX1, &["127.0.0.2"]), (MX2, &["127.0.0.3"])]).start();
        let ca = fx.ca_file();

        let (run, doc) = check_json(&dns, port, &[DOMAIN], &["--ca-file", &ca]);

        assert_eq!(run.code, code, "{case}\n{run}");
        let d = domain(&doc, DOMAIN);
        assert_status(&run, d, "fail");
        assert_eq!(d["exit_code"], code, "{case}\n{run}");
        assert_eq!(address(d, "127.0.0.2")["exit_code"], 0, "{case}\n{run}");
        let bad = address(d, "127.0.0.3");
        assert_eq!(bad["exit_code"], code, "{case}\n{run}");
        let reason = domain_reason(&run, d, "address", "error");
        assert_eq!(reason["host"], MX2, "{case}\n{run}");
        assert_eq!(reason["address"], "127.0.0.3", "{case}\n{run}");
        let reasons = d["verdict"]["reasons"].as_array().unwrap();
        assert_eq!(
            reasons.iter().filter(|r| r["code"] == "address").count(),
            1,
            "only the failing address is named\n{run}"
        );
        // No TLS-RPT record here: a warning, listed after the errors.
        assert_eq!(
            domain_reasons(d).last().unwrap(),
            &("no-tls-rpt".to_owned(), "warning".to_owned()),
            "{run}"
        );
        match code {
            1 => {
                let codes: Vec<&Value> = bad["report"]["verification"]["reasons"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| &r["code"])
                    .collect();
                assert_eq!(codes, [&json!("expired")], "{case}\n{run}");
            }
            _ => assert_eq!(
                bad["report"]["error"]["kind"], "no-starttls",
                "{case}\n{run}"
            ),
        }
        drop(servers);
    }
}

#[test]
fn without_mx_the_domains_own_address_is_the_implicit_mx() {
    let fx = Fixture::new();
    let server = mx_server(&fx, DOMAIN)
        .bind("127.0.0.2:0".parse().unwrap())
        .start();
    let dns = TestDns::builder()
        .zone(DOMAIN)
        .a(DOMAIN, "127.0.0.2")
        .txt(TLS_RPT_NAME, TLS_RPT)
        .start();
    let ca = fx.ca_file();

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(0);
    let d = domain(&doc, DOMAIN);
    assert_eq!(d["mx"], json!({"kind": "no-mx"}), "{run}");
    assert_eq!(d["implicit_mx"], true, "{run}");
    assert_status(&run, d, "warning");
    domain_reason(&run, d, "implicit-mx", "warning");
    let implicit = host(d, DOMAIN);
    assert_eq!(implicit["preference"], Value::Null, "{run}");
    let a = address(d, "127.0.0.2");
    assert_eq!(a["exit_code"], 0, "{run}");
    assert_eq!(a["report"]["verification"]["name_checked"], DOMAIN);
    server.finish();
}

#[test]
fn null_mx_means_no_mail_and_nothing_is_probed() {
    let fx = Fixture::new();
    // The domain has an address too: a null MX must not fall back to the implicit MX.
    let server = mx_server(&fx, DOMAIN)
        .bind("127.0.0.2:0".parse().unwrap())
        .expect_no_connection()
        .start();
    let dns = TestDns::builder()
        .zone(DOMAIN)
        .null_mx(DOMAIN)
        .a(DOMAIN, "127.0.0.2")
        .start();

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &[]);

    run.assert_code(0);
    let d = domain(&doc, DOMAIN);
    assert_eq!(d["mx"], json!({"kind": "null-mx"}), "{run}");
    assert_eq!(d["implicit_mx"], false, "{run}");
    assert_eq!(d["hosts"], json!([]), "{run}");
    assert_status(&run, d, "warning");
    let reason = domain_reason(&run, d, "null-mx", "warning");
    assert_eq!(reason["host"], Value::Null);
    server.finish();
}

#[test]
fn an_unreachable_address_exits_3_and_the_others_still_pass() {
    let fx = Fixture::new();
    let server = mx_server(&fx, MX1)
        .bind("127.0.0.2:0".parse().unwrap())
        .start();
    let dns = zone(&[(MX1, &["127.0.0.2", DEAD])])
        .txt(TLS_RPT_NAME, TLS_RPT)
        .start();
    let ca = fx.ca_file();

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(3);
    let d = domain(&doc, DOMAIN);
    assert_eq!(d["exit_code"], 3);
    assert_status(&run, d, "fail");
    assert_eq!(host(d, MX1)["addresses"].as_array().unwrap().len(), 2);
    assert_eq!(address(d, "127.0.0.2")["exit_code"], 0, "{run}");
    let dead = address(d, DEAD);
    assert_eq!(dead["exit_code"], 3, "{run}");
    assert_eq!(dead["report"]["error"]["kind"], "connect", "{run}");
    let reason = domain_reason(&run, d, "address", "error");
    assert_eq!(
        (&reason["host"], &reason["address"]),
        (&json!(MX1), &json!(DEAD))
    );
    server.finish();
}

#[test]
fn an_mx_host_without_addresses_is_no_address_and_exits_3() {
    let fx = Fixture::new();
    let server = mx_server(&fx, MX1)
        .bind("127.0.0.2:0".parse().unwrap())
        .start();
    // MX2 does not exist (NXDOMAIN); MX3 exists without A or AAAA (NODATA).
    let dns = zone(&[(MX1, &["127.0.0.2"]), (MX2, &[]), (MX3, &[])])
        .txt(MX3, "not an address")
        .txt(TLS_RPT_NAME, TLS_RPT)
        .start();
    let ca = fx.ca_file();

    let (run, doc) = check_json(&dns, server.port(), &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(3);
    let d = domain(&doc, DOMAIN);
    assert_status(&run, d, "fail");
    assert_eq!(address(d, "127.0.0.2")["exit_code"], 0, "{run}");
    let no_address: Vec<&Value> = d["verdict"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["code"] == "no-address")
        .collect();
    let named: Vec<&Value> = no_address.iter().map(|r| &r["host"]).collect();
    assert_eq!(named, [&json!(MX2), &json!(MX3)], "{run}");
    for r in no_address {
        assert_eq!(r["severity"], "error", "{run}");
    }
    for name in [MX2, MX3] {
        let h = host(d, name);
        assert_eq!(h["addresses"], json!([]), "{name}\n{run}");
        assert!(h["resolve_error"].is_string(), "{name}\n{run}");
    }
    server.finish();
}

// ---------------------------------------------------------------------------------------------
// Several domains, and the other output formats

/// `a.test` (one good MX on 127.0.0.2) and `b.test` (one MX with an expired certificate on
/// 127.0.0.3), sharing a port.
fn two_domains(fx: &Fixture) -> (Vec<FakeSmtp>, TestDns) {
    let servers = FakeSmtp::start_on_one_port(vec![
        (loopback(2), mx_server(fx, "mx.a.test")),
        (
            loopback(3),
            FakeSmtp::builder().leaf(&fx.pki.expired_leaf_for(&["mx.b.test"])),
        ),
    ]);
    let dns = TestDns::builder()
        .zone("a.test")
        .zone("b.test")
        .mx("a.test", 10, "mx.a.test")
        .a("mx.a.test", "127.0.0.2")
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", "127.0.0.3")
        .start();
    (servers, dns)
}

#[test]
fn two_domains_in_one_run_exit_with_the_worst() {
    let fx = Fixture::new();
    let (servers, dns) = two_domains(&fx);
    let ca = fx.ca_file();

    let (run, doc) = check_json(
        &dns,
        servers[0].port(),
        &["a.test", "b.test"],
        &["--ca-file", &ca],
    );

    run.assert_code(1);
    let names: Vec<&Value> = doc["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["domain"])
        .collect();
    assert_eq!(
        names,
        [&json!("a.test"), &json!("b.test")],
        "in the order given"
    );
    let a = domain(&doc, "a.test");
    assert_eq!(a["exit_code"], 0, "{run}");
    assert_eq!(address(a, "127.0.0.2")["exit_code"], 0, "{run}");
    let b = domain(&doc, "b.test");
    assert_eq!(b["exit_code"], 1, "{run}");
    assert_status(&run, b, "fail");
    assert_eq!(address(b, "127.0.0.3")["exit_code"], 1, "{run}");
}

#[test]
fn targets_file_gives_one_json_line_per_domain() {
    let fx = Fixture::new();
    let (servers, dns) = two_domains(&fx);
    let ca = fx.ca_file();
    let list = fx.path("domains.txt");
    std::fs::write(
        &list,
        "# domains to watch\na.test\n\nb.test # the broken one\n",
    )
    .unwrap();
    let list = list.to_string_lossy().into_owned();

    let run = check(
        &dns,
        servers[0].port(),
        &[],
        &["--targets", &list, "--ca-file", &ca, "--json"],
    );

    run.assert_code(1);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{run}")))
        .collect();
    let names: Vec<&Value> = lines.iter().map(|d| &d["domain"]).collect();
    assert_eq!(names, [&json!("a.test"), &json!("b.test")], "{run}");
    assert_eq!(lines[0]["exit_code"], 0, "{run}");
    assert_eq!(lines[1]["exit_code"], 1, "{run}");
}

#[test]
fn nagios_line_for_a_passing_and_a_failing_domain() {
    let fx = Fixture::new();
    let (servers, dns) = two_domains(&fx);
    let port = servers[0].port();
    let ca = fx.ca_file();

    let pass = check(&dns, port, &["a.test"], &["--ca-file", &ca, "--nagios"]);
    pass.assert_code(0);
    assert_eq!(pass.stdout.lines().count(), 1, "one status line\n{pass}");
    assert!(
        pass.stdout
            .starts_with("SMTPTLS OK - a.test: 1 address(es) checked, all verified | days_left="),
        "{pass}"
    );

    let fail = check(&dns, port, &["b.test"], &["--ca-file", &ca, "--nagios"]);
    fail.assert_code(2);
    assert_eq!(fail.stdout.lines().count(), 1, "one status line\n{fail}");
    assert!(
        fail.stdout.starts_with("SMTPTLS CRITICAL - b.test: "),
        "{fail}"
    );
    assert!(fail.stdout.contains("expired"), "says why\n{fail}");
}

#[test]
fn text_output_has_a_row_per_address() {
    let fx = Fixture::new();
    let (servers, dns) = two_domains(&fx);
    let port = servers[0].port();
    let ca = fx.ca_file();

    let run = check(&dns, port, &["a.test", "b.test"], &["--ca-file", &ca]);

    run.assert_code(1);
    for (domain, mx, ip, exit) in [
        ("a.test", "mx.a.test", "127.0.0.2", '0'),
        ("b.test", "mx.b.test", "127.0.0.3", '1'),
    ] {
        assert!(
            run.stdout.contains(&format!("Domain:   {domain}\n")),
            "{domain}\n{run}"
        );
        let row = run
            .stdout
            .lines()
            .find(|l| l.contains(&format!("{ip}:{port}")))
            .unwrap_or_else(|| panic!("no row for {ip}\n{run}"));
        assert!(row.trim_start().starts_with(mx), "{row}\n{run}");
        assert!(row.trim_end().ends_with(exit), "{row}\n{run}");
    }
    assert!(run.stdout.contains("Verdict:  FAIL (exit 1)"), "{run}");
    assert!(run.stdout.trim_end().ends_with("Result: exit 1"), "{run}");
}

#[test]
fn name_options_are_refused() {
    let fx = Fixture::new();
    let server = mx_server(&fx, MX1)
        .bind("127.0.0.2:0".parse().unwrap())
        .expect_no_connection()
        .start();
    let dns = zone(&[(MX1, &["127.0.0.2"])]).start();
    for option in [
        &["--sni", MX1][..],
        &["--no-sni"][..],
        &["--verify-name", MX1][..],
    ] {
        let mut more = option.to_vec();
        more.push("--json");
        let run = check(&dns, server.port(), &[DOMAIN], &more);
        run.assert_code(2);
        assert!(run.stdout.is_empty(), "no report\n{run}");
        assert!(run.stderr.contains(option[0]), "names the option\n{run}");
    }
    server.finish();
}

// ---------------------------------------------------------------------------------------------
// Concurrency

#[test]
fn addresses_are_probed_in_parallel() {
    const DELAY: Duration = Duration::from_millis(300);
    let fx = Fixture::new();
    let hosts = [
        "mx1.example.test",
        "mx2.example.test",
        "mx3.example.test",
        "mx4.example.test",
    ];
    let ips: Vec<String> = (2..=9).map(|n| format!("127.0.0.{n}")).collect();
    let servers = FakeSmtp::start_on_one_port(
        (2..=9)
            .zip(hosts.iter().flat_map(|h| [*h, *h]))
            .map(|(n, h)| (loopback(n), mx_server(&fx, h).banner_delay(DELAY)))
            .collect(),
    );
    let ip_refs: Vec<&str> = ips.iter().map(String::as_str).collect();
    let dns = zone(&[
        (hosts[0], &ip_refs[0..2]),
        (hosts[1], &ip_refs[2..4]),
        (hosts[2], &ip_refs[4..6]),
        (hosts[3], &ip_refs[6..8]),
    ])
    .txt(TLS_RPT_NAME, TLS_RPT)
    .start();
    let ca = fx.ca_file();
    let port = servers[0].port();

    let (run, doc) = check_json(&dns, port, &[DOMAIN], &["--ca-file", &ca]);

    run.assert_code(0);
    assert_eq!(addresses(domain(&doc, DOMAIN)).len(), 8, "{run}");
    // Sanity bound only (a busy machine, a debug build); the real measurement is a benchmark.
    assert!(
        run.elapsed < Duration::from_millis(1500),
        "8 addresses × {DELAY:?} took {:?}: not in parallel?\n{run}",
        run.elapsed
    );
    // The control: one at a time, the delays add up.
    let (serial, _) = check_json(
        &dns,
        port,
        &[DOMAIN],
        &["--ca-file", &ca, "--concurrency", "1"],
    );
    serial.assert_code(0);
    assert!(serial.elapsed >= DELAY * 8, "{serial}");
}
