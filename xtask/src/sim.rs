//! `cargo xtask sim [options]`: the simulator, `sim`'s `uftp-sim` binary, built in release (a
//! run of thousands of receivers needs the optimised build) and run with the given options.
//! See `cargo xtask sim --help` and README.md.

use std::process::Command;

use anyhow::{Context, Result};

use crate::ci::root;

/// Builds and runs `uftp-sim` with `args`; exits with its exit code.
pub fn main(args: impl Iterator<Item = String>) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "sim",
            "--bin",
            "uftp-sim",
            "--",
        ])
        .args(args)
        .current_dir(root())
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
