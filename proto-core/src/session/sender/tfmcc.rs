//! The sender's half of TFMCC (digest §6.2, RFC 4654): the current rate, the CLR (current
//! limiting receiver), feedback rounds with their suppression rate, and when CONG_CTRL is due.
//!
//! [`SenderCc`] only keeps numbers; the [`Sender`](super::Sender) feeds it each client's
//! feedback (CC_ACK, or STATUS with EXT_TFMCC_ACK_INFO) and asks it for the rate to pace by,
//! the advertised GRTT and the fields of FILESEG and CONG_CTRL.

use core::time::Duration;

use super::{Event, Phase, Sender};
use crate::crypto::RsaKeys;
use crate::session::tfmcc::FILESEG_OVERHEAD;
use crate::wire::{Rate, TfmccAckInfoRepr, Timestamp, TFMCC_ACK_FLAG_RTT, TFMCC_ACK_FLAG_START};

/// Limits of `-C tfmcc[:min=K][:init=K][:max=K]`, in bytes per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TfmccLimits {
    /// The rate never falls below this (default: one packet per GRTT).
    pub min: Option<u64>,
    /// The starting rate (default: one packet per GRTT).
    pub init: Option<u64>,
    /// The rate never rises above this.
    pub max: Option<u64>,
}

/// How the sender chooses its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionControl {
    /// The fixed rate of [`SenderConfig::rate`](super::SenderConfig::rate) (`-C none`).
    #[default]
    None,
    /// TFMCC (`-C tfmcc`): the rate follows the receivers' feedback; `SenderConfig::rate` is
    /// not used.
    Tfmcc(TfmccLimits),
}

/// What one client's feedback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Nothing changed but the suppression rate, perhaps.
    Noted,
    /// The rate changed, from the CLR.
    Rate,
    /// This client is the new CLR.
    NewClr,
}

/// The sender's TFMCC state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SenderCc {
    limits: TfmccLimits,
    /// Bytes in one FILESEG (`s`).
    packet: f64,
    /// Current rate, bytes per second.
    rate: f64,
    /// Slow start: the CLR has not reported a loss yet.
    slow_start: bool,
    /// The CLR, and when it last reported (µs).
    clr: Option<u32>,
    clr_heard_us: u64,
    /// When the rate was last halved for the CLR's silence (µs).
    halved_us: u64,
    /// Feedback round and its suppression rate.
    cc_seq: u16,
    cc_rate: Rate,
    /// When the next round and the next CONG_CTRL are due (µs); 0 before the data phase.
    next_round_us: u64,
    next_cong_ctrl_us: u64,
    started: bool,
    /// Rate and CLR as last reported in an event.
    logged_rate: f64,
    logged_clr: Option<u32>,
    logged_us: u64,
    /// Rate changed since the last report.
    dirty: bool,
}

impl SenderCc {
    /// A session with blocks of `blocksize` bytes, starting at `grtt_us`.
    pub fn new(limits: TfmccLimits, blocksize: u16, grtt_us: u64) -> Self {
        let packet = (usize::from(blocksize) + FILESEG_OVERHEAD) as f64;
        let one_per_grtt = packet * 1e6 / grtt_us.max(1) as f64;
        let mut cc = SenderCc {
            limits,
            packet,
            rate: limits.init.map_or(one_per_grtt, |r| r as f64),
            slow_start: true,
            clr: None,
            clr_heard_us: 0,
            halved_us: 0,
            cc_seq: 0,
            cc_rate: Rate::UNLIMITED,
            next_round_us: 0,
            next_cong_ctrl_us: 0,
            started: false,
            logged_rate: 0.0,
            logged_clr: None,
            logged_us: 0,
            dirty: true,
        };
        cc.rate = cc.clamp(cc.rate);
        cc
    }

    /// Within `min=` and `max=`.
    fn clamp(&self, rate: f64) -> f64 {
        let mut r = rate.max(self.limits.min.map_or(1.0, |m| m as f64));
        if let Some(max) = self.limits.max {
            r = r.min(max as f64);
        }
        r.max(1.0)
    }

    fn one_per_grtt(&self, grtt_us: u64) -> f64 {
        self.packet * 1e6 / grtt_us.max(1) as f64
    }

