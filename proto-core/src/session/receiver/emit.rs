//! Output: choosing the next datagram of a session (responses, NAKs, one-shots) and building it.

use super::*;

impl<const SESSIONS: usize, R: RsaKeys> Receiver<SESSIONS, R> {
    #[inline(never)]
    pub(super) fn transmit<S: Storage>(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        storage: &mut S,
    ) -> Option<Transmit> {
        let uid = self.config.uid;
        if core::mem::take(&mut self.send_key_req) {
            if let Some(proxy) = self.config.response_proxy {
                // KEY_REQ, like heartbeats, carries group 0 and seq 0 (digest §2.1).
                let header = HeaderRepr {
                    seq: 0,
                    src_id: uid,
                    group_id: 0,
                    group_inst: 0,
                    grtt: Grtt(0),
                    gsize: GroupSize(0),
                };
                let msg = Message::KeyReq(crate::wire::KeyReqRepr);
                match emit_datagram(&header, &msg, buf, None) {
                    Some(len) => {
                        return Some(Transmit {
                            dest: proxy.addr,
                            len,
                        })
                    }
                    None => self.stats.transmit_errors += 1,
                }
            }
        }
        if let Some(t) =
            self.heartbeat
                .poll_transmit(buf, self.config.heartbeat_key.as_ref(), &self.rsa)
        {
            self.event(Event::HeartbeatSent { to: t.dest });
            return Some(t);
        }
        while let Some(o) = self.oneshots.pop_front() {
            let header = HeaderRepr {
                seq: o.seq,
                src_id: uid,
                group_id: o.session.group_id,
                group_inst: o.session.group_inst,
                grtt: Grtt(0),
                gsize: GroupSize(0),
            };
            let msg = Message::Abort(AbortRepr {
                flags: 0,
                host: 0,
                reason: o.reason.as_str().as_bytes(),
            });
            let envelope = o.seal.as_ref().and_then(|w| {
                let keys = SessionKeys::group(w.keytype, w.hashtype, &w.master, &w.rand1).ok()?;
                Some((Envelope::new(&keys).ok()?, w.ctr))
            });
            if o.seal.is_some() && envelope.is_none() {
                self.stats.transmit_errors += 1;
                continue;
            }
            let seal = envelope.as_ref().map(|(e, c)| (e, *c));
            match emit_datagram(&header, &msg, buf, seal) {
                Some(len) => return Some(Transmit { dest: o.dest, len }),
                None => self.stats.transmit_errors += 1,
            }
        }
        for idx in 0..SESSIONS {
            while let Some(out) = self.next_output(idx, storage) {
                if let Some(t) = self.build(idx, out, now, buf, storage) {
                    return Some(t);
                }
            }
        }
        None
    }

    /// Picks (and clears the flag of) the next datagram session `idx` owes its server.
    pub(super) fn next_output<S: Storage>(
        &mut self,
        idx: usize,
        storage: &mut S,
    ) -> Option<Output> {
        let s = self.sessions[idx].as_mut()?;
        if s.send_register {
            s.send_register = false;
            s.send_client_key = s.keys.as_ref().is_some_and(|k| k.client_auth);
            return Some(Output::Register);
        }
        if s.send_client_key {
            s.send_client_key = false;
            return Some(Output::ClientKey);
        }
        if s.send_keyinfo_ack {
            s.send_keyinfo_ack = false;
            return Some(Output::KeyInfoAck);
        }
        let session = s.id;
        if let Some(f) = s.file.as_mut() {
            if f.send_ack {
                f.send_ack = false;
                return Some(Output::FileInfoAck);
            }
            if f.send_complete {
                f.send_complete = false;
                return Some(Output::Complete);
            }
            if let Some((next, last)) = f.status {
                let found = storage
                    .block_map(session)
                    .and_then(|m| (next..=last).find(|&sec| section_has_holes(&f.layout, m, sec)));
                match found {
                    Some(sec) => {
                        f.status = (sec < last).then_some((sec + 1, last));
                        return Some(Output::Status(sec));
                    }
                    None => f.status = None,
                }
            }
        }
        if s.send_complete0 {
            s.send_complete0 = false;
            return Some(Output::Complete0);
        }
        // Feedback only while a file is being received: a server between files or past the
        // data takes CC_ACK as an invalid message.
        let receiving = s
            .file
            .as_ref()
            .is_some_and(|f| f.state == FileState::Receiving);
        if let Some(cc) = s.cc.as_mut().filter(|c| c.send_ack) {
            cc.send_ack = false;
            if receiving {
                cc.acks_sent += 1;
                return Some(Output::CcAck);
            }
        }
        None
    }

