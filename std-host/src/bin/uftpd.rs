//! `uftpd`: the UFTP 4 receiving daemon of uftp-rs (options after uftp 4.10.2's `uftpd`).
use std::process::ExitCode;

use std_host::receiver::{run, Options};

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uftpd: {e}");
            return ExitCode::from(1);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uftpd: {e}");
            ExitCode::from(2)
        }
    }
}
