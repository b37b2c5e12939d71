//! How sessions end: DONE, DONE_CONF, timeouts, ABORTs and shutting down.

use super::*;

#[test]
fn done_not_listing_us_and_rescan_from_section_zero() {
    let mut b = Bench::new();
    b.registered();
    let size = 512 * 10;
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"f", size)),
    );
    b.out(ms(10));
    for i in 1..10u16 {
        b.send(
            ms(11),
            Message::FileSeg(FileSegRepr {
                file_id: 1,
                section: 0,
                sec_block: i,
                tfmcc: None,
                data: &[7; 512],
            }),
        );
    }
    // A DONE naming someone else: no timer for us.
    b.send(
        ms(12),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 0,
            client_ids: IdList::Items(&[0x0a00_0009]),
        }),
    );
    b.timeout(ms(100));
    assert!(b.out(ms(100)).is_empty());
    b.send(
        ms(101),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 0,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    b.timeout(ms(120));
    let out = b.out(ms(120));
    assert_eq!(out.len(), 1);
    let Message::Status(s) = parse(&out[0]).message else {
        panic!("expected STATUS")
    };
    assert_eq!(s.naks, [0x01, 0x00]);
}

#[test]
fn silence_times_out_aborts_and_discards() {
    let mut b = Bench::new();
    b.registered();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"part", 5000)),
    );
    b.out(ms(10));
    b.send(
        ms(11),
        Message::FileSeg(FileSegRepr {
            file_id: 1,
            section: 0,
            sec_block: 0,
            tfmcc: None,
            data: &[1; 512],
        }),
    );
    b.events();
    // ROBUST×GRTT is 0.2 s here, so the 1 s floor applies.
    let t = b.rx.poll_timeout().unwrap();
    assert_eq!(t, ms(11) + Duration::from_secs(1));
    b.timeout(ms(500));
    assert_eq!(b.rx.active_sessions(), 1);
    b.timeout(t);
    let out = b.out(t);
    let Message::Abort(a) = parse(&out[0]).message else {
        panic!("expected ABORT")
    };
    assert_eq!(a.reason, b"Transfer timed out");
    assert_eq!(b.mem.discarded, 1);
    assert!(b.mem.done.is_empty());
    let ev = b.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::FileAborted { file_id: 1, .. })));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::SessionEnded {
            result: SessionResult::Aborted(AbortReason::TransferTimedOut),
            ..
        }
    )));
}

#[test]
fn shut_down_aborts_the_session_and_discards_its_file() {
    let mut b = Bench::new();
    b.registered();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"part", 5000)),
    );
    b.out(ms(10));
    b.events();
    assert_eq!(b.rx.shut_down(&mut b.mem), 0);
    let out = b.out(ms(11));
    assert_eq!(out.len(), 1);
    let Message::Abort(a) = parse(&out[0]).message else {
        panic!("expected ABORT")
    };
    assert_eq!(a.reason, b"Client shutting down");
    assert_eq!((b.mem.discarded, b.mem.ended), (1, 1));
    let ev = b.events();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::FileAborted { file_id: 1, .. })));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::SessionEnded {
            result: SessionResult::Aborted(AbortReason::ShuttingDown),
            ..
        }
    )));
    assert_eq!(b.rx.shut_down(&mut b.mem), 0);
    assert!(b.out(ms(12)).is_empty(), "one ABORT per session");
}

#[test]
fn shut_down_reaches_more_sessions_than_the_queue_holds() {
    const N: usize = ONESHOT_QUEUE * 2 + 3;
    let mut rx: Receiver<N> = Receiver::new(Config {
        public_addrs: Bench::new().rx.config.public_addrs.clone(),
        ..Config::new(UID, [7; 32])
    });
    let mut mem = Mem::default();
    let mut buf = [0u8; 9000];
    for g in 0..N as u32 {
        let len = Repr {
            header: HeaderRepr {
                group_id: GROUP + g,
                ..header(0)
            },
            message: Message::Announce(announce(&[])),
        }
        .emit(&mut buf)
        .unwrap();
        rx.handle_datagram(ms(0), server(), &mut buf[..len], &mut mem);
        while rx.poll_transmit(ms(0), &mut buf, &mut mem).is_some() {}
    }
    assert_eq!(rx.active_sessions(), N);
    let mut aborted = std::collections::BTreeSet::new();
    let mut rounds = 0;
    loop {
        let left = rx.shut_down(&mut mem);
        while let Some(t) = rx.poll_transmit(ms(1), &mut buf, &mut mem) {
            let r = Repr::parse(&buf[..t.len]).unwrap();
            assert!(matches!(r.message, Message::Abort(a) if a.reason == b"Client shutting down"));
            assert!(aborted.insert(r.header.group_id), "two ABORTs to one group");
        }
        rounds += 1;
        if left == 0 {
            break;
        }
    }
    assert_eq!(aborted.len(), N);
    assert!(rounds > 1);
}

#[test]
fn server_abort_ends_the_session() {
    let mut b = Bench::new();
    b.registered();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"x", 5000)),
    );
    b.out(ms(10));
    b.send(
        ms(11),
        Message::Abort(AbortRepr {
            flags: 0,
            host: 0x0a00_0009,
            reason: b"not you",
        }),
    );
    assert_eq!(b.rx.active_sessions(), 1);
    b.send(
        ms(12),
        Message::Abort(AbortRepr {
            flags: 0,
            host: UID,
            reason: b"bye",
        }),
    );
    assert_eq!(b.rx.active_sessions(), 0);
    assert_eq!(b.mem.discarded, 1);
    assert!(b.out(ms(12)).is_empty(), "no ABORT back to an ABORT");
    let ev = b.events();
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::SessionEnded { result: SessionResult::AbortedByServer(r), .. } if r == b"bye"
    )));
    const { assert!(ABORT_REASON_LEN > REASON_LEN) };
}
