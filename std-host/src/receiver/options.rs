//! `uftpd`'s command line, with uftp 4.10.2's option letters and meanings (protocol digest
//! §8.2). Options this implementation does not carry out yet are refused by name, never ignored.

use std::net::IpAddr;
use std::path::PathBuf;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-d`: stay in the foreground.
    pub foreground: bool,
    /// `-p`: UDP port.
    pub port: u16,
    /// `-M`: public multicast addresses to listen on.
    pub public_addrs: Vec<IpAddr>,
    /// `-I`: interfaces (names or addresses); empty means every multicast-capable one.
    pub interfaces: Vec<String>,
    /// `-U`: our UID; `None`: the IPv4 address of the first interface.
    pub uid: Option<u32>,
    /// `-D`: destination directories (the first receives relative names).
    pub dest_dirs: Vec<PathBuf>,
    /// `-t`: receive under a temporary name and rename at the end (always done here).
    pub temp_names: bool,
    /// `-L`: log file (`None`: standard error).
    pub logfile: Option<PathBuf>,
    /// `-x`: log level 0–5.
    pub log_level: u8,
    /// `-B`: socket receive buffer size.
    pub bufsize: usize,
    /// `-q`: no reverse DNS lookups (none are done anyway).
    pub no_dns: bool,
    /// `-P`: PID file.
    pub pidfile: Option<PathBuf>,
    /// `-Q`: DSCP for outgoing packets.
    pub dscp: u8,
    /// `-N`: nice value.
    pub priority: Option<i32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            foreground: false,
            port: 1044,
            public_addrs: vec![IpAddr::from([230, 4, 4, 1])],
            interfaces: Vec::new(),
            uid: None,
            dest_dirs: vec![PathBuf::from("/tmp")],
            temp_names: false,
            logfile: None,
            log_level: 2,
            bufsize: 262_144,
            no_dns: false,
            pidfile: None,
            dscp: 0,
            priority: None,
        }
    }
}

/// Options of uftp 4.10.2's `uftpd` that take a value and are not implemented yet, with what
/// they do (for the refusal message).
const UNSUPPORTED_WITH_VALUE: &[(char, &str)] = &[
    ('T', "temp directory (restart support)"),
    ('A', "backup directories"),
    ('S', "server list"),
    ('R', "response proxy"),
    ('k', "private key files (encryption)"),
    ('K', "generated keys (encryption)"),
    ('s', "post-receive script"),
    ('c', "cache size"),
    ('h', "heartbeat interval"),
    ('H', "heartbeat hosts"),
    ('g', "log rolling size"),
    ('n', "log rolling count"),
    ('F', "status file"),
];

/// Flags of uftp 4.10.2's `uftpd` not implemented yet.
const UNSUPPORTED_FLAGS: &[(char, &str)] = &[
    ('E', "encrypted sessions only"),
    ('i', "move files one by one with -T"),
    ('m', "Windows key store"),
];

/// Usage text.
pub const USAGE: &str = "usage: uftpd -d [ -p port ] [ -M pub_addr[,pub_addr...] ] \
[ -I interface[,interface...] ] [ -U UID ] [ -D dest_dir[,dest_dir...] ] [ -t ] \
[ -L logfile ] [ -x log_level ] [ -B bufsize ] [ -Q dscp ] [ -N priority ] [ -q ] [ -P pidfile ]";

fn parse_u32_auto(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty())
}

impl Options {
    /// Parses the arguments after the program name, getopt style (`-p 1044`, `-p1044`, `-dq`).
    /// Errors are one line, ready to print after `uftpd: `.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
        let mut o = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
                return Err(format!("unexpected argument `{arg}`\n{USAGE}"));
            };
            for (i, c) in flags.char_indices() {
                let takes_value = "pMIUDLxBPQNTASRkKschHgnF".contains(c);
                let value = if takes_value {
                    let rest = &flags[i + c.len_utf8()..];
                    let v = if rest.is_empty() {
                        args.next()
                            .ok_or_else(|| format!("option -{c} needs a value\n{USAGE}"))?
                    } else {
                        rest.to_string()
                    };
                    Some(v)
                } else {
                    None
                };
                o.apply(c, value.as_deref())?;
                if takes_value {
                    break;
                }
            }
        }
        if !o.foreground {
            return Err(
                "daemon mode is not supported yet: run with -d (foreground), as the Debian \
                 service unit does"
                    .into(),
            );
        }
        Ok(o)
    }

    fn apply(&mut self, c: char, v: Option<&str>) -> Result<(), String> {
        if let Some((_, what)) = UNSUPPORTED_WITH_VALUE
            .iter()
            .chain(UNSUPPORTED_FLAGS)
            .find(|(l, _)| *l == c)
        {
            return Err(format!("-{c} ({what}) is not supported yet"));
        }
        let v = v.unwrap_or_default();
        match c {
            'd' => self.foreground = true,
            't' => self.temp_names = true,
            'q' => self.no_dns = true,
            'p' => {
                self.port = v
                    .parse()
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| format!("invalid port `{v}` for -p"))?
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
            'I' => self.interfaces = list(v).map(String::from).collect(),
            'U' => {
                let uid = parse_u32_auto(v)
                    .or_else(|| v.parse::<std::net::Ipv4Addr>().ok().map(u32::from))
                    .filter(|&u| u != 0 && u != u32::MAX)
                    .ok_or_else(|| format!("invalid UID `{v}` for -U (0x1..0xfffffffe)"))?;
                self.uid = Some(uid);
            }
            'D' => {
                self.dest_dirs = list(v).map(PathBuf::from).collect();
                if self.dest_dirs.is_empty() {
                    return Err("-D needs at least one directory".into());
                }
            }
            'L' => self.logfile = Some(PathBuf::from(v)),
            'P' => self.pidfile = Some(PathBuf::from(v)),
            'x' => {
                self.log_level = v
                    .parse()
                    .ok()
                    .filter(|&l| l <= 5)
                    .ok_or_else(|| format!("invalid log level `{v}` for -x (0-5)"))?
            }
            'B' => {
                self.bufsize = v
                    .parse()
                    .ok()
                    .filter(|b| (65_536..=104_857_600).contains(b))
                    .ok_or_else(|| format!("invalid buffer size `{v}` for -B (65536-104857600)"))?
            }
            'Q' => {
                self.dscp = parse_u32_auto(v)
                    .filter(|&d| d < 64)
                    .ok_or_else(|| format!("invalid DSCP `{v}` for -Q (0-63)"))?
                    as u8
            }
            'N' => {
                self.priority = Some(
                    v.parse()
                        .ok()
                        .filter(|p: &i32| (-20..=19).contains(p))
                        .ok_or_else(|| format!("invalid priority `{v}` for -N (-20..19)"))?,
                )
            }
            _ => return Err(format!("unknown option -{c}\n{USAGE}")),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, String> {
        Options::parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn letters_follow_uftpd() {
        let o = p("-d -p 2000 -M 230.4.4.9,ff15::9 -I veth0 -U 0x0a000002 -D /a,/b -t -x 3 -q")
            .unwrap();
        assert_eq!(o.port, 2000);
        assert_eq!(o.public_addrs.len(), 2);
        assert_eq!(o.uid, Some(0x0a00_0002));
        assert_eq!(o.dest_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(o.temp_names && o.no_dns && o.foreground);
        assert_eq!(p("-dq -p1045").unwrap().port, 1045);
        assert_eq!(p("-d -U 10.0.0.7").unwrap().uid, Some(0x0a00_0007));
    }

    #[test]
    fn unsupported_and_bad_options_say_so() {
        assert_eq!(
            p("-d -k key.pem").unwrap_err(),
            "-k (private key files (encryption)) is not supported yet"
        );
        assert!(p("-d -T /tmp/t").unwrap_err().contains("-T"));
        assert!(p("-d -E").unwrap_err().contains("not supported yet"));
        assert!(p("-p 1044").unwrap_err().contains("daemon mode"));
        assert!(p("-d -p x").unwrap_err().contains("invalid port"));
        assert!(p("-d -M 10.0.0.1").unwrap_err().contains("multicast"));
        assert!(p("-d -U 0").unwrap_err().contains("UID"));
        assert!(p("-d -Z").unwrap_err().contains("unknown option"));
        assert!(p("-d -p").unwrap_err().contains("needs a value"));
    }
}
