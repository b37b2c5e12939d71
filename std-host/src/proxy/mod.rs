//! `uftpproxyd`: the host driver around [`proto_core::session::proxy::Proxy`].
//!
//! One UDP socket on the proxy's port (`-p`; IPv4, or dual-stack when an IPv6 address is
//! configured) receives everything: unicast from servers, server proxies, client proxies and
//! clients, and the multicast of the groups it joins on the `-I` interfaces — the public
//! addresses (`-M`) for server and response proxies, and each session's private address while
//! the session lasts. The same socket sends: unicast by the routing table, multicast out of the
//! `-O` interface (a client proxy's network) with `-t` as TTL. Datagrams this proxy sent itself
//! (multicast looped back) are dropped before the core sees them.
//!
//! Without `-d` the proxy becomes a daemon once its sockets and keys are ready (so that every
//! start-up error still reaches the terminal with its exit code) and logs to `-L`
//! (`/tmp/uftpproxyd.log` by default, rolled by `-g`/`-n`, reopened on SIGHUP; see
//! [`crate::daemon`]). It runs until SIGINT or SIGTERM and then exits 6, as uftpproxyd 4.10.2
//! does.

pub mod options;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use proto_core::crypto::Fingerprint;
use proto_core::session::proxy::{
    Downstream, DropReason, Event, GroupEnd, Proxy, ProxyConfig, ProxyMode,
};
use proto_core::session::security::OwnKey;
use proto_core::time::Instant;
use proto_core::wire::{HbResult, KeyType};
use socket2::{Domain, Protocol, Socket, Type};

pub use options::{Mode, Options};

use crate::ifaddr::{choose_ifaces, join, unmap, Iface};
use crate::keys::{load_or_generate, HostRsa, KeySpec, PrivateKey};
use crate::log::Log;

/// Sessions a proxy follows at once, as uftpproxyd 4.x.
pub const MAX_GROUPS: usize = 100;
/// Clients a proxy stands for in one session, as uftpproxyd 4.x.
pub const MAX_CLIENTS: usize = 1000;

pub use crate::daemon::exit;
use crate::daemon::{signals, Failure, PidFile};

/// Runs `uftpproxyd` with `args` (without the program name) and returns its exit code.
pub fn main(args: Vec<String>) -> i32 {
    if let Some(info) = crate::cli::info_request(&options::PAGE, &args) {
        return crate::cli::print_info(&options::PAGE, info);
    }
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uftpproxyd: {e}");
            return exit::PARAM;
        }
    };
    match run(opts) {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("uftpproxyd: {msg}");
            code
        }
    }
}

/// The proxy's own keys (`-k`, `-K`; a P-256 key for this run when neither is given): RSA keys
/// for the core's [`HostRsa`], all of them in order as [`OwnKey`]s, and a start-up line each.
#[derive(Debug)]
struct OwnKeys {
    rsa: HostRsa,
    keys: Vec<OwnKey>,
    fingerprints: Vec<Fingerprint>,
    lines: Vec<String>,
}

fn own_keys(opts: &Options) -> Result<OwnKeys, String> {
    let pairs = crate::keys::key_pairs(&opts.daemon.keyfiles, &opts.daemon.keygen);
    let mut rsa = Vec::new();
    let mut keys = Vec::new();
    let mut fingerprints = Vec::new();
    let mut lines = Vec::new();
    for (file, spec) in pairs {
        let what = file.map_or_else(|| "-K".to_string(), |f| format!("-k {}", f.display()));
        let (key, origin) = load_or_generate(file, spec).map_err(|e| format!("{what}: {e}"))?;
        let mut line = format!(
            "key {}: {}, fingerprint {} ({origin})",
            lines.len() + 1,
            key.description(),
            key.fingerprint()
        );
        fingerprints.push(key.fingerprint());
        match key {
            PrivateKey::Rsa(k) => {
                if k.bits() < 2048 && !opts.allow_weak {
                    line.push_str(
                        "; under 2048 bits: sessions that use it are refused unless --allow-weak",
                    );
                }
                keys.push(OwnKey::Rsa(rsa.len()));
                rsa.push(k);
            }
            PrivateKey::Ec(k) => {
                let k = k.key().map_err(|e| format!("{what}: {e}"))?.clone();
                keys.push(OwnKey::Ec(k));
            }
        }
        lines.push(line);
    }
    Ok(OwnKeys {
        rsa: HostRsa::new(rsa),
        keys,
        fingerprints,
        lines,
    })
}

