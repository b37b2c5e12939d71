//! Encrypted sessions against a hand-rolled client built from the crypto module: it checks the
//! ANNOUNCE signature, does the key exchange, CLIENT_KEY and KEYINFO_ACK, opens what the server
//! seals and seals its answers (those of the plain [`Model`] it wraps).

use super::*;
use crate::crypto::{
    announce_signed_parts, keyinfo_ack_verify_data, master_secret, unwrap_group_master,
    verify_announce, CurveId, Drbg, EcPrivateKey, EcPublicKey, Envelope, KeyBlob, SessionKeys,
    VerifyData,
};
use crate::session::security::{OwnKey, ReplayWindow};
use crate::session::test_rsa::TestRsa;
use crate::wire::{
    HashType, KeyExchange, KeyInfoAckRepr, KeyType, SigType, ENC_FLAG_CLIENT_AUTH, VERSION,
};

// ------------------------------------------------------------------ keys

/// An EC key from a fixed scalar (well below either group order).
fn ec_key(curve: CurveId, tag: u8) -> EcPrivateKey {
    let mut scalar = vec![tag; curve.field_len().unwrap()];
    scalar[0] = 0x3c;
    EcPrivateKey::from_scalar(curve, &scalar).unwrap()
}

fn blob_of(key: &EcPrivateKey) -> StdVec<u8> {
    let public = key.public_key();
    let mut blob = vec![0; public.blob_len()];
    public.emit_blob(&mut blob).unwrap();
    blob
}

fn security(
    keytype: KeyType,
    hashtype: HashType,
    keyex: KeyExchange,
    curve: CurveId,
    key: OwnKey,
) -> SenderSecurity {
    SenderSecurity {
        keytype,
        hashtype,
        sigtype: SigType::Hmac,
        keyex,
        ecdh_curve: curve,
        client_auth: false,
        key,
        seed: [0x5e; 32],
    }
}

// ------------------------------------------------------------------ the client

/// What the client holds from its REGISTER on.
struct Handshake {
    keytype: KeyType,
    hashtype: HashType,
    client_auth: bool,
    rand1: [u8; 32],
    rand2: [u8; 32],
    premaster: StdVec<u8>,
    client: SessionKeys,
    private_addr: StdVec<u8>,
    blob: StdVec<u8>,
    /// REGISTER and CLIENT_KEY as sent, for retries.
    register: StdVec<u8>,
    client_key: Option<StdVec<u8>>,
}

/// A client of an encrypted session, wrapping the plain [`Model`] for everything after the
/// handshake.
struct Secure {
    inner: Model,
    /// Its long-term key (CLIENT_KEY).
    key: EcPrivateKey,
    /// Signs CLIENT_KEY with this key instead (a client that does not hold its key).
    forge_with: Option<EcPrivateKey>,
    rsa: Option<TestRsa>,
    drbg: Drbg,
    hs: Option<Handshake>,
    group: Option<Envelope>,
    ctr: u64,
    window: ReplayWindow,
    /// Sends CLIENT_KEY before REGISTER the first time.
    client_key_first: bool,
    /// Sends a wrong KEYINFO_ACK verify data.
    bad_ack: bool,
    /// Sends each sealed STATUS twice (a replay).
    status_twice: bool,
    /// Sends a copy of each sealed STATUS with a flipped bit first.
    tamper_status: bool,
    /// Sends each STATUS in the clear too.
    plain_status_too: bool,
    /// The reason of an ABORT addressed to it.
    aborted: Option<StdVec<u8>>,
    /// Message types the server sent it in the clear.
    plain: StdVec<u8>,
    statuses: usize,
    /// When it sends REGISTER (and CLIENT_KEY) again if no KEYINFO came.
    retry_at: Option<Instant>,
    /// REGISTERs sent.
    registers: usize,
}

/// How long the client waits for KEYINFO before registering again (uftpd: 4 GRTT).
const RETRY: Duration = Duration::from_millis(100);

