//! The receiver's configuration: who it is, whom it accepts, its keys, its response proxy
//! and its heartbeats.

use super::*;

/// What the receiver needs to know about itself.
#[derive(Debug, Clone)]
pub struct Config {
    /// This client's UID (never 0 or 0xFFFFFFFF).
    pub uid: u32,
    /// Public addresses whose ANNOUNCEs are accepted; empty accepts any. An ANNOUNCE with a zero
    /// public address (unicast mode) is always accepted.
    pub public_addrs: Vec<IpAddr, MAX_PUBLIC_ADDRS>,
    /// Refuse unencrypted sessions (`-E`).
    pub require_encryption: bool,
    /// Accept weak sessions ([`weakness`](crate::session::security::weakness)): 3DES, CBC, SHA-1, RSA
    /// under 2048 bits. Off by default; such sessions are refused with an ABORT.
    pub allow_weak: bool,
    /// Servers to accept (`-S`); empty accepts any. An entry with a fingerprint accepts only a
    /// server whose key has it (and so only encrypted sessions from it).
    pub servers: Vec<ServerEntry, MAX_SERVERS>,
    /// Our EC keys (`-k`/`-K`), used for client authentication on sessions whose server key is
    /// on the same curve. RSA keys come through the receiver's [`RsaKeys`].
    pub ec_keys: Vec<EcPrivateKey, MAX_EC_KEYS>,
    /// Entropy for client randoms, premasters and ephemeral ECDH keys (fresh per run).
    pub seed: [u8; 32],
    /// A response proxy (`-R proxy[/FP]`) that every response goes to, and whose keys the key
    /// exchange of encrypted sessions runs against (digest §7).
    pub response_proxy: Option<ResponseProxy>,
    /// Proxies to send heartbeats to (`-H`): the pinhole through a site's firewall or NAT
    /// through which a server proxy (`uftpproxyd -s fp=FP`) reaches a receiver that has no
    /// client proxy in front of it, learning its address from the heartbeats.
    pub heartbeat_hosts: Vec<SocketAddr, MAX_HB_HOSTS>,
    /// Seconds between heartbeats (`-h`, default 20 s; the first goes out at once).
    pub heartbeat_interval: Duration,
    /// The key that signs a heartbeat when a proxy challenges it: the first of `-k`, as
    /// uftpd's (an RSA one is an index into the receiver's [`RsaKeys`]). Without one the
    /// heartbeats stay plain, and a proxy that pins a fingerprint refuses them.
    pub heartbeat_key: Option<OwnKey>,
}

/// A response proxy (`uftpd -R proxy[/FP]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseProxy {
    /// Where responses and KEY_REQ go.
    pub addr: SocketAddr,
    /// The fingerprint its key must have. Without one, PROXY_KEY is taken only from `addr`'s
    /// IP address.
    pub fingerprint: Option<Fingerprint>,
}

/// How often KEY_REQ is repeated until a PROXY_KEY answers it (uftpd 4.10.2: every 5 s).
pub const KEY_REQ_INTERVAL: Duration = Duration::from_secs(5);

impl Config {
    /// A receiver with UID `uid`, accepting any public address and any server, unencrypted or
    /// strongly encrypted, with no keys of its own; `seed` must be fresh entropy.
    pub fn new(uid: u32, seed: [u8; 32]) -> Self {
        Config {
            uid,
            public_addrs: Vec::new(),
            require_encryption: false,
            allow_weak: false,
            servers: Vec::new(),
            ec_keys: Vec::new(),
            seed,
            response_proxy: None,
            heartbeat_hosts: Vec::new(),
            heartbeat_interval: DEFAULT_HB_INTERVAL,
            heartbeat_key: None,
        }
    }
}
