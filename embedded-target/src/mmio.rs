//! Memory-mapped device registers: the firmware's only `unsafe` code.
//!
//! A [`Mmio`] is one device's register block. Creating one is `unsafe` (the caller vouches for
//! the address); every access after that is bounds- and alignment-checked and volatile.

/// A device's block of 32-bit registers at a fixed address.
#[derive(Debug)]
pub struct Mmio {
    base: usize,
    len: usize,
}

impl Mmio {
    /// The register block of `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base..base + len` must be a device's registers, mapped, 4-byte aligned, and with
    /// nothing else (another `Mmio`, a HAL) accessing them while this value lives: reads of FIFO
    /// registers have side effects, so two owners would corrupt each other's transfers.
    pub const unsafe fn new(base: usize, len: usize) -> Mmio {
        Mmio { base, len }
    }

    /// Reads the register at byte `offset`.
    ///
    /// # Panics
    ///
    /// If `offset` is unaligned or past the block (a driver bug, never input).
    pub fn read(&mut self, offset: usize) -> u32 {
        let addr = self.addr(offset);
        // SAFETY: `addr` is an aligned register inside the block that `new`'s caller vouched
        // for, and `&mut self` makes this the only access in flight through this handle.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }

    /// Writes the register at byte `offset`.
    ///
    /// # Panics
    ///
    /// If `offset` is unaligned or past the block (a driver bug, never input).
    pub fn write(&mut self, offset: usize, value: u32) {
        let addr = self.addr(offset);
        // SAFETY: as in `read`: an aligned register of the vouched-for block, accessed once.
        unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
    }

    fn addr(&self, offset: usize) -> usize {
        assert!(
            offset.is_multiple_of(4) && offset < self.len,
            "register offset {offset:#x} outside a {:#x}-byte block",
            self.len
        );
        self.base + offset
    }
}