/// The proxy's network: the socket, the interfaces it listens on, and what identifies its own
/// datagrams.
#[derive(Debug)]
struct Net {
    sock: UdpSocket,
    /// Whether the socket is dual-stack (IPv4 destinations are then written v4-mapped).
    v6: bool,
    /// Where multicast groups are joined.
    ifaces: Vec<Iface>,
    /// Every address of this host, to recognise our own looped-back multicast.
    own_addrs: Vec<IpAddr>,
    port: u16,
    /// Joined private groups and how many sessions use each.
    private: HashMap<IpAddr, usize>,
}

impl Net {
    fn open(opts: &Options, needs_v6: bool) -> Result<Net, Failure> {
        let param = |m: String| (exit::PARAM, m);
        let sockerr = |what: &str, e: io::Error| (exit::SOCKET, format!("{what}: {e}"));
        let ifaces = choose_ifaces(&opts.daemon.interfaces).map_err(param)?;
        let out = match &opts.out_interface {
            Some(o) => Some(
                choose_ifaces(std::slice::from_ref(o))
                    .map_err(|e| param(e.replace("(-I)", "(-O)")))?
                    .remove(0),
            ),
            // A response proxy multicasts to the clients it listens to.
            None if opts.mode == Mode::Response && !opts.daemon.interfaces.is_empty() => {
                Some(ifaces[0].clone())
            }
            None => None,
        };
        let domain = if needs_v6 { Domain::IPV6 } else { Domain::IPV4 };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| sockerr("cannot create socket", e))?;
        if needs_v6 {
            s.set_only_v6(false)
                .map_err(|e| sockerr("cannot make the socket dual-stack", e))?;
        }
        s.set_reuse_address(true)
            .map_err(|e| sockerr("SO_REUSEADDR", e))?;
        s.set_recv_buffer_size(opts.daemon.bufsize).map_err(|e| {
            sockerr(
                &format!("receive buffer of {} bytes", opts.daemon.bufsize),
                e,
            )
        })?;
        s.set_send_buffer_size(opts.daemon.bufsize)
            .map_err(|e| sockerr(&format!("send buffer of {} bytes", opts.daemon.bufsize), e))?;
        if opts.daemon.dscp != 0 {
            let tos = u32::from(opts.daemon.dscp) << 2;
            s.set_tos(tos).map_err(|e| sockerr("cannot set DSCP", e))?;
            if needs_v6 {
                s.set_tclass_v6(tos)
                    .map_err(|e| sockerr("cannot set DSCP", e))?;
            }
        }
        s.set_multicast_ttl_v4(opts.ttl)
            .map_err(|e| sockerr("IP_MULTICAST_TTL", e))?;
        if needs_v6 {
            s.set_multicast_hops_v6(opts.ttl)
                .map_err(|e| sockerr("IPV6_MULTICAST_HOPS", e))?;
        }
        if let Some(o) = &out {
            if let Some(a) = o.ipv4 {
                s.set_multicast_if_v4(&a)
                    .map_err(|e| sockerr(&format!("multicast interface {}", o.name), e))?;
            }
            if needs_v6 {
                s.set_multicast_if_v6(o.index)
                    .map_err(|e| sockerr(&format!("multicast interface {}", o.name), e))?;
            }
        }
        let bind: SocketAddr = if needs_v6 {
            (Ipv6Addr::UNSPECIFIED, opts.daemon.port).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, opts.daemon.port).into()
        };
        s.bind(&bind.into())
            .map_err(|e| sockerr(&format!("cannot bind UDP port {}", opts.daemon.port), e))?;
        let sock: UdpSocket = s.into();
        if opts.mode != Mode::Client {
            for g in &opts.daemon.public_addrs {
                join(&sock, *g, &ifaces, false).map_err(|e| sockerr("cannot join", e))?;
            }
        }
        let mut own_addrs: Vec<IpAddr> = crate::ifaddr::all().into_iter().map(|a| a.addr).collect();
        own_addrs.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        Ok(Net {
            sock,
            v6: needs_v6,
            ifaces,
            own_addrs,
            port: opts.daemon.port,
            private: HashMap::new(),
        })
    }

    /// Whether a datagram from `from` is one of ours, looped back.
    fn is_own(&self, from: SocketAddr) -> bool {
        from.port() == self.port && self.own_addrs.contains(&from.ip())
    }

    fn send(&self, bytes: &[u8], dest: SocketAddr) -> io::Result<usize> {
        let dest = match (dest, self.v6) {
            (SocketAddr::V4(a), true) => SocketAddr::from((a.ip().to_ipv6_mapped(), a.port())),
            (d, _) => d,
        };
        self.sock.send_to(bytes, dest)
    }

    /// Joins `group` for one more session (the first joins the socket).
    fn join_private(&mut self, group: IpAddr) -> io::Result<()> {
        if group.is_unspecified() || !group.is_multicast() {
            return Ok(());
        }
        let n = self.private.entry(group).or_insert(0);
        *n += 1;
        if *n == 1 {
            join(&self.sock, group, &self.ifaces, false)?;
        }
        Ok(())
    }

    /// One session fewer uses `group` (the last leaves it).
    fn leave_private(&mut self, group: IpAddr) {
        if let Some(n) = self.private.get_mut(&group) {
            *n -= 1;
            if *n == 0 {
                self.private.remove(&group);
                let _ = join(&self.sock, group, &self.ifaces, true);
            }
        }
    }
}

