//! From a captured frame to a UDP datagram: link layers (Ethernet, Linux cooked v1/v2, raw IP,
//! BSD loopback), IPv4 (RFC 791) and IPv6 (RFC 8200) with fragment reassembly, and UDP
//! (RFC 768).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::capture::{linktype, Timestamp};

/// Why a frame carries no UDP datagram we can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// The link type is not one uftpdump reads.
    UnsupportedLinkType(u32),
    /// The frame carries something other than IPv4/IPv6 (ARP, LLDP, …).
    NotIp,
    /// The IP packet carries something other than UDP.
    NotUdp,
    /// A header is cut short; the string names it.
    Truncated(&'static str),
    /// A header is invalid; the string says how.
    Malformed(&'static str),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::UnsupportedLinkType(t) => write!(f, "unsupported link type {t}"),
            NetError::NotIp => f.write_str("not IP"),
            NetError::NotUdp => f.write_str("not UDP"),
            NetError::Truncated(what) => write!(f, "truncated {what}"),
            NetError::Malformed(what) => write!(f, "malformed {what}"),
        }
    }
}

impl std::error::Error for NetError {}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn by_ethertype(ty: u16, rest: &[u8]) -> Result<&[u8], NetError> {
    match ty {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Ok(rest),
        _ => Err(NetError::NotIp),
    }
}

/// Strips the link-layer header and returns the IP packet inside.
pub fn link_payload(linktype: u32, frame: &[u8]) -> Result<&[u8], NetError> {
    match linktype {
        linktype::ETHERNET => {
            if frame.len() < 14 {
                return Err(NetError::Truncated("Ethernet header"));
            }
            let mut ty = be16(frame, 12);
            let mut at = 14;
            // 802.1Q / 802.1ad tags, possibly stacked.
            while ty == ETHERTYPE_VLAN || ty == ETHERTYPE_QINQ {
                if frame.len() < at + 4 {
                    return Err(NetError::Truncated("VLAN tag"));
                }
                ty = be16(frame, at + 2);
                at += 4;
            }
            by_ethertype(ty, &frame[at..])
        }
        linktype::LINUX_SLL => {
            if frame.len() < 16 {
                return Err(NetError::Truncated("Linux cooked header"));
            }
            by_ethertype(be16(frame, 14), &frame[16..])
        }
        linktype::LINUX_SLL2 => {
            if frame.len() < 20 {
                return Err(NetError::Truncated("Linux cooked v2 header"));
            }
            by_ethertype(be16(frame, 0), &frame[20..])
        }
        linktype::RAW | linktype::RAW_OLD | linktype::IPV4 | linktype::IPV6 => Ok(frame),
        linktype::NULL | linktype::LOOP => {
            if frame.len() < 4 {
                return Err(NetError::Truncated("loopback header"));
            }
            // The family is in the writer's byte order (NULL) or big-endian (LOOP); IPv4 is 2
            // everywhere and IPv6 is 10, 24, 28 or 30 depending on the OS. Trust the version
            // nibble instead, as tshark does for the IPv6 variants.
            Ok(&frame[4..])
        }
        other => Err(NetError::UnsupportedLinkType(other)),
    }
}

/// The addresses and identification of one IP packet, and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPacket<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Set when the packet is a fragment: where it goes in its datagram.
    pub fragment: Option<Fragment>,
    /// The payload (for a fragment: this fragment's piece).
    pub payload: &'a [u8],
}

/// Fragment fields of an IPv4 header or an IPv6 Fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// Byte offset of this piece in the reassembled payload.
    pub offset: usize,
    /// More fragments follow.
    pub more: bool,
}

/// Parses an IPv4 or IPv6 header (by its version nibble). Link-layer padding after the IP
/// total length is dropped.
pub fn parse_ip(bytes: &[u8]) -> Result<IpPacket<'_>, NetError> {
    match bytes.first().map(|b| b >> 4) {
        Some(4) => parse_ipv4(bytes),
        Some(6) => parse_ipv6(bytes),
        None => Err(NetError::Truncated("IP header")),
        Some(_) => Err(NetError::NotIp),
    }
}

