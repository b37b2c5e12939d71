//! `cargo xtask vectors`: golden test vectors captured from the real uftp 4.10.2.
//!
//! Runs Debian's `uftp`, `uftpd` and `uftpproxyd` through a list of scenarios inside network
//! namespaces made for the purpose ([`netns`]), captures each scenario with tcpdump, and writes
//! `tests/vectors/pcap/<scenario>.pcap`, one raw UDP payload per message kind under
//! `tests/vectors/messages/`, the payloads of the decrypted RSA session as `inner-*.bin`, and
//! `MANIFEST.tsv`. See `tests/vectors/README.md`.

mod crypto;
mod messages;
mod netns;
mod scenarios;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask vectors [--only SCENARIO,...] [--extract-only]

Needs root, iproute2, tcpdump, nftables and Debian's uftp package.
  --only         run just these scenarios (default: all); existing pcaps of the others are kept
  --extract-only  do not capture; re-extract messages from the committed pcaps
";

pub fn main(args: impl Iterator<Item = String>) -> Result<()> {
    let mut only: Option<Vec<String>> = None;
    let mut extract_only = false;
    let mut args = args;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => {
                let list = args.next().context("--only needs a list of scenarios")?;
                only = Some(list.split(',').map(str::to_owned).collect());
            }
            "--extract-only" => extract_only = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    let root = workspace_root();
    let out = root.join("tests/vectors");
    std::fs::create_dir_all(out.join("pcap"))?;
    std::fs::create_dir_all(out.join("messages"))?;
    if !extract_only {
        let work = root.join("target/vectors-work");
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        scenarios::capture_all(&work, &out.join("pcap"), only.as_deref())?;
    }
    messages::extract_all(&out)
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
