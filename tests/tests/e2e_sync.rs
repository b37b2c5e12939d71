//! Sync mode (`uftp -z`) and sync preview (`-Z`) in real sessions, each host in its own network
//! namespace: our `uftpd` (host 1) and uftpd 4.10.2 (host 2) hold the same older, same, newer
//! and missing copies of four files; our `uftp` and uftp 4.10.2 send them in turn.
//!
//! - `-z`: each receiver keeps the copies as new as the sender's (same time and size, or newer),
//!   replaces the older one and receives the missing one, whichever sender; both receivers'
//!   `-F` lines agree, and so do both senders' `-S` lines (`copy`, `overwritten`, `skipped`).
//! - `-Z`: nothing on either receiver changes, and both senders' `-S` lines say what `-z` would
//!   have done.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, write_pattern};

const SENDER_ID: &str = "0x0A5D0001";
/// The sender's files' modification time.
const MTIME: u64 = 1_700_000_000;

fn uid(i: usize) -> String {
    format!("0x0D0000{i:02X}")
}

fn set_mtime(path: &Path, secs: u64) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

fn mtime(path: &Path) -> u64 {
    fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The sender's four files, all of time [`MTIME`].
fn sources(bed: &Testbed) -> Vec<PathBuf> {
    let src = bed.path("src");
    fs::create_dir_all(&src).unwrap();
    ["same.bin", "old.bin", "newer.bin", "new.bin"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let p = src.join(name);
            write_pattern(&p, 20_000 + 1000 * i, i as u64 + 1);
            set_mtime(&p, MTIME);
            p
        })
        .collect()
}

/// Fills `dest` afresh: `same.bin` as sent, `old.bin` other bytes an hour older, `newer.bin`
/// other bytes a second newer, no `new.bin`.
fn prepare(dest: &Path, src: &Path) {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest).unwrap();
    fs::copy(src.join("same.bin"), dest.join("same.bin")).unwrap();
    set_mtime(&dest.join("same.bin"), MTIME);
    write_pattern(&dest.join("old.bin"), 5000, 99);
    set_mtime(&dest.join("old.bin"), MTIME - 3600);
    write_pattern(&dest.join("newer.bin"), 7000, 98);
    set_mtime(&dest.join("newer.bin"), MTIME + 1);
}

/// What a destination holds: (name, size, mtime, bytes).
fn snapshot(dest: &Path) -> Vec<(String, u64, u64, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dest)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let data = fs::read(&p).unwrap();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                data.len() as u64,
                mtime(&p),
                data,
            )
        })
        .collect();
    v.sort();
    v
}

fn entry<'a>(
    snap: &'a [(String, u64, u64, Vec<u8>)],
    name: &str,
) -> Option<&'a (String, u64, u64, Vec<u8>)> {
    snap.iter().find(|e| e.0 == name)
}

/// A status line with what changes from run to run (times, speeds, session ID) replaced.
fn normalize(line: &str) -> String {
    let mut f: Vec<String> = line.split(';').map(str::to_string).collect();
    match f[0].as_str() {
        "RESULT" if f.len() >= 7 && f[1].contains('/') => {
            f[1] = "TIME".into();
            f[3] = "SESSION".into();
        }
        "RESULT" if f.len() == 6 && f[5].ends_with("KB/s") => f[5] = "SPEED".into(),
        "STATS" if f.len() == 8 => {
            f[6] = "T".into();
            f[7] = "SPEED".into();
        }
        "CONNECT" if f.len() >= 6 => {
            f[1] = "TIME".into();
            f[3] = "SESSION".into();
        }
        _ => {}
    }
    f.join(";")
}

fn lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(normalize)
        .collect();
    v.sort();
    v
}

struct Bed {
    bed: Testbed,
    receivers: Vec<Proc>,
    src: Vec<PathBuf>,
}

