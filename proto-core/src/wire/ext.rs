//! Header extensions (digest §2.4, §3.1, §3.9, §3.11, §3.12).
//!
//! An extension starts `type(1) len_words(1)` and sits between a message's fixed part and
//! `hlen * 4`. [`Extensions`] walks them; unknown types are returned as
//! [`Extension::Unknown`] so that callers can skip them.

use super::field::{padded, Field};
use super::{
    len16, need, words, Error, ExtType, HashType, KeyExchange, KeyType, Rate, Result, SigType,
    Timestamp,
};

/// EXT_ENC_INFO flag: the client must send CLIENT_KEY.
pub const ENC_FLAG_CLIENT_AUTH: u8 = 0x01;
/// EXT_TFMCC_ACK_INFO flag: sender is the current limiting receiver (not used by clients).
pub const TFMCC_ACK_FLAG_CLR: u8 = 0x01;
/// EXT_TFMCC_ACK_INFO flag: the client has an RTT measurement from the server.
pub const TFMCC_ACK_FLAG_RTT: u8 = 0x02;
/// EXT_TFMCC_ACK_INFO flag: the client is still in slow start.
pub const TFMCC_ACK_FLAG_START: u8 = 0x04;
/// EXT_TFMCC_ACK_INFO flag: the client is leaving (unused).
pub const TFMCC_ACK_FLAG_LEAVE: u8 = 0x08;

/// A parsed header extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extension<'a> {
    /// EXT_ENC_INFO.
    EncInfo(EncInfoRepr<'a>),
    /// EXT_TFMCC_DATA_INFO.
    TfmccDataInfo(TfmccDataInfoRepr),
    /// EXT_TFMCC_ACK_INFO.
    TfmccAckInfo(TfmccAckInfoRepr),
    /// EXT_FREESPACE_INFO.
    FreeSpaceInfo(FreeSpaceInfoRepr),
    /// Any other extension, kept whole (type and length bytes included).
    Unknown {
        /// The type byte.
        ext_type: u8,
        /// The extension's bytes.
        bytes: &'a [u8],
    },
}

impl Extension<'_> {
    /// The extension's type.
    pub fn ext_type(&self) -> ExtType {
        match self {
            Extension::EncInfo(_) => ExtType::EncInfo,
            Extension::TfmccDataInfo(_) => ExtType::TfmccDataInfo,
            Extension::TfmccAckInfo(_) => ExtType::TfmccAckInfo,
            Extension::FreeSpaceInfo(_) => ExtType::FreeSpaceInfo,
            Extension::Unknown { ext_type, .. } => ExtType::from(*ext_type),
        }
    }
}

/// Iterator over the extensions in a byte range; yields an error and stops on a malformed one.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    rest: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Walks the extensions in `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Extensions { rest: bytes }
    }
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Result<Extension<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = core::mem::take(&mut self.rest);
        if rest.len() < 2 {
            return Some(Err(Error::Truncated));
        }
        let len = usize::from(rest[1]) * 4;
        if len == 0 || len > rest.len() {
            return Some(Err(Error::Malformed("extension length")));
        }
        let (bytes, after) = rest.split_at(len);
        self.rest = after;
        Some(match ExtType::from(rest[0]) {
            ExtType::EncInfo => EncInfoRepr::parse(bytes).map(Extension::EncInfo),
            ExtType::TfmccDataInfo => TfmccDataInfoRepr::parse(bytes).map(Extension::TfmccDataInfo),
            ExtType::TfmccAckInfo => TfmccAckInfoRepr::parse(bytes).map(Extension::TfmccAckInfo),
            ExtType::FreeSpaceInfo => FreeSpaceInfoRepr::parse(bytes).map(Extension::FreeSpaceInfo),
            _ => Ok(Extension::Unknown {
                ext_type: rest[0],
                bytes,
            }),
        })
    }
}

/// Checks type and minimum length of one extension's bytes.
fn check_ext(bytes: &[u8], ext_type: ExtType, min: usize) -> Result<()> {
    if bytes.len() < min {
        return Err(Error::Truncated);
    }
    if ExtType::from(bytes[0]) != ext_type {
        return Err(Error::Malformed("extension type"));
    }
    if usize::from(bytes[1]) * 4 < min || usize::from(bytes[1]) * 4 > bytes.len() {
        return Err(Error::Malformed("extension length"));
    }
    Ok(())
}

