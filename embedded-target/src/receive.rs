//! The receive task: proto-core's [`Receiver`] driven over an embassy-net [`Stack`], storing
//! update images through a [`FlashStorage`].
//!
//! The same code runs on the boards and in the host run; only the network driver under the stack
//! (the STM32 Ethernet MAC, or a Linux TAP device) and the NOR flash under the storage (the
//! chip's flash, or a file) differ. It is the driver loop of `std-host`'s `uftpd` without
//! threads or heap: one UDP socket on the UFTP port joined to the public group, the private
//! group joined while a session runs, replies by unicast to the server, and the receiver's
//! timers as the other arm of a `select`.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use embassy_futures::select::{select, Either};
use embassy_net::udp::{PacketMetadata, RecvError, UdpSocket};
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_time::Timer;
use embedded_storage::nor_flash::NorFlash;
use heapless::Vec;
use proto_core::session::receiver::{Config, Event, Receiver, SessionResult};
use proto_core::session::security::ServerEntry;
use proto_core::time::Instant;

use crate::flash_storage::FlashStorage;
use crate::fmt::{Hex, Ip, Text, Uid};

/// UFTP's port.
pub const UFTP_PORT: u16 = 1044;
/// uftp's default public multicast group.
pub const PUBLIC_GROUP: Ipv4Addr = Ipv4Addr::new(230, 4, 4, 1);
/// Sessions followed at once: a board takes one update at a time (a second server is refused
/// with "Too many sessions").
pub const SESSIONS: usize = 1;
/// Servers a board's server list can hold.
pub const MAX_SERVERS: usize = 4;
/// Largest datagram: an Ethernet frame's UDP payload (the stack does not reassemble IP
/// fragments, and uftp's blocks fit a 1500-byte MTU).
pub const DATAGRAM_LEN: usize = 1472;
/// Datagrams the socket queues while the task is busy (writing flash, an ECDH key exchange).
pub const RX_PACKETS: usize = 8;
/// Bytes of received datagrams the socket queues.
pub const RX_BYTES: usize = RX_PACKETS * 1400;
/// Datagrams waiting to be sent (replies are few and small).
pub const TX_PACKETS: usize = 2;
/// Bytes waiting to be sent.
pub const TX_BYTES: usize = 2 * DATAGRAM_LEN;

/// The receiver state machine as the firmware runs it: unencrypted sessions and ECDH sessions
/// (ECDSA-signed, AES-GCM/CCM); no RSA.
pub type FirmwareReceiver = Receiver<SESSIONS>;

/// What a board is configured with, beyond its address.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The UFTP port (1044).
    pub port: u16,
    /// The public multicast group ANNOUNCEs come to (230.4.4.1).
    pub public_group: Ipv4Addr,
    /// Refuse unencrypted sessions (uftpd's `-E`).
    pub require_encryption: bool,
    /// Servers to accept (uftpd's `-S`); empty accepts any. An entry with a fingerprint accepts
    /// only that server key, and so only encrypted sessions from it.
    pub servers: Vec<ServerEntry, MAX_SERVERS>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: UFTP_PORT,
            public_group: PUBLIC_GROUP,
            require_encryption: false,
            servers: Vec::new(),
        }
    }
}

impl Settings {
    /// The receiver's configuration: UID `uid` (uftpd takes the interface's IPv4 address) and
    /// `seed`, fresh entropy from the board's RNG.
    pub fn receiver_config(&self, uid: u32, seed: [u8; 32]) -> Config {
        let mut config = Config::new(uid, seed);
        config.require_encryption = self.require_encryption;
        for s in &self.servers {
            // MAX_SERVERS is below the core's limit.
            let _ = config.servers.push(*s);
        }
        config
    }
}

