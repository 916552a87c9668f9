//! DNS lookups for `smtptls check`: the MX hosts of a domain (RFC 5321 §5.1, null MX RFC 7505),
//! their addresses, TXT records (MTA-STS RFC 8461 §3.1, TLS-RPT RFC 8460 §3) and TLSA records
//! (DANE, RFC 6698 and RFC 7672).
//!
//! [`Dns`] is a blocking facade: callers are plain threads; a private tokio current-thread runtime
//! drives hickory's UDP and TCP exchanges underneath. It asks one recursive resolver at a time (the
//! one given with `--resolver`, or the `nameserver` lines of `/etc/resolv.conf`, in order) and keeps
//! no cache, so every call goes to the resolver.
//!
//! Each query goes over UDP with EDNS (1232-byte payload); a lost datagram is retried once; a
//! truncated answer is asked again over TCP. Every attempt is bounded by the timeout given to
//! [`Dns::new`] (over TCP, connecting and answering each), so a silent resolver costs two
//! timeouts per query. A resolver that times out, refuses or answers SERVFAIL is passed over for
//! the next one. [`Dns::addresses`] makes two queries (A, AAAA), and a CNAME may add some.
//!
//! **DNSSEC status is taken from the AD bit of the resolver's answer**, as Postfix does: the TLSA
//! query sets the AD bit (RFC 6840 §5.7) and the EDNS DO bit (RFC 3225), and
//! [`TlsaLookup::authenticated`] is the AD bit of the answer that came back, for TLSA records and
//! for their authenticated absence alike. smtptls does not validate signatures itself, so use a
//! validating resolver you trust (e.g. a local unbound) over a trusted path (loopback): anyone on
//! the path to the resolver can set that bit. hickory-resolver's `Resolver` returns records
//! without the response header, so this module sends its own queries through hickory's connection
//! provider (`hickory_resolver::name_server`) and reads the header of every response.
//!
//! A CNAME chain is followed through the answer section; when the answer stops at a CNAME whose
//! target records it does not carry, the target is asked for in a new query (a few at most), and
//! `authenticated` then needs the AD bit on every answer of the chain.
//!
//! Answers are hostile input: records of other types, or owned by names off the CNAME chain of
//! the question, are ignored; names are lowercased ASCII (IDNs in their `xn--` form); text is
//! decoded lossily. Error reasons may quote resolver-supplied names: sanitize before printing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::name_server::{ConnectionProvider, TokioConnectionProvider};
use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::proto::xfer::{
    DnsHandle, DnsRequest, DnsRequestOptions, DnsResponse, FirstAnswer, Protocol,
};
use hickory_resolver::proto::{ProtoError, ProtoErrorKind};
use serde::Serialize;

/// The EDNS UDP payload size offered to the resolver (DNS flag day 2020).
const EDNS_PAYLOAD: u16 = 1232;
/// UDP attempts per resolver and name when the answer does not come in time.
const UDP_ATTEMPTS: u32 = 2;
/// The longest CNAME chain followed inside one answer.
const MAX_CNAME_HOPS: usize = 8;
/// Queries for one lookup when answers end on a CNAME without the target's records (an
/// authoritative server, or a resolver that does not finish the chain, answers that way).
const MAX_CNAME_QUERIES: usize = 4;

/// A blocking DNS client for `smtptls check`, safe to share between probe threads (`Send + Sync`).
pub struct Dns {
    // Declared before `runtime`: the provider's background tasks are dropped while it still runs.
    provider: TokioConnectionProvider,
    options: ResolverOpts,
    servers: Vec<SocketAddr>,
    runtime: tokio::runtime::Runtime,
}

/// The outcome of an MX lookup (RFC 5321 §5.1, RFC 7505).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MxLookup {
    /// The MX hosts, sorted by preference, then by name.
    Hosts {
        /// The hosts; never empty.
        hosts: Vec<MxHost>,
    },
    /// A single MX record "0 ." (RFC 7505): the domain accepts no mail.
    NullMx,
    /// The domain exists but has no MX record: the caller uses the implicit MX, the domain itself
    /// (RFC 5321 §5.1).
    NoMx,
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// The preference; lower is tried first.
    pub preference: u16,
    /// The exchange host, lowercased, without the trailing dot.
    pub host: String,
}

/// The outcome of a TLSA lookup (RFC 6698 §2, RFC 7672 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsaLookup {
    /// The TLSA records; empty when the name has none or does not exist.
    pub records: Vec<Tlsa>,
    /// The AD bit of the resolver's answer: the resolver says it validated the answer (records or
    /// their absence) with DNSSEC. Only as trustworthy as the resolver and the path to it.
    pub authenticated: bool,
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tlsa {
    /// Certificate usage: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// Selector: 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// Matching type: 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    /// The certificate association data; serialized as lowercase hex.
    #[serde(serialize_with = "lowercase_hex")]
    pub data: Vec<u8>,
}

