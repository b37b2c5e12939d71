//! Elliptic-curve key exchange and signatures on P-256 and P-384 (digest §5.3, §5.7).
//!
//! - ECDH: both sides send an ephemeral public key as an EC blob; the premaster is
//!   `SHA-1(X of the shared point)`, 20 bytes ([`EcPrivateKey::premaster`]).
//! - ECDSA in UFTP's own format (not DER): `rlen(2) ‖ slen(2) ‖ r ‖ s ‖ zero padding`, r and s
//!   minimal big-endian, fixed total length `4 + padded(2 × field size)`. The digest is the
//!   session hash of the covered bytes (SHA-1 for HB_REQ and PROXY_KEY). A digest shorter than
//!   the field is taken as the integer it is (OpenSSL's rule); a longer one is cut to its
//!   leftmost field-size bytes (FIPS 186, the same for both curves).
//! - The ANNOUNCE signature covers the whole datagram with the signature field zeroed
//!   ([`verify_announce`], [`sign_announce`]).
//!
//! Signing is deterministic (RFC 6979), so nothing here needs randomness; the caller supplies
//! the scalar of every key, ephemeral ECDH keys included. P-521 blobs parse
//! ([`KeyBlob`](super::KeyBlob)) but keys on it are refused with [`Error::UnsupportedCurve`].

use core::ops::Range;

use sha1::{Digest, Sha1};

use super::blob::{CurveId, EcBlob};
use super::hash::{digest, MAX_HASH_LEN};
use super::{Error, Result};
use crate::wire::{HashType, Message, Repr, HEADER_LEN};

/// The largest field size implemented (P-384).
const MAX_FIELD_LEN: usize = 48;
/// Length of an ECDH premaster: a SHA-1 digest.
pub const ECDH_PREMASTER_LEN: usize = 20;
/// The longest signature this module writes or reads (P-384: 100 bytes).
pub const MAX_EC_SIGNATURE_LEN: usize = 4 + 2 * MAX_FIELD_LEN;

/// Per-curve operations on the RustCrypto types; the enums below dispatch to them.
macro_rules! curve_ops {
    ($module:ident, $krate:ident, $field:expr) => {
        mod $module {
            use $krate::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
            use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $krate::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
            use $krate::{EncodedPoint, FieldBytes, PublicKey, SecretKey};

            use super::{Error, Result};

            pub(super) const FIELD: usize = $field;

            pub(super) fn secret(scalar: &[u8]) -> Result<SecretKey> {
                if scalar.len() != FIELD {
                    return Err(Error::BadKey);
                }
                // Refuses zero and anything not below the group order.
                SecretKey::from_bytes(FieldBytes::from_slice(scalar)).map_err(|_| Error::BadKey)
            }

            pub(super) fn public(x: &[u8], y: &[u8]) -> Result<PublicKey> {
                if x.len() != FIELD || y.len() != FIELD {
                    return Err(Error::BadKey);
                }
                let point = EncodedPoint::from_affine_coordinates(
                    FieldBytes::from_slice(x),
                    FieldBytes::from_slice(y),
                    false,
                );
                // Refuses points that are not on the curve.
                Option::from(PublicKey::from_encoded_point(&point)).ok_or(Error::BadKey)
            }

            /// `X ‖ Y` of a public key.
            pub(super) fn xy(key: &PublicKey, out: &mut [u8; 2 * FIELD]) {
                let point = key.to_encoded_point(false);
                // An uncompressed encoding of a valid public key has both coordinates.
                if let (Some(x), Some(y)) = (point.x(), point.y()) {
                    out[..FIELD].copy_from_slice(x);
                    out[FIELD..].copy_from_slice(y);
                }
            }

            pub(super) fn shared_x(secret: &SecretKey, peer: &PublicKey) -> [u8; FIELD] {
                let shared =
                    $krate::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
                (*shared.raw_secret_bytes()).into()
            }

            /// Signs a field-size prehash; returns `(r, s)`, each field-size big-endian.
            pub(super) fn sign(
                secret: &SecretKey,
                prehash: &[u8; FIELD],
            ) -> Result<([u8; FIELD], [u8; FIELD])> {
                let key = SigningKey::from(secret);
                let sig: Signature = key.sign_prehash(prehash).map_err(|_| Error::BadKey)?;
                let (r, s) = sig.split_bytes();
                Ok((r.into(), s.into()))
            }

            pub(super) fn verify(
                key: &PublicKey,
                prehash: &[u8; FIELD],
                r: &[u8; FIELD],
                s: &[u8; FIELD],
            ) -> Result<()> {
                let sig =
                    Signature::from_scalars(*FieldBytes::from_slice(r), *FieldBytes::from_slice(s))
                        .map_err(|_| Error::BadSignature)?;
                VerifyingKey::from(key)
                    .verify_prehash(prehash, &sig)
                    .map_err(|_| Error::BadSignature)
            }
        }
    };
}

