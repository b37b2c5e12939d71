//! `std_host::keys` against the captured uftp 4.10.2 sessions and the committed key files
//! (tests/vectors/README.md), and round trips of its own keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proto_core::crypto::{master_secret, unwrap_group_master, Envelope, SessionKeys};
use proto_core::wire::{HashType, KeyType};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey};
use std_host::keys::{
    premaster_padding, KeyError, KeySpec, NamedCurve, PremasterPadding, PrivateKey, RsaPrivate,
    RsaPublic, PREMASTER_LEN,
};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::load(&vectors().join("keys").join(name)).unwrap()
}

fn rsa(name: &str) -> RsaPrivate {
    match key(name) {
        PrivateKey::Rsa(k) => k,
        other => panic!("{name}: not RSA: {other:?}"),
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// UDP payloads of a capture, by 1-based packet number (read with uftpdump's own reader).
fn udp_payloads(name: &str) -> BTreeMap<usize, Vec<u8>> {
    use std_host::dump::capture::CaptureReader;
    use std_host::dump::net::{link_payload, parse_ip, parse_udp};
    let file = std::fs::File::open(vectors().join("pcap").join(name)).unwrap();
    let mut reader = CaptureReader::new(std::io::BufReader::new(file)).unwrap();
    let mut out = BTreeMap::new();
    let mut number = 0;
    while let Some(frame) = reader.next_frame().unwrap() {
        number += 1;
        let Ok(ip) = link_payload(frame.linktype, &frame.data).and_then(parse_ip) else {
            continue;
        };
        if ip.protocol != 17 || ip.fragment.is_some() {
            continue;
        }
        if let Ok(udp) = parse_udp(ip.src, ip.dst, ip.payload) {
            out.insert(number, udp.payload.to_vec());
        }
    }
    out
}

#[test]
fn captured_premaster_decrypts_and_opens_the_session() {
    let pkts = udp_payloads("enc-cbc-rsa.pcap");
    let server = rsa("srv_rsa1024.pem");
    assert_eq!(
        premaster_padding(server.modulus_len()),
        PremasterPadding::OaepSha1
    );

    let ann = pkts.values().find(|p| p[1] == 1).unwrap();
    // The ANNOUNCE carries our blob of the server key, byte for byte.
    let blob = server.public().blob();
    assert_eq!(blob.len(), 136);
    assert!(ann.windows(blob.len()).any(|w| w == blob), "server blob");
    let ext = &ann[16 + 16 + 8..];
    let (keytype, hash) = (KeyType::from(ext[4]), HashType::from(ext[5]));
    let rand1: [u8; 32] = ext[12..44].try_into().unwrap();

    let mut opened = 0;
    for client in [0x0a63_0002u32, 0x0a63_0003] {
        let reg = &pkts
            .values()
            .find(|p| p[1] == 2 && be32(p, 4) == client)
            .unwrap()[16..];
        let rand2: [u8; 32] = reg[12..44].try_into().unwrap();
        let premaster = server
            .decrypt_premaster(&reg[44..44 + be16(reg, 2)])
            .unwrap();
        assert_eq!(premaster.len(), PREMASTER_LEN);

        let master = master_secret(hash, &premaster, &rand1, &rand2).unwrap();
        let keys = SessionKeys::client(keytype, hash, &master, &rand1, &rand2).unwrap();
        let ki = pkts
            .values()
            .find(|p| p[1] == 5 && p[28..].chunks(52).any(|e| be32(e, 0) == client))
            .unwrap();
        let entry: [u8; 48] = ki[28..].chunks(52).find(|e| be32(e, 0) == client).unwrap()[4..52]
            .try_into()
            .unwrap();
        let iv_ctr = u64::from_be_bytes(ki[20..28].try_into().unwrap());
        let group_master = unwrap_group_master(&keys, ki[0], be32(ki, 4), iv_ctr, &entry).unwrap();
        let group = SessionKeys::group(keytype, hash, &group_master, &rand1).unwrap();
        let env = Envelope::new(&group).unwrap();
        for p in pkts.values().filter(|p| p[1] == 18) {
            let mut buf = p.clone();
            env.open(&mut buf).unwrap();
            opened += 1;
        }

        // Another ciphertext of the same length does not decrypt.
        let mut bad = reg[44..44 + be16(reg, 2)].to_vec();
        bad[5] ^= 1;
        assert!(server.decrypt_premaster(&bad).is_err());
    }
    assert!(opened >= 20, "{opened} ENCRYPTED packets opened");
}

#[test]
fn heartbeat_signature_verifies_with_the_blob_it_carries() {
    let msg = std::fs::read(vectors().join("messages/hb_req-auth.bin")).unwrap();
    let b = &msg[16..];
    assert_eq!(b[0], 14, "HB_REQ");
    let (bloblen, siglen) = (be16(b, 4), be16(b, 6));
    let nonce = &b[8..12];
    let blob = &b[12..12 + bloblen];
    let sig = &b[12 + bloblen..12 + bloblen + siglen];
    let key = RsaPublic::from_blob_bytes(blob).unwrap();
    assert_eq!(key.bits(), 512);
    assert_eq!(key.blob(), blob);
    // The client proxy of the capture signed with px2_rsa512.pem.
    assert_eq!(key, rsa("px2_rsa512.pem").public());
    key.verify(HashType::Sha1, &[nonce], sig).unwrap();
    assert!(key.verify(HashType::Sha256, &[nonce], sig).is_err());
    let mut other = nonce.to_vec();
    other[0] ^= 0x80;
    assert!(key.verify(HashType::Sha1, &[&other], sig).is_err());
    let mut bad = sig.to_vec();
    bad[10] ^= 1;
    assert!(key.verify(HashType::Sha1, &[nonce], &bad).is_err());
}

#[test]
fn premaster_round_trips_with_the_padding_uftp_uses() {
    for (bits, padding) in [
        (512, PremasterPadding::Pkcs1v15),
        (1024, PremasterPadding::OaepSha1),
    ] {
        let key = RsaPrivate::generate(bits).unwrap();
        assert_eq!(key.bits(), bits);
        assert_eq!(premaster_padding(key.modulus_len()), padding);
        let premaster: [u8; PREMASTER_LEN] = std::array::from_fn(|i| i as u8 ^ 0xa5);
        let ct = key.public().encrypt_premaster(&premaster).unwrap();
        assert_eq!(ct.len(), bits / 8);
        assert_eq!(key.decrypt_premaster(&ct).unwrap()[..], premaster);
        // The padding on the wire is the one named, as a third party (the rsa crate) sees it.
        let raw = RsaPrivateKey::from_pkcs1_pem(&key.to_pem().unwrap()).unwrap();
        let plain = match padding {
            PremasterPadding::Pkcs1v15 => raw.decrypt(Pkcs1v15Encrypt, &ct),
            PremasterPadding::OaepSha1 => raw.decrypt(Oaep::new::<sha1::Sha1>(), &ct),
        };
        assert_eq!(plain.unwrap(), premaster);
        // Two encryptions of the same premaster differ (random padding).
        assert_ne!(key.public().encrypt_premaster(&premaster).unwrap(), ct);
    }
}

#[test]
fn signatures_round_trip_with_every_hash() {
    let k1024 = rsa("c1_rsa1024.pem");
    let k512 = rsa("px2_rsa512.pem");
    let parts: [&[u8]; 2] = [b"verify data ", b"in two parts"];
    for (key, hashes) in [
        (
            &k1024,
            &[
                HashType::Sha1,
                HashType::Sha256,
                HashType::Sha384,
                HashType::Sha512,
            ][..],
        ),
        // RSA-512 has no room for a SHA-384/512 DigestInfo (uftp cannot sign them either).
        (&k512, &[HashType::Sha1, HashType::Sha256][..]),
    ] {
        for &hash in hashes {
            let sig = key.sign(hash, &parts).unwrap();
            assert_eq!(sig.len(), key.modulus_len());
            key.public().verify(hash, &parts, &sig).unwrap();
            // Deterministic (PKCS#1 v1.5), and the split of the parts does not matter.
            assert_eq!(key.sign(hash, &[b"verify data in two parts"]).unwrap(), sig);
            assert!(key.public().verify(hash, &[b"other"], &sig).is_err());
        }
    }
    assert!(k512.sign(HashType::Sha512, &parts).is_err());
    assert!(matches!(
        k1024.sign(HashType::Md5, &parts),
        Err(KeyError::UnsupportedHash(_))
    ));
    // A peer with the other key cannot pass for this one.
    let sig = k1024.sign(HashType::Sha256, &parts).unwrap();
    assert!(rsa("c2_rsa1024.pem")
        .public()
        .verify(HashType::Sha256, &parts, &sig)
        .is_err());
}

#[test]
fn pkcs8_and_sloppy_pem_read_as_the_same_keys() {
    use der::Encode;
    use rsa::pkcs8::EncodePrivateKey;

    // RSA, PKCS#8.
    let pem = std::fs::read_to_string(vectors().join("keys/srv_rsa1024.pem")).unwrap();
    let raw = RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
    let p8 = raw.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let want = key("srv_rsa1024.pem").fingerprint();
    assert_eq!(PrivateKey::from_pem(&p8).unwrap().fingerprint(), want);

    // RSA with CRLF line ends, text before it and 76-column lines.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let wide: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let sloppy = format!(
        "Subject: srv\r\n-----BEGIN RSA PRIVATE KEY-----\r\n{}\r\n-----END RSA PRIVATE KEY-----\r\n",
        wide.join("\r\n")
    );
    assert_eq!(PrivateKey::from_pem(&sloppy).unwrap().fingerprint(), want);

    // EC, PKCS#8 (the curve in the AlgorithmIdentifier, SEC1 without parameters inside).
    for (name, curve) in [
        ("srv_ec256.pem", NamedCurve::Prime256v1),
        ("c1_ec384.pem", NamedCurve::Secp384r1),
    ] {
        let pem = std::fs::read_to_string(vectors().join("keys").join(name)).unwrap();
        let (_, der) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        let sec1 = <sec1::EcPrivateKey<'_> as der::Decode<'_>>::from_der(&der).unwrap();
        let inner = sec1::EcPrivateKey {
            parameters: None,
            ..sec1
        }
        .to_der()
        .unwrap();
        let oid = curve.oid();
        let info = pkcs8::PrivateKeyInfo::new(
            pkcs8::AlgorithmIdentifierRef {
                oid: der::asn1::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
                parameters: Some((&oid).into()),
            },
            &inner,
        );
        let p8 = pem_rfc7468::encode_string(
            "PRIVATE KEY",
            pem_rfc7468::LineEnding::LF,
            &info.to_der().unwrap(),
        )
        .unwrap();
        let k = PrivateKey::from_pem(&p8).unwrap();
        assert_eq!(k.fingerprint(), key(name).fingerprint(), "{name}");
        assert!(matches!(&k, PrivateKey::Ec(e) if e.curve() == curve));
    }

    // An EC PARAMETERS block first (openssl ecparam -genkey), then the key.
    let ec = std::fs::read_to_string(vectors().join("keys/srv_ec256.pem")).unwrap();
    let with_params = format!(
        "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{ec}"
    );
    assert_eq!(
        PrivateKey::from_pem(&with_params).unwrap().fingerprint(),
        key("srv_ec256.pem").fingerprint()
    );

    // What is not a private key.
    assert!(matches!(
        PrivateKey::from_pem("hello"),
        Err(KeyError::NoPrivateKey)
    ));
    assert!(matches!(
        PrivateKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
        ),
        Err(KeyError::Encrypted)
    ));
    assert!(PrivateKey::from_pem(
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"
    )
    .is_err());
}

