//! Runs a [`Scenario`]: the real sender and receivers on the simulated network, then what they
//! did as a [`Report`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::session::sender::{
    Event as SenderEvent, FileResult, Outcome as SessionOutcome, SenderConfig,
};
use proto_core::time::Instant;
use proto_core::wire::CompleteStatus;

use crate::harness::{ReceiverNode, SenderNode, SimFile};
use crate::link::IP_UDP_OVERHEAD;
use crate::net::{Network, SenderLink, START};
use crate::report::{ClassReport, FileReport, NetworkReport, Percentiles, Report, Timeline};
use crate::scenario::{Action, Scenario};

/// How to run (none of it changes the results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Threads to step receivers on.
    pub threads: usize,
    /// Report progress on stderr every few seconds.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: 1,
            progress: false,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What it measured.
    pub report: Report,
    /// Why it failed, if it did: receivers that should have finished and did not, wrong blocks.
    pub failures: Vec<String>,
}

impl Outcome {
    /// Whether everything that should have happened did.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The receiver type of every run.
type Rx = ReceiverNode<1>;

/// Runs `scenario` (on a thread of its own, with the stack a large client table needs).
pub fn run(scenario: &Scenario, options: RunOptions) -> Result<Outcome, String> {
    scenario.validate()?;
    let sc = scenario.clone();
    let small = sc.receivers <= 1024;
    let stack = if small { 64 << 20 } else { 512 << 20 };
    std::thread::Builder::new()
        .name("sim".into())
        .stack_size(stack)
        .spawn(move || {
            if small {
                run_with::<1024>(&sc, options)
            } else {
                run_with::<{ crate::scenario::MAX_RECEIVERS as usize }>(&sc, options)
            }
        })
        .map_err(|e| format!("cannot start the simulation thread: {e}"))?
        .join()
        .map_err(|_| "the simulation panicked".to_string())
}

/// Whether the sender's session ended normally (a session that did not end makes no claims).
fn outcome_completed(events: &[SenderEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            SenderEvent::SessionDone(s) if s.outcome == SessionOutcome::Completed
        )
    })
}

fn secs(t: Instant) -> f64 {
    t.as_micros().saturating_sub(START.as_micros()) as f64 / 1e6
}

fn run_with<const CAP: usize>(sc: &Scenario, options: RunOptions) -> Outcome {
    let files: Vec<SimFile> = sc
        .files
        .iter()
        .map(|f| SimFile::new(&f.name, f.size))
        .collect();
    let mut net = Network::new(sc.seed);
    net.set_threads(options.threads);
    net.set_sender_link(SenderLink {
        rate: sc.sender.link_rate,
        queue: sc.sender.link_queue,
    });
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let group_id = (sc.seed as u32 ^ (sc.seed >> 32) as u32).max(1);
    let mut config = SenderConfig::new(0x0a00_0001, group_id, public, private);
    let s = &sc.sender;
    config.rate = s.rate;
    config.adaptive_rate = s.adaptive;
    config.blocksize = s.blocksize;
    config.grtt_init = s.grtt;
    config.grtt_min = s.grtt_min;
    config.grtt_max = s.grtt_max;
    config.robust = s.robust;
    config.max_passes = s.max_passes;
    let sender_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    let tx = SenderNode::<CAP>::new(sender_addr, config, &[], files.clone());
    net.add(Box::new(tx), Default::default(), Default::default());

    let ranges = sc.class_ranges();
    let mut class_of = vec![0usize; sc.receivers as usize];
    for (c, r) in sc.classes.iter().zip(&ranges) {
        for n in r.clone() {
            let rx = Rx::new(n, &files).without_event_log();
            net.add(Box::new(rx), c.down, c.up);
        }
    }
    for (c, r) in ranges.iter().enumerate() {
        for n in r.clone() {
            class_of[n as usize] = c;
        }
    }

    // What events do to whom: join/leave set membership, crash stops the node.
    let mut touched = vec![false; sc.receivers as usize];
    let mut join = vec![Instant::ZERO; sc.receivers as usize];
    let mut leave: Vec<Option<Instant>> = vec![None; sc.receivers as usize];
    let (mut crashed, mut left, mut late) = (0u32, 0u32, 0u32);
    for e in &sc.events {
        let at = START + e.at;
        for n in sc.event_targets(e) {
            let i = n as usize;
            touched[i] = true;
            match e.action {
                Action::Crash => {
                    crashed += 1;
                    net.crash_at(i + 1, at);
                }
                Action::Leave => {
                    left += 1;
                    leave[i] = Some(leave[i].map_or(at, |l| l.min(at)));
                }
                Action::Join => {
                    late += 1;
                    join[i] = join[i].max(at);
                }
            }
        }
    }
    for i in 0..sc.receivers as usize {
        if join[i] != Instant::ZERO || leave[i].is_some() {
            net.set_membership(i + 1, join[i], leave[i]);
        }
    }

    let limit = START + sc.limit;
    let wall = std::time::Instant::now();
    let mut last_report = wall;
    let n = sc.receivers as usize;
    net.run_until(limit, |net| {
        if options.progress && last_report.elapsed() >= Duration::from_secs(2) {
            last_report = std::time::Instant::now();
            let done = (1..=n)
                .filter(|&i| {
                    net.node_any(i)
                        .downcast_ref::<Rx>()
                        .is_some_and(|r| r.record.files_finished as usize >= files.len())
                })
                .count();
            let tx = net.node_any(0).downcast_ref::<SenderNode<CAP>>();
            let pass = tx.map_or(0, |t| t.sender.file_stats().passes);
            eprintln!(
                "  [{:6.1} s wall] virtual {:8.2} s, pass {pass}, {done}/{n} receivers done, {} deliveries",
                wall.elapsed().as_secs_f64(),
                secs(net.now()),
                net.stats.delivered
            );
        }
        net.node(0).is_down()
    });
    // The receivers' sessions end on their own (DONE_CONF, or their completion timeout).
    net.run_until(limit, |_| false);

    collect::<CAP>(sc, &net, &files, &class_of, &touched, (crashed, left, late))
}

