//! Restarts (digest §1.6): `uftp -f` keeps a restart file while it runs, `uftp -F` re-runs the
//! session for the clients that did not finish, and receivers with `-T` resume what they had.
//! Each receiver and the sender in its own network namespace.
//!
//! - Our `uftp -f` is killed (SIGKILL) half-way through a 200 MiB file to three of our
//!   `uftpd -T`; `uftp -F` with the restart file it left must send at most 55% of the file's
//!   blocks (its own FILESEG count), and every copy must be byte-identical.
//! - One of two `uftpd -T` is killed (SIGKILL) mid-file and started again; the sender finishes
//!   with the other and leaves a restart file for it; `uftp -F` sends it only the blocks its
//!   bitmap sidecar did not record, and every block the sidecar recorded was on disk.
//! - Interop with uftp 4.10.2: Debian's `uftp -f` / `uftp -F` to our `uftpd -T` (our receiver
//!   killed mid-file), and our `uftp -F` to Debian's `uftpd -T` (our sender killed mid-file).
//!
//! Needs root, `ip`, `nft`, `tcpdump` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

const MIB: u64 = 1 << 20;
const BLOCKSIZE: u64 = 1300;

fn uid(i: usize) -> String {
    format!("0x0D0000{i:02X}")
}

fn blocks_of(size: u64) -> u64 {
    size.div_ceil(BLOCKSIZE)
}

/// A receiver: ours or Debian's, with `-T temp` and `-D dest`.
struct Rx {
    proc: Proc,
    temp: PathBuf,
    dest: PathBuf,
}

fn start_uftpd(bed: &Testbed, i: usize, ours: bool, run: u32) -> Rx {
    let h = bed.host(i);
    let temp = bed.path(&format!("temp{i}"));
    let dest = bed.path(&format!("dest{i}"));
    fs::create_dir_all(&temp).unwrap();
    fs::create_dir_all(&dest).unwrap();
    let (name, mut cmd, ready) = if ours {
        let mut c = h.command(our_binary("uftpd"));
        c.args(["-x", "2", "-B", "8388608"]);
        (format!("our uftpd{i}"), c, "listening on port")
    } else {
        let mut c = h.command("uftpd");
        c.args(["-x", "2", "-B", "8388608"]);
        (format!("debian uftpd{i}"), c, "Loaded")
    };
    cmd.args(["-d", "-U", &uid(i), "-I", &h.ifname, "-T"])
        .arg(&temp)
        .arg("-D")
        .arg(&dest);
    let mut proc = Proc::spawn(&name, cmd, &bed.path(&format!("uftpd{i}-{run}.log")));
    let t0 = Instant::now();
    while !proc.log_text().contains(ready) {
        assert!(proc.running(), "{name} exited:\n{}", proc.log_text());
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{name} did not start:\n{}",
            proc.log_text()
        );
        sleep(Duration::from_millis(20));
    }
    Rx { proc, temp, dest }
}

/// Our `uftp` on host 0, in the scratch directory (where its restart file goes).
fn our_uftp(bed: &Testbed, args: &[&str], log: &str) -> Proc {
    let h = bed.host(0);
    let mut cmd = h.command(our_binary("uftp"));
    cmd.current_dir(&bed.dir)
        .args(["-U", "0x0A4D0001", "-I", &h.ifname])
        .args(args);
    Proc::spawn("our uftp", cmd, &bed.path(log))
}

/// Debian's `uftp` on host 0, in the scratch directory.
fn debian_uftp(bed: &Testbed, args: &[&str], log: &str) -> Proc {
    let h = bed.host(0);
    let mut cmd = h.command("uftp");
    cmd.current_dir(&bed.dir).args(["-I", &h.ifname]).args(args);
    Proc::spawn("debian uftp", cmd, &bed.path(log))
}

/// Bytes on disk (allocated) of the largest regular file under `dir`: how far a receiver got
/// (both receivers write into sparse or growing files).
fn written(dir: &Path) -> u64 {
    let mut most = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            most = most.max(written(&e.path()));
        } else if m.is_file() && !e.file_name().to_string_lossy().ends_with(".state") {
            most = most.max(m.blocks() * 512);
        }
    }
    most
}

