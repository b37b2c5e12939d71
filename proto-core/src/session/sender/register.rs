//! Registration: REGISTER (from clients and proxies) and the encrypted handshake's input
//! (CLIENT_KEY, KEYINFO_ACK, ENCRYPTED datagrams, ABORTs before the keys).

use super::*;

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    pub(super) fn on_register(
        &mut self,
        now_us: u64,
        from: SocketAddr,
        id: u32,
        r: &RegisterRepr<'_>,
    ) {
        let in_announce = matches!(self.phase, Phase::Announce { .. });
        // A REGISTER that lists clients comes from a proxy registering them (digest §7).
        let proxied = !r.client_ids.is_empty();
        let i = match self.find(id) {
            Some(i) => i,
            None if in_announce && !self.closed && id != 0 && id != u32::MAX => {
                match self.add_client(id) {
                    Some(i) => {
                        if proxied {
                            self.clients[i].role = Role::Proxy;
                        }
                        i
                    }
                    None => {
                        // Table full: this client cannot take part.
                        self.queue_abort(id, from, b"Too many clients", false);
                        return;
                    }
                }
            }
            None => {
                if in_announce {
                    self.queue_abort(id, from, b"Client not in host list", false);
                }
                self.counters.dropped += 1;
                return;
            }
        };
        if proxied && !self.clients[i].is_proxy() {
            // A closed group admits only the proxies it lists (`-j`); an open group's entry
            // that has not registered yet may turn out to be one.
            let c = &mut self.clients[i];
            if !self.closed && c.state == ClientState::Invited && c.role == Role::Client {
                c.role = Role::Proxy;
            } else {
                let reason = b"Specified multiple clients but not a proxy";
                self.queue_abort(id, from, reason, false);
                self.counters.dropped += 1;
                return;
            }
        }
        if self.clients[i].via().is_some() {
            // Registered through a proxy already: it answers through it.
            self.counters.dropped += 1;
            return;
        }
        let is_proxy = self.clients[i].is_proxy();
        let accepted = match self.clients[i].state {
            ClientState::Invited if in_announce => {
                if let Some(sec) = &self.sec {
                    let Some(peer) = self.peers.get_mut(i) else {
                        return;
                    };
                    if let Err(reason) = sec.register(&self.rsa, peer, &r.rand2, r.keyinfo) {
                        self.refuse(i, reason, from);
                        return;
                    }
                    let keyed = peer.state == PeerState::Keyed;
                    let c = &mut self.clients[i];
                    c.state = ClientState::Keying;
                    c.addr = Some(from);
                    // KEYINFO at once when no CLIENT_KEY is needed first.
                    c.keyinfo = keyed;
                    self.owed = true;
                } else {
                    let c = &mut self.clients[i];
                    c.state = ClientState::Active;
                    c.addr = Some(from);
                    c.regconf = true;
                    self.owed = true;
                    if is_proxy {
                        c.events |= EV_PROXY;
                        self.event_from = self.event_from.min(i);
                    } else {
                        c.events |= EV_REGISTERED;
                        self.event_from = self.event_from.min(i);
                        self.registered += 1;
                    }
                }
                self.measure(now_us, i, r.timestamp);
                true
            }
            ClientState::Keying => {
                // A repeated REGISTER: its KEYINFO was lost (once it has keys; before that,
                // its CLIENT_KEY follows).
                if self
                    .peers
                    .get(i)
                    .is_some_and(|p| p.state == PeerState::Keyed)
                {
                    self.clients[i].keyinfo = true;
                    self.owed = true;
                }
                true
            }
            ClientState::Active if self.sec.is_some() => {
                self.clients[i].keyinfo = true;
                self.owed = true;
                true
            }
            ClientState::Active => {
                // Its REG_CONF was lost: confirm again.
                self.clients[i].regconf = true;
                self.owed = true;
                true
            }
            ClientState::Refused(reason) => {
                // It missed the ABORT.
                self.queue_abort(id, from, reason.as_str().as_bytes(), false);
                false
            }
            _ => {
                self.counters.dropped += 1;
                false
            }
        };
        if accepted && proxied && in_announce {
            self.add_behind(i, from, r.client_ids);
        }
    }

    /// The clients a proxy's REGISTER lists: active at once, behind the proxy, confirmed by
    /// REG_CONF (which, in an encrypted session, tells the proxy to send them its KEYINFO).
    pub(super) fn add_behind(&mut self, p: usize, from: SocketAddr, ids: IdList<'_>) {
        let rtt = self.clients[p].rtt_us;
        for id in ids.iter() {
            if id == 0 || id == u32::MAX || id == self.config.src_id {
                continue;
            }
            let j = match self.find(id) {
                Some(j) => j,
                None if !self.closed => match self.add_client(id) {
                    Some(j) => j,
                    None => {
                        self.queue_abort(id, from, b"Too many clients", false);
                        continue;
                    }
                },
                None => {
                    self.queue_abort(id, from, b"Client not in host list", false);
                    continue;
                }
            };
            let c = &mut self.clients[j];
            if c.is_proxy() {
                continue;
            }
            match c.state {
                ClientState::Invited => {
                    c.state = ClientState::Active;
                    c.events |= EV_REGISTERED;
                    self.event_from = self.event_from.min(j);
                    self.registered += 1;
                }
                // Known already (again through this proxy, or moving to it).
                ClientState::Active => {}
                _ => continue,
            }
            c.role = Role::Behind(p as u16);
            c.addr = Some(from);
            c.regconf = true;
            self.owed = true;
            c.rtt_us = rtt;
        }
    }

    /// CLIENT_KEY (encrypted sessions): the client's key and its signature over the verify
    /// data. Taken only after the client's REGISTER: one that overtook it is dropped, and the
    /// client sends both again.
    pub(super) fn on_client_key(&mut self, from: SocketAddr, id: u32, k: &ClientKeyRepr<'_>) {
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        let (Some(sec), Some(peer)) = (&self.sec, self.peers.get_mut(i)) else {
            self.counters.dropped += 1;
            return;
        };
        if self.clients[i].state != ClientState::Keying || peer.state != PeerState::AwaitClientKey {
            self.counters.dropped += 1;
            return;
        }
        let pin = self.clients[i].pin;
        match sec.client_key(&self.rsa, peer, pin, k.key_blob, k.signature) {
            Ok(()) => {
                self.clients[i].keyinfo = true;
                self.owed = true;
            }
            Err(reason) => self.refuse(i, reason, from),
        }
    }

    /// ENCRYPTED from a client: replay window, then authentication and decryption in place,
    /// then the inner message to its handler.
    pub(super) fn on_encrypted(
        &mut self,
        now_us: u64,
        id: u32,
        bytes: &mut [u8],
        source: &mut impl BlockSource,
    ) {
        let Some(sec) = &self.sec else {
            self.counters.dropped += 1;
            return;
        };
        let Some(i) = self.find(id) else {
            self.counters.dropped += 1;
            return;
        };
        let keyed = self
            .peers
            .get(i)
            .is_some_and(|p| p.state == PeerState::Keyed);
        if !keyed
            || !matches!(
                self.clients[i].state,
                ClientState::Keying | ClientState::Active
            )
        {
            self.counters.dropped += 1;
            return;
        }
        let ctr = match bytes.get(HEADER_LEN..).map(EncryptedPacket::new_checked) {
            Some(Ok(enc)) => enc.iv_ctr(),
            _ => {
                self.counters.malformed_encrypted += 1;
                self.counters.dropped += 1;
                return;
            }
        };
        if !self.peers[i].window.is_fresh(ctr) {
            self.counters.replays += 1;
            self.counters.dropped += 1;
            return;
        }
        let range = match sec.envelope.open(bytes) {
            Ok(range) => range,
            Err(e) => {
                if e == crate::crypto::Error::AuthFailed {
                    self.counters.auth_failures += 1;
                } else {
                    self.counters.malformed_encrypted += 1;
                }
                self.counters.dropped += 1;
                return;
            }
        };
        self.peers[i].window.accept(ctr);
        let Some(Ok(message)) = bytes.get(range).map(Message::parse_inner) else {
            self.counters.malformed_encrypted += 1;
            self.counters.dropped += 1;
            return;
        };
        let dropped = self.counters.dropped;
        match message {
            Message::KeyInfoAck(a) => self.on_keyinfo_ack(i, &a.verify_data),
            Message::FileInfoAck(a) => self.on_fileinfo_ack(now_us, id, &a),
            Message::Status(s) => {
                self.on_status(id, s.file_id, s.section, s.naks, source);
                if let Some(info) = s.tfmcc {
                    self.on_cc_feedback(now_us, id, &info);
                }
            }
            Message::CcAck(a) => self.on_cc_feedback(now_us, id, &a.tfmcc),
            Message::Complete(c) => self.on_complete(now_us, id, &c),
            Message::Abort(a) => self.on_abort(now_us, id, a.host),
            _ => {
                self.counters.malformed_encrypted += 1;
                self.counters.dropped += 1;
            }
        }
        if self.counters.dropped == dropped {
            self.counters.responses += 1;
        }
    }

    /// KEYINFO_ACK: the right verify data makes the client active; the wrong one refuses it.
    pub(super) fn on_keyinfo_ack(
        &mut self,
        i: usize,
        verify_data: &[u8; crate::wire::VERIFY_DATA_LEN],
    ) {
        let (Some(sec), Some(peer)) = (&self.sec, self.peers.get(i)) else {
            return;
        };
        match self.clients[i].state {
            ClientState::Keying if sec.ack_matches(peer, verify_data) => {
                let c = &mut self.clients[i];
                c.state = ClientState::Active;
                c.keyinfo = false;
                if c.is_proxy() {
                    c.events |= EV_PROXY;
                    self.event_from = self.event_from.min(i);
                } else {
                    c.events |= EV_REGISTERED;
                    self.event_from = self.event_from.min(i);
                    self.registered += 1;
                }
                self.update_grtt();
            }
            ClientState::Keying => {
                let dest = self.clients[i].addr.unwrap_or(self.private_dest());
                self.refuse(i, RefuseReason::BadVerifyData, dest);
            }
            // Again, after a KEYINFO sent once more.
            ClientState::Active => {}
            _ => self.counters.dropped += 1,
        }
    }

    /// A plaintext ABORT in an encrypted session: taken only from a client that has not
    /// proved it holds the group keys (no KEYINFO_ACK yet), which cannot encrypt it, or from a
    /// proxy's address for a client behind it (uftpproxyd sends those in the clear).
    pub(super) fn on_plain_abort(&mut self, now_us: u64, from: SocketAddr, id: u32, host: u32) {
        match self.find(id) {
            Some(i)
                if matches!(
                    self.clients[i].state,
                    ClientState::Invited | ClientState::Keying
                ) =>
            {
                self.lose(i, LostReason::Aborted);
                self.progress(now_us);
            }
            Some(i)
                if self.clients[i].is_proxy()
                    && self.clients[i].addr == Some(from)
                    && host != 0
                    && self
                        .find(host)
                        .is_some_and(|j| self.clients[j].via() == Some(i)) =>
            {
                self.on_abort(now_us, id, host);
            }
            Some(i) if self.clients[i].active() => {
                self.counters.unexpected_plaintext += 1;
                self.counters.dropped += 1;
            }
            _ => self.counters.dropped += 1,
        }
    }

    /// The clients a proxy's response lists that are behind it (`None` when `i` is not a
    /// proxy, or the list names no such client).
    pub(super) fn behind(&self, i: usize, ids: &IdList<'_>) -> Option<Vec<u16, CLIENTS>> {
        if !self.clients[i].is_proxy() {
            return None;
        }
        let mut found = Vec::new();
        for j in ids.iter().filter_map(|id| self.find(id)) {
            if self.clients[j].via() == Some(i) {
                let _ = found.push(j as u16);
            }
        }
        (!found.is_empty()).then_some(found)
    }
}
