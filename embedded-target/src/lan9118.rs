//! An [`embassy_net_driver::Driver`] for the SMSC LAN9118 Ethernet controller (MAC and PHY in
//! one chip, on a 32-bit memory bus), as QEMU's MPS2 boards emulate it.
//!
//! The chip is reached through [`Registers`]: [`Mmio`](crate::mmio::Mmio) on a board, a model
//! of the chip in the tests below. Frames go through the chip's FIFOs word by word: a received
//! frame is its RX status word (length, errors) and its data words (the frame and its FCS); a
//! frame to send is two command words and its data words. MAC registers sit behind the
//! `MAC_CSR_CMD`/`MAC_CSR_DATA` pair, PHY registers behind the MAC's `MII_ACC`/`MII_DATA`.
//!
//! # Polled, not interrupt-driven
//!
//! The driver registers the network task's waker in [`AtomicWaker`] handed to it and never
//! wakes it itself: the board wakes it on a timer (every millisecond on the MPS2 board), and
//! each wake drains whatever the RX FIFO holds. It needs no interrupt line, no NVIC setup and
//! no `unsafe`; at 1 ms the chip's RX data FIFO (about 10 KiB beside a 5 KiB TX FIFO) holds six
//! full frames, more than a UFTP sender at tens of Mbit/s delivers per millisecond.
//!
//! # Multicast
//!
//! Multicast frames pass the chip's 64-bit hash filter (`HPFILT`): a frame is taken when the
//! bit its destination address hashes to (the top six bits of the Ethernet CRC) is set.
//! embassy-net-driver has no call that tells a driver the groups the stack joined, so the
//! receiver tells a [`MulticastFilter`] (a [`GroupFilter`]), and the driver copies its bits to
//! the chip whenever they change.
//!
//! # What QEMU's model does differently from the datasheet
//!
//! - Everything is instant: reset, EEPROM load, PHY reset and auto-negotiation, MAC CSR and MII
//!   cycles finish before the next register read; the busy-bit waits below still bound
//!   themselves for the real chip.
//! - The PHY's link bit follows QEMU's link state (`set_link` in the monitor), and the model
//!   reports no speed or duplex, so the driver leaves the MAC at its reset duplex.
//! - Frames are sent the moment their last data word is written; the TX FIFO never fills.
//! - The MAC address the model's EEPROM holds is QEMU's `-nic …,mac=`, loaded into `ADDRH`/
//!   `ADDRL` at reset as the real chip does from a programmed EEPROM.

use core::net::Ipv4Addr;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

use crate::mmio::Mmio;
use crate::receive::GroupFilter;

/// Where the chip's MAC address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacAddress {
    /// This one, written to `ADDRH`/`ADDRL`.
    Given([u8; 6]),
    /// The one the chip loaded from its EEPROM at reset; `fallback` if it loaded none.
    Eeprom {
        /// Used when the EEPROM holds no usable address.
        fallback: Option<[u8; 6]>,
    },
}

/// The chip's 32-bit registers, by byte offset.
pub trait Registers {
    /// Reads the register at `offset` (FIFO registers pop a word).
    fn read(&mut self, offset: usize) -> u32;
    /// Writes `value` to the register at `offset` (FIFO registers push a word).
    fn write(&mut self, offset: usize, value: u32);
}

impl Registers for Mmio {
    fn read(&mut self, offset: usize) -> u32 {
        Mmio::read(self, offset)
    }

    fn write(&mut self, offset: usize, value: u32) {
        Mmio::write(self, offset, value)
    }
}

/// Bytes of the chip's register block.
pub const REGISTER_BLOCK: usize = 0x100;

/// System control and status registers (datasheet section 5.3).
mod reg {
    pub const RX_DATA_FIFO: usize = 0x00;
    pub const TX_DATA_FIFO: usize = 0x20;
    pub const RX_STATUS_FIFO: usize = 0x40;
    pub const TX_STATUS_FIFO: usize = 0x48;
    pub const ID_REV: usize = 0x50;
    pub const IRQ_CFG: usize = 0x54;
    pub const INT_STS: usize = 0x58;
    pub const INT_EN: usize = 0x5C;
    pub const BYTE_TEST: usize = 0x64;
    pub const RX_CFG: usize = 0x6C;
    pub const TX_CFG: usize = 0x70;
    pub const HW_CFG: usize = 0x74;
    pub const RX_FIFO_INF: usize = 0x7C;
    pub const TX_FIFO_INF: usize = 0x80;
    pub const PMT_CTRL: usize = 0x84;
    pub const FREE_RUN: usize = 0x9C;
    pub const MAC_CSR_CMD: usize = 0xA4;
    pub const MAC_CSR_DATA: usize = 0xA8;

    /// What `BYTE_TEST` reads on a bus of the right width and byte order.
    pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;
    pub const PMT_CTRL_READY: u32 = 1 << 0;
    pub const HW_CFG_SRST: u32 = 1 << 0;
    /// Must be written as one.
    pub const HW_CFG_MBO: u32 = 1 << 20;
    /// TX FIFO size in KiB (bits 19:16): 5 KiB, the reset default, leaves ~11 KiB for RX.
    pub const HW_CFG_TX_FIF_5K: u32 = 5 << 16;
    pub const TX_CFG_TX_ON: u32 = 1 << 1;
    pub const MAC_CSR_BUSY: u32 = 1 << 31;
    pub const MAC_CSR_READ: u32 = 1 << 30;
    /// RX status: error summary (CRC, runt, too long, collision, MII error).
    pub const RX_STS_ES: u32 = 1 << 15;
    /// TX status: error summary.
    pub const TX_STS_ES: u32 = 1 << 15;
    /// TX command A: first and last segment of the frame.
    pub const TX_CMD_A_FIRST: u32 = 1 << 13;
    pub const TX_CMD_A_LAST: u32 = 1 << 12;
}

