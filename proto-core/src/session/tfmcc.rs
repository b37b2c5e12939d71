//! TFMCC (RFC 4654) as uftp 4.10.2 runs it (digest §6.2): the arithmetic both sides share, and
//! the receiver's half — loss detection from the header `seq`, loss intervals, the loss-event
//! rate, the RTT from CONG_CTRL, the TFRC rate equation and the feedback timer with its
//! suppression rule.
//!
//! proto-core has no `std`, so the square root and logarithm are computed here (each checked
//! against `std` in the tests to 1e-12 relative).

use core::time::Duration;

use crate::time::Instant;
use crate::wire::{Rate, TfmccAckInfoRepr, Timestamp, TFMCC_ACK_FLAG_RTT, TFMCC_ACK_FLAG_START};

/// Bytes of UFTP framing around a FILESEG's data in a TFMCC session: the 16-byte header, the
/// 8-byte FILESEG header and the 8-byte EXT_TFMCC_DATA_INFO. The packet size `s` of the rate
/// equation is the block size plus this.
pub const FILESEG_OVERHEAD: usize = 16 + 8 + 8;

/// How many past loss intervals the loss-event rate weighs.
pub const LOSS_INTERVALS: usize = 8;
const WEIGHTS: [f64; LOSS_INTERVALS] = [1.0, 1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2];

/// Packets a `seq` may lag the highest seen and still arrive (digest §2.1); a packet not seen by
/// the time the highest is this far past it is lost.
const REORDER: u32 = 5;

/// Square root of a non-negative finite `x` (0 for anything else).
pub fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return 0.0;
    }
    // Halve the exponent for a first guess within a factor of two, then Newton: each step
    // doubles the correct bits.
    let mut y = f64::from_bits((x.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Natural logarithm of a positive finite `x` (-inf for 0 or less).
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    // x = m × 2^e with m in [1, 2) (subnormals scaled up first); ln m = 2·atanh((m-1)/(m+1)).
    let (x, bias) = if x < f64::MIN_POSITIVE {
        (x * (1u64 << 54) as f64, -54.0)
    } else {
        (x, 0.0)
    };
    let bits = x.to_bits();
    let e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    let mut e = e as f64 + bias;
    // Keep m in [√½, √2) so that the series converges fast.
    if m > core::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1.0;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= t2;
        k += 2.0;
    }
    2.0 * sum + e * core::f64::consts::LN_2
}

/// The TFRC throughput equation as uftp uses it (digest §6.2): bytes per second for packets of
/// `s` bytes, round-trip time `rtt` seconds and loss-event rate `p`.
pub fn tfrc_rate(s: f64, rtt: f64, p: f64) -> f64 {
    if p <= 0.0 {
        return f64::INFINITY;
    }
    let denom = rtt * (sqrt(2.0 * p / 3.0) + 12.0 * sqrt(3.0 * p / 8.0) * p * (1.0 + 32.0 * p * p));
    if denom <= 0.0 {
        return f64::INFINITY;
    }
    s / denom
}

