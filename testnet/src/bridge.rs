//! Bridged test networks: one bridge namespace holding a Linux bridge `br0`, and a namespace per
//! host joined to it by a veth pair. Everything a [`Testbed`] creates is deleted when it is
//! dropped, also when a test panics.
//!
//! Addresses live only inside these namespaces: there is no default route, and the only link
//! out of each host is its veth into the bridge. The tests' plan ([`Testbed::new`]) gives hosts
//! `10.77.0.<n>/24` and `fd77::<n>/64` under names starting `ut…`; the benchmarks (`xtask`) use
//! their own [`Plan`] (`ub…`, `10.78.0.<n>/24`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::shell::{nft_packets, or_panic, run_in, try_require_root_tools, try_sh, Error};

/// One host of a testbed.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its namespace.
    pub ns: String,
    /// Its interface on the bridge.
    pub ifname: String,
    /// Its IPv4 address.
    pub ipv4: String,
    /// Its IPv6 address (empty on an IPv4-only network).
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
        or_panic(run_in(&self.ns, prog, args))
    }

    /// Drops `percent`% of the UDP datagrams this host receives (nftables, random), replacing any
    /// earlier loss rule. 0 removes it.
    pub fn try_set_loss(&self, percent: u32) -> Result<(), Error> {
        let rules = format!(
            "table inet uftploss {{\n  chain input {{\n    type filter hook input priority 0;\n    \
             meta l4proto udp numgen random mod 100 < {percent} counter drop\n  }}\n}}\n"
        );
        self.replace_loss_rule(percent, &rules)
    }

    /// [`Host::try_set_loss`], panicking if it fails.
    pub fn set_loss(&self, percent: u32) {
        or_panic(self.try_set_loss(percent))
    }

    /// Replaces the table `inet uftploss` with `rules` (none when `percent` is 0).
    pub(crate) fn replace_loss_rule(&self, percent: u32, rules: &str) -> Result<(), Error> {
        let _ = self
            .command("nft")
            .args(["delete", "table", "inet", "uftploss"])
            .stderr(Stdio::null())
            .status();
        if percent == 0 {
            return Ok(());
        }
        let path = std::env::temp_dir().join(format!("uftp-rs-{}.nft", self.ns));
        std::fs::write(&path, rules).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        let path_str = path
            .to_str()
            .ok_or_else(|| Error("temporary directory is not UTF-8".into()));
        let done = path_str.and_then(|p| run_in(&self.ns, "nft", &["-f", p]));
        let _ = std::fs::remove_file(&path);
        done.map(drop)
    }

    /// Datagrams the loss rule has dropped so far (0 without a loss rule).
    pub fn dropped(&self) -> u64 {
        run_in(&self.ns, "nft", &["list", "table", "inet", "uftploss"])
            .ok()
            .and_then(|out| nft_packets(&out))
            .unwrap_or(0)
    }

    /// Bytes sent on its interface so far (Ethernet frames).
    pub fn try_tx_bytes(&self) -> Result<u64, Error> {
        let path = format!("/sys/class/net/{}/statistics/tx_bytes", self.ifname);
        run_in(&self.ns, "cat", &[&path])?
            .trim()
            .parse()
            .map_err(|e| Error(format!("{path}: {e}")))
    }
}

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
        let _ = self
            .command("nft")
            .args(["delete", "table", "bridge", &table])
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
        or_panic(run_in(
            &self.ns,
            "nft",
            &["-f", path.to_str().expect("utf-8 path")],
        ));
        let _ = std::fs::remove_file(path);
    }

    /// Datagrams the loss rule has dropped so far (0 without a loss rule).
    pub fn dropped(&self) -> u64 {
        let table = format!("uftploss_{}", self.ifname);
        run_in(&self.ns, "nft", &["list", "table", "bridge", &table])
            .ok()
            .and_then(|out| nft_packets(&out))
            .unwrap_or(0)
    }
}

/// How to build a [`Testbed`]: names, addresses, MTU and scratch directory.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The start of every name: namespaces are `<tag>-br` and `<tag>-h<n>`, interfaces
    /// `<tag>h<n>` (on the host) and `<tag>p<n>` (on the bridge), so at most 10 bytes.
    pub tag: String,
    /// The hosts' IPv4 /24 (`"10.77.0"`): host `n` (from 1) is `<net4>.<n>`.
    pub net4: String,
    /// The hosts' IPv6 /64 (`"fd77:"`): host `n` is `<net6>:<n in hex>`; none for IPv4 only.
    pub net6: Option<String>,
    /// Every link's MTU; the kernel's default (1500) when none.
    pub mtu: Option<u32>,
    /// A scratch directory the testbed creates empty and deletes on drop (kept when a test
    /// panics, for its logs).
    pub scratch: Option<PathBuf>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A bridge and hosts on it; deleted on drop.
#[derive(Debug)]
pub struct Testbed {
    namespaces: Vec<String>,
    /// The namespace holding the bridge `br0`.
    bridge: String,
    /// The hosts, in creation order: by convention `hosts[0]` is the sender.
    pub hosts: Vec<Host>,
    /// The plan's scratch directory (empty without one).
    pub dir: PathBuf,
    owns_dir: bool,
}

