//! The options of `cargo xtask sim` (the `uftp-sim` binary), parsed into a [`Scenario`].

use crate::link::LinkConfig;
use crate::run::RunOptions;
use crate::scenario::{
    parse_duration, parse_percent, parse_sender_rate, parse_size, set_loss, FileSpec, Scenario,
};

/// The options, as `--help` prints them.
pub const USAGE: &str = "usage: cargo xtask sim [options]

  --receivers N       receivers (100)
  --size SIZE         one file of SIZE bytes: 64MiB, 50MB, 4K (1MiB)
  --loss PERCENT      independent loss on every path, both ways: 1, 1%, 0.5 (0)
  --burst LEN         the loss comes in Gilbert-Elliott bursts of mean length LEN datagrams
  --delay TIME        one-way delay on every path, both ways (10ms)
  --rate RATE         the sender's fixed rate, uftp -R: 100Mbit, 1G, none; or auto, the
                      adaptive default of uftp-rs without -R (100Mbit)
  --seed S            seed (SIM_SEED, else the scenario's, else 1)
  --scenario FILE     receiver classes, events and sender settings from a TOML file
                      (the options above override it; format: sim/src/scenario.rs)
  --json FILE         write the report as JSON
  --plot FILE.svg     draw receivers completed and the sender's rate over time
  --threads N         step receivers on N threads (same results) (this machine's cores)
  --limit TIME        cut the run off after TIME of virtual time (2h)
  --quiet             no progress on stderr
";

/// What the command line asks for.
#[derive(Debug)]
pub struct Cli {
    /// The run.
    pub scenario: Scenario,
    /// Where to write the JSON report.
    pub json: Option<String>,
    /// Where to write the SVG chart.
    pub plot: Option<String>,
    /// How to run it.
    pub options: RunOptions,
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}

/// Parses the options (without the program name); `sim_seed` is `SIM_SEED` from the
/// environment. An empty error means `--help`.
pub fn parse_args(
    args: impl IntoIterator<Item = String>,
    sim_seed: Option<String>,
) -> Result<Cli, String> {
    let mut args = args.into_iter();
    let mut scenario_file = None;
    let (mut receivers, mut size, mut loss, mut burst, mut delay, mut rate, mut seed) =
        (None, None, None, None, None, None, None);
    let (mut json, mut plot, mut limit) = (None, None, None);
    let mut options = RunOptions {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        progress: true,
    };
    while let Some(arg) = args.next() {
        let a = arg.as_str();
        match a {
            "-h" | "--help" => return Err(String::new()),
            "--scenario" => scenario_file = Some(value(&mut args, a)?),
            "--receivers" => {
                receivers = Some(
                    value(&mut args, a)?
                        .parse::<u32>()
                        .map_err(|e| format!("--receivers: {e}"))?,
                )
            }
            "--size" => size = Some(parse_size(&value(&mut args, a)?)?),
            "--loss" => loss = Some(parse_percent(&value(&mut args, a)?)?),
            "--burst" => {
                burst = Some(
                    value(&mut args, a)?
                        .parse::<f64>()
                        .map_err(|e| format!("--burst: {e}"))?,
                )
            }
            "--delay" => delay = Some(parse_duration(&value(&mut args, a)?)?),
            "--rate" => rate = Some(parse_sender_rate(&value(&mut args, a)?)?),
            "--seed" => {
                seed = Some(
                    value(&mut args, a)?
                        .parse::<u64>()
                        .map_err(|e| format!("--seed: {e}"))?,
                )
            }
            "--json" => json = Some(value(&mut args, a)?),
            "--plot" => plot = Some(value(&mut args, a)?),
            "--threads" => {
                options.threads = value(&mut args, a)?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--limit" => limit = Some(parse_duration(&value(&mut args, a)?)?),
            "--quiet" => options.progress = false,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let mut sc = match &scenario_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            Scenario::from_toml(&text).map_err(|e| format!("{path}: {e}"))?
        }
        None => Scenario::default(),
    };
    if let Some(n) = receivers {
        sc.receivers = n;
        // Classes with fixed counts would no longer add up: share them out instead.
        for c in &mut sc.classes {
            if let Some(count) = c.count.take() {
                c.share = f64::from(count);
            }
        }
    }
    if let Some(size) = size {
        sc.files = vec![FileSpec {
            name: "file.bin".into(),
            size,
        }];
    }
    for c in &mut sc.classes {
        if loss.is_some() || burst.is_some() {
            let l = loss.unwrap_or_else(|| mean_loss(&c.down));
            let b = burst.unwrap_or(0.0);
            set_loss(&mut c.down, l, b);
            if loss.is_some() {
                set_loss(&mut c.up, l, b);
            }
        }
        if let Some(d) = delay {
            c.down.delay = d;
            c.up.delay = d;
        }
    }
    if let Some((r, adaptive)) = rate {
        (sc.sender.rate, sc.sender.adaptive) = (r, adaptive);
    }
    if let Some(l) = limit {
        sc.limit = l;
    }
    sc.seed = match (seed, sim_seed) {
        (Some(s), _) => s,
        (None, Some(s)) => s
            .trim()
            .parse()
            .map_err(|e| format!("SIM_SEED `{s}`: {e}"))?,
        (None, None) => sc.seed,
    };
    sc.validate()?;
    Ok(Cli {
        scenario: sc,
        json,
        plot,
        options,
    })
}

fn mean_loss(link: &LinkConfig) -> f64 {
    match link.gilbert {
        Some(g) => {
            f64::from(g.enter_bad_ppm) / f64::from(g.enter_bad_ppm + g.leave_bad_ppm).max(1.0)
        }
        None => f64::from(link.loss_ppm) / 1e6,
    }
}
