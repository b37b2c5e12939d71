//! Key blobs, fingerprints, ECDH and ECDSA against real uftp 4.10.2 data: the signed ANNOUNCEs
//! of `enc-gcm-p256` (`-h sha256`) and `enc-ccm-p384` (`-h sha384`), the ECDH blobs of their
//! REGISTERs, the RSA blobs of HB_REQ and PROXY_KEY, the committed keys in `tests/vectors/keys/`
//! and what `uftp_keymgt` prints for them (see tests/vectors/README.md).
//!
//! Only PEM decoding (and, for the RSA blobs, one PKCS#1 check) happens outside proto-core.

use std::path::PathBuf;
use std::process::Command;

use p256::elliptic_curve::zeroize::Zeroizing;
use proto_core::crypto::{
    sign_announce, verify_announce, CurveId, EcBlob, EcPrivateKey, EcPublicKey, Error, Fingerprint,
    KeyBlob, RsaBlob,
};
use proto_core::wire::{AnnounceRepr, EncInfoRepr, HashType, Message, Repr};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;

/// What `uftp_keymgt` 4.10.2 printed for the committed keys (also re-checked live when it is
/// installed, in `fingerprints_match_uftp_keymgt`).
const KEYMGT: [(&str, &str); 10] = [
    (
        "c1_ec256.pem",
        "04:67:F0:40:9A:7D:9C:6B:AE:9E:75:AA:AB:78:9D:2F:E0:2F:6C:77",
    ),
    (
        "c1_ec384.pem",
        "1E:86:65:35:08:0D:5C:9E:2F:D3:3D:12:26:72:25:B6:62:D4:5D:AB",
    ),
    (
        "c1_rsa1024.pem",
        "62:11:DE:A3:FF:F7:F5:18:0D:84:7C:EE:71:65:58:44:E1:04:8C:EF",
    ),
    (
        "c2_ec256.pem",
        "BF:47:6A:E9:ED:5E:57:46:AF:10:78:FC:D5:E2:84:42:90:7D:E7:AB",
    ),
    (
        "c2_ec384.pem",
        "14:E9:02:11:CB:C5:05:98:FF:C0:D3:F1:DC:68:D1:BF:CC:76:8A:EC",
    ),
    (
        "c2_rsa1024.pem",
        "D9:30:1F:79:1A:05:F8:5E:96:5D:F5:47:09:67:E6:31:9E:3A:62:64",
    ),
    (
        "px2_rsa512.pem",
        "BA:AE:6F:61:08:45:A6:98:54:94:17:10:A7:A8:D5:8B:A0:17:19:31",
    ),
    (
        "srv_ec256.pem",
        "14:C4:5D:09:76:DA:18:FB:08:45:FB:3B:8E:42:66:5C:F6:24:F6:60",
    ),
    (
        "srv_ec384.pem",
        "16:8B:04:70:9E:14:11:E4:20:54:7C:E1:6C:B5:48:00:1E:DE:2E:8C",
    ),
    (
        "srv_rsa1024.pem",
        "E0:2E:28:A6:70:1F:29:83:6D:18:15:AD:D4:27:35:30:F8:E6:D2:C1",
    ),
];

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn message(name: &str) -> Vec<u8> {
    std::fs::read(vectors().join("messages").join(name)).unwrap()
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(vectors().join("keys").join(name)).unwrap()
}

fn keymgt(name: &str) -> Fingerprint {
    let (_, fp) = KEYMGT.iter().find(|(n, _)| *n == name).unwrap();
    fp.parse().unwrap()
}

/// The private key of a committed EC key file, through the no_std API (raw scalar).
fn ec_private(name: &str) -> EcPrivateKey {
    let text = pem(name);
    let scalar: Zeroizing<Vec<u8>> = if name.contains("ec256") {
        Zeroizing::new(
            p256::SecretKey::from_sec1_pem(&text)
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    } else {
        Zeroizing::new(
            p384::SecretKey::from_sec1_pem(&text)
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
    };
    let curve = if name.contains("ec256") {
        CurveId::P256
    } else {
        CurveId::P384
    };
    EcPrivateKey::from_scalar(curve, &scalar).unwrap()
}

/// The public blob of any committed key file, as its owner would send it.
fn blob_of(name: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 300];
    let n = if name.contains("rsa") {
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(&pem(name)).unwrap();
        let modulus = key.n().to_bytes_be();
        let exponent = u32::try_from(
            key.e()
                .to_bytes_be()
                .iter()
                .fold(0u64, |a, &b| a << 8 | u64::from(b)),
        )
        .unwrap();
        RsaBlob {
            exponent,
            modulus: &modulus,
        }
        .emit(&mut buf)
        .unwrap()
    } else {
        ec_private(name).public_key().emit_blob(&mut buf).unwrap()
    };
    buf.truncate(n);
    buf
}

fn announce(datagram: &[u8]) -> AnnounceRepr<'_> {
    match Repr::parse(datagram).unwrap().message {
        Message::Announce(a) => a,
        other => panic!("not an ANNOUNCE: {other:?}"),
    }
}

