//! `uftpdump`: prints UFTP 4 messages from a capture file or live traffic, one line (or one
//! JSON object with `--json`) per message. See `uftpdump --help`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use std_host::dump::capture::CaptureReader;
use std_host::dump::live::{Listener, PacketCapture};
use std_host::dump::{Dumper, PortFilter, Printer, Record, Style, DEFAULT_PORT};
use std_host::ifaddr;

/// Decode UFTP 4 traffic (encrypted reliable multicast file transfer) from a pcap/pcapng file,
/// a network interface, or a UDP socket.
#[derive(Debug, Parser)]
#[command(name = "uftpdump", version = std_host::cli::VERSION, after_help = EXAMPLES)]
struct Cli {
    /// Capture file to read (classic pcap or pcapng; `-` for standard input).
    #[arg(conflicts_with_all = ["interface", "listen"], required_unless_present_any = ["interface", "listen"])]
    file: Option<PathBuf>,

    /// Capture live from this interface with a packet socket (Linux; needs root or CAP_NET_RAW).
    #[arg(short = 'i', long, value_name = "IFACE", conflicts_with = "listen")]
    interface: Option<String>,

    /// Bind the UFTP UDP port, join the multicast groups of -M and decode what arrives (no root
    /// needed; only traffic to this host and the joined groups is seen).
    #[arg(long)]
    listen: bool,

    /// Multicast groups to join with --listen, comma-separated (default: 230.4.4.1, uftp's public
    /// address). The private group an ANNOUNCE names is joined automatically.
    #[arg(
        short = 'M',
        long = "mcast",
        value_name = "GROUP,...",
        value_delimiter = ',',
        requires = "listen"
    )]
    groups: Vec<IpAddr>,

    /// With --listen: interface to join groups on (name, or IPv4 address).
    #[arg(
        short = 'I',
        long = "mcast-if",
        value_name = "IFACE",
        requires = "listen"
    )]
    mcast_if: Option<String>,

    /// With --listen: do not join the private groups that ANNOUNCEs name.
    #[arg(long, requires = "listen")]
    no_follow: bool,

    /// UDP port of UFTP: a datagram is decoded if either of its ports matches.
    #[arg(short = 'p', long, default_value_t = DEFAULT_PORT)]
    port: u16,

    /// Try to decode every UDP datagram, whatever its ports.
    #[arg(long, conflicts_with = "listen")]
    any_port: bool,

    /// Print one JSON object per message (field names as tshark's uftp4 dissector has them).
    #[arg(long)]
    json: bool,

    /// Stop after this many messages.
    #[arg(short = 'c', long, value_name = "N")]
    count: Option<u64>,
}

const EXAMPLES: &str = "\
Examples:
  uftpdump capture.pcap                 one line per UFTP message
  uftpdump --json capture.pcapng | jq . one JSON object per message
  uftpdump -p 2044 capture.pcap         UFTP on another port
  sudo uftpdump -i eth0                 live, from an interface
  uftpdump --listen -M 230.4.4.1        live, as a receiver would see it";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`uftpdump … | head`) is a normal way to stop.
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("uftpdump: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<()> {
    let style = if cli.json { Style::Json } else { Style::Line };
    let stdout = io::stdout().lock();
    let mut printer = Printer::new(BufWriter::new(stdout), style);
    let filter = if cli.any_port {
        PortFilter::Any
    } else {
        PortFilter::Port(cli.port)
    };
    let mut dumper = Dumper::new(filter);
    let limit = cli.count.unwrap_or(u64::MAX);
    let mut printed = 0u64;

    if let Some(path) = &cli.file {
        let input: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        };
        let mut reader = CaptureReader::new(BufReader::new(input))
            .with_context(|| format!("cannot read {}", path.display()))?;
        while printed < limit {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    // Keep what was decoded, as tshark does with a cut-short capture.
                    printer.flush()?;
                    eprintln!(
                        "uftpdump: {}: frame {}: {e}",
                        path.display(),
                        dumper.frames() + 1
                    );
                    break;
                }
            };
            if let Some(r) = dumper.handle_frame(&frame) {
                printer.print(&r)?;
                printed += 1;
            }
        }
        printer.flush()?;
        return Ok(());
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }

    if let Some(iface) = &cli.interface {
        let mut cap = PacketCapture::open(iface).map_err(|e| {
            if e.kind() == io::ErrorKind::PermissionDenied {
                anyhow::anyhow!(
                    "capturing on {iface} needs root or CAP_NET_RAW ({e}); without them use --listen"
                )
            } else {
                anyhow::anyhow!("cannot capture on {iface}: {e}")
            }
        })?;
        while printed < limit {
            let Some(frame) = cap.next_frame(&stop)? else {
                break;
            };
            if let Some(r) = dumper.handle_frame(&frame) {
                printer.print(&r)?;
                printer.flush()?;
                printed += 1;
            }
        }
        printer.flush()?;
        return Ok(());
    }

    // --listen
    let groups = if cli.groups.is_empty() {
        vec![IpAddr::V4(Ipv4Addr::new(230, 4, 4, 1))]
    } else {
        cli.groups.clone()
    };
    let (v4_iface, v6_iface) = match &cli.mcast_if {
        None => (Ipv4Addr::UNSPECIFIED, 0),
        Some(s) => match s.parse::<Ipv4Addr>() {
            Ok(a) => (a, 0),
            Err(_) => (interface_v4_addr(s)?, ifaddr::index_of(s)?),
        },
    };
    let mut listener = Listener::open(cli.port, &groups, v4_iface, v6_iface, stop.clone())
        .context("cannot listen")?;
    while printed < limit && !stop.load(Ordering::Relaxed) {
        let Some(d) = listener.next()? else { continue };
        let r = dumper.handle_datagram(d.ts, d.src, d.dst, &d.payload);
        if !cli.no_follow {
            follow_announce(&mut listener, &r);
        }
        printer.print(&r)?;
        printer.flush()?;
        printed += 1;
    }
    printer.flush()?;
    Ok(())
}

/// Joins the private group of an ANNOUNCE, so the rest of the session is seen too.
fn follow_announce(listener: &mut Listener, r: &Record) {
    let Some(addr) = r
        .decoded
        .fields
        .get("privatemcast")
        .and_then(|v| v.as_str())
    else {
        return;
    };
    if let Ok(group) = addr.parse::<IpAddr>() {
        if group.is_multicast() {
            if let Err(e) = listener.join(group) {
                eprintln!("uftpdump: {e}");
            }
        }
    }
}

/// The first IPv4 address of interface `name` (`-I NAME` for an IPv4 group).
fn interface_v4_addr(name: &str) -> Result<Ipv4Addr> {
    match ifaddr::ipv4_of(name) {
        Some(a) => Ok(a),
        None => bail!("interface {name} has no IPv4 address; give -I with an address"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The clap definition has exactly the options of the man page's table, with a value where
    /// the table names one.
    #[test]
    fn clap_has_exactly_the_pages_options() {
        let page = &std_host::dump::PAGE;
        let mut cmd = Cli::command();
        cmd.build();
        let mut seen = 0;
        for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
            let o = page
                .options
                .iter()
                .find(|o| o.short == arg.get_short() && o.long == arg.get_long())
                .unwrap_or_else(|| panic!("{:?} is not on the page", arg.get_id()));
            assert_eq!(
                o.value.is_some(),
                arg.get_action().takes_values(),
                "{:?}",
                arg.get_id()
            );
            seen += 1;
        }
        assert_eq!(
            seen,
            page.options.len(),
            "the page lists options clap lacks"
        );
    }
}
