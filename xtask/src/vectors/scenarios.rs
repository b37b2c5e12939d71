//! The captured scenarios: which real binaries run where, with which options.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use super::netns::{self, Network, Node, Proc, BRIDGE_NS, C1, C2, C3, C4, PX1, PX2, SRV};
use testnet::pcap;

pub const SERVER_UID: &str = "0x0a630001";
pub const C1_UID: &str = "0x0a630002";
pub const C2_UID: &str = "0x0a630003";
pub const C3_UID: &str = "0x0a630004";
pub const C4_UID: &str = "0x0a630005";
pub const PX1_UID: &str = "0x0a6300f1";
pub const PX2_UID: &str = "0x0a6300f2";
/// Blocksize of every scenario.
pub const BLOCKSIZE: &str = "1000";
/// Initial GRTT: short, so that each scenario takes seconds.
const GRTT: &str = "0.05";
/// mtime given to every source file: 2024-01-02T03:04:05Z.
pub const MTIME: u64 = 1_704_164_645;
/// The newer mtime of `multi.bin` in the second sync-mode run: 2024-06-01T00:00:00Z.
const MTIME_NEWER: u64 = 1_717_200_000;

/// One scenario: its name (= pcap name) and the facts a test can check, for MANIFEST.tsv.
#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub params: &'static str,
    run: fn(&Ctx, &Path) -> Result<()>,
    /// Subnet B is captured too, as `<name>-b.pcap`.
    subnet_b: bool,
    /// A capture is kept only if this holds (lossy scenarios are re-run up to 3 times).
    wanted: fn(&[pcap::Datagram]) -> bool,
}

fn always(_: &[pcap::Datagram]) -> bool {
    true
}

pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "open",
        params: "server=0x0a630001 clients=0x0a630002,0x0a630003 blocksize=1000 \
                 files=hello.txt,multi.bin,tree/{a.txt,empty.dat,sub/b.txt,emptydir/,link->a.txt}",
        run: open,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "closed",
        params: "server=0x0a630001 -H 0x0a630002,0x0a630003 unlisted_client=0x0a630004 \
                 blocksize=1000 files=hello.txt",
        run: closed,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "loss",
        params: "server=0x0a630001 clients=0x0a630002(10% input loss),0x0a630003 blocksize=1000 \
                 files=lossy.bin(40000)",
        run: loss,
        subnet_b: false,
        wanted: has_nak,
    },
    Scenario {
        name: "tfmcc",
        params: "server=0x0a630001 -C tfmcc clients=0x0a630002(10% input loss),0x0a630003 \
                 blocksize=1000 files=lossy.bin(40000)",
        run: tfmcc,
        subnet_b: false,
        wanted: has_nak,
    },
    Scenario {
        name: "sync",
        params: "server=0x0a630001 client=0x0a630002 blocksize=1000 files=hello.txt,multi.bin \
                 runs=-z(new),-z(hello same->skipped; multi newer->overwrite),-Z(preview)",
        run: sync,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "metafiles",
        params: "server=0x0a630001 client=0x0a630002 blocksize=1000 \
                 files=@FREESPACE,@DELETE:old.txt,hello.txt",
        run: metafiles,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "restart",
        params: "server=0x0a630001 -f client=0x0a630002(-T) blocksize=1000 \
                 files=restart.bin(30000) run1=cut off mid-file run2=-F restart file (inst 1)",
        run: restart,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "abort",
        params: "server=0x0a630001 client=0x0a630004(-E) blocksize=1000 files=hello.txt",
        run: abort,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "ipv6",
        params: "server=0x0a630001 -M ff15::4:1 -P ff15::5:1 clients=0x0a630002,0x0a630003 \
                 blocksize=1000 files=hello.txt",
        run: ipv6,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "enc-gcm-p256",
        params: "server=0x0a630001 -Y aes256-gcm -h sha256 -e ecdh_ecdsa keys=P-256 \
                 clients=0x0a630002,0x0a630003 blocksize=1000 files=hello.txt,multi.bin",
        run: enc_gcm,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "enc-cbc-rsa",
        params: "server=0x0a630001 -Y aes256-cbc -h sha256 -e rsa -c keys=RSA-1024 \
                 clients=0x0a630002,0x0a630003 blocksize=1000 files=hello.txt,multi.bin",
        run: enc_cbc_rsa,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "enc-ccm-p384",
        params: "server=0x0a630001 -Y aes128-ccm -h sha384 -e ecdh_ecdsa:secp384r1 keys=P-384 \
                 clients=0x0a630002,0x0a630003 blocksize=1000 files=hello.txt",
        run: enc_ccm,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "proxy-heartbeat",
        params: "server_proxy=0x0a6300f1(-s 10.99.0.11) client=0x0a630002(-H 10.99.0.10 -h 1) \
                 no session",
        run: proxy_heartbeat,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "proxy-response",
        params: "server=0x0a630001 -Y aes128-cbc -h sha256 -e rsa(ephemeral RSA-512) \
                 response_proxy=0x0a6300f1(-r) clients=0x0a630002,0x0a630003(-R 10.99.0.10) \
                 blocksize=1000 files=hello.txt",
        run: proxy_response,
        subnet_b: false,
        wanted: always,
    },
    Scenario {
        name: "proxy-chain",
        params: "server=0x0a630001 server_proxy=0x0a6300f1(-s fp=<px2 key>) \
                 client_proxy=0x0a6300f2(-c -H 10.99.0.10 -k RSA-512) client=0x0a630005 \
                 (subnet B, see proxy-chain-b.pcap) blocksize=1000 files=hello.txt,multi.bin",
        run: proxy_chain,
        subnet_b: true,
        wanted: always,
    },
];

