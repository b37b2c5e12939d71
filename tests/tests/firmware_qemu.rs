//! The receiver firmware itself, built for Cortex-M (`thumbv7em-none-eabihf`, embedded-target's
//! `mps2` image), runs on QEMU's emulated `mps2-an500` (Cortex-M7) board and receives a 1 MiB
//! file over the board's emulated LAN9118, through our LAN9118 driver, from our `uftp` and
//! from Debian's `uftp` 4.10.2, at 0% and 3% loss. Each time, the line the firmware prints on
//! its UART for the stored image names the file, its size and the SHA-256 it read back from its
//! (RAM) flash, and that digest is the file's. The same image also runs on `mps2-an386`
//! (Cortex-M4), where the LAN9118 sits at another address.
//!
//! QEMU runs in the testbed's bridge namespace with the board's NIC on a TAP device on the
//! bridge; the firmware's address (10.77.0.100, so UID 0x0A4D0064) is built in. Needs root,
//! `ip`, `nft`, `/dev/net/tun`, `qemu-system-arm`, the `uftp` package and the
//! `thumbv7em-none-eabihf` target (`cargo xtask setup`); the image is built here if needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Proc, Tap, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};

/// The file sent.
const FILE_LEN: usize = 1 << 20;
const FIRMWARE_ADDR: &str = "10.77.0.100/24";
const FIRMWARE_UID: &str = "0x0A4D0064";
const FIRMWARE_MAC: &str = "02:00:0a:4d:00:64";
/// A sender that runs longer than this has failed (a transfer takes about a second).
const SENDER_LIMIT: Duration = Duration::from_secs(120);

/// Which implementation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Ours,
    Debian,
}

/// The MPS2 image, built (release) in the firmware crate's own workspace with the address in.
fn firmware_image() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .join("embedded-target");
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("target"));
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--target", "thumbv7em-none-eabihf"])
                .args(["--no-default-features", "--features", "mps2"])
                .args(["--bin", "mps2", "--target-dir"])
                .arg(&target_dir)
                .env("UFTP_ADDRESS", FIRMWARE_ADDR)
                .current_dir(&dir)
                .status()
                .expect("cargo build");
            assert!(status.success(), "building the MPS2 firmware failed");
            target_dir
                .join("thumbv7em-none-eabihf")
                .join("release")
                .join("mps2")
        })
        .clone()
}

/// QEMU running the firmware, its UART in its log.
struct Board {
    qemu: Proc,
}

impl Board {
    fn start(bed: &Testbed, tap: &Tap, machine: &str) -> Board {
        let mut cmd = tap.command("qemu-system-arm");
        cmd.args(["-M", machine, "-nographic", "-monitor", "none"])
            .args(["-serial", "stdio", "-no-reboot", "-kernel"])
            .arg(firmware_image())
            .arg("-nic")
            .arg(format!(
                "tap,ifname={},script=no,downscript=no,mac={FIRMWARE_MAC}",
                tap.ifname
            ));
        let mut qemu = Proc::spawn("qemu", cmd, &bed.path("qemu.log"));
        let t0 = Instant::now();
        while !qemu.log_text().contains("uftp receiver on port") {
            assert!(qemu.running(), "QEMU exited:\n{}", qemu.log_text());
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the firmware did not start:\n{}",
                qemu.log_text()
            );
            sleep(Duration::from_millis(20));
        }
        Board { qemu }
    }

    /// Waits until the firmware has printed a stored image, or QEMU has exited.
    fn stored_or_exited(&mut self) {
        let t0 = Instant::now();
        while self.qemu.running()
            && !self.qemu.log_text().contains("image stored: ")
            && t0.elapsed() < Duration::from_secs(10)
        {
            sleep(Duration::from_millis(20));
        }
    }
}

