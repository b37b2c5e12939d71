//! `cargo xtask bench`: our `uftp` → `uftpd` against uftp 4.10.2's (Debian's `uftp` package,
//! when installed) on the same testbed ([`crate::testbed`]: network namespaces on a bridge,
//! nftables loss on the receivers' input), the same file and the same options, alternating
//! ours and theirs within each round; every receiver's copy is compared with the source. Prints
//! a markdown table of medians and writes every run to `target/bench/results.json`. See
//! README.md, "Benchmarks".

use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::calibration::Calibration;
use crate::ci::{root, run};
use crate::sys::{clock_ticks, try_wait4};
use crate::testbed::{remove_stale, scratch, testbed};
use testnet::{try_require_root_tools, Host, Proc, Testbed};

const USAGE: &str = "usage: cargo xtask bench [options]   (root)

Our uftp -> uftpd and uftp 4.10.2's (when installed) on a network-namespace testbed.
  --case NAME    run only this case (repeatable); default: all of
                 loss0 loss1 loss5 r16 enc b8800 auto1 calibration
  --size MiB     the file's size (256; the r16 case sends a quarter of it)
  --rounds N     rounds, ours and theirs alternating in each (3)
  --quick        64 MiB, 1 round: for development
  --no-blast     skip the raw ceiling (cargo xtask blast)
";

/// Fails once SIGINT or SIGTERM arrived: the callers unwind and delete what they made.
pub fn check_interrupt() -> Result<()> {
    if crate::sys::interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// The median (mean of the middle two for an even count); NaN for none.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One benchmark case.
#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    receivers: usize,
    loss: u32,
    mtu: u32,
    block: u32,
    encrypted: bool,
    /// Ours only, with the default rate control beside ours unpaced.
    auto_rate: bool,
    /// The file is the `--size` divided by this.
    size_div: u64,
    what: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "loss0",
        receivers: 4,
        loss: 0,
        mtu: 1500,
        block: 1300,
        encrypted: false,
        auto_rate: false,
        size_div: 1,
        what: "4 receivers, 0% loss",
    },
    Case {
        name: "loss1",
        receivers: 4,
        loss: 1,
        mtu: 1500,
        block: 1300,
        encrypted: false,
        auto_rate: false,
        size_div: 1,
        what: "4 receivers, 1% loss",
    },
    Case {
        name: "loss5",
        receivers: 4,
        loss: 5,
        mtu: 1500,
        block: 1300,
        encrypted: false,
        auto_rate: false,
        size_div: 1,
        what: "4 receivers, 5% loss",
    },
    Case {
        name: "r16",
        receivers: 16,
        loss: 0,
        mtu: 1500,
        block: 1300,
        encrypted: false,
        auto_rate: false,
        size_div: 4,
        what: "16 receivers, 0% loss, a quarter of the file",
    },
    Case {
        name: "enc",
        receivers: 4,
        loss: 0,
        mtu: 1500,
        block: 1300,
        encrypted: true,
        auto_rate: false,
        size_div: 1,
        what: "4 receivers, ecdh_ecdsa P-256, AES-256-GCM, SHA-256",
    },
    Case {
        name: "b8800",
        receivers: 4,
        loss: 0,
        mtu: 9000,
        block: 8800,
        encrypted: false,
        auto_rate: false,
        size_div: 1,
        what: "4 receivers, MTU 9000, -b 8800",
    },
    Case {
        name: "auto1",
        receivers: 4,
        loss: 1,
        mtu: 1500,
        block: 1300,
        encrypted: false,
        auto_rate: true,
        size_div: 1,
        what: "4 receivers, 1% loss, ours: default rate (no -R) and -R -1",
    },
];

/// The sender's options for an encrypted case (the receivers get `-E -k KEY`).
const CRYPTO: [&str; 6] = ["-Y", "aes256-gcm", "-h", "sha256", "-e", "ecdh_ecdsa"];
/// How long a default-rate run may take before it is stopped and reported as too slow.
const AUTO_LIMIT: Duration = Duration::from_secs(30);
const SENDER_ID: &str = "0x0A000001";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prog {
    Ours,
    Debian,
}

/// One row of the table: a program with its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Variant {
    prog: Prog,
    /// No `-R`: the program's default rate.
    default_rate: bool,
}

