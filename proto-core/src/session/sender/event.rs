//! What the sender reports: events, outcomes, per-file statistics, counters and what it
//! knows of each client.

use super::*;

/// Why a client left the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// A listed client (closed group) never registered.
    NotRegistered,
    /// It stayed silent for `robust` rounds.
    NoResponse,
    /// It sent ABORT.
    Aborted,
    /// Still incomplete after `max_passes` passes; the sender aborted it.
    MaxPasses,
    /// It missed more than `max_nak_pct` of a section `max_nak_count` times (`-N`/`-m`); the
    /// sender aborted it.
    TooManyNaks,
    /// The session was aborted by the caller.
    SessionAborted,
}

/// Why the sender refused a client during the handshake (sent to it as the ABORT reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// REGISTER's key exchange failed: the RSA premaster does not decrypt, or the ECDH key is
    /// malformed or on another curve.
    KeyExchange,
    /// CLIENT_KEY's key blob is malformed, on a curve not implemented, or RSA without RSA
    /// support.
    BadClientKey,
    /// The client key's fingerprint is not the one pinned for this client.
    FingerprintMismatch,
    /// CLIENT_KEY's signature over the verify data does not verify.
    BadSignature,
    /// KEYINFO_ACK's verify data is wrong.
    BadVerifyData,
}

impl RefuseReason {
    /// The text sent in the ABORT and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::KeyExchange => {
                "Key exchange failed (undecryptable premaster or bad ECDH key)"
            }
            RefuseReason::BadClientKey => "Bad or unsupported client key",
            RefuseReason::FingerprintMismatch => "Client key fingerprint mismatch",
            RefuseReason::BadSignature => "Bad client key signature",
            RefuseReason::BadVerifyData => "Bad KEYINFO_ACK verify data",
        }
    }
}

impl core::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client's result for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileResult {
    /// COMPLETE with this status (normal, skipped, overwrite, rejected).
    Completed(CompleteStatus),
    /// It did not finish the file (lost, aborted, out of passes).
    Failed,
}

/// How the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every client that was still in the session confirmed its end.
    Completed,
    /// No client registered (uftp exit 7).
    NoClients,
    /// No client answered the first FILEINFO (uftp exit 8).
    NoFileInfoAck,
    /// Every client was lost along the way (uftp exit 9).
    AllDropped,
    /// The driver could not read a file or lent too small a resend map.
    SourceError,
    /// The caller aborted the session.
    Aborted,
}

/// Per-file figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    /// File ID.
    pub file_id: u16,
    /// Size in bytes.
    pub size: u64,
    /// Blocks in the file.
    pub blocks: u32,
    /// Passes made (0 when no client wanted the data).
    pub passes: u16,
    /// FILESEGs sent in pass 1.
    pub first_pass_blocks: u32,
    /// FILESEGs sent in later passes.
    pub retransmitted_blocks: u32,
    /// STATUS messages accepted.
    pub status_received: u32,
    /// NAK bits received, duplicates included.
    pub naks_received: u32,
    /// NAK bits that newly marked a block for resending (the union, per pass).
    pub naks_new: u32,
    /// Clients that completed it.
    pub completed: u16,
    /// Clients that failed it.
    pub failed: u16,
}

/// Whole-session figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Datagrams produced.
    pub datagrams_sent: u64,
    /// Bytes of those datagrams.
    pub bytes_sent: u64,
    /// FILESEGs produced, every pass.
    pub blocks_sent: u64,
    /// FILESEGs of pass 1.
    pub first_pass_blocks: u64,
    /// FILESEGs of later passes.
    pub retransmitted_blocks: u64,
    /// STATUS messages accepted.
    pub status_received: u64,
    /// NAK bits received.
    pub naks_received: u64,
    /// Datagrams dropped (malformed, foreign group, unknown client, stale file); the causes
    /// below are counted here too.
    pub dropped: u64,
    /// ENCRYPTED packets whose tag or HMAC did not verify.
    pub auth_failures: u64,
    /// ENCRYPTED packets whose counter the client's replay window had already seen (or that
    /// fell behind it).
    pub replays: u64,
    /// ENCRYPTED packets of the wrong length or signature length, or holding a message that is
    /// malformed or does not belong inside ENCRYPTED.
    pub malformed_encrypted: u64,
    /// Plaintext FILEINFO_ACK, STATUS, COMPLETE or ABORT where an encrypted session needs
    /// ENCRYPTED.
    pub unexpected_plaintext: u64,
    /// Clients refused during the handshake (each also an [`Event::ClientRefused`]).
    pub clients_refused: u64,
    /// Events dropped because the event queue was full (drain events after every call).
    pub events_dropped: u64,
    /// Responses taken from clients and proxies (REGISTER, CLIENT_KEY, KEYINFO_ACK,
    /// FILEINFO_ACK, STATUS, COMPLETE, ABORT); one from a proxy counts once, however many
    /// clients it stands for.
    pub responses: u64,
}

