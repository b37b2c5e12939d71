//! UFTP's pseudo-random function (digest §5.4).
//!
//! Not quite TLS: with `X = label ‖ seed`, block₁ = HMAC(secret, HMAC(secret, X) ‖ X) as in TLS,
//! but every later block is HMAC(secret, block_{k−1} ‖ X), keyed off the previous *output*
//! block rather than TLS's separate A(i) chain. Standard TLS P_hash fails against uftp after
//! the first block.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use super::{Error, Result};
use crate::wire::HashType;

/// Fills `out` with PRF(secret, label, seed): UFTP's P_H for SHA-2, and for SHA-1 the TLS 1.1
/// style P_MD5(S1) ⊕ P_SHA1(S2), where S1 and S2 are the first and last ⌈len/2⌉ bytes of the
/// secret (overlapping by one byte when its length is odd).
pub fn prf(hash: HashType, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) -> Result<()> {
    match hash {
        HashType::Sha1 => {
            let half = secret.len().div_ceil(2);
            p_hash::<Hmac<Md5>>(&secret[..half], label, seed, out, false)?;
            p_hash::<Hmac<Sha1>>(&secret[secret.len() - half..], label, seed, out, true)
        }
        HashType::Sha256 => p_hash::<Hmac<Sha256>>(secret, label, seed, out, false),
        HashType::Sha384 => p_hash::<Hmac<Sha384>>(secret, label, seed, out, false),
        HashType::Sha512 => p_hash::<Hmac<Sha512>>(secret, label, seed, out, false),
        other => Err(Error::UnsupportedHash(other)),
    }
}

/// UFTP's P_H into `out`, overwriting it or (for the SHA-1 PRF's second half) XORing into it.
fn p_hash<M: Mac + KeyInit + Clone>(
    secret: &[u8],
    label: &[u8],
    seed: &[u8],
    out: &mut [u8],
    xor: bool,
) -> Result<()> {
    let keyed = <M as KeyInit>::new_from_slice(secret).map_err(|_| Error::BadKeyLength)?;
    let mut first = keyed.clone();
    first.update(label);
    first.update(seed);
    let mut prev = first.finalize().into_bytes();
    for chunk in out.chunks_mut(prev.len()) {
        let mut m = keyed.clone();
        m.update(&prev);
        m.update(label);
        m.update(seed);
        let block = m.finalize().into_bytes();
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o = if xor { *o ^ b } else { *b };
        }
        prev = block;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        let digits: std::vec::Vec<u8> = s
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| (c as char).to_digit(16).unwrap() as u8)
            .collect();
        assert_eq!(digits.len(), 2 * N);
        core::array::from_fn(|i| digits[2 * i] << 4 | digits[2 * i + 1])
    }

    /// The digest's inputs: secret 0x01…0x30, label "master secret", seed 0x40…0x7f, 80 bytes.
    fn run(hash: HashType) -> [u8; 80] {
        let secret: [u8; 48] = core::array::from_fn(|i| i as u8 + 1);
        let seed: [u8; 64] = core::array::from_fn(|i| i as u8 + 0x40);
        let mut out = [0u8; 80];
        prf(hash, &secret, b"master secret", &seed, &mut out).unwrap();
        out
    }

    #[test]
    fn prf_sha256_matches_digest_vector() {
        let want = hex::<80>(
            "006b50cfaa32525eb687a68ddb48ff9ecde081178d5c556be3af98229290e5b3
             68121137569834a293c18d4de1dcd5dbb741d10d12c08c434187a69002a98944
             89dc6a436e79aeed27e7721cedfd0151",
        );
        assert_eq!(run(HashType::Sha256), want);
    }

    #[test]
    fn prf_sha256_differs_from_tls_after_first_block() {
        // TLS 1.2 P_SHA256 continues "…e5b3 fd29e7d681bfbe54…" (digest §5.4).
        let out = run(HashType::Sha256);
        assert_eq!(out[30..32], [0xe5, 0xb3]);
        assert_ne!(out[32..40], hex::<8>("fd29e7d681bfbe54"));
    }

    #[test]
    fn prf_sha1_matches_digest_vector() {
        let want = hex::<80>(
            "4c0cb3fe3c6619c0e9df94b016578f78c5612bb6207fa668a9057f5d32034f58
             670a6dace3ca3b299c382174fe5d10361e45bcf6a70e47da064859f4f1b90832
             557f9177e2f64a2c340243ecaf69d730",
        );
        assert_eq!(run(HashType::Sha1), want);
    }

    #[test]
    fn prf_prefixes_agree_and_odd_secrets_work() {
        // A shorter output is a prefix of a longer one, for every hash and output length.
        for hash in [
            HashType::Sha1,
            HashType::Sha256,
            HashType::Sha384,
            HashType::Sha512,
        ] {
            let long = run(hash);
            for n in [0, 1, 12, 20, 47, 64, 79] {
                let mut short = [0u8; 80];
                let secret: [u8; 48] = core::array::from_fn(|i| i as u8 + 1);
                let seed: [u8; 64] = core::array::from_fn(|i| i as u8 + 0x40);
                prf(hash, &secret, b"master secret", &seed, &mut short[..n]).unwrap();
                assert_eq!(short[..n], long[..n], "{hash:?} n={n}");
            }
        }
        // SHA-1 with an odd secret length (20-byte ECDH premaster is even; 21 exercises overlap).
        let mut out = [0u8; 48];
        prf(HashType::Sha1, &[7u8; 21], b"x", b"y", &mut out).unwrap();
        assert_ne!(out, [0u8; 48]);
    }

    #[test]
    fn prf_rejects_unsupported_hashes() {
        for hash in [HashType::None, HashType::Md5, HashType::Unknown(9)] {
            assert_eq!(
                prf(hash, b"s", b"l", b"x", &mut [0u8; 4]),
                Err(Error::UnsupportedHash(hash))
            );
        }
    }
}
