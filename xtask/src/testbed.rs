//! The benchmarks' network: one sender namespace and N receiver namespaces, each joined by a veth
//! pair to a Linux bridge in a namespace of its own, at a chosen MTU, with optional random loss
//! (nftables) on each receiver's input. Everything is deleted when the [`Testbed`] is dropped,
//! and [`Proc`]esses are stopped by PID.
//!
//! Names start with `ub<pid in hex>`, apart from the test suite's `ut…` testbeds, and addresses
//! are `10.78.0.<n>/24`, apart from the test suite's `10.77.0.0/24`. A testbed left behind by a
//! killed run is removed by the next run once its process is gone ([`remove_stale`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `prog args`; its standard output, or an error with its output.
pub fn sh(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {prog}"))?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails unless this runs as root with `ip` and `nft`.
pub fn require_root_tools() -> Result<()> {
    if sh("id", &["-u"])?.trim() != "0" {
        bail!("this job builds network namespaces: run it as root");
    }
    for tool in ["ip", "nft"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            bail!("`{tool}` is missing: run `cargo xtask setup`");
        }
    }
    Ok(())
}

/// This process's name prefix (`ub` and the PID in hex).
pub fn prefix() -> String {
    format!("ub{:x}", std::process::id())
}

/// Deletes the namespaces and scratch directories of earlier runs whose process is gone.
pub fn remove_stale() {
    let gone = |pid: u32| !Path::new(&format!("/proc/{pid}")).exists();
    let list = sh("ip", &["netns", "list"]).unwrap_or_default();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if owner(name).is_some_and(gone) {
            let _ = sh("ip", &["netns", "del", name]);
        }
    }
    if let Ok(dir) = std::fs::read_dir(SCRATCH_PARENT) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(SCRATCH_PREFIX)
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(gone) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Where files go: tmpfs, so that disk speed does not count.
const SCRATCH_PARENT: &str = "/dev/shm";
const SCRATCH_PREFIX: &str = "uftp-rs-bench-";

/// This process's scratch directory on tmpfs (not created here).
pub fn scratch() -> PathBuf {
    Path::new(SCRATCH_PARENT).join(format!("{SCRATCH_PREFIX}{}", std::process::id()))
}

/// The PID in a namespace name this module made (`ub<hex pid><serial>-br|s|r<n>`).
fn owner(name: &str) -> Option<u32> {
    let (tag, role) = name.strip_prefix("ub")?.split_once('-')?;
    let role_ok = role == "br"
        || role == "s"
        || role
            .strip_prefix('r')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !role_ok || tag.len() < 2 {
        return None;
    }
    // The last hex digit is the testbed's serial.
    u32::from_str_radix(&tag[..tag.len() - 1], 16).ok()
}

/// One host of a testbed.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its namespace.
    pub ns: String,
    /// Its interface on the bridge.
    pub ifname: String,
    /// Its IPv4 address.
    pub ipv4: String,
}

impl Host {
    /// A command that runs `prog` inside this host's namespace.
    pub fn command(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(prog);
        cmd
    }

    /// Drops `percent`% of the UDP datagrams this host receives (nftables, random).
    pub fn set_loss(&self, percent: u32) -> Result<()> {
        let rules = format!(
            "table inet ubloss {{\n  chain input {{\n    type filter hook input priority 0;\n    \
             meta l4proto udp numgen random mod 100 < {percent} counter drop\n  }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("{}.nft", self.ns));
        std::fs::write(&path, rules)?;
        let done = sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns,
                "nft",
                "-f",
                path.to_str().context("temporary directory is not UTF-8")?,
            ],
        );
        let _ = std::fs::remove_file(path);
        done.map(drop)
    }

    /// Datagrams the loss rule has dropped so far.
    pub fn dropped(&self) -> Result<u64> {
        let out = sh(
            "ip",
            &[
                "netns", "exec", &self.ns, "nft", "list", "table", "inet", "ubloss",
            ],
        )?;
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .context("no counter in the loss rule")
    }

    /// Bytes sent on its interface so far (Ethernet frames).
    pub fn tx_bytes(&self) -> Result<u64> {
        let path = format!("/sys/class/net/{}/statistics/tx_bytes", self.ifname);
        sh("ip", &["netns", "exec", &self.ns, "cat", &path])?
            .trim()
            .parse()
            .context("tx_bytes")
    }
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A bridge, a sender and `receivers` receivers; deleted on drop.
#[derive(Debug)]
pub struct Testbed {
    namespaces: Vec<String>,
    /// The sending host.
    pub sender: Host,
    /// The receiving hosts.
    pub receivers: Vec<Host>,
}

