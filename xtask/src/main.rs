//! `cargo xtask <job>`: the project's chores in plain Rust.
#![forbid(unsafe_code)]

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <job>

jobs:
  ci                     everything CI checks (fmt, clippy, tests, firmware build, docs, fuzz)
";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let job = args.next().unwrap_or_default();
    match job.as_str() {
        "" | "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown job `{other}`\n{USAGE}"),
    }
}
