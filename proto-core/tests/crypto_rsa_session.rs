//! The crypto layer against a real uftp 4.10.2 session: `tests/vectors/pcap/enc-cbc-rsa.pcap`
//! (`-Y aes256-cbc -h sha256 -e rsa -c`, RSA-1024 keys; see tests/vectors/README.md).
//!
//! Only the RSA decryption of the premaster happens outside proto-core (the std-only `rsa`
//! crate, with the committed server key); every derivation, the KEYINFO unwrap, every HMAC and
//! every decryption goes through `proto_core::crypto`, and sealing the decrypted bodies again
//! must give back the captured datagrams byte for byte.

use std::collections::BTreeMap;
use std::path::PathBuf;

use proto_core::crypto::{
    keyinfo_ack_verify_data, master_secret, unwrap_group_master, wrap_group_master, Envelope,
    Error, SessionKeys, VerifyData,
};
use proto_core::wire::{HashType, HeaderPacket, HeaderRepr, KeyType};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Oaep, RsaPrivateKey};

const CLIENTS: [u32; 2] = [0x0a63_0002, 0x0a63_0003];

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// UDP payloads of a committed pcap, keyed by 1-based packet number (as in Wireshark).
fn udp_payloads(name: &str) -> BTreeMap<usize, Vec<u8>> {
    testnet::pcap::read(&vectors().join("pcap").join(name))
        .unwrap()
        .into_iter()
        .map(|d| (d.number, d.payload))
        .collect()
}

fn find(pkts: &BTreeMap<usize, Vec<u8>>, func: u8, src: Option<u32>) -> &Vec<u8> {
    pkts.values()
        .find(|p| p[1] == func && src.is_none_or(|s| be32(p, 4) == s))
        .unwrap_or_else(|| panic!("no packet of type {func} from {src:x?}"))
}

/// What one client and the server both know once the handshake is done.
struct Session {
    hash: HashType,
    keytype: KeyType,
    group_master: [u8; 48],
    group: SessionKeys,
    verified_acks: usize,
}

fn replay(pkts: &BTreeMap<usize, Vec<u8>>, client_id: u32) -> Session {
    let ann = find(pkts, 1, None);
    let b = &ann[16..];
    let addr_len = if b[2] & 0x04 != 0 { 16 } else { 4 };
    let private_addr = &b[16 + addr_len..16 + 2 * addr_len];
    let ext = &b[16 + 2 * addr_len..];
    assert_eq!(ext[0], 1, "EXT_ENC_INFO");
    let client_auth = ext[2] & 0x01 != 0;
    assert!(client_auth, "the capture was made with -c");
    let keytype = KeyType::from(ext[4]);
    let hash = HashType::from(ext[5]);
    assert_eq!((keytype, hash), (KeyType::Aes256Cbc, HashType::Sha256));
    let rand1: [u8; 32] = ext[12..44].try_into().unwrap();
    let group_id = be32(ann, 8);

    let reg = &find(pkts, 2, Some(client_id))[16..];
    let rand2: [u8; 32] = reg[12..44].try_into().unwrap();
    let pem = std::fs::read_to_string(vectors().join("keys/srv_rsa1024.pem")).unwrap();
    let server_key = RsaPrivateKey::from_pkcs1_pem(&pem).unwrap();
    let premaster = server_key
        .decrypt(Oaep::new::<sha1::Sha1>(), &reg[44..44 + be16(reg, 2)])
        .unwrap();
    assert_eq!(premaster.len(), 48);

    let master = master_secret(hash, &premaster, &rand1, &rand2).unwrap();
    let client = SessionKeys::client(keytype, hash, &master, &rand1, &rand2).unwrap();
    assert_eq!((client.key().len(), client.hmac_key().len()), (32, 32));

    let ki = pkts
        .values()
        .find(|p| p[1] == 5 && p[28..].chunks(52).any(|e| be32(e, 0) == client_id))
        .expect("a KEYINFO entry for the client");
    let (src_id, iv_ctr) = (
        be32(ki, 4),
        u64::from_be_bytes(ki[20..28].try_into().unwrap()),
    );
    let entry: [u8; 48] = ki[28..]
        .chunks(52)
        .find(|e| be32(e, 0) == client_id)
        .unwrap()[4..52]
        .try_into()
        .unwrap();
    let group_master = unwrap_group_master(&client, ki[0], src_id, iv_ctr, &entry).unwrap();
    assert_eq!(group_master[0], 0x40);
    // The server side of the same step reproduces the captured entry.
    assert_eq!(
        wrap_group_master(&client, src_id, iv_ctr, &group_master).unwrap(),
        entry
    );
    // Any other counter or sender does not give back this group master.
    assert_ne!(
        unwrap_group_master(&client, ki[0], src_id, iv_ctr + 1, &entry),
        Ok(group_master)
    );

    let group = SessionKeys::group(keytype, hash, &group_master, &rand1).unwrap();
    let env = Envelope::new(&group).unwrap();

    // KEYINFO_ACK (§5.5), with the CLIENT_KEY blob since -c was given.
    let ck = &find(pkts, 3, Some(client_id))[16..];
    let blob = &ck[8..8 + be16(ck, 4)];
    let vd = VerifyData {
        group_id,
        private_addr,
        rand1: &rand1,
        rand2: &rand2,
        premaster: &premaster,
    };
    let want = keyinfo_ack_verify_data(hash, &group_master, &vd, Some(blob)).unwrap();
    let without_blob = keyinfo_ack_verify_data(hash, &group_master, &vd, None).unwrap();
    assert_ne!(want, without_blob);
    let mut verified_acks = 0;
    for p in pkts
        .values()
        .filter(|p| p[1] == 18 && be32(p, 4) == client_id)
    {
        let mut buf = p.clone();
        let inner = env.open(&mut buf).unwrap();
        if buf[inner.start] == 6 {
            assert_eq!(
                buf[inner.start + 4..inner.end],
                want,
                "KEYINFO_ACK verify data"
            );
            verified_acks += 1;
        }
    }
    Session {
        hash,
        keytype,
        group_master,
        group,
        verified_acks,
    }
}

