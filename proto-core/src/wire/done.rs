//! DONE (10): the end of a pass, or with file ID 0 the end of the session (digest §3.10).

use super::field::{message_view, Field};
use super::{need, Func, IdList, Result};

mod field {
    pub const FILE_ID: usize = 2;
    pub const SECTION: usize = 4;
    pub const END: usize = 8;
}

message_view! {
    /// A zero-copy view of a DONE body.
    DonePacket, min_len = field::END;
    /// File ID (0: end of session).
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Last section sent.
    section, set_section: u16 = field::SECTION;
}

impl<T: AsRef<[u8]>> DonePacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// DONE, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneRepr<'a> {
    /// File ID (0: end of session).
    pub file_id: u16,
    /// Last section sent (`sections - 1` at the end of a pass, 0 for file 0).
    pub section: u16,
    /// Clients the server still needs a response from (may be empty).
    pub client_ids: IdList<'a>,
}

impl<'a> DoneRepr<'a> {
    /// Parses a checked DONE.
    pub fn parse(packet: &DonePacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(DoneRepr {
            file_id: packet.file_id(),
            section: packet.section(),
            client_ids: IdList::from_wire(&buf[usize::from(packet.hlen()) * 4..])?,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        field::END + self.client_ids.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[0] = Func::Done.into();
        buf[1] = (field::END / 4) as u8;
        u16::set(buf, field::FILE_ID, self.file_id);
        u16::set(buf, field::SECTION, self.section);
        buf[6] = 0;
        buf[7] = 0;
        self.client_ids.emit(&mut buf[field::END..])?;
        Ok(len)
    }
}
