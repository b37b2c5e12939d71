//! `cargo xtask man` and `cargo xtask deb`: the generated manual pages and completions, and the
//! Debian package.

use std::process::Command;

use anyhow::Result;

use crate::ci::{cargo, run};

/// Rewrites `std-host/packaging/{man,completions}` from the programs' option tables (the test
/// that checks them, with `UPDATE_SNAPSHOTS=1`).
pub fn man() -> Result<()> {
    run(cargo()
        .args([
            "test",
            "-p",
            "std-host",
            "--lib",
            "cli::tests::generated_files_are_current",
        ])
        .env("UPDATE_SNAPSHOTS", "1"))?;
    eprintln!("man: std-host/packaging/man and std-host/packaging/completions are current");
    let _ = Command::new("git")
        .args(["status", "--short", "std-host/packaging"])
        .current_dir(crate::ci::root())
        .status();
    Ok(())
}
