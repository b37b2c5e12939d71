//! Our `uftp_keymgt` against Debian's uftp 4.10.2 one (`/usr/bin/uftp_keymgt`, from the `uftp`
//! package that the end-to-end tests also need): the same lines for the committed keys, and
//! each reads the keys the other generates with the same fingerprint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const THEIRS: &str = "/usr/bin/uftp_keymgt";
const OURS: &str = env!("CARGO_BIN_EXE_uftp_keymgt");

fn run(bin: &str, dir: &Path, args: &[&str]) -> Output {
    assert!(
        Path::new(bin).exists(),
        "{bin} missing: install Debian's uftp package (cargo xtask setup)"
    );
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// (stdout, stderr, exit code) of one run.
fn outcome(bin: &str, dir: &Path, args: &[&str]) -> (String, String, Option<i32>) {
    let out = run(bin, dir, args);
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/keys")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uftp-rs-keymgt-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn committed_keys_list_byte_for_byte() {
    let mut names: Vec<String> = std::fs::read_dir(keys_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pem"))
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    let mut args: Vec<&str> = vec!["-m"];
    args.extend(names.iter().map(String::as_str));
    args.push("missing.pem");
    let theirs = outcome(THEIRS, &keys_dir(), &args);
    let ours = outcome(OURS, &keys_dir(), &args);
    assert_eq!(ours, theirs);
    // All of it on stderr, one line per key plus two for the missing one.
    assert!(theirs.0.is_empty());
    assert_eq!(theirs.1.lines().count(), names.len() + 2);
    assert!(theirs
        .1
        .contains("srv_rsa1024.pem: RSA, 1024 bits, fingerprint: E0:2E:28:A6:"));
}

#[test]
fn keys_we_generate_read_the_same_in_theirs() {
    let dir = scratch("ours");
    for (spec, file) in [
        ("rsa:512", "r512.pem"),
        ("rsa:1024", "r1024.pem"),
        ("rsa:1000", "r1000.pem"),
        ("ec:prime256v1", "e256.pem"),
        ("ec:secp384r1", "e384.pem"),
    ] {
        let (out, made, code) = outcome(OURS, &dir, &["-g", spec, file]);
        assert_eq!((out.as_str(), code), ("", Some(0)), "{spec}: {made}");
        assert!(made.starts_with(&format!("{file}: ")), "{spec}: {made}");
        let (_, listed, _) = outcome(THEIRS, &dir, &[file]);
        assert_eq!(listed, made, "{spec}");
        let head = std::fs::read_to_string(dir.join(file)).unwrap();
        let label = if spec.starts_with("rsa") { "RSA" } else { "EC" };
        assert!(head.starts_with(&format!("-----BEGIN {label} PRIVATE KEY-----\n")));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn keys_they_generate_read_the_same_in_ours() {
    let dir = scratch("theirs");
    for (spec, file) in [
        ("rsa:512", "r512.pem"),
        ("rsa:1000", "r1000.pem"),
        ("rsa:2048", "r2048.pem"),
        ("ec:prime256v1", "e256.pem"),
        ("ec:secp384r1", "e384.pem"),
        // Listed from the public key in the file; we do not compute on these curves.
        ("ec:secp521r1", "e521.pem"),
        ("ec:secp256k1", "e256k1.pem"),
    ] {
        let (_, made, code) = outcome(THEIRS, &dir, &["-g", spec, file]);
        assert_eq!(code, Some(0), "{spec}: {made}");
        let (_, listed, _) = outcome(OURS, &dir, &[file]);
        assert_eq!(listed, made, "{spec}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_and_odd_arguments_match() {
    let dir = scratch("errors");
    std::fs::write(dir.join("garbage.pem"), "not a key\n").unwrap();
    let existing = run(THEIRS, &dir, &["-g", "rsa:512", "taken.pem"]);
    assert!(existing.status.success());
    for args in [
        &[][..],
        &["garbage.pem", "missing.pem"][..],
        &["-x", "taken.pem"][..],
        &["taken.pem", "-m"][..],
        &["--", "taken.pem"][..],
        &["-g"][..],
        &["-d"][..],
        &["-g", "rsa:512"][..],
        &["-g", "rsa:511", "a.pem"][..],
        &["-g", "rsa:2049", "a.pem"][..],
        &["-g", "rsa:abc", "a.pem"][..],
        &["-g", "rsa", "a.pem"][..],
        &["-g", "dsa:1024", "a.pem"][..],
        &["-g", "ec:bogus", "a.pem"][..],
        // Refuses to overwrite: same two lines, and (as 4.10.2) exit 0.
        &["-g", "rsa:512", "taken.pem"][..],
    ] {
        let theirs = outcome(THEIRS, &dir, args);
        let ours = outcome(OURS, &dir, args);
        // getopt names the program as invoked.
        let ours = (ours.0, ours.1.replace(OURS, THEIRS), ours.2);
        assert_eq!(ours, theirs, "{args:?}");
    }
    assert!(!dir.join("a.pem").exists());
    // -d is refused with a reason (4.10.2 silently does nothing off Windows).
    let (_, said, code) = outcome(OURS, &dir, &["-d", "taken.pem"]);
    assert_eq!(code, Some(1));
    assert!(said.contains("Windows"), "{said}");
    assert!(dir.join("taken.pem").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
