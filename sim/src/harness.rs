//! Adapters that put the real proto-core [`Sender`] and [`Receiver`] on a simulated
//! [`Network`](crate::Network), with file contents generated from a seed so that every receiver
//! checks every block it stores without keeping any data.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use proto_core::crypto::NoRsa;
use proto_core::session::receiver::{
    self, Config as ReceiverConfig, Existing, Item, ItemKind, Receiver, Reject, SessionId, Storage,
};
use proto_core::session::security::{ClientPin, SenderSecurity};
use proto_core::session::sender::{
    BlockSource, Event as SenderEvent, FileItem, ReadError, Sender, SenderConfig,
};
use proto_core::session::{nak, FileLayout, Transmit};
use proto_core::time::Instant;
use proto_core::wire::{FileType, Func as FuncCode, Message, Repr};

use crate::net::{ContentCheck, Node, ParsedFileSeg, Received, Role};

/// The byte at `offset` of the file generated from `seed`.
pub fn pattern_byte(seed: u64, offset: u64) -> u8 {
    let word = pattern_word(seed, offset / 8);
    word.to_le_bytes()[(offset % 8) as usize]
}

fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the generated content at `offset`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut i = 0;
    while i < buf.len() {
        let at = offset + i as u64;
        if at.is_multiple_of(8) && buf.len() - i >= 8 {
            buf[i..i + 8].copy_from_slice(&pattern_word(seed, at / 8).to_le_bytes());
            i += 8;
        } else {
            buf[i] = pattern_byte(seed, at);
            i += 1;
        }
    }
}

