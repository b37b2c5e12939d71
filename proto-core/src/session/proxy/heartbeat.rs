//! Heartbeats (digest §3.14, §7): HB_REQ sent every interval to a list of proxies, so that a
//! firewall or NAT keeps a pinhole open for the server proxy upstream, and the answers to them.
//!
//! A plain HB_REQ carries nothing. A server proxy that learns its downstream address from
//! heartbeats (`uftpproxyd -s fp=FP`) answers an unknown sender with a CHALLENGE nonce; the
//! sender then signs the 4 nonce bytes as they appear on the wire, always with SHA-1, with its
//! first key, and sends its public key blob along. The proxy checks the blob's fingerprint and
//! the signature and adopts the sender's address.
//!
//! [`Heartbeat`] is the sending side, a small sans-IO state machine of its own (a client proxy
//! runs one, and so does a receiver with `-H`). `HeartbeatAuth` is the answering side of a
//! server proxy.

use core::net::SocketAddr;
use core::time::Duration;

use heapless::Vec;

use super::super::client_keys::own_blob;
use super::super::security::OwnKey;
use super::super::Transmit;
use crate::crypto::{Drbg, EcPublicKey, Fingerprint, KeyBlob, KeyBlobKind, RsaKeys};
use crate::time::Instant;
use crate::wire::{
    GroupSize, Grtt, HashType, HbReqRepr, HbRespRepr, HbResult, HeaderRepr, Message, Repr,
};

/// How many hosts a heartbeat list may hold (`-H`).
pub const MAX_HB_HOSTS: usize = 8;
/// uftp's default heartbeat interval (`-h`).
pub const DEFAULT_HB_INTERVAL: Duration = Duration::from_secs(20);
/// The first early repeat of a heartbeat that no host has answered yet.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The largest key blob an authenticated HB_REQ carries (RSA-4096).
const MAX_BLOB: usize = 8 + 512;
/// The largest signature (RSA-4096).
const MAX_SIG: usize = 512;

/// The common header of heartbeats, KEY_REQ and PROXY_KEY: group 0, seq 0 (digest §2.1).
pub(crate) fn control_header(src_id: u32) -> HeaderRepr {
    HeaderRepr {
        seq: 0,
        src_id,
        group_id: 0,
        group_inst: 0,
        grtt: Grtt(0),
        gsize: GroupSize(0),
    }
}

/// Signs the 4 nonce bytes with `key` and SHA-1 (HB_REQ and PROXY_KEY); returns the length.
pub(crate) fn sign_nonce<R: RsaKeys>(
    key: &OwnKey,
    rsa: &R,
    nonce: u32,
    out: &mut [u8],
) -> Result<usize, crate::crypto::Error> {
    let bytes = nonce.to_be_bytes();
    match key {
        OwnKey::Ec(k) => k.sign(HashType::Sha1, &[&bytes], out),
        OwnKey::Rsa(i) => rsa.sign(*i, HashType::Sha1, &[&bytes], out),
    }
}

/// Verifies a SHA-1 signature over the 4 nonce bytes by the key in `blob`.
pub(crate) fn verify_nonce<R: RsaKeys>(rsa: &R, blob: &[u8], nonce: u32, signature: &[u8]) -> bool {
    let bytes = nonce.to_be_bytes();
    match KeyBlob::parse(blob).map(|b| b.kind()) {
        Ok(KeyBlobKind::Ec(b)) => EcPublicKey::from_blob(&b)
            .is_ok_and(|k| k.verify(HashType::Sha1, &[&bytes], signature).is_ok()),
        Ok(KeyBlobKind::Rsa(b)) => rsa.verify(&b, HashType::Sha1, &[&bytes], signature).is_ok(),
        Err(_) => false,
    }
}

