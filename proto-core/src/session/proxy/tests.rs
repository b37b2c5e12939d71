//! The proxy against uftpproxyd 4.10.2's captures (`tests/vectors`: `proxy-heartbeat`,
//! `proxy-chain` with `proxy-chain-b`, `proxy-response`; see their README), and against our own
//! sender and receivers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::vec;
use std::vec::Vec as StdVec;

use super::*;
use crate::crypto::Fingerprint;
use crate::session::receiver::{self, Receiver, ResponseProxy};
use crate::session::test_rsa::TestRsa;
use crate::wire::{GroupSize, Grtt, Repr, HEADER_LEN};

const PX1: u32 = 0x0a63_00f1;
const PX2: u32 = 0x0a63_00f2;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn at(ms: u64) -> Instant {
    Instant::from_micros(1_000_000 + ms * 1000)
}

fn vectors() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors")
}

fn message(name: &str) -> StdVec<u8> {
    std::fs::read(vectors().join("messages").join(name)).unwrap()
}

/// One captured UDP datagram: where from, where to, and its payload.
#[derive(Debug, Clone)]
struct Captured {
    from: SocketAddr,
    to: SocketAddr,
    payload: StdVec<u8>,
}

/// The UDP datagrams of a committed pcap, by 1-based packet number (as Wireshark counts).
fn pcap(name: &str) -> BTreeMap<usize, Captured> {
    testnet::pcap::read(&vectors().join("pcap").join(name))
        .unwrap()
        .into_iter()
        .map(|d| {
            let c = Captured {
                from: d.from(),
                to: d.to(),
                payload: d.payload,
            };
            (d.number, c)
        })
        .collect()
}

type TestProxy = Proxy<4, 64, TestRsa>;

fn proxy(mode: ProxyMode, uid: u32, keys: &[&str]) -> TestProxy {
    let mut config = ProxyConfig::new(uid, mode, [7; 32]);
    for i in 0..keys.len() {
        let _ = config.keys.push(OwnKey::Rsa(i));
    }
    config.allow_weak = true;
    Proxy::with_rsa(config, TestRsa::load(keys)).unwrap()
}

fn drain(p: &mut TestProxy, now: Instant) -> StdVec<(SocketAddr, StdVec<u8>)> {
    let mut out = StdVec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while let Some(t) = p.poll_transmit(now, &mut buf) {
        out.push((t.dest, buf[..t.len].to_vec()));
    }
    out
}

fn feed(p: &mut TestProxy, now: Instant, from: SocketAddr, bytes: &[u8]) -> Option<StdVec<u8>> {
    let mut b = bytes.to_vec();
    p.handle_datagram(now, from, &mut b)
        .map(|t| b[..t.len].to_vec())
}

fn events(p: &mut TestProxy) -> StdVec<Event> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn px2_fingerprint() -> Fingerprint {
    let rsa = TestRsa::load(&["px2_rsa512.pem"]);
    let mut blob = [0u8; 600];
    let n = rsa.public_blob(0, &mut blob).unwrap();
    Fingerprint::of(&blob[..n])
}

// ------------------------------------------------------------------ heartbeats

#[test]
fn server_proxy_answers_a_plain_heartbeat_as_uftpproxyd() {
    let mut p = proxy(
        ProxyMode::Server(Downstream::Fixed(addr("10.99.0.11:1044"))),
        PX1,
        &[],
    );
    let from = addr("10.99.0.2:1044");
    assert_eq!(
        feed(&mut p, at(0), from, &message("hb_req-plain.bin")),
        None
    );
    let out = drain(&mut p, at(0));
    assert_eq!(out, vec![(from, message("hb_resp-ok.bin"))]);
}

#[test]
fn heartbeat_answers_the_captured_challenge_with_the_captured_signed_request() {
    // px2 (uid 0x0a6300f2, RSA-512 key px2_rsa512.pem) heartbeats px1 at 10.99.0.10; px1
    // challenged with nonce d40d8a3a. PKCS#1 v1.5 signatures are deterministic: ours must be
    // the very bytes uftpproxyd sent.
    let server = addr("10.99.0.10:1044");
    let rsa = TestRsa::load(&["px2_rsa512.pem"]);
    let mut hb = Heartbeat::new(PX2, &[server], Duration::from_secs(1));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    hb.handle_timeout(at(0));
    let t = hb
        .poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &rsa)
        .unwrap();
    // The plain sample came from c1; px2's differs only in its ID.
    let mut plain = message("hb_req-plain.bin");
    plain[4..8].copy_from_slice(&PX2.to_be_bytes());
    assert_eq!((t.dest, &buf[..t.len]), (server, &plain[..]));
    let challenge = message("hb_resp-challenge.bin");
    let Repr {
        message: Message::HbResp(resp),
        ..
    } = Repr::parse(&challenge).unwrap()
    else {
        panic!("not HB_RESP");
    };
    assert_eq!(resp.result, HbResult::Challenge);
    assert!(hb.handle_response(server, &resp));
    let t = hb
        .poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &rsa)
        .unwrap();
    assert_eq!(t.dest, server);
    assert_eq!(buf[..t.len], message("hb_req-auth.bin")[..]);
    assert!(hb
        .poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &rsa)
        .is_none());
}

