//! How one direction of a path treats datagrams: loss (independent, Gilbert–Elliott bursts and
//! timed outages), duplication, delay, jitter, reordering, and the bottleneck (rate, queue, MTU)
//! that the receivers of one class share.

use std::time::Duration;

use proto_core::time::Instant;

use crate::rng::Rng;

/// The two-state Markov loss model of Gilbert and Elliott, stepped once per datagram: in the
/// good state datagrams are lost with `loss_good_ppm`, in the bad state with `loss_bad_ppm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GilbertElliott {
    /// Chance per datagram of going from good to bad, parts per million.
    pub enter_bad_ppm: u32,
    /// Chance per datagram of going from bad back to good, parts per million.
    pub leave_bad_ppm: u32,
    /// Loss in the good state, parts per million.
    pub loss_good_ppm: u32,
    /// Loss in the bad state, parts per million.
    pub loss_bad_ppm: u32,
}

impl GilbertElliott {
    /// Bursts of mean length `mean_burst` datagrams, everything lost in a burst and nothing
    /// outside one, with an average loss of `loss` (a fraction, below 1).
    pub fn bursts(loss: f64, mean_burst: f64) -> GilbertElliott {
        let leave = 1.0 / mean_burst.max(1.0);
        let loss = loss.clamp(0.0, 0.999_999);
        // Stationary share of the bad state: enter / (enter + leave) = loss.
        let enter = (loss * leave / (1.0 - loss)).min(1.0);
        GilbertElliott {
            enter_bad_ppm: ppm(enter),
            leave_bad_ppm: ppm(leave),
            loss_good_ppm: 0,
            loss_bad_ppm: 1_000_000,
        }
    }
}

/// A fraction (0–1) in parts per million.
pub fn ppm(fraction: f64) -> u32 {
    (fraction.clamp(0.0, 1.0) * 1_000_000.0).round() as u32
}

/// How one direction of a path treats datagrams.
///
/// For a receiver's downstream path, `delay`, `rate`, `queue` and `mtu` describe the bottleneck
/// and propagation, which every receiver with the same four values shares (a *class*: one
/// arrival instant per datagram for all of them); loss, duplication, jitter and reordering are
/// drawn per receiver. Upstream, only loss, duplication, delay, jitter and reordering apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkConfig {
    /// Independent loss, parts per million.
    pub loss_ppm: u32,
    /// Burst loss as outages: chance per datagram of starting one, parts per million.
    pub burst_start_ppm: u32,
    /// How long an outage lasts: everything on the link is lost until it ends.
    pub burst: Duration,
    /// Burst loss as a Gilbert–Elliott chain (stepped per datagram).
    pub gilbert: Option<GilbertElliott>,
    /// Duplication, parts per million (the copy takes the same path, with its own jitter).
    pub dup_ppm: u32,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniform random delay in `0..jitter` per datagram (reorders datagrams).
    pub jitter: Duration,
    /// Chance per datagram of being held back by `reorder_delay`, parts per million.
    pub reorder_ppm: u32,
    /// How long a reordered datagram is held back.
    pub reorder_delay: Duration,
    /// Bottleneck rate in bytes per second (`None`: no serialization delay).
    pub rate: Option<u64>,
    /// Bytes the bottleneck queue holds before it drops (`None`: unbounded).
    pub queue: Option<u64>,
    /// Largest datagram (UDP payload plus 28 bytes of IPv4 and UDP headers) that passes.
    pub mtu: Option<u32>,
}

impl LinkConfig {
    /// A link that loses `percent`% independently and delays by `delay`.
    pub fn lossy(percent: f64, delay: Duration) -> LinkConfig {
        LinkConfig {
            loss_ppm: (percent * 10_000.0) as u32,
            delay,
            ..LinkConfig::default()
        }
    }

    /// This link with the class part (delay, rate, queue, MTU) of `other`.
    pub(crate) fn with_class_of(self, other: &LinkConfig) -> LinkConfig {
        LinkConfig {
            delay: other.delay,
            rate: other.rate,
            queue: other.queue,
            mtu: other.mtu,
            ..self
        }
    }

    /// Whether anything but a fixed delay can happen to a datagram on this link.
    pub(crate) fn varies(&self) -> bool {
        self.jitter > Duration::ZERO || self.reorder_ppm > 0 || self.dup_ppm > 0
    }
}

/// Bytes of IPv4 and UDP headers counted on the wire for every datagram.
pub const IP_UDP_OVERHEAD: u64 = 28;

/// Per-direction state of one receiver's (or node's) link.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinkState {
    /// End of the current outage.
    burst_until: Instant,
    /// Gilbert–Elliott: in the bad state.
    bad: bool,
}

