//! The sender (`uftp`'s side of a session) as a sans-IO state machine (digest §1, §4, §6.1).
//!
//! A [`Sender`] runs one session: ANNOUNCE/REGISTER/REG_CONF, then for each item the caller
//! starts FILEINFO/FILEINFO_ACK, data passes (FILESEG, DONE, STATUS NAKs, retransmission
//! passes, COMPLETE), and at the end DONE(file 0)/COMPLETE/DONE_CONF. It never allocates: the
//! client table holds at most `CLIENTS` entries, and the per-block "to resend" map of the
//! current file is memory the driver lends through [`BlockSource::resend_map`], so the core's
//! size does not depend on the file's.
//!
//! # Code map
//! This file holds [`Sender`] and its driver API; each child module holds one concern, as
//! `impl Sender` blocks over the same private fields:
//! - `config.rs`: [`SenderConfig`], [`FileItem`], [`BlockSource`], their errors, construction;
//! - `event.rs`: [`Event`] and what it carries ([`Outcome`], [`FileStats`], [`Counters`], …);
//! - `clients.rs`: the client table (find, add, measure, lose, refuse);
//! - `register.rs`: REGISTER and the encrypted handshake's input;
//! - `feedback.rs`: FILEINFO_ACK, STATUS, COMPLETE and ABORT during a file;
//! - `rounds.rs`: the phase machine (announce, file, passes, DONE rounds, completion);
//! - `timer.rs`: the timers by name and their deadlines;
//! - `emit.rs`: the header, sealing and every packet the sender builds;
//! - `tfmcc.rs` and `auto_rate.rs`: TFMCC and the adaptive rate, with their glue;
//!   `handshake.rs`: the server's keys;
//! - `tests/`: unit tests on virtual time (`plain.rs`, `encrypted.rs`).
//!
//! # Call order
//! After every input, a driver runs the same turn (quinn-proto's `Connection` asks the same):
//! 1. **input:** [`Sender::handle_datagram`] for each datagram received on the sender's socket,
//!    and [`Sender::handle_timeout`] once the instant of [`Sender::poll_timeout`] has passed;
//! 2. **commands** when the sender asks for them: [`Sender::start_file`] when
//!    [`Sender::wants_file`] is true, [`Sender::finish_session`] when there is nothing left,
//!    [`Sender::abort`] at any time;
//! 3. [`Sender::poll_event`] until `None`: events wait in small fixed queues (a full queue
//!    counts [`Counters::events_dropped`]), so drain them before producing more;
//! 4. [`Sender::poll_transmit`] until `None`: each `Some` is one datagram in the caller's
//!    buffer, to send at once; with a rate set, `None` also means "pacing budget spent, come
//!    back at `poll_timeout`";
//! 5. [`Sender::poll_event`] again until `None` (sending can end a round, a file or the
//!    session);
//! 6. sleep until [`Sender::poll_timeout`] (`None`: no timer, wait for a datagram or a
//!    command) or the next datagram, whichever comes first.
//!
//! Timestamps put in ANNOUNCE and FILEINFO are `now` in microseconds; clients only echo
//! them, and the difference to `now` at reception is that client's round-trip time.
//!
//! # Restarts
//! A restarted session (uftp's `-F`, digest §1.6) is configured by the caller: the same group
//! ID, [`SenderConfig::group_inst`] one higher, and the failed clients as a closed group. When
//! every client answers a FILEINFO with the PARTIAL flag, the first pass sends nothing: its
//! DONE collects what each one lacks, and the next pass sends only that.
//!
//! # Encrypted sessions
//! A sender made with [`Sender::with_security`] runs UFTP's handshake (digest §5.3–§5.5):
//! ANNOUNCE carries EXT_ENC_INFO (signed for the ECDH key exchanges); each REGISTER brings the
//! premaster, CLIENT_KEY (when client authentication is on) the client's key and its
//! signature; KEYINFO, re-sent every announce round until acknowledged, gives each client the
//! group master; a KEYINFO_ACK with the right verify data makes the client active
//! ([`Event::ClientRegistered`]). A client that fails a check is refused: an ABORT to it and
//! [`Event::ClientRefused`].
//!
//! # Proxies
//! A proxy (digest §7) registers with a REGISTER that lists the clients it stands for: the
//! proxy gets an entry of its own (it runs the key exchange of an encrypted session like a
//! client), and each listed client an entry marked as behind it, active at once and confirmed
//! by REG_CONF (in encrypted sessions too: that tells the proxy to send its own KEYINFO). From
//! then on the proxy answers for them: FILEINFO_ACK and COMPLETE list the clients they are for,
//! a STATUS (whose bitmap is the OR of its clients') answers for all of them, an ABORT names
//! the client it is for. FILEINFO lists clients only; DONE lists the clients that owe an answer
//! and the proxies they are behind, as uftp 4.10.2 does. [`Sender::with_proxies`] takes uftp's
//! `-j` list: proxies with optional key fingerprints, which a closed group (`-H`) needs for its
//! proxies to be admitted. [`Sender::responders`] counts who actually answers.
//!
//! From then on everything the sender multicasts but ANNOUNCE and KEYINFO goes out sealed in
//! ENCRYPTED under the group keys, sealed in place in the caller's buffer; what clients send
//! is taken only inside ENCRYPTED, checked against that client's replay window, then opened in
//! place (so [`Sender::handle_datagram`] takes the datagram mutably). Drops are counted by cause
//! in [`Counters`].

