//! What the caller chooses: the session's configuration, the items it sends and the block
//! source they are read from, and the errors a configuration or a command can meet; and the
//! construction of a [`Sender`] from them.

use super::*;

/// Session parameters, chosen by the caller (the group ID is random per session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// The sender's UID (`-U`); neither 0 nor 0xFFFFFFFF.
    pub src_id: u32,
    /// Session ID (random per session).
    pub group_id: u32,
    /// Restart instance (0 for a first run).
    pub group_inst: u8,
    /// Where ANNOUNCE goes (`-M` and `-p`).
    pub public_addr: SocketAddr,
    /// Where everything else multicast goes (`-P` and `-p`).
    pub private_addr: SocketAddr,
    /// Unicast mode (`-M` names a host): ANNOUNCE carries zero addresses and every packet
    /// goes to `public_addr`.
    pub unicast: bool,
    /// Data bytes per FILESEG (`-b`, 512–8800).
    pub blocksize: u16,
    /// Retry count for every round (`-s`, 10–50).
    pub robust: u8,
    /// Initial GRTT (`-r init`).
    pub grtt_init: Duration,
    /// Smallest GRTT (`-r :min`).
    pub grtt_min: Duration,
    /// Largest GRTT (`-r ::max`).
    pub grtt_max: Duration,
    /// Fixed data rate in bytes per second, or `None` for unpaced (`-R -1`); not used under
    /// TFMCC.
    pub rate: Option<u64>,
    /// Congestion control (`-C`): the fixed `rate`, or TFMCC.
    pub cc: CongestionControl,
    /// Passes after which clients still incomplete are aborted (`-a`).
    pub max_passes: u16,
    /// With `rate` `None`: start unpaced and cap the rate at what the slowest kept client
    /// receives (see `auto_rate`); our default when `-R` is not given.
    pub adaptive_rate: bool,
    /// A client whose STATUS misses more than this percentage of a section gets a strike
    /// (`-N`, 0–100; 100 never strikes).
    pub max_nak_pct: u8,
    /// Strikes after which the client is dropped (`-m`, 1–10).
    pub max_nak_count: u8,
    /// Sync mode (`-z`, `-Z`; digest §1.7), announced in ANNOUNCE's flags.
    pub sync: SyncMode,
}

/// Sync mode, as the ANNOUNCE announces it (digest §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every file is received (the default).
    #[default]
    Off,
    /// `-z`: receivers keep a copy as new as the incoming one (COMPLETE status SKIPPED) and
    /// replace older ones (OVERWRITE).
    Sync,
    /// `-Z`: receivers answer each file at once with the status sync mode would give it, and
    /// nothing is sent or stored.
    Preview,
}

impl SyncMode {
    /// The ANNOUNCE flags that announce it.
    pub fn announce_flags(self) -> u8 {
        match self {
            SyncMode::Off => 0,
            SyncMode::Sync => ANNOUNCE_FLAG_SYNC_MODE,
            SyncMode::Preview => ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW,
        }
    }
}

impl SenderConfig {
    /// uftp's defaults for everything but the identities and addresses.
    pub fn new(
        src_id: u32,
        group_id: u32,
        public_addr: SocketAddr,
        private_addr: SocketAddr,
    ) -> Self {
        SenderConfig {
            src_id,
            group_id,
            group_inst: 0,
            public_addr,
            private_addr,
            unicast: false,
            blocksize: 1300,
            robust: 20,
            grtt_init: Duration::from_millis(500),
            grtt_min: Duration::from_millis(10),
            grtt_max: Duration::from_secs(15),
            rate: Some(128_000),
            cc: CongestionControl::None,
            max_passes: 65535,
            adaptive_rate: false,
            max_nak_pct: 100,
            max_nak_count: 1,
            sync: SyncMode::Off,
        }
    }
}

