//! Capture file reader: classic pcap (either byte order, micro- or nanosecond stamps) and pcapng.
//!
//! Formats: classic pcap as in libpcap's `pcap-savefile(5)`, pcapng as in
//! draft-ietf-opsawg-pcapng (Section Header, Interface Description, Enhanced, Simple and the
//! obsolete Packet block; every other block is skipped).

use std::fmt;
use std::io::{self, Read};

/// Link-layer header types (tcpdump.org `LINKTYPE_*` values) that uftpdump understands.
pub mod linktype {
    /// BSD loopback: a 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II (with optional 802.1Q / 802.1ad tags).
    pub const ETHERNET: u32 = 1;
    /// Raw IP on OpenBSD-derived writers.
    pub const RAW_OLD: u32 = 12;
    /// OpenBSD loopback: like NULL but the family is big-endian.
    pub const LOOP: u32 = 108;
    /// Raw IPv4 or IPv6, told apart by the version nibble.
    pub const RAW: u32 = 101;
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10+).
    pub const LINUX_SLL2: u32 = 276;
}

/// A capture timestamp: seconds and nanoseconds since the UNIX epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds, below 1e9.
    pub nanos: u32,
}

impl Timestamp {
    /// Builds a timestamp from a count of `units` per second (1e6 for microseconds, …).
    fn from_units(total: u64, units_per_sec: u64) -> Self {
        let secs = total / units_per_sec;
        let frac = total % units_per_sec;
        let nanos = (u128::from(frac) * 1_000_000_000 / u128::from(units_per_sec)) as u32;
        Timestamp {
            secs: secs as i64,
            nanos,
        }
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }

    /// `SECONDS.NNNNNNNNN`, as tshark prints `frame.time_epoch`.
    pub fn epoch_string(&self) -> String {
        format!("{}.{:09}", self.secs, self.nanos)
    }

    /// ISO 8601 in UTC with microseconds, e.g. `2026-11-25T11:09:08.340140Z`.
    pub fn iso_string(&self) -> String {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            self.nanos / 1000
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When it was captured.
    pub ts: Timestamp,
    /// `LINKTYPE_*` of the interface it was captured on.
    pub linktype: u32,
    /// The captured bytes (possibly shorter than `orig_len` when the snap length cut it).
    pub data: Vec<u8>,
    /// The frame's length on the wire.
    pub orig_len: u32,
}

/// Why a capture file could not be read.
#[derive(Debug)]
pub enum CaptureError {
    /// Reading failed.
    Io(io::Error),
    /// The file starts with neither a pcap magic number nor a pcapng Section Header Block.
    UnknownFormat(u32),
    /// The file is damaged: the string says where.
    Malformed(&'static str),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io(e) => write!(f, "read error: {e}"),
            CaptureError::UnknownFormat(m) => write!(
                f,
                "not a pcap or pcapng file (starts with 0x{m:08x}); convert it with `editcap -F pcap`"
            ),
            CaptureError::Malformed(what) => write!(f, "damaged capture file: {what}"),
        }
    }
}

impl std::error::Error for CaptureError {}

impl From<io::Error> for CaptureError {
    fn from(e: io::Error) -> Self {
        CaptureError::Io(e)
    }
}

/// Largest block or record the reader accepts, to stop a damaged length from allocating
/// gigabytes.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// `if_tsoffset`: seconds to add to every stamp.
    offset_secs: i64,
}

