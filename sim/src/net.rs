//! An in-memory multicast network on virtual time: nodes exchange datagrams through links that
//! lose, duplicate, delay and reorder them, all decided by one seeded [`Rng`].
//!
//! Datagrams to a multicast address reach every node that is not the sender (each through its
//! own downstream link, so losses are independent); datagrams to a unicast address reach the
//! node with that address through the sender's upstream link.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use proto_core::session::Transmit;
use proto_core::time::Instant;

use crate::rng::Rng;

/// One endpoint the network drives: a sender or receiver state machine with its driver.
pub trait Node: std::any::Any {
    /// Its unicast address.
    fn addr(&self) -> SocketAddr;
    /// Feeds one datagram.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]);
    /// Called when the time from `poll_timeout` has come.
    fn handle_timeout(&mut self, now: Instant);
    /// Pulls the next datagram to send into `buf`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// When it next wants `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Whether the node has stopped for good (crashed or finished); it then gets nothing more.
    fn is_down(&self) -> bool {
        false
    }
    /// Stops the node for good (a crash); nodes that cannot crash ignore it.
    fn set_down(&mut self) {}
}

/// How one direction of a path treats datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkConfig {
    /// Independent loss, parts per million.
    pub loss_ppm: u32,
    /// Burst loss: chance per datagram of starting an outage, parts per million.
    pub burst_start_ppm: u32,
    /// How long an outage lasts: everything on the link is lost until it ends.
    pub burst: Duration,
    /// Duplication, parts per million.
    pub dup_ppm: u32,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay in `0..jitter` (reorders datagrams).
    pub jitter: Duration,
}

impl LinkConfig {
    /// A link that loses `percent`% independently and delays by `delay`.
    pub fn lossy(percent: f64, delay: Duration) -> LinkConfig {
        LinkConfig {
            loss_ppm: (percent * 10_000.0) as u32,
            delay,
            ..LinkConfig::default()
        }
    }
}

#[derive(Debug, Default)]
struct LinkState {
    burst_until: Instant,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    /// Datagrams nodes sent.
    pub sent: u64,
    /// Bytes nodes sent.
    pub sent_bytes: u64,
    /// Deliveries made (one multicast datagram counts once per receiving node).
    pub delivered: u64,
    /// Deliveries dropped by loss.
    pub lost: u64,
    /// Extra deliveries from duplication.
    pub duplicated: u64,
}

struct Delivery {
    to: usize,
    from: SocketAddr,
    bytes: Rc<[u8]>,
}

