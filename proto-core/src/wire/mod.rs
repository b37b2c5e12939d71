//! The UFTP version-4 wire codec.
//!
//! Every message of the protocol (digest §2–§3) has a zero-copy view (`*Packet<T>`, checked
//! with `new_checked` on untrusted input, after which no accessor panics) and a parsed
//! representation (`*Repr`) with `parse`, `buffer_len` and `emit`. [`Repr`] ties the 16-byte
//! common header to a [`Message`]; [`Message::parse_inner`] reads the plaintext found inside an
//! ENCRYPTED envelope.
//!
//! Conventions:
//! - Unknown codes are values (`Unknown(u8)` variants, [`Message::Unknown`]), never errors; the
//!   `parse` functions decide what is malformed and say so with a typed [`Error`].
//! - Parsed representations borrow variable-length fields from the input; emitting writes into
//!   a caller's buffer and reports [`Error::BufferTooSmall`] rather than panicking.
//! - A parsed real packet re-emits byte-identical (checked against captures of uftp 4.10.2).

pub(crate) mod field;

mod codes;
mod encoding;
mod ext;
mod header;
mod list;
mod message;

mod abort;
mod announce;
mod cc_ack;
mod client_key;
mod complete;
mod cong_ctrl;
mod done;
mod done_conf;
mod encrypted;
mod fileinfo;
mod fileinfo_ack;
mod fileseg;
mod heartbeat;
mod key_req;
mod keyinfo;
mod keyinfo_ack;
mod proxy_key;
mod reg_conf;
mod register;
mod status;

pub use abort::{AbortPacket, AbortRepr, ABORT_FLAG_CURRENT_FILE, ABORT_REASON_LEN};
pub use announce::{
    AnnouncePacket, AnnounceRepr, ANNOUNCE_FLAG_IPV6, ANNOUNCE_FLAG_SYNC_MODE,
    ANNOUNCE_FLAG_SYNC_PREVIEW,
};
pub use cc_ack::{CcAckPacket, CcAckRepr};
pub use client_key::{ClientKeyPacket, ClientKeyRepr};
pub use codes::{
    CcType, CompleteStatus, Curve, ExtType, FileType, Func, HashType, HbResult, KeyBlobType,
    KeyExchange, KeyType, SigType,
};
pub use complete::{CompletePacket, CompleteRepr};
pub use cong_ctrl::{
    CcItem, CongCtrlPacket, CongCtrlRepr, CC_FLAG_CLR, CC_FLAG_RTT, CC_FLAG_START,
};
pub use done::{DonePacket, DoneRepr};
pub use done_conf::{DoneConfPacket, DoneConfRepr};
pub use encoding::{GroupSize, Grtt, Rate, Timestamp};
pub use encrypted::{EncryptedPacket, EncryptedRepr};
pub use ext::{
    EncInfoRepr, Extension, Extensions, FreeSpaceInfoRepr, TfmccAckInfoRepr, TfmccDataInfoRepr,
    ENC_FLAG_CLIENT_AUTH, TFMCC_ACK_FLAG_CLR, TFMCC_ACK_FLAG_LEAVE, TFMCC_ACK_FLAG_RTT,
    TFMCC_ACK_FLAG_START,
};
pub use fileinfo::{FileInfoPacket, FileInfoRepr, MAX_PATH_BYTES};
pub use fileinfo_ack::{FileInfoAckPacket, FileInfoAckRepr, FILEINFO_ACK_FLAG_PARTIAL};
pub use fileseg::{FileSegPacket, FileSegRepr};
pub use header::{HeaderPacket, HeaderRepr, HEADER_LEN, VERSION};
pub use heartbeat::{HbReqPacket, HbReqRepr, HbRespPacket, HbRespRepr};
pub use key_req::{KeyReqPacket, KeyReqRepr};
pub use keyinfo::{KeyInfoEntry, KeyInfoPacket, KeyInfoRepr, GROUP_MASTER_WIRE_LEN};
pub use keyinfo_ack::{KeyInfoAckPacket, KeyInfoAckRepr, VERIFY_DATA_LEN};
pub use list::{IdList, List, ListIter, Record};
pub use message::{Message, Repr};
pub use proxy_key::{ProxyKeyPacket, ProxyKeyRepr};
pub use reg_conf::{RegConfPacket, RegConfRepr};
pub use register::{RegisterPacket, RegisterRepr, RAND_LEN};
pub use status::{StatusPacket, StatusRepr};

/// What is wrong with a message, or with a buffer handed to `emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the fixed part of the message.
    Truncated,
    /// The version byte is not 0x40 (UFTP 4).
    UnsupportedVersion(u8),
    /// `hlen` is shorter than the fixed part or longer than the message.
    BadHeaderLength,
    /// A length field disagrees with the bytes present (names, keys, lists, payloads).
    BadLength,
    /// The header's message type and the body's own type byte differ.
    FuncMismatch {
        /// Type in the 16-byte header.
        header: u8,
        /// Type at the start of the body.
        body: u8,
    },
    /// A field holds a value the protocol does not allow here.
    Malformed(&'static str),
    /// The output buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
    },
    /// A value does not fit its field when emitting (for example a name over 255 words).
    TooLong,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Truncated => f.write_str("message truncated"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported protocol version 0x{v:02x}"),
            Error::BadHeaderLength => f.write_str("header length field out of range"),
            Error::BadLength => f.write_str("length field disagrees with message size"),
            Error::FuncMismatch { header, body } => {
                write!(f, "header says message type {header}, body says {body}")
            }
            Error::Malformed(what) => write!(f, "malformed message: {what}"),
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            Error::TooLong => f.write_str("value too long for its field"),
        }
    }
}

impl core::error::Error for Error {}

/// Result type of the wire layer.
pub type Result<T> = core::result::Result<T, Error>;

/// Checks that `buf` can hold `needed` bytes, for `emit`.
#[inline]
pub(crate) fn need(buf: &[u8], needed: usize) -> Result<()> {
    if buf.len() < needed {
        Err(Error::BufferTooSmall { needed })
    } else {
        Ok(())
    }
}

/// Converts a byte length to the `hlen`-style count of 4-byte words, failing past 255.
#[inline]
pub(crate) fn words(len: usize) -> Result<u8> {
    u8::try_from(field::padded(len) / 4).map_err(|_| Error::TooLong)
}

/// Converts a length to a 16-bit length field.
#[inline]
pub(crate) fn len16(len: usize) -> Result<u16> {
    u16::try_from(len).map_err(|_| Error::TooLong)
}
