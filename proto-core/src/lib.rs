//! The sans-IO, allocation-free core of uftp-rs.
//!
//! This crate holds everything about UFTP 4 that does not touch the outside world: the wire
//! codec ([`wire`]), the symmetric crypto ([`crypto`]), and (as they land) NAK bookkeeping,
//! congestion control and the sender, receiver and proxy state machines. It never allocates,
//! never reads a clock or a random source of its own and never panics on input from the network:
//! time, randomness and bytes come in from the caller; datagrams, timers and events go out.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod crypto;
pub mod session;
pub mod time;
pub mod wire;
