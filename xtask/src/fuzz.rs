//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/`, seeded from the golden vectors.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ci::{root, run};

/// Every fuzz target.
pub const TARGETS: &[&str] = &["wire_parse", "wire_roundtrip", "crypto_input"];

/// Parses `--seconds N` and target names, then fuzzes.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().context("--seconds needs a value")?.parse()?,
            t if TARGETS.contains(&t) => targets.push(t.to_string()),
            other => bail!("fuzz: unknown target or option `{other}` (targets: {TARGETS:?})"),
        }
    }
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    fuzz(seconds, &targets)
}

/// Runs each target (all when `targets` is empty) for `seconds`, failing on any crash.
/// New inputs go to `fuzz/corpus/<target>` (not committed); the committed seeds are the
/// captures in `tests/vectors/messages`.
pub fn fuzz(seconds: u64, targets: &[&str]) -> Result<()> {
    let targets = if targets.is_empty() { TARGETS } else { targets };
    let fuzz_dir = root().join("fuzz");
    let seeds = root().join("tests/vectors/messages");
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let log = fuzz_dir.join(format!("{target}.log"));
        let mut cmd = Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "run", "-O", target])
            .arg(&corpus)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ])
            .current_dir(&fuzz_dir)
            .stderr(std::fs::File::create(&log)?);
        let result = run(&mut cmd);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let runs = text
            .lines()
            .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .map(str::trim)
            .unwrap_or("?");
        if result.is_err() {
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            bail!(
                "fuzz target {target} failed after {runs} executions (log: {})",
                log.display()
            );
        }
        eprintln!("fuzz: {target}: {runs} executions in {seconds} s, no crash");
    }
    Ok(())
}
