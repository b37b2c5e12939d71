//! Registration: ANNOUNCE, REGISTER and its retries, closed groups, refusals, floods.

use super::*;

#[test]
fn a_registered_client_waits_out_the_announce_phase_at_its_pace() {
    // The server announced with GRTT 0.5 s (rounds 1.5 s apart), then measured our RTT and
    // advertises 10 ms: the next round (for clients not yet registered) may still be over
    // a second away, and that silence must not time us out before the first FILEINFO.
    let mut b = Bench::new();
    let mut buf = [0u8; 9000];
    let mut h = header(0);
    h.grtt = Grtt::from_micros(500_000);
    let len = Repr {
        header: h,
        message: Message::Announce(announce(&[])),
    }
    .emit(&mut buf)
    .unwrap();
    b.rx.handle_datagram(ms(0), server(), &mut buf[..len], &mut b.mem);
    let _ = b.out(ms(0));
    b.seq = 1;
    b.send(
        ms(1),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    b.timeout(ms(2_000));
    assert_eq!(
        b.rx.active_sessions(),
        1,
        "timed out during the announce phase"
    );
    // ... but not forever: ROBUST rounds at that pace, and it is over.
    b.timeout(ms(40_000));
    assert_eq!(b.rx.active_sessions(), 0);
}

#[test]
fn announcements_keep_a_confirmed_session_alive() {
    // An open group announces for ROBUST rounds after confirming us; those rounds can last
    // longer than our idle timeout (here 1 s), and must not time us out.
    let mut b = Bench::new();
    b.registered();
    for t in (400..=3000).step_by(400) {
        b.timeout(ms(t));
        b.send(ms(t), Message::Announce(announce(&[])));
        b.out(ms(t));
    }
    let ended = b
        .events()
        .into_iter()
        .any(|e| matches!(e, Event::SessionEnded { .. }));
    assert!(
        !ended,
        "the session timed out while the server was still announcing"
    );
    assert_eq!(b.rx.active_sessions(), 1);
    // Silence does time it out.
    b.timeout(ms(5000));
    assert!(b
        .events()
        .into_iter()
        .any(|e| matches!(e, Event::SessionEnded { .. })));
}

#[test]
fn registers_with_echoed_timestamp_and_retries_until_expiry() {
    let mut b = Bench::new();
    b.send(ms(0), Message::Announce(announce(&[])));
    let ev = b.events();
    assert!(matches!(
        ev[0],
        Event::SessionStarted { private_addr, .. } if private_addr == IpAddr::V4(PRIV)
    ));
    // Held 3 ms before answering: the echo carries it.
    let out = b.out(ms(3));
    assert_eq!(out.len(), 1);
    let Message::Register(r) = parse(&out[0]).message else {
        panic!("not a REGISTER")
    };
    assert_eq!(
        r.timestamp,
        Timestamp {
            secs: 1000,
            usecs: 3500
        }
    );
    assert!(r.keyinfo.is_empty());
    // Retries every 4×GRTT (GRTT ≈ 10 ms).
    let t = b.rx.poll_timeout().unwrap();
    assert!(t > ms(30) && t < ms(50), "{t:?}");
    b.timeout(t);
    assert_eq!(b.out(t).len(), 1);
    // Expires after max(4×ROBUST×GRTT, 1 s): ABORT to the server.
    let mut now;
    let mut registers = 1;
    loop {
        now = b.rx.poll_timeout().unwrap();
        b.timeout(now);
        let out = b.out(now);
        if b.rx.active_sessions() == 0 {
            let Message::Abort(a) = parse(&out[0]).message else {
                panic!("expected ABORT")
            };
            assert_eq!(a.reason, b"Registration unconfirmed by server");
            break;
        }
        registers += out.len();
    }
    assert!(now >= ms(1000) && now < ms(1700), "{now:?}");
    assert!(registers > 10);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::SessionEnded {
            result: SessionResult::Aborted(AbortReason::RegistrationTimedOut),
            ..
        }
    )));
    // Late ANNOUNCEs of that group are ignored.
    b.send(now, Message::Announce(announce(&[])));
    assert!(b.out(now).is_empty());
}

#[test]
fn closed_group_registers_only_when_listed() {
    let mut b = Bench::new();
    b.send(
        ms(0),
        Message::Announce(announce(&[0x0a00_0009, 0x0a00_000a])),
    );
    assert!(b.out(ms(0)).is_empty());
    assert_eq!(b.rx.active_sessions(), 0);
    b.send(ms(1), Message::Announce(announce(&[0x0a00_0009, UID])));
    assert_eq!(b.out(ms(1)).len(), 1);
    // REG_CONF for someone else: still registering; for us: registered.
    b.send(
        ms(2),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[0x0a00_0009]),
        }),
    );
    b.send(
        ms(3),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Registered { .. })));
    // No more REGISTERs once confirmed.
    b.timeout(ms(60));
    assert!(b.out(ms(60)).is_empty());
}

#[test]
fn weak_or_rsa_announce_is_refused_with_abort() {
    // uftp 4.10.2's RSA-1024 / AES-256-CBC session: weak on two counts.
    let vector = include_bytes!("../../../../../tests/vectors/messages/announce-enc-rsa.bin");
    let mut b = Bench::new();
    b.rx.handle_datagram(ms(0), server(), &mut vector.to_vec(), &mut b.mem);
    let out = b.out(ms(0));
    let r = Repr::parse(&out[0]).unwrap();
    let Message::Abort(a) = r.message else {
        panic!("expected ABORT")
    };
    assert!(a.reason.starts_with(b"Weak encryption refused"));
    assert_eq!(b.rx.active_sessions(), 0);
    assert!(matches!(
        b.events()[0],
        Event::Refused {
            reason: AbortReason::WeakSession,
            detail: Some(_),
            aborted: true,
            ..
        }
    ));
    // Weak sessions allowed, but this receiver has no RSA.
    let mut b = Bench::new();
    b.rx.config.allow_weak = true;
    b.rx.handle_datagram(ms(0), server(), &mut vector.to_vec(), &mut b.mem);
    let out = b.out(ms(0));
    let Message::Abort(a) = Repr::parse(&out[0]).unwrap().message else {
        panic!("expected ABORT")
    };
    assert!(a.reason.starts_with(b"RSA not supported"));
}

#[test]
fn a_flood_of_unconfirmed_sessions_cannot_lock_out_a_real_one() {
    let mut b = Bench::new();
    let mut buf = [0u8; 9000];
    // Forty ANNOUNCEs for sessions that will never confirm (4 slots).
    for g in 0..40u32 {
        let mut h = header(0);
        h.group_id = 0xbad0_0000 + g;
        let len = Repr {
            header: h,
            message: Message::Announce(announce(&[])),
        }
        .emit(&mut buf)
        .unwrap();
        b.rx.handle_datagram(ms(u64::from(g)), server(), &mut buf[..len], &mut b.mem);
    }
    assert_eq!(b.rx.active_sessions(), 4);
    let _ = b.out(ms(50));
    // The real server's session still gets a slot and registers.
    b.send(ms(60), Message::Announce(announce(&[])));
    let out = b.out(ms(60));
    let regs: StdVec<_> = out
        .iter()
        .map(|d| Repr::parse(d).unwrap())
        .filter(|r| r.header.group_id == GROUP && matches!(r.message, Message::Register(_)))
        .collect();
    assert_eq!(regs.len(), 1, "the real session registers");
    assert!(b.events().iter().all(|e| !matches!(
        e,
        Event::Refused {
            reason: AbortReason::TooManySessions,
            ..
        }
    )));
}
