//! A NOR flash in a RAM buffer, for a board whose flash cannot hold update images (QEMU's MPS2
//! boards emulate no flash controller). It keeps NOR flash's rules so that the storage above it
//! runs as on a real chip: erase in whole `E`-byte sectors (to 0xFF), program whole `W`-byte
//! units, and programming only clears bits.

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// A broken flash rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFlashError(NorFlashErrorKind);

impl NorFlashError for MemFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

/// `W`-byte write units and `E`-byte erase sectors over a borrowed buffer.
#[derive(Debug)]
pub struct MemFlash<'a, const W: usize, const E: usize> {
    bytes: &'a mut [u8],
}

impl<'a, const W: usize, const E: usize> MemFlash<'a, W, E> {
    /// The flash over `bytes`, erased; `None` unless its length is a whole number of sectors.
    pub fn new(bytes: &'a mut [u8]) -> Option<Self> {
        if W == 0 || !E.is_multiple_of(W) || !bytes.len().is_multiple_of(E) {
            return None;
        }
        bytes.fill(0xFF);
        Some(MemFlash { bytes })
    }

    /// Its contents.
    pub fn bytes(&self) -> &[u8] {
        self.bytes
    }

    fn range(&self, offset: u32, len: usize) -> Result<core::ops::Range<usize>, MemFlashError> {
        let at = offset as usize;
        match at.checked_add(len) {
            Some(end) if end <= self.bytes.len() => Ok(at..end),
            _ => Err(MemFlashError(NorFlashErrorKind::OutOfBounds)),
        }
    }
}

impl<const W: usize, const E: usize> ErrorType for MemFlash<'_, W, E> {
    type Error = MemFlashError;
}

impl<const W: usize, const E: usize> ReadNorFlash for MemFlash<'_, W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), MemFlashError> {
        let r = self.range(offset, bytes.len())?;
        bytes.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for MemFlash<'_, W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), MemFlashError> {
        if to < from || !(from as usize).is_multiple_of(E) || !(to as usize).is_multiple_of(E) {
            return Err(MemFlashError(NorFlashErrorKind::NotAligned));
        }
        let r = self.range(from, (to - from) as usize)?;
        self.bytes[r].fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), MemFlashError> {
        if !(offset as usize).is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(MemFlashError(NorFlashErrorKind::NotAligned));
        }
        let r = self.range(offset, bytes.len())?;
        for (cell, &b) in self.bytes[r].iter_mut().zip(bytes) {
            *cell &= b;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_keeps_nor_rules() {
        let mut buf = [0u8; 64];
        let mut f = MemFlash::<4, 16>::new(&mut buf).unwrap();
        assert!(f.bytes().iter().all(|&b| b == 0xFF), "starts erased");
        f.write(4, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
        // Programming again only clears more bits.
        f.write(4, &[0xFF, 0x0F, 0xFF, 0x3C]).unwrap();
        assert_eq!(&f.bytes()[4..8], &[0x0F, 0x00, 0x00, 0x3C]);
        let mut out = [0u8; 3];
        f.read(5, &mut out).unwrap();
        assert_eq!(out, [0x00, 0x00, 0x3C]);
        let kind = |r: Result<(), MemFlashError>| r.unwrap_err().kind();
        assert_eq!(kind(f.write(2, &[0; 4])), NorFlashErrorKind::NotAligned);
        assert_eq!(kind(f.write(4, &[0; 3])), NorFlashErrorKind::NotAligned);
        assert_eq!(kind(f.write(64, &[0; 4])), NorFlashErrorKind::OutOfBounds);
        assert_eq!(kind(f.erase(0, 8)), NorFlashErrorKind::NotAligned);
        assert_eq!(kind(f.erase(16, 80)), NorFlashErrorKind::OutOfBounds);
        assert_eq!(
            kind(f.read(60, &mut [0; 8])),
            NorFlashErrorKind::OutOfBounds
        );
        f.erase(0, 16).unwrap();
        assert!(f.bytes()[..16].iter().all(|&b| b == 0xFF));
        assert!(MemFlash::<4, 16>::new(&mut [0u8; 40]).is_none());
    }
}