/// EXT_ENC_INFO: the session's security parameters, carried in ANNOUNCE (digest §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncInfoRepr<'a> {
    /// Flags ([`ENC_FLAG_CLIENT_AUTH`]).
    pub flags: u8,
    /// Key exchange.
    pub keyextype: KeyExchange,
    /// How ENCRYPTED messages are authenticated.
    pub sigtype: SigType,
    /// Session cipher.
    pub keytype: KeyType,
    /// Session hash.
    pub hashtype: HashType,
    /// Server random.
    pub rand1: [u8; 32],
    /// Server's public key blob (RSA or EC).
    pub key_blob: &'a [u8],
    /// Server's ephemeral ECDH blob (empty for RSA key exchange).
    pub dh_blob: &'a [u8],
    /// Signature over the whole ANNOUNCE (empty for RSA key exchange).
    pub signature: &'a [u8],
}

mod enc {
    pub const FLAGS: usize = 2;
    pub const KEYEX_SIG: usize = 3;
    pub const KEYTYPE: usize = 4;
    pub const HASHTYPE: usize = 5;
    pub const KEYLEN: usize = 6;
    pub const DHLEN: usize = 8;
    pub const SIGLEN: usize = 10;
    pub const RAND1: usize = 12;
    pub const KEYS: usize = 44;
}

impl<'a> EncInfoRepr<'a> {
    /// Length of the fixed part.
    pub const FIXED_LEN: usize = enc::KEYS;

    /// Parses one EXT_ENC_INFO extension (its type and length bytes included).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        check_ext(bytes, ExtType::EncInfo, Self::FIXED_LEN)?;
        let bytes = &bytes[..usize::from(bytes[1]) * 4];
        let keylen = usize::from(u16::get(bytes, enc::KEYLEN));
        let dhlen = usize::from(u16::get(bytes, enc::DHLEN));
        let siglen = usize::from(u16::get(bytes, enc::SIGLEN));
        let end = enc::KEYS + keylen + dhlen + siglen;
        if end > bytes.len() {
            return Err(Error::BadLength);
        }
        let mut rand1 = [0u8; 32];
        rand1.copy_from_slice(&bytes[enc::RAND1..enc::KEYS]);
        let key_end = enc::KEYS + keylen;
        let dh_end = key_end + dhlen;
        Ok(EncInfoRepr {
            flags: bytes[enc::FLAGS],
            keyextype: KeyExchange::from(bytes[enc::KEYEX_SIG] >> 4),
            sigtype: SigType::from(bytes[enc::KEYEX_SIG] & 0x0F),
            keytype: KeyType::from(bytes[enc::KEYTYPE]),
            hashtype: HashType::from(bytes[enc::HASHTYPE]),
            rand1,
            key_blob: &bytes[enc::KEYS..key_end],
            dh_blob: &bytes[key_end..dh_end],
            signature: &bytes[dh_end..end],
        })
    }

    /// Bytes the extension takes (padded to whole words).
    pub fn buffer_len(&self) -> usize {
        padded(Self::FIXED_LEN + self.key_blob.len() + self.dh_blob.len() + self.signature.len())
    }

    /// Offset of the signature within the extension, for signing and verifying ANNOUNCE.
    pub fn signature_offset(&self) -> usize {
        Self::FIXED_LEN + self.key_blob.len() + self.dh_blob.len()
    }

    /// Writes the extension into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        let keyex = u8::from(self.keyextype);
        let sig = u8::from(self.sigtype);
        if keyex > 0x0F || sig > 0x0F {
            return Err(Error::Malformed("key exchange or signature type over 15"));
        }
        let buf = &mut buf[..len];
        buf[0] = ExtType::EncInfo.into();
        buf[1] = words(len)?;
        buf[enc::FLAGS] = self.flags;
        buf[enc::KEYEX_SIG] = (keyex << 4) | sig;
        buf[enc::KEYTYPE] = self.keytype.into();
        buf[enc::HASHTYPE] = self.hashtype.into();
        u16::set(buf, enc::KEYLEN, len16(self.key_blob.len())?);
        u16::set(buf, enc::DHLEN, len16(self.dh_blob.len())?);
        u16::set(buf, enc::SIGLEN, len16(self.signature.len())?);
        buf[enc::RAND1..enc::KEYS].copy_from_slice(&self.rand1);
        let mut at = enc::KEYS;
        for part in [self.key_blob, self.dh_blob, self.signature] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf[at..].fill(0);
        Ok(len)
    }
}

/// EXT_TFMCC_DATA_INFO: the server's rate and feedback round, in FILESEG (digest §3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TfmccDataInfoRepr {
    /// Server's current sending rate.
    pub send_rate: Rate,
    /// Feedback round number.
    pub cc_seq: u16,
    /// Suppression threshold for feedback.
    pub cc_rate: Rate,
}

impl TfmccDataInfoRepr {
    /// Length on the wire.
    pub const LEN: usize = 8;

