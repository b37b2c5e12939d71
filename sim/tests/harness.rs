//! The real sender and receivers on an in-memory network with virtual time: lossless, lossy,
//! bursty, a receiver that dies, a receiver that joins late, and a receiver showered with junk.
//! Every receiver checks every block it stores against the generated content.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::session::sender::{Event, LostReason, Outcome, SenderConfig};
use proto_core::time::Instant;
use sim::harness::{ReceiverNode, SenderNode, SimFile};
use sim::{LinkConfig, Network, Node, Received, Rng};

const CLIENTS: usize = 128;
type Tx = SenderNode<CLIENTS>;
type Rx = ReceiverNode<4>;

fn sender_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000)
}

fn config(rate_bytes: u64) -> SenderConfig {
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let mut c = SenderConfig::new(0x0a00_0001, 0x1234_5678, public, private);
    c.rate = Some(rate_bytes);
    c.grtt_init = Duration::from_millis(50);
    c.blocksize = 1300;
    c
}

struct Run {
    net: Network,
    receivers: usize,
}

impl Run {
    fn new(seed: u64, files: &[SimFile], rate: u64, allowed: &[u32]) -> Run {
        Self::with_config(seed, files, config(rate), allowed)
    }

    fn with_config(seed: u64, files: &[SimFile], config: SenderConfig, allowed: &[u32]) -> Run {
        let mut net = Network::new(seed);
        let tx: Box<dyn Node> = Box::new(Tx::new(sender_addr(), config, allowed, files.to_vec()));
        net.add(tx, LinkConfig::default(), LinkConfig::default());
        Run { net, receivers: 0 }
    }

    fn add(&mut self, rx: Rx, down: LinkConfig, up: LinkConfig) -> usize {
        self.receivers += 1;
        self.net.add(Box::new(rx), down, up)
    }

    fn run(&mut self, limit_secs: u64) {
        let limit = self.net.now() + Duration::from_secs(limit_secs);
        let done = self.net.run_until(limit, |net| net.node(0).is_down());
        assert!(
            done,
            "session did not end within {limit_secs} s of virtual time"
        );
    }

    fn sender(&self) -> &Tx {
        node::<Tx>(&self.net, 0)
    }

    fn rx(&self, i: usize) -> &Rx {
        node::<Rx>(&self.net, i)
    }
}

/// Downcasts a node back to its concrete type (the network only knows `dyn Node`).
fn node<T: 'static>(net: &Network, i: usize) -> &T {
    let any: &dyn std::any::Any = net.node_any(i);
    any.downcast_ref::<T>().expect("node type")
}

fn summary(tx: &Tx) -> proto_core::session::sender::SessionSummary {
    tx.events
        .iter()
        .find_map(|e| match e {
            Event::SessionDone(s) => Some(*s),
            _ => None,
        })
        .expect("SessionDone event")
}

fn files_a() -> Vec<SimFile> {
    vec![
        SimFile::new("one.bin", 2 << 20),
        SimFile::new("small.txt", 1000),
        SimFile::new("three.bin", 300_001),
    ]
}

fn lossy(percent: f64) -> LinkConfig {
    LinkConfig::lossy(percent, Duration::from_millis(5))
}

fn assert_all_complete(run: &Run, files: &[SimFile], receivers: impl Iterator<Item = usize>) {
    for i in receivers {
        let s = &run.rx(i).storage;
        assert_eq!(s.bad_blocks, 0, "receiver {i} stored a wrong block");
        for f in files {
            assert_eq!(
                s.completed.get(&f.name),
                Some(&f.size),
                "receiver {i} lacks {}; its last events: {:#?}; its stats: {:?}",
                f.name,
                run.rx(i)
                    .events
                    .iter()
                    .filter(|e| !matches!(e, proto_core::session::receiver::Event::Dropped { .. }))
                    .collect::<Vec<_>>(),
                run.rx(i).receiver.stats()
            );
        }
    }
}

