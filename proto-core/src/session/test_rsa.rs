//! Test-only RSA over the `rsa` crate (std, allocating: never in the library), for the state
//! machines' tests: the committed keys of `tests/vectors/keys`, PKCS#1 v1.5 premasters (the keys
//! used are under 768 bits where a premaster is encrypted) and signatures.

use std::vec::Vec as StdVec;

use crate::crypto::{digest, Drbg, Error as CryptoError, RsaBlob, RsaKeys, MAX_HASH_LEN};
use crate::wire::HashType;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};

/// DER DigestInfo prefixes for PKCS#1 v1.5 signatures (RFC 8017 §9.2, note 1).
fn digest_info(hash: HashType) -> &'static [u8] {
    match hash {
        HashType::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashType::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashType::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        _ => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

fn digest_info_of(hash: HashType, parts: &[&[u8]]) -> StdVec<u8> {
    let mut h = [0u8; MAX_HASH_LEN];
    let n = digest(hash, parts, &mut h).unwrap();
    let mut msg = digest_info(hash).to_vec();
    msg.extend_from_slice(&h[..n]);
    msg
}

/// A randomness source for the `rsa` crate, from the DRBG (deterministic tests).
struct DrbgRng(Drbg);

impl rsa::rand_core::RngCore for DrbgRng {
    fn next_u32(&mut self) -> u32 {
        u32::from_be_bytes(self.0.bytes())
    }
    fn next_u64(&mut self) -> u64 {
        u64::from_be_bytes(self.0.bytes())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for DrbgRng {}

/// Test-only RSA: the committed keys, PKCS#1 v1.5 for premasters (the keys used here are under
/// 768 bits where a premaster is encrypted) and signatures.
pub(crate) struct TestRsa {
    keys: StdVec<RsaPrivateKey>,
    rng: DrbgRng,
}

impl TestRsa {
    pub(crate) fn load(names: &[&str]) -> Self {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/keys/");
        let keys = names
            .iter()
            .map(|n| {
                let pem = std::fs::read_to_string(std::format!("{dir}{n}")).unwrap();
                RsaPrivateKey::from_pkcs1_pem(&pem).unwrap()
            })
            .collect();
        TestRsa {
            keys,
            rng: DrbgRng(Drbg::new(b"test rsa randomness, thirty-two bytes")),
        }
    }

    fn public(peer: &RsaBlob<'_>) -> crate::crypto::Result<RsaPublicKey> {
        RsaPublicKey::new(
            BigUint::from_bytes_be(peer.modulus),
            BigUint::from(peer.exponent),
        )
        .map_err(|_| CryptoError::Rsa)
    }
}

impl RsaKeys for TestRsa {
    fn count(&self) -> usize {
        self.keys.len()
    }
    fn modulus_len(&self, key: usize) -> Option<usize> {
        self.keys.get(key).map(|k| k.size())
    }
    fn public_blob(&self, key: usize, out: &mut [u8]) -> crate::crypto::Result<usize> {
        let k = self.keys.get(key).ok_or(CryptoError::Rsa)?;
        let n = k.n().to_bytes_be();
        let e = k.e().to_bytes_be();
        let mut exp = [0u8; 4];
        exp[4 - e.len()..].copy_from_slice(&e);
        let len = 8 + n.len();
        let out = out
            .get_mut(..len)
            .ok_or(CryptoError::BufferTooSmall { needed: len })?;
        out[..4].copy_from_slice(&[1, 0, (n.len() >> 8) as u8, n.len() as u8]);
        out[4..8].copy_from_slice(&exp);
        out[8..].copy_from_slice(&n);
        Ok(len)
    }
    fn sign(
        &self,
        key: usize,
        hash: HashType,
        parts: &[&[u8]],
        out: &mut [u8],
    ) -> crate::crypto::Result<usize> {
        let k = self.keys.get(key).ok_or(CryptoError::Rsa)?;
        let sig = k
            .sign(Pkcs1v15Sign::new_unprefixed(), &digest_info_of(hash, parts))
            .map_err(|_| CryptoError::Rsa)?;
        out.get_mut(..sig.len())
            .ok_or(CryptoError::BufferTooSmall { needed: sig.len() })?
            .copy_from_slice(&sig);
        Ok(sig.len())
    }
    fn decrypt_premaster(
        &self,
        key: usize,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> crate::crypto::Result<usize> {
        let k = self.keys.get(key).ok_or(CryptoError::Rsa)?;
        let pm = k
            .decrypt(Pkcs1v15Encrypt, ciphertext)
            .map_err(|_| CryptoError::Rsa)?;
        out.get_mut(..pm.len())
            .ok_or(CryptoError::BufferTooSmall { needed: pm.len() })?
            .copy_from_slice(&pm);
        Ok(pm.len())
    }
    fn encrypt_premaster(
        &mut self,
        peer: &RsaBlob<'_>,
        premaster: &[u8],
        out: &mut [u8],
    ) -> crate::crypto::Result<usize> {
        let ct = Self::public(peer)?
            .encrypt(&mut self.rng, Pkcs1v15Encrypt, premaster)
            .map_err(|_| CryptoError::Rsa)?;
        out.get_mut(..ct.len())
            .ok_or(CryptoError::BufferTooSmall { needed: ct.len() })?
            .copy_from_slice(&ct);
        Ok(ct.len())
    }
    fn verify(
        &self,
        peer: &RsaBlob<'_>,
        hash: HashType,
        parts: &[&[u8]],
        signature: &[u8],
    ) -> crate::crypto::Result<()> {
        Self::public(peer)?
            .verify(
                Pkcs1v15Sign::new_unprefixed(),
                &digest_info_of(hash, parts),
                signature,
            )
            .map_err(|_| CryptoError::BadSignature)
    }
}
