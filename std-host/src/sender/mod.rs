//! `uftp`, the sender: a thin driver around [`proto_core::session::sender::Sender`] that owns
//! the UDP socket, the clock, the files and the terminal. See `man uftp`; the implemented
//! options are in [`options`].

pub mod items;
pub mod options;
pub mod restart;
pub mod status;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proto_core::session::sender::{
    BlockSource, CongestionControl, Counters, Event, FileItem, FileResult, LostReason, Outcome,
    ReadError, RefuseReason, Sender, SenderConfig, SyncMode,
};
use proto_core::session::FileLayout;
use proto_core::time::Instant;
use proto_core::wire::FileType;
use socket2::{Domain, Protocol, Socket, Type};

use items::Item;
use options::Options;
use proto_core::crypto::{CurveId, NoRsa, RsaKeys};
use proto_core::session::security::{is_aead, ClientPin, OwnKey, SenderSecurity};
use proto_core::wire::{KeyExchange, SigType};
use restart::{ClientStatus, Restart};

use crate::json_status::{self, JsonStatus};
use crate::keys::{load_or_generate, HostRsa, PrivateKey};

/// Largest client table (uftp's is 10000 per session; this one is fixed at build time).
pub const MAX_CLIENTS: usize = 1000;

/// uftp's exit codes (digest §8.1).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad parameters.
    pub const PARAM: i32 = 1;
    /// Socket error.
    pub const SOCKET: i32 = 2;
    /// Key error (a key file that cannot be read or written, a key that cannot be made).
    pub const CRYPTO: i32 = 3;
    /// Interrupted.
    pub const INTERRUPTED: i32 = 6;
    /// No client registered.
    pub const NO_REGISTER: i32 = 7;
    /// No client answered the first FILEINFO.
    pub const NO_FILEINFO_ACK: i32 = 8;
    /// All clients dropped, or (unlike uftp without `-q`) any client failed; clients the
    /// handshake refused (wrong key, bad signature) were never members and do not count.
    pub const DROPPED: i32 = 9;
    /// The session completed but no client received any file.
    pub const NOTHING_RECEIVED: i32 = 10;
}

/// How much of the file one read brings in when the sender goes through it in order.
const READ_AHEAD: usize = 1 << 20;

/// The current file, read at the sender's offsets, and its resend map.
///
/// A pass reads the file in order, one block at a time: one system call a block would cost
/// more than the block's trip through the protocol, so reads that continue where the last one
/// ended fill a [`READ_AHEAD`] window that the next blocks are copied from. Reads elsewhere
/// (retransmissions of scattered blocks) go to the file directly.
#[derive(Debug, Default)]
struct FileSource {
    file: Option<File>,
    map: Vec<u8>,
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_at: u64,
}

impl FileSource {
    fn set_file(&mut self, file: Option<File>) {
        self.file = file;
        self.window.clear();
        self.window_at = 0;
    }
}

impl BlockSource for FileSource {
    fn read_block(&mut self, _: u16, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let file = self.file.as_ref().ok_or(ReadError)?;
        let end = self.window_at + self.window.len() as u64;
        if offset >= self.window_at && offset + buf.len() as u64 <= end {
            let at = (offset - self.window_at) as usize;
            buf.copy_from_slice(&self.window[at..at + buf.len()]);
            return Ok(());
        }
        if offset != end && !(offset > self.window_at && offset < end) {
            return file.read_exact_at(buf, offset).map_err(|_| ReadError);
        }
        // In order: the next window starts at this block.
        let size = file.metadata().map_err(|_| ReadError)?.len();
        let want = (size.saturating_sub(offset) as usize).min(READ_AHEAD);
        if want < buf.len() {
            return Err(ReadError);
        }
        self.window.resize(want, 0);
        if file.read_exact_at(&mut self.window, offset).is_err() {
            self.window.clear();
            return Err(ReadError);
        }
        self.window_at = offset;
        buf.copy_from_slice(&self.window[..buf.len()]);
        Ok(())
    }
    fn resend_map(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

struct Log {
    out: Box<dyn Write>,
    level: u8,
    timestamps: bool,
    start: std::time::Instant,
    bar: bool,
}

impl Log {
    fn line(&mut self, level: u8, msg: std::fmt::Arguments<'_>) {
        if level > self.level {
            return;
        }
        if self.bar {
            let _ = write!(self.out, "\r\x1b[K");
        }
        if self.timestamps {
            let _ = write!(self.out, "[{:9.3}] ", self.start.elapsed().as_secs_f64());
        }
        let _ = writeln!(self.out, "{msg}");
        let _ = self.out.flush();
    }
}

macro_rules! log {
    ($log:expr, $level:expr, $($arg:tt)*) => { $log.line($level, format_args!($($arg)*)) };
}

#[derive(Debug, Default)]
struct ClientRecord {
    addr: Option<SocketAddr>,
    ok: u32,
    skipped: u32,
    /// Files not received: lost, or rejected.
    failed: u32,
    /// Of those, the ones the client rejected (it stays in the session, and, as for uftp
    /// 4.10.2, that alone does not fail the run).
    rejected: u32,
    /// Free space it reported for the current item (`@FREESPACE`), for the status file.
    free_space: Option<u64>,
    lost: Option<LostReason>,
    refused: Option<RefuseReason>,
    done: bool,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = f.read_exact(&mut b);
    }
    if b.iter().all(|&x| x == 0) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
            ^ u64::from(std::process::id()) << 32;
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
    b
}

fn private_addr(o: &Options) -> Result<IpAddr, String> {
    let pattern = o
        .private_pattern
        .clone()
        .unwrap_or_else(|| "230.5.5.x".into());
    if o.public_addr.is_ipv4() && pattern.contains('x') {
        let r: [u8; 4] = random_bytes();
        let octets: Vec<String> = pattern
            .split('.')
            .enumerate()
            .map(|(i, p)| {
                if p == "x" {
                    (r[i] % 254 + 1).to_string()
                } else {
                    p.into()
                }
            })
            .collect();
        return octets
            .join(".")
            .parse()
            .map_err(|_| format!("-P: invalid address {pattern:?}"));
    }
    pattern
        .parse()
        .map_err(|_| format!("-P: invalid address {pattern:?}"))
}

struct Net {
    sock: UdpSocket,
    public: SocketAddr,
    private: SocketAddr,
    unicast: bool,
    uid: u32,
}

fn open_net(o: &Options) -> Result<Net, (i32, String)> {
    let param = |m: String| (exit::PARAM, m);
    let sockerr = |what: &str, e: io::Error| (exit::SOCKET, format!("{what}: {e}"));
    let unicast = !o.public_addr.is_multicast();
    let priv_ip = if unicast {
        o.public_addr
    } else {
        private_addr(o).map_err(param)?
    };
    if priv_ip.is_ipv4() != o.public_addr.is_ipv4() {
        return Err(param("-M and -P must be the same IP family".into()));
    }
    if !unicast && !priv_ip.is_multicast() {
        return Err(param(format!("-P: {priv_ip} is not a multicast address")));
    }
    let public = SocketAddr::new(o.public_addr, o.port);
    let private = SocketAddr::new(priv_ip, o.port);
    let domain = if public.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| sockerr("socket", e))?;
    let _ = s.set_send_buffer_size(o.bufsize);
    let _ = s.set_recv_buffer_size(o.bufsize);
    let mut if_addr: Option<IpAddr> = None;
    let mut if_name: Option<&str> = None;
    if let Some(i) = &o.interface {
        match i.parse::<IpAddr>() {
            Ok(ip) => if_addr = Some(ip),
            Err(_) => if_name = Some(i),
        }
    }
    if let (Some(name), true) = (if_name, public.is_ipv4()) {
        // An IPv4 interface is chosen by its address (IP_MULTICAST_IF), as uftp does; binding
        // the socket to the device would refuse the replies of receivers on this same host.
        let a = crate::ifaddr::ipv4_of(name)
            .ok_or_else(|| param(format!("-I {name}: no such interface with an IPv4 address")))?;
        if_addr = Some(IpAddr::V4(a));
    }
    if let Some(name) = if_name {
        if public.is_ipv6() {
            s.bind_device(Some(name.as_bytes()))
                .map_err(|e| sockerr(&format!("-I {name}"), e))?;
            let idx =
                crate::ifaddr::index_of(name).map_err(|e| sockerr(&format!("-I {name}"), e))?;
            s.set_multicast_if_v6(idx)
                .map_err(|e| sockerr("IPV6_MULTICAST_IF", e))?;
        }
    }
    match (public.ip(), if_addr) {
        (IpAddr::V4(_), Some(IpAddr::V4(a))) => s
            .set_multicast_if_v4(&a)
            .map_err(|e| sockerr(&format!("-I {a}"), e))?,
        (_, Some(a)) if a.is_ipv4() != public.is_ipv4() => {
            return Err(param(format!("-I {a}: not the family of -M")))
        }
        _ => {}
    }
    if public.is_ipv4() {
        s.set_multicast_ttl_v4(o.ttl)
            .map_err(|e| sockerr("IP_MULTICAST_TTL", e))?;
    } else {
        s.set_multicast_hops_v6(o.ttl)
            .map_err(|e| sockerr("IPV6_MULTICAST_HOPS", e))?;
    }
    let bind: SocketAddr = match public {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, o.src_port).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, o.src_port).into(),
    };
    s.bind(&bind.into())
        .map_err(|e| sockerr(&format!("bind {bind}"), e))?;
    let uid = match o.uid {
        Some(u) => u,
        None => {
            // uftp's default UID: the address of the outgoing interface.
            let local = match if_addr {
                Some(a) => a,
                None => {
                    let probe =
                        Socket::new(domain, Type::DGRAM, None).map_err(|e| sockerr("socket", e))?;
                    if let Some(name) = if_name {
                        let _ = probe.bind_device(Some(name.as_bytes()));
                    }
                    probe.connect(&public.into()).map_err(|e| {
                        (
                            exit::SOCKET,
                            format!("no route to {public} ({e}); give -I or -U"),
                        )
                    })?;
                    let la = probe.local_addr().map_err(|e| sockerr("getsockname", e))?;
                    la.as_socket()
                        .map(|a| a.ip())
                        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                }
            };
            match local {
                IpAddr::V4(a) => u32::from(a),
                IpAddr::V6(a) => u32::from_be_bytes(a.octets()[12..].try_into().unwrap_or([0; 4])),
            }
        }
    };
    if uid == 0 || uid == u32::MAX {
        return Err(param(
            "cannot derive a UID from the interface address; give -U".into(),
        ));
    }
    Ok(Net {
        sock: s.into(),
        public,
        private,
        unicast,
        uid,
    })
}

