//! Public-key blobs and their fingerprints (digest §5.2).
//!
//! A blob is how UFTP puts a public key on the wire (ANNOUNCE, REGISTER, CLIENT_KEY, HB_REQ,
//! PROXY_KEY); its fingerprint, the SHA-1 of the whole blob including the zero padding to a
//! multiple of 4, is how users name trusted keys (`-S`, `-H`, `-R host/FP`, …) and what
//! `uftp_keymgt` prints.
//!
//! - RSA: `01 | 00 | modlen(2) | exponent(4) | modulus(modlen)`.
//! - EC: `02 | curve(1) | keylen(2) | X ‖ Y`, with `keylen = 2 × field size` and the curve named
//!   by its TLS code (23 = P-256, 24 = P-384, 25 = P-521).

use sha1::{Digest, Sha1};

use super::{Error, Result};

/// Type byte of an RSA blob.
const TYPE_RSA: u8 = 1;
/// Type byte of an EC blob.
const TYPE_EC: u8 = 2;
/// Bytes before the modulus of an RSA blob.
const RSA_FIXED_LEN: usize = 8;
/// Bytes before the point of an EC blob.
const EC_FIXED_LEN: usize = 4;

/// Rounds a byte count up to whole 4-byte words.
const fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// A named curve as an EC blob carries it (its TLS `NamedCurve` code).
///
/// Unknown codes are values, not errors: the blob still parses and fingerprints; only the key
/// operations in [`ec`](super::EcPublicKey) refuse curves they do not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CurveId {
    /// prime256v1 / secp256r1 (23).
    P256,
    /// secp384r1 (24).
    P384,
    /// secp521r1 (25).
    P521,
    /// Any other code.
    Unknown(u8),
}

impl From<u8> for CurveId {
    fn from(code: u8) -> Self {
        match code {
            23 => CurveId::P256,
            24 => CurveId::P384,
            25 => CurveId::P521,
            other => CurveId::Unknown(other),
        }
    }
}

impl From<CurveId> for u8 {
    fn from(curve: CurveId) -> u8 {
        match curve {
            CurveId::P256 => 23,
            CurveId::P384 => 24,
            CurveId::P521 => 25,
            CurveId::Unknown(code) => code,
        }
    }
}

impl CurveId {
    /// Bytes of one coordinate (the field size), for the curves with a known size.
    pub fn field_len(self) -> Option<usize> {
        match self {
            CurveId::P256 => Some(32),
            CurveId::P384 => Some(48),
            CurveId::P521 => Some(66),
            CurveId::Unknown(_) => None,
        }
    }

    /// Length of an ECDSA signature in UFTP's format on this curve: `4 + padded(2 × field)`
    /// (68 on P-256, 100 on P-384, 136 on P-521; digest §5.7).
    pub fn signature_len(self) -> Option<usize> {
        self.field_len().map(|f| 4 + padded(2 * f))
    }
}

/// A borrowed RSA public-key blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RsaBlob<'a> {
    /// Public exponent.
    pub exponent: u32,
    /// Modulus, big-endian (minimal length, so normally the key size in bytes).
    pub modulus: &'a [u8],
}

/// A borrowed EC public-key blob: an uncompressed point without its `04` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcBlob<'a> {
    /// The curve.
    pub curve: CurveId,
    /// `X ‖ Y`, each half one field size, big-endian.
    pub point: &'a [u8],
}

impl<'a> EcBlob<'a> {
    /// The X coordinate.
    pub fn x(&self) -> &'a [u8] {
        &self.point[..self.point.len() / 2]
    }

    /// The Y coordinate.
    pub fn y(&self) -> &'a [u8] {
        &self.point[self.point.len() / 2..]
    }
}

/// Which kind of key a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyBlobKind<'a> {
    /// RSA.
    Rsa(RsaBlob<'a>),
    /// Elliptic curve.
    Ec(EcBlob<'a>),
}

/// A parsed key blob, still holding the bytes it came from (padding included) so that its
/// fingerprint is the one the peer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBlob<'a> {
    bytes: &'a [u8],
    kind: KeyBlobKind<'a>,
}

