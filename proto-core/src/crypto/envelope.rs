//! The ENCRYPTED envelope (digest §3.16, §5.6–§5.8) and the KEYINFO key wrap (§3.5).
//!
//! Sealing and opening work in place on the whole datagram: the inner message body (starting
//! with its own func byte) sits at [`Envelope::inner_offset`] and becomes ciphertext where it
//! lies. Opening checks the exact length and `sig_len`, verifies the HMAC or tag, and only then
//! exposes plaintext.

use core::ops::Range;

use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInOut;
#[cfg(not(feature = "fast-gcm"))]
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use cbc::{Decryptor, Encryptor};
use ccm::consts::{U12, U16};
use ccm::Ccm;
use subtle::ConstantTimeEq;

use super::hash::{KeyedHmac, MAX_HASH_LEN};
use super::keys::{SessionKeys, MASTER_LEN, SALT_LEN};
use super::{Error, Result};
use crate::wire::{EncryptedPacket, Func, HeaderRepr, KeyType, GROUP_MASTER_WIRE_LEN, HEADER_LEN};

/// Length of the ENCRYPTED header (IV counter, sig_len, payload_len) after the UFTP header.
pub const ENCRYPTED_HEADER_LEN: usize = 12;
/// GCM and CCM tag length.
pub const AEAD_TAG_LEN: usize = 16;
/// GCM and CCM nonce length.
pub const AEAD_IV_LEN: usize = 12;
/// AES-CBC IV length.
pub const CBC_IV_LEN: usize = 16;

/// The UFTP header plus the ENCRYPTED header: the AAD of GCM/CCM.
const AAD_LEN: usize = HEADER_LEN + ENCRYPTED_HEADER_LEN;
const BLOCK: usize = 16;

/// AES-CBC IV: `salt ‖ src_id ‖ ctr`, all big-endian as on the wire.
pub fn cbc_iv(salt: &[u8; SALT_LEN], src_id: u32, ctr: u64) -> [u8; CBC_IV_LEN] {
    let mut iv = [0u8; CBC_IV_LEN];
    iv[..4].copy_from_slice(salt);
    iv[4..8].copy_from_slice(&src_id.to_be_bytes());
    iv[8..].copy_from_slice(&ctr.to_be_bytes());
    iv
}

/// GCM/CCM nonce: `(salt XOR src_id) ‖ ctr`.
pub fn aead_iv(salt: &[u8; SALT_LEN], src_id: u32, ctr: u64) -> [u8; AEAD_IV_LEN] {
    let mut iv = [0u8; AEAD_IV_LEN];
    for (i, (s, b)) in salt.iter().zip(src_id.to_be_bytes()).enumerate() {
        iv[i] = s ^ b;
    }
    iv[4..].copy_from_slice(&ctr.to_be_bytes());
    iv
}

type Aes128Ccm = Ccm<Aes128, U16, U12>;
type Aes256Ccm = Ccm<Aes256, U16, U12>;

/// Key schedules, computed once per group (for GCM also the hash key H and its powers): a
/// packet costs its nonce and the data, nothing per key.
#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "no allocator to box into; one value per group"
)]
enum Cipher {
    Aes128Cbc(Aes128),
    Aes256Cbc(Aes256),
    #[cfg(not(feature = "fast-gcm"))]
    Aes128Gcm(Aes128Gcm),
    #[cfg(not(feature = "fast-gcm"))]
    Aes256Gcm(Aes256Gcm),
    /// AES-GCM (either key size) through ring's assembly: VAES/VPCLMULQDQ where the CPU has
    /// them, about twice the portable code's speed on a 1.3 KB datagram (feature `fast-gcm`).
    #[cfg(feature = "fast-gcm")]
    FastGcm(ring::aead::LessSafeKey),
    Aes128Ccm(Aes128Ccm),
    Aes256Ccm(Aes256Ccm),
}

/// AES-CBC with a block cipher of either size, for the envelope and the KEYINFO wrap.
#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, on the stack; no allocator to box into"
)]
enum CbcKey {
    Aes128(Aes128),
    Aes256(Aes256),
}

impl CbcKey {
    fn new(key: &[u8]) -> Result<Self> {
        match key.len() {
            16 => Aes128::new_from_slice(key).map(CbcKey::Aes128),
            32 => Aes256::new_from_slice(key).map(CbcKey::Aes256),
            _ => return Err(Error::BadKeyLength),
        }
        .map_err(|_| Error::BadKeyLength)
    }