/// Whether `data` is the generated content at `offset`.
pub fn check_pattern(seed: u64, offset: u64, data: &[u8]) -> bool {
    let mut i = 0;
    while i < data.len() {
        let at = offset + i as u64;
        if at.is_multiple_of(8) && data.len() - i >= 8 {
            if data[i..i + 8] != pattern_word(seed, at / 8).to_le_bytes() {
                return false;
            }
            i += 8;
        } else {
            if data[i] != pattern_byte(seed, at) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// A file to send: its name, size and content seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimFile {
    /// Path name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Content seed (the content is [`pattern_byte`]).
    pub seed: u64,
}

impl SimFile {
    /// A file named `name` of `size` bytes; its seed comes from its name.
    pub fn new(name: &str, size: u64) -> SimFile {
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        SimFile {
            name: name.to_string(),
            size,
            seed,
        }
    }
}

struct Source {
    seeds: HashMap<u16, u64>,
    resend: Vec<u8>,
}

impl BlockSource for Source {
    fn read_block(&mut self, file_id: u16, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let seed = *self.seeds.get(&file_id).ok_or(ReadError)?;
        fill_pattern(seed, offset, buf);
        Ok(())
    }
    fn resend_map(&mut self) -> &mut [u8] {
        &mut self.resend
    }
}

/// What the harness saw of the sender, checked independently of its own counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderWatch {
    /// FILESEG datagrams sent, per file ID.
    pub filesegs: HashMap<u16, u64>,
    /// Of those, blocks sent again after their first time.
    pub resent: HashMap<u16, u64>,
    /// Resent blocks that no STATUS had asked for since they were last sent.
    pub unrequested_resends: u64,
    /// NAK bits received in STATUS messages (all, with repeats).
    pub nak_bits: u64,
}

#[derive(Default)]
struct FileTrack {
    layout: Option<FileLayout>,
    sent: Vec<u8>,
    asked: Vec<u8>,
}

/// The sender on the simulated network.
pub struct SenderNode<const CLIENTS: usize> {
    addr: SocketAddr,
    /// The state machine.
    pub sender: Sender<CLIENTS>,
    source: Source,
    files: Vec<SimFile>,
    next_file: usize,
    /// Every event it produced, in order.
    pub events: Vec<SenderEvent>,
    /// When each of `events` was drained.
    pub event_times: Vec<Instant>,
    /// The file ID each file was sent under, in the order sent.
    pub file_ids: Vec<(u16, String)>,
    /// What the harness saw on the wire.
    pub watch: SenderWatch,
    tracks: HashMap<u16, FileTrack>,
}

impl<const CLIENTS: usize> SenderNode<CLIENTS> {
    /// A sender at `addr` that will send `files`.
    pub fn new(
        addr: SocketAddr,
        config: SenderConfig,
        allowed: &[u32],
        files: Vec<SimFile>,
    ) -> Self {
        let sender = Sender::new(config, allowed).expect("valid sender config");
        SenderNode {
            addr,
            sender,
            source: Source {
                seeds: HashMap::new(),
                resend: Vec::new(),
            },
            files,
            next_file: 0,
            events: Vec::new(),
            event_times: Vec::new(),
            file_ids: Vec::new(),
            watch: SenderWatch::default(),
            tracks: HashMap::new(),
        }
    }

    /// A sender at `addr` running an encrypted session (`security`), with closed-group pins in
    /// `allowed` (empty: open group). RSA is not available in the simulator.
    pub fn with_security(
        addr: SocketAddr,
        config: SenderConfig,
        allowed: &[ClientPin],
        security: SenderSecurity,
        files: Vec<SimFile>,
    ) -> Self {
        let sender =
            Sender::with_security(config, allowed, security, NoRsa).expect("valid sender security");
        SenderNode {
            addr,
            sender,
            source: Source {
                seeds: HashMap::new(),
                resend: Vec::new(),
            },
            files,
            next_file: 0,
            events: Vec::new(),
            event_times: Vec::new(),
            file_ids: Vec::new(),
            watch: SenderWatch::default(),
            tracks: HashMap::new(),
        }
    }

    fn feed(&mut self, now: Instant) {
        while self.sender.wants_file() {
            if self.next_file == self.files.len() {
                self.sender.finish_session(now).expect("finish");
                break;
            }
            let f = &self.files[self.next_file];
            self.next_file += 1;
            let item = FileItem {
                name: f.name.as_bytes(),
                ftype: FileType::Regular,
                size: f.size,
                mtime: 1_700_000_000,
                link: &[],
            };
            let file_id = self.sender.start_file(now, item).expect("start file");
            self.file_ids.push((file_id, f.name.clone()));
            let layout = self.sender.layout();
            self.source.seeds.insert(file_id, f.seed);
            self.source.resend = vec![0; layout.bitmap_len()];
            self.tracks.insert(
                file_id,
                FileTrack {
                    layout: Some(layout),
                    sent: vec![0; layout.bitmap_len()],
                    asked: vec![0; layout.bitmap_len()],
                },
            );
        }
        while let Some(e) = self.sender.poll_event() {
            self.events.push(e);
            self.event_times.push(now);
        }
    }

    fn watch_out(&mut self, bytes: &[u8]) {
        let Ok(Repr {
            message: Message::FileSeg(s),
            ..
        }) = Repr::parse(bytes)
        else {
            return;
        };
        *self.watch.filesegs.entry(s.file_id).or_default() += 1;
        let Some(track) = self.tracks.get_mut(&s.file_id) else {
            return;
        };
        let Some(block) = track
            .layout
            .and_then(|l| l.block_of(s.section, u32::from(s.sec_block)))
        else {
            return;
        };
        let b = block as usize;
        if nak::get(&track.sent, b) {
            *self.watch.resent.entry(s.file_id).or_default() += 1;
            if nak::get(&track.asked, b) {
                nak::clear(&mut track.asked, b);
            } else {
                self.watch.unrequested_resends += 1;
            }
        }
        nak::set(&mut track.sent, b);
    }

    fn watch_in(&mut self, bytes: &[u8]) {
        let Ok(Repr {
            message: Message::Status(s),
            ..
        }) = Repr::parse(bytes)
        else {
            return;
        };
        let Some(track) = self.tracks.get_mut(&s.file_id) else {
            return;
        };
        let Some(layout) = track.layout else { return };
        for i in s.nak_indexes() {
            if let Some(block) = layout.block_of(s.section, i as u32) {
                self.watch.nak_bits += 1;
                nak::set(&mut track.asked, block as usize);
            }
        }
    }
}

impl<const CLIENTS: usize> Node for SenderNode<CLIENTS> {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    // Events are drained when `poll_transmit` has nothing more to send (the network calls it
    // after every input), or at once when the session is over (nothing more is polled then).
    // Each drain walks the client table; the event queue holds the few events a turn makes.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Received<'_>) {
        self.watch_in(datagram.bytes);
        self.sender
            .handle_datagram(now, from, datagram.bytes, &mut self.source);
        if self.sender.is_finished() {
            self.feed(now);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.sender.handle_timeout(now);
        if self.sender.is_finished() || self.sender.wants_file() {
            self.feed(now);
        }
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.sender.wants_file() {
            self.feed(now);
        }
        let t = self.sender.poll_transmit(now, buf, &mut self.source);
        match t {
            Some(t) => self.watch_out(&buf[..t.len]),
            None => self.feed(now),
        }
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.sender.poll_timeout()
    }
    fn is_down(&self) -> bool {
        self.sender.is_finished() && self.sender.poll_timeout().is_none()
    }
}

/// What a receiver stored, checked block by block against the generated content. It keeps a
/// block map per open file and nothing of the data.
///
/// Every block written is compared with the generated content. A datagram's block is compared
/// once: the first receiver to store it records the result with the datagram
/// ([`ContentCheck`]), and the others, handed the same unchanged bytes, reuse it when what they
/// store is exactly that range of them, for the same file and offset.
#[derive(Debug, Default)]
pub struct CheckingStorage {
    seeds: Vec<(String, u64)>,
    open: Vec<(SessionId, OpenFile)>,
    /// Files finished with every block present and correct: name → size.
    pub completed: HashMap<String, u64>,
    /// Blocks whose data differed from the generated content.
    pub bad_blocks: u64,
    /// Files discarded.
    pub discarded: u64,
    /// Bytes written (repeats included).
    pub bytes_written: u64,
    /// Items opened.
    pub opened: u64,
    /// Blocks compared with the generated content byte by byte (the others reused a check).
    pub full_checks: u64,
}

/// The datagram being handled, as the storage may use it to check what is written.
#[derive(Debug, Clone, Copy)]
struct CheckContext<'a> {
    /// Address and length of the datagram's buffer.
    base: usize,
    len: usize,
    /// The buffer holds the datagram as sent, shared with other receivers.
    pristine: bool,
    /// The datagram's check (set by the first node that makes one).
    check: &'a OnceLock<ContentCheck>,
}