/// The loss-event rate at which [`tfrc_rate`] gives `rate` (bisection on a log scale): the first
/// loss interval is made up from the rate reached in slow start (RFC 4654 §3.2.2, as TFRC).
pub fn loss_rate_for(s: f64, rtt: f64, rate: f64) -> f64 {
    let (mut lo, mut hi) = (1e-10f64, 1.0f64);
    if tfrc_rate(s, rtt, lo) <= rate {
        return lo;
    }
    if tfrc_rate(s, rtt, hi) >= rate {
        return hi;
    }
    for _ in 0..64 {
        let mid = sqrt(lo * hi);
        if tfrc_rate(s, rtt, mid) > rate {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    sqrt(lo * hi)
}

/// Seconds in a duration, as a float.
pub fn secs(d: Duration) -> f64 {
    d.as_micros() as f64 / 1e6
}

/// Loss intervals: packets between the starts of loss events, the newest first, and the one
/// still open (RFC 4654 §3.2, TFRC's average loss interval).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossHistory {
    /// Closed intervals, newest first; `count` of them are valid.
    intervals: [f64; LOSS_INTERVALS],
    count: usize,
    /// Packets since the start of the latest loss event.
    open: f64,
    /// When the latest loss event began.
    last_event: Option<Instant>,
}

impl LossHistory {
    /// Whether any loss was seen yet.
    pub fn any_loss(&self) -> bool {
        self.last_event.is_some()
    }

    /// Closed intervals, newest first.
    pub fn intervals(&self) -> &[f64] {
        &self.intervals[..self.count]
    }

    /// `n` packets arrived (or were skipped) without loss.
    pub fn packets(&mut self, n: u32) {
        self.open += f64::from(n);
    }

    /// A packet was found lost at `now`. It begins a new loss event unless it is within `rtt`
    /// of the start of the latest one. `first_interval` gives the made-up interval for the very
    /// first event (see [`loss_rate_for`]). Returns whether a new event began.
    pub fn loss(
        &mut self,
        now: Instant,
        rtt: Duration,
        first_interval: impl FnOnce() -> f64,
    ) -> bool {
        match self.last_event {
            Some(t) if now < t + rtt => {
                // Same loss event: the packet still counts in the open interval.
                self.open += 1.0;
                false
            }
            Some(_) => {
                self.intervals.copy_within(0..LOSS_INTERVALS - 1, 1);
                self.intervals[0] = self.open.max(1.0);
                self.count = (self.count + 1).min(LOSS_INTERVALS);
                self.open = 1.0;
                self.last_event = Some(now);
                true
            }
            None => {
                self.intervals[0] = first_interval().max(1.0);
                self.count = 1;
                self.open = 1.0;
                self.last_event = Some(now);
                true
            }
        }
    }

    /// The loss-event rate p: 1 over the weighted mean interval, taking the larger of the means
    /// with and without the open interval (0 before any loss).
    pub fn loss_event_rate(&self) -> f64 {
        let n = self.count;
        if n == 0 {
            return 0.0;
        }
        // Without the open interval: the closed ones with weights w0..w(n-1).
        let weight: f64 = WEIGHTS[..n].iter().sum();
        let without: f64 = (0..n).map(|i| self.intervals[i] * WEIGHTS[i]).sum::<f64>() / weight;
        // With it: the open interval takes w0, the closed ones shift down a weight, the oldest
        // dropping out when all eight are in use.
        let m = n.min(LOSS_INTERVALS - 1);
        let weight1: f64 = WEIGHTS[..=m].iter().sum();
        let with = (self.open * WEIGHTS[0]
            + (0..m)
                .map(|i| self.intervals[i] * WEIGHTS[i + 1])
                .sum::<f64>())
            / weight1;
        1.0 / with.max(without)
    }
}

/// Loss detection from the server's header `seq` (digest §2.1, §6.2): a window of the last 64
/// sequence numbers; one still missing when the highest is more than five past it is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqWindow {
    /// Bit i: `max - i` arrived.
    seen: u64,
    max: u16,
    started: bool,
}

impl SeqWindow {
    /// Notes `seq`; returns (new sequence numbers passed, newly found lost).
    pub fn arrive(&mut self, seq: u16) -> (u32, u32) {
        if !self.started {
            self.started = true;
            self.max = seq;
            // Whatever came before is not ours to count.
            self.seen = u64::MAX;
            return (1, 0);
        }
        let ahead = seq.wrapping_sub(self.max);
        if ahead == 0 || ahead >= 0x8000 {
            let behind = u32::from(self.max.wrapping_sub(seq));
            if behind < 64 {
                self.seen |= 1 << behind;
            }
            return (0, 0);
        }
        let d = u32::from(ahead);
        self.max = seq;
        // Lost now: the new gap's numbers already more than REORDER behind, and the old ones
        // that cross from "may still come" (position ≤ REORDER) to past it.
        let gap = d.saturating_sub(REORDER + 1);
        let first = (REORDER + 1).saturating_sub(d);
        let crossing = (0x3Fu64 >> first) << first;
        let lost = gap + (!self.seen & crossing).count_ones();
        self.seen = if d >= 64 { 0 } else { self.seen << d } | 1;
        (d, lost)
    }
}

