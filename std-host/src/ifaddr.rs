//! This host's network interfaces, for every program: their addresses and flags
//! (`getifaddrs`) and indexes (`if_nametoindex`), for `-I` given as a name or an address, for
//! the default UID and for uftpdump's capture; which interfaces a daemon listens on
//! ([`choose_ifaces`]), and joining its multicast groups on them ([`join`]). Asking the kernel
//! which source address it would use towards a multicast group is not enough: on `lo` it
//! answers with another interface's address.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::{InterfaceIndexOrAddress, SockRef};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// Interface name.
    pub name: String,
    /// One of its addresses.
    pub addr: IpAddr,
}

/// Calls `f` with each interface's name, flags (`IFF_*`) and address (`None` for an entry
/// of another family, such as the `AF_PACKET` one every interface has), in the kernel's order.
fn walk(mut f: impl FnMut(String, u32, Option<IpAddr>)) {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own and must free with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let addr = if ifa.ifa_addr.is_null() {
            None
        } else {
            // SAFETY: ifa_addr is non-null and points at a sockaddr whose family says its type.
            match i32::from(unsafe { (*ifa.ifa_addr).sa_family }) {
                libc::AF_INET => {
                    // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
                    let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                    Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        sin.sin_addr.s_addr,
                    ))))
                }
                libc::AF_INET6 => {
                    // SAFETY: family AF_INET6 means the sockaddr is a sockaddr_in6.
                    let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                    Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
                }
                _ => None,
            }
        };
        f(name, ifa.ifa_flags, addr);
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
}

/// Every IPv4 and IPv6 address of every interface, in the kernel's order.
pub fn all() -> Vec<IfAddr> {
    let mut out = Vec::new();
    walk(|name, _, addr| {
        if let Some(addr) = addr {
            out.push(IfAddr { name, addr });
        }
    });
    out
}

/// Every interface (with an address or not): name, index and flags, by index.
fn interfaces() -> Vec<(String, u32, u32)> {
    let mut out: Vec<(String, u32, u32)> = Vec::new();
    walk(|name, flags, _| {
        if out.iter().all(|(n, _, _)| *n != name) {
            if let Ok(index) = index_of(&name) {
                out.push((name, index, flags));
            }
        }
    });
    out.sort_by_key(|(_, i, _)| *i);
    out
}

/// The index of network interface `name`.
pub fn index_of(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; if_nametoindex only
    // reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {name:?}"),
        ))
    } else {
        Ok(idx)
    }
}

/// The first IPv4 address of interface `name`.
pub fn ipv4_of(name: &str) -> Option<Ipv4Addr> {
    all().into_iter().find_map(|a| match a.addr {
        IpAddr::V4(v4) if a.name == name => Some(v4),
        _ => None,
    })
}

/// The interface that holds `addr`.
pub fn name_of(addr: IpAddr) -> Option<String> {
    all().into_iter().find(|a| a.addr == addr).map(|a| a.name)
}

/// A network interface to listen on.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub index: u32,
    pub ipv4: Option<Ipv4Addr>,
}

/// The interfaces a daemon listens on (`-I`, names or addresses): by default every one that
/// is up and multicast-capable, but loopback.
pub fn choose_ifaces(wanted: &[String]) -> Result<Vec<Iface>, String> {
    const IFF_UP: u32 = libc::IFF_UP as u32;
    const IFF_LOOPBACK: u32 = libc::IFF_LOOPBACK as u32;
    const IFF_MULTICAST: u32 = libc::IFF_MULTICAST as u32;
    let all = interfaces();
    if wanted.is_empty() {
        let v: Vec<Iface> = all
            .iter()
            .filter(|(_, _, f)| f & IFF_UP != 0 && f & IFF_MULTICAST != 0 && f & IFF_LOOPBACK == 0)
            .map(|(n, i, _)| Iface {
                name: n.clone(),
                index: *i,
                ipv4: ipv4_of(n),
            })
            .collect();
        if v.is_empty() {
            return Err("no multicast-capable interface is up (use -I)".into());
        }
        return Ok(v);
    }
    wanted
        .iter()
        .map(|w| {
            let by_name = all.iter().find(|(n, _, _)| n == w);
            let found = match (by_name, w.parse::<IpAddr>()) {
                (Some(x), _) => Some(x.clone()),
                (None, Ok(ip)) => {
                    name_of(ip).and_then(|name| all.iter().find(|(n, _, _)| *n == name).cloned())
                }
                _ => None,
            };
            let (name, index, _) =
                found.ok_or_else(|| format!("interface `{w}` not found (-I)"))?;
            let ipv4 = ipv4_of(&name);
            Ok(Iface { name, index, ipv4 })
        })
        .collect()
}

/// Joins (or with `leave`, leaves) `group` on each of `ifaces`.
pub fn join(sock: &UdpSocket, group: IpAddr, ifaces: &[Iface], leave: bool) -> io::Result<()> {
    let s = SockRef::from(sock);
    for i in ifaces {
        let r = match group {
            IpAddr::V4(g) => {
                let ifx = InterfaceIndexOrAddress::Index(i.index);
                if leave {
                    s.leave_multicast_v4_n(&g, &ifx)
                } else {
                    s.join_multicast_v4_n(&g, &ifx)
                }
            }
            IpAddr::V6(g) => {
                if leave {
                    s.leave_multicast_v6(&g, i.index)
                } else {
                    s.join_multicast_v6(&g, i.index)
                }
            }
        };
        r.map_err(|e| io::Error::new(e.kind(), format!("{group} on {}: {e}", i.name)))?;
    }
    Ok(())
}

/// Maps an address as received on a dual-stack socket back to plain IPv4.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => a,
        },
        a => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_127_0_0_1() {
        assert_eq!(ipv4_of("lo"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            name_of(IpAddr::V4(Ipv4Addr::LOCALHOST)).as_deref(),
            Some("lo")
        );
    }

    #[test]
    fn unknown_interface_is_a_clear_error() {
        let e = index_of("no-such-if0").unwrap_err();
        assert!(e.to_string().contains("no-such-if0"));
    }

    #[test]
    fn loopback_is_listed_but_not_chosen_by_default() {
        let lo = index_of("lo").unwrap();
        assert!(interfaces().iter().any(|(n, i, _)| n == "lo" && *i == lo));
        if let Ok(chosen) = choose_ifaces(&[]) {
            assert!(chosen.iter().all(|i| i.name != "lo"));
        }
        let by_addr = choose_ifaces(&["127.0.0.1".into()]).unwrap();
        assert_eq!(by_addr[0].name, "lo");
        assert_eq!(by_addr[0].ipv4, Some(Ipv4Addr::LOCALHOST));
    }
}
