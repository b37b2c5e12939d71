//! `cargo xtask firmware`: builds the release firmware of every board for
//! `thumbv7em-none-eabihf` and prints what it takes of flash and static RAM, read from the
//! linked ELF; fails if an image is over budget or links an allocator. Also the firmware
//! crate's checks for `cargo xtask ci` (its own workspace: fmt, clippy, unit tests).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ci::{cargo, FIRMWARE_TARGET};

/// The boards: binary name and the cargo features that select it.
pub const BOARDS: &[(&str, &str)] = &[
    ("nucleo-h743zi", "nucleo-h743zi"),
    ("nucleo-f767zi", "nucleo-f767zi"),
];

/// Flash budget of a release image with encryption (issue 6).
const FLASH_BUDGET: u64 = 160 * 1024;
/// Static RAM budget.
const RAM_BUDGET: u64 = 64 * 1024;
/// Symbols that only an allocator (or code that allocates) brings in.
const ALLOCATOR_SYMBOLS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rust_dealloc",
    "__rg_alloc",
    "__rdl_alloc",
    "__rust_alloc_error_handler",
];

/// The firmware crate's folder.
pub fn dir() -> PathBuf {
    crate::ci::root().join("embedded-target")
}

/// Where cargo puts the firmware crate's builds.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir().join("target"))
}

/// A cargo command run in the firmware crate's own workspace.
fn firmware_cargo(args: &[&str]) -> Command {
    let mut cmd = cargo();
    cmd.args(args).current_dir(dir());
    cmd
}

