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

/// The UFTP header length.
pub const HEADER_LEN: usize = 16;

fn insert_header(f: &mut Map<String, Value>, b: &[u8]) {
    f.insert("version".into(), b[0].into());
    f.insert("func".into(), b[1].into());
    f.insert("func_name".into(), func_name(b[1]).into());
    f.insert("seq".into(), u16::from_be_bytes([b[2], b[3]]).into());
    f.insert(
        "src_id".into(),
        id_str(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
    );
    f.insert(
        "group_id".into(),
        id_str(u32::from_be_bytes([b[8], b[9], b[10], b[11]])),
    );
    f.insert("group_inst".into(), b[12].into());
    f.insert("grtt".into(), grtt_secs(b[13]).into());
    f.insert("grtt_raw".into(), b[13].into());
    f.insert("gsize".into(), gsize_count(b[14]).into());
    f.insert("gsize_raw".into(), b[14].into());
}

/// Decodes one UDP payload.
pub fn decode(payload: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    if payload.len() < HEADER_LEN {
        out.error = Some(format!(
            "{} bytes is shorter than the {HEADER_LEN}-byte UFTP header",
            payload.len()
        ));
        return out;
    }
    insert_header(&mut out.fields, payload);
    if payload[0] != 0x40 {
        out.error = Some(format!("version 0x{:02x} is not UFTP 4 (0x40)", payload[0]));
        return out;
    }
    // Message bodies are decoded by proto-core's wire codec once it lands; until then only
    // the body's length is shown.
    out.fields
        .insert("body_len".into(), (payload.len() - HEADER_LEN).into());
    out
}
