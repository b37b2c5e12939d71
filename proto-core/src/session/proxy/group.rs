//! One session at a proxy: forwarding (server and client proxies), the two key exchanges of an
//! encrypted session (the proxy as the server's client upstream, as its clients' server
//! downstream), KEYINFO to the clients, and aggregation of their responses.

use core::net::SocketAddr;
use core::time::Duration;

use heapless::{Deque, Vec};

use super::aggregate::{Aggregates, Kind, Placed, Slowest};
use super::{
    AbortReason, Counters, DropReason, Event, GroupEnd, GroupInfo, ProxyConfig, ProxyMode,
    MAX_BLOB, MAX_DH_BLOB,
};
use crate::crypto::{
    CurveId, Drbg, EcPrivateKey, EcPublicKey, Envelope, Fingerprint, KeyBlob, RsaKeys,
};
use crate::session::client_keys::{
    self, accept_keyinfo, compatible_key, own_blob, Keys, Policy, ProxyRoute, Refusal,
};
use crate::session::receiver::emit_datagram;
use crate::session::security::OwnKey;
use crate::session::sender::RefuseReason;
use crate::session::server_handshake::{PeerKeys, PeerState, ServerHandshake};
use crate::session::Transmit;
use crate::time::Instant;
use crate::wire::{
    AbortRepr, AnnounceRepr, ClientKeyRepr, CompleteRepr, EncryptedPacket, FileInfoAckRepr, Func,
    GroupSize, Grtt, HeaderRepr, IdList, KeyExchange, KeyInfoAckRepr, KeyInfoEntry, KeyInfoRepr,
    KeyType, List, Message, Record, RegConfRepr, RegisterRepr, Repr, StatusRepr, Timestamp,
    ABORT_FLAG_CURRENT_FILE, ENC_FLAG_CLIENT_AUTH, FILEINFO_ACK_FLAG_PARTIAL, HEADER_LEN, VERSION,
};

/// Bytes of a client's ABORT reason passed upstream.
const REASON_LEN: usize = 64;
/// Queued ABORTs a session may hold.
const ABORT_QUEUE: usize = 8;
/// Events one call may produce before they are handed to the proxy.
const CALL_EVENTS: usize = 16;
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What a group's handlers borrow from the proxy for one call, and what they give back.
pub(super) struct Context<'a, R: RsaKeys> {
    pub config: &'a ProxyConfig,
    pub rsa: &'a mut R,
    pub drbg: &'a mut Drbg,
    /// A server proxy's downstream address.
    pub downstream: Option<SocketAddr>,
    pub events: Deque<Event, CALL_EVENTS>,
    pub counters: Counters,
}

impl<R: RsaKeys> Context<'_, R> {
    fn event(&mut self, e: Event) {
        if self.events.push_back(e).is_err() {
            self.counters.events_lost += 1;
        }
    }

    fn drop_dgram(&mut self, reason: DropReason) {
        self.counters.dropped[reason.index()] += 1;
    }

    /// The events and counts gathered during the call.
    pub fn finish(self) -> (Deque<Event, CALL_EVENTS>, Counters) {
        (self.events, self.counters)
    }
}

/// Why a new session is not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// Dropped and counted, without a reply (an untrusted server, a forged ANNOUNCE).
    Silently(DropReason),
    /// With an ABORT upstream.
    Abort(AbortReason, Option<&'static str>),
}

/// Where a client stands with the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    /// REGISTER taken; CLIENT_KEY due before anything else (client authentication).
    AwaitClientKey,
    /// Registered (keys derived when encrypted); waiting for the server's REG_CONF.
    Registered,
    /// The server's REG_CONF named it: its KEYINFO goes out once the group master is known.
    Confirmed,
    /// Its KEYINFO_ACK verified (encrypted sessions): done registering.
    Ready,
    /// Refused or gone.
    Gone,
}

#[derive(Debug, Clone)]
struct Member {
    id: u32,
    state: MemberState,
    keys: PeerKeys,
    /// The aggregate whose list it is in.
    pending: Option<u8>,
    /// Its REGISTER's echoed timestamp and when it came (for the aggregate REGISTER).
    reg_echo: Timestamp,
    reg_rx: Instant,
    /// Its entry is due in the next KEYINFO.
    keyinfo: bool,
}

/// The encrypted side of a session at a client or response proxy.
struct Security {
    /// The proxy as the server's client: its own premaster, CLIENT_KEY, and the group keys once
    /// the server's KEYINFO delivered them.
    up: Keys,
    /// The proxy as its clients' server.
    down: ServerHandshake,
    keyex: KeyExchange,
    /// Client proxy: the key and ECDH blobs it puts in the ANNOUNCE it re-multicasts.
    key_blob: Vec<u8, MAX_BLOB>,
    dh_blob: Vec<u8, MAX_DH_BLOB>,
    /// The server key's fingerprint.
    server_fp: Fingerprint,
}

/// A queued ABORT.
#[derive(Debug, Clone)]
struct PendingAbort {
    /// Upstream (for a client, `host` its ID) or downstream (to `host`, 0 for all).
    up: bool,
    host: u32,
    reason: Vec<u8, REASON_LEN>,
}

/// One session at a proxy.
pub(super) struct Group<const CLIENTS: usize> {
    group_id: u32,
    group_inst: u8,
    server_id: u32,
    mode: ProxyMode,
    uid: u32,
    /// Where the session's ANNOUNCE came from; responses go back there.
    up: SocketAddr,
    /// Client and response proxies: where ANNOUNCE and everything else go on the clients'
    /// network.
    public: SocketAddr,
    private: SocketAddr,
    blocksize: u16,
    robust: u8,
    /// The server's GRTT and group size, as its last header gave them.
    grtt: Grtt,
    gsize: GroupSize,
    /// Upstream sequence number (REGISTER, KEYINFO_ACK, aggregates, ABORT).
    seq_up: u16,
    /// Ends when nothing happened for its idle time.
    idle_until: Instant,
    /// Clients of an encrypted session not done registering by then are aborted.
    register_until: Instant,
    sec: Option<Security>,
    members: Vec<Member, CLIENTS>,
    agg: Aggregates,
    /// When the pending aggregates go upstream.
    flush_at: Option<Instant>,
    /// When KEYINFO goes again to clients that have not acknowledged it.
    keyinfo_at: Option<Instant>,
    send_keyinfo_ack: bool,
    /// CLIENT_KEY follows our next REGISTER (client authentication upstream).
    send_client_key: bool,
    /// An aggregate whose list is partly sent, and where its list stands.
    aborts: Deque<PendingAbort, ABORT_QUEUE>,
    over: Option<GroupEnd>,
}