#[test]
fn captured_rsa_session_opens_and_reseals_byte_for_byte() {
    let pkts = udp_payloads("enc-cbc-rsa.pcap");
    let sessions: Vec<Session> = CLIENTS.iter().map(|&c| replay(&pkts, c)).collect();
    // Both clients unwrap the same group master, and each one's KEYINFO_ACK verified.
    assert_eq!(sessions[0].group_master, sessions[1].group_master);
    assert!(sessions.iter().all(|s| s.verified_acks >= 1));
    let s = &sessions[0];
    assert_eq!((s.hash, s.keytype), (HashType::Sha256, KeyType::Aes256Cbc));
    let env = Envelope::new(&s.group).unwrap();
    assert_eq!(env.sig_len(), 32);

    let mut opened = BTreeMap::new();
    for (&number, p) in pkts.iter().filter(|(_, p)| p[1] == 18) {
        let mut buf = p.clone();
        let inner = env
            .open(&mut buf)
            .unwrap_or_else(|e| panic!("packet #{number}: {e}"));
        let body = buf[inner].to_vec();

        // Sealing the body again with the captured header and counter gives the same datagram.
        let header = HeaderRepr::parse(&HeaderPacket::new_checked(&p[..]).unwrap()).unwrap();
        let iv_ctr = u64::from_be_bytes(p[16..24].try_into().unwrap());
        let mut out = vec![0u8; env.sealed_len(body.len())];
        out[env.inner_offset()..][..body.len()].copy_from_slice(&body);
        let n = env.seal(&mut out, &header, body.len(), iv_ctr).unwrap();
        assert_eq!(
            out[..n],
            p[..],
            "packet #{number}: resealed datagram differs"
        );

        // A flipped bit anywhere fails.
        let mut bad = p.clone();
        bad[number % p.len()] ^= 0x10;
        assert!(
            env.open(&mut bad).is_err(),
            "packet #{number}: tampered copy opened"
        );
        opened.insert(number, body);
    }
    assert!(
        opened.len() >= 10,
        "only {} ENCRYPTED packets",
        opened.len()
    );

    // Every committed inner-*.bin is the body of its packet.
    let manifest = std::fs::read_to_string(vectors().join("messages/MANIFEST.tsv")).unwrap();
    let mut compared = 0;
    for line in manifest.lines().filter(|l| l.starts_with("inner-")) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols[1], "enc-cbc-rsa");
        let number: usize = cols[2].parse().unwrap();
        let want = std::fs::read(vectors().join("messages").join(cols[0])).unwrap();
        assert_eq!(opened[&number], want, "{}", cols[0]);
        compared += 1;
    }
    assert_eq!(compared, 10);

    // The committed ENCRYPTED sample is packet #8 and opens to inner-keyinfo_ack.bin.
    let mut sample = std::fs::read(vectors().join("messages/encrypted-cbc-hmac.bin")).unwrap();
    assert_eq!(sample, pkts[&8]);
    let inner = env.open(&mut sample).unwrap();
    let want = std::fs::read(vectors().join("messages/inner-keyinfo_ack.bin")).unwrap();
    assert_eq!(sample[inner], want[..]);

    // The same packet under a session expecting another sig_len is refused before any MAC.
    let k = SessionKeys::from_parts(
        KeyType::Aes256Cbc,
        HashType::Sha1,
        s.group.key(),
        *s.group.salt(),
        &s.group.hmac_key()[..20],
    )
    .unwrap();
    let mut again = pkts[&8].clone();
    assert_eq!(
        Envelope::new(&k).unwrap().open(&mut again),
        Err(Error::BadSigLen {
            expected: 20,
            found: 32
        })
    );
}
