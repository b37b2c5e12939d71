//! The server's half of an encrypted session's handshake (digest §5.3–§5.5): what ANNOUNCE
//! carries and how it is signed, the key exchange in REGISTER, the CLIENT_KEY check, the KEYINFO
//! entries and the KEYINFO_ACK verify data. The state machine in `sender.rs` decides when each
//! happens; this module decides what it contains.
//!
//! Everything random (rand1, the group master, the ephemeral ECDH scalar) is drawn once, when
//! the session is set up, from a [`Drbg`] seeded with the caller's entropy.

use core::net::{IpAddr, SocketAddr};

use heapless::Vec;
use subtle::ConstantTimeEq;

use super::{ConfigError, RefuseReason, SenderConfig};
use crate::crypto::{
    announce_signature, keyinfo_ack_verify_data, master_secret, sign_announce, wrap_group_master,
    CurveId, Drbg, EcPrivateKey, EcPublicKey, Envelope, Fingerprint, KeyBlob, KeyBlobKind, RsaKeys,
    SessionKeys, VerifyData, ECDH_PREMASTER_LEN, MASTER_LEN,
};
use crate::session::security::{is_aead, weakness, OwnKey, ReplayWindow, SenderSecurity};
use crate::wire::{
    EncInfoRepr, HashType, KeyExchange, KeyType, SigType, ENC_FLAG_CLIENT_AUTH,
    GROUP_MASTER_WIRE_LEN, RAND_LEN, VERIFY_DATA_LEN, VERSION,
};

/// Largest RSA modulus handled, in bytes (4096 bits).
pub const MAX_RSA_LEN: usize = 512;
/// An RSA blob: type, reserved, modulus length, exponent, modulus.
const MAX_KEY_BLOB: usize = 8 + MAX_RSA_LEN;
/// An EC blob on the largest curve implemented (P-384).
const MAX_EC_BLOB: usize = 4 + 2 * 48;
/// The RSA premaster (48 bytes; an ECDH one is 20).
const MAX_PREMASTER: usize = 48;
/// group ID, IPv6 address, rand1, rand2, RSA premaster.
const MAX_VERIFY_DATA: usize = 4 + 16 + 2 * RAND_LEN + MAX_PREMASTER;

/// Zeros for the ANNOUNCE signature field until it is signed.
static ZEROS: [u8; MAX_RSA_LEN] = [0; MAX_RSA_LEN];

/// Where a client is in the handshake, from the server's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerState {
    /// Nothing yet (not registered, or the session is unencrypted).
    None,
    /// REGISTER gave the premaster; CLIENT_KEY must come before any key is derived.
    AwaitClientKey,
    /// Keys derived: KEYINFO can carry its entry, and its ENCRYPTED packets can be opened.
    Keyed,
}

/// One client's key material.
#[derive(Clone)]
pub(super) struct PeerKeys {
    pub state: PeerState,
    rand2: [u8; RAND_LEN],
    premaster: [u8; MAX_PREMASTER],
    premaster_len: u8,
    /// The per-client keys that wrap its KEYINFO entry.
    client: Option<SessionKeys>,
    /// The verify data its KEYINFO_ACK must carry.
    expected: [u8; VERIFY_DATA_LEN],
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
            expected: [0; VERIFY_DATA_LEN],
            window: ReplayWindow::new(),
        }
    }

    fn premaster(&self) -> &[u8] {
        &self.premaster[..usize::from(self.premaster_len)]
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

/// The server's side of an encrypted session: its choices, its keys, the group keys and its
/// IV counter. `Debug` prints the choices, never key material.
pub(super) struct ServerKeys {
    pub keytype: KeyType,
    pub hashtype: HashType,
    sigtype: SigType,
    keyex: KeyExchange,
    /// ANNOUNCE's CLIENT_AUTH flag: every client must send CLIENT_KEY.
    pub client_auth: bool,
    key: OwnKey,
    rand1: [u8; RAND_LEN],
    key_blob: Vec<u8, MAX_KEY_BLOB>,
    /// The ephemeral ECDH key (ECDH key exchanges only) and its blob.
    dh: Option<EcPrivateKey>,
    dh_blob: Vec<u8, MAX_EC_BLOB>,
    /// Length of the ANNOUNCE signature (0 for RSA key exchange).
    sig_len: usize,
    group_master: [u8; MASTER_LEN],
    /// The group keys, for every ENCRYPTED packet in both directions.
    pub envelope: Envelope,
    /// The IV counter of everything the server seals or wraps (KEYINFO and ENCRYPTED).
    ctr: u64,
    group_id: u32,
    /// The private address as ANNOUNCE gives it (zeros in unicast mode): part of the verify data.
    private_addr: [u8; 16],
    private_len: usize,
    rsa_bits: Option<usize>,
}

impl core::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("keytype", &self.keytype)
            .field("hashtype", &self.hashtype)
            .field("sigtype", &self.sigtype)
            .field("keyex", &self.keyex)
            .field("client_auth", &self.client_auth)
            .field("ctr", &self.ctr)
            .finish_non_exhaustive()
    }
}

