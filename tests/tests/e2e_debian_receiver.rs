//! Our `uftp` sending to Debian's `uftpd` 4.10.2 in network namespaces: a 50 MiB file and a
//! directory tree (nested directories, an empty file, an empty directory, a symlink, a name
//! with spaces) to three receivers, without loss and with 3% random loss on every receiver's
//! input; then `uftp`'s exit codes when no client registers (7) and when a receiver is lost (9).

use std::path::Path;
use std::time::{Duration, Instant};

use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};
use uftp_tests::tree::{listing, make_content};

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

fn transfer(loss: u32) {
    let _lock = serial();
    let bed = Testbed::new(RECEIVERS + 1);
    let items = make_content(&bed.dir, 50 << 20);
    let src = bed.path("src");
    let mut receivers: Vec<Proc> = (1..=RECEIVERS)
        .map(|i| uftpd(&bed, i, &bed.path(&format!("dst{i}"))))
        .collect();
    for i in 1..=RECEIVERS {
        bed.host(i).set_loss(loss);
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
            items[0].to_str().unwrap(),
            items[1].to_str().unwrap(),
        ],
        "uftp.log",
    );
    let code = sender.wait(Duration::from_secs(120));
    let took = start.elapsed();
    let log = sender.log_text();
    eprintln!("--- uftp ({loss}% loss, {took:?}) ---\n{log}");
    assert_eq!(code, 0, "uftp exit code");
    let dropped: u64 = if loss > 0 {
        (1..=RECEIVERS).map(|i| bed.host(i).dropped()).sum()
    } else {
        0
    };
    if loss > 0 {
        assert!(dropped > 0, "the loss rule dropped nothing");
        assert!(log.contains("retransmitted"), "{log}");
    }
    let want = listing(&src);
    for i in 1..=RECEIVERS {
        let got = listing(&bed.path(&format!("dst{i}")));
        assert_eq!(got, want, "receiver {i} differs from the source");
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
    // 10 announce rounds of 3 × 10 ms, then exit 7; the wait below bounds it.
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
