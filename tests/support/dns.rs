//! An in-process authoritative DNS server for tests (RFC 1035 over UDP and TCP), built on
//! hickory-server's `Catalog` with one in-memory authority per zone.
//!
//! Describe the records with [`TestDns::builder`], then [`TestDnsBuilder::start`]: the server
//! answers on UDP **and** TCP on the same `127.0.0.1:<port>` ([`TestDns::addr`]), from its own
//! thread with its own tokio runtime, until the handle is dropped. Unknown names inside a zone get
//! NXDOMAIN, known names without the asked type get NODATA (NOERROR, no answer, SOA in the
//! authority section), names outside every zone get REFUSED. Answers bigger than the client's
//! EDNS payload are truncated over UDP, so the TCP fallback can be tested.
//!
//! A zone is declared with [`TestDnsBuilder::zone`]; a record outside every declared zone makes
//! its owner name a zone of its own (so `.null_mx("nullmx.test")` alone is enough).
//!
//! hickory-server sets the AD bit only after validating real DNSSEC signatures, which needs its
//! DNSSEC features and signed zones. [`TestDnsBuilder::authentic`] therefore puts a small relay in
//! front instead: it owns the public UDP and TCP port, forwards each query unchanged to the
//! hickory server on a private port, and sets the AD bit (with hickory-proto's `Message` decode
//! and encode) on the way back, when the query asked for it with the AD or the EDNS DO bit, as a
//! validating resolver does (RFC 6840 §5.7).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_server::ServerFuture;
use hickory_server::authority::{AuthorityObject, Catalog, ZoneType};
use hickory_server::proto::op::Message;
use hickory_server::proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TLSA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryAuthority;

/// The TTL of every record.
const TTL: u32 = 300;
/// How long a relay waits for the hickory server, and idle TCP connections live.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the relay threads look at the stop flag.
const POLL: Duration = Duration::from_millis(10);

/// What the server will serve; see the module documentation.
#[derive(Default)]
pub struct TestDnsBuilder {
    zones: Vec<Name>,
    records: Vec<Record>,
    authentic: bool,
}

