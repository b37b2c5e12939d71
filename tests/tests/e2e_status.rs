//! Status reporting of our programs in a real session, each host in its own network namespace:
//! our `uftp` sends two files (one with a quote in its name) to two of our `uftpd`s.
//!
//! - `--json`: the sender's events on standard output (`--json -`) and each receiver's in a
//!   file are one JSON object a line, flushed as they happen (the receivers' are read while they
//!   still run), with the fields README.md documents: session start, a file result per client
//!   and file, a client result per client and a summary on the sender; session start, each file
//!   received (name, size, path) and session end on the receivers.
//! - Status files: our `uftp -S` and uftp 4.10.2's, in the same session to our `uftpd -F` and
//!   4.10.2's (one `-H` receiver never answers), write the same lines, times, speeds and the
//!   session ID aside.
//! - `uftpd -s`: the post-receive command runs per file (with `-T`: once per session with the
//!   top-level entries), called `script -I GROUP_ID path...`, beside the receive loop: every call
//!   waits at a gate that opens only after the sender has finished.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;
use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, write_pattern};

const RECEIVERS: usize = 2;
const SENDER_ID: &str = "0x0A4D0001";

fn uid(i: usize) -> String {
    format!("0x0C0000{i:02X}")
}

/// The JSON objects among `text`'s lines (other lines, the log, are skipped); each must parse.
fn events(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with("{\"event\""))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_kind<'a>(ev: &'a [Value], kind: &str) -> Vec<&'a Value> {
    ev.iter().filter(|e| e["event"] == kind).collect()
}

struct Bed {
    bed: Testbed,
    receivers: Vec<Proc>,
    dests: Vec<PathBuf>,
}

impl Bed {
    /// Host 0 sends; hosts 1..=RECEIVERS run our `uftpd -d` with `extra(i)` arguments.
    fn start(extra: impl Fn(&Testbed, usize) -> Vec<String>) -> Bed {
        let bed = Testbed::new(RECEIVERS + 1);
        let mut receivers = Vec::new();
        let mut dests = Vec::new();
        for i in 1..=RECEIVERS {
            let h = bed.host(i).clone();
            let dest = bed.path(&format!("dest{i}"));
            fs::create_dir_all(&dest).unwrap();
            let mut cmd = h.command(our_binary("uftpd"));
            cmd.args(["-d", "-x", "3", "-U", &uid(i), "-I", &h.ifname, "-D"])
                .arg(&dest)
                .args(extra(&bed, i));
            receivers.push(Proc::spawn(
                &format!("uftpd{i}"),
                cmd,
                &bed.path(&format!("uftpd{i}.log")),
            ));
            dests.push(dest);
        }
        for r in &mut receivers {
            r.wait_for_line("listening on port", Duration::from_secs(10));
        }
        Bed {
            bed,
            receivers,
            dests,
        }
    }

    /// Our `uftp` on host 0 sending `items` with `args`; waits for it and returns its exit code
    /// and output.
    fn send(&self, args: &[&str], items: &[PathBuf]) -> (i32, String) {
        let h = self.bed.host(0);
        let ids: Vec<String> = (1..=RECEIVERS).map(uid).collect();
        let mut cmd = h.command(our_binary("uftp"));
        cmd.args(["-U", SENDER_ID, "-I", &h.ifname, "-H", &ids.join(",")])
            .args(["-R", "200000", "-x", "2"])
            .args(args)
            .args(items);
        let mut p = Proc::spawn("uftp", cmd, &self.bed.path("uftp.log"));
        let code = p.wait(Duration::from_secs(30));
        (code, p.log_text())
    }

    fn logs(&self) -> String {
        self.receivers
            .iter()
            .map(|r| format!("--- {}:\n{}", r.name, r.log_text()))
            .collect()
    }
}

/// Waits until `file` holds an event of `kind`, and returns its events.
fn wait_for_event(file: &Path, kind: &str, why: impl Fn() -> String) -> Vec<Value> {
    let t0 = Instant::now();
    loop {
        let ev = events(&fs::read_to_string(file).unwrap_or_default());
        if !of_kind(&ev, kind).is_empty() {
            return ev;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no {kind} event in {}:\n{}",
            file.display(),
            why()
        );
        sleep(Duration::from_millis(20));
    }
}

/// Two files to send: (path, name sent, size).
fn content(bed: &Testbed) -> Vec<(PathBuf, String, u64)> {
    let src = bed.path("src");
    fs::create_dir_all(&src).unwrap();
    let files = [("big \"q\".bin", 300_000u64), ("small.txt", 1000)];
    files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let p = src.join(name);
            write_pattern(&p, *size as usize, i as u64 + 7);
            (p, name.to_string(), *size)
        })
        .collect()
}

