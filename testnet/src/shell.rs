//! Running the tools that build test networks (`ip`, `nft`), and checking they can run.

use std::fmt;
use std::process::{Command, Stdio};

/// A failure of a `try_` helper: what failed, with the tool's output.
#[derive(Debug, Clone)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Unwraps a `try_` helper's result, panicking with its message.
pub(crate) fn or_panic<T>(r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `prog args`; its standard output, or an error with its output.
pub fn try_sh(prog: &str, args: &[&str]) -> Result<String, Error> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .map_err(|e| Error(format!("cannot run {prog}: {e}")))?;
    if !out.status.success() {
        return Err(Error(format!(
            "`{prog} {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(prog: &str, args: &[&str]) -> String {
    or_panic(try_sh(prog, args))
}

/// Fails unless this runs as root with `ip` and `nft` available.
pub fn try_require_root_tools() -> Result<(), Error> {
    if try_sh("id", &["-u"])?.trim() != "0" {
        return Err(Error(
            "network-namespace tests and benchmarks need root (CI runs as root)".into(),
        ));
    }
    for tool in ["ip", "nft"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(Error(format!(
                "`{tool}` is missing: run `cargo xtask setup`"
            )));
        }
    }
    Ok(())
}

/// Panics unless this runs as root with `ip` and `nft` available: network tests never skip
/// silently.
pub fn require_root_tools() {
    or_panic(try_require_root_tools())
}

/// `ip netns exec <ns> <prog> <args>`; its standard output.
pub(crate) fn run_in(ns: &str, prog: &str, args: &[&str]) -> Result<String, Error> {
    let mut all = vec!["netns", "exec", ns, prog];
    all.extend_from_slice(args);
    try_sh("ip", &all)
}

/// The packet count of the first `counter` in an `nft list` output (0 when there is none).
pub(crate) fn nft_packets(listing: &str) -> Option<u64> {
    listing
        .split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
}
