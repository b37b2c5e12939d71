//! An in-memory multicast network on virtual time, built to carry one sender's datagrams to
//! tens of thousands of receivers.
//!
//! # Nodes: hubs and leaves
//! Every node is a [`Node`]. *Hubs* ([`Role::Hub`]: the sender, node 0, and anything else
//! that talks to other nodes, such as an attacker) run event by event. *Leaves*
//! ([`Role::Leaf`]: receivers) hear hubs and answer hubs only; they are stepped in batches.
//!
//! Datagrams to a multicast address reach every other node; datagrams to a unicast address reach
//! the node with that address. From node 0 to a leaf a datagram crosses the sender's interface
//! ([`SenderLink`]), then the leaf's downstream path (its `down` [`LinkConfig`]); from a leaf to
//! a hub, the leaf's `up` path; from any other hub, that hub's `up` path; from node 0 to another
//! hub, that hub's `down` path.
//!
//! # Epochs
//! A leaf's answer reaches a hub no sooner than the shortest upstream delay of any leaf, the
//! *lookahead* `L`. So the network advances in epochs `[T, T + L)`: first the hubs run through
//! the epoch, event by event; everything they send to leaves in it is then known, and each
//! leaf runs through the epoch on its own — its deliveries, timers and answers in time order,
//! its state hot in the cache. With `L` zero an epoch is one instant (and hubs and leaves
//! alternate within it until nothing is left). The results do not depend on the order in which
//! leaves are stepped: every random draw for a leaf's paths comes from that leaf's own
//! generator, and what leaves send is merged in (time, leaf) order. With `threads > 1`
//! ([`Network::set_threads`]) leaves are stepped on several threads, with the same results.
//!
//! # Multicast fan-out
//! Leaves whose downstream paths share delay, rate, queue and MTU form a *class*: node 0's
//! multicast datagram is one entry in the class's log, with one arrival instant, and each leaf
//! draws its own loss (and duplication, jitter, reordering) as it reaches the entry. Datagram
//! bytes are shared; a leaf is handed a buffer holding them ([`Received`]), which the network
//! checks afterwards was left as it was (so facts checked once about those bytes — see
//! [`ContentCheck`] — hold for every leaf), except for ENCRYPTED datagrams, which receivers
//! decrypt in place: those each get a private copy.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proto_core::session::Transmit;
use proto_core::time::Instant;
use proto_core::wire::{FileSegRepr, Func, HeaderRepr, Repr, TfmccDataInfoRepr};

use crate::link::{ns_to_instant, Bottleneck, Fate, LinkState, IP_UDP_OVERHEAD};
use crate::rng::Rng;

pub use crate::link::{GilbertElliott, LinkConfig};

/// How the network runs a node (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Run event by event; may talk to anyone.
    #[default]
    Hub,
    /// Hears hubs and answers hubs only; stepped in batches.
    Leaf,
}

/// A fact a node established about a byte range of a datagram, recorded with the datagram so
/// that every other node handed the same bytes can reuse it: `bytes[start..start + len]` is
/// (`ok`) or is not the content identified by `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentCheck {
    /// Start of the range in the datagram.
    pub start: usize,
    /// Its length.
    pub len: usize,
    /// What it was compared with (the checker's own naming, e.g. content seed and offset).
    pub key: (u64, u64),
    /// Whether it matched.
    pub ok: bool,
}

/// A datagram as handed to [`Node::handle_datagram`].
#[derive(Debug)]
pub struct Received<'a> {
    /// The datagram, in a buffer the node may change in place.
    pub bytes: &'a mut [u8],
    /// Whether `bytes` are the datagram as sent and shared with other receivers of it: the
    /// network checks after the node returns that they were left unchanged, so a
    /// [`ContentCheck`] made on them holds for every node handed them. False for private
    /// copies (ENCRYPTED datagrams, which receivers decrypt in place).
    pub pristine: bool,
    /// The datagram's shared check (set by the first node that makes one).
    pub check: &'a OnceLock<ContentCheck>,
}

/// One endpoint the network drives: a sender or receiver state machine with its driver.
pub trait Node: Any + Send {
    /// Its unicast address.
    fn addr(&self) -> SocketAddr;
    /// How the network runs it.
    fn role(&self) -> Role {
        Role::Hub
    }
    /// Feeds one datagram.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Received<'_>);
    /// Feeds one plaintext FILESEG that the network parsed once for all its receivers (the
    /// bulk of all deliveries); by default as any other datagram.
    fn handle_fileseg(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: Received<'_>,
        parsed: &ParsedFileSeg,
    ) {
        let _ = parsed;
        self.handle_datagram(now, from, datagram)
    }
    /// Called when the time from `poll_timeout` has come.
    fn handle_timeout(&mut self, now: Instant);
    /// Pulls the next datagram to send into `buf`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// When it next wants `handle_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// `poll_transmit`, and when that has nothing, `poll_timeout` (one call where the network
    /// asks both after every delivery).
    fn poll(&mut self, now: Instant, buf: &mut [u8]) -> Polled {
        match self.poll_transmit(now, buf) {
            Some(t) => Polled::Transmit(t),
            None => Polled::Idle(self.poll_timeout()),
        }
    }
    /// Whether the node has stopped for good (crashed or finished); it then gets nothing more.
    fn is_down(&self) -> bool {
        false
    }
    /// Stops the node for good (a crash); nodes that cannot crash ignore it.
    fn set_down(&mut self) {}
}

/// What [`Node::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    /// A datagram to send (ask again).
    Transmit(Transmit),
    /// Nothing to send; the node's next timeout.
    Idle(Option<Instant>),
}

/// A FILESEG as [`Repr::parse_fileseg`] parsed it, without its data (which starts at
/// `data_start` in the datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFileSeg {
    /// The header.
    pub header: HeaderRepr,
    /// File ID.
    pub file_id: u16,
    /// Section.
    pub section: u16,
    /// Block within the section.
    pub sec_block: u16,
    /// TFMCC information.
    pub tfmcc: Option<TfmccDataInfoRepr>,
    /// Where the data starts.
    pub data_start: usize,
}

