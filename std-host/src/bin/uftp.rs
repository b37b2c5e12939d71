//! `uftp`: send files to many receivers over multicast, speaking UFTP 4 (see `man uftp`).

fn main() {
    let code = std_host::sender::main(std::env::args().skip(1).collect());
    std::process::exit(code);
}