fn parse_ipv4(b: &[u8]) -> Result<IpPacket<'_>, NetError> {
    if b.len() < 20 {
        return Err(NetError::Truncated("IPv4 header"));
    }
    let ihl = usize::from(b[0] & 0x0F) * 4;
    let total = usize::from(be16(b, 2));
    if ihl < 20 || total < ihl {
        return Err(NetError::Malformed("IPv4 header length"));
    }
    if b.len() < ihl {
        return Err(NetError::Truncated("IPv4 options"));
    }
    // A capture cut by the snap length keeps what it has; padding beyond `total` goes.
    let end = total.min(b.len());
    let id = u32::from(be16(b, 4));
    let flags_off = be16(b, 6);
    let more = flags_off & 0x2000 != 0;
    let offset = usize::from(flags_off & 0x1FFF) * 8;
    let src = IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19]));
    let fragment = (more || offset != 0).then_some(Fragment { id, offset, more });
    Ok(IpPacket {
        src,
        dst,
        protocol: b[9],
        fragment,
        payload: &b[ihl..end],
    })
}

fn parse_ipv6(b: &[u8]) -> Result<IpPacket<'_>, NetError> {
    if b.len() < 40 {
        return Err(NetError::Truncated("IPv6 header"));
    }
    let plen = usize::from(be16(b, 4));
    let end = (40 + plen).min(b.len());
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&b[8..24]);
    let src = IpAddr::V6(Ipv6Addr::from(addr));
    addr.copy_from_slice(&b[24..40]);
    let dst = IpAddr::V6(Ipv6Addr::from(addr));
    let mut next = b[6];
    let mut at = 40;
    let mut fragment = None;
    loop {
        match next {
            // Hop-by-hop, routing, destination options: length in 8-octet units past the first 8.
            0 | 43 | 60 => {
                if end < at + 2 {
                    return Err(NetError::Truncated("IPv6 extension header"));
                }
                next = b[at];
                at += (usize::from(b[at + 1]) + 1) * 8;
            }
            // Fragment header: fixed 8 bytes.
            44 => {
                if end < at + 8 {
                    return Err(NetError::Truncated("IPv6 fragment header"));
                }
                next = b[at];
                let off_flags = be16(b, at + 2);
                let id = u32::from_be_bytes([b[at + 4], b[at + 5], b[at + 6], b[at + 7]]);
                let offset = usize::from(off_flags & 0xFFF8);
                let more = off_flags & 1 != 0;
                if more || offset != 0 {
                    fragment = Some(Fragment { id, offset, more });
                }
                at += 8;
                if fragment.is_some_and(|f| f.offset != 0) {
                    // Later fragments carry the rest of the first fragment's payload, whose
                    // protocol the first fragment names.
                    break;
                }
            }
            _ => break,
        }
        if at > end {
            return Err(NetError::Truncated("IPv6 extension header"));
        }
    }
    Ok(IpPacket {
        src,
        dst,
        protocol: next,
        fragment,
        payload: &b[at.min(end)..end],
    })
}

/// A UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// The datagram's payload, cut to the UDP length.
    pub payload: &'a [u8],
    /// The capture holds fewer bytes than the UDP length says.
    pub truncated: bool,
}