/// Runs a command in the firmware crate's folder (as `ci::run` does in the workspace root).
fn run(mut cmd: Command) -> Result<()> {
    cmd.current_dir(dir());
    let shown = format!("{cmd:?}");
    eprintln!("$ (in embedded-target) {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// `cargo xtask firmware`.
pub fn main(mut args: impl Iterator<Item = String>) -> Result<()> {
    if let Some(a) = args.next() {
        bail!("firmware: unknown argument `{a}`");
    }
    build_boards()
}

/// Builds every board's release image and reports (and checks) its footprint.
pub fn build_boards() -> Result<()> {
    let mut reports = Vec::new();
    for (bin, features) in BOARDS {
        run(firmware_cargo(&[
            "build",
            "--release",
            "--target",
            FIRMWARE_TARGET,
            "--no-default-features",
            "--features",
            features,
            "--bin",
            bin,
        ]))?;
        let elf = target_dir().join(FIRMWARE_TARGET).join("release").join(bin);
        let bytes = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
        let report = Footprint::of(&bytes).with_context(|| format!("{}", elf.display()))?;
        reports.push((bin, elf, report));
    }
    println!(
        "{:<15} {:>8} {:>8} {:>6} {:>8} {:>20} {:>8} {:>8} {:>20}",
        "firmware",
        ".text",
        ".rodata",
        ".data",
        "vectors",
        "flash",
        ".bss",
        ".uninit",
        "static RAM"
    );
    let mut over = Vec::new();
    for (bin, elf, f) in &reports {
        println!(
            "{:<15} {:>8} {:>8} {:>6} {:>8} {:>20} {:>8} {:>8} {:>20}",
            bin,
            f.text,
            f.rodata,
            f.data,
            f.vectors,
            format!("{} ({:.1} KiB)", f.flash(), f.flash() as f64 / 1024.0),
            f.bss,
            f.uninit,
            format!("{} ({:.1} KiB)", f.ram(), f.ram() as f64 / 1024.0),
        );
        if f.flash() > FLASH_BUDGET {
            over.push(format!("{bin}: flash {} > {FLASH_BUDGET}", f.flash()));
        }
        if f.ram() > RAM_BUDGET {
            over.push(format!("{bin}: static RAM {} > {RAM_BUDGET}", f.ram()));
        }
        if let Some(sym) = &f.allocator {
            over.push(format!(
                "{bin} links an allocator ({sym} in {}): the firmware must not allocate",
                elf.display()
            ));
        }
    }
    println!(
        "flash = .vector_table + .text + .rodata + .data (budget {} KiB); static RAM = .data + \
         .bss + .uninit (budget {} KiB); no allocator linked",
        FLASH_BUDGET / 1024,
        RAM_BUDGET / 1024
    );
    if !over.is_empty() {
        bail!("firmware over budget:\n  {}", over.join("\n  "));
    }
    Ok(())
}

/// The firmware crate's own checks (it is outside the host workspace): fmt, clippy for the
/// host run, each STM32 board and the QEMU (MPS2) image, and its unit tests. Returns the tests' (passed, failed).
pub fn check() -> Result<(u64, u64)> {
    run(firmware_cargo(&["fmt", "--", "--check"]))?;
    let host = host_target()?;
    run(firmware_cargo(&[
        "clippy",
        "--target",
        &host,
        "--no-default-features",
        "--features",
        "host",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    for (bin, features) in BOARDS {
        run(firmware_cargo(&[
            "clippy",
            "--release",
            "--target",
            FIRMWARE_TARGET,
            "--no-default-features",
            "--features",
            features,
            "--bin",
            bin,
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    run(firmware_cargo(&[
        "clippy",
        "--release",
        "--target",
        FIRMWARE_TARGET,
        "--no-default-features",
        "--features",
        "mps2",
        "--bin",
        "mps2",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut test = firmware_cargo(&[
        "test",
        "--target",
        &host,
        "--no-default-features",
        "--features",
        "host",
        "--lib",
    ]);
    crate::ci::run_counting_tests(&mut test)
}

/// The host's target triple (the firmware crate's default target is the board's).
fn host_target() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV names no host")
}

/// What an image takes, from its ELF section headers and symbols.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Footprint {
    vectors: u64,
    text: u64,
    rodata: u64,
    data: u64,
    bss: u64,
    uninit: u64,
    /// An allocator symbol, if one is linked.
    allocator: Option<String>,
}

impl Footprint {
    fn flash(&self) -> u64 {
        self.vectors + self.text + self.rodata + self.data
    }

    fn ram(&self) -> u64 {
        self.data + self.bss + self.uninit
    }

    /// Reads a 32-bit little-endian ELF (what `thumbv7em-none-eabihf` links).
    fn of(elf: &[u8]) -> Result<Footprint> {
        let u16_at = |o: usize| -> Result<u64> {
            let b = elf.get(o..o + 2).context("truncated ELF")?;
            Ok(u64::from(u16::from_le_bytes([b[0], b[1]])))
        };
        let u32_at = |o: usize| -> Result<u64> {
            let b = elf.get(o..o + 4).context("truncated ELF")?;
            Ok(u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        };
        if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 1, 1][..]) {
            bail!("not a 32-bit little-endian ELF");
        }
        let shoff = u32_at(0x20)? as usize;
        let shentsize = u16_at(0x2e)? as usize;
        let shnum = u16_at(0x30)? as usize;
        let shstrndx = u16_at(0x32)? as usize;
        let section = |i: usize| -> Result<(u64, u64, u64, u64, u64)> {
            let h = shoff + i * shentsize;
            // name, type, offset, size, link
            Ok((
                u32_at(h)?,
                u32_at(h + 4)?,
                u32_at(h + 16)?,
                u32_at(h + 20)?,
                u32_at(h + 24)?,
            ))
        };
        let c_str = |at: usize| -> String {
            let end = elf[at.min(elf.len())..]
                .iter()
                .position(|&b| b == 0)
                .map_or(elf.len(), |n| at + n);
            String::from_utf8_lossy(&elf[at.min(end)..end]).into_owned()
        };
        let (_, _, names_off, _, _) = section(shstrndx)?;
        let mut f = Footprint::default();
        for i in 0..shnum {
            let (name, kind, offset, size, link) = section(i)?;
            match c_str((names_off + name) as usize).as_str() {
                ".vector_table" => f.vectors += size,
                ".text" => f.text += size,
                ".rodata" => f.rodata += size,
                ".data" => f.data += size,
                ".bss" => f.bss += size,
                ".uninit" => f.uninit += size,
                _ => {}
            }
            // SHT_SYMTAB: 16-byte entries naming symbols in the string table `link`.
            if kind == 2 {
                let (_, _, strings, _, _) = section(link as usize)?;
                for s in (0..size as usize / 16).map(|k| offset as usize + k * 16) {
                    let sym = c_str((strings + u32_at(s)?) as usize);
                    if ALLOCATOR_SYMBOLS.contains(&sym.as_str()) {
                        f.allocator = Some(sym);
                    }
                }
            }
        }
        if f.text == 0 {
            bail!("no .text section");
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF32 with the named sections (sizes given) and a symbol table.
    fn elf(sections: &[(&str, u32)], symbols: &[&str]) -> Vec<u8> {
        let mut shstr = vec![0u8];
        let mut names = Vec::new();
        for (n, _) in sections
            .iter()
            .chain([(".symtab", 0), (".strtab", 0), (".shstrtab", 0)].iter())
        {
            names.push(shstr.len() as u32);
            shstr.extend_from_slice(n.as_bytes());
            shstr.push(0);
        }
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 16];
        for s in symbols {
            let mut e = [0u8; 16];
            e[..4].copy_from_slice(&(strtab.len() as u32).to_le_bytes());
            symtab.extend_from_slice(&e);
            strtab.extend_from_slice(s.as_bytes());
            strtab.push(0);
        }
        let mut out = vec![0u8; 0x34];
        out[..6].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1]);
        let symtab_off = out.len() as u32;
        out.extend_from_slice(&symtab);
        let strtab_off = out.len() as u32;
        out.extend_from_slice(&strtab);
        let shstr_off = out.len() as u32;
        out.extend_from_slice(&shstr);
        let shoff = out.len() as u32;
        let n = sections.len() + 3;
        out[0x20..0x24].copy_from_slice(&shoff.to_le_bytes());
        out[0x2e..0x30].copy_from_slice(&40u16.to_le_bytes());
        out[0x30..0x32].copy_from_slice(&(n as u16).to_le_bytes());
        out[0x32..0x34].copy_from_slice(&((n - 1) as u16).to_le_bytes());
        let mut header = |name: u32, kind: u32, off: u32, size: u32, link: u32| {
            let mut h = [0u8; 40];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[16..20].copy_from_slice(&off.to_le_bytes());
            h[20..24].copy_from_slice(&size.to_le_bytes());
            h[24..28].copy_from_slice(&link.to_le_bytes());
            out.extend_from_slice(&h);
        };
        for (i, (_, size)) in sections.iter().enumerate() {
            header(names[i], 1, 0, *size, 0);
        }
        let k = sections.len();
        header(names[k], 2, symtab_off, symtab.len() as u32, (k + 1) as u32);
        header(names[k + 1], 3, strtab_off, strtab.len() as u32, 0);
        header(names[k + 2], 3, shstr_off, shstr.len() as u32, 0);
        out
    }

    #[test]
    fn footprint_sums_flash_and_ram_sections_and_spots_an_allocator() {
        let sections = [
            (".vector_table", 664),
            (".text", 100_000),
            (".rodata", 9_000),
            (".data", 80),
            (".bss", 40_000),
            (".uninit", 1024),
            (".debug_info", 9_999_999),
        ];
        let f = Footprint::of(&elf(&sections, &["main", "memcpy"])).unwrap();
        assert_eq!(f.flash(), 664 + 100_000 + 9_000 + 80);
        assert_eq!(f.ram(), 80 + 40_000 + 1024);
        assert_eq!(f.allocator, None);
        let f = Footprint::of(&elf(&sections, &["main", "__rust_alloc"])).unwrap();
        assert_eq!(f.allocator.as_deref(), Some("__rust_alloc"));
        assert!(Footprint::of(b"not an elf").is_err());
        assert!(Footprint::of(&elf(&[(".data", 1)], &[])).is_err());
    }
}
