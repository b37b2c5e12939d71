//! `uftpd`'s command line, with uftp 4.10.2's option letters and meanings (protocol digest
//! §8.2), plus long options of our own, `--allow-weak` and `--json`. Options this
//! implementation does not carry out yet are refused by name, never ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use proto_core::crypto::Fingerprint;
use proto_core::session::proxy::MAX_HB_HOSTS;
use proto_core::session::security::{ServerEntry, MAX_EC_KEYS, MAX_SERVERS};

use crate::cli::{Arg, Complete, Getopt, GetoptError, Opt, Page};
use crate::daemon::absolute;
use crate::daemon_options::{list, DaemonOptions};
use crate::keys::KeySpec;
use crate::log::Rolling;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The letters uftpd shares with uftpproxyd.
    pub daemon: DaemonOptions,
    /// `-D`: destination directories (the first receives relative names).
    pub dest_dirs: Vec<PathBuf>,
    /// `-t`: receive under a temporary name and rename at the end (always done here).
    pub temp_names: bool,
    /// `-i`: with `-T`, move each file into place as soon as it is complete.
    pub move_each_file: bool,
    /// `-T`: receive into this directory, keeping what a failed session received there for a
    /// restart of it ([`storage`](super::storage)).
    pub temp_dir: Option<PathBuf>,
    /// `-A`: one backup directory per `-D` directory.
    pub backup_dirs: Vec<PathBuf>,
    /// `-q`: no reverse DNS lookups (none are done anyway).
    pub no_dns: bool,
    /// `-E`: refuse unencrypted sessions.
    pub require_encryption: bool,
    /// `-S`: the servers we accept (empty: any).
    pub servers: Vec<ServerEntry>,
    /// `--allow-weak`: accept weak sessions (CBC, SHA-1, RSA under 2048 bits), logged as such.
    pub allow_weak: bool,
    /// `-R proxy[/FP]`: the response proxy every response goes to (name or address; our port
    /// `-p`), and the fingerprint its key must have.
    pub response_proxy: Option<(String, Option<Fingerprint>)>,
    /// `--json FILE|-`: status events, one JSON object a line (see [`crate::json_status`]).
    pub json: Option<PathBuf>,
    /// `-F`: uftpd's status lines go to this file (or to the log for `@LOG`).
    pub status_file: Option<PathBuf>,
    /// `-s`: the command run on received files (see [`super::postreceive`]).
    pub postreceive: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            daemon: DaemonOptions::default(),
            dest_dirs: vec![PathBuf::from("/tmp")],
            temp_names: false,
            move_each_file: false,
            temp_dir: None,
            backup_dirs: Vec::new(),
            no_dns: false,
            require_encryption: false,
            servers: Vec::new(),
            allow_weak: false,
            response_proxy: None,
            json: None,
            status_file: None,
            postreceive: None,
        }
    }
}

/// uftpd's log file when it runs as a daemon without `-L`.
pub const DEFAULT_LOGFILE: &str = "/tmp/uftpd.log";

/// Options of uftp 4.10.2's `uftpd` that take a value and are not implemented yet, with what
/// they do (for the refusal message).
const UNSUPPORTED_WITH_VALUE: &[(char, &str)] = &[('c', "cache size")];

/// Flags of uftp 4.10.2's `uftpd` not implemented yet.
const UNSUPPORTED_FLAGS: &[(char, &str)] = &[('m', "Windows key store")];

/// Whether uftpd refuses `-c` by name, and why.
fn refused(c: char) -> Option<&'static str> {
    UNSUPPORTED_WITH_VALUE
        .iter()
        .chain(UNSUPPORTED_FLAGS)
        .find(|(l, _)| *l == c)
        .map(|(_, what)| *what)
}