/// MAC control and status registers (datasheet section 5.4), behind `MAC_CSR_CMD`.
mod mac {
    pub const MAC_CR: u32 = 1;
    pub const ADDRH: u32 = 2;
    pub const ADDRL: u32 = 3;
    pub const HASHH: u32 = 4;
    pub const HASHL: u32 = 5;
    pub const MII_ACC: u32 = 6;
    pub const MII_DATA: u32 = 7;

    /// Hash/perfect filter: multicast frames through the hash table.
    pub const MAC_CR_HPFILT: u32 = 1 << 13;
    pub const MAC_CR_TXEN: u32 = 1 << 3;
    pub const MAC_CR_RXEN: u32 = 1 << 2;
    pub const MII_BUSY: u32 = 1 << 0;
    pub const MII_WRITE: u32 = 1 << 1;
    /// The internal PHY's address.
    pub const PHY_ADDR: u32 = 1;
}

/// PHY registers (IEEE 802.3 clause 22), behind `MII_ACC`.
mod phy {
    pub const BMCR: u32 = 0;
    pub const BMSR: u32 = 1;
    pub const BMCR_RESET: u32 = 1 << 15;
    pub const BMCR_AN_ENABLE: u32 = 1 << 12;
    pub const BMCR_AN_RESTART: u32 = 1 << 9;
    pub const BMSR_LINK: u32 = 1 << 2;
}

/// Largest frame without FCS: the Ethernet header and a 1500-byte payload.
pub const FRAME_LEN: usize = 1514;
/// Shortest frame accepted: an Ethernet header.
const MIN_FRAME: usize = 14;
/// The FCS the chip leaves at the end of each received frame.
const FCS: usize = 4;
/// Frame buffers: a frame and its FCS, in whole words.
const BUF_LEN: usize = (FRAME_LEN + FCS).next_multiple_of(4);
/// Reads of a busy bit before it is given up on (the real chip needs microseconds; a PHY
/// reset, up to a few hundred).
const SPINS: u32 = 100_000;

/// Why the chip cannot be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `BYTE_TEST` read this instead of 0x87654321: wrong bus width, byte order or address.
    ByteOrder(u32),
    /// `PMT_CTRL.READY` never came up.
    NotReady,
    /// `ID_REV` names no LAN911x/921x chip.
    UnknownChip(u32),
    /// `HW_CFG.SRST` never cleared.
    ResetTimeout,
    /// A MAC CSR cycle stayed busy.
    MacCsrTimeout,
    /// A PHY (MII) cycle stayed busy, or the PHY stayed in reset.
    MiiTimeout,
    /// No MAC address was given and the chip loaded none (unicast, not all zeros) at reset.
    NoMacAddress,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Error::ByteOrder(v) => write!(f, "BYTE_TEST reads {v:#010x}, not 0x87654321"),
            Error::NotReady => f.write_str("the chip never became ready"),
            Error::UnknownChip(v) => write!(f, "ID_REV {v:#010x} is no LAN9118-family chip"),
            Error::ResetTimeout => f.write_str("soft reset did not finish"),
            Error::MacCsrTimeout => f.write_str("MAC register access timed out"),
            Error::MiiTimeout => f.write_str("PHY register access timed out"),
            Error::NoMacAddress => f.write_str("no MAC address given and none in the EEPROM"),
        }
    }
}

impl core::error::Error for Error {}

/// The Ethernet CRC-32 as the chip's hash filter computes it: polynomial 0x04C11DB7, register
/// preset to all ones, bits taken least significant first, no final inversion.
pub fn ether_crc(bytes: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in bytes {
        let mut b = byte;
        for _ in 0..8 {
            let carry = (crc >> 31) ^ u32::from(b & 1);
            crc <<= 1;
            if carry != 0 {
                crc ^= 0x04C1_1DB7;
            }
            b >>= 1;
        }
    }
    crc
}

/// The hash-filter bit (0..64) that frames to `mac` pass through.
pub fn hash_bit(mac: [u8; 6]) -> u32 {
    ether_crc(&mac) >> 26
}

/// The Ethernet address of an IPv4 multicast group (RFC 1112: 01:00:5e and the group's low 23
/// bits).
pub fn ipv4_multicast_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5E, o[1] & 0x7F, o[2], o[3]]
}

/// The multicast addresses a [`Lan9118`] lets through, as its 64 hash bits with a count of the
/// addresses behind each (two groups may share a bit). Shared between the receive task, which
/// joins and leaves groups, and the driver, which copies the bits to the chip.
#[derive(Debug)]
pub struct MulticastFilter {
    counts: [AtomicU8; 64],
    generation: AtomicU32,
}

impl MulticastFilter {
    /// A filter that lets no multicast through.
    pub const fn new() -> Self {
        MulticastFilter {
            counts: [const { AtomicU8::new(0) }; 64],
            generation: AtomicU32::new(0),
        }
    }

