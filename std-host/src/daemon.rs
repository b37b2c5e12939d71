//! What `uftpd` and `uftpproxyd` share as daemons: their exit codes, becoming a daemon, the PID
//! file, and the signals they answer.
//!
//! Without `-d` a daemon starts in the foreground (so that every start-up error reaches the
//! terminal with its exit code), then detaches: fork, `setsid`, fork again (the daemon can never
//! take a controlling terminal back), `chdir /`, standard input and output to `/dev/null` and
//! standard error to the log file. The command the user ran waits until the daemon has written
//! its PID file and then exits 0, or with the daemon's exit code and message if it failed there:
//! when `uftpd` returns 0, the daemon runs and `-P` names it (an init script may read it at once).
//!
//! Signals, as uftp 4.10.2 has them plus SIGHUP: SIGINT and SIGTERM end the program (its
//! sessions are told, and it exits 6); SIGHUP reopens the log file (4.10.2 dies of it), for
//! logrotate.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

/// uftpd's and uftpproxyd's exit codes (`man uftpd`, `man uftpproxyd`).
pub mod exit {
    /// Started (a daemon: the code of the command once the daemon runs).
    pub const OK: i32 = 0;
    /// An invalid command line.
    pub const PARAM: i32 = 1;
    /// The network could not be set up.
    pub const SOCKET: i32 = 2;
    /// Keys could not be read or made.
    pub const CRYPTO: i32 = 3;
    /// The log file could not be opened.
    pub const LOG: i32 = 4;
    /// Stopped by a signal.
    pub const INTERRUPTED: i32 = 6;
}

/// A start-up failure: the exit code and one line for the user.
pub type Failure = (i32, String);

/// `path` made absolute against the current directory (a daemon changes to `/`; uftpd 4.10.2
/// would then write a relative `-L` or `-P` under `/`).
pub fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::path::absolute(&path).unwrap_or(path)
}

/// The daemon's line back to the command that started it; dropped unsent (the daemon died), the
/// command says so and fails.
#[derive(Debug)]
pub struct Starting {
    report: File,
}

impl Starting {
    /// The daemon runs: the command exits 0.
    pub fn ready(mut self) {
        let _ = self.report.write_all(b"0\n");
    }

    /// The daemon could not start: the command prints `msg` and exits with `code`.
    pub fn failed(mut self, code: i32, msg: &str) {
        let _ = write!(self.report, "{code}\n{msg}");
    }
}

/// Becomes a daemon (see the module documentation); returns in the daemon only. `program`
/// prefixes the command's messages. Must be called while the process has one thread.
#[allow(unsafe_code)]
pub fn daemonize(program: &str) -> io::Result<Starting> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just made by pipe2 and are owned by nobody else.
    let (read_end, write_end) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: the process has one thread (the caller's promise), so the child may go on running
    // Rust code after fork.
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        _ => {
            drop(write_end);
            std::process::exit(wait_for_daemon(program, read_end));
        }
    }
    drop(read_end);
    // SAFETY: setsid takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; the middle process leaves at once with _exit, running no destructors
    // (the report pipe stays open in the daemon).
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    std::env::set_current_dir("/")?;
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in [libc::STDIN_FILENO, libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 on two open descriptors touches no memory.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(Starting { report: write_end })
}

/// The command's side: waits for the daemon's report and returns the exit code.
fn wait_for_daemon(program: &str, mut from: File) -> i32 {
    let mut text = String::new();
    let _ = from.read_to_string(&mut text);
    let (code, msg) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    match code.trim().parse::<i32>() {
        Ok(exit::OK) => exit::OK,
        Ok(code) => {
            eprintln!("{program}: {msg}");
            code
        }
        Err(_) => {
            eprintln!("{program}: the daemon ended while starting (see its log)");
            exit::SOCKET
        }
    }
}

/// The PID file (`-P`): written with our PID, removed when dropped (at exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes our PID to `path` (replacing a stale file).
    pub fn write(path: &Path) -> Result<PidFile, String> {
        fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write PID file {}: {e}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// SIGINT, SIGTERM and SIGHUP: the handler only records them; the event loop (which wakes at
/// least every 200 ms, or at once when `recv` is interrupted) acts on them.
pub mod signals {
    use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

    static STOP: AtomicI32 = AtomicI32::new(0);
    static HANGUP: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(sig: libc::c_int) {
        if sig == libc::SIGHUP {
            HANGUP.store(true, Ordering::Relaxed);
        } else {
            STOP.store(sig, Ordering::Relaxed);
        }
    }

    /// Installs the handler.
    #[allow(unsafe_code)]
    pub fn install() {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: a zeroed sigaction is valid (empty mask, no flags: no SA_RESTART, so a
            // blocked recv returns EINTR); the handler only stores to atomics, which is
            // async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    }

    /// The signal that asks us to stop (SIGINT or SIGTERM), if one came.
    pub fn stop() -> Option<i32> {
        match STOP.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// Whether SIGHUP came since the last call.
    pub fn take_hangup() -> bool {
        HANGUP.swap(false, Ordering::Relaxed)
    }
}

#[allow(unsafe_code)]
/// Sets this process's nice value (`-N`).
pub fn nice(priority: i32) {
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, priority);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_become_absolute_against_the_current_directory() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(PathBuf::from("a/b.log")), cwd.join("a/b.log"));
        assert_eq!(absolute(PathBuf::from("/x/y")), PathBuf::from("/x/y"));
    }

    #[test]
    fn pid_file_holds_our_pid_and_goes_at_drop() {
        let path = std::env::temp_dir().join(format!("uftp-rs-pid-{}", std::process::id()));
        let pid = PidFile::write(&path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid);
        assert!(!path.exists());
        let e = PidFile::write(Path::new("/nonexistent/dir/x.pid")).unwrap_err();
        assert!(
            e.contains("cannot write PID file /nonexistent/dir/x.pid"),
            "{e}"
        );
    }
}
