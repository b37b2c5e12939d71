//! NAK bitmaps: bit `i` lives in byte `i >> 3` at position `i & 7`, least significant bit first
//! (protocol digest §4.1). The same layout serves whole-file "received" and "to resend" maps.

/// Whether bit `i` is set (false past the end).
pub fn get(map: &[u8], i: usize) -> bool {
    map.get(i >> 3).is_some_and(|b| b & (1 << (i & 7)) != 0)
}

/// Sets bit `i` (no-op past the end).
pub fn set(map: &mut [u8], i: usize) {
    if let Some(b) = map.get_mut(i >> 3) {
        *b |= 1 << (i & 7);
    }
}

/// Clears bit `i` (no-op past the end).
pub fn clear(map: &mut [u8], i: usize) {
    if let Some(b) = map.get_mut(i >> 3) {
        *b &= !(1 << (i & 7));
    }
}

/// Number of set bits among the first `bits`.
pub fn count(map: &[u8], bits: usize) -> usize {
    let whole = (bits / 8).min(map.len());
    let ones: usize = map[..whole].iter().map(|b| b.count_ones() as usize).sum();
    ones + (whole * 8..bits).filter(|&i| get(map, i)).count()
}

/// The first set bit at or after `from`, below `bits`.
pub fn next_set(map: &[u8], from: usize, bits: usize) -> Option<usize> {
    let mut i = from;
    while i < bits {
        let byte = *map.get(i >> 3)?;
        let rest = byte >> (i & 7);
        if rest == 0 {
            i = (i | 7) + 1;
            continue;
        }
        let found = i + rest.trailing_zeros() as usize;
        return (found < bits).then_some(found);
    }
    None
}

/// The first clear bit at or after `from`, below `bits`.
pub fn next_clear(map: &[u8], from: usize, bits: usize) -> Option<usize> {
    let mut i = from;
    while i < bits {
        let byte = map.get(i >> 3).copied().unwrap_or(0);
        let rest = !byte >> (i & 7);
        if rest == 0 {
            i = (i | 7) + 1;
            continue;
        }
        let found = i + rest.trailing_zeros() as usize;
        return (found < bits).then_some(found);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_is_lsb_first() {
        let mut m = [0u8; 3];
        set(&mut m, 3);
        assert_eq!(m[0], 0x08, "block 3 is 0x08 in byte 0, as uftp sends it");
        set(&mut m, 17);
        assert!(get(&m, 17) && !get(&m, 16));
        assert_eq!(next_set(&m, 0, 24), Some(3));
        assert_eq!(next_set(&m, 4, 24), Some(17));
        assert_eq!(next_set(&m, 18, 24), None);
        assert_eq!(next_clear(&m, 3, 24), Some(4));
        assert_eq!(count(&m, 24), 2);
        assert_eq!(count(&m, 17), 1);
        assert_eq!(count(&[0xff, 0xff], 12), 12);
        assert_eq!(count(&[0xff], 12), 8);
        clear(&mut m, 3);
        assert_eq!(next_set(&m, 0, 17), None);
    }
}
