//! The firmware's [`Storage`]: a received file is an update image, written into embassy-boot's
//! DFU partition on a [`NorFlash`] and, once every block is stored and its SHA-256 read back from
//! flash, marked for swap in the bootloader's state partition (embassy-boot's
//! [`BlockingFirmwareState`]).
//!
//! # Out-of-order blocks on write-once flash
//!
//! Blocks arrive in any order (retransmissions fill holes long after their neighbours), but NOR
//! flash is programmed in aligned write units (`WRITE_SIZE`: 32 bytes on the STM32H7, whose ECC
//! forbids programming a unit twice) that must be erased first, and UFTP's block size (1300 by
//! default) is no multiple of that. So a block's aligned middle is programmed at once, and each
//! unit that straddles the boundary between two blocks is programmed when the second of the two
//! arrives. The first one's share of such a unit waits in a *fragment slot*: two write units per
//! boundary (one per side), in the DFU partition right after the image, whose own bytes stay
//! 0xFF elsewhere. Every unit of flash is therefore programmed at most once per image, and the
//! storage keeps no copy of block data in RAM: its memory is the block map and one bit per
//! erase sector.
//!
//! Sectors are erased lazily, the first time a write touches them after the image was opened,
//! so that the first FILEINFO is answered at once rather than after erasing the whole partition.
//!
//! # The bootloader state
//!
//! Opening an image cancels a swap that an earlier image had requested but that has not run yet
//! (the partition is about to be overwritten); an image that is discarded or never completes
//! leaves the state at "boot the active image". Only [`finish`](Storage::finish) marks the
//! partition for swap.

use core::fmt;

use embassy_boot::{BlockingFirmwareState, State};
use embedded_storage::nor_flash::NorFlash;
use proto_core::session::nak;
use proto_core::session::receiver::{Item, ItemKind, Reject, SessionId, Storage};
use sha2::{Digest, Sha256};

/// Largest flash write unit supported.
pub const MAX_WRITE_SIZE: usize = 64;
/// Most erase sectors a DFU partition may have.
pub const MAX_SECTORS: usize = 2048;
/// Bytes of an image's name kept for the log (longer names are cut).
pub const NAME_LEN: usize = 64;
/// Bytes read at a time when the stored image is hashed.
const READ_CHUNK: usize = 256;

/// Why a [`FlashStorage`] cannot work on the given flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupError {
    /// The flash's write unit is larger than [`MAX_WRITE_SIZE`], or not a multiple of its read
    /// unit, or its read unit does not divide the hash chunk.
    WriteSize {
        /// The flash's `WRITE_SIZE`.
        write_size: usize,
        /// The flash's `READ_SIZE`.
        read_size: usize,
    },
    /// The DFU partition has more erase sectors than [`MAX_SECTORS`], or is not a whole number
    /// of them.
    Sectors {
        /// Its capacity.
        capacity: usize,
        /// Its erase size.
        erase_size: usize,
    },
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SetupError::WriteSize {
                write_size,
                read_size,
            } => write!(
                f,
                "unsupported flash geometry: write unit {write_size}, read unit {read_size}"
            ),
            SetupError::Sectors {
                capacity,
                erase_size,
            } => write!(
                f,
                "DFU partition of {capacity} bytes is not at most {MAX_SECTORS} sectors of \
                 {erase_size}"
            ),
        }
    }
}

/// An image that was stored completely and marked for swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredImage {
    /// The session it came in.
    pub session: SessionId,
    /// Its file ID in that session.
    pub file_id: u16,
    /// Its size in bytes.
    pub size: u32,
    /// SHA-256 of the image as read back from the DFU partition.
    pub sha256: [u8; 32],
    name: ImageName,
}

