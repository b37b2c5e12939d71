//! `udp_flood COUNT TARGET[,TARGET…] SEEDS_DIR`: sends COUNT hostile UDP datagrams, round-robin
//! to the targets: a third random bytes, the rest captured UFTP messages (`*.bin` in SEEDS_DIR,
//! `inner-*` skipped) with 1–6 bytes changed and sometimes truncated. Deterministic. Run inside
//! a test's network namespace by `tests/tests/e2e_debian_sender.rs`.
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, count, targets, seeds] = &args[..] else {
        eprintln!("usage: udp_flood COUNT TARGET[,TARGET...] SEEDS_DIR");
        std::process::exit(1);
    };
    let count: u64 = count.parse().expect("COUNT");
    let targets: Vec<SocketAddr> = targets
        .split(',')
        .map(|t| t.parse().expect("TARGET"))
        .collect();
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(seeds)
        .expect("SEEDS_DIR")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "bin")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("inner-"))
        })
        .map(|p| std::fs::read(p).expect("seed"))
        .filter(|s| !s.is_empty())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds");
    let sock = UdpSocket::bind("0.0.0.0:0").expect("socket");
    let mut x: u64 = 0x243F_6A88_85A3_08D3;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut buf = Vec::with_capacity(2048);
    let t0 = Instant::now();
    for i in 0..count {
        buf.clear();
        if i % 3 == 0 {
            let n = (rnd() % 1400) as usize;
            buf.extend((0..n).map(|_| rnd() as u8));
        } else {
            buf.extend_from_slice(&seeds[(rnd() % seeds.len() as u64) as usize]);
            for _ in 0..1 + rnd() % 6 {
                let at = (rnd() as usize) % buf.len();
                buf[at] = rnd() as u8;
            }
            if rnd().is_multiple_of(8) {
                let keep = (rnd() as usize) % (buf.len() + 1);
                buf.truncate(keep);
            }
        }
        let to = targets[(i % targets.len() as u64) as usize];
        match sock.send_to(&buf, to) {
            Ok(_) => sent += 1,
            Err(_) => failed += 1,
        }
        // Yield now and then so that the flood and the transfer share the two cores.
        if i % 2000 == 1999 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    println!(
        "sent {sent} datagrams ({failed} send errors) in {:?}",
        t0.elapsed()
    );
}
