//! Live sources for uftpdump: an `AF_PACKET` capture on one interface (Linux, needs
//! `CAP_NET_RAW`), and a plain UDP socket that joins multicast groups (`--listen`, no privilege).
//!
//! Both poll a stop flag between reads (a 200 ms receive timeout), so Ctrl-C ends them cleanly.
// This is the one module of std-host that talks to the kernel below what std and socket2 offer
// (packet sockets, `recvmsg` control data); each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::mem::{self, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, MsgHdrMut, Protocol, SockAddr, Socket, Type};

use super::capture::{linktype, Frame, Timestamp};

/// How often blocking reads wake up to check the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Largest datagram or frame read (the UDP maximum).
const MAX_DATAGRAM: usize = 65_536;

fn receive_timeout(fd: &OwnedFd) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: POLL.as_micros() as libc::suseconds_t,
    };
    // SAFETY: `fd` is an open socket; the option value points to a live `timeval` whose size is
    // passed alongside it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A packet socket bound to one interface, delivering IP packets (cooked `SOCK_DGRAM` mode, so
/// every interface type yields the same framing: link type RAW).
#[derive(Debug)]
pub struct PacketCapture {
    fd: OwnedFd,
    loopback: bool,
}

impl PacketCapture {
    /// Opens the capture on `iface`. Fails with `PermissionDenied` without `CAP_NET_RAW`.
    pub fn open(iface: &str) -> io::Result<Self> {
        let ifindex = crate::ifaddr::index_of(iface)?;
        let proto_all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto_all)) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a socket descriptor we just opened and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data, for which all-zero bytes are a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto_all;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: the address points to a live sockaddr_ll and its exact size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        receive_timeout(&fd)?;
        Ok(PacketCapture {
            fd,
            loopback: iface == "lo",
        })
    }

    /// The next frame, or `None` when `stop` was raised.
    pub fn next_frame(&mut self, stop: &AtomicBool) -> io::Result<Option<Frame>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
            let mut sll: libc::sockaddr_ll = unsafe { mem::zeroed() };
            let mut sll_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes; `sll`/`sll_len`
            // describe a live sockaddr_ll the kernel may fill, and the kernel never writes past
            // `sll_len`.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_TRUNC,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut sll_len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            // On loopback every packet is seen twice, leaving and arriving; keep one copy, as
            // libpcap does.
            if self.loopback && sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let orig_len = n as usize;
            let caplen = orig_len.min(buf.len());
            return Ok(Some(Frame {
                ts: Timestamp::now(),
                linktype: linktype::RAW,
                data: buf[..caplen].to_vec(),
                orig_len: orig_len as u32,
            }));
        }
    }
}

/// One datagram received by [`Listener`].
#[derive(Debug, Clone)]
pub struct Datagram {
    /// When it arrived.
    pub ts: Timestamp,
    /// Sender.
    pub src: SocketAddr,
    /// The address it was sent to (the group, for multicast), from `IP_PKTINFO`.
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// UDP sockets bound to the UFTP port that joined multicast groups; a thread per address
/// family feeds one channel.
#[derive(Debug)]
pub struct Listener {
    rx: mpsc::Receiver<io::Result<Datagram>>,
    sockets: Vec<Arc<Socket>>,
    v4_iface: Ipv4Addr,
    v6_iface: u32,
}

impl Listener {
    /// Binds `port` on IPv4 (and on IPv6 if any group is IPv6) and joins `groups`. IPv4 groups
    /// are joined on the interface with address `v4_iface` (unspecified: the kernel's choice),
    /// IPv6 groups on interface index `v6_iface` (0: the kernel's choice).
    pub fn open(
        port: u16,
        groups: &[IpAddr],
        v4_iface: Ipv4Addr,
        v6_iface: u32,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let mut sockets = Vec::new();
        let v4 = Arc::new(bind_udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?);
        sockets.push(v4.clone());
        if groups.iter().any(IpAddr::is_ipv6) {
            let v6 = Arc::new(bind_udp(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))?);
            sockets.push(v6);
        }
        let mut me = Listener {
            rx,
            sockets,
            v4_iface,
            v6_iface,
        };
        for g in groups {
            me.join(*g)?;
        }
        for sock in &me.sockets {
            let (sock, tx, stop) = (sock.clone(), tx.clone(), stop.clone());
            std::thread::spawn(move || {
                let local_port = port;
                while !stop.load(Ordering::Relaxed) {
                    match recv_with_dst(&sock, local_port) {
                        Ok(Some(d)) => {
                            if tx.send(Ok(d)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        }
        Ok(me)
    }

    /// Joins one more group (for example the private group an ANNOUNCE names). Joining a group
    /// twice is not an error.
    pub fn join(&mut self, group: IpAddr) -> io::Result<()> {
        let res = match group {
            IpAddr::V4(g) if g.is_multicast() => {
                self.sockets[0].join_multicast_v4(&g, &self.v4_iface)
            }
            IpAddr::V6(g) if g.is_multicast() => match self.sockets.get(1) {
                Some(s) => s.join_multicast_v6(&g, self.v6_iface),
                None => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "IPv6 groups need an IPv6 group in -M at start",
                )),
            },
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{group} is not a multicast address"),
                ))
            }
        };
        match res {
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => Ok(()),
            other => other.map_err(|e| io::Error::new(e.kind(), format!("joining {group}: {e}"))),
        }
    }

