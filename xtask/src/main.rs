//! `cargo xtask <job>`: the project's chores in plain Rust.
// Unsafe only where the benchmarks call libc (sockets, wait4, signals): `blast` and `sys`.
#![deny(unsafe_code)]

use anyhow::{bail, Result};

mod bench;
#[allow(unsafe_code)] // batched UDP system calls and socket options through libc
mod blast;
mod calibration;
mod ci;
mod demo;
mod firmware;
mod fuzz;
mod package;
mod qemu;
mod sim;
#[allow(unsafe_code)] // signal handler, wait4 and sysconf through libc
mod sys;
mod testbed;
#[cfg(test)]
mod tidy;
mod vectors;

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  bench [--case NAME]... [--size MiB] [--rounds N] [--quick] [--no-blast]
                         our uftp -> uftpd against uftp 4.10.2's on a testbed of network
                         namespaces (loss, 16 receivers, encryption, MTU 9000, default
                         rate): a table of medians, target/bench/results.json (root)
  blast [--receivers N] [--size MiB]
                         the raw multicast ceiling of that testbed: UDP GSO/sendmmsg
                         blaster and recvmmsg counters, no protocol (root)
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
        "bench" => bench::main(args),
        "blast" => blast::main(args),
        // The blast workers, run by `blast` inside the testbed's namespaces.
        "blast-send" => blast::send_worker(&args.collect::<Vec<_>>()),
        "blast-recv" => blast::recv_worker(&args.collect::<Vec<_>>()),
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
