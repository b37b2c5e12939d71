//! `uftpdump`: decodes UFTP 4 traffic from a capture file or live, one line (or JSON object)
//! per message.
//!
//! The pipeline is frame → [`net::link_payload`] → [`net::parse_ip`] → [`net::Reassembler`] →
//! [`net::parse_udp`] → port filter → [`decode::decode`] → [`Record`] → [`Printer`]. The
//! `--listen` mode enters at the UDP payload with [`Dumper::handle_datagram`].

pub mod capture;
pub mod decode;
pub mod live;
pub mod net;

use std::io::{self, Write};
use std::net::SocketAddr;

use serde_json::{Map, Value};

use capture::{Frame, Timestamp};
use net::Reassembler;

/// The UDP port UFTP uses by default.
pub const DEFAULT_PORT: u16 = 1044;

/// Which UDP datagrams count as UFTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortFilter {
    /// Either port equals this one.
    Port(u16),
    /// Every UDP datagram.
    Any,
}

impl PortFilter {
    fn matches(self, src: &SocketAddr, dst: &SocketAddr) -> bool {
        match self {
            PortFilter::Port(p) => src.port() == p || dst.port() == p,
            PortFilter::Any => true,
        }
    }
}

/// One decoded datagram, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Frame number in the capture (1-based, as tshark counts; for a reassembled datagram, the
    /// frame that completed it).
    pub frame: u64,
    /// Capture time.
    pub ts: Timestamp,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver (the multicast group for multicast traffic).
    pub dst: SocketAddr,
    /// The UFTP fields and any decoding error.
    pub decoded: decode::Decoded,
}

impl Record {
    /// The JSON object printed by `--json`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("frame".into(), self.frame.into());
        m.insert("time".into(), self.ts.epoch_string().into());
        m.insert("src".into(), self.src.to_string().into());
        m.insert("dst".into(), self.dst.to_string().into());
        for (k, v) in &self.decoded.fields {
            m.insert(k.clone(), v.clone());
        }
        if let Some(e) = &self.decoded.error {
            m.insert("error".into(), e.clone().into());
        }
        Value::Object(m)
    }

    /// The one-line form: time, addresses, message name, then `name=value` pairs.
    pub fn to_line(&self) -> String {
        let mut s = format!("{} {} > {}", self.ts.iso_string(), self.src, self.dst);
        let f = &self.decoded.fields;
        if let Some(Value::String(name)) = f.get("func_name") {
            s.push(' ');
            s.push_str(name);
        }
        for (k, v) in f {
            // Line mode leaves out what the name already says, duplicates kept in JSON for
            // tshark's names, and long random values.
            if LINE_SKIP.contains(&k.as_str()) || *v == Value::Bool(false) {
                continue;
            }
            s.push(' ');
            if *v == Value::Bool(true) {
                s.push_str(k);
                continue;
            }
            s.push_str(k);
            s.push('=');
            push_value(&mut s, k, v);
        }
        if let Some(e) = &self.decoded.error {
            s.push_str(" error=");
            s.push_str(&Value::String(e.clone()).to_string());
        }
        s
    }
}

const LINE_SKIP: [&str; 9] = [
    "func_name",
    "func",
    "version",
    "grtt_raw",
    "gsize_raw",
    "blocknum",
    "iv_ctr",
    "rand1",
    "rand2",
];

fn push_value(s: &mut String, key: &str, v: &Value) {
    match v {
        Value::String(t) if t.is_empty() || t.contains([' ', '"', '=', ',']) => {
            s.push_str(&v.to_string());
        }
        Value::String(t) => s.push_str(t),
        Value::Number(n) if key == "grtt" || key.ends_with("rtt") => {
            let secs = n.as_f64().unwrap_or_default();
            s.push_str(&format!("{secs:.6}s"));
        }
        Value::Array(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                push_value(s, key, item);
            }
            s.push(']');
        }
        Value::Object(m) => {
            // `{destid=0x0a630002 clr rtt=0.009026s}`: the same rules as the top level.
            s.push('{');
            let mut first = true;
            for (k, v) in m {
                if *v == Value::Bool(false) {
                    continue;
                }
                if !first {
                    s.push(' ');
                }
                first = false;
                s.push_str(k);
                if *v != Value::Bool(true) {
                    s.push('=');
                    push_value(s, k, v);
                }
            }
            s.push('}');
        }
        _ => s.push_str(&v.to_string()),
    }
}

/// Output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One human-readable line per message.
    Line,
    /// One JSON object per line (JSON Lines).
    Json,
}

/// Writes records in the chosen style.
#[derive(Debug)]
pub struct Printer<W: Write> {
    out: W,
    style: Style,
}

impl<W: Write> Printer<W> {
    /// Creates a printer.
    pub fn new(out: W, style: Style) -> Self {
        Printer { out, style }
    }

    /// Prints one record.
    pub fn print(&mut self, r: &Record) -> io::Result<()> {
        match self.style {
            Style::Json => writeln!(self.out, "{}", r.to_json()),
            Style::Line => writeln!(self.out, "{}", r.to_line()),
        }
    }

