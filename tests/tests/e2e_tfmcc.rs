//! TFMCC congestion control (`uftp -C tfmcc`, digest §6.2) end to end in network namespaces:
//! Debian's `uftp` 4.10.2 to two of our `uftpd`s, our `uftp` to two of Debian's `uftpd`s, and
//! ours to ours, each a 4 MiB file at 2% random loss on every receiver's input (nftables). Every
//! copy must match the source's SHA-256, and rate control must have happened: the receivers'
//! CC_ACKs are captured on the sender's side (tcpdump; a receiver sends one only in a TFMCC
//! session, at once when a CONG_CTRL names it the CLR, else when its feedback timer fires), and
//! our sender's log must name a CLR and show the rate changing. Plus our sender encrypted
//! (AES-256-GCM) to Debian's receivers, where CONG_CTRL and CC_ACK travel sealed.
//!
//! Needs root, `ip`, `nft`, `tcpdump` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{sh, Host, Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

const RECEIVERS: usize = 2;
const SIZE: usize = 4 << 20;
const LOSS: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Imp {
    Ours,
    Debian,
}

fn uid_of(h: &Host) -> String {
    let ip: std::net::Ipv4Addr = h.ipv4.parse().unwrap();
    format!("0x{:08X}", u32::from(ip))
}

struct Outcome {
    sender_log: String,
    /// CC_ACKs seen arriving at the sender, by source address.
    cc_acks: Vec<String>,
    receivers: Vec<String>,
}

/// One session from `sender` to two `receiver`s; `extra` goes to the sender.
fn transfer(sender: Imp, receiver: Imp, extra: &[&str]) -> Outcome {
    let _lock = serial();
    let bed = Testbed::new(RECEIVERS + 1);
    let src = bed.path("payload.bin");
    write_pattern(&src, SIZE, 4654);
    let mut receivers = Vec::new();
    let mut dests = Vec::new();
    for i in 1..=RECEIVERS {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = match receiver {
            Imp::Ours => {
                let mut c = h.command(our_binary("uftpd"));
                c.args(["-B", "4194304"]);
                c
            }
            Imp::Debian => h.command("uftpd"),
        };
        cmd.args(["-d", "-x", "3", "-U", &uid_of(&h), "-I", &h.ifname, "-D"])
            .arg(&dest);
        if extra.contains(&"-Y") {
            // uftpd 4.10.2 takes an ECDH-ECDSA session only with an EC key of its own.
            let key = bed.path(&format!("client{i}.pem"));
            sh(
                "uftp_keymgt",
                &["-g", "ec:prime256v1", key.to_str().unwrap()],
            );
            cmd.arg("-k").arg(&key);
        }
        let mut p = Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        );
        match receiver {
            Imp::Ours => p.wait_for_line("listening on port", Duration::from_secs(10)),
            Imp::Debian => sleep(Duration::from_millis(300)),
        }
        receivers.push(p);
        dests.push(dest);
        h.set_loss(LOSS);
    }
    let s = bed.host(0).clone();
    // CC_ACK (version 0x40, type 21) arriving at the sender (none in the clear when encrypted).
    let pcap = bed.path("cc_ack.pcap");
    let filter = "udp and udp[8] == 0x40 and udp[9] == 21";
    let mut dump = s.command("tcpdump");
    dump.args(["-Z", "root", "-U", "-n", "-i", &s.ifname, "-w"])
        .arg(&pcap)
        .arg(filter);
    let mut tcpdump = Proc::spawn("tcpdump", dump, &bed.path("tcpdump.log"));
    tcpdump.wait_for_line("listening on", Duration::from_secs(10));
    let ids: Vec<String> = (1..=RECEIVERS).map(|i| uid_of(bed.host(i))).collect();
    let mut cmd: Command = match sender {
        Imp::Ours => {
            let mut c = s.command(our_binary("uftp"));
            c.args(["-r", "0.05:0.01:1"]);
            c
        }
        Imp::Debian => {
            let mut c = s.command("uftp");
            c.args(["-r", "0.05"]);
            c
        }
    };
    cmd.args([
        "-I",
        &s.ifname,
        "-C",
        "tfmcc",
        "-H",
        &ids.join(","),
        "-x",
        "2",
    ])
    .args(extra)
    .arg(&src);
    let start = Instant::now();
    let mut uftp = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = uftp.wait(Duration::from_secs(60));
    let took = start.elapsed();
    let sender_log = uftp.log_text();
    let logs = Proc::stop_all(&mut receivers);
    assert_eq!(code, 0, "uftp exit code\n{sender_log}\n{logs}");
    let dropped: u64 = (1..=RECEIVERS).map(|i| bed.host(i).dropped()).sum();
    assert!(dropped > 0, "the loss rule dropped nothing");
    let want = sha256(&src);
    for d in &dests {
        let got = d.join("payload.bin");
        assert_eq!(
            sha256(&got),
            want,
            "{} differs from the source",
            got.display()
        );
    }
    sleep(Duration::from_millis(200));
    tcpdump.stop();
    let decoded = sh("tcpdump", &["-n", "-r", pcap.to_str().unwrap()]);
    // "12:00:00.000000 IP 10.0.0.2.1044 > 10.0.0.1.1044: UDP, length 28"
    let cc_acks: Vec<String> = decoded
        .lines()
        .filter_map(|l| l.split(" IP ").nth(1))
        .filter_map(|l| l.split_whitespace().next())
        .map(|a| a.rsplit_once('.').map_or(a, |(ip, _)| ip).to_string())
        .collect();
    eprintln!(
        "{sender:?} uftp -> {receiver:?} uftpd: {took:?}, {dropped} datagrams dropped, {} CC_ACKs\n{sender_log}",
        cc_acks.len()
    );
    Outcome {
        sender_log,
        cc_acks,
        receivers: (1..=RECEIVERS).map(|i| bed.host(i).ipv4.clone()).collect(),
    }
}

