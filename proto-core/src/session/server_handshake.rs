//! The server's side of one client's key exchange (digest §5.3–§5.5), shared by the sender and
//! by the proxies that play server to their own clients (a client proxy with its own key and
//! ephemeral ECDH key in the ANNOUNCE it re-multicasts, a response proxy with the keys of its
//! PROXY_KEY): the premaster from REGISTER, the CLIENT_KEY check, the client's KEYINFO entry
//! and its KEYINFO_ACK verify data.
//!
//! The group master is an argument rather than state: a proxy learns it from the server only
//! after its clients registered, so what KEYINFO_ACK must prove is kept as a hash state that the
//! group master completes ([`KeyInfoAckHasher`]).

use core::net::IpAddr;

use subtle::ConstantTimeEq;

use super::security::{OwnKey, ReplayWindow};
use super::sender::RefuseReason;
use crate::crypto::{
    master_secret, wrap_group_master, EcPrivateKey, EcPublicKey, Fingerprint, KeyBlob, KeyBlobKind,
    KeyInfoAckHasher, RsaKeys, SessionKeys, VerifyData, ECDH_PREMASTER_LEN, MASTER_LEN,
};
use crate::wire::{HashType, KeyType, GROUP_MASTER_WIRE_LEN, RAND_LEN, VERIFY_DATA_LEN};

/// The RSA premaster (48 bytes; an ECDH one is 20).
const MAX_PREMASTER: usize = 48;
/// group ID, IPv6 address, rand1, rand2, RSA premaster.
const MAX_VERIFY_DATA: usize = 4 + 16 + 2 * RAND_LEN + MAX_PREMASTER;

/// Where a client is in the handshake, from the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Nothing yet (not registered, or the session is unencrypted).
    None,
    /// REGISTER gave the premaster; CLIENT_KEY must come before any key is derived.
    AwaitClientKey,
    /// Keys derived: KEYINFO can carry its entry, and its ENCRYPTED packets can be opened.
    Keyed,
}

/// One client's key material.
#[derive(Clone)]
pub(crate) struct PeerKeys {
    pub state: PeerState,
    rand2: [u8; RAND_LEN],
    premaster: [u8; MAX_PREMASTER],
    premaster_len: u8,
    /// The per-client keys that wrap its KEYINFO entry.
    client: Option<SessionKeys>,
    /// What its KEYINFO_ACK must prove, short of the group master.
    verify: Option<KeyInfoAckHasher>,
    /// Its ENCRYPTED counters seen.
    pub window: ReplayWindow,
}

impl PeerKeys {
    pub const fn new() -> Self {
        PeerKeys {
            state: PeerState::None,
            rand2: [0; RAND_LEN],
            premaster: [0; MAX_PREMASTER],
            premaster_len: 0,
            client: None,
            verify: None,
            window: ReplayWindow::new(),
        }
    }

    fn premaster(&self) -> &[u8] {
        &self.premaster[..usize::from(self.premaster_len)]
    }

    /// The client random of its REGISTER.
    pub fn rand2(&self) -> &[u8; RAND_LEN] {
        &self.rand2
    }
}

impl core::fmt::Debug for PeerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerKeys")
            .field("state", &self.state)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// What the server side of a session's key exchange needs: the session's choices, the key the
/// clients encrypt to or verify against, the ECDH key they agree with, and the public values
/// that enter the verify data. `Debug` prints the choices, never key material.
pub(crate) struct ServerHandshake {
    pub keytype: KeyType,
    pub hashtype: HashType,
    /// ANNOUNCE's CLIENT_AUTH flag: every client must send CLIENT_KEY.
    pub client_auth: bool,
    /// Our key: RSA decrypts the premaster of an `rsa` key exchange.
    pub key: OwnKey,
    /// The ECDH key of the ECDH key exchanges.
    pub dh: Option<EcPrivateKey>,
    pub rand1: [u8; RAND_LEN],
    group_id: u32,
    /// The private address as ANNOUNCE gives it (zeros in unicast mode): part of the verify data.
    private_addr: [u8; 16],
    private_len: usize,
}

impl core::fmt::Debug for ServerHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("keytype", &self.keytype)
            .field("hashtype", &self.hashtype)
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

/// The bytes of an address as the verify data carries them.
pub(crate) fn address_bytes(addr: &IpAddr, out: &mut [u8; 16]) -> usize {
    match addr {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            4
        }
        IpAddr::V6(a) => {
            out.copy_from_slice(&a.octets());
            16
        }
    }
}

impl ServerHandshake {
    /// The key exchange of session `group_id`, whose ANNOUNCE gives `private_addr` (the zero
    /// address of its family in unicast mode).
    #[allow(clippy::too_many_arguments)] // the session's public values, each its own kind
    pub fn new(
        keytype: KeyType,
        hashtype: HashType,
        client_auth: bool,
        key: OwnKey,
        dh: Option<EcPrivateKey>,
        rand1: [u8; RAND_LEN],
        group_id: u32,
        private_addr: &IpAddr,
    ) -> Self {
        let mut addr = [0u8; 16];
        let private_len = address_bytes(private_addr, &mut addr);
        ServerHandshake {
            keytype,
            hashtype,
            client_auth,
            key,
            dh,
            rand1,
            group_id,
            private_addr: addr,
            private_len,
        }
    }

    fn verify_data<'a>(&'a self, peer: &'a PeerKeys) -> VerifyData<'a> {
        VerifyData {
            group_id: self.group_id,
            private_addr: &self.private_addr[..self.private_len],
            rand1: &self.rand1,
            rand2: &peer.rand2,
            premaster: peer.premaster(),
        }
    }