impl<'a> CheckContext<'a> {
    fn of(datagram: &Received<'a>) -> Self {
        CheckContext {
            base: datagram.bytes.as_ptr() as usize,
            len: datagram.bytes.len(),
            pristine: datagram.pristine,
            check: datagram.check,
        }
    }
}

/// A [`CheckingStorage`] lent to the receiver for one datagram, so that what it writes can be
/// checked against that datagram's shared [`ContentCheck`]. It forwards every [`Storage`]
/// method, the provided ones too: a method added to the trait must be forwarded here.
struct ForDatagram<'a> {
    storage: &'a mut CheckingStorage,
    ctx: CheckContext<'a>,
}

#[derive(Debug)]
struct OpenFile {
    name: String,
    seed: u64,
    layout: FileLayout,
    map: Vec<u8>,
    bad: bool,
}

impl CheckingStorage {
    /// A storage that knows the content of `files`.
    pub fn new(files: &[SimFile]) -> Self {
        CheckingStorage {
            seeds: files.iter().map(|f| (f.name.clone(), f.seed)).collect(),
            ..CheckingStorage::default()
        }
    }

    fn file(&mut self, session: SessionId) -> Option<&mut OpenFile> {
        self.open
            .iter_mut()
            .find(|(s, _)| *s == session)
            .map(|(_, f)| f)
    }

