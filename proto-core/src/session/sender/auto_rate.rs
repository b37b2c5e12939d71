//! The default rate control: start unpaced, slow down to what the slowest kept receiver takes.
//!
//! uftp makes its users pick a rate (`-R`, 1 Mbit/s by default); too low wastes the network,
//! too high loses most packets at a slow receiver and every pass after the first is spent on it.
//! This controller needs no setting and no protocol extension: it reads the STATUS every client
//! (ours or uftp 4.10.2's) already sends during the first pass for each section it has seen the
//! end of (digest §4.2). A report that misses more than [`SLOW_SHARE`] of a section says that
//! client is not keeping up with what was sent: the rate is capped at what it did receive (its
//! share of the rate that section was actually sent at), plus [`HEADROOM`]. A client is judged
//! once per section (its later reports of the same section repeat old news). Random loss
//! at a few percent never trips it, so a healthy group stays unpaced. Each section's worth of
//! first-pass data sent without such a report raises the cap by [`GROWTH`] (later passes
//! keep the cap they start with), and lifts it once it is half
//! again above the fastest the sender went unpaced; the cap goes at once when the client that set it
//! leaves (e.g. dropped by `-N`/`-m`).

/// A section report missing more than this share of the section marks a slow client
/// (per mille).
pub(crate) const SLOW_SHARE: u32 = 250;
/// The cap is this much above the slow client's measured receive rate (per mille).
pub(crate) const HEADROOM: u64 = 1100;
/// Growth of the cap per clean section's worth of data (per mille).
pub(crate) const GROWTH: u64 = 1250;
/// The sending rate is measured over windows of this length (for the peak).
pub(crate) const WINDOW_US: u64 = 50_000;
/// Sections whose sending rate is remembered.
const SECTIONS: usize = 16;
/// Lowest cap, bytes per second: well below any usable rate, enough to keep rounds moving.
pub(crate) const MIN_RATE: u64 = 16_000;

/// What a slow report did to the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slowed {
    /// The rate the client received at, bytes per second.
    pub delivered: u64,
    /// The rate being sent when it reported, bytes per second.
    pub sent: u64,
    /// The new cap, bytes per second.
    pub cap: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AutoRate {
    /// Current cap, bytes per second (`None`: unpaced).
    cap: Option<u64>,
    /// The client whose report set the cap.
    limiter: Option<u32>,
    /// Measurement window: start (µs) and bytes sent in it.
    win_start: u64,
    win_bytes: u64,
    /// Rate measured over the last full window, and the highest such rate while unpaced.
    measured: u64,
    peak: u64,
    /// Data packets sent towards the current section's worth, and whether a slow report came
    /// in meanwhile.
    epoch: u32,
    slow_in_epoch: bool,
    /// First-pass sections as sent, by section % [`SECTIONS`]: section, first and last send
    /// time (µs), bytes.
    sections: [Option<SectionSent>; SECTIONS],
}

#[derive(Debug, Clone, Copy)]
struct SectionSent {
    section: u16,
    first: u64,
    last: u64,
    bytes: u64,
    /// The next section has started: this one's rate is final.
    closed: bool,
}

impl AutoRate {
    pub(crate) fn cap(&self) -> Option<u64> {
        self.cap
    }

    #[cfg(test)]
    pub(crate) fn limiter(&self) -> Option<u32> {
        self.limiter
    }

    /// A new file: section numbers start again.
    pub(crate) fn new_file(&mut self) {
        self.sections = [None; SECTIONS];
    }

    /// A first-pass data packet of `bytes` in `section` went out at `now_us`.
    pub(crate) fn on_first_pass(&mut self, now_us: u64, bytes: u64, section: u16) {
        let slot = &mut self.sections[usize::from(section) % SECTIONS];
        match slot {
            Some(s) if s.section == section => {
                s.last = now_us;
                s.bytes += bytes;
            }
            _ => {
                *slot = Some(SectionSent {
                    section,
                    first: now_us,
                    last: now_us,
                    bytes,
                    closed: false,
                });
                let prev = usize::from(section.wrapping_sub(1)) % SECTIONS;
                if let Some(p) = self.sections[prev].as_mut() {
                    if p.section.wrapping_add(1) == section {
                        p.closed = true;
                        // Its last packet's own time slot: up to the next section's first.
                        p.last = now_us;
                    }
                }
            }
        }
    }

    /// The rate `section` was sent at in the first pass, bytes per second, once it is over.
    fn section_rate(&self, section: u16) -> Option<u64> {
        let s = self.sections[usize::from(section) % SECTIONS]?;
        let span = s.last.saturating_sub(s.first);
        (s.section == section && s.closed && span > 0)
            .then(|| s.bytes.saturating_mul(1_000_000) / span)
    }

    /// A data packet of `bytes` went out at `now_us`; `section_blocks` is a section's worth.
    pub(crate) fn on_sent(&mut self, now_us: u64, bytes: u64, section_blocks: u32) {
        if self.win_bytes == 0 && self.win_start == 0 {
            self.win_start = now_us;
        }
        self.win_bytes += bytes;
        let span = now_us.saturating_sub(self.win_start);
        if span >= WINDOW_US {
            self.measured = self.win_bytes.saturating_mul(1_000_000) / span;
            if self.cap.is_none() {
                self.peak = self.peak.max(self.measured);
            }
            self.win_start = now_us;
            self.win_bytes = 0;
        }
        self.epoch += 1;
        if self.epoch >= section_blocks.max(1) {
            self.epoch = 0;
            if !core::mem::take(&mut self.slow_in_epoch) {
                self.grow();
            }
        }
    }