/// Every retransmitted block was NAKed since it was last sent, and the sender's own count of
/// NAKed blocks (the union it marks) equals what it retransmitted.
fn assert_resends_are_the_naks(tx: &Tx) {
    let w = &tx.watch;
    assert_eq!(w.unrequested_resends, 0, "blocks resent without a NAK");
    let c = summary(tx).counters;
    let resent: u64 = w.resent.values().sum();
    assert_eq!(
        c.retransmitted_blocks, resent,
        "sender's counter vs the wire"
    );
    let naks_new: u64 = tx
        .events
        .iter()
        .filter_map(|e| match e {
            Event::FileDone(f) => Some(u64::from(f.naks_new)),
            _ => None,
        })
        .sum();
    assert_eq!(
        naks_new, resent,
        "retransmitted exactly the union of NAKed blocks"
    );
    eprintln!(
        "sent {} blocks: {} first pass + {} retransmitted; NAK bits received {} (union {})",
        c.blocks_sent, c.first_pass_blocks, resent, w.nak_bits, naks_new
    );
}

#[test]
fn lossless_sends_each_block_exactly_once() {
    let files = files_a();
    let mut run = Run::new(1, &files, 12_500_000, &[]);
    for n in 0..5 {
        run.add(
            Rx::new(n, &files),
            LinkConfig {
                delay: Duration::from_millis(2),
                ..Default::default()
            },
            LinkConfig::default(),
        );
    }
    run.run(120);
    assert_all_complete(&run, &files, 1..=5);
    let s = summary(run.sender());
    assert_eq!(s.outcome, Outcome::Completed);
    assert_eq!(s.completed, 5);
    let blocks: u64 = files.iter().map(|f| f.size.div_ceil(1300)).sum();
    assert_eq!(s.counters.blocks_sent, blocks, "each block exactly once");
    assert_eq!(s.counters.retransmitted_blocks, 0);
    assert!(run.sender().watch.filesegs.values().sum::<u64>() == blocks);
}

fn lossy_run(seed: u64, percent: f64, receivers: u32) {
    let files = files_a();
    let mut run = Run::new(seed, &files, 12_500_000, &[]);
    for n in 0..receivers {
        run.add(Rx::new(n, &files), lossy(percent), lossy(percent));
    }
    run.run(600);
    assert_all_complete(&run, &files, 1..=receivers as usize);
    assert_eq!(summary(run.sender()).outcome, Outcome::Completed);
    assert_resends_are_the_naks(run.sender());
}

#[test]
fn five_percent_independent_loss() {
    lossy_run(5, 5.0, 10);
}

#[test]
fn twenty_percent_independent_loss() {
    lossy_run(20, 20.0, 10);
}

#[test]
fn smallest_and_largest_block_sizes_closed_group_and_unpaced() {
    // Block sizes at both ends of 512–8800 (sections of 4096 and 65536 blocks), a closed group
    // (-H), and one unpaced run (-R -1), each at 5% loss.
    let files = vec![SimFile::new("a.bin", 3_000_001), SimFile::new("b.txt", 511)];
    for (seed, blocksize, rate) in [
        (11, 512, Some(12_500_000)),
        (12, 8800, Some(12_500_000)),
        (13, 1300, None),
    ] {
        let mut c = config(12_500_000);
        c.blocksize = blocksize;
        c.rate = rate;
        let uids: Vec<u32> = (0..4).map(|n| Rx::new(n, &files).uid()).collect();
        let mut run = Run::with_config(seed, &files, c, &uids);
        for n in 0..4 {
            run.add(Rx::new(n, &files), lossy(5.0), lossy(5.0));
        }
        // A receiver not on the list hears everything and gets nothing.
        let outsider = run.add(Rx::new(9, &files), lossy(0.0), lossy(0.0));
        run.run(600);
        assert_all_complete(&run, &files, 1..=4);
        assert_eq!(
            run.rx(outsider).storage.opened,
            0,
            "an unlisted receiver took part"
        );
        let s = summary(run.sender());
        assert_eq!(
            (s.outcome, s.completed),
            (Outcome::Completed, 4),
            "blocksize {blocksize}"
        );
        assert_resends_are_the_naks(run.sender());
    }
}