impl ParsedFileSeg {
    /// The FILESEG, with its data taken from `bytes` (the datagram it was parsed from).
    pub fn with_data<'a>(&self, bytes: &'a [u8]) -> FileSegRepr<'a> {
        FileSegRepr {
            file_id: self.file_id,
            section: self.section,
            sec_block: self.sec_block,
            tfmcc: self.tfmcc,
            data: &bytes[self.data_start..],
        }
    }
}

/// The sender's network interface: every datagram node 0 sends is serialized at `rate` behind
/// a drop-tail queue of `queue` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderLink {
    /// Interface rate, bytes per second (`None`: infinitely fast).
    pub rate: Option<u64>,
    /// Queue size in bytes (`None`: unbounded).
    pub queue: Option<u64>,
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    /// Datagrams nodes sent.
    pub sent: u64,
    /// Bytes nodes sent (UDP payloads).
    pub sent_bytes: u64,
    /// Deliveries made (one multicast datagram counts once per receiving node).
    pub delivered: u64,
    /// Deliveries dropped by loss on a path.
    pub lost: u64,
    /// Extra deliveries from duplication.
    pub duplicated: u64,
    /// Datagrams dropped at a full queue (the sender's interface counts once per datagram,
    /// a class bottleneck once per receiver behind it).
    pub queue_drops: u64,
    /// Deliveries dropped for exceeding a path's MTU.
    pub mtu_drops: u64,
    /// Multicast datagrams that reached a receiver not (or no longer) in the group.
    pub unsubscribed: u64,
    /// Datagrams node 0 sent, and their bytes.
    pub sender_datagrams: u64,
    /// Bytes node 0 sent (UDP payloads).
    pub sender_bytes: u64,
}

impl NetStats {
    fn add(&mut self, o: &NetStats) {
        self.sent += o.sent;
        self.sent_bytes += o.sent_bytes;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.queue_drops += o.queue_drops;
        self.mtu_drops += o.mtu_drops;
        self.unsubscribed += o.unsubscribed;
        self.sender_datagrams += o.sender_datagrams;
        self.sender_bytes += o.sender_bytes;
    }
}

/// A datagram in flight, shared by all its deliveries.
#[derive(Debug)]
struct Dgram {
    bytes: Box<[u8]>,
    from: SocketAddr,
    /// Receivers decrypt it in place: each gets a private copy.
    in_place: bool,
    check: OnceLock<ContentCheck>,
    /// A plaintext FILESEG, parsed.
    fileseg: Option<ParsedFileSeg>,
}

impl Dgram {
    fn new(bytes: &[u8], from: SocketAddr) -> Arc<Dgram> {
        let func = (bytes.len() > 1).then(|| Func::from(bytes[1]));
        let in_place = func == Some(Func::Encrypted);
        let fileseg = (func == Some(Func::FileSeg))
            .then(|| Repr::parse_fileseg(bytes).ok())
            .flatten()
            .map(|(header, seg)| ParsedFileSeg {
                header,
                file_id: seg.file_id,
                section: seg.section,
                sec_block: seg.sec_block,
                tfmcc: seg.tfmcc,
                data_start: bytes.len() - seg.data.len(),
            });
        Arc::new(Dgram {
            bytes: bytes.into(),
            from,
            in_place,
            check: OnceLock::new(),
            fileseg,
        })
    }
}

/// Where a node lives: hub `k` or leaf `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Hub(usize),
    Leaf(usize),
}

#[derive(Debug)]
struct HubEvent {
    to: usize,
    dgram: Arc<Dgram>,
}

struct Hub {
    node: Box<dyn Node>,
    down: LinkConfig,
    up: LinkConfig,
    down_state: LinkState,
    up_state: LinkState,
    armed: Option<Instant>,
}

/// A delivery waiting at a leaf: one with its own instant (jittered, duplicated, reordered,
/// unicast, or from a hub other than node 0).
#[derive(Debug)]
struct Pending {
    at: Instant,
    seq: u64,
    dgram: Arc<Dgram>,
    /// Its fate on the leaf's downstream path is still to be drawn.
    undecided: bool,
    /// Sent to a multicast group (the leaf must be in it).
    multicast: bool,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Leaf {
    node: Box<dyn Node>,
    class: usize,
    down: LinkConfig,
    up: LinkConfig,
    down_state: LinkState,
    up_state: LinkState,
    rng: Rng,
    inbox: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Its `poll_timeout`, as of its last step.
    timer: Option<Instant>,
    /// The instant of its live entry in the wake-up queue.
    armed: Option<Instant>,
    /// Multicast membership: from `join` until `leave`.
    join: Instant,
    leave: Instant,
    /// When it crashes.
    crash: Instant,
    down_flag: bool,
    /// Its index in the network (orders what leaves send).
    index: usize,
    /// Its downstream path has nothing but independent loss.
    plain_down: bool,
}

impl Leaf {
    /// Its next event of its own: timer, waiting delivery or crash.
    fn next_own(&self) -> Option<Instant> {
        if self.down_flag {
            return None;
        }
        let inbox = self.inbox.peek().map(|p| p.0.at);
        let crash = (self.crash.as_micros() < u64::MAX).then_some(self.crash);
        [self.timer, inbox, crash].into_iter().flatten().min()
    }

    fn member(&self, at: Instant) -> bool {
        self.join <= at && at < self.leave
    }

    fn is_down(&self) -> bool {
        self.down_flag || self.node.is_down()
    }
}

/// Receivers sharing a downstream bottleneck and delay.
struct Class {
    delay: Duration,
    rate: Option<u64>,
    queue: Option<u64>,
    mtu: Option<u32>,
    members: Vec<usize>,
    link: Bottleneck,
    /// Node 0's multicast datagrams on their way, by arrival instant.
    log: Vec<(Instant, Arc<Dgram>)>,
    head: usize,
}

impl Class {
    fn key(cfg: &LinkConfig) -> (Duration, Option<u64>, Option<u64>, Option<u32>) {
        (cfg.delay, cfg.rate, cfg.queue, cfg.mtu)
    }
}

/// What a batch of leaves sent upstream.
#[derive(Debug)]
struct Upstream {
    at: Instant,
    leaf: usize,
    seq: u64,
    to: Target,
    dgram: Arc<Dgram>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Hub(usize),
    AllHubs,
}

/// What leaves share while they step through one epoch.
struct EpochView<'a> {
    horizon: Instant,
    windows: &'a [&'a [(Instant, Arc<Dgram>)]],
    hub_addrs: &'a HashMap<SocketAddr, usize>,
    tx_len: usize,
}