impl Variant {
    fn label(self) -> &'static str {
        match (self.prog, self.default_rate) {
            (Prog::Ours, false) => "ours",
            (Prog::Ours, true) => "ours, default rate",
            (Prog::Debian, false) => "uftp 4.10.2",
            (Prog::Debian, true) => "uftp 4.10.2, default rate",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
struct Sample {
    secs: f64,
    goodput_mbps: f64,
    sender_cpu_per_gib: f64,
    receiver_cpu_per_gib: f64,
    wire_per_byte: f64,
    passes: Option<u64>,
    naks: Option<u64>,
    dropped: Vec<u64>,
}

/// A run that did not deliver: why.
#[derive(Debug, Clone)]
enum Outcome {
    Done(Sample),
    /// A default-rate run stopped at [`AUTO_LIMIT`], with its wire rate so far (Mbit/s).
    TooSlow(f64),
    Failed(String),
}

#[derive(Debug)]
struct Row {
    case: Case,
    variant: Variant,
    runs: Vec<Outcome>,
}

impl Row {
    fn samples(&self) -> Vec<&Sample> {
        self.runs
            .iter()
            .filter_map(|o| match o {
                Outcome::Done(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    fn med(&self, f: impl Fn(&Sample) -> f64) -> f64 {
        median(self.samples().into_iter().map(f).collect())
    }

    fn med_opt(&self, f: impl Fn(&Sample) -> Option<u64>) -> Option<f64> {
        let v: Option<Vec<f64>> = self
            .samples()
            .into_iter()
            .map(|s| f(s).map(|x| x as f64))
            .collect();
        v.filter(|v| !v.is_empty()).map(median)
    }
}

struct Options {
    cases: Vec<Case>,
    size: u64,
    rounds: usize,
    blast: bool,
    /// The `calibration` case: the simulator against real sockets ([`crate::calibration`]).
    calibration: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Options>> {
    let mut names = Vec::new();
    // 512 MiB would make the default run about 15 min on a shared 2-core machine; 256 takes 8.
    let mut size_mib = 256u64;
    let mut rounds = 3usize;
    let mut blast = true;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--case" => names.push(args.next().context("--case needs a name")?),
            "--size" => {
                size_mib = args.next().context("--size needs MiB")?.parse()?;
                if size_mib == 0 {
                    bail!("--size must be at least 1 MiB");
                }
            }
            "--rounds" => {
                rounds = args.next().context("--rounds needs N")?.parse()?;
                if rounds == 0 {
                    bail!("--rounds must be at least 1");
                }
            }
            "--quick" => (size_mib, rounds) = (64, 1),
            "--no-blast" => blast = false,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => bail!("bench: unknown option `{other}`\n{USAGE}"),
        }
    }
    let all = names.is_empty();
    let calibration = all || names.iter().any(|n| n == "calibration");
    names.retain(|n| n != "calibration");
    let cases = if all {
        CASES.to_vec()
    } else {
        names
            .iter()
            .map(|n| {
                CASES
                    .iter()
                    .find(|c| c.name == n)
                    .copied()
                    .with_context(|| format!("no case `{n}`\n{USAGE}"))
            })
            .collect::<Result<_>>()?
    };
    Ok(Some(Options {
        cases,
        size: size_mib << 20,
        rounds,
        blast,
        calibration,
    }))
}

/// Runs `cargo xtask bench`.
pub fn main(args: impl Iterator<Item = String>) -> Result<()> {
    let Some(opts) = parse(args)? else {
        return Ok(());
    };
    try_require_root_tools()?;
    crate::sys::catch_interrupts();
    remove_stale();
    let t0 = Instant::now();
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
            "build",
            "--release",
            "-p",
            "std-host",
            "--bins",
        ]),
    )?;
    let target = target_dir();
    let _ = fs::remove_dir_all(target.join("bench/logs"));
    let bin = target.join("release");
    let debian = Path::new("/usr/bin/uftp").exists() && Path::new("/usr/bin/uftpd").exists();
    if !debian {
        eprintln!("bench: uftp 4.10.2 is not installed (`cargo xtask setup`): ours only");
    }
    let dir = scratch();
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let cleanup = RemoveOnDrop(dir.clone());
    let result = bench(&opts, &bin, debian, &dir);
    drop(cleanup);
    let (rows, blast, calibration) = result?;
    let total = t0.elapsed().as_secs_f64();
    let table = table(&rows, blast.as_deref(), calibration.as_ref(), &opts, total);
    println!("{table}");
    let out = target.join("bench");
    fs::create_dir_all(&out)?;
    let path = out.join("results.json");
    fs::write(
        &path,
        serde_json::to_string_pretty(&to_json(
            &rows,
            blast.as_deref(),
            calibration.as_ref(),
            &opts,
            total,
        ))?,
    )?;
    eprintln!("bench: {} written; {total:.0} s in all", path.display());
    let failed: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.runs.iter().filter_map(move |o| match o {
                Outcome::Failed(e) => Some(format!("{} {}: {e}", r.case.name, r.variant.label())),
                _ => None,
            })
        })
        .collect();
    if !failed.is_empty() {
        bail!("{} run(s) failed:\n{}", failed.len(), failed.join("\n"));
    }
    Ok(())
}

