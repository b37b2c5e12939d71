//! EC private keys: the named curves uftp knows, and keys on them.

use der::asn1::ObjectIdentifier;
use der::Encode;
use proto_core::crypto::{CurveId, EcBlob, EcPrivateKey};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::{KeyError, Result};

/// The named curves uftp 4.10.2 lists for `uftp_keymgt -g ec:CURVE` (its man page), in TLS
/// `NamedCurve` order: the code a curve has in an EC blob is its position plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The variants are the curves' names.
pub enum NamedCurve {
    Sect163k1,
    Sect163r1,
    Sect163r2,
    Sect193r1,
    Sect193r2,
    Sect233k1,
    Sect233r1,
    Sect239k1,
    Sect283k1,
    Sect283r1,
    Sect409k1,
    Sect409r1,
    Sect571k1,
    Sect571r1,
    Secp160k1,
    Secp160r1,
    Secp160r2,
    Secp192k1,
    Prime192v1,
    Secp224k1,
    Secp224r1,
    Secp256k1,
    Prime256v1,
    Secp384r1,
    Secp521r1,
}

/// (curve, OpenSSL short name as uftp_keymgt prints it, OID, TLS code).
const CURVES: [(NamedCurve, &str, &str, u8); 25] = [
    (NamedCurve::Sect163k1, "sect163k1", "1.3.132.0.1", 1),
    (NamedCurve::Sect163r1, "sect163r1", "1.3.132.0.2", 2),
    (NamedCurve::Sect163r2, "sect163r2", "1.3.132.0.15", 3),
    (NamedCurve::Sect193r1, "sect193r1", "1.3.132.0.24", 4),
    (NamedCurve::Sect193r2, "sect193r2", "1.3.132.0.25", 5),
    (NamedCurve::Sect233k1, "sect233k1", "1.3.132.0.26", 6),
    (NamedCurve::Sect233r1, "sect233r1", "1.3.132.0.27", 7),
    (NamedCurve::Sect239k1, "sect239k1", "1.3.132.0.3", 8),
    (NamedCurve::Sect283k1, "sect283k1", "1.3.132.0.16", 9),
    (NamedCurve::Sect283r1, "sect283r1", "1.3.132.0.17", 10),
    (NamedCurve::Sect409k1, "sect409k1", "1.3.132.0.36", 11),
    (NamedCurve::Sect409r1, "sect409r1", "1.3.132.0.37", 12),
    (NamedCurve::Sect571k1, "sect571k1", "1.3.132.0.38", 13),
    (NamedCurve::Sect571r1, "sect571r1", "1.3.132.0.39", 14),
    (NamedCurve::Secp160k1, "secp160k1", "1.3.132.0.9", 15),
    (NamedCurve::Secp160r1, "secp160r1", "1.3.132.0.8", 16),
    (NamedCurve::Secp160r2, "secp160r2", "1.3.132.0.30", 17),
    (NamedCurve::Secp192k1, "secp192k1", "1.3.132.0.31", 18),
    (
        NamedCurve::Prime192v1,
        "prime192v1",
        "1.2.840.10045.3.1.1",
        19,
    ),
    (NamedCurve::Secp224k1, "secp224k1", "1.3.132.0.32", 20),
    (NamedCurve::Secp224r1, "secp224r1", "1.3.132.0.33", 21),
    (NamedCurve::Secp256k1, "secp256k1", "1.3.132.0.10", 22),
    (
        NamedCurve::Prime256v1,
        "prime256v1",
        "1.2.840.10045.3.1.7",
        23,
    ),
    (NamedCurve::Secp384r1, "secp384r1", "1.3.132.0.34", 24),
    (NamedCurve::Secp521r1, "secp521r1", "1.3.132.0.35", 25),
];

impl NamedCurve {
    fn entry(self) -> &'static (NamedCurve, &'static str, &'static str, u8) {
        // Every variant has its row; the table is in variant order.
        &CURVES[self as usize]
    }

    /// The curve of a name from uftp's list (`prime256v1`, `secp384r1`, …).
    pub fn from_name(name: &str) -> Option<Self> {
        CURVES.iter().find(|e| e.1 == name).map(|e| e.0)
    }

    /// The curve of an ASN.1 object identifier.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        CURVES
            .iter()
            .find(|e| ObjectIdentifier::new(e.2).is_ok_and(|o| o == *oid))
            .map(|e| e.0)
    }

    /// The name uftp_keymgt prints (OpenSSL's short name).
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The object identifier in key files.
    pub fn oid(self) -> ObjectIdentifier {
        // The table's OIDs are constants known to parse (checked by a test).
        ObjectIdentifier::new_unwrap(self.entry().2)
    }

    /// The TLS `NamedCurve` code an EC blob carries.
    pub fn tls_id(self) -> u8 {
        self.entry().3
    }

    /// The curve as `proto-core` names it, if it computes with it (P-256, P-384).
    fn computable(self) -> Option<CurveId> {
        match self {
            NamedCurve::Prime256v1 => Some(CurveId::P256),
            NamedCurve::Secp384r1 => Some(CurveId::P384),
            _ => None,
        }
    }
}

/// An EC private key. On P-256 and P-384 it carries a `proto-core` key for ECDSA and ECDH;
/// on other curves it is only listed (blob and fingerprint, from the public key in its file).
#[derive(Clone)]
pub struct EcPrivate {
    curve: NamedCurve,
    scalar: Zeroizing<Vec<u8>>,
    /// `X ‖ Y`, each one field size.
    point: Vec<u8>,
    key: Option<EcPrivateKey>,
}