/// Waits until `dir` holds `bytes` of the file (at most `limit`), with `sender` still running.
fn wait_written(dir: &Path, bytes: u64, sender: &mut Proc, limit: Duration) {
    let t0 = Instant::now();
    while written(dir) < bytes {
        assert!(
            sender.running(),
            "{} ended early:\n{}",
            sender.name,
            sender.log_text()
        );
        assert!(
            t0.elapsed() < limit,
            "the transfer did not reach {bytes} bytes in {limit:?} ({} written):\n{}",
            written(dir),
            sender.log_text()
        );
        sleep(Duration::from_millis(10));
    }
}

/// A progress line with the time since `t0`, for the test's output.
fn mark(t0: Instant, what: &str) {
    eprintln!("[{:6.1} s] {what}", t0.elapsed().as_secs_f64());
}

fn wait_log(p: &Proc, text: &str, limit: Duration) {
    let t0 = Instant::now();
    while !p.log_text().contains(text) {
        assert!(
            t0.elapsed() < limit,
            "{} did not log {text:?} in {limit:?}:\n{}",
            p.name,
            p.log_text()
        );
        sleep(Duration::from_millis(50));
    }
}

/// The restart file our or Debian's `uftp` left in `dir`.
fn restart_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("_group_") && n.ends_with("_restart")
        })
        .unwrap_or_else(|| panic!("no restart file in {}", dir.display()))
}

/// FILESEGs our `uftp` sent, from its summary line.
fn filesegs_sent(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("Session done:"))
        .unwrap_or_else(|| panic!("no summary line:\n{log}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words
        .iter()
        .position(|w| w.starts_with("FILESEGs"))
        .expect("FILESEG count");
    words[i - 1].parse().expect("a number")
}

fn assert_copy(path: &Path, want: &str, logs: &dyn Fn() -> String) {
    assert!(path.is_file(), "{} missing\n{}", path.display(), logs());
    assert_eq!(sha256(path), want, "{} differs\n{}", path.display(), logs());
}

/// Nothing left of the session in a temp directory.
fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{} holds {left:?}", dir.display());
}

#[test]
fn our_sender_killed_at_half_restarts_sending_at_most_55_percent() {
    let _lock = serial();
    let t_start = Instant::now();
    let bed = Testbed::new(4);
    let size = 200 * MIB;
    let src = bed.path("big.bin");
    write_pattern(&src, size as usize, 41);
    let want = sha256(&src);
    eprintln!("set up in {:?}", t_start.elapsed());
    let mut rx: Vec<Rx> = (1..=3).map(|i| start_uftpd(&bed, i, true, 0)).collect();
    let hosts = (1..=3).map(uid).collect::<Vec<_>>().join(",");
    // 150 Mbit/s: the 200 MiB file takes about 11 s, and three receivers on a busy machine
    // keep up (what they lose before the kill is sent again too).
    let common = ["-R", "150000", "-r", "0.05:0.01:1", "-x", "2"];
    let mut first = our_uftp(
        &bed,
        &[&common[..], &["-f", "-H", &hosts, src.to_str().unwrap()]].concat(),
        "uftp-1.log",
    );
    // Half the file on the slowest of the three (the sender is a little further on).
    let t0 = Instant::now();
    for r in &rx {
        wait_written(&r.temp, size / 2, &mut first, Duration::from_secs(60));
    }
    first.signal("KILL");
    assert_eq!(
        first.wait(Duration::from_secs(5)),
        -1,
        "uftp died of SIGKILL"
    );
    let killed_at = t0.elapsed();
    for r in &rx {
        wait_log(&r.proc, "Transfer timed out", Duration::from_secs(20));
    }
    let restart = restart_file(&bed.dir);
    let text = fs::read_to_string(&restart).unwrap();
    assert!(
        text.contains("\"state\": \"running\"") && text.contains("uftp-rs restart"),
        "{text}"
    );
    for i in 1..=3 {
        assert!(text.contains(&uid(i)), "{} not listed:\n{text}", uid(i));
    }
    let logs = || {
        rx.iter()
            .map(|r| format!("--- {}:\n{}", r.proc.name, r.proc.log_text()))
            .collect::<String>()
    };
    // The re-run: files and clients from the restart file.
    let mut second = our_uftp(
        &bed,
        &[&common[..], &["-f", "-F", restart.to_str().unwrap()]].concat(),
        "uftp-2.log",
    );
    let t2 = Instant::now();
    let code = second.wait(Duration::from_secs(90));
    let log = second.log_text();
    assert_eq!(code, 0, "uftp -F failed:\n{log}\n{}", logs());
    eprintln!("the restart took {:?}", t2.elapsed());
    let sent = filesegs_sent(&log);
    let blocks = blocks_of(size);
    eprintln!(
        "killed after {killed_at:?}; the restart sent {sent} of {blocks} blocks ({:.1}%)",
        100.0 * sent as f64 / blocks as f64
    );
    assert!(
        sent * 100 <= blocks * 55,
        "the restart sent {sent} of {blocks} blocks:\n{log}"
    );
    assert!(log.contains("instance 1 for 3 clients"), "{log}");
    for r in &rx {
        assert_copy(&r.dest.join("big.bin"), &want, &logs);
        assert_empty(&r.temp);
        assert!(
            r.proc.log_text().contains("Resuming:"),
            "{}:\n{}",
            r.proc.name,
            r.proc.log_text()
        );
    }
    assert!(!restart.exists(), "every client finished: no restart file");
    for r in &mut rx {
        assert!(r.proc.running(), "{} died", r.proc.name);
    }
}