impl Secure {
    fn new(id: u32, key: EcPrivateKey) -> Self {
        Secure {
            inner: Model::new(id),
            key,
            forge_with: None,
            rsa: None,
            drbg: Drbg::new(&[id.to_be_bytes(), [7; 4]].concat()),
            hs: None,
            group: None,
            ctr: 0,
            window: ReplayWindow::new(),
            client_key_first: false,
            bad_ack: false,
            status_twice: false,
            tamper_status: false,
            plain_status_too: false,
            aborted: None,
            plain: StdVec::new(),
            statuses: 0,
            retry_at: None,
            registers: 0,
        }
    }

    fn seal(&mut self, plain: &[u8]) -> StdVec<u8> {
        let env = self.group.as_ref().expect("group keys");
        let header = HeaderRepr::parse(&HeaderPacket::new_checked(plain).unwrap()).unwrap();
        let inner = &plain[HEADER_LEN..];
        let mut buf = vec![0u8; env.sealed_len(inner.len())];
        buf[env.inner_offset()..][..inner.len()].copy_from_slice(inner);
        self.ctr += 1;
        let n = env.seal(&mut buf, &header, inner.len(), self.ctr).unwrap();
        buf.truncate(n);
        buf
    }

    fn on_announce(&mut self, bytes: &[u8]) -> StdVec<StdVec<u8>> {
        let Message::Announce(a) = Repr::parse(bytes).unwrap().message else {
            unreachable!()
        };
        let id = self.inner.id;
        if self.group.is_some() || !(a.client_ids.is_empty() || a.client_ids.contains(id)) {
            return StdVec::new();
        }
        if self.hs.is_some() {
            return StdVec::new();
        }
        let enc = a.enc_info.expect("an encrypted ANNOUNCE");
        let server = KeyBlob::parse(enc.key_blob).unwrap();
        match enc.keyextype {
            KeyExchange::EcdhEcdsa => {
                let key = EcPublicKey::from_blob(&server.ec().unwrap()).unwrap();
                verify_announce(&key, bytes).expect("ANNOUNCE signature");
            }
            KeyExchange::EcdhRsa => {
                let (hash, parts, sig) = announce_signed_parts(bytes).unwrap();
                let rsa = self.rsa.as_ref().expect("RSA");
                rsa.verify(&server.rsa().unwrap(), hash, &parts, sig)
                    .expect("ANNOUNCE RSA signature");
            }
            _ => assert!(enc.signature.is_empty()),
        }
        let rand2: [u8; 32] = self.drbg.bytes();
        let (premaster, keyinfo) = if enc.keyextype == KeyExchange::Rsa {
            let pm: [u8; 48] = self.drbg.bytes();
            let mut ct = vec![0u8; 512];
            let rsa = self.rsa.as_mut().expect("RSA");
            let n = rsa
                .encrypt_premaster(&server.rsa().unwrap(), &pm, &mut ct)
                .unwrap();
            ct.truncate(n);
            (pm.to_vec(), ct)
        } else {
            let dh = EcPublicKey::from_blob(&KeyBlob::parse(enc.dh_blob).unwrap().ec().unwrap())
                .unwrap();
            let curve = dh.curve();
            let eph = loop {
                let mut scalar = vec![0u8; curve.field_len().unwrap()];
                self.drbg.fill(&mut scalar);
                if let Ok(k) = EcPrivateKey::from_scalar(curve, &scalar) {
                    break k;
                }
            };
            (eph.premaster(&dh).unwrap().to_vec(), blob_of(&eph))
        };
        let (kt, ht) = (enc.keytype, enc.hashtype);
        let master = master_secret(ht, &premaster, &enc.rand1, &rand2).unwrap();
        let client = SessionKeys::client(kt, ht, &master, &enc.rand1, &rand2).unwrap();
        let private_addr = match a.private_addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let register = from_client(
            id,
            Message::Register(RegisterRepr {
                timestamp: a.timestamp,
                rand2,
                keyinfo: &keyinfo,
                client_ids: IdList::EMPTY,
            }),
        );
        let client_auth = enc.flags & ENC_FLAG_CLIENT_AUTH != 0;
        let blob = blob_of(&self.key);
        let client_key = client_auth.then(|| {
            let vd = VerifyData {
                group_id: GROUP,
                private_addr: &private_addr,
                rand1: &enc.rand1,
                rand2: &rand2,
                premaster: &premaster,
            };
            let mut data = vec![0u8; vd.len()];
            vd.write(&mut data).unwrap();
            let mut sig = vec![0u8; 128];
            let signer = self.forge_with.as_ref().unwrap_or(&self.key);
            let n = signer.sign(ht, &[&data], &mut sig).unwrap();
            sig.truncate(n);
            from_client(
                id,
                Message::ClientKey(ClientKeyRepr {
                    key_blob: &blob,
                    signature: &sig,
                }),
            )
        });
        self.retry_at = Some(Instant::from_micros(a.timestamp.as_micros()) + RETRY);
        self.registers += 1;
        let mut out = vec![register.clone()];
        if let Some(ck) = &client_key {
            if core::mem::take(&mut self.client_key_first) {
                out.insert(0, ck.clone());
            } else {
                out.push(ck.clone());
            }
        }
        self.hs = Some(Handshake {
            keytype: kt,
            hashtype: ht,
            client_auth,
            rand1: enc.rand1,
            rand2,
            premaster,
            client,
            private_addr,
            blob,
            register,
            client_key,
        });
        self.inner.registered = true;
        out
    }

