//! `uftp`'s command line: uftp 4.10.2's option letters and meanings (digest §8.1), parsed
//! getopt-style (`-R 1000`, `-R1000`, `-lq`), plus one long option of our own,
//! `--allow-weak`. Options not implemented yet are refused with one line that names them, never
//! ignored.
//!
//! Encryption (`-Y`, digest §5.1) keeps uftp's letters but not all of its defaults: the hash is
//! SHA-256 (uftp: SHA-1) and the key exchange ECDH-ECDSA on P-256 (uftp: RSA), and weak choices
//! (CBC, SHA-1, RSA keys under 2048 bits) need `--allow-weak`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use proto_core::crypto::{CurveId, Fingerprint};
use proto_core::session::security::{is_aead, weakness, ClientPin};
use proto_core::session::sender::{CongestionControl, SyncMode, TfmccLimits};
use proto_core::wire::{HashType, KeyExchange, KeyType, SigType};

use crate::cli::{parse_id, Arg, Complete, Getopt, GetoptError, Opt, Page};
use crate::keys::{KeySpec, NamedCurve, RSA_MAX_BITS, RSA_MIN_BITS};

/// A command line uftp would refuse; the message is one line, without the `uftp: ` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// Everything the command line chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `-R`: bytes per second (Kbps × 128), `None` for `-R -1` or no `-R`.
    pub rate: Option<u64>,
    /// `-C none|tfmcc[:min=K][:init=K][:max=K]` (the limits in bytes per second).
    pub cc: CongestionControl,
    /// No `-R`: the adaptive default (start unpaced, slow down for the slowest kept receiver).
    pub adaptive: bool,
    /// `-N`: a receiver missing more than this percentage of a section gets a strike.
    pub max_nak_pct: u8,
    /// `-m`: strikes before the receiver is dropped.
    pub max_nak_count: u8,
    /// `-r init[:min:max]`.
    pub grtt: (Duration, Duration, Duration),
    /// `-s`.
    pub robust: u8,
    /// `-M`.
    pub public_addr: IpAddr,
    /// `-P`, with `x` octets still to be randomised (IPv4) — see [`Options::private_pattern`].
    pub private_pattern: Option<String>,
    /// `-p`.
    pub port: u16,
    /// `-u` (0: any).
    pub src_port: u16,
    /// `-I`: interface name or address.
    pub interface: Option<String>,
    /// `-t`.
    pub ttl: u32,
    /// `-B`.
    pub bufsize: usize,
    /// `-b`.
    pub blocksize: u16,
    /// `-U`.
    pub uid: Option<u32>,
    /// `-H`: closed group, with the key fingerprints `-H @file` pins (`ID|FP` lines).
    pub hosts: Vec<ClientPin>,
    /// `-j`: proxies expected to answer for clients (`ID[|FP]` lines); in a closed group, the
    /// only proxies admitted.
    pub proxies: Vec<ClientPin>,
    /// `-L`.
    pub logfile: Option<PathBuf>,
    /// `-g`: roll the `-L` file over at this many megabytes (10^6 bytes; 1–1024).
    pub log_max_mb: Option<u32>,
    /// `-n`: archived log files kept when rolling (1–1000, default 5).
    pub log_keep: u32,
    /// `-x` (0–5).
    pub log_level: u8,
    /// `-T`: timestamps on log lines.
    pub timestamps: bool,
    /// `-D`.
    pub dest_name: Option<String>,
    /// `-o`: `-D` names a directory even for one item.
    pub dest_is_dir: bool,
    /// `-E`.
    pub base_dirs: Vec<PathBuf>,
    /// `-l`: follow symlinks.
    pub follow_links: bool,
    /// `-q`: quit as soon as a client fails.
    pub quit_on_fail: bool,
    /// `-a`.
    pub max_passes: u16,
    /// Files and directories, from the arguments or `-i`.
    pub paths: Vec<PathBuf>,
    /// `-i`: read paths from this file (`-` for stdin).
    pub list_file: Option<String>,
    /// `-Y`: session cipher; [`KeyType::None`] (the default) for an unencrypted session.
    pub keytype: KeyType,
    /// `-h`: session hash (default SHA-256).
    pub hashtype: HashType,
    /// `-w`: [`SigType::Hmac`] or [`SigType::Keyex`]; GCM and CCM ignore it (their tag
    /// authenticates).
    pub sigtype: SigType,
    /// `-e`: key exchange (default ECDH-ECDSA).
    pub keyex: KeyExchange,
    /// `-e …:curve`: the ephemeral ECDH key's curve (default P-256).
    pub ecdh_curve: CurveId,
    /// `-c`: require clients to authenticate (CLIENT_KEY).
    pub client_auth: bool,
    /// `-k`: the server's key file (read; or written with `-K` when it does not exist).
    pub keyfile: Option<PathBuf>,
    /// `-K`: generate the server's key: RSA bits for `rsa`/`ecdh_rsa`, a curve for
    /// `ecdh_ecdsa`.
    pub keygen: Option<KeySpec>,
    /// `--allow-weak`: run weak sessions (logged as such) instead of refusing them.
    pub allow_weak: bool,
    /// `-f`: keep a restart file (see [`restart`](super::restart)) while the session runs, and
    /// leave it when clients failed.
    pub restartable: bool,
    /// `-z` (sync mode) or `-Z` (sync preview).
    pub sync: SyncMode,
    /// `-F`: re-run the session of this restart file for the clients it lists.
    pub restart_file: Option<PathBuf>,
    /// `--json FILE|-`: status events, one JSON object a line (see [`crate::json_status`]).
    pub json: Option<PathBuf>,
    /// `-S`: uftp's status lines go to this file (or to the log for `@LOG`).
    pub status_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate: None,
            cc: CongestionControl::None,
            adaptive: true,
            max_nak_pct: 100,
            max_nak_count: 1,
            grtt: (
                Duration::from_millis(500),
                Duration::from_millis(10),
                Duration::from_secs(15),
            ),
            robust: 20,
            public_addr: IpAddr::from([230, 4, 4, 1]),
            private_pattern: None,
            port: 1044,
            src_port: 0,
            interface: None,
            ttl: 1,
            bufsize: 262_144,
            blocksize: 1300,
            uid: None,
            hosts: Vec::new(),
            proxies: Vec::new(),
            logfile: None,
            log_max_mb: None,
            log_keep: 5,
            log_level: 2,
            timestamps: false,
            dest_name: None,
            dest_is_dir: false,
            base_dirs: Vec::new(),
            follow_links: false,
            quit_on_fail: false,
            max_passes: 65535,
            paths: Vec::new(),
            list_file: None,
            keytype: KeyType::None,
            hashtype: HashType::Sha256,
            sigtype: SigType::Hmac,
            keyex: KeyExchange::EcdhEcdsa,
            ecdh_curve: CurveId::P256,
            client_auth: false,
            keyfile: None,
            keygen: None,
            allow_weak: false,
            restartable: false,
            sync: SyncMode::Off,
            restart_file: None,
            json: None,
            status_file: None,
        }
    }
}

