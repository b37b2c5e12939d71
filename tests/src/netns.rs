//! Test networks made of network namespaces: one bridge namespace holding a Linux bridge, and a
//! namespace per host joined to it by a veth pair. Everything a [`Testbed`] creates is deleted
//! when it is dropped, and every process a test starts through [`Proc`] is stopped by PID.
//!
//! Addresses live only inside these namespaces: hosts get `10.77.0.<n>/24` (and `fd77::<n>/64`),
//! there is no default route, and the only link out of each host is its veth into the bridge.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Runs a command, panicking with its output if it fails.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
    if !out.status.success() {
        panic!(
            "`{prog} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics unless the test runs as root with `ip` and `nft` available: network tests never skip
/// silently.
pub fn require_root_tools() {
    let uid = sh("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "network-namespace tests need root (CI runs as root)"
    );
    for tool in ["ip", "nft"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            "`{tool}` is missing: run `cargo xtask setup`"
        );
    }
}

/// Holds a machine-wide lock so that network tests (which load both cores) run one at a time,
/// across test binaries too.
#[derive(Debug)]
pub struct SerialGuard {
    _file: File,
}

/// Takes the machine-wide network-test lock.
pub fn serial() -> SerialGuard {
    let file = File::create(std::env::temp_dir().join("uftp-rs-netns.lock")).expect("lock file");
    file.lock().expect("lock");
    SerialGuard { _file: file }
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
    /// Its IPv6 address.
    pub ipv6: String,
}

impl Host {
    /// A command that runs `prog` inside this host's namespace.
    pub fn command(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(prog);
        cmd
    }

    /// Runs `prog args` in this host and returns its output, panicking if it fails.
    pub fn run(&self, prog: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.ns.as_str(), prog];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Drops `percent`% of the UDP datagrams this host receives (nftables, random), replacing any
    /// earlier loss rule. 0 removes it.
    pub fn set_loss(&self, percent: u32) {
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "delete", "table", "inet", "uftploss",
            ])
            .stderr(Stdio::null())
            .status();
        if percent == 0 {
            return;
        }
        let rules = format!(
            "table inet uftploss {{\n  chain input {{\n    type filter hook input priority 0;\n    \
             meta l4proto udp numgen random mod 100 < {percent} counter drop\n  }}\n}}\n"
        );
        let path = std::env::temp_dir().join(format!("uftp-rs-{}.nft", self.ns));
        std::fs::write(&path, rules).expect("nft rules file");
        self.run("nft", &["-f", path.to_str().expect("utf-8 path")]);
        let _ = std::fs::remove_file(path);
    }

    /// Datagrams the loss rule has dropped so far (0 without a loss rule).
    pub fn dropped(&self) -> u64 {
        let out = self
            .command("nft")
            .args(["list", "table", "inet", "uftploss"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A TAP device on a testbed's bridge, for a user-space network stack (the firmware's host run)
/// that opens it by name from inside the bridge namespace and brings its own addresses.
#[derive(Debug, Clone)]
pub struct Tap {
    /// The bridge namespace, where the device lives and its user must run.
    pub ns: String,
    /// The device's name.
    pub ifname: String,
}

impl Tap {
    /// A command that runs `prog` inside the TAP device's namespace.
    pub fn command(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(prog);
        cmd
    }

    /// Drops `percent`% of the UDP datagrams the bridge forwards to this device (nftables,
    /// random; the bridge family, since no kernel IP stack sits behind a TAP), replacing any
    /// earlier rule. 0 removes it.
    pub fn set_loss(&self, percent: u32) {
        let table = format!("uftploss_{}", self.ifname);
        let _ = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "delete", "table", "bridge", &table,
            ])
            .stderr(Stdio::null())
            .status();
        if percent == 0 {
            return;
        }
        let rules = format!(
            "table bridge {table} {{\n  chain forward {{\n    type filter hook forward priority 0;\n    \
             oifname \"{}\" meta l4proto udp numgen random mod 100 < {percent} counter drop\n  \
             }}\n}}\n",
            self.ifname
        );
        let path = std::env::temp_dir().join(format!("uftp-rs-{}-{}.nft", self.ns, self.ifname));
        std::fs::write(&path, rules).expect("nft rules file");
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns,
                "nft",
                "-f",
                path.to_str().expect("utf-8 path"),
            ],
        );
        let _ = std::fs::remove_file(path);
    }

    /// Datagrams the loss rule has dropped so far (0 without a loss rule).
    pub fn dropped(&self) -> u64 {
        let table = format!("uftploss_{}", self.ifname);
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "nft", "list", "table", "bridge", &table,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// A bridge and `hosts` hosts on it; deleted on drop.
#[derive(Debug)]
pub struct Testbed {
    namespaces: Vec<String>,
    /// The namespace holding the bridge `br0`.
    bridge: String,
    /// The hosts, in creation order: by convention `hosts[0]` is the sender.
    pub hosts: Vec<Host>,
    /// A scratch directory for this testbed's files and logs.
    pub dir: PathBuf,
}

impl Testbed {
    /// Builds a bridge with `hosts` hosts (at most 200).
    pub fn new(hosts: usize) -> Testbed {
        require_root_tools();
        assert!(hosts <= 200);
        let tag = format!(
            "{:x}{:x}",
            std::process::id() & 0xfff,
            NEXT.fetch_add(1, Ordering::Relaxed) & 0xff
        );
        let prefix = format!("ut{tag}");
        let dir = std::env::temp_dir().join(format!("uftp-rs-test-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let br_ns = format!("{prefix}-br");
        let mut bed = Testbed {
            namespaces: Vec::new(),
            bridge: br_ns.clone(),
            hosts: Vec::new(),
            dir,
        };
        bed.add_ns(&br_ns);
        sh(
            "ip",
            &[
                "-n",
                &br_ns,
                "link",
                "add",
                "br0",
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        );
        sh("ip", &["-n", &br_ns, "link", "set", "br0", "up"]);
        for i in 0..hosts {
            let n = i + 1;
            let ns = format!("{prefix}-h{n}");
            bed.add_ns(&ns);
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            // Unique in the root namespace too, where veths are born.
            let ifname = format!("{prefix}h{n}");
            let peer = format!("{prefix}p{n}");
            sh(
                "ip",
                &[
                    "link", "add", &ifname, "netns", &ns, "type", "veth", "peer", "name", &peer,
                    "netns", &br_ns,
                ],
            );
            sh("ip", &["-n", &br_ns, "link", "set", &peer, "master", "br0"]);
            sh("ip", &["-n", &br_ns, "link", "set", &peer, "up"]);
            sh("ip", &["-n", &ns, "link", "set", &ifname, "up"]);
            let ipv4 = format!("10.77.0.{n}");
            let ipv6 = format!("fd77::{n:x}");
            sh(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{ipv4}/24"),
                    "dev",
                    &ifname,
                ],
            );
            sh(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{ipv6}/64"),
                    "dev",
                    &ifname,
                    "nodad",
                ],
            );
            sh(
                "ip",
                &["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &ifname],
            );
            sh(
                "ip",
                &[
                    "-n", &ns, "-6", "route", "add", "ff00::/8", "dev", &ifname, "table", "local",
                ],
            );
            bed.hosts.push(Host {
                ns,
                ifname,
                ipv4,
                ipv6,
            });
        }
        bed
    }

    fn add_ns(&mut self, ns: &str) {
        sh("ip", &["netns", "add", ns]);
        self.namespaces.push(ns.to_string());
    }

    /// Adds a TAP device `ifname` (at most 15 bytes) to the bridge, up; it goes with the
    /// bridge namespace when the testbed is dropped.
    pub fn add_tap(&self, ifname: &str) -> Tap {
        let ns = self.bridge.as_str();
        sh(
            "ip",
            &["-n", ns, "tuntap", "add", "dev", ifname, "mode", "tap"],
        );
        sh("ip", &["-n", ns, "link", "set", ifname, "master", "br0"]);
        sh("ip", &["-n", ns, "link", "set", ifname, "up"]);
        Tap {
            ns: ns.to_string(),
            ifname: ifname.to_string(),
        }
    }

    /// Host `i` (0 is the sender by convention).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A process a test started; stopped by PID (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    /// A name for messages.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        let out = File::create(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Some(child),
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits up to `limit` until its log holds `line`; panics with the log if it exits first or
    /// the time runs out (how the tests wait for a program to be ready).
    pub fn wait_for_line(&mut self, line: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log_text().contains(line) {
            assert!(
                self.running(),
                "{} exited before logging {line:?}:\n{}",
                self.name,
                self.log_text()
            );
            assert!(
                start.elapsed() < limit,
                "{} did not log {line:?} in {limit:?}:\n{}",
                self.name,
                self.log_text()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// Stops every one of `procs` and returns their logs, each under a `--- name:` line (for
    /// a failing assertion's message).
    pub fn stop_all(procs: &mut [Proc]) -> String {
        procs
            .iter_mut()
            .map(|p| {
                p.stop();
                format!("--- {}:\n{}", p.name, p.log_text())
            })
            .collect()
    }

    /// Its log so far. Lossy: Debian's `uftpd` logs raw bytes when a reverse lookup fails, and
    /// one invalid UTF-8 sequence must not blank the whole log.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `limit` for it to exit by itself and returns its exit code; panics (after
    /// killing it) if it does not, showing its log.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let child = self.child.as_mut().expect("not yet stopped");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                let code = st.code().unwrap_or(-1);
                self.child = None;
                return code;
            }
            if start.elapsed() > limit {
                self.signal("KILL");
                panic!(
                    "{} did not finish in {limit:?}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by PID (e.g. "TERM", "KILL") without waiting.
    pub fn signal(&mut self, signal: &str) {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args([format!("-{signal}"), child.id().to_string()])
                    .status();
            }
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
                sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Path of one of this workspace's binaries (`uftp`, `uftpd`, …), built with the release
/// profile whatever profile the tests use: the end-to-end tests run real transfers at hundreds of
/// Mbit/s beside uftp 4.10.2 (an optimised C program), and an unoptimised receiver falls so far
/// behind that the peer gives up on it. Cargo rebuilds only what changed.
pub fn our_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        // target/<profile>/deps/<test> → target/release
        let target_dir = exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "std-host", "--bins"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build");
        assert!(status.success(), "building std-host's binaries failed");
        target_dir.join("release")
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// SHA-256 of a file, as lowercase hex (via `sha256sum`).
pub fn sha256(path: &Path) -> String {
    let out = sh("sha256sum", &[path.to_str().expect("utf-8 path")]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Writes `len` deterministic pseudo-random bytes (from `seed`) to `path`.
pub fn write_pattern(path: &Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(File::create(path).expect("create"));
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = left.min(8);
        f.write_all(&bytes[..n]).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
}
