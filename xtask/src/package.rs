//! `cargo xtask man` and `cargo xtask deb`: the generated manual pages and completions, and the
//! Debian package.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ci::{cargo, run};

/// Rewrites `std-host/packaging/{man,completions}` from the programs' option tables (the test
/// that checks them, with `UPDATE_SNAPSHOTS=1`).
pub fn man() -> Result<()> {
    run(cargo()
        .args([
            "test",
            "-p",
            "std-host",
            "--lib",
            "cli::tests::generated_files_are_current",
        ])
        .env("UPDATE_SNAPSHOTS", "1"))?;
    eprintln!("man: std-host/packaging/man and std-host/packaging/completions are current");
    let _ = Command::new("git")
        .args(["status", "--short", "std-host/packaging"])
        .current_dir(crate::ci::root())
        .status();
    Ok(())
}

/// What the package must hold (paths as `dpkg-deb -c` lists them, without the leading `.`).
const CONTENTS: &[&str] = &[
    "/usr/bin/uftp",
    "/usr/bin/uftpd",
    "/usr/bin/uftpproxyd",
    "/usr/bin/uftp_keymgt",
    "/usr/bin/uftpdump",
    "/usr/share/man/man1/uftp.1.gz",
    "/usr/share/man/man1/uftpd.1.gz",
    "/usr/share/man/man1/uftpproxyd.1.gz",
    "/usr/share/man/man1/uftp_keymgt.1.gz",
    "/usr/share/man/man1/uftpdump.1.gz",
    "/usr/share/bash-completion/completions/uftp",
    "/usr/share/bash-completion/completions/uftpd",
    "/usr/share/bash-completion/completions/uftpproxyd",
    "/usr/share/bash-completion/completions/uftp_keymgt",
    "/usr/share/bash-completion/completions/uftpdump",
    "/usr/share/zsh/vendor-completions/_uftp",
    "/usr/share/zsh/vendor-completions/_uftpd",
    "/usr/share/zsh/vendor-completions/_uftpproxyd",
    "/usr/share/zsh/vendor-completions/_uftp_keymgt",
    "/usr/share/zsh/vendor-completions/_uftpdump",
    "/lib/systemd/system/uftpd.service",
    "/lib/systemd/system/uftpproxyd.service",
    "/etc/default/uftpd",
    "/etc/default/uftpproxyd",
    "/etc/init.d/uftpd",
    "/etc/init.d/uftpproxyd",
    "/etc/logrotate.d/uftp-rs",
];

const PROGRAMS: &[&str] = &["uftp", "uftpd", "uftpproxyd", "uftp_keymgt", "uftpdump"];

/// A command's output; fails unless it exits with `code`.
fn output(cmd: &mut Command, code: i32) -> Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("could not start {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() != Some(code) {
        bail!("{what} exited {:?}, not {code}:\n{text}", out.status.code());
    }
    Ok(text)
}

fn expect(text: &str, needle: &str, what: &str) -> Result<()> {
    if !text.contains(needle) {
        bail!("{what}: no `{needle}` in:\n{text}");
    }
    Ok(())
}

/// `cargo xtask deb`: builds the Debian package with `cargo deb` and checks it without
/// installing it over the system (whose Debian uftp the end-to-end tests need): its contents and
/// control fields, then, extracted into a scratch directory, every program runs, every man page
/// renders, every completion parses and completes, the systemd units verify, and the init script
/// starts the packaged uftpd (in a network namespace and a private mount namespace, where the
/// packaged binary and a test configuration stand in for /usr/bin/uftpd and /etc/default/uftpd)
/// and stops it.
pub fn deb() -> Result<()> {
    crate::ci::install_cargo_deb()?;
    let out = output(
        cargo()
            .current_dir(crate::ci::root())
            .args(["deb", "-p", "std-host", "--strip", "--", "-j2"]),
        0,
    )?;
    let deb = out
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| PathBuf::from(l.trim()))
        .context("cargo deb printed no package path")?;
    eprintln!("deb: built {}", deb.display());
    check_contents(&deb)?;
    let scratch = std::env::temp_dir().join(format!("uftp-rs-deb-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch)?;
    let result = check_extracted(&deb, &scratch);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&scratch);
    }
    result?;
    eprintln!("deb: {} checked", deb.display());
    Ok(())
}

fn check_contents(deb: &Path) -> Result<()> {
    let list = output(Command::new("dpkg-deb").arg("-c").arg(deb), 0)?;
    let paths: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.'))
        .collect();
    for want in CONTENTS {
        if !paths.contains(want) {
            bail!("{} lacks {want}:\n{list}", deb.display());
        }
    }
    let fields = output(
        Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .args(["Package", "Conflicts", "Replaces"]),
        0,
    )?;
    for want in ["Package: uftp-rs", "Conflicts: uftp", "Replaces: uftp"] {
        expect(&fields, want, "control fields")?;
    }
    let conffiles = output(
        Command::new("dpkg-deb")
            .arg("--info")
            .arg(deb)
            .arg("conffiles"),
        0,
    )?;
    for want in ["/etc/default/uftpd", "/etc/init.d/uftpd"] {
        expect(&conffiles, want, "conffiles")?;
    }
    eprintln!("deb: contents and control fields as expected");
    Ok(())
}