    /// Pads `buf[..msg_len]` and encrypts it in place; returns the ciphertext length.
    fn encrypt(&self, iv: [u8; CBC_IV_LEN], buf: &mut [u8], msg_len: usize) -> Result<usize> {
        let iv = iv.into();
        let needed = (msg_len / BLOCK + 1) * BLOCK;
        let out = match self {
            CbcKey::Aes128(c) => Encryptor::<Aes128>::inner_iv_init(c.clone(), &iv)
                .encrypt_padded::<Pkcs7>(buf, msg_len),
            CbcKey::Aes256(c) => Encryptor::<Aes256>::inner_iv_init(c.clone(), &iv)
                .encrypt_padded::<Pkcs7>(buf, msg_len),
        };
        out.map(<[u8]>::len)
            .map_err(|_| Error::BufferTooSmall { needed })
    }

    /// Decrypts `buf` in place and strips the padding; returns the plaintext length.
    fn decrypt(&self, iv: [u8; CBC_IV_LEN], buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || !buf.len().is_multiple_of(BLOCK) {
            return Err(Error::BadLength);
        }
        let iv = iv.into();
        let out = match self {
            CbcKey::Aes128(c) => {
                Decryptor::<Aes128>::inner_iv_init(c.clone(), &iv).decrypt_padded::<Pkcs7>(buf)
            }
            CbcKey::Aes256(c) => {
                Decryptor::<Aes256>::inner_iv_init(c.clone(), &iv).decrypt_padded::<Pkcs7>(buf)
            }
        };
        out.map(<[u8]>::len).map_err(|_| Error::BadPadding)
    }
}

/// The group keys made ready for ENCRYPTED traffic: key schedules and the keyed HMAC are
/// computed once, then [`seal`](Self::seal) and [`open`](Self::open) run per packet.
///
/// `Debug` prints the cipher, never key material.
#[derive(Clone)]
pub struct Envelope {
    cipher: Cipher,
    /// CBC only: the HMAC that fills the signature slot.
    mac: Option<KeyedHmac>,
    salt: [u8; SALT_LEN],
    sig_len: u16,
    keytype: KeyType,
}

impl core::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Envelope")
            .field("keytype", &self.keytype)
            .field("sig_len", &self.sig_len)
            .finish_non_exhaustive()
    }
}

impl Envelope {
    /// Prepares the keys (normally the group keys) for sealing and opening.
    ///
    /// CBC sessions sign with HMAC (`sig_len` = hash length); GCM and CCM with their tag
    /// (`sig_len` = 0). RSA/ECDSA signatures (`-w keyex`) are not supported yet.
    pub fn new(keys: &SessionKeys) -> Result<Self> {
        fn init<C: KeyInit>(key: &[u8]) -> Result<C> {
            C::new_from_slice(key).map_err(|_| Error::BadKeyLength)
        }
        let key = keys.key();
        let cipher = match keys.keytype() {
            #[cfg(feature = "fast-gcm")]
            KeyType::Aes128Gcm | KeyType::Aes256Gcm => {
                let alg = if keys.keytype() == KeyType::Aes128Gcm {
                    &ring::aead::AES_128_GCM
                } else {
                    &ring::aead::AES_256_GCM
                };
                let key = ring::aead::UnboundKey::new(alg, key).map_err(|_| Error::BadKeyLength)?;
                Cipher::FastGcm(ring::aead::LessSafeKey::new(key))
            }
            KeyType::Aes128Cbc => Cipher::Aes128Cbc(init(key)?),
            KeyType::Aes256Cbc => Cipher::Aes256Cbc(init(key)?),
            #[cfg(not(feature = "fast-gcm"))]
            KeyType::Aes128Gcm => Cipher::Aes128Gcm(init(key)?),
            #[cfg(not(feature = "fast-gcm"))]
            KeyType::Aes256Gcm => Cipher::Aes256Gcm(init(key)?),
            KeyType::Aes128Ccm => Cipher::Aes128Ccm(init(key)?),
            KeyType::Aes256Ccm => Cipher::Aes256Ccm(init(key)?),
            other => return Err(Error::UnsupportedKeyType(other)),
        };
        let mac = match cipher {
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => {
                Some(KeyedHmac::new(keys.hashtype(), keys.hmac_key())?)
            }
            _ => None,
        };
        let sig_len = if mac.is_some() {
            keys.hmac_key().len() as u16
        } else {
            0
        };
        Ok(Envelope {
            cipher,
            mac,
            salt: *keys.salt(),
            sig_len,
            keytype: keys.keytype(),
        })
    }

    /// The signature length every packet of this session carries.
    pub fn sig_len(&self) -> usize {
        usize::from(self.sig_len)
    }

    /// Where [`seal`](Self::seal) expects the inner body: after the UFTP header, the ENCRYPTED
    /// header and the signature slot.
    pub fn inner_offset(&self) -> usize {
        AAD_LEN + self.sig_len()
    }

