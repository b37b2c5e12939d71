//! `cargo xtask demo`: the main job on this machine — a receiver (`uftpd`) and a sender (`uftp`)
//! over multicast on the loopback interface, sending a file and a small directory tree, then
//! checking every received copy.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::ci::{root, run};

/// Runs the demo; `--size MiB` sets the big file's size, `--port` the UFTP port.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    let mut size_mib = 20u64;
    let mut port = 1044u16;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size" => size_mib = args.next().context("--size needs MiB")?.parse()?,
            "--port" => port = args.next().context("--port needs a number")?.parse()?,
            other => bail!("demo: unknown option `{other}` (options: --size MiB, --port N)"),
        }
    }
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "build",
            "--release",
            "-p",
            "std-host",
            "--bins",
        ]),
    )?;
    let bin = root().join("target/release");
    let work = std::env::temp_dir().join(format!("uftp-rs-demo-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let (src, dst) = (work.join("send"), work.join("received"));
    fs::create_dir_all(src.join("docs/empty-dir"))?;
    fs::create_dir_all(&dst)?;
    write_random(&src.join("image.bin"), size_mib << 20)?;
    fs::write(
        src.join("docs/readme.txt"),
        b"uftp-rs demo: sent by multicast\n",
    )?;
    fs::write(src.join("docs/empty file.txt"), b"")?;
    std::os::unix::fs::symlink("readme.txt", src.join("docs/latest"))?;

    // Sender and receiver share this host, hence its addresses: the receiver takes its own ID.
    println!(
        "demo: receiver `uftpd -d -I lo -U 0x7f000002 -p {port} -D {}`",
        dst.display()
    );
    let log = work.join("uftpd.log");
    let mut uftpd = Command::new(bin.join("uftpd"))
        .args([
            "-d",
            "-I",
            "lo",
            "-U",
            "0x7f000002",
            "-p",
            &port.to_string(),
            "-D",
        ])
        .arg(&dst)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(&log)?)
        .spawn()
        .context("starting uftpd")?;
    let guard = KillOnDrop(uftpd.id());
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("listening") {
            break;
        }
        if let Some(status) = uftpd.try_wait()? {
            bail!("uftpd exited ({status}) before listening:\n{text}");
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("uftpd did not start listening within 10 s:\n{text}");
        }
        sleep(Duration::from_millis(50));
    }

    println!("demo: sender `uftp -I lo -p {port} -R 200000 image.bin docs` (200 Mbit/s)");
    let status = Command::new(bin.join("uftp"))
        .args([
            "-I",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-R",
            "200000",
            "image.bin",
            "docs",
        ])
        .current_dir(&src)
        .status()
        .context("starting uftp")?;
    sleep(Duration::from_millis(300));
    drop(guard);
    let _ = uftpd.wait();
    println!("demo: receiver log:");
    for line in fs::read_to_string(&log).unwrap_or_default().lines() {
        println!("  {line}");
    }
    if !status.success() {
        bail!("uftp failed ({status}); files are in {}", work.display());
    }
    let mut checked = 0;
    for rel in ["image.bin", "docs/readme.txt", "docs/empty file.txt"] {
        let (a, b) = (digest(&src.join(rel))?, digest(&dst.join(rel))?);
        if a != b {
            bail!("{rel} differs after transfer (kept in {})", work.display());
        }
        println!("demo: {rel}: sha256 {a} — identical");
        checked += 1;
    }
    let link = fs::read_link(dst.join("docs/latest")).context("symlink docs/latest")?;
    if link != Path::new("readme.txt") || !dst.join("docs/empty-dir").is_dir() {
        bail!(
            "the symlink or the empty directory did not arrive (kept in {})",
            work.display()
        );
    }
    println!("demo: {checked} files identical, symlink and empty directory recreated");
    fs::remove_dir_all(&work)?;
    Ok(())
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

fn write_random(path: &PathBuf, len: u64) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(fs::File::create(path)?);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..len / 8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f.write_all(&x.to_le_bytes())?;
    }
    f.write_all(&vec![0x5a; (len % 8) as usize])?;
    f.flush()?;
    Ok(())
}

fn digest(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