#[test]
fn json_events_on_sender_and_receivers() {
    let _lock = serial();
    let mut g = Bed::start(|bed, i| {
        vec![
            "--json".into(),
            bed.path(&format!("uftpd{i}.json")).display().to_string(),
        ]
    });
    let files = content(&g.bed);
    let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    let (code, out) = g.send(&["--json", "-"], &paths);
    assert_eq!(code, 0, "uftp failed:\n{out}\n{}", g.logs());

    // The sender: session_start first, summary last, everything between per client.
    let ev = events(&out);
    assert!(ev.len() >= 2, "{out}");
    let start = &ev[0];
    assert_eq!(start["event"], "session_start", "{out}");
    assert_eq!(start["program"], "uftp");
    assert_eq!(start["uid"], SENDER_ID);
    assert_eq!(start["files"], 2);
    assert_eq!(start["bytes"], 301_000);
    assert!(start["group_id"].as_str().unwrap().starts_with("0x"));
    assert!(start["time"].as_f64().unwrap() > 1.7e9);
    let summary = ev.last().unwrap();
    assert_eq!(summary["event"], "summary", "{out}");
    assert_eq!(summary["outcome"], "completed");
    assert_eq!(summary["exit_code"], 0);
    assert_eq!(summary["files"], 2);
    assert_eq!(summary["bytes"], 301_000);
    assert_eq!(summary["clients_registered"], RECEIVERS);
    assert_eq!(summary["clients_completed"], RECEIVERS);
    assert_eq!(summary["clients_lost"], 0);
    assert!(summary["blocks_sent"].as_u64().unwrap() >= 300_000 / 1300);
    let results = of_kind(&ev, "file_result");
    assert_eq!(results.len(), 2 * RECEIVERS, "{out}");
    for (_, name, size) in &files {
        for i in 1..=RECEIVERS {
            let r = results
                .iter()
                .find(|r| r["name"] == name.as_str() && r["client"] == uid(i))
                .unwrap_or_else(|| panic!("no file_result for {name} and {}:\n{out}", uid(i)));
            assert_eq!(r["result"], "completed", "{r}");
            assert_eq!(r["size"], *size, "{r}");
            assert!(r["file_id"].as_u64().unwrap() >= 1, "{r}");
        }
    }
    let clients = of_kind(&ev, "client_result");
    assert_eq!(clients.len(), RECEIVERS, "{out}");
    for (i, c) in (1..=RECEIVERS).zip(&clients) {
        assert_eq!(c["client"], uid(i), "{c}");
        assert_eq!(c["state"], "completed", "{c}");
        assert_eq!(c["reason"], Value::Null, "{c}");
        assert_eq!(c["files_ok"], 2, "{c}");
        assert_eq!(c["files_failed"], 0, "{c}");
        assert_eq!(c["addr"], g.bed.host(i).ipv4.as_str(), "{c}");
    }

    // The receivers: their events are in the file while they still run (flushed).
    for (i, dest) in (1..=RECEIVERS).zip(g.dests.clone()) {
        let file = g.bed.path(&format!("uftpd{i}.json"));
        let ev = wait_for_event(&file, "session_end", || g.logs());
        assert!(g.receivers[i - 1].running(), "uftpd{i} exited");
        let kinds: Vec<&str> = ev.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["session_start", "file", "file", "session_end"],
            "{ev:?}"
        );
        assert_eq!(ev[0]["server_id"], SENDER_ID);
        assert_eq!(ev[0]["encrypted"], false);
        assert!(
            ev[0]["server"]
                .as_str()
                .unwrap()
                .starts_with(&g.bed.host(0).ipv4),
            "{}",
            ev[0]
        );
        let session = &ev[0]["session"];
        assert_eq!(
            session.as_str().unwrap().len(),
            11,
            "GGGGGGGG/II: {session}"
        );
        for ((src, name, size), e) in files.iter().zip(&ev[1..3]) {
            assert_eq!(&e["session"], session);
            assert_eq!(e["result"], "received", "{e}");
            assert_eq!(e["name"], name.as_str(), "{e}");
            assert_eq!(e["size"], *size, "{e}");
            let path = dest.join(name);
            assert_eq!(e["path"], path.display().to_string(), "{e}");
            assert_eq!(fs::read(&path).unwrap(), fs::read(src).unwrap());
        }
        assert_eq!(ev[3]["result"], "completed", "{}", ev[3]);
        assert_eq!(&ev[3]["session"], session);
    }
}

