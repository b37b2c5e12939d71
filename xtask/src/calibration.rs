//! The bench's `calibration` case: the simulator's calibration scenario ([`sim::calibration`]:
//! our `uftp` to four of our `uftpd`s, 50 MiB, 3% loss on each receiver's input, 50 Mbit/s) run
//! on real sockets in the bench's testbed and in the simulator, and how far the completion times
//! agree. A figure in the report, not a test: on a loaded machine the wall clock wanders.

use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sim::calibration::{Outcome, LOSS_PERCENT, RATE_KBPS, RECEIVERS, SIZE};
use testnet::Proc;

use crate::testbed::testbed;

/// Where simulated and real completion times agree closely enough (sim/real): the simulator's
/// model is good for rates and repairs within a quarter.
pub const AGREEMENT: std::ops::RangeInclusive<f64> = 0.75..=1.25;

/// One calibration: the real run and the simulated one.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    /// On real sockets (uftp's own figures, from its summary line).
    pub real: Outcome,
    /// In the simulator, seed 1.
    pub sim: Outcome,
}

impl Calibration {
    /// Simulated over real completion time.
    pub fn ratio(&self) -> f64 {
        self.sim.secs / self.real.secs
    }

    /// The report's line.
    pub fn describe(&self) -> String {
        let ratio = self.ratio();
        format!(
            "Calibration ({RECEIVERS} receivers, {} MiB, {LOSS_PERCENT}% loss, {RATE_KBPS} Kbps): \
             real {:.2} s, {} FILESEGs, {} retransmitted; simulated {:.2} s, {} FILESEGs, {} \
             retransmitted; time ratio sim/real {ratio:.3}{}.",
            SIZE >> 20,
            self.real.secs,
            self.real.blocks_sent,
            self.real.retransmitted,
            self.sim.secs,
            self.sim.blocks_sent,
            self.sim.retransmitted,
            if AGREEMENT.contains(&ratio) {
                " (within a quarter)"
            } else {
                " (OUTSIDE a quarter: the simulator's model or this machine's load)"
            }
        )
    }
}

/// Runs both; `bin` holds the release programs, `dir` is scratch space (tmpfs).
pub fn run(bin: &Path, dir: &Path) -> Result<Calibration> {
    let sim = sim::calibration::simulate(1).map_err(anyhow::Error::msg)?;
    let real = real_run(bin, &dir.join("calibration"))?;
    Ok(Calibration { real, sim })
}

fn uid(i: usize) -> String {
    format!("0x{:08X}", 0x0C00_0000 + i)
}

fn real_run(bin: &Path, dir: &Path) -> Result<Outcome> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let cleanup = crate::bench::RemoveOnDrop(dir.to_path_buf());
    let bed = testbed(RECEIVERS, 1500)?;
    let src = crate::bench::source_file(dir, SIZE)?;
    let name = src.file_name().context("file name")?;
    let mut receivers = Vec::new();
    for (i, h) in bed.receivers().iter().enumerate() {
        let n = i + 1;
        let dest = dir.join(format!("dest{n}"));
        fs::create_dir_all(&dest)?;
        let mut cmd = h.command(bin.join("uftpd"));
        cmd.args(["-d", "-x", "2", "-B", "4194304", "-I", &h.ifname])
            .args(["-U", &uid(n), "-D"])
            .arg(&dest);
        let mut p = Proc::try_spawn(
            &format!("uftpd{n}"),
            cmd,
            &dir.join(format!("uftpd{n}.log")),
        )?;
        p.try_wait_for_line(
            "listening on port",
            Duration::from_secs(10),
            crate::sys::interrupted,
        )?;
        h.try_set_loss(LOSS_PERCENT)?;
        receivers.push((p, dest));
    }
    let ids: Vec<String> = (1..=RECEIVERS).map(uid).collect();
    let h = bed.sender();
    let mut cmd = h.command(bin.join("uftp"));
    cmd.args(["-U", "0x0A4D0001", "-I", &h.ifname, "-H", &ids.join(",")])
        .args(["-R", &RATE_KBPS.to_string(), "-x", "1"])
        .arg(&src);
    let mut tx = Proc::try_spawn("our uftp", cmd, &dir.join("uftp.log"))?;
    let code = tx.try_wait(Duration::from_secs(120), crate::sys::interrupted)?;
    let log = tx.log_text();
    if code != 0 {
        bail!("uftp failed ({code}):\n{log}");
    }
    for (_, dest) in &receivers {
        crate::bench::same(&src, &dest.join(name))?;
    }
    let outcome = parse_summary(&log).with_context(|| format!("no summary in uftp's log:\n{log}"));
    drop(receivers);
    drop(bed);
    drop(cleanup);
    outcome
}

/// `Session done: F files, B bytes in S s (...); N FILESEGs, R retransmitted, K NAKs`.
fn parse_summary(log: &str) -> Option<Outcome> {
    let line = log.lines().find(|l| l.contains("Session done:"))?;
    let secs = line
        .split(" bytes in ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()?;
    let after = line.split("; ").nth(1)?;
    let mut words = after.split(' ');
    let blocks_sent = words.next()?.parse().ok()?;
    let retransmitted = after.split(", ").nth(1)?.split(' ').next()?.parse().ok()?;
    Some(Outcome {
        secs,
        blocks_sent,
        retransmitted,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_summary;

    #[test]
    fn summary_line_parses() {
        let o = parse_summary(
            "[    9.1] Session done: 1 files, 52428800 bytes in 9.27 s (5.65 MB/s); 46142 \
             FILESEGs, 5813 retransmitted, 5901 NAKs",
        )
        .unwrap();
        assert_eq!(o.blocks_sent, 46142);
        assert_eq!(o.retransmitted, 5813);
        assert!((o.secs - 9.27).abs() < 1e-9);
    }
}