#[test]
fn fp_server_proxy_challenges_then_adopts_the_signed_heartbeat() {
    let downstream = addr("10.99.0.11:1044");
    let mut p = proxy(
        ProxyMode::Server(Downstream::Heartbeat(px2_fingerprint())),
        PX1,
        &[],
    );
    // Nothing passes before a downstream address is established.
    let announce = message("announce-open.bin");
    assert_eq!(
        feed(&mut p, at(0), addr("10.99.0.1:40000"), &announce),
        None
    );
    assert_eq!(p.counters().dropped[DropReason::NoDownstream.index()], 1);

    let rsa = TestRsa::load(&["px2_rsa512.pem"]);
    let mut hb = Heartbeat::new(PX2, &[addr("10.99.0.10:1044")], Duration::from_secs(1));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut deliver = |hb: &mut Heartbeat, p: &mut TestProxy, now| {
        while let Some(t) = hb.poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &rsa) {
            let req = buf[..t.len].to_vec();
            feed(p, now, downstream, &req);
            for (dest, resp) in drain(p, now) {
                assert_eq!(dest, downstream);
                let Repr {
                    message: Message::HbResp(r),
                    ..
                } = Repr::parse(&resp).unwrap()
                else {
                    panic!("not HB_RESP");
                };
                hb.handle_response(addr("10.99.0.10:1044"), &r);
            }
        }
    };
    hb.handle_timeout(at(0));
    deliver(&mut hb, &mut p, at(0));
    assert_eq!(p.downstream(), Some(downstream));
    assert_eq!(hb.last_result(addr("10.99.0.10:1044")), Some(HbResult::Ok));
    assert!(events(&mut p).contains(&Event::DownstreamChanged { addr: downstream }));

    // Now the sender's ANNOUNCE goes downstream, unchanged.
    let out = feed(&mut p, at(10), addr("10.99.0.1:40000"), &announce);
    assert_eq!(out.as_deref(), Some(&announce[..]));

    // Someone else's signed heartbeat (another key) fails and changes nothing.
    let other = TestRsa::load(&["c1_rsa1024.pem"]);
    let mut impostor = Heartbeat::new(0x0b00_0001, &[addr("10.99.0.10:1044")], DEFAULT_HB_INTERVAL);
    impostor.handle_timeout(at(20));
    let t = impostor
        .poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &other)
        .unwrap();
    let req = buf[..t.len].to_vec();
    feed(&mut p, at(20), addr("10.99.0.66:1044"), &req);
    let resp = drain(&mut p, at(20));
    let Repr {
        message: Message::HbResp(r),
        ..
    } = Repr::parse(&resp[0].1).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.result, HbResult::Challenge);
    impostor.handle_response(addr("10.99.0.10:1044"), &r);
    let t = impostor
        .poll_transmit(&mut buf, Some(&OwnKey::Rsa(0)), &other)
        .unwrap();
    let req = buf[..t.len].to_vec();
    feed(&mut p, at(21), addr("10.99.0.66:1044"), &req);
    let resp = drain(&mut p, at(21));
    let Repr {
        message: Message::HbResp(r),
        ..
    } = Repr::parse(&resp[0].1).unwrap()
    else {
        panic!()
    };
    assert_eq!(r.result, HbResult::Failed);
    assert_eq!(p.downstream(), Some(downstream));
}

// ------------------------------------------------------------------ response proxy keys

#[test]
fn captured_proxy_key_verifies_and_a_response_client_takes_it() {
    let pk = message("proxy_key.bin");
    let Repr {
        message: Message::ProxyKey(k),
        header,
    } = Repr::parse(&pk).unwrap()
    else {
        panic!("not PROXY_KEY");
    };
    assert_eq!((header.group_id, header.seq, header.src_id), (0, 0, PX1));
    let rsa = TestRsa::load(&[]);
    assert!(heartbeat::verify_nonce(
        &rsa,
        k.key_blob,
        k.nonce,
        k.signature
    ));
    assert!(!heartbeat::verify_nonce(
        &rsa,
        k.key_blob,
        k.nonce ^ 1,
        k.signature
    ));

    // uftpd -R 10.99.0.10: KEY_REQ at once, byte for byte as c1's.
    let proxy_addr = addr("10.99.0.10:1044");
    let mut config = receiver::Config::new(0x0a63_0002, [3; 32]);
    config.response_proxy = Some(ResponseProxy {
        addr: proxy_addr,
        fingerprint: None,
    });
    let mut rx: Receiver<2, TestRsa> = Receiver::with_rsa(config.clone(), TestRsa::load(&[]));
    let mut store = NoStorage;
    assert_eq!(rx.poll_timeout(), Some(Instant::ZERO));
    rx.handle_timeout(at(0), &mut store);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let t = rx.poll_transmit(at(0), &mut buf, &mut store).unwrap();
    assert_eq!(
        (t.dest, &buf[..t.len]),
        (proxy_addr, &message("key_req.bin")[..])
    );
    assert_eq!(rx.poll_timeout(), Some(at(0) + receiver::KEY_REQ_INTERVAL));
    // The captured PROXY_KEY (multicast from the proxy's address) is taken; KEY_REQ stops.
    let mut b = pk.clone();
    rx.handle_datagram(at(1), addr("10.99.0.10:1044"), &mut b, &mut store);
    assert_eq!(rx.response_proxy_key(), Some(Fingerprint::of(k.key_blob)));
    assert_eq!(rx.poll_timeout(), None);

    // From elsewhere, without a pinned fingerprint: not taken. With the wrong pin: not taken.
    let mut rx2: Receiver<2, TestRsa> = Receiver::with_rsa(config.clone(), TestRsa::load(&[]));
    let mut b = pk.clone();
    rx2.handle_datagram(at(1), addr("10.99.0.66:1044"), &mut b, &mut store);
    assert_eq!(rx2.response_proxy_key(), None);
    config.response_proxy = Some(ResponseProxy {
        addr: proxy_addr,
        fingerprint: Some(px2_fingerprint()),
    });
    let mut rx3: Receiver<2, TestRsa> = Receiver::with_rsa(config, TestRsa::load(&[]));
    let mut b = pk.clone();
    rx3.handle_datagram(at(1), proxy_addr, &mut b, &mut store);
    assert_eq!(rx3.response_proxy_key(), None);
}

#[test]
fn response_proxy_answers_key_req_with_a_signed_proxy_key_on_every_public_address() {
    let p = proxy(ProxyMode::Response, PX1, &["px2_rsa512.pem"]);
    let second = addr("230.4.4.2:1044");
    // A second public address (uftp 4.9.6 and later send PROXY_KEY on all of them).
    let mut config = p.config().clone();
    let _ = config.public_addrs.push(second);
    let mut p: TestProxy = Proxy::with_rsa(config, TestRsa::load(&["px2_rsa512.pem"])).unwrap();
    let key_req = message("key_req.bin");
    feed(&mut p, at(0), addr("10.99.0.2:1044"), &key_req);
    feed(&mut p, at(0), addr("10.99.0.3:1044"), &key_req);
    let out = drain(&mut p, at(0));
    let dests: StdVec<SocketAddr> = out.iter().map(|(d, _)| *d).collect();
    assert_eq!(dests, vec![addr("230.4.4.1:1044"), second]);
    let rsa = TestRsa::load(&[]);
    for (_, bytes) in &out {
        let Repr {
            header,
            message: Message::ProxyKey(k),
        } = Repr::parse(bytes).unwrap()
        else {
            panic!("not PROXY_KEY");
        };
        assert_eq!((header.group_id, header.seq, header.src_id), (0, 0, PX1));
        assert_eq!(Fingerprint::of(k.key_blob), px2_fingerprint());
        assert!(k.dh_blob.is_empty());
        assert!(heartbeat::verify_nonce(
            &rsa,
            k.key_blob,
            k.nonce,
            k.signature
        ));
        // Same layout as uftpproxyd's (an RSA-512 key: 164 bytes).
        assert_eq!(bytes.len(), message("proxy_key.bin").len());
    }
    // At most one round a second, whatever the rate of KEY_REQs.
    feed(&mut p, at(10), addr("10.99.0.4:1044"), &key_req);
    assert!(drain(&mut p, at(10)).is_empty());
    assert_eq!(p.poll_timeout(), Some(at(1000)));
    p.handle_timeout(at(1000));
    assert_eq!(drain(&mut p, at(1000)).len(), 2);
}

