//! Proxies on the simulated network.
//!
//! - [`ProxyNode`] puts one proxy state machine on the [`Network`](crate::Network) as a hub: a
//!   response proxy beside the sender, whose receivers hear the sender and answer the proxy.
//! - [`ProxySite`] is a remote site behind a multicast tunnel, as one node: a server proxy
//!   (the site's address on the network, next to the sender), a client proxy reached through a
//!   WAN link, and receivers on the client proxy's own LAN. The network's multicast is flat, so
//!   the site's LAN, where the client proxy re-multicasts, lives inside the node: its own
//!   delays, its own seeded losses, every receiver checking every block it stores. The client
//!   proxy heartbeats the server proxy, which may learn its address from them (`-s fp=`).
//!
//! A site runs its insides on the same virtual time, event by event, whenever the network hands
//! it a datagram or a timeout; it answers the sender only, so it is a [`Role::Leaf`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proto_core::session::proxy::{Event as ProxyEvent, Proxy, ProxyConfig, MAX_DATAGRAM};
use proto_core::session::Transmit;
use proto_core::time::Instant;
use proto_core::wire::Func;

use crate::harness::ReceiverNode;
use crate::net::{ContentCheck, Node, Received, Role};
use crate::rng::Rng;

/// Sessions a simulated proxy follows at once.
pub const PROXY_GROUPS: usize = 2;
/// Clients per session a site's client proxy serves.
pub const SITE_CLIENTS: usize = 64;
/// Sessions per receiver in a site.
pub const SITE_SESSIONS: usize = 2;

/// A site's client proxy.
pub type ClientProxy = Proxy<PROXY_GROUPS, SITE_CLIENTS>;
/// A server proxy (it keeps no client table).
pub type ServerProxy = Proxy<PROXY_GROUPS, 1>;
/// A response proxy beside the sender.
pub type ResponseProxy = Proxy<PROXY_GROUPS, SITE_CLIENTS>;

/// One proxy as a hub of the network (a response proxy, or a lone server proxy).
pub struct ProxyNode<const CLIENTS: usize> {
    addr: SocketAddr,
    /// The state machine.
    pub proxy: Proxy<PROXY_GROUPS, CLIENTS>,
    /// Every event it produced.
    pub events: Vec<ProxyEvent>,
    /// Datagrams to pass on (what `handle_datagram` returned), before what it builds itself.
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl<const CLIENTS: usize> std::fmt::Debug for ProxyNode<CLIENTS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyNode")
            .field("addr", &self.addr)
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl<const CLIENTS: usize> ProxyNode<CLIENTS> {
    /// The proxy of `config` at `addr`.
    pub fn new(addr: SocketAddr, config: ProxyConfig) -> Self {
        ProxyNode {
            addr,
            proxy: Proxy::new(config).expect("valid proxy config"),
            events: Vec::new(),
            outbox: VecDeque::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.proxy.poll_event() {
            self.events.push(e);
        }
    }
}

impl<const CLIENTS: usize> Node for ProxyNode<CLIENTS> {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Received<'_>) {
        let mut bytes = datagram.bytes.to_vec();
        if let Some(t) = self.proxy.handle_datagram(now, from, &mut bytes) {
            bytes.truncate(t.len);
            self.outbox.push_back((t.dest, bytes));
        }
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.proxy.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some((dest, bytes)) = self.outbox.pop_front() {
            buf[..bytes.len()].copy_from_slice(&bytes);
            return Some(Transmit {
                dest,
                len: bytes.len(),
            });
        }
        let t = self.proxy.poll_transmit(now, buf);
        self.drain();
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        if !self.outbox.is_empty() {
            return Some(Instant::ZERO);
        }
        self.proxy.poll_timeout()
    }
}

/// A path inside a site: loss and one-way delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitePath {
    /// Independent loss, parts per million.
    pub loss_ppm: u32,
    /// One-way delay.
    pub delay: Duration,
}