use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use heapless::{Deque, Vec};

use super::security::{ClientPin, SenderSecurity};
use super::{nak, FileLayout, Transmit};
use crate::crypto::{Fingerprint, NoRsa, RsaKeys, AEAD_TAG_LEN};
use crate::time::Instant;
use crate::wire::{
    AbortRepr, AnnounceRepr, CcItem, CcType, ClientKeyRepr, CompleteRepr, CompleteStatus,
    CongCtrlRepr, DoneConfRepr, DoneRepr, EncryptedPacket, FileInfoAckRepr, FileInfoRepr,
    FileSegRepr, FileType, Func, GroupSize, Grtt, HeaderPacket, HeaderRepr, IdList, KeyInfoEntry,
    KeyInfoRepr, List, Message, Record, RegConfRepr, RegisterRepr, Repr, Timestamp,
    ANNOUNCE_FLAG_SYNC_MODE, ANNOUNCE_FLAG_SYNC_PREVIEW, FILEINFO_ACK_FLAG_PARTIAL, HEADER_LEN,
    MAX_PATH_BYTES,
};

mod auto_rate;
mod clients;
mod config;
mod emit;
mod event;
mod feedback;
mod handshake;
mod register;
mod rounds;
mod tfmcc;
mod timer;

use clients::{
    Client, ClientState, FileState, Role, EV_DONE, EV_FILE, EV_LOST, EV_PROXY, EV_REFUSED,
    EV_REGISTERED,
};
pub use config::{
    BlockSource, CommandError, ConfigError, FileItem, ReadError, SenderConfig, SyncMode,
};
pub use event::{
    ClientInfo, Counters, Event, FileResult, FileStats, LostReason, Outcome, RefuseReason,
    SessionSummary,
};
use tfmcc::SenderCc;
pub use tfmcc::{CongestionControl, TfmccLimits};
use timer::Timer;

pub(crate) use handshake::sign_announce_with;
use handshake::{PeerKeys, PeerState, ServerKeys};

/// Smallest and largest block size uftp accepts (`-b`, digest §4.3).
pub const BLOCKSIZE_RANGE: core::ops::RangeInclusive<u16> = 512..=8800;
/// Allowed robustness factors (`-s`, digest §1.5).
pub const ROBUST_RANGE: core::ops::RangeInclusive<u8> = 10..=50;
/// Floor of one RTT measurement (digest §1.5).
const MIN_RTT_US: u64 = 1_000;
/// The fewest client IDs an encrypted ANNOUNCE lists, however large its keys.
const MIN_ANNOUNCE_IDS: usize = 8;
/// How far behind schedule pacing may fall before the lost time is forgotten (bounds bursts
/// after the driver slept late).
const PACING_SLACK_NS: u64 = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Announce { round: u8, late_until: Option<u64> },
    Idle,
    FileInfo { round: u8 },
    Data { pass: u16, cursor: u32, sent: u32 },
    Done { pass: u16, round: u8 },
    Completion { round: u8 },
    Linger { until: u64 },
    Finished,
}

/// Which round packet is due, and how far its ID list got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RoundEmit {
    pending: bool,
    cursor: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingAbort {
    host: u32,
    dest: SocketAddr,
    reason: &'static [u8],
    /// Sealed in ENCRYPTED (for clients that hold the group keys).
    sealed: bool,
}