/// The sidecar of our receiver's partial `big.bin` under `temp`: its block map.
fn sidecar_map(temp: &Path) -> Vec<u8> {
    fn find(dir: &Path) -> Option<PathBuf> {
        for e in fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            } else if p.to_string_lossy().ends_with(".big.bin.uftp-part.state") {
                return Some(p);
            }
        }
        None
    }
    let path = find(temp).unwrap_or_else(|| panic!("no sidecar under {}", temp.display()));
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let hex = v["map"].as_str().expect("map");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Every block the map marks holds the source's bytes in the partial file under `temp`;
/// returns how many it marks.
fn check_marked_blocks(map: &[u8], temp: &Path, src: &Path, size: u64) -> u64 {
    let part = fs::read_dir(temp)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(".big.bin.uftp-part"))
        .find(|p| p.is_file())
        .expect("the partial file");
    let (have, want) = (fs::read(&part).unwrap(), fs::read(src).unwrap());
    assert_eq!(have.len() as u64, size);
    let mut marked = 0;
    for b in 0..blocks_of(size) {
        if map[(b / 8) as usize] & (1 << (b % 8)) == 0 {
            continue;
        }
        marked += 1;
        let at = (b * BLOCKSIZE) as usize;
        let end = (at + BLOCKSIZE as usize).min(want.len());
        assert!(
            have[at..end] == want[at..end],
            "the sidecar marks block {b}, which is not on disk"
        );
    }
    marked
}

