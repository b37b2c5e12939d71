//! Deterministic simulator of lossy multicast networks driving the proto-core state machines.
//!
//! Everything runs on virtual time from one seed: the same scenario and seed give the same run,
//! datagram for datagram, on one thread or several (see [`net`]). [`run::run`] runs a
//! [`scenario::Scenario`]; `cargo xtask sim` is its command line ([`cli`]).
#![forbid(unsafe_code)]

pub mod adversary;
pub mod calibration;
pub mod cli;
pub mod harness;
pub mod link;
pub mod net;
pub mod plot;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;

pub use net::{
    ContentCheck, GilbertElliott, LinkConfig, NetStats, Network, Node, ParsedFileSeg, Polled,
    Received, Role, SenderLink,
};
pub use rng::Rng;
