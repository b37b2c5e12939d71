//! `uftpd -s postreceive_script`: the command run on received files, as uftpd 4.10.2 runs it
//! (`man uftpd`): `script -I SESSION_ID file [file...]`, SESSION_ID the group ID in 8 hex
//! digits and each file a full path in the destination directory. Without `-T` it runs once per
//! file as soon as the file is received; with `-T` once when the session completes, with the
//! top-level files and directories the session moved into place. It runs beside the receive
//! loop, never blocking it: its output (standard output and error) and how it ended are handed
//! back as log lines by [`PostReceive::drain`].

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};

/// A log line about a script run, and its level.
pub type Note = (u8, String);

/// The script and the lines its runs have to log.
#[derive(Debug)]
pub struct PostReceive {
    script: PathBuf,
    tx: Sender<Note>,
    rx: Receiver<Note>,
}

impl PostReceive {
    /// The script `-s` names.
    pub fn new(script: PathBuf) -> PostReceive {
        let (tx, rx) = channel();
        PostReceive { script, tx, rx }
    }

    /// Starts `script -I GROUP_ID files…` and returns at once with its PID; a thread collects
    /// its output and exit status for [`PostReceive::drain`].
    pub fn run(&self, group_id: u32, files: &[&Path]) -> io::Result<u32> {
        let (reader, writer) = io::pipe()?;
        let mut cmd = Command::new(&self.script);
        cmd.arg("-I")
            .arg(format!("{group_id:08X}"))
            .args(files)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let mut child = cmd.spawn()?;
        // The parent's copies of the pipe's write end go with the command, so that the reader
        // sees the end of the output when the script (and whatever it left running) is done.
        drop(cmd);
        let pid = child.id();
        let tx = self.tx.clone();
        let name = self.script.display().to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let _ = tx.send((2, format!("postreceive {name} [{pid}]: {line}")));
            }
            let note = match child.wait() {
                Ok(st) if st.success() => (2, format!("postreceive {name} [{pid}] done")),
                Ok(st) => (1, format!("postreceive {name} [{pid}] failed: {st}")),
                Err(e) => (1, format!("postreceive {name} [{pid}]: {e}")),
            };
            let _ = tx.send(note);
        });
        Ok(pid)
    }

    /// The log lines the runs have produced since the last call.
    pub fn drain(&self) -> Vec<Note> {
        self.rx.try_iter().collect()
    }

    /// The command line of a run, for the log.
    pub fn describe(&self, group_id: u32, files: &[&Path]) -> String {
        let mut s = OsString::from(self.script.as_os_str());
        s.push(format!(" -I {group_id:08X}"));
        for f in files {
            s.push(" ");
            s.push(f.as_os_str());
        }
        s.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn runs_beside_the_caller_and_reports_output_and_status() {
        let dir = std::env::temp_dir().join(format!("postreceive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script.sh");
        let gate = dir.join("gate");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"args: $*\"\necho oops >&2\nwhile [ ! -e {} ]; do sleep 0.02; done\nexit 3\n",
                gate.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let p = PostReceive::new(script.clone());
        let f = dir.join("a file");
        let pid = p.run(0x0A0B_0C0D, &[&f]).unwrap();
        // Returned while the script waits for the gate.
        let t0 = Instant::now();
        let mut notes = Vec::new();
        while notes.len() < 2 {
            notes.extend(p.drain());
            assert!(t0.elapsed() < Duration::from_secs(5), "{notes:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        let name = script.display();
        assert!(notes.contains(&(
            2,
            format!(
                "postreceive {name} [{pid}]: args: -I 0A0B0C0D {}",
                f.display()
            )
        )));
        assert!(notes.contains(&(2, format!("postreceive {name} [{pid}]: oops"))));
        std::fs::write(&gate, "").unwrap();
        while notes.len() < 3 {
            notes.extend(p.drain());
            assert!(t0.elapsed() < Duration::from_secs(5), "{notes:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            notes[2],
            (
                1,
                format!("postreceive {name} [{pid}] failed: exit status: 3")
            )
        );
        assert_eq!(
            p.describe(1, &[&f]),
            format!("{name} -I 00000001 {}", f.display())
        );
        // A script that cannot be started is an error at once.
        assert!(PostReceive::new(dir.join("missing")).run(1, &[&f]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
