//! `uftpproxyd`'s command line, with uftp 4.10.2's option letters and meanings (`man
//! uftpproxyd`, protocol digest §8.3), plus one long option of our own, `--allow-weak`. Options
//! this implementation does not carry out, and options that have no effect in the chosen mode,
//! are refused by name with one line that says why, never ignored.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto_core::crypto::Fingerprint;
use proto_core::session::security::{ClientPin, ServerEntry};

use crate::cli::{Arg, Complete, Getopt, GetoptError, Opt, Page};
use crate::daemon_options::DaemonOptions;
use crate::keys::NamedCurve;
use crate::log::Rolling;
use crate::receiver::options::parse_server_list;

/// uftp's port.
pub const DEFAULT_PORT: u16 = 1044;
/// uftpproxyd's log file when it runs as a daemon without `-L`.
pub const DEFAULT_LOGFILE: &str = "/tmp/uftpproxyd.log";
/// How many clients a client proxy's list (`-C`) may name.
pub const MAX_CLIENT_LIST: usize = 1024;

/// Which of uftpproxyd's modes to run in (exactly one of `-s`, `-c`, `-r`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `-s dest`: a server proxy forwarding to this downstream proxy (name or address; the
    /// port is `-q`'s).
    ServerTo(String),
    /// `-s fp=FP`: a server proxy that adopts the address of whoever sends heartbeats signed by
    /// the key with this fingerprint.
    ServerByHeartbeat(Fingerprint),
    /// `-c`: a client proxy.
    Client,
    /// `-r`: a response proxy.
    Response,
}

