//! Deterministic simulator of lossy multicast networks.
//!
//! The simulator arrives with its own issue; this crate holds its place in the workspace.
#![forbid(unsafe_code)]