impl Testbed {
    /// Builds the network: every link at `mtu`, no loss.
    pub fn new(receivers: usize, mtu: u32) -> Result<Testbed> {
        if !(1..=200).contains(&receivers) {
            bail!("between 1 and 200 receivers");
        }
        // A serial per testbed: a deleted namespace's veths may linger a moment.
        let tag = format!(
            "{}{:x}",
            prefix(),
            SERIAL.fetch_add(1, Ordering::Relaxed) % 16
        );
        let br = format!("{tag}-br");
        let mut bed = Testbed {
            namespaces: Vec::new(),
            sender: Host {
                ns: String::new(),
                ifname: String::new(),
                ipv4: String::new(),
            },
            receivers: Vec::new(),
        };
        bed.add_ns(&br)?;
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        let mtu = mtu.to_string();
        for n in 0..=receivers {
            let (ns, ifname) = if n == 0 {
                (format!("{tag}-s"), format!("{tag}s"))
            } else {
                (format!("{tag}-r{n}"), format!("{tag}r{n}"))
            };
            let peer = format!("{tag}p{n}");
            bed.add_ns(&ns)?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &ifname, "mtu", &mtu, "netns", &ns, "type", "veth", "peer", "name",
                &peer, "mtu", &mtu, "netns", &br,
            ])?;
            ip(&["-n", &br, "link", "set", &peer, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &peer, "up"])?;
            ip(&["-n", &ns, "link", "set", &ifname, "up"])?;
            let ipv4 = format!("10.78.0.{}", n + 1);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ipv4}/24"),
                "dev",
                &ifname,
            ])?;
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &ifname])?;
            let host = Host { ns, ifname, ipv4 };
            if n == 0 {
                bed.sender = host;
            } else {
                bed.receivers.push(host);
            }
        }
        Ok(bed)
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        Ok(())
    }
}

fn ip(args: &[&str]) -> Result<()> {
    sh("ip", args).map(drop)
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A process this job started; stopped by PID (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    /// A name for messages.
    pub name: String,
    /// Where its standard output and error go.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with standard output and error written to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Some(child),
        })
    }

    /// The process ID (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Its log so far (lossy UTF-8: Debian's programs may log raw bytes).
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Forgets the child once it was reaped elsewhere (by `wait4`).
    pub fn reaped(&mut self) {
        self.child = None;
    }

    /// Waits (10 s at most) until its log contains `line`.
    pub fn wait_for_line(&mut self, line: &str) -> Result<()> {
        let t0 = Instant::now();
        while !self.log_text().contains(line) {
            crate::bench::check_interrupt()?;
            if !self.running() {
                bail!("{} exited at start-up:\n{}", self.name, self.log_text());
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{} did not start within 10 s:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Waits up to `limit` for it to exit by itself; its exit code, or an error (after killing
    /// it) if it does not.
    pub fn wait(&mut self, limit: Duration) -> Result<i32> {
        let start = Instant::now();
        loop {
            let child = self.child.as_mut().context("not running")?;
            if let Some(st) = child.try_wait()? {
                self.child = None;
                return Ok(st.code().unwrap_or(-1));
            }
            if start.elapsed() > limit {
                self.stop();
                bail!("{} did not finish within {limit:?}", self.name);
            }
            crate::bench::check_interrupt()?;
            sleep(Duration::from_millis(10));
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(3) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn owner_reads_only_our_namespace_names() {
        assert_eq!(owner("ub1f2a0-br"), Some(0x1f2a));
        assert_eq!(owner("ub1f2a3-r16"), Some(0x1f2a));
        assert_eq!(owner("ub1f2a3-s"), Some(0x1f2a));
        // The test suite's, others', and look-alikes.
        assert_eq!(owner("ut1f2a3-h1"), None);
        assert_eq!(owner("lb-h1"), None);
        assert_eq!(owner("ubuntu-br"), None);
        assert_eq!(owner("ub1f2a3-x"), None);
        assert_eq!(owner("ub1f2a3-r"), None);
    }
}