impl Mode {
    /// The mode's name in uftpproxyd's terms.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::ServerTo(_) | Mode::ServerByHeartbeat(_) => "server proxy",
            Mode::Client => "client proxy",
            Mode::Response => "response proxy",
        }
    }

    fn is_server(&self) -> bool {
        matches!(self, Mode::ServerTo(_) | Mode::ServerByHeartbeat(_))
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-s`, `-c` or `-r`.
    pub mode: Mode,
    /// The letters uftpproxyd shares with uftpd (`-H`'s hosts resolved below).
    pub daemon: DaemonOptions,
    /// `-q`: the downstream proxy's port (server proxy) or the clients' (client and response
    /// proxies).
    pub dest_port: u16,
    /// `-t`: multicast TTL.
    pub ttl: u32,
    /// `-O`: the interface multicast goes out of (name or address).
    pub out_interface: Option<String>,
    /// `-H`: proxies to send heartbeats to (`host[:port]`, port 1044 by default), resolved.
    pub heartbeat_hosts: Vec<SocketAddr>,
    /// `-C`: the file the client list came from.
    pub client_list: Option<PathBuf>,
    /// `-C`: clients a client proxy accepts (`ID[|FP]`).
    pub clients: Vec<ClientPin>,
    /// `-S`: servers accepted (`ID|IP[|FP]`); empty accepts any.
    pub servers: Vec<ServerEntry>,
    /// `-e` (or `-r:curve`): the curve of a response proxy's long-lived ECDH key.
    pub ecdh_curve: Option<NamedCurve>,
    /// `--allow-weak`: take part in weak sessions (CBC, SHA-1, RSA under 2048 bits), logged as
    /// such.
    pub allow_weak: bool,
}

/// Flags of uftp 4.10.2's `uftpproxyd` not implemented.
const UNSUPPORTED_FLAGS: &[(char, &str)] = &[('m', "Windows system key store")];

/// `uftpproxyd`'s options and manual: the parser takes its letters from here, and the man page
/// and shell completions are rendered from it (see [`crate::cli`]).
pub const PAGE: Page = Page {
    name: "uftpproxyd",
    summary: "relay UFTP 4 sessions between networks: server, client and response proxies (uftp-rs)",
    operands: "",
    complete_operands: Complete::Nothing,
    description: &[
        "uftpproxyd is the proxy daemon of uftp-rs, a reimplementation of UFTP 4 in Rust, with \
         uftpproxyd 4.10.2's options. Exactly one of -s, -c or -r chooses its mode. A server \
         proxy, beside the sender, forwards sessions by unicast to a client proxy (a tunnel \
         through routers that do not forward multicast). A client proxy, at the remote site, \
         re-multicasts what it receives to its receivers and answers the sender once for all of \
         them. A response proxy, on the receivers' network, answers the sender for receivers \
         that hear the sender directly but send their responses to it (uftpd -R).",
        "Without -d it becomes a daemon once its socket and keys are ready: the command returns \
         0 once the daemon runs and its PID file (-P) is written. Options that have no effect in \
         the chosen mode are refused with a line saying where they apply.",
    ],
    options: &[
        Opt::value('s', "dest|fp=fingerprint", Complete::Nothing, "Run as a server proxy forwarding to the client proxy at dest (a name or address, on the port of -q), or to whoever sends heartbeats signed by the key with this fingerprint."),
        Opt::flag('c', "Run as a client proxy."),
        Opt::flag('r', "Run as a response proxy. -r:curve gives its ECDH key's curve, as -e does."),
        Opt::flag('d', "Stay in the foreground and log to standard error; -L, -g and -n are ignored."),
        Opt::value('p', "port", Complete::Nothing, "The UDP port to listen on. Default 1044."),
        Opt::value('t', "ttl", Complete::Nothing, "The TTL of multicast packets, 1 to 255. Default 1."),
        Opt::value('N', "priority", Complete::Nothing, "The process's nice value, -20 to 19."),
        Opt::value('O', "out_multi_interface", Complete::Interface, "The interface multicast goes out of (client and response proxies), a name or address."),
        Opt::value('U', "UID", Complete::Nothing, "This proxy's ID, in hex, with or without 0x (12345678 is 0x12345678, as uftp 4.10.2 reads it), or as an IPv4 address (10.0.0.2 is 0x0A000002); not 0 or FFFFFFFF. Default: the IPv4 address of the first interface."),
        Opt::value('q', "dest_port", Complete::Nothing, "The port of the client proxy (server proxy) or of the clients (client and response proxies). Default 1044."),
        Opt::flag('m', "Use the Windows system key store."),
        Opt::value('x', "log_level", Complete::Words(&["0", "1", "2", "3", "4", "5"]), "How much to log, 0 (errors only) to 5 (debug). Default 2."),
        Opt::value('H', "hb_server[:port][,...]", Complete::Nothing, "Send heartbeats to these server proxies (port 1044 unless given), signed with the first -k key when they ask for it."),
        Opt::value('h', "hb_interval", Complete::Nothing, "Seconds between heartbeats, 1 to 3600. Default 20."),
        Opt::value('e', "ecdh_curve", Complete::Words(&["prime256v1", "secp384r1"]), "The curve of a response proxy's ECDH key, which ECDH sessions need."),
        Opt::value('g', "max_log_size", Complete::Nothing, "Roll the log over once it is larger than this many megabytes (10^6 bytes), 1 to 1024: the log becomes logfile.1, the older archives move up by one, and a new log starts. Default: no rolling."),
        Opt::value('n', "max_log_count", Complete::Nothing, "How many archived logs -g keeps, 1 to 1000; older ones are deleted. Default 5."),
        Opt::value('B', "buf_size", Complete::Nothing, "The socket buffers, 65536 to 104857600 bytes. Default 262144."),
        Opt::value('L', "logfile", Complete::File, "The daemon's log file. Default /tmp/uftpproxyd.log."),
        Opt::value('Q', "dscp", Complete::Nothing, "The DSCP of outgoing packets, 0 to 63 (decimal, 0x hex or 0 octal, as C's strtol reads it for uftpproxyd 4.10.2). Default 0."),
        Opt::value('P', "pidfile", Complete::File, "Write the daemon's process ID to this file once it runs; the file is removed when it exits."),
        Opt::value('C', "clientlist_file", Complete::File, "The clients a client proxy accepts, one per line: ID[|FINGERPRINT]."),
        Opt::value('S', "serverlist_file", Complete::File, "The servers accepted, one per line: ID|IP[|FINGERPRINT]."),
        Opt::value('k', "keyfile[,keyfile...]", Complete::File, "Private key files (PEM); with -K, each key is generated into its file when the file does not exist. Without -k and -K an ephemeral P-256 key is made for the run."),
        Opt::value('K', "rsa:bits|ec:curve[,...]", Complete::Nothing, "Keys to generate: rsa:512 to rsa:2048, or ec:prime256v1 or ec:secp384r1."),
        Opt::value('I', "interface[,interface...]", Complete::Interface, "The interfaces to listen on (server and response proxies) or to report as (client proxy). Default: every multicast-capable interface but loopback."),
        Opt::value('M', "pub_mcast_addr[,...]", Complete::Nothing, "The public multicast addresses to listen on (server and response proxies). Default 230.4.4.1."),
        Opt::long_flag("allow-weak", "Take part in weak sessions (CBC ciphers, SHA-1, RSA keys under 2048 bits), logged as weak. Not in uftp 4.10.2."),
        crate::cli::HELP,
        crate::cli::VERSION_OPT,
    ],
    one_of: &['s', 'c', 'r'],
    refused: |c| UNSUPPORTED_FLAGS.iter().find(|(l, _)| *l == c).map(|(_, w)| *w),
    sections: &[
        ("SIGNALS", &["SIGTERM or SIGINT ends uftpproxyd with a summary of what it relayed and dropped; the PID file is removed and the exit code is 6. SIGHUP reopens the log file under its name, for logrotate."]),
        ("EXIT STATUS", &["0: started (a daemon: it runs in the background). 1: an invalid command line. 2: the network could not be set up. 3: keys could not be read or made. 4: the log file could not be opened. 6: stopped by a signal."]),
        ("FILES", &["/tmp/uftpproxyd.log: the daemon's log without -L.", "/etc/default/uftpproxyd: the options the service (uftpproxyd.service, /etc/init.d/uftpproxyd) starts uftpproxyd with, in DAEMON_ARGS; the service starts only once DAEMON_ARGS names a mode."]),
        ("EXAMPLES", &["A tunnel: beside the sender, forward to the client proxy at remote.example; there, re-multicast out of eth1:", "  uftpproxyd -s remote.example -P /run/uftpproxyd.pid\n  uftpproxyd -c -O eth1"]),
    ],
    see_also: "uftp(1), uftpd(1), uftp_keymgt(1), uftpdump(1)",
};

/// The usage line, from [`PAGE`]: every option the parser carries out.
fn usage() -> String {
    crate::cli::usage(&PAGE)
}

/// uftpproxyd's words for what [`crate::cli::Getopt`] finds wrong.
fn getopt_error(e: GetoptError) -> String {
    crate::cli::daemon_getopt_error(&PAGE, e, "")
}

/// A curve this build computes on, by uftp's name for it.
fn curve(v: &str, what: &str) -> Result<NamedCurve, String> {
    match NamedCurve::from_name(v) {
        Some(c @ (NamedCurve::Prime256v1 | NamedCurve::Secp384r1)) => Ok(c),
        Some(c) => Err(format!(
            "{what}: EC curve {} is not supported here (prime256v1 and secp384r1 are)",
            c.name()
        )),
        None => Err(format!("{what}: unknown EC curve `{v}`")),
    }
}

/// Resolves `host[:port]` (a name, an IPv4 address, or an IPv6 address, bracketed when a port
/// follows) with `default_port` when none is given.
pub fn resolve(spec: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = spec.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if let Ok(sa) = spec.parse::<SocketAddr>() {
        if sa.port() == 0 {
            return Err(format!("invalid port in `{spec}`"));
        }
        return Ok(sa);
    }
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port in `{spec}`"))?,
        ),
        _ => (spec, default_port),
    };
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` has no address"))
}

