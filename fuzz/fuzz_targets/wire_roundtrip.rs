//! parse → emit → parse: whatever parses re-emits into exactly `buffer_len` bytes that parse
//! back to the same representation, and emitting again gives the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(repr) = Repr::parse(data) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let n = repr.emit(&mut buf).expect("a parsed message emits");
        assert_eq!(n, buf.len());
        let again = Repr::parse(&buf).expect("an emitted message parses");
        assert_eq!(again, repr);
        let mut buf2 = vec![0u8; again.buffer_len()];
        again.emit(&mut buf2).unwrap();
        assert_eq!(buf, buf2);
        if !buf.is_empty() {
            assert!(repr.emit(&mut buf[..n - 1]).is_err());
        }
    }
    if let Ok(msg) = Message::parse_inner(data) {
        let mut buf = vec![0u8; msg.buffer_len()];
        let n = msg.emit(&mut buf).expect("a parsed message emits");
        assert_eq!(n, buf.len());
        assert_eq!(
            Message::parse_inner(&buf).expect("an emitted message parses"),
            msg
        );
    }
});