impl Bed {
    /// Host 1: our uftpd; host 2: uftpd 4.10.2; both with `-F`.
    fn start() -> Bed {
        let bed = Testbed::new(3);
        let src = sources(&bed);
        let mut receivers = Vec::new();
        for i in 1..=2 {
            let h = bed.host(i).clone();
            let dest = bed.path(&format!("dest{i}"));
            prepare(&dest, &bed.path("src"));
            let mut cmd = if i == 1 {
                h.command(our_binary("uftpd"))
            } else {
                let mut c = h.command("uftpd");
                c.arg("-q");
                c
            };
            cmd.args(["-d", "-x", "2", "-U", &uid(i), "-I", &h.ifname, "-D"])
                .arg(&dest)
                .arg("-F")
                .arg(bed.path(&format!("rx{i}.status")));
            receivers.push(Proc::spawn(
                &format!("uftpd{i}"),
                cmd,
                &bed.path(&format!("uftpd{i}.log")),
            ));
        }
        let t0 = Instant::now();
        while !receivers[0].log_text().contains("listening on port")
            || !receivers[1].log_text().contains("Loaded")
        {
            assert!(t0.elapsed() < Duration::from_secs(10));
            sleep(Duration::from_millis(20));
        }
        Bed {
            bed,
            receivers,
            src,
        }
    }

    fn dest(&self, i: usize) -> PathBuf {
        self.bed.path(&format!("dest{i}"))
    }

    /// Runs `prog` (ours or Debian's uftp) with `flag` (-z or -Z) and `-S tag.status`.
    fn send(&self, prog: &Path, tag: &str, flag: &str) -> String {
        let h = self.bed.host(0);
        let mut cmd = h.command(prog);
        cmd.args(["-U", SENDER_ID, "-I", &h.ifname, "-H"])
            .arg(format!("{},{}", uid(1), uid(2)))
            .args(["-R", "100000", "-s", "10", "-r", "0.1:0.01:1", flag, "-S"])
            .arg(self.bed.path(&format!("{tag}.status")))
            .args(&self.src);
        let mut p = Proc::spawn(tag, cmd, &self.bed.path(&format!("{tag}.log")));
        let code = p.wait(Duration::from_secs(30));
        assert_eq!(
            code,
            0,
            "{tag}: exit {code}\n{}\n{}",
            p.log_text(),
            self.logs()
        );
        p.log_text()
    }

    fn logs(&self) -> String {
        self.receivers
            .iter()
            .map(|r| format!("--- {}:\n{}", r.name, r.log_text()))
            .collect()
    }