    /// Flushes the output (live capture flushes after every record).
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Turns frames (or bare datagrams) into records.
#[derive(Debug)]
pub struct Dumper {
    filter: PortFilter,
    frames: u64,
    reassembler: Reassembler,
}

impl Dumper {
    /// Creates a dumper that keeps the datagrams `filter` accepts.
    pub fn new(filter: PortFilter) -> Self {
        Dumper {
            filter,
            frames: 0,
            reassembler: Reassembler::new(),
        }
    }

    /// Frames seen so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Handles one captured frame; returns the record of the UFTP datagram it carries or
    /// completes, if any. Frames that are not UDP on a matching port give `None`.
    pub fn handle_frame(&mut self, frame: &Frame) -> Option<Record> {
        self.frames += 1;
        let ip = net::link_payload(frame.linktype, &frame.data).ok()?;
        let pkt = net::parse_ip(ip).ok()?;
        if pkt.fragment.is_none() {
            if pkt.protocol != net::IPPROTO_UDP {
                return None;
            }
            let udp = net::parse_udp(pkt.src, pkt.dst, pkt.payload).ok()?;
            return self.record(frame.ts, &udp);
        }
        let whole = self.reassembler.push(frame.ts, &pkt).ok()??;
        if whole.protocol != net::IPPROTO_UDP {
            return None;
        }
        let udp = net::parse_udp(whole.src, whole.dst, &whole.payload).ok()?;
        self.record(frame.ts, &udp)
    }

    fn record(&self, ts: Timestamp, udp: &net::Udp<'_>) -> Option<Record> {
        if !self.filter.matches(&udp.src, &udp.dst) {
            return None;
        }
        let mut decoded = decode::decode(udp.payload);
        if udp.truncated && decoded.error.is_none() {
            decoded.error = Some("datagram truncated by the capture's snap length".into());
        }
        Some(Record {
            frame: self.frames,
            ts,
            src: udp.src,
            dst: udp.dst,
            decoded,
        })
    }

    /// Handles a datagram received on a socket (`--listen`): no link layer, no filter.
    pub fn handle_datagram(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Record {
        self.frames += 1;
        Record {
            frame: self.frames,
            ts,
            src,
            dst,
            decoded: decode::decode(payload),
        }
    }
}

/// `uftpdump`'s options and manual (the program is `src/bin/uftpdump.rs`, whose tests check
/// that its clap definition has exactly these options; see [`crate::cli`]).
pub const PAGE: crate::cli::Page = {
    use crate::cli::{Complete, Opt, Page};
    Page {
        name: "uftpdump",
        summary: "decode UFTP 4 traffic from a capture file or live (uftp-rs)",
        operands: "[file]",
        complete_operands: Complete::File,
        description: &[
            "uftpdump prints every UFTP 4 message in a pcap or pcapng capture file (- for \
             standard input), or live from an interface (-i, with a packet socket: root or \
             CAP_NET_RAW) or from a socket bound to the UFTP port (--listen), one line per \
             message, or with --json one JSON object per message with the field names of \
             tshark's uftp4 dissector. Encrypted messages show their envelope.",
        ],
        options: &[
            Opt::both('i', "interface", Some("IFACE"), Complete::Interface, "Capture live from this interface with a packet socket."),
            Opt::long_flag("listen", "Bind the UFTP port, join the groups of -M and decode what arrives (no root needed; only traffic to this host and the joined groups is seen)."),
            Opt::both('M', "mcast", Some("GROUP,..."), Complete::Nothing, "With --listen: the multicast groups to join. Default 230.4.4.1. The private group an ANNOUNCE names is joined too."),
            Opt::both('I', "mcast-if", Some("IFACE"), Complete::Interface, "With --listen: the interface to join groups on (a name or IPv4 address)."),
            Opt::long_flag("no-follow", "With --listen: do not join the private groups that ANNOUNCEs name."),
            Opt::both('p', "port", Some("PORT"), Complete::Nothing, "UFTP's UDP port: a datagram is decoded if either of its ports matches. Default 1044."),
            Opt::long_flag("any-port", "Try to decode every UDP datagram, whatever its ports."),
            Opt::long_flag("json", "Print one JSON object per message."),
            Opt::both('c', "count", Some("N"), Complete::Nothing, "Stop after this many messages."),
            Opt::both('h', "help", None, Complete::Nothing, "Print a summary of the options."),
            Opt::both('V', "version", None, Complete::Nothing, "Print the version."),
        ],
        one_of: &[],
        refused: |_| None,
        sections: &[
            ("EXIT STATUS", &["0: done (a closed output pipe included). 1: the capture or the network could not be read. 2: an invalid command line."]),
            ("EXAMPLES", &["  uftpdump capture.pcap\n  uftpdump --json capture.pcapng | jq .\n  uftpdump -i eth0\n  uftpdump --listen -M 230.4.4.1"]),
        ],
        see_also: "uftp(1), uftpd(1), uftpproxyd(1), tshark(1)",
    }
};