#[test]
fn our_receiver_killed_mid_file_resumes_with_only_the_missing_blocks() {
    let _lock = serial();
    let bed = Testbed::new(3);
    let size = 100 * MIB;
    let blocks = blocks_of(size);
    let src = bed.path("big.bin");
    write_pattern(&src, size as usize, 42);
    let want = sha256(&src);
    let mut rx: Vec<Rx> = (1..=2).map(|i| start_uftpd(&bed, i, true, 0)).collect();
    let hosts = format!("{},{}", uid(1), uid(2));
    let common = ["-R", "100000", "-r", "0.05:0.01:1", "-x", "2"];
    let mut first = our_uftp(
        &bed,
        &[&common[..], &["-f", "-H", &hosts, src.to_str().unwrap()]].concat(),
        "uftp-1.log",
    );
    wait_written(
        &rx[0].temp,
        size * 6 / 10,
        &mut first,
        Duration::from_secs(60),
    );
    rx[0].proc.signal("KILL");
    assert_eq!(rx[0].proc.wait(Duration::from_secs(5)), -1);
    // What the killed receiver's sidecar records is on disk, and recent (written at most a
    // second before the kill).
    let map = sidecar_map(&rx[0].temp);
    let kept = check_marked_blocks(&map, &rx[0].temp, &src, size);
    eprintln!("the killed receiver's sidecar records {kept} of {blocks} blocks");
    assert!(kept * 100 >= blocks * 40, "{kept} of {blocks}");
    // Started again while the sender finishes with the other one.
    rx[0] = start_uftpd(&bed, 1, true, 1);
    let code = first.wait(Duration::from_secs(90));
    let log = first.log_text();
    assert_eq!(code, 9, "a client was lost:\n{log}");
    assert!(log.contains("restart file"), "{log}");
    assert_copy(&rx[1].dest.join("big.bin"), &want, &|| log.clone());
    let restart = restart_file(&bed.dir);
    let text = fs::read_to_string(&restart).unwrap();
    assert!(text.contains("\"state\": \"finished\""), "{text}");
    assert!(text.contains(&uid(1)) && !text.contains(&uid(2)), "{text}");
    let mut second = our_uftp(
        &bed,
        &[&common[..], &["-F", restart.to_str().unwrap()]].concat(),
        "uftp-2.log",
    );
    let code = second.wait(Duration::from_secs(90));
    let log = second.log_text();
    let rlog = rx[0].proc.log_text();
    assert_eq!(code, 0, "uftp -F failed:\n{log}\n{rlog}");
    let sent = filesegs_sent(&log);
    eprintln!(
        "the restart sent {sent} blocks; {} were missing",
        blocks - kept
    );
    assert!(
        sent <= blocks - kept + blocks / 100,
        "sent {sent}, but only {} were missing:\n{log}",
        blocks - kept
    );
    assert!(rlog.contains(&format!("Resuming: {kept} blocks")), "{rlog}");
    assert_copy(&rx[0].dest.join("big.bin"), &want, &|| rlog.clone());
    assert_empty(&rx[0].temp);
}

/// Starts tcpdump on host 0 counting the FILESEGs (UFTP func 9) host 0 sends.
fn capture_filesegs(bed: &Testbed, name: &str) -> Proc {
    let h = bed.host(0);
    let pcap = bed.path(&format!("{name}.pcap"));
    let mut dump = h.command("tcpdump");
    // -Z root: Debian's tcpdump otherwise drops to its own user, who cannot write here; only
    // the headers are kept.
    dump.args([
        "-Z", "root", "-n", "-s", "64", "-B", "65536", "-i", &h.ifname, "-w",
    ])
    .arg(&pcap)
    .args(["udp", "and", "src", "host", &h.ipv4, "and", "udp[9] = 9"]);
    let p = Proc::spawn("tcpdump", dump, &bed.path(&format!("{name}.log")));
    wait_log(&p, "listening on", Duration::from_secs(10));
    p
}

/// The packets a capture matched, once tcpdump is stopped (its own count: the packets still
/// in its buffer when it stops are counted but not written).
fn captured(mut tcpdump: Proc) -> u64 {
    tcpdump.signal("INT");
    let _ = tcpdump.wait(Duration::from_secs(10));
    let log = tcpdump.log_text();
    let count = |what: &str| {
        log.lines()
            .find(|l| l.ends_with(what))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {what:?} in tcpdump's output: {log}"))
    };
    assert_eq!(
        count("packets dropped by kernel"),
        0,
        "the capture lost packets: {log}"
    );
    count("packets received by filter")
}