fn collect<const CAP: usize>(
    sc: &Scenario,
    net: &Network,
    files: &[SimFile],
    class_of: &[usize],
    touched: &[bool],
    (crashed, left, late): (u32, u32, u32),
) -> Outcome {
    let tx = net
        .node_any(0)
        .downcast_ref::<SenderNode<CAP>>()
        .expect("node 0 is the sender");
    let mut failures = Vec::new();
    let (mut outcome, mut completion_s, mut registered, mut lost) =
        ("Unfinished".into(), secs(net.now()), 0, 0);
    let mut passes = 0u16;
    let (mut slow_reports, mut lowest_rate) = (0u32, None::<u64>);
    for (e, t) in tx.events.iter().zip(&tx.event_times) {
        match e {
            SenderEvent::SlowClient { rate, .. } => {
                slow_reports += 1;
                lowest_rate = Some(lowest_rate.map_or(*rate, |l| l.min(*rate)));
            }
            SenderEvent::SessionDone(s) => {
                outcome = format!("{:?}", s.outcome);
                completion_s = secs(*t);
                registered = u32::from(s.registered);
                lost = u32::from(s.lost);
            }
            SenderEvent::FileDone(f) => passes = passes.max(f.passes),
            _ => {}
        }
    }
    let counters = tx.sender.counters();
    // What the sender says of each receiver: files it counts complete, and whether it lost it.
    let n = sc.receivers as usize;
    let index_of = |id: u32| {
        let i = id.wrapping_sub(0x0a00_0002) as usize;
        (i < n).then_some(i)
    };
    let mut said_complete: Vec<Vec<&str>> = vec![Vec::new(); n];
    let mut said_lost = vec![false; n];
    let mut known = vec![false; n];
    for c in tx.sender.clients() {
        if let Some(i) = index_of(c.id) {
            known[i] = c.addr.is_some();
        }
    }
    for e in &tx.events {
        match *e {
            SenderEvent::FileResult {
                id,
                file_id,
                result: FileResult::Completed(CompleteStatus::Normal),
            } => {
                let name = tx.file_ids.iter().find(|(f, _)| *f == file_id);
                if let (Some(i), Some((_, name))) = (index_of(id), name) {
                    said_complete[i].push(name.as_str());
                }
            }
            SenderEvent::ClientLost { id, .. } => {
                if let Some(i) = index_of(id) {
                    said_lost[i] = true;
                }
            }
            _ => {}
        }
    }
    let mut times = Vec::new();
    let mut class_done = vec![0u32; sc.classes.len()];
    let (mut status_messages, mut nak_bytes, mut bad_blocks, mut full_checks) = (0, 0, 0, 0);
    let (mut rx_datagrams, mut rx_bytes) = (0, 0);
    let mut unfinished = 0u32;
    let mut finish_times = Vec::new();
    for i in 0..n {
        let rx = net
            .node_any(i + 1)
            .downcast_ref::<Rx>()
            .expect("nodes 1.. are receivers");
        let r = &rx.record;
        status_messages += r.status_sent;
        nak_bytes += r.status_bytes;
        rx_datagrams += r.sent;
        rx_bytes += r.sent_bytes;
        bad_blocks += rx.storage.bad_blocks;
        full_checks += rx.storage.full_checks;
        let has = |name: &str| {
            files
                .iter()
                .any(|f| f.name == name && rx.storage.completed.get(name) == Some(&f.size))
        };
        if rx.storage.bad_blocks > 0 {
            failures.push(format!(
                "receiver {i} stored {} blocks that were not the file's",
                rx.storage.bad_blocks
            ));
        }
        // The protocol's word against the receiver's storage.
        for name in &said_complete[i] {
            if !has(name) {
                failures.push(format!(
                    "the sender counts receiver {i} complete for {name}, but it does not have it"
                ));
            }
        }
        let finished = files.iter().all(|f| has(&f.name))
            && rx.storage.bad_blocks == 0
            && r.finished_at.is_some();
        if finished {
            let t = secs(r.finished_at.expect("checked"));
            times.push(t);
            finish_times.push(t);
            class_done[class_of[i]] += 1;
            continue;
        }
        if !touched[i] {
            unfinished += 1;
        }
        if known[i] && !said_lost[i] && !touched[i] && outcome_completed(&tx.events) {
            failures.push(format!(
                "receiver {i} (class {}) did not finish and the sender did not report it lost: {}",
                sc.classes[class_of[i]].name,
                match &r.ended {
                    Some((t, res)) => format!("its session ended at {:.2} s: {res:?}", secs(*t)),
                    None => "its session never ended".into(),
                }
            ));
        }
    }
    failures.truncate(50);
    let data_done_s = times.iter().copied().fold(0.0, f64::max);
    let percentiles = Percentiles::of(&mut times);
    let file_bytes: u64 = files.iter().map(|f| f.size).sum();
    let blocks: u64 = files
        .iter()
        .map(|f| f.size.div_ceil(u64::from(sc.sender.blocksize)))
        .sum();
    let stats = net.stats;
    let wire_bytes = stats.sender_bytes + IP_UDP_OVERHEAD * stats.sender_datagrams;
    // At most about 500 buckets, each a whole number of the network's.
    let (bucket, sent) = net.sender_timeline();
    let fine = sent
        .len()
        .max((completion_s / bucket.as_secs_f64()).ceil() as usize);
    let merge = fine.div_ceil(500).max(1);
    let bucket_s = bucket.as_secs_f64() * merge as f64;
    let buckets = fine.div_ceil(merge);
    finish_times.sort_by(f64::total_cmp);
    let completed_over_time = (0..buckets)
        .map(|b| {
            let end = (b + 1) as f64 * bucket_s;
            finish_times.partition_point(|&t| t <= end) as u32
        })
        .collect();
    let sender_bps = (0..buckets)
        .map(|b| {
            let bytes: u64 = sent.iter().skip(b * merge).take(merge).sum();
            bytes as f64 * 8.0 / bucket_s
        })
        .collect();
    let classes = (sc.classes.iter().zip(sc.class_ranges()).zip(class_done))
        .map(|((c, r), done)| {
            let (loss, burst) = match c.down.gilbert {
                Some(g) => (
                    f64::from(g.enter_bad_ppm)
                        / f64::from(g.enter_bad_ppm + g.leave_bad_ppm).max(1.0)
                        * 100.0,
                    1e6 / f64::from(g.leave_bad_ppm.max(1)),
                ),
                None => (f64::from(c.down.loss_ppm) / 1e4, 0.0),
            };
            let up_loss = match c.up.gilbert {
                Some(g) => {
                    f64::from(g.enter_bad_ppm)
                        / f64::from(g.enter_bad_ppm + g.leave_bad_ppm).max(1.0)
                        * 100.0
                }
                None => f64::from(c.up.loss_ppm) / 1e4,
            };
            ClassReport {
                name: c.name.clone(),
                receivers: r.end - r.start,
                delay_ms: c.down.delay.as_secs_f64() * 1000.0,
                loss_percent: loss,
                burst,
                up_loss_percent: up_loss,
                completed: done,
            }
        })
        .collect();
    let report = Report {
        seed: sc.seed,
        receivers: sc.receivers,
        files: files
            .iter()
            .map(|f| FileReport {
                name: f.name.clone(),
                size: f.size,
            })
            .collect(),
        file_bytes,
        sender_rate_bps: sc.sender.rate.map(|r| r * 8),
        adaptive_rate: sc.sender.adaptive,
        slow_client_reports: slow_reports,
        lowest_rate_bps: lowest_rate.map(|r| r * 8),
        classes,
        outcome,
        completion_s,
        data_done_s,
        goodput_bps: if completion_s > 0.0 {
            file_bytes as f64 * 8.0 / completion_s
        } else {
            0.0
        },
        wire_bytes,
        wire_per_file_byte: if file_bytes > 0 {
            wire_bytes as f64 / file_bytes as f64
        } else {
            0.0
        },
        sender_datagrams: stats.sender_datagrams,
        passes,
        blocks,
        first_pass_blocks: counters.first_pass_blocks,
        retransmitted_blocks: counters.retransmitted_blocks,
        status_messages,
        nak_bytes,
        naks_received: counters.naks_received,
        registered,
        completed: finish_times.len() as u32,
        completion_percentiles_s: percentiles,
        lost,
        crashed,
        left,
        late,
        unfinished,
        bad_blocks,
        full_checks,
        network: NetworkReport {
            delivered: stats.delivered,
            lost: stats.lost,
            duplicated: stats.duplicated,
            queue_drops: stats.queue_drops,
            mtu_drops: stats.mtu_drops,
            receiver_datagrams: rx_datagrams,
            receiver_bytes: rx_bytes,
        },
        timeline: Timeline {
            bucket_s,
            sender_bps,
            completed: completed_over_time,
        },
    };
    Outcome { report, failures }
}