fn enc_info(datagram: &[u8]) -> EncInfoRepr<'_> {
    announce(datagram).enc_info.unwrap()
}

fn server_key(datagram: &[u8]) -> EcPublicKey {
    let blob = KeyBlob::parse(enc_info(datagram).key_blob).unwrap();
    EcPublicKey::from_blob(&blob.ec().unwrap()).unwrap()
}

const SIGNED: [(&str, &str, HashType, CurveId, usize); 2] = [
    (
        "announce-enc-ecdh-p256.bin",
        "srv_ec256.pem",
        HashType::Sha256,
        CurveId::P256,
        68,
    ),
    (
        "announce-enc-ecdh-p384.bin",
        "srv_ec384.pem",
        HashType::Sha384,
        CurveId::P384,
        100,
    ),
];

#[test]
fn fingerprints_match_uftp_keymgt() {
    // Every committed key: its blob (built from the PEM) fingerprints as uftp_keymgt says.
    let live = Command::new("uftp_keymgt").arg("-h").output().is_ok();
    for (name, expected) in KEYMGT {
        let blob = blob_of(name);
        let fp = KeyBlob::parse(&blob).unwrap().fingerprint();
        assert_eq!(fp.to_string(), expected, "{name}");
        if live {
            let out = Command::new("uftp_keymgt")
                .arg(vectors().join("keys").join(name))
                .output()
                .unwrap();
            // uftp_keymgt prints its report on stderr.
            let text =
                String::from_utf8(out.stderr).unwrap() + &String::from_utf8(out.stdout).unwrap();
            let printed = text.trim().rsplit("fingerprint: ").next().unwrap();
            assert_eq!(
                printed.parse::<Fingerprint>(),
                Ok(fp),
                "{name}: uftp_keymgt says {text}"
            );
        }
    }
    if !live {
        eprintln!("uftp_keymgt not installed: checked against the recorded values only");
    }
}

#[test]
fn captured_blobs_are_the_committed_keys() {
    // The server key blobs inside the captured ANNOUNCEs.
    for (file, key, _, curve, _) in SIGNED {
        let datagram = message(file);
        let info = enc_info(&datagram);
        let blob = KeyBlob::parse(info.key_blob).unwrap();
        assert_eq!(blob.fingerprint(), keymgt(key), "{file}");
        assert_eq!(info.key_blob, blob_of(key), "{file}");
        assert_eq!(blob.ec().unwrap().curve, curve);
        // Our emit of the parsed blob gives back the same bytes.
        let mut buf = [0u8; 128];
        let n = blob.ec().unwrap().emit(&mut buf).unwrap();
        assert_eq!(&buf[..n], info.key_blob);
        // The ephemeral ECDH blob is a point on the same curve.
        let dh = KeyBlob::parse(info.dh_blob).unwrap().ec().unwrap();
        assert_eq!(dh.curve, curve);
        EcPublicKey::from_blob(&dh).unwrap();
    }
    // The authenticated HB_REQ carries px2's RSA-512 key, and its SHA-1 signature over the
    // nonce verifies under the parsed modulus and exponent.
    let hb = message("hb_req-auth.bin");
    let Message::HbReq(req) = Repr::parse(&hb).unwrap().message else {
        panic!("not an HB_REQ")
    };
    let blob = KeyBlob::parse(req.key_blob).unwrap();
    assert_eq!(blob.fingerprint(), keymgt("px2_rsa512.pem"));
    let rsa_blob = blob.rsa().unwrap();
    assert_eq!(rsa_blob.modulus.len(), 64);
    let public = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(rsa_blob.modulus),
        rsa::BigUint::from(rsa_blob.exponent),
    )
    .unwrap();
    let mut digest = [0u8; 64];
    let n = proto_core::crypto::digest(HashType::Sha1, &[&req.nonce.to_be_bytes()], &mut digest)
        .unwrap();
    // DigestInfo prefix of SHA-1 (RFC 8017 §9.2).
    let sha1_prefix = [
        0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
    ];
    let scheme = rsa::Pkcs1v15Sign {
        hash_len: Some(20),
        prefix: sha1_prefix.to_vec().into_boxed_slice(),
    };
    public.verify(scheme, &digest[..n], req.signature).unwrap();
    // PROXY_KEY carries the response proxy's ephemeral RSA-512 key.
    let pk = message("proxy_key.bin");
    let Message::ProxyKey(proxy) = Repr::parse(&pk).unwrap().message else {
        panic!("not a PROXY_KEY")
    };
    let blob = KeyBlob::parse(proxy.key_blob).unwrap();
    assert_eq!(blob.rsa().unwrap().modulus.len(), 64);
    assert_eq!(blob.as_bytes().len(), 72);
}