#[test]
fn ec_keys_give_proto_core_keys_and_the_blob_they_sign_with() {
    for name in ["srv_ec256.pem", "srv_ec384.pem"] {
        let PrivateKey::Ec(k) = key(name) else {
            panic!("{name}: not EC")
        };
        let core = k.key().unwrap();
        let mut blob = [0u8; 128];
        let n = core.public_key().emit_blob(&mut blob).unwrap();
        assert_eq!(blob[..n], k.blob()[..]);
    }
    // Compatibility (digest §5.2): same RSA modulus length, or same curve.
    let c1 = key("c1_rsa1024.pem");
    assert!(c1.is_compatible_with(&key("srv_rsa1024.pem").blob()));
    assert!(!c1.is_compatible_with(&key("px2_rsa512.pem").blob()));
    assert!(!c1.is_compatible_with(&key("srv_ec256.pem").blob()));
    let e = key("c1_ec256.pem");
    assert!(e.is_compatible_with(&key("srv_ec256.pem").blob()));
    assert!(!e.is_compatible_with(&key("srv_ec384.pem").blob()));
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uftp-rs-keys-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn new_key_files_are_private_and_never_replace_a_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("save");
    for (spec, file) in [
        ("rsa:512", "r.pem"),
        ("ec:prime256v1", "e256.pem"),
        ("ec:secp384r1", "e384.pem"),
    ] {
        let path = dir.join(file);
        let k = PrivateKey::generate(spec.parse::<KeySpec>().unwrap()).unwrap();
        k.save_new(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        let back = PrivateKey::load(&path).unwrap();
        assert_eq!(back.fingerprint(), k.fingerprint());
        assert_eq!(back.description(), k.description());
        let first = std::fs::read(&path).unwrap();
        let other = PrivateKey::generate(spec.parse().unwrap()).unwrap();
        assert!(matches!(other.save_new(&path), Err(KeyError::Exists(p)) if p == path));
        assert_eq!(std::fs::read(&path).unwrap(), first, "{file} was rewritten");
    }
    assert!(matches!(
        PrivateKey::generate(KeySpec::Ec(NamedCurve::Secp521r1)),
        Err(KeyError::UnsupportedCurve(NamedCurve::Secp521r1))
    ));
    assert!(matches!(
        PrivateKey::load(Path::new("/nonexistent/key.pem")),
        Err(KeyError::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
