//! `uftp -S status_file`: uftp 4.10.2's status lines for the sender (see
//! [`crate::status_file`]): `CONNECT` once the receivers have registered, `RESULT` per receiver
//! after each file, `HSTATS` and a `STATS` per receiver at the end.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use proto_core::session::sender::FileResult;
use proto_core::wire::CompleteStatus;

use crate::status_file::{kb, mb, speed, StatusFile};

/// What a receiver got, for its STATS line.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    copy: u32,
    overwrite: u32,
    skip: u32,
    bytes: u64,
    secs: f64,
}

/// The status file and the per-receiver totals behind its STATS lines.
#[derive(Debug)]
pub struct StatusLines {
    out: StatusFile,
    clients: BTreeMap<u32, Counts>,
}

/// How uftp names a receiver in its status lines.
fn target(id: u32) -> String {
    format!("0x{id:08X}")
}

impl StatusLines {
    /// Opens `-S`'s file (or `@LOG`).
    pub fn open(path: &Path) -> io::Result<StatusLines> {
        Ok(StatusLines {
            out: StatusFile::open(path)?,
            clients: BTreeMap::new(),
        })
    }

    /// Writes `lines`; returns those that go to the log (`@LOG`).
    fn write(&mut self, lines: Vec<String>) -> io::Result<Vec<String>> {
        let mut to_log = Vec::new();
        for l in lines {
            to_log.extend(self.out.write(l)?);
        }
        Ok(to_log)
    }

    /// The CONNECT lines once registration is over: `registered` receivers succeeded, the
    /// `expected` ones (`-H`) that did not register failed.
    pub fn connect(&mut self, registered: &[u32], expected: &[u32]) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        for &id in registered {
            self.clients.entry(id).or_default();
            lines.push(format!("CONNECT;success;{}", target(id)));
        }
        for &id in expected.iter().filter(|id| !registered.contains(id)) {
            self.clients.entry(id).or_default();
            lines.push(format!("CONNECT;failed;{}", target(id)));
        }
        self.write(lines)
    }

    /// A receiver's answer to `@FREESPACE` (item `name`, "."): the free bytes in its first
    /// destination. As uftp 4.10.2's, the line does not name the receiver: it follows that
    /// receiver's RESULT line for the item.
    pub fn free_space(&mut self, name: &str, bytes: u64) -> io::Result<Vec<String>> {
        self.write(vec![format!("FREESPACE;{name};{bytes}")])
    }

    /// A receiver's RESULT line for a file of `size` bytes sent in `secs`: uftp's `copy`,
    /// `overwritten` (sync mode), `skipped`, `rejected`, `mute` (it never registered, no speed) or, for a
    /// receiver that dropped out during the file, `lost`.
    pub fn result(
        &mut self,
        id: u32,
        registered: bool,
        name: &str,
        size: u64,
        secs: f64,
        result: FileResult,
    ) -> io::Result<Vec<String>> {
        let c = self.clients.entry(id).or_default();
        let (status, counted) = match result {
            FileResult::Completed(CompleteStatus::Normal) => {
                c.copy += 1;
                ("copy", true)
            }
            FileResult::Completed(CompleteStatus::Overwrite) => {
                c.overwrite += 1;
                ("overwritten", true)
            }
            FileResult::Completed(CompleteStatus::Skipped) => {
                c.skip += 1;
                ("skipped", false)
            }
            FileResult::Completed(_) => ("rejected", false),
            FileResult::Failed if !registered => ("mute", false),
            FileResult::Failed => ("lost", false),
        };
        if counted {
            c.bytes += size;
            c.secs += secs;
        }
        // uftp 4.10.2 gives a speed only for what was sent.
        let rate = if counted {
            speed(size, secs)
        } else {
            String::new()
        };
        let line = format!("RESULT;{};{name};{};{status};{rate}", target(id), kb(size));
        self.write(vec![line])
    }

    /// The closing HSTATS line and a STATS line per receiver.
    pub fn stats(&mut self) -> io::Result<Vec<String>> {
        let mut lines =
            vec!["HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s".to_string()];
        for (&id, c) in &self.clients {
            lines.push(format!(
                "STATS;{};{};{};{};{};{:.3};{}",
                target(id),
                c.copy,
                c.overwrite,
                c.skip,
                mb(c.bytes),
                c.secs,
                speed(c.bytes, c.secs)
            ));
        }
        self.write(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_uftp_writes_them() {
        let path = std::env::temp_dir().join(format!("sender-status-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut s = StatusLines::open(&path).unwrap();
        let (a, b) = (0x0102_0304, 0x0102_0305);
        assert!(s.connect(&[a], &[a, b]).unwrap().is_empty());
        let ok = FileResult::Completed(CompleteStatus::Normal);
        s.result(a, true, "f1.bin", 150_000, 0.0288, ok).unwrap();
        s.result(b, false, "f1.bin", 150_000, 0.0288, FileResult::Failed)
            .unwrap();
        s.result(a, true, "f2.txt", 3, 0.0, ok).unwrap();
        s.stats().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CONNECT;success;0x01020304\n\
             CONNECT;failed;0x01020305\n\
             RESULT;0x01020304;f1.bin;146KB;copy;5086.26KB/s\n\
             RESULT;0x01020305;f1.bin;146KB;mute;\n\
             RESULT;0x01020304;f2.txt;0KB;copy;0.00KB/s\n\
             HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s\n\
             STATS;0x01020304;2;0;0;0MB;0.029;5086.36KB/s\n\
             STATS;0x01020305;0;0;0;0MB;0.000;0.00KB/s\n"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn sync_results_are_written_as_uftp_writes_them() {
        let path = std::env::temp_dir().join(format!("uftp-status-sync-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut s = StatusLines::open(&path).unwrap();
        let a = 0x0102_0304;
        assert!(s.connect(&[a], &[a]).unwrap().is_empty());
        for (name, status) in [
            ("old", CompleteStatus::Overwrite),
            ("same", CompleteStatus::Skipped),
            ("big", CompleteStatus::Rejected),
        ] {
            s.result(a, true, name, 2048, 0.5, FileResult::Completed(status))
                .unwrap();
        }
        s.stats().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CONNECT;success;0x01020304\n\
             RESULT;0x01020304;old;2KB;overwritten;4.00KB/s\n\
             RESULT;0x01020304;same;2KB;skipped;\n\
             RESULT;0x01020304;big;2KB;rejected;\n\
             HSTATS;target;copy;overwrite;skip;totalMB;time;speedKB/s\n\
             STATS;0x01020304;0;1;1;0MB;0.500;4.00KB/s\n"
        );
        std::fs::remove_file(&path).unwrap();
    }
}
