//! The private test network: network namespaces joined by Linux bridges, torn down on drop.
//!
//! Layout (every name starts with [`PREFIX`] so a crashed run's leftovers can be recognised):
//!
//! ```text
//!   uv-br: br0 (subnet A, 10.99.0.0/24, fd99::/64)     br1 (subnet B, 10.99.1.0/24)
//!           |  |  |  |  |   |                            |        |
//!   uv-srv .1  |  |  |  |   uv-px2 .11 ------------------ .11    uv-c4 .2
//!      uv-c1 .2 |  |  |         (client proxy: A and B)
//!         uv-c2 .3 |  |
//!            uv-c3 .4 |
//!              uv-px1 .10
//! ```
//!
//! Nothing is routed out of these namespaces: none has a default route, and the only link out of
//! each is its veth into `uv-br`.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Every namespace this job creates starts with this.
pub const PREFIX: &str = "uv-";
/// The namespace holding the bridges (and the captures).
pub const BRIDGE_NS: &str = "uv-br";

/// One host of the test network.
#[derive(Debug, Clone, Copy)]
pub struct Node {
    pub ns: &'static str,
    /// The interface on subnet A (or B for `uv-c4`).
    pub ifname: &'static str,
    pub ipv4: &'static str,
    /// IPv6 address on subnet A, if the node has one.
    pub ipv6: Option<&'static str>,
}

pub const SRV: Node = Node {
    ns: "uv-srv",
    ifname: "va-srv",
    ipv4: "10.99.0.1",
    ipv6: Some("fd99::1"),
};
pub const C1: Node = Node {
    ns: "uv-c1",
    ifname: "va-c1",
    ipv4: "10.99.0.2",
    ipv6: Some("fd99::2"),
};
pub const C2: Node = Node {
    ns: "uv-c2",
    ifname: "va-c2",
    ipv4: "10.99.0.3",
    ipv6: Some("fd99::3"),
};
pub const C3: Node = Node {
    ns: "uv-c3",
    ifname: "va-c3",
    ipv4: "10.99.0.4",
    ipv6: None,
};
pub const PX1: Node = Node {
    ns: "uv-px1",
    ifname: "va-px1",
    ipv4: "10.99.0.10",
    ipv6: None,
};
pub const PX2: Node = Node {
    ns: "uv-px2",
    ifname: "va-px2",
    ipv4: "10.99.0.11",
    ipv6: None,
};
/// The client proxy's leg on subnet B.
pub const PX2_B: Node = Node {
    ns: "uv-px2",
    ifname: "vb-px2",
    ipv4: "10.99.1.11",
    ipv6: None,
};
pub const C4: Node = Node {
    ns: "uv-c4",
    ifname: "vb-c4",
    ipv4: "10.99.1.2",
    ipv6: None,
};

const ON_A: [Node; 6] = [SRV, C1, C2, C3, PX1, PX2];
const ON_B: [Node; 2] = [PX2_B, C4];

/// Runs `ip <args>`, failing with the command line if it fails.
pub fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

/// Runs a command to completion, failing with its stderr if it fails.
pub fn run(prog: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{prog}`; is it installed?"))?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command inside namespace `ns` to completion.
pub fn run_in(ns: &str, prog: &str, args: &[&str]) -> Result<()> {
    let mut full = vec!["netns", "exec", ns, prog];
    full.extend_from_slice(args);
    ip(&full)
}

fn existing_namespaces() -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("cannot run `ip`")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The namespaces and links of the test network; dropping it deletes them all.
#[derive(Debug)]
pub struct Network {
    namespaces: Vec<&'static str>,
}

impl Network {
    pub fn create() -> Result<Self> {
        // Leftovers of a run that was killed before its guard could clean up.
        for ns in existing_namespaces()? {
            if ns.starts_with(PREFIX) {
                eprintln!("vectors: removing stale namespace {ns}");
                ip(&["netns", "del", &ns])?;
            }
        }
        let mut net = Network {
            namespaces: Vec::new(),
        };
        net.add_ns(BRIDGE_NS)?;
        for br in ["br0", "br1"] {
            // No snooping: every port hears every group, as on a plain hub.
            ip(&[
                "-n",
                BRIDGE_NS,
                "link",
                "add",
                br,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ])?;
            ip(&["-n", BRIDGE_NS, "link", "set", br, "up"])?;
        }
        for node in ON_A.iter().chain(ON_B.iter()) {
            if !net.namespaces.contains(&node.ns) {
                net.add_ns(node.ns)?;
                ip(&["-n", node.ns, "link", "set", "lo", "up"])?;
            }
            let br = if ON_A.iter().any(|n| n.ifname == node.ifname) {
                "br0"
            } else {
                "br1"
            };
            let peer = format!("p{}", &node.ifname[1..]);
            ip(&[
                "link",
                "add",
                node.ifname,
                "netns",
                node.ns,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                BRIDGE_NS,
            ])?;
            ip(&["-n", BRIDGE_NS, "link", "set", &peer, "master", br])?;
            ip(&["-n", BRIDGE_NS, "link", "set", &peer, "up"])?;
            ip(&["-n", node.ns, "link", "set", node.ifname, "up"])?;
            ip(&[
                "-n",
                node.ns,
                "addr",
                "add",
                &format!("{}/24", node.ipv4),
                "dev",
                node.ifname,
            ])?;
            if let Some(v6) = node.ipv6 {
                ip(&[
                    "-n",
                    node.ns,
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    node.ifname,
                    "nodad",
                ])?;
            }
        }
        // Multicast leaves by the subnet-A interface (subnet B for the client proxy's
        // re-multicast and its client).
        for node in [SRV, C1, C2, C3, PX1, PX2_B, C4] {
            ip(&[
                "-n",
                node.ns,
                "route",
                "add",
                "224.0.0.0/4",
                "dev",
                node.ifname,
            ])?;
            ip(&[
                "-n",
                node.ns,
                "-6",
                "route",
                "add",
                "ff00::/8",
                "dev",
                node.ifname,
            ])?;
        }
        Ok(net)
    }

    fn add_ns(&mut self, ns: &'static str) -> Result<()> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns);
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace destroys the veth ends and bridges inside it.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("vectors: cleanup: {e:#}");
            }
        }
    }
}

/// A process this job started (inside a namespace); stopped by PID on drop.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Option<Child>,
}

impl Proc {
    /// Starts `prog args` in namespace `ns` with stdout and stderr going to `log`.
    pub fn spawn(
        name: &str,
        ns: &str,
        prog: &str,
        args: &[&str],
        cwd: &Path,
        log: &Path,
    ) -> Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        // `ip netns exec` execs the program in place, so the child's PID is the program's.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, prog])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
        })
    }

    /// Waits for the process to exit by itself; kills it after `limit`.
    pub fn wait_exit(mut self, limit: Duration) -> Result<i32> {
        let mut child = self.child.take().expect("child present until dropped");
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st.code().unwrap_or(-1));
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{} still running after {limit:?}; killed it", self.name);
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (by PID) and waits for the exit, killing it if it lingers.
    pub fn stop(mut self, signal: &str) -> Result<()> {
        self.stop_inner(signal)
    }

    fn stop_inner(&mut self, signal: &str) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_none() {
            let pid = child.id().to_string();
            let _ = run("kill", &[&format!("-{signal}"), &pid]);
            let start = Instant::now();
            while child.try_wait()?.is_none() {
                if start.elapsed() > Duration::from_secs(3) {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("{} ignored SIG{signal}; killed it", self.name);
                }
                sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner("TERM") {
            eprintln!("vectors: {e:#}");
        }
    }
}
