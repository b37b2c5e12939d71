//! ABORT (19): ends a session, or one client's part in it (digest §3.17).

use super::field::{message_view, until_nul, Field};
use super::{need, Error, Func, Result};

/// Applies only to clients that have not finished the current file.
pub const ABORT_FLAG_CURRENT_FILE: u8 = 0x01;
/// Size of the NUL-padded reason field.
pub const ABORT_REASON_LEN: usize = 300;

mod field {
    pub const FLAGS: usize = 2;
    pub const HOST: usize = 4;
    pub const MESSAGE: usize = 8;
    pub const END: usize = MESSAGE + super::ABORT_REASON_LEN;
}

message_view! {
    /// A zero-copy view of an ABORT body.
    AbortPacket, min_len = field::END;
    /// Flags ([`ABORT_FLAG_CURRENT_FILE`]).
    flags, set_flags: u8 = field::FLAGS;
    /// The client aborted (0: everyone).
    host, set_host: u32 = field::HOST;
}

impl<T: AsRef<[u8]>> AbortPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// ABORT, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortRepr<'a> {
    /// Flags ([`ABORT_FLAG_CURRENT_FILE`]).
    pub flags: u8,
    /// The client aborted by the server, or the client a proxy speaks for; 0 otherwise.
    pub host: u32,
    /// Human-readable reason, without padding (bytes from the network: not trusted text).
    pub reason: &'a [u8],
}

impl<'a> AbortRepr<'a> {
    /// Parses a checked ABORT.
    pub fn parse(packet: &AbortPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(AbortRepr {
            flags: packet.flags(),
            host: packet.host(),
            reason: until_nul(&buf[field::MESSAGE..field::END]),
        })
    }

    /// Bytes the body takes.
    pub const fn buffer_len(&self) -> usize {
        field::END
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, field::END)?;
        if self.reason.len() > ABORT_REASON_LEN || self.reason.contains(&0) {
            return Err(Error::TooLong);
        }
        buf[..4].copy_from_slice(&[Func::Abort.into(), (field::END / 4) as u8, self.flags, 0]);
        u32::set(buf, field::HOST, self.host);
        buf[field::MESSAGE..field::END].fill(0);
        buf[field::MESSAGE..field::MESSAGE + self.reason.len()].copy_from_slice(self.reason);
        Ok(field::END)
    }
}