    /// Whether `data` is the content of `seed` at `offset`, reusing the datagram's check when
    /// `data` is the very range it covered.
    fn content_ok(
        &mut self,
        seed: u64,
        offset: u64,
        data: &[u8],
        ctx: Option<&CheckContext<'_>>,
    ) -> bool {
        let addr = data.as_ptr() as usize;
        let key = (seed, offset);
        if let Some(ctx) =
            ctx.filter(|c| c.pristine && addr >= c.base && addr + data.len() <= c.base + c.len)
        {
            let start = addr - ctx.base;
            if let Some(k) = ctx.check.get() {
                if (k.start, k.len, k.key) == (start, data.len(), key) {
                    return k.ok;
                }
            }
            self.full_checks += 1;
            let ok = check_pattern(seed, offset, data);
            // The first check of this datagram is kept; a later one covers the same bytes.
            let _ = ctx.check.set(ContentCheck {
                start,
                len: data.len(),
                key,
                ok,
            });
            return ok;
        }
        self.full_checks += 1;
        check_pattern(seed, offset, data)
    }

    fn write_checked(
        &mut self,
        session: SessionId,
        offset: u64,
        data: &[u8],
        ctx: Option<&CheckContext<'_>>,
    ) -> Result<(), Reject> {
        let (seed, layout) = {
            let f = self.file(session).ok_or(Reject::Io)?;
            (f.seed, f.layout)
        };
        self.bytes_written += data.len() as u64;
        let block = offset / u64::from(layout.blocksize);
        let good = offset.is_multiple_of(u64::from(layout.blocksize))
            && block < u64::from(layout.blocks)
            && data.len() == layout.block_len(block as u32)
            && self.content_ok(seed, offset, data, ctx);
        if !good {
            self.bad_blocks += 1;
            if let Some(f) = self.file(session) {
                f.bad = true;
            }
        }
        Ok(())
    }
}

impl Storage for CheckingStorage {
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
        self.opened += 1;
        if item.kind != ItemKind::Regular {
            return Err(Reject::Unsupported);
        }
        let seed = self
            .seeds
            .iter()
            .find(|(n, _)| n.as_bytes() == item.name)
            .map(|(_, s)| *s)
            .ok_or(Reject::BadName)?;
        let file = OpenFile {
            name: String::from_utf8_lossy(item.name).into_owned(),
            seed,
            layout: item.layout,
            map: vec![0; item.layout.bitmap_len()],
            bad: false,
        };
        self.open.retain(|(s, _)| *s != item.session);
        self.open.push((item.session, file));
        Ok(())
    }
    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        self.file(session).map(|f| f.map.as_mut_slice())
    }
    fn write(
        &mut self,
        session: SessionId,
        _file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject> {
        self.write_checked(session, offset, data, None)
    }
    fn finish(&mut self, session: SessionId, _file_id: u16) -> Result<(), Reject> {
        let at = self
            .open
            .iter()
            .position(|(s, _)| *s == session)
            .ok_or(Reject::Io)?;
        let (_, f) = self.open.swap_remove(at);
        let all = nak::next_clear(&f.map, 0, f.layout.blocks as usize).is_none();
        if all && !f.bad {
            self.completed.insert(f.name, f.layout.size);
            Ok(())
        } else {
            Err(Reject::Io)
        }
    }
    fn discard(&mut self, session: SessionId, _file_id: u16) {
        self.discarded += 1;
        self.open.retain(|(s, _)| *s != session);
    }
    fn free_space(&mut self, _session: SessionId) -> Option<u64> {
        None
    }
}

