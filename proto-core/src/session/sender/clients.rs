//! The client table: who registered, in which state, and how each one is found, measured,
//! lost or refused.

use super::*;

/// Who an entry of the client table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// A client answering for itself.
    Client,
    /// A proxy: it answers for the clients behind it and receives nothing itself.
    Proxy,
    /// A client behind the proxy at this index of the table.
    Behind(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// Listed (closed group) or just added, not registered.
    Invited,
    /// Registered in an encrypted session, handshake under way (no KEYINFO_ACK yet).
    Keying,
    Active,
    Lost(LostReason),
    Refused(RefuseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileState {
    Waiting,
    Acked,
    Done(CompleteStatus),
    Failed,
}

pub(super) const EV_REGISTERED: u8 = 1;
pub(super) const EV_LOST: u8 = 2;
pub(super) const EV_FILE: u8 = 4;
pub(super) const EV_DONE: u8 = 8;
pub(super) const EV_REFUSED: u8 = 16;
pub(super) const EV_PROXY: u8 = 32;

#[derive(Debug, Clone, Copy)]
pub(super) struct Client {
    pub(super) id: u32,
    pub(super) addr: Option<SocketAddr>,
    pub(super) state: ClientState,
    pub(super) role: Role,
    /// A proxy with a client that owes an answer to the round being sent (DONE lists both).
    pub(super) owing: bool,
    pub(super) rtt_us: Option<u64>,
    /// TFMCC: its RTT was measured anew and is not yet in a CONG_CTRL.
    pub(super) rtt_fresh: bool,
    pub(super) regconf: bool,
    /// Encrypted sessions: its entry is due in the next KEYINFO.
    pub(super) keyinfo: bool,
    /// The fingerprint its CLIENT_KEY must show, if pinned.
    pub(super) pin: Option<Fingerprint>,
    pub(super) doneconf: bool,
    pub(super) in_file: bool,
    pub(super) file: FileState,
    pub(super) file_id: u16,
    /// Its FILEINFO_ACK for the current file had the PARTIAL flag: it kept part of the file
    /// from an earlier instance of a restarted session (digest §1.6).
    pub(super) partial: bool,
    /// The result reported by the pending `FileResult` event (kept apart from `file`, which
    /// the next `start_file` resets before the driver may have drained events).
    pub(super) result: (u16, FileResult),
    pub(super) responded: bool,
    pub(super) silent: u8,
    /// Sections it missed more than `max_nak_pct` of (`-N`/`-m`).
    pub(super) nak_strikes: u8,
    /// First section of the current file the adaptive rate control has not judged it on yet.
    pub(super) rate_section: u16,
    pub(super) done: bool,
    pub(super) events: u8,
}

impl Client {
    pub(super) fn new(id: u32, addr: Option<SocketAddr>, state: ClientState) -> Self {
        Client {
            id,
            addr,
            state,
            role: Role::Client,
            owing: false,
            rtt_us: None,
            rtt_fresh: false,
            regconf: false,
            keyinfo: false,
            pin: None,
            doneconf: false,
            in_file: false,
            file: FileState::Waiting,
            file_id: 0,
            partial: false,
            result: (0, FileResult::Failed),
            responded: false,
            silent: 0,
            nak_strikes: 0,
            rate_section: 0,
            done: false,
            events: 0,
        }
    }

    pub(super) fn active(&self) -> bool {
        self.state == ClientState::Active
    }

    pub(super) fn is_proxy(&self) -> bool {
        self.role == Role::Proxy
    }

    /// A receiver (a client, direct or behind a proxy), as opposed to a proxy.
    pub(super) fn member(&self) -> bool {
        !self.is_proxy()
    }

    /// The index of the proxy it is behind.
    pub(super) fn via(&self) -> Option<usize> {
        match self.role {
            Role::Behind(p) => Some(usize::from(p)),
            _ => None,
        }
    }

    /// In the current file and still owing it something.
    pub(super) fn file_pending(&self) -> bool {
        self.active() && self.in_file && matches!(self.file, FileState::Waiting | FileState::Acked)
    }
}

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// Active receivers (clients, direct or behind proxies; proxies are not receivers).
    pub(super) fn active_count(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.active() && c.member())
            .count()
    }

    /// Marks the proxies with a client behind them that `owes` something, for lists that name
    /// both (DONE, as uftp 4.10.2 sends it).
    pub(super) fn mark_owing_proxies(&mut self, owes: impl Fn(&Client) -> bool) {
        for c in self.clients.iter_mut() {
            c.owing = false;
        }
        for j in 0..self.clients.len() {
            let c = self.clients[j];
            if let Some(p) = c.via().filter(|_| owes(&c)) {
                if let Some(proxy) = self.clients.get_mut(p) {
                    proxy.owing = proxy.active();
                }
            }
        }
    }

    /// Counts one more silent round for every client that `owes` an answer to the last one, and
    /// marks lost those silent for `robust` rounds.
    pub(super) fn count_silence(&mut self, robust: u8, owes: impl Fn(&Client) -> bool) {
        for i in 0..self.clients.len() {
            let c = &mut self.clients[i];
            if owes(c) {
                c.silent = c.silent.saturating_add(1);
                if c.silent >= robust {
                    self.lose(i, LostReason::NoResponse);
                }
            }
        }
    }

    pub(super) fn lose(&mut self, i: usize, reason: LostReason) {
        if self.clients[i].is_proxy() {
            // The clients behind a proxy go with it.
            for j in 0..self.clients.len() {
                if self.clients[j].via() == Some(i) {
                    self.lose(j, reason);
                }
            }
        }
        let c = &mut self.clients[i];
        if matches!(c.state, ClientState::Lost(_) | ClientState::Refused(_)) {
            return;
        }
        c.state = ClientState::Lost(reason);
        c.events |= EV_LOST;
        let id = c.id;
        if let Some(cc) = self.cc.as_mut() {
            cc.forget(id);
        }
        self.auto.on_left(id);
        let c = &mut self.clients[i];
        self.event_from = self.event_from.min(i);
        c.regconf = false;
        c.keyinfo = false;
        c.doneconf = false;
        if c.in_file && matches!(c.file, FileState::Waiting | FileState::Acked) {
            c.file = FileState::Failed;
        }
    }

    /// Refuses a client that failed the handshake: an ABORT (plain: it has no group keys) to
    /// `dest`, and the event.
    pub(super) fn refuse(&mut self, i: usize, reason: RefuseReason, dest: SocketAddr) {
        let c = &mut self.clients[i];
        c.state = ClientState::Refused(reason);
        c.events |= EV_REFUSED;
        self.event_from = self.event_from.min(i);
        c.regconf = false;
        c.keyinfo = false;
        let host = c.id;
        if let Some(p) = self.peers.get_mut(i) {
            *p = PeerKeys::new();
        }
        self.counters.clients_refused += 1;
        self.queue_abort(host, dest, reason.as_str().as_bytes(), false);
        if self.clients[i].is_proxy() {
            for j in 0..self.clients.len() {
                if self.clients[j].via() == Some(i) {
                    self.lose(j, LostReason::NotRegistered);
                }
            }
        }
    }

    pub(super) fn queue_abort(
        &mut self,
        host: u32,
        dest: SocketAddr,
        reason: &'static [u8],
        sealed: bool,
    ) {
        let sealed = sealed && self.sec.is_some();
        let _ = self.aborts.push_back(PendingAbort {
            host,
            dest,
            reason,
            sealed,
        });
    }

    pub(super) fn measure(&mut self, now_us: u64, i: usize, echoed: Timestamp) {
        let sent = echoed.as_micros();
        if sent > now_us {
            return;
        }
        self.clients[i].rtt_us = Some((now_us - sent).max(MIN_RTT_US));
        self.update_grtt();
    }

    /// GRTT from the largest RTT among the registered clients (active, or in the middle of
    /// the handshake).
    pub(super) fn update_grtt(&mut self) {
        let largest = self
            .clients
            .iter()
            .filter(|c| matches!(c.state, ClientState::Active | ClientState::Keying))
            .filter_map(|c| c.rtt_us)
            .max()
            .unwrap_or(MIN_RTT_US);
        let min = self.config.grtt_min.as_micros() as u64;
        let max = self.config.grtt_max.as_micros() as u64;
        let mut grtt = largest.clamp(min, max);
        if self.measured {
            grtt = grtt.max(self.grtt_us * 9 / 10);
        }
        self.measured = true;
        self.grtt_us = grtt;
        // The first measurement usually takes the GRTT from its initial 0.5 s to milliseconds,
        // and the header of everything sent from now on carries the new one. uftp 4.10.2's
        // receivers give a session up after ROBUST×GRTT (at least 1 s) of silence, timed from
        // that header: a round still timed by the old GRTT (1.5 s away) would come too late
        // for them. So the next round moves to three of the new GRTTs after the last one, as
        // uftp 4.10.2's next announce round does.
        self.next_round = self
            .next_round
            .min(self.round_started.saturating_add(self.grtt_x(3)));
    }

    pub(super) fn find(&self, id: u32) -> Option<usize> {
        let at = self.by_id.partition_point(|e| e.0 < id);
        self.by_id
            .get(at)
            .filter(|e| e.0 == id)
            .map(|e| e.1 as usize)
    }

    /// Adds a client to the table (and its key slot, when encrypted); `None` when full.
    pub(super) fn add_client(&mut self, id: u32) -> Option<usize> {
        if self.clients.is_full() || (self.sec.is_some() && self.peers.is_full()) {
            return None;
        }
        let _ = self
            .clients
            .push(Client::new(id, None, ClientState::Invited));
        let key = (id, (self.clients.len() - 1) as u32);
        let at = self.by_id.partition_point(|e| *e < key);
        let _ = self.by_id.insert(at, key);
        if self.sec.is_some() {
            let _ = self.peers.push(PeerKeys::new());
        }
        Some(self.clients.len() - 1)
    }
}
