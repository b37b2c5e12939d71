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

/// What the receiver needs to know about itself.
#[derive(Debug, Clone)]
pub struct Config {
    /// This client's UID (never 0 or 0xFFFFFFFF).
    pub uid: u32,
    /// Public addresses whose ANNOUNCEs are accepted; empty accepts any. An ANNOUNCE with a zero
    /// public address (unicast mode) is always accepted.
    pub public_addrs: Vec<IpAddr, MAX_PUBLIC_ADDRS>,
    /// Refuse unencrypted sessions (`-E`).
    pub require_encryption: bool,
    /// Accept weak sessions ([`weakness`](super::security::weakness)): 3DES, CBC, SHA-1, RSA
    /// under 2048 bits. Off by default; such sessions are refused with an ABORT.
    pub allow_weak: bool,
    /// Servers to accept (`-S`); empty accepts any. An entry with a fingerprint accepts only a
    /// server whose key has it (and so only encrypted sessions from it).
    pub servers: Vec<ServerEntry, MAX_SERVERS>,
    /// Our EC keys (`-k`/`-K`), used for client authentication on sessions whose server key is
    /// on the same curve. RSA keys come through the receiver's [`RsaKeys`].
    pub ec_keys: Vec<EcPrivateKey, MAX_EC_KEYS>,
    /// Entropy for client randoms, premasters and ephemeral ECDH keys (fresh per run).
    pub seed: [u8; 32],
    /// A response proxy (`-R proxy[/FP]`) that every response goes to, and whose keys the key
    /// exchange of encrypted sessions runs against (digest §7).
    pub response_proxy: Option<ResponseProxy>,
    /// Proxies to send heartbeats to (`-H`): the pinhole through a site's firewall or NAT
    /// through which a server proxy (`uftpproxyd -s fp=FP`) reaches a receiver that has no
    /// client proxy in front of it, learning its address from the heartbeats.
    pub heartbeat_hosts: Vec<SocketAddr, MAX_HB_HOSTS>,
    /// Seconds between heartbeats (`-h`, default 20 s; the first goes out at once).
    pub heartbeat_interval: Duration,
    /// The key that signs a heartbeat when a proxy challenges it: the first of `-k`, as
    /// uftpd's (an RSA one is an index into the receiver's [`RsaKeys`]). Without one the
    /// heartbeats stay plain, and a proxy that pins a fingerprint refuses them.
    pub heartbeat_key: Option<OwnKey>,
}

/// A response proxy (`uftpd -R proxy[/FP]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseProxy {
    /// Where responses and KEY_REQ go.
    pub addr: SocketAddr,
    /// The fingerprint its key must have. Without one, PROXY_KEY is taken only from `addr`'s
    /// IP address.
    pub fingerprint: Option<Fingerprint>,
}

/// How often KEY_REQ is repeated until a PROXY_KEY answers it (uftpd 4.10.2: every 5 s).
pub const KEY_REQ_INTERVAL: Duration = Duration::from_secs(5);
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

impl Config {
    /// A receiver with UID `uid`, accepting any public address and any server, unencrypted or
    /// strongly encrypted, with no keys of its own; `seed` must be fresh entropy.
    pub fn new(uid: u32, seed: [u8; 32]) -> Self {
        Config {
            uid,
            public_addrs: Vec::new(),
            require_encryption: false,
            allow_weak: false,
            servers: Vec::new(),
            ec_keys: Vec::new(),
            seed,
            response_proxy: None,
            heartbeat_hosts: Vec::new(),
            heartbeat_interval: DEFAULT_HB_INTERVAL,
            heartbeat_key: None,
        }
    }
}

/// A session: the server's group ID and restart instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// Group ID.
    pub group_id: u32,
    /// Group instance (restart counter).
    pub group_inst: u8,
}

/// What a FILEINFO asks for, as handed to [`Storage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind<'a> {
    /// A regular file of `Item::size` bytes, delivered through [`Storage::write`].
    Regular,
    /// An (empty) directory to create.
    Directory,
    /// A symbolic link to create, pointing at `target` (bytes from the network: untrusted).
    Symlink {
        /// The link target.
        target: &'a [u8],
    },
    /// A request to delete the named item.
    Delete,
}

/// One item of a session, as handed to [`Storage::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'a> {
    /// The session.
    pub session: SessionId,
    /// The item's file ID within the session.
    pub file_id: u16,
    /// Its `/`-separated path. The core has checked that it is not empty and holds no NUL and
    /// no `..` component; it may be absolute. Confining it is the storage's job.
    pub name: &'a [u8],
    /// What to do with it.
    pub kind: ItemKind<'a>,
    /// Size in bytes (regular files).
    pub size: u64,
    /// Modification time, UNIX seconds.
    pub mtime: u32,
    /// Block geometry (regular files); the block map needs `layout.bitmap_len()` bytes.
    pub layout: FileLayout,
}

/// A regular file already in an item's place (see [`Storage::existing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, UNIX seconds.
    pub mtime: i64,
}

/// Why an item is refused (answered with COMPLETE status REJECTED) or a file could not be
/// stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// The name is empty, holds `..` or a NUL, or falls outside every destination.
    BadName,
    /// Something that may not be replaced is in the way.
    Exists,
    /// Not enough free space.
    NoSpace,
    /// An I/O error.
    Io,
    /// The item type or geometry is not supported.
    Unsupported,
}

impl Reject {
    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadName => "bad name",
            Reject::Exists => "exists",
            Reject::NoSpace => "no space",
            Reject::Io => "I/O error",
            Reject::Unsupported => "unsupported",
        }
    }
}

/// Where received items go. The host implements it on files; tests keep items in memory.
///
/// Calls for one regular file: [`open`](Storage::open) (with a zeroed
/// [`block_map`](Storage::block_map) of at least `layout.bitmap_len()` bytes made ready for the
/// session), any number of [`write`](Storage::write)s, then exactly one of
/// [`finish`](Storage::finish) (every block written: make it visible under its final name) or
/// [`discard`](Storage::discard) (forget it; leave nothing under the final name). A session has
/// at most one regular file open at a time. Directories, symlinks and deletions are carried out
/// entirely within `open`. [`session_ended`](Storage::session_ended) comes once per session that
/// was started, after its last file; [`session_failed`](Storage::session_failed) comes just
/// before it when the session did not complete.
///
/// # Restarts
/// A session re-run for the clients that failed it (uftp's `-F`, digest §1.6) keeps the group
/// ID and raises the group instance. In such a session (instance above 0), the core asks
/// [`resumed`](Storage::resumed) after opening each regular file: a storage that kept the
/// blocks of that very file from an earlier instance (uftpd's `-T`) fills the block map with
/// them and says so, and the receiver then answers FILEINFO_ACK with the PARTIAL flag and NAKs
/// only what is missing (or COMPLETE, when nothing is). Such a storage keeps the temporary of
/// a file it [`discard`](Storage::discard)s, out of sight of the destination, for that later
/// instance; the others delete it.
pub trait Storage {
    /// Prepares an item. For a regular file: create its temporary and make a zeroed block map of
    /// at least `item.layout.bitmap_len()` bytes ready for the session. For the other kinds: do
    /// it now. An error rejects the item (COMPLETE status REJECTED).
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject>;
    /// Sync mode (digest §1.7): the size and modification time of the regular file already
    /// at `item`'s final place, asked before [`open`](Storage::open) (which is not called when
    /// sync mode keeps that copy). `None` (the default) when there is none, or it is not a
    /// regular file: the item is received as usual.
    fn existing(&mut self, item: &Item<'_>) -> Option<Existing> {
        let _ = item;
        None
    }
    /// The session's block map: bit `b` (LSB first, see [`nak`]) set once block `b` of the
    /// open file is stored. `None` (or too short) if there is none: the file is then rejected.
    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]>;
    /// Stores `data` at byte `offset` of the open file.
    fn write(
        &mut self,
        session: SessionId,
        file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject>;
    /// Every block is stored: make the file durable and visible under its final name.
    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject>;
    /// Forget the open file: nothing may remain under its final name, nor as a temporary,
    /// except one kept for a restart of the session (see [Restarts](Storage#restarts)).
    fn discard(&mut self, session: SessionId, file_id: u16);
    /// Free bytes in the primary destination, for `@FREESPACE` queries (`None`: unknown).
    fn free_space(&mut self, session: SessionId) -> Option<u64>;
    /// The session is over; release what was kept for it.
    fn session_ended(&mut self, session: SessionId) {
        let _ = session;
    }
    /// A restarted session (group instance above 0) opened the regular file `item`: `true` if
    /// the blocks of this very file (same name, size, modification time and block size) were
    /// kept from an earlier instance of the session and the block map now marks them; `false`
    /// (the default) and the core clears the block map.
    fn resumed(&mut self, item: &Item<'_>) -> bool {
        let _ = item;
        false
    }
    /// The session ended without completing (aborted by either side, or timed out): called
    /// before [`session_ended`](Storage::session_ended), after the unfinished file (if any)
    /// was discarded. A storage that keeps restart state keeps it for a later instance.
    fn session_failed(&mut self, session: SessionId) {
        let _ = session;
    }
}

