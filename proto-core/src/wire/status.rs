//! STATUS (11): a client's NAKs for one section (digest §3.11, §4.1).

use super::ext::{find, Extension};
use super::field::{message_view, Field};
use super::{need, words, Func, Result, TfmccAckInfoRepr};

mod field {
    pub const FILE_ID: usize = 2;
    pub const SECTION: usize = 4;
    pub const EXT: usize = 8;
}

message_view! {
    /// A zero-copy view of a STATUS body.
    StatusPacket, min_len = field::EXT;
    /// File ID.
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Section the bitmap is for.
    section, set_section: u16 = field::SECTION;
}

impl<T: AsRef<[u8]>> StatusPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }

    /// The NAK bitmap.
    pub fn naks(&self) -> &[u8] {
        self.trailer()
    }
}

/// STATUS, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRepr<'a> {
    /// File ID.
    pub file_id: u16,
    /// Section the bitmap is for.
    pub section: u16,
    /// TFMCC feedback (TFMCC sessions only).
    pub tfmcc: Option<TfmccAckInfoRepr>,
    /// NAK bitmap: bit `i` (byte `i >> 3`, least significant bit first) set means block `i` of
    /// the section is missing.
    pub naks: &'a [u8],
}

impl<'a> StatusRepr<'a> {
    /// Parses a checked STATUS.
    pub fn parse(packet: &StatusPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let hlen = usize::from(packet.hlen()) * 4;
        let tfmcc = find(&buf[field::EXT..hlen], |e| match e {
            Extension::TfmccAckInfo(info) => Some(info),
            _ => None,
        })?;
        Ok(StatusRepr {
            file_id: packet.file_id(),
            section: packet.section(),
            tfmcc,
            naks: &buf[hlen..],
        })
    }

    /// Whether block `index` of the section is NAKed (false past the bitmap).
    pub fn is_nak(&self, index: usize) -> bool {
        self.naks
            .get(index >> 3)
            .is_some_and(|b| b & (1 << (index & 7)) != 0)
    }

    /// Iterates over the NAKed block indexes within the section.
    pub fn nak_indexes(&self) -> impl Iterator<Item = usize> + 'a {
        let naks = self.naks;
        (0..naks.len() * 8).filter(move |&i| naks[i >> 3] & (1 << (i & 7)) != 0)
    }

    fn header_len(&self) -> usize {
        field::EXT + self.tfmcc.map_or(0, |t| t.buffer_len())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.naks.len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        let hlen = self.header_len();
        buf[0] = Func::Status.into();
        buf[1] = words(hlen)?;
        u16::set(buf, field::FILE_ID, self.file_id);
        u16::set(buf, field::SECTION, self.section);
        buf[6] = 0;
        buf[7] = 0;
        if let Some(t) = &self.tfmcc {
            t.emit(&mut buf[field::EXT..])?;
        }
        buf[hlen..len].copy_from_slice(self.naks);
        Ok(len)
    }
}
