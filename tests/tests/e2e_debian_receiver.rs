//! Our `uftp` sending to Debian's `uftpd` 4.10.2 in network namespaces: a 50 MiB file and a
//! directory tree (nested directories, an empty file, an empty directory, a symlink, a name
//! with spaces) to three receivers, without loss and with 3% random loss on every receiver's
//! input; then `uftp`'s exit codes when no client registers (7) and when a receiver is lost (9).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uftp_tests::netns::{our_binary, serial, sha256, write_pattern, Host, Proc, Testbed};

const RECEIVERS: usize = 3;

fn uid(i: usize) -> String {
    format!("0x0B0000{i:02X}")
}

/// Starts Debian's uftpd on host `i` (1-based), receiving into `dir`.
fn uftpd(bed: &Testbed, i: usize, dir: &Path) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let h = bed.host(i);
    let mut cmd = h.command("uftpd");
    cmd.args([
        "-d",
        "-D",
        dir.to_str().unwrap(),
        "-U",
        &uid(i),
        "-I",
        &h.ifname,
        "-x",
        "2",
    ]);
    Proc::spawn(
        &format!("uftpd{i}"),
        cmd,
        &bed.path(&format!("uftpd{i}.log")),
    )
}

fn uftp(bed: &Testbed, args: &[&str], log: &str) -> Proc {
    let h = bed.host(0);
    let mut cmd = h.command(our_binary("uftp"));
    cmd.args(["-U", "0x0A4D0001", "-I", &h.ifname]).args(args);
    Proc::spawn("uftp", cmd, &bed.path(log))
}

/// Drops `percent`% of the UDP datagrams `h` receives (nftables `numgen random`). Local
/// stand-in for `Host::set_loss`, whose one-line ruleset nft rejects.
fn set_loss(bed: &Testbed, h: &Host, percent: u32) {
    let file = bed.path(&format!("loss-{}.nft", h.ns));
    let rules = format!(
        "table inet uftploss {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
         meta l4proto udp numgen random mod 100 < {percent} counter drop\n  }}\n}}\n"
    );
    std::fs::write(&file, rules).unwrap();
    h.run("nft", &["-f", file.to_str().unwrap()]);
}

/// Datagrams `set_loss` has dropped on `h`.
fn dropped(h: &Host) -> u64 {
    let out = h.run("nft", &["list", "table", "inet", "uftploss"]);
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The tree: nested directories, an empty file, an empty directory, a symlink, a space.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("empty dir")).unwrap();
    write_pattern(&root.join("a/b/c/deep.bin"), 300_001, 7);
    write_pattern(&root.join("a/one.txt"), 1300, 8);
    write_pattern(&root.join("name with spaces.txt"), 4242, 9);
    std::fs::write(root.join("a/b/empty.txt"), b"").unwrap();
    std::os::unix::fs::symlink("a/b/c/deep.bin", root.join("link")).unwrap();
}

/// Every regular file, empty directory and symlink under `src` is the same under `dst`.
fn assert_same_tree(src: &Path, dst: &Path) -> usize {
    let mut n = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for s in entries {
        let d = dst.join(s.file_name().unwrap());
        let meta = std::fs::symlink_metadata(&s).unwrap();
        if meta.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&d).unwrap(),
                std::fs::read_link(&s).unwrap()
            );
        } else if meta.is_dir() {
            assert!(d.is_dir(), "{} missing", d.display());
            n += assert_same_tree(&s, &d);
        } else {
            assert_eq!(sha256(&d), sha256(&s), "{} differs", d.display());
        }
        n += 1;
    }
    n
}

