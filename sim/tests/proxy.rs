//! Proxies on the simulated network: remote sites behind a multicast tunnel (server proxy next
//! to the sender, client proxy on the site's own LAN, learned from signed heartbeats), and a
//! response proxy beside the sender. Every receiver checks every block it stores.
//!
//! The scale scenario of issue 8: one sender, 20 client proxies with 50 receivers each, 2% loss;
//! the sender answers 20 proxies, not 1,000 clients. `SIM_SEED=…` replays a run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::crypto::{CurveId, EcPrivateKey, Fingerprint};
use proto_core::session::proxy::{Downstream, Event as ProxyEvent, ProxyConfig, ProxyMode};
use proto_core::session::receiver::{Event as RxEvent, ResponseProxy, SessionResult};
use proto_core::session::security::{OwnKey, SenderSecurity};
use proto_core::session::sender::{Event, Outcome, SenderConfig, SessionSummary};
use sim::harness::{ReceiverNode, SenderNode, SimFile};
use sim::proxy::{ProxyNode, ProxySite, SitePath, SITE_CLIENTS, SITE_SESSIONS};
use sim::{LinkConfig, Network};

type Tx = SenderNode<1024>;
type Rx = ReceiverNode<SITE_SESSIONS>;

fn sender_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000)
}

fn site_addr(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 200, 0, n as u8 + 1)), 1044)
}

fn seed() -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0008)
}

fn config(group: u32) -> SenderConfig {
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let mut c = SenderConfig::new(0x0a00_0001, group, public, private);
    c.rate = Some(12_500_000);
    c.grtt_init = Duration::from_millis(100);
    c
}

/// A deterministic EC key (scalar from `n`).
fn ec_key(n: u16) -> EcPrivateKey {
    let mut scalar = vec![0x22u8; 32];
    scalar[30..].copy_from_slice(&n.to_be_bytes());
    EcPrivateKey::from_scalar(CurveId::P256, &scalar).unwrap()
}

fn fingerprint(key: &EcPrivateKey) -> Fingerprint {
    let public = key.public_key();
    let mut blob = vec![0u8; public.blob_len()];
    public.emit_blob(&mut blob).unwrap();
    Fingerprint::of(&blob)
}

/// Runs `f` on a thread with room for the large state machines (a 1,024-client sender, the
/// proxies' tables) that debug builds move around on the stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn node<T: 'static>(net: &Network, i: usize) -> &T {
    net.node_any(i).downcast_ref::<T>().expect("node type")
}

fn summary(tx: &Tx) -> SessionSummary {
    tx.events
        .iter()
        .find_map(|e| match e {
            Event::SessionDone(s) => Some(*s),
            _ => None,
        })
        .expect("SessionDone event")
}

/// Site `n` with `receivers` receivers numbered from `first`: its server proxy learns the
/// client proxy's address from heartbeats signed with the client proxy's key (`-s fp=`).
fn site(n: u32, first: u32, receivers: u32, files: &[SimFile], seed: u64) -> ProxySite {
    let addr = site_addr(n);
    let key = ec_key(100 + n as u16);
    let mut server = ProxyConfig::new(
        0x0b00_0000 + n,
        ProxyMode::Server(Downstream::Heartbeat(fingerprint(&key))),
        [n as u8; 32],
    );
    server.public_addrs.clear();
    let mut client = ProxyConfig::new(0x0c00_0000 + n, ProxyMode::Client, [0x80 | n as u8; 32]);
    client.keys.push(OwnKey::Ec(key)).unwrap();
    client.heartbeat_hosts.push(addr).unwrap();
    client.heartbeat_interval = Duration::from_secs(1);
    let rx = (first..first + receivers)
        .map(|i| Rx::new(i, files).without_event_log())
        .collect();
    ProxySite::new(
        addr,
        server,
        client,
        rx,
        // The tunnel to the site: 20 ms and 2% loss; the site's LAN: 1 ms and 2% loss.
        SitePath::lossy(2.0, Duration::from_millis(20)),
        SitePath::lossy(2.0, Duration::from_millis(1)),
        seed ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    )
}