#[derive(Debug)]
enum Format {
    Pcap {
        endian: Endian,
        units_per_sec: u64,
        linktype: u32,
    },
    Pcapng {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
}

/// Reads frames from a classic pcap or pcapng stream.
#[derive(Debug)]
pub struct CaptureReader<R> {
    inner: R,
    format: Format,
}

/// pcapng Section Header Block type; also the first four bytes of every pcapng file.
const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

impl<R: Read> CaptureReader<R> {
    /// Reads the file header and prepares to read frames.
    pub fn new(mut inner: R) -> Result<Self, CaptureError> {
        let mut magic = [0u8; 4];
        inner.read_exact(&mut magic)?;
        let m = u32::from_le_bytes(magic);
        let format = match m {
            0xa1b2_c3d4 | 0xa1b2_3c4d | 0xd4c3_b2a1 | 0x4d3c_b2a1 => {
                let (endian, units_per_sec) = match m {
                    0xa1b2_c3d4 => (Endian::Little, 1_000_000),
                    0xa1b2_3c4d => (Endian::Little, 1_000_000_000),
                    0xd4c3_b2a1 => (Endian::Big, 1_000_000),
                    _ => (Endian::Big, 1_000_000_000),
                };
                let mut rest = [0u8; 20];
                inner.read_exact(&mut rest)?;
                // version(2+2) thiszone(4) sigfigs(4) snaplen(4) linktype(4); the top bits of
                // linktype carry FCS information, which only matters for 802.11.
                let linktype = endian.u32(&rest[16..20]) & 0x0FFF_FFFF;
                Format::Pcap {
                    endian,
                    units_per_sec,
                    linktype,
                }
            }
            PCAPNG_SHB => {
                let endian = read_shb_after_type(&mut inner)?;
                Format::Pcapng {
                    endian,
                    interfaces: Vec::new(),
                }
            }
            _ => return Err(CaptureError::UnknownFormat(u32::from_be_bytes(magic))),
        };
        Ok(CaptureReader { inner, format })
    }

