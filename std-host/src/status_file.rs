//! uftp 4.10.2's status files: `uftp -S status_file` and `uftpd -F status_file`, whose lines
//! (`CONNECT;…`, `RESULT;…`, `HSTATS;…`, `STATS;…`) scripts written for uftp parse. The line
//! formats are those uftp 4.10.2 writes (see `man uftp`, `man uftpd`, and README.md "Status
//! files" for where its output differs from its manual). `@LOG` mixes the lines into the log
//! instead, as uftp does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The value of `-S`/`-F` that sends the lines to the log.
pub const TO_LOG: &str = "@LOG";

/// Where status lines go.
#[derive(Debug)]
pub enum StatusFile {
    /// A file, appended to (uftp appends, run after run).
    File(File),
    /// The log (`@LOG`): the caller writes each line there.
    Log,
}

impl StatusFile {
    /// Opens `spec`: [`TO_LOG`], or a file created when missing and appended to.
    pub fn open(spec: &Path) -> io::Result<StatusFile> {
        if spec.as_os_str() == TO_LOG {
            return Ok(StatusFile::Log);
        }
        let f = OpenOptions::new().create(true).append(true).open(spec)?;
        Ok(StatusFile::File(f))
    }

    /// Writes `line` (without its newline) to the file and returns `None`, or returns the line
    /// for the caller's log (`@LOG`).
    pub fn write(&mut self, line: String) -> io::Result<Option<String>> {
        match self {
            StatusFile::File(f) => {
                let mut l = line.into_bytes();
                l.push(b'\n');
                f.write_all(&l)?;
                f.flush()?;
                Ok(None)
            }
            StatusFile::Log => Ok(Some(line)),
        }
    }
}

/// A size as uftp's status lines give it: whole kibibytes, `146KB`.
pub fn kb(bytes: u64) -> String {
    format!("{}KB", bytes / 1024)
}

/// A total as uftp's STATS lines give it: whole mebibytes, `0MB`.
pub fn mb(bytes: u64) -> String {
    format!("{}MB", bytes / (1024 * 1024))
}

/// A speed as uftp's status lines give it: `bytes` over `secs` in KB/s, two decimals, and
/// `0.00KB/s` for no time.
pub fn speed(bytes: u64, secs: f64) -> String {
    let s = if secs > 0.0 {
        bytes as f64 / 1024.0 / secs
    } else {
        0.0
    };
    format!("{s:.2}KB/s")
}

/// The local time as uftpd's status lines give it: `yyyy/mm/dd-hh:mm:ss`.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let t = local(secs as libc::time_t);
    format!(
        "{:04}/{:02}/{:02}-{:02}:{:02}:{:02}",
        t.tm_year + 1900,
        t.tm_mon + 1,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec
    )
}

#[allow(unsafe_code)]
fn local(secs: libc::time_t) -> libc::tm {
    // SAFETY: localtime_r reads the time and fills the tm it is given, both ours; an all-zero
    // tm is a valid value of the plain C struct (its zone pointer is null until filled).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_speeds_and_times_as_uftp_writes_them() {
        // From uftp 4.10.2's own status file: 150000 bytes are 146KB and 0MB.
        assert_eq!(kb(150_000), "146KB");
        assert_eq!(kb(3), "0KB");
        assert_eq!(mb(150_000), "0MB");
        assert_eq!(mb(3 << 20), "3MB");
        assert_eq!(speed(150_003, 0.034_24), "4278.25KB/s");
        assert_eq!(speed(5, 0.0), "0.00KB/s");
        let t = timestamp();
        assert_eq!(t.len(), 19, "{t}");
        assert_eq!(
            t.chars()
                .map(|c| if c.is_ascii_digit() { '9' } else { c })
                .collect::<String>(),
            "9999/99/99-99:99:99"
        );
    }

    #[test]
    fn lines_are_appended_or_handed_back_for_the_log() {
        let path = std::env::temp_dir().join(format!("status-file-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        for line in ["CONNECT;success;0x01020304", "STATS;x"] {
            let mut s = StatusFile::open(&path).unwrap();
            assert_eq!(s.write(line.into()).unwrap(), None);
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "CONNECT;success;0x01020304\nSTATS;x\n"
        );
        std::fs::remove_file(&path).unwrap();
        let mut s = StatusFile::open(Path::new(TO_LOG)).unwrap();
        assert_eq!(s.write("A;b".into()).unwrap().as_deref(), Some("A;b"));
    }
}
