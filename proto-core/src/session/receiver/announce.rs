//! Registration: ANNOUNCE (admission, refusal, eviction of unconfirmed sessions), KEYINFO,
//! and the response proxy's PROXY_KEY.

use super::*;

impl<const SESSIONS: usize, R: RsaKeys> Receiver<SESSIONS, R> {
    /// PROXY_KEY: the response proxy's keys, taken when the fingerprint matches (or, without
    /// one, when it comes from the proxy's address) and the signature over the nonce verifies.
    pub(super) fn on_proxy_key(&mut self, from: SocketAddr, k: &crate::wire::ProxyKeyRepr<'_>) {
        let Some(proxy) = self.config.response_proxy else {
            return self.drop_dgram(DropReason::Unexpected);
        };
        let trusted = match proxy.fingerprint {
            Some(want) => Fingerprint::of(k.key_blob) == want,
            None => from.ip() == proxy.addr.ip(),
        };
        let nonce = k.nonce.to_be_bytes();
        let verified = trusted
            && match crate::crypto::KeyBlob::parse(k.key_blob).map(|b| b.kind()) {
                Ok(crate::crypto::KeyBlobKind::Ec(b)) => crate::crypto::EcPublicKey::from_blob(&b)
                    .is_ok_and(|key| key.verify(HashType::Sha1, &[&nonce], k.signature).is_ok()),
                Ok(crate::crypto::KeyBlobKind::Rsa(b)) => self
                    .rsa
                    .verify(&b, HashType::Sha1, &[&nonce], k.signature)
                    .is_ok(),
                Err(_) => false,
            };
        let dh_ok = k.dh_blob.is_empty()
            || crate::crypto::KeyBlob::parse(k.dh_blob).is_ok_and(|b| b.ec().is_some());
        if !verified || !dh_ok {
            return self.drop_dgram(DropReason::Untrusted);
        }
        let (mut key_blob, mut dh_blob) = (Vec::new(), Vec::new());
        if key_blob.extend_from_slice(k.key_blob).is_err()
            || dh_blob.extend_from_slice(k.dh_blob).is_err()
        {
            return self.drop_dgram(DropReason::Untrusted);
        }
        self.proxy_key = Some(ProxyKeyStore { key_blob, dh_blob });
        self.key_req_at = None;
        self.send_key_req = false;
    }

    /// KEYINFO: our entry carries the group master. Taking it confirms the registration.
    pub(super) fn on_keyinfo(
        &mut self,
        now: Instant,
        idx: usize,
        h: &HeaderRepr,
        k: &KeyInfoRepr<'_>,
    ) {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut().expect("caller checked");
        let Some(keys) = s.keys.as_mut() else {
            return self.drop_dgram(DropReason::Unexpected);
        };
        let Some(entry) = k.entries.iter().find(|e| e.client_id == uid) else {
            return;
        };
        let group = client_keys::accept_keyinfo(
            keys,
            VERSION,
            h.src_id,
            k.iv_ctr,
            &entry.group_master,
            s.id.group_id,
            &s.private_addr,
        );
        let Ok(group) = group else {
            return self.drop_dgram(DropReason::Encrypted);
        };
        match &keys.group {
            // A repeat: our KEYINFO_ACK was lost. (A different master is a forgery or a
            // corruption that happened to unpad: keep the first.)
            Some(g) => {
                if g.master == group.master {
                    s.send_keyinfo_ack = true;
                }
            }
            None => {
                keys.group = Some(group);
                s.send_keyinfo_ack = true;
                if s.phase == Phase::Registering {
                    s.phase = Phase::Receiving;
                    s.send_register = false;
                    s.send_client_key = false;
                    s.last_heard = now;
                    let session = s.id;
                    self.event(Event::Registered { session });
                }
            }
        }
    }