/// Runs until the sender is done and every site's receivers have ended their sessions.
fn run_sites(net: &mut Network, secs: u64) {
    let limit = net.now() + Duration::from_secs(secs);
    let done = net.run_until(limit, |n| {
        n.node(0).is_down()
            && (1..n.len()).all(|i| {
                n.node_any(i).downcast_ref::<ProxySite>().is_none_or(|s| {
                    s.receivers
                        .iter()
                        .all(|r| r.receiver.active_sessions() == 0)
                })
            })
    });
    assert!(
        done,
        "session did not end within {secs} s of virtual time (seed {})",
        seed()
    );
}

fn assert_receiver_complete(rx: &Rx, files: &[SimFile], who: &str) {
    assert_eq!(rx.storage.bad_blocks, 0, "{who} stored a wrong block");
    for f in files {
        assert_eq!(
            rx.storage.completed.get(&f.name),
            Some(&f.size),
            "{who} lacks {}; stats {:?}; record {:?}",
            f.name,
            rx.receiver.stats(),
            rx.record
        );
    }
    assert!(
        matches!(rx.record.ended, Some((_, SessionResult::Completed))),
        "{who} did not end its session complete: {:?}",
        rx.record.ended
    );
}

#[test]
fn twenty_client_proxies_with_fifty_receivers_each_at_two_percent_loss() {
    big_stack(twenty_client_proxies_with_fifty_receivers_each_at_two_percent_loss_run);
}