/// What an encrypted session runs with: the core's [`SenderSecurity`], the RSA keys behind it,
/// and the lines that tell the operator what was chosen.
struct Security {
    security: SenderSecurity,
    rsa: HostRsa,
    lines: Vec<String>,
}

/// Builds the session's security from `-Y`, `-h`, `-w`, `-e`, `-c`, `-k`, `-K`, `-H` and
/// `--allow-weak`: loads or makes the server's key, checks it fits the key exchange and the
/// weakness policy. Errors carry uftp's exit code.
fn security(o: &Options) -> Result<Security, (i32, String)> {
    let spec = match (&o.keyfile, o.keygen) {
        (Some(_), None) => None,
        _ => Some(o.key_spec()),
    };
    let (key, origin) = load_or_generate(o.keyfile.as_deref(), spec).map_err(|e| {
        let what = match &o.keyfile {
            Some(f) => format!("-k {}", f.display()),
            None => "server key".into(),
        };
        (exit::CRYPTO, format!("{what}: {e}"))
    })?;
    let key_line = format!(
        "server key: {}, fingerprint {} ({origin})",
        key.description(),
        key.fingerprint()
    );
    let wrong_kind = |need: &str| {
        let file = o
            .keyfile
            .as_ref()
            .map_or_else(String::new, |f| format!("-k {}: ", f.display()));
        (
            exit::PARAM,
            format!(
                "{file}{} key, but -e {} needs {need}",
                key.description(),
                o.keyex.name()
            ),
        )
    };
    let (own, rsa, rsa_bits) = match key {
        PrivateKey::Rsa(k) if o.rsa_server_key() => {
            let bits = k.bits();
            (OwnKey::Rsa(0), HostRsa::new(vec![k]), Some(bits))
        }
        PrivateKey::Ec(k) if !o.rsa_server_key() => {
            let k = k
                .key()
                .map_err(|e| (exit::CRYPTO, format!("server key: {e}")))?
                .clone();
            (OwnKey::Ec(k), HostRsa::default(), None)
        }
        PrivateKey::Rsa(_) => return Err(wrong_kind("an EC key (or -e rsa / ecdh_rsa)")),
        PrivateKey::Ec(_) => return Err(wrong_kind("an RSA key (or -e ecdh_ecdsa)")),
    };
    let weak = o.check_weak(rsa_bits).map_err(|e| (exit::PARAM, e.0))?;
    let sigtype = if is_aead(o.keytype) {
        SigType::AuthEnc
    } else {
        o.sigtype
    };
    let pinned = o.hosts.iter().any(|h| h.fingerprint.is_some());
    let client_auth = o.client_auth || pinned;
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let curve = match o.keyex {
        KeyExchange::Rsa => String::new(),
        _ => format!(
            " ({})",
            match o.ecdh_curve {
                CurveId::P384 => "secp384r1",
                _ => "prime256v1",
            }
        ),
    };
    let mut lines = vec![
        format!(
            "encryption: {}, {}, {}{curve}, {}{}",
            o.keytype.name(),
            o.hashtype.name(),
            o.keyex.name(),
            if sigtype == SigType::AuthEnc {
                "authenticated by the cipher"
            } else {
                "HMAC"
            },
            match (client_auth, o.client_auth) {
                (false, _) => String::new(),
                (true, true) => ", client authentication".into(),
                (true, false) => ", client authentication (-H pins client keys)".into(),
            }
        ),
        key_line,
    ];
    if let Some(why) = weak {
        lines.push(format!("WARNING: weak session: {why}"));
    }
    Ok(Security {
        security: SenderSecurity {
            keytype: o.keytype,
            hashtype: o.hashtype,
            sigtype,
            keyex: o.keyex,
            ecdh_curve: o.ecdh_curve,
            client_auth,
            key: own,
            seed,
        },
        rsa,
        lines,
    })
}

