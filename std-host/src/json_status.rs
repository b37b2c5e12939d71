//! `--json FILE|-`: status events for scripts and dashboards, one JSON object a line (JSON
//! Lines), written and flushed as each event happens. Every object has `"event"` (its kind) and
//! `"time"` (seconds since the Unix epoch, a float); the fields of each kind are listed in
//! README.md ("Status events"). Not in uftp 4.10.2.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde_json::{Map, Value};

/// Where the events go.
pub struct JsonStatus {
    out: Box<dyn Write>,
    name: String,
}

impl std::fmt::Debug for JsonStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonStatus")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JsonStatus {
    /// Opens `target`: `-` is standard output, anything else a file appended to (created when
    /// missing, so that a dashboard can follow one file across runs).
    pub fn open(target: &Path) -> io::Result<JsonStatus> {
        if target.as_os_str() == "-" {
            return Ok(JsonStatus {
                out: Box::new(io::stdout()),
                name: "standard output".into(),
            });
        }
        let f: File = OpenOptions::new().create(true).append(true).open(target)?;
        Ok(JsonStatus {
            out: Box::new(f),
            name: target.display().to_string(),
        })
    }

    /// Writes one event: `{"event": kind, "time": now, …fields}` on its own line, flushed. A
    /// failed write is returned for the caller to log; the transfer goes on.
    pub fn emit(&mut self, kind: &str, fields: Value) -> io::Result<()> {
        let mut obj = Map::new();
        obj.insert("event".into(), Value::from(kind));
        obj.insert("time".into(), Value::from(unix_time()));
        if let Value::Object(m) = fields {
            obj.extend(m);
        }
        let mut line = serde_json::to_vec(&Value::Object(obj)).map_err(io::Error::other)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }

    /// What it writes to, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Seconds since the Unix epoch, to the microsecond.
fn unix_time() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as f64 / 1e6
}

/// A node ID as uftp writes it: `0x` and eight upper-case hex digits.
pub fn id(v: u32) -> String {
    format!("0x{v:08X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flushed_object_a_line_with_names_escaped() {
        let path = std::env::temp_dir().join(format!("json-status-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut j = JsonStatus::open(&path).unwrap();
        j.emit(
            "file",
            serde_json::json!({"name": "a \"quoted\"\nname\u{1}", "size": 3u64}),
        )
        .unwrap();
        // Flushed: readable before the writer goes away.
        let text = std::fs::read_to_string(&path).unwrap();
        drop(j);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text:?}");
        assert!(
            lines[0].starts_with(r#"{"event":"file","time":"#),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(r#""name":"a \"quoted\"\nname\u0001""#),
            "{}",
            lines[0]
        );
        let v: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["name"], "a \"quoted\"\nname\u{1}");
        assert!(v["time"].as_f64().unwrap() > 1.7e9);
        // A second run appends.
        JsonStatus::open(&path)
            .unwrap()
            .emit("x", serde_json::json!({}))
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        std::fs::remove_file(&path).unwrap();
    }
}