/// Copies one run's logs to `target/bench/logs/CASE-PROGRAM-ROUND/` (the scratch directory
/// goes at the end), so a slow or failed run can be read afterwards.
fn keep_logs(dir: &Path, case: &Case, variant: Variant, round: usize) {
    let label = variant.label().replace([' ', ','], "-").replace("--", "-");
    let to = target_dir()
        .join("bench/logs")
        .join(format!("{}-{label}-{}", case.name, round + 1));
    let _ = fs::remove_dir_all(&to);
    if fs::create_dir_all(&to).is_err() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir.join("logs")) {
        for e in entries.flatten() {
            let _ = fs::copy(e.path(), to.join(e.file_name()));
        }
    }
}

/// Deletes a directory tree when dropped (also when unwinding from an error).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The Cargo target directory (`CARGO_TARGET_DIR`, else `target/` of the workspace).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root().join(d),
        None => root().join("target"),
    }
}

type Results = (
    Vec<Row>,
    Option<Vec<crate::blast::Blast>>,
    Option<Calibration>,
);

fn bench(opts: &Options, bin: &Path, debian: bool, dir: &Path) -> Result<Results> {
    let mut rows = Vec::new();
    for case in &opts.cases {
        let variants: Vec<Variant> = if case.auto_rate {
            vec![
                Variant {
                    prog: Prog::Ours,
                    default_rate: true,
                },
                Variant {
                    prog: Prog::Ours,
                    default_rate: false,
                },
            ]
        } else if debian {
            vec![
                Variant {
                    prog: Prog::Ours,
                    default_rate: false,
                },
                Variant {
                    prog: Prog::Debian,
                    default_rate: false,
                },
            ]
        } else {
            vec![Variant {
                prog: Prog::Ours,
                default_rate: false,
            }]
        };
        let size = (opts.size / case.size_div).max(1 << 20);
        let file = source_file(dir, size)?;
        eprintln!(
            "bench: case {} ({}): {} MiB, {} round(s)",
            case.name,
            case.what,
            size >> 20,
            opts.rounds
        );
        let bed = testbed(case.receivers, case.mtu)?;
        for h in bed.receivers() {
            if case.loss > 0 {
                h.try_set_loss(case.loss)?;
            }
        }
        let keys = if case.encrypted {
            keys(dir, bin, case.receivers)?
        } else {
            Vec::new()
        };
        let mut case_rows: Vec<Row> = variants
            .iter()
            .map(|&variant| Row {
                case: *case,
                variant,
                runs: Vec::new(),
            })
            .collect();
        for round in 0..opts.rounds {
            // Alternate who goes first.
            let n = case_rows.len();
            for k in 0..n {
                let row = &mut case_rows[(k + round) % n];
                if row.runs.iter().any(|o| matches!(o, Outcome::TooSlow(_))) {
                    continue;
                }
                let outcome = match run_once(case, row.variant, &bed, bin, dir, &file, &keys) {
                    Ok(o) => o,
                    Err(e) => {
                        check_interrupt()?;
                        Outcome::Failed(format!("{e:#}"))
                    }
                };
                eprintln!(
                    "bench: {} {} round {}/{}: {}",
                    case.name,
                    row.variant.label(),
                    round + 1,
                    opts.rounds,
                    progress(&outcome)
                );
                keep_logs(dir, case, row.variant, round);
                row.runs.push(outcome);
            }
        }
        drop(bed);
        fs::remove_file(&file)?;
        rows.extend(case_rows);
    }
    let blast = if opts.blast {
        eprintln!("bench: the raw ceiling (cargo xtask blast), 4 receivers, MTU 1500");
        Some(crate::blast::run(4, opts.size)?)
    } else {
        None
    };
    let calibration = if opts.calibration {
        eprintln!("bench: case calibration (the simulator against real sockets)");
        let c = crate::calibration::run(bin, dir)?;
        eprintln!("bench: {}", c.describe());
        Some(c)
    } else {
        None
    };
    Ok((rows, blast, calibration))
}