/// A configuration the sender refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Block size outside 512–8800.
    Blocksize,
    /// Robustness outside 10–50.
    Robust,
    /// `min ≤ init ≤ max` does not hold, or a GRTT is outside 1 ms–1000 s.
    Grtt,
    /// Source ID or a listed client ID is 0 or 0xFFFFFFFF.
    BadId,
    /// More listed clients than the table holds.
    TooManyClients,
    /// Public and private addresses are of different families.
    MixedFamilies,
    /// A rate of 0, TFMCC limits of 0 or with `min` above `max`, or `max_passes` 0.
    Rate,
    /// The cipher is not AES-CBC, AES-GCM or AES-CCM (DES, 3DES and `none` are not
    /// implemented).
    UnsupportedCipher,
    /// The hash is not SHA-1, SHA-256, SHA-384 or SHA-512.
    UnsupportedHash,
    /// The key exchange is not `rsa`, `ecdh_rsa` or `ecdh_ecdsa`.
    UnsupportedKeyExchange,
    /// The ECDH curve is not P-256 or P-384.
    UnsupportedCurve,
    /// The server key does not suit the key exchange: `rsa` and `ecdh_rsa` need an RSA key,
    /// `ecdh_ecdsa` an EC one.
    KeyMismatch,
    /// The RSA key is not one the [`RsaKeys`] holds (or over 4096 bits, or there is no RSA).
    RsaKey,
    /// `-w keyex` (an RSA or ECDSA signature on every ENCRYPTED packet) is not implemented.
    KeyexSignatures,
    /// A CBC cipher needs HMAC signatures (`-w hmac`).
    SigType,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::Blocksize => "block size must be 512-8800",
            ConfigError::Robust => "robustness must be 10-50",
            ConfigError::Grtt => "GRTT values must satisfy 0.001 <= min <= init <= max <= 1000",
            ConfigError::BadId => "IDs must not be 0 or 0xFFFFFFFF",
            ConfigError::TooManyClients => "too many clients for the client table",
            ConfigError::MixedFamilies => "public and private addresses must be the same IP family",
            ConfigError::Rate => "rate and max passes must be positive",
            ConfigError::UnsupportedCipher => {
                "unsupported cipher: use aes128-cbc, aes256-cbc, aes128-gcm, aes256-gcm, \
                 aes128-ccm or aes256-ccm"
            }
            ConfigError::UnsupportedHash => "unsupported hash: use sha1, sha256, sha384 or sha512",
            ConfigError::UnsupportedKeyExchange => {
                "unsupported key exchange: use rsa, ecdh_rsa or ecdh_ecdsa"
            }
            ConfigError::UnsupportedCurve => "unsupported EC curve: use prime256v1 or secp384r1",
            ConfigError::KeyMismatch => {
                "server key does not suit the key exchange (rsa and ecdh_rsa need an RSA key, \
                 ecdh_ecdsa an EC key)"
            }
            ConfigError::RsaKey => {
                "RSA server key unavailable (missing, over 4096 bits, or no RSA)"
            }
            ConfigError::KeyexSignatures => {
                "signature type keyex is not supported: use hmac, or a GCM/CCM cipher"
            }
            ConfigError::SigType => "CBC ciphers need HMAC signatures (-w hmac)",
        })
    }
}

impl core::error::Error for ConfigError {}

/// A command given at the wrong time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// The sender is not waiting for an item (see [`Sender::wants_file`]).
    Busy,
    /// Name and link together exceed 300 bytes, the name is empty, or either holds a NUL.
    BadName,
    /// The file has more blocks or sections than the protocol can number.
    TooLarge,
}

impl core::fmt::Display for CommandError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CommandError::Busy => "the sender is not ready for this command",
            CommandError::BadName => "bad item name (empty, NUL, or name+link over 300 bytes)",
            CommandError::TooLarge => "file too large for the protocol at this block size",
        })
    }
}

impl core::error::Error for CommandError {}

/// One item to send: a regular file, an (empty) directory or a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileItem<'a> {
    /// Path as the client should see it, `/`-separated.
    pub name: &'a [u8],
    /// Item type.
    pub ftype: FileType,
    /// Size in bytes (0 for anything but a regular file).
    pub size: u64,
    /// Modification time, UNIX seconds.
    pub mtime: u32,
    /// Symlink target (empty unless `ftype` is a symlink).
    pub link: &'a [u8],
}

/// The driver could not read file data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError;

