//! The default rate control (no `-R`, no `-C`) end to end in network namespaces: three of our
//! `uftpd`s, one of them behind an nftables `limit rate` of 20 Mbit/s on its input.
//!
//! - Without `-N`, the sender names that receiver as the one holding the group back, slows to
//!   what it takes, and every copy arrives.
//! - With `-N 50 -m 1`, the sender drops it (ABORT, "too many NAKs") and the other two finish
//!   far faster than 20 Mbit/s would allow.
//!
//! Needs root, `ip` and `nft` (`cargo xtask setup`).

use std::fs;
use std::time::{Duration, Instant};

use testnet::{Host, Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

const SIZE: usize = 16 << 20;
/// The slow receiver's limit: 20 Mbit/s.
const LIMIT_KBYTES: u32 = 2500;

fn uid_of(h: &Host) -> String {
    let ip: std::net::Ipv4Addr = h.ipv4.parse().unwrap();
    format!("0x{:08X}", u32::from(ip))
}

struct Outcome {
    log: String,
    took: Duration,
    slow: String,
    /// Whether each receiver's copy matches the source, in host order.
    copies: Vec<bool>,
}

fn transfer(extra: &[&str]) -> Outcome {
    let _lock = serial();
    let bed = Testbed::new(4);
    let src = bed.path("payload.bin");
    write_pattern(&src, SIZE, 2020);
    let mut receivers = Vec::new();
    let mut dests = Vec::new();
    for i in 1..=3 {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = h.command(our_binary("uftpd"));
        cmd.args([
            "-d",
            "-B",
            "4194304",
            "-U",
            &uid_of(&h),
            "-I",
            &h.ifname,
            "-D",
        ])
        .arg(&dest);
        let mut p = Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        );
        p.wait_for_line("listening on port", Duration::from_secs(10));
        receivers.push(p);
        dests.push(dest);
    }
    let slow = bed.host(3).clone();
    for rule in [
        "add table inet ratelimit".to_string(),
        "add chain inet ratelimit in { type filter hook input priority 0; }".to_string(),
        format!("add rule inet ratelimit in udp dport 1044 limit rate over {LIMIT_KBYTES} kbytes/second counter drop"),
    ] {
        slow.run("nft", &[rule.as_str()]);
    }
    let s = bed.host(0).clone();
    let ids: Vec<String> = (1..=3).map(|i| uid_of(bed.host(i))).collect();
    let mut cmd = s.command(our_binary("uftp"));
    cmd.args(["-I", &s.ifname, "-H", &ids.join(","), "-r", "0.05:0.01:1"])
        .args(extra)
        .arg(&src);
    let start = Instant::now();
    let mut uftp = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = uftp.wait(Duration::from_secs(120));
    let took = start.elapsed();
    let log = uftp.log_text();
    let logs = Proc::stop_all(&mut receivers);
    let limited = slow.run("nft", &["list", "table", "inet", "ratelimit"]);
    eprintln!("uftp {extra:?}: exit {code}, {took:?}\n{log}\n{limited}");
    let want = sha256(&src);
    let copies = dests
        .iter()
        .map(|d| {
            let f = d.join("payload.bin");
            f.exists() && sha256(&f) == want
        })
        .collect();
    assert!(
        !limited.contains("packets 0 "),
        "the limit dropped nothing:\n{limited}"
    );
    if extra.is_empty() {
        assert_eq!(code, 0, "uftp exit code\n{log}\n{logs}");
    }
    Outcome {
        log,
        took,
        slow: uid_of(&slow),
        copies,
    }
}

#[test]
fn a_slow_receiver_is_named_and_the_group_slows_to_it() {
    let o = transfer(&[]);
    assert!(o.log.contains("adaptive rate (no -R)"), "{}", o.log);
    let named: Vec<&str> = o
        .log
        .lines()
        .filter(|l| l.contains("is holding the group back"))
        .collect();
    assert!(
        named.iter().any(|l| l.contains(&o.slow)),
        "the limited receiver {} was not named:\n{}",
        o.slow,
        o.log
    );
    assert_eq!(o.copies, [true, true, true], "{}", o.log);
    // It did not give up on the slow one either: it slowed down for it.
    assert!(!o.log.contains("lost:"), "{}", o.log);
}

#[test]
fn max_nak_pct_drops_the_slow_receiver_and_the_rest_go_at_full_speed() {
    let o = transfer(&["-N", "50", "-m", "1"]);
    assert!(
        o.log
            .contains(&format!("client {} lost: too many NAKs (-N/-m)", o.slow)),
        "{}",
        o.log
    );
    assert_eq!(o.copies, [true, true, false], "{}", o.log);
    // At the slow receiver's 20 Mbit/s, 16 MiB takes 6.7 s; the other two had it far sooner.
    let limit = Duration::from_secs_f64(SIZE as f64 * 8.0 / 20e6 / 2.0);
    assert!(
        o.took < limit,
        "took {:?}, no better than half the slow receiver's rate ({limit:?})\n{}",
        o.took,
        o.log
    );
}
