//! CC_ACK (21): a client's TFMCC feedback (digest §3.19).

use super::ext::{find, Extension};
use super::field::message_view;
use super::{need, Error, Func, Result, TfmccAckInfoRepr};

message_view! {
    /// A zero-copy view of a CC_ACK body.
    CcAckPacket, min_len = 4;
}

impl<T: AsRef<[u8]>> CcAckPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// CC_ACK, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcAckRepr {
    /// The feedback.
    pub tfmcc: TfmccAckInfoRepr,
}

impl CcAckRepr {
    /// Parses a checked CC_ACK; the TFMCC extension is required.
    pub fn parse(packet: &CcAckPacket<&[u8]>) -> Result<Self> {
        let hlen = usize::from(packet.hlen()) * 4;
        let tfmcc = find(&packet.as_bytes()[4..hlen], |e| match e {
            Extension::TfmccAckInfo(info) => Some(info),
            _ => None,
        })?
        .ok_or(Error::Malformed("CC_ACK without EXT_TFMCC_ACK_INFO"))?;
        Ok(CcAckRepr { tfmcc })
    }

    /// Bytes the body takes.
    pub const fn buffer_len(&self) -> usize {
        4 + TfmccAckInfoRepr::LEN
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[..4].copy_from_slice(&[Func::CcAck.into(), (len / 4) as u8, 0, 0]);
        self.tfmcc.emit(&mut buf[4..])?;
        Ok(len)
    }
}