impl StoredImage {
    /// The name it was sent under (its first [`NAME_LEN`] bytes).
    pub fn name(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

/// The first [`NAME_LEN`] bytes of a name, in a `Copy` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ImageName {
    bytes: [u8; NAME_LEN],
    len: u8,
}

impl ImageName {
    fn new(name: &[u8]) -> Self {
        let mut bytes = [0; NAME_LEN];
        let len = name.len().min(NAME_LEN);
        bytes[..len].copy_from_slice(&name[..len]);
        ImageName {
            bytes,
            len: len as u8,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

#[derive(Debug, Clone, Copy)]
struct OpenImage {
    session: SessionId,
    file_id: u16,
    size: u32,
    blocksize: u32,
    blocks: u32,
    /// Offset of the fragment slots in the DFU partition.
    slots: u32,
    name: ImageName,
}

/// Which block of a boundary a fragment belongs to: `Lo` the one before it, `Hi` the one after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Lo,
    Hi,
}

/// Update images on NOR flash, for embassy-boot; `MAP` bytes of block map bound the blocks of
/// an image (8 × `MAP`).
pub struct FlashStorage<'s, DFU, STATE, const MAP: usize> {
    dfu: DFU,
    state: BlockingFirmwareState<'s, STATE>,
    max_image: u32,
    open: Option<OpenImage>,
    map: [u8; MAP],
    erased: [u8; MAX_SECTORS / 8],
    stored: Option<StoredImage>,
    flash_errors: u32,
}

impl<DFU, STATE, const MAP: usize> fmt::Debug for FlashStorage<'_, DFU, STATE, MAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlashStorage")
            .field("max_image", &self.max_image)
            .field("open", &self.open)
            .field("stored", &self.stored)
            .field("flash_errors", &self.flash_errors)
            .finish_non_exhaustive()
    }
}

fn align_down(x: u32, unit: u32) -> u32 {
    x - x % unit
}

fn align_up(x: u32, unit: u32) -> u32 {
    x.div_ceil(unit) * unit
}

impl<'s, DFU: NorFlash, STATE: NorFlash, const MAP: usize> FlashStorage<'s, DFU, STATE, MAP> {
    const UNIT: u32 = DFU::WRITE_SIZE as u32;
    const SECTOR: u32 = DFU::ERASE_SIZE as u32;

    /// Storage for images of at most `max_image` bytes in the DFU partition `dfu`, marked for
    /// swap through `state` (embassy-boot's view of its state partition).
    pub fn new(
        dfu: DFU,
        state: BlockingFirmwareState<'s, STATE>,
        max_image: u32,
    ) -> Result<Self, SetupError> {
        let (w, r) = (DFU::WRITE_SIZE, DFU::READ_SIZE);
        if w == 0 || w > MAX_WRITE_SIZE || r == 0 || w % r != 0 || !READ_CHUNK.is_multiple_of(r) {
            return Err(SetupError::WriteSize {
                write_size: w,
                read_size: r,
            });
        }
        let (capacity, erase_size) = (dfu.capacity(), DFU::ERASE_SIZE);
        if erase_size == 0
            || erase_size % w != 0
            || capacity % erase_size != 0
            || capacity / erase_size > MAX_SECTORS
            || u32::try_from(capacity).is_err()
        {
            return Err(SetupError::Sectors {
                capacity,
                erase_size,
            });
        }
        Ok(FlashStorage {
            dfu,
            state,
            max_image,
            open: None,
            map: [0; MAP],
            erased: [0; MAX_SECTORS / 8],
            stored: None,
            flash_errors: 0,
        })
    }

    /// Bytes of the DFU partition an image of `size` bytes in blocks of `blocksize` needs: the
    /// image rounded up to the write unit, and two write units per block boundary.
    pub fn space_needed(size: u32, blocksize: u32) -> u64 {
        let blocks = u64::from(size.div_ceil(blocksize.max(1)));
        u64::from(align_up(size, Self::UNIT)) + blocks.saturating_sub(1) * 2 * u64::from(Self::UNIT)
    }

    /// The DFU partition's size.
    pub fn capacity(&self) -> u32 {
        // Checked to fit in `new`.
        u32::try_from(self.dfu.capacity()).unwrap_or(u32::MAX)
    }

    /// The last image stored and marked for swap, if any.
    pub fn stored(&self) -> Option<StoredImage> {
        self.stored
    }

    /// Flash operations that failed so far.
    pub fn flash_errors(&self) -> u32 {
        self.flash_errors
    }

    /// Tells the bootloader that the running firmware works: no revert on the next reset.
    pub fn confirm_boot(&mut self) -> Result<(), Reject> {
        let r = self.state.mark_booted();
        self.io(r)
    }

    /// The bootloader state as read from flash (`None` if it cannot be read).
    pub fn boot_state(&mut self) -> Option<State> {
        self.state.get_state().ok()
    }

    fn io<T, E>(&mut self, r: Result<T, E>) -> Result<T, Reject> {
        r.map_err(|_| {
            self.flash_errors = self.flash_errors.saturating_add(1);
            Reject::Io
        })
    }

