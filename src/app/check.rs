//! `smtptls check DOMAIN…`: DNS first (MX, addresses, TLSA, MTA-STS, TLS-RPT), then every address
//! of every MX probed in parallel by a bounded pool of threads — each with the same dialogue and
//! report as get-cert — then one verdict per domain and the worst exit status over all.

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde::Serialize;

use super::findings::build_report;
use super::options::{probe_options, thresholds};
use super::{UsageError, certificate_exit, error_exit, pool};
use crate::check::dns::{Dns, MxLookup, TlsaLookup};
use crate::check::mta_sts::{self, FetchSettings, Mode};
use crate::check::{
    AddressReport, DaneReport, DomainReason, DomainReport, DomainVerdict, HostReport, MtaStsReport,
    TlsRptReport, dane, status_of, tlsrpt, worse,
};
use crate::cli::CheckArgs;
use crate::exit::Exit;
use crate::probe::{self, Outcome, ProbeOptions};
use crate::report::SCHEMA_VERSION;
use crate::smtp::transcript::Transcript;
use crate::target::{Host, Target};
use crate::verdict::Severity;

/// The whole `check` output.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The JSON layout version.
    pub schema_version: u32,
    /// "check".
    pub command: &'static str,
    /// One entry per domain, in the order given.
    pub domains: Vec<DomainReport>,
    /// The worst exit status over every domain.
    pub exit_code: u8,
}

/// What DNS said about one domain, before any probe.
struct Plan {
    domain: String,
    mx: Option<MxLookup>,
    implicit_mx: bool,
    hosts: Vec<PlannedHost>,
    mta_sts: Option<MtaStsReport>,
    tls_rpt: Option<TlsRptReport>,
    reasons: Vec<DomainReason>,
}

struct PlannedHost {
    host: String,
    preference: Option<u16>,
    addresses: Vec<IpAddr>,
    resolve_error: Option<String>,
    tlsa: Option<Result<TlsaLookup, String>>,
}

/// One probe to run.
struct Job {
    domain: usize,
    host: usize,
    opts: ProbeOptions,
    /// The host's TLSA answer, when it has records.
    tlsa: Option<TlsaLookup>,
}

/// `smtptls check`.
pub fn check(args: &CheckArgs) -> Result<Exit, UsageError> {
    if args.conn.sni.is_some() || args.conn.no_sni || args.conn.verify_name.is_some() {
        return Err(UsageError(
            "--sni, --no-sni and --verify-name do not apply to check: each MX host is verified against its own name".into(),
        ));
    }
    let names: Vec<String> = match &args.targets {
        Some(path) => pool::read_targets(path)
            .map_err(UsageError)?
            .into_iter()
            .map(|(_, name)| name)
            .collect(),
        None => args.domains.clone(),
    };
    let domains = names
        .iter()
        .map(|d| domain_name(d))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_secs(args.conn.timeout);
    let dns = Arc::new(
        Dns::new(resolver(args.resolver.as_deref())?, timeout)
            .map_err(|e| UsageError(e.to_string()))?,
    );
    let port = args.conn.port.unwrap_or(25);
    let plans = pool::run(
        &domains,
        usize::from(args.concurrency),
        |domain| plan(domain, &dns, args, port),
        |_| {},
    );
    let template = probe_options(
        &Target {
            host: Host::Name("localhost".into()),
            port: Some(port),
        },
        &args.conn,
    )?;
    let jobs = jobs(&plans, &template);
    let bar = pool::progress(jobs.len(), "addresses probed");
    let outcomes = pool::run(
        &jobs,
        usize::from(args.concurrency),
        |job| probe::probe(&job.opts, Transcript::default()),
        |_| bar.inc(1),
    );
    bar.finish_and_clear();
    let reports = assemble(plans, &jobs, outcomes, args);
    let exit = reports.iter().fold(Exit::Ok, |acc, d| {
        worse(acc, Exit::from_code(d.exit_code).unwrap_or(Exit::Usage))
    });
    let report = CheckReport {
        schema_version: SCHEMA_VERSION,
        command: "check",
        domains: reports,
        exit_code: exit.code(),
    };
    if args.conn.nagios {
        super::stdout(&format!(
            "{}\n",
            crate::report::check::nagios(&report.domains, exit)
        ));
    } else if args.conn.json && args.targets.is_some() {
        // JSON Lines: one domain a line.
        for domain in &report.domains {
            super::stdout(&format!(
                "{}\n",
                serde_json::to_string(domain).unwrap_or_default()
            ));
        }
    } else if args.conn.json {
        super::stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ));
    } else {
        let text = crate::report::check::render(&report.domains, exit);
        super::stdout(&super::colored(
            &text,
            &args.conn,
            std::io::stdout().is_terminal(),
        ));
    }
    Ok(exit)
}