/// The core's mode for `opts.mode`, resolving a server proxy's destination.
fn proxy_mode(opts: &Options) -> Result<ProxyMode, Failure> {
    Ok(match &opts.mode {
        Mode::ServerTo(dest) => ProxyMode::Server(Downstream::Fixed(
            options::resolve(dest, opts.dest_port)
                .map_err(|e| (exit::PARAM, format!("-s: {e}")))?,
        )),
        Mode::ServerByHeartbeat(fp) => ProxyMode::Server(Downstream::Heartbeat(*fp)),
        Mode::Client => ProxyMode::Client,
        Mode::Response => ProxyMode::Response,
    })
}

/// The proxy the driver runs.
type HostProxy = Proxy<MAX_GROUPS, MAX_CLIENTS, HostRsa>;

/// Stack for building the proxy: the core returns it by value, and its session table
/// (`MAX_GROUPS` × `MAX_CLIENTS`) is about 50 MB, far beyond a main thread's 8 MB.
const BUILD_STACK: usize = 256 << 20;

/// Builds the proxy on a thread with a stack big enough to hold it on its way to the heap. The
/// thread has ended when this returns, so the process may still fork (`daemonize`).
fn build_proxy(config: ProxyConfig, rsa: HostRsa) -> Result<Box<HostProxy>, Failure> {
    let built = std::thread::Builder::new()
        .name("build-proxy".into())
        .stack_size(BUILD_STACK)
        .spawn(move || HostProxy::with_rsa(config, rsa).map(Box::new))
        .map_err(|e| (exit::SOCKET, format!("cannot start a thread: {e}")))?
        .join()
        .map_err(|_| (exit::PARAM, "building the proxy panicked".to_string()))?;
    built.map_err(|e| {
        (
            exit::PARAM,
            format!("the proxy refuses its configuration: {e}"),
        )
    })
}