/// Why a lookup gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The name does not exist (NXDOMAIN).
    #[error("{name} does not exist in DNS (NXDOMAIN)")]
    NxDomain {
        /// The name looked up.
        name: String,
    },
    /// No resolver answered in time.
    #[error("DNS lookup of {name} timed out")]
    Timeout {
        /// The name looked up.
        name: String,
    },
    /// The name is not valid, or the resolver failed or answered with an error.
    #[error("DNS lookup of {name} failed: {reason}")]
    Failed {
        /// The name looked up.
        name: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The resolver could not be set up.
    #[error("cannot set up DNS resolution: {0}")]
    Setup(String),
}

impl Dns {
    /// `server`: a specific resolver (`--resolver IP[:PORT]`, port default 53, UDP with TCP
    /// fallback); None = the system configuration (/etc/resolv.conf). `timeout` bounds each
    /// attempt (see the module documentation).
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, DnsError> {
        let servers = match server {
            Some(addr) => vec![addr],
            None => system_servers()?,
        };
        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DnsError::Setup(format!("cannot start the DNS runtime: {e}")))?;
        Ok(Self {
            provider: TokioConnectionProvider::default(),
            options,
            servers,
            runtime,
        })
    }

    /// The MX records of `domain`. NXDOMAIN is [`DnsError::NxDomain`]; an existing domain without
    /// MX records is [`MxLookup::NoMx`].
    pub fn mx(&self, domain: &str) -> Result<MxLookup, DnsError> {
        let answer = self.query(domain, RecordType::MX, false)?;
        if answer.nxdomain {
            return Err(DnsError::NxDomain {
                name: domain.to_owned(),
            });
        }
        let records = answer.records.iter().filter_map(|rdata| match rdata {
            RData::MX(mx) => Some((mx.preference(), mx.exchange())),
            _ => None,
        });
        Ok(classify_mx(records.collect()))
    }

    /// The IPv4 then IPv6 addresses of `host`; empty when it has neither (NODATA or NXDOMAIN).
    pub fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let mut addresses = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            let answer = self.query(host, rtype, false)?;
            addresses.extend(answer.records.iter().filter_map(|rdata| match rdata {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            }));
            if answer.nxdomain {
                break;
            }
        }
        Ok(addresses)
    }

    /// The TXT records of `name`, each one's character-strings concatenated (as RFC 7208 §3.3
    /// reads them) and decoded lossily as UTF-8; empty when there are none.
    pub fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let answer = self.query(name, RecordType::TXT, false)?;
        let texts = answer.records.iter().filter_map(|rdata| match rdata {
            RData::TXT(txt) => {
                let bytes: Vec<u8> = txt.iter().flat_map(|s| s.iter().copied()).collect();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            _ => None,
        });
        Ok(texts.collect())
    }

    /// The TLSA records of `name` (e.g. `_25._tcp.mx.example.com`, RFC 7672 §2.2), with the AD
    /// bit of the resolver's answer; empty records when there are none.
    pub fn tlsa(&self, name: &str) -> Result<TlsaLookup, DnsError> {
        let answer = self.query(name, RecordType::TLSA, true)?;
        let records = answer.records.iter().filter_map(|rdata| match rdata {
            RData::TLSA(tlsa) => Some(Tlsa {
                usage: tlsa.cert_usage().into(),
                selector: tlsa.selector().into(),
                matching: tlsa.matching().into(),
                data: tlsa.cert_data().to_vec(),
            }),
            _ => None,
        });
        Ok(TlsaLookup {
            records: records.collect(),
            authenticated: answer.authenticated,
        })
    }

    /// Resolves `name`, following a CNAME chain the answer leaves unfinished with a new query.
    fn query(&self, name: &str, rtype: RecordType, dnssec: bool) -> Result<Answer, DnsError> {
        let mut qname = parse_name(name)?;
        let mut authenticated = true;
        for _ in 0..MAX_CNAME_QUERIES {
            let response = self
                .resolve(&qname, rtype, dnssec)
                .map_err(|failure| failure.into_error(name))?;
            let (owner, records) = records_at_chain_end(&response, &qname, rtype);
            authenticated &= response.authentic_data();
            let nxdomain = response.response_code() == ResponseCode::NXDomain;
            if records.is_empty() && !nxdomain && !owner.eq_ignore_root(&qname) {
                qname = owner;
                continue;
            }
            return Ok(Answer {
                nxdomain,
                authenticated,
                records,
            });
        }
        Err(DnsError::Failed {
            name: name.to_owned(),
            reason: "the CNAME chain is too long".to_owned(),
        })
    }

    /// Asks the resolvers in turn until one answers NOERROR or NXDOMAIN.
    fn resolve(
        &self,
        qname: &Name,
        rtype: RecordType,
        dnssec: bool,
    ) -> Result<DnsResponse, Failure> {
        let mut failures = Vec::new();
        for &server in &self.servers {
            match self
                .runtime
                .block_on(self.ask(server, qname, rtype, dnssec))
            {
                Ok(response) => match response.response_code() {
                    ResponseCode::NoError | ResponseCode::NXDomain => return Ok(response),
                    code => failures.push(Failure::Failed(format!("{server} answered {code}"))),
                },
                Err(e) => failures.push(Failure::from_proto(server, &e)),
            }
        }
        Err(Failure::worst(failures))
    }

    /// One resolver: UDP, once more on a timeout, then TCP if the answer was truncated.
    async fn ask(
        &self,
        server: SocketAddr,
        qname: &Name,
        rtype: RecordType,
        dnssec: bool,
    ) -> Result<DnsResponse, ProtoError> {
        let mut attempt = 1;
        let response = loop {
            match self
                .exchange(server, Protocol::Udp, qname, rtype, dnssec)
                .await
            {
                Err(e) if is_timeout(&e) && attempt < UDP_ATTEMPTS => attempt += 1,
                other => break other?,
            }
        };
        if response.truncated() {
            return self
                .exchange(server, Protocol::Tcp, qname, rtype, dnssec)
                .await;
        }
        Ok(response)
    }

    /// One query over one transport, bounded by the timeout.
    async fn exchange(
        &self,
        server: SocketAddr,
        protocol: Protocol,
        qname: &Name,
        rtype: RecordType,
        dnssec: bool,
    ) -> Result<DnsResponse, ProtoError> {
        let config = NameServerConfig::new(server, protocol);
        let connection = self
            .provider
            .new_connection(&config, &self.options)?
            .await?;
        connection
            .send(request(qname, rtype, dnssec))
            .first_answer()
            .await
    }
}

