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

/// The UDP datagrams of an Ethernet/IPv4 pcap, by 1-based packet number (as Wireshark counts).
fn pcap(name: &str) -> BTreeMap<usize, Captured> {
    let data = std::fs::read(vectors().join("pcap").join(name)).unwrap();
    assert_eq!(data[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let mut out = BTreeMap::new();
    let (mut pos, mut number) = (24, 0);
    while pos + 16 <= data.len() {
        let incl = u32_at(pos + 8);
        let frame = &data[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        number += 1;
        if frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 17 {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let v4 = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        let udp = &ip[ihl..];
        let port = |at: usize| u16::from_be_bytes([udp[at], udp[at + 1]]);
        let len = usize::from(port(4));
        out.insert(
            number,
            Captured {
                from: SocketAddr::new(v4(&ip[12..16]), port(0)),
                to: SocketAddr::new(v4(&ip[16..20]), port(2)),
                payload: udp[8..len].to_vec(),
            },
        );
    }
    out
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
