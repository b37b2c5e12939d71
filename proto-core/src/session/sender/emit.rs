//! Output: the header, sealing, and the packets of each phase (ANNOUNCE, KEYINFO, FILEINFO,
//! FILESEG, DONE, CONG_CTRL, REG_CONF, DONE_CONF, ABORT).

use super::*;

impl<const CLIENTS: usize, R: RsaKeys> Sender<CLIENTS, R> {
    /// CONG_CTRL (§3.18): the CLR first, then clients whose RTT is new, then the others in
    /// turn, as many as a block's worth.
    pub(super) fn cong_ctrl_packet(&mut self, now_us: u64, buf: &mut [u8]) -> Option<usize> {
        let cc = self.cc?;
        let (cc_seq, cc_rate) = cc.round();
        let message = Message::CongCtrl(CongCtrlRepr {
            cc_seq,
            cc_rate,
            timestamp: Timestamp::from_micros(now_us),
            items: List::EMPTY,
        });
        let mut len = self.emit(buf, message)?;
        let room = (buf.len() - len) / CcItem::LEN;
        let max = (usize::from(self.config.blocksize) / CcItem::LEN).min(room);
        let item = |c: &Client, flags: u8| CcItem {
            client_id: c.id,
            flags: flags
                | if c.rtt_us.is_some() {
                    crate::wire::CC_FLAG_RTT
                } else {
                    0
                },
            rtt: Grtt::from_micros(c.rtt_us.unwrap_or(self.grtt_us)),
        };
        let put = |buf: &mut [u8], len: &mut usize, it: CcItem| {
            it.write(&mut buf[*len..*len + CcItem::LEN]);
            *len += CcItem::LEN;
        };
        let mut n = 0;
        let clr = cc.clr().and_then(|id| self.find(id));
        if let Some(i) = clr.filter(|_| max > 0) {
            let mut flags = crate::wire::CC_FLAG_CLR;
            if cc.slow_start() {
                flags |= crate::wire::CC_FLAG_START;
            }
            let it = item(&self.clients[i], flags);
            put(buf, &mut len, it);
            self.clients[i].rtt_fresh = false;
            n += 1;
        }
        let eligible = |c: &Client| c.active() && !c.is_proxy() && c.rtt_us.is_some();
        for j in 0..self.clients.len() {
            if n >= max {
                break;
            }
            let c = self.clients[j];
            if Some(j) != clr && c.rtt_fresh && eligible(&c) {
                put(buf, &mut len, item(&c, 0));
                self.clients[j].rtt_fresh = false;
                n += 1;
            }
        }
        let total = self.clients.len();
        let mut looked = 0;
        while n < max && looked < total {
            let j = self.cc_cursor % total;
            self.cc_cursor = j + 1;
            looked += 1;
            let c = self.clients[j];
            if Some(j) != clr && eligible(&c) {
                put(buf, &mut len, item(&c, 0));
                n += 1;
            }
        }
        // hlen covers the fixed part only; the items follow to the end of the datagram.
        Some(len)
    }

    pub(super) fn header(&mut self) -> HeaderRepr {
        // The group size counts proxies too, as uftp 4.10.2's does.
        let gsize =
            GroupSize::from_count(self.clients.iter().filter(|c| c.active()).count() as u64);
        let h = HeaderRepr {
            seq: self.seq,
            src_id: self.config.src_id,
            group_id: self.config.group_id,
            group_inst: self.config.group_inst,
            grtt: Grtt::from_micros(self.adv_grtt_us()),
            gsize,
        };
        self.seq = self.seq.wrapping_add(1);
        h
    }

    /// Most IDs one packet may list (digest §2.4): a block's worth, less what EXT_ENC_INFO
    /// takes in an encrypted ANNOUNCE.
    pub(super) fn ids_per_packet(&self) -> usize {
        match self.phase {
            Phase::Announce { .. } if self.sec.is_some() => self.announce_ids(),
            _ => usize::from(self.config.blocksize) / 4,
        }
    }

