//! In-place seal and open throughput of the ENCRYPTED envelope for full FILESEG bodies.
//!
//! `cargo bench -p proto-core --bench envelope` (release profile). One core, no threads.
//! Targets from the security issue: ≥ 1 GiB/s for AES-256-GCM, ≥ 400 MiB/s for AES-256-CCM,
//! seal (encrypt + authenticate) and open (verify + decrypt) alike.
//!
//! The machine is shared, so each figure is the best of many short windows: a window that ran
//! undisturbed shows what one core does; the slower ones measured the neighbours.

use std::hint::black_box;
use std::time::{Duration, Instant};

use proto_core::crypto::{Envelope, SessionKeys};
use proto_core::wire::{GroupSize, Grtt, HashType, HeaderRepr, KeyType};

/// A FILESEG body with a 1300-byte block would be 1300 + its own header; the figure is
/// the inner body length, so that is what is sealed here.
const INNER: usize = 1300;
/// Packets per timed window (about a millisecond at 1 GiB/s).
const WINDOW: usize = 1024;
/// Time spent measuring each figure.
const RUN: Duration = Duration::from_millis(600);

const MIB: f64 = 1024.0 * 1024.0;

/// Best MiB/s of `INNER`-byte packets over the windows that fit in [`RUN`].
fn best_rate(mut packet: impl FnMut()) -> f64 {
    for _ in 0..WINDOW {
        packet();
    }
    let (mut best, start) = (0f64, Instant::now());
    while start.elapsed() < RUN {
        let window = Instant::now();
        for _ in 0..WINDOW {
            packet();
        }
        let rate = (WINDOW * INNER) as f64 / window.elapsed().as_secs_f64() / MIB;
        best = best.max(rate);
    }
    best
}

/// Seal and open rates (MiB/s of inner body) for one cipher.
fn bench(keytype: KeyType, hash: HashType) -> (f64, f64) {
    let gm: [u8; 48] = core::array::from_fn(|i| i as u8 ^ 0x5a);
    let keys = SessionKeys::group(keytype, hash, &gm, &[7; 32]).unwrap();
    let env = Envelope::new(&keys).unwrap();
    let header = HeaderRepr {
        seq: 1,
        src_id: 0x0a63_0001,
        group_id: 0x1234_5678,
        group_inst: 0,
        grtt: Grtt(0x7f),
        gsize: GroupSize(0x30),
    };
    let mut buf = vec![0u8; env.sealed_len(INNER)];
    let off = env.inner_offset();
    for (i, b) in buf[off..off + INNER].iter_mut().enumerate() {
        *b = i as u8;
    }

    // Seal: re-encrypts the buffer's previous ciphertext each time, which costs the same.
    let mut ctr = 0u64;
    let seal = best_rate(|| {
        ctr += 1;
        black_box(env.seal(black_box(&mut buf), &header, INNER, ctr).unwrap());
    });

    // Open: each packet opens a fresh copy of one sealed packet (the 1.3 KB copy is included,
    // so the figure is a slight underestimate).
    let sealed = buf.clone();
    let mut work = sealed.clone();
    let open = best_rate(|| {
        work.copy_from_slice(&sealed);
        black_box(env.open(black_box(&mut work)).unwrap());
    });
    (seal, open)
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let features = [
            ("aes", has!("aes")),
            ("pclmulqdq", has!("pclmulqdq")),
            ("avx2", has!("avx2")),
            ("vaes", has!("vaes")),
            ("vpclmulqdq", has!("vpclmulqdq")),
        ];
        let present: Vec<&str> = features.iter().filter(|f| f.1).map(|f| f.0).collect();
        println!("cpu features detected: {}", present.join(" "));
    }
    println!(
        "ENCRYPTED envelope in place, {INNER}-byte inner bodies, one core, MiB/s \
         (best {WINDOW}-packet window in {} ms)",
        RUN.as_millis()
    );
    println!(
        "{:<24} {:>11} {:>11}   target",
        "cipher", "seal MiB/s", "open MiB/s"
    );
    // (name, cipher, target for seal and open); CBC signs with HMAC-SHA256, the AEADs ignore it.
    let rows: [(&str, KeyType, Option<f64>); 4] = [
        ("AES-256-GCM", KeyType::Aes256Gcm, Some(1024.0)),
        ("AES-256-CCM", KeyType::Aes256Ccm, Some(400.0)),
        ("AES-128-GCM", KeyType::Aes128Gcm, None),
        ("AES-256-CBC+HMAC-SHA256", KeyType::Aes256Cbc, None),
    ];
    for (name, keytype, target) in rows {
        let (seal, open) = bench(keytype, HashType::Sha256);
        let verdict = match target {
            Some(t) if seal >= t && open >= t => format!("≥ {t:.0}: met"),
            Some(t) => format!("≥ {t:.0}: MISSED"),
            None => String::new(),
        };
        let row = format!("{name:<24} {seal:>11.0} {open:>11.0}   {verdict}");
        println!("{}", row.trim_end());
    }
}