    /// Waits until each receiver's status file holds `n` RESULT lines.
    fn wait_results(&self, n: usize) {
        let t0 = Instant::now();
        loop {
            let counts: Vec<usize> = (1..=2)
                .map(|i| {
                    fs::read_to_string(self.bed.path(&format!("rx{i}.status")))
                        .unwrap_or_default()
                        .matches("RESULT;")
                        .count()
                })
                .collect();
            if counts.iter().all(|&c| c >= n) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "RESULT lines {counts:?}, {n} expected\n{}",
                self.logs()
            );
            sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn sync_mode_with_our_programs_and_uftp_4_10_2() {
    let _lock = serial();
    let g = Bed::start();
    let src = g.bed.path("src");
    let before: Vec<_> = (1..=2).map(|i| snapshot(&g.dest(i))).collect();
    for (prog, tag) in [
        (our_binary("uftp"), "ours"),
        (PathBuf::from("uftp"), "debian"),
    ] {
        for i in 1..=2 {
            prepare(&g.dest(i), &src);
        }
        let out = g.send(&prog, tag, "-z");
        for i in 1..=2 {
            let d = g.dest(i);
            let after = snapshot(&d);
            let what = format!("{tag} uftp -z to receiver {i}:\n{out}\n{}", g.logs());
            // Kept: the same copy and the newer one.
            for name in ["same.bin", "newer.bin"] {
                assert!(
                    entry(&after, name) == entry(&before[i - 1], name),
                    "{name} changed, {what}"
                );
            }
            // Replaced and received: the sender's bytes and time.
            for name in ["old.bin", "new.bin"] {
                assert_eq!(
                    fs::read(d.join(name)).unwrap(),
                    fs::read(src.join(name)).unwrap(),
                    "{name}, {what}"
                );
                assert_eq!(mtime(&d.join(name)), MTIME, "{name}, {what}");
            }
            assert_eq!(after.len(), 4, "{what}");
        }
    }
    g.wait_results(8);
    let ours = lines(&g.bed.path("ours.status"));
    let theirs = lines(&g.bed.path("debian.status"));
    assert_eq!(ours, theirs, "our uftp -z -S against uftp 4.10.2's");
    for i in 1..=2 {
        for line in [
            format!("RESULT;{};same.bin;19KB;skipped;", uid(i)),
            format!("RESULT;{};old.bin;20KB;overwritten;SPEED", uid(i)),
            format!("RESULT;{};newer.bin;21KB;skipped;", uid(i)),
            format!("RESULT;{};new.bin;22KB;copy;SPEED", uid(i)),
        ] {
            assert!(ours.contains(&line), "{line} missing: {ours:?}");
        }
    }
    let ours = lines(&g.bed.path("rx1.status"));
    let theirs = lines(&g.bed.path("rx2.status"));
    assert_eq!(
        ours, theirs,
        "our uftpd -F against uftpd 4.10.2's in sync mode"
    );
    for (name, kb, status) in [
        ("same.bin", 19, "skipped"),
        ("old.bin", 20, "overwritten"),
        ("newer.bin", 21, "skipped"),
        ("new.bin", 22, "copied"),
    ] {
        let line = format!(
            "RESULT;TIME;{};SESSION;{name};{kb}KB;{status}",
            &SENDER_ID[2..]
        );
        assert_eq!(
            ours.iter().filter(|l| **l == line).count(),
            2,
            "{line}: {ours:?}"
        );
    }
}

#[test]
fn sync_preview_changes_nothing_and_reports_what_sync_would_do() {
    let _lock = serial();
    let g = Bed::start();
    let before: Vec<_> = (1..=2).map(|i| snapshot(&g.dest(i))).collect();
    for (prog, tag) in [
        (our_binary("uftp"), "ours"),
        (PathBuf::from("uftp"), "debian"),
    ] {
        let out = g.send(&prog, tag, "-Z");
        for i in 1..=2 {
            assert_eq!(
                snapshot(&g.dest(i)),
                before[i - 1],
                "{tag} uftp -Z changed receiver {i}:\n{out}\n{}",
                g.logs()
            );
        }
    }
    let ours = lines(&g.bed.path("ours.status"));
    let theirs = lines(&g.bed.path("debian.status"));
    assert_eq!(ours, theirs, "our uftp -Z -S against uftp 4.10.2's");
    for i in 1..=2 {
        for line in [
            format!("RESULT;{};same.bin;19KB;skipped;", uid(i)),
            format!("RESULT;{};old.bin;20KB;overwritten;SPEED", uid(i)),
            format!("RESULT;{};new.bin;22KB;copy;SPEED", uid(i)),
        ] {
            assert!(ours.contains(&line), "{line} missing: {ours:?}");
        }
    }
    g.wait_results(8);
    let ours = lines(&g.bed.path("rx1.status"));
    let theirs = lines(&g.bed.path("rx2.status"));
    assert_eq!(
        ours, theirs,
        "our uftpd -F against uftpd 4.10.2's in sync preview"
    );
}

/// A tmpfs of `kib` KiB mounted at `dir` for the test's length.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, kib: u64) -> SmallFs {
        fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs on {}", dir.display());
        SmallFs(dir.to_path_buf())
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn metafiles_delete_inside_the_destination_only_and_report_free_space() {
    let _lock = serial();
    // Host 1: our uftpd on a 1 MiB file system; host 2: uftpd 4.10.2.
    let bed = Testbed::new(3);
    let small = SmallFs::mount(&bed.path("dest1"), 1024);
    let outside = bed.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("victim"), b"keep").unwrap();
    let mut receivers = Vec::new();
    for i in 1..=2 {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(dest.join("tree/sub")).unwrap();
        fs::write(dest.join("old.txt"), b"old").unwrap();
        fs::write(dest.join("tree/sub/f"), b"f").unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("escape")).unwrap();
        let mut cmd = if i == 1 {
            h.command(our_binary("uftpd"))
        } else {
            let mut c = h.command("uftpd");
            c.arg("-q");
            c
        };
        cmd.args(["-d", "-x", "2", "-U", &uid(i), "-I", &h.ifname, "-D"])
            .arg(&dest);
        receivers.push(Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        ));
    }
    let t0 = Instant::now();
    while !receivers[0].log_text().contains("listening on port")
        || !receivers[1].log_text().contains("Loaded")
    {
        assert!(t0.elapsed() < Duration::from_secs(10));
        sleep(Duration::from_millis(20));
    }
    let h = bed.host(0);
    let logs = |receivers: &[Proc]| -> String {
        receivers
            .iter()
            .map(|r| format!("--- {}:\n{}", r.name, r.log_text()))
            .collect()
    };
    // Both ask for the free space and delete an item; ours (with -E, so that the name keeps
    // its directory) also tries a path through a symlink that leads outside.
    for (prog, tag, items) in [
        (
            our_binary("uftp"),
            "ours",
            vec![
                "-E",
                "/srv",
                "@FREESPACE",
                "@DELETE:/srv/old.txt",
                "@DELETE:/srv/escape/victim",
            ],
        ),
        (
            PathBuf::from("uftp"),
            "debian",
            vec!["@FREESPACE", "@DELETE:tree"],
        ),
    ] {
        let mut cmd = h.command(&prog);
        cmd.args(["-U", SENDER_ID, "-I", &h.ifname, "-H"])
            .arg(format!("{},{}", uid(1), uid(2)))
            .args(["-R", "100000", "-s", "10", "-r", "0.1:0.01:1", "-S"])
            .arg(bed.path(&format!("{tag}.status")))
            .args(items);
        let mut p = Proc::spawn(tag, cmd, &bed.path(&format!("{tag}.log")));
        let code = p.wait(Duration::from_secs(30));
        assert_eq!(
            code,
            0,
            "{tag}: exit {code}\n{}\n{}",
            p.log_text(),
            logs(&receivers)
        );
    }
    for i in 1..=2 {
        let dest = bed.path(&format!("dest{i}"));
        assert!(
            !dest.join("old.txt").exists(),
            "receiver {i}:\n{}",
            logs(&receivers)
        );
        assert!(
            !dest.join("tree").exists(),
            "receiver {i}:\n{}",
            logs(&receivers)
        );
    }
    assert_eq!(fs::read(outside.join("victim")).unwrap(), b"keep");
    let log1 = receivers[0].log_text();
    assert!(
        log1.contains("escape/victim") && log1.contains("leads outside"),
        "{log1}"
    );
    // Both senders report each receiver's free space as uftp 4.10.2 writes it: the line
    // FREESPACE;.;BYTES right after the receiver's RESULT for the query. Receiver 1's is the
    // 1 MiB file system's.
    for tag in ["ours", "debian"] {
        let text = fs::read_to_string(bed.path(&format!("{tag}.status"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for i in 1..=2 {
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("RESULT;{};.;0KB;copy;", uid(i))))
                .unwrap_or_else(|| panic!("{tag}: no RESULT for the query\n{text}"));
            let f: Vec<&str> = lines[at + 1].split(';').collect();
            assert_eq!(f[..2], ["FREESPACE", "."], "{tag}:\n{text}");
            let bytes: u64 = f[2].parse().unwrap();
            if i == 1 {
                assert!(bytes > 900 * 1024 && bytes <= 1024 * 1024, "{tag}:\n{text}");
            } else {
                assert!(bytes > 1024 * 1024, "{tag}:\n{text}");
            }
        }
    }
    drop(receivers);
    drop(small);
}

