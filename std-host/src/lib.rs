//! Host runtime of uftp-rs: the programs' shared code over `proto-core`.
// `deny` rather than `forbid`: `dump::live` needs packet sockets and `recvmsg` control data,
// which std and socket2 do not wrap, and `udp` needs `sendmmsg`/`recvmmsg` with GSO/GRO control
// data; each allows unsafe for itself with a SAFETY note per block.
#![deny(unsafe_code)]

pub mod cli;
pub mod daemon;
pub mod daemon_options;
pub mod dump;
pub mod ifaddr;
pub mod json_status;
pub mod keys;
pub mod log;
pub mod proxy;
pub mod receiver;
pub mod sender;
pub mod status_file;
pub mod udp;