fn domain_name(text: &str) -> Result<String, UsageError> {
    match text.parse::<Target>() {
        Ok(Target {
            host: Host::Name(name),
            port: None,
        }) => Ok(name),
        _ => Err(UsageError(format!(
            "{text:?} is not a mail domain (give a domain name, without a port)"
        ))),
    }
}

/// `--resolver IP[:PORT]` (IPv6 in brackets when a port is given).
fn resolver(text: Option<&str>) -> Result<Option<SocketAddr>, UsageError> {
    let Some(text) = text else { return Ok(None) };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|ip| Some(SocketAddr::new(ip, 53)))
        .map_err(|_| {
            UsageError(format!(
                "--resolver {text:?}: give an IP address, optionally with :PORT"
            ))
        })
}

fn plan(domain: &String, dns: &Arc<Dns>, args: &CheckArgs, port: u16) -> Plan {
    let mut plan = Plan {
        domain: domain.clone(),
        mx: None,
        implicit_mx: false,
        hosts: Vec::new(),
        mta_sts: None,
        tls_rpt: None,
        reasons: Vec::new(),
    };
    let mx = dns.mx(domain);
    let hosts: Vec<(String, Option<u16>)> = match &mx {
        Ok(MxLookup::Hosts { hosts }) => hosts
            .iter()
            .map(|h| (h.host.clone(), Some(h.preference)))
            .collect(),
        Ok(MxLookup::NullMx) => {
            plan.reasons.push(reason(
                "null-mx",
                Severity::Warning,
                None,
                None,
                "null MX (RFC 7505): this domain accepts no mail".into(),
            ));
            Vec::new()
        }
        Ok(MxLookup::NoMx) => {
            plan.implicit_mx = true;
            plan.reasons.push(reason(
                "implicit-mx",
                Severity::Warning,
                None,
                None,
                "no MX records: mail goes to the domain's own address (implicit MX, RFC 5321 §5.1)"
                    .into(),
            ));
            vec![(domain.clone(), None)]
        }
        Err(e) => {
            plan.reasons.push(reason(
                "dns",
                Severity::Error,
                None,
                None,
                format!("MX lookup failed: {e}"),
            ));
            Vec::new()
        }
    };
    plan.mx = mx.ok();
    for (host, preference) in hosts {
        let (addresses, resolve_error) = match dns.addresses(&host) {
            Ok(list) if list.is_empty() => (list, Some(format!("{host} has no A or AAAA record"))),
            Ok(list) => (filter_family(list, args), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let tlsa = Some(
            dns.tlsa(&format!("_{port}._tcp.{host}"))
                .map_err(|e| e.to_string()),
        );
        plan.hosts.push(PlannedHost {
            host,
            preference,
            addresses,
            resolve_error,
            tlsa,
        });
    }
    plan.mta_sts = mta_sts_report(domain, dns, args);
    plan.tls_rpt = Some(
        match dns
            .txt(&format!("_smtp._tls.{domain}"))
            .map_err(|e| e.to_string())
            .and_then(|t| tlsrpt::parse(&t))
        {
            Ok(record) => TlsRptReport {
                record,
                error: None,
            },
            Err(error) => TlsRptReport {
                record: None,
                error: Some(error),
            },
        },
    );
    plan
}

fn filter_family(list: Vec<IpAddr>, args: &CheckArgs) -> Vec<IpAddr> {
    list.into_iter()
        .filter(|ip| match (args.conn.ipv4, args.conn.ipv6) {
            (true, _) => ip.is_ipv4(),
            (_, true) => ip.is_ipv6(),
            _ => true,
        })
        .collect()
}

fn mta_sts_report(domain: &str, dns: &Arc<Dns>, args: &CheckArgs) -> Option<MtaStsReport> {
    let txts = match dns.txt(&format!("_mta-sts.{domain}")) {
        Ok(txts) => txts,
        Err(e) => {
            return Some(MtaStsReport {
                record: None,
                policy: None,
                error: Some(format!("TXT lookup failed: {e}")),
            });
        }
    };
    let record = match mta_sts::parse_record(&txts) {
        Ok(Some(record)) => record,
        Ok(None) => return None,
        Err(e) => {
            return Some(MtaStsReport {
                record: None,
                policy: None,
                error: Some(e.to_string()),
            });
        }
    };
    let resolver = dns.clone();
    let settings = FetchSettings {
        ca_files: args.conn.ca_files.clone(),
        timeout: Duration::from_secs(args.conn.timeout),
        port: args.mta_sts_port,
        resolve: Arc::new(move |host: &str| resolver.addresses(host).map_err(|e| e.to_string())),
    };
    let policy = mta_sts::fetch_policy(domain, &settings)
        .map_err(|e| e.to_string())
        .and_then(|text| mta_sts::parse_policy(&text).map_err(|e| e.to_string()));
    Some(match policy {
        Ok(policy) => MtaStsReport {
            record: Some(record),
            policy: Some(policy),
            error: None,
        },
        Err(error) => MtaStsReport {
            record: Some(record),
            policy: None,
            error: Some(error),
        },
    })
}

fn jobs(plans: &[Plan], template: &ProbeOptions) -> Vec<Job> {
    let mut jobs = Vec::new();
    for (d, plan) in plans.iter().enumerate() {
        for (h, host) in plan.hosts.iter().enumerate() {
            let Ok(server_name) = ServerName::try_from(host.host.clone()) else {
                continue;
            };
            let tlsa = match &host.tlsa {
                Some(Ok(lookup)) if !lookup.records.is_empty() => Some(lookup.clone()),
                _ => None,
            };
            for ip in &host.addresses {
                let mut opts = template.clone();
                opts.host = Host::Ip(*ip);
                opts.server_name = server_name.clone();
                opts.tls.send_sni = true;
                jobs.push(Job {
                    domain: d,
                    host: h,
                    opts,
                    tlsa: tlsa.clone(),
                });
            }
        }
    }
    jobs
}

fn assemble(
    plans: Vec<Plan>,
    jobs: &[Job],
    outcomes: Vec<Outcome>,
    args: &CheckArgs,
) -> Vec<DomainReport> {
    let mut per_job: Vec<Option<(usize, usize, AddressReport)>> = jobs
        .iter()
        .zip(outcomes)
        .map(|(job, outcome)| Some((job.domain, job.host, address_report(job, &outcome, args))))
        .collect();
    plans
        .into_iter()
        .enumerate()
        .map(|(d, plan)| {
            let mut hosts: Vec<HostReport> = plan
                .hosts
                .iter()
                .map(|h| HostReport {
                    host: h.host.clone(),
                    preference: h.preference,
                    resolve_error: h.resolve_error.clone(),
                    dane: h.tlsa.as_ref().map(|t| match t {
                        Ok(l) => DaneReport {
                            records: l.records.clone(),
                            authenticated: l.authenticated,
                            error: None,
                        },
                        Err(e) => DaneReport {
                            records: Vec::new(),
                            authenticated: false,
                            error: Some(e.clone()),
                        },
                    }),
                    mta_sts_listed: None,
                    addresses: Vec::new(),
                })
                .collect();
            for slot in &mut per_job {
                if slot.as_ref().is_some_and(|(jd, _, _)| *jd == d) {
                    if let Some((_, h, address)) = slot.take() {
                        if let Some(host) = hosts.get_mut(h) {
                            host.addresses.push(address);
                        }
                    }
                }
            }
            finish_domain(plan, hosts)
        })
        .collect()
}

/// The probe's report for one address, with DANE applied (RFC 7672): with a DNSSEC-authenticated,
/// usable TLSA record, a match authenticates the server whatever PKIX says, and no match fails it.
fn address_report(job: &Job, outcome: &Outcome, args: &CheckArgs) -> AddressReport {
    // The same report get-cert gives for this address (README: "the complete get-cert report").
    let mut report = build_report("get-cert", &job.opts, outcome, thresholds(&args.conn));
    let mut exit = match &outcome.error {
        Some(error) => error_exit(error, outcome.findings.captured.is_some()),
        None => certificate_exit(&report),
    };
    let chain = outcome
        .findings
        .captured
        .as_ref()
        .map(|c| c.chain.as_slice())
        .unwrap_or_default();
    let mut dane = match (&job.tlsa, chain.is_empty()) {
        (Some(lookup), false) => {
            let records: Vec<(u8, u8, u8, &[u8])> = lookup
                .records
                .iter()
                .map(|r| (r.usage, r.selector, r.matching, r.data.as_slice()))
                .collect();
            Some((dane::check(&records, chain), lookup.authenticated))
        }
        _ => None,
    };
    let mut dane_verified = None;
    if let Some((result, true)) = &mut dane {
        if result.usable > 0 && outcome.error.is_none() {
            let matched = dane_authenticates(result, chain, &job.opts.server_name);
            dane_verified = Some(matched);
            exit = if matched {
                Exit::Ok
            } else {
                worse(exit, Exit::VerifyFailed)
            };
        }
    }
    report.exit_code = exit.code();
    AddressReport {
        address: job.opts.host.to_string(),
        dane_verified,
        dane: dane.map(|(result, _)| result),
        exit_code: exit.code(),
        report,
    }
}

/// Whether a DANE match authenticates the server. DANE-EE(3) needs nothing more (RFC 7672
/// §3.1.1). DANE-TA(2) names a trust anchor that anyone can copy into a chain, so the chain must
/// really lead to it — signatures checked with the matched certificate as the only trust anchor —
/// and the leaf must carry the MX host's name (§3.1.2, §3.2.2). A failed DANE-TA check is written
/// into the outcome's message.
fn dane_authenticates(
    result: &mut dane::DaneOutcome,
    chain: &[rustls_pki_types::CertificateDer<'static>],
    name: &ServerName<'static>,
) -> bool {
    let Some(matched) = &result.matched else {
        return false;
    };
    if matched.usage != dane::DANE_TA {
        return true;
    }
    let Some(anchor) = chain.get(matched.certificate) else {
        return false;
    };
    match crate::tls::verify_with_anchor(chain, anchor, name) {
        Ok(()) => true,
        Err(e) => {
            result.message = format!(
                "{}; but the chain does not verify up to that trust anchor for {}: {}",
                result.message,
                name.to_str(),
                crate::tls::explain::certificate_error(&e)
            );
            false
        }
    }
}

/// DANE and MTA-STS applied to each host, then the domain's reasons, status and exit.
fn finish_domain(plan: Plan, mut hosts: Vec<HostReport>) -> DomainReport {
    let mut reasons = plan.reasons;
    let policy = plan.mta_sts.as_ref().and_then(|m| m.policy.clone());
    if let Some(error) = plan.mta_sts.as_ref().and_then(|m| m.error.clone()) {
        reasons.push(reason(
            "mta-sts-error",
            Severity::Error,
            None,
            None,
            format!("MTA-STS: {error}"),
        ));
    }
    if plan
        .tls_rpt
        .as_ref()
        .is_some_and(|t| t.record.is_none() && t.error.is_none())
    {
        reasons.push(reason(
            "no-tls-rpt",
            Severity::Warning,
            None,
            None,
            "no TLS-RPT record: TLS failures will not be reported to you".into(),
        ));
    }
    // A failed DNS lookup is a failure to reach the domain (3); a policy error fails verification (1).
    let mut exit = reasons
        .iter()
        .filter(|r| r.severity == Severity::Error)
        .fold(Exit::Ok, |acc, r| {
            worse(
                acc,
                if r.code == "dns" {
                    Exit::Connect
                } else {
                    Exit::VerifyFailed
                },
            )
        });
    for host in &mut hosts {
        if let Some(error) = &host.resolve_error {
            reasons.push(reason(
                "no-address",
                Severity::Error,
                Some(&host.host),
                None,
                error.clone(),
            ));
            exit = worse(exit, Exit::Connect);
        }
        let listed = policy.as_ref().map(|p| {
            p.mx.iter()
                .any(|pattern| mta_sts::mx_matches(pattern, &host.host))
        });
        host.mta_sts_listed = listed;
        let enforce = policy.as_ref().is_some_and(|p| p.mode == Mode::Enforce);
        if listed == Some(false) {
            let severity = if enforce {
                Severity::Error
            } else {
                Severity::Warning
            };
            reasons.push(reason(
                "mta-sts-unlisted",
                severity,
                Some(&host.host),
                None,
                format!(
                    "{} is not among the MTA-STS policy's mx patterns",
                    host.host
                ),
            ));
            if enforce {
                exit = worse(exit, Exit::VerifyFailed);
            }
        }
        if host
            .dane
            .as_ref()
            .is_some_and(|d| !d.records.is_empty() && !d.authenticated)
        {
            reasons.push(reason(
                "dane-unauthenticated",
                Severity::Warning,
                Some(&host.host),
                None,
                format!("{} has TLSA records but the answer was not DNSSEC-authenticated: they are ignored (RFC 7672 §2.2)", host.host),
            ));
        }
        for address in &mut host.addresses {
            let mut address_exit = Exit::from_code(address.exit_code).unwrap_or(Exit::Usage);
            if address.dane_verified == Some(false) {
                let message = address
                    .dane
                    .as_ref()
                    .map_or_else(String::new, |d| d.message.clone());
                reasons.push(reason(
                    "dane-mismatch",
                    Severity::Error,
                    Some(&host.host),
                    Some(&address.address),
                    format!("DANE: {message}"),
                ));
            }
            let pkix_verified = address
                .report
                .verification
                .as_ref()
                .is_some_and(|v| v.verified);
            if policy.is_some() && listed == Some(true) && !pkix_verified {
                let severity = if enforce {
                    Severity::Error
                } else {
                    Severity::Warning
                };
                reasons.push(reason(
                    "mta-sts-unverified",
                    severity,
                    Some(&host.host),
                    Some(&address.address),
                    format!("MTA-STS requires a certificate valid for {} from a trusted CA; this address's did not verify", host.host),
                ));
                if enforce {
                    address_exit = worse(address_exit, Exit::VerifyFailed);
                }
            }
            if address_exit != Exit::Ok {
                let message = address_problem(address);
                let severity = if address_exit == Exit::ExpiresSoon {
                    Severity::Warning
                } else {
                    Severity::Error
                };
                reasons.push(reason(
                    "address",
                    severity,
                    Some(&host.host),
                    Some(&address.address),
                    message,
                ));
            }
            address.exit_code = address_exit.code();
            address.report.exit_code = address_exit.code();
            exit = worse(exit, address_exit);
        }
    }
    reasons.sort_by_key(|r| r.severity == Severity::Warning);
    DomainReport {
        domain: plan.domain,
        mx: plan.mx,
        implicit_mx: plan.implicit_mx,
        hosts,
        mta_sts: plan.mta_sts,
        tls_rpt: plan.tls_rpt,
        verdict: DomainVerdict {
            status: status_of(&reasons),
            reasons,
        },
        exit_code: exit.code(),
    }
}

fn address_problem(address: &AddressReport) -> String {
    let report = &address.report;
    if let Some(error) = &report.error {
        return error.message.clone();
    }
    report
        .verification
        .as_ref()
        .and_then(|v| v.reasons.first().map(|r| r.message.clone()))
        .unwrap_or_else(|| format!("exit {}", address.exit_code))
}

fn reason(
    code: &'static str,
    severity: Severity,
    host: Option<&str>,
    address: Option<&str>,
    message: String,
) -> DomainReason {
    DomainReason {
        code,
        severity,
        host: host.map(str::to_owned),
        address: address.map(str::to_owned),
        message,
    }
}
