//! Input the receiver must survive: stale sequence numbers, garbage, odd ID lists.

use super::*;

#[test]
fn stale_sequence_numbers_are_dropped() {
    let mut b = Bench::new();
    b.registered();
    b.seq = 100;
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"f", 1024)),
    );
    b.out(ms(10));
    b.seq = 94; // 6 behind 100
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
    assert_eq!(b.rx.stats().dropped[DropReason::Misordered.index()], 1);
    b.seq = 95; // 5 behind: accepted
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
    assert_eq!(b.rx.stats().blocks, 1);
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn garbage_and_mutated_datagrams_never_panic() {
    let mut b = Bench::new();
    b.registered();
    b.send(
        ms(10),
        Message::FileInfo(fileinfo(1, FileType::Regular, b"f", 100_000)),
    );
    // Valid datagrams of this session to mutate, plus real ones from uftp 4.10.2.
    let mut seeds: StdVec<StdVec<u8>> = StdVec::new();
    let mut buf = [0u8; 2048];
    for m in [
        Message::Announce(announce(&[UID])),
        Message::FileInfo(fileinfo(2, FileType::Regular, b"g", 70_000)),
        Message::FileSeg(FileSegRepr {
            file_id: 1,
            section: 0,
            sec_block: 3,
            tfmcc: None,
            data: &[9; 512],
        }),
        Message::Done(DoneRepr {
            file_id: 1,
            section: 0,
            client_ids: IdList::Items(&[UID]),
        }),
        Message::Done(DoneRepr {
            file_id: 0,
            section: 0,
            client_ids: IdList::Items(&[UID]),
        }),
    ] {
        let len = Repr {
            header: header(3),
            message: m,
        }
        .emit(&mut buf)
        .unwrap();
        seeds.push(buf[..len].to_vec());
    }
    seeds.push(include_bytes!("../../../../../tests/vectors/messages/fileinfo-link.bin").to_vec());
    seeds.push(include_bytes!("../../../../../tests/vectors/messages/abort.bin").to_vec());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut now = ms(20);
    for i in 0..200_000u64 {
        let mut d = if i.is_multiple_of(4) {
            let n = (rng.next() % 1500) as usize;
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            let mut d = seeds[(rng.next() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() as usize) % d.len();
                d[at] = rng.next() as u8;
            }
            if rng.next().is_multiple_of(8) {
                d.truncate((rng.next() as usize) % (d.len() + 1));
            }
            d
        };
        b.rx.handle_datagram(now, server(), &mut d, &mut b.mem);
        if i.is_multiple_of(64) {
            now = now + Duration::from_millis(1);
            b.timeout(now);
        }
        while b.rx.poll_transmit(now, &mut buf, &mut b.mem).is_some() {}
        while b.rx.poll_event().is_some() {}
    }
    assert!(b.rx.stats().dropped.iter().sum::<u64>() > 50_000);
}

#[test]
fn lists_reads_ids_up_to_the_first_zero() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut bytes = [0u8; 4 * 70];
    for _ in 0..20_000 {
        let n = (next() % 70) as usize;
        let ids: heapless::Vec<u32, 70> = (0..n)
            .map(|_| match next() % 8 {
                0 => 0,
                1 | 2 => 7,
                _ => (next() % 16) as u32,
            })
            .collect();
        for (b, id) in bytes.chunks_exact_mut(4).zip(&ids) {
            b.copy_from_slice(&id.to_be_bytes());
        }
        let list = IdList::from_wire(&bytes[..4 * n]).unwrap();
        for uid in [0, 7, 3, 0x0700_0000] {
            let simple = ids.iter().take_while(|&&id| id != 0).any(|&id| id == uid);
            assert_eq!(lists(&list, uid), simple, "{ids:?} {uid}");
            assert_eq!(lists(&IdList::Items(&ids), uid), simple);
        }
    }
}