fn progress(o: &Outcome) -> String {
    match o {
        Outcome::Done(s) => format!(
            "{:.0} Mbit/s in {:.2} s; CPU s/GiB sender {:.2}, receiver {:.2}; wire {:.3} B/B; \
             passes {}, NAKs {}; drops {:?}",
            s.goodput_mbps,
            s.secs,
            s.sender_cpu_per_gib,
            s.receiver_cpu_per_gib,
            s.wire_per_byte,
            opt(s.passes),
            opt(s.naks),
            s.dropped
        ),
        Outcome::TooSlow(mbps) => format!(
            "stopped after {} s at {mbps:.1} Mbit/s on the wire",
            AUTO_LIMIT.as_secs()
        ),
        Outcome::Failed(e) => format!("FAILED: {e}"),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| v.to_string())
}

/// A random file of `size` bytes on tmpfs.
pub fn source_file(dir: &Path, size: u64) -> Result<PathBuf> {
    let src = dir.join("src");
    fs::create_dir_all(&src)?;
    let path = src.join(format!("bench-{}MiB.bin", size >> 20));
    let mut f = fs::File::create(&path)?;
    let copied = std::io::copy(&mut fs::File::open("/dev/urandom")?.take(size), &mut f)?;
    if copied != size {
        bail!("/dev/urandom gave {copied} bytes of {size}");
    }
    Ok(path)
}