#[test]
fn captured_announces_verify_and_any_flipped_bit_fails() {
    for (file, _, hash, curve, siglen) in SIGNED {
        let mut datagram = message(file);
        let info = enc_info(&datagram);
        assert_eq!(info.hashtype, hash);
        assert_eq!(info.signature.len(), siglen);
        assert_eq!(curve.signature_len(), Some(siglen));
        let key = server_key(&datagram);
        verify_announce(&key, &datagram).unwrap();
        for bit in 0..datagram.len() * 8 {
            datagram[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify_announce(&key, &datagram).is_err(),
                "{file}: bit {bit} flipped"
            );
            datagram[bit / 8] ^= 1 << (bit % 8);
        }
        verify_announce(&key, &datagram).unwrap();
        // The other server's key does not verify it.
        let other = SIGNED.iter().find(|s| s.0 != file).unwrap();
        let other_key = server_key(&message(other.0));
        assert_eq!(
            verify_announce(&other_key, &datagram),
            Err(Error::BadSignature)
        );
    }
}

#[test]
fn we_sign_announces_that_verify_with_the_captured_key() {
    for (file, key_file, ..) in SIGNED {
        let captured = message(file);
        let key = ec_private(key_file);
        assert_eq!(key.public_key(), server_key(&captured));
        let mut ours = captured.clone();
        sign_announce(&key, &mut ours).unwrap();
        verify_announce(&server_key(&captured), &ours).unwrap();
        // Deterministic (RFC 6979): signing again gives the same bytes.
        let mut again = ours.clone();
        sign_announce(&key, &mut again).unwrap();
        assert_eq!(again, ours);
        // Only the signature field changed.
        let range = announce(&captured).signature_range().unwrap();
        let range = range.start + 16..range.end + 16;
        assert_eq!(captured[..range.start], ours[..range.start]);
        assert_eq!(captured[range.end..], ours[range.end..]);
        // A datagram without a signature is refused.
        assert_eq!(
            verify_announce(&key.public_key(), &message("announce-open.bin")),
            Err(Error::NotSignedAnnounce)
        );
    }
}

/// Deterministic bytes for the tests (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }

    fn key(&mut self, curve: CurveId) -> EcPrivateKey {
        loop {
            let mut scalar = [0u8; 48];
            let len = curve.field_len().unwrap();
            self.fill(&mut scalar[..len]);
            if let Ok(k) = EcPrivateKey::from_scalar(curve, &scalar[..len]) {
                return k;
            }
        }
    }
}

