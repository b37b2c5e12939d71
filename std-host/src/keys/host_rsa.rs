//! [`RsaKeys`] for the host: the RSA half of the handshake that `proto-core` asks its driver
//! for, over this module's [`RsaPrivate`] and [`RsaPublic`] (the `rsa` crate, OS randomness for
//! padding and blinding).
//!
//! Peers' keys arrive as blobs from the network and are untrusted: a modulus the `rsa` crate
//! will not take (over 4096 bits, an exponent below 2), or too small for the padding, is an
//! error, never a panic.

use proto_core::crypto::{Error, Result, RsaBlob, RsaKeys};
use proto_core::wire::HashType;

use super::{KeyError, RsaPrivate, RsaPublic};

/// The host's own RSA keys, by index, and the RSA operations on peers' keys.
#[derive(Debug, Clone, Default)]
pub struct HostRsa {
    keys: Vec<RsaPrivate>,
}

impl HostRsa {
    /// Own keys `keys`, indexed in this order.
    pub fn new(keys: Vec<RsaPrivate>) -> Self {
        HostRsa { keys }
    }

    /// Own key `key`, if there is one.
    pub fn key(&self, key: usize) -> Option<&RsaPrivate> {
        self.keys.get(key)
    }

    fn own(&self, key: usize) -> Result<&RsaPrivate> {
        // An index we never handed out: the caller's mistake, reported as an RSA failure.
        self.keys.get(key).ok_or(Error::Rsa)
    }
}

/// The crypto layer's view of a key error: bad hashes stay themselves, everything else about
/// a key or a padding is [`Error::Rsa`].
fn crypto_error(e: KeyError) -> Error {
    match e {
        KeyError::UnsupportedHash(h) => Error::UnsupportedHash(h),
        KeyError::BadBlob => Error::BadBlob,
        _ => Error::Rsa,
    }
}

/// Copies `bytes` to the start of `out`.
fn copy_out(bytes: &[u8], out: &mut [u8]) -> Result<usize> {
    let dst = out.get_mut(..bytes.len()).ok_or(Error::BufferTooSmall {
        needed: bytes.len(),
    })?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}

impl RsaKeys for HostRsa {
    fn count(&self) -> usize {
        self.keys.len()
    }

    fn modulus_len(&self, key: usize) -> Option<usize> {
        self.keys.get(key).map(RsaPrivate::modulus_len)
    }

    fn public_blob(&self, key: usize, out: &mut [u8]) -> Result<usize> {
        copy_out(&self.own(key)?.public().blob(), out)
    }

    fn sign(&self, key: usize, hash: HashType, parts: &[&[u8]], out: &mut [u8]) -> Result<usize> {
        let key = self.own(key)?;
        // Check the room first: signing is the expensive part.
        if out.len() < key.modulus_len() {
            return Err(Error::BufferTooSmall {
                needed: key.modulus_len(),
            });
        }
        let signature = key.sign(hash, parts).map_err(crypto_error)?;
        copy_out(&signature, out)
    }

    fn decrypt_premaster(&self, key: usize, ciphertext: &[u8], out: &mut [u8]) -> Result<usize> {
        let premaster = self
            .own(key)?
            .decrypt_premaster(ciphertext)
            .map_err(crypto_error)?;
        copy_out(&premaster, out)
    }

    fn encrypt_premaster(
        &mut self,
        peer: &RsaBlob<'_>,
        premaster: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let peer = RsaPublic::from_blob(peer).map_err(|_| Error::BadBlob)?;
        if out.len() < peer.modulus_len() {
            return Err(Error::BufferTooSmall {
                needed: peer.modulus_len(),
            });
        }
        let ciphertext = peer.encrypt_premaster(premaster).map_err(crypto_error)?;
        copy_out(&ciphertext, out)
    }