struct NoStorage;

impl receiver::Storage for NoStorage {
    fn open(&mut self, _: &receiver::Item<'_>) -> Result<(), receiver::Reject> {
        Err(receiver::Reject::Unsupported)
    }
    fn block_map(&mut self, _: receiver::SessionId) -> Option<&mut [u8]> {
        None
    }
    fn write(
        &mut self,
        _: receiver::SessionId,
        _: u16,
        _: u64,
        _: &[u8],
    ) -> Result<(), receiver::Reject> {
        Err(receiver::Reject::Io)
    }
    fn finish(&mut self, _: receiver::SessionId, _: u16) -> Result<(), receiver::Reject> {
        Err(receiver::Reject::Io)
    }
    fn discard(&mut self, _: receiver::SessionId, _: u16) {}
    fn free_space(&mut self, _: receiver::SessionId) -> Option<u64> {
        None
    }
}

// ------------------------------------------------------------------ client proxy (unencrypted)

/// Where the echoed timestamp sits in REGISTER and FILEINFO_ACK (after the 16-byte header).
const REGISTER_TS: usize = HEADER_LEN + 4;
const FILEINFO_ACK_TS: usize = HEADER_LEN + 8;

fn ts_at(b: &[u8], at: usize) -> u64 {
    let sec = u64::from(u32::from_be_bytes(b[at..at + 4].try_into().unwrap()));
    let usec = u64::from(u32::from_be_bytes(b[at + 4..at + 8].try_into().unwrap()));
    sec * 1_000_000 + usec
}

#[test]
fn client_proxy_relays_and_aggregates_as_the_captured_chain() {
    // proxy-chain: px1 (server proxy at 10.99.0.10) unicasts to px2 (client proxy, 10.99.0.11
    // on A, 10.99.1.11 on B); c4 (0x0a630005, 10.99.1.2) is its one client.
    let a = pcap("proxy-chain.pcap");
    let b = pcap("proxy-chain-b.pcap");
    let upstream = a[&9].from;
    let c4 = b[&2].from;
    assert_eq!(
        (upstream, c4),
        (addr("10.99.0.10:1044"), addr("10.99.1.2:1044"))
    );
    let mut p = proxy(ProxyMode::Client, PX2, &[]);

    // ANNOUNCE: re-multicast on B unchanged (unencrypted), to the public address.
    let out = feed(&mut p, at(0), upstream, &a[&9].payload).unwrap();
    assert_eq!(out, b[&1].payload);
    assert_eq!(b[&1].to, addr("230.4.4.1:1044"));
    let ev = events(&mut p);
    assert!(matches!(
        ev[..],
        [Event::GroupStarted {
            server_id: 0x0a63_0001,
            cipher: KeyType::None,
            ..
        }]
    ));

    // c4's REGISTER is held one GRTT, then goes up as px2's REGISTER listing c4: the capture's
    // bytes but for the echoed timestamp, which is c4's plus the time held.
    assert_eq!(feed(&mut p, at(1), c4, &b[&2].payload), None);
    assert!(drain(&mut p, at(1)).is_empty());
    let grtt = Grtt(0x7f).as_micros();
    let flush = p.poll_timeout().unwrap();
    assert_eq!(flush, at(1) + Duration::from_micros(grtt));
    p.handle_timeout(flush);
    let out = drain(&mut p, flush);
    assert_eq!(out.len(), 1);
    let (dest, reg) = &out[0];
    assert_eq!(*dest, upstream);
    let want = &a[&10].payload;
    assert_eq!(reg.len(), want.len());
    assert_eq!(reg[..REGISTER_TS], want[..REGISTER_TS]);
    assert_eq!(reg[REGISTER_TS + 8..], want[REGISTER_TS + 8..]);
    assert_eq!(
        ts_at(reg, REGISTER_TS),
        ts_at(&b[&2].payload, REGISTER_TS) + grtt
    );

    // REG_CONF, FILEINFO, FILESEG, DONE: re-multicast on B unchanged, to the private address.
    for n in [14, 55, 60, 61] {
        let out = feed(&mut p, at(100), upstream, &a[&n].payload).unwrap();
        assert_eq!(out, a[&n].payload, "packet {n}");
    }
    let private = b[&3].to;
    // FILEINFO_ACK: px2's, seq 1, listing c4, timestamp c4's plus the hold.
    feed(&mut p, at(200), c4, &b[&24].payload);
    p.handle_timeout(at(200) + Duration::from_micros(grtt));
    let out = drain(&mut p, at(200) + Duration::from_micros(grtt));
    let want = message("fileinfo_ack-proxy.bin");
    assert_eq!(out.len(), 1);
    let ack = &out[0].1;
    assert_eq!(ack[..FILEINFO_ACK_TS], want[..FILEINFO_ACK_TS]);
    assert_eq!(ack[FILEINFO_ACK_TS + 8..], want[FILEINFO_ACK_TS + 8..]);
    assert_eq!(
        ts_at(ack, FILEINFO_ACK_TS),
        ts_at(&b[&24].payload, FILEINFO_ACK_TS) + grtt
    );
    // COMPLETE: exactly uftpproxyd's (seq 2, c4 listed).
    feed(&mut p, at(300), c4, &b[&27].payload);
    p.handle_timeout(at(300) + Duration::from_micros(grtt));
    let out = drain(&mut p, at(300) + Duration::from_micros(grtt));
    assert_eq!(out, vec![(upstream, message("complete-proxy.bin"))]);
    // The session's end: DONE(0) down, COMPLETE(0) up as captured (seq 5 there: px2 had
    // sent two more for the second file), DONE_CONF down.
    let done0 = feed(&mut p, at(400), upstream, &a[&79].payload).unwrap();
    assert_eq!(done0, a[&79].payload);
    assert_eq!(private, b[&3].to);
    let info = p.groups().next().unwrap();
    assert_eq!((info.clients, info.ready, info.encrypted), (1, 1, false));
    let c = p.counters();
    assert_eq!((c.responses_aggregated, c.aggregates_sent), (3, 3));
}

