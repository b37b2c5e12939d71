//! The receiver's [`Storage`] on real files.
//!
//! A regular file is written to a temporary next to its destination
//! (`.<name>.uftp-<group>-<fileid>.part`), fsynced and renamed into place only when every block
//! is in, so a final name never holds a partial file; the temporary is deleted when the file is
//! discarded (abort, timeout, shutdown). Names are confined to the destination directories:
//! absolute names must fall under one of them, relative ones go under the first, and the
//! resolved (symlink-free) parent must still lie inside the destination.
//!
//! # With a temp directory (`uftpd -T`): restarts
//! Everything a session receives goes under `<tempdir>/_group_<GROUP ID, 8 hex digits>/`
//! (absolute names are refused), and is moved into the destination when the session
//! completes. A regular file is received as `.<name>.uftp-part` in its directory there, with a
//! sidecar `.<name>.uftp-part.state` saying which blocks it holds; once complete it takes its
//! name in the group directory. When the session fails (aborted, timed out, or this process
//! stopped or killed), the group directory stays: a restart of the session (same group ID,
//! higher instance, uftp's `-F`) picks the file up where it stopped and asks only for the
//! blocks it lacks, and answers COMPLETE for the files finished earlier.
//!
//! The sidecar is JSON, replaced atomically (temporary, fsync, rename) at most every
//! [`SIDECAR_EVERY`] while the file is received and when it is put aside:
//!
//! ```json
//! {"format": "uftp-rs partial file", "version": 1, "name": "dir/big.img", "size": 209715200,
//!  "mtime": 1700000000, "blocksize": 1300, "blocks": 161320, "map": "ffff…"}
//! ```
//!
//! `map` is the block bitmap in hex, bit `b` (least significant bit first in each byte) set
//! when block `b` is stored. The file's data is fsynced *before* the bitmap is taken and
//! written, so the sidecar never claims a block that is not on disk: after a crash it may miss
//! the last second's blocks (they are asked for again), never claim one too many. A sidecar
//! that does not match the new FILEINFO's name, size, modification time and block size is
//! ignored, and the file received afresh.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use proto_core::session::receiver::{Existing, Item, ItemKind, Reject, SessionId, Storage};
use serde::{Deserialize, Serialize};

struct OpenFile {
    file_id: u16,
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    mtime: u32,
    /// Bytes written since writeback was last started.
    unflushed: u64,
    /// With `-T`: the sidecar recording which blocks `temp` holds, and what it describes.
    sidecar: Option<Sidecar>,
    /// With `-T` in a restart: the file was finished in an earlier instance (`temp` is `dest`).
    finished_before: bool,
    /// Blocks received in order and not written yet (see [`COMBINE`]), and their offset.
    pending: Vec<u8>,
    pending_at: u64,
}

/// Consecutive blocks are gathered up to this many bytes and written with one call: a system
/// call per block costs more than the block's decoding. What is gathered is written before
/// anything that relies on it (the `-T` sidecar's fsync, the final fsync), so a crash loses
/// only blocks no record claims.
const COMBINE: usize = 256 << 10;

impl OpenFile {
    fn new(file_id: u16, file: File, temp: PathBuf, dest: PathBuf, mtime: u32) -> OpenFile {
        OpenFile {
            file_id,
            file,
            temp,
            dest,
            mtime,
            unflushed: 0,
            sidecar: None,
            finished_before: false,
            pending: Vec::new(),
            pending_at: 0,
        }
    }

    /// Writes what is gathered.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all_at(&self.pending, self.pending_at);
        self.unflushed += self.pending.len() as u64;
        self.pending.clear();
        if self.unflushed >= WRITEBACK_EVERY {
            self.unflushed = 0;
            start_writeback(&self.file);
        }
        r
    }

    /// Gathers `data` for `offset`, writing what was gathered first when it does not continue it.
    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let continues = self.pending_at + self.pending.len() as u64 == offset;
        if !continues || self.pending.len() + data.len() > COMBINE {
            self.flush()?;
            self.pending_at = offset;
        }
        if self.pending.capacity() == 0 {
            self.pending.reserve_exact(COMBINE);
        }
        self.pending.extend_from_slice(data);
        if self.pending.len() >= COMBINE {
            self.flush()?;
        }
        Ok(())
    }
}

/// How often, at most, the sidecar of a file being received is rewritten.
pub const SIDECAR_EVERY: Duration = Duration::from_secs(1);

/// The `format` of a sidecar.
const SIDECAR_FORMAT: &str = "uftp-rs partial file";

/// A partial file's sidecar (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SidecarJson {
    format: String,
    version: u32,
    name: String,
    size: u64,
    mtime: u32,
    blocksize: u16,
    blocks: u32,
    map: String,
}

struct Sidecar {
    path: PathBuf,
    name: String,
    size: u64,
    mtime: u32,
    blocksize: u16,
    blocks: u32,
    written: std::time::Instant,
}