/// Why the receiver itself aborts or refuses a session (sent as the ABORT reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortReason {
    /// The session is unencrypted and this receiver requires encryption (`-E`).
    EncryptionRequired,
    /// The server is not in the server list (`-S`): wrong ID or address. Not sent.
    UntrustedServer,
    /// The server's key fingerprint is not the one its server-list entry names (or the
    /// session is unencrypted and so shows no key). Not sent.
    ServerKeyMismatch,
    /// The server's key blob is malformed or on a curve we do not implement. Not sent.
    BadServerKey,
    /// The ANNOUNCE's signature does not verify (forged or corrupted). Not sent.
    BadSignature,
    /// The session needs RSA, which this receiver lacks (firmware).
    RsaUnsupported,
    /// A cipher, hash or signature mode this receiver does not implement (DES, 3DES,
    /// `-w keyex`).
    UnsupportedCrypto,
    /// A weak choice (3DES, CBC, SHA-1, RSA under 2048 bits) without `allow_weak`.
    WeakSession,
    /// The key exchange failed on our side (RSA encryption, ECDH).
    KeyExchangeFailed,
    /// Client authentication is required and we hold no key of the server key's type and size.
    NoCompatibleKey,
    /// The ANNOUNCE asks for sync mode in a restarted session (group instance above 0).
    SyncWithRestart,
    /// The ANNOUNCE asks for a congestion control other than none or TFMCC.
    CongestionControlUnsupported,
    /// Every session slot is taken.
    TooManySessions,
    /// No REG_CONF (or FILEINFO) came before the registration expired.
    RegistrationTimedOut,
    /// Nothing came from the server for ROBUST×GRTT (at least 1 s).
    TransferTimedOut,
    /// Storage failed while writing or finishing a file.
    WriteFailed,
    /// An encrypted session came before the response proxy's PROXY_KEY (`-R`).
    ProxyKeyMissing,
    /// The response proxy's key is not of the server key's type and size, or its ECDH key is
    /// not on the server's ECDH curve.
    ProxyKeyIncompatible,
    /// The receiver is stopping ([`Receiver::shut_down`]).
    ShuttingDown,
}

impl AbortReason {
    /// The text sent in the ABORT.
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::EncryptionRequired => "No unencrypted transfers allowed",
            AbortReason::UntrustedServer => "Server not in the server list",
            AbortReason::ServerKeyMismatch => "Server key fingerprint not in the server list",
            AbortReason::BadServerKey => "Bad server key",
            AbortReason::BadSignature => "Bad ANNOUNCE signature",
            AbortReason::RsaUnsupported => "RSA not supported by this client",
            AbortReason::UnsupportedCrypto => "Encryption parameters not supported by this client",
            AbortReason::WeakSession => "Weak encryption refused by this client",
            AbortReason::KeyExchangeFailed => "Key exchange failed",
            AbortReason::NoCompatibleKey => "No client key compatible with server key",
            AbortReason::SyncWithRestart => "Sync mode and restart mode incompatible",
            AbortReason::CongestionControlUnsupported => {
                "Congestion control not supported by this client"
            }
            AbortReason::TooManySessions => "Too many sessions",
            AbortReason::RegistrationTimedOut => "Registration unconfirmed by server",
            AbortReason::TransferTimedOut => "Transfer timed out",
            AbortReason::WriteFailed => "Error writing file",
            AbortReason::ProxyKeyMissing => "Response proxy set but haven't gotten key yet",
            AbortReason::ProxyKeyIncompatible => {
                "Response proxy key not compatible with server key"
            }
            AbortReason::ShuttingDown => "Client shutting down",
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionResult {
    /// DONE_CONF named us, or the completion phase ran out after our COMPLETE(file 0).
    Completed,
    /// The server aborted us; its reason, truncated to [`REASON_LEN`] bytes (untrusted).
    AbortedByServer(Vec<u8, REASON_LEN>),
    /// We aborted (and told the server why).
    Aborted(AbortReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It does not parse as UFTP 4.
    Malformed,
    /// It belongs to no session of ours.
    UnknownSession,
    /// Its `src_id` is not the session's server.
    WrongServer,
    /// Its `seq` lags the highest seen by more than [`MAX_MISORDER`].
    Misordered,
    /// ENCRYPTED before we hold the group keys, or a KEYINFO we cannot use.
    Encrypted,
    /// It names a file other than the current one, or a block outside the file.
    WrongFile,
    /// A FILESEG whose length disagrees with its block.
    BadBlock,
    /// A message a client does not expect (or not in this phase).
    Unexpected,
    /// An ANNOUNCE whose parameters are out of range or whose public address is not ours.
    BadAnnounce,
    /// An ENCRYPTED packet whose IV counter was already seen (a replay).
    Replayed,
    /// An ENCRYPTED packet whose tag or HMAC does not verify, or whose envelope is malformed.
    AuthFailed,
    /// A plaintext message that an encrypted session only takes inside ENCRYPTED.
    Unauthenticated,
    /// An ANNOUNCE from a server we do not trust, with a bad signature or a wrong key.
    Untrusted,
}

impl DropReason {
    /// Number of reasons (for counter arrays).
    pub const COUNT: usize = 13;

    /// Index into [`Stats::dropped`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownSession => "unknown session",
            DropReason::WrongServer => "wrong server",
            DropReason::Misordered => "misordered",
            DropReason::Encrypted => "encrypted",
            DropReason::WrongFile => "wrong file",
            DropReason::BadBlock => "bad block",
            DropReason::Unexpected => "unexpected",
            DropReason::BadAnnounce => "bad announce",
            DropReason::Replayed => "replayed",
            DropReason::AuthFailed => "authentication failed",
            DropReason::Unauthenticated => "unauthenticated in an encrypted session",
            DropReason::Untrusted => "untrusted server",
        }
    }
}

/// Something the driver may want to log or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// We registered with a new session: join `private_addr` (unless unspecified).
    SessionStarted {
        /// The session.
        session: SessionId,
        /// The server's UID.
        server_id: u32,
        /// Where responses go.
        server: SocketAddr,
        /// The session's private multicast address (unspecified in unicast mode).
        private_addr: IpAddr,
        /// The session cipher ([`KeyType::None`] when unencrypted).
        cipher: KeyType,
        /// The session hash (meaningful when encrypted).
        hash: HashType,
        /// The server key's fingerprint (encrypted sessions).
        fingerprint: Option<Fingerprint>,
        /// Why the session is weak, when it is (it runs because `allow_weak` is set).
        weak: Option<&'static str>,
    },
    /// A heartbeat (HB_REQ) went to a proxy of `-H`.
    HeartbeatSent {
        /// The proxy.
        to: SocketAddr,
    },
    /// A proxy of `-H` answered a heartbeat: OK, a challenge (answered by a signed heartbeat),
    /// or a refusal.
    HeartbeatAnswered {
        /// The proxy.
        from: SocketAddr,
        /// Its answer.
        result: HbResult,
    },
    /// The server confirmed our registration.
    Registered {
        /// The session.
        session: SessionId,
    },
    /// A session ended: leave `private_addr`.
    SessionEnded {
        /// The session.
        session: SessionId,
        /// Its private multicast address.
        private_addr: IpAddr,
        /// How it ended.
        result: SessionResult,
    },
    /// An ANNOUNCE was refused: with an ABORT to the server when `aborted`, silently when the
    /// server is untrusted or the ANNOUNCE forged (reported once per session and server).
    Refused {
        /// The would-be session.
        session: SessionId,
        /// The server's UID.
        server_id: u32,
        /// Where the ANNOUNCE came from (and the ABORT went).
        server: SocketAddr,
        /// Why.
        reason: AbortReason,
        /// The server key's fingerprint, when it bears on the reason.
        fingerprint: Option<Fingerprint>,
        /// More detail (e.g. what makes a session weak).
        detail: Option<&'static str>,
        /// Whether an ABORT was sent.
        aborted: bool,
    },
    /// An item was accepted.
    FileStarted {
        /// The session.
        session: SessionId,
        /// The item.
        file_id: u16,
        /// Its type.
        kind: FileType,
        /// Its size.
        size: u64,
    },
    /// An item is complete (regular files: finished by the storage).
    FileFinished {
        /// The session.
        session: SessionId,
        /// The item.
        file_id: u16,
        /// Its size.
        size: u64,
        /// Sync mode replaced an older copy (COMPLETE status OVERWRITE).
        overwrite: bool,
    },
    /// Sync mode answered an item without receiving it, storing nothing: the copy in place is
    /// as new as the incoming one (`status` SKIPPED), or, in sync preview (`preview`), what
    /// sync mode would do (NORMAL: a new file, OVERWRITE: replace an older copy, SKIPPED).
    FileSkipped {
        /// The session.
        session: SessionId,
        /// The item.
        file_id: u16,
        /// Its size.
        size: u64,
        /// The status of the COMPLETE sent.
        status: CompleteStatus,
        /// Sync preview.
        preview: bool,
    },
    /// An item was rejected (COMPLETE status REJECTED).
    FileRejected {
        /// The session.
        session: SessionId,
        /// The item.
        file_id: u16,
        /// Why.
        reason: Reject,
    },
    /// An unfinished file was discarded (session aborted or the server moved on).
    FileAborted {
        /// The session.
        session: SessionId,
        /// The item.
        file_id: u16,
    },
    /// A datagram was dropped; `count` is how many have been dropped for this reason so far.
    Dropped {
        /// Why.
        reason: DropReason,
        /// Running count for this reason.
        count: u64,
    },
}

