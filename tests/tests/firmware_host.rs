//! The firmware's receive task in its host-run form (embedded-target's `uftp-firmware-host`:
//! embassy-net on a TAP device, update images in a file-backed NOR flash with the boards'
//! write-once rules) receives a 2 MiB image from our `uftp` and from Debian's `uftp` 4.10.2, at
//! 0% and 3% loss on the TAP's input. Each time, the image read back from the flash file's DFU
//! partition has the source's SHA-256, the firmware logs that same digest, and embassy-boot's
//! state partition is marked for swap. Encrypted runs (ECDH-ECDSA on P-256 with AES-256-GCM)
//! from both senders go to a firmware that refuses unencrypted sessions and pins the server key
//! by fingerprint; an unencrypted session to that firmware is refused with an ABORT and leaves
//! nothing stored or marked.
//!
//! The TAP device sits on the testbed's bridge, in the bridge namespace; the firmware brings its
//! own address (10.77.0.100, so UID 0x0A4D0064). Needs root, `ip`, `nft`, `/dev/net/tun` and the
//! `uftp` package (`cargo xtask setup`); the host run is built here if needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use testnet::{Proc, Tap, Testbed};
use uftp_tests::fixture::{our_binary, serial, sha256, write_pattern};
use uftp_tests::peers::keygen;

/// The update image.
const IMAGE: usize = 2 << 20;
/// The flash file: embassy-boot's state partition (one 4 KiB sector), then the DFU partition.
const STATE_LEN: usize = 4096;
const DFU_LEN: &str = "4M";
/// embassy-boot's "swap on next boot" magic, repeated over the state's first write unit.
const SWAP_MAGIC: u8 = 0xF0;
const WRITE_SIZE: usize = 32;
const FIRMWARE_ADDR: &str = "10.77.0.100";
const FIRMWARE_UID: &str = "0x0A4D0064";
/// A sender that runs longer than this has failed (a transfer takes a few seconds).
const SENDER_LIMIT: Duration = Duration::from_secs(120);

/// Which implementation sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    Ours,
    Debian,
}

/// The host run of the firmware, built (release) in the firmware crate's own workspace.
fn firmware_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .join("embedded-target");
            let rustc = Command::new("rustc")
                .arg("-vV")
                .output()
                .expect("rustc -vV");
            let host = String::from_utf8_lossy(&rustc.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
                .expect("rustc names its host");
            let target_dir = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("target"));
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--target", &host])
                .args(["--no-default-features", "--features", "host"])
                .args(["--bin", "uftp-firmware-host", "--target-dir"])
                .arg(&target_dir)
                .current_dir(&dir)
                .status()
                .expect("cargo build");
            assert!(status.success(), "building the firmware's host run failed");
            target_dir
                .join(host)
                .join("release")
                .join("uftp-firmware-host")
        })
        .clone()
}

/// A running host-run firmware and its flash file.
struct Firmware {
    proc: Proc,
    flash: PathBuf,
}