    pub(super) fn build<S: Storage>(
        &mut self,
        idx: usize,
        out: Output,
        now: Instant,
        buf: &mut [u8],
        storage: &mut S,
    ) -> Option<Transmit> {
        let uid = self.config.uid;
        let s = self.sessions[idx].as_mut()?;
        let header = s.header(uid);
        let dest = s.server;
        let session = s.id;
        // Everything but REGISTER and CLIENT_KEY is sealed once the group keys are here.
        let sealed = s.keys.as_ref().is_some_and(|k| k.group.is_some())
            && !matches!(out, Output::Register | Output::ClientKey);
        let ctr = match s.keys.as_mut() {
            Some(k) if sealed => k.next_ctr(),
            _ => 0,
        };
        let s = self.sessions[idx].as_ref()?;
        let envelope = s
            .keys
            .as_ref()
            .and_then(|k| k.group.as_ref())
            .filter(|_| sealed)
            .map(|g| (&g.envelope, ctr));
        let message = match out {
            Output::Register => {
                let (rand2, keyinfo) = match &s.keys {
                    Some(k) => (k.rand2, &k.keyinfo[..]),
                    None => ([0; 32], &[][..]),
                };
                Message::Register(RegisterRepr {
                    timestamp: echo(s.announce_ts, s.announce_rx, now),
                    rand2,
                    keyinfo,
                    client_ids: IdList::EMPTY,
                })
            }
            Output::ClientKey => {
                let k = s.keys.as_ref()?;
                Message::ClientKey(ClientKeyRepr {
                    key_blob: &k.own_blob,
                    signature: &k.signature,
                })
            }
            Output::KeyInfoAck => {
                let g = s.keys.as_ref()?.group.as_ref()?;
                Message::KeyInfoAck(KeyInfoAckRepr {
                    verify_data: g.verify_data,
                })
            }
            Output::CcAck => Message::CcAck(CcAckRepr {
                tfmcc: s.cc.as_ref()?.ack_info(now, s.grtt, uid),
            }),
            Output::Complete0 => Message::Complete(CompleteRepr {
                file_id: 0,
                status: CompleteStatus::Normal,
                freespace: None,
                client_ids: IdList::EMPTY,
            }),
            Output::FileInfoAck => {
                let f = s.file.as_ref()?;
                Message::FileInfoAck(FileInfoAckRepr {
                    file_id: f.file_id,
                    flags: if f.resumed {
                        FILEINFO_ACK_FLAG_PARTIAL
                    } else {
                        0
                    },
                    timestamp: echo(f.info_ts, f.info_rx, now),
                    client_ids: IdList::EMPTY,
                })
            }
            Output::Complete => {
                let f = s.file.as_ref()?;
                let status = match f.state {
                    FileState::Done(st) => st,
                    FileState::Receiving => CompleteStatus::Normal,
                };
                Message::Complete(CompleteRepr {
                    file_id: f.file_id,
                    status,
                    freespace: f.freespace.map(|freespace| FreeSpaceInfoRepr { freespace }),
                    client_ids: IdList::EMPTY,
                })
            }
            Output::Status(sec) => {
                let f = s.file.as_ref()?;
                let layout = f.layout;
                let status = StatusRepr {
                    file_id: f.file_id,
                    section: sec,
                    tfmcc: s.cc.as_ref().map(|c| c.ack_info(now, s.grtt, uid)),
                    naks: &[],
                };
                // The bitmap is written straight into `buf` from the block map.
                let off = envelope.map_or(HEADER_LEN, |(e, _)| e.inner_offset());
                let body = off + status.buffer_len();
                let len = layout.nak_bitmap_len(sec);
                let map = storage.block_map(session)?;
                let start = layout.section_start(sec)? as usize;
                let built = (|| {
                    let bits = buf.get_mut(body..body + len)?;
                    bits.fill(0);
                    for i in 0..layout.section_blocks(sec) as usize {
                        if !nak::get(map, start + i) {
                            nak::set(bits, i);
                        }
                    }
                    status.emit(&mut buf[off..]).ok()?;
                    match envelope {
                        Some((e, ctr)) => e.seal(buf, &header, body + len - off, ctr).ok(),
                        None => {
                            header.emit(Func::Status.into(), buf).ok()?;
                            Some(body + len)
                        }
                    }
                })();
                return match built {
                    Some(len) => Some(Transmit { dest, len }),
                    None => {
                        self.stats.transmit_errors += 1;
                        None
                    }
                };
            }
        };
        match emit_datagram(&header, &message, buf, envelope) {
            Some(len) => Some(Transmit { dest, len }),
            None => {
                self.stats.transmit_errors += 1;
                None
            }
        }
    }
}

/// Emits `message` under `header` into `buf`, sealed in an ENCRYPTED envelope when `seal` gives
/// one (with its IV counter value); returns the datagram length.
pub(in crate::session) fn emit_datagram(
    header: &HeaderRepr,
    message: &Message<'_>,
    buf: &mut [u8],
    seal: Option<(&Envelope, u64)>,
) -> Option<usize> {
    match seal {
        None => Repr {
            header: *header,
            message: *message,
        }
        .emit(buf)
        .ok(),
        Some((envelope, ctr)) => {
            let off = envelope.inner_offset();
            let n = message.emit(buf.get_mut(off..)?).ok()?;
            envelope.seal(buf, header, n, ctr).ok()
        }
    }
}
