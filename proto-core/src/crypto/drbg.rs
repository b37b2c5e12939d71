//! A deterministic random bit generator (HMAC_DRBG with SHA-256, NIST SP 800-90A §10.1.2).
//!
//! The core draws no randomness of its own: the driver seeds a [`Drbg`] with entropy from its
//! platform (`getrandom` on a host, the RNG peripheral on a board) and may stir more in with
//! [`Drbg::reseed`]. Server and client randoms, premasters, group masters and ephemeral ECDH
//! scalars all come from it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC_DRBG over SHA-256. `Debug` never prints its state.
#[derive(Clone)]
pub struct Drbg {
    k: [u8; 32],
    v: [u8; 32],
}

impl core::fmt::Debug for Drbg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Drbg")
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

impl Drbg {
    /// A generator seeded with `seed` (at least 32 bytes of real entropy for production use).
    pub fn new(seed: &[u8]) -> Self {
        let mut d = Drbg {
            k: [0; 32],
            v: [1; 32],
        };
        d.update(seed);
        d
    }

    /// Mixes more entropy in.
    pub fn reseed(&mut self, entropy: &[u8]) {
        self.update(entropy);
    }

    fn update(&mut self, data: &[u8]) {
        self.k = mac(&self.k, &[&self.v, &[0], data]);
        self.v = mac(&self.k, &[&self.v]);
        if !data.is_empty() {
            self.k = mac(&self.k, &[&self.v, &[1], data]);
            self.v = mac(&self.k, &[&self.v]);
        }
    }

    /// Fills `out` with pseudo-random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            self.v = mac(&self.k, &[&self.v]);
            chunk.copy_from_slice(&self.v[..chunk.len()]);
        }
        self.update(&[]);
    }

    /// `N` pseudo-random bytes.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0; N];
        self.fill(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_other_seed_other_stream() {
        let mut a = Drbg::new(b"seed one, at least thirty-two bytes long");
        let mut b = Drbg::new(b"seed one, at least thirty-two bytes long");
        let mut c = Drbg::new(b"seed two, at least thirty-two bytes long");
        let (x, y, z) = (a.bytes::<48>(), b.bytes::<48>(), c.bytes::<48>());
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(a.bytes::<48>(), x, "the stream moves on");
        b.reseed(b"more");
        assert_ne!(a.bytes::<16>(), b.bytes::<16>());
    }

    /// NIST CAVP HMAC_DRBG SHA-256, no prediction resistance, no reseed, no personalisation,
    /// first vector (COUNT = 0): entropy ‖ nonce as the seed, two generate calls of 128 bytes.
    #[test]
    fn nist_cavp_vector() {
        fn hex(s: &str) -> std::vec::Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        }
        let mut seed = hex("ca851911349384bffe89de1cbdc46e6831e44d34a4fb935ee285dd14b71a7488");
        seed.extend(hex("659ba96c601dc69fc902940805ec0ca8"));
        let mut d = Drbg::new(&seed);
        let mut out = [0u8; 128];
        d.fill(&mut out);
        d.fill(&mut out);
        assert_eq!(
            out.to_vec(),
            hex(concat!(
                "e528e9abf2dece54d47c7e75e5fe302149f817ea9fb4bee6f4199697d04d5b89",
                "d54fbb978a15b5c443c9ec21036d2460b6f73ebad0dc2aba6e624abf07745bc1",
                "07694bb7547bb0995f70de25d6b29e2d3011bb19d27676c07162c8b5ccde0668",
                "961df86803482cb37ed6d5c0bb8d50cf1f50d476aa0458bdaba806f48be9dcb8"
            ))
        );
    }
}
