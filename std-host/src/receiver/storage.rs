//! The receiver's [`Storage`] on real files.
//!
//! A regular file is written to a temporary next to its destination
//! (`.<name>.uftp-<group>-<fileid>.part`), fsynced and renamed into place only when every block
//! is in, so a final name never holds a partial file; the temporary is deleted when the file is
//! discarded (abort, timeout, shutdown). Names are confined to the destination directories:
//! absolute names must fall under one of them, relative ones go under the first, and the
//! resolved (symlink-free) parent must still lie inside the destination.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto_core::session::receiver::{Item, ItemKind, Reject, SessionId, Storage};

struct OpenFile {
    file_id: u16,
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    mtime: u32,
    /// Bytes written since writeback was last started.
    unflushed: u64,
}

/// Written bytes after which the kernel is asked to start writing the file back.
const WRITEBACK_EVERY: u64 = 4 << 20;

/// Starts writeback of a file's dirty pages without waiting for it, so that the `fsync` when the
/// file completes has little left to do: a long `fsync` on the packet path delays COMPLETE past
/// the sender's DONE rounds, and the sender gives the receiver up.
#[allow(unsafe_code)]
fn start_writeback(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for the life of `file`; sync_file_range only reads its
    // arguments, and offset 0 with length 0 means "to the end of the file".
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

#[derive(Default)]
struct SessionFiles {
    map: Vec<u8>,
    open: Option<OpenFile>,
}

/// Files under destination directories.
pub struct FsStorage {
    dests: Vec<PathBuf>,
    sessions: HashMap<SessionId, SessionFiles>,
    /// Log lines the driver prints (the storage knows names; the core's events carry IDs).
    pub notes: Vec<String>,
    names: HashMap<(SessionId, u16), PathBuf>,
    /// Sessions that ended: their names stay until [`FsStorage::forget_ended`], so the events
    /// the core queued while ending them (a timed-out file's abort) can still be logged by name.
    ended: Vec<SessionId>,
}

impl std::fmt::Debug for FsStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsStorage")
            .field("dests", &self.dests)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Free bytes on the file system holding `path`.
#[allow(unsafe_code)]
pub fn free_space(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string and `st` a properly sized, zeroed statvfs
    // that statvfs fills in; both outlive the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

fn io_reject(e: &io::Error) -> Reject {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Reject::NoSpace,
        _ => Reject::Io,
    }
}

impl FsStorage {
    /// Storage under `dests` (the first receives relative names). Each must be an existing,
    /// writable directory; they are canonicalised here.
    pub fn new(dests: &[PathBuf]) -> Result<FsStorage, String> {
        let mut out = Vec::new();
        for d in dests {
            let c = fs::canonicalize(d)
                .map_err(|e| format!("destination directory {}: {e}", d.display()))?;
            if !c.is_dir() {
                return Err(format!("destination {} is not a directory", d.display()));
            }
            let probe = c.join(format!(".uftpd-probe-{}", std::process::id()));
            File::create(&probe).map_err(|e| {
                format!("destination directory {} is not writable: {e}", d.display())
            })?;
            let _ = fs::remove_file(&probe);
            out.push(c);
        }
        Ok(FsStorage {
            dests: out,
            sessions: HashMap::new(),
            notes: Vec::new(),
            names: HashMap::new(),
            ended: Vec::new(),
        })
    }

    /// The destination path recorded for an item, for logs.
    pub fn name_of(&self, session: SessionId, file_id: u16) -> Option<&Path> {
        self.names.get(&(session, file_id)).map(PathBuf::as_path)
    }

    /// Forgets the names of the sessions that have ended; the driver calls it once it has
    /// logged the events they queued.
    pub fn forget_ended(&mut self) {
        if self.ended.is_empty() {
            return;
        }
        let ended = std::mem::take(&mut self.ended);
        self.names.retain(|(s, _), _| !ended.contains(s));
    }

    /// Discards every open file (shutdown).
    pub fn discard_all(&mut self) {
        let keys: Vec<_> = self.sessions.keys().copied().collect();
        for s in keys {
            if let Some(id) = self
                .sessions
                .get(&s)
                .and_then(|f| f.open.as_ref())
                .map(|o| o.file_id)
            {
                self.discard(s, id);
            }
        }
    }

    /// Where `name` goes: (destination root, path relative to it), lexically; `None` if it is
    /// outside every destination.
    fn place(&self, name: &[u8]) -> Option<(PathBuf, PathBuf)> {
        let p = Path::new(OsStr::from_bytes(name));
        let (root, rest) = if p.is_absolute() {
            let normal: PathBuf = p.components().collect();
            let root = self.dests.iter().find(|d| normal.starts_with(d))?;
            (root.clone(), normal.strip_prefix(root).ok()?.to_path_buf())
        } else {
            (self.dests.first()?.clone(), p.to_path_buf())
        };
        let mut rel = PathBuf::new();
        for c in rest.components() {
            match c {
                Component::Normal(n) => rel.push(n),
                Component::CurDir => {}
                _ => return None,
            }
        }
        (!rel.as_os_str().is_empty()).then_some((root, rel))
    }

    /// Resolves `name` to its final path, creating missing parent directories, and checks that
    /// the real parent lies inside the destination root.
    fn resolve(&mut self, name: &[u8]) -> Result<PathBuf, Reject> {
        let Some((root, rel)) = self.place(name) else {
            self.notes.push(format!(
                "rejecting {:?}: outside the destination directories",
                String::from_utf8_lossy(name)
            ));
            return Err(Reject::BadName);
        };
        let file_name = rel.file_name().ok_or(Reject::BadName)?.to_owned();
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        // Check what already exists before creating anything beneath it.
        let mut existing = parent.as_path();
        while !existing.exists() {
            existing = existing.parent().ok_or(Reject::BadName)?;
        }
        let inside = |p: &Path| fs::canonicalize(p).is_ok_and(|c| c.starts_with(&root));
        if !inside(existing) {
            self.notes.push(format!(
                "rejecting {:?}: a parent leads outside {}",
                String::from_utf8_lossy(name),
                root.display()
            ));
            return Err(Reject::BadName);
        }
        if let Err(e) = fs::create_dir_all(&parent) {
            self.notes
                .push(format!("cannot create {}: {e}", parent.display()));
            return Err(if e.kind() == io::ErrorKind::AlreadyExists {
                Reject::Exists
            } else {
                io_reject(&e)
            });
        }
        let real_parent = fs::canonicalize(&parent).map_err(|e| io_reject(&e))?;
        if !real_parent.starts_with(&root) {
            self.notes.push(format!(
                "rejecting {:?}: a parent leads outside {}",
                String::from_utf8_lossy(name),
                root.display()
            ));
            return Err(Reject::BadName);
        }
        Ok(real_parent.join(file_name))
    }

    fn remove_existing_nondir(&mut self, path: &Path) -> Result<(), Reject> {
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                self.notes.push(format!(
                    "rejecting {}: a directory is in the way",
                    path.display()
                ));
                Err(Reject::Exists)
            }
            Ok(_) => fs::remove_file(path).map_err(|e| io_reject(&e)),
            Err(_) => Ok(()),
        }
    }
}

