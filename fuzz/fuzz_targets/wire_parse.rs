//! Any bytes, as a datagram and as the plaintext of an ENCRYPTED envelope: parsing never panics,
//! and after `new_checked` succeeds no view accessor panics either; `Repr::parse_fileseg` agrees
//! with `Repr::parse` on every datagram whose type byte says FILESEG.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse(data) {
        // Touch what a driver reads.
        let _ = (
            repr.message.name(),
            repr.message.file_id(),
            repr.buffer_len(),
        );
        if let Message::Status(s) = repr.message {
            let _ = s.nak_indexes().count();
        }
    }
    let _ = Message::parse_inner(data);
    // The FILESEG fast path gives exactly what the general parse gives.
    if data.get(1) == Some(&u8::from(Func::FileSeg)) {
        let general = Repr::parse(data).map(|r| match r.message {
            Message::FileSeg(seg) => (r.header, seg),
            _ => unreachable!("a FILESEG type byte parses as FILESEG"),
        });
        assert_eq!(Repr::parse_fileseg(data), general);
    }
    if let Ok(h) = HeaderPacket::new_checked(data) {
        let _ = (
            h.version(),
            h.func(),
            h.seq(),
            h.src_id(),
            h.group_id(),
            h.grtt().as_micros(),
        );
        let body = h.payload();
        if let Ok(p) = AnnouncePacket::new_checked(body) {
            let _ = (
                p.public_addr(),
                p.private_addr(),
                p.extensions(),
                p.trailer(),
            );
        }
        if let Ok(p) = FileInfoPacket::new_checked(body) {
            let _ = (p.fsize(), p.name_field(), p.link_field(), p.trailer());
        }
        if let Ok(p) = RegisterPacket::new_checked(body) {
            let _ = (p.timestamp(), p.rand2(), p.keyinfo());
        }
        if let Ok(p) = EncryptedPacket::new_checked(body) {
            let _ = (p.iv_ctr(), p.signature(), p.payload());
        }
        if let Ok(p) = StatusPacket::new_checked(body) {
            let _ = (p.file_id(), p.section(), p.naks(), p.header_tail());
        }
        if let Ok(p) = FileSegPacket::new_checked(body) {
            let _ = (p.file_id(), p.section(), p.sec_block(), p.data());
        }
    }
    for ext in Extensions::new(data).take(64) {
        let _ = ext.map(|e| e.ext_type());
    }
});