    /// Lets frames to `mac` through (counted: add twice, remove twice).
    pub fn add(&self, mac: [u8; 6]) {
        let c = &self.counts[hash_bit(mac) as usize];
        // Saturates rather than wraps: a bit stuck on costs filtering, a wrapped one frames.
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_add(1));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Undoes one [`add`](Self::add) of `mac`.
    pub fn remove(&self, mac: [u8; 6]) {
        let c = &self.counts[hash_bit(mac) as usize];
        let _ = c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The hash table: bit `i` is set when some address hashes to `i` (`HASHH` is the high
    /// word, `HASHL` the low one).
    pub fn bits(&self) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.load(Ordering::Acquire) > 0)
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }

    fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }
}

impl Default for MulticastFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl GroupFilter for MulticastFilter {
    fn join(&self, group: Ipv4Addr) {
        self.add(ipv4_multicast_mac(group));
    }

    fn leave(&self, group: Ipv4Addr) {
        self.remove(ipv4_multicast_mac(group));
    }
}

/// What the driver has counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Frames handed to the stack.
    pub rx_frames: u32,
    /// Frames the chip flagged bad, or too short or long for the buffer: dropped.
    pub rx_dropped: u32,
    /// Frames written to the TX FIFO.
    pub tx_frames: u32,
    /// TX status words with the error bit.
    pub tx_errors: u32,
    /// MAC or PHY register cycles that timed out after bring-up.
    pub timeouts: u32,
}

/// The LAN9118 as an embassy-net device.
pub struct Lan9118<'a, R> {
    regs: R,
    mac: [u8; 6],
    filter: &'a MulticastFilter,
    /// The filter generation last written to the chip.
    filter_written: Option<u32>,
    waker: &'a AtomicWaker,
    rx: [u8; BUF_LEN],
    tx: [u8; BUF_LEN],
    stats: Stats,
}

impl<R> core::fmt::Debug for Lan9118<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lan9118")
            .field("mac", &self.mac)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Whether `ID_REV`'s chip ID (its top half) is a LAN9115/9116/9117/9118 or their LAN92xx
/// successors, which share this register interface.
fn known_chip(id_rev: u32) -> bool {
    matches!(
        id_rev >> 16,
        0x0115..=0x0118 | 0x115A | 0x116A | 0x117A | 0x118A | 0x9220 | 0x9221
    )
}

/// A MAC address a chip can use as its own: unicast and not all zeros.
fn usable_mac(mac: [u8; 6]) -> bool {
    mac[0] & 1 == 0 && mac != [0; 6]
}

impl<'a, R: Registers> Lan9118<'a, R> {
    /// Resets and brings up the chip with its MAC address from `mac`; receive and transmit
    /// on, multicast through `filter`. The network task's waker goes into `waker`, for the
    /// board to wake on its timer.
    pub fn new(
        regs: R,
        mac: MacAddress,
        filter: &'a MulticastFilter,
        waker: &'a AtomicWaker,
    ) -> Result<Self, Error> {
        let mut dev = Lan9118 {
            regs,
            mac: [0; 6],
            filter,
            filter_written: None,
            waker,
            rx: [0; BUF_LEN],
            tx: [0; BUF_LEN],
            stats: Stats::default(),
        };
        dev.bring_up(mac)?;
        Ok(dev)
    }

    /// The chip's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// What the driver has counted so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The chip's free-running 25 MHz counter (`FREE_RUN`), for a board without a random
    /// number generator to mix into its seed.
    pub fn free_run(&mut self) -> u32 {
        self.regs.read(reg::FREE_RUN)
    }

    fn bring_up(&mut self, mac: MacAddress) -> Result<(), Error> {
        let test = self.regs.read(reg::BYTE_TEST);
        if test != reg::BYTE_TEST_VALUE {
            return Err(Error::ByteOrder(test));
        }
        self.wait(reg::PMT_CTRL, reg::PMT_CTRL_READY, reg::PMT_CTRL_READY)
            .ok_or(Error::NotReady)?;
        let id = self.regs.read(reg::ID_REV);
        if !known_chip(id) {
            return Err(Error::UnknownChip(id));
        }
        self.regs.write(reg::HW_CFG, reg::HW_CFG_SRST);
        self.wait(reg::HW_CFG, reg::HW_CFG_SRST, 0)
            .ok_or(Error::ResetTimeout)?;
        self.wait(reg::PMT_CTRL, reg::PMT_CTRL_READY, reg::PMT_CTRL_READY)
            .ok_or(Error::NotReady)?;
        self.regs
            .write(reg::HW_CFG, reg::HW_CFG_MBO | reg::HW_CFG_TX_FIF_5K);
        self.regs.write(reg::INT_EN, 0);
        self.regs.write(reg::INT_STS, u32::MAX);
        self.regs.write(reg::IRQ_CFG, 0);

        self.phy_write(phy::BMCR, phy::BMCR_RESET)?;
        let mut spins = 0;
        while self.phy_read(phy::BMCR)? & phy::BMCR_RESET != 0 {
            spins += 1;
            if spins == SPINS {
                return Err(Error::MiiTimeout);
            }
        }
        self.phy_write(phy::BMCR, phy::BMCR_AN_ENABLE | phy::BMCR_AN_RESTART)?;

        let given = match mac {
            MacAddress::Given(m) => Some(m),
            MacAddress::Eeprom { fallback } => {
                let [a, b, c, d] = self.mac_read(mac::ADDRL)?.to_le_bytes();
                let [e, f, ..] = self.mac_read(mac::ADDRH)?.to_le_bytes();
                self.mac = [a, b, c, d, e, f];
                if usable_mac(self.mac) {
                    None
                } else {
                    Some(fallback.ok_or(Error::NoMacAddress)?)
                }
            }
        };
        if let Some(m) = given {
            if !usable_mac(m) {
                return Err(Error::NoMacAddress);
            }
            let [a, b, c, d, e, f] = m;
            self.mac_write(mac::ADDRL, u32::from_le_bytes([a, b, c, d]))?;
            self.mac_write(mac::ADDRH, u32::from_le_bytes([e, f, 0, 0]))?;
            self.mac = m;
        }
        self.write_filter()?;
        self.mac_write(
            mac::MAC_CR,
            mac::MAC_CR_TXEN | mac::MAC_CR_RXEN | mac::MAC_CR_HPFILT,
        )?;
        // Frames start at the first byte of the first word; no padding before them.
        self.regs.write(reg::RX_CFG, 0);
        self.regs.write(reg::TX_CFG, reg::TX_CFG_TX_ON);
        Ok(())
    }

