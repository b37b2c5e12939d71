//! The proxy (`uftpproxyd`'s protocol logic) as a sans-IO state machine (digest §7).
//!
//! A [`Proxy`] runs in one of uftp's three modes ([`ProxyMode`]) and follows up to `GROUPS`
//! sessions at once, each with up to `CLIENTS` clients:
//!
//! - **Server proxy** (`-s dest` or `-s fp=FP`): next to the sender. It hears the sender's
//!   multicast (the driver joins each session's private address when [`Event::GroupStarted`]
//!   says so) and unicasts every datagram unchanged to one downstream address; whatever comes
//!   back goes unchanged to the session's sender. With `fp=`, the downstream address is
//!   learned from heartbeats signed by the key of that fingerprint (challenge, signed HB_REQ,
//!   adopted address; [`heartbeat`]).
//! - **Client proxy** (`-c`): at a remote site. It re-multicasts what comes from upstream to the
//!   session's public (ANNOUNCE) or private address on its own network. In an encrypted session
//!   it puts its own key (and its own ephemeral ECDH key) in the ANNOUNCE in place of the
//!   server's and signs it again, runs the key exchange with its clients as their server (with
//!   the server's rand1), registers upstream on their behalf with a key exchange of its own, and
//!   once the server's REG_CONF lists its clients sends them its own KEYINFO (the server's
//!   src_id, seq 0, its own IV counter) with the group master it got from the server's KEYINFO.
//!   Everything else is forwarded as it is: all members share the group keys.
//! - **Response proxy** (`-r`): next to the server, in front of many clients that hear the
//!   server directly and send their responses to the proxy (`uftpd -R`). It answers KEY_REQ
//!   with PROXY_KEY (its key and, with `-r:curve`, a long-lived ECDH key, signed over a nonce),
//!   runs the clients' key exchange against those keys, and multicasts their KEYINFO.
//!
//! Client and response proxies aggregate their clients' REGISTER, FILEINFO_ACK, STATUS and
//! COMPLETE for one GRTT (at most 10 pending aggregates a session), then send one message
//! upstream under their own ID: REGISTER, FILEINFO_ACK and COMPLETE list the clients they stand
//! for (the slowest first, its echoed timestamp with the hold time added); STATUS ORs the NAK
//! bitmaps into a full `blocksize`-byte bitmap. In an encrypted session the aggregates are
//! sealed under the group keys with the proxy's ID and IV counter.
//!
//! # Call order
//! As for every state machine in [`crate::session`], with one addition:
//! 1. [`Proxy::handle_datagram`] for each datagram received, and [`Proxy::handle_timeout`] once
//!    the instant of [`Proxy::poll_timeout`] has passed. **A datagram to pass on is not copied:
//!    `handle_datagram` returns `Some(t)` when the first `t.len` bytes of the receive buffer
//!    (possibly rewritten in place, as a client proxy does with ANNOUNCE) are to be sent to
//!    `t.dest` now, before anything else;**
//! 2. [`Proxy::poll_transmit`] until `None`, then [`Proxy::poll_event`] until `None`;
//! 3. sleep until [`Proxy::poll_timeout`] or the next datagram.
//!
//! The driver receives on the proxy's port (the public addresses joined, and each session's
//! private address for server and response proxies), sends from the same socket, and drops
//! datagrams the proxy sent itself (multicast loopback).

mod aggregate;
mod group;
pub mod heartbeat;
#[cfg(test)]
mod tests;

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use heapless::{Deque, Vec};

use super::client_keys::own_blob;
use super::security::{ClientPin, OwnKey, ServerEntry, MAX_SERVERS};
use super::sender::RefuseReason;
use super::Transmit;
use crate::crypto::{Drbg, EcPrivateKey, Fingerprint, NoRsa, RsaKeys};
use crate::time::Instant;
use crate::wire::{Func, HbResult, HeaderPacket, HeaderRepr, KeyType, Message, ProxyKeyRepr, Repr};

