//! `uftpd`: the UFTP 4 receiving daemon of uftp-rs (options after uftp 4.10.2's `uftpd`).
fn main() {
    std::process::exit(std_host::receiver::main(std::env::args().skip(1).collect()));
}