/// Counters since the receiver was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams: u64,
    /// Dropped datagrams, by [`DropReason::index`].
    pub dropped: [u64; DropReason::COUNT],
    /// Blocks stored.
    pub blocks: u64,
    /// Blocks received again after they were stored.
    pub duplicate_blocks: u64,
    /// Events lost because the queue was full.
    pub events_lost: u64,
    /// Datagrams not sent because the caller's buffer was too small.
    pub transmit_errors: u64,
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
            self.idle_base_us =
                micros((self.grtt * 3 * u32::from(self.robust)).max(MIN_TIMEOUT));
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

    /// PROXY_KEY: the response proxy's keys, taken when the fingerprint matches (or, without
    /// one, when it comes from the proxy's address) and the signature over the nonce verifies.
    fn on_proxy_key(&mut self, from: SocketAddr, k: &crate::wire::ProxyKeyRepr<'_>) {
        let Some(proxy) = self.config.response_proxy else {
            return self.drop_dgram(DropReason::Unexpected);
        };
        let trusted = match proxy.fingerprint {
            Some(want) => Fingerprint::of(k.key_blob) == want,
            None => from.ip() == proxy.addr.ip(),
        };
        let nonce = k.nonce.to_be_bytes();
        let verified = trusted
            && match crate::crypto::KeyBlob::parse(k.key_blob).map(|b| b.kind()) {
                Ok(crate::crypto::KeyBlobKind::Ec(b)) => crate::crypto::EcPublicKey::from_blob(&b)
                    .is_ok_and(|key| key.verify(HashType::Sha1, &[&nonce], k.signature).is_ok()),
                Ok(crate::crypto::KeyBlobKind::Rsa(b)) => self
                    .rsa
                    .verify(&b, HashType::Sha1, &[&nonce], k.signature)
                    .is_ok(),
                Err(_) => false,
            };
        let dh_ok = k.dh_blob.is_empty()
            || crate::crypto::KeyBlob::parse(k.dh_blob).is_ok_and(|b| b.ec().is_some());
        if !verified || !dh_ok {
            return self.drop_dgram(DropReason::Untrusted);
        }
        let (mut key_blob, mut dh_blob) = (Vec::new(), Vec::new());
        if key_blob.extend_from_slice(k.key_blob).is_err()
            || dh_blob.extend_from_slice(k.dh_blob).is_err()
        {
            return self.drop_dgram(DropReason::Untrusted);
        }
        self.proxy_key = Some(ProxyKeyStore { key_blob, dh_blob });
        self.key_req_at = None;
        self.send_key_req = false;
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

    /// A datagram whose type byte says FILESEG: the same checks, in the same order, as
    /// [`Self::handle_datagram`] and [`Self::dispatch`] make, without building a [`Message`]
    /// (this is the path of nearly every datagram a receiver gets).
    fn on_plain_fileseg<S: Storage>(&mut self, now: Instant, bytes: &[u8], storage: &mut S) {
        match Repr::parse_fileseg(bytes) {
            Ok((header, seg)) => self.fileseg(now, &header, &seg, storage),
            Err(_) => self.drop_dgram(DropReason::Malformed),
        }
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

    #[inline]
    fn fileseg<S: Storage>(
        &mut self,
        now: Instant,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
        storage: &mut S,
    ) {
        let id = SessionId {
            group_id: header.group_id,
            group_inst: header.group_inst,
        };
        let Some(idx) = self.find_session(id) else {
            return self.drop_dgram(DropReason::UnknownSession);
        };
        let s = self.sessions[idx].as_ref().expect("found above");
        if header.src_id != s.server_id {
            return self.drop_dgram(DropReason::WrongServer);
        }
        if s.keys.is_some() {
            // Encrypted sessions carry FILESEGs inside ENCRYPTED only.
            return self.drop_dgram(DropReason::Unauthenticated);
        }
        let Some(newest) = self.heard(now, idx, header, true) else {
            return self.drop_dgram(DropReason::Misordered);
        };
        self.on_fileseg(now, idx, header, seg, newest, storage);
    }

    /// Notes an authentic server message of session `idx`: liveness, GRTT and the highest
    /// sequence number. `None`: the message is too far behind that number (`ordered`: the
    /// message is one that the misordering rule applies to); else whether it is the newest.
    fn heard(
        &mut self,
        now: Instant,
        idx: usize,
        header: &HeaderRepr,
        ordered: bool,
    ) -> Option<bool> {
        let s = self.sessions[idx].as_mut().expect("caller checked");
        if ordered {
            let behind = s.max_seq.wrapping_sub(header.seq);
            if behind > MAX_MISORDER && behind < 0x8000 {
                return None;
            }
        }
        s.last_heard = now;
        s.set_grtt(header.grtt);
        if let Some(cc) = s.cc.as_mut() {
            s.gsize = header.gsize;
            cc.on_seq(now, header.seq, s.grtt);
        }
        // Highest seq so far? (A FILESEG uses it for the section-boundary NAK rule.)
        let ahead = header.seq.wrapping_sub(s.max_seq);
        let newest = ahead != 0 && ahead < 0x8000;
        if newest {
            s.max_seq = header.seq;
        }
        Some(newest)
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

    /// KEYINFO: our entry carries the group master. Taking it confirms the registration.
    fn on_keyinfo(&mut self, now: Instant, idx: usize, h: &HeaderRepr, k: &KeyInfoRepr<'_>) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let Some(keys) = s.keys.as_mut() else {
            return self.drop_dgram(DropReason::Unexpected);
        };
        let Some(entry) = k.entries.iter().find(|e| e.client_id == uid) else {
            return;
        };
        let group = client_keys::accept_keyinfo(
            keys,
            VERSION,
            h.src_id,
            k.iv_ctr,
            &entry.group_master,
            s.id.group_id,
            &s.private_addr,
        );
        let Ok(group) = group else {
            return self.drop_dgram(DropReason::Encrypted);
        };
        match &keys.group {
            // A repeat: our KEYINFO_ACK was lost. (A different master is a forgery or a
            // corruption that happened to unpad: keep the first.)
            Some(g) => {
                if g.master == group.master {
                    s.send_keyinfo_ack = true;
                }
            }
            None => {
                keys.group = Some(group);
                s.send_keyinfo_ack = true;
                if s.phase == Phase::Registering {
                    s.phase = Phase::Receiving;
                    s.send_register = false;
                    s.send_client_key = false;
                    s.last_heard = now;
                    let session = s.id;
                    self.event(Event::Registered { session });
                }
            }
        }
    }

    /// Frees a slot held by a session that never got past registration (the oldest), so that
    /// a flood of ANNOUNCEs for sessions that never confirm cannot lock real ones out.
    fn evict<S: Storage>(&mut self, storage: &mut S) -> bool {
        let oldest = (0..SESSIONS)
            .filter_map(|i| {
                let s = self.sessions[i].as_ref()?;
                (s.phase == Phase::Registering).then_some((s.announce_rx, i))
            })
            .min();
        match oldest {
            Some((_, idx)) => {
                let result = SessionResult::Aborted(AbortReason::TooManySessions);
                self.end_session(idx, result, None, storage);
                true
            }
            None => false,
        }
    }

    /// Reports a silent refusal once per (session, server).
    fn refuse_quietly(
        &mut self,
        id: SessionId,
        h: &HeaderRepr,
        from: SocketAddr,
        reason: AbortReason,
        fingerprint: Option<Fingerprint>,
    ) {
        self.drop_dgram(DropReason::Untrusted);
        let key = (id, h.src_id);
        if self.quiet.iter().any(|q| *q == key) {
            return;
        }
        if self.quiet.is_full() {
            let _ = self.quiet.pop_front();
        }
        let _ = self.quiet.push_back(key);
        self.event(Event::Refused {
            session: id,
            server_id: h.src_id,
            server: from,
            reason,
            fingerprint,
            detail: None,
            aborted: false,
        });
    }

    fn on_announce<S: Storage>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        h: &HeaderRepr,
        a: &AnnounceRepr<'_>,
        datagram: &[u8],
        storage: &mut S,
    ) {
        let id = SessionId {
            group_id: h.group_id,
            group_inst: h.group_inst,
        };
        let uid = self.config.uid;
        if let Some(s) = self.sessions.iter_mut().flatten().find(|s| s.id == id) {
            if s.server_id != h.src_id {
                return self.drop_dgram(DropReason::WrongServer);
            }
            // An encrypted session's ANNOUNCE repeats its server random; one that does not is
            // not from our server.
            let same = match (&s.keys, &a.enc_info) {
                (None, None) => true,
                (Some(k), Some(e)) => k.rand1 == e.rand1,
                _ => false,
            };
            if !same {
                return self.drop_dgram(DropReason::Untrusted);
            }
            // The server is alive: in an open group it keeps announcing for ROBUST rounds after
            // confirming us, longer than our idle timeout may be.
            s.last_heard = now;
            // A repeated ANNOUNCE while we wait for REG_CONF: our REGISTER may have been lost.
            if s.phase == Phase::Registering
                && (a.client_ids.is_empty() || lists(&a.client_ids, uid))
            {
                s.announce_ts = a.timestamp;
                s.announce_rx = now;
                s.send_register = true;
                s.set_grtt(h.grtt);
            }
            return;
        }
        if self.ended.iter().any(|e| *e == id) {
            return;
        }
        if !(10..=50).contains(&a.robust) || !(512..=8800).contains(&a.blocksize) || h.src_id == 0 {
            return self.drop_dgram(DropReason::BadAnnounce);
        }
        let ours = a.public_addr.is_unspecified()
            || self.config.public_addrs.is_empty()
            || self.config.public_addrs.contains(&a.public_addr);
        if !ours {
            return self.drop_dgram(DropReason::BadAnnounce);
        }
        if !a.client_ids.is_empty() && !lists(&a.client_ids, uid) {
            // Closed group without us.
            return;
        }
        let proxy = match (&self.config.response_proxy, &self.proxy_key) {
            (None, _) => client_keys::ProxyRoute::Direct,
            (Some(_), None) => client_keys::ProxyRoute::Pending,
            (Some(_), Some(k)) => client_keys::ProxyRoute::Known {
                key_blob: &k.key_blob,
                dh_blob: &k.dh_blob,
            },
        };
        let policy = client_keys::Policy {
            servers: &self.config.servers,
            ec_keys: &self.config.ec_keys,
            require_encryption: self.config.require_encryption,
            allow_weak: self.config.allow_weak,
            proxy,
        };
        let negotiated =
            client_keys::negotiate(&policy, &mut self.rsa, &mut self.drbg, h, a, datagram, from);
        let (keys, refuse) = match negotiated {
            Err(Refusal::Quiet(reason, fingerprint)) => {
                return self.refuse_quietly(id, h, from, reason, fingerprint)
            }
            // Without the response proxy's key yet, this session is not refused for good:
            // a later ANNOUNCE of it is taken once PROXY_KEY has come.
            Err(Refusal::Abort(AbortReason::ProxyKeyMissing, _)) => {
                return self.refuse_quietly(id, h, from, AbortReason::ProxyKeyMissing, None)
            }
            Err(Refusal::Abort(reason, detail)) => (None, Some((reason, detail))),
            Ok(keys) => {
                let refuse = if a.flags & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW)
                    != 0
                    && h.group_inst != 0
                {
                    Some(AbortReason::SyncWithRestart)
                } else if !matches!(a.cc_type, CcType::None | CcType::Tfmcc) {
                    Some(AbortReason::CongestionControlUnsupported)
                } else if self.sessions.iter().all(Option::is_some) && !self.evict(storage) {
                    Some(AbortReason::TooManySessions)
                } else {
                    None
                };
                (keys, refuse.map(|r| (r, None)))
            }
        };
        if let Some((reason, detail)) = refuse {
            self.remember_ended(id);
            self.oneshot(Oneshot {
                dest: self.reply_addr(from),
                session: id,
                seq: 0,
                reason,
                seal: None,
            });
            return self.event(Event::Refused {
                session: id,
                server_id: h.src_id,
                server: from,
                reason,
                fingerprint: None,
                detail,
                aborted: true,
            });
        }
        let grtt = Duration::from_micros(h.grtt.as_micros());
        let (cipher, hash, weak) = match &keys {
            Some(k) => (k.keytype, k.hashtype, k.weak),
            None => (KeyType::None, HashType::None, None),
        };
        let fingerprint = a
            .enc_info
            .as_ref()
            .map(|e| crate::crypto::Fingerprint::of(e.key_blob));
        let reply = self.reply_addr(from);
        let mut s = Session {
            id,
            server_id: h.src_id,
            server: reply,
            private_addr: a.private_addr,
            blocksize: a.blocksize,
            robust: a.robust,
            grtt,
            grtt_code: h.grtt,
            idle_base_us: micros((grtt * u32::from(a.robust)).max(MIN_TIMEOUT)),
            announce_wait_us: micros(grtt * 3 * u32::from(a.robust)),
            phase: Phase::Registering,
            max_seq: h.seq,
            my_seq: 0,
            last_heard: now,
            announce_ts: a.timestamp,
            announce_rx: now,
            send_register: true,
            register_next: now,
            register_expire: now,
            file: None,
            send_complete0: false,
            complete_next: now,
            complete_deadline: now,
            keys,
            send_client_key: false,
            send_keyinfo_ack: false,
            cc: (a.cc_type == CcType::Tfmcc).then(|| ReceiverCc::new(a.blocksize)),
            gsize: h.gsize,
            sync: a.flags & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW),
        };
        s.register_next = now + grtt * 4;
        s.register_expire = now + s.long_timeout();
        let slot = self
            .sessions
            .iter()
            .position(Option::is_none)
            .expect("a free slot was checked");
        self.sessions[slot] = Some(s);
        self.event(Event::SessionStarted {
            session: id,
            server_id: h.src_id,
            server: reply,
            private_addr: a.private_addr,
            cipher,
            hash,
            fingerprint,
            weak,
        });
    }

    fn on_fileinfo<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        fi: &FileInfoRepr<'_>,
        storage: &mut S,
    ) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        if !fi.client_ids.is_empty() && !lists(&fi.client_ids, uid) {
            return;
        }
        if s.phase == Phase::Completing {
            return self.drop_dgram(DropReason::Unexpected);
        }
        if s.phase == Phase::Registering {
            // Our REG_CONF was lost, but a FILEINFO naming us confirms the registration.
            s.phase = Phase::Receiving;
            s.send_register = false;
            let session = s.id;
            self.event(Event::Registered { session });
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let session = s.id;
        if let Some(f) = s.file.as_mut() {
            if f.file_id == fi.file_id {
                // A repeat: our answer was lost.
                f.info_ts = fi.timestamp;
                f.info_rx = now;
                match f.state {
                    FileState::Receiving => f.send_ack = true,
                    FileState::Done(_) => f.send_complete = true,
                }
                return;
            }
            if f.state == FileState::Receiving {
                let file_id = f.file_id;
                s.file = None;
                storage.discard(session, file_id);
                self.event(Event::FileAborted { session, file_id });
            }
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let layout = match fi.ftype {
            FileType::Regular => FileLayout::new(fi.size, s.blocksize).ok(),
            _ => FileLayout::new(0, s.blocksize).ok(),
        };
        let mut file = File {
            file_id: fi.file_id,
            layout: layout.unwrap_or(FileLayout {
                size: 0,
                blocksize: s.blocksize,
                blocks: 0,
                sections: 0,
                big: 0,
                small: 0,
                big_sections: 0,
            }),
            state: FileState::Done(CompleteStatus::Rejected),
            received: 0,
            last_section: 0,
            nak: None,
            status: None,
            info_ts: fi.timestamp,
            info_rx: now,
            send_ack: false,
            send_complete: true,
            freespace: None,
            resumed: false,
            overwrite: false,
            quick_status: false,
        };
        let sync = s.sync;
        let kind = match fi.ftype {
            FileType::Regular => Some(ItemKind::Regular),
            FileType::Directory => Some(ItemKind::Directory),
            FileType::Symlink => Some(ItemKind::Symlink { target: fi.link }),
            FileType::Delete => Some(ItemKind::Delete),
            _ => None,
        };
        let result = if fi.ftype == FileType::FreeSpace {
            file.freespace = Some(storage.free_space(session).unwrap_or(0));
            Ok(())
        } else if !name_is_acceptable(fi.name) {
            Err(Reject::BadName)
        } else if layout.is_none() {
            Err(Reject::Unsupported)
        } else if let Some(kind) = kind {
            if let ItemKind::Symlink { target } = kind {
                if target.is_empty() || target.contains(&0) {
                    return self.reject(idx, file, Reject::BadName);
                }
            }
            let item = Item {
                session,
                file_id: fi.file_id,
                name: fi.name,
                kind,
                size: fi.size,
                mtime: fi.mtime,
                layout: file.layout,
            };
            if sync & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW) != 0 {
                let status = sync_status(&item, storage.existing(&item));
                let preview = sync & ANNOUNCE_FLAG_SYNC_PREVIEW != 0;
                if preview || status == CompleteStatus::Skipped {
                    return self.skip(idx, file, fi.size, status, preview);
                }
                file.overwrite = status == CompleteStatus::Overwrite;
            }
            storage.open(&item).and_then(|()| {
                if kind != ItemKind::Regular {
                    return Ok(());
                }
                let resumed = session.group_inst != 0 && storage.resumed(&item);
                let (need, blocks) = (file.layout.bitmap_len(), file.layout.blocks);
                match storage.block_map(session) {
                    Some(m) if m.len() >= need => {
                        if resumed {
                            file.received = nak::count(m, blocks as usize) as u32;
                            file.resumed = file.received > 0;
                        } else {
                            m[..need].fill(0);
                        }
                        Ok(())
                    }
                    _ => {
                        storage.discard(session, fi.file_id);
                        Err(Reject::Io)
                    }
                }
            })
        } else {
            Err(Reject::Unsupported)
        };
        if let Err(reason) = result {
            return self.reject(idx, file, reason);
        }
        self.event(Event::FileStarted {
            session,
            file_id: fi.file_id,
            kind: fi.ftype,
            size: fi.size,
        });
        if fi.ftype == FileType::Regular && file.layout.blocks > 0 && !file.complete() {
            file.state = FileState::Receiving;
            file.send_ack = true;
            file.send_complete = false;
            file.quick_status = file.resumed;
        } else {
            if fi.ftype == FileType::Regular {
                if let Err(reason) = storage.finish(session, fi.file_id) {
                    return self.reject(idx, file, reason);
                }
            }
            file.state = FileState::Done(file.final_status());
            self.event(Event::FileFinished {
                session,
                file_id: fi.file_id,
                size: fi.size,
                overwrite: file.overwrite,
            });
        }
        if let Some(s) = self.sessions[idx].as_mut() {
            s.file = Some(file);
        }
    }

    /// Sync mode answers the item at once with `status`, storing nothing.
    fn skip(&mut self, idx: usize, file: File, size: u64, status: CompleteStatus, preview: bool) {
        let file_id = file.file_id;
        let Some(session) = self.answer_early(idx, file, status) else {
            return;
        };
        self.event(Event::FileSkipped {
            session,
            file_id,
            size,
            status,
            preview,
        });
    }

    fn reject(&mut self, idx: usize, file: File, reason: Reject) {
        let file_id = file.file_id;
        let Some(session) = self.answer_early(idx, file, CompleteStatus::Rejected) else {
            return;
        };
        self.event(Event::FileRejected {
            session,
            file_id,
            reason,
        });
    }

    /// Ends `file` without data: COMPLETE with `status` is due next (no FILEINFO_ACK), and the
    /// file is the session's current one. Returns the session, if it still exists.
    fn answer_early(
        &mut self,
        idx: usize,
        mut file: File,
        status: CompleteStatus,
    ) -> Option<SessionId> {
        file.state = FileState::Done(status);
        file.send_complete = true;
        file.send_ack = false;
        let s = self.sessions[idx].as_mut()?;
        s.file = Some(file);
        Some(s.id)
    }

    /// CONG_CTRL (digest §3.18): our RTT and whether we are the CLR (listed first with the CLR
    /// flag), and the round it advertises. Sessions without TFMCC pass it by.
    fn on_cong_ctrl(&mut self, now: Instant, idx: usize, h: &HeaderRepr, c: &CongCtrlRepr<'_>) {
        let uid = self.config.uid;
        let u = self.uniform();
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let grtt = s.grtt;
        let gsize = s.gsize.count();
        let Some(cc) = s.cc.as_mut() else {
            return;
        };
        let clr = c
            .items
            .get(0)
            .is_some_and(|i| i.client_id == uid && i.flags & crate::wire::CC_FLAG_CLR != 0);
        let ours = c
            .items
            .iter()
            .find(|i| i.client_id == uid)
            .map(|i| (i.flags, Duration::from_micros(i.rtt.as_micros())));
        cc.on_cong_ctrl(now, h.seq, c.timestamp, ours, clr);
        cc.on_round(now, c.cc_seq, c.cc_rate, grtt, gsize, u);
    }

    /// A number uniform in (0, 1], for the feedback timer.
    fn uniform(&mut self) -> f64 {
        let r = u32::from_be_bytes(self.drbg.bytes::<4>());
        (f64::from(r) + 1.0) / 4_294_967_296.0
    }

    fn on_fileseg<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
        newest: bool,
        storage: &mut S,
    ) {
        if self.sessions[idx].as_ref().is_some_and(|s| s.cc.is_some()) {
            self.fileseg_cc(now, idx, header, seg);
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let session = s.id;
        let grtt = s.grtt;
        let Some(f) = s.file.as_mut().filter(|f| f.file_id == seg.file_id) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        if f.state != FileState::Receiving {
            // Blocks resent for others after we finished.
            return;
        }
        let Some(block) = f.layout.block_of(seg.section, u32::from(seg.sec_block)) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        if seg.data.len() != f.layout.block_len(block) {
            return self.drop_dgram(DropReason::BadBlock);
        }
        f.quick_status = false;
        if newest && seg.section > f.last_section {
            // A new section began: NAK what is missing before it, 1×GRTT from now (§4.2).
            let to = seg.section - 1;
            match f.nak.as_mut() {
                Some(t) => t.to = t.to.max(to),
                None => {
                    f.nak = Some(NakTimer {
                        at: now + grtt,
                        from: f.last_section,
                        to,
                        requested: false,
                    })
                }
            }
            f.last_section = seg.section;
        }
        let file_id = f.file_id;
        let offset = f.layout.offset(block);
        let have = match storage.block_map(session) {
            Some(m) => nak::get(m, block as usize),
            None => {
                return self.end_session(
                    idx,
                    SessionResult::Aborted(AbortReason::WriteFailed),
                    Some(AbortReason::WriteFailed),
                    storage,
                )
            }
        };
        if have {
            self.stats.duplicate_blocks += 1;
            return;
        }
        if storage.write(session, file_id, offset, seg.data).is_err() {
            return self.end_session(
                idx,
                SessionResult::Aborted(AbortReason::WriteFailed),
                Some(AbortReason::WriteFailed),
                storage,
            );
        }
        if let Some(m) = storage.block_map(session) {
            nak::set(m, block as usize);
        }
        self.stats.blocks += 1;
        if let Some(f) = self.sessions[idx].as_mut().and_then(|s| s.file.as_mut()) {
            f.received += 1;
        }
    }

    /// A FILESEG of a TFMCC session: bytes for slow start, and the round it advertises.
    #[inline(never)]
    fn fileseg_cc(&mut self, now: Instant, idx: usize, header: &HeaderRepr, seg: &FileSegRepr<'_>) {
        let u = match seg.tfmcc {
            Some(_) => self.uniform(),
            None => 1.0,
        };
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let (grtt, gsize) = (s.grtt, s.gsize.count());
        let Some(cc) = s.cc.as_mut() else {
            return;
        };
        cc.on_fileseg(now, header.seq, grtt);
        if let Some(info) = seg.tfmcc {
            cc.on_round(now, info.cc_seq, info.cc_rate, grtt, gsize, u);
        }
    }

    fn on_done<S: Storage>(&mut self, now: Instant, idx: usize, d: &DoneRepr<'_>, storage: &mut S) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let listed = lists(&d.client_ids, uid);
        if !listed && !d.client_ids.is_empty() {
            return;
        }
        if d.file_id == 0 {
            if !listed {
                return;
            }
            if s.phase == Phase::Registering {
                return self.drop_dgram(DropReason::Unexpected);
            }
            if let Some(f) = s.file.as_ref() {
                if f.state == FileState::Receiving {
                    // The server is done but we are not: that file is lost.
                    let (session, file_id) = (s.id, f.file_id);
                    s.file = None;
                    storage.discard(session, file_id);
                    self.event(Event::FileAborted { session, file_id });
                }
            }
            let s = self.sessions[idx].as_mut().expect("caller checked");
            if s.phase != Phase::Completing {
                s.phase = Phase::Completing;
                s.complete_deadline = now + s.long_timeout();
            }
            s.send_complete0 = true;
            s.complete_next = now + s.grtt * 4;
            return;
        }
        let grtt = s.grtt;
        let Some(f) = s.file.as_mut().filter(|f| f.file_id == d.file_id) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        match f.state {
            FileState::Done(_) => f.send_complete |= listed,
            FileState::Receiving if f.complete() && listed => self.finish_file(idx, storage),
            FileState::Receiving => {
                let to = d.section.min(f.layout.sections.saturating_sub(1));
                // A resumed file's first DONE comes before any data: answer it at once.
                let delay = if core::mem::take(&mut f.quick_status) {
                    Duration::ZERO
                } else {
                    grtt
                };
                match f.nak.as_mut() {
                    Some(t) => {
                        t.to = t.to.max(to);
                        t.requested |= listed;
                    }
                    None => {
                        f.nak = Some(NakTimer {
                            at: now + delay,
                            from: f.last_section.min(to),
                            to,
                            requested: listed,
                        })
                    }
                }
            }
        }
    }

    fn finish_file<S: Storage>(&mut self, idx: usize, storage: &mut S) {
        let Some(s) = self.sessions[idx].as_mut() else {
            return;
        };
        let session = s.id;
        let Some(f) = s.file.as_mut() else {
            return;
        };
        f.nak = None;
        f.status = None;
        f.send_complete = true;
        let file_id = f.file_id;
        let size = f.layout.size;
        match storage.finish(session, file_id) {
            Ok(()) => {
                f.state = FileState::Done(f.final_status());
                let overwrite = f.overwrite;
                self.event(Event::FileFinished {
                    session,
                    file_id,
                    size,
                    overwrite,
                });
            }
            Err(reason) => {
                f.state = FileState::Done(CompleteStatus::Rejected);
                storage.discard(session, file_id);
                self.event(Event::FileRejected {
                    session,
                    file_id,
                    reason,
                });
            }
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
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether [`Receiver::poll_event`] has something.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Writes the next datagram to send into `buf`, if any.
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

    #[inline(never)]
    fn transmit<S: Storage>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        storage: &mut S,
    ) -> Option<Transmit> {
        let uid = self.config.uid;
        if core::mem::take(&mut self.send_key_req) {
            if let Some(proxy) = self.config.response_proxy {
                // KEY_REQ, like heartbeats, carries group 0 and seq 0 (digest §2.1).
                let header = HeaderRepr {
                    seq: 0,
                    src_id: uid,
                    group_id: 0,
                    group_inst: 0,
                    grtt: Grtt(0),
                    gsize: GroupSize(0),
                };
                let msg = Message::KeyReq(crate::wire::KeyReqRepr);
                match emit_datagram(&header, &msg, buf, None) {
                    Some(len) => {
                        return Some(Transmit {
                            dest: proxy.addr,
                            len,
                        })
                    }
                    None => self.stats.transmit_errors += 1,
                }
            }
        }
        if let Some(t) =
            self.heartbeat
                .poll_transmit(buf, self.config.heartbeat_key.as_ref(), &self.rsa)
        {
            self.event(Event::HeartbeatSent { to: t.dest });
            return Some(t);
        }
        while let Some(o) = self.oneshots.pop_front() {
            let header = HeaderRepr {
                seq: o.seq,
                src_id: uid,
                group_id: o.session.group_id,
                group_inst: o.session.group_inst,
                grtt: Grtt(0),
                gsize: GroupSize(0),
            };
            let msg = Message::Abort(AbortRepr {
                flags: 0,
                host: 0,
                reason: o.reason.as_str().as_bytes(),
            });
            let envelope = o.seal.as_ref().and_then(|w| {
                let keys = SessionKeys::group(w.keytype, w.hashtype, &w.master, &w.rand1).ok()?;
                Some((Envelope::new(&keys).ok()?, w.ctr))
            });
            if o.seal.is_some() && envelope.is_none() {
                self.stats.transmit_errors += 1;
                continue;
            }
            let seal = envelope.as_ref().map(|(e, c)| (e, *c));
            match emit_datagram(&header, &msg, buf, seal) {
                Some(len) => return Some(Transmit { dest: o.dest, len }),
                None => self.stats.transmit_errors += 1,
            }
        }
        for idx in 0..SESSIONS {
            while let Some(out) = self.next_output(idx, storage) {
                if let Some(t) = self.build(idx, out, now, buf, storage) {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Picks (and clears the flag of) the next datagram session `idx` owes its server.
    fn next_output<S: Storage>(&mut self, idx: usize, storage: &mut S) -> Option<Output> {
        let s = self.sessions[idx].as_mut()?;
        if s.send_register {
            s.send_register = false;
            s.send_client_key = s.keys.as_ref().is_some_and(|k| k.client_auth);
            return Some(Output::Register);
        }
        if s.send_client_key {
            s.send_client_key = false;
            return Some(Output::ClientKey);
        }
        if s.send_keyinfo_ack {
            s.send_keyinfo_ack = false;
            return Some(Output::KeyInfoAck);
        }
        let session = s.id;
        if let Some(f) = s.file.as_mut() {
            if f.send_ack {
                f.send_ack = false;
                return Some(Output::FileInfoAck);
            }
            if f.send_complete {
                f.send_complete = false;
                return Some(Output::Complete);
            }
            if let Some((next, last)) = f.status {
                let found = storage
                    .block_map(session)
                    .and_then(|m| (next..=last).find(|&sec| section_has_holes(&f.layout, m, sec)));
                match found {
                    Some(sec) => {
                        f.status = (sec < last).then_some((sec + 1, last));
                        return Some(Output::Status(sec));
                    }
                    None => f.status = None,
                }
            }
        }
        if s.send_complete0 {
            s.send_complete0 = false;
            return Some(Output::Complete0);
        }
        // Feedback only while a file is being received: a server between files or past the
        // data takes CC_ACK as an invalid message.
        let receiving = s
            .file
            .as_ref()
            .is_some_and(|f| f.state == FileState::Receiving);
        if let Some(cc) = s.cc.as_mut().filter(|c| c.send_ack) {
            cc.send_ack = false;
            if receiving {
                cc.acks_sent += 1;
                return Some(Output::CcAck);
            }
        }
        None
    }

    fn build<S: Storage>(
        &mut self,
        idx: usize,
        out: Output,
        now: Instant,
        buf: &mut [u8],
        storage: &mut S,
    ) -> Option<Transmit> {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut()?;
        let header = s.header(uid);
        let dest = s.server;
        let session = s.id;
        // Everything but REGISTER and CLIENT_KEY is sealed once the group keys are here.
        let sealed = s.keys.as_ref().is_some_and(|k| k.group.is_some())
            && !matches!(out, Output::Register | Output::ClientKey);
        let ctr = match s.keys.as_mut() {
            Some(k) if sealed => k.next_ctr(),
            _ => 0,
        };
        let s = self.sessions[idx].as_ref()?;
        let envelope = s
            .keys
            .as_ref()
            .and_then(|k| k.group.as_ref())
            .filter(|_| sealed)
            .map(|g| (&g.envelope, ctr));
        let message = match out {
            Output::Register => {
                let (rand2, keyinfo) = match &s.keys {
                    Some(k) => (k.rand2, &k.keyinfo[..]),
                    None => ([0; 32], &[][..]),
                };
                Message::Register(RegisterRepr {
                    timestamp: echo(s.announce_ts, s.announce_rx, now),
                    rand2,
                    keyinfo,
                    client_ids: IdList::EMPTY,
                })
            }
            Output::ClientKey => {
                let k = s.keys.as_ref()?;
                Message::ClientKey(ClientKeyRepr {
                    key_blob: &k.own_blob,
                    signature: &k.signature,
                })
            }
            Output::KeyInfoAck => {
                let g = s.keys.as_ref()?.group.as_ref()?;
                Message::KeyInfoAck(KeyInfoAckRepr {
                    verify_data: g.verify_data,
                })
            }
            Output::CcAck => Message::CcAck(CcAckRepr {
                tfmcc: s.cc.as_ref()?.ack_info(now, s.grtt, uid),
            }),
            Output::Complete0 => Message::Complete(CompleteRepr {
                file_id: 0,
                status: CompleteStatus::Normal,
                freespace: None,
                client_ids: IdList::EMPTY,
            }),
            Output::FileInfoAck => {
                let f = s.file.as_ref()?;
                Message::FileInfoAck(FileInfoAckRepr {
                    file_id: f.file_id,
                    flags: if f.resumed {
                        FILEINFO_ACK_FLAG_PARTIAL
                    } else {
                        0
                    },
                    timestamp: echo(f.info_ts, f.info_rx, now),
                    client_ids: IdList::EMPTY,
                })
            }
            Output::Complete => {
                let f = s.file.as_ref()?;
                let status = match f.state {
                    FileState::Done(st) => st,
                    FileState::Receiving => CompleteStatus::Normal,
                };
                Message::Complete(CompleteRepr {
                    file_id: f.file_id,
                    status,
                    freespace: f.freespace.map(|freespace| FreeSpaceInfoRepr { freespace }),
                    client_ids: IdList::EMPTY,
                })
            }
            Output::Status(sec) => {
                let f = s.file.as_ref()?;
                let layout = f.layout;
                let status = StatusRepr {
                    file_id: f.file_id,
                    section: sec,
                    tfmcc: s.cc.as_ref().map(|c| c.ack_info(now, s.grtt, uid)),
                    naks: &[],
                };
                // The bitmap is written straight into `buf` from the block map.
                let off = envelope.map_or(HEADER_LEN, |(e, _)| e.inner_offset());
                let body = off + status.buffer_len();
                let len = layout.nak_bitmap_len(sec);
                let map = storage.block_map(session)?;
                let start = layout.section_start(sec)? as usize;
                let built = (|| {
                    let bits = buf.get_mut(body..body + len)?;
                    bits.fill(0);
                    for i in 0..layout.section_blocks(sec) as usize {
                        if !nak::get(map, start + i) {
                            nak::set(bits, i);
                        }
                    }
                    status.emit(&mut buf[off..]).ok()?;
                    match envelope {
                        Some((e, ctr)) => e.seal(buf, &header, body + len - off, ctr).ok(),
                        None => {
                            header.emit(Func::Status.into(), buf).ok()?;
                            Some(body + len)
                        }
                    }
                })();
                return match built {
                    Some(len) => Some(Transmit { dest, len }),
                    None => {
                        self.stats.transmit_errors += 1;
                        None
                    }
                };
            }
        };
        match emit_datagram(&header, &message, buf, envelope) {
            Some(len) => Some(Transmit { dest, len }),
            None => {
                self.stats.transmit_errors += 1;
                None
            }
        }
    }
}

/// Emits `message` under `header` into `buf`, sealed in an ENCRYPTED envelope when `seal` gives
/// one (with its IV counter value); returns the datagram length.
pub(super) fn emit_datagram(
    header: &HeaderRepr,
    message: &Message<'_>,
    buf: &mut [u8],
    seal: Option<(&Envelope, u64)>,
) -> Option<usize> {
    match seal {
        None => Repr {
            header: *header,
            message: *message,
        }
        .emit(buf)
        .ok(),
        Some((envelope, ctr)) => {
            let off = envelope.inner_offset();
            let n = message.emit(buf.get_mut(off..)?).ok()?;
            envelope.seal(buf, header, n, ctr).ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AnnounceRepr, DoneConfRepr, FileInfoRepr, RegConfRepr, ABORT_REASON_LEN};
    use core::net::{Ipv4Addr, SocketAddrV4};
    use std::collections::HashMap;
    use std::vec::Vec as StdVec;

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

    #[test]
    fn a_registered_client_waits_out_the_announce_phase_at_its_pace() {
        // The server announced with GRTT 0.5 s (rounds 1.5 s apart), then measured our RTT and
        // advertises 10 ms: the next round (for clients not yet registered) may still be over
        // a second away, and that silence must not time us out before the first FILEINFO.
        let mut b = Bench::new();
        let mut buf = [0u8; 9000];
        let mut h = header(0);
        h.grtt = Grtt::from_micros(500_000);
        let len = Repr {
            header: h,
            message: Message::Announce(announce(&[])),
        }
        .emit(&mut buf)
        .unwrap();
        b.rx.handle_datagram(ms(0), server(), &mut buf[..len], &mut b.mem);
        let _ = b.out(ms(0));
        b.seq = 1;
        b.send(
            ms(1),
            Message::RegConf(RegConfRepr {
                client_ids: IdList::Items(&[UID]),
            }),
        );
        b.timeout(ms(2_000));
        assert_eq!(
            b.rx.active_sessions(),
            1,
            "timed out during the announce phase"
        );
        // ... but not forever: ROBUST rounds at that pace, and it is over.
        b.timeout(ms(40_000));
        assert_eq!(b.rx.active_sessions(), 0);
    }

    #[test]
    fn announcements_keep_a_confirmed_session_alive() {
        // An open group announces for ROBUST rounds after confirming us; those rounds can last
        // longer than our idle timeout (here 1 s), and must not time us out.
        let mut b = Bench::new();
        b.registered();
        for t in (400..=3000).step_by(400) {
            b.timeout(ms(t));
            b.send(ms(t), Message::Announce(announce(&[])));
            b.out(ms(t));
        }
        let ended = b
            .events()
            .into_iter()
            .any(|e| matches!(e, Event::SessionEnded { .. }));
        assert!(
            !ended,
            "the session timed out while the server was still announcing"
        );
        assert_eq!(b.rx.active_sessions(), 1);
        // Silence does time it out.
        b.timeout(ms(5000));
        assert!(b
            .events()
            .into_iter()
            .any(|e| matches!(e, Event::SessionEnded { .. })));
    }

    #[test]
    fn registers_with_echoed_timestamp_and_retries_until_expiry() {
        let mut b = Bench::new();
        b.send(ms(0), Message::Announce(announce(&[])));
        let ev = b.events();
        assert!(matches!(
            ev[0],
            Event::SessionStarted { private_addr, .. } if private_addr == IpAddr::V4(PRIV)
        ));
        // Held 3 ms before answering: the echo carries it.
        let out = b.out(ms(3));
        assert_eq!(out.len(), 1);
        let Message::Register(r) = parse(&out[0]).message else {
            panic!("not a REGISTER")
        };
        assert_eq!(
            r.timestamp,
            Timestamp {
                secs: 1000,
                usecs: 3500
            }
        );
        assert!(r.keyinfo.is_empty());
        // Retries every 4×GRTT (GRTT ≈ 10 ms).
        let t = b.rx.poll_timeout().unwrap();
        assert!(t > ms(30) && t < ms(50), "{t:?}");
        b.timeout(t);
        assert_eq!(b.out(t).len(), 1);
        // Expires after max(4×ROBUST×GRTT, 1 s): ABORT to the server.
        let mut now;
        let mut registers = 1;
        loop {
            now = b.rx.poll_timeout().unwrap();
            b.timeout(now);
            let out = b.out(now);
            if b.rx.active_sessions() == 0 {
                let Message::Abort(a) = parse(&out[0]).message else {
                    panic!("expected ABORT")
                };
                assert_eq!(a.reason, b"Registration unconfirmed by server");
                break;
            }
            registers += out.len();
        }
        assert!(now >= ms(1000) && now < ms(1700), "{now:?}");
        assert!(registers > 10);
        assert!(b.events().iter().any(|e| matches!(
            e,
            Event::SessionEnded {
                result: SessionResult::Aborted(AbortReason::RegistrationTimedOut),
                ..
            }
        )));
        // Late ANNOUNCEs of that group are ignored.
        b.send(now, Message::Announce(announce(&[])));
        assert!(b.out(now).is_empty());
    }

    #[test]
    fn closed_group_registers_only_when_listed() {
        let mut b = Bench::new();
        b.send(
            ms(0),
            Message::Announce(announce(&[0x0a00_0009, 0x0a00_000a])),
        );
        assert!(b.out(ms(0)).is_empty());
        assert_eq!(b.rx.active_sessions(), 0);
        b.send(ms(1), Message::Announce(announce(&[0x0a00_0009, UID])));
        assert_eq!(b.out(ms(1)).len(), 1);
        // REG_CONF for someone else: still registering; for us: registered.
        b.send(
            ms(2),
            Message::RegConf(RegConfRepr {
                client_ids: IdList::Items(&[0x0a00_0009]),
            }),
        );
        b.send(
            ms(3),
            Message::RegConf(RegConfRepr {
                client_ids: IdList::Items(&[UID]),
            }),
        );
        assert!(b
            .events()
            .iter()
            .any(|e| matches!(e, Event::Registered { .. })));
        // No more REGISTERs once confirmed.
        b.timeout(ms(60));
        assert!(b.out(ms(60)).is_empty());
    }

    #[test]
    fn weak_or_rsa_announce_is_refused_with_abort() {
        // uftp 4.10.2's RSA-1024 / AES-256-CBC session: weak on two counts.
        let vector = include_bytes!("../../../tests/vectors/messages/announce-enc-rsa.bin");
        let mut b = Bench::new();
        b.rx.handle_datagram(ms(0), server(), &mut vector.to_vec(), &mut b.mem);
        let out = b.out(ms(0));
        let r = Repr::parse(&out[0]).unwrap();
        let Message::Abort(a) = r.message else {
            panic!("expected ABORT")
        };
        assert!(a.reason.starts_with(b"Weak encryption refused"));
        assert_eq!(b.rx.active_sessions(), 0);
        assert!(matches!(
            b.events()[0],
            Event::Refused {
                reason: AbortReason::WeakSession,
                detail: Some(_),
                aborted: true,
                ..
            }
        ));
        // Weak sessions allowed, but this receiver has no RSA.
        let mut b = Bench::new();
        b.rx.config.allow_weak = true;
        b.rx.handle_datagram(ms(0), server(), &mut vector.to_vec(), &mut b.mem);
        let out = b.out(ms(0));
        let Message::Abort(a) = Repr::parse(&out[0]).unwrap().message else {
            panic!("expected ABORT")
        };
        assert!(a.reason.starts_with(b"RSA not supported"));
    }

    #[test]
    fn a_flood_of_unconfirmed_sessions_cannot_lock_out_a_real_one() {
        let mut b = Bench::new();
        let mut buf = [0u8; 9000];
        // Forty ANNOUNCEs for sessions that will never confirm (4 slots).
        for g in 0..40u32 {
            let mut h = header(0);
            h.group_id = 0xbad0_0000 + g;
            let len = Repr {
                header: h,
                message: Message::Announce(announce(&[])),
            }
            .emit(&mut buf)
            .unwrap();
            b.rx.handle_datagram(ms(u64::from(g)), server(), &mut buf[..len], &mut b.mem);
        }
        assert_eq!(b.rx.active_sessions(), 4);
        let _ = b.out(ms(50));
        // The real server's session still gets a slot and registers.
        b.send(ms(60), Message::Announce(announce(&[])));
        let out = b.out(ms(60));
        let regs: StdVec<_> = out
            .iter()
            .map(|d| Repr::parse(d).unwrap())
            .filter(|r| r.header.group_id == GROUP && matches!(r.message, Message::Register(_)))
            .collect();
        assert_eq!(regs.len(), 1, "the real session registers");
        assert!(b.events().iter().all(|e| !matches!(
            e,
            Event::Refused {
                reason: AbortReason::TooManySessions,
                ..
            }
        )));
    }

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

    /// `-H`: a plain HB_REQ at once and, until answered, again after 1 s; a challenge from a
    /// proxy that pins our fingerprint is answered with a signed one that its check accepts;
    /// then the interval.
    #[test]
    fn heartbeats_open_the_pinhole_for_a_proxy_that_pins_our_key() {
        use crate::crypto::{CurveId, EcPrivateKey};
        use crate::session::proxy::heartbeat::HeartbeatAuth;
        let key = EcPrivateKey::from_scalar(CurveId::P256, &[0x42; 32]).unwrap();
        let mut blob = [0u8; 200];
        let n = key.public_key().emit_blob(&mut blob).unwrap();
        let fingerprint = Fingerprint::of(&blob[..n]);
        let proxy = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 1044));
        let me = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 1, 7), 1044));
        let mut config = Config::new(UID, [7; 32]);
        config.heartbeat_hosts.push(proxy).unwrap();
        config.heartbeat_interval = Duration::from_secs(20);
        config.heartbeat_key = Some(OwnKey::Ec(key));
        let mut rx: Receiver<2> = Receiver::new(config);
        let mut mem = Mem::default();
        let mut buf = [0u8; 1500];
        let mut drbg = Drbg::new(&[9; 32]);
        let mut auth = HeartbeatAuth::new(fingerprint, &mut drbg);
        let mut adopted = None;
        // Drives the receiver at `t`; returns the HB_REQs it sends, answered by the proxy.
        let mut step = |rx: &mut Receiver<2>, t: Instant, mem: &mut Mem| -> StdVec<HbResult> {
            if rx.poll_timeout().is_some_and(|d| t >= d) {
                rx.handle_timeout(t, mem);
            }
            let mut answers = StdVec::new();
            while let Some(tx) = rx.poll_transmit(t, &mut buf, mem) {
                assert_eq!(tx.dest, proxy);
                let mut req_bytes = buf[..tx.len].to_vec();
                let repr = Repr::parse(&req_bytes).unwrap();
                assert_eq!(repr.header.src_id, UID);
                let Message::HbReq(req) = repr.message else {
                    panic!("not an HB_REQ: {:?}", repr.message)
                };
                let a = auth.answer(&NoRsa, &mut drbg, adopted, me, &req);
                adopted = a.established.or(adopted);
                answers.push(a.result);
                let len = super::super::proxy::heartbeat::emit_hb_resp(
                    0x0a09_0001,
                    a.result,
                    a.nonce,
                    &mut req_bytes,
                )
                .unwrap();
                req_bytes.truncate(len);
                rx.handle_datagram(t, proxy, &mut req_bytes, mem);
            }
            answers
        };
        let t0 = Instant::ZERO;
        // The first plain heartbeat is challenged, the signed answer accepted.
        assert_eq!(
            step(&mut rx, t0, &mut mem),
            [HbResult::Challenge, HbResult::Ok]
        );
        let events: StdVec<Event> = core::iter::from_fn(|| rx.poll_event()).collect();
        assert!(events.contains(&Event::HeartbeatAnswered {
            from: proxy,
            result: HbResult::Ok
        }));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::HeartbeatSent { .. }))
                .count(),
            2
        );
        // Answered: the next one after the whole interval.
        assert_eq!(rx.poll_timeout(), Some(t0 + Duration::from_secs(20)));
        assert!(step(&mut rx, t0 + Duration::from_secs(19), &mut mem).is_empty());
        // The proxy adopted our address: a plain heartbeat is answered OK at once.
        assert_eq!(
            step(&mut rx, t0 + Duration::from_secs(20), &mut mem),
            [HbResult::Ok]
        );
        assert_eq!(adopted, Some(me));
    }

    /// A heartbeat nobody answers is repeated after 1 s, 2 s, 4 s… up to the interval.
    #[test]
    fn unanswered_heartbeats_are_repeated_sooner() {
        let proxy = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 1044));
        let mut config = Config::new(UID, [7; 32]);
        config.heartbeat_hosts.push(proxy).unwrap();
        config.heartbeat_interval = Duration::from_secs(5);
        let mut rx: Receiver<2> = Receiver::new(config);
        let mut mem = Mem::default();
        let mut buf = [0u8; 1500];
        let mut sent = StdVec::new();
        let mut t = Instant::ZERO;
        while t < Instant::from_micros(20_000_000) {
            if rx.poll_timeout().is_some_and(|d| t >= d) {
                rx.handle_timeout(t, &mut mem);
            }
            while let Some(tx) = rx.poll_transmit(t, &mut buf, &mut mem) {
                assert!(matches!(
                    Repr::parse(&buf[..tx.len]).unwrap().message,
                    Message::HbReq(_)
                ));
                sent.push(t.as_micros() / 1_000_000);
            }
            t = rx.poll_timeout().unwrap();
        }
        assert_eq!(sent, [0, 1, 3, 7, 12, 17]);
    }

    /// An HB_RESP from anyone but a heartbeat host is dropped, not taken for an answer.
    #[test]
    fn hb_resp_from_a_stranger_is_dropped() {
        let mut b = Bench::new();
        let mut buf = [0u8; 64];
        let len =
            super::super::proxy::heartbeat::emit_hb_resp(0x0a09_0001, HbResult::Ok, 0, &mut buf)
                .unwrap();
        b.rx.handle_datagram(ms(0), server(), &mut buf[..len], &mut b.mem);
        assert_eq!(
            b.rx.poll_event(),
            Some(Event::Dropped {
                reason: DropReason::Unexpected,
                count: 1
            })
        );
        assert_eq!(b.rx.poll_event(), None);
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
                assert!(
                    matches!(r.message, Message::Abort(a) if a.reason == b"Client shutting down")
                );
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
        seeds.push(include_bytes!("../../../tests/vectors/messages/fileinfo-link.bin").to_vec());
        seeds.push(include_bytes!("../../../tests/vectors/messages/abort.bin").to_vec());
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
}
