//! The daemons' log (`uftpd`, `uftpproxyd`): uftp's levels (0 errors only … 5 debug), to
//! standard error or to a file (`-L`) that rolls over at a size (`-g`, `-n`) and is reopened on
//! request (SIGHUP, for logrotate).
//!
//! Rolling works as uftp 4.10.2's: once a write takes the file past `-g` megabytes (10^6 bytes),
//! `log.1` becomes `log.2` and so on up to `log.N` (`-n`, the oldest beyond it is deleted), the
//! file becomes `log.1`, and a new file is started under the log's name. One deliberate
//! difference: a roll or reopen that fails (a full disk, a directory made read-only) is logged
//! and logging goes on in the file already open, where uftpd exits with code 4 and drops every
//! transfer in progress.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// uftp's megabyte for `-g`.
pub const MEGABYTE: u64 = 1_000_000;

/// When a log file rolls over (`-g`, `-n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    /// Roll once the file is larger than this.
    pub max_bytes: u64,
    /// Archives kept (`log.1` … `log.N`).
    pub keep: u32,
}

/// Where lines go.
enum Sink {
    Stderr,
    File {
        path: PathBuf,
        file: File,
        /// The file's size as far as we know (it is opened for appending).
        size: u64,
        rolling: Option<Rolling>,
    },
    /// Tests: lines kept in memory.
    #[cfg(test)]
    Memory(Vec<u8>),
}