pub use super::receiver::AbortReason;
use group::Group;
use heartbeat::{emit_hb_resp, HeartbeatAuth};
pub use heartbeat::{Heartbeat, DEFAULT_HB_INTERVAL, MAX_HB_HOSTS};

/// How many own keys a proxy may hold (`-k`/`-K`).
pub const MAX_OWN_KEYS: usize = 8;
/// How many clients a client proxy's list may pin (`-C`).
pub const MAX_CLIENT_PINS: usize = 1024;
/// How many public addresses a proxy may listen on (`-M`).
pub const MAX_PUBLIC_ADDRS: usize = 8;
/// A response proxy sends PROXY_KEY at most this often, whatever the rate of KEY_REQs (a client
/// that asked in between hears the multicast of the one before, or the next one).
pub const PROXY_KEY_INTERVAL: Duration = Duration::from_secs(1);

const EVENT_QUEUE: usize = 32;

/// What a group's handlers need from the proxy, lent for one call (fields borrowed one by one,
/// so that the group itself can be borrowed beside them).
macro_rules! context {
    ($self:ident) => {
        group::Context {
            config: &$self.config,
            rsa: &mut $self.rsa,
            drbg: &mut $self.drbg,
            downstream: $self.downstream,
            events: Deque::new(),
            counters: Counters::default(),
        }
    };
}
const ONESHOT_QUEUE: usize = 16;
/// The largest key blob a proxy sends (RSA-4096).
const MAX_BLOB: usize = 8 + 512;
/// The largest signature (RSA-4096).
const MAX_SIG: usize = 512;
/// The largest ECDH blob (P-384).
const MAX_DH_BLOB: usize = 4 + 2 * 48;

/// Where a server proxy sends what comes from upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downstream {
    /// A fixed address (`-s dest`, with `-q` for the port).
    Fixed(SocketAddr),
    /// Whoever sends a heartbeat signed by the key with this fingerprint (`-s fp=FP`); nothing
    /// is forwarded until one does.
    Heartbeat(Fingerprint),
}

/// Which of uftpproxyd's modes the proxy runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Server proxy (`-s`): forwards unchanged between the sender and one downstream address.
    Server(Downstream),
    /// Client proxy (`-c`): re-multicasts downstream, plays server to its clients, aggregates.
    Client,
    /// Response proxy (`-r`): plays server to its clients' key exchange, aggregates; forwards
    /// nothing from the server (its clients hear it directly).
    Response,
}

/// What a proxy is configured with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The proxy's UID (`-U`); neither 0 nor 0xFFFFFFFF.
    pub uid: u32,
    /// Its mode.
    pub mode: ProxyMode,
    /// Public addresses with the port (`-M`, `-p`): a response proxy multicasts PROXY_KEY to
    /// each.
    pub public_addrs: Vec<SocketAddr, MAX_PUBLIC_ADDRS>,
    /// The port a client or response proxy multicasts to on its clients' network (`-q`,
    /// default 1044).
    pub dest_port: u16,
    /// Servers to accept (`-S`: `ID|IP[|FP]`); empty accepts any.
    pub servers: Vec<ServerEntry, MAX_SERVERS>,
    /// Clients a client proxy accepts keys from (`-C`: `ID|FP`); empty accepts any. Checked on
    /// CLIENT_KEY, so only in sessions with client authentication (as uftpproxyd does).
    pub clients: Vec<ClientPin, MAX_CLIENT_PINS>,
    /// Proxies to send heartbeats to (`-H`).
    pub heartbeat_hosts: Vec<SocketAddr, MAX_HB_HOSTS>,
    /// Heartbeat interval (`-h`, default 20 s).
    pub heartbeat_interval: Duration,
    /// Own keys (`-k`/`-K`), in order. The first signs heartbeats and PROXY_KEY; for each
    /// encrypted session, the first of the server key's type and size (an RSA key with a
    /// modulus of the same length, an EC key on the same curve) is the one the proxy's clients
    /// and the server see. RSA keys are indexes into the proxy's [`RsaKeys`].
    pub keys: Vec<OwnKey, MAX_OWN_KEYS>,
    /// A response proxy's long-lived ECDH key (`-r:curve` / `-e`), without which it cannot
    /// serve ECDH key exchanges.
    pub ecdh_key: Option<EcPrivateKey>,
    /// Accept weak sessions (3DES, CBC, SHA-1, RSA under 2048 bits); off by default.
    pub allow_weak: bool,
    /// Entropy for the proxy's randoms, premasters, ephemeral keys and nonces (fresh per run).
    pub seed: [u8; 32],
}