/// A class's datagrams of one epoch laid end to end, and each one's range (`None`: in-place
/// datagrams, copied per delivery).
type Arena = (Vec<u8>, Vec<Option<(usize, usize)>>);

/// One stepping thread's buffers and results.
#[derive(Default)]
struct Worker {
    /// Per class, the epoch's datagrams as handed to its leaves.
    arenas: Vec<Arena>,
    scratch: Vec<u8>,
    tx: Vec<u8>,
    out: Vec<Upstream>,
    /// Wake-ups (instant, leaf) of the leaves it stepped that come before the ones armed
    /// (see `rearm_leaf`).
    wakes: Vec<(Instant, usize)>,
    stats: NetStats,
}

impl Worker {
    /// [`Network::rearm_leaf`] for a leaf just stepped, while it is in this thread's cache.
    fn rearm(&mut self, leaf: &mut Leaf, k: usize) {
        if let Some(t) = leaf.next_own() {
            if leaf.armed.is_none_or(|a| t < a) {
                leaf.armed = Some(t);
                self.wakes.push((t, k));
            }
        }
    }

    fn load(&mut self, view: &EpochView<'_>) {
        self.arenas
            .resize_with(view.windows.len(), Default::default);
        for (w, (arena, ranges)) in view.windows.iter().zip(self.arenas.iter_mut()) {
            arena.clear();
            ranges.clear();
            for (_, d) in w.iter() {
                if d.in_place {
                    ranges.push(None);
                } else {
                    let start = arena.len();
                    arena.extend_from_slice(&d.bytes);
                    ranges.push(Some((start, arena.len())));
                }
            }
        }
        if self.tx.len() < view.tx_len {
            self.tx.resize(view.tx_len, 0);
        }
    }

    /// Panics if a node changed a shared buffer (the content checks would not hold).
    fn verify(&self, view: &EpochView<'_>) {
        for (w, (arena, ranges)) in view.windows.iter().zip(self.arenas.iter()) {
            for ((_, d), r) in w.iter().zip(ranges) {
                if let Some((a, b)) = *r {
                    assert!(
                        arena[a..b] == d.bytes[..],
                        "a receiver changed a plaintext datagram it was handed"
                    );
                }
            }
        }
    }

    /// Runs `leaf` through the epoch.
    fn step(&mut self, leaf: &mut Leaf, view: &EpochView<'_>) {
        let window = view.windows[leaf.class];
        let mut wi = 0;
        let mut same_instant_timers = 0u32;
        // A node goes down by the network's crash or by its owner between runs, never while
        // it handles something: looking once is enough.
        leaf.down_flag |= leaf.node.is_down();
        // No crash in this epoch: the class log may be run through in a tight loop below.
        let steady = leaf.plain_down && leaf.crash >= view.horizon;
        loop {
            if leaf.down_flag {
                leaf.inbox.clear();
                break;
            }
            const NONE: u64 = u64::MAX;
            let t_in = leaf.inbox.peek().map_or(NONE, |p| p.0.at.as_micros());
            if steady {
                // The class log's entries, as long as they come first (before the inbox and
                // timers at the same instant, as below); delivering one changes the timer only.
                let horizon = view.horizon.as_micros();
                while let Some((at, d)) = window.get(wi) {
                    let t = at.as_micros();
                    if t > t_in || t >= horizon || t > leaf.timer.map_or(NONE, Instant::as_micros) {
                        break;
                    }
                    let k = wi;
                    wi += 1;
                    if !leaf.member(*at) {
                        self.stats.unsubscribed += 1;
                    } else if leaf.rng.chance_ppm(leaf.down.loss_ppm) {
                        self.stats.lost += 1;
                    } else {
                        self.deliver_log(*at, leaf, leaf.class, k, d, view);
                    }
                }
            }
            let t_log = window.get(wi).map_or(NONE, |e| e.0.as_micros());
            let t_timer = leaf.timer.map_or(NONE, Instant::as_micros);
            // Deliveries before timers at the same instant; the class log before the inbox.
            let (mut t, mut which) = (t_log, 0u8);
            if t_in < t {
                (t, which) = (t_in, 1);
            }
            if t_timer < t {
                (t, which) = (t_timer, 2);
            }
            let t = if t == NONE {
                which = 3;
                view.horizon
            } else {
                Instant::from_micros(t)
            };
            if leaf.crash < view.horizon && leaf.crash <= t {
                leaf.down_flag = true;
                leaf.node.set_down();
                continue;
            }
            if t >= view.horizon {
                break;
            }
            match which {
                0 => {
                    let k = wi;
                    wi += 1;
                    if !leaf.member(t) {
                        self.stats.unsubscribed += 1;
                        continue;
                    }
                    let d = &window[k].1;
                    if leaf.plain_down {
                        // Only independent loss on this path: one draw, no copies.
                        if leaf.rng.chance_ppm(leaf.down.loss_ppm) {
                            self.stats.lost += 1;
                        } else {
                            self.deliver_log(t, leaf, leaf.class, k, d, view);
                        }
                        continue;
                    }
                    match leaf.down_state.fate(t, &leaf.down, &mut leaf.rng) {
                        Fate::Lost => self.stats.lost += 1,
                        Fate::Deliver(copies) => {
                            if copies[1].is_some() {
                                self.stats.duplicated += 1;
                            }
                            for extra in copies.into_iter().flatten() {
                                if extra.is_zero() {
                                    self.deliver_log(t, leaf, leaf.class, k, d, view);
                                } else {
                                    leaf.seq += 1;
                                    leaf.inbox.push(Reverse(Pending {
                                        at: t + extra,
                                        seq: leaf.seq,
                                        dgram: d.clone(),
                                        undecided: false,
                                        multicast: true,
                                    }));
                                }
                            }
                        }
                    }
                }
                1 => {
                    let Some(Reverse(p)) = leaf.inbox.pop() else {
                        continue;
                    };
                    if p.multicast && !leaf.member(t) {
                        self.stats.unsubscribed += 1;
                        continue;
                    }
                    if p.undecided {
                        match leaf.down_state.fate(t, &leaf.down, &mut leaf.rng) {
                            Fate::Lost => self.stats.lost += 1,
                            Fate::Deliver(copies) => {
                                if copies[1].is_some() {
                                    self.stats.duplicated += 1;
                                }
                                for extra in copies.into_iter().flatten() {
                                    leaf.seq += 1;
                                    leaf.inbox.push(Reverse(Pending {
                                        at: t + extra,
                                        seq: leaf.seq,
                                        dgram: p.dgram.clone(),
                                        undecided: false,
                                        multicast: p.multicast,
                                    }));
                                }
                            }
                        }
                        continue;
                    }
                    self.deliver_copy(t, leaf, &p.dgram, view);
                }
                2 => {
                    same_instant_timers += 1;
                    assert!(
                        same_instant_timers < 100_000,
                        "node {} keeps asking for a timeout at {t:?}",
                        leaf.index
                    );
                    leaf.node.handle_timeout(t);
                    self.flush(t, leaf, view);
                }
                _ => unreachable!("no event before the horizon"),
            }
        }
    }

