//! Running `smtptls check` against the in-process servers (fake MX hosts on 127.0.0.x sharing one
//! port, [`TestDns`](super::dns::TestDns), an MTA-STS [`HttpsServer`](super::https::HttpsServer)),
//! and reading its `--json` document: the schema (`schemas/check.schema.json`, whose addresses
//! embed `schemas/report.schema.json`), the README's exit-code order, and lookups by domain,
//! address and reason code.

use std::net::{IpAddr, Ipv4Addr};

use jsonschema::{Registry, Validator};
use serde_json::Value;

use super::cli::{Run, smtptls};
use super::dns::TestDns;

/// The check report's schema, as shipped.
pub const CHECK_SCHEMA: &str = include_str!("../../schemas/check.schema.json");
/// The get-cert report's schema, which each address's `report` refers to.
pub const REPORT_SCHEMA: &str = include_str!("../../schemas/report.schema.json");
/// The `--timeout` every check run gets: loopback answers at once, a hang fails fast.
pub const CHECK_TIMEOUT_ARG: &str = "3";

/// The exit codes from best to worst, as README's `## check` orders them.
pub const EXIT_ORDER: [i64; 9] = [0, 8, 1, 7, 6, 4, 5, 3, 2];

/// `127.0.0.<n>`.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
}

/// `smtptls check DOMAIN… --resolver <dns> --port <port> --timeout 3 -q <more…>`.
pub fn check(dns: &TestDns, port: u16, domains: &[&str], more: &[&str]) -> Run {
    let resolver = dns.addr().to_string();
    let port = port.to_string();
    let mut args = vec!["check"];
    args.extend_from_slice(domains);
    args.extend_from_slice(&[
        "--resolver",
        &resolver,
        "--port",
        &port,
        "--timeout",
        CHECK_TIMEOUT_ARG,
        "-q",
    ]);
    args.extend_from_slice(more);
    smtptls(args)
}

/// [`check`] with `--json`: the document, after asserting that it matches the schema (see
/// [`assert_check_schema`]), that its `exit_code` is the process's, and that every exit code
/// in it is the worst of those below it.
#[track_caller]
pub fn check_json(dns: &TestDns, port: u16, domains: &[&str], more: &[&str]) -> (Run, Value) {
    let mut more = more.to_vec();
    more.push("--json");
    let run = check(dns, port, domains, &more);
    let doc = run.json();
    assert_check_schema(&run, &doc);
    assert_exit_codes_consistent(&run, &doc);
    (run, doc)
}

/// The check schema compiled, with the report schema registered for its `$ref`; offline.
pub fn check_validator() -> Validator {
    let check: Value = serde_json::from_str(CHECK_SCHEMA).expect("check.schema.json is JSON");
    let report: Value = serde_json::from_str(REPORT_SCHEMA).expect("report.schema.json is JSON");
    let report_id = report["$id"]
        .as_str()
        .expect("report schema $id")
        .to_owned();
    let registry = Registry::new()
        .add(report_id, report)
        .expect("register the report schema")
        .prepare()
        .expect("prepare the schema registry");
    jsonschema::options()
        .with_registry(&registry)
        .offline()
        .build(&check)
        .expect("the check schema compiles")
}

/// Every way `doc` breaks the check schema, one line each (empty when it matches).
pub fn check_schema_violations(doc: &Value) -> Vec<String> {
    check_validator()
        .iter_errors(doc)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect()
}

/// Assert `doc` matches `schemas/check.schema.json`.
#[track_caller]
pub fn assert_check_schema(run: &Run, doc: &Value) {
    let errors: Vec<String> = check_schema_violations(doc);
    assert!(
        errors.is_empty(),
        "the check --json output does not match schemas/check.schema.json:\n{}\n{run}",
        errors.join("\n")
    );
}

/// Where `code` stands in README's order, best (0) to worst.
pub fn exit_rank(code: i64) -> usize {
    EXIT_ORDER
        .iter()
        .position(|c| *c == code)
        .unwrap_or_else(|| panic!("{code} is not an exit code"))
}

/// The worst of these exit codes in README's order (0 for none).
pub fn worst_exit(codes: impl IntoIterator<Item = i64>) -> i64 {
    codes.into_iter().max_by_key(|c| exit_rank(*c)).unwrap_or(0)
}

/// The process exits with the top-level `exit_code`, which is the worst domain's; no domain
/// exits better than any of its addresses.
#[track_caller]
pub fn assert_exit_codes_consistent(run: &Run, doc: &Value) {
    assert_eq!(doc["exit_code"], run.code, "top-level exit_code\n{run}");
    let domains = doc["domains"].as_array().expect("domains[]");
    let worst = worst_exit(domains.iter().map(|d| d["exit_code"].as_i64().unwrap()));
    assert_eq!(
        doc["exit_code"], worst,
        "the top-level exit is the worst domain's\n{run}"
    );
    for d in domains {
        let domain_exit = d["exit_code"].as_i64().unwrap();
        for a in addresses(d) {
            let address_exit = a["exit_code"].as_i64().unwrap();
            assert!(
                exit_rank(address_exit) <= exit_rank(domain_exit),
                "{} exits {domain_exit}, better than its address {} ({address_exit})\n{run}",
                d["domain"],
                a["address"]
            );
        }
    }
}

/// The domain entry named `name`.
#[track_caller]
pub fn domain<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["domains"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["domain"] == name))
        .unwrap_or_else(|| panic!("no domain {name:?} in {doc:#}"))
}

/// The host entry named `name` in a domain.
#[track_caller]
pub fn host<'a>(domain: &'a Value, name: &str) -> &'a Value {
    domain["hosts"]
        .as_array()
        .and_then(|hs| hs.iter().find(|h| h["host"] == name))
        .unwrap_or_else(|| panic!("no host {name:?} in {}", domain["hosts"]))
}

/// Every address entry of a domain, host by host.
pub fn addresses(domain: &Value) -> Vec<&Value> {
    domain["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["addresses"].as_array().into_iter().flatten())
        .collect()
}

/// The address entry for `ip` (as text, `127.0.0.2`) in a domain.
#[track_caller]
pub fn address<'a>(domain: &'a Value, ip: &str) -> &'a Value {
    addresses(domain)
        .into_iter()
        .find(|a| a["address"] == ip)
        .unwrap_or_else(|| panic!("no address {ip} in {}", domain["hosts"]))
}

/// The verdict's reasons of a domain as `(code, severity)`, in order.
pub fn domain_reasons(domain: &Value) -> Vec<(String, String)> {
    domain["verdict"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["code"].as_str().unwrap_or_default().to_owned(),
                r["severity"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The first reason of a domain with this code, asserted to have this severity.
#[track_caller]
pub fn domain_reason<'a>(run: &Run, domain: &'a Value, code: &str, severity: &str) -> &'a Value {
    let reason = domain["verdict"]["reasons"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["code"] == code))
        .unwrap_or_else(|| {
            panic!(
                "no {code:?} reason among {:?}\n{run}",
                domain_reasons(domain)
            )
        });
    assert_eq!(reason["severity"], severity, "{code}\n{run}");
    reason
}

/// Assert a domain has no reason with this code.
#[track_caller]
pub fn assert_no_reason(run: &Run, domain: &Value, code: &str) {
    assert!(
        !domain_reasons(domain).iter().any(|(c, _)| c == code),
        "unexpected {code:?} reason\n{run}"
    );
}