    /// Erases every sector of `[from, to)` not yet erased for this image.
    fn erase_for(&mut self, from: u32, to: u32) -> Result<(), Reject> {
        if to <= from {
            return Ok(());
        }
        for sector in from / Self::SECTOR..=(to - 1) / Self::SECTOR {
            let i = sector as usize;
            if nak::get(&self.erased, i) {
                continue;
            }
            let start = sector * Self::SECTOR;
            let r = self.dfu.erase(start, start + Self::SECTOR);
            self.io(r)?;
            nak::set(&mut self.erased, i);
        }
        Ok(())
    }

    /// Programs `data` (whole write units) at `at`, erasing first where needed.
    fn program(&mut self, at: u32, data: &[u8]) -> Result<(), Reject> {
        let end = at + data.len() as u32;
        if end as usize > self.dfu.capacity() {
            return Err(Reject::NoSpace);
        }
        self.erase_for(at, end)?;
        let r = self.dfu.write(at, data);
        self.io(r)
    }

    /// Where boundary `k`'s fragment from `side` waits.
    fn slot(img: &OpenImage, k: u32, side: Side) -> u32 {
        let base = img.slots + (k - 1) * 2 * Self::UNIT;
        match side {
            Side::Lo => base,
            Side::Hi => base + Self::UNIT,
        }
    }

    /// Delivers block `side`'s share `frag` of the write unit that straddles the boundary before
    /// block `k`: programs the unit if the other block is stored (its share is in its slot),
    /// otherwise puts this share in its own slot.
    fn deliver(&mut self, img: &OpenImage, k: u32, side: Side, frag: &[u8]) -> Result<(), Reject> {
        let w = Self::UNIT as usize;
        let boundary = k * img.blocksize;
        let unit_at = align_down(boundary, Self::UNIT);
        let cut = (boundary - unit_at) as usize;
        let mut unit = [0xFFu8; MAX_WRITE_SIZE];
        match side {
            Side::Lo => unit[cut - frag.len()..cut].copy_from_slice(frag),
            Side::Hi => unit[cut..cut + frag.len()].copy_from_slice(frag),
        }
        let (other_block, other_side) = match side {
            Side::Lo => (k, Side::Hi),
            Side::Hi => (k - 1, Side::Lo),
        };
        if nak::get(&self.map, other_block as usize) {
            let mut other = [0xFFu8; MAX_WRITE_SIZE];
            let r = self
                .dfu
                .read(Self::slot(img, k, other_side), &mut other[..w]);
            self.io(r)?;
            match other_side {
                Side::Lo => unit[..cut].copy_from_slice(&other[..cut]),
                Side::Hi => unit[cut..w].copy_from_slice(&other[cut..w]),
            }
            self.program(unit_at, &unit[..w])
        } else {
            self.program(Self::slot(img, k, side), &unit[..w])
        }
    }

    /// Stores block `b` (`data`, starting at byte `s` of the image).
    fn store_block(&mut self, img: &OpenImage, b: u32, data: &[u8]) -> Result<(), Reject> {
        let w = Self::UNIT;
        let s = b * img.blocksize;
        let e = s + data.len() as u32;
        // The unit holding `s`, shared with block b-1 unless `s` is aligned.
        let mut body_from = s;
        if !s.is_multiple_of(w) {
            let unit_end = (align_down(s, w) + w).min(img.size);
            let n = (unit_end.min(e) - s) as usize;
            self.deliver(img, b, Side::Hi, &data[..n])?;
            body_from = align_down(s, w) + w;
        }
        // The unit holding `e`, shared with block b+1 unless `e` is aligned or the end.
        let mut body_to = e;
        if !e.is_multiple_of(w) && e < img.size {
            let unit_at = align_down(e, w);
            self.deliver(img, b + 1, Side::Lo, &data[(unit_at - s) as usize..])?;
            body_to = unit_at;
        }
        if body_from >= body_to {
            return Ok(());
        }
        // The units only this block fills: whole ones straight from the datagram, and the
        // image's last one padded with 0xFF.
        let whole_to = align_down(body_to, w);
        if whole_to > body_from {
            let from = (body_from - s) as usize;
            let to = (whole_to - s) as usize;
            self.program(body_from, &data[from..to])?;
        }
        if body_to > whole_to {
            let mut unit = [0xFFu8; MAX_WRITE_SIZE];
            let tail = &data[(whole_to - s) as usize..(body_to - s) as usize];
            unit[..tail.len()].copy_from_slice(tail);
            self.program(whole_to, &unit[..w as usize])?;
        }
        Ok(())
    }

