//! Proxies (`uftpproxyd`) on a routed network the test builds itself ([`RoutedTestbed`]): a
//! sender network A and a receiver network B joined only by a router that forwards unicast and
//! never multicast, so a session crosses from A to B only through a proxy tunnel.
//!
//! - **Tunnel**: the sender and a server proxy on A; a client proxy and three receivers on B. The
//!   server proxy hears the sender's multicast and unicasts it across the router to the client
//!   proxy, which re-multicasts it on B and sends the receivers' responses back aggregated.
//! - **Heartbeat tunnel**: the same, but the server proxy is given only the client proxy's key
//!   fingerprint (`-s fp=FP`) and learns its address from the client proxy's signed heartbeats
//!   (`-H`); the sender starts once the server proxy has said it adopted that address.
//! - **Response proxy**: the sender, a response proxy and ten receivers on one network (B): the
//!   receivers hear the sender directly but answer only the proxy (`uftpd -R`), which answers the
//!   sender for all of them. (Multicast does not cross the router, so a response proxy's clients
//!   must share a network with the sender; network A stays empty.)
//!
//! Each runs unencrypted and encrypted (ECDH-ECDSA on P-256, AES-256-GCM, SHA-256) with 2%
//! loss on every receiver's host (nftables), a 2 MiB file and a small tree (nested directories,
//! an empty file and directory, a symlink, a name with spaces), with these casts:
//!
//! - Debian's uftp 4.10.2 everywhere: the control, showing the topology and options are right;
//! - our `uftpproxyd` in one proxy position and Debian's in the other (both ways; in a response
//!   scenario, ours between Debian's ends and Debian's between ours), once between Debian's
//!   `uftp` and `uftpd` and once between ours;
//! - our programs everywhere.
//!
//! Every receiver must hold every file with the source's sha256 and nothing else, the sender
//! must exit 0, and the loss rules must have dropped something. Two captures check that the
//! proxies did their job rather than being bypassed: every datagram that reaches the sender must
//! come from the proxy facing it and carry the aggregating proxy's ID (never a receiver's), with
//! the REGISTERs listing exactly the receivers; and in the tunnels, the ANNOUNCE heard on network
//! B must come from the client proxy and, when encrypted, carry the client proxy's key instead of
//! the server's (protocol digest §7).
//!
//! When only our programs take part, the loss hits every datagram, the handshake's too. With a
//! Debian program anywhere it hits file data only (datagrams over 1000 bytes, so every loss is
//! still repaired through the proxies' NAK aggregation), because 4.10.2's proxies do not recover
//! from handshake loss: a receiver whose first ANNOUNCE was lost registers late through a Debian
//! response proxy, the server confirms it, but the proxy never sends it KEYINFO ("Expected
//! KEYINFO, got REG_CONF", then every ENCRYPTED packet fails) — about one run in five with ten
//! receivers.
//!
//! Last, our proxy as a daemon (no `-d`): the command returns 0 once the proxy runs, which
//! writes its PID and log files and ends on SIGTERM.
//!
//! The sender (either) sends with `-H` (the receivers) and `-j` (the aggregating proxy); every
//! Debian receiver and proxy gets an EC key on the server key's curve (4.10.2 refuses a server
//! otherwise), and the Debian response proxy an ECDH key (`-e prime256v1`: without one, 4.10.2's
//! receivers crash in `EC_KEY_get0_group` on the first ECDH ANNOUNCE).
//!
//! Needs root, `ip`, `nft`, `tcpdump` and the `uftp` package (`cargo xtask setup`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use proto_core::crypto::KeyBlob;
use proto_core::wire::{Message, Repr};
use testnet::routed::{set_data_loss, RoutedTestbed};
use testnet::{Host, Proc};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::tree::{listing, make_content};

/// Size of the big file of each transfer (the rest is a small tree).
const SIZE: u64 = 2 << 20;
/// Share of the file data each receiver's host drops, in percent.
const LOSS: u32 = 2;
/// Datagrams longer than this (UDP length) are file data and subject to [`LOSS`]; the shorter
/// handshake and control messages are not (see the module documentation).
const DATA_LEN: u32 = 1000;
/// A sender that runs longer than this has failed (a run takes a few seconds).
const SENDER_LIMIT: Duration = Duration::from_secs(40);
/// The same for a sender at its defaults: uftp 4.10.2 sends at 1 Mbit/s, about 20 s here.
const DEFAULTS_SENDER_LIMIT: Duration = Duration::from_secs(120);
/// Client proxies' heartbeat interval in the heartbeat tunnel, in seconds.
const HB_INTERVAL: &str = "1";

