//! The first minute of a newcomer, as every Unix tool has it, for the five programs: `--help`
//! prints the usage and each option on standard output and exits 0; `--version` prints the
//! program's name and version and exits 0; neither starts a daemon or does any work. Run bare,
//! each does what uftp 4.10.2's does: `uftp` prints its usage on standard error and exits 1,
//! `uftpproxyd` says a mode is needed and exits 1, `uftp_keymgt` says nothing and exits 0;
//! `uftpdump` (not in 4.10.2) says its capture file is missing and exits 2. `uftpd` alone
//! becomes a daemon, as 4.10.2's does, so it is not run bare here.
//!
//! The options `--help` must name are read from the bash completions under
//! `std-host/packaging/`, which the std-host test `generated_files_are_current` keeps equal to
//! each program's option table. Needs no root and no network.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use uftp_tests::fixture::our_binary;

const PROGRAMS: [&str; 5] = ["uftp", "uftpd", "uftpproxyd", "uftp_keymgt", "uftpdump"];

/// Runs a program to its end (stdin empty, in a directory of its own), killing it and failing
/// if it has not ended within 20 s.
fn run(name: &str, args: &[&str], dir: &Path) -> Output {
    let mut child = Command::new(our_binary(name))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{name} {args:?} did not exit within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait");
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every spelling of every option of `name` (`-d`, `--json` …), as its bash completion offers
/// them.
fn spellings(name: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../std-host/packaging/completions/bash")
        .join(name);
    let script =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = script
        .lines()
        .find(|l| l.contains("compgen -W \"-"))
        .unwrap_or_else(|| panic!("{}: no option list", path.display()));
    let list = line.split('"').nth(1).expect("quoted list");
    list.split_whitespace().map(String::from).collect()
}

/// A directory for one test, empty.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cli-conventions-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_ran(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn help_prints_the_usage_and_every_option_on_stdout() {
    let dir = scratch("help");
    for name in PROGRAMS {
        if matches!(name, "uftpd" | "uftpproxyd") {
            // Were --help not answered first, `-p 0` would stop the parser before the daemon
            // starts; so the bare `--help` below cannot leave a daemon behind.
            let out = run(name, &["--help", "-p", "0"], &dir);
            assert_ran(&out, 0, &format!("{name} --help -p 0"));
        }
        let out = run(name, &["--help"], &dir);
        let what = format!("{name} --help");
        assert_ran(&out, 0, &what);
        let stdout = text(&out.stdout);
        assert!(out.stderr.is_empty(), "{what}: {}", text(&out.stderr));
        assert!(
            stdout.to_lowercase().contains(&format!("usage: {name}")),
            "{what}:\n{stdout}"
        );
        let words: Vec<&str> = stdout
            .split(|c: char| c.is_whitespace() || c == ',')
            .collect();
        for s in spellings(name) {
            assert!(
                words.contains(&s.as_str()),
                "{what} does not name {s}:\n{stdout}"
            );
        }
        for s in ["--help", "--version"] {
            assert!(words.contains(&s), "{what} does not name {s}:\n{stdout}");
        }
    }
    // Nothing was started or written: no log, PID file or key in the working directory.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn version_prints_the_name_and_version_on_stdout() {
    let dir = scratch("version");
    let version = env!("CARGO_PKG_VERSION");
    for name in PROGRAMS {
        if matches!(name, "uftpd" | "uftpproxyd") {
            let out = run(name, &["--version", "-p", "0"], &dir);
            assert_ran(&out, 0, &format!("{name} --version -p 0"));
        }
        let out = run(name, &["--version"], &dir);
        let what = format!("{name} --version");
        assert_ran(&out, 0, &what);
        let stdout = text(&out.stdout);
        assert!(out.stderr.is_empty(), "{what}: {}", text(&out.stderr));
        assert!(
            stdout.starts_with(&format!("{name} {version} ")) && stdout.contains("UFTP 4"),
            "{what}: {stdout}"
        );
        assert_eq!(stdout.lines().count(), 1, "{what}: {stdout}");
    }
    // Anywhere among the options, but not as an option's value.
    let out = run("uftp", &["-R", "1000", "--version", "file"], &dir);
    assert_ran(&out, 0, "uftp -R 1000 --version file");
    let out = run("uftp", &["-L", "--version"], &dir);
    assert_ran(&out, 1, "uftp -L --version");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bare_programs_do_what_uftp_4_10_2_does() {
    let dir = scratch("bare");
    // uftp 4.10.2: the usage on standard error, exit 1.
    let out = run("uftp", &[], &dir);
    assert_ran(&out, 1, "uftp");
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("usage: uftp "), "{stderr}");
    for s in ["-R", "-Y", "-H", "-F", "--json", "file|dir"] {
        assert!(
            stderr.split_whitespace().any(|w| w == s),
            "uftp's usage lacks {s}:\n{stderr}"
        );
    }
    // uftpproxyd 4.10.2: "Either -s, -c, or -r must be specified" and the usage, exit 1.
    let out = run("uftpproxyd", &[], &dir);
    assert_ran(&out, 1, "uftpproxyd");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("one of -s, -c or -r") && stderr.contains("usage: uftpproxyd {"),
        "{stderr}"
    );
    // uftp_keymgt 4.10.2: no key file to list, nothing said, exit 0.
    let out = run("uftp_keymgt", &[], &dir);
    assert_ran(&out, 0, "uftp_keymgt");
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // uftpdump: clap's usage error.
    let out = run("uftpdump", &[], &dir);
    assert_ran(&out, 2, "uftpdump");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Usage: uftpdump"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// uftpd's and uftpproxyd's usage on an unknown option names what 4.10.2's omits or ours once
/// did (`-A`, `-i`) and leaves out what this version refuses by name (`-c`, `-m`).
#[test]
fn daemon_usage_names_every_option_they_carry_out() {
    let dir = scratch("usage");
    let out = run("uftpd", &["-Z"], &dir);
    assert_ran(&out, 1, "uftpd -Z");
    let stderr = text(&out.stderr);
    let words: Vec<&str> = stderr.split_whitespace().collect();
    for s in ["-A", "-i", "-T", "-F", "-s", "-R", "--json", "--allow-weak"] {
        assert!(words.contains(&s), "uftpd's usage lacks {s}:\n{stderr}");
    }
    for s in ["-c", "-m"] {
        assert!(!words.contains(&s), "uftpd's usage names {s}:\n{stderr}");
    }
    let out = run("uftpproxyd", &["-c", "-Z"], &dir);
    assert_ran(&out, 1, "uftpproxyd -c -Z");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("[ --allow-weak ]"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