/// A P-256 client key per receiver (`uftp_keymgt -g ec:prime256v1`: uftp 4.10.2's, else ours):
/// a 4.10.2 client only accepts a server whose key type it holds.
fn keys(dir: &Path, bin: &Path, receivers: usize) -> Result<Vec<PathBuf>> {
    let keymgt = if Path::new("/usr/bin/uftp_keymgt").exists() {
        PathBuf::from("/usr/bin/uftp_keymgt")
    } else {
        bin.join("uftp_keymgt")
    };
    let kdir = dir.join("keys");
    fs::create_dir_all(&kdir)?;
    (1..=receivers)
        .map(|i| {
            let path = kdir.join(format!("client{i}.pem"));
            let out = Command::new(&keymgt)
                .arg("-g")
                .arg("ec:prime256v1")
                .arg(&path)
                .output()
                .with_context(|| format!("running {}", keymgt.display()))?;
            if !out.status.success() {
                bail!(
                    "{} -g ec:prime256v1 failed: {}",
                    keymgt.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(path)
        })
        .collect()
}

fn uid(i: usize) -> String {
    format!("0x0B0000{i:02X}")
}

/// CPU seconds (user + system) of a running process, from `/proc/PID/stat`.
fn proc_cpu(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("malformed /proc/PID/stat")?.1;
    // After the command: state is field 3; utime and stime are fields 14 and 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks() as f64)
}

fn run_once(
    case: &Case,
    variant: Variant,
    bed: &Testbed,
    bin: &Path,
    dir: &Path,
    file: &Path,
    keys: &[PathBuf],
) -> Result<Outcome> {
    check_interrupt()?;
    let size = fs::metadata(file)?.len();
    let logs = dir.join("logs");
    fs::create_dir_all(&logs)?;
    let dests: Vec<PathBuf> = (1..=bed.receivers().len())
        .map(|i| dir.join("dest").join(format!("r{i}")))
        .collect();
    for d in &dests {
        let _ = fs::remove_dir_all(d);
        fs::create_dir_all(d)?;
    }
    let (uftp, uftpd, ready) = match variant.prog {
        Prog::Ours => (bin.join("uftp"), bin.join("uftpd"), "listening on port"),
        // Its last start-up line, after its socket is bound.
        Prog::Debian => ("/usr/bin/uftp".into(), "/usr/bin/uftpd".into(), "Loaded"),
    };
    let mut receivers = Vec::new();
    for (i, (h, d)) in bed.receivers().iter().zip(&dests).enumerate() {
        let mut cmd = h.command(&uftpd);
        cmd.args([
            "-d",
            "-I",
            &h.ifname,
            "-U",
            &uid(i + 1),
            "-B",
            "16777216",
            "-D",
        ])
        .arg(d);
        if let Some(k) = keys.get(i) {
            cmd.arg("-E").arg("-k").arg(k);
        }
        let mut p = Proc::try_spawn(
            &format!("uftpd {}", i + 1),
            cmd,
            &logs.join(format!("uftpd{}.log", i + 1)),
        )?;
        p.try_wait_for_line(ready, Duration::from_secs(10), crate::sys::interrupted)?;
        receivers.push(p);
    }
    let dropped0: Vec<u64> = if case.loss > 0 {
        bed.receivers().iter().map(Host::dropped).collect()
    } else {
        Vec::new()
    };
    let ids: Vec<String> = (1..=bed.receivers().len()).map(uid).collect();
    let mut cmd = bed.sender().command(&uftp);
    cmd.args(["-I", &bed.sender().ifname, "-U", SENDER_ID])
        .args(["-b", &case.block.to_string(), "-H", &ids.join(",")]);
    if !variant.default_rate {
        cmd.args(["-R", "-1"]);
    }
    if case.encrypted {
        cmd.args(CRYPTO);
    }
    cmd.arg(file);
    let tx0 = bed.sender().try_tx_bytes()?;
    let start = Instant::now();
    let mut sender = Proc::try_spawn("uftp", cmd, &logs.join("uftp.log"))?;
    // Generous: 10 Mbit/s and a minute for the session's set-up and end.
    let limit = if variant.default_rate {
        AUTO_LIMIT
    } else {
        Duration::from_secs(60 + size * 8 / 10_000_000)
    };
    let exit = loop {
        if let Some(exit) = try_wait4(sender.pid())? {
            sender.reaped();
            break Some(exit);
        }
        if start.elapsed() > limit {
            break None;
        }
        if let Err(e) = check_interrupt() {
            sender.stop();
            return Err(e);
        }
        sleep(Duration::from_millis(5));
    };
    let secs = start.elapsed().as_secs_f64();
    let tx1 = bed.sender().try_tx_bytes()?;
    let Some(exit) = exit else {
        sender.stop();
        let wire = (tx1 - tx0) as f64 * 8.0 / secs / 1e6;
        if variant.default_rate {
            return Ok(Outcome::TooSlow(wire));
        }
        bail!(
            "{} did not finish within {limit:?} ({wire:.1} Mbit/s on the wire); log tail:\n{}{}",
            uftp.display(),
            tail(&sender.log_text()),
            receiver_tails(&receivers)
        );
    };
    // The receivers' CPU time before they are stopped; each must still be running.
    let mut rcpu = Vec::new();
    for r in &mut receivers {
        if !r.running() {
            bail!("{} exited during the run:\n{}", r.name, tail(&r.log_text()));
        }
        rcpu.push(proc_cpu(r.pid())?);
    }
    let log = sender.log_text();
    if exit.code != 0 {
        bail!(
            "{} exited {} after {secs:.1} s; log tail:\n{}{}",
            uftp.display(),
            exit.code,
            tail(&log),
            receiver_tails(&receivers)
        );
    }
    let dropped: Vec<u64> = if case.loss > 0 {
        bed.receivers()
            .iter()
            .zip(&dropped0)
            .map(|(h, d0)| h.dropped() - d0)
            .collect()
    } else {
        Vec::new()
    };
    if dropped.contains(&0) {
        bail!(
            "the {}% loss rule dropped nothing at a receiver: {dropped:?}",
            case.loss
        );
    }
    let name = file.file_name().context("file name")?;
    for (i, d) in dests.iter().enumerate() {
        let copy = d.join(name);
        // A receiver may rename its temporary file a moment after the sender's exit.
        let t = Instant::now();
        while !copy.exists() && t.elapsed() < Duration::from_secs(2) {
            sleep(Duration::from_millis(10));
        }
        if let Err(e) = same(file, &copy) {
            bail!(
                "receiver {}'s copy is wrong: {e:#}\n{}",
                i + 1,
                receiver_tails(&receivers)
            );
        }
    }
    for mut r in receivers {
        r.stop();
    }
    for d in &dests {
        let _ = fs::remove_dir_all(d);
    }
    let gib = size as f64 / f64::from(1u32 << 30);
    Ok(Outcome::Done(Sample {
        secs,
        goodput_mbps: size as f64 * 8.0 / secs / 1e6,
        sender_cpu_per_gib: exit.cpu.as_secs_f64() / gib,
        receiver_cpu_per_gib: median(rcpu) / gib,
        wire_per_byte: (tx1 - tx0) as f64 / size as f64,
        passes: passes(&log),
        naks: naks(&log),
        dropped,
    }))
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(15);
    lines[from..].iter().map(|l| format!("  {l}\n")).collect()
}

fn receiver_tails(receivers: &[Proc]) -> String {
    receivers
        .iter()
        .map(|r| format!("--- {}:\n{}", r.name, tail(&r.log_text())))
        .collect()
}

/// Fails unless the two files hold the same bytes.
pub fn same(a: &Path, b: &Path) -> Result<()> {
    let (la, lb) = (
        fs::metadata(a)?.len(),
        fs::metadata(b)
            .with_context(|| format!("{} is missing", b.display()))?
            .len(),
    );
    if la != lb {
        bail!("{} has {lb} bytes, not {la}", b.display());
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 8 << 20], vec![0u8; 8 << 20]);
    let mut at = 0u64;
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(());
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            bail!(
                "{} differs within bytes {at}..{}",
                b.display(),
                at + n as u64
            );
        }
        at += n as u64;
    }
}