impl ProxyConfig {
    /// A proxy `uid` in `mode` with uftp's defaults: public address 230.4.4.1:1044, clients'
    /// port 1044, heartbeats every 20 s to nobody, no keys; `seed` must be fresh entropy.
    pub fn new(uid: u32, mode: ProxyMode, seed: [u8; 32]) -> Self {
        let mut public_addrs = Vec::new();
        let _ = public_addrs.push(SocketAddr::new(
            IpAddr::V4(core::net::Ipv4Addr::new(230, 4, 4, 1)),
            1044,
        ));
        ProxyConfig {
            uid,
            mode,
            public_addrs,
            dest_port: 1044,
            servers: Vec::new(),
            clients: Vec::new(),
            heartbeat_hosts: Vec::new(),
            heartbeat_interval: DEFAULT_HB_INTERVAL,
            keys: Vec::new(),
            ecdh_key: None,
            allow_weak: false,
            seed,
        }
    }
}

/// A configuration the proxy refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyConfigError {
    /// The UID is 0 or 0xFFFFFFFF.
    BadId,
    /// An RSA key index the [`RsaKeys`] does not hold.
    RsaKey,
    /// A server proxy learning its downstream address from heartbeats sends none itself.
    HeartbeatLoop,
}

impl core::fmt::Display for ProxyConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ProxyConfigError::BadId => "the proxy ID must not be 0 or 0xFFFFFFFF",
            ProxyConfigError::RsaKey => "an RSA key index is not one the RSA keys hold",
            ProxyConfigError::HeartbeatLoop => {
                "a server proxy with -s fp= does not send heartbeats (-H)"
            }
        })
    }
}

impl core::error::Error for ProxyConfigError {}

/// Why a session ended at the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupEnd {
    /// Nothing came for the session's idle time (4×ROBUST×GRTT, at least 1 s).
    TimedOut,
    /// The server aborted the session (or this proxy).
    Aborted,
}

/// Why a proxy dropped a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// It does not parse as UFTP 4.
    Malformed,
    /// It belongs to no session the proxy follows.
    UnknownGroup,
    /// A server proxy without a downstream address yet (`-s fp=`).
    NoDownstream,
    /// From a client the proxy does not know, or not in a state to send it.
    UnknownClient,
    /// From the session's address but another server ID.
    WrongServer,
    /// An ENCRYPTED packet whose tag or HMAC does not verify, or that came before the keys.
    AuthFailed,
    /// An ENCRYPTED packet whose IV counter was already seen.
    Replayed,
    /// A plaintext response where the encrypted session needs ENCRYPTED.
    Unauthenticated,
    /// A message a proxy does not take here.
    Unexpected,
    /// Every session slot is taken.
    TooManyGroups,
}

impl DropReason {
    /// Number of reasons (for counter arrays).
    pub const COUNT: usize = 10;

    /// Index into [`Counters::dropped`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A short description for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownGroup => "unknown session",
            DropReason::NoDownstream => "no downstream address yet",
            DropReason::UnknownClient => "unknown client",
            DropReason::WrongServer => "wrong server",
            DropReason::AuthFailed => "authentication failed",
            DropReason::Replayed => "replayed",
            DropReason::Unauthenticated => "unauthenticated in an encrypted session",
            DropReason::Unexpected => "unexpected",
            DropReason::TooManyGroups => "too many sessions",
        }
    }
}