    fn on_keyinfo(&mut self, bytes: &[u8]) -> StdVec<StdVec<u8>> {
        let repr = Repr::parse(bytes).unwrap();
        let Message::KeyInfo(k) = repr.message else {
            unreachable!()
        };
        let Some(hs) = &self.hs else {
            return StdVec::new();
        };
        let Some(entry) = k.entries.iter().find(|e| e.client_id == self.inner.id) else {
            return StdVec::new();
        };
        let gm = unwrap_group_master(
            &hs.client,
            VERSION,
            repr.header.src_id,
            k.iv_ctr,
            &entry.group_master,
        )
        .unwrap();
        let group = SessionKeys::group(hs.keytype, hs.hashtype, &gm, &hs.rand1).unwrap();
        let vd = VerifyData {
            group_id: GROUP,
            private_addr: &hs.private_addr,
            rand1: &hs.rand1,
            rand2: &hs.rand2,
            premaster: &hs.premaster,
        };
        let blob = hs.client_auth.then_some(&hs.blob[..]);
        let mut verify_data = keyinfo_ack_verify_data(hs.hashtype, &gm, &vd, blob).unwrap();
        if self.bad_ack {
            verify_data[0] ^= 1;
        }
        self.group = Some(Envelope::new(&group).unwrap());
        let ack = from_client(
            self.inner.id,
            Message::KeyInfoAck(KeyInfoAckRepr { verify_data }),
        );
        vec![self.seal(&ack)]
    }

    fn on_encrypted(&mut self, bytes: &[u8], data: &[u8]) -> StdVec<StdVec<u8>> {
        // Without the group keys (refused), a client can only drop them.
        let Some(env) = self.group.as_ref() else {
            return StdVec::new();
        };
        let ctr = u64::from_be_bytes(bytes[16..24].try_into().unwrap());
        assert!(
            self.window.is_fresh(ctr),
            "the server repeated counter {ctr}"
        );
        let mut buf = bytes.to_vec();
        let range = env
            .open(&mut buf)
            .expect("the server's ENCRYPTED authenticates");
        self.window.accept(ctr);
        // The inner message as a plain datagram for the model.
        let mut plain = bytes[..HEADER_LEN].to_vec();
        plain[1] = buf[range.start];
        plain.extend_from_slice(&buf[range]);
        let mut out = StdVec::new();
        for reply in self.inner.on_packet(&plain, data) {
            let sealed = self.seal(&reply);
            if reply[1] == u8::from(Func::Status) {
                self.statuses += 1;
                if self.plain_status_too {
                    out.push(reply.clone());
                }
                if self.tamper_status {
                    let mut bad = sealed.clone();
                    *bad.last_mut().unwrap() ^= 0x80;
                    out.push(bad);
                }
                out.push(sealed.clone());
                if self.status_twice {
                    out.push(sealed);
                }
            } else {
                out.push(sealed);
            }
        }
        out
    }
}