/// Passes over the file: ours logs `sent NAME: … N passes`, uftp 4.10.2 `Starting pass N`.
fn passes(log: &str) -> Option<u64> {
    let ours = log
        .lines()
        .filter(|l| l.contains(" passes, "))
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "passes,")?;
            words.get(at.checked_sub(1)?)?.parse().ok()
        });
    ours.or_else(|| {
        log.lines()
            .filter_map(|l| l.trim().strip_prefix("Starting pass ")?.trim().parse().ok())
            .max()
    })
}

/// NAKs (blocks asked for again) the sender received: ours logs `Session done: … N NAKs`,
/// uftp 4.10.2 `Got N NAKs for section S from client C` per status message.
fn naks(log: &str) -> Option<u64> {
    let ours = log
        .lines()
        .filter(|l| l.contains("Session done:"))
        .find_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "NAKs")?;
            words.get(at.checked_sub(1)?)?.parse().ok()
        });
    if ours.is_some() {
        return ours;
    }
    // uftp 4.10.2 names no NAK count when there were none; its pass lines show it ran.
    if !log.contains("Starting pass") {
        return None;
    }
    Some(
        log.lines()
            .filter(|l| l.contains(" NAKs for section "))
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                let at = w.iter().position(|x| *x == "Got")?;
                w.get(at + 1)?.parse::<u64>().ok()
            })
            .sum(),
    )
}

fn fmt(x: f64, places: usize) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{x:.places$}")
    }
}

