//! `uftp-sim` (run by `cargo xtask sim`): simulates one sender and many receivers on a lossy
//! multicast network, with the real protocol state machines, and reports how the transfer went.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use sim::cli::{parse_args, USAGE};
use sim::plot;
use sim::run::run;

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1), std::env::var("SIM_SEED").ok()) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("uftp-sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sc = &cli.scenario;
    let bytes: u64 = sc.files.iter().map(|f| f.size).sum();
    println!(
        "uftp-sim: {} receivers, {} file(s) of {:.1} MiB in all, seed {}",
        sc.receivers,
        sc.files.len(),
        bytes as f64 / f64::from(1 << 20),
        sc.seed
    );
    println!(
        "  sender {}, blocks of {} bytes; {}",
        match (sc.sender.rate, sc.sender.adaptive) {
            (Some(r), _) => sim::scenario::format_rate(r),
            (None, true) => "adaptive rate".into(),
            (None, false) => "unpaced".into(),
        },
        sc.sender.blocksize,
        sc.describe_classes()
    );
    if !sc.events.is_empty() {
        println!("  {} scenario events", sc.events.len());
    }
    println!();
    let wall = std::time::Instant::now();
    let outcome = match run(sc, cli.options) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uftp-sim: {e}");
            eprintln!(
                "uftp-sim: seed {} — replay with SIM_SEED={} and the same options",
                sc.seed, sc.seed
            );
            return ExitCode::FAILURE;
        }
    };
    let elapsed = wall.elapsed();
    print!("{}", outcome.report.table());
    println!(
        "\n  ({:.1} s of wall time for {:.1} s of virtual time, {} deliveries)",
        elapsed.as_secs_f64(),
        outcome.report.completion_s,
        outcome.report.network.delivered
    );
    if let Some(path) = &cli.json {
        if let Err(e) = std::fs::write(path, outcome.report.to_json()) {
            eprintln!("uftp-sim: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if let Some(path) = &cli.plot {
        if let Err(e) = std::fs::write(path, plot::svg(&outcome.report)) {
            eprintln!("uftp-sim: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    if !outcome.passed() {
        for f in &outcome.failures {
            eprintln!("uftp-sim: {f}");
        }
        eprintln!(
            "uftp-sim: FAILED with seed {} — replay with SIM_SEED={} and the same options",
            sc.seed, sc.seed
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