/// An unencrypted ABORT from `src_id` into `buf`; returns its length.
pub(super) fn emit_plain_abort(
    src_id: u32,
    group_id: u32,
    group_inst: u8,
    seq: u16,
    host: u32,
    reason: &[u8],
    buf: &mut [u8],
) -> Option<usize> {
    let header = HeaderRepr {
        seq,
        src_id,
        group_id,
        group_inst,
        grtt: Grtt(0),
        gsize: GroupSize(0),
    };
    let message = Message::Abort(AbortRepr {
        flags: 0,
        host,
        reason,
    });
    Repr { header, message }.emit(buf).ok()
}

/// A fresh ephemeral ECDH key on `curve` (a scalar out of range is drawn again).
fn ephemeral(drbg: &mut Drbg, curve: CurveId) -> Option<EcPrivateKey> {
    let len = curve.field_len()?;
    let mut scalar = [0u8; 48];
    for _ in 0..16 {
        drbg.fill(&mut scalar[..len]);
        if let Ok(k) = EcPrivateKey::from_scalar(curve, &scalar[..len]) {
            scalar.fill(0);
            return Some(k);
        }
    }
    None
}

/// Where the key blob and the ECDH blob of an encrypted ANNOUNCE sit in the datagram.
fn announce_blobs(datagram: &[u8]) -> Option<(core::ops::Range<usize>, core::ops::Range<usize>)> {
    let repr = Repr::parse(datagram).ok()?;
    let Message::Announce(a) = repr.message else {
        return None;
    };
    let enc = a.enc_info?;
    // The parsed blobs borrow from `datagram`: their addresses give their offsets exactly.
    let base = datagram.as_ptr().addr();
    let key = enc.key_blob.as_ptr().addr().wrapping_sub(base);
    let dh = enc.dh_blob.as_ptr().addr().wrapping_sub(base);
    let key = key..key + enc.key_blob.len();
    let dh = dh..dh + enc.dh_blob.len();
    (key.end <= datagram.len() && dh.end <= datagram.len() && key.start >= HEADER_LEN)
        .then_some((key, dh))
}

impl<const CLIENTS: usize> Group<CLIENTS> {
    pub fn is(&self, group_id: u32, group_inst: u8) -> bool {
        self.group_id == group_id && self.group_inst == group_inst
    }

    pub fn is_over(&self) -> bool {
        self.over.is_some()
    }

    pub fn info(&self) -> GroupInfo {
        let live = |m: &&Member| m.state != MemberState::Gone;
        let ready = |m: &&Member| match self.sec {
            Some(_) => m.state == MemberState::Ready,
            None => !matches!(m.state, MemberState::Gone | MemberState::AwaitClientKey),
        };
        GroupInfo {
            group_id: self.group_id,
            group_inst: self.group_inst,
            server_id: self.server_id,
            upstream: self.up,
            encrypted: self.sec.is_some(),
            clients: self.members.iter().filter(live).count(),
            ready: self.members.iter().filter(ready).count(),
        }
    }

    pub fn started_event(&self) -> Event {
        Event::GroupStarted {
            group_id: self.group_id,
            group_inst: self.group_inst,
            server_id: self.server_id,
            upstream: self.up,
            private_addr: self.private.ip(),
            cipher: self.sec.as_ref().map_or(KeyType::None, |s| s.up.keytype),
            fingerprint: self.sec.as_ref().map(|s| s.server_fp),
        }
    }

    pub fn ended_event(&self) -> Event {
        Event::GroupEnded {
            group_id: self.group_id,
            group_inst: self.group_inst,
            private_addr: self.private.ip(),
            reason: self.over.unwrap_or(GroupEnd::TimedOut),
        }
    }

    fn grtt(&self) -> Duration {
        Duration::from_micros(self.grtt.as_micros().max(1_000))
    }

    /// Idle time before a session is forgotten: 4×ROBUST×GRTT, at least 1 s (protocol.txt's
    /// figure; the 4.8 code's ROBUST×GRTT can be shorter than the gaps a server leaves).
    fn idle_time(&self) -> Duration {
        (self.grtt() * 4 * u32::from(self.robust)).max(MIN_TIMEOUT)
    }

    fn touch(&mut self, now: Instant) {
        self.idle_until = now + self.idle_time();
    }

    /// A new session from its first ANNOUNCE (`bytes`, from `from`).
    pub fn new<R: RsaKeys>(
        cx: &mut Context<'_, R>,
        now: Instant,
        from: SocketAddr,
        header: &HeaderRepr,
        bytes: &[u8],
    ) -> Result<Self, Refused> {
        let Ok(Repr {
            message: Message::Announce(a),
            ..
        }) = Repr::parse(bytes)
        else {
            return Err(Refused::Silently(DropReason::Malformed));
        };
        if !(10..=50).contains(&a.robust)
            || !(512..=8800).contains(&a.blocksize)
            || header.src_id == 0
        {
            return Err(Refused::Silently(DropReason::Malformed));
        }
        let mode = cx.config.mode;
        let port = cx.config.dest_port;
        let relays = matches!(mode, ProxyMode::Client | ProxyMode::Response);
        if relays && a.public_addr.is_unspecified() {
            // Unicast mode: there is no group to re-multicast to (uftpproxyd would send to
            // 0.0.0.0); the server should talk to its clients directly.
            return Err(Refused::Silently(DropReason::Unexpected));
        }
        let sec = match (mode, &a.enc_info) {
            (ProxyMode::Client | ProxyMode::Response, _) => {
                Self::negotiate(cx, from, header, &a, bytes)?
            }
            _ => None,
        };
        let mut g = Group {
            group_id: header.group_id,
            group_inst: header.group_inst,
            server_id: header.src_id,
            mode,
            uid: cx.config.uid,
            up: from,
            public: SocketAddr::new(a.public_addr, port),
            private: SocketAddr::new(a.private_addr, port),
            blocksize: a.blocksize,
            robust: a.robust,
            grtt: header.grtt,
            gsize: header.gsize,
            seq_up: 0,
            idle_until: now,
            register_until: now,
            sec,
            members: Vec::new(),
            agg: Aggregates::new(a.blocksize),
            flush_at: None,
            keyinfo_at: None,
            send_keyinfo_ack: false,
            send_client_key: false,
            aborts: Deque::new(),
            over: None,
        };
        g.touch(now);
        Ok(g)
    }