    /// Frees a slot held by a session that never got past registration (the oldest), so that
    /// a flood of ANNOUNCEs for sessions that never confirm cannot lock real ones out.
    pub(super) fn evict<S: Storage>(&mut self, storage: &mut S) -> bool {
        let oldest = (0..SESSIONS)
            .filter_map(|i| {
                let s = self.sessions[i].as_ref()?;
                (s.phase == Phase::Registering).then_some((s.announce_rx, i))
            })
            .min();
        match oldest {
            Some((_, idx)) => {
                let result = SessionResult::Aborted(AbortReason::TooManySessions);
                self.end_session(idx, result, None, storage);
                true
            }
            None => false,
        }
    }

    /// Reports a silent refusal once per (session, server).
    pub(super) fn refuse_quietly(
        &mut self,
        id: SessionId,
        h: &HeaderRepr,
        from: SocketAddr,
        reason: AbortReason,
        fingerprint: Option<Fingerprint>,
    ) {
        self.drop_dgram(DropReason::Untrusted);
        let key = (id, h.src_id);
        if self.quiet.iter().any(|q| *q == key) {
            return;
        }
        if self.quiet.is_full() {
            let _ = self.quiet.pop_front();
        }
        let _ = self.quiet.push_back(key);
        self.event(Event::Refused {
            session: id,
            server_id: h.src_id,
            server: from,
            reason,
            fingerprint,
            detail: None,
            aborted: false,
        });
    }