/// Bytes received over the last 4×GRTT, in eight buckets of half a GRTT each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RecentBytes {
    buckets: [(u64, u64); 8],
}

impl RecentBytes {
    fn add(&mut self, now: Instant, grtt: Duration, bytes: u64) {
        let width = (grtt.as_micros() as u64 / 2).max(1);
        let k = now.as_micros() / width;
        let b = &mut self.buckets[(k % 8) as usize];
        if b.0 != k {
            *b = (k, 0);
        }
        b.1 += bytes;
    }

    fn sum(&self, now: Instant, grtt: Duration) -> u64 {
        let width = (grtt.as_micros() as u64 / 2).max(1);
        let k = now.as_micros() / width;
        self.buckets
            .iter()
            .filter(|b| b.0 <= k && k - b.0 < 8)
            .map(|b| b.1)
            .sum()
    }
}

/// A receiver's TFMCC state for one session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverCc {
    /// The packet size `s`.
    packet_size: f64,
    window: SeqWindow,
    /// Loss counting starts with the first FILESEG or CONG_CTRL (earlier, the private group
    /// may not have been joined yet).
    tracking: bool,
    losses: LossHistory,
    recent: RecentBytes,
    /// Smoothed RTT from CONG_CTRL, seconds.
    rtt: Option<f64>,
    /// Named as the CLR in the latest CONG_CTRL.
    pub clr: bool,
    /// Latest round seen, and our rate when it began.
    cc_seq: Option<u16>,
    round_rate: f64,
    /// The latest CONG_CTRL timestamp and when it came, echoed in feedback.
    echo_ts: Timestamp,
    echo_rx: Instant,
    /// When the scheduled feedback of this round is due.
    pub ack_at: Option<Instant>,
    /// Feedback to send now.
    pub send_ack: bool,
    /// CC_ACKs sent.
    pub acks_sent: u32,
}

impl ReceiverCc {
    /// A session with blocks of `blocksize` bytes.
    pub fn new(blocksize: u16) -> Self {
        ReceiverCc {
            packet_size: (usize::from(blocksize) + FILESEG_OVERHEAD) as f64,
            window: SeqWindow::default(),
            tracking: false,
            losses: LossHistory::default(),
            recent: RecentBytes::default(),
            rtt: None,
            clr: false,
            cc_seq: None,
            round_rate: f64::INFINITY,
            echo_ts: Timestamp::default(),
            echo_rx: Instant::ZERO,
            ack_at: None,
            send_ack: false,
            acks_sent: 0,
        }
    }

    /// The loss history.
    pub fn losses(&self) -> &LossHistory {
        &self.losses
    }

    /// The RTT the rate uses: ours once the server sent one, else the GRTT.
    pub fn rtt(&self, grtt: Duration) -> f64 {
        self.rtt.unwrap_or_else(|| secs(grtt)).max(1e-6)
    }

    /// An authentic server datagram with `seq` arrived (before the misordering check).
    #[inline]
    pub fn on_seq(&mut self, now: Instant, seq: u16, grtt: Duration) {
        if !self.tracking {
            return;
        }
        let (passed, lost) = self.window.arrive(seq);
        if passed == 0 {
            return;
        }
        self.losses.packets(passed - lost);
        if lost > 0 {
            let rtt_s = self.rtt(grtt);
            let rtt = Duration::from_micros((rtt_s * 1e6) as u64);
            // The first event's interval is the one that gives the rate slow start reached.
            let rate = self.slow_start_rate(now, grtt);
            let s = self.packet_size;
            for _ in 0..lost {
                self.losses
                    .loss(now, rtt, || 1.0 / loss_rate_for(s, rtt_s, rate));
            }
        }
    }