/// `uftpd`'s options and manual: the parser takes its letters from here, and the man page and
/// shell completions are rendered from it (see [`crate::cli`]).
pub const PAGE: Page = Page {
    name: "uftpd",
    summary: "receive files sent by UFTP 4 servers over multicast (uftp-rs)",
    operands: "",
    complete_operands: Complete::Nothing,
    description: &[
        "uftpd is the receiving daemon of uftp-rs, a reimplementation of UFTP 4 in Rust. It \
         listens for sessions announced on its public multicast addresses, registers with the \
         servers it accepts, and receives their files into its destination directories, under \
         a temporary name that becomes the file's name only once every byte has arrived. It \
         speaks to uftp 4.x servers and takes uftpd 4.10.2's options; those it does not carry \
         out are refused by name, never ignored.",
        "Without -d it becomes a daemon once its socket and keys are ready: the command returns \
         0 once the daemon runs and its PID file (-P) is written, or fails with the exit code \
         below. The daemon works from /, and relative names given to -L, -P, -D and -k are \
         taken from the directory it was started in.",
    ],
    options: &[
        Opt::flag('d', "Stay in the foreground and log to standard error; -L, -g and -n are ignored."),
        Opt::value('p', "port", Complete::Nothing, "The UDP port to listen on. Default 1044."),
        Opt::value('U', "UID", Complete::Nothing, "This receiver's ID, in hex, with or without 0x (12345678 is 0x12345678, as uftp 4.10.2 reads it), or as an IPv4 address (10.0.0.2 is 0x0A000002); not 0 or FFFFFFFF. Default: the IPv4 address of the first interface listened on."),
        Opt::value('x', "log_level", Complete::Words(&["0", "1", "2", "3", "4", "5"]), "How much to log, 0 (errors only) to 5 (debug). Default 2."),
        Opt::flag('t', "Receive into a temporary name beside the file and rename it at the end. This receiver always does so; the flag is accepted for uftpd's command lines."),
        Opt::value('T', "temp_dir", Complete::Dir, "Receive into temp_dir/_group_<group ID>/ and move what the session received into the -D directory when it completes. When a session fails (aborted, timed out, uftpd stopped or killed) its files stay there, each partial file with a sidecar recording the blocks it holds, and a restart of the session (uftp -F) resumes them: only the missing blocks are sent again. Absolute names are refused; not with -t or several -D; temp_dir must be on the destination's file system."),
        Opt::value('D', "dest_dir[,dest_dir...]", Complete::Dir, "Destination directories. A file with an absolute name must lie under one of them; other names go under the first. Default /tmp."),
        Opt::value('A', "backup_dir[,backup_dir...]", Complete::Dir, "One backup directory per -D directory: a file about to be replaced by a received file or symlink is first moved to backup_dir/YYYYMMDD/HHMMSS/full/path/of/the/file (local time), on the same file system. When the move fails the received file is rejected and the old one kept. Not with -T."),
        Opt::value('L', "logfile", Complete::File, "The daemon's log file. Default /tmp/uftpd.log."),
        Opt::value('F', "status_file", Complete::File, "Append uftpd 4.10.2's status lines to this file, or mix them into the log for @LOG: CONNECT;timestamp;server_id;session_id;server_ip;server_name when a session starts, and RESULT;timestamp;server_id;session_id;filename;size;status after each file (status copied, as uftpd 4.10.2 writes it, or rejected). Timestamps are local time as yyyy/mm/dd-hh:mm:ss, IDs 8 hex digits, sizes in KB; no reverse lookups are made, so server_name is the server's address."),
        Opt::flag('q', "Do not look up server names (no lookups are made anyway)."),
        Opt::value('P', "pidfile", Complete::File, "Write the daemon's process ID to this file once it runs; the file is removed when it exits."),
        Opt::value('S', "serverlist_file", Complete::File, "Accept sessions only from the servers listed in this file, one per line: ID|IP[|FINGERPRINT], the ID in hex or dotted form, the address the server's announcements come from, and optionally the fingerprint its key must have. Blank lines and lines starting with # are skipped."),
        Opt::value('R', "proxy[/fingerprint]", Complete::Nothing, "Send every response to this response proxy (a name or address, on the port of -p), whose key must have the fingerprint given, if one is."),
        Opt::value('c', "cache_size", Complete::Nothing, "Bytes of received data to cache before writing."),
        Opt::value('k', "keyfile[,keyfile...]", Complete::File, "Private key files (PEM), read at start-up; with -K, each key is generated into its file when the file does not exist. Without -k and -K an ephemeral P-256 key is made for the run."),
        Opt::value('K', "rsa:bits|ec:curve[,...]", Complete::Nothing, "Keys to generate: rsa:512 to rsa:2048, or ec:prime256v1 or ec:secp384r1, as many as -k lists files (or kept for the run without -k)."),
        Opt::flag('m', "Use the Windows system key store."),
        Opt::value('N', "priority", Complete::Nothing, "The process's nice value, -20 to 19."),
        Opt::flag('i', "With -T, move each file into the destination as soon as it is complete rather than when the session completes (directories and symlinks still move at the end), and call -s for each file as it is moved. A file moved early is received again in a restart (-F). Without -T it has no effect."),
        Opt::value('s', "postreceive_script", Complete::File, "Run this command on received files, as uftpd 4.10.2 does: postreceive_script -I session_id file [file...], session_id the group ID in 8 hex digits and each file a full path in the destination directory. Without -T it runs once for each file as soon as the file is received; with -T once when the session completes, with the top-level files and directories it moved into place. It runs beside the receiver, which does not wait for it; its output and exit status are logged."),
        Opt::value('g', "max_log_size", Complete::Nothing, "Roll the log over once it is larger than this many megabytes (10^6 bytes), 1 to 1024: the log becomes logfile.1, the older archives move up by one, and a new log starts. Default: no rolling."),
        Opt::value('n', "max_log_count", Complete::Nothing, "How many archived logs -g keeps, 1 to 1000; older ones are deleted. Default 5."),
        Opt::value('H', "hb_server[:port][,...]", Complete::Nothing, "Send heartbeats (HB_REQ) to these proxies, names or addresses, port 1044 unless given: the pinhole through this site's firewall or NAT through which a server proxy reaches this receiver without a client proxy. A proxy that pins this receiver's fingerprint (uftpproxyd -s fp=FP) challenges the first heartbeat; the answer is signed with the first -k key, and the proxy then sends its sessions to the address the heartbeats come from."),
        Opt::value('h', "hb_interval", Complete::Nothing, "Seconds between heartbeats, 1 to 3600. Default 20; the first goes out at start-up. Only with -H."),
        Opt::value('I', "interface[,interface...]", Complete::Interface, "Listen on these interfaces (names or addresses). Default: every interface that is up and multicast-capable, but loopback."),
        Opt::value('M', "pub_mcast_addr[,...]", Complete::Nothing, "The public multicast addresses to listen on, IPv4 or IPv6. Default 230.4.4.1."),
        Opt::value('B', "buf_size", Complete::Nothing, "The socket's receive buffer, 65536 to 104857600 bytes. Default 262144."),
        Opt::flag('E', "Accept encrypted sessions only; unencrypted ones are refused with an ABORT."),
        Opt::value('Q', "dscp", Complete::Nothing, "The DSCP of outgoing packets, 0 to 63 (decimal, 0x hex or 0 octal, as C's strtol reads it for uftpd 4.10.2). Default 0."),
        Opt::long_value("json", "FILE|-", Complete::File, "Write status events to FILE (appended to), or with -d to standard output for -: one JSON object a line, flushed as it happens: session_start, file (received, rejected or aborted, with its name, size and path) and session_end. README.md lists the fields. Not in uftp 4.10.2."),
        Opt::long_flag("allow-weak", "Accept weak sessions (CBC ciphers, SHA-1, RSA keys under 2048 bits), logged as weak; without it they are refused with an ABORT. Not in uftp 4.10.2, which accepts them."),
        crate::cli::HELP,
        crate::cli::VERSION_OPT,
    ],
    one_of: &[],
    refused,
    sections: &[
        ("SIGNALS", &["SIGTERM or SIGINT ends uftpd: every session in progress is aborted (the server is told \"Client shutting down\") and its unfinished file discarded, the PID file is removed, and the exit code is 6.", "SIGHUP reopens the log file under its name, for logrotate."]),
        ("EXIT STATUS", &["0: started (a daemon: it runs in the background). 1: an invalid command line. 2: the network could not be set up. 3: keys could not be read or made. 4: the log file could not be opened. 6: stopped by a signal."]),
        ("FILES", &["/tmp/uftpd.log: the daemon's log without -L.", "/etc/default/uftpd: the options the service (uftpd.service, /etc/init.d/uftpd) starts uftpd with, in DAEMON_ARGS."]),
        ("EXAMPLES", &["Receive into /srv/incoming as a daemon, logging to /var/log/uftpd.log rolled at 10 MB:", "  uftpd -D /srv/incoming -L /var/log/uftpd.log -g 10 -P /run/uftpd.pid", "In the foreground, encrypted sessions only, from the servers in /etc/uftp/servers:", "  uftpd -d -E -S /etc/uftp/servers -k /etc/uftp/uftpd.pem -K ec:prime256v1"]),
    ],
    see_also: "uftp(1), uftpproxyd(1), uftp_keymgt(1), uftpdump(1)",
};

