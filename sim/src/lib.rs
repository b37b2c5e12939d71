//! Deterministic simulator of lossy multicast networks driving the proto-core state machines.
//!
//! Everything runs on virtual time, single-threaded, from one seed: the same seed gives the same
//! run, datagram for datagram.
#![forbid(unsafe_code)]

pub mod adversary;
pub mod harness;
pub mod link;
pub mod net;
pub mod proxy;
pub mod rng;

pub use net::{
    ContentCheck, GilbertElliott, LinkConfig, NetStats, Network, Node, Received, Role, SenderLink,
};
pub use rng::Rng;