impl Firmware {
    fn start(bed: &Testbed, tap: &Tap, extra: &[String]) -> Firmware {
        let flash = bed.path("flash.bin");
        let mut cmd = tap.command(firmware_binary());
        cmd.args(["--tap", &tap.ifname, "--address"])
            .arg(format!("{FIRMWARE_ADDR}/24"))
            .arg("--flash")
            .arg(&flash)
            .args(["--dfu-size", DFU_LEN])
            .args(extra);
        let mut proc = Proc::spawn("firmware", cmd, &bed.path("firmware.log"));
        let t0 = Instant::now();
        while !proc.log_text().contains("uftp receiver on port") {
            assert!(proc.running(), "the firmware exited:\n{}", proc.log_text());
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the firmware did not start:\n{}",
                proc.log_text()
            );
            sleep(Duration::from_millis(20));
        }
        Firmware { proc, flash }
    }

    /// Waits until the firmware has logged a stored image, or has exited.
    fn stored_or_exited(&mut self) {
        let t0 = Instant::now();
        while self.proc.running()
            && !self.proc.log_text().contains("image stored: ")
            && t0.elapsed() < Duration::from_secs(10)
        {
            sleep(Duration::from_millis(20));
        }
    }

    /// The SHA-256 the firmware logged for its stored image (panics if it stored none).
    fn stored_digest(&self) -> String {
        let log = self.proc.log_text();
        let Some(rest) = log.split("image stored: ").nth(1) else {
            panic!("the firmware stored no image:\n{log}");
        };
        rest.split("sha256 ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends `image` from host 0 with `sender` and `options`; returns its exit code and log.
fn send(bed: &Testbed, sender: Sender, options: &[String], image: &Path) -> (i32, String) {
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
    .args(options)
    .arg(image);
    let mut p = Proc::spawn("uftp", cmd, &bed.path("uftp.log"));
    let code = p.wait(SENDER_LIMIT);
    (code, p.log_text())
}

/// A 2 MiB image from `sender` to the firmware at `loss`% loss; `secure` makes it an encrypted
/// session to a firmware that takes nothing else and pins the server's key.
fn transfer(sender: Sender, loss: u32, secure: bool) {
    let _lock = serial();
    let bed = Testbed::new(1);
    let tap = bed.add_tap("fwtap0");
    let image = bed.path("update.bin");
    write_pattern(&image, IMAGE, u64::from(loss) * 7 + sender as u64 + 1);
    let (sender_options, firmware_options) = if secure {
        let key = bed.path("server.pem");
        let fingerprint = keygen(&key, "ec:prime256v1");
        let server = format!("{}|{}|{fingerprint}", "0x0A4D0001", bed.host(0).ipv4);
        (
            strings(&[
                "-Y",
                "aes256-gcm",
                "-h",
                "sha256",
                "-e",
                "ecdh_ecdsa",
                "-k",
                key.to_str().expect("utf-8 path"),
            ]),
            vec!["-E".to_string(), "-S".to_string(), server],
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let mut fw = Firmware::start(&bed, &tap, &firmware_options);
    tap.set_loss(loss);
    let (code, log) = send(&bed, sender, &sender_options, &image);
    fw.stored_or_exited();
    // Checked first: the closure below borrows the firmware from here on.
    let alive = fw.proc.running();
    let context = || format!("--- uftp:\n{log}\n--- firmware:\n{}", fw.proc.log_text());
    assert_eq!(code, 0, "{sender:?} uftp failed\n{}", context());
    let logged = fw.stored_digest();
    let want = sha256(&image);
    assert_eq!(logged, want, "the firmware's digest\n{}", context());
    let flash = std::fs::read(&fw.flash).expect("flash file");
    let stored = bed.path("stored.bin");
    std::fs::write(&stored, &flash[STATE_LEN..STATE_LEN + IMAGE]).expect("stored image");
    assert_eq!(
        sha256(&stored),
        want,
        "the image in the DFU partition\n{}",
        context()
    );
    assert!(
        flash[..WRITE_SIZE].iter().all(|&b| b == SWAP_MAGIC),
        "the state partition is not marked for swap: {:02x?}\n{}",
        &flash[..WRITE_SIZE],
        context()
    );
    if loss > 0 {
        assert!(
            tap.dropped() > 0,
            "the loss rule dropped nothing\n{}",
            context()
        );
    }
    if secure {
        assert!(
            fw.proc
                .log_text()
                .contains("encrypted aes256-gcm sha256, server key"),
            "the session was not encrypted\n{}",
            context()
        );
    }
    assert!(alive, "the firmware died\n{}", context());
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A firmware that takes encrypted sessions only (`-E`) refuses an unencrypted one with an
/// ABORT: nothing is stored, nothing is marked for swap.
#[test]
fn an_unencrypted_session_is_refused_by_a_firmware_that_requires_encryption() {
    let _lock = serial();
    let bed = Testbed::new(1);
    let tap = bed.add_tap("fwtap0");
    let image = bed.path("update.bin");
    write_pattern(&image, 64 << 10, 99);
    let fw = Firmware::start(&bed, &tap, &strings(&["-E"]));
    let (_, log) = send(&bed, Sender::Debian, &[], &image);
    let fw_log = fw.proc.log_text();
    let context = format!("--- uftp:\n{log}\n--- firmware:\n{fw_log}");
    assert!(
        fw_log.contains("refused server 0x0A4D0001 at 10.77.0.1: No unencrypted transfers allowed"),
        "no refusal logged\n{context}"
    );
    assert!(
        log.contains("No unencrypted transfers allowed"),
        "the sender got no ABORT\n{context}"
    );
    assert!(
        !fw_log.contains("image stored"),
        "an image was stored\n{context}"
    );
    let flash = std::fs::read(&fw.flash).expect("flash file");
    assert!(
        flash[..WRITE_SIZE].iter().all(|&b| b != SWAP_MAGIC),
        "the state partition is marked for swap\n{context}"
    );
}

#[test]
fn our_uftp_to_the_firmware() {
    transfer(Sender::Ours, 0, false);
}

#[test]
fn our_uftp_to_the_firmware_at_3_percent_loss() {
    transfer(Sender::Ours, 3, false);
}

#[test]
fn debian_uftp_to_the_firmware() {
    transfer(Sender::Debian, 0, false);
}

#[test]
fn debian_uftp_to_the_firmware_at_3_percent_loss() {
    transfer(Sender::Debian, 3, false);
}

#[test]
fn debian_uftp_encrypted_to_the_firmware() {
    transfer(Sender::Debian, 0, true);
}

#[test]
fn our_uftp_encrypted_to_the_firmware() {
    transfer(Sender::Ours, 0, true);
}
