//! A sweep of loss (0–30%, independent and in bursts) over 1–1000 receivers, checked against
//! the table committed in `tests/snapshots/sweep.txt`. Every block every receiver stores is
//! checked, every receiver the sender counts complete has its files, and under independent loss
//! every receiver finishes.
//!
//! A change in the protocol's behaviour changes the table: look at the difference, and if it
//! is what you meant, regenerate the table with
//!
//! ```sh
//! UPDATE_SNAPSHOTS=1 cargo test -p sim --test sweep
//! ```

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use sim::run::{run, RunOptions};
use sim::scenario::{set_loss, ClassSpec, FileSpec, Scenario};

/// (receivers, loss %, mean burst length (0: independent)).
const ROWS: &[(u32, f64, f64)] = &[
    (1, 0.0, 0.0),
    (1, 10.0, 0.0),
    (1, 30.0, 0.0),
    (10, 1.0, 0.0),
    (10, 5.0, 0.0),
    (10, 20.0, 0.0),
    (10, 30.0, 0.0),
    (10, 5.0, 8.0),
    (100, 0.0, 0.0),
    (100, 1.0, 0.0),
    (100, 10.0, 0.0),
    (100, 30.0, 0.0),
    (100, 10.0, 4.0),
    (1000, 1.0, 0.0),
    (1000, 5.0, 0.0),
    (1000, 20.0, 0.0),
    (1000, 30.0, 0.0),
    (1000, 10.0, 4.0),
    (1000, 5.0, 16.0),
];

fn scenario(receivers: u32, loss: f64, burst: f64) -> Scenario {
    let mut class = ClassSpec::uniform(0.0, Duration::from_millis(10));
    set_loss(&mut class.down, loss / 100.0, burst);
    set_loss(&mut class.up, loss / 100.0, burst);
    Scenario {
        seed: 1000 + u64::from(receivers) + (loss * 10.0) as u64 + burst as u64,
        receivers,
        files: vec![FileSpec {
            name: "sweep.bin".into(),
            size: 400_000,
        }],
        classes: vec![class],
        ..Scenario::default()
    }
}

#[test]
fn loss_sweep_matches_the_committed_table() {
    let mut table = String::from(
        "receivers  loss%  burst  seed  completion_s  passes  retransmitted  wire/file  \
         status_msgs  completed  lost\n",
    );
    for &(n, loss, burst) in ROWS {
        let sc = scenario(n, loss, burst);
        let out = run(&sc, RunOptions::default()).expect("valid scenario");
        assert!(
            out.passed(),
            "{n} receivers at {loss}% (burst {burst}), seed {}: {:#?}\n{}",
            sc.seed,
            out.failures,
            out.report.table()
        );
        let r = &out.report;
        if burst == 0.0 {
            // Under independent loss every receiver finishes. Long bursts (counted in
            // datagrams, which are sparse while the sender announces) can silence a receiver
            // past its timeout: the table records how many finished.
            assert_eq!(r.completed, n, "every receiver finished");
        }
        let _ = writeln!(
            table,
            "{n:>9}  {loss:>5.1}  {burst:>5.0}  {:>4}  {:>12.3}  {:>6}  {:>13}  {:>9.3}  {:>11}  {:>9}  {:>4}",
            sc.seed,
            r.completion_s,
            r.passes,
            r.retransmitted_blocks,
            r.wire_per_file_byte,
            r.status_messages,
            r.completed,
            r.lost
        );
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/sweep.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &table).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != table {
        let diff: Vec<String> = committed
            .lines()
            .zip(table.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "the sweep differs from {} ({} rows differ):\n{}\n\nnew table:\n{table}\n\
             If the change is intended: UPDATE_SNAPSHOTS=1 cargo test -p sim --test sweep",
            path.display(),
            diff.len(),
            diff.join("\n")
        );
    }
}
