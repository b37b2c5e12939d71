//! `uftpd`: the host driver around [`proto_core::session::receiver::Receiver`].
//!
//! One UDP socket on the UFTP port (IPv4, or dual-stack when an IPv6 public address is given)
//! joined to the public groups on the chosen interfaces; private groups are joined when a
//! session starts and left when it ends. Replies go by unicast to the ANNOUNCE's source. Files
//! go through [`storage::FsStorage`].
//!
//! Without `-d` uftpd becomes a daemon once its socket and keys are ready (see
//! [`crate::daemon`]) and logs to `-L` (`/tmp/uftpd.log` by default, rolled by `-g`/`-n`,
//! reopened on SIGHUP). SIGINT or SIGTERM ends it: every session in progress is aborted with
//! "Client shutting down" to its server, its unfinished file goes the way of any aborted file,
//! the PID file is removed, and it exits 6, as uftpd 4.10.2 does.

pub mod options;
pub mod postreceive;
pub mod storage;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto_core::crypto::EcPrivateKey;
use proto_core::session::receiver::{
    AbortReason, Config, DropReason, Event, Receiver, ResponseProxy, SessionId, SessionResult,
};
use proto_core::session::security::{OwnKey, MAX_EC_KEYS};
use proto_core::time::Instant;
use proto_core::wire::{CompleteStatus, HbResult};
use socket2::{Domain, Protocol, Socket, Type};

pub use options::Options;
use storage::FsStorage;

use crate::daemon::{exit, signals, Failure, PidFile};
use crate::ifaddr::{choose_ifaces, join, unmap, Iface};
use crate::json_status::{self, JsonStatus};
use crate::keys::{load_or_generate, HostRsa, PrivateKey};
pub use crate::log::Log;
use crate::status_file::{kb, StatusFile};

/// Concurrent sessions, as uftpd 4.x.
pub const MAX_SESSIONS: usize = 100;

/// Our keys (`-k`, `-K`; an ephemeral P-256 key when neither is given): the RSA ones for the
/// core's [`HostRsa`], the EC ones for its config, and a start-up line for each.
#[derive(Debug)]
struct OwnKeys {
    rsa: HostRsa,
    ec: heapless::Vec<EcPrivateKey, MAX_EC_KEYS>,
    /// The first key, which signs heartbeats (`-H`).
    first: Option<OwnKey>,
    lines: Vec<String>,
}

fn own_keys(opts: &Options) -> Result<OwnKeys, String> {
    let pairs = crate::keys::key_pairs(&opts.daemon.keyfiles, &opts.daemon.keygen);
    let mut rsa = Vec::new();
    let mut ec = heapless::Vec::new();
    let mut lines = Vec::new();
    let mut first = None;
    for (file, spec) in pairs {
        let what = file.map_or_else(|| "-K".to_string(), |f| format!("-k {}", f.display()));
        let (key, origin) = load_or_generate(file, spec).map_err(|e| format!("{what}: {e}"))?;
        let mut line = format!(
            "key {}: {}, fingerprint {} ({origin})",
            lines.len() + 1,
            key.description(),
            key.fingerprint()
        );
        match key {
            PrivateKey::Rsa(k) => {
                if k.bits() < 2048 && !opts.allow_weak {
                    line.push_str(
                        "; under 2048 bits: sessions that use it are refused unless --allow-weak",
                    );
                }
                if first.is_none() {
                    first = Some(OwnKey::Rsa(rsa.len()));
                }
                rsa.push(k);
            }
            PrivateKey::Ec(k) => {
                let k = k.key().map_err(|e| format!("{what}: {e}"))?.clone();
                if first.is_none() {
                    first = Some(OwnKey::Ec(k.clone()));
                }
                ec.push(k)
                    .map_err(|_| format!("{what}: at most {MAX_EC_KEYS} EC keys"))?;
            }
        }
        lines.push(line);
    }
    Ok(OwnKeys {
        rsa: HostRsa::new(rsa),
        ec,
        first,
        lines,
    })
}

fn session_tag(s: SessionId) -> String {
    format!("[{:08X}/{:02X}]", s.group_id, s.group_inst)
}

/// Runs `uftpd` with `args` (without the program name) and returns its exit code.
pub fn main(args: Vec<String>) -> i32 {
    if let Some(info) = crate::cli::info_request(&options::PAGE, &args) {
        return crate::cli::print_info(&options::PAGE, info);
    }
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uftpd: {e}");
            return exit::PARAM;
        }
    };
    match run(opts) {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("uftpd: {msg}");
            code
        }
    }
}

