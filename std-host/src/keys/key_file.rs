//! PEM key files: finding the private key among the blocks, decoding PKCS#1, SEC1 and PKCS#8,
//! and writing a new file safely.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use der::asn1::ObjectIdentifier;
use der::Decode;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::RsaPrivateKey;
use zeroize::Zeroizing;

use super::{EcPrivate, KeyError, NamedCurve, PrivateKey, Result, RsaPrivate};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// One `-----BEGIN …-----` … `-----END …-----` block: its label and its base64 text.
struct Block<'a> {
    label: &'a str,
    lines: Vec<&'a str>,
}

/// The PEM blocks of `text`, in order; text outside blocks is ignored (OpenSSL does too).
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut current: Option<Block<'_>> = None;
    for line in text.lines().map(str::trim) {
        let boundary = |kind: &str| {
            line.strip_prefix("-----")
                .and_then(|l| l.strip_prefix(kind))
                .and_then(|l| l.strip_suffix("-----"))
        };
        match current.take() {
            None => {
                if let Some(label) = boundary("BEGIN ") {
                    current = Some(Block {
                        label,
                        lines: Vec::new(),
                    });
                }
            }
            Some(mut block) => {
                if boundary("END ").is_some_and(|l| l == block.label) {
                    out.push(block);
                } else if let Some(label) = boundary("BEGIN ") {
                    // An unterminated block: start over at the new one.
                    current = Some(Block {
                        label,
                        lines: Vec::new(),
                    });
                } else {
                    block.lines.push(line);
                    current = Some(block);
                }
            }
        }
    }
    out
}

/// The DER body of a block. Re-wrapped at 64 columns first, so that files with other line
/// widths or CRLF line ends read as OpenSSL reads them.
fn der_of(block: &Block<'_>) -> Result<Zeroizing<Vec<u8>>> {
    if block.lines.iter().any(|l| l.contains(':')) {
        // RFC 1421 headers: `Proc-Type: 4,ENCRYPTED` and `DEK-Info`, OpenSSL's legacy
        // passphrase encryption.
        return Err(KeyError::Encrypted);
    }
    let body: String = block.lines.concat();
    let mut pem = Zeroizing::new(format!("-----BEGIN {}-----\n", block.label));
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).map_err(|_| KeyError::Malformed("not base64"))?);
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {}-----\n", block.label));
    let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes())
        .map_err(|_| KeyError::Malformed("PEM block is not valid base64"))?;
    Ok(Zeroizing::new(der))
}

/// The first private key in the PEM text.
pub(super) fn parse(text: &str) -> Result<PrivateKey> {
    let mut first_error = None;
    for block in blocks(text) {
        let result = match block.label {
            "RSA PRIVATE KEY" => der_of(&block).and_then(|der| rsa_pkcs1(&der)),
            "EC PRIVATE KEY" => der_of(&block).and_then(|der| ec_sec1(&der, None)),
            "PRIVATE KEY" => der_of(&block).and_then(|der| pkcs8(&der)),
            "ENCRYPTED PRIVATE KEY" => Err(KeyError::Encrypted),
            _ => continue,
        };
        match result {
            Ok(key) => return Ok(key),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(KeyError::NoPrivateKey))
}

fn rsa_pkcs1(der: &[u8]) -> Result<PrivateKey> {
    let key = RsaPrivateKey::from_pkcs1_der(der)
        .map_err(|_| KeyError::Malformed("not a PKCS#1 RSA private key"))?;
    RsaPrivate::from_key(key).map(PrivateKey::Rsa)
}

/// A SEC1 key; `curve` is the one PKCS#8 names outside it, if any.
fn ec_sec1(der: &[u8], curve: Option<ObjectIdentifier>) -> Result<PrivateKey> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|_| KeyError::Malformed("not a SEC1 EC private key with a named curve"))?;
    let oid = match (key.parameters, curve) {
        (Some(sec1::EcParameters::NamedCurve(oid)), _) | (None, Some(oid)) => oid,
        (None, None) => return Err(KeyError::Malformed("EC key without its curve")),
    };
    let curve =
        NamedCurve::from_oid(&oid).ok_or_else(|| KeyError::UnknownCurve(oid.to_string()))?;
    EcPrivate::from_parts(curve, key.private_key, key.public_key).map(PrivateKey::Ec)
}

fn pkcs8(der: &[u8]) -> Result<PrivateKey> {
    let info = pkcs8::PrivateKeyInfo::from_der(der)
        .map_err(|_| KeyError::Malformed("not a PKCS#8 private key"))?;
    if info.algorithm.oid == RSA_ENCRYPTION {
        rsa_pkcs1(info.private_key)
    } else if info.algorithm.oid == EC_PUBLIC_KEY {
        let curve = info
            .algorithm
            .parameters_oid()
            .map_err(|_| KeyError::Malformed("EC key without a named curve"))?;
        ec_sec1(info.private_key, Some(curve))
    } else {
        Err(KeyError::Malformed(
            "key type is neither RSA nor EC (UFTP uses no other)",
        ))
    }
}

/// Creates `path` with mode 0600 and writes `bytes`; never replaces an existing file.
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_owned()),
            _ => io(e),
        })?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        // The file is ours (create_new): leave no half-written key behind.
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(io(e));
    }
    Ok(())
}
