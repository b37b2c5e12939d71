//! KEYINFO_ACK (6): a client proves it holds the group key; always sent encrypted
//! (digest §3.6, §5.5).

use super::field::message_view;
use super::{need, Func, Result};

/// Length of the verify data.
pub const VERIFY_DATA_LEN: usize = 12;

message_view! {
    /// A zero-copy view of a KEYINFO_ACK body.
    KeyInfoAckPacket, min_len = 4 + VERIFY_DATA_LEN;
}

impl<T: AsRef<[u8]>> KeyInfoAckPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }

    /// The verify data.
    pub fn verify_data(&self) -> &[u8] {
        &self.as_bytes()[4..4 + VERIFY_DATA_LEN]
    }
}

/// KEYINFO_ACK, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfoAckRepr {
    /// PRF output proving knowledge of the group master.
    pub verify_data: [u8; VERIFY_DATA_LEN],
}

impl KeyInfoAckRepr {
    /// Parses a checked KEYINFO_ACK.
    pub fn parse<T: AsRef<[u8]>>(packet: &KeyInfoAckPacket<T>) -> Result<Self> {
        let mut verify_data = [0u8; VERIFY_DATA_LEN];
        verify_data.copy_from_slice(packet.verify_data());
        Ok(KeyInfoAckRepr { verify_data })
    }

    /// Bytes the body takes.
    pub const fn buffer_len(&self) -> usize {
        4 + VERIFY_DATA_LEN
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[..4].copy_from_slice(&[Func::KeyInfoAck.into(), (len / 4) as u8, 0, 0]);
        buf[4..len].copy_from_slice(&self.verify_data);
        Ok(len)
    }
}
