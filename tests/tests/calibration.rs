//! Calibration of the simulator against real sockets, the part that is not timing: the
//! calibration scenario ([`sim::calibration`]: our `uftp` to four of our `uftpd`s, a 50 MiB
//! file, 3% loss on every receiver's input, a fixed 50 Mbit/s rate) completes byte-identical in
//! network namespaces and completes in the simulator. How far the two completion times agree is
//! a measurement: `cargo xtask bench` reports it (its `calibration` case).
//!
//! Needs root, `ip`, `nft` (`cargo xtask setup`).

use std::fs;
use std::time::Duration;

use sim::calibration::{FILE_NAME, LOSS_PERCENT, RATE_KBPS, RECEIVERS, SIZE};
use testnet::{Proc, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

fn uid(i: usize) -> u32 {
    0x0C00_0000 + i as u32
}

fn real_run() {
    let bed = Testbed::new(RECEIVERS + 1);
    let src = bed.path(FILE_NAME);
    write_pattern(&src, SIZE as usize, 7);
    let mut receivers = Vec::new();
    for i in 1..=RECEIVERS {
        let h = bed.host(i).clone();
        let dest = bed.path(&format!("dest{i}"));
        fs::create_dir_all(&dest).unwrap();
        let mut cmd = h.command(our_binary("uftpd"));
        cmd.args(["-d", "-x", "2", "-B", "4194304", "-I", &h.ifname])
            .args(["-U", &format!("0x{:08X}", uid(i)), "-D"])
            .arg(&dest);
        let mut p = Proc::spawn(
            &format!("uftpd{i}"),
            cmd,
            &bed.path(&format!("uftpd{i}.log")),
        );
        p.wait_for_line("listening on port", Duration::from_secs(10));
        h.set_loss(LOSS_PERCENT);
        receivers.push((p, dest));
    }
    let ids: Vec<String> = (1..=RECEIVERS)
        .map(|i| format!("0x{:08X}", uid(i)))
        .collect();
    let h = bed.host(0);
    let mut cmd = h.command(our_binary("uftp"));
    cmd.args(["-U", "0x0A4D0001", "-I", &h.ifname, "-H", &ids.join(",")])
        .args(["-R", &RATE_KBPS.to_string(), "-x", "1"])
        .arg(&src);
    let mut tx = Proc::spawn("our uftp", cmd, &bed.path("uftp.log"));
    let code = tx.wait(Duration::from_secs(120));
    let log = tx.log_text();
    assert_eq!(code, 0, "uftp failed:\n{log}");
    let want = sha256(&src);
    for (i, (_, dest)) in receivers.iter().enumerate() {
        assert_eq!(
            sha256(&dest.join(FILE_NAME)),
            want,
            "receiver {} copy differs",
            i + 1
        );
    }
    assert!(
        log.contains("Session done:"),
        "no summary in uftp's log:\n{log}"
    );
}

#[test]
fn the_calibration_transfer_completes_byte_identical_on_real_sockets() {
    let _lock = serial();
    real_run();
}

#[test]
fn the_calibration_transfer_completes_in_the_simulator() {
    let sim = sim::calibration::simulate(1).unwrap_or_else(|e| panic!("{e}"));
    assert!(sim.blocks_sent > 0 && sim.retransmitted > 0, "{sim:?}");
}
