//! The receiving side of UFTP 4 (`uftpd`'s protocol logic), sans-IO and allocation-free.
//!
//! A [`Receiver`] follows up to `SESSIONS` concurrent sessions (one per server group). It speaks
//! the protocol of the digest, unencrypted or encrypted (§5: the handshake is in
//! `client_keys.rs`; after it every response is sealed and every server message must arrive in
//! an ENCRYPTED that authenticates and passes the replay window): ANNOUNCE → REGISTER (§1.2, §1.3, timers §1.5) →
//! REG_CONF; FILEINFO → FILEINFO_ACK or COMPLETE (§3.7, §4.2); FILESEG; DONE → STATUS/COMPLETE
//! (§4.2); DONE(file 0) → COMPLETE(file 0) → DONE_CONF; ABORT both ways; the MAXMISORDER rule
//! on `seq` (§2.1); GRTT taken from every server header.
//!
//! File contents and the per-block "received" bitmap live in the caller's [`Storage`]: the
//! receiver's own memory is fixed (a few hundred bytes per session slot) whatever the file sizes.
//!
//! # Call order
//!
//! As for every state machine in [`session`](super):
//! 1. `handle_datagram(now, from, bytes, storage)` for each datagram received on the UFTP port
//!    (public or private group, or unicast), and `handle_timeout(now, storage)` once
//!    `poll_timeout()` has passed;
//! 2. `poll_transmit(now, buf, storage)` until `None` (every `Some(t)` is one datagram: the
//!    first `t.len` bytes of `buf`, to `t.dest`), then `poll_event()` until `None`
//!    ([`Event::SessionStarted`] tells the driver to join the session's private group,
//!    [`Event::SessionEnded`] to leave it);
//! 3. sleep until `poll_timeout()` or the next datagram.
//!
//! To stop (uftpd on SIGTERM), call the command `shut_down(storage)` and drain `poll_transmit`
//! and `poll_event`, again until it returns 0: every server gets an ABORT.
//!
//! `poll_transmit` takes the storage too: a STATUS bitmap is built from the block map at the
//! moment it is sent, so that the receiver keeps no copy of it. `handle_datagram` takes the
//! datagram mutably so that ENCRYPTED bodies are decrypted in place.
//!
//! # Response proxy
//! With [`Config::response_proxy`] (`uftpd -R proxy[/FP]`) every response goes to the proxy:
//! KEY_REQ every [`KEY_REQ_INTERVAL`] until a PROXY_KEY signed by the proxy's key (with the
//! pinned fingerprint, or from the proxy's address) arrives, and in encrypted sessions the key
//! exchange runs against the proxy's keys (the server's rand1 and ANNOUNCE signature stay);
//! an encrypted ANNOUNCE before the proxy's key is passed by until it repeats (digest §7).
//!
//! # Restarts
//!
//! In a restarted session (group instance above 0, digest §1.6) a regular file the [`Storage`]
//! kept from an earlier instance ([`Storage::resumed`]) is answered with FILEINFO_ACK's PARTIAL
//! flag (or COMPLETE when every block is there), and the server's first DONE at once with
//! STATUS for the missing blocks only.
//!
//! # Congestion control
//!
//! A TFMCC session (ANNOUNCE cc_type 2, digest §6.2) keeps a [`ReceiverCc`]: every authentic
//! server datagram's `seq` feeds loss detection, FILESEGs the slow-start byte count, CONG_CTRL
//! our RTT and whether we are the CLR. The CLR answers each CONG_CTRL naming it with CC_ACK at
//! once; the others send CC_ACK when the round's feedback timer fires unless the server's
//! suppression rate fell below theirs first. STATUS carries the same feedback extension.
//!
//! # Sync mode
//!
//! In a session whose ANNOUNCE asks for sync mode (uftp's `-z`, digest §1.7) the receiver asks
//! [`Storage::existing`] about each regular file before opening it: a copy as new as the
//! incoming one (newer, or the same modification time and size) is kept and the file answered
//! at once with COMPLETE status SKIPPED; an older one is replaced and the file answered, once
//! received, with status OVERWRITE. In sync preview (`-Z`) every item is answered at once with
//! the status sync mode would give it, and nothing is stored. A restarted session (group
//! instance above 0) in sync mode is refused, as uftpd 4.10.2 refuses it.
//!
//! # Not yet
//!
//! `-w keyex` (per-packet signatures), DES/3DES and the obsolete or unused congestion control
//! types (UFTP3, PGMCC) (all refused with ABORT).

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use heapless::{Deque, Vec};

