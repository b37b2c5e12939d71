//! Untrusted input to the crypto layer: key blobs and fingerprints from ANNOUNCE, REGISTER,
//! CLIENT_KEY and heartbeats, ECDSA signatures, and ENCRYPTED envelopes under fixed keys.
//! Nothing may panic, and nothing random may authenticate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_core::crypto::{self, EcPublicKey, Fingerprint, KeyBlob, SessionKeys};
use proto_core::wire::{HashType, KeyType};

fuzz_target!(|data: &[u8]| {
    if let Ok(blob) = KeyBlob::parse(data) {
        let _ = blob.fingerprint();
        if let Some(ec) = blob.ec() {
            if let Ok(key) = EcPublicKey::from_blob(&ec) {
                let (msg, sig) = data.split_at(data.len() / 2);
                let _ = key.verify(HashType::Sha256, &[msg], sig);
                let _ = crypto::verify_announce(&key, data);
            }
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = text.parse::<Fingerprint>();
    }
    for (kt, ht) in [
        (KeyType::Aes256Gcm, HashType::Sha256),
        (KeyType::Aes128Ccm, HashType::Sha384),
        (KeyType::Aes256Cbc, HashType::Sha256),
    ] {
        let klen = crypto::key_len(kt).unwrap();
        let hlen = crypto::hash_len(ht).unwrap();
        let keys =
            SessionKeys::from_parts(kt, ht, &[7u8; 32][..klen], [1, 2, 3, 4], &[9u8; 64][..hlen])
                .unwrap();
        let mut buf = data.to_vec();
        assert!(
            crypto::open(&mut buf, &keys).is_err(),
            "random bytes authenticated"
        );
    }
});
