//! `cargo xtask <job>`: the project's chores in plain Rust.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};

mod vectors;

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  ci                     everything CI checks (fmt, clippy, tests, firmware build, docs, fuzz)
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
        "vectors" => vectors::main(args),
        other => bail!("unknown job `{other}`\n{USAGE}"),
    }
}
