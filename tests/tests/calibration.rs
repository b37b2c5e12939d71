//! Calibration of the simulator against real sockets: one scenario — our `uftp` to four of our
//! `uftpd`s, a 50 MiB file, 3% loss on every receiver's input, a fixed 50 Mbit/s rate — run in
//! network namespaces and in the simulator with the same parameters. Completion times must agree
//! within 25%; retransmitted blocks are compared and printed (loss is random on both sides).
//!
//! Needs root, `ip`, `nft` (`cargo xtask setup`).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::session::sender::{Event, SenderConfig};
use sim::harness::{ReceiverNode, SenderNode, SimFile};
use sim::{LinkConfig, Network};
use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

const RECEIVERS: usize = 4;
const SIZE: u64 = 50 << 20;
const RATE_KBPS: u64 = 50_000;
const LOSS_PERCENT: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Outcome {
    secs: f64,
    blocks_sent: u64,
    retransmitted: u64,
}

/// `Session done: F files, B bytes in S s (...); N FILESEGs, R retransmitted, K NAKs`.
fn parse_summary(log: &str) -> Option<Outcome> {
    let line = log.lines().find(|l| l.contains("Session done:"))?;
    let secs = line
        .split(" bytes in ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let after = line.split("; ").nth(1)?;
    let mut words = after.split(' ');
    let blocks_sent = words.next()?.parse().ok()?;
    let retransmitted = after.split(", ").nth(1)?.split(' ').next()?.parse().ok()?;
    Some(Outcome {
        secs,
        blocks_sent,
        retransmitted,
    })
}

fn uid(i: usize) -> u32 {
    0x0C00_0000 + i as u32
}

fn real_run() -> Outcome {
    let bed = Testbed::new(RECEIVERS + 1);
    let src = bed.path("calibration.bin");
    write_pattern(&src, SIZE as usize, 7);
    let mut receivers = Vec::new();
    for i in 1..=RECEIVERS {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = h.command(our_binary("uftpd"));
        cmd.args(["-d", "-x", "2", "-B", "4194304", "-I", &h.ifname])
            .args(["-U", &format!("0x{:08X}", uid(i)), "-D"])
            .arg(&dest);
        let mut p = Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        );
        p.wait_for_line("listening on port", Duration::from_secs(10));
        h.set_loss(LOSS_PERCENT);
        receivers.push((p, dest));
    }
    let ids: Vec<String> = (1..=RECEIVERS)
        .map(|i| format!("0x{:08X}", uid(i)))
        .collect();
    let h = bed.host(0);
    let mut cmd = h.command(our_binary("uftp"));
    cmd.args(["-U", "0x0A4D0001", "-I", &h.ifname, "-H", &ids.join(",")])
        .args(["-R", &RATE_KBPS.to_string(), "-x", "1"])
        .arg(&src);
    let mut tx = Proc::spawn("our uftp", cmd, &bed.path("uftp.log"));
    let code = tx.wait(Duration::from_secs(120));
    let log = tx.log_text();
    assert_eq!(code, 0, "uftp failed:\n{log}");
    let want = sha256(&src);
    for (i, (_, dest)) in receivers.iter().enumerate() {
        assert_eq!(
            sha256(&dest.join("calibration.bin")),
            want,
            "receiver {} copy differs",
            i + 1
        );
    }
    parse_summary(&log).unwrap_or_else(|| panic!("no summary in uftp's log:\n{log}"))
}

fn sim_run(seed: u64) -> Outcome {
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let mut config = SenderConfig::new(0x0a4d_0001, 0x0ca1_0001, public, private);
    // Our uftp's: -R in Kbps (1000 bits), defaults elsewhere.
    config.rate = Some(RATE_KBPS * 1000 / 8);
    let files = vec![SimFile::new("calibration.bin", SIZE)];
    let receivers: Vec<ReceiverNode<1>> = (0..RECEIVERS as u32)
        .map(|n| ReceiverNode::new(n, &files))
        .collect();
    let allowed: Vec<u32> = receivers.iter().map(|r| r.uid()).collect();
    let sender_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)), 40000);
    let mut net = Network::new(seed);
    let tx = SenderNode::<8>::new(sender_addr, config, &allowed, files.clone());
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    // A bridge between namespaces: tens of microseconds each way.
    let hop = Duration::from_micros(50);
    for rx in receivers {
        net.add(
            Box::new(rx),
            LinkConfig::lossy(f64::from(LOSS_PERCENT), hop),
            LinkConfig {
                delay: hop,
                ..Default::default()
            },
        );
    }
    let start = net.now();
    let done = net.run_until(start + Duration::from_secs(600), |n| {
        sender(n)
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionDone(_)))
    });
    assert!(done, "simulated session did not finish");
    let secs = (net.now() - start).as_secs_f64();
    let summary = sender(&net)
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionDone(s) => Some(*s),
            _ => None,
        })
        .expect("checked above");
    for i in 1..=RECEIVERS {
        let rx = net.node_any(i).downcast_ref::<ReceiverNode<1>>().unwrap();
        assert_eq!(rx.storage.bad_blocks, 0);
        assert_eq!(
            rx.storage.completed.get("calibration.bin"),
            Some(&SIZE),
            "simulated receiver {i} after {secs:.2} s: {summary:?}, events {:?}",
            rx.events
        );
    }
    Outcome {
        secs,
        blocks_sent: summary.counters.blocks_sent,
        retransmitted: summary.counters.retransmitted_blocks,
    }
}

fn sender(net: &Network) -> &SenderNode<8> {
    net.node_any(0).downcast_ref().expect("sender")
}

#[test]
fn simulated_and_real_completion_times_agree_within_a_quarter() {
    let sim = sim_run(1);
    eprintln!("simulated: {sim:?}");
    let _lock = serial();
    let real = real_run();
    let ratio = sim.secs / real.secs;
    eprintln!(
        "calibration ({RECEIVERS} receivers, {} MiB, {LOSS_PERCENT}% loss, {RATE_KBPS} Kbps): \
         real {:.2} s, {} FILESEGs, {} retransmitted; simulated {:.2} s, {} FILESEGs, {} \
         retransmitted; time ratio sim/real {ratio:.3}",
        SIZE >> 20,
        real.secs,
        real.blocks_sent,
        real.retransmitted,
        sim.secs,
        sim.blocks_sent,
        sim.retransmitted
    );
    assert!(
        (0.75..=1.25).contains(&ratio),
        "simulated {:.2} s vs real {:.2} s",
        sim.secs,
        real.secs
    );
}

#[test]
fn summary_line_parses() {
    let o = parse_summary(
        "[    9.1] Session done: 1 files, 52428800 bytes in 9.27 s (5.65 MB/s); 46142 FILESEGs, \
         5813 retransmitted, 5901 NAKs",
    )
    .unwrap();
    assert_eq!(o.blocks_sent, 46142);
    assert_eq!(o.retransmitted, 5813);
    assert!((o.secs - 9.27).abs() < 1e-9);
}