// ------------------------------------------------------------------ the sender with proxies

struct OneFile {
    data: StdVec<u8>,
    map: StdVec<u8>,
}

impl crate::session::sender::BlockSource for OneFile {
    fn read_block(
        &mut self,
        _: u16,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), crate::session::sender::ReadError> {
        let at = offset as usize;
        buf.copy_from_slice(&self.data[at..at + buf.len()]);
        Ok(())
    }
    fn resend_map(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

fn ids(list: &crate::wire::IdList<'_>) -> StdVec<u32> {
    list.iter().collect()
}

#[test]
fn sender_takes_a_proxy_registration_and_its_aggregates_as_uftp_does() {
    use crate::session::sender::{Event as SenderEvent, FileItem, Sender, SenderConfig};
    use crate::wire::FileType;
    // The server of proxy-chain: uid 0x0a630001, group 7a364b9c, -b 1000, -r 0.05.
    let a = pcap("proxy-chain.pcap");
    let mut config = SenderConfig::new(
        0x0a63_0001,
        0x7a36_4b9c,
        addr("230.4.4.1:1044"),
        addr("230.5.5.183:1044"),
    );
    config.blocksize = 1000;
    config.rate = None;
    config.grtt_init = Duration::from_millis(50);
    let mut tx: Sender<8> = Sender::new(config, &[]).unwrap();
    let data = b"Hello from the uftp-rs golden vectors!\n".to_vec();
    let mut src = OneFile {
        data: data.clone(),
        map: vec![0; 1],
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut now = at(0);
    let mut out = |tx: &mut Sender<8>, now, src: &mut OneFile| {
        let mut v = StdVec::new();
        while let Some(t) = tx.poll_transmit(now, &mut buf, src) {
            v.push(buf[..t.len].to_vec());
        }
        v
    };
    out(&mut tx, now, &mut src);
    // px2's REGISTER, through px1.
    let px1 = a[&11].from;
    let mut reg = a[&11].payload.clone();
    tx.handle_datagram(now, px1, &mut reg, &mut src);
    let sent = out(&mut tx, now, &mut src);
    let conf = Repr::parse(&sent[0]).unwrap();
    let Message::RegConf(rc) = conf.message else {
        panic!("REG_CONF first");
    };
    // As uftp 4.10.2's: the proxy and its client, group size 2.
    assert_eq!(ids(&rc.client_ids), vec![PX2, 0x0a63_0005]);
    assert_eq!(sent[0][HEADER_LEN..], a[&12].payload[HEADER_LEN..]);
    assert_eq!(conf.header.gsize, GroupSize(0x30));
    let evs: StdVec<SenderEvent> = std::iter::from_fn(|| tx.poll_event()).collect();
    assert!(evs.contains(&SenderEvent::ProxyRegistered { id: PX2, addr: px1 }));
    assert!(evs.contains(&SenderEvent::ClientRegistered {
        id: 0x0a63_0005,
        addr: px1
    }));
    while !tx.wants_file() {
        now = tx.poll_timeout().unwrap().max(now);
        tx.handle_timeout(now);
        out(&mut tx, now, &mut src);
    }
    let item = FileItem {
        name: b"hello.txt",
        ftype: FileType::Regular,
        size: data.len() as u64,
        mtime: 1_704_164_645,
        link: &[],
    };
    assert_eq!(tx.start_file(now, item), Ok(1));
    let sent = out(&mut tx, now, &mut src);
    let Message::FileInfo(fi) = Repr::parse(&sent[0]).unwrap().message else {
        panic!("FILEINFO");
    };
    // FILEINFO names the client, not the proxy (as captured).
    assert_eq!(ids(&fi.client_ids), vec![0x0a63_0005]);
    let mut ack = message("fileinfo_ack-proxy.bin");
    tx.handle_datagram(now, px1, &mut ack, &mut src);
    let sent = out(&mut tx, now, &mut src);
    let kinds: StdVec<&str> = sent
        .iter()
        .map(|b| Repr::parse(b).unwrap().message.name())
        .collect();
    assert_eq!(kinds, vec!["FILESEG", "DONE"]);
    let Message::Done(d) = Repr::parse(&sent[1]).unwrap().message else {
        panic!()
    };
    // DONE names both, as captured.
    assert_eq!(ids(&d.client_ids), vec![PX2, 0x0a63_0005]);
    assert_eq!(sent[1][HEADER_LEN..], a[&59].payload[HEADER_LEN..]);
    let mut complete = message("complete-proxy.bin");
    tx.handle_datagram(now, px1, &mut complete, &mut src);
    assert!(tx.wants_file());
    tx.finish_session(now).unwrap();
    let sent = out(&mut tx, now, &mut src);
    let Message::Done(d) = Repr::parse(&sent[0]).unwrap().message else {
        panic!()
    };
    assert_eq!((d.file_id, ids(&d.client_ids)), (0, vec![PX2, 0x0a63_0005]));
    let mut complete0 = a[&81].payload.clone();
    tx.handle_datagram(now, px1, &mut complete0, &mut src);
    let sent = out(&mut tx, now, &mut src);
    let Message::DoneConf(dc) = Repr::parse(&sent[0]).unwrap().message else {
        panic!()
    };
    // DONE_CONF names the client only, as captured.
    assert_eq!(ids(&dc.client_ids), vec![0x0a63_0005]);
    assert_eq!(sent[0][HEADER_LEN..], a[&82].payload[HEADER_LEN..]);
    let table: StdVec<_> = tx.clients().collect();
    assert_eq!(table.len(), 2);
    assert!(table[0].proxy && table[0].via.is_none());
    assert!(!table[1].proxy && table[1].via == Some(PX2) && table[1].done);
    assert_eq!(tx.responders(), 1);
    while !tx.is_finished() {
        now = tx.poll_timeout().unwrap().max(now);
        tx.handle_timeout(now);
    }
    let summary = std::iter::from_fn(|| tx.poll_event())
        .find_map(|e| match e {
            SenderEvent::SessionDone(s) => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            summary.outcome,
            summary.registered,
            summary.completed,
            summary.lost
        ),
        (crate::session::sender::Outcome::Completed, 1, 1, 0)
    );
}

// ------------------------------------------------------------------ whole sessions in memory

mod topology {
    //! A sender, one proxy and receivers wired together in memory: each datagram is delivered
    //! at once, unicast by address, multicast to the endpoints that hear the sender's segment.

    use std::collections::{HashMap, VecDeque};

    use super::*;
    use crate::session::receiver::{Item, Reject, SessionId, Storage};
    use crate::session::security::{ClientPin, SenderSecurity};
    use crate::session::sender::{
        BlockSource, Event as SenderEvent, FileItem, ReadError, Sender, SenderConfig,
        SessionSummary,
    };
    use crate::wire::FileType;

    pub const SERVER: &str = "10.1.0.1:40000";
    pub const PROXY: &str = "10.1.0.10:1044";

    pub fn content(len: usize) -> StdVec<u8> {
        (0..len).map(|i| (i * 31 + i / 253) as u8).collect()
    }

    pub struct Source {
        pub data: StdVec<u8>,
        pub map: StdVec<u8>,
    }

    impl BlockSource for Source {
        fn read_block(&mut self, _: u16, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
            let at = offset as usize;
            buf.copy_from_slice(self.data.get(at..at + buf.len()).ok_or(ReadError)?);
            Ok(())
        }
        fn resend_map(&mut self) -> &mut [u8] {
            &mut self.map
        }
    }

    /// A file being received: its name, its bytes and its block map.
    type OpenFile = (StdVec<u8>, StdVec<u8>, StdVec<u8>);

    #[derive(Default)]
    pub struct Store {
        pub files: HashMap<StdVec<u8>, StdVec<u8>>,
        open: Option<OpenFile>,
    }

    impl Storage for Store {
        fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
            self.open = Some((
                item.name.to_vec(),
                vec![0; item.size as usize],
                vec![0; item.layout.bitmap_len()],
            ));
            Ok(())
        }
        fn block_map(&mut self, _: SessionId) -> Option<&mut [u8]> {
            self.open.as_mut().map(|o| o.2.as_mut_slice())
        }
        fn write(&mut self, _: SessionId, _: u16, offset: u64, data: &[u8]) -> Result<(), Reject> {
            let o = self.open.as_mut().ok_or(Reject::Io)?;
            let at = offset as usize;
            o.1[at..at + data.len()].copy_from_slice(data);
            Ok(())
        }
        fn finish(&mut self, _: SessionId, _: u16) -> Result<(), Reject> {
            let (name, data, _) = self.open.take().ok_or(Reject::Io)?;
            self.files.insert(name, data);
            Ok(())
        }
        fn discard(&mut self, _: SessionId, _: u16) {
            self.open = None;
        }
        fn free_space(&mut self, _: SessionId) -> Option<u64> {
            None
        }
    }

    pub type Rx = Receiver<2, TestRsa>;

    /// Who hears multicast: the sender's segment, or the proxy's (a client proxy's receivers
    /// hear only what it re-multicasts).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Segment {
        Sender,
        Proxy,
    }

    pub struct World {
        pub now: Instant,
        pub sender: Sender<16, TestRsa>,
        pub source: Source,
        pub proxy: TestProxy,
        /// The segment the proxy multicasts to.
        pub proxy_segment: Segment,
        pub receivers: StdVec<(SocketAddr, Segment, Rx, Store)>,
        pub sender_events: StdVec<SenderEvent>,
        pub proxy_events: StdVec<Event>,
        /// Every datagram sent: from, to, bytes.
        pub wire: StdVec<(SocketAddr, SocketAddr, StdVec<u8>)>,
        queue: VecDeque<(SocketAddr, SocketAddr, StdVec<u8>)>,
        file: StdVec<u8>,
        started: bool,
    }

    impl World {
        pub fn new(
            sender: Sender<16, TestRsa>,
            proxy: TestProxy,
            proxy_segment: Segment,
            file: StdVec<u8>,
        ) -> Self {
            World {
                now: at(0),
                sender,
                source: Source {
                    data: file.clone(),
                    map: StdVec::new(),
                },
                proxy,
                proxy_segment,
                receivers: StdVec::new(),
                sender_events: StdVec::new(),
                proxy_events: StdVec::new(),
                wire: StdVec::new(),
                queue: VecDeque::new(),
                file,
                started: false,
            }
        }

        pub fn add(&mut self, addr: SocketAddr, segment: Segment, rx: Rx) {
            self.receivers.push((addr, segment, rx, Store::default()));
        }

        fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: StdVec<u8>) {
            self.wire.push((from, to, bytes.clone()));
            self.queue.push_back((from, to, bytes));
        }

        fn pump(&mut self) {
            let now = self.now;
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                while self.sender.wants_file() {
                    if self.started {
                        self.sender.finish_session(now).unwrap();
                    } else {
                        self.started = true;
                        let item = FileItem {
                            name: b"file.bin",
                            ftype: FileType::Regular,
                            size: self.file.len() as u64,
                            mtime: 1,
                            link: &[],
                        };
                        self.sender.start_file(now, item).unwrap();
                        self.source.map = vec![0; self.sender.layout().bitmap_len()];
                    }
                }
                while let Some(t) = self.sender.poll_transmit(now, &mut buf, &mut self.source) {
                    let b = buf[..t.len].to_vec();
                    self.send(addr(SERVER), t.dest, b);
                }
                while let Some(e) = self.sender.poll_event() {
                    self.sender_events.push(e);
                }
                while let Some(t) = self.proxy.poll_transmit(now, &mut buf) {
                    let b = buf[..t.len].to_vec();
                    self.send(addr(PROXY), t.dest, b);
                }
                while let Some(e) = self.proxy.poll_event() {
                    self.proxy_events.push(e);
                }
                for i in 0..self.receivers.len() {
                    let (a, _, rx, store) = &mut self.receivers[i];
                    let a = *a;
                    let mut out = StdVec::new();
                    while let Some(t) = rx.poll_transmit(now, &mut buf, store) {
                        out.push((t.dest, buf[..t.len].to_vec()));
                    }
                    while rx.poll_event().is_some() {}
                    for (d, b) in out {
                        self.send(a, d, b);
                    }
                }
                let Some((from, to, bytes)) = self.queue.pop_front() else {
                    break;
                };
                self.deliver(from, to, bytes);
            }
        }

