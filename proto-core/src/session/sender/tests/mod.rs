//! The sender's unit tests: a block source in memory, scripted clients, and the loop that runs
//! a session between them on virtual time.

use super::*;
use crate::wire::{RegisterRepr, StatusRepr};
use std::vec;
use std::vec::Vec as StdVec;

mod encrypted;
mod plain;

const SRV: u32 = 0x0a00_0001;
const GROUP: u32 = 0x1234_5678;

struct Mem {
    data: StdVec<u8>,
    map: StdVec<u8>,
}

impl Mem {
    fn new(size: usize, blocksize: u16) -> Self {
        let data = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
        let l = FileLayout::new(size as u64, blocksize).unwrap();
        Mem {
            data,
            map: vec![0; l.bitmap_len()],
        }
    }
}

impl BlockSource for Mem {
    fn read_block(&mut self, _: u16, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let at = offset as usize;
        buf.copy_from_slice(self.data.get(at..at + buf.len()).ok_or(ReadError)?);
        Ok(())
    }
    fn resend_map(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn config() -> SenderConfig {
    let mut c = SenderConfig::new(SRV, GROUP, addr("230.4.4.1:1044"), addr("230.5.5.9:1044"));
    c.blocksize = 1000;
    c.rate = None;
    c
}

fn from_client(id: u32, message: Message<'_>) -> StdVec<u8> {
    let header = HeaderRepr {
        src_id: id,
        group_id: GROUP,
        ..HeaderRepr::default()
    };
    let repr = Repr { header, message };
    let mut buf = vec![0; repr.buffer_len()];
    repr.emit(&mut buf).unwrap();
    buf
}

/// A scripted receiver: answers like uftpd, can lose chosen blocks the first time they
/// are sent, or go silent after a point.
struct Model {
    id: u32,
    drop_once: StdVec<u32>,
    seen: StdVec<bool>,
    have: StdVec<bool>,
    layout: Option<FileLayout>,
    file_id: u16,
    data_ok: bool,
    mute_after_ack: bool,
    muted: bool,
    registered: bool,
    session_done: bool,
    /// Blocks kept from an earlier instance of a restarted session: it answers FILEINFO
    /// with the PARTIAL flag when there are any.
    kept: StdVec<u32>,
}

impl Model {
    fn new(id: u32) -> Self {
        Model {
            id,
            drop_once: StdVec::new(),
            seen: StdVec::new(),
            have: StdVec::new(),
            layout: None,
            file_id: 0,
            data_ok: true,
            mute_after_ack: false,
            muted: false,
            registered: false,
            session_done: false,
            kept: StdVec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(self.id)), 1044)
    }

    fn on_packet(&mut self, bytes: &[u8], data: &[u8]) -> StdVec<StdVec<u8>> {
        let repr = Repr::parse(bytes).unwrap();
        assert_eq!(repr.header.src_id, SRV);
        assert_eq!(repr.header.group_id, GROUP);
        if self.muted {
            return StdVec::new();
        }
        let id = self.id;
        let listed = |l: IdList<'_>| l.is_empty() || l.contains(id);
        let mut out = StdVec::new();
        match repr.message {
            Message::Announce(a) if listed(a.client_ids) && !self.registered => {
                self.registered = true;
                out.push(from_client(
                    id,
                    Message::Register(RegisterRepr {
                        timestamp: a.timestamp,
                        rand2: [0; 32],
                        keyinfo: &[],
                        client_ids: IdList::EMPTY,
                    }),
                ));
            }
            Message::FileInfo(f) if f.client_ids.contains(id) => {
                if f.size == 0 {
                    out.push(complete(id, f.file_id));
                } else {
                    let l = FileLayout::new(f.size, 1000).unwrap();
                    if self.file_id != f.file_id {
                        self.seen = vec![false; l.blocks as usize];
                        self.have = vec![false; l.blocks as usize];
                    }
                    self.layout = Some(l);
                    self.file_id = f.file_id;
                    for &k in &self.kept {
                        self.have[k as usize] = true;
                    }
                    out.push(from_client(
                        id,
                        Message::FileInfoAck(FileInfoAckRepr {
                            file_id: f.file_id,
                            flags: if self.kept.is_empty() {
                                0
                            } else {
                                FILEINFO_ACK_FLAG_PARTIAL
                            },
                            timestamp: f.timestamp,
                            client_ids: IdList::EMPTY,
                        }),
                    ));
                    self.muted = self.mute_after_ack;
                }
            }
            Message::FileSeg(s) if s.file_id == self.file_id => {
                let l = self.layout.unwrap();
                let b = l.block_of(s.section, u32::from(s.sec_block)).unwrap();
                let first = !self.seen[b as usize];
                self.seen[b as usize] = true;
                if first && self.drop_once.contains(&b) {
                    return out;
                }
                let off = l.offset(b) as usize;
                self.data_ok &= s.data == &data[off..off + l.block_len(b)];
                self.have[b as usize] = true;
            }
            Message::Done(d) if d.file_id == 0 && listed(d.client_ids) => {
                out.push(complete(id, 0));
            }
            Message::Done(d) if d.file_id == self.file_id && listed(d.client_ids) => {
                let l = self.layout.unwrap();
                if self.have.iter().all(|&h| h) {
                    out.push(complete(id, d.file_id));
                } else {
                    for sec in 0..l.sections {
                        let mut bits = vec![0u8; l.nak_bitmap_len(sec)];
                        let start = l.section_start(sec).unwrap();
                        for i in 0..l.section_blocks(sec) {
                            if !self.have[(start + i) as usize] {
                                nak::set(&mut bits, i as usize);
                            }
                        }
                        if bits.iter().any(|&b| b != 0) {
                            out.push(from_client(
                                id,
                                Message::Status(StatusRepr {
                                    file_id: d.file_id,
                                    section: sec,
                                    tfmcc: None,
                                    naks: &bits,
                                }),
                            ));
                        }
                    }
                }
            }
            Message::DoneConf(c) if c.client_ids.contains(id) => self.session_done = true,
            _ => {}
        }
        out
    }
}

/// A client as `run` drives it: where it answers from, and its answers to one datagram.
trait Peer {
    fn addr(&self) -> SocketAddr;
    fn respond(&mut self, bytes: &[u8], data: &[u8]) -> StdVec<StdVec<u8>>;
    /// What it sends on its own timers by `now`.
    fn tick(&mut self, _now: Instant) -> StdVec<StdVec<u8>> {
        StdVec::new()
    }
}

impl Peer for Model {
    fn addr(&self) -> SocketAddr {
        Model::addr(self)
    }
    fn respond(&mut self, bytes: &[u8], data: &[u8]) -> StdVec<StdVec<u8>> {
        self.on_packet(bytes, data)
    }
}

fn complete(id: u32, file_id: u16) -> StdVec<u8> {
    from_client(
        id,
        Message::Complete(CompleteRepr {
            file_id,
            status: CompleteStatus::Normal,
            freespace: None,
            client_ids: IdList::EMPTY,
        }),
    )
}

/// Fires timers one by one until the sender wants a file.
fn until_wants_file<R: RsaKeys>(s: &mut Sender<8, R>, src: &mut Mem, buf: &mut [u8]) -> Instant {
    let mut now = Instant::ZERO;
    while !s.wants_file() {
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        while s.poll_transmit(now, buf, src).is_some() {}
    }
    now
}

struct Run {
    events: StdVec<Event>,
    sent: StdVec<(SocketAddr, StdVec<u8>)>,
    /// When each of `sent` went out.
    sent_at: StdVec<Instant>,
    now: Instant,
}

/// Drives a sender and its models on virtual time (responses take 2 ms) until the session
/// ends, starting each of `files` (sizes) when the sender asks.
fn run<R: RsaKeys, P: Peer>(
    s: &mut Sender<8, R>,
    models: &mut [P],
    files: &[usize],
) -> (Run, StdVec<Mem>) {
    run_with(s, models, files, Duration::ZERO)
}

/// [`run`], with virtual time moving on by `per_datagram` for each datagram sent.
fn run_with<R: RsaKeys, P: Peer>(
    s: &mut Sender<8, R>,
    models: &mut [P],
    files: &[usize],
    per_datagram: Duration,
) -> (Run, StdVec<Mem>) {
    let mut mems: StdVec<Mem> = files.iter().map(|&n| Mem::new(n, 1000)).collect();
    let mut next_file: usize = 0;
    let mut r = Run {
        events: StdVec::new(),
        sent: StdVec::new(),
        sent_at: StdVec::new(),
        now: Instant::ZERO,
    };
    let mut buf = vec![0u8; s.max_datagram_len()];
    let mut inflight: StdVec<(Instant, SocketAddr, StdVec<u8>)> = StdVec::new();
    let mut spare = Mem::new(0, 1000);
    for _ in 0..1_000_000 {
        let cur = next_file.saturating_sub(1);
        let src = mems.get_mut(cur).unwrap_or(&mut spare);
        inflight.sort_by_key(|x| x.0);
        while inflight.first().is_some_and(|x| x.0 <= r.now) {
            let (_, from, mut bytes) = inflight.remove(0);
            s.handle_datagram(r.now, from, &mut bytes, src);
        }
        for m in models.iter_mut() {
            for out in m.tick(r.now) {
                inflight.push((r.now + Duration::from_millis(2), m.addr(), out));
            }
        }
        s.handle_timeout(r.now);
        while let Some(t) = s.poll_transmit(r.now, &mut buf, src) {
            let bytes = buf[..t.len].to_vec();
            for m in models.iter_mut() {
                for reply in m.respond(&bytes, &src.data) {
                    inflight.push((r.now + Duration::from_millis(2), m.addr(), reply));
                }
            }
            r.sent.push((t.dest, bytes));
            r.sent_at.push(r.now);
            r.now = r.now + per_datagram;
        }
        while let Some(e) = s.poll_event() {
            r.events.push(e);
        }
        if s.is_finished() {
            return (r, mems);
        }
        if s.wants_file() {
            if let Some(&size) = files.get(next_file) {
                let name = std::format!("file{next_file}");
                let item = FileItem {
                    name: name.as_bytes(),
                    ftype: FileType::Regular,
                    size: size as u64,
                    mtime: 0,
                    link: &[],
                };
                next_file += 1;
                s.start_file(r.now, item).unwrap();
            } else {
                s.finish_session(r.now).unwrap();
            }
            continue;
        }
        let mut next = s.poll_timeout().unwrap_or(Instant::from_micros(u64::MAX));
        if let Some(x) = inflight.iter().map(|x| x.0).min() {
            next = next.min(x);
        }
        r.now = next.max(r.now);
        if next <= r.now && inflight.iter().all(|x| x.0 > r.now) {
            r.now = r.now + Duration::from_micros(1);
        }
    }
    panic!("session did not end");
}

fn segs(sent: &[(SocketAddr, StdVec<u8>)]) -> StdVec<(u16, u16)> {
    sent.iter()
        .filter_map(|(_, b)| match Repr::parse(b).unwrap().message {
            Message::FileSeg(s) => Some((s.section, s.sec_block)),
            _ => None,
        })
        .collect()
}

fn session_done(r: &Run) -> SessionSummary {
    match r.events.last() {
        Some(Event::SessionDone(s)) => *s,
        other => panic!("last event {other:?}"),
    }
}

fn file_done(r: &Run) -> StdVec<FileStats> {
    r.events
        .iter()
        .filter_map(|e| match e {
            Event::FileDone(s) => Some(*s),
            _ => None,
        })
        .collect()
}
