//! Test networks for uftp-rs, shared by the end-to-end tests (`tests`, crate `uftp-tests`) and by
//! `cargo xtask bench`/`blast`: network namespaces joined by Linux bridges ([`Testbed`]) or by a
//! router ([`routed::RoutedTestbed`]), the processes run inside them ([`Proc`]), and a reader
//! for the captures taken on them ([`pcap`]).
//!
//! Errors: the helpers panic with a message that says what failed (the tests' style); the few
//! that `xtask` calls have `try_` variants returning [`Error`], which converts into `anyhow`.
//!
//! Its networks need root, `ip` and `nft`; it has no tests of its own, and the tests that use
//! them are in `uftp-tests`, which is not among the workspace's `default-members`. [`pcap`]
//! needs nothing: proto-core's tests read the committed captures with it.
#![forbid(unsafe_code)]

mod bridge;
pub mod pcap;
mod proc;
pub mod routed;
mod shell;

pub use bridge::{Host, Plan, Tap, Testbed};
pub use proc::Proc;
pub use shell::{require_root_tools, sh, try_require_root_tools, try_sh, Error};
