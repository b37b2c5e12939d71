//! A UFTP 4 datagram as a flat, ordered list of named fields.
//!
//! Field names follow tshark's `uftp4` dissector with the `uftp4.` prefix and any sub-message
//! path dropped (`uftp4.fileinfo.file_id` becomes `file_id`). IDs are `"0x%08x"` strings so they
//! read the same as in uftp's logs.

use serde_json::{Map, Value};

/// Decoded fields of one datagram, in wire order, plus why decoding stopped early (if it did).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Header and message fields.
    pub fields: Map<String, Value>,
    /// Set when the datagram is not a well-formed UFTP 4 message.
    pub error: Option<String>,
}

/// `0x%08x`, the way uftp and tshark print IDs.
pub fn id_str(id: u32) -> Value {
    Value::String(format!("0x{id:08x}"))
}

/// Message type names (digest §2.2), as uftp and tshark spell them.
pub fn func_name(func: u8) -> &'static str {
    match func {
        1 => "ANNOUNCE",
        2 => "REGISTER",
        3 => "CLIENT_KEY",
        4 => "REG_CONF",
        5 => "KEYINFO",
        6 => "KEYINFO_ACK",
        7 => "FILEINFO",
        8 => "FILEINFO_ACK",
        9 => "FILESEG",
        10 => "DONE",
        11 => "STATUS",
        12 => "COMPLETE",
        13 => "DONE_CONF",
        14 => "HB_REQ",
        15 => "HB_RESP",
        16 => "KEY_REQ",
        17 => "PROXY_KEY",
        18 => "ENCRYPTED",
        19 => "ABORT",
        20 => "CONG_CTRL",
        21 => "CC_ACK",
        _ => "UNKNOWN",
    }
}

/// GRTT byte to seconds (digest §2.3, NORM / RFC 5401 encoding).
pub fn grtt_secs(q: u8) -> f64 {
    if q <= 31 {
        f64::from(q + 1) * 1e-6
    } else {
        1000.0 / ((255.0 - f64::from(q)) / 13.0).exp()
    }
}

/// Group-size byte to a client count (digest §2.3).
pub fn gsize_count(q: u8) -> u64 {
    let m = f64::from(q >> 3);
    let e = i32::from(q & 7);
    (m * 10.0 / 32.0 * 10f64.powi(e)).round() as u64
}

use proto_core::wire::{
    self, CcItem, EncInfoRepr, HeaderPacket, HeaderRepr, IdList, Message, Rate, Repr,
    TfmccAckInfoRepr, TfmccDataInfoRepr, Timestamp,
};

/// The UFTP header length.
pub const HEADER_LEN: usize = wire::HEADER_LEN;

