//! Data: the plaintext FILESEG path, the sequence window, CONG_CTRL, FILESEG, DONE and
//! file completion.

use super::*;

impl<const SESSIONS: usize, R: RsaKeys> Receiver<SESSIONS, R> {
    /// A datagram whose type byte says FILESEG: the same checks, in the same order, as
    /// [`Self::handle_datagram`] and [`Self::dispatch`] make, without building a [`Message`]
    /// (this is the path of nearly every datagram a receiver gets).
    pub(super) fn on_plain_fileseg<S: Storage>(
        &mut self,
        now: Instant,
        bytes: &[u8],
        storage: &mut S,
    ) {
        match Repr::parse_fileseg(bytes) {
            Ok((header, seg)) => self.fileseg(now, &header, &seg, storage),
            Err(_) => self.drop_dgram(DropReason::Malformed),
        }
    }

    #[inline]
    pub(super) fn fileseg<S: Storage>(
        &mut self,
        now: Instant,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
        storage: &mut S,
    ) {
        let id = SessionId {
            group_id: header.group_id,
            group_inst: header.group_inst,
        };
        let Some(idx) = self.find_session(id) else {
            return self.drop_dgram(DropReason::UnknownSession);
        };
        let s = self.sessions[idx].as_ref().expect("found above");
        if header.src_id != s.server_id {
            return self.drop_dgram(DropReason::WrongServer);
        }
        if s.keys.is_some() {
            // Encrypted sessions carry FILESEGs inside ENCRYPTED only.
            return self.drop_dgram(DropReason::Unauthenticated);
        }
        let Some(newest) = self.heard(now, idx, header, true) else {
            return self.drop_dgram(DropReason::Misordered);
        };
        self.on_fileseg(now, idx, header, seg, newest, storage);
    }

    /// Notes an authentic server message of session `idx`: liveness, GRTT and the highest
    /// sequence number. `None`: the message is too far behind that number (`ordered`: the
    /// message is one that the misordering rule applies to); else whether it is the newest.
    pub(super) fn heard(
        &mut self,
        now: Instant,
        idx: usize,
        header: &HeaderRepr,
        ordered: bool,
    ) -> Option<bool> {
        let s = self.sessions[idx].as_mut().expect("caller checked");
        if ordered {
            let behind = s.max_seq.wrapping_sub(header.seq);
            if behind > MAX_MISORDER && behind < 0x8000 {
                return None;
            }
        }
        s.last_heard = now;
        s.set_grtt(header.grtt);
        if let Some(cc) = s.cc.as_mut() {
            s.gsize = header.gsize;
            cc.on_seq(now, header.seq, s.grtt);
        }
        // Highest seq so far? (A FILESEG uses it for the section-boundary NAK rule.)
        let ahead = header.seq.wrapping_sub(s.max_seq);
        let newest = ahead != 0 && ahead < 0x8000;
        if newest {
            s.max_seq = header.seq;
        }
        Some(newest)
    }

    /// CONG_CTRL (digest §3.18): our RTT and whether we are the CLR (listed first with the CLR
    /// flag), and the round it advertises. Sessions without TFMCC pass it by.
    pub(super) fn on_cong_ctrl(
        &mut self,
        now: Instant,
        idx: usize,
        h: &HeaderRepr,
        c: &CongCtrlRepr<'_>,
    ) {
        let uid = self.config.uid;
        let u = self.uniform();
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let grtt = s.grtt;
        let gsize = s.gsize.count();
        let Some(cc) = s.cc.as_mut() else {
            return;
        };
        let clr = c
            .items
            .get(0)
            .is_some_and(|i| i.client_id == uid && i.flags & crate::wire::CC_FLAG_CLR != 0);
        let ours = c
            .items
            .iter()
            .find(|i| i.client_id == uid)
            .map(|i| (i.flags, Duration::from_micros(i.rtt.as_micros())));
        cc.on_cong_ctrl(now, h.seq, c.timestamp, ours, clr);
        cc.on_round(now, c.cc_seq, c.cc_rate, grtt, gsize, u);
    }

    /// A number uniform in (0, 1], for the feedback timer.
    pub(super) fn uniform(&mut self) -> f64 {
        let r = u32::from_be_bytes(self.drbg.bytes::<4>());
        (f64::from(r) + 1.0) / 4_294_967_296.0
    }

