//! Golden vectors captured from uftp 4.10.2 (`tests/vectors/messages`, made by
//! `cargo xtask vectors`): every one parses to the fields its scenario implies and re-emits
//! byte-identical, and together they cover every message type of the protocol.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use proto_core::wire::{
    CcType, CompleteStatus, Curve, FileType, Func, HashType, HbResult, KeyExchange, KeyType,
    Message, Rate, Repr, SigType, ANNOUNCE_FLAG_SYNC_MODE, ANNOUNCE_FLAG_SYNC_PREVIEW,
    FILEINFO_ACK_FLAG_PARTIAL,
};

const SERVER: u32 = 0x0a63_0001;
const C1: u32 = 0x0a63_0002;
const C2: u32 = 0x0a63_0003;

struct Vector {
    name: String,
    bytes: Vec<u8>,
    src_id: u32,
}

fn vectors() -> Vec<Vector> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/messages");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut out = Vec::new();
    for line in manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let name = cols[0].to_string();
        let bytes = std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let src_id = u32::from_str_radix(cols[5].trim_start_matches("0x"), 16).unwrap();
        assert_eq!(
            bytes.len().to_string(),
            cols[6],
            "{name}: length in manifest"
        );
        out.push(Vector {
            name,
            bytes,
            src_id,
        });
    }
    assert!(out.len() >= 60, "only {} vectors", out.len());
    out
}

fn parse(v: &Vector) -> Message<'_> {
    if v.name.starts_with("inner-") {
        let msg = Message::parse_inner(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let mut buf = vec![0u8; msg.buffer_len()];
        assert_eq!(msg.emit(&mut buf), Ok(v.bytes.len()), "{}", v.name);
        assert_eq!(buf, v.bytes, "{}: re-emit differs", v.name);
        msg
    } else {
        let repr = Repr::parse(&v.bytes).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(repr.header.src_id, v.src_id, "{}: src_id", v.name);
        let mut buf = vec![0u8; repr.buffer_len()];
        assert_eq!(repr.emit(&mut buf), Ok(v.bytes.len()), "{}", v.name);
        assert_eq!(buf, v.bytes, "{}: re-emit differs", v.name);
        // A buffer one byte short is an error, not a panic.
        let mut short = vec![0u8; repr.buffer_len() - 1];
        assert!(repr.emit(&mut short).is_err());
        repr.message
    }
}