    /// Delivers entry `k` of the class log from the shared arena (or a private copy).
    fn deliver_log(
        &mut self,
        t: Instant,
        leaf: &mut Leaf,
        class: usize,
        k: usize,
        d: &Arc<Dgram>,
        view: &EpochView<'_>,
    ) {
        let Some((a, b)) = self.arenas[class].1[k] else {
            return self.deliver_copy(t, leaf, d, view);
        };
        self.stats.delivered += 1;
        let received = Received {
            bytes: &mut self.arenas[class].0[a..b],
            pristine: true,
            check: &d.check,
        };
        match &d.fileseg {
            Some(parsed) => leaf.node.handle_fileseg(t, d.from, received, parsed),
            None => leaf.node.handle_datagram(t, d.from, received),
        }
        self.after_delivery(t, leaf, view);
    }

    /// Delivers a datagram in a private copy.
    fn deliver_copy(&mut self, t: Instant, leaf: &mut Leaf, d: &Arc<Dgram>, view: &EpochView<'_>) {
        self.stats.delivered += 1;
        self.scratch.clear();
        self.scratch.extend_from_slice(&d.bytes);
        let received = Received {
            bytes: &mut self.scratch,
            pristine: !d.in_place,
            check: &d.check,
        };
        leaf.node.handle_datagram(t, d.from, received);
        if !d.in_place {
            assert!(
                self.scratch[..] == d.bytes[..],
                "a receiver changed a plaintext datagram it was handed"
            );
        }
        self.after_delivery(t, leaf, view);
    }

    fn after_delivery(&mut self, t: Instant, leaf: &mut Leaf, view: &EpochView<'_>) {
        self.flush(t, leaf, view);
    }

