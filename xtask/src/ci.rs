//! `cargo xtask ci` and `cargo xtask setup`: the checks CI runs, and the installs they need.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Debian packages the tests use: the real uftp 4.10.2 as a peer, tshark as the reference
/// decoder, tcpdump, nftables and iproute2 for the network-namespace testbeds, QEMU's Arm
/// system emulator for the firmware on an emulated Cortex-M board, and a C compiler.
const APT_PACKAGES: &[(&str, &str)] = &[
    ("uftp", "uftp"),
    ("tshark", "tshark"),
    ("tcpdump", "tcpdump"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    // `cargo xtask deb` checks the zsh completions with `zsh -n`.
    ("zsh", "zsh"),
    ("qemu-system-arm", "qemu-system-arm"),
    // ring (proto-core's `fast-gcm`, on in std-host) builds its assembly and C with it.
    ("cc", "gcc"),
];

/// The firmware target.
pub const FIRMWARE_TARGET: &str = "thumbv7em-none-eabihf";

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .into()
}

/// Runs a command in the workspace root, echoing it, and fails if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    cmd.current_dir(root());
    eprintln!("$ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", show(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A cargo command (the one running xtask).
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// Installs whatever the tests need and is missing: Debian packages, the firmware target,
/// the nightly toolchain's check, cargo-deb and cargo-fuzz.
pub fn setup() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    if !missing.is_empty() {
        let sudo: &[&str] = if is_root() {
            &[]
        } else if have("sudo") {
            &["sudo"]
        } else {
            bail!("missing packages {missing:?}: run as root or install them with apt-get");
        };
        let apt = |args: &[&str]| {
            let mut cmd = Command::new(sudo.first().copied().unwrap_or("apt-get"));
            if !sudo.is_empty() {
                cmd.arg("apt-get");
            }
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        };
        run(&mut apt(&["update", "-qq"]))?;
        let mut install = apt(&["install", "-y", "-qq", "--no-install-recommends"]);
        install.args(&missing);
        run(&mut install)?;
    }
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    if !targets.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(FIRMWARE_TARGET)) {
        run(Command::new("rustup").args(["target", "add", FIRMWARE_TARGET]))?;
    }
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output();
    if !nightly.is_ok_and(|o| o.status.success()) {
        bail!("the fuzzers need a nightly toolchain: `rustup toolchain install nightly`");
    }
    install_cargo_deb()?;
    if !Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        run(cargo().args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Installs cargo-deb (`cargo xtask deb`) when it is missing.
pub fn install_cargo_deb() -> Result<()> {
    if !cargo()
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        run(cargo().args(["install", "cargo-deb", "--locked"]))?;
    }
    Ok(())
}

/// Everything CI checks, in order of increasing cost.
pub fn ci(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut fuzz_seconds = 20u64;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fuzz-seconds" => {
                fuzz_seconds = args
                    .next()
                    .context("--fuzz-seconds needs a value")?
                    .parse()?
            }
            other => bail!("ci: unknown option `{other}`"),
        }
    }
    setup()?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "build",
        "--release",
        "--target",
        FIRMWARE_TARGET,
        "-p",
        "proto-core",
    ]))?;
    // The firmware crate is its own workspace: its checks, then both boards' release images
    // with their flash and RAM footprint (over budget or an allocator linked fails).
    let (fw_passed, fw_failed) = crate::firmware::check()?;
    crate::firmware::build_boards()?;
    // The QEMU image, built here so that its build fails apart from the tests that run it.
    crate::qemu::build_image(Some(crate::qemu::DEFAULT_ADDRESS))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    crate::fuzz::fuzz(fuzz_seconds, &[])?;
    let (passed, failed) = test_workspace()?;
    // The workspace's tests run proto-core with `fast-gcm` (std-host turns it on); the
    // portable AES-GCM the firmware uses is tested on its own.
    let (p_passed, p_failed) =
        run_counting_tests(cargo().args(["test", "-p", "proto-core", "--lib", "crypto::"]))?;
    let (passed, failed) = (passed + fw_passed + p_passed, failed + fw_failed + p_failed);
    // The Debian package, built and checked in a scratch directory (never installed here:
    // Debian's uftp is the tests' peer).
    crate::package::deb()?;
    eprintln!("ci: all checks passed");
    // The closing line CI reads: the totals over every test binary.
    println!("tests: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs `cargo test --workspace`, echoing its output, and adds up its `test result:` lines.
/// `--workspace`, not the root manifest's `default-members`: those leave out the root-only
/// end-to-end crate so that a plain `cargo test` passes without root, and CI runs it too.
fn test_workspace() -> Result<(u64, u64)> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]).current_dir(root());
    run_counting_tests(&mut cmd)
}

/// Runs a `cargo test` command (in the directory it names, else the workspace root), echoing
/// its output, and adds up its `test result:` lines: (passed, failed).
pub fn run_counting_tests(cmd: &mut Command) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    cmd.stdout(std::process::Stdio::piped());
    eprintln!("$ {}", show(cmd));
    let mut child = cmd.spawn().context("could not start cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .find_map(|part| part.trim().strip_suffix(word))
                    .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                    .unwrap_or(0)
            };
            passed += count(" passed");
            failed += count(" failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        println!("tests: {passed} passed, {failed} failed");
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed))
}