fn transfer(loss: u32) {
    let _lock = serial();
    let bed = Testbed::new(RECEIVERS + 1);
    let src = bed.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("big.bin");
    write_pattern(&big, 50 << 20, 1);
    make_tree(&src.join("tree"));
    let mut receivers: Vec<Proc> = (1..=RECEIVERS)
        .map(|i| uftpd(&bed, i, &bed.path(&format!("dst{i}"))))
        .collect();
    if loss > 0 {
        for i in 1..=RECEIVERS {
            set_loss(&bed, bed.host(i), loss);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let hosts: Vec<String> = (1..=RECEIVERS).map(uid).collect();
    let start = Instant::now();
    let mut sender = uftp(
        &bed,
        &[
            "-R",
            "-1",
            "-H",
            &hosts.join(","),
            "-r",
            "0.05:0.01:1",
            "-x",
            "2",
            big.to_str().unwrap(),
            src.join("tree").to_str().unwrap(),
        ],
        "uftp.log",
    );
    let code = sender.wait(Duration::from_secs(120));
    let took = start.elapsed();
    let log = sender.log_text();
    eprintln!("--- uftp ({loss}% loss, {took:?}) ---\n{log}");
    assert_eq!(code, 0, "uftp exit code");
    let dropped: u64 = if loss > 0 {
        (1..=RECEIVERS).map(|i| dropped(bed.host(i))).sum()
    } else {
        0
    };
    if loss > 0 {
        assert!(dropped > 0, "the loss rule dropped nothing");
        assert!(log.contains("retransmitted"), "{log}");
    }
    for i in 1..=RECEIVERS {
        let dst = bed.path(&format!("dst{i}"));
        assert_eq!(
            sha256(&dst.join("big.bin")),
            sha256(&big),
            "receiver {i}: big.bin"
        );
        let n = assert_same_tree(&src.join("tree"), &dst.join("tree"));
        assert_eq!(n, 9, "receiver {i}: tree entries");
        assert_eq!(
            std::fs::metadata(dst.join("tree/a/b/empty.txt"))
                .unwrap()
                .len(),
            0
        );
    }
    eprintln!("{loss}% loss: {dropped} datagrams dropped by nftables, {took:?}");
    for r in receivers.iter_mut() {
        r.stop();
    }
}

#[test]
fn three_debian_receivers_lossless() {
    transfer(0);
}

#[test]
fn three_debian_receivers_three_percent_loss() {
    transfer(3);
}

#[test]
fn exit_7_when_no_client_registers() {
    let _lock = serial();
    let bed = Testbed::new(2);
    let f = bed.path("f.bin");
    std::fs::create_dir_all(&bed.dir).unwrap();
    write_pattern(&f, 1000, 3);
    let start = Instant::now();
    let mut sender = uftp(
        &bed,
        &[
            "-R",
            "-1",
            "-r",
            "0.01:0.01:1",
            "-s",
            "10",
            f.to_str().unwrap(),
        ],
        "uftp.log",
    );
    let code = sender.wait(Duration::from_secs(20));
    assert_eq!(code, 7, "{}", sender.log_text());
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(sender.log_text().contains("no client registered"));
}

#[test]
fn exit_9_when_a_receiver_is_lost() {
    let _lock = serial();
    let bed = Testbed::new(3);
    let f = bed.path("f.bin");
    std::fs::create_dir_all(&bed.dir).unwrap();
    write_pattern(&f, 20 << 20, 4);
    let mut r1 = uftpd(&bed, 1, &bed.path("dst1"));
    let mut r2 = uftpd(&bed, 2, &bed.path("dst2"));
    std::thread::sleep(Duration::from_millis(300));
    // 40000 Kbps = 5 MB/s: the 20 MiB file takes about 4 s.
    let mut sender = uftp(
        &bed,
        &[
            "-R",
            "40000",
            "-H",
            &format!("{},{}", uid(1), uid(2)),
            "-r",
            "0.05:0.01:1",
            f.to_str().unwrap(),
        ],
        "uftp.log",
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(sender.running(), "{}", sender.log_text());
    r2.signal("KILL");
    let code = sender.wait(Duration::from_secs(60));
    let log = sender.log_text();
    eprintln!("{log}");
    assert_eq!(code, 9, "{log}");
    assert!(log.contains(&format!("client {} lost", uid(2))), "{log}");
    assert_eq!(
        sha256(&bed.path("dst1/f.bin")),
        sha256(&f),
        "the surviving receiver has the file"
    );
    r1.stop();
}
