//! The session hash: digests and HMACs dispatched on [`HashType`] (digest §5.1).

use hmac::digest::{Digest, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use super::{Error, Result};
use crate::wire::HashType;

/// The longest digest (SHA-512).
pub const MAX_HASH_LEN: usize = 64;

/// Digest length of a session hash; SHA-1 and SHA-2 only (MD5 is internal to the PRF).
pub fn hash_len(hash: HashType) -> Result<usize> {
    match hash {
        HashType::Sha1 => Ok(20),
        HashType::Sha256 => Ok(32),
        HashType::Sha384 => Ok(48),
        HashType::Sha512 => Ok(64),
        other => Err(Error::UnsupportedHash(other)),
    }
}

/// Hashes the concatenation of `parts` into the start of `out`; returns the digest length.
pub fn digest(hash: HashType, parts: &[&[u8]], out: &mut [u8; MAX_HASH_LEN]) -> Result<usize> {
    fn run<D: Digest>(parts: &[&[u8]], out: &mut [u8]) -> usize {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        let r = d.finalize();
        out[..r.len()].copy_from_slice(&r);
        r.len()
    }
    Ok(match hash {
        HashType::Sha1 => run::<Sha1>(parts, out),
        HashType::Sha256 => run::<Sha256>(parts, out),
        HashType::Sha384 => run::<Sha384>(parts, out),
        HashType::Sha512 => run::<Sha512>(parts, out),
        other => return Err(Error::UnsupportedHash(other)),
    })
}

/// A digest in progress, for inputs that arrive in steps (the KEYINFO_ACK verify data, whose
/// group master a proxy learns after the rest).
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub(crate) fn new(hash: HashType) -> Result<Self> {
        Ok(match hash {
            HashType::Sha1 => Hasher::Sha1(Sha1::new()),
            HashType::Sha256 => Hasher::Sha256(Sha256::new()),
            HashType::Sha384 => Hasher::Sha384(Sha384::new()),
            HashType::Sha512 => Hasher::Sha512(Sha512::new()),
            other => return Err(Error::UnsupportedHash(other)),
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha1(d) => d.update(bytes),
            Hasher::Sha256(d) => d.update(bytes),
            Hasher::Sha384(d) => d.update(bytes),
            Hasher::Sha512(d) => d.update(bytes),
        }
    }

    /// Writes the digest to the start of `out`; returns its length.
    pub(crate) fn finish(self, out: &mut [u8; MAX_HASH_LEN]) -> usize {
        fn put(r: &[u8], out: &mut [u8]) -> usize {
            out[..r.len()].copy_from_slice(r);
            r.len()
        }
        match self {
            Hasher::Sha1(d) => put(&d.finalize(), out),
            Hasher::Sha256(d) => put(&d.finalize(), out),
            Hasher::Sha384(d) => put(&d.finalize(), out),
            Hasher::Sha512(d) => put(&d.finalize(), out),
        }
    }
}

/// An HMAC key with its inner and outer pads already hashed, cloned for every message.
#[derive(Clone)]
pub(crate) enum KeyedHmac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl core::fmt::Debug for KeyedHmac {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyedHmac::Sha1(_) => "KeyedHmac::Sha1",
            KeyedHmac::Sha256(_) => "KeyedHmac::Sha256",
            KeyedHmac::Sha384(_) => "KeyedHmac::Sha384",
            KeyedHmac::Sha512(_) => "KeyedHmac::Sha512",
        })
    }
}

impl KeyedHmac {
    pub(crate) fn new(hash: HashType, key: &[u8]) -> Result<Self> {
        fn keyed<M: KeyInit>(key: &[u8]) -> Result<M> {
            <M as KeyInit>::new_from_slice(key).map_err(|_| Error::BadKeyLength)
        }
        Ok(match hash {
            HashType::Sha1 => KeyedHmac::Sha1(keyed(key)?),
            HashType::Sha256 => KeyedHmac::Sha256(keyed(key)?),
            HashType::Sha384 => KeyedHmac::Sha384(keyed(key)?),
            HashType::Sha512 => KeyedHmac::Sha512(keyed(key)?),
            other => return Err(Error::UnsupportedHash(other)),
        })
    }

    /// HMAC of the concatenation of `parts`, written to the start of `out`; returns its length.
    pub(crate) fn compute(&self, parts: &[&[u8]], out: &mut [u8; MAX_HASH_LEN]) -> usize {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]], out: &mut [u8]) -> usize {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            let r = m.finalize().into_bytes();
            out[..r.len()].copy_from_slice(&r);
            r.len()
        }
        match self {
            KeyedHmac::Sha1(m) => run(m, parts, out),
            KeyedHmac::Sha256(m) => run(m, parts, out),
            KeyedHmac::Sha384(m) => run(m, parts, out),
            KeyedHmac::Sha512(m) => run(m, parts, out),
        }
    }
}
