//! An attacker on the multicast path: it hears everything the sender multicasts and sends
//! forged copies to the same groups, so tests can check that receivers drop and count each
//! forgery, write nothing from it, and still finish the transfer.
//!
//! The attacks, one kind per captured datagram in turn:
//! - [`Attack::FlipBit`]: an ENCRYPTED data packet with one ciphertext bit flipped;
//! - [`Attack::Replay`]: an ENCRYPTED data packet sent again as it was;
//! - [`Attack::Truncate`]: an ENCRYPTED data packet cut short by a few bytes;
//! - [`Attack::WrongKey`]: a well-formed ENCRYPTED packet, sealed under a group key of the
//!   attacker's with a counter far ahead of the sender's (it must not move a replay window);
//! - [`Attack::ForgedAnnounce`]: the sender's ANNOUNCE with its random changed (so its signature
//!   no longer verifies), for the real session and for a new session ID.

use std::collections::VecDeque;
use std::net::SocketAddr;

use proto_core::crypto::{Envelope, SessionKeys};
use proto_core::session::Transmit;
use proto_core::time::Instant;
use proto_core::wire::{FileSegRepr, Func, HashType, HeaderRepr, KeyType, Message, Repr};

use crate::net::{Node, Received};

/// One kind of forgery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attack {
    /// A flipped ciphertext bit.
    FlipBit,
    /// A verbatim replay.
    Replay,
    /// A truncated envelope.
    Truncate,
    /// A packet sealed under another group key.
    WrongKey,
    /// An ANNOUNCE whose signature does not verify (same session).
    ForgedAnnounce,
    /// An ANNOUNCE whose signature does not verify (a new session ID).
    ForgedNewSession,
}

const DATA_KINDS: [Attack; 4] = [
    Attack::FlipBit,
    Attack::Replay,
    Attack::Truncate,
    Attack::WrongKey,
];

/// The attacker node.
#[derive(Debug)]
pub struct Adversary {
    addr: SocketAddr,
    /// Attack one data packet in `every`.
    every: u32,
    /// Stop attacking data packets after this many.
    limit: u32,
    seen: u32,
    next_kind: usize,
    outbox: VecDeque<(SocketAddr, Vec<u8>)>,
    wrong_key: Envelope,
    wrong_ctr: u64,
    announces_forged: bool,
    /// How many of each attack were sent.
    pub sent: std::collections::HashMap<Attack, u64>,
}

impl Adversary {
    /// An attacker at `addr` that forges one in `every` ENCRYPTED data packets it hears (large
    /// ones: FILESEGs), at most `limit` of them, and the first ANNOUNCE it hears.
    pub fn new(addr: SocketAddr, every: u32, limit: u32) -> Self {
        let keys = SessionKeys::group(
            KeyType::Aes256Gcm,
            HashType::Sha256,
            &[0x40; 48],
            &[0x5a; 32],
        )
        .expect("fixed valid keys");
        Adversary {
            addr,
            every: every.max(1),
            limit,
            seen: 0,
            next_kind: 0,
            outbox: VecDeque::new(),
            wrong_key: Envelope::new(&keys).expect("fixed valid keys"),
            wrong_ctr: 1 << 20,
            announces_forged: false,
            sent: Default::default(),
        }
    }

    fn count(&mut self, a: Attack) {
        *self.sent.entry(a).or_default() += 1;
    }

    fn forge_data(&mut self, dest: SocketAddr, bytes: &[u8]) {
        let kind = DATA_KINDS[self.next_kind % DATA_KINDS.len()];
        self.next_kind += 1;
        let mut forged = bytes.to_vec();
        match kind {
            Attack::FlipBit => {
                let i = forged.len() - 40;
                forged[i] ^= 0x10;
            }
            Attack::Replay => {}
            Attack::Truncate => forged.truncate(forged.len() - 7),
            Attack::WrongKey => {
                let Ok(r) = Repr::parse(bytes) else { return };
                let header: HeaderRepr = r.header;
                let seg = FileSegRepr {
                    file_id: 1,
                    section: 0,
                    sec_block: 0,
                    tfmcc: None,
                    data: &[0xEE; 1000],
                };
                let mut buf = vec![0u8; 2000];
                let off = self.wrong_key.inner_offset();
                let Ok(n) = Message::FileSeg(seg).emit(&mut buf[off..]) else {
                    return;
                };
                self.wrong_ctr += 1;
                let Ok(len) = self.wrong_key.seal(&mut buf, &header, n, self.wrong_ctr) else {
                    return;
                };
                buf.truncate(len);
                forged = buf;
            }
            _ => return,
        }
        self.count(kind);
        self.outbox.push_back((dest, forged));
    }

    fn forge_announce(&mut self, dest: SocketAddr, bytes: &[u8]) {
        let Ok(r) = Repr::parse(bytes) else { return };
        let Message::Announce(a) = r.message else {
            return;
        };
        let Some(enc) = a.enc_info else { return };
        let Some(off) = bytes.windows(32).position(|w| w == enc.rand1) else {
            return;
        };
        let mut same = bytes.to_vec();
        same[off] ^= 0xFF;
        self.count(Attack::ForgedAnnounce);
        self.outbox.push_back((dest, same.clone()));
        // The same forgery under a new session ID (group_id is header bytes 8..12).
        same[8] ^= 0xFF;
        self.count(Attack::ForgedNewSession);
        self.outbox.push_back((dest, same));
    }
}

impl Node for Adversary {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, datagram: Received<'_>) {
        let _ = from;
        let bytes: &[u8] = datagram.bytes;
        if bytes.len() < 16 {
            return;
        }
        let func = Func::from(bytes[1]);
        // The multicast destination is not in the datagram; the sim delivers to every node
        // whatever goes to a multicast group, so any group address reaches the receivers.
        let dest: SocketAddr = "230.5.5.1:1044".parse().expect("literal");
        if func == Func::Announce && !self.announces_forged {
            self.announces_forged = true;
            self.forge_announce(dest, bytes);
        } else if func == Func::Encrypted
            && bytes.len() > 1000
            && self.seen < self.limit * self.every
        {
            self.seen += 1;
            if self.seen.is_multiple_of(self.every) {
                self.forge_data(dest, bytes);
            }
        }
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let (dest, bytes) = self.outbox.pop_front()?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Some(Transmit {
            dest,
            len: bytes.len(),
        })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