/// Parses a UDP header carried between `src` and `dst`.
pub fn parse_udp(src: IpAddr, dst: IpAddr, b: &[u8]) -> Result<Udp<'_>, NetError> {
    if b.len() < 8 {
        return Err(NetError::Truncated("UDP header"));
    }
    let len = usize::from(be16(b, 4));
    // A length of 0 is an IPv6 jumbogram (RFC 2675): the IP length rules.
    let len = if len == 0 { b.len() } else { len };
    if len < 8 {
        return Err(NetError::Malformed("UDP length"));
    }
    let end = len.min(b.len());
    Ok(Udp {
        src: SocketAddr::new(src, be16(b, 0)),
        dst: SocketAddr::new(dst, be16(b, 2)),
        payload: &b[8..end],
        truncated: len > b.len(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    id: u32,
}

#[derive(Debug)]
struct Partial {
    first_seen: Timestamp,
    /// (offset, bytes), in arrival order.
    pieces: Vec<(usize, Vec<u8>)>,
    /// Known once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// The protocol carried, from the first fragment (IPv6 later fragments do not know it).
    protocol: Option<u8>,
}

/// A datagram put back together from fragments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassembled {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol.
    pub protocol: u8,
    /// The whole payload.
    pub payload: Vec<u8>,
}

/// IPv4 and IPv6 fragment reassembly keyed on (source, destination, protocol, identification),
/// as RFC 791 and RFC 8200 §4.5 describe. Overlaps are resolved in favour of the first copy;
/// incomplete datagrams are dropped after [`Reassembler::TIMEOUT_SECS`] of capture time.
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: HashMap<FragKey, Partial>,
}

impl Reassembler {
    /// How long (capture time) an incomplete datagram waits for its other fragments; the
    /// IPv4 reassembly timeout of Linux (`ipfrag_time`).
    pub const TIMEOUT_SECS: i64 = 30;
    /// Most datagrams waiting at once, so a capture full of stray fragments stays small.
    pub const MAX_PENDING: usize = 1024;
    /// Largest datagram payload accepted (the IPv4 limit).
    pub const MAX_LEN: usize = 65_535;