/// An ordered field list under construction.
struct Fields<'m>(&'m mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, k: &str, v: impl Into<Value>) {
        self.0.insert(k.to_owned(), v.into());
    }
    fn id(&mut self, k: &str, id: u32) {
        self.0.insert(k.to_owned(), id_str(id));
    }
    fn ids(&mut self, k: &str, list: &IdList<'_>) {
        if !list.is_empty() {
            self.put(k, list.iter().map(id_str).collect::<Vec<_>>());
        }
    }
    fn hex(&mut self, k: &str, bytes: &[u8]) {
        self.put(k, hex(bytes));
    }
    fn tstamp(&mut self, k: &str, t: Timestamp) {
        self.put(k, format!("{}.{:06}", t.secs, t.usecs));
    }
    fn rate(&mut self, k: &str, r: Rate) {
        self.put(k, r.bytes_per_sec());
    }
    /// A flag bit as a boolean named as tshark names it.
    fn flag(&mut self, k: &str, flags: u8, bit: u8) {
        self.put(k, flags & bit != 0);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text of a NUL-padded name: up to the first NUL, lossily as UTF-8.
fn text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn insert_header(f: &mut Fields<'_>, version: u8, func: u8, h: &HeaderRepr) {
    f.put("version", version);
    f.put("func", func);
    f.put("func_name", func_name(func));
    f.put("seq", h.seq);
    f.id("src_id", h.src_id);
    f.id("group_id", h.group_id);
    f.put("group_inst", h.group_inst);
    f.put("grtt", grtt_secs(h.grtt.0));
    f.put("grtt_raw", h.grtt.0);
    f.put("gsize", h.gsize.count());
    f.put("gsize_raw", h.gsize.0);
}

/// Decodes one UDP payload. Never panics: whatever does not parse is reported in `error`,
/// after the header fields that did.
pub fn decode(payload: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    match Repr::parse(payload) {
        Ok(repr) => {
            let mut f = Fields(&mut out.fields);
            insert_header(&mut f, wire::VERSION, repr.message.func(), &repr.header);
            message_fields(&mut f, &payload[HEADER_LEN..], &repr.message);
        }
        Err(e) => match HeaderPacket::new_checked(payload) {
            Ok(h) => {
                let header = HeaderRepr {
                    seq: h.seq(),
                    src_id: h.src_id(),
                    group_id: h.group_id(),
                    group_inst: h.group_inst(),
                    grtt: h.grtt(),
                    gsize: h.gsize(),
                };
                let mut f = Fields(&mut out.fields);
                insert_header(&mut f, h.version(), h.func(), &header);
                out.error = Some(if h.version() != wire::VERSION {
                    format!("version 0x{:02x} is not UFTP 4 (0x40)", h.version())
                } else {
                    format!("{} body: {e}", func_name(h.func()))
                });
            }
            Err(_) => {
                out.error = Some(format!(
                    "{} bytes is shorter than the {HEADER_LEN}-byte UFTP header",
                    payload.len()
                ));
            }
        },
    }
    out
}

fn enc_info(f: &mut Fields<'_>, e: &EncInfoRepr<'_>) {
    f.put("encinfo_flags", e.flags);
    f.flag("client_auth", e.flags, wire::ENC_FLAG_CLIENT_AUTH);
    f.put("keyextype", u8::from(e.keyextype));
    f.put("keyextype_name", e.keyextype.name());
    f.put("sigtype", u8::from(e.sigtype));
    f.put("sigtype_name", e.sigtype.name());
    f.put("keytype", u8::from(e.keytype));
    f.put("keytype_name", e.keytype.name());
    f.put("hashtype", u8::from(e.hashtype));
    f.put("hashtype_name", e.hashtype.name());
    f.put("keylen", e.key_blob.len());
    f.put("dhlen", e.dh_blob.len());
    f.put("siglen", e.signature.len());
    f.hex("rand1", &e.rand1);
    key_blob(f, "keyblob", e.key_blob);
    if !e.dh_blob.is_empty() {
        key_blob(f, "dhblob", e.dh_blob);
    }
}

/// Summarises a public key blob (digest §5.2): RSA modulus size and exponent, or EC curve.
fn key_blob(f: &mut Fields<'_>, prefix: &str, blob: &[u8]) {
    match blob {
        [1, _, m0, m1, e0, e1, e2, e3, ..] => {
            f.put(&format!("{prefix}_type"), "rsa");
            f.put(&format!("{prefix}_modlen"), u16::from_be_bytes([*m0, *m1]));
            f.put(
                &format!("{prefix}_exponent"),
                u32::from_be_bytes([*e0, *e1, *e2, *e3]),
            );
        }
        [2, curve, ..] => {
            let c = wire::Curve::from(*curve);
            f.put(&format!("{prefix}_type"), "ec");
            f.put(&format!("{prefix}_curve"), *curve);
            f.put(&format!("{prefix}_curve_name"), c.name());
        }
        [] => {}
        [t, ..] => f.put(&format!("{prefix}_type"), *t),
    }
}

fn tfmcc_data(f: &mut Fields<'_>, t: &TfmccDataInfoRepr) {
    f.rate("send_rate", t.send_rate);
    f.put("cc_seq", t.cc_seq);
    f.rate("cc_rate", t.cc_rate);
}

fn tfmcc_ack(f: &mut Fields<'_>, t: &TfmccAckInfoRepr) {
    f.put("tfmcc_flags", t.flags);
    f.flag("clr", t.flags, wire::TFMCC_ACK_FLAG_CLR);
    f.flag("rtt", t.flags, wire::TFMCC_ACK_FLAG_RTT);
    f.flag("start", t.flags, wire::TFMCC_ACK_FLAG_START);
    f.flag("leave", t.flags, wire::TFMCC_ACK_FLAG_LEAVE);
    f.put("cc_seq", t.cc_seq);
    f.rate("cc_rate", t.cc_rate);
    f.id("client_id", t.client_id);
    f.tstamp("tstamp", t.timestamp);
}

fn cc_item(item: &CcItem) -> Value {
    let mut m = Map::new();
    m.insert("destid".into(), id_str(item.client_id));
    m.insert("flags".into(), item.flags.into());
    m.insert("clr".into(), (item.flags & wire::CC_FLAG_CLR != 0).into());
    m.insert(
        "rtt_flag".into(),
        (item.flags & wire::CC_FLAG_RTT != 0).into(),
    );
    m.insert(
        "start".into(),
        (item.flags & wire::CC_FLAG_START != 0).into(),
    );
    m.insert("rtt".into(), grtt_secs(item.rtt.0).into());
    Value::Object(m)
}

/// Block numbers (within the section) whose NAK bit is set, least significant bit first.
pub fn nak_blocks(bitmap: &[u8]) -> Vec<u32> {
    let mut out = Vec::new();
    for (i, byte) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                out.push(i as u32 * 8 + bit);
            }
        }
    }
    out
}

