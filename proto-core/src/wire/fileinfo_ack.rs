//! FILEINFO_ACK (8): a client accepts the announced file (digest §3.8).

use super::field::{message_view, Field};
use super::{need, Func, IdList, Result, Timestamp};

/// Restart: the client has part of the file from an earlier run.
pub const FILEINFO_ACK_FLAG_PARTIAL: u8 = 0x01;

mod field {
    pub const FILE_ID: usize = 2;
    pub const FLAGS: usize = 4;
    pub const TSTAMP: usize = 8;
    pub const END: usize = 16;
}

message_view! {
    /// A zero-copy view of a FILEINFO_ACK body.
    FileInfoAckPacket, min_len = field::END;
    /// File ID.
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Flags ([`FILEINFO_ACK_FLAG_PARTIAL`]).
    flags, set_flags: u8 = field::FLAGS;
}

impl<T: AsRef<[u8]>> FileInfoAckPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// FILEINFO_ACK, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfoAckRepr<'a> {
    /// File ID.
    pub file_id: u16,
    /// Flags ([`FILEINFO_ACK_FLAG_PARTIAL`]).
    pub flags: u8,
    /// The server's timestamp echoed back, hold time added.
    pub timestamp: Timestamp,
    /// Clients a proxy answers for (empty from a client).
    pub client_ids: IdList<'a>,
}

impl<'a> FileInfoAckRepr<'a> {
    /// Parses a checked FILEINFO_ACK.
    pub fn parse(packet: &FileInfoAckPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(FileInfoAckRepr {
            file_id: packet.file_id(),
            flags: packet.flags(),
            timestamp: Timestamp::read(buf, field::TSTAMP),
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
        buf[0] = Func::FileInfoAck.into();
        buf[1] = (field::END / 4) as u8;
        u16::set(buf, field::FILE_ID, self.file_id);
        buf[field::FLAGS] = self.flags;
        buf[5..8].fill(0);
        self.timestamp.write(buf, field::TSTAMP);
        self.client_ids.emit(&mut buf[field::END..])?;
        Ok(len)
    }
}
