//! Shared helpers for the end-to-end and interoperability tests.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The folder of committed captures from uftp 4.10.2 (`tests/vectors`).
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

pub mod fixture;
pub mod peers;
pub mod tree;