        fn deliver(&mut self, from: SocketAddr, to: SocketAddr, bytes: StdVec<u8>) {
            let now = self.now;
            if !to.ip().is_multicast() {
                if to == addr(SERVER) {
                    let mut b = bytes;
                    self.sender
                        .handle_datagram(now, from, &mut b, &mut self.source);
                } else if to == addr(PROXY) {
                    let mut b = bytes;
                    if let Some(t) = self.proxy.handle_datagram(now, from, &mut b) {
                        b.truncate(t.len);
                        self.send(addr(PROXY), t.dest, b);
                    }
                } else if let Some(r) = self.receivers.iter_mut().find(|r| r.0 == to) {
                    let mut b = bytes;
                    r.2.handle_datagram(now, from, &mut b, &mut r.3);
                }
                return;
            }
            let segment = if from == addr(SERVER) {
                Segment::Sender
            } else if from == addr(PROXY) {
                self.proxy_segment
            } else {
                return;
            };
            if from != addr(PROXY) && segment == Segment::Sender {
                let mut b = bytes.clone();
                if let Some(t) = self.proxy.handle_datagram(now, from, &mut b) {
                    b.truncate(t.len);
                    self.send(addr(PROXY), t.dest, b);
                }
            }
            for r in self.receivers.iter_mut().filter(|r| r.1 == segment) {
                let mut b = bytes.clone();
                r.2.handle_datagram(now, from, &mut b, &mut r.3);
            }
        }

