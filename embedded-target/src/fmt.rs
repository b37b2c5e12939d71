//! The firmware's log macros: defmt on the boards (`defmt` feature), `log` on the host (`log`
//! feature), nothing otherwise. Arguments are formatted with `{}` only and must implement both
//! `Display` and `defmt::Format`; the wrappers below make addresses, hex and digests so.

#![allow(unused_macros)] // Not every level is used by every build.

use core::fmt;
use core::net::IpAddr;

macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::info!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::info!($($arg)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::warn!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::warn!($($arg)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($($arg)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::debug!($($arg)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        { let _ = ::core::format_args!($($arg)*); }
    }};
}

/// An IP address in a log line.
#[derive(Debug, Clone, Copy)]
pub struct Ip(pub IpAddr);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Ip {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.0 {
            IpAddr::V4(a) => {
                let [a, b, c, d] = a.octets();
                defmt::write!(f, "{}.{}.{}.{}", a, b, c, d)
            }
            IpAddr::V6(a) => {
                let s = a.segments();
                defmt::write!(
                    f,
                    "{=u16:x}:{=u16:x}:{=u16:x}:{=u16:x}:{=u16:x}:{=u16:x}:{=u16:x}:{=u16:x}",
                    s[0],
                    s[1],
                    s[2],
                    s[3],
                    s[4],
                    s[5],
                    s[6],
                    s[7]
                )
            }
        }
    }
}

/// A UID in uftp's form, `0x0A4D0001`.
#[derive(Debug, Clone, Copy)]
pub struct Uid(pub u32);

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08X}", self.0)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Uid {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "0x{=u32:08X}", self.0)
    }
}

/// Bytes as lower-case hex (digests, fingerprints).
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Hex<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        for b in self.0 {
            defmt::write!(f, "{=u8:02x}", *b)
        }
    }
}

/// Untrusted bytes from the network (a file name, an ABORT reason) as printable ASCII.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a>(pub &'a [u8]);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        self.0.iter().try_for_each(|&b| {
            f.write_char(if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            })
        })
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Text<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        // defmt sends strings, not characters: sanitise into a bounded buffer first.
        let mut buf = [b'?'; 96];
        let n = self.0.len().min(buf.len());
        for (o, &b) in buf.iter_mut().zip(self.0) {
            if b.is_ascii_graphic() || b == b' ' {
                *o = b;
            }
        }
        let s = core::str::from_utf8(&buf[..n]).unwrap_or("?");
        defmt::write!(f, "{=str}", s)
    }
}
