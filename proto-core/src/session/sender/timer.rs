//! The sender's timers by name (quinn-proto's `connection/timer.rs` is the model): what each
//! one waits for, its deadline in the current phase, and which has expired.
//!
//! [`Sender::poll_timeout`] is the earliest deadline of the table; `advance` (in `rounds.rs`)
//! fires the expired timers with a match on [`Timer`].

use super::*;

/// One of the sender's timers. Each is armed only in the phases where it means something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The end of a grace period after the last announce round, while a registration is still
    /// in flight (`Phase::Announce { late_until }`).
    AnnounceLate,
    /// The next round of ANNOUNCE, FILEINFO, DONE or the completion (`next_round`).
    Round,
    /// The end of the linger after the session's completion round (`Phase::Linger { until }`).
    Linger,
    /// The next paced FILESEG (`next_send_ns`, rounded up to the µs); with no rate, data is
    /// due at once. Consumed by `poll_transmit`, not fired.
    Pacing,
    /// TFMCC's next feedback round or CONG_CTRL ([`SenderCc::next_due_us`]). Its handler,
    /// `cc_timers`, runs at every `advance`: [`SenderCc`] checks its own deadlines.
    Cc,
}

impl Timer {
    /// Every timer, for the minimum in [`Sender::poll_timeout`].
    pub(super) const ALL: [Timer; 5] = [
        Timer::AnnounceLate,
        Timer::Round,
        Timer::Linger,
        Timer::Pacing,
        Timer::Cc,
    ];
    /// The timers `advance` fires, in the order they take precedence when several expired.
    pub(super) const FIRED: [Timer; 3] = [Timer::Linger, Timer::AnnounceLate, Timer::Round];
}

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// The deadline of `timer` in µs, `None` when it is not armed in the current phase.
    pub(super) fn deadline(&self, timer: Timer) -> Option<u64> {
        match (timer, self.phase) {
            (Timer::AnnounceLate, Phase::Announce { late_until, .. }) => late_until,
            (
                Timer::Round,
                Phase::Announce { .. }
                | Phase::FileInfo { .. }
                | Phase::Done { .. }
                | Phase::Completion { .. },
            ) => Some(self.next_round),
            (Timer::Linger, Phase::Linger { until }) => Some(until),
            (Timer::Pacing, Phase::Data { .. }) => Some(match self.pacing_rate() {
                // Round up: at the truncated microsecond the pacing budget would still be short.
                Some(_) => self.next_send_ns.div_ceil(1000),
                None => 0,
            }),
            (Timer::Cc, Phase::Data { .. }) => self.cc.as_ref().and_then(SenderCc::next_due_us),
            _ => None,
        }
    }

    /// The first of [`Timer::FIRED`] whose deadline has passed at `now_us`.
    pub(super) fn expired(&self, now_us: u64) -> Option<Timer> {
        Timer::FIRED
            .into_iter()
            .find(|&t| self.deadline(t).is_some_and(|at| now_us >= at))
    }
}