/// What the firmware printed for its stored image: `image stored: NAME, SIZE bytes, sha256
/// HEX, marked for swap` → (name, size, digest).
fn stored_line(log: &str) -> Option<(String, u64, String)> {
    let line = log.lines().find_map(|l| l.split("image stored: ").nth(1))?;
    let mut parts = line.split(", ");
    let name = parts.next()?.to_string();
    let size = parts.next()?.strip_suffix(" bytes")?.parse().ok()?;
    let digest = parts.next()?.strip_prefix("sha256 ")?.to_string();
    Some((name, size, digest))
}

/// Sends `file` from host 0 with `sender`; returns its exit code and log.
fn send(bed: &Testbed, sender: Sender, file: &Path) -> (i32, String) {
    let h = bed.host(0);
    let program = match sender {
        Sender::Ours => our_binary("uftp"),
        Sender::Debian => PathBuf::from("uftp"),
    };
    let mut cmd = h.command(program);
    cmd.args([
        "-I",
        &h.ifname,
        "-R",
        "20000",
        "-H",
        FIRMWARE_UID,
        "-x",
        "2",
    ])
    .arg(file);
    let mut p = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = p.wait(SENDER_LIMIT);
    (code, p.log_text())
}

/// A 1 MiB file from `sender` to the firmware on `machine` at `loss`% loss on the TAP's input.
fn transfer(machine: &str, sender: Sender, loss: u32) {
    let _lock = serial();
    let bed = Testbed::new(1);
    let tap = bed.add_tap("qtap0");
    let file = bed.path("update.bin");
    write_pattern(&file, FILE_LEN, u64::from(loss) * 5 + sender as u64 + 3);
    let mut board = Board::start(&bed, &tap, machine);
    tap.set_loss(loss);
    let (code, log) = send(&bed, sender, &file);
    board.stored_or_exited();
    let alive = board.qemu.running();
    let uart = board.qemu.log_text();
    let context = format!("--- uftp:\n{log}\n--- firmware (UART):\n{uart}");
    assert_eq!(code, 0, "{sender:?} uftp failed\n{context}");
    let Some((name, size, digest)) = stored_line(&uart) else {
        panic!("the firmware printed no stored image\n{context}");
    };
    assert_eq!(name, "update.bin", "{context}");
    assert_eq!(size, FILE_LEN as u64, "{context}");
    assert_eq!(digest, sha256(&file), "the firmware's digest\n{context}");
    if loss > 0 {
        assert!(
            tap.dropped() > 0,
            "the loss rule dropped nothing\n{context}"
        );
    }
    assert!(
        uart.contains(&format!("uftp-rs firmware, {machine}")),
        "{context}"
    );
    assert!(alive, "the firmware died\n{context}");
}

#[test]
fn the_stored_line_parses() {
    let log = "0.012 INFO uftp receiver on port 1044\n2.936 INFO image stored: a b.bin, \
               1048576 bytes, sha256 a2575e, marked for swap\n";
    assert_eq!(
        stored_line(log),
        Some(("a b.bin".to_string(), 1 << 20, "a2575e".to_string()))
    );
    assert_eq!(stored_line("image stored: x, many bytes, sha256 00"), None);
    assert_eq!(stored_line("nothing"), None);
}

#[test]
fn our_uftp_to_the_firmware_on_mps2_an500() {
    transfer("mps2-an500", Sender::Ours, 0);
}

#[test]
fn our_uftp_to_the_firmware_on_mps2_an500_at_3_percent_loss() {
    transfer("mps2-an500", Sender::Ours, 3);
}

#[test]
fn debian_uftp_to_the_firmware_on_mps2_an500() {
    transfer("mps2-an500", Sender::Debian, 0);
}

#[test]
fn debian_uftp_to_the_firmware_on_mps2_an500_at_3_percent_loss() {
    transfer("mps2-an500", Sender::Debian, 3);
}

#[test]
fn debian_uftp_to_the_firmware_on_mps2_an386() {
    transfer("mps2-an386", Sender::Debian, 0);
}