    /// A FILESEG arrived (its `seq` already noted).
    #[inline]
    pub fn on_fileseg(&mut self, now: Instant, seq: u16, grtt: Duration) {
        if !self.tracking {
            self.tracking = true;
            self.window.arrive(seq);
        }
        self.recent.add(now, grtt, self.packet_size as u64);
    }

    /// A CONG_CTRL arrived: `ours` is our item (flags, RTT), `clr` whether it names us as the
    /// CLR. The CLR answers at once.
    pub fn on_cong_ctrl(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: Timestamp,
        ours: Option<(u8, Duration)>,
        clr: bool,
    ) {
        if !self.tracking {
            self.tracking = true;
            self.window.arrive(seq);
        }
        self.echo_ts = timestamp;
        self.echo_rx = now;
        self.clr = clr;
        if let Some((flags, rtt)) = ours {
            if flags & crate::wire::CC_FLAG_RTT != 0 {
                let sample = secs(rtt);
                let keep = if clr { 0.9 } else { 0.5 };
                self.rtt = Some(match self.rtt {
                    Some(r) => keep * r + (1.0 - keep) * sample,
                    None => sample,
                });
            }
        }
        if clr {
            self.send_ack = true;
            self.ack_at = None;
        }
    }

    /// The round number and suppression rate a FILESEG or CONG_CTRL advertised. A new round
    /// schedules feedback `6·GRTT·(1 + ln u / ln gsize)` ahead (`u` uniform in (0, 1]); a
    /// scheduled one is cancelled once the server's suppression rate is below ours.
    pub fn on_round(
        &mut self,
        now: Instant,
        cc_seq: u16,
        cc_rate: Rate,
        grtt: Duration,
        gsize: u64,
        u: f64,
    ) {
        let rate = self.rate(now, grtt);
        // Rounds count from 0, which is not new (as uftpd 4.10.2 answers it).
        let ahead = cc_seq.wrapping_sub(self.cc_seq.unwrap_or(0));
        let new_round = ahead != 0 && ahead < 0x8000;
        if new_round {
            self.cc_seq = Some(cc_seq);
            self.round_rate = rate;
            // Feedback echoes a CONG_CTRL timestamp: without one yet the server could not take
            // an RTT from it (a zero timestamp would read as an enormous one).
            if !self.clr && self.echo_ts != Timestamp::default() {
                self.ack_at = Some(now + feedback_delay(grtt, gsize, u));
            }
        }
        if self.ack_at.is_some() {
            let suppress = cc_rate.bytes_per_sec() as f64;
            let own_rtt = self.rtt(grtt);
            if suppress < rate || (secs(grtt) > own_rtt && suppress < self.round_rate) {
                self.ack_at = None;
            }
        }
    }

    /// Whether the scheduled feedback is due.
    pub fn timeout(&mut self, now: Instant) {
        if self.ack_at.is_some_and(|t| now >= t) {
            self.ack_at = None;
            self.send_ack = true;
        }
    }

    /// Slow start: twice the bytes received during the last 4×GRTT, over 4×GRTT.
    fn slow_start_rate(&self, now: Instant, grtt: Duration) -> f64 {
        let window = 4.0 * secs(grtt).max(1e-6);
        2.0 * self.recent.sum(now, grtt) as f64 / window
    }

    /// Our calculated rate in bytes per second.
    pub fn rate(&self, now: Instant, grtt: Duration) -> f64 {
        if !self.losses.any_loss() {
            return self
                .slow_start_rate(now, grtt)
                .max(self.packet_size / secs(grtt).max(1e-6));
        }
        tfrc_rate(
            self.packet_size,
            self.rtt(grtt),
            self.losses.loss_event_rate(),
        )
    }