        /// Runs until the sender is done; returns its summary.
        pub fn run(&mut self) -> SessionSummary {
            for _ in 0..200_000 {
                self.pump();
                if let Some(s) = self.sender_events.iter().find_map(|e| match e {
                    SenderEvent::SessionDone(s) => Some(*s),
                    _ => None,
                }) {
                    return s;
                }
                let next = [self.sender.poll_timeout(), self.proxy.poll_timeout()]
                    .into_iter()
                    .chain(self.receivers.iter().map(|r| r.2.poll_timeout()))
                    .flatten()
                    .min()
                    .expect("something to wait for");
                self.now = self.now.max(next);
                let now = self.now;
                self.sender.handle_timeout(now);
                self.proxy.handle_timeout(now);
                for r in self.receivers.iter_mut() {
                    r.2.handle_timeout(now, &mut r.3);
                }
            }
            panic!("session did not end");
        }

        pub fn all_received(&self) -> bool {
            self.receivers
                .iter()
                .all(|r| r.3.files.get(&b"file.bin"[..]) == Some(&self.file))
        }
    }

    pub fn sender_config(unicast: bool) -> SenderConfig {
        let mut c = SenderConfig::new(
            0x0a01_0001,
            0x7777_0001,
            addr("230.4.4.1:1044"),
            addr("230.5.5.7:1044"),
        );
        c.unicast = unicast;
        c.blocksize = 1000;
        c.rate = None;
        c.grtt_init = Duration::from_millis(20);
        c.grtt_min = Duration::from_millis(10);
        c
    }

    pub fn security(keyex: crate::wire::KeyExchange, key: OwnKey) -> SenderSecurity {
        use crate::wire::{HashType, KeyType, SigType};
        SenderSecurity {
            keytype: KeyType::Aes256Cbc,
            hashtype: HashType::Sha256,
            sigtype: SigType::Hmac,
            keyex,
            ecdh_curve: crate::crypto::CurveId::P256,
            client_auth: false,
            key,
            seed: [0x42; 32],
        }
    }

    pub fn pins(ids: &[u32]) -> StdVec<ClientPin> {
        ids.iter()
            .map(|&id| ClientPin {
                id,
                fingerprint: None,
            })
            .collect()
    }
}

use topology::{Segment, World, PROXY, SERVER};

fn rx_addr(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 10 + i as u8)), 1044)
}

fn rx_id(i: u32) -> u32 {
    0x0a02_0000 + i
}

#[test]
fn response_proxy_with_rsa_key_exchange_as_in_the_capture() {
    use crate::session::sender::Sender;
    use crate::wire::KeyExchange;
    // As proxy-response, with RSA keys of one size on the server and the proxy (1024 bits
    // here; the capture's were ephemeral RSA-512): the clients encrypt their premaster to the
    // proxy's key, the proxy its own to the server's.
    let sec = topology::security(KeyExchange::Rsa, OwnKey::Rsa(0));
    let sender = Sender::with_proxies(
        topology::sender_config(false),
        &[],
        &[],
        Some(sec),
        TestRsa::load(&["srv_rsa1024.pem"]),
    )
    .unwrap();
    let p = proxy(ProxyMode::Response, PX1, &["c2_rsa1024.pem"]);
    let mut w = World::new(sender, p, Segment::Sender, topology::content(12_345));
    for i in 0..3 {
        let mut c = receiver::Config::new(rx_id(i), [i as u8 + 1; 32]);
        c.allow_weak = true;
        c.response_proxy = Some(ResponseProxy {
            addr: addr(PROXY),
            fingerprint: None,
        });
        w.add(
            rx_addr(i),
            Segment::Sender,
            Receiver::with_rsa(c, TestRsa::load(&[])),
        );
    }
    let s = w.run();
    assert_eq!(
        (s.outcome, s.registered, s.completed),
        (crate::session::sender::Outcome::Completed, 3, 3)
    );
    assert!(w.all_received());
    assert_eq!(w.sender.responders(), 1);
    // What went between them has uftpproxyd's shape.
    let reg = w
        .wire
        .iter()
        .find(|(f, t, b)| *f == addr(PROXY) && *t == addr(SERVER) && b[1] == 2)
        .expect("the proxy's REGISTER");
    // 16 + 44 + a 128-byte premaster + 3 client IDs.
    assert_eq!(reg.2.len(), HEADER_LEN + 44 + 128 + 12);
    let conf = w
        .wire
        .iter()
        .find(|(f, _, b)| *f == addr(SERVER) && b[1] == 4)
        .expect("REG_CONF");
    let Message::RegConf(rc) = Repr::parse(&conf.2).unwrap().message else {
        panic!()
    };
    assert_eq!(
        rc.client_ids.len(),
        3,
        "REG_CONF names the proxied clients only"
    );
    let ki = w
        .wire
        .iter()
        .find(|(f, _, b)| *f == addr(PROXY) && b[1] == 5)
        .expect("the proxy's KEYINFO");
    let r = Repr::parse(&ki.2).unwrap();
    let Message::KeyInfo(k) = r.message else {
        panic!()
    };
    // In the server's name with seq 0, and the counter after the proxy's KEYINFO_ACK (as the
    // captured keyinfo-response-proxy.bin: 2).
    assert_eq!(
        (r.header.src_id, r.header.seq, k.iv_ctr),
        (0x0a01_0001, 0, 2)
    );
    assert_eq!(k.entries.len(), 3);
    assert_eq!(ki.1, addr("230.5.5.7:1044"));
}