    /// Most IDs an ANNOUNCE lists: what the block size leaves after EXT_ENC_INFO, but never
    /// fewer than a few (large RSA keys can take more than a small block).
    pub(super) fn announce_ids(&self) -> usize {
        let bs = usize::from(self.config.blocksize);
        let ext = self.sec.as_ref().map_or(0, ServerKeys::ext_len);
        (bs.saturating_sub(ext) / 4).max(MIN_ANNOUNCE_IDS)
    }

    /// Most KEYINFO entries per packet: a block's worth.
    pub(super) fn keyinfo_entries(&self) -> usize {
        (usize::from(self.config.blocksize) / KeyInfoEntry::LEN).max(1)
    }

    /// Appends, from `*cursor` on, the IDs of the clients `pick` selects (it may clear flags),
    /// at most `ids_per_packet`; returns the new length and whether more remain.
    pub(super) fn append_ids(
        &mut self,
        buf: &mut [u8],
        mut len: usize,
        cursor: &mut usize,
        mut pick: impl FnMut(&mut Client) -> bool,
    ) -> Option<(usize, bool)> {
        let max = self.ids_per_packet();
        let mut n = 0;
        while *cursor < self.clients.len() {
            if n == max {
                let more = self.clients[*cursor..].iter_mut().any(|c| {
                    let mut copy = *c;
                    pick(&mut copy)
                });
                return Some((len, more));
            }
            let c = &mut self.clients[*cursor];
            *cursor += 1;
            if pick(c) {
                buf.get_mut(len..len + 4)?
                    .copy_from_slice(&c.id.to_be_bytes());
                len += 4;
                n += 1;
            }
        }
        Some((len, false))
    }

    pub(super) fn emit(&mut self, buf: &mut [u8], message: Message<'_>) -> Option<usize> {
        let header = self.header();
        Repr { header, message }.emit(buf).ok()
    }

    /// Where a message to be sealed is built: the plain datagram (its header included) starts
    /// this far into the buffer, so that its body lands where [`Envelope::seal`] encrypts it
    /// in place. 0 for a message sent in the clear.
    ///
    /// [`Envelope::seal`]: crate::crypto::Envelope::seal
    pub(super) fn seal_shift(&self, sealed: bool) -> usize {
        match &self.sec {
            Some(sec) if sealed => sec.envelope.inner_offset() - HEADER_LEN,
            _ => 0,
        }
    }

    /// Seals the plain datagram of `len` bytes at `buf[shift..]` in place into ENCRYPTED at
    /// the start of `buf`; returns the sealed length (`len` itself when `shift` is 0).
    pub(super) fn seal(&mut self, buf: &mut [u8], shift: usize, len: usize) -> Option<usize> {
        if shift == 0 {
            return Some(len);
        }
        let sec = self.sec.as_mut()?;
        let plain = buf.get(shift..shift + len)?;
        let header = HeaderRepr::parse(&HeaderPacket::new_checked(plain).ok()?).ok()?;
        let ctr = sec.next_ctr();
        sec.envelope.seal(buf, &header, len - HEADER_LEN, ctr).ok()
    }

