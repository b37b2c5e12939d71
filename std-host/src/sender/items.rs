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
        if let Some(item) = metafile(o, p, &mut warnings) {
            items.extend(item);
            continue;
        }
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

/// uftp's metafiles: `@DELETE:path` asks the receivers to delete the item `path` would be
/// sent as (named as uftp 4.10.2 names it: its last component, or its path below a `-E` base
/// directory), and `@FREESPACE` to report the free space of their first destination. `None`
/// when `p` is an ordinary path; `Some(None)` for a metafile that cannot be sent (warned).
fn metafile(o: &Options, p: &Path, warnings: &mut Vec<String>) -> Option<Option<Item>> {
    let s = p.as_os_str().as_bytes();
    let item = |ftype, name: &[u8]| Item {
        path: p.to_path_buf(),
        name: name.to_vec(),
        ftype,
        size: 0,
        mtime: 0,
        link: Vec::new(),
    };
    if s == b"@FREESPACE" {
        return Some(Some(item(FileType::FreeSpace, b".")));
    }
    let target = s.strip_prefix(b"@DELETE:")?;
    let bad = target.is_empty()
        || target.contains(&0)
        || target.split(|&b| b == b'/').any(|c| c == b"..");
    let name = (!bad)
        .then(|| top_name(o, Path::new(std::ffi::OsStr::from_bytes(target))))
        .flatten();
    let Some(name) = name else {
        warnings.push(format!(
            "{}: a name to delete must be non-empty, hold no '..' and lie under a -E base \
             directory if any is given; skipped",
            p.display()
        ));
        return Some(None);
    };
    Some(Some(item(FileType::Delete, &name)))
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
    fn metafiles_become_delete_and_freespace_items() {
        let o = Options::default();
        let paths = [
            "@FREESPACE",
            "@DELETE:old/x.txt",
            "@DELETE:/abs/y",
            "@DELETE:a/../b",
            "@DELETE:",
        ];
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let (items, warns) = collect(&o, &paths);
        let got: Vec<(&[u8], FileType)> =
            items.iter().map(|i| (i.name.as_slice(), i.ftype)).collect();
        assert_eq!(
            got,
            [
                (b"." as &[u8], FileType::FreeSpace),
                (b"x.txt", FileType::Delete),
                (b"y", FileType::Delete),
            ]
        );
        assert_eq!(warns.len(), 2, "{warns:?}");
        assert!(
            warns[0].contains("@DELETE:a/../b") && warns[0].contains(".."),
            "{warns:?}"
        );
        // Below a -E base directory: the path under it, as for files.
        let o = Options {
            base_dirs: vec![PathBuf::from("/srv/out")],
            ..Options::default()
        };
        let paths = ["@DELETE:/srv/out/a/b.txt", "@DELETE:/elsewhere/c"];
        let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        let (items, warns) = collect(&o, &paths);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].name, b"a/b.txt");
        assert!(warns[0].contains("@DELETE:/elsewhere/c"), "{warns:?}");
    }

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
