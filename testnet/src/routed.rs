//! A routed test network for the proxies: a sender network A and a receiver network B, each a
//! Linux bridge in its own namespace with hosts on veth pairs, joined only by a router namespace
//! that forwards IPv4 unicast between them and nothing else (no multicast routing daemon, so the
//! kernel never forwards multicast). Multicast stays on the network it was sent on, exactly the
//! situation UFTP's server and client proxies tunnel across.
//!
//! Addresses: network A is `10.78.1.0/24`, network B `10.78.2.0/24`; the router is `.254` on
//! both; hosts are `.1`, `.2`, … in creation order, with a route to `10.78.0.0/16` through the
//! router and the multicast range on their one interface. There is no default route: a program
//! that looks a name up (Debian's `uftpd` resolves every server's address) must fail at once,
//! not send the query to the router, whose rate-limited ICMP errors leave some lookups waiting
//! for the resolver's timeout of several seconds while the session goes by. Everything is deleted on drop, also when a test
//! panics; processes are stopped by PID through [`Proc`](crate::Proc).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::shell::or_panic;
use crate::{require_root_tools, sh, Host};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Network A's prefix (the sender's side).
pub const NET_A: &str = "10.78.1";
/// Network B's prefix (the receivers' side).
pub const NET_B: &str = "10.78.2";

/// Two bridged networks and a unicast-only router between them; deleted on drop.
#[derive(Debug)]
pub struct RoutedTestbed {
    namespaces: Vec<String>,
    /// Hosts on network A (`10.78.1.<n>`), in creation order.
    pub a: Vec<Host>,
    /// Hosts on network B (`10.78.2.<n>`), in creation order.
    pub b: Vec<Host>,
    /// The router's namespace.
    pub router_ns: String,
    /// A scratch directory for this testbed's files and logs.
    pub dir: PathBuf,
    prefix: String,
}

impl RoutedTestbed {
    /// Builds network A with `a` hosts, network B with `b` hosts (at most 200 each) and the
    /// router between them.
    pub fn new(a: usize, b: usize) -> RoutedTestbed {
        require_root_tools();
        assert!(a <= 200 && b <= 200);
        let tag = format!(
            "{:x}{:x}",
            std::process::id() & 0xfff,
            NEXT.fetch_add(1, Ordering::Relaxed) & 0xff
        );
        let prefix = format!("ur{tag}");
        let dir = std::env::temp_dir().join(format!("uftp-rs-test-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let router_ns = format!("{prefix}-rt");
        let mut bed = RoutedTestbed {
            namespaces: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
            router_ns: router_ns.clone(),
            dir,
            prefix,
        };
        bed.add_ns(&router_ns);
        sh("ip", &["-n", &router_ns, "link", "set", "lo", "up"]);
        for (side, net) in [('a', NET_A), ('b', NET_B)] {
            let br_ns = bed.bridge_ns(side);
            bed.add_ns(&br_ns);
            or_panic(crate::bridge::add_bridge(&br_ns));
            let ifname = format!("{}r{side}", bed.prefix);
            bed.plug(&router_ns, &ifname, side, "r");
            sh(
                "ip",
                &[
                    "-n",
                    &router_ns,
                    "addr",
                    "add",
                    &format!("{net}.254/24"),
                    "dev",
                    &ifname,
                ],
            );
        }
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &router_ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ],
        );
        for _ in 0..a {
            bed.add_host('a');
        }
        for _ in 0..b {
            bed.add_host('b');
        }
        bed
    }

    fn bridge_ns(&self, side: char) -> String {
        format!("{}-b{side}", self.prefix)
    }

    fn add_ns(&mut self, ns: &str) {
        sh("ip", &["netns", "add", ns]);
        self.namespaces.push(ns.to_string());
    }

    /// A veth pair from `ns` (named `ifname`, up) into the bridge of `side`.
    fn plug(&self, ns: &str, ifname: &str, side: char, tag: &str) {
        let br_ns = self.bridge_ns(side);
        // Unique in the root namespace too, where veths are born.
        let peer = format!("{}{side}{tag}p", self.prefix);
        sh(
            "ip",
            &[
                "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", &peer, "netns",
                &br_ns,
            ],
        );
        sh("ip", &["-n", &br_ns, "link", "set", &peer, "master", "br0"]);
        sh("ip", &["-n", &br_ns, "link", "set", &peer, "up"]);
        sh("ip", &["-n", ns, "link", "set", ifname, "up"]);
    }

    fn add_host(&mut self, side: char) {
        let (n, net) = match side {
            'a' => (self.a.len() + 1, NET_A),
            _ => (self.b.len() + 1, NET_B),
        };
        let ns = format!("{}-{side}{n}", self.prefix);
        self.add_ns(&ns);
        sh("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        let ifname = format!("{}{side}{n}", self.prefix);
        self.plug(&ns, &ifname, side, &n.to_string());
        let ipv4 = format!("{net}.{n}");
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
                "route",
                "add",
                "10.78.0.0/16",
                "via",
                &format!("{net}.254"),
            ],
        );
        sh(
            "ip",
            &["-n", &ns, "route", "add", "224.0.0.0/4", "dev", &ifname],
        );
        let host = Host {
            ns,
            ifname,
            ipv4,
            // IPv4 only: the proxies' tests do not use IPv6.
            ipv6: String::new(),
        };
        match side {
            'a' => self.a.push(host),
            _ => self.b.push(host),
        }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `prog args` in the router's namespace and returns its output.
    pub fn router_run(&self, prog: &str, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.router_ns.as_str(), prog];
        all.extend_from_slice(args);
        sh("ip", &all)
    }

    /// Makes the router a site firewall in front of network B: what comes from B goes out,
    /// and into B only the replies to it (nftables, conntrack: established or related), as a
    /// NAT or stateful firewall lets through. Nothing from A reaches B unless B spoke first.
    pub fn shield_b(&self) {
        let rules = format!(
            "table inet sitefw {{\n  chain forward {{\n    type filter hook forward priority 0; \
             policy drop;\n    ct state established,related accept\n    iifname \"{p}rb\" \
             accept\n    counter\n  }}\n}}\n",
            p = self.prefix
        );
        let path = self.path("sitefw.nft");
        std::fs::write(&path, rules).expect("nft rules file");
        self.router_run("nft", &["-f", path.to_str().expect("utf-8 path")]);
    }

    /// How many datagrams the firewall of [`RoutedTestbed::shield_b`] has dropped.
    pub fn shield_dropped(&self) -> u64 {
        let out = self.router_run("nft", &["list", "table", "inet", "sitefw"]);
        out.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The namespaces this testbed made (to check they are gone after drop).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }
}

impl Drop for RoutedTestbed {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Drops `percent`% of the UDP datagrams longer than `min_len` bytes (UDP length, header
/// included) that `host` receives — file data, and not the short handshake and control
/// messages — replacing any earlier loss rule on it ([`Host::set_loss`]'s table, so
/// [`Host::dropped`] counts these drops too).
pub fn set_data_loss(host: &Host, percent: u32, min_len: u32) {
    let rules = format!(
        "table inet uftploss {{\n  chain input {{\n    type filter hook input priority 0;\n    \
         meta l4proto udp udp length > {min_len} numgen random mod 100 < {percent} counter drop\n  \
         }}\n}}\n"
    );
    or_panic(host.replace_loss_rule(percent, &rules));
}