    /// The next frame, or `None` at the end of the file. A file cut short inside a record gives
    /// [`CaptureError::Malformed`]; uftpdump then keeps what it printed and warns, as tshark
    /// does.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        match &mut self.format {
            Format::Pcap {
                endian,
                units_per_sec,
                linktype,
            } => {
                let (endian, ups, lt) = (*endian, *units_per_sec, *linktype);
                let mut hdr = [0u8; 16];
                if !read_full_or_eof(&mut self.inner, &mut hdr)? {
                    return Ok(None);
                }
                let secs = endian.u32(&hdr[0..4]);
                let frac = endian.u32(&hdr[4..8]);
                let caplen = endian.u32(&hdr[8..12]);
                let orig_len = endian.u32(&hdr[12..16]);
                if caplen > MAX_RECORD {
                    return Err(CaptureError::Malformed("record length too large"));
                }
                let mut data = vec![0u8; caplen as usize];
                if !read_full_or_eof(&mut self.inner, &mut data)? {
                    return Err(CaptureError::Malformed("file ends inside a packet record"));
                }
                let ts = Timestamp::from_units(u64::from(secs) * ups + u64::from(frac), ups);
                Ok(Some(Frame {
                    ts,
                    linktype: lt,
                    data,
                    orig_len,
                }))
            }
            Format::Pcapng { .. } => self.next_pcapng(),
        }
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            let Format::Pcapng { endian, interfaces } = &mut self.format else {
                unreachable!("next_pcapng is called only for pcapng");
            };
            let mut head = [0u8; 8];
            if !read_full_or_eof(&mut self.inner, &mut head)? {
                return Ok(None);
            }
            let block_type = endian.u32(&head[0..4]);
            if block_type == PCAPNG_SHB {
                // A new section may switch byte order and always forgets its interfaces. Its
                // length field is in the new order, so re-read it from the byte-order magic.
                let mut bom = [0u8; 4];
                self.inner.read_exact(&mut bom)?;
                let new_endian = match u32::from_le_bytes(bom) {
                    PCAPNG_BYTE_ORDER_MAGIC => Endian::Little,
                    0x4D3C_2B1A => Endian::Big,
                    _ => return Err(CaptureError::Malformed("bad byte-order magic")),
                };
                let len = new_endian.u32(&head[4..8]);
                skip_body(&mut self.inner, len, 12)?;
                *endian = new_endian;
                interfaces.clear();
                continue;
            }
            let len = endian.u32(&head[4..8]);
            if !(12..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
                return Err(CaptureError::Malformed("bad block length"));
            }
            let mut body = vec![0u8; len as usize - 8];
            if !read_full_or_eof(&mut self.inner, &mut body)? {
                return Err(CaptureError::Malformed("file ends inside a block"));
            }
            // The trailing copy of the length is not needed.
            let body = &body[..body.len() - 4];
            let e = *endian;
            match block_type {
                // Interface Description Block.
                1 => {
                    if body.len() < 8 {
                        return Err(CaptureError::Malformed("short interface block"));
                    }
                    let mut iface = Interface {
                        linktype: u32::from(e.u16(&body[0..2])),
                        snaplen: e.u32(&body[4..8]),
                        units_per_sec: 1_000_000,
                        offset_secs: 0,
                    };
                    for (code, val) in options(e, &body[8..]) {
                        match code {
                            // if_tsresol: 10^-n, or 2^-n when the top bit is set.
                            9 if !val.is_empty() => {
                                let n = u32::from(val[0] & 0x7F);
                                let ups = if val[0] & 0x80 != 0 {
                                    2u64.checked_pow(n)
                                } else {
                                    10u64.checked_pow(n)
                                };
                                iface.units_per_sec = ups
                                    .filter(|&u| u > 0)
                                    .ok_or(CaptureError::Malformed("if_tsresol out of range"))?;
                            }
                            // if_tsoffset.
                            14 if val.len() >= 8 => {
                                let hi = e.u32(&val[0..4]);
                                let lo = e.u32(&val[4..8]);
                                iface.offset_secs = ((u64::from(hi) << 32) | u64::from(lo)) as i64;
                            }
                            _ => {}
                        }
                    }
                    interfaces.push(iface);
                }
                // Enhanced Packet Block and the obsolete Packet Block.
                6 | 2 => {
                    if body.len() < 20 {
                        return Err(CaptureError::Malformed("short packet block"));
                    }
                    let if_id = if block_type == 6 {
                        e.u32(&body[0..4])
                    } else {
                        u32::from(e.u16(&body[0..2]))
                    };
                    let iface = *interfaces
                        .get(if_id as usize)
                        .ok_or(CaptureError::Malformed(
                            "packet names an undeclared interface",
                        ))?;
                    let ts_raw =
                        (u64::from(e.u32(&body[4..8])) << 32) | u64::from(e.u32(&body[8..12]));
                    let caplen = e.u32(&body[12..16]) as usize;
                    let orig_len = e.u32(&body[16..20]);
                    let data = body
                        .get(20..20 + caplen)
                        .ok_or(CaptureError::Malformed("packet longer than its block"))?
                        .to_vec();
                    let mut ts = Timestamp::from_units(ts_raw, iface.units_per_sec);
                    ts.secs += iface.offset_secs;
                    return Ok(Some(Frame {
                        ts,
                        linktype: iface.linktype,
                        data,
                        orig_len,
                    }));
                }
                // Simple Packet Block: no timestamp, always interface 0.
                3 => {
                    if body.len() < 4 {
                        return Err(CaptureError::Malformed("short simple packet block"));
                    }
                    let iface = *interfaces
                        .first()
                        .ok_or(CaptureError::Malformed("packet before any interface"))?;
                    let orig_len = e.u32(&body[0..4]);
                    let mut caplen = (orig_len as usize).min(body.len() - 4);
                    if iface.snaplen != 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    let data = body[4..4 + caplen].to_vec();
                    return Ok(Some(Frame {
                        ts: Timestamp::default(),
                        linktype: iface.linktype,
                        data,
                        orig_len,
                    }));
                }
                _ => {}
            }
        }
    }
}

/// Reads the rest of a Section Header Block whose type field was already consumed, and returns
/// the section's byte order.
fn read_shb_after_type<R: Read>(r: &mut R) -> Result<Endian, CaptureError> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    let endian = match u32::from_le_bytes([b[4], b[5], b[6], b[7]]) {
        PCAPNG_BYTE_ORDER_MAGIC => Endian::Little,
        0x4D3C_2B1A => Endian::Big,
        _ => return Err(CaptureError::Malformed("bad byte-order magic")),
    };
    let len = endian.u32(&b[0..4]);
    skip_body(r, len, 12)?;
    Ok(endian)
}

/// Skips the rest of a block of total length `len` of which `consumed` bytes were read.
fn skip_body<R: Read>(r: &mut R, len: u32, consumed: u32) -> Result<(), CaptureError> {
    if len < consumed + 4 || !len.is_multiple_of(4) || len > MAX_RECORD {
        return Err(CaptureError::Malformed("bad section header length"));
    }
    let n = u64::from(len - consumed);
    let copied = io::copy(&mut r.by_ref().take(n), &mut io::sink())?;
    if copied != n {
        return Err(CaptureError::Malformed("file ends inside a section header"));
    }
    Ok(())
}