/// Which implementation runs a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Imp {
    Ours,
    Debian,
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Ours => "our",
            Imp::Debian => "debian",
        }
    }
}

/// The proxies of a scenario and who runs them.
#[derive(Debug, Clone, Copy)]
enum Proxies {
    /// Server proxy on A, client proxy on B; with `heartbeat`, the server proxy learns the
    /// client proxy's address from its authenticated heartbeats (`-s fp=FP`).
    Tunnel {
        server: Imp,
        client: Imp,
        heartbeat: bool,
    },
    /// A response proxy in front of the receivers, all on B with the sender.
    Response(Imp),
}

/// One scenario: who runs what, and whether the session is encrypted.
#[derive(Debug, Clone, Copy)]
struct Case {
    sender: Imp,
    proxies: Proxies,
    receivers: Imp,
    encrypted: bool,
    /// The sender at its defaults: an open group (no `-H`, `-j`) and no timing or rate
    /// options (no `-r`, `-R`), as a user runs it; else the tuned closed group below.
    defaults: bool,
}

impl Case {
    /// Whether a Debian program takes part (and the handshake must be spared the loss).
    fn debian_anywhere(&self) -> bool {
        let proxies = match self.proxies {
            Proxies::Tunnel { server, client, .. } => [server, client],
            Proxies::Response(p) => [p, p],
        };
        [self.sender, self.receivers]
            .iter()
            .chain(&proxies)
            .any(|&i| i == Imp::Debian)
    }

    fn receiver_count(&self) -> usize {
        match self.proxies {
            Proxies::Tunnel { .. } => 3,
            Proxies::Response(_) => 10,
        }
    }
}

/// The UID a host runs with: its IPv4 address, as uftp's default would be.
fn uid_of(h: &Host) -> u32 {
    u32::from(h.ipv4.parse::<Ipv4Addr>().expect("IPv4 address"))
}

fn uid_arg(h: &Host) -> String {
    format!("0x{:08X}", uid_of(h))
}

/// A private key file and its fingerprint, as `uftp_keymgt` prints it.
#[derive(Debug, Clone)]
struct Key {
    path: PathBuf,
    fingerprint: String,
}

impl Key {
    fn arg(&self) -> String {
        self.path.to_str().expect("utf-8 path").to_string()
    }
}

/// Generates a P-256 key with Debian's `uftp_keymgt`.
fn keygen(bed: &RoutedTestbed, name: &str) -> Key {
    let path = bed.path(&format!("{name}.pem"));
    let fingerprint = uftp_tests::peers::keygen(&path, "ec:prime256v1");
    Key { path, fingerprint }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_string()).collect()
}

/// Waits (10 s at most) until `proc` has logged a line containing `needle` (case-insensitive);
/// panics with its log if it exits first.
fn wait_for_line(proc: &mut Proc, needle: &str) {
    let t0 = Instant::now();
    let needle = needle.to_ascii_lowercase();
    while !proc.log_text().to_ascii_lowercase().contains(&needle) {
        assert!(
            proc.running(),
            "{} exited at start-up:\n{}",
            proc.name,
            proc.log_text()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{} did not log {needle:?} in 10 s:\n{}",
            proc.name,
            proc.log_text()
        );
        sleep(Duration::from_millis(20));
    }
}

/// A started program and where it runs.
#[derive(Debug)]
struct Node {
    host: Host,
    proc: Proc,
}

/// One receiver.
#[derive(Debug)]
struct Receiver {
    node: Node,
    dest: PathBuf,
}

/// A scenario's network, programs and keys.
#[derive(Debug)]
struct Run {
    bed: RoutedTestbed,
    sender_host: Host,
    /// The proxy the sender talks to (server proxy or response proxy).
    facing: Option<Node>,
    /// The proxy whose ID the sender sees in responses (client proxy or response proxy).
    aggregator: Host,
    /// The client proxy of a tunnel.
    client_proxy: Option<Node>,
    receivers: Vec<Receiver>,
    server_key: Option<Key>,
    /// The key the receivers see in the ANNOUNCE: the client proxy's in a tunnel.
    downstream_key: Option<Key>,
}

