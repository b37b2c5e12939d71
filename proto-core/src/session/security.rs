//! What both ends of an encrypted session are configured with (digest §5): the server's
//! choices, the keys each side holds, the receiver's list of trusted servers, and the policy
//! that keeps weak choices behind an explicit opt-in.

use core::net::IpAddr;

use crate::crypto::{CurveId, EcPrivateKey, Fingerprint};
use crate::wire::{HashType, KeyExchange, KeyType, SigType};

/// How many servers a receiver's `-S` list may hold.
pub const MAX_SERVERS: usize = 32;
/// How many EC keys a receiver may hold (`-k`/`-K`).
pub const MAX_EC_KEYS: usize = 4;

/// A long-term key of our own.
#[derive(Debug, Clone)]
pub enum OwnKey {
    /// An RSA key: index into the [`RsaKeys`](crate::crypto::RsaKeys) implementation.
    Rsa(usize),
    /// An EC key.
    Ec(EcPrivateKey),
}

/// The server's security choices (uftp's `-Y`, `-h`, `-w`, `-e`, `-c`, `-k`/`-K`).
#[derive(Debug, Clone)]
pub struct SenderSecurity {
    /// Session cipher (`-Y`); never [`KeyType::None`] here.
    pub keytype: KeyType,
    /// Session hash (`-h`): HMAC, PRF and signature digest.
    pub hashtype: HashType,
    /// How ENCRYPTED is authenticated (`-w`); forced to [`SigType::AuthEnc`] for GCM/CCM.
    pub sigtype: SigType,
    /// Key exchange (`-e`).
    pub keyex: KeyExchange,
    /// Curve of the ephemeral ECDH key (`-e ecdh_*:curve`).
    pub ecdh_curve: CurveId,
    /// Require CLIENT_KEY (`-c`; forced on by `-w keyex`).
    pub client_auth: bool,
    /// The server's key: RSA for `rsa` and `ecdh_rsa`, EC for `ecdh_ecdsa`.
    pub key: OwnKey,
    /// Entropy for the session's randoms, group master and ephemeral keys.
    pub seed: [u8; 32],
}

impl SenderSecurity {
    /// Our strong defaults: ECDH on P-256 signed with the P-256 `key`, AES-256-GCM, SHA-256.
    pub fn strong(key: EcPrivateKey, seed: [u8; 32]) -> Self {
        SenderSecurity {
            keytype: KeyType::Aes256Gcm,
            hashtype: HashType::Sha256,
            sigtype: SigType::AuthEnc,
            keyex: KeyExchange::EcdhEcdsa,
            ecdh_curve: CurveId::P256,
            client_auth: false,
            key: OwnKey::Ec(key),
            seed,
        }
    }
}

/// One line of a receiver's server list (`-S`: `ID|IP[|FP]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerEntry {
    /// The server's UID.
    pub id: u32,
    /// The address its ANNOUNCEs must come from, if given.
    pub addr: Option<IpAddr>,
    /// The fingerprint its key must have, if given.
    pub fingerprint: Option<Fingerprint>,
}

/// A client a server admits to a closed group (`-H id` or `-H @file` lines `ID|FP`): with a
/// fingerprint, the client must authenticate (CLIENT_KEY) with the key that has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPin {
    /// The client's UID.
    pub id: u32,
    /// The fingerprint its key must have, if pinned.
    pub fingerprint: Option<Fingerprint>,
}

/// Why a choice is weak, or `None` when it is not. `rsa_bits` is the size of any RSA key the
/// session uses (the server's, or a client's), if there is one.
///
/// Weak: DES and 3DES; CBC modes (no AEAD); SHA-1; RSA keys under 2048 bits. Such sessions run
/// only when the operator opted in, and are logged as weak.
pub fn weakness(
    keytype: KeyType,
    hashtype: HashType,
    rsa_bits: Option<usize>,
) -> Option<&'static str> {
    match keytype {
        KeyType::Des => return Some("DES cipher"),
        KeyType::Des3 => return Some("3DES cipher"),
        KeyType::Aes128Cbc | KeyType::Aes256Cbc => return Some("CBC cipher without an AEAD"),
        _ => {}
    }
    if hashtype == HashType::Sha1 {
        return Some("SHA-1 hash");
    }
    match rsa_bits {
        Some(bits) if bits < 2048 => Some("RSA key under 2048 bits"),
        _ => None,
    }
}

/// Whether `keytype` is an AEAD (GCM or CCM), whose tag authenticates ENCRYPTED.
pub fn is_aead(keytype: KeyType) -> bool {
    matches!(
        keytype,
        KeyType::Aes128Gcm | KeyType::Aes256Gcm | KeyType::Aes128Ccm | KeyType::Aes256Ccm
    )
}

/// Replay protection for one peer's ENCRYPTED packets: a sliding window of 64 over the IV
/// counter (which each sender pre-increments, so 0 never occurs). uftp 4 keeps none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    top: u64,
    seen: u64,
}

impl ReplayWindow {
    /// Width of the window.
    pub const WIDTH: u64 = 64;

    /// A window that has seen nothing.
    pub const fn new() -> Self {
        ReplayWindow { top: 0, seen: 0 }
    }

    /// Whether `ctr` is new: above the highest seen, or within the window and not yet seen.
    /// Check before authenticating, and [`accept`](Self::accept) only after the packet
    /// authenticated, so that forged counters cannot move the window.
    pub fn is_fresh(&self, ctr: u64) -> bool {
        if ctr == 0 {
            return false;
        }
        if ctr > self.top {
            return true;
        }
        let back = self.top - ctr;
        back < Self::WIDTH && self.seen & (1 << back) == 0
    }

    /// Records `ctr` as seen (after it authenticated).
    pub fn accept(&mut self, ctr: u64) {
        if ctr > self.top {
            let shift = ctr - self.top;
            self.seen = if shift >= Self::WIDTH {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = ctr;
        } else {
            let back = self.top - ctr;
            if back < Self::WIDTH {
                self.seen |= 1 << back;
            }
        }
    }

    /// The highest counter accepted so far (0 before any).
    pub fn top(&self) -> u64 {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_takes_each_counter_once_and_forgets_the_ancient() {
        let mut w = ReplayWindow::new();
        assert!(!w.is_fresh(0));
        for c in [1, 2, 5, 3] {
            assert!(w.is_fresh(c), "{c}");
            w.accept(c);
            assert!(!w.is_fresh(c), "{c} again");
        }
        assert!(w.is_fresh(4));
        w.accept(100);
        assert!(!w.is_fresh(36), "fell out of the window");
        assert!(w.is_fresh(37));
        assert!(!w.is_fresh(100));
        w.accept(37);
        assert!(!w.is_fresh(37));
        w.accept(1000);
        assert!(!w.is_fresh(100));
        assert_eq!(w.top(), 1000);
    }

    #[test]
    fn weak_choices_are_named_and_strong_ones_pass() {
        assert_eq!(weakness(KeyType::Aes256Gcm, HashType::Sha256, None), None);
        assert_eq!(
            weakness(KeyType::Aes128Ccm, HashType::Sha384, Some(2048)),
            None
        );
        assert!(weakness(KeyType::Aes256Cbc, HashType::Sha256, None).is_some());
        assert!(weakness(KeyType::Des3, HashType::Sha256, None).is_some());
        assert!(weakness(KeyType::Aes256Gcm, HashType::Sha1, None).is_some());
        assert!(weakness(KeyType::Aes256Gcm, HashType::Sha256, Some(1024)).is_some());
    }
}