/// The sender of one session, with a client table of `CLIENTS` entries, and `R` for RSA
/// (host keys; [`NoRsa`] when the session uses none).
///
/// Drivers follow one call order (the module documentation says why each step is there):
/// feed input with [`Sender::handle_datagram`] and [`Sender::handle_timeout`] (and commands
/// when [`Sender::wants_file`]); then [`Sender::poll_event`] until `None`,
/// [`Sender::poll_transmit`] until `None`, [`Sender::poll_event`] again until `None`; then
/// sleep until [`Sender::poll_timeout`] or the next datagram.
pub struct Sender<const CLIENTS: usize, R: RsaKeys = NoRsa> {
    config: SenderConfig,
    closed: bool,
    clients: Vec<Client, CLIENTS>,
    /// `(id, index)` of every client, sorted: finds a client among thousands by its ID
    /// (clients are only ever appended to the table).
    by_id: Vec<(u32, u32), CLIENTS>,
    /// Encrypted sessions: the key material of each client, index for index with `clients`
    /// (empty otherwise).
    peers: Vec<PeerKeys, CLIENTS>,
    /// Encrypted sessions: the server's keys and the group keys.
    sec: Option<ServerKeys>,
    rsa: R,
    phase: Phase,
    /// Next round timer, µs.
    next_round: u64,
    /// When the round timer last fired, µs: a GRTT that shrinks pulls the next round in to
    /// three of the new GRTTs after it.
    round_started: u64,
    round: RoundEmit,
    grtt_us: u64,
    measured: bool,
    seq: u16,
    /// Pacing: earliest time of the next FILESEG, ns.
    next_send_ns: u64,
    /// The default rate control's state.
    auto: auto_rate::AutoRate,
    file_id: u16,
    name: Vec<u8, MAX_PATH_BYTES>,
    link: Vec<u8, MAX_PATH_BYTES>,
    ftype: FileType,
    mtime: u32,
    layout: FileLayout,
    stats: FileStats,
    /// Bits set in the driver's resend map.
    to_resend: u32,
    file_acked: bool,
    any_fileinfo_ack: bool,
    first_file: bool,
    files: u32,
    bytes: u64,
    registered: u16,
    outcome: Option<Outcome>,
    aborts: Deque<PendingAbort, 8>,
    events: Deque<Event, 8>,
    /// Some client may owe a REG_CONF, KEYINFO or DONE_CONF entry (set wherever one is owed,
    /// cleared when a look through the table finds none): spares `poll_transmit` a walk through
    /// thousands of clients for every data packet.
    owed: bool,
    /// No client before this index has events to report (`poll_event` looks from here).
    event_from: usize,
    counters: Counters,
    /// TFMCC sessions: the rate, CLR and rounds; a CONG_CTRL is due; where the next
    /// CONG_CTRL's list goes on among clients whose RTT it repeats.
    cc: Option<SenderCc>,
    cong_ctrl_due: bool,
    cc_cursor: usize,
}