fn table(
    rows: &[Row],
    blast: Option<&[crate::blast::Blast]>,
    calibration: Option<&Calibration>,
    opts: &Options,
    total: f64,
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "File {} MiB (r16: a quarter), {} round(s), medians; {total:.0} s in all.\n",
        opts.size >> 20,
        opts.rounds
    );
    t.push_str(
        "| case | program | goodput Mbit/s | sender CPU s/GiB | receiver CPU s/GiB | wire B per file B | passes | NAKs | ours/uftp goodput | ours/uftp sender CPU |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let ok = row.samples().len();
        let status = row.runs.iter().find_map(|o| match o {
            Outcome::TooSlow(m) => Some(format!(
                "stopped at {} s ({m:.1} Mbit/s on the wire)",
                AUTO_LIMIT.as_secs()
            )),
            Outcome::Failed(_) => Some(format!(
                "{} of {} runs FAILED",
                row.runs.len() - ok,
                row.runs.len()
            )),
            Outcome::Done(_) => None,
        });
        let goodput = match (&status, ok) {
            (Some(s), 0) => s.clone(),
            (Some(s), _) => format!("{} ({s})", fmt(row.med(|s| s.goodput_mbps), 0)),
            (None, _) => fmt(row.med(|s| s.goodput_mbps), 0),
        };
        let (ratio_g, ratio_c) = ratios(rows, row);
        let _ = writeln!(
            t,
            "| {} | {} | {goodput} | {} | {} | {} | {} | {} | {ratio_g} | {ratio_c} |",
            row.case.name,
            row.variant.label(),
            fmt(row.med(|s| s.sender_cpu_per_gib), 2),
            fmt(row.med(|s| s.receiver_cpu_per_gib), 2),
            fmt(row.med(|s| s.wire_per_byte), 3),
            row.med_opt(|s| s.passes)
                .map_or("n/a".into(), |x| fmt(x, 0)),
            row.med_opt(|s| s.naks).map_or("n/a".into(), |x| fmt(x, 0)),
        );
    }
    if let Some(blasts) = blast {
        let best = blasts
            .iter()
            .max_by(|a, b| a.median_mbps().total_cmp(&b.median_mbps()));
        if let Some(b) = best {
            let ceiling = b.median_mbps();
            let ours = rows
                .iter()
                .find(|r| r.case.name == "loss0" && r.variant.prog == Prog::Ours)
                .map(|r| r.med(|s| s.goodput_mbps));
            let _ = writeln!(
                t,
                "\nRaw ceiling (cargo xtask blast, 4 receivers, MTU 1500, {}-byte datagrams, {}): \
                 {ceiling:.0} Mbit/s at the median receiver{}.",
                crate::blast::DATAGRAM,
                if b.gso { "UDP GSO" } else { "sendmmsg" },
                ours.filter(|x| !x.is_nan())
                    .map_or(String::new(), |o| format!(
                        "; ours at loss0: {o:.0} Mbit/s = {:.0}% of it",
                        100.0 * o / ceiling
                    ))
            );
            for b in blasts {
                let _ = writeln!(t, "- {}", crate::blast::describe(b));
            }
        }
    }
    if let Some(c) = calibration {
        let _ = writeln!(t, "\n{}", c.describe());
    }
    t
}

/// The ratio columns of `row`: ours / uftp 4.10.2 in the same case, or for the default-rate
/// row its goodput as a share of ours unpaced.
fn ratios(rows: &[Row], row: &Row) -> (String, String) {
    let peer = |prog: Prog, default_rate: bool| {
        rows.iter()
            .find(|r| r.case.name == row.case.name && r.variant == Variant { prog, default_rate })
    };
    match (row.variant.prog, row.variant.default_rate) {
        (Prog::Ours, false) => match ours_over_uftp(rows, row) {
            Some((g, c)) => (fmt(g, 2), fmt(c, 2)),
            None => (String::new(), String::new()),
        },
        (Prog::Ours, true) => {
            let share = peer(Prog::Ours, false)
                .map(|u| 100.0 * row.med(|s| s.goodput_mbps) / u.med(|s| s.goodput_mbps))
                .filter(|x| !x.is_nan());
            (
                share.map_or("n/a".into(), |x| format!("{x:.0}% of ours unpaced")),
                String::new(),
            )
        }
        _ => (String::new(), String::new()),
    }
}

/// Ours unpaced / uftp 4.10.2 unpaced in `row`'s case: goodput and sender CPU per GiB.
fn ours_over_uftp(rows: &[Row], row: &Row) -> Option<(f64, f64)> {
    if row.variant.prog != Prog::Ours || row.variant.default_rate {
        return None;
    }
    let d = rows.iter().find(|r| {
        r.case.name == row.case.name && r.variant.prog == Prog::Debian && !r.variant.default_rate
    })?;
    Some((
        row.med(|s| s.goodput_mbps) / d.med(|s| s.goodput_mbps),
        row.med(|s| s.sender_cpu_per_gib) / d.med(|s| s.sender_cpu_per_gib),
    ))
}