#[test]
fn a_file_larger_than_the_free_space_is_rejected_and_nothing_is_left() {
    let _lock = serial();
    let bed = Testbed::new(2);
    let dest = bed.path("dest");
    let small = SmallFs::mount(&dest, 256);
    let src = bed.path("src");
    fs::create_dir_all(&src).unwrap();
    write_pattern(&src.join("big.bin"), 400_000, 1);
    write_pattern(&src.join("small.txt"), 1000, 2);
    let h = bed.host(1).clone();
    let mut cmd = h.command(our_binary("uftpd"));
    cmd.args(["-d", "-x", "2", "-U", &uid(1), "-I", &h.ifname, "-D"])
        .arg(&dest);
    let mut rx = Proc::spawn("uftpd", cmd, &bed.path("uftpd.log"));
    rx.wait_for_line("listening on port", Duration::from_secs(10));
    let s = bed.host(0);
    let mut codes = Vec::new();
    let mut out = String::new();
    for (prog, tag) in [
        (PathBuf::from("uftp"), "debian"),
        (our_binary("uftp"), "ours"),
    ] {
        let _ = fs::remove_file(dest.join("small.txt"));
        let mut cmd = s.command(prog);
        cmd.args(["-U", SENDER_ID, "-I", &s.ifname, "-H", &uid(1)])
            .args(["-R", "100000", "-s", "10", "-r", "0.1:0.01:1", "-S"])
            .arg(bed.path(&format!("{tag}.status")))
            .arg(src.join("big.bin"))
            .arg(src.join("small.txt"));
        let mut p = Proc::spawn(tag, cmd, &bed.path(&format!("{tag}.log")));
        codes.push(p.wait(Duration::from_secs(30)));
        out = p.log_text();
    }
    let rlog = rx.log_text();
    // The session goes on past the rejected file, and our uftp exits as 4.10.2's does.
    assert_eq!(codes[1], codes[0], "{out}\n{rlog}");
    let names: Vec<String> = fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["small.txt"], "{rlog}");
    assert!(
        rlog.contains("big.bin: not enough disk space (400000 bytes needed"),
        "{rlog}"
    );
    assert!(
        out.contains(&format!("client {} rejected file 1 (big.bin)", uid(1))),
        "{out}"
    );
    let status = fs::read_to_string(bed.path("ours.status")).unwrap();
    assert!(
        status.contains(&format!("RESULT;{};big.bin;390KB;rejected;\n", uid(1))),
        "{status}"
    );
    assert_eq!(
        lines(&bed.path("ours.status")),
        lines(&bed.path("debian.status"))
    );
    drop(rx);
    drop(small);
}