impl Storage for FsStorage {
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
        let path = self.resolve(item.name)?;
        self.names
            .insert((item.session, item.file_id), path.clone());
        match item.kind {
            ItemKind::Regular => {
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    self.notes.push(format!(
                        "rejecting {}: a directory is in the way",
                        path.display()
                    ));
                    return Err(Reject::Exists);
                }
                let parent = path.parent().ok_or(Reject::BadName)?;
                if free_space(parent).is_some_and(|free| free < item.size) {
                    self.notes.push(format!(
                        "rejecting {}: {} bytes needed, not enough free space",
                        path.display(),
                        item.size
                    ));
                    return Err(Reject::NoSpace);
                }
                let base = path.file_name().ok_or(Reject::BadName)?;
                let mut tname = std::ffi::OsString::from(".");
                tname.push(base);
                tname.push(format!(
                    ".uftp-{:08x}-{:04x}.part",
                    item.session.group_id, item.file_id
                ));
                let temp = parent.join(tname);
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&temp)
                    .map_err(|e| {
                        self.notes
                            .push(format!("cannot create {}: {e}", temp.display()));
                        io_reject(&e)
                    })?;
                if let Err(e) = file.set_len(item.size) {
                    let _ = fs::remove_file(&temp);
                    return Err(io_reject(&e));
                }
                let s = self.sessions.entry(item.session).or_default();
                if let Some(old) = s.open.take() {
                    let _ = fs::remove_file(&old.temp);
                }
                s.map.clear();
                s.map.resize(item.layout.bitmap_len(), 0);
                s.open = Some(OpenFile {
                    file_id: item.file_id,
                    file,
                    temp,
                    dest: path,
                    mtime: item.mtime,
                    unflushed: 0,
                });
                Ok(())
            }
            ItemKind::Directory => match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => {
                    self.notes.push(format!(
                        "rejecting {}: a file is in the way",
                        path.display()
                    ));
                    Err(Reject::Exists)
                }
                Err(_) => fs::create_dir(&path).map_err(|e| io_reject(&e)),
            },
            ItemKind::Symlink { target } => {
                self.remove_existing_nondir(&path)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                    .map_err(|e| io_reject(&e))
            }
            ItemKind::Delete => {
                let r = match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                    Ok(_) => fs::remove_file(&path),
                    Err(_) => Ok(()),
                };
                r.map_err(|e| io_reject(&e))
            }
        }
    }

    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        self.sessions
            .get_mut(&session)
            .map(|s| s.map.as_mut_slice())
    }

    fn write(
        &mut self,
        session: SessionId,
        file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject> {
        let o = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.open.as_mut())
            .filter(|o| o.file_id == file_id)
            .ok_or(Reject::Io)?;
        if let Err(e) = o.file.write_all_at(data, offset) {
            self.notes
                .push(format!("error writing {}: {e}", o.temp.display()));
            return Err(io_reject(&e));
        }
        o.unflushed += data.len() as u64;
        if o.unflushed >= WRITEBACK_EVERY {
            o.unflushed = 0;
            start_writeback(&o.file);
        }
        Ok(())
    }

    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject> {
        let o = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.open.take_if(|o| o.file_id == file_id))
            .ok_or(Reject::Io)?;
        let result = (|| -> io::Result<()> {
            o.file.sync_all()?;
            let _ = o
                .file
                .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(o.mtime.into()));
            if fs::symlink_metadata(&o.dest).is_ok_and(|m| m.is_dir()) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a directory is in the way",
                ));
            }
            fs::rename(&o.temp, &o.dest)?;
            if let Some(p) = o.dest.parent() {
                File::open(p)?.sync_all()?;
            }
            Ok(())
        })();
        result.map_err(|e| {
            self.notes
                .push(format!("cannot finish {}: {e}", o.dest.display()));
            let _ = fs::remove_file(&o.temp);
            io_reject(&e)
        })
    }

    fn discard(&mut self, session: SessionId, file_id: u16) {
        if let Some(o) = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.open.take_if(|o| o.file_id == file_id))
        {
            drop(o.file);
            let _ = fs::remove_file(&o.temp);
        }
    }

    fn free_space(&mut self, _session: SessionId) -> Option<u64> {
        free_space(self.dests.first()?)
    }

    fn session_ended(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            if let Some(o) = s.open {
                let _ = fs::remove_file(&o.temp);
            }
        }
        self.ended.push(session);
    }
}

