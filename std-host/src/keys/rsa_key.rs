//! RSA keys: the premaster encryption of the RSA key exchange (digest §5.3) and PKCS#1 v1.5
//! signatures over the session hash (§5.7).

use proto_core::crypto::{Fingerprint, KeyBlob, RsaBlob};
use proto_core::wire::HashType;
use rand_core::OsRng;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use super::{KeyError, Result, RSA_MAX_BITS, RSA_MIN_BITS};

/// Bytes of the RSA premaster (all random; digest §5.3).
pub const PREMASTER_LEN: usize = 48;
/// Moduli of at least this many bits carry the premaster with OAEP; smaller ones with
/// PKCS#1 v1.5 (an RSA-512 key has no room for OAEP-SHA1 plus 48 bytes).
pub const OAEP_MIN_BITS: usize = 768;

/// How the premaster is padded for a server key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PremasterPadding {
    /// PKCS#1 v1.5 (type 2).
    Pkcs1v15,
    /// OAEP with SHA-1, MGF1-SHA1 and an empty label.
    OaepSha1,
}

/// The padding uftp uses for a modulus of `modulus_len` bytes. uftp decides on the key's size in
/// bytes (OpenSSL's `RSA_size`) times 8, so a modulus of 761–767 bits already takes OAEP.
pub fn premaster_padding(modulus_len: usize) -> PremasterPadding {
    if modulus_len * 8 < OAEP_MIN_BITS {
        PremasterPadding::Pkcs1v15
    } else {
        PremasterPadding::OaepSha1
    }
}

/// The PKCS#1 v1.5 signature scheme (DigestInfo) for a session hash.
fn signature_scheme(hash: HashType) -> Result<Pkcs1v15Sign> {
    Ok(match hash {
        HashType::Sha1 => Pkcs1v15Sign::new::<sha1::Sha1>(),
        HashType::Sha256 => Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashType::Sha384 => Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashType::Sha512 => Pkcs1v15Sign::new::<sha2::Sha512>(),
        other => return Err(KeyError::UnsupportedHash(other)),
    })
}

/// The hash of the concatenated parts.
fn hashed(hash: HashType, parts: &[&[u8]]) -> Result<Vec<u8>> {
    let mut out = [0u8; proto_core::crypto::MAX_HASH_LEN];
    let n = proto_core::crypto::digest(hash, parts, &mut out)
        .map_err(|_| KeyError::UnsupportedHash(hash))?;
    Ok(out[..n].to_vec())
}

/// The public exponent as a blob carries it, if it fits 32 bits.
fn exponent_u32(e: &BigUint) -> Option<u32> {
    let bytes = e.to_bytes_be();
    (bytes.len() <= 4).then(|| bytes.iter().fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
}

/// An RSA public key: a peer's, from its blob, or our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublic {
    key: RsaPublicKey,
}

impl RsaPublic {
    /// The key in an RSA blob.
    pub fn from_blob(blob: &RsaBlob<'_>) -> Result<Self> {
        let key = RsaPublicKey::new(
            BigUint::from_bytes_be(blob.modulus),
            BigUint::from(blob.exponent),
        )
        .map_err(|_| KeyError::BadBlob)?;
        Ok(RsaPublic { key })
    }

    /// The key in blob bytes (as CLIENT_KEY, ANNOUNCE or HB_REQ carry them); an EC blob is
    /// [`KeyError::BadBlob`].
    pub fn from_blob_bytes(bytes: &[u8]) -> Result<Self> {
        let blob = KeyBlob::parse(bytes).map_err(|_| KeyError::BadBlob)?;
        Self::from_blob(&blob.rsa().ok_or(KeyError::BadBlob)?)
    }