    /// Sends what `leaf` has to send now, through its upstream path.
    fn flush(&mut self, t: Instant, leaf: &mut Leaf, view: &EpochView<'_>) {
        loop {
            let tx = match leaf.node.poll(t, &mut self.tx) {
                Polled::Transmit(tx) => tx,
                Polled::Idle(timer) => {
                    leaf.timer = timer;
                    break;
                }
            };
            self.stats.sent += 1;
            self.stats.sent_bytes += tx.len as u64;
            let to = if tx.dest.ip().is_multicast() {
                Target::AllHubs
            } else {
                match view.hub_addrs.get(&tx.dest) {
                    Some(&h) => Target::Hub(h),
                    // Nobody there.
                    None => continue,
                }
            };
            let dgram = Dgram::new(&self.tx[..tx.len], leaf.node.addr());
            match leaf.up_state.fate(t, &leaf.up, &mut leaf.rng) {
                Fate::Lost => self.stats.lost += 1,
                Fate::Deliver(copies) => {
                    if copies[1].is_some() {
                        self.stats.duplicated += 1;
                    }
                    for extra in copies.into_iter().flatten() {
                        leaf.seq += 1;
                        self.out.push(Upstream {
                            at: t + leaf.up.delay + extra,
                            leaf: leaf.index,
                            seq: leaf.seq,
                            to,
                            dgram: dgram.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// The network: nodes, their paths, the datagrams in flight and virtual time.
pub struct Network {
    slots: Vec<Slot>,
    hubs: Vec<Hub>,
    hub_index: Vec<usize>,
    leaves: Vec<Leaf>,
    classes: Vec<Class>,
    addrs: HashMap<SocketAddr, Slot>,
    hub_addrs: HashMap<SocketAddr, usize>,
    /// Hub events: (instant, kind: 0 delivery / 1 timer, order, payload index or hub).
    queue: BinaryHeap<Reverse<(Instant, u8, u64, usize)>>,
    in_flight: Vec<Option<HubEvent>>,
    free: Vec<usize>,
    /// Leaves' wake-ups: (instant, leaf).
    wakes: BinaryHeap<Reverse<(Instant, usize)>>,
    order: u64,
    now: Instant,
    rng: Rng,
    seed: u64,
    sender_link: SenderLink,
    sender_state: Bottleneck,
    buf: Vec<u8>,
    workers: Vec<Worker>,
    threads: usize,
    timeline_bucket: Duration,
    timeline: Vec<u64>,
    /// What happened so far.
    pub stats: NetStats,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("hubs", &self.hubs.len())
            .field("leaves", &self.leaves.len())
            .field("now", &self.now)
            .field("stats", &self.stats)
            .finish()
    }
}

/// The time at which every network starts.
pub const START: Instant = Instant::from_micros(1_000_000);

const MAX_DATAGRAM: usize = 65536;

impl Network {
    /// An empty network at time [`START`].
    pub fn new(seed: u64) -> Network {
        Network {
            slots: Vec::new(),
            hubs: Vec::new(),
            hub_index: Vec::new(),
            leaves: Vec::new(),
            classes: Vec::new(),
            addrs: HashMap::new(),
            hub_addrs: HashMap::new(),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            free: Vec::new(),
            wakes: BinaryHeap::new(),
            order: 0,
            now: START,
            rng: Rng::new(seed),
            seed,
            sender_link: SenderLink::default(),
            sender_state: Bottleneck::default(),
            buf: vec![0u8; MAX_DATAGRAM],
            workers: Vec::new(),
            threads: 1,
            timeline_bucket: Duration::from_millis(100),
            timeline: Vec::new(),
            stats: NetStats::default(),
        }
    }

    /// Adds a node; `down` is the path from node 0 to it, `up` the path from it to the others.
    /// Node 0 is the sender by convention (and must be a hub). Returns its index.
    pub fn add(&mut self, node: Box<dyn Node>, down: LinkConfig, up: LinkConfig) -> usize {
        let index = self.slots.len();
        let addr = node.addr();
        let slot = match node.role() {
            Role::Leaf if index > 0 => {
                let key = Class::key(&down);
                let class = match self
                    .classes
                    .iter()
                    .position(|c| (c.delay, c.rate, c.queue, c.mtu) == key)
                {
                    Some(c) => c,
                    None => {
                        self.classes.push(Class {
                            delay: down.delay,
                            rate: down.rate,
                            queue: down.queue,
                            mtu: down.mtu,
                            members: Vec::new(),
                            link: Bottleneck::default(),
                            log: Vec::new(),
                            head: 0,
                        });
                        self.classes.len() - 1
                    }
                };
                let k = self.leaves.len();
                self.classes[class].members.push(k);
                let stream = self.seed ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                self.leaves.push(Leaf {
                    node,
                    class,
                    down,
                    up,
                    down_state: LinkState::default(),
                    up_state: LinkState::default(),
                    rng: Rng::new(stream),
                    inbox: BinaryHeap::new(),
                    seq: 0,
                    timer: None,
                    armed: None,
                    join: Instant::ZERO,
                    leave: Instant::from_micros(u64::MAX),
                    crash: Instant::from_micros(u64::MAX),
                    down_flag: false,
                    index,
                    plain_down: down
                        == LinkConfig {
                            loss_ppm: down.loss_ppm,
                            ..LinkConfig::default()
                        }
                        .with_class_of(&down),
                });
                Slot::Leaf(k)
            }
            _ => {
                let k = self.hubs.len();
                self.hubs.push(Hub {
                    node,
                    down,
                    up,
                    down_state: LinkState::default(),
                    up_state: LinkState::default(),
                    armed: None,
                });
                self.hub_index.push(index);
                self.hub_addrs.insert(addr, k);
                Slot::Hub(k)
            }
        };
        self.addrs.insert(addr, slot);
        self.slots.push(slot);
        self.arm(slot);
        index
    }

    /// Sets the sender's interface (node 0's every datagram crosses it).
    pub fn set_sender_link(&mut self, link: SenderLink) {
        self.sender_link = link;
    }

    /// Steps leaves on up to `threads` threads (same results; see the module documentation).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// Node `i` (a leaf) is in the multicast group only from `join` until `leave`.
    pub fn set_membership(&mut self, i: usize, join: Instant, leave: Option<Instant>) {
        if let Slot::Leaf(k) = self.slots[i] {
            let l = &mut self.leaves[k];
            l.join = join;
            l.leave = leave.unwrap_or(Instant::from_micros(u64::MAX));
        }
    }

    /// Node `i` (a leaf) crashes at `at`: it stops dead, hearing and sending nothing more.
    pub fn crash_at(&mut self, i: usize, at: Instant) {
        if let Slot::Leaf(k) = self.slots[i] {
            self.leaves[k].crash = at;
            self.rearm_leaf(k);
        }
    }

    /// The bytes node 0 put on the wire (with IP and UDP headers) in each `bucket` of virtual
    /// time since [`START`].
    pub fn sender_timeline(&self) -> (Duration, &[u64]) {
        (self.timeline_bucket, &self.timeline)
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &dyn Node {
        match self.slots[i] {
            Slot::Hub(k) => &*self.hubs[k].node,
            Slot::Leaf(k) => &*self.leaves[k].node,
        }
    }

    /// Node `i` as `Any`, for tests that know its concrete type.
    pub fn node_any(&self, i: usize) -> &dyn Any {
        let node: &dyn Node = self.node(i);
        node
    }

    /// Node `i`, mutable.
    pub fn node_mut(&mut self, i: usize) -> &mut dyn Node {
        match self.slots[i] {
            Slot::Hub(k) => &mut *self.hubs[k].node,
            Slot::Leaf(k) => &mut *self.leaves[k].node,
        }
    }

    /// Whether node `i` has crashed (by [`Network::crash_at`] or its own `is_down`).
    pub fn is_down(&self, i: usize) -> bool {
        match self.slots[i] {
            Slot::Hub(k) => self.hubs[k].node.is_down(),
            Slot::Leaf(k) => self.leaves[k].is_down(),
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The shortest upstream delay of any leaf: how far leaves may run ahead of hubs.
    fn lookahead(&self) -> Duration {
        self.leaves
            .iter()
            .map(|l| l.up.delay)
            .min()
            .unwrap_or(Duration::ZERO)
    }

    fn arm(&mut self, slot: Slot) {
        match slot {
            Slot::Hub(k) => {
                let h = &mut self.hubs[k];
                let t = if h.node.is_down() {
                    None
                } else {
                    h.node.poll_timeout()
                };
                if let Some(t) = t.filter(|&t| Some(t) != h.armed) {
                    h.armed = Some(t);
                    self.order += 1;
                    self.queue.push(Reverse((t, 1, self.order, k)));
                }
            }
            Slot::Leaf(k) => {
                let l = &mut self.leaves[k];
                if l.is_down() {
                    return;
                }
                l.timer = l.node.poll_timeout();
                self.rearm_leaf(k);
            }
        }
    }

    fn rearm_leaf(&mut self, k: usize) {
        let l = &mut self.leaves[k];
        if let Some(t) = l.next_own() {
            if l.armed.is_none_or(|a| t < a) {
                l.armed = Some(t);
                self.wakes.push(Reverse((t, k)));
            }
        }
    }

    fn push_hub_event(&mut self, at: Instant, to: usize, dgram: Arc<Dgram>) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.in_flight.push(None);
                self.in_flight.len() - 1
            }
        };
        self.in_flight[slot] = Some(HubEvent { to, dgram });
        self.order += 1;
        self.queue.push(Reverse((at, 0, self.order, slot)));
    }

    fn push_leaf(&mut self, k: usize, at: Instant, dgram: Arc<Dgram>, undecided: bool, mc: bool) {
        let l = &mut self.leaves[k];
        l.seq += 1;
        l.inbox.push(Reverse(Pending {
            at,
            seq: l.seq,
            dgram,
            undecided,
            multicast: mc,
        }));
        self.rearm_leaf(k);
    }

    /// Carries one datagram from hub `h` (sent at `now`) towards its destination(s).
    fn route_from_hub(&mut self, h: usize, dest: SocketAddr, bytes: &[u8]) {
        let now = self.now;
        let from = self.hubs[h].node.addr();
        let len = bytes.len() as u64;
        self.stats.sent += 1;
        self.stats.sent_bytes += len;
        let dgram = Dgram::new(bytes, from);
        let mut depart = now;
        if h == 0 {
            self.stats.sender_datagrams += 1;
            self.stats.sender_bytes += len;
            let bucket = (now.as_micros().saturating_sub(START.as_micros())
                / self.timeline_bucket.as_micros() as u64) as usize;
            if self.timeline.len() <= bucket {
                self.timeline.resize(bucket + 1, 0);
            }
            self.timeline[bucket] += len + IP_UDP_OVERHEAD;
            let l = self.sender_link;
            match self.sender_state.pass(
                now.as_micros() * 1000,
                len + IP_UDP_OVERHEAD,
                l.rate,
                l.queue,
            ) {
                Some(ns) => depart = ns_to_instant(ns),
                None => {
                    self.stats.queue_drops += 1;
                    return;
                }
            }
        }
        let multicast = dest.ip().is_multicast();
        // Hubs: each through its own path.
        for k in 0..self.hubs.len() {
            if k == h || self.hubs[k].node.is_down() {
                continue;
            }
            if !multicast && self.hubs[k].node.addr() != dest {
                continue;
            }
            let (cfg, fate) = if h == 0 {
                let hub = &mut self.hubs[k];
                (
                    hub.down,
                    hub.down_state.fate(depart, &hub.down, &mut self.rng),
                )
            } else {
                let up = self.hubs[h].up;
                let fate = self.hubs[h].up_state.fate(depart, &up, &mut self.rng);
                (up, fate)
            };
            self.hub_fate(fate, depart + cfg.delay, k, &dgram);
        }
        // Leaves.
        if h == 0 {
            if multicast {
                for c in 0..self.classes.len() {
                    let class = &mut self.classes[c];
                    let members = class.members.len() as u64;
                    if class
                        .mtu
                        .is_some_and(|m| len + IP_UDP_OVERHEAD > u64::from(m))
                    {
                        self.stats.mtu_drops += members;
                        continue;
                    }
                    let ns = depart.as_micros() * 1000;
                    match class
                        .link
                        .pass(ns, len + IP_UDP_OVERHEAD, class.rate, class.queue)
                    {
                        Some(done) => {
                            let at = ns_to_instant(done) + class.delay;
                            class.log.push((at, dgram.clone()));
                        }
                        None => self.stats.queue_drops += members,
                    }
                }
            } else if let Some(&Slot::Leaf(k)) = self.addrs.get(&dest) {
                let c = &self.classes[self.leaves[k].class];
                if c.mtu.is_some_and(|m| len + IP_UDP_OVERHEAD > u64::from(m)) {
                    self.stats.mtu_drops += 1;
                    return;
                }
                // Unicast crosses the class's path without holding its queue.
                let serial = c.rate.map_or(0, |r| {
                    (len + IP_UDP_OVERHEAD).saturating_mul(1_000_000) / r.max(1)
                });
                let at = depart + c.delay + Duration::from_micros(serial);
                self.push_leaf(k, at, dgram, true, false);
            }
        } else {
            let up = self.hubs[h].up;
            let targets: Vec<usize> = if multicast {
                (0..self.leaves.len()).collect()
            } else {
                match self.addrs.get(&dest) {
                    Some(&Slot::Leaf(k)) => vec![k],
                    _ => Vec::new(),
                }
            };
            for k in targets {
                if self.leaves[k].is_down() {
                    continue;
                }
                let fate = self.hubs[h].up_state.fate(depart, &up, &mut self.rng);
                match fate {
                    Fate::Lost => self.stats.lost += 1,
                    Fate::Deliver(copies) => {
                        if copies[1].is_some() {
                            self.stats.duplicated += 1;
                        }
                        for extra in copies.into_iter().flatten() {
                            let at = depart + up.delay + extra;
                            self.push_leaf(k, at, dgram.clone(), false, multicast);
                        }
                    }
                }
            }
        }
    }

    fn hub_fate(&mut self, fate: Fate, at: Instant, k: usize, dgram: &Arc<Dgram>) {
        match fate {
            Fate::Lost => self.stats.lost += 1,
            Fate::Deliver(copies) => {
                if copies[1].is_some() {
                    self.stats.duplicated += 1;
                }
                for extra in copies.into_iter().flatten() {
                    self.push_hub_event(at + extra, k, dgram.clone());
                }
            }
        }
    }

    /// Lets hub `h` send what it has to send now.
    fn flush_hub(&mut self, h: usize) {
        let mut buf = std::mem::take(&mut self.buf);
        while !self.hubs[h].node.is_down() {
            let now = self.now;
            let Some(t) = self.hubs[h].node.poll_transmit(now, &mut buf) else {
                break;
            };
            self.route_from_hub(h, t.dest, &buf[..t.len]);
        }
        self.buf = buf;
        self.arm(Slot::Hub(h));
    }

    /// Runs hubs through every event before `horizon`.
    fn run_hubs(&mut self, horizon: Instant) {
        let mut buf = Vec::new();
        let (mut last, mut same) = (Instant::ZERO, 0u64);
        while let Some(&Reverse((t, kind, _, x))) = self.queue.peek() {
            if t >= horizon {
                break;
            }
            if t == last {
                same += 1;
                assert!(same < 10_000_000, "hub events stuck at {t:?}");
            } else {
                (last, same) = (t, 0);
            }
            self.queue.pop();
            self.now = self.now.max(t);
            if kind == 1 {
                let h = x;
                if self.hubs[h].armed != Some(t) {
                    continue;
                }
                self.hubs[h].armed = None;
                let node = &mut self.hubs[h].node;
                if !node.is_down() && node.poll_timeout().is_some_and(|d| d <= t) {
                    node.handle_timeout(t);
                }
                self.flush_hub(h);
                continue;
            }
            // Every delivery to the same hub at this instant, then one flush.
            let ev = self.in_flight[x].take().expect("scheduled delivery");
            self.free.push(x);
            let h = ev.to;
            let mut batch = vec![ev.dgram];
            while let Some(&Reverse((t2, 0, _, x2))) = self.queue.peek() {
                if t2 != t || self.in_flight[x2].as_ref().is_none_or(|e| e.to != h) {
                    break;
                }
                self.queue.pop();
                let ev = self.in_flight[x2].take().expect("scheduled delivery");
                self.free.push(x2);
                batch.push(ev.dgram);
            }
            for d in batch {
                if self.hubs[h].node.is_down() {
                    break;
                }
                self.stats.delivered += 1;
                buf.clear();
                buf.extend_from_slice(&d.bytes);
                let received = Received {
                    bytes: &mut buf,
                    pristine: false,
                    check: &d.check,
                };
                self.hubs[h].node.handle_datagram(t, d.from, received);
            }
            self.flush_hub(h);
        }
    }

    /// Runs leaves through every event before `horizon`; returns what they sent upstream.
    fn run_leaves(&mut self, horizon: Instant) -> Vec<Upstream> {
        // The class logs' entries of this epoch.
        let mut ends = Vec::with_capacity(self.classes.len());
        let mut visit: Vec<usize> = Vec::new();
        for c in &self.classes {
            let log = &c.log[c.head..];
            let n = log.partition_point(|e| e.0 < horizon);
            ends.push(c.head + n);
            if n > 0 {
                visit.extend_from_slice(&c.members);
            }
        }
        let mut sorted = ends.iter().filter(|&&e| e > 0).count() <= 1;
        while let Some(&Reverse((t, k))) = self.wakes.peek() {
            if t >= horizon {
                break;
            }
            self.wakes.pop();
            if self.leaves[k].armed != Some(t) {
                continue;
            }
            self.leaves[k].armed = None;
            visit.push(k);
            sorted = false;
        }
        if visit.is_empty() {
            return Vec::new();
        }
        if !sorted {
            visit.sort_unstable();
            visit.dedup();
        }
        let windows: Vec<&[(Instant, Arc<Dgram>)]> = self
            .classes
            .iter()
            .zip(&ends)
            .map(|(c, &e)| &c.log[c.head..e])
            .collect();
        let view = EpochView {
            horizon,
            windows: &windows,
            hub_addrs: &self.hub_addrs,
            tx_len: MAX_DATAGRAM,
        };
        let threads = if visit.len() >= 256 { self.threads } else { 1 };
        self.workers
            .resize_with(threads.max(self.workers.len()), Worker::default);
        let workers = &mut self.workers[..threads];
        if threads == 1 {
            let w = &mut workers[0];
            w.load(&view);
            for &k in &visit {
                w.step(&mut self.leaves[k], &view);
                w.rearm(&mut self.leaves[k], k);
            }
            w.verify(&view);
        } else {
            // Contiguous runs of the (sorted) visit list, one per thread.
            let per = visit.len().div_ceil(threads);
            let mut rest: &mut [Leaf] = &mut self.leaves;
            let mut offset = 0;
            let mut jobs = Vec::new();
            for chunk in visit.chunks(per) {
                let last = *chunk.last().expect("non-empty chunk");
                let (mine, tail) = rest.split_at_mut(last + 1 - offset);
                jobs.push((chunk, offset, mine));
                rest = tail;
                offset = last + 1;
            }
            let view = &view;
            std::thread::scope(|s| {
                for ((chunk, base, mine), w) in jobs.into_iter().zip(workers.iter_mut()) {
                    s.spawn(move || {
                        w.load(view);
                        for &k in chunk {
                            w.step(&mut mine[k - base], view);
                            w.rearm(&mut mine[k - base], k);
                        }
                        w.verify(view);
                    });
                }
            });
        }
        drop(windows);
        let mut out = Vec::new();
        for w in &mut self.workers[..threads] {
            self.stats.add(&w.stats);
            w.stats = NetStats::default();
            out.append(&mut w.out);
            self.wakes
                .extend(w.wakes.drain(..).map(|(t, k)| Reverse((t, k))));
        }
        for (c, e) in self.classes.iter_mut().zip(ends) {
            c.head = e;
            if c.head > 4096 && c.head * 2 > c.log.len() {
                c.log.drain(..c.head);
                c.head = 0;
            }
        }
        out
    }

    /// The instant of the next event anywhere.
    fn next_event(&self) -> Option<Instant> {
        let hub = self.queue.peek().map(|Reverse((t, ..))| *t);
        let wake = self.wakes.peek().map(|Reverse((t, _))| *t);
        let log = self
            .classes
            .iter()
            .filter_map(|c| c.log.get(c.head).map(|e| e.0))
            .min();
        [hub, wake, log].into_iter().flatten().min()
    }

    /// Runs until `done` holds (checked after every epoch) or virtual time passes `limit`.
    /// Returns whether `done` held.
    pub fn run_until(&mut self, limit: Instant, mut done: impl FnMut(&Network) -> bool) -> bool {
        for h in 0..self.hubs.len() {
            self.flush_hub(h);
        }
        // Tests may change nodes between runs.
        for k in 0..self.leaves.len() {
            self.arm(Slot::Leaf(k));
        }
        let lookahead = self.lookahead();
        let mut stuck = 0u32;
        let mut last = self.now;
        loop {
            if done(self) {
                return true;
            }
            let Some(next) = self.next_event() else {
                return false;
            };
            if next > limit {
                self.now = limit;
                return false;
            }
            let t = next.max(self.now);
            if t == last {
                stuck += 1;
                assert!(
                    stuck < 1_000_000,
                    "virtual time stuck at {t:?}: {} hub events, {} leaf wake-ups",
                    self.queue.len(),
                    self.wakes.len()
                );
            } else {
                stuck = 0;
                last = t;
            }
            let horizon =
                (t + lookahead.max(Duration::from_micros(1))).min(limit + Duration::from_micros(1));
            self.now = t;
            self.run_hubs(horizon);
            let mut out = self.run_leaves(horizon);
            out.sort_unstable_by_key(|u| (u.at, u.leaf, u.seq));
            for u in out {
                match u.to {
                    Target::Hub(h) => self.push_hub_event(u.at, h, u.dgram),
                    Target::AllHubs => {
                        for h in 0..self.hubs.len() {
                            self.push_hub_event(u.at, h, u.dgram.clone());
                        }
                    }
                }
            }
            self.now = self
                .now
                .max(Instant::from_micros(horizon.as_micros() - 1))
                .min(limit);
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
        leaf: bool,
    }

    impl Node for Beacon {
        fn addr(&self) -> SocketAddr {
            self.addr
        }
        fn role(&self) -> Role {
            if self.leaf {
                Role::Leaf
            } else {
                Role::Hub
            }
        }
        fn handle_datagram(&mut self, _now: Instant, _from: SocketAddr, d: Received<'_>) {
            self.got
                .push(u32::from_be_bytes(d.bytes[..4].try_into().unwrap()));
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

    fn beacon(n: u16, left: u32, leaf: bool) -> Box<Beacon> {
        Box::new(Beacon {
            addr: SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)),
                1044,
            ),
            left,
            next: Instant::ZERO,
            got: Vec::new(),
            leaf,
        })
    }

    fn got(net: &Network, i: usize) -> &[u32] {
        &net.node_any(i).downcast_ref::<Beacon>().unwrap().got
    }

    fn run(seed: u64, leaves: bool, threads: usize) -> (NetStats, Vec<Vec<u32>>) {
        let mut net = Network::new(seed);
        net.set_threads(threads);
        net.add(
            beacon(1, 5_000, false),
            LinkConfig::default(),
            LinkConfig::default(),
        );
        let lossy = LinkConfig::lossy(10.0, Duration::from_millis(5));
        let jittery = LinkConfig {
            jitter: Duration::from_millis(3),
            dup_ppm: 10_000,
            ..lossy
        };
        for n in 0..300u16 {
            let cfg = if n % 2 == 0 { lossy } else { jittery };
            net.add(beacon(n + 2, 0, leaves), cfg, LinkConfig::default());
        }
        let limit = net.now() + Duration::from_secs(60);
        net.run_until(limit, |_| false);
        let got = (1..net.len()).map(|i| got(&net, i).to_vec()).collect();
        (net.stats, got)
    }

    #[test]
    fn loss_is_independent_per_receiver_and_seeded() {
        let (a, got_a) = run(1, true, 1);
        assert_eq!((a, &got_a), (run(1, true, 1).0, &run(1, true, 1).1));
        assert_ne!(a, run(2, true, 1).0);
        assert_eq!(a.sent, 5_000);
        assert_eq!(a.delivered + a.lost, 300 * 5_000 + a.duplicated);
        assert!(
            (145_000..155_000).contains(&a.lost),
            "about 10% of 1,500,000 lost: {}",
            a.lost
        );
        // Two receivers never lose the same datagrams.
        assert_ne!(got_a[0], got_a[2]);
        // Jitter reorders, and duplicates arrive.
        assert!(got_a[1].windows(2).any(|w| w[0] < w[1]));
        assert!(got_a[1].len() > got_a[0].len());
    }

    #[test]
    fn threads_and_node_roles_do_not_change_a_leafs_draws() {
        let one = run(3, true, 1);
        assert_eq!(one, run(3, true, 2), "two threads, same run");
        // Receivers run as hubs draw from the network's generator: different, but the same
        // amount of loss.
        let hubs = run(3, false, 1).0;
        assert_eq!(hubs.sent, one.0.sent);
        assert!((145_000..155_000).contains(&hubs.lost));
    }

    #[test]
    fn late_join_early_leave_and_crash() {
        let mut net = Network::new(9);
        net.add(
            beacon(1, 1000, false),
            LinkConfig::default(),
            LinkConfig::default(),
        );
        let plain = LinkConfig {
            delay: Duration::from_millis(2),
            ..LinkConfig::default()
        };
        for n in 0..3 {
            net.add(beacon(n + 2, 0, true), plain, plain);
        }
        let t0 = net.now();
        net.set_membership(1, t0 + Duration::from_millis(500), None);
        net.set_membership(2, Instant::ZERO, Some(t0 + Duration::from_millis(300)));
        net.crash_at(3, t0 + Duration::from_millis(100));
        net.run_until(t0 + Duration::from_secs(5), |_| false);
        let n = |i| got(&net, i).len() as i64;
        assert!((n(1) - 500).abs() <= 3, "joined at 0.5 s: {}", n(1));
        assert!((n(2) - 300).abs() <= 3, "left at 0.3 s: {}", n(2));
        assert!((n(3) - 100).abs() <= 3, "crashed at 0.1 s: {}", n(3));
        assert!(net.is_down(3));
    }

    #[test]
    fn sender_link_rate_paces_and_its_queue_drops() {
        let mut net = Network::new(1);
        net.add(
            beacon(1, 100, false),
            LinkConfig::default(),
            LinkConfig::default(),
        );
        net.add(
            beacon(2, 0, true),
            LinkConfig::default(),
            LinkConfig::default(),
        );
        // 32 bytes on the wire a datagram, one every millisecond, at 16 kB/s: half are dropped
        // once a queue of 64 bytes fills.
        net.set_sender_link(SenderLink {
            rate: Some(16_000),
            queue: Some(64),
        });
        net.run_until(net.now() + Duration::from_secs(5), |_| false);
        let n = got(&net, 1).len();
        assert!((48..=53).contains(&n), "half of 100 through: {n}");
        assert_eq!(net.stats.queue_drops as usize, 100 - n);
    }
}
