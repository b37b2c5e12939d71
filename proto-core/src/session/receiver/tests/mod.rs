//! The receiver's unit tests: a `Bench` drives one [`Receiver`] against an in-memory
//! `Mem` storage on virtual time, as the server would.

use super::*;
use crate::wire::{AnnounceRepr, DoneConfRepr, FileInfoRepr, RegConfRepr, ABORT_REASON_LEN};
use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;
use std::vec::Vec as StdVec;

mod completion;
mod heartbeat;
mod registration;
mod restart;
mod robustness;
mod sync;
mod transfer;

const UID: u32 = 0x0a00_0002;
const SERVER_ID: u32 = 0x0a00_0001;
const GROUP: u32 = 0x1234_5678;
const BS: u16 = 512;
const PUB: Ipv4Addr = Ipv4Addr::new(230, 4, 4, 1);
const PRIV: Ipv4Addr = Ipv4Addr::new(230, 5, 5, 9);
// GRTT byte 0x6A: about 10 ms.
const GRTT: Grtt = Grtt(0x6A);

fn server() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000))
}

fn ms(n: u64) -> Instant {
    Instant::from_micros(1_000_000 + n * 1000)
}

#[derive(Default)]
struct MemFile {
    name: StdVec<u8>,
    data: StdVec<u8>,
    finished: bool,
}

#[derive(Default)]
struct Mem {
    open: HashMap<(SessionId, u16), MemFile>,
    done: StdVec<(StdVec<u8>, StdVec<u8>)>,
    others: StdVec<(StdVec<u8>, &'static str)>,
    maps: HashMap<SessionId, StdVec<u8>>,
    opens: usize,
    discarded: usize,
    ended: usize,
    /// Keep discarded files for a restart (uftpd's `-T`), by name: (data, block map).
    keep: bool,
    kept: HashMap<StdVec<u8>, (StdVec<u8>, StdVec<u8>)>,
    resume_asks: usize,
    failed: usize,
    /// Regular files already in place, for sync mode: name → (size, mtime).
    existing: HashMap<StdVec<u8>, (u64, i64)>,
    existing_asks: usize,
}

impl Storage for Mem {
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
        self.opens += 1;
        match item.kind {
            ItemKind::Regular => {
                self.maps
                    .insert(item.session, std::vec![0xff; item.layout.bitmap_len()]);
                self.open.insert(
                    (item.session, item.file_id),
                    MemFile {
                        name: item.name.to_vec(),
                        data: std::vec![0; item.size as usize],
                        finished: false,
                    },
                );
            }
            ItemKind::Directory => self.others.push((item.name.to_vec(), "dir")),
            ItemKind::Symlink { .. } => self.others.push((item.name.to_vec(), "link")),
            ItemKind::Delete => self.others.push((item.name.to_vec(), "delete")),
        }
        Ok(())
    }
    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        self.maps.get_mut(&session).map(|v| v.as_mut_slice())
    }
    fn write(&mut self, s: SessionId, f: u16, offset: u64, data: &[u8]) -> Result<(), Reject> {
        let file = self.open.get_mut(&(s, f)).ok_or(Reject::Io)?;
        let o = offset as usize;
        file.data[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn finish(&mut self, s: SessionId, f: u16) -> Result<(), Reject> {
        let mut file = self.open.remove(&(s, f)).ok_or(Reject::Io)?;
        file.finished = true;
        self.done.push((file.name, file.data));
        Ok(())
    }
    fn discard(&mut self, s: SessionId, f: u16) {
        if let Some(file) = self.open.remove(&(s, f)) {
            self.discarded += 1;
            if self.keep {
                let map = self.maps.get(&s).cloned().unwrap_or_default();
                self.kept.insert(file.name, (file.data, map));
            }
        }
    }
    fn resumed(&mut self, item: &Item<'_>) -> bool {
        self.resume_asks += 1;
        if let Some((data, map)) = self.kept.remove(item.name) {
            if data.len() as u64 == item.size {
                self.maps.insert(item.session, map);
                self.open
                    .get_mut(&(item.session, item.file_id))
                    .unwrap()
                    .data = data;
                return true;
            }
        }
        // Finished in an earlier instance: every block is here.
        if let Some(i) = self
            .done
            .iter()
            .position(|(n, d)| n.as_slice() == item.name && d.len() as u64 == item.size)
        {
            let (_, data) = self.done.remove(i);
            self.maps
                .insert(item.session, std::vec![0xff; item.layout.bitmap_len()]);
            self.open
                .get_mut(&(item.session, item.file_id))
                .unwrap()
                .data = data;
            return true;
        }
        false
    }
    fn session_failed(&mut self, _: SessionId) {
        self.failed += 1;
    }
    fn existing(&mut self, item: &Item<'_>) -> Option<Existing> {
        self.existing_asks += 1;
        let &(size, mtime) = self.existing.get(item.name)?;
        Some(Existing { size, mtime })
    }
    fn free_space(&mut self, _: SessionId) -> Option<u64> {
        Some(123_456)
    }
    fn session_ended(&mut self, s: SessionId) {
        self.maps.remove(&s);
        self.ended += 1;
    }
}

struct Bench {
    rx: Receiver<4>,
    mem: Mem,
    seq: u16,
    /// Group instance of what the server sends (0, or a restart's).
    inst: u8,
}

fn header(seq: u16) -> HeaderRepr {
    HeaderRepr {
        seq,
        src_id: SERVER_ID,
        group_id: GROUP,
        group_inst: 0,
        grtt: GRTT,
        gsize: GroupSize(0x18),
    }
}

fn announce(ids: &[u32]) -> AnnounceRepr<'_> {
    AnnounceRepr {
        flags: 0,
        robust: 20,
        cc_type: CcType::None,
        blocksize: BS,
        timestamp: Timestamp {
            secs: 1000,
            usecs: 500,
        },
        public_addr: IpAddr::V4(PUB),
        private_addr: IpAddr::V4(PRIV),
        enc_info: None,
        client_ids: IdList::Items(ids),
    }
}