    pub(super) fn on_announce<S: Storage>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        h: &HeaderRepr,
        a: &AnnounceRepr<'_>,
        datagram: &[u8],
        storage: &mut S,
    ) {
        let id = SessionId {
            group_id: h.group_id,
            group_inst: h.group_inst,
        };
        let uid = self.config.uid;
        if let Some(s) = self.sessions.iter_mut().flatten().find(|s| s.id == id) {
            if s.server_id != h.src_id {
                return self.drop_dgram(DropReason::WrongServer);
            }
            // An encrypted session's ANNOUNCE repeats its server random; one that does not is
            // not from our server.
            let same = match (&s.keys, &a.enc_info) {
                (None, None) => true,
                (Some(k), Some(e)) => k.rand1 == e.rand1,
                _ => false,
            };
            if !same {
                return self.drop_dgram(DropReason::Untrusted);
            }
            // The server is alive: in an open group it keeps announcing for ROBUST rounds after
            // confirming us, longer than our idle timeout may be.
            s.last_heard = now;
            // A repeated ANNOUNCE while we wait for REG_CONF: our REGISTER may have been lost.
            if s.phase == Phase::Registering
                && (a.client_ids.is_empty() || lists(&a.client_ids, uid))
            {
                s.announce_ts = a.timestamp;
                s.announce_rx = now;
                s.send_register = true;
                s.set_grtt(h.grtt);
            }
            return;
        }
        if self.ended.iter().any(|e| *e == id) {
            return;
        }
        if !(10..=50).contains(&a.robust) || !(512..=8800).contains(&a.blocksize) || h.src_id == 0 {
            return self.drop_dgram(DropReason::BadAnnounce);
        }
        let ours = a.public_addr.is_unspecified()
            || self.config.public_addrs.is_empty()
            || self.config.public_addrs.contains(&a.public_addr);
        if !ours {
            return self.drop_dgram(DropReason::BadAnnounce);
        }
        if !a.client_ids.is_empty() && !lists(&a.client_ids, uid) {
            // Closed group without us.
            return;
        }
        let proxy = match (&self.config.response_proxy, &self.proxy_key) {
            (None, _) => client_keys::ProxyRoute::Direct,
            (Some(_), None) => client_keys::ProxyRoute::Pending,
            (Some(_), Some(k)) => client_keys::ProxyRoute::Known {
                key_blob: &k.key_blob,
                dh_blob: &k.dh_blob,
            },
        };
        let policy = client_keys::Policy {
            servers: &self.config.servers,
            ec_keys: &self.config.ec_keys,
            require_encryption: self.config.require_encryption,
            allow_weak: self.config.allow_weak,
            proxy,
        };
        let negotiated =
            client_keys::negotiate(&policy, &mut self.rsa, &mut self.drbg, h, a, datagram, from);
        let (keys, refuse) = match negotiated {
            Err(Refusal::Quiet(reason, fingerprint)) => {
                return self.refuse_quietly(id, h, from, reason, fingerprint)
            }
            // Without the response proxy's key yet, this session is not refused for good:
            // a later ANNOUNCE of it is taken once PROXY_KEY has come.
            Err(Refusal::Abort(AbortReason::ProxyKeyMissing, _)) => {
                return self.refuse_quietly(id, h, from, AbortReason::ProxyKeyMissing, None)
            }
            Err(Refusal::Abort(reason, detail)) => (None, Some((reason, detail))),
            Ok(keys) => {
                let refuse = if a.flags & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW)
                    != 0
                    && h.group_inst != 0
                {
                    Some(AbortReason::SyncWithRestart)
                } else if !matches!(a.cc_type, CcType::None | CcType::Tfmcc) {
                    Some(AbortReason::CongestionControlUnsupported)
                } else if self.sessions.iter().all(Option::is_some) && !self.evict(storage) {
                    Some(AbortReason::TooManySessions)
                } else {
                    None
                };
                (keys, refuse.map(|r| (r, None)))
            }
        };
        if let Some((reason, detail)) = refuse {
            self.remember_ended(id);
            self.oneshot(Oneshot {
                dest: self.reply_addr(from),
                session: id,
                seq: 0,
                reason,
                seal: None,
            });
            return self.event(Event::Refused {
                session: id,
                server_id: h.src_id,
                server: from,
                reason,
                fingerprint: None,
                detail,
                aborted: true,
            });
        }
        let grtt = Duration::from_micros(h.grtt.as_micros());
        let (cipher, hash, weak) = match &keys {
            Some(k) => (k.keytype, k.hashtype, k.weak),
            None => (KeyType::None, HashType::None, None),
        };
        let fingerprint = a
            .enc_info
            .as_ref()
            .map(|e| crate::crypto::Fingerprint::of(e.key_blob));
        let reply = self.reply_addr(from);
        let mut s = Session {
            id,
            server_id: h.src_id,
            server: reply,
            private_addr: a.private_addr,
            blocksize: a.blocksize,
            robust: a.robust,
            grtt,
            grtt_code: h.grtt,
            idle_base_us: micros((grtt * u32::from(a.robust)).max(MIN_TIMEOUT)),
            announce_wait_us: micros(grtt * 3 * u32::from(a.robust)),
            phase: Phase::Registering,
            max_seq: h.seq,
            my_seq: 0,
            last_heard: now,
            announce_ts: a.timestamp,
            announce_rx: now,
            send_register: true,
            register_next: now,
            register_expire: now,
            file: None,
            send_complete0: false,
            complete_next: now,
            complete_deadline: now,
            keys,
            send_client_key: false,
            send_keyinfo_ack: false,
            cc: (a.cc_type == CcType::Tfmcc).then(|| ReceiverCc::new(a.blocksize)),
            gsize: h.gsize,
            sync: a.flags & (ANNOUNCE_FLAG_SYNC_MODE | ANNOUNCE_FLAG_SYNC_PREVIEW),
        };
        s.register_next = now + grtt * 4;
        s.register_expire = now + s.long_timeout();
        let slot = self
            .sessions
            .iter()
            .position(Option::is_none)
            .expect("a free slot was checked");
        self.sessions[slot] = Some(s);
        self.event(Event::SessionStarted {
            session: id,
            server_id: h.src_id,
            server: reply,
            private_addr: a.private_addr,
            cipher,
            hash,
            fingerprint,
            weak,
        });
    }
}
