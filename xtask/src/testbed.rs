//! The benchmarks' network ([`testnet::Testbed`] on a plan of its own): a sender namespace and N
//! receiver namespaces on a Linux bridge, every link at a chosen MTU, with optional random loss
//! (nftables) on each receiver's input.
//!
//! Names start with `ub<pid in hex>`, apart from the test suite's `ut…` testbeds, and addresses
//! are `10.78.0.<n>/24`, apart from the test suite's `10.77.0.0/24`. A testbed left behind by a
//! killed run is removed by the next run once its process is gone ([`remove_stale`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Result};
use testnet::{try_sh, Plan, Testbed};

/// This process's name prefix (`ub` and the PID in hex).
pub fn prefix() -> String {
    format!("ub{:x}", std::process::id())
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// A bridge, a sender (host 0) and `receivers` receivers, every link at `mtu`, no loss.
pub fn testbed(receivers: usize, mtu: u32) -> Result<Testbed> {
    if !(1..=200).contains(&receivers) {
        bail!("between 1 and 200 receivers");
    }
    // A serial per testbed: a deleted namespace's veths may linger a moment.
    let tag = format!(
        "{}{:x}",
        prefix(),
        SERIAL.fetch_add(1, Ordering::Relaxed) % 16
    );
    let plan = Plan {
        tag,
        net4: "10.78.0".into(),
        net6: None,
        mtu: Some(mtu),
        scratch: None,
    };
    Ok(Testbed::try_with(receivers + 1, &plan)?)
}

/// Deletes the namespaces and scratch directories of earlier runs whose process is gone.
pub fn remove_stale() {
    let gone = |pid: u32| !Path::new(&format!("/proc/{pid}")).exists();
    let list = try_sh("ip", &["netns", "list"]).unwrap_or_default();
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        if owner(name).is_some_and(gone) {
            let _ = try_sh("ip", &["netns", "del", name]);
        }
    }
    if let Ok(dir) = std::fs::read_dir(SCRATCH_PARENT) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix(SCRATCH_PREFIX)
                .and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(gone) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Where files go: tmpfs, so that disk speed does not count.
const SCRATCH_PARENT: &str = "/dev/shm";
const SCRATCH_PREFIX: &str = "uftp-rs-bench-";

/// This process's scratch directory on tmpfs (not created here).
pub fn scratch() -> PathBuf {
    Path::new(SCRATCH_PARENT).join(format!("{SCRATCH_PREFIX}{}", std::process::id()))
}

/// The PID in a namespace name [`testbed`] made (`ub<hex pid><serial>-br|h<n>`).
fn owner(name: &str) -> Option<u32> {
    let (tag, role) = name.strip_prefix("ub")?.split_once('-')?;
    let role_ok = role == "br"
        || role
            .strip_prefix('h')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !role_ok || tag.len() < 2 {
        return None;
    }
    // The last hex digit is the testbed's serial.
    u32::from_str_radix(&tag[..tag.len() - 1], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::owner;

    #[test]
    fn owner_reads_only_our_namespace_names() {
        assert_eq!(owner("ub1f2a0-br"), Some(0x1f2a));
        assert_eq!(owner("ub1f2a3-h16"), Some(0x1f2a));
        assert_eq!(owner("ub1f2a3-h1"), Some(0x1f2a));
        // The test suite's, others', and look-alikes.
        assert_eq!(owner("ut1f2a3-h1"), None);
        assert_eq!(owner("lb-h1"), None);
        assert_eq!(owner("ubuntu-br"), None);
        assert_eq!(owner("ub1f2a3-x"), None);
        assert_eq!(owner("ub1f2a3-h"), None);
    }
}