#[test]
fn burst_loss() {
    let files = files_a();
    let mut run = Run::new(7, &files, 12_500_000, &[]);
    let bursty = LinkConfig {
        burst_start_ppm: 2_000,
        burst: Duration::from_millis(20),
        delay: Duration::from_millis(5),
        jitter: Duration::from_micros(200),
        dup_ppm: 1_000,
        ..Default::default()
    };
    for n in 0..8 {
        let mut rx = Rx::new(n, &files);
        rx.trace = std::env::var_os("SIM_TRACE").map(|_| Vec::new());
        run.add(rx, bursty, lossy(1.0));
    }
    run.run(600);
    if std::env::var_os("SIM_TRACE").is_some() {
        for i in 1..=8 {
            let t = run.rx(i).trace.as_ref().unwrap();
            std::fs::write(format!("/tmp/sim-trace-{i}.txt"), t.join("\n")).unwrap();
        }
        for e in &run.sender().events {
            eprintln!("sender: {e:?}");
        }
    }
    assert_all_complete(&run, &files, 1..=8);
    assert_resends_are_the_naks(run.sender());
}

#[test]
fn a_receiver_that_dies_is_reported_and_the_others_complete() {
    let files = vec![SimFile::new("big.bin", 4 << 20)];
    let mut run = Run::new(3, &files, 12_500_000, &[]);
    for n in 0..4 {
        run.add(Rx::new(n, &files), lossy(1.0), lossy(1.0));
    }
    let dead_uid = run.rx(2).uid();
    // Let the transfer get going, then crash receiver 2.
    let limit = run.net.now() + Duration::from_secs(60);
    assert!(run
        .net
        .run_until(limit, |net| node::<Rx>(net, 2).storage.bytes_written > 0));
    let t = run.net.now() + Duration::from_millis(100);
    run.net.run_until(t, |_| false);
    assert!(
        run.rx(2).storage.bytes_written > 0,
        "the victim was receiving when it died"
    );
    run.net.node_mut(2).set_down();
    run.run(600);
    assert_all_complete(&run, &files, [1, 3, 4].into_iter());
    assert!(run.rx(2).storage.completed.is_empty());
    let s = summary(run.sender());
    assert_eq!((s.completed, s.lost), (3, 1));
    assert!(
        run.sender().events.iter().any(|e| matches!(e, Event::ClientLost { id, reason: LostReason::NoResponse } if *id == dead_uid)),
        "the sender reports the dead receiver as lost"
    );
}

#[test]
fn a_receiver_that_joins_late_in_an_open_group_gets_nothing() {
    let files = vec![SimFile::new("a.bin", 1 << 20)];
    let mut run = Run::new(4, &files, 12_500_000, &[]);
    for n in 0..3 {
        run.add(Rx::new(n, &files), lossy(0.0), lossy(0.0));
    }
    // Joins after the announcement phase (20 rounds of 3 × 50 ms).
    let late = Rx::new(3, &files);
    let late_uid = late.uid();
    let idx = run.add(late, lossy(0.0), lossy(0.0));
    let join = run.net.now() + Duration::from_secs(5);
    run.net.set_membership(idx, join, None);
    run.run(600);
    assert_all_complete(&run, &files, 1..=3);
    let late = run.rx(idx);
    assert_eq!(
        late.storage.opened, 0,
        "the late receiver never opened a file"
    );
    assert!(
        run.sender().sender.clients().all(|c| c.id != late_uid),
        "and was never registered"
    );
    assert_eq!(summary(run.sender()).completed, 3);
}