/// Where FILESEG data and the resend map of the current file come from (the driver's).
pub trait BlockSource {
    /// Fills all of `buf` with the bytes of file `file_id` starting at `offset`.
    fn read_block(&mut self, file_id: u16, offset: u64, buf: &mut [u8]) -> Result<(), ReadError>;
    /// The current file's "to resend" bitmap, at least [`FileLayout::bitmap_len`] bytes and
    /// all zero when the file starts. The sender sets and clears bits in it.
    fn resend_map(&mut self) -> &mut [u8];
}

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    pub(super) fn build(
        config: SenderConfig,
        allowed: impl Iterator<Item = ClientPin> + Clone,
        proxies: &[ClientPin],
        security: Option<&SenderSecurity>,
        rsa: R,
    ) -> Result<Self, ConfigError> {
        if !BLOCKSIZE_RANGE.contains(&config.blocksize) {
            return Err(ConfigError::Blocksize);
        }
        if !ROBUST_RANGE.contains(&config.robust) {
            return Err(ConfigError::Robust);
        }
        let ms = Duration::from_millis(1);
        let ks = Duration::from_secs(1000);
        if !(ms <= config.grtt_min
            && config.grtt_min <= config.grtt_init
            && config.grtt_init <= config.grtt_max
            && config.grtt_max <= ks)
        {
            return Err(ConfigError::Grtt);
        }
        let bad = |id: u32| id == 0 || id == u32::MAX;
        if bad(config.src_id)
            || allowed.clone().any(|p| bad(p.id))
            || proxies.iter().any(|p| bad(p.id))
        {
            return Err(ConfigError::BadId);
        }
        if config.public_addr.is_ipv4() != config.private_addr.is_ipv4() {
            return Err(ConfigError::MixedFamilies);
        }
        let bad_limits = match config.cc {
            CongestionControl::None => false,
            CongestionControl::Tfmcc(l) => {
                [l.min, l.init, l.max].contains(&Some(0))
                    || matches!((l.min, l.max), (Some(a), Some(b)) if a > b)
            }
        };
        if config.rate == Some(0) || config.max_passes == 0 || bad_limits {
            return Err(ConfigError::Rate);
        }
        let sec = match security {
            Some(s) => {
                let pinned = allowed.clone().any(|p| p.fingerprint.is_some())
                    || proxies.iter().any(|p| p.fingerprint.is_some());
                Some(ServerKeys::new(s, pinned, &rsa, &config)?)
            }
            None => None,
        };
        let mut clients = Vec::new();
        let mut peers = Vec::new();
        let mut closed = false;
        for pin in allowed {
            closed = true;
            if clients.iter().any(|c: &Client| c.id == pin.id) {
                continue;
            }
            let mut c = Client::new(pin.id, None, ClientState::Invited);
            c.pin = pin.fingerprint;
            clients.push(c).map_err(|_| ConfigError::TooManyClients)?;
            if sec.is_some() {
                peers
                    .push(PeerKeys::new())
                    .map_err(|_| ConfigError::TooManyClients)?;
            }
        }
        for pin in proxies {
            if clients.iter().any(|c: &Client| c.id == pin.id) {
                // Listed as a client and as a proxy: a proxy it is.
                if let Some(c) = clients.iter_mut().find(|c| c.id == pin.id) {
                    c.role = Role::Proxy;
                    c.pin = pin.fingerprint.or(c.pin);
                }
                continue;
            }
            let mut c = Client::new(pin.id, None, ClientState::Invited);
            c.pin = pin.fingerprint;
            c.role = Role::Proxy;
            clients.push(c).map_err(|_| ConfigError::TooManyClients)?;
            if sec.is_some() {
                peers
                    .push(PeerKeys::new())
                    .map_err(|_| ConfigError::TooManyClients)?;
            }
        }
        let mut by_id: Vec<(u32, u32), CLIENTS> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, i as u32))
            .collect();
        by_id.sort_unstable();
        Ok(Sender {
            config,
            closed,
            clients,
            by_id,
            peers,
            sec,
            rsa,
            phase: Phase::Announce {
                round: 0,
                late_until: None,
            },
            next_round: 0,
            round_started: 0,
            round: RoundEmit {
                pending: false,
                cursor: 0,
            },
            grtt_us: config.grtt_init.as_micros() as u64,
            measured: false,
            seq: 0,
            next_send_ns: 0,
            auto: auto_rate::AutoRate::default(),
            file_id: 0,
            name: Vec::new(),
            link: Vec::new(),
            ftype: FileType::Regular,
            mtime: 0,
            layout: FileLayout::new(0, config.blocksize).unwrap_or(FileLayout {
                size: 0,
                blocksize: config.blocksize,
                blocks: 0,
                sections: 0,
                big: 0,
                small: 0,
                big_sections: 0,
            }),
            stats: FileStats::default(),
            to_resend: 0,
            file_acked: false,
            any_fileinfo_ack: false,
            first_file: true,
            files: 0,
            bytes: 0,
            registered: 0,
            outcome: None,
            aborts: Deque::new(),
            events: Deque::new(),
            owed: false,
            event_from: usize::MAX,
            counters: Counters::default(),
            cc: match config.cc {
                CongestionControl::None => None,
                CongestionControl::Tfmcc(limits) => Some(SenderCc::new(
                    limits,
                    config.blocksize,
                    config.grtt_init.as_micros() as u64,
                )),
            },
            cong_ctrl_due: false,
            cc_cursor: 0,
        })
    }
}