    /// The feedback extension as of `now`.
    pub fn ack_info(&self, now: Instant, grtt: Duration, uid: u32) -> TfmccAckInfoRepr {
        let mut flags = 0;
        if self.rtt.is_some() {
            flags |= TFMCC_ACK_FLAG_RTT;
        }
        if !self.losses.any_loss() {
            flags |= TFMCC_ACK_FLAG_START;
        }
        let rate = self.rate(now, grtt).min(u64::MAX as f64);
        let timestamp = if self.echo_ts == Timestamp::default() {
            self.echo_ts
        } else {
            let held = (now - self.echo_rx).as_micros() as u64;
            Timestamp::from_micros(self.echo_ts.as_micros().saturating_add(held))
        };
        TfmccAckInfoRepr {
            flags,
            cc_seq: self.cc_seq.unwrap_or(0),
            cc_rate: Rate::from_bytes_per_sec(rate as u64),
            client_id: uid,
            timestamp,
        }
    }
}

/// The feedback delay of a non-CLR receiver: `6·GRTT·(1 + ln u / ln gsize)`, at least 0.
pub fn feedback_delay(grtt: Duration, gsize: u64, u: f64) -> Duration {
    let n = (gsize.max(2)) as f64;
    let f = (1.0 + ln(u.clamp(1e-9, 1.0)) / ln(n)).clamp(0.0, 1.0);
    Duration::from_micros((6.0 * secs(grtt) * f * 1e6) as u64)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn sqrt_and_ln_match_std() {
        let mut x = 1e-300f64;
        while x < 1e300 {
            for v in [x, x * 1.234_567, x * 7.7] {
                let rel = |a: f64, b: f64| ((a - b) / b).abs();
                assert!(rel(sqrt(v), v.sqrt()) < 1e-12, "sqrt {v}");
                let l = v.ln();
                if l.abs() > 1e-3 {
                    assert!(rel(ln(v), l) < 1e-12, "ln {v}: {} vs {l}", ln(v));
                }
            }
            x *= 10.0;
        }
        assert!((ln(1.0)).abs() < 1e-15);
        assert!((ln(1.0001) - 1.0001f64.ln()).abs() < 1e-15);
        assert_eq!(sqrt(0.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
    }

    #[test]
    fn rate_equation_matches_hand_computed_values() {
        // s = 1472, R = 0.1 s, p = 0.01:
        // √(0.02/3) = 0.0816497, 12·√(0.00375)·0.01·(1 + 0.0032) = 0.0073720;
        // 1472 / (0.1 × 0.0890217) = 165352.6 B/s.
        let r = tfrc_rate(1472.0, 0.1, 0.01);
        assert!((r - 165_352.6).abs() < 1.0, "{r}");
        // p = 0.1, R = 0.05: √(0.2/3) = 0.2581989, 12·√(0.0375)·0.1·1.32 = 0.3067409;
        // 1000 / (0.05 × 0.5649398) = 35402.0 B/s.
        let r = tfrc_rate(1000.0, 0.05, 0.1);
        assert!((r - 35_402.0).abs() < 1.0, "{r}");
        assert_eq!(tfrc_rate(1000.0, 0.05, 0.0), f64::INFINITY);
        // The inverse.
        let p = loss_rate_for(1472.0, 0.1, 165_352.6);
        assert!((p - 0.01).abs() < 1e-6, "{p}");
    }

    #[test]
    fn loss_event_rate_weighs_eight_intervals_and_takes_the_larger_mean() {
        let t = |ms: u64| Instant::from_micros(ms * 1000);
        let rtt = Duration::from_millis(100);
        let mut h = LossHistory::default();
        assert_eq!(h.loss_event_rate(), 0.0);
        // First loss: the made-up interval 100.
        assert!(h.loss(t(0), rtt, || 100.0));
        assert_eq!(h.intervals(), &[100.0]);
        // A second loss within the RTT is the same event.
        h.packets(3);
        assert!(!h.loss(t(50), rtt, || unreachable!()));
        // open = 1 + 3 + 1 = 5.
        h.packets(45);
        assert!(h.loss(t(200), rtt, || unreachable!()));
        assert_eq!(h.intervals(), &[50.0, 100.0]);
        // Open interval 1: without it the mean is (50 + 100) / 2 = 75; with it
        // (1 + 50 + 100) / 3 = 50.3; the larger gives p = 1/75.
        assert!((h.loss_event_rate() - 1.0 / 75.0).abs() < 1e-12);
        // A long open interval counts: open 1 + 299 = 300, with = (300 + 50 + 100) / 3 = 150.
        h.packets(299);
        assert!((h.loss_event_rate() - 1.0 / 150.0).abs() < 1e-12);
        // Fill all eight: intervals 10, 20, ..., 80 (newest first: 80 ... 10), open 1.
        let mut h = LossHistory::default();
        h.loss(t(0), rtt, || 10.0);
        for (i, n) in [20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
            .iter()
            .enumerate()
        {
            h.packets(*n as u32 - 1);
            h.loss(t(1000 * (i as u64 + 1)), rtt, || unreachable!());
        }
        // Nine intervals closed; the oldest (10) fell out.
        assert_eq!(
            h.intervals(),
            &[90.0, 80.0, 70.0, 60.0, 50.0, 40.0, 30.0, 20.0]
        );
        // Without: (90+80+70+60 + .8·50 + .6·40 + .4·30 + .2·20) / 6 = 380 / 6.
        let without =
            (90.0 + 80.0 + 70.0 + 60.0 + 0.8 * 50.0 + 0.6 * 40.0 + 0.4 * 30.0 + 0.2 * 20.0) / 6.0;
        assert!((h.loss_event_rate() - 1.0 / without).abs() < 1e-12);
        // With a large open interval 1000: (1000 + 90+80+70 + .8·60 + .6·50 + .4·40 + .2·30) / 6.
        h.packets(999);
        let with =
            (1000.0 + 90.0 + 80.0 + 70.0 + 0.8 * 60.0 + 0.6 * 50.0 + 0.4 * 40.0 + 0.2 * 30.0) / 6.0;
        assert!((h.loss_event_rate() - 1.0 / with).abs() < 1e-12);
    }

    #[test]
    fn seq_gaps_become_losses_past_the_reorder_allowance() {
        let mut w = SeqWindow::default();
        assert_eq!(w.arrive(100), (1, 0));
        // 101 missing; 102..=106 arrive: not yet lost (106 is 5 past 101).
        assert_eq!(w.arrive(102), (2, 0));
        for s in 103..=106 {
            assert_eq!(w.arrive(s), (1, 0), "{s}");
        }
        // 107 is six past 101: lost now.
        assert_eq!(w.arrive(107), (1, 1));
        // Reordered within the allowance: 109 before 108, then 108 late: no loss.
        assert_eq!(w.arrive(109), (2, 0));
        assert_eq!(w.arrive(108), (0, 0));
        for s in 110..=120 {
            assert_eq!(w.arrive(s), (1, 0), "{s}");
        }
        // A jump of 10 (121..=129 missing): those more than 5 behind 130 are lost at once
        // (121..=124), the rest as later packets pass them.
        assert_eq!(w.arrive(130), (10, 4));
        assert_eq!(w.arrive(131), (1, 1));
        // Wrapping around.
        let mut w = SeqWindow::default();
        w.arrive(65534);
        assert_eq!(w.arrive(1), (3, 0));
        assert_eq!(w.arrive(10), (9, 5));
        // A jump beyond the window.
        assert_eq!(w.arrive(110), (100, 99));
    }

    #[test]
    fn feedback_delay_spreads_over_six_grtt() {
        let g = Duration::from_millis(100);
        assert_eq!(feedback_delay(g, 10, 1.0), Duration::from_millis(600));
        // u = 1/gsize: 1 + ln(1/10)/ln 10 = 0.
        assert_eq!(feedback_delay(g, 10, 0.1), Duration::ZERO);
        // u = 1/√gsize: half.
        let d = feedback_delay(g, 100, 0.1);
        assert!(d.as_micros().abs_diff(300_000) < 2, "{d:?}");
        // One receiver: as two.
        assert_eq!(feedback_delay(g, 1, 0.5), Duration::ZERO);
    }

    #[test]
    fn receiver_slow_start_then_tfrc_and_suppression() {
        let grtt = Duration::from_millis(100);
        let mut cc = ReceiverCc::new(1000);
        let t = |ms: u64| Instant::from_micros(1_000_000 + ms * 1000);
        // 100 FILESEGs (1032 bytes each) in 200 ms: slow start reports twice the rate seen over
        // the last 4×GRTT (the 400 ms window holds all of them): 2 × 103200 / 0.4 = 516000.
        for i in 0..100u16 {
            cc.on_seq(t(u64::from(i) * 2), i, grtt);
            cc.on_fileseg(t(u64::from(i) * 2), i, grtt);
        }
        let r = cc.rate(t(200), grtt);
        assert!((r - 516_000.0).abs() < 1.0, "{r}");
        assert_ne!(cc.ack_info(t(200), grtt, 7).flags & TFMCC_ACK_FLAG_START, 0);
        // CONG_CTRL naming another client as CLR, with our RTT 50 ms.
        cc.on_cong_ctrl(
            t(200),
            100,
            Timestamp::from_micros(5_000_000),
            Some((crate::wire::CC_FLAG_RTT, Duration::from_millis(50))),
            false,
        );
        assert!(!cc.send_ack);
        assert_eq!(cc.rtt(grtt), 0.05);
        // New round: feedback scheduled (u = 1: the full 6×GRTT).
        cc.on_round(t(200), 1, Rate::UNLIMITED, grtt, 10, 1.0);
        assert_eq!(cc.ack_at, Some(t(800)));
        // Suppressed once the advertised rate falls below ours.
        cc.on_round(t(300), 1, Rate::from_bytes_per_sec(100_000), grtt, 10, 1.0);
        assert_eq!(cc.ack_at, None);
        // Loss of seq 100 found when 106 arrives: TFRC from then on, with a first interval
        // that gives the slow-start rate.
        for i in 101..=106u16 {
            cc.on_seq(t(300), i, grtt);
            cc.on_fileseg(t(300), i, grtt);
        }
        assert!(cc.losses().any_loss());
        let p = cc.losses().loss_event_rate();
        assert!(p > 0.0 && p < 0.01, "{p}");
        // Named CLR: feedback at once, echoing the timestamp plus the 30 ms held.
        cc.on_cong_ctrl(
            t(300),
            107,
            Timestamp::from_micros(6_000_000),
            Some((
                crate::wire::CC_FLAG_RTT | crate::wire::CC_FLAG_CLR,
                Duration::from_millis(60),
            )),
            true,
        );
        assert!(cc.send_ack);
        // 0.9 × 50 + 0.1 × 60 ms.
        assert!((cc.rtt(grtt) - 0.051).abs() < 1e-9);
        let info = cc.ack_info(t(330), grtt, 7);
        assert_eq!(info.timestamp, Timestamp::from_micros(6_030_000));
        assert_eq!(info.flags, TFMCC_ACK_FLAG_RTT);
        assert_eq!(info.client_id, 7);
        let expect = tfrc_rate(1032.0, 0.051, p);
        assert_eq!(info.cc_rate, Rate::from_bytes_per_sec(expect as u64));
    }
}
