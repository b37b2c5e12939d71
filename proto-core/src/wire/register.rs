//! REGISTER (2): a client (or a proxy for its clients) joins a session (digest §3.2).

use super::field::{message_view, padded, Field};
use super::{len16, need, words, Error, Func, IdList, Result, Timestamp};

/// Length of the client and server randoms.
pub const RAND_LEN: usize = 32;

mod field {
    pub const KEYINFO_LEN: usize = 2;
    pub const TSTAMP: usize = 4;
    pub const RAND2: usize = 12;
    pub const KEYINFO: usize = 44;
}

message_view! {
    /// A zero-copy view of a REGISTER body.
    RegisterPacket, min_len = field::KEYINFO;
    /// Length of the key-exchange data.
    keyinfo_len, set_keyinfo_len: u16 = field::KEYINFO_LEN;
}

impl<T: AsRef<[u8]>> RegisterPacket<T> {
    fn check_more(&self) -> Result<()> {
        if field::KEYINFO + usize::from(self.keyinfo_len()) > usize::from(self.hlen()) * 4 {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The echoed server timestamp.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::read(self.as_bytes(), field::TSTAMP)
    }

    /// Client random (zeros when unencrypted).
    pub fn rand2(&self) -> &[u8] {
        &self.as_bytes()[field::RAND2..field::KEYINFO]
    }

    /// Key-exchange data: the RSA-encrypted premaster or the client's ECDH blob.
    pub fn keyinfo(&self) -> &[u8] {
        &self.as_bytes()[field::KEYINFO..field::KEYINFO + usize::from(self.keyinfo_len())]
    }
}

/// REGISTER, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterRepr<'a> {
    /// The server's timestamp echoed back, hold time added.
    pub timestamp: Timestamp,
    /// Client random (zeros when unencrypted).
    pub rand2: [u8; RAND_LEN],
    /// Key-exchange data (empty when unencrypted).
    pub keyinfo: &'a [u8],
    /// Clients a proxy registers for (empty from a client).
    pub client_ids: IdList<'a>,
}

impl<'a> RegisterRepr<'a> {
    /// Parses a checked REGISTER.
    pub fn parse(packet: &RegisterPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let mut rand2 = [0u8; RAND_LEN];
        rand2.copy_from_slice(packet.rand2());
        let keyinfo_end = field::KEYINFO + usize::from(packet.keyinfo_len());
        Ok(RegisterRepr {
            timestamp: packet.timestamp(),
            rand2,
            keyinfo: &buf[field::KEYINFO..keyinfo_end],
            client_ids: IdList::from_wire(&buf[usize::from(packet.hlen()) * 4..])?,
        })
    }

    fn header_len(&self) -> usize {
        padded(field::KEYINFO + self.keyinfo.len())
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
        buf[0] = Func::Register.into();
        buf[1] = words(hlen)?;
        u16::set(buf, field::KEYINFO_LEN, len16(self.keyinfo.len())?);
        self.timestamp.write(buf, field::TSTAMP);
        buf[field::RAND2..field::KEYINFO].copy_from_slice(&self.rand2);
        let key_end = field::KEYINFO + self.keyinfo.len();
        buf[field::KEYINFO..key_end].copy_from_slice(self.keyinfo);
        buf[key_end..hlen].fill(0);
        self.client_ids.emit(&mut buf[hlen..])?;
        Ok(len)
    }
}
