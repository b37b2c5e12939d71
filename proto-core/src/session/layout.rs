//! How a file is cut into blocks and sections (protocol digest §1.4).

/// The block and section geometry of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLayout {
    /// File size in bytes.
    pub size: u64,
    /// Data bytes per block.
    pub blocksize: u16,
    /// Number of blocks: `ceil(size / blocksize)`.
    pub blocks: u32,
    /// Number of sections.
    pub sections: u16,
    /// Blocks in each of the first `big_sections` sections.
    pub big: u32,
    /// Blocks in each remaining section.
    pub small: u32,
    /// How many sections hold `big` blocks.
    pub big_sections: u32,
}

/// Why a layout cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutError {
    /// Block size 0.
    ZeroBlocksize,
    /// More blocks than 32 bits or sections than 16 bits can count.
    TooLarge,
}

impl FileLayout {
    /// Most blocks per section: one section's NAK bitmap must fit in one block.
    pub fn max_section(blocksize: u16) -> u32 {
        (8 * u32::from(blocksize)).min(65536)
    }

    /// Lays out a file of `size` bytes in blocks of `blocksize`.
    pub fn new(size: u64, blocksize: u16) -> Result<Self, LayoutError> {
        if blocksize == 0 {
            return Err(LayoutError::ZeroBlocksize);
        }
        let blocks = size.div_ceil(u64::from(blocksize));
        let blocks = u32::try_from(blocks).map_err(|_| LayoutError::TooLarge)?;
        if blocks == 0 {
            return Ok(FileLayout {
                size,
                blocksize,
                blocks: 0,
                sections: 0,
                big: 0,
                small: 0,
                big_sections: 0,
            });
        }
        let sections = blocks.div_ceil(Self::max_section(blocksize));
        let sections16 = u16::try_from(sections).map_err(|_| LayoutError::TooLarge)?;
        let small = blocks / sections;
        let big = small + u32::from(blocks % sections != 0);
        let big_sections = blocks - small * sections;
        Ok(FileLayout {
            size,
            blocksize,
            blocks,
            sections: sections16,
            big,
            small,
            big_sections,
        })
    }

    /// The section and index within it of block `block`, or `None` past the end.
    #[inline]
    pub fn locate(&self, block: u32) -> Option<(u16, u32)> {
        if block >= self.blocks {
            return None;
        }
        let in_big = self.big_sections * self.big;
        let (section, index) = if block < in_big {
            (block / self.big, block % self.big)
        } else {
            let b = block - in_big;
            (self.big_sections + b / self.small, b % self.small)
        };
        Some((section as u16, index))
    }

    /// The first block of `section`, or `None` past the end.
    #[inline]
    pub fn section_start(&self, section: u16) -> Option<u32> {
        let s = u32::from(section);
        if s >= u32::from(self.sections) {
            return None;
        }
        Some(if s < self.big_sections {
            s * self.big
        } else {
            self.big_sections * self.big + (s - self.big_sections) * self.small
        })
    }

    /// Number of blocks in `section` (0 past the end).
    #[inline]
    pub fn section_blocks(&self, section: u16) -> u32 {
        let s = u32::from(section);
        if s >= u32::from(self.sections) {
            0
        } else if s < self.big_sections {
            self.big
        } else {
            self.small
        }
    }

    /// The block number of `index` within `section`, or `None` if out of range.
    #[inline]
    pub fn block_of(&self, section: u16, index: u32) -> Option<u32> {
        if index >= self.section_blocks(section) {
            return None;
        }
        Some(self.section_start(section)? + index)
    }

    /// Byte offset of a block in the file.
    #[inline]
    pub fn offset(&self, block: u32) -> u64 {
        u64::from(block) * u64::from(self.blocksize)
    }

    /// Data bytes in `block` (the last may be short; 0 past the end).
    #[inline]
    pub fn block_len(&self, block: u32) -> usize {
        if block >= self.blocks {
            return 0;
        }
        let rest = self.size - self.offset(block);
        rest.min(u64::from(self.blocksize)) as usize
    }

    /// Length of a STATUS NAK bitmap for `section`: `floor(blocks_in_section / 8) + 1`.
    pub fn nak_bitmap_len(&self, section: u16) -> usize {
        (self.section_blocks(section) / 8 + 1) as usize
    }

    /// Bytes of a whole-file bitmap (one bit per block).
    pub fn bitmap_len(&self) -> usize {
        self.blocks.div_ceil(8) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_spread_evenly_and_locate_inverts_block_of() {
        for (size, bs) in [
            (0u64, 1300u16),
            (1, 512),
            (40000, 1000),
            (50 << 20, 1300),
            (123_456_789, 512),
        ] {
            let l = FileLayout::new(size, bs).unwrap();
            assert_eq!(u64::from(l.blocks), size.div_ceil(u64::from(bs)));
            let total: u32 = (0..l.sections).map(|s| l.section_blocks(s)).sum();
            assert_eq!(total, l.blocks);
            for s in 0..l.sections {
                assert!(l.section_blocks(s) <= FileLayout::max_section(bs));
            }
            for b in (0..l.blocks).step_by(997).chain(l.blocks.checked_sub(1)) {
                let (s, i) = l.locate(b).unwrap();
                assert_eq!(l.block_of(s, i), Some(b));
            }
            assert_eq!(l.locate(l.blocks), None);
        }
    }

    #[test]
    fn digest_example_geometry() {
        // 50 MiB in 1300-byte blocks: 40330 blocks, max section 10400, so 4 sections.
        let l = FileLayout::new(50 << 20, 1300).unwrap();
        assert_eq!((l.blocks, l.sections), (40330, 4));
        assert_eq!((l.big, l.small, l.big_sections), (10083, 10082, 2));
        assert_eq!(l.block_len(l.blocks - 1), (50 << 20) - 40329 * 1300);
    }
}
