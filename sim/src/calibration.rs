//! The calibration scenario, simulated: our `uftp` to [`RECEIVERS`] of our `uftpd`s, a
//! [`SIZE`]-byte file, [`LOSS_PERCENT`]% loss on every receiver's input, a fixed
//! [`RATE_KBPS`] Kbit/s. `cargo xtask bench` runs it beside the same transfer on real sockets
//! and reports how far the completion times agree; `tests/tests/calibration.rs` checks that both
//! complete.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::session::sender::{Event, SenderConfig};

use crate::harness::{ReceiverNode, SenderNode, SimFile};
use crate::{LinkConfig, Network};

/// Receivers.
pub const RECEIVERS: usize = 4;
/// The file's size in bytes (50 MiB).
pub const SIZE: u64 = 50 << 20;
/// The sender's fixed rate, `uftp -R` (Kbit/s, 1000 bits).
pub const RATE_KBPS: u64 = 50_000;
/// Random loss on every receiver's input.
pub const LOSS_PERCENT: u32 = 3;
/// The file's name.
pub const FILE_NAME: &str = "calibration.bin";

/// What a run of the scenario took.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Completion time (virtual seconds from start to the sender's `SessionDone`).
    pub secs: f64,
    /// FILESEGs sent, first pass and repairs.
    pub blocks_sent: u64,
    /// FILESEGs sent again.
    pub retransmitted: u64,
}

/// Simulates the scenario from `seed`; an error if a receiver does not end with the whole file.
pub fn simulate(seed: u64) -> Result<Outcome, String> {
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let mut config = SenderConfig::new(0x0a4d_0001, 0x0ca1_0001, public, private);
    // Our uftp's: -R in Kbps (1000 bits), defaults elsewhere.
    config.rate = Some(RATE_KBPS * 1000 / 8);
    let files = vec![SimFile::new(FILE_NAME, SIZE)];
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
    if !done {
        return Err("the simulated session did not finish".into());
    }
    let secs = (net.now() - start).as_secs_f64();
    let summary = sender(&net)
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionDone(s) => Some(*s),
            _ => None,
        })
        .ok_or("no SessionDone")?;
    for i in 1..=RECEIVERS {
        let rx = net
            .node_any(i)
            .downcast_ref::<ReceiverNode<1>>()
            .ok_or("not a receiver")?;
        if rx.storage.bad_blocks != 0 || rx.storage.completed.get(FILE_NAME) != Some(&SIZE) {
            return Err(format!(
                "simulated receiver {i} after {secs:.2} s: {} bad blocks, {:?} of {FILE_NAME}; \
                 {summary:?}, events {:?}",
                rx.storage.bad_blocks,
                rx.storage.completed.get(FILE_NAME),
                rx.events
            ));
        }
    }
    Ok(Outcome {
        secs,
        blocks_sent: summary.counters.blocks_sent,
        retransmitted: summary.counters.retransmitted_blocks,
    })
}

fn sender(net: &Network) -> &SenderNode<8> {
    net.node_any(0)
        .downcast_ref()
        .expect("node 0 is the sender")
}