/// Something the driver may want to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A session began: a server or response proxy joins `private_addr` (unless unspecified).
    GroupStarted {
        /// Session ID.
        group_id: u32,
        /// Restart instance.
        group_inst: u8,
        /// The server's UID.
        server_id: u32,
        /// Where its ANNOUNCE came from (the server, or a server proxy).
        upstream: SocketAddr,
        /// The session's private multicast address.
        private_addr: IpAddr,
        /// The session cipher ([`KeyType::None`] when unencrypted).
        cipher: KeyType,
        /// The server key's fingerprint (encrypted sessions).
        fingerprint: Option<Fingerprint>,
    },
    /// A session was refused: an ABORT went upstream.
    GroupRefused {
        /// Session ID.
        group_id: u32,
        /// The server's UID.
        server_id: u32,
        /// Where its ANNOUNCE came from.
        upstream: SocketAddr,
        /// Why.
        reason: AbortReason,
        /// More detail (what makes a session weak).
        detail: Option<&'static str>,
    },
    /// A session ended: leave `private_addr`.
    GroupEnded {
        /// Session ID.
        group_id: u32,
        /// Restart instance.
        group_inst: u8,
        /// The session's private multicast address.
        private_addr: IpAddr,
        /// Why.
        reason: GroupEnd,
    },
    /// A client registered with the proxy (and, in an encrypted session, finished its key
    /// exchange with it).
    ClientRegistered {
        /// Session ID.
        group_id: u32,
        /// The client.
        client_id: u32,
    },
    /// A client failed its key exchange with the proxy; an ABORT went to it.
    ClientRefused {
        /// Session ID.
        group_id: u32,
        /// The client.
        client_id: u32,
        /// Why.
        reason: RefuseReason,
    },
    /// A server proxy adopted a new downstream address from a signed heartbeat.
    DownstreamChanged {
        /// The address.
        addr: SocketAddr,
    },
    /// A heartbeat from `from` failed authentication (server proxy with `fp=`).
    HeartbeatRefused {
        /// Who sent it.
        from: SocketAddr,
    },
    /// An HB_RESP answered one of our heartbeats.
    HeartbeatAnswered {
        /// Who answered.
        from: SocketAddr,
        /// Its answer.
        result: HbResult,
    },
}

/// Counters since the proxy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams: u64,
    /// Datagrams passed on downstream (to the downstream address or re-multicast).
    pub forwarded_down: u64,
    /// Datagrams passed on upstream unchanged.
    pub forwarded_up: u64,
    /// Client responses taken into aggregates (REGISTER, FILEINFO_ACK, STATUS, COMPLETE).
    pub responses_aggregated: u64,
    /// Aggregated messages sent upstream.
    pub aggregates_sent: u64,
    /// KEYINFO messages sent to clients.
    pub keyinfo_sent: u64,
    /// PROXY_KEY messages sent.
    pub proxy_keys_sent: u64,
    /// HB_REQ messages sent.
    pub heartbeats_sent: u64,
    /// HB_RESP messages sent.
    pub heartbeats_answered: u64,
    /// Clients refused during their key exchange.
    pub clients_refused: u64,
    /// Dropped datagrams, by [`DropReason::index`].
    pub dropped: [u64; DropReason::COUNT],
    /// Events lost because the queue was full (drain events after every call).
    pub events_lost: u64,
    /// Datagrams not sent because the caller's buffer was too small or building them failed.
    pub transmit_errors: u64,
}

impl Counters {
    /// Every dropped datagram, whatever the reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// A session as [`Proxy::groups`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    /// Session ID.
    pub group_id: u32,
    /// Restart instance.
    pub group_inst: u8,
    /// The server's UID.
    pub server_id: u32,
    /// Where its ANNOUNCE came from.
    pub upstream: SocketAddr,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// Clients the proxy knows in it.
    pub clients: usize,
    /// Of those, clients that finished registering (key exchange included).
    pub ready: usize,
}