fn twenty_client_proxies_with_fifty_receivers_each_at_two_percent_loss_run() {
    const SITES: u32 = 20;
    const PER_SITE: u32 = 50;
    let seed = seed();
    let files = vec![
        SimFile::new("dataset.bin", 400_000),
        SimFile::new("notes.txt", 3_000),
    ];
    let mut net = Network::new(seed);
    let tx = Tx::new(sender_addr(), config(0x0008_0001), &[], files.clone());
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    // The sender's LAN, where the server proxies sit: 1 ms each way.
    let lan = LinkConfig::lossy(0.0, Duration::from_millis(1));
    for n in 0..SITES {
        let s = site(n, n * PER_SITE, PER_SITE, &files, seed);
        net.add(Box::new(s), lan, lan);
    }
    run_sites(&mut net, 600);

    let tx = node::<Tx>(&net, 0);
    let s = summary(tx);
    assert_eq!(s.outcome, Outcome::Completed, "{s:?}");
    let receivers = (SITES * PER_SITE) as u16;
    assert_eq!(
        (s.registered, s.completed, s.lost),
        (receivers, receivers, 0)
    );
    let mut aggregated = 0;
    let mut aggregates = 0;
    let mut receiver_sent = 0;
    let mut lan_lost = 0;
    for n in 0..SITES {
        let site = node::<ProxySite>(&net, 1 + n as usize);
        assert_eq!(site.stats.misrouted, 0);
        assert!(
            site.server_events
                .iter()
                .any(|e| matches!(e, ProxyEvent::DownstreamChanged { addr } if *addr == site.client_addr())),
            "site {n}: the server proxy never learned the client proxy's address"
        );
        for (k, rx) in site.receivers.iter().enumerate() {
            assert_receiver_complete(rx, &files, &format!("site {n} receiver {k}"));
            receiver_sent += rx.record.sent;
        }
        let c = site.client.counters();
        aggregated += c.responses_aggregated;
        aggregates += c.aggregates_sent;
        lan_lost += site.stats.lan_lost;
    }

    // The sender's view: 1,020 entries, of which 20 answered (the proxies).
    let table: Vec<_> = tx.sender.clients().collect();
    let proxies = table.iter().filter(|c| c.proxy).count();
    let behind = table.iter().filter(|c| c.via.is_some()).count();
    let direct = table.iter().filter(|c| !c.proxy && c.via.is_none()).count();
    assert_eq!(
        (proxies, behind, direct),
        (SITES as usize, receivers as usize, 0)
    );
    assert_eq!(tx.sender.responders(), SITES as usize);
    let c = tx.sender.counters();
    println!(
        "seed {seed}: {SITES} client proxies x {PER_SITE} receivers, 2% loss on tunnel and LAN"
    );
    println!(
        "sender client table: {} entries = {proxies} proxies + {behind} clients behind them, \
         {direct} direct; responders: {} (instead of {receivers})",
        table.len(),
        tx.sender.responders()
    );
    println!(
        "sender took {} responses ({} STATUS, {} NAK bits), dropped {}; {} FILESEGs sent \
         ({} retransmitted)",
        c.responses,
        c.status_received,
        c.naks_received,
        c.dropped,
        c.blocks_sent,
        c.retransmitted_blocks
    );
    println!(
        "receivers sent {receiver_sent} datagrams; the proxies took {aggregated} responses \
         into {aggregates} aggregates; LAN deliveries lost: {lan_lost}"
    );
    println!(
        "summary: {} registered, {} completed, {} lost; virtual time {:.1} s",
        s.registered,
        s.completed,
        s.lost,
        (net.now().as_micros() - 1_000_000) as f64 / 1e6
    );
    // What reached the sender is a small part of what the receivers sent.
    assert!(
        c.responses * 10 < receiver_sent,
        "{} vs {receiver_sent}",
        c.responses
    );

    // The same session without proxies, for comparison: 1,000 receivers answer the sender
    // themselves over the same 2% loss.
    let mut net = Network::new(seed);
    let tx = Tx::new(sender_addr(), config(0x0008_0001), &[], files.clone());
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    let path = LinkConfig::lossy(2.0, Duration::from_millis(20));
    for i in 0..SITES * PER_SITE {
        net.add(Box::new(Rx::new(i, &files).without_event_log()), path, path);
    }
    let limit = net.now() + Duration::from_secs(600);
    assert!(net.run_until(limit, |n| n.node(0).is_down()));
    let direct = node::<Tx>(&net, 0);
    let d = direct.sender.counters();
    assert_eq!(summary(direct).completed, receivers);
    assert_eq!(direct.sender.responders(), receivers as usize);
    println!(
        "without proxies: responders {}, {} responses ({} STATUS, {} NAK bits), dropped {}; \
         {} FILESEGs sent ({} retransmitted)",
        direct.sender.responders(),
        d.responses,
        d.status_received,
        d.naks_received,
        d.dropped,
        d.blocks_sent,
        d.retransmitted_blocks
    );
    assert!(c.responses * 10 < d.responses);
}

#[test]
fn encrypted_sessions_through_client_proxies_use_the_proxies_keys_and_keyinfo() {
    big_stack(encrypted_sessions_through_client_proxies_use_the_proxies_keys_and_keyinfo_run);
}

