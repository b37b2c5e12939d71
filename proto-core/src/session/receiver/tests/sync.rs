//! Sync mode and sync preview.

use super::*;

/// Registers with an ANNOUNCE carrying `flags`, then sends each FILEINFO and returns
/// the status of the COMPLETE that answers it at once (`None`: a FILEINFO_ACK).
fn sync_answers(
    b: &mut Bench,
    flags: u8,
    items: &[(FileType, &[u8], u64)],
) -> StdVec<Option<CompleteStatus>> {
    b.send(
        ms(0),
        Message::Announce(AnnounceRepr {
            flags,
            ..announce(&[])
        }),
    );
    assert_eq!(b.out(ms(0)).len(), 1, "REGISTER");
    b.send(
        ms(1),
        Message::RegConf(RegConfRepr {
            client_ids: IdList::Items(&[UID]),
        }),
    );
    let mut answers = StdVec::new();
    for (i, &(ftype, name, size)) in items.iter().enumerate() {
        let t = ms(10 + i as u64);
        b.send(
            t,
            Message::FileInfo(fileinfo(i as u16 + 1, ftype, name, size)),
        );
        let out = b.out(t);
        answers.push(match parse(&out[0]).message {
            Message::Complete(c) => {
                assert_eq!(c.file_id, i as u16 + 1);
                Some(c.status)
            }
            Message::FileInfoAck(_) => None,
            m => panic!("unexpected answer {m:?}"),
        });
    }
    answers
}

#[test]
fn sync_mode_keeps_copies_as_new_and_overwrites_older_ones() {
    use CompleteStatus::{Normal, Overwrite, Skipped};
    const MTIME: i64 = 1_700_000_000;
    let mut b = Bench::new();
    b.mem.existing.insert(b"same".to_vec(), (0, MTIME));
    b.mem.existing.insert(b"newer".to_vec(), (5, MTIME + 1));
    b.mem.existing.insert(b"older".to_vec(), (0, MTIME - 1));
    b.mem.existing.insert(b"resized".to_vec(), (9, MTIME));
    b.mem.existing.insert(b"big".to_vec(), (10, MTIME - 60));
    let answers = sync_answers(
        &mut b,
        ANNOUNCE_FLAG_SYNC_MODE,
        &[
            (FileType::Regular, b"same", 0),
            (FileType::Regular, b"newer", 0),
            (FileType::Regular, b"older", 0),
            (FileType::Regular, b"resized", 0),
            (FileType::Regular, b"new", 0),
            (FileType::Regular, b"big", 100),
        ],
    );
    assert_eq!(
        answers,
        [
            Some(Skipped),
            Some(Skipped),
            Some(Overwrite),
            Some(Overwrite),
            Some(Normal),
            None
        ]
    );
    assert_eq!(b.mem.existing_asks, 6);
    let stored: StdVec<&[u8]> = b.mem.done.iter().map(|(n, _)| n.as_slice()).collect();
    assert_eq!(
        stored,
        [b"older" as &[u8], b"resized", b"new"],
        "a skipped file was opened"
    );
    // The older "big" is received as usual and answered OVERWRITE once stored.
    b.send(
        ms(20),
        Message::FileSeg(FileSegRepr {
            file_id: 6,
            section: 0,
            sec_block: 0,
            tfmcc: None,
            data: &[7; 100],
        }),
    );
    b.send(
        ms(21),
        Message::Done(DoneRepr {
            file_id: 6,
            section: 0,
            client_ids: IdList::Items(&[UID]),
        }),
    );
    let out = b.out(ms(21));
    let Message::Complete(c) = parse(&out[0]).message else {
        panic!("expected COMPLETE")
    };
    assert_eq!((c.file_id, c.status), (6, Overwrite));
    assert_eq!(
        b.mem.done.last().unwrap(),
        &(b"big".to_vec(), std::vec![7; 100])
    );
    let ev = b.events();
    let skipped = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::FileSkipped {
                    status: Skipped,
                    preview: false,
                    ..
                }
            )
        })
        .count();
    let overwritten = ev
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::FileFinished {
                    overwrite: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!((skipped, overwritten), (2, 3));
}

#[test]
fn sync_preview_answers_everything_at_once_and_stores_nothing() {
    use CompleteStatus::{Normal, Overwrite, Skipped};
    let mut b = Bench::new();
    b.mem
        .existing
        .insert(b"same".to_vec(), (100, 1_700_000_000));
    b.mem.existing.insert(b"old".to_vec(), (100, 1_600_000_000));
    b.mem.existing.insert(b"gone".to_vec(), (1, 1_600_000_000));
    let answers = sync_answers(
        &mut b,
        ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW,
        &[
            (FileType::Regular, b"same", 100),
            (FileType::Regular, b"old", 100),
            (FileType::Regular, b"new", 5000),
            (FileType::Directory, b"dir", 0),
            (FileType::Delete, b"gone", 0),
        ],
    );
    assert_eq!(
        answers,
        [
            Some(Skipped),
            Some(Overwrite),
            Some(Normal),
            Some(Normal),
            Some(Normal)
        ]
    );
    assert_eq!(b.mem.opens, 0, "preview stored something");
    let previewed = b
        .events()
        .iter()
        .filter(|e| matches!(e, Event::FileSkipped { preview: true, .. }))
        .count();
    assert_eq!(previewed, 5);
}

#[test]
fn without_sync_mode_existing_copies_are_not_asked_about() {
    let mut b = Bench::new();
    b.mem.existing.insert(b"same".to_vec(), (0, 1_700_000_000));
    let answers = sync_answers(&mut b, 0, &[(FileType::Regular, b"same", 0)]);
    assert_eq!(answers, [Some(CompleteStatus::Normal)]);
    assert_eq!(b.mem.existing_asks, 0);
}

#[test]
fn sync_mode_in_a_restarted_session_is_refused() {
    let mut b = Bench::new();
    b.inst = 1;
    b.send(
        ms(0),
        Message::Announce(AnnounceRepr {
            flags: ANNOUNCE_FLAG_SYNC_MODE,
            ..announce(&[])
        }),
    );
    let out = b.out(ms(0));
    let Message::Abort(a) = parse(&out[0]).message else {
        panic!("expected ABORT")
    };
    assert_eq!(a.reason, b"Sync mode and restart mode incompatible");
}
