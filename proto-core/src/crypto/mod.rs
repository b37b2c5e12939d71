//! The symmetric crypto of UFTP 4 (digest §5): the PRF, key derivation, KEYINFO key wrapping
//! and the ENCRYPTED envelope.
//!
//! Everything here works on fixed-size values and on the caller's buffers: no allocation, no
//! randomness of its own (premasters, group masters and counters come in from the caller) and no
//! panic on any input from the network. Of the public-key half of the handshake, key blobs and
//! fingerprints ([`KeyBlob`], [`Fingerprint`]) and ECDH/ECDSA on P-256 and P-384
//! ([`EcPrivateKey`], [`EcPublicKey`], [`verify_announce`]) are here; RSA is not yet.
//!
//! The usual path through it:
//!
//! 1. [`master_secret`] from the premaster and both randoms, then [`SessionKeys::client`]: the
//!    per-client key and salt that protect the client's KEYINFO entry.
//! 2. [`unwrap_group_master`] (client) or [`wrap_group_master`] (server) for that entry, then
//!    [`SessionKeys::group`]: the keys every member uses for ENCRYPTED traffic.
//! 3. [`Envelope::new`] once per group, then [`Envelope::seal`] and [`Envelope::open`] per packet.
//! 4. [`keyinfo_ack_verify_data`] for the KEYINFO_ACK that proves the client got there.

mod blob;
mod drbg;
mod ec;
mod envelope;
mod hash;
mod keys;
mod prf;
mod rsa;

pub use blob::{CurveId, EcBlob, Fingerprint, KeyBlob, KeyBlobKind, RsaBlob};
pub use drbg::Drbg;
pub use ec::{
    announce_signature, announce_signed_parts, sign_announce, verify_announce, EcPrivateKey,
    EcPublicKey, SignedParts, ECDH_PREMASTER_LEN, MAX_EC_SIGNATURE_LEN,
};
pub use envelope::{
    aead_iv, cbc_iv, open, seal, unwrap_group_master, wrap_group_master, Envelope, AEAD_IV_LEN,
    AEAD_TAG_LEN, CBC_IV_LEN, ENCRYPTED_HEADER_LEN,
};
pub use hash::{digest, hash_len, MAX_HASH_LEN};
pub use keys::{
    key_len, keyinfo_ack_verify_data, master_secret, KeyInfoAckHasher, SessionKeys, VerifyData,
    MASTER_LEN, MAX_KEY_LEN, SALT_LEN,
};
pub use prf::prf;
pub use rsa::{NoRsa, RsaKeys};

use crate::wire::{HashType, KeyType};

/// What went wrong in the crypto layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The key type is not one this layer implements (DES, 3DES, none or unknown).
    UnsupportedKeyType(KeyType),
    /// The hash is not SHA-1 or SHA-2 (MD5 only ever appears inside the SHA-1 PRF).
    UnsupportedHash(HashType),
    /// A key or salt handed in has the wrong length for its type.
    BadKeyLength,
    /// The packet is shorter than the 16-byte header plus the 12-byte ENCRYPTED header.
    Truncated,
    /// The header's message type is not ENCRYPTED (18).
    NotEncrypted(u8),
    /// The datagram's length disagrees with `12 + sig_len + payload_len`, or the payload cannot
    /// be ciphertext of this cipher (not whole blocks for CBC, shorter than the tag for AEAD).
    BadLength,
    /// `sig_len` is not the one the session implies (hash length for HMAC, 0 for GCM/CCM).
    BadSigLen {
        /// The session's signature length.
        expected: u16,
        /// The packet's.
        found: u16,
    },
    /// The HMAC or the AEAD tag does not verify.
    AuthFailed,
    /// CBC padding is invalid (an authentic packet from a broken sender, or a bad KEYINFO key).
    BadPadding,
    /// The output buffer is too small; `needed` bytes are required.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
    },
    /// The sealed payload would not fit ENCRYPTED's 16-bit length field.
    TooLong,
    /// A key blob is malformed: unknown type, lengths that disagree, or an EC point of the
    /// wrong size for its curve.
    BadBlob,
    /// A fingerprint's text is not 20 `:`-separated hex bytes.
    BadFingerprint,
    /// The EC curve (TLS code) is not one this layer implements (P-256 and P-384 are).
    UnsupportedCurve(u8),
    /// The two keys of an ECDH are on different curves.
    CurveMismatch,
    /// A private scalar is zero, too large or of the wrong length, or a public point is not on
    /// its curve.
    BadKey,
    /// A signature is malformed or does not verify.
    BadSignature,
    /// The datagram is not an ANNOUNCE with a signature (only ECDH sessions sign ANNOUNCE).
    NotSignedAnnounce,
    /// RSA is not available here (firmware has no RSA; see [`RsaKeys`]).
    RsaUnavailable,
    /// RSA decryption, encryption or signing failed (bad ciphertext, key too small).
    Rsa,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::UnsupportedKeyType(t) => write!(f, "unsupported key type {}", u8::from(*t)),
            Error::UnsupportedHash(h) => write!(f, "unsupported hash type {}", u8::from(*h)),
            Error::BadKeyLength => f.write_str("key of the wrong length"),
            Error::Truncated => f.write_str("encrypted packet truncated"),
            Error::NotEncrypted(func) => write!(f, "message type {func} is not ENCRYPTED"),
            Error::BadLength => f.write_str("encrypted payload length invalid"),
            Error::BadSigLen { expected, found } => {
                write!(f, "signature length {found}, session expects {expected}")
            }
            Error::AuthFailed => f.write_str("authentication failed (HMAC or tag)"),
            Error::BadPadding => f.write_str("bad CBC padding"),
            Error::BufferTooSmall { needed } => {
                write!(f, "buffer too small: {needed} bytes needed")
            }
            Error::TooLong => f.write_str("payload too long for ENCRYPTED"),
            Error::BadBlob => f.write_str("malformed key blob"),
            Error::BadFingerprint => f.write_str("fingerprint is not 20 ':'-separated hex bytes"),
            Error::UnsupportedCurve(c) => write!(f, "unsupported EC curve {c}"),
            Error::CurveMismatch => f.write_str("keys are on different curves"),
            Error::BadKey => f.write_str("invalid EC key"),
            Error::BadSignature => f.write_str("signature invalid"),
            Error::NotSignedAnnounce => f.write_str("not a signed ANNOUNCE"),
            Error::RsaUnavailable => f.write_str("RSA is not available"),
            Error::Rsa => f.write_str("RSA operation failed"),
        }
    }
}

impl core::error::Error for Error {}

/// Result type of the crypto layer.
pub type Result<T> = core::result::Result<T, Error>;
