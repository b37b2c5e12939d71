//! The client's half of an encrypted session's handshake (digest §5.3–§5.5): checking the
//! server's ANNOUNCE against the receiver's policy and trust list, the key exchange that goes
//! into REGISTER, CLIENT_KEY, and the group keys that KEYINFO delivers.

use core::net::{IpAddr, SocketAddr};

use heapless::Vec;

use super::security::{is_aead, weakness, OwnKey, ReplayWindow, ServerEntry};
use crate::crypto::{
    announce_signed_parts, keyinfo_ack_verify_data, master_secret, unwrap_group_master,
    verify_announce, CurveId, Drbg, EcPrivateKey, EcPublicKey, Envelope, Fingerprint, KeyBlob,
    KeyBlobKind, RsaKeys, SessionKeys, VerifyData, MASTER_LEN,
};
use crate::wire::{
    AnnounceRepr, EncInfoRepr, HashType, HeaderRepr, KeyExchange, KeyType, SigType,
    ENC_FLAG_CLIENT_AUTH,
};

/// What the client's side of the handshake checks an ANNOUNCE against, and the keys it has.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy<'a> {
    /// Servers to accept (`-S`); empty accepts any.
    pub servers: &'a [ServerEntry],
    /// Our EC keys, for client authentication (RSA keys come through the [`RsaKeys`]).
    pub ec_keys: &'a [EcPrivateKey],
    /// Refuse unencrypted sessions.
    pub require_encryption: bool,
    /// Accept weak sessions.
    pub allow_weak: bool,
    /// Whether responses go through a response proxy, and its keys once known.
    pub proxy: ProxyRoute<'a>,
}

/// Whether a client answers through a response proxy (`uftpd -R`), whose keys then take the
/// server's place in the key exchange (digest §7): the premaster is encrypted to the proxy's
/// RSA key, or agreed with its ECDH key; rand1 and the ANNOUNCE signature stay the server's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyRoute<'a> {
    /// Responses go to the server.
    Direct,
    /// A response proxy whose PROXY_KEY has not come yet: encrypted sessions are refused.
    Pending,
    /// A response proxy's key blob and ECDH blob (empty if it has none).
    Known {
        key_blob: &'a [u8],
        dh_blob: &'a [u8],
    },
}

/// Largest RSA modulus handled, in bytes (4096 bits).
pub const MAX_RSA_LEN: usize = 512;
const MAX_BLOB_LEN: usize = 8 + MAX_RSA_LEN;
const RSA_PREMASTER_LEN: usize = 48;
/// Bytes of a group master.
pub const GROUP_MASTER_LEN: usize = MASTER_LEN;
const VERIFY_DATA_MAX: usize = 4 + 16 + 32 + 32 + RSA_PREMASTER_LEN;

/// Why an ANNOUNCE was refused, as the receiver reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Refuse with an ABORT to the server (it is who it says it is; we just won't).
    Abort(super::receiver::AbortReason, Option<&'static str>),
    /// Refuse silently: the server is not one we trust, or the ANNOUNCE is forged.
    Quiet(super::receiver::AbortReason, Option<Fingerprint>),
}

/// The group keys, once KEYINFO delivered them.
#[derive(Clone)]
pub(super) struct Group {
    pub master: [u8; MASTER_LEN],
    pub envelope: Envelope,
    pub verify_data: [u8; 12],
    /// The server's ENCRYPTED counters seen.
    pub window: ReplayWindow,
}

/// A session's key material from ANNOUNCE on.
#[derive(Clone)]
pub(super) struct Keys {
    pub keytype: KeyType,
    pub hashtype: HashType,
    pub client_auth: bool,
    pub rand1: [u8; 32],
    pub rand2: [u8; 32],
    pub premaster: Vec<u8, RSA_PREMASTER_LEN>,
    pub client: SessionKeys,
    /// REGISTER's key info: the RSA-encrypted premaster or our ephemeral ECDH blob.
    pub keyinfo: Vec<u8, MAX_RSA_LEN>,
    /// CLIENT_KEY: our public blob and its signature over the verify data (client auth only).
    pub own_blob: Vec<u8, MAX_BLOB_LEN>,
    pub signature: Vec<u8, MAX_RSA_LEN>,
    pub group: Option<Group>,
    /// Our IV counter for what we seal (pre-incremented: the first value is 1).
    pub ctr: u64,
    /// Why the session is weak, if it is (it runs only with `allow_weak`).
    pub weak: Option<&'static str>,
}