impl SitePath {
    /// A path losing `percent`% with `delay`.
    pub fn lossy(percent: f64, delay: Duration) -> SitePath {
        SitePath {
            loss_ppm: (percent * 10_000.0) as u32,
            delay,
        }
    }
}

/// What happened inside a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SiteStats {
    /// Datagrams the client proxy multicast on the LAN (each reaches every receiver).
    pub lan_multicast: u64,
    /// Deliveries to receivers lost on the LAN.
    pub lan_lost: u64,
    /// Datagrams receivers sent to the client proxy (and how many the LAN lost).
    pub lan_up: u64,
    /// Of those, lost.
    pub lan_up_lost: u64,
    /// Datagrams over the WAN between the proxies, both ways, and how many were lost.
    pub wan: u64,
    /// Of those, lost.
    pub wan_lost: u64,
    /// Datagrams the site sent to the network (the server proxy's upstream traffic).
    pub sent_out: u64,
    /// Datagrams addressed somewhere the site does not lead (should stay 0).
    pub misrouted: u64,
}

/// Who inside a site a datagram or timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Server,
    Client,
    Receiver(usize),
}

struct InFlight {
    to: Part,
    from: SocketAddr,
    bytes: Arc<[u8]>,
    /// For a LAN multicast of plaintext: the check every receiver may share.
    check: Option<Arc<OnceLock<ContentCheck>>>,
}

/// A remote site: server proxy, WAN, client proxy, LAN, receivers (see the module docs).
pub struct ProxySite {
    addr: SocketAddr,
    /// The server proxy (at the site's address).
    pub server: ServerProxy,
    /// The client proxy (at `client_addr`, across the WAN).
    pub client: ClientProxy,
    client_addr: SocketAddr,
    /// The receivers on the client proxy's LAN.
    pub receivers: Vec<ReceiverNode<SITE_SESSIONS>>,
    /// Events of the two proxies.
    pub server_events: Vec<ProxyEvent>,
    /// Events of the client proxy.
    pub client_events: Vec<ProxyEvent>,
    wan: SitePath,
    lan: SitePath,
    rng: Rng,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: Vec<Option<InFlight>>,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, Part)>>,
    armed: Vec<Option<Instant>>,
    order: u64,
    now: Instant,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    buf: Vec<u8>,
    /// What happened inside.
    pub stats: SiteStats,
}

impl std::fmt::Debug for ProxySite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySite")
            .field("addr", &self.addr)
            .field("receivers", &self.receivers.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn is_multicast(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(a) => a.is_multicast(),
        IpAddr::V6(a) => a.is_multicast(),
    }
}

impl ProxySite {
    /// Site `n`: the server proxy `server` at `addr`, the client proxy `client` (its heartbeats
    /// aimed at `addr`), `receivers` (their responses aimed at the client proxy), the WAN
    /// between the proxies and the LAN of the receivers; `seed` draws the site's losses.
    pub fn new(
        addr: SocketAddr,
        server: ProxyConfig,
        client: ProxyConfig,
        receivers: Vec<ReceiverNode<SITE_SESSIONS>>,
        wan: SitePath,
        lan: SitePath,
        seed: u64,
    ) -> ProxySite {
        let client_addr = Self::client_addr_of(addr);
        let parts = 2 + receivers.len();
        let mut site = ProxySite {
            addr,
            server: Proxy::new(server).expect("valid server proxy config"),
            client: Proxy::new(client).expect("valid client proxy config"),
            client_addr,
            receivers,
            server_events: Vec::new(),
            client_events: Vec::new(),
            wan,
            lan,
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            armed: vec![None; parts],
            order: 0,
            now: Instant::ZERO,
            outbox: VecDeque::new(),
            buf: vec![0u8; MAX_DATAGRAM],
            stats: SiteStats::default(),
        };
        site.arm(Part::Server);
        site.arm(Part::Client);
        for i in 0..site.receivers.len() {
            site.arm(Part::Receiver(i));
        }
        site
    }