fn encrypted_sessions_through_client_proxies_use_the_proxies_keys_and_keyinfo_run() {
    let seed = seed() ^ 1;
    let files = vec![
        SimFile::new("secret.bin", 150_000),
        SimFile::new("small.txt", 777),
    ];
    let mut net = Network::new(seed);
    let server_key = ec_key(1);
    let tx = Tx::with_security(
        sender_addr(),
        config(0x0008_0002),
        &[],
        SenderSecurity::strong(server_key, [5; 32]),
        files.clone(),
    );
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    let lan = LinkConfig::lossy(0.0, Duration::from_millis(1));
    for n in 0..3 {
        let s = site(n, 100 + n * 5, 5, &files, seed);
        net.add(Box::new(s), lan, lan);
    }
    run_sites(&mut net, 300);
    let tx = node::<Tx>(&net, 0);
    let s = summary(tx);
    assert_eq!(
        (s.outcome, s.registered, s.completed),
        (Outcome::Completed, 15, 15)
    );
    assert_eq!(tx.sender.responders(), 3);
    for n in 0..3u32 {
        let site = node::<ProxySite>(&net, 1 + n as usize);
        // The receivers saw the client proxy's key in ANNOUNCE, not the server's.
        let proxy_fp = site.client.key_fingerprint().unwrap();
        for (k, rx) in site.receivers.iter().enumerate() {
            assert_receiver_complete(rx, &files, &format!("site {n} receiver {k}"));
        }
        let registered = site
            .client_events
            .iter()
            .filter(|e| matches!(e, ProxyEvent::ClientRegistered { .. }))
            .count();
        assert_eq!(registered, 5, "site {n}: {:?}", site.client_events);
        assert!(site.client.counters().keyinfo_sent >= 1);
        assert_ne!(proxy_fp, fingerprint(&ec_key(1)));
        assert_eq!(site.client.counters().clients_refused, 0);
    }
}

#[test]
fn a_response_proxy_answers_for_receivers_that_hear_the_sender() {
    big_stack(a_response_proxy_answers_for_receivers_that_hear_the_sender_run);
}

fn a_response_proxy_answers_for_receivers_that_hear_the_sender_run() {
    let seed = seed() ^ 2;
    let files = vec![SimFile::new("update.bin", 200_000)];
    let mut net = Network::new(seed);
    let tx = Tx::with_security(
        sender_addr(),
        config(0x0008_0003),
        &[],
        SenderSecurity::strong(ec_key(1), [6; 32]),
        files.clone(),
    );
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    let proxy_addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 1044);
    let proxy_key = ec_key(50);
    let proxy_fp = fingerprint(&proxy_key);
    let mut pc = ProxyConfig::new(0x0d00_0001, ProxyMode::Response, [3; 32]);
    pc.keys.push(OwnKey::Ec(proxy_key)).unwrap();
    pc.ecdh_key = Some(ec_key(51));
    let near = LinkConfig::lossy(0.0, Duration::from_millis(1));
    net.add(
        Box::new(ProxyNode::<SITE_CLIENTS>::new(proxy_addr, pc)),
        near,
        near,
    );
    let lossy = LinkConfig::lossy(2.0, Duration::from_millis(5));
    for i in 0..10 {
        let rx = Rx::new(200 + i, &files).configure(|c| {
            c.response_proxy = Some(ResponseProxy {
                addr: proxy_addr,
                fingerprint: Some(proxy_fp),
            });
        });
        net.add(Box::new(rx), lossy, lossy);
    }
    let limit = net.now() + Duration::from_secs(300);
    let done = net.run_until(limit, |n| {
        n.node(0).is_down()
            && (2..n.len()).all(|i| node::<Rx>(n, i).receiver.active_sessions() == 0)
    });
    assert!(done, "session did not end (seed {seed})");
    let tx = node::<Tx>(&net, 0);
    let s = summary(tx);
    assert_eq!(
        (s.outcome, s.registered, s.completed),
        (Outcome::Completed, 10, 10)
    );
    // One responder: the proxy, for ten clients.
    assert_eq!(tx.sender.responders(), 1);
    let proxy = node::<ProxyNode<SITE_CLIENTS>>(&net, 1);
    assert!(proxy.proxy.counters().proxy_keys_sent >= 1);
    assert!(proxy.proxy.counters().keyinfo_sent >= 1);
    for i in 2..net.len() {
        let rx = node::<Rx>(&net, i);
        assert_eq!(rx.receiver.response_proxy_key(), Some(proxy_fp));
        assert_receiver_complete(rx, &files, &format!("receiver {i}"));
        assert!(rx
            .events
            .iter()
            .any(|e| matches!(e, RxEvent::SessionStarted { server, .. } if *server == proxy_addr)));
    }
}