/// Builds a recursive query; with `dnssec`, the AD bit and the EDNS DO bit are set.
fn request(qname: &Name, rtype: RecordType, dnssec: bool) -> DnsRequest {
    let mut message = Message::new();
    message
        .add_query(Query::query(qname.clone(), rtype))
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .set_authentic_data(dnssec);
    message
        .extensions_mut()
        .get_or_insert_with(Edns::new)
        .set_max_payload(EDNS_PAYLOAD)
        .set_version(0)
        .set_dnssec_ok(dnssec);
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.edns_set_dnssec_ok = dnssec;
    options.recursion_desired = true;
    DnsRequest::new(message, options)
}

/// What the answers to a question said.
struct Answer {
    /// The last name of the chain does not exist.
    nxdomain: bool,
    /// Every answer along the chain carried the AD bit.
    authenticated: bool,
    /// The records of the asked type owned by the end of the CNAME chain.
    records: Vec<RData>,
}

/// Follows the CNAME chain from `qname` through the answer section; returns the last name and
/// the records of type `rtype` it owns. Records owned by other names are ignored.
fn records_at_chain_end(response: &Message, qname: &Name, rtype: RecordType) -> (Name, Vec<RData>) {
    let answers = response.answers();
    let mut owner = qname.clone();
    for _ in 0..MAX_CNAME_HOPS {
        let next = answers.iter().find_map(|record| match record.data() {
            RData::CNAME(target) if record.name().eq_ignore_root(&owner) => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    let records = answers
        .iter()
        .filter(|record| record.record_type() == rtype && record.name().eq_ignore_root(&owner))
        .map(|record| record.data().clone())
        .collect();
    (owner, records)
}

/// Why one resolver gave no usable answer.
enum Failure {
    Timeout,
    Failed(String),
}

impl Failure {
    fn from_proto(server: SocketAddr, error: &ProtoError) -> Self {
        if is_timeout(error) {
            Self::Timeout
        } else {
            Self::Failed(format!("{server}: {error}"))
        }
    }

    /// A timeout only when every resolver timed out; otherwise the first real failure.
    fn worst(failures: Vec<Self>) -> Self {
        let mut worst = Self::Failed("no resolver was asked".to_owned());
        for failure in failures {
            match failure {
                Self::Failed(_) => return failure,
                Self::Timeout => worst = Self::Timeout,
            }
        }
        worst
    }

    fn into_error(self, name: &str) -> DnsError {
        let name = name.to_owned();
        match self {
            Self::Timeout => DnsError::Timeout { name },
            Self::Failed(reason) => DnsError::Failed { name, reason },
        }
    }
}

fn is_timeout(error: &ProtoError) -> bool {
    match error.kind() {
        ProtoErrorKind::Timeout => true,
        ProtoErrorKind::Io(e) => e.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    }
}

/// The resolvers of /etc/resolv.conf, in order.
fn system_servers() -> Result<Vec<SocketAddr>, DnsError> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DnsError::Setup(format!("cannot read /etc/resolv.conf: {e}")))?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for server in config.name_servers() {
        if server.protocol == Protocol::Udp && !servers.contains(&server.socket_addr) {
            servers.push(server.socket_addr);
        }
    }
    if servers.is_empty() {
        return Err(DnsError::Setup(
            "/etc/resolv.conf names no resolver; give one with --resolver".to_owned(),
        ));
    }
    Ok(servers)
}

/// A fully qualified name from what the user or a record gave; IDNs become `xn--` labels.
fn parse_name(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_utf8(name).map_err(|e| DnsError::Failed {
        name: name.to_owned(),
        reason: format!("not a valid domain name ({e})"),
    })?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

/// Null MX when the only record is "." (RFC 7505 §3); a "." among real hosts is dropped.
fn classify_mx(records: Vec<(u16, &Name)>) -> MxLookup {
    if records.is_empty() {
        return MxLookup::NoMx;
    }
    let mut hosts: Vec<MxHost> = records
        .into_iter()
        .filter(|(_, exchange)| !exchange.is_root())
        .map(|(preference, exchange)| MxHost {
            preference,
            host: host_name(exchange),
        })
        .collect();
    if hosts.is_empty() {
        return MxLookup::NullMx;
    }
    hosts.sort_by(|a, b| (a.preference, &a.host).cmp(&(b.preference, &b.host)));
    hosts.dedup();
    MxLookup::Hosts { hosts }
}

/// A name as lowercase ASCII without the trailing dot.
fn host_name(name: &Name) -> String {
    let ascii = name.to_lowercase().to_ascii();
    match ascii.strip_suffix('.') {
        Some(stripped) => stripped.to_owned(),
        None => ascii,
    }
}

fn lowercase_hex<S: serde::Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(data))
}

