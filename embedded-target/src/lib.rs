//! uftp-rs receiver firmware for Cortex-M boards with Ethernet (embassy), and its host-run form.
//!
//! [`receive::serve`] runs proto-core's receiver over an embassy-net stack and stores what it
//! receives as an update image through [`flash_storage::FlashStorage`], on any
//! [`NorFlash`](embedded_storage::nor_flash::NorFlash), for embassy-boot to swap in. The board
//! programs (`src/bin/nucleo-*.rs`) put it on the STM32's Ethernet MAC and flash; the QEMU
//! program (`src/bin/mps2.rs`) on the emulated MPS2 board's [`lan9118`] and a
//! [`mem_flash::MemFlash`] in RAM; the host run (`src/bin/uftp-firmware-host.rs`) on a Linux TAP
//! device and a [`file_flash::FileFlash`].
//!
//! No heap: everything lives in `static`s sized at compile time, like proto-core itself. No
//! `unsafe` but the volatile register accesses in [`mmio`] and the MPS2 board's creation of its
//! register handles, once.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[macro_use]
pub mod fmt;
#[cfg(feature = "board")]
pub mod board;
pub mod build_config;
#[cfg(feature = "std")]
pub mod file_flash;
pub mod flash_storage;
pub mod lan9118;
pub mod mem_flash;
#[allow(unsafe_code)] // Volatile reads and writes of device registers; each one says why.
pub mod mmio;
#[cfg(feature = "mps2")]
pub mod mps2;
#[cfg(test)]
mod ram_flash;
pub mod receive;