#[test]
fn ecdh_between_two_of_our_keys_and_with_captured_blobs() {
    let mut rng = Rng(0x5eed_0001);
    for (curve, blob_len, register) in [
        (CurveId::P256, 68, "register-ecdh.bin"),
        (CurveId::P384, 100, "register-ecdh-p384.bin"),
    ] {
        let (a, b) = (rng.key(curve), rng.key(curve));
        // Each side sends its blob; each side parses the other's.
        let mut blob_a = [0u8; 128];
        let mut blob_b = [0u8; 128];
        assert_eq!(a.public_key().emit_blob(&mut blob_a).unwrap(), blob_len);
        assert_eq!(b.public_key().emit_blob(&mut blob_b).unwrap(), blob_len);
        let peer_a =
            EcPublicKey::from_blob(&KeyBlob::parse(&blob_a[..blob_len]).unwrap().ec().unwrap())
                .unwrap();
        let peer_b =
            EcPublicKey::from_blob(&KeyBlob::parse(&blob_b[..blob_len]).unwrap().ec().unwrap())
                .unwrap();
        let pm_a = a.premaster(&peer_b).unwrap();
        let pm_b = b.premaster(&peer_a).unwrap();
        assert_eq!(pm_a, pm_b);
        assert_ne!(pm_a, a.premaster(&peer_a).unwrap());
        // A client's ephemeral blob from the capture is usable as a peer key.
        let datagram = message(register);
        let Message::Register(reg) = Repr::parse(&datagram).unwrap().message else {
            panic!("not a REGISTER")
        };
        let blob = KeyBlob::parse(reg.keyinfo).unwrap().ec().unwrap();
        assert_eq!(blob.curve, curve);
        let client = EcPublicKey::from_blob(&blob).unwrap();
        assert_eq!(a.premaster(&client).unwrap().len(), 20);
    }
    // Keys on different curves do not mix.
    let (k256, k384) = (rng.key(CurveId::P256), rng.key(CurveId::P384));
    assert_eq!(
        k256.premaster(&k384.public_key()),
        Err(Error::CurveMismatch)
    );
}

#[test]
fn ecdh_premaster_is_sha1_of_the_shared_x() {
    // Scalars 1 and 2: the shared point is 2·G, so the premaster is SHA-1 of 2·G's X.
    let mut one = [0u8; 32];
    one[31] = 1;
    let mut two = [0u8; 32];
    two[31] = 2;
    let k1 = EcPrivateKey::from_scalar(CurveId::P256, &one).unwrap();
    let k2 = EcPrivateKey::from_scalar(CurveId::P256, &two).unwrap();
    let mut blob = [0u8; 68];
    k2.public_key().emit_blob(&mut blob).unwrap();
    // 2·G on P-256 (SEC 2 test data).
    let x2g = "7cf27b188d034f7e8a52380304b51ac3c08969e277f21b35a60b48fc47669978";
    assert_eq!(hex(&blob[4..36]), x2g);
    let mut sha1 = [0u8; 64];
    let x: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&x2g[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    proto_core::crypto::digest(HashType::Sha1, &[&x], &mut sha1).unwrap();
    assert_eq!(k1.premaster(&k2.public_key()).unwrap(), sha1[..20]);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn invalid_scalars_are_refused() {
    // P-256 group order n.
    let n256 = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    let n: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&n256[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut n_minus_1 = n.clone();
    n_minus_1[31] -= 1;
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P256, &n).unwrap_err(),
        Error::BadKey
    );
    assert!(EcPrivateKey::from_scalar(CurveId::P256, &n_minus_1).is_ok());
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P256, &[0; 32]).unwrap_err(),
        Error::BadKey
    );
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P256, &[0xff; 32]).unwrap_err(),
        Error::BadKey
    );
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P256, &[1; 31]).unwrap_err(),
        Error::BadKey
    );
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P384, &[1; 32]).unwrap_err(),
        Error::BadKey
    );
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P384, &[0xff; 48]).unwrap_err(),
        Error::BadKey
    );
    assert_eq!(
        EcPrivateKey::from_scalar(CurveId::P521, &[1; 66]).unwrap_err(),
        Error::UnsupportedCurve(25)
    );
    // A point off the curve.
    let mut blob = [0u8; 68];
    ec_private("c1_ec256.pem")
        .public_key()
        .emit_blob(&mut blob)
        .unwrap();
    blob[67] ^= 1;
    let parsed = KeyBlob::parse(&blob).unwrap().ec().unwrap();
    assert_eq!(EcPublicKey::from_blob(&parsed), Err(Error::BadKey));
    let p521 = EcBlob {
        curve: CurveId::P521,
        point: &[1; 132],
    };
    assert_eq!(
        EcPublicKey::from_blob(&p521),
        Err(Error::UnsupportedCurve(25))
    );
}

