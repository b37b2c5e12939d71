//! What a run found, as JSON (byte for byte the same for the same scenario and seed) and as the
//! table `cargo xtask sim` prints.

use serde::Serialize;

/// Everything a run measured. Times are seconds of virtual time from the start (the first
/// ANNOUNCE); nothing depends on the machine that ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Receivers in the run.
    pub receivers: u32,
    /// Files sent: name and size.
    pub files: Vec<FileReport>,
    /// Total bytes of the files.
    pub file_bytes: u64,
    /// The sender's fixed rate, bits per second (`None`: unpaced).
    pub sender_rate_bps: Option<u64>,
    /// The sender ran the adaptive default rate (`--rate auto`).
    pub adaptive_rate: bool,
    /// Times the adaptive rate named a receiver holding the group back and slowed to it.
    pub slow_client_reports: u32,
    /// The lowest rate it slowed to, bits per second.
    pub lowest_rate_bps: Option<u64>,
    /// Receiver classes.
    pub classes: Vec<ClassReport>,
    /// How the sender's session ended (`Completed`, `AllDropped`, ...).
    pub outcome: String,
    /// When the sender's session ended.
    pub completion_s: f64,
    /// When the last receiver that finished had every file.
    pub data_done_s: f64,
    /// File bytes per second of completion time, in bits per second (each receiver's goodput
    /// had it taken the whole session).
    pub goodput_bps: f64,
    /// Bytes the sender put on the wire (UDP payloads plus 28 bytes of IP/UDP headers each).
    pub wire_bytes: u64,
    /// `wire_bytes` per file byte.
    pub wire_per_file_byte: f64,
    /// Datagrams the sender sent.
    pub sender_datagrams: u64,
    /// Data passes (the most any file took).
    pub passes: u16,
    /// Blocks in the files.
    pub blocks: u64,
    /// FILESEGs of the first pass.
    pub first_pass_blocks: u64,
    /// FILESEGs sent again in later passes.
    pub retransmitted_blocks: u64,
    /// STATUS (NAK) messages receivers sent, and their bytes (UDP payloads).
    pub status_messages: u64,
    /// Bytes of those.
    pub nak_bytes: u64,
    /// NAK bits the sender received (duplicates included).
    pub naks_received: u64,
    /// Receivers that registered.
    pub registered: u32,
    /// Receivers that finished every file, byte-identical.
    pub completed: u32,
    /// Completion times of those: 50th, 90th, 99th percentile and the last.
    pub completion_percentiles_s: Percentiles,
    /// Receivers the sender reported lost.
    pub lost: u32,
    /// Receivers a scenario event made crash, leave or join late.
    pub crashed: u32,
    /// Receivers that left the group.
    pub left: u32,
    /// Receivers that joined late.
    pub late: u32,
    /// Receivers no event touched that did not finish (the protocol gave up on them, or they
    /// on it).
    pub unfinished: u32,
    /// Blocks any receiver stored that were not the file's (a failure of the run).
    pub bad_blocks: u64,
    /// Blocks checked byte by byte (the other stores reused a check of the same datagram). Not
    /// in the JSON: receivers stepped on two threads at once may both check a datagram first.
    #[serde(skip)]
    pub full_checks: u64,
    /// What the network did.
    pub network: NetworkReport,
    /// Over time, in buckets of `bucket_s`.
    pub timeline: Timeline,
}

/// A file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Its name.
    pub name: String,
    /// Its size.
    pub size: u64,
}

/// A class of receivers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassReport {
    /// Its name.
    pub name: String,
    /// Its receivers.
    pub receivers: u32,
    /// Downstream delay, ms.
    pub delay_ms: f64,
    /// Downstream loss, percent (independent, or the mean of the bursts).
    pub loss_percent: f64,
    /// Mean burst length (0: independent loss).
    pub burst: f64,
    /// Return path loss, percent.
    pub up_loss_percent: f64,
    /// Its receivers that finished.
    pub completed: u32,
}

