//! `uftp`'s command line: uftp 4.10.2's option letters and meanings (digest §8.1), parsed
//! getopt-style (`-R 1000`, `-R1000`, `-lq`). Options not implemented yet are refused with one
//! line that names them, never ignored.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// `-R`: bytes per second (Kbps × 128), `None` for `-R -1`.
    pub rate: Option<u64>,
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
    /// `-H`: closed group.
    pub hosts: Vec<u32>,
    /// `-L`.
    pub logfile: Option<PathBuf>,
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rate: Some(1000 * 128),
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
            logfile: None,
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
        }
    }
}

/// Options uftp 4.10.2 has that this implementation refuses for now, with what they do.
const NOT_YET: &[(char, &str, bool)] = &[
    ('Y', "encryption", true),
    ('h', "hash type", true),
    ('w', "signature type", true),
    ('e', "key exchange", true),
    ('c', "client authentication", false),
    ('k', "key file", true),
    ('K', "key generation", true),
    ('y', "system key store", false),
    ('j', "proxy list", true),
    ('C', "congestion control", true),
    ('W', "transmit weight", true),
    ('N', "NAK percentage limit", true),
    ('m', "NAK count limit", true),
    ('F', "restart", true),
    ('f', "restart files", false),
    ('X', "exclude file", true),
    ('z', "sync mode", false),
    ('Z', "sync preview", false),
    ('S', "status file", true),
    ('Q', "DSCP", true),
    ('g', "log rolling", true),
    ('n', "log rolling", true),
];

const WITH_ARG: &str = "RLBbtIpuUaxHMPDErsi";
const FLAGS: &str = "lTqo";

/// Parses uftp's arguments (without the program name).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut args = args.into_iter();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        if only_paths || !arg.starts_with('-') || arg == "-" {
            o.paths.push(PathBuf::from(arg));
            continue;
        }
        if arg == "--" {
            only_paths = true;
            continue;
        }
        let chars = arg[1..].char_indices();
        for (i, c) in chars {
            if let Some(&(_, what, _)) = NOT_YET.iter().find(|x| x.0 == c) {
                return err(format!("-{c} ({what}) is not supported yet"));
            }
            if FLAGS.contains(c) {
                match c {
                    'l' => o.follow_links = true,
                    'T' => o.timestamps = true,
                    'q' => o.quit_on_fail = true,
                    _ => o.dest_is_dir = true,
                }
                continue;
            }
            if !WITH_ARG.contains(c) {
                return err(format!("unknown option -{c} (see man uftp)"));
            }
            let rest = &arg[1 + i + c.len_utf8()..];
            let value = if rest.is_empty() {
                match args.next() {
                    Some(v) => v,
                    None => return err(format!("-{c} needs a value")),
                }
            } else {
                rest.to_string()
            };
            apply(&mut o, c, &value)?;
            break;
        }
    }
    if o.paths.is_empty() && o.list_file.is_none() {
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

fn seconds(c: char, v: &str) -> Result<Duration, UsageError> {
    let s: f64 = number(c, v)?;
    if !(0.001..=1000.0).contains(&s) {
        return err(format!("-{c}: GRTT values must be 0.001-1000 seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Parses a node ID: `0x` hex, plain hex of 8 digits, or an IPv4 address.
pub fn parse_id(v: &str) -> Option<u32> {
    let v = v.trim();
    let id = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Ok(ip) = v.parse::<std::net::Ipv4Addr>() {
        u32::from(ip)
    } else {
        u32::from_str_radix(v, 16).ok()?
    };
    (id != 0 && id != u32::MAX).then_some(id)
}

fn apply(o: &mut Options, c: char, v: &str) -> Result<(), UsageError> {
    match c {
        'R' => {
            let kbps: i64 = number(c, v)?;
            o.rate = match kbps {
                -1 => None,
                k if k > 0 => Some(k as u64 * 128),
                _ => return err("-R: rate must be positive Kbps, or -1 for unpaced"),
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
        'p' => o.port = number(c, v)?,
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
            let list = if let Some(file) = v.strip_prefix('@') {
                std::fs::read_to_string(file)
                    .map_err(|e| UsageError(format!("-H: cannot read {file}: {e}")))?
                    .lines()
                    .map(|l| l.split('|').next().unwrap_or("").trim().to_string())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .collect::<Vec<_>>()
            } else {
                v.split(',').map(str::to_string).collect()
            };
            for h in list {
                let id =
                    parse_id(&h).ok_or_else(|| UsageError(format!("-H: invalid host ID {h:?}")))?;
                if !o.hosts.contains(&id) {
                    o.hosts.push(id);
                }
            }
        }
        'L' => o.logfile = Some(PathBuf::from(v)),
        'D' => o.dest_name = Some(v.to_string()),
        'E' => o.base_dirs = v.split(',').map(PathBuf::from).collect(),
        'i' => o.list_file = Some(v.to_string()),
        _ => return err(format!("unknown option -{c}")),
    }
    Ok(())
}

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
        assert_eq!(o.hosts, [1, 0x0a00_0002]);
        assert!(o.follow_links && o.quit_on_fail);
        assert_eq!(o.paths, [PathBuf::from("f")]);
        assert_eq!(p(&["-R", "10000", "f"]).unwrap().rate, Some(1_280_000));
    }

    #[test]
    fn unsupported_options_are_refused_by_name() {
        assert_eq!(
            p(&["-Y", "aes256-gcm", "f"]).unwrap_err().0,
            "-Y (encryption) is not supported yet"
        );
        assert_eq!(
            p(&["-z", "f"]).unwrap_err().0,
            "-z (sync mode) is not supported yet"
        );
        assert!(p(&["-b", "100", "f"]).unwrap_err().0.contains("512-8800"));
        assert!(p(&[]).is_err());
    }
}