#[test]
fn json_option_errors_are_clear() {
    // A daemon has no standard output for `--json -`; a missing value is named.
    let out = std::process::Command::new(our_binary("uftpd"))
        .args(["--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--json -") && err.contains("-d"), "{err}");
    let out = std::process::Command::new(our_binary("uftp"))
        .args(["--json", "/nonexistent-dir/x.json", "/etc/hostname"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--json: cannot open /nonexistent-dir/x.json"),
        "{err}"
    );
}

/// Replaces what differs from run to run in a status line (times, speeds, the session's group
/// ID) with fixed words, so that lines of two runs compare.
fn normalize(line: &str) -> String {
    let f: Vec<&str> = line.split(';').collect();
    let mut f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
    match f[0].as_str() {
        // Receiver: CONNECT/RESULT;timestamp;server_id;session_id;...
        "CONNECT" | "RESULT" if f.len() >= 6 && f[1].contains('/') => {
            assert_eq!(f[1].len(), 19, "timestamp in {line}");
            f[1] = "TIME".into();
            assert_eq!(f[3].len(), 8, "session ID in {line}");
            f[3] = "SESSION".into();
        }
        // Sender: RESULT;target;filename;size;status;speed
        "RESULT" if f.len() == 6 && f[5].ends_with("KB/s") => f[5] = "SPEED".into(),
        "STATS" if f.len() == 8 => {
            assert!(f[6].parse::<f64>().is_ok(), "time in {line}");
            f[6] = "T".into();
            assert!(f[7].ends_with("KB/s"), "speed in {line}");
            f[7] = "SPEED".into();
        }
        _ => {}
    }
    f.join(";")
}

fn status_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.ends_with('\n'), "{text:?}");
    let mut v: Vec<String> = text.lines().map(normalize).collect();
    // Lines of one kind may come in another order (receivers answer when they answer).
    v.sort();
    v
}