    fn image(&self, session: SessionId, file_id: u16) -> Result<OpenImage, Reject> {
        self.open
            .filter(|i| i.session == session && i.file_id == file_id)
            .ok_or(Reject::Io)
    }

    fn sha256(&mut self, size: u32) -> Result<[u8; 32], Reject> {
        let mut hash = Sha256::new();
        let mut buf = [0u8; READ_CHUNK];
        let r = DFU::READ_SIZE as u32;
        let mut at = 0;
        while at < size {
            let n = (size - at).min(READ_CHUNK as u32);
            let read = self.dfu.read(at, &mut buf[..align_up(n, r) as usize]);
            self.io(read)?;
            hash.update(&buf[..n as usize]);
            at += n;
        }
        Ok(hash.finalize().into())
    }
}

impl<DFU: NorFlash, STATE: NorFlash, const MAP: usize> Storage
    for FlashStorage<'_, DFU, STATE, MAP>
{
    fn open(&mut self, item: &Item<'_>) -> Result<(), Reject> {
        if item.kind != ItemKind::Regular {
            // An update is one file; directories, links and deletions have no place in flash.
            return Err(Reject::Unsupported);
        }
        let size = u32::try_from(item.size).map_err(|_| Reject::NoSpace)?;
        let blocksize = u32::from(item.layout.blocksize);
        if blocksize < Self::UNIT || item.layout.bitmap_len() > MAP {
            return Err(Reject::Unsupported);
        }
        if size > self.max_image || Self::space_needed(size, blocksize) > self.dfu.capacity() as u64
        {
            return Err(Reject::NoSpace);
        }
        // The partition is about to change: a swap still pending for an earlier image must not
        // run on what is left of it.
        let state = self.state.get_state();
        if self.io(state)? == State::Swap {
            let r = self.state.mark_booted();
            self.io(r)?;
        }
        self.erased = [0; MAX_SECTORS / 8];
        self.open = Some(OpenImage {
            session: item.session,
            file_id: item.file_id,
            size,
            blocksize,
            blocks: item.layout.blocks,
            slots: align_up(size, Self::UNIT),
            name: ImageName::new(item.name),
        });
        Ok(())
    }

    fn block_map(&mut self, session: SessionId) -> Option<&mut [u8]> {
        match self.open {
            Some(i) if i.session == session => Some(&mut self.map[..]),
            _ => None,
        }
    }

    fn write(
        &mut self,
        session: SessionId,
        file_id: u16,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Reject> {
        let img = self.image(session, file_id)?;
        let offset = u32::try_from(offset).map_err(|_| Reject::Io)?;
        let b = offset / img.blocksize;
        let expected = (img.size - offset.min(img.size)).min(img.blocksize) as usize;
        if offset % img.blocksize != 0 || b >= img.blocks || data.len() != expected {
            return Err(Reject::Io);
        }
        self.store_block(&img, b, data)
    }

    fn finish(&mut self, session: SessionId, file_id: u16) -> Result<(), Reject> {
        let img = self.image(session, file_id)?;
        if nak::count(&self.map, img.blocks as usize) != img.blocks as usize {
            return Err(Reject::Io);
        }
        let sha256 = self.sha256(img.size)?;
        let r = self.state.mark_updated();
        self.io(r)?;
        self.open = None;
        self.stored = Some(StoredImage {
            session,
            file_id,
            size: img.size,
            sha256,
            name: img.name,
        });
        Ok(())
    }

    fn discard(&mut self, session: SessionId, file_id: u16) {
        if self.image(session, file_id).is_ok() {
            self.open = None;
        }
    }

    fn free_space(&mut self, _session: SessionId) -> Option<u64> {
        Some(u64::from(self.max_image.min(self.capacity())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram_flash::RamFlash;
    use proto_core::session::FileLayout;
    use std::vec::Vec;

    const W: usize = 32;
    const E: usize = 4096;
    type Flash = RamFlash<W, E>;

    fn session() -> SessionId {
        SessionId {
            group_id: 0x1234,
            group_inst: 0,
        }
    }

    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Some runs of 0xFF, the erased value, must survive too.
                if x.is_multiple_of(11) {
                    0xFF
                } else {
                    x as u8
                }
            })
            .collect()
    }

    struct Bed {
        state_buf: [u8; W],
        dfu: Flash,
        state: Flash,
    }

    impl Bed {
        fn new(dfu_len: usize) -> Bed {
            Bed {
                state_buf: [0; W],
                dfu: Flash::new(dfu_len),
                state: Flash::new(E),
            }
        }

        fn storage(&mut self, max_image: u32) -> FlashStorage<'_, &mut Flash, &mut Flash, 512> {
            let state = BlockingFirmwareState::new(&mut self.state, &mut self.state_buf);
            FlashStorage::new(&mut self.dfu, state, max_image).unwrap()
        }
    }

    fn item(size: usize, blocksize: u16) -> Item<'static> {
        Item {
            session: session(),
            file_id: 1,
            name: b"update.bin",
            kind: ItemKind::Regular,
            size: size as u64,
            mtime: 0,
            layout: FileLayout::new(size as u64, blocksize).unwrap(),
        }
    }

    /// Receives `image` in blocks of `blocksize`, in the block order `order`, as the core would.
    fn receive(
        st: &mut FlashStorage<'_, &mut Flash, &mut Flash, 512>,
        image: &[u8],
        blocksize: u16,
        order: &[u32],
    ) -> Result<(), Reject> {
        let it = item(image.len(), blocksize);
        st.open(&it)?;
        st.block_map(session()).unwrap().fill(0);
        for &b in order {
            let off = it.layout.offset(b);
            let len = it.layout.block_len(b);
            let data = &image[off as usize..off as usize + len];
            st.write(session(), 1, off, data)?;
            nak::set(st.block_map(session()).unwrap(), b as usize);
        }
        st.finish(session(), 1)
    }

    fn check(image: &[u8], blocksize: u16, order: &[u32]) {
        let mut bed = Bed::new(64 * E);
        let mut st = bed.storage(u32::MAX);
        receive(&mut st, image, blocksize, order).unwrap();
        let stored = st.stored().unwrap();
        assert_eq!(stored.size as usize, image.len());
        assert_eq!(stored.name(), b"update.bin");
        assert_eq!(stored.sha256, <[u8; 32]>::from(Sha256::digest(image)));
        assert_eq!(st.boot_state(), Some(State::Swap));
        assert_eq!(&bed.dfu.bytes()[..image.len()], image);
        // Past the image, up to its last write unit, the flash is padded with 0xFF.
        let end = align_up(image.len() as u32, W as u32) as usize;
        assert!(bed.dfu.bytes()[image.len()..end].iter().all(|&b| b == 0xFF));
    }

    fn orders(blocks: u32) -> Vec<Vec<u32>> {
        let forward: Vec<u32> = (0..blocks).collect();
        let backward: Vec<u32> = (0..blocks).rev().collect();
        // Evens then odds: every boundary unit is finished by its second block.
        let interleaved: Vec<u32> = (0..blocks)
            .step_by(2)
            .chain((1..blocks).step_by(2))
            .collect();
        // A pseudo-random permutation, as losses and retransmissions produce.
        let mut shuffled = forward.clone();
        let mut x = 0x9E37_79B9u32;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            shuffled.swap(i, x as usize % (i + 1));
        }
        std::vec![forward, backward, interleaved, shuffled]
    }

    #[test]
    fn images_arrive_intact_in_any_block_order() {
        // Block sizes around the write unit, unaligned ones (uftp's 1300), sizes that end mid
        // unit, exactly on one, and a last block shorter than a write unit.
        for &(size, blocksize) in &[
            (100_000usize, 1300u16),
            (1300 * 40, 1300),
            (1300 * 40 + 7, 1300),
            (1300 * 40 + 40, 1300),
            (32 * 500, 32),
            (33 * 300 + 1, 33),
            (1024 * 64, 1024),
            (5, 1300),
            (1, 512),
            (8800 * 3 + 17, 8800),
        ] {
            let image = pattern(size, size as u32 ^ u32::from(blocksize));
            let blocks = FileLayout::new(size as u64, blocksize).unwrap().blocks;
            for order in orders(blocks) {
                check(&image, blocksize, &order);
            }
        }
    }

    #[test]
    fn every_write_unit_is_programmed_once_and_only_after_an_erase() {
        // RamFlash refuses a second write to a unit and a write to an unerased one; a big
        // shuffled image exercises every path through it.
        let image = pattern(300_000, 7);
        let blocks = FileLayout::new(300_000, 1300).unwrap().blocks;
        let mut bed = Bed::new(96 * E);
        let mut st = bed.storage(u32::MAX);
        receive(&mut st, &image, 1300, &orders(blocks)[3]).unwrap();
        assert_eq!(st.flash_errors(), 0);
        assert!(
            bed.dfu.erases() <= 96,
            "erased {} sectors",
            bed.dfu.erases()
        );
    }

    #[test]
    fn a_new_image_after_a_discarded_one_is_stored_on_freshly_erased_flash() {
        let first = pattern(50_000, 1);
        let second = pattern(60_000, 2);
        let mut bed = Bed::new(64 * E);
        let mut st = bed.storage(u32::MAX);
        let it = item(first.len(), 1300);
        st.open(&it).unwrap();
        st.block_map(session()).unwrap().fill(0);
        for b in [3u32, 0, 7] {
            let off = it.layout.offset(b) as usize;
            let len = it.layout.block_len(b);
            st.write(session(), 1, off as u64, &first[off..off + len])
                .unwrap();
            nak::set(st.block_map(session()).unwrap(), b as usize);
        }
        st.discard(session(), 1);
        assert!(st.block_map(session()).is_none());
        assert_eq!(st.stored(), None);
        let blocks = FileLayout::new(60_000, 1300).unwrap().blocks;
        receive(&mut st, &second, 1300, &orders(blocks)[2]).unwrap();
        assert_eq!(
            st.stored().unwrap().sha256,
            <[u8; 32]>::from(Sha256::digest(&second))
        );
    }

    #[test]
    fn a_long_name_is_kept_cut_to_its_first_bytes() {
        let long = [b'n'; NAME_LEN + 10];
        assert_eq!(ImageName::new(&long).as_bytes(), &long[..NAME_LEN]);
        assert_eq!(ImageName::new(b"").as_bytes(), b"");
    }

    #[test]
    fn opening_an_image_cancels_a_pending_swap() {
        let image = pattern(10_000, 3);
        let mut bed = Bed::new(16 * E);
        let mut st = bed.storage(u32::MAX);
        receive(&mut st, &image, 1300, &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        assert_eq!(st.boot_state(), Some(State::Swap));
        st.open(&item(image.len(), 1300)).unwrap();
        assert_eq!(st.boot_state(), Some(State::Boot));
        st.discard(session(), 1);
        assert_eq!(st.boot_state(), Some(State::Boot));
    }

    #[test]
    fn images_that_do_not_fit_are_refused() {
        let mut bed = Bed::new(16 * E);
        let mut st = bed.storage(40_000);
        assert_eq!(st.open(&item(40_001, 1300)), Err(Reject::NoSpace));
        assert_eq!(st.open(&item(40_000, 1300)), Ok(()));
        let mut bed = Bed::new(16 * E);
        let mut st = bed.storage(u32::MAX);
        // 64 KiB of DFU: the image and its fragment slots must both fit.
        type St<'a> = FlashStorage<'a, &'a mut Flash, &'a mut Flash, 512>;
        let fits = (1..16 * E as u32)
            .rev()
            .find(|&n| St::space_needed(n, 1300) <= 16 * E as u64)
            .unwrap();
        // 62464 bytes in 49 blocks: 48 boundaries of two 32-byte slots fill the other 3072.
        assert_eq!(fits, 62_464);
        assert_eq!(
            st.open(&item(fits as usize + 1, 1300)),
            Err(Reject::NoSpace)
        );
        assert_eq!(st.open(&item(fits as usize, 1300)), Ok(()));
        assert_eq!(st.open(&item(16, 16)), Err(Reject::Unsupported));
        let mut dir = item(0, 1300);
        dir.kind = ItemKind::Directory;
        assert_eq!(st.open(&dir), Err(Reject::Unsupported));
        // More blocks than the block map holds (512 bytes: 4096 blocks).
        let mut bed = Bed::new(64 * E);
        let mut st = bed.storage(u32::MAX);
        assert_eq!(st.open(&item(4097 * 64, 64)), Err(Reject::Unsupported));
    }

    #[test]
    fn writes_for_another_file_or_out_of_range_are_errors() {
        let image = pattern(5000, 4);
        let mut bed = Bed::new(16 * E);
        let mut st = bed.storage(u32::MAX);
        st.open(&item(image.len(), 1300)).unwrap();
        assert_eq!(st.write(session(), 2, 0, &image[..1300]), Err(Reject::Io));
        assert_eq!(st.write(session(), 1, 1, &image[..1300]), Err(Reject::Io));
        assert_eq!(st.write(session(), 1, 0, &image[..1299]), Err(Reject::Io));
        assert_eq!(st.write(session(), 1, 5200, &image[..100]), Err(Reject::Io));
        assert_eq!(st.finish(session(), 1), Err(Reject::Io));
    }
}