/// What became of one datagram on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Lost.
    Lost,
    /// Delivered once after the extra delay (beyond the fixed one), or twice (duplicated).
    Deliver([Option<Duration>; 2]),
}

impl LinkState {
    /// Draws the fate of one datagram sent at `now`; the link's fixed delay is not included.
    /// Draws nothing from `rng` for features that are off, so a plain lossy link costs one draw.
    pub(crate) fn fate(&mut self, now: Instant, cfg: &LinkConfig, rng: &mut Rng) -> Fate {
        if self.lost(now, cfg, rng) {
            return Fate::Lost;
        }
        if !cfg.varies() {
            return Fate::Deliver([Some(Duration::ZERO), None]);
        }
        let extra = |rng: &mut Rng| {
            let mut d = Duration::from_micros(rng.below(cfg.jitter.as_micros() as u64));
            if rng.chance_ppm(cfg.reorder_ppm) {
                d += cfg.reorder_delay;
            }
            d
        };
        let first = extra(rng);
        let second = rng.chance_ppm(cfg.dup_ppm).then(|| extra(rng));
        Fate::Deliver([Some(first), second])
    }

    fn lost(&mut self, now: Instant, cfg: &LinkConfig, rng: &mut Rng) -> bool {
        if now < self.burst_until {
            return true;
        }
        if rng.chance_ppm(cfg.burst_start_ppm) {
            self.burst_until = now + cfg.burst;
            return true;
        }
        if let Some(ge) = &cfg.gilbert {
            self.bad = if self.bad {
                !rng.chance_ppm(ge.leave_bad_ppm)
            } else {
                rng.chance_ppm(ge.enter_bad_ppm)
            };
            let p = if self.bad {
                ge.loss_bad_ppm
            } else {
                ge.loss_good_ppm
            };
            if rng.chance_ppm(p) {
                return true;
            }
        }
        rng.chance_ppm(cfg.loss_ppm)
    }
}

/// A bottleneck that serializes datagrams at a rate behind a drop-tail queue (the sender's
/// interface, or a class's downstream path). Times in nanoseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bottleneck {
    /// When the link has finished sending everything queued so far, ns.
    free_ns: u64,
}

impl Bottleneck {
    /// When a datagram of `len` bytes (headers included) offered at `now_ns` has left the
    /// bottleneck, or `None` if the queue is full.
    pub(crate) fn pass(
        &mut self,
        now_ns: u64,
        len: u64,
        rate: Option<u64>,
        queue: Option<u64>,
    ) -> Option<u64> {
        let Some(rate) = rate else {
            return Some(now_ns);
        };
        let start = self.free_ns.max(now_ns);
        if let Some(q) = queue {
            // Bytes still waiting ahead of this one.
            let backlog = (start - now_ns).saturating_mul(rate) / 1_000_000_000;
            if backlog + len > q {
                return None;
            }
        }
        self.free_ns = start + len.saturating_mul(1_000_000_000) / rate.max(1);
        Some(self.free_ns)
    }
}

/// Nanoseconds to the microsecond instant at or after them.
pub(crate) fn ns_to_instant(ns: u64) -> Instant {
    Instant::from_micros(ns.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gilbert_elliott_bursts_have_the_asked_mean_loss_and_length() {
        let cfg = LinkConfig {
            gilbert: Some(GilbertElliott::bursts(0.05, 8.0)),
            ..LinkConfig::default()
        };
        let mut rng = Rng::new(5);
        let mut st = LinkState::default();
        let (mut lost, mut bursts, mut prev) = (0u32, 0u32, false);
        let n = 400_000;
        for _ in 0..n {
            let l = st.fate(Instant::ZERO, &cfg, &mut rng) == Fate::Lost;
            lost += u32::from(l);
            bursts += u32::from(l && !prev);
            prev = l;
        }
        let loss = f64::from(lost) / f64::from(n);
        let mean = f64::from(lost) / f64::from(bursts);
        assert!((0.045..0.055).contains(&loss), "loss {loss}");
        assert!((7.0..9.0).contains(&mean), "mean burst {mean}");
    }

    #[test]
    fn bottleneck_serializes_and_drops_when_the_queue_is_full() {
        let mut b = Bottleneck::default();
        // 1000 bytes at 1 MB/s: 1 ms each; a queue of 2500 bytes.
        let rate = Some(1_000_000);
        let q = Some(2_500);
        assert_eq!(b.pass(0, 1000, rate, q), Some(1_000_000));
        assert_eq!(b.pass(0, 1000, rate, q), Some(2_000_000));
        assert_eq!(b.pass(0, 1000, rate, q), None, "2000 queued + 1000 > 2500");
        assert_eq!(b.pass(1_500_000, 1000, rate, q), Some(3_000_000));
        assert_eq!(b.pass(0, 1000, None, q), Some(0), "no rate: no delay");
    }
}