impl Host {
    /// Not yet answered with OK or a refusal: heartbeats to it are repeated sooner.
    fn unsettled(&self) -> bool {
        !matches!(self.last, Some(HbResult::Ok | HbResult::Failed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Host {
    addr: SocketAddr,
    /// A plain HB_REQ is due.
    plain: bool,
    /// A challenge to answer with a signed HB_REQ.
    challenge: Option<u32>,
    /// The last answer.
    last: Option<HbResult>,
}

/// The sending side of heartbeats: a plain HB_REQ to every host every `interval`, and a signed
/// one to a host that challenges.
///
/// Call order: [`Heartbeat::handle_timeout`] when [`Heartbeat::poll_timeout`] has passed,
/// [`Heartbeat::handle_response`] for each HB_RESP, then [`Heartbeat::poll_transmit`] until
/// `None`.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    uid: u32,
    interval: Duration,
    /// Until every host has answered once, heartbeats are repeated sooner than `interval`:
    /// 1 s, then doubling up to it. A proxy that was not up yet when we started (or a lost
    /// first heartbeat) would otherwise leave the pinhole shut for a whole interval.
    retry: Duration,
    hosts: Vec<Host, MAX_HB_HOSTS>,
    next: Instant,
    /// When the last round of heartbeats was due.
    ticked: Instant,
}

impl Heartbeat {
    /// Heartbeats from `uid` to `hosts` every `interval`; the first go out at once.
    pub fn new(uid: u32, hosts: &[SocketAddr], interval: Duration) -> Self {
        let hosts = hosts
            .iter()
            .take(MAX_HB_HOSTS)
            .map(|&addr| Host {
                addr,
                plain: false,
                challenge: None,
                last: None,
            })
            .collect();
        Heartbeat {
            uid,
            interval: interval.max(Duration::from_secs(1)),
            retry: FIRST_RETRY,
            hosts,
            next: Instant::ZERO,
            ticked: Instant::ZERO,
        }
    }

    /// Whether there is anyone to send heartbeats to.
    pub fn is_active(&self) -> bool {
        !self.hosts.is_empty()
    }

    /// The last answer from `addr`, if it is one of the hosts and has answered.
    pub fn last_result(&self, addr: SocketAddr) -> Option<HbResult> {
        self.hosts.iter().find(|h| h.addr == addr)?.last
    }

    /// Whether [`Heartbeat::poll_transmit`] has an HB_REQ to send.
    pub fn has_pending(&self) -> bool {
        self.hosts.iter().any(|h| h.plain || h.challenge.is_some())
    }

    /// When [`Heartbeat::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.is_active().then_some(self.next)
    }

    /// Schedules the plain heartbeats that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_active() && now >= self.next {
            for h in self.hosts.iter_mut() {
                h.plain = true;
            }
            self.ticked = now;
            let wait = if self.hosts.iter().any(Host::unsettled) {
                let r = self.retry.min(self.interval);
                self.retry = (self.retry * 2).min(self.interval);
                r
            } else {
                self.interval
            };
            self.next = now + wait;
        }
    }

    /// An HB_RESP from `from`: a challenge from one of our hosts is answered with a signed
    /// HB_REQ. Returns whether `from` is one of the hosts.
    pub fn handle_response(&mut self, from: SocketAddr, resp: &HbRespRepr) -> bool {
        let Some(h) = self.hosts.iter_mut().find(|h| h.addr == from) else {
            return false;
        };
        h.last = Some(resp.result);
        if resp.result == HbResult::Challenge {
            h.challenge = Some(resp.nonce);
        }
        if !self.hosts.iter().any(Host::unsettled) {
            // Every host has answered: back to the interval.
            self.next = self.next.max(self.ticked + self.interval);
        }
        true
    }