curve_ops!(ops256, p256, 32);
// P-384 is a feature (on by default): the firmware leaves its ~115 KiB of field arithmetic out.
#[cfg(feature = "p384")]
curve_ops!(ops384, p384, 48);

fn unsupported(curve: CurveId) -> Error {
    Error::UnsupportedCurve(curve.into())
}

/// The session hash of `parts` as an integer of `FIELD` bytes: left-padded when shorter,
/// its leftmost bytes when longer.
fn prehash<const FIELD: usize>(hash: HashType, parts: &[&[u8]]) -> Result<[u8; FIELD]> {
    let mut d = [0u8; MAX_HASH_LEN];
    let n = digest(hash, parts, &mut d)?;
    let mut out = [0u8; FIELD];
    if n >= FIELD {
        out.copy_from_slice(&d[..FIELD]);
    } else {
        out[FIELD - n..].copy_from_slice(&d[..n]);
    }
    Ok(out)
}

/// Writes `r` and `s` (field-size big-endian) in UFTP's format into `out`; returns the length.
fn write_signature(curve: CurveId, r: &[u8], s: &[u8], out: &mut [u8]) -> Result<usize> {
    let len = curve.signature_len().ok_or(unsupported(curve))?;
    let out = out
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { needed: len })?;
    let trim = |v: &[u8]| -> usize { v.iter().position(|&b| b != 0).unwrap_or(v.len()) };
    // r and s are never zero in a valid signature, so neither trims to nothing.
    let (r, s) = (&r[trim(r)..], &s[trim(s)..]);
    out.fill(0);
    out[0..2].copy_from_slice(&(r.len() as u16).to_be_bytes());
    out[2..4].copy_from_slice(&(s.len() as u16).to_be_bytes());
    out[4..4 + r.len()].copy_from_slice(r);
    out[4 + r.len()..4 + r.len() + s.len()].copy_from_slice(s);
    Ok(len)
}

/// Reads a signature in UFTP's format into field-size `(r, s)`; every malformed input is
/// [`Error::BadSignature`].
fn read_signature<const FIELD: usize>(
    curve: CurveId,
    sig: &[u8],
) -> Result<([u8; FIELD], [u8; FIELD])> {
    if Some(sig.len()) != curve.signature_len() || sig.len() < 4 {
        return Err(Error::BadSignature);
    }
    let rlen = usize::from(u16::from_be_bytes([sig[0], sig[1]]));
    let slen = usize::from(u16::from_be_bytes([sig[2], sig[3]]));
    if rlen == 0 || slen == 0 || rlen > FIELD || slen > FIELD || 4 + rlen + slen > sig.len() {
        return Err(Error::BadSignature);
    }
    let (mut r, mut s) = ([0u8; FIELD], [0u8; FIELD]);
    r[FIELD - rlen..].copy_from_slice(&sig[4..4 + rlen]);
    s[FIELD - slen..].copy_from_slice(&sig[4 + rlen..4 + rlen + slen]);
    Ok((r, s))
}

/// An EC private key on P-256 or P-384: a long-term ECDSA key or an ephemeral ECDH key.
///
/// Made from a scalar the caller supplies (read from a key file, or fresh random bytes for an
/// ephemeral key). `Debug` prints the curve, never the scalar; the scalar is zeroed on drop.
#[derive(Clone)]
pub enum EcPrivateKey {
    /// P-256.
    P256(p256::SecretKey),
    /// P-384.
    #[cfg(feature = "p384")]
    P384(p384::SecretKey),
}

impl core::fmt::Debug for EcPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("EcPrivateKey").field(&self.curve()).finish()
    }
}

impl EcPrivateKey {
    /// A key from its big-endian scalar of exactly one field size (32 bytes for P-256, 48 for
    /// P-384). Zero and values not below the group order are [`Error::BadKey`]; for an ephemeral
    /// key the caller draws fresh random bytes again (it happens with probability ≈ 2⁻³²).
    pub fn from_scalar(curve: CurveId, scalar: &[u8]) -> Result<Self> {
        match curve {
            CurveId::P256 => ops256::secret(scalar).map(EcPrivateKey::P256),
            #[cfg(feature = "p384")]
            CurveId::P384 => ops384::secret(scalar).map(EcPrivateKey::P384),
            other => Err(unsupported(other)),
        }
    }