#[test]
fn client_proxy_with_client_authentication_both_ways_and_pins() {
    use crate::crypto::{CurveId, EcPrivateKey};
    use crate::session::sender::Sender;
    use crate::wire::KeyExchange;
    let ec = |n: u8| {
        let mut s = [0x33u8; 32];
        s[31] = n;
        EcPrivateKey::from_scalar(CurveId::P256, &s).unwrap()
    };
    let blob_fp = |k: &EcPrivateKey| {
        let mut b = [0u8; 100];
        let n = k.public_key().emit_blob(&mut b).unwrap();
        Fingerprint::of(&b[..n])
    };
    let proxy_key = ec(9);
    let mut sec = topology::security(KeyExchange::EcdhEcdsa, OwnKey::Ec(ec(1)));
    sec.keytype = crate::wire::KeyType::Aes128Gcm;
    sec.sigtype = crate::wire::SigType::AuthEnc;
    sec.client_auth = true;
    // Closed group: four clients, and the proxy admitted by -j with its key pinned.
    let allowed = topology::pins(&[rx_id(0), rx_id(1), rx_id(2), rx_id(3)]);
    let jlist = [ClientPin {
        id: PX2,
        fingerprint: Some(blob_fp(&proxy_key)),
    }];
    let sender = Sender::with_proxies(
        topology::sender_config(false),
        &allowed,
        &jlist,
        Some(sec),
        TestRsa::load(&[]),
    )
    .unwrap();
    let mut config = ProxyConfig::new(PX2, ProxyMode::Client, [8; 32]);
    config.keys.push(OwnKey::Ec(proxy_key.clone())).unwrap();
    // -C: two clients pinned by key, the third listed without a fingerprint, the fourth
    // pinned to another key than its own.
    for i in 0..4 {
        let fingerprint = match i {
            0 | 1 => Some(blob_fp(&ec(20 + i as u8))),
            2 => None,
            _ => Some(blob_fp(&ec(99))),
        };
        config
            .clients
            .push(ClientPin {
                id: rx_id(i),
                fingerprint,
            })
            .unwrap();
    }
    let p: TestProxy = Proxy::with_rsa(config, TestRsa::load(&[])).unwrap();
    let mut w = World::new(sender, p, Segment::Proxy, topology::content(30_000));
    for i in 0..4 {
        let mut c = receiver::Config::new(rx_id(i), [i as u8 + 1; 32]);
        c.ec_keys.push(ec(20 + i as u8)).unwrap();
        w.add(
            rx_addr(i),
            Segment::Proxy,
            Receiver::with_rsa(c, TestRsa::load(&[])),
        );
    }
    // Receiver 3's key is not the one -C pins: the proxy refuses it, and the sender, which
    // lists it, loses it as never registered.
    let s = w.run();
    assert_eq!(
        (s.outcome, s.registered, s.completed, s.lost),
        (crate::session::sender::Outcome::Completed, 3, 3, 1)
    );
    for r in &w.receivers[..3] {
        assert_eq!(
            r.3.files.get(&b"file.bin"[..]),
            Some(&topology::content(30_000))
        );
    }
    assert!(w.receivers[3].3.files.is_empty());
    assert!(w.proxy_events.iter().any(|e| matches!(
        e,
        Event::ClientRefused {
            client_id,
            reason: RefuseReason::FingerprintMismatch,
            ..
        } if *client_id == rx_id(3)
    )));
    // The receivers saw the proxy's key in the ANNOUNCE (re-signed by it), not the server's.
    let ann = w
        .wire
        .iter()
        .find(|(f, _, b)| *f == addr(PROXY) && b[1] == 1)
        .unwrap();
    let Message::Announce(a) = Repr::parse(&ann.2).unwrap().message else {
        panic!()
    };
    let enc = a.enc_info.unwrap();
    assert_eq!(Fingerprint::of(enc.key_blob), blob_fp(&proxy_key));
    let ek = crate::crypto::EcPublicKey::from_blob(
        &crate::crypto::KeyBlob::parse(enc.key_blob)
            .unwrap()
            .ec()
            .unwrap(),
    )
    .unwrap();
    assert!(crate::crypto::verify_announce(&ek, &ann.2).is_ok());
    // The sender checked the proxy's CLIENT_KEY against -j's pin, and counts one responder.
    assert_eq!(w.sender.responders(), 1);
    assert_eq!(w.sender.counters().clients_refused, 0);
}

#[test]
fn client_proxy_re_signs_an_ecdh_rsa_announce_with_its_rsa_key() {
    use crate::session::sender::Sender;
    use crate::wire::KeyExchange;
    let sender = Sender::with_proxies(
        topology::sender_config(false),
        &[],
        &[],
        Some(topology::security(KeyExchange::EcdhRsa, OwnKey::Rsa(0))),
        TestRsa::load(&["srv_rsa1024.pem"]),
    )
    .unwrap();
    let p = proxy(ProxyMode::Client, PX2, &["c2_rsa1024.pem"]);
    let proxy_fp = p.key_fingerprint().unwrap();
    let mut w = World::new(sender, p, Segment::Proxy, topology::content(5_000));
    for i in 0..2 {
        let mut c = receiver::Config::new(rx_id(i), [i as u8 + 7; 32]);
        c.allow_weak = true;
        // Behind a client proxy a server list names the server's ID with the proxy's key.
        c.servers
            .push(crate::session::security::ServerEntry {
                id: 0x0a01_0001,
                addr: None,
                fingerprint: Some(proxy_fp),
            })
            .unwrap();
        w.add(
            rx_addr(i),
            Segment::Proxy,
            Receiver::with_rsa(c, TestRsa::load(&[])),
        );
    }
    let s = w.run();
    assert_eq!(
        (s.outcome, s.registered, s.completed),
        (crate::session::sender::Outcome::Completed, 2, 2)
    );
    assert!(w.all_received());
}

