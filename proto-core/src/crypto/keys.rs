//! Key derivation (digest §5.4) and the KEYINFO_ACK verify data (§5.5).

use super::hash::{hash_len, Hasher, MAX_HASH_LEN};
use super::prf::prf;
use super::{Error, Result};
use crate::wire::{HashType, KeyType, RAND_LEN, VERIFY_DATA_LEN};

/// Length of the master secret and of the group master.
pub const MASTER_LEN: usize = 48;
/// Length of a salt.
pub const SALT_LEN: usize = 4;
/// The longest cipher key (AES-256).
pub const MAX_KEY_LEN: usize = 32;

/// Cipher key length of a key type; AES only (DES and 3DES are not implemented).
pub fn key_len(keytype: KeyType) -> Result<usize> {
    match keytype {
        KeyType::Aes128Cbc | KeyType::Aes128Gcm | KeyType::Aes128Ccm => Ok(16),
        KeyType::Aes256Cbc | KeyType::Aes256Gcm | KeyType::Aes256Ccm => Ok(32),
        other => Err(Error::UnsupportedKeyType(other)),
    }
}

/// `master = PRF(premaster, "master secret", rand1 ‖ rand2, 48)`: server random first.
pub fn master_secret(
    hash: HashType,
    premaster: &[u8],
    rand1: &[u8; RAND_LEN],
    rand2: &[u8; RAND_LEN],
) -> Result<[u8; MASTER_LEN]> {
    let mut seed = [0u8; 2 * RAND_LEN];
    seed[..RAND_LEN].copy_from_slice(rand1);
    seed[RAND_LEN..].copy_from_slice(rand2);
    let mut master = [0u8; MASTER_LEN];
    prf(hash, premaster, b"master secret", &seed, &mut master)?;
    Ok(master)
}

/// One key block: an HMAC key, a cipher key and a salt, with the types they are for.
///
/// Two kinds exist: the per-client keys, which only protect that client's KEYINFO entry, and
/// the group keys, which protect every ENCRYPTED packet of the session in both directions.
/// `Debug` prints the types, never the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    key: [u8; MAX_KEY_LEN],
    key_len: u8,
    salt: [u8; SALT_LEN],
    hmac: [u8; MAX_HASH_LEN],
    hmac_len: u8,
    keytype: KeyType,
    hashtype: HashType,
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keytype", &self.keytype)
            .field("hashtype", &self.hashtype)
            .finish_non_exhaustive()
    }
}

impl SessionKeys {
    /// The per-client keys: `PRF(master, "key expansion", rand1 ‖ rand2, hl + kl + 4)`.
    pub fn client(
        keytype: KeyType,
        hash: HashType,
        master: &[u8; MASTER_LEN],
        rand1: &[u8; RAND_LEN],
        rand2: &[u8; RAND_LEN],
    ) -> Result<Self> {
        let mut seed = [0u8; 2 * RAND_LEN];
        seed[..RAND_LEN].copy_from_slice(rand1);
        seed[RAND_LEN..].copy_from_slice(rand2);
        Self::expand(keytype, hash, master, &seed)
    }

    /// The group keys: `PRF(group master, "key expansion", rand1, hl + kl + 4)` (rand1 only).
    pub fn group(
        keytype: KeyType,
        hash: HashType,
        group_master: &[u8; MASTER_LEN],
        rand1: &[u8; RAND_LEN],
    ) -> Result<Self> {
        Self::expand(keytype, hash, group_master, rand1)
    }