use super::client_keys::{self, Keys, Refusal};
use super::proxy::{Heartbeat, DEFAULT_HB_INTERVAL, MAX_HB_HOSTS};
use super::security::{OwnKey, ServerEntry, MAX_EC_KEYS, MAX_SERVERS};
use super::tfmcc::ReceiverCc;
use super::{nak, FileLayout, Transmit};
use crate::crypto::{Drbg, EcPrivateKey, Envelope, Fingerprint, NoRsa, RsaKeys, SessionKeys};
use crate::time::Instant;
use crate::wire::{
    AbortRepr, AnnounceRepr, CcAckRepr, CcType, ClientKeyRepr, CompleteRepr, CompleteStatus,
    CongCtrlRepr, DoneRepr, FileInfoAckRepr, FileInfoRepr, FileSegRepr, FileType,
    FreeSpaceInfoRepr, Func, GroupSize, Grtt, HashType, HbResult, HeaderRepr, IdList,
    KeyInfoAckRepr, KeyInfoRepr, KeyType, Message, RegisterRepr, Repr, StatusRepr, Timestamp,
    ABORT_FLAG_CURRENT_FILE, ANNOUNCE_FLAG_SYNC_MODE, ANNOUNCE_FLAG_SYNC_PREVIEW,
    FILEINFO_ACK_FLAG_PARTIAL, HEADER_LEN, VERSION,
};

mod announce;
mod config;
mod data;
mod emit;
mod event;
mod fileinfo;
mod storage;
#[cfg(test)]
mod tests;

pub use config::{Config, ResponseProxy, KEY_REQ_INTERVAL};
pub(super) use emit::emit_datagram;
pub use event::{AbortReason, DropReason, Event, SessionResult, Stats};
pub use storage::{Existing, Item, ItemKind, Reject, Storage};

/// How many public addresses a [`Config`] can list.
pub const MAX_PUBLIC_ADDRS: usize = 8;
/// Most packets a sender's `seq` may lag the highest seen before they are dropped (§2.1).
pub const MAX_MISORDER: u16 = 5;
/// Bytes of a server's ABORT reason kept in an [`Event`].
pub const REASON_LEN: usize = 64;

const EVENT_QUEUE: usize = 32;
const ONESHOT_QUEUE: usize = 8;
const ENDED_MEMORY: usize = 16;
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// The largest key blob a PROXY_KEY may carry (RSA-4096).
const MAX_PROXY_BLOB: usize = 8 + 512;
/// The largest ECDH blob (P-384).
const MAX_PROXY_DH_BLOB: usize = 4 + 2 * 48;

/// The response proxy's keys, from its PROXY_KEY.
#[derive(Debug, Clone)]
struct ProxyKeyStore {
    key_blob: Vec<u8, MAX_PROXY_BLOB>,
    dh_blob: Vec<u8, MAX_PROXY_DH_BLOB>,
}

/// A session: the server's group ID and restart instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// Group ID.
    pub group_id: u32,
    /// Group instance (restart counter).
    pub group_inst: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Registering,
    Receiving,
    Completing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    Receiving,
    Done(CompleteStatus),
}

#[derive(Debug, Clone, Copy)]
struct NakTimer {
    at: Instant,
    from: u16,
    to: u16,
    requested: bool,
}

#[derive(Debug, Clone, Copy)]
struct File {
    file_id: u16,
    layout: FileLayout,
    state: FileState,
    received: u32,
    last_section: u16,
    nak: Option<NakTimer>,
    /// Sections `[next, last]` still to scan for STATUS.
    status: Option<(u16, u16)>,
    info_ts: Timestamp,
    info_rx: Instant,
    send_ack: bool,
    send_complete: bool,
    freespace: Option<u64>,
    /// Blocks kept from an earlier instance of a restarted session (FILEINFO_ACK's PARTIAL).
    resumed: bool,
    /// Sync mode is replacing an older copy: the final COMPLETE says OVERWRITE.
    overwrite: bool,
    /// A resumed file answers the server's first DONE at once, without the 1×GRTT NAK delay
    /// (digest §1.6); cleared by that DONE or the first FILESEG.
    quick_status: bool,
}