fn fileinfo<'a>(id: u16, ftype: FileType, name: &'a [u8], size: u64) -> FileInfoRepr<'a> {
    FileInfoRepr {
        file_id: id,
        ftype,
        name,
        link: if ftype == FileType::Symlink {
            b"target"
        } else {
            b""
        },
        size,
        mtime: 1_700_000_000,
        timestamp: Timestamp {
            secs: 2000,
            usecs: 0,
        },
        client_ids: IdList::Items(&[UID]),
    }
}

impl Bench {
    fn new() -> Self {
        let mut public_addrs = Vec::new();
        public_addrs.push(IpAddr::V4(PUB)).unwrap();
        Bench {
            rx: Receiver::new(Config {
                public_addrs,
                ..Config::new(UID, [7; 32])
            }),
            mem: Mem::default(),
            seq: 0,
            inst: 0,
        }
    }

    fn send(&mut self, now: Instant, message: Message<'_>) {
        let mut buf = [0u8; 9000];
        let len = Repr {
            header: HeaderRepr {
                group_inst: self.inst,
                ..header(self.seq)
            },
            message,
        }
        .emit(&mut buf)
        .unwrap();
        self.seq = self.seq.wrapping_add(1);
        self.rx
            .handle_datagram(now, server(), &mut buf[..len], &mut self.mem);
    }

    /// Everything the receiver sends now, as raw datagrams.
    fn out(&mut self, now: Instant) -> StdVec<StdVec<u8>> {
        let mut v = StdVec::new();
        let mut buf = [0u8; 9000];
        while let Some(t) = self.rx.poll_transmit(now, &mut buf, &mut self.mem) {
            assert_eq!(t.dest, server());
            v.push(buf[..t.len].to_vec());
        }
        v
    }

    fn events(&mut self) -> StdVec<Event> {
        core::iter::from_fn(|| self.rx.poll_event()).collect()
    }

    fn timeout(&mut self, now: Instant) {
        self.rx.handle_timeout(now, &mut self.mem);
    }

    /// ANNOUNCE, REGISTER, REG_CONF: a registered session.
    fn registered(&mut self) {
        self.send(ms(0), Message::Announce(announce(&[])));
        assert_eq!(self.out(ms(0)).len(), 1);
        self.send(
            ms(1),
            Message::RegConf(RegConfRepr {
                client_ids: IdList::Items(&[UID]),
            }),
        );
        assert!(self.out(ms(1)).is_empty());
        self.events();
    }
}

fn parse(d: &[u8]) -> Repr<'_> {
    let r = Repr::parse(d).unwrap();
    assert_eq!(r.header.src_id, UID);
    assert_eq!(r.header.group_id, GROUP);
    r
}

/// Sends the blocks of `data` (laid out as `layout`, file 1) that `which` picks.
fn send_blocks(
    b: &mut Bench,
    now: Instant,
    layout: &FileLayout,
    data: &[u8],
    which: impl Fn(u32) -> bool,
) {
    for block in (0..layout.blocks).filter(|&k| which(k)) {
        let (section, idx) = layout.locate(block).unwrap();
        let o = layout.offset(block) as usize;
        b.send(
            now,
            Message::FileSeg(FileSegRepr {
                file_id: 1,
                section,
                sec_block: idx as u16,
                tfmcc: None,
                data: &data[o..o + layout.block_len(block)],
            }),
        );
    }
}

fn done(section: u16) -> Message<'static> {
    Message::Done(DoneRepr {
        file_id: 1,
        section,
        client_ids: IdList::Items(&[UID]),
    })
}
