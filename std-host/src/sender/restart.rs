//! The sender's restart file (`uftp -f` writes it, `uftp -F file` re-runs the session from it;
//! digest §1.6).
//!
//! uftp 4.10.2 dumps a C struct at the end of a failed session. Ours is JSON, the same on every
//! machine, and written *during* the session as well — once the announce phase is over, at
//! every file start and end, when a client is lost, and every few seconds while anything
//! changed — each time to a temporary that is fsynced and renamed over the file, so a reader
//! (or a sender killed with SIGKILL) never leaves a torn one. At the end it is rewritten with
//! the clients that failed, or removed when none did.
//!
//! The file, `_group_<GROUP ID, 8 hex digits>_restart` in the current directory:
//!
//! ```json
//! {
//!   "format": "uftp-rs restart",
//!   "version": 1,
//!   "group_id": "0x1A2B3C4D",
//!   "group_inst": 0,
//!   "state": "running",
//!   "paths": ["big.img", "dir", {"hex": "6e616d65ff"}],
//!   "clients": [
//!     {"id": "0x0A4D0002", "status": "incomplete"},
//!     {"id": "0x0A4D0003", "fingerprint": "AA:BB:…", "status": "failed"}
//!   ]
//! }
//! ```
//!
//! - `group_id`, `group_inst`: the session's; the re-run uses the same group ID and
//!   `group_inst + 1` (at most 255).
//! - `state`: `running` while the session runs (so a file left in this state is from a sender
//!   that died), `finished` once it ended.
//! - `paths`: the files and directories the session was given (arguments and `-i` list), as
//!   given (a relative one is relative to the directory `uftp` ran in); a name that is not
//!   UTF-8 is written as `{"hex": "…"}` of its bytes. The re-run walks them again with its
//!   own options (`-D`, `-E`, `-l`, …), as uftp's `-F` does.
//! - `clients`: the clients the re-run is for (a closed group, as `-H`): those that had not
//!   confirmed the end of the session (`incomplete`), or that failed a file or were lost
//!   (`failed`); with the key fingerprint `-H` pinned for it, if any.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use proto_core::crypto::Fingerprint;
use proto_core::session::security::ClientPin;
use serde::{Deserialize, Serialize};

/// The `format` field.
pub const FORMAT: &str = "uftp-rs restart";
/// The `version` field this code writes and reads.
pub const VERSION: u32 = 1;

/// The restart file's name for a group, as uftp names it (in the current directory).
pub fn file_name(group_id: u32) -> PathBuf {
    PathBuf::from(format!("_group_{group_id:08X}_restart"))
}

/// Whether the session was still running when the file was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Written during the session: if it is still so, the sender died.
    Running,
    /// Written at the end of the session.
    Finished,
}

/// Why a client is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientStatus {
    /// It had not confirmed the session's end (yet).
    Incomplete,
    /// It was lost, or failed or rejected a file.
    Failed,
}

/// One client of the re-run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Its ID.
    pub id: u32,
    /// The fingerprint its key must have (`-H ID|FP`).
    pub fingerprint: Option<Fingerprint>,
    /// Why it is listed.
    pub status: ClientStatus,
}

/// A restart file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restart {
    /// The session's group ID.
    pub group_id: u32,
    /// The session's group instance.
    pub group_inst: u8,
    /// Running or finished.
    pub state: State,
    /// The files and directories, as given.
    pub paths: Vec<PathBuf>,
    /// The clients of the re-run.
    pub clients: Vec<Client>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum PathJson {
    Text(String),
    Hex { hex: String },
}

#[derive(Serialize, Deserialize)]
struct ClientJson {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    status: ClientStatus,
}

#[derive(Serialize, Deserialize)]
struct FileJson {
    format: String,
    version: u32,
    group_id: String,
    group_inst: u8,
    state: State,
    paths: Vec<PathJson>,
    clients: Vec<ClientJson>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_id(s: &str) -> Option<u32> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u32::from_str_radix(h, 16)
        .ok()
        .filter(|&id| id != 0 && id != u32::MAX)
}