    /// The proxy's side of an encrypted session: the server's ANNOUNCE checked as a client
    /// checks it (server list, signature, policy) with the key exchange upstream prepared, then
    /// the key exchange it offers its own clients.
    fn negotiate<R: RsaKeys>(
        cx: &mut Context<'_, R>,
        from: SocketAddr,
        header: &HeaderRepr,
        a: &AnnounceRepr<'_>,
        bytes: &[u8],
    ) -> Result<Option<Security>, Refused> {
        let mut ec_keys: Vec<EcPrivateKey, { super::MAX_OWN_KEYS }> = Vec::new();
        for k in cx.config.keys.iter() {
            if let OwnKey::Ec(k) = k {
                let _ = ec_keys.push(k.clone());
            }
        }
        let policy = Policy {
            servers: &cx.config.servers,
            ec_keys: &ec_keys,
            require_encryption: false,
            allow_weak: cx.config.allow_weak,
            proxy: ProxyRoute::Direct,
        };
        let up = match client_keys::negotiate(&policy, cx.rsa, cx.drbg, header, a, bytes, from) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(Refusal::Quiet(_, _)) => return Err(Refused::Silently(DropReason::WrongServer)),
            Err(Refusal::Abort(reason, detail)) => return Err(Refused::Abort(reason, detail)),
        };
        let enc = a
            .enc_info
            .as_ref()
            .ok_or(Refused::Silently(DropReason::Malformed))?;
        let no_key = Refused::Abort(AbortReason::NoCompatibleKey, None);
        let server_key = KeyBlob::parse(enc.key_blob).map_err(|_| no_key)?;
        // The key the clients see: for a response proxy the one its PROXY_KEY gave (its
        // first), for a client proxy the first of the server key's type and size.
        let key = match cx.config.mode {
            ProxyMode::Response => {
                let first = cx.config.keys.first().cloned().ok_or(no_key)?;
                let same = compatible_key(&server_key, &ec_keys, &*cx.rsa);
                match (&first, &same) {
                    (OwnKey::Ec(f), Some(OwnKey::Ec(s))) if f.curve() == s.curve() => first,
                    (OwnKey::Rsa(f), Some(OwnKey::Rsa(_)))
                        if cx.rsa.modulus_len(*f) == server_key.rsa().map(|b| b.modulus.len()) =>
                    {
                        first
                    }
                    _ => return Err(no_key),
                }
            }
            _ => compatible_key(&server_key, &ec_keys, &*cx.rsa).ok_or(no_key)?,
        };
        let ecdh = matches!(enc.keyextype, KeyExchange::EcdhRsa | KeyExchange::EcdhEcdsa);
        let dh = if ecdh {
            let curve = KeyBlob::parse(enc.dh_blob)
                .ok()
                .and_then(|b| b.ec())
                .and_then(|b| EcPublicKey::from_blob(&b).ok())
                .map(|k| k.curve())
                .ok_or(Refused::Abort(AbortReason::UnsupportedCrypto, None))?;
            let k = match cx.config.mode {
                ProxyMode::Response => cx
                    .config
                    .ecdh_key
                    .clone()
                    .filter(|k| k.curve() == curve)
                    .ok_or(no_key)?,
                _ => ephemeral(cx.drbg, curve).ok_or(no_key)?,
            };
            Some(k)
        } else {
            None
        };
        let mut key_blob = Vec::new();
        let _ = key_blob.resize(MAX_BLOB, 0);
        let n = own_blob(&key, &*cx.rsa, &mut key_blob).map_err(|_| no_key)?;
        key_blob.truncate(n);
        let mut dh_blob = Vec::new();
        if let Some(k) = &dh {
            let public = k.public_key();
            let _ = dh_blob.resize(public.blob_len(), 0);
            public.emit_blob(&mut dh_blob).map_err(|_| no_key)?;
        }
        if cx.config.mode == ProxyMode::Client
            && (key_blob.len() != enc.key_blob.len() || dh_blob.len() != enc.dh_blob.len())
        {
            // Our blobs go in place of the server's: they must take the same room.
            return Err(no_key);
        }
        let client_auth = enc.flags & ENC_FLAG_CLIENT_AUTH != 0;
        let down = ServerHandshake::new(
            enc.keytype,
            enc.hashtype,
            client_auth,
            key,
            dh,
            enc.rand1,
            header.group_id,
            &a.private_addr,
        );
        Ok(Some(Security {
            up,
            down,
            keyex: enc.keyextype,
            key_blob,
            dh_blob,
            server_fp: Fingerprint::of(enc.key_blob),
        }))
    }

    // ------------------------------------------------------------ from upstream

    /// An ANNOUNCE for this session: passed on (a client proxy with its own keys in it).
    pub fn on_announce<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        from: SocketAddr,
        header: &HeaderRepr,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        if from != self.up || header.src_id != self.server_id {
            cx.drop_dgram(DropReason::WrongServer);
            return None;
        }
        self.grtt = header.grtt;
        self.gsize = header.gsize;
        self.touch(now);
        self.register_until = now + (self.grtt() * u32::from(self.robust)).max(MIN_TIMEOUT);
        let dest = match self.mode {
            ProxyMode::Server(_) => cx.downstream?,
            ProxyMode::Client => self.public,
            ProxyMode::Response => return None,
        };
        if let (ProxyMode::Client, Some(sec)) = (self.mode, &self.sec) {
            let (key, dh) = announce_blobs(bytes)?;
            if key.len() != sec.key_blob.len() || dh.len() != sec.dh_blob.len() {
                cx.drop_dgram(DropReason::Malformed);
                return None;
            }
            bytes[key].copy_from_slice(&sec.key_blob);
            bytes[dh].copy_from_slice(&sec.dh_blob);
            let signed = crate::session::sender::sign_announce_with(
                &sec.down.key,
                sec.keyex,
                &*cx.rsa,
                bytes,
            );
            if signed.is_err() {
                cx.counters.transmit_errors += 1;
                return None;
            }
        }
        cx.counters.forwarded_down += 1;
        Some(Transmit {
            dest,
            len: bytes.len(),
        })
    }

    /// Any datagram but ANNOUNCE for this session.
    pub fn handle_datagram<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        from: SocketAddr,
        header: &HeaderRepr,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        self.touch(now);
        let upstream = from == self.up;
        if let ProxyMode::Server(_) = self.mode {
            // A server proxy changes nothing: downstream what comes from the session's sender,
            // back to it whatever comes from elsewhere.
            let dest = if upstream {
                self.grtt = header.grtt;
                self.gsize = header.gsize;
                cx.counters.forwarded_down += 1;
                cx.downstream?
            } else {
                cx.counters.forwarded_up += 1;
                self.up
            };
            return Some(Transmit {
                dest,
                len: bytes.len(),
            });
        }
        if upstream {
            self.on_upstream(cx, header, bytes)
        } else {
            self.on_downstream(cx, now, header, bytes)
        }
    }

    fn on_upstream<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        header: &HeaderRepr,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        if header.src_id != self.server_id {
            cx.drop_dgram(DropReason::WrongServer);
            return None;
        }
        self.grtt = header.grtt;
        self.gsize = header.gsize;
        let func = Func::from(bytes[1]);
        let consumed = match func {
            Func::KeyInfo if self.sec.is_some() => {
                self.on_keyinfo(cx, header, bytes);
                true
            }
            Func::RegConf if self.sec.is_some() => {
                self.on_regconf(bytes);
                true
            }
            Func::Abort => {
                self.on_server_abort(bytes);
                false
            }
            _ => false,
        };
        if consumed || self.mode != ProxyMode::Client {
            // A response proxy's clients hear the server themselves.
            return None;
        }
        cx.counters.forwarded_down += 1;
        Some(Transmit {
            dest: self.private,
            len: bytes.len(),
        })
    }

    /// KEYINFO from the server: our entry carries the group master, which we acknowledge and
    /// hand on to our confirmed clients.
    fn on_keyinfo<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        header: &HeaderRepr,
        bytes: &[u8],
    ) {
        let Some(sec) = self.sec.as_mut() else {
            return;
        };
        let Ok(Repr {
            message: Message::KeyInfo(k),
            ..
        }) = Repr::parse(bytes)
        else {
            cx.drop_dgram(DropReason::Malformed);
            return;
        };
        let Some(entry) = k.entries.iter().find(|e| e.client_id == self.uid) else {
            return;
        };
        let group = accept_keyinfo(
            &sec.up,
            VERSION,
            header.src_id,
            k.iv_ctr,
            &entry.group_master,
            self.group_id,
            &self.private.ip(),
        );
        let Ok(group) = group else {
            cx.drop_dgram(DropReason::AuthFailed);
            return;
        };
        match &sec.up.group {
            Some(g) if g.master != group.master => {
                cx.drop_dgram(DropReason::AuthFailed);
                return;
            }
            Some(_) => {}
            None => {
                sec.up.group = Some(group);
                for m in self.members.iter_mut() {
                    if m.state == MemberState::Confirmed {
                        m.keyinfo = true;
                    }
                }
            }
        }
        self.send_keyinfo_ack = true;
    }

    /// REG_CONF of an encrypted session: the clients it names get their KEYINFO from us.
    fn on_regconf(&mut self, bytes: &[u8]) {
        let Ok(Repr {
            message: Message::RegConf(RegConfRepr { client_ids }),
            ..
        }) = Repr::parse(bytes)
        else {
            return;
        };
        let keyed = self.sec.as_ref().is_some_and(|s| s.up.group.is_some());
        for id in client_ids.iter() {
            let Some(m) = self.members.iter_mut().find(|m| m.id == id) else {
                continue;
            };
            if matches!(
                m.state,
                MemberState::Registered | MemberState::Confirmed | MemberState::Ready
            ) {
                if m.state != MemberState::Ready {
                    m.state = MemberState::Confirmed;
                }
                m.keyinfo = keyed;
            }
        }
    }

    /// An unencrypted ABORT from the server: for everyone or us, the session ends; for one of
    /// our clients, that client is gone. (ENCRYPTED ones are passed on unread.)
    fn on_server_abort(&mut self, bytes: &[u8]) {
        let Ok(Repr {
            message: Message::Abort(a),
            ..
        }) = Repr::parse(bytes)
        else {
            return;
        };
        if a.host == 0 || a.host == self.uid {
            if a.host != 0 || a.flags & ABORT_FLAG_CURRENT_FILE == 0 {
                self.over = Some(GroupEnd::Aborted);
            }
        } else if let Some(m) = self.members.iter_mut().find(|m| m.id == a.host) {
            m.state = MemberState::Gone;
        }
    }

    // ------------------------------------------------------------ from clients

    fn on_downstream<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        header: &HeaderRepr,
        bytes: &mut [u8],
    ) -> Option<Transmit> {
        let id = header.src_id;
        let func = Func::from(bytes[1]);
        if func == Func::Encrypted {
            self.on_encrypted(cx, now, id, bytes);
            return None;
        }
        let Ok(repr) = Repr::parse(bytes) else {
            cx.drop_dgram(DropReason::Malformed);
            return None;
        };
        let encrypted = self.sec.is_some();
        match repr.message {
            Message::Register(r) => self.on_register(cx, now, id, &r),
            Message::ClientKey(k) => self.on_client_key(cx, now, id, &k),
            Message::FileInfoAck(_) | Message::Status(_) | Message::Complete(_) if encrypted => {
                cx.drop_dgram(DropReason::Unauthenticated);
            }
            Message::FileInfoAck(_) | Message::Status(_) | Message::Complete(_) => {
                self.aggregate(cx, now, id, &repr.message);
            }
            Message::Abort(a) => self.on_client_abort(cx, id, &a),
            Message::KeyInfoAck(_) => cx.drop_dgram(DropReason::Unauthenticated),
            // Anything else (CC_ACK, or what this proxy does not know) goes up as it is.
            Message::Announce(_)
            | Message::RegConf(_)
            | Message::KeyInfo(_)
            | Message::FileInfo(_)
            | Message::FileSeg(_)
            | Message::Done(_)
            | Message::DoneConf(_)
            | Message::CongCtrl(_) => cx.drop_dgram(DropReason::Unexpected),
            _ => {
                cx.counters.forwarded_up += 1;
                return Some(Transmit {
                    dest: self.up,
                    len: bytes.len(),
                });
            }
        }
        None
    }

    fn member(&self, id: u32) -> Option<usize> {
        self.members.iter().position(|m| m.id == id)
    }

    fn refuse<R: RsaKeys>(&mut self, cx: &mut Context<'_, R>, i: usize, reason: RefuseReason) {
        let m = &mut self.members[i];
        m.state = MemberState::Gone;
        m.keys = PeerKeys::new();
        m.keyinfo = false;
        let id = m.id;
        self.unlist(i);
        cx.counters.clients_refused += 1;
        cx.event(Event::ClientRefused {
            group_id: self.group_id,
            client_id: id,
            reason,
        });
        self.queue_abort(false, id, reason.as_str().as_bytes());
    }

    fn queue_abort(&mut self, up: bool, host: u32, reason: &[u8]) {
        let mut r = Vec::new();
        let _ = r.extend_from_slice(&reason[..reason.len().min(REASON_LEN)]);
        if self.aborts.is_full() {
            let _ = self.aborts.pop_front();
        }
        let _ = self.aborts.push_back(PendingAbort {
            up,
            host,
            reason: r,
        });
    }

    fn on_register<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        id: u32,
        r: &RegisterRepr<'_>,
    ) {
        if id == 0 || id == u32::MAX || id == self.uid {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        }
        let i = match self.member(id) {
            Some(i) => i,
            None => {
                let m = Member {
                    id,
                    state: MemberState::Registered,
                    keys: PeerKeys::new(),
                    pending: None,
                    reg_echo: r.timestamp,
                    reg_rx: now,
                    keyinfo: false,
                };
                if self.members.push(m).is_err() {
                    self.queue_abort(false, id, b"Max destinations exceeded");
                    cx.drop_dgram(DropReason::UnknownClient);
                    return;
                }
                let i = self.members.len() - 1;
                if self.sec.is_none() {
                    cx.event(Event::ClientRegistered {
                        group_id: self.group_id,
                        client_id: id,
                    });
                }
                // Keys are derived below for a new member.
                self.members[i].keys.state = PeerState::None;
                i
            }
        };
        let m = &mut self.members[i];
        m.reg_echo = r.timestamp;
        m.reg_rx = now;
        if let Some(sec) = &self.sec {
            if m.state == MemberState::Gone {
                // It was refused and asks again: it may try once more.
                m.state = MemberState::Registered;
                m.keys = PeerKeys::new();
            }
            // A repeated REGISTER (same random) keeps the keys it gave; a new one starts over.
            let fresh = m.keys.state == PeerState::None || m.keys.rand2() != &r.rand2;
            if fresh {
                if let Err(reason) = sec
                    .down
                    .register(&*cx.rsa, &mut m.keys, &r.rand2, r.keyinfo)
                {
                    self.refuse(cx, i, reason);
                    return;
                }
                m.state = match m.keys.state {
                    PeerState::AwaitClientKey => MemberState::AwaitClientKey,
                    _ => MemberState::Registered,
                };
            }
            if m.state == MemberState::AwaitClientKey {
                return;
            }
        } else if m.state == MemberState::Gone {
            m.state = MemberState::Registered;
        }
        // Registered (or registered again: its REG_CONF or KEYINFO may have been lost; the
        // server answers a repeated REGISTER with REG_CONF, and that brings the KEYINFO).
        let slowest = Slowest {
            id,
            echo: r.timestamp,
            rx: now,
        };
        self.join(cx, now, i, Kind::Register, Some(slowest));
    }

    fn on_client_key<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        id: u32,
        k: &ClientKeyRepr<'_>,
    ) {
        let Some(sec) = &self.sec else {
            cx.drop_dgram(DropReason::Unexpected);
            return;
        };
        // Before its REGISTER it cannot be checked: dropped, and the client sends both again.
        let Some(i) = self
            .member(id)
            .filter(|&i| self.members[i].state == MemberState::AwaitClientKey)
        else {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        };
        let pins = &cx.config.clients;
        let pin = if pins.is_empty() {
            None
        } else {
            match pins.iter().find(|p| p.id == id) {
                // Listed without a fingerprint: any key.
                Some(p) => p.fingerprint,
                None => {
                    self.refuse(cx, i, RefuseReason::FingerprintMismatch);
                    return;
                }
            }
        };
        let m = &mut self.members[i];
        match sec
            .down
            .client_key(&*cx.rsa, &mut m.keys, pin, k.key_blob, k.signature)
        {
            Ok(()) => {
                m.state = MemberState::Registered;
                let slowest = Slowest {
                    id,
                    echo: m.reg_echo,
                    rx: m.reg_rx,
                };
                self.join(cx, now, i, Kind::Register, Some(slowest));
            }
            Err(reason) => self.refuse(cx, i, reason),
        }
    }

    /// ENCRYPTED from a client: replay window, then authentication and decryption in place
    /// under the group keys, then the inner message.
    fn on_encrypted<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        id: u32,
        bytes: &mut [u8],
    ) {
        let Some(i) = self.member(id) else {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        };
        let Some(group) = self.sec.as_ref().and_then(|s| s.up.group.as_ref()) else {
            cx.drop_dgram(DropReason::AuthFailed);
            return;
        };
        if !matches!(
            self.members[i].state,
            MemberState::Confirmed | MemberState::Ready | MemberState::Registered
        ) || self.members[i].keys.state != PeerState::Keyed
        {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        }
        let ctr = match bytes.get(HEADER_LEN..).map(EncryptedPacket::new_checked) {
            Some(Ok(enc)) => enc.iv_ctr(),
            _ => {
                cx.drop_dgram(DropReason::Malformed);
                return;
            }
        };
        if !self.members[i].keys.window.is_fresh(ctr) {
            cx.drop_dgram(DropReason::Replayed);
            return;
        }
        let range = match group.envelope.open(bytes) {
            Ok(r) => r,
            Err(_) => {
                cx.drop_dgram(DropReason::AuthFailed);
                return;
            }
        };
        self.members[i].keys.window.accept(ctr);
        let Some(Ok(message)) = bytes.get(range).map(Message::parse_inner) else {
            cx.drop_dgram(DropReason::Malformed);
            return;
        };
        match message {
            Message::KeyInfoAck(KeyInfoAckRepr { verify_data }) => {
                let Some(sec) = &self.sec else { return };
                let Some(group) = &sec.up.group else { return };
                let m = &mut self.members[i];
                if sec.down.ack_matches(&m.keys, &group.master, &verify_data) {
                    m.keyinfo = false;
                    if m.state != MemberState::Ready {
                        m.state = MemberState::Ready;
                        cx.event(Event::ClientRegistered {
                            group_id: self.group_id,
                            client_id: id,
                        });
                    }
                } else {
                    self.refuse(cx, i, RefuseReason::BadVerifyData);
                }
            }
            Message::FileInfoAck(_) | Message::Status(_) | Message::Complete(_) => {
                self.aggregate(cx, now, id, &message);
            }
            Message::Abort(a) => self.on_client_abort(cx, id, &a),
            _ => cx.drop_dgram(DropReason::Unexpected),
        }
    }

    fn on_client_abort<R: RsaKeys>(&mut self, cx: &mut Context<'_, R>, id: u32, a: &AbortRepr<'_>) {
        let Some(i) = self.member(id) else {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        };
        self.members[i].state = MemberState::Gone;
        self.members[i].keyinfo = false;
        self.unlist(i);
        self.queue_abort(true, id, a.reason);
    }

    /// A FILEINFO_ACK, STATUS or COMPLETE from client `id` joins its aggregate.
    fn aggregate<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        id: u32,
        message: &Message<'_>,
    ) {
        let Some(i) = self.member(id) else {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        };
        let ready = match self.sec {
            Some(_) => self.members[i].state == MemberState::Ready,
            None => matches!(
                self.members[i].state,
                MemberState::Registered | MemberState::Confirmed | MemberState::Ready
            ),
        };
        if !ready {
            cx.drop_dgram(DropReason::UnknownClient);
            return;
        }
        match message {
            Message::FileInfoAck(f) => {
                let kind = Kind::FileInfoAck {
                    file_id: f.file_id,
                    partial: f.flags & FILEINFO_ACK_FLAG_PARTIAL != 0,
                };
                let slowest = Slowest {
                    id,
                    echo: f.timestamp,
                    rx: now,
                };
                self.join(cx, now, i, kind, Some(slowest));
            }
            Message::Status(s) => {
                let kind = Kind::Status {
                    file_id: s.file_id,
                    section: s.section,
                    naks: 0,
                };
                if let Placed::Slot(slot) = self.agg.place(kind) {
                    // The bitmap starts right after the STATUS header; a TFMCC extension
                    // is not part of it (4.8 read it as bitmap, digest §7).
                    self.agg.merge_naks(slot, s.naks);
                    if let Some(p) = self.agg.slots[slot].as_mut() {
                        p.count += 1;
                    }
                    cx.counters.responses_aggregated += 1;
                    self.arm_flush(now);
                } else {
                    cx.drop_dgram(DropReason::Unexpected);
                }
            }
            Message::Complete(c) => {
                let kind = Kind::Complete {
                    file_id: c.file_id,
                    status: c.status,
                };
                self.join(cx, now, i, kind, None);
            }
            _ => {}
        }
    }

    /// Puts member `i` in the list of the aggregate for `kind`.
    fn join<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        i: usize,
        kind: Kind,
        slowest: Option<Slowest>,
    ) {
        let slot = match self.agg.place(kind) {
            Placed::Slot(s) => s,
            Placed::Full => {
                cx.drop_dgram(DropReason::Unexpected);
                return;
            }
        };
        if self.members[i].pending != Some(slot as u8) {
            self.unlist(i);
            self.members[i].pending = Some(slot as u8);
            if let Some(p) = self.agg.slots[slot].as_mut() {
                p.count += 1;
                if let (
                    Kind::FileInfoAck { partial: a, .. },
                    Kind::FileInfoAck {
                        partial: b,
                        file_id,
                    },
                ) = (&mut p.kind, kind)
                {
                    // PARTIAL only if every client in the list says so.
                    let both = b && (p.count == 1 || *a);
                    p.kind = Kind::FileInfoAck {
                        file_id,
                        partial: both,
                    };
                }
            }
        }
        if let Some(s) = slowest {
            self.agg.consider(slot, s);
        }
        cx.counters.responses_aggregated += 1;
        // A full list goes at once; otherwise everything waits one GRTT.
        let max = self.max_ids();
        if self.agg.slots[slot].is_some_and(|p| p.count as usize >= max) {
            if let Some(p) = self.agg.slots[slot].as_mut() {
                p.due = true;
            }
        }
        self.arm_flush(now);
    }

    /// Takes member `i` out of the list it is in.
    fn unlist(&mut self, i: usize) {
        if let Some(old) = self.members[i].pending.take() {
            let slot = usize::from(old);
            if let Some(p) = self.agg.slots[slot].as_mut() {
                p.count = p.count.saturating_sub(1);
                if p.count == 0 && p.kind.lists() {
                    self.agg.free(slot);
                }
            }
        }
    }

    fn arm_flush(&mut self, now: Instant) {
        if self.flush_at.is_none() {
            self.flush_at = Some(now + self.grtt());
        }
    }

    /// Most client IDs an aggregate lists in one packet (a block's worth, digest §2.4).
    fn max_ids(&self) -> usize {
        (usize::from(self.blocksize) / 4).max(1)
    }

    // ------------------------------------------------------------ timers

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.over.is_some() {
            return Some(Instant::ZERO);
        }
        let register = self
            .sec
            .as_ref()
            .filter(|_| {
                self.members
                    .iter()
                    .any(|m| !matches!(m.state, MemberState::Ready | MemberState::Gone))
            })
            .map(|_| self.register_until);
        [
            Some(self.idle_until),
            self.flush_at,
            self.keyinfo_at,
            register,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout<R: RsaKeys>(&mut self, cx: &mut Context<'_, R>, now: Instant) {
        if self.flush_at.is_some_and(|t| now >= t) {
            self.flush_at = None;
            self.agg.all_due();
        }
        if self.keyinfo_at.is_some_and(|t| now >= t) {
            self.keyinfo_at = None;
            let keyed = self.sec.as_ref().is_some_and(|s| s.up.group.is_some());
            if keyed && now < self.register_until {
                for m in self.members.iter_mut() {
                    if m.state == MemberState::Confirmed {
                        m.keyinfo = true;
                    }
                }
            }
        }
        if self.sec.is_some() && now >= self.register_until {
            // Clients that did not finish their key exchange in time are out.
            for i in 0..self.members.len() {
                let m = &self.members[i];
                if !matches!(m.state, MemberState::Ready | MemberState::Gone) {
                    let id = m.id;
                    self.members[i].state = MemberState::Gone;
                    self.members[i].keyinfo = false;
                    self.unlist(i);
                    let reason = b"Client not fully registered at proxy";
                    self.queue_abort(false, id, reason);
                    self.queue_abort(true, id, reason);
                }
            }
        }
        if now >= self.idle_until && self.agg.is_empty() && self.aborts.is_empty() {
            self.over = Some(GroupEnd::TimedOut);
        } else if now >= self.idle_until {
            self.agg.all_due();
        }
        let _ = cx;
    }

    // ------------------------------------------------------------ output

    fn up_header(&mut self) -> HeaderRepr {
        let seq = self.seq_up;
        self.seq_up = self.seq_up.wrapping_add(1);
        HeaderRepr {
            seq,
            src_id: self.uid,
            group_id: self.group_id,
            group_inst: self.group_inst,
            grtt: Grtt(0),
            gsize: GroupSize(0),
        }
    }

    /// The group envelope and the next IV counter value, when sealing upstream.
    fn seal_with(&mut self) -> Option<(Envelope, u64)> {
        let sec = self.sec.as_mut()?;
        let envelope = sec.up.group.as_ref()?.envelope.clone();
        let ctr = sec.up.next_ctr();
        Some((envelope, ctr))
    }

    pub fn poll_transmit<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        while let Some(a) = self.aborts.pop_front() {
            if let Some(t) = self.emit_abort(&a, buf) {
                return Some(t);
            }
            cx.counters.transmit_errors += 1;
        }
        if core::mem::take(&mut self.send_keyinfo_ack) {
            if let Some(t) = self.emit_keyinfo_ack(buf) {
                return Some(t);
            }
            cx.counters.transmit_errors += 1;
        }
        if core::mem::take(&mut self.send_client_key) {
            if let Some(t) = self.emit_client_key(buf) {
                return Some(t);
            }
            cx.counters.transmit_errors += 1;
        }
        for slot in 0..self.agg.slots.len() {
            if self.agg.slots[slot].is_some_and(|p| p.due) {
                if let Some(t) = self.emit_aggregate(cx, now, slot, buf) {
                    cx.counters.aggregates_sent += 1;
                    return Some(t);
                }
            }
        }
        if self.members.iter().any(|m| m.keyinfo) {
            if let Some(t) = self.emit_keyinfo(buf) {
                cx.counters.keyinfo_sent += 1;
                if self.keyinfo_at.is_none() {
                    self.keyinfo_at = Some(now + self.grtt() * 2);
                }
                return Some(t);
            }
            for m in self.members.iter_mut() {
                m.keyinfo = false;
            }
        }
        None
    }

    fn emit_abort(&mut self, a: &PendingAbort, buf: &mut [u8]) -> Option<Transmit> {
        if a.up {
            let header = self.up_header();
            let message = Message::Abort(AbortRepr {
                flags: 0,
                host: a.host,
                reason: &a.reason,
            });
            let seal = self.seal_with();
            let len = emit_datagram(&header, &message, buf, seal.as_ref().map(|(e, c)| (e, *c)))?;
            return Some(Transmit { dest: self.up, len });
        }
        // Downstream in the server's name (clients take ABORTs only from it), in the clear:
        // a client still registering takes it; one that holds the group keys does not, and it
        // times out instead. Never sealed under the server's ID with our counter (the pair
        // must not repeat under the group key).
        let len = emit_plain_abort(
            self.server_id,
            self.group_id,
            self.group_inst,
            0,
            a.host,
            &a.reason,
            buf,
        )?;
        Some(Transmit {
            dest: self.private,
            len,
        })
    }

    fn emit_keyinfo_ack(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let verify_data = self.sec.as_ref()?.up.group.as_ref()?.verify_data;
        let header = self.up_header();
        let message = Message::KeyInfoAck(KeyInfoAckRepr { verify_data });
        let (envelope, ctr) = self.seal_with()?;
        let len = emit_datagram(&header, &message, buf, Some((&envelope, ctr)))?;
        Some(Transmit { dest: self.up, len })
    }

    fn emit_client_key(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let header = self.up_header();
        let sec = self.sec.as_ref()?;
        let message = Message::ClientKey(ClientKeyRepr {
            key_blob: &sec.up.own_blob,
            signature: &sec.up.signature,
        });
        let len = Repr { header, message }.emit(buf).ok()?;
        Some(Transmit { dest: self.up, len })
    }

    /// One packet of aggregate `slot`: STATUS whole, the list kinds a block's worth of IDs at
    /// a time (the slowest client first).
    fn emit_aggregate<R: RsaKeys>(
        &mut self,
        cx: &mut Context<'_, R>,
        now: Instant,
        slot: usize,
        buf: &mut [u8],
    ) -> Option<Transmit> {
        let p = self.agg.slots[slot]?;
        let header = self.up_header();
        let seal = self.seal_with();
        if self.sec.is_some() && seal.is_none() && !matches!(p.kind, Kind::Register) {
            // No group keys (yet): nothing sealed can go.
            self.agg.free(slot);
            return None;
        }
        let seal = seal.as_ref().map(|(e, c)| (e, *c));
        if let Kind::Status {
            file_id,
            section,
            naks,
        } = p.kind
        {
            let message = Message::Status(StatusRepr {
                file_id,
                section,
                tfmcc: None,
                naks: self.agg.naks(naks),
            });
            let len = emit_datagram(&header, &message, buf, seal);
            self.agg.free(slot);
            return len.map(|len| Transmit { dest: self.up, len });
        }
        let echo = p
            .slowest
            .map_or(Timestamp::from_micros(0), |s| s.echo_at(now));
        let sec_keys = self.sec.as_ref().map(|s| (s.up.rand2, &s.up.keyinfo[..]));
        let message = match p.kind {
            Kind::Register => {
                let (rand2, keyinfo) = sec_keys.unwrap_or(([0; 32], &[]));
                Message::Register(RegisterRepr {
                    timestamp: echo,
                    rand2,
                    keyinfo,
                    client_ids: IdList::EMPTY,
                })
            }
            Kind::FileInfoAck { file_id, partial } => Message::FileInfoAck(FileInfoAckRepr {
                file_id,
                flags: if partial {
                    FILEINFO_ACK_FLAG_PARTIAL
                } else {
                    0
                },
                timestamp: echo,
                client_ids: IdList::EMPTY,
            }),
            Kind::Complete { file_id, status } => Message::Complete(CompleteRepr {
                file_id,
                status,
                freespace: None,
                client_ids: IdList::EMPTY,
            }),
            Kind::Status { .. } => return None,
        };
        // REGISTER always travels in the clear.
        let seal = if matches!(p.kind, Kind::Register) {
            None
        } else {
            seal
        };
        let off = seal.map_or(HEADER_LEN, |(e, _)| e.inner_offset());
        let body = message.emit(buf.get_mut(off..)?).ok()?;
        let func = message.func();
        // The list: the slowest first, then the others in table order.
        let max = self.max_ids();
        let first = p.slowest.map(|s| s.id);
        let mut at = off + body;
        let mut n = 0;
        let mut put = |g: &mut Self, i: usize, at: &mut usize, n: &mut usize| -> bool {
            let id = g.members[i].id;
            let Some(dst) = buf.get_mut(*at..*at + 4) else {
                return false;
            };
            dst.copy_from_slice(&id.to_be_bytes());
            *at += 4;
            *n += 1;
            g.members[i].pending = None;
            true
        };
        if let Some(i) = first.and_then(|id| self.member(id)) {
            if self.members[i].pending == Some(slot as u8) {
                put(self, i, &mut at, &mut n);
            }
        }
        for i in 0..self.members.len() {
            if n == max {
                break;
            }
            if self.members[i].pending == Some(slot as u8) && !put(self, i, &mut at, &mut n) {
                break;
            }
        }
        let left = self
            .members
            .iter()
            .filter(|m| m.pending == Some(slot as u8))
            .count();
        match left {
            0 => self.agg.free(slot),
            _ => {
                if let Some(p) = self.agg.slots[slot].as_mut() {
                    p.count = left as u32;
                    p.slowest = None;
                }
            }
        }
        if n == 0 {
            return None;
        }
        let len = match seal {
            Some((envelope, ctr)) => envelope.seal(buf, &header, at - off, ctr).ok()?,
            None => {
                header.emit(func, buf).ok()?;
                at
            }
        };
        if matches!(p.kind, Kind::Register) && self.sec.as_ref().is_some_and(|s| s.up.client_auth) {
            self.send_client_key = true;
        }
        let _ = cx;
        Some(Transmit { dest: self.up, len })
    }

    /// KEYINFO to our clients: the group master wrapped for each whose entry is due, in the
    /// server's name with seq 0 and our own IV counter (digest §2.1, §5.6).
    fn emit_keyinfo(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let header = HeaderRepr {
            seq: 0,
            src_id: self.server_id,
            group_id: self.group_id,
            group_inst: self.group_inst,
            grtt: self.grtt,
            gsize: self.gsize,
        };
        let max = (usize::from(self.blocksize) / KeyInfoEntry::LEN).max(1);
        let sec = self.sec.as_mut()?;
        let master = sec.up.group.as_ref()?.master;
        let ctr = sec.up.next_ctr();
        let message = Message::KeyInfo(KeyInfoRepr {
            iv_ctr: ctr,
            entries: List::EMPTY,
        });
        let mut len = Repr { header, message }.emit(buf).ok()?;
        let mut n = 0;
        for m in self.members.iter_mut() {
            if n == max {
                break;
            }
            if !core::mem::replace(&mut m.keyinfo, false) {
                continue;
            }
            let Some(group_master) = sec.down.keyinfo_entry(&m.keys, &master, header.src_id, ctr)
            else {
                continue;
            };
            let entry = KeyInfoEntry {
                client_id: m.id,
                group_master,
            };
            entry.write(buf.get_mut(len..len + KeyInfoEntry::LEN)?);
            len += KeyInfoEntry::LEN;
            n += 1;
        }
        (n > 0).then_some(Transmit {
            dest: self.private,
            len,
        })
    }
}
