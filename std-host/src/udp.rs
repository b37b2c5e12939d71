//! Batched UDP: many datagrams per system call.
//!
//! The data path is CPU-bound: at a few hundred Mbit/s every datagram's trip through the kernel
//! costs more than the protocol work on it. [`TxBatch`] queues the datagrams one
//! `poll_transmit` loop produces and hands them to the kernel with one `sendmmsg`, joining runs
//! of equal-sized datagrams to the same destination into one UDP GSO buffer (`UDP_SEGMENT`), so
//! the stack (and, on veth and bridges, the whole path) handles one buffer instead of dozens.
//! [`RxBatch`] takes up to [`RX_SLOTS`] datagrams per `recvmmsg`, with UDP GRO (`UDP_GRO`) where
//! the kernel offers it, so coalesced datagrams arrive as one buffer and are split here.
//!
//! Both fall back to plain per-datagram behaviour when the kernel refuses an offload: GSO is
//! switched off for good after the first `EIO`/`EINVAL`/`ENOPROTOOPT` from a segmented send (the
//! batch is then resent unsegmented), and GRO is simply not asked for.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

/// Most datagrams one `sendmmsg` carries.
pub const TX_SLOTS: usize = 64;
/// Most `recvmmsg` messages per call.
pub const RX_SLOTS: usize = 32;
/// Largest UDP payload (and GSO/GRO buffer).
const MAX_UDP: usize = 65_507;
/// Most segments in one GSO buffer (the kernel's `UDP_MAX_SEGMENTS` is 64 on older kernels).
const MAX_SEGMENTS: usize = 64;

const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;

/// Whether to try UDP GSO: yes unless `UFTP_RS_NO_GSO` is set in the environment (a switch for
/// measuring what segmentation offload buys, or for a path that mishandles it).
pub fn gso_wanted() -> bool {
    std::env::var_os("UFTP_RS_NO_GSO").is_none()
}

/// Datagrams waiting to be sent together.
#[derive(Debug)]
pub struct TxBatch {
    buf: Vec<u8>,
    /// (destination, start in `buf`, length), in send order, back to back in `buf`.
    queued: Vec<(SocketAddr, usize, usize)>,
    slot: usize,
    gso: bool,
    /// Datagrams the kernel refused for a reason the protocol recovers from (full queue,
    /// unreachable peer), since the last [`TxBatch::take_dropped`].
    dropped: u64,
}

impl TxBatch {
    /// A batch for datagrams of at most `max_len` bytes; GSO is tried when `gso` is set.
    pub fn new(max_len: usize, gso: bool) -> TxBatch {
        TxBatch {
            buf: vec![0; max_len * TX_SLOTS],
            queued: Vec::with_capacity(TX_SLOTS),
            slot: max_len,
            gso,
            dropped: 0,
        }
    }

    /// Whether another datagram fits.
    pub fn has_room(&self) -> bool {
        self.queued.len() < TX_SLOTS
    }

    /// Number of datagrams queued.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// The buffer for the next datagram: write it there, then [`TxBatch::push`] its length.
    pub fn next_buf(&mut self) -> &mut [u8] {
        let start = self.end();
        &mut self.buf[start..start + self.slot]
    }

    /// Queues the datagram just written into [`TxBatch::next_buf`].
    pub fn push(&mut self, dest: SocketAddr, len: usize) {
        debug_assert!(len <= self.slot && self.has_room());
        let start = self.end();
        self.queued.push((dest, start, len));
    }

    fn end(&self) -> usize {
        self.queued.last().map_or(0, |&(_, s, l)| s + l)
    }

    /// Datagrams dropped by the kernel for transient reasons since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// Sends everything queued. Transient refusals (`ENOBUFS`, `EAGAIN`, `ECONNREFUSED`,
    /// `EHOSTUNREACH`) drop the datagram, as the protocol resends what is lost; other errors are
    /// returned with the destination concerned, and the batch is emptied either way.
    pub fn flush(&mut self, sock: &impl AsRawFd) -> Result<(), (SocketAddr, io::Error)> {
        let result = self.send_all(sock.as_raw_fd());
        self.queued.clear();
        result
    }