/// Runs the proxy until a signal; returns the exit code (or a start-up failure).
pub fn run(opts: Options) -> Result<i32, Failure> {
    let mut log = match opts.log_file() {
        Some((path, rolling)) => Log::file(&path, opts.daemon.log_level, rolling),
        None => Ok(Log::stderr(opts.daemon.log_level)),
    }
    .map_err(|e| (exit::LOG, e))?;
    let mode = proxy_mode(&opts)?;
    let needs_v6 = opts.daemon.public_addrs.iter().any(IpAddr::is_ipv6)
        || opts.heartbeat_hosts.iter().any(SocketAddr::is_ipv6)
        || matches!(mode, ProxyMode::Server(Downstream::Fixed(a)) if a.is_ipv6());
    let keys = own_keys(&opts).map_err(|e| (exit::CRYPTO, e))?;
    let ecdh_key = match opts.ecdh_curve {
        Some(c) => match load_or_generate(None, Some(KeySpec::Ec(c))) {
            Ok((PrivateKey::Ec(k), _)) => Some(
                k.key()
                    .map_err(|e| (exit::CRYPTO, format!("-e: {e}")))?
                    .clone(),
            ),
            Ok(_) => None,
            Err(e) => return Err((exit::CRYPTO, format!("-e: {e}"))),
        },
        None => None,
    };
    let mut net = Net::open(&opts, needs_v6)?;
    let uid = match opts.daemon.uid {
        Some(u) => u,
        None => net
            .ifaces
            .iter()
            .find_map(|i| i.ipv4)
            .map(u32::from)
            .ok_or((
                exit::PARAM,
                "no interface has an IPv4 address to derive the UID from (use -U)".to_string(),
            ))?,
    };
    if let Some(p) = opts.daemon.priority {
        crate::daemon::nice(p);
    }

    let mut seed = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
    let mut config = ProxyConfig::new(uid, mode, seed);
    config.public_addrs.clear();
    for a in &opts.daemon.public_addrs {
        config
            .public_addrs
            .push(SocketAddr::new(*a, opts.daemon.port))
            .map_err(|_| (exit::PARAM, "-M: too many public addresses".to_string()))?;
    }
    config.dest_port = opts.dest_port;
    for s in &opts.servers {
        config
            .servers
            .push(*s)
            .map_err(|_| (exit::PARAM, "-S: too many servers".to_string()))?;
    }
    for c in &opts.clients {
        config
            .clients
            .push(*c)
            .map_err(|_| (exit::PARAM, "-C: too many clients".to_string()))?;
    }
    for h in &opts.heartbeat_hosts {
        config
            .heartbeat_hosts
            .push(*h)
            .map_err(|_| (exit::PARAM, "-H: too many heartbeat hosts".to_string()))?;
    }
    config.heartbeat_interval = opts.heartbeat_interval();
    for k in &keys.keys {
        config
            .keys
            .push(k.clone())
            .map_err(|_| (exit::PARAM, "-k/-K: too many keys".to_string()))?;
    }
    config.ecdh_key = ecdh_key;
    config.allow_weak = opts.allow_weak;
    let mut proxy = build_proxy(config, keys.rsa)?;

    // Detach, then write the PID file (the daemon's PID) before the starting command returns.
    let starting = if opts.daemon.foreground {
        None
    } else {
        let starting = crate::daemon::daemonize("uftpproxyd")
            .map_err(|e| (exit::SOCKET, format!("cannot become a daemon: {e}")))?;
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
            return Err((exit::PARAM, e));
        }
    };
    signals::install();
    if let Some(s) = starting {
        s.ready();
    }

    log.line(
        1,
        &format!(
            "uftpproxyd (uftp-rs {}) {} listening on port {} as UID 0x{uid:08X}, interfaces {}{}{}",
            env!("CARGO_PKG_VERSION"),
            opts.mode.name(),
            opts.daemon.port,
            net.ifaces
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            match opts.mode {
                Mode::Client => String::new(),
                _ => format!(
                    ", groups {}",
                    opts.daemon
                        .public_addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            },
            opts.out_interface
                .as_ref()
                .map_or_else(String::new, |o| format!(", multicast out of {o}")),
        ),
    );
    match mode {
        ProxyMode::Server(Downstream::Fixed(a)) => {
            log.line(1, &format!("downstream proxy: {a}"));
        }
        ProxyMode::Server(Downstream::Heartbeat(fp)) => log.line(
            1,
            &format!("downstream proxy: whoever sends heartbeats signed by key {fp}"),
        ),
        _ => {}
    }
    for line in &keys.lines {
        log.line(1, line);
    }
    if let Some(c) = opts.ecdh_curve {
        log.line(1, &format!("ECDH key on {} for this run", c.name()));
    }
    if !opts.heartbeat_hosts.is_empty() {
        log.line(
            1,
            &format!(
                "heartbeats every {} s to {}, signed with key {} when challenged",
                opts.heartbeat_interval().as_secs(),
                opts.heartbeat_hosts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                keys.fingerprints[0]
            ),
        );
    }
    if !opts.servers.is_empty() {
        log.line(1, &format!("{} servers trusted (-S)", opts.servers.len()));
    }
    if !opts.clients.is_empty() {
        log.line(1, &format!("{} clients listed (-C)", opts.clients.len()));
    }

    let start = std::time::Instant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut inbuf = vec![0u8; 65536];
    let mut outbuf = vec![0u8; 9216];
    let mut send_errors: u64 = 0;
    let signal = loop {
        if let Some(sig) = signals::stop() {
            break sig;
        }
        if signals::take_hangup() {
            log.reopen();
        }
        let t = now();
        let wait = proxy
            .poll_timeout()
            .map_or(Duration::from_millis(200), |d| d - t)
            .clamp(Duration::from_micros(200), Duration::from_millis(200));
        let _ = net.sock.set_read_timeout(Some(wait));
        match net.sock.recv_from(&mut inbuf) {
            Ok((n, from)) => {
                let from = unmap(from);
                if !net.is_own(from) {
                    if let Some(tx) = proxy.handle_datagram(now(), from, &mut inbuf[..n]) {
                        if let Err(e) = net.send(&inbuf[..tx.len], tx.dest) {
                            send_failed(&mut log, &mut send_errors, tx.dest, &e);
                        }
                    }
                }
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
        if proxy.poll_timeout().is_some_and(|d| d <= t) {
            proxy.handle_timeout(t);
        }
        // Events first: a private group is joined before the answer that makes the server
        // send to it leaves.
        while let Some(ev) = proxy.poll_event() {
            handle_event(&ev, &mut net, &mut log);
        }
        while let Some(tx) = proxy.poll_transmit(t, &mut outbuf) {
            if let Err(e) = net.send(&outbuf[..tx.len], tx.dest) {
                send_failed(&mut log, &mut send_errors, tx.dest, &e);
            }
        }
        while let Some(ev) = proxy.poll_event() {
            handle_event(&ev, &mut net, &mut log);
        }
    };
    log.line(1, &format!("Exiting on signal {signal}"));
    log.line(1, &summary(proxy.counters(), send_errors));
    Ok(exit::INTERRUPTED)
}

/// Logs a failed send: the 1st, 2nd, 4th, 8th … (a dead link would otherwise flood the log).
fn send_failed(log: &mut Log, count: &mut u64, dest: SocketAddr, e: &io::Error) {
    *count += 1;
    if count.is_power_of_two() {
        log.line(1, &format!("send to {dest} failed: {e} ({count} so far)"));
    }
}

/// Every reason the core counts drops under, for the summary.
const DROP_REASONS: [DropReason; DropReason::COUNT] = [
    DropReason::Malformed,
    DropReason::UnknownGroup,
    DropReason::NoDownstream,
    DropReason::UnknownClient,
    DropReason::WrongServer,
    DropReason::AuthFailed,
    DropReason::Replayed,
    DropReason::Unauthenticated,
    DropReason::Unexpected,
    DropReason::TooManyGroups,
];

/// The counters worth an operator's eye at exit.
fn summary(c: &proto_core::session::proxy::Counters, send_errors: u64) -> String {
    let mut s = format!(
        "datagrams: {} received, {} forwarded downstream, {} forwarded upstream; {} responses \
         aggregated into {}; {} KEYINFO, {} PROXY_KEY, {} heartbeats sent, {} answered; {} \
         clients refused",
        c.datagrams,
        c.forwarded_down,
        c.forwarded_up,
        c.responses_aggregated,
        c.aggregates_sent,
        c.keyinfo_sent,
        c.proxy_keys_sent,
        c.heartbeats_sent,
        c.heartbeats_answered,
        c.clients_refused
    );
    let dropped: Vec<String> = DROP_REASONS
        .iter()
        .filter(|r| c.dropped[r.index()] > 0)
        .map(|r| format!("{} {}", c.dropped[r.index()], r.as_str()))
        .collect();
    if !dropped.is_empty() {
        s.push_str(&format!("; dropped: {}", dropped.join(", ")));
    }
    if send_errors > 0 {
        s.push_str(&format!("; {send_errors} sends failed"));
    }
    if c.transmit_errors > 0 || c.events_lost > 0 {
        s.push_str(&format!(
            "; {} datagrams not built, {} events lost",
            c.transmit_errors, c.events_lost
        ));
    }
    s
}

fn tag(group_id: u32, group_inst: u8) -> String {
    format!("[{group_id:08X}/{group_inst:02X}]")
}

fn handle_event(ev: &Event, net: &mut Net, log: &mut Log) {
    match *ev {
        Event::GroupStarted {
            group_id,
            group_inst,
            server_id,
            upstream,
            private_addr,
            cipher,
            fingerprint,
        } => {
            let security = match (cipher, fingerprint) {
                (KeyType::None, _) => "unencrypted".to_string(),
                (c, Some(fp)) => format!("encrypted {}, server key {fp}", c.name()),
                (c, None) => format!("encrypted {}", c.name()),
            };
            log.line(
                2,
                &format!(
                    "{} Received request from 0x{server_id:08X} at {upstream}, private group \
                     {private_addr}, {security}",
                    tag(group_id, group_inst)
                ),
            );
            if let Err(e) = net.join_private(private_addr) {
                log.line(
                    0,
                    &format!(
                        "{} cannot join {private_addr}: {e}",
                        tag(group_id, group_inst)
                    ),
                );
            }
        }
        Event::GroupRefused {
            group_id,
            server_id,
            upstream,
            reason,
            detail,
        } => log.line(
            1,
            &format!(
                "{} refusing server 0x{server_id:08X} at {}: {}{}; ABORT sent",
                tag(group_id, 0),
                upstream.ip(),
                reason.as_str(),
                detail.map_or_else(String::new, |d| format!(" ({d})"))
            ),
        ),
        Event::GroupEnded {
            group_id,
            group_inst,
            private_addr,
            reason,
        } => {
            let why = match reason {
                GroupEnd::TimedOut => "Group timed out",
                GroupEnd::Aborted => "Group aborted",
            };
            log.line(2, &format!("{} {why}", tag(group_id, group_inst)));
            net.leave_private(private_addr);
        }
        Event::ClientRegistered {
            group_id,
            client_id,
        } => log.line(
            2,
            &format!(
                "{} Received REGISTER from 0x{client_id:08X}",
                tag(group_id, 0)
            ),
        ),
        Event::ClientRefused {
            group_id,
            client_id,
            reason,
        } => log.line(
            1,
            &format!(
                "{} refusing client 0x{client_id:08X}: {reason:?}; ABORT sent",
                tag(group_id, 0)
            ),
        ),
        Event::DownstreamChanged { addr } => log.line(
            1,
            // uftpproxyd 4.10.2's words.
            &format!("Using {addr} as downstream address:port"),
        ),
        Event::HeartbeatRefused { from } => log.line(
            1,
            &format!("refusing heartbeat from {from}: not signed by the -s fp= key"),
        ),
        Event::HeartbeatAnswered { from, result } => log.line(
            3,
            &format!(
                "heartbeat answered by {from}: {}",
                match result {
                    HbResult::Ok => "OK",
                    HbResult::Challenge => "authentication required",
                    HbResult::Failed => "authentication FAILED",
                    HbResult::Unknown(_) => "unknown answer",
                }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_reason_is_in_the_summary_list() {
        for (i, r) in DROP_REASONS.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn own_keys_default_to_an_ephemeral_p256_key() {
        let o = Options::parse(["-c".to_string()]).unwrap();
        let k = own_keys(&o).unwrap();
        assert_eq!(k.keys.len(), 1);
        assert!(
            matches!(&k.keys[0], OwnKey::Ec(e) if e.curve() == proto_core::crypto::CurveId::P256)
        );
        assert!(
            k.lines[0].contains("ECDSA, curve prime256v1"),
            "{:?}",
            k.lines
        );
    }

    #[test]
    fn own_keys_keep_their_order_with_rsa_by_index() {
        let o = Options::parse(
            ["-c", "-K", "ec:secp384r1,rsa:1024,ec:prime256v1,rsa:512"].map(String::from),
        )
        .unwrap();
        let k = own_keys(&o).unwrap();
        assert!(
            matches!(&k.keys[0], OwnKey::Ec(e) if e.curve() == proto_core::crypto::CurveId::P384)
        );
        assert!(matches!(k.keys[1], OwnKey::Rsa(0)));
        assert!(matches!(&k.keys[2], OwnKey::Ec(_)));
        assert!(matches!(k.keys[3], OwnKey::Rsa(1)));
        assert_eq!(proto_core::crypto::RsaKeys::count(&k.rsa), 2);
        assert!(k.lines[1].contains("--allow-weak"), "{:?}", k.lines);
        assert_eq!(k.fingerprints.len(), 4);
    }

    #[test]
    fn server_proxy_destinations_resolve() {
        let o = Options::parse(["-s", "10.78.2.1", "-q", "2000"].map(String::from)).unwrap();
        assert_eq!(
            proxy_mode(&o).unwrap(),
            ProxyMode::Server(Downstream::Fixed("10.78.2.1:2000".parse().unwrap()))
        );
        let o = Options::parse(["-s", "no-such-proxy.invalid"].map(String::from)).unwrap();
        let (code, msg) = proxy_mode(&o).unwrap_err();
        assert_eq!(code, exit::PARAM);
        assert!(msg.contains("cannot resolve"), "{msg}");
    }

    #[test]
    fn summary_names_drops_by_cause() {
        let mut c = proto_core::session::proxy::Counters {
            datagrams: 10,
            ..Default::default()
        };
        c.dropped[DropReason::Malformed.index()] = 3;
        let s = summary(&c, 2);
        assert!(s.starts_with("datagrams: 10 received"), "{s}");
        assert!(
            s.contains(&format!("dropped: 3 {}", DropReason::Malformed.as_str())),
            "{s}"
        );
        assert!(s.ends_with("; 2 sends failed"), "{s}");
    }
}
