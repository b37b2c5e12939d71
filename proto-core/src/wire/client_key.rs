//! CLIENT_KEY (3): a client's long-term public key and its proof of possession
//! (digest §3.3, §5.5).

use super::field::{message_view, padded, Field};
use super::{len16, need, words, Error, Func, Result};

mod field {
    pub const BLOBLEN: usize = 4;
    pub const SIGLEN: usize = 6;
    pub const BLOB: usize = 8;
}

message_view! {
    /// A zero-copy view of a CLIENT_KEY body.
    ClientKeyPacket, min_len = field::BLOB;
    /// Length of the public key blob.
    bloblen, set_bloblen: u16 = field::BLOBLEN;
    /// Length of the signature.
    siglen, set_siglen: u16 = field::SIGLEN;
}

impl<T: AsRef<[u8]>> ClientKeyPacket<T> {
    fn check_more(&self) -> Result<()> {
        let end = field::BLOB + usize::from(self.bloblen()) + usize::from(self.siglen());
        if end > usize::from(self.hlen()) * 4 {
            return Err(Error::BadLength);
        }
        Ok(())
    }
}

/// CLIENT_KEY, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientKeyRepr<'a> {
    /// The client's public key blob (RSA or EC).
    pub key_blob: &'a [u8],
    /// Signature over the verify data.
    pub signature: &'a [u8],
}

impl<'a> ClientKeyRepr<'a> {
    /// Parses a checked CLIENT_KEY.
    pub fn parse(packet: &ClientKeyPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let blob_end = field::BLOB + usize::from(packet.bloblen());
        let sig_end = blob_end + usize::from(packet.siglen());
        if !packet.trailer().is_empty() {
            return Err(Error::BadLength);
        }
        Ok(ClientKeyRepr {
            key_blob: &buf[field::BLOB..blob_end],
            signature: &buf[blob_end..sig_end],
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        padded(field::BLOB + self.key_blob.len() + self.signature.len())
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[0] = Func::ClientKey.into();
        buf[1] = words(len)?;
        buf[2] = 0;
        buf[3] = 0;
        u16::set(buf, field::BLOBLEN, len16(self.key_blob.len())?);
        u16::set(buf, field::SIGLEN, len16(self.signature.len())?);
        let blob_end = field::BLOB + self.key_blob.len();
        buf[field::BLOB..blob_end].copy_from_slice(self.key_blob);
        let sig_end = blob_end + self.signature.len();
        buf[blob_end..sig_end].copy_from_slice(self.signature);
        buf[sig_end..len].fill(0);
        Ok(len)
    }
}
