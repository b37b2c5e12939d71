//! ANNOUNCE (1): the server opens a session on the public multicast address (digest §3.1).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ext::{find, Extension};
use super::field::{message_view, Field};
use super::{need, words, CcType, EncInfoRepr, Error, Func, IdList, Result, Timestamp};

/// Sync mode: only send what differs from the client's copy.
pub const ANNOUNCE_FLAG_SYNC_MODE: u8 = 0x01;
/// Sync preview: report what sync mode would do, send nothing.
pub const ANNOUNCE_FLAG_SYNC_PREVIEW: u8 = 0x02;
/// The two addresses are IPv6 (16 bytes each).
pub const ANNOUNCE_FLAG_IPV6: u8 = 0x04;

mod field {
    pub const FLAGS: usize = 2;
    pub const ROBUST: usize = 3;
    pub const CC_TYPE: usize = 4;
    pub const BLOCKSIZE: usize = 6;
    pub const TSTAMP: usize = 8;
    pub const ADDRS: usize = 16;
}

message_view! {
    /// A zero-copy view of an ANNOUNCE body.
    AnnouncePacket, min_len = field::ADDRS;
    /// Flags (`ANNOUNCE_FLAG_*`).
    flags, set_flags: u8 = field::FLAGS;
    /// Robustness factor (retry count).
    robust, set_robust: u8 = field::ROBUST;
    /// Congestion control type code.
    cc_type, set_cc_type: u8 = field::CC_TYPE;
    /// Data bytes per FILESEG.
    blocksize, set_blocksize: u16 = field::BLOCKSIZE;
    /// Server timestamp, seconds.
    tstamp_sec, set_tstamp_sec: u32 = field::TSTAMP;
    /// Server timestamp, microseconds.
    tstamp_usec, set_tstamp_usec: u32 = field::TSTAMP + 4;
}

impl<T: AsRef<[u8]>> AnnouncePacket<T> {
    fn check_more(&self) -> Result<()> {
        if field::ADDRS + 2 * self.addr_len() > usize::from(self.hlen()) * 4 {
            return Err(Error::BadHeaderLength);
        }
        Ok(())
    }

    /// Bytes per address: 16 with the IPv6 flag, else 4.
    pub fn addr_len(&self) -> usize {
        if self.flags() & ANNOUNCE_FLAG_IPV6 != 0 {
            16
        } else {
            4
        }
    }

    fn addr(&self, at: usize) -> IpAddr {
        let b = self.as_bytes();
        if self.addr_len() == 16 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
        }
    }

    /// Public multicast address (unspecified in unicast mode).
    pub fn public_addr(&self) -> IpAddr {
        self.addr(field::ADDRS)
    }

    /// Private multicast address (unspecified in unicast mode).
    pub fn private_addr(&self) -> IpAddr {
        self.addr(field::ADDRS + self.addr_len())
    }

    /// The extension bytes after the two addresses.
    pub fn extensions(&self) -> &[u8] {
        &self.as_bytes()[field::ADDRS + 2 * self.addr_len()..usize::from(self.hlen()) * 4]
    }
}

/// ANNOUNCE, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRepr<'a> {
    /// Flags. The IPv6 bit is derived from the addresses when emitting.
    pub flags: u8,
    /// Robustness factor: retry count both sides use.
    pub robust: u8,
    /// Congestion control type.
    pub cc_type: CcType,
    /// Data bytes per FILESEG.
    pub blocksize: u16,
    /// Server timestamp (clients echo it for RTT measurement).
    pub timestamp: Timestamp,
    /// Public multicast address (unspecified in unicast mode).
    pub public_addr: IpAddr,
    /// Private multicast address (unspecified in unicast mode).
    pub private_addr: IpAddr,
    /// Security parameters, present only in encrypted sessions.
    pub enc_info: Option<EncInfoRepr<'a>>,
    /// Allowed clients (closed group only; empty when open).
    pub client_ids: IdList<'a>,
}

impl<'a> AnnounceRepr<'a> {
    /// Parses a checked ANNOUNCE.
    pub fn parse(packet: &AnnouncePacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        let view = AnnouncePacket::new_unchecked(buf);
        let ext_start = field::ADDRS + 2 * view.addr_len();
        let ext_bytes = &buf[ext_start..usize::from(view.hlen()) * 4];
        let enc_info = find(ext_bytes, |e| match e {
            Extension::EncInfo(info) => Some(info),
            _ => None,
        })?;
        Ok(AnnounceRepr {
            flags: view.flags(),
            robust: view.robust(),
            cc_type: CcType::from(view.cc_type()),
            blocksize: view.blocksize(),
            timestamp: Timestamp::read(buf, field::TSTAMP),
            public_addr: view.public_addr(),
            private_addr: view.private_addr(),
            enc_info,
            client_ids: IdList::from_wire(&buf[usize::from(view.hlen()) * 4..])?,
        })
    }

    fn is_v6(&self) -> bool {
        self.public_addr.is_ipv6()
    }

    fn header_len(&self) -> usize {
        let addr = if self.is_v6() { 16 } else { 4 };
        field::ADDRS + 2 * addr + self.enc_info.map_or(0, |e| e.buffer_len())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.client_ids.buffer_len()
    }

    /// Offset of the signature inside the emitted body, when there is one: the signature of
    /// ECDH sessions covers the whole datagram with this field zeroed (digest §5.7).
    pub fn signature_range(&self) -> Option<core::ops::Range<usize>> {
        let enc = self.enc_info?;
        let addr = if self.is_v6() { 16 } else { 4 };
        let start = field::ADDRS + 2 * addr + enc.signature_offset();
        Some(start..start + enc.signature.len())
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        if self.public_addr.is_ipv6() != self.private_addr.is_ipv6() {
            return Err(Error::Malformed("mixed IPv4 and IPv6 addresses"));
        }
        let hlen = self.header_len();
        buf[0] = Func::Announce.into();
        buf[1] = words(hlen)?;
        let flags =
            (self.flags & !ANNOUNCE_FLAG_IPV6) | if self.is_v6() { ANNOUNCE_FLAG_IPV6 } else { 0 };
        buf[field::FLAGS] = flags;
        buf[field::ROBUST] = self.robust;
        buf[field::CC_TYPE] = self.cc_type.into();
        buf[5] = 0;
        u16::set(buf, field::BLOCKSIZE, self.blocksize);
        self.timestamp.write(buf, field::TSTAMP);
        let mut at = field::ADDRS;
        for addr in [self.public_addr, self.private_addr] {
            match addr {
                IpAddr::V4(a) => {
                    buf[at..at + 4].copy_from_slice(&a.octets());
                    at += 4;
                }
                IpAddr::V6(a) => {
                    buf[at..at + 16].copy_from_slice(&a.octets());
                    at += 16;
                }
            }
        }
        if let Some(enc) = &self.enc_info {
            at += enc.emit(&mut buf[at..])?;
        }
        self.client_ids.emit(&mut buf[at..])?;
        Ok(len)
    }
}