impl Sidecar {
    fn new(temp: &Path, item: &Item<'_>) -> Sidecar {
        let mut name = temp.as_os_str().to_owned();
        name.push(".state");
        Sidecar {
            path: PathBuf::from(name),
            name: String::from_utf8_lossy(item.name).into_owned(),
            size: item.size,
            mtime: item.mtime,
            blocksize: item.layout.blocksize,
            blocks: item.layout.blocks,
            written: std::time::Instant::now(),
        }
    }

    /// The block map this sidecar holds, if it describes the same file as `self` does.
    fn read_map(&self) -> Option<Vec<u8>> {
        let text = fs::read_to_string(&self.path).ok()?;
        let j: SidecarJson = serde_json::from_str(&text).ok()?;
        let same = j.format == SIDECAR_FORMAT
            && j.version == 1
            && j.name == self.name
            && j.size == self.size
            && j.mtime == self.mtime
            && j.blocksize == self.blocksize
            && j.blocks == self.blocks;
        if !same || !j.map.len().is_multiple_of(2) {
            return None;
        }
        (0..j.map.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(j.map.get(i..i + 2)?, 16).ok())
            .collect()
    }

    /// Records `map` for `file`: the file's data is made durable first, then the sidecar is
    /// replaced atomically.
    fn write(&mut self, file: &File, map: &[u8]) -> io::Result<()> {
        file.sync_data()?;
        let j = SidecarJson {
            format: SIDECAR_FORMAT.into(),
            version: 1,
            name: self.name.clone(),
            size: self.size,
            mtime: self.mtime,
            blocksize: self.blocksize,
            blocks: self.blocks,
            map: map.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = File::create(&tmp)?;
        io::Write::write_all(
            &mut f,
            serde_json::to_string(&j).unwrap_or_default().as_bytes(),
        )?;
        f.sync_data()?;
        fs::rename(&tmp, &self.path)?;
        self.written = std::time::Instant::now();
        Ok(())
    }

    fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
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
    /// The open file was resumed from an earlier instance of the session (`-T`).
    resumed: bool,
}

/// Files under destination directories.
pub struct FsStorage {
    dests: Vec<PathBuf>,
    /// `-A`: a backup directory per destination (empty: none).
    backups: Vec<PathBuf>,
    /// `-i` with `-T`: each file moves into the destination once complete.
    move_each_file: bool,
    /// `-T`: where sessions receive, and keep what a failed one received.
    temp: Option<PathBuf>,
    /// Sessions that did not complete (their group directory stays, `-T`).
    failed: HashSet<SessionId>,
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
            backups: Vec::new(),
            move_each_file: false,
            temp: None,
            failed: HashSet::new(),
            sessions: HashMap::new(),
            notes: Vec::new(),
            names: HashMap::new(),
            ended: Vec::new(),
        })
    }

    /// Storage that receives under `temp` (`uftpd -T`), which must be an existing, writable
    /// directory on the file system of the destination (there must be exactly one), into
    /// which files are moved at the end of each session.
    pub fn with_temp_dir(dests: &[PathBuf], temp: &Path) -> Result<FsStorage, String> {
        use std::os::unix::fs::MetadataExt;
        if dests.len() != 1 {
            return Err("a temp directory (-T) needs exactly one destination directory".into());
        }
        let mut st = FsStorage::new(dests)?;
        let t = fs::canonicalize(temp)
            .map_err(|e| format!("temp directory {}: {e}", temp.display()))?;
        let probe = t.join(format!(".uftpd-probe-{}", std::process::id()));
        File::create(&probe)
            .map_err(|e| format!("temp directory {} is not writable: {e}", temp.display()))?;
        let _ = fs::remove_file(&probe);
        let dev = |p: &Path| fs::metadata(p).map(|m| m.dev()).ok();
        if dev(&t) != dev(&st.dests[0]) {
            return Err(format!(
                "temp directory {} is not on the file system of the destination {}: files \
                 are moved from one to the other",
                temp.display(),
                st.dests[0].display()
            ));
        }
        if st.dests[0].starts_with(&t) || t.starts_with(&st.dests[0]) {
            return Err(format!(
                "temp directory {} and destination {} must not contain one another",
                temp.display(),
                st.dests[0].display()
            ));
        }
        st.temp = Some(t);
        Ok(st)
    }

    /// `-A`: before a received file replaces one, the old one moves to the backup directory
    /// of its destination (one per destination, in order; each must exist), under
    /// `YYYYMMDD/HHMMSS/` and its full path.
    pub fn with_backup_dirs(mut self, dirs: &[PathBuf]) -> Result<FsStorage, String> {
        if dirs.is_empty() {
            return Ok(self);
        }
        if dirs.len() != self.dests.len() {
            return Err("-A needs one backup directory per destination directory".into());
        }
        for d in dirs {
            let c = fs::canonicalize(d)
                .map_err(|e| format!("backup directory {}: {e}", d.display()))?;
            if !c.is_dir() {
                return Err(format!("backup {} is not a directory", d.display()));
            }
            self.backups.push(c);
        }
        Ok(self)
    }

    /// `-A`: moves the file at `path` (about to be replaced) to its destination's backup
    /// directory. Nothing there, or no `-A`: nothing to do.
    fn back_up(&mut self, path: &Path) -> io::Result<()> {
        let Some(i) = self.dests.iter().position(|d| path.starts_with(d)) else {
            return Ok(());
        };
        let Some(backup) = self.backups.get(i) else {
            return Ok(());
        };
        match fs::symlink_metadata(path) {
            Ok(m) if !m.is_dir() => {}
            _ => return Ok(()),
        }
        // "yyyy/mm/dd-hh:mm:ss" → YYYYMMDD/HHMMSS
        let t: String = crate::status_file::timestamp()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let full = path.strip_prefix("/").unwrap_or(path);
        let to = backup.join(&t[..8]).join(&t[8..]).join(full);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::rename(path, &to)?;
        self.notes
            .push(format!("backed up {} to {}", path.display(), to.display()));
        Ok(())
    }

    /// `-i`: with a temp directory, move each file into the destination as soon as it is
    /// complete, not when the session completes (no effect without `-T`).
    pub fn move_each_file(&mut self, on: bool) {
        self.move_each_file = on;
    }

    /// Whether files move into the destination one by one as they complete (`-T` and `-i`).
    pub fn moves_each_file(&self) -> bool {
        self.move_each_file && self.temp.is_some()
    }

    /// Whether discarded files are kept for a restart (`-T`).
    pub fn keeps_partial_files(&self) -> bool {
        self.temp.is_some()
    }

    /// Blocks the session's open file holds from an earlier instance, if it was resumed.
    pub fn resumed_blocks(&self, session: SessionId) -> Option<usize> {
        let s = self.sessions.get(&session).filter(|s| s.resumed)?;
        let o = s.open.as_ref()?;
        let blocks = o
            .sidecar
            .as_ref()
            .map_or(s.map.len() * 8, |sc| sc.blocks as usize);
        Some(proto_core::session::nak::count(&s.map, blocks))
    }

    /// A session's directory under the temp directory (`-T`).
    fn group_dir(&self, session: SessionId) -> Option<PathBuf> {
        let t = self.temp.as_ref()?;
        Some(t.join(format!("_group_{:08X}", session.group_id)))
    }

    /// The destination path recorded for an item, for logs.
    pub fn name_of(&self, session: SessionId, file_id: u16) -> Option<&Path> {
        self.names.get(&(session, file_id)).map(PathBuf::as_path)
    }

    /// The destination paths recorded for a session's items, in file ID order.
    pub fn names_in(&self, session: SessionId) -> Vec<&Path> {
        let mut v: Vec<(u16, &Path)> = self
            .names
            .iter()
            .filter(|((s, _), _)| *s == session)
            .map(|((_, id), p)| (*id, p.as_path()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter().map(|(_, p)| p).collect()
    }

    /// Where an item recorded at `path` ends up: with `-T`, its place in the destination once
    /// the session completes; otherwise `path` itself.
    pub fn final_path(&self, session: SessionId, path: &Path) -> PathBuf {
        match (self.group_dir(session), self.dests.first()) {
            (Some(g), Some(d)) => match path.strip_prefix(&g) {
                Ok(rel) => d.join(rel),
                Err(_) => path.to_path_buf(),
            },
            _ => path.to_path_buf(),
        }
    }

    /// The destination directories, as resolved (canonical).
    pub fn dest_dirs(&self) -> &[PathBuf] {
        &self.dests
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
    fn place(&self, name: &[u8], session: Option<SessionId>) -> Option<(PathBuf, PathBuf)> {
        let p = Path::new(OsStr::from_bytes(name));
        let (root, rest) = if let Some(g) = session.and_then(|s| self.group_dir(s)) {
            // -T: relative names only, as uftpd.
            if p.is_absolute() {
                return None;
            }
            (g, p.to_path_buf())
        } else if p.is_absolute() {
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
    /// With `session` and `-T`, the root is the session's group directory under the temp
    /// directory.
    fn resolve(&mut self, name: &[u8], session: Option<SessionId>) -> Result<PathBuf, Reject> {
        if let Some(g) = session.and_then(|s| self.group_dir(s)) {
            if let Err(e) = fs::create_dir_all(&g) {
                self.notes
                    .push(format!("cannot create {}: {e}", g.display()));
                return Err(io_reject(&e));
            }
        }
        let Some((root, rel)) = self.place(name, session) else {
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

    /// Where `name` is in the destination, without creating anything: `Ok(None)` when its
    /// parent directory does not exist; `Err` (noted) when it falls outside the destination
    /// directories or a parent leads outside (a symlink).
    fn in_destination(&mut self, name: &[u8]) -> Result<Option<PathBuf>, Reject> {
        let shown = String::from_utf8_lossy(name).into_owned();
        let Some((root, rel)) = self.place(name, None) else {
            self.notes.push(format!(
                "rejecting {shown:?}: outside the destination directories"
            ));
            return Err(Reject::BadName);
        };
        let file_name = rel.file_name().ok_or(Reject::BadName)?.to_owned();
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        let real_parent = match fs::canonicalize(&parent) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_reject(&e)),
        };
        if !real_parent.starts_with(&root) {
            self.notes.push(format!(
                "rejecting {shown:?}: a parent leads outside {}",
                root.display()
            ));
            return Err(Reject::BadName);
        }
        Ok(Some(real_parent.join(file_name)))
    }

    /// Refuses a file (noted) when the file system of `dir` has less than `need` bytes free
    /// (as statvfs counts them for unprivileged users).
    fn check_space(&mut self, dir: &Path, need: u64, path: &Path) -> Result<(), Reject> {
        match free_space(dir) {
            Some(free) if free < need => {
                self.notes.push(format!(
                    "rejecting {}: not enough disk space ({need} bytes needed, {free} free)",
                    path.display()
                ));
                Err(Reject::NoSpace)
            }
            _ => Ok(()),
        }
    }

    /// `@DELETE`: removes `path` (a directory with what it holds; a symlink itself, never
    /// what it points at). Nothing there is not an error.
    fn delete(&mut self, path: Option<PathBuf>) -> Result<(), Reject> {
        let Some(path) = path else {
            return Ok(());
        };
        let r = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(_) => {
                self.notes
                    .push(format!("nothing to delete at {}", path.display()));
                return Ok(());
            }
        };
        match r {
            Ok(()) => {
                self.notes.push(format!("deleted {}", path.display()));
                Ok(())
            }
            Err(e) => {
                self.notes
                    .push(format!("cannot delete {}: {e}", path.display()));
                Err(io_reject(&e))
            }
        }
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
        if item.kind == ItemKind::Delete {
            // In the destination itself (with -T too), and nothing is created.
            let path = self.in_destination(item.name)?;
            if let Some(p) = &path {
                self.names.insert((item.session, item.file_id), p.clone());
            }
            return self.delete(path);
        }
        // With -T everything happens in the session's group directory.
        let path = self.resolve(item.name, Some(item.session))?;
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
                let parent = path.parent().ok_or(Reject::BadName)?.to_path_buf();
                let base = path.file_name().ok_or(Reject::BadName)?;
                let mut tname = std::ffi::OsString::from(".");
                tname.push(base);
                if self.temp.is_some() {
                    tname.push(".uftp-part");
                } else {
                    tname.push(format!(
                        ".uftp-{:08x}-{:04x}.part",
                        item.session.group_id, item.file_id
                    ));
                }
                let temp = parent.join(tname);
                let mut sidecar = self.temp.is_some().then(|| Sidecar::new(&temp, item));
                let s = self.sessions.entry(item.session).or_default();
                if let Some(old) = s.open.take() {
                    if old.sidecar.is_none() {
                        let _ = fs::remove_file(&old.temp);
                    }
                }
                s.map.clear();
                s.map.resize(item.layout.bitmap_len(), 0);
                s.resumed = false;
                if let Some(sc) = sidecar.as_ref().filter(|_| item.session.group_inst > 0) {
                    // A restart: the file finished in an earlier instance, or its partial.
                    let finished = fs::symlink_metadata(&path).is_ok_and(|m| {
                        m.is_file()
                            && m.len() == item.size
                            && m.modified().ok()
                                == Some(
                                    SystemTime::UNIX_EPOCH + Duration::from_secs(item.mtime.into()),
                                )
                    });
                    if finished {
                        if let Ok(file) = File::open(&path) {
                            s.map.fill(0xff);
                            s.resumed = true;
                            s.open = Some(OpenFile {
                                sidecar: None,
                                finished_before: true,
                                ..OpenFile::new(item.file_id, file, path.clone(), path, item.mtime)
                            });
                            return Ok(());
                        }
                    }
                    let part_ok =
                        fs::metadata(&temp).is_ok_and(|m| m.is_file() && m.len() == item.size);
                    if let Some(map) = sc.read_map().filter(|m| part_ok && m.len() == s.map.len()) {
                        // Only the blocks it lacks still need room.
                        let held =
                            proto_core::session::nak::count(&map, item.layout.blocks as usize);
                        let held = (held as u64 * u64::from(item.layout.blocksize)).min(item.size);
                        self.check_space(&parent, item.size - held, &path)?;
                        let s = self.sessions.entry(item.session).or_default();
                        if let Ok(file) = OpenOptions::new().write(true).open(&temp) {
                            s.map = map;
                            s.resumed = true;
                            s.open = Some(OpenFile {
                                sidecar,
                                finished_before: false,
                                ..OpenFile::new(item.file_id, file, temp, path, item.mtime)
                            });
                            return Ok(());
                        }
                    }
                }
                self.check_space(&parent, item.size, &path)?;
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
                if let Some(sc) = sidecar.as_mut() {
                    // A fresh sidecar, so that a stale one never describes the new data.
                    let map = &self
                        .sessions
                        .get(&item.session)
                        .map(|s| s.map.clone())
                        .unwrap_or_default();
                    if let Err(e) = sc.write(&file, map) {
                        let _ = fs::remove_file(&temp);
                        self.notes
                            .push(format!("cannot write {}: {e}", sc.path.display()));
                        return Err(io_reject(&e));
                    }
                }
                let s = self.sessions.entry(item.session).or_default();
                s.open = Some(OpenFile {
                    sidecar,
                    finished_before: false,
                    ..OpenFile::new(item.file_id, file, temp, path, item.mtime)
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
                if fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    if let Err(e) = self.back_up(&path) {
                        self.notes.push(format!(
                            "rejecting {}: cannot back up the old one (-A): {e}",
                            path.display()
                        ));
                        return Err(io_reject(&e));
                    }
                }
                self.remove_existing_nondir(&path)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &path)
                    .map_err(|e| io_reject(&e))
            }
            // Taken above, before anything is resolved or created.
            ItemKind::Delete => Err(Reject::Unsupported),
        }
    }

    fn existing(&mut self, item: &Item<'_>) -> Option<Existing> {
        use std::os::unix::fs::MetadataExt;
        // The item's final place in the destination (with -T too: that is what a completed
        // session would replace). Nothing is created here.
        let path = self.in_destination(item.name).ok()??;
        self.names
            .insert((item.session, item.file_id), path.clone());
        let m = fs::symlink_metadata(&path).ok().filter(|m| m.is_file())?;
        Some(Existing {
            size: m.len(),
            mtime: m.mtime(),
        })
    }

    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        self.sessions
            .get_mut(&session)
            .map(|s| s.map.as_mut_slice())
    }

    fn resumed(&mut self, item: &Item<'_>) -> bool {
        self.sessions.get(&item.session).is_some_and(|s| s.resumed)
    }

    fn session_failed(&mut self, session: SessionId) {
        if self.temp.is_some() {
            self.failed.insert(session);
        }
    }

    fn write(
        &mut self,
        session: SessionId,
        file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject> {
        let s = self.sessions.get_mut(&session).ok_or(Reject::Io)?;
        let o = s
            .open
            .as_mut()
            .filter(|o| o.file_id == file_id && !o.finished_before)
            .ok_or(Reject::Io)?;
        if let Err(e) = o.write(offset, data) {
            self.notes
                .push(format!("error writing {}: {e}", o.temp.display()));
            return Err(io_reject(&e));
        }
        if o.sidecar
            .as_ref()
            .is_some_and(|sc| sc.written.elapsed() >= SIDECAR_EVERY)
        {
            // The map does not mark this block yet (the core sets its bit once we return), and
            // every block it marks is written now, before the fsync in `Sidecar::write`.
            let flushed = o.flush();
            if let (Some(sc), Ok(())) = (o.sidecar.as_mut(), flushed) {
                if let Err(e) = sc.write(&o.file, &s.map) {
                    self.notes
                        .push(format!("cannot write {}: {e}", sc.path.display()));
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject> {
        let mut o = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.open.take_if(|o| o.file_id == file_id))
            .ok_or(Reject::Io)?;
        if o.finished_before {
            return Ok(());
        }
        let result = (|| -> io::Result<()> {
            o.flush()?;
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
            if let Err(e) = self.back_up(&o.dest) {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot back it up (-A): {e}; the old file is kept"),
                ));
            }
            fs::rename(&o.temp, &o.dest)?;
            if let Some(sc) = &o.sidecar {
                sc.remove();
            }
            if let Some(p) = o.dest.parent() {
                File::open(p)?.sync_all()?;
            }
            Ok(())
        })();
        if result.is_ok() && self.moves_each_file() {
            // -i: into the destination now; if that fails, it moves with the rest at the end.
            let to = self.final_path(session, &o.dest);
            let moved = (|| -> io::Result<()> {
                if fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                    return Err(io::Error::other("a directory is in the way"));
                }
                if let Some(p) = to.parent() {
                    fs::create_dir_all(p)?;
                }
                fs::rename(&o.dest, &to)?;
                if let Some(p) = to.parent() {
                    File::open(p)?.sync_all()?;
                }
                Ok(())
            })();
            if let Err(e) = moved {
                self.notes.push(format!(
                    "cannot move {} to {} yet: {e}",
                    o.dest.display(),
                    to.display()
                ));
            }
        }
        result.map_err(|e| {
            self.notes
                .push(format!("cannot finish {}: {e}", o.dest.display()));
            let _ = fs::remove_file(&o.temp);
            if let Some(sc) = &o.sidecar {
                sc.remove();
            }
            io_reject(&e)
        })
    }

    fn discard(&mut self, session: SessionId, file_id: u16) {
        let Some(s) = self.sessions.get_mut(&session) else {
            return;
        };
        let Some(mut o) = s.open.take_if(|o| o.file_id == file_id) else {
            return;
        };
        if o.finished_before {
            return;
        }
        let flushed = o.flush();
        match o.sidecar.as_mut() {
            // -T: kept, with what it holds recorded, for a restart of the session (a map that
            // would claim blocks the write just failed to store is not recorded).
            Some(sc) => match flushed {
                Ok(()) => {
                    if let Err(e) = sc.write(&o.file, &s.map) {
                        self.notes
                            .push(format!("cannot write {}: {e}", sc.path.display()));
                    }
                }
                // Its last sidecar still says what it surely holds.
                Err(e) => self
                    .notes
                    .push(format!("error writing {}: {e}", o.temp.display())),
            },
            None => {
                drop(o.file);
                let _ = fs::remove_file(&o.temp);
            }
        }
    }

    fn free_space(&mut self, _session: SessionId) -> Option<u64> {
        free_space(self.dests.first()?)
    }

    fn session_ended(&mut self, session: SessionId) {
        if let Some(s) = self.sessions.remove(&session) {
            if let Some(o) = s.open.filter(|o| o.sidecar.is_none() && !o.finished_before) {
                let _ = fs::remove_file(&o.temp);
            }
        }
        if let (Some(group), Some(dest)) = (self.group_dir(session), self.dests.first()) {
            if !self.failed.remove(&session) && group.is_dir() {
                let dest = dest.clone();
                move_tree(&group, &dest, &mut self.notes);
                // What stays (partial files of a failed item, something in the way) keeps the
                // group directory for a restart.
                let _ = fs::remove_dir(&group);
            }
        }
        self.ended.push(session);
    }
}

/// Whether `name` is a partial file or its sidecar (`-T`), which stay in the temp directory.
fn is_partial(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".")
        && (b.ends_with(b".uftp-part")
            || b.ends_with(b".uftp-part.state")
            || b.ends_with(b".uftp-part.state.tmp"))
}

