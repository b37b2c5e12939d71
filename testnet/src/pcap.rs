//! Just enough of the classic pcap format (Ethernet link type, either byte order) to pull out
//! UDP datagrams: the tests' and `cargo xtask vectors`' reader of the captures they take or
//! commit (`tests/vectors/pcap`). It needs no root and depends on nothing, so proto-core's tests
//! use it too. (uftpdump's full reader, pcapng and IPv4 reassembly included, is
//! `std-host/src/dump/capture.rs`.)

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::Error;

/// One captured UDP datagram.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// 1-based packet number in the pcap (as Wireshark and `tcpdump -r | nl` count).
    pub number: usize,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

impl Datagram {
    /// Its source address and port.
    pub fn from(&self) -> SocketAddr {
        SocketAddr::new(self.src, self.sport)
    }
    /// Its destination address and port.
    pub fn to(&self) -> SocketAddr {
        SocketAddr::new(self.dst, self.dport)
    }
    /// The UFTP `func` byte (offset 1 of the header), 0 if the payload is too short.
    pub fn func(&self) -> u8 {
        self.payload.get(1).copied().unwrap_or(0)
    }
    /// The UFTP message body (after the 16-byte header).
    pub fn body(&self) -> &[u8] {
        self.payload.get(16..).unwrap_or(&[])
    }
    /// The UFTP header's source ID.
    pub fn src_id(&self) -> u32 {
        be32(&self.payload, 4)
    }
}

/// The big-endian `u16` at `off`, 0 past the end.
pub fn be16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]))
}

/// The big-endian `u32` at `off`, 0 past the end.
pub fn be32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads every UDP datagram (IPv4 or IPv6, unfragmented) of a pcap file.
pub fn read(path: &Path) -> Result<Vec<Datagram>, Error> {
    let data =
        std::fs::read(path).map_err(|e| Error(format!("reading {}: {e}", path.display())))?;
    parse(&data).map_err(|e| Error(format!("{}: {e}", path.display())))
}

/// Every UDP datagram (IPv4 or IPv6, unfragmented) of a pcap file's bytes. A last record cut
/// short (a capture stopped while writing) ends the list.
pub fn parse(data: &[u8]) -> Result<Vec<Datagram>, Error> {
    if data.len() < 24 {
        return Err(Error("too short for a pcap file".into()));
    }
    let le = match &data[0..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return Err(Error("not a classic pcap file".into())),
    };
    let u32_at = |off: usize| {
        let b = [data[off], data[off + 1], data[off + 2], data[off + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    if u32_at(20) != 1 {
        return Err(Error(format!("link type {} is not Ethernet", u32_at(20))));
    }
    let mut out = Vec::new();
    let mut off = 24;
    let mut number = 0;
    while off + 16 <= data.len() {
        let caplen = u32_at(off + 8) as usize;
        let Some(frame) = data.get(off + 16..off + 16 + caplen) else {
            break;
        };
        off += 16 + caplen;
        number += 1;
        if let Some(d) = parse_frame(frame, number) {
            out.push(d);
        }
    }
    Ok(out)
}

fn parse_frame(f: &[u8], number: usize) -> Option<Datagram> {
    let ethertype = be16(f, 12);
    let ip = f.get(14..)?;
    let (src, dst, udp) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(be16(ip, 2));
            let frag = be16(ip, 6) & 0x3fff;
            if ip.get(9) != Some(&17) || frag != 0 {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip.get(ihl..total)?)
        }
        0x86dd => {
            if ip.get(6) != Some(&17) {
                return None;
            }
            let plen = usize::from(be16(ip, 4));
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip.get(40..40 + plen)?)
        }
        _ => return None,
    };
    let ulen = usize::from(be16(udp, 4));
    Some(Datagram {
        number,
        src,
        dst,
        sport: be16(udp, 0),
        dport: be16(udp, 2),
        payload: udp.get(8..ulen)?.to_vec(),
    })
}