#[test]
fn every_vector_round_trips_byte_identical() {
    let mut seen = BTreeSet::new();
    for v in vectors() {
        let msg = parse(&v);
        seen.insert(msg.func());
    }
    let missing: Vec<&str> = (1u8..=21)
        .filter(|f| !seen.contains(f))
        .map(|f| Func::from(f).name())
        .collect();
    assert!(missing.is_empty(), "no vector for {missing:?}");
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn vectors_carry_the_fields_of_their_scenarios() {
    let mut checked = 0;
    for v in vectors() {
        let name = v.name.trim_end_matches(".bin");
        let msg = parse(&v);
        if matches!(
            msg,
            Message::Announce(_) | Message::FileInfo(_) | Message::FileSeg(_)
        ) {
            assert_eq!(
                v.src_id, SERVER,
                "{name}: server packets come from the server"
            );
        }
        match (name, msg) {
            (
                "announce-open" | "announce-tfmcc" | "announce-sync" | "announce-sync-preview",
                Message::Announce(a),
            ) => {
                assert_eq!(a.blocksize, 1000);
                assert_eq!(a.robust, 20);
                assert_eq!(a.public_addr, IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1)));
                assert!(a.enc_info.is_none() && a.client_ids.is_empty());
                let want_cc = if name == "announce-tfmcc" {
                    CcType::Tfmcc
                } else {
                    CcType::None
                };
                assert_eq!(a.cc_type, want_cc);
                let want_flags = match name {
                    "announce-sync" => ANNOUNCE_FLAG_SYNC_MODE,
                    "announce-sync-preview" => ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW,
                    _ => 0,
                };
                assert_eq!(a.flags, want_flags, "{name}");
            }
            ("announce-closed", Message::Announce(a)) => {
                assert_eq!(a.client_ids.iter().collect::<Vec<_>>(), [C1, C2]);
            }
            ("announce-ipv6", Message::Announce(a)) => {
                assert_eq!(a.public_addr, "ff15::4:1".parse::<IpAddr>().unwrap());
                assert_eq!(a.private_addr, "ff15::5:1".parse::<IpAddr>().unwrap());
            }
            ("announce-enc-ecdh-p256" | "announce-enc-ecdh-p384", Message::Announce(a)) => {
                let e = a.enc_info.expect("EXT_ENC_INFO");
                assert_eq!(e.keyextype, KeyExchange::EcdhEcdsa);
                assert_eq!(e.sigtype, SigType::AuthEnc);
                let (kt, ht, curve, blob, sig) = if name.ends_with("p256") {
                    (
                        KeyType::Aes256Gcm,
                        HashType::Sha256,
                        Curve::Secp256r1,
                        68,
                        68,
                    )
                } else {
                    (
                        KeyType::Aes128Ccm,
                        HashType::Sha384,
                        Curve::Secp384r1,
                        100,
                        100,
                    )
                };
                assert_eq!((e.keytype, e.hashtype), (kt, ht));
                assert_eq!(e.key_blob.len(), blob);
                assert_eq!(e.dh_blob.len(), blob);
                assert_eq!(e.signature.len(), sig);
                assert_eq!(Curve::from(e.key_blob[1]), curve);
                assert_eq!(e.key_blob[0], 2, "EC blob");
            }
            ("announce-enc-rsa", Message::Announce(a)) => {
                let e = a.enc_info.expect("EXT_ENC_INFO");
                assert_eq!(e.keyextype, KeyExchange::Rsa);
                assert_eq!(e.keytype, KeyType::Aes256Cbc);
                assert_eq!(e.hashtype, HashType::Sha256);
                assert_eq!(e.sigtype, SigType::Hmac);
                assert_eq!(e.flags & 1, 1, "client auth (-c)");
                assert_eq!(e.key_blob.len(), 136, "RSA-1024 blob");
                assert!(e.dh_blob.is_empty() && e.signature.is_empty());
            }
            ("register-plain" | "register-ipv6", Message::Register(r)) => {
                assert_eq!(r.rand2, [0; 32]);
                assert!(r.keyinfo.is_empty() && r.client_ids.is_empty());
            }
            ("register-ecdh", Message::Register(r)) => assert_eq!(r.keyinfo.len(), 68),
            ("register-ecdh-p384", Message::Register(r)) => assert_eq!(r.keyinfo.len(), 100),
            ("register-rsa", Message::Register(r)) => assert_eq!(r.keyinfo.len(), 128),
            ("register-client-proxy", Message::Register(r)) => {
                assert_eq!(r.client_ids.iter().collect::<Vec<_>>(), [0x0a63_0005]);
            }
            ("client_key-rsa", Message::ClientKey(k)) => {
                assert_eq!(k.key_blob.len(), 136);
                assert_eq!(k.signature.len(), 128);
            }
            ("reg_conf", Message::RegConf(r)) => {
                assert!(!r.client_ids.is_empty());
                assert!(r.client_ids.iter().all(|id| id == C1 || id == C2));
            }
            ("keyinfo" | "keyinfo-ecdh-p256" | "keyinfo-ecdh-p384", Message::KeyInfo(k)) => {
                assert!(k.iv_ctr >= 1);
                let ids: BTreeSet<u32> = k.entries.iter().map(|e| e.client_id).collect();
                assert!(ids.is_subset(&BTreeSet::from([C1, C2])) && !ids.is_empty());
            }
            ("fileinfo-file", Message::FileInfo(f)) => {
                assert_eq!(
                    (f.ftype, text(f.name), f.size),
                    (FileType::Regular, "hello.txt", f.size)
                );
                assert!(f.size > 0 && f.link.is_empty());
            }
            ("fileinfo-empty-file", Message::FileInfo(f)) => {
                assert_eq!((f.ftype, f.size), (FileType::Regular, 0));
                assert!(text(f.name).ends_with("empty.dat"));
            }
            ("fileinfo-dir", Message::FileInfo(f)) => {
                assert_eq!(f.ftype, FileType::Directory);
                assert!(text(f.name).ends_with("emptydir"));
            }
            ("fileinfo-link", Message::FileInfo(f)) => {
                assert_eq!((f.ftype, text(f.link)), (FileType::Symlink, "a.txt"));
                assert!(text(f.name).ends_with("link"));
            }
            ("fileinfo-delete", Message::FileInfo(f)) => {
                assert_eq!((f.ftype, text(f.name)), (FileType::Delete, "old.txt"));
            }
            ("fileinfo-freespace", Message::FileInfo(f)) => {
                assert_eq!(
                    (f.ftype, text(f.name), f.size),
                    (FileType::FreeSpace, ".", 0)
                );
            }
            ("fileinfo-restart", Message::FileInfo(f)) => {
                assert_eq!((text(f.name), f.size), ("restart.bin", 30000));
            }
            ("fileinfo_ack", Message::FileInfoAck(a)) => assert_eq!(a.flags, 0),
            ("fileinfo_ack-partial", Message::FileInfoAck(a)) => {
                assert_eq!(a.flags, FILEINFO_ACK_FLAG_PARTIAL)
            }
            ("fileseg", Message::FileSeg(s)) => {
                assert_eq!(s.data.len(), 1000);
                assert!(s.tfmcc.is_none());
            }
            ("fileseg-last", Message::FileSeg(s)) => assert!(s.data.len() < 1000),
            ("fileseg-tfmcc", Message::FileSeg(s)) => {
                assert_eq!(s.data.len(), 1000);
                assert!(s.tfmcc.is_some());
            }
            ("done-file0" | "inner-done-file0", Message::Done(d)) => {
                assert_eq!((d.file_id, d.section), (0, 0))
            }
            ("done", Message::Done(d)) => assert_ne!(d.file_id, 0),
            ("status", Message::Status(s)) => {
                assert!(s.tfmcc.is_none());
                assert!(
                    s.nak_indexes().count() > 0,
                    "a STATUS from a lossy client has NAKs"
                );
            }
            ("status-tfmcc", Message::Status(s)) => {
                assert_eq!(s.tfmcc.expect("TFMCC ack").client_id, C1);
            }
            ("complete" | "inner-complete", Message::Complete(c)) => {
                assert_ne!(c.file_id, 0);
                assert_eq!(c.status, CompleteStatus::Normal);
            }
            ("complete-file0" | "inner-complete-file0", Message::Complete(c)) => {
                assert_eq!(c.file_id, 0)
            }
            ("complete-skipped", Message::Complete(c)) => {
                assert_eq!(c.status, CompleteStatus::Skipped)
            }
            ("complete-overwrite", Message::Complete(c)) => {
                assert_eq!(c.status, CompleteStatus::Overwrite)
            }
            ("complete-freespace", Message::Complete(c)) => {
                assert!(c.freespace.expect("EXT_FREESPACE_INFO").freespace > 0)
            }
            ("complete-proxy", Message::Complete(c)) => {
                assert_eq!(c.client_ids.iter().collect::<Vec<_>>(), [0x0a63_0005]);
            }
            ("done_conf" | "inner-done_conf", Message::DoneConf(d)) => {
                assert!(!d.client_ids.is_empty());
            }
            ("hb_req-plain", Message::HbReq(h)) => {
                assert_eq!(h.nonce, 0);
                assert!(h.key_blob.is_empty() && h.signature.is_empty());
            }
            ("hb_req-auth", Message::HbReq(h)) => {
                assert_ne!(h.nonce, 0);
                assert_eq!(h.key_blob.len(), 72, "RSA-512 blob");
                assert_eq!(h.signature.len(), 64);
            }
            ("hb_resp-ok", Message::HbResp(h)) => assert_eq!(h.result, HbResult::Ok),
            ("hb_resp-challenge", Message::HbResp(h)) => {
                assert_eq!(h.result, HbResult::Challenge);
                assert_ne!(h.nonce, 0);
            }
            ("key_req", Message::KeyReq(_)) => {}
            ("proxy_key", Message::ProxyKey(p)) => {
                assert!(!p.key_blob.is_empty() && !p.signature.is_empty());
            }
            ("encrypted-gcm" | "encrypted-ccm", Message::Encrypted(e)) => {
                assert!(e.signature.is_empty(), "AEAD has no separate signature");
                assert!(e.payload.len() > 16 && e.iv_ctr >= 1);
            }
            ("encrypted-cbc-hmac", Message::Encrypted(e)) => {
                assert_eq!(e.signature.len(), 32, "HMAC-SHA-256");
                assert_eq!(e.payload.len() % 16, 0, "CBC");
            }
            ("abort", Message::Abort(a)) => {
                assert_eq!(text(a.reason), "No unencrypted transfers allowed");
            }
            ("abort-timeout", Message::Abort(a)) => assert!(text(a.reason).contains("timed out")),
            ("cong_ctrl", Message::CongCtrl(c)) => {
                assert_eq!(c.cc_rate, Rate::UNLIMITED);
                assert!(!c.items.is_empty());
            }
            ("cc_ack", Message::CcAck(c)) => assert_eq!(c.tfmcc.client_id, C1),
            ("inner-keyinfo_ack", Message::KeyInfoAck(k)) => assert_ne!(k.verify_data, [0; 12]),
            ("inner-fileinfo", Message::FileInfo(f)) => assert_eq!(text(f.name), "hello.txt"),
            ("inner-fileinfo_ack", Message::FileInfoAck(a)) => assert_eq!(a.flags, 0),
            ("inner-fileseg", Message::FileSeg(s)) => assert_eq!(s.data.len(), 1000),
            ("inner-fileseg-last" | "inner-done", _) => {}
            (_, msg) => {
                // Vectors without scenario-specific expectations still carry the sender's
                // identity and a message of the type their name says.
                let kind = name.split('-').next().unwrap().to_uppercase();
                assert_eq!(msg.name(), kind, "{name}");
                checked -= 1;
            }
        }
        checked += 1;
    }
    assert!(checked >= 55, "only {checked} vectors had field checks");
}