    /// Reads `offset` until `mask` bits equal `want`; `None` if they never do.
    fn wait(&mut self, offset: usize, mask: u32, want: u32) -> Option<()> {
        (0..SPINS).find_map(|_| (self.regs.read(offset) & mask == want).then_some(()))
    }

    fn mac_cycle(&mut self, cmd: u32) -> Result<(), Error> {
        self.wait(reg::MAC_CSR_CMD, reg::MAC_CSR_BUSY, 0)
            .ok_or(Error::MacCsrTimeout)?;
        self.regs.write(reg::MAC_CSR_CMD, reg::MAC_CSR_BUSY | cmd);
        self.wait(reg::MAC_CSR_CMD, reg::MAC_CSR_BUSY, 0)
            .ok_or(Error::MacCsrTimeout)
    }

    fn mac_read(&mut self, index: u32) -> Result<u32, Error> {
        self.mac_cycle(reg::MAC_CSR_READ | index)?;
        Ok(self.regs.read(reg::MAC_CSR_DATA))
    }

    fn mac_write(&mut self, index: u32, value: u32) -> Result<(), Error> {
        self.wait(reg::MAC_CSR_CMD, reg::MAC_CSR_BUSY, 0)
            .ok_or(Error::MacCsrTimeout)?;
        self.regs.write(reg::MAC_CSR_DATA, value);
        self.mac_cycle(index)
    }

    fn mii_idle(&mut self) -> Result<(), Error> {
        for _ in 0..SPINS {
            if self.mac_read(mac::MII_ACC)? & mac::MII_BUSY == 0 {
                return Ok(());
            }
        }
        Err(Error::MiiTimeout)
    }

    fn phy_read(&mut self, index: u32) -> Result<u32, Error> {
        self.mii_idle()?;
        self.mac_write(
            mac::MII_ACC,
            mac::PHY_ADDR << 11 | index << 6 | mac::MII_BUSY,
        )?;
        self.mii_idle()?;
        Ok(self.mac_read(mac::MII_DATA)? & 0xFFFF)
    }

    fn phy_write(&mut self, index: u32, value: u32) -> Result<(), Error> {
        self.mii_idle()?;
        self.mac_write(mac::MII_DATA, value & 0xFFFF)?;
        self.mac_write(
            mac::MII_ACC,
            mac::PHY_ADDR << 11 | index << 6 | mac::MII_WRITE | mac::MII_BUSY,
        )?;
        self.mii_idle()
    }

    fn write_filter(&mut self) -> Result<(), Error> {
        let generation = self.filter.generation();
        let bits = self.filter.bits();
        self.mac_write(mac::HASHH, (bits >> 32) as u32)?;
        self.mac_write(mac::HASHL, bits as u32)?;
        self.filter_written = Some(generation);
        Ok(())
    }

    /// Copies the multicast filter to the chip if it changed since the last copy.
    fn sync_filter(&mut self) {
        if self.filter_written != Some(self.filter.generation()) && self.write_filter().is_err() {
            self.stats.timeouts = self.stats.timeouts.saturating_add(1);
        }
    }

    /// Pops the TX status words of frames sent, counting errors.
    fn drain_tx_status(&mut self) {
        let used = (self.regs.read(reg::TX_FIFO_INF) >> 16) & 0xFF;
        for _ in 0..used {
            if self.regs.read(reg::TX_STATUS_FIFO) & reg::TX_STS_ES != 0 {
                self.stats.tx_errors = self.stats.tx_errors.saturating_add(1);
            }
        }
    }

    /// Whether the TX data FIFO has room for a largest frame and its two command words.
    fn tx_room(&mut self) -> bool {
        self.drain_tx_status();
        let free = (self.regs.read(reg::TX_FIFO_INF) & 0xFFFF) as usize;
        free >= FRAME_LEN.next_multiple_of(4) + 8
    }

    /// Reads the next good frame into the RX buffer and returns its length without FCS,
    /// dropping bad ones on the way; `None` when the RX FIFO is empty.
    fn next_frame(&mut self) -> Option<usize> {
        loop {
            let frames = (self.regs.read(reg::RX_FIFO_INF) >> 16) & 0xFF;
            if frames == 0 {
                return None;
            }
            let status = self.regs.read(reg::RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3FFF) as usize;
            let words = len.div_ceil(4);
            if status & reg::RX_STS_ES != 0 || !(MIN_FRAME + FCS..=BUF_LEN).contains(&len) {
                // The frame's words must still leave the FIFO (a 16 KiB FIFO: at most 4096).
                for _ in 0..words {
                    self.regs.read(reg::RX_DATA_FIFO);
                }
                self.stats.rx_dropped = self.stats.rx_dropped.saturating_add(1);
                continue;
            }
            for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&self.regs.read(reg::RX_DATA_FIFO).to_le_bytes());
            }
            self.stats.rx_frames = self.stats.rx_frames.saturating_add(1);
            return Some(len - FCS);
        }
    }
}

