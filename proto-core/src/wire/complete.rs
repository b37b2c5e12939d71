//! COMPLETE (12): a client has the file, or with file ID 0 the whole session
//! (digest §3.12).

use super::ext::{find, Extension};
use super::field::{message_view, Field};
use super::{need, words, CompleteStatus, FreeSpaceInfoRepr, Func, IdList, Result};

mod field {
    pub const FILE_ID: usize = 2;
    pub const STATUS: usize = 4;
    pub const EXT: usize = 8;
}

message_view! {
    /// A zero-copy view of a COMPLETE body.
    CompletePacket, min_len = field::EXT;
    /// File ID (0: session complete).
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Status code.
    status, set_status: u8 = field::STATUS;
}

impl<T: AsRef<[u8]>> CompletePacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// COMPLETE, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompleteRepr<'a> {
    /// File ID (0: session complete).
    pub file_id: u16,
    /// Outcome.
    pub status: CompleteStatus,
    /// Free bytes at the client, in reply to an `@FREESPACE` item.
    pub freespace: Option<FreeSpaceInfoRepr>,
    /// Clients a proxy answers for (empty from a client).
    pub client_ids: IdList<'a>,
}

impl<'a> CompleteRepr<'a> {
    /// Parses a checked COMPLETE.
    pub fn parse(packet: &CompletePacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let hlen = usize::from(packet.hlen()) * 4;
        let freespace = find(&buf[field::EXT..hlen], |e| match e {
            Extension::FreeSpaceInfo(info) => Some(info),
            _ => None,
        })?;
        Ok(CompleteRepr {
            file_id: packet.file_id(),
            status: CompleteStatus::from(packet.status()),
            freespace,
            client_ids: IdList::from_wire(&buf[hlen..])?,
        })
    }

    fn header_len(&self) -> usize {
        field::EXT + self.freespace.map_or(0, |f| f.buffer_len())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.client_ids.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        let hlen = self.header_len();
        buf[0] = Func::Complete.into();
        buf[1] = words(hlen)?;
        u16::set(buf, field::FILE_ID, self.file_id);
        buf[field::STATUS] = self.status.into();
        buf[5..8].fill(0);
        if let Some(f) = &self.freespace {
            f.emit(&mut buf[field::EXT..])?;
        }
        self.client_ids.emit(&mut buf[hlen..])?;
        Ok(len)
    }
}