impl Peer for Secure {
    fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    fn tick(&mut self, now: Instant) -> StdVec<StdVec<u8>> {
        // No KEYINFO yet: register again, as uftpd does, until it comes or we are refused.
        let (Some(hs), Some(at)) = (&self.hs, self.retry_at) else {
            return StdVec::new();
        };
        if self.group.is_some() || self.aborted.is_some() || now < at {
            return StdVec::new();
        }
        self.retry_at = Some(now + RETRY);
        self.registers += 1;
        let mut out = vec![hs.register.clone()];
        out.extend(hs.client_key.clone());
        out
    }

    fn respond(&mut self, bytes: &[u8], data: &[u8]) -> StdVec<StdVec<u8>> {
        match Func::from(bytes[1]) {
            Func::Announce => self.on_announce(bytes),
            Func::KeyInfo => self.on_keyinfo(bytes),
            Func::Encrypted => self.on_encrypted(bytes, data),
            Func::Abort => {
                if let Message::Abort(a) = Repr::parse(bytes).unwrap().message {
                    if a.host == self.inner.id {
                        self.aborted = Some(a.reason.to_vec());
                    }
                }
                self.plain.push(bytes[1]);
                StdVec::new()
            }
            _ => {
                self.plain.push(bytes[1]);
                StdVec::new()
            }
        }
    }
}

// ------------------------------------------------------------------ helpers

fn secure_sender(sec: SenderSecurity, pins: &[ClientPin]) -> Sender<8> {
    Sender::<8>::with_security(config(), pins, sec, NoRsa).unwrap()
}

fn strong() -> SenderSecurity {
    SenderSecurity::strong(ec_key(CurveId::P256, 0x51), [0x5e; 32])
}

/// What the sender put on the wire, by message type.
fn funcs(r: &Run) -> StdVec<Func> {
    r.sent.iter().map(|(_, b)| Func::from(b[1])).collect()
}

fn assert_all_delivered(models: &[Secure], r: &Run) {
    for m in models {
        assert!(m.inner.data_ok, "client {:x}: data", m.inner.id);
        assert!(m.inner.session_done, "client {:x}: DONE_CONF", m.inner.id);
        assert!(m.plain.is_empty(), "sent in the clear: {:?}", m.plain);
        assert!(m.aborted.is_none());
    }
    let sum = session_done(r);
    assert_eq!(sum.outcome, Outcome::Completed);
    assert_eq!(sum.registered as usize, models.len());
    // Only ANNOUNCE and KEYINFO go out in the clear.
    for f in funcs(r) {
        assert!(
            matches!(f, Func::Announce | Func::KeyInfo | Func::Encrypted),
            "{f:?} in the clear"
        );
    }
}

/// The server's IV counter: one value per KEYINFO and ENCRYPTED, in order, from 1.
fn assert_counter_counts_up(r: &Run) {
    let ctr = |b: &[u8], at: usize| u64::from_be_bytes(b[at..at + 8].try_into().unwrap());
    let ctrs: StdVec<u64> = (r.sent.iter())
        .filter_map(|(_, b)| match Func::from(b[1]) {
            // KEYINFO: func, hlen, reserved, then the counter; ENCRYPTED starts with it.
            Func::KeyInfo => Some(ctr(b, HEADER_LEN + 4)),
            Func::Encrypted => Some(ctr(b, HEADER_LEN)),
            _ => None,
        })
        .collect();
    let want: StdVec<u64> = (1..=ctrs.len() as u64).collect();
    assert_eq!(ctrs, want);
}

// ------------------------------------------------------------------ tests