/// A fresh ephemeral key on `curve` from the generator (a scalar out of range is drawn again).
fn ephemeral(drbg: &mut Drbg, curve: CurveId) -> Option<EcPrivateKey> {
    let len = curve.field_len()?;
    let mut scalar = [0u8; 48];
    let scalar = scalar.get_mut(..len)?;
    for _ in 0..16 {
        drbg.fill(scalar);
        if let Ok(k) = EcPrivateKey::from_scalar(curve, scalar) {
            scalar.fill(0);
            return Some(k);
        }
    }
    None
}

impl ServerKeys {
    /// Checks the server's choices and sets the session up. `pinned` is whether any allowed
    /// client has a pinned fingerprint (which requires client authentication).
    pub fn new<R: RsaKeys>(
        security: &SenderSecurity,
        pinned: bool,
        rsa: &R,
        config: &SenderConfig,
    ) -> Result<Self, ConfigError> {
        let (keytype, hashtype) = (security.keytype, security.hashtype);
        if crate::crypto::key_len(keytype).is_err() {
            return Err(ConfigError::UnsupportedCipher);
        }
        if crate::crypto::hash_len(hashtype).is_err() {
            return Err(ConfigError::UnsupportedHash);
        }
        // GCM and CCM authenticate with their tag, whatever `-w` said (as uftp does).
        let sigtype = if is_aead(keytype) {
            SigType::AuthEnc
        } else {
            match security.sigtype {
                SigType::Hmac => SigType::Hmac,
                SigType::Keyex => return Err(ConfigError::KeyexSignatures),
                _ => return Err(ConfigError::SigType),
            }
        };
        let keyex = security.keyex;
        let ecdh = match keyex {
            KeyExchange::Rsa => false,
            KeyExchange::EcdhRsa | KeyExchange::EcdhEcdsa => true,
            _ => return Err(ConfigError::UnsupportedKeyExchange),
        };
        let mut key_blob = Vec::new();
        let _ = key_blob.resize(MAX_KEY_BLOB, 0);
        let (blob_len, sig_len, rsa_bits) = match (&security.key, keyex) {
            (OwnKey::Rsa(i), KeyExchange::Rsa | KeyExchange::EcdhRsa) => {
                let modulus = match rsa.modulus_len(*i) {
                    Some(n) if *i < rsa.count() && (1..=MAX_RSA_LEN).contains(&n) => n,
                    _ => return Err(ConfigError::RsaKey),
                };
                let n = (rsa.public_blob(*i, &mut key_blob)).map_err(|_| ConfigError::RsaKey)?;
                let sig = if ecdh { modulus } else { 0 };
                (n, sig, Some(modulus * 8))
            }
            (OwnKey::Ec(k), KeyExchange::EcdhEcdsa) => {
                let n = (k.public_key().emit_blob(&mut key_blob))
                    .map_err(|_| ConfigError::UnsupportedCurve)?;
                let sig = k
                    .curve()
                    .signature_len()
                    .ok_or(ConfigError::UnsupportedCurve)?;
                (n, sig, None)
            }
            _ => return Err(ConfigError::KeyMismatch),
        };
        key_blob.truncate(blob_len);

        let mut drbg = Drbg::new(&security.seed);
        let rand1: [u8; RAND_LEN] = drbg.bytes();
        let mut dh_blob = Vec::new();
        let dh = if ecdh {
            if !matches!(security.ecdh_curve, CurveId::P256 | CurveId::P384) {
                return Err(ConfigError::UnsupportedCurve);
            }
            let k =
                ephemeral(&mut drbg, security.ecdh_curve).ok_or(ConfigError::UnsupportedCurve)?;
            let public = k.public_key();
            let _ = dh_blob.resize(public.blob_len(), 0);
            public
                .emit_blob(&mut dh_blob)
                .map_err(|_| ConfigError::UnsupportedCurve)?;
            Some(k)
        } else {
            None
        };
        let mut group_master = [0u8; MASTER_LEN];
        group_master[0] = VERSION;
        drbg.fill(&mut group_master[1..]);
        let group = SessionKeys::group(keytype, hashtype, &group_master, &rand1)
            .map_err(|_| ConfigError::UnsupportedCipher)?;
        let envelope = Envelope::new(&group).map_err(|_| ConfigError::UnsupportedCipher)?;

        let mut private_addr = [0u8; 16];
        let private_len = match (config.unicast, config.private_addr) {
            (false, SocketAddr::V4(a)) => {
                private_addr[..4].copy_from_slice(&a.ip().octets());
                4
            }
            (false, SocketAddr::V6(a)) => {
                private_addr.copy_from_slice(&a.ip().octets());
                16
            }
            // Unicast: ANNOUNCE carries zero addresses of the public address's family.
            (true, _) => match config.public_addr.ip() {
                IpAddr::V4(_) => 4,
                IpAddr::V6(_) => 16,
            },
        };
        Ok(ServerKeys {
            keytype,
            hashtype,
            sigtype,
            keyex,
            client_auth: security.client_auth || security.sigtype == SigType::Keyex || pinned,
            key: security.key.clone(),
            rand1,
            key_blob,
            dh,
            dh_blob,
            sig_len,
            group_master,
            envelope,
            ctr: 0,
            group_id: config.group_id,
            private_addr,
            private_len,
            rsa_bits,
        })
    }

