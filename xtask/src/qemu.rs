//! `cargo xtask qemu`: builds the receiver firmware for QEMU's MPS2 boards (embedded-target's
//! `mps2` image, one for both `mps2-an500` and `mps2-an386`) and runs it under
//! `qemu-system-arm`, its log on standard output, on a TAP device or with no network. The
//! test `tests/tests/firmware_qemu.rs` runs the same image on a TAP device in a network
//! namespace and sends it files.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ci::{cargo, FIRMWARE_TARGET};

/// The boards the image runs on.
pub const MACHINES: &[&str] = &["mps2-an500", "mps2-an386"];
/// The firmware's address unless told otherwise (the tests' testbed subnet).
pub const DEFAULT_ADDRESS: &str = "10.77.0.100/24";

const USAGE: &str = "usage: cargo xtask qemu [--machine mps2-an500|mps2-an386] [--tap IFNAME]
                        [--mac XX:XX:XX:XX:XX:XX] [--address A.B.C.D/LEN|dhcp] [--build]

Builds the receiver firmware for QEMU's MPS2 boards and runs it under qemu-system-arm
(-nographic; Ctrl-A X quits). With --tap, the board's LAN9118 is on that existing TAP device
(root, or a TAP owned by you); without it, the board has no network. The address is built in
(10.77.0.100/24 by default). --build only builds and prints the image's path.";

/// The firmware crate's target folder.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::firmware::dir().join("target"))
}

/// Builds the MPS2 image (release) with `address` built in (`None`: DHCP); returns its path.
pub fn build_image(address: Option<&str>) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        FIRMWARE_TARGET,
        "--no-default-features",
        "--features",
        "mps2",
        "--bin",
        "mps2",
    ])
    .current_dir(crate::firmware::dir());
    match address {
        Some(a) => cmd.env("UFTP_ADDRESS", a),
        None => cmd.env_remove("UFTP_ADDRESS"),
    };
    eprintln!(
        "$ (in embedded-target) UFTP_ADDRESS={} cargo build --release --target {FIRMWARE_TARGET} \
         --no-default-features --features mps2 --bin mps2",
        address.unwrap_or("")
    );
    let status = cmd.status().context("could not start cargo build")?;
    if !status.success() {
        bail!("building the MPS2 firmware failed ({status})");
    }
    Ok(target_dir()
        .join(FIRMWARE_TARGET)
        .join("release")
        .join("mps2"))
}

/// `qemu-system-arm`'s arguments for `image` on `machine`: no display, no monitor, UART0 on
/// standard output, exit instead of rebooting (the firmware resets after a panic), and the
/// LAN9118 on `tap` (with `mac`) or on nothing.
pub fn qemu_args(machine: &str, image: &str, tap: Option<&str>, mac: &str) -> Vec<String> {
    let nic = match tap {
        Some(t) => format!("tap,ifname={t},script=no,downscript=no,mac={mac}"),
        None => "none".to_string(),
    };
    [
        "-M",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        image,
        "-nic",
        &nic,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `cargo xtask qemu`.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut machine = MACHINES[0].to_string();
    let mut tap = None;
    let mut mac = "02:00:0a:4d:00:64".to_string();
    let mut address = Some(DEFAULT_ADDRESS.to_string());
    let mut build_only = false;
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--machine" => {
                machine = value()?;
                if !MACHINES.contains(&machine.as_str()) {
                    bail!("--machine {machine}: the image runs on {MACHINES:?}");
                }
            }
            "--tap" => tap = Some(value()?),
            "--mac" => mac = value()?,
            "--address" => {
                let v = value()?;
                address = (v != "dhcp").then_some(v);
            }
            "--build" => build_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("qemu: unknown argument `{other}`\n{USAGE}"),
        }
    }
    let image = build_image(address.as_deref())?;
    if build_only {
        println!("{}", image.display());
        return Ok(());
    }
    let image = image.to_str().context("the image's path is not UTF-8")?;
    let args = qemu_args(&machine, image, tap.as_deref(), &mac);
    eprintln!("$ qemu-system-arm {}", args.join(" "));
    let status = Command::new("qemu-system-arm")
        .args(&args)
        .status()
        .context("could not start qemu-system-arm (`cargo xtask setup` installs it)")?;
    if !status.success() {
        bail!("qemu-system-arm failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lan9118_goes_on_the_tap_or_on_nothing() {
        let a = qemu_args("mps2-an500", "/x/mps2", Some("qtap0"), "02:00:0a:4d:00:64");
        let joined = a.join(" ");
        assert!(joined.starts_with("-M mps2-an500 -nographic -monitor none -serial stdio"));
        assert!(joined.contains("-kernel /x/mps2"));
        assert!(
            joined.ends_with("-nic tap,ifname=qtap0,script=no,downscript=no,mac=02:00:0a:4d:00:64")
        );
        let a = qemu_args("mps2-an386", "/x/mps2", None, "02:00:0a:4d:00:64");
        assert_eq!(a.last().map(String::as_str), Some("none"));
    }
}
