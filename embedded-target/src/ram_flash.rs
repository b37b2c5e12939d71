//! A NOR flash in RAM for the storage's tests, with the same rules as [`FileFlash`]: whole
//! write units, each programmed only once after an erase.
//!
//! [`FileFlash`]: crate::file_flash::FileFlash

use std::vec;
use std::vec::Vec;

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RamFlashError(NorFlashErrorKind);

impl NorFlashError for RamFlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

#[derive(Debug)]
pub struct RamFlash<const W: usize, const E: usize> {
    bytes: Vec<u8>,
    /// Per write unit: programmed since its last erase.
    programmed: Vec<bool>,
    erases: usize,
}

impl<const W: usize, const E: usize> RamFlash<W, E> {
    /// `len` erased bytes.
    pub fn new(len: usize) -> Self {
        assert_eq!(len % E, 0);
        RamFlash {
            bytes: vec![0xFF; len],
            programmed: vec![false; len / W],
            erases: 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Sectors erased so far.
    pub fn erases(&self) -> usize {
        self.erases
    }
}

fn refuse(kind: NorFlashErrorKind) -> RamFlashError {
    // A test flash fails loudly: the storage must never break these rules.
    panic!("flash rule broken: {kind:?}")
}

impl<const W: usize, const E: usize> ErrorType for RamFlash<W, E> {
    type Error = RamFlashError;
}

impl<const W: usize, const E: usize> ReadNorFlash for RamFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), RamFlashError> {
        let at = offset as usize;
        let src = self
            .bytes
            .get(at..at + bytes.len())
            .ok_or_else(|| refuse(NorFlashErrorKind::OutOfBounds))?;
        bytes.copy_from_slice(src);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for RamFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), RamFlashError> {
        let (from, to) = (from as usize, to as usize);
        if from % E != 0 || to % E != 0 || to < from {
            return Err(refuse(NorFlashErrorKind::NotAligned));
        }
        if to > self.bytes.len() {
            return Err(refuse(NorFlashErrorKind::OutOfBounds));
        }
        self.bytes[from..to].fill(0xFF);
        self.programmed[from / W..to / W].fill(false);
        self.erases += (to - from) / E;
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), RamFlashError> {
        let at = offset as usize;
        if !at.is_multiple_of(W) || !bytes.len().is_multiple_of(W) {
            return Err(refuse(NorFlashErrorKind::NotAligned));
        }
        if at + bytes.len() > self.bytes.len() {
            return Err(refuse(NorFlashErrorKind::OutOfBounds));
        }
        for unit in at / W..(at + bytes.len()) / W {
            if self.programmed[unit] || self.bytes[unit * W..][..W].iter().any(|&b| b != 0xFF) {
                return Err(refuse(NorFlashErrorKind::Other));
            }
            self.programmed[unit] = true;
        }
        self.bytes[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }
}