    /// Ciphertext length for an inner body of `inner_len` bytes (padding or tag included).
    pub fn payload_len(&self, inner_len: usize) -> usize {
        match self.cipher {
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => (inner_len / BLOCK + 1) * BLOCK,
            _ => inner_len + AEAD_TAG_LEN,
        }
    }

    /// Datagram length once an inner body of `inner_len` bytes is sealed.
    pub fn sealed_len(&self, inner_len: usize) -> usize {
        self.inner_offset() + self.payload_len(inner_len)
    }

    /// Seals the inner body at `buf[self.inner_offset()..][..inner_len]` in place: writes
    /// `header` with func 18, the ENCRYPTED header with `iv_ctr`, the ciphertext and the tag or
    /// HMAC. Returns the datagram length ([`sealed_len`](Self::sealed_len)).
    ///
    /// `iv_ctr` must never repeat for a sender under one key: the caller's counter is
    /// pre-incremented before every use (digest §5.6), and GCM/CCM lose everything otherwise.
    pub fn seal(
        &self,
        buf: &mut [u8],
        header: &HeaderRepr,
        inner_len: usize,
        iv_ctr: u64,
    ) -> Result<usize> {
        let payload_len = self.payload_len(inner_len);
        let payload_len16 = u16::try_from(payload_len).map_err(|_| Error::TooLong)?;
        let total = self.inner_offset() + payload_len;
        let buf = buf
            .get_mut(..total)
            .ok_or(Error::BufferTooSmall { needed: total })?;
        header
            .emit(Func::Encrypted.into(), buf)
            .map_err(|_| Error::BufferTooSmall { needed: total })?;
        let mut enc = EncryptedPacket::new_unchecked(&mut buf[HEADER_LEN..]);
        enc.set_iv_ctr(iv_ctr);
        enc.set_sig_len(self.sig_len);
        enc.set_payload_len(payload_len16);

        let (aad, rest) = buf.split_at_mut(AAD_LEN);
        let (sig, payload) = rest.split_at_mut(self.sig_len());
        let iv = aead_iv(&self.salt, header.src_id, iv_ctr);
        let nonce = iv.into();
        let (plain, tag_out) = payload.split_at_mut(inner_len.min(payload.len()));
        let tag: [u8; AEAD_TAG_LEN] = match &self.cipher {
            #[cfg(not(feature = "fast-gcm"))]
            Cipher::Aes128Gcm(c) => c
                .encrypt_inout_detached(&nonce, aad, plain.into())
                .map(Into::into),
            #[cfg(not(feature = "fast-gcm"))]
            Cipher::Aes256Gcm(c) => c
                .encrypt_inout_detached(&nonce, aad, plain.into())
                .map(Into::into),
            #[cfg(feature = "fast-gcm")]
            Cipher::FastGcm(c) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(iv);
                let tag = c
                    .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), plain)
                    .map_err(|_| Error::TooLong)?;
                let mut out = [0u8; AEAD_TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
            Cipher::Aes128Ccm(c) => c
                .encrypt_inout_detached(&nonce, aad, plain.into())
                .map(Into::into),
            Cipher::Aes256Ccm(c) => c
                .encrypt_inout_detached(&nonce, aad, plain.into())
                .map(Into::into),
            Cipher::Aes128Cbc(c) => {
                let key = CbcKey::Aes128(c.clone());
                return self.seal_cbc(key, buf, header.src_id, inner_len, iv_ctr);
            }
            Cipher::Aes256Cbc(c) => {
                let key = CbcKey::Aes256(c.clone());
                return self.seal_cbc(key, buf, header.src_id, inner_len, iv_ctr);
            }
        }
        .map_err(|_| Error::TooLong)?;
        debug_assert!(sig.is_empty());
        tag_out.copy_from_slice(&tag);
        Ok(total)
    }

    fn seal_cbc(
        &self,
        key: CbcKey,
        buf: &mut [u8],
        src_id: u32,
        inner_len: usize,
        iv_ctr: u64,
    ) -> Result<usize> {
        let off = self.inner_offset();
        key.encrypt(
            cbc_iv(&self.salt, src_id, iv_ctr),
            &mut buf[off..],
            inner_len,
        )?;
        buf[AAD_LEN..off].fill(0);
        let mut sig = [0u8; MAX_HASH_LEN];
        let n = self.hmac(buf, &mut sig);
        buf[AAD_LEN..off].copy_from_slice(&sig[..n]);
        Ok(buf.len())
    }

    /// HMAC over the datagram as if its signature slot were zero (without touching it).
    fn hmac(&self, packet: &[u8], out: &mut [u8; MAX_HASH_LEN]) -> usize {
        const ZEROS: [u8; MAX_HASH_LEN] = [0; MAX_HASH_LEN];
        let off = self.inner_offset();
        match &self.mac {
            Some(mac) => mac.compute(
                &[&packet[..AAD_LEN], &ZEROS[..self.sig_len()], &packet[off..]],
                out,
            ),
            None => 0,
        }
    }

    /// Opens a received datagram in place and returns where its inner body now lies.
    ///
    /// `buf` is the whole UDP payload. Checks, in order: the ENCRYPTED type, the exact length
    /// `28 + sig_len + payload_len`, the session's `sig_len`, the HMAC or tag; only then is the
    /// plaintext exposed. On an error the contents of `buf` are unspecified (CCM decrypts
    /// before it can check, and wipes the payload on failure) and must be dropped.
    pub fn open(&self, buf: &mut [u8]) -> Result<Range<usize>> {
        if buf.len() < AAD_LEN {
            return Err(Error::Truncated);
        }
        let func = buf[1];
        if Func::from(func) != Func::Encrypted {
            return Err(Error::NotEncrypted(func));
        }
        let enc = EncryptedPacket::new_unchecked(&buf[HEADER_LEN..]);
        let (iv_ctr, sig_len, payload_len) = (enc.iv_ctr(), enc.sig_len(), enc.payload_len());
        if enc.check_len().is_err() {
            return Err(Error::BadLength);
        }
        if sig_len != self.sig_len {
            return Err(Error::BadSigLen {
                expected: self.sig_len,
                found: sig_len,
            });
        }
        let src_id = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let off = self.inner_offset();
        let payload_len = usize::from(payload_len);

        if let Some(key) = match &self.cipher {
            Cipher::Aes128Cbc(c) => Some(CbcKey::Aes128(c.clone())),
            Cipher::Aes256Cbc(c) => Some(CbcKey::Aes256(c.clone())),
            _ => None,
        } {
            if payload_len == 0 || !payload_len.is_multiple_of(BLOCK) {
                return Err(Error::BadLength);
            }
            let mut want = [0u8; MAX_HASH_LEN];
            let n = self.hmac(buf, &mut want);
            if !bool::from(want[..n].ct_eq(&buf[AAD_LEN..off])) {
                return Err(Error::AuthFailed);
            }
            let len = key.decrypt(cbc_iv(&self.salt, src_id, iv_ctr), &mut buf[off..])?;
            return Ok(off..off + len);
        }

        let inner_len = payload_len
            .checked_sub(AEAD_TAG_LEN)
            .ok_or(Error::BadLength)?;
        let iv = aead_iv(&self.salt, src_id, iv_ctr);
        let nonce = iv.into();
        let (aad, rest) = buf.split_at_mut(AAD_LEN);
        let (ct, tag) = rest[self.sig_len()..].split_at_mut(inner_len);
        let mut tag_bytes = [0u8; AEAD_TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let tag = tag_bytes.into();
        match &self.cipher {
            #[cfg(not(feature = "fast-gcm"))]
            Cipher::Aes128Gcm(c) => c.decrypt_inout_detached(&nonce, aad, ct.into(), &tag),
            #[cfg(not(feature = "fast-gcm"))]
            Cipher::Aes256Gcm(c) => c.decrypt_inout_detached(&nonce, aad, ct.into(), &tag),
            Cipher::Aes128Ccm(c) => c.decrypt_inout_detached(&nonce, aad, ct.into(), &tag),
            Cipher::Aes256Ccm(c) => c.decrypt_inout_detached(&nonce, aad, ct.into(), &tag),
            Cipher::Aes128Cbc(_) | Cipher::Aes256Cbc(_) => Err(aes_gcm::Error),
            #[cfg(feature = "fast-gcm")]
            Cipher::FastGcm(c) => c
                .open_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(iv),
                    ring::aead::Aad::from(aad),
                    tag_bytes.into(),
                    ct,
                    0..,
                )
                .map(|_| ())
                .map_err(|_| aes_gcm::Error),
        }
        .map_err(|_| Error::AuthFailed)?;
        Ok(off..off + inner_len)
    }
}