impl Storage for ForDatagram<'_> {
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
        self.storage.open(item)
    }
    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        self.storage.block_map(session)
    }
    fn write(
        &mut self,
        session: SessionId,
        _file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject> {
        self.storage
            .write_checked(session, offset, data, Some(&self.ctx))
    }
    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject> {
        self.storage.finish(session, file_id)
    }
    fn discard(&mut self, session: SessionId, file_id: u16) {
        self.storage.discard(session, file_id)
    }
    fn free_space(&mut self, session: SessionId) -> Option<u64> {
        self.storage.free_space(session)
    }
    fn session_ended(&mut self, session: SessionId) {
        self.storage.session_ended(session)
    }
    fn resumed(&mut self, item: &Item<'_>) -> bool {
        self.storage.resumed(item)
    }
    fn session_failed(&mut self, session: SessionId) {
        self.storage.session_failed(session)
    }
    fn existing(&mut self, item: &Item<'_>) -> Option<Existing> {
        self.storage.existing(item)
    }
}

/// What a receiver did, as the simulator's reports need it (kept whether or not its events are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverRecord {
    /// When its registration was confirmed.
    pub registered: Option<Instant>,
    /// Items it finished, and when it finished the last of them.
    pub files_finished: u32,
    /// When it finished its last item.
    pub finished_at: Option<Instant>,
    /// When and how its session ended.
    pub ended: Option<(Instant, receiver::SessionResult)>,
    /// Datagrams and bytes it sent.
    pub sent: u64,
    /// Bytes of those (UDP payloads).
    pub sent_bytes: u64,
    /// STATUS (NAK) datagrams it sent in the clear, and their bytes.
    pub status_sent: u64,
    /// Bytes of those.
    pub status_bytes: u64,
}

/// A receiver on the simulated network (a [`Role::Leaf`]).
pub struct ReceiverNode<const SESSIONS: usize> {
    addr: SocketAddr,
    /// The state machine.
    pub receiver: Receiver<SESSIONS>,
    /// Its storage.
    pub storage: CheckingStorage,
    /// Every event it produced, in order (unless [`ReceiverNode::without_event_log`]).
    pub events: Vec<receiver::Event>,
    keep_events: bool,
    /// What it did.
    pub record: ReceiverRecord,
    down: bool,
    /// When `Some`, a line per datagram in (`<`) and out (`>`), for debugging a run.
    pub trace: Option<Vec<String>>,
}

impl<const SESSIONS: usize> ReceiverNode<SESSIONS> {
    /// Receiver number `n` (its UID and address derive from `n`), knowing `files`.
    pub fn new(n: u32, files: &[SimFile]) -> Self {
        let addr = receiver_addr(n);
        let uid = 0x0a00_0000 + n + 2;
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&uid.to_be_bytes());
        let config = ReceiverConfig::new(uid, seed);
        ReceiverNode {
            addr,
            receiver: Receiver::new(config),
            storage: CheckingStorage::new(files),
            events: Vec::new(),
            keep_events: true,
            record: ReceiverRecord::default(),
            down: false,
            trace: None,
        }
    }

    /// The same receiver with its configuration changed by `f` (keys, server list, policy).
    pub fn configure(mut self, f: impl FnOnce(&mut ReceiverConfig)) -> Self {
        let mut config = self.receiver.config().clone();
        f(&mut config);
        self.receiver = Receiver::new(config);
        self
    }

    /// The same receiver keeping only its [`ReceiverRecord`], not every event (for large runs).
    pub fn without_event_log(mut self) -> Self {
        self.keep_events = false;
        self
    }

    /// The receiver's UID.
    pub fn uid(&self) -> u32 {
        self.receiver.config().uid
    }

    #[inline]
    fn drain(&mut self, now: Instant) {
        if self.receiver.has_events() {
            self.drain_events(now);
        }
    }

    #[inline(never)]
    fn drain_events(&mut self, now: Instant) {
        while let Some(e) = self.receiver.poll_event() {
            match &e {
                receiver::Event::Registered { .. } => self.record.registered = Some(now),
                receiver::Event::FileFinished { .. } => {
                    self.record.files_finished += 1;
                    self.record.finished_at = Some(now);
                }
                receiver::Event::SessionEnded { result, .. } => {
                    self.record.ended = Some((now, result.clone()));
                }
                _ => {}
            }
            if self.keep_events {
                self.events.push(e);
            }
        }
    }
}