fn has_nak(pkts: &[pcap::Datagram]) -> bool {
    pkts.iter().any(|p| p.func() == 11)
}

/// What every scenario function gets.
#[derive(Debug)]
pub struct Ctx {
    /// Deterministic source files.
    src: PathBuf,
    /// Keys, kept in `tests/vectors/keys/` so decryption can be re-run from the pcaps.
    keys: PathBuf,
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        self.keys.join(name).display().to_string()
    }
}

/// Runs every scenario (or those in `only`), copying the captures into `pcap_out`.
pub fn capture_all(work: &Path, pcap_out: &Path, only: Option<&[String]>) -> Result<()> {
    if let Some(only) = only {
        for o in only {
            if !SCENARIOS.iter().any(|s| s.name == o) {
                bail!("no scenario `{o}`; there are: {}", names());
            }
        }
    }
    let keys = pcap_out
        .parent()
        .expect("pcap dir has a parent")
        .join("keys");
    let ctx = Ctx {
        src: work.join("src"),
        keys,
    };
    make_sources(&ctx.src)?;
    make_keys(&ctx.keys)?;
    let net = Network::create()?;
    for s in SCENARIOS {
        if only.is_some_and(|o| !o.iter().any(|n| n == s.name)) {
            continue;
        }
        let mut attempt = 1;
        loop {
            eprintln!("vectors: scenario {} (attempt {attempt})", s.name);
            let dir = work.join(format!("{}-{attempt}", s.name));
            fs::create_dir_all(&dir)?;
            let (a, b) = capture(&ctx, s, &dir).with_context(|| format!("scenario {}", s.name))?;
            let pkts = pcap::read(&a)?;
            if (s.wanted)(&pkts) || attempt == 3 {
                if !(s.wanted)(&pkts) {
                    eprintln!(
                        "vectors: {}: wanted packets never appeared; keeping it anyway",
                        s.name
                    );
                }
                fs::copy(&a, pcap_out.join(format!("{}.pcap", s.name)))?;
                if let Some(b) = b {
                    fs::copy(&b, pcap_out.join(format!("{}-b.pcap", s.name)))?;
                }
                eprintln!("vectors: {}: {} UDP packets", s.name, pkts.len());
                break;
            }
            attempt += 1;
        }
    }
    drop(net);
    Ok(())
}