    /// ANNOUNCE's EXT_ENC_INFO, with the signature field zeroed.
    pub fn enc_info(&self) -> EncInfoRepr<'_> {
        EncInfoRepr {
            flags: if self.client_auth {
                ENC_FLAG_CLIENT_AUTH
            } else {
                0
            },
            keyextype: self.keyex,
            sigtype: self.sigtype,
            keytype: self.keytype,
            hashtype: self.hashtype,
            rand1: self.rand1,
            key_blob: &self.key_blob,
            dh_blob: &self.dh_blob,
            signature: &ZEROS[..self.sig_len],
        }
    }

    /// Bytes EXT_ENC_INFO adds to ANNOUNCE.
    pub fn ext_len(&self) -> usize {
        self.enc_info().buffer_len()
    }

    /// Signs an emitted ANNOUNCE datagram in place (ECDH key exchanges; RSA key exchange does
    /// not sign). Covers the whole datagram with the signature field zeroed (digest §5.7).
    pub fn sign_announce<R: RsaKeys>(
        &self,
        rsa: &R,
        datagram: &mut [u8],
    ) -> Result<(), crate::crypto::Error> {
        match (&self.key, self.keyex) {
            (OwnKey::Ec(k), KeyExchange::EcdhEcdsa) => sign_announce(k, datagram),
            (OwnKey::Rsa(i), KeyExchange::EcdhRsa) => {
                let (hash, range) = announce_signature(datagram)?;
                datagram[range.clone()].fill(0);
                let mut sig = [0u8; MAX_RSA_LEN];
                let n = rsa.sign(*i, hash, &[datagram], &mut sig)?;
                if n != range.len() {
                    return Err(crate::crypto::Error::BadSigLen {
                        expected: range.len() as u16,
                        found: n as u16,
                    });
                }
                datagram[range].copy_from_slice(&sig[..n]);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The next IV counter value (pre-incremented: the first is 1).
    pub fn next_ctr(&mut self) -> u64 {
        self.ctr += 1;
        self.ctr
    }

    /// SHA-1 fingerprint of the server key's blob.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.key_blob)
    }

    /// Why the session's choices are weak, if they are.
    pub fn weakness(&self) -> Option<&'static str> {
        weakness(self.keytype, self.hashtype, self.rsa_bits)
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

    /// The client's keys and the verify data its KEYINFO_ACK must carry.
    fn derive(&self, peer: &mut PeerKeys, blob: Option<&[u8]>) -> Result<(), RefuseReason> {
        let (kt, ht) = (self.keytype, self.hashtype);
        let fail = |_| RefuseReason::KeyExchange;
        let master = master_secret(ht, peer.premaster(), &self.rand1, &peer.rand2).map_err(fail)?;
        let client =
            SessionKeys::client(kt, ht, &master, &self.rand1, &peer.rand2).map_err(fail)?;
        let blob = if self.client_auth { blob } else { None };
        let vd = self.verify_data(peer);
        peer.expected = keyinfo_ack_verify_data(ht, &self.group_master, &vd, blob).map_err(fail)?;
        peer.client = Some(client);
        peer.state = PeerState::Keyed;
        Ok(())
    }

    /// The client's KEYINFO entry for a packet from `src_id` with IV counter `ctr`.
    pub fn keyinfo_entry(
        &self,
        peer: &PeerKeys,
        src_id: u32,
        ctr: u64,
    ) -> Option<[u8; GROUP_MASTER_WIRE_LEN]> {
        let client = peer.client.as_ref()?;
        wrap_group_master(client, src_id, ctr, &self.group_master).ok()
    }

    /// Whether a KEYINFO_ACK's verify data is the one this client's keys give.
    pub fn ack_matches(&self, peer: &PeerKeys, verify_data: &[u8; VERIFY_DATA_LEN]) -> bool {
        peer.state == PeerState::Keyed && bool::from(peer.expected.ct_eq(verify_data))
    }
}
