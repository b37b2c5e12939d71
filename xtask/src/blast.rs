//! `cargo xtask blast`: the raw multicast ceiling of the benchmarks' testbed, with no protocol at
//! all. A sender blasts FILESEG-sized datagrams (1324 bytes: a `-b 1300` FILESEG, unencrypted)
//! unpaced to a multicast group with UDP segmentation offload (`UDP_SEGMENT`, 64 KiB
//! superbuffers) and `sendmmsg`, or `sendmmsg` alone; receivers count bytes with `recvmmsg`.
//! The workers are this very program (`xtask blast-send|blast-recv`) run inside the testbed's
//! namespaces.

use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::testbed::{scratch, testbed};
use testnet::{try_require_root_tools, Proc, Testbed};

/// A `-b 1300` FILESEG without encryption: 24 bytes of headers and 1300 of data.
pub const DATAGRAM: usize = 1324;
const GROUP: &str = "239.78.0.1";
const PORT: &str = "17044";

/// What one blast measured.
#[derive(Debug, Clone)]
pub struct Blast {
    /// Whether the sender used UDP GSO (false: plain `sendmmsg`, asked for or fallen back to).
    pub gso: bool,
    /// The sender's rate, Mbit/s of datagram payload.
    pub sent_mbps: f64,
    /// Per receiver: Mbit/s of datagram payload received, and datagrams lost (%).
    pub receivers: Vec<(f64, f64)>,
}

impl Blast {
    /// The median receiver's rate.
    pub fn median_mbps(&self) -> f64 {
        crate::bench::median(self.receivers.iter().map(|r| r.0).collect())
    }
}

/// `cargo xtask blast [--receivers N] [--size MiB]`.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut receivers = 4usize;
    let mut size_mib = 512u64;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--receivers" => {
                receivers = args.next().context("--receivers needs N")?.parse()?;
            }
            "--size" => size_mib = args.next().context("--size needs MiB")?.parse()?,
            "-h" | "--help" => {
                println!(
                    "usage: cargo xtask blast [--receivers N (4)] [--size MiB (512)]\n\
                     The raw multicast ceiling of the bench testbed (root)."
                );
                return Ok(());
            }
            other => bail!("blast: unknown option `{other}` (--receivers N, --size MiB)"),
        }
    }
    try_require_root_tools()?;
    crate::sys::catch_interrupts();
    crate::testbed::remove_stale();
    let _scratch = crate::bench::RemoveOnDrop(scratch());
    let results = run(receivers, size_mib << 20)?;
    for b in &results {
        println!("{}", describe(b));
    }
    Ok(())
}

/// One line about a blast.
pub fn describe(b: &Blast) -> String {
    let per: Vec<String> = b
        .receivers
        .iter()
        .map(|(mbps, loss)| format!("{mbps:.0} ({loss:.1}% lost)"))
        .collect();
    format!(
        "blast {}: sender {:.0} Mbit/s; receivers Mbit/s: {}",
        if b.gso {
            "UDP GSO + sendmmsg"
        } else {
            "sendmmsg"
        },
        b.sent_mbps,
        per.join(", ")
    )
}