/// Moves what `from` holds into `to` (`-T`, at the end of a completed session): files and
/// symlinks replace what has their name (a directory in the way is left alone and noted),
/// directories are merged; partial files stay. Emptied directories under `from` are removed.
fn move_tree(from: &Path, to: &Path, notes: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(from) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let (src, dst) = (e.path(), to.join(&name));
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            match fs::symlink_metadata(&dst) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    notes.push(format!(
                        "cannot move {}: a file is in the way",
                        src.display()
                    ));
                    continue;
                }
                Err(_) => {
                    if let Err(err) = fs::create_dir(&dst) {
                        notes.push(format!("cannot create {}: {err}", dst.display()));
                        continue;
                    }
                }
            }
            move_tree(&src, &dst, notes);
            let _ = fs::remove_dir(&src);
        } else if !is_partial(&name) {
            if fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir()) {
                notes.push(format!(
                    "cannot move {}: a directory is in the way",
                    src.display()
                ));
                continue;
            }
            if let Err(err) = fs::rename(&src, &dst) {
                notes.push(format!(
                    "cannot move {} to {}: {err}",
                    src.display(),
                    dst.display()
                ));
            }
        }
    }
    if let Ok(d) = File::open(to) {
        let _ = d.sync_all();
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
    fn backup_dirs_keep_what_a_received_file_replaces() {
        let base = std::env::temp_dir().join(format!("uftpd-backup-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (dest, backup) = (base.join("dest"), base.join("backup"));
        fs::create_dir_all(dest.join("sub")).unwrap();
        fs::create_dir_all(&backup).unwrap();
        fs::write(dest.join("sub/f"), b"old").unwrap();
        fs::write(dest.join("l"), b"old link's file").unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&dest))
            .unwrap()
            .with_backup_dirs(std::slice::from_ref(&backup))
            .unwrap();
        assert!(FsStorage::new(std::slice::from_ref(&dest))
            .unwrap()
            .with_backup_dirs(&[backup.clone(), backup.clone()])
            .is_err());
        let it = item(b"sub/f", ItemKind::Regular, 3);
        st.open(&it).unwrap();
        st.write(it.session, 1, 0, b"new").unwrap();
        st.finish(it.session, 1).unwrap();
        st.open(&item(b"l", ItemKind::Symlink { target: b"sub/f" }, 0))
            .unwrap();
        // A new file replaces nothing: nothing is backed up for it.
        let it = item(b"fresh", ItemKind::Regular, 1);
        st.open(&it).unwrap();
        st.write(it.session, 1, 0, b"x").unwrap();
        st.finish(it.session, 1).unwrap();
        assert_eq!(fs::read(dest.join("sub/f")).unwrap(), b"new");
        assert_eq!(fs::read(dest.join("l")).unwrap(), b"new");
        // backup/YYYYMMDD/HHMMSS/<full path of the old file>
        let dest_real = fs::canonicalize(&dest).unwrap();
        let days: Vec<_> = fs::read_dir(&backup)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(days.len(), 1);
        let day = days[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(day.len() == 8 && day.starts_with("20"), "{day}");
        let mut found = Vec::new();
        for t in fs::read_dir(&days[0]).unwrap() {
            let t = t.unwrap().path();
            let name = t.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.len() == 6 && name.chars().all(|c| c.is_ascii_digit()),
                "{name}"
            );
            let under = t.join(dest_real.strip_prefix("/").unwrap());
            for n in ["sub/f", "l"] {
                if let Ok(data) = fs::read(under.join(n)) {
                    found.push((n, data));
                }
            }
        }
        found.sort();
        assert_eq!(
            found,
            [
                ("l", b"old link's file".to_vec()),
                ("sub/f", b"old".to_vec())
            ]
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn with_i_each_file_moves_into_place_once_complete() {
        let base = std::env::temp_dir().join(format!("uftpd-move-each-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        for each in [false, true] {
            let (dest, temp) = (
                base.join(format!("dest{each}")),
                base.join(format!("temp{each}")),
            );
            fs::create_dir_all(&dest).unwrap();
            fs::create_dir_all(&temp).unwrap();
            let mut st = FsStorage::with_temp_dir(std::slice::from_ref(&dest), &temp).unwrap();
            st.move_each_file(each);
            assert_eq!(st.moves_each_file(), each);
            let it = item(b"sub/f", ItemKind::Regular, 5);
            st.open(&it).unwrap();
            st.write(it.session, 1, 0, b"hello").unwrap();
            assert!(
                !dest.join("sub/f").exists(),
                "a partial file in the destination"
            );
            st.finish(it.session, 1).unwrap();
            assert_eq!(
                dest.join("sub/f").exists(),
                each,
                "-i {each}: after the file"
            );
            st.session_ended(it.session);
            assert_eq!(
                fs::read(dest.join("sub/f")).unwrap(),
                b"hello",
                "-i {each}: at the end"
            );
        }
        // Without -T, -i changes nothing.
        let dest = base.join("plain");
        fs::create_dir_all(&dest).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&dest)).unwrap();
        st.move_each_file(true);
        assert!(!st.moves_each_file());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn deletes_only_inside_the_destination_and_creates_nothing() {
        let base = std::env::temp_dir().join(format!("uftpd-delete-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (dest, outside) = (base.join("dest"), base.join("outside"));
        fs::create_dir_all(dest.join("tree/sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(dest.join("old.txt"), b"x").unwrap();
        fs::write(dest.join("tree/sub/f"), b"x").unwrap();
        fs::write(outside.join("victim"), b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.join("victim"), dest.join("link")).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&dest)).unwrap();
        let del =
            |st: &mut FsStorage, name: &str| st.open(&item(name.as_bytes(), ItemKind::Delete, 0));
        let victim = format!("{}/victim", outside.display());
        for bad in ["escape/victim", victim.as_str(), "/etc/hostname"] {
            assert_eq!(del(&mut st, bad), Err(Reject::BadName), "{bad}");
        }
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
        assert!(
            st.notes
                .iter()
                .any(|n| n.contains("escape/victim") && n.contains("leads outside")),
            "{:?}",
            st.notes
        );
        assert!(
            st.notes
                .iter()
                .any(|n| n.contains("/etc/hostname") && n.contains("outside the destination")),
            "{:?}",
            st.notes
        );
        // A symlink goes, not what it points at; a directory with its contents.
        for name in ["old.txt", "link", "tree"] {
            del(&mut st, name).unwrap();
            assert!(
                fs::symlink_metadata(dest.join(name)).is_err(),
                "{name} still there"
            );
        }
        assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
        let abs = format!("{}/escape", dest.display());
        del(&mut st, &abs).unwrap();
        assert!(outside.join("victim").exists());
        // Nothing there: fine, and no parent directory made for it.
        del(&mut st, "no/such/dir/f").unwrap();
        assert!(!dest.join("no").exists());
        assert_eq!(fs::read_dir(&dest).unwrap().count(), 0);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sync_mode_sees_regular_files_in_the_destination_only() {
        let base = std::env::temp_dir().join(format!("uftpd-existing-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (dest, outside) = (base.join("dest"), base.join("outside"));
        fs::create_dir_all(dest.join("d")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(dest.join("f"), b"hello").unwrap();
        fs::File::options()
            .write(true)
            .open(dest.join("f"))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000))
            .unwrap();
        fs::write(outside.join("g"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("escape")).unwrap();
        std::os::unix::fs::symlink(outside.join("g"), dest.join("link")).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&dest)).unwrap();
        let ex = |st: &mut FsStorage, name: &str| {
            st.existing(&item(name.as_bytes(), ItemKind::Regular, 0))
        };
        assert_eq!(
            ex(&mut st, "f"),
            Some(Existing {
                size: 5,
                mtime: 1_500_000_000
            })
        );
        for none in ["d", "escape/g", "link", "missing", "no/dir/f"] {
            assert_eq!(ex(&mut st, none), None, "{none}");
        }
        assert!(!dest.join("no").exists());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn gathered_writes_land_whatever_order_blocks_arrive_in() {
        let base = std::env::temp_dir().join(format!("uftpd-gather-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        let mut st = FsStorage::new(std::slice::from_ref(&base)).unwrap();
        // More blocks than one gathering holds, and a short last block.
        let size = COMBINE * 3 + 1300 * 7 + 11;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 253) as u8).collect();
        let it = item(b"g.bin", ItemKind::Regular, size as u64);
        let l = it.layout;
        st.open(&it).unwrap();
        // In order for a while, then every third block, then the rest backwards.
        let mut order: Vec<u32> = (0..l.blocks / 2).collect();
        order.extend((l.blocks / 2..l.blocks).step_by(3));
        order.extend(
            (l.blocks / 2..l.blocks)
                .filter(|b| !(b - l.blocks / 2).is_multiple_of(3))
                .rev(),
        );
        for b in order {
            let o = l.offset(b) as usize;
            st.write(it.session, 1, o as u64, &data[o..o + l.block_len(b)])
                .unwrap();
        }
        st.finish(it.session, 1).unwrap();
        assert_eq!(fs::read(base.join("g.bin")).unwrap(), data);
        let _ = fs::remove_dir_all(&base);
    }

    #[test]
    fn temp_dir_keeps_a_failed_sessions_file_and_resumes_it_in_the_restart() {
        let base = std::env::temp_dir().join(format!("uftpd-restart-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (dest, temp) = (base.join("dest"), base.join("temp"));
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&temp).unwrap();
        let mut st = FsStorage::with_temp_dir(std::slice::from_ref(&dest), &temp).unwrap();
        let size = 1300 * 10 + 7;
        let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let mut it = item(b"sub/big.bin", ItemKind::Regular, size as u64);
        let layout = it.layout;
        let write = |st: &mut FsStorage, it: &Item<'_>, b: u32| {
            let o = layout.offset(b) as usize;
            st.write(it.session, 1, o as u64, &data[o..o + layout.block_len(b)])
                .unwrap();
            proto_core::session::nak::set(st.block_map(it.session).unwrap(), b as usize);
        };
        // Instance 0: blocks 0-5 arrive, then the session fails.
        assert!(
            st.open(&item(b"/abs", ItemKind::Regular, 5)).is_err(),
            "-T: relative only"
        );
        st.open(&it).unwrap();
        assert!(!st.resumed(&it));
        for b in 0..6 {
            write(&mut st, &it, b);
        }
        st.discard(it.session, 1);
        st.session_failed(it.session);
        st.session_ended(it.session);
        let group = temp.join("_group_0000ABCD");
        assert!(group.join("sub/.big.bin.uftp-part").is_file());
        let sidecar = fs::read_to_string(group.join("sub/.big.bin.uftp-part.state")).unwrap();
        let j: serde_json::Value = serde_json::from_str(&sidecar).unwrap();
        assert_eq!(j["format"], "uftp-rs partial file");
        assert_eq!(j["name"], "sub/big.bin");
        assert_eq!(j["blocks"], 11);
        assert_eq!(j["map"], "3f00", "blocks 0-5, LSB first");
        assert_eq!(
            fs::read_dir(&dest).unwrap().count(),
            0,
            "nothing in the destination"
        );

        let mut st = FsStorage::with_temp_dir(std::slice::from_ref(&dest), &temp).unwrap();
        // Instance 1 with another modification time: not the same file, received afresh.
        it.session.group_inst = 1;
        it.mtime += 1;
        st.open(&it).unwrap();
        assert!(!st.resumed(&it));
        st.discard(it.session, 1);
        // The sidecar now describes that fresh file (mtime + 1): the right one is not resumed
        // from it either. Blocks 0-5 again, and a failure.
        it.mtime -= 1;
        st.open(&it).unwrap();
        assert!(!st.resumed(&it));
        for b in 0..6 {
            write(&mut st, &it, b);
        }
        st.discard(it.session, 1);

        // Instance 2, the same file: resumed with blocks 0-5.
        it.session.group_inst = 2;
        st.open(&it).unwrap();
        assert!(st.resumed(&it));
        assert_eq!(st.resumed_blocks(it.session), Some(6));
        assert_eq!(st.block_map(it.session).unwrap(), [0x3f, 0x00]);
        for b in 6..11 {
            write(&mut st, &it, b);
        }
        st.finish(it.session, 1).unwrap();
        assert_eq!(fs::read(group.join("sub/big.bin")).unwrap(), data);
        assert!(!group.join("sub/.big.bin.uftp-part.state").exists());
        st.session_ended(it.session);
        assert_eq!(fs::read(dest.join("sub/big.bin")).unwrap(), data);
        assert!(!group.exists(), "the group directory is gone once moved");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_file_finished_before_a_failure_is_complete_in_the_restart() {
        let base = std::env::temp_dir().join(format!("uftpd-restart2-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (dest, temp) = (base.join("dest"), base.join("temp"));
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir_all(&temp).unwrap();
        let mut st = FsStorage::with_temp_dir(std::slice::from_ref(&dest), &temp).unwrap();
        let mut it = item(b"small", ItemKind::Regular, 5);
        st.open(&it).unwrap();
        st.write(it.session, 1, 0, b"hello").unwrap();
        st.finish(it.session, 1).unwrap();
        st.session_failed(it.session);
        st.session_ended(it.session);
        assert!(!dest.join("small").exists());
        it.session.group_inst = 1;
        st.open(&it).unwrap();
        assert!(st.resumed(&it));
        assert_eq!(st.block_map(it.session).unwrap(), [0xff]);
        st.finish(it.session, 1).unwrap();
        st.session_ended(it.session);
        assert_eq!(fs::read(dest.join("small")).unwrap(), b"hello");
        // A temp directory on another file system, or inside the destination, is refused.
        assert!(FsStorage::with_temp_dir(std::slice::from_ref(&dest), &dest.join(".")).is_err());
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
