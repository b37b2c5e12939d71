//! The programs as users run them: **no timing, rate or buffer options on either side** (no
//! `-r`, `-R`, `-s`, `-B`), against Debian's uftp 4.10.2, on a bridge of network namespaces.
//! Every claim in README.md rests on these defaults.
//!
//! The matrix: four receivers; a 20 MiB file and a small tree (nested directories, a file shorter
//! than a block, an empty file and directory, a symlink, a name with spaces); each case open
//! (no `-H`) and closed (`-H` with the receivers' addresses, as a user writes them), plain and
//! encrypted (`-Y aes256-gcm -h sha256 -e ecdh_ecdsa`; each receiver has an EC key, `-k`, which
//! 4.10.2's uftpd needs for ECDH-ECDSA), at 0% and 2% random loss of every UDP datagram each
//! receiver's host receives (nftables). The casts:
//!
//! - our `uftp` to four of Debian's `uftpd` (`ours_to_debian_*`): before the sender's rounds
//!   followed the measured GRTT, every 4.10.2 receiver of an open group gave the session up 1 s
//!   after its REG_CONF ("Transfer timed out") and the sender exited 7;
//! - our `uftp` to a mixed group, two of Debian's and two of ours (`ours_to_mixed_*`);
//! - Debian's `uftp` to four of ours, and to the mixed group (`debian_sender_at_its_defaults`).
//!   uftp 4.10.2's default rate is 1 Mbit/s, so each of those runs takes about three minutes;
//!   they idle on the wire, so all sixteen run at once, each on its own testbed.
//!
//! Every receiver must hold exactly the source (same listing, same sha256 of every file,
//! nothing else), the sender must exit 0, and where there is loss the rules must have dropped
//! something.
//!
//! Needs root, `ip`, `nft` and the `uftp` package (`cargo xtask setup`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial};
use uftp_tests::peers::{keygen, Imp};
use uftp_tests::tree::{listing, make_content};

/// Size of the big file of each transfer.
const SIZE: u64 = 20 << 20;
/// Random loss of the lossy cases, percent of the UDP datagrams each receiver's host receives.
const LOSS: u32 = 2;
/// Our sender at its defaults moves the 20 MiB in about a second; this only bounds a failure.
const OUR_SENDER_LIMIT: Duration = Duration::from_secs(120);
/// uftp 4.10.2 at its default 1 Mbit/s takes about 170 s for the 20 MiB and the tree (more with
/// loss); this only bounds a failure.
const DEBIAN_SENDER_LIMIT: Duration = Duration::from_secs(480);

/// One case of the matrix.
#[derive(Debug, Clone, Copy)]
struct Case {
    sender: Imp,
    receivers: [Imp; 4],
    /// Closed group: `-H` lists the receivers.
    closed: bool,
    encrypted: bool,
    loss: u32,
}

const DEBIAN4: [Imp; 4] = [Imp::Debian; 4];
const OURS4: [Imp; 4] = [Imp::Ours; 4];
const MIXED: [Imp; 4] = [Imp::Debian, Imp::Debian, Imp::Ours, Imp::Ours];

/// A case's testbed, receivers and content, ready for the sender.
struct Setup {
    bed: Testbed,
    receivers: Vec<Proc>,
    items: Vec<PathBuf>,
}

fn set_up(case: Case) -> Setup {
    let bed = Testbed::new(case.receivers.len() + 1);
    let items = make_content(&bed.dir, SIZE);
    let mut receivers = Vec::new();
    for (i, imp) in case.receivers.iter().enumerate() {
        let n = i + 1;
        let h = bed.host(n);
        let dst = bed.path(&format!("dst{n}"));
        std::fs::create_dir_all(&dst).expect("destination");
        let mut cmd = h.command(imp.program("uftpd"));
        cmd.args(["-d", "-I", &h.ifname, "-D"]).arg(&dst);
        if case.encrypted {
            let key = bed.path(&format!("key{n}.pem"));
            // A 4.10.2 receiver of an ECDH-ECDSA session needs an EC key; ours reads the same file.
            keygen(&key, "ec:prime256v1");
            cmd.arg("-k").arg(&key);
        }
        receivers.push(Proc::spawn(
            &format!("{imp:?} uftpd {n}"),
            cmd,
            &bed.path(&format!("uftpd{n}.log")),
        ));
        h.set_loss(case.loss);
    }
    // Both uftpds are listening once their socket is bound; give them that moment.
    std::thread::sleep(Duration::from_millis(300));
    Setup {
        bed,
        receivers,
        items,
    }
}

