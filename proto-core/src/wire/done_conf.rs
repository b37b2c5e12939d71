//! DONE_CONF (13): the server confirms the clients that completed the session (digest §3.13).

use super::field::message_view;
use super::{need, Func, IdList, Result};

message_view! {
    /// A zero-copy view of a DONE_CONF body.
    DoneConfPacket, min_len = 4;
}

impl<T: AsRef<[u8]>> DoneConfPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// DONE_CONF, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneConfRepr<'a> {
    /// Clients whose final COMPLETE was received.
    pub client_ids: IdList<'a>,
}

impl<'a> DoneConfRepr<'a> {
    /// Parses a checked DONE_CONF.
    pub fn parse(packet: &DoneConfPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(DoneConfRepr {
            client_ids: IdList::from_wire(&buf[usize::from(packet.hlen()) * 4..])?,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        4 + self.client_ids.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[..4].copy_from_slice(&[Func::DoneConf.into(), 1, 0, 0]);
        self.client_ids.emit(&mut buf[4..])?;
        Ok(len)
    }
}