    /// The curve.
    pub fn curve(&self) -> CurveId {
        match self {
            EcPrivateKey::P256(_) => CurveId::P256,
            #[cfg(feature = "p384")]
            EcPrivateKey::P384(_) => CurveId::P384,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> EcPublicKey {
        match self {
            EcPrivateKey::P256(k) => EcPublicKey::P256(k.public_key()),
            #[cfg(feature = "p384")]
            EcPrivateKey::P384(k) => EcPublicKey::P384(k.public_key()),
        }
    }

    /// ECDH with the peer's public key: `SHA-1(X of the shared point)`, the 20-byte premaster.
    pub fn premaster(&self, peer: &EcPublicKey) -> Result<[u8; ECDH_PREMASTER_LEN]> {
        match (self, peer) {
            (EcPrivateKey::P256(k), EcPublicKey::P256(p)) => {
                Ok(Sha1::digest(ops256::shared_x(k, p)).into())
            }
            #[cfg(feature = "p384")]
            (EcPrivateKey::P384(k), EcPublicKey::P384(p)) => {
                Ok(Sha1::digest(ops384::shared_x(k, p)).into())
            }
            // Without P-384 there is one curve and nothing to mismatch.
            #[cfg_attr(not(feature = "p384"), allow(unreachable_patterns))]
            _ => Err(Error::CurveMismatch),
        }
    }

    /// Signs the concatenation of `parts` with the session hash `hash`; writes the signature in
    /// UFTP's format ([`CurveId::signature_len`] bytes) into the start of `out`.
    /// Deterministic (RFC 6979): the same key and bytes always give the same signature.
    pub fn sign(&self, hash: HashType, parts: &[&[u8]], out: &mut [u8]) -> Result<usize> {
        let curve = self.curve();
        let needed = curve.signature_len().ok_or(unsupported(curve))?;
        if out.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        match self {
            EcPrivateKey::P256(k) => {
                let (r, s) = ops256::sign(k, &prehash::<{ ops256::FIELD }>(hash, parts)?)?;
                write_signature(curve, &r, &s, out)
            }
            #[cfg(feature = "p384")]
            EcPrivateKey::P384(k) => {
                let (r, s) = ops384::sign(k, &prehash::<{ ops384::FIELD }>(hash, parts)?)?;
                write_signature(curve, &r, &s, out)
            }
        }
    }
}

/// An EC public key on P-256 or P-384, checked to be a point on its curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcPublicKey {
    /// P-256.
    P256(p256::PublicKey),
    /// P-384.
    #[cfg(feature = "p384")]
    P384(p384::PublicKey),
}

impl EcPublicKey {
    /// The key in an EC blob. Curves other than P-256 and P-384 are
    /// [`Error::UnsupportedCurve`]; a point off the curve is [`Error::BadKey`].
    pub fn from_blob(blob: &EcBlob<'_>) -> Result<Self> {
        match blob.curve {
            CurveId::P256 => ops256::public(blob.x(), blob.y()).map(EcPublicKey::P256),
            #[cfg(feature = "p384")]
            CurveId::P384 => ops384::public(blob.x(), blob.y()).map(EcPublicKey::P384),
            other => Err(unsupported(other)),
        }
    }

    /// The curve.
    pub fn curve(&self) -> CurveId {
        match self {
            EcPublicKey::P256(_) => CurveId::P256,
            #[cfg(feature = "p384")]
            EcPublicKey::P384(_) => CurveId::P384,
        }
    }

    /// Bytes the key's blob takes (padding included): 68 on P-256, 100 on P-384.
    pub fn blob_len(&self) -> usize {
        match self {
            EcPublicKey::P256(_) => 4 + 2 * ops256::FIELD,
            #[cfg(feature = "p384")]
            EcPublicKey::P384(_) => 4 + 2 * ops384::FIELD,
        }
    }

    /// Writes the key's EC blob into the start of `buf`; returns its length.
    pub fn emit_blob(&self, buf: &mut [u8]) -> Result<usize> {
        let mut xy = [0u8; 2 * MAX_FIELD_LEN];
        let point = match self {
            EcPublicKey::P256(k) => {
                let mut p = [0u8; 2 * ops256::FIELD];
                ops256::xy(k, &mut p);
                xy[..p.len()].copy_from_slice(&p);
                &xy[..p.len()]
            }
            #[cfg(feature = "p384")]
            EcPublicKey::P384(k) => {
                let mut p = [0u8; 2 * ops384::FIELD];
                ops384::xy(k, &mut p);
                xy[..p.len()].copy_from_slice(&p);
                &xy[..p.len()]
            }
        };
        EcBlob {
            curve: self.curve(),
            point,
        }
        .emit(buf)
    }