#[test]
fn status_from_several_clients_goes_up_as_one_full_or_ed_bitmap_and_aborts_name_the_client() {
    use crate::wire::{AbortRepr, HeaderRepr, RegisterRepr, StatusRepr, Timestamp};
    let a = pcap("proxy-chain.pcap");
    let upstream = a[&9].from;
    let mut p = proxy(ProxyMode::Client, PX2, &[]);
    feed(&mut p, at(0), upstream, &a[&9].payload);
    let group = 0x7a36_4b9c;
    let from_client = |id: u32, message: Message<'_>| {
        let header = HeaderRepr {
            src_id: id,
            group_id: group,
            ..HeaderRepr::default()
        };
        let repr = Repr { header, message };
        let mut b = vec![0; repr.buffer_len()];
        repr.emit(&mut b).unwrap();
        b
    };
    for i in 0..3 {
        let reg = from_client(
            rx_id(i),
            Message::Register(RegisterRepr {
                timestamp: Timestamp::from_micros(5),
                rand2: [0; 32],
                keyinfo: &[],
                client_ids: crate::wire::IdList::EMPTY,
            }),
        );
        feed(&mut p, at(1), rx_addr(i), &reg);
    }
    let grtt = Duration::from_micros(Grtt(0x7f).as_micros());
    p.handle_timeout(at(1) + grtt);
    let out = drain(&mut p, at(1) + grtt);
    let Message::Register(r) = Repr::parse(&out[0].1).unwrap().message else {
        panic!()
    };
    assert_eq!(r.client_ids.len(), 3);
    // Three STATUS for section 0 of file 1 (a 3-block section: 1-byte bitmaps), one for
    // another section: two aggregates, each with a full 1000-byte bitmap.
    let t0 = at(100);
    for (i, bits) in [(0u32, 0b001u8), (1, 0b100), (2, 0b001)] {
        let st = from_client(
            rx_id(i),
            Message::Status(StatusRepr {
                file_id: 1,
                section: 0,
                tfmcc: None,
                naks: &[bits],
            }),
        );
        feed(&mut p, t0, rx_addr(i), &st);
    }
    let st = from_client(
        rx_id(1),
        Message::Status(StatusRepr {
            file_id: 1,
            section: 1,
            tfmcc: None,
            naks: &[0x80, 0x01],
        }),
    );
    feed(&mut p, t0, rx_addr(1), &st);
    assert!(drain(&mut p, t0).is_empty(), "held for one GRTT");
    p.handle_timeout(t0 + grtt);
    let out = drain(&mut p, t0 + grtt);
    assert_eq!(out.len(), 2);
    for (dest, bytes) in &out {
        assert_eq!(*dest, upstream);
        let r = Repr::parse(bytes).unwrap();
        assert_eq!(r.header.src_id, PX2);
        let Message::Status(s) = r.message else {
            panic!()
        };
        assert_eq!(s.naks.len(), 1000);
        let set: StdVec<usize> = s.nak_indexes().collect();
        match s.section {
            0 => assert_eq!(set, vec![0, 2]),
            1 => assert_eq!(set, vec![7, 8]),
            other => panic!("section {other}"),
        }
    }
    // A client's ABORT goes up as the proxy's, naming the client.
    let ab = from_client(
        rx_id(2),
        Message::Abort(AbortRepr {
            flags: 0,
            host: 0,
            reason: b"Disk full",
        }),
    );
    feed(&mut p, t0 + grtt, rx_addr(2), &ab);
    let out = drain(&mut p, t0 + grtt);
    let r = Repr::parse(&out[0].1).unwrap();
    let Message::Abort(a) = r.message else {
        panic!()
    };
    assert_eq!(
        (r.header.src_id, a.host, a.reason),
        (PX2, rx_id(2), &b"Disk full"[..])
    );
    assert_eq!(p.groups().next().unwrap().clients, 2);
}

#[test]
fn a_closed_group_admits_only_the_proxies_of_its_j_list() {
    use crate::session::security::ClientPin;
    use crate::session::sender::{Sender, SenderConfig};
    let a = pcap("proxy-chain.pcap");
    let mut config = SenderConfig::new(
        0x0a63_0001,
        0x7a36_4b9c,
        addr("230.4.4.1:1044"),
        addr("230.5.5.183:1044"),
    );
    config.blocksize = 1000;
    let c4 = [ClientPin {
        id: 0x0a63_0005,
        fingerprint: None,
    }];
    let px2 = [ClientPin {
        id: PX2,
        fingerprint: None,
    }];
    let mut src = OneFile {
        data: StdVec::new(),
        map: StdVec::new(),
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let from = a[&11].from;
    for (jlist, admitted) in [(&[][..], false), (&px2[..], true)] {
        let mut tx: Sender<8> =
            Sender::with_proxies(config, &c4, jlist, None, crate::crypto::NoRsa).unwrap();
        while tx.poll_transmit(at(0), &mut buf, &mut src).is_some() {}
        let mut reg = a[&11].payload.clone();
        tx.handle_datagram(at(1), from, &mut reg, &mut src);
        let t = tx.poll_transmit(at(1), &mut buf, &mut src).unwrap();
        let r = Repr::parse(&buf[..t.len]).unwrap();
        match r.message {
            Message::RegConf(rc) if admitted => {
                let mut got = ids(&rc.client_ids);
                got.sort();
                assert_eq!(got, vec![0x0a63_0005, PX2]);
            }
            Message::Abort(ab) if !admitted => {
                assert_eq!((t.dest, ab.host), (from, PX2));
                assert_eq!(ab.reason, b"Client not in host list");
            }
            other => panic!("{other:?} (admitted {admitted})"),
        }
    }
}
