//! PROXY_KEY (17): a response proxy's public keys, signed over a nonce (digest §3.15).

use super::field::{message_view, padded, Field};
use super::{len16, need, words, Error, Func, Result};

mod field {
    pub const BLOBLEN: usize = 2;
    pub const DHLEN: usize = 4;
    pub const SIGLEN: usize = 6;
    pub const NONCE: usize = 8;
    pub const BLOB: usize = 12;
}

message_view! {
    /// A zero-copy view of a PROXY_KEY body.
    ProxyKeyPacket, min_len = field::BLOB;
    /// Length of the public key blob.
    bloblen, set_bloblen: u16 = field::BLOBLEN;
    /// Length of the ECDH blob.
    dhlen, set_dhlen: u16 = field::DHLEN;
    /// Length of the signature.
    siglen, set_siglen: u16 = field::SIGLEN;
    /// Nonce the signature covers.
    nonce, set_nonce: u32 = field::NONCE;
}

impl<T: AsRef<[u8]>> ProxyKeyPacket<T> {
    fn check_more(&self) -> Result<()> {
        let end = field::BLOB
            + usize::from(self.bloblen())
            + usize::from(self.dhlen())
            + usize::from(self.siglen());
        if end > usize::from(self.hlen()) * 4 {
            return Err(Error::BadLength);
        }
        Ok(())
    }
}

/// PROXY_KEY, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyKeyRepr<'a> {
    /// Nonce the signature covers.
    pub nonce: u32,
    /// The proxy's RSA or EC public key blob.
    pub key_blob: &'a [u8],
    /// The proxy's long-lived ECDH blob (empty if it has none).
    pub dh_blob: &'a [u8],
    /// SHA-1 signature over the 4 nonce bytes.
    pub signature: &'a [u8],
}

impl<'a> ProxyKeyRepr<'a> {
    /// Parses a checked PROXY_KEY.
    pub fn parse(packet: &ProxyKeyPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let blob_end = field::BLOB + usize::from(packet.bloblen());
        let dh_end = blob_end + usize::from(packet.dhlen());
        let sig_end = dh_end + usize::from(packet.siglen());
        Ok(ProxyKeyRepr {
            nonce: packet.nonce(),
            key_blob: &buf[field::BLOB..blob_end],
            dh_blob: &buf[blob_end..dh_end],
            signature: &buf[dh_end..sig_end],
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        padded(field::BLOB + self.key_blob.len() + self.dh_blob.len() + self.signature.len())
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[0] = Func::ProxyKey.into();
        buf[1] = words(len)?;
        u16::set(buf, field::BLOBLEN, len16(self.key_blob.len())?);
        u16::set(buf, field::DHLEN, len16(self.dh_blob.len())?);
        u16::set(buf, field::SIGLEN, len16(self.signature.len())?);
        u32::set(buf, field::NONCE, self.nonce);
        let mut at = field::BLOB;
        for part in [self.key_blob, self.dh_blob, self.signature] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf[at..len].fill(0);
        Ok(len)
    }
}