#[test]
fn status_files_as_uftp_4_10_2_writes_them() {
    let _lock = serial();
    // Host 1 runs our uftpd -F, host 2 Debian's uftpd -F (-q: no reverse lookups).
    let bed = Testbed::new(3);
    let mut receivers = Vec::new();
    for i in 1..=2 {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = if i == 1 {
            h.command(our_binary("uftpd"))
        } else {
            let mut c = h.command("uftpd");
            c.arg("-q");
            c
        };
        cmd.args(["-d", "-x", "2", "-U", &uid(i), "-I", &h.ifname, "-F"])
            .arg(bed.path(&format!("rx{i}.status")))
            .arg("-D")
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
    let files = content(&bed);
    let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    // Receiver 3 never answers: CONNECT;failed and "mute" results.
    let ids = [uid(1), uid(2), uid(3)].join(",");
    let h = bed.host(0);
    for (prog, tag) in [
        (our_binary("uftp"), "ours"),
        (PathBuf::from("uftp"), "debian"),
    ] {
        let mut cmd = h.command(&prog);
        cmd.args(["-U", SENDER_ID, "-I", &h.ifname, "-H", &ids, "-R", "200000"])
            .args(["-s", "10", "-r", "0.1:0.01:1", "-S"])
            .arg(bed.path(&format!("{tag}.status")))
            .args(&paths);
        let mut p = Proc::spawn(tag, cmd, &bed.path(&format!("{tag}.log")));
        let code = p.wait(Duration::from_secs(30));
        assert!(
            code == 0 || code == 9,
            "{tag} uftp: exit {code}\n{}",
            p.log_text()
        );
    }
    let ours = status_lines(&bed.path("ours.status"));
    let theirs = status_lines(&bed.path("debian.status"));
    assert_eq!(ours, theirs, "our uftp -S against uftp 4.10.2's");
    assert!(
        ours.contains(&format!("CONNECT;failed;{}", uid(3))),
        "{ours:?}"
    );
    assert!(
        ours.contains(&format!("RESULT;{};small.txt;0KB;copy;SPEED", uid(1))),
        "{ours:?}"
    );
    // Both receivers saw both sessions: their lines agree.
    let t0 = Instant::now();
    loop {
        let rx: Vec<String> = (1..=2)
            .map(|i| fs::read_to_string(bed.path(&format!("rx{i}.status"))).unwrap_or_default())
            .collect();
        if rx.iter().all(|t| t.matches("RESULT;").count() == 4) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{rx:?}");
        sleep(Duration::from_millis(50));
    }
    let ours = status_lines(&bed.path("rx1.status"));
    let theirs = status_lines(&bed.path("rx2.status"));
    assert_eq!(ours, theirs, "our uftpd -F against uftpd 4.10.2's");
    assert!(
        ours.contains(&format!(
            "RESULT;TIME;{};SESSION;big \"q\".bin;292KB;copied",
            &SENDER_ID[2..]
        )),
        "{ours:?}"
    );
    drop(receivers);
}

/// A post-receive script that records each call's arguments in `calls`, says hello, and waits
/// until `gate` exists.
fn gated_script(bed: &Testbed) -> (PathBuf, PathBuf, PathBuf) {
    let script = bed.path("post.sh");
    let calls = bed.path("calls");
    let gate = bed.path("gate");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\necho \"hello $#\"\nwhile [ ! -e '{}' ]; do sleep 0.05; done\n",
            calls.display(),
            gate.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (script, calls, gate)
}

/// The group ID of the receiver's one session, from its log's `[GGGGGGGG/II]` tags.
fn group_of(log: &str) -> String {
    let at = log.find("Received request from").expect("a session") - 13;
    log[at..at + 8].to_string()
}

fn wait_log(p: &Proc, what: &str, count: usize) {
    let t0 = Instant::now();
    while p.log_text().matches(what).count() < count {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{count} × {what:?} not in the log:\n{}",
            p.log_text()
        );
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn postreceive_script_per_file_without_blocking_the_receiver() {
    let _lock = serial();
    let mut g = Bed::start(|bed, i| {
        let (script, _, _) = if i == 1 {
            gated_script(bed)
        } else {
            (bed.path("post.sh"), PathBuf::new(), PathBuf::new())
        };
        vec!["-s".into(), script.display().to_string()]
    });
    let calls = g.bed.path("calls");
    let gate = g.bed.path("gate");
    let files = content(&g.bed);
    let paths: Vec<PathBuf> = files.iter().map(|f| f.0.clone()).collect();
    // Every call waits at the gate, closed until the session is over: the receivers go on.
    let (code, out) = g.send(&[], &paths);
    assert_eq!(code, 0, "uftp failed:\n{out}\n{}", g.logs());
    for dest in &g.dests {
        for (src, name, _) in &files {
            assert_eq!(fs::read(dest.join(name)).unwrap(), fs::read(src).unwrap());
        }
    }
    for r in &g.receivers {
        wait_log(r, "running ", 2);
        assert!(!r.log_text().contains("] done"), "{}", r.log_text());
    }
    let t0 = Instant::now();
    while fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .count()
        < 4
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", g.logs());
        sleep(Duration::from_millis(20));
    }
    fs::write(&gate, "").unwrap();
    for r in &mut g.receivers {
        wait_log(r, "] done", 2);
        assert!(r.running());
    }
    // Called as uftpd calls it: -I and the session's group ID, then the file's full path.
    let mut got: Vec<String> = fs::read_to_string(&calls)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    let mut want = Vec::new();
    for (r, dest) in g.receivers.iter().zip(&g.dests) {
        let group = group_of(&r.log_text());
        for (_, name, _) in &files {
            want.push(format!("-I {group} {}", dest.join(name).display()));
        }
        // Its output is logged.
        assert!(r.log_text().contains("]: hello 3"), "{}", r.log_text());
    }
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn postreceive_script_once_per_session_with_a_temp_dir() {
    let _lock = serial();
    let g = Bed::start(|bed, i| {
        let temp = bed.path(&format!("temp{i}"));
        fs::create_dir_all(&temp).unwrap();
        let (script, _, gate) = gated_script(bed);
        fs::write(gate, "").unwrap();
        vec![
            "-T".into(),
            temp.display().to_string(),
            "-s".into(),
            script.display().to_string(),
        ]
    });
    let src = g.bed.path("src");
    fs::create_dir_all(src.join("tree/sub")).unwrap();
    write_pattern(&src.join("tree/sub/x.bin"), 5000, 1);
    write_pattern(&src.join("tree/y.bin"), 3000, 2);
    write_pattern(&src.join("c.txt"), 100, 3);
    let (code, out) = g.send(
        &["-E", &src.display().to_string()],
        &[src.join("tree"), src.join("c.txt")],
    );
    assert_eq!(code, 0, "uftp failed:\n{out}\n{}", g.logs());
    for r in &g.receivers {
        wait_log(r, "] done", 1);
    }
    let mut got: Vec<String> = fs::read_to_string(g.bed.path("calls"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    let mut want: Vec<String> = g
        .receivers
        .iter()
        .zip(&g.dests)
        .map(|(r, dest)| {
            format!(
                "-I {} {} {}",
                group_of(&r.log_text()),
                dest.join("tree").display(),
                dest.join("c.txt").display()
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want, "{}", g.logs());
    for dest in &g.dests {
        assert!(dest.join("tree/sub/x.bin").exists());
    }
}