    /// The next HB_REQ, written into `buf`. A signed one uses `key` (the first of the sender's
    /// keys, as uftp does); without a key a challenge is answered with a plain HB_REQ, which
    /// the challenger refuses.
    pub fn poll_transmit<R: RsaKeys>(
        &mut self,
        buf: &mut [u8],
        key: Option<&OwnKey>,
        rsa: &R,
    ) -> Option<Transmit> {
        let header = control_header(self.uid);
        for h in self.hosts.iter_mut() {
            if let Some(nonce) = h.challenge.take() {
                let mut blob = [0u8; MAX_BLOB];
                let mut sig = [0u8; MAX_SIG];
                let signed = key.and_then(|k| {
                    let bl = own_blob(k, rsa, &mut blob).ok()?;
                    let sl = sign_nonce(k, rsa, nonce, &mut sig).ok()?;
                    Some((bl, sl))
                });
                let req = match signed {
                    Some((bl, sl)) => HbReqRepr {
                        nonce,
                        key_blob: &blob[..bl],
                        signature: &sig[..sl],
                    },
                    None => HbReqRepr {
                        nonce: 0,
                        key_blob: &[],
                        signature: &[],
                    },
                };
                let message = Message::HbReq(req);
                if let Ok(len) = (Repr { header, message }).emit(buf) {
                    return Some(Transmit { dest: h.addr, len });
                }
            }
            if core::mem::take(&mut h.plain) {
                let message = Message::HbReq(HbReqRepr {
                    nonce: 0,
                    key_blob: &[],
                    signature: &[],
                });
                if let Ok(len) = (Repr { header, message }).emit(buf) {
                    return Some(Transmit { dest: h.addr, len });
                }
            }
        }
        None
    }
}

/// How a server proxy answers one HB_REQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HbAnswer {
    pub result: HbResult,
    pub nonce: u32,
    /// The downstream address the heartbeat established, if it did.
    pub established: Option<SocketAddr>,
}

/// The answering side of a server proxy that learns its downstream address from heartbeats
/// signed by the key with fingerprint `fingerprint` (`uftpproxyd -s fp=FP`).
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatAuth {
    fingerprint: Fingerprint,
    nonce: u32,
}

impl HeartbeatAuth {
    pub fn new(fingerprint: Fingerprint, drbg: &mut Drbg) -> Self {
        HeartbeatAuth {
            fingerprint,
            nonce: Self::fresh(drbg),
        }
    }

    fn fresh(drbg: &mut Drbg) -> u32 {
        // 0 is what a plain HB_REQ carries: never the nonce of a challenge.
        loop {
            let n = u32::from_be_bytes(drbg.bytes());
            if n != 0 {
                return n;
            }
        }
    }

    /// An HB_REQ from `from` while the downstream address is `current`: OK from the current
    /// one; a challenge to anyone else until it signs our nonce with the pinned key; then it
    /// becomes the downstream address and the nonce changes.
    pub fn answer<R: RsaKeys>(
        &mut self,
        rsa: &R,
        drbg: &mut Drbg,
        current: Option<SocketAddr>,
        from: SocketAddr,
        req: &HbReqRepr<'_>,
    ) -> HbAnswer {
        let reply = |result, nonce| HbAnswer {
            result,
            nonce,
            established: None,
        };
        if current == Some(from) {
            return reply(HbResult::Ok, 0);
        }
        if req.nonce != self.nonce {
            return reply(HbResult::Challenge, self.nonce);
        }
        let ok = Fingerprint::of(req.key_blob) == self.fingerprint
            && verify_nonce(rsa, req.key_blob, req.nonce, req.signature);
        if !ok {
            return reply(HbResult::Failed, 0);
        }
        self.nonce = Self::fresh(drbg);
        HbAnswer {
            result: HbResult::Ok,
            nonce: 0,
            established: Some(from),
        }
    }
}

/// An HB_RESP from `uid` into `buf`; returns its length.
pub(crate) fn emit_hb_resp(
    uid: u32,
    result: HbResult,
    nonce: u32,
    buf: &mut [u8],
) -> Option<usize> {
    let message = Message::HbResp(HbRespRepr { result, nonce });
    Repr {
        header: control_header(uid),
        message,
    }
    .emit(buf)
    .ok()
}
