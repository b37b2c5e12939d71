//! FILEINFO (7): the server announces the next item of the session (digest §3.7).

use super::field::{get_u48, message_view, padded, set_u48, until_nul, Field};
use super::{need, words, Error, FileType, Func, IdList, Result, Timestamp};

/// Longest name plus link target, in bytes, that uftp 4 allows.
pub const MAX_PATH_BYTES: usize = 300;

/// Largest file size the 48-bit field holds.
const MAX_SIZE: u64 = (1 << 48) - 1;

mod field {
    pub const FILE_ID: usize = 2;
    pub const FTYPE: usize = 4;
    pub const NAMELEN: usize = 8;
    pub const LINKLEN: usize = 9;
    pub const FSIZE: usize = 10;
    pub const FTSTAMP: usize = 16;
    pub const TSTAMP: usize = 20;
    pub const NAME: usize = 28;
}

message_view! {
    /// A zero-copy view of a FILEINFO body.
    FileInfoPacket, min_len = field::NAME;
    /// File ID.
    file_id, set_file_id: u16 = field::FILE_ID;
    /// Item type code.
    ftype, set_ftype: u8 = field::FTYPE;
    /// Name length in words.
    namelen, set_namelen: u8 = field::NAMELEN;
    /// Link target length in words.
    linklen, set_linklen: u8 = field::LINKLEN;
    /// File modification time, UNIX seconds.
    ftstamp, set_ftstamp: u32 = field::FTSTAMP;
}

impl<T: AsRef<[u8]>> FileInfoPacket<T> {
    fn check_more(&self) -> Result<()> {
        // uftp 4 requires hlen to cover exactly the name and link fields.
        let want = field::NAME + 4 * usize::from(self.namelen()) + 4 * usize::from(self.linklen());
        if usize::from(self.hlen()) * 4 != want {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// File size (48 bits).
    pub fn fsize(&self) -> u64 {
        get_u48(self.as_bytes(), field::FSIZE)
    }

    /// The NUL-padded name field.
    pub fn name_field(&self) -> &[u8] {
        &self.as_bytes()[field::NAME..field::NAME + 4 * usize::from(self.namelen())]
    }

    /// The NUL-padded link target field.
    pub fn link_field(&self) -> &[u8] {
        let at = field::NAME + 4 * usize::from(self.namelen());
        &self.as_bytes()[at..at + 4 * usize::from(self.linklen())]
    }
}

/// FILEINFO, parsed.
///
/// The name is raw bytes from the network: a receiver must confine it to its destination
/// directories before using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileInfoRepr<'a> {
    /// File ID (never 0).
    pub file_id: u16,
    /// Item type.
    pub ftype: FileType,
    /// Path name, `/`-separated, without padding.
    pub name: &'a [u8],
    /// Symlink target, without padding (empty unless `ftype` is a symlink).
    pub link: &'a [u8],
    /// File size in bytes (48 bits).
    pub size: u64,
    /// File modification time, UNIX seconds.
    pub mtime: u32,
    /// Server timestamp.
    pub timestamp: Timestamp,
    /// Clients that should act on this item (empty: all).
    pub client_ids: IdList<'a>,
}

impl<'a> FileInfoRepr<'a> {
    /// Parses a checked FILEINFO.
    pub fn parse(packet: &FileInfoPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let name_end = field::NAME + 4 * usize::from(packet.namelen());
        let link_end = name_end + 4 * usize::from(packet.linklen());
        let name = until_nul(&buf[field::NAME..name_end]);
        let link = until_nul(&buf[name_end..link_end]);
        if name.len() + link.len() > MAX_PATH_BYTES {
            return Err(Error::Malformed("name and link longer than 300 bytes"));
        }
        Ok(FileInfoRepr {
            file_id: packet.file_id(),
            ftype: FileType::from(packet.ftype()),
            name,
            link,
            size: packet.fsize(),
            mtime: packet.ftstamp(),
            timestamp: Timestamp::read(buf, field::TSTAMP),
            client_ids: IdList::from_wire(&buf[link_end..])?,
        })
    }

    fn header_len(&self) -> usize {
        field::NAME + padded(self.name.len()) + padded(self.link.len())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.client_ids.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        if self.size > MAX_SIZE || self.name.len() + self.link.len() > MAX_PATH_BYTES {
            return Err(Error::TooLong);
        }
        if self.name.contains(&0) || self.link.contains(&0) {
            return Err(Error::Malformed("NUL in name or link"));
        }
        let hlen = self.header_len();
        buf[0] = Func::FileInfo.into();
        buf[1] = words(hlen)?;
        u16::set(buf, field::FILE_ID, self.file_id);
        buf[field::FTYPE] = self.ftype.into();
        buf[5..8].fill(0);
        buf[field::NAMELEN] = words(self.name.len())?;
        buf[field::LINKLEN] = words(self.link.len())?;
        set_u48(buf, field::FSIZE, self.size);
        u32::set(buf, field::FTSTAMP, self.mtime);
        self.timestamp.write(buf, field::TSTAMP);
        let name_end = field::NAME + padded(self.name.len());
        buf[field::NAME..name_end].fill(0);
        buf[field::NAME..field::NAME + self.name.len()].copy_from_slice(self.name);
        buf[name_end..hlen].fill(0);
        buf[name_end..name_end + self.link.len()].copy_from_slice(self.link);
        self.client_ids.emit(&mut buf[hlen..])?;
        Ok(len)
    }
}