    /// Creates an empty reassembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many datagrams are waiting for more fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds one fragment; returns the datagram when this fragment completes it.
    pub fn push(
        &mut self,
        now: Timestamp,
        pkt: &IpPacket<'_>,
    ) -> Result<Option<Reassembled>, NetError> {
        let Some(frag) = pkt.fragment else {
            return Ok(Some(Reassembled {
                src: pkt.src,
                dst: pkt.dst,
                protocol: pkt.protocol,
                payload: pkt.payload.to_vec(),
            }));
        };
        self.pending
            .retain(|_, p| now.secs - p.first_seen.secs <= Self::TIMEOUT_SECS);
        if frag.offset + pkt.payload.len() > Self::MAX_LEN {
            return Err(NetError::Malformed("fragment beyond 65535 bytes"));
        }
        let key = FragKey {
            src: pkt.src,
            dst: pkt.dst,
            protocol: if pkt.src.is_ipv4() { pkt.protocol } else { 0 },
            id: frag.id,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= Self::MAX_PENDING {
            // Drop the oldest to make room.
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        let entry = self.pending.entry(key.clone()).or_insert_with(|| Partial {
            first_seen: now,
            pieces: Vec::new(),
            total: None,
            protocol: None,
        });
        if frag.offset == 0 {
            entry.protocol = Some(pkt.protocol);
        }
        if !frag.more {
            entry.total = Some(frag.offset + pkt.payload.len());
        }
        entry.pieces.push((frag.offset, pkt.payload.to_vec()));
        let (Some(total), Some(protocol)) = (entry.total, entry.protocol) else {
            return Ok(None);
        };
        // Complete when the pieces cover [0, total) without a gap.
        let mut order: Vec<usize> = (0..entry.pieces.len()).collect();
        order.sort_by_key(|&i| entry.pieces[i].0);
        let mut covered = 0;
        for &i in &order {
            let (off, ref data) = entry.pieces[i];
            if off > covered {
                return Ok(None);
            }
            covered = covered.max(off + data.len());
        }
        if covered < total {
            return Ok(None);
        }
        let mut payload = vec![0u8; total];
        let mut filled = vec![false; total];
        for (off, data) in &entry.pieces {
            for (j, &byte) in data.iter().enumerate() {
                let at = off + j;
                if at < total && !filled[at] {
                    payload[at] = byte;
                    filled[at] = true;
                }
            }
        }
        self.pending.remove(&key);
        Ok(Some(Reassembled {
            src: pkt.src,
            dst: pkt.dst,
            protocol,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(id: u16, mf: bool, off8: u16, proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + payload.len() as u16;
        let mut v = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, 1, 230, 5, 5, 1,
        ];
        v[2..4].copy_from_slice(&total.to_be_bytes());
        v[4..6].copy_from_slice(&id.to_be_bytes());
        let fo = off8 | if mf { 0x2000 } else { 0 };
        v[6..8].copy_from_slice(&fo.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    fn ipv6(next: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v.extend_from_slice(&"ff15::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(ext);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ethernet_with_vlan_and_padding() {
        let ip = ipv4(1, false, 0, 17, &udp(5000, 1044, b"hi"));
        let mut frame = vec![0xff; 12];
        frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&[0; 20]); // Ethernet minimum-size padding
        let inner = link_payload(linktype::ETHERNET, &frame).unwrap();
        let pkt = parse_ip(inner).unwrap();
        assert_eq!(
            pkt.payload.len(),
            10,
            "padding after the IP total length is dropped"
        );
        let u = parse_udp(pkt.src, pkt.dst, pkt.payload).unwrap();
        assert_eq!(u.src, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(u.dst, "230.5.5.1:1044".parse().unwrap());
        assert_eq!(u.payload, b"hi");
        assert!(!u.truncated);
    }

    #[test]
    fn ethernet_non_ip_is_reported() {
        let mut frame = vec![0xff; 12];
        frame.extend_from_slice(&[0x08, 0x06, 0, 1]);
        assert_eq!(
            link_payload(linktype::ETHERNET, &frame),
            Err(NetError::NotIp)
        );
        assert_eq!(
            link_payload(linktype::ETHERNET, &[0; 5]),
            Err(NetError::Truncated("Ethernet header"))
        );
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let ip = ipv4(1, false, 0, 17, &udp(1, 2, b"x"));
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&ip);
        assert_eq!(link_payload(linktype::LINUX_SLL, &sll).unwrap(), &ip[..]);
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        let ip6 = ipv6(17, &[], &udp(1, 2, b"y"));
        sll2.extend_from_slice(&ip6);
        assert_eq!(link_payload(linktype::LINUX_SLL2, &sll2).unwrap(), &ip6[..]);
        assert!(link_payload(linktype::LINUX_SLL2, &sll2[..19]).is_err());
    }

    #[test]
    fn raw_ip_and_unsupported() {
        let ip = ipv4(1, false, 0, 17, &udp(1, 2, b"x"));
        assert_eq!(link_payload(linktype::RAW, &ip).unwrap(), &ip[..]);
        assert_eq!(link_payload(linktype::IPV4, &ip).unwrap(), &ip[..]);
        assert_eq!(
            link_payload(147, &ip),
            Err(NetError::UnsupportedLinkType(147))
        );
        assert_eq!(parse_ip(&[0x55]), Err(NetError::NotIp));
    }

    #[test]
    fn ipv6_with_extension_header() {
        let u = udp(1044, 1044, b"v6");
        // Hop-by-hop options header, 8 bytes, next = UDP.
        let hbh = [17, 0, 1, 4, 0, 0, 0, 0];
        let p = ipv6(0, &hbh, &u);
        let pkt = parse_ip(&p).unwrap();
        assert_eq!(pkt.protocol, 17);
        assert_eq!(pkt.fragment, None);
        assert_eq!(
            parse_udp(pkt.src, pkt.dst, pkt.payload).unwrap().payload,
            b"v6"
        );
    }

    #[test]
    fn truncated_udp_is_flagged() {
        let mut u = udp(1, 1044, b"abcdef");
        u.truncate(10);
        let d = parse_udp(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &u,
        )
        .unwrap();
        assert!(d.truncated);
        assert_eq!(d.payload, b"ab");
    }

    #[test]
    fn ipv4_reassembly_out_of_order() {
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let dgram = udp(40000, 1044, &data);
        let pieces: Vec<Vec<u8>> = dgram.chunks(1480).map(<[u8]>::to_vec).collect();
        assert_eq!(pieces.len(), 3);
        let mut r = Reassembler::new();
        let t = Timestamp {
            secs: 100,
            nanos: 0,
        };
        let frames = [
            ipv4(7, false, 2960 / 8, 17, &pieces[2]),
            ipv4(7, true, 0, 17, &pieces[0]),
            ipv4(7, true, 1480 / 8, 17, &pieces[1]),
        ];
        let mut out = None;
        for (i, f) in frames.iter().enumerate() {
            let pkt = parse_ip(f).unwrap();
            assert!(pkt.fragment.is_some());
            let got = r.push(t, &pkt).unwrap();
            assert_eq!(got.is_some(), i == 2, "completes on the last piece only");
            out = out.or(got);
        }
        let whole = out.unwrap();
        assert_eq!(whole.protocol, 17);
        assert_eq!(whole.payload, dgram);
        assert_eq!(r.pending(), 0);
        let u = parse_udp(whole.src, whole.dst, &whole.payload).unwrap();
        assert_eq!(u.payload, &data[..]);
    }

    #[test]
    fn ipv4_reassembly_duplicate_and_overlap() {
        let dgram: Vec<u8> = (0..64u8).collect();
        let mut r = Reassembler::new();
        let t = Timestamp::default();
        let a = ipv4(9, true, 0, 17, &dgram[..32]);
        let b = ipv4(9, true, 3, 17, &dgram[24..48]); // overlaps the first by 8 bytes
        let c = ipv4(9, false, 6, 17, &dgram[48..]);
        assert!(r.push(t, &parse_ip(&a).unwrap()).unwrap().is_none());
        assert!(r.push(t, &parse_ip(&a).unwrap()).unwrap().is_none());
        assert!(r.push(t, &parse_ip(&b).unwrap()).unwrap().is_none());
        let whole = r.push(t, &parse_ip(&c).unwrap()).unwrap().unwrap();
        assert_eq!(whole.payload, dgram);
    }

    #[test]
    fn reassembly_keys_on_id_and_times_out() {
        let mut r = Reassembler::new();
        let first = ipv4(1, true, 0, 17, &[0; 16]);
        r.push(Timestamp { secs: 0, nanos: 0 }, &parse_ip(&first).unwrap())
            .unwrap();
        // Same offsets, other id: does not complete datagram 1.
        let other_last = ipv4(2, false, 2, 17, &[0; 8]);
        assert!(r
            .push(Timestamp::default(), &parse_ip(&other_last).unwrap())
            .unwrap()
            .is_none());
        assert_eq!(r.pending(), 2);
        // Much later: both expire before the new fragment is considered.
        let late_last = ipv4(1, false, 2, 17, &[0; 8]);
        let later = Timestamp {
            secs: Reassembler::TIMEOUT_SECS + 1,
            nanos: 0,
        };
        assert!(r
            .push(later, &parse_ip(&late_last).unwrap())
            .unwrap()
            .is_none());
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn oversized_fragment_is_rejected() {
        let mut r = Reassembler::new();
        let f = ipv4(1, false, 8189, 17, &[0; 100]);
        assert!(r
            .push(Timestamp::default(), &parse_ip(&f).unwrap())
            .is_err());
    }

    #[test]
    fn ipv6_reassembly() {
        let dgram = udp(1044, 1044, &[0xAB; 100]);
        let frag_hdr = |off: u16, more: bool| {
            let mut h = vec![17, 0];
            h.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
            h.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            h
        };
        let a = ipv6(44, &frag_hdr(0, true), &dgram[..56]);
        let b = ipv6(44, &frag_hdr(56, false), &dgram[56..]);
        let mut r = Reassembler::new();
        let pb = parse_ip(&b).unwrap();
        assert_eq!(
            pb.fragment,
            Some(Fragment {
                id: 0xdead_beef,
                offset: 56,
                more: false
            })
        );
        assert!(r.push(Timestamp::default(), &pb).unwrap().is_none());
        let whole = r
            .push(Timestamp::default(), &parse_ip(&a).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(whole.protocol, 17);
        assert_eq!(whole.payload, dgram);
    }
}
