//! `uftpproxyd`: the UFTP 4 proxy daemon of uftp-rs (options after uftp 4.10.2's
//! `uftpproxyd`): server, client and response proxies.
fn main() {
    std::process::exit(std_host::proxy::main(std::env::args().skip(1).collect()));
}