    /// Bits of the modulus.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// Bytes of the modulus (minimal big-endian).
    pub fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// The UFTP RSA blob as uftp 4.10.2 builds and fingerprints it: `01 00 modlen exponent
    /// modulus`, 8 + modlen bytes with no padding. For the usual sizes (a multiple of 32 bits)
    /// this is what `RsaBlob::emit` writes too; for others (e.g. 1000 bits) `emit` pads to 4
    /// bytes, and the padded bytes' SHA-1 is not the fingerprint uftp_keymgt prints.
    pub fn blob(&self) -> Vec<u8> {
        let modulus = self.key.n().to_bytes_be();
        // Public exponents of keys uftp and OpenSSL make fit 32 bits; a larger one (which
        // no UFTP blob can carry) is rejected when the key is loaded.
        let exponent = exponent_u32(self.key.e()).unwrap_or(0);
        let blob = RsaBlob {
            exponent,
            modulus: &modulus,
        };
        let mut out = vec![0u8; blob.buffer_len()];
        let n = blob.emit(&mut out).map_or(0, |_| 8 + modulus.len());
        out.truncate(n);
        out
    }

    /// SHA-1 of the blob.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.blob())
    }

    /// Encrypts a premaster to this (server or proxy) key with the padding uftp uses for its
    /// size ([`premaster_padding`]); the result is one modulus long.
    pub fn encrypt_premaster(&self, premaster: &[u8]) -> Result<Vec<u8>> {
        Ok(match premaster_padding(self.modulus_len()) {
            PremasterPadding::Pkcs1v15 => {
                self.key.encrypt(&mut OsRng, Pkcs1v15Encrypt, premaster)?
            }
            PremasterPadding::OaepSha1 => {
                self.key
                    .encrypt(&mut OsRng, Oaep::new::<sha1::Sha1>(), premaster)?
            }
        })
    }

    /// Verifies a PKCS#1 v1.5 signature over the concatenation of `parts` with `hash`.
    pub fn verify(&self, hash: HashType, parts: &[&[u8]], signature: &[u8]) -> Result<()> {
        let digest = hashed(hash, parts)?;
        self.key
            .verify(signature_scheme(hash)?, &digest, signature)
            .map_err(KeyError::Rsa)
    }
}

/// An RSA private key. Private operations are blinded with OS randomness.
#[derive(Debug, Clone)]
pub struct RsaPrivate {
    key: RsaPrivateKey,
}

impl RsaPrivate {
    /// A fresh key of `bits` bits (uftp's range, 512–2048), public exponent 65537.
    pub fn generate(bits: usize) -> Result<Self> {
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError::BadRsaSize(bits));
        }
        Ok(RsaPrivate {
            key: RsaPrivateKey::new(&mut OsRng, bits)?,
        })
    }

    /// Wraps a decoded key, checking it is usable by UFTP (the exponent must fit a blob).
    pub(super) fn from_key(key: RsaPrivateKey) -> Result<Self> {
        if exponent_u32(key.e()).is_none() {
            return Err(KeyError::Malformed(
                "RSA public exponent does not fit 32 bits",
            ));
        }
        key.validate()
            .map_err(|_| KeyError::Malformed("inconsistent RSA key"))?;
        Ok(RsaPrivate { key })
    }

    /// The public half.
    pub fn public(&self) -> RsaPublic {
        RsaPublic {
            key: self.key.to_public_key(),
        }
    }

    /// Bits of the modulus (what uftp_keymgt prints).
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// Bytes of the modulus.
    pub fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// Decrypts a premaster sent to this key (REGISTER's encrypted premaster), with the
    /// padding uftp uses for its size. The length is the caller's to check (48).
    pub fn decrypt_premaster(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let plain = match premaster_padding(self.modulus_len()) {
            PremasterPadding::Pkcs1v15 => {
                self.key
                    .decrypt_blinded(&mut OsRng, Pkcs1v15Encrypt, ciphertext)?
            }
            PremasterPadding::OaepSha1 => {
                self.key
                    .decrypt_blinded(&mut OsRng, Oaep::new::<sha1::Sha1>(), ciphertext)?
            }
        };
        Ok(Zeroizing::new(plain))
    }

    /// Signs the concatenation of `parts` with PKCS#1 v1.5 over `hash`; the signature is one
    /// modulus long.
    pub fn sign(&self, hash: HashType, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let digest = hashed(hash, parts)?;
        Ok(self
            .key
            .sign_with_rng(&mut OsRng, signature_scheme(hash)?, &digest)?)
    }

    /// PKCS#1 `RSA PRIVATE KEY`, as uftp writes it.
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        self.key
            .to_pkcs1_pem(LineEnding::LF)
            .map_err(|_| KeyError::Malformed("RSA key does not encode"))
    }
}