/// Blasts `bytes` to `receivers` receivers twice (GSO, then plain `sendmmsg`) on a fresh
/// testbed at MTU 1500 without loss.
pub fn run(receivers: usize, bytes: u64) -> Result<Vec<Blast>> {
    let bed = testbed(receivers, 1500)?;
    let dir = scratch().join("blast");
    std::fs::create_dir_all(&dir)?;
    let mut out = Vec::new();
    for gso in [true, false] {
        let b = once(&bed, &dir, bytes, gso)?;
        eprintln!("{}", describe(&b));
        out.push(b);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

fn once(bed: &Testbed, dir: &Path, bytes: u64, gso: bool) -> Result<Blast> {
    let exe = std::env::current_exe()?;
    let mut recv = Vec::new();
    for (i, h) in bed.receivers().iter().enumerate() {
        let mut cmd = h.command(&exe);
        cmd.args(["blast-recv", GROUP, PORT, &h.ipv4]);
        let mut p = Proc::try_spawn(
            &format!("blast receiver {}", i + 1),
            cmd,
            &dir.join(format!("recv{}.log", i + 1)),
        )?;
        p.try_wait_for_line("ready", Duration::from_secs(10), crate::sys::interrupted)?;
        recv.push(p);
    }
    let mut cmd = bed.sender().command(&exe);
    cmd.args([
        "blast-send",
        GROUP,
        PORT,
        &bed.sender().ipv4,
        &bytes.to_string(),
        if gso { "gso" } else { "plain" },
    ]);
    let mut sender = Proc::try_spawn("blast sender", cmd, &dir.join("send.log"))?;
    let code = sender.try_wait(Duration::from_secs(300), crate::sys::interrupted)?;
    let log = sender.log_text();
    if code != 0 {
        bail!("blast sender failed ({code}):\n{log}");
    }
    let nums = last_numbers(&log, "sent")?;
    let (sent_bytes, sent_dgrams, secs) = (nums[0], nums[1], nums[2]);
    let used_gso = log.contains("gso=yes");
    let mut receivers = Vec::new();
    for r in &mut recv {
        let code = r.try_wait(Duration::from_secs(20), crate::sys::interrupted)?;
        let log = r.log_text();
        if code != 0 {
            bail!("{} failed ({code}):\n{log}", r.name);
        }
        let n = last_numbers(&log, "received")?;
        let mbps = if n[2] > 0.0 {
            n[0] * 8.0 / n[2] / 1e6
        } else {
            0.0
        };
        let loss = 100.0 * (1.0 - n[1] / sent_dgrams.max(1.0));
        receivers.push((mbps, loss));
    }
    Ok(Blast {
        gso: used_gso,
        sent_mbps: sent_bytes * 8.0 / secs.max(1e-9) / 1e6,
        receivers,
    })
}

/// The numbers on the last line starting with `word`.
fn last_numbers(log: &str, word: &str) -> Result<Vec<f64>> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with(word))
        .with_context(|| format!("no `{word}` line in:\n{log}"))?;
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if nums.len() < 3 {
        bail!("short line `{line}`");
    }
    Ok(nums)
}

// --- the workers, run inside the namespaces ---

