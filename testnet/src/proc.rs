//! Processes started inside test networks, stopped by PID (SIGTERM, then SIGKILL) when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::shell::{or_panic, Error};

/// A process a test or benchmark started; stopped by PID when dropped.
#[derive(Debug)]
pub struct Proc {
    /// A name for messages.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr written to `log`.
    pub fn try_spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, Error> {
        let open = |e: std::io::Error| Error(format!("{}: {e}", log.display()));
        let out = File::create(log).map_err(open)?;
        let err = out.try_clone().map_err(open)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error(format!("cannot start {name}: {e}")))?;
        Ok(Proc {
            name: name.to_string(),
            log: log.to_path_buf(),
            child: Some(child),
        })
    }

    /// [`Proc::try_spawn`], panicking if it fails.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> Proc {
        or_panic(Proc::try_spawn(name, cmd, log))
    }

    /// The process ID (0 once reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Forgets the child once it was reaped elsewhere (by `wait4`).
    pub fn reaped(&mut self) {
        self.child = None;
    }

    /// Waits up to `limit` until its log holds `line` (how callers wait for a program to be
    /// ready); an error with the log if it exits first or the time runs out, or as soon as
    /// `interrupted()` says so.
    pub fn try_wait_for_line(
        &mut self,
        line: &str,
        limit: Duration,
        interrupted: impl Fn() -> bool,
    ) -> Result<(), Error> {
        let start = Instant::now();
        while !self.log_text().contains(line) {
            if interrupted() {
                return Err(Error("interrupted".into()));
            }
            if !self.running() {
                return Err(Error(format!(
                    "{} exited before logging {line:?}:\n{}",
                    self.name,
                    self.log_text()
                )));
            }
            if start.elapsed() >= limit {
                return Err(Error(format!(
                    "{} did not log {line:?} in {limit:?}:\n{}",
                    self.name,
                    self.log_text()
                )));
            }
            sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// [`Proc::try_wait_for_line`] without interruption, panicking if it fails.
    pub fn wait_for_line(&mut self, line: &str, limit: Duration) {
        or_panic(self.try_wait_for_line(line, limit, || false))
    }

    /// Stops every one of `procs` and returns their logs, each under a `--- name:` line (for
    /// a failing assertion's message).
    pub fn stop_all(procs: &mut [Proc]) -> String {
        procs
            .iter_mut()
            .map(|p| {
                p.stop();
                format!("--- {}:\n{}", p.name, p.log_text())
            })
            .collect()
    }

    /// Its log so far. Lossy: Debian's `uftpd` logs raw bytes when a reverse lookup fails, and
    /// one invalid UTF-8 sequence must not blank the whole log.
    pub fn log_text(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits up to `limit` for it to exit by itself and returns its exit code; an error (after
    /// killing it) if it does not, or as soon as `interrupted()` says so (after stopping it).
    pub fn try_wait(
        &mut self,
        limit: Duration,
        interrupted: impl Fn() -> bool,
    ) -> Result<i32, Error> {
        let start = Instant::now();
        loop {
            let child = self
                .child
                .as_mut()
                .ok_or_else(|| Error(format!("{} is not running", self.name)))?;
            match child.try_wait() {
                Ok(Some(st)) => {
                    self.child = None;
                    return Ok(st.code().unwrap_or(-1));
                }
                Ok(None) => {}
                Err(e) => return Err(Error(format!("waiting for {}: {e}", self.name))),
            }
            if start.elapsed() > limit {
                self.signal("KILL");
                return Err(Error(format!("{} did not finish in {limit:?}", self.name)));
            }
            if interrupted() {
                self.stop();
                return Err(Error("interrupted".into()));
            }
            sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `limit` for it to exit by itself and returns its exit code; panics (after
    /// killing it) if it does not, showing its log.
    pub fn wait(&mut self, limit: Duration) -> i32 {
        self.try_wait(limit, || false)
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log_text()))
    }

    /// Sends a signal by PID (e.g. "TERM", "KILL") without waiting.
    pub fn signal(&mut self, signal: &str) {
        if let Some(child) = self.child.as_mut() {
            if child.try_wait().ok().flatten().is_none() {
                let _ = Command::new("kill")
                    .args([format!("-{signal}"), child.id().to_string()])
                    .status();
            }
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(3) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                sleep(Duration::from_millis(10));
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