impl Drop for FsStorage {
    fn drop(&mut self) {
        self.discard_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto_core::session::FileLayout;

    fn item<'a>(name: &'a [u8], kind: ItemKind<'a>, size: u64) -> Item<'a> {
        Item {
            session: SessionId {
                group_id: 0xabcd,
                group_inst: 0,
            },
            file_id: 1,
            name,
            kind,
            size,
            mtime: 1_600_000_000,
            layout: FileLayout::new(size, 1300).unwrap(),
        }
    }

    #[test]
    fn confines_names_and_never_shows_partial_files() {
        let base = std::env::temp_dir().join(format!("uftpd-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let dest = base.join("dest");
        let outside = base.join("outside");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("escape")).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&dest)).unwrap();
        let abs_out = format!("{}/x", outside.display());
        for bad in [
            b"escape/x".as_slice(),
            b"escape/sub/x",
            abs_out.as_bytes(),
            b"/etc/passwd",
        ] {
            assert_eq!(
                st.open(&item(bad, ItemKind::Regular, 10)),
                Err(Reject::BadName),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        // An absolute name inside the destination is fine.
        let abs_in = format!("{}/a dir/file name", dest.display());
        let it = item(abs_in.as_bytes(), ItemKind::Regular, 5);
        st.open(&it).unwrap();
        st.write(it.session, 1, 0, b"hello").unwrap();
        let final_path = dest.join("a dir/file name");
        assert!(
            !final_path.exists(),
            "nothing under the final name before finish"
        );
        st.finish(it.session, 1).unwrap();
        assert_eq!(fs::read(&final_path).unwrap(), b"hello");
        // Discarded: neither final nor temporary remains.
        st.open(&item(b"gone", ItemKind::Regular, 5)).unwrap();
        st.discard(it.session, 1);
        let left: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_ended_sessions_names_outlive_its_events() {
        let base = std::env::temp_dir().join(format!("uftpd-names-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&base)).unwrap();
        let it = item(b"big.bin", ItemKind::Regular, 5);
        st.open(&it).unwrap();
        // A timeout: the core discards the file and ends the session, then the driver logs the
        // abort it queued, by name.
        st.discard(it.session, 1);
        st.session_ended(it.session);
        assert_eq!(
            st.name_of(it.session, 1),
            Some(base.join("big.bin").as_path())
        );
        st.forget_ended();
        assert_eq!(st.name_of(it.session, 1), None);
        assert_eq!(fs::read_dir(&base).unwrap().count(), 0, "temporary left");
        fs::remove_dir_all(&base).unwrap();
    }
}
