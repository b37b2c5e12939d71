//! KEY_REQ (16): a client asks its response proxy for the proxy's key (digest §3.15).

use super::field::message_view;
use super::{need, Func, Result};

message_view! {
    /// A zero-copy view of a KEY_REQ body.
    KeyReqPacket, min_len = 4;
}

impl<T: AsRef<[u8]>> KeyReqPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// KEY_REQ, parsed (it has no fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyReqRepr;

impl KeyReqRepr {
    /// Parses a checked KEY_REQ.
    pub fn parse<T: AsRef<[u8]>>(_packet: &KeyReqPacket<T>) -> Result<Self> {
        Ok(KeyReqRepr)
    }

    /// Bytes the body takes.
    pub const fn buffer_len(&self) -> usize {
        4
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, 4)?;
        buf[..4].copy_from_slice(&[Func::KeyReq.into(), 1, 0, 0]);
        Ok(4)
    }
}
