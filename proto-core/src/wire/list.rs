//! Lists of fixed-size records that trail a message: client IDs (4 bytes each), KEYINFO
//! entries (52 bytes), CONG_CTRL items (8 bytes).
//!
//! A [`List`] is either a view of the received bytes (parsing never copies) or a slice of records
//! built by the caller (for emitting); both compare by content.

use super::field::Field;
use super::{need, Error, Result};

/// A record with a fixed size on the wire.
pub trait Record: Copy {
    /// Bytes per record on the wire.
    const LEN: usize;
    /// Reads one record from exactly [`Record::LEN`] bytes.
    fn read(bytes: &[u8]) -> Self;
    /// Writes one record into exactly [`Record::LEN`] bytes.
    fn write(&self, out: &mut [u8]);
}

impl Record for u32 {
    const LEN: usize = 4;
    fn read(bytes: &[u8]) -> Self {
        u32::get(bytes, 0)
    }
    fn write(&self, out: &mut [u8]) {
        u32::set(out, 0, *self);
    }
}

/// A list of records, borrowed either from a received message or from the caller.
#[derive(Clone, Copy)]
pub enum List<'a, R: Record> {
    /// Records as they appear on the wire (length a multiple of `R::LEN`).
    Wire(&'a [u8]),
    /// Records supplied by the caller.
    Items(&'a [R]),
}

/// A list of client (or proxy) IDs.
pub type IdList<'a> = List<'a, u32>;

impl<'a, R: Record> List<'a, R> {
    /// The empty list.
    pub const EMPTY: Self = List::Wire(&[]);

    /// Views received bytes as records; fails unless the length is a whole number of records.
    pub fn from_wire(bytes: &'a [u8]) -> Result<Self> {
        if !bytes.len().is_multiple_of(R::LEN) {
            return Err(Error::BadLength);
        }
        Ok(List::Wire(bytes))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match self {
            List::Wire(bytes) => bytes.len() / R::LEN,
            List::Items(items) => items.len(),
        }
    }

    /// Whether the list has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The record at `index`, if any.
    pub fn get(&self, index: usize) -> Option<R> {
        match self {
            List::Wire(bytes) => {
                let at = index.checked_mul(R::LEN)?;
                bytes.get(at..at + R::LEN).map(R::read)
            }
            List::Items(items) => items.get(index).copied(),
        }
    }

    /// Iterates over the records.
    pub fn iter(&self) -> ListIter<'a, R> {
        ListIter {
            list: *self,
            next: 0,
        }
    }

    /// Bytes the list takes on the wire.
    pub fn buffer_len(&self) -> usize {
        self.len() * R::LEN
    }

    /// Writes the records into the start of `out`, returning the bytes written.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        need(out, len)?;
        match self {
            List::Wire(bytes) => out[..len].copy_from_slice(bytes),
            List::Items(items) => {
                for (item, chunk) in items.iter().zip(out.chunks_exact_mut(R::LEN)) {
                    item.write(chunk);
                }
            }
        }
        Ok(len)
    }
}

impl List<'_, u32> {
    /// Whether `id` is in the list.
    pub fn contains(&self, id: u32) -> bool {
        self.iter().any(|x| x == id)
    }
}

impl<R: Record + PartialEq> PartialEq for List<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<R: Record + Eq> Eq for List<'_, R> {}

impl<R: Record + core::fmt::Debug> core::fmt::Debug for List<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, R: Record> IntoIterator for List<'a, R> {
    type Item = R;
    type IntoIter = ListIter<'a, R>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`List`].
#[derive(Debug, Clone)]
pub struct ListIter<'a, R: Record> {
    list: List<'a, R>,
    next: usize,
}

impl<R: Record> Iterator for ListIter<'_, R> {
    type Item = R;
    fn next(&mut self) -> Option<R> {
        let item = self.list.get(self.next)?;
        self.next += 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.list.len() - self.next;
        (left, Some(left))
    }
}

impl<R: Record> ExactSizeIterator for ListIter<'_, R> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_items_compare_by_content() {
        let wire = [0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        let list = IdList::from_wire(&wire).unwrap();
        assert_eq!(list, IdList::Items(&[1, 0xdead_beef]));
        assert!(list.contains(0xdead_beef));
        let mut out = [0u8; 8];
        assert_eq!(IdList::Items(&[1, 0xdead_beef]).emit(&mut out), Ok(8));
        assert_eq!(out, wire);
        assert_eq!(IdList::from_wire(&wire[..5]), Err(Error::BadLength));
        assert_eq!(
            list.emit(&mut [0u8; 7]),
            Err(Error::BufferTooSmall { needed: 8 })
        );
    }
}