    /// Verifies a signature in UFTP's format over the concatenation of `parts`, digested with
    /// `hash`. Any malformed or wrong signature is [`Error::BadSignature`].
    pub fn verify(&self, hash: HashType, parts: &[&[u8]], signature: &[u8]) -> Result<()> {
        match self {
            EcPublicKey::P256(k) => {
                let (r, s) = read_signature::<{ ops256::FIELD }>(CurveId::P256, signature)?;
                ops256::verify(k, &prehash(hash, parts)?, &r, &s)
            }
            #[cfg(feature = "p384")]
            EcPublicKey::P384(k) => {
                let (r, s) = read_signature::<{ ops384::FIELD }>(CurveId::P384, signature)?;
                ops384::verify(k, &prehash(hash, parts)?, &r, &s)
            }
        }
    }
}

/// Where an ANNOUNCE datagram's signature sits, and its session hash.
pub fn announce_signature(datagram: &[u8]) -> Result<(HashType, Range<usize>)> {
    let repr = Repr::parse(datagram).map_err(|_| Error::NotSignedAnnounce)?;
    let Message::Announce(announce) = repr.message else {
        return Err(Error::NotSignedAnnounce);
    };
    let enc = announce.enc_info.ok_or(Error::NotSignedAnnounce)?;
    if enc.signature.is_empty() {
        return Err(Error::NotSignedAnnounce);
    }
    // The parsed signature borrows from `datagram`, so its address gives its offset exactly,
    // wherever the extension sits among others.
    let start = enc
        .signature
        .as_ptr()
        .addr()
        .wrapping_sub(datagram.as_ptr().addr());
    let range = start..start + enc.signature.len();
    if range.start < HEADER_LEN || range.end > datagram.len() {
        return Err(Error::NotSignedAnnounce);
    }
    Ok((enc.hashtype, range))
}

/// Zeros long enough for any signature field an ANNOUNCE can hold (its length is 16 bits).
static ZEROS: [u8; 512] = [0; 512];

/// Hashes `datagram` with `range` read as zeros, in pieces.
fn parts_without<'a>(datagram: &'a [u8], range: &Range<usize>) -> Result<[&'a [u8]; 3]> {
    let zeros = ZEROS.get(..range.len()).ok_or(Error::BadSignature)?;
    Ok([&datagram[..range.start], zeros, &datagram[range.end..]])
}

/// An ANNOUNCE's signed content: its hash, the covered bytes in pieces, and the signature.
pub type SignedParts<'a> = (HashType, [&'a [u8]; 3], &'a [u8]);

/// What an ANNOUNCE signature covers, for keys other than EC (RSA, for ECDH_RSA): the session
/// hash, the datagram in three pieces with the signature field read as zeros, and the signature.
pub fn announce_signed_parts(datagram: &[u8]) -> Result<SignedParts<'_>> {
    let (hash, range) = announce_signature(datagram)?;
    let parts = parts_without(datagram, &range)?;
    Ok((hash, parts, &datagram[range]))
}

/// Verifies the signature of an ECDH_ECDSA ANNOUNCE: the whole UDP payload with the signature
/// field zeroed, under the session hash the ANNOUNCE names (digest §5.7).
///
/// `key` is the server's ECDSA key; the caller takes it from the ANNOUNCE's key blob after
/// checking that blob's fingerprint against the servers it trusts.
pub fn verify_announce(key: &EcPublicKey, datagram: &[u8]) -> Result<()> {
    let (hash, range) = announce_signature(datagram)?;
    let parts = parts_without(datagram, &range)?;
    key.verify(hash, &parts, &datagram[range])
}

/// Signs an emitted ECDH_ECDSA ANNOUNCE in place. Its signature field must already have the
/// key's [`CurveId::signature_len`]; whatever it holds is replaced.
pub fn sign_announce(key: &EcPrivateKey, datagram: &mut [u8]) -> Result<()> {
    let (hash, range) = announce_signature(datagram)?;
    let mut sig = [0u8; MAX_EC_SIGNATURE_LEN];
    datagram[range.clone()].fill(0);
    let n = key.sign(hash, &[datagram], &mut sig)?;
    if n != range.len() {
        return Err(Error::BadSigLen {
            expected: n as u16,
            found: range.len() as u16,
        });
    }
    datagram[range].copy_from_slice(&sig[..n]);
    Ok(())
}
