//! Host-side key handling (digest §5.2, §5.3, §5.7, §8.4): private keys in the PEM files uftp
//! 4.10.2 reads and writes, their UFTP key blobs and fingerprints, and the RSA half of the
//! handshake that `proto-core` leaves to the host (premaster encryption, PKCS#1 v1.5
//! signatures). EC keys on P-256 and P-384 hand their scalar to
//! [`proto_core::crypto::EcPrivateKey`], which does ECDH and ECDSA.
//!
//! Key files:
//!
//! - read: PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY` (named curve) and unencrypted
//!   PKCS#8 `PRIVATE KEY`; text around the PEM block is ignored and the first block holding a
//!   private key wins (as OpenSSL's `PEM_read_*PrivateKey` do);
//! - written: PKCS#1 or SEC1 (uftp's forms), 64-column base64, created with mode 0600 and never
//!   over an existing file ([`KeyError::Exists`]).
//!
//! Randomness comes from the OS ([`rand_core::OsRng`]); RSA private operations are blinded.

mod ec_key;
mod host_rsa;
mod key_file;
pub mod keymgt;
mod rsa_key;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use proto_core::crypto::Fingerprint;

pub use ec_key::{EcPrivate, NamedCurve};
pub use host_rsa::HostRsa;
pub use rsa_key::{
    premaster_padding, PremasterPadding, RsaPrivate, RsaPublic, OAEP_MIN_BITS, PREMASTER_LEN,
};

/// Smallest RSA key `uftp_keymgt -g` makes (and uftp accepts for `-k`).
pub const RSA_MIN_BITS: usize = 512;
/// Largest RSA key `uftp_keymgt -g` makes; 4.10.2 refuses larger sizes rather than warn.
pub const RSA_MAX_BITS: usize = 2048;

/// What went wrong with a key.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A new key file would replace an existing one; nothing was written.
    Exists(PathBuf),
    /// No PEM block in the text holds a private key this module reads.
    NoPrivateKey,
    /// A PEM block or its DER body is malformed, or holds a key of a type UFTP does not use.
    Malformed(&'static str),
    /// The PEM block is an encrypted PKCS#8 key; uftp keys are stored unencrypted.
    Encrypted,
    /// The EC key's curve is not one this module knows (by OID or by name).
    UnknownCurve(String),
    /// The EC key is on a curve this build cannot compute with (only P-256 and P-384).
    UnsupportedCurve(NamedCurve),
    /// An RSA key size outside what uftp allows.
    BadRsaSize(usize),
    /// A key spec that is neither `rsa:BITS` nor `ec:CURVE`.
    BadSpec(String),
    /// A public-key blob is malformed or not of the kind needed.
    BadBlob,
    /// The RSA operation failed: ciphertext or signature invalid, message too long.
    Rsa(rsa::Error),
    /// The EC operation failed in `proto-core`.
    Crypto(proto_core::crypto::Error),
    /// The hash is not one UFTP signs with (SHA-1, SHA-256, SHA-384, SHA-512).
    UnsupportedHash(proto_core::wire::HashType),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            KeyError::Exists(path) => write!(
                f,
                "{}: file already exists; not overwriting a key file (choose another name)",
                path.display()
            ),
            KeyError::NoPrivateKey => f.write_str(
                "no private key found (expected a PEM RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY block)",
            ),
            KeyError::Malformed(what) => write!(f, "malformed key: {what}"),
            KeyError::Encrypted => {
                f.write_str("the key is encrypted; uftp keys must be stored unencrypted")
            }
            KeyError::UnknownCurve(c) => write!(f, "unknown EC curve {c}"),
            KeyError::UnsupportedCurve(c) => write!(
                f,
                "EC curve {} is not supported here (prime256v1 and secp384r1 are)",
                c.name()
            ),
            KeyError::BadRsaSize(bits) => write!(
                f,
                "RSA key size {bits} is outside {RSA_MIN_BITS}..={RSA_MAX_BITS} bits"
            ),
            KeyError::BadSpec(s) => write!(f, "bad key spec {s:?}: use rsa:BITS or ec:CURVE"),
            KeyError::BadBlob => f.write_str("malformed or unexpected public key blob"),
            KeyError::Rsa(e) => write!(f, "RSA: {e}"),
            KeyError::Crypto(e) => write!(f, "{e}"),
            KeyError::UnsupportedHash(h) => {
                write!(f, "hash {} cannot sign", u8::from(*h))
            }
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            KeyError::Rsa(e) => Some(e),
            KeyError::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<rsa::Error> for KeyError {
    fn from(e: rsa::Error) -> Self {
        KeyError::Rsa(e)
    }
}

impl From<proto_core::crypto::Error> for KeyError {
    fn from(e: proto_core::crypto::Error) -> Self {
        KeyError::Crypto(e)
    }
}

/// Result type of this module.
pub type Result<T> = std::result::Result<T, KeyError>;

/// What kind of key to generate: `uftp_keymgt -g`'s `rsa:BITS` or `ec:CURVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    /// EC on this curve.
    Ec(NamedCurve),
}