#[test]
fn ecdh_p256_aes256_gcm_session_seals_everything_after_the_handshake() {
    let mut s = secure_sender(strong(), &[]);
    assert!(s.is_encrypted());
    assert_eq!(s.weakness(), None);
    let mut lossy = Secure::new(0x0b00_0002, ec_key(CurveId::P256, 2));
    lossy.inner.drop_once = vec![5, 77];
    let mut models = [Secure::new(0x0b00_0001, ec_key(CurveId::P256, 1)), lossy];
    let (r, _) = run(&mut s, &mut models, &[100_500, 0]);
    assert_all_delivered(&models, &r);
    assert_counter_counts_up(&r);
    let Message::Announce(a) = Repr::parse(&r.sent[0].1).unwrap().message else {
        panic!("ANNOUNCE first")
    };
    let enc = a.enc_info.unwrap();
    assert_eq!(
        (enc.keyextype, enc.sigtype, enc.keytype, enc.hashtype),
        (
            KeyExchange::EcdhEcdsa,
            SigType::AuthEnc,
            KeyType::Aes256Gcm,
            HashType::Sha256
        )
    );
    assert_eq!(enc.flags, 0, "no client authentication asked");
    assert_eq!(
        (enc.key_blob.len(), enc.dh_blob.len(), enc.signature.len()),
        (68, 68, 68)
    );
    assert_eq!(
        s.key_fingerprint(),
        Some(crate::crypto::Fingerprint::of(enc.key_blob))
    );
    // A full FILESEG with -b 1000 under GCM: 16 + 12 + (8 + 1000) + 16, as uftp sends it.
    let lens: StdVec<usize> = (r.sent.iter())
        .filter(|(_, b)| b[1] == 18)
        .map(|(_, b)| b.len())
        .collect();
    assert_eq!(lens.iter().filter(|&&n| n == 1052).count(), 100 + 2);
    assert!(lens.iter().all(|&n| n <= s.max_datagram_len()));
    let stats = file_done(&r)[0];
    assert_eq!((stats.retransmitted_blocks, stats.passes), (2, 2));
    let c = s.counters();
    assert_eq!(
        (
            c.auth_failures,
            c.replays,
            c.malformed_encrypted,
            c.clients_refused
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(
        c.status_received, 1,
        "one STATUS, sealed, from the lossy client"
    );
}

#[test]
fn ecdh_p384_aes128_ccm_sha384_session() {
    let sec = security(
        KeyType::Aes128Ccm,
        HashType::Sha384,
        KeyExchange::EcdhEcdsa,
        CurveId::P384,
        OwnKey::Ec(ec_key(CurveId::P384, 0x61)),
    );
    let mut s = secure_sender(sec, &[]);
    let mut lossy = Secure::new(0x0b00_0003, ec_key(CurveId::P384, 3));
    lossy.inner.drop_once = vec![0, 9, 10];
    let mut models = [lossy, Secure::new(0x0b00_0004, ec_key(CurveId::P384, 4))];
    let (r, _) = run(&mut s, &mut models, &[20_000, 3000]);
    assert_all_delivered(&models, &r);
    assert_counter_counts_up(&r);
    let Message::Announce(a) = Repr::parse(&r.sent[0].1).unwrap().message else {
        panic!("ANNOUNCE first")
    };
    let enc = a.enc_info.unwrap();
    assert_eq!(enc.sigtype, SigType::AuthEnc, "forced for CCM");
    assert_eq!(
        (enc.key_blob.len(), enc.dh_blob.len(), enc.signature.len()),
        (100, 100, 100)
    );
    assert_eq!(file_done(&r)[0].retransmitted_blocks, 3);
}

#[test]
fn pinned_client_key_is_accepted_and_wrong_keys_are_refused() {
    let good = ec_key(CurveId::P256, 0x21);
    let other = ec_key(CurveId::P256, 0x22);
    let pin = |id, key: &EcPrivateKey| ClientPin {
        id,
        fingerprint: Some(crate::crypto::Fingerprint::of(&blob_of(key))),
    };
    let (a, b, c) = (0x0b00_0021, 0x0b00_0022, 0x0b00_0023);
    // a holds its pinned key; b shows a key other than its pin; c shows its pinned key but
    // cannot sign with it.
    let pins = [pin(a, &good), pin(b, &good), pin(c, &other)];
    let mut s = secure_sender(strong(), &pins);
    let mut cb = Secure::new(b, other.clone());
    cb.client_key_first = true;
    let mut cc = Secure::new(c, other.clone());
    cc.forge_with = Some(good.clone());
    let mut ca = Secure::new(a, good);
    ca.client_key_first = true;
    let mut models = [ca, cb, cc];
    let (r, _) = run(&mut s, &mut models, &[4000]);
    let Message::Announce(ann) = Repr::parse(&r.sent[0].1).unwrap().message else {
        panic!("ANNOUNCE first")
    };
    assert_eq!(ann.enc_info.unwrap().flags, ENC_FLAG_CLIENT_AUTH);
    assert!(models[0].inner.data_ok && models[0].inner.session_done);
    assert!(models[0].aborted.is_none());
    assert_eq!(
        models[0].registers, 2,
        "its CLIENT_KEY overtook its REGISTER and was dropped; the retry got through"
    );
    assert!(r.events.contains(&Event::ClientRefused {
        id: b,
        reason: RefuseReason::FingerprintMismatch
    }));
    assert!(r.events.contains(&Event::ClientRefused {
        id: c,
        reason: RefuseReason::BadSignature
    }));
    assert_eq!(
        models[1].aborted.as_deref(),
        Some(RefuseReason::FingerprintMismatch.as_str().as_bytes())
    );
    assert_eq!(
        models[2].aborted.as_deref(),
        Some(RefuseReason::BadSignature.as_str().as_bytes())
    );
    assert!(models[1].group.is_none() && models[2].group.is_none());
    let sum = session_done(&r);
    assert_eq!((sum.outcome, sum.registered), (Outcome::Completed, 1));
    assert_eq!(sum.counters.clients_refused, 2);
    let refused: StdVec<_> = s.clients().filter_map(|c| c.refused).collect();
    assert_eq!(
        refused,
        [
            RefuseReason::FingerprintMismatch,
            RefuseReason::BadSignature
        ]
    );
    // The closed group ends its announce phase as soon as everyone is settled, not after
    // robust rounds.
    let announces = funcs(&r).iter().filter(|&&f| f == Func::Announce).count();
    assert!(announces <= 3, "{announces} ANNOUNCEs");
}

#[test]
fn a_wrong_keyinfo_ack_refuses_the_client() {
    let mut s = secure_sender(strong(), &[]);
    let mut bad = Secure::new(0x0b00_0031, ec_key(CurveId::P256, 0x31));
    bad.bad_ack = true;
    let mut models = [Secure::new(0x0b00_0032, ec_key(CurveId::P256, 0x32)), bad];
    let (r, _) = run(&mut s, &mut models, &[2000]);
    assert!(r.events.contains(&Event::ClientRefused {
        id: 0x0b00_0031,
        reason: RefuseReason::BadVerifyData
    }));
    assert!(!r.events.iter().any(|e| matches!(
        e,
        Event::ClientRegistered {
            id: 0x0b00_0031,
            ..
        }
    )));
    assert_eq!(
        models[1].aborted.as_deref(),
        Some(RefuseReason::BadVerifyData.as_str().as_bytes())
    );
    assert!(models[0].inner.session_done);
    assert_eq!(session_done(&r).registered, 1);
}

#[test]
fn replayed_tampered_and_plaintext_status_are_dropped_and_counted() {
    let mut s = secure_sender(strong(), &[]);
    let mut m = Secure::new(0x0b00_0041, ec_key(CurveId::P256, 0x41));
    m.inner.drop_once = vec![2, 3, 40];
    m.status_twice = true;
    m.tamper_status = true;
    m.plain_status_too = true;
    let mut models = [m];
    let (r, _) = run(&mut s, &mut models, &[50_000]);
    assert!(models[0].inner.data_ok && models[0].inner.session_done);
    let n = models[0].statuses as u64;
    assert!(n >= 1);
    let c = s.counters();
    assert_eq!(c.status_received, n, "each STATUS taken once");
    assert_eq!(c.replays, n, "the second copy is a replay");
    assert_eq!(c.auth_failures, n, "the tampered copy fails authentication");
    assert_eq!(c.unexpected_plaintext, n, "the plaintext copy is refused");
    assert!(c.dropped >= 3 * n);
    assert_eq!(file_done(&r)[0].retransmitted_blocks, 3);
}

#[test]
fn rsa_key_exchange_with_aes256_cbc_and_hmac() {
    let sec = security(
        KeyType::Aes256Cbc,
        HashType::Sha256,
        KeyExchange::Rsa,
        CurveId::P256,
        OwnKey::Rsa(0),
    );
    let mut s =
        Sender::<8, TestRsa>::with_security(config(), &[], sec, TestRsa::load(&["px2_rsa512.pem"]))
            .unwrap();
    assert_eq!(s.weakness(), Some("CBC cipher without an AEAD"));
    let mut m = Secure::new(0x0b00_0051, ec_key(CurveId::P256, 0x51));
    m.rsa = Some(TestRsa::load(&[]));
    m.inner.drop_once = vec![1];
    let mut models = [m];
    let (r, _) = run(&mut s, &mut models, &[10_000]);
    assert_all_delivered(&models, &r);
    assert_counter_counts_up(&r);
    let Message::Announce(a) = Repr::parse(&r.sent[0].1).unwrap().message else {
        panic!("ANNOUNCE first")
    };
    let enc = a.enc_info.unwrap();
    assert_eq!(
        (enc.keyextype, enc.sigtype),
        (KeyExchange::Rsa, SigType::Hmac)
    );
    assert_eq!(
        (enc.key_blob.len(), enc.dh_blob.len(), enc.signature.len()),
        (72, 0, 0)
    );
    // A full FILESEG under AES-256-CBC with HMAC-SHA-256: 16 + 12 + 32 + 1024 (1008 padded).
    assert!(r.sent.iter().any(|(_, b)| b[1] == 18 && b.len() == 1084));
}

#[test]
fn ecdh_rsa_announce_is_rsa_signed_over_its_id_list() {
    let sec = security(
        KeyType::Aes128Gcm,
        HashType::Sha256,
        KeyExchange::EcdhRsa,
        CurveId::P256,
        OwnKey::Rsa(0),
    );
    let ids = [0x0b00_0061, 0x0b00_0062];
    let pins = ids.map(|id| ClientPin {
        id,
        fingerprint: None,
    });
    let rsa = TestRsa::load(&["srv_rsa1024.pem"]);
    let mut s = Sender::<8, TestRsa>::with_security(config(), &pins, sec, rsa).unwrap();
    let mut models = ids.map(|id| {
        let mut m = Secure::new(id, ec_key(CurveId::P256, id as u8));
        m.rsa = Some(TestRsa::load(&[]));
        m
    });
    let (r, _) = run(&mut s, &mut models, &[3000]);
    assert_all_delivered(&models, &r);
    let Message::Announce(a) = Repr::parse(&r.sent[0].1).unwrap().message else {
        panic!("ANNOUNCE first")
    };
    assert_eq!(a.client_ids.len(), 2);
    let enc = a.enc_info.unwrap();
    assert_eq!(
        (enc.key_blob.len(), enc.dh_blob.len(), enc.signature.len()),
        (136, 68, 128)
    );
    // The signature covers the ID list: another list does not verify.
    let mut forged = r.sent[0].1.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let (hash, parts, sig) = announce_signed_parts(&forged).unwrap();
    let blob = KeyBlob::parse(enc.key_blob).unwrap();
    assert!(TestRsa::load(&[])
        .verify(&blob.rsa().unwrap(), hash, &parts, sig)
        .is_err());
}

#[test]
fn security_choices_are_checked() {
    let with = |sec: SenderSecurity| Sender::<8>::with_security(config(), &[], sec, NoRsa).err();
    let p256 = || OwnKey::Ec(ec_key(CurveId::P256, 9));
    let base = |kt, keyex, key| security(kt, HashType::Sha256, keyex, CurveId::P256, key);
    let mut keyex = base(KeyType::Aes256Cbc, KeyExchange::EcdhEcdsa, p256());
    keyex.sigtype = SigType::Keyex;
    assert_eq!(with(keyex), Some(ConfigError::KeyexSignatures));
    let mut authenc_cbc = base(KeyType::Aes256Cbc, KeyExchange::EcdhEcdsa, p256());
    authenc_cbc.sigtype = SigType::AuthEnc;
    assert_eq!(with(authenc_cbc), Some(ConfigError::SigType));
    assert_eq!(
        with(base(KeyType::Des3, KeyExchange::EcdhEcdsa, p256())),
        Some(ConfigError::UnsupportedCipher)
    );
    assert_eq!(
        with(base(KeyType::Aes128Gcm, KeyExchange::Rsa, p256())),
        Some(ConfigError::KeyMismatch)
    );
    assert_eq!(
        with(base(KeyType::Aes128Gcm, KeyExchange::Rsa, OwnKey::Rsa(0))),
        Some(ConfigError::RsaKey),
        "no RSA with NoRsa"
    );
    assert_eq!(
        with(base(KeyType::Aes128Gcm, KeyExchange::None, p256())),
        Some(ConfigError::UnsupportedKeyExchange)
    );
    let mut p521 = base(KeyType::Aes128Gcm, KeyExchange::EcdhEcdsa, p256());
    p521.ecdh_curve = CurveId::P521;
    assert_eq!(with(p521), Some(ConfigError::UnsupportedCurve));
    let mut sha1 = base(KeyType::Aes128Gcm, KeyExchange::EcdhEcdsa, p256());
    sha1.hashtype = HashType::Sha1;
    let s = Sender::<8>::with_security(config(), &[], sha1, NoRsa).unwrap();
    assert_eq!(s.weakness(), Some("SHA-1 hash"));
    // GCM forces AUTHENC whatever -w said, as uftp does.
    let mut gcm_keyex = base(KeyType::Aes128Gcm, KeyExchange::EcdhEcdsa, p256());
    gcm_keyex.sigtype = SigType::Keyex;
    let s = Sender::<8>::with_security(config(), &[], gcm_keyex, NoRsa).unwrap();
    assert!(s.is_encrypted());
}

#[test]
fn large_keys_and_a_closed_group_fit_max_datagram_len() {
    let sec = security(
        KeyType::Aes256Gcm,
        HashType::Sha512,
        KeyExchange::EcdhRsa,
        CurveId::P384,
        OwnKey::Rsa(0),
    );
    let mut c = config();
    c.blocksize = 512;
    let pins: StdVec<ClientPin> = (1..=8)
        .map(|id| ClientPin {
            id,
            fingerprint: None,
        })
        .collect();
    let rsa = TestRsa::load(&["srv_rsa1024.pem"]);
    let mut s = Sender::<8, TestRsa>::with_security(c, &pins, sec, rsa).unwrap();
    let mut buf = vec![0u8; s.max_datagram_len()];
    let mut src = Mem::new(0, 512);
    let t = s.poll_transmit(Instant::ZERO, &mut buf, &mut src).unwrap();
    let Message::Announce(a) = Repr::parse(&buf[..t.len]).unwrap().message else {
        panic!()
    };
    // 44 + 136 + 100 + 128 bytes of EXT_ENC_INFO leave a 512-byte block 26 IDs; all 8 fit.
    assert_eq!(a.client_ids.len(), 8);
    assert!(t.len <= s.max_datagram_len());
}

#[test]
fn pacing_counts_the_envelope() {
    // GCM adds 12 + 16 bytes to every FILESEG: (1000 + 8 + 16 + 8 + 20) + 28 = 1080 bytes a
    // packet on the wire, so this rate is 1000 FILESEGs a second.
    let mut c = config();
    c.rate = Some(1_080_000);
    let mut s = Sender::<8>::with_security(c, &[], strong(), NoRsa).unwrap();
    let mut models = [Secure::new(0x0b00_0071, ec_key(CurveId::P256, 0x71))];
    let (r, _) = run(&mut s, &mut models, &[500_000]);
    assert_all_delivered(&models, &r);
    let segs: StdVec<Instant> = (r.sent.iter().zip(&r.sent_at))
        .filter(|((_, b), _)| b.len() == 1052)
        .map(|(_, &t)| t)
        .collect();
    assert_eq!(segs.len(), 500);
    let span = segs[segs.len() - 1].saturating_duration_since(segs[0]);
    assert!(
        span >= Duration::from_millis(498) && span <= Duration::from_millis(501),
        "500 FILESEGs over {span:?}"
    );
}
