//! In-place seal and open throughput of the ENCRYPTED envelope for full FILESEG bodies.
//!
//! `cargo bench -p proto-core --bench envelope` (release profile). One core, no threads.
//! Targets from the security issue: ≥ 1 GiB/s for AES-256-GCM, ≥ 400 MiB/s for AES-256-CCM.

use std::hint::black_box;
use std::time::{Duration, Instant};

use proto_core::crypto::{Envelope, SessionKeys};
use proto_core::wire::{GroupSize, Grtt, HashType, HeaderRepr, KeyType};

/// A FILESEG body with a 1300-byte block would be 1300 + its own header; the figure is
/// the inner body length, so that is what is sealed here.
const INNER: usize = 1300;
const RUN: Duration = Duration::from_millis(700);

fn rate(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0)
}

fn bench(name: &str, keytype: KeyType, hash: HashType) {
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
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < RUN {
        for _ in 0..256 {
            ctr += 1;
            black_box(env.seal(black_box(&mut buf), &header, INNER, ctr).unwrap());
        }
        n += 256;
    }
    let seal = rate(n * INNER, start.elapsed());

    // Open: each round opens a fresh copy of one sealed packet (the 1.3 KB copy is included).
    let sealed = buf.clone();
    let mut work = sealed.clone();
    let (mut n, start) = (0usize, Instant::now());
    while start.elapsed() < RUN {
        for _ in 0..256 {
            work.copy_from_slice(&sealed);
            black_box(env.open(black_box(&mut work)).unwrap());
        }
        n += 256;
    }
    let open = rate(n * INNER, start.elapsed());
    println!("{name:<22} seal {seal:>7.0} MiB/s   open {open:>7.0} MiB/s   ({INNER}-byte bodies)");
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    println!(
        "cpu: aes {} pclmulqdq {} avx2 {}",
        std::arch::is_x86_feature_detected!("aes"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
        std::arch::is_x86_feature_detected!("avx2"),
    );
    bench("AES-256-GCM", KeyType::Aes256Gcm, HashType::Sha256);
    bench("AES-256-CCM", KeyType::Aes256Ccm, HashType::Sha256);
    bench("AES-128-GCM", KeyType::Aes128Gcm, HashType::Sha256);
    bench("AES-256-CBC+HMAC-256", KeyType::Aes256Cbc, HashType::Sha256);
}