impl<'a> KeyBlob<'a> {
    /// Parses a blob. `bytes` is the blob as it travels: its length may include up to 3 bytes of
    /// padding after the key (any value; they count in the fingerprint), but no more.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (&kind, rest) = bytes.split_first().ok_or(Error::BadBlob)?;
        let be16 = |at: usize| -> Result<usize> {
            match bytes.get(at..at + 2) {
                Some(b) => Ok(usize::from(u16::from_be_bytes([b[0], b[1]]))),
                None => Err(Error::BadBlob),
            }
        };
        let (needed, kind) = match kind {
            TYPE_RSA => {
                let modlen = be16(2)?;
                let needed = RSA_FIXED_LEN + modlen;
                if rest.first() != Some(&0) || modlen == 0 || bytes.len() < needed {
                    return Err(Error::BadBlob);
                }
                let exponent = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                let modulus = &bytes[RSA_FIXED_LEN..needed];
                (needed, KeyBlobKind::Rsa(RsaBlob { exponent, modulus }))
            }
            TYPE_EC => {
                let curve = CurveId::from(*rest.first().ok_or(Error::BadBlob)?);
                let keylen = be16(2)?;
                let needed = EC_FIXED_LEN + keylen;
                let size_ok = match curve.field_len() {
                    Some(f) => keylen == 2 * f,
                    None => keylen != 0 && keylen % 2 == 0,
                };
                if !size_ok || bytes.len() < needed {
                    return Err(Error::BadBlob);
                }
                let point = &bytes[EC_FIXED_LEN..needed];
                (needed, KeyBlobKind::Ec(EcBlob { curve, point }))
            }
            _ => return Err(Error::BadBlob),
        };
        if bytes.len() > padded(needed) {
            return Err(Error::BadBlob);
        }
        // An RSA blob is never padded (its fingerprint covers exactly 8 + modlen bytes); bytes
        // after it are the enclosing field's padding. EC blobs count their padding.
        let bytes = match kind {
            KeyBlobKind::Rsa(_) => &bytes[..needed],
            KeyBlobKind::Ec(_) => bytes,
        };
        Ok(KeyBlob { bytes, kind })
    }

    /// The key.
    pub fn kind(&self) -> KeyBlobKind<'a> {
        self.kind
    }

    /// The EC key, if it is one.
    pub fn ec(&self) -> Option<EcBlob<'a>> {
        match self.kind {
            KeyBlobKind::Ec(ec) => Some(ec),
            KeyBlobKind::Rsa(_) => None,
        }
    }

    /// The RSA key, if it is one.
    pub fn rsa(&self) -> Option<RsaBlob<'a>> {
        match self.kind {
            KeyBlobKind::Rsa(rsa) => Some(rsa),
            KeyBlobKind::Ec(_) => None,
        }
    }

    /// The blob's bytes as parsed, padding included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// SHA-1 of the blob as parsed, padding included.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.bytes)
    }
}

impl RsaBlob<'_> {
    /// Bytes the emitted blob takes. Unlike EC blobs, uftp 4.10.2 does not pad RSA blobs: a
    /// 1000-bit key's blob is 8 + 125 bytes, and its fingerprint covers exactly those.
    pub fn buffer_len(&self) -> usize {
        RSA_FIXED_LEN + self.modulus.len()
    }

    /// Writes the blob into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let modlen = u16::try_from(self.modulus.len()).map_err(|_| Error::BadBlob)?;
        if modlen == 0 {
            return Err(Error::BadBlob);
        }
        let out = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len })?;
        out.fill(0);
        out[0] = TYPE_RSA;
        out[2..4].copy_from_slice(&modlen.to_be_bytes());
        out[4..8].copy_from_slice(&self.exponent.to_be_bytes());
        out[RSA_FIXED_LEN..RSA_FIXED_LEN + self.modulus.len()].copy_from_slice(self.modulus);
        Ok(len)
    }
}

impl EcBlob<'_> {
    /// Bytes the emitted blob takes, padding included.
    pub fn buffer_len(&self) -> usize {
        padded(EC_FIXED_LEN + self.point.len())
    }

    /// Writes the blob, zero-padded, into the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let keylen = u16::try_from(self.point.len()).map_err(|_| Error::BadBlob)?;
        let size_ok = match self.curve.field_len() {
            Some(f) => self.point.len() == 2 * f,
            None => keylen != 0 && keylen % 2 == 0,
        };
        if !size_ok {
            return Err(Error::BadBlob);
        }
        let out = buf
            .get_mut(..len)
            .ok_or(Error::BufferTooSmall { needed: len })?;
        out.fill(0);
        out[0] = TYPE_EC;
        out[1] = self.curve.into();
        out[2..4].copy_from_slice(&keylen.to_be_bytes());
        out[EC_FIXED_LEN..EC_FIXED_LEN + self.point.len()].copy_from_slice(self.point);
        Ok(len)
    }
}

/// A key fingerprint: SHA-1 of a whole key blob, padding included.
///
/// Written as 20 upper-case hex bytes joined by `:` (what `uftp_keymgt` prints); [`parse`]
/// accepts upper or lower case and one or two digits per byte.
///
/// [`parse`]: Fingerprint::parse
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; Fingerprint::LEN]);

impl Fingerprint {
    /// Bytes in a fingerprint.
    pub const LEN: usize = 20;
    /// Characters of its text form.
    pub const TEXT_LEN: usize = 3 * Self::LEN - 1;