/// A log with a level: [`Log::line`] writes a timestamped line when its level is enabled.
pub struct Log {
    level: u8,
    sink: Sink,
    /// Whether standard error follows the log file (a daemon: panics land in the log).
    capture_stderr: bool,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = match &self.sink {
            Sink::Stderr => "stderr".to_string(),
            Sink::File { path, .. } => path.display().to_string(),
            #[cfg(test)]
            Sink::Memory(_) => "memory".to_string(),
        };
        f.debug_struct("Log")
            .field("level", &self.level)
            .field("to", &to)
            .finish()
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// `log` with a numeric extension: `log.1`.
fn archive(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Moves `log.N-1` … `log.1` up by one (deleting `log.N`), the log to `log.1`, and opens a
/// new log under its name.
fn shift_archives(path: &Path, keep: u32) -> io::Result<(File, u64)> {
    match fs::remove_file(archive(path, keep)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for n in (1..keep).rev() {
        match fs::rename(archive(path, n), archive(path, n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    fs::rename(path, archive(path, 1))?;
    open_append(path)
}

/// A log file written by a program with its own line format (`uftp -L` with `-g`/`-n`):
/// bytes are appended, and the file rolls as [`Log`]'s does (see the module documentation)
/// once a write that ends a line takes it past the size. A roll that fails stops rolling and
/// says so in the file.
#[derive(Debug)]
pub struct RollingFile {
    path: PathBuf,
    file: File,
    size: u64,
    rolling: Rolling,
}

impl RollingFile {
    /// Opens `path` for appending.
    pub fn open(path: &Path, rolling: Rolling) -> io::Result<RollingFile> {
        let (file, size) = open_append(path)?;
        Ok(RollingFile {
            path: path.to_path_buf(),
            file,
            size,
            rolling,
        })
    }

    fn roll(&mut self) {
        match shift_archives(&self.path, self.rolling.keep) {
            Ok((file, size)) => {
                self.file = file;
                self.size = size;
            }
            Err(e) => {
                self.rolling.max_bytes = u64::MAX;
                let _ = writeln!(
                    self.file,
                    "cannot roll the log {}: {e}; logging on in the current file, unrolled",
                    self.path.display()
                );
            }
        }
    }
}

impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.size += n as u64;
        if self.size > self.rolling.max_bytes && buf[..n].ends_with(b"\n") {
            self.roll();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn timestamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", t.as_secs(), t.subsec_micros())
}

impl Log {
    /// Logs to standard error.
    pub fn stderr(level: u8) -> Log {
        Log {
            level,
            sink: Sink::Stderr,
            capture_stderr: false,
        }
    }

    /// Logs to `path`, appending, rolling as `rolling` says. The error is one line for the user.
    pub fn file(path: &Path, level: u8, rolling: Option<Rolling>) -> Result<Log, String> {
        let (file, size) = open_append(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        Ok(Log {
            level,
            sink: Sink::File {
                path: path.to_path_buf(),
                file,
                size,
                rolling,
            },
            capture_stderr: false,
        })
    }

    #[cfg(test)]
    fn memory(level: u8) -> Log {
        Log {
            level,
            sink: Sink::Memory(Vec::new()),
            capture_stderr: false,
        }
    }

    /// The log file, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::File { path, .. } => Some(path),
            _ => None,
        }
    }

    /// Whether lines of `level` are written.
    pub fn enabled(&self, level: u8) -> bool {
        level <= self.level
    }

    /// Points standard error at the log file from now on, and again after every roll or
    /// reopen (a daemon's: what a panic prints lands in the log). Nothing for other sinks.
    pub fn capture_stderr(&mut self) -> io::Result<()> {
        self.capture_stderr = true;
        self.redirect_stderr()
    }

    #[allow(unsafe_code)]
    fn redirect_stderr(&self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if let (true, Sink::File { file, .. }) = (self.capture_stderr, &self.sink) {
            // SAFETY: dup2 on two open descriptors touches no memory of ours.
            if unsafe { libc::dup2(file.as_raw_fd(), libc::STDERR_FILENO) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Writes one line if `level` is enabled.
    pub fn line(&mut self, level: u8, msg: &str) {
        if !self.enabled(level) {
            return;
        }
        let text = format!("{}: {msg}\n", timestamp());
        let roll = match &mut self.sink {
            Sink::Stderr => {
                let _ = io::stderr().write_all(text.as_bytes());
                false
            }
            #[cfg(test)]
            Sink::Memory(v) => {
                v.extend_from_slice(text.as_bytes());
                false
            }
            Sink::File {
                file,
                size,
                rolling,
                ..
            } => {
                if file.write_all(text.as_bytes()).is_ok() {
                    *size += text.len() as u64;
                }
                rolling.is_some_and(|r| *size > r.max_bytes)
            }
        };
        if roll {
            self.roll();
        }
    }

    /// Archives the log file and starts a new one (see the module documentation).
    fn roll(&mut self) {
        let Sink::File {
            path,
            file,
            size,
            rolling: Some(rolling),
        } = &mut self.sink
        else {
            return;
        };
        let first = archive(path, 1);
        let _ = writeln!(
            file,
            "{}: Rolling logs: this file becomes {}",
            timestamp(),
            first.display()
        );
        let shifted = shift_archives(path, rolling.keep);
        let msg = match shifted {
            Ok((new, new_size)) => {
                *file = new;
                *size = new_size;
                format!("Log rolled: earlier lines are in {}", first.display())
            }
            Err(e) => {
                // Rolling stops: one failure logged, not one per line.
                rolling.max_bytes = u64::MAX;
                format!(
                    "cannot roll the log {}: {e}; logging on in the current file, unrolled",
                    path.display()
                )
            }
        };
        let _ = self.redirect_stderr();
        self.line(0, &msg);
    }

    /// Opens the log file again under its name (after logrotate moved it: SIGHUP). On failure
    /// the file already open stays and the error is logged there.
    pub fn reopen(&mut self) {
        let Sink::File {
            path, file, size, ..
        } = &mut self.sink
        else {
            return;
        };
        let (level, msg) = match open_append(path) {
            Ok((new, new_size)) => {
                *file = new;
                *size = new_size;
                (1, "Log file reopened (SIGHUP)".to_string())
            }
            Err(e) => (
                0,
                format!(
                    "cannot reopen the log {}: {e}; logging on in the file already open",
                    path.display()
                ),
            ),
        };
        let _ = self.redirect_stderr();
        self.line(level, &msg);
    }

    #[cfg(test)]
    fn text(&self) -> String {
        match &self.sink {
            Sink::Memory(v) => String::from_utf8_lossy(v).into_owned(),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("uftp-rs-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn levels_filter_lines() {
        let mut log = Log::memory(2);
        log.line(2, "kept");
        log.line(3, "dropped");
        let text = log.text();
        assert!(text.contains(": kept\n"), "{text}");
        assert!(!text.contains("dropped"));
    }

    #[test]
    fn a_rolling_file_rolls_at_line_ends_and_keeps_n_archives() {
        let dir = scratch("rollfile");
        let path = dir.join("uftp.log");
        let rolling = Rolling {
            max_bytes: 1000,
            keep: 2,
        };
        let mut f = RollingFile::open(&path, rolling).unwrap();
        for i in 0..100 {
            // Written in pieces, as writeln! does: a roll waits for the end of the line.
            write!(f, "line {i:03} ").unwrap();
            writeln!(f, "{}", "x".repeat(40)).unwrap();
        }
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        assert!(!archive(&path, 3).exists(), "more than -n archives kept");
        let (two, one, cur) = (
            read(&archive(&path, 2)),
            read(&archive(&path, 1)),
            read(&path),
        );
        for a in [&two, &one] {
            assert!(a.len() > 1000 && a.len() <= 1050, "{}", a.len());
            assert!(a.lines().all(|l| l.len() == 49), "a line was cut: {a}");
        }
        // Nothing lost between the archives and the current file, in order.
        let all = format!("{two}{one}{cur}");
        let nums: Vec<u32> = all.lines().map(|l| l[5..8].parse().unwrap()).collect();
        let first = nums[0];
        assert_eq!(nums, (first..100).collect::<Vec<_>>());
        assert!(first > 0, "rolled fewer times than expected");
    }

    #[test]
    fn rolls_past_the_size_and_keeps_n_archives() {
        let dir = scratch("roll");
        let path = dir.join("uftpd.log");
        let rolling = Rolling {
            max_bytes: 1000,
            keep: 2,
        };
        let mut log = Log::file(&path, 2, Some(rolling)).unwrap();
        // Each line is about 60 bytes: 1000 bytes every ~17 lines, 4 rolls in 80 lines.
        for i in 0..80 {
            log.line(2, &format!("line {i:03} {}", "x".repeat(30)));
        }
        let read = |p: &Path| fs::read_to_string(p).unwrap();
        let (cur, one, two) = (
            read(&path),
            read(&archive(&path, 1)),
            read(&archive(&path, 2)),
        );
        assert!(!archive(&path, 3).exists(), "more than -n archives kept");
        // Archives are just over the limit and end with the roll line; the new files begin
        // with the line that says where the older ones went.
        for a in [&one, &two] {
            assert!(a.len() > 1000 && a.len() < 1200, "{}", a.len());
            let last = a.lines().last().unwrap();
            assert!(last.contains("Rolling logs: this file becomes"), "{last}");
            assert!(a.contains("Log rolled: earlier lines are in"), "{a}");
        }
        assert!(cur.contains("Log rolled: earlier lines are in"), "{cur}");
        // The order of lines survives: .2 holds older lines than .1, which holds older than the
        // current file, and the last line is in the current file.
        let first_line_no = |t: &str| {
            t.lines()
                .find_map(|l| {
                    l.split("line ")
                        .nth(1)
                        .map(|n| n[..3].parse::<u32>().unwrap())
                })
                .unwrap()
        };
        assert!(first_line_no(&two) < first_line_no(&one));
        assert!(first_line_no(&one) < first_line_no(&cur));
        assert!(cur.contains("line 079"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_rolling_the_file_grows() {
        let dir = scratch("grow");
        let path = dir.join("uftpd.log");
        let mut log = Log::file(&path, 2, None).unwrap();
        for i in 0..100 {
            log.line(2, &format!("line {i:03} {}", "x".repeat(30)));
        }
        assert!(fs::metadata(&path).unwrap().len() > 5000);
        assert!(!archive(&path, 1).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reopen_follows_a_moved_log() {
        let dir = scratch("reopen");
        let path = dir.join("uftpd.log");
        let mut log = Log::file(&path, 2, None).unwrap();
        log.line(1, "before");
        let moved = dir.join("uftpd.log.old");
        fs::rename(&path, &moved).unwrap();
        log.line(1, "still in the moved file");
        log.reopen();
        log.line(1, "after");
        let old = fs::read_to_string(&moved).unwrap();
        let new = fs::read_to_string(&path).unwrap();
        assert!(old.contains("before") && old.contains("still in the moved file"));
        assert!(!old.contains("after"));
        assert!(
            new.contains("Log file reopened") && new.contains("after"),
            "{new}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_roll_keeps_logging() {
        let dir = scratch("failroll");
        let path = dir.join("uftpd.log");
        let rolling = Rolling {
            max_bytes: 200,
            keep: 1,
        };
        let mut log = Log::file(&path, 2, Some(rolling)).unwrap();
        // A directory where the archive must go: the rename over it fails.
        fs::create_dir(archive(&path, 1)).unwrap();
        fs::write(archive(&path, 1).join("x"), "").unwrap();
        for i in 0..10 {
            log.line(2, &format!("line {i} {}", "y".repeat(40)));
        }
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("cannot roll the log"), "{text}");
        assert!(text.contains("line 9"), "{text}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