impl FromStr for KeySpec {
    type Err = KeyError;

    /// Parses as uftp_keymgt does: `rsa:` takes the size C's `atoi` reads (leading digits;
    /// anything else is 0, hence out of range), and must be 512–2048; `ec:` takes a curve name
    /// from uftp's list.
    fn from_str(s: &str) -> Result<Self> {
        if let Some(bits) = s.strip_prefix("rsa:") {
            let bits = atoi(bits);
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(KeyError::BadRsaSize(bits));
            }
            Ok(KeySpec::Rsa(bits))
        } else if let Some(curve) = s.strip_prefix("ec:") {
            NamedCurve::from_name(curve)
                .map(KeySpec::Ec)
                .ok_or_else(|| KeyError::UnknownCurve(curve.to_owned()))
        } else {
            Err(KeyError::BadSpec(s.to_owned()))
        }
    }
}

/// C's `atoi` for a size: optional leading whitespace and sign, then digits; 0 if none;
/// negative and overflowing values come out as 0 (both are out of any valid range).
fn atoi(s: &str) -> usize {
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits
        .bytes()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    match digits[..end].parse::<usize>() {
        Ok(n) if !neg => n,
        _ => 0,
    }
}

/// A private key as uftp keeps one in a key file.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One or two per program, loaded once: not worth a Box.
pub enum PrivateKey {
    /// RSA.
    Rsa(RsaPrivate),
    /// Elliptic curve (ECDSA and ECDH).
    Ec(EcPrivate),
}

impl PrivateKey {
    /// Reads a key file (see the module doc for the forms read).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pem(&String::from_utf8_lossy(&text))
    }

    /// Parses PEM text: the first block that holds a private key.
    pub fn from_pem(text: &str) -> Result<Self> {
        key_file::parse(text)
    }

    /// A new random key.
    pub fn generate(spec: KeySpec) -> Result<Self> {
        Ok(match spec {
            KeySpec::Rsa(bits) => PrivateKey::Rsa(RsaPrivate::generate(bits)?),
            KeySpec::Ec(curve) => PrivateKey::Ec(EcPrivate::generate(curve)?),
        })
    }

    /// The key in uftp's PEM form: `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1 with
    /// the named curve and the public key), LF line ends.
    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>> {
        match self {
            PrivateKey::Rsa(k) => k.to_pem(),
            PrivateKey::Ec(k) => k.to_pem(),
        }
    }

    /// Writes the key to a new file with mode 0600; refuses ([`KeyError::Exists`]) if the path
    /// exists, so a key is never silently replaced.
    pub fn save_new(&self, path: &Path) -> Result<()> {
        key_file::write_new(path, self.to_pem()?.as_bytes())
    }

    /// The UFTP public-key blob, as uftp builds and fingerprints it (EC: padded to 4 bytes;
    /// RSA: 8 + modulus bytes, see [`RsaPublic::blob`]).
    pub fn blob(&self) -> Vec<u8> {
        match self {
            PrivateKey::Rsa(k) => k.public().blob(),
            PrivateKey::Ec(k) => k.blob(),
        }
    }

    /// SHA-1 of [`blob`](Self::blob): the fingerprint peers are configured with.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.blob())
    }

    /// `RSA, 1024 bits` or `ECDSA, curve prime256v1`: the middle of uftp_keymgt's line.
    pub fn description(&self) -> String {
        match self {
            PrivateKey::Rsa(k) => format!("RSA, {} bits", k.bits()),
            PrivateKey::Ec(k) => format!("ECDSA, curve {}", k.curve().name()),
        }
    }

    /// Whether this key can serve a peer whose key has this blob (digest §5.2's key-selection
    /// rule: RSA of the same modulus length, or EC on the same curve).
    pub fn is_compatible_with(&self, peer_blob: &[u8]) -> bool {
        use proto_core::crypto::{KeyBlob, KeyBlobKind};
        match (self, KeyBlob::parse(peer_blob).map(|b| b.kind())) {
            (PrivateKey::Rsa(k), Ok(KeyBlobKind::Rsa(r))) => k.modulus_len() == r.modulus.len(),
            (PrivateKey::Ec(k), Ok(KeyBlobKind::Ec(e))) => u8::from(e.curve) == k.curve().tls_id(),
            _ => false,
        }
    }
}

/// Where a program's key came from (`-k`, `-K`), for its start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from this file.
    Read(PathBuf),
    /// Generated and written to this new file (mode 0600).
    Saved(PathBuf),
    /// Generated for this run only.
    Ephemeral,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Read(p) => write!(f, "read from {}", p.display()),
            KeyOrigin::Saved(p) => write!(f, "generated, saved to {}", p.display()),
            KeyOrigin::Ephemeral => f.write_str("generated for this run"),
        }
    }
}