impl Options {
    /// Whether the session is encrypted (`-Y` other than `none`).
    pub fn encrypted(&self) -> bool {
        self.keytype != KeyType::None
    }

    /// Whether the server's key is RSA (`-e rsa` or `ecdh_rsa`) rather than EC.
    pub fn rsa_server_key(&self) -> bool {
        matches!(self.keyex, KeyExchange::Rsa | KeyExchange::EcdhRsa)
    }

    /// The key to generate when no `-k` file is read: `-K`, or the default (P-256 for
    /// `ecdh_ecdsa`; RSA-2048 for `rsa` and `ecdh_rsa`, where uftp makes RSA-512).
    pub fn key_spec(&self) -> KeySpec {
        self.keygen.unwrap_or(if self.rsa_server_key() {
            KeySpec::Rsa(RSA_MAX_BITS)
        } else {
            KeySpec::Ec(NamedCurve::Prime256v1)
        })
    }

    /// Checks the session against the weakness policy, with `rsa_bits` the size of the
    /// server's RSA key if it has one. `Ok(Some(why))`: weak, but `--allow-weak` lets it run;
    /// `Err`: weak and refused, saying why and how to opt in.
    pub fn check_weak(&self, rsa_bits: Option<usize>) -> Result<Option<&'static str>, UsageError> {
        if !self.encrypted() {
            return Ok(None);
        }
        match weakness(self.keytype, self.hashtype, rsa_bits) {
            None => Ok(None),
            Some(why) if self.allow_weak => Ok(Some(why)),
            Some(why) => err(format!(
                "weak encryption refused: {why} (give --allow-weak to run it anyway, or choose \
                 e.g. -Y aes256-gcm -h sha256 -e ecdh_ecdsa)"
            )),
        }
    }
}

/// Options uftp 4.10.2 has that this implementation refuses for now, with what they do.
const NOT_YET: &[(char, &str)] = &[
    ('y', "Windows system key store"),
    ('W', "transmit weight"),
    ('X', "exclude file"),
    ('Q', "DSCP"),
];

/// uftp's words for what [`crate::cli::Getopt`] finds wrong: where to look next.
fn getopt_error(e: GetoptError) -> UsageError {
    let hint = match &e {
        GetoptError::Unknown(o) if o.starts_with("--") => {
            let longs: Vec<String> = PAGE
                .options
                .iter()
                .filter(|o| o.short.is_none())
                .filter_map(|o| {
                    let l = o.long?;
                    Some(o.value.map_or(l.to_string(), |v| format!("{l} {v}")))
                })
                .collect();
            format!(" (long options: --{})", longs.join(", --"))
        }
        GetoptError::Unknown(_) => " (see man uftp)".to_string(),
        GetoptError::NeedsValue(o) if o == "--json" => {
            " (a file, or - for standard output)".to_string()
        }
        _ => String::new(),
    };
    UsageError(format!("{e}{hint}"))
}

/// Parses uftp's arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, UsageError> {
    let mut o = Options::default();
    // `-K`'s meaning depends on `-e`, which may come after it.
    let mut keygen: Option<String> = None;
    for item in Getopt::new(&PAGE, args) {
        match item.map_err(getopt_error)? {
            Arg::Operand(path) => o.paths.push(PathBuf::from(path)),
            Arg::Long("allow-weak", _) => o.allow_weak = true,
            Arg::Long("json", v) => o.json = v.map(PathBuf::from),
            Arg::Long(name, _) => return err(format!("--{name} is answered before parsing")),
            Arg::Short(c, v) => apply(&mut o, c, v.as_deref(), &mut keygen)?,
        }
    }
    if let Some(spec) = keygen {
        o.keygen = Some(key_spec(&spec, o.keyex)?);
    }
    if o.encrypted() && o.sigtype == SigType::Keyex && !is_aead(o.keytype) {
        return err(
            "-w keyex (an RSA or ECDSA signature on every packet) is not implemented: use -w hmac, \
             or a GCM or CCM cipher, whose tag authenticates every packet",
        );
    }
    if o.encrypted() {
        // The key's size is known here unless it comes from a file (checked once loaded).
        let rsa_bits = match (o.keyfile.is_some(), o.key_spec()) {
            (false, KeySpec::Rsa(bits)) if o.rsa_server_key() => Some(bits),
            _ => None,
        };
        o.check_weak(rsa_bits)?;
    }
    if o.restart_file.is_some() && o.sync != SyncMode::Off {
        return err("-F cannot be used with -z or -Z: receivers refuse sync mode in a restart");
    }
    if o.restart_file.is_some() && !o.hosts.is_empty() {
        return err("-F and -H cannot be used together: the restart file lists the clients");
    }
    if o.paths.is_empty() && o.list_file.is_none() && o.restart_file.is_none() {
        return err("no files to send (give files or directories, or -i list_file)");
    }
    if o.public_addr.is_ipv6() && o.private_pattern.is_none() && o.public_addr.is_multicast() {
        return err("an IPv6 -M address needs an IPv6 -P address");
    }
    Ok(o)
}

fn number<T: std::str::FromStr>(c: char, v: &str) -> Result<T, UsageError> {
    v.trim()
        .parse()
        .map_err(|_| UsageError(format!("-{c}: invalid number {v:?}")))
}

