//! The content the end-to-end tests send, and how they compare what arrived with it.
//!
//! [`make_content`] writes `src/big.bin` (a large incompressible file) and `src/tree/`: nested
//! directories, a file shorter than one block, an empty file, an empty directory, a symlink and a
//! name with spaces. [`listing`] describes a directory as `(relative path, what)` pairs so that a
//! whole delivery is checked by one equality, which also catches leftovers.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fixture::{sha256, write_pattern};

/// Writes `root/src/big.bin` (`big` bytes) and `root/src/tree/`; returns both paths, in that
/// order, ready to be given to a sender.
pub fn make_content(root: &Path, big: u64) -> Vec<PathBuf> {
    let src = root.join("src");
    let tree = src.join("tree");
    fs::create_dir_all(tree.join("a/b/c")).expect("tree dirs");
    fs::create_dir_all(tree.join("empty dir")).expect("empty dir");
    write_pattern(
        &src.join("big.bin"),
        usize::try_from(big).expect("size"),
        0x5eed,
    );
    write_pattern(&tree.join("a/b/c/deep.bin"), 300_001, 7);
    fs::write(tree.join("a/one block.txt"), b"exactly one short block\n").expect("write");
    write_pattern(&tree.join("name with spaces.txt"), 4242, 9);
    fs::write(tree.join("a/b/empty.txt"), b"").expect("write");
    std::os::unix::fs::symlink("c/deep.bin", tree.join("a/b/link")).expect("symlink");
    vec![src.join("big.bin"), tree]
}

/// Every path under `dir`, relative and sorted, with what it is: a file's sha256, `dir`, or
/// `-> target` for a symlink.
pub fn listing(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p
                .strip_prefix(base)
                .expect("under base")
                .to_string_lossy()
                .into_owned();
            let m = fs::symlink_metadata(&p).expect("metadata");
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).expect("readlink");
                out.push((rel, format!("-> {}", t.display())));
            } else if m.is_dir() {
                out.push((rel, "dir".into()));
                walk(base, &p, out);
            } else {
                out.push((rel, sha256(&p)));
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v
}

/// Whether a name is a temporary of one of the receivers: ours (`.<name>.uftp-…part`) or
/// Debian's `uftpd -t` (`<name>.~uftp-…`).
pub fn is_temporary(path: &str) -> bool {
    path.ends_with(".part") || path.contains(".~uftp-")
}

/// The temporaries left anywhere under `dir`.
pub fn temporaries(dir: &Path) -> Vec<String> {
    names(dir).into_iter().filter(|p| is_temporary(p)).collect()
}

/// Every relative path under `dir` (no hashing: cheap to poll).
pub fn names(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(base)
                    .expect("under base")
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}
