//! Debian's `uftp` 4.10.2 sends to three of our `uftpd`s, each in its own network namespace:
//! a 50 MiB file and a directory tree (nested directories, an empty file, an empty directory, a
//! symlink, a name with spaces), at 0% and 3% loss on the receivers' input. Every file must
//! arrive byte-identical (sha256) and no temporary file may remain. Plus robustness: a flood of
//! random and mutated datagrams during a transfer, and a sender killed mid-transfer.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`). Our `uftpd` is built by
//! [`our_binary`] if needed, so `cargo test --workspace` on a fresh clone is enough.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Host, Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::tree::{listing, make_content, temporaries};

const BIG: u64 = 50 << 20;

fn uid_of(h: &Host) -> String {
    let ip: std::net::Ipv4Addr = h.ipv4.parse().unwrap();
    format!("0x{:08x}", u32::from(ip))
}

struct Bed {
    bed: Testbed,
    receivers: Vec<Proc>,
    dests: Vec<PathBuf>,
}

fn start_receivers(n: usize) -> Bed {
    start_receivers_with(n, &[])
}

fn start_receivers_with(n: usize, extra: &[&str]) -> Bed {
    let bed = Testbed::new(n + 1);
    let uftpd = our_binary("uftpd");
    let mut receivers = Vec::new();
    let mut dests = Vec::new();
    for i in 1..=n {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = h.command(&uftpd);
        cmd.args(["-d", "-x", "3", "-B", "4194304", "-I", &h.ifname, "-D"])
            .arg(&dest)
            .args(extra);
        receivers.push(Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        ));
        dests.push(dest);
    }
    // Wait until each listens (its start-up line is logged).
    for r in &mut receivers {
        r.wait_for_line("listening on port", Duration::from_secs(10));
    }
    Bed {
        bed,
        receivers,
        dests,
    }
}

fn uftp_cmd(b: &Bed, rate: &str, items: &[PathBuf]) -> Command {
    let s = b.bed.host(0);
    let ids: Vec<String> = (1..b.bed.hosts.len())
        .map(|i| uid_of(b.bed.host(i)))
        .collect();
    let mut cmd = s.command("uftp");
    cmd.args([
        "-I",
        &s.ifname,
        "-R",
        rate,
        "-r",
        "0.05",
        "-H",
        &ids.join(","),
        "-x",
        "2",
    ]);
    cmd.args(items);
    cmd
}

fn logs(b: &Bed) -> String {
    b.receivers
        .iter()
        .map(|r| format!("--- {}:\n{}", r.name, r.log_text()))
        .collect()
}

fn check_delivery(b: &Bed, src: &Path) {
    let want = listing(src);
    for d in &b.dests {
        let got = listing(d);
        assert_eq!(
            got,
            want,
            "{} differs from the source\n{}",
            d.display(),
            logs(b)
        );
        let temps = temporaries(d);
        assert!(temps.is_empty(), "temporaries left: {temps:?}");
    }
}

fn transfer_at_loss(loss: u32) {
    let _lock = serial();
    let mut b = start_receivers(3);
    let items = make_content(&b.bed.dir, BIG);
    for i in 1..=3 {
        b.bed.host(i).set_loss(loss);
    }
    let t0 = Instant::now();
    let mut sender = Proc::spawn(
        "uftp",
        uftp_cmd(&b, "200000", &items),
        &b.bed.path("uftp.log"),
    );
    let code = sender.wait(Duration::from_secs(240));
    let took = t0.elapsed();
    assert_eq!(code, 0, "uftp failed:\n{}\n{}", sender.log_text(), logs(&b));
    let dropped: Vec<u64> = if loss > 0 {
        (1..=3).map(|i| b.bed.host(i).dropped()).collect()
    } else {
        Vec::new()
    };
    eprintln!(
        "loss {loss}%: uftp finished in {took:?}; datagrams dropped by nftables: {dropped:?}"
    );
    if loss > 0 {
        assert!(
            dropped.iter().all(|&d| d > 100),
            "loss rule inactive: {dropped:?}"
        );
    }
    check_delivery(&b, &b.bed.dir.join("src"));
    for r in &mut b.receivers {
        assert!(r.running(), "{} died:\n{}", r.name, r.log_text());
        assert!(
            r.log_text().contains("Session complete"),
            "{}",
            r.log_text()
        );
    }
}

#[test]
fn debian_uftp_to_three_uftpd_no_loss() {
    transfer_at_loss(0);
}

#[test]
fn debian_uftp_to_three_uftpd_3pct_loss() {
    transfer_at_loss(3);
}

