//! A NOR flash in a file, for the host run: the same geometry rules as a chip's flash, enforced
//! so that the host run proves what the boards rely on. Reads are byte-granular; writes must be
//! whole `W`-byte units, each still erased (all 0xFF: programming a unit twice is refused, as
//! the STM32H7's ECC flash refuses it); erases are whole `E`-byte sectors.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::{format, vec};

use embedded_storage::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Why a flash operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    /// Offset or length not a multiple of the write or erase unit.
    NotAligned,
    /// Past the end of the flash.
    OutOfBounds,
    /// A write to a unit that is not erased.
    NotErased,
    /// The file could not be read or written.
    Io,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotErased | FlashError::Io => NorFlashErrorKind::Other,
        }
    }
}

/// `len` bytes of NOR flash with `W`-byte write units and `E`-byte erase sectors, kept in a
/// file (created erased if missing).
#[derive(Debug)]
pub struct FileFlash<const W: usize, const E: usize> {
    file: File,
    len: usize,
    /// Writes refused because their unit was not erased (a bug in the writer).
    pub refused_rewrites: u64,
}

impl<const W: usize, const E: usize> FileFlash<W, E> {
    /// Opens `path` as a flash of `len` bytes (a multiple of `E`); a new or shorter file is
    /// extended with erased (0xFF) bytes.
    pub fn open(path: &Path, len: usize) -> io::Result<Self> {
        if !len.is_multiple_of(E) || !E.is_multiple_of(W) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("flash of {len} bytes is not whole {E}-byte sectors of {W}-byte units"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let have = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
        if have < len {
            let erased = vec![0xFF; E];
            let mut at = have - have % E;
            // A partial last sector from an older, shorter flash is erased whole.
            while at < len {
                file.write_all_at(&erased, at as u64)?;
                at += E;
            }
        }
        Ok(FileFlash {
            file,
            len,
            refused_rewrites: 0,
        })
    }

    fn check(&self, offset: u32, len: usize, unit: usize) -> Result<u64, FlashError> {
        let offset = offset as usize;
        if !offset.is_multiple_of(unit) || !len.is_multiple_of(unit) {
            return Err(FlashError::NotAligned);
        }
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(FlashError::OutOfBounds);
        }
        Ok(offset as u64)
    }
}

impl<const W: usize, const E: usize> ErrorType for FileFlash<W, E> {
    type Error = FlashError;
}

impl<const W: usize, const E: usize> ReadNorFlash for FileFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let at = self.check(offset, bytes.len(), 1)?;
        self.file
            .read_exact_at(bytes, at)
            .map_err(|_| FlashError::Io)
    }

    fn capacity(&self) -> usize {
        self.len
    }
}

impl<const W: usize, const E: usize> NorFlash for FileFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(FlashError::OutOfBounds)?;
        let at = self.check(from, len, E)?;
        let erased = [0xFFu8; E];
        for sector in 0..len / E {
            self.file
                .write_all_at(&erased, at + (sector * E) as u64)
                .map_err(|_| FlashError::Io)?;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let at = self.check(offset, bytes.len(), W)?;
        let mut old = vec![0u8; bytes.len()];
        self.file
            .read_exact_at(&mut old, at)
            .map_err(|_| FlashError::Io)?;
        if old.iter().any(|&b| b != 0xFF) {
            self.refused_rewrites += 1;
            return Err(FlashError::NotErased);
        }
        self.file
            .write_all_at(bytes, at)
            .map_err(|_| FlashError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_flash_enforces_nor_rules_and_keeps_its_bytes() {
        let path = std::env::temp_dir().join(format!("file-flash-{}.bin", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut f = FileFlash::<32, 4096>::open(&path, 3 * 4096).unwrap();
        let mut buf = [0u8; 64];
        f.read(4090, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0xFF));
        assert_eq!(f.write(0, &[1; 31]), Err(FlashError::NotAligned));
        assert_eq!(f.write(16, &[1; 32]), Err(FlashError::NotAligned));
        assert_eq!(f.write(3 * 4096, &[1; 32]), Err(FlashError::OutOfBounds));
        f.write(32, &[7; 64]).unwrap();
        assert_eq!(f.write(64, &[7; 32]), Err(FlashError::NotErased));
        assert_eq!(f.refused_rewrites, 1);
        assert_eq!(f.erase(0, 100), Err(FlashError::NotAligned));
        drop(f);
        // Reopened, it keeps what was written.
        let mut f = FileFlash::<32, 4096>::open(&path, 3 * 4096).unwrap();
        f.read(32, &mut buf).unwrap();
        assert_eq!(buf, [7; 64]);
        f.erase(0, 4096).unwrap();
        f.read(32, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0xFF));
        f.write(64, &[9; 32]).unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