impl File {
    fn complete(&self) -> bool {
        self.received >= self.layout.blocks
    }

    /// The status of the COMPLETE once the file is stored.
    fn final_status(&self) -> CompleteStatus {
        if self.overwrite {
            CompleteStatus::Overwrite
        } else {
            CompleteStatus::Normal
        }
    }
}

/// What sync mode does with `item` given the copy already in its place (digest §1.7): a
/// regular file as new as the incoming one (newer, or the same modification time and size) is
/// kept (SKIPPED), an older one replaced (OVERWRITE); anything else is received as usual.
fn sync_status(item: &Item<'_>, existing: Option<Existing>) -> CompleteStatus {
    match existing {
        Some(e) if item.kind == ItemKind::Regular => {
            let mtime = i64::from(item.mtime);
            if e.mtime > mtime || (e.mtime == mtime && e.size == item.size) {
                CompleteStatus::Skipped
            } else {
                CompleteStatus::Overwrite
            }
        }
        _ => CompleteStatus::Normal,
    }
}

#[derive(Debug, Clone)]
struct Session {
    id: SessionId,
    server_id: u32,
    server: SocketAddr,
    private_addr: IpAddr,
    blocksize: u16,
    robust: u8,
    /// The server's GRTT, as last advertised (`grtt_code`), and `max(grtt × robust,
    /// MIN_TIMEOUT)`: kept together by [`Session::set_grtt`] (every datagram carries the GRTT;
    /// it seldom changes).
    grtt: Duration,
    grtt_code: Grtt,
    idle_base_us: u64,
    /// A whole announce phase at the pace of the ANNOUNCE that opened the session.
    announce_wait_us: u64,
    phase: Phase,
    max_seq: u16,
    my_seq: u16,
    last_heard: Instant,
    announce_ts: Timestamp,
    announce_rx: Instant,
    send_register: bool,
    register_next: Instant,
    register_expire: Instant,
    file: Option<File>,
    send_complete0: bool,
    complete_next: Instant,
    complete_deadline: Instant,
    /// Encrypted sessions: the key material (REGISTER's key info, CLIENT_KEY, group keys).
    keys: Option<Keys>,
    send_client_key: bool,
    send_keyinfo_ack: bool,
    /// TFMCC sessions: the congestion-control state, and the group size last advertised.
    cc: Option<ReceiverCc>,
    gsize: GroupSize,
    /// The ANNOUNCE's sync flags ([`ANNOUNCE_FLAG_SYNC_MODE`], [`ANNOUNCE_FLAG_SYNC_PREVIEW`]).
    sync: u8,
}

impl Session {
    #[inline]
    fn idle_timeout(&self) -> Duration {
        Duration::from_micros(self.idle_us())
    }

    /// [`Session::idle_timeout`] in microseconds.
    #[inline]
    fn idle_us(&self) -> u64 {
        if self.file.is_some() {
            return self.idle_base_us;
        }
        // Registered, no file yet: the server may still be announcing to clients that have not
        // registered, at the pace of the GRTT it announced with, however small the GRTT it
        // advertises since it measured ours. Wait a whole announce phase at that pace.
        self.idle_base_us.max(self.announce_wait_us)
    }

    /// Whether [`Receiver::next_output`] may find something this session owes its server.
    #[inline]
    fn may_owe(&self) -> bool {
        self.send_register
            || self.send_client_key
            || self.send_keyinfo_ack
            || self.send_complete0
            || self.cc.as_ref().is_some_and(|c| c.send_ack)
            || self
                .file
                .as_ref()
                .is_some_and(|f| f.send_ack || f.send_complete || f.status.is_some())
    }

