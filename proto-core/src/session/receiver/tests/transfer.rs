//! Transfer: sections, NAKs, item kinds, names, TFMCC.

use super::*;

#[test]
fn multi_section_file_with_lost_blocks_naks_exactly_them() {
    let mut b = Bench::new();
    b.registered();
    // 8203 blocks of 512 bytes: max section 4096 blocks, so 3 sections (2735, 2734, 2734).
    let size = 512 * 8202 + 100;
    let layout = FileLayout::new(size, BS).unwrap();
    assert_eq!((layout.blocks, layout.sections), (8203, 3));
    let data: StdVec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"dir/big.bin", size)),
    );
    let out = b.out(ms(12));
    let Message::FileInfoAck(ack) = parse(&out[0]).message else {
        panic!("expected FILEINFO_ACK")
    };
    assert_eq!(
        (ack.file_id, ack.timestamp.secs, ack.timestamp.usecs),
        (1, 2000, 2000)
    );
    let lost = [5u32, 2735 + 2734 + 17, 2735 + 2734 + 18];
    let seg = |b: &mut Bench, now, block: u32| {
        let (section, idx) = layout.locate(block).unwrap();
        let o = layout.offset(block) as usize;
        let chunk = &data[o..o + layout.block_len(block)];
        b.send(
            now,
            Message::FileSeg(FileSegRepr {
                file_id: 1,
                section,
                sec_block: idx as u16,
                tfmcc: None,
                data: chunk,
            }),
        );
    };
    for block in 0..layout.blocks {
        if !lost.contains(&block) {
            seg(&mut b, ms(20), block);
        }
    }
    // Entering sections 1 and 2 armed the NAK timer for 1×GRTT; DONE for the last section
    // (listing us) extends it.
    b.send(
        ms(21),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 2,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    assert!(b.out(ms(21)).is_empty(), "nothing before the NAK timer");
    let t = b.rx.poll_timeout().unwrap();
    assert!(t > ms(20) && t <= ms(31), "{t:?}");
    b.timeout(t);
    let out = b.out(t);
    assert_eq!(out.len(), 2, "one STATUS per section with holes");
    let Message::Status(s0) = parse(&out[0]).message else {
        panic!("expected STATUS")
    };
    assert_eq!((s0.file_id, s0.section), (1, 0));
    assert_eq!(s0.naks.len(), 2735 / 8 + 1);
    assert_eq!(s0.naks[0], 0x20, "block 5 is bit 5 of byte 0");
    assert_eq!(s0.nak_indexes().collect::<StdVec<_>>(), [5]);
    let Message::Status(s2) = parse(&out[1]).message else {
        panic!("expected STATUS")
    };
    assert_eq!(s2.section, 2);
    assert_eq!(s2.naks.len(), 2734 / 8 + 1);
    assert_eq!(s2.nak_indexes().collect::<StdVec<_>>(), [17, 18]);
    // The resent blocks and the next DONE complete the file.
    for &block in &lost {
        seg(&mut b, ms(40), block);
    }
    // A duplicate is counted, not written twice.
    seg(&mut b, ms(40), 0);
    assert_eq!(b.rx.stats().duplicate_blocks, 1);
    b.send(
        ms(41),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 2,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    let out = b.out(ms(41));
    let Message::Complete(c) = parse(&out[0]).message else {
        panic!("expected COMPLETE")
    };
    assert_eq!((c.file_id, c.status), (1, CompleteStatus::Normal));
    assert_eq!(b.mem.done.len(), 1);
    assert_eq!(b.mem.done[0].0, b"dir/big.bin");
    assert!(b.mem.done[0].1 == data, "content identical");
    // A repeated DONE (our COMPLETE was lost) gets the COMPLETE again.
    b.send(
        ms(50),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 2,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    assert_eq!(b.out(ms(50)).len(), 1);
    // End of session: DONE(0) → COMPLETE(0) → DONE_CONF.
    b.send(
        ms(60),
        Message::Done(DoneRepr {
            file_id: 0,
            section: 0,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    let out = b.out(ms(60));
    let Message::Complete(c) = parse(&out[0]).message else {
        panic!("expected COMPLETE")
    };
    assert_eq!(c.file_id, 0);
    b.send(
        ms(61),
        Message::DoneConf(DoneConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    assert_eq!(b.rx.active_sessions(), 0);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::SessionEnded {
            result: SessionResult::Completed,
            ..
        }
    )));
    assert_eq!(b.mem.ended, 1);
    assert_eq!(b.rx.poll_timeout(), None);
}

#[test]
fn bad_names_are_rejected_before_storage() {
    let mut b = Bench::new();
    b.registered();
    let bad: [&[u8]; 5] = [b"../etc/passwd", b"a/../../b", b"/..", b"..", b"///"];
    for (i, name) in bad.iter().enumerate() {
        let id = i as u16 + 1;
        b.send(
            ms(10 + i as u64),
            Message::FileInfo(fileinfo(id, FileType::Regular, name, 100)),
        );
        let out = b.out(ms(10 + i as u64));
        let Message::Complete(c) = parse(&out[0]).message else {
            panic!("expected COMPLETE for {name:?}")
        };
        assert_eq!((c.file_id, c.status), (id, CompleteStatus::Rejected));
    }
    assert_eq!(b.mem.opens, 0);
    assert_eq!(
        b.events()
            .iter()
            .filter(|e| matches!(
                e,
                Event::FileRejected {
                    reason: Reject::BadName,
                    ..
                }
            ))
            .count(),
        5
    );
    assert!(!name_is_acceptable(b""));
    assert!(!name_is_acceptable(b"a\0b"));
    assert!(name_is_acceptable(b"a/..b/c.."));
    assert!(name_is_acceptable(b"/abs/name with spaces"));
}

#[test]
fn non_regular_items_and_empty_files_complete_at_once() {
    let mut b = Bench::new();
    b.registered();
    let items: [(FileType, &[u8], u64); 5] = [
        (FileType::Directory, b"empty-dir", 0),
        (FileType::Symlink, b"link", 0),
        (FileType::Regular, b"empty", 0),
        (FileType::Delete, b"old", 0),
        (FileType::FreeSpace, b"@FREESPACE", 0),
    ];
    for (i, (t, name, size)) in items.iter().enumerate() {
        let id = i as u16 + 1;
        b.send(ms(10), Message::FileInfo(fileinfo(id, *t, name, *size)));
        let out = b.out(ms(10));
        assert_eq!(out.len(), 1);
        let Message::Complete(c) = parse(&out[0]).message else {
            panic!("expected COMPLETE for {t:?}")
        };
        assert_eq!((c.file_id, c.status), (id, CompleteStatus::Normal));
        if *t == FileType::FreeSpace {
            assert_eq!(c.freespace.unwrap().freespace, 123_456);
        } else {
            assert!(c.freespace.is_none());
        }
    }
    assert_eq!(b.mem.others.len(), 3);
    assert_eq!(b.mem.done, [(b"empty".to_vec(), StdVec::new())]);
}

#[test]
fn tfmcc_session_answers_cong_ctrl_and_carries_feedback_in_status() {
    use crate::wire::{
        CcItem, CongCtrlRepr, Rate, TfmccDataInfoRepr, CC_FLAG_CLR, CC_FLAG_RTT,
        TFMCC_ACK_FLAG_RTT, TFMCC_ACK_FLAG_START,
    };
    let mut b = Bench::new();
    let mut a = announce(&[]);
    a.cc_type = CcType::Tfmcc;
    b.send(ms(0), Message::Announce(a));
    assert!(matches!(
        parse(&b.out(ms(0))[0]).message,
        Message::Register(_)
    ));
    b.send(
        ms(1),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    b.send(
        ms(2),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"f", 20 * 512)),
    );
    let _ = b.out(ms(2));
    let info = |cc_seq, cc_rate| TfmccDataInfoRepr {
        send_rate: Rate::from_bytes_per_sec(100_000),
        cc_seq,
        cc_rate,
    };
    let seg = |i: u16, t| {
        Message::FileSeg(FileSegRepr {
            file_id: 1,
            section: 0,
            sec_block: i,
            tfmcc: Some(t),
            data: &[0x55; 512],
        })
    };
    // A CONG_CTRL naming another client the CLR gives our RTT and a timestamp to echo.
    let others = [
        CcItem {
            client_id: 99,
            flags: CC_FLAG_CLR | CC_FLAG_RTT,
            rtt: Grtt::from_micros(5_000),
        },
        CcItem {
            client_id: UID,
            flags: CC_FLAG_RTT,
            rtt: Grtt::from_micros(20_000),
        },
    ];
    b.send(
        ms(3),
        Message::CongCtrl(CongCtrlRepr {
            cc_seq: 0,
            cc_rate: Rate::UNLIMITED,
            timestamp: Timestamp { secs: 40, usecs: 0 },
            items: crate::wire::List::Items(&others),
        }),
    );
    assert!(
        b.out(ms(3)).is_empty(),
        "round 0 is not a new round, and we are not the CLR"
    );
    // Round 1, unlimited suppression rate: feedback is scheduled within 6×GRTT.
    for i in 0..10 {
        b.send(ms(3 + u64::from(i)), seg(i, info(1, Rate::UNLIMITED)));
    }
    assert!(b.out(ms(13)).is_empty());
    let due = b.rx.poll_timeout().unwrap();
    let grtt = GRTT.as_micros();
    assert!(
        due <= Instant::from_micros(ms(3).as_micros() + 6 * grtt),
        "{due:?}"
    );
    b.timeout(due);
    let out = b.out(due);
    assert_eq!(out.len(), 1);
    let Message::CcAck(ack) = parse(&out[0]).message else {
        panic!("expected CC_ACK")
    };
    assert_eq!(ack.tfmcc.client_id, UID);
    assert_eq!(ack.tfmcc.cc_seq, 1);
    // Slow start, with the RTT from the server.
    assert_eq!(ack.tfmcc.flags, TFMCC_ACK_FLAG_START | TFMCC_ACK_FLAG_RTT);
    let held = due.as_micros() - ms(3).as_micros();
    assert_eq!(
        ack.tfmcc.timestamp,
        Timestamp::from_micros(40_000_000 + held)
    );
    // Round 2, whose suppression rate is already below ours: no feedback.
    b.send(ms(20), seg(10, info(2, Rate::from_bytes_per_sec(10))));
    b.timeout(ms(200));
    assert!(b.out(ms(200)).is_empty());
    // Three datagrams lost (seq skipped), then enough to pass the reorder allowance.
    b.seq += 3;
    for i in 11..18 {
        b.send(ms(201), seg(i, info(2, Rate::from_bytes_per_sec(10))));
    }
    // Named the CLR: CC_ACK at once, echoing the timestamp plus the time held.
    let items = [
        CcItem {
            client_id: UID,
            flags: CC_FLAG_CLR | CC_FLAG_RTT,
            rtt: Grtt::from_micros(20_000),
        },
        CcItem {
            client_id: 99,
            flags: CC_FLAG_RTT,
            rtt: Grtt::from_micros(5_000),
        },
    ];
    b.send(
        ms(210),
        Message::CongCtrl(CongCtrlRepr {
            cc_seq: 2,
            cc_rate: Rate::UNLIMITED,
            timestamp: Timestamp { secs: 50, usecs: 0 },
            items: crate::wire::List::Items(&items),
        }),
    );
    let out = b.out(ms(215));
    let Message::CcAck(ack) = parse(&out[0]).message else {
        panic!("expected CC_ACK")
    };
    assert_eq!(
        ack.tfmcc.flags, TFMCC_ACK_FLAG_RTT,
        "out of slow start, RTT known"
    );
    assert_eq!(
        ack.tfmcc.timestamp,
        Timestamp {
            secs: 50,
            usecs: 5_000
        }
    );
    // p from one loss event; the rate the equation gives for it with our RTT.
    let r = ack.tfmcc.cc_rate.bytes_per_sec();
    assert!(r > 1000 && r < 100_000_000, "{r}");
    // DONE: STATUS for blocks 18 and 19 carries the feedback extension too.
    b.send(ms(220), done(0));
    b.timeout(ms(300));
    let out = b.out(ms(300));
    let Message::Status(st) = parse(&out[0]).message else {
        panic!("expected STATUS")
    };
    let ext = st.tfmcc.expect("EXT_TFMCC_ACK_INFO in STATUS");
    assert_eq!((ext.client_id, ext.cc_seq), (UID, 2));
}
