//! What the end-to-end tests need besides their network (crate `testnet`): our programs built
//! with the release profile, the machine-wide lock that runs network tests one at a time, and
//! test files with their digests.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use testnet::sh;

/// Holds a machine-wide lock so that network tests (which load both cores) run one at a time,
/// across test binaries too.
#[derive(Debug)]
pub struct SerialGuard {
    _file: File,
}

/// Takes the machine-wide network-test lock.
pub fn serial() -> SerialGuard {
    let file = File::create(std::env::temp_dir().join("uftp-rs-netns.lock")).expect("lock file");
    file.lock().expect("lock");
    SerialGuard { _file: file }
}

/// Path of one of this workspace's binaries (`uftp`, `uftpd`, …), built with the release
/// profile whatever profile the tests use: the end-to-end tests run real transfers at hundreds of
/// Mbit/s beside uftp 4.10.2 (an optimised C program), and an unoptimised receiver falls so far
/// behind that the peer gives up on it. Cargo rebuilds only what changed.
pub fn our_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        // target/<profile>/deps/<test> → target/release
        let target_dir = exe
            .parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .expect("target dir")
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "std-host", "--bins"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build");
        assert!(status.success(), "building std-host's binaries failed");
        target_dir.join("release")
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// SHA-256 of a file, as lowercase hex (via `sha256sum`).
pub fn sha256(path: &Path) -> String {
    let out = sh("sha256sum", &[path.to_str().expect("utf-8 path")]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Writes `len` deterministic pseudo-random bytes (from `seed`) to `path`.
pub fn write_pattern(path: &Path, len: usize, seed: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(File::create(path).expect("create"));
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = len;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = left.min(8);
        f.write_all(&bytes[..n]).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
}