    /// REGISTER's key exchange: recovers the premaster from `keyinfo` (the RSA-encrypted
    /// premaster, or the client's ephemeral ECDH blob). Without client authentication the
    /// client's keys follow at once; with it, they wait for CLIENT_KEY.
    pub fn register<R: RsaKeys>(
        &self,
        rsa: &R,
        peer: &mut PeerKeys,
        rand2: &[u8; RAND_LEN],
        keyinfo: &[u8],
    ) -> Result<(), RefuseReason> {
        let mut premaster = [0u8; MAX_PREMASTER];
        let len = match (&self.key, &self.dh) {
            (_, Some(dh)) => {
                let blob = KeyBlob::parse(keyinfo).map_err(|_| RefuseReason::KeyExchange)?;
                let ec = blob.ec().ok_or(RefuseReason::KeyExchange)?;
                let peer_key =
                    EcPublicKey::from_blob(&ec).map_err(|_| RefuseReason::KeyExchange)?;
                let pm = dh
                    .premaster(&peer_key)
                    .map_err(|_| RefuseReason::KeyExchange)?;
                premaster[..ECDH_PREMASTER_LEN].copy_from_slice(&pm);
                ECDH_PREMASTER_LEN
            }
            (OwnKey::Rsa(i), None) => {
                let n = rsa
                    .decrypt_premaster(*i, keyinfo, &mut premaster)
                    .map_err(|_| RefuseReason::KeyExchange)?;
                if n == 0 || n > MAX_PREMASTER {
                    return Err(RefuseReason::KeyExchange);
                }
                n
            }
            (OwnKey::Ec(_), None) => return Err(RefuseReason::KeyExchange),
        };
        peer.rand2 = *rand2;
        peer.premaster = premaster;
        peer.premaster_len = len as u8;
        peer.client = None;
        peer.verify = None;
        if self.client_auth {
            peer.state = PeerState::AwaitClientKey;
            Ok(())
        } else {
            self.derive(peer, None)
        }
    }

    /// CLIENT_KEY: checks the pin, then the signature over the verify data, then derives the
    /// client's keys. The blob enters the KEYINFO_ACK verify data.
    pub fn client_key<R: RsaKeys>(
        &self,
        rsa: &R,
        peer: &mut PeerKeys,
        pin: Option<Fingerprint>,
        blob: &[u8],
        signature: &[u8],
    ) -> Result<(), RefuseReason> {
        let key = KeyBlob::parse(blob).map_err(|_| RefuseReason::BadClientKey)?;
        if pin.is_some_and(|want| want != key.fingerprint()) {
            return Err(RefuseReason::FingerprintMismatch);
        }
        let mut data = [0u8; MAX_VERIFY_DATA];
        let n = (self.verify_data(peer).write(&mut data)).map_err(|_| RefuseReason::KeyExchange)?;
        let signed = &data[..n];
        match key.kind() {
            KeyBlobKind::Ec(b) => {
                let k = EcPublicKey::from_blob(&b).map_err(|_| RefuseReason::BadClientKey)?;
                k.verify(self.hashtype, &[signed], signature)
                    .map_err(|_| RefuseReason::BadSignature)?;
            }
            KeyBlobKind::Rsa(b) => match rsa.verify(&b, self.hashtype, &[signed], signature) {
                Ok(()) => {}
                Err(crate::crypto::Error::RsaUnavailable) => {
                    return Err(RefuseReason::BadClientKey)
                }
                Err(_) => return Err(RefuseReason::BadSignature),
            },
        }
        self.derive(peer, Some(blob))
    }

    /// The client's keys and what its KEYINFO_ACK must prove.
    fn derive(&self, peer: &mut PeerKeys, blob: Option<&[u8]>) -> Result<(), RefuseReason> {
        let (kt, ht) = (self.keytype, self.hashtype);
        let fail = |_| RefuseReason::KeyExchange;
        let master = master_secret(ht, peer.premaster(), &self.rand1, &peer.rand2).map_err(fail)?;
        let client =
            SessionKeys::client(kt, ht, &master, &self.rand1, &peer.rand2).map_err(fail)?;
        let blob = if self.client_auth { blob } else { None };
        let vd = self.verify_data(peer);
        peer.verify = Some(KeyInfoAckHasher::new(ht, &vd, blob).map_err(fail)?);
        peer.client = Some(client);
        peer.state = PeerState::Keyed;
        Ok(())
    }

    /// The client's KEYINFO entry: `group_master` wrapped for a packet from `src_id` with IV
    /// counter `ctr`.
    pub fn keyinfo_entry(
        &self,
        peer: &PeerKeys,
        group_master: &[u8; MASTER_LEN],
        src_id: u32,
        ctr: u64,
    ) -> Option<[u8; GROUP_MASTER_WIRE_LEN]> {
        let client = peer.client.as_ref()?;
        wrap_group_master(client, src_id, ctr, group_master).ok()
    }

    /// Whether a KEYINFO_ACK's verify data is the one this client's keys and `group_master`
    /// give.
    pub fn ack_matches(
        &self,
        peer: &PeerKeys,
        group_master: &[u8; MASTER_LEN],
        verify_data: &[u8; VERIFY_DATA_LEN],
    ) -> bool {
        let expected = match (&peer.verify, peer.state) {
            (Some(v), PeerState::Keyed) => v.finish(group_master),
            _ => return false,
        };
        expected.is_ok_and(|e| bool::from(e.ct_eq(verify_data)))
    }
}