/// The session's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSummary {
    /// How it ended.
    pub outcome: Outcome,
    /// Clients that registered.
    pub registered: u16,
    /// Clients that confirmed the session's end.
    pub completed: u16,
    /// Clients lost.
    pub lost: u16,
    /// Items started.
    pub files: u32,
    /// Bytes of the regular files started.
    pub bytes: u64,
    /// Whole-session counters.
    pub counters: Counters,
}

/// Something the driver may want to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A client registered (REGISTER accepted, REG_CONF queued).
    ClientRegistered {
        /// Its ID.
        id: u32,
        /// Where it answers from.
        addr: SocketAddr,
    },
    /// A proxy registered (for the clients its REGISTER lists, each reported with
    /// [`Event::ClientRegistered`] at the proxy's address).
    ProxyRegistered {
        /// Its ID.
        id: u32,
        /// Where it answers from.
        addr: SocketAddr,
    },
    /// A client failed the handshake of an encrypted session; an ABORT went to it.
    ClientRefused {
        /// Its ID.
        id: u32,
        /// Why.
        reason: RefuseReason,
    },
    /// A client left the session.
    ClientLost {
        /// Its ID.
        id: u32,
        /// Why.
        reason: LostReason,
    },
    /// A client's report showed it is not keeping up with the rate sent, and the adaptive
    /// rate control ([`SenderConfig::adaptive_rate`]) lowered the rate for it: this client is
    /// holding the group back.
    SlowClient {
        /// Its ID.
        id: u32,
        /// The section it reported.
        section: u16,
        /// Share of the section it received, per mille.
        received_permille: u16,
        /// The rate it received at, bytes per second.
        delivered: u64,
        /// The rate being sent, bytes per second.
        sent: u64,
        /// The new rate, bytes per second.
        rate: u64,
    },
    /// The announce phase is over.
    AnnounceDone {
        /// Clients registered.
        clients: u16,
    },
    /// A client's result for an item.
    FileResult {
        /// Client ID.
        id: u32,
        /// Item.
        file_id: u16,
        /// Result.
        result: FileResult,
    },
    /// TFMCC: the rate or the CLR changed (reported when the CLR changes or the rate moves by
    /// more than a tenth).
    RateChanged {
        /// Bytes per second.
        rate: u64,
        /// The current limiting receiver.
        clr: Option<u32>,
        /// The group round-trip time.
        grtt: Duration,
    },
    /// A client answered a free-space query (`@FREESPACE`) with the free bytes in its
    /// primary destination directory (COMPLETE's EXT_FREESPACE_INFO, digest §3.12).
    FreeSpace {
        /// Client ID.
        id: u32,
        /// The query's item.
        file_id: u16,
        /// Free bytes.
        bytes: u64,
    },
    /// A data pass began.
    PassStarted {
        /// Item.
        file_id: u16,
        /// Pass number, from 1.
        pass: u16,
        /// Blocks this pass will send.
        blocks: u32,
    },
    /// A data pass ended (its last FILESEG is out; DONE follows).
    PassDone {
        /// Item.
        file_id: u16,
        /// Pass number.
        pass: u16,
        /// FILESEGs it sent.
        blocks_sent: u32,
    },
    /// An item is finished; each client's [`Event::FileResult`] came before.
    FileDone(FileStats),
    /// A client confirmed the session's end (COMPLETE for file 0).
    ClientDone {
        /// Its ID.
        id: u32,
    },
    /// The session is over; nothing more will be sent.
    SessionDone(SessionSummary),
}

/// A client as the table reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// Its ID.
    pub id: u32,
    /// Where it answers from, once registered.
    pub addr: Option<SocketAddr>,
    /// Whether it is still in the session.
    pub active: bool,
    /// Why it left, if it did.
    pub lost: Option<LostReason>,
    /// Why it was refused during the handshake, if it was.
    pub refused: Option<RefuseReason>,
    /// Its last RTT measurement.
    pub rtt: Option<Duration>,
    /// Whether it confirmed the session's end.
    pub done: bool,
    /// Whether this entry is a proxy (it stands for clients, and is not a receiver itself).
    pub proxy: bool,
    /// The proxy this client answers through, if any.
    pub via: Option<u32>,
}
