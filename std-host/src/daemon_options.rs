//! The letters `uftpd` and `uftpproxyd` share, read in one place: `-d x L g n P B k K I M p U
//! Q N S H h`, with uftp 4.10.2's meanings and our ranges and words. Each daemon's parser hands
//! every letter to [`DaemonOptions::apply`] first and reads only its own letters itself.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::absolute;
use crate::keys::{KeySpec, NamedCurve};
use crate::log::{Rolling, MEGABYTE};

/// What the shared letters asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonOptions {
    /// `-d`: stay in the foreground and log to standard error.
    pub foreground: bool,
    /// `-p`: the UDP port to listen on.
    pub port: u16,
    /// `-M`: public multicast addresses to listen on.
    pub public_addrs: Vec<IpAddr>,
    /// `-I`: interfaces (names or addresses); empty means every multicast-capable one.
    pub interfaces: Vec<String>,
    /// `-U`: our UID; `None`: the IPv4 address of the first interface.
    pub uid: Option<u32>,
    /// `-L`: the daemon's log file (`None`: the program's default); with `-d` the log goes to
    /// standard error.
    pub logfile: Option<PathBuf>,
    /// `-g`: roll the log file over at this many megabytes (10^6 bytes; 1–1024).
    pub log_max_mb: Option<u32>,
    /// `-n`: archived log files kept when rolling (1–1000, default 5).
    pub log_keep: u32,
    /// `-x`: log level 0–5.
    pub log_level: u8,
    /// `-B`: socket buffer size.
    pub bufsize: usize,
    /// `-P`: PID file.
    pub pidfile: Option<PathBuf>,
    /// `-Q`: DSCP of outgoing packets.
    pub dscp: u8,
    /// `-N`: nice value.
    pub priority: Option<i32>,
    /// `-k`: our private key files (read; or written with `-K`'s keys when they do not exist).
    pub keyfiles: Vec<PathBuf>,
    /// `-K`: keys to generate (`rsa:BITS`, `ec:CURVE`).
    pub keygen: Vec<KeySpec>,
    /// `-S`: the server list file (read by each daemon, which says what it accepts).
    pub server_list: Option<PathBuf>,
    /// `-H`: proxies to send heartbeats to (`host[:port]`, port 1044 by default).
    pub heartbeat_hosts: Vec<String>,
    /// `-h`: seconds between heartbeats (`None`: 20 s, uftp 4.10.2's default).
    pub heartbeat_interval: Option<Duration>,
    /// The shared letters given, for options that apply in some modes only.
    given: String,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            foreground: false,
            port: 1044,
            public_addrs: vec![IpAddr::from([230, 4, 4, 1])],
            interfaces: Vec::new(),
            uid: None,
            logfile: None,
            log_max_mb: None,
            log_keep: 5,
            log_level: 2,
            bufsize: 262_144,
            pidfile: None,
            dscp: 0,
            priority: None,
            keyfiles: Vec::new(),
            keygen: Vec::new(),
            server_list: None,
            heartbeat_hosts: Vec::new(),
            heartbeat_interval: None,
            given: String::new(),
        }
    }
}

/// The items of a comma-separated list, trimmed, empty ones left out.
pub fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

/// A number in `range`, or `what` said about `v`.
fn in_range<T: std::str::FromStr + PartialOrd>(
    v: &str,
    range: std::ops::RangeInclusive<T>,
    what: impl FnOnce() -> String,
) -> Result<T, String> {
    v.parse()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(what)
}