    fn grow(&mut self) {
        if let Some(cap) = self.cap {
            let up = cap.saturating_mul(GROWTH) / 1000;
            if self.peak > 0 && up > self.peak.saturating_mul(3) / 2 {
                self.cap = None;
                self.limiter = None;
            } else {
                self.cap = Some(up);
            }
        }
    }

    /// Client `id` missed `missed` of the `blocks` blocks of first-pass `section`. Returns what
    /// it did when the report marks the client slow. Reports of a section still being sent, or
    /// sent too long ago to remember its rate, are ignored.
    pub(crate) fn on_report(
        &mut self,
        id: u32,
        section: u16,
        missed: u32,
        blocks: u32,
    ) -> Option<Slowed> {
        if blocks == 0 || u64::from(missed) * 1000 <= u64::from(SLOW_SHARE) * u64::from(blocks) {
            return None;
        }
        let sent = self.section_rate(section)?;
        self.slow_in_epoch = true;
        let delivered = sent * u64::from(blocks - missed) / u64::from(blocks);
        let want = (delivered.saturating_mul(HEADROOM) / 1000).max(MIN_RATE);
        if self.cap.is_some_and(|c| c <= want) {
            return None;
        }
        self.cap = Some(want);
        self.limiter = Some(id);
        Some(Slowed {
            delivered,
            sent,
            cap: want,
        })
    }

    /// Client `id` left the session: a cap it set goes with it.
    pub(crate) fn on_left(&mut self, id: u32) {
        if self.limiter == Some(id) {
            self.cap = None;
            self.limiter = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `sections` sections of 10,000 packets of 1000 bytes from section `first` at `rate`
    /// bytes per second from `t` (µs); returns the end time.
    fn send(a: &mut AutoRate, t: u64, first: u16, sections: u16, rate: u64) -> u64 {
        let step = 1000 * 1_000_000 / rate;
        let mut t = t;
        for s in first..first + sections {
            for _ in 0..10_000 {
                t += step;
                a.on_first_pass(t, 1000, s);
                a.on_sent(t, 1000, 10_000);
            }
        }
        t
    }

    #[test]
    fn random_loss_never_slows_a_healthy_group() {
        let mut a = AutoRate::default();
        send(&mut a, 0, 0, 3, 50_000_000);
        for missed in [0, 100, 500, 2_500] {
            assert_eq!(a.on_report(1, 0, missed, 10_000), None);
        }
        assert_eq!(a.cap(), None);
    }

    #[test]
    fn a_slow_client_caps_the_rate_at_what_it_received_in_that_section() {
        let mut a = AutoRate::default();
        let t = send(&mut a, 0, 0, 2, 50_000_000);
        let t = send(&mut a, t, 2, 1, 10_000_000);
        // The section being sent has no rate yet.
        let t = send(&mut a, t, 3, 1, 10_000_000);
        assert_eq!(a.on_report(7, 4, 9_600, 10_000), None);
        // It got 4% of section 1, sent at 50 MB/s: 2 MB/s, capped 10% above (not 4% of the
        // 10 MB/s sent later).
        let s = a.on_report(7, 1, 9_600, 10_000).expect("slow");
        assert!((49_000_000..=51_000_000).contains(&s.sent), "{s:?}");
        assert!((1_960_000..=2_040_000).contains(&s.delivered), "{s:?}");
        assert_eq!(s.cap, s.delivered * 11 / 10);
        assert_eq!(a.cap(), Some(s.cap));
        assert_eq!(a.limiter(), Some(7));
        // A report of a section sent faster than the cap says nothing new.
        assert_eq!(a.on_report(7, 2, 7_000, 10_000), None);
        // No growth over the section's worth the slow report came in; a clean one raises the
        // cap by a quarter.
        let before = s.cap;
        let t = send(&mut a, t, 4, 1, before);
        assert_eq!(a.cap(), Some(before));
        send(&mut a, t, 5, 1, before);
        assert_eq!(a.cap(), Some(before * 5 / 4));
    }

    #[test]
    fn the_cap_goes_when_its_client_leaves_or_grows_past_the_peak() {
        let mut a = AutoRate::default();
        let t = send(&mut a, 0, 0, 3, 50_000_000);
        a.on_report(7, 0, 9_600, 10_000).expect("slow");
        a.on_left(8);
        assert!(a.cap().is_some(), "another client leaving changes nothing");
        a.on_left(7);
        assert_eq!(a.cap(), None);
        // Capped again, then enough clean sections lift the cap altogether.
        a.on_report(7, 1, 5_000, 10_000).expect("slow");
        let mut t = t;
        for s in 3..13 {
            let rate = a.cap().unwrap_or(50_000_000);
            t = send(&mut a, t, s, 1, rate);
        }
        assert_eq!(a.cap(), None);
    }
}
