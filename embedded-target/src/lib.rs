//! Receiver firmware for Cortex-M boards.
//!
//! For now this crate only proves that the wire codec links into a `no_std` image for
//! `thumbv7em-none-eabihf`; the embassy receive task arrives with the firmware issue.
#![no_std]
#![forbid(unsafe_code)]

pub use proto_core::wire;