    fn expand(keytype: KeyType, hash: HashType, secret: &[u8], seed: &[u8]) -> Result<Self> {
        let kl = key_len(keytype)?;
        let hl = hash_len(hash)?;
        let mut block = [0u8; MAX_HASH_LEN + MAX_KEY_LEN + SALT_LEN];
        let block = &mut block[..hl + kl + SALT_LEN];
        prf(hash, secret, b"key expansion", seed, block)?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&block[hl + kl..]);
        Self::from_parts(keytype, hash, &block[hl..hl + kl], salt, &block[..hl])
    }

    /// Keys given directly (tests, benchmarks, or keys derived elsewhere).
    pub fn from_parts(
        keytype: KeyType,
        hash: HashType,
        key: &[u8],
        salt: [u8; SALT_LEN],
        hmac_key: &[u8],
    ) -> Result<Self> {
        if key.len() != key_len(keytype)? || hmac_key.len() != hash_len(hash)? {
            return Err(Error::BadKeyLength);
        }
        let mut keys = SessionKeys {
            key: [0; MAX_KEY_LEN],
            key_len: key.len() as u8,
            salt,
            hmac: [0; MAX_HASH_LEN],
            hmac_len: hmac_key.len() as u8,
            keytype,
            hashtype: hash,
        };
        keys.key[..key.len()].copy_from_slice(key);
        keys.hmac[..hmac_key.len()].copy_from_slice(hmac_key);
        Ok(keys)
    }

    /// The cipher key (16 or 32 bytes).
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }
    /// The salt that goes into every IV.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }
    /// The HMAC key (hash length; derived for every cipher, used only with CBC).
    pub fn hmac_key(&self) -> &[u8] {
        &self.hmac[..usize::from(self.hmac_len)]
    }
    /// The cipher these keys are for.
    pub fn keytype(&self) -> KeyType {
        self.keytype
    }
    /// The session hash (PRF, HMAC and signature digest).
    pub fn hashtype(&self) -> HashType {
        self.hashtype
    }
}

/// The verify data of digest §5.5, as separate borrowed parts (it is only ever hashed or
/// signed, so it is never assembled unless [`VerifyData::write`] is asked to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyData<'a> {
    /// Session ID.
    pub group_id: u32,
    /// The private multicast address from ANNOUNCE (4 or 16 bytes; zeros in unicast mode).
    pub private_addr: &'a [u8],
    /// Server random.
    pub rand1: &'a [u8; RAND_LEN],
    /// Client random.
    pub rand2: &'a [u8; RAND_LEN],
    /// Premaster (48 bytes for RSA, 20 for ECDH).
    pub premaster: &'a [u8],
}

impl VerifyData<'_> {
    /// Bytes of the concatenation.
    pub fn len(&self) -> usize {
        4 + self.private_addr.len() + 2 * RAND_LEN + self.premaster.len()
    }

    /// Never empty (it always holds the group ID and the randoms); here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes `group_id ‖ address ‖ rand1 ‖ rand2 ‖ premaster` to the start of `out` (what
    /// CLIENT_KEY signs).
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.len();
        let out = out
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len })?;
        out[..4].copy_from_slice(&self.group_id_bytes());
        let mut at = 4;
        for part in self.parts() {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Ok(len)
    }

    fn group_id_bytes(&self) -> [u8; 4] {
        self.group_id.to_be_bytes()
    }

    fn parts(&self) -> [&[u8]; 4] {
        [self.private_addr, self.rand1, self.rand2, self.premaster]
    }
}

/// KEYINFO_ACK's verify data: `PRF(group master, "client finished", H(verify data ‖ [client
/// public key blob] ‖ group master), 12)`. Pass the blob only when ANNOUNCE set CLIENT_AUTH.
pub fn keyinfo_ack_verify_data(
    hash: HashType,
    group_master: &[u8; MASTER_LEN],
    verify_data: &VerifyData<'_>,
    client_blob: Option<&[u8]>,
) -> Result<[u8; VERIFY_DATA_LEN]> {
    KeyInfoAckHasher::new(hash, verify_data, client_blob)?.finish(group_master)
}

/// [`keyinfo_ack_verify_data`] in two steps: the verify data and the client's key blob are
/// absorbed when the key exchange is done, the group master when it is known. A proxy, which
/// plays server to its clients, learns the group master from the server only after they
/// registered; this keeps a hash state per client instead of its key blob.
#[derive(Clone)]
pub struct KeyInfoAckHasher {
    hash: HashType,
    state: Hasher,
}