fn names() -> String {
    SCENARIOS
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn capture(ctx: &Ctx, s: &Scenario, dir: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let a = dir.join("a.pcap");
    let b = s.subnet_b.then(|| dir.join("b.pcap"));
    let mut dumps = vec![tcpdump("br0", &a, dir)?];
    if let Some(b) = &b {
        dumps.push(tcpdump("br1", b, dir)?);
    }
    sleep(Duration::from_millis(700));
    let result = (s.run)(ctx, dir);
    // Late packets (final COMPLETEs, DONE_CONF rounds) and tcpdump's own write-out.
    sleep(Duration::from_millis(1000));
    // SIGINT makes tcpdump flush and close the file.
    for d in dumps {
        d.stop("INT")?;
    }
    result?;
    Ok((a, b))
}

fn tcpdump(bridge: &str, file: &Path, dir: &Path) -> Result<Proc> {
    let f = file.display().to_string();
    Proc::spawn(
        &format!("tcpdump on {bridge}"),
        BRIDGE_NS,
        "tcpdump",
        &[
            "-i",
            bridge,
            "--immediate-mode",
            "-U",
            "-n",
            "-w",
            &f,
            "udp",
        ],
        dir,
        &dir.join(format!("tcpdump-{bridge}.log")),
    )
}

fn set_mtime(path: &Path, secs: u64) -> Result<()> {
    let f = fs::File::options().write(true).open(path)?;
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))?;
    Ok(())
}

/// The deterministic source tree every scenario sends from.
fn make_sources(src: &Path) -> Result<()> {
    fs::create_dir_all(src.join("tree/sub"))?;
    fs::create_dir_all(src.join("tree/emptydir"))?;
    let pattern = |n: usize| {
        (0..n)
            .map(|i| ((i * 7 + 3) % 251) as u8)
            .collect::<Vec<u8>>()
    };
    let files: [(&str, Vec<u8>); 7] = [
        (
            "hello.txt",
            b"Hello from the uftp-rs golden vectors!\n".to_vec(),
        ),
        ("multi.bin", pattern(2500)),
        ("lossy.bin", pattern(40_000)),
        ("restart.bin", pattern(30_000)),
        ("tree/a.txt", b"alpha\n".to_vec()),
        ("tree/sub/b.txt", b"bravo\n".to_vec()),
        ("tree/empty.dat", Vec::new()),
    ];
    for (name, data) in &files {
        fs::write(src.join(name), data)?;
        set_mtime(&src.join(name), MTIME)?;
    }
    std::os::unix::fs::symlink("a.txt", src.join("tree/link"))?;
    Ok(())
}

/// Generates the long-term keys with `uftp_keymgt` unless they are already there.
fn make_keys(keys: &Path) -> Result<()> {
    fs::create_dir_all(keys)?;
    let specs = [
        ("srv_ec256.pem", "ec:prime256v1"),
        ("c1_ec256.pem", "ec:prime256v1"),
        ("c2_ec256.pem", "ec:prime256v1"),
        ("srv_rsa1024.pem", "rsa:1024"),
        ("c1_rsa1024.pem", "rsa:1024"),
        ("c2_rsa1024.pem", "rsa:1024"),
        ("srv_ec384.pem", "ec:secp384r1"),
        ("c1_ec384.pem", "ec:secp384r1"),
        ("c2_ec384.pem", "ec:secp384r1"),
        ("px2_rsa512.pem", "rsa:512"),
    ];
    for (name, spec) in specs {
        let path = keys.join(name);
        if !path.exists() {
            netns::run("uftp_keymgt", &["-g", spec, &path.display().to_string()])?;
        }
    }
    Ok(())
}