impl DaemonOptions {
    /// Reads `-c` (with its value, if it has one) when it is a shared letter: `Ok(false)` when
    /// it is not, for the daemon's own parser.
    pub fn apply(&mut self, c: char, v: Option<&str>) -> Result<bool, String> {
        let v = match (c, v) {
            ('d', None) => {
                self.foreground = true;
                self.given.push(c);
                return Ok(true);
            }
            (_, None) => return Ok(false),
            (_, Some(v)) => v,
        };
        match c {
            'p' => {
                self.port = crate::cli::parse_port(v)
                    .ok_or_else(|| format!("invalid port `{v}` for -p (1-65535)"))?
            }
            'M' => {
                self.public_addrs = list(v)
                    .map(|a| {
                        a.parse::<IpAddr>()
                            .ok()
                            .filter(IpAddr::is_multicast)
                            .ok_or_else(|| format!("invalid multicast address `{a}` for -M"))
                    })
                    .collect::<Result<_, _>>()?;
                if self.public_addrs.is_empty() {
                    return Err("-M needs at least one address".into());
                }
            }
            'I' => {
                self.interfaces = list(v).map(String::from).collect();
                if self.interfaces.is_empty() {
                    return Err("-I needs at least one interface".into());
                }
            }
            'U' => {
                self.uid = Some(crate::cli::parse_id(v).ok_or_else(|| {
                    format!("invalid UID `{v}` for -U (hex, 1 to fffffffe, or an IPv4 address)")
                })?)
            }
            'x' => {
                self.log_level =
                    in_range(v, 0..=5, || format!("invalid log level `{v}` for -x (0-5)"))?
            }
            'L' => self.logfile = Some(PathBuf::from(v)),
            'g' => {
                self.log_max_mb = Some(in_range(v, 1..=1024, || {
                    format!("invalid log size `{v}` for -g (1-1024 MB)")
                })?)
            }
            'n' => {
                self.log_keep = in_range(v, 1..=1000, || {
                    format!("invalid log count `{v}` for -n (1-1000)")
                })?
            }
            'P' => self.pidfile = Some(PathBuf::from(v)),
            'B' => {
                self.bufsize = in_range(v, 65_536..=104_857_600, || {
                    format!("invalid buffer size `{v}` for -B (65536-104857600)")
                })?
            }
            'Q' => {
                self.dscp = crate::cli::parse_c_number(v)
                    .filter(|&d| d < 64)
                    .ok_or_else(|| format!("invalid DSCP `{v}` for -Q (0-63)"))?
                    as u8
            }
            'N' => {
                self.priority = Some(in_range(v, -20..=19, || {
                    format!("invalid priority `{v}` for -N (-20..19)")
                })?)
            }
            'k' => {
                self.keyfiles = list(v).map(PathBuf::from).collect();
                if self.keyfiles.is_empty() {
                    return Err("-k needs at least one key file".into());
                }
            }
            'K' => {
                self.keygen = list(v)
                    .map(|spec| {
                        let k = spec.parse::<KeySpec>().map_err(|e| format!("-K: {e}"))?;
                        match k {
                            KeySpec::Ec(NamedCurve::Prime256v1 | NamedCurve::Secp384r1)
                            | KeySpec::Rsa(_) => Ok(k),
                            KeySpec::Ec(c) => Err(format!(
                                "-K: EC curve {} is not supported here (prime256v1 and secp384r1 are)",
                                c.name()
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                if self.keygen.is_empty() {
                    return Err("-K needs at least one key spec (rsa:BITS or ec:CURVE)".into());
                }
            }
            'S' => self.server_list = Some(PathBuf::from(v)),
            'H' => self.heartbeat_hosts = crate::cli::parse_hb_hosts(v)?,
            'h' => self.heartbeat_interval = Some(crate::cli::parse_hb_interval(v)?),
            _ => return Ok(false),
        }
        self.given.push(c);
        Ok(true)
    }

    /// Whether `-c` was given.
    pub fn gave(&self, c: char) -> bool {
        self.given.contains(c)
    }

    /// Checks what depends on several shared letters, and makes the names absolute: the
    /// daemon works from `/`, and relative names mean what they meant where it started.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.heartbeat_interval.is_some() && self.heartbeat_hosts.is_empty() {
            return Err("-h sets the heartbeat interval: give -H with the hosts too".into());
        }
        if !self.keyfiles.is_empty()
            && !self.keygen.is_empty()
            && self.keyfiles.len() != self.keygen.len()
        {
            return Err(format!(
                "-k and -K must list as many items ({} key files, {} key specs): each generated \
                 key is written to its key file",
                self.keyfiles.len(),
                self.keygen.len()
            ));
        }
        self.logfile = self.logfile.take().map(absolute);
        self.pidfile = self.pidfile.take().map(absolute);
        self.keyfiles = std::mem::take(&mut self.keyfiles)
            .into_iter()
            .map(absolute)
            .collect();
        Ok(())
    }

    /// Where the log goes and how it rolls: `None` is standard error (`-d`, which ignores `-L`,
    /// `-g` and `-n` as uftpd and uftpproxyd do); `default` without `-L`.
    pub fn log_file(&self, default: &str) -> Option<(PathBuf, Option<Rolling>)> {
        if self.foreground {
            return None;
        }
        let path = self
            .logfile
            .clone()
            .unwrap_or_else(|| PathBuf::from(default));
        let rolling = self.log_max_mb.map(|mb| Rolling {
            max_bytes: u64::from(mb) * MEGABYTE,
            keep: self.log_keep,
        });
        Some((path, rolling))
    }
}
