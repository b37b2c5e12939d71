//! Mixed groups, each receiver in its own network namespace: two of our `uftpd`s and one
//! Debian `uftpd -t` 4.10.2 in the same session.
//!
//! - Our `uftp` sends a 50 MiB file and a directory tree (nested directories, an empty file, an
//!   empty directory, a symlink, a name with spaces) to the group at 0% and 3% loss on every
//!   receiver's input: every file must arrive byte-identical everywhere, no temporary may remain,
//!   `uftp` must exit 0 and its summary must name every client as completed.
//! - Debian's `uftp` sends the same content to the same kind of group at 3% loss.
//! - Our `uftp` is killed (SIGKILL) half-way through the 50 MiB file: once every receiver has
//!   timed out (ROBUST × GRTT), no receiver may hold the file under its final name, and ours
//!   must hold no temporary either.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::tree::{listing, make_content, names, temporaries};

/// Hosts 1..=OURS run our `uftpd`; host `DEBIAN` runs Debian's.
const OURS: usize = 2;
const DEBIAN: usize = 3;
const BIG: u64 = 50 << 20;

fn uid(i: usize) -> String {
    format!("0x0C0000{i:02X}")
}

struct Group {
    bed: Testbed,
    receivers: Vec<Proc>,
    dests: Vec<PathBuf>,
}

impl Group {
    /// A sender host and the three receivers, each listening.
    fn start() -> Group {
        let bed = Testbed::new(DEBIAN + 1);
        let mut receivers = Vec::new();
        let mut dests = Vec::new();
        for i in 1..=DEBIAN {
            let h = bed.host(i).clone();
            let dest = bed.path(&format!("dest{i}"));
            fs::create_dir_all(&dest).unwrap();
            let (name, mut cmd) = if i <= OURS {
                let mut c = h.command(our_binary("uftpd"));
                c.args(["-x", "3", "-B", "4194304"]);
                (format!("our uftpd{i}"), c)
            } else {
                let mut c = h.command("uftpd");
                c.args(["-t", "-x", "2"]);
                (format!("debian uftpd{i}"), c)
            };
            cmd.args(["-d", "-U", &uid(i), "-I", &h.ifname, "-D"])
                .arg(&dest);
            receivers.push(Proc::spawn(&name, cmd, &bed.path(&format!("uftpd{i}.log"))));
            dests.push(dest);
        }
        let t0 = Instant::now();
        for (i, r) in receivers.iter_mut().enumerate() {
            // Ours logs once its socket is bound; Debian's last start-up line follows its bind.
            let ready = if i < OURS {
                "listening on port"
            } else {
                "Loaded"
            };
            while !r.log_text().contains(ready) {
                assert!(r.running(), "{} exited:\n{}", r.name, r.log_text());
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "{} did not start:\n{}",
                    r.name,
                    r.log_text()
                );
                sleep(Duration::from_millis(20));
            }
        }
        Group {
            bed,
            receivers,
            dests,
        }
    }

    fn ids(&self) -> String {
        (1..=DEBIAN).map(uid).collect::<Vec<_>>().join(",")
    }

    fn set_loss(&self, percent: u32) {
        for i in 1..=DEBIAN {
            self.bed.host(i).set_loss(percent);
        }
    }

    /// Datagrams the loss rules dropped, per receiver.
    fn dropped(&self) -> Vec<u64> {
        (1..=DEBIAN).map(|i| self.bed.host(i).dropped()).collect()
    }

    /// Our `uftp` on host 0 with `args` before the items.
    fn our_uftp(&self, args: &[&str], items: &[PathBuf]) -> Proc {
        let h = self.bed.host(0);
        let mut cmd = h.command(our_binary("uftp"));
        cmd.args(["-U", "0x0A4D0001", "-I", &h.ifname, "-H", &self.ids()])
            .args(args)
            .args(items);
        Proc::spawn("our uftp", cmd, &self.bed.path("uftp.log"))
    }

    /// Debian's `uftp` on host 0 with `args` before the items.
    fn debian_uftp(&self, args: &[&str], items: &[PathBuf]) -> Proc {
        let h = self.bed.host(0);
        let mut cmd: Command = h.command("uftp");
        cmd.args(["-I", &h.ifname, "-H", &self.ids()])
            .args(args)
            .args(items);
        Proc::spawn("debian uftp", cmd, &self.bed.path("uftp.log"))
    }

    fn logs(&self) -> String {
        self.receivers
            .iter()
            .map(|r| format!("--- {}:\n{}", r.name, r.log_text()))
            .collect()
    }

    /// Every receiver holds exactly `src` (which also rules out leftover temporaries), and every
    /// receiver is still running.
    fn check_delivery(&mut self, src: &Path) {
        let want = listing(src);
        for d in &self.dests {
            let temps = temporaries(d);
            assert!(
                temps.is_empty(),
                "{}: temporaries left: {temps:?}\n{}",
                d.display(),
                self.logs()
            );
            assert_eq!(
                listing(d),
                want,
                "{} differs from the source\n{}",
                d.display(),
                self.logs()
            );
        }
        let logs = self.logs();
        for r in &mut self.receivers {
            assert!(r.running(), "{} died:\n{logs}", r.name);
        }
    }
}