impl core::fmt::Debug for Keys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keys")
            .field("keytype", &self.keytype)
            .field("hashtype", &self.hashtype)
            .field("client_auth", &self.client_auth)
            .field("group", &self.group.is_some())
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// The next IV counter value for a packet we seal.
    pub fn next_ctr(&mut self) -> u64 {
        self.ctr += 1;
        self.ctr
    }
}

fn private_addr_bytes(addr: &IpAddr, out: &mut [u8; 16]) -> usize {
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

/// Checks an ANNOUNCE against the trust list (`-S`) and the encryption policy, and for an
/// encrypted one runs the client's side of the key exchange. `Ok(None)`: an acceptable
/// unencrypted session.
pub(crate) fn negotiate<R: RsaKeys>(
    config: &Policy<'_>,
    rsa: &mut R,
    drbg: &mut Drbg,
    h: &HeaderRepr,
    a: &AnnounceRepr<'_>,
    datagram: &[u8],
    from: SocketAddr,
) -> Result<Option<Keys>, Refusal> {
    use super::receiver::AbortReason as A;
    let entry = if config.servers.is_empty() {
        None
    } else {
        let e = config
            .servers
            .iter()
            .find(|e| e.id == h.src_id && e.addr.is_none_or(|ip| ip == from.ip()));
        match e {
            Some(e) => Some(e),
            None => return Err(Refusal::Quiet(A::UntrustedServer, None)),
        }
    };
    let Some(enc) = a.enc_info.as_ref() else {
        if entry.is_some_and(|e| e.fingerprint.is_some()) {
            return Err(Refusal::Quiet(A::ServerKeyMismatch, None));
        }
        if config.require_encryption {
            return Err(Refusal::Abort(A::EncryptionRequired, None));
        }
        return Ok(None);
    };
    let blob = KeyBlob::parse(enc.key_blob).map_err(|_| Refusal::Quiet(A::BadServerKey, None))?;
    let fingerprint = blob.fingerprint();
    if let Some(want) = entry.and_then(|e| e.fingerprint) {
        if want != fingerprint {
            return Err(Refusal::Quiet(A::ServerKeyMismatch, Some(fingerprint)));
        }
    }
    // The signature first: a forged ANNOUNCE must not make us refuse (and then ignore) the
    // real server's session of the same ID.
    match enc.keyextype {
        KeyExchange::EcdhEcdsa => {
            let key = blob
                .ec()
                .and_then(|b| EcPublicKey::from_blob(&b).ok())
                .ok_or(Refusal::Quiet(A::BadServerKey, Some(fingerprint)))?;
            verify_announce(&key, datagram)
                .map_err(|_| Refusal::Quiet(A::BadSignature, Some(fingerprint)))?;
        }
        KeyExchange::EcdhRsa => {
            let peer = blob
                .rsa()
                .ok_or(Refusal::Quiet(A::BadServerKey, Some(fingerprint)))?;
            let (hash, parts, sig) = announce_signed_parts(datagram)
                .map_err(|_| Refusal::Quiet(A::BadSignature, Some(fingerprint)))?;
            match rsa.verify(&peer, hash, &parts, sig) {
                Ok(()) => {}
                Err(crate::crypto::Error::RsaUnavailable) => {
                    return Err(Refusal::Abort(A::RsaUnsupported, None))
                }
                Err(_) => return Err(Refusal::Quiet(A::BadSignature, Some(fingerprint))),
            }
        }
        KeyExchange::Rsa => {
            if blob.rsa().is_none() {
                return Err(Refusal::Quiet(A::BadServerKey, Some(fingerprint)));
            }
        }
        _ => return Err(Refusal::Abort(A::UnsupportedCrypto, None)),
    }
    check_choices(enc)?;
    // Behind a response proxy the key exchange runs against its keys, which must be of the
    // server key's kind and size (as uftpd 4.10.2 requires).
    let (proxy_key, proxy_dh) = match config.proxy {
        ProxyRoute::Direct => (None, None),
        ProxyRoute::Pending => return Err(Refusal::Abort(A::ProxyKeyMissing, None)),
        ProxyRoute::Known { key_blob, dh_blob } => {
            let incompatible = Refusal::Abort(A::ProxyKeyIncompatible, None);
            let pk = KeyBlob::parse(key_blob).map_err(|_| incompatible)?;
            let same = match (pk.kind(), blob.kind()) {
                (KeyBlobKind::Rsa(p), KeyBlobKind::Rsa(s)) => p.modulus.len() == s.modulus.len(),
                (KeyBlobKind::Ec(p), KeyBlobKind::Ec(s)) => p.curve == s.curve,
                _ => false,
            };
            if !same {
                return Err(incompatible);
            }
            (Some(pk), Some(dh_blob))
        }
    };
    let rsa_bits = blob.rsa().map(|b| b.modulus.len() * 8);
    let weak = weakness(enc.keytype, enc.hashtype, rsa_bits);
    if weak.is_some() && !config.allow_weak {
        return Err(Refusal::Abort(A::WeakSession, weak));
    }
    let client_auth = enc.flags & ENC_FLAG_CLIENT_AUTH != 0 || enc.sigtype == SigType::Keyex;

    let rand2: [u8; 32] = drbg.bytes();
    let mut premaster = Vec::new();
    let mut keyinfo: Vec<u8, MAX_RSA_LEN> = Vec::new();
    let fail = Refusal::Abort(A::KeyExchangeFailed, None);
    match enc.keyextype {
        KeyExchange::Rsa => {
            let peer = proxy_key.as_ref().unwrap_or(&blob).rsa().ok_or(fail)?;
            let pm: [u8; RSA_PREMASTER_LEN] = drbg.bytes();
            let _ = premaster.extend_from_slice(&pm);
            let _ = keyinfo.resize(MAX_RSA_LEN, 0);
            let n = match rsa.encrypt_premaster(&peer, &pm, &mut keyinfo) {
                Ok(n) => n,
                Err(crate::crypto::Error::RsaUnavailable) => {
                    return Err(Refusal::Abort(A::RsaUnsupported, None))
                }
                Err(_) => return Err(fail),
            };
            keyinfo.truncate(n);
        }
        _ => {
            let ec_public = |bytes: &[u8]| {
                KeyBlob::parse(bytes)
                    .ok()
                    .and_then(|b| b.ec())
                    .and_then(|b| EcPublicKey::from_blob(&b).ok())
            };
            let server_dh =
                ec_public(enc.dh_blob).ok_or(Refusal::Abort(A::UnsupportedCrypto, None))?;
            let dh = match proxy_dh {
                None => server_dh,
                Some(bytes) => ec_public(bytes)
                    .filter(|k| k.curve() == server_dh.curve())
                    .ok_or(Refusal::Abort(A::ProxyKeyIncompatible, None))?,
            };
            let eph = ephemeral(drbg, dh.curve()).ok_or(fail)?;
            let pm = eph.premaster(&dh).map_err(|_| fail)?;
            let _ = premaster.extend_from_slice(&pm);
            let public = eph.public_key();
            let _ = keyinfo.resize(public.blob_len(), 0);
            public.emit_blob(&mut keyinfo).map_err(|_| fail)?;
        }
    }
    let master = master_secret(enc.hashtype, &premaster, &enc.rand1, &rand2).map_err(|_| fail)?;
    let client = SessionKeys::client(enc.keytype, enc.hashtype, &master, &enc.rand1, &rand2)
        .map_err(|_| Refusal::Abort(A::UnsupportedCrypto, None))?;

    let mut keys = Keys {
        keytype: enc.keytype,
        hashtype: enc.hashtype,
        client_auth,
        rand1: enc.rand1,
        rand2,
        premaster,
        client,
        keyinfo,
        own_blob: Vec::new(),
        signature: Vec::new(),
        group: None,
        ctr: 0,
        weak,
    };
    if client_auth {
        sign_verify_data(config, rsa, &mut keys, h.group_id, &a.private_addr, &blob)?;
    }
    Ok(Some(keys))
}

/// The choices this receiver implements: AES in CBC (with HMAC), GCM or CCM; SHA-1 or SHA-2.
fn check_choices(enc: &EncInfoRepr<'_>) -> Result<(), Refusal> {
    use super::receiver::AbortReason as A;
    let cipher_ok = matches!(
        enc.keytype,
        KeyType::Aes128Cbc
            | KeyType::Aes256Cbc
            | KeyType::Aes128Gcm
            | KeyType::Aes256Gcm
            | KeyType::Aes128Ccm
            | KeyType::Aes256Ccm
    );
    let hash_ok = matches!(
        enc.hashtype,
        HashType::Sha1 | HashType::Sha256 | HashType::Sha384 | HashType::Sha512
    );
    let sig_ok = if is_aead(enc.keytype) {
        enc.sigtype == SigType::AuthEnc
    } else {
        enc.sigtype == SigType::Hmac
    };
    if cipher_ok && hash_ok && sig_ok {
        Ok(())
    } else {
        Err(Refusal::Abort(A::UnsupportedCrypto, None))
    }
}

fn ephemeral(drbg: &mut Drbg, curve: CurveId) -> Option<EcPrivateKey> {
    let len = curve.field_len()?;
    let mut scalar = [0u8; 66];
    for _ in 0..8 {
        drbg.fill(&mut scalar[..len]);
        if let Ok(k) = EcPrivateKey::from_scalar(curve, &scalar[..len]) {
            scalar.fill(0);
            return Some(k);
        }
    }
    None
}

/// CLIENT_KEY's content: our key of the server key's type and size (the 4.x selection rule,
/// digest §5.2), its blob and its signature over the verify data.
fn sign_verify_data<R: RsaKeys>(
    config: &Policy<'_>,
    rsa: &mut R,
    keys: &mut Keys,
    group_id: u32,
    private_addr: &IpAddr,
    server: &KeyBlob<'_>,
) -> Result<(), Refusal> {
    use super::receiver::AbortReason as A;
    let mut addr = [0u8; 16];
    let alen = private_addr_bytes(private_addr, &mut addr);
    let vd = VerifyData {
        group_id,
        private_addr: &addr[..alen],
        rand1: &keys.rand1,
        rand2: &keys.rand2,
        premaster: &keys.premaster,
    };
    let mut data = [0u8; VERIFY_DATA_MAX];
    let fail = Refusal::Abort(A::KeyExchangeFailed, None);
    let n = vd.write(&mut data).map_err(|_| fail)?;
    let _ = keys.signature.resize(MAX_RSA_LEN, 0);
    let _ = keys.own_blob.resize(MAX_BLOB_LEN, 0);
    let key = compatible_key(server, config.ec_keys, rsa)
        .ok_or(Refusal::Abort(A::NoCompatibleKey, None))?;
    let bl = own_blob(&key, rsa, &mut keys.own_blob).map_err(|_| fail)?;
    keys.own_blob.truncate(bl);
    let sl = match &key {
        OwnKey::Ec(k) => k.sign(keys.hashtype, &[&data[..n]], &mut keys.signature),
        OwnKey::Rsa(i) => rsa.sign(*i, keys.hashtype, &[&data[..n]], &mut keys.signature),
    }
    .map_err(|_| fail)?;
    keys.signature.truncate(sl);
    Ok(())
}

/// Our key of the server key's type and size (the 4.x selection rule, digest §5.2): an RSA key
/// with a modulus of the same length, or an EC key on the same curve; the first that fits.
pub(crate) fn compatible_key<R: RsaKeys>(
    server: &KeyBlob<'_>,
    ec_keys: &[EcPrivateKey],
    rsa: &R,
) -> Option<OwnKey> {
    match server.kind() {
        KeyBlobKind::Ec(b) => ec_keys
            .iter()
            .find(|k| k.curve() == b.curve)
            .map(|k| OwnKey::Ec(k.clone())),
        KeyBlobKind::Rsa(b) => (0..rsa.count())
            .find(|&i| rsa.modulus_len(i) == Some(b.modulus.len()))
            .map(OwnKey::Rsa),
    }
}

/// Writes the public blob of our `key` into `out`; returns its length.
pub(crate) fn own_blob<R: RsaKeys>(
    key: &OwnKey,
    rsa: &R,
    out: &mut [u8],
) -> Result<usize, crate::crypto::Error> {
    match key {
        OwnKey::Ec(k) => k.public_key().emit_blob(out),
        OwnKey::Rsa(i) => rsa.public_blob(*i, out),
    }
}

/// Takes our KEYINFO entry: the group master, the group keys and the KEYINFO_ACK verify data.
/// `Err` when the entry does not decrypt under our key (a forged or corrupted KEYINFO).
pub(super) fn accept_keyinfo(
    keys: &Keys,
    version: u8,
    src_id: u32,
    iv_ctr: u64,
    entry: &[u8; 48],
    group_id: u32,
    private_addr: &IpAddr,
) -> Result<Group, crate::crypto::Error> {
    let master = unwrap_group_master(&keys.client, version, src_id, iv_ctr, entry)?;
    let group = SessionKeys::group(keys.keytype, keys.hashtype, &master, &keys.rand1)?;
    let envelope = Envelope::new(&group)?;
    let mut addr = [0u8; 16];
    let alen = private_addr_bytes(private_addr, &mut addr);
    let vd = VerifyData {
        group_id,
        private_addr: &addr[..alen],
        rand1: &keys.rand1,
        rand2: &keys.rand2,
        premaster: &keys.premaster,
    };
    let blob = keys.client_auth.then_some(&keys.own_blob[..]);
    let verify_data = keyinfo_ack_verify_data(keys.hashtype, &master, &vd, blob)?;
    Ok(Group {
        master,
        envelope,
        verify_data,
        window: ReplayWindow::new(),
    })
}