    #[inline]
    fn set_grtt(&mut self, code: Grtt) {
        if code != self.grtt_code {
            self.grtt_code = code;
            self.grtt = Duration::from_micros(code.as_micros());
            // As patient as the server: it repeats a round (DONE, FILEINFO, …) every 3×GRTT
            // for ROBUST rounds before it gives a silent client up, so a client gives the
            // server up only after as long (uftpd 4.10.2 waits ROBUST×GRTT, a third of that:
            // a loss burst over six rounds of DONE ended a session the server still held).
            self.idle_base_us = micros((self.grtt * 3 * u32::from(self.robust)).max(MIN_TIMEOUT));
        }
    }

    fn long_timeout(&self) -> Duration {
        (self.grtt * 4 * u32::from(self.robust)).max(MIN_TIMEOUT)
    }

    fn header(&mut self, uid: u32) -> HeaderRepr {
        let seq = self.my_seq;
        self.my_seq = self.my_seq.wrapping_add(1);
        HeaderRepr {
            seq,
            src_id: uid,
            group_id: self.id.group_id,
            group_inst: self.id.group_inst,
            grtt: Grtt(0),
            gsize: GroupSize(0),
        }
    }

    #[inline]
    fn next_deadline(&self) -> Instant {
        let mut t = match self.phase {
            Phase::Registering => self.register_next.min(self.register_expire),
            Phase::Receiving => {
                Instant::from_micros(self.last_heard.as_micros().saturating_add(self.idle_us()))
            }
            Phase::Completing => self.complete_next.min(self.complete_deadline),
        };
        if let Some(n) = self.file.as_ref().and_then(|f| f.nak) {
            t = t.min(n.at);
        }
        if let Some(at) = self.cc.as_ref().and_then(|c| c.ack_at) {
            t = t.min(at);
        }
        t
    }
}

#[derive(Debug, Clone, Copy)]
enum Output {
    Register,
    ClientKey,
    KeyInfoAck,
    FileInfoAck,
    Complete,
    Status(u16),
    Complete0,
    CcAck,
}

#[derive(Debug, Clone)]
struct Oneshot {
    dest: SocketAddr,
    session: SessionId,
    seq: u16,
    reason: AbortReason,
    /// In an encrypted session with group keys, the ABORT is sealed: the keys to rebuild the
    /// envelope from (so that the queue stays small) and the IV counter value.
    seal: Option<SealWith>,
}

#[derive(Debug, Clone)]
struct SealWith {
    keytype: KeyType,
    hashtype: HashType,
    master: [u8; client_keys::GROUP_MASTER_LEN],
    rand1: [u8; 32],
    ctr: u64,
}

/// The receiver state machine; see the [module documentation](self) for the call order.
#[derive(Debug)]
pub struct Receiver<const SESSIONS: usize, R: RsaKeys = NoRsa> {
    config: Config,
    rsa: R,
    drbg: Drbg,
    sessions: [Option<Session>; SESSIONS],
    oneshots: Deque<Oneshot, ONESHOT_QUEUE>,
    ended: Deque<SessionId, ENDED_MEMORY>,
    /// (session, server) pairs refused silently, so each is reported once.
    quiet: Deque<(SessionId, u32), ENDED_MEMORY>,
    events: Deque<Event, EVENT_QUEUE>,
    stats: Stats,
    /// The response proxy's keys, once its PROXY_KEY came.
    proxy_key: Option<ProxyKeyStore>,
    /// When the next KEY_REQ is due (a response proxy without a key yet).
    key_req_at: Option<Instant>,
    send_key_req: bool,
    /// Heartbeats to the proxies of `-H`.
    heartbeat: Heartbeat,
}

fn echo(ts: Timestamp, rx: Instant, now: Instant) -> Timestamp {
    let held = u64::try_from((now - rx).as_micros()).unwrap_or(u64::MAX);
    Timestamp::from_micros(ts.as_micros().saturating_add(held))
}

