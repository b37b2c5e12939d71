//! RSA, kept behind a trait: RSA needs big integers and allocation, so the core only asks for
//! the few operations the handshake uses and a host supplies them (`std-host` implements
//! [`RsaKeys`] with the `rsa` crate). Firmware uses [`NoRsa`] and speaks ECDH/ECDSA only.
//!
//! Own keys are named by an index into the implementation's key list; peers' keys arrive as
//! [`RsaBlob`]s from the network (untrusted: the implementation must check sizes).

use super::{Error, Result, RsaBlob};
use crate::wire::HashType;

/// The RSA operations of UFTP's handshake (digest §5.3, §5.5, §5.7).
pub trait RsaKeys {
    /// How many own keys there are (indices `0..count()`).
    fn count(&self) -> usize;

    /// Modulus length in bytes of own key `key`.
    fn modulus_len(&self, key: usize) -> Option<usize>;

    /// Writes own key `key`'s public blob (digest §5.2) into `out`; returns its length.
    fn public_blob(&self, key: usize, out: &mut [u8]) -> Result<usize>;

    /// PKCS#1 v1.5 signature with own key `key` over the `hash` digest of the concatenated
    /// `parts`; returns its length (the modulus length).
    fn sign(&self, key: usize, hash: HashType, parts: &[&[u8]], out: &mut [u8]) -> Result<usize>;

    /// Decrypts a premaster sent to own key `key` (PKCS#1 v1.5 under 768 bits, OAEP-SHA1 from
    /// 768 bits up); returns its length.
    fn decrypt_premaster(&self, key: usize, ciphertext: &[u8], out: &mut [u8]) -> Result<usize>;

    /// Encrypts `premaster` to the peer's key (padding as for `decrypt_premaster`); returns the
    /// ciphertext length (the peer's modulus length).
    fn encrypt_premaster(
        &mut self,
        peer: &RsaBlob<'_>,
        premaster: &[u8],
        out: &mut [u8],
    ) -> Result<usize>;

    /// Verifies a PKCS#1 v1.5 signature by the peer's key over the `hash` digest of `parts`.
    fn verify(
        &self,
        peer: &RsaBlob<'_>,
        hash: HashType,
        parts: &[&[u8]],
        signature: &[u8],
    ) -> Result<()>;
}

/// No RSA at all: every operation is [`Error::RsaUnavailable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoRsa;

impl RsaKeys for NoRsa {
    fn count(&self) -> usize {
        0
    }
    fn modulus_len(&self, _key: usize) -> Option<usize> {
        None
    }
    fn public_blob(&self, _key: usize, _out: &mut [u8]) -> Result<usize> {
        Err(Error::RsaUnavailable)
    }
    fn sign(&self, _: usize, _: HashType, _: &[&[u8]], _: &mut [u8]) -> Result<usize> {
        Err(Error::RsaUnavailable)
    }
    fn decrypt_premaster(&self, _: usize, _: &[u8], _: &mut [u8]) -> Result<usize> {
        Err(Error::RsaUnavailable)
    }
    fn encrypt_premaster(&mut self, _: &RsaBlob<'_>, _: &[u8], _: &mut [u8]) -> Result<usize> {
        Err(Error::RsaUnavailable)
    }
    fn verify(&self, _: &RsaBlob<'_>, _: HashType, _: &[&[u8]], _: &[u8]) -> Result<()> {
        Err(Error::RsaUnavailable)
    }
}