    #[must_use]
    pub(super) fn transmit(
        &mut self,
        now_us: u64,
        buf: &mut [u8],
        source: &mut impl BlockSource,
    ) -> Option<Transmit> {
        if let Some(a) = self.aborts.pop_front() {
            let message = Message::Abort(AbortRepr {
                flags: 0,
                host: a.host,
                reason: a.reason,
            });
            let shift = self.seal_shift(a.sealed);
            let len = self.emit(buf.get_mut(shift..)?, message)?;
            let len = self.seal(buf, shift, len)?;
            return Some(Transmit { dest: a.dest, len });
        }
        if self.phase == Phase::Finished {
            return None;
        }
        let private = self.private_dest();
        let encrypted = self.sec.is_some();
        if self.owed
            && !self
                .clients
                .iter()
                .any(|c| c.regconf || c.keyinfo || c.doneconf)
        {
            self.owed = false;
        }
        if self.owed && self.clients.iter().any(|c| c.regconf) {
            let message = Message::RegConf(RegConfRepr {
                client_ids: IdList::EMPTY,
            });
            let len = self.emit(buf, message)?;
            let mut cursor = 0;
            let (len, _) = self.append_ids(buf, len, &mut cursor, |c| {
                core::mem::replace(&mut c.regconf, false)
            })?;
            return Some(Transmit { dest: private, len });
        }
        if self.owed && encrypted && self.clients.iter().any(|c| c.keyinfo) {
            return self.keyinfo_packet(buf);
        }
        if self.owed && self.clients.iter().any(|c| c.doneconf) {
            let message = Message::DoneConf(DoneConfRepr {
                client_ids: IdList::EMPTY,
            });
            let shift = self.seal_shift(encrypted);
            let plain = buf.get_mut(shift..)?;
            let len = self.emit(plain, message)?;
            let mut cursor = 0;
            let (len, _) = self.append_ids(plain, len, &mut cursor, |c| {
                core::mem::replace(&mut c.doneconf, false)
            })?;
            if let Phase::Completion { .. } = self.phase {
                self.progress(now_us);
            }
            let len = self.seal(buf, shift, len)?;
            return Some(Transmit { dest: private, len });
        }
        for _ in 0..2 {
            if self.round.pending {
                // Everything in rounds is sealed, but ANNOUNCE.
                let sealed = encrypted && !matches!(self.phase, Phase::Announce { .. });
                let shift = self.seal_shift(sealed);
                if let Some(t) = self.round_packet(now_us, buf.get_mut(shift..)?) {
                    let len = self.seal(buf, shift, t.len)?;
                    return Some(Transmit { dest: t.dest, len });
                }
            }
            if let Phase::Data { pass, cursor, sent } = self.phase {
                let shift = self.seal_shift(encrypted);
                if core::mem::take(&mut self.cong_ctrl_due) {
                    if let Some(len) = self.cong_ctrl_packet(now_us, buf.get_mut(shift..)?) {
                        let len = self.seal(buf, shift, len)?;
                        return Some(Transmit { dest: private, len });
                    }
                }
                let plain = buf.get_mut(shift..)?;
                match self.data_packet(now_us, plain, source, pass, cursor, sent) {
                    Ok(Some(t)) => {
                        let len = self.seal(buf, shift, t.len)?;
                        return Some(Transmit { dest: t.dest, len });
                    }
                    Ok(None) => return None,
                    Err(()) => continue,
                }
            }
            break;
        }
        None
    }

    /// KEYINFO: the group master wrapped for each client whose entry is due, one IV counter
    /// value for the packet.
    #[must_use]
    pub(super) fn keyinfo_packet(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let max = self.keyinfo_entries();
        let header = self.header();
        let sec = self.sec.as_mut()?;
        let ctr = sec.next_ctr();
        let message = Message::KeyInfo(KeyInfoRepr {
            iv_ctr: ctr,
            entries: List::EMPTY,
        });
        let mut len = Repr { header, message }.emit(buf).ok()?;
        let mut n = 0;
        for (c, peer) in self.clients.iter_mut().zip(self.peers.iter()) {
            if n == max {
                break;
            }
            if !core::mem::replace(&mut c.keyinfo, false) {
                continue;
            }
            let Some(group_master) = sec.keyinfo_entry(peer, header.src_id, ctr) else {
                continue;
            };
            let entry = KeyInfoEntry {
                client_id: c.id,
                group_master,
            };
            entry.write(buf.get_mut(len..len + KeyInfoEntry::LEN)?);
            len += KeyInfoEntry::LEN;
            n += 1;
        }
        Some(Transmit {
            dest: self.private_dest(),
            len,
        })
    }