fn fingerprint(key: &str) -> Result<String> {
    let out = std::process::Command::new("uftp_keymgt")
        .arg(key)
        .output()?;
    // uftp_keymgt reports on stderr.
    let text = String::from_utf8_lossy(&out.stderr);
    let fp = text
        .split("fingerprint: ")
        .nth(1)
        .context("uftp_keymgt printed no fingerprint")?;
    Ok(fp.trim().to_owned())
}

/// Starts `uftpd` in the foreground on `node` receiving into `<dir>/<label>`.
fn client(node: Node, uid: &str, dir: &Path, label: &str, extra: &[&str]) -> Result<Proc> {
    let dest = dir.join(label);
    fs::create_dir_all(&dest)?;
    let d = dest.display().to_string();
    let mut args = vec!["-d", "-q", "-U", uid, "-D", &d, "-x", "3"];
    args.extend_from_slice(extra);
    Proc::spawn(
        &format!("uftpd {label}"),
        node.ns,
        "uftpd",
        &args,
        dir,
        &dir.join(format!("{label}.log")),
    )
}

fn proxy(node: Node, uid: &str, dir: &Path, label: &str, extra: &[&str]) -> Result<Proc> {
    let mut args = vec!["-d", "-U", uid, "-x", "3"];
    args.extend_from_slice(extra);
    Proc::spawn(
        &format!("uftpproxyd {label}"),
        node.ns,
        "uftpproxyd",
        &args,
        dir,
        &dir.join(format!("{label}.log")),
    )
}

/// Runs `uftp` on the server to completion (from the source dir), returning its exit code.
fn server(ctx: &Ctx, dir: &Path, label: &str, extra: &[&str], items: &[&str]) -> Result<i32> {
    let p = server_start(ctx, dir, label, extra, items)?;
    p.wait_exit(Duration::from_secs(90))
}

fn server_start(
    ctx: &Ctx,
    dir: &Path,
    label: &str,
    extra: &[&str],
    items: &[&str],
) -> Result<Proc> {
    let mut args = vec!["-U", SERVER_UID, "-r", GRTT, "-b", BLOCKSIZE, "-x", "3"];
    if !extra.contains(&"-R") {
        args.extend_from_slice(&["-R", "-1"]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(items);
    // `uftp` writes restart files into its working directory; the names it sends are relative
    // to the source dir, so it runs there and restart files are moved afterwards.
    Proc::spawn(
        &format!("uftp {label}"),
        SRV.ns,
        "uftp",
        &args,
        &ctx.src,
        &dir.join(format!("{label}.log")),
    )
}

fn settle() {
    sleep(Duration::from_millis(400));
}

fn open(ctx: &Ctx, dir: &Path) -> Result<()> {
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &[])?;
    settle();
    server(ctx, dir, "server", &[], &["hello.txt", "multi.bin", "tree"])?;
    Ok(())
}

fn closed(ctx: &Ctx, dir: &Path) -> Result<()> {
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &[])?;
    let _c3 = client(C3, C3_UID, dir, "c3", &[])?;
    settle();
    let list = format!("{C1_UID},{C2_UID}");
    server(ctx, dir, "server", &["-H", &list], &["hello.txt"])?;
    Ok(())
}

/// nftables table that drops `pct`% of UDP arriving in `node`'s namespace.
fn add_loss(node: Node, table: &str, rule: &str) -> Result<()> {
    netns::run_in(node.ns, "nft", &["add", "table", "inet", table])?;
    netns::run_in(
        node.ns,
        "nft",
        &[
            "add",
            "chain",
            "inet",
            table,
            "input",
            "{ type filter hook input priority 0 ; }",
        ],
    )?;
    let mut args = vec!["add", "rule", "inet", table, "input"];
    args.extend(rule.split_whitespace());
    netns::run_in(node.ns, "nft", &args)
}

fn del_table(node: Node, table: &str) -> Result<()> {
    netns::run_in(node.ns, "nft", &["delete", "table", "inet", table])
}

