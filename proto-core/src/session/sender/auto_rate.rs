//! The default rate control: start fast, slow down to what the slowest kept receiver takes.
//!
//! uftp makes its users pick a rate (`-R`, 1 Mbit/s by default); too low wastes the network,
//! too high loses most packets at a slow receiver and every pass after the first is spent on it.
//! This controller needs no setting and no protocol extension. It starts at [`INITIAL_RATE`]
//! (1 Gbit/s: fast on any LAN, and not the unbounded burst batched sends reach on a host or
//! bridge, which overruns every receiver's socket buffer in the first section) and reads the
//! STATUS every client (ours or uftp 4.10.2's) already sends during the first pass for each
//! section it has seen the end of (digest §4.2), and after the first pass's DONE (later passes'
//! reports are not judged: STATUS names no pass, and a late answer to an earlier DONE would
//! count every block a later pass resent as missed). A report that
//! misses more than [`SLOW_SHARE`] of what a pass sent of a section says that client is not
//! keeping up: the rate is capped at what it did receive (its share of the rate that section
//! was actually sent at in that pass), plus [`HEADROOM`]. Random loss at a few percent never
//! trips it. A client is judged once per section and pass (its later reports of the same
//! section repeat old news), and only on sections of which a pass sent at least
//! [`MIN_JUDGED`] blocks (a few resent blocks say nothing about a rate). Each section's worth
//! of first-pass data sent without a slow report raises the rate by [`GROWTH`] (later passes
//! keep the rate they start with); when the client that set the cap leaves (e.g. dropped by
//! `-N`/`-m`), the rate goes back to the highest it had before.

/// A section report missing more than this share of the section marks a slow client
/// (per mille).
pub(crate) const SLOW_SHARE: u32 = 250;
/// The cap is this much above the slow client's measured receive rate (per mille).
pub(crate) const HEADROOM: u64 = 1100;
/// Growth of the cap per clean section's worth of data (per mille).
pub(crate) const GROWTH: u64 = 1500;
/// The starting rate, bytes per second (1 Gbit/s).
pub(crate) const INITIAL_RATE: u64 = 125_000_000;
/// The highest rate, bytes per second (100 Gbit/s: unpaced in practice).
pub(crate) const MAX_RATE: u64 = 12_500_000_000;
/// Sections whose sending rate is remembered.
const SECTIONS: usize = 16;
/// Fewest blocks of a section a pass must have sent for a report on it to count.
pub(crate) const MIN_JUDGED: u32 = 32;
/// Lowest cap, bytes per second: well below any usable rate, enough to keep rounds moving.
pub(crate) const MIN_RATE: u64 = 16_000;