    /// Parses one EXT_TFMCC_DATA_INFO extension.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_ext(bytes, ExtType::TfmccDataInfo, Self::LEN)?;
        Ok(TfmccDataInfoRepr {
            send_rate: Rate(u16::get(bytes, 2)),
            cc_seq: u16::get(bytes, 4),
            cc_rate: Rate(u16::get(bytes, 6)),
        })
    }

    /// Bytes the extension takes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the extension into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, Self::LEN)?;
        buf[0] = ExtType::TfmccDataInfo.into();
        buf[1] = (Self::LEN / 4) as u8;
        u16::set(buf, 2, self.send_rate.0);
        u16::set(buf, 4, self.cc_seq);
        u16::set(buf, 6, self.cc_rate.0);
        Ok(Self::LEN)
    }
}

/// EXT_TFMCC_ACK_INFO: a client's congestion feedback, in STATUS and CC_ACK (digest §3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TfmccAckInfoRepr {
    /// Flags (`TFMCC_ACK_FLAG_*`).
    pub flags: u8,
    /// Last feedback round seen.
    pub cc_seq: u16,
    /// The client's calculated rate.
    pub cc_rate: Rate,
    /// The client's ID.
    pub client_id: u32,
    /// Echoed server timestamp, hold time added.
    pub timestamp: Timestamp,
}

impl TfmccAckInfoRepr {
    /// Length on the wire.
    pub const LEN: usize = 20;

    /// Parses one EXT_TFMCC_ACK_INFO extension.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_ext(bytes, ExtType::TfmccAckInfo, Self::LEN)?;
        Ok(TfmccAckInfoRepr {
            flags: bytes[2],
            cc_seq: u16::get(bytes, 4),
            cc_rate: Rate(u16::get(bytes, 6)),
            client_id: u32::get(bytes, 8),
            timestamp: Timestamp::read(bytes, 12),
        })
    }

    /// Bytes the extension takes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the extension into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, Self::LEN)?;
        buf[0] = ExtType::TfmccAckInfo.into();
        buf[1] = (Self::LEN / 4) as u8;
        buf[2] = self.flags;
        buf[3] = 0;
        u16::set(buf, 4, self.cc_seq);
        u16::set(buf, 6, self.cc_rate.0);
        u32::set(buf, 8, self.client_id);
        self.timestamp.write(buf, 12);
        Ok(Self::LEN)
    }
}

/// EXT_FREESPACE_INFO: free bytes in the client's primary destination, in COMPLETE
/// (digest §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FreeSpaceInfoRepr {
    /// Free bytes.
    pub freespace: u64,
}

impl FreeSpaceInfoRepr {
    /// Length on the wire.
    pub const LEN: usize = 12;

    /// Parses one EXT_FREESPACE_INFO extension.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        check_ext(bytes, ExtType::FreeSpaceInfo, Self::LEN)?;
        Ok(FreeSpaceInfoRepr {
            freespace: u64::get(bytes, 4),
        })
    }

    /// Bytes the extension takes.
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the extension into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        need(buf, Self::LEN)?;
        buf[0] = ExtType::FreeSpaceInfo.into();
        buf[1] = (Self::LEN / 4) as u8;
        buf[2] = 0;
        buf[3] = 0;
        u64::set(buf, 4, self.freespace);
        Ok(Self::LEN)
    }
}

/// Finds the first extension of the wanted kind in `bytes`, skipping unknown ones.
pub(crate) fn find<'a, T>(
    bytes: &'a [u8],
    pick: impl Fn(Extension<'a>) -> Option<T>,
) -> Result<Option<T>> {
    for ext in Extensions::new(bytes) {
        if let Some(found) = pick(ext?) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tfmcc_ack_round_trip() {
        let repr = TfmccAckInfoRepr {
            flags: TFMCC_ACK_FLAG_RTT,
            cc_seq: 7,
            cc_rate: Rate(0x8315),
            client_id: 0x0a00_0002,
            timestamp: Timestamp { secs: 1, usecs: 2 },
        };
        let mut buf = [0u8; 20];
        assert_eq!(repr.emit(&mut buf), Ok(20));
        assert_eq!(TfmccAckInfoRepr::parse(&buf), Ok(repr));
        let exts: [Result<Extension<'_>>; 1] = [Ok(Extension::TfmccAckInfo(repr))];
        assert!(Extensions::new(&buf).eq(exts));
    }

    #[test]
    fn zero_length_extension_is_an_error_not_a_loop() {
        let bytes = [9u8, 0, 0, 0];
        let mut it = Extensions::new(&bytes);
        assert_eq!(it.next(), Some(Err(Error::Malformed("extension length"))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn unknown_extension_is_skipped() {
        let bytes = [5u8, 1, 0, 0, 7, 3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        let found = find(&bytes, |e| match e {
            Extension::FreeSpaceInfo(f) => Some(f.freespace),
            _ => None,
        });
        assert_eq!(found, Ok(Some(256)));
    }
}