/// A datagram the proxy itself owes (not a forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Oneshot {
    HbResp {
        dest: SocketAddr,
        result: HbResult,
        nonce: u32,
    },
    /// An ABORT upstream for a session the proxy refused (there is no group to carry it).
    Refusal {
        dest: SocketAddr,
        group_id: u32,
        group_inst: u8,
        reason: AbortReason,
    },
}

/// Refusals remembered, so that each refused session is reported once.
const REFUSED_MEMORY: usize = 16;

/// The proxy; see the [module documentation](self) for the modes and the call order.
pub struct Proxy<const GROUPS: usize, const CLIENTS: usize, R: RsaKeys = NoRsa> {
    config: ProxyConfig,
    rsa: R,
    drbg: Drbg,
    groups: [Option<Group<CLIENTS>>; GROUPS],
    /// Server proxy: where downstream traffic goes.
    downstream: Option<SocketAddr>,
    hb_auth: Option<HeartbeatAuth>,
    heartbeat: Heartbeat,
    /// Response proxy: when a PROXY_KEY may go next, and whether one is owed.
    proxy_key_after: Instant,
    proxy_key_due: Option<Instant>,
    /// Which public address the PROXY_KEY under way goes to next.
    proxy_key_next: usize,
    /// The public blob of the first key (heartbeats, PROXY_KEY), and of the ECDH key.
    key_blob: Vec<u8, MAX_BLOB>,
    dh_blob: Vec<u8, MAX_DH_BLOB>,
    oneshots: Deque<Oneshot, ONESHOT_QUEUE>,
    refused: Deque<(u32, u8), REFUSED_MEMORY>,
    events: Deque<Event, EVENT_QUEUE>,
    counters: Counters,
}

impl<const GROUPS: usize, const CLIENTS: usize, R: RsaKeys> core::fmt::Debug
    for Proxy<GROUPS, CLIENTS, R>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Proxy")
            .field("uid", &self.config.uid)
            .field("mode", &self.config.mode)
            .field("groups", &self.groups.iter().flatten().count())
            .field("downstream", &self.downstream)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl<const GROUPS: usize, const CLIENTS: usize> Proxy<GROUPS, CLIENTS, NoRsa> {
    /// A proxy without RSA (EC keys only; sessions with RSA keys are refused).
    pub fn new(config: ProxyConfig) -> Result<Self, ProxyConfigError> {
        Self::with_rsa(config, NoRsa)
    }
}

impl<const GROUPS: usize, const CLIENTS: usize, R: RsaKeys> Proxy<GROUPS, CLIENTS, R> {
    /// A proxy whose RSA operations (and own RSA keys) are `rsa`'s.
    pub fn with_rsa(config: ProxyConfig, rsa: R) -> Result<Self, ProxyConfigError> {
        if config.uid == 0 || config.uid == u32::MAX {
            return Err(ProxyConfigError::BadId);
        }
        let bad_rsa = config
            .keys
            .iter()
            .any(|k| matches!(k, OwnKey::Rsa(i) if *i >= rsa.count()));
        if bad_rsa {
            return Err(ProxyConfigError::RsaKey);
        }
        let mut drbg = Drbg::new(&config.seed);
        let (downstream, hb_auth) = match config.mode {
            ProxyMode::Server(Downstream::Fixed(addr)) => (Some(addr), None),
            ProxyMode::Server(Downstream::Heartbeat(fp)) => {
                if !config.heartbeat_hosts.is_empty() {
                    return Err(ProxyConfigError::HeartbeatLoop);
                }
                (None, Some(HeartbeatAuth::new(fp, &mut drbg)))
            }
            _ => (None, None),
        };
        let mut key_blob = Vec::new();
        if let Some(k) = config.keys.first() {
            let _ = key_blob.resize(MAX_BLOB, 0);
            let n = own_blob(k, &rsa, &mut key_blob).map_err(|_| ProxyConfigError::RsaKey)?;
            key_blob.truncate(n);
        }
        let mut dh_blob = Vec::new();
        if let Some(k) = &config.ecdh_key {
            let public = k.public_key();
            let _ = dh_blob.resize(public.blob_len(), 0);
            let _ = public.emit_blob(&mut dh_blob);
        }
        let heartbeat = Heartbeat::new(
            config.uid,
            &config.heartbeat_hosts,
            config.heartbeat_interval,
        );
        Ok(Proxy {
            config,
            rsa,
            drbg,
            groups: [const { None }; GROUPS],
            downstream,
            hb_auth,
            heartbeat,
            proxy_key_after: Instant::ZERO,
            proxy_key_due: None,
            proxy_key_next: 0,
            key_blob,
            dh_blob,
            oneshots: Deque::new(),
            refused: Deque::new(),
            events: Deque::new(),
            counters: Counters::default(),
        })
    }