fn to_json(
    rows: &[Row],
    blast: Option<&[crate::blast::Blast]>,
    calibration: Option<&Calibration>,
    opts: &Options,
    total: f64,
) -> serde_json::Value {
    let num = |x: f64| if x.is_nan() { json!(null) } else { json!(x) };
    let all = rows;
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let runs: Vec<serde_json::Value> = r
                .runs
                .iter()
                .map(|o| match o {
                    Outcome::Done(s) => json!({
                        "seconds": s.secs,
                        "goodput_mbps": s.goodput_mbps,
                        "sender_cpu_s_per_gib": s.sender_cpu_per_gib,
                        "receiver_cpu_s_per_gib": s.receiver_cpu_per_gib,
                        "wire_bytes_per_file_byte": s.wire_per_byte,
                        "passes": s.passes,
                        "naks": s.naks,
                        "dropped_by_loss_rule": s.dropped,
                    }),
                    Outcome::TooSlow(m) => json!({
                        "stopped_after_seconds": AUTO_LIMIT.as_secs(),
                        "wire_mbps": m,
                    }),
                    Outcome::Failed(e) => json!({ "failed": e }),
                })
                .collect();
            let vs = ours_over_uftp(all, r);
            json!({
                "case": r.case.name,
                "description": r.case.what,
                "receivers": r.case.receivers,
                "loss_percent": r.case.loss,
                "mtu": r.case.mtu,
                "block": r.case.block,
                "program": r.variant.label(),
                "runs": runs,
                "ours_over_uftp": vs.map(|(g, c)| json!({ "goodput": num(g), "sender_cpu": num(c) })),
                "median": {
                    "goodput_mbps": num(r.med(|s| s.goodput_mbps)),
                    "sender_cpu_s_per_gib": num(r.med(|s| s.sender_cpu_per_gib)),
                    "receiver_cpu_s_per_gib": num(r.med(|s| s.receiver_cpu_per_gib)),
                    "wire_bytes_per_file_byte": num(r.med(|s| s.wire_per_byte)),
                    "passes": r.med_opt(|s| s.passes),
                    "naks": r.med_opt(|s| s.naks),
                },
            })
        })
        .collect();
    let blast: Option<Vec<serde_json::Value>> = blast.map(|bs| {
        bs.iter()
            .map(|b| {
                json!({
                    "gso": b.gso,
                    "sender_mbps": b.sent_mbps,
                    "receiver_mbps": b.receivers.iter().map(|r| r.0).collect::<Vec<_>>(),
                    "receiver_loss_percent": b.receivers.iter().map(|r| r.1).collect::<Vec<_>>(),
                })
            })
            .collect()
    });
    json!({
        "size_mib": opts.size >> 20,
        "rounds": opts.rounds,
        "total_seconds": total,
        "rows": rows,
        "blast": blast,
        "calibration": calibration.map(|c| {
            let outcome = |o: &sim::calibration::Outcome| {
                json!({
                    "seconds": o.secs,
                    "filesegs": o.blocks_sent,
                    "retransmitted": o.retransmitted,
                })
            };
            json!({
                "real": outcome(&c.real),
                "simulated": outcome(&c.sim),
                "ratio_sim_over_real": c.ratio(),
                "within_a_quarter": crate::calibration::AGREEMENT.contains(&c.ratio()),
            })
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as uftp 4.10.2 logs them (from a run at 3% loss), trimmed.
    const DEBIAN: &str = "Sending file
Starting pass 1
Sending section 0
Got 1173 NAKs for section 0 from client 0x0B000002
Got 1201 NAKs for section 1 from client 0x0B000002
Starting pass 2
Got 488 NAKs for section 0 from client 0x0B000002
Starting pass 3
Got COMPLETE from client 0x0B000002
Transfer status:
";

    #[test]
    fn passes_and_naks_from_uftp_4_10_2() {
        assert_eq!(passes(DEBIAN), Some(3));
        assert_eq!(naks(DEBIAN), Some(1173 + 1201 + 488));
        // One pass without loss: no NAK line, zero NAKs.
        assert_eq!(naks("Starting pass 1\nSending section 0\n"), Some(0));
    }

    #[test]
    fn passes_and_naks_from_ours() {
        let log = "2026/11/25 20:00:01.000001: sent bench-64MiB.bin: 67108864 bytes, 4 passes, \
                   2050 retransmitted, 17.02 MB/s, 4/4 clients ok\n\
                   2026/11/25 20:00:01.000002: Session done: 1 files, 67108864 bytes in 3.94 s \
                   (17.03 MB/s); 53673 FILESEGs, 2050 retransmitted, 2060 NAKs\n";
        assert_eq!(passes(log), Some(4));
        assert_eq!(naks(log), Some(2060));
    }

    #[test]
    fn nothing_to_parse_is_not_a_number() {
        assert_eq!(passes("uftp: no clients\n"), None);
        assert_eq!(naks("uftp: no clients\n"), None);
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