/// Parses a client list (`-C`, `man uftpproxyd`): one client a line, `ID[|FINGERPRINT]`, the ID
/// in hex (`0x00001111`) or dotted IPv4 form. Blank lines and `#` comments are skipped. `file`
/// names the source in errors.
pub fn parse_client_list(file: &str, text: &str) -> Result<Vec<ClientPin>, String> {
    let mut out: Vec<ClientPin> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{file}:{}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, fp) = match line.split_once('|') {
            Some((id, fp)) => (id.trim(), Some(fp.trim()).filter(|f| !f.is_empty())),
            None => (line, None),
        };
        let id = crate::cli::parse_id(id)
            .ok_or_else(|| format!("{}: invalid client ID {id:?}", at()))?;
        let fingerprint = match fp {
            Some(fp) => Some(Fingerprint::parse(fp).map_err(|_| {
                format!(
                    "{}: invalid fingerprint {fp:?} (20 ':'-separated hex bytes)",
                    at()
                )
            })?),
            None => None,
        };
        if out.iter().any(|c| c.id == id) {
            return Err(format!("{}: client 0x{id:08X} listed twice", at()));
        }
        if out.len() == MAX_CLIENT_LIST {
            return Err(format!("{}: more than {MAX_CLIENT_LIST} clients", at()));
        }
        out.push(ClientPin { id, fingerprint });
    }
    Ok(out)
}