impl std::fmt::Debug for EcPrivate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcPrivate")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

impl EcPrivate {
    /// A fresh key from OS randomness (P-256 and P-384 only).
    pub fn generate(curve: NamedCurve) -> Result<Self> {
        let id = curve
            .computable()
            .ok_or(KeyError::UnsupportedCurve(curve))?;
        let len = id.field_len().ok_or(KeyError::UnsupportedCurve(curve))?;
        let mut scalar = Zeroizing::new(vec![0u8; len]);
        loop {
            OsRng.fill_bytes(&mut scalar);
            // Zero or not below the order: draw again (probability ≈ 2⁻³² on these curves).
            if EcPrivateKey::from_scalar(id, &scalar).is_ok() {
                return Self::from_parts(curve, &scalar, None);
            }
        }
    }

    /// A key from its scalar (big-endian, at most one field size) and, for curves this module
    /// does not compute on, the public point from the key file (`04 ‖ X ‖ Y`).
    pub(super) fn from_parts(
        curve: NamedCurve,
        scalar: &[u8],
        public: Option<&[u8]>,
    ) -> Result<Self> {
        match curve.computable() {
            Some(id) => {
                let len = id.field_len().ok_or(KeyError::UnsupportedCurve(curve))?;
                // SEC1 writes the scalar in field-size bytes, but be lenient to a short one.
                let scalar = left_pad(scalar, len)?;
                let key = EcPrivateKey::from_scalar(id, &scalar)?;
                let mut blob = [0u8; 4 + 2 * 48];
                let n = key.public_key().emit_blob(&mut blob)?;
                let point = blob[4..n].to_vec();
                Ok(EcPrivate {
                    curve,
                    scalar,
                    point,
                    key: Some(key),
                })
            }
            None => {
                let point = match public {
                    Some([0x04, xy @ ..]) if !xy.is_empty() && xy.len() % 2 == 0 => xy.to_vec(),
                    Some(_) => {
                        return Err(KeyError::Malformed(
                            "EC public key not in uncompressed form (needed on this curve)",
                        ))
                    }
                    None => {
                        return Err(KeyError::Malformed(
                            "EC key without its public key (needed on this curve)",
                        ))
                    }
                };
                Ok(EcPrivate {
                    curve,
                    scalar: Zeroizing::new(scalar.to_vec()),
                    point,
                    key: None,
                })
            }
        }
    }

    /// The curve.
    pub fn curve(&self) -> NamedCurve {
        self.curve
    }

    /// The `proto-core` key for ECDSA signing and ECDH; [`KeyError::UnsupportedCurve`] on
    /// curves other than P-256 and P-384.
    pub fn key(&self) -> Result<&EcPrivateKey> {
        self.key
            .as_ref()
            .ok_or(KeyError::UnsupportedCurve(self.curve))
    }

    /// The UFTP EC blob, padded to 4 bytes.
    pub fn blob(&self) -> Vec<u8> {
        let blob = EcBlob {
            curve: CurveId::from(self.curve.tls_id()),
            point: &self.point,
        };
        let mut out = vec![0u8; blob.buffer_len()];
        // The point is X ‖ Y of equal halves (checked when the key was made), so emit succeeds.
        let n = blob.emit(&mut out).unwrap_or(0);
        out.truncate(n);
        out
    }

    /// SEC1 `EC PRIVATE KEY` with the named curve and the public key, as OpenSSL writes it.
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        let mut public = Vec::with_capacity(1 + self.point.len());
        public.push(0x04);
        public.extend_from_slice(&self.point);
        let der = Zeroizing::new(
            sec1::EcPrivateKey {
                private_key: &self.scalar,
                parameters: Some(sec1::EcParameters::NamedCurve(self.curve.oid())),
                public_key: Some(&public),
            }
            .to_der()
            .map_err(|_| KeyError::Malformed("EC key does not encode"))?,
        );
        pem_rfc7468::encode_string("EC PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Malformed("EC key does not encode"))
    }
}

fn left_pad(scalar: &[u8], len: usize) -> Result<Zeroizing<Vec<u8>>> {
    let digits = &scalar[scalar.iter().take_while(|&&b| b == 0).count()..];
    if digits.len() > len {
        return Err(KeyError::Malformed(
            "EC private scalar longer than the field",
        ));
    }
    let mut out = Zeroizing::new(vec![0u8; len]);
    out[len - digits.len()..].copy_from_slice(digits);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_table_is_in_variant_and_tls_order() {
        for (i, e) in CURVES.iter().enumerate() {
            assert_eq!(e.0 as usize, i);
            assert_eq!(usize::from(e.3), i + 1);
            let oid = ObjectIdentifier::new(e.2).unwrap();
            assert_eq!(NamedCurve::from_oid(&oid), Some(e.0));
            assert_eq!(NamedCurve::from_name(e.1), Some(e.0));
        }
        assert_eq!(u8::from(CurveId::P256), NamedCurve::Prime256v1.tls_id());
        assert_eq!(u8::from(CurveId::P384), NamedCurve::Secp384r1.tls_id());
        assert_eq!(u8::from(CurveId::P521), NamedCurve::Secp521r1.tls_id());
    }
}