/// Iterates over pcapng options `(code, value)` until `opt_endofopt` or the end.
fn options(e: Endian, mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let code = e.u16(&b[0..2]);
        let len = e.u16(&b[2..4]) as usize;
        if code == 0 || b.len() < 4 + len {
            return None;
        }
        let val = &b[4..4 + len];
        let padded = (4 + len + 3) & !3;
        b = b.get(padded..).unwrap_or(&[]);
        Some((code, val))
    })
}

/// Fills `buf`; `Ok(false)` on a clean end of file before the first byte, an error if the file
/// ends part way.
fn read_full_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool, CaptureError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(CaptureError::Malformed("file ends inside a record")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(magic_le: u32, big: bool, linktype: u32, recs: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            if big {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            if big {
                v.extend_from_slice(&x.to_be_bytes())
            } else {
                v.extend_from_slice(&x.to_le_bytes())
            }
        };
        let mut v = Vec::new();
        w32(&mut v, magic_le);
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        for &(s, frac, data) in recs {
            w32(&mut v, s);
            w32(&mut v, frac);
            w32(&mut v, data.len() as u32);
            w32(&mut v, data.len() as u32 + 4);
            v.extend_from_slice(data);
        }
        v
    }

    fn read_all(bytes: &[u8]) -> Vec<Frame> {
        let mut r = CaptureReader::new(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            out.push(f);
        }
        out
    }

    #[test]
    fn classic_pcap_all_four_magics() {
        for (big, nano) in [(false, false), (false, true), (true, false), (true, true)] {
            let magic = if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
            let frac = if nano { 123_456_789 } else { 123_456 };
            let bytes = pcap_file(magic, big, 1, &[(1_700_000_000, frac, b"abc"), (5, 0, b"")]);
            let frames = read_all(&bytes);
            assert_eq!(frames.len(), 2, "big={big} nano={nano}");
            assert_eq!(frames[0].linktype, 1);
            assert_eq!(frames[0].data, b"abc");
            assert_eq!(frames[0].orig_len, 7);
            assert_eq!(frames[0].ts.secs, 1_700_000_000);
            let want = if nano { 123_456_789 } else { 123_456_000 };
            assert_eq!(frames[0].ts.nanos, want);
            assert_eq!(frames[1].ts, Timestamp { secs: 5, nanos: 0 });
        }
    }

    #[test]
    fn classic_pcap_truncated_record_is_an_error() {
        let mut bytes = pcap_file(0xa1b2_c3d4, false, 1, &[(1, 0, b"abcdef")]);
        bytes.truncate(bytes.len() - 2);
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        assert!(matches!(r.next_frame(), Err(CaptureError::Malformed(_))));
    }

    #[test]
    fn unknown_magic_is_reported() {
        let err = CaptureReader::new(&b"GIF89a.........................."[..]).unwrap_err();
        assert!(matches!(err, CaptureError::UnknownFormat(0x4749_4638)));
    }

    fn block(big: bool, ty: u32, body: &[u8]) -> Vec<u8> {
        let mut padded = body.to_vec();
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let len = padded.len() as u32 + 12;
        let w = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let mut v = Vec::new();
        v.extend_from_slice(&w(ty));
        v.extend_from_slice(&w(len));
        v.extend_from_slice(&padded);
        v.extend_from_slice(&w(len));
        v
    }

    fn pcapng(big: bool) -> Vec<u8> {
        let w32 = |x: u32| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let w16 = |x: u16| {
            if big {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            }
        };
        let mut shb = Vec::new();
        shb.extend_from_slice(&w32(PCAPNG_BYTE_ORDER_MAGIC));
        shb.extend_from_slice(&w16(1));
        shb.extend_from_slice(&w16(0));
        shb.extend_from_slice(&[0xff; 8]); // section length unknown
        let mut v = block(big, PCAPNG_SHB, &shb);
        // Interface 0: Ethernet, default microseconds.
        let mut idb0 = Vec::new();
        idb0.extend_from_slice(&w16(1));
        idb0.extend_from_slice(&w16(0));
        idb0.extend_from_slice(&w32(0));
        v.extend(block(big, 1, &idb0));
        // Interface 1: SLL2 with nanosecond resolution (if_tsresol = 9) and a comment option.
        let mut idb1 = Vec::new();
        idb1.extend_from_slice(&w16(276));
        idb1.extend_from_slice(&w16(0));
        idb1.extend_from_slice(&w32(0));
        idb1.extend_from_slice(&w16(1));
        idb1.extend_from_slice(&w16(3));
        idb1.extend_from_slice(b"hi\0\0");
        idb1.extend_from_slice(&w16(9));
        idb1.extend_from_slice(&w16(1));
        idb1.extend_from_slice(&[9, 0, 0, 0]);
        idb1.extend_from_slice(&[0, 0, 0, 0]);
        v.extend(block(big, 1, &idb1));
        // An unknown block to skip (Name Resolution Block).
        v.extend(block(big, 4, &[0, 0, 0, 0]));
        let epb = |if_id: u32, ts: u64, data: &[u8]| {
            let mut b = Vec::new();
            b.extend_from_slice(&w32(if_id));
            b.extend_from_slice(&w32((ts >> 32) as u32));
            b.extend_from_slice(&w32(ts as u32));
            b.extend_from_slice(&w32(data.len() as u32));
            b.extend_from_slice(&w32(data.len() as u32));
            b.extend_from_slice(data);
            b
        };
        v.extend(block(big, 6, &epb(0, 1_700_000_000_250_000, b"hello")));
        v.extend(block(big, 6, &epb(1, 1_700_000_000_000_000_007, b"xy")));
        let mut spb = Vec::new();
        spb.extend_from_slice(&w32(3));
        spb.extend_from_slice(b"spb");
        v.extend(block(big, 3, &spb));
        v
    }

    #[test]
    fn pcapng_both_byte_orders() {
        for big in [false, true] {
            let frames = read_all(&pcapng(big));
            assert_eq!(frames.len(), 3, "big={big}");
            assert_eq!(frames[0].linktype, 1);
            assert_eq!(frames[0].data, b"hello");
            assert_eq!(
                frames[0].ts,
                Timestamp {
                    secs: 1_700_000_000,
                    nanos: 250_000_000
                }
            );
            assert_eq!(frames[1].linktype, 276);
            assert_eq!(frames[1].data, b"xy");
            assert_eq!(
                frames[1].ts,
                Timestamp {
                    secs: 1_700_000_000,
                    nanos: 7
                }
            );
            assert_eq!(frames[2].data, b"spb");
            assert_eq!(frames[2].linktype, 1);
        }
    }

    #[test]
    fn pcapng_second_section_switches_byte_order_and_interfaces() {
        let mut bytes = pcapng(false);
        bytes.extend(pcapng(true));
        let frames = read_all(&bytes);
        assert_eq!(frames.len(), 6);
        assert_eq!(frames[4].linktype, 276);
        assert_eq!(frames[4].ts.nanos, 7);
    }

    #[test]
    fn pcapng_packet_for_undeclared_interface_is_an_error() {
        let mut bytes = pcapng(false);
        let mut epb = Vec::new();
        for x in [7u32, 0, 0, 1, 1] {
            epb.extend_from_slice(&x.to_le_bytes());
        }
        epb.push(0);
        bytes.extend(block(false, 6, &epb));
        let mut r = CaptureReader::new(&bytes[..]).unwrap();
        for _ in 0..3 {
            r.next_frame().unwrap().unwrap();
        }
        assert!(matches!(r.next_frame(), Err(CaptureError::Malformed(_))));
    }

    #[test]
    fn timestamp_formats() {
        let ts = Timestamp {
            secs: 1_795_604_948,
            nanos: 340_140_000,
        };
        assert_eq!(ts.epoch_string(), "1795604948.340140000");
        assert_eq!(ts.iso_string(), "2026-11-25T11:09:08.340140Z");
        assert_eq!(
            Timestamp::default().iso_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let leap = Timestamp {
            secs: 951_782_400,
            nanos: 0,
        };
        assert_eq!(leap.iso_string(), "2000-02-29T00:00:00.000000Z");
    }
}