fn read_list(letter: char, path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("-{letter}: cannot read {}: {e}", path.display()))
}

impl Options {
    /// Where the log goes and how it rolls: `None` is standard error (`-d`, which ignores `-L`,
    /// `-g` and `-n` as uftpproxyd does).
    pub fn log_file(&self) -> Option<(PathBuf, Option<Rolling>)> {
        self.daemon.log_file(DEFAULT_LOGFILE)
    }

    /// `-h`: the time between heartbeats (20 s, uftpproxyd's default).
    pub fn heartbeat_interval(&self) -> Duration {
        self.daemon
            .heartbeat_interval
            .unwrap_or(Duration::from_secs(20))
    }

    /// Parses the arguments after the program name, getopt style (`-p 1044`, `-p1044`, `-cd`).
    /// Errors are one line, ready to print after `uftpproxyd: `.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
        let mut b = Builder::default();
        for item in Getopt::new(&PAGE, args).colon_values("r") {
            match item.map_err(getopt_error)? {
                Arg::Operand(arg) => {
                    return Err(format!("unexpected argument `{arg}`\n{}", usage()))
                }
                Arg::Long("allow-weak", _) => b.allow_weak = true,
                Arg::Long(name, _) => return Err(format!("--{name} is answered before parsing")),
                Arg::Short('r', cv) => {
                    b.set_mode('r', Mode::Response)?;
                    if let Some(cv) = cv {
                        b.set_ecdh(curve(&cv, "-r")?, "-r:curve")?;
                    }
                }
                Arg::Short(c, v) if b.daemon.apply(c, v.as_deref())? => {}
                Arg::Short(c, None) => b.flag(c)?,
                Arg::Short(c, Some(v)) => b.value(c, &v)?,
            }
        }
        b.finish()
    }
}

/// The options as they are being read; [`Builder::finish`] checks what depends on the mode.
#[derive(Debug, Default)]
struct Builder {
    mode: Option<(char, Mode)>,
    daemon: DaemonOptions,
    dest_port: Option<u16>,
    ttl: Option<u32>,
    out_interface: Option<String>,
    client_list: Option<PathBuf>,
    ecdh_curve: Option<(NamedCurve, &'static str)>,
    allow_weak: bool,
}

impl Builder {
    fn set_mode(&mut self, letter: char, mode: Mode) -> Result<(), String> {
        if let Some((prev, _)) = &self.mode {
            return Err(format!(
                "-{prev} and -{letter}: exactly one of -s, -c or -r may be given"
            ));
        }
        self.mode = Some((letter, mode));
        Ok(())
    }

    fn set_ecdh(&mut self, c: NamedCurve, how: &'static str) -> Result<(), String> {
        if let Some((_, prev)) = self.ecdh_curve {
            return Err(format!("{prev} and {how} both give the ECDH curve"));
        }
        self.ecdh_curve = Some((c, how));
        Ok(())
    }

    fn flag(&mut self, c: char) -> Result<(), String> {
        match c {
            'c' => self.set_mode('c', Mode::Client)?,
            _ => return Err(format!("unknown option -{c}\n{}", usage())),
        }
        Ok(())
    }