/// [`Envelope::seal`] with keys prepared for this one packet (prefer an [`Envelope`] kept per
/// group: it saves the key schedule on every packet).
pub fn seal(
    buf: &mut [u8],
    header: &HeaderRepr,
    inner_len: usize,
    keys: &SessionKeys,
    iv_ctr: u64,
) -> Result<usize> {
    Envelope::new(keys)?.seal(buf, header, inner_len, iv_ctr)
}

/// [`Envelope::open`] with keys prepared for this one packet.
pub fn open(buf: &mut [u8], keys: &SessionKeys) -> Result<Range<usize>> {
    Envelope::new(keys)?.open(buf)
}

/// Wraps a group master for one client's KEYINFO entry: bytes 1..47, PKCS#7-padded to 48 and
/// AES-CBC encrypted under the client's per-client key (AES-CBC of the same key size whatever
/// the session cipher), IV = `client salt ‖ src_id ‖ iv_ctr`. `src_id` is the KEYINFO header's
/// (the server's, also when a proxy sends it).
pub fn wrap_group_master(
    client: &SessionKeys,
    src_id: u32,
    iv_ctr: u64,
    group_master: &[u8; MASTER_LEN],
) -> Result<[u8; GROUP_MASTER_WIRE_LEN]> {
    let mut out = [0u8; GROUP_MASTER_WIRE_LEN];
    out[..MASTER_LEN - 1].copy_from_slice(&group_master[1..]);
    let iv = cbc_iv(client.salt(), src_id, iv_ctr);
    CbcKey::new(client.key())?.encrypt(iv, &mut out, MASTER_LEN - 1)?;
    Ok(out)
}