impl<const CLIENTS: usize, R: RsaKeys> core::fmt::Debug for Sender<CLIENTS, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("config", &self.config)
            .field("phase", &self.phase)
            .field("clients", &self.clients.len())
            .field("security", &self.sec)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<const CLIENTS: usize> Sender<CLIENTS> {
    /// An unencrypted sender for `config`; `allowed` lists the clients of a closed group
    /// (`-H`), empty for an open one.
    pub fn new(config: SenderConfig, allowed: &[u32]) -> Result<Self, ConfigError> {
        let pins = allowed.iter().map(|&id| ClientPin {
            id,
            fingerprint: None,
        });
        Self::build(config, pins, &[], None, NoRsa)
    }
}

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// An encrypted sender for `config` with the server's `security` choices and keys; RSA
    /// keys (for `rsa` and `ecdh_rsa`, and to check clients' RSA keys) come from `rsa`.
    ///
    /// `allowed` lists the clients of a closed group, empty for an open one. A client pinned
    /// with a fingerprint must authenticate with the key that has it (CLIENT_KEY), and any
    /// pin turns client authentication on for everyone (ANNOUNCE's CLIENT_AUTH flag), as does
    /// `security.client_auth`.
    pub fn with_security(
        config: SenderConfig,
        allowed: &[ClientPin],
        security: SenderSecurity,
        rsa: R,
    ) -> Result<Self, ConfigError> {
        Self::build(config, allowed.iter().copied(), &[], Some(&security), rsa)
    }

    /// A sender that expects proxies (uftp's `-j`): `proxies` lists them, each with the
    /// fingerprint its key must have (which turns client authentication on, as a pinned
    /// client does). A closed group (`allowed` not empty) admits only the listed proxies;
    /// an open one admits any, the listed ones with their pins checked. `security` makes the
    /// session encrypted, as [`Sender::with_security`] does.
    pub fn with_proxies(
        config: SenderConfig,
        allowed: &[ClientPin],
        proxies: &[ClientPin],
        security: Option<SenderSecurity>,
        rsa: R,
    ) -> Result<Self, ConfigError> {
        Self::build(
            config,
            allowed.iter().copied(),
            proxies,
            security.as_ref(),
            rsa,
        )
    }

    // ---------------------------------------------------------------- getters

    /// The configuration.
    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    /// The current GRTT.
    pub fn grtt(&self) -> Duration {
        Duration::from_micros(self.grtt_us)
    }

    /// Whole-session counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Figures of the current (or last) item.
    pub fn file_stats(&self) -> FileStats {
        self.stats
    }

    /// The layout of the current (or last) item; its `bitmap_len` is the resend map's size.
    pub fn layout(&self) -> FileLayout {
        self.layout
    }

    /// Whether the sender waits for [`Sender::start_file`] or [`Sender::finish_session`].
    pub fn wants_file(&self) -> bool {
        self.phase == Phase::Idle
    }

    /// Whether the session is over.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// The client table.
    pub fn clients(&self) -> impl Iterator<Item = ClientInfo> + '_ {
        self.clients.iter().map(|c| ClientInfo {
            id: c.id,
            addr: c.addr,
            active: c.active(),
            lost: match c.state {
                ClientState::Lost(r) => Some(r),
                _ => None,
            },
            refused: match c.state {
                ClientState::Refused(r) => Some(r),
                _ => None,
            },
            rtt: c.rtt_us.map(Duration::from_micros),
            done: c.done,
            proxy: c.is_proxy(),
            via: c.via().and_then(|p| self.clients.get(p)).map(|p| p.id),
        })
    }

    /// How many registered entries answer for themselves: clients that talk to the sender
    /// directly, and proxies (each answering for the clients behind it). Without proxies it
    /// is the number of registered clients.
    pub fn responders(&self) -> usize {
        let registered = |c: &&Client| {
            c.addr.is_some()
                && matches!(
                    c.state,
                    ClientState::Active | ClientState::Keying | ClientState::Lost(_)
                )
        };
        self.clients
            .iter()
            .filter(|c| c.via().is_none())
            .filter(registered)
            .count()
    }

    /// Bytes a datagram of this session takes at most; `poll_transmit` needs a buffer this big.
    pub fn max_datagram_len(&self) -> usize {
        let bs = usize::from(self.config.blocksize);
        // FILESEG: header + 8 + data; ID lists are capped at blocksize/4 IDs; FILEINFO adds
        // at most 28 + 300 before its list.
        let plain = HEADER_LEN + 28 + MAX_PATH_BYTES + 8 + 8 + bs;
        let Some(sec) = &self.sec else {
            return plain;
        };
        // Sealed: the ENCRYPTED header and signature slot, then CBC padding or the AEAD tag
        // (16 bytes either way at most). KEYINFO (12 + 52 per entry, at most a block's worth)
        // is smaller than that.
        let sealed = plain + sec.envelope.inner_offset() - HEADER_LEN + AEAD_TAG_LEN;
        // ANNOUNCE: fixed part with two IPv6 addresses, EXT_ENC_INFO, its ID list.
        let announce = HEADER_LEN + 48 + sec.ext_len() + 4 * self.announce_ids();
        sealed.max(announce)
    }

    /// Whether the session is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.sec.is_some()
    }

    /// The fingerprint of the server key of an encrypted session (what receivers pin, `-S`).
    pub fn key_fingerprint(&self) -> Option<Fingerprint> {
        self.sec.as_ref().map(ServerKeys::fingerprint)
    }

    /// Why an encrypted session's choices are weak (3DES, CBC, SHA-1, RSA under 2048 bits),
    /// if they are; `None` for a strong or an unencrypted session. For the driver to log.
    pub fn weakness(&self) -> Option<&'static str> {
        self.sec.as_ref().and_then(ServerKeys::weakness)
    }

    // ---------------------------------------------------------------- input

    /// Handles one datagram received from `from`, in the caller's receive buffer: an
    /// ENCRYPTED datagram is opened in place, so the buffer's contents are unspecified
    /// afterwards.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &mut [u8],
        source: &mut impl BlockSource,
    ) {
        let now_us = now.as_micros();
        self.advance(now_us);
        let header = HeaderPacket::new_checked(&*bytes).and_then(|p| HeaderRepr::parse(&p));
        let Ok(h) = header else {
            self.counters.dropped += 1;
            return;
        };
        if h.group_id != self.config.group_id
            || h.group_inst != self.config.group_inst
            || self.phase == Phase::Finished
        {
            self.counters.dropped += 1;
            return;
        }
        let id = h.src_id;
        if Func::from(bytes[1]) == Func::Encrypted {
            self.on_encrypted(now_us, id, bytes, source);
            self.progress(now_us);
            return;
        }
        let Ok(repr) = Repr::parse(bytes) else {
            self.counters.dropped += 1;
            return;
        };
        let encrypted = self.sec.is_some();
        let dropped = self.counters.dropped;
        match repr.message {
            Message::Register(r) => self.on_register(now_us, from, id, &r),
            Message::ClientKey(k) if encrypted => self.on_client_key(from, id, &k),
            Message::Abort(a) if encrypted => self.on_plain_abort(now_us, from, id, a.host),
            Message::FileInfoAck(_) | Message::Status(_) | Message::Complete(_) if encrypted => {
                self.counters.unexpected_plaintext += 1;
                self.counters.dropped += 1;
            }
            Message::FileInfoAck(a) => self.on_fileinfo_ack(now_us, id, &a),
            Message::Status(s) => {
                self.on_status(id, s.file_id, s.section, s.naks, source);
                if let Some(info) = s.tfmcc {
                    self.on_cc_feedback(now_us, id, &info);
                }
            }
            Message::CcAck(_) if encrypted => {
                self.counters.unexpected_plaintext += 1;
                self.counters.dropped += 1;
            }
            Message::CcAck(a) => self.on_cc_feedback(now_us, id, &a.tfmcc),
            Message::Complete(c) => self.on_complete(now_us, id, &c),
            Message::Abort(a) => self.on_abort(now_us, id, a.host),
            _ => self.counters.dropped += 1,
        }
        if self.counters.dropped == dropped {
            self.counters.responses += 1;
        }
        self.progress(now_us);
    }

    /// Handles timers; call when the instant of [`Sender::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now.as_micros());
    }

    // ---------------------------------------------------------------- commands

    /// Starts the next item; valid when [`Sender::wants_file`]. Returns its file ID.
    pub fn start_file(&mut self, now: Instant, item: FileItem<'_>) -> Result<u16, CommandError> {
        if self.phase != Phase::Idle {
            return Err(CommandError::Busy);
        }
        if item.name.is_empty()
            || item.name.len() + item.link.len() > MAX_PATH_BYTES
            || item.name.contains(&0)
            || item.link.contains(&0)
        {
            return Err(CommandError::BadName);
        }
        let size = if item.ftype == FileType::Regular {
            item.size
        } else {
            0
        };
        let layout =
            FileLayout::new(size, self.config.blocksize).map_err(|_| CommandError::TooLarge)?;
        if size >= 1 << 48 {
            return Err(CommandError::TooLarge);
        }
        self.name.clear();
        self.link.clear();
        // Both fit: checked against MAX_PATH_BYTES above.
        let _ = self.name.extend_from_slice(item.name);
        let _ = self.link.extend_from_slice(item.link);
        self.file_id = match self.file_id.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        self.ftype = item.ftype;
        self.mtime = item.mtime;
        self.layout = layout;
        self.auto.new_file();
        self.stats = FileStats {
            file_id: self.file_id,
            size,
            blocks: layout.blocks,
            ..FileStats::default()
        };
        self.file_acked = false;
        self.to_resend = 0;
        self.files += 1;
        self.bytes += size;
        for c in self.clients.iter_mut() {
            c.in_file = c.active() && c.member();
            c.rate_section = 0;
            c.file = FileState::Waiting;
            c.file_id = self.file_id;
            c.partial = false;
            c.silent = 0;
            c.responded = false;
        }
        self.phase = Phase::FileInfo { round: 0 };
        self.next_round = now.as_micros();
        self.advance(now.as_micros());
        Ok(self.file_id)
    }

    /// Ends the session after the last item; valid when [`Sender::wants_file`].
    pub fn finish_session(&mut self, now: Instant) -> Result<(), CommandError> {
        if self.phase != Phase::Idle {
            return Err(CommandError::Busy);
        }
        for c in self.clients.iter_mut() {
            c.silent = 0;
        }
        self.phase = Phase::Completion { round: 0 };
        self.next_round = now.as_micros();
        self.advance(now.as_micros());
        Ok(())
    }

    /// Aborts the session: one ABORT to the whole group, then the end.
    pub fn abort(&mut self, now: Instant) {
        if self.phase == Phase::Finished {
            return;
        }
        self.abort_with(
            now.as_micros(),
            Outcome::Aborted,
            b"Session aborted by sender",
        );
    }

    fn abort_with(&mut self, now_us: u64, outcome: Outcome, reason: &'static [u8]) {
        let dest = self.private_dest();
        // Sealed for the clients that hold the group keys; plain for those that may not yet.
        let active = self.clients.iter().any(|c| c.active());
        let keying = self.clients.iter().any(|c| c.state == ClientState::Keying);
        if self.sec.is_some() && active {
            self.queue_abort(0, dest, reason, true);
        }
        if self.sec.is_none() || !active || keying {
            self.queue_abort(0, dest, reason, false);
        }
        for i in 0..self.clients.len() {
            if matches!(
                self.clients[i].state,
                ClientState::Active | ClientState::Keying
            ) {
                self.lose(i, LostReason::SessionAborted);
            }
        }
        if matches!(
            self.phase,
            Phase::FileInfo { .. } | Phase::Data { .. } | Phase::Done { .. }
        ) {
            self.file_done(now_us);
        }
        self.finish(now_us, outcome);
    }

    // ---------------------------------------------------------------- output

    /// The next datagram, written into `buf` (at least [`Sender::max_datagram_len`] bytes).
    #[must_use]
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        source: &mut impl BlockSource,
    ) -> Option<Transmit> {
        let now_us = now.as_micros();
        self.advance(now_us);
        let t = self.transmit(now_us, buf, source)?;
        self.counters.datagrams_sent += 1;
        self.counters.bytes_sent += t.len as u64;
        Some(t)
    }

    /// When [`Sender::handle_timeout`] (or, for paced data, [`Sender::poll_transmit`]) is next
    /// due; `None` once the session is over.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Finished {
            // Not a timer: a queued ABORT is due at once.
            return (!self.aborts.is_empty()).then_some(Instant::ZERO);
        }
        Timer::ALL
            .into_iter()
            .filter_map(|t| self.deadline(t))
            .min()
            .map(Instant::from_micros)
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        // A client's free space comes with its COMPLETE, before its result for the item.
        if matches!(self.events.front(), Some(Event::FreeSpace { .. })) {
            return self.events.pop_front();
        }
        while self.event_from < self.clients.len() {
            let c = &mut self.clients[self.event_from];
            if c.events & EV_REGISTERED != 0 {
                c.events &= !EV_REGISTERED;
                if let Some(addr) = c.addr {
                    return Some(Event::ClientRegistered { id: c.id, addr });
                }
            }
            if c.events & EV_PROXY != 0 {
                c.events &= !EV_PROXY;
                if let Some(addr) = c.addr {
                    return Some(Event::ProxyRegistered { id: c.id, addr });
                }
            }
            if c.events & EV_REFUSED != 0 {
                c.events &= !EV_REFUSED;
                if let ClientState::Refused(reason) = c.state {
                    return Some(Event::ClientRefused { id: c.id, reason });
                }
            }
            if c.events & EV_LOST != 0 {
                c.events &= !EV_LOST;
                if let ClientState::Lost(reason) = c.state {
                    return Some(Event::ClientLost { id: c.id, reason });
                }
            }
            if c.events & EV_FILE != 0 {
                c.events &= !EV_FILE;
                let (file_id, result) = c.result;
                return Some(Event::FileResult {
                    id: c.id,
                    file_id,
                    result,
                });
            }
            if c.events & EV_DONE != 0 {
                c.events &= !EV_DONE;
                return Some(Event::ClientDone { id: c.id });
            }
            self.event_from += 1;
        }
        self.event_from = usize::MAX;
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- internals

    fn grtt_x(&self, n: u64) -> u64 {
        self.grtt_us.saturating_mul(n)
    }

    fn private_dest(&self) -> SocketAddr {
        if self.config.unicast {
            self.config.public_addr
        } else {
            self.config.private_addr
        }
    }

    fn push_event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.counters.events_dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests;
