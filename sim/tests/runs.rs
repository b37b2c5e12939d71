//! Whole simulator runs, as `cargo xtask sim` makes them: the same seed gives byte-identical
//! JSON (on one thread or two), scenario classes and events do what they say, every receiver
//! that should finish ends byte-identical, and the command line expresses the calibration run.
//!
//! `SIM_SEED=n` replaces the seed of the runs that take one from [`seed`]; a failing run prints
//! the seed to replay it with.

use std::time::Duration;

use sim::cli::parse_args;
use sim::run::{run, Outcome, RunOptions};
use sim::scenario::{Action, ClassSpec, EventSpec, FileSpec, Scenario};
use sim::LinkConfig;

/// The seed of a run: `SIM_SEED` if set, else `default`.
fn seed(default: u64) -> u64 {
    std::env::var("SIM_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// Prints the seed if the test fails while it is alive.
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("failed with seed {0}: replay with SIM_SEED={0}", self.0);
        }
    }
}

fn must_run(sc: &Scenario, threads: usize) -> Outcome {
    let out = run(
        sc,
        RunOptions {
            threads,
            progress: false,
        },
    )
    .expect("valid scenario");
    assert!(
        out.passed(),
        "seed {}: {:#?}\n{}",
        sc.seed,
        out.failures,
        out.report.table()
    );
    out
}

/// Two classes (one bursty, jittery and duplicating), a lossy return path and every kind of
/// event: what the determinism tests run. `lan` receivers on the LAN.
fn busy_scenario(seed: u64, lan_receivers: u32) -> Scenario {
    let lan = ClassSpec {
        name: "lan".into(),
        count: Some(lan_receivers),
        share: 1.0,
        down: LinkConfig::lossy(2.0, Duration::from_millis(2)),
        up: LinkConfig::lossy(1.0, Duration::from_millis(2)),
    };
    let mut wan = ClassSpec {
        name: "wan".into(),
        count: Some(6),
        share: 1.0,
        down: LinkConfig {
            jitter: Duration::from_millis(4),
            dup_ppm: 5_000,
            reorder_ppm: 10_000,
            reorder_delay: Duration::from_millis(3),
            delay: Duration::from_millis(30),
            ..LinkConfig::default()
        },
        up: LinkConfig::lossy(3.0, Duration::from_millis(30)),
    };
    sim::scenario::set_loss(&mut wan.down, 0.05, 6.0);
    let late = ClassSpec {
        name: "late".into(),
        count: Some(2),
        ..lan.clone()
    };
    Scenario {
        seed,
        receivers: lan_receivers + 8,
        files: vec![
            FileSpec {
                name: "a.bin".into(),
                size: 600_000,
            },
            FileSpec {
                name: "b.txt".into(),
                size: 999,
            },
        ],
        classes: vec![lan, wan, late],
        events: vec![
            EventSpec {
                at: Duration::from_millis(400),
                action: Action::Crash,
                class: Some("wan".into()),
                count: Some(1),
                fraction: None,
            },
            EventSpec {
                at: Duration::from_millis(450),
                action: Action::Leave,
                class: Some("lan".into()),
                count: Some(2),
                fraction: None,
            },
            EventSpec {
                at: Duration::from_secs(30),
                action: Action::Join,
                class: Some("late".into()),
                count: None,
                fraction: Some(1.0),
            },
        ],
        ..Scenario::default()
    }
}

#[test]
fn the_same_seed_gives_byte_identical_json_on_one_thread_or_two() {
    let s = seed(5);
    let _guard = SeedOnFailure(s);
    // Enough receivers that epochs are stepped on both threads.
    let sc = busy_scenario(s, 400);
    let a = must_run(&sc, 1).report.to_json();
    let b = must_run(&sc, 1).report.to_json();
    assert_eq!(a, b, "same seed, same JSON");
    let c = must_run(&sc, 2).report.to_json();
    assert_eq!(a, c, "two threads, same JSON");
    let other = must_run(&busy_scenario(s + 1, 400), 1).report.to_json();
    assert_ne!(a, other, "another seed, another run");
}

