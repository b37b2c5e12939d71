//! Feedback during a file: FILEINFO_ACK, STATUS (NAKs), COMPLETE and ABORT.

use super::*;

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    pub(super) fn on_fileinfo_ack(&mut self, now_us: u64, id: u32, a: &FileInfoAckRepr<'_>) {
        let (file_id, ts, ids) = (a.file_id, a.timestamp, a.client_ids);
        let partial = a.flags & FILEINFO_ACK_FLAG_PARTIAL != 0;
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        if !ids.is_empty() {
            // From a proxy, for the clients it lists; its RTT is theirs.
            let Some(members) = self.behind(i, &ids) else {
                self.counters.dropped += 1;
                return;
            };
            if !self.clients[i].active() || file_id != self.file_id {
                self.counters.dropped += 1;
                return;
            }
            self.measure(now_us, i, ts);
            let rtt = self.clients[i].rtt_us;
            for j in members {
                let j = usize::from(j);
                if self.ack_file(j, file_id, partial) {
                    self.clients[j].rtt_us = rtt;
                }
            }
            return;
        }
        if !self.ack_file(i, file_id, partial) {
            self.counters.dropped += 1;
            return;
        }
        self.measure(now_us, i, ts);
    }

    /// FILEINFO_ACK for client `i` (`partial`: with the PARTIAL flag); false when it does not
    /// fit (not in the file, or another).
    pub(super) fn ack_file(&mut self, i: usize, file_id: u16, partial: bool) -> bool {
        let c = &mut self.clients[i];
        if !c.active() || !c.in_file || file_id != self.file_id {
            return false;
        }
        c.silent = 0;
        if c.file == FileState::Waiting {
            c.file = FileState::Acked;
            c.partial = partial;
            self.file_acked = true;
            self.any_fileinfo_ack = true;
        }
        true
    }

    pub(super) fn on_status(
        &mut self,
        id: u32,
        file_id: u16,
        section: u16,
        naks: &[u8],
        source: &mut impl BlockSource,
    ) {
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        let l = self.layout;
        let c = self.clients[i];
        // A proxy's STATUS (its clients' bitmaps ORed) answers for the clients behind it.
        let in_file = if c.is_proxy() {
            self.clients
                .iter()
                .any(|m| m.via() == Some(i) && m.file_pending())
        } else {
            c.in_file
        };
        if !c.active()
            || !in_file
            || file_id != self.file_id
            || section >= l.sections
            || naks.len() < l.nak_bitmap_len(section)
        {
            self.counters.dropped += 1;
            return;
        }
        // Which blocks may be marked: in pass 1 only those already sent; in a later pass
        // uftp drops any STATUS for the section being transmitted.
        let limit = match self.phase {
            Phase::Data {
                pass: 1, cursor, ..
            } => cursor,
            Phase::Data { cursor, .. } => {
                if l.locate(cursor).map(|(s, _)| s) == Some(section) {
                    self.counters.dropped += 1;
                    return;
                }
                l.blocks
            }
            Phase::Done { .. } => l.blocks,
            _ => {
                self.counters.dropped += 1;
                return;
            }
        };
        let map = source.resend_map();
        if map.len() < l.bitmap_len() {
            self.counters.dropped += 1;
            return;
        }
        let start = l.section_start(section).unwrap_or(0);
        let n = l.section_blocks(section) as usize;
        let (mut got, mut new) = (0u32, 0u32);
        let mut idx = 0;
        while let Some(k) = nak::next_set(naks, idx, n) {
            idx = k + 1;
            let b = start + k as u32;
            if b >= limit {
                break;
            }
            got += 1;
            if !nak::get(map, b as usize) {
                nak::set(map, b as usize);
                new += 1;
            }
        }
        let done_phase = matches!(self.phase, Phase::Done { .. });
        // Only a proxy has clients behind it: spare a walk through the table for the others.
        let range = if c.is_proxy() {
            0..self.clients.len()
        } else {
            i..i + 1
        };
        for j in range {
            let m = &mut self.clients[j];
            let answers = j == i || (m.via() == Some(i) && m.file_pending());
            if answers {
                m.silent = 0;
                if done_phase {
                    m.responded = true;
                }
            }
        }
        self.stats.status_received += 1;
        self.stats.naks_received += got;
        // Blocks of this section sent so far (all of it but in the section pass 1 is in).
        let sent_here = (n as u32).min(limit.saturating_sub(start));
        if self.too_many_naks(i, got, sent_here) {
            return;
        }
        let pass = match self.phase {
            Phase::Data { pass, .. } | Phase::Done { pass, .. } => pass,
            _ => 0,
        };
        // Only first-pass reports are judged: STATUS names no pass, and one answering an
        // earlier DONE that lands after a later pass resent the section would count every
        // resent block as missed (it once cut the rate to 0.1 Mbit/s).
        if pass == 1 && self.config.adaptive_rate && self.config.rate.is_none() && self.cc.is_none()
        {
            let judged = &mut self.clients[i].rate_section;
            let fresh = section >= *judged;
            *judged = (*judged).max(section.saturating_add(1));
            let slowed = fresh
                .then(|| self.auto.on_report(c.id, pass, section, got))
                .flatten();
            if let Some(s) = slowed {
                self.push_event(Event::SlowClient {
                    id: c.id,
                    section,
                    received_permille: s.received_permille,
                    delivered: s.delivered,
                    sent: s.sent,
                    rate: s.cap,
                });
            }
        }
        self.stats.naks_new += new;
        self.to_resend += new;
        self.counters.status_received += 1;
        self.counters.naks_received += u64::from(got);
    }

    /// `-N`/`-m`: a strike for client `i` if it missed more than `max_nak_pct` of the `sent`
    /// blocks of a section, and its drop (ABORT, [`LostReason::TooManyNaks`]) at
    /// `max_nak_count` strikes. True when it was dropped.
    pub(super) fn too_many_naks(&mut self, i: usize, missed: u32, sent: u32) -> bool {
        let pct = u64::from(self.config.max_nak_pct);
        if pct >= 100 || sent == 0 || u64::from(missed) * 100 <= pct * u64::from(sent) {
            return false;
        }
        let c = &mut self.clients[i];
        c.nak_strikes = c.nak_strikes.saturating_add(1);
        if c.nak_strikes < self.config.max_nak_count.max(1) {
            return false;
        }
        let (addr, host) = (c.addr, c.id);
        let dest = addr.unwrap_or(self.private_dest());
        self.queue_abort(host, dest, b"Transfer aborted: too many NAKs", true);
        self.lose(i, LostReason::TooManyNaks);
        true
    }

    pub(super) fn on_complete(&mut self, now_us: u64, id: u32, c: &CompleteRepr<'_>) {
        let (file_id, status, ids) = (c.file_id, c.status, c.client_ids);
        let free = c.freespace.map(|f| f.freespace);
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        if !ids.is_empty() {
            // From a proxy, for the clients it lists.
            let Some(members) = self.behind(i, &ids) else {
                self.counters.dropped += 1;
                return;
            };
            if !self.clients[i].active() {
                self.counters.dropped += 1;
                return;
            }
            let mut any = false;
            for j in members {
                any |= self.complete(now_us, usize::from(j), file_id, status, free);
            }
            if !any {
                self.counters.dropped += 1;
            }
            return;
        }
        if self.clients[i].is_proxy() || !self.complete(now_us, i, file_id, status, free) {
            self.counters.dropped += 1;
        }
    }

    /// COMPLETE for client `i` (`free`: the free space it reported, answering `@FREESPACE`);
    /// false when it does not fit.
    pub(super) fn complete(
        &mut self,
        now_us: u64,
        i: usize,
        file_id: u16,
        status: CompleteStatus,
        free: Option<u64>,
    ) -> bool {
        let in_completion = matches!(self.phase, Phase::Completion { .. } | Phase::Linger { .. });
        let c = &mut self.clients[i];
        if !c.active() {
            return false;
        }
        if file_id == 0 {
            if !in_completion {
                return false;
            }
            c.doneconf = true;
            self.owed = true;
            c.silent = 0;
            if !c.done {
                c.done = true;
                c.events |= EV_DONE;
                self.event_from = self.event_from.min(i);
            }
            if let Phase::Linger { until } = &mut self.phase {
                // Keep listening a little longer for this late one.
                *until = (*until).max(now_us + self.grtt_us);
            }
            return true;
        }
        if !c.in_file || file_id != self.file_id {
            return false;
        }
        c.silent = 0;
        c.responded = true;
        if matches!(c.file, FileState::Waiting | FileState::Acked) {
            c.file = FileState::Done(status);
            if let Some(bytes) = free {
                let id = c.id;
                self.push_event(Event::FreeSpace { id, file_id, bytes });
            }
        }
        true
    }

    /// ABORT from client or proxy `id`; `host` names the client a proxy aborts for (0: the
    /// proxy gives up, and the clients behind it with it).
    pub(super) fn on_abort(&mut self, now_us: u64, id: u32, host: u32) {
        let target = match self.find(id) {
            Some(i) if self.clients[i].is_proxy() && host != 0 && host != id => self
                .find(host)
                .filter(|&j| self.clients[j].via() == Some(i)),
            other => other,
        };
        match target {
            Some(i)
                if matches!(
                    self.clients[i].state,
                    ClientState::Active | ClientState::Keying
                ) =>
            {
                self.lose(i, LostReason::Aborted);
                self.progress(now_us);
            }
            _ => self.counters.dropped += 1,
        }
    }
}
