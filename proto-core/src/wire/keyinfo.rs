//! KEYINFO (5): the group master key, wrapped for each client (digest §3.5).

use super::field::{message_view, Field};
use super::{need, Func, List, Record, Result};

/// Bytes of a wrapped group master per client (47 key bytes, CBC-padded).
pub const GROUP_MASTER_WIRE_LEN: usize = 48;

mod field {
    pub const IV_CTR: usize = 4;
    pub const ENTRIES: usize = 12;
}

message_view! {
    /// A zero-copy view of a KEYINFO body.
    KeyInfoPacket, min_len = field::ENTRIES;
    /// IV counter used for every entry of this packet.
    iv_ctr, set_iv_ctr: u64 = field::IV_CTR;
}

impl<T: AsRef<[u8]>> KeyInfoPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// One client's entry in KEYINFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfoEntry {
    /// The client.
    pub client_id: u32,
    /// Group master bytes 1..48 encrypted under that client's key.
    pub group_master: [u8; GROUP_MASTER_WIRE_LEN],
}

impl Record for KeyInfoEntry {
    const LEN: usize = 4 + GROUP_MASTER_WIRE_LEN;
    fn read(bytes: &[u8]) -> Self {
        let mut group_master = [0u8; GROUP_MASTER_WIRE_LEN];
        group_master.copy_from_slice(&bytes[4..Self::LEN]);
        KeyInfoEntry {
            client_id: u32::get(bytes, 0),
            group_master,
        }
    }
    fn write(&self, out: &mut [u8]) {
        u32::set(out, 0, self.client_id);
        out[4..Self::LEN].copy_from_slice(&self.group_master);
    }
}

/// KEYINFO, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfoRepr<'a> {
    /// IV counter (the sender's counter, shared with its ENCRYPTED messages).
    pub iv_ctr: u64,
    /// One entry per client.
    pub entries: List<'a, KeyInfoEntry>,
}

impl<'a> KeyInfoRepr<'a> {
    /// Parses a checked KEYINFO.
    pub fn parse(packet: &KeyInfoPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(KeyInfoRepr {
            iv_ctr: packet.iv_ctr(),
            entries: List::from_wire(&buf[usize::from(packet.hlen()) * 4..])?,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        field::ENTRIES + self.entries.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[..4].copy_from_slice(&[Func::KeyInfo.into(), (field::ENTRIES / 4) as u8, 0, 0]);
        u64::set(buf, field::IV_CTR, self.iv_ctr);
        self.entries.emit(&mut buf[field::ENTRIES..])?;
        Ok(len)
    }
}
