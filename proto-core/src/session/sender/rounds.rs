//! The phase machine and its timers: announce rounds, FILEINFO, data passes, DONE rounds,
//! completion and the end of the session.

use super::*;

/// The most timers [`Sender::advance`] fires at one instant.
const MAX_CASCADE: usize = 4;

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// Moves the state machine on from what has been received (no timers).
    pub(super) fn progress(&mut self, now_us: u64) {
        // This runs for every datagram received, and each condition walks the client table: only
        // the one the phase needs is computed, and each walk stops as soon as it can.
        let past_announce = !matches!(self.phase, Phase::Announce { .. } | Phase::Finished);
        if past_announce
            && !matches!(self.phase, Phase::Linger { .. })
            && !self.clients.iter().any(|c| c.active() && c.member())
        {
            if matches!(
                self.phase,
                Phase::Data { .. } | Phase::Done { .. } | Phase::FileInfo { .. }
            ) {
                self.file_done(now_us);
            }
            self.finish(now_us, Outcome::AllDropped);
            return;
        }
        // Closed groups wait for every listed client to register (and, encrypted, to finish
        // the handshake).
        // (A listed proxy that never came does not hold the group up; one in the middle of
        // its handshake does: its clients need the keys it gets.)
        let invited = |s: &Self| {
            s.clients.iter().any(|c| match c.state {
                ClientState::Invited => c.member(),
                ClientState::Keying => true,
                _ => false,
            })
        };
        let waiting = |s: &Self| {
            (s.clients.iter()).any(|c| c.active() && c.in_file && c.file == FileState::Waiting)
        };
        let pending = |s: &Self| s.clients.iter().any(|c| c.file_pending());
        let confirmed = |s: &Self| {
            (s.clients.iter()).all(|c| !c.active() || c.is_proxy() || (c.done && !c.doneconf))
        };
        match self.phase {
            Phase::Announce {
                round,
                late_until: None,
            } if self.closed && !invited(self) => {
                let late_until = Some(now_us + self.grtt_us);
                self.phase = Phase::Announce { round, late_until };
            }
            Phase::FileInfo { .. } if !waiting(self) => self.after_fileinfo(now_us),
            Phase::Data { .. } | Phase::Done { .. } if !pending(self) => self.file_done(now_us),
            Phase::Completion { .. } if confirmed(self) => {
                let until = now_us + self.grtt_us;
                self.phase = Phase::Linger { until };
            }
            _ => {}
        }
    }

    pub(super) fn after_fileinfo(&mut self, now_us: u64) {
        if self.first_file {
            self.first_file = false;
            if !self.any_fileinfo_ack
                && !self
                    .clients
                    .iter()
                    .any(|c| c.in_file && matches!(c.file, FileState::Done(_)))
            {
                self.file_done(now_us);
                self.finish(now_us, Outcome::NoFileInfoAck);
                return;
            }
        }
        if !self.file_acked {
            self.file_done(now_us);
            return;
        }
        let all_partial = self
            .clients
            .iter()
            .filter(|c| c.active() && c.in_file && c.file == FileState::Acked)
            .all(|c| c.partial);
        if all_partial {
            // Every client kept part of the file from an earlier instance of this restarted
            // session: an empty first pass, whose DONE collects what each one lacks (§1.6).
            self.start_pass(now_us, 1, 0);
            self.end_pass(now_us, 1, 0);
        } else {
            self.start_pass(now_us, 1, self.layout.blocks);
        }
    }

    pub(super) fn start_pass(&mut self, now_us: u64, pass: u16, blocks: u32) {
        self.stats.passes = pass;
        self.push_event(Event::PassStarted {
            file_id: self.file_id,
            pass,
            blocks,
        });
        self.phase = Phase::Data {
            pass,
            cursor: 0,
            sent: 0,
        };
        self.next_send_ns = self.next_send_ns.max(now_us * 1000);
        if self.cc.is_some() {
            self.start_cc(now_us);
        }
    }

    pub(super) fn end_pass(&mut self, now_us: u64, pass: u16, sent: u32) {
        self.push_event(Event::PassDone {
            file_id: self.file_id,
            pass,
            blocks_sent: sent,
        });
        for c in self.clients.iter_mut() {
            c.responded = false;
        }
        self.auto.end_pass(now_us);
        self.phase = Phase::Done { pass, round: 0 };
        self.next_round = now_us;
        self.round_timer(now_us);
    }

    pub(super) fn file_done(&mut self, _now_us: u64) {
        let (mut ok, mut failed) = (0, 0);
        for c in self.clients.iter_mut() {
            if !c.in_file {
                continue;
            }
            if matches!(c.file, FileState::Waiting | FileState::Acked) {
                c.file = FileState::Failed;
            }
            let result = match c.file {
                FileState::Done(s) => {
                    ok += 1;
                    FileResult::Completed(s)
                }
                _ => {
                    failed += 1;
                    FileResult::Failed
                }
            };
            c.result = (c.file_id, result);
            c.events |= EV_FILE;
            self.event_from = 0;
            c.in_file = false;
        }
        self.stats.completed = ok;
        self.stats.failed = failed;
        self.push_event(Event::FileDone(self.stats));
        self.phase = Phase::Idle;
    }

    pub(super) fn finish(&mut self, _now_us: u64, outcome: Outcome) {
        if self.phase == Phase::Finished {
            return;
        }
        self.outcome = Some(outcome);
        self.phase = Phase::Finished;
        let completed = self.clients.iter().filter(|c| c.done).count() as u16;
        let lost = self
            .clients
            .iter()
            .filter(|c| c.member() && matches!(c.state, ClientState::Lost(_)))
            .count() as u16;
        let summary = SessionSummary {
            outcome,
            registered: self.registered,
            completed,
            lost,
            files: self.files,
            bytes: self.bytes,
            counters: self.counters,
        };
        self.push_event(Event::SessionDone(summary));
    }

    /// Fires the timers that are due.
    pub(super) fn advance(&mut self, now_us: u64) {
        if self.cc.is_some() {
            self.cc_timers(now_us);
        }
        // Bounded, because one timer can lead straight to another phase whose timer is due;
        // no chain of phases needs more than MAX_CASCADE firings at one instant.
        for _ in 0..MAX_CASCADE {
            match self.expired(now_us) {
                Some(Timer::Linger) => {
                    let outcome = if self.clients.iter().any(|c| c.done) {
                        Outcome::Completed
                    } else {
                        Outcome::AllDropped
                    };
                    self.finish(now_us, outcome);
                }
                Some(Timer::AnnounceLate) => self.end_announce(now_us),
                Some(Timer::Round) => self.round_timer(now_us),
                Some(Timer::Pacing | Timer::Cc) | None => return,
            }
        }
    }

    pub(super) fn round_timer(&mut self, now_us: u64) {
        let robust = self.config.robust;
        self.next_round = now_us + self.grtt_x(3);
        self.round_started = now_us;
        match self.phase {
            Phase::Announce { round, late_until } => {
                if round >= robust {
                    self.end_announce(now_us);
                } else {
                    self.phase = Phase::Announce {
                        round: round + 1,
                        late_until,
                    };
                    self.round = RoundEmit {
                        pending: true,
                        cursor: 0,
                    };
                    // KEYINFO again for every client with keys that has not acknowledged.
                    for (c, p) in self.clients.iter_mut().zip(self.peers.iter()) {
                        if c.state == ClientState::Keying && p.state == PeerState::Keyed {
                            c.keyinfo = true;
                            self.owed = true;
                        }
                    }
                }
            }
            Phase::FileInfo { round } => {
                if round >= robust {
                    for i in 0..self.clients.len() {
                        let c = self.clients[i];
                        if c.active() && c.in_file && c.file == FileState::Waiting {
                            self.lose(i, LostReason::NoResponse);
                        }
                    }
                    let anyone = self.any_fileinfo_ack
                        || self
                            .clients
                            .iter()
                            .any(|c| matches!(c.file, FileState::Done(_)));
                    if self.first_file && !anyone {
                        self.file_done(now_us);
                        self.finish(now_us, Outcome::NoFileInfoAck);
                        return;
                    }
                    self.progress(now_us);
                    if matches!(self.phase, Phase::FileInfo { .. }) {
                        self.after_fileinfo(now_us);
                    }
                } else {
                    self.phase = Phase::FileInfo { round: round + 1 };
                    self.round = RoundEmit {
                        pending: true,
                        cursor: 0,
                    };
                }
            }
            Phase::Done { pass, round } => {
                if round > 0 {
                    // Everyone listed in the last DONE who did not answer it owes a round.
                    self.count_silence(robust, |c| c.file_pending() && !c.responded);
                    self.progress(now_us);
                    if !matches!(self.phase, Phase::Done { .. }) {
                        return;
                    }
                }
                if round > 0 && self.to_resend > 0 {
                    if pass >= self.config.max_passes {
                        for i in 0..self.clients.len() {
                            if self.clients[i].file_pending() {
                                let dest = self.clients[i].addr.unwrap_or(self.private_dest());
                                let host = self.clients[i].id;
                                let reason = b"Transfer aborted: maximum passes reached";
                                self.queue_abort(host, dest, reason, true);
                                self.lose(i, LostReason::MaxPasses);
                            }
                        }
                        self.progress(now_us);
                        return;
                    }
                    self.start_pass(now_us, pass + 1, self.to_resend);
                    return;
                }
                for c in self.clients.iter_mut() {
                    c.responded = false;
                }
                self.phase = Phase::Done {
                    pass,
                    round: round.saturating_add(1),
                };
                self.round = RoundEmit {
                    pending: true,
                    cursor: 0,
                };
            }
            Phase::Completion { round } => {
                if round > 0 {
                    self.count_silence(robust, |c| c.active() && c.member() && !c.done);
                    self.progress(now_us);
                    if !matches!(self.phase, Phase::Completion { .. }) {
                        return;
                    }
                }
                self.phase = Phase::Completion {
                    round: round.saturating_add(1),
                };
                self.round = RoundEmit {
                    pending: true,
                    cursor: 0,
                };
            }
            _ => {}
        }
    }

    pub(super) fn end_announce(&mut self, now_us: u64) {
        for i in 0..self.clients.len() {
            let c = &self.clients[i];
            // A listed proxy that never came is no loss: it stands for no one.
            let missing = match c.state {
                ClientState::Invited => c.member(),
                ClientState::Keying => true,
                _ => false,
            };
            if missing {
                self.lose(i, LostReason::NotRegistered);
            }
        }
        let clients = self.active_count() as u16;
        self.push_event(Event::AnnounceDone { clients });
        if clients == 0 {
            self.finish(now_us, Outcome::NoClients);
        } else {
            self.phase = Phase::Idle;
        }
    }
}