/// CC_ACKs came from our receivers: at least one, each from a receiver of the session.
fn check_cc_acks(o: &Outcome) {
    assert!(
        !o.cc_acks.is_empty(),
        "no CC_ACK reached the sender\n{}",
        o.sender_log
    );
    for a in &o.cc_acks {
        assert!(o.receivers.contains(a), "CC_ACK from {a}");
    }
}

/// Our sender logged the rate as it changed, with a CLR among the receivers; returns the rates
/// logged (bytes per second).
fn check_rate_log(o: &Outcome) -> Vec<u64> {
    let lines: Vec<&str> = o
        .sender_log
        .lines()
        .filter(|l| l.contains("TFMCC rate "))
        .collect();
    let rates: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split("TFMCC rate ").nth(1)?.split_whitespace().next())
        .collect();
    assert!(
        rates.len() >= 2,
        "the rate never changed:\n{}",
        o.sender_log
    );
    assert!(
        lines.iter().any(|l| l.contains("CLR 0x")),
        "no CLR named:\n{}",
        o.sender_log
    );
    lines
        .iter()
        .filter_map(|l| {
            l.split(" MB/s)")
                .next()?
                .rsplit('(')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map(|mb| (mb * 1e6) as u64)
        .collect()
}

#[test]
fn debian_tfmcc_sender_to_our_receivers() {
    let o = transfer(Imp::Debian, Imp::Ours, &[]);
    check_cc_acks(&o);
}

#[test]
fn our_tfmcc_sender_to_debian_receivers() {
    let o = transfer(Imp::Ours, Imp::Debian, &[]);
    check_rate_log(&o);
    // Debian's receivers answer our CONG_CTRL (the CLR at once) and their feedback timers.
    check_cc_acks(&o);
}

#[test]
fn our_tfmcc_sender_to_our_receivers() {
    let o = transfer(Imp::Ours, Imp::Ours, &[]);
    check_rate_log(&o);
    check_cc_acks(&o);
}

/// Encrypted (AES-256-GCM): CONG_CTRL and CC_ACK travel sealed, as uftp 4.10.1 and later
/// require (none is seen in the clear); Debian's receivers must still answer, which the rate
/// shows: without the CLR's feedback it could only fall from where it starts.
#[test]
fn our_encrypted_tfmcc_sender_to_debian_receivers() {
    let o = transfer(
        Imp::Ours,
        Imp::Debian,
        &["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa"],
    );
    let rates = check_rate_log(&o);
    let (first, top) = (rates[0], rates.iter().copied().max().unwrap());
    assert!(top > 10 * first, "the rate never rose: {rates:?}");
    assert!(
        o.cc_acks.is_empty(),
        "CC_ACK in the clear in an encrypted session"
    );
}