impl Restart {
    /// The JSON text of the file.
    pub fn to_json(&self) -> String {
        let file = FileJson {
            format: FORMAT.into(),
            version: VERSION,
            group_id: format!("0x{:08X}", self.group_id),
            group_inst: self.group_inst,
            state: self.state,
            paths: self
                .paths
                .iter()
                .map(|p| match p.to_str() {
                    Some(s) => PathJson::Text(s.into()),
                    None => PathJson::Hex {
                        hex: hex(p.as_os_str().as_bytes()),
                    },
                })
                .collect(),
            clients: self
                .clients
                .iter()
                .map(|c| ClientJson {
                    id: format!("0x{:08X}", c.id),
                    fingerprint: c.fingerprint.map(|f| f.to_string()),
                    status: c.status,
                })
                .collect(),
        };
        let mut s = serde_json::to_string_pretty(&file).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses a restart file's text; the error says what is wrong with it.
    pub fn from_json(text: &str) -> Result<Restart, String> {
        let probe: serde_json::Value =
            serde_json::from_str(text).map_err(|_| not_ours().to_string())?;
        if probe.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(not_ours().into());
        }
        let version = probe.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(VERSION)) {
            return Err(format!(
                "restart file version {} is not supported (this uftp reads version {VERSION})",
                version.map_or_else(|| "?".into(), |v| v.to_string())
            ));
        }
        let f: FileJson = serde_json::from_value(probe).map_err(|e| format!("{e}"))?;
        let group_id =
            parse_id(&f.group_id).ok_or_else(|| format!("invalid group_id {:?}", f.group_id))?;
        let paths = f
            .paths
            .into_iter()
            .map(|p| match p {
                PathJson::Text(s) => Ok(PathBuf::from(s)),
                PathJson::Hex { hex } => unhex(&hex)
                    .map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)))
                    .ok_or_else(|| format!("invalid hex path {hex:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let clients = f
            .clients
            .into_iter()
            .map(|c| {
                let id = parse_id(&c.id).ok_or_else(|| format!("invalid client id {:?}", c.id))?;
                let fingerprint = match c.fingerprint {
                    Some(fp) => Some(
                        Fingerprint::parse(&fp)
                            .map_err(|_| format!("invalid fingerprint {fp:?}"))?,
                    ),
                    None => None,
                };
                Ok(Client {
                    id,
                    fingerprint,
                    status: c.status,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if paths.is_empty() {
            return Err("it lists no files".into());
        }
        Ok(Restart {
            group_id,
            group_inst: f.group_inst,
            state: f.state,
            paths,
            clients,
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Restart, String> {
        let bytes = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| not_ours().to_string())?;
        Restart::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes the file at `path` atomically: a temporary next to it, fsynced, renamed over it,
    /// and the directory fsynced.
    pub fn store(&self, path: &Path) -> io::Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let result = (|| {
            let mut f = File::create(&temp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            fs::rename(&temp, path)?;
            File::open(&dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// The closed group of the re-run, as `-H` pins.
    pub fn pins(&self) -> Vec<ClientPin> {
        self.clients
            .iter()
            .map(|c| ClientPin {
                id: c.id,
                fingerprint: c.fingerprint,
            })
            .collect()
    }
}

fn not_ours() -> &'static str {
    "not a uftp-rs restart file (uftp 4.10.2's own restart files are not readable here)"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Restart {
        Restart {
            group_id: 0x1A2B_3C4D,
            group_inst: 3,
            state: State::Running,
            paths: vec![
                PathBuf::from("big.img"),
                PathBuf::from("/srv/a dir"),
                PathBuf::from(std::ffi::OsString::from_vec(b"odd\xffname".to_vec())),
            ],
            clients: vec![
                Client {
                    id: 0x0A4D_0002,
                    fingerprint: None,
                    status: ClientStatus::Incomplete,
                },
                Client {
                    id: 0x0A4D_0003,
                    fingerprint: Some(Fingerprint([0xAB; 20])),
                    status: ClientStatus::Failed,
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_reads_as_documented() {
        let r = sample();
        let text = r.to_json();
        assert_eq!(Restart::from_json(&text).unwrap(), r);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["group_id"], "0x1A2B3C4D");
        assert_eq!(v["group_inst"], 3);
        assert_eq!(v["state"], "running");
        assert_eq!(v["paths"][0], "big.img");
        assert_eq!(v["paths"][2]["hex"], "6f6464ff6e616d65");
        assert_eq!(v["clients"][0]["id"], "0x0A4D0002");
        assert!(v["clients"][0].get("fingerprint").is_none());
        assert_eq!(v["clients"][1]["status"], "failed");
        assert_eq!(
            v["clients"][1]["fingerprint"],
            "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB"
        );
        // Hand-written (as documented) reads too.
        let hand = r#"{"format": "uftp-rs restart", "version": 1, "group_id": "0x00000010",
            "group_inst": 0, "state": "finished", "paths": ["f"],
            "clients": [{"id": "0x0A000002", "status": "failed"}]}"#;
        let h = Restart::from_json(hand).unwrap();
        assert_eq!((h.group_id, h.clients[0].id), (0x10, 0x0A00_0002));
    }

    #[test]
    fn foreign_or_broken_files_are_refused_with_the_reason() {
        // A uftp 4.10.2 restart file is a raw C struct.
        let raw = String::from_utf8_lossy(&[0x4d, 0x3c, 0x2b, 0x1a, 0, 0, 0, 1]).into_owned();
        assert!(Restart::from_json(&raw)
            .unwrap_err()
            .contains("not a uftp-rs"));
        let newer = sample()
            .to_json()
            .replace("\"version\": 1", "\"version\": 2");
        assert!(Restart::from_json(&newer)
            .unwrap_err()
            .contains("version 2"));
        let bad = sample().to_json().replace("0x0A4D0002", "zz");
        assert!(Restart::from_json(&bad).unwrap_err().contains("client id"));
        let none = Restart {
            paths: Vec::new(),
            ..sample()
        };
        assert!(Restart::from_json(&none.to_json())
            .unwrap_err()
            .contains("no files"));
    }

    #[test]
    fn store_replaces_the_file_atomically() {
        let dir = std::env::temp_dir().join(format!("uftp-restart-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(file_name(0x1A2B_3C4D));
        assert!(path.ends_with("_group_1A2B3C4D_restart"));
        let mut r = sample();
        r.store(&path).unwrap();
        r.state = State::Finished;
        r.clients.pop();
        r.store(&path).unwrap();
        assert_eq!(Restart::load(&path).unwrap(), r);
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(names.len(), 1, "no temporary left");
        fs::remove_dir_all(&dir).unwrap();
    }
}