#[test]
fn sign_verify_round_trip_every_hash_and_short_r_or_s() {
    let mut rng = Rng(0x5eed_0002);
    for key_file in ["c1_ec256.pem", "c2_ec384.pem"] {
        let key = ec_private(key_file);
        let public = key.public_key();
        let siglen = key.curve().signature_len().unwrap();
        for hash in [
            HashType::Sha1,
            HashType::Sha256,
            HashType::Sha384,
            HashType::Sha512,
        ] {
            let mut sig = [0u8; 100];
            assert_eq!(
                key.sign(hash, &[b"verify ", b"data"], &mut sig).unwrap(),
                siglen
            );
            let sig = &sig[..siglen];
            public.verify(hash, &[b"verify data"], sig).unwrap();
            assert_eq!(
                public.verify(hash, &[b"verify dat4"], sig),
                Err(Error::BadSignature)
            );
            let other = if hash == HashType::Sha1 {
                HashType::Sha256
            } else {
                HashType::Sha1
            };
            assert_eq!(
                public.verify(other, &[b"verify data"], sig),
                Err(Error::BadSignature)
            );
            assert_eq!(
                public.verify(hash, &[b"verify data"], &sig[..siglen - 4]),
                Err(Error::BadSignature)
            );
        }
        // HB_REQ-style SHA-1 signatures over a nonce, until r or s is shorter than the field
        // (probability 1/128 each); its length field and the padding must still be right.
        let field = key.curve().field_len().unwrap();
        let mut short = 0;
        for _ in 0..3000 {
            let nonce = (rng.next() as u32).to_be_bytes();
            let mut sig = [0u8; 100];
            key.sign(HashType::Sha1, &[&nonce], &mut sig).unwrap();
            let sig = &sig[..siglen];
            let rlen = usize::from(u16::from_be_bytes([sig[0], sig[1]]));
            let slen = usize::from(u16::from_be_bytes([sig[2], sig[3]]));
            assert!(sig[4..].iter().skip(rlen + slen).all(|&b| b == 0));
            assert_ne!(sig[4], 0);
            assert_ne!(sig[4 + rlen], 0);
            if rlen < field || slen < field {
                short += 1;
                public.verify(HashType::Sha1, &[&nonce], sig).unwrap();
            }
            if short == 3 {
                break;
            }
        }
        assert_eq!(short, 3, "{key_file}: no short r or s in 3000 signatures");
    }
    let mut small = [0u8; 67];
    assert_eq!(
        ec_private("c1_ec256.pem").sign(HashType::Sha256, &[b"x"], &mut small),
        Err(Error::BufferTooSmall { needed: 68 })
    );
}

#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x5eed_0003);
    let keys = [
        server_key(&message(SIGNED[0].0)),
        server_key(&message(SIGNED[1].0)),
    ];
    let mut buf = [0u8; 160];
    let mut parsed = 0;
    for i in 0..50_000 {
        let len = (rng.next() % 160) as usize;
        rng.fill(&mut buf[..len]);
        // Plausible headers half the time, so the length checks are reached.
        if i % 2 == 0 && len >= 4 {
            buf[0] = 1 + (i / 2 % 2) as u8;
            buf[1] = [0, 23, 24, 25, 7][i / 4 % 5];
            buf[2] = 0;
            buf[3] = [64, 96, 132, 60, len as u8 - 4][i / 20 % 5];
        }
        if let Ok(blob) = KeyBlob::parse(&buf[..len]) {
            parsed += 1;
            let _ = blob.fingerprint();
            if let Some(ec) = blob.ec() {
                let _ = EcPublicKey::from_blob(&ec);
            }
        }
        // Signatures of every length, with sane rlen/slen half the time.
        if i % 2 == 1 && len >= 4 {
            buf[0] = 0;
            buf[1] = (rng.next() % 50) as u8;
            buf[2] = 0;
            buf[3] = (rng.next() % 50) as u8;
        }
        for key in &keys {
            assert!(key
                .verify(HashType::Sha256, &[b"data"], &buf[..len])
                .is_err());
        }
        let text: String = buf[..len % 70]
            .iter()
            .map(|&b| b"0123456789abcdefABCDEF:x"[usize::from(b) % 24] as char)
            .collect();
        let _ = text.parse::<Fingerprint>();
    }
    assert!(parsed > 100, "only {parsed} random blobs parsed");
    // Random corruption of a captured signed ANNOUNCE: never panics, never verifies.
    let original = message(SIGNED[0].0);
    for _ in 0..5_000 {
        let mut datagram = original.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % datagram.len();
            datagram[at] = rng.next() as u8;
        }
        let cut = if rng.next().is_multiple_of(8) {
            (rng.next() as usize) % datagram.len()
        } else {
            datagram.len()
        };
        if datagram[..cut] != original[..] {
            assert!(verify_announce(&keys[0], &datagram[..cut]).is_err());
        }
    }
}
