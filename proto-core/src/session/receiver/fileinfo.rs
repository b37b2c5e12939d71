//! FILEINFO: opening, skipping or rejecting an item, and answering at once when nothing is
//! to be received.

use super::*;

impl<const SESSIONS: usize, R: RsaKeys> Receiver<SESSIONS, R> {
    pub(super) fn on_fileinfo<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        fi: &FileInfoRepr<'_>,
        storage: &mut S,
    ) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        if !fi.client_ids.is_empty() && !lists(&fi.client_ids, uid) {
            return;
        }
        if s.phase == Phase::Completing {
            return self.drop_dgram(DropReason::Unexpected);
        }
        if s.phase == Phase::Registering {
            // Our REG_CONF was lost, but a FILEINFO naming us confirms the registration.
            s.phase = Phase::Receiving;
            s.send_register = false;
            let session = s.id;
            self.event(Event::Registered { session });
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let session = s.id;
        if let Some(f) = s.file.as_mut() {
            if f.file_id == fi.file_id {
                // A repeat: our answer was lost.
                f.info_ts = fi.timestamp;
                f.info_rx = now;
                match f.state {
                    FileState::Receiving => f.send_ack = true,
                    FileState::Done(_) => f.send_complete = true,
                }
                return;
            }
            if f.state == FileState::Receiving {
                let file_id = f.file_id;
                s.file = None;
                storage.discard(session, file_id);
                self.event(Event::FileAborted { session, file_id });
            }
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let layout = match fi.ftype {
            FileType::Regular => FileLayout::new(fi.size, s.blocksize).ok(),
            _ => FileLayout::new(0, s.blocksize).ok(),
        };
        let mut file = File {
            file_id: fi.file_id,
            layout: layout.unwrap_or(FileLayout {
                size: 0,
                blocksize: s.blocksize,
                blocks: 0,
                sections: 0,
                big: 0,
                small: 0,
                big_sections: 0,
            }),
            state: FileState::Done(CompleteStatus::Rejected),
            received: 0,
            last_section: 0,
            nak: None,
            status: None,
            info_ts: fi.timestamp,
            info_rx: now,
            send_ack: false,
            send_complete: true,
            freespace: None,
            resumed: false,
            overwrite: false,
            quick_status: false,
        };
        let sync = s.sync;
        let kind = match fi.ftype {
            FileType::Regular => Some(ItemKind::Regular),
            FileType::Directory => Some(ItemKind::Directory),
            FileType::Symlink => Some(ItemKind::Symlink { target: fi.link }),
            FileType::Delete => Some(ItemKind::Delete),
            _ => None,
        };
        let result = if fi.ftype == FileType::FreeSpace {
            file.freespace = Some(storage.free_space(session).unwrap_or(0));
            Ok(())
        } else if !name_is_acceptable(fi.name) {
            Err(Reject::BadName)
        } else if layout.is_none() {
            Err(Reject::Unsupported)
        } else if let Some(kind) = kind {
            if let ItemKind::Symlink { target } = kind {
                if target.is_empty() || target.contains(&0) {
                    return self.reject(idx, file, Reject::BadName);
                }
            }
            let item = Item {
                session,
                file_id: fi.file_id,
                name: fi.name,
                kind,
                size: fi.size,
                mtime: fi.mtime,
                layout: file.layout,
            };
            if sync & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW) != 0 {
                let status = sync_status(&item, storage.existing(&item));
                let preview = sync & ANNOUNCE_FLAG_SYNC_PREVIEW != 0;
                if preview || status == CompleteStatus::Skipped {
                    return self.skip(idx, file, fi.size, status, preview);
                }
                file.overwrite = status == CompleteStatus::Overwrite;
            }
            storage.open(&item).and_then(|()| {
                if kind != ItemKind::Regular {
                    return Ok(());
                }
                let resumed = session.group_inst != 0 && storage.resumed(&item);
                let (need, blocks) = (file.layout.bitmap_len(), file.layout.blocks);
                match storage.block_map(session) {
                    Some(m) if m.len() >= need => {
                        if resumed {
                            file.received = nak::count(m, blocks as usize) as u32;
                            file.resumed = file.received > 0;
                        } else {
                            m[..need].fill(0);
                        }
                        Ok(())
                    }
                    _ => {
                        storage.discard(session, fi.file_id);
                        Err(Reject::Io)
                    }
                }
            })
        } else {
            Err(Reject::Unsupported)
        };
        if let Err(reason) = result {
            return self.reject(idx, file, reason);
        }
        self.event(Event::FileStarted {
            session,
            file_id: fi.file_id,
            kind: fi.ftype,
            size: fi.size,
        });
        if fi.ftype == FileType::Regular && file.layout.blocks > 0 && !file.complete() {
            file.state = FileState::Receiving;
            file.send_ack = true;
            file.send_complete = false;
            file.quick_status = file.resumed;
        } else {
            if fi.ftype == FileType::Regular {
                if let Err(reason) = storage.finish(session, fi.file_id) {
                    return self.reject(idx, file, reason);
                }
            }
            file.state = FileState::Done(file.final_status());
            self.event(Event::FileFinished {
                session,
                file_id: fi.file_id,
                size: fi.size,
                overwrite: file.overwrite,
            });
        }
        if let Some(s) = self.sessions[idx].as_mut() {
            s.file = Some(file);
        }
    }

    /// Sync mode answers the item at once with `status`, storing nothing.
    pub(super) fn skip(
        &mut self,
        idx: usize,
        file: File,
        size: u64,
        status: CompleteStatus,
        preview: bool,
    ) {
        let file_id = file.file_id;
        let Some(session) = self.answer_early(idx, file, status) else {
            return;
        };
        self.event(Event::FileSkipped {
            session,
            file_id,
            size,
            status,
            preview,
        });
    }

    pub(super) fn reject(&mut self, idx: usize, file: File, reason: Reject) {
        let file_id = file.file_id;
        let Some(session) = self.answer_early(idx, file, CompleteStatus::Rejected) else {
            return;
        };
        self.event(Event::FileRejected {
            session,
            file_id,
            reason,
        });
    }

    /// Ends `file` without data: COMPLETE with `status` is due next (no FILEINFO_ACK), and the
    /// file is the session's current one. Returns the session, if it still exists.
    pub(super) fn answer_early(
        &mut self,
        idx: usize,
        mut file: File,
        status: CompleteStatus,
    ) -> Option<SessionId> {
        file.state = FileState::Done(status);
        file.send_complete = true;
        file.send_ack = false;
        let s = self.sessions[idx].as_mut()?;
        s.file = Some(file);
        Some(s.id)
    }
}