fn check_extracted(deb: &Path, root: &Path) -> Result<()> {
    let pkg = root.join("pkg");
    output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&pkg), 0)?;
    let bin = |p: &str| pkg.join("usr/bin").join(p);
    // Every program runs and is ours.
    // Bare `uftp` prints its usage and exits 1, as uftp 4.10.2's does.
    expect(
        &output(&mut Command::new(bin("uftp")), 1)?,
        "usage: uftp",
        "uftp",
    )?;
    expect(
        &output(Command::new(bin("uftpd")).arg("-x"), 1)?,
        "needs a value",
        "uftpd",
    )?;
    expect(
        &output(Command::new(bin("uftpproxyd")).args(["-c", "-p", "0"]), 1)?,
        "invalid port",
        "uftpproxyd",
    )?;
    let key = root.join("key.pem");
    expect(
        &output(
            Command::new(bin("uftp_keymgt"))
                .args(["-g", "ec:prime256v1"])
                .arg(&key),
            0,
        )?,
        "prime256v1",
        "uftp_keymgt",
    )?;
    expect(
        &output(Command::new(bin("uftpdump")).arg("--version"), 0)?,
        "uftpdump",
        "uftpdump",
    )?;
    for p in PROGRAMS {
        // The man pages render, with every section man needs.
        let page = pkg.join(format!("usr/share/man/man1/{p}.1.gz"));
        let text = output(
            Command::new("man")
                .arg("-l")
                .arg(&page)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80"),
            0,
        )?;
        for section in ["NAME", "SYNOPSIS", "OPTIONS", "SEE ALSO"] {
            expect(&text, section, &format!("man -l {}", page.display()))?;
        }
        // The bash completions parse, and complete the program's long option.
        let comp = pkg.join(format!("usr/share/bash-completion/completions/{p}"));
        output(Command::new("bash").arg("-n").arg(&comp), 0)?;
        let func = format!("_{p}");
        let script = format!(
            "source '{}'; COMP_WORDS=({p} -); COMP_CWORD=1; {func}; echo \"${{COMPREPLY[*]}}\"",
            comp.display()
        );
        let words = output(Command::new("bash").args(["-c", &script]), 0)?;
        expect(&words, "-", &format!("bash completion of {p}"))?;
        let zsh = pkg.join(format!("usr/share/zsh/vendor-completions/_{p}"));
        output(Command::new("zsh").arg("-n").arg(&zsh), 0)?;
    }
    // A value with fixed choices completes to them.
    let comp = pkg.join("usr/share/bash-completion/completions/uftpd");
    let script = format!(
        "source '{}'; COMP_WORDS=(uftpd -x ''); COMP_CWORD=2; _uftpd; echo \"${{COMPREPLY[*]}}\"",
        comp.display()
    );
    expect(
        &output(Command::new("bash").args(["-c", &script]), 0)?,
        "0 1 2 3 4 5",
        "bash completion of uftpd -x",
    )?;
    for unit in ["uftpd.service", "uftpproxyd.service"] {
        output(
            Command::new("systemd-analyze")
                .arg("verify")
                .arg(pkg.join("lib/systemd/system").join(unit)),
            0,
        )?;
    }
    eprintln!("deb: programs, man pages, completions and units checked");
    init_script(&pkg, root)
}

/// Starts and stops the packaged uftpd with its init script, in a network namespace with a
/// veth pair and a private mount namespace (see [`deb`]).
fn init_script(pkg: &Path, root: &Path) -> Result<()> {
    let ns = format!("uftprs-deb-{}", std::process::id());
    output(Command::new("ip").args(["netns", "add", &ns]), 0)?;
    let result = (|| -> Result<()> {
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "add", "d0", "type", "veth", "peer", "name", "d1"],
            vec!["link", "set", "d1", "up"],
            vec!["link", "set", "d0", "up"],
            vec!["addr", "add", "10.79.0.1/24", "dev", "d0"],
        ] {
            output(Command::new("ip").args(["-n", &ns]).args(&args), 0)?;
        }
        let dest = root.join("dest");
        fs::create_dir_all(&dest)?;
        let log = root.join("uftpd.log");
        let config = root.join("uftpd.default");
        fs::write(
            &config,
            format!(
                "DAEMON_ARGS=\"-I d0 -D {} -L {}\"\n",
                dest.display(),
                log.display()
            ),
        )?;
        let init = pkg.join("etc/init.d/uftpd");
        let script = format!(
            r#"set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/default
cp '{config}' /etc/default/uftpd
mount --bind '{bin}' /usr/bin/uftpd
'{init}' start
pid=$(cat /run/uftpd.pid)
echo "pid $pid"
'{init}' status
grep -q 'uftp-rs' '{log}' && echo "log: ours"
ss -ulpn | grep -q ":1044 .*uftpd" && echo "listening on 1044"
'{init}' stop
if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status"; then echo "still running"; exit 1; fi
[ -e /run/uftpd.pid ] && echo "PID file left" && exit 1
echo "stopped"
"#,
            config = config.display(),
            bin = pkg.join("usr/bin/uftpd").display(),
            init = init.display(),
            log = log.display(),
        );
        let out = output(
            Command::new("ip").args([
                "netns", "exec", &ns, "unshare", "--mount", "sh", "-c", &script,
            ]),
            0,
        )?;
        for want in [
            "pid ",
            "is running",
            "log: ours",
            "listening on 1044",
            "stopped",
        ] {
            expect(&out, want, "the init script")?;
        }
        expect(
            &fs::read_to_string(&log).unwrap_or_default(),
            "Exiting on signal 15",
            "uftpd's log",
        )?;
        eprintln!("deb: the init script started and stopped the packaged uftpd:\n{out}");
        Ok(())
    })();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    result
}