#[cfg(test)]
mod tests {
    use super::{MxHost, MxLookup, Name, Tlsa, TlsaLookup, classify_mx};

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn mx_records_are_classified() {
        let root = Name::root();
        let (a, b, upper) = (name("b.example."), name("a.example."), name("MX.Example."));
        let table: Vec<(Vec<(u16, &Name)>, MxLookup)> = vec![
            (vec![], MxLookup::NoMx),
            (vec![(0, &root)], MxLookup::NullMx),
            (vec![(10, &root)], MxLookup::NullMx),
            (
                vec![(20, &a), (10, &a), (10, &b), (0, &root), (20, &a)],
                MxLookup::Hosts {
                    hosts: vec![
                        MxHost {
                            preference: 10,
                            host: "a.example".into(),
                        },
                        MxHost {
                            preference: 10,
                            host: "b.example".into(),
                        },
                        MxHost {
                            preference: 20,
                            host: "b.example".into(),
                        },
                    ],
                },
            ),
            (
                vec![(5, &upper)],
                MxLookup::Hosts {
                    hosts: vec![MxHost {
                        preference: 5,
                        host: "mx.example".into(),
                    }],
                },
            ),
        ];
        for (records, expected) in table {
            assert_eq!(classify_mx(records), expected);
        }
    }

    #[test]
    fn dns_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Dns>();
    }

    #[test]
    fn json_shapes() {
        let null = serde_json::to_value(MxLookup::NullMx).unwrap();
        assert_eq!(null, serde_json::json!({"kind": "null-mx"}));
        let none = serde_json::to_value(MxLookup::NoMx).unwrap();
        assert_eq!(none, serde_json::json!({"kind": "no-mx"}));
        let hosts = MxLookup::Hosts {
            hosts: vec![MxHost {
                preference: 10,
                host: "mx.example".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(hosts).unwrap(),
            serde_json::json!({"kind": "hosts", "hosts": [{"preference": 10, "host": "mx.example"}]})
        );
        let tlsa = TlsaLookup {
            records: vec![Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0xAB, 0x01],
            }],
            authenticated: true,
        };
        assert_eq!(
            serde_json::to_value(tlsa).unwrap(),
            serde_json::json!({"records": [{"usage": 3, "selector": 1, "matching": 1, "data": "ab01"}], "authenticated": true})
        );
    }
}