impl Run {
    fn logs(&self) -> String {
        let mut s = String::new();
        for n in self.facing.iter().chain(self.client_proxy.iter()) {
            s.push_str(&format!("--- {}:\n{}\n", n.proc.name, n.proc.log_text()));
        }
        for r in &self.receivers {
            s.push_str(&format!(
                "--- {}:\n{}\n",
                r.node.proc.name,
                r.node.proc.log_text()
            ));
        }
        s
    }
}

/// Starts a proxy of `imp` on `host` with the mode options `mode` and `extra`, waiting until it
/// listens.
fn start_proxy(bed: &RoutedTestbed, imp: Imp, role: &str, host: &Host, mode: &[String]) -> Node {
    let mut cmd = match imp {
        Imp::Ours => host.command(our_binary("uftpproxyd")),
        Imp::Debian => host.command("uftpproxyd"),
    };
    cmd.args(mode).args(["-d", "-x", "2", "-U", &uid_arg(host)]);
    let name = format!("{} {role}", imp.name());
    let mut proc = Proc::spawn(
        &name,
        cmd,
        &bed.path(&format!("{}.log", role.replace(' ', "-"))),
    );
    // Debian's logs its keys once its sockets are bound; ours says it is listening.
    wait_for_line(
        &mut proc,
        match imp {
            Imp::Ours => "listening on port",
            Imp::Debian => "Loaded",
        },
    );
    Node {
        host: host.clone(),
        proc,
    }
}

/// Starts receiver `i` (1-based) of `imp` on `host` with `extra` options.
fn start_receiver(
    bed: &RoutedTestbed,
    imp: Imp,
    i: usize,
    host: &Host,
    extra: &[String],
) -> Receiver {
    let dest = bed.path(&format!("dest{i}"));
    std::fs::create_dir_all(&dest).expect("dest dir");
    let mut cmd = match imp {
        Imp::Ours => {
            let mut c = host.command(our_binary("uftpd"));
            c.args(["-x", "3", "-B", "4194304"]);
            c
        }
        Imp::Debian => {
            let mut c = host.command("uftpd");
            c.args(["-x", "2"]);
            c
        }
    };
    cmd.args(["-d", "-U", &uid_arg(host), "-I", &host.ifname, "-D"])
        .arg(&dest)
        .args(extra);
    let name = format!("{} uftpd{i}", imp.name());
    let mut proc = Proc::spawn(&name, cmd, &bed.path(&format!("uftpd{i}.log")));
    wait_for_line(
        &mut proc,
        match imp {
            Imp::Ours => "listening on port",
            Imp::Debian => "Loaded",
        },
    );
    Receiver {
        node: Node {
            host: host.clone(),
            proc,
        },
        dest,
    }
}

