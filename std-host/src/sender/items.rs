//! What `uftp` sends: its file and directory arguments walked into items (directories become
//! their files, empty directories and symlinks are sent as such), named as uftp names them
//! (`-D`, `-o`, `-E`).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use proto_core::wire::FileType;

use super::options::Options;

/// One item to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Where it is here.
    pub path: PathBuf,
    /// Its name on the receivers, `/`-separated.
    pub name: Vec<u8>,
    /// File, directory or symlink.
    pub ftype: FileType,
    /// Bytes (regular files).
    pub size: u64,
    /// Modification time, UNIX seconds.
    pub mtime: u32,
    /// Symlink target.
    pub link: Vec<u8>,
}

/// Walks `paths` into items; what cannot be sent is reported in the returned warnings.
pub fn collect(o: &Options, paths: &[PathBuf]) -> (Vec<Item>, Vec<String>) {
    let mut items = Vec::new();
    let mut warnings = Vec::new();
    let single = paths.len() == 1 && !o.dest_is_dir;
    for p in paths {
        let base = match (&o.dest_name, single) {
            (Some(d), true) => d.as_bytes().to_vec(),
            _ => {
                let Some(n) = top_name(o, p) else {
                    warnings.push(format!(
                        "{}: not under any -E base directory, skipped",
                        p.display()
                    ));
                    continue;
                };
                match &o.dest_name {
                    Some(d) => [d.as_bytes(), b"/", &n].concat(),
                    None => n,
                }
            }
        };
        walk(o, p, base, &mut items, &mut warnings);
    }
    (items, warnings)
}

fn top_name(o: &Options, p: &Path) -> Option<Vec<u8>> {
    if o.base_dirs.is_empty() {
        let name = match p.file_name() {
            Some(n) => n.to_os_string(),
            None => std::fs::canonicalize(p).ok()?.file_name()?.to_os_string(),
        };
        return Some(name.as_bytes().to_vec());
    }
    for b in &o.base_dirs {
        if let Ok(rest) = p.strip_prefix(b) {
            let parts: Vec<&[u8]> = rest
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.as_bytes()),
                    _ => None,
                })
                .collect();
            if !parts.is_empty() {
                return Some(parts.join(&b'/'));
            }
        }
    }
    None
}

fn walk(o: &Options, path: &Path, name: Vec<u8>, items: &mut Vec<Item>, warn: &mut Vec<String>) {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return warn.push(format!("{}: {e}", path.display())),
    };
    let mtime = meta.mtime().clamp(0, i64::from(u32::MAX)) as u32;
    if meta.file_type().is_symlink() && !o.follow_links {
        match std::fs::read_link(path) {
            Ok(target) => items.push(Item {
                path: path.to_path_buf(),
                name,
                ftype: FileType::Symlink,
                size: 0,
                mtime,
                link: target.as_os_str().as_bytes().to_vec(),
            }),
            Err(e) => warn.push(format!("{}: {e}", path.display())),
        }
        return;
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return warn.push(format!("{}: {e}", path.display())),
    };
    let mtime = meta.mtime().clamp(0, i64::from(u32::MAX)) as u32;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return warn.push(format!("{}: {e}", path.display())),
        };
        entries.sort();
        if entries.is_empty() {
            items.push(Item {
                path: path.to_path_buf(),
                name: name.clone(),
                ftype: FileType::Directory,
                size: 0,
                mtime,
                link: Vec::new(),
            });
        }
        for e in entries {
            let child = e
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            walk(o, &e, [&name[..], b"/", &child].concat(), items, warn);
        }
    } else if meta.is_file() {
        items.push(Item {
            path: path.to_path_buf(),
            name,
            ftype: FileType::Regular,
            size: meta.len(),
            mtime,
            link: Vec::new(),
        });
    } else {
        warn.push(format!(
            "{}: not a file, directory or symlink, skipped",
            path.display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_walk_names_items_like_uftp() {
        let dir = std::env::temp_dir().join(format!("uftp-items-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("t/sub/deeper")).unwrap();
        std::fs::create_dir_all(dir.join("t/empty")).unwrap();
        std::fs::write(dir.join("t/sub/deeper/a b.txt"), b"x").unwrap();
        std::fs::write(dir.join("t/zero"), b"").unwrap();
        std::os::unix::fs::symlink("sub/deeper", dir.join("t/link")).unwrap();
        let o = Options::default();
        let (items, warns) = collect(&o, &[dir.join("t")]);
        assert!(warns.is_empty());
        let got: Vec<(String, FileType)> = items
            .iter()
            .map(|i| (String::from_utf8(i.name.clone()).unwrap(), i.ftype))
            .collect();
        assert_eq!(
            got,
            [
                ("t/empty".into(), FileType::Directory),
                ("t/link".into(), FileType::Symlink),
                ("t/sub/deeper/a b.txt".into(), FileType::Regular),
                ("t/zero".into(), FileType::Regular),
            ]
        );
        let o = Options {
            dest_name: Some("renamed".into()),
            ..Options::default()
        };
        assert_eq!(collect(&o, &[dir.join("t/zero")]).0[0].name, b"renamed");
        let o = Options {
            base_dirs: vec![dir.clone()],
            ..Options::default()
        };
        assert_eq!(collect(&o, &[dir.join("t/zero")]).0[0].name, b"t/zero");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