/// The usage line, from [`PAGE`]: every option the parser carries out.
fn usage() -> String {
    crate::cli::usage(&PAGE)
}

/// uftpd's words for what [`crate::cli::Getopt`] finds wrong.
fn getopt_error(e: GetoptError) -> String {
    crate::cli::daemon_getopt_error(&PAGE, e, "a file, or - for standard output with -d")
}

/// Parses a server list (`-S`, `man uftpd`): one server a line, `ID|IP[|FP]`, the ID in hex
/// (`0x11112222`) or dotted IPv4 form, the address the server's ANNOUNCEs come from, and
/// optionally its key's fingerprint. Blank lines and `#` comments are skipped. `file` names the
/// source in errors.
pub fn parse_server_list(file: &str, text: &str) -> Result<Vec<ServerEntry>, String> {
    let mut out: Vec<ServerEntry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{file}:{}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(format!(
                "{}: expected ID|IP or ID|IP|FINGERPRINT, got {line:?}",
                at()
            ));
        }
        let id = crate::cli::parse_id(fields[0])
            .ok_or_else(|| format!("{}: invalid server ID {:?}", at(), fields[0]))?;
        let addr: IpAddr = fields[1]
            .parse()
            .map_err(|_| format!("{}: invalid IP address {:?}", at(), fields[1]))?;
        let fingerprint = match fields.get(2).filter(|f| !f.is_empty()) {
            Some(fp) => Some(Fingerprint::parse(fp).map_err(|_| {
                format!(
                    "{}: invalid fingerprint {fp:?} (20 ':'-separated hex bytes)",
                    at()
                )
            })?),
            None => None,
        };
        if out.iter().any(|s| s.id == id) {
            return Err(format!("{}: server 0x{id:08X} listed twice", at()));
        }
        if out.len() == MAX_SERVERS {
            return Err(format!("{}: more than {MAX_SERVERS} servers", at()));
        }
        out.push(ServerEntry {
            id,
            addr: Some(addr),
            fingerprint,
        });
    }
    Ok(out)
}