/// `-C none` or `-C tfmcc[:min=K][:init=K][:max=K]`, in any order, rates in Kbps (× 128 bytes
/// per second, as `-R`).
fn congestion_control(v: &str) -> Result<CongestionControl, UsageError> {
    let mut parts = v.split(':');
    match parts.next().unwrap_or("") {
        "none" if v == "none" => return Ok(CongestionControl::None),
        "tfmcc" => {}
        _ => {
            return err(format!(
                "-C: unknown congestion control {v:?} (none or tfmcc)"
            ))
        }
    }
    let mut limits = TfmccLimits::default();
    for part in parts {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let slot = match key {
            "min" => &mut limits.min,
            "init" => &mut limits.init,
            "max" => &mut limits.max,
            _ => {
                return err(format!(
                    "-C: unknown TFMCC parameter {part:?} (min=, init= or max=)"
                ))
            }
        };
        let kbps: u64 = match value.trim().parse() {
            Ok(k) if k > 0 => k,
            _ => {
                return err(format!(
                    "-C: {key}= needs a positive rate in Kbps, not {value:?}"
                ))
            }
        };
        *slot = Some(kbps.saturating_mul(128));
    }
    if let (Some(min), Some(max)) = (limits.min, limits.max) {
        if min > max {
            return err("-C: min= is above max=");
        }
    }
    Ok(CongestionControl::Tfmcc(limits))
}

fn seconds(c: char, v: &str) -> Result<Duration, UsageError> {
    let s: f64 = number(c, v)?;
    if !(0.001..=1000.0).contains(&s) {
        return err(format!("-{c}: GRTT values must be 0.001-1000 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The value of a code space (`KeyType`, `HashType`, …) whose `name()` is `v`, among `known`.
fn by_name<T: Copy>(known: &[T], name: impl Fn(T) -> &'static str, v: &str) -> Option<T> {
    known.iter().copied().find(|&k| name(k) == v)
}

/// An EC curve this build computes on (P-256, P-384), by uftp's name for it.
fn curve(v: &str) -> Result<NamedCurve, String> {
    match NamedCurve::from_name(v) {
        Some(c @ (NamedCurve::Prime256v1 | NamedCurve::Secp384r1)) => Ok(c),
        Some(c) => Err(format!(
            "EC curve {} is not supported here (prime256v1 and secp384r1 are)",
            c.name()
        )),
        None => Err(format!(
            "unknown EC curve {v:?} (prime256v1 and secp384r1 are supported)"
        )),
    }
}

/// `-K`: RSA bits (`2048`, or `rsa:2048`) for an RSA server key, a curve (`prime256v1`, or
/// `ec:prime256v1`) for ECDH-ECDSA.
fn key_spec(v: &str, keyex: KeyExchange) -> Result<KeySpec, UsageError> {
    let v = v.trim();
    if matches!(keyex, KeyExchange::Rsa | KeyExchange::EcdhRsa) {
        let bits: usize = v.strip_prefix("rsa:").unwrap_or(v).parse().map_err(|_| {
            UsageError(format!(
                "-K: {v:?} is not an RSA key size in bits (with -e rsa or ecdh_rsa)"
            ))
        })?;
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return err(format!(
                "-K: RSA key size must be {RSA_MIN_BITS}-{RSA_MAX_BITS} bits"
            ));
        }
        Ok(KeySpec::Rsa(bits))
    } else {
        let c = curve(v.strip_prefix("ec:").unwrap_or(v))
            .map_err(|e| UsageError(format!("-K: {e} (with -e ecdh_ecdsa, -K names a curve)")))?;
        Ok(KeySpec::Ec(c))
    }
}

/// `-H @file`: one client per line, `ID` or `ID|FP`; blank lines and `#` comments skipped.
fn host_file(file: &str) -> Result<Vec<ClientPin>, UsageError> {
    pin_file("-H", "host", file)
}

/// Reads a list of `ID[|FINGERPRINT]` lines (`-H @file`, `-j file`); `opt` and `what` name it
/// in errors.
fn pin_file(opt: &str, what: &str, file: &str) -> Result<Vec<ClientPin>, UsageError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| UsageError(format!("{opt}: cannot read {file}: {e}")))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split('|').map(str::trim);
        let id = fields.next().unwrap_or_default();
        let id = parse_id(id).ok_or_else(|| {
            UsageError(format!("{opt} {file}:{}: invalid {what} ID {id:?}", n + 1))
        })?;
        let fingerprint = match fields.next().filter(|f| !f.is_empty()) {
            Some(fp) => Some(Fingerprint::parse(fp).map_err(|_| {
                UsageError(format!(
                    "{opt} {file}:{}: invalid fingerprint {fp:?} (20 ':'-separated hex bytes)",
                    n + 1
                ))
            })?),
            None => None,
        };
        out.push(ClientPin { id, fingerprint });
    }
    Ok(out)
}

fn apply(
    o: &mut Options,
    c: char,
    v: Option<&str>,
    keygen: &mut Option<String>,
) -> Result<(), UsageError> {
    match (c, v) {
        (_, None) => flag(o, c),
        (_, Some(v)) => value(o, c, v, keygen),
    }
}

/// Sets a flag of the page.
fn flag(o: &mut Options, c: char) -> Result<(), UsageError> {
    match c {
        'l' => o.follow_links = true,
        'T' => o.timestamps = true,
        'q' => o.quit_on_fail = true,
        'c' => o.client_auth = true,
        'f' => o.restartable = true,
        'z' if o.sync == SyncMode::Off => o.sync = SyncMode::Sync,
        'z' => {}
        'Z' => o.sync = SyncMode::Preview,
        'o' => o.dest_is_dir = true,
        _ => return err(format!("unknown option -{c} (see man uftp)")),
    }
    Ok(())
}

