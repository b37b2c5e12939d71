//! The server's half of an encrypted session's handshake (digest §5.3–§5.5): what ANNOUNCE
//! carries and how it is signed, the key exchange in REGISTER, the CLIENT_KEY check, the KEYINFO
//! entries and the KEYINFO_ACK verify data. The state machine in `sender.rs` decides when each
//! happens; this module decides what it contains.
//!
//! Everything random (rand1, the group master, the ephemeral ECDH scalar) is drawn once, when
//! the session is set up, from a [`Drbg`] seeded with the caller's entropy.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heapless::Vec;

use super::{ConfigError, RefuseReason, SenderConfig};
use crate::crypto::{
    announce_signature, sign_announce, CurveId, Drbg, EcPrivateKey, Envelope, Fingerprint, RsaKeys,
    SessionKeys, MASTER_LEN,
};
use crate::session::security::{is_aead, weakness, OwnKey, SenderSecurity};
use crate::session::server_handshake::ServerHandshake;
pub(super) use crate::session::server_handshake::{PeerKeys, PeerState};
use crate::wire::{
    EncInfoRepr, KeyExchange, SigType, ENC_FLAG_CLIENT_AUTH, GROUP_MASTER_WIRE_LEN, RAND_LEN,
    VERIFY_DATA_LEN, VERSION,
};

/// Largest RSA modulus handled, in bytes (4096 bits).
pub const MAX_RSA_LEN: usize = 512;
/// An RSA blob: type, reserved, modulus length, exponent, modulus.
const MAX_KEY_BLOB: usize = 8 + MAX_RSA_LEN;
/// An EC blob on the largest curve implemented (P-384).
const MAX_EC_BLOB: usize = 4 + 2 * 48;

/// Zeros for the ANNOUNCE signature field until it is signed.
static ZEROS: [u8; MAX_RSA_LEN] = [0; MAX_RSA_LEN];

/// The server's side of an encrypted session: its choices, its keys, the group keys and its
/// IV counter. `Debug` prints the choices, never key material.
pub(super) struct ServerKeys {
    /// The key exchange with each client.
    hs: ServerHandshake,
    sigtype: SigType,
    keyex: KeyExchange,
    key_blob: Vec<u8, MAX_KEY_BLOB>,
    /// The blob of the ephemeral ECDH key (ECDH key exchanges only).
    dh_blob: Vec<u8, MAX_EC_BLOB>,
    /// Length of the ANNOUNCE signature (0 for RSA key exchange).
    sig_len: usize,
    group_master: [u8; MASTER_LEN],
    /// The group keys, for every ENCRYPTED packet in both directions.
    pub envelope: Envelope,
    /// The IV counter of everything the server seals or wraps (KEYINFO and ENCRYPTED).
    ctr: u64,
    rsa_bits: Option<usize>,
}

impl core::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("keytype", &self.hs.keytype)
            .field("hashtype", &self.hs.hashtype)
            .field("sigtype", &self.sigtype)
            .field("keyex", &self.keyex)
            .field("client_auth", &self.hs.client_auth)
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

        // The private address as ANNOUNCE gives it: the zero address of the public address's
        // family in unicast mode.
        let private_addr = match (config.unicast, config.public_addr.ip()) {
            (false, _) => config.private_addr.ip(),
            (true, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (true, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let client_auth = security.client_auth || security.sigtype == SigType::Keyex || pinned;
        let hs = ServerHandshake::new(
            keytype,
            hashtype,
            client_auth,
            security.key.clone(),
            dh,
            rand1,
            config.group_id,
            &private_addr,
        );
        Ok(ServerKeys {
            hs,
            sigtype,
            keyex,
            key_blob,
            dh_blob,
            sig_len,
            group_master,
            envelope,
            ctr: 0,
            rsa_bits,
        })
    }

    /// ANNOUNCE's EXT_ENC_INFO, with the signature field zeroed.
    pub fn enc_info(&self) -> EncInfoRepr<'_> {
        EncInfoRepr {
            flags: if self.hs.client_auth {
                ENC_FLAG_CLIENT_AUTH
            } else {
                0
            },
            keyextype: self.keyex,
            sigtype: self.sigtype,
            keytype: self.hs.keytype,
            hashtype: self.hs.hashtype,
            rand1: self.hs.rand1,
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
        sign_announce_with(&self.hs.key, self.keyex, rsa, datagram)
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
        weakness(self.hs.keytype, self.hs.hashtype, self.rsa_bits)
    }

    /// The client keys of REGISTER's key exchange (see [`ServerHandshake::register`]).
    pub fn register<R: RsaKeys>(
        &self,
        rsa: &R,
        peer: &mut PeerKeys,
        rand2: &[u8; RAND_LEN],
        keyinfo: &[u8],
    ) -> Result<(), RefuseReason> {
        self.hs.register(rsa, peer, rand2, keyinfo)
    }

    /// CLIENT_KEY (see [`ServerHandshake::client_key`]).
    pub fn client_key<R: RsaKeys>(
        &self,
        rsa: &R,
        peer: &mut PeerKeys,
        pin: Option<Fingerprint>,
        blob: &[u8],
        signature: &[u8],
    ) -> Result<(), RefuseReason> {
        self.hs.client_key(rsa, peer, pin, blob, signature)
    }

    /// The client's KEYINFO entry for a packet from `src_id` with IV counter `ctr`.
    pub fn keyinfo_entry(
        &self,
        peer: &PeerKeys,
        src_id: u32,
        ctr: u64,
    ) -> Option<[u8; GROUP_MASTER_WIRE_LEN]> {
        self.hs.keyinfo_entry(peer, &self.group_master, src_id, ctr)
    }

    /// Whether a KEYINFO_ACK's verify data is the one this client's keys give.
    pub fn ack_matches(&self, peer: &PeerKeys, verify_data: &[u8; VERIFY_DATA_LEN]) -> bool {
        self.hs.ack_matches(peer, &self.group_master, verify_data)
    }
}

/// Signs an ANNOUNCE datagram in place with `key` as `keyex` requires (ECDSA for
/// `ecdh_ecdsa`, RSA PKCS#1 v1.5 for `ecdh_rsa`, nothing for `rsa`), over the whole datagram
/// with the signature field zeroed (digest §5.7). The sender signs its own; a client proxy
/// signs the one it re-multicasts with its key in place of the server's.
pub(crate) fn sign_announce_with<R: RsaKeys>(
    key: &OwnKey,
    keyex: KeyExchange,
    rsa: &R,
    datagram: &mut [u8],
) -> Result<(), crate::crypto::Error> {
    match (key, keyex) {
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