    /// The rate to pace FILESEGs by, bytes per second.
    pub fn rate(&self) -> u64 {
        self.rate as u64
    }

    /// The current CLR.
    pub fn clr(&self) -> Option<u32> {
        self.clr
    }

    /// Whether the sender is in slow start.
    pub fn slow_start(&self) -> bool {
        self.slow_start
    }

    /// The GRTT the header advertises: `max(GRTT, s / rate)`.
    pub fn adv_grtt_us(&self, grtt_us: u64) -> u64 {
        grtt_us.max((self.packet * 1e6 / self.rate) as u64)
    }

    /// The round number and suppression rate, as FILESEG and CONG_CTRL carry them.
    pub fn round(&self) -> (u16, Rate) {
        (self.cc_seq, self.cc_rate)
    }

    /// The data phase begins at `now_us` with `initial_clr` (the client with the highest RTT)
    /// as the CLR; later files go on with the state they have.
    pub fn start(&mut self, now_us: u64, initial_clr: Option<u32>, grtt_us: u64) {
        if self.started {
            return;
        }
        self.started = true;
        if self.limits.init.is_none() {
            // One packet per GRTT as measured by now, not as configured at the start.
            self.rate = self.clamp(self.one_per_grtt(grtt_us));
            self.dirty = true;
        }
        self.clr = initial_clr;
        self.clr_heard_us = now_us;
        self.halved_us = now_us;
        let adv = self.adv_grtt_us(grtt_us);
        self.cc_seq = 1;
        self.cc_rate = Rate::UNLIMITED;
        self.next_round_us = now_us + 6 * adv;
        self.next_cong_ctrl_us = now_us;
    }

    /// When [`SenderCc::tick`] next has something to do, once started.
    pub fn next_due_us(&self) -> Option<u64> {
        self.started
            .then(|| self.next_round_us.min(self.next_cong_ctrl_us))
    }

    /// Timers at `now_us`: a new round every 6×adv_grtt; the rate halved for every 4×adv_grtt
    /// the CLR is silent, the CLR dropped after ROBUST×adv_grtt. Returns whether a CONG_CTRL is
    /// due. Outside data passes (`sending` false: FILEINFO, DONE rounds) nothing asks the CLR
    /// for feedback, so its silence does not count and no round begins.
    pub fn tick(&mut self, now_us: u64, grtt_us: u64, robust: u8, sending: bool) -> bool {
        if !self.started {
            return false;
        }
        if !sending {
            self.clr_heard_us = now_us;
            self.halved_us = now_us;
            return false;
        }
        let adv = self.adv_grtt_us(grtt_us);
        if now_us >= self.next_round_us {
            self.cc_seq = self.cc_seq.wrapping_add(1);
            self.cc_rate = Rate::UNLIMITED;
            self.next_round_us = now_us + 6 * adv;
        }
        if self.clr.is_some() {
            let silent = now_us.saturating_sub(self.clr_heard_us);
            if silent >= u64::from(robust) * adv {
                self.clr = None;
            } else if silent >= 4 * adv && now_us.saturating_sub(self.halved_us) >= 4 * adv {
                self.halved_us = now_us;
                // Halved, but not below one packet per GRTT (nor raised to it).
                let floor = self.one_per_grtt(grtt_us).min(self.rate);
                self.set_rate((self.rate / 2.0).max(floor));
            }
        }
        if now_us >= self.next_cong_ctrl_us {
            self.next_cong_ctrl_us = now_us + adv;
            return true;
        }
        false
    }

    fn set_rate(&mut self, rate: f64) {
        let r = self.clamp(rate);
        if r != self.rate {
            self.rate = r;
            self.dirty = true;
        }
    }