/// Sets an option of the page that has a value.
fn value(o: &mut Options, c: char, v: &str, keygen: &mut Option<String>) -> Result<(), UsageError> {
    match c {
        'R' => {
            let kbps: i64 = number(c, v)?;
            o.adaptive = false;
            o.rate = match kbps {
                -1 => None,
                k if k > 0 => Some(k as u64 * 128),
                _ => return err("-R: rate must be positive Kbps, or -1 for unpaced"),
            }
        }
        'C' => o.cc = congestion_control(v)?,
        'N' => {
            o.max_nak_pct = match number::<u8>(c, v) {
                Ok(n) if n <= 100 => n,
                _ => return err("-N: max_nak_pct must be 0-100"),
            }
        }
        'm' => {
            o.max_nak_count = match number::<u8>(c, v) {
                Ok(n) if (1..=10).contains(&n) => n,
                _ => return err("-m: max_nak_count must be 1-10"),
            }
        }
        'r' => {
            let parts: Vec<&str> = v.split(':').collect();
            let init = seconds(c, parts[0])?;
            let (min, max) = match parts.len() {
                1 => (o.grtt.1.min(init), o.grtt.2.max(init)),
                3 => (seconds(c, parts[1])?, seconds(c, parts[2])?),
                _ => return err("-r: use init or init:min:max"),
            };
            if !(min <= init && init <= max) {
                return err("-r: need min <= init <= max");
            }
            o.grtt = (init, min, max);
        }
        's' => {
            o.robust = number(c, v)?;
            if !(10..=50).contains(&o.robust) {
                return err("-s: robustness must be 10-50");
            }
        }
        'M' => {
            o.public_addr = v
                .parse()
                .map_err(|_| UsageError(format!("-M: invalid address {v:?}")))?
        }
        'P' => o.private_pattern = Some(v.to_string()),
        'p' => {
            o.port = crate::cli::parse_port(v.trim())
                .ok_or_else(|| UsageError(format!("-p: invalid port {v:?} (1-65535)")))?
        }
        'u' => o.src_port = number(c, v)?,
        'I' => o.interface = Some(v.to_string()),
        't' => {
            o.ttl = number(c, v)?;
            if !(1..=255).contains(&o.ttl) {
                return err("-t: TTL must be 1-255");
            }
        }
        'B' => {
            o.bufsize = number(c, v)?;
            if !(65_536..=104_857_600).contains(&o.bufsize) {
                return err("-B: buffer size must be 65536-104857600");
            }
        }
        'b' => {
            o.blocksize = number(c, v)?;
            if !(512..=8800).contains(&o.blocksize) {
                return err("-b: block size must be 512-8800");
            }
        }
        'U' => {
            o.uid = Some(parse_id(v).ok_or_else(|| UsageError(format!("-U: invalid UID {v:?}")))?)
        }
        'a' => {
            o.max_passes = number(c, v)?;
            if o.max_passes == 0 {
                return err("-a: max passes must be at least 1");
            }
        }
        'x' => {
            o.log_level = number(c, v)?;
            if o.log_level > 5 {
                return err("-x: log level must be 0-5");
            }
        }
        'H' => {
            let list = match v.strip_prefix('@') {
                Some(file) => host_file(file)?,
                None => v
                    .split(',')
                    .map(|h| {
                        parse_id(h)
                            .map(|id| ClientPin {
                                id,
                                fingerprint: None,
                            })
                            .ok_or_else(|| UsageError(format!("-H: invalid host ID {h:?}")))
                    })
                    .collect::<Result<_, _>>()?,
            };
            for pin in list {
                match o.hosts.iter_mut().find(|p| p.id == pin.id) {
                    Some(p) if pin.fingerprint.is_some() => *p = pin,
                    Some(_) => {}
                    None => o.hosts.push(pin),
                }
            }
        }
        'F' => o.restart_file = Some(PathBuf::from(v)),
        'j' => {
            for pin in pin_file("-j", "proxy", v)? {
                if o.proxies.iter().any(|p| p.id == pin.id) {
                    return err(format!("-j {v}: proxy 0x{:08X} listed twice", pin.id));
                }
                o.proxies.push(pin);
            }
        }
        'Y' => {
            use KeyType as K;
            o.keytype = match by_name(
                &[K::None, K::Des, K::Des3, K::Aes128Cbc, K::Aes256Cbc, K::Aes128Gcm, K::Aes256Gcm, K::Aes128Ccm, K::Aes256Ccm],
                K::name,
                v.trim(),
            ) {
                Some(K::Des | K::Des3) => {
                    return err(format!(
                        "-Y {v}: DES and 3DES are not implemented (use aes256-gcm)"
                    ))
                }
                Some(k) => k,
                None => return err(format!(
                    "-Y: unknown key type {v:?} (aes128-gcm, aes256-gcm, aes128-ccm, aes256-ccm, aes128-cbc, aes256-cbc or none)"
                )),
            }
        }
        'h' => {
            use HashType as H;
            o.hashtype = by_name(
                &[H::Sha1, H::Sha256, H::Sha384, H::Sha512],
                H::name,
                v.trim(),
            )
            .ok_or_else(|| {
                UsageError(format!(
                    "-h: unknown hash {v:?} (sha1, sha256, sha384 or sha512)"
                ))
            })?
        }
        'w' => {
            o.sigtype = by_name(&[SigType::Hmac, SigType::Keyex], SigType::name, v.trim())
                .ok_or_else(|| {
                    UsageError(format!("-w: unknown signature type {v:?} (hmac or keyex)"))
                })?
        }
        'e' => {
            use KeyExchange as X;
            let (kx, c) = match v.trim().split_once(':') {
                Some((kx, c)) => (kx, Some(c)),
                None => (v.trim(), None),
            };
            o.keyex =
                by_name(&[X::Rsa, X::EcdhRsa, X::EcdhEcdsa], X::name, kx).ok_or_else(|| {
                    UsageError(format!(
                    "-e: unknown key exchange {kx:?} (rsa, ecdh_rsa[:curve] or ecdh_ecdsa[:curve])"
                ))
                })?;
            o.ecdh_curve = match c {
                Some(_) if o.keyex == X::Rsa => {
                    return err("-e rsa takes no curve (ecdh_rsa:curve or ecdh_ecdsa:curve do)")
                }
                Some(c) => CurveId::from(
                    curve(c)
                        .map_err(|e| UsageError(format!("-e: {e}")))?
                        .tls_id(),
                ),
                None => CurveId::P256,
            };
        }
        'k' => o.keyfile = Some(PathBuf::from(v)),
        'K' => *keygen = Some(v.to_string()),
        'L' => o.logfile = Some(PathBuf::from(v)),
        'g' => {
            o.log_max_mb = Some(
                v.parse()
                    .ok()
                    .filter(|m| (1..=1024).contains(m))
                    .ok_or_else(|| {
                        UsageError(format!("invalid log size `{v}` for -g (1-1024 MB)"))
                    })?,
            )
        }
        'n' => {
            o.log_keep = v
                .parse()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| UsageError(format!("invalid log count `{v}` for -n (1-1000)")))?
        }
        'S' => o.status_file = Some(PathBuf::from(v)),
        'D' => o.dest_name = Some(v.to_string()),
        'E' => o.base_dirs = v.split(',').map(PathBuf::from).collect(),
        'i' => o.list_file = Some(v.to_string()),
        _ => return err(format!("unknown option -{c}")),
    }
    Ok(())
}