    // ---------------------------------------------------------------- getters

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// A server proxy's downstream address, once it has one.
    pub fn downstream(&self) -> Option<SocketAddr> {
        self.downstream
    }

    /// The fingerprint of the proxy's first key (what `-s fp=`, `-R proxy/FP` and server lists
    /// behind a client proxy pin), if it has a key.
    pub fn key_fingerprint(&self) -> Option<Fingerprint> {
        (!self.key_blob.is_empty()).then(|| Fingerprint::of(&self.key_blob))
    }

    /// The sessions the proxy follows.
    pub fn groups(&self) -> impl Iterator<Item = GroupInfo> + '_ {
        self.groups.iter().flatten().map(Group::info)
    }

    // ---------------------------------------------------------------- input

    /// Handles one datagram received from `from`, in the caller's receive buffer. Returns the
    /// datagram to pass on, if any: the first `len` bytes of `bytes` (which may have been
    /// rewritten in place), to `dest`, to be sent now. An ENCRYPTED datagram from a client is
    /// opened in place, so the buffer's contents are unspecified when `None` is returned.
    #[must_use]
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        self.counters.datagrams += 1;
        let header = HeaderPacket::new_checked(&*bytes).and_then(|p| HeaderRepr::parse(&p));
        let Ok(header) = header else {
            self.drop_dgram(DropReason::Malformed);
            return None;
        };
        match Func::from(bytes[1]) {
            Func::HbReq | Func::HbResp | Func::KeyReq | Func::ProxyKey => {
                self.on_control(now, from, bytes);
                return None;
            }
            _ => {}
        }
        if let ProxyMode::Server(_) = self.config.mode {
            if self.downstream.is_none() {
                self.drop_dgram(DropReason::NoDownstream);
                return None;
            }
        }
        let slot = self.groups.iter().position(|g| {
            g.as_ref()
                .is_some_and(|g| g.is(header.group_id, header.group_inst))
        });
        if Func::from(bytes[1]) == Func::Announce {
            return self.on_announce(now, from, &header, slot, bytes);
        }
        let Some(slot) = slot else {
            self.drop_dgram(DropReason::UnknownGroup);
            return None;
        };
        let mut cx = context!(self);
        let out = self.groups[slot]
            .as_mut()
            .and_then(|g| g.handle_datagram(&mut cx, now, from, &header, bytes));
        let done = cx.finish();
        self.absorb(done);
        self.reap(slot);
        out
    }

    /// Handles timers; call when the instant of [`Proxy::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.heartbeat.handle_timeout(now);
        let mut cx = context!(self);
        for slot in 0..GROUPS {
            if let Some(g) = self.groups[slot].as_mut() {
                g.handle_timeout(&mut cx, now);
            }
        }
        let done = cx.finish();
        self.absorb(done);
        for slot in 0..GROUPS {
            self.reap(slot);
        }
    }

    // ---------------------------------------------------------------- output

    /// The next datagram the proxy owes, written into `buf` (9000 bytes are always enough).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(o) = self.oneshots.pop_front() {
            if let Some(t) = self.emit_oneshot(o, buf) {
                return Some(t);
            }
            self.counters.transmit_errors += 1;
        }
        while self.proxy_key_due.is_some_and(|t| now >= t) {
            if let Some(t) = self.proxy_key(now, buf) {
                return Some(t);
            }
        }
        let first = self.config.keys.first();
        if let Some(t) = self.heartbeat.poll_transmit(buf, first, &self.rsa) {
            self.counters.heartbeats_sent += 1;
            return Some(t);
        }
        let mut cx = context!(self);
        let mut out = None;
        for slot in 0..GROUPS {
            if let Some(g) = self.groups[slot].as_mut() {
                out = g.poll_transmit(&mut cx, now, buf);
                if out.is_some() {
                    break;
                }
            }
        }
        let done = cx.finish();
        self.absorb(done);
        out
    }

    /// When [`Proxy::handle_timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let groups = self.groups.iter().flatten().filter_map(Group::poll_timeout);
        groups
            .chain(self.heartbeat.poll_timeout())
            .chain(self.proxy_key_due)
            .chain((!self.oneshots.is_empty()).then_some(Instant::ZERO))
            .min()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---------------------------------------------------------------- internals

    fn drop_dgram(&mut self, reason: DropReason) {
        self.counters.dropped[reason.index()] += 1;
    }

    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.counters.events_lost += 1;
        }
    }

    fn oneshot(&mut self, o: Oneshot) {
        if self.oneshots.is_full() {
            let _ = self.oneshots.pop_front();
            self.counters.transmit_errors += 1;
        }
        let _ = self.oneshots.push_back(o);
    }

    /// Takes back the events and counts a group's call produced.
    fn absorb(&mut self, (events, counters): (Deque<Event, 16>, Counters)) {
        for e in events {
            self.event(e);
        }
        let c = &mut self.counters;
        c.forwarded_down += counters.forwarded_down;
        c.forwarded_up += counters.forwarded_up;
        c.responses_aggregated += counters.responses_aggregated;
        c.aggregates_sent += counters.aggregates_sent;
        c.keyinfo_sent += counters.keyinfo_sent;
        c.clients_refused += counters.clients_refused;
        c.transmit_errors += counters.transmit_errors;
        c.events_lost += counters.events_lost;
        for (a, b) in c.dropped.iter_mut().zip(counters.dropped) {
            *a += b;
        }
    }

    /// Frees the slot of a group that ended.
    fn reap(&mut self, slot: usize) {
        if self.groups[slot].as_ref().is_some_and(Group::is_over) {
            if let Some(g) = self.groups[slot].take() {
                self.event(g.ended_event());
            }
        }
    }

    fn on_control(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(repr) = Repr::parse(bytes) else {
            self.drop_dgram(DropReason::Malformed);
            return;
        };
        match repr.message {
            Message::HbReq(req) => {
                let (result, nonce) = match (&mut self.hb_auth, self.config.mode) {
                    (Some(auth), _) => {
                        let a = auth.answer(&self.rsa, &mut self.drbg, self.downstream, from, &req);
                        if let Some(addr) = a.established {
                            self.downstream = Some(addr);
                            self.event(Event::DownstreamChanged { addr });
                        }
                        if a.result == HbResult::Failed {
                            self.event(Event::HeartbeatRefused { from });
                        }
                        (a.result, a.nonce)
                    }
                    (None, _) => (HbResult::Ok, 0),
                };
                self.oneshot(Oneshot::HbResp {
                    dest: from,
                    result,
                    nonce,
                });
            }
            Message::HbResp(resp) => {
                if self.heartbeat.handle_response(from, &resp) {
                    self.event(Event::HeartbeatAnswered {
                        from,
                        result: resp.result,
                    });
                } else {
                    self.drop_dgram(DropReason::Unexpected);
                }
            }
            Message::KeyReq(_) if self.config.mode == ProxyMode::Response => {
                // One PROXY_KEY per interval at most: it is multicast, so every client that
                // asked meanwhile hears it.
                if self.proxy_key_due.is_none() {
                    self.proxy_key_due = Some(now.max(self.proxy_key_after));
                }
            }
            _ => self.drop_dgram(DropReason::Unexpected),
        }
    }

    /// The PROXY_KEY due, if any: the first key and the ECDH key, signed over a fresh nonce,
    /// to each public address in turn (uftp 4.9.6 and later send it on all of them).
    fn proxy_key(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let due = self.proxy_key_due?;
        if now < due {
            return None;
        }
        let Some(&dest) = self.config.public_addrs.get(self.proxy_key_next) else {
            self.proxy_key_due = None;
            self.proxy_key_next = 0;
            self.proxy_key_after = now + PROXY_KEY_INTERVAL;
            return None;
        };
        self.proxy_key_next += 1;
        let key = self.config.keys.first()?;
        let nonce = u32::from_be_bytes(self.drbg.bytes());
        let mut sig = [0u8; MAX_SIG];
        let Ok(sl) = heartbeat::sign_nonce(key, &self.rsa, nonce, &mut sig) else {
            self.counters.transmit_errors += 1;
            return None;
        };
        let message = Message::ProxyKey(ProxyKeyRepr {
            nonce,
            key_blob: &self.key_blob,
            dh_blob: &self.dh_blob,
            signature: &sig[..sl],
        });
        let header = heartbeat::control_header(self.config.uid);
        let len = Repr { header, message }.emit(buf).ok()?;
        self.counters.proxy_keys_sent += 1;
        Some(Transmit { dest, len })
    }

    fn emit_oneshot(&mut self, o: Oneshot, buf: &mut [u8]) -> Option<Transmit> {
        match o {
            Oneshot::HbResp {
                dest,
                result,
                nonce,
            } => {
                let len = emit_hb_resp(self.config.uid, result, nonce, buf)?;
                self.counters.heartbeats_answered += 1;
                Some(Transmit { dest, len })
            }
            Oneshot::Refusal {
                dest,
                group_id,
                group_inst,
                reason,
            } => {
                let len = group::emit_plain_abort(
                    self.config.uid,
                    group_id,
                    group_inst,
                    0,
                    0,
                    reason.as_str().as_bytes(),
                    buf,
                )?;
                Some(Transmit { dest, len })
            }
        }
    }

    /// ANNOUNCE: a new session (or a repeat of one the proxy follows).
    fn on_announce(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: &HeaderRepr,
        slot: Option<usize>,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        if let Some(slot) = slot {
            let mut cx = context!(self);
            let out = self.groups[slot]
                .as_mut()
                .and_then(|g| g.on_announce(&mut cx, now, from, header, bytes));
            let done = cx.finish();
            self.absorb(done);
            return out;
        }
        let Some(free) = self.groups.iter().position(Option::is_none) else {
            self.drop_dgram(DropReason::TooManyGroups);
            return None;
        };
        let key = (header.group_id, header.group_inst);
        let mut cx = context!(self);
        let made = Group::new(&mut cx, now, from, header, bytes);
        let done = cx.finish();
        self.absorb(done);
        match made {
            Ok(mut g) => {
                let started = g.started_event();
                let mut cx = context!(self);
                let out = g.on_announce(&mut cx, now, from, header, bytes);
                self.groups[free] = Some(g);
                let done = cx.finish();
                self.event(started);
                self.absorb(done);
                out
            }
            Err(group::Refused::Silently(reason)) => {
                self.drop_dgram(reason);
                None
            }
            Err(group::Refused::Abort(reason, detail)) => {
                self.oneshot(Oneshot::Refusal {
                    dest: from,
                    group_id: header.group_id,
                    group_inst: header.group_inst,
                    reason,
                });
                if !self.refused.iter().any(|r| *r == key) {
                    if self.refused.is_full() {
                        let _ = self.refused.pop_front();
                    }
                    let _ = self.refused.push_back(key);
                    self.event(Event::GroupRefused {
                        group_id: header.group_id,
                        server_id: header.src_id,
                        upstream: from,
                        reason,
                        detail,
                    });
                }
                None
            }
        }
    }
}

/// The largest datagram a proxy builds or forwards.
pub const MAX_DATAGRAM: usize = 9000;