fn describe(now: Instant, dir: char, bytes: &[u8]) -> String {
    match Repr::parse(bytes) {
        Ok(r) => {
            let detail = match r.message {
                Message::FileSeg(s) => {
                    format!("file {} sec {} blk {}", s.file_id, s.section, s.sec_block)
                }
                Message::Done(d) => format!(
                    "file {} sec {} ids {:x?}",
                    d.file_id, d.section, d.client_ids
                ),
                Message::Status(s) => format!(
                    "file {} sec {} naks {}",
                    s.file_id,
                    s.section,
                    s.nak_indexes().count()
                ),
                Message::Complete(c) => format!("file {} {:?}", c.file_id, c.status),
                Message::FileInfo(f) => format!("file {} ids {:x?}", f.file_id, f.client_ids),
                Message::FileInfoAck(f) => format!("file {}", f.file_id),
                _ => String::new(),
            };
            format!(
                "{:>10} {dir} seq {:5} {} {detail}",
                now.as_micros(),
                r.header.seq,
                r.message.name()
            )
        }
        Err(e) => format!("{:>10} {dir} junk ({e})", now.as_micros()),
    }
}

/// The address of receiver `n`.
pub fn receiver_addr(n: u32) -> SocketAddr {
    let n = n + 2;
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)),
        1044,
    )
}

impl<const SESSIONS: usize> Node for ReceiverNode<SESSIONS> {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn role(&self) -> Role {
        Role::Leaf
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: Received<'_>) {
        if let Some(trace) = &mut self.trace {
            trace.push(describe(now, '<', datagram.bytes));
        }
        let mut storage = ForDatagram {
            ctx: CheckContext::of(&datagram),
            storage: &mut self.storage,
        };
        self.receiver
            .handle_datagram(now, from, datagram.bytes, &mut storage);
        self.drain(now);
    }
    fn handle_fileseg(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: Received<'_>,
        parsed: &ParsedFileSeg,
    ) {
        if self.trace.is_some() {
            return self.handle_datagram(now, from, datagram);
        }
        let mut storage = ForDatagram {
            ctx: CheckContext::of(&datagram),
            storage: &mut self.storage,
        };
        let seg = parsed.with_data(datagram.bytes);
        self.receiver
            .handle_parsed_fileseg(now, &parsed.header, &seg, &mut storage);
        self.drain(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.receiver.handle_timeout(now, &mut self.storage);
        self.drain(now);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.receiver.poll_transmit(now, buf, &mut self.storage);
        if let Some(t) = t {
            if let Some(trace) = &mut self.trace {
                trace.push(describe(now, '>', &buf[..t.len]));
            }
            self.record.sent += 1;
            self.record.sent_bytes += t.len as u64;
            if t.len > 1 && FuncCode::from(buf[1]) == FuncCode::Status {
                self.record.status_sent += 1;
                self.record.status_bytes += t.len as u64;
            }
        }
        self.drain(now);
        t
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.receiver.poll_timeout()
    }
    fn is_down(&self) -> bool {
        self.down
    }
    fn set_down(&mut self) {
        self.down = true;
    }
}

impl<const CLIENTS: usize> std::fmt::Debug for SenderNode<CLIENTS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderNode")
            .field("addr", &self.addr)
            .field("watch", &self.watch)
            .finish()
    }
}

impl<const SESSIONS: usize> std::fmt::Debug for ReceiverNode<SESSIONS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverNode")
            .field("addr", &self.addr)
            .field("storage", &self.storage)
            .finish()
    }
}
