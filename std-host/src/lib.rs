//! Host runtime of uftp-rs: the programs' shared code over `proto-core`.
#![forbid(unsafe_code)]