impl Testbed {
    /// The tests' testbed: `hosts` hosts (at most 200) on `10.77.0.0/24` and `fd77::/64`, a
    /// scratch directory under the temporary directory; panics if it cannot be built.
    pub fn new(hosts: usize) -> Testbed {
        let tag = format!(
            "ut{:x}{:x}",
            std::process::id() & 0xfff,
            NEXT.fetch_add(1, Ordering::Relaxed) & 0xff
        );
        let plan = Plan {
            scratch: Some(std::env::temp_dir().join(format!("uftp-rs-test-{tag}"))),
            tag,
            net4: "10.77.0".into(),
            net6: Some("fd77:".into()),
            mtu: None,
        };
        or_panic(Testbed::try_with(hosts, &plan))
    }

    /// Builds a bridge with `hosts` hosts (at most 200) as `plan` says.
    pub fn try_with(hosts: usize, plan: &Plan) -> Result<Testbed, Error> {
        try_require_root_tools()?;
        if hosts > 200 {
            return Err(Error(format!("{hosts} hosts: at most 200")));
        }
        let tag = plan.tag.as_str();
        if let Some(dir) = &plan.scratch {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).map_err(|e| Error(format!("{}: {e}", dir.display())))?;
        }
        let br_ns = format!("{tag}-br");
        let mut bed = Testbed {
            namespaces: Vec::new(),
            bridge: br_ns.clone(),
            hosts: Vec::new(),
            dir: plan.scratch.clone().unwrap_or_default(),
            owns_dir: plan.scratch.is_some(),
        };
        bed.add_ns(&br_ns)?;
        add_bridge(&br_ns)?;
        let mtu = plan.mtu.map(|m| m.to_string());
        for n in 1..=hosts {
            let ns = format!("{tag}-h{n}");
            bed.add_ns(&ns)?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            // Unique in the root namespace too, where veths are born.
            let ifname = format!("{tag}h{n}");
            let peer = format!("{tag}p{n}");
            let mut add = vec!["link", "add", &ifname];
            if let Some(m) = &mtu {
                add.extend(["mtu", m]);
            }
            add.extend(["netns", &ns, "type", "veth", "peer", "name", &peer]);
            if let Some(m) = &mtu {
                add.extend(["mtu", m]);
            }
            add.extend(["netns", &br_ns]);
            ip(&add)?;
            ip(&["-n", &br_ns, "link", "set", &peer, "master", "br0"])?;
            ip(&["-n", &br_ns, "link", "set", &peer, "up"])?;
            ip(&["-n", &ns, "link", "set", &ifname, "up"])?;
            let ipv4 = format!("{}.{n}", plan.net4);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{ipv4}/24"),
                "dev",
                &ifname,
            ])?;
            let ipv6 = match &plan.net6 {
                Some(net6) => {
                    let ipv6 = format!("{net6}:{n:x}");
                    ip(&[
                        "-n",
                        &ns,
                        "addr",
                        "add",
                        &format!("{ipv6}/64"),
                        "dev",
                        &ifname,
                        "nodad",
                    ])?;
                    ipv6
                }
                None => String::new(),
            };
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &ifname])?;
            if plan.net6.is_some() {
                ip(&[
                    "-n", &ns, "-6", "route", "add", "ff00::/8", "dev", &ifname, "table", "local",
                ])?;
            }
            bed.hosts.push(Host {
                ns,
                ifname,
                ipv4,
                ipv6,
            });
        }
        Ok(bed)
    }

    fn add_ns(&mut self, ns: &str) -> Result<(), Error> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_string());
        Ok(())
    }

    /// Adds a TAP device `ifname` (at most 15 bytes) to the bridge, up; it goes with the
    /// bridge namespace when the testbed is dropped.
    pub fn add_tap(&self, ifname: &str) -> Tap {
        let ns = self.bridge.as_str();
        or_panic(ip(&[
            "-n", ns, "tuntap", "add", "dev", ifname, "mode", "tap",
        ]));
        or_panic(ip(&["-n", ns, "link", "set", ifname, "master", "br0"]));
        or_panic(ip(&["-n", ns, "link", "set", ifname, "up"]));
        Tap {
            ns: ns.to_string(),
            ifname: ifname.to_string(),
        }
    }

    /// Host `i` (0 is the sender by convention).
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// The sender by convention: the first host.
    pub fn sender(&self) -> &Host {
        &self.hosts[0]
    }

    /// The receivers by convention: every host after the first.
    pub fn receivers(&self) -> &[Host] {
        &self.hosts[1..]
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Adds the bridge `br0`, up and without IGMP snooping (so every host hears every group), in
/// namespace `ns`: the LAN of a testbed.
pub(crate) fn add_bridge(ns: &str) -> Result<(), Error> {
    ip(&[
        "-n",
        ns,
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    ip(&["-n", ns, "link", "set", "br0", "up"])
}

fn ip(args: &[&str]) -> Result<(), Error> {
    try_sh("ip", args).map(drop)
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        if self.owns_dir && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