/// Whether `list` names `uid` (a zero entry ends a list, §1.3).
/// Whether `want` comes before the first zero in `bytes` (IDs in native order).
fn first_listed(bytes: &[u8], want: u32) -> bool {
    for b in bytes.chunks_exact(4) {
        let v = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        if v == 0 {
            return false;
        }
        if v == want {
            return true;
        }
    }
    false
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn lists(list: &IdList<'_>, uid: u32) -> bool {
    match list {
        // DONE and FILEINFO lists run to hundreds of IDs, and every receiver reads each one:
        // compare the wire bytes as they are.
        crate::wire::List::Wire(bytes) => {
            let want = u32::from_ne_bytes(uid.to_be_bytes());
            let id = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            // Eight IDs at a time, without branching inside (so that it vectorizes), down to
            // the eight holding our ID or the end of the list.
            let mut blocks = bytes.chunks_exact(32);
            for block in &mut blocks {
                let (mut hit, mut end) = (false, false);
                for b in block.chunks_exact(4) {
                    let v = id(b);
                    hit |= v == want;
                    end |= v == 0;
                }
                if hit || end {
                    return first_listed(block, want);
                }
            }
            first_listed(blocks.remainder(), want)
        }
        _ => list.iter().take_while(|&id| id != 0).any(|id| id == uid),
    }
}

/// The core's own check of a name from the network (§3.7): not empty, no NUL, no `..`.
pub fn name_is_acceptable(name: &[u8]) -> bool {
    !name.is_empty()
        && !name.contains(&0)
        && name.split(|&b| b == b'/').all(|part| part != b"..")
        && name.iter().any(|&b| b != b'/')
}

fn section_has_holes(layout: &FileLayout, map: &[u8], section: u16) -> bool {
    let Some(start) = layout.section_start(section) else {
        return false;
    };
    let end = start + layout.section_blocks(section);
    nak::next_clear(map, start as usize, end as usize).is_some()
}

impl<const SESSIONS: usize> Receiver<SESSIONS, NoRsa> {
    /// A receiver with no sessions and no RSA (ECDH sessions only, when encrypted).
    pub fn new(config: Config) -> Self {
        Self::with_rsa(config, NoRsa)
    }
}

impl<const SESSIONS: usize, R: RsaKeys> Receiver<SESSIONS, R> {
    /// A receiver with no sessions whose RSA operations (and own RSA keys) are `rsa`'s.
    pub fn with_rsa(config: Config, rsa: R) -> Self {
        let drbg = Drbg::new(&config.seed);
        let heartbeat = Heartbeat::new(
            config.uid,
            &config.heartbeat_hosts,
            config.heartbeat_interval,
        );
        Receiver {
            heartbeat,
            rsa,
            drbg,
            sessions: [const { None }; SESSIONS],
            oneshots: Deque::new(),
            ended: Deque::new(),
            quiet: Deque::new(),
            events: Deque::new(),
            stats: Stats::default(),
            proxy_key: None,
            key_req_at: config.response_proxy.map(|_| Instant::ZERO),
            send_key_req: false,
            config,
        }
    }

    /// The fingerprint of the response proxy's key, once its PROXY_KEY came (`-R`).
    pub fn response_proxy_key(&self) -> Option<Fingerprint> {
        self.proxy_key
            .as_ref()
            .map(|k| Fingerprint::of(&k.key_blob))
    }

    /// Where responses of a session announced from `from` go: the response proxy, if any.
    fn reply_addr(&self, from: SocketAddr) -> SocketAddr {
        self.config.response_proxy.map_or(from, |p| p.addr)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of sessions in progress.
    pub fn active_sessions(&self) -> usize {
        self.sessions.iter().flatten().count()
    }

    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.stats.events_lost += 1;
        }
    }

    fn drop_dgram(&mut self, reason: DropReason) {
        let c = &mut self.stats.dropped[reason.index()];
        *c += 1;
        let count = *c;
        self.event(Event::Dropped { reason, count });
    }

    fn oneshot(&mut self, o: Oneshot) {
        if self.oneshots.is_full() {
            let _ = self.oneshots.pop_front();
        }
        let _ = self.oneshots.push_back(o);
    }

    fn remember_ended(&mut self, id: SessionId) {
        if self.ended.is_full() {
            let _ = self.ended.pop_front();
        }
        let _ = self.ended.push_back(id);
    }

    /// Ends session `idx`: discards an unfinished file, tells the storage, queues the events.
    fn end_session<S: Storage>(
        &mut self,
        idx: usize,
        result: SessionResult,
        abort: Option<AbortReason>,
        storage: &mut S,
    ) {
        let Some(mut s) = self.sessions[idx].take() else {
            return;
        };
        if let Some(f) = s.file.take() {
            if f.state == FileState::Receiving {
                storage.discard(s.id, f.file_id);
                self.event(Event::FileAborted {
                    session: s.id,
                    file_id: f.file_id,
                });
            }
        }
        if let Some(reason) = abort {
            let seq = s.header(self.config.uid).seq;
            let seal = s.keys.as_mut().and_then(|k| {
                let ctr = k.next_ctr();
                k.group.as_ref().map(|g| SealWith {
                    keytype: k.keytype,
                    hashtype: k.hashtype,
                    master: g.master,
                    rand1: k.rand1,
                    ctr,
                })
            });
            self.oneshot(Oneshot {
                dest: s.server,
                session: s.id,
                seq,
                reason,
                seal,
            });
        }
        if result != SessionResult::Completed {
            storage.session_failed(s.id);
        }
        storage.session_ended(s.id);
        self.remember_ended(s.id);
        self.event(Event::SessionEnded {
            session: s.id,
            private_addr: s.private_addr,
            result,
        });
    }

    /// Handles one datagram received from `from`. An ENCRYPTED datagram is decrypted in place.
    pub fn handle_datagram<S: Storage>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &mut [u8],
        storage: &mut S,
    ) {
        self.stats.datagrams += 1;
        if bytes.get(1) == Some(&u8::from(Func::FileSeg)) {
            return self.on_plain_fileseg(now, bytes, storage);
        }
        self.on_other(now, from, bytes, storage)
    }

    /// Every datagram but a plaintext FILESEG. Kept out of line: its stack frame is large,
    /// and the FILESEG path should not pay for it.
    #[inline(never)]
    fn on_other<S: Storage>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &mut [u8],
        storage: &mut S,
    ) {
        let repr = match Repr::parse(bytes) {
            Ok(r) => r,
            Err(_) => return self.drop_dgram(DropReason::Malformed),
        };
        let header = repr.header;
        match &repr.message {
            Message::Announce(a) => return self.on_announce(now, from, &header, a, bytes, storage),
            Message::ProxyKey(k) => return self.on_proxy_key(from, k),
            Message::HbResp(r) => {
                if self.heartbeat.handle_response(from, r) {
                    return self.event(Event::HeartbeatAnswered {
                        from,
                        result: r.result,
                    });
                }
                return self.drop_dgram(DropReason::Unexpected);
            }
            _ => {}
        }
        let id = SessionId {
            group_id: header.group_id,
            group_inst: header.group_inst,
        };
        let Some(idx) = self.find_session(id) else {
            return self.drop_dgram(DropReason::UnknownSession);
        };
        let (server_id, encrypted, grouped) = {
            let s = self.sessions[idx].as_ref().expect("found above");
            let grouped = s.keys.as_ref().is_some_and(|k| k.group.is_some());
            (s.server_id, s.keys.is_some(), grouped)
        };
        if header.src_id != server_id {
            return self.drop_dgram(DropReason::WrongServer);
        }
        if let Message::Encrypted(_) = repr.message {
            return self.on_encrypted(now, idx, header, bytes, storage);
        }
        if encrypted {
            // Only the key delivery travels in the clear; an ABORT too, until we hold keys
            // (the server may refuse us before it sends any).
            let clear_ok = match repr.message {
                // REG_CONF travels in the clear too; in an encrypted session it confirms clients
                // behind proxies, and others pass it by.
                Message::KeyInfo(_) | Message::RegConf(_) => true,
                Message::Abort(_) => !grouped,
                _ => false,
            };
            if !clear_ok {
                return self.drop_dgram(DropReason::Unauthenticated);
            }
        }
        self.dispatch(now, idx, header, &repr.message, !encrypted, storage);
    }

    fn find_session(&self, id: SessionId) -> Option<usize> {
        self.sessions
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
    }

    /// Handles a FILESEG datagram that the driver has parsed already, with
    /// [`Repr::parse_fileseg`] on its bytes: the same as [`Receiver::handle_datagram`] on those
    /// bytes, without parsing them again (for a driver that hands one datagram to many
    /// receivers, as the simulator does).
    pub fn handle_parsed_fileseg<S: Storage>(
        &mut self,
        now: Instant,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
        storage: &mut S,
    ) {
        self.stats.datagrams += 1;
        self.fileseg(now, header, seg, storage);
    }

    /// Opens an ENCRYPTED datagram of session `idx` and handles what it carries.
    fn on_encrypted<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        header: HeaderRepr,
        bytes: &mut [u8],
        storage: &mut S,
    ) {
        let opened = {
            let s = self.sessions[idx].as_mut().expect("caller checked");
            match s.keys.as_mut().and_then(|k| k.group.as_mut()) {
                None => Err(DropReason::Encrypted),
                Some(g) => {
                    let ctr = bytes
                        .get(HEADER_LEN..HEADER_LEN + 8)
                        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
                        .unwrap_or(0);
                    if !g.window.is_fresh(ctr) {
                        Err(DropReason::Replayed)
                    } else {
                        match g.envelope.open(bytes) {
                            Ok(range) => {
                                g.window.accept(ctr);
                                Ok(range)
                            }
                            Err(_) => Err(DropReason::AuthFailed),
                        }
                    }
                }
            }
        };
        let range = match opened {
            Ok(r) => r,
            Err(reason) => return self.drop_dgram(reason),
        };
        match Message::parse_inner(&bytes[range]) {
            Ok(inner) => self.dispatch(now, idx, header, &inner, true, storage),
            Err(_) => self.drop_dgram(DropReason::Malformed),
        }
    }

    /// Handles a server message of session `idx`. `authentic`: it came inside an ENCRYPTED
    /// that verified, or the session is unencrypted; only such messages move the session's
    /// sequence window, liveness and GRTT.
    fn dispatch<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        header: HeaderRepr,
        message: &Message<'_>,
        authentic: bool,
        storage: &mut S,
    ) {
        let uid = self.config.uid;
        let server_msg = matches!(
            message,
            Message::RegConf(_)
                | Message::FileInfo(_)
                | Message::FileSeg(_)
                | Message::Done(_)
                | Message::DoneConf(_)
                | Message::Abort(_)
                | Message::CongCtrl(_)
                | Message::KeyInfo(_)
        );
        if !server_msg {
            return self.drop_dgram(DropReason::Unexpected);
        }
        let mut newest = false;
        if authentic {
            let ordered = !matches!(message, Message::Abort(_) | Message::KeyInfo(_));
            match self.heard(now, idx, &header, ordered) {
                Some(n) => newest = n,
                None => return self.drop_dgram(DropReason::Misordered),
            }
        }
        match message {
            Message::RegConf(r) => {
                let s = self.sessions[idx].as_mut().expect("caller checked");
                // Encrypted sessions confirm with KEYINFO (REG_CONF is for proxied clients).
                if s.phase == Phase::Registering && s.keys.is_none() && lists(&r.client_ids, uid) {
                    s.phase = Phase::Receiving;
                    s.send_register = false;
                    let session = s.id;
                    self.event(Event::Registered { session });
                }
            }
            Message::KeyInfo(k) => self.on_keyinfo(now, idx, &header, k),
            Message::FileInfo(fi) => self.on_fileinfo(now, idx, fi, storage),
            Message::FileSeg(seg) => self.on_fileseg(now, idx, &header, seg, newest, storage),
            Message::CongCtrl(c) => self.on_cong_ctrl(now, idx, &header, c),
            Message::Done(d) => self.on_done(now, idx, d, storage),
            Message::DoneConf(dc) => {
                let s = self.sessions[idx].as_ref().expect("caller checked");
                if s.phase == Phase::Completing && lists(&dc.client_ids, uid) {
                    self.end_session(idx, SessionResult::Completed, None, storage);
                }
            }
            Message::Abort(a) => {
                if a.host != 0 && a.host != uid {
                    return;
                }
                let s = self.sessions[idx].as_ref().expect("caller checked");
                let file_done = s
                    .file
                    .as_ref()
                    .is_none_or(|f| f.state != FileState::Receiving);
                if a.host == 0 && a.flags & ABORT_FLAG_CURRENT_FILE != 0 && file_done {
                    return;
                }
                let mut reason = Vec::new();
                let _ = reason.extend_from_slice(&a.reason[..a.reason.len().min(REASON_LEN)]);
                self.end_session(idx, SessionResult::AbortedByServer(reason), None, storage);
            }
            _ => {}
        }
    }

    /// Handles every timer that has expired by `now`.
    pub fn handle_timeout<S: Storage>(&mut self, now: Instant, storage: &mut S) {
        self.heartbeat.handle_timeout(now);
        if let Some(at) = self.key_req_at.filter(|&at| now >= at) {
            self.send_key_req = true;
            self.key_req_at = Some(at.max(now) + KEY_REQ_INTERVAL);
        }
        for idx in 0..SESSIONS {
            let Some(s) = self.sessions[idx].as_mut() else {
                continue;
            };
            match s.phase {
                Phase::Registering => {
                    if now >= s.register_expire {
                        self.end_session(
                            idx,
                            SessionResult::Aborted(AbortReason::RegistrationTimedOut),
                            Some(AbortReason::RegistrationTimedOut),
                            storage,
                        );
                        continue;
                    }
                    if now >= s.register_next {
                        s.send_register = true;
                        s.register_next = now + s.grtt * 4;
                    }
                }
                Phase::Receiving => {
                    if now >= s.last_heard + s.idle_timeout() {
                        self.end_session(
                            idx,
                            SessionResult::Aborted(AbortReason::TransferTimedOut),
                            Some(AbortReason::TransferTimedOut),
                            storage,
                        );
                        continue;
                    }
                }
                Phase::Completing => {
                    if now >= s.complete_deadline {
                        self.end_session(idx, SessionResult::Completed, None, storage);
                        continue;
                    }
                    if now >= s.complete_next {
                        s.send_complete0 = true;
                        s.complete_next = now + s.grtt * 4;
                    }
                }
            }
            let Some(s) = self.sessions[idx].as_mut() else {
                continue;
            };
            if let Some(cc) = s.cc.as_mut() {
                cc.timeout(now);
            }
            let session = s.id;
            let Some(f) = s.file.as_mut() else {
                continue;
            };
            let Some(t) = f.nak.filter(|t| now >= t.at) else {
                continue;
            };
            f.nak = None;
            if f.state != FileState::Receiving {
                continue;
            }
            if f.complete() {
                self.finish_file(idx, storage);
                continue;
            }
            let last = f.layout.sections.saturating_sub(1);
            let (from, to) = (t.from.min(last), t.to.min(last));
            let Some(map) = storage.block_map(session) else {
                continue;
            };
            let any = (from..=to).any(|sec| section_has_holes(&f.layout, map, sec));
            f.status = if any {
                Some((from, to))
            } else if t.requested {
                Some((0, last))
            } else {
                None
            };
        }
    }

    /// Command: the receiver is stopping. Ends sessions as an ABORT of ours would ("Client
    /// shutting down" to each server, the unfinished file discarded through the storage), as
    /// many as the outgoing queue has room for, and returns how many sessions remain. Drain
    /// [`poll_transmit`](Self::poll_transmit) after each call and call again until it returns 0,
    /// so that every server hears of it.
    pub fn shut_down<S: Storage>(&mut self, storage: &mut S) -> usize {
        for idx in 0..SESSIONS {
            if self.oneshots.is_full() {
                break;
            }
            if self.sessions[idx].is_some() {
                let reason = AbortReason::ShuttingDown;
                self.end_session(idx, SessionResult::Aborted(reason), Some(reason), storage);
            }
        }
        self.active_sessions()
    }

    /// The next instant `handle_timeout` wants to run, if any.
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = match (self.key_req_at, self.heartbeat.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for s in self.sessions.iter().flatten() {
            let at = s.next_deadline();
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether [`Receiver::poll_event`] has something.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Writes the next datagram to send into `buf`, if any.
    #[must_use]
    #[inline]
    pub fn poll_transmit<S: Storage>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        storage: &mut S,
    ) -> Option<Transmit> {
        if !self.send_key_req
            && self.oneshots.is_empty()
            && !self.heartbeat.has_pending()
            && !self.sessions.iter().flatten().any(Session::may_owe)
        {
            // The common case, after nearly every FILESEG.
            return None;
        }
        self.transmit(now, buf, storage)
    }
}
