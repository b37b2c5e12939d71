//! Restarted sessions: kept files resumed or completed at once.

use super::*;

#[test]
fn a_restarted_session_resumes_a_kept_file_and_naks_only_what_is_missing() {
    let mut b = Bench::new();
    b.mem.keep = true;
    b.registered();
    // 3 sections of 2735, 2734, 2734 blocks; the first 4000 blocks arrive, then the server
    // goes silent (killed).
    let size = 512 * 8202 + 100;
    let layout = FileLayout::new(size, BS).unwrap();
    let data: StdVec<u8> = (0..size).map(|i| (i * 13 % 251) as u8).collect();
    let info = fileinfo(1, FileType::Regular, b"big.bin", size);
    b.send(ms(10), Message::FileInfo(info));
    b.out(ms(10));
    send_blocks(&mut b, ms(20), &layout, &data, |k| k < 4000);
    b.timeout(ms(2000));
    assert_eq!(b.rx.active_sessions(), 0, "timed out");
    assert_eq!((b.mem.failed, b.mem.ended, b.mem.discarded), (1, 1, 1));
    assert_eq!(b.mem.resume_asks, 0, "a first instance never resumes");
    b.out(ms(2000));
    b.events();

    // The restart: same group, instance 1, a closed group naming us.
    b.inst = 1;
    b.seq = 0;
    b.send(ms(3000), Message::Announce(announce(&[UID])));
    assert_eq!(b.out(ms(3000)).len(), 1, "REGISTER");
    b.send(
        ms(3001),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    b.send(ms(3002), Message::FileInfo(info));
    let out = b.out(ms(3002));
    assert_eq!(out.len(), 1);
    let r = parse(&out[0]);
    assert_eq!(r.header.group_inst, 1);
    let Message::FileInfoAck(ack) = r.message else {
        panic!("expected FILEINFO_ACK")
    };
    assert_eq!(ack.flags, FILEINFO_ACK_FLAG_PARTIAL);
    assert_eq!(b.mem.resume_asks, 1);
    // Every client said PARTIAL: the server's first DONE comes before any data, and is
    // answered at once with the holes only.
    b.send(ms(3005), done(2));
    assert_eq!(b.rx.poll_timeout(), Some(ms(3005)), "no 1×GRTT delay");
    b.timeout(ms(3005));
    let out = b.out(ms(3005));
    assert_eq!(out.len(), 2, "section 0 is whole: no STATUS for it");
    let Message::Status(s1) = parse(&out[0]).message else {
        panic!("expected STATUS")
    };
    assert_eq!(s1.section, 1);
    let want: StdVec<usize> = (4000 - 2735..2734).collect();
    assert_eq!(s1.nak_indexes().collect::<StdVec<_>>(), want);
    let Message::Status(s2) = parse(&out[1]).message else {
        panic!("expected STATUS")
    };
    assert_eq!(s2.section, 2);
    assert_eq!(s2.nak_indexes().count(), 2734);
    // The missing blocks complete the file, identical to the original.
    send_blocks(&mut b, ms(3100), &layout, &data, |k| k >= 4000);
    b.send(ms(3101), done(2));
    let out = b.out(ms(3101));
    let Message::Complete(c) = parse(&out[0]).message else {
        panic!("expected COMPLETE")
    };
    assert_eq!((c.file_id, c.status), (1, CompleteStatus::Normal));
    assert_eq!(b.mem.done.len(), 1);
    assert!(b.mem.done[0].1 == data, "content identical");
    assert_eq!(b.rx.stats().blocks, u64::from(layout.blocks));
}

#[test]
fn a_restart_completes_at_once_a_file_finished_before_and_ignores_other_state() {
    let mut b = Bench::new();
    b.mem.keep = true;
    let size = 512 * 3;
    let data = [9u8; 512 * 3];
    let layout = FileLayout::new(size, BS).unwrap();
    // A file finished in instance 0 (in a session that then failed).
    b.registered();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"a", size)),
    );
    b.out(ms(10));
    send_blocks(&mut b, ms(11), &layout, &data, |_| true);
    b.send(ms(12), done(0));
    b.out(ms(12));
    assert_eq!(b.mem.done.len(), 1);
    b.timeout(ms(5000));
    assert_eq!(b.mem.failed, 1);
    b.out(ms(5000));
    // Instance 1: COMPLETE straight away, no FILEINFO_ACK, no data wanted.
    b.inst = 1;
    b.seq = 0;
    b.registered();
    b.send(
        ms(6000),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"a", size)),
    );
    let out = b.out(ms(6000));
    assert_eq!(out.len(), 1);
    let Message::Complete(c) = parse(&out[0]).message else {
        panic!("expected COMPLETE")
    };
    assert_eq!((c.file_id, c.status), (1, CompleteStatus::Normal));
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::FileFinished { file_id: 1, .. })));
    // A file the storage kept nothing of is received afresh (ACK without PARTIAL).
    b.send(
        ms(6010),
        Message::FileInfo(fileinfo(2, FileType::Regular, b"b", size)),
    );
    let out = b.out(ms(6010));
    let Message::FileInfoAck(ack) = parse(&out[0]).message else {
        panic!("expected FILEINFO_ACK")
    };
    assert_eq!(ack.flags, 0);
}
