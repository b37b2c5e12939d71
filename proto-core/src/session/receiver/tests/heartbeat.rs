//! Heartbeats to the proxies of `-H`.

use super::*;

/// `-H`: a plain HB_REQ at once and, until answered, again after 1 s; a challenge from a
/// proxy that pins our fingerprint is answered with a signed one that its check accepts;
/// then the interval.
#[test]
fn heartbeats_open_the_pinhole_for_a_proxy_that_pins_our_key() {
    use crate::crypto::{CurveId, EcPrivateKey};
    use crate::session::proxy::heartbeat::HeartbeatAuth;
    let key = EcPrivateKey::from_scalar(CurveId::P256, &[0x42; 32]).unwrap();
    let mut blob = [0u8; 200];
    let n = key.public_key().emit_blob(&mut blob).unwrap();
    let fingerprint = Fingerprint::of(&blob[..n]);
    let proxy = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 1044));
    let me = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 1, 7), 1044));
    let mut config = Config::new(UID, [7; 32]);
    config.heartbeat_hosts.push(proxy).unwrap();
    config.heartbeat_interval = Duration::from_secs(20);
    config.heartbeat_key = Some(OwnKey::Ec(key));
    let mut rx: Receiver<2> = Receiver::new(config);
    let mut mem = Mem::default();
    let mut buf = [0u8; 1500];
    let mut drbg = Drbg::new(&[9; 32]);
    let mut auth = HeartbeatAuth::new(fingerprint, &mut drbg);
    let mut adopted = None;
    // Drives the receiver at `t`; returns the HB_REQs it sends, answered by the proxy.
    let mut step = |rx: &mut Receiver<2>, t: Instant, mem: &mut Mem| -> StdVec<HbResult> {
        if rx.poll_timeout().is_some_and(|d| t >= d) {
            rx.handle_timeout(t, mem);
        }
        let mut answers = StdVec::new();
        while let Some(tx) = rx.poll_transmit(t, &mut buf, mem) {
            assert_eq!(tx.dest, proxy);
            let mut req_bytes = buf[..tx.len].to_vec();
            let repr = Repr::parse(&req_bytes).unwrap();
            assert_eq!(repr.header.src_id, UID);
            let Message::HbReq(req) = repr.message else {
                panic!("not an HB_REQ: {:?}", repr.message)
            };
            let a = auth.answer(&NoRsa, &mut drbg, adopted, me, &req);
            adopted = a.established.or(adopted);
            answers.push(a.result);
            let len = crate::session::proxy::heartbeat::emit_hb_resp(
                0x0a09_0001,
                a.result,
                a.nonce,
                &mut req_bytes,
            )
            .unwrap();
            req_bytes.truncate(len);
            rx.handle_datagram(t, proxy, &mut req_bytes, mem);
        }
        answers
    };
    let t0 = Instant::ZERO;
    // The first plain heartbeat is challenged, the signed answer accepted.
    assert_eq!(
        step(&mut rx, t0, &mut mem),
        [HbResult::Challenge, HbResult::Ok]
    );
    let events: StdVec<Event> = core::iter::from_fn(|| rx.poll_event()).collect();
    assert!(events.contains(&Event::HeartbeatAnswered {
        from: proxy,
        result: HbResult::Ok
    }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::HeartbeatSent { .. }))
            .count(),
        2
    );
    // Answered: the next one after the whole interval.
    assert_eq!(rx.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    assert!(step(&mut rx, t0 + Duration::from_secs(19), &mut mem).is_empty());
    // The proxy adopted our address: a plain heartbeat is answered OK at once.
    assert_eq!(
        step(&mut rx, t0 + Duration::from_secs(20), &mut mem),
        [HbResult::Ok]
    );
    assert_eq!(adopted, Some(me));
}

/// A heartbeat nobody answers is repeated after 1 s, 2 s, 4 s… up to the interval.
#[test]
fn unanswered_heartbeats_are_repeated_sooner() {
    let proxy = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 1044));
    let mut config = Config::new(UID, [7; 32]);
    config.heartbeat_hosts.push(proxy).unwrap();
    config.heartbeat_interval = Duration::from_secs(5);
    let mut rx: Receiver<2> = Receiver::new(config);
    let mut mem = Mem::default();
    let mut buf = [0u8; 1500];
    let mut sent = StdVec::new();
    let mut t = Instant::ZERO;
    while t < Instant::from_micros(20_000_000) {
        if rx.poll_timeout().is_some_and(|d| t >= d) {
            rx.handle_timeout(t, &mut mem);
        }
        while let Some(tx) = rx.poll_transmit(t, &mut buf, &mut mem) {
            assert!(matches!(
                Repr::parse(&buf[..tx.len]).unwrap().message,
                Message::HbReq(_)
            ));
            sent.push(t.as_micros() / 1_000_000);
        }
        t = rx.poll_timeout().unwrap();
    }
    assert_eq!(sent, [0, 1, 3, 7, 12, 17]);
}

/// An HB_RESP from anyone but a heartbeat host is dropped, not taken for an answer.
#[test]
fn hb_resp_from_a_stranger_is_dropped() {
    let mut b = Bench::new();
    let mut buf = [0u8; 64];
    let len =
        crate::session::proxy::heartbeat::emit_hb_resp(0x0a09_0001, HbResult::Ok, 0, &mut buf)
            .unwrap();
    b.rx.handle_datagram(ms(0), server(), &mut buf[..len], &mut b.mem);
    assert_eq!(
        b.rx.poll_event(),
        Some(Event::Dropped {
            reason: DropReason::Unexpected,
            count: 1
        })
    );
    assert_eq!(b.rx.poll_event(), None);
}