/// What a slow report did to the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slowed {
    /// Share of what was sent that it received, per mille.
    pub received_permille: u16,
    /// The rate the client received at, bytes per second.
    pub delivered: u64,
    /// The rate being sent when it reported, bytes per second.
    pub sent: u64,
    /// The new cap, bytes per second.
    pub cap: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AutoRate {
    /// Current rate, bytes per second.
    cap: u64,
    /// The highest rate before the current limiter lowered it.
    high: u64,
    /// The client whose report set the rate.
    limiter: Option<u32>,
    /// Data packets sent towards the current section's worth, and whether a slow report came
    /// in meanwhile.
    epoch: u32,
    slow_in_epoch: bool,
    /// Sections as the current or last pass sent them, by section % [`SECTIONS`].
    sections: [Option<SectionSent>; SECTIONS],
    /// The slot of the section being sent.
    current: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct SectionSent {
    pass: u16,
    section: u16,
    blocks: u32,
    first: u64,
    last: u64,
    bytes: u64,
    /// The next section has started: this one's rate is final.
    closed: bool,
}

impl Default for AutoRate {
    fn default() -> AutoRate {
        AutoRate {
            cap: INITIAL_RATE,
            high: INITIAL_RATE,
            limiter: None,
            epoch: 0,
            slow_in_epoch: false,
            sections: [None; SECTIONS],
            current: None,
        }
    }
}

impl AutoRate {
    /// The rate to pace at, bytes per second.
    pub(crate) fn cap(&self) -> Option<u64> {
        Some(self.cap)
    }

    #[cfg(test)]
    pub(crate) fn limiter(&self) -> Option<u32> {
        self.limiter
    }

    /// A new file: section numbers start again.
    pub(crate) fn new_file(&mut self) {
        self.sections = [None; SECTIONS];
        self.current = None;
    }

    /// A data packet of `bytes` in `section` of pass `pass` went out at `now_us`.
    pub(crate) fn on_data(&mut self, now_us: u64, bytes: u64, pass: u16, section: u16) {
        let k = usize::from(section) % SECTIONS;
        if let Some(s) = self.sections[k].as_mut() {
            if (s.pass, s.section) == (pass, section) && !s.closed {
                s.last = now_us;
                s.bytes += bytes;
                s.blocks += 1;
                return;
            }
        }
        self.close(now_us);
        self.sections[k] = Some(SectionSent {
            pass,
            section,
            blocks: 1,
            first: now_us,
            last: now_us,
            bytes,
            closed: false,
        });
        self.current = Some(k);
    }

    /// The pass ended at `now_us` (its last section is over).
    pub(crate) fn end_pass(&mut self, now_us: u64) {
        self.close(now_us);
    }

    fn close(&mut self, now_us: u64) {
        if let Some(p) = self.current.take().and_then(|k| self.sections[k].as_mut()) {
            p.closed = true;
            // Its last packet's own time slot: up to whatever came next.
            p.last = now_us;
        }
    }

    /// What pass `pass` sent of `section`, once that is over: blocks, and the rate in bytes
    /// per second.
    fn section_sent(&self, pass: u16, section: u16) -> Option<(u32, u64)> {
        let s = self.sections[usize::from(section) % SECTIONS]?;
        let span = s.last.saturating_sub(s.first);
        ((s.pass, s.section) == (pass, section) && s.closed && span > 0)
            .then(|| (s.blocks, s.bytes.saturating_mul(1_000_000) / span))
    }

    /// A first-pass data packet went out; `section_blocks` is a section's worth.
    pub(crate) fn on_sent(&mut self, section_blocks: u32) {
        self.epoch += 1;
        if self.epoch >= section_blocks.max(1) {
            self.epoch = 0;
            if !core::mem::take(&mut self.slow_in_epoch) {
                self.cap = (self.cap.saturating_mul(GROWTH) / 1000).min(MAX_RATE);
            }
        }
    }

    /// Client `id` misses `missed` blocks of `section` after pass `pass` sent some. Returns
    /// what it did when the report marks the client slow. Reports of a section still being
    /// sent, or sent too long ago to remember, are ignored.
    pub(crate) fn on_report(
        &mut self,
        id: u32,
        pass: u16,
        section: u16,
        missed: u32,
    ) -> Option<Slowed> {
        let (blocks, sent) = self.section_sent(pass, section)?;
        // It cannot miss more than was sent (what it lacked from before is in `missed` too).
        let missed = missed.min(blocks);
        if blocks < MIN_JUDGED
            || u64::from(missed) * 1000 <= u64::from(SLOW_SHARE) * u64::from(blocks)
        {
            return None;
        }
        self.slow_in_epoch = true;
        let delivered = sent * u64::from(blocks - missed) / u64::from(blocks);
        let want = (delivered.saturating_mul(HEADROOM) / 1000).max(MIN_RATE);
        if self.cap <= want {
            return None;
        }
        if self.limiter.is_none() {
            self.high = self.high.max(self.cap);
        }
        self.cap = want;
        self.limiter = Some(id);
        Some(Slowed {
            received_permille: ((blocks - missed) * 1000 / blocks) as u16,
            delivered,
            sent,
            cap: want,
        })
    }

    /// Client `id` left the session: a cap it set goes with it.
    pub(crate) fn on_left(&mut self, id: u32) {
        if self.limiter == Some(id) {
            self.cap = self.cap.max(self.high);
            self.limiter = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `sections` sections of 10,000 packets of 1000 bytes from section `first` at `rate`
    /// bytes per second from `t` (µs), in pass 1; returns the end time.
    fn send(a: &mut AutoRate, t: u64, first: u16, sections: u16, rate: u64) -> u64 {
        let step = 1000 * 1_000_000 / rate;
        let mut t = t;
        for s in first..first + sections {
            for _ in 0..10_000 {
                t += step;
                a.on_data(t, 1000, 1, s);
                a.on_sent(10_000);
            }
        }
        a.end_pass(t);
        t
    }

    #[test]
    fn random_loss_never_slows_a_healthy_group_and_clean_sections_speed_it_up() {
        let mut a = AutoRate::default();
        assert_eq!(a.cap(), Some(INITIAL_RATE));
        send(&mut a, 0, 0, 3, 50_000_000);
        for missed in [0, 100, 500, 2_500] {
            assert_eq!(a.on_report(1, 1, 0, missed), None);
        }
        assert_eq!(a.limiter(), None);
        assert_eq!(a.cap(), Some(INITIAL_RATE * 3 * 3 * 3 / 8));
        // Up to 100 Gbit/s, no further.
        send(&mut a, 0, 3, 60, 50_000_000);
        assert_eq!(a.cap(), Some(MAX_RATE));
    }

    #[test]
    fn a_slow_client_caps_the_rate_at_what_it_received_in_that_section() {
        let mut a = AutoRate::default();
        let t = send(&mut a, 0, 0, 2, 50_000_000);
        let t = send(&mut a, t, 2, 1, 10_000_000);
        // A section never sent has no rate.
        assert_eq!(a.on_report(7, 1, 9, 9_600), None);
        // Nor does one sent in another pass.
        assert_eq!(a.on_report(7, 2, 1, 9_600), None);
        // It got 4% of section 1, sent at 50 MB/s: 2 MB/s, capped 10% above (not 4% of the
        // 10 MB/s section 2 went at).
        let s = a.on_report(7, 1, 1, 9_600).expect("slow");
        assert!((49_000_000..=51_000_000).contains(&s.sent), "{s:?}");
        assert!((1_960_000..=2_040_000).contains(&s.delivered), "{s:?}");
        assert_eq!(s.received_permille, 40);
        assert_eq!(s.cap, s.delivered * 11 / 10);
        assert_eq!(a.cap(), Some(s.cap));
        assert_eq!(a.limiter(), Some(7));
        // A report that would allow more than the cap says nothing new.
        assert_eq!(a.on_report(7, 1, 2, 7_000), None);
        // No growth over the section's worth the slow report came in; a clean one raises the
        // cap by half.
        let before = s.cap;
        let t = send(&mut a, t, 4, 1, before);
        assert_eq!(a.cap(), Some(before));
        send(&mut a, t, 5, 1, before);
        assert_eq!(a.cap(), Some(before * 3 / 2));
    }

    #[test]
    fn a_pass_that_resent_little_is_not_judged() {
        let mut a = AutoRate::default();
        let mut t = 0;
        for _ in 0..MIN_JUDGED - 1 {
            t += 100;
            a.on_data(t, 1000, 2, 0);
        }
        a.end_pass(t + 100);
        assert_eq!(a.on_report(7, 2, 0, MIN_JUDGED - 1), None);
        for _ in 0..MIN_JUDGED {
            t += 100;
            a.on_data(t, 1000, 3, 0);
        }
        a.end_pass(t + 100);
        assert!(a.on_report(7, 3, 0, MIN_JUDGED).is_some());
    }

    #[test]
    fn the_rate_comes_back_when_the_client_that_set_it_leaves() {
        let mut a = AutoRate::default();
        send(&mut a, 0, 0, 3, 50_000_000);
        let high = a.cap().unwrap();
        a.on_report(7, 1, 0, 9_600).expect("slow");
        assert!(a.cap().unwrap() < high);
        a.on_left(8);
        assert!(
            a.cap().unwrap() < high,
            "another client leaving changes nothing"
        );
        a.on_left(7);
        assert_eq!(a.cap(), Some(high));
        assert_eq!(a.limiter(), None);
    }
}
