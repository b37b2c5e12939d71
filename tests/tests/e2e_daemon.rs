//! Our `uftpd` as a daemon (no `-d`), as an init script starts it: the command returns 0 once
//! the daemon runs and its PID file names it; the daemon has left the starting session and the
//! terminal, works from `/`, and logs to `-L`. SIGHUP reopens the log (logrotate moved it);
//! SIGTERM during a transfer from Debian's `uftp` 4.10.2 sends the server an ABORT ("Client
//! shutting down", which the sender reports), leaves no partial file, removes the PID file, and
//! ends the daemon with uftpd's exit code 6.
//!
//! This test binary makes itself the child subreaper (`PR_SET_CHILD_SUBREAPER`): the daemon,
//! orphaned by the double fork, becomes its child, so that its exit code can be read.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Host, Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::tree::names;

fn uid_of(h: &Host) -> String {
    let ip: std::net::Ipv4Addr = h.ipv4.parse().unwrap();
    format!("0x{:08x}", u32::from(ip))
}

/// Fields of `/proc/PID/stat` after the command name: state, ppid, pgrp, session, tty_nr …
fn stat(pid: u32) -> Vec<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &text[text.rfind(')').expect("comm") + 2..];
    after.split_whitespace().map(String::from).collect()
}

/// Waits for `pid` (our child, as subreaper) to exit and returns its exit code.
#[allow(unsafe_code)]
fn reap(pid: u32, limit: Duration) -> i32 {
    let t0 = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into the integer it is given.
        let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid {pid}: {}", std::io::Error::last_os_error());
        if r == pid as i32 {
            assert!(
                libc::WIFEXITED(status),
                "the daemon was killed: {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        assert!(t0.elapsed() < limit, "the daemon {pid} ignores SIGTERM");
        sleep(Duration::from_millis(20));
    }
}

/// Kills the daemon by PID if the test fails before it ends.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool, why: impl Fn() -> String) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < limit, "{what}:\n{}", why());
        sleep(Duration::from_millis(20));
    }
}

fn kill(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {pid}");
}

#[test]
#[allow(unsafe_code)]
fn uftpd_runs_as_a_daemon_and_stops_cleanly_on_sigterm() {
    let _lock = serial();
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer and touches no memory.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let bed = Testbed::new(2);
    let (sender, receiver) = (bed.host(0).clone(), bed.host(1).clone());
    let dest = bed.path("dest");
    fs::create_dir_all(&dest).unwrap();
    let (log, pidfile) = (bed.path("uftpd.log"), bed.path("uftpd.pid"));
    // Relative -L, -P and -D, from the testbed's directory: the daemon, in `/`, must still use
    // these files.
    let mut start = Proc::spawn(
        "uftpd (starting)",
        {
            let mut c = receiver.command(our_binary("uftpd"));
            c.current_dir(&bed.dir).args([
                "-x",
                "3",
                "-I",
                &receiver.ifname,
                "-U",
                &uid_of(&receiver),
                "-D",
                "dest",
                "-L",
                "uftpd.log",
                "-P",
                "uftpd.pid",
            ]);
            c
        },
        &bed.path("uftpd-start.log"),
    );
    let code = start.wait(Duration::from_secs(10));
    assert_eq!(code, 0, "the starting command:\n{}", start.log_text());
    // The PID file is there as soon as the command returns.
    let pid: u32 = fs::read_to_string(&pidfile)
        .expect("PID file written before the command returned")
        .trim()
        .parse()
        .expect("a PID");
    let _daemon = Daemon(pid);
    let st = stat(pid);
    let me = std::process::id().to_string();
    assert_eq!(
        st[1], me,
        "the orphaned daemon is reparented to us (subreaper)"
    );
    assert_ne!(st[3], stat(std::process::id())[3], "still in our session");
    assert_ne!(
        st[3],
        pid.to_string(),
        "a session leader could take a terminal"
    );
    assert_eq!(st[4], "0", "has a controlling terminal");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/fd/0")).unwrap(),
        Path::new("/dev/null")
    );
    assert_eq!(fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(), log);
    let log_text = || fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the daemon logs nothing",
        Duration::from_secs(10),
        || log_text().contains("listening on port"),
        log_text,
    );

    // SIGHUP after logrotate moved the log: the daemon writes to a new file by the old name.
    let rotated = bed.path("uftpd.log.1");
    fs::rename(&log, &rotated).unwrap();
    kill("HUP", pid);
    wait_for(
        "SIGHUP did not reopen the log",
        Duration::from_secs(5),
        || log_text().contains("Log file reopened (SIGHUP)"),
        || fs::read_to_string(&rotated).unwrap_or_default(),
    );
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(fs::read_link(format!("/proc/{pid}/fd/2")).unwrap(), log);

    // A transfer slow enough to be cut: 20 MB at 8 Mbit/s.
    let src = bed.path("big");
    uftp_tests::fixture::write_pattern(&src, 20_000_000, 7);
    let mut uftp = Proc::spawn(
        "uftp",
        {
            let mut c = sender.command("uftp");
            c.args([
                "-I",
                &sender.ifname,
                "-R",
                "8000",
                "-H",
                &uid_of(&receiver),
                "-x",
                "2",
            ])
            .arg(&src);
            c
        },
        &bed.path("uftp.log"),
    );
    wait_for(
        "the transfer did not start",
        Duration::from_secs(20),
        || log_text().contains("Receiving file"),
        || format!("{}\n--- uftp:\n{}", log_text(), uftp.log_text()),
    );
    sleep(Duration::from_millis(500));
    kill("TERM", pid);
    assert_eq!(
        reap(pid, Duration::from_secs(5)),
        6,
        "exit code:\n{}",
        log_text()
    );
    let text = log_text();
    assert!(text.contains("Exiting on signal 15"), "{text}");
    assert!(
        text.contains("Session aborted: Client shutting down"),
        "{text}"
    );
    assert!(!pidfile.exists(), "the PID file is left behind");
    assert!(
        names(&dest).is_empty(),
        "left in the destination: {:?}",
        names(&dest)
    );
    // The sender hears of it at once (its own timeout would take many seconds more).
    let code = uftp.wait(Duration::from_secs(10));
    let sent = uftp.log_text();
    assert!(
        sent.contains("Client shutting down"),
        "uftp exited {code} without our ABORT:\n{sent}"
    );
}