#[test]
fn classes_and_events_do_what_the_scenario_says() {
    let s = seed(7);
    let _guard = SeedOnFailure(s);
    let sc = busy_scenario(s, 24);
    let r = must_run(&sc, 1).report;
    // 1 crashed, 2 left, 2 joined after the announcements: none of them finished; every other
    // receiver did (must_run checked each, block by block).
    assert_eq!((r.crashed, r.left, r.late), (1, 2, 2));
    assert_eq!(r.completed, 32 - 5, "{}", r.table());
    assert_eq!(r.registered, 30, "the late joiners never registered");
    assert_eq!(r.lost, 3, "the sender lost the crashed and the departed");
    assert_eq!(r.classes[0].completed, 22);
    assert_eq!(r.classes[1].completed, 5);
    assert_eq!(r.classes[2].completed, 0);
    assert_eq!(r.bad_blocks, 0);
    // Bursts, duplication and jitter happened, and the bursts cost repairs.
    assert!(r.network.duplicated > 0);
    assert!(r.retransmitted_blocks > 0 && r.passes > 1);
    assert!(r.status_messages > 0 && r.nak_bytes > 0);
    // The content check was made at most once per datagram sent, not once per receiver.
    let sent = r.first_pass_blocks + r.retransmitted_blocks;
    assert!(
        r.full_checks <= sent,
        "{} full checks for {sent} FILESEGs sent",
        r.full_checks
    );
    // Receivers finished in order of their class's delay, mostly.
    let p = r.completion_percentiles_s;
    assert!(p.p50 <= p.p90 && p.p90 <= p.max && p.max <= r.completion_s);
}

#[test]
fn a_bottleneck_paces_the_class_and_its_queue_drops() {
    let s = seed(3);
    let _guard = SeedOnFailure(s);
    // The sender runs at 20 Mbit/s into a 10 Mbit/s path with a 30 kB queue: the queue
    // overflows and the repairs go through the same bottleneck.
    let mut narrow = ClassSpec::uniform(0.0, Duration::from_millis(5));
    narrow.down.rate = Some(1_250_000);
    narrow.down.queue = Some(30_000);
    let sc = Scenario {
        seed: s,
        receivers: 4,
        files: vec![FileSpec {
            name: "f".into(),
            size: 1 << 20,
        }],
        classes: vec![narrow],
        sender: sim::scenario::SenderSpec {
            rate: Some(2_500_000),
            ..Default::default()
        },
        ..Scenario::default()
    };
    let r = must_run(&sc, 1).report;
    assert!(r.network.queue_drops > 0);
    assert!(r.retransmitted_blocks > 0);
    // Nothing gets through faster than 10 Mbit/s.
    assert!(
        r.data_done_s > (1 << 20) as f64 * 8.0 / 10e6,
        "{}",
        r.table()
    );
}

#[test]
fn the_calibration_run_is_expressible_and_reports_time_and_repairs() {
    // 4 receivers, 50 MiB, 3% loss, a fixed rate: the scenario the socket testbed repeats.
    let cli = parse_args(
        [
            "--receivers",
            "4",
            "--size",
            "50MiB",
            "--loss",
            "3",
            "--rate",
            "50Mbit",
            "--delay",
            "1ms",
            "--json",
            "out.json",
        ]
        .map(String::from),
        Some("77".into()),
    )
    .unwrap();
    let sc = &cli.scenario;
    assert_eq!((sc.receivers, sc.seed), (4, 77));
    assert_eq!(sc.files[0].size, 50 << 20);
    assert_eq!(sc.sender.rate, Some(50_000_000 / 8));
    assert_eq!(sc.classes[0].down.loss_ppm, 30_000);
    assert_eq!(sc.classes[0].up.loss_ppm, 30_000);
    assert_eq!(cli.json.as_deref(), Some("out.json"));
    // A smaller file of the same kind, run for real.
    let mut small = sc.clone();
    small.files[0].size = 2 << 20;
    let r = must_run(&small, 1).report;
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert!(json["completion_s"].as_f64().unwrap() > 0.0);
    assert!(json["retransmitted_blocks"].as_u64().unwrap() > 0);
    assert_eq!(json["completed"], 4);
    // --seed wins over SIM_SEED; bad options say what is wrong.
    let cli = parse_args(["--seed", "9"].map(String::from), Some("77".into())).unwrap();
    assert_eq!(cli.scenario.seed, 9);
    let err = parse_args(["--loss", "200"].map(String::from), None).unwrap_err();
    assert!(err.contains("200"), "{err}");
    let err = parse_args(["--frobnicate"].map(String::from), None).unwrap_err();
    assert!(err.contains("--frobnicate"), "{err}");
}