/// Reads and parses a server list file.
fn load_server_list(path: &Path) -> Result<Vec<ServerEntry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("-S: cannot read {}: {e}", path.display()))?;
    let servers = parse_server_list(&path.display().to_string(), &text)?;
    if servers.is_empty() {
        return Err(format!(
            "-S: {} lists no server (every session would be refused)",
            path.display()
        ));
    }
    Ok(servers)
}

impl Options {
    /// Parses the arguments after the program name, getopt style (`-p 1044`, `-p1044`, `-dq`).
    /// Errors are one line, ready to print after `uftpd: `.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
        let mut o = Options::default();
        for item in Getopt::new(&PAGE, args) {
            match item.map_err(getopt_error)? {
                Arg::Operand(arg) => {
                    return Err(format!("unexpected argument `{arg}`\n{}", usage()))
                }
                Arg::Long("allow-weak", _) => o.allow_weak = true,
                Arg::Long("json", v) => o.json = v.map(PathBuf::from),
                Arg::Long(name, _) => return Err(format!("--{name} is answered before parsing")),
                Arg::Short(c, v) => o.apply(c, v.as_deref())?,
            }
        }
        o.daemon.finish()?;
        let ec_keys = if o.daemon.keygen.is_empty() {
            // Key files are read at start-up; their kinds are not known yet.
            0
        } else {
            o.daemon
                .keygen
                .iter()
                .filter(|k| matches!(k, KeySpec::Ec(_)))
                .count()
        };
        if ec_keys > MAX_EC_KEYS {
            return Err(format!("-K: at most {MAX_EC_KEYS} EC keys"));
        }
        if let Some(path) = &o.daemon.server_list {
            o.servers = load_server_list(path)?;
        }
        if o.daemon.heartbeat_hosts.len() > MAX_HB_HOSTS {
            return Err(format!("-H: at most {MAX_HB_HOSTS} hosts"));
        }
        if o.temp_dir.is_some() && o.temp_names {
            return Err("-T and -t cannot be used together".into());
        }
        if !o.backup_dirs.is_empty() && o.temp_dir.is_some() {
            return Err("-A and -T cannot be used together".into());
        }
        if !o.backup_dirs.is_empty() && o.backup_dirs.len() != o.dest_dirs.len() {
            return Err(format!(
                "-A gives {} backup directories for {} -D directories: one for each",
                o.backup_dirs.len(),
                o.dest_dirs.len()
            ));
        }
        if o.temp_dir.is_some() && o.dest_dirs.len() > 1 {
            return Err("-T cannot be used with several -D directories".into());
        }
        if !o.daemon.foreground && o.json.as_deref() == Some(Path::new("-")) {
            return Err(
                "--json -: a daemon has no standard output; give -d, or --json with a file".into(),
            );
        }
        // The daemon works from `/`: relative names mean what they meant where it started.
        o.json = o
            .json
            .map(|j| if j == Path::new("-") { j } else { absolute(j) });
        o.status_file = o.status_file.map(|f| {
            if f == Path::new(crate::status_file::TO_LOG) {
                f
            } else {
                absolute(f)
            }
        });
        // A bare command name is looked up in PATH; a relative path is from where we started.
        o.postreceive = o.postreceive.map(|p| {
            if p.components().count() > 1 {
                absolute(p)
            } else {
                p
            }
        });
        o.dest_dirs = o.dest_dirs.into_iter().map(absolute).collect();
        o.temp_dir = o.temp_dir.map(absolute);
        o.backup_dirs = o.backup_dirs.into_iter().map(absolute).collect();
        Ok(o)
    }

    /// Where the log goes and how it rolls: `None` is standard error (`-d`, which ignores `-L`,
    /// `-g` and `-n` as uftpd does).
    pub fn log_file(&self) -> Option<(PathBuf, Option<Rolling>)> {
        self.daemon.log_file(DEFAULT_LOGFILE)
    }

    fn apply(&mut self, c: char, v: Option<&str>) -> Result<(), String> {
        if self.daemon.apply(c, v)? {
            return Ok(());
        }
        let v = v.unwrap_or_default();
        match c {
            'E' => self.require_encryption = true,
            'R' => {
                let (host, fp) = match v.split_once('/') {
                    Some((h, fp)) => (
                        h,
                        Some(Fingerprint::parse(fp).map_err(|_| {
                            format!("-R: invalid fingerprint `{fp}` (20 ':'-separated hex bytes)")
                        })?),
                    ),
                    None => (v, None),
                };
                if host.is_empty() {
                    return Err("-R needs the response proxy's name or address".into());
                }
                self.response_proxy = Some((host.to_string(), fp));
            }
            't' => self.temp_names = true,
            'i' => self.move_each_file = true,
            'T' => self.temp_dir = Some(PathBuf::from(v)),
            'A' => {
                self.backup_dirs = v.split(',').map(PathBuf::from).collect();
                if self.backup_dirs.iter().any(|d| d.as_os_str().is_empty()) {
                    return Err("-A needs a directory per -D directory".into());
                }
            }
            'q' => self.no_dns = true,
            'D' => {
                self.dest_dirs = list(v).map(PathBuf::from).collect();
                if self.dest_dirs.is_empty() {
                    return Err("-D needs at least one directory".into());
                }
            }
            'F' => self.status_file = Some(PathBuf::from(v)),
            's' => {
                if v.is_empty() {
                    return Err("-s needs the post-receive command".into());
                }
                self.postreceive = Some(PathBuf::from(v));
            }
            _ => return Err(format!("unknown option -{c}\n{}", usage())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::NamedCurve;
    use std::time::Duration;

    fn p(s: &str) -> Result<Options, String> {
        Options::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn backup_dirs_pair_with_destinations() {
        let o = p("-D /a,/b -A /ba,/bb").unwrap();
        assert_eq!(o.backup_dirs, [PathBuf::from("/ba"), PathBuf::from("/bb")]);
        assert!(p("-D /a,/b -A /ba").unwrap_err().contains("one for each"));
        assert!(p("-D /a -A /ba -T /t").unwrap_err().contains("-A and -T"));
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
    fn letters_follow_uftpd() {
        let o = p("-d -p 2000 -M 230.4.4.9,ff15::9 -I veth0 -U 0x0a000002 -D /a,/b -t -x 3 -q")
            .unwrap();
        assert_eq!(o.daemon.port, 2000);
        assert_eq!(o.daemon.public_addrs.len(), 2);
        assert_eq!(o.daemon.uid, Some(0x0a00_0002));
        assert_eq!(o.dest_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(o.temp_names && o.no_dns && o.daemon.foreground);
        assert_eq!(p("-dq -p1045").unwrap().daemon.port, 1045);
        assert_eq!(p("-d -U 10.0.0.7").unwrap().daemon.uid, Some(0x0a00_0007));
    }

    #[test]
    fn unsupported_and_bad_options_say_so() {
        assert_eq!(p("-d -T /tmp/t").unwrap().temp_dir, Some("/tmp/t".into()));
        assert!(p("-d -T /tmp/t -t").unwrap_err().contains("-T and -t"));
        assert!(p("-d -T /tmp/t -D /a,/b")
            .unwrap_err()
            .contains("several -D"));
        assert!(p("-d -m").unwrap_err().contains("not supported yet"));
        assert!(p("-d -p x").unwrap_err().contains("invalid port"));
        assert!(p("-d -M 10.0.0.1").unwrap_err().contains("multicast"));
        assert!(p("-d -U 0").unwrap_err().contains("UID"));
        assert!(p("-d -Z").unwrap_err().contains("unknown option"));
        assert!(p("-d -p").unwrap_err().contains("needs a value"));
        assert!(p("-g 0").unwrap_err().contains("invalid log size"));
        assert!(p("-g 1025").unwrap_err().contains("invalid log size"));
        assert!(p("-n 0").unwrap_err().contains("invalid log count"));
        assert!(p("-n 1001").unwrap_err().contains("invalid log count"));
    }

    #[test]
    fn heartbeats_to_proxies() {
        let o = p("-d -H proxy.example,10.0.0.9:2000 -h 5").unwrap();
        assert_eq!(o.daemon.heartbeat_hosts, ["proxy.example", "10.0.0.9:2000"]);
        assert_eq!(o.daemon.heartbeat_interval, Some(Duration::from_secs(5)));
        assert_eq!(p("-d -H 10.0.0.9").unwrap().daemon.heartbeat_interval, None);
        assert!(p("-d -h 5").unwrap_err().contains("give -H"));
        assert!(p("-d -H 10.0.0.9 -h 0")
            .unwrap_err()
            .contains("invalid heartbeat interval"));
        assert!(p("-d -H 1,2,3,4,5,6,7,8,9")
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn daemon_by_default_with_uftpds_log() {
        let o = p("-p 1044").unwrap();
        assert!(!o.daemon.foreground);
        assert_eq!(o.log_file(), Some((PathBuf::from(DEFAULT_LOGFILE), None)));
        let o = p("-L /var/log/u.log -g 10 -n 3").unwrap();
        assert_eq!(
            o.log_file(),
            Some((
                PathBuf::from("/var/log/u.log"),
                Some(Rolling {
                    max_bytes: 10_000_000,
                    keep: 3
                })
            ))
        );
        assert_eq!(p("-g 2").unwrap().log_file().unwrap().1.unwrap().keep, 5);
        // -d: standard error, whatever -L, -g and -n say.
        assert_eq!(p("-d -L /var/log/u.log -g 10").unwrap().log_file(), None);
    }

    #[test]
    fn relative_paths_are_taken_from_the_starting_directory() {
        let cwd = std::env::current_dir().unwrap();
        let o = p("-L u.log -P run/u.pid -D in,/abs -k k.pem").unwrap();
        assert_eq!(o.daemon.logfile, Some(cwd.join("u.log")));
        assert_eq!(o.daemon.pidfile, Some(cwd.join("run/u.pid")));
        assert_eq!(o.dest_dirs, [cwd.join("in"), PathBuf::from("/abs")]);
        assert_eq!(o.daemon.keyfiles, [cwd.join("k.pem")]);
    }

    #[test]
    fn security_letters_and_allow_weak() {
        let o = p("-d -E -k /a.pem,/b.pem -K rsa:2048,ec:secp384r1 --allow-weak").unwrap();
        assert!(o.require_encryption && o.allow_weak);
        assert_eq!(
            o.daemon.keyfiles,
            [PathBuf::from("/a.pem"), PathBuf::from("/b.pem")]
        );
        assert_eq!(
            o.daemon.keygen,
            [KeySpec::Rsa(2048), KeySpec::Ec(NamedCurve::Secp384r1)]
        );
        let o = p("-dE -Kec:prime256v1").unwrap();
        assert!(o.require_encryption && !o.allow_weak);
        assert_eq!(o.daemon.keygen, [KeySpec::Ec(NamedCurve::Prime256v1)]);
        assert!(!p("-d").unwrap().require_encryption);
        for (args, needle) in [
            ("-d -k /a.pem,/b.pem -K rsa:2048", "as many items"),
            ("-d -K rsa:4096", "outside 512..=2048"),
            ("-d -K ec:secp521r1", "not supported here"),
            ("-d -K dsa:1024", "rsa:BITS or ec:CURVE"),
            (
                "-d -K ec:prime256v1,ec:prime256v1,ec:prime256v1,ec:prime256v1,ec:prime256v1",
                "at most 4 EC keys",
            ),
            ("-d --allow-everything", "unknown option --allow-everything"),
            ("-d -S /nonexistent/servers", "cannot read"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }

    #[test]
    fn server_list_lines() {
        let fp = "66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC";
        let text = format!(
            "# servers\n0x11112222|192.168.1.101|{fp}\n\n  0x11113333 | fe80::213:72ff:fed6:69ca \n\
             10.77.0.1|10.77.0.1|\n"
        );
        let list = parse_server_list("servers", &text).unwrap();
        assert_eq!(
            list,
            [
                ServerEntry {
                    id: 0x1111_2222,
                    addr: Some(IpAddr::from([192, 168, 1, 101])),
                    fingerprint: Some(Fingerprint::parse(fp).unwrap()),
                },
                ServerEntry {
                    id: 0x1111_3333,
                    addr: Some("fe80::213:72ff:fed6:69ca".parse().unwrap()),
                    fingerprint: None,
                },
                ServerEntry {
                    id: 0x0A4D_0001,
                    addr: Some(IpAddr::from([10, 77, 0, 1])),
                    fingerprint: None,
                },
            ]
        );
        for (text, needle) in [
            ("0x1|10.0.0.1|AB:CD\n", "servers:1: invalid fingerprint"),
            ("# x\n0x1\n", "servers:2: expected ID|IP"),
            ("0x1|10.0.0.1|x|y\n", "expected ID|IP"),
            ("0xZZ|10.0.0.1\n", "invalid server ID"),
            ("0x1|host.example\n", "invalid IP address"),
            ("0x1|10.0.0.1\n0x1|10.0.0.2\n", "listed twice"),
        ] {
            let e = parse_server_list("servers", text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        let many: String = (1..=33).map(|i| format!("0x{i:X}|10.0.0.1\n")).collect();
        assert!(parse_server_list("s", &many)
            .unwrap_err()
            .contains("more than 32"));
    }

    #[test]
    fn server_list_file_is_read_at_parse_time() {
        let dir = std::env::temp_dir().join(format!("uftpd-servers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("servers");
        std::fs::write(&file, "0x0A4D0001|10.77.0.1\n").unwrap();
        let o = p(&format!("-d -S {}", file.display())).unwrap();
        assert_eq!(o.daemon.server_list.as_deref(), Some(file.as_path()));
        assert_eq!(o.servers.len(), 1);
        std::fs::write(&file, "# nobody\n").unwrap();
        assert!(p(&format!("-d -S {}", file.display()))
            .unwrap_err()
            .contains("lists no server"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn response_proxy_with_and_without_fingerprint() {
        let fp = "66:1E:C9:1D:FC:99:DB:60:B0:1A:F0:8F:CA:F4:28:27:A6:BE:94:BC";
        assert_eq!(
            p("-d -R 10.0.0.9").unwrap().response_proxy,
            Some(("10.0.0.9".to_string(), None))
        );
        assert_eq!(
            p(&format!("-d -R proxy.example/{fp}"))
                .unwrap()
                .response_proxy,
            Some((
                "proxy.example".to_string(),
                Some(Fingerprint::parse(fp).unwrap())
            ))
        );
        assert!(p("-d -R 10.0.0.9/AB")
            .unwrap_err()
            .contains("invalid fingerprint"));
        assert!(p("-d -R /AB").unwrap_err().contains("-R"));
        assert_eq!(p("-d").unwrap().response_proxy, None);
    }
}