/// Unwraps a client's KEYINFO entry into the 48-byte group master, whose byte 0 is the
/// header's `version` byte. A wrong key shows as [`Error::BadPadding`] (most of the time: the
/// real check is KEYINFO_ACK's verify data).
pub fn unwrap_group_master(
    client: &SessionKeys,
    version: u8,
    src_id: u32,
    iv_ctr: u64,
    entry: &[u8; GROUP_MASTER_WIRE_LEN],
) -> Result<[u8; MASTER_LEN]> {
    let mut buf = *entry;
    let iv = cbc_iv(client.salt(), src_id, iv_ctr);
    let len = CbcKey::new(client.key())?.decrypt(iv, &mut buf)?;
    if len != MASTER_LEN - 1 {
        return Err(Error::BadPadding);
    }
    let mut gm = [0u8; MASTER_LEN];
    gm[0] = version;
    gm[1..].copy_from_slice(&buf[..len]);
    Ok(gm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{GroupSize, Grtt, HashType};

    const ALL: [(KeyType, HashType); 12] = [
        (KeyType::Aes128Cbc, HashType::Sha1),
        (KeyType::Aes128Cbc, HashType::Sha256),
        (KeyType::Aes256Cbc, HashType::Sha256),
        (KeyType::Aes256Cbc, HashType::Sha384),
        (KeyType::Aes256Cbc, HashType::Sha512),
        (KeyType::Aes128Cbc, HashType::Sha512),
        (KeyType::Aes128Gcm, HashType::Sha256),
        (KeyType::Aes256Gcm, HashType::Sha256),
        (KeyType::Aes128Ccm, HashType::Sha384),
        (KeyType::Aes256Ccm, HashType::Sha1),
        (KeyType::Aes256Gcm, HashType::Sha512),
        (KeyType::Aes128Ccm, HashType::Sha256),
    ];

    fn keys(kt: KeyType, hash: HashType) -> SessionKeys {
        let gm: [u8; MASTER_LEN] = core::array::from_fn(|i| (i * 7 + 0x40) as u8);
        SessionKeys::group(kt, hash, &gm, &[0x11; 32]).unwrap()
    }

    fn header() -> HeaderRepr {
        HeaderRepr {
            seq: 77,
            src_id: 0x0a63_0001,
            group_id: 0xdead_beef,
            group_inst: 0,
            grtt: Grtt(0x7f),
            gsize: GroupSize(0x30),
        }
    }

    fn inner(len: usize) -> std::vec::Vec<u8> {
        (0..len).map(|i| (i * 13 + 9) as u8).collect()
    }

    /// Seals `body`; returns the datagram.
    fn sealed(env: &Envelope, body: &[u8], ctr: u64) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0u8; env.sealed_len(body.len()) + 5];
        let off = env.inner_offset();
        buf[off..off + body.len()].copy_from_slice(body);
        let n = env.seal(&mut buf, &header(), body.len(), ctr).unwrap();
        assert_eq!(n, env.sealed_len(body.len()));
        buf.truncate(n);
        buf
    }

    /// The envelope's AES-GCM (ring's with `fast-gcm`, else RustCrypto's) against RustCrypto's
    /// portable AES-GCM computed here directly: the same ciphertext and tag at every length
    /// from 0 to 300 bytes and at datagram sizes, and each opens the other's output.
    /// RustCrypto's AES-GCM of `body` in place, with the AAD of `pkt`; returns the tag.
    fn portable<C>(
        k: &SessionKeys,
        iv: [u8; AEAD_IV_LEN],
        pkt: &[u8],
        body: &mut [u8],
    ) -> [u8; AEAD_TAG_LEN]
    where
        C: KeyInit
            + aes_gcm::aead::AeadInOut
            + aes_gcm::aead::AeadCore<NonceSize = U12, TagSize = U16>,
    {
        C::new_from_slice(k.key())
            .unwrap()
            .encrypt_inout_detached(&iv.into(), &pkt[..AAD_LEN], body.into())
            .unwrap()
            .into()
    }

    #[test]
    fn gcm_backend_matches_the_portable_code() {
        for kt in [KeyType::Aes128Gcm, KeyType::Aes256Gcm] {
            let k = keys(kt, HashType::Sha256);
            let env = Envelope::new(&k).unwrap();
            let lens = (0..=300).chain([1023, 1024, 1025, 1300, 1400, 8800]);
            for (n, len) in lens.enumerate() {
                let body = inner(len);
                let ctr = 0x0100_0000_0000 + n as u64;
                let pkt = sealed(&env, &body, ctr);
                let iv = aead_iv(k.salt(), header().src_id, ctr);
                let mut ct = body.clone();
                let tag = match kt {
                    KeyType::Aes128Gcm => portable::<aes_gcm::Aes128Gcm>(&k, iv, &pkt, &mut ct),
                    _ => portable::<aes_gcm::Aes256Gcm>(&k, iv, &pkt, &mut ct),
                };
                assert_eq!(&pkt[AAD_LEN..AAD_LEN + len], &ct[..], "{kt:?} len {len}");
                assert_eq!(&pkt[AAD_LEN + len..], &tag[..], "{kt:?} len {len} tag");
                let mut again = pkt.clone();
                let r = env.open(&mut again).unwrap();
                assert_eq!(&again[r], &body[..]);
                let mut bad = pkt.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x80;
                assert_eq!(
                    env.open(&mut bad),
                    Err(Error::AuthFailed),
                    "{kt:?} len {len}"
                );
            }
        }
    }

    #[test]
    fn ivs_follow_digest_5_6() {
        let salt = [0xa0, 0xb0, 0xc0, 0xd0];
        assert_eq!(
            cbc_iv(&salt, 0x0102_0304, 0x1122_3344_5566_7788),
            [0xa0, 0xb0, 0xc0, 0xd0, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(
            aead_iv(&salt, 0x0102_0304, 2),
            [0xa1, 0xb2, 0xc3, 0xd4, 0, 0, 0, 0, 0, 0, 0, 2]
        );
    }

    #[test]
    fn seal_open_round_trips_every_cipher() {
        for (kt, hash) in ALL {
            let env = Envelope::new(&keys(kt, hash)).unwrap();
            let hl = super::super::hash_len(hash).unwrap();
            let aead = !matches!(kt, KeyType::Aes128Cbc | KeyType::Aes256Cbc);
            assert_eq!(env.sig_len(), if aead { 0 } else { hl });
            for len in [0, 1, 15, 16, 17, 47, 1300, 1400] {
                let body = inner(len);
                let mut pkt = sealed(&env, &body, 2 + len as u64);
                assert_eq!(pkt[0], 0x40);
                assert_eq!(pkt[1], 18);
                assert_eq!(pkt[2..16], sealed(&env, &[], 0)[2..16], "header");
                let enc = EncryptedPacket::new_checked(&pkt[16..]).unwrap();
                assert_eq!(enc.iv_ctr(), 2 + len as u64);
                assert_eq!(usize::from(enc.sig_len()), env.sig_len());
                if aead {
                    assert_eq!(usize::from(enc.payload_len()), len + 16);
                } else {
                    assert_eq!(usize::from(enc.payload_len()) % 16, 0);
                }
                let off = env.inner_offset();
                if len >= 16 {
                    assert_ne!(pkt[off..off + 16], body[..16], "{kt:?}: not encrypted");
                }
                let range = env.open(&mut pkt).unwrap();
                assert_eq!(&pkt[range], &body[..], "{kt:?} {hash:?} len {len}");
            }
        }
    }

    fn hex(s: &str) -> std::vec::Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// GCM and CCM output pinned to an independent implementation (OpenSSL through Python's
    /// `cryptography`, fed the key, salt, nonce and AAD of digest §5.6–§5.7), so that changing
    /// the AEAD crates cannot change the wire. The captured session in the tests is CBC. A
    /// 61-byte body is compared whole; a 1300-byte one, which runs the many-block paths, by
    /// SHA-256 of the datagram.
    #[test]
    fn aead_output_matches_openssl() {
        const CASES: [(KeyType, &str, &str); 4] = [
            (
                KeyType::Aes128Gcm,
                "934c45ee6bbea5a7b929ea1d9069b35ee0fb9ce3200ff763f17645dc32c885059e449e6dc5d52f9b\
                 9dd49192ebb60f84a7205f26e6bd878d729b0f7c2c9b35615f6d4d0120034f85b1440866cc",
                "a193ac269298692a9d117aa1fea3ad7ad29cd0c012234a82481a39ee05787103",
            ),
            (
                KeyType::Aes256Gcm,
                "a2a9d5bb6ead73d099a299cf00699ea6caadee0a98984c1be0d84f382f6d5f752325661fda3effb8\
                 6632f2aaf9fe31bd901e184934fd88c8476347233d6c462c967587cfe4dc1b5f0e17e8b2f0",
                "224e6187d1f7833c6b09881381c365700ac94a98a33df0f340e983a5d598a543",
            ),
            (
                KeyType::Aes128Ccm,
                "59be821f42593245913c20d8e243c0beac3826b3ab6e6afd4d52bf30bd5689034fa525f540c6881e\
                 7a0bf3749c3fc7c6a95232b66d3be4762ac4d6c19c5c4f8ff0f42c780c93cbd7b9ab5d0d70",
                "143be1282663b4aad2e0304e9674cc49f69439cd844d08846b72f738121daadd",
            ),
            (
                KeyType::Aes256Ccm,
                "0d4162e7d544257a70dd34630ea117d74cb133b03b1e06d1744bcb8974608ec93991795aa8a02637\
                 40444fb852e7e116508953b4994abd920b38efb7d6aab6d0e27de47be6cd71fe3fc23a9a02",
                "6583196da634c141b7ba9d835321984482c3eeb4a181918ec4743c6449478ce7",
            ),
        ];
        let ctr = 0x0102_0304_0506_0708;
        for (kt, short, long_sha256) in CASES {
            let env = Envelope::new(&keys(kt, HashType::Sha256)).unwrap();
            let pkt = sealed(&env, &inner(61), ctr);
            let mut want = hex("4012004d0a630001deadbeef007f30000102030405060708");
            want.extend_from_slice(&[0, 0, 0, 61 + 16]);
            want.extend(hex(short));
            assert_eq!(pkt, want, "{kt:?}, 61-byte body");

            let pkt = sealed(&env, &inner(1300), ctr);
            let mut sha = [0u8; MAX_HASH_LEN];
            let n = super::super::digest(HashType::Sha256, &[&pkt], &mut sha).unwrap();
            assert_eq!(sha[..n], hex(long_sha256), "{kt:?}, 1300-byte body");
            let mut opened = pkt.clone();
            let range = env.open(&mut opened).unwrap();
            assert_eq!(opened[range], inner(1300)[..], "{kt:?}");
        }
    }

    #[test]
    fn free_functions_match_envelope() {
        let k = keys(KeyType::Aes256Gcm, HashType::Sha256);
        let env = Envelope::new(&k).unwrap();
        let body = inner(100);
        let a = sealed(&env, &body, 9);
        let mut b = std::vec![0u8; 200];
        b[28..128].copy_from_slice(&body);
        let n = seal(&mut b, &header(), 100, &k, 9).unwrap();
        assert_eq!(a, b[..n]);
        let r = open(&mut b[..n], &k).unwrap();
        assert_eq!(b[r], body[..]);
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        for (kt, hash) in ALL {
            let env = Envelope::new(&keys(kt, hash)).unwrap();
            let pkt = sealed(&env, &inner(40), 5);
            for i in 0..pkt.len() {
                for bit in [0, 3, 7] {
                    let mut bad = pkt.clone();
                    bad[i] ^= 1 << bit;
                    assert!(env.open(&mut bad).is_err(), "{kt:?} byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn flipped_bits_in_a_full_fileseg_are_rejected() {
        for kt in [KeyType::Aes256Gcm, KeyType::Aes256Ccm, KeyType::Aes256Cbc] {
            let env = Envelope::new(&keys(kt, HashType::Sha256)).unwrap();
            let pkt = sealed(&env, &inner(1300), 5);
            for i in (0..pkt.len()).step_by(37).chain([pkt.len() - 1]) {
                let mut bad = pkt.clone();
                bad[i] ^= 0x80;
                assert!(env.open(&mut bad).is_err(), "{kt:?} byte {i}");
            }
        }
    }

    #[test]
    fn truncation_extension_and_wrong_keys_are_rejected() {
        for (kt, hash) in ALL {
            let env = Envelope::new(&keys(kt, hash)).unwrap();
            let pkt = sealed(&env, &inner(33), 5);
            for n in 0..pkt.len() {
                let mut short = pkt[..n].to_vec();
                let err = env.open(&mut short).unwrap_err();
                let want = if n < 28 {
                    Error::Truncated
                } else {
                    Error::BadLength
                };
                assert_eq!(err, want, "{kt:?} truncated to {n}");
            }
            let mut long = pkt.clone();
            long.push(0);
            assert_eq!(env.open(&mut long), Err(Error::BadLength));
            // Same cipher, other keys.
            let gm = [0x40; MASTER_LEN];
            let other = Envelope::new(&SessionKeys::group(kt, hash, &gm, &[0; 32]).unwrap());
            assert_eq!(
                other.unwrap().open(&mut pkt.clone()),
                Err(Error::AuthFailed)
            );
        }
    }

    #[test]
    fn wrong_sig_len_is_rejected_even_with_consistent_lengths() {
        // A CBC packet relabelled with every other sig_len, lengths kept consistent.
        let env = Envelope::new(&keys(KeyType::Aes256Cbc, HashType::Sha256)).unwrap();
        let pkt = sealed(&env, &inner(20), 3);
        for sig_len in [0u16, 16, 20, 31, 33, 48, 64] {
            let mut bad = pkt.clone();
            bad[24..26].copy_from_slice(&sig_len.to_be_bytes());
            let payload = pkt.len() - 28 - usize::from(sig_len);
            bad[26..28].copy_from_slice(&(payload as u16).to_be_bytes());
            assert_eq!(
                env.open(&mut bad),
                Err(Error::BadSigLen {
                    expected: 32,
                    found: sig_len
                })
            );
        }
        // An AEAD packet claiming a signature.
        let env = Envelope::new(&keys(KeyType::Aes128Gcm, HashType::Sha256)).unwrap();
        let mut pkt = sealed(&env, &inner(20), 3);
        pkt[24..26].copy_from_slice(&4u16.to_be_bytes());
        pkt[26..28].copy_from_slice(&32u16.to_be_bytes());
        assert_eq!(
            env.open(&mut pkt),
            Err(Error::BadSigLen {
                expected: 0,
                found: 4
            })
        );
        // Not ENCRYPTED at all.
        let mut pkt = sealed(&env, &inner(20), 3);
        pkt[1] = 9;
        assert_eq!(env.open(&mut pkt), Err(Error::NotEncrypted(9)));
    }

    #[test]
    fn seal_reports_small_buffers_and_oversize_payloads() {
        let env = Envelope::new(&keys(KeyType::Aes256Cbc, HashType::Sha256)).unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(
            env.seal(&mut buf, &header(), 50, 1),
            Err(Error::BufferTooSmall { needed: 60 + 64 })
        );
        let env = Envelope::new(&keys(KeyType::Aes256Gcm, HashType::Sha256)).unwrap();
        let mut big = std::vec![0u8; 70_000];
        assert_eq!(
            env.seal(&mut big, &header(), 65_520, 1),
            Err(Error::TooLong)
        );
        assert!(env.seal(&mut big, &header(), 65_519, 1).is_ok());
    }

    #[test]
    fn random_buffers_never_open_or_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let envs: std::vec::Vec<Envelope> = ALL
            .iter()
            .map(|&(k, h)| Envelope::new(&keys(k, h)).unwrap())
            .collect();
        let mut buf = [0u8; 1500];
        for round in 0..4000 {
            let len = (next() % 1500) as usize;
            for b in buf[..len].iter_mut() {
                *b = next() as u8;
            }
            let env = &envs[round % envs.len()];
            if round % 2 == 0 && len >= 28 {
                // Make it plausible: ENCRYPTED, the session's sig_len, consistent lengths.
                buf[1] = 18;
                buf[24..26].copy_from_slice(&(env.sig_len() as u16).to_be_bytes());
                let payload = len.saturating_sub(28 + env.sig_len());
                buf[26..28].copy_from_slice(&(payload as u16).to_be_bytes());
            }
            assert!(env.open(&mut buf[..len]).is_err(), "round {round} opened");
        }
    }

    #[test]
    fn keyinfo_wrap_round_trips_and_rejects_wrong_keys() {
        let master = [3u8; MASTER_LEN];
        for kt in [KeyType::Aes128Gcm, KeyType::Aes256Cbc, KeyType::Aes256Ccm] {
            let client = SessionKeys::client(kt, HashType::Sha256, &master, &[1; 32], &[2; 32]);
            let client = client.unwrap();
            let gm: [u8; MASTER_LEN] =
                core::array::from_fn(|i| if i == 0 { 0x40 } else { i as u8 });
            let entry = wrap_group_master(&client, 0x0a63_0001, 1, &gm).unwrap();
            assert_ne!(entry[..47], gm[1..]);
            assert_eq!(
                unwrap_group_master(&client, 0x40, 0x0a63_0001, 1, &entry),
                Ok(gm)
            );
            // Another counter: the padding byte no longer decrypts to 0x01 (or the master differs).
            let other = unwrap_group_master(&client, 0x40, 0x0a63_0001, 2, &entry);
            assert_ne!(other, Ok(gm));
        }
    }
}