    /// Client `id`'s feedback, with its RTT as just measured (µs; `None` if the report echoed
    /// no timestamp). The rate of a report made without an RTT (the client used the GRTT) is
    /// scaled by adv_grtt / RTT.
    pub fn feedback(
        &mut self,
        now_us: u64,
        id: u32,
        info: &TfmccAckInfoRepr,
        rtt_us: Option<u64>,
        grtt_us: u64,
    ) -> Feedback {
        let adv = self.adv_grtt_us(grtt_us);
        let mut reported = info.cc_rate.bytes_per_sec() as f64;
        if info.flags & TFMCC_ACK_FLAG_RTT == 0 {
            if let Some(rtt) = rtt_us.filter(|&r| r > 0) {
                reported *= adv as f64 / rtt as f64;
            }
        }
        if info.flags & TFMCC_ACK_FLAG_START != 0 {
            // A receiver in slow start reports twice what it received over the last 4×GRTT,
            // which just after the start (uftpd 4.10.2's first reports are a tenth of what is
            // sent) says more about how long it has been listening than about the path: such a
            // report does not pull the rate below one packet per GRTT.
            reported = reported.max(self.one_per_grtt(grtt_us));
        }
        if reported < self.cc_rate.bytes_per_sec() as f64 {
            self.cc_rate = Rate::from_bytes_per_sec((reported * 0.9) as u64);
        }
        let loss_seen = info.flags & TFMCC_ACK_FLAG_START == 0;
        if self.clr == Some(id) {
            self.clr_heard_us = now_us;
            self.halved_us = now_us;
            if loss_seen {
                self.slow_start = false;
            }
            let next = if reported <= self.rate || self.slow_start {
                reported
            } else {
                // At most one more packet per GRTT.
                reported.min(self.rate + self.packet * 1e6 / adv as f64)
            };
            let before = self.rate;
            self.set_rate(next);
            return if self.rate != before {
                Feedback::Rate
            } else {
                Feedback::Noted
            };
        }
        if self.clr.is_none() || reported < self.rate {
            self.clr = Some(id);
            self.clr_heard_us = now_us;
            self.halved_us = now_us;
            if loss_seen {
                self.slow_start = false;
            }
            let next = if reported < self.rate || self.slow_start {
                reported
            } else {
                reported.min(self.rate + self.packet * 1e6 / adv as f64)
            };
            self.set_rate(next);
            self.dirty = true;
            return Feedback::NewClr;
        }
        Feedback::Noted
    }

    /// Whether the rate or CLR changed enough since the last report to log again — a new CLR
    /// at once, the rate once it moved by more than a tenth and `gap_us` passed since the last
    /// report — and notes it as reported.
    pub fn take_report(&mut self, now_us: u64, gap_us: u64) -> Option<(u64, Option<u32>)> {
        if !self.dirty {
            return None;
        }
        let moved = (self.rate - self.logged_rate).abs() > self.logged_rate * 0.1;
        let new_clr = self.clr != self.logged_clr;
        if new_clr || (moved && now_us.saturating_sub(self.logged_us) >= gap_us) {
            self.dirty = false;
            self.logged_rate = self.rate;
            self.logged_clr = self.clr;
            self.logged_us = now_us;
            return Some((self.rate as u64, self.clr));
        }
        if !moved {
            self.dirty = false;
        }
        None
    }

    /// A client left: it is no longer the CLR.
    pub fn forget(&mut self, id: u32) {
        if self.clr == Some(id) {
            self.clr = None;
            self.dirty = true;
        }
    }
}

