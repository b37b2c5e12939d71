//! Who runs a program in a test, and keys made the way a user of uftp 4.10.2 makes them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::our_binary;

/// Which implementation runs a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imp {
    /// This workspace's program (release build).
    Ours,
    /// Debian's uftp 4.10.2, from `PATH`.
    Debian,
}

impl Imp {
    /// The path of program `name` (`uftp`, `uftpd`, `uftpproxyd`, …) of this implementation.
    pub fn program(self, name: &str) -> PathBuf {
        match self {
            Imp::Ours => our_binary(name),
            Imp::Debian => PathBuf::from(name),
        }
    }
}

/// Generates a key with Debian's `uftp_keymgt -g spec` (`ec:prime256v1`, `rsa:2048`, …) into
/// `path`; returns its fingerprint as `uftp_keymgt` prints it (`AA:BB:…`).
pub fn keygen(path: &Path, spec: &str) -> String {
    let out = Command::new("uftp_keymgt")
        .arg("-g")
        .arg(spec)
        .arg(path)
        .output()
        .expect("uftp_keymgt");
    // It prints `file: type, size, fingerprint: AA:BB:…` on standard error.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "uftp_keymgt -g {spec} failed: {text}");
    text.split("fingerprint: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint in {text:?}"))
        .to_string()
}