    fn value(&mut self, c: char, v: &str) -> Result<(), String> {
        let port = |v: &str| {
            crate::cli::parse_port(v)
                .ok_or_else(|| format!("invalid port `{v}` for -{c} (1-65535)"))
        };
        match c {
            's' => {
                let mode = match v.strip_prefix("fp=") {
                    Some(fp) => Mode::ServerByHeartbeat(Fingerprint::parse(fp).map_err(|_| {
                        format!("-s fp=: invalid fingerprint `{fp}` (20 ':'-separated hex bytes)")
                    })?),
                    None if v.is_empty() => return Err("-s needs a destination".into()),
                    None => Mode::ServerTo(v.to_string()),
                };
                self.set_mode('s', mode)?;
            }
            'q' => self.dest_port = Some(port(v)?),
            't' => {
                self.ttl = Some(
                    v.parse()
                        .ok()
                        .filter(|t| (1..=255).contains(t))
                        .ok_or_else(|| format!("invalid TTL `{v}` for -t (1-255)"))?,
                )
            }
            'O' => self.out_interface = Some(v.to_string()),
            'C' => self.client_list = Some(PathBuf::from(v)),
            'e' => {
                let c = curve(v, "-e")?;
                self.set_ecdh(c, "-e")?;
            }
            _ => return Err(format!("unknown option -{c}\n{}", usage())),
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Options, String> {
        let Some((_, mode)) = self.mode else {
            return Err(format!("one of -s, -c or -r must be given\n{}", usage()));
        };
        // What has no effect in this mode is refused rather than ignored.
        let only = |given: bool, opt: &str, modes: &str, ok: bool| -> Result<(), String> {
            if given && !ok {
                return Err(format!(
                    "{opt} applies to {modes} only, not to a {}",
                    mode.name()
                ));
            }
            Ok(())
        };
        let server = mode.is_server();
        only(
            self.out_interface.is_some(),
            "-O",
            "client and response proxies (the interface they multicast on)",
            !server,
        )?;
        only(
            self.daemon.gave('M'),
            "-M",
            "server and response proxies (the client proxy multicasts to the session's addresses)",
            mode != Mode::Client,
        )?;
        only(
            self.client_list.is_some(),
            "-C",
            "client proxies",
            mode == Mode::Client,
        )?;
        only(
            self.ecdh_curve.is_some(),
            "-e",
            "response proxies (-r)",
            mode == Mode::Response,
        )?;
        if matches!(mode, Mode::ServerByHeartbeat(_)) && !self.daemon.heartbeat_hosts.is_empty() {
            return Err(
                "-H: a server proxy waiting for heartbeats (-s fp=) does not send any itself"
                    .into(),
            );
        }
        self.daemon.finish()?;
        let heartbeat_hosts = self
            .daemon
            .heartbeat_hosts
            .iter()
            .map(|h| resolve(h, DEFAULT_PORT).map_err(|e| format!("-H: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let clients = match &self.client_list {
            Some(p) => {
                let list = parse_client_list(&p.display().to_string(), &read_list('C', p)?)?;
                if list.is_empty() {
                    return Err(format!(
                        "-C: {} lists no client (every client would be refused)",
                        p.display()
                    ));
                }
                list
            }
            None => Vec::new(),
        };
        let servers = match &self.daemon.server_list {
            Some(p) => {
                let list = parse_server_list(&p.display().to_string(), &read_list('S', p)?)
                    .map_err(|e| format!("-S: {e}"))?;
                if list.is_empty() {
                    return Err(format!(
                        "-S: {} lists no server (every session would be refused)",
                        p.display()
                    ));
                }
                list
            }
            None => Vec::new(),
        };
        Ok(Options {
            mode,
            dest_port: self.dest_port.unwrap_or(DEFAULT_PORT),
            ttl: self.ttl.unwrap_or(1),
            out_interface: self.out_interface,
            heartbeat_hosts,
            client_list: self.client_list,
            clients,
            servers,
            ecdh_curve: self.ecdh_curve.map(|(c, _)| c),
            allow_weak: self.allow_weak,
            daemon: self.daemon,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySpec;

    fn p(s: &str) -> Result<Options, String> {
        Options::parse(s.split_whitespace().map(String::from))
    }

    const FP: &str = "66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC";

    #[test]
    fn modes() {
        let o = p("-s 10.78.2.1 -d").unwrap();
        assert_eq!(o.mode, Mode::ServerTo("10.78.2.1".into()));
        assert!(o.daemon.foreground);
        let o = p(&format!("-s fp={FP}")).unwrap();
        assert_eq!(
            o.mode,
            Mode::ServerByHeartbeat(Fingerprint::parse(FP).unwrap())
        );
        assert_eq!(p("-cd").unwrap().mode, Mode::Client);
        assert_eq!(p("-r").unwrap().mode, Mode::Response);
        let o = p("-r:secp384r1").unwrap();
        assert_eq!(
            (o.mode, o.ecdh_curve),
            (Mode::Response, Some(NamedCurve::Secp384r1))
        );
        let o = p("-r -e prime256v1").unwrap();
        assert_eq!(o.ecdh_curve, Some(NamedCurve::Prime256v1));
        for (args, needle) in [
            ("-d", "one of -s, -c or -r must be given"),
            ("-c -r", "exactly one of -s, -c or -r"),
            ("-s 10.0.0.1 -c", "exactly one"),
            ("-s fp=AB:CD", "invalid fingerprint"),
            ("-r:prime256v1 -e prime256v1", "both give the ECDH curve"),
            ("-r:secp521r1", "not supported here"),
            ("-r -e curve25519", "unknown EC curve"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }

    #[test]
    fn parser_takes_exactly_the_pages_options() {
        crate::cli::check_parser(
            &PAGE,
            |args| p(&args.join(" ")).map(drop),
            |e| e.contains("unknown option"),
            |e| e.contains("needs a value"),
        );
    }

    #[test]
    fn defaults_are_uftpproxyds() {
        let o = p("-c").unwrap();
        assert_eq!(
            (o.daemon.port, o.dest_port, o.ttl, o.daemon.dscp),
            (1044, 1044, 1, 0)
        );
        assert_eq!(o.daemon.public_addrs, [IpAddr::from([230, 4, 4, 1])]);
        assert_eq!(o.daemon.log_level, 2);
        assert_eq!(o.daemon.bufsize, 262_144);
        assert_eq!(o.heartbeat_interval(), Duration::from_secs(20));
        assert!(!o.daemon.foreground && !o.allow_weak);
        assert!(
            o.daemon.keyfiles.is_empty() && o.daemon.keygen.is_empty() && o.daemon.uid.is_none()
        );
        assert_eq!(o.log_file(), Some((PathBuf::from(DEFAULT_LOGFILE), None)));
        let o = p("-c -L /l -g 3").unwrap();
        let rolling = Rolling {
            max_bytes: 3_000_000,
            keep: 5,
        };
        assert_eq!(o.log_file(), Some((PathBuf::from("/l"), Some(rolling))));
        assert_eq!(p("-c -d -L /l -g 3 -n 2").unwrap().log_file(), None);
        let cwd = std::env::current_dir().unwrap();
        let o = p("-c -L p.log -P p.pid -k k.pem").unwrap();
        assert_eq!(o.daemon.logfile, Some(cwd.join("p.log")));
        assert_eq!(o.daemon.pidfile, Some(cwd.join("p.pid")));
        assert_eq!(o.daemon.keyfiles, [cwd.join("k.pem")]);
    }

    #[test]
    fn letters_follow_uftpproxyd() {
        let o = p(
            "-s proxy.invalid -d -p 2000 -q 2001 -t 8 -Q 0x2e -N 5 -U 0x0a000002 -x 4 -L /l \
             -P /p -B 1048576 -I eth0,10.0.0.1 -M 230.4.4.9,232.1.1.1 --allow-weak",
        )
        .unwrap();
        assert_eq!(o.mode, Mode::ServerTo("proxy.invalid".into()));
        assert_eq!(
            (o.daemon.port, o.dest_port, o.ttl, o.daemon.dscp),
            (2000, 2001, 8, 46)
        );
        assert_eq!(o.daemon.priority, Some(5));
        assert_eq!(o.daemon.uid, Some(0x0a00_0002));
        assert_eq!(o.daemon.log_level, 4);
        assert_eq!(o.daemon.logfile, Some(PathBuf::from("/l")));
        assert_eq!(o.daemon.pidfile, Some(PathBuf::from("/p")));
        assert_eq!(o.daemon.bufsize, 1_048_576);
        assert_eq!(o.daemon.interfaces, ["eth0", "10.0.0.1"]);
        assert_eq!(o.daemon.public_addrs.len(), 2);
        assert!(o.allow_weak);
        let o = p("-c -O veth1 -H 10.0.0.1,10.0.0.2:2000,[fd00::1]:3000 -h 2 -U 10.0.0.7").unwrap();
        assert_eq!(o.out_interface.as_deref(), Some("veth1"));
        assert_eq!(
            o.heartbeat_hosts,
            [
                "10.0.0.1:1044".parse().unwrap(),
                "10.0.0.2:2000".parse().unwrap(),
                "[fd00::1]:3000".parse().unwrap()
            ]
        );
        assert_eq!(o.heartbeat_interval(), Duration::from_secs(2));
        assert_eq!(o.daemon.uid, Some(0x0a00_0007));
        let o = p("-c -k /a.pem,/b.pem -K rsa:2048,ec:secp384r1").unwrap();
        assert_eq!(
            o.daemon.keyfiles,
            [PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]
        );
        assert_eq!(
            o.daemon.keygen,
            [KeySpec::Rsa(2048), KeySpec::Ec(NamedCurve::Secp384r1)]
        );
    }

    #[test]
    fn unsupported_and_misplaced_options_say_so() {
        for (args, needle) in [
            ("-c -g 0", "invalid log size"),
            ("-c -n 1001", "invalid log count"),
            ("-c -m", "-m (Windows system key store) is not supported"),
            (
                "-s 10.0.0.1 -O eth0",
                "-O applies to client and response proxies",
            ),
            (
                "-c -M 230.4.4.2",
                "-M applies to server and response proxies",
            ),
            ("-r -C /x", "-C applies to client proxies only"),
            ("-c -e prime256v1", "-e applies to response proxies"),
            (
                &format!("-s fp={FP} -H 10.0.0.1"),
                "does not send any itself",
            ),
            ("-c -h 5", "give -H"),
            ("-c -k /a.pem,/b.pem -K rsa:2048", "as many items"),
            ("-c -K ec:secp521r1", "not supported here"),
            ("-c -p 0", "invalid port"),
            ("-c -q x", "invalid port"),
            ("-c -t 0", "invalid TTL"),
            ("-c -Q 64", "invalid DSCP"),
            ("-c -x 6", "invalid log level"),
            ("-c -B 1000", "invalid buffer size"),
            ("-c -U 0", "invalid UID"),
            ("-c -h 0 -H 10.0.0.1", "invalid heartbeat interval"),
            ("-r -M 10.0.0.1", "multicast"),
            ("-c -H 10.0.0.1:0", "invalid port"),
            ("-c -Z", "unknown option -Z"),
            ("-c --allow-everything", "unknown option --allow-everything"),
            ("-c -p", "needs a value"),
            ("-c stray", "unexpected argument"),
            ("-c -S /nonexistent/servers", "cannot read"),
            ("-c -C /nonexistent/clients", "cannot read"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }

    #[test]
    fn client_list_lines() {
        let text = format!("# clients\n0x00001111|{FP}\n\n 0x00002222 \n10.0.0.3|\n");
        let list = parse_client_list("clients", &text).unwrap();
        assert_eq!(
            list,
            [
                ClientPin {
                    id: 0x1111,
                    fingerprint: Some(Fingerprint::parse(FP).unwrap()),
                },
                ClientPin {
                    id: 0x2222,
                    fingerprint: None,
                },
                ClientPin {
                    id: 0x0A00_0003,
                    fingerprint: None,
                },
            ]
        );
        for (text, needle) in [
            ("0x1|AB:CD\n", "clients:1: invalid fingerprint"),
            ("# x\nnot-an-id\n", "clients:2: invalid client ID"),
            ("0x1\n0x1|\n", "listed twice"),
        ] {
            let e = parse_client_list("clients", text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn lists_are_read_at_parse_time() {
        let dir = std::env::temp_dir().join(format!("uftpproxyd-lists-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (clients, servers) = (dir.join("clients"), dir.join("servers"));
        std::fs::write(&clients, format!("0x0A4D0002|{FP}\n")).unwrap();
        std::fs::write(&servers, "0x0A4D0001|10.77.0.1\n").unwrap();
        let o = p(&format!(
            "-c -C {} -S {}",
            clients.display(),
            servers.display()
        ))
        .unwrap();
        assert_eq!(o.clients.len(), 1);
        assert_eq!(o.servers.len(), 1);
        assert_eq!(o.client_list.as_deref(), Some(clients.as_path()));
        std::fs::write(&clients, "# nobody\n").unwrap();
        assert!(p(&format!("-c -C {}", clients.display()))
            .unwrap_err()
            .contains("lists no client"));
        std::fs::write(&servers, "0x1|nowhere\n").unwrap();
        assert!(p(&format!("-r -S {}", servers.display()))
            .unwrap_err()
            .contains("invalid IP address"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolve_takes_names_addresses_and_ports() {
        assert_eq!(
            resolve("10.0.0.1", 1044).unwrap(),
            "10.0.0.1:1044".parse().unwrap()
        );
        assert_eq!(
            resolve("fd00::1", 1044).unwrap(),
            "[fd00::1]:1044".parse().unwrap()
        );
        assert_eq!(resolve("localhost:2000", 1044).unwrap().port(), 2000);
        assert!(resolve("no-such-host.invalid", 1044)
            .unwrap_err()
            .contains("cannot resolve"));
    }
}