#[test]
fn uftp_rolls_its_log_with_g_and_n() {
    // A log already past -g 1 rolls at the end of uftp's first line, as uftp 4.10.2 rolls:
    // log.1 moves to log.2, the log to log.1, and a new log starts; -n 2 keeps two.
    let dir = std::env::temp_dir().join(format!("uftp-rs-logroll-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join("uftp.log");
    let archive = |n: u32| dir.join(format!("uftp.log.{n}"));
    fs::write(&log, "x".repeat(1_000_001) + "\n").unwrap();
    fs::write(archive(1), "older\n").unwrap();
    fs::write(archive(2), "oldest\n").unwrap();
    // One item outside the -E base: one warning line in the log, then nothing to send.
    let out = std::process::Command::new(our_binary("uftp"))
        .args([
            "-L",
            log.to_str().unwrap(),
            "-g",
            "1",
            "-n",
            "2",
            "-E",
            "/srv",
        ])
        .arg("/etc/hostname")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let one = fs::read_to_string(archive(1)).unwrap();
    assert!(
        one.starts_with("xxx") && one.contains("not under any -E base directory"),
        "{}",
        &one[one.len() - 200..]
    );
    assert_eq!(fs::read_to_string(archive(2)).unwrap(), "older\n");
    assert!(!archive(3).exists(), "more than -n archives");
    assert_eq!(fs::read_to_string(&log).unwrap(), "", "a new log starts");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn backup_dir_keeps_the_file_a_session_from_uftp_4_10_2_replaces() {
    let _lock = serial();
    let bed = Testbed::new(2);
    let (dest, backup) = (bed.path("dest"), bed.path("backup"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&backup).unwrap();
    fs::write(dest.join("f.bin"), b"the old copy").unwrap();
    let src = bed.path("f.bin");
    write_pattern(&src, 30_000, 5);
    let h = bed.host(1).clone();
    let mut cmd = h.command(our_binary("uftpd"));
    cmd.args(["-d", "-x", "2", "-U", &uid(1), "-I", &h.ifname, "-D"])
        .arg(&dest)
        .arg("-A")
        .arg(&backup);
    let mut rx = Proc::spawn("uftpd", cmd, &bed.path("uftpd.log"));
    rx.wait_for_line("listening on port", Duration::from_secs(10));
    let s = bed.host(0);
    let mut cmd = s.command("uftp");
    cmd.args(["-U", SENDER_ID, "-I", &s.ifname, "-H", &uid(1)])
        .args(["-R", "100000", "-s", "10", "-r", "0.1:0.01:1"])
        .arg(&src);
    let mut p = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = p.wait(Duration::from_secs(30));
    let rlog = rx.log_text();
    assert_eq!(code, 0, "{}\n{rlog}", p.log_text());
    assert_eq!(
        fs::read(dest.join("f.bin")).unwrap(),
        fs::read(&src).unwrap()
    );
    // backup/YYYYMMDD/HHMMSS/<full path of the old file>
    let day = fs::read_dir(&backup)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let time = fs::read_dir(&day).unwrap().next().unwrap().unwrap().path();
    let dest_real = fs::canonicalize(&dest).unwrap();
    let kept = time
        .join(dest_real.strip_prefix("/").unwrap())
        .join("f.bin");
    assert_eq!(fs::read(&kept).unwrap(), b"the old copy", "{rlog}");
    assert!(rlog.contains("backed up"), "{rlog}");
    drop(rx);
}

#[test]
fn with_t_and_i_each_file_moves_in_and_the_script_runs_per_file() {
    let _lock = serial();
    let bed = Testbed::new(2);
    let (dest, temp) = (bed.path("dest"), bed.path("temp"));
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&temp).unwrap();
    let src = bed.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    write_pattern(&src.join("d/a.bin"), 20_000, 1);
    write_pattern(&src.join("d/b.bin"), 30_000, 2);
    // The script records its arguments and whether the file was already in place.
    let calls = bed.path("calls");
    let script = bed.path("post.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nshift 2\nfor f in \"$@\"; do [ -f \"$f\" ] && echo \"$f\" >> '{}'; done\n",
            calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let h = bed.host(1).clone();
    let mut cmd = h.command(our_binary("uftpd"));
    cmd.args(["-d", "-x", "2", "-U", &uid(1), "-I", &h.ifname, "-i", "-D"])
        .arg(&dest)
        .arg("-T")
        .arg(&temp)
        .arg("-s")
        .arg(&script);
    let mut rx = Proc::spawn("uftpd", cmd, &bed.path("uftpd.log"));
    rx.wait_for_line("listening on port", Duration::from_secs(10));
    let s = bed.host(0);
    let mut cmd = s.command("uftp");
    cmd.args(["-U", SENDER_ID, "-I", &s.ifname, "-H", &uid(1)])
        .args(["-R", "100000", "-s", "10", "-r", "0.1:0.01:1"])
        .arg(src.join("d"));
    let mut p = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = p.wait(Duration::from_secs(30));
    let rlog = rx.log_text();
    assert_eq!(code, 0, "{}\n{rlog}", p.log_text());
    let t0 = Instant::now();
    let want: Vec<String> = ["a.bin", "b.bin"]
        .iter()
        .map(|n| dest.join("d").join(n).display().to_string())
        .collect();
    loop {
        let mut got: Vec<String> = fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        got.sort();
        if got == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "calls {got:?}\n{rlog}"
        );
        sleep(Duration::from_millis(50));
    }
    for n in ["a.bin", "b.bin"] {
        assert_eq!(
            fs::read(dest.join("d").join(n)).unwrap(),
            fs::read(src.join("d").join(n)).unwrap()
        );
    }
    drop(rx);
}
