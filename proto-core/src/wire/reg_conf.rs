//! REG_CONF (4): the server confirms registrations (digest §3.4).

use super::field::message_view;
use super::{need, Func, IdList, Result};

message_view! {
    /// A zero-copy view of a REG_CONF body.
    RegConfPacket, min_len = 4;
}

impl<T: AsRef<[u8]>> RegConfPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// REG_CONF, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegConfRepr<'a> {
    /// Clients whose registration is confirmed.
    pub client_ids: IdList<'a>,
}

impl<'a> RegConfRepr<'a> {
    /// Parses a checked REG_CONF.
    pub fn parse(packet: &RegConfPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(RegConfRepr {
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
        buf[..4].copy_from_slice(&[Func::RegConf.into(), 1, 0, 0]);
        self.client_ids.emit(&mut buf[4..])?;
        Ok(len)
    }
}