#[test]
fn debian_uftp_restarts_to_our_uftpd() {
    let _lock = serial();
    let t0 = Instant::now();
    let bed = Testbed::new(3);
    let size = 60 * MIB;
    let blocks = blocks_of(size);
    let src = bed.path("big.bin");
    write_pattern(&src, size as usize, 43);
    let want = sha256(&src);
    let mut rx: Vec<Rx> = (1..=2).map(|i| start_uftpd(&bed, i, true, 0)).collect();
    mark(t0, "receivers up");
    let hosts = format!("{},{}", uid(1), uid(2));
    let common = ["-R", "80000", "-r", "0.05", "-x", "2"];
    let mut first = debian_uftp(
        &bed,
        &[&common[..], &["-f", "-H", &hosts, src.to_str().unwrap()]].concat(),
        "uftp-1.log",
    );
    wait_written(&rx[0].temp, size / 2, &mut first, Duration::from_secs(60));
    rx[0].proc.signal("KILL");
    assert_eq!(rx[0].proc.wait(Duration::from_secs(5)), -1);
    let kept = check_marked_blocks(&sidecar_map(&rx[0].temp), &rx[0].temp, &src, size);
    rx[0] = start_uftpd(&bed, 1, true, 1);
    mark(t0, "receiver 1 killed and started again");
    let _ = first.wait(Duration::from_secs(120));
    let log = first.log_text();
    assert_copy(&rx[1].dest.join("big.bin"), &want, &|| log.clone());
    let restart = restart_file(&bed.dir);
    mark(t0, "first run over");
    let tcpdump = capture_filesegs(&bed, "restart");
    let mut second = debian_uftp(
        &bed,
        &[&common[..], &["-F", restart.to_str().unwrap()]].concat(),
        "uftp-2.log",
    );
    let _ = second.wait(Duration::from_secs(120));
    let log = second.log_text();
    let sent = captured(tcpdump);
    mark(t0, "restart over");
    let rlog = rx[0].proc.log_text();
    eprintln!(
        "Debian's restart sent {sent} FILESEGs; {} of {blocks} blocks were missing",
        blocks - kept
    );
    assert!(
        rlog.contains(&format!("Resuming: {kept} blocks")),
        "{log}\n{rlog}"
    );
    assert!(
        sent <= blocks - kept + blocks / 100,
        "sent {sent}, but only {} were missing:\n{log}\n{rlog}",
        blocks - kept
    );
    assert_copy(&rx[0].dest.join("big.bin"), &want, &|| {
        format!("{log}\n{rlog}")
    });
    assert_empty(&rx[0].temp);
}

#[test]
fn our_uftp_restarts_to_debian_uftpd() {
    let _lock = serial();
    let bed = Testbed::new(2);
    let size = 60 * MIB;
    let blocks = blocks_of(size);
    let src = bed.path("big.bin");
    write_pattern(&src, size as usize, 44);
    let want = sha256(&src);
    let rx = start_uftpd(&bed, 1, false, 0);
    let common = ["-R", "80000", "-r", "0.05:0.01:1", "-x", "2"];
    let mut first = our_uftp(
        &bed,
        &[&common[..], &["-f", "-H", &uid(1), src.to_str().unwrap()]].concat(),
        "uftp-1.log",
    );
    wait_written(&rx.temp, size / 2, &mut first, Duration::from_secs(60));
    first.signal("KILL");
    assert_eq!(first.wait(Duration::from_secs(5)), -1);
    // Debian's uftpd times out and writes its own restart state.
    wait_log(&rx.proc, "Transfer timed out", Duration::from_secs(30));
    sleep(Duration::from_millis(500));
    let restart = restart_file(&bed.dir);
    let mut second = our_uftp(
        &bed,
        &[&common[..], &["-F", restart.to_str().unwrap()]].concat(),
        "uftp-2.log",
    );
    let code = second.wait(Duration::from_secs(90));
    let log = second.log_text();
    let rlog = rx.proc.log_text();
    assert_eq!(code, 0, "uftp -F failed:\n{log}\n{rlog}");
    let sent = filesegs_sent(&log);
    eprintln!(
        "our restart to Debian's uftpd sent {sent} of {blocks} blocks ({:.1}%)",
        100.0 * sent as f64 / blocks as f64
    );
    assert!(
        sent * 100 <= blocks * 55,
        "sent {sent} of {blocks}:\n{log}\n{rlog}"
    );
    assert_copy(&rx.dest.join("big.bin"), &want, &|| {
        format!("{log}\n{rlog}")
    });
}
