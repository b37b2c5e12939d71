//! `uftp_keymgt`: lists and generates UFTP key files, as uftp 4.10.2's does (digest §8.4).
//!
//! Everything it says goes to stderr, line for line as 4.10.2 writes it, with its exit codes
//! (with no arguments it says nothing and exits 0, as 4.10.2 does):
//! a key that cannot be read is reported and skipped (exit 0); a bad `-g` spec or a missing
//! key file name exits 1; an unknown option is reported by getopt and otherwise ignored.
//! Two deliberate differences: new key files are created with mode 0600 (4.10.2 leaves them
//! to the umask), and `-d`, which deletes a Windows key container and silently does nothing
//! elsewhere, is refused with a message and exit 1.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitCode;

use std_host::keys::{keymgt_line, KeyError, KeySpec, PrivateKey};

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    /// `-g`: the last spec given (4.10.2 keeps the last).
    generate: Option<String>,
    /// `-d`.
    delete: bool,
    /// Key files, in order.
    files: Vec<OsString>,
    /// Options refused as unknown (reported as they are met).
    invalid: Vec<char>,
    /// Options given without their value (reported as they are met).
    missing_value: Vec<char>,
}

/// getopt(3) with `"g:md"` as glibc runs it: options and operands may be mixed (the operands
/// keep their order), options may be bundled (`-mg rsa:512`, `-grsa:512`), `--` ends the
/// options, and an unknown option or a missing argument is reported and skipped.
fn parse_args(prog: &str, argv: &[OsString]) -> Args {
    let mut args = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].as_bytes();
        i += 1;
        if arg == b"--" {
            args.files.extend(argv[i..].iter().cloned());
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            args.files.push(argv[i - 1].clone());
            continue;
        }
        let mut j = 1;
        while j < arg.len() {
            let c = arg[j];
            j += 1;
            match c {
                b'm' => {} // Windows: machine key containers. Meaningless with key files.
                b'd' => args.delete = true,
                b'g' => {
                    let value = if j < arg.len() {
                        let v = &arg[j..];
                        j = arg.len();
                        Some(OsStr::from_bytes(v).to_owned())
                    } else if i < argv.len() {
                        i += 1;
                        Some(argv[i - 1].clone())
                    } else {
                        eprintln!("{prog}: option requires an argument -- 'g'");
                        args.missing_value.push('g');
                        None
                    };
                    if let Some(v) = value {
                        args.generate = Some(v.to_string_lossy().into_owned());
                    }
                }
                other => {
                    args.invalid.push(char::from(other));
                    eprintln!(
                        "{prog}: invalid option -- '{}'",
                        String::from_utf8_lossy(&[other])
                    );
                }
            }
        }
    }
    args
}

/// `io::Error`'s text without Rust's ` (os error N)`: what C's `strerror` says.
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn list(file: &OsStr) {
    let name = file.to_string_lossy();
    match PrivateKey::load(Path::new(file)) {
        Ok(key) => eprintln!("{}", keymgt_line(&name, &key)),
        Err(KeyError::Io { source, .. }) if source.kind() != std::io::ErrorKind::IsADirectory => {
            eprintln!("failed to open key file: {}", strerror(&source));
            eprintln!("{name}: no such key");
        }
        Err(_) => {
            eprintln!("Failed to read key");
            eprintln!("{name}: no such key");
        }
    }
}

fn generate(spec: KeySpec, file: &OsStr) -> ExitCode {
    let name = file.to_string_lossy();
    let key = match PrivateKey::generate(spec) {
        Ok(key) => key,
        Err(e @ KeyError::UnsupportedCurve(_)) => {
            eprintln!("{e}; generate the key with OpenSSL instead");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("Error generating/storing key");
            return ExitCode::SUCCESS;
        }
    };
    match key.save_new(Path::new(file)) {
        Ok(()) => {
            eprintln!("{}", keymgt_line(&name, &key));
        }
        Err(KeyError::Exists(_)) => {
            eprintln!("Private key file already exists, won't overwrite");
            eprintln!("Error generating/storing key");
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("Error generating/storing key");
        }
    }
    // 4.10.2 exits 0 even when it could not store the key.
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let prog = argv
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "uftp_keymgt".to_owned());
    let argv: Vec<OsString> = argv.collect();
    let page = &std_host::keys::keymgt::PAGE;
    let lossy: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(info) = std_host::cli::info_request(page, &lossy) {
        // 4.10.2 reads `--help` as the letters -, h, e, l and p.
        std_host::cli::print_info(page, info);
        return ExitCode::SUCCESS;
    }
    let args = parse_args(&prog, &argv);

    if let Some(spec) = &args.generate {
        // 4.10.2 checks the spec while parsing options, before anything else.
        let spec = match spec.parse::<KeySpec>() {
            Ok(spec) => spec,
            Err(KeyError::BadRsaSize(_)) => {
                eprintln!("Invalid key size");
                return ExitCode::FAILURE;
            }
            Err(KeyError::UnknownCurve(_)) => {
                // Without a newline, as 4.10.2 prints it.
                eprint!("Invalid curve");
                return ExitCode::FAILURE;
            }
            Err(_) => {
                eprintln!("Invalid key specification");
                return ExitCode::FAILURE;
            }
        };
        let Some(file) = args.files.first() else {
            eprintln!("No keyfile specified");
            return ExitCode::FAILURE;
        };
        return generate(spec, file);
    }
    if args.delete {
        let Some(file) = args.files.first() else {
            eprintln!("No keyfile specified");
            return ExitCode::FAILURE;
        };
        eprintln!(
            "{}: -d deletes a Windows key container; keys here are plain files, so nothing was \
             deleted (remove the file itself)",
            file.to_string_lossy()
        );
        return ExitCode::FAILURE;
    }
    for file in &args.files {
        list(file);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser takes exactly the letters of the man page's table, with a value where it
    /// names one, and the usage names each of them.
    #[test]
    fn parser_takes_exactly_the_pages_options() {
        let page = &std_host::keys::keymgt::PAGE;
        let usage = std_host::cli::usage(page);
        let words: Vec<&str> = usage.split_whitespace().collect();
        for c in ('a'..='z').chain('A'..='Z') {
            let args = parse_args("uftp_keymgt", &[OsString::from(format!("-{c}"))]);
            match page.short(c) {
                None => {
                    assert_eq!(args.invalid, [c], "-{c} is not on the page");
                    assert!(!words.contains(&format!("-{c}").as_str()), "{usage}");
                }
                Some(o) => {
                    assert!(args.invalid.is_empty(), "-{c} is on the page");
                    assert!(words.contains(&format!("-{c}").as_str()), "{usage}");
                    assert_eq!(args.missing_value.contains(&c), o.value.is_some(), "-{c}");
                }
            }
        }
    }
}
