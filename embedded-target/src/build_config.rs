//! The settings a board firmware is built with, read from the environment at build time
//! (`UFTP_ADDRESS=… cargo build …`); each board reports a bad value in its own way.
//!
//! - `UFTP_ADDRESS`: a static `A.B.C.D/LEN` (and optional `UFTP_GATEWAY`); DHCP without it.
//! - `UFTP_REQUIRE_ENCRYPTION=1`: refuse unencrypted sessions (uftpd's `-E`).
//! - `UFTP_SERVERS`: `;`-separated server-list lines, `ID|IP[|FINGERPRINT]` (uftpd's `-S`); with
//!   a fingerprint, only that server key is accepted, and so only encrypted sessions from it.

use embassy_net::{Ipv4Address, Ipv4Cidr, StaticConfigV4};

use crate::receive::{parse_server, Settings};

/// A build-time setting that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadSetting {
    /// The variable's name.
    pub name: &'static str,
    /// The part of its value at fault.
    pub value: &'static str,
}

/// The receiver settings this firmware was built with.
pub fn settings() -> Result<Settings, BadSetting> {
    let mut s = Settings {
        require_encryption: option_env!("UFTP_REQUIRE_ENCRYPTION").is_some_and(|v| v == "1"),
        ..Settings::default()
    };
    for line in option_env!("UFTP_SERVERS")
        .unwrap_or("")
        .split(';')
        .filter(|l| !l.trim().is_empty())
    {
        match parse_server(line) {
            Some(entry) if s.servers.push(entry).is_ok() => {}
            _ => {
                return Err(BadSetting {
                    name: "UFTP_SERVERS",
                    value: line,
                })
            }
        }
    }
    Ok(s)
}

/// The network configuration this firmware was built with: DHCP, or `UFTP_ADDRESS`.
pub fn net_config() -> Result<embassy_net::Config, BadSetting> {
    let Some(address) = option_env!("UFTP_ADDRESS") else {
        return Ok(embassy_net::Config::dhcpv4(Default::default()));
    };
    let address = parse_cidr(address).ok_or(BadSetting {
        name: "UFTP_ADDRESS",
        value: address,
    })?;
    let gateway = match option_env!("UFTP_GATEWAY") {
        None => None,
        Some(g) => Some(g.parse().map_err(|_| BadSetting {
            name: "UFTP_GATEWAY",
            value: g,
        })?),
    };
    Ok(embassy_net::Config::ipv4_static(StaticConfigV4 {
        address,
        gateway,
        dns_servers: Default::default(),
    }))
}

/// `A.B.C.D/LEN`.
fn parse_cidr(s: &str) -> Option<Ipv4Cidr> {
    let (ip, len) = s.split_once('/')?;
    let ip: Ipv4Address = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|&l| l <= 32)?;
    Some(Ipv4Cidr::new(ip, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_bad_ones_do_not() {
        let c = parse_cidr("10.77.0.100/24").unwrap();
        assert_eq!(c.address(), Ipv4Address::new(10, 77, 0, 100));
        assert_eq!(c.prefix_len(), 24);
        assert!(parse_cidr("10.77.0.100").is_none());
        assert!(parse_cidr("10.77.0.100/33").is_none());
        assert!(parse_cidr("10.77.0/24").is_none());
    }
}