/// Builds the network of `case` and starts its proxies and receivers, ready for the sender.
fn set_up(case: Case) -> Run {
    let n = case.receiver_count();
    let bed = match case.proxies {
        Proxies::Tunnel { .. } => RoutedTestbed::new(2, 1 + n),
        Proxies::Response(_) => RoutedTestbed::new(0, 2 + n),
    };
    let key = |name: &str| case.encrypted.then(|| keygen(&bed, name));
    let server_key = key("server");
    let mut receivers = Vec::new();
    // Encrypted sessions only, and an EC key on the server key's curve.
    let receiver_key_options = |i: usize| -> Vec<String> {
        let mut v = Vec::new();
        if case.encrypted {
            v.push("-E".into());
            v.push("-k".into());
            v.push(keygen(&bed, &format!("client{i}")).arg());
        }
        v
    };
    match case.proxies {
        Proxies::Tunnel {
            server,
            client,
            heartbeat,
        } => {
            let sender_host = bed.a[0].clone();
            let (sp_host, cp_host) = (bed.a[1].clone(), bed.b[0].clone());
            // The client proxy needs its own key when it is encrypted (it re-keys the session
            // downstream) or signs heartbeats.
            let cp_key = (case.encrypted || heartbeat).then(|| keygen(&bed, "client-proxy"));
            let mut sp_mode = vec!["-s".to_string()];
            sp_mode.push(match (&cp_key, heartbeat) {
                (Some(k), true) => format!("fp={}", k.fingerprint),
                _ => cp_host.ipv4.clone(),
            });
            sp_mode.extend(["-I".to_string(), sp_host.ifname.clone()]);
            let mut facing = start_proxy(&bed, server, "server proxy", &sp_host, &sp_mode);
            let mut cp_mode = strings(&["-c", "-O"]);
            cp_mode.extend([cp_host.ifname.clone(), "-I".into(), cp_host.ifname.clone()]);
            if let Some(k) = &cp_key {
                cp_mode.extend(["-k".into(), k.arg()]);
            }
            if heartbeat {
                cp_mode.extend([
                    "-H".into(),
                    sp_host.ipv4.clone(),
                    "-h".into(),
                    HB_INTERVAL.into(),
                ]);
            }
            let client_proxy = start_proxy(&bed, client, "client proxy", &cp_host, &cp_mode);
            for i in 1..=n {
                let host = bed.b[i].clone();
                let opts = receiver_key_options(i);
                receivers.push(start_receiver(&bed, case.receivers, i, &host, &opts));
            }
            if heartbeat {
                // Both implementations log the adoption in uftpproxyd 4.10.2's words.
                wait_for_line(&mut facing.proc, "as downstream address");
            }
            let downstream_key = if case.encrypted { cp_key } else { None };
            Run {
                sender_host,
                aggregator: cp_host,
                facing: Some(facing),
                client_proxy: Some(client_proxy),
                receivers,
                server_key,
                downstream_key,
                bed,
            }
        }
        Proxies::Response(imp) => {
            let sender_host = bed.b[0].clone();
            let rp_host = bed.b[1].clone();
            let mut mode = strings(&["-r", "-I"]);
            mode.push(rp_host.ifname.clone());
            if case.encrypted {
                let k = keygen(&bed, "response-proxy");
                mode.extend(["-k".into(), k.arg(), "-e".into(), "prime256v1".into()]);
            }
            let facing = start_proxy(&bed, imp, "response proxy", &rp_host, &mode);
            for i in 1..=n {
                let host = bed.b[1 + i].clone();
                let mut opts = receiver_key_options(i);
                opts.extend(["-R".into(), rp_host.ipv4.clone()]);
                receivers.push(start_receiver(&bed, case.receivers, i, &host, &opts));
            }
            // A receiver asks for the proxy's key when it starts (and every 5 s after).
            for r in &mut receivers {
                wait_for_line(&mut r.node.proc, "PROXY_KEY");
            }
            Run {
                sender_host,
                aggregator: rp_host,
                facing: Some(facing),
                client_proxy: None,
                receivers,
                server_key,
                downstream_key: None,
                bed,
            }
        }
    }
}

