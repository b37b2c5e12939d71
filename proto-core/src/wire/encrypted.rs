//! ENCRYPTED (18): the envelope around every protected message (digest §3.16, §5.8).
//!
//! Unlike every other message it has no `func`/`hlen` prefix: the header's type byte is 18 and
//! the body starts with the IV counter.

use super::field::Field;
use super::{len16, need, Error, Result};

mod field {
    pub const IV_CTR: usize = 0;
    pub const SIG_LEN: usize = 8;
    pub const PAYLOAD_LEN: usize = 10;
    pub const SIG: usize = 12;
}

/// A zero-copy view of an ENCRYPTED body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EncryptedPacket<T> {
    /// Length of the fixed part.
    pub const MIN_LEN: usize = field::SIG;

    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer after [`Self::check_len`]; afterwards no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let view = Self::new_unchecked(buffer);
        view.check_len()?;
        Ok(view)
    }

    /// Checks that the body is exactly `12 + sig_len + payload_len` bytes, as uftp requires.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        if buf.len() < Self::MIN_LEN {
            return Err(Error::Truncated);
        }
        if Self::MIN_LEN + usize::from(self.sig_len()) + usize::from(self.payload_len())
            != buf.len()
        {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IV counter (per sender, first value 1).
    pub fn iv_ctr(&self) -> u64 {
        u64::get(self.buffer.as_ref(), field::IV_CTR)
    }
    /// Signature length.
    pub fn sig_len(&self) -> u16 {
        u16::get(self.buffer.as_ref(), field::SIG_LEN)
    }
    /// Ciphertext length (including the AEAD tag).
    pub fn payload_len(&self) -> u16 {
        u16::get(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIG..field::SIG + usize::from(self.sig_len())]
    }
    /// The ciphertext.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIG + usize::from(self.sig_len())..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EncryptedPacket<T> {
    /// Sets the IV counter.
    pub fn set_iv_ctr(&mut self, value: u64) {
        u64::set(self.buffer.as_mut(), field::IV_CTR, value);
    }
    /// Sets the signature length.
    pub fn set_sig_len(&mut self, value: u16) {
        u16::set(self.buffer.as_mut(), field::SIG_LEN, value);
    }
    /// Sets the ciphertext length.
    pub fn set_payload_len(&mut self, value: u16) {
        u16::set(self.buffer.as_mut(), field::PAYLOAD_LEN, value);
    }
    /// The signature bytes, mutable.
    pub fn signature_mut(&mut self) -> &mut [u8] {
        let end = field::SIG + usize::from(self.sig_len());
        &mut self.buffer.as_mut()[field::SIG..end]
    }
    /// The ciphertext, mutable (for decrypting in place).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = field::SIG + usize::from(self.sig_len());
        &mut self.buffer.as_mut()[at..]
    }
}

/// ENCRYPTED, parsed. The payload stays ciphertext; decryption belongs to the crypto layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncryptedRepr<'a> {
    /// IV counter.
    pub iv_ctr: u64,
    /// HMAC, RSA or ECDSA signature (empty for AEAD ciphers).
    pub signature: &'a [u8],
    /// Ciphertext (with the 16-byte tag for GCM/CCM).
    pub payload: &'a [u8],
}

impl<'a> EncryptedRepr<'a> {
    /// Bytes before the signature.
    pub const HEADER_LEN: usize = field::SIG;

    /// Parses a checked ENCRYPTED body.
    pub fn parse(packet: &EncryptedPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let sig_end = field::SIG + usize::from(packet.sig_len());
        Ok(EncryptedRepr {
            iv_ctr: packet.iv_ctr(),
            signature: &buf[field::SIG..sig_end],
            payload: &buf[sig_end..],
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        field::SIG + self.signature.len() + self.payload.len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        u64::set(buf, field::IV_CTR, self.iv_ctr);
        u16::set(buf, field::SIG_LEN, len16(self.signature.len())?);
        u16::set(buf, field::PAYLOAD_LEN, len16(self.payload.len())?);
        let sig_end = field::SIG + self.signature.len();
        buf[field::SIG..sig_end].copy_from_slice(self.signature);
        buf[sig_end..len].copy_from_slice(self.payload);
        Ok(len)
    }
}
