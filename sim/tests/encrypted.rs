//! Encrypted sessions on the simulated network: the real sender and receivers with ECDH key
//! exchange and each AES mode, client authentication pinned by fingerprints, and an attacker on
//! the multicast path whose every forgery must be dropped, counted and never written.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use proto_core::crypto::{CurveId, EcPrivateKey, Fingerprint};
use proto_core::session::receiver::{DropReason, Event as RxEvent, SessionResult};
use proto_core::session::security::{ClientPin, OwnKey, SenderSecurity};
use proto_core::session::sender::{Event, SenderConfig};
use proto_core::wire::{HashType, KeyExchange, KeyType, SigType};
use sim::adversary::{Adversary, Attack};
use sim::harness::{ReceiverNode, SenderNode, SimFile};
use sim::{LinkConfig, Network};

type Tx = SenderNode<64>;
type Rx = ReceiverNode<2>;

fn sender_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000)
}

fn config() -> SenderConfig {
    let public = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)), 1044);
    let private = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 1)), 1044);
    let mut c = SenderConfig::new(0x0a00_0001, 0x5ec0_0001, public, private);
    c.rate = Some(12_500_000);
    c.grtt_init = Duration::from_millis(50);
    c
}

/// A deterministic EC key (scalar from `n`).
fn ec_key(curve: CurveId, n: u8) -> EcPrivateKey {
    let len = curve.field_len().unwrap();
    let mut scalar = vec![0x11u8; len];
    scalar[len - 1] = n;
    EcPrivateKey::from_scalar(curve, &scalar).unwrap()
}

fn fingerprint(key: &EcPrivateKey) -> Fingerprint {
    let public = key.public_key();
    let mut blob = vec![0u8; public.blob_len()];
    public.emit_blob(&mut blob).unwrap();
    Fingerprint::of(&blob)
}

fn security(keytype: KeyType, hash: HashType, curve: CurveId) -> SenderSecurity {
    SenderSecurity {
        keytype,
        hashtype: hash,
        sigtype: if matches!(keytype, KeyType::Aes128Cbc | KeyType::Aes256Cbc) {
            SigType::Hmac
        } else {
            SigType::AuthEnc
        },
        keyex: KeyExchange::EcdhEcdsa,
        ecdh_curve: curve,
        client_auth: false,
        key: OwnKey::Ec(ec_key(curve, 1)),
        seed: [9; 32],
    }
}

fn files() -> Vec<SimFile> {
    vec![
        SimFile::new("image.bin", 1 << 20),
        SimFile::new("small.txt", 777),
    ]
}

fn node<T: 'static>(net: &Network, i: usize) -> &T {
    net.node_any(i).downcast_ref::<T>().expect("node type")
}

fn run(net: &mut Network, secs: u64) {
    let limit = net.now() + Duration::from_secs(secs);
    // Until the sender is done and every receiver has ended its session (a receiver whose
    // DONE_CONF was lost ends when its completion phase runs out).
    let done = net.run_until(limit, |n| {
        n.node(0).is_down()
            && (1..n.len()).all(|i| {
                n.node_any(i)
                    .downcast_ref::<Rx>()
                    .is_none_or(|rx| rx.receiver.active_sessions() == 0)
            })
    });
    assert!(done, "session did not end within {secs} s of virtual time");
}

fn assert_complete(net: &Network, files: &[SimFile], i: usize) {
    let rx = node::<Rx>(net, i);
    assert_eq!(
        rx.storage.bad_blocks, 0,
        "receiver {i} stored a wrong block"
    );
    for f in files {
        assert_eq!(
            rx.storage.completed.get(&f.name),
            Some(&f.size),
            "receiver {i} lacks {}; stats {:?}; events {:#?}",
            f.name,
            rx.receiver.stats(),
            rx.events
                .iter()
                .filter(|e| !matches!(e, RxEvent::Dropped { .. }))
                .collect::<Vec<_>>()
        );
    }
    assert!(
        rx.events.iter().any(|e| matches!(
            e,
            RxEvent::SessionEnded {
                result: SessionResult::Completed,
                ..
            }
        )),
        "receiver {i} did not end its session complete: {:#?} {:?}",
        rx.events
            .iter()
            .filter(|e| !matches!(e, RxEvent::Dropped { .. }))
            .collect::<Vec<_>>(),
        rx.receiver.stats()
    );
}

#[test]
fn each_suite_delivers_byte_identical_files_under_loss() {
    let suites = [
        (KeyType::Aes256Gcm, HashType::Sha256, CurveId::P256),
        (KeyType::Aes128Ccm, HashType::Sha384, CurveId::P384),
        (KeyType::Aes256Cbc, HashType::Sha512, CurveId::P256),
    ];
    for (seed, (keytype, hash, curve)) in suites.into_iter().enumerate() {
        let files = files();
        let mut net = Network::new(seed as u64 + 100);
        let tx = Tx::with_security(
            sender_addr(),
            config(),
            &[],
            security(keytype, hash, curve),
            files.clone(),
        );
        net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
        for n in 0..8 {
            // CBC is weak: these receivers opted in.
            let rx = Rx::new(n, &files).configure(|c| c.allow_weak = true);
            net.add(
                Box::new(rx),
                LinkConfig::lossy(5.0, Duration::from_millis(3)),
                LinkConfig::lossy(5.0, Duration::from_millis(3)),
            );
        }
        run(&mut net, 120);
        for i in 1..=8 {
            assert_complete(&net, &files, i);
            let rx = node::<Rx>(&net, i);
            let st = rx.receiver.stats();
            assert_eq!(st.dropped[DropReason::AuthFailed.index()], 0, "{keytype:?}");
            assert!(rx.events.iter().any(|e| matches!(
                e,
                RxEvent::SessionStarted { cipher, .. } if *cipher == keytype
            )));
        }
        let tx = node::<Tx>(&net, 0);
        let c = tx.sender.counters();
        assert_eq!(c.auth_failures, 0);
        assert!(c.retransmitted_blocks > 0, "5% loss should cost repairs");
        eprintln!(
            "{keytype:?}/{hash:?}/{curve:?}: {} blocks sent, {} retransmitted",
            c.blocks_sent, c.retransmitted_blocks
        );
    }
}