/// The `-k file` / `-K spec` rule both programs share: a file alone is read; a spec alone makes
/// a key for this run; both make a key and write it to the file, which must not exist yet (an
/// existing key is never overwritten: [`KeyError::Exists`]). One of the two must be given.
pub fn load_or_generate(
    file: Option<&Path>,
    spec: Option<KeySpec>,
) -> Result<(PrivateKey, KeyOrigin)> {
    match (file, spec) {
        (Some(file), None) => Ok((PrivateKey::load(file)?, KeyOrigin::Read(file.to_owned()))),
        (Some(file), Some(spec)) => {
            // Refuse before the (slow) generation.
            if std::fs::symlink_metadata(file).is_ok() {
                return Err(KeyError::Exists(file.to_owned()));
            }
            let key = PrivateKey::generate(spec)?;
            key.save_new(file)?;
            Ok((key, KeyOrigin::Saved(file.to_owned())))
        }
        (None, Some(spec)) => Ok((PrivateKey::generate(spec)?, KeyOrigin::Ephemeral)),
        (None, None) => Err(KeyError::BadSpec(String::new())),
    }
}

/// The `-k file,…` / `-K spec,…` lists of a receiver or proxy paired up for
/// [`load_or_generate`]: files alone, specs alone, or both item by item (the option parsers
/// check that both lists have as many items). Neither: one P-256 key for this run.
pub fn key_pairs<'a>(
    files: &'a [PathBuf],
    specs: &[KeySpec],
) -> Vec<(Option<&'a Path>, Option<KeySpec>)> {
    match (files.is_empty(), specs.is_empty()) {
        (true, true) => vec![(None, Some(KeySpec::Ec(NamedCurve::Prime256v1)))],
        (false, true) => files.iter().map(|f| (Some(f.as_path()), None)).collect(),
        (true, false) => specs.iter().map(|&k| (None, Some(k))).collect(),
        (false, false) => files
            .iter()
            .zip(specs)
            .map(|(f, &k)| (Some(f.as_path()), Some(k)))
            .collect(),
    }
}

/// One line of `uftp_keymgt`'s listing: `FILE: RSA, 1024 bits, fingerprint: AA:…`.
pub fn keymgt_line(file: &str, key: &PrivateKey) -> String {
    format!(
        "{file}: {}, fingerprint: {}",
        key.description(),
        key.fingerprint()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_or_generate_writes_new_files_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("uftp-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("k.pem");
        let _ = std::fs::remove_file(&file);
        let spec = KeySpec::Ec(NamedCurve::Prime256v1);
        let (made, origin) = load_or_generate(Some(&file), Some(spec)).unwrap();
        assert_eq!(origin, KeyOrigin::Saved(file.clone()));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (read, origin) = load_or_generate(Some(&file), None).unwrap();
        assert_eq!(origin, KeyOrigin::Read(file.clone()));
        assert_eq!(read.fingerprint(), made.fingerprint());
        // Asking again to generate into it is refused, and the key stays.
        assert!(matches!(
            load_or_generate(Some(&file), Some(spec)),
            Err(KeyError::Exists(_))
        ));
        assert_eq!(
            PrivateKey::load(&file).unwrap().fingerprint(),
            made.fingerprint()
        );
        let (eph, origin) = load_or_generate(None, Some(spec)).unwrap();
        assert_eq!(origin, KeyOrigin::Ephemeral);
        assert_ne!(eph.fingerprint(), made.fingerprint());
        assert!(matches!(
            load_or_generate(Some(&dir.join("missing.pem")), None),
            Err(KeyError::Io { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spec_parses_like_uftp_keymgt() {
        assert_eq!("rsa:512".parse::<KeySpec>().unwrap(), KeySpec::Rsa(512));
        assert_eq!("rsa:1024x".parse::<KeySpec>().unwrap(), KeySpec::Rsa(1024));
        assert_eq!("rsa: +2048".parse::<KeySpec>().unwrap(), KeySpec::Rsa(2048));
        for bad in ["rsa:511", "rsa:2049", "rsa:abc", "rsa:", "rsa:-512"] {
            assert!(matches!(
                bad.parse::<KeySpec>(),
                Err(KeyError::BadRsaSize(_))
            ));
        }
        assert!(matches!(
            "rsa".parse::<KeySpec>(),
            Err(KeyError::BadSpec(_))
        ));
        assert!(matches!(
            "ec:bogus".parse::<KeySpec>(),
            Err(KeyError::UnknownCurve(_))
        ));
        assert_eq!(
            "ec:secp384r1".parse::<KeySpec>().unwrap(),
            KeySpec::Ec(NamedCurve::Secp384r1)
        );
    }
}