const LOSS_RULE: &str = "meta l4proto udp numgen random mod 100 < 10 drop";

fn loss(ctx: &Ctx, dir: &Path) -> Result<()> {
    add_loss(C1, "uvloss", LOSS_RULE)?;
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &[])?;
    settle();
    let r = server(ctx, dir, "server", &[], &["lossy.bin"]);
    del_table(C1, "uvloss")?;
    r.map(drop)
}

fn tfmcc(ctx: &Ctx, dir: &Path) -> Result<()> {
    add_loss(C1, "uvloss", LOSS_RULE)?;
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &[])?;
    settle();
    let r = server(ctx, dir, "server", &["-C", "tfmcc"], &["lossy.bin"]);
    del_table(C1, "uvloss")?;
    r.map(drop)
}

fn sync(ctx: &Ctx, dir: &Path) -> Result<()> {
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    settle();
    server(ctx, dir, "server-1", &["-z"], &["hello.txt", "multi.bin"])?;
    set_mtime(&ctx.src.join("multi.bin"), MTIME_NEWER)?;
    let r = server(ctx, dir, "server-2", &["-z"], &["hello.txt", "multi.bin"]);
    let r2 = server(ctx, dir, "server-3", &["-Z"], &["hello.txt", "multi.bin"]);
    set_mtime(&ctx.src.join("multi.bin"), MTIME)?;
    r?;
    r2.map(drop)
}

fn metafiles(ctx: &Ctx, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir.join("c1"))?;
    fs::write(dir.join("c1/old.txt"), b"to be deleted\n")?;
    let _c1 = client(C1, C1_UID, dir, "c1", &[])?;
    settle();
    server(
        ctx,
        dir,
        "server",
        &[],
        &["@FREESPACE", "@DELETE:old.txt", "hello.txt"],
    )?;
    Ok(())
}

fn restart(ctx: &Ctx, dir: &Path) -> Result<()> {
    let tmp = dir.join("c1-temp");
    fs::create_dir_all(&tmp)?;
    let t = tmp.display().to_string();
    let _c1 = client(C1, C1_UID, dir, "c1", &["-T", &t])?;
    settle();
    // 200 Kbps = 25.6 KB/s: the 30 KB file takes over a second, time enough to cut it off.
    let run1 = server_start(
        ctx,
        dir,
        "server-1",
        &["-f", "-s", "10", "-R", "200"],
        &["restart.bin"],
    )?;
    sleep(Duration::from_millis(600));
    add_loss(C1, "uvcut", "meta l4proto udp drop")?;
    let code = run1.wait_exit(Duration::from_secs(60));
    del_table(C1, "uvcut")?;
    eprintln!("vectors: restart: first run exited with {code:?}");
    // Let the client give up on the session so it writes its own restart state.
    sleep(Duration::from_secs(3));
    let file = fs::read_dir(&ctx.src)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("_group_"))
        })
        .context("the first run left no server restart file")?;
    let kept = dir.join(file.file_name().expect("has a name"));
    fs::rename(&file, &kept)?;
    let k = kept.display().to_string();
    server(ctx, dir, "server-2", &["-F", &k], &["restart.bin"])?;
    Ok(())
}

fn abort(ctx: &Ctx, dir: &Path) -> Result<()> {
    let _c3 = client(C3, C3_UID, dir, "c3", &["-E"])?;
    settle();
    server(ctx, dir, "server", &["-s", "10"], &["hello.txt"])?;
    Ok(())
}

fn ipv6(ctx: &Ctx, dir: &Path) -> Result<()> {
    // Without `-I` uftpd joins once per address of the interface and fails on the second
    // ("Address already in use"); `-I <ifname>` picks the IPv4 entry and joins nothing. `-I`
    // with the interface's IPv6 address works.
    let i1 = C1.ipv6.expect("c1 has IPv6");
    let i2 = C2.ipv6.expect("c2 has IPv6");
    let _c1 = client(C1, C1_UID, dir, "c1", &["-M", "ff15::4:1", "-I", i1])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &["-M", "ff15::4:1", "-I", i2])?;
    settle();
    server(
        ctx,
        dir,
        "server",
        &["-M", "ff15::4:1", "-P", "ff15::5:1"],
        &["hello.txt"],
    )?;
    Ok(())
}

