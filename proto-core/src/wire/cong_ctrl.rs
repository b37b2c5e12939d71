//! CONG_CTRL (20): the server's TFMCC round with its RTT list (digest §3.18, §6.2).

use super::field::{message_view, Field};
use super::{need, Func, Grtt, List, Rate, Record, Result, Timestamp};

/// CC item flag: this client is the current limiting receiver.
pub const CC_FLAG_CLR: u8 = 0x01;
/// CC item flag: the RTT field is a measurement.
pub const CC_FLAG_RTT: u8 = 0x02;
/// CC item flag: the server is in slow start.
pub const CC_FLAG_START: u8 = 0x04;

mod field {
    pub const CC_SEQ: usize = 4;
    pub const CC_RATE: usize = 6;
    pub const TSTAMP: usize = 8;
    pub const ITEMS: usize = 16;
}

message_view! {
    /// A zero-copy view of a CONG_CTRL body.
    CongCtrlPacket, min_len = field::ITEMS;
    /// Feedback round.
    cc_seq, set_cc_seq: u16 = field::CC_SEQ;
}

impl<T: AsRef<[u8]>> CongCtrlPacket<T> {
    fn check_more(&self) -> Result<()> {
        Ok(())
    }
}

/// One client's entry in CONG_CTRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcItem {
    /// The client.
    pub client_id: u32,
    /// Flags (`CC_FLAG_*`).
    pub flags: u8,
    /// The client's RTT as the server measured it.
    pub rtt: Grtt,
}

impl Record for CcItem {
    const LEN: usize = 8;
    fn read(bytes: &[u8]) -> Self {
        CcItem {
            client_id: u32::get(bytes, 0),
            flags: bytes[4],
            rtt: Grtt(bytes[5]),
        }
    }
    fn write(&self, out: &mut [u8]) {
        u32::set(out, 0, self.client_id);
        out[4] = self.flags;
        out[5] = self.rtt.0;
        out[6] = 0;
        out[7] = 0;
    }
}

/// CONG_CTRL, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongCtrlRepr<'a> {
    /// Feedback round.
    pub cc_seq: u16,
    /// Suppression threshold.
    pub cc_rate: Rate,
    /// Server timestamp.
    pub timestamp: Timestamp,
    /// RTT list, current limiting receiver first.
    pub items: List<'a, CcItem>,
}

impl<'a> CongCtrlRepr<'a> {
    /// Parses a checked CONG_CTRL.
    pub fn parse(packet: &CongCtrlPacket<&'a [u8]>) -> Result<Self> {
        let buf: &'a [u8] = packet.buffer;
        Ok(CongCtrlRepr {
            cc_seq: packet.cc_seq(),
            cc_rate: Rate(u16::get(buf, field::CC_RATE)),
            timestamp: Timestamp::read(buf, field::TSTAMP),
            items: List::from_wire(&buf[usize::from(packet.hlen()) * 4..])?,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        field::ITEMS + self.items.buffer_len()
    }

    /// Writes the body into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(buf, len)?;
        buf[..4].copy_from_slice(&[Func::CongCtrl.into(), (field::ITEMS / 4) as u8, 0, 0]);
        u16::set(buf, field::CC_SEQ, self.cc_seq);
        u16::set(buf, field::CC_RATE, self.cc_rate.0);
        self.timestamp.write(buf, field::TSTAMP);
        self.items.emit(&mut buf[field::ITEMS..])?;
        Ok(len)
    }
}