fn sockaddr(addr: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = port.to_be();
    sa.sin_addr.s_addr = u32::from(addr).to_be();
    sa
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: value points to a live T of the given size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn udp_socket() -> io::Result<i32> {
    // SAFETY: plain system call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

/// A socket buffer of `bytes`, past `rmem_max`/`wmem_max` when root (the uftpd runs get
/// `-B 4194304`).
fn buffer(fd: i32, force: i32, plain: i32, bytes: i32) {
    if setsockopt(fd, libc::SOL_SOCKET, force, &bytes).is_err() {
        let _ = setsockopt(fd, libc::SOL_SOCKET, plain, &bytes);
    }
}

/// `xtask blast-send GROUP PORT LOCAL BYTES gso|plain`.
pub fn send_worker(args: &[String]) -> Result<()> {
    let [group, port, local, bytes, mode] = args else {
        bail!("blast-send GROUP PORT LOCAL BYTES gso|plain");
    };
    let group: Ipv4Addr = group.parse()?;
    let port: u16 = port.parse()?;
    let local: Ipv4Addr = local.parse()?;
    let total: u64 = bytes.parse()?;
    let fd = udp_socket()?;
    buffer(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, 4 << 20);
    let ifaddr = libc::in_addr {
        s_addr: u32::from(local).to_be(),
    };
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &ifaddr)?;
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &1i32)?;
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &0i32)?;
    let to = sockaddr(group, port);
    // SAFETY: `to` is a live sockaddr_in of the given size.
    let r = unsafe {
        libc::connect(
            fd,
            (&to as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        bail!("connect: {}", io::Error::last_os_error());
    }
    let mut gso = mode == "gso"
        && setsockopt(fd, libc::SOL_UDP, libc::UDP_SEGMENT, &(DATAGRAM as i32)).is_ok();
    // A superbuffer: as many whole datagrams as fit in one UDP payload (49 × 1324).
    let per_super = 65_000 / DATAGRAM;
    let buf = vec![0x5au8; per_super * DATAGRAM];
    let start = Instant::now();
    let mut sent = 0u64;
    let mut datagrams = 0u64;
    while sent < total {
        let len = if gso { buf.len() } else { DATAGRAM };
        match sendmmsg_all(fd, &buf[..len], 16) {
            Ok(n) => {
                sent += (n * len) as u64;
                datagrams += (n * len / DATAGRAM) as u64;
            }
            Err(e)
                if gso
                    && datagrams == 0
                    && matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) =>
            {
                eprintln!("blast-send: the kernel refused UDP GSO ({e}); plain sendmmsg");
                gso = false;
                let _ = setsockopt(fd, libc::SOL_UDP, libc::UDP_SEGMENT, &0i32);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
            Err(e) => bail!("sendmmsg: {e}"),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    // End markers (one byte), spaced so that some arrive after the receivers' queues drain.
    let _ = setsockopt(fd, libc::SOL_UDP, libc::UDP_SEGMENT, &0i32);
    for _ in 0..20 {
        // SAFETY: a one-byte live buffer.
        unsafe { libc::send(fd, buf.as_ptr().cast(), 1, 0) };
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    println!(
        "sent {sent} {datagrams} {secs:.6} gso={}",
        if gso { "yes" } else { "no" }
    );
    Ok(())
}

/// Sends `buf` `count` times with one `sendmmsg`; how many went.
fn sendmmsg_all(fd: i32, buf: &[u8], count: usize) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: mmsghdr is plain data; all-zero is valid.
    let mut msgs: Vec<libc::mmsghdr> = (0..count).map(|_| unsafe { std::mem::zeroed() }).collect();
    for m in &mut msgs {
        m.msg_hdr.msg_iov = &mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points to the live iovec, which points to `buf` (only read).
    let n = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), count as libc::c_uint, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `xtask blast-recv GROUP PORT LOCAL`: counts datagrams until an end marker, or 2 s without
/// any; prints `received BYTES DATAGRAMS SECONDS` (first to last datagram).
pub fn recv_worker(args: &[String]) -> Result<()> {
    let [group, port, local] = args else {
        bail!("blast-recv GROUP PORT LOCAL");
    };
    let group: Ipv4Addr = group.parse()?;
    let port: u16 = port.parse()?;
    let local: Ipv4Addr = local.parse()?;
    let fd = udp_socket()?;
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
    buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, 4 << 20);
    let any = sockaddr(Ipv4Addr::UNSPECIFIED, port);
    // SAFETY: `any` is a live sockaddr_in of the given size.
    let r = unsafe {
        libc::bind(
            fd,
            (&any as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        bail!("bind: {}", io::Error::last_os_error());
    }
    let mreq = libc::ip_mreq {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        imr_interface: libc::in_addr {
            s_addr: u32::from(local).to_be(),
        },
    };
    setsockopt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &timeout)?;
    println!("ready");
    const BATCH: usize = 64;
    const SLOT: usize = 2048;
    let mut bufs = vec![0u8; BATCH * SLOT];
    let mut iovs: Vec<libc::iovec> = bufs
        .chunks_mut(SLOT)
        .map(|c| libc::iovec {
            iov_base: c.as_mut_ptr().cast(),
            iov_len: SLOT,
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is valid.
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
    let (mut bytes, mut datagrams) = (0u64, 0u64);
    let (mut first, mut last) = (None::<Instant>, Instant::now());
    let started = Instant::now();
    'outer: loop {
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_len = 0;
        }
        // SAFETY: every header points to its own live iovec over `bufs`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let now = Instant::now();
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                let idle = now.duration_since(first.map_or(started, |_| last));
                let limit = if first.is_some() { 2 } else { 30 };
                if idle > Duration::from_secs(limit) {
                    break;
                }
                continue;
            }
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            bail!("recvmmsg: {e}");
        }
        for m in &msgs[..n as usize] {
            if m.msg_len <= 1 {
                break 'outer;
            }
            first.get_or_insert(now);
            last = now;
            bytes += u64::from(m.msg_len);
            datagrams += 1;
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    println!("received {bytes} {datagrams} {secs:.6}");
    Ok(())
}