/// Runs `case` to the end; `Err` says what went wrong, with the logs.
fn run(case: Case) -> Result<Duration, String> {
    let Setup {
        bed,
        mut receivers,
        items,
    } = set_up(case);
    let h = bed.host(0);
    let mut cmd = h.command(case.sender.program("uftp"));
    cmd.args(["-I", &h.ifname]);
    if case.closed {
        let hosts: Vec<&str> = (1..=case.receivers.len())
            .map(|n| bed.host(n).ipv4.as_str())
            .collect();
        cmd.args(["-H", &hosts.join(",")]);
    }
    if case.encrypted {
        cmd.args(["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa"]);
    }
    cmd.args(&items);
    let start = Instant::now();
    let mut sender = Proc::spawn(
        &format!("{:?} uftp", case.sender),
        cmd,
        &bed.path("uftp.log"),
    );
    let limit = match case.sender {
        Imp::Ours => OUR_SENDER_LIMIT,
        Imp::Debian => DEBIAN_SENDER_LIMIT,
    };
    while sender.running() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    let finished = !sender.running();
    let code = if finished {
        sender.wait(Duration::from_secs(1))
    } else {
        sender.stop();
        -1
    };
    let slog = sender.log_text();
    // The receivers stay up until the sender is done (a 4.10.2 sender lingers for late
    // COMPLETEs); stop them before comparing, so that nothing still moves.
    let logs = Proc::stop_all(&mut receivers);
    let fail = |what: String| {
        Err(format!(
            "{case:?}: {what}\n--- sender:\n{slog}\n{logs}",
            slog = tail(&slog),
            logs = tail(&logs)
        ))
    };
    if !finished {
        return fail(format!("the sender did not finish in {limit:?}"));
    }
    if code != 0 {
        return fail(format!("the sender exited {code} after {took:?}"));
    }
    if case.loss > 0 {
        let dropped: u64 = (1..=case.receivers.len())
            .map(|n| bed.host(n).dropped())
            .sum();
        if dropped == 0 {
            return fail("the loss rules dropped nothing".into());
        }
    }
    let want = listing(&bed.path("src"));
    for n in 1..=case.receivers.len() {
        let got = listing(&bed.path(&format!("dst{n}")));
        if got != want {
            return fail(format!(
                "receiver {n} ({:?}) holds {got:?}, not {want:?}",
                case.receivers[n - 1]
            ));
        }
    }
    Ok(took)
}

/// The last 200 lines of a log (a failing case's message stays readable).
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

fn ours(receivers: [Imp; 4], closed: bool, encrypted: bool, loss: u32) {
    let _lock = serial();
    let case = Case {
        sender: Imp::Ours,
        receivers,
        closed,
        encrypted,
        loss,
    };
    match run(case) {
        Ok(took) => eprintln!("{case:?}: {took:?}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn ours_to_debian_open() {
    ours(DEBIAN4, false, false, 0);
}

#[test]
fn ours_to_debian_open_loss() {
    ours(DEBIAN4, false, false, LOSS);
}

#[test]
fn ours_to_debian_open_encrypted() {
    ours(DEBIAN4, false, true, 0);
}

#[test]
fn ours_to_debian_open_encrypted_loss() {
    ours(DEBIAN4, false, true, LOSS);
}

#[test]
fn ours_to_debian_closed() {
    ours(DEBIAN4, true, false, 0);
}

#[test]
fn ours_to_debian_closed_loss() {
    ours(DEBIAN4, true, false, LOSS);
}

#[test]
fn ours_to_debian_closed_encrypted() {
    ours(DEBIAN4, true, true, 0);
}

#[test]
fn ours_to_debian_closed_encrypted_loss() {
    ours(DEBIAN4, true, true, LOSS);
}

#[test]
fn ours_to_mixed_open() {
    ours(MIXED, false, false, 0);
}

#[test]
fn ours_to_mixed_open_loss() {
    ours(MIXED, false, false, LOSS);
}

#[test]
fn ours_to_mixed_open_encrypted() {
    ours(MIXED, false, true, 0);
}

#[test]
fn ours_to_mixed_open_encrypted_loss() {
    ours(MIXED, false, true, LOSS);
}

#[test]
fn ours_to_mixed_closed() {
    ours(MIXED, true, false, 0);
}

#[test]
fn ours_to_mixed_closed_loss() {
    ours(MIXED, true, false, LOSS);
}

#[test]
fn ours_to_mixed_closed_encrypted() {
    ours(MIXED, true, true, 0);
}

#[test]
fn ours_to_mixed_closed_encrypted_loss() {
    ours(MIXED, true, true, LOSS);
}

/// Debian's sender at its defaults (1 Mbit/s) to four of ours and to the mixed group, every
/// combination of open/closed, plain/encrypted and 0%/2% loss: sixteen runs at once, each on
/// its own testbed, so that the batch takes about as long as one run.
#[test]
fn debian_sender_at_its_defaults() {
    let _lock = serial();
    let mut cases = Vec::new();
    for receivers in [OURS4, MIXED] {
        for closed in [false, true] {
            for encrypted in [false, true] {
                for loss in [0, LOSS] {
                    cases.push(Case {
                        sender: Imp::Debian,
                        receivers,
                        closed,
                        encrypted,
                        loss,
                    });
                }
            }
        }
    }
    // Build our binaries once before the threads need them.
    let _ = our_binary("uftpd");
    let handles: Vec<_> = cases
        .into_iter()
        .map(|case| std::thread::spawn(move || (case, run(case))))
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (case, result) = h.join().expect("case thread");
        match result {
            Ok(took) => eprintln!("{case:?}: {took:?}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 16 cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