fn message_fields(f: &mut Fields<'_>, body: &[u8], msg: &Message<'_>) {
    // Every body but ENCRYPTED's starts `func hlen`; tshark shows hlen in bytes.
    if !matches!(msg, Message::Encrypted(_) | Message::Unknown { .. }) {
        if let Some(&hlen) = body.get(1) {
            f.put("hlen", u32::from(hlen) * 4);
        }
    }
    match msg {
        Message::Announce(r) => {
            f.put("flags", r.flags);
            f.flag("sync", r.flags, wire::ANNOUNCE_FLAG_SYNC_MODE);
            f.flag("syncpreview", r.flags, wire::ANNOUNCE_FLAG_SYNC_PREVIEW);
            f.flag("ipv6", r.flags, wire::ANNOUNCE_FLAG_IPV6);
            f.put("robust", r.robust);
            f.put("cc_type", u8::from(r.cc_type));
            f.put("cc_type_name", r.cc_type.name());
            f.put("blocksize", r.blocksize);
            f.tstamp("tstamp", r.timestamp);
            f.put("publicmcast", r.public_addr.to_string());
            f.put("privatemcast", r.private_addr.to_string());
            if let Some(e) = &r.enc_info {
                enc_info(f, e);
            }
            f.ids("dest", &r.client_ids);
        }
        Message::Register(r) => {
            f.put("keyinfo_len", r.keyinfo.len());
            f.tstamp("tstamp", r.timestamp);
            f.hex("rand2", &r.rand2);
            f.ids("dest", &r.client_ids);
        }
        Message::ClientKey(r) => {
            f.put("bloblen", r.key_blob.len());
            f.put("siglen", r.signature.len());
            key_blob(f, "keyblob", r.key_blob);
        }
        Message::RegConf(r) => f.ids("dest", &r.client_ids),
        Message::KeyInfo(r) => {
            f.put("ivctr", format!("0x{:016x}", r.iv_ctr));
            f.put("iv_ctr", r.iv_ctr);
            let ids: Vec<Value> = r.entries.iter().map(|e| id_str(e.client_id)).collect();
            f.put("destid", ids);
        }
        Message::KeyInfoAck(r) => f.hex("verify_data", &r.verify_data),
        Message::FileInfo(r) => {
            f.put("file_id", r.file_id);
            f.put("ftype", u8::from(r.ftype));
            f.put("ftype_name", r.ftype.name());
            f.put("namelen", body.get(8).copied().unwrap_or(0));
            f.put("linklen", body.get(9).copied().unwrap_or(0));
            f.put("fsize", r.size);
            f.put("ftstamp", r.mtime);
            f.tstamp("tstamp", r.timestamp);
            f.put("name", String::from_utf8_lossy(r.name).into_owned());
            if !r.link.is_empty() {
                f.put("link", String::from_utf8_lossy(r.link).into_owned());
            }
            f.ids("dest", &r.client_ids);
        }
        Message::FileInfoAck(r) => {
            f.put("file_id", r.file_id);
            f.put("flags", r.flags);
            f.flag("partial", r.flags, wire::FILEINFO_ACK_FLAG_PARTIAL);
            f.tstamp("tstamp", r.timestamp);
            f.ids("dest", &r.client_ids);
        }
        Message::FileSeg(r) => {
            f.put("file_id", r.file_id);
            f.put("section", r.section);
            f.put("sec_block", r.sec_block);
            f.put("blocknum", r.sec_block);
            if let Some(t) = &r.tfmcc {
                tfmcc_data(f, t);
            }
            f.put("data_len", r.data.len());
        }
        Message::Done(r) => {
            f.put("file_id", r.file_id);
            f.put("section", r.section);
            f.ids("dest", &r.client_ids);
        }
        Message::Status(r) => {
            f.put("file_id", r.file_id);
            f.put("section", r.section);
            if let Some(t) = &r.tfmcc {
                tfmcc_ack(f, t);
            }
            f.put("naks", nak_blocks(r.naks));
            f.put("naks_len", r.naks.len());
        }
        Message::Complete(r) => {
            f.put("file_id", r.file_id);
            f.put("status", u8::from(r.status));
            f.put("status_name", r.status.name());
            if let Some(fs) = &r.freespace {
                f.put("freespace", fs.freespace);
            }
            f.ids("dest", &r.client_ids);
        }
        Message::DoneConf(r) => f.ids("dest", &r.client_ids),
        Message::HbReq(r) => {
            f.put("bloblen", r.key_blob.len());
            f.put("siglen", r.signature.len());
            f.put("nonce", r.nonce);
            key_blob(f, "keyblob", r.key_blob);
        }
        Message::HbResp(r) => {
            f.put("authenticated", u8::from(r.result));
            f.put("authenticated_name", r.result.name());
            f.put("nonce", r.nonce);
        }
        Message::KeyReq(_) => {}
        Message::ProxyKey(r) => {
            f.put("bloblen", r.key_blob.len());
            f.put("dhlen", r.dh_blob.len());
            f.put("siglen", r.signature.len());
            f.put("nonce", r.nonce);
            key_blob(f, "keyblob", r.key_blob);
            if !r.dh_blob.is_empty() {
                key_blob(f, "dhblob", r.dh_blob);
            }
        }
        Message::Encrypted(r) => {
            f.put("ivctr", format!("0x{:016x}", r.iv_ctr));
            f.put("iv_ctr", r.iv_ctr);
            f.put("sig_len", r.signature.len());
            f.put("payload_len", r.payload.len());
        }
        Message::Abort(r) => {
            f.put("flags", r.flags);
            f.flag("curfile", r.flags, wire::ABORT_FLAG_CURRENT_FILE);
            f.id("clientid", r.host);
            f.put("message", text(r.reason));
        }
        Message::CongCtrl(r) => {
            f.put("cc_seq", r.cc_seq);
            f.rate("cc_rate", r.cc_rate);
            f.tstamp("tstamp", r.timestamp);
            f.put(
                "item",
                r.items.iter().map(|i| cc_item(&i)).collect::<Vec<_>>(),
            );
        }
        Message::CcAck(r) => tfmcc_ack(f, &r.tfmcc),
        Message::Unknown { body, .. } => {
            f.put("body_len", body.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grtt_and_gsize_decode_as_in_the_digest() {
        assert!((grtt_secs(0x9D) - 0.532).abs() < 0.001);
        assert!((grtt_secs(0x88) - 0.1058).abs() < 0.0001);
        // tshark prints 0.0105273022466847 for 0x6a.
        assert!((grtt_secs(0x6a) - 0.010_527_302_246_684_7).abs() < 1e-15);
        assert_eq!(grtt_secs(0), 1e-6);
        assert_eq!(gsize_count(0x18), 1);
        assert_eq!(gsize_count(0x30), 2);
    }

    #[test]
    fn nak_bitmap_is_lsb_first() {
        assert_eq!(nak_blocks(&[0x08]), vec![3]);
        assert_eq!(nak_blocks(&[0x01, 0x80]), vec![0, 15]);
        assert!(nak_blocks(&[0, 0]).is_empty());
    }

    #[test]
    fn short_and_foreign_payloads_are_errors_not_panics() {
        let d = decode(&[0x40, 1]);
        assert!(d.error.unwrap().contains("shorter"));
        assert!(d.fields.is_empty());
        let mut v3 = vec![0x30, 1];
        v3.resize(40, 0);
        let d = decode(&v3);
        assert!(d.error.unwrap().contains("0x30"));
        assert_eq!(d.fields["version"], 0x30);
        for len in 0..64 {
            let mut p = vec![0x40, 7];
            p.resize(len.max(2), 0xff);
            let _ = decode(&p);
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic() {
        // A small LCG: deterministic, no dependency.
        let mut x: u32 = 0x1234_5678;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        };
        for func in 0..=25u8 {
            for len in 16..120 {
                let mut p: Vec<u8> = (0..len).map(|_| next()).collect();
                p[0] = 0x40;
                p[1] = func;
                if len > 16 {
                    p[16] = func;
                }
                let d = decode(&p);
                assert_eq!(d.fields["func"], func);
            }
        }
    }

    #[test]
    fn reg_conf_lists_ids() {
        let mut p = vec![
            0x40, 4, 0, 1, 0x0a, 0, 0, 1, 0x12, 0x34, 0xab, 0xcd, 0, 0x9d, 0x18, 0,
        ];
        p.extend_from_slice(&[4, 1, 0, 0, 0x0a, 0, 0, 2, 0x0a, 0, 0, 3]);
        let d = decode(&p);
        assert_eq!(d.error, None);
        assert_eq!(d.fields["func_name"], "REG_CONF");
        assert_eq!(d.fields["src_id"], "0x0a000001");
        assert_eq!(d.fields["group_id"], "0x1234abcd");
        assert_eq!(d.fields["gsize"], 1);
        assert_eq!(
            d.fields["dest"],
            serde_json::json!(["0x0a000002", "0x0a000003"])
        );
    }
}