#[test]
fn debian_uftp_to_uftpd_over_ipv6() {
    let _lock = serial();
    let b = start_receivers_with(2, &["-M", "ff15::4:4:1"]);
    let items = make_content(&b.bed.dir, 3 << 20);
    let mut cmd = uftp_cmd(&b, "100000", &items);
    // uftp takes its IPv6 source from `-I address` (the later -I wins).
    let v6 = b.bed.host(0).ipv6.clone();
    cmd.args(["-M", "ff15::4:4:1", "-P", "ff15::5:5:9", "-I", &v6]);
    let mut sender = Proc::spawn("uftp", cmd, &b.bed.path("uftp.log"));
    let code = sender.wait(Duration::from_secs(60));
    assert_eq!(code, 0, "uftp failed:\n{}\n{}", sender.log_text(), logs(&b));
    check_delivery(&b, &b.bed.dir.join("src"));
    assert!(
        logs(&b).contains("private group ff15::5:5:9"),
        "{}",
        logs(&b)
    );
}

#[test]
fn uftpd_survives_a_million_hostile_datagrams_during_a_transfer() {
    let _lock = serial();
    let mut b = start_receivers(1);
    let items = make_content(&b.bed.dir, 20 << 20);
    let mut sender = Proc::spawn(
        "uftp",
        uftp_cmd(&b, "50000", &items),
        &b.bed.path("uftp.log"),
    );
    // Wait until the transfer is under way, then flood uftpd's unicast address and the public
    // group from the sender's namespace.
    let t0 = Instant::now();
    while !b.receivers[0].log_text().contains("Receiving") {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", logs(&b));
        sleep(Duration::from_millis(20));
    }
    let target = b.bed.host(1).ipv4.clone();
    let mut flood = Proc::spawn(
        "flood",
        {
            let mut c = b.bed.host(0).command(env!("CARGO_BIN_EXE_udp_flood"));
            c.arg("1000000")
                .arg(format!("{target}:1044,230.4.4.1:1044"))
                .arg(uftp_tests::vectors_dir().join("messages"));
            c
        },
        &b.bed.path("flood.log"),
    );
    let code = sender.wait(Duration::from_secs(240));
    let fcode = flood.wait(Duration::from_secs(240));
    assert_eq!(fcode, 0, "flood helper failed:\n{}", flood.log_text());
    assert!(
        flood.log_text().contains("sent 1000000"),
        "{}",
        flood.log_text()
    );
    assert_eq!(code, 0, "uftp failed:\n{}\n{}", sender.log_text(), logs(&b));
    assert!(b.receivers[0].running(), "uftpd died:\n{}", logs(&b));
    // Unencrypted UFTP has no authentication: mutated captures can form sessions of their own
    // and deliver their (tiny) files too. Ours must be exact, and once those forged sessions
    // have timed out, no temporary may remain.
    let t1 = Instant::now();
    let dest = &b.dests[0];
    while listing(dest).iter().any(|(p, _)| p.ends_with(".part")) {
        assert!(
            t1.elapsed() < Duration::from_secs(60),
            "temporaries stay:\n{:?}",
            listing(dest)
        );
        sleep(Duration::from_millis(200));
    }
    let got = listing(dest);
    for entry in listing(&b.bed.dir.join("src")) {
        assert!(
            got.contains(&entry),
            "{entry:?} missing or different\n{got:?}"
        );
    }
    eprintln!("flood: {}", flood.log_text().trim());
    eprintln!("dest: {got:?}");
    let log = b.receivers[0].log_text();
    assert!(log.contains("dropped datagram"), "{log}");
}

#[test]
fn sender_killed_mid_transfer_leaves_nothing_behind() {
    let _lock = serial();
    let mut b = start_receivers(1);
    let items = make_content(&b.bed.dir, BIG);
    // Slow enough (20 Mbit/s) to be killed in the middle of big.bin.
    let mut sender = Proc::spawn(
        "uftp",
        uftp_cmd(&b, "20000", &items[..1]),
        &b.bed.path("uftp.log"),
    );
    let dest = b.dests[0].clone();
    let t0 = Instant::now();
    let has_temp = |d: &Path| {
        fs::read_dir(d)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".part"))
    };
    while !has_temp(&dest) {
        assert!(t0.elapsed() < Duration::from_secs(30), "{}", logs(&b));
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(1000));
    sender.signal("KILL");
    let _ = sender.wait(Duration::from_secs(5));
    // ROBUST×GRTT with GRTT ≈ 0.05 s is 1 s: the 1 s floor applies.
    let t1 = Instant::now();
    while !b.receivers[0].log_text().contains("Transfer timed out") {
        assert!(
            t1.elapsed() < Duration::from_secs(15),
            "no timeout:\n{}",
            logs(&b)
        );
        sleep(Duration::from_millis(100));
    }
    let left: Vec<_> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{}", logs(&b));
    assert!(b.receivers[0].running());
}