/// Parses one server-list line, `ID|IP[|FINGERPRINT]` as in uftpd's `-S` file (`ID` in hex,
/// with or without `0x`).
pub fn parse_server(line: &str) -> Option<ServerEntry> {
    let mut parts = line.trim().split('|');
    let id = parts.next()?.trim();
    let id = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .unwrap_or(id);
    let id = u32::from_str_radix(id, 16).ok().filter(|&i| i != 0)?;
    let addr = match parts.next().map(str::trim) {
        None | Some("") => None,
        Some(a) => Some(a.parse::<IpAddr>().ok()?),
    };
    let fingerprint = match parts.next().map(str::trim) {
        None | Some("") => None,
        Some(f) => Some(proto_core::crypto::Fingerprint::parse(f).ok()?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some(ServerEntry {
        id,
        addr,
        fingerprint,
    })
}

/// A network driver's multicast filter, told of each group the receiver joins and leaves:
/// embassy-net-driver has no call for it, so a driver that filters multicast in hardware (the
/// LAN9118's hash filter) learns the groups here.
pub trait GroupFilter {
    /// The receiver joined `group`.
    fn join(&self, group: Ipv4Addr);
    /// The receiver left `group`.
    fn leave(&self, group: Ipv4Addr);
}

/// For drivers that pass all multicast up to the stack (the STM32 MAC as embassy-stm32 sets it
/// up, a TAP device), which filters by the groups it joined.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllMulticast;

impl GroupFilter for AllMulticast {
    fn join(&self, _: Ipv4Addr) {}
    fn leave(&self, _: Ipv4Addr) {}
}

/// The socket's and the task's buffers, kept in a `static` by the caller.
#[derive(Debug)]
pub struct NetBuffers {
    rx_meta: [PacketMetadata; RX_PACKETS],
    rx: [u8; RX_BYTES],
    tx_meta: [PacketMetadata; TX_PACKETS],
    tx: [u8; TX_BYTES],
    datagram: [u8; DATAGRAM_LEN],
}

impl NetBuffers {
    /// Zeroed buffers.
    pub const fn new() -> Self {
        NetBuffers {
            rx_meta: [PacketMetadata::EMPTY; RX_PACKETS],
            rx: [0; RX_BYTES],
            tx_meta: [PacketMetadata::EMPTY; TX_PACKETS],
            tx: [0; TX_BYTES],
            datagram: [0; DATAGRAM_LEN],
        }
    }
}

impl Default for NetBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// Why [`serve`] stopped: it runs until the stack refuses the socket or the public group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServeError {
    /// The UDP port could not be bound.
    Bind,
    /// The public group could not be joined.
    Join,
}

fn now() -> Instant {
    Instant::from_micros(embassy_time::Instant::now().as_micros())
}

fn endpoint(dest: SocketAddr) -> Option<IpEndpoint> {
    match dest {
        SocketAddr::V4(a) => Some(IpEndpoint::new(IpAddress::from(*a.ip()), a.port())),
        // The firmware's stack is IPv4 only.
        SocketAddr::V6(_) => None,
    }
}

/// Waits until the stack has an IPv4 address (static or from DHCP) and returns it.
pub async fn wait_for_address(stack: Stack<'_>) -> Ipv4Addr {
    loop {
        stack.wait_config_up().await;
        if let Some(c) = stack.config_v4() {
            return c.address.address();
        }
    }
}

/// Runs the receiver: joins the public group, then answers every session until the stack fails
/// (never, on a working stack). `rx` must be configured with this stack's address as its UID;
/// `groups` hears of every group joined and left.
pub async fn serve<DFU: NorFlash, STATE: NorFlash, const MAP: usize>(
    stack: Stack<'_>,
    settings: &Settings,
    rx: &mut FirmwareReceiver,
    storage: &mut FlashStorage<'_, DFU, STATE, MAP>,
    bufs: &mut NetBuffers,
    groups: &impl GroupFilter,
) -> ServeError {
    let NetBuffers {
        rx_meta,
        rx: rx_bytes,
        tx_meta,
        tx: tx_bytes,
        datagram,
    } = bufs;
    let mut socket = UdpSocket::new(stack, rx_meta, rx_bytes, tx_meta, tx_bytes);
    if socket.bind(settings.port).is_err() {
        return ServeError::Bind;
    }
    groups.join(settings.public_group);
    if stack
        .join_multicast_group(IpAddress::from(settings.public_group))
        .is_err()
    {
        return ServeError::Join;
    }
    info!(
        "uftp receiver on port {} as UID {}, public group {}, {}",
        settings.port,
        Uid(rx.config().uid),
        Ip(IpAddr::V4(settings.public_group)),
        if settings.require_encryption {
            "encrypted sessions only"
        } else {
            "unencrypted and encrypted sessions"
        }
    );
    let mut truncated = 0u32;
    loop {
        let wake = rx.poll_timeout().map_or(embassy_time::Instant::MAX, |t| {
            embassy_time::Instant::from_micros(t.as_micros())
        });
        match select(socket.recv_from(datagram), Timer::at(wake)).await {
            Either::First(Ok((n, meta))) => {
                let from = SocketAddr::from(meta.endpoint);
                rx.handle_datagram(now(), from, &mut datagram[..n], storage);
            }
            Either::First(Err(RecvError::Truncated)) => {
                truncated = truncated.saturating_add(1);
                if truncated.is_power_of_two() {
                    warn!(
                        "datagram over {} bytes dropped ({} so far)",
                        DATAGRAM_LEN, truncated
                    );
                }
            }
            Either::Second(()) => {}
        }
        let t = now();
        if rx.poll_timeout().is_some_and(|d| d <= t) {
            rx.handle_timeout(t, storage);
        }
        // Events first: a new session's private group is joined before its REGISTER leaves
        // (the server's KEYINFO answers at once and would otherwise find no member).
        while let Some(ev) = rx.poll_event() {
            on_event(stack, settings, storage, groups, ev);
        }
        while let Some(out) = rx.poll_transmit(t, datagram, storage) {
            let Some(to) = endpoint(out.dest) else {
                continue;
            };
            if socket.send_to(&datagram[..out.len], to).await.is_err() {
                warn!("cannot send to {}", Ip(out.dest.ip()));
            }
        }
        while let Some(ev) = rx.poll_event() {
            on_event(stack, settings, storage, groups, ev);
        }
    }
}

fn on_event<DFU: NorFlash, STATE: NorFlash, const MAP: usize>(
    stack: Stack<'_>,
    settings: &Settings,
    storage: &mut FlashStorage<'_, DFU, STATE, MAP>,
    groups: &impl GroupFilter,
    ev: Event,
) {
    let private = |a: IpAddr| match a {
        IpAddr::V4(g) if !g.is_unspecified() && g != settings.public_group => Some(g),
        _ => None,
    };
    match ev {
        Event::SessionStarted {
            session,
            server_id,
            server,
            private_addr,
            cipher,
            hash,
            fingerprint,
            weak,
        } => {
            match fingerprint {
                Some(fp) => info!(
                    "session {} from {} at {}: encrypted {} {}, server key {}",
                    Uid(session.group_id),
                    Uid(server_id),
                    Ip(server.ip()),
                    cipher.name(),
                    hash.name(),
                    Hex(&fp.0)
                ),
                None => info!(
                    "session {} from {} at {}: unencrypted",
                    Uid(session.group_id),
                    Uid(server_id),
                    Ip(server.ip())
                ),
            }
            if let Some(why) = weak {
                warn!("weak session: {}", why);
            }
            if let Some(g) = private(private_addr) {
                groups.join(g);
                if stack.join_multicast_group(IpAddress::from(g)).is_err() {
                    warn!("cannot join private group {}", Ip(private_addr));
                }
            }
        }
        Event::Registered { session } => debug!("session {} registered", Uid(session.group_id)),
        Event::SessionEnded {
            session,
            private_addr,
            result,
        } => {
            if let Some(g) = private(private_addr) {
                let _ = stack.leave_multicast_group(IpAddress::from(g));
                groups.leave(g);
            }
            match result {
                SessionResult::Completed => {
                    info!("session {} complete", Uid(session.group_id))
                }
                SessionResult::AbortedByServer(reason) => info!(
                    "session {} aborted by server: {}",
                    Uid(session.group_id),
                    Text(&reason)
                ),
                SessionResult::Aborted(reason) => info!(
                    "session {} aborted: {}",
                    Uid(session.group_id),
                    reason.as_str()
                ),
            }
        }
        Event::Refused {
            server_id,
            server,
            reason,
            aborted,
            ..
        } => warn!(
            "refused server {} at {}: {}{}",
            Uid(server_id),
            Ip(server.ip()),
            reason.as_str(),
            if aborted { " (ABORT sent)" } else { "" }
        ),
        Event::FileStarted { file_id, size, .. } => {
            info!("receiving image (file {}, {} bytes)", file_id, size)
        }
        Event::FileFinished {
            session, file_id, ..
        } => match storage.stored() {
            Some(img) if img.session == session && img.file_id == file_id => info!(
                "image stored: {}, {} bytes, sha256 {}, marked for swap",
                Text(img.name()),
                img.size,
                Hex(&img.sha256)
            ),
            _ => info!("file {} finished", file_id),
        },
        Event::FileRejected {
            file_id, reason, ..
        } => warn!("file {} rejected: {}", file_id, reason.as_str()),
        Event::FileAborted { file_id, .. } => warn!("file {} aborted", file_id),
        Event::FileSkipped {
            file_id, status, ..
        } => info!("file {} not received: {}", file_id, status.name()),
        Event::Dropped { reason, count } => {
            if count.is_power_of_two() {
                debug!("dropped datagram: {} ({} so far)", reason.as_str(), count);
            }
        }
        // The firmware configures no heartbeat hosts (uftpd's -H): nothing to report.
        Event::HeartbeatSent { .. } | Event::HeartbeatAnswered { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_parse_as_uftpd_reads_them() {
        let e = parse_server("0x0E000001|10.77.0.1").unwrap();
        assert_eq!(e.id, 0x0E00_0001);
        assert_eq!(e.addr, Some("10.77.0.1".parse().unwrap()));
        assert_eq!(e.fingerprint, None);
        let fp = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01";
        let e = parse_server(&std::format!("e000001||{fp}")).unwrap();
        assert_eq!(e.addr, None);
        assert_eq!(e.fingerprint.unwrap().0[0], 0xAB);
        assert!(parse_server("0|10.0.0.1").is_none());
        assert!(parse_server("xyz").is_none());
        assert!(parse_server("1|not-an-ip").is_none());
        assert!(parse_server("1|10.0.0.1|AB:CD").is_none());
        assert!(parse_server("1|10.0.0.1||extra").is_none());
    }

    #[test]
    fn settings_reach_the_receiver_config() {
        let mut s = Settings {
            require_encryption: true,
            ..Settings::default()
        };
        s.servers.push(parse_server("1|10.0.0.1").unwrap()).unwrap();
        let c = s.receiver_config(0x0A4D_0009, [7; 32]);
        assert_eq!(c.uid, 0x0A4D_0009);
        assert!(c.require_encryption);
        assert_eq!(c.servers.len(), 1);
        assert!(c.ec_keys.is_empty());
    }
}