    fn verify(
        &self,
        peer: &RsaBlob<'_>,
        hash: HashType,
        parts: &[&[u8]],
        signature: &[u8],
    ) -> Result<()> {
        let peer = RsaPublic::from_blob(peer).map_err(|_| Error::BadBlob)?;
        peer.verify(hash, parts, signature).map_err(|e| match e {
            KeyError::UnsupportedHash(h) => Error::UnsupportedHash(h),
            _ => Error::BadSignature,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proto_core::crypto::KeyBlob;

    use super::*;
    use crate::keys::{PrivateKey, PREMASTER_LEN};

    /// One key of each padding regime, made once: RSA generation is slow in test builds.
    fn keys() -> &'static (RsaPrivate, RsaPrivate) {
        static KEYS: OnceLock<(RsaPrivate, RsaPrivate)> = OnceLock::new();
        KEYS.get_or_init(|| {
            (
                RsaPrivate::generate(512).unwrap(),
                RsaPrivate::generate(1024).unwrap(),
            )
        })
    }

    fn host() -> HostRsa {
        let (small, large) = keys();
        HostRsa::new(vec![small.clone(), large.clone()])
    }

    #[test]
    fn own_keys_by_index() {
        let h = host();
        assert_eq!(h.count(), 2);
        assert_eq!(h.modulus_len(0), Some(64));
        assert_eq!(h.modulus_len(1), Some(128));
        assert_eq!(h.modulus_len(2), None);
        let mut blob = [0u8; 200];
        let n = h.public_blob(1, &mut blob).unwrap();
        assert_eq!(n, 8 + 128);
        assert_eq!(&blob[..n], keys().1.public().blob().as_slice());
        assert_eq!(
            h.public_blob(1, &mut [0u8; 100]),
            Err(Error::BufferTooSmall { needed: 136 })
        );
        assert_eq!(h.public_blob(5, &mut blob), Err(Error::Rsa));
    }

    #[test]
    fn signatures_round_trip_and_a_changed_byte_fails() {
        let h = host();
        for (key, hash) in [
            (0, HashType::Sha1),
            (1, HashType::Sha256),
            (1, HashType::Sha384),
            (1, HashType::Sha512),
        ] {
            let mut sig = [0u8; 128];
            let n = h.sign(key, hash, &[b"verify ", b"data"], &mut sig).unwrap();
            assert_eq!(Some(n), h.modulus_len(key));
            let mut blob = [0u8; 200];
            let b = h.public_blob(key, &mut blob).unwrap();
            let peer = KeyBlob::parse(&blob[..b]).unwrap().rsa().unwrap();
            // The parts' split does not matter, only their concatenation.
            h.verify(&peer, hash, &[b"verify data"], &sig[..n]).unwrap();
            assert_eq!(
                h.verify(&peer, hash, &[b"verify datA"], &sig[..n]),
                Err(Error::BadSignature)
            );
            sig[n / 2] ^= 1;
            assert_eq!(
                h.verify(&peer, hash, &[b"verify data"], &sig[..n]),
                Err(Error::BadSignature)
            );
            assert_eq!(
                h.verify(&peer, hash, &[b"verify data"], &sig[..n - 1]),
                Err(Error::BadSignature)
            );
        }
        assert_eq!(
            h.sign(0, HashType::Md5, &[b"x"], &mut [0u8; 64]),
            Err(Error::UnsupportedHash(HashType::Md5))
        );
        assert_eq!(
            h.sign(1, HashType::Sha256, &[b"x"], &mut [0u8; 64]),
            Err(Error::BufferTooSmall { needed: 128 })
        );
    }

    #[test]
    fn premaster_to_a_blob_decrypts_with_the_key_under_both_paddings() {
        let mut h = host();
        let premaster: [u8; PREMASTER_LEN] = core::array::from_fn(|i| i as u8 ^ 0x5a);
        for key in [0, 1] {
            let blob = keys_blob(&h, key);
            let peer = KeyBlob::parse(&blob).unwrap().rsa().unwrap();
            let mut ct = [0u8; 128];
            let n = h.encrypt_premaster(&peer, &premaster, &mut ct).unwrap();
            assert_eq!(Some(n), h.modulus_len(key));
            let mut out = [0u8; 64];
            let m = h.decrypt_premaster(key, &ct[..n], &mut out).unwrap();
            assert_eq!(&out[..m], &premaster);
            // The other key cannot read it.
            let other = 1 - key;
            assert_eq!(
                h.decrypt_premaster(other, &ct[..n], &mut out),
                Err(Error::Rsa)
            );
            ct[3] ^= 0x80;
            assert!(h.decrypt_premaster(key, &ct[..n], &mut out).is_err());
        }
        let blob = keys_blob(&h, 1);
        let peer = KeyBlob::parse(&blob).unwrap().rsa().unwrap();
        assert_eq!(
            h.encrypt_premaster(&peer, &premaster, &mut [0u8; 64]),
            Err(Error::BufferTooSmall { needed: 128 })
        );
    }

    fn keys_blob(h: &HostRsa, key: usize) -> Vec<u8> {
        let mut blob = vec![0u8; 600];
        let n = h.public_blob(key, &mut blob).unwrap();
        blob.truncate(n);
        blob
    }

    #[test]
    fn bad_peer_moduli_and_exponents_are_errors() {
        let mut h = host();
        let premaster = [7u8; PREMASTER_LEN];
        let mut out = vec![0u8; 2048];
        let big = vec![0xffu8; 1024]; // 8192 bits: over what the rsa crate takes
        let tiny = [0xc5u8; 16]; // no room for the padding and 48 bytes
        let zero = [0u8; 64];
        let good = keys().1.public().blob();
        let good = KeyBlob::parse(&good).unwrap().rsa().unwrap();
        let cases = [
            RsaBlob {
                exponent: 65537,
                modulus: &big,
            },
            RsaBlob {
                exponent: 65537,
                modulus: &tiny,
            },
            RsaBlob {
                exponent: 65537,
                modulus: &zero,
            },
            RsaBlob {
                exponent: 65537,
                modulus: &[],
            },
            RsaBlob {
                exponent: 0,
                modulus: good.modulus,
            },
            RsaBlob {
                exponent: 1,
                modulus: good.modulus,
            },
        ];
        for peer in &cases {
            let r = h.encrypt_premaster(peer, &premaster, &mut out);
            assert!(
                r.is_err(),
                "{} byte modulus, e={}",
                peer.modulus.len(),
                peer.exponent
            );
            assert!(h
                .verify(peer, HashType::Sha256, &[b"x"], &[0u8; 64])
                .is_err());
        }
    }

    #[test]
    fn a_loaded_key_file_serves_as_an_own_key() {
        let pem = PrivateKey::Rsa(keys().0.clone()).to_pem().unwrap();
        let PrivateKey::Rsa(k) = PrivateKey::from_pem(&pem).unwrap() else {
            panic!("not RSA");
        };
        let h = HostRsa::new(vec![k]);
        assert_eq!(h.modulus_len(0), Some(64));
        assert_eq!(keys_blob(&h, 0), keys().0.public().blob());
    }
}