/// The rate glue: what the state machine asks of [`SenderCc`] and of the fixed or adaptive rate.
impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// The rate FILESEGs are paced by: TFMCC's current one, else the fixed rate, else (the
    /// adaptive default) the cap if any; `None`: unpaced.
    pub(super) fn pacing_rate(&self) -> Option<u64> {
        match (&self.cc, self.config.rate) {
            (Some(cc), _) => Some(cc.rate()),
            (None, Some(r)) => Some(r),
            (None, None) if self.config.adaptive_rate => self.auto.cap(),
            (None, None) => None,
        }
    }

    /// The GRTT the header carries: under TFMCC `max(GRTT, datapacketsize / rate)` (§1.5).
    pub(super) fn adv_grtt_us(&self) -> u64 {
        match &self.cc {
            Some(cc) => cc.adv_grtt_us(self.grtt_us),
            None => self.grtt_us,
        }
    }

    /// TFMCC starts with the first data pass; the initial CLR is the client with the highest
    /// RTT (as uftp 4.9.10 and later choose).
    pub(super) fn start_cc(&mut self, now_us: u64) {
        let clr = self
            .clients
            .iter()
            .filter(|c| c.active() && !c.is_proxy())
            .max_by_key(|c| c.rtt_us.unwrap_or(0))
            .map(|c| c.id);
        let grtt = self.grtt_us;
        if let Some(cc) = self.cc.as_mut() {
            cc.start(now_us, clr, grtt);
        }
        self.report_rate(now_us);
    }

    pub(super) fn cc_timers(&mut self, now_us: u64) {
        let (grtt, robust) = (self.grtt_us, self.config.robust);
        let Some(cc) = self.cc.as_mut() else {
            return;
        };
        let sending = matches!(self.phase, Phase::Data { .. });
        if cc.tick(now_us, grtt, robust, sending) {
            self.cong_ctrl_due = true;
        }
        self.report_rate(now_us);
    }

    pub(super) fn report_rate(&mut self, now_us: u64) {
        let grtt_us = self.grtt_us;
        // Rate moves at most every 6×adv_grtt and at least a quarter second apart.
        let gap = (6 * self.adv_grtt_us()).max(250_000);
        if let Some((rate, clr)) = self.cc.as_mut().and_then(|cc| cc.take_report(now_us, gap)) {
            self.push_event(Event::RateChanged {
                rate,
                clr,
                grtt: Duration::from_micros(grtt_us),
            });
        }
    }

    /// TFMCC feedback from client `id` (CC_ACK, or STATUS's extension): its RTT from the
    /// echoed timestamp, then the rate.
    pub(super) fn on_cc_feedback(&mut self, now_us: u64, id: u32, info: &TfmccAckInfoRepr) {
        if self.cc.is_none() {
            self.counters.dropped += 1;
            return;
        }
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        if !self.clients[i].active() {
            self.counters.dropped += 1;
            return;
        }
        if info.timestamp != Timestamp::default() {
            let before = self.clients[i].rtt_us;
            self.measure(now_us, i, info.timestamp);
            if self.clients[i].rtt_us != before {
                self.clients[i].rtt_fresh = true;
            }
        }
        let rtt = self.clients[i].rtt_us;
        let grtt = self.grtt_us;
        if let Some(cc) = self.cc.as_mut() {
            if cc.feedback(now_us, id, info, rtt, grtt) != Feedback::Noted {
                self.report_rate(now_us);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Timestamp;

    fn report(rate: u64, flags: u8) -> TfmccAckInfoRepr {
        TfmccAckInfoRepr {
            flags,
            cc_seq: 1,
            cc_rate: Rate::from_bytes_per_sec(rate),
            client_id: 0,
            timestamp: Timestamp::default(),
        }
    }

    const RTT: u8 = TFMCC_ACK_FLAG_RTT;
    const START: u8 = TFMCC_ACK_FLAG_START | TFMCC_ACK_FLAG_RTT;

    #[test]
    fn starts_at_one_packet_per_grtt_or_init_within_min_and_max() {
        // 1000-byte blocks: 1032-byte packets; GRTT 10 ms: 103200 B/s.
        let cc = SenderCc::new(TfmccLimits::default(), 1000, 10_000);
        assert_eq!(cc.rate(), 103_200);
        let cc = SenderCc::new(
            TfmccLimits {
                init: Some(1_000_000),
                max: Some(500_000),
                min: None,
            },
            1000,
            10_000,
        );
        assert_eq!(cc.rate(), 500_000);
        let cc = SenderCc::new(
            TfmccLimits {
                min: Some(200_000),
                ..TfmccLimits::default()
            },
            1000,
            10_000,
        );
        assert_eq!(cc.rate(), 200_000);
        // adv_grtt: the larger of the GRTT and one packet at the rate (1032 / 200000 s).
        assert_eq!(cc.adv_grtt_us(1_000), 5_160);
        assert_eq!(cc.adv_grtt_us(10_000), 10_000);
    }

    #[test]
    fn clr_selection_slow_start_and_increase_limit() {
        let g = 10_000;
        let mut cc = SenderCc::new(TfmccLimits::default(), 1000, g);
        cc.start(0, Some(1), g);
        assert_eq!(cc.clr(), Some(1));
        // The CLR in slow start: its rate is taken whole (rates are rounded by the encoding).
        assert_eq!(
            cc.feedback(1_000, 1, &report(400_000, START), Some(5_000), g),
            Feedback::Rate
        );
        assert!(cc.rate().abs_diff(400_000) < 200, "{}", cc.rate());
        assert!(cc.slow_start());
        // A slow-start report below one packet per GRTT (103200 B/s) counts as that.
        let mut low = SenderCc::new(TfmccLimits::default(), 1000, g);
        low.start(0, Some(1), g);
        low.feedback(1_000, 1, &report(10_000, START), Some(5_000), g);
        assert_eq!(low.rate(), 103_200);
        // A lower report from another client: it becomes the CLR at its rate.
        assert_eq!(
            cc.feedback(2_000, 2, &report(300_000, RTT), Some(5_000), g),
            Feedback::NewClr
        );
        assert_eq!(cc.clr(), Some(2));
        assert!(!cc.slow_start(), "its report says it saw loss");
        assert!(cc.rate().abs_diff(300_000) < 200);
        // A higher report from a non-CLR changes nothing but may lower the suppression rate.
        assert_eq!(
            cc.feedback(3_000, 1, &report(900_000, RTT), Some(5_000), g),
            Feedback::Noted
        );
        assert_eq!(cc.clr(), Some(2));
        // The suppression rate went to 0.9 × the lowest report of the round.
        let (_, supp) = cc.round();
        assert!(supp.bytes_per_sec().abs_diff(270_000) < 200, "{supp:?}");
        // The CLR reports much higher: at most one packet (1032 bytes) per GRTT (10 ms) more.
        let before = cc.rate();
        cc.feedback(4_000, 2, &report(900_000, RTT), Some(5_000), g);
        assert_eq!(cc.rate(), before + 103_200);
        // Reports without the RTT flag are scaled by adv_grtt / RTT: 50000 × 10 ms / 1 ms is
        // above the rate; 30000 × 10 is below it, and its client becomes the CLR.
        assert_eq!(
            cc.feedback(5_000, 3, &report(50_000, 0), Some(1_000), g),
            Feedback::Noted
        );
        assert_eq!(
            cc.feedback(5_000, 3, &report(30_000, 0), Some(1_000), g),
            Feedback::NewClr
        );
        assert_eq!(cc.clr(), Some(3));
        assert!(cc.rate().abs_diff(300_000) < 300, "{}", cc.rate());
    }

    #[test]
    fn silent_clr_halves_the_rate_then_is_dropped_and_rounds_advance() {
        let g = 10_000;
        let limits = TfmccLimits {
            min: Some(10_000),
            init: Some(1_032_000),
            max: None,
        };
        let mut cc = SenderCc::new(limits, 1000, g);
        cc.start(0, Some(1), g);
        let r = cc.rate();
        let (seq0, _) = cc.round();
        // 4 × adv_grtt (10 ms) of silence: halved once, not again until 4 more.
        assert!(cc.tick(40_000, g, 20, true));
        assert_eq!(cc.rate(), r / 2);
        cc.tick(50_000, g, 20, true);
        assert_eq!(cc.rate(), r / 2);
        cc.tick(80_000, g, 20, true);
        assert_eq!(cc.rate(), r / 4);
        // A new round came with 6 × adv_grtt.
        assert_ne!(cc.round().0, seq0);
        assert_eq!(cc.round().1, Rate::UNLIMITED);
        // ROBUST × adv_grtt (20 × 10 ms, adv_grtt grows as the rate falls, but not here).
        cc.tick(200_000, g, 20, true);
        assert_eq!(cc.clr(), None);
        // Outside data passes the CLR's silence does not count.
        let mut cc = SenderCc::new(limits, 1000, g);
        cc.start(0, Some(1), g);
        assert!(!cc.tick(100_000, g, 20, false));
        assert!(cc.tick(100_000 + 30_000, g, 20, true));
        assert_eq!((cc.rate(), cc.clr()), (r, Some(1)));
        // Never below one packet per GRTT.
        let mut cc = SenderCc::new(TfmccLimits::default(), 1000, g);
        cc.start(0, Some(1), g);
        for t in 1..100 {
            cc.tick(t * 40_000, g, 50, true);
        }
        assert_eq!(cc.rate(), 103_200);
    }
}