fn encrypted(ctx: &Ctx, dir: &Path, keys: [&str; 3], opts: &[&str], items: &[&str]) -> Result<()> {
    let (k1, k2, ks) = (ctx.key(keys[1]), ctx.key(keys[2]), ctx.key(keys[0]));
    let _c1 = client(C1, C1_UID, dir, "c1", &["-k", &k1])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &["-k", &k2])?;
    settle();
    let mut args = opts.to_vec();
    args.extend_from_slice(&["-k", &ks]);
    server(ctx, dir, "server", &args, items)?;
    Ok(())
}

fn enc_gcm(ctx: &Ctx, dir: &Path) -> Result<()> {
    encrypted(
        ctx,
        dir,
        ["srv_ec256.pem", "c1_ec256.pem", "c2_ec256.pem"],
        &["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa"],
        &["hello.txt", "multi.bin"],
    )
}

fn enc_cbc_rsa(ctx: &Ctx, dir: &Path) -> Result<()> {
    encrypted(
        ctx,
        dir,
        ["srv_rsa1024.pem", "c1_rsa1024.pem", "c2_rsa1024.pem"],
        &["-Y", "aes256-cbc", "-h", "sha256", "-e", "rsa", "-c"],
        &["hello.txt", "multi.bin"],
    )
}

fn enc_ccm(ctx: &Ctx, dir: &Path) -> Result<()> {
    encrypted(
        ctx,
        dir,
        ["srv_ec384.pem", "c1_ec384.pem", "c2_ec384.pem"],
        &[
            "-Y",
            "aes128-ccm",
            "-h",
            "sha384",
            "-e",
            "ecdh_ecdsa:secp384r1",
        ],
        &["hello.txt"],
    )
}

fn proxy_heartbeat(_ctx: &Ctx, dir: &Path) -> Result<()> {
    let _px = proxy(PX1, PX1_UID, dir, "px1", &["-s", PX2.ipv4])?;
    settle();
    let _c1 = client(C1, C1_UID, dir, "c1", &["-H", PX1.ipv4, "-h", "1"])?;
    sleep(Duration::from_millis(2500));
    Ok(())
}

fn proxy_response(ctx: &Ctx, dir: &Path) -> Result<()> {
    let _px = proxy(PX1, PX1_UID, dir, "px1", &["-r"])?;
    settle();
    let _c1 = client(C1, C1_UID, dir, "c1", &["-R", PX1.ipv4])?;
    let _c2 = client(C2, C2_UID, dir, "c2", &["-R", PX1.ipv4])?;
    sleep(Duration::from_millis(1500));
    server(
        ctx,
        dir,
        "server",
        &["-Y", "aes128-cbc", "-h", "sha256"],
        &["hello.txt"],
    )?;
    Ok(())
}

fn proxy_chain(ctx: &Ctx, dir: &Path) -> Result<()> {
    let key = ctx.key("px2_rsa512.pem");
    let fp = format!("fp={}", fingerprint(&key)?);
    let _px1 = proxy(PX1, PX1_UID, dir, "px1", &["-s", &fp])?;
    let _px2 = proxy(
        PX2,
        PX2_UID,
        dir,
        "px2",
        &[
            "-c",
            "-H",
            PX1.ipv4,
            "-h",
            "1",
            "-k",
            &key,
            "-O",
            netns::PX2_B.ifname,
        ],
    )?;
    let _c4 = client(C4, C4_UID, dir, "c4", &[])?;
    sleep(Duration::from_millis(2500));
    server(ctx, dir, "server", &[], &["hello.txt", "multi.bin"])?;
    Ok(())
}