/// Writes one frame to the TX FIFO: command A (first and last segment, its byte count),
/// command B (a tag, the frame length), then its words.
fn send_frame<R: Registers>(regs: &mut R, frame: &[u8], stats: &mut Stats) {
    let len = frame.len() as u32;
    regs.write(
        reg::TX_DATA_FIFO,
        reg::TX_CMD_A_FIRST | reg::TX_CMD_A_LAST | len,
    );
    regs.write(reg::TX_DATA_FIFO, len << 16 | len);
    let mut words = frame.chunks_exact(4);
    for w in &mut words {
        regs.write(
            reg::TX_DATA_FIFO,
            u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
        );
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        regs.write(reg::TX_DATA_FIFO, u32::from_le_bytes(last));
    }
    stats.tx_frames = stats.tx_frames.saturating_add(1);
}

/// A received frame, lent to the stack.
#[derive(Debug)]
pub struct RxToken<'d> {
    frame: &'d mut [u8],
}

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, f: F) -> T {
        f(self.frame)
    }
}

/// Room for one frame in the TX FIFO, checked before the token was handed out.
pub struct TxToken<'d, R> {
    regs: &'d mut R,
    buf: &'d mut [u8; BUF_LEN],
    stats: &'d mut Stats,
}

impl<R> core::fmt::Debug for TxToken<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TxToken").finish_non_exhaustive()
    }
}

impl<R: Registers> embassy_net_driver::TxToken for TxToken<'_, R> {
    fn consume<T, F: FnOnce(&mut [u8]) -> T>(self, len: usize, f: F) -> T {
        // The stack never asks for more than the MTU it was given.
        let frame = &mut self.buf[..len.min(FRAME_LEN)];
        let r = f(frame);
        send_frame(self.regs, frame, self.stats);
        r
    }
}