fn our_uftp_to_mixed_group(loss: u32) {
    let _lock = serial();
    let mut g = Group::start();
    let items = make_content(&g.bed.dir, BIG);
    g.set_loss(loss);
    let t0 = Instant::now();
    let mut sender = g.our_uftp(&["-R", "200000", "-r", "0.05:0.01:1", "-x", "2"], &items);
    let code = sender.wait(Duration::from_secs(90));
    let took = t0.elapsed();
    let log = sender.log_text();
    assert_eq!(code, 0, "uftp exit code; log:\n{log}\n{}", g.logs());
    let dropped = g.dropped();
    eprintln!("our uftp, {loss}% loss: {took:?}; dropped by nftables {dropped:?}\n{log}");
    if loss > 0 {
        assert!(
            dropped.iter().all(|&d| d > 100),
            "loss rule inactive: {dropped:?}"
        );
        assert!(log.contains("retransmitted"), "{log}");
    }
    for i in 1..=DEBIAN {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("client {}", uid(i))) && l.contains(": completed;"));
        assert!(
            line.is_some(),
            "summary does not name {} as completed:\n{log}",
            uid(i)
        );
    }
    g.check_delivery(&g.bed.dir.join("src"));
}

#[test]
fn our_uftp_to_two_ours_and_one_debian_no_loss() {
    our_uftp_to_mixed_group(0);
}

#[test]
fn our_uftp_to_two_ours_and_one_debian_3pct_loss() {
    our_uftp_to_mixed_group(3);
}

#[test]
fn debian_uftp_to_two_ours_and_one_debian_3pct_loss() {
    let _lock = serial();
    let mut g = Group::start();
    let items = make_content(&g.bed.dir, BIG);
    g.set_loss(3);
    let t0 = Instant::now();
    let mut sender = g.debian_uftp(&["-R", "200000", "-r", "0.05", "-x", "2"], &items);
    let code = sender.wait(Duration::from_secs(90));
    let took = t0.elapsed();
    let log = sender.log_text();
    assert_eq!(code, 0, "Debian uftp failed:\n{log}\n{}", g.logs());
    let dropped = g.dropped();
    eprintln!("Debian uftp, 3% loss: {took:?}; dropped by nftables {dropped:?}");
    assert!(
        dropped.iter().all(|&d| d > 100),
        "loss rule inactive: {dropped:?}"
    );
    g.check_delivery(&g.bed.dir.join("src"));
    for r in &g.receivers[..OURS] {
        assert!(
            r.log_text().contains("Session complete"),
            "{}:\n{}",
            r.name,
            r.log_text()
        );
    }
}

/// Bytes written so far to our receiver's temporary for `big.bin` in `dest`, if it exists. Our
/// `uftpd` sizes the temporary up front (sparse), so the allocated blocks tell the progress, not
/// the length.
fn temp_written(dest: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(dest).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        (name.starts_with(".big.bin.") && name.ends_with(".part"))
            .then(|| e.metadata().map(|m| m.blocks() * 512).unwrap_or(0))
    })
}

#[test]
fn our_uftp_killed_mid_transfer_leaves_no_final_file() {
    let _lock = serial();
    let mut g = Group::start();
    let items = make_content(&g.bed.dir, BIG);
    // 80 Mbit/s: the 50 MiB file takes about 5 s.
    let mut sender = g.our_uftp(
        &["-R", "80000", "-r", "0.05:0.01:1", "-x", "2"],
        &items[..1],
    );
    let t0 = Instant::now();
    loop {
        if temp_written(&g.dests[0]).is_some_and(|n| n >= BIG / 2) {
            break;
        }
        assert!(sender.running(), "uftp ended early:\n{}", sender.log_text());
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the transfer did not reach half-way:\n{}\n{}",
            sender.log_text(),
            g.logs()
        );
        sleep(Duration::from_millis(20));
    }
    sender.signal("KILL");
    let code = sender.wait(Duration::from_secs(5));
    assert_eq!(code, -1, "uftp should have died of SIGKILL");
    let killed_at = t0.elapsed();
    // Every receiver gives the session up after ROBUST × GRTT without hearing from the sender
    // (about 1 s here); allow far more, but stop polling as soon as all three have said so.
    let t1 = Instant::now();
    loop {
        let timed_out: Vec<bool> = g
            .receivers
            .iter()
            .map(|r| r.log_text().contains("Transfer timed out"))
            .collect();
        if timed_out.iter().all(|&t| t) {
            break;
        }
        assert!(
            t1.elapsed() < Duration::from_secs(20),
            "no timeout on every receiver ({timed_out:?}):\n{}",
            g.logs()
        );
        sleep(Duration::from_millis(100));
    }
    eprintln!(
        "killed after {killed_at:?}; every receiver timed out {:?} later",
        t1.elapsed()
    );
    for (i, d) in g.dests.iter().enumerate() {
        let left = names(d);
        assert!(
            !left.iter().any(|n| n == "big.bin"),
            "{} holds big.bin under its final name: {left:?}\n{}",
            d.display(),
            g.logs()
        );
        if i < OURS {
            // Our uftpd deletes the temporary on timeout, and the final name was never created.
            assert!(
                left.is_empty(),
                "{} left behind: {left:?}\n{}",
                d.display(),
                g.logs()
            );
            let log = g.receivers[i].log_text();
            assert!(
                log.contains("big.bin): temporary removed"),
                "the abort is not logged by name:\n{log}"
            );
        }
    }
    let logs = g.logs();
    for r in &mut g.receivers {
        assert!(r.running(), "{} died:\n{logs}", r.name);
    }
}