/// The network: nodes, their links, the in-flight datagrams and virtual time.
pub struct Network {
    nodes: Vec<Box<dyn Node>>,
    /// Link from the sender (node 0) to node `i`, and from node `i` back.
    down: Vec<LinkConfig>,
    up: Vec<LinkConfig>,
    down_state: Vec<LinkState>,
    up_state: Vec<LinkState>,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    in_flight: Vec<Option<Delivery>>,
    free: Vec<usize>,
    order: u64,
    now: Instant,
    rng: Rng,
    buf: Vec<u8>,
    /// What happened so far.
    pub stats: NetStats,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("nodes", &self.nodes.len())
            .field("now", &self.now)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Network {
    /// An empty network at time zero.
    pub fn new(seed: u64) -> Network {
        Network {
            nodes: Vec::new(),
            down: Vec::new(),
            up: Vec::new(),
            down_state: Vec::new(),
            up_state: Vec::new(),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            free: Vec::new(),
            order: 0,
            now: Instant::from_micros(1_000_000),
            rng: Rng::new(seed),
            buf: vec![0u8; 65536],
            stats: NetStats::default(),
        }
    }

    /// Adds a node; `down` is the path from node 0 to it, `up` the path from it to the others.
    /// Node 0 is the sender by convention. Returns its index.
    pub fn add(&mut self, node: Box<dyn Node>, down: LinkConfig, up: LinkConfig) -> usize {
        self.nodes.push(node);
        self.down.push(down);
        self.up.push(up);
        self.down_state.push(LinkState::default());
        self.up_state.push(LinkState::default());
        self.nodes.len() - 1
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &dyn Node {
        &*self.nodes[i]
    }

    /// Node `i` as `Any`, for tests that know its concrete type.
    pub fn node_any(&self, i: usize) -> &dyn std::any::Any {
        let node: &dyn Node = &*self.nodes[i];
        node
    }

    /// Node `i`, mutable.
    pub fn node_mut(&mut self, i: usize) -> &mut dyn Node {
        &mut *self.nodes[i]
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn link_drops(now: Instant, cfg: &LinkConfig, state: &mut LinkState, rng: &mut Rng) -> bool {
        if now < state.burst_until {
            return true;
        }
        if rng.chance_ppm(cfg.burst_start_ppm) {
            state.burst_until = now + cfg.burst;
            return true;
        }
        rng.chance_ppm(cfg.loss_ppm)
    }

    fn schedule(&mut self, to: usize, from: SocketAddr, bytes: &Rc<[u8]>, cfg: LinkConfig) {
        let copies = 1 + u32::from(self.rng.chance_ppm(cfg.dup_ppm));
        if copies > 1 {
            self.stats.duplicated += 1;
        }
        for _ in 0..copies {
            let jitter = self.rng.below(cfg.jitter.as_micros() as u64);
            let at = self.now + cfg.delay + Duration::from_micros(jitter);
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.in_flight.push(None);
                    self.in_flight.len() - 1
                }
            };
            self.in_flight[slot] = Some(Delivery {
                to,
                from,
                bytes: bytes.clone(),
            });
            self.order += 1;
            self.queue.push(Reverse((at, self.order, slot)));
        }
    }

    /// Puts one datagram from node `i` on the path to node `to`: the sender's downstream link
    /// when `i` is the sender (node 0), otherwise `i`'s upstream link.
    fn carry(&mut self, i: usize, to: usize, from: SocketAddr, bytes: &Rc<[u8]>) {
        let (cfg, state) = if i == 0 {
            (self.down[to], &mut self.down_state[to])
        } else {
            (self.up[i], &mut self.up_state[i])
        };
        if Self::link_drops(self.now, &cfg, state, &mut self.rng) {
            self.stats.lost += 1;
        } else {
            self.schedule(to, from, bytes, cfg);
        }
    }

    /// Lets every node send what it has to send now.
    fn flush(&mut self, i: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        while !self.nodes[i].is_down() {
            let now = self.now;
            let Some(t) = self.nodes[i].poll_transmit(now, &mut buf) else {
                break;
            };
            self.stats.sent += 1;
            self.stats.sent_bytes += t.len as u64;
            let bytes: Rc<[u8]> = Rc::from(&buf[..t.len]);
            let from = self.nodes[i].addr();
            if t.dest.ip().is_multicast() {
                for to in 0..self.nodes.len() {
                    if to != i && !self.nodes[to].is_down() {
                        self.carry(i, to, from, &bytes);
                    }
                }
            } else if let Some(to) = self.nodes.iter().position(|n| n.addr() == t.dest) {
                self.carry(i, to, from, &bytes);
            }
        }
        self.buf = buf;
    }

    /// Runs until `done` holds (checked after every step) or virtual time passes `limit`.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, limit: Instant, mut done: impl FnMut(&Network) -> bool) -> bool {
        let mut stuck = 0u32;
        let mut last = self.now;
        loop {
            if self.now == last {
                stuck += 1;
                assert!(
                    stuck < 1_000_000,
                    "virtual time stuck at {:?}: timers {:?}, {} in flight",
                    self.now,
                    self.nodes
                        .iter()
                        .map(|n| n.poll_timeout())
                        .collect::<Vec<_>>(),
                    self.queue.len()
                );
            } else {
                stuck = 0;
                last = self.now;
            }
            for i in 0..self.nodes.len() {
                self.flush(i);
            }
            if done(self) {
                return true;
            }
            let next_delivery = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| !n.is_down())
                .filter_map(|n| n.poll_timeout())
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return false,
                },
            };
            if next > limit {
                self.now = limit;
                return false;
            }
            self.now = self.now.max(next);
            // Deliver everything due now, then fire due timers.
            while let Some(Reverse((t, _, slot))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let d = self.in_flight[slot].take().expect("scheduled delivery");
                self.free.push(slot);
                if self.nodes[d.to].is_down() {
                    continue;
                }
                self.stats.delivered += 1;
                let now = self.now;
                self.nodes[d.to].handle_datagram(now, d.from, &d.bytes);
                self.flush(d.to);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].is_down() {
                    continue;
                }
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    let now = self.now;
                    self.nodes[i].handle_timeout(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// Node 0 multicasts `count` numbered datagrams, one per millisecond; the others count them.
    struct Beacon {
        addr: SocketAddr,
        left: u32,
        next: Instant,
        got: Vec<u32>,
    }

    impl Node for Beacon {
        fn addr(&self) -> SocketAddr {
            self.addr
        }
        fn handle_datagram(&mut self, _now: Instant, _from: SocketAddr, bytes: &[u8]) {
            self.got
                .push(u32::from_be_bytes(bytes[..4].try_into().unwrap()));
        }
        fn handle_timeout(&mut self, _now: Instant) {}
        fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
            if self.left == 0 || now < self.next {
                return None;
            }
            self.left -= 1;
            self.next = now + Duration::from_millis(1);
            buf[..4].copy_from_slice(&self.left.to_be_bytes());
            let dest = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
            Some(Transmit { dest, len: 4 })
        }
        fn poll_timeout(&self) -> Option<Instant> {
            (self.left > 0).then_some(self.next)
        }
    }

    fn beacon(n: u8, left: u32) -> Box<Beacon> {
        Box::new(Beacon {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 1044),
            left,
            next: Instant::ZERO,
            got: Vec::new(),
        })
    }

    #[test]
    fn loss_is_independent_per_receiver_and_seeded() {
        let run = |seed| {
            let mut net = Network::new(seed);
            net.add(
                beacon(1, 10_000),
                LinkConfig::default(),
                LinkConfig::default(),
            );
            let lossy = LinkConfig::lossy(10.0, Duration::from_millis(5));
            net.add(beacon(2, 0), lossy, LinkConfig::default());
            net.add(beacon(3, 0), lossy, LinkConfig::default());
            let limit = net.now() + Duration::from_secs(60);
            net.run_until(limit, |_| false);
            net.stats
        };
        let a = run(1);
        assert_eq!(a, run(1), "same seed, same run");
        assert_ne!(a, run(2));
        assert_eq!(a.sent, 10_000);
        assert_eq!(a.delivered + a.lost, 20_000);
        assert!(
            (1_700..2_300).contains(&a.lost),
            "about 10% of 20000 lost: {}",
            a.lost
        );
    }
}