    pub(super) fn on_fileseg<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
        newest: bool,
        storage: &mut S,
    ) {
        if self.sessions[idx].as_ref().is_some_and(|s| s.cc.is_some()) {
            self.fileseg_cc(now, idx, header, seg);
        }
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let session = s.id;
        let grtt = s.grtt;
        let Some(f) = s.file.as_mut().filter(|f| f.file_id == seg.file_id) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        if f.state != FileState::Receiving {
            // Blocks resent for others after we finished.
            return;
        }
        let Some(block) = f.layout.block_of(seg.section, u32::from(seg.sec_block)) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        if seg.data.len() != f.layout.block_len(block) {
            return self.drop_dgram(DropReason::BadBlock);
        }
        f.quick_status = false;
        if newest && seg.section > f.last_section {
            // A new section began: NAK what is missing before it, 1×GRTT from now (§4.2).
            let to = seg.section - 1;
            match f.nak.as_mut() {
                Some(t) => t.to = t.to.max(to),
                None => {
                    f.nak = Some(NakTimer {
                        at: now + grtt,
                        from: f.last_section,
                        to,
                        requested: false,
                    })
                }
            }
            f.last_section = seg.section;
        }
        let file_id = f.file_id;
        let offset = f.layout.offset(block);
        let have = match storage.block_map(session) {
            Some(m) => nak::get(m, block as usize),
            None => {
                return self.end_session(
                    idx,
                    SessionResult::Aborted(AbortReason::WriteFailed),
                    Some(AbortReason::WriteFailed),
                    storage,
                )
            }
        };
        if have {
            self.stats.duplicate_blocks += 1;
            return;
        }
        if storage.write(session, file_id, offset, seg.data).is_err() {
            return self.end_session(
                idx,
                SessionResult::Aborted(AbortReason::WriteFailed),
                Some(AbortReason::WriteFailed),
                storage,
            );
        }
        if let Some(m) = storage.block_map(session) {
            nak::set(m, block as usize);
        }
        self.stats.blocks += 1;
        if let Some(f) = self.sessions[idx].as_mut().and_then(|s| s.file.as_mut()) {
            f.received += 1;
        }
    }

    /// A FILESEG of a TFMCC session: bytes for slow start, and the round it advertises.
    #[inline(never)]
    pub(super) fn fileseg_cc(
        &mut self,
        now: Instant,
        idx: usize,
        header: &HeaderRepr,
        seg: &FileSegRepr<'_>,
    ) {
        let u = match seg.tfmcc {
            Some(_) => self.uniform(),
            None => 1.0,
        };
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let (grtt, gsize) = (s.grtt, s.gsize.count());
        let Some(cc) = s.cc.as_mut() else {
            return;
        };
        cc.on_fileseg(now, header.seq, grtt);
        if let Some(info) = seg.tfmcc {
            cc.on_round(now, info.cc_seq, info.cc_rate, grtt, gsize, u);
        }
    }

    pub(super) fn on_done<S: Storage>(
        &mut self,
        now: Instant,
        idx: usize,
        d: &DoneRepr<'_>,
        storage: &mut S,
    ) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let listed = lists(&d.client_ids, uid);
        if !listed && !d.client_ids.is_empty() {
            return;
        }
        if d.file_id == 0 {
            if !listed {
                return;
            }
            if s.phase == Phase::Registering {
                return self.drop_dgram(DropReason::Unexpected);
            }
            if let Some(f) = s.file.as_ref() {
                if f.state == FileState::Receiving {
                    // The server is done but we are not: that file is lost.
                    let (session, file_id) = (s.id, f.file_id);
                    s.file = None;
                    storage.discard(session, file_id);
                    self.event(Event::FileAborted { session, file_id });
                }
            }
            let s = self.sessions[idx].as_mut().expect("caller checked");
            if s.phase != Phase::Completing {
                s.phase = Phase::Completing;
                s.complete_deadline = now + s.long_timeout();
            }
            s.send_complete0 = true;
            s.complete_next = now + s.grtt * 4;
            return;
        }
        let grtt = s.grtt;
        let Some(f) = s.file.as_mut().filter(|f| f.file_id == d.file_id) else {
            return self.drop_dgram(DropReason::WrongFile);
        };
        match f.state {
            FileState::Done(_) => f.send_complete |= listed,
            FileState::Receiving if f.complete() && listed => self.finish_file(idx, storage),
            FileState::Receiving => {
                let to = d.section.min(f.layout.sections.saturating_sub(1));
                // A resumed file's first DONE comes before any data: answer it at once.
                let delay = if core::mem::take(&mut f.quick_status) {
                    Duration::ZERO
                } else {
                    grtt
                };
                match f.nak.as_mut() {
                    Some(t) => {
                        t.to = t.to.max(to);
                        t.requested |= listed;
                    }
                    None => {
                        f.nak = Some(NakTimer {
                            at: now + delay,
                            from: f.last_section.min(to),
                            to,
                            requested: listed,
                        })
                    }
                }
            }
        }
    }

    pub(super) fn finish_file<S: Storage>(&mut self, idx: usize, storage: &mut S) {
        let Some(s) = self.sessions[idx].as_mut() else {
            return;
        };
        let session = s.id;
        let Some(f) = s.file.as_mut() else {
            return;
        };
        f.nak = None;
        f.status = None;
        f.send_complete = true;
        let file_id = f.file_id;
        let size = f.layout.size;
        match storage.finish(session, file_id) {
            Ok(()) => {
                f.state = FileState::Done(f.final_status());
                let overwrite = f.overwrite;
                self.event(Event::FileFinished {
                    session,
                    file_id,
                    size,
                    overwrite,
                });
            }
            Err(reason) => {
                f.state = FileState::Done(CompleteStatus::Rejected);
                storage.discard(session, file_id);
                self.event(Event::FileRejected {
                    session,
                    file_id,
                    reason,
                });
            }
        }
    }
}
