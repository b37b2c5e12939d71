//! HB_REQ (14) and HB_RESP (15): heartbeats between proxies and clients, plain or
//! authenticated by a signed nonce (digest §3.14).

use super::field::{message_view, padded, Field};
use super::{len16, need, words, Error, Func, HbResult, Result};

mod req {
    pub const BLOBLEN: usize = 4;
    pub const SIGLEN: usize = 6;
    pub const NONCE: usize = 8;
    pub const BLOB: usize = 12;
}

message_view! {
    /// A zero-copy view of an HB_REQ body.
    HbReqPacket, min_len = req::BLOB;
    /// Length of the public key blob.
    bloblen, set_bloblen: u16 = req::BLOBLEN;
    /// Length of the signature.
    siglen, set_siglen: u16 = req::SIGLEN;
    /// Nonce echoed from a challenge (0 when plain).
    nonce, set_nonce: u32 = req::NONCE;
}

impl<T: AsRef<[u8]>> HbReqPacket<T> {
    fn check_more(&self) -> Result<()> {
        let end = req::BLOB + usize::from(self.bloblen()) + usize::from(self.siglen());
        if end > usize::from(self.hlen()) * 4 {
            return Err(Error::BadLength);
        }
        Ok(())
    }
}

/// HB_REQ, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HbReqRepr<'a> {
    /// Nonce from the proxy's challenge (0 when plain).
    pub nonce: u32,
    /// Sender's public key blob (empty when plain).
    pub key_blob: &'a [u8],
    /// SHA-1 signature over the 4 nonce bytes (empty when plain).
    pub signature: &'a [u8],
}

impl<'a> HbReqRepr<'a> {
    /// Parses a checked HB_REQ.
    pub fn parse(packet: &HbReqPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let blob_end = req::BLOB + usize::from(packet.bloblen());
        let sig_end = blob_end + usize::from(packet.siglen());
        Ok(HbReqRepr {
            nonce: packet.nonce(),
            key_blob: &buf[req::BLOB..blob_end],
            signature: &buf[blob_end..sig_end],
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        padded(req::BLOB + self.key_blob.len() + self.signature.len())
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[0] = Func::HbReq.into();
        buf[1] = words(len)?;
        buf[2] = 0;
        buf[3] = 0;
        u16::set(buf, req::BLOBLEN, len16(self.key_blob.len())?);
        u16::set(buf, req::SIGLEN, len16(self.signature.len())?);
        u32::set(buf, req::NONCE, self.nonce);
        let blob_end = req::BLOB + self.key_blob.len();
        buf[req::BLOB..blob_end].copy_from_slice(self.key_blob);
        let sig_end = blob_end + self.signature.len();
        buf[blob_end..sig_end].copy_from_slice(self.signature);
        buf[sig_end..len].fill(0);
        Ok(len)
    }
}

mod resp {
    pub const RESULT: usize = 2;
    pub const NONCE: usize = 4;
    pub const END: usize = 8;
}

message_view! {
    /// A zero-copy view of an HB_RESP body.
    HbRespPacket, min_len = resp::END;
    /// Result code.
    authenticated, set_authenticated: u8 = resp::RESULT;
    /// Nonce to sign (for a challenge).
    nonce, set_nonce: u32 = resp::NONCE;
}

impl<T: AsRef<[u8]>> HbRespPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// HB_RESP, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HbRespRepr {
    /// Outcome.
    pub result: HbResult,
    /// Nonce to sign (meaningful for a challenge).
    pub nonce: u32,
}

impl HbRespRepr {
    /// Parses a checked HB_RESP.
    pub fn parse<T: AsRef<[u8]>>(packet: &HbRespPacket<T>) -> Result<Self> {
        Ok(HbRespRepr {
            result: HbResult::from(packet.authenticated()),
            nonce: packet.nonce(),
        })
    }

    /// Bytes the body takes.
    pub const fn buffer_len(&self) -> usize {
        resp::END
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, resp::END)?;
        buf[..4].copy_from_slice(&[
            Func::HbResp.into(),
            (resp::END / 4) as u8,
            self.result.into(),
            0,
        ]);
        u32::set(buf, resp::NONCE, self.nonce);
        Ok(resp::END)
    }
}