#[test]
fn a_weak_session_is_refused_by_default() {
    let files = files();
    let mut net = Network::new(7);
    let tx = Tx::with_security(
        sender_addr(),
        config(),
        &[],
        security(KeyType::Aes256Cbc, HashType::Sha256, CurveId::P256),
        files.clone(),
    );
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    net.add(
        Box::new(Rx::new(0, &files)),
        LinkConfig::default(),
        LinkConfig::default(),
    );
    run(&mut net, 120);
    let rx = node::<Rx>(&net, 1);
    assert!(rx.storage.completed.is_empty());
    assert!(rx.events.iter().any(|e| matches!(
        e,
        RxEvent::Refused {
            detail: Some(d),
            aborted: true,
            ..
        } if d.contains("CBC")
    )));
}

#[test]
fn pinned_client_keys_admit_their_holders_and_refuse_an_impostor() {
    let files = files();
    let keys: Vec<EcPrivateKey> = (0..3).map(|n| ec_key(CurveId::P256, 10 + n)).collect();
    let impostor = ec_key(CurveId::P256, 99);
    let uid = |n: u32| 0x0a00_0000 + n + 2;
    let pins: Vec<ClientPin> = (0..3)
        .map(|n| ClientPin {
            id: uid(n),
            fingerprint: Some(fingerprint(&keys[n as usize])),
        })
        .collect();
    let mut net = Network::new(11);
    let tx = Tx::with_security(
        sender_addr(),
        config(),
        &pins,
        security(KeyType::Aes256Gcm, HashType::Sha256, CurveId::P256),
        files.clone(),
    );
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    for n in 0..3u32 {
        // Receiver 2 holds a key other than the one pinned for it.
        let key = if n == 2 {
            impostor.clone()
        } else {
            keys[n as usize].clone()
        };
        let rx = Rx::new(n, &files).configure(|c| {
            c.ec_keys.push(key).unwrap();
        });
        net.add(
            Box::new(rx),
            LinkConfig::lossy(2.0, Duration::from_millis(2)),
            LinkConfig::default(),
        );
    }
    run(&mut net, 120);
    assert_complete(&net, &files, 1);
    assert_complete(&net, &files, 2);
    let impostor_rx = node::<Rx>(&net, 3);
    assert!(
        impostor_rx.storage.completed.is_empty(),
        "the impostor received files"
    );
    let tx = node::<Tx>(&net, 0);
    assert!(
        tx.events
            .iter()
            .any(|e| matches!(e, Event::ClientRefused { id, .. } if *id == uid(2))),
        "the sender did not report refusing the impostor: {:#?}",
        tx.events
    );
    assert!(tx.sender.counters().clients_refused >= 1);
}

#[test]
fn forgeries_are_dropped_counted_and_never_written() {
    let files = vec![SimFile::new("firmware.img", 3 << 20)];
    let mut net = Network::new(23);
    let tx = Tx::with_security(
        sender_addr(),
        config(),
        &[],
        security(KeyType::Aes256Gcm, HashType::Sha256, CurveId::P256),
        files.clone(),
    );
    net.add(Box::new(tx), LinkConfig::default(), LinkConfig::default());
    for n in 0..3 {
        net.add(
            Box::new(Rx::new(n, &files)),
            LinkConfig {
                delay: Duration::from_millis(2),
                ..Default::default()
            },
            LinkConfig::default(),
        );
    }
    let attacker: SocketAddr = "10.0.0.66:1044".parse().unwrap();
    let adv = net.add(
        Box::new(Adversary::new(attacker, 7, 200)),
        LinkConfig {
            delay: Duration::from_millis(1),
            ..Default::default()
        },
        LinkConfig::default(),
    );
    run(&mut net, 120);
    let sent = node::<Adversary>(&net, adv).sent.clone();
    let count = |a: Attack| sent.get(&a).copied().unwrap_or(0);
    for a in [
        Attack::FlipBit,
        Attack::Replay,
        Attack::Truncate,
        Attack::WrongKey,
        Attack::ForgedAnnounce,
        Attack::ForgedNewSession,
    ] {
        assert!(count(a) > 0, "no {a:?} was sent");
    }
    eprintln!("attacks sent: {sent:?}");
    for i in 1..=3 {
        assert_complete(&net, &files, i);
        let st = node::<Rx>(&net, i).receiver.stats();
        let dropped = |r: DropReason| st.dropped[r.index()];
        assert_eq!(
            dropped(DropReason::AuthFailed),
            count(Attack::FlipBit) + count(Attack::WrongKey),
            "receiver {i}: flipped bits and foreign keys fail authentication; {st:?}"
        );
        assert_eq!(
            dropped(DropReason::Replayed),
            count(Attack::Replay),
            "receiver {i}: replays; {st:?}"
        );
        assert_eq!(
            dropped(DropReason::Malformed),
            count(Attack::Truncate),
            "receiver {i}: truncated envelopes; {st:?}"
        );
        assert_eq!(
            dropped(DropReason::Untrusted),
            count(Attack::ForgedAnnounce) + count(Attack::ForgedNewSession),
            "receiver {i}: forged ANNOUNCEs; {st:?}"
        );
    }
}
