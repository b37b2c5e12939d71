//! The 16-byte header that starts every UFTP 4 datagram (digest §2.1).

use super::field::Field;
use super::{need, Error, GroupSize, Grtt, Result};

/// Length of the common header.
pub const HEADER_LEN: usize = 16;
/// The version byte of every UFTP 4.x release.
pub const VERSION: u8 = 0x40;

mod field {
    pub const VERSION: usize = 0;
    pub const FUNC: usize = 1;
    pub const SEQ: usize = 2;
    pub const SRC_ID: usize = 4;
    pub const GROUP_ID: usize = 8;
    pub const GROUP_INST: usize = 12;
    pub const GRTT: usize = 13;
    pub const GSIZE: usize = 14;
    pub const RESERVED: usize = 15;
}

/// A zero-copy view of a UFTP datagram: the common header and the body after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeaderPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps a buffer that holds at least the 16-byte header; then no accessor panics.
    ///
    /// The version byte is not checked here, so that tools can show foreign packets;
    /// [`HeaderRepr::parse`] rejects versions other than [`VERSION`].
    pub fn new_checked(buffer: T) -> Result<Self> {
        let view = Self::new_unchecked(buffer);
        view.check_len()?;
        Ok(view)
    }

    /// Checks that the buffer holds the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Protocol version (0x40).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }
    /// Message type (18 for every encrypted message).
    pub fn func(&self) -> u8 {
        self.buffer.as_ref()[field::FUNC]
    }
    /// Per-sender packet counter.
    pub fn seq(&self) -> u16 {
        u16::get(self.buffer.as_ref(), field::SEQ)
    }
    /// Sender's node ID.
    pub fn src_id(&self) -> u32 {
        u32::get(self.buffer.as_ref(), field::SRC_ID)
    }
    /// Session ID.
    pub fn group_id(&self) -> u32 {
        u32::get(self.buffer.as_ref(), field::GROUP_ID)
    }
    /// Restart instance of the session.
    pub fn group_inst(&self) -> u8 {
        self.buffer.as_ref()[field::GROUP_INST]
    }
    /// Group round-trip time, encoded.
    pub fn grtt(&self) -> Grtt {
        Grtt(self.buffer.as_ref()[field::GRTT])
    }
    /// Group size, encoded.
    pub fn gsize(&self) -> GroupSize {
        GroupSize(self.buffer.as_ref()[field::GSIZE])
    }
    /// The reserved byte (0 from every known sender).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED]
    }
    /// The message body after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> HeaderPacket<T> {
    /// Sets the version byte.
    pub fn set_version(&mut self, value: u8) {
        self.buffer.as_mut()[field::VERSION] = value;
    }
    /// Sets the message type.
    pub fn set_func(&mut self, value: u8) {
        self.buffer.as_mut()[field::FUNC] = value;
    }
    /// Sets the packet counter.
    pub fn set_seq(&mut self, value: u16) {
        u16::set(self.buffer.as_mut(), field::SEQ, value);
    }
    /// Sets the sender ID.
    pub fn set_src_id(&mut self, value: u32) {
        u32::set(self.buffer.as_mut(), field::SRC_ID, value);
    }
    /// Sets the session ID.
    pub fn set_group_id(&mut self, value: u32) {
        u32::set(self.buffer.as_mut(), field::GROUP_ID, value);
    }
    /// Sets the restart instance.
    pub fn set_group_inst(&mut self, value: u8) {
        self.buffer.as_mut()[field::GROUP_INST] = value;
    }
    /// Sets the encoded GRTT.
    pub fn set_grtt(&mut self, value: Grtt) {
        self.buffer.as_mut()[field::GRTT] = value.0;
    }
    /// Sets the encoded group size.
    pub fn set_gsize(&mut self, value: GroupSize) {
        self.buffer.as_mut()[field::GSIZE] = value.0;
    }
    /// Sets the reserved byte.
    pub fn set_reserved(&mut self, value: u8) {
        self.buffer.as_mut()[field::RESERVED] = value;
    }
    /// The message body after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The common header, parsed. The message type is not here: it belongs to the
/// [`Message`](super::Message) that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderRepr {
    /// Per-sender packet counter.
    pub seq: u16,
    /// Sender's node ID.
    pub src_id: u32,
    /// Session ID (0 in HB_REQ, HB_RESP, KEY_REQ and PROXY_KEY).
    pub group_id: u32,
    /// Restart instance.
    pub group_inst: u8,
    /// Group round-trip time (0 from clients).
    pub grtt: Grtt,
    /// Group size (0 from clients).
    pub gsize: GroupSize,
}

impl HeaderRepr {
    /// Parses a checked header, rejecting versions other than UFTP 4's.
    pub fn parse<T: AsRef<[u8]>>(packet: &HeaderPacket<T>) -> Result<Self> {
        if packet.version() != VERSION {
            return Err(Error::UnsupportedVersion(packet.version()));
        }
        Ok(HeaderRepr {
            seq: packet.seq(),
            src_id: packet.src_id(),
            group_id: packet.group_id(),
            group_inst: packet.group_inst(),
            grtt: packet.grtt(),
            gsize: packet.gsize(),
        })
    }

    /// Bytes the header takes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with message type `func` into the start of `buf`.
    pub fn emit(&self, func: u8, buf: &mut [u8]) -> Result<usize> {
        need(buf, HEADER_LEN)?;
        let mut packet = HeaderPacket::new_unchecked(buf);
        packet.set_version(VERSION);
        packet.set_func(func);
        packet.set_seq(self.seq);
        packet.set_src_id(self.src_id);
        packet.set_group_id(self.group_id);
        packet.set_group_inst(self.group_inst);
        packet.set_grtt(self.grtt);
        packet.set_gsize(self.gsize);
        packet.set_reserved(0);
        Ok(HEADER_LEN)
    }
}
