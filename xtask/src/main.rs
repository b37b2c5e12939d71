//! `cargo xtask <job>`: the project's chores in plain Rust.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};

mod ci;
mod demo;
mod firmware;
mod fuzz;
mod package;
mod qemu;
mod sim;
mod vectors;

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  demo [--size MiB] [--port N]
                         the main job: our uftpd and uftp on this machine (loopback
                         multicast), a file and a directory tree, every copy checked
  setup                  install what the tests need when missing (apt packages with
                         qemu-system-arm, the thumbv7em-none-eabihf target, cargo-deb,
                         cargo-fuzz)
  ci [--fuzz-seconds N]  setup, then everything CI checks: fmt, clippy, the firmware
                         (its checks, both boards' images, the QEMU image), docs, each
                         fuzz target for N s (20), the tests (the QEMU firmware's too),
                         the Debian package (deb)
  firmware               build the release firmware of both boards for
                         thumbv7em-none-eabihf and print flash and static RAM use
  man                    rewrite the man pages and shell completions under
                         std-host/packaging/ from the programs' option tables
  deb                    build the Debian package (cargo deb) and check it in a scratch
                         directory: contents, programs, man pages, completions, units,
                         the init script starting uftpd (root; installs cargo-deb)
  qemu [--machine M] [--tap IFNAME] [--address A.B.C.D/LEN|dhcp] [--build]
                         build the receiver firmware for QEMU's mps2-an500/mps2-an386
                         and run it under qemu-system-arm (--help for the options)
  fuzz [--seconds N] [TARGET...]
                         run the fuzz targets (all by default) for N s each (60)
  sim [options]          simulate one sender and many receivers on a lossy multicast
                         network with the real state machines (--help for the options)
  vectors                capture golden vectors from the real uftp 4.10.2 (root; see
                         tests/vectors/README.md)
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let job = args.next().unwrap_or_default();
    match job.as_str() {
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        "demo" => demo::main(args),
        "setup" => ci::setup(),
        "ci" => ci::ci(args),
        "firmware" => firmware::main(args),
        "fuzz" => fuzz::main(args),
        "man" => package::man(),
        "deb" => package::deb(),
        "qemu" => qemu::main(args),
        "sim" => sim::main(args),
        "vectors" => vectors::main(args),
        other => bail!("unknown job `{other}`\n{USAGE}"),
    }
}
