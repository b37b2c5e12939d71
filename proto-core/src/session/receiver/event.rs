//! What the receiver reports: events, session results, abort and drop reasons, counters.

use super::*;

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