fn read_list(file: &str) -> io::Result<Vec<std::path::PathBuf>> {
    let text = if file == "-" {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(file)?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Into::into)
        .collect())
}

/// Runs `uftp` with its arguments (program name excluded); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    if let Some(info) = crate::cli::info_request(&options::PAGE, &args) {
        return crate::cli::print_info(&options::PAGE, info);
    }
    if args.is_empty() {
        // As uftp 4.10.2: the usage on standard error, exit 1.
        eprintln!(
            "{}\nuftp --help describes the options.",
            crate::cli::usage(&options::PAGE)
        );
        return exit::PARAM;
    }
    let mut o = match options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uftp: {e}");
            return exit::PARAM;
        }
    };
    let out: Box<dyn Write> = match &o.logfile {
        Some(p) => {
            let opened = match o.log_max_mb {
                Some(mb) => crate::log::RollingFile::open(
                    p,
                    crate::log::Rolling {
                        max_bytes: u64::from(mb) * crate::log::MEGABYTE,
                        keep: o.log_keep,
                    },
                )
                .map(|f| Box::new(f) as Box<dyn Write>),
                None => std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map(|f| Box::new(f) as Box<dyn Write>),
            };
            match opened {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("uftp: cannot open log file {}: {e}", p.display());
                    return 4;
                }
            }
        }
        None => Box::new(io::stderr()),
    };
    let mut json = match o.json.as_deref().map(JsonStatus::open).transpose() {
        Ok(j) => j,
        Err(e) => {
            let f = o.json.as_deref().unwrap_or(std::path::Path::new("-"));
            eprintln!("uftp: --json: cannot open {}: {e}", f.display());
            return exit::PARAM;
        }
    };
    let status = match o
        .status_file
        .as_deref()
        .map(status::StatusLines::open)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            let f = o
                .status_file
                .as_deref()
                .unwrap_or(std::path::Path::new("-"));
            eprintln!("uftp: -S: cannot open {}: {e}", f.display());
            return exit::PARAM;
        }
    };
    let bar = o.logfile.is_none() && io::stderr().is_terminal();
    let mut log = Log {
        out,
        level: o.log_level,
        timestamps: o.timestamps,
        start: std::time::Instant::now(),
        bar: false,
    };
    // -F: the session, its files and its clients come from the restart file.
    let restarting = match &o.restart_file {
        Some(f) => match Restart::load(f) {
            Ok(r) if r.group_inst == u8::MAX => {
                eprintln!(
                    "uftp: -F {}: group instance 255 is the last: start a new session",
                    f.display()
                );
                return exit::PARAM;
            }
            Ok(r) if r.clients.is_empty() => {
                eprintln!("uftp: -F {}: no client to restart for", f.display());
                return exit::PARAM;
            }
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("uftp: -F {e}");
                return exit::PARAM;
            }
        },
        None => None,
    };
    if let Some(r) = &restarting {
        if !o.paths.is_empty() || o.list_file.is_some() {
            log!(
                log,
                1,
                "warning: files given with -F are ignored: the restart file lists them"
            );
        }
        o.paths = r.paths.clone();
        o.list_file = None;
        o.hosts = r.pins();
    }
    let mut paths = o.paths.clone();
    if let Some(l) = &o.list_file {
        match read_list(l) {
            Ok(mut p) => paths.append(&mut p),
            Err(e) => {
                eprintln!("uftp: cannot read list file {l}: {e}");
                return exit::PARAM;
            }
        }
    }
    let (items, warnings) = items::collect(&o, &paths);
    for w in &warnings {
        log!(log, 1, "warning: {w}");
    }
    if items.is_empty() {
        eprintln!("uftp: nothing to send");
        return exit::PARAM;
    }
    // Keys before sockets: a key that cannot be read or made stops us before anything is sent.
    let security = if o.encrypted() {
        match security(&o) {
            Ok(s) => Some(s),
            Err((code, msg)) => {
                eprintln!("uftp: {msg}");
                return code;
            }
        }
    } else {
        None
    };
    let net = match open_net(&o) {
        Ok(n) => n,
        Err((code, msg)) => {
            eprintln!("uftp: {msg}");
            return code;
        }
    };
    let group_id = match &restarting {
        Some(r) => r.group_id,
        None => loop {
            let g = u32::from_be_bytes(random_bytes());
            if g != 0 && g != u32::MAX {
                break g;
            }
        },
    };
    let mut cfg = SenderConfig::new(net.uid, group_id, net.public, net.private);
    if let Some(r) = &restarting {
        cfg.group_inst = r.group_inst + 1;
    }
    cfg.unicast = net.unicast;
    cfg.blocksize = o.blocksize;
    cfg.robust = o.robust;
    (cfg.grtt_init, cfg.grtt_min, cfg.grtt_max) = o.grtt;
    cfg.rate = o.rate;
    cfg.cc = o.cc;
    cfg.adaptive_rate = o.adaptive && o.cc == CongestionControl::None;
    cfg.max_nak_pct = o.max_nak_pct;
    cfg.max_nak_count = o.max_nak_count;
    cfg.max_passes = o.max_passes;
    cfg.sync = o.sync;
    if let Some(r) = &restarting {
        log!(
            log,
            2,
            "restarting group 0x{group_id:08X} as instance {} for {} clients: {}",
            cfg.group_inst,
            r.clients.len(),
            r.clients
                .iter()
                .map(|c| format!("0x{:08X}", c.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let restart = o.restartable.then(|| RestartLog {
        path: restart::file_name(group_id),
        record: Restart {
            group_id,
            group_inst: cfg.group_inst,
            state: restart::State::Running,
            paths: paths.clone(),
            clients: Vec::new(),
        },
        pins: o
            .hosts
            .iter()
            .filter_map(|p| Some((p.id, p.fingerprint?)))
            .collect(),
        written: None,
        failed: false,
    });
    log!(
        log,
        2,
        "uftp-rs {}: UID 0x{:08X}, group 0x{:08X}, public {}, private {}, {}",
        env!("CARGO_PKG_VERSION"),
        net.uid,
        group_id,
        net.public,
        net.private,
        match (o.cc, o.rate) {
            (CongestionControl::Tfmcc(l), _) => {
                let k = |r: Option<u64>| r.map_or("-".to_string(), |r| (r / 128).to_string());
                format!(
                    "TFMCC (min {} init {} max {} Kbps)",
                    k(l.min),
                    k(l.init),
                    k(l.max)
                )
            }
            (CongestionControl::None, Some(r)) => format!("rate {} Kbps", r / 128),
            (CongestionControl::None, None) if o.adaptive => "adaptive rate (no -R)".into(),
            (CongestionControl::None, None) => "unpaced (-R -1)".into(),
        }
    );
    if let Some(j) = &mut json {
        let fields = serde_json::json!({
            "program": "uftp",
            "version": env!("CARGO_PKG_VERSION"),
            "uid": json_status::id(net.uid),
            "group_id": json_status::id(group_id),
            "public": net.public.to_string(),
            "private": net.private.to_string(),
            "files": items.len(),
            "bytes": items.iter().map(|i| i.size).sum::<u64>(),
        });
        if let Err(e) = j.emit("session_start", fields) {
            log!(log, 1, "warning: --json {}: {e}; no more events", j.name());
            json = None;
        }
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    }
    if !o.proxies.is_empty() {
        log!(
            log,
            2,
            "proxies expected (-j): {}",
            o.proxies
                .iter()
                .map(|p| format!("0x{:08X}", p.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let Some(security) = security else {
        // Unencrypted: nobody has a key to check a fingerprint against (as uftp, pins unused).
        let unpinned = |pins: &[ClientPin]| -> Vec<ClientPin> {
            pins.iter()
                .map(|p| ClientPin {
                    id: p.id,
                    fingerprint: None,
                })
                .collect()
        };
        let sender = match Sender::<MAX_CLIENTS>::with_proxies(
            cfg,
            &unpinned(&o.hosts),
            &unpinned(&o.proxies),
            None,
            NoRsa,
        ) {
            Ok(s) => Box::new(s),
            Err(e) => {
                eprintln!("uftp: {e}");
                return exit::PARAM;
            }
        };
        log.bar = bar;
        return Driver {
            o: &o,
            net,
            sender,
            log,
            items,
            interrupted,
            bar,
            restart,
            json,
            status,
        }
        .run();
    };
    for line in &security.lines {
        log!(log, 1, "{line}");
    }
    let sender = match Sender::<MAX_CLIENTS, HostRsa>::with_proxies(
        cfg,
        &o.hosts,
        &o.proxies,
        Some(security.security),
        security.rsa,
    ) {
        Ok(s) => Box::new(s),
        Err(e) => {
            eprintln!("uftp: {e}");
            return exit::PARAM;
        }
    };
    log.bar = bar;
    Driver {
        o: &o,
        net,
        sender,
        log,
        items,
        interrupted,
        bar,
        restart,
        json,
        status,
    }
    .run()
}

/// How often the restart file is rewritten while the session runs (besides at every file
/// start and end and when a client is lost).
const RESTART_EVERY: Duration = Duration::from_secs(2);

/// `-f`: the restart file, kept up to date while the session runs.
struct RestartLog {
    path: std::path::PathBuf,
    /// What was last written (its clients are recomputed at each write).
    record: Restart,
    /// Fingerprints `-H` pinned, carried into the file.
    pins: std::collections::HashMap<u32, proto_core::crypto::Fingerprint>,
    /// When it was last written.
    written: Option<std::time::Instant>,
    /// A write failed (reported once).
    failed: bool,
}

impl RestartLog {
    /// The clients a re-run is for: every member that has not confirmed the end, or failed.
    fn clients(&self, clients: &BTreeMap<u32, ClientRecord>) -> Vec<restart::Client> {
        clients
            .iter()
            .filter(|(_, r)| r.refused.is_none())
            .filter_map(|(&id, r)| {
                let status = if r.lost.is_some() || r.failed > 0 {
                    ClientStatus::Failed
                } else if !r.done {
                    ClientStatus::Incomplete
                } else {
                    return None;
                };
                Some(restart::Client {
                    id,
                    fingerprint: self.pins.get(&id).copied(),
                    status,
                })
            })
            .collect()
    }

    /// Rewrites the file; `Err` carries a line for the log (once).
    fn write(
        &mut self,
        clients: &BTreeMap<u32, ClientRecord>,
        state: restart::State,
    ) -> Result<(), String> {
        self.record.clients = self.clients(clients);
        self.record.state = state;
        self.written = Some(std::time::Instant::now());
        match self.record.store(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if !self.failed => {
                self.failed = true;
                Err(format!(
                    "cannot write restart file {}: {e}",
                    self.path.display()
                ))
            }
            Err(_) => Ok(()),
        }
    }

    /// The end of the session: the file lists the clients that failed, or is removed when
    /// none did.
    fn finish(&mut self, clients: &BTreeMap<u32, ClientRecord>) -> Result<Option<usize>, String> {
        if self.clients(clients).is_empty() {
            return match fs::remove_file(&self.path) {
                Ok(()) => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!(
                    "cannot remove restart file {}: {e}",
                    self.path.display()
                )),
            };
        }
        self.failed = false;
        self.write(clients, restart::State::Finished)?;
        Ok(Some(self.record.clients.len()))
    }
}

struct Driver<'a, R: RsaKeys> {
    o: &'a Options,
    net: Net,
    sender: Box<Sender<MAX_CLIENTS, R>>,
    log: Log,
    items: Vec<Item>,
    interrupted: Arc<AtomicBool>,
    bar: bool,
    restart: Option<RestartLog>,
    json: Option<JsonStatus>,
    /// `-S`: uftp's status lines.
    status: Option<status::StatusLines>,
}

impl<R: RsaKeys> Driver<'_, R> {
    fn run(mut self) -> i32 {
        let start = std::time::Instant::now();
        let clock = move || Instant::from_micros(start.elapsed().as_micros() as u64);
        let mut source = FileSource::default();
        let mut sbuf = vec![0u8; self.sender.max_datagram_len() + 64];
        let mut batch = crate::udp::TxBatch::new(
            self.sender.max_datagram_len() + 64,
            crate::udp::gso_wanted(),
        );
        let mut rbuf = vec![0u8; 65536];
        let mut next_item = 0usize;
        let mut current: Option<usize> = None;
        // file ID → (item, start time), for the per-file line.
        let mut started: BTreeMap<u16, (usize, std::time::Instant)> = BTreeMap::new();
        let mut clients: BTreeMap<u32, ClientRecord> = BTreeMap::new();
        let mut last_bar = std::time::Instant::now();
        let mut user_abort = false;
        let mut quit_abort = false;
        let summary = loop {
            let now = clock();
            if self.interrupted.load(Ordering::Relaxed) && !user_abort {
                log!(self.log, 1, "interrupted, aborting the session");
                user_abort = true;
                self.sender.abort(now);
            }
            // Everything received so far.
            if let Err(e) = self.net.sock.set_nonblocking(true) {
                eprintln!("uftp: socket: {e}");
                return exit::SOCKET;
            }
            loop {
                match self.net.sock.recv_from(&mut rbuf) {
                    Ok((n, from)) => {
                        self.sender
                            .handle_datagram(now, from, &mut rbuf[..n], &mut source)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // ICMP errors from unicast peers that went away: not fatal.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                    Err(e) => {
                        eprintln!("uftp: receive: {e}");
                        return exit::SOCKET;
                    }
                }
            }
            let _ = self.net.sock.set_nonblocking(false);
            self.sender.handle_timeout(now);
            if self.sender.wants_file() {
                current = None;
                loop {
                    let Some(item) = self.items.get(next_item) else {
                        let _ = self.sender.finish_session(now);
                        break;
                    };
                    next_item += 1;
                    match self.open_item(item, &mut source) {
                        Ok(()) => {}
                        Err(e) => {
                            log!(
                                self.log,
                                1,
                                "warning: {}: {e}, skipped",
                                item.path.display()
                            );
                            continue;
                        }
                    }
                    let fi = FileItem {
                        name: &item.name,
                        ftype: item.ftype,
                        size: item.size,
                        mtime: item.mtime,
                        link: &item.link,
                    };
                    match self.sender.start_file(now, fi) {
                        Ok(id) => {
                            current = Some(next_item - 1);
                            started.insert(id, (next_item - 1, std::time::Instant::now()));
                            log!(
                                self.log,
                                3,
                                "file {id}: {}",
                                String::from_utf8_lossy(&item.name)
                            );
                            break;
                        }
                        Err(e) => log!(
                            self.log,
                            1,
                            "warning: {}: {e}, skipped",
                            item.path.display()
                        ),
                    }
                }
            }
            let mut sent = 0;
            while batch.has_room() {
                let Some(t) = self
                    .sender
                    .poll_transmit(now, batch.next_buf(), &mut source)
                else {
                    break;
                };
                batch.push(t.dest, t.len);
                sent += 1;
            }
            if let Err((dest, e)) = batch.flush(&self.net.sock) {
                eprintln!("uftp: send to {dest}: {e}");
                return exit::SOCKET;
            }
            let mut done = None;
            let mut restart_due = false;
            while let Some(ev) = self.sender.poll_event() {
                restart_due |= matches!(
                    ev,
                    Event::AnnounceDone { .. } | Event::FileDone(_) | Event::ClientLost { .. }
                );
                if let Some(s) = self.event(ev, &mut clients, &started) {
                    done = Some(s);
                }
                if self.o.quit_on_fail
                    && !quit_abort
                    && clients.values().any(|c| c.lost.is_some() || c.failed > 0)
                {
                    log!(
                        self.log,
                        1,
                        "a client failed and -q was given: aborting the session"
                    );
                    quit_abort = true;
                    self.sender.abort(clock());
                }
            }
            if let Some(r) = self.restart.as_mut().filter(|_| done.is_none()) {
                let stale = r.written.is_some_and(|t| t.elapsed() >= RESTART_EVERY);
                if restart_due || stale {
                    if let Err(e) = r.write(&clients, restart::State::Running) {
                        log!(self.log, 1, "warning: {e}");
                    }
                }
            }
            if self.bar && last_bar.elapsed() > Duration::from_millis(200) {
                last_bar = std::time::Instant::now();
                self.draw_bar(current);
            }
            if let Some(s) = done {
                // Flush the final datagrams (ABORT) before leaving.
                while let Some(t) = self.sender.poll_transmit(clock(), &mut sbuf, &mut source) {
                    let _ = self.net.sock.send_to(&sbuf[..t.len], t.dest);
                }
                break s;
            }
            if sent == crate::udp::TX_SLOTS {
                continue;
            }
            let wait = self
                .sender
                .poll_timeout()
                .map(|t| t.saturating_duration_since(clock()))
                .unwrap_or(Duration::from_millis(50))
                .min(Duration::from_millis(200));
            if wait.is_zero() {
                continue;
            }
            if wait < Duration::from_millis(2) {
                std::thread::sleep(wait);
                continue;
            }
            let _ = self.net.sock.set_read_timeout(Some(wait));
            match self.net.sock.recv_from(&mut rbuf) {
                Ok((n, from)) => {
                    self.sender
                        .handle_datagram(clock(), from, &mut rbuf[..n], &mut source)
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionRefused
                    ) => {}
                Err(e) => {
                    eprintln!("uftp: receive: {e}");
                    return exit::SOCKET;
                }
            }
        };
        if self.bar {
            let _ = write!(self.log.out, "\r\x1b[K");
        }
        let secs = start.elapsed().as_secs_f64();
        let c = summary.counters;
        log!(
            self.log,
            1,
            "Session done: {} files, {} bytes in {:.2} s ({:.2} MB/s); {} FILESEGs, {} retransmitted, {} NAKs",
            summary.files,
            summary.bytes,
            secs,
            summary.bytes as f64 / secs.max(1e-6) / 1e6,
            c.blocks_sent,
            c.retransmitted_blocks,
            c.naks_received
        );
        if let Some(line) = drop_summary(&c) {
            log!(self.log, 1, "{line}");
        }
        if let Some(r) = self.restart.as_mut() {
            match r.finish(&clients) {
                Ok(Some(n)) => log!(
                    self.log,
                    1,
                    "restart file {} written for {n} clients: re-run with uftp -F {}",
                    r.path.display(),
                    r.path.display()
                ),
                Ok(None) => {}
                Err(e) => log!(self.log, 1, "warning: {e}"),
            }
        }
        for (id, r) in &clients {
            let (state, reason) = match (r.lost, r.done) {
                _ if r.refused.is_some() => ("refused", r.refused.map(RefuseReason::as_str)),
                (Some(reason), _) => ("lost", Some(lost_text(reason))),
                (None, true) => ("completed", None),
                (None, false) => ("unconfirmed", None),
            };
            self.json_event(
                "client_result",
                serde_json::json!({
                    "client": json_status::id(*id),
                    "addr": r.addr.map(|a| a.ip().to_string()),
                    "state": state,
                    "reason": reason,
                    "files_ok": r.ok,
                    "files_skipped": r.skipped,
                    "files_failed": r.failed,
                }),
            );
            let state = match (state, reason) {
                ("unconfirmed", _) => "did not confirm the end".to_string(),
                (s, Some(why)) => format!("{s} ({why})"),
                (s, None) => s.to_string(),
            };
            log!(
                self.log,
                1,
                "  client 0x{id:08X} {}: {state}; {} files ok, {} skipped, {} failed",
                r.addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_else(|| "-".into()),
                r.ok,
                r.skipped,
                r.failed
            );
        }
        let code = match summary.outcome {
            Outcome::NoClients => {
                log!(self.log, 1, "no client registered (no REGISTER received)");
                exit::NO_REGISTER
            }
            Outcome::NoFileInfoAck => exit::NO_FILEINFO_ACK,
            Outcome::AllDropped => exit::DROPPED,
            Outcome::SourceError => {
                log!(self.log, 1, "a file could not be read");
                exit::PARAM
            }
            Outcome::Aborted if user_abort => exit::INTERRUPTED,
            Outcome::Aborted => exit::DROPPED,
            Outcome::Completed => {
                // A client refused by the handshake (a key that is not the pinned one, a
                // failed signature) was never a member: refusing it is the session working,
                // as for uftp 4.10.2, and the log says why.
                let mut members = clients.values().filter(|r| r.refused.is_none());
                if members
                    .clone()
                    .any(|r| r.lost.is_some() || r.failed > r.rejected || !r.done)
                {
                    exit::DROPPED
                } else if members.all(|r| r.ok == 0) && !self.items.is_empty() {
                    exit::NOTHING_RECEIVED
                } else {
                    exit::OK
                }
            }
        };
        self.status_lines(status::StatusLines::stats);
        self.json_event(
            "summary",
            serde_json::json!({
                "outcome": outcome_name(summary.outcome, user_abort),
                "exit_code": code,
                "files": summary.files,
                "bytes": summary.bytes,
                "seconds": (secs * 1e3).round() / 1e3,
                "clients_registered": summary.registered,
                "clients_completed": summary.completed,
                "clients_lost": summary.lost,
                "blocks_sent": c.blocks_sent,
                "retransmitted_blocks": c.retransmitted_blocks,
                "naks_received": c.naks_received,
            }),
        );
        code
    }

    /// Writes `-S` status lines, if asked for: to the file, or to the log for `@LOG`. A failed
    /// write is logged once and ends the lines.
    fn status_lines(
        &mut self,
        write: impl FnOnce(&mut status::StatusLines) -> io::Result<Vec<String>>,
    ) {
        let Some(s) = &mut self.status else {
            return;
        };
        match write(s) {
            Ok(lines) => {
                for l in lines {
                    log!(self.log, 1, "{l}");
                }
            }
            Err(e) => {
                self.status = None;
                log!(self.log, 1, "warning: -S: {e}; no more status lines");
            }
        }
    }

    /// Writes a `--json` event, if asked for; a failed write is logged once and ends the events.
    fn json_event(&mut self, kind: &str, fields: serde_json::Value) {
        if let Some(j) = &mut self.json {
            if let Err(e) = j.emit(kind, fields) {
                let name = j.name().to_string();
                self.json = None;
                log!(self.log, 1, "warning: --json {name}: {e}; no more events");
            }
        }
    }

    fn open_item(&self, item: &Item, source: &mut FileSource) -> io::Result<()> {
        source.set_file(None);
        source.map.clear();
        if item.ftype == FileType::Regular {
            let f = File::open(&item.path)?;
            let size = f.metadata()?.len();
            if size != item.size {
                return Err(io::Error::other("size changed since it was listed"));
            }
            let layout = FileLayout::new(size, self.o.blocksize)
                .map_err(|_| io::Error::other("too large for this block size"))?;
            source.map.resize(layout.bitmap_len(), 0);
            source.set_file(Some(f));
        }
        Ok(())
    }

    fn event(
        &mut self,
        ev: Event,
        clients: &mut BTreeMap<u32, ClientRecord>,
        started: &BTreeMap<u16, (usize, std::time::Instant)>,
    ) -> Option<proto_core::session::sender::SessionSummary> {
        match ev {
            Event::ClientRegistered { id, addr } => {
                clients.entry(id).or_default().addr = Some(addr);
                log!(self.log, 2, "client 0x{id:08X} registered from {addr}");
            }
            Event::ProxyRegistered { id, addr } => {
                log!(self.log, 2, "proxy 0x{id:08X} registered from {addr}");
            }
            Event::ClientRefused { id, reason } => {
                clients.entry(id).or_default().refused = Some(reason);
                log!(
                    self.log,
                    1,
                    "client 0x{id:08X} refused: {}",
                    refusal_text(reason)
                );
            }
            Event::SlowClient {
                id,
                section,
                received_permille,
                delivered,
                sent,
                rate,
            } => {
                let mbit = |b: u64| b as f64 * 8.0 / 1e6;
                log!(
                    self.log,
                    1,
                    "client 0x{id:08X} is holding the group back: it received {:.1}% of \
                     section {section} ({:.1} Mbit/s of {:.1} sent); rate lowered to {:.1} \
                     Mbit/s{}",
                    f64::from(received_permille) / 10.0,
                    mbit(delivered),
                    mbit(sent),
                    mbit(rate),
                    if self.o.max_nak_pct >= 100 {
                        " (-N and -m drop such receivers)"
                    } else {
                        ""
                    }
                );
                self.json_event(
                    "slow_client",
                    serde_json::json!({
                        "client": format!("0x{id:08X}"),
                        "section": section,
                        "received_pct": f64::from(received_permille) / 10.0,
                        "received_bps": delivered * 8,
                        "sent_bps": sent * 8,
                        "rate_bps": rate * 8,
                    }),
                );
            }
            Event::ClientLost { id, reason } => {
                clients.entry(id).or_default().lost = Some(reason);
                log!(self.log, 1, "client 0x{id:08X} lost: {}", lost_text(reason));
            }
            Event::AnnounceDone { clients: n } => {
                log!(self.log, 2, "{n} clients registered");
                let registered: Vec<u32> = clients
                    .iter()
                    .filter(|(_, r)| r.addr.is_some() && r.refused.is_none())
                    .map(|(&id, _)| id)
                    .collect();
                let expected: Vec<u32> = self.o.hosts.iter().map(|h| h.id).collect();
                self.status_lines(|s| s.connect(&registered, &expected));
            }
            Event::FileResult {
                id,
                file_id,
                result,
            } => {
                let item = started.get(&file_id).map(|&(i, _)| &self.items[i]);
                let fields = serde_json::json!({
                    "file_id": file_id,
                    "name": item.map(|i| String::from_utf8_lossy(&i.name).into_owned()),
                    "size": item.map(|i| i.size),
                    "client": json_status::id(id),
                    "result": match result {
                        FileResult::Completed(s) => match s {
                            proto_core::wire::CompleteStatus::Normal => "completed",
                            proto_core::wire::CompleteStatus::Skipped => "skipped",
                            proto_core::wire::CompleteStatus::Overwrite => "overwrite",
                            proto_core::wire::CompleteStatus::Rejected => "rejected",
                            _ => "unknown",
                        },
                        FileResult::Failed => "failed",
                    },
                });
                self.json_event("file_result", fields);
                if let Some(&(i, t)) = started.get(&file_id) {
                    let name = String::from_utf8_lossy(&self.items[i].name).into_owned();
                    let size = self.items[i].size;
                    let registered = clients.get(&id).is_some_and(|r| r.addr.is_some());
                    let secs = match (self.o.sync, self.o.rate) {
                        // Nothing was sent: the time it would have taken at the rate, as uftp
                        // estimates it.
                        (SyncMode::Preview, Some(rate)) => size as f64 / rate as f64,
                        (SyncMode::Preview, None) => 0.0,
                        _ => t.elapsed().as_secs_f64(),
                    };
                    self.status_lines(|s| s.result(id, registered, &name, size, secs, result));
                    // As uftp 4.10.2: right after that client's RESULT for the query.
                    if let Some(bytes) = clients.get_mut(&id).and_then(|r| r.free_space.take()) {
                        self.status_lines(|s| s.free_space(&name, bytes));
                    }
                }
                let r = clients.entry(id).or_default();
                match result {
                    FileResult::Completed(proto_core::wire::CompleteStatus::Skipped) => {
                        r.skipped += 1;
                        log!(
                            self.log,
                            2,
                            "client 0x{id:08X} skipped file {file_id}{}",
                            if self.o.sync == SyncMode::Preview {
                                " (preview: in sync)"
                            } else {
                                ": in sync"
                            }
                        );
                    }
                    FileResult::Completed(proto_core::wire::CompleteStatus::Overwrite) => {
                        r.ok += 1;
                        log!(
                            self.log,
                            2,
                            "client 0x{id:08X} {} file {file_id}: out of sync",
                            if self.o.sync == SyncMode::Preview {
                                "would overwrite"
                            } else {
                                "overwrote"
                            }
                        );
                    }
                    FileResult::Completed(proto_core::wire::CompleteStatus::Rejected) => {
                        r.failed += 1;
                        r.rejected += 1;
                        let name = started.get(&file_id).map_or_else(String::new, |&(i, _)| {
                            String::from_utf8_lossy(&self.items[i].name).into_owned()
                        });
                        // COMPLETE carries no reason: the receiver's log has it.
                        log!(
                            self.log,
                            1,
                            "client 0x{id:08X} rejected file {file_id} ({name}): see its log \
                             (no space, bad name, or something in the way)"
                        );
                    }
                    FileResult::Completed(_) => r.ok += 1,
                    FileResult::Failed => r.failed += 1,
                }
            }
            Event::RateChanged { rate, clr, grtt } => {
                log!(
                    self.log,
                    2,
                    "TFMCC rate {} Kbps ({:.2} MB/s), CLR {}, GRTT {:.3} s",
                    rate / 128,
                    rate as f64 / 1e6,
                    clr.map_or("none".to_string(), |c| format!("0x{c:08X}")),
                    grtt.as_secs_f64()
                );
            }
            Event::FreeSpace { id, file_id, bytes } => {
                log!(self.log, 2, "client 0x{id:08X}: free space {bytes} bytes");
                self.json_event(
                    "free_space",
                    serde_json::json!({
                        "file_id": file_id,
                        "client": json_status::id(id),
                        "bytes": bytes,
                    }),
                );
                clients.entry(id).or_default().free_space = Some(bytes);
            }
            Event::PassStarted {
                file_id,
                pass,
                blocks,
            } if pass > 1 => {
                log!(
                    self.log,
                    3,
                    "file {file_id}: pass {pass}, {blocks} blocks to resend"
                );
            }
            Event::FileDone(s) => {
                let (name, secs) = match started.get(&s.file_id) {
                    Some(&(i, t)) => (
                        String::from_utf8_lossy(&self.items[i].name).into_owned(),
                        t.elapsed().as_secs_f64(),
                    ),
                    None => (String::new(), 0.0),
                };
                // Receivers of a closed group that never registered have no result of their
                // own: uftp's status file calls them mute for every file.
                let mute: Vec<u32> = self
                    .o
                    .hosts
                    .iter()
                    .map(|h| h.id)
                    .filter(|id| clients.get(id).is_none_or(|r| r.addr.is_none()))
                    .collect();
                for id in mute {
                    self.status_lines(|st| {
                        st.result(id, false, &name, s.size, 0.0, FileResult::Failed)
                    });
                }
                log!(
                    self.log,
                    2,
                    "sent {name}: {} bytes, {} passes, {} retransmitted, {:.2} MB/s, {}/{} clients ok",
                    s.size,
                    s.passes,
                    s.retransmitted_blocks,
                    s.size as f64 / secs.max(1e-6) / 1e6,
                    s.completed,
                    s.completed + s.failed
                );
            }
            Event::ClientDone { id } => clients.entry(id).or_default().done = true,
            Event::SessionDone(s) => return Some(s),
            _ => {}
        }
        None
    }

    fn draw_bar(&mut self, current: Option<usize>) {
        let Some(item) = current.and_then(|i| self.items.get(i)) else {
            return;
        };
        let s = self.sender.file_stats();
        if s.blocks == 0 {
            return;
        }
        let frac = f64::from(s.first_pass_blocks) / f64::from(s.blocks);
        let width = 30;
        let full = (frac * width as f64) as usize;
        let _ = write!(
            self.log.out,
            "\r\x1b[K[{}{}] {:5.1}% pass {} {}",
            "=".repeat(full),
            " ".repeat(width - full),
            frac * 100.0,
            s.passes,
            String::from_utf8_lossy(&item.name)
        );
        let _ = self.log.out.flush();
    }
}

/// The refusal of a client in the operator's terms: what was wrong and what to change.
fn refusal_text(r: RefuseReason) -> String {
    let hint = match r {
        RefuseReason::FingerprintMismatch => {
            " (its key is not the one -H pins for it: update the fingerprint or the client's -k)"
        }
        RefuseReason::BadClientKey => {
            " (its key is malformed or of a kind not supported: RSA, or EC on prime256v1/secp384r1)"
        }
        RefuseReason::BadSignature | RefuseReason::BadVerifyData => {
            " (a broken client, or someone else answering in its name)"
        }
        _ => "",
    };
    format!("{}{hint}", r.as_str())
}

/// The end summary's line about what was dropped and refused, if anything was.
fn drop_summary(c: &Counters) -> Option<String> {
    if c.dropped == 0 && c.clients_refused == 0 && c.events_dropped == 0 {
        return None;
    }
    let causes: Vec<String> = [
        (c.auth_failures, "failed authentication"),
        (c.replays, "replayed"),
        (c.malformed_encrypted, "malformed ENCRYPTED"),
        (c.unexpected_plaintext, "plaintext where ENCRYPTED was due"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    let mut parts = Vec::new();
    if c.dropped > 0 {
        let mut p = format!("datagrams dropped: {}", c.dropped);
        if !causes.is_empty() {
            p.push_str(&format!(" ({})", causes.join(", ")));
        }
        parts.push(p);
    }
    if c.clients_refused > 0 {
        parts.push(format!("clients refused: {}", c.clients_refused));
    }
    if c.events_dropped > 0 {
        parts.push(format!("events lost: {}", c.events_dropped));
    }
    Some(parts.join("; "))
}

/// The summary's `outcome` field.
fn outcome_name(o: Outcome, user_abort: bool) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::NoClients => "no_clients",
        Outcome::NoFileInfoAck => "no_fileinfo_ack",
        Outcome::AllDropped => "all_dropped",
        Outcome::SourceError => "source_error",
        Outcome::Aborted if user_abort => "interrupted",
        Outcome::Aborted => "aborted",
    }
}

fn lost_text(r: LostReason) -> &'static str {
    match r {
        LostReason::NotRegistered => "never registered",
        LostReason::NoResponse => "no response",
        LostReason::Aborted => "aborted",
        LostReason::MaxPasses => "maximum passes reached",
        LostReason::SessionAborted => "session aborted",
        LostReason::TooManyNaks => "too many NAKs (-N/-m)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_source_reads_every_block_as_the_file_has_it() {
        let dir = std::env::temp_dir().join(format!("uftp-rs-source-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("f");
        // Three windows and a bit: the last window is short and the last block shorter.
        let data: Vec<u8> = (0..3 * READ_AHEAD + 5000)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let mut src = FileSource::default();
        src.set_file(Some(File::open(&path).unwrap()));
        let block = 1300;
        let check = |src: &mut FileSource, off: usize| {
            let len = block.min(data.len() - off);
            let mut buf = vec![0u8; len];
            src.read_block(1, off as u64, &mut buf).unwrap();
            assert_eq!(buf, data[off..off + len], "block at {off}");
        };
        // In order (blocks straddle window ends), then scattered, then in order again.
        for off in (0..data.len()).step_by(block) {
            check(&mut src, off);
        }
        for off in [block * 700, 13, block * 3, data.len() - 1, READ_AHEAD - 1] {
            check(&mut src, off);
        }
        for off in (block * 10..block * 900).step_by(block) {
            check(&mut src, off);
        }
        let mut past = vec![0u8; 10];
        assert!(src.read_block(1, data.len() as u64, &mut past).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn drop_summary_names_the_causes_seen() {
        assert_eq!(drop_summary(&Counters::default()), None);
        let c = Counters {
            dropped: 7,
            auth_failures: 3,
            replays: 2,
            clients_refused: 1,
            ..Counters::default()
        };
        assert_eq!(
            drop_summary(&c).unwrap(),
            "datagrams dropped: 7 (3 failed authentication, 2 replayed); clients refused: 1"
        );
        let c = Counters {
            clients_refused: 2,
            ..Counters::default()
        };
        assert_eq!(drop_summary(&c).unwrap(), "clients refused: 2");
    }

    #[test]
    fn refusals_name_the_fix() {
        let t = refusal_text(RefuseReason::FingerprintMismatch);
        assert!(
            t.starts_with("Client key fingerprint mismatch") && t.contains("-H"),
            "{t}"
        );
        assert_eq!(
            refusal_text(RefuseReason::KeyExchange),
            RefuseReason::KeyExchange.as_str()
        );
    }

    fn opts(args: &[&str]) -> Options {
        options::parse(args.iter().map(|s| s.to_string())).unwrap()
    }

    #[test]
    fn security_follows_the_options() {
        let s = security(&opts(&["-Y", "aes256-gcm", "f"])).unwrap();
        assert_eq!(s.security.sigtype, SigType::AuthEnc);
        assert!(matches!(&s.security.key, OwnKey::Ec(k) if k.curve() == CurveId::P256));
        assert!(!s.security.client_auth);
        assert_eq!(proto_core::crypto::RsaKeys::count(&s.rsa), 0);
        assert!(s.lines[0].starts_with("encryption: aes256-gcm, sha256, ecdh_ecdsa (prime256v1)"));
        // -H pins turn client authentication on; CBC keeps HMAC and is logged as weak.
        let dir = std::env::temp_dir().join(format!("uftp-sec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hosts = dir.join("hosts");
        std::fs::write(
            &hosts,
            "0x0A000001|66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC\n",
        )
        .unwrap();
        let at = format!("@{}", hosts.display());
        let s = security(&opts(&[
            "--allow-weak",
            "-Y",
            "aes128-cbc",
            "-e",
            "ecdh_ecdsa:secp384r1",
            "-K",
            "secp384r1",
            "-H",
            &at,
            "f",
        ]))
        .unwrap();
        assert_eq!(s.security.sigtype, SigType::Hmac);
        assert_eq!(s.security.ecdh_curve, CurveId::P384);
        assert!(matches!(&s.security.key, OwnKey::Ec(k) if k.curve() == CurveId::P384));
        assert!(s.security.client_auth);
        assert!(s.lines[0].contains("-H pins"), "{:?}", s.lines);
        assert_eq!(
            s.lines.last().unwrap(),
            "WARNING: weak session: CBC cipher without an AEAD"
        );
        // A key file of the wrong kind for -e, and a weak RSA key file, are refused.
        let ec = dir.join("ec.pem");
        let f = ec.display().to_string();
        security(&opts(&[
            "-Y",
            "aes256-gcm",
            "-k",
            &f,
            "-K",
            "prime256v1",
            "f",
        ]))
        .unwrap();
        let (code, msg) = security(&opts(&["-Y", "aes256-gcm", "-e", "rsa", "-k", &f, "f"]))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(code, exit::PARAM);
        assert!(msg.contains("needs an RSA key"), "{msg}");
        let (code, msg) = security(&opts(&[
            "-Y",
            "aes256-gcm",
            "-k",
            &f,
            "-K",
            "prime256v1",
            "f",
        ]))
        .map(|_| ())
        .unwrap_err();
        assert_eq!(code, exit::CRYPTO);
        assert!(msg.contains("already exists"), "{msg}");
        let rsa = dir.join("rsa.pem");
        crate::keys::PrivateKey::generate(crate::keys::KeySpec::Rsa(1024))
            .unwrap()
            .save_new(&rsa)
            .unwrap();
        let f = rsa.display().to_string();
        let (code, msg) = security(&opts(&["-Y", "aes256-gcm", "-e", "rsa", "-k", &f, "f"]))
            .map(|_| ())
            .unwrap_err();
        assert_eq!(code, exit::PARAM);
        assert!(
            msg.contains("RSA key under 2048 bits") && msg.contains("--allow-weak"),
            "{msg}"
        );
        let s = security(&opts(&[
            "--allow-weak",
            "-Y",
            "aes256-gcm",
            "-e",
            "rsa",
            "-k",
            &f,
            "f",
        ]))
        .unwrap();
        assert!(matches!(s.security.key, OwnKey::Rsa(0)));
        assert_eq!(
            proto_core::crypto::RsaKeys::modulus_len(&s.rsa, 0),
            Some(128)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