    /// The fingerprint of a blob's bytes (padding included).
    pub fn of(blob: &[u8]) -> Self {
        Fingerprint(Sha1::digest(blob).into())
    }

    /// Writes the text form (`AA:BB:…`, [`TEXT_LEN`](Self::TEXT_LEN) bytes) into the start of
    /// `buf` and returns it.
    pub fn format<'b>(&self, buf: &'b mut [u8]) -> Result<&'b str> {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let out = buf.get_mut(..Self::TEXT_LEN).ok_or(Error::BufferTooSmall {
            needed: Self::TEXT_LEN,
        })?;
        for (i, b) in self.0.iter().enumerate() {
            out[3 * i] = HEX[usize::from(b >> 4)];
            out[3 * i + 1] = HEX[usize::from(b & 0xf)];
            if i + 1 < Self::LEN {
                out[3 * i + 2] = b':';
            }
        }
        // Only ASCII was written.
        core::str::from_utf8(out).map_err(|_| Error::BadFingerprint)
    }

    /// Parses `:`-separated hex bytes; exactly 20 of them.
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = [0u8; Self::LEN];
        let mut n = 0;
        for part in text.split(':') {
            let slot = out.get_mut(n).ok_or(Error::BadFingerprint)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::BadFingerprint);
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| Error::BadFingerprint)?;
            n += 1;
        }
        if n != Self::LEN {
            return Err(Error::BadFingerprint);
        }
        Ok(Fingerprint(out))
    }
}

impl core::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; Self::TEXT_LEN];
        f.write_str(self.format(&mut buf).map_err(|_| core::fmt::Error)?)
    }
}

impl core::str::FromStr for Fingerprint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_blob_round_trip_and_padding() {
        let point = [7u8; 96];
        let blob = EcBlob {
            curve: CurveId::P384,
            point: &point,
        };
        let mut buf = [0xffu8; 128];
        let n = blob.emit(&mut buf).unwrap();
        assert_eq!(n, 100);
        assert_eq!(&buf[..4], &[2, 24, 0, 96]);
        let parsed = KeyBlob::parse(&buf[..n]).unwrap();
        assert_eq!(parsed.ec(), Some(blob));
        assert_eq!(
            blob.emit(&mut buf[..99]),
            Err(Error::BufferTooSmall { needed: 100 })
        );
        // More than the padding after the key is not a blob.
        assert_eq!(KeyBlob::parse(&buf[..n + 4]), Err(Error::BadBlob));
        // The wrong size for the curve is refused.
        buf[3] = 64;
        assert_eq!(KeyBlob::parse(&buf[..n]), Err(Error::BadBlob));
    }

    #[test]
    fn rsa_blob_with_odd_modulus_is_not_padded() {
        // uftp_keymgt's fingerprint of a 1000-bit key (125-byte modulus) covers 8 + 125 bytes
        // (std-host's uftp_keymgt interop test checks it against the real tool).
        let modulus = [0xabu8; 65];
        let blob = RsaBlob {
            exponent: 65537,
            modulus: &modulus,
        };
        let mut buf = [0u8; 80];
        let n = blob.emit(&mut buf).unwrap();
        assert_eq!(n, 73);
        let parsed = KeyBlob::parse(&buf[..n]).unwrap();
        assert_eq!(parsed.rsa(), Some(blob));
        assert_eq!(parsed.fingerprint(), Fingerprint::of(&buf[..73]));
        // Padding of the enclosing field after it is not part of the blob.
        let padded = KeyBlob::parse(&buf[..76]).unwrap();
        assert_eq!(padded.as_bytes().len(), 73);
        assert_eq!(padded.fingerprint(), parsed.fingerprint());
        assert_eq!(KeyBlob::parse(&buf[..72]), Err(Error::BadBlob));
    }

    #[test]
    fn fingerprint_text() {
        let fp = Fingerprint::parse("14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:60")
            .unwrap();
        assert_eq!(fp.0[0], 0x14);
        assert_eq!(fp.0[19], 0x60);
        let mut buf = [0u8; 64];
        assert_eq!(
            fp.format(&mut buf).unwrap(),
            "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:60"
        );
        let lower = Fingerprint::parse("14:c4:5d:9:76:da:18:fb:8:45:fb:3b:8e:42:66:5c:f6:24:f6:60");
        assert_eq!(lower, Ok(fp));
        for bad in [
            "",
            "14:C4",
            "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:60:00",
            "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:",
            "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:+6",
            "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:600",
        ] {
            assert_eq!(
                Fingerprint::parse(bad),
                Err(Error::BadFingerprint),
                "{bad:?}"
            );
        }
        assert_eq!(
            fp.format(&mut buf[..58]),
            Err(Error::BufferTooSmall { needed: 59 })
        );
    }
}