/// `uftp`'s options and manual, from which the man page and shell completions are rendered
/// (see [`crate::cli`]); the tests check that the parser takes exactly these letters.
pub const PAGE: Page = Page {
    name: "uftp",
    summary: "send files to many receivers at once over multicast, with UFTP 4 (uftp-rs)",
    operands: "file|dir ...",
    complete_operands: Complete::File,
    description: &[
        "uftp is the sender of uftp-rs, a reimplementation of UFTP 4 in Rust. It announces a \
         session on a multicast address, registers the receivers (uftpd) that answer, or those \
         -H lists, sends them the files and directory trees given, repeating what each lost \
         until every receiver has every file or gives up, and prints a summary per receiver. It \
         speaks to uftpd 4.x and takes uftp 4.10.2's options; those it does not carry out are \
         refused by name, never ignored.",
        "Encryption (-Y) keeps uftp's letters but has strong defaults: SHA-256 rather than SHA-1 \
         and ECDH-ECDSA on prime256v1 rather than RSA, and weak choices need --allow-weak.",
        "Two names given as files (or in -i's list) are metafiles, as for uftp 4.10.2: \
         @DELETE:path asks each receiver to delete the item path would be sent as (its last \
         component, or its path below a -E base directory) inside its destination directory; \
         @FREESPACE asks each for the free space of its first destination directory, logged \
         and written to the -S file as FREESPACE;.;BYTES after the receiver's RESULT line.",
    ],
    options: &[
        Opt::value('R', "txrate", Complete::Nothing, "The sending rate in Kbps, or -1 for as fast as possible. Default (unlike uftp's 1000): adaptive, starting unpaced and slowing to what the slowest receiver still in the session receives; a receiver that holds the group back is named in the log (drop such receivers with -N and -m)."),
        Opt::value('L', "logfile", Complete::File, "Log to this file instead of standard error."),
        Opt::value('B', "buf_size", Complete::Nothing, "The socket buffers, 65536 to 104857600 bytes. Default 262144."),
        Opt::value('g', "max_log_size", Complete::Nothing, "With -L: roll the log over once it is larger than this many megabytes (10^6 bytes), 1 to 1024: the log becomes logfile.1, the older archives move up by one, and a new log starts. Default: no rolling."),
        Opt::value('n', "max_log_count", Complete::Nothing, "How many archived logs -g keeps, 1 to 1000; older ones are deleted. Default 5."),
        Opt::value('Y', "keytype", Complete::Words(&["none", "aes128-gcm", "aes256-gcm", "aes128-ccm", "aes256-ccm", "aes128-cbc", "aes256-cbc"]), "The session's cipher: aes256-gcm, aes128-gcm, aes256-ccm, aes128-ccm, aes256-cbc, aes128-cbc or none. Default none (unencrypted). DES and 3DES are not implemented."),
        Opt::value('h', "hashtype", Complete::Words(&["sha1", "sha256", "sha384", "sha512"]), "The hash for key derivation and HMAC: sha256, sha384, sha512 or sha1. Default sha256."),
        Opt::value('w', "sigtype", Complete::Words(&["hmac", "keyex"]), "How non-AEAD ciphers authenticate packets: hmac. keyex (a signature on every packet) is not implemented."),
        Opt::value('e', "keyextype[:curve]", Complete::Words(&["ecdh_ecdsa", "ecdh_rsa", "rsa"]), "The key exchange: ecdh_ecdsa[:curve], ecdh_rsa[:curve] or rsa; curves prime256v1 and secp384r1. Default ecdh_ecdsa:prime256v1."),
        Opt::flag('c', "Require receivers to authenticate with their own keys."),
        Opt::value('m', "max_nak_count", Complete::Nothing, "How many times a receiver may miss more than -N percent of a section before it is dropped, 1-10. Default 1."),
        Opt::value('k', "key_file", Complete::File, "The server's private key (PEM); with -K it is generated into the file when the file does not exist."),
        Opt::value('K', "key_length|curve", Complete::Nothing, "The server key to generate: RSA bits for rsa and ecdh_rsa, a curve for ecdh_ecdsa. Default: prime256v1, or RSA 2048 bits."),
        Opt::flag('l', "Follow symbolic links instead of sending them as links."),
        Opt::flag('T', "Put a timestamp on each line of output."),
        Opt::value('b', "block_size", Complete::Nothing, "Bytes of file data per packet, 512 to 8800. Default 1300."),
        Opt::value('t', "ttl", Complete::Nothing, "The TTL of multicast packets, 1 to 255. Default 1."),
        Opt::value('Q', "dscp", Complete::Nothing, "The DSCP of outgoing packets."),
        Opt::flag('z', "Sync mode: a receiver declines a file whose copy it has is newer than the incoming one, or of the same age and size (RESULT skipped), and replaces an older copy (RESULT overwritten). Not with -F."),
        Opt::flag('Z', "Sync preview: like -z, but nothing is sent: each receiver answers every file at once with what sync mode would do, and the RESULT and STATS lines say so (time and speed estimated from the rate -R)."),
        Opt::value('I', "interface", Complete::Interface, "Send from this interface (a name or address)."),
        Opt::value('p', "port", Complete::Nothing, "The receivers' UDP port. Default 1044."),
        Opt::value('u', "source_port", Complete::Nothing, "Send from this UDP port. Default: any."),
        Opt::value('j', "proxylist_file", Complete::File, "The proxies expected to answer for receivers, one per line: ID[|FINGERPRINT]. In a closed group (-H) they are the only proxies admitted."),
        Opt::flag('q', "Quit as soon as a receiver fails."),
        Opt::flag('f', "Keep a restart file, _group_<group ID>_restart in the current directory, while the session runs: written when the announce phase ends, at every file start and end, when a receiver is lost and every 2 seconds, each time atomically, so it outlives a killed sender. At the end it lists the receivers that failed, or is removed when none did. The file is JSON (format \"uftp-rs restart\", version 1: group_id, group_inst, state running or finished, the paths as given, and the clients with id, optional fingerprint and status incomplete or failed); uftp 4.10.2's restart files are not read."),
        Opt::flag('y', "Use the Windows system key store."),
        Opt::value('U', "UID", Complete::Nothing, "This sender's ID, in hex, with or without 0x (12345678 is 0x12345678, as uftp 4.10.2 reads it), or as an IPv4 address (10.0.0.2 is 0x0A000002); not 0 or FFFFFFFF. Default: the IPv4 address of the interface sent from."),
        Opt::value('a', "max_passes", Complete::Nothing, "At most this many passes over a file. Default 65535."),
        Opt::value('x', "log_level", Complete::Words(&["0", "1", "2", "3", "4", "5"]), "How much to log, 0 (errors only) to 5 (debug). Default 2."),
        Opt::value('W', "txweight", Complete::Nothing, "Congestion control's transmit weight."),
        Opt::value('H', "host[,host...]|@hostlist_file", Complete::Nothing, "A closed group: only these receivers (IDs in hex or as IPv4 addresses), or those listed in the file, one per line as ID[|FINGERPRINT] (a fingerprint pins the receiver's key and turns client authentication on)."),
        Opt::value('F', "restart_file", Complete::File, "Re-run the session of this restart file (see -f) for the receivers it lists, as a closed group, with the same group ID and the next group instance: receivers started with -T resume the files they had partly received, and are sent only the blocks they lack. The files listed in it are walked again with this run's options; files given on the command line are ignored, and -H cannot be given."),
        Opt::value('X', "exclude_file", Complete::File, "Leave out the files listed in this file."),
        Opt::value('M', "pub_multicast_addr", Complete::Nothing, "The public address to announce on, IPv4 or IPv6 multicast, or a unicast address. Default 230.4.4.1."),
        Opt::value('P', "priv_multicast_addr", Complete::Nothing, "The private address the files go to; in IPv4, octets written x are chosen at random. Default 230.5.5.x."),
        Opt::value('N', "max_nak_pct", Complete::Nothing, "A receiver that misses more than this percentage of a section (0-100) gets a strike; at -m strikes it is dropped, so a very slow receiver cannot stall the others. Default 100 (never)."),
        Opt::value('C', "none|tfmcc[:min=K][:init=K][:max=K]", Complete::Words(&["none", "tfmcc"]), "Congestion control: none sends at the fixed rate of -R; tfmcc (TCP-friendly multicast congestion control, RFC 4654, as uftp 4.10.2 runs it) follows the receivers' loss and round-trip times, starting at one packet per GRTT or init=, never below min= nor above max= (rates in Kbps, as -R, in any order), and ignores -R. The rate and the current limiting receiver (CLR) are logged as they change. Default none."),
        Opt::flag('o', "-D names a directory, even when one item is sent."),
        Opt::value('D', "dest_name", Complete::Nothing, "The name the receivers store the item under, or with several items (or -o) the directory they go into."),
        Opt::value('E', "base_dir[,base_dir...]", Complete::Dir, "Strip these leading directories from the names sent."),
        Opt::value('S', "status_file", Complete::File, "Append uftp 4.10.2's status lines to this file, or mix them into the log for @LOG: CONNECT;success|failed;target for each receiver once all have registered; RESULT;target;filename;size;status;speed for each receiver after each file (status copy, overwrite, skipped, rejected, mute for a receiver that never registered, lost for one that dropped out); at the end HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s and STATS;target;num_copy;num_overwrite;num_skip;total_size;time;speed for each receiver. Sizes are in KB (MB for STATS' total), speeds in KB/s, times in seconds."),
        Opt::value('r', "init_grtt[:min_grtt:max_grtt]", Complete::Nothing, "The group round-trip time to start from, and its bounds, in seconds. Default 0.5:0.01:15."),
        Opt::value('s', "robust", Complete::Nothing, "How many times announcements and the like are repeated, 10 to 50. Default 20."),
        Opt::value('i', "list_file", Complete::File, "Read the files to send from this file, one per line (- for standard input)."),
        Opt::long_value("json", "FILE|-", Complete::File, "Write status events to FILE (appended to), or to standard output for -: one JSON object a line, flushed as it happens: session_start, file_result (one per receiver and file), client_result (one per receiver at the end) and summary. README.md lists the fields. Not in uftp 4.10.2."),
        Opt::long_flag("allow-weak", "Run weak sessions (CBC ciphers, SHA-1, RSA keys under 2048 bits), logged as weak, instead of refusing them. Not in uftp 4.10.2."),
        crate::cli::HELP,
        crate::cli::VERSION_OPT,
    ],
    one_of: &[],
    refused: |c| NOT_YET.iter().find(|x| x.0 == c).map(|x| x.1),
    sections: &[
        ("EXIT STATUS", &["0: the session finished and receivers got the files. 1: an invalid command line. 2: the network could not be set up. 3: a key could not be read or made. 6: interrupted. 7: no receiver registered. 8: no receiver answered the first file's FILEINFO. 9: every receiver dropped out, or (unlike uftp 4.10.2 without -q) any receiver failed; receivers the handshake refused were never members and do not count. 10: the session completed but no receiver received any file."]),
        ("EXAMPLES", &["Send a file at 100 Mbit/s to whoever listens on the default group:", "  uftp -R 100000 firmware.img", "Encrypted, to two receivers only:", "  uftp -Y aes256-gcm -H 0x0a000002,0x0a000003 -R 50000 release/"]),
    ],
    see_also: "uftpd(1), uftpproxyd(1), uftp_keymgt(1), uftpdump(1)",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, UsageError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn uftp_letters() {
        let o = p(&[
            "-R",
            "-1",
            "-r0.05:0.01:2",
            "-U",
            "0x0a000001",
            "-H",
            "0x1,10.0.0.2",
            "-lq",
            "f",
        ])
        .unwrap();
        assert_eq!(o.rate, None);
        assert_eq!(o.grtt.0, Duration::from_millis(50));
        assert_eq!(o.uid, Some(0x0a00_0001));
        assert_eq!(
            o.hosts.iter().map(|h| h.id).collect::<Vec<_>>(),
            [1, 0x0a00_0002]
        );
        assert!(o.follow_links && o.quit_on_fail);
        assert_eq!(o.paths, [PathBuf::from("f")]);
        assert_eq!(p(&["-R", "10000", "f"]).unwrap().rate, Some(1_280_000));
    }

    #[test]
    fn congestion_control_values() {
        assert_eq!(p(&["f"]).unwrap().cc, CongestionControl::None);
        assert_eq!(p(&["-C", "none", "f"]).unwrap().cc, CongestionControl::None);
        assert_eq!(
            p(&["-C", "tfmcc", "f"]).unwrap().cc,
            CongestionControl::Tfmcc(TfmccLimits::default())
        );
        assert_eq!(
            p(&["-C", "tfmcc:max=8000:min=100:init=1000", "f"])
                .unwrap()
                .cc,
            CongestionControl::Tfmcc(TfmccLimits {
                min: Some(12_800),
                init: Some(128_000),
                max: Some(1_024_000),
            })
        );
        for bad in [
            "pgmcc",
            "tfmcc:max",
            "tfmcc:max=0",
            "tfmcc:fast=1",
            "tfmcc:min=9:max=8",
            "none:min=1",
            "",
        ] {
            let e = p(&["-C", bad, "f"]).unwrap_err().to_string();
            assert!(e.starts_with("-C"), "{bad}: {e}");
        }
    }

    #[test]
    fn log_rolling_letters() {
        let o = p(&["-L", "/var/log/uftp.log", "-g", "10", "-n", "3", "f"]).unwrap();
        assert_eq!((o.log_max_mb, o.log_keep), (Some(10), 3));
        let o = p(&["-g", "1", "f"]).unwrap();
        assert_eq!((o.log_max_mb, o.log_keep), (Some(1), 5));
        assert!(p(&["-g", "0", "f"]).unwrap_err().0.contains("1-1024"));
        assert!(p(&["-g", "2000", "f"]).unwrap_err().0.contains("-g"));
        assert!(p(&["-n", "0", "f"]).unwrap_err().0.contains("1-1000"));
    }

    #[test]
    fn restart_letters() {
        let o = p(&["-f", "big.img"]).unwrap();
        assert!(o.restartable && o.restart_file.is_none());
        // -F needs no files (the restart file lists them), and excludes -H.
        let o = p(&["-F", "_group_1A2B3C4D_restart", "-f"]).unwrap();
        assert_eq!(
            o.restart_file,
            Some(PathBuf::from("_group_1A2B3C4D_restart"))
        );
        assert!(o.paths.is_empty() && o.restartable);
        assert!(p(&["-F", "r", "-H", "0x1"]).unwrap_err().0.contains("-H"));
        assert!(p(&["-f"]).unwrap_err().0.contains("no files"));
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        assert_eq!(
            p(&["-y", "f"]).unwrap_err().0,
            "-y (Windows system key store) is not supported yet"
        );
        assert_eq!(p(&["-z", "f"]).unwrap().sync, SyncMode::Sync);
        assert_eq!(p(&["-zZ", "f"]).unwrap().sync, SyncMode::Preview);
        assert_eq!(p(&["-Z", "-z", "f"]).unwrap().sync, SyncMode::Preview);
        assert!(p(&["-F", "r", "-z"]).unwrap_err().0.contains("-z"));
        assert!(p(&["-b", "100", "f"]).unwrap_err().0.contains("512-8800"));
        assert!(p(&[]).is_err());
    }

    #[test]
    fn encryption_is_off_by_default_with_strong_choices_ready() {
        let o = p(&["f"]).unwrap();
        assert!(!o.encrypted());
        assert_eq!(o.hashtype, HashType::Sha256);
        assert_eq!(o.keyex, KeyExchange::EcdhEcdsa);
        assert_eq!(o.ecdh_curve, CurveId::P256);
        assert_eq!(o.key_spec(), KeySpec::Ec(NamedCurve::Prime256v1));
        assert!(!o.allow_weak && !o.client_auth);
        // Without -Y, weak leftovers are ignored, as uftp ignores them.
        assert!(p(&["-h", "sha1", "f"]).is_ok());
    }

    #[test]
    fn crypto_letters() {
        let o = p(&[
            "-Y",
            "aes128-ccm",
            "-h",
            "sha384",
            "-w",
            "keyex",
            "-e",
            "ecdh_rsa:secp384r1",
            "-c",
            "-k",
            "/k.pem",
            "-K",
            "2048",
            "f",
        ])
        .unwrap();
        assert_eq!(o.keytype, KeyType::Aes128Ccm);
        assert_eq!(o.hashtype, HashType::Sha384);
        assert_eq!(o.sigtype, SigType::Keyex);
        assert_eq!(o.keyex, KeyExchange::EcdhRsa);
        assert_eq!(o.ecdh_curve, CurveId::P384);
        assert!(o.client_auth && o.rsa_server_key());
        assert_eq!(o.keyfile, Some(PathBuf::from("/k.pem")));
        assert_eq!(o.keygen, Some(KeySpec::Rsa(2048)));
        // -K before -e still means what -e says; the rsa:/ec: forms are taken too.
        let o = p(&[
            "-K",
            "secp384r1",
            "-Y",
            "aes256-gcm",
            "-e",
            "ecdh_ecdsa",
            "f",
        ])
        .unwrap();
        assert_eq!(o.keygen, Some(KeySpec::Ec(NamedCurve::Secp384r1)));
        let o = p(&["-YAES256-gcm", "f"]);
        assert!(o.is_err(), "names are lower case, as uftp's");
        let o = p(&["-Yaes256-gcm", "-K", "ec:prime256v1", "f"]).unwrap();
        assert_eq!(o.key_spec(), KeySpec::Ec(NamedCurve::Prime256v1));
        let o = p(&["-Yaes256-gcm", "-ersa", "f"]).unwrap();
        assert_eq!(
            o.key_spec(),
            KeySpec::Rsa(2048),
            "RSA-2048, not uftp's RSA-512"
        );
    }

    #[test]
    fn bad_crypto_values_say_what_is_allowed() {
        for (args, needle) in [
            (&["-Y", "des", "f"][..], "DES and 3DES are not implemented"),
            (&["-Y", "3des", "f"][..], "not implemented"),
            (&["-Y", "rot13", "f"][..], "unknown key type"),
            (&["-h", "md5", "f"][..], "unknown hash"),
            (&["-w", "none", "f"][..], "unknown signature type"),
            (&["-e", "dh", "f"][..], "unknown key exchange"),
            (&["-e", "rsa:prime256v1", "f"][..], "takes no curve"),
            (
                &["-e", "ecdh_ecdsa:secp521r1", "f"][..],
                "not supported here",
            ),
            (&["-e", "ecdh_ecdsa:nope", "f"][..], "unknown EC curve"),
            (
                &["-Y", "aes256-gcm", "-e", "rsa", "-K", "4096", "f"][..],
                "512-2048",
            ),
            (
                &["-Y", "aes256-gcm", "-e", "rsa", "-K", "big", "f"][..],
                "RSA key size",
            ),
            (
                &["-Y", "aes256-gcm", "-K", "2048", "f"][..],
                "names a curve",
            ),
            (
                &["--allow-strong", "f"][..],
                "unknown option --allow-strong",
            ),
        ] {
            let e = p(args).unwrap_err().0;
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn weak_sessions_need_allow_weak() {
        for (args, why) in [
            (&["-Y", "aes256-cbc", "f"][..], "CBC"),
            (&["-Y", "aes256-gcm", "-h", "sha1", "f"][..], "SHA-1"),
            (
                &["-Y", "aes256-gcm", "-e", "rsa", "-K", "1024", "f"][..],
                "RSA key under 2048",
            ),
        ] {
            let e = p(args).unwrap_err().0;
            assert!(
                e.contains(why) && e.contains("--allow-weak"),
                "{args:?}: {e}"
            );
            let mut allowed = vec!["--allow-weak"];
            allowed.extend_from_slice(args);
            let o = p(&allowed).unwrap();
            assert!(o.allow_weak);
            let bits = match o.key_spec() {
                KeySpec::Rsa(b) => Some(b),
                KeySpec::Ec(_) => None,
            };
            assert!(o.check_weak(bits).unwrap().unwrap().contains(why));
        }
        // A key file's size is known only once it is read: checked then.
        let o = p(&["-Y", "aes256-gcm", "-e", "rsa", "-k", "/k.pem", "f"]).unwrap();
        assert!(o.check_weak(Some(1024)).is_err());
        assert_eq!(o.check_weak(Some(2048)), Ok(None));
        // `--` ends the options: a file may be called --allow-weak.
        let o = p(&["--", "--allow-weak"]).unwrap();
        assert!(!o.allow_weak);
        assert_eq!(o.paths, [PathBuf::from("--allow-weak")]);
    }

    #[test]
    fn host_file_pins_fingerprints() {
        let dir = std::env::temp_dir().join(format!("uftp-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hosts");
        let fp = "66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC";
        std::fs::write(
            &file,
            format!("# clients\n0x0A000001|{fp}\n\n10.0.0.2\n 0x0A000003 | {fp} \n"),
        )
        .unwrap();
        let at = format!("@{}", file.display());
        let o = p(&["-H", "0x0A000002", "-H", &at, "f"]).unwrap();
        let fp = Some(Fingerprint::parse(fp).unwrap());
        assert_eq!(
            o.hosts,
            [
                ClientPin {
                    id: 0x0A00_0002,
                    fingerprint: None
                },
                ClientPin {
                    id: 0x0A00_0001,
                    fingerprint: fp
                },
                ClientPin {
                    id: 0x0A00_0003,
                    fingerprint: fp
                },
            ]
        );
        std::fs::write(&file, "0x0A000001|AB:CD\n").unwrap();
        let e = p(&["-H", &at, "f"]).unwrap_err().0;
        assert!(e.contains(":1: invalid fingerprint"), "{e}");
        std::fs::write(&file, "zz|\n").unwrap();
        assert!(p(&["-H", &at, "f"])
            .unwrap_err()
            .0
            .contains("invalid host ID"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn proxy_list() {
        let dir = std::env::temp_dir().join(format!("uftp-proxies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("proxies");
        let fp = "66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC";
        std::fs::write(&file, format!("# proxies\n0x0B000001\n10.0.0.9|{fp}\n")).unwrap();
        let path = file.display().to_string();
        let o = p(&["-H", "0x1,0x2", "-j", &path, "f"]).unwrap();
        assert_eq!(
            o.proxies,
            [
                ClientPin {
                    id: 0x0B00_0001,
                    fingerprint: None
                },
                ClientPin {
                    id: 0x0A00_0009,
                    fingerprint: Some(Fingerprint::parse(fp).unwrap())
                },
            ]
        );
        std::fs::write(&file, "0x1\n0x1\n").unwrap();
        assert!(p(&["-j", &path, "f"])
            .unwrap_err()
            .0
            .contains("listed twice"));
        std::fs::write(&file, "nope\n").unwrap();
        let e = p(&["-j", &path, "f"]).unwrap_err().0;
        assert!(e.contains("-j") && e.contains("invalid proxy ID"), "{e}");
        assert!(p(&["-j", "/nonexistent/proxies", "f"])
            .unwrap_err()
            .0
            .contains("-j: cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parser_takes_exactly_the_pages_options() {
        crate::cli::check_parser(
            &PAGE,
            |args| {
                parse(args.iter().map(|a| a.to_string()))
                    .map(drop)
                    .map_err(|e| e.0)
            },
            |e| e.contains("unknown option"),
            |e| e.contains("needs a value"),
        );
    }
}