    fn send_all(&mut self, fd: RawFd) -> Result<(), (SocketAddr, io::Error)> {
        let mut first = 0;
        while first < self.queued.len() {
            // Group the queue into messages: runs for GSO, single datagrams otherwise.
            let mut msgs: Vec<Msg> = Vec::with_capacity(self.queued.len() - first);
            let mut i = first;
            while i < self.queued.len() {
                let (dest, start, len) = self.queued[i];
                let mut n = 1;
                let mut total = len;
                if self.gso {
                    while i + n < self.queued.len() && n < MAX_SEGMENTS {
                        let (d, _, l) = self.queued[i + n];
                        // Segments must share the destination and size; only the last may be
                        // shorter.
                        if d != dest || l > len || total + l > MAX_UDP {
                            break;
                        }
                        total += l;
                        n += 1;
                        if l < len {
                            break;
                        }
                    }
                }
                msgs.push(Msg {
                    dest: SockAddr::from(dest),
                    start,
                    len: total,
                    seg: if n > 1 { len as u16 } else { 0 },
                    count: n,
                });
                i += n;
            }
            let sent = send_mmsg(fd, &self.buf, &mut msgs);
            match sent {
                Ok(k) => {
                    first += msgs[..k].iter().map(|m| m.count).sum::<usize>();
                }
                Err(e) => {
                    let m = &msgs[0];
                    match e.raw_os_error() {
                        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                            if m.seg != 0 && self.gso =>
                        {
                            // The path cannot segment: plain datagrams from now on.
                            self.gso = false;
                        }
                        Some(libc::EINTR) => {}
                        Some(
                            libc::ENOBUFS
                            | libc::EAGAIN
                            | libc::ECONNREFUSED
                            | libc::EHOSTUNREACH
                            | libc::ENETUNREACH,
                        ) => {
                            self.dropped += m.count as u64;
                            first += m.count;
                        }
                        _ => return Err((self.queued[first].0, e)),
                    }
                }
            }
        }
        Ok(())
    }
}

struct Msg {
    dest: SockAddr,
    start: usize,
    len: usize,
    seg: u16,
    count: usize,
}

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
struct SockAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl From<SocketAddr> for SockAddr {
    fn from(a: SocketAddr) -> SockAddr {
        // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match a {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
                unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        SockAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }
}