impl core::fmt::Debug for KeyInfoAckHasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyInfoAckHasher")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl KeyInfoAckHasher {
    /// Absorbs the verify data and, when ANNOUNCE set CLIENT_AUTH, the client's key blob.
    pub fn new(
        hash: HashType,
        verify_data: &VerifyData<'_>,
        client_blob: Option<&[u8]>,
    ) -> Result<Self> {
        let mut state = Hasher::new(hash)?;
        state.update(&verify_data.group_id_bytes());
        for part in verify_data.parts() {
            state.update(part);
        }
        state.update(client_blob.unwrap_or(&[]));
        Ok(KeyInfoAckHasher { hash, state })
    }

    /// The verify data a KEYINFO_ACK under `group_master` carries.
    pub fn finish(&self, group_master: &[u8; MASTER_LEN]) -> Result<[u8; VERIFY_DATA_LEN]> {
        let mut state = self.state.clone();
        state.update(group_master);
        let mut h = [0u8; MAX_HASH_LEN];
        let hl = state.finish(&mut h);
        let mut out = [0u8; VERIFY_DATA_LEN];
        prf(
            self.hash,
            group_master,
            b"client finished",
            &h[..hl],
            &mut out,
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_block_layout_is_hmac_then_key_then_salt() {
        let gm = [0x40u8; MASTER_LEN];
        let rand1 = [1u8; RAND_LEN];
        for (kt, kl) in [(KeyType::Aes128Gcm, 16), (KeyType::Aes256Cbc, 32)] {
            for hash in [
                HashType::Sha1,
                HashType::Sha256,
                HashType::Sha384,
                HashType::Sha512,
            ] {
                let keys = SessionKeys::group(kt, hash, &gm, &rand1).unwrap();
                let hl = hash_len(hash).unwrap();
                let mut block = [0u8; 100];
                prf(
                    hash,
                    &gm,
                    b"key expansion",
                    &rand1,
                    &mut block[..hl + kl + 4],
                )
                .unwrap();
                assert_eq!(keys.hmac_key(), &block[..hl]);
                assert_eq!(keys.key(), &block[hl..hl + kl]);
                assert_eq!(keys.salt(), &block[hl + kl..hl + kl + 4]);
            }
        }
    }

    #[test]
    fn unsupported_types_and_bad_lengths_are_errors() {
        let gm = [0u8; MASTER_LEN];
        let r = [0u8; RAND_LEN];
        for kt in [
            KeyType::None,
            KeyType::Des,
            KeyType::Des3,
            KeyType::Unknown(42),
        ] {
            assert_eq!(
                SessionKeys::group(kt, HashType::Sha256, &gm, &r),
                Err(Error::UnsupportedKeyType(kt))
            );
        }
        assert_eq!(
            SessionKeys::from_parts(
                KeyType::Aes256Gcm,
                HashType::Sha256,
                &[0; 16],
                [0; 4],
                &[0; 32]
            ),
            Err(Error::BadKeyLength)
        );
        assert_eq!(
            SessionKeys::from_parts(
                KeyType::Aes128Gcm,
                HashType::Sha1,
                &[0; 16],
                [0; 4],
                &[0; 32]
            ),
            Err(Error::BadKeyLength)
        );
    }

    #[test]
    fn verify_data_write_concatenates_in_order() {
        let (r1, r2) = ([1u8; RAND_LEN], [2u8; RAND_LEN]);
        let vd = VerifyData {
            group_id: 0x0102_0304,
            private_addr: &[230, 5, 5, 70],
            rand1: &r1,
            rand2: &r2,
            premaster: &[9; 20],
        };
        let mut out = [0u8; 200];
        assert_eq!(
            vd.write(&mut out[..10]),
            Err(Error::BufferTooSmall { needed: 92 })
        );
        let n = vd.write(&mut out).unwrap();
        assert_eq!(n, 92);
        assert_eq!(out[..8], [1, 2, 3, 4, 230, 5, 5, 70]);
        assert_eq!(out[8..40], r1);
        assert_eq!(out[40..72], r2);
        assert_eq!(out[72..92], [9; 20]);
    }
}