#[test]
fn many_receivers_ten_percent_loss() {
    // The acceptance case: 1 sender, 100 receivers, 20 MiB, 10% independent loss.
    let files = vec![SimFile::new("twenty.bin", 20 << 20)];
    let mut run = Run::new(100, &files, 12_500_000, &[]);
    for n in 0..100 {
        run.add(Rx::new(n, &files), lossy(10.0), lossy(10.0));
    }
    run.run(3600);
    assert_all_complete(&run, &files, 1..=100);
    let s = summary(run.sender());
    assert_eq!((s.outcome, s.completed), (Outcome::Completed, 100));
    assert_resends_are_the_naks(run.sender());
}

/// A node that showers receiver 1 with random and mutated datagrams while a transfer runs.
struct Junk {
    rng: Rng,
    left: u64,
    next: Instant,
    seeds: Vec<Vec<u8>>,
    target: SocketAddr,
}

impl Node for Junk {
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 9, 9, 9)), 1044)
    }
    fn handle_datagram(&mut self, _: Instant, _: SocketAddr, _: Received<'_>) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<proto_core::session::Transmit> {
        if self.left == 0 || now < self.next {
            return None;
        }
        self.left -= 1;
        if self.left.is_multiple_of(256) {
            self.next = now + Duration::from_micros(200);
        }
        let len = if self.rng.below(2) == 0 {
            // A captured datagram with a few bytes changed.
            let seed = &self.seeds[self.rng.below(self.seeds.len() as u64) as usize];
            buf[..seed.len()].copy_from_slice(seed);
            for _ in 0..=self.rng.below(4) {
                let at = self.rng.below(seed.len() as u64) as usize;
                buf[at] = self.rng.next_u64() as u8;
            }
            seed.len()
        } else {
            let len = self.rng.below(1400) as usize;
            self.rng.fill(&mut buf[..len]);
            if len > 1 && self.rng.below(2) == 0 {
                buf[0] = 0x40;
                buf[1] = 1 + self.rng.below(21) as u8;
            }
            len
        };
        Some(proto_core::session::Transmit {
            dest: self.target,
            len,
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        (self.left > 0).then_some(self.next)
    }
}

#[test]
fn a_million_junk_datagrams_do_not_disturb_a_transfer() {
    let files = vec![SimFile::new("a.bin", 3 << 20)];
    let mut run = Run::new(9, &files, 2_500_000, &[]);
    let mut rx = Rx::new(0, &files);
    rx.trace = std::env::var_os("SIM_TRACE").map(|_| Vec::new());
    let target = rx.addr();
    run.add(rx, lossy(1.0), lossy(1.0));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/messages");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "bin" && !p.file_name()?.to_str()?.starts_with("inner-"))
                .then(|| std::fs::read(p).ok())?
        })
        .collect();
    assert!(seeds.len() > 50);
    // The flood starts once the transfer runs (the receiver has opened the file).
    let limit = run.net.now() + Duration::from_secs(60);
    assert!(run
        .net
        .run_until(limit, |net| node::<Rx>(net, 1).storage.bytes_written > 0));
    let next = run.net.now();
    let junk = Junk {
        rng: Rng::new(9),
        left: 1_000_000,
        next,
        seeds,
        target,
    };
    run.net
        .add(Box::new(junk), LinkConfig::default(), LinkConfig::default());
    run.run(600);
    if let Some(t) = &run.rx(1).trace {
        std::fs::write("/tmp/sim-trace-junk.txt", t.join("\n")).unwrap();
    }
    assert_all_complete(&run, &files, 1..=1);
    let stats = run.rx(1).receiver.stats();
    assert!(
        stats.datagrams >= 1_000_000,
        "the receiver got the junk: {}",
        stats.datagrams
    );
    eprintln!("receiver stats after junk: {stats:?}");
}