impl<R: Registers> embassy_net_driver::Driver for Lan9118<'_, R> {
    type RxToken<'d>
        = RxToken<'d>
    where
        Self: 'd;
    type TxToken<'d>
        = TxToken<'d, R>
    where
        Self: 'd;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_, R>)> {
        self.waker.register(cx.waker());
        self.sync_filter();
        // A frame stays in the FIFO until its reply (if any) could be sent.
        if !self.tx_room() {
            return None;
        }
        let len = self.next_frame()?;
        Some((
            RxToken {
                frame: &mut self.rx[..len],
            },
            TxToken {
                regs: &mut self.regs,
                buf: &mut self.tx,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_, R>> {
        self.waker.register(cx.waker());
        if !self.tx_room() {
            return None;
        }
        Some(TxToken {
            regs: &mut self.regs,
            buf: &mut self.tx,
            stats: &mut self.stats,
        })
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        self.waker.register(cx.waker());
        match self.phy_read(phy::BMSR) {
            Ok(bmsr) if bmsr & phy::BMSR_LINK != 0 => LinkState::Up,
            Ok(_) => LinkState::Down,
            Err(_) => {
                self.stats.timeouts = self.stats.timeouts.saturating_add(1);
                LinkState::Down
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = FRAME_LEN;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Waker;
    use embassy_net_driver::{Driver, RxToken as _, TxToken as _};
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::vec::Vec;

    /// A model of the chip's register interface, after the datasheet: FIFOs, the MAC CSR and
    /// MII indirections, a self-clearing soft reset, a PHY with a link bit.
    #[derive(Debug)]
    struct Chip {
        id_rev: u32,
        byte_test: u32,
        hw_cfg: u32,
        /// Reads of `HW_CFG` before a soft reset clears (`u32::MAX`: never).
        reset_reads: u32,
        mac_cmd: u32,
        mac_data: u32,
        mac_regs: [u32; 16],
        phy_regs: [u32; 32],
        phy_resets: u32,
        rx_status: VecDeque<u32>,
        rx_data: VecDeque<u32>,
        tx_words: Vec<u32>,
        tx_frames: Vec<Vec<u8>>,
        tx_status: VecDeque<u32>,
        tx_cfg: u32,
        /// Every register write, in order: (offset, value).
        writes: Vec<(usize, u32)>,
    }

    impl Chip {
        fn new() -> Chip {
            let mut mac_regs = [0; 16];
            // What the EEPROM loaded: 52:54:00:12:34:56.
            mac_regs[mac::ADDRL as usize] = 0x1200_5452;
            mac_regs[mac::ADDRH as usize] = 0x5634;
            let mut phy_regs = [0; 32];
            phy_regs[phy::BMSR as usize] = 0x782D;
            Chip {
                id_rev: 0x0118_0001,
                byte_test: reg::BYTE_TEST_VALUE,
                hw_cfg: 0x0005_0000,
                reset_reads: 0,
                mac_cmd: 0,
                mac_data: 0,
                mac_regs,
                phy_regs,
                phy_resets: 0,
                rx_status: VecDeque::new(),
                rx_data: VecDeque::new(),
                tx_words: Vec::new(),
                tx_frames: Vec::new(),
                tx_status: VecDeque::new(),
                tx_cfg: 0,
                writes: Vec::new(),
            }
        }

        /// Puts a received frame (with a 4-byte FCS) into the RX FIFOs.
        fn deliver(&mut self, frame: &[u8], error: bool) {
            let mut bytes = frame.to_vec();
            bytes.extend_from_slice(&[0xFC; FCS]);
            let status = (bytes.len() as u32) << 16 | if error { reg::RX_STS_ES } else { 0 };
            self.rx_status.push_back(status);
            for w in bytes.chunks(4) {
                let mut word = [0u8; 4];
                word[..w.len()].copy_from_slice(w);
                self.rx_data.push_back(u32::from_le_bytes(word));
            }
        }

        /// Turns the TX FIFO's words into frames once a frame's last word is in.
        fn parse_tx(&mut self) {
            loop {
                if self.tx_words.len() < 2 {
                    return;
                }
                let (a, b) = (self.tx_words[0], self.tx_words[1]);
                assert_eq!(
                    a & (reg::TX_CMD_A_FIRST | reg::TX_CMD_A_LAST),
                    reg::TX_CMD_A_FIRST | reg::TX_CMD_A_LAST,
                    "one segment per frame"
                );
                let size = (a & 0x7FF) as usize;
                assert_eq!(
                    size,
                    (b & 0x7FF) as usize,
                    "command B's length is command A's"
                );
                let words = size.div_ceil(4);
                if self.tx_words.len() < 2 + words {
                    return;
                }
                let data: Vec<u8> = self.tx_words[2..2 + words]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .take(size)
                    .collect();
                self.tx_words.drain(..2 + words);
                self.tx_frames.push(data);
                self.tx_status.push_back(b & 0xFFFF_0000);
            }
        }
    }

    impl Registers for Chip {
        fn read(&mut self, offset: usize) -> u32 {
            match offset {
                reg::RX_DATA_FIFO => self.rx_data.pop_front().expect("RX data FIFO underrun"),
                reg::RX_STATUS_FIFO => self.rx_status.pop_front().expect("RX status underrun"),
                reg::TX_STATUS_FIFO => self.tx_status.pop_front().expect("TX status underrun"),
                reg::ID_REV => self.id_rev,
                reg::BYTE_TEST => self.byte_test,
                reg::HW_CFG => {
                    if self.hw_cfg & reg::HW_CFG_SRST != 0 {
                        if self.reset_reads == 0 {
                            self.hw_cfg &= !reg::HW_CFG_SRST;
                        } else {
                            self.reset_reads = self.reset_reads.saturating_sub(1);
                        }
                    }
                    self.hw_cfg
                }
                reg::PMT_CTRL => reg::PMT_CTRL_READY,
                reg::RX_FIFO_INF => {
                    (self.rx_status.len() as u32) << 16 | (self.rx_data.len() as u32 * 4)
                }
                reg::TX_FIFO_INF => {
                    let free = 5 * 1024 - 512 - self.tx_words.len() as u32 * 4;
                    (self.tx_status.len() as u32) << 16 | free
                }
                reg::FREE_RUN => 12345,
                reg::MAC_CSR_CMD => self.mac_cmd,
                reg::MAC_CSR_DATA => self.mac_data,
                reg::TX_CFG => self.tx_cfg,
                _ => 0,
            }
        }

        fn write(&mut self, offset: usize, value: u32) {
            self.writes.push((offset, value));
            match offset {
                reg::TX_DATA_FIFO => {
                    self.tx_words.push(value);
                    self.parse_tx();
                }
                reg::HW_CFG => self.hw_cfg = value,
                reg::TX_CFG => self.tx_cfg = value,
                reg::MAC_CSR_DATA => self.mac_data = value,
                reg::MAC_CSR_CMD => {
                    assert_ne!(value & reg::MAC_CSR_BUSY, 0, "a cycle starts with BUSY set");
                    let index = (value & 0xFF) as usize;
                    if value & reg::MAC_CSR_READ != 0 {
                        self.mac_data = self.mac_regs[index];
                    } else {
                        self.mac_regs[index] = self.mac_data;
                        if index == mac::MII_ACC as usize {
                            assert_eq!(self.mac_data >> 11 & 0x1F, mac::PHY_ADDR);
                            let phy_reg = (self.mac_data >> 6 & 0x1F) as usize;
                            if self.mac_data & mac::MII_WRITE != 0 {
                                let v = self.mac_regs[mac::MII_DATA as usize];
                                if phy_reg == phy::BMCR as usize && v & phy::BMCR_RESET != 0 {
                                    self.phy_resets += 1;
                                } else {
                                    self.phy_regs[phy_reg] = v;
                                }
                            } else {
                                self.mac_regs[mac::MII_DATA as usize] = self.phy_regs[phy_reg];
                            }
                            self.mac_regs[mac::MII_ACC as usize] &= !mac::MII_BUSY;
                        }
                    }
                    self.mac_cmd = value & !reg::MAC_CSR_BUSY;
                }
                _ => {}
            }
        }
    }

    /// A handle on a shared chip, so that a test can look at it while the driver owns one.
    #[derive(Debug, Clone)]
    struct Shared(Rc<RefCell<Chip>>);

    impl Registers for Shared {
        fn read(&mut self, offset: usize) -> u32 {
            self.0.borrow_mut().read(offset)
        }

        fn write(&mut self, offset: usize, value: u32) {
            self.0.borrow_mut().write(offset, value)
        }
    }

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// A UDP-sized frame to `dst` whose bytes count up from `seed`.
    fn frame(dst: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
        let mut f: Vec<u8> = (0..len).map(|i| seed.wrapping_add(i as u8)).collect();
        f[..6].copy_from_slice(&dst);
        f
    }

    const OWN: [u8; 6] = [0x02, 0x00, 0x75, 0x66, 0x74, 0x70];
    const EEPROM: MacAddress = MacAddress::Eeprom { fallback: None };

    #[test]
    fn ether_crc_is_the_reflected_crc32_inverted_and_bit_reversed() {
        // CRC-32/IEEE (zlib's) of "123456789" is 0xCBF43926; the chip's form keeps the
        // register un-inverted and most significant bit first.
        assert_eq!(ether_crc(b"123456789"), (!0xCBF4_3926u32).reverse_bits());
        assert_eq!(ether_crc(b""), u32::MAX);
    }

    #[test]
    fn ipv4_groups_map_to_their_ethernet_addresses_and_hash_bits() {
        let g = Ipv4Addr::new(230, 4, 4, 1);
        assert_eq!(ipv4_multicast_mac(g), [0x01, 0x00, 0x5E, 0x04, 0x04, 0x01]);
        // The high bit of the group's second octet is not part of the address.
        assert_eq!(
            ipv4_multicast_mac(Ipv4Addr::new(239, 132, 4, 1)),
            [0x01, 0x00, 0x5E, 0x04, 0x04, 0x01]
        );
        let mac = ipv4_multicast_mac(g);
        assert_eq!(hash_bit(mac), ether_crc(&mac) >> 26);
        assert!(hash_bit(mac) < 64);
    }

    #[test]
    fn the_filter_counts_groups_per_bit() {
        let f = MulticastFilter::new();
        assert_eq!(f.bits(), 0);
        let a = ipv4_multicast_mac(Ipv4Addr::new(230, 4, 4, 1));
        let bit = 1u64 << hash_bit(a);
        let g0 = f.generation();
        f.add(a);
        f.add(a);
        assert_eq!(f.bits(), bit);
        assert_ne!(f.generation(), g0);
        f.remove(a);
        assert_eq!(f.bits(), bit, "still joined once");
        f.remove(a);
        assert_eq!(f.bits(), 0);
        f.remove(a);
        assert_eq!(f.bits(), 0, "an extra leave does not wrap the count");
        f.join(Ipv4Addr::new(230, 4, 4, 1));
        assert_eq!(f.bits(), bit);
        f.leave(Ipv4Addr::new(230, 4, 4, 1));
        assert_eq!(f.bits(), 0);
    }

    #[test]
    fn bring_up_resets_the_chip_and_turns_the_mac_on() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        chip.borrow_mut().reset_reads = 3;
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        filter.join(Ipv4Addr::new(230, 4, 4, 1));
        let dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        assert_eq!(dev.mac_address(), OWN);
        assert_eq!(dev.hardware_address(), HardwareAddress::Ethernet(OWN));
        let c = chip.borrow();
        assert_eq!(
            c.writes[0],
            (reg::HW_CFG, reg::HW_CFG_SRST),
            "soft reset first"
        );
        assert_eq!(c.hw_cfg, reg::HW_CFG_MBO | reg::HW_CFG_TX_FIF_5K);
        assert_eq!(c.phy_resets, 1);
        assert_eq!(
            c.phy_regs[phy::BMCR as usize],
            phy::BMCR_AN_ENABLE | phy::BMCR_AN_RESTART
        );
        assert_eq!(c.mac_regs[mac::ADDRL as usize], 0x6675_0002);
        assert_eq!(c.mac_regs[mac::ADDRH as usize], 0x7074);
        let bits = filter.bits();
        assert_eq!(c.mac_regs[mac::HASHH as usize], (bits >> 32) as u32);
        assert_eq!(c.mac_regs[mac::HASHL as usize], bits as u32);
        assert_ne!(bits, 0);
        assert_eq!(
            c.mac_regs[mac::MAC_CR as usize],
            mac::MAC_CR_TXEN | mac::MAC_CR_RXEN | mac::MAC_CR_HPFILT
        );
        assert_eq!(c.tx_cfg, reg::TX_CFG_TX_ON);
    }

    #[test]
    fn without_a_given_address_the_eeprom_one_is_used() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let dev = Lan9118::new(Shared(chip.clone()), EEPROM, &filter, &waker).unwrap();
        assert_eq!(dev.mac_address(), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        // An empty EEPROM (all zeros) is no address.
        let mut blank = Chip::new();
        blank.mac_regs[mac::ADDRL as usize] = 0;
        blank.mac_regs[mac::ADDRH as usize] = 0;
        let chip = Rc::new(RefCell::new(blank));
        let r = Lan9118::new(Shared(chip.clone()), EEPROM, &filter, &waker);
        assert_eq!(r.err(), Some(Error::NoMacAddress));
        // With a fallback, that one is written to the chip.
        let fallback = MacAddress::Eeprom {
            fallback: Some(OWN),
        };
        let dev = Lan9118::new(Shared(chip.clone()), fallback, &filter, &waker).unwrap();
        assert_eq!(dev.mac_address(), OWN);
        assert_eq!(chip.borrow().mac_regs[mac::ADDRL as usize], 0x6675_0002);
        // A multicast address is refused as the chip's own.
        let r = Lan9118::new(Chip::new(), MacAddress::Given([1; 6]), &filter, &waker);
        assert_eq!(r.err(), Some(Error::NoMacAddress));
    }

    #[test]
    fn a_wrong_chip_or_bus_is_refused() {
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut c = Chip::new();
        c.byte_test = 0x4321_8765;
        let r = Lan9118::new(c, EEPROM, &filter, &waker);
        assert_eq!(r.err(), Some(Error::ByteOrder(0x4321_8765)));
        let mut c = Chip::new();
        c.id_rev = 0x1234_0001;
        let r = Lan9118::new(c, EEPROM, &filter, &waker);
        assert_eq!(r.err(), Some(Error::UnknownChip(0x1234_0001)));
        let mut c = Chip::new();
        c.reset_reads = u32::MAX;
        let r = Lan9118::new(c, EEPROM, &filter, &waker);
        assert_eq!(r.err(), Some(Error::ResetTimeout));
    }

    #[test]
    fn received_frames_come_out_whole_without_fcs_and_bad_ones_are_dropped() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        let mut cx = cx();
        assert!(dev.receive(&mut cx).is_none(), "nothing yet");
        // Lengths on and off word boundaries, a flagged frame, a runt and the largest frame.
        let good = [
            frame(OWN, 60, 1),
            frame(OWN, 1013, 2),
            frame(OWN, FRAME_LEN, 3),
        ];
        {
            let mut c = chip.borrow_mut();
            c.deliver(&good[0], false);
            c.deliver(&frame(OWN, 300, 9), true);
            c.deliver(&good[1], false);
            c.deliver(&[0xAA; 10], false);
            c.deliver(&good[2], false);
        }
        for want in &good {
            let (rx, _tx) = dev.receive(&mut cx).expect("a frame");
            rx.consume(|f| assert_eq!(f, &want[..]));
        }
        assert!(dev.receive(&mut cx).is_none());
        let c = chip.borrow();
        assert!(
            c.rx_status.is_empty() && c.rx_data.is_empty(),
            "FIFOs drained"
        );
        let s = dev.stats();
        assert_eq!((s.rx_frames, s.rx_dropped), (3, 2));
    }

    #[test]
    fn a_frame_too_long_for_the_buffer_is_skipped_whole() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        chip.borrow_mut().deliver(&frame(OWN, 1800, 4), false);
        chip.borrow_mut().deliver(&frame(OWN, 100, 5), false);
        let (rx, _) = dev.receive(&mut cx()).expect("the frame after it");
        rx.consume(|f| assert_eq!(f, &frame(OWN, 100, 5)[..]));
        assert_eq!(dev.stats().rx_dropped, 1);
    }

    #[test]
    fn sent_frames_are_framed_by_the_two_command_words() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        let mut cx = cx();
        let frames = [
            frame([0xFF; 6], 42, 7),
            frame([1; 6], 1514, 8),
            frame([3; 6], 61, 9),
        ];
        for f in &frames {
            let tx = dev.transmit(&mut cx).expect("room");
            tx.consume(f.len(), |buf| buf.copy_from_slice(f));
        }
        assert_eq!(chip.borrow().tx_frames, frames);
        // Each poll pops the status words of the frames sent before it.
        assert_eq!(chip.borrow().tx_status.len(), 1);
        assert!(dev.transmit(&mut cx).is_some());
        assert!(chip.borrow().tx_status.is_empty());
        assert_eq!(dev.stats().tx_frames, 3);
        // A reply through the token that comes with a received frame goes out the same way.
        chip.borrow_mut().deliver(&frame(OWN, 64, 1), false);
        let (_, tx) = dev.receive(&mut cx).unwrap();
        tx.consume(50, |buf| buf.fill(0x5A));
        assert_eq!(chip.borrow().tx_frames[3], std::vec![0x5A; 50]);
    }

    #[test]
    fn a_full_tx_fifo_holds_frames_back() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        // An unfinished frame fills the FIFO past the room a largest frame needs.
        chip.borrow_mut().tx_words =
            std::vec![reg::TX_CMD_A_FIRST | reg::TX_CMD_A_LAST | 2000; 800];
        chip.borrow_mut().deliver(&frame(OWN, 64, 1), false);
        let mut cx = cx();
        assert!(dev.transmit(&mut cx).is_none());
        assert!(
            dev.receive(&mut cx).is_none(),
            "no frame taken without room to reply"
        );
        assert_eq!(chip.borrow().rx_status.len(), 1);
    }

    #[test]
    fn joined_groups_reach_the_hash_registers_on_the_next_poll() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        let hash = |c: &Chip| {
            u64::from(c.mac_regs[mac::HASHH as usize]) << 32
                | u64::from(c.mac_regs[mac::HASHL as usize])
        };
        assert_eq!(hash(&chip.borrow()), 0);
        let g = Ipv4Addr::new(230, 5, 5, 77);
        filter.join(g);
        dev.receive(&mut cx());
        assert_eq!(hash(&chip.borrow()), 1 << hash_bit(ipv4_multicast_mac(g)));
        let writes = chip.borrow().writes.len();
        dev.receive(&mut cx());
        assert_eq!(
            chip.borrow().writes.len(),
            writes,
            "unchanged: not rewritten"
        );
        filter.leave(g);
        dev.receive(&mut cx());
        assert_eq!(hash(&chip.borrow()), 0);
    }

    #[test]
    fn link_state_is_the_phys_link_bit() {
        let chip = Rc::new(RefCell::new(Chip::new()));
        let (filter, waker) = (MulticastFilter::new(), AtomicWaker::new());
        let mut dev = Lan9118::new(
            Shared(chip.clone()),
            MacAddress::Given(OWN),
            &filter,
            &waker,
        )
        .unwrap();
        assert!(dev.link_state(&mut cx()) == LinkState::Up);
        chip.borrow_mut().phy_regs[phy::BMSR as usize] &= !phy::BMSR_LINK;
        assert!(dev.link_state(&mut cx()) == LinkState::Down);
        assert_eq!(dev.capabilities().max_transmission_unit, FRAME_LEN);
        assert_eq!(dev.free_run(), 12345);
    }
}