/// The IPv4 UDP datagrams of a capture: source address and payload.
fn udp_datagrams(pcap: &Path) -> Vec<(Ipv4Addr, Vec<u8>)> {
    testnet::pcap::read(pcap)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .filter_map(|d| match d.src {
            IpAddr::V4(src) => Some((src, d.payload)),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// A tcpdump in `host`'s namespace writing `filter`'s packets (the first `count` if given) to a
/// pcap.
fn capture(
    bed: &RoutedTestbed,
    host: &Host,
    name: &str,
    count: Option<u32>,
    filter: &[&str],
) -> (Proc, PathBuf) {
    let pcap = bed.path(&format!("{name}.pcap"));
    let mut dump = host.command("tcpdump");
    // -Z root: Debian's tcpdump otherwise drops to its own user, who cannot write here.
    // --immediate-mode: otherwise packets wait in the kernel's capture blocks, and those still
    // waiting when tcpdump is stopped are counted "received by filter" but never written.
    dump.args([
        "-Z",
        "root",
        "-U",
        "--immediate-mode",
        "-n",
        "-i",
        &host.ifname,
    ]);
    if let Some(n) = count {
        dump.args(["-c", &n.to_string()]);
    }
    dump.arg("-w").arg(&pcap).args(filter);
    let mut proc = Proc::spawn("tcpdump", dump, &bed.path(&format!("{name}-tcpdump.log")));
    wait_for_line(&mut proc, "listening on");
    (proc, pcap)
}

/// Runs `case` end to end and checks everything the module documentation promises.
fn run(case: Case) {
    let _lock = serial();
    let mut run = set_up(case);
    let bed = &run.bed;
    let items = make_content(&bed.dir, SIZE);
    for r in &run.receivers {
        if case.debian_anywhere() {
            set_data_loss(&r.node.host, LOSS, DATA_LEN);
        } else {
            r.node.host.set_loss(LOSS);
        }
    }
    let facing = run.facing.as_ref().expect("a proxy faces the sender");
    let (mut at_sender, sender_pcap) = capture(
        bed,
        &run.sender_host,
        "at-sender",
        None,
        &["udp", "and", "dst", "host", &run.sender_host.ipv4],
    );
    // The first datagram to the UFTP port on network B that the client proxy sends: its
    // re-multicast ANNOUNCE.
    let downstream = run.client_proxy.as_ref().map(|cp| {
        capture(
            bed,
            &run.receivers[0].node.host,
            "downstream",
            Some(1),
            &[
                "udp",
                "and",
                "dst",
                "port",
                "1044",
                "and",
                "src",
                "host",
                &cp.host.ipv4,
            ],
        )
    });

    // The sender: a closed group of the receivers behind the aggregating proxy.
    let proxy_list = bed.path("proxies");
    std::fs::write(&proxy_list, format!("{}\n", uid_arg(&run.aggregator))).expect("proxy list");
    let ids: Vec<String> = run
        .receivers
        .iter()
        .map(|r| uid_arg(&r.node.host))
        .collect();
    let h = run.sender_host.clone();
    let mut cmd = match case.sender {
        Imp::Ours => h.command(our_binary("uftp")),
        Imp::Debian => h.command("uftp"),
    };
    cmd.args(["-U", &uid_arg(&h), "-I", &h.ifname]);
    if !case.defaults {
        match case.sender {
            Imp::Ours => cmd.args(["-r", "0.05:0.01:1"]),
            Imp::Debian => cmd.args(["-r", "0.05"]),
        };
        cmd.args(["-R", "50000", "-x", "2"])
            .args(["-H", &ids.join(","), "-j"])
            .arg(&proxy_list);
    }
    if let Some(k) = &run.server_key {
        cmd.args(["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa", "-k"])
            .arg(k.arg());
    }
    cmd.args(&items);
    let mut sender = Proc::spawn(
        &format!("{} uftp", case.sender.name()),
        cmd,
        &bed.path("uftp.log"),
    );
    let t0 = Instant::now();
    let limit = if case.defaults {
        DEFAULTS_SENDER_LIMIT
    } else {
        SENDER_LIMIT
    };
    while sender.running() {
        if t0.elapsed() > limit {
            sender.signal("KILL");
            panic!(
                "{case:?}: {} did not finish in {limit:?}:\n{}\n{}",
                sender.name,
                sender.log_text(),
                run.logs()
            );
        }
        sleep(Duration::from_millis(20));
    }
    let code = sender.wait(Duration::from_secs(1));
    let slog = sender.log_text();
    eprintln!(
        "--- {case:?}: {} exited {code} after {:?}",
        sender.name,
        t0.elapsed()
    );
    let context = || format!("{case:?}\n--- {}:\n{slog}\n{}", sender.name, run.logs());
    assert_eq!(code, 0, "the sender failed: {}", context());

    // Every receiver holds exactly the content.
    let want = listing(&bed.path("src"));
    for r in &run.receivers {
        assert_eq!(
            listing(&r.dest),
            want,
            "{} did not receive the content exactly: {}",
            r.node.proc.name,
            context()
        );
    }
    let dropped: u64 = run.receivers.iter().map(|r| r.node.host.dropped()).sum();
    assert!(dropped > 0, "the loss rules dropped nothing: {}", context());

    // Everything the sender heard came from the proxy facing it, under the aggregator's ID.
    // The last datagrams (the COMPLETEs) came just before the sender exited.
    sleep(Duration::from_millis(300));
    at_sender.stop();
    let heard = udp_datagrams(&sender_pcap);
    assert!(
        !heard.is_empty(),
        "nothing reached the sender: {}",
        context()
    );
    let facing_ip: Ipv4Addr = facing.host.ipv4.parse().expect("IPv4");
    let aggregator = uid_of(&run.aggregator);
    let mut registered = BTreeSet::new();
    for (src, payload) in &heard {
        assert_eq!(
            *src,
            facing_ip,
            "a datagram reached the sender from {src}, not from the {}: {}",
            facing.proc.name,
            context()
        );
        let src_id = payload
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        assert_eq!(
            src_id,
            Some(aggregator),
            "a datagram reached the sender under another ID than the aggregating proxy's \
             0x{aggregator:08X}: {payload:02x?}\n{}",
            context()
        );
        if let Ok(Repr {
            message: Message::Register(reg),
            ..
        }) = Repr::parse(payload)
        {
            registered.extend(reg.client_ids.iter());
        }
    }
    let want_ids: BTreeSet<u32> = run.receivers.iter().map(|r| uid_of(&r.node.host)).collect();
    assert_eq!(
        registered,
        want_ids,
        "the proxy's REGISTERs do not list exactly the receivers: {}",
        context()
    );

    // In a tunnel, network B heard the ANNOUNCE from the client proxy, with its key.
    if let Some((mut dump, pcap)) = downstream {
        let code = dump.wait(Duration::from_secs(5));
        assert_eq!(code, 0, "tcpdump on B failed:\n{}", dump.log_text());
        let datagrams = udp_datagrams(&pcap);
        let (_, first) = datagrams
            .first()
            .unwrap_or_else(|| panic!("nothing captured on B: {}", context()));
        let repr = Repr::parse(first)
            .unwrap_or_else(|e| panic!("B's first datagram does not parse ({e:?}): {}", context()));
        let Message::Announce(announce) = repr.message else {
            panic!(
                "B's first datagram from the client proxy is not an ANNOUNCE: {:?}\n{}",
                repr.message,
                context()
            );
        };
        match (&run.downstream_key, announce.enc_info) {
            (None, None) => {}
            (Some(key), Some(enc)) => {
                let blob = KeyBlob::parse(enc.key_blob)
                    .unwrap_or_else(|e| panic!("B's ANNOUNCE key blob ({e:?}): {}", context()));
                assert_eq!(
                    blob.fingerprint().to_string(),
                    key.fingerprint,
                    "the ANNOUNCE on B does not carry the client proxy's key (the server's is {}): {}",
                    run.server_key.as_ref().map_or("-", |k| k.fingerprint.as_str()),
                    context()
                );
            }
            (want, got) => panic!(
                "the ANNOUNCE on B is {}encrypted, the session {}: {}",
                if got.is_some() { "" } else { "not " },
                if want.is_some() { "is" } else { "is not" },
                context()
            ),
        }
    }

    for n in run
        .facing
        .iter_mut()
        .chain(run.client_proxy.iter_mut())
        .chain(run.receivers.iter_mut().map(|r| &mut r.node))
    {
        assert!(
            n.proc.running(),
            "{} died:\n{}",
            n.proc.name,
            n.proc.log_text()
        );
    }
    eprintln!(
        "{case:?}: {} receivers complete, {dropped} datagrams dropped, {} datagrams reached the sender",
        run.receivers.len(),
        heard.len()
    );
}

const D: Imp = Imp::Debian;
const O: Imp = Imp::Ours;

fn tunnel(sender: Imp, server: Imp, client: Imp, receivers: Imp, encrypted: bool) {
    run(Case {
        sender,
        proxies: Proxies::Tunnel {
            server,
            client,
            heartbeat: false,
        },
        receivers,
        encrypted,
        defaults: false,
    });
}

fn heartbeat_tunnel(sender: Imp, server: Imp, client: Imp, receivers: Imp, encrypted: bool) {
    run(Case {
        sender,
        proxies: Proxies::Tunnel {
            server,
            client,
            heartbeat: true,
        },
        receivers,
        encrypted,
        defaults: false,
    });
}

fn response(sender: Imp, proxy: Imp, receivers: Imp, encrypted: bool) {
    run(Case {
        sender,
        proxies: Proxies::Response(proxy),
        receivers,
        encrypted,
        defaults: false,
    });
}

/// A case with the sender at its defaults (see [`Case::defaults`]).
fn at_defaults(sender: Imp, proxies: Proxies, receivers: Imp, encrypted: bool) {
    run(Case {
        sender,
        proxies,
        receivers,
        encrypted,
        defaults: true,
    });
}

// --- The sender at its defaults: the proxies register their clients and wait as the
// receivers do, so a sender whose rounds outlast 4.10.2's timeouts loses them too. ---

#[test]
fn defaults_our_sender_debian_tunnel() {
    let tunnel = Proxies::Tunnel {
        server: D,
        client: D,
        heartbeat: false,
    };
    at_defaults(O, tunnel, D, false);
}

#[test]
fn defaults_our_sender_debian_tunnel_encrypted() {
    let tunnel = Proxies::Tunnel {
        server: D,
        client: D,
        heartbeat: false,
    };
    at_defaults(O, tunnel, D, true);
}

#[test]
fn defaults_debian_sender_our_tunnel() {
    let tunnel = Proxies::Tunnel {
        server: O,
        client: O,
        heartbeat: false,
    };
    at_defaults(D, tunnel, D, false);
}

#[test]
fn defaults_debian_sender_our_tunnel_encrypted() {
    let tunnel = Proxies::Tunnel {
        server: O,
        client: O,
        heartbeat: false,
    };
    at_defaults(D, tunnel, D, true);
}

#[test]
fn defaults_our_sender_debian_response_proxy() {
    at_defaults(O, Proxies::Response(D), D, false);
}

#[test]
fn defaults_our_sender_debian_response_proxy_encrypted() {
    at_defaults(O, Proxies::Response(D), D, true);
}

#[test]
fn defaults_debian_sender_our_response_proxy() {
    at_defaults(D, Proxies::Response(O), D, false);
}

#[test]
fn defaults_debian_sender_our_response_proxy_encrypted() {
    at_defaults(D, Proxies::Response(O), D, true);
}

// --- Debian's uftp 4.10.2 in every position: the topology and options are right. ---

#[test]
fn tunnel_debian_everywhere() {
    tunnel(D, D, D, D, false);
}

#[test]
fn tunnel_encrypted_debian_everywhere() {
    tunnel(D, D, D, D, true);
}

#[test]
fn heartbeat_tunnel_debian_everywhere() {
    heartbeat_tunnel(D, D, D, D, false);
}

#[test]
fn heartbeat_tunnel_encrypted_debian_everywhere() {
    heartbeat_tunnel(D, D, D, D, true);
}

#[test]
fn response_proxy_debian_everywhere() {
    response(D, D, D, false);
}

#[test]
fn response_proxy_encrypted_debian_everywhere() {
    response(D, D, D, true);
}

// --- Our uftpproxyd in one position, Debian's in the other, between Debian's uftp and uftpd. ---

#[test]
fn tunnel_our_server_proxy_debian_client_proxy() {
    tunnel(D, O, D, D, false);
}

#[test]
fn tunnel_debian_server_proxy_our_client_proxy() {
    tunnel(D, D, O, D, false);
}

#[test]
fn tunnel_encrypted_our_server_proxy_debian_client_proxy() {
    tunnel(D, O, D, D, true);
}

#[test]
fn tunnel_encrypted_debian_server_proxy_our_client_proxy() {
    tunnel(D, D, O, D, true);
}

#[test]
fn heartbeat_tunnel_our_server_proxy_debian_client_proxy() {
    heartbeat_tunnel(D, O, D, D, false);
}

#[test]
fn heartbeat_tunnel_debian_server_proxy_our_client_proxy() {
    heartbeat_tunnel(D, D, O, D, false);
}

#[test]
fn heartbeat_tunnel_encrypted_our_server_proxy_debian_client_proxy() {
    heartbeat_tunnel(D, O, D, D, true);
}

#[test]
fn heartbeat_tunnel_encrypted_debian_server_proxy_our_client_proxy() {
    heartbeat_tunnel(D, D, O, D, true);
}

#[test]
fn response_proxy_ours_between_debian_ends() {
    response(D, O, D, false);
}

#[test]
fn response_proxy_encrypted_ours_between_debian_ends() {
    response(D, O, D, true);
}

// --- The same mixes between our uftp and uftpd. ---

#[test]
fn ours_at_the_ends_tunnel_our_server_proxy_debian_client_proxy() {
    tunnel(O, O, D, O, false);
}

#[test]
fn ours_at_the_ends_tunnel_debian_server_proxy_our_client_proxy() {
    tunnel(O, D, O, O, false);
}

#[test]
fn ours_at_the_ends_tunnel_encrypted_our_server_proxy_debian_client_proxy() {
    tunnel(O, O, D, O, true);
}

#[test]
fn ours_at_the_ends_tunnel_encrypted_debian_server_proxy_our_client_proxy() {
    tunnel(O, D, O, O, true);
}

#[test]
fn ours_at_the_ends_heartbeat_tunnel_our_server_proxy_debian_client_proxy() {
    heartbeat_tunnel(O, O, D, O, false);
}

#[test]
fn ours_at_the_ends_heartbeat_tunnel_debian_server_proxy_our_client_proxy() {
    heartbeat_tunnel(O, D, O, O, false);
}

#[test]
fn ours_at_the_ends_heartbeat_tunnel_encrypted_our_server_proxy_debian_client_proxy() {
    heartbeat_tunnel(O, O, D, O, true);
}

#[test]
fn ours_at_the_ends_heartbeat_tunnel_encrypted_debian_server_proxy_our_client_proxy() {
    heartbeat_tunnel(O, D, O, O, true);
}

#[test]
fn ours_at_the_ends_response_proxy_debian() {
    response(O, D, O, false);
}

#[test]
fn ours_at_the_ends_response_proxy_encrypted_debian() {
    response(O, D, O, true);
}

// --- Ours everywhere. ---

#[test]
fn tunnel_ours_everywhere() {
    tunnel(O, O, O, O, false);
}

#[test]
fn tunnel_encrypted_ours_everywhere() {
    tunnel(O, O, O, O, true);
}

#[test]
fn heartbeat_tunnel_encrypted_ours_everywhere() {
    heartbeat_tunnel(O, O, O, O, true);
}

#[test]
fn response_proxy_ours_everywhere() {
    response(O, O, O, false);
}

#[test]
fn response_proxy_encrypted_ours_everywhere() {
    response(O, O, O, true);
}

// --- Our uftpproxyd as a daemon. ---

/// Without `-d`, our proxy forks once its socket and keys are ready: the command exits 0, the
/// daemon writes its PID file (`-P`) and its log (`-L`), and SIGTERM ends it (exit 6 in 4.10.2's
/// terms, logged) and removes the PID file.
#[test]
fn our_proxy_runs_as_a_daemon() {
    let _lock = serial();
    let bed = RoutedTestbed::new(0, 1);
    let host = &bed.b[0];
    let (log, pidfile) = (bed.path("daemon.log"), bed.path("daemon.pid"));
    let mut start = Proc::spawn(
        "our uftpproxyd (parent)",
        {
            let mut c = host.command(our_binary("uftpproxyd"));
            c.args(["-c", "-U", &uid_arg(host), "-I", &host.ifname, "-L"])
                .arg(&log)
                .arg("-P")
                .arg(&pidfile);
            c
        },
        &bed.path("daemon-parent.log"),
    );
    assert_eq!(
        start.wait(Duration::from_secs(10)),
        0,
        "the parent's exit code; its output:\n{}",
        start.log_text()
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("PID file")
        .trim()
        .parse()
        .expect("a PID");
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    // Stops the daemon by its PID if the test fails before it does.
    struct Daemon(u32);
    impl Drop for Daemon {
        fn drop(&mut self) {
            if std::path::Path::new(&format!("/proc/{}", self.0)).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.0.to_string()])
                    .status();
            }
        }
    }
    let _daemon = Daemon(pid);
    let t0 = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("listening on port")
    {
        assert!(alive(), "the daemon {pid} died");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the daemon logs nothing"
        );
        sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let t0 = Instant::now();
    while alive() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the daemon {pid} ignores SIGTERM"
        );
        sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("Exiting on signal 15"), "{text}");
    assert!(!pidfile.exists(), "the PID file is left behind");
}