#[test]
fn the_example_scenarios_parse_and_options_override_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let cal = parse_args(["--scenario".into(), path("calibration.toml")], None)
        .unwrap()
        .scenario;
    assert_eq!((cal.receivers, cal.files[0].size), (4, 50 << 20));
    assert_eq!(cal.sender.rate, Some(5_000_000));
    assert_eq!(cal.classes[0].down.loss_ppm, 30_000);
    assert_eq!(cal.classes[0].up.loss_ppm, 0);
    let lan_wan = parse_args(["--scenario".into(), path("lan-wan.toml")], None)
        .unwrap()
        .scenario;
    assert_eq!(lan_wan.class_ranges(), vec![0..1800, 1800..2000]);
    assert_eq!(lan_wan.events.len(), 2);
    // The command line wins over the file; the class shares are kept.
    let small = parse_args(
        [
            "--scenario".into(),
            path("lan-wan.toml"),
            "--receivers".into(),
            "50".into(),
            "--size".into(),
            "300000".into(),
            "--seed".into(),
            "3".into(),
        ],
        Some("99".into()),
    )
    .unwrap()
    .scenario;
    assert_eq!(small.class_ranges(), vec![0..45, 45..50]);
    assert_eq!((small.seed, small.files[0].size), (3, 300_000));
    let r = must_run(&small, 1).report;
    assert_eq!(r.crashed, 5);
    assert_eq!(r.late, 3);
}

#[test]
fn the_adaptive_rate_finds_the_slow_class_and_beats_both_fixed_guesses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let file = dir.join("adaptive-slow.toml").to_str().unwrap().to_string();
    let s = seed(3);
    let _guard = SeedOnFailure(s);
    // 100 receivers (five behind 20 Mbit/s) and 8 MiB keep it quick; the file's other settings
    // stand.
    let at = |rate: &str| {
        let mut sc = parse_args(
            [
                "--scenario".into(),
                file.clone(),
                "--receivers".into(),
                "100".into(),
                "--size".into(),
                "8MiB".into(),
                "--rate".into(),
                rate.into(),
            ],
            None,
        )
        .unwrap()
        .scenario;
        sc.seed = s;
        must_run(&sc, 1).report
    };
    let auto = at("auto");
    assert!(auto.adaptive_rate);
    assert_eq!(auto.completed, 100, "{}", auto.table());
    assert!(auto.slow_client_reports >= 1, "{}", auto.table());
    // It slowed to about the slow class's 20 Mbit/s (what it measured got through, the queue's
    // drain included, and 10% headroom), never below it.
    let lowest = auto.lowest_rate_bps.unwrap();
    assert!((20_000_000..40_000_000).contains(&lowest), "{lowest}");
    // Faster than the LAN's rate (the slow class misses most of every pass) and no slower
    // than the rate a uftp user would have had to know to pick.
    let fast = at("1G");
    let picked = at("20Mbit");
    assert_eq!(
        (fast.slow_client_reports, picked.lowest_rate_bps),
        (0, None)
    );
    assert!(
        auto.completion_s < fast.completion_s,
        "auto {} s, 1 Gbit/s {} s",
        auto.completion_s,
        fast.completion_s
    );
    assert!(
        auto.completion_s < picked.completion_s * 1.1,
        "auto {} s, 20 Mbit/s {} s",
        auto.completion_s,
        picked.completion_s
    );
    // Random loss alone never slows it.
    let mut lossy = parse_args(
        [
            "--receivers",
            "50",
            "--size",
            "4MiB",
            "--loss",
            "2",
            "--rate",
            "auto",
        ]
        .map(String::from),
        None,
    )
    .unwrap()
    .scenario;
    lossy.seed = s;
    let r = must_run(&lossy, 1).report;
    assert_eq!(r.slow_client_reports, 0, "{}", r.table());
}