    /// The next datagram; `Ok(None)` after 200 ms with nothing received.
    pub fn next(&self) -> io::Result<Option<Datagram>> {
        match self.rx.recv_timeout(POLL) {
            Ok(r) => r.map(Some),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
        }
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Share the port with a uftpd that also set SO_REUSEADDR; multicast reaches both.
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    let (level, opt) = if addr.is_ipv6() {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    let on: libc::c_int = 1;
    // SAFETY: `sock` is open; the value points to a live c_int whose size is passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&on as *const libc::c_int).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    sock.set_read_timeout(Some(POLL))?;
    sock.bind(&SockAddr::from(addr)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("binding UDP {addr}: {e} (is uftpd running on it?)"),
        )
    })?;
    Ok(sock)
}

fn recv_with_dst(sock: &Socket, port: u16) -> io::Result<Option<Datagram>> {
    let mut buf = vec![MaybeUninit::new(0u8); MAX_DATAGRAM];
    let mut control = [MaybeUninit::new(0u8); 128];
    let mut from = SockAddr::from(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let (n, control_len) = {
        let mut bufs = [socket2::MaybeUninitSlice::new(&mut buf)];
        let mut msg = MsgHdrMut::new()
            .with_addr(&mut from)
            .with_buffers(&mut bufs)
            .with_control(&mut control);
        match sock.recvmsg(&mut msg, 0) {
            Ok(n) => (n, msg.control_len()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    };
    // SAFETY: both buffers were fully initialised (with zeros) before the call, and
    // MaybeUninit<u8> has the layout of u8.
    let (payload, control): (&[u8], &[u8]) = unsafe {
        (
            std::slice::from_raw_parts(buf.as_ptr().cast(), n.min(buf.len())),
            std::slice::from_raw_parts(control.as_ptr().cast(), control_len.min(control.len())),
        )
    };
    let src = from
        .as_socket()
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let dst_ip = pktinfo_dst(control).unwrap_or(match src {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let dst = match dst_ip {
        IpAddr::V4(a) => SocketAddr::V4(SocketAddrV4::new(a, port)),
        IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, port, 0, 0)),
    };
    Ok(Some(Datagram {
        ts: Timestamp::now(),
        src,
        dst,
        payload: payload.to_vec(),
    }))
}

/// Finds the destination address in `IP_PKTINFO` / `IPV6_PKTINFO` control data. Reads the
/// `cmsghdr` layout (length as `size_t`, level, type, data aligned to `size_t`) from bytes
/// rather than through the CMSG_* macros.
fn pktinfo_dst(control: &[u8]) -> Option<IpAddr> {
    let word = mem::size_of::<usize>();
    let hdr = mem::size_of::<libc::cmsghdr>();
    let align = |x: usize| (x + word - 1) & !(word - 1);
    let mut at = 0;
    while at + hdr <= control.len() {
        let len = usize::from_ne_bytes(control[at..at + word].try_into().ok()?);
        let level = i32::from_ne_bytes(control[at + word..at + word + 4].try_into().ok()?);
        let ty = i32::from_ne_bytes(control[at + word + 4..at + word + 8].try_into().ok()?);
        if len < hdr || at + len > control.len() {
            return None;
        }
        let data = &control[at + align(hdr)..at + len];
        if level == libc::IPPROTO_IP && ty == libc::IP_PKTINFO && data.len() >= 12 {
            // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
            let a: [u8; 4] = data[8..12].try_into().ok()?;
            return Some(IpAddr::V4(Ipv4Addr::from(a)));
        }
        if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO && data.len() >= 16 {
            // struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
            let a: [u8; 16] = data[0..16].try_into().ok()?;
            return Some(IpAddr::V6(Ipv6Addr::from(a)));
        }
        at += align(len);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pktinfo_is_found_in_control_data() {
        let word = mem::size_of::<usize>();
        let hdr = mem::size_of::<libc::cmsghdr>();
        let mut c = Vec::new();
        c.extend_from_slice(&(hdr + 12).to_ne_bytes());
        c.extend_from_slice(&libc::IPPROTO_IP.to_ne_bytes());
        c.extend_from_slice(&libc::IP_PKTINFO.to_ne_bytes());
        c.resize(hdr, 0);
        c.extend_from_slice(&[2, 0, 0, 0, 10, 0, 0, 1, 230, 5, 5, 9]);
        while c.len() % word != 0 {
            c.push(0);
        }
        assert_eq!(
            pktinfo_dst(&c),
            Some(IpAddr::V4(Ipv4Addr::new(230, 5, 5, 9)))
        );
        assert_eq!(pktinfo_dst(&c[..hdr]), None);
        assert_eq!(pktinfo_dst(&[]), None);
    }

    #[test]
    fn listener_receives_loopback_datagram_with_destination() {
        let stop = Arc::new(AtomicBool::new(false));
        // Port 0 is not allowed for the listener's fixed port; pick a free one first.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let l = Listener::open(port, &[], Ipv4Addr::UNSPECIFIED, 0, stop.clone()).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"\x40\x01hello", ("127.0.0.1", port)).unwrap();
        let mut got = None;
        for _ in 0..25 {
            if let Some(d) = l.next().unwrap() {
                got = Some(d);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let d = got.expect("datagram arrives");
        assert_eq!(d.payload, b"\x40\x01hello");
        assert_eq!(d.src, tx.local_addr().unwrap());
        assert_eq!(d.dst, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
}