/// Percentiles of receivers' completion times, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// The last.
    pub max: f64,
}

impl Percentiles {
    /// Of `times` (sorted in place; nearest-rank).
    pub fn of(times: &mut [f64]) -> Percentiles {
        if times.is_empty() {
            return Percentiles::default();
        }
        times.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len());
            times[i - 1]
        };
        Percentiles {
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: times[times.len() - 1],
        }
    }
}

/// Network counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NetworkReport {
    /// Datagrams delivered to nodes.
    pub delivered: u64,
    /// Deliveries lost on paths.
    pub lost: u64,
    /// Extra deliveries from duplication.
    pub duplicated: u64,
    /// Dropped at full queues.
    pub queue_drops: u64,
    /// Dropped for their size.
    pub mtu_drops: u64,
    /// Datagrams receivers sent.
    pub receiver_datagrams: u64,
    /// Bytes of those.
    pub receiver_bytes: u64,
}

/// Receivers completed and the sender's rate over time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Bucket width, seconds.
    pub bucket_s: f64,
    /// Bits per second the sender sent in each bucket (UDP payloads and headers).
    pub sender_bps: Vec<f64>,
    /// Receivers that had finished by the end of each bucket.
    pub completed: Vec<u32>,
}

impl Report {
    /// The JSON form (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serializes");
        s.push('\n');
        s
    }

    /// The table `cargo xtask sim` prints.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut row = |k: &str, v: String| t.push_str(&format!("  {k:<24}{v}\n"));
        let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
        row(
            "completion time",
            format!(
                "{:.2} s (data on the last receiver at {:.2} s)",
                self.completion_s, self.data_done_s
            ),
        );
        row(
            "goodput",
            format!("{:.1} Mbit/s per receiver", self.goodput_bps / 1e6),
        );
        row(
            "bytes on the wire",
            format!(
                "{:.3} per file byte ({} in {} datagrams)",
                self.wire_per_file_byte,
                mb(self.wire_bytes),
                self.sender_datagrams
            ),
        );
        row(
            "passes",
            format!(
                "{} ({} blocks; {} retransmitted)",
                self.passes, self.blocks, self.retransmitted_blocks
            ),
        );
        if self.adaptive_rate {
            row(
                "adaptive rate",
                match self.lowest_rate_bps {
                    Some(r) => format!(
                        "slowed {} times for receivers holding the group back, to {:.1} Mbit/s at the lowest",
                        self.slow_client_reports,
                        r as f64 / 1e6
                    ),
                    None => "never slowed (no receiver held the group back)".into(),
                },
            );
        }
        row(
            "NAK bytes returned",
            format!(
                "{} in {} STATUS messages",
                mb(self.nak_bytes),
                self.status_messages
            ),
        );
        let p = &self.completion_percentiles_s;
        row(
            "receivers completed",
            format!(
                "{} of {} (p50 {:.2} s, p90 {:.2} s, p99 {:.2} s, max {:.2} s)",
                self.completed, self.receivers, p.p50, p.p90, p.p99, p.max
            ),
        );
        let mut lost = format!("{}", self.lost);
        let mut why = Vec::new();
        for (n, what) in [
            (self.crashed, "crashed"),
            (self.left, "left"),
            (self.late, "joined late"),
        ] {
            if n > 0 {
                why.push(format!("{n} {what}"));
            }
        }
        if !why.is_empty() {
            lost += &format!(" (scenario: {})", why.join(", "));
        }
        row("lost receivers", lost);
        if self.unfinished > 0 {
            row(
                "unfinished",
                format!(
                    "{} receivers that no scenario event touched did not finish",
                    self.unfinished
                ),
            );
        }
        if self.bad_blocks > 0 {
            row("BAD BLOCKS", format!("{}", self.bad_blocks));
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&mut [3.0]).p50, 3.0);
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }
}