/// Runs uftpd until SIGINT/SIGTERM and returns its exit code, or a start-up failure (code and
/// one line for the user).
pub fn run(opts: Options) -> Result<i32, Failure> {
    let param = |e: String| (exit::PARAM, e);
    let sockerr = |e: String| (exit::SOCKET, e);
    let mut log = match opts.log_file() {
        Some((path, rolling)) => Log::file(&path, opts.daemon.log_level, rolling),
        None => Ok(Log::stderr(opts.daemon.log_level)),
    }
    .map_err(|e| (exit::LOG, e))?;
    let mut storage = match &opts.temp_dir {
        Some(t) => FsStorage::with_temp_dir(&opts.dest_dirs, t),
        None => FsStorage::new(&opts.dest_dirs).and_then(|s| s.with_backup_dirs(&opts.backup_dirs)),
    }
    .map_err(param)?;
    storage.move_each_file(opts.move_each_file);
    let json = match &opts.json {
        Some(p) => Some(JsonStatus::open(p).map_err(|e| {
            (
                exit::PARAM,
                format!("--json: cannot open {}: {e}", p.display()),
            )
        })?),
        None => None,
    };
    let status = match &opts.status_file {
        Some(p) => Some(
            StatusFile::open(p)
                .map_err(|e| (exit::PARAM, format!("-F: cannot open {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut reports = Reports {
        json,
        status,
        servers: HashMap::new(),
        dest_dirs: storage.dest_dirs().to_vec(),
        post: opts.postreceive.clone().map(postreceive::PostReceive::new),
        heartbeats: HashMap::new(),
    };
    let ifaces = choose_ifaces(&opts.daemon.interfaces).map_err(param)?;
    let uid = match opts.daemon.uid {
        Some(u) => u,
        None => ifaces
            .iter()
            .find_map(|i| i.ipv4)
            .map(u32::from)
            .ok_or_else(|| {
                param("no interface has an IPv4 address to derive the UID from (use -U)".into())
            })?,
    };
    if let Some(p) = opts.daemon.priority {
        crate::daemon::nice(p);
    }
    let v6 = opts.daemon.public_addrs.iter().any(IpAddr::is_ipv6);
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| sockerr(format!("cannot create socket: {e}")))?;
    if v6 {
        sock.set_only_v6(false)
            .map_err(|e| sockerr(format!("cannot make the socket dual-stack: {e}")))?;
    }
    sock.set_reuse_address(true)
        .map_err(|e| sockerr(format!("socket option: {e}")))?;
    // Coalesced datagrams (from a sender using GSO) arrive as one buffer; `RxBatch` splits them.
    crate::udp::enable_gro(&sock);
    // As root, -B is honoured above net.core.rmem_max (a few MiB by default), which at
    // Gbit/s holds only milliseconds of data; otherwise the kernel caps it there.
    if crate::udp::force_recv_buffer(&sock, opts.daemon.bufsize) {
    } else if let Err(e) = sock.set_recv_buffer_size(opts.daemon.bufsize) {
        log.line(
            1,
            &format!("cannot set receive buffer to {}: {e}", opts.daemon.bufsize),
        );
    }
    if opts.daemon.dscp != 0 {
        let tos = u32::from(opts.daemon.dscp) << 2;
        let r = if v6 {
            sock.set_tclass_v6(tos)
        } else {
            sock.set_tos(tos)
        };
        r.map_err(|e| sockerr(format!("cannot set DSCP: {e}")))?;
    }
    let bind: SocketAddr = if v6 {
        (Ipv6Addr::UNSPECIFIED, opts.daemon.port).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, opts.daemon.port).into()
    };
    sock.bind(&bind.into())
        .map_err(|e| sockerr(format!("cannot bind UDP port {}: {e}", opts.daemon.port)))?;
    let sock: UdpSocket = sock.into();
    for g in &opts.daemon.public_addrs {
        join(&sock, *g, &ifaces, false).map_err(|e| sockerr(format!("cannot join {e}")))?;
    }
    let mut public_addrs = heapless::Vec::new();
    for a in opts
        .daemon
        .public_addrs
        .iter()
        .take(proto_core::session::receiver::MAX_PUBLIC_ADDRS)
    {
        let _ = public_addrs.push(*a);
    }
    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let keys = own_keys(&opts).map_err(|e| (exit::CRYPTO, e))?;
    let mut config = Config::new(uid, seed);
    config.public_addrs = public_addrs;
    config.require_encryption = opts.require_encryption;
    config.allow_weak = opts.allow_weak;
    config.ec_keys = keys.ec;
    config.heartbeat_key = keys.first;
    for h in &opts.daemon.heartbeat_hosts {
        // Heartbeats go to the UFTP port, 1044, unless given (as uftpd's).
        let addr =
            crate::proxy::options::resolve(h, 1044).map_err(|e| param(format!("-H: {e}")))?;
        if addr.is_ipv6() && !v6 {
            return Err(param(format!(
                "-H: {addr} is IPv6, but no -M address is (the socket is IPv4)"
            )));
        }
        config
            .heartbeat_hosts
            .push(addr)
            .map_err(|_| param("-H: too many hosts".to_string()))?;
    }
    if let Some(i) = opts.daemon.heartbeat_interval {
        config.heartbeat_interval = i;
    }
    for s in &opts.servers {
        config
            .servers
            .push(*s)
            .map_err(|_| param("-S: too many servers".to_string()))?;
    }
    if let Some((host, fingerprint)) = &opts.response_proxy {
        // The proxy listens on the UFTP port, as we do.
        let addr = crate::proxy::options::resolve(host, opts.daemon.port)
            .map_err(|e| param(format!("-R: {e}")))?;
        if addr.is_ipv6() && !v6 {
            return Err(param(format!(
                "-R: {addr} is IPv6, but no -M address is (the socket is IPv4)"
            )));
        }
        config.response_proxy = Some(ResponseProxy {
            addr,
            fingerprint: *fingerprint,
        });
    }
    let config_proxy = config.response_proxy;
    let config_heartbeats = (config.heartbeat_hosts.clone(), config.heartbeat_interval);
    let mut rx: Box<Receiver<MAX_SESSIONS, HostRsa>> =
        Box::new(Receiver::with_rsa(config, keys.rsa));

    // Everything that can fail at start-up has been tried: detach, then write the PID file
    // (the daemon's PID) before the starting command returns.
    let starting = if opts.daemon.foreground {
        None
    } else {
        let starting = crate::daemon::daemonize("uftpd")
            .map_err(|e| sockerr(format!("cannot become a daemon: {e}")))?;
        let _ = log.capture_stderr();
        Some(starting)
    };
    let _pidfile = match opts
        .daemon
        .pidfile
        .as_deref()
        .map(PidFile::write)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            if let Some(s) = starting {
                s.failed(exit::PARAM, &e);
            }
            return Err(param(e));
        }
    };
    signals::install();
    if let Some(s) = starting {
        s.ready();
    }
    log.line(
        1,
        &format!(
            "uftpd (uftp-rs {}) listening on port {} as UID 0x{uid:08X}, groups {}, interfaces {}, destinations {}",
            env!("CARGO_PKG_VERSION"),
            opts.daemon.port,
            opts.daemon.public_addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            ifaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(","),
            opts.dest_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
        ),
    );
    log.line(
        1,
        &format!(
            "security: {}, weak sessions {}, {}",
            if opts.require_encryption {
                "encrypted sessions only (-E)"
            } else {
                "unencrypted and encrypted sessions"
            },
            if opts.allow_weak {
                "allowed (--allow-weak)"
            } else {
                "refused"
            },
            match &opts.daemon.server_list {
                Some(p) => format!("{} servers trusted ({})", opts.servers.len(), p.display()),
                None => "any server".to_string(),
            }
        ),
    );
    for line in &keys.lines {
        log.line(1, line);
    }
    if let Some(t) = &opts.temp_dir {
        log.line(
            1,
            &format!(
                "receiving into temp directory {} (-T): what a failed session received is kept \
                 there for its restart",
                t.display()
            ),
        );
    }
    if let Some(p) = &config_proxy {
        log.line(
            1,
            &format!(
                "responses go to the response proxy at {} ({}); asking for its key",
                p.addr,
                p.fingerprint.map_or_else(
                    || "its key taken from that address".to_string(),
                    |fp| format!("its key must have fingerprint {fp}")
                )
            ),
        );
    }
    if !config_heartbeats.0.is_empty() {
        log.line(
            1,
            &format!(
                "heartbeats to {} every {} s, signed with key 1 when a proxy asks",
                config_heartbeats
                    .0
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                config_heartbeats.1.as_secs()
            ),
        );
    }
    let mut proxy_key = None;
    let start = std::time::Instant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut batch = crate::udp::RxBatch::new();
    let mut timeout_set = 0u128;
    let mut outbuf = vec![0u8; 9216];
    let mut private: HashMap<IpAddr, usize> = HashMap::new();
    let signal = loop {
        if let Some(sig) = signals::stop() {
            break sig;
        }
        if signals::take_hangup() {
            log.reopen();
        }
        let t = now();
        let wait = rx
            .poll_timeout()
            .map_or(Duration::from_millis(200), |d| d - t)
            .clamp(Duration::from_micros(500), Duration::from_millis(200));
        // Millisecond steps: the timeout is a system call to change, and 1 ms is below any
        // GRTT the protocol uses.
        let wait = wait.max(Duration::from_millis(1));
        let wait_ms = wait.as_millis();
        if wait_ms != timeout_set {
            timeout_set = wait_ms;
            let _ = sock.set_read_timeout(Some(Duration::from_millis(wait_ms as u64)));
        }
        match batch.recv(&sock) {
            Ok(_) => {
                let t = now();
                batch.for_each(|from, d| rx.handle_datagram(t, unmap(from), d, &mut storage));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => log.line(1, &format!("receive error: {e}")),
        }
        let t = now();
        if rx.poll_timeout().is_some_and(|d| d <= t) {
            rx.handle_timeout(t, &mut storage);
        }
        // Events before the answers go out: a new session's private group is joined before
        // its REGISTER leaves, or the server's KEYINFO (sent the moment the REGISTER lands)
        // can arrive before the join and be lost, and the session waits a whole announce round.
        take_events(
            &mut rx,
            &sock,
            &ifaces,
            &mut private,
            &storage,
            &mut log,
            &mut reports,
        );
        send_all(&mut rx, t, &mut outbuf, &mut storage, &sock, v6, &mut log);
        for note in storage.notes.drain(..) {
            log.line(1, &note);
        }
        take_events(
            &mut rx,
            &sock,
            &ifaces,
            &mut private,
            &storage,
            &mut log,
            &mut reports,
        );
        if rx.response_proxy_key() != proxy_key {
            proxy_key = rx.response_proxy_key();
            if let (Some(fp), Some(p)) = (proxy_key, &config_proxy) {
                log.line(
                    2,
                    &format!("Received PROXY_KEY from {}: key fingerprint {fp}", p.addr),
                );
            }
        }
        reports.post_notes(&mut log);
        storage.forget_ended();
    };
    log.line(1, &format!("Exiting on signal {signal}"));
    // Every server hears that we stop; unfinished files go as an abort sends them.
    loop {
        let left = rx.shut_down(&mut storage);
        let t = now();
        send_all(&mut rx, t, &mut outbuf, &mut storage, &sock, v6, &mut log);
        if left == 0 {
            break;
        }
    }
    for note in storage.notes.drain(..) {
        log.line(1, &note);
    }
    take_events(
        &mut rx,
        &sock,
        &ifaces,
        &mut private,
        &storage,
        &mut log,
        &mut reports,
    );
    let dropped: Vec<String> = rx
        .stats()
        .dropped
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .filter_map(|(i, &n)| drop_reason(i).map(|r| format!("{n} {}", r.as_str())))
        .collect();
    if !dropped.is_empty() {
        log.line(1, &format!("dropped datagrams: {}", dropped.join(", ")));
    }
    // `shut_down` ended every session through the Storage as any abort does (the unfinished
    // file discarded, `session_failed` for whatever restart state the storage keeps): nothing
    // is left to clean here.
    storage.forget_ended();
    Ok(exit::INTERRUPTED)
}

/// Where status goes besides the log: `--json` events and `-F` status lines.
struct Reports {
    json: Option<JsonStatus>,
    status: Option<StatusFile>,
    /// Each running session's server ID and address, for the status lines.
    servers: HashMap<SessionId, (u32, IpAddr)>,
    dest_dirs: Vec<PathBuf>,
    /// `-s`: the post-receive command.
    post: Option<postreceive::PostReceive>,
    /// The last answer of each heartbeat proxy (`-H`): a change is logged at the default
    /// level, a repeat only at -x 3.
    heartbeats: HashMap<SocketAddr, HbResult>,
}

impl Reports {
    /// Starts the post-receive command on `files` of `session`, if one is set.
    fn post_receive(&mut self, log: &mut Log, session: SessionId, files: &[&Path]) {
        let Some(p) = &self.post else {
            return;
        };
        if files.is_empty() {
            return;
        }
        let tag = session_tag(session);
        let what = p.describe(session.group_id, files);
        match p.run(session.group_id, files) {
            Ok(pid) => log.line(2, &format!("{tag} running {what} [{pid}]")),
            Err(e) => log.line(1, &format!("{tag} cannot run {what}: {e}")),
        }
    }

    /// Logs what the post-receive runs have reported.
    fn post_notes(&mut self, log: &mut Log) {
        if let Some(p) = &self.post {
            for (level, line) in p.drain() {
                log.line(level, &line);
            }
        }
    }

    /// The top-level entries a completed `-T` session moved into the destination: the first
    /// component of each received name, under its destination directory, each once.
    fn top_level(&self, storage: &FsStorage, session: SessionId) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in storage.names_in(session) {
            let p = storage.final_path(session, p);
            let Some((dest, rel)) = self
                .dest_dirs
                .iter()
                .find_map(|d| p.strip_prefix(d).ok().map(|r| (d, r)))
            else {
                continue;
            };
            let Some(first) = rel.components().next() else {
                continue;
            };
            let top = dest.join(first);
            if !out.contains(&top) {
                out.push(top);
            }
        }
        out
    }

    /// Writes a `-F` status line, if asked for: to the file, or to the log for `@LOG`. A failed
    /// write is logged once and ends the lines.
    fn status_line(&mut self, log: &mut Log, line: impl FnOnce() -> String) {
        let Some(s) = &mut self.status else {
            return;
        };
        match s.write(line()) {
            Ok(Some(l)) => log.line(1, &l),
            Ok(None) => {}
            Err(e) => {
                log.line(0, &format!("-F: {e}; no more status lines"));
                self.status = None;
            }
        }
    }

    /// The `RESULT` status line of a file.
    fn result_line(
        &mut self,
        log: &mut Log,
        storage: &FsStorage,
        (session, file_id): (SessionId, u16),
        size: u64,
        status: &str,
    ) {
        if self.status.is_none() {
            return;
        }
        let (server_id, _) = self
            .servers
            .get(&session)
            .copied()
            .unwrap_or((0, IpAddr::from([0, 0, 0, 0])));
        let name = storage
            .name_of(session, file_id)
            .map_or_else(String::new, |p| {
                self.sent_name(&storage.final_path(session, p))
            });
        self.status_line(log, || {
            format!(
                "RESULT;{};{server_id:08X};{:08X};{name};{};{status}",
                crate::status_file::timestamp(),
                session.group_id,
                kb(size)
            )
        });
    }

    /// Writes a `--json` event, if asked for; a failed write is logged once and ends the events.
    fn json_event(&mut self, log: &mut Log, kind: &str, fields: serde_json::Value) {
        if let Some(j) = &mut self.json {
            if let Err(e) = j.emit(kind, fields) {
                log.line(
                    0,
                    &format!("--json {}: {e}; no more status events", j.name()),
                );
                self.json = None;
            }
        }
    }

    /// The name a destination path was sent under: the path below the destination directory
    /// that holds it (the whole path when none does: an absolute name from the sender).
    fn sent_name(&self, path: &Path) -> String {
        self.dest_dirs
            .iter()
            .find_map(|d| path.strip_prefix(d).ok())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// The `file` event of an item that ended with `result`.
    fn file_event(
        &mut self,
        log: &mut Log,
        storage: &FsStorage,
        (session, file_id): (SessionId, u16),
        size: Option<u64>,
        result: &str,
        reason: Option<&str>,
    ) {
        if self.json.is_none() {
            return;
        }
        let path = storage
            .name_of(session, file_id)
            .map(|p| storage.final_path(session, p));
        let fields = serde_json::json!({
            "session": session_label(session),
            "file_id": file_id,
            "name": path.as_deref().map(|p| self.sent_name(p)),
            "size": size,
            "path": path.as_deref().map(|p| p.display().to_string()),
            "result": result,
            "reason": reason,
        });
        self.json_event(log, "file", fields);
    }
}

/// A session as `--json` names it: group ID and instance, `GGGGGGGG/II`.
fn session_label(s: SessionId) -> String {
    format!("{:08X}/{:02X}", s.group_id, s.group_inst)
}

/// Sends every datagram the receiver has ready (IPv4 destinations mapped on an IPv6 socket).
fn send_all(
    rx: &mut Receiver<MAX_SESSIONS, HostRsa>,
    t: Instant,
    outbuf: &mut [u8],
    storage: &mut FsStorage,
    sock: &UdpSocket,
    v6: bool,
    log: &mut Log,
) {
    while let Some(tx) = rx.poll_transmit(t, outbuf, storage) {
        let dest = match (tx.dest, v6) {
            (SocketAddr::V4(a), true) => SocketAddr::from((a.ip().to_ipv6_mapped(), a.port())),
            (d, _) => d,
        };
        if let Err(e) = sock.send_to(&outbuf[..tx.len], dest) {
            log.line(1, &format!("send to {dest} failed: {e}"));
        }
    }
}

/// Handles every event the receiver has ready.
fn take_events(
    rx: &mut Receiver<MAX_SESSIONS, HostRsa>,
    sock: &UdpSocket,
    ifaces: &[Iface],
    private: &mut HashMap<IpAddr, usize>,
    storage: &FsStorage,
    log: &mut Log,
    reports: &mut Reports,
) {
    while let Some(ev) = rx.poll_event() {
        handle_event(&ev, sock, ifaces, private, storage, log, reports);
    }
}

fn handle_event(
    ev: &Event,
    sock: &UdpSocket,
    ifaces: &[Iface],
    private: &mut HashMap<IpAddr, usize>,
    storage: &FsStorage,
    log: &mut Log,
    reports: &mut Reports,
) {
    match ev {
        Event::HeartbeatSent { to } => log.line(3, &format!("Sent HB_REQ to {to}")),
        Event::HeartbeatAnswered { from, result } => {
            let changed = reports.heartbeats.insert(*from, *result) != Some(*result);
            let (level, text) = match result {
                HbResult::Ok => (2, format!("heartbeat answered by {from}: OK")),
                HbResult::Challenge => (
                    3,
                    format!("heartbeat challenged by {from}: answering with a signed one"),
                ),
                HbResult::Failed => (
                    1,
                    format!(
                        "heartbeat refused by {from}: Heartbeat authentication failed (the \
                         proxy's -s fp= must be the fingerprint of our first key)"
                    ),
                ),
                HbResult::Unknown(r) => (
                    1,
                    format!("heartbeat answered by {from}: unknown result {r}"),
                ),
            };
            log.line(if changed { level } else { 3 }, &text);
        }
        Event::SessionStarted {
            session,
            server_id,
            server,
            private_addr,
            cipher,
            hash,
            fingerprint,
            weak,
        } => {
            let security = match fingerprint {
                Some(fp) => format!(
                    ", encrypted {} {}, server key {fp}",
                    cipher.name(),
                    hash.name()
                ),
                None => ", unencrypted".to_string(),
            };
            log.line(
                2,
                &format!(
                    "{} Received request from 0x{server_id:08X} at {server}, private group {private_addr}{security}",
                    session_tag(*session)
                ),
            );
            if let Some(why) = weak {
                log.line(
                    1,
                    &format!("{} WARNING: weak session: {why}", session_tag(*session)),
                );
            }
            reports.servers.insert(*session, (*server_id, server.ip()));
            reports.status_line(log, || {
                format!(
                    "CONNECT;{};{server_id:08X};{:08X};{ip};{ip}",
                    crate::status_file::timestamp(),
                    session.group_id,
                    ip = server.ip()
                )
            });
            reports.json_event(
                log,
                "session_start",
                serde_json::json!({
                    "session": session_label(*session),
                    "server_id": json_status::id(*server_id),
                    "server": server.to_string(),
                    "private": private_addr.to_string(),
                    "encrypted": fingerprint.is_some(),
                    "cipher": fingerprint.map(|_| cipher.name()),
                }),
            );
            if !private_addr.is_unspecified() {
                let n = private.entry(*private_addr).or_insert(0);
                *n += 1;
                if *n == 1 {
                    if let Err(e) = join(sock, *private_addr, ifaces, false) {
                        log.line(0, &format!("{} cannot join {e}", session_tag(*session)));
                    }
                }
            }
        }
        Event::Registered { session } => log.line(
            3,
            &format!("{} Registration confirmed", session_tag(*session)),
        ),
        Event::SessionEnded {
            session,
            private_addr,
            result,
        } => {
            let how = match result {
                SessionResult::Completed => "Session complete".to_string(),
                SessionResult::AbortedByServer(r) => {
                    format!("Session aborted by server: {}", String::from_utf8_lossy(r))
                }
                SessionResult::Aborted(r) => format!("Session aborted: {}", r.as_str()),
            };
            log.line(2, &format!("{} {how}", session_tag(*session)));
            let (result, reason) = match result {
                SessionResult::Completed => ("completed", None),
                SessionResult::AbortedByServer(r) => (
                    "aborted_by_server",
                    Some(String::from_utf8_lossy(r).into_owned()),
                ),
                SessionResult::Aborted(r) => ("aborted", Some(r.as_str().to_string())),
            };
            reports.servers.remove(session);
            if storage.keeps_partial_files() && !storage.moves_each_file() && result == "completed"
            {
                let top = reports.top_level(storage, *session);
                let files: Vec<&Path> = top.iter().map(PathBuf::as_path).collect();
                reports.post_receive(log, *session, &files);
            }
            reports.json_event(
                log,
                "session_end",
                serde_json::json!({
                    "session": session_label(*session),
                    "result": result,
                    "reason": reason,
                }),
            );
            if let Some(n) = private.get_mut(private_addr) {
                *n -= 1;
                if *n == 0 {
                    private.remove(private_addr);
                    let _ = join(sock, *private_addr, ifaces, true);
                }
            }
        }
        Event::Refused {
            session,
            server_id,
            server,
            reason,
            fingerprint,
            detail,
            aborted,
        } => log.line(
            1,
            &format!(
                "{} {}",
                session_tag(*session),
                refusal_text(
                    *server_id,
                    *server,
                    *reason,
                    *fingerprint,
                    *detail,
                    *aborted
                )
            ),
        ),
        Event::FileStarted {
            session,
            file_id,
            kind,
            size,
        } => {
            log.line(
                2,
                &format!(
                    "{} Receiving {} {} ({size} bytes, file {file_id})",
                    session_tag(*session),
                    kind.name(),
                    storage
                        .name_of(*session, *file_id)
                        .map_or_else(|| "?".into(), |p| p.display().to_string())
                ),
            );
            if let Some(n) = storage.resumed_blocks(*session).filter(|&n| n > 0) {
                log.line(
                    2,
                    &format!(
                        "{} Resuming: {n} blocks kept from an earlier instance",
                        session_tag(*session)
                    ),
                );
            }
        }
        Event::FileFinished {
            session,
            file_id,
            size,
            overwrite,
        } => {
            log.line(
                2,
                &format!(
                    "{} Done: {} ({size} bytes, file {file_id}){}",
                    session_tag(*session),
                    storage
                        .name_of(*session, *file_id)
                        .map_or_else(|| "?".into(), |p| p.display().to_string()),
                    if *overwrite {
                        ", overwrote an out of sync file"
                    } else {
                        ""
                    }
                ),
            );
            let (json, status) = if *overwrite {
                ("overwritten", "overwritten")
            } else {
                ("received", "copied")
            };
            reports.file_event(log, storage, (*session, *file_id), Some(*size), json, None);
            reports.result_line(log, storage, (*session, *file_id), *size, status);
            if !storage.keeps_partial_files() || storage.moves_each_file() {
                if let Some(p) = storage.name_of(*session, *file_id) {
                    let p = storage.final_path(*session, p);
                    reports.post_receive(log, *session, &[&p]);
                }
            }
        }
        Event::FileRejected {
            session,
            file_id,
            reason,
        } => {
            log.line(
                1,
                &format!(
                    "{} Rejected file {file_id}: {}",
                    session_tag(*session),
                    reason.as_str()
                ),
            );
            reports.file_event(
                log,
                storage,
                (*session, *file_id),
                None,
                "rejected",
                Some(reason.as_str()),
            );
            reports.result_line(log, storage, (*session, *file_id), 0, "rejected");
        }
        Event::FileSkipped {
            session,
            file_id,
            size,
            status,
            preview,
        } => {
            let name = storage
                .name_of(*session, *file_id)
                .map_or_else(|| "?".into(), |p| p.display().to_string());
            let (what, result) = match status {
                CompleteStatus::Normal => ("copying new file", "copied"),
                CompleteStatus::Overwrite => ("overwriting out of sync file", "overwritten"),
                _ => ("skipping file, in sync", "skipped"),
            };
            let tag = session_tag(*session);
            if *preview {
                log.line(
                    2,
                    &format!("{tag} Sync preview mode, skipping receive of {name} ({size} bytes, file {file_id}): would be {what}"),
                );
            } else {
                log.line(
                    2,
                    &format!("{tag} {name} ({size} bytes, file {file_id}): {what}"),
                );
            }
            let json = if *preview { "preview" } else { "skipped" };
            reports.file_event(
                log,
                storage,
                (*session, *file_id),
                Some(*size),
                json,
                Some(result),
            );
            reports.result_line(log, storage, (*session, *file_id), *size, result);
        }
        Event::FileAborted { session, file_id } => {
            log.line(
                1,
                &format!(
                    "{} Aborted file {file_id} ({}): {}",
                    session_tag(*session),
                    storage
                        .name_of(*session, *file_id)
                        .map_or_else(|| "?".into(), |p| p.display().to_string()),
                    if storage.keeps_partial_files() {
                        "partial file kept for a restart"
                    } else {
                        "temporary removed"
                    }
                ),
            );
            reports.file_event(log, storage, (*session, *file_id), None, "aborted", None);
        }
        Event::Dropped { reason, count } => {
            // Rate-limited: the 1st, 2nd, 4th, 8th … drop for each reason. Datagrams that fail
            // authentication or replay are worth an operator's eye; the rest is noise.
            if count.is_power_of_two() {
                let level = if security_drop(*reason) { 2 } else { 3 };
                log.line(
                    level,
                    &format!("dropped datagram: {} ({count} so far)", reason.as_str()),
                );
            }
        }
    }
}

/// The drop reason counted at `index` of [`Stats::dropped`](proto_core::session::receiver::Stats).
fn drop_reason(index: usize) -> Option<DropReason> {
    use DropReason as D;
    [
        D::Malformed,
        D::UnknownSession,
        D::WrongServer,
        D::Misordered,
        D::Encrypted,
        D::WrongFile,
        D::BadBlock,
        D::Unexpected,
        D::BadAnnounce,
        D::Replayed,
        D::AuthFailed,
        D::Unauthenticated,
        D::Untrusted,
    ]
    .into_iter()
    .find(|r| r.index() == index)
}

/// Drops that say something about an attacker or a misconfigured peer rather than the network.
/// (Untrusted ANNOUNCEs are not among them: their refusal is logged once per session.)
fn security_drop(reason: DropReason) -> bool {
    matches!(
        reason,
        DropReason::AuthFailed | DropReason::Replayed | DropReason::Unauthenticated
    )
}

/// The log line for a refused ANNOUNCE: who, why in the operator's terms (what to change), and
/// whether the server was told.
fn refusal_text(
    server_id: u32,
    server: SocketAddr,
    reason: AbortReason,
    fingerprint: Option<proto_core::crypto::Fingerprint>,
    detail: Option<&'static str>,
    aborted: bool,
) -> String {
    let key = fingerprint.map_or_else(String::new, |fp| format!("key fingerprint {fp} "));
    let why = match reason {
        AbortReason::UntrustedServer => {
            "not in the server list (-S: no line with this ID and address)".to_string()
        }
        AbortReason::ServerKeyMismatch if fingerprint.is_some() => {
            format!("{key}not in the server list")
        }
        AbortReason::ServerKeyMismatch => {
            "unencrypted session, but the server list pins this server's key".to_string()
        }
        AbortReason::BadServerKey => format!("{key}is malformed or on an unsupported curve"),
        AbortReason::BadSignature => format!("ANNOUNCE signature does not verify with {key}"),
        AbortReason::EncryptionRequired => {
            "unencrypted session, and -E allows encrypted ones only".to_string()
        }
        AbortReason::WeakSession => format!(
            "weak encryption{} (give --allow-weak to accept it)",
            detail.map_or_else(String::new, |d| format!(": {d}"))
        ),
        AbortReason::NoCompatibleKey => format!(
            "client authentication needs our key of the server key's type and size {}\
             (give -k/-K with an RSA key of the same size or an EC key on the same curve)",
            fingerprint.map_or_else(String::new, |fp| format!("({fp}) "))
        ),
        other => {
            let mut s = other.as_str().to_string();
            if let Some(d) = detail {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
    };
    format!(
        "refusing server 0x{server_id:08X} at {}: {why}{}",
        server.ip(),
        if aborted {
            "; ABORT sent"
        } else {
            "; ignored without reply"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_core::crypto::Fingerprint;

    #[test]
    fn every_drop_reason_has_its_counter_name() {
        for i in 0..DropReason::COUNT {
            assert_eq!(drop_reason(i).map(DropReason::index), Some(i));
        }
        assert_eq!(drop_reason(DropReason::COUNT), None);
    }

    #[test]
    fn refusals_say_who_why_and_what_to_change() {
        let server: SocketAddr = "10.77.0.1:1044".parse().unwrap();
        let fp = Fingerprint([0xAB; 20]);
        let line = refusal_text(
            0x0A4D_0001,
            server,
            AbortReason::ServerKeyMismatch,
            Some(fp),
            None,
            false,
        );
        assert_eq!(
            line,
            format!(
                "refusing server 0x0A4D0001 at 10.77.0.1: key fingerprint {fp} not in the server \
                 list; ignored without reply"
            )
        );
        let line = refusal_text(
            1,
            server,
            AbortReason::WeakSession,
            None,
            Some("SHA-1 hash"),
            true,
        );
        assert!(
            line.ends_with(
                "weak encryption: SHA-1 hash (give --allow-weak to accept it); ABORT sent"
            ),
            "{line}"
        );
        let line = refusal_text(
            1,
            server,
            AbortReason::NoCompatibleKey,
            Some(fp),
            None,
            true,
        );
        assert!(
            line.contains("-k/-K") && line.contains(&fp.to_string()),
            "{line}"
        );
        let line = refusal_text(1, server, AbortReason::TooManySessions, None, None, true);
        assert!(line.ends_with(": Too many sessions; ABORT sent"), "{line}");
    }

    #[test]
    fn own_keys_default_to_an_ephemeral_p256_key() {
        let o = Options::parse(["-d".to_string()]).unwrap();
        let k = own_keys(&o).unwrap();
        assert_eq!(k.ec.len(), 1);
        assert_eq!(k.ec[0].curve(), proto_core::crypto::CurveId::P256);
        assert_eq!(proto_core::crypto::RsaKeys::count(&k.rsa), 0);
        assert!(
            k.lines[0].contains("ECDSA, curve prime256v1"),
            "{:?}",
            k.lines
        );
    }

    #[test]
    fn own_keys_are_written_to_missing_files_and_read_back() {
        let dir = std::env::temp_dir().join(format!("uftpd-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.pem"), dir.join("b.pem"));
        let files = format!("{},{}", a.display(), b.display());
        let args = |extra: &[&str]| {
            let mut v = vec!["-d".to_string(), "-k".into(), files.clone()];
            v.extend(extra.iter().map(|s| s.to_string()));
            Options::parse(v).unwrap()
        };
        let made = own_keys(&args(&["-K", "ec:prime256v1,ec:secp384r1"])).unwrap();
        assert_eq!(made.ec.len(), 2);
        assert!(made.lines[0].contains("saved to"), "{:?}", made.lines);
        let read = own_keys(&args(&[])).unwrap();
        assert!(read.lines[1].contains("read from"), "{:?}", read.lines);
        assert_eq!(
            read.lines[1].split("fingerprint").nth(1).map(|s| &s[..60]),
            made.lines[1].split("fingerprint").nth(1).map(|s| &s[..60])
        );
        // Generating over an existing key file is refused, naming it.
        let e = own_keys(&args(&["-K", "ec:prime256v1,ec:prime256v1"])).unwrap_err();
        assert!(e.contains("a.pem") && e.contains("already exists"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