impl SockAddr {
    fn empty() -> SockAddr {
        SockAddr {
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid value.
            storage: unsafe { zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    fn to_std(self) -> Option<SocketAddr> {
        match libc::c_int::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin: libc::sockaddr_in =
                    unsafe { std::ptr::read((&raw const self.storage).cast()) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6: libc::sockaddr_in6 =
                    unsafe { std::ptr::read((&raw const self.storage).cast()) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Room for one `UDP_SEGMENT`/`UDP_GRO` control message.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Cmsg([u8; 32]);

fn send_mmsg(fd: RawFd, buf: &[u8], msgs: &mut [Msg]) -> io::Result<usize> {
    let n = msgs.len();
    let mut iovs: Vec<libc::iovec> = Vec::with_capacity(n);
    let mut cmsgs: Vec<Cmsg> = vec![Cmsg([0; 32]); n];
    // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
    let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { zeroed() }).collect();
    for m in msgs.iter() {
        iovs.push(libc::iovec {
            iov_base: buf[m.start..m.start + m.len].as_ptr() as *mut libc::c_void,
            iov_len: m.len,
        });
    }
    for (k, m) in msgs.iter_mut().enumerate() {
        let h = &mut hdrs[k].msg_hdr;
        h.msg_name = (&raw mut m.dest.storage).cast();
        h.msg_namelen = m.dest.len;
        h.msg_iov = &raw mut iovs[k];
        h.msg_iovlen = 1;
        if m.seg != 0 {
            let c = &mut cmsgs[k];
            h.msg_control = c.0.as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE only computes a size.
            h.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as _;
            // SAFETY: msg_control points at 32 aligned bytes, enough for one u16 cmsg, so
            // CMSG_FIRSTHDR returns a valid header pointer into it.
            unsafe {
                let cm = libc::CMSG_FIRSTHDR(h);
                (*cm).cmsg_level = libc::SOL_UDP;
                (*cm).cmsg_type = UDP_SEGMENT;
                (*cm).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cm).cast::<u16>(), m.seg);
            }
        }
    }
    // SAFETY: every header points at live iovecs, addresses and control buffers above, which
    // outlive the call; the kernel only reads them (and writes msg_len).
    let r = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Sets the receive buffer to `size` bytes even above `net.core.rmem_max` where the process may
/// (`SO_RCVBUFFORCE`, root or `CAP_NET_ADMIN`); false where it may not.
pub fn force_recv_buffer(sock: &impl AsRawFd, size: usize) -> bool {
    let v = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    // SAFETY: a plain setsockopt with a pointer to a live int and its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Asks the kernel to coalesce received datagrams (UDP GRO); false where it cannot.
pub fn enable_gro(sock: &impl AsRawFd) -> bool {
    let one: libc::c_int = 1;
    // SAFETY: a plain setsockopt with a pointer to a live int and its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            UDP_GRO,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

/// Buffers for receiving many datagrams at once.
pub struct RxBatch {
    bufs: Vec<u8>,
    slot: usize,
    addrs: Vec<SockAddr>,
    cmsgs: Vec<Cmsg>,
    /// (length, GRO segment size or 0) per message of the last receive.
    got: Vec<(usize, usize)>,
}

impl std::fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("got", &self.got.len())
            .finish()
    }
}

impl RxBatch {
    /// Room for [`RX_SLOTS`] messages of up to 64 KiB each (a GRO buffer).
    pub fn new() -> RxBatch {
        let slot = 65_536;
        RxBatch {
            bufs: vec![0; slot * RX_SLOTS],
            slot,
            addrs: vec![SockAddr::empty(); RX_SLOTS],
            cmsgs: vec![Cmsg([0; 32]); RX_SLOTS],
            got: Vec::with_capacity(RX_SLOTS),
        }
    }

    /// Receives what is queued, waiting (up to the socket's receive timeout) for the first
    /// datagram only. Returns the number of messages; `WouldBlock`/`TimedOut` when none came.
    pub fn recv(&mut self, sock: &impl AsRawFd) -> io::Result<usize> {
        self.got.clear();
        let n = RX_SLOTS;
        let mut iovs: Vec<libc::iovec> = Vec::with_capacity(n);
        for k in 0..n {
            iovs.push(libc::iovec {
                iov_base: self.bufs[k * self.slot..].as_mut_ptr().cast(),
                iov_len: self.slot,
            });
        }
        // SAFETY: mmsghdr is plain data; all zeroes is a valid value.
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { zeroed() }).collect();
        for (k, h) in hdrs.iter_mut().enumerate() {
            self.addrs[k] = SockAddr::empty();
            let m = &mut h.msg_hdr;
            m.msg_name = (&raw mut self.addrs[k].storage).cast();
            m.msg_namelen = self.addrs[k].len;
            m.msg_iov = &raw mut iovs[k];
            m.msg_iovlen = 1;
            m.msg_control = self.cmsgs[k].0.as_mut_ptr().cast();
            m.msg_controllen = self.cmsgs[k].0.len() as _;
        }
        // SAFETY: each header points at a live, distinct slot of `bufs`, address and control
        // buffer, each of the stated length; they outlive the call.
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        for (k, h) in hdrs.iter().take(r as usize).enumerate() {
            self.addrs[k].len = h.msg_hdr.msg_namelen;
            let mut seg = 0usize;
            let m = &h.msg_hdr;
            // SAFETY: the kernel filled msg_control with msg_controllen bytes of control
            // messages; CMSG_FIRSTHDR/NXTHDR walk exactly those.
            unsafe {
                let mut cm = libc::CMSG_FIRSTHDR(m);
                while !cm.is_null() {
                    if (*cm).cmsg_level == libc::SOL_UDP && (*cm).cmsg_type == UDP_GRO {
                        seg = std::ptr::read_unaligned(libc::CMSG_DATA(cm).cast::<libc::c_int>())
                            as usize;
                    }
                    cm = libc::CMSG_NXTHDR(m, cm);
                }
            }
            self.got.push((h.msg_len as usize, seg));
        }
        Ok(r as usize)
    }

    /// Calls `f` with every datagram of the last receive (GRO buffers split into their
    /// datagrams), with its source address.
    pub fn for_each(&mut self, mut f: impl FnMut(SocketAddr, &mut [u8])) {
        for k in 0..self.got.len() {
            let (len, seg) = self.got[k];
            let Some(from) = self.addrs[k].to_std() else {
                continue;
            };
            let msg = &mut self.bufs[k * self.slot..k * self.slot + len];
            if seg == 0 || seg >= len {
                f(from, msg);
            } else {
                for d in msg.chunks_mut(seg) {
                    f(from, d);
                }
            }
        }
    }
}

impl Default for RxBatch {
    fn default() -> RxBatch {
        RxBatch::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn pair() -> (UdpSocket, UdpSocket) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        (tx, rx)
    }

    /// Every datagram arrives whole, in order and with its own length, whichever way the
    /// kernel carried them (GSO runs, a short last segment, a different destination between).
    fn round_trip(gso: bool, gro: bool) {
        let (tx, rx) = pair();
        let (_, other) = pair();
        if gro {
            enable_gro(&rx);
        }
        let dest = rx.local_addr().unwrap();
        let mut batch = TxBatch::new(1500, gso);
        let mut want = Vec::new();
        for i in 0..TX_SLOTS {
            let len = if i == 40 { 700 } else { 1324 };
            let to = if i == 50 {
                other.local_addr().unwrap()
            } else {
                dest
            };
            let b = batch.next_buf();
            for (j, x) in b[..len].iter_mut().enumerate() {
                *x = (i * 7 + j) as u8;
            }
            batch.push(to, len);
            if to == dest {
                want.push((i, len));
            }
        }
        batch.flush(&tx).unwrap();
        assert!(batch.is_empty());
        let mut got = Vec::new();
        let mut rb = RxBatch::new();
        while got.len() < want.len() {
            rb.recv(&rx).unwrap();
            rb.for_each(|from, d| {
                assert_eq!(from, tx.local_addr().unwrap());
                got.push(d.to_vec());
            });
        }
        assert_eq!(got.len(), want.len());
        for (d, &(i, len)) in got.iter().zip(&want) {
            assert_eq!(d.len(), len, "datagram {i}");
            assert!(d.iter().enumerate().all(|(j, &x)| x == (i * 7 + j) as u8));
        }
    }

    #[test]
    fn batches_arrive_datagram_by_datagram() {
        round_trip(false, false);
        round_trip(true, false);
        round_trip(true, true);
        round_trip(false, true);
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_still_go() {
        let (tx, rx) = pair();
        let mut batch = TxBatch::new(1500, true);
        // A closed port on loopback: at most an ECONNREFUSED later, never an error that stops
        // the batch.
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        for to in [closed, rx.local_addr().unwrap()] {
            let b = batch.next_buf();
            b[..3].copy_from_slice(b"abc");
            batch.push(to, 3);
        }
        batch.flush(&tx).unwrap();
        let mut rb = RxBatch::new();
        assert_eq!(rb.recv(&rx).unwrap(), 1);
        rb.for_each(|_, d| assert_eq!(d, b"abc"));
    }
}
