//! Board builds: picks the board's `memory.x` (flash partitions for embassy-boot, RAM) and adds
//! the cortex-m-rt and (STM32 boards) defmt linker scripts. Host builds need nothing.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=memory-h743zi.x");
    println!("cargo:rerun-if-changed=memory-f767zi.x");
    println!("cargo:rerun-if-changed=memory-mps2.x");
    let target = env::var("TARGET").unwrap_or_default();
    if !target.starts_with("thumb") {
        return;
    }
    let h7 = env::var_os("CARGO_FEATURE_NUCLEO_H743ZI").is_some();
    let f7 = env::var_os("CARGO_FEATURE_NUCLEO_F767ZI").is_some();
    let mps2 = env::var_os("CARGO_FEATURE_MPS2").is_some();
    let memory = match (h7, f7, mps2) {
        (true, false, false) => "memory-h743zi.x",
        (false, true, false) => "memory-f767zi.x",
        (false, false, true) => "memory-mps2.x",
        (false, false, false) => panic!(
            "a {target} build needs a board feature (nucleo-h743zi, nucleo-f767zi or mps2); \
             the host run is built with `--no-default-features --features host` for the host \
             target"
        ),
        _ => panic!("choose one board: `--no-default-features --features nucleo-f767zi` (or mps2)"),
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy(memory, out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    // The MPS2 build logs through `log` on its UART, not defmt.
    if !mps2 {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
}