    #[must_use]
    pub(super) fn round_packet(&mut self, now_us: u64, buf: &mut [u8]) -> Option<Transmit> {
        let mut cursor = self.round.cursor;
        let timestamp = Timestamp::from_micros(now_us);
        let (dest, result) = match self.phase {
            Phase::Announce { .. } => {
                let invited = |c: &mut Client| c.state == ClientState::Invited && c.member();
                if self.closed && !self.clients.iter_mut().any(invited) {
                    self.round.pending = false;
                    return None;
                }
                let (public_addr, private_addr) = if self.config.unicast {
                    let zero = match self.config.public_addr.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
                    };
                    (zero, zero)
                } else {
                    (self.config.public_addr.ip(), self.config.private_addr.ip())
                };
                let header = self.header();
                let message = Message::Announce(AnnounceRepr {
                    flags: self.config.sync.announce_flags(),
                    robust: self.config.robust,
                    cc_type: if self.cc.is_some() {
                        CcType::Tfmcc
                    } else {
                        CcType::None
                    },
                    blocksize: self.config.blocksize,
                    timestamp,
                    public_addr,
                    private_addr,
                    enc_info: self.sec.as_ref().map(ServerKeys::enc_info),
                    client_ids: IdList::EMPTY,
                });
                let len = Repr { header, message }.emit(buf).ok()?;
                let r = if self.closed {
                    self.append_ids(buf, len, &mut cursor, invited)?
                } else {
                    (len, false)
                };
                if let Some(sec) = &self.sec {
                    // The signature covers the ID list too (digest §5.7).
                    sec.sign_announce(&self.rsa, buf.get_mut(..r.0)?).ok()?;
                }
                (self.config.public_addr, r)
            }
            Phase::FileInfo { .. } => {
                let waiting =
                    |c: &mut Client| c.active() && c.in_file && c.file == FileState::Waiting;
                if !self.clients.iter_mut().any(waiting) {
                    self.round.pending = false;
                    return None;
                }
                let header = self.header();
                let message = Message::FileInfo(FileInfoRepr {
                    file_id: self.file_id,
                    ftype: self.ftype,
                    name: &self.name,
                    link: &self.link,
                    size: self.layout.size,
                    mtime: self.mtime,
                    timestamp,
                    client_ids: IdList::EMPTY,
                });
                let len = Repr { header, message }.emit(buf).ok()?;
                (
                    self.private_dest(),
                    self.append_ids(buf, len, &mut cursor, waiting)?,
                )
            }
            Phase::Done { .. } => {
                let section = self.layout.sections.saturating_sub(1);
                let message = Message::Done(DoneRepr {
                    file_id: self.file_id,
                    section,
                    client_ids: IdList::EMPTY,
                });
                let len = self.emit(buf, message)?;
                self.mark_owing_proxies(|c| c.file_pending() && !c.responded);
                let owing = |c: &mut Client| (c.file_pending() && !c.responded) || c.owing;
                (
                    self.private_dest(),
                    self.append_ids(buf, len, &mut cursor, owing)?,
                )
            }
            Phase::Completion { .. } => {
                let member_owes = |c: &Client| c.active() && c.member() && !c.done;
                self.mark_owing_proxies(member_owes);
                let owing = |c: &mut Client| member_owes(c) || c.owing;
                if !self.clients.iter_mut().any(owing) {
                    self.round.pending = false;
                    return None;
                }
                let message = Message::Done(DoneRepr {
                    file_id: 0,
                    section: 0,
                    client_ids: IdList::EMPTY,
                });
                let len = self.emit(buf, message)?;
                (
                    self.private_dest(),
                    self.append_ids(buf, len, &mut cursor, owing)?,
                )
            }
            _ => {
                self.round.pending = false;
                return None;
            }
        };
        let (len, more) = result;
        self.round = RoundEmit {
            pending: more,
            cursor,
        };
        Some(Transmit { dest, len })
    }

    /// `Ok(Some)`: a FILESEG; `Ok(None)`: pacing says wait; `Err`: the pass ended (or the
    /// session did), try the next kind of packet.
    #[allow(clippy::result_unit_err)] // private; the error only means "look again"
    pub(super) fn data_packet(
        &mut self,
        now_us: u64,
        buf: &mut [u8],
        source: &mut impl BlockSource,
        pass: u16,
        cursor: u32,
        sent: u32,
    ) -> Result<Option<Transmit>, ()> {
        let now_ns = now_us.saturating_mul(1000);
        let rate = self.pacing_rate();
        if rate.is_some() && now_ns < self.next_send_ns {
            return Ok(None);
        }
        let l = self.layout;
        let map = source.resend_map();
        if map.len() < l.bitmap_len() {
            self.abort_with(
                now_us,
                Outcome::SourceError,
                b"Sender error: resend map too small",
            );
            return Err(());
        }
        let block = if pass == 1 {
            (cursor < l.blocks).then_some(cursor)
        } else {
            nak::next_set(map, cursor as usize, l.blocks as usize).map(|b| b as u32)
        };
        let Some(block) = block else {
            self.end_pass(now_us, pass, sent);
            return Err(());
        };
        if pass > 1 {
            nak::clear(map, block as usize);
            self.to_resend = self.to_resend.saturating_sub(1);
        }
        let (section, index) = l.locate(block).ok_or(())?;
        let header = self.header();
        let seg = FileSegRepr {
            file_id: self.file_id,
            section,
            sec_block: index as u16,
            tfmcc: self.cc.as_ref().map(|cc| {
                let (cc_seq, cc_rate) = cc.round();
                crate::wire::TfmccDataInfoRepr {
                    send_rate: crate::wire::Rate::from_bytes_per_sec(cc.rate()),
                    cc_seq,
                    cc_rate,
                }
            }),
            data: &[],
        };
        let data_len = l.block_len(block);
        let fail = |s: &mut Self| {
            s.abort_with(
                now_us,
                Outcome::SourceError,
                b"Sender error: cannot read file",
            );
            Err(())
        };
        if header.emit(crate::wire::Func::FileSeg.into(), buf).is_err() {
            return fail(self);
        }
        let Ok(hlen) = seg.emit_header(&mut buf[HEADER_LEN..]) else {
            return fail(self);
        };
        let start = HEADER_LEN + hlen;
        let Some(data) = buf.get_mut(start..start + data_len) else {
            return fail(self);
        };
        if source
            .read_block(self.file_id, l.offset(block), data)
            .is_err()
        {
            return fail(self);
        }
        self.phase = Phase::Data {
            pass,
            cursor: block + 1,
            sent: sent + 1,
        };
        self.counters.blocks_sent += 1;
        if pass == 1 {
            self.stats.first_pass_blocks += 1;
            self.counters.first_pass_blocks += 1;
        } else {
            self.stats.retransmitted_blocks += 1;
            self.counters.retransmitted_blocks += 1;
        }
        if self.config.adaptive_rate && self.cc.is_none() {
            let bytes = (start + data_len) as u64;
            self.auto.on_data(now_us, bytes, pass, section);
            // Only the first pass raises the cap: later passes carry what the slow keep
            // missing, and sending those faster would only make them miss it again.
            if pass == 1 {
                self.auto.on_sent(l.section_blocks(0).max(1));
            }
        }
        if let Some(rate) = rate {
            let ip = if self.config.private_addr.is_ipv4() {
                20
            } else {
                40
            };
            // Digest §4.3: the ENCRYPTED header, signature and a block of padding or the tag.
            let sealed = self.sec.as_ref().map_or(0, |s| {
                (s.envelope.inner_offset() - HEADER_LEN + AEAD_TAG_LEN) as u64
            });
            let ext = if self.cc.is_some() { 8 } else { 0 };
            let packet = u64::from(self.config.blocksize) + 8 + 16 + 8 + ext + ip + sealed;
            let interval = packet.saturating_mul(1_000_000_000) / rate;
            self.next_send_ns = self
                .next_send_ns
                .max(now_ns.saturating_sub(PACING_SLACK_NS))
                + interval;
        }
        Ok(Some(Transmit {
            dest: self.private_dest(),
            len: start + data_len,
        }))
    }
}