    /// The address of the client proxy of the site at `addr` (on its own, private network).
    pub fn client_addr_of(addr: SocketAddr) -> SocketAddr {
        let IpAddr::V4(a) = addr.ip() else {
            panic!("sites are IPv4");
        };
        let [_, b, c, d] = a.octets();
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(172, b, c, d)), 1044)
    }

    /// The client proxy's address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    fn slot(part: Part) -> usize {
        match part {
            Part::Server => 0,
            Part::Client => 1,
            Part::Receiver(i) => 2 + i,
        }
    }

    fn timeout_of(&self, part: Part) -> Option<Instant> {
        match part {
            Part::Server => self.server.poll_timeout(),
            Part::Client => self.client.poll_timeout(),
            Part::Receiver(i) => self.receivers[i].poll_timeout(),
        }
    }

    /// Records `part`'s next timer.
    fn arm(&mut self, part: Part) {
        let t = self.timeout_of(part);
        let slot = Self::slot(part);
        if self.armed[slot] != t {
            self.armed[slot] = t;
            if let Some(t) = t {
                self.timers.push(Reverse((t, part)));
            }
        }
    }

    fn schedule(&mut self, at: Instant, f: InFlight) {
        let idx = match self.free.pop() {
            Some(i) => {
                self.in_flight[i] = Some(f);
                i
            }
            None => {
                self.in_flight.push(Some(f));
                self.in_flight.len() - 1
            }
        };
        self.order += 1;
        self.queue.push(Reverse((at, self.order, idx)));
    }

    /// The earliest thing that happens inside.
    fn next_inside(&mut self) -> Option<Instant> {
        // Drop timers that were re-armed since they were pushed.
        while let Some(&Reverse((t, part))) = self.timers.peek() {
            if self.armed[Self::slot(part)] == Some(t) {
                break;
            }
            self.timers.pop();
        }
        let timer = self.timers.peek().map(|r| r.0 .0);
        let delivery = self.queue.peek().map(|r| r.0 .0);
        match (timer, delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs everything inside the site up to `until`.
    fn advance(&mut self, until: Instant) {
        while let Some(t) = self.next_inside() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            let now = self.now;
            let delivery = self.queue.peek().is_some_and(|r| r.0 .0 <= now);
            if delivery {
                let Reverse((_, _, idx)) = self.queue.pop().expect("peeked");
                let f = self.in_flight[idx].take().expect("in flight");
                self.free.push(idx);
                self.deliver(now, f);
            } else {
                let Reverse((_, part)) = self.timers.pop().expect("peeked");
                self.armed[Self::slot(part)] = None;
                match part {
                    Part::Server => {
                        self.server.handle_timeout(now);
                    }
                    Part::Client => {
                        self.client.handle_timeout(now);
                    }
                    Part::Receiver(i) => self.receivers[i].handle_timeout(now),
                }
                self.flush(now, part);
            }
        }
        self.now = self.now.max(until);
    }

    fn deliver(&mut self, now: Instant, f: InFlight) {
        match f.to {
            Part::Server => {
                let mut bytes = f.bytes.to_vec();
                if let Some(t) = self.server.handle_datagram(now, f.from, &mut bytes) {
                    self.route(now, Part::Server, t.dest, &bytes[..t.len]);
                }
            }
            Part::Client => {
                let mut bytes = f.bytes.to_vec();
                if let Some(t) = self.client.handle_datagram(now, f.from, &mut bytes) {
                    self.route(now, Part::Client, t.dest, &bytes[..t.len]);
                }
            }
            Part::Receiver(i) => {
                let mut bytes = f.bytes.to_vec();
                // Plaintext is handed over as sent, so receivers may share one content check;
                // ENCRYPTED is opened in place, each in a copy of its own.
                let encrypted = bytes.len() > 1 && Func::from(bytes[1]) == Func::Encrypted;
                let own = OnceLock::new();
                let check = f.check.as_deref().filter(|_| !encrypted).unwrap_or(&own);
                let received = Received {
                    bytes: &mut bytes,
                    pristine: !encrypted && f.check.is_some(),
                    check,
                };
                self.receivers[i].handle_datagram(now, f.from, received);
            }
        }
        self.flush(now, f.to);
    }

    /// Sends what `part` has to send, and re-arms its timer.
    fn flush(&mut self, now: Instant, part: Part) {
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let t = match part {
                Part::Server => self.server.poll_transmit(now, &mut buf),
                Part::Client => self.client.poll_transmit(now, &mut buf),
                Part::Receiver(i) => self.receivers[i].poll_transmit(now, &mut buf),
            };
            let Some(t) = t else { break };
            let bytes = buf[..t.len].to_vec();
            self.route(now, part, t.dest, &bytes);
        }
        self.buf = buf;
        while let Some(e) = self.server.poll_event() {
            self.server_events.push(e);
        }
        while let Some(e) = self.client.poll_event() {
            self.client_events.push(e);
        }
        self.arm(part);
    }

    /// Where a datagram from `from` to `dest` goes.
    fn route(&mut self, now: Instant, from: Part, dest: SocketAddr, bytes: &[u8]) {
        let bytes: Arc<[u8]> = bytes.into();
        match from {
            Part::Server if dest == self.client_addr => self.wan_to(now, Part::Client, bytes),
            Part::Server => {
                self.stats.sent_out += 1;
                self.outbox.push_back((dest, bytes.to_vec()));
            }
            Part::Client if dest == self.addr => self.wan_to(now, Part::Server, bytes),
            Part::Client if is_multicast(&dest) => {
                self.stats.lan_multicast += 1;
                let encrypted = bytes.len() > 1 && Func::from(bytes[1]) == Func::Encrypted;
                let check = (!encrypted).then(|| Arc::new(OnceLock::new()));
                for i in 0..self.receivers.len() {
                    if self.rng.chance_ppm(self.lan.loss_ppm) {
                        self.stats.lan_lost += 1;
                        continue;
                    }
                    let f = InFlight {
                        to: Part::Receiver(i),
                        from: self.client_addr,
                        bytes: bytes.clone(),
                        check: check.clone(),
                    };
                    self.schedule(now + self.lan.delay, f);
                }
            }
            Part::Receiver(i) if dest == self.client_addr => {
                self.stats.lan_up += 1;
                if self.rng.chance_ppm(self.lan.loss_ppm) {
                    self.stats.lan_up_lost += 1;
                    return;
                }
                let f = InFlight {
                    to: Part::Client,
                    from: self.receivers[i].addr(),
                    bytes,
                    check: None,
                };
                self.schedule(now + self.lan.delay, f);
            }
            _ => self.stats.misrouted += 1,
        }
    }

    fn wan_to(&mut self, now: Instant, to: Part, bytes: Arc<[u8]>) {
        self.stats.wan += 1;
        if self.rng.chance_ppm(self.wan.loss_ppm) {
            self.stats.wan_lost += 1;
            return;
        }
        let from = match to {
            Part::Client => self.addr,
            _ => self.client_addr,
        };
        let f = InFlight {
            to,
            from,
            bytes,
            check: None,
        };
        self.schedule(now + self.wan.delay, f);
    }
}

impl Node for ProxySite {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn role(&self) -> Role {
        Role::Leaf
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Received<'_>) {
        self.advance(now);
        let f = InFlight {
            to: Part::Server,
            from,
            bytes: (&*datagram.bytes).into(),
            check: None,
        };
        self.deliver(now, f);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (dest, bytes) = self.outbox.pop_front()?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Some(Transmit {
            dest,
            len: bytes.len(),
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        if !self.outbox.is_empty() {
            return Some(self.now);
        }
        let timer = self.armed.iter().flatten().min().copied();
        let delivery = self.queue.peek().map(|r| r.0 .0);
        match (timer, delivery) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
