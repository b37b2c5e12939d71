//! FILESEG (9): one block of file data (digest §3.9).

use super::ext::{find, Extension};
use super::field::{message_view, Field};
use super::{need, words, Func, Result, TfmccDataInfoRepr};

mod field {
    pub const FILE_ID: usize = 2;
    pub const SECTION: usize = 4;
    pub const BLOCK: usize = 6;
    pub const EXT: usize = 8;
}

message_view! {
    /// A zero-copy view of a FILESEG body.
    FileSegPacket, min_len = field::EXT;
    /// File ID.
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Section number.
    section, set_section: u16 = field::SECTION;
    /// Block index within the section.
    sec_block, set_sec_block: u16 = field::BLOCK;
}

impl<T: AsRef<[u8]>> FileSegPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }

    /// The block's data.
    pub fn data(&self) -> &[u8] {
        self.trailer()
    }
}

/// FILESEG, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSegRepr<'a> {
    /// File ID.
    pub file_id: u16,
    /// Section number.
    pub section: u16,
    /// Block index within the section.
    pub sec_block: u16,
    /// TFMCC rate information (TFMCC sessions only).
    pub tfmcc: Option<TfmccDataInfoRepr>,
    /// The data (at most `blocksize` bytes).
    pub data: &'a [u8],
}

impl<'a> FileSegRepr<'a> {
    /// Parses a checked FILESEG.
    pub fn parse(packet: &FileSegPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let hlen = usize::from(packet.hlen()) * 4;
        // Nearly every FILESEG has no extension: no need to look.
        let tfmcc = if hlen == field::EXT {
            None
        } else {
            find(&buf[field::EXT..hlen], |e| match e {
                Extension::TfmccDataInfo(info) => Some(info),
                _ => None,
            })?
        };
        Ok(FileSegRepr {
            file_id: packet.file_id(),
            section: packet.section(),
            sec_block: packet.sec_block(),
            tfmcc,
            data: &buf[hlen..],
        })
    }

    /// Bytes before the data.
    pub fn header_len(&self) -> usize {
        field::EXT + self.tfmcc.map_or(0, |t| t.buffer_len())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.data.len()
    }

    /// Writes everything but the data into the start of `buf` (for a driver that reads the
    /// block straight into the buffer after it), returning the header length.
    pub fn emit_header(&self, buf: &mut [u8]) -> Result<usize> {
        let hlen = self.header_len();
        need(buf, hlen)?;
        buf[0] = Func::FileSeg.into();
        buf[1] = words(hlen)?;
        u16::set(buf, field::FILE_ID, self.file_id);
        u16::set(buf, field::SECTION, self.section);
        u16::set(buf, field::BLOCK, self.sec_block);
        if let Some(t) = &self.tfmcc {
            t.emit(&mut buf[field::EXT..])?;
        }
        Ok(hlen)
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        let hlen = self.emit_header(buf)?;
        buf[hlen..len].copy_from_slice(self.data);
        Ok(len)
    }
}