/// A running test DNS server; stopped on drop.
pub struct TestDns {
    addr: SocketAddr,
    stop: Option<Sender<()>>,
    relay_stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TestDns {
    /// Starts describing a server.
    pub fn builder() -> TestDnsBuilder {
        TestDnsBuilder::default()
    }

    /// The address it answers on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.relay_stop.store(true, Ordering::SeqCst);
        drop(self.stop.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl TestDnsBuilder {
    /// Declares a zone (its SOA is made up).
    pub fn zone(mut self, origin: &str) -> Self {
        self.zones.push(name(origin));
        self
    }

    /// Adds an MX record.
    pub fn mx(self, owner: &str, preference: u16, exchange: &str) -> Self {
        self.record(owner, RData::MX(MX::new(preference, name(exchange))))
    }

    /// Adds the null MX "0 ." (RFC 7505).
    pub fn null_mx(self, owner: &str) -> Self {
        self.record(owner, RData::MX(MX::new(0, Name::root())))
    }

    /// Adds an A record.
    pub fn a(self, owner: &str, address: &str) -> Self {
        let address: Ipv4Addr = address.parse().expect("an IPv4 address");
        self.record(owner, RData::A(A(address)))
    }

    /// Adds an AAAA record.
    pub fn aaaa(self, owner: &str, address: &str) -> Self {
        let address: Ipv6Addr = address.parse().expect("an IPv6 address");
        self.record(owner, RData::AAAA(AAAA(address)))
    }

    /// Adds a CNAME record.
    pub fn cname(self, owner: &str, target: &str) -> Self {
        self.record(owner, RData::CNAME(CNAME(name(target))))
    }

    /// Adds a TXT record of one character-string (at most 255 bytes).
    pub fn txt(self, owner: &str, text: &str) -> Self {
        self.txt_strings(owner, &[text])
    }

    /// Adds one TXT record made of several character-strings.
    pub fn txt_strings(self, owner: &str, strings: &[&str]) -> Self {
        let strings = strings.iter().map(|s| (*s).to_owned()).collect();
        self.record(owner, RData::TXT(TXT::new(strings)))
    }

    /// Adds a TLSA record.
    pub fn tlsa(self, owner: &str, usage: u8, selector: u8, matching: u8, data: &[u8]) -> Self {
        let tlsa = TLSA::new(
            CertUsage::from(usage),
            Selector::from(selector),
            Matching::from(matching),
            data.to_vec(),
        );
        self.record(owner, RData::TLSA(tlsa))
    }

    /// Sets the AD bit on answers to queries that ask for it (AD or DO), like a validating
    /// resolver that validated them.
    pub fn authentic(mut self, authentic: bool) -> Self {
        self.authentic = authentic;
        self
    }

    /// Binds the port and starts serving.
    pub fn start(self) -> TestDns {
        let authentic = self.authentic;
        let catalog = self.catalog();
        let (udp, tcp) = bind_udp_and_tcp();
        let inner = udp.local_addr().unwrap();
        let (stop, stopped) = mpsc::channel();
        let mut threads = vec![
            thread::Builder::new()
                .name("test-dns".into())
                .spawn(move || serve(catalog, udp, tcp, stopped))
                .unwrap(),
        ];
        let relay_stop = Arc::new(AtomicBool::new(false));
        let addr = if authentic {
            let (udp, tcp) = bind_udp_and_tcp();
            let addr = udp.local_addr().unwrap();
            let flag = Arc::clone(&relay_stop);
            threads.push(thread::spawn(move || relay_udp(&udp, inner, &flag)));
            let flag = Arc::clone(&relay_stop);
            threads.push(thread::spawn(move || relay_tcp(&tcp, inner, &flag)));
            addr
        } else {
            inner
        };
        TestDns {
            addr,
            stop: Some(stop),
            relay_stop,
            threads,
        }
    }

    fn record(mut self, owner: &str, rdata: RData) -> Self {
        self.records
            .push(Record::from_rdata(name(owner), TTL, rdata));
        self
    }

    /// One in-memory authority per zone, each record in the most specific zone holding it.
    fn catalog(self) -> Catalog {
        let mut zones = self.zones;
        let mut orphans: Vec<&Name> = self.records.iter().map(Record::name).collect();
        orphans.sort_by_key(|owner| owner.num_labels());
        for owner in orphans {
            if !zones.iter().any(|zone| zone.zone_of(owner)) {
                zones.push(owner.clone());
            }
        }
        let mut authorities: Vec<InMemoryAuthority> = zones.iter().map(authority).collect();
        for record in self.records {
            let (index, _) = zones
                .iter()
                .enumerate()
                .filter(|(_, zone)| zone.zone_of(record.name()))
                .max_by_key(|(_, zone)| zone.num_labels())
                .unwrap();
            assert!(authorities[index].upsert_mut(record, 1), "record rejected");
        }
        let mut catalog = Catalog::new();
        for (zone, authority) in zones.iter().zip(authorities) {
            let authority: Arc<dyn AuthorityObject> = Arc::new(authority);
            catalog.upsert(LowerName::new(zone), vec![authority]);
        }
        catalog
    }
}

/// An empty zone with a made-up SOA.
fn authority(origin: &Name) -> InMemoryAuthority {
    let mut authority = InMemoryAuthority::empty(origin.clone(), ZoneType::Primary, false);
    let soa = SOA::new(
        Name::from_ascii("ns")
            .unwrap()
            .append_domain(origin)
            .unwrap(),
        Name::from_ascii("hostmaster")
            .unwrap()
            .append_domain(origin)
            .unwrap(),
        1,
        3600,
        600,
        86400,
        60,
    );
    let record = Record::from_rdata(origin.clone(), TTL, RData::SOA(soa));
    assert!(authority.upsert_mut(record, 1), "SOA rejected");
    authority
}

fn name(text: &str) -> Name {
    let mut name = Name::from_ascii(text).expect("a domain name");
    name.set_fqdn(true);
    name
}

/// A UDP socket and a TCP listener on the same loopback port chosen by the OS.
fn bind_udp_and_tcp() -> (UdpSocket, TcpListener) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        match TcpListener::bind(udp.local_addr().unwrap()) {
            Ok(tcp) => return (udp, tcp),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => panic!("cannot bind the test DNS TCP port: {e}"),
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// The hickory server, until the stop channel closes.
fn serve(catalog: Catalog, udp: UdpSocket, tcp: TcpListener, stopped: Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut server = ServerFuture::new(catalog);
        server.register_socket_std(udp).unwrap();
        server.register_listener_std(tcp, RELAY_TIMEOUT).unwrap();
        let _ = tokio::task::spawn_blocking(move || stopped.recv()).await;
        drop(server);
    });
}

/// Relays UDP queries to the hickory server, stamping the AD bit on the answers.
fn relay_udp(front: &UdpSocket, inner: SocketAddr, stop: &AtomicBool) {
    front.set_read_timeout(Some(POLL)).unwrap();
    let mut buffer = vec![0; 65_535];
    while !stop.load(Ordering::SeqCst) {
        let Ok((len, client)) = front.recv_from(&mut buffer) else {
            continue;
        };
        let query = &buffer[..len];
        if let Ok(reply) = forward_udp(query, inner) {
            let _ = front.send_to(&stamp_ad(query, &reply), client);
        }
    }
}

fn forward_udp(query: &[u8], inner: SocketAddr) -> io::Result<Vec<u8>> {
    let upstream = UdpSocket::bind("127.0.0.1:0")?;
    upstream.set_read_timeout(Some(RELAY_TIMEOUT))?;
    upstream.connect(inner)?;
    upstream.send(query)?;
    let mut buffer = vec![0; 65_535];
    let len = upstream.recv(&mut buffer)?;
    buffer.truncate(len);
    Ok(buffer)
}

/// Accepts TCP connections for the relay until told to stop.
fn relay_tcp(front: &TcpListener, inner: SocketAddr, stop: &AtomicBool) {
    front.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::SeqCst) {
        match front.accept() {
            Ok((client, _)) => {
                thread::spawn(move || relay_tcp_connection(client, inner));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL),
            Err(_) => return,
        }
    }
}

/// Relays length-prefixed messages (RFC 1035 §4.2.2) until either side closes.
fn relay_tcp_connection(mut client: TcpStream, inner: SocketAddr) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(RELAY_TIMEOUT))?;
    let mut upstream = TcpStream::connect(inner)?;
    upstream.set_read_timeout(Some(RELAY_TIMEOUT))?;
    loop {
        let query = read_frame(&mut client)?;
        write_frame(&mut upstream, &query)?;
        let reply = read_frame(&mut upstream)?;
        write_frame(&mut client, &stamp_ad(&query, &reply))?;
    }
}

fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0; 2];
    stream.read_exact(&mut len)?;
    let mut frame = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

fn write_frame(stream: &mut TcpStream, frame: &[u8]) -> io::Result<()> {
    let len = u16::try_from(frame.len()).unwrap();
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(frame)
}

/// The reply with the AD bit set when the query asked for DNSSEC (AD or DO bit).
fn stamp_ad(query: &[u8], reply: &[u8]) -> Vec<u8> {
    let query = Message::from_vec(query).unwrap();
    let asked = query.authentic_data()
        || query
            .extensions()
            .as_ref()
            .is_some_and(|edns| edns.flags().dnssec_ok);
    let mut reply = Message::from_vec(reply).unwrap();
    reply.set_authentic_data(asked);
    reply.to_vec().unwrap()
}
