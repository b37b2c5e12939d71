//! Pending aggregates of one session (digest §7): client responses held for one GRTT, then
//! sent upstream as one message.
//!
//! A pending aggregate is identified as uftpproxyd identifies it: every REGISTER goes into the
//! one REGISTER aggregate; FILEINFO_ACKs by file; STATUS by file and section; COMPLETE by file
//! and status. REGISTER, FILEINFO_ACK and COMPLETE list the clients they stand for (each client
//! is in at most one list at a time: the member table holds the slot); STATUS ORs the NAK
//! bitmaps into a full `blocksize`-byte bitmap held in a pool shared by the session's pending
//! STATUS aggregates.

use crate::time::Instant;
use crate::wire::{CompleteStatus, Timestamp};

/// Pending aggregates a session may hold at once (uftpproxyd's MAX_PEND).
pub(super) const MAX_PENDING: usize = 10;
/// Bytes of NAK bitmaps a session may hold: two at the largest block size, more at smaller.
pub(super) const NAK_POOL: usize = 2 * 8800;

/// What an aggregate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Register,
    FileInfoAck {
        file_id: u16,
        partial: bool,
    },
    Status {
        file_id: u16,
        section: u16,
        naks: usize,
    },
    Complete {
        file_id: u16,
        status: CompleteStatus,
    },
}

impl Kind {
    /// Whether a new response of kind `other` joins this aggregate.
    fn matches(&self, other: &Kind) -> bool {
        match (self, other) {
            (Kind::Register, Kind::Register) => true,
            (Kind::FileInfoAck { file_id: a, .. }, Kind::FileInfoAck { file_id: b, .. }) => a == b,
            (
                Kind::Status {
                    file_id: a,
                    section: s,
                    ..
                },
                Kind::Status {
                    file_id: b,
                    section: t,
                    ..
                },
            ) => a == b && s == t,
            (
                Kind::Complete {
                    file_id: a,
                    status: s,
                },
                Kind::Complete {
                    file_id: b,
                    status: t,
                },
            ) => a == b && s == t,
            _ => false,
        }
    }

    /// Whether the aggregate lists client IDs (all but STATUS).
    pub fn lists(&self) -> bool {
        !matches!(self, Kind::Status { .. })
    }
}

/// The client whose echoed timestamp an aggregate reports: the slowest, the one whose
/// response spent the longest since the server's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slowest {
    pub id: u32,
    /// The server timestamp it echoed (its own hold time included).
    pub echo: Timestamp,
    /// When the proxy received it.
    pub rx: Instant,
}

impl Slowest {
    /// Server µs at the echo minus proxy µs at reception: smaller is slower. (The two clocks
    /// differ by a constant, which cancels between clients.)
    fn key(&self) -> i128 {
        i128::from(self.echo.as_micros()) - i128::from(self.rx.as_micros())
    }

    /// The timestamp to echo upstream at `now`: the slowest client's, plus the proxy's hold.
    pub fn echo_at(&self, now: Instant) -> Timestamp {
        let held = now.as_micros().saturating_sub(self.rx.as_micros());
        Timestamp::from_micros(self.echo.as_micros().saturating_add(held))
    }
}

/// One pending aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pending {
    pub kind: Kind,
    /// Clients listed (list kinds) or responses merged (STATUS).
    pub count: u32,
    pub slowest: Option<Slowest>,
    /// Ready to go upstream.
    pub due: bool,
}

/// Where a response went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placed {
    /// Into aggregate `slot`.
    Slot(usize),
    /// Nowhere: every slot (or the NAK pool) is taken. Everything pending is now due, so
    /// slots free up; the client's next response finds one.
    Full,
}

/// A session's pending aggregates and the NAK bitmap pool.
pub(super) struct Aggregates {
    pub slots: [Option<Pending>; MAX_PENDING],
    naks: [u8; NAK_POOL],
    /// Which pool parts of `blocksize` bytes are taken (at most 34 at 512-byte blocks).
    nak_used: u64,
    blocksize: usize,
}

impl core::fmt::Debug for Aggregates {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Aggregates")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

impl Aggregates {
    pub fn new(blocksize: u16) -> Self {
        Aggregates {
            slots: [None; MAX_PENDING],
            naks: [0; NAK_POOL],
            nak_used: 0,
            blocksize: usize::from(blocksize).clamp(1, NAK_POOL),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// The NAK bitmap of pool part `part`.
    pub fn naks(&self, part: usize) -> &[u8] {
        let at = part * self.blocksize;
        self.naks.get(at..at + self.blocksize).unwrap_or(&[])
    }

    fn take_nak_part(&mut self) -> Option<usize> {
        let parts = (NAK_POOL / self.blocksize).min(64);
        let part = (0..parts).find(|p| self.nak_used & (1 << p) == 0)?;
        self.nak_used |= 1 << part;
        let at = part * self.blocksize;
        self.naks[at..at + self.blocksize].fill(0);
        Some(part)
    }

    /// Finds or opens the aggregate for a response of kind `kind` (STATUS: its `naks` part is
    /// ignored and allocated here).
    pub fn place(&mut self, kind: Kind) -> Placed {
        if let Some(i) =
            (self.slots.iter()).position(|s| s.is_some_and(|p| !p.due && p.kind.matches(&kind)))
        {
            return Placed::Slot(i);
        }
        let kind = match kind {
            Kind::Status {
                file_id, section, ..
            } => match self.take_nak_part() {
                Some(naks) => Kind::Status {
                    file_id,
                    section,
                    naks,
                },
                None => return self.full(),
            },
            k => k,
        };
        let Some(i) = self.slots.iter().position(Option::is_none) else {
            if let Kind::Status { naks, .. } = kind {
                self.nak_used &= !(1 << naks);
            }
            return self.full();
        };
        self.slots[i] = Some(Pending {
            kind,
            count: 0,
            slowest: None,
            due: false,
        });
        Placed::Slot(i)
    }

    fn full(&mut self) -> Placed {
        self.all_due();
        Placed::Full
    }

    /// ORs a STATUS bitmap into aggregate `slot`.
    pub fn merge_naks(&mut self, slot: usize, naks: &[u8]) {
        let Some(Pending {
            kind: Kind::Status { naks: part, .. },
            ..
        }) = self.slots[slot]
        else {
            return;
        };
        let at = part * self.blocksize;
        for (dst, src) in self.naks[at..at + self.blocksize].iter_mut().zip(naks) {
            *dst |= src;
        }
    }

    /// Marks everything pending due.
    pub fn all_due(&mut self) {
        for p in self.slots.iter_mut().flatten() {
            p.due = true;
        }
    }

    /// Frees aggregate `slot` (after it went upstream, or emptied).
    pub fn free(&mut self, slot: usize) {
        if let Some(Pending {
            kind: Kind::Status { naks, .. },
            ..
        }) = self.slots[slot].take()
        {
            self.nak_used &= !(1 << naks);
        }
    }

    /// Takes `candidate` as the slowest of aggregate `slot` if it is slower.
    pub fn consider(&mut self, slot: usize, candidate: Slowest) {
        if let Some(p) = self.slots[slot].as_mut() {
            if p.slowest.is_none_or(|s| candidate.key() < s.key()) {
                p.slowest = Some(candidate);
            }
        }
    }
}
